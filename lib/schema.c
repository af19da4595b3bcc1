/*
 * odoo-relay: the configuration schema toolkit (contract in
 * include/odoo_relay/schema.h).
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
 * cannot be placed by pointer alone: members are looked up by (object, key)
 * instead, and relay_schema_where() places a shared node only when it occurs
 * once in the document.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "odoo_relay/error.h"
#include "odoo_relay/schema.h"

#define NO_ENTRY SIZE_MAX

/* ---- positions ----------------------------------------------------------- */

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

struct relay_schema_doc {
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
pos_add(struct relay_schema_doc *doc, size_t *cap, const struct pos_entry *e)
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
pos_scan(struct relay_schema_doc *doc, const char *text, size_t len)
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
pos_bind(struct relay_schema_doc *doc, const char *text, json_t *node, const char *key, size_t *next)
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
pos_build(struct relay_schema_doc *doc, const char *text, size_t len)
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
pos_find(const struct relay_schema_doc *doc, const json_t *node)
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
pos_child(const struct relay_schema_doc *doc, size_t at, const char *key, size_t idx)
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

void
relay_schema_doc_free(struct relay_schema_doc *doc)
{
	if (!doc)
		return;
	json_decref(doc->root);
	free(doc->pos);
	free(doc->by_node);
	free(doc);
}

/*
 * Quotes s for an error text: printable ASCII as is, the rest escaped, long
 * values cut short, so that a configured value can neither forge log lines
 * nor flood them.
 */
const char *
relay_schema_quote(char *buf, size_t n, const char *s)
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


/* ---- documents ------------------------------------------------------------ */

int
relay_schema_doc_parse(const char *text, size_t len, struct relay_schema_doc **out,
                       struct relay_config_error *err)
{
	struct relay_schema_doc *doc;
	json_error_t jerr;
	int rc;

	if (out)
		*out = NULL;
	if (!out || (!text && len))
		return -RELAY_EINVAL;
	if (!(doc = calloc(1, sizeof *doc)))
		return ENOMEM;
	doc->root = json_loadb(text ? text : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc->root) {
		if (err) {
			char *near;

			err->line = jerr.line > 0 ? (unsigned)jerr.line : 0;
			err->column = jerr.line > 0 && jerr.column > 0 ? (unsigned)jerr.column : 0;
			snprintf(err->text, sizeof err->text, "%s", jerr.text);
			/* jansson quotes the token it choked on ("invalid token near
			 * 'abcdef'"): that may be a secret pasted in the wrong place,
			 * and this text goes to the log. line:column says where. */
			if ((near = strstr(err->text, " near ")))
				*near = '\0';
		}
		relay_schema_doc_free(doc);
		return -RELAY_ECONFIG;
	}
	if ((rc = pos_build(doc, text, len)) != 0) {
		relay_schema_doc_free(doc);
		return rc;
	}
	*out = doc;
	return 0;
}

json_t *
relay_schema_doc_root(const struct relay_schema_doc *doc)
{
	return doc ? doc->root : NULL;
}

static int
entry_where(const struct relay_schema_doc *doc, size_t at, int at_key, unsigned *line,
            unsigned *column)
{
	const struct pos_entry *e;

	if (at == NO_ENTRY)
		return -RELAY_ENOTFOUND;
	e = &doc->pos[at];
	if (at_key && !e->key_line)
		return -RELAY_ENOTFOUND;
	if (line)
		*line = at_key ? e->key_line : e->line;
	if (column)
		*column = at_key ? e->key_column : e->column;
	return 0;
}

int
relay_schema_where(const struct relay_schema_doc *doc, const json_t *node, unsigned *line,
                   unsigned *column)
{
	return entry_where(doc, pos_find(doc, node), 0, line, column);
}

int
relay_schema_where_member(const struct relay_schema_doc *doc, const json_t *obj, const char *key,
                          int at_key, unsigned *line, unsigned *column)
{
	if (!key || !json_is_object(obj))
		return -RELAY_ENOTFOUND;
	return entry_where(doc, pos_child(doc, pos_find(doc, obj), key, 0), at_key, line, column);
}

int
relay_schema_where_index(const struct relay_schema_doc *doc, const json_t *arr, size_t i,
                         unsigned *line, unsigned *column)
{
	if (!json_is_array(arr))
		return -RELAY_ENOTFOUND;
	return entry_where(doc, pos_child(doc, pos_find(doc, arr), NULL, i), 0, line, column);
}

/* ---- a validation in progress --------------------------------------------- */

void
relay_schema_init(struct relay_schema *s, const struct relay_schema_doc *doc, const char *file,
                  struct relay_config_error *err, enum relay_schema_place place)
{
	memset(s, 0, sizeof *s);
	s->doc = doc;
	s->file = file;
	s->err = err;
	s->place = place;
}

void
relay_schema_scope(struct relay_schema *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->scope, sizeof s->scope, fmt, ap);
	va_end(ap);
}

size_t
relay_schema_push(struct relay_schema *s, const char *key)
{
	size_t mark = s->path_len;

	snprintf(s->path + mark, sizeof s->path - mark, "%s%s", mark ? "." : "", key);
	s->path_len = strnlen(s->path, sizeof s->path - 1);
	return mark;
}

size_t
relay_schema_push_index(struct relay_schema *s, size_t i)
{
	size_t mark = s->path_len;

	snprintf(s->path + mark, sizeof s->path - mark, "[%zu]", i);
	s->path_len = strnlen(s->path, sizeof s->path - 1);
	return mark;
}

void
relay_schema_pop(struct relay_schema *s, size_t mark)
{
	if (mark > s->path_len)
		return;
	s->path_len = mark;
	s->path[mark] = '\0';
}

static int
is_shared(const json_t *v)
{
	return json_is_true(v) || json_is_false(v) || json_is_null(v);
}

/* The place of an error (see relay_schema_error); 0 0 when there is none. */
static void
place(const struct relay_schema *s, const json_t *container, const char *key, size_t index,
      unsigned flags, unsigned *line, unsigned *column)
{
	int rc;

	*line = *column = 0;
	if (!container)
		return;
	if (flags & RELAY_SCHEMA_INDEX) {
		rc = relay_schema_where_index(s->doc, container, index, line, column);
	} else if (!key) {
		rc = relay_schema_where(s->doc, container, line, column);
	} else if (s->place == RELAY_SCHEMA_PLACE_VALUE) {
		const json_t *v = json_object_get(container, key);

		if (!v || is_shared(v) || (flags & RELAY_SCHEMA_ACROSS))
			rc = relay_schema_where(s->doc, container, line, column);
		else
			rc = relay_schema_where(s->doc, v, line, column);
	} else {
		rc = relay_schema_where_member(s->doc, container, key, (flags & RELAY_SCHEMA_AT_KEY) != 0,
		                               line, column);
	}
	if (rc != 0)
		*line = *column = 0;
}

__attribute__((format(printf, 7, 0)))
static int
verror(struct relay_schema *s, int rc, const json_t *container, const char *key, size_t index,
       unsigned flags, const char *fmt, va_list ap)
{
	struct relay_config_error *err = s->err;
	const char *member = (flags & RELAY_SCHEMA_UNNAMED) ? NULL : key;
	size_t used;

	if (!err)
		return rc;
	memset(err, 0, sizeof *err);
	snprintf(err->file, sizeof err->file, "%s", s->file ? s->file : "");
	place(s, container, key, index, flags, &err->line, &err->column);
	snprintf(err->text, sizeof err->text, "%s%s%s%s%s%s", s->scope, s->scope[0] ? ": " : "",
	         s->path, s->path_len && member ? "." : "", member ? member : "",
	         s->path_len || member ? ": " : "");
	used = strlen(err->text);
	vsnprintf(err->text + used, sizeof err->text - used, fmt, ap);
	return rc;
}

int
relay_schema_error(struct relay_schema *s, int rc, const json_t *container, const char *key,
                   size_t index, unsigned flags, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rc = verror(s, rc, container, key, index, flags, fmt, ap);
	va_end(ap);
	return rc;
}

int
relay_schema_fail(struct relay_schema *s, const json_t *obj, const char *key, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = verror(s, -RELAY_ECONFIG, obj, key, 0, 0, fmt, ap);
	va_end(ap);
	return rc;
}

int
relay_schema_fail_at(struct relay_schema *s, const json_t *v, const json_t *parent, const char *fmt, ...)
{
	va_list ap;
	int rc;

	if (!v || is_shared(v))
		v = parent;
	va_start(ap, fmt);
	rc = verror(s, -RELAY_ECONFIG, v, NULL, 0, 0, fmt, ap);
	va_end(ap);
	return rc;
}

const char *
relay_schema_type_name(const json_t *v)
{
	if (!v)
		return "nothing";
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

int
relay_schema_fail_type(struct relay_schema *s, const json_t *obj, const char *key, const char *want)
{
	return relay_schema_fail(s, obj, key, "expected %s, got %s", want,
	                         relay_schema_type_name(json_object_get(obj, key)));
}

int
relay_schema_fail_missing(struct relay_schema *s, const json_t *obj, const char *key)
{
	return relay_schema_fail(s, obj, NULL, "missing required key \"%s\"", key);
}

int
relay_schema_oom(struct relay_schema *s)
{
	return relay_schema_error(s, ENOMEM, NULL, NULL, 0, 0, "out of memory");
}

/* ---- checks and typed getters ------------------------------------------------ */

int
relay_schema_keys(struct relay_schema *s, const json_t *obj, const char *const *known,
                  const char *note)
{
	char q[96];
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v) {
		const char *const *k;

		for (k = known; *k && strcmp(*k, key) != 0; k++)
			;
		if (!*k)
			return relay_schema_error(s, -RELAY_ECONFIG, obj, key, 0,
			                          RELAY_SCHEMA_AT_KEY | RELAY_SCHEMA_UNNAMED,
			                          "unknown key %s%s%s", relay_schema_quote(q, sizeof q, key),
			                          note ? " " : "", note ? note : "");
	}
	return 0;
}

static int
get_typed(struct relay_schema *s, const json_t *obj, const char *key, int required,
          int (*is)(const json_t *), const char *want, json_t **out)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v)
		return required ? relay_schema_fail_missing(s, obj, key) : 0;
	if (!is(v))
		return relay_schema_fail_type(s, obj, key, want);
	*out = v;
	return 0;
}

static int
is_object(const json_t *v)
{
	return json_is_object(v);
}

static int
is_array(const json_t *v)
{
	return json_is_array(v);
}

int
relay_schema_object(struct relay_schema *s, const json_t *obj, const char *key, int required,
                    json_t **out)
{
	return get_typed(s, obj, key, required, is_object, "an object", out);
}

int
relay_schema_array(struct relay_schema *s, const json_t *obj, const char *key, int required,
                   json_t **out)
{
	return get_typed(s, obj, key, required, is_array, "an array", out);
}

int
relay_schema_string(struct relay_schema *s, const json_t *obj, const char *key, int required,
                    const char **out)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return required ? relay_schema_fail_missing(s, obj, key) : 0;
	if (!json_is_string(v))
		return relay_schema_fail_type(s, obj, key, "a string");
	if (json_string_length(v) == 0)
		return relay_schema_fail(s, obj, key, "must not be empty");
	if (strlen(json_string_value(v)) != json_string_length(v))
		return relay_schema_fail(s, obj, key, "must not contain a NUL character");
	*out = json_string_value(v);
	return 0;
}

int
relay_schema_bool(struct relay_schema *s, const json_t *obj, const char *key, int *out)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return relay_schema_fail_type(s, obj, key, "a boolean");
	*out = json_is_true(v);
	return 0;
}

int
relay_schema_int(struct relay_schema *s, const json_t *obj, const char *key, int64_t lo, int64_t hi,
                 int64_t *out)
{
	json_t *v = json_object_get(obj, key);
	int64_t x;

	if (!v)
		return 0;
	if (!json_is_integer(v))
		return relay_schema_fail_type(s, obj, key, "an integer");
	x = (int64_t)json_integer_value(v);
	if (x < lo || x > hi)
		return relay_schema_fail(s, obj, key, "%" PRId64 " is out of range (%" PRId64 "..%" PRId64 ")",
		                         x, lo, hi);
	*out = x;
	return 0;
}

int
relay_schema_unsigned(struct relay_schema *s, const json_t *obj, const char *key, unsigned lo,
                      unsigned hi, unsigned *out)
{
	int64_t x = *out;
	int rc = relay_schema_int(s, obj, key, lo, hi, &x);

	if (rc == 0)
		*out = (unsigned)x;
	return rc;
}

int
relay_schema_number(struct relay_schema *s, const json_t *obj, const char *key, double lo, double hi,
                    double *out)
{
	json_t *v = json_object_get(obj, key);
	double x;

	if (!v)
		return 0;
	if (!json_is_number(v))
		return relay_schema_fail_type(s, obj, key, "a number");
	x = json_number_value(v);
	if (!(x >= lo && x <= hi))
		return relay_schema_fail(s, obj, key, "%g is out of range (%.15g..%.15g)", x, lo, hi);
	*out = x;
	return 0;
}

int
relay_schema_enum(struct relay_schema *s, const json_t *obj, const char *key, int required,
                  const struct relay_schema_enum *names, const char *what, int *out)
{
	json_t *v = json_object_get(obj, key);
	char q[96], list[256] = "";
	const struct relay_schema_enum *e;

	if (!v)
		return required ? relay_schema_fail_missing(s, obj, key) : 0;
	if (!json_is_string(v))
		return relay_schema_fail_type(s, obj, key, "a string");
	for (e = names; e->name; e++) {
		if (strcmp(e->name, json_string_value(v)) == 0) {
			*out = e->value;
			return 0;
		}
		snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", e == names ? "" : ", ",
		         e->name);
	}
	return relay_schema_fail(s, obj, key, "unknown %s %s (expected one of %s)", what,
	                         relay_schema_quote(q, sizeof q, json_string_value(v)), list);
}

/* ---- shared rules -------------------------------------------------------------- */

int
relay_schema_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > RELAY_SCHEMA_NAME_MAX)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')
		      || *s == '_' || *s == '.' || *s == '-'))
			return 0;
	return 1;
}
