/*
 * odoo-relay: what the route compiler (route.c) and the mapping engine
 * (route_map.c) share: the compiled form of a route. Private to those two
 * files; the contract is include/odoo_relay/route.h.
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
#ifndef ODOO_RELAY_ROUTE_INT_H
#define ODOO_RELAY_ROUTE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "odoo_relay/route.h"

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
	json_t *find;      /* "find": the normalised lookup (route_find_compile), or NULL */
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
	enum relay_lane_policy dead_lane;
	char *destination;   /* the destination's name, or NULL: stored only */
	unsigned batch_max_rows;   /* 1: alone */
	int64_t batch_max_wait_ms;
	json_t *context;     /* "context", or NULL */
	int supersede;       /* "supersede" */
	int body_as_received; /* post: "body": "as_received" */
	enum relay_version_kind version_kind; /* "version"; NONE without */
	char *version_ptr;
	int64_t version_window_s;
	json_t *then;        /* "then": [{"call", "field", "values", "context"?}], or NULL */
	json_t *refuse;      /* "refuse", normalised, or NULL */
	int warnings_fail;   /* "warnings": "fail" */
	int xid_legacy;      /* "external_id_encoding": "legacy" (route_map.c) */
	char *confirm_dest;  /* post: "confirm": the Odoo destination read, or NULL */
	json_t *confirm_fields; /* its "fields" (array of strings), or NULL */
};

struct relay_routes {
	struct relay_route *v;
	size_t n;
};

/* [A-Za-z0-9] and the bytes of extra, every byte of s. */
static inline int
route_valid_chars(const char *s, const char *extra)
{
	for (; *s; s++) {
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || strchr(extra, *s) != NULL))
			return 0;
	}
	return 1;
}

/* A byte an encoded external-ID value keeps as it is: [A-Za-z0-9_]. */
static inline int
route_xid_kept(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	       (ch >= '0' && ch <= '9') || ch == '_';
}

/* route_order.c: the keys orders need (finds, follow-up steps, warnings,
 * refusals). The default time a found id is cached. */
#define RELAY_FIND_CACHE_S 300
struct relay_schema;
/* The "find" member of spec (at what) normalised into *out (new reference):
 * {"model", "field", "pointer", "first", "active_test", "cache_ms",
 * "order"?, "company_id"?}. 0 or a schema error. */
int route_find_compile(struct relay_schema *s, const json_t *spec, const char *what,
                       json_t **out);
/* "then", "refuse" and "warnings" of route into r. */
int route_order_compile(struct relay_schema *s, const json_t *route, struct relay_route *r);

#endif
