/*
 * odoo-relay: the pollers, one per source of kind odoo-poll, reading Odoo
 * on the daemon's event loop and turning changed records into events.
 *
 * Each poller has its own Odoo client (odoo_client.h) for its destination
 * and does one job at a time:
 *   poll    pages of search_read as poll.h decides; for each page the
 *           external IDs of its records (ir.model.data, one call), then
 *           one writer operation that, in one transaction, compares every
 *           record's hash with the one kept (store_poll.h), ingests an
 *           event for each that differs, keeps the new hashes and the
 *           state with the cursor. A crash before that commit loses
 *           nothing (the next poll reads the page again from the cursor);
 *           after it, nothing is sent twice (the hashes are kept with the
 *           events).
 *   check   the deletion check, every deletion_check_s: search (ids only,
 *           ordered by id, RELAY_POLL_ID_PAGE a call) of the source's
 *           domain, each page compared in one writer operation with the
 *           ids kept in that id range: a kept id Odoo no longer has becomes
 *           a "<model>.deleted" event and is forgotten, in the same
 *           transaction.
 *   resend  odoo-relayctl sync --id: those records read and sent whatever
 *           their hash, read through the source's domain and archive rule
 *           (poll.h relay_poll_resend_request): an id Odoo does not answer
 *           is not in the source, logged and kept in the state's
 *           "last_sync" {"sent", "not_in_source", "at_ms"}, never sent.
 * A poll is due every interval_s from the end of the last one; the check
 * after a poll, once deletion_check_s has passed since the last. While the
 * destination's circuit (delivery's) is open, nothing starts: the poller
 * waits, and catches up from its cursor when the circuit closes. A job
 * that fails (Odoo down, an error) ends; its error is kept in the state
 * and the job runs again at the next interval, from the cursor.
 *
 * Requests: every second each idle poller looks for a request of
 * odoo-relayctl sync in the store (store_poll.h 'r'), takes the oldest
 * (deletes that one, by its number: one written meanwhile stays) and runs
 * it now: {"since": "<time>"} polls from that time (no
 * overlap, the cursor is not lowered), {"ids": [...]} resends, {} polls
 * now.
 *
 * Status: the state text of each source (store_poll.h 's') holds the
 * cursor, last run, last success, the last error, counts, the number of
 * the last request run and its error ("request_done", "request_error":
 * what odoo-relayctl sync --wait waits for) and the last resend's outcome
 * ("last_sync"); odoo-relayctl status shows it.
 *
 * Threading: everything on the loop thread of the event_base given;
 * writes go through the writer.
 */
#ifndef ODOO_RELAY_POLLER_H
#define ODOO_RELAY_POLLER_H

#include "odoo_relay/config.h"
#include "odoo_relay/store_poll.h"

struct event_base;
struct relay_store;
struct relay_writer;
struct relay_pollers;

/* Whether destination's circuit is open (1) or not (0); loop thread. */
typedef int (*relay_pollers_circuit_fn)(void *arg, const char *destination);
/* Events were stored: delivery should look for due work. */
typedef void (*relay_pollers_kick_fn)(void *arg);

/*
 * relay_pollers_start - a poller for each odoo-poll source of cfg. What
 * they need of cfg is copied (cfg may be freed after). base, st, writer
 * and db must outlive the result. circuit and kick may be NULL. Returns 0
 * with *out set (also for a cfg with no poll source), ENOMEM, or what
 * relay_odoo_new returns; *out untouched on error.
 */
int relay_pollers_start(struct event_base *base, struct relay_store *st,
                        struct relay_writer *writer, const struct relay_poll_db *db,
                        const struct relay_config *cfg, relay_pollers_circuit_fn circuit,
                        relay_pollers_kick_fn kick, void *arg, struct relay_pollers **out);

/*
 * relay_pollers_set_config - a reload: pollers start for cfg's sources (a
 * source that stays keeps its timing); the old ones take no new job and
 * are freed once their job in flight is back. All or nothing: on failure
 * (ENOMEM, a client that cannot be made) the old ones go on unchanged.
 */
int relay_pollers_set_config(struct relay_pollers *ps, const struct relay_config *cfg);

/*
 * relay_pollers_set_metrics - count into m (borrowed; must outlive ps), by
 * label source: relay_poll_records_total (records read, those read again in
 * the overlap included), relay_poll_changes_total, relay_poll_deletions_total,
 * relay_poll_errors_total, and the gauges relay_poll_lag_seconds (since the
 * last complete poll; -1 before the first) and relay_poll_known_records.
 * NULL stops counting.
 */
struct relay_metrics;
void relay_pollers_set_metrics(struct relay_pollers *ps, struct relay_metrics *m);

/* relay_pollers_in_flight - jobs running (0: nothing to wait for). */
unsigned relay_pollers_in_flight(const struct relay_pollers *ps);

/* relay_pollers_free - cancel the calls in flight (nothing of their page is
 * written) and free. The writer must have been stopped first, so that no
 * commit of a poller is still pending. NULL is a no-op. */
void relay_pollers_free(struct relay_pollers *ps);

#endif
