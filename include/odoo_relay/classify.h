/*
 * odoo-relay: the outcome of one HTTP exchange with Odoo.
 *
 * A pure function (no I/O, no clock: the caller passes "now") from what the
 * transport saw (struct relay_exchange) to a class (enum relay_class in
 * record.h) plus the facts worth keeping (struct relay_outcome). The rules
 * are the table "Classification for a retrying client" of the shared Odoo
 * notes (odoo/API.md); where it leaves a choice, the choice is written here.
 *
 * Transport (nothing or not all of an HTTP answer arrived):
 *   connect      (refused, DNS, TLS, connect timeout: nothing was sent)  transient
 *   timeout      (after sending: outcome unknown)                         transient
 *   reset        (send/receive error, truncated answer: outcome unknown)  transient
 *   too_big      (answer over max_response_bytes)                         permanent:
 *                the same call would get the same answer; the write may
 *                have happened, which is harmless as writes are idempotent
 *   cancelled    (client freed before the answer)                         transient
 *   error        (local failure: out of memory, curl refused the handle)  transient
 *   error_name is "transport.<kind>"; detail is the transport's own text.
 *
 * HTTP status, before looking at the body (error_name "http.<status>" unless
 * the body names an Odoo exception, which then wins):
 *   3xx  (we never follow redirects; 18 redirects /json/2 to its login page)
 *                                                          configuration, target
 *   400  (our request does not parse: a serializer bug)    configuration, route
 *   401  (JSON-2: bad or expired API key)                  configuration, target
 *   403  AccessDenied -> configuration, target; else (AccessError) -> route
 *   404  with an Odoo JSON error body: MissingError -> permanent, other names
 *        (NotFound: no such model or method) -> configuration, route;
 *        without one (the endpoint itself is missing) -> configuration, target
 *   408, 409 (LockError), 425, 429, 502, 503, 504          transient, Retry-After
 *   413  (this request is too large for the server)        permanent
 *   422  UserError/ValidationError/MissingError/RedirectWarning -> by name
 *        (permanent, or route for "Object x doesn't exist"); anything else
 *        (arguments that do not bind) -> configuration, route
 *   500 and other 5xx: by the body's exception name; none -> permanent, unknown
 *   other 4xx and 1xx: permanent, unknown
 *
 * 2xx: JSON-RPC takes the envelope's "error" (classified on error.data.name,
 * never on code or message) or "result"; an envelope with neither is a None
 * result (done, result null). JSON-2 takes the body as the bare result.
 * A 2xx body that does not parse as JSON:
 *   - declared JSON (or no Content-Type): transient "proto.bad_json": most
 *     likely a truncated or garbled answer, and the call's outcome is unknown;
 *   - any other Content-Type (an HTML page from a proxy, a captive portal, a
 *     URL that is not Odoo's): configuration, target, "proto.not_json": it
 *     says nothing about the event, so no attempt is charged, delivery
 *     pauses and the circuit's probe finds out when Odoo answers again.
 * A JSON-RPC body that is JSON but not an object: configuration, target,
 * "proto.envelope".
 *
 * Exception names (matched on the part after the last '.', so
 * "odoo.exceptions.ValidationError" and a bare "ValidationError" are alike):
 *   SerializationFailure LockNotAvailable DeadlockDetected InFailedSqlTransaction
 *   TransactionRollbackError ConcurrencyError LockError           transient
 *   OperationalError: message naming a database that "does not exist" ->
 *     configuration, target; any other (lost or refused connection) -> transient
 *   AccessDenied SessionExpiredException                  configuration, target
 *   AccessError AttributeError TypeError IndexError NotFound
 *     UnprocessableEntity                                  configuration, route
 *   UserError: "Object x doesn't exist" -> configuration, route; else permanent
 *   ValueError: "Invalid field ..." -> configuration, route; else permanent
 *     (a bad value in this event's data: "Wrong value for ...")
 *   ValidationError MissingError RedirectWarning           permanent
 *   anything else, or no name at all                       permanent, unknown
 *
 * load: when the method called is "load" and the call succeeded, the result
 * must be an object whose "ids" is a list (done). "ids": false is permanent,
 * error_name "odoo.load", message the first message of type "error" (else
 * the first message), detail every message with its rows and field, and
 * result the load's result (so that a driver that sent several rows can
 * tell which failed: relay_load_failed_rows). When an error message is an
 * access error (relay_load_message_is_access; Odoo 19 reports missing
 * rights that way, capture 558), it is configuration, route, error_name
 * "odoo.load.access", message that text: it says nothing about the row. Any
 * other shape is permanent, unknown.
 *
 * Thread-safe; allocates only what the outcome owns.
 */
#ifndef ODOO_RELAY_CLASSIFY_H
#define ODOO_RELAY_CLASSIFY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "odoo_relay/config.h"
#include "odoo_relay/record.h"

/* What the transport saw; see the table above for what each one means. */
enum relay_transport {
	RELAY_TRANSPORT_OK = 0,      /* a complete HTTP answer was received */
	RELAY_TRANSPORT_CONNECT,
	RELAY_TRANSPORT_TIMEOUT,
	RELAY_TRANSPORT_RESET,
	RELAY_TRANSPORT_TOO_BIG,
	RELAY_TRANSPORT_CANCELLED,
	RELAY_TRANSPORT_ERROR,
};

/* Whom a configuration failure concerns. */
enum relay_scope {
	RELAY_SCOPE_NONE = 0,        /* not a configuration failure */
	RELAY_SCOPE_TARGET,          /* the whole Odoo target: pause all delivery to it */
	RELAY_SCOPE_ROUTE,           /* this route's mapping: pause that route */
	RELAY_SCOPE_STOP,            /* the destination asks to be stopped (HTTP 410 Gone):
	                                pause it until an operator resumes it */
};

/* Traceback and detail texts are trimmed to at most this many bytes (with
 * the terminating NUL), on a UTF-8 character boundary. */
#define RELAY_CLASSIFY_DETAIL_MAX 2048
/* Messages likewise. */
#define RELAY_CLASSIFY_MESSAGE_MAX 2048

/* One exchange. Every pointer is borrowed for the duration of the call. */
struct relay_exchange {
	enum relay_transport transport;
	const char *transport_detail; /* the transport's error text, or NULL */
	long http_status;             /* 0 when no answer */
	const char *retry_after;      /* the Retry-After header as received, or NULL */
	int64_t now_ms;               /* wall clock, for a Retry-After HTTP-date */
	const char *content_type;     /* or NULL */
	const char *body;             /* need not be NUL-terminated; NULL if none */
	size_t body_len;
	enum relay_odoo_protocol protocol; /* RELAY_PROTO_JSONRPC or RELAY_PROTO_JSON2 */
	const char *method;           /* the Odoo method called ("load"), or NULL */
};

struct relay_outcome {
	enum relay_class klass;
	enum relay_scope scope;       /* RELAY_SCOPE_NONE unless klass is CONFIG */
	int unknown;                  /* 1: no rule knew this failure; log it loudly */
	enum relay_transport transport; /* what the transport saw (RELAY_TRANSPORT_OK when a
	                                   whole answer came, or for outcomes made by hand) */
	long http_status;             /* copied from the exchange */
	int64_t retry_after_ms;       /* the server's Retry-After (transient only), 0 if none */
	char *error_name;             /* NULL for done; else e.g. "odoo.exceptions.ValidationError",
	                                 "http.503", "transport.timeout" */
	char *message;                /* NULL for done; one line or a few, for people */
	char *detail;                 /* trimmed traceback or transport text, or NULL */
	json_t *result;               /* done: the call's result (json null for None); a load
	                                 whose ids is false: its result; else NULL */
	/* Done with a result: where the result's own text lies in the exchange's
	 * body, so that it can be passed on without being encoded again: bytes
	 * [result_at, result_at + result_len). Known only when the body has no key
	 * twice and is what Odoo writes: for JSON-RPC exactly
	 * {"jsonrpc": "2.0", "id": N, "result": R} with that spacing, N an integer
	 * (spaces after R allowed), for JSON-2 the body itself; else result_len
	 * is 0. relay_outcome_copy and relay_outcome_set leave it 0. */
	size_t result_at, result_len;
};

/*
 * relay_classify - classify x into *out (overwritten, not freed first).
 *
 * Returns 0 with *out filled (free with relay_outcome_clear), -RELAY_EINVAL
 * if x or out is NULL or x->protocol is neither JSON-RPC nor JSON-2, or
 * ENOMEM. On failure *out is zeroed (klass RELAY_CLASS_NONE): callers treat
 * that as transient.
 */
int relay_classify(const struct relay_exchange *x, struct relay_outcome *out);

/* relay_load_message_is_access - whether a load() row message is Odoo's
 * text for missing access rights ("You are not allowed to create
 * 'Contact' (res.partner) records..."). NULL gives 0. Pure. */
int relay_load_message_is_access(const char *text);

/* relay_load_failed_rows - the data rows a load() result (ids false) names
 * in its error messages: fail[i] (i < nrows) is the first such message's
 * text for row i (its "rows.from"), borrowed from result, or NULL. Returns
 * how many rows are named. Warnings ("Found more than 10 errors...") name
 * no row: the rows after the last named one were not tried. Pure. */
size_t relay_load_failed_rows(const json_t *result, size_t nrows, const char **fail);

/* relay_outcome_clear - free what o owns and zero it. NULL is a no-op. */
void relay_outcome_clear(struct relay_outcome *o);

/* relay_outcome_copy - a deep copy of src into *dst (dst not freed first;
 * result shared by reference). Returns 0, or ENOMEM with *dst zeroed. */
int relay_outcome_copy(struct relay_outcome *dst, const struct relay_outcome *src);

/* relay_outcome_set - fill *o (not freed first) with a failure of class klass
 * and scope, copying name, message and detail (each may be NULL). Returns 0,
 * or ENOMEM with *o zeroed. For callers that make outcomes of their own
 * (the client's "login failed"). */
int relay_outcome_set(struct relay_outcome *o, enum relay_class klass, enum relay_scope scope,
                      const char *name, const char *message, const char *detail);

/* relay_retry_after_ms - parse a Retry-After value: delta-seconds or an
 * IMF-fixdate HTTP-date (relative to now_ms). Returns milliseconds >= 0
 * (a date in the past gives 0; values are capped at 10^9 s), or -1 when
 * value is NULL or does not parse. */
int64_t relay_retry_after_ms(const char *value, int64_t now_ms);

/* relay_trim_traceback - a copy of text (len bytes) trimmed for logs: the
 * first line, "...", and the last three lines, at most
 * RELAY_CLASSIFY_DETAIL_MAX bytes with the NUL; texts of five lines or fewer
 * are kept whole (then cut to size). Returns a malloc'd string the caller
 * frees, or NULL for ENOMEM or a NULL text. */
char *relay_trim_traceback(const char *text, size_t len);

/* Static names for logs: "ok", "connect", "timeout", "reset", "too_big",
 * "cancelled", "error" ("unknown" for any other value); and "none",
 * "target", "route" ("none" for any other value). Never NULL. */
const char *relay_transport_name(int t);
const char *relay_scope_name(int s);

#endif
