/*
 * odoo-relay: delivery of stored events to their destinations, the wiring
 * of the rooms below it.
 *
 *   store ──▶ scheduler (due events, lanes, each destination's limits)
 *         ──▶ driver of the event's destination (destination.h) ──▶ outcome
 *         ──▶ circuit of that destination (circuit.h), held routes
 *             (route_hold.h), and settle (settle.h) ──▶ writer ──▶ store
 *
 * Each destination of the configuration has its own driver instance, its
 * own circuit with its probe, its own limits (calls in flight, rate) and
 * its own pause (odoo-relayctl pause --destination). An event's route and
 * destination are decided when it is scheduled, from the configuration in
 * force then. What each outcome does:
 *
 *   done          the event leaves the queue (settle)
 *   transient     retried with backoff, Retry-After honoured, then dead;
 *                 a run of circuit_failures of them across distinct events
 *                 opens the destination's circuit
 *   permanent     dead letter now (or a few delayed retries if the route
 *                 asks), with the destination's message
 *   configuration nothing is charged: the destination's circuit opens, or
 *                 only the route is held, and a probe (or one of the route's
 *                 events, later) finds out when it works again
 *   no connection the circuit opens at once; nothing is charged
 *
 * An event in flight is not written as such: after a crash it is still
 * queued and is delivered again, which idempotent calls make safe.
 *
 * Threading: everything runs on the loop thread of base; the store is read
 * there (LMDB reads do not block on locks) and written only via the writer.
 */
#ifndef ODOO_RELAY_DELIVERY_H
#define ODOO_RELAY_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

#include "odoo_relay/config.h"
#include "odoo_relay/route.h"

struct event_base;
struct relay_store;
struct relay_writer;
struct relay_metrics;
struct relay_delivery;

/* One destination in a status snapshot. Texts are the engine's, valid until
 * its next call. */
struct relay_delivery_dest_status {
	const char *name;
	const char *kind;            /* "odoo" */
	const char *protocol;        /* "jsonrpc", "json2", "auto" before it told */
	const char *circuit;         /* "closed", "open", "probing", "half-open" */
	int64_t circuit_since_ms;    /* wall clock: when delivery stopped or resumed */
	const char *error;           /* why the circuit opened; "" when closed */
	unsigned in_flight;
	int paused;                  /* odoo-relayctl pause --destination */
};

#define RELAY_DELIVERY_MAX_DEST 64

struct relay_delivery_status {
	uint64_t queued;             /* events in the store, parked ones included */
	uint64_t dead;
	unsigned in_flight;
	const char *circuit;         /* the least healthy destination's state (static text) */
	int64_t circuit_since_ms;
	int paused;                  /* delivery paused globally (odoo-relayctl pause) */
	uint64_t delivered;          /* since start */
	uint64_t retried;
	uint64_t dead_lettered;
	size_t n_dest;
	struct relay_delivery_dest_status dest[RELAY_DELIVERY_MAX_DEST];
};

/*
 * relay_delivery_start - start delivering to every destination of cfg.
 * cfg and routes are borrowed until replaced by relay_delivery_set_config
 * (the engine copies what work in flight needs, so the caller may free the
 * old ones right after a successful replacement). store, writer and metrics
 * must outlive the engine. Nothing is sent to a destination before it
 * answered a probe.
 * Returns 0; -RELAY_ECONFIG when cfg has no destination or more than
 * RELAY_DELIVERY_MAX_DEST; -RELAY_EINVAL for a destination kind without a
 * driver; ENOMEM; or what a driver's set-up returns (-RELAY_EINVAL,
 * -RELAY_ETRANSPORT). On failure *out is untouched and nothing runs.
 */
int relay_delivery_start(struct event_base *base, struct relay_store *store,
                         struct relay_writer *writer, struct relay_metrics *metrics,
                         const struct relay_config *cfg, const struct relay_routes *routes,
                         struct relay_delivery **out);

/*
 * relay_delivery_set_config - use a reloaded configuration from now on.
 * All or nothing: every destination's new driver instance is set up first
 * (the key file may have been rotated); if one fails, nothing changed, the
 * engine still borrows the previous cfg and routes, and the caller must keep
 * them. On success cfg and routes are borrowed as in relay_delivery_start
 * and the caller may free the previous ones. Calls in flight finish on the
 * instances they started on. A destination that stays (by name) keeps its
 * circuit and is probed again at once (an open circuit that then closes is
 * logged as closed); a new one starts probing; one that is gone takes no
 * new events and is freed when its last call is back. Held routes are
 * released. Queued events take the new routes and destinations.
 * Loop thread only. Returns as relay_delivery_start.
 */
int relay_delivery_set_config(struct relay_delivery *d, const struct relay_config *cfg,
                              const struct relay_routes *routes);

/* relay_delivery_kick - look for due work now (after an ingest, a replay).
 * Cheap: the look happens on the next loop turn, once for many kicks. */
void relay_delivery_kick(struct relay_delivery *d);

/* relay_delivery_stop_taking - send nothing new (SIGTERM); calls in flight
 * go on until they finish or the engine is freed. */
void relay_delivery_stop_taking(struct relay_delivery *d);

/* relay_delivery_in_flight - events being handled, outcomes being written
 * included: 0 means nothing is left to wait for at a drain. */
unsigned relay_delivery_in_flight(const struct relay_delivery *d);

/* relay_delivery_status - a snapshot for STATUS= and logs into *st. Reads
 * the store's counters. */
void relay_delivery_status(struct relay_delivery *d, struct relay_delivery_status *st);

/* relay_delivery_metrics - refresh the delivery gauges in m (labelled by
 * destination where they are a destination's). */
void relay_delivery_metrics(struct relay_delivery *d, struct relay_metrics *m);

/* relay_delivery_free - cancel calls in flight (their events stay queued:
 * nothing is written for them) and free. Outcomes still waiting for the
 * writer must have been completed first (stop the writer before). NULL is
 * a no-op. */
void relay_delivery_free(struct relay_delivery *d);

/* relay_delivery_circuit_open - 1 when the destination called destination
 * is known to be failing (relay_circuit_down: open, or probing after it was
 * open), so other callers should hold back too, else 0 (closed, half-open,
 * the quiet probe of a start or reload, no such destination, NULL d). Loop
 * thread only; cannot fail. */
int relay_delivery_circuit_open(const struct relay_delivery *d, const char *destination);

#endif
