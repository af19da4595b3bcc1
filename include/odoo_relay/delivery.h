/*
 * odoo-relay: delivery of stored events into Odoo.
 *
 * The scheduler takes due events from the store (in due order; lanes are
 * serialised by the store, which keeps only each lane's head deliverable),
 * within the target's concurrency and rate limits, while the circuit is
 * closed and delivery is not paused. Each event is mapped by its route into a
 * plan, the plan is executed with the Odoo client, and the outcome is written
 * back through the writer thread:
 *
 *   done          complete: the event leaves the queue
 *   transient     reschedule at now + backoff (Retry-After honoured); dead
 *                 letter after max_attempts or max_age
 *   permanent     dead letter now with Odoo's message (or a few delayed
 *                 retries when the route asks for them)
 *   configuration nothing is charged; the circuit opens (whole target) or the
 *                 route is suspended, and a probe on its own backoff closes it
 *
 * A connection refused opens the circuit at once and charges nothing: it says
 * nothing about the event. A run of circuit_failures transient failures in a
 * row across events (timeouts, 502/503/504) opens it too.
 *
 * An event in flight is not written as such: after a crash it is still
 * queued and is delivered again, which the idempotent plans make safe.
 *
 * Threading: everything runs on the loop thread of base; the store is read
 * there (LMDB reads do not block on locks) and written only via the writer.
 */
#ifndef ODOO_RELAY_DELIVERY_H
#define ODOO_RELAY_DELIVERY_H

#include <stdint.h>

#include "odoo_relay/config.h"
#include "odoo_relay/route.h"

struct event_base;
struct relay_store;
struct relay_writer;
struct relay_metrics;
struct relay_delivery;

struct relay_delivery_status {
	uint64_t queued;         /* events in the store, parked ones included */
	uint64_t dead;
	unsigned in_flight;
	const char *circuit;     /* "closed", "open", "probing" (static text) */
	int64_t circuit_since_ms; /* wall clock of the last change, 0 if never */
	int paused;              /* delivery paused globally (odoo-relayctl pause) */
	uint64_t delivered;      /* since start */
	uint64_t retried;
	uint64_t dead_lettered;
};

/*
 * relay_delivery_start - start delivering. cfg and routes are borrowed until
 * replaced by relay_delivery_set_config (the engine copies what in-flight
 * work needs, so the caller may free the old ones right after). store,
 * writer and metrics must outlive the engine.
 * Returns 0, -RELAY_ECONFIG when cfg has no odoo target, ENOMEM, or an error
 * of the Odoo client's set-up.
 */
int relay_delivery_start(struct event_base *base, struct relay_store *store,
                         struct relay_writer *writer, struct relay_metrics *metrics,
                         const struct relay_config *cfg, const struct relay_routes *routes,
                         struct relay_delivery **out);

/*
 * relay_delivery_set_config - use a reloaded configuration from now on. A
 * changed Odoo target (url, database, login, key, timeouts) gets a new
 * client; calls in flight finish on the old one. All or nothing: on success
 * cfg and routes are borrowed as in relay_delivery_start and the caller may
 * free the previous ones; on failure nothing changed, the engine still
 * borrows the previous cfg and routes, and the caller must keep them.
 * A circuit that was open is probed again at once; if the probe passes, the
 * closing is logged as a probe's would be. Suspended routes are resumed.
 * Loop thread only. Returns 0, -RELAY_ECONFIG when cfg has no odoo target,
 * ENOMEM, or what relay_odoo_new returns (-RELAY_EINVAL, -RELAY_ETRANSPORT).
 */
int relay_delivery_set_config(struct relay_delivery *d, const struct relay_config *cfg,
                              const struct relay_routes *routes);

/* relay_delivery_kick - look for due work now (after an ingest, a replay). */
void relay_delivery_kick(struct relay_delivery *d);

/* relay_delivery_stop_taking - send nothing new (SIGTERM); calls in flight
 * go on until they finish or the engine is freed. */
void relay_delivery_stop_taking(struct relay_delivery *d);

unsigned relay_delivery_in_flight(const struct relay_delivery *d);

/* relay_delivery_status - a snapshot for STATUS= and logs. */
void relay_delivery_status(struct relay_delivery *d, struct relay_delivery_status *st);

/* relay_delivery_metrics - refresh the delivery gauges in m. */
void relay_delivery_metrics(struct relay_delivery *d, struct relay_metrics *m);

/* relay_delivery_free - cancel calls in flight (their events stay queued:
 * nothing is written for them) and free. NULL is a no-op. */
void relay_delivery_free(struct relay_delivery *d);

#endif
