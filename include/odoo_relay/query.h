/*
 * odoo-relay: declared read-only Odoo queries served over HTTP.
 *
 *   GET /query/<name>?<param>=<value>&...
 *
 * Each query of the configuration's "queries" (config.h, odoo-relay.conf(5))
 * is a search_read on one Odoo destination whose domain takes the request's
 * parameters as values only (query_spec.h). A request goes through, in
 * order:
 *
 *   1. the query's authentication (token, or hmac-sha256 over the request
 *      target "/query/<name>?<query string as sent>"; none when public)  401
 *   2. the query's rate, then the caller's (by client address)          429
 *   3. the parameters, checked against their declarations               400
 *   4. the cache: an answer younger than cache_s is served at once
 *   5. the destination's circuit (delivery's): open answers 503 at once,
 *      or the stale answer when one is younger than cache_s + stale_s
 *   6. coalescing: a request whose parameters are those of a call in
 *      flight waits for that call
 *   7. the destination's query_max_in_flight: calls past it wait in a
 *      queue (bounded); a full queue answers 503
 *   8. search_read on the query's own Odoo client for that destination;
 *      delivery's calls are never held by queries (it keeps its
 *      max_in_flight), so queries cannot starve it
 *
 * Answers: 200 {"records": [...], "count": n, "cached": bool, "age_s": s}
 * ("truncated": true when records were dropped from the end to stay within
 * max_bytes); 400 when Odoo refuses the query, with its message; 502 when
 * Odoo refuses the relay's credentials; 503 with Retry-After when Odoo is
 * down or the circuit is open and there is no stale answer; 504 when Odoo
 * does not answer within timeout_ms and there is no stale answer. A stale
 * answer is marked "cached": true with its age. Errors are JSON
 * {"error", "detail"} as elsewhere.
 *
 * A reload (relay_queries_prepare, then _commit or _discard) is all or
 * nothing; it empties the caches. Counts survive it, by query name.
 *
 * Metrics (label query): relay_query_requests_total,
 * relay_query_cache_hits_total, relay_query_stale_total,
 * relay_query_odoo_calls_total, relay_query_errors_total (and reason),
 * relay_query_seconds (a histogram of the time to answer). Failures of Odoo are
 * logged, at most once per 10 s per query.
 *
 * Threading: everything runs on the loop thread of the event_base given to
 * relay_queries_new().
 */
#ifndef ODOO_RELAY_QUERY_H
#define ODOO_RELAY_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "odoo_relay/config.h"

struct event_base;
struct relay_metrics;
struct relay_writer;
struct relay_http_request;
struct relay_queries;
struct relay_queries_gen;

/* The path prefix the queries are served under. */
#define RELAY_QUERY_PREFIX "/query/"

/* Whether destination's circuit is open (delivery's state): 1 open, 0 not
 * (or no such destination). Called on the loop thread. */
typedef int (*relay_queries_circuit_fn)(void *arg, const char *destination);

/*
 * relay_queries_new - the queries of cfg, with their Odoo clients. base,
 * metrics and writer are borrowed and must outlive the result; cfg is
 * borrowed until the next relay_queries_commit (the caller keeps it alive
 * as long as it is current). Returns 0 with *out set (free with
 * relay_queries_free), ENOMEM, or what relay_odoo_new returns for a
 * destination (-RELAY_EINVAL, -RELAY_ETRANSPORT); *out untouched on error.
 */
int relay_queries_new(struct event_base *base, struct relay_metrics *metrics,
                      struct relay_writer *writer, const struct relay_config *cfg,
                      struct relay_queries **out);

/* relay_queries_set_circuit - ask fn(arg, destination) before calling
 * Odoo; NULL fn: never open. arg is borrowed while set. Cannot fail. */
void relay_queries_set_circuit(struct relay_queries *qs, relay_queries_circuit_fn fn, void *arg);

/*
 * relay_queries_prepare - the first half of a reload: set up what cfg needs
 * (an Odoo client per destination its queries read) without changing what
 * is served. Returns 0 with *out set, to be given to exactly one of
 * relay_queries_commit or relay_queries_discard; or as relay_queries_new,
 * with nothing changed.
 */
int relay_queries_prepare(struct relay_queries *qs, const struct relay_config *cfg,
                          struct relay_queries_gen **out);

/* relay_queries_commit - serve gen's configuration from now on: requests
 * waiting for Odoo finish on the clients they started on, the caches are
 * emptied. Cannot fail. The previous cfg is no longer used. */
void relay_queries_commit(struct relay_queries *qs, struct relay_queries_gen *gen);

/* relay_queries_discard - forget a prepared gen; NULL is a no-op. */
void relay_queries_discard(struct relay_queries_gen *gen);

/*
 * relay_queries_serve - answer req, a request for path (RELAY_QUERY_PREFIX
 * and the query's name); the method was checked by the caller. Always
 * answers, now or later (relay_http_respond): the caller must not touch req
 * afterwards. Cannot fail.
 */
void relay_queries_serve(struct relay_queries *qs, struct relay_http_request *req);

/* relay_queries_in_flight - calls to Odoo not yet back, and requests
 * waiting for them. Cannot fail. */
unsigned relay_queries_in_flight(const struct relay_queries *qs);

/* relay_queries_note - leave the queries and their counts in the store
 * (note "queries", for odoo-relayctl status) when they changed since the
 * last note. Cheap when nothing changed. Cannot fail (a failed write is
 * retried at the next call). */
void relay_queries_note(struct relay_queries *qs);

/* relay_queries_warn_public - log a warning for each public query (at
 * start); with path set, print "path:line:column: warning: ..." to stderr
 * instead (--check-config). Pure apart from the output. */
void relay_queries_warn_public(const struct relay_config *cfg, const char *path);

/* relay_queries_free - answer every waiting request 503, cancel calls and
 * free. NULL is a no-op. */
void relay_queries_free(struct relay_queries *qs);

#endif
