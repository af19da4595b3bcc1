/*
 * Routes and mapping: see include/odoo_relay/route.h.
 *
 * Rules this file adds to the schema in the header (odoo-relay.conf(5)
 * repeats them):
 *  - Templates: "{/pointer}" is replaced by the text of that scalar (strings
 *    as they are, numbers in decimal, booleans "true"/"false"); "{{" and "}}"
 *    are literal braces; a pointer cannot contain '}'. A JSON null in a
 *    template part counts as absent, so "optional" and "default" apply.
 *  - Load cells are strings: numbers in decimal (reals in their shortest
 *    round-trip form), booleans "1"/"0" (Odoo's boolean import converter
 *    reads both), JSON null "". An optional field that is absent is left
 *    out of the load call altogether (no column), so the sender does not
 *    clear what it did not send; inside "lines" its cell is "" because the
 *    columns are shared by every line.
 *  - External-ID templates (external_id, a line's "id", an "external"
 *    spec) encode each payload value with relay_xid_encode (route.h): bytes
 *    of [A-Za-z0-9_] stay, every other byte, '-' included, becomes '-' and
 *    two upper-case hex digits. So "a.b" is "a-2Eb" and "a_b" stays "a_b":
 *    one value, one record, and numeric ids or "cus_Nx8..." keep the names
 *    earlier versions gave them. The literal text of such a template is
 *    written as it is and may only hold [A-Za-z0-9_-]: no '.' (Odoo's
 *    import splits module from name on the first '.'), no space (Odoo
 *    refuses it), and nothing we would have to encode, so the literal part
 *    of a name stays readable. A value that renders to "" is a mapping
 *    failure naming its pointer: one name shared by every empty value would
 *    merge unrelated records. Names are never cut (at most 3 bytes per
 *    value byte): a cut would make two long values one record.
 *  - Two pointers of one external-ID template must have literal text
 *    between them (checked at compile time): "{/a}{/b}" gives "ab" for
 *    ("a", "b") and ("ab", ...). An encoded value never holds "--", so a
 *    literal holding "--" always splits the values back apart; any other
 *    literal, "{/a}_{/b}" say, is only unambiguous while the values cannot
 *    hold it ("x_y"+"z" and "x"+"y_z" are both "x_y_z"), as with numeric
 *    ids. odoo-relay.conf(5) says the same. The route's external_id and a
 *    line's "id" must have at least one pointer (else every event names one
 *    record); an "external" field spec need not (a fixed related record).
 *  - Write routes take plain field names only: a relation by external ID
 *    ("x/id", or an "external" spec) needs load's resolution, so such a route
 *    must be an upsert.
 *  - Inside "lines", the inner key "id" is the sub-record's external ID
 *    (module prefix prepended, column "order_line/id"), and it is required:
 *    without it Odoo's load() creates every line again each time the same
 *    order is loaded, so a resent order would double its lines.
 *  - "owns" names Odoo fields: "country_id" owns "country_id/id", and the
 *    field of a "lines" entry must be owned; the line's inner fields belong
 *    to the line model and are not checked.
 *  - Topic patterns are fnmatch(3) patterns without flags: '*' and '?' as
 *    documented, '[...]' classes too.
 *  - Payload values never go into error texts (they may be personal data):
 *    texts name paths and route keys only.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "odoo_relay/error.h"
#include "odoo_relay/jsonptr.h"
#include "odoo_relay/route.h"

#define ROUTE_NAME_MAX 64
/* A generous bound that still catches a typo of a few zeros. */
#define PERMANENT_RETRIES_MAX 1000

/* One part of a compiled template: literal text or a pointer. */
struct tpl_part {
	int is_ptr;
	char *text;        /* literal (braces unescaped) or the pointer */
	size_t len;
};

struct tpl {
	struct tpl_part *parts;
	size_t n;
};

enum spec_kind { SPEC_TEMPLATE, SPEC_POINTER, SPEC_CONST };

/* One compiled value spec: how one field or argument gets its value. */
struct spec {
	char *key;         /* column, field or argument name */
	char *what;        /* its place in the route for texts: "fields.email" */
	enum spec_kind kind;
	char *pointer;     /* SPEC_POINTER */
	struct tpl tpl;    /* SPEC_TEMPLATE */
	json_t *cnst;      /* SPEC_CONST */
	json_t *lookup;    /* table over the value, or NULL */
	json_t *dflt;      /* value when the path is absent, or NULL */
	int external;      /* the text is an external-ID name of ours */
	int optional;
};

struct specs {
	struct spec *v;
	size_t n;
};

struct line_spec {
	char *field;       /* the one-to-many field: "order_line" */
	char *pointer;     /* the array in the payload */
	char *what;        /* "lines" or "lines[1]" */
	int optional;
	struct specs specs;
};

struct relay_route {
	char *name;
	char *source;
	char **topics;
	size_t n_topics;
	enum relay_op op;
	char *model;
	struct tpl xmlid;
	struct specs fields;
	struct line_spec *lines;
	size_t n_lines;
	char *method;
	struct specs args;
	char *args_pointer;  /* call: "args": {"pointer": ...} */
	int may_create, may_update, missing_create;
	struct relay_backoff_conf backoff;
	unsigned permanent_retries;
	int64_t permanent_retry_delay_ms;
	enum relay_dead_lane dead_lane;
};

struct relay_routes {
	struct relay_route *v;
	size_t n;
};

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

/* The compile context: which route, for the texts. */
struct cc {
	const struct relay_config *cfg;
	struct relay_config_error *err;
	size_t idx;
	const char *name;  /* NULL until the name is known */
};

static int cerr(struct cc *c, const json_t *node, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
cerr(struct cc *c, const json_t *node, const char *fmt, ...)
{
	char text[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (c->err == NULL)
		return -RELAY_ECONFIG;
	if (c->name != NULL)
		return relay_config_error_set(c->err, c->cfg, node, "routes[%zu] (%s): %s",
		                              c->idx, c->name, text);
	return relay_config_error_set(c->err, c->cfg, node, "routes[%zu]: %s", c->idx, text);
}

/*
 * jansson shares one true, one false and one null value among all
 * documents, so they have no position of their own: point at the container.
 */
static const json_t *
at(const json_t *node, const json_t *parent)
{
	if (node == NULL || json_is_boolean(node) || json_is_null(node))
		return parent;
	return node;
}

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

static int
in_list(const char *key, const char *const *list)
{
	for (; *list != NULL; list++) {
		if (strcmp(key, *list) == 0)
			return 1;
	}
	return 0;
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

static int
valid_chars(const char *s, const char *extra)
{
	for (; *s; s++) {
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || strchr(extra, *s) != NULL))
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
		return cerr(c, at(v, parent), "%s: expected a JSON pointer string, got %s",
		            what, relay_config_type_name(v));
	p = json_string_value(v);
	if (p[0] != '/')
		return cerr(c, v, "%s: a JSON pointer must start with \"/\"", what);
	if (!relay_jsonptr_valid(p))
		return cerr(c, v, "%s: bad JSON pointer (\"~\" must be followed by 0 or 1)", what);
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

/* A byte an encoded external-ID value keeps as it is: [A-Za-z0-9_]. */
static int
xid_kept(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	       (ch >= '0' && ch <= '9') || ch == '_';
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
	if (xid_kept(ch) || ch == '-')
		return 0;
	if (ch > ' ' && ch < 0x7f)
		return cerr(c, v, "%s: \"%c\" at character %zu of the template cannot be in an "
		            "external ID (letters, digits, \"_\" and \"-\" only)", what, ch, pos);
	return cerr(c, v, "%s: byte 0x%02X at character %zu of the template cannot be in an "
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
		return cerr(c, at(v, parent), "%s: expected a template string, got %s", what,
		            relay_config_type_name(v));
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
				rc = cerr(c, v, "%s: unmatched \"}\" at character %zu of the template "
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
			rc = cerr(c, v, "%s: unclosed \"{\" at character %zu of the template", what,
			          i + 1);
			goto out;
		}
		if (s[i + 1] != '/') {
			rc = cerr(c, v, "%s: the pointer at character %zu of the template must "
			          "start with \"/\" (write \"{{\" for a brace)", what, i + 2);
			goto out;
		}
		if ((flags & TPL_XID) && nptr > 0 && prev_close + 1 == i) {
			rc = cerr(c, v, "%s: the pointers at characters %zu and %zu of the template "
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
			rc = cerr(c, v, "%s: bad JSON pointer at character %zu of the template "
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
		rc = cerr(c, v, "%s: empty: an external ID needs a name", what);
	else if ((flags & TPL_NEED_PTR) && nptr == 0)
		rc = cerr(c, v, "%s: the template has no {/pointer}: every event would name "
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
		return cerr(c, v, "%s: %s is %s, but a load cell holds a scalar", what, which,
		            relay_config_type_name(v));
	return 0;
}

static const char *const spec_keys[] = {
	"pointer", "template", "const", "lookup", "external", "optional", "default", NULL
};

static int
spec_compile(struct cc *c, const json_t *v, const json_t *parent, const char *what,
             unsigned flags, struct spec *s)
{
	const json_t *p, *t, *k, *lk, *ext, *opt, *def, *val;
	const char *key;
	int rc;

	if (json_is_string(v)) {
		s->kind = SPEC_TEMPLATE;
		s->external = (flags & SPEC_ID) != 0;
		return tpl_compile(c, v, parent, what, s->external ? TPL_XID | TPL_NEED_PTR : 0,
		                   &s->tpl);
	}
	if (!json_is_object(v))
		return cerr(c, at(v, parent), "%s: expected a string or an object with "
		            "pointer/template/const/lookup", what);
	json_object_foreach((json_t *)v, key, val) {
		if (!in_list(key, spec_keys))
			return cerr(c, at(val, v), "%s: unknown key \"%s\"", what, key);
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
			return cerr(c, v, "%s: a lookup needs a pointer or a template for its key",
			            what);
		return cerr(c, v, "%s: expected exactly one of pointer, template or const", what);
	}
	if (ext != NULL && !json_is_boolean(ext))
		return cerr(c, at(ext, v), "%s.external: expected a boolean, got %s", what,
		            relay_config_type_name(ext));
	if (opt != NULL && !json_is_boolean(opt))
		return cerr(c, at(opt, v), "%s.optional: expected a boolean, got %s", what,
		            relay_config_type_name(opt));
	s->external = json_is_true(ext) || (flags & SPEC_ID) != 0;
	s->optional = json_is_true(opt);
	if (k != NULL && (lk != NULL || ext != NULL || opt != NULL || def != NULL))
		return cerr(c, v, "%s: a const takes no lookup, external, optional or default",
		            what);
	if (opt != NULL && def != NULL)
		return cerr(c, v, "%s: optional and default exclude each other", what);
	if (s->external && lk != NULL)
		return cerr(c, v, "%s: a lookup table gives full external IDs: drop \"external\"",
		            what);
	if ((flags & SPEC_ID) && k != NULL)
		return cerr(c, v, "%s: a line's id is an external ID: use a template or pointer",
		            what);
	if (s->external && (flags & SPEC_NO_EXTERNAL))
		return cerr(c, v, "%s: an external ID needs load's resolution: use an upsert "
		            "route", what);
	if (lk != NULL) {
		if (!json_is_object(lk))
			return cerr(c, at(lk, v), "%s.lookup: expected an object, got %s", what,
			            relay_config_type_name(lk));
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
enum specs_kind { SPECS_FIELDS, SPECS_WRITE, SPECS_LINE, SPECS_ARGS };

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
		return cerr(c, at(obj, parent), "%s: expected an object, got %s", prefix,
		            relay_config_type_name(obj));
	if (json_object_size(obj) == 0 && kind != SPECS_ARGS)
		return cerr(c, obj, "%s: empty: name at least one field", prefix);
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
		case SPECS_ARGS:
			if (!valid_field(key, 0))
				return cerr(c, at(val, obj), "%s: not a valid argument name", s->what);
			break;
		case SPECS_WRITE:
			if (strchr(key, '/') != NULL)
				return cerr(c, at(val, obj), "%s: a relation by external ID needs "
				            "load's resolution: use an upsert route", s->what);
			/* fall through */
		case SPECS_FIELDS:
		case SPECS_LINE:
			if (kind == SPECS_LINE && strcmp(key, "id") == 0) {
				f |= SPEC_ID;
				break;
			}
			if (strcmp(key, "id") == 0)
				return cerr(c, at(val, obj), "%s: the id column comes from external_id",
				            s->what);
			if (!valid_field(key, 1))
				return cerr(c, at(val, obj), "%s: not a valid Odoo field name (a field "
				            "or \"field/id\")", s->what);
			/* "x" and "x/id" would write one field twice. */
			for (i = 0; i + 1 < ss->n; i++) {
				if (base_len(ss->v[i].key) == base_len(key) &&
				    strncmp(ss->v[i].key, key, base_len(key)) == 0)
					return cerr(c, at(val, obj), "%s: the field is set twice (also "
					            "as %s)", s->what, ss->v[i].key);
			}
			break;
		}
		rc = spec_compile(c, val, obj, s->what, f, s);
		if (rc != 0)
			return rc;
		if ((f & SPEC_CELL) && s->external && kind != SPECS_ARGS &&
		    !(f & SPEC_ID) && strchr(key, '/') == NULL)
			return cerr(c, at(val, obj), "%s: an external ID goes in a relation "
			            "column: name it \"%s/id\"", s->what, key);
	}
	return 0;
}

static const char *const line_keys[] = { "field", "pointer", "fields", "optional", NULL };

static int
line_compile(struct cc *c, const json_t *v, const json_t *parent, const char *what,
             struct line_spec *ls)
{
	const json_t *field, *ptr, *fields, *opt, *val;
	const char *key;
	char sub[160];
	int rc;

	ls->what = strdup(what);
	if (ls->what == NULL)
		return ENOMEM;
	if (!json_is_object(v))
		return cerr(c, at(v, parent), "%s: expected an object with field, pointer and "
		            "fields, got %s", what, relay_config_type_name(v));
	json_object_foreach((json_t *)v, key, val) {
		if (!in_list(key, line_keys))
			return cerr(c, at(val, v), "%s: unknown key \"%s\"", what, key);
	}
	field = json_object_get(v, "field");
	ptr = json_object_get(v, "pointer");
	fields = json_object_get(v, "fields");
	opt = json_object_get(v, "optional");
	if (field == NULL)
		return cerr(c, v, "%s: field is required (the one-to-many field, e.g. "
		            "\"order_line\")", what);
	if (!is_cstring(field) || !valid_field(json_string_value(field), 0))
		return cerr(c, at(field, v), "%s.field: expected an Odoo field name", what);
	if (ptr == NULL)
		return cerr(c, v, "%s: pointer is required (the array in the payload)", what);
	snprintf(sub, sizeof(sub), "%s.pointer", what);
	rc = pointer_check(c, ptr, v, sub);
	if (rc != 0)
		return rc;
	if (fields == NULL)
		return cerr(c, v, "%s: fields is required", what);
	if (opt != NULL && !json_is_boolean(opt))
		return cerr(c, at(opt, v), "%s.optional: expected a boolean, got %s", what,
		            relay_config_type_name(opt));
	ls->optional = json_is_true(opt);
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
		return cerr(c, at(v, parent), "lines: expected an object or a non-empty array of "
		            "objects, got %s", json_is_array(v) ? "an empty array" : relay_config_type_name(v));
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

static int
bool_opt(struct cc *c, const json_t *route, const char *key, int dflt, int *out)
{
	const json_t *v = json_object_get(route, key);

	*out = dflt;
	if (v == NULL)
		return 0;
	if (!json_is_boolean(v))
		return cerr(c, at(v, route), "%s: expected a boolean, got %s", key, relay_config_type_name(v));
	*out = json_is_true(v);
	return 0;
}

/* An integer in [min, max] at key of obj (what names it); absent keeps *out. */
static int
int_opt(struct cc *c, const json_t *obj, const char *key, const char *what, int64_t min,
        int64_t max, int64_t *out)
{
	const json_t *v = json_object_get(obj, key);

	if (v == NULL)
		return 0;
	if (!json_is_integer(v))
		return cerr(c, at(v, obj), "%s: expected an integer, got %s", what, relay_config_type_name(v));
	if (json_integer_value(v) < min || json_integer_value(v) > max)
		return cerr(c, v, "%s: %lld is out of range [%lld, %lld]", what,
		            (long long)json_integer_value(v), (long long)min, (long long)max);
	*out = json_integer_value(v);
	return 0;
}

static const char *const backoff_keys[] = {
	"base_ms", "cap_ms", "max_attempts", "max_age_s", NULL
};

static int
backoff_compile(struct cc *c, const json_t *v, const json_t *route, struct relay_route *r)
{
	const char *key;
	const json_t *val;
	int64_t base = r->backoff.base_ms, cap = r->backoff.cap_ms;
	int64_t attempts = r->backoff.max_attempts, age = r->backoff.max_age_s;
	int rc;

	if (!json_is_object(v))
		return cerr(c, at(v, route), "backoff: expected an object, got %s", relay_config_type_name(v));
	json_object_foreach((json_t *)v, key, val) {
		if (!in_list(key, backoff_keys))
			return cerr(c, at(val, v), "backoff: unknown key \"%s\"", key);
	}
	if ((rc = int_opt(c, v, "base_ms", "backoff.base_ms", 1, INT64_MAX, &base)) != 0 ||
	    (rc = int_opt(c, v, "cap_ms", "backoff.cap_ms", 1, INT64_MAX, &cap)) != 0 ||
	    (rc = int_opt(c, v, "max_attempts", "backoff.max_attempts", 1, UINT32_MAX,
	                  &attempts)) != 0 ||
	    (rc = int_opt(c, v, "max_age_s", "backoff.max_age_s", 1, INT64_MAX, &age)) != 0)
		return rc;
	if (base > cap)
		return cerr(c, v, "backoff: base_ms %lld is above cap_ms %lld", (long long)base,
		            (long long)cap);
	r->backoff.base_ms = base;
	r->backoff.cap_ms = cap;
	r->backoff.max_attempts = (unsigned)attempts;
	r->backoff.max_age_s = age;
	return 0;
}

static const char *const op_names[] = {
	[RELAY_OP_UPSERT] = "upsert", [RELAY_OP_WRITE] = "write",
	[RELAY_OP_DELETE] = "delete", [RELAY_OP_CALL] = "call",
};

static const char *const common_keys[] = {
	"name", "source", "topics", "operation", "model", "backoff", "permanent_retries",
	"permanent_retry_delay_ms", "dead_lane", NULL
};

/* The keys each operation takes beyond the common ones. */
static const char *const op_keys[][8] = {
	[RELAY_OP_UPSERT] = { "external_id", "fields", "lines", "owns", "create", "update", NULL },
	[RELAY_OP_WRITE] = { "external_id", "fields", "owns", "create", "update", "missing", NULL },
	[RELAY_OP_DELETE] = { "external_id", NULL },
	[RELAY_OP_CALL] = { "method", "args", NULL },
};

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
		return cerr(c, at(owns, route), "owns: expected an array of field names, got %s",
		            relay_config_type_name(owns));
	for (i = 0; i < json_array_size(owns); i++) {
		const json_t *o = json_array_get(owns, i);

		if (!is_cstring(o) || !valid_field(json_string_value(o), 0))
			return cerr(c, at(o, owns), "owns[%zu]: expected an Odoo field name", i);
	}
	fields = json_object_get(route, "fields");
	for (i = 0; i < r->fields.n; i++) {
		if (!owned(owns, r->fields.v[i].key))
			return cerr(c, at(json_object_get(fields, r->fields.v[i].key), fields),
			            "%s: the field is not in owns: this route is not its source of "
			            "truth", r->fields.v[i].what);
	}
	lines = json_object_get(route, "lines");
	for (i = 0; i < r->n_lines; i++) {
		if (!owned(owns, r->lines[i].field))
			return cerr(c, json_is_array(lines) ? json_array_get(lines, i) : lines,
			            "%s.field: %s is not in owns: this route is not its source of "
			            "truth", r->lines[i].what, r->lines[i].field);
	}
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
		return cerr(c, at(topics, route), "topics: expected a non-empty array of "
		            "patterns, got %s", json_is_array(topics) ? "an empty array"
		            : relay_config_type_name(topics));
	r->topics = calloc(json_array_size(topics), sizeof(*r->topics));
	if (r->topics == NULL)
		return ENOMEM;
	for (i = 0; i < json_array_size(topics); i++) {
		const json_t *t = json_array_get(topics, i);

		if (!is_cstring(t) || json_string_length(t) == 0)
			return cerr(c, at(t, topics), "topics[%zu]: expected a pattern string", i);
		r->topics[i] = strdup(json_string_value(t));
		if (r->topics[i] == NULL)
			return ENOMEM;
		r->n_topics++;
	}
	return 0;
}

/* A required non-empty string at key; *s borrowed from the config. */
static int
str_req(struct cc *c, const json_t *route, const char *key, const char *why,
        const char **s)
{
	const json_t *v = json_object_get(route, key);

	if (v == NULL)
		return cerr(c, route, "%s is required%s", key, why);
	if (!is_cstring(v) || json_string_length(v) == 0)
		return cerr(c, at(v, route), "%s: expected a non-empty string, got %s", key,
		            json_is_string(v) ? "\"\"" : relay_config_type_name(v));
	*s = json_string_value(v);
	return 0;
}

static int
call_compile(struct cc *c, const json_t *route, struct relay_route *r)
{
	const json_t *args = json_object_get(route, "args"), *mv;
	const char *method;
	int rc;

	rc = str_req(c, route, "method", " for a call", &method);
	if (rc != 0)
		return rc;
	mv = json_object_get(route, "method");
	if (method[0] == '_')
		return cerr(c, mv, "method: %s is private (leading \"_\"): Odoo refuses to call "
		            "it remotely", method);
	if (!valid_field(method, 0))
		return cerr(c, mv, "method: not a valid method name");
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

	if ((rc = bool_opt(c, route, "create", 1, &r->may_create)) != 0 ||
	    (rc = bool_opt(c, route, "update", 1, &r->may_update)) != 0)
		return rc;
	if (!r->may_create && !r->may_update)
		return cerr(c, route, "create and update are both false: the route could "
		            "do nothing");
	v = json_object_get(route, "missing");
	if (v != NULL) {
		if (!json_is_string(v) || (strcmp(json_string_value(v), "create") != 0 &&
		                           strcmp(json_string_value(v), "fail") != 0))
			return cerr(c, at(v, route), "missing: expected \"create\" or \"fail\"");
		r->missing_create = strcmp(json_string_value(v), "create") == 0;
		if (r->missing_create && !r->may_create)
			return cerr(c, v, "missing: \"create\" contradicts \"create\": false");
	}
	fields = json_object_get(route, "fields");
	if (fields == NULL)
		return cerr(c, route, "fields is required for %s", op_names[r->op]);
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
			return cerr(c, json_object_get(line, "fields"), "%s.fields: \"id\" is "
			            "required: without an external ID of its own each line is created "
			            "again every time the record is loaded (e.g. \"id\": "
			            "\"line_{/id}\")", r->lines[i].what);
	}
	for (i = 0; i < r->n_lines; i++) {
		size_t j, n_base = strlen(r->lines[i].field);

		for (j = 0; j < r->fields.n; j++) {
			if (base_len(r->fields.v[j].key) == n_base &&
			    strncmp(r->fields.v[j].key, r->lines[i].field, n_base) == 0)
				return cerr(c, at(json_object_get(fields, r->fields.v[j].key), fields),
				            "%s: %s is also in lines", r->fields.v[j].what,
				            r->lines[i].field);
		}
		for (j = 0; j < i; j++) {
			if (strcmp(r->lines[j].field, r->lines[i].field) == 0)
				return cerr(c, json_is_array(v) ? json_array_get(v, i) : v,
				            "%s.field: %s is in lines twice",
				            r->lines[i].what, r->lines[i].field);
		}
	}
	return owns_check(c, route, r);
}

static int
route_compile(struct cc *c, const json_t *route, const json_t *all, struct relay_route *r)
{
	const json_t *v, *val;
	const char *s, *key;
	size_t i;
	int64_t n;
	int rc;

	if (!json_is_object(route))
		return cerr(c, at(route, all), "expected an object, got %s", relay_config_type_name(route));
	r->backoff = c->cfg->delivery.backoff;
	r->permanent_retry_delay_ms = 60000;

	rc = str_req(c, route, "name", "", &s);
	if (rc != 0)
		return rc;
	v = json_object_get(route, "name");
	if (strlen(s) > ROUTE_NAME_MAX || !valid_chars(s, "_.-"))
		return cerr(c, v, "name: expected 1 to %d of [A-Za-z0-9_.-]", ROUTE_NAME_MAX);
	r->name = strdup(s);
	if (r->name == NULL)
		return ENOMEM;
	c->name = r->name;
	for (i = 0; i < c->idx; i++) {
		if (strcmp(json_string_value(json_object_get(json_array_get(all, i), "name")),
		           s) == 0)
			return cerr(c, v, "name: routes[%zu] has the same name", i);
	}

	rc = str_req(c, route, "operation", " (upsert, write, delete or call)", &s);
	if (rc != 0)
		return rc;
	for (i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++) {
		if (strcmp(s, op_names[i]) == 0)
			break;
	}
	if (i == sizeof(op_names) / sizeof(op_names[0]))
		return cerr(c, json_object_get(route, "operation"), "operation: unknown \"%s\" "
		            "(upsert, write, delete or call)", s);
	r->op = (enum relay_op)i;
	json_object_foreach((json_t *)route, key, val) {
		if (in_list(key, common_keys) || in_list(key, op_keys[r->op]))
			continue;
		return cerr(c, at(val, route), "unknown key \"%s\" for operation %s", key,
		            op_names[r->op]);
	}

	rc = str_req(c, route, "source", "", &s);
	if (rc != 0)
		return rc;
	if (relay_config_source(c->cfg, s, strlen(s)) == NULL)
		return cerr(c, json_object_get(route, "source"), "source: no source is named "
		            "\"%s\"", s);
	r->source = strdup(s);
	if (r->source == NULL)
		return ENOMEM;
	rc = topics_compile(c, route, r);
	if (rc != 0)
		return rc;
	rc = str_req(c, route, "model", "", &s);
	if (rc != 0)
		return rc;
	if (!valid_chars(s, "_.") || s[0] == '.')
		return cerr(c, json_object_get(route, "model"), "model: not a model name "
		            "(like \"res.partner\")");
	r->model = strdup(s);
	if (r->model == NULL)
		return ENOMEM;

	if (r->op != RELAY_OP_CALL) {
		v = json_object_get(route, "external_id");
		if (v == NULL)
			return cerr(c, route, "external_id is required for %s", op_names[r->op]);
		rc = tpl_compile(c, v, route, "external_id", TPL_XID | TPL_NEED_PTR, &r->xmlid);
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
	}

	v = json_object_get(route, "backoff");
	if (v != NULL) {
		rc = backoff_compile(c, v, route, r);
		if (rc != 0)
			return rc;
	}
	n = 0;
	rc = int_opt(c, route, "permanent_retries", "permanent_retries", 0,
	             PERMANENT_RETRIES_MAX, &n);
	if (rc != 0)
		return rc;
	r->permanent_retries = (unsigned)n;
	rc = int_opt(c, route, "permanent_retry_delay_ms", "permanent_retry_delay_ms", 1,
	             INT64_MAX, &r->permanent_retry_delay_ms);
	if (rc != 0)
		return rc;
	v = json_object_get(route, "dead_lane");
	if (v != NULL) {
		if (json_is_string(v) && strcmp(json_string_value(v), "continue") == 0)
			r->dead_lane = RELAY_DEAD_CONTINUE;
		else if (json_is_string(v) && strcmp(json_string_value(v), "hold") == 0)
			r->dead_lane = RELAY_DEAD_HOLD;
		else
			return cerr(c, at(v, route), "dead_lane: expected \"continue\" or \"hold\"");
	}
	return 0;
}

int
relay_routes_compile(const struct relay_config *cfg, struct relay_routes **out,
                     struct relay_config_error *err)
{
	struct relay_routes *rs;
	struct cc c = { cfg, err, 0, NULL };
	size_t i, n;
	int rc = 0;

	if (out == NULL)
		return -RELAY_EINVAL;
	*out = NULL;
	if (cfg == NULL)
		return -RELAY_EINVAL;
	rs = calloc(1, sizeof(*rs));
	if (rs == NULL)
		return ENOMEM;
	if (cfg->routes == NULL)
		goto done;
	if (!json_is_array(cfg->routes)) {
		rc = -RELAY_ECONFIG;
		if (err != NULL)
			relay_config_error_set(err, cfg, cfg->routes, "routes: expected an array, "
			                       "got %s", relay_config_type_name(cfg->routes));
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
		c.idx = i;
		c.name = NULL;
		rs->n++;
		rc = route_compile(&c, json_array_get(cfg->routes, i), cfg->routes, &rs->v[i]);
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

enum relay_dead_lane
relay_route_dead_lane(const struct relay_route *r)
{
	return r->dead_lane;
}

/* ------------------------------------------------------------------ */
/* Mapping                                                             */

/* The mapping context: the module prefix, where texts go, where we are. */
struct mctx {
	const char *module;
	char *why;
	size_t whysz;
	const char *base;     /* payload pointer of the current root ("" or "/items/2") */
	const char *missing;  /* the pointer found absent, for the EPATH text */
};

static int mfail(struct mctx *m, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
mfail(struct mctx *m, int rc, const char *fmt, ...)
{
	va_list ap;

	if (m->why != NULL && m->whysz > 0) {
		va_start(ap, fmt);
		vsnprintf(m->why, m->whysz, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static int
oom(struct mctx *m)
{
	return mfail(m, ENOMEM, "out of memory");
}

struct buf {
	char *p;
	size_t len, cap;
};

/* Room for n more bytes and a NUL; ENOMEM leaves b as it was. */
static int
buf_grow(struct buf *b, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (p == NULL)
			return ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	return 0;
}

static int
buf_add(struct buf *b, const char *s, size_t n)
{
	if (buf_grow(b, n) != 0)
		return ENOMEM;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

/*
 * The text of scalar v appended to b (strings as they are, numbers in
 * decimal, booleans "true"/"false"). -RELAY_EINVAL for anything else.
 */
static int
scalar_add(struct buf *b, const json_t *v, struct mctx *m, const char *what,
           const char *ptr)
{
	char text[64];
	int rc;

	if (json_is_string(v)) {
		if (strlen(json_string_value(v)) != json_string_length(v))
			return mfail(m, -RELAY_EINVAL, "%s: %s%s holds a NUL byte", what, m->base, ptr);
		rc = buf_add(b, json_string_value(v), json_string_length(v));
		return rc ? oom(m) : 0;
	}
	rc = relay_json_scalar_text(v, text, sizeof(text));
	if (rc != 0)
		return mfail(m, -RELAY_EINVAL, "%s: %s%s is %s, not text", what, m->base, ptr,
		             relay_config_type_name(v));
	rc = buf_add(b, text, strlen(text));
	return rc ? oom(m) : 0;
}

/*
 * The encoded form of the n bytes at s into dst, if dst is not NULL; its
 * length either way. The one copy of the rule relay_xid_encode documents.
 */
static size_t
xid_encode_into(char *dst, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (xid_kept(ch)) {
			if (dst != NULL)
				dst[o] = (char)ch;
			o++;
			continue;
		}
		if (dst != NULL) {
			dst[o] = '-';
			dst[o + 1] = hex[ch >> 4];
			dst[o + 2] = hex[ch & 0xf];
		}
		o += 3;
	}
	return o;
}

int
relay_xid_encode(const char *s, size_t n, char *out, size_t outsz)
{
	size_t len;

	if (s == NULL || n == 0) {
		if (out != NULL && outsz > 0)
			out[0] = '\0';
		return -RELAY_EINVAL;
	}
	len = xid_encode_into(NULL, s, n);
	if (out == NULL || len >= outsz) {
		if (out != NULL && outsz > 0)
			out[0] = '\0';
		return -RELAY_ETOOBIG;
	}
	xid_encode_into(out, s, n);
	out[len] = '\0';
	return 0;
}

/* The value of an upper-case hex digit, or -1. */
static int
hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int
relay_xid_decode(const char *s, size_t n, char *out, size_t outsz, size_t *outlen)
{
	size_t i, o = 0;
	int hi, lo, rc = 0;

	if (outlen != NULL)
		*outlen = 0;
	if (s == NULL || n == 0)
		return -RELAY_EINVAL;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (!xid_kept(ch)) {
			if (ch != '-' || n - i < 3) {
				rc = -RELAY_EINVAL;
				goto fail;
			}
			hi = hex_value(s[i + 1]);
			lo = hex_value(s[i + 2]);
			/* Only the escape of a byte that is not kept: "-41" for 'A'
			 * is no encoder's output, and accepting it would give one
			 * value two names. */
			if (hi < 0 || lo < 0 || xid_kept((unsigned char)(hi << 4 | lo))) {
				rc = -RELAY_EINVAL;
				goto fail;
			}
			ch = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		if (out == NULL || o + 1 >= outsz) {
			rc = -RELAY_ETOOBIG;
			goto fail;
		}
		out[o++] = (char)ch;
	}
	out[o] = '\0';
	if (outlen != NULL)
		*outlen = o;
	return 0;
fail:
	if (out != NULL && outsz > 0)
		out[0] = '\0';
	return rc;
}

/*
 * The encoded text of scalar v appended to b: the value part of an external
 * ID. A value that renders to "" is -RELAY_EINVAL naming its pointer.
 */
static int
xid_value_add(struct buf *b, const json_t *v, struct mctx *m, const char *what,
              const char *ptr)
{
	struct buf text = { NULL, 0, 0 };
	size_t len;
	int rc;

	rc = scalar_add(&text, v, m, what, ptr);
	if (rc != 0)
		goto out;
	if (text.len == 0) {
		rc = mfail(m, -RELAY_EINVAL, "%s: %s%s is empty: an external ID needs a value",
		           what, m->base, ptr);
		goto out;
	}
	len = xid_encode_into(NULL, text.p, text.len);
	if (buf_grow(b, len) != 0) {
		rc = oom(m);
		goto out;
	}
	xid_encode_into(b->p + b->len, text.p, text.len);
	b->len += len;
	b->p[b->len] = '\0';
out:
	free(text.p);
	return rc;
}

/*
 * Render t against root into *out (a JSON string). With xid, t is an
 * external-ID template: each pointer's value is encoded (xid_value_add).
 */
static int
tpl_render(const struct tpl *t, json_t *root, struct mctx *m, const char *what, int xid,
           json_t **out)
{
	struct buf b = { NULL, 0, 0 };
	size_t i;
	int rc = 0;

	if (buf_add(&b, "", 0) != 0)
		return oom(m);
	for (i = 0; i < t->n; i++) {
		const struct tpl_part *p = &t->parts[i];
		json_t *v;

		if (!p->is_ptr) {
			if (buf_add(&b, p->text, p->len) != 0) {
				rc = oom(m);
				goto out;
			}
			continue;
		}
		v = relay_jsonptr_get(root, p->text);
		if (v == NULL || json_is_null(v)) {
			m->missing = p->text;
			rc = -RELAY_EPATH;
			goto out;
		}
		if (xid)
			rc = xid_value_add(&b, v, m, what, p->text);
		else
			rc = scalar_add(&b, v, m, what, p->text);
		if (rc != 0)
			goto out;
	}
	*out = json_stringn(b.p, b.len);
	if (*out == NULL)
		rc = oom(m);
out:
	free(b.p);
	return rc;
}

/* The path was absent: the default, nothing (optional), or -RELAY_EPATH. */
static int
spec_absent(const struct spec *s, struct mctx *m, json_t **out)
{
	if (s->dflt != NULL) {
		*out = json_deep_copy(s->dflt);
		return *out ? 0 : oom(m);
	}
	if (s->optional)
		return 0;
	return mfail(m, -RELAY_EPATH, "missing %s%s for %s", m->base, m->missing, s->what);
}

/*
 * "module.name" for an already encoded name (a TPL_XID rendering or
 * xid_value_add): compile and encoding rules make it non-empty and keep it
 * within [A-Za-z0-9_-], so the split on the first '.' is the module's.
 */
static int
external_of(const char *what, const char *name, size_t len, struct mctx *m, json_t **out)
{
	struct buf b = { NULL, 0, 0 };
	int rc = 0;

	if (len == 0)
		return mfail(m, -RELAY_EINVAL, "%s: the external ID name is empty", what);
	if (buf_add(&b, m->module, strlen(m->module)) != 0 || buf_add(&b, ".", 1) != 0 ||
	    buf_add(&b, name, len) != 0) {
		rc = oom(m);
		goto out;
	}
	*out = json_stringn(b.p, b.len);
	if (*out == NULL)
		rc = oom(m);
out:
	free(b.p);
	return rc;
}

/*
 * The value of spec s against root: 0 and *out a new reference, or 0 and
 * *out NULL when the value is optional and absent. why is set on failure.
 */
static int
spec_eval(const struct spec *s, json_t *root, struct mctx *m, json_t **out)
{
	struct buf b = { NULL, 0, 0 };
	json_t *v = NULL, *src, *hit;
	const char *key;
	int rc = 0;

	*out = NULL;
	switch (s->kind) {
	case SPEC_CONST:
		*out = json_deep_copy(s->cnst);
		return *out ? 0 : oom(m);
	case SPEC_POINTER:
		src = relay_jsonptr_get(root, s->pointer);
		/* null is a value for a plain pointer, "no value" for an ID or a key. */
		if (src == NULL || (json_is_null(src) && (s->external || s->lookup))) {
			m->missing = s->pointer;
			return spec_absent(s, m, out);
		}
		v = json_deep_copy(src);
		if (v == NULL)
			return oom(m);
		break;
	case SPEC_TEMPLATE:
		rc = tpl_render(&s->tpl, root, m, s->what, s->external, &v);
		if (rc == -RELAY_EPATH)
			return spec_absent(s, m, out);
		if (rc != 0)
			return rc;
		break;
	}

	if (s->lookup != NULL) {
		hit = NULL;
		if (json_is_string(v) || json_is_number(v) || json_is_boolean(v)) {
			rc = scalar_add(&b, v, m, s->what, s->pointer ? s->pointer : "");
			if (rc == 0)
				hit = json_object_getn(s->lookup, b.p, b.len);
			else if (rc != -RELAY_EINVAL)
				goto out;
			rc = 0;
		}
		if (hit != NULL)
			*out = json_deep_copy(hit);
		else if (s->dflt != NULL)
			*out = json_deep_copy(s->dflt);
		else {
			key = s->kind == SPEC_POINTER ? s->pointer : "the template";
			rc = mfail(m, -RELAY_EINVAL, "%s: %s%s has no entry in the lookup table and "
			           "there is no default", s->what, s->kind == SPEC_POINTER ? m->base
			           : "", key);
			goto out;
		}
		if (*out == NULL)
			rc = oom(m);
		goto out;
	}
	if (s->external) {
		/* A template rendered encoded already; a pointer's value is encoded here. */
		if (s->kind == SPEC_POINTER)
			rc = xid_value_add(&b, v, m, s->what, s->pointer);
		else
			rc = buf_add(&b, json_string_value(v), json_string_length(v)) ? oom(m) : 0;
		if (rc == 0)
			rc = external_of(s->what, b.p, b.len, m, out);
		goto out;
	}
	*out = v;
	v = NULL;
out:
	free(b.p);
	json_decref(v);
	return rc;
}

/* Evaluate specs against root into *obj (key -> typed value; absent left out). */
static int
specs_eval(const struct specs *ss, json_t *root, struct mctx *m, json_t **obj)
{
	size_t i;
	json_t *v;
	int rc;

	*obj = json_object();
	if (*obj == NULL)
		return oom(m);
	for (i = 0; i < ss->n; i++) {
		rc = spec_eval(&ss->v[i], root, m, &v);
		if (rc != 0)
			return rc;
		if (v != NULL && json_object_set_new(*obj, ss->v[i].key, v) != 0)
			return oom(m);
	}
	return 0;
}

/* The load cell (a JSON string) for value v, appended to row. */
static int
cell_add(json_t *row, const json_t *v, struct mctx *m, const char *what)
{
	struct buf b = { NULL, 0, 0 };
	json_t *cell;
	int rc = 0;

	if (v == NULL || json_is_null(v))
		cell = json_string("");
	else if (json_is_boolean(v))
		cell = json_string(json_is_true(v) ? "1" : "0");
	else if (json_is_string(v))
		cell = json_stringn(json_string_value(v), json_string_length(v));
	else if (json_is_number(v)) {
		rc = scalar_add(&b, v, m, what, "");
		if (rc != 0)
			goto out;
		cell = json_stringn(b.p, b.len);
	} else {
		rc = mfail(m, -RELAY_EINVAL, "%s: the value is %s, but a load cell holds a scalar",
		           what, relay_config_type_name(v));
		goto out;
	}
	if (cell == NULL || json_array_append_new(row, cell) != 0)
		rc = oom(m);
out:
	free(b.p);
	return rc;
}

static int
add_strings(json_t *arr, const char *s, size_t times)
{
	size_t i;

	for (i = 0; i < times; i++) {
		if (json_array_append_new(arr, json_string(s)) != 0)
			return ENOMEM;
	}
	return 0;
}

/* The rendered external ID of the record: sets xmlid_module and xmlid_name. */
static int
plan_xmlid(const struct relay_route *r, json_t *root, struct mctx *m,
           struct relay_plan *plan)
{
	json_t *v = NULL, *id = NULL;
	int rc;

	rc = tpl_render(&r->xmlid, root, m, "external_id", 1, &v);
	if (rc == -RELAY_EPATH)
		return mfail(m, rc, "missing %s%s for external_id", m->base, m->missing);
	if (rc != 0)
		return rc;
	rc = external_of("external_id", json_string_value(v), json_string_length(v), m, &id);
	json_decref(v);
	if (rc != 0)
		return rc;
	plan->xmlid_module = strdup(m->module);
	plan->xmlid_name = strdup(json_string_value(id) + strlen(m->module) + 1);
	json_decref(id);
	if (plan->xmlid_module == NULL || plan->xmlid_name == NULL)
		return oom(m);
	return 0;
}

/* The load columns and first row: "id" then each present field, in order. */
static int
load_head(const struct relay_route *r, const json_t *values, struct mctx *m,
          struct relay_plan *plan, json_t *row)
{
	json_t *full;
	size_t i;
	int rc;

	plan->load_fields = json_array();
	if (plan->load_fields == NULL || json_array_append_new(plan->load_fields,
	                                                       json_string("id")) != 0)
		return oom(m);
	full = json_pack("s++", plan->xmlid_module, ".", plan->xmlid_name);
	if (full == NULL || json_array_append_new(row, full) != 0)
		return oom(m);
	for (i = 0; i < r->fields.n; i++) {
		const json_t *v = json_object_get(values, r->fields.v[i].key);

		if (v == NULL)
			continue;
		if (json_array_append_new(plan->load_fields, json_string(r->fields.v[i].key)) != 0)
			return oom(m);
		rc = cell_add(row, v, m, r->fields.v[i].what);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Append the cells of one line item (or "" for every column) to row. */
static int
line_cells(const struct line_spec *ls, json_t *item, size_t idx, struct mctx *m, json_t *row)
{
	char base[600];
	const char *saved = m->base;
	json_t *obj = NULL;
	size_t i;
	int rc;

	if (item == NULL)
		return add_strings(row, "", ls->specs.n) ? oom(m) : 0;
	/* Paths in texts are full payload paths: "/line_items/2/sku". */
	snprintf(base, sizeof(base), "%s%s/%zu", saved, ls->pointer, idx);
	m->base = base;
	rc = specs_eval(&ls->specs, item, m, &obj);
	for (i = 0; rc == 0 && i < ls->specs.n; i++)
		rc = cell_add(row, json_object_get(obj, ls->specs.v[i].key), m,
		              ls->specs.v[i].what);
	m->base = saved;
	json_decref(obj);
	return rc;
}

static int
map_upsert(const struct relay_route *r, json_t *root, struct mctx *m, struct relay_plan *plan)
{
	json_t **items = NULL, *values = NULL, *row;
	size_t i, j, k, nrows = 1, nparent;
	int rc;

	rc = specs_eval(&r->fields, root, m, &values);
	if (rc != 0)
		goto out;
	plan->load_data = json_array();
	row = json_array();
	if (plan->load_data == NULL || json_array_append_new(plan->load_data, row) != 0) {
		rc = oom(m);
		goto out;
	}
	rc = load_head(r, values, m, plan, row);
	if (rc != 0)
		goto out;
	nparent = json_array_size(row);

	if (r->n_lines == 0)
		goto out;
	items = calloc(r->n_lines, sizeof(*items));
	if (items == NULL) {
		rc = oom(m);
		goto out;
	}
	for (i = 0; i < r->n_lines; i++) {
		const struct line_spec *ls = &r->lines[i];

		items[i] = relay_jsonptr_get(root, ls->pointer);
		if (items[i] == NULL || json_is_null(items[i])) {
			items[i] = NULL;
			if (!ls->optional) {
				rc = mfail(m, -RELAY_EPATH, "missing %s%s for %s", m->base, ls->pointer,
				           ls->what);
				goto out;
			}
			continue;
		}
		if (!json_is_array(items[i])) {
			rc = mfail(m, -RELAY_EINVAL, "%s: %s%s is %s, not an array", ls->what, m->base,
			           ls->pointer, relay_config_type_name(items[i]));
			goto out;
		}
		if (json_array_size(items[i]) > nrows)
			nrows = json_array_size(items[i]);
	}
	/* Every line column is there, also for an absent optional array (all ""). */
	for (i = 0; i < r->n_lines; i++) {
		for (j = 0; j < r->lines[i].specs.n; j++) {
			if (json_array_append_new(plan->load_fields,
			                          json_pack("s++", r->lines[i].field, "/",
			                                    r->lines[i].specs.v[j].key)) != 0) {
				rc = oom(m);
				goto out;
			}
		}
	}
	for (k = 0; k < nrows; k++) {
		if (k > 0) {
			row = json_array();
			if (row == NULL || json_array_append_new(plan->load_data, row) != 0 ||
			    add_strings(row, "", nparent) != 0) {
				rc = oom(m);
				goto out;
			}
		}
		for (i = 0; i < r->n_lines; i++) {
			rc = line_cells(&r->lines[i], json_array_get(items[i], k), k, m, row);
			if (rc != 0)
				goto out;
		}
	}
out:
	free(items);
	json_decref(values);
	return rc;
}

static int
map_write(const struct relay_route *r, json_t *root, struct mctx *m, struct relay_plan *plan)
{
	json_t *row;
	int rc;

	rc = specs_eval(&r->fields, root, m, &plan->values);
	if (rc != 0 || !r->missing_create)
		return rc;
	plan->load_data = json_array();
	row = json_array();
	if (plan->load_data == NULL || json_array_append_new(plan->load_data, row) != 0)
		return oom(m);
	return load_head(r, plan->values, m, plan, row);
}

static int
map_call(const struct relay_route *r, json_t *root, struct mctx *m, struct relay_plan *plan)
{
	json_t *v;

	plan->method = strdup(r->method);
	if (plan->method == NULL)
		return oom(m);
	if (r->args_pointer == NULL)
		return specs_eval(&r->args, root, m, &plan->named);
	v = relay_jsonptr_get(root, r->args_pointer);
	if (v == NULL)
		return mfail(m, -RELAY_EPATH, "missing %s for args", r->args_pointer);
	if (!json_is_object(v))
		return mfail(m, -RELAY_EINVAL, "args: %s is %s, not an object of named arguments",
		             r->args_pointer, relay_config_type_name(v));
	plan->named = json_deep_copy(v);
	return plan->named ? 0 : oom(m);
}

int
relay_route_map(const struct relay_route *r, const json_t *payload, const char *module,
                struct relay_plan *plan, char *why, size_t whysz)
{
	struct mctx m = { module, why, whysz, "", "" };
	json_t *root = (json_t *)payload; /* read only: jansson's getters are not const */
	int rc;

	if (why != NULL && whysz > 0)
		why[0] = '\0';
	if (plan == NULL)
		return -RELAY_EINVAL;
	memset(plan, 0, sizeof(*plan));
	if (r == NULL || payload == NULL)
		return mfail(&m, -RELAY_EINVAL, "no route or no payload");
	if (module == NULL || module[0] == '\0' || !valid_chars(module, "_"))
		return mfail(&m, -RELAY_EINVAL, "external-ID module must be [A-Za-z0-9_]+");
	plan->op = r->op;
	plan->model = strdup(r->model);
	if (plan->model == NULL) {
		rc = oom(&m);
		goto fail;
	}
	if (r->op == RELAY_OP_UPSERT || r->op == RELAY_OP_WRITE) {
		plan->may_create = r->may_create;
		plan->may_update = r->may_update;
		plan->missing_create = r->missing_create;
	}
	if (r->op != RELAY_OP_CALL) {
		rc = plan_xmlid(r, root, &m, plan);
		if (rc != 0)
			goto fail;
	}
	switch (r->op) {
	case RELAY_OP_UPSERT:
		rc = map_upsert(r, root, &m, plan);
		break;
	case RELAY_OP_WRITE:
		rc = map_write(r, root, &m, plan);
		break;
	case RELAY_OP_CALL:
		rc = map_call(r, root, &m, plan);
		break;
	case RELAY_OP_DELETE:
		rc = 0;
		break;
	}
	if (rc != 0)
		goto fail;
	return 0;
fail:
	relay_plan_clear(plan);
	return rc;
}

void
relay_plan_clear(struct relay_plan *plan)
{
	if (plan == NULL)
		return;
	free(plan->model);
	free(plan->xmlid_module);
	free(plan->xmlid_name);
	json_decref(plan->load_fields);
	json_decref(plan->load_data);
	json_decref(plan->values);
	free(plan->method);
	json_decref(plan->named);
	memset(plan, 0, sizeof(*plan));
}
