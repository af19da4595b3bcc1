/*
 * odoo-relay: the HTTP face of the daemon.
 *
 *   POST /hooks/<source>  verify, deduplicate and store durably, then answer:
 *                         202 {"id":"…","status":"queued"} once the commit
 *                         holding the event is on disk, or
 *                         200 {"status":"duplicate","id":"<first id>"}
 *   GET  /healthz         200 while the process serves
 *   GET  /readyz          200 when the store is open and not full, else 503
 *   GET  /metrics         Prometheus text format
 *   GET  /query/<name>    a declared Odoo query (query.h), once
 *                         relay_ingest_set_queries was given them: on the
 *                         query listener when there is one, else on the
 *                         webhook listeners (405 for other methods)
 *
 * Every rejection is a JSON body {"error": …, "detail": …}: 400 malformed
 * (also a NUL or bare CR in the request line or a header, an HTTP/1.1
 * request without exactly one Host), 401 signature, 404 unknown source or
 * path, 405 method, 408 slow client, 411 chunked body, 413 body over the
 * limit (answered from the headers), 415 content type, 431 headers too
 * large, 503 store full or failing, or bodies over limits.body_budget_bytes
 * (with Retry-After), 505 HTTP version. Nothing is stored unless the answer
 * is 202.
 *
 * Threading: all functions run on the loop thread of the event_base given to
 * relay_ingest_new(). Completions from the writer arrive on the same thread.
 */
#ifndef ODOO_RELAY_INGEST_H
#define ODOO_RELAY_INGEST_H

#include "odoo_relay/config.h"

struct event_base;
struct relay_ingest;
struct relay_writer;
struct relay_metrics;

/* Called before /metrics is rendered, to refresh gauges, on the loop thread. */
typedef void (*relay_ingest_metrics_fn)(void *arg, struct relay_metrics *m);

/*
 * relay_ingest_new - the handlers, with no listener yet. base, cfg, writer
 * and metrics are borrowed and must outlive the ingest (cfg until replaced
 * with relay_ingest_set_config). The caller owns *out (relay_ingest_free).
 * Returns 0, or ENOMEM (*out untouched).
 */
int relay_ingest_new(struct event_base *base, const struct relay_config *cfg,
                     struct relay_writer *writer, struct relay_metrics *metrics,
                     struct relay_ingest **out);

/*
 * relay_ingest_listen - serve on "host:port". admin != 0: only the GET
 * endpoints (health, readiness, metrics) are served there, with no request
 * body, and the listener stays open through relay_ingest_stop_listening.
 * All webhook listeners (and adopted sockets) share one connection table
 * and one body budget (cfg's limits); admin listeners share another, so an
 * attack on the webhooks does not silence monitoring. Returns 0,
 * -RELAY_EINVAL for a malformed address or more than 16 listeners of a
 * kind, ENOMEM, or the errno of bind/listen.
 */
int relay_ingest_listen(struct relay_ingest *in, const char *hostport, int admin);

/* relay_ingest_listen_queries - serve the queries on "host:port", a
 * listener of their own (query_listen): from then on they are served there
 * only, with health and readiness, and no request body; its connections
 * are a table of their own. It closes with the webhook listeners at
 * relay_ingest_stop_listening. Returns as relay_ingest_listen. */
int relay_ingest_listen_queries(struct relay_ingest *in, const char *hostport);

/* relay_ingest_adopt - serve a listening socket passed by systemd, as a
 * webhook listener. On success the ingest owns fd; on error it stays the
 * caller's. Returns 0, ENOMEM, -RELAY_EINVAL for more than 16 webhook
 * listeners, or the errno of libevent's listener (EIO when it gives none). */
int relay_ingest_adopt(struct relay_ingest *in, int fd);

/* relay_ingest_addresses - write the bound addresses, one "host:port" per
 * line, into buf (n bytes, always NUL-terminated when n > 0): the webhook
 * listeners first, then the admin ones, each followed by " admin", then the
 * query one, followed by " query". A line
 * that does not fit is left out. Returns how many listeners there are
 * (counted whether their line fit or not). Cannot fail. */
int relay_ingest_addresses(const struct relay_ingest *in, char *buf, size_t n);

/* relay_ingest_set_config - use cfg for requests from now on (reload). A
 * request already past its headers finishes under the old one, which the
 * caller frees only after relay_ingest_pending() has dropped to 0 or when
 * the ingest is freed. Listeners are unchanged; cfg's limits apply to the
 * webhook listeners from now on (the admin listener keeps taking no body). */
void relay_ingest_set_config(struct relay_ingest *in, const struct relay_config *cfg);

/* relay_ingest_pending - requests handed to the writer and not yet answered.
 * Cannot fail. */
unsigned relay_ingest_pending(const struct relay_ingest *in);

/* relay_ingest_set_metrics_hook - fn(arg, metrics) runs before /metrics
 * renders, on the loop thread; fn NULL removes the hook. arg is borrowed and
 * must stay valid while the hook is set. Cannot fail. */
void relay_ingest_set_metrics_hook(struct relay_ingest *in, relay_ingest_metrics_fn fn, void *arg);

/* relay_ingest_set_stored_hook - fn(arg) runs after each new event is
 * stored and answered (delivery looks for work then, not at its next poll),
 * on the loop thread; fn NULL removes the hook. arg is borrowed as above.
 * Cannot fail. */
void relay_ingest_set_stored_hook(struct relay_ingest *in, void (*fn)(void *arg), void *arg);

/* relay_ingest_set_queries - serve GET /query/<name> with qs from now on;
 * NULL stops (404). qs is borrowed and must stay valid while set. Cannot
 * fail. */
struct relay_queries;
void relay_ingest_set_queries(struct relay_ingest *in, struct relay_queries *qs);

/* relay_ingest_set_ready - what /readyz reports besides the store's state
 * (0 while starting or draining). Cannot fail. */
void relay_ingest_set_ready(struct relay_ingest *in, int ready);

/* relay_ingest_stop_listening - close the webhook and query listeners (drain on
 * SIGTERM): connections already open are served until they close. The admin
 * listener stays open, so that /readyz can say 503 until the process exits
 * (after relay_ingest_set_ready(in, 0)). Cannot fail. */
void relay_ingest_stop_listening(struct relay_ingest *in);

/* relay_ingest_free - close everything. Requests waiting for the writer are
 * detached and answered into the void. NULL is a no-op. */
void relay_ingest_free(struct relay_ingest *in);

/* relay_ingest_acks_json - the answers given so far against each source's
 * deadline_ms (ack.h relay_acks_json: a malloc'd text the caller frees, or
 * NULL for ENOMEM); *total (may be NULL) how many. Loop thread. */
char *relay_ingest_acks_json(const struct relay_ingest *in, uint64_t *total);

#endif
