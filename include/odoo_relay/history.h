/*
 * odoo-relay: the history of events that left the queue, the audit trail
 * of operator writes, and edited bodies of dead letters, kept in the store's
 * environment (tables in lib/store_int.h, records in hist_record.h).
 *
 * History. An event that is delivered, superseded, stale, dropped or
 * unrouted leaves events (relay_store_complete) and, in the same
 * transaction, enters history with its outcome, kept until settled_ms +
 * retention (the configuration's delivery.retention_s). Each entry is
 * indexed for odoo-relayctl trace by its dedup key, lane, external ID and
 * Odoo record ("model,id"). relay_history_sweep removes expired entries
 * oldest first, a bounded number per call.
 *
 * The history never makes the store full for new events: an entry is
 * written only while more than the history floor stays free (1/8 of the
 * map, at least 1 MiB; ingest's own reserve, store.h, is at most 1/64 of
 * it), measured as store.c measures room for ingest. Below the floor the
 * history gives way: the entry is not written, the oldest entries (up to
 * RELAY_HISTORY_EVICT) are removed before their retention, and it is
 * logged (once a minute at most) and counted (relay_history_gave_way).
 *
 * Transactions, threads and errors are store.h's: every write takes a
 * write transaction (or NULL: one of its own), every read a transaction or
 * NULL; values are copied. A store opened read-only that predates these
 * tables reads as empty (-RELAY_ENOTFOUND, nothing listed); writes to it
 * return EACCES as every write to a read-only store does. Fault hook ops:
 * "history", "sweep", "audit", "edit".
 */
#ifndef ODOO_RELAY_HISTORY_H
#define ODOO_RELAY_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "odoo_relay/hist_record.h"
#include "odoo_relay/store.h"

/* delivery.retention_s default: 7 days */
#define RELAY_HISTORY_RETENTION_DEFAULT_S (7 * 86400)
/* entries removed when the history gives way */
#define RELAY_HISTORY_EVICT 64

/* An event's outcome as the history keeps it; every pointer borrowed. */
struct relay_hist_settle {
	int outcome;              /* enum relay_hist_outcome */
	const char *destination;  /* or NULL */
	uint64_t batch_id;
	unsigned batch_size;
	int batch_row;            /* -1: none */
	int http_status;
	const char *xid;          /* external ID written, or NULL */
	const char *odoo_model;
	int64_t odoo_id;
	const char *note;
	int64_t retention_ms;     /* <= 0: no history entry */
	int keep_body;            /* the source's retain_body */
	/* The dedup key is a digest of the body (Odoo's posts): no trace key
	 * is written for it (nobody looks an event up by it; the lane, the
	 * record, does), which spares the index a random insert per event. */
	int dedup_digest;
};

/*
 * relay_history_complete - relay_store_complete(id, now_ms), and the event
 * as it was stored enters the history with outcome s (unless
 * s->retention_ms <= 0, or the history gives way; *kept, may be NULL, says
 * whether it entered). Returns relay_store_complete's errors
 * (-RELAY_ENOTFOUND, ...), -RELAY_EINVAL for an outcome out of range. A
 * failure to write the history entry itself is not an error: the event is
 * completed all the same, without it (the store's state must never depend
 * on the history).
 */
int relay_history_complete(struct relay_store *st, MDB_txn *txn, uint64_t id,
                           const struct relay_hist_settle *s, int64_t now_ms, int *kept);

/* relay_history_drop - relay_store_drop(id, now_ms) of a dead letter, which
 * enters the history like relay_history_complete. */
int relay_history_drop(struct relay_store *st, MDB_txn *txn, uint64_t id,
                       const struct relay_hist_settle *s, int64_t now_ms, int *kept);

/* relay_history_sweep - remove entries whose expiry is <= now_ms (with
 * their trace keys and edits), at most max, oldest first; *swept (may be
 * NULL) gets how many. Also removes audit records older than
 * RELAY_AUDIT_KEEP_MS. Damage never stops it: an expiry row that does not
 * decode (wrong size) is removed alone, an expired entry whose record does
 * not decode is removed without its trace keys (a trace skips those), an
 * audit record that does not decode is removed once a newer record goes
 * (kept for an operator to see until then) and passed over meanwhile; each
 * removal is counted (relay_history_damaged) and a sweep that removed any
 * logs one warning. Returns 0, -RELAY_EFULL, EACCES, or an LMDB code. */
#define RELAY_AUDIT_KEEP_MS (366LL * 86400 * 1000)
int relay_history_sweep(struct relay_store *st, MDB_txn *txn, int64_t now_ms, size_t max,
                        size_t *swept);

/* relay_history_get - the entry of id (free with relay_hist_clear).
 * Returns 0, -RELAY_ENOTFOUND, -RELAY_ECORRUPT, -RELAY_EVERSION, ENOMEM, or
 * an LMDB code. */
int relay_history_get(struct relay_store *st, MDB_txn *txn, uint64_t id,
                      struct relay_hist_entry *e);

/* relay_history_foreach - cb(arg, e) for each entry with id >= from_id in
 * id order, in one read transaction; e is valid during the call only. A
 * nonzero return from cb stops the walk and is returned. An entry that
 * does not decode (-RELAY_ECORRUPT, -RELAY_EVERSION) is passed over and
 * counted in *damaged (may be NULL; set on every return). */
int relay_history_foreach(struct relay_store *st, uint64_t from_id,
                          int (*cb)(void *arg, const struct relay_hist_entry *e), void *arg,
                          uint64_t *damaged);

/* Kinds of trace keys. */
enum relay_trace_kind {
	RELAY_TRACE_DEDUP = 'd', /* the sender's event id */
	RELAY_TRACE_LANE = 'l',  /* the lane (ordering key) */
	RELAY_TRACE_XID = 'x',   /* the external ID, "module.name" */
	RELAY_TRACE_ODOO = 'o',  /* "model,id" */
};

/* relay_history_find - the ids of history entries with trace key (kind,
 * key), ascending, up to max into ids (*n how many; *more 1 when there
 * were more). In txn or a read transaction of its own. Returns 0 or an LMDB
 * code. */
int relay_history_find(struct relay_store *st, MDB_txn *txn, int kind, const char *key,
                       uint64_t *ids, size_t max, size_t *n, int *more);

/* relay_history_find_from - relay_history_find of the ids >= from_id: the
 * next page after a find that said *more is from the last id + 1. */
int relay_history_find_from(struct relay_store *st, MDB_txn *txn, int kind, const char *key,
                            uint64_t from_id, uint64_t *ids, size_t max, size_t *n, int *more);

/* relay_history_stats - entries in the history and the bytes of their
 * pages (branch, leaf, overflow; trace index and expiry index included). */
int relay_history_stats(struct relay_store *st, uint64_t *entries, uint64_t *bytes);

/* relay_history_gave_way - entries removed before their retention and
 * entries not written, since this process opened st. */
void relay_history_gave_way(struct relay_store *st, uint64_t *evicted, uint64_t *skipped);

/* relay_history_damaged - expiry rows, history records and audit records
 * that did not decode and that the sweep removed, since this process
 * opened st (relay_history_damaged_total). Any thread. */
uint64_t relay_history_damaged(struct relay_store *st);

/* ---- audit ---- */

/* relay_audit_add - append e (seq and at_ms are set from the store's
 * sequence and e->at_ms as given); *seq (may be NULL) gets its key.
 * Returns 0, -RELAY_EFULL, EACCES, ENOMEM, or an LMDB code. */
int relay_audit_add(struct relay_store *st, MDB_txn *txn, const struct relay_audit_entry *e,
                    uint64_t *seq);

/*
 * relay_audit_commit - commit txn, a top-level write transaction that holds
 * an operator's change, with e appended to the audit trail in it: the
 * change and its record reach the store together or not at all (a crash or
 * a failed commit leaves neither). The record is written in a transaction
 * nested in txn: when it cannot be (-RELAY_EFULL, ...), *audit_rc (may be
 * NULL; 0 otherwise) gets why and the change commits without it, since an
 * operator clearing a full store must still be able to. *seq (may be NULL)
 * gets the record's key. Returns relay_store_txn_commit's result; txn is
 * freed either way. Fault hook: "audit" (the record), "commit".
 */
int relay_audit_commit(struct relay_store *st, MDB_txn *txn, const struct relay_audit_entry *e,
                       uint64_t *seq, int *audit_rc);

/* relay_audit_foreach - cb(arg, e) for each audit record in order, in one
 * read transaction; a nonzero return stops and is returned. A record that
 * does not decode is passed over and counted in *damaged (may be NULL; set
 * on every return). */
int relay_audit_foreach(struct relay_store *st,
                        int (*cb)(void *arg, const struct relay_audit_entry *e), void *arg,
                        uint64_t *damaged);

/* ---- edits of dead letters ---- */

/*
 * relay_edit_add - make body (len bytes) the body of dead letter id: the
 * body it had is kept as version 1 (the original) on its first edit, the
 * new one is stored as the next version and replaces the dead letter's
 * body. *version (may be NULL) gets the new version's number (2 for a
 * first edit). Returns 0, -RELAY_ENOTFOUND (no such dead letter),
 * -RELAY_EFULL, EACCES, ENOMEM, or an LMDB or decode code.
 */
int relay_edit_add(struct relay_store *st, MDB_txn *txn, uint64_t id, const void *body,
                   size_t len, const char *user, int64_t now_ms, uint32_t *version);

/* relay_edit_list - every version kept for id, oldest first, into a new
 * array *out of *n (free each with relay_edit_clear, then the array); *n 0
 * when the event was never edited. A version whose record does not decode
 * (damaged, or a newer format) is passed over and counted in *damaged (may
 * be NULL; set on every return): the others are still listed. Returns 0,
 * ENOMEM, or an LMDB code. */
int relay_edit_list(struct relay_store *st, MDB_txn *txn, uint64_t id, struct relay_edit **out,
                    size_t *n, uint64_t *damaged);

#endif
