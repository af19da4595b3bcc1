/*
 * odoo-relay: the store writer, one thread that owns all of the daemon's
 * LMDB write transactions and commits in groups.
 *
 * Its loop: wait for work; take everything pending; begin one write
 * transaction; run the operations in it; commit, which is one fsync for the
 * whole group; then hand every completion to the event loop. When an
 * operation of the group fails (say on a full map), the transaction is
 * aborted and the group run again, each operation in a nested transaction
 * of its own, so that the failing one is rolled back alone and the others
 * go on (nested transactions cost LMDB megabytes each: not for every group). Work submitted while a commit is
 * under way goes into the next group, so under load each fsync covers many
 * operations and the latency of one is about two commits. A group of
 * delivery outcomes only (complete, reschedule, bury: nobody waits on their
 * fsync) first waits up to 4 ms for more work; an ingest or a call ends
 * that wait at once.
 *
 * Ingests defer their indexes (relay_store_defer_index, which start turns
 * on for st and stop turns off again): the commit a sender waits for writes the event's record
 * alone. The thread settles them, in a commit of its own, once it has had
 * nothing to do for 5 ms (1 s after a settle that failed), and before it
 * stops; any other operation settles them first in its own group.
 *
 * Completions: the callback of every accepted operation is called exactly
 * once, on the thread that runs the loop of the event_base given at start
 * (made with evthread_use_pthreads() in effect), or by relay_writer_stop().
 * On a base with several priorities (event_base_priority_init) they run at
 * priority 0, ahead of the base's other events.
 * rc is 0 only when the operation's effects are committed and durable. A
 * failed operation wrote nothing. Errors are those of the store function
 * the operation runs (store.h, -RELAY_EFULL for a full map or disk), or of
 * the commit: a failed commit fails every operation of its group, except
 * that a group whose commit found the store full is retried one operation
 * per transaction, so that what still fits is kept.
 */
#ifndef ODOO_RELAY_WRITER_H
#define ODOO_RELAY_WRITER_H

#include <stdint.h>

#include "odoo_relay/record.h"
#include "odoo_relay/store.h"

struct event_base;
struct relay_writer;

struct relay_write_result {
	uint64_t id;    /* ingest: the new (or, for a duplicate, the first) id; else the op's id */
	int duplicate;  /* ingest: 1 when the dedup key was seen within its window */
};

/* rc: 0 or an error code (error.h). r is never NULL and valid during the
 * call only. */
typedef void relay_write_cb(void *arg, int rc, const struct relay_write_result *r);

/*
 * relay_writer_start - start the writer thread for st, delivering
 * completions on base's loop. st and base must outlive the writer; while it
 * runs, no other thread of this process may write to st.
 * Returns 0 with *out set, ENOMEM, or an errno from pthread_create (EAGAIN).
 */
int relay_writer_start(struct relay_store *st, struct event_base *base, struct relay_writer **out);

/*
 * The submit functions below are thread-safe and never block on disk: they
 * queue the operation and return. Each returns 0 (cb will be called), or
 * -RELAY_ECLOSED once relay_writer_stop() has begun, ENOMEM, or
 * -RELAY_EINVAL for a NULL event or function; on failure cb is not called. cb may be NULL. Events passed in are malloc'd structs
 * whose ownership passes to the writer in every case, failure included: it
 * frees them with relay_event_clear() and free().
 */

/* relay_writer_ingest - relay_store_ingest(ev, dedup_window_ms, now_ms). */
int relay_writer_ingest(struct relay_writer *w, struct relay_event *ev, int64_t dedup_window_ms,
                        int64_t now_ms, relay_write_cb *cb, void *arg);

/* relay_writer_complete - relay_store_complete(id, now_ms). */
int relay_writer_complete(struct relay_writer *w, uint64_t id, int64_t now_ms,
                          relay_write_cb *cb, void *arg);

/*
 * relay_writer_complete_version - relay_store_complete(id, now_ms) and
 * relay_store_version_put(route, name, version) in one transaction: the
 * event ends and the stale guard learns its version together, so a crash
 * neither loses the version of a completed event nor records one for an
 * event still queued. route and name are copied. -RELAY_EINVAL for a NULL
 * route, name or version. Fails as a whole (nothing written) when either
 * part fails, -RELAY_ENOTFOUND included.
 */
int relay_writer_complete_version(struct relay_writer *w, uint64_t id, int64_t now_ms,
                                  const char *route, const char *name,
                                  const struct relay_version_entry *version,
                                  relay_write_cb *cb, void *arg);

/* relay_writer_reschedule - relay_store_reschedule(ev): ev is the whole
 * updated record (attempts, history, last_error, due_ms). */
int relay_writer_reschedule(struct relay_writer *w, struct relay_event *ev, relay_write_cb *cb,
                            void *arg);

/* relay_writer_bury - relay_store_bury(ev, policy, now_ms). */
int relay_writer_bury(struct relay_writer *w, struct relay_event *ev,
                      enum relay_lane_policy policy, int64_t now_ms, relay_write_cb *cb,
                      void *arg);

/*
 * relay_writer_call - run fn(fn_arg, st, txn, r) on the writer thread inside
 * the group's transaction (in a nested transaction of its own), e.g. to
 * sweep dedup keys or set a pause flag. fn returns 0 or an error code; on
 * error its writes are rolled back. fn may fill r, which is passed to cb.
 * fn must not begin or end transactions on txn itself, and must act only
 * through txn: when another operation of its group fails, or a group is
 * retried after a full store, fn runs again.
 */
int relay_writer_call(struct relay_writer *w,
                      int (*fn)(void *fn_arg, struct relay_store *st, MDB_txn *txn,
                                struct relay_write_result *r),
                      void *fn_arg, relay_write_cb *cb, void *arg);

/*
 * relay_writer_call_outcome - relay_writer_call for a delivery outcome
 * written by fn (the history's completions): the same contract, except
 * that like complete, reschedule and bury it does not end a group's wait
 * for company (nobody waits on its fsync).
 */
int relay_writer_call_outcome(struct relay_writer *w,
                              int (*fn)(void *fn_arg, struct relay_store *st, MDB_txn *txn,
                                        struct relay_write_result *r),
                              void *fn_arg, relay_write_cb *cb, void *arg);

/*
 * relay_writer_stop - stop taking work (submits fail with -RELAY_ECLOSED from
 * now on), let the thread commit everything already queued, join it, then
 * call the callbacks not yet delivered, on the calling thread, before
 * returning; then free w. It blocks until the queued work is durable: call
 * it from the loop thread (not from a completion callback) or while no
 * thread runs the loop. NULL is a no-op.
 */
void relay_writer_stop(struct relay_writer *w);

/* relay_writer_stats - top-level commits that succeeded, and operations
 * that went through the thread (succeeded or not), since start. Either
 * pointer may be NULL. Thread-safe. */
void relay_writer_stats(struct relay_writer *w, uint64_t *commits, uint64_t *ops);

/* relay_writer_settles - the thread's own settles since start
 * (relay_store_settle when it had nothing else to do): *settled those
 * committed, commits that only indexed events already stored and are not
 * in relay_writer_stats' commits; *failed those that failed (each logged
 * while failing, then tried again after a second). Either pointer may be
 * NULL. Thread-safe. */
void relay_writer_settles(struct relay_writer *w, uint64_t *settled, uint64_t *failed);

/* relay_writer_set_settled_hook - fn(arg) runs on the loop thread after
 * each of those settles, when events may have become deliverable (the
 * daemon looks for due work then). NULL fn: none. Thread-safe. */
void relay_writer_set_settled_hook(struct relay_writer *w, void (*fn)(void *arg), void *arg);

#endif
