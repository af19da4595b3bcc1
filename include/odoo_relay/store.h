/*
 * odoo-relay: the durable store, one LMDB environment in the state directory.
 *
 * Databases (all integers big-endian, so that byte order is numeric order):
 *   events     u64 id -> record (record.h)
 *   due        (u64 due_ms, u64 id) -> empty: exactly the deliverable events,
 *              those with no lane and the head (lowest id) of each lane
 *   lanes      (source "\0" lane "\0" u64 id) -> empty: each lane's ids in
 *              arrival order; events behind the head are "parked"
 *   dedup      (source "\0" dedup_key) -> (u64 id, u64 expiry_ms)
 *   dedup_exp  (u64 expiry_ms, source "\0" dedup_key) -> empty: sweep index
 *   dead       u64 id -> record with dead_ms, dead_reason, request set
 *   meta       "schema" u32 (1), "next_id" u64, "paused" u8,
 *              "pause:<route>" u8 (present = paused)
 *   versions   (route "\0" external-ID name) -> the stale guard's last
 *              applied version (route.h "version"), 26 bytes, format 1:
 *                u8 format (1)  u8 kind (enum relay_version_kind)
 *                i64 version    i64 applied_ms   i64 expiry_ms
 *              A newer format byte is refused (-RELAY_EVERSION), never
 *              overwritten; a new format keeps the decoder of this one
 *              (record.h's procedure).
 *   versions_exp (u64 expiry_ms, route "\0" name) -> empty: sweep index
 *   poll       the pollers' hashes, states and sync requests: its own
 *              module (store_poll.h) opens and keeps it, through
 *              relay_store_read_begin and the transactions below
 *   history, history_exp, trace, audit, edits: the history of settled
 *              events, its indexes, the audit trail and edited bodies,
 *              kept by history.c (lib/store_int.h, history.h); added after
 *              schema 1 the way versions was
 *
 * versions and versions_exp came after schema 1 without a bump: a build
 * that does not know them ignores them, a read-write open creates them, and
 * a read-only open of a store made before them works without them (reads
 * find nothing). Disk per versions entry: the key (route, NUL, name) twice,
 * 26 + 8 bytes of value and index prefix, and LMDB's two node headers (8
 * bytes and a 2-byte slot each): 2 x (route + name) + 56 bytes, about 140
 * for a 12-byte route and a 30-byte name, and about half again with the
 * pages half to two-thirds full as B-trees keep them. The table is bounded
 * by the records updated within a route's window (route.h "version"): the
 * daemon sweeps expired entries every minute (relay_store_sweep_versions).
 *
 * Invariants kept by every write below: an event in due has a due key equal
 * to (its record's due_ms, id); a lane entry whose id is in dead (lane held)
 * blocks its lane until the dead letter is replayed or dropped. An event with
 * lane NULL or "" has no lane.
 *
 * Durability: the environment is opened without MDB_NOSYNC and without
 * MDB_WRITEMAP, so a successful commit is on disk.
 *
 * Transactions. Every write function takes an `MDB_txn *txn`:
 *   - a write transaction from relay_store_txn_begin() (possibly nested), so
 *     that the writer thread can batch many operations under one commit. On
 *     failure the operation may have written part of its work: abort that
 *     transaction (the writer runs each operation in a nested one for this);
 *   - or NULL: the function runs in a short write transaction of its own and
 *     commits it (used by odoo-relayctl). On failure nothing was written.
 * Read functions take a transaction to read through (a write transaction
 * sees its own uncommitted writes) or NULL for a short read transaction.
 * Every value read is copied before its transaction ends.
 *
 * Threads: a store may be used from any number of threads (MDB_NOTLS: a read
 * transaction is not tied to a thread). LMDB admits one write transaction at
 * a time per environment, across processes: a write blocks until the other
 * writer (the daemon's writer thread, or odoo-relayctl) commits. A thread
 * must not begin a write transaction while it holds another one.
 *
 * Errors follow include/odoo_relay/error.h, with one mapping at this
 * boundary: MDB_MAP_FULL, ENOSPC and EDQUOT are all returned as -RELAY_EFULL
 * ("the store is full; nothing of this operation was kept" once the caller
 * aborts). Other LMDB codes and errnos pass through; -RELAY_ECORRUPT and
 * -RELAY_EVERSION come from records that do not decode.
 *
 * Processes: the daemon and odoo-relayctl open the same environment with
 * the same map size (the configuration's); a process must not open the same
 * environment twice.
 */
#ifndef ODOO_RELAY_STORE_H
#define ODOO_RELAY_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "odoo_relay/record.h"

#define RELAY_STORE_SCHEMA 1

/* relay_store_open flags */
#define RELAY_STORE_RDONLY 0x1u /* read only (MDB_RDONLY); never creates anything */
#define RELAY_STORE_CREATE 0x2u /* create the directory (0750; its parent must exist) */

/* What burying an event does to the rest of its lane: enum relay_lane_policy,
 * in record.h. */

struct relay_store;

/* One entry of the due index. */
struct relay_due {
	int64_t due_ms;
	uint64_t id;
};

struct relay_store_stats {
	uint64_t events;            /* queued events, parked ones included */
	uint64_t due;               /* deliverable events (entries of due, and
	                             * the unsettled ones a settle makes due) */
	uint64_t due_now;           /* of those, due at or before now_ms */
	uint64_t unsettled;         /* events not in the indexes yet
	                             * (relay_store_defer_index) */
	uint64_t dead;              /* dead letters */
	uint64_t dedup;             /* dedup keys remembered */
	uint64_t versions;          /* versions remembered (stale guard) */
	uint64_t next_id;           /* above every id given out: the next
	                             * event's, or the end of the block of ids
	                             * a deferring writer reserved */
	int64_t oldest_received_ms; /* received_ms of the lowest id; 0 when empty */
	int64_t next_due_ms;        /* earliest due time; 0 when due is empty */
	size_t map_size;            /* bytes mapped: the most the file may grow to */
	size_t map_used;            /* bytes of the file in use (high-water page) */
};

/*
 * relay_store_open - open (and if need be initialise) the store in dir.
 *
 * dir: the state directory; the environment is dir/data.mdb and dir/lock.mdb
 * (files 0640). map_size: the map size in bytes, rounded up to the page size;
 * if the existing data file is bigger, its size is used instead, and 0 means
 * "the file's size, or LMDB's default for a new store". flags: see above.
 *
 * Read-write: a directory without a store gets a new one (schema 1,
 * next_id 1). Read-only: nothing is ever created; a missing directory or
 * data file is ENOENT, one this user cannot read is EACCES, and a data file
 * without our databases is ENOENT as well.
 *
 * A data file shorter than the pages in use is read further before it is
 * trusted: LMDB counts but never writes a page that a transaction took from
 * the end of the file and gave back before committing, so the pages the
 * file lacks must all be on LMDB's free list. That is read in a child
 * process (fork), as relay_store_verify (store_check.h) does, because in a
 * file that was really cut short a read past its end is a SIGBUS.
 *
 * Returns 0 with *out set (close with relay_store_close), or: ENOENT;
 * EACCES; -RELAY_EVERSION for a store whose schema is newer than
 * RELAY_STORE_SCHEMA (the store is left untouched); -RELAY_ECORRUPT for a
 * malformed schema value or a file that lacks a page in use; ENOMEM; the
 * errno of pipe2/fork; any LMDB or errno code from mdb_env_open (e.g.
 * MDB_INVALID for a file that is not LMDB, MDB_VERSION_MISMATCH). *out is
 * NULL on failure. Thread-safe (it shares nothing; the child it may fork
 * opens the store on its own and touches nothing of the caller's).
 */
int relay_store_open(const char *dir, size_t map_size, unsigned flags, struct relay_store **out);

/* relay_store_close - close the store; NULL is a no-op. No transaction may
 * be open and no other thread may be using st. */
void relay_store_close(struct relay_store *st);

/* relay_store_dir - the directory st was opened on (owned by st, valid until
 * relay_store_close). Cannot fail. */
const char *relay_store_dir(const struct relay_store *st);

/*
 * relay_store_set_fault - test seam: fault(arg, op) is called before each
 * write operation and before each top-level commit, with op one of "ingest",
 * "complete", "reschedule", "bury", "replay", "drop", "sweep", "pause",
 * "commit". A nonzero return becomes that operation's error (after the
 * mapping above: MDB_MAP_FULL or ENOSPC come back as -RELAY_EFULL) and the
 * operation writes nothing; a failed "commit" aborts its transaction.
 * fault NULL removes the hook. Set it while no other thread uses st; the hook
 * itself runs on whichever thread writes and must be thread-safe.
 */
void relay_store_set_fault(struct relay_store *st, int (*fault)(void *arg, const char *op),
                           void *arg);

/*
 * relay_store_txn_begin - begin a write transaction: top-level when parent is
 * NULL (blocks while another writer holds the environment), else nested in
 * parent (parent must not be used until the child ends). Returns 0 with *txn
 * set, EACCES on a read-only store, ENOMEM, or an LMDB code.
 *
 * relay_store_txn_commit - commit txn (and free it, whatever the result). For
 * a top-level transaction the fault hook is consulted ("commit") first, and
 * success means durable on disk. Returns 0, -RELAY_EFULL, EIO, or an LMDB
 * code; on failure nothing of txn was written.
 *
 * relay_store_txn_abort - abort txn and free it. NULL is a no-op.
 */
int relay_store_txn_begin(struct relay_store *st, MDB_txn *parent, MDB_txn **txn);
/*
 * relay_store_txn_flat - say that top (a top-level transaction from
 * relay_store_txn_begin) runs a group of operations that is rolled back as
 * a whole and run again op by op in nested transactions if any of them
 * fails (writer.c does so). Within it, work that must never fail its caller
 * (the history entry of a completion) is written straight into top instead
 * of into a nested transaction of its own, which costs LMDB a 2.5 MB
 * allocation and a merge of page lists each time; a failure of that work
 * then fails the op, and the rerun keeps it apart. NULL ends the marking; a
 * commit or abort of top ends it too. Writer thread only.
 */
void relay_store_txn_flat(struct relay_store *st, MDB_txn *top);
/* relay_store_read_begin - begin a read transaction (a consistent snapshot,
 * never blocked by writers), for modules with tables of their own (e.g.
 * store_poll.h); end it with relay_store_read_end. Returns 0 with *txn
 * set, ENOMEM, or an LMDB code (MDB_READERS_FULL). Any thread. */
int relay_store_read_begin(struct relay_store *st, MDB_txn **txn);
/* relay_store_read_end - end a read transaction from relay_store_read_begin
 * (NULL is a no-op). Unlike relay_store_txn_abort it touches nothing the
 * writer thread shares, so any thread may call it. */
void relay_store_read_end(MDB_txn *txn);
/* relay_store_read_park - end the snapshot of a read transaction from
 * relay_store_read_begin but keep its handle and reader slot, so that
 * relay_store_read_renew can begin the next one without allocating or
 * taking the reader table's lock (for a loop that reads at every turn).
 * A parked handle is freed with relay_store_read_end, before the store is
 * closed. NULL is a no-op. */
void relay_store_read_park(MDB_txn *txn);
/* relay_store_read_renew - begin a read transaction in *txn: a parked
 * handle is renewed, NULL begins a new one as relay_store_read_begin.
 * Returns 0, ENOMEM or an LMDB code; on failure the handle is freed and
 * *txn is NULL. The thread that parked it, or any under the store's
 * MDB_NOTLS as long as one uses it at a time. */
int relay_store_read_renew(struct relay_store *st, MDB_txn **txn);
int relay_store_txn_commit(struct relay_store *st, MDB_txn *txn);
void relay_store_txn_abort(struct relay_store *st, MDB_txn *txn);

/*
 * relay_store_ingest - store a new event, unless its dedup key was seen.
 *
 * ev: source (required, non-empty), topic, lane, dedup_key, headers, body as
 * received; attempts and history normally zero. If (source, dedup_key) is in
 * dedup with an expiry after now_ms, nothing is written and the result is a
 * duplicate carrying the first event's id. Otherwise a new id is allocated
 * (ids start at 1), ev->id is set to it, ev->due_ms to now_ms and
 * ev->received_ms to now_ms if it was 0; the event is put in events, in lanes
 * (when it has a lane) and in due only if it is its lane's head (otherwise it
 * is parked); the dedup key is remembered until now_ms + dedup_window_ms. A
 * NULL or empty dedup_key, or a window <= 0, records no dedup key.
 * ev stays owned by the caller.
 *
 * Ingest alone keeps a reserve: it is refused with -RELAY_EFULL once less
 * than 1/64 of the map (at least 256 KiB, at most 8 MiB) would stay free, so
 * that deliveries and dead-lettering, which must copy pages before they
 * free any, can always run and make room again. Free means free in the map
 * and, for the part of the map the file has not grown into yet, on the
 * filesystem too (statvfs: the space an unprivileged process may use).
 *
 * *id receives the new or the first id, *duplicate 1 or 0 (either may be
 * NULL). Returns 0; -RELAY_EINVAL (no source); -RELAY_ETOOBIG if source plus
 * lane or dedup key is too long for an LMDB key (about 490 bytes) or a field
 * is over 4 GiB; -RELAY_EFULL; ENOMEM; an LMDB code.
 */
int relay_store_ingest(struct relay_store *st, MDB_txn *txn, struct relay_event *ev,
                       int64_t dedup_window_ms, int64_t now_ms, uint64_t *id, int *duplicate);

/*
 * relay_store_defer_index - on (1) or off (0): whether relay_store_ingest
 * through this handle defers the indexes. Off (the default) it works as
 * said above. On, an ingest writes the record alone, at the end of events,
 * and a later settle puts it in lanes, due and dedup: the commit a sender
 * waits for then copies one B-tree's pages instead of five. The duplicate
 * check still sees every event ingested, settled or not. Until it is
 * settled an event is not deliverable, not in relay_store_lane_ids and not
 * in the due and dedup counts of relay_store_stats (it is in events).
 *
 * Every write through any handle but a deferred ingest settles first, in
 * its transaction; a deferred ingest settles first once 256 events or 50 ms
 * have gathered. The tail is found from the store itself (the records past
 * meta "indexed", and each source's last dedup window, meta
 * "dedup_window:<source>", which a settle gives its keys), so a tail a
 * crash left is settled by the next write, in any process; the settle is
 * idempotent. Ids come from a block of 64 reserved in meta "next_id", so
 * after a restart they go on above the block, not right after the last id.
 * Writer thread only, before its first write or between transactions.
 */
void relay_store_defer_index(struct relay_store *st, int on);

/*
 * relay_store_settle - put every deferred event in the indexes, in txn
 * (or a transaction of its own when txn is NULL). Returns 0 (also when
 * there is nothing to settle), -RELAY_EFULL, ENOMEM, -RELAY_ECORRUPT or
 * an LMDB code. The fault hook sees op "settle". Writer thread only.
 */
int relay_store_settle(struct relay_store *st, MDB_txn *txn);

/*
 * relay_store_unsettled - the events waiting for a settle as of this
 * handle's last top-level commit; 1 when that is not known (another
 * process wrote since, or relay_store_defer_index was just turned on),
 * so that a caller settles to find out. Any thread: for the writer's
 * decision to settle when idle.
 */
size_t relay_store_unsettled(struct relay_store *st);

/*
 * relay_store_tail_due - for a reader that shows the queue: calls cb with
 * the id and due time of each unsettled event that its settle will make
 * due (its lane's head, or without a lane), in id order, so that it shows
 * as due rather than parked in the moment before. cb returns 0 to go on,
 * anything else to stop with that result. txn: a read or write transaction,
 * or NULL for one of its own. Returns 0, cb's result, or an LMDB code.
 * Thread-safe like the other read functions.
 */
int relay_store_tail_due(struct relay_store *st, MDB_txn *txn,
                         int (*cb)(void *arg, uint64_t id, int64_t due_ms), void *arg);

/*
 * relay_store_complete - the event was delivered: delete it from events, due
 * and its lane, and promote the next event of the lane (due at the later of
 * its due_ms and now_ms). Dedup entries stay until they expire.
 * Returns 0, -RELAY_ENOTFOUND if id is not in events (e.g. dropped by
 * odoo-relayctl meanwhile), -RELAY_EFULL, or an LMDB or decode error.
 */
int relay_store_complete(struct relay_store *st, MDB_txn *txn, uint64_t id, int64_t now_ms);

/*
 * relay_store_reschedule - replace the record of ev->id with ev (attempts,
 * history, last_error, route, due_ms, ...) and move its due entry to
 * ev->due_ms. With due_ms unchanged this is a plain update. An event that is
 * parked behind its lane head stays parked (its record is updated, no due
 * entry is made). ev is not modified and stays owned by the caller; its
 * source and lane must be those stored.
 * Returns 0, -RELAY_ENOTFOUND if the id is not in events, -RELAY_EINVAL if
 * source or lane differ from the stored ones, -RELAY_EFULL, or an LMDB,
 * encode or decode error.
 */
int relay_store_reschedule(struct relay_store *st, MDB_txn *txn, const struct relay_event *ev);

/*
 * relay_store_bury - move ev->id from events (and due) to dead, storing ev as
 * given (its dead_reason, request, history, ...; dead_ms = now_ms if ev's is
 * 0). policy says what happens to its lane: CONTINUE removes its lane entry
 * and promotes the next event, HOLD keeps the entry so that the rest of the
 * lane stays parked. ev is not modified and stays owned by the caller.
 * Returns 0, -RELAY_ENOTFOUND if the id is not in events, -RELAY_EINVAL if
 * source or lane differ from the stored ones, -RELAY_EFULL, or an LMDB,
 * encode or decode error.
 */
int relay_store_bury(struct relay_store *st, MDB_txn *txn, const struct relay_event *ev,
                     enum relay_lane_policy policy, int64_t now_ms);

/*
 * relay_store_replay - move dead letter id back into events: attempts and
 * first_attempt_ms reset to 0, dead_ms, dead_reason and request cleared,
 * history and last_error kept, due at now_ms. In a lane, it takes its place
 * by id again: if it is (or becomes) the lane head it is put in due and the
 * event it displaced as head is parked; otherwise it is parked.
 * Returns 0, -RELAY_ENOTFOUND if id is not in dead, -RELAY_EEXIST if id is
 * also in events (the store was damaged; nothing is changed), -RELAY_EFULL,
 * or an LMDB or decode error.
 */
int relay_store_replay(struct relay_store *st, MDB_txn *txn, uint64_t id, int64_t now_ms);

/*
 * relay_store_drop - delete dead letter id. If it held its lane, its lane
 * entry goes too and the next event of the lane is promoted (due at the later
 * of its due_ms and now_ms).
 * Returns 0, -RELAY_ENOTFOUND if id is not in dead, -RELAY_EFULL, or an LMDB
 * or decode error.
 */
int relay_store_drop(struct relay_store *st, MDB_txn *txn, uint64_t id, int64_t now_ms);

/*
 * relay_store_sweep_dedup - forget dedup keys whose expiry is <= now_ms, at
 * most max of them (oldest first); *swept (may be NULL) gets how many.
 * Returns 0, -RELAY_EFULL, or an LMDB code.
 */
int relay_store_sweep_dedup(struct relay_store *st, MDB_txn *txn, int64_t now_ms, size_t max,
                            size_t *swept);

/* One entry of versions. */
struct relay_version_entry {
	int kind;           /* enum relay_version_kind (route.h), 1..255 */
	int64_t version;    /* the normalised version (relay_version_parse) */
	int64_t applied_ms; /* when it was applied (wall clock) */
	int64_t expiry_ms;  /* swept from then on; no longer guards after it */
};

/*
 * relay_store_version_get - the entry of (route, name) into *out. In txn,
 * or a read transaction of its own (NULL). An entry past its expiry but not
 * swept yet is returned as it is: the caller compares expiry_ms.
 * Returns 0; -RELAY_ENOTFOUND (also on a read-only store made before the
 * table); -RELAY_EINVAL for a NULL or empty route or name; -RELAY_ETOOBIG
 * when they are too long for a key (about 480 bytes together);
 * -RELAY_ECORRUPT or -RELAY_EVERSION for a value that does not decode; or an
 * LMDB code. *out is zeroed on failure.
 */
int relay_store_version_get(struct relay_store *st, MDB_txn *txn, const char *route,
                            const char *name, struct relay_version_entry *out);

/*
 * relay_store_version_put - remember e as the last applied version of
 * (route, name), with its sweep index entry. It never goes backwards: when
 * the stored entry has the same kind, is not expired at e->applied_ms and
 * holds a greater version, it stays and *kept (may be NULL) is 1; else the
 * entry (a damaged one included) is replaced. The fault hook sees
 * "version". Returns 0, -RELAY_EINVAL (NULL e, kind out of range, NULL or
 * empty route or name), -RELAY_ETOOBIG, -RELAY_EVERSION (a newer format
 * stored: left as it is), -RELAY_EFULL, EACCES (read-only), or an LMDB
 * code.
 */
int relay_store_version_put(struct relay_store *st, MDB_txn *txn, const char *route,
                            const char *name, const struct relay_version_entry *e, int *kept);

/*
 * relay_store_sweep_versions - forget versions whose expiry is <= now_ms, at
 * most max of them (oldest first); *swept (may be NULL) gets how many. The
 * fault hook sees "sweep". Returns 0, -RELAY_EFULL, EACCES (read-only), or
 * an LMDB code.
 */
int relay_store_sweep_versions(struct relay_store *st, MDB_txn *txn, int64_t now_ms, size_t max,
                               size_t *swept);

/*
 * relay_store_set_paused - pause (paused != 0) or resume delivery, for all
 * routes when route is NULL, else for the named route (meta "pause:<route>").
 * Returns 0, -RELAY_ETOOBIG for a route name too long for a key,
 * -RELAY_EFULL, or an LMDB code.
 */
int relay_store_set_paused(struct relay_store *st, MDB_txn *txn, const char *route, int paused);

/* relay_store_get_paused - *paused = 1 if delivery is paused (globally when
 * route is NULL, else for that route alone), else 0. Returns 0 or an LMDB
 * code. */
int relay_store_get_paused(struct relay_store *st, MDB_txn *txn, const char *route, int *paused);

/* relay_store_foreach_paused - cb(arg, route) for each route paused by name,
 * in byte order (not the global flag), in one read transaction of its own; a
 * nonzero return from cb stops and is returned. The route string is valid
 * during the call only. Returns 0, cb's nonzero value, or an LMDB code. */
int relay_store_foreach_paused(struct relay_store *st, int (*cb)(void *arg, const char *route),
                               void *arg);

/*
 * relay_store_get_event / relay_store_get_dead - decode the record of id
 * from events / dead into *ev (caller frees with relay_event_clear).
 * Returns 0, -RELAY_ENOTFOUND, -RELAY_ECORRUPT, -RELAY_EVERSION, ENOMEM, or
 * an LMDB code; *ev is zeroed on failure.
 */
int relay_store_get_event(struct relay_store *st, MDB_txn *txn, uint64_t id,
                          struct relay_event *ev);
int relay_store_get_dead(struct relay_store *st, MDB_txn *txn, uint64_t id,
                         struct relay_event *ev);

/*
 * relay_store_lane_ids - the ids of lane (of source) in arrival order, the
 * head first (a dead letter that holds the lane included), up to max into
 * ids, their count in *n. In txn, or a read transaction of its own (NULL).
 * Returns 0 (a lane with no entries gives *n 0), -RELAY_EINVAL for a NULL
 * source or a NULL or empty lane, -RELAY_ETOOBIG for a lane too long for a
 * key, or an LMDB error.
 */
int relay_store_lane_ids(struct relay_store *st, MDB_txn *txn, const char *source,
                         const char *lane, uint64_t *ids, size_t max, size_t *n);

/*
 * relay_store_scan_due - up to max entries of due with due_ms <= now_ms, in
 * due order (due_ms, then id), starting after *after (exclusive; NULL: from
 * the start), into out[]. *n gets how many. In txn, or one read
 * transaction of its own (NULL). Returns 0 or an LMDB code.
 */
int relay_store_scan_due(struct relay_store *st, MDB_txn *txn, int64_t now_ms,
                         const struct relay_due *after, struct relay_due *out, size_t max,
                         size_t *n);

/* relay_store_next_due - the earliest due_ms in due, in txn or a read
 * transaction of its own (NULL). Returns 0, -RELAY_ENOTFOUND when nothing
 * is deliverable, or an LMDB code. */
int relay_store_next_due(struct relay_store *st, MDB_txn *txn, int64_t *due_ms);

/*
 * relay_store_stats - counts and sizes, in one read transaction. due_now
 * is the due entries less those not yet due, which are walked from the end
 * (retries waiting: usually few), so it is exact whatever the backlog due
 * now. Only when RELAY_STATS_DUE_NOW_MAX or more wait for later are the
 * entries due now walked instead, and counted up to that bound (a larger
 * figure then reads as that). Everything else costs the same whatever the
 * backlog. Returns 0 or an LMDB code.
 */
#define RELAY_STATS_DUE_NOW_MAX 100000
int relay_store_stats(struct relay_store *st, int64_t now_ms, struct relay_store_stats *out);

/*
 * relay_store_foreach_event / relay_store_foreach_dead - cb(arg, ev) for
 * each record of events / dead with id >= from_id, in id order, in one read
 * transaction (a consistent snapshot). ev is valid during the call only. A
 * nonzero return from cb stops the walk and is returned; a record that does
 * not decode stops it with -RELAY_ECORRUPT or -RELAY_EVERSION. cb must not
 * write to the store: collect ids, then act on them.
 */
int relay_store_foreach_event(struct relay_store *st, uint64_t from_id,
                              int (*cb)(void *arg, const struct relay_event *ev), void *arg);
int relay_store_foreach_dead(struct relay_store *st, uint64_t from_id,
                             int (*cb)(void *arg, const struct relay_event *ev), void *arg);

/*
 * relay_store_compact - write a compacted copy of the store in dir to
 * dest_dir/data.mdb (mdb_env_copy2 with MDB_CP_COMPACT: free pages left out).
 * dest_dir must exist and hold no data.mdb. Opens dir read-only on its own,
 * so it may run while the daemon writes (the copy is a consistent snapshot),
 * but not in a process that has dir open already.
 * Returns 0, ENOENT, EACCES, EEXIST (dest_dir/data.mdb exists), ENOSPC, or an
 * LMDB code.
 */
int relay_store_compact(const char *dir, const char *dest_dir);

/*
 * relay_store_note_put / relay_store_note_get - small named texts in meta
 * ("note:<name>"), which the daemon leaves for odoo-relayctl: "delivery"
 * holds a JSON object with the circuit state and since when, and the last
 * configuration error; RELAY_PAUSE_NOTE "<destination>" why the daemon
 * paused a destination itself (its endpoint answered 410 Gone), deleted by
 * odoo-relayctl resume --destination. put with text NULL deletes the note. get returns a
 * malloc'd NUL-terminated copy in *text (caller frees), or -RELAY_ENOTFOUND.
 * Both return -RELAY_EINVAL for an empty or over-long name, -RELAY_EFULL, or
 * an LMDB code. The fault hook sees op "note".
 */
#define RELAY_PAUSE_NOTE "paused@"
int relay_store_note_put(struct relay_store *st, MDB_txn *txn, const char *name, const char *text);
int relay_store_note_get(struct relay_store *st, MDB_txn *txn, const char *name, char **text);

/*
 * relay_store_live_bytes - the bytes a compacted copy of the store would
 * take, about: its two meta pages plus every branch, leaf and overflow page
 * of its databases, counted in one read transaction. Pages on LMDB's free
 * list (which relay_store_compact leaves out) are not counted, so
 * stats.map_used minus this is what compacting would save.
 * Returns 0 with *bytes set, or an LMDB code (*bytes is then 0).
 * Thread-safe like the other read functions.
 */
int relay_store_live_bytes(struct relay_store *st, size_t *bytes);

/*
 * relay_store_free_bytes - bytes free for new pages as of the last commit:
 * the map's unused tail (as far as the filesystem lets the file grow into
 * it) plus LMDB's free list, which relay_store_stats's map_used does not
 * count (map_used is the file's high-water mark). Ingest is refused below
 * its reserve (relay_store_ingest), the history stops below 1/8 of the map
 * (history.h). In a read transaction of its own, walking the free list.
 * Returns 0 with *bytes set, or an LMDB code (*bytes 0). Thread-safe.
 */
int relay_store_free_bytes(struct relay_store *st, size_t *bytes);

#endif
