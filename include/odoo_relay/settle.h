/*
 * odoo-relay: an event's outcome, written back to the store.
 *
 * Once a destination has answered for a job (or the job could not be
 * sent), settling decides what the store keeps: the event is done (deleted,
 * its lane moves on), tried again at a time of the backoff's choosing, or
 * moved to the dead-letter queue with its reason and the request that
 * failed. It counts and logs each of these (metrics labelled by route and
 * destination; journald fields). The write goes through the writer thread;
 * when it is committed (or failed: the event then stays as it was, and is
 * tried again later, which idempotent calls make safe), done is called with
 * the job, from the loop.
 *
 * An event that ends (done, stale, dropped) enters the history in the same
 * transaction when the job's hist_retention_ms is > 0 (history.h), with the
 * destination, the batch and what the destination answered (the job's
 * answer_* fields); with 0 it is only deleted, as before.
 *
 * It does not decide whether a failure is the event's fault: a failure that
 * says nothing about the event (configuration, no connection, cancelled) is
 * released, not charged, by the caller (relay_settle_release).
 *
 * Threading: the loop thread only. Ownership: writer and metrics are
 * borrowed and must outlive it; the job stays the caller's.
 */
#ifndef ODOO_RELAY_SETTLE_H
#define ODOO_RELAY_SETTLE_H

#include <stdint.h>

#include "odoo_relay/classify.h"
#include "odoo_relay/scheduler.h"

struct relay_writer;
struct relay_metrics;
struct relay_settle;

/* The job's outcome is stored (or could not be): end it. */
typedef void (*relay_settle_done_fn)(struct relay_job *job, void *arg);

/* relay_settle_new - returns 0 or ENOMEM. */
int relay_settle_new(struct relay_writer *writer, struct relay_metrics *metrics,
                     relay_settle_done_fn done, void *arg, struct relay_settle **out);
void relay_settle_free(struct relay_settle *st);

/* relay_settle_done - the destination applied the event; how says what
 * happened ("delivered", "deleted (already gone)"). A job with a
 * version_name (the stale guard, scheduler.h) is completed together with
 * its version (relay_writer_complete_version): either both are written or
 * neither. */
void relay_settle_done(struct relay_settle *st, struct relay_job *job, const char *how);

/* relay_settle_stale - the event is older than the version already
 * applied to its record (the route's "version"): not sent; it ends like a
 * delivered one (deleted, its lane moves on), logged with why and counted
 * in relay_stale_total{route,destination}. */
void relay_settle_stale(struct relay_settle *st, struct relay_job *job, const char *why);

/* relay_settle_phantom - a route's "confirm" found that the event's record
 * does not exist in Odoo (a change rolled back after Odoo posted it, or a
 * record deleted since): not sent; it ends like a delivered one (deleted,
 * its lane moves on), logged with why at notice level and counted in
 * relay_phantom_total{route,destination}. */
void relay_settle_phantom(struct relay_settle *st, struct relay_job *job, const char *why);

/* relay_settle_dropped - the event is deleted without being sent (a source
 * whose unrouted events are dropped); how says why. */
void relay_settle_dropped(struct relay_settle *st, struct relay_job *job, const char *how);

/*
 * relay_settle_failed - a failure charged to the event (transient or
 * permanent): an attempt is added to its history; a permanent failure is
 * retried after the route's permanent_retry_delay_ms while the route's
 * permanent_retries last, then dead; a transient one retries with backoff
 * (Retry-After honoured) until the backoff gives up, then dead. request is
 * the request that failed (API key masked), kept with a dead letter; may be
 * NULL.
 */
void relay_settle_failed(struct relay_settle *st, struct relay_job *job,
                         const struct relay_outcome *o, const char *request);

/* relay_settle_dead - straight to the dead-letter queue with reason (an
 * event no route takes). */
void relay_settle_dead(struct relay_settle *st, struct relay_job *job, const char *reason);

/* relay_settle_release - nothing to write: the event stays as it is in the
 * store (not charged). done is called from inside this call, as it is by
 * every function here when the writer cannot take the write: the caller
 * must not touch job after any of them. */
void relay_settle_release(struct relay_settle *st, struct relay_job *job);

/* Counters since start, for status. */
struct relay_settle_counts {
	uint64_t delivered, retried, dead_lettered, stale, phantom;
};
void relay_settle_counts(const struct relay_settle *st, struct relay_settle_counts *out);

#endif
