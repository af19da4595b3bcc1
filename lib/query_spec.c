/* Declared queries, the pure part: see include/odoo_relay/query_spec.h. */
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "odoo_relay/error.h"
#include "odoo_relay/query_spec.h"
#include "odoo_relay/schema.h"

#define FIELD_MAX 256
#define PARAM_NAME_MAX 64
/* The largest integer a JSON double carries exactly. */
#define EXACT_MAX 9007199254740992.0

static const char *const operators[] = {
	"=", "!=", ">", ">=", "<", "<=", "=?", "=like", "like", "not like", "ilike",
	"not ilike", "=ilike", "in", "not in", "child_of", "parent_of", NULL,
};

static int
lower_ident(char ch, int first)
{
	return (ch >= 'a' && ch <= 'z') || ch == '_' || (!first && ch >= '0' && ch <= '9');
}

int
relay_query_field_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	int first = 1;

	if (n == 0 || n > FIELD_MAX)
		return 0;
	for (; *name; name++) {
		if (*name == '.') {
			if (first)
				return 0;
			first = 1;
			continue;
		}
		if (!lower_ident(*name, first))
			return 0;
		first = 0;
	}
	return !first;
}

int
relay_query_param_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0, i;

	if (n == 0 || n > PARAM_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_'
		      || (i > 0 && ch >= '0' && ch <= '9')))
			return 0;
	}
	return 1;
}

const char *
relay_query_order_problem(const char *order)
{
	char part[FIELD_MAX + 16];
	const char *s = order;

	if (!order || !*order)
		return "must not be empty";
	while (*s) {
		size_t n = strcspn(s, ",");
		char *sp, *dir;

		if (n == 0 || n >= sizeof part)
			return "expected \"field [asc|desc]\" parts separated by commas";
		memcpy(part, s, n);
		part[n] = '\0';
		s += n;
		if (*s == ',')
			s++;
		/* trim */
		sp = part;
		while (*sp == ' ')
			sp++;
		dir = sp + strlen(sp);
		while (dir > sp && dir[-1] == ' ')
			*--dir = '\0';
		if ((dir = strchr(sp, ' '))) {
			*dir++ = '\0';
			while (*dir == ' ')
				dir++;
			if (strcmp(dir, "asc") && strcmp(dir, "desc") && strcmp(dir, "ASC")
			    && strcmp(dir, "DESC"))
				return "a direction must be asc or desc";
		}
		if (!relay_query_field_ok(sp) || strchr(sp, '.'))
			return "expected \"field [asc|desc]\" parts separated by commas";
	}
	return NULL;
}

static const struct relay_qparam_conf *
param_find(const struct relay_qparam_conf *params, size_t n, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strlen(params[i].name) == len && memcmp(params[i].name, name, len) == 0)
			return &params[i];
	return NULL;
}

static int
is_scalar(const json_t *v)
{
	return json_is_string(v) || json_is_number(v) || json_is_boolean(v) || json_is_null(v);
}

/* The name of a {"param": name} placeholder, or NULL when v is none. */
static const char *
placeholder(const json_t *v)
{
	if (!json_is_object(v) || json_object_size(v) != 1)
		return NULL;
	return json_string_value(json_object_get(v, "param"));
}

static const char *
problem(char *buf, size_t n, const json_t **at, const json_t *node, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static const char *
problem(char *buf, size_t n, const json_t **at, const json_t *node, const char *fmt, ...)
{
	va_list ap;

	if (at)
		*at = node;
	va_start(ap, fmt);
	vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return buf;
}

/* s quoted for a message (a static buffer per call site is not needed:
 * each message quotes one value). */
#define QUOTE(s) relay_schema_quote(qbuf, sizeof qbuf, (s))

static const char *
leaf_problem(const json_t *leaf, const struct relay_qparam_conf *params, size_t n,
             const json_t **at, char *buf, size_t n_buf)
{
	const json_t *f = json_array_get(leaf, 0), *op = json_array_get(leaf, 1),
	             *v = json_array_get(leaf, 2);
	const char *const *o;
	const char *pname;
	char qbuf[96];
	size_t i;

	if (json_array_size(leaf) != 3)
		return problem(buf, n_buf, at, leaf, "a leaf is [field, operator, value]");
	if (!json_is_string(f))
		return problem(buf, n_buf, at, f, "expected a field name, got %s%s",
		               relay_schema_type_name(f),
		               placeholder(f) ? " (a parameter can only be a value)" : "");
	if (!relay_query_field_ok(json_string_value(f)))
		return problem(buf, n_buf, at, f, "invalid field name %s (expected a-z 0-9 _ parts joined by \".\")",
		               QUOTE(json_string_value(f)));
	if (!json_is_string(op))
		return problem(buf, n_buf, at, op, "an operator must be a string");
	for (o = operators; *o && strcmp(*o, json_string_value(op)) != 0; o++)
		;
	if (!*o)
		return problem(buf, n_buf, at, op, "unknown operator %s", QUOTE(json_string_value(op)));
	if ((pname = placeholder(v))) {
		if (!param_find(params, n, pname, strlen(pname)))
			return problem(buf, n_buf, at, v, "parameter %s is not declared in \"params\"", QUOTE(pname));
		return NULL;
	}
	if (json_is_object(v))
		return problem(buf, n_buf, at, v, "a value that is an object must be {\"param\": \"<name>\"}");
	if (json_is_array(v)) {
		for (i = 0; i < json_array_size(v); i++)
			if (!is_scalar(json_array_get(v, i)))
				return problem(buf, n_buf, at, json_array_get(v, i),
				               "a list value holds strings, numbers, booleans or null");
		return NULL;
	}
	return NULL;
}

const char *
relay_query_domain_problem(const json_t *domain, const struct relay_qparam_conf *params, size_t n,
                           const json_t **at, char *buf, size_t n_buf)
{
	size_t i, len;
	long terms = 0;
	char qbuf[96];

	if (at)
		*at = domain;
	if (!json_is_array(domain))
		return problem(buf, n_buf, at, domain, "a domain is an array");
	len = json_array_size(domain);
	/* Polish notation, read from the end: a leaf pushes a term, "!" takes
	 * one and "&", "|" take two; what is left is joined by an implicit "&". */
	for (i = len; i-- > 0;) {
		const json_t *t = json_array_get(domain, i);
		const char *why;

		if (json_is_string(t)) {
			const char *s = json_string_value(t);
			long need = strcmp(s, "!") == 0 ? 1 : (strcmp(s, "&") == 0 || strcmp(s, "|") == 0) ? 2 : -1;

			if (need < 0)
				return problem(buf, n_buf, at, t, "unknown domain operator %s (expected \"&\", \"|\", \"!\" or a leaf)", QUOTE(s));
			if (terms < need)
				return problem(buf, n_buf, at, t, "operator %s lacks operands", QUOTE(s));
			terms -= need - 1;
		} else if (json_is_array(t)) {
			if ((why = leaf_problem(t, params, n, at, buf, n_buf)))
				return why;
			terms++;
		} else {
			return problem(buf, n_buf, at, t, "expected an operator or a [field, operator, value] leaf");
		}
	}
	return NULL;
}

int
relay_qparam_compile(struct relay_qparam_conf *p, char *buf, size_t n)
{
	char *anchored;
	regex_t *re;
	int rc;

	relay_qparam_release(p);
	if (!p->pattern)
		return 0;
	if (!(re = calloc(1, sizeof *re)))
		return ENOMEM;
	if (asprintf(&anchored, "^(%s)$", p->pattern) < 0) {
		free(re);
		return ENOMEM;
	}
	rc = regcomp(re, anchored, REG_EXTENDED | REG_NOSUB);
	free(anchored);
	if (rc != 0) {
		char e[128];

		regerror(rc, re, e, sizeof e);
		snprintf(buf, n, "invalid pattern: %s", e);
		regfree(re);
		free(re);
		return -RELAY_EINVAL;
	}
	p->regex = re;
	return 0;
}

void
relay_qparam_release(struct relay_qparam_conf *p)
{
	if (p && p->regex) {
		regfree(p->regex);
		free(p->regex);
		p->regex = NULL;
	}
}

/* Well-formed UTF-8 without control characters. */
static int
text_ok(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t k, more;
		unsigned cp;

		if (c < 0x20 || c == 0x7f)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			more = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			more = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			more = 3, cp = c & 0x07;
		else
			return 0;
		for (k = 1; k <= more; k++) {
			if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((more == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
		    || (more == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0x80 && cp <= 0x9f))
			return 0;
		i += more + 1;
	}
	return 1;
}

static int
number_syntax(const char *s, int integer)
{
	if (*s == '-')
		s++;
	if (!(*s >= '0' && *s <= '9'))
		return 0;
	while (*s >= '0' && *s <= '9')
		s++;
	if (integer)
		return *s == '\0';
	if (*s == '.') {
		s++;
		if (!(*s >= '0' && *s <= '9'))
			return 0;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (!(*s >= '0' && *s <= '9'))
			return 0;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return *s == '\0';
}

int
relay_qparam_value(const struct relay_qparam_conf *p, const char *text, size_t len, json_t **out,
                   const char **why)
{
	char num[64];
	double d;

	*out = NULL;
	if (memchr(text, '\0', len)) {
		*why = "must not contain a NUL byte";
		return -RELAY_EINVAL;
	}
	switch (p->type) {
	case RELAY_QPARAM_STRING:
		if (len < p->min_length) {
			*why = "is too short";
			return -RELAY_EINVAL;
		}
		if (len > p->max_length) {
			*why = "is too long";
			return -RELAY_EINVAL;
		}
		if (!text_ok((const unsigned char *)text, len)) {
			*why = "must be UTF-8 text without control characters";
			return -RELAY_EINVAL;
		}
		if (p->regex) {
			char *z = strndup(text, len);
			int m;

			if (!z)
				return ENOMEM;
			m = regexec(p->regex, z, 0, NULL, 0);
			free(z);
			if (m != 0) {
				*why = "does not match the declared pattern";
				return -RELAY_EINVAL;
			}
		}
		*out = json_stringn(text, len);
		break;
	case RELAY_QPARAM_INTEGER:
	case RELAY_QPARAM_NUMBER:
		if (len == 0 || len >= sizeof num) {
			*why = p->type == RELAY_QPARAM_INTEGER ? "expected an integer" : "expected a number";
			return -RELAY_EINVAL;
		}
		memcpy(num, text, len);
		num[len] = '\0';
		if (!number_syntax(num, p->type == RELAY_QPARAM_INTEGER)) {
			*why = p->type == RELAY_QPARAM_INTEGER ? "expected an integer" : "expected a number";
			return -RELAY_EINVAL;
		}
		d = strtod(num, NULL);
		if (!isfinite(d) || d < p->min || d > p->max) {
			*why = "is out of range";
			return -RELAY_EINVAL;
		}
		*out = p->type == RELAY_QPARAM_INTEGER ? json_integer((json_int_t)d) : json_real(d);
		break;
	case RELAY_QPARAM_BOOLEAN:
		if (len == 4 && memcmp(text, "true", 4) == 0)
			*out = json_true();
		else if (len == 5 && memcmp(text, "false", 5) == 0)
			*out = json_false();
		else {
			*why = "expected true or false";
			return -RELAY_EINVAL;
		}
		break;
	}
	return *out ? 0 : ENOMEM;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode the n bytes at s into out (room for n bytes); "+" is a
 * space. Returns the decoded length, or -1 for a malformed escape. */
static long
decode(const char *s, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] == '%') {
			int h, l;

			if (i + 2 >= n)
				return -1;
			if ((h = hexval(s[i + 1])) < 0 || (l = hexval(s[i + 2])) < 0)
				return -1;
			out[o++] = (char)(h * 16 + l);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	return (long)o;
}

/* The domain with each placeholder replaced by its value; in/not in take a
 * list. NULL for ENOMEM. */
static json_t *
render(const json_t *domain, const struct relay_query_conf *q, json_t *const *values)
{
	json_t *out = json_array(), *leaf;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i < json_array_size(domain); i++) {
		const json_t *t = json_array_get(domain, i);
		const char *pname;

		if (!json_is_array(t) || !(pname = placeholder(json_array_get(t, 2)))) {
			if (json_array_append_new(out, json_deep_copy(t)))
				goto fail;
			continue;
		}
		const struct relay_qparam_conf *p = param_find(q->params, q->n_params, pname, strlen(pname));
		const char *op = json_string_value(json_array_get(t, 1));
		json_t *v = values[p - q->params];

		if (strcmp(op, "in") == 0 || strcmp(op, "not in") == 0)
			v = json_pack("[O]", v);
		else
			v = json_incref(v);
		leaf = json_pack("[O,O,o]", json_array_get(t, 0), json_array_get(t, 1), v);
		if (!leaf || json_array_append_new(out, leaf))
			goto fail;
	}
	return out;
fail:
	json_decref(out);
	return NULL;
}

/* "<lead> <quoted name> <rest>" into why. */
static int
bind_fail(char *why, size_t n, const char *lead, const char *name, const char *rest)
{
	char q[96];

	snprintf(why, n, "%s%s%s%s", lead, relay_schema_quote(q, sizeof q, name), rest ? " " : "",
	         rest ? rest : "");
	return -RELAY_EINVAL;
}

int
relay_query_bind(const struct relay_query_conf *q, const char *qs, struct relay_query_bound *out,
                 char *why, size_t n)
{
	json_t *values[RELAY_QUERY_PARAMS_MAX] = { 0 };
	size_t qlen = qs ? strlen(qs) : 0, i, off = 0;
	char *name = NULL, *value = NULL, *key = NULL;
	int rc = 0;

	memset(out, 0, sizeof *out);
	if (n)
		why[0] = '\0';
	if (qlen > RELAY_QUERY_STRING_MAX) {
		snprintf(why, n, "query string longer than %d bytes", RELAY_QUERY_STRING_MAX);
		return -RELAY_EINVAL;
	}
	if (!(name = malloc(qlen + 1)) || !(value = malloc(qlen + 1))) {
		rc = ENOMEM;
		goto out;
	}
	while (off < qlen) {
		size_t seg = strcspn(qs + off, "&"), eq;
		long nl, vl;
		const struct relay_qparam_conf *p;
		const char *w = NULL;

		if (seg == 0) {
			off++;
			continue;
		}
		eq = strcspn(qs + off, "=&");
		if (eq > seg)
			eq = seg;
		if ((nl = decode(qs + off, eq, name)) < 0) {
			snprintf(why, n, "malformed percent escape in a parameter name");
			rc = -RELAY_EINVAL;
			goto out;
		}
		name[nl] = '\0';
		if (eq < seg) {
			vl = decode(qs + off + eq + 1, seg - eq - 1, value);
		} else {
			vl = 0;
		}
		if (!(p = param_find(q->params, q->n_params, name, (size_t)nl)) || memchr(name, '\0', (size_t)nl)) {
			rc = bind_fail(why, n, "unknown parameter ", name, NULL);
			goto out;
		}
		if (vl < 0) {
			rc = bind_fail(why, n, "parameter ", p->name, "has a malformed percent escape");
			goto out;
		}
		if (eq == seg) {
			rc = bind_fail(why, n, "parameter ", p->name, "has no \"=value\"");
			goto out;
		}
		i = (size_t)(p - q->params);
		if (values[i]) {
			rc = bind_fail(why, n, "parameter ", p->name, "is given more than once");
			goto out;
		}
		if ((rc = relay_qparam_value(p, value, (size_t)vl, &values[i], &w)) != 0) {
			if (rc == -RELAY_EINVAL)
				bind_fail(why, n, "parameter ", p->name, w);
			goto out;
		}
		off += seg;
	}
	for (i = 0; i < q->n_params; i++) {
		if (values[i])
			continue;
		if (q->params[i].required) {
			rc = bind_fail(why, n, "missing required parameter ", q->params[i].name, NULL);
			goto out;
		}
		values[i] = json_incref(q->params[i].default_value);
	}
	/* the key: name=<canonical JSON> in declaration order */
	{
		size_t cap = 64, len = 0;

		if (!(key = malloc(cap))) {
			rc = ENOMEM;
			goto out;
		}
		key[0] = '\0';
		for (i = 0; i < q->n_params; i++) {
			char *v = json_dumps(values[i], JSON_ENCODE_ANY | JSON_COMPACT);
			size_t need;

			if (!v) {
				rc = ENOMEM;
				goto out;
			}
			need = len + strlen(q->params[i].name) + strlen(v) + 3;
			if (need > cap) {
				char *nk;

				while (cap < need)
					cap *= 2;
				if (!(nk = realloc(key, cap))) {
					free(v);
					rc = ENOMEM;
					goto out;
				}
				key = nk;
			}
			len += (size_t)sprintf(key + len, "%s%s=%s", i ? "&" : "", q->params[i].name, v);
			free(v);
		}
		out->key_len = len;
	}
	if (!(out->domain = render(q->domain, q, values))) {
		rc = ENOMEM;
		goto out;
	}
	out->key = key;
	key = NULL;
out:
	for (i = 0; i < RELAY_QUERY_PARAMS_MAX; i++)
		json_decref(values[i]);
	free(key);
	free(name);
	free(value);
	if (rc) {
		json_decref(out->domain);
		memset(out, 0, sizeof *out);
		if (rc == ENOMEM && n)
			snprintf(why, n, "out of memory");
	}
	return rc;
}

void
relay_query_bound_clear(struct relay_query_bound *b)
{
	if (!b)
		return;
	json_decref(b->domain);
	free(b->key);
	memset(b, 0, sizeof *b);
}
