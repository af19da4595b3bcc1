/*
 * odoo-relay: the configuration schema toolkit.
 *
 * One module for everything that reads a part of the configuration document
 * (config.c for its sections, route.c for the routes): where each value is
 * (file:line:column), typed getters with range checks, the check for unknown
 * keys, and error texts in one wording:
 *
 *   <scope>: <path>.<member>: <what is wrong>
 *
 * each part left out when empty ("sources.shop.verify.scheme: unknown scheme
 * ...", "routes[1] (r): backoff.base_ms: 0 is out of range (1..86400000)").
 * The wording of the getters:
 *   expected <a type>, got <a type>          a value of the wrong JSON type
 *   missing required key "<key>"             placed at the object
 *   unknown key "<key>"[ <note>]             a key the object does not take
 *   <n> is out of range (<lo>..<hi>)         an integer or a number
 *   must not be empty                        an empty string
 *   unknown <what> "<v>" (expected one of a, b, c)   an enum by name
 * Configured values in texts are quoted with escapes and cut short, so that a
 * value can neither forge log lines nor flood them.
 *
 * Nothing here does I/O, and nothing here knows what a source, a route or a
 * destination is. Pure; a document is immutable once parsed and may be read
 * from any thread; a struct relay_schema (a validation in progress) belongs
 * to one thread.
 */
#ifndef ODOO_RELAY_SCHEMA_H
#define ODOO_RELAY_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* A configuration error: where, and what. */
struct relay_config_error {
	char file[256];
	unsigned line, column;      /* 1-based; 0 when not tied to a place */
	char text[512];             /* lower case, says what is wrong */
};

/* ---- documents: JSON text with the position of every value --------------- */

struct relay_schema_doc; /* opaque */

/*
 * relay_schema_doc_parse - parse the len bytes at text (duplicate keys are
 * refused) and record where each value and each object key begins.
 * On success returns 0 and *out is a new document (free with
 * relay_schema_doc_free); it keeps no pointer into text. On failure *out is
 * NULL and the result is -RELAY_ECONFIG for text that is not JSON (err, if
 * not NULL, gets jansson's line, column and text; err->file is left alone; the
 * text never quotes the input), ENOMEM, or -RELAY_EINVAL when text is NULL
 * with len > 0 or out is NULL. Thread-safe.
 */
int relay_schema_doc_parse(const char *text, size_t len, struct relay_schema_doc **out,
                           struct relay_config_error *err);

/* relay_schema_doc_root - the parsed value; borrowed, lives as long as doc. */
json_t *relay_schema_doc_root(const struct relay_schema_doc *doc);

/* relay_schema_doc_free - free doc and its JSON tree; NULL is a no-op. */
void relay_schema_doc_free(struct relay_schema_doc *doc);

/*
 * relay_schema_where - line and column (1-based) where node, a value of doc,
 * begins. jansson shares one node for every true, every false and every null,
 * so such a node is placed only when it occurs once in the document.
 * Returns 0, or -RELAY_ENOTFOUND (a NULL doc or node, a node not in doc, a
 * shared node that occurs more than once); line and column may be NULL.
 */
int relay_schema_where(const struct relay_schema_doc *doc, const json_t *node,
                       unsigned *line, unsigned *column);

/*
 * relay_schema_where_member - where member key of object obj begins: its
 * value, or its key when at_key. Found by (object, key), so a true, false or
 * null member is placed too. Returns 0 or -RELAY_ENOTFOUND.
 */
int relay_schema_where_member(const struct relay_schema_doc *doc, const json_t *obj,
                              const char *key, int at_key, unsigned *line, unsigned *column);

/* relay_schema_where_index - where element i of array arr begins. 0 or
 * -RELAY_ENOTFOUND. */
int relay_schema_where_index(const struct relay_schema_doc *doc, const json_t *arr, size_t i,
                             unsigned *line, unsigned *column);

/* ---- a validation in progress ---------------------------------------------- */

/*
 * Where an error about a member points. Config sections point at the member
 * (by object and key): an unknown key at its key, a check across members at
 * the member it names. Routes have always pointed at values: an unknown key
 * at its value, a true, false or null (shared, so with no place of its own)
 * at its object, and a check across members at their object. Both kept, so
 * that no error moves.
 */
enum relay_schema_place { RELAY_SCHEMA_PLACE_MEMBER = 0, RELAY_SCHEMA_PLACE_VALUE };

struct relay_schema {
	const struct relay_schema_doc *doc; /* borrowed; NULL: errors have no position */
	struct relay_config_error *err;     /* borrowed; NULL: errors are not described */
	const char *file;                   /* borrowed; for err->file */
	enum relay_schema_place place;
	char scope[128];                    /* e.g. "routes[1] (r)"; "" for none */
	char path[256];                     /* e.g. "sources.shop.verify" */
	size_t path_len;
};

/* relay_schema_init - start a validation of doc; err and file as in the
 * struct above. Scope and path start empty. */
void relay_schema_init(struct relay_schema *s, const struct relay_schema_doc *doc,
                       const char *file, struct relay_config_error *err,
                       enum relay_schema_place place);

/* relay_schema_scope - set the scope (printf-style; cut to fit). */
void relay_schema_scope(struct relay_schema *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* relay_schema_push - append ".key" (or "key" first) to the path; returns the
 * mark to pop back to. relay_schema_push_index appends "[i]". */
size_t relay_schema_push(struct relay_schema *s, const char *key);
size_t relay_schema_push_index(struct relay_schema *s, size_t i);
void relay_schema_pop(struct relay_schema *s, size_t mark);

/* relay_schema_error flags */
#define RELAY_SCHEMA_AT_KEY  0x1u /* at the member's key, not its value (PLACE_MEMBER only) */
#define RELAY_SCHEMA_INDEX   0x2u /* at element index of container (key is NULL) */
#define RELAY_SCHEMA_UNNAMED 0x4u /* the member's name is not added to the text */
#define RELAY_SCHEMA_ACROSS  0x8u /* a check across members of container (see place) */

/*
 * relay_schema_error - describe an error in s->err and return rc (for
 * `return relay_schema_error(...)`). The place: member key of container, or
 * its element index (RELAY_SCHEMA_INDEX), or container itself (key NULL);
 * no place when container is NULL or not in the document. The text:
 * "<scope>: <path>.<key>: " and the printf-style rest; <key> is left out when
 * NULL or with RELAY_SCHEMA_UNNAMED. err->file is set from s->file.
 */
int relay_schema_error(struct relay_schema *s, int rc, const json_t *container, const char *key,
                       size_t index, unsigned flags, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));

/* relay_schema_fail - relay_schema_error(s, -RELAY_ECONFIG, obj, key, 0, 0, ...). */
int relay_schema_fail(struct relay_schema *s, const json_t *obj, const char *key,
                      const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * relay_schema_fail_at - -RELAY_ECONFIG placed at value v, or at parent when
 * v is NULL or a true, false or null (shared nodes with no place of their
 * own); the text is "<scope>: <path>: " and the rest. For checks that hold a
 * value rather than its (object, key).
 */
int relay_schema_fail_at(struct relay_schema *s, const json_t *v, const json_t *parent,
                         const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* relay_schema_fail_type - "<key>: expected <want>, got <type of the value>". */
int relay_schema_fail_type(struct relay_schema *s, const json_t *obj, const char *key,
                           const char *want);

/* relay_schema_fail_missing - "missing required key \"<key>\"", placed at obj. */
int relay_schema_fail_missing(struct relay_schema *s, const json_t *obj, const char *key);

/* relay_schema_oom - ENOMEM, described as "out of memory" with no place. */
int relay_schema_oom(struct relay_schema *s);

/* ---- checks and typed getters ---------------------------------------------- *
 * Each returns 0, or -RELAY_ECONFIG with s->err filled (the wording above).
 * An absent optional member leaves *out as it was: it holds the default.
 * Strings are borrowed from the document (valid while it lives) and hold no
 * NUL byte. */

/* relay_schema_keys - every key of obj is in known (NULL-terminated); note,
 * if not NULL, is added to the error text ("for operation call"). */
int relay_schema_keys(struct relay_schema *s, const json_t *obj, const char *const *known,
                      const char *note);

/* *out is borrowed from the document (not const, for jansson's iterators) */
int relay_schema_object(struct relay_schema *s, const json_t *obj, const char *key,
                        int required, json_t **out);
int relay_schema_array(struct relay_schema *s, const json_t *obj, const char *key,
                       int required, json_t **out);
/* a non-empty string */
int relay_schema_string(struct relay_schema *s, const json_t *obj, const char *key,
                        int required, const char **out);
int relay_schema_bool(struct relay_schema *s, const json_t *obj, const char *key, int *out);
int relay_schema_int(struct relay_schema *s, const json_t *obj, const char *key, int64_t lo,
                     int64_t hi, int64_t *out);
int relay_schema_unsigned(struct relay_schema *s, const json_t *obj, const char *key,
                          unsigned lo, unsigned hi, unsigned *out);
/* an integer or a real */
int relay_schema_number(struct relay_schema *s, const json_t *obj, const char *key, double lo,
                        double hi, double *out);

struct relay_schema_enum {
	const char *name;
	int value;
};

/* relay_schema_enum - a string among names (terminated by a NULL name);
 * what names the kind of value in the text ("unknown protocol ..."). */
int relay_schema_enum(struct relay_schema *s, const json_t *obj, const char *key, int required,
                      const struct relay_schema_enum *names, const char *what, int *out);

/* ---- shared rules and texts -------------------------------------------------- */

#define RELAY_SCHEMA_NAME_MAX 64

/* relay_schema_name_ok - a route or destination name: 1 to 64 of
 * [A-Za-z0-9_.-]. Pure. */
int relay_schema_name_ok(const char *s);

/* relay_schema_type_name - "an object", "a string", ... for error texts; NULL
 * gives "nothing". Static text; pure. */
const char *relay_schema_type_name(const json_t *v);

/* relay_schema_quote - s quoted for an error text into buf (n bytes, at
 * least 16): printable ASCII as it is, the rest escaped, cut after 64 bytes.
 * Returns buf. Pure. */
const char *relay_schema_quote(char *buf, size_t n, const char *s);

#endif
