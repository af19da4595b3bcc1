/*
 * odoo-relay: routes, what an event becomes in Odoo.
 *
 * A route matches a source and a topic pattern and names one operation on one
 * Odoo model. The "routes" array of the configuration is compiled once into a
 * struct relay_routes; mapping an event is then a pure function from (route,
 * payload) to a struct relay_plan: what to call in Odoo. The delivery engine
 * executes the plan (looking up external IDs where the plan says so).
 *
 * Configuration schema of one route (odoo-relay.conf(5) documents it):
 *   "name":       required, unique, [A-Za-z0-9_.-]{1,64}
 *   "source":     required, a configured source name
 *   "topics":     ["orders*", "customers/create"] glob patterns ('*' any run of
 *                 characters, '?' one); default ["*"]
 *   "operation":  "upsert" | "write" | "delete" | "call"
 *   "model":      required, e.g. "res.partner"
 *   "destination": the name of a configured destination (config.h); required
 *                 when several are configured, the only one when there is
 *                 one; with none configured the route has none (events are
 *                 stored, not delivered)
 *   "external_id": template of the record's external ID name, e.g.
 *                 "shop_customer_{/id}"; required for upsert, write, delete.
 *                 The module prefix of the Odoo target is prepended:
 *                 "odoo_relay.shop_customer_42". Each value is encoded
 *                 (relay_xid_encode below); the literal text may only hold
 *                 [A-Za-z0-9_-]; at least one pointer, and text between
 *                 any two ("{/shop}--{/id}").
 *   "fields":     object, Odoo field (or "field/id" for a relation by external
 *                 ID) -> value spec; required for upsert and write:
 *                   "literal text with {/json/pointer} parts"   a template (string)
 *                   {"pointer": "/email"}                      the JSON value
 *                   {"template": "..."}                        as the string form
 *                   {"const": <any JSON>}                      a constant
 *                   {"lookup": {"BE": "base.be", ...}, "pointer": "/country", "default": ...}
 *                                                             a table over the value
 *                   {"external": true, "template": "shop_company_{/company_id}"}
 *                                                             an external ID of ours:
 *                                                             module prefix prepended
 *                   {"find": {"model": "product.product", "where": {"default_code": "/sku"},
 *                             "multiple": "fail"|"first", "order": "id asc",
 *                             "active_test": true, "company_id": 1, "cache_s": 300}}
 *                                                             a record of another model
 *                                                             found at delivery time by one
 *                                                             field (the pointer's value,
 *                                                             exact match); upsert load
 *                                                             cells only, in a column named
 *                                                             "field/.id" (its database id)
 *                                                             or "field/id" (its oldest
 *                                                             external ID).
 *                                                             The driver resolves it
 *                                                             (lookup.h): no match or (with
 *                                                             "multiple": "fail", the
 *                                                             default) several matches is a
 *                                                             permanent failure; "first"
 *                                                             needs "order". active_test
 *                                                             [true]: archived records are
 *                                                             not found; company_id: only
 *                                                             that company's or shared
 *                                                             records; cache_s [300]: how
 *                                                             long a found id is reused.
 *                 any spec may add "optional": true (absent path: the field is left
 *                 out) or "default": <JSON> (absent path: this value; not with find).
 *   "lines":      upsert only, nested arrays as sub-rows (order lines):
 *                 {"field": "order_line", "pointer": "/line_items", "fields": {...}}
 *                 where the inner value specs are evaluated against each array item.
 *                 The inner key "id" is required: the line's external-ID template
 *                 ("shop_line_{/id}", same rules as external_id), so that loading
 *                 the record again updates its lines instead of adding new ones.
 *   "owns":       the Odoo fields this route may write (source of truth);
 *                 default: every field in "fields". A field in "fields" that is not
 *                 owned is a configuration error.
 *   "create", "update": booleans, may the route create / update records [true, true]
 *   "missing":    write only: "create" (create it, as upsert would) | "fail" ["fail"]
 *   "method", "args": call only: method name (public: no leading '_') and the
 *                 named arguments as value specs (object), or "args": {"pointer": "/x"}
 *                 for a part of the payload as is.
 *   "backoff":    {"base_ms","cap_ms","max_attempts","max_age_s"} overriding, key by
 *                 key, the destination's backoff (itself over the delivery section's)
 *   "permanent_retries": N delayed retries of a permanent failure (for events that
 *                 may arrive before the record they refer to) [0]
 *   "permanent_retry_delay_ms": [60000]
 *   "dead_lane":  "continue" | "hold": what a dead event does to its lane ["continue"]
 *   "batch":      upsert only: {"max_rows": 1..1000 [100], "max_wait_ms": 0..10000 [5]}:
 *                 due events of the route go to Odoo up to max_rows in one load(),
 *                 a call that is not full waiting up to max_wait_ms for more;
 *                 max_rows 1 sends each alone. An upsert that may not both create
 *                 and update (it looks its record up first) always goes alone; so
 *                 do write, delete and call routes.
 *   "then":       upsert only: a follow-up step or an array of them, run in order on
 *                 the record the load wrote (its id from load's answer), each only when
 *                 a field of the record, read just before, holds one of the values:
 *                 {"call": "action_confirm", "when": {"state": ["draft", "sent"]},
 *                  "context": {...}} (context over the route's). A record in any other
 *                 state skips the step: a replay never repeats it. Each step's found
 *                 value and result are in the event's outcome ("how") and log.
 *   "warnings":   upsert only: "record" | "fail" ["record"]: load() warnings for a row
 *                 that was written (Odoo's "Found multiple matches") are logged at
 *                 warning level and kept with the outcome; "fail" makes them a
 *                 permanent failure of the event (the row stays written).
 *   "refuse":     upsert only: read the record before writing it and refuse, as a
 *                 permanent failure with a clear reason, what Odoo would refuse:
 *                 {"locked_field": "locked", "confirmed": ["sale"],
 *                  "line_model": "sale.order.line" (required with lines),
 *                  "removed_lines": "fail" | "zero", "quantity_field": "product_uom_qty"}.
 *                 A record whose locked_field is true is refused; on a record in a
 *                 confirmed state, lines of ours (external IDs of our module) the event
 *                 no longer has are refused ("fail") or set to quantity 0 first
 *                 ("zero"). In a batch, the reads are made once for all its events.
 *   "context":    an object given to Odoo as the context of each of the route's
 *                 calls (e.g. {"tracking_disable": true})
 *   "supersede":  upsert and write only, boolean [false]: each event carries the
 *                 whole object, so when a lane's head is due and later events of
 *                 the same route wait behind it in its lane, only the newest is
 *                 sent; the older ones end as superseded (delivery.c)
 *   "version":    upsert and write only: the stale-update guard. "/updated_at"
 *                 (a pointer to an RFC 3339 time), or {"pointer": "/updated_at",
 *                 "kind": "rfc3339" | "number", "window_s": 1..31536000 [604800]}.
 *                 The relay keeps the last applied version per route and
 *                 external ID (store.h, versions) for window_s after it was
 *                 applied; an event whose version is older than the one kept
 *                 is not sent and ends as stale (delivery.c). An equal version
 *                 is sent (a time of one-second resolution is shared by two
 *                 real changes). An event without a usable version value
 *                 fails permanently, its message naming the pointer.
 *
 *
 * A route whose destination is of kind "http" (config.h) takes other keys:
 *   "operation":  "post", which is also the default for such a route (and
 *                 refused for an Odoo destination)
 *   "fields":     member -> value spec, the same specs as above except
 *                 "external": the JSON object sent, each value with its JSON
 *                 type (relay_plan.values); or
 *   "body":       "as_received": the event's body is sent as it came (no
 *                 "fields"); ["mapped"]
 *   "confirm":    only for a source of kind odoo: true, or {"destination":
 *                 <an Odoo destination> [the only one configured], "fields":
 *                 [names] [the fields the webhook carries]}. Just before each
 *                 delivery the record (_model, _id) is read from that Odoo
 *                 and its current values replace the webhook's (confirm.h);
 *                 a record that no longer exists ends the event as phantom.
 * with "name", "source", "topics", "destination", "backoff",
 * "permanent_retries", "permanent_retry_delay_ms" and "dead_lane". The keys
 * only Odoo routes take ("model", "external_id", "context", ...) are refused
 * on it, and "body" on an Odoo route. Its model (relay_route_model) is "".
 *
 * Errors of the compiler use the wording of the schema toolkit (schema.h):
 * "routes[1] (name): fields.email: expected ...", placed at the offending value.
 *
 * Threading: a compiled struct relay_routes is immutable and may be read from
 * any thread. relay_route_map is pure and thread-safe. Nothing here does I/O.
 */
#ifndef ODOO_RELAY_ROUTE_H
#define ODOO_RELAY_ROUTE_H

#include <stddef.h>

#include <jansson.h>

#include "odoo_relay/config.h"
#include "odoo_relay/record.h"

struct relay_routes;  /* opaque: the compiled routes */
struct relay_route;   /* opaque: one route */

enum relay_op { RELAY_OP_UPSERT = 0, RELAY_OP_WRITE, RELAY_OP_DELETE, RELAY_OP_CALL,
               RELAY_OP_POST /* a route to an HTTP destination */ };

/* What to do in Odoo for one event. */
struct relay_plan {
	enum relay_op op;
	char *model;
	char *xmlid_module;      /* upsert/write/delete: "odoo_relay" */
	char *xmlid_name;        /* upsert/write/delete: "shop_customer_42" */
	/* upsert: the load() call, ready to send: fields (array of column names,
	 * "id" first) and data (array of rows of strings). Also used by write when
	 * the record is missing and "missing" is "create". */
	json_t *load_fields;
	json_t *load_data;
	/* write: the values for write() (JSON types kept). */
	json_t *values;
	/* call: method and named arguments. */
	char *method;
	json_t *named;
	int may_create, may_update;
	int missing_create;      /* write: create when the record is missing */
	/* upsert/write of a route with "version": the event's version,
	 * normalised (relay_version_parse), and has_version 1. */
	int has_version;
	int64_t version;
	/* upsert: the "find" cells of load_data, to resolve before the load:
	 * [{"row", "col", "value" (text), "what", and the route's find object:
	 * "model", "field", "first", "active_test", "cache_ms", "order"?,
	 * "company_id"?, "as_xmlid"? (a "field/id" column)}], or NULL when there
	 * are none. The cells hold "" until
	 * the driver writes the found id in. */
	json_t *finds;
};

/* The kinds of a route's "version" value. */
enum relay_version_kind {
	RELAY_VERSION_NONE = 0,  /* the route has no "version" */
	RELAY_VERSION_RFC3339,   /* a time: microseconds since the epoch, UTC */
	RELAY_VERSION_NUMBER,    /* an integer, as it is */
};

#define RELAY_ROUTE_VERSION_WINDOW_S (7 * 86400)
#define RELAY_ROUTE_VERSION_WINDOW_S_MAX (365 * 86400)

/*
 * relay_routes_compile - compile cfg->routes (may be NULL: no routes).
 * Checks every route against the sources and destinations of cfg. On success
 * returns 0 and *out is a new struct the caller owns (free with
 * relay_routes_free). On failure *out is NULL and the result is
 * -RELAY_ECONFIG, with err (if not NULL) naming the file, the route and the
 * key, at the line and column of the offending value; ENOMEM; or
 * -RELAY_EINVAL when cfg or out is NULL. The result refers to nothing in
 * cfg: it may outlive it. Thread-safe (cfg is only read).
 */
int relay_routes_compile(const struct relay_config *cfg, struct relay_routes **out,
                         struct relay_config_error *err);

/* relay_routes_free - free routes and every route in it; NULL is a no-op. No
 * pointer from the accessors below may be used afterwards. */
void relay_routes_free(struct relay_routes *routes);

/*
 * Lookups and accessors. Each is pure and may be called from any thread.
 * A const struct relay_route * and every string returned are borrowed from
 * the struct relay_routes they came from and live exactly as long as it does.
 * Lookups accept NULL routes (nothing found); the relay_route_* accessors
 * require a route from these lookups (NULL is undefined behaviour).
 */

/* relay_routes_match - the first route for this source whose topic patterns
 * match topic (NULL counts as ""), or NULL (also for a NULL source). */
const struct relay_route *relay_routes_match(const struct relay_routes *routes,
                                             const char *source, const char *topic);

/* relay_routes_find - the route called name, or NULL (also for a NULL name). */
const struct relay_route *relay_routes_find(const struct relay_routes *routes, const char *name);

/* relay_routes_count - the number of routes; 0 for NULL. */
size_t relay_routes_count(const struct relay_routes *routes);
/* relay_routes_at - route i in the order of the file, or NULL when i >= count. */
const struct relay_route *relay_routes_at(const struct relay_routes *routes, size_t i);

/* relay_route_name - its "name". */
const char *relay_route_name(const struct relay_route *r);
/* relay_route_model - its "model" ("res.partner"). */
const char *relay_route_model(const struct relay_route *r);
/* relay_route_op - its "operation". */
enum relay_op relay_route_op(const struct relay_route *r);
/* relay_route_destination - the name of its destination (see "destination"
 * above), or NULL when no destination is configured. */
const char *relay_route_destination(const struct relay_route *r);
#define RELAY_ROUTE_BATCH_ROWS 100
#define RELAY_ROUTE_BATCH_ROWS_MAX 1000
#define RELAY_ROUTE_BATCH_WAIT_MS 5

/* relay_route_batch - how many of its events may go in one call (1: each
 * alone) and how long a call that is not full waits for more. */
void relay_route_batch(const struct relay_route *r, unsigned *max_rows, int64_t *max_wait_ms);
/* relay_route_context - its "context" object, or NULL. */
const json_t *relay_route_context(const struct relay_route *r);
/* relay_route_body_as_received - 1 for a post route with "body":
 * "as_received" (the event's body is sent as it came), else 0. */
int relay_route_body_as_received(const struct relay_route *r);
/* relay_route_confirm - the Odoo destination a post route's "confirm"
 * reads, or NULL without "confirm"; *fields (if fields is not NULL) gets its
 * "fields" array or NULL (the webhook's fields). Borrowed from r. */
const char *relay_route_confirm(const struct relay_route *r, const json_t **fields);
/* relay_route_supersede - its "supersede" [0]. */
int relay_route_supersede(const struct relay_route *r);
/* relay_route_version - its "version" kind (RELAY_VERSION_NONE: none), with
 * the pointer (borrowed) and the window in seconds in *pointer and
 * *window_s (either may be NULL). */
enum relay_version_kind relay_route_version(const struct relay_route *r, const char **pointer,
                                            int64_t *window_s);
/* relay_route_backoff - the effective backoff: the route's own "backoff"
 * keys, else its destination's, else the delivery section's. Never NULL. */
const struct relay_backoff_conf *relay_route_backoff(const struct relay_route *r);
/* relay_route_permanent_retries - its "permanent_retries" [0]. */
unsigned relay_route_permanent_retries(const struct relay_route *r);
/* relay_route_permanent_retry_delay_ms - its "permanent_retry_delay_ms" [60000]. */
int64_t relay_route_permanent_retry_delay_ms(const struct relay_route *r);
/* relay_route_dead_lane - what its dead events do to their lane ["continue"]. */
enum relay_lane_policy relay_route_dead_lane(const struct relay_route *r);

/* relay_route_then - its "then" steps, normalised: [{"call", "field",
 * "values", "context"?}], or NULL. relay_route_refuse - its "refuse",
 * normalised ({"locked_field", "confirmed", "line_model"?, "zero",
 * "quantity_field", "line_field"}), or NULL. relay_route_warnings_fail - 1
 * when "warnings" is "fail". Borrowed from the routes. */
const json_t *relay_route_then(const struct relay_route *r);
const json_t *relay_route_refuse(const struct relay_route *r);
int relay_route_warnings_fail(const struct relay_route *r);

/*
 * relay_route_map - the plan for one event. payload is the parsed body (only
 * read; the plan holds copies, not references into it); module is the
 * external-ID module prefix of the destination ([A-Za-z0-9_]+). On success
 * returns 0 and *plan is filled: the caller owns it and frees it with
 * relay_plan_clear. A payload that lacks a required path returns
 * -RELAY_EPATH and why names the path ("missing /customer/email"); a value
 * of the wrong kind (an object where text is needed, a lookup with no entry
 * and no default) returns -RELAY_EINVAL with why saying so; so do a NULL
 * route or payload and a bad module; ENOMEM. On failure *plan is empty (as
 * after relay_plan_clear); -RELAY_EINVAL without touching it when plan is
 * NULL. why is a buffer of whysz bytes (may be NULL); payload values never
 * go into it. Pure; thread-safe.
 */
int relay_route_map(const struct relay_route *r, const json_t *payload, const char *module,
                    struct relay_plan *plan, char *why, size_t whysz);

/*
 * relay_route_version_key - the stale guard's view of one event, without
 * the rest of its plan: the encoded external-ID name (what the plan's
 * xmlid_name would be) in *name (malloc'd, the caller frees) and the
 * normalised version in *version. Returns 0; -RELAY_EINVAL when the route
 * has no "version" (or r, payload, name or version is NULL); and for the
 * payload the errors of relay_route_map with the same texts in why (a
 * missing version "missing /updated_at for version", an unusable one
 * "version: /updated_at is not an RFC 3339 time"). On failure *name is
 * NULL. Pure; thread-safe.
 */
int relay_route_version_key(const struct relay_route *r, const json_t *payload, char **name,
                            int64_t *version, char *why, size_t whysz);

/*
 * relay_version_parse - the comparable form of a version value v:
 *   RELAY_VERSION_RFC3339: a string "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)"
 *     ('T' may be 't' or ' ', 'Z' may be 'z'; the fraction has 1 to 9
 *     digits and is cut to microseconds; seconds 60 (a leap second) reads
 *     as the next minute's 0): microseconds since 1970-01-01T00:00:00Z, so
 *     that one instant written with two offsets compares equal. Years
 *     0001-9999.
 *   RELAY_VERSION_NUMBER: a JSON integer, or a string of an optional '-'
 *     and 1 to 19 decimal digits, within int64; reals are refused (a
 *     version is a counter; use rfc3339 for times).
 * Returns 0 with *out set, or -RELAY_EINVAL (nothing else fits; *out
 * untouched). Pure; thread-safe.
 */
int relay_version_parse(enum relay_version_kind kind, const json_t *v, int64_t *out);

/* relay_plan_clear - free what plan holds and zero it; NULL is a no-op. */
void relay_plan_clear(struct relay_plan *plan);

/*
 * External-ID encoding: how a payload value becomes (part of) the name of an
 * external ID. Every byte of [A-Za-z0-9_] is kept; every other byte,
 * including '-' itself, becomes '-' and its value in two upper-case hex
 * digits: "alice.smith" -> "alice-2Esmith", "alice_smith" -> "alice_smith",
 * "1.5" -> "1-2E5", "A-1" -> "A-2D1", "Müller" -> "M-C3-BCller". The output
 * uses only [A-Za-z0-9_-]: no '.', which would move Odoo's module/name
 * split, and no space, which Odoo refuses. The encoding is injective and
 * reversible (relay_xid_decode), so two different values never share a
 * record, and values made of letters, digits and '_' only (numeric ids,
 * "cus_Nx8...") read the same as before the encoding existed. Nothing is
 * cut: the output is at most 3n bytes.
 */

/*
 * relay_xid_encode - the encoded form of the n bytes at s (any bytes, NUL
 * included) into out (outsz bytes), NUL-terminated.
 * Returns 0; -RELAY_EINVAL when s is NULL or n is 0 (an empty value names
 * nothing); -RELAY_ETOOBIG when the output and its NUL do not fit (3n + 1
 * bytes always do). On failure out is "" if outsz > 0. Pure, thread-safe.
 */
int relay_xid_encode(const char *s, size_t n, char *out, size_t outsz);

/*
 * relay_xid_decode - the bytes whose encoded form is the n bytes at s, into
 * out (outsz bytes; n + 1 always suffice), NUL-terminated, their count in
 * *outlen (outlen may be NULL; the bytes may hold a NUL).
 * Returns 0; -RELAY_EINVAL when s is NULL, empty or not an encoder's output:
 * a byte outside [A-Za-z0-9_-], a '-' not followed by two upper-case hex
 * digits, or an escape of a byte that is kept as it is ("-41" for 'A');
 * -RELAY_ETOOBIG when out is too small. On failure out is "" if outsz > 0
 * and *outlen 0. Pure, thread-safe.
 */
int relay_xid_decode(const char *s, size_t n, char *out, size_t outsz, size_t *outlen);

#endif
