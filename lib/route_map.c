/*
 * The mapping engine: a compiled route and a payload into a plan (contract in
 * include/odoo_relay/route.h, the compiled form and the rules in
 * route_int.h), and the external-ID encoding. Pure: no I/O, no state.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "odoo_relay/error.h"
#include "odoo_relay/jsonptr.h"
#include "odoo_relay/route.h"
#include "odoo_relay/schema.h"
#include "route_int.h"

/* ------------------------------------------------------------------ */
/* Mapping                                                             */

/* The mapping context: the module prefix, where texts go, where we are. */
struct mctx {
	const char *module;
	char *why;
	size_t whysz;
	const char *base;     /* payload pointer of the current root ("" or "/items/2") */
	const char *missing;  /* the pointer found absent, for the EPATH text */
	json_t **finds;       /* the plan's finds (created on the first) */
	size_t row;           /* the load row being filled */
	int xid_legacy;       /* the route renders external IDs the pre-0.2 way */
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
		             relay_schema_type_name(v));
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

		if (route_xid_kept(ch)) {
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

		if (!route_xid_kept(ch)) {
			if (ch != '-' || n - i < 3) {
				rc = -RELAY_EINVAL;
				goto fail;
			}
			hi = hex_value(s[i + 1]);
			lo = hex_value(s[i + 2]);
			/* Only the escape of a byte that is not kept: "-41" for 'A'
			 * is no encoder's output, and accepting it would give one
			 * value two names. */
			if (hi < 0 || lo < 0 || route_xid_kept((unsigned char)(hi << 4 | lo))) {
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
	len = m->xid_legacy ? text.len : xid_encode_into(NULL, text.p, text.len);
	if (buf_grow(b, len) != 0) {
		rc = oom(m);
		goto out;
	}
	if (m->xid_legacy) {
		/* the pre-0.2 rule: [A-Za-z0-9_-] kept, any other byte '_' (so
		 * "a.b" and "a_b" name one record: kept for upgrades only) */
		for (size_t i = 0; i < text.len; i++) {
			unsigned char ch = (unsigned char)text.p[i];

			b->p[b->len + i] = route_xid_kept(ch) || ch == '-' ? (char)ch : '_';
		}
	} else {
		xid_encode_into(b->p + b->len, text.p, text.len);
	}
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
		           what, relay_schema_type_name(v));
		goto out;
	}
	if (cell == NULL || json_array_append_new(row, cell) != 0)
		rc = oom(m);
out:
	free(b.p);
	return rc;
}

/* A "find" cell: "" in the row until the driver resolves it, and the find
 * (its value as text) added to the plan. An absent optional value is a
 * plain "" (the relation left empty). */
static int
find_add(json_t *row, const struct spec *s, const json_t *v, struct mctx *m)
{
	struct buf b = { NULL, 0, 0 };
	json_t *f;
	int rc;

	if (v == NULL || json_is_null(v))
		return json_array_append_new(row, json_string("")) ? oom(m) : 0;
	if ((rc = scalar_add(&b, v, m, s->what, s->pointer)) != 0)
		return rc;
	if (b.len == 0) {
		free(b.p);
		return mfail(m, -RELAY_EINVAL, "%s: %s%s is empty: nothing to find", s->what,
		             m->base, s->pointer);
	}
	f = json_deep_copy(s->find);
	if (!f || json_object_set_new(f, "row", json_integer((json_int_t)m->row)) ||
	    json_object_set_new(f, "col", json_integer((json_int_t)json_array_size(row))) ||
	    json_object_set_new(f, "value", json_stringn(b.p, b.len)) ||
	    json_object_set_new(f, "what", json_string(s->what)) ||
	    (!*m->finds && !(*m->finds = json_array())) ||
	    json_array_append_new(*m->finds, f) || json_array_append_new(row, json_string(""))) {
		free(b.p);
		return oom(m);
	}
	free(b.p);
	return 0;
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
		if (r->fields.v[i].find)
			rc = find_add(row, &r->fields.v[i], v, m);
		else
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
	for (i = 0; rc == 0 && i < ls->specs.n; i++) {
		if (ls->specs.v[i].find)
			rc = find_add(row, &ls->specs.v[i], json_object_get(obj, ls->specs.v[i].key), m);
		else
			rc = cell_add(row, json_object_get(obj, ls->specs.v[i].key), m,
			              ls->specs.v[i].what);
	}
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
			           ls->pointer, relay_schema_type_name(items[i]));
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
		m->row = k;
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
		             r->args_pointer, relay_schema_type_name(v));
	plan->named = json_deep_copy(v);
	return plan->named ? 0 : oom(m);
}

/* ------------------------------------------------------------------ */
/* Versions: the stale guard's comparable values                       */

/* n decimal digits at s, into *out; 0 or -1. */
static int
digits(const char *s, size_t n, int *out)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar. */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

static int
month_days(int y, int m)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

/* RFC 3339 date-time (section 5.6) into microseconds since the epoch. */
static int
rfc3339_parse(const char *s, size_t n, int64_t *out)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	int64_t frac = 0;
	size_t i = 19;

	if (n < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
	    digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
	    digits(s + 17, 2, &sec))
		return -RELAY_EINVAL;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo) || h > 23 || mi > 59 ||
	    sec > 60)
		return -RELAY_EINVAL;
	if (s[i] == '.') {
		size_t k = 0;

		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, k++) {
			if (k < 6)
				frac = frac * 10 + (s[i] - '0');
		}
		if (k == 0 || k > 9)
			return -RELAY_EINVAL;
		for (; k < 6; k++)
			frac *= 10;
	}
	if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i < n && (s[i] == '+' || s[i] == '-')) {
		sign = s[i] == '-' ? -1 : 1;
		if (n - i < 6 || digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
		    digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
			return -RELAY_EINVAL;
		i += 6;
	} else {
		return -RELAY_EINVAL; /* an offset is required: local time is no instant */
	}
	if (i != n)
		return -RELAY_EINVAL;
	int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
	               (int64_t)sign * (oh * 3600 + om * 60);
	*out = secs * 1000000 + frac;
	return 0;
}

static int
number_parse(const json_t *v, int64_t *out)
{
	const char *s;
	size_t n, i = 0;
	uint64_t acc = 0;

	if (json_is_integer(v)) {
		*out = (int64_t)json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return -RELAY_EINVAL;
	s = json_string_value(v);
	n = json_string_length(v);
	if (n > 0 && s[0] == '-')
		i = 1;
	if (n == i || n - i > 19)
		return -RELAY_EINVAL;
	for (size_t k = i; k < n; k++) {
		if (s[k] < '0' || s[k] > '9')
			return -RELAY_EINVAL;
		acc = acc * 10 + (uint64_t)(s[k] - '0');
	}
	if (acc > (uint64_t)INT64_MAX + (i ? 1u : 0u))
		return -RELAY_EINVAL;
	*out = i ? (acc == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)acc) : (int64_t)acc;
	return 0;
}

int
relay_version_parse(enum relay_version_kind kind, const json_t *v, int64_t *out)
{
	if (v == NULL || out == NULL)
		return -RELAY_EINVAL;
	switch (kind) {
	case RELAY_VERSION_RFC3339:
		if (!json_is_string(v))
			return -RELAY_EINVAL;
		return rfc3339_parse(json_string_value(v), json_string_length(v), out);
	case RELAY_VERSION_NUMBER:
		return number_parse(v, out);
	case RELAY_VERSION_NONE:
		break;
	}
	return -RELAY_EINVAL;
}

/* The event's version under the route's "version". */
static int
version_of(const struct relay_route *r, json_t *root, struct mctx *m, int64_t *out)
{
	json_t *v = relay_jsonptr_get(root, r->version_ptr);

	if (v == NULL || json_is_null(v))
		return mfail(m, -RELAY_EPATH, "missing %s for version", r->version_ptr);
	if (relay_version_parse(r->version_kind, v, out) != 0)
		return mfail(m, -RELAY_EINVAL, "version: %s is not %s", r->version_ptr,
		             r->version_kind == RELAY_VERSION_NUMBER ? "an integer"
		                                                     : "an RFC 3339 time");
	return 0;
}

int
relay_route_version_key(const struct relay_route *r, const json_t *payload, char **name,
                        int64_t *version, char *why, size_t whysz)
{
	struct mctx m = { "x", why, whysz, "", "", NULL, 0, r ? r->xid_legacy : 0 };
	json_t *root = (json_t *)payload; /* read only */
	struct relay_plan plan;
	int rc;

	if (why != NULL && whysz > 0)
		why[0] = '\0';
	if (name)
		*name = NULL;
	if (r == NULL || payload == NULL || name == NULL || version == NULL ||
	    r->version_kind == RELAY_VERSION_NONE)
		return mfail(&m, -RELAY_EINVAL, "no route, no payload or no version");
	memset(&plan, 0, sizeof(plan));
	if ((rc = plan_xmlid(r, root, &m, &plan)) == 0 &&
	    (rc = version_of(r, root, &m, version)) == 0) {
		*name = plan.xmlid_name;
		plan.xmlid_name = NULL;
	}
	relay_plan_clear(&plan);
	return rc;
}

int
relay_route_map(const struct relay_route *r, const json_t *payload, const char *module,
                struct relay_plan *plan, char *why, size_t whysz)
{
	struct mctx m = { module, why, whysz, "", "", NULL, 0, r ? r->xid_legacy : 0 };
	json_t *root = (json_t *)payload; /* read only: jansson's getters are not const */
	int rc;

	if (why != NULL && whysz > 0)
		why[0] = '\0';
	if (plan == NULL)
		return -RELAY_EINVAL;
	memset(plan, 0, sizeof(*plan));
	m.finds = &plan->finds;
	if (r == NULL || payload == NULL)
		return mfail(&m, -RELAY_EINVAL, "no route or no payload");
	if (module == NULL || module[0] == '\0' || !route_valid_chars(module, "_"))
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
	if (r->op != RELAY_OP_CALL && r->op != RELAY_OP_POST) {
		rc = plan_xmlid(r, root, &m, plan);
		if (rc != 0)
			goto fail;
	}
	if (r->version_kind != RELAY_VERSION_NONE) {
		if ((rc = version_of(r, root, &m, &plan->version)) != 0)
			goto fail;
		plan->has_version = 1;
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
	case RELAY_OP_POST:
		/* the JSON object sent; none when the body goes as it came */
		rc = r->body_as_received ? 0 : specs_eval(&r->fields, root, &m, &plan->values);
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
	json_decref(plan->finds);
	memset(plan, 0, sizeof(*plan));
}
