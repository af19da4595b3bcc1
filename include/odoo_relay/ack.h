/*
 * odoo-relay: how fast the relay answers each source's senders, against
 * the deadline each sender gives (the source's deadline_ms).
 *
 * A sender counts a webhook as failed when the answer takes longer than
 * its deadline (Shopify 5 s, GitHub 10 s, Odoo's webhook action 1 s) and
 * sends it again. The relay answers once the event is durable, normally
 * within milliseconds; answers that take more than half the deadline are
 * the warning that the store's disk (or the group commit behind it) is
 * too slow, before the senders start to retry. ingest.c records every
 * answer here (and in relay_ack_seconds{source} and relay_ack_slow_total);
 * the daemon leaves relay_acks_json in the store for odoo-relayctl status.
 *
 * Pure: no I/O. Not thread-safe: one thread (the loop) per instance.
 */
#ifndef ODOO_RELAY_ACK_H
#define ODOO_RELAY_ACK_H

#include <stdint.h>

struct relay_acks;

/* relay_acks_new - an empty set of counts. Returns 0 or ENOMEM. */
int relay_acks_new(struct relay_acks **out);

/* relay_acks_free - NULL is a no-op. */
void relay_acks_free(struct relay_acks *a);

/* relay_acks_slow - whether an answer after ms is over half of
 * deadline_ms (a deadline <= 0 is never near). */
int relay_acks_slow(int64_t ms, int64_t deadline_ms);

/*
 * relay_acks_record - one answer to source (copied) after ms milliseconds,
 * under deadline_ms (the source's, as configured now). Returns 1 when the
 * answer was slow (relay_acks_slow), 0 when not, or -1 when it could not
 * be counted (out of memory: nothing changed).
 */
int relay_acks_record(struct relay_acks *a, const char *source, int64_t deadline_ms, int64_t ms);

/* relay_acks_total - answers recorded in all, for telling whether the
 * counts changed. */
uint64_t relay_acks_total(const struct relay_acks *a);

/* relay_acks_note_time - the wall clock now (ms), for last_slow_ms and
 * since_ms; the caller sets it before recording. */
void relay_acks_note_time(struct relay_acks *a, int64_t wall_ms);

/*
 * relay_acks_json - the counts as a JSON object text (malloc'd, the caller
 * frees; NULL on ENOMEM):
 *   {"sources":[{"source":"shop","deadline_ms":5000,"answered":N,
 *                "slow":N,"max_ms":N,"last_slow_ms":T}],"since_ms":T}
 * since_ms: the first wall time noted; last_slow_ms: the wall time noted
 * at the last slow answer (0: none).
 */
char *relay_acks_json(const struct relay_acks *a);

#endif
