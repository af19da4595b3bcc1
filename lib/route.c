/*
 * The route compiler: the "routes" array of the configuration into struct
 * relay_routes (contract in include/odoo_relay/route.h, the compiled form and
 * the rules in route_int.h). Keys, types, ranges, positions and the wording
 * of errors come from the schema toolkit (schema.h), as for config.c.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "odoo_relay/config.h"
#include "odoo_relay/error.h"
#include "odoo_relay/poll.h"
#include "odoo_relay/jsonptr.h"
#include "odoo_relay/route.h"
#include "odoo_relay/schema.h"
#include "route_int.h"

/* A generous bound that still catches a typo of a few zeros. */
#define PERMANENT_RETRIES_MAX 1000

/* ------------------------------------------------------------------ */
/* Freeing                                                             */

static void
tpl_free(struct tpl *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		free(t->parts[i].text);
	free(t->parts);
	t->parts = NULL;
	t->n = 0;
}

static void
specs_free(struct specs *ss)
{
	size_t i;

	for (i = 0; i < ss->n; i++) {
		struct spec *s = &ss->v[i];

		free(s->key);
		free(s->what);
		free(s->pointer);
		tpl_free(&s->tpl);
		json_decref(s->cnst);
		json_decref(s->lookup);
		json_decref(s->dflt);
		json_decref(s->find);
	}
	free(ss->v);
	ss->v = NULL;
	ss->n = 0;
}

static void
route_free(struct relay_route *r)
{
	size_t i;

	free(r->name);
	free(r->source);
	for (i = 0; i < r->n_topics; i++)
		free(r->topics[i]);
	free(r->topics);
	free(r->model);
	tpl_free(&r->xmlid);
	specs_free(&r->fields);
	for (i = 0; i < r->n_lines; i++) {
		free(r->lines[i].field);
		free(r->lines[i].pointer);
		free(r->lines[i].what);
		specs_free(&r->lines[i].specs);
	}
	free(r->lines);
	free(r->method);
	specs_free(&r->args);
	free(r->args_pointer);
	free(r->destination);
	json_decref(r->context);
	free(r->version_ptr);
	json_decref(r->then);
	json_decref(r->refuse);
	free(r->confirm_dest);
	json_decref(r->confirm_fields);
}

void
relay_routes_free(struct relay_routes *routes)
{
	size_t i;

	if (routes == NULL)
		return;
	for (i = 0; i < routes->n; i++)
		route_free(&routes->v[i]);
	free(routes->v);
	free(routes);
}

/* ------------------------------------------------------------------ */
/* Compiling                                                           */

/* The compile context: the config (for sources and destinations) and the
 * schema context, whose scope names the route: "routes[1] (name)". */
struct cc {
	const struct relay_config *cfg;
	struct relay_schema s;
};

static char *
xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

/* A JSON string without NUL bytes: every C string here comes from one. */
static int
is_cstring(const json_t *v)
{
	return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

/* An Odoo field or argument name: [A-Za-z_][A-Za-z0-9_]*, with "/id" if rel. */
static int
valid_field(const char *s, int rel)
{
	size_t i, n = strlen(s);

	if (rel && n > 3 && strcmp(s + n - 3, "/id") == 0)
		n -= 3;
	else if (rel && n > 4 && strcmp(s + n - 4, "/.id") == 0)
		n -= 4; /* a database id: what a "find" gives */
	if (n == 0 || !(s[0] == '_' || (s[0] >= 'A' && s[0] <= 'Z') ||
	                (s[0] >= 'a' && s[0] <= 'z')))
		return 0;
	for (i = 1; i < n; i++) {
		char ch = s[i];

		if (!(ch == '_' || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9')))
			return 0;
	}
	return 1;
}

/* Length of the Odoo field part of a key: "country_id/id" -> 10. */
static size_t
base_len(const char *key)
{
	const char *slash = strchr(key, '/');

	return slash ? (size_t)(slash - key) : strlen(key);
}

static int
pointer_check(struct cc *c, const json_t *v, const json_t *parent, const char *what)
{
	const char *p;

	if (!is_cstring(v))
		return relay_schema_fail_at(&c->s, v, parent, "%s: expected a JSON pointer string, got %s",
		            what, relay_schema_type_name(v));
	p = json_string_value(v);
	if (p[0] != '/')
		return relay_schema_fail_at(&c->s, v, NULL, "%s: a JSON pointer must start with \"/\"", what);
	if (!relay_jsonptr_valid(p))
		return relay_schema_fail_at(&c->s, v, NULL, "%s: bad JSON pointer (\"~\" must be followed by 0 or 1)", what);
	return 0;
}

static int
tpl_add(struct tpl *t, int is_ptr, const char *text, size_t len)
{
	struct tpl_part *parts;
	char *copy;

	copy = malloc(len + 1);
	if (copy == NULL)
		return ENOMEM;
	memcpy(copy, text, len);
	copy[len] = '\0';
	parts = realloc(t->parts, (t->n + 1) * sizeof(*parts));
	if (parts == NULL) {
		free(copy);
		return ENOMEM;
	}
	t->parts = parts;
	t->parts[t->n].is_ptr = is_ptr;
	t->parts[t->n].text = copy;
	t->parts[t->n].len = len;
	t->n++;
	return 0;
}

/* How a template is used: see the external-ID rules at the top of the file. */
enum {
	TPL_XID = 1,      /* an external-ID name: literals [A-Za-z0-9_-], pointers apart */
	TPL_NEED_PTR = 2, /* ... of a record: at least one pointer */
};

/* The literal byte ch at 1-based character pos, if a TPL_XID template refuses it. */
static int
xid_literal_check(struct cc *c, const json_t *v, const char *what, unsigned char ch,
                  size_t pos)
{
	if (route_xid_kept(ch) || ch == '-')
		return 0;
	if (ch > ' ' && ch < 0x7f)
		return relay_schema_fail_at(&c->s, v, NULL, "%s: \"%c\" at character %zu of the template cannot be in an "
		            "external ID (letters, digits, \"_\" and \"-\" only)", what, ch, pos);
	return relay_schema_fail_at(&c->s, v, NULL, "%s: byte 0x%02X at character %zu of the template cannot be in an "
	            "external ID (letters, digits, \"_\" and \"-\" only)", what, ch, pos);
}

/*
 * Parse template string v into parts; flags are TPL_*. Positions in the
 * texts are 1-based character offsets into the string (its value, after
 * JSON unescaping).
 */
static int
tpl_compile(struct cc *c, const json_t *v, const json_t *parent, const char *what,
            unsigned flags, struct tpl *t)
{
	const char *s, *close;
	char *lit = NULL;
	size_t n, i, litlen = 0, nptr = 0, prev_open = 0, prev_close = 0;
	int rc = 0;

	if (!is_cstring(v))
		return relay_schema_fail_at(&c->s, v, parent, "%s: expected a template string, got %s", what,
		            relay_schema_type_name(v));
	s = json_string_value(v);
	n = strlen(s);
	lit = malloc(n + 1);
	if (lit == NULL)
		return ENOMEM;
	for (i = 0; i < n; i++) {
		if ((flags & TPL_XID) && s[i] != '{') {
			rc = xid_literal_check(c, v, what, (unsigned char)s[i], i + 1);
			if (rc != 0)
				goto out;
		}
		if (s[i] == '}') {
			if (s[i + 1] != '}') {
				rc = relay_schema_fail_at(&c->s, v, NULL, "%s: unmatched \"}\" at character %zu of the template "
				          "(write \"}}\" for a brace)", what, i + 1);
				goto out;
			}
			lit[litlen++] = '}';
			i++;
			continue;
		}
		if (s[i] != '{') {
			lit[litlen++] = s[i];
			continue;
		}
		if (s[i + 1] == '{') {
			if (flags & TPL_XID) {
				rc = xid_literal_check(c, v, what, '{', i + 1);
				goto out;
			}
			lit[litlen++] = '{';
			i++;
			continue;
		}
		close = strchr(s + i + 1, '}');
		if (close == NULL) {
			rc = relay_schema_fail_at(&c->s, v, NULL, "%s: unclosed \"{\" at character %zu of the template", what,
			          i + 1);
			goto out;
		}
		if (s[i + 1] != '/') {
			rc = relay_schema_fail_at(&c->s, v, NULL, "%s: the pointer at character %zu of the template must "
			          "start with \"/\" (write \"{{\" for a brace)", what, i + 2);
			goto out;
		}
		if ((flags & TPL_XID) && nptr > 0 && prev_close + 1 == i) {
			rc = relay_schema_fail_at(&c->s, v, NULL, "%s: the pointers at characters %zu and %zu of the template "
			          "have nothing between them, so two different values could give "
			          "one external ID (put \"--\" between them)", what, prev_open + 1,
			          i + 1);
			goto out;
		}
		if (litlen > 0) {
			rc = tpl_add(t, 0, lit, litlen);
			if (rc != 0)
				goto out;
			litlen = 0;
		}
		rc = tpl_add(t, 1, s + i + 1, (size_t)(close - (s + i + 1)));
		if (rc != 0)
			goto out;
		if (!relay_jsonptr_valid(t->parts[t->n - 1].text)) {
			rc = relay_schema_fail_at(&c->s, v, NULL, "%s: bad JSON pointer at character %zu of the template "
			          "(\"~\" must be followed by 0 or 1)", what, i + 2);
			goto out;
		}
		nptr++;
		prev_open = i;
		prev_close = (size_t)(close - s);
		i = prev_close;
	}
	if (litlen > 0) {
		rc = tpl_add(t, 0, lit, litlen);
		if (rc != 0)
			goto out;
	}
	if ((flags & TPL_XID) && n == 0)
		rc = relay_schema_fail_at(&c->s, v, NULL, "%s: empty: an external ID needs a name", what);
	else if ((flags & TPL_NEED_PTR) && nptr == 0)
		rc = relay_schema_fail_at(&c->s, v, NULL, "%s: the template has no {/pointer}: every event would name "
		          "the same record", what);
out:
	free(lit);
	return rc;
}

/* How a spec's value is used, which limits what it may be. */
enum {
	SPEC_CELL = 1,        /* a load cell: constants must be scalars or null */
	SPEC_NO_EXTERNAL = 2, /* write values: no relation by external ID */
	SPEC_ID = 4,          /* a line's "id": always an external ID */
};

static int
cell_const_check(struct cc *c, const json_t *v, const json_t *parent, const char *what,
                 const char *which)
{
	if (json_is_object(v) || json_is_array(v))
		return relay_schema_fail_at(&c->s, v, NULL, "%s: %s is %s, but a load cell holds a scalar", what, which,
		            relay_schema_type_name(v));
	return 0;
}

static const char *const spec_keys[] = {
	"pointer", "template", "const", "lookup", "external", "optional", "default", "find", NULL
};

static int
spec_compile(struct cc *c, const json_t *v, const json_t *parent, const char *what,
             unsigned flags, struct spec *s)
{
	const json_t *p, *t, *k, *lk, *ext, *opt, *def, *val;
	const char *key;
	json_t *lkv;
	int rc, ext_b = 0, opt_b = 0;
	size_t mark;

	if (json_is_string(v)) {
		s->kind = SPEC_TEMPLATE;
		s->external = (flags & SPEC_ID) != 0;
		return tpl_compile(c, v, parent, what, s->external ? TPL_XID | TPL_NEED_PTR : 0,
		                   &s->tpl);
	}
	if (!json_is_object(v))
		return relay_schema_fail_at(&c->s, v, parent, "%s: expected a string or an object with "
		            "pointer/template/const/lookup", what);
	mark = relay_schema_push(&c->s, what);
	rc = relay_schema_keys(&c->s, v, spec_keys, NULL);
	relay_schema_pop(&c->s, mark);
	if (rc != 0)
		return rc;
	if (json_object_get(v, "find") != NULL) {
		/* A relation found in Odoo at delivery time: a load cell only. */
		if (!(flags & SPEC_CELL) || (flags & SPEC_ID))
			return relay_schema_fail_at(&c->s, v, NULL, "%s: a find gives a load cell: "
			                            "use it in the fields or lines of an upsert", what);
		if (json_object_size(v) != 1 + (json_object_get(v, "optional") != NULL))
			return relay_schema_fail_at(&c->s, v, NULL, "%s: a find takes only "
			                            "\"optional\" beside it", what);
		mark = relay_schema_push(&c->s, what);
		rc = relay_schema_bool(&c->s, v, "optional", &s->optional);
		relay_schema_pop(&c->s, mark);
		if (rc != 0 || (rc = route_find_compile(&c->s, v, what, &s->find)) != 0)
			return rc;
		s->kind = SPEC_POINTER;
		s->pointer = strdup(json_string_value(json_object_get(s->find, "pointer")));
		return s->pointer == NULL ? ENOMEM : 0;
	}
	p = json_object_get(v, "pointer");
	t = json_object_get(v, "template");
	k = json_object_get(v, "const");
	lk = json_object_get(v, "lookup");
	ext = json_object_get(v, "external");
	opt = json_object_get(v, "optional");
	def = json_object_get(v, "default");
	if ((p != NULL) + (t != NULL) + (k != NULL) != 1) {
		if (lk != NULL && p == NULL && t == NULL && k == NULL)
			return relay_schema_fail_at(&c->s, v, NULL, "%s: a lookup needs a pointer or a template for its key",
			            what);
		return relay_schema_fail_at(&c->s, v, NULL, "%s: expected exactly one of pointer, template or const", what);
	}
	mark = relay_schema_push(&c->s, what);
	if ((rc = relay_schema_bool(&c->s, v, "external", &ext_b)) == 0)
		rc = relay_schema_bool(&c->s, v, "optional", &opt_b);
	relay_schema_pop(&c->s, mark);
	if (rc != 0)
		return rc;
	s->external = ext_b || (flags & SPEC_ID) != 0;
	s->optional = opt_b;
	if (k != NULL && (lk != NULL || ext != NULL || opt != NULL || def != NULL))
		return relay_schema_fail_at(&c->s, v, NULL, "%s: a const takes no lookup, external, optional or default",
		            what);
	if (opt != NULL && def != NULL)
		return relay_schema_fail_at(&c->s, v, NULL, "%s: optional and default exclude each other", what);
	if (s->external && lk != NULL)
		return relay_schema_fail_at(&c->s, v, NULL, "%s: a lookup table gives full external IDs: drop \"external\"",
		            what);
	if ((flags & SPEC_ID) && k != NULL)
		return relay_schema_fail_at(&c->s, v, NULL, "%s: a line's id is an external ID: use a template or pointer",
		            what);
	if (s->external && (flags & SPEC_NO_EXTERNAL))
		return relay_schema_fail_at(&c->s, v, NULL, "%s: an external ID needs load's resolution: use an upsert "
		            "route", what);
	if (lk != NULL) {
		mark = relay_schema_push(&c->s, what);
		rc = relay_schema_object(&c->s, v, "lookup", 0, &lkv);
		relay_schema_pop(&c->s, mark);
		if (rc != 0)
			return rc;
		if (flags & SPEC_CELL) {
			json_object_foreach((json_t *)lk, key, val) {
				rc = cell_const_check(c, val, lk, what, "a lookup value");
				if (rc != 0)
					return rc;
			}
		}
		s->lookup = json_deep_copy(lk);
		if (s->lookup == NULL)
			return ENOMEM;
	}
	if (def != NULL) {
		if (flags & SPEC_CELL) {
			rc = cell_const_check(c, def, v, what, "the default");
			if (rc != 0)
				return rc;
		}
		s->dflt = json_deep_copy(def);
		if (s->dflt == NULL)
			return ENOMEM;
	}
	if (k != NULL) {
		if (flags & SPEC_CELL) {
			rc = cell_const_check(c, k, v, what, "the const");
			if (rc != 0)
				return rc;
		}
		s->kind = SPEC_CONST;
		s->cnst = json_deep_copy(k);
		return s->cnst == NULL ? ENOMEM : 0;
	}
	if (p != NULL) {
		char sub[160];

		snprintf(sub, sizeof(sub), "%s.pointer", what);
		rc = pointer_check(c, p, v, sub);
		if (rc != 0)
			return rc;
		s->kind = SPEC_POINTER;
		s->pointer = strdup(json_string_value(p));
		return s->pointer == NULL ? ENOMEM : 0;
	}
	s->kind = SPEC_TEMPLATE;
	{
		char sub[160];

		snprintf(sub, sizeof(sub), "%s.template", what);
		return tpl_compile(c, t, v, sub, !s->external ? 0 : (flags & SPEC_ID) ?
		                   TPL_XID | TPL_NEED_PTR : TPL_XID, &s->tpl);
	}
}

/* The kinds of object a specs map is. */
enum specs_kind { SPECS_FIELDS, SPECS_WRITE, SPECS_LINE, SPECS_ARGS, SPECS_BODY };

/* Compile the object obj (key -> value spec) found at prefix ("fields"). */
static int
specs_compile(struct cc *c, const json_t *obj, const json_t *parent, const char *prefix,
              enum specs_kind kind, unsigned flags, struct specs *ss)
{
	const char *key;
	const json_t *val;
	size_t i;
	int rc;

	if (!json_is_object(obj))
		return relay_schema_fail_at(&c->s, obj, parent, "%s: expected an object, got %s", prefix,
		            relay_schema_type_name(obj));
	if (json_object_size(obj) == 0 && kind != SPECS_ARGS)
		return relay_schema_fail_at(&c->s, obj, NULL, "%s: empty: name at least one field", prefix);
	ss->v = calloc(json_object_size(obj), sizeof(*ss->v));
	if (ss->v == NULL)
		return ENOMEM;
	json_object_foreach((json_t *)obj, key, val) {
		struct spec *s = &ss->v[ss->n];
		unsigned f = flags;

		ss->n++;
		s->key = strdup(key);
		s->what = xasprintf("%s.%s", prefix, key);
		if (s->key == NULL || s->what == NULL)
			return ENOMEM;
		switch (kind) {
		case SPECS_BODY:
			break; /* any JSON member name */
		case SPECS_ARGS:
			if (!valid_field(key, 0))
				return relay_schema_fail_at(&c->s, val, obj, "%s: not a valid argument name", s->what);
			break;
		case SPECS_WRITE:
			if (strchr(key, '/') != NULL)
				return relay_schema_fail_at(&c->s, val, obj, "%s: a relation by external ID needs "
				            "load's resolution: use an upsert route", s->what);
			/* fall through */
		case SPECS_FIELDS:
		case SPECS_LINE:
			if (kind == SPECS_LINE && strcmp(key, "id") == 0) {
				f |= SPEC_ID;
				break;
			}
			if (strcmp(key, "id") == 0)
				return relay_schema_fail_at(&c->s, val, obj, "%s: the id column comes from external_id",
				            s->what);
			if (!valid_field(key, 1))
				return relay_schema_fail_at(&c->s, val, obj, "%s: not a valid Odoo field name (a field "
				            "or \"field/id\")", s->what);
			/* "x" and "x/id" would write one field twice. */
			for (i = 0; i + 1 < ss->n; i++) {
				if (base_len(ss->v[i].key) == base_len(key) &&
				    strncmp(ss->v[i].key, key, base_len(key)) == 0)
					return relay_schema_fail_at(&c->s, val, obj, "%s: the field is set twice (also "
					            "as %s)", s->what, ss->v[i].key);
			}
			break;
		}
		rc = spec_compile(c, val, obj, s->what, f, s);
		if (rc != 0)
			return rc;
		int dbid_col = strlen(key) > 4 && strcmp(key + strlen(key) - 4, "/.id") == 0;
		int xid_col = strlen(key) > 3 && strcmp(key + strlen(key) - 3, "/id") == 0;
		if (kind != SPECS_BODY && ((s->find && !dbid_col && !xid_col) || (!s->find && dbid_col)))
			return relay_schema_fail_at(&c->s, val, obj, s->find ? "%s: a find gives a "
			            "database id or an external ID: name the column \"%.*s/.id\" or "
			            "\"%.*s/id\"" : "%s: a \"/.id\" column takes a database id: give "
			            "it a find", s->what, (int)base_len(key), key, (int)base_len(key),
			            key);
		if (s->find && xid_col &&
		    json_object_set_new(s->find, "as_xmlid", json_true()) != 0)
			return ENOMEM;
		if ((f & SPEC_CELL) && s->external && kind != SPECS_ARGS &&
		    !(f & SPEC_ID) && strchr(key, '/') == NULL)
			return relay_schema_fail_at(&c->s, val, obj, "%s: an external ID goes in a relation "
			            "column: name it \"%s/id\"", s->what, key);
	}
	return 0;
}

static const char *const line_keys[] = { "field", "pointer", "fields", "optional", NULL };

static int
line_compile(struct cc *c, const json_t *v, const json_t *parent, const char *what,
             struct line_spec *ls)
{
	const json_t *field, *ptr, *fields;
	char sub[160];
	size_t mark;
	int rc;

	ls->what = strdup(what);
	if (ls->what == NULL)
		return ENOMEM;
	if (!json_is_object(v))
		return relay_schema_fail_at(&c->s, v, parent, "%s: expected an object with field, pointer and "
		            "fields, got %s", what, relay_schema_type_name(v));
	mark = relay_schema_push(&c->s, what);
	rc = relay_schema_keys(&c->s, v, line_keys, NULL);
	relay_schema_pop(&c->s, mark);
	if (rc != 0)
		return rc;
	field = json_object_get(v, "field");
	ptr = json_object_get(v, "pointer");
	fields = json_object_get(v, "fields");
	if (field == NULL)
		return relay_schema_fail_at(&c->s, v, NULL, "%s: field is required (the one-to-many field, e.g. "
		            "\"order_line\")", what);
	if (!is_cstring(field) || !valid_field(json_string_value(field), 0))
		return relay_schema_fail_at(&c->s, field, v, "%s.field: expected an Odoo field name", what);
	if (ptr == NULL)
		return relay_schema_fail_at(&c->s, v, NULL, "%s: pointer is required (the array in the payload)", what);
	snprintf(sub, sizeof(sub), "%s.pointer", what);
	rc = pointer_check(c, ptr, v, sub);
	if (rc != 0)
		return rc;
	if (fields == NULL)
		return relay_schema_fail_at(&c->s, v, NULL, "%s: fields is required", what);
	mark = relay_schema_push(&c->s, what);
	rc = relay_schema_bool(&c->s, v, "optional", &ls->optional);
	relay_schema_pop(&c->s, mark);
	if (rc != 0)
		return rc;
	ls->field = strdup(json_string_value(field));
	ls->pointer = strdup(json_string_value(ptr));
	if (ls->field == NULL || ls->pointer == NULL)
		return ENOMEM;
	snprintf(sub, sizeof(sub), "%s.fields", what);
	return specs_compile(c, fields, v, sub, SPECS_LINE, SPEC_CELL, &ls->specs);
}

static int
lines_compile(struct cc *c, const json_t *v, const json_t *parent, struct relay_route *r)
{
	size_t i, n;
	int rc;

	if (json_is_object(v))
		n = 1;
	else if (json_is_array(v) && json_array_size(v) > 0)
		n = json_array_size(v);
	else
		return relay_schema_fail_at(&c->s, v, parent, "lines: expected an object or a non-empty array of "
		            "objects, got %s", json_is_array(v) ? "an empty array" : relay_schema_type_name(v));
	r->lines = calloc(n, sizeof(*r->lines));
	if (r->lines == NULL)
		return ENOMEM;
	for (i = 0; i < n; i++) {
		char what[32];

		r->n_lines++;
		if (json_is_object(v)) {
			rc = line_compile(c, v, parent, "lines", &r->lines[i]);
		} else {
			snprintf(what, sizeof(what), "lines[%zu]", i);
			rc = line_compile(c, json_array_get(v, i), v, what, &r->lines[i]);
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int batch_compile(struct cc *c, const json_t *route, struct relay_route *r);
static int context_compile(struct cc *c, const json_t *route, struct relay_route *r);
static int version_compile(struct cc *c, const json_t *route, struct relay_route *r);

static const char *const op_names[] = {
	[RELAY_OP_UPSERT] = "upsert", [RELAY_OP_WRITE] = "write",
	[RELAY_OP_DELETE] = "delete", [RELAY_OP_CALL] = "call", [RELAY_OP_POST] = "post",
};

static const char *const common_keys[] = {
	"name", "source", "topics", "operation", "model", "destination", "backoff",
	"permanent_retries", "permanent_retry_delay_ms", "dead_lane", "context", NULL
};

/* The keys each operation takes beyond the common ones. */
static const char *const op_keys[][14] = {
	[RELAY_OP_UPSERT] = { "external_id", "fields", "lines", "owns", "create", "update", "batch",
	                      "supersede", "version", "then", "warnings", "refuse",
	                      "external_id_encoding", NULL },
	[RELAY_OP_WRITE] = { "external_id", "fields", "owns", "create", "update", "missing",
	                     "supersede", "version", "external_id_encoding", NULL },
	[RELAY_OP_DELETE] = { "external_id", "external_id_encoding", NULL },
	[RELAY_OP_CALL] = { "method", "args", NULL },
	[RELAY_OP_POST] = { NULL },
};

/* Every key of a route to an HTTP destination: none of the Odoo ones. */
static const char *const post_keys[] = {
	"name", "source", "topics", "operation", "destination", "backoff", "permanent_retries",
	"permanent_retry_delay_ms", "dead_lane", "fields", "body", "confirm", NULL
};

/* Whether route goes to a destination of kind http (its "destination", or
 * the only one configured); a bad name is destination_compile's to say. */
static int
route_is_http(const struct cc *c, const json_t *route)
{
	const json_t *v = json_object_get(route, "destination");
	const struct relay_destination_conf *d = NULL;

	if (json_is_string(v))
		d = relay_config_destination(c->cfg, json_string_value(v));
	else if (v == NULL && c->cfg->n_destinations == 1)
		d = &c->cfg->destinations[0];
	return d != NULL && d->kind == RELAY_DEST_HTTP;
}

/* A post route's body: "fields" (a JSON object built by the mapping
 * engine) or "body": "as_received". */
static int
post_compile(struct cc *c, const json_t *route, struct relay_route *r)
{
	static const struct relay_schema_enum bodies[] = {
		{ "mapped", 0 }, { "as_received", 1 }, { NULL, 0 },
	};
	const json_t *fields = json_object_get(route, "fields");
	int as = 0, rc;

	if ((rc = relay_schema_enum(&c->s, route, "body", 0, bodies, "body", &as)) != 0)
		return rc;
	r->body_as_received = as;
	if (as && fields != NULL)
		return relay_schema_fail_at(&c->s, fields, route, "fields: not allowed with \"body\": "
		                            "\"as_received\"");
	if (!as && fields == NULL)
		return relay_schema_fail_at(&c->s, route, NULL, "fields is required for post (or "
		                            "\"body\": \"as_received\")");
	if (fields == NULL)
		return 0;
	return specs_compile(c, fields, route, "fields", SPECS_BODY, SPEC_NO_EXTERNAL, &r->fields);
}

/* A post route's "confirm": true, or {"destination": <an Odoo
 * destination>, "fields": [names]}. Only for a source of kind odoo (the
 * record to read is the webhook's _model and _id); the destination defaults
 * to the only Odoo destination configured. */
static int
confirm_compile(struct cc *c, const json_t *route, struct relay_route *r)
{
	static const char *const keys[] = { "destination", "fields", NULL };
	const json_t *v = json_object_get(route, "confirm"), *f;
	const struct relay_source_conf *src;
	const struct relay_destination_conf *d = NULL;
	const char *name = NULL;
	json_t *fields = NULL;
	char q[96];
	size_t i, n_odoo = 0, mark;
	int on = 0, rc;

	if (!v)
		return 0;
	if (json_is_boolean(v)) {
		if ((rc = relay_schema_bool(&c->s, route, "confirm", &on)) != 0 || !on)
			return rc;
	} else if (json_is_object(v)) {
		mark = relay_schema_push(&c->s, "confirm");
		if ((rc = relay_schema_keys(&c->s, v, keys, NULL)) != 0 ||
		    (rc = relay_schema_string(&c->s, v, "destination", 0, &name)) != 0 ||
		    (rc = relay_schema_array(&c->s, v, "fields", 0, &fields)) != 0)
			return rc;
		json_array_foreach(fields, i, f) {
			if (!json_is_string(f) || !*json_string_value(f) ||
			    !route_valid_chars(json_string_value(f), "_"))
				return relay_schema_fail_at(&c->s, f, fields, "fields: expected Odoo field "
				                            "names (like \"email\")");
		}
		if (fields && json_array_size(fields) == 0)
			return relay_schema_fail_at(&c->s, fields, v, "fields: expected at least one "
			                            "field name");
		relay_schema_pop(&c->s, mark);
	} else {
		return relay_schema_fail_at(&c->s, v, route, "confirm: expected true, false or an "
		                            "object, got %s", relay_schema_type_name(v));
	}
	src = relay_config_source(c->cfg, r->source, strlen(r->source));
	if (!src || src->kind != RELAY_SOURCE_ODOO)
		return relay_schema_error(&c->s, -RELAY_ECONFIG, route, "confirm", 0,
		                          RELAY_SCHEMA_AT_KEY, "only for a source of kind odoo "
		                         "(it reads the record that _model and _id name)");
	if (name) {
		d = relay_config_destination(c->cfg, name);
		if (!d || d->kind != RELAY_DEST_ODOO)
			return relay_schema_fail_at(&c->s, json_object_get(v, "destination"), v,
			                            "confirm.destination: no Odoo destination is named %s",
			                            relay_schema_quote(q, sizeof(q), name));
	} else {
		for (i = 0; i < c->cfg->n_destinations; i++)
			if (c->cfg->destinations[i].kind == RELAY_DEST_ODOO) {
				d = &c->cfg->destinations[i];
				n_odoo++;
			}
		if (n_odoo != 1)
			return relay_schema_error(&c->s, -RELAY_ECONFIG, route, "confirm", 0,
			                          RELAY_SCHEMA_AT_KEY, "%s; name the one to read "
			                         "with {\"destination\": ...}",
			                            n_odoo ? "several Odoo destinations are configured"
			                                   : "no Odoo destination is configured");
	}
	if (!(r->confirm_dest = strdup(d->name)))
		return relay_schema_oom(&c->s);
	r->confirm_fields = fields ? json_deep_copy(fields) : NULL;
	if (fields && !r->confirm_fields)
		return relay_schema_oom(&c->s);
	return 0;
}

static int
owned(const json_t *owns, const char *key)
{
	size_t i, n = base_len(key);
	const char *o;

	for (i = 0; i < json_array_size(owns); i++) {
		o = json_string_value(json_array_get(owns, i));
		if (strlen(o) == n && strncmp(o, key, n) == 0)
			return 1;
	}
	return 0;
}

/* "owns" restricts what the route writes: check every field against it. */
static int
owns_check(struct cc *c, const json_t *route, struct relay_route *r)
{
	const json_t *owns = json_object_get(route, "owns"), *fields, *lines;
	size_t i;

	if (owns == NULL)
		return 0;
	if (!json_is_array(owns))
		return relay_schema_fail_at(&c->s, owns, route, "owns: expected an array of field names, got %s",
		            relay_schema_type_name(owns));
	for (i = 0; i < json_array_size(owns); i++) {
		const json_t *o = json_array_get(owns, i);

		if (!is_cstring(o) || !valid_field(json_string_value(o), 0))
			return relay_schema_fail_at(&c->s, o, owns, "owns[%zu]: expected an Odoo field name", i);
	}
	fields = json_object_get(route, "fields");
	for (i = 0; i < r->fields.n; i++) {
		if (!owned(owns, r->fields.v[i].key))
			return relay_schema_fail_at(&c->s, json_object_get(fields, r->fields.v[i].key), fields,
			            "%s: the field is not in owns: this route is not its source of "
			            "truth", r->fields.v[i].what);
	}
	lines = json_object_get(route, "lines");
	for (i = 0; i < r->n_lines; i++) {
		if (!owned(owns, r->lines[i].field))
			return relay_schema_fail_at(&c->s, json_is_array(lines) ? json_array_get(lines, i) : lines, NULL,
			            "%s.field: %s is not in owns: this route is not its source of "
			            "truth", r->lines[i].what, r->lines[i].field);
	}
	return 0;
}

/* One owner per field: a field this route writes into Odoo must not be one
 * a poll source of the same destination and model sends back out, or each
 * write would come back as a change (an echo). */
static int
echo_one(struct cc *c, const json_t *at, const json_t *parent, const char *what,
         const struct relay_route *r, const char *field)
{
	unsigned line = 0, column = 0;
	const char *src = relay_poll_owner(c->cfg, r->destination, r->model, field, &line, &column);

	if (!src)
		return 0;
	return relay_schema_fail_at(&c->s, at, parent,
	            "%s: %.*s of %s is also sent out of Odoo by poll source \"%s\" (its fields, "
	            "line %u, column %u): one owner per field, or each write comes back as an "
	            "echo", what, (int)base_len(field), field, r->model, src, line, column);
}

static int
echo_check(struct cc *c, const json_t *route, const struct relay_route *r)
{
	const json_t *owns = json_object_get(route, "owns"), *fields, *lines;
	char what[96];
	size_t i;
	int rc;

	if (json_is_array(owns)) {
		for (i = 0; i < json_array_size(owns); i++) {
			snprintf(what, sizeof(what), "owns[%zu]", i);
			if ((rc = echo_one(c, json_array_get(owns, i), owns, what, r,
			                   json_string_value(json_array_get(owns, i)))) != 0)
				return rc;
		}
		return 0;
	}
	fields = json_object_get(route, "fields");
	for (i = 0; i < r->fields.n; i++)
		if ((rc = echo_one(c, json_object_get(fields, r->fields.v[i].key), fields,
		                   r->fields.v[i].what, r, r->fields.v[i].key)) != 0)
			return rc;
	lines = json_object_get(route, "lines");
	for (i = 0; i < r->n_lines; i++)
		if ((rc = echo_one(c, json_is_array(lines) ? json_array_get(lines, i) : lines, NULL,
		                   r->lines[i].what, r, r->lines[i].field)) != 0)
			return rc;
	return 0;
}

static int
topics_compile(struct cc *c, const json_t *route, struct relay_route *r)
{
	const json_t *topics = json_object_get(route, "topics");
	size_t i;

	if (topics == NULL) {
		r->topics = calloc(1, sizeof(*r->topics));
		if (r->topics == NULL)
			return ENOMEM;
		r->topics[0] = strdup("*");
		if (r->topics[0] == NULL)
			return ENOMEM;
		r->n_topics = 1;
		return 0;
	}
	if (!json_is_array(topics) || json_array_size(topics) == 0)
		return relay_schema_fail_at(&c->s, topics, route, "topics: expected a non-empty array of "
		            "patterns, got %s", json_is_array(topics) ? "an empty array"
		            : relay_schema_type_name(topics));
	r->topics = calloc(json_array_size(topics), sizeof(*r->topics));
	if (r->topics == NULL)
		return ENOMEM;
	for (i = 0; i < json_array_size(topics); i++) {
		const json_t *t = json_array_get(topics, i);

		if (!is_cstring(t) || json_string_length(t) == 0)
			return relay_schema_fail_at(&c->s, t, topics, "topics[%zu]: expected a pattern string", i);
		r->topics[i] = strdup(json_string_value(t));
		if (r->topics[i] == NULL)
			return ENOMEM;
		r->n_topics++;
	}
	return 0;
}

static int
call_compile(struct cc *c, const json_t *route, struct relay_route *r)
{
	const json_t *args = json_object_get(route, "args"), *mv;
	const char *method = NULL;
	int rc;

	if (json_object_get(route, "method") == NULL)
		return relay_schema_fail_at(&c->s, route, NULL, "method is required for a call");
	rc = relay_schema_string(&c->s, route, "method", 1, &method);
	if (rc != 0)
		return rc;
	mv = json_object_get(route, "method");
	if (method[0] == '_')
		return relay_schema_fail_at(&c->s, mv, NULL, "method: %s is private (leading \"_\"): Odoo refuses to call "
		            "it remotely", method);
	if (!valid_field(method, 0))
		return relay_schema_fail_at(&c->s, mv, NULL, "method: not a valid method name");
	r->method = strdup(method);
	if (r->method == NULL)
		return ENOMEM;
	if (args == NULL)
		return 0;
	/* {"pointer": "/x"} is the payload part as is; {"pointer": {...}} an argument. */
	if (json_is_object(args) && json_object_size(args) == 1 &&
	    json_is_string(json_object_get(args, "pointer"))) {
		rc = pointer_check(c, json_object_get(args, "pointer"), args, "args.pointer");
		if (rc != 0)
			return rc;
		r->args_pointer = strdup(json_string_value(json_object_get(args, "pointer")));
		return r->args_pointer == NULL ? ENOMEM : 0;
	}
	return specs_compile(c, args, route, "args", SPECS_ARGS, 0, &r->args);
}

/* What upsert and write routes share: flags, fields, lines, owns. */
static int
record_compile(struct cc *c, const json_t *route, struct relay_route *r)
{
	const json_t *v, *fields;
	size_t i;
	int rc;

	static const struct relay_schema_enum missing[] = {
		{ "fail", 0 }, { "create", 1 }, { NULL, 0 },
	};

	r->may_create = r->may_update = 1;
	if ((rc = relay_schema_bool(&c->s, route, "create", &r->may_create)) != 0 ||
	    (rc = relay_schema_bool(&c->s, route, "update", &r->may_update)) != 0)
		return rc;
	if (!r->may_create && !r->may_update)
		return relay_schema_fail_at(&c->s, route, NULL, "create and update are both false: the route could "
		            "do nothing");
	v = json_object_get(route, "missing");
	if (v != NULL) {
		rc = relay_schema_enum(&c->s, route, "missing", 0, missing, "policy", &r->missing_create);
		if (rc != 0)
			return rc;
		if (r->missing_create && !r->may_create)
			return relay_schema_fail_at(&c->s, v, NULL, "missing: \"create\" contradicts \"create\": false");
	}
	fields = json_object_get(route, "fields");
	if (fields == NULL)
		return relay_schema_fail_at(&c->s, route, NULL, "fields is required for %s", op_names[r->op]);
	if (r->op == RELAY_OP_UPSERT)
		rc = specs_compile(c, fields, route, "fields", SPECS_FIELDS, SPEC_CELL, &r->fields);
	else
		rc = specs_compile(c, fields, route, "fields", SPECS_WRITE,
		                   SPEC_NO_EXTERNAL | (r->missing_create ? SPEC_CELL : 0),
		                   &r->fields);
	if (rc != 0)
		return rc;
	v = json_object_get(route, "lines");
	if (v != NULL) {
		rc = lines_compile(c, v, route, r);
		if (rc != 0)
			return rc;
	}
	for (i = 0; i < r->n_lines; i++) {
		const json_t *line = json_is_array(v) ? json_array_get(v, i) : v;
		size_t j;

		for (j = 0; j < r->lines[i].specs.n; j++) {
			if (strcmp(r->lines[i].specs.v[j].key, "id") == 0)
				break;
		}
		/* load() matches sub-rows by their own external ID only. */
		if (j == r->lines[i].specs.n)
			return relay_schema_fail_at(&c->s, json_object_get(line, "fields"), NULL, "%s.fields: \"id\" is "
			            "required: without an external ID of its own each line is created "
			            "again every time the record is loaded (e.g. \"id\": "
			            "\"line_{/id}\")", r->lines[i].what);
	}
	for (i = 0; i < r->n_lines; i++) {
		size_t j, n_base = strlen(r->lines[i].field);

		for (j = 0; j < r->fields.n; j++) {
			if (base_len(r->fields.v[j].key) == n_base &&
			    strncmp(r->fields.v[j].key, r->lines[i].field, n_base) == 0)
				return relay_schema_fail_at(&c->s, json_object_get(fields, r->fields.v[j].key), fields,
				            "%s: %s is also in lines", r->fields.v[j].what,
				            r->lines[i].field);
		}
		for (j = 0; j < i; j++) {
			if (strcmp(r->lines[j].field, r->lines[i].field) == 0)
				return relay_schema_fail_at(&c->s, json_is_array(v) ? json_array_get(v, i) : v, NULL,
				            "%s.field: %s is in lines twice",
				            r->lines[i].what, r->lines[i].field);
		}
	}
	return owns_check(c, route, r);
}

/*
 * The route's destination: its "destination", else the only one configured,
 * else none (events stored, not delivered). Sets r->destination and the
 * backoff defaults the route's own block applies over.
 */
static int
destination_compile(struct cc *c, const json_t *route, struct relay_route *r)
{
	const struct relay_destination_conf *d = NULL;
	const char *name = NULL;
	char q[96];
	int rc;

	if ((rc = relay_schema_string(&c->s, route, "destination", 0, &name)) != 0)
		return rc;
	if (name != NULL) {
		d = relay_config_destination(c->cfg, name);
		if (d == NULL)
			return relay_schema_fail(&c->s, route, "destination", "no destination is named %s",
			                         relay_schema_quote(q, sizeof(q), name));
	} else if (c->cfg->n_destinations == 1) {
		d = &c->cfg->destinations[0];
	} else if (c->cfg->n_destinations > 1) {
		return relay_schema_fail(&c->s, route, NULL, "missing required key \"destination\" "
		                         "(%zu destinations are configured)", c->cfg->n_destinations);
	}
	r->backoff = d != NULL ? d->backoff : c->cfg->delivery.backoff;
	if (d != NULL && (r->destination = strdup(d->name)) == NULL)
		return ENOMEM;
	return 0;
}

static int
route_compile(struct cc *c, const json_t *route, const json_t *all, size_t idx,
              struct relay_route *r)
{
	static const struct relay_schema_enum ops[] = {
		{ "upsert", RELAY_OP_UPSERT }, { "write", RELAY_OP_WRITE },
		{ "delete", RELAY_OP_DELETE }, { "call", RELAY_OP_CALL }, { "post", RELAY_OP_POST },
		{ NULL, 0 },
	};
	static const struct relay_schema_enum dead_lanes[] = {
		{ "continue", RELAY_LANE_CONTINUE }, { "hold", RELAY_LANE_HOLD }, { NULL, 0 },
	};
	const char *known[sizeof(common_keys) / sizeof(common_keys[0]) +
	                  sizeof(op_keys[0]) / sizeof(op_keys[0][0])];
	const json_t *v;
	const char *s = NULL;
	char note[32];
	size_t i, k;
	int64_t n;
	int rc, op = RELAY_OP_UPSERT, dead = RELAY_LANE_CONTINUE, http;

	relay_schema_scope(&c->s, "routes[%zu]", idx);
	if (!json_is_object(route))
		return relay_schema_fail_at(&c->s, route, all, "expected an object, got %s",
		                            relay_schema_type_name(route));
	r->permanent_retry_delay_ms = 60000;

	rc = relay_schema_string(&c->s, route, "name", 1, &s);
	if (rc != 0)
		return rc;
	v = json_object_get(route, "name");
	if (!relay_schema_name_ok(s))
		return relay_schema_fail_at(&c->s, v, NULL, "name: expected 1 to %d of [A-Za-z0-9_.-]",
		                            RELAY_SCHEMA_NAME_MAX);
	r->name = strdup(s);
	if (r->name == NULL)
		return ENOMEM;
	relay_schema_scope(&c->s, "routes[%zu] (%s)", idx, r->name);
	for (i = 0; i < idx; i++) {
		if (strcmp(json_string_value(json_object_get(json_array_get(all, i), "name")),
		           s) == 0)
			return relay_schema_fail_at(&c->s, v, NULL, "name: routes[%zu] has the same name", i);
	}

	http = route_is_http(c, route);
	op = http ? RELAY_OP_POST : RELAY_OP_UPSERT;
	rc = relay_schema_enum(&c->s, route, "operation", !http, ops, "operation", &op);
	if (rc != 0)
		return rc;
	if (http && op != RELAY_OP_POST)
		return relay_schema_fail_at(&c->s, json_object_get(route, "operation"), NULL,
		                            "operation: the destination is of kind http: its routes "
		                            "take \"post\"");
	if (!http && op == RELAY_OP_POST)
		return relay_schema_fail_at(&c->s, json_object_get(route, "operation"), NULL,
		                            "operation: \"post\" needs a destination of kind http");
	r->op = (enum relay_op)op;
	k = 0;
	if (r->op == RELAY_OP_POST) {
		for (; post_keys[k] != NULL; k++)
			known[k] = post_keys[k];
	} else {
		for (; common_keys[k] != NULL; k++)
			known[k] = common_keys[k];
	}
	for (i = 0; op_keys[r->op][i] != NULL; i++)
		known[k++] = op_keys[r->op][i];
	known[k] = NULL;
	snprintf(note, sizeof(note), "for operation %s", op_names[r->op]);
	rc = relay_schema_keys(&c->s, route, known, note);
	if (rc != 0)
		return rc;

	rc = relay_schema_string(&c->s, route, "source", 1, &s);
	if (rc != 0)
		return rc;
	if (relay_config_source(c->cfg, s, strlen(s)) == NULL)
		return relay_schema_fail_at(&c->s, json_object_get(route, "source"), NULL,
		                            "source: no source is named \"%s\"", s);
	r->source = strdup(s);
	if (r->source == NULL)
		return ENOMEM;
	rc = topics_compile(c, route, r);
	if (rc != 0)
		return rc;
	s = NULL;
	rc = relay_schema_string(&c->s, route, "model", r->op != RELAY_OP_POST, &s);
	if (rc != 0)
		return rc;
	if (s == NULL)
		s = ""; /* post: no model */
	if (!route_valid_chars(s, "_.") || s[0] == '.')
		return relay_schema_fail_at(&c->s, json_object_get(route, "model"), NULL,
		                            "model: not a model name (like \"res.partner\")");
	r->model = strdup(s);
	if (r->model == NULL)
		return ENOMEM;

	if (r->op != RELAY_OP_CALL && r->op != RELAY_OP_POST) {
		v = json_object_get(route, "external_id");
		if (v == NULL)
			return relay_schema_fail_at(&c->s, route, NULL, "external_id is required for %s",
			                            op_names[r->op]);
		rc = tpl_compile(c, v, route, "external_id", TPL_XID | TPL_NEED_PTR, &r->xmlid);
		if (rc != 0)
			return rc;
		/* How values become names: "escaped" (the injective rule), or
		 * "legacy", the lossy rule of releases before 0.2, for routes
		 * whose records in Odoo were named by it. */
		static const struct relay_schema_enum encodings[] = {
			{ "escaped", 0 }, { "legacy", 1 }, { NULL, 0 },
		};
		rc = relay_schema_enum(&c->s, route, "external_id_encoding", 0, encodings,
		                       "external_id_encoding", &r->xid_legacy);
		if (rc != 0)
			return rc;
	}

	switch (r->op) {
	case RELAY_OP_UPSERT:
	case RELAY_OP_WRITE:
		rc = record_compile(c, route, r);
		if (rc != 0)
			return rc;
		break;
	case RELAY_OP_CALL:
		rc = call_compile(c, route, r);
		if (rc != 0)
			return rc;
		break;
	case RELAY_OP_DELETE:
		break;
	case RELAY_OP_POST:
		rc = post_compile(c, route, r);
		if (rc != 0)
			return rc;
		break;
	}

	if ((rc = destination_compile(c, route, r)) != 0 ||
	    ((r->op == RELAY_OP_UPSERT || r->op == RELAY_OP_WRITE) &&
	     (rc = echo_check(c, route, r)) != 0) ||
	    (rc = relay_config_parse_backoff(&c->s, route, &r->backoff)) != 0)
		return rc;
	n = 0;
	rc = relay_schema_int(&c->s, route, "permanent_retries", 0, PERMANENT_RETRIES_MAX, &n);
	if (rc != 0)
		return rc;
	r->permanent_retries = (unsigned)n;
	rc = relay_schema_int(&c->s, route, "permanent_retry_delay_ms", 1, INT64_MAX,
	                      &r->permanent_retry_delay_ms);
	if (rc != 0)
		return rc;
	rc = relay_schema_enum(&c->s, route, "dead_lane", 0, dead_lanes, "policy", &dead);
	r->dead_lane = (enum relay_lane_policy)dead;
	if (rc != 0)
		return rc;
	if ((rc = batch_compile(c, route, r)) != 0)
		return rc;
	if ((rc = relay_schema_bool(&c->s, route, "supersede", &r->supersede)) != 0)
		return rc;
	if ((rc = version_compile(c, route, r)) != 0)
		return rc;
	if ((rc = route_order_compile(&c->s, route, r)) != 0)
		return rc;
	if (r->op == RELAY_OP_POST && (rc = confirm_compile(c, route, r)) != 0)
		return rc;
	return context_compile(c, route, r);
}

/* "version": the stale guard's pointer, "/updated_at" (an RFC 3339 time)
 * or {"pointer", "kind", "window_s"}; upsert and write only (the key is
 * refused elsewhere). */
static int
version_compile(struct cc *c, const json_t *route, struct relay_route *r)
{
	static const char *const keys[] = { "pointer", "kind", "window_s", NULL };
	static const struct relay_schema_enum kinds[] = {
		{ "rfc3339", RELAY_VERSION_RFC3339 }, { "number", RELAY_VERSION_NUMBER }, { NULL, 0 }
	};
	const json_t *v = json_object_get(route, "version"), *p = v;
	int kind = RELAY_VERSION_RFC3339;
	size_t mark;
	int rc;

	r->version_kind = RELAY_VERSION_NONE;
	r->version_window_s = RELAY_ROUTE_VERSION_WINDOW_S;
	if (!v)
		return 0;
	if (json_is_object(v)) {
		mark = relay_schema_push(&c->s, "version");
		if ((rc = relay_schema_keys(&c->s, v, keys, NULL)) != 0 ||
		    (rc = relay_schema_enum(&c->s, v, "kind", 0, kinds, "version kind", &kind)) != 0 ||
		    (rc = relay_schema_int(&c->s, v, "window_s", 1, RELAY_ROUTE_VERSION_WINDOW_S_MAX,
		                           &r->version_window_s)) != 0)
			return rc;
		if (!(p = json_object_get(v, "pointer")))
			return relay_schema_fail_missing(&c->s, v, "pointer");
		rc = pointer_check(c, p, v, "pointer");
		relay_schema_pop(&c->s, mark);
		if (rc != 0)
			return rc;
	} else if ((rc = pointer_check(c, v, route, "version")) != 0) {
		return rc;
	}
	if (!(r->version_ptr = strdup(json_string_value(p))))
		return relay_schema_oom(&c->s);
	r->version_kind = (enum relay_version_kind)kind;
	return 0;
}

/* "batch": {"max_rows", "max_wait_ms"}, upsert only (the key is refused
 * elsewhere). An upsert that may not both create and update looks its
 * record up first: it goes alone. */
static int
batch_compile(struct cc *c, const json_t *route, struct relay_route *r)
{
	static const char *const keys[] = { "max_rows", "max_wait_ms", NULL };
	json_t *b = NULL;
	int64_t rows = RELAY_ROUTE_BATCH_ROWS;
	size_t mark;
	int rc;

	r->batch_max_rows = 1;
	r->batch_max_wait_ms = RELAY_ROUTE_BATCH_WAIT_MS;
	if (r->op != RELAY_OP_UPSERT)
		return 0;
	if ((rc = relay_schema_object(&c->s, route, "batch", 0, &b)) != 0)
		return rc;
	if (b) {
		mark = relay_schema_push(&c->s, "batch");
		if ((rc = relay_schema_keys(&c->s, b, keys, NULL)) != 0 ||
		    (rc = relay_schema_int(&c->s, b, "max_rows", 1, RELAY_ROUTE_BATCH_ROWS_MAX,
		                           &rows)) != 0 ||
		    (rc = relay_schema_int(&c->s, b, "max_wait_ms", 0, 10000,
		                           &r->batch_max_wait_ms)) != 0)
			return rc;
		relay_schema_pop(&c->s, mark);
	}
	if (r->may_create && r->may_update)
		r->batch_max_rows = (unsigned)rows;
	return 0;
}

/* "context": an object given to Odoo with each of the route's calls. */
static int
context_compile(struct cc *c, const json_t *route, struct relay_route *r)
{
	json_t *ctx = NULL;
	int rc;

	if ((rc = relay_schema_object(&c->s, route, "context", 0, &ctx)) != 0 || !ctx)
		return rc;
	if (!(r->context = json_deep_copy(ctx)))
		return ENOMEM;
	return 0;
}

int
relay_routes_compile(const struct relay_config *cfg, struct relay_routes **out,
                     struct relay_config_error *err)
{
	struct relay_routes *rs;
	struct cc c;
	size_t i, n;
	int rc = 0;

	if (out == NULL)
		return -RELAY_EINVAL;
	*out = NULL;
	if (cfg == NULL)
		return -RELAY_EINVAL;
	c.cfg = cfg;
	relay_schema_init(&c.s, cfg->doc, cfg->path, err, RELAY_SCHEMA_PLACE_VALUE);
	rs = calloc(1, sizeof(*rs));
	if (rs == NULL)
		return ENOMEM;
	if (cfg->routes == NULL)
		goto done;
	if (!json_is_array(cfg->routes)) {
		rc = relay_schema_fail_at(&c.s, cfg->routes, NULL, "routes: expected an array, got %s",
		                          relay_schema_type_name(cfg->routes));
		goto fail;
	}
	n = json_array_size(cfg->routes);
	if (n > 0) {
		rs->v = calloc(n, sizeof(*rs->v));
		if (rs->v == NULL) {
			rc = ENOMEM;
			goto fail;
		}
	}
	for (i = 0; i < n; i++) {
		rs->n++;
		rc = route_compile(&c, json_array_get(cfg->routes, i), cfg->routes, i, &rs->v[i]);
		if (rc != 0)
			goto fail;
	}
done:
	*out = rs;
	return 0;
fail:
	relay_routes_free(rs);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Lookup                                                              */

const struct relay_route *
relay_routes_match(const struct relay_routes *routes, const char *source, const char *topic)
{
	size_t i, j;

	if (routes == NULL || source == NULL)
		return NULL;
	if (topic == NULL)
		topic = "";
	for (i = 0; i < routes->n; i++) {
		const struct relay_route *r = &routes->v[i];

		if (strcmp(r->source, source) != 0)
			continue;
		for (j = 0; j < r->n_topics; j++) {
			if (fnmatch(r->topics[j], topic, 0) == 0)
				return r;
		}
	}
	return NULL;
}

const struct relay_route *
relay_routes_find(const struct relay_routes *routes, const char *name)
{
	size_t i;

	if (routes == NULL || name == NULL)
		return NULL;
	for (i = 0; i < routes->n; i++) {
		if (strcmp(routes->v[i].name, name) == 0)
			return &routes->v[i];
	}
	return NULL;
}

size_t
relay_routes_count(const struct relay_routes *routes)
{
	return routes ? routes->n : 0;
}

const struct relay_route *
relay_routes_at(const struct relay_routes *routes, size_t i)
{
	return routes && i < routes->n ? &routes->v[i] : NULL;
}

const char *
relay_route_name(const struct relay_route *r)
{
	return r->name;
}

const char *
relay_route_model(const struct relay_route *r)
{
	return r->model;
}

enum relay_op
relay_route_op(const struct relay_route *r)
{
	return r->op;
}

void
relay_route_batch(const struct relay_route *r, unsigned *max_rows, int64_t *max_wait_ms)
{
	*max_rows = r->batch_max_rows ? r->batch_max_rows : 1;
	*max_wait_ms = r->batch_max_wait_ms;
}

const json_t *
relay_route_context(const struct relay_route *r)
{
	return r->context;
}

int
relay_route_body_as_received(const struct relay_route *r)
{
	return r->body_as_received;
}

const char *
relay_route_confirm(const struct relay_route *r, const json_t **fields)
{
	if (fields)
		*fields = r->confirm_fields;
	return r->confirm_dest;
}

int
relay_route_supersede(const struct relay_route *r)
{
	return r->supersede;
}

enum relay_version_kind
relay_route_version(const struct relay_route *r, const char **pointer, int64_t *window_s)
{
	if (pointer)
		*pointer = r->version_ptr;
	if (window_s)
		*window_s = r->version_window_s;
	return r->version_kind;
}

const struct relay_backoff_conf *
relay_route_backoff(const struct relay_route *r)
{
	return &r->backoff;
}

unsigned
relay_route_permanent_retries(const struct relay_route *r)
{
	return r->permanent_retries;
}

int64_t
relay_route_permanent_retry_delay_ms(const struct relay_route *r)
{
	return r->permanent_retry_delay_ms;
}

enum relay_lane_policy
relay_route_dead_lane(const struct relay_route *r)
{
	return r->dead_lane;
}

const char *
relay_route_destination(const struct relay_route *r)
{
	return r->destination;
}

