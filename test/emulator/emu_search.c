/*
 * odoo-emulator: domains, ordering, search and read, as the ORM does them
 * on stored and computed fields.
 */
#include "emu_orm.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- domains ----------------------------------------------------------- */

static const char *const leaf_ops[] = {
	"=", "!=", "<>", "<", ">", "<=", ">=", "in", "not in", "like",
	"not like", "ilike", "not ilike", "=like", "=ilike", "child_of",
	"parent_of", NULL};

bool orm_is_op(const char *s)
{
	for (int i = 0; leaf_ops[i]; i++)
		if (strcmp(leaf_ops[i], s) == 0)
			return true;
	return false;
}

static char *leaf_repr(json_t *leaf)
{
	char *inner = emu_repr(leaf);
	size_t n = strlen(inner);

	/* Odoo shows leaves as tuples */
	inner[0] = '(';
	inner[n - 1] = ')';
	return inner;
}

/* Resolves a dotted path to its last field; -1 (ValueError) if invalid. */
static int path_resolve(struct emu *e, struct model *m, const char *path,
			json_t *leaf, struct model **fm,
			const struct field_def **ff)
{
	char *copy = emu_strdup(path), *save = NULL;
	struct model *cur = m;
	const struct field_def *f = NULL;
	int rc = 0;

	for (char *part = strtok_r(copy, ".", &save); part;
	     part = strtok_r(NULL, ".", &save)) {
		if (f) {
			if (f->type != F_M2O && f->type != F_O2M)
				goto invalid;
			cur = orm_model_find(e, f->relation);
		}
		f = orm_field_find(cur, part);
		if (!f)
			goto invalid;
	}
	if (!f)
		goto invalid;
	*fm = cur;
	*ff = f;
	goto out;
invalid: {
		char *lr = leaf_repr(leaf);

		rc = emu_raise(e, "builtins.ValueError",
			       "Invalid field %s.%s in leaf %s", cur->def->name,
			       path, lr);
		free(lr);
	}
out:
	free(copy);
	return rc;
}

static bool leaf_is_constant(json_t *leaf, bool *value)
{
	json_t *a = json_array_get(leaf, 0), *b = json_array_get(leaf, 2);

	if (!json_is_integer(a) || !json_is_integer(b))
		return false;
	*value = json_integer_value(a) == json_integer_value(b);
	return true;
}

static int domain_validate(struct emu *e, struct model *m, json_t *domain)
{
	size_t i;
	json_t *item;
	char *r;

	if (!domain || json_is_null(domain) || json_is_false(domain))
		return 0;
	if (!json_is_array(domain)) {
		r = emu_repr(domain);
		emu_raise(e, "builtins.ValueError", "Invalid domain: %s", r);
		free(r);
		return -1;
	}
	json_array_foreach(domain, i, item) {
		struct model *fm;
		const struct field_def *ff;
		bool constant;

		if (json_is_string(item)) {
			const char *s = json_string_value(item);

			if (strcmp(s, "&") && strcmp(s, "|") && strcmp(s, "!"))
				goto bad;
			continue;
		}
		if (!json_is_array(item) || json_array_size(item) != 3)
			goto bad;
		if (leaf_is_constant(item, &constant))
			continue;
		if (!json_is_string(json_array_get(item, 0)) ||
		    !json_is_string(json_array_get(item, 1)) ||
		    !orm_is_op(json_string_value(json_array_get(item, 1))))
			goto bad;
		if (path_resolve(e, m, json_string_value(json_array_get(item, 0)),
				 item, &fm, &ff) < 0)
			return -1;
		continue;
bad:
		r = json_is_array(item) ? leaf_repr(item) : emu_repr(item);
		emu_raise(e, "builtins.ValueError", "Invalid leaf %s", r);
		free(r);
		return -1;
	}
	return 0;
}

static bool domain_mentions(json_t *domain, const char *field)
{
	size_t i;
	json_t *item;

	json_array_foreach(domain, i, item)
		if (json_is_array(item) &&
		    json_is_string(json_array_get(item, 0)) &&
		    strcmp(json_string_value(json_array_get(item, 0)), field) == 0)
			return true;
	return false;
}

/* SQL LIKE with % and _, optionally case-insensitive (ASCII only). */
static bool like_match(const char *s, const char *p, bool icase)
{
	for (; *p; p++, s++) {
		if (*p == '%') {
			while (*p == '%')
				p++;
			if (!*p)
				return true;
			for (; *s; s++)
				if (like_match(s, p, icase))
					return true;
			return false;
		}
		if (!*s)
			return false;
		if (*p != '_' && (icase ? tolower((unsigned char)*p) != tolower((unsigned char)*s)
					: *p != *s))
			return false;
	}
	return *s == '\0';
}

static int values_cmp(const json_t *a, const json_t *b)
{
	if (json_is_number(a) && json_is_number(b)) {
		double x = json_number_value(a), y = json_number_value(b);

		return x < y ? -1 : x > y;
	}
	if (json_is_string(a) && json_is_string(b))
		return strcmp(json_string_value(a), json_string_value(b));
	if (json_is_boolean(a) && json_is_boolean(b))
		return (int)json_is_true(a) - (int)json_is_true(b);
	return 0;
}

static bool comparable(const json_t *a, const json_t *b)
{
	return (json_is_number(a) && json_is_number(b)) ||
	       (json_is_string(a) && json_is_string(b)) ||
	       (json_is_boolean(a) && json_is_boolean(b));
}

/* Whether id or one of its ancestors (by parent_id) is in set. */
static bool in_subtree(struct model *m, json_int_t id, json_t *set)
{
	int depth = 0;

	while (id && depth++ < 256) {
		size_t i;
		json_t *v;
		json_t *rec = orm_rec_get(m, id);

		json_array_foreach(set, i, v)
			if (json_integer_value(v) == id)
				return true;
		if (!rec)
			return false;
		id = orm_rec_int(rec, "parent_id");
	}
	return false;
}

bool orm_scalar_match(const json_t *rv, const char *op, json_t *value)
{
	size_t i;
	json_t *v;

	if (json_is_array(rv)) {
		/* x2many: the leaf holds when one of the related ids does */
		json_array_foreach(rv, i, v)
			if (orm_scalar_match(v, op, value))
				return strncmp(op, "not", 3) != 0 && strcmp(op, "!=") != 0;
		if (json_array_size(rv) == 0)
			return orm_scalar_match(json_false(), op, value);
		return strncmp(op, "not", 3) == 0 || strcmp(op, "!=") == 0;
	}
	if (strcmp(op, "=") == 0)
		return orm_values_equal(rv, value);
	if (strcmp(op, "!=") == 0 || strcmp(op, "<>") == 0)
		return !orm_values_equal(rv, value);
	if (strcmp(op, "in") == 0 || strcmp(op, "not in") == 0) {
		bool found = false;

		if (json_is_array(value)) {
			json_array_foreach(value, i, v)
				if (orm_values_equal(rv, v))
					found = true;
		} else {
			found = orm_values_equal(rv, value);
		}
		return op[0] == 'i' ? found : !found;
	}
	if (strstr(op, "like")) {
		bool neg = strncmp(op, "not", 3) == 0;
		bool icase = strstr(op, "ilike") != NULL;
		bool exact = op[0] == '=';
		char *pat, *str;
		bool hit;

		if (!json_is_string(rv))
			return neg;
		str = json_is_string(value) ? emu_strdup(json_string_value(value))
					    : emu_repr(value);
		pat = exact ? emu_strdup(str) : emu_printf("%%%s%%", str);
		hit = like_match(json_string_value(rv), pat, icase);
		free(pat);
		free(str);
		return neg ? !hit : hit;
	}
	if (!comparable(rv, value))
		return false;
	if (strcmp(op, "<") == 0)
		return values_cmp(rv, value) < 0;
	if (strcmp(op, ">") == 0)
		return values_cmp(rv, value) > 0;
	if (strcmp(op, "<=") == 0)
		return values_cmp(rv, value) <= 0;
	if (strcmp(op, ">=") == 0)
		return values_cmp(rv, value) >= 0;
	return false;
}

static bool leaf_match(struct emu *e, struct model *m, json_t *rec,
		       json_t *leaf)
{
	const char *path = json_string_value(json_array_get(leaf, 0));
	const char *op = json_string_value(json_array_get(leaf, 1));
	json_t *value = json_array_get(leaf, 2);
	char *copy = emu_strdup(path), *save = NULL, *part, *next;
	struct model *cur = m;
	json_t *r = rec, *rv = NULL;
	const struct field_def *f = NULL;
	bool hit;

	for (part = strtok_r(copy, ".", &save); part; part = next) {
		next = strtok_r(NULL, ".", &save);
		f = orm_field_find(cur, part);
		if (!f)
			break;
		if (next && f->type == F_M2O) {
			cur = orm_model_find(e, f->relation);
			r = r ? orm_rec_get(cur, json_integer_value(json_object_get(r, f->name))) : NULL;
		}
	}
	free(copy);
	if (!f)
		return false;
	if (strcmp(op, "child_of") == 0 || strcmp(op, "parent_of") == 0) {
		json_t *set = json_is_array(value) ? json_incref(value)
						   : json_pack("[O]", value);
		json_int_t id = 0;

		if (r)
			id = strcmp(f->name, "id") == 0 ? orm_rec_id(r)
							: orm_rec_int(r, f->name);
		if (op[0] == 'c') {
			hit = id && in_subtree(cur, id, set);
		} else {
			size_t i;
			json_t *v;
			json_t *one = json_pack("[I]", id);

			hit = false;
			json_array_foreach(set, i, v)
				if (id && in_subtree(cur, json_integer_value(v), one))
					hit = true;
			json_decref(one);
		}
		json_decref(set);
		return hit;
	}
	if (!r) {
		rv = json_false();
	} else if (f->type == F_M2O &&
		   (json_is_string(value) ||
		    (json_is_array(value) && json_is_string(json_array_get(value, 0))))) {
		/* a name on a many2one is searched on the target's name */
		struct model *cm = orm_model_find(e, f->relation);
		json_t *target = orm_rec_get(cm, orm_rec_int(r, f->name));

		if (target) {
			char *dn = orm_display_name(e, cm, target);

			rv = json_string(dn);
			free(dn);
		} else {
			rv = json_false();
		}
	} else {
		rv = orm_value_get(e, cur, r, f);
	}
	if (f->type == F_DATETIME) {
		/* at the database's precision: microseconds (emu_poll.c) */
		json_t *full = emu_datetime_full(value), *rfull = emu_datetime_full(rv);

		hit = orm_scalar_match(rfull, op, full);
		json_decref(full);
		json_decref(rfull);
		json_decref(rv);
		return hit;
	}
	hit = orm_scalar_match(rv, op, value);
	json_decref(rv);
	return hit;
}

static bool domain_eval(struct emu *e, struct model *m, json_t *rec,
			json_t *domain, size_t *pos)
{
	json_t *item = json_array_get(domain, (*pos)++);
	bool a, b, constant;

	if (!item)
		return true;
	if (json_is_string(item)) {
		const char *s = json_string_value(item);

		if (s[0] == '!')
			return !domain_eval(e, m, rec, domain, pos);
		a = domain_eval(e, m, rec, domain, pos);
		b = domain_eval(e, m, rec, domain, pos);
		return s[0] == '&' ? (a && b) : (a || b);
	}
	if (leaf_is_constant(item, &constant))
		return constant;
	return leaf_match(e, m, rec, item);
}

static bool domain_match(struct emu *e, struct model *m, json_t *rec,
			 json_t *domain)
{
	size_t pos = 0, n;

	if (!json_is_array(domain))
		return true;
	n = json_array_size(domain);
	while (pos < n)
		if (!domain_eval(e, m, rec, domain, &pos))
			return false;
	return true;
}

/* ---- search ------------------------------------------------------------ */

struct order_key {
	const struct field_def *f;
	bool desc;
};

struct sort_ctx {
	struct emu *e;
	struct model *m;
	struct order_key keys[8];
	int nkeys;
};

static json_t *sort_value(struct sort_ctx *sc, json_t *rec,
			  const struct field_def *f)
{
	if (strcmp(f->name, "id") == 0)
		return json_integer(orm_rec_id(rec));
	if (f->type == F_M2O) {
		struct model *cm = orm_model_find(sc->e, f->relation);
		json_t *t = orm_rec_get(cm, orm_rec_int(rec, f->name));
		char *dn;
		json_t *v;

		if (!t)
			return json_null();
		dn = orm_display_name(sc->e, cm, t);
		v = json_string(dn);
		free(dn);
		return v;
	}
	return orm_value_get(sc->e, sc->m, rec, f);
}

static int sort_cmp(const void *pa, const void *pb, void *arg)
{
	struct sort_ctx *sc = arg;
	json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;

	for (int k = 0; k < sc->nkeys; k++) {
		const struct field_def *f = sc->keys[k].f;
		json_t *va = sort_value(sc, a, f), *vb = sort_value(sc, b, f);
		bool na = json_is_null(va) || (json_is_false(va) && f->type != F_BOOL);
		bool nb = json_is_null(vb) || (json_is_false(vb) && f->type != F_BOOL);
		int c = 0;

		if (na != nb) {
			/* PostgreSQL: NULLS LAST ascending, FIRST descending */
			c = na ? 1 : -1;
			if (sc->keys[k].desc)
				c = -c;
		} else if (!na) {
			if (json_is_string(va) && json_is_string(vb)) {
				c = strcasecmp(json_string_value(va), json_string_value(vb));
				if (!c)
					c = strcmp(json_string_value(va), json_string_value(vb));
			} else {
				c = values_cmp(va, vb);
			}
		}
		json_decref(va);
		json_decref(vb);
		if (c)
			return sc->keys[k].desc ? -c : c;
	}
	return (orm_rec_id(a) > orm_rec_id(b)) - (orm_rec_id(a) < orm_rec_id(b));
}

static int order_parse(struct emu *e, struct model *m, const char *spec,
		       struct sort_ctx *sc)
{
	char *copy = emu_strdup(spec), *save = NULL;
	int rc = 0;

	sc->nkeys = 0;
	for (char *term = strtok_r(copy, ",", &save); term;
	     term = strtok_r(NULL, ",", &save)) {
		char name[64] = "", dir[16] = "";
		const struct field_def *f;

		if (sscanf(term, " %63s %15s", name, dir) < 1)
			continue;
		f = orm_field_find(m, name);
		if (!f || f->type == F_O2M ||
		    (dir[0] && strcasecmp(dir, "asc") && strcasecmp(dir, "desc"))) {
			rc = emu_raise(e, "builtins.ValueError",
				       "Invalid \"order\" specified (%s). A valid \"order\" specification is a comma-separated list of valid field names (optionally followed by asc/desc for the direction)",
				       spec);
			break;
		}
		if (sc->nkeys < 8) {
			sc->keys[sc->nkeys].f = f;
			sc->keys[sc->nkeys].desc = strcasecmp(dir, "desc") == 0;
			sc->nkeys++;
		}
	}
	free(copy);
	return rc;
}

json_int_t orm_opt_int(const json_t *v, json_int_t dflt)
{
	if (json_is_integer(v))
		return json_integer_value(v);
	return dflt;
}

/*
 * The records matching domain, ordered, as a new array of borrowed-then-
 * increfed record objects.
 */
int orm_search(struct emu *e, const struct emu_call *c,
	       struct model *m, json_t *domain, json_t *offset,
	       json_t *limit, json_t *order, json_t **out)
{
	struct sort_ctx sc = {.e = e, .m = m};
	bool active_test = true;
	const char *key;
	json_t *rec, *all, *ctx_at;
	json_int_t off = orm_opt_int(offset, 0), lim = orm_opt_int(limit, 0);
	size_t n;
	json_t **v;

	*out = NULL;
	if (orm_check_access(e, c, m, ACL_READ) < 0 || domain_validate(e, m, domain) < 0)
		return -1;
	if (order && json_is_string(order) && json_string_length(order) > 0) {
		if (order_parse(e, m, json_string_value(order), &sc) < 0)
			return -1;
	} else if (order_parse(e, m, m->def->order, &sc) < 0) {
		return -1;
	}
	ctx_at = c->context ? json_object_get(c->context, "active_test") : NULL;
	if (ctx_at && !emu_truthy(ctx_at))
		active_test = false;
	if (!orm_field_find(m, "active") || (json_is_array(domain) && domain_mentions(domain, "active")))
		active_test = false;
	all = json_array();
	json_object_foreach(m->recs, key, rec) {
		if (active_test && !json_is_true(json_object_get(rec, "active")))
			continue;
		/* record rule: one sees one's own API keys only */
		if (m->idx == M_APIKEY && orm_rec_int(rec, "user_id") != c->uid)
			continue;
		if (json_is_array(domain) && !domain_match(e, m, rec, domain))
			continue;
		json_array_append(all, rec);
	}
	n = json_array_size(all);
	v = malloc((n ? n : 1) * sizeof(*v));
	if (!v)
		abort();
	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(all, i);
	qsort_r(v, n, sizeof(*v), sort_cmp, &sc);
	*out = json_array();
	for (size_t i = 0; i < n; i++) {
		if ((json_int_t)i < off)
			continue;
		/* limit 0 (or none) is no limit, as in Odoo */
		if (lim > 0 && (json_int_t)json_array_size(*out) >= lim)
			break;
		json_array_append(*out, v[i]);
	}
	free(v);
	json_decref(all);
	return 0;
}

json_t *orm_ids_of(json_t *recs)
{
	json_t *ids = json_array(), *r;
	size_t i;

	json_array_foreach(recs, i, r)
		json_array_append_new(ids, json_integer(orm_rec_id(r)));
	return ids;
}

/* What browse() makes of the ids a client sent. */
json_t *orm_ids_normalize(json_t *v)
{
	json_t *ids = json_array(), *x;
	size_t i;

	if (json_is_integer(v)) {
		json_array_append(ids, v);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			if (json_is_integer(x))
				json_array_append(ids, x);
	}
	return ids;
}

/* ---- read -------------------------------------------------------------- */

int orm_read(struct emu *e, const struct emu_call *c,
	     struct model *m, json_t *recs, json_t *fields,
	     bool classic, json_t **out)
{
	json_t *names = json_array(), *res, *r, *fv;
	size_t i, j;

	*out = NULL;
	if (fields && json_is_array(fields) && json_array_size(fields) > 0) {
		json_array_foreach(fields, i, fv) {
			char *rr;

			if (json_is_string(fv) && orm_field_find(m, json_string_value(fv))) {
				if (strcmp(json_string_value(fv), "id"))
					json_array_append(names, fv);
				continue;
			}
			rr = emu_repr(fv);
			emu_raise(e, "builtins.ValueError",
				  "Invalid field %s on model '%s'", rr, m->def->name);
			free(rr);
			json_decref(names);
			return -1;
		}
	} else {
		for (const struct field_def *f = m->def->fields; f->name; f++)
			if (strcmp(f->name, "id") && !(f->flags & FF_HIDDEN))
				json_array_append_new(names, json_string(f->name));
	}
	res = json_array();
	json_array_foreach(recs, i, r) {
		json_t *row = json_pack("{s:I}", "id", (json_int_t)orm_rec_id(r));

		json_array_foreach(names, j, fv) {
			const struct field_def *f = orm_field_find(m, json_string_value(fv));

			json_object_set_new(row, f->name, orm_value_read(e, m, r, f, classic));
		}
		json_array_append_new(res, row);
	}
	json_decref(names);
	(void)c;
	*out = res;
	return 0;
}


/* Every record of a model, in id order: for the control API. */
json_t *orm_all_by_id(struct emu *e, struct model *m)
{
	struct sort_ctx sc = {.e = e, .m = m, .nkeys = 0};
	json_t *all = json_array(), *r, *out;
	const char *key;
	size_t n, i;
	json_t **v;

	json_object_foreach(m->recs, key, r)
		json_array_append(all, r);
	n = json_array_size(all);
	v = malloc((n ? n : 1) * sizeof(*v));
	if (!v)
		abort();
	for (i = 0; i < n; i++)
		v[i] = json_array_get(all, i);
	qsort_r(v, n, sizeof(*v), sort_cmp, &sc);
	out = json_array();
	for (i = 0; i < n; i++)
		json_array_append(out, v[i]);
	free(v);
	json_decref(all);
	return out;
}
