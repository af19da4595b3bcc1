/*
 * odoo-relay: the configuration file (contract in include/odoo_relay/config.h,
 * schema in odoo-relay.conf(5)).
 *
 * jansson parses, rejects duplicate keys and places syntax errors. It keeps no
 * positions for the values it builds, so a second pass over the same text
 * records where each value (and each object key) begins. That pass needs no
 * grammar of its own: jansson has already accepted the text, so a token
 * scanner suffices. Values begin in document order, which is the pre-order of
 * the tree, and jansson iterates object members in insertion order (since
 * 2.8), so walking the tree pairs each json_t with its position. Every pair
 * is checked as it is made (kind, key text, number of children); should they
 * ever disagree, the positions are dropped and errors carry no line rather
 * than a wrong one.
 *
 * jansson shares one node for all true, false and null values, so those
 * cannot be placed by pointer alone. Validation here looks values up by
 * (container, key) instead; relay_config_where() places a shared node only
 * when it occurs once in the document.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "odoo_relay/config.h"
#include "odoo_relay/error.h"

#define NO_ENTRY SIZE_MAX
/* Far above any real configuration; stops a wrong path (a log, a device)
 * from being read whole into memory. */
#define CONFIG_MAX_BYTES (16u << 20)
/* Secrets are keys and tokens; anything larger is the wrong file. */
#define SECRET_MAX_BYTES 65536
#define SECRETS_MAX 16
#define SOURCE_NAME_MAX 64
#define HEADER_NAME_MAX 256
#define MS_DAY INT64_C(86400000)
#define S_YEAR INT64_C(31536000)

/* ---- positions ---------------------------------------------------------- */

enum pos_kind { POS_OBJECT = 1, POS_ARRAY, POS_STRING, POS_NUMBER, POS_TRUE, POS_FALSE, POS_NULL };

struct pos_entry {
	const json_t *node;
	const char *key;        /* member name (jansson's copy); NULL in arrays and at the root */
	size_t parent;          /* entry of the enclosing container; NO_ENTRY at the root */
	size_t end;             /* one past the last entry of this value's subtree */
	size_t key_off, key_len; /* raw key text, quotes excluded (used while binding) */
	unsigned line, column;  /* where the value begins */
	unsigned key_line, key_column; /* where its key begins; 0 outside objects */
	unsigned char kind;
};

struct pos_ref {
	const json_t *node;
	size_t entry;
};

struct relay_config_doc {
	json_t *root;
	struct pos_entry *pos;  /* in document order */
	size_t n_pos;
	struct pos_ref *by_node; /* sorted by address; shared true/false/null left out */
	size_t n_by_node;
};

struct pos_scan {
	const char *p, *end;
	unsigned line, column;  /* column of the last character consumed */
};

static void
scan_next(struct pos_scan *s)
{
	unsigned char c = (unsigned char)*s->p++;

	if (c == '\n') {
		s->line++;
		s->column = 0;
	} else if ((c & 0xc0) != 0x80) {
		/* columns count characters, as jansson's do: skip UTF-8 continuations */
		s->column++;
	}
}

static int
pos_add(struct relay_config_doc *doc, size_t *cap, const struct pos_entry *e)
{
	if (doc->n_pos == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct pos_entry *np = realloc(doc->pos, ncap * sizeof *np);

		if (!np)
			return ENOMEM;
		doc->pos = np;
		*cap = ncap;
	}
	doc->pos[doc->n_pos++] = *e;
	return 0;
}

/* Records the start of every value of text, which jansson has accepted. */
static int
pos_scan(struct relay_config_doc *doc, const char *text, size_t len)
{
	struct pos_scan s = { text, text + len, 1, 0 };
	struct pos_entry pending = { .parent = NO_ENTRY };
	size_t *stack = NULL, depth = 0, stack_cap = 0, cap = 0;
	int rc = 0;

	while (s.p < s.end) {
		struct pos_entry e = pending;
		unsigned char c = (unsigned char)*s.p;

		switch (c) {
		/* jansson skips a NUL byte between tokens, so must we: a NUL ends a
		 * number or literal below without being consumed, and the scan
		 * would never move on again (found by fuzz_config) */
		case ' ': case '\t': case '\r': case '\n': case ',': case ':': case '\0':
			scan_next(&s);
			continue;
		case '}': case ']':
			if (depth > 0) {
				depth--;
				doc->pos[stack[depth]].end = doc->n_pos;
			}
			scan_next(&s);
			continue;
		default:
			break;
		}
		e.line = s.line;
		e.column = s.column + 1;
		e.parent = depth ? stack[depth - 1] : NO_ENTRY;
		if (c == '"') {
			const char *start = s.p + 1, *q;

			scan_next(&s);
			while (s.p < s.end && *s.p != '"') {
				if (*s.p == '\\' && s.p + 1 < s.end)
					scan_next(&s);
				scan_next(&s);
			}
			e.key_off = (size_t)(start - text);
			e.key_len = (size_t)(s.p - start);
			if (s.p < s.end)
				scan_next(&s);
			for (q = s.p; q < s.end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n'); q++)
				;
			if (q < s.end && *q == ':') {
				/* an object key: its value comes next */
				pending.key_off = e.key_off;
				pending.key_len = e.key_len;
				pending.key_line = e.line;
				pending.key_column = e.column;
				continue;
			}
			e.key_off = pending.key_off;
			e.key_len = pending.key_len;
			e.kind = POS_STRING;
		} else if (c == '{' || c == '[') {
			e.kind = c == '{' ? POS_OBJECT : POS_ARRAY;
			scan_next(&s);
		} else {
			e.kind = c == 't' ? POS_TRUE : c == 'f' ? POS_FALSE : c == 'n' ? POS_NULL : POS_NUMBER;
			/* a number or literal runs to the next delimiter */
			while (s.p < s.end && !strchr(" \t\r\n,:]}", *s.p))
				scan_next(&s);
		}
		e.end = doc->n_pos + 1;
		pending.key_line = pending.key_column = 0;
		pending.key_off = pending.key_len = 0;
		if ((rc = pos_add(doc, &cap, &e)) != 0)
			goto out;
		if (e.kind == POS_OBJECT || e.kind == POS_ARRAY) {
			if (depth == stack_cap) {
				size_t ncap = stack_cap ? stack_cap * 2 : 16;
				size_t *ns = realloc(stack, ncap * sizeof *ns);

				if (!ns) {
					rc = ENOMEM;
					goto out;
				}
				stack = ns;
				stack_cap = ncap;
			}
			stack[depth++] = doc->n_pos - 1;
		}
	}
out:
	free(stack);
	return rc;
}

static unsigned char
pos_kind_of(const json_t *node)
{
	switch (json_typeof(node)) {
	case JSON_OBJECT: return POS_OBJECT;
	case JSON_ARRAY: return POS_ARRAY;
	case JSON_STRING: return POS_STRING;
	case JSON_INTEGER: case JSON_REAL: return POS_NUMBER;
	case JSON_TRUE: return POS_TRUE;
	case JSON_FALSE: return POS_FALSE;
	default: return POS_NULL;
	}
}

static int
pos_key_is(const char *text, const struct pos_entry *e, const char *key)
{
	const char *raw = text + e->key_off;
	json_t *decoded;
	int same;

	if (!memchr(raw, '\\', e->key_len))
		return strlen(key) == e->key_len && memcmp(raw, key, e->key_len) == 0;
	/* escapes: have jansson decode the quoted key as a lone string */
	decoded = json_loadb(raw - 1, e->key_len + 2, JSON_DECODE_ANY, NULL);
	same = json_is_string(decoded) && strcmp(json_string_value(decoded), key) == 0;
	json_decref(decoded);
	return same;
}

/* Pairs node (and its subtree) with the next entries; -1 when they disagree. */
static int
pos_bind(struct relay_config_doc *doc, const char *text, json_t *node, const char *key, size_t *next)
{
	struct pos_entry *e;
	size_t i = (*next)++;

	if (i >= doc->n_pos)
		return -1;
	e = &doc->pos[i];
	if (e->kind != pos_kind_of(node) || (key != NULL) != (e->key_line != 0))
		return -1;
	if (key && !pos_key_is(text, e, key))
		return -1;
	e->node = node;
	e->key = key;
	if (json_is_object(node)) {
		const char *k;
		json_t *v;

		json_object_foreach(node, k, v)
			if (pos_bind(doc, text, v, k, next))
				return -1;
	} else if (json_is_array(node)) {
		size_t j;
		json_t *v;

		json_array_foreach(node, j, v)
			if (pos_bind(doc, text, v, NULL, next))
				return -1;
	}
	return *next == e->end ? 0 : -1;
}

static int
pos_ref_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const struct pos_ref *)a)->node;
	uintptr_t y = (uintptr_t)((const struct pos_ref *)b)->node;

	return x < y ? -1 : x > y;
}

static int
pos_build(struct relay_config_doc *doc, const char *text, size_t len)
{
	size_t next = 0, i;
	int rc;

	if ((rc = pos_scan(doc, text, len)) != 0)
		return rc;
	if (pos_bind(doc, text, doc->root, NULL, &next) != 0 || next != doc->n_pos) {
		/* cannot happen with a jansson that keeps insertion order; never
		 * report a wrong place, report none */
		free(doc->pos);
		doc->pos = NULL;
		doc->n_pos = 0;
		return 0;
	}
	doc->by_node = malloc((doc->n_pos ? doc->n_pos : 1) * sizeof *doc->by_node);
	if (!doc->by_node)
		return ENOMEM;
	for (i = 0; i < doc->n_pos; i++) {
		unsigned char k = doc->pos[i].kind;

		if (k == POS_TRUE || k == POS_FALSE || k == POS_NULL)
			continue;
		doc->by_node[doc->n_by_node].node = doc->pos[i].node;
		doc->by_node[doc->n_by_node++].entry = i;
	}
	qsort(doc->by_node, doc->n_by_node, sizeof *doc->by_node, pos_ref_cmp);
	return 0;
}

static size_t
pos_find(const struct relay_config_doc *doc, const json_t *node)
{
	struct pos_ref key, *hit;
	size_t i, found = NO_ENTRY;

	if (!doc || !node || !doc->n_pos)
		return NO_ENTRY;
	if (json_is_true(node) || json_is_false(node) || json_is_null(node)) {
		/* a shared node: only a single occurrence is unambiguous */
		for (i = 0; i < doc->n_pos; i++) {
			if (doc->pos[i].node != node)
				continue;
			if (found != NO_ENTRY)
				return NO_ENTRY;
			found = i;
		}
		return found;
	}
	key.node = node;
	hit = bsearch(&key, doc->by_node, doc->n_by_node, sizeof *doc->by_node, pos_ref_cmp);
	return hit ? hit->entry : NO_ENTRY;
}

/* The entry of member key (key != NULL) or element idx of container at. */
static size_t
pos_child(const struct relay_config_doc *doc, size_t at, const char *key, size_t idx)
{
	size_t i, n = 0;

	if (at == NO_ENTRY)
		return NO_ENTRY;
	for (i = at + 1; i < doc->pos[at].end; i = doc->pos[i].end) {
		if (key ? doc->pos[i].key && strcmp(doc->pos[i].key, key) == 0 : n++ == idx)
			return i;
	}
	return NO_ENTRY;
}

static void
doc_free(struct relay_config_doc *doc)
{
	if (!doc)
		return;
	json_decref(doc->root);
	free(doc->pos);
	free(doc->by_node);
	free(doc);
}

/* ---- validation context and errors -------------------------------------- */

struct ctx {
	struct relay_config *cfg;
	struct relay_config_error *err;
	unsigned flags;         /* RELAY_CONFIG_* */
	const char *base_dir;   /* for relative secret paths; NULL: the working directory */
	char path[256];         /* "sources.shop.verify" */
	size_t path_len;
};

static size_t
path_push(struct ctx *c, const char *key)
{
	size_t mark = c->path_len;
	int w = snprintf(c->path + mark, sizeof c->path - mark, "%s%s", mark ? "." : "", key);

	c->path_len = w < 0 ? mark : strnlen(c->path, sizeof c->path - 1);
	return mark;
}

static size_t
path_push_index(struct ctx *c, size_t i)
{
	size_t mark = c->path_len;

	snprintf(c->path + mark, sizeof c->path - mark, "[%zu]", i);
	c->path_len = strnlen(c->path, sizeof c->path - 1);
	return mark;
}

static void
path_pop(struct ctx *c, size_t mark)
{
	c->path_len = mark;
	c->path[mark] = '\0';
}

/*
 * Sets the error: position of entry at (its key when at_key), text prefixed
 * by the current path and member (if not NULL). Returns rc.
 */
__attribute__((format(printf, 6, 7)))
static int
fail(struct ctx *c, int rc, size_t at, int at_key, const char *member, const char *fmt, ...)
{
	struct relay_config_error *err = c->err;
	size_t used = 0;
	va_list ap;

	if (!err)
		return rc;
	err->line = err->column = 0;
	if (at != NO_ENTRY) {
		const struct pos_entry *e = &c->cfg->doc->pos[at];

		if (at_key && e->key_line) {
			err->line = e->key_line;
			err->column = e->key_column;
		} else {
			err->line = e->line;
			err->column = e->column;
		}
	}
	err->text[0] = '\0';
	if (c->path_len || member) {
		snprintf(err->text, sizeof err->text, "%s%s%s: ", c->path,
		         c->path_len && member ? "." : "", member ? member : "");
		used = strlen(err->text);
	}
	va_start(ap, fmt);
	vsnprintf(err->text + used, sizeof err->text - used, fmt, ap);
	va_end(ap);
	return rc;
}

static int
fail_oom(struct ctx *c)
{
	return fail(c, ENOMEM, NO_ENTRY, 0, NULL, "out of memory");
}

static size_t
at_node(const struct ctx *c, const json_t *node)
{
	return pos_find(c->cfg->doc, node);
}

static size_t
at_member(const struct ctx *c, const json_t *obj, const char *key)
{
	return pos_child(c->cfg->doc, pos_find(c->cfg->doc, obj), key, 0);
}

static size_t
at_index(const struct ctx *c, const json_t *arr, size_t i)
{
	return pos_child(c->cfg->doc, pos_find(c->cfg->doc, arr), NULL, i);
}

/*
 * Quotes s for an error text: printable ASCII as is, the rest escaped, long
 * values cut short, so that a configured value can neither forge log lines
 * nor flood them.
 */
static const char *
quote(char *buf, size_t n, const char *s)
{
	size_t o = 0, i;

	buf[o++] = '"';
	for (i = 0; s[i]; i++) {
		unsigned char ch = (unsigned char)s[i];

		/* room for one escape, "...", the quote and the NUL */
		if (i >= 64 || o + 4 + 3 + 2 > n) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (ch == '"' || ch == '\\')
			o += (size_t)snprintf(buf + o, n - o, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			o += (size_t)snprintf(buf + o, n - o, "\\x%02x", ch);
		else
			buf[o++] = (char)ch;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

/* relay_strerror with a lower-case first letter, as messages go. */
static const char *
errtext(char *buf, size_t n, int e)
{
	snprintf(buf, n, "%s", relay_strerror(e));
	if (buf[0] >= 'A' && buf[0] <= 'Z')
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}

const char *
relay_config_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE: case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

static int
fail_type(struct ctx *c, json_t *obj, const char *key, const char *want, const json_t *v)
{
	return fail(c, -RELAY_ECONFIG, at_member(c, obj, key), 0, key, "expected %s, got %s", want, relay_config_type_name(v));
}

static int
fail_missing(struct ctx *c, json_t *obj, const char *key)
{
	return fail(c, -RELAY_ECONFIG, at_node(c, obj), 0, NULL, "missing required key \"%s\"", key);
}

/* ---- typed accessors: absent members leave *out alone (the default) ----- */

static int
check_keys(struct ctx *c, json_t *obj, const char *const *known)
{
	char q[96];
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		const char *const *k;

		for (k = known; *k && strcmp(*k, key) != 0; k++)
			;
		if (!*k)
			return fail(c, -RELAY_ECONFIG, at_member(c, obj, key), 1, NULL,
			            "unknown key %s", quote(q, sizeof q, key));
	}
	return 0;
}

static int
get_object(struct ctx *c, json_t *obj, const char *key, int required, json_t **out)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v)
		return required ? fail_missing(c, obj, key) : 0;
	if (!json_is_object(v))
		return fail_type(c, obj, key, "an object", v);
	*out = v;
	return 0;
}

static int
get_int(struct ctx *c, json_t *obj, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
	json_t *v = json_object_get(obj, key);
	int64_t x;

	if (!v)
		return 0;
	if (!json_is_integer(v))
		return fail_type(c, obj, key, "an integer", v);
	x = (int64_t)json_integer_value(v);
	if (x < lo || x > hi)
		return fail(c, -RELAY_ECONFIG, at_member(c, obj, key), 0, key,
		            "%" PRId64 " is out of range (%" PRId64 "..%" PRId64 ")", x, lo, hi);
	*out = x;
	return 0;
}

static int
get_unsigned(struct ctx *c, json_t *obj, const char *key, int64_t lo, int64_t hi, unsigned *out)
{
	int64_t x = *out;
	int rc = get_int(c, obj, key, lo, hi, &x);

	*out = (unsigned)x;
	return rc;
}

static int
get_size(struct ctx *c, json_t *obj, const char *key, int64_t lo, int64_t hi, size_t *out)
{
	int64_t x = (int64_t)*out;
	int rc = get_int(c, obj, key, lo, hi, &x);

	*out = (size_t)x;
	return rc;
}

static int
get_bool(struct ctx *c, json_t *obj, const char *key, int *out)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return fail_type(c, obj, key, "a boolean", v);
	*out = json_is_true(v);
	return 0;
}

/* A non-empty string, copied into *out (replacing what was there). */
static int
get_string(struct ctx *c, json_t *obj, const char *key, int required, char **out)
{
	json_t *v = json_object_get(obj, key);
	char *s;

	if (!v)
		return required ? fail_missing(c, obj, key) : 0;
	if (!json_is_string(v))
		return fail_type(c, obj, key, "a string", v);
	if (json_string_length(v) == 0)
		return fail(c, -RELAY_ECONFIG, at_member(c, obj, key), 0, key, "must not be empty");
	if (!(s = strdup(json_string_value(v))))
		return fail_oom(c);
	free(*out);
	*out = s;
	return 0;
}

struct enum_name {
	const char *name;
	int value;
};

static int
get_enum(struct ctx *c, json_t *obj, const char *key, int required, const struct enum_name *names,
         const char *what, int *out)
{
	json_t *v = json_object_get(obj, key);
	char q[96], list[160] = "";
	const struct enum_name *e;

	if (!v)
		return required ? fail_missing(c, obj, key) : 0;
	if (!json_is_string(v))
		return fail_type(c, obj, key, "a string", v);
	for (e = names; e->name; e++) {
		if (strcmp(e->name, json_string_value(v)) == 0) {
			*out = e->value;
			return 0;
		}
		snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", e == names ? "" : ", ", e->name);
	}
	return fail(c, -RELAY_ECONFIG, at_member(c, obj, key), 0, key, "unknown %s %s (expected one of %s)",
	            what, quote(q, sizeof q, json_string_value(v)), list);
}

/* ---- value checks -------------------------------------------------------- */

static int
is_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
	       || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* An HTTP field name (RFC 9110 token). */
static int
header_name_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > HEADER_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!is_tchar((unsigned char)s[i]))
			return 0;
	return 1;
}

/* An RFC 6901 pointer into the body: "" (the whole body) is not useful here. */
static const char *
pointer_problem(const char *s)
{
	if (s[0] != '/')
		return "must start with \"/\"";
	for (; *s; s++)
		if (*s == '~' && s[1] != '0' && s[1] != '1')
			return "\"~\" must be followed by 0 or 1";
	return NULL;
}

static int
port_ok(const char *s)
{
	unsigned long v = 0;
	size_t n = 0;

	for (; *s; s++, n++) {
		if (*s < '0' || *s > '9' || n >= 5)
			return 0;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	return n > 0 && v <= 65535;
}

/* A DNS name: labels of letters, digits and inner hyphens. */
static int
hostname_ok(const char *s, size_t n)
{
	size_t label = 0, i;

	if (n == 0 || n > 253)
		return 0;
	for (i = 0; i < n; i++) {
		char ch = s[i];

		if (ch == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
		      || (ch == '-' && label > 0)) || ++label > 63)
			return 0;
	}
	return label > 0 && s[n - 1] != '-';
}

/* Why "host:port" is not a listening address, or NULL when it is. */
static const char *
address_problem(const char *s)
{
	char host[256];
	const char *colon;
	unsigned char bin[16];
	size_t n;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return "expected [ipv6]:port";
		n = (size_t)(close - s - 1);
		if (n == 0 || n >= sizeof host)
			return "bad ipv6 address";
		memcpy(host, s + 1, n);
		host[n] = '\0';
		if (inet_pton(AF_INET6, host, bin) != 1)
			return "bad ipv6 address";
		return port_ok(close + 2) ? NULL : "port must be a number from 0 to 65535";
	}
	if (!(colon = strrchr(s, ':')))
		return "expected host:port";
	n = (size_t)(colon - s);
	if (memchr(s, ':', n))
		return "an ipv6 address needs brackets, as in [::1]:8080";
	if (n == 0 || n >= sizeof host)
		return "missing host (use 0.0.0.0 or [::] for all addresses)";
	memcpy(host, s, n);
	host[n] = '\0';
	if (strspn(host, "0123456789.") == n) {
		if (inet_pton(AF_INET, host, bin) != 1)
			return "bad ipv4 address";
	} else if (!hostname_ok(host, n)) {
		return "bad host name";
	}
	return port_ok(colon + 1) ? NULL : "port must be a number from 0 to 65535";
}

static int
check_address(struct ctx *c, size_t at, const char *member, const char *s)
{
	const char *why = address_problem(s);
	char q[96];

	if (!why)
		return 0;
	return fail(c, -RELAY_ECONFIG, at, 0, member, "invalid address %s: %s", quote(q, sizeof q, s), why);
}

/* Why url is not an Odoo base URL, or NULL when it is. */
static const char *
url_problem(const char *url)
{
	const char *host, *s;
	size_t hlen;

	if (strncasecmp(url, "http://", 7) == 0)
		host = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		host = url + 8;
	else
		return "must start with http:// or https://";
	for (s = url; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return "must not contain spaces or control characters";
	if (strpbrk(url, "?#"))
		return "must not have a query or fragment";
	hlen = strcspn(host, "/");
	if (hlen == 0)
		return "missing host";
	if (memchr(host, '@', hlen))
		/* a password in the URL would end up in every log line naming it */
		return "must not contain credentials (use login and api_key_file)";
	return NULL;
}

static int
source_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > SOURCE_NAME_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')
		      || *s == '_' || *s == '.' || *s == '-'))
			return 0;
	return 1;
}

static int
module_name_ok(const char *s)
{
	/* Odoo's own modules: external IDs written under them would collide
	 * with, or overwrite, records that Odoo manages. */
	static const char *const core[] = {
		"base", "web", "mail", "sale", "account", "stock", "product", "contacts",
		"purchase", "crm", "website", "point_of_sale", "hr", "mrp", "project",
		"__import__", NULL,
	};
	const char *const *k;

	if (strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(s))
		return 0;
	for (k = core; *k; k++)
		if (strcmp(*k, s) == 0)
			return 0;
	return 1;
}

/* ---- secrets ------------------------------------------------------------- */

static void
secret_clear(struct relay_secret *s)
{
	if (s->data) {
		OPENSSL_cleanse(s->data, s->len);
		free(s->data);
	}
	s->data = NULL;
	s->len = 0;
}

static char *
secret_path(const struct ctx *c, const char *rel)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	char *full;

	if (rel[0] == '/')
		return strdup(rel);
	if (!dir || !*dir)
		dir = c->base_dir;
	if (!dir)
		return strdup(rel);
	if (asprintf(&full, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", rel) < 0)
		return NULL;
	return full;
}

/* What a file that is not a regular one is, for the message. */
static const char *
file_kind(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISSOCK(mode))
		return "a socket";
	if (S_ISCHR(mode) || S_ISBLK(mode))
		return "a device";
	return "an unknown kind of file";
}

/*
 * Reads the secret file named by the string at entry at (rel, already
 * checked to be a non-empty string) into *out. Errors name the file, never
 * its contents. Returns 0, an errno, or -RELAY_ECONFIG.
 */
static int
read_secret(struct ctx *c, size_t at, const char *member, const char *rel, struct relay_secret *out)
{
	char *full, e[128];
	unsigned char *buf = NULL;
	size_t len = 0, cap;
	struct stat st;
	int fd, rc = 0;

	if (c->flags & RELAY_CONFIG_NO_SECRETS) {
		out->data = NULL; /* the caller does not verify nor call anything */
		out->len = 0;
		return 0;
	}
	if (!(full = secret_path(c, rel)))
		return fail_oom(c);
	/* Refuse what is not a regular file before opening it: opening a FIFO
	 * waits for a writer, and would hang --check-config, the start or a
	 * running daemon's reload. O_NONBLOCK covers a file swapped in between
	 * (it changes nothing for a regular file), and fstat decides again. */
	if (stat(full, &st) == 0 && !S_ISREG(st.st_mode)) {
		rc = fail(c, -RELAY_ECONFIG, at, 0, member, "secret file %s is not a regular file (%s)",
		          full, file_kind(st.st_mode));
		goto out;
	}
	if ((fd = open(full, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0) {
		rc = errno;
		fail(c, rc, at, 0, member, "cannot read secret file %s: %s", full, errtext(e, sizeof e, rc));
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		rc = errno;
		fail(c, rc, at, 0, member, "cannot read secret file %s: %s", full, errtext(e, sizeof e, rc));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = fail(c, -RELAY_ECONFIG, at, 0, member, "secret file %s is not a regular file (%s)",
		          full, file_kind(st.st_mode));
		goto out_close;
	}
	if (st.st_size > SECRET_MAX_BYTES) {
		rc = fail(c, -RELAY_ECONFIG, at, 0, member, "secret file %s is larger than %d bytes", full,
		          SECRET_MAX_BYTES);
		goto out_close;
	}
	/* one byte more than the size, to notice a file that grew meanwhile */
	cap = (size_t)st.st_size + 1;
	if (!(buf = malloc(cap))) {
		rc = fail_oom(c);
		goto out_close;
	}
	for (;;) {
		ssize_t r = read(fd, buf + len, cap - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = errno;
			fail(c, rc, at, 0, member, "cannot read secret file %s: %s", full, errtext(e, sizeof e, rc));
			goto out_wipe;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len == cap) {
			rc = fail(c, -RELAY_ECONFIG, at, 0, member, "secret file %s changed while it was read", full);
			goto out_wipe;
		}
	}
	/* editors end files with a newline; it is not part of the secret */
	if (len > 0 && buf[len - 1] == '\n') {
		len--;
		if (len > 0 && buf[len - 1] == '\r')
			len--;
	}
	if (len == 0) {
		rc = fail(c, -RELAY_ECONFIG, at, 0, member, "secret file %s is empty", full);
		goto out_wipe;
	}
	secret_clear(out);
	out->data = buf;
	out->len = len;
	buf = NULL;
out_wipe:
	if (buf) {
		OPENSSL_cleanse(buf, cap);
		free(buf);
	}
out_close:
	close(fd);
out:
	free(full);
	return rc;
}

/* A member that must be a non-empty string naming a secret file. */
static int
secret_member(struct ctx *c, json_t *obj, const char *key, struct relay_secret *out)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_string(v))
		return fail_type(c, obj, key, "a string", v);
	if (json_string_length(v) == 0)
		return fail(c, -RELAY_ECONFIG, at_member(c, obj, key), 0, key, "must not be empty");
	return read_secret(c, at_member(c, obj, key), key, json_string_value(v), out);
}

/* ---- the sections -------------------------------------------------------- */

static const struct enum_name scheme_names[] = {
	{ "shopify", RELAY_SIG_SHOPIFY }, { "woocommerce", RELAY_SIG_WOOCOMMERCE },
	{ "github", RELAY_SIG_GITHUB }, { "stripe", RELAY_SIG_STRIPE },
	{ "hmac-sha256", RELAY_SIG_HMAC_SHA256 }, { "token", RELAY_SIG_TOKEN },
	{ "none", RELAY_SIG_NONE }, { NULL, 0 },
};

static int
parse_secrets(struct ctx *c, json_t *v, struct relay_verify_conf *vc)
{
	json_t *one = json_object_get(v, "secret_file"), *many = json_object_get(v, "secret_files");
	size_t i, mark;
	int rc = 0;

	if (vc->scheme == RELAY_SIG_NONE) {
		const char *key = one ? "secret_file" : "secret_files";

		if (one || many)
			return fail(c, -RELAY_ECONFIG, at_member(c, v, key), 1, key, "not allowed with scheme \"none\"");
		return 0;
	}
	if (one && many)
		return fail(c, -RELAY_ECONFIG, at_member(c, v, "secret_files"), 1, "secret_files",
		            "use either \"secret_file\" or \"secret_files\", not both");
	if (!one && !many)
		return fail(c, -RELAY_ECONFIG, at_node(c, v), 0, NULL,
		            "missing required key \"secret_file\" (or \"secret_files\")");
	if (one) {
		if (!(vc->secrets = calloc(1, sizeof *vc->secrets)))
			return fail_oom(c);
		vc->n_secrets = 1;
		return secret_member(c, v, "secret_file", &vc->secrets[0]);
	}
	if (!json_is_array(many))
		return fail_type(c, v, "secret_files", "an array of strings", many);
	if (json_array_size(many) == 0 || json_array_size(many) > SECRETS_MAX)
		return fail(c, -RELAY_ECONFIG, at_member(c, v, "secret_files"), 0, "secret_files",
		            "expected 1 to %d file names, got %zu", SECRETS_MAX, json_array_size(many));
	if (!(vc->secrets = calloc(json_array_size(many), sizeof *vc->secrets)))
		return fail_oom(c);
	vc->n_secrets = json_array_size(many);
	mark = path_push(c, "secret_files");
	for (i = 0; i < vc->n_secrets && rc == 0; i++) {
		json_t *f = json_array_get(many, i);
		size_t m = path_push_index(c, i);

		if (!json_is_string(f) || json_string_length(f) == 0)
			rc = fail(c, -RELAY_ECONFIG, at_index(c, many, i), 0, NULL, "expected a non-empty string, got %s",
			          json_is_string(f) ? "an empty one" : relay_config_type_name(f));
		else
			rc = read_secret(c, at_index(c, many, i), NULL, json_string_value(f), &vc->secrets[i]);
		path_pop(c, m);
	}
	path_pop(c, mark);
	return rc;
}

static int
parse_verify(struct ctx *c, json_t *src, struct relay_verify_conf *vc)
{
	static const char *const keys[] = {
		"scheme", "secret_file", "secret_files", "header", "encoding", "prefix", "tolerance_s", NULL,
	};
	static const struct enum_name encodings[] = {
		{ "hex", RELAY_ENC_HEX }, { "base64", RELAY_ENC_BASE64 }, { NULL, 0 },
	};
	/* which scheme each optional key belongs to */
	static const struct { const char *key; const char *schemes; } only[] = {
		{ "header", "hmac-sha256 and token" }, { "encoding", "hmac-sha256" },
		{ "prefix", "hmac-sha256" }, { "tolerance_s", "stripe" },
	};
	char q[96];
	json_t *v;
	size_t mark, i;
	int rc, scheme = RELAY_SIG_NONE, enc = RELAY_ENC_HEX;

	if ((rc = get_object(c, src, "verify", 1, &v)) != 0)
		return rc;
	mark = path_push(c, "verify");
	if ((rc = check_keys(c, v, keys)) != 0 || (rc = get_enum(c, v, "scheme", 1, scheme_names, "scheme", &scheme)) != 0)
		goto out;
	vc->scheme = (enum relay_sig_scheme)scheme;
	for (i = 0; i < sizeof only / sizeof only[0]; i++) {
		int allowed = strcmp(only[i].key, "header") == 0
		              ? scheme == RELAY_SIG_HMAC_SHA256 || scheme == RELAY_SIG_TOKEN
		              : strcmp(only[i].key, "tolerance_s") == 0 ? scheme == RELAY_SIG_STRIPE
		              : scheme == RELAY_SIG_HMAC_SHA256;

		if (!allowed && json_object_get(v, only[i].key)) {
			rc = fail(c, -RELAY_ECONFIG, at_member(c, v, only[i].key), 1, only[i].key,
			          "allowed only with scheme %s, not %s", only[i].schemes,
			          quote(q, sizeof q, json_string_value(json_object_get(v, "scheme"))));
			goto out;
		}
	}
	if ((rc = get_string(c, v, "header", scheme == RELAY_SIG_HMAC_SHA256, &vc->header)) != 0)
		goto out;
	if (vc->header && !header_name_ok(vc->header)) {
		rc = fail(c, -RELAY_ECONFIG, at_member(c, v, "header"), 0, "header", "invalid header name %s",
		          quote(q, sizeof q, vc->header));
		goto out;
	}
	if (scheme == RELAY_SIG_TOKEN && !vc->header && !(vc->header = strdup("Authorization"))) {
		rc = fail_oom(c);
		goto out;
	}
	if ((rc = get_enum(c, v, "encoding", 0, encodings, "encoding", &enc)) != 0
	    || (rc = get_string(c, v, "prefix", 0, &vc->prefix)) != 0
	    || (rc = get_int(c, v, "tolerance_s", 1, 86400, &vc->tolerance_s)) != 0)
		goto out;
	vc->encoding = (enum relay_sig_encoding)enc;
	/* last: the structure is checked before any file is opened */
	rc = parse_secrets(c, v, vc);
out:
	path_pop(c, mark);
	return rc;
}

static int
parse_ref(struct ctx *c, json_t *src, const char *key, int required, struct relay_ref *ref)
{
	static const char *const keys[] = { "header", "pointer", NULL };
	const char *why;
	char q[96];
	json_t *r, *h, *p;
	size_t mark;
	int rc;

	if ((rc = get_object(c, src, key, required, &r)) != 0 || !r)
		return rc;
	mark = path_push(c, key);
	if ((rc = check_keys(c, r, keys)) != 0)
		goto out;
	h = json_object_get(r, "header");
	p = json_object_get(r, "pointer");
	if (h && p) {
		rc = fail(c, -RELAY_ECONFIG, at_member(c, r, "pointer"), 1, "pointer",
		          "use either \"header\" or \"pointer\", not both");
	} else if (!h && !p) {
		rc = fail(c, -RELAY_ECONFIG, at_node(c, r), 0, NULL, "missing required key \"header\" or \"pointer\"");
	} else if (h) {
		ref->kind = RELAY_REF_HEADER;
		if ((rc = get_string(c, r, "header", 1, &ref->name)) == 0 && !header_name_ok(ref->name))
			rc = fail(c, -RELAY_ECONFIG, at_member(c, r, "header"), 0, "header", "invalid header name %s",
			          quote(q, sizeof q, ref->name));
	} else {
		ref->kind = RELAY_REF_POINTER;
		if ((rc = get_string(c, r, "pointer", 1, &ref->name)) == 0 && (why = pointer_problem(ref->name)))
			rc = fail(c, -RELAY_ECONFIG, at_member(c, r, "pointer"), 0, "pointer", "invalid json pointer %s: %s",
			          quote(q, sizeof q, ref->name), why);
	}
out:
	path_pop(c, mark);
	return rc;
}

static int
parse_keep_headers(struct ctx *c, json_t *src, struct relay_source_conf *s)
{
	json_t *a = json_object_get(src, "keep_headers");
	char q[96];
	size_t i, mark;
	int rc = 0;

	if (!a)
		return 0;
	if (!json_is_array(a))
		return fail_type(c, src, "keep_headers", "an array of header names", a);
	if (json_array_size(a) && !(s->keep_headers = calloc(json_array_size(a), sizeof *s->keep_headers)))
		return fail_oom(c);
	mark = path_push(c, "keep_headers");
	for (i = 0; i < json_array_size(a) && rc == 0; i++) {
		json_t *h = json_array_get(a, i);
		size_t m = path_push_index(c, i);

		if (!json_is_string(h))
			rc = fail(c, -RELAY_ECONFIG, at_index(c, a, i), 0, NULL, "expected a string, got %s", relay_config_type_name(h));
		else if (!header_name_ok(json_string_value(h)))
			rc = fail(c, -RELAY_ECONFIG, at_index(c, a, i), 0, NULL, "invalid header name %s",
			          quote(q, sizeof q, json_string_value(h)));
		else if (!(s->keep_headers[i] = strdup(json_string_value(h))))
			rc = fail_oom(c);
		else
			s->n_keep_headers = i + 1;
		path_pop(c, m);
	}
	path_pop(c, mark);
	return rc;
}

static int
parse_source(struct ctx *c, json_t *sources, const char *name, json_t *src, struct relay_source_conf *s)
{
	static const char *const keys[] = {
		"verify", "dedup", "dedup_window_s", "topic", "lane", "keep_headers",
		"require_json", "unrouted", NULL,
	};
	static const struct enum_name unrouted[] = {
		{ "dead", RELAY_UNROUTED_DEAD }, { "drop", RELAY_UNROUTED_DROP }, { NULL, 0 },
	};
	size_t at = at_member(c, sources, name), mark;
	char q[96];
	int rc, require_json = -1, policy = RELAY_UNROUTED_DEAD;

	if (!source_name_ok(name))
		return fail(c, -RELAY_ECONFIG, at, 1, NULL,
		            "invalid source name %s (expected 1 to %d of A-Z a-z 0-9 _ . -, not . or ..)",
		            quote(q, sizeof q, name), SOURCE_NAME_MAX);
	if (!(s->name = strdup(name)))
		return fail_oom(c);
	if (at != NO_ENTRY) {
		s->line = c->cfg->doc->pos[at].key_line;
		s->column = c->cfg->doc->pos[at].key_column;
	}
	if (!json_is_object(src))
		return fail_type(c, sources, name, "an object", src);
	s->dedup_window_s = 259200;
	s->verify.tolerance_s = 300;
	mark = path_push(c, name);
	if ((rc = check_keys(c, src, keys)) != 0
	    || (rc = parse_verify(c, src, &s->verify)) != 0
	    || (rc = parse_ref(c, src, "dedup", 1, &s->dedup)) != 0
	    || (rc = get_int(c, src, "dedup_window_s", 1, S_YEAR, &s->dedup_window_s)) != 0
	    || (rc = parse_ref(c, src, "topic", 0, &s->topic)) != 0
	    || (rc = parse_ref(c, src, "lane", 0, &s->lane)) != 0
	    || (rc = parse_keep_headers(c, src, s)) != 0
	    || (rc = get_bool(c, src, "require_json", &require_json)) != 0
	    || (rc = get_enum(c, src, "unrouted", 0, unrouted, "policy", &policy)) != 0)
		goto out;
	if (require_json < 0)
		/* a pointer can only be followed into a JSON body */
		require_json = s->dedup.kind == RELAY_REF_POINTER || s->topic.kind == RELAY_REF_POINTER
		               || s->lane.kind == RELAY_REF_POINTER;
	s->require_json = require_json;
	s->unrouted = (enum relay_unrouted)policy;
out:
	path_pop(c, mark);
	return rc;
}

static int
parse_sources(struct ctx *c, json_t *root)
{
	struct relay_config *cfg = c->cfg;
	const char *name;
	json_t *sources, *src;
	size_t mark;
	int rc = 0;

	if ((rc = get_object(c, root, "sources", 1, &sources)) != 0)
		return rc;
	if (json_object_size(sources) == 0)
		return fail(c, -RELAY_ECONFIG, at_member(c, root, "sources"), 0, "sources", "expected at least one source");
	if (!(cfg->sources = calloc(json_object_size(sources), sizeof *cfg->sources)))
		return fail_oom(c);
	mark = path_push(c, "sources");
	json_object_foreach(sources, name, src) {
		/* counted before it is filled, so that a failure frees it */
		struct relay_source_conf *s = &cfg->sources[cfg->n_sources++];

		if ((rc = parse_source(c, sources, name, src, s)) != 0)
			break;
	}
	path_pop(c, mark);
	return rc;
}

static int
parse_listen(struct ctx *c, json_t *root)
{
	struct relay_config *cfg = c->cfg;
	json_t *l = json_object_get(root, "listen");
	size_t n, i, mark;
	int rc = 0;

	if (!l)
		return 0; /* socket activation only: the daemon checks it has sockets */
	if (json_is_string(l)) {
		if ((rc = check_address(c, at_member(c, root, "listen"), "listen", json_string_value(l))) != 0)
			return rc;
		if (!(cfg->listen = calloc(1, sizeof *cfg->listen)) || !(cfg->listen[0] = strdup(json_string_value(l))))
			return fail_oom(c);
		cfg->n_listen = 1;
		return 0;
	}
	if (!json_is_array(l))
		return fail_type(c, root, "listen", "a string or an array of strings", l);
	if ((n = json_array_size(l)) == 0)
		return fail(c, -RELAY_ECONFIG, at_member(c, root, "listen"), 0, "listen",
		            "expected at least one address (leave \"listen\" out to use only socket activation)");
	if (!(cfg->listen = calloc(n, sizeof *cfg->listen)))
		return fail_oom(c);
	mark = path_push(c, "listen");
	for (i = 0; i < n && rc == 0; i++) {
		json_t *a = json_array_get(l, i);
		size_t m = path_push_index(c, i);

		if (!json_is_string(a))
			rc = fail(c, -RELAY_ECONFIG, at_index(c, l, i), 0, NULL, "expected a string, got %s", relay_config_type_name(a));
		else if ((rc = check_address(c, at_index(c, l, i), NULL, json_string_value(a))) == 0) {
			if (!(cfg->listen[i] = strdup(json_string_value(a))))
				rc = fail_oom(c);
			else
				cfg->n_listen = i + 1;
		}
		path_pop(c, m);
	}
	path_pop(c, mark);
	return rc;
}

static int
parse_limits(struct ctx *c, json_t *root)
{
	static const char *const keys[] = {
		"max_body_bytes", "header_timeout_ms", "body_timeout_ms", "max_connections",
		"body_budget_bytes", NULL,
	};
	struct relay_limits *l = &c->cfg->limits;
	json_t *o;
	size_t mark;
	int rc;

	if ((rc = get_object(c, root, "limits", 0, &o)) != 0 || !o)
		return rc;
	mark = path_push(c, "limits");
	if ((rc = check_keys(c, o, keys)) == 0
	    && (rc = get_size(c, o, "max_body_bytes", 1, INT64_C(1) << 30, &l->max_body_bytes)) == 0
	    && (rc = get_int(c, o, "header_timeout_ms", 1, MS_DAY, &l->header_timeout_ms)) == 0
	    && (rc = get_int(c, o, "body_timeout_ms", 1, MS_DAY, &l->body_timeout_ms)) == 0
	    && (rc = get_unsigned(c, o, "max_connections", 1, 1000000, &l->max_connections)) == 0
	    && (rc = get_size(c, o, "body_budget_bytes", 1, INT64_C(1) << 40,
	                      &l->body_budget_bytes)) == 0) {
		/* A body the budget cannot hold would be refused with 503 forever. */
		if (!json_object_get(o, "body_budget_bytes")) {
			if (l->body_budget_bytes < l->max_body_bytes)
				l->body_budget_bytes = l->max_body_bytes;
		} else if (l->body_budget_bytes < l->max_body_bytes) {
			rc = fail(c, -RELAY_ECONFIG, at_member(c, o, "body_budget_bytes"), 0,
			          "body_budget_bytes", "must be at least max_body_bytes (%zu)",
			          l->max_body_bytes);
		}
	}
	path_pop(c, mark);
	return rc;
}

static int
parse_odoo(struct ctx *c, json_t *root)
{
	static const char *const keys[] = {
		"url", "database", "login", "api_key_file", "password_file", "protocol",
		"connect_timeout_ms", "timeout_ms", "max_in_flight", "rate_per_s", "module",
		"max_response_bytes", NULL,
	};
	static const struct enum_name protocols[] = {
		{ "auto", RELAY_PROTO_AUTO }, { "jsonrpc", RELAY_PROTO_JSONRPC }, { "json2", RELAY_PROTO_JSON2 },
		{ NULL, 0 },
	};
	struct relay_odoo_conf *od = &c->cfg->odoo;
	const char *why, *secret_key;
	char q[96];
	json_t *o, *rate;
	size_t mark, n;
	int rc, proto = RELAY_PROTO_AUTO;

	if ((rc = get_object(c, root, "odoo", 0, &o)) != 0 || !o)
		return rc;
	od->configured = 1;
	mark = path_push(c, "odoo");
	if ((rc = check_keys(c, o, keys)) != 0 || (rc = get_string(c, o, "url", 1, &od->url)) != 0)
		goto out;
	if ((why = url_problem(od->url))) {
		rc = fail(c, -RELAY_ECONFIG, at_member(c, o, "url"), 0, "url", "invalid url %s: %s",
		          quote(q, sizeof q, od->url), why);
		goto out;
	}
	/* the clients append "/jsonrpc" or "/json/2/..." */
	for (n = strlen(od->url); n > 0 && od->url[n - 1] == '/'; n--)
		od->url[n - 1] = '\0';
	if ((rc = get_string(c, o, "database", 1, &od->database)) != 0
	    || (rc = get_string(c, o, "login", 1, &od->login)) != 0
	    || (rc = get_enum(c, o, "protocol", 0, protocols, "protocol", &proto)) != 0
	    || (rc = get_int(c, o, "connect_timeout_ms", 1, MS_DAY, &od->connect_timeout_ms)) != 0
	    || (rc = get_int(c, o, "timeout_ms", 1, MS_DAY, &od->timeout_ms)) != 0
	    || (rc = get_unsigned(c, o, "max_in_flight", 1, 256, &od->max_in_flight)) != 0
	    || (rc = get_string(c, o, "module", 0, &od->module)) != 0
	    || (rc = get_size(c, o, "max_response_bytes", 1, INT64_C(1) << 30, &od->max_response_bytes)) != 0)
		goto out;
	od->protocol = (enum relay_odoo_protocol)proto;
	if ((rate = json_object_get(o, "rate_per_s"))) {
		if (!json_is_number(rate)) {
			rc = fail_type(c, o, "rate_per_s", "a number", rate);
			goto out;
		}
		if (json_number_value(rate) < 0 || json_number_value(rate) > 1e6) {
			rc = fail(c, -RELAY_ECONFIG, at_member(c, o, "rate_per_s"), 0, "rate_per_s",
			          "%g is out of range (0..1000000)", json_number_value(rate));
			goto out;
		}
		od->rate_per_s = json_number_value(rate);
	}
	if (od->module && !module_name_ok(od->module)) {
		rc = fail(c, -RELAY_ECONFIG, at_member(c, o, "module"), 0, "module",
		          "invalid module name %s (expected a-z 0-9 _, and not one of odoo's own modules)",
		          quote(q, sizeof q, od->module));
		goto out;
	}
	if (json_object_get(o, "api_key_file") && json_object_get(o, "password_file")) {
		rc = fail(c, -RELAY_ECONFIG, at_member(c, o, "password_file"), 1, "password_file",
		          "use either \"api_key_file\" or \"password_file\", not both");
		goto out;
	}
	secret_key = json_object_get(o, "api_key_file") ? "api_key_file" : "password_file";
	if (!json_object_get(o, secret_key)) {
		rc = fail(c, -RELAY_ECONFIG, at_node(c, o), 0, NULL,
		          "missing required key \"api_key_file\" (or \"password_file\")");
		goto out;
	}
	rc = secret_member(c, o, secret_key, &od->api_key);
out:
	path_pop(c, mark);
	return rc;
}

static int
parse_delivery(struct ctx *c, json_t *root)
{
	static const char *const keys[] = {
		"backoff", "circuit_failures", "probe_base_ms", "probe_cap_ms", "drain_timeout_ms",
		NULL,
	};
	static const char *const backoff_keys[] = { "base_ms", "cap_ms", "max_attempts", "max_age_s", NULL };
	struct relay_delivery_conf *d = &c->cfg->delivery;
	json_t *o, *b;
	size_t mark, m;
	int rc;

	if ((rc = get_object(c, root, "delivery", 0, &o)) != 0 || !o)
		return rc;
	mark = path_push(c, "delivery");
	/* A key that was once accepted and did nothing: said plainly, so that
	 * no configuration promises a history the store does not keep. */
	if (json_object_get(o, "retention_s")) {
		rc = fail(c, -RELAY_ECONFIG, at_member(c, o, "retention_s"), 1, "retention_s",
		          "is not supported: delivered events are deleted once their outcome is stored; "
		          "remove the key");
		goto out;
	}
	if ((rc = check_keys(c, o, keys)) != 0 || (rc = get_object(c, o, "backoff", 0, &b)) != 0)
		goto out;
	if (b) {
		m = path_push(c, "backoff");
		if ((rc = check_keys(c, b, backoff_keys)) == 0
		    && (rc = get_int(c, b, "base_ms", 1, MS_DAY, &d->backoff.base_ms)) == 0
		    && (rc = get_int(c, b, "cap_ms", 1, 7 * MS_DAY, &d->backoff.cap_ms)) == 0
		    && (rc = get_unsigned(c, b, "max_attempts", 1, 100000, &d->backoff.max_attempts)) == 0
		    && (rc = get_int(c, b, "max_age_s", 1, S_YEAR, &d->backoff.max_age_s)) == 0
		    && d->backoff.base_ms > d->backoff.cap_ms) {
			const char *key = json_object_get(b, "cap_ms") ? "cap_ms" : "base_ms";

			rc = fail(c, -RELAY_ECONFIG, at_member(c, b, key), 0, key,
			          "base_ms (%" PRId64 ") must not exceed cap_ms (%" PRId64 ")",
			          d->backoff.base_ms, d->backoff.cap_ms);
		}
		path_pop(c, m);
		if (rc)
			goto out;
	}
	if ((rc = get_unsigned(c, o, "circuit_failures", 1, 100000, &d->circuit_failures)) != 0
	    || (rc = get_int(c, o, "probe_base_ms", 1, MS_DAY, &d->probe_base_ms)) != 0
	    || (rc = get_int(c, o, "probe_cap_ms", 1, MS_DAY, &d->probe_cap_ms)) != 0
	    || (rc = get_int(c, o, "drain_timeout_ms", 0, MS_DAY, &d->drain_timeout_ms)) != 0)
		goto out;
	if (d->probe_base_ms > d->probe_cap_ms) {
		const char *key = json_object_get(o, "probe_cap_ms") ? "probe_cap_ms" : "probe_base_ms";

		rc = fail(c, -RELAY_ECONFIG, at_member(c, o, key), 0, key,
		          "probe_base_ms (%" PRId64 ") must not exceed probe_cap_ms (%" PRId64 ")",
		          d->probe_base_ms, d->probe_cap_ms);
	}
out:
	path_pop(c, mark);
	return rc;
}

static void
config_defaults(struct relay_config *cfg)
{
	cfg->map_size = (size_t)1024 << 20;
	cfg->limits.max_body_bytes = 1048576;
	cfg->limits.header_timeout_ms = 10000;
	cfg->limits.body_timeout_ms = 30000;
	cfg->limits.max_connections = 1024;
	cfg->limits.body_budget_bytes = (size_t)32 << 20;
	cfg->odoo.protocol = RELAY_PROTO_AUTO;
	cfg->odoo.connect_timeout_ms = 10000;
	cfg->odoo.timeout_ms = 180000;
	cfg->odoo.max_in_flight = 4;
	cfg->odoo.rate_per_s = 0;
	cfg->odoo.max_response_bytes = 16777216;
	cfg->delivery.backoff.base_ms = 1000;
	cfg->delivery.backoff.cap_ms = 3600000;
	cfg->delivery.backoff.max_attempts = 25;
	cfg->delivery.backoff.max_age_s = 259200;
	cfg->delivery.circuit_failures = 5;
	cfg->delivery.probe_base_ms = 1000;
	cfg->delivery.probe_cap_ms = 60000;
	cfg->delivery.drain_timeout_ms = 10000;
}

static int
config_parse(struct ctx *c, json_t *root)
{
	static const char *const keys[] = {
		"listen", "admin_listen", "state_dir", "map_size_mb", "limits", "sources", "odoo",
		"delivery", "routes", NULL,
	};
	struct relay_config *cfg = c->cfg;
	int64_t map_mb = 1024;
	json_t *routes;
	int rc;

	if (!json_is_object(root))
		return fail(c, -RELAY_ECONFIG, at_node(c, root), 0, NULL,
		            "expected an object at the top level, got %s", relay_config_type_name(root));
	if ((rc = check_keys(c, root, keys)) != 0
	    || (rc = parse_listen(c, root)) != 0
	    || (rc = get_string(c, root, "admin_listen", 0, &cfg->admin_listen)) != 0
	    || (cfg->admin_listen
	        && (rc = check_address(c, at_member(c, root, "admin_listen"), "admin_listen", cfg->admin_listen)) != 0)
	    || (rc = get_string(c, root, "state_dir", 0, &cfg->state_dir)) != 0
	    || (rc = get_int(c, root, "map_size_mb", 1, 1048576, &map_mb)) != 0
	    || (rc = parse_limits(c, root)) != 0
	    || (rc = parse_sources(c, root)) != 0
	    || (rc = parse_odoo(c, root)) != 0
	    || (rc = parse_delivery(c, root)) != 0)
		return rc;
	cfg->map_size = (size_t)map_mb << 20;
	if ((routes = json_object_get(root, "routes"))) {
		if (!json_is_array(routes))
			return fail_type(c, root, "routes", "an array", routes);
		cfg->routes = routes; /* validated by the route compiler */
	}
	{ /* for the checks --check-config makes of the directory itself */
		size_t at = at_member(c, root, "state_dir");

		if (at != NO_ENTRY) {
			cfg->state_dir_line = c->cfg->doc->pos[at].line;
			cfg->state_dir_column = c->cfg->doc->pos[at].column;
		}
	}
	if (!cfg->state_dir && !(cfg->state_dir = strdup("/var/lib/odoo-relay")))
		return fail_oom(c);
	if (!cfg->odoo.module && !(cfg->odoo.module = strdup("odoo_relay")))
		return fail_oom(c);
	return 0;
}

/* ---- public -------------------------------------------------------------- */

static void
error_start(struct relay_config_error *err, const char *file)
{
	if (!err)
		return;
	memset(err, 0, sizeof *err);
	snprintf(err->file, sizeof err->file, "%s", file ? file : "");
}

/* The directory of name, for relative secret paths; NULL for the working one. */
static char *
dir_of(const char *name)
{
	const char *slash = name ? strrchr(name, '/') : NULL;

	if (!slash)
		return NULL;
	if (slash == name)
		return strdup("/");
	return strndup(name, (size_t)(slash - name));
}

static int
config_loadb(const char *name, const char *text, size_t len, unsigned flags,
             struct relay_config **out, struct relay_config_error *err)
{
	struct ctx c = { .err = err, .flags = flags };
	struct relay_config *cfg;
	json_error_t jerr;
	char *base = NULL;
	int rc;

	if (out)
		*out = NULL;
	error_start(err, name);
	if (!out || (!text && len)) {
		if (err)
			snprintf(err->text, sizeof err->text, "invalid arguments");
		return -RELAY_EINVAL;
	}
	if (!(cfg = calloc(1, sizeof *cfg)) || !(cfg->doc = calloc(1, sizeof *cfg->doc))
	    || !(cfg->path = strdup(name ? name : "")) || (name && strrchr(name, '/') && !(base = dir_of(name)))) {
		rc = ENOMEM;
		if (err)
			snprintf(err->text, sizeof err->text, "out of memory");
		goto fail;
	}
	c.cfg = cfg;
	c.base_dir = base;
	cfg->doc->root = json_loadb(text ? text : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (!cfg->doc->root) {
		if (err) {
			err->line = jerr.line > 0 ? (unsigned)jerr.line : 0;
			err->column = jerr.line > 0 && jerr.column > 0 ? (unsigned)jerr.column : 0;
			snprintf(err->text, sizeof err->text, "%s", jerr.text);
			/* jansson quotes the token it choked on ("invalid token near
			 * 'abcdef'"): that may be a secret pasted in the wrong place,
			 * and this text goes to the log. line:column says where. */
			char *near = strstr(err->text, " near ");
			if (near)
				*near = '\0';
		}
		rc = -RELAY_ECONFIG;
		goto fail;
	}
	if ((rc = pos_build(cfg->doc, text, len)) != 0) {
		fail_oom(&c);
		goto fail;
	}
	config_defaults(cfg);
	if ((rc = config_parse(&c, cfg->doc->root)) != 0)
		goto fail;
	free(base);
	*out = cfg;
	return 0;
fail:
	free(base);
	relay_config_free(cfg);
	return rc;
}

int
relay_config_loadb(const char *name, const char *text, size_t len, struct relay_config **out,
                   struct relay_config_error *err)
{
	return config_loadb(name, text, len, 0, out, err);
}

int
relay_config_load(const char *path, struct relay_config **out, struct relay_config_error *err)
{
	return relay_config_load_flags(path, 0, out, err);
}

int
relay_config_load_flags(const char *path, unsigned flags, struct relay_config **out,
                        struct relay_config_error *err)
{
	char *buf = NULL, e[128];
	size_t len = 0, cap = 0;
	int fd, rc;

	if (out)
		*out = NULL;
	error_start(err, path);
	if (!path || !out) {
		if (err)
			snprintf(err->text, sizeof err->text, "invalid arguments");
		return -RELAY_EINVAL;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		rc = errno;
		goto fail;
	}
	/* read to the end rather than trust st_size, so that pipes work too */
	for (;;) {
		ssize_t r;

		if (len == cap) {
			char *nb;

			if (cap >= CONFIG_MAX_BYTES) {
				close(fd);
				free(buf);
				if (err)
					snprintf(err->text, sizeof err->text, "configuration file is larger than %u bytes",
					         CONFIG_MAX_BYTES);
				return -RELAY_ECONFIG;
			}
			cap = cap ? cap * 2 : 8192;
			if (!(nb = realloc(buf, cap))) {
				rc = ENOMEM;
				close(fd);
				goto fail;
			}
			buf = nb;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = errno;
			close(fd);
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	rc = config_loadb(path, buf, len, flags, out, err);
	free(buf);
	return rc;
fail:
	free(buf);
	if (err)
		snprintf(err->text, sizeof err->text, "cannot read configuration file: %s", errtext(e, sizeof e, rc));
	return rc;
}

static void
ref_free(struct relay_ref *r)
{
	free(r->name);
}

void
relay_config_free(struct relay_config *cfg)
{
	size_t i, j;

	if (!cfg)
		return;
	for (i = 0; i < cfg->n_sources; i++) {
		struct relay_source_conf *s = &cfg->sources[i];

		for (j = 0; j < s->verify.n_secrets; j++)
			secret_clear(&s->verify.secrets[j]);
		free(s->verify.secrets);
		free(s->verify.header);
		free(s->verify.prefix);
		ref_free(&s->dedup);
		ref_free(&s->topic);
		ref_free(&s->lane);
		for (j = 0; j < s->n_keep_headers; j++)
			free(s->keep_headers[j]);
		free(s->keep_headers);
		free(s->name);
	}
	free(cfg->sources);
	for (i = 0; i < cfg->n_listen; i++)
		free(cfg->listen[i]);
	free(cfg->listen);
	free(cfg->admin_listen);
	free(cfg->state_dir);
	free(cfg->odoo.url);
	free(cfg->odoo.database);
	free(cfg->odoo.login);
	secret_clear(&cfg->odoo.api_key);
	free(cfg->odoo.module);
	free(cfg->path);
	doc_free(cfg->doc);
	free(cfg);
}

int
relay_config_where(const struct relay_config *cfg, const json_t *node, unsigned *line, unsigned *column)
{
	size_t at = cfg ? pos_find(cfg->doc, node) : NO_ENTRY;

	if (at == NO_ENTRY)
		return -RELAY_ENOTFOUND;
	if (line)
		*line = cfg->doc->pos[at].line;
	if (column)
		*column = cfg->doc->pos[at].column;
	return 0;
}

int
relay_config_error_set(struct relay_config_error *err, const struct relay_config *cfg, const json_t *node,
                       const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -RELAY_ECONFIG;
	error_start(err, cfg ? cfg->path : NULL);
	if (relay_config_where(cfg, node, &err->line, &err->column) != 0)
		err->line = err->column = 0;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof err->text, fmt, ap);
	va_end(ap);
	return -RELAY_ECONFIG;
}

void
relay_config_error_format(const struct relay_config_error *err, char *buf, size_t n)
{
	if (!buf || n == 0)
		return;
	if (!err)
		snprintf(buf, n, "no error");
	else if (err->line && err->file[0])
		snprintf(buf, n, "%s:%u:%u: %s", err->file, err->line, err->column, err->text);
	else if (err->file[0])
		snprintf(buf, n, "%s: %s", err->file, err->text);
	else
		snprintf(buf, n, "%s", err->text);
}

const struct relay_source_conf *
relay_config_source(const struct relay_config *cfg, const char *name, size_t name_len)
{
	size_t i;

	if (!cfg || !name)
		return NULL;
	for (i = 0; i < cfg->n_sources; i++)
		if (strlen(cfg->sources[i].name) == name_len && memcmp(cfg->sources[i].name, name, name_len) == 0)
			return &cfg->sources[i];
	return NULL;
}
