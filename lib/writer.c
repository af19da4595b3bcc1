/*
 * The group-commit writer thread: see include/odoo_relay/writer.h.
 *
 * Two lists under one mutex: pending (filled by submitters, emptied whole by
 * the thread) and done (filled by the thread after each commit, emptied by
 * the loop's callback, which frees the ops and their events). The thread never calls user callbacks; it only
 * activates an event on the loop's base, which is what makes completions run
 * on the loop thread.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "odoo_relay/acktrace.h"
#include "odoo_relay/error.h"
#include "odoo_relay/log.h"
#include "odoo_relay/writer.h"

enum wop_kind { WOP_INGEST, WOP_COMPLETE, WOP_RESCHEDULE, WOP_BURY, WOP_CALL,
	        WOP_COMPLETE_VERSION, WOP_OUTCOME };

/*
 * Delivery outcomes (complete, reschedule, bury) have no one waiting on
 * their fsync: the call's slot is already free, and an outcome lost in a
 * crash only means an idempotent second delivery. So a group made only of
 * them waits up to GATHER_MS for company (or until GATHER_MAX of them), which
 * under load cuts the commits, and the fsyncs, several times over. Anything
 * else (an ingest, whose sender waits for the 202, or a call) ends the wait.
 */
#define GATHER_MS 4
#define GATHER_MAX 64

/*
 * Ingests leave their events to be indexed later (relay_store_defer_index):
 * the thread settles them once it has had nothing to do for SETTLE_IDLE_MS,
 * or any other write does it first. A settle that failed is tried again
 * after SETTLE_RETRY_MS.
 */
#define SETTLE_IDLE_MS 5
#define SETTLE_RETRY_MS 1000

static int
wop_urgent(enum wop_kind kind)
{
	return kind == WOP_INGEST || kind == WOP_CALL;
}

struct wop {
	struct wop *next;
	enum wop_kind kind;
	struct relay_event *ev; /* owned; freed once applied */
	uint64_t id;
	int64_t window_ms;
	int64_t now_ms;
	enum relay_lane_policy policy;
	int (*fn)(void *fn_arg, struct relay_store *st, MDB_txn *txn,
	          struct relay_write_result *r);
	void *fn_arg;
	char *vroute, *vname;   /* complete_version: owned */
	struct relay_version_entry version;
	relay_write_cb *cb;
	void *arg;
	int rc;
	struct relay_write_result res;
#ifdef RELAY_ACK_TRACE
	int64_t t_submit;       /* acktrace: when submitted */
	int64_t t_committed;    /* acktrace: when its group committed */
#endif
};

struct wop_list {
	struct wop *head, *tail;
};

struct relay_writer {
	struct relay_store *st;
	struct event *ev_done;
	struct event *ev_settled;   /* on the loop: runs the settled hook */
	void (*settled_fn)(void *arg); /* under mu */
	void *settled_arg;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct wop_list pending; /* under mu */
	unsigned n_pending;      /* under mu: ops in pending */
	unsigned n_urgent;       /* under mu: of which wop_urgent */
	struct wop_list done;    /* under mu */
	int closing;             /* under mu */
	uint64_t commits, ops;   /* under mu */
	uint64_t settles;        /* under mu: settles run when idle, committed */
	uint64_t settle_failures; /* under mu: and those that failed */
	int settle_failed;       /* under mu: the last one failed */
};

static void
list_append(struct wop_list *l, struct wop *first, struct wop *last)
{
	if (l->tail)
		l->tail->next = first;
	else
		l->head = first;
	l->tail = last;
}

static void
wop_free_event(struct wop *op)
{
	if (op->ev) {
		relay_event_clear(op->ev);
		free(op->ev);
		op->ev = NULL;
	}
	free(op->vroute);
	free(op->vname);
	op->vroute = op->vname = NULL;
}

/* Runs op in txn; 0 or an error, after which the caller aborts txn. */
static int
wop_apply(struct relay_store *st, MDB_txn *txn, struct wop *op)
{
	memset(&op->res, 0, sizeof(op->res));
	switch (op->kind) {
	case WOP_INGEST:
		return relay_store_ingest(st, txn, op->ev, op->window_ms, op->now_ms, &op->res.id,
		                          &op->res.duplicate);
	case WOP_COMPLETE:
		op->res.id = op->id;
		return relay_store_complete(st, txn, op->id, op->now_ms);
	case WOP_RESCHEDULE:
		op->res.id = op->ev->id;
		return relay_store_reschedule(st, txn, op->ev);
	case WOP_BURY:
		op->res.id = op->ev->id;
		return relay_store_bury(st, txn, op->ev, op->policy, op->now_ms);
	case WOP_CALL:
	case WOP_OUTCOME:
		return op->fn(op->fn_arg, st, txn, &op->res);
	case WOP_COMPLETE_VERSION: {
		int rc;

		op->res.id = op->id;
		if ((rc = relay_store_complete(st, txn, op->id, op->now_ms)))
			return rc;
		return relay_store_version_put(st, txn, op->vroute, op->vname, &op->version, NULL);
	}
	}
	return -RELAY_EINVAL;
}

/* Runs op nested in parent; the nested transaction is rolled back on error,
 * leaving parent as it was. */
static int
wop_apply_nested(struct relay_store *st, MDB_txn *parent, struct wop *op)
{
	MDB_txn *txn;
	int rc;

	if ((rc = relay_store_txn_begin(st, parent, &txn)))
		return rc;
	if ((rc = wop_apply(st, txn, op))) {
		relay_store_txn_abort(st, txn);
		return rc;
	}
	return relay_store_txn_commit(st, txn);
}

/* Runs op in a top-level transaction of its own. Returns 1 if it committed. */
static int
wop_apply_alone(struct relay_store *st, struct wop *op)
{
	MDB_txn *txn;

	if ((op->rc = relay_store_txn_begin(st, NULL, &txn)))
		return 0;
	if ((op->rc = wop_apply(st, txn, op))) {
		relay_store_txn_abort(st, txn);
		return 0;
	}
	return (op->rc = relay_store_txn_commit(st, txn)) == 0;
}

/*
 * Runs every op of the group straight in top, without a nested transaction
 * each (LMDB allocates 2.5 MB for every nested one and merges its pages into
 * the parent's at its commit: most of the writer's time for a small op).
 * Returns 1 when all of them succeeded; else 0, and top must be aborted:
 * an op that failed may have written part of its work.
 */
static int
apply_flat(struct relay_store *st, MDB_txn *top, struct wop *group)
{
	struct wop *op;

	relay_store_txn_flat(st, top);
	for (op = group; op; op = op->next)
		if ((op->rc = wop_apply(st, top, op))) {
			relay_store_txn_flat(st, NULL);
			return 0;
		}
	relay_store_txn_flat(st, NULL);
	return 1;
}

/* Applies a group; sets every op's rc. Returns the number of commits. */
static uint64_t
apply_group(struct relay_store *st, struct wop *group)
{
	MDB_txn *top;
	struct wop *op;
	uint64_t commits = 0;
	int ok = 0, rc;

	if ((rc = relay_store_txn_begin(st, NULL, &top))) {
		for (op = group; op; op = op->next)
			op->rc = rc;
		return 0;
	}
	/* Most groups fail nowhere: run them flat. One that fails somewhere
	 * is run again from the start, each op in a nested transaction, so
	 * that only the failing ones are rolled back (every op may run twice:
	 * writer.h says so of calls). */
	int64_t t_flat = relay_acktrace_now();
	if (apply_flat(st, top, group)) {
		int64_t t1 = relay_acktrace_now();
		if ((rc = relay_store_txn_commit(st, top)) == 0) {
			relay_acktrace_add(RELAY_ACK_APPLY, t1 - t_flat);
			relay_acktrace_add(RELAY_ACK_COMMIT, relay_acktrace_now() - t1);
			return 1;
		}
		if (rc != -RELAY_EFULL) {
			for (op = group; op; op = op->next)
				op->rc = rc;
			return 0;
		}
		/* full at commit: below, the smaller transactions may fit */
	} else {
		relay_store_txn_abort(st, top);
	}
	if ((rc = relay_store_txn_begin(st, NULL, &top))) {
		for (op = group; op; op = op->next)
			op->rc = rc;
		return 0;
	}
	int64_t t0 = relay_acktrace_now();
	for (op = group; op; op = op->next)
		if ((op->rc = wop_apply_nested(st, top, op)) == 0)
			ok++;
	if (!ok) {
		relay_store_txn_abort(st, top);
		return 0;
	}
	int64_t t1 = relay_acktrace_now();
	if ((rc = relay_store_txn_commit(st, top)) == 0) {
		relay_acktrace_add(RELAY_ACK_APPLY, t1 - t0);
		relay_acktrace_add(RELAY_ACK_COMMIT, relay_acktrace_now() - t1);
		return 1;
	}

	if (rc == -RELAY_EFULL) {
		/* The commit itself needed pages the map no longer had (the
		 * free list grows with the group). Smaller transactions may
		 * still fit: keep what does, fail only the rest. */
		for (op = group; op; op = op->next)
			if (op->rc == 0)
				commits += (uint64_t)wop_apply_alone(st, op);
		return commits;
	}
	for (op = group; op; op = op->next)
		if (op->rc == 0)
			op->rc = rc;
	return 0;
}

/* Under mu, with only outcomes pending: wait (see GATHER_MS) for more. */
static void
gather(struct relay_writer *w)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += GATHER_MS * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (!w->n_urgent && !w->closing && w->n_pending < GATHER_MAX)
		if (pthread_cond_timedwait(&w->cv, &w->mu, &until) == ETIMEDOUT)
			break;
}

/* Under mu, nothing pending, events unsettled: wait SETTLE_IDLE_MS (or
 * SETTLE_RETRY_MS after a failure) for work; if none came, settle. */
static void
settle_when_idle(struct relay_writer *w)
{
	struct timespec until;
	long ms = w->settle_failed ? SETTLE_RETRY_MS : SETTLE_IDLE_MS;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (!w->pending.head && !w->closing)
		if (pthread_cond_timedwait(&w->cv, &w->mu, &until) == ETIMEDOUT)
			break;
	if (w->pending.head || w->closing)
		return;
	pthread_mutex_unlock(&w->mu);
	int rc = relay_store_settle(w->st, NULL);
	pthread_mutex_lock(&w->mu);
	/* Every write settles first, so a settle that keeps failing fails
	 * them too; said once when it starts and once when it ends. */
	if (rc && !w->settle_failed)
		relay_log(LOG_ERR, "cannot index stored events for delivery (tried again every %d s): %s",
		          SETTLE_RETRY_MS / 1000, relay_strerror(rc));
	else if (!rc && w->settle_failed)
		relay_log(LOG_NOTICE, "stored events indexed for delivery again");
	w->settle_failed = rc != 0;
	if (rc) {
		w->settle_failures++;
		return;
	}
	w->settles++;
	/* events just became deliverable */
	event_active(w->ev_settled, EV_READ, 0);
}

#ifdef RELAY_ACK_TRACE
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
/* Bytes this thread has written (wchar in /proc/self/task/<tid>/io). */
static int64_t
thread_wchar(void)
{
	char path[64], line[128];
	long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%ld/io", (long)syscall(SYS_gettid));
	if (!(f = fopen(path, "r")))
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "wchar: %lld", &v) == 1)
			break;
	fclose(f);
	return v;
}
#endif

static void *
writer_main(void *p)
{
	struct relay_writer *w = p;
	struct wop *group, *last, *op;
	uint64_t commits, n;
	int rc;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->pending.head && !w->closing) {
			if (relay_store_unsettled(w->st)) {
				settle_when_idle(w);
				continue;
			}
			pthread_cond_wait(&w->cv, &w->mu);
		}
		if (!w->pending.head)
			break; /* closing, and everything queued is done */
		if (!w->n_urgent && !w->closing)
			gather(w);
		group = w->pending.head;
		last = w->pending.tail;
		w->pending.head = w->pending.tail = NULL;
		w->n_pending = w->n_urgent = 0;
		pthread_mutex_unlock(&w->mu);

#ifdef RELAY_ACK_TRACE
		int64_t wchar0 = thread_wchar();
		for (op = group; op; op = op->next)
			if (op->kind == WOP_INGEST)
				relay_acktrace_add(RELAY_ACK_HANDOFF, relay_acktrace_now() - op->t_submit);
#endif
		commits = apply_group(w->st, group);
#ifdef RELAY_ACK_TRACE
		/* the writer thread's own writes: the pages, the meta page */
		relay_acktrace_add(RELAY_ACK_PAGES, (thread_wchar() - wchar0) / 4096);
		int64_t t_committed = relay_acktrace_now();
		for (op = group; op; op = op->next)
			op->t_committed = t_committed;
#endif
		n = 0;
		for (op = group; op; op = op->next) {
			/* An id allocated in a transaction that did not commit
			 * was never given out. */
			if (op->rc != 0 && op->kind == WOP_INGEST)
				memset(&op->res, 0, sizeof(op->res));
			n++;
		}

		pthread_mutex_lock(&w->mu);
		w->commits += commits;
		w->ops += n;
		list_append(&w->done, group, last);
		pthread_mutex_unlock(&w->mu);
		event_active(w->ev_done, EV_READ, 0);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	/* what is left would be settled at the next start; done now, the
	 * store is whole for odoo-relayctl and for an older build */
	if (relay_store_unsettled(w->st) && (rc = relay_store_settle(w->st, NULL)))
		relay_log(LOG_WARNING, "cannot index stored events at stop (the next start does): %s",
		          relay_strerror(rc));
	return NULL;
}


/* On the loop thread: run the callbacks of everything committed so far. */
static void
deliver_done(evutil_socket_t fd, short what, void *arg)
{
	struct relay_writer *w = arg;
	struct wop *op, *next;

	pthread_mutex_lock(&w->mu);
	op = w->done.head;
	w->done.head = w->done.tail = NULL;
	pthread_mutex_unlock(&w->mu);
	for (; op; op = next) {
		next = op->next;
#ifdef RELAY_ACK_TRACE
		int64_t t0 = relay_acktrace_now();
		if (op->kind == WOP_INGEST)
			relay_acktrace_add(RELAY_ACK_WAKE, t0 - op->t_committed);
#endif
		if (op->cb)
			op->cb(op->arg, op->rc, &op->res);
#ifdef RELAY_ACK_TRACE
		if (op->kind == WOP_INGEST)
			relay_acktrace_add(RELAY_ACK_ANSWER, relay_acktrace_now() - t0);
#endif
		/* Freed here, by the thread that allocated them, rather than by
		 * the writer thread: the allocator keeps its caches per thread,
		 * and a free from another thread takes the allocating thread's
		 * arena lock. */
		wop_free_event(op);
		free(op);
	}
}

/* On the loop thread, after a settle of the thread's own. */
static void
run_settled(evutil_socket_t fd, short what, void *arg)
{
	struct relay_writer *w = arg;
	void (*fn)(void *);
	void *fn_arg;

	pthread_mutex_lock(&w->mu);
	fn = w->settled_fn;
	fn_arg = w->settled_arg;
	pthread_mutex_unlock(&w->mu);
	if (fn)
		fn(fn_arg);
}

void
relay_writer_set_settled_hook(struct relay_writer *w, void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&w->mu);
	w->settled_fn = fn;
	w->settled_arg = arg;
	pthread_mutex_unlock(&w->mu);
}

int
relay_writer_start(struct relay_store *st, struct event_base *base, struct relay_writer **out)
{
	struct relay_writer *w;
	pthread_condattr_t ca;
	sigset_t all, old;
	int rc;

	*out = NULL;
	if (!(w = calloc(1, sizeof(*w))))
		return ENOMEM;
	w->st = st;
	if ((rc = pthread_mutex_init(&w->mu, NULL)))
		goto fail_free;
	/* gather() waits against the monotonic clock. */
	if ((rc = pthread_condattr_init(&ca)))
		goto fail_mutex;
	if (!(rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)))
		rc = pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (rc)
		goto fail_mutex;
	if (!(w->ev_done = event_new(base, -1, 0, deliver_done, w))) {
		rc = ENOMEM;
		goto fail_cond;
	}
	if (!(w->ev_settled = event_new(base, -1, 0, run_settled, w))) {
		rc = ENOMEM;
		goto fail_event;
	}
	/* On a base with priorities, completions run before the sockets of the
	 * same loop turn: each is a connection waiting for its answer, free to
	 * send its next request once it has it. */
	if (event_base_get_npriorities(base) > 1)
		event_priority_set(w->ev_done, 0);
	/* Signals are the loop's business: the thread starts with all of them
	 * blocked so that none interrupts it or runs a handler on it. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	relay_store_defer_index(st, 1);
	rc = pthread_create(&w->thread, NULL, writer_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		relay_store_defer_index(st, 0);
		goto fail_event;
	}
	*out = w;
	return 0;

fail_event:
	if (w->ev_settled)
		event_free(w->ev_settled);
	event_free(w->ev_done);
fail_cond:
	pthread_cond_destroy(&w->cv);
fail_mutex:
	pthread_mutex_destroy(&w->mu);
fail_free:
	free(w);
	return rc;
}

static int
submit(struct relay_writer *w, struct wop *op)
{
	int was_empty;

	pthread_mutex_lock(&w->mu);
	if (w->closing) {
		pthread_mutex_unlock(&w->mu);
		wop_free_event(op);
		free(op);
		return -RELAY_ECLOSED;
	}
#ifdef RELAY_ACK_TRACE
	op->t_submit = relay_acktrace_now();
#endif
	was_empty = w->pending.head == NULL;
	list_append(&w->pending, op, op);
	w->n_pending++;
	if (wop_urgent(op->kind))
		w->n_urgent++;
	/* Wake the thread from its idle wait, or from gather() when this op
	 * ends the gathering. */
	if (was_empty || wop_urgent(op->kind) || w->n_pending == GATHER_MAX)
		pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

/* A new op, or NULL (and ev freed) when out of memory. */
static struct wop *
wop_new(enum wop_kind kind, struct relay_event *ev, relay_write_cb *cb, void *arg)
{
	struct wop *op = calloc(1, sizeof(*op));

	if (!op) {
		if (ev) {
			relay_event_clear(ev);
			free(ev);
		}
		return NULL;
	}
	op->kind = kind;
	op->ev = ev;
	op->cb = cb;
	op->arg = arg;
	return op;
}

int
relay_writer_ingest(struct relay_writer *w, struct relay_event *ev, int64_t dedup_window_ms,
                    int64_t now_ms, relay_write_cb *cb, void *arg)
{
	struct wop *op;

	if (!ev)
		return -RELAY_EINVAL;
	if (!(op = wop_new(WOP_INGEST, ev, cb, arg)))
		return ENOMEM;
	op->window_ms = dedup_window_ms;
	op->now_ms = now_ms;
	return submit(w, op);
}

int
relay_writer_complete(struct relay_writer *w, uint64_t id, int64_t now_ms, relay_write_cb *cb,
                      void *arg)
{
	struct wop *op = wop_new(WOP_COMPLETE, NULL, cb, arg);

	if (!op)
		return ENOMEM;
	op->id = id;
	op->now_ms = now_ms;
	return submit(w, op);
}

int
relay_writer_complete_version(struct relay_writer *w, uint64_t id, int64_t now_ms,
                              const char *route, const char *name,
                              const struct relay_version_entry *version, relay_write_cb *cb,
                              void *arg)
{
	struct wop *op;

	if (!route || !name || !version)
		return -RELAY_EINVAL;
	if (!(op = wop_new(WOP_COMPLETE_VERSION, NULL, cb, arg)))
		return ENOMEM;
	op->id = id;
	op->now_ms = now_ms;
	op->version = *version;
	if (!(op->vroute = strdup(route)) || !(op->vname = strdup(name))) {
		free(op->vroute);
		free(op);
		return ENOMEM;
	}
	return submit(w, op);
}

int
relay_writer_reschedule(struct relay_writer *w, struct relay_event *ev, relay_write_cb *cb,
                        void *arg)
{
	struct wop *op;

	if (!ev)
		return -RELAY_EINVAL;
	if (!(op = wop_new(WOP_RESCHEDULE, ev, cb, arg)))
		return ENOMEM;
	return submit(w, op);
}

int
relay_writer_bury(struct relay_writer *w, struct relay_event *ev, enum relay_lane_policy policy,
                  int64_t now_ms, relay_write_cb *cb, void *arg)
{
	struct wop *op;

	if (!ev)
		return -RELAY_EINVAL;
	if (!(op = wop_new(WOP_BURY, ev, cb, arg)))
		return ENOMEM;
	op->policy = policy;
	op->now_ms = now_ms;
	return submit(w, op);
}

/* A caller's function as an op of the given kind (urgent or an outcome). */
static int
submit_call(struct relay_writer *w, enum wop_kind kind,
            int (*fn)(void *fn_arg, struct relay_store *st, MDB_txn *txn,
                      struct relay_write_result *r),
            void *fn_arg, relay_write_cb *cb, void *arg)
{
	struct wop *op;

	if (!fn)
		return -RELAY_EINVAL;
	if (!(op = wop_new(kind, NULL, cb, arg)))
		return ENOMEM;
	op->fn = fn;
	op->fn_arg = fn_arg;
	return submit(w, op);
}

int
relay_writer_call(struct relay_writer *w,
                  int (*fn)(void *fn_arg, struct relay_store *st, MDB_txn *txn,
                            struct relay_write_result *r),
                  void *fn_arg, relay_write_cb *cb, void *arg)
{
	return submit_call(w, WOP_CALL, fn, fn_arg, cb, arg);
}

int
relay_writer_call_outcome(struct relay_writer *w,
                          int (*fn)(void *fn_arg, struct relay_store *st, MDB_txn *txn,
                                    struct relay_write_result *r),
                          void *fn_arg, relay_write_cb *cb, void *arg)
{
	return submit_call(w, WOP_OUTCOME, fn, fn_arg, cb, arg);
}

void
relay_writer_stop(struct relay_writer *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->closing = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	/* the thread settled the tail as it stopped: st's own ingests from
	 * now on index at once, with nobody left to settle them */
	relay_store_defer_index(w->st, 0);
	/* The loop may not run again: whatever it has not delivered yet is
	 * delivered here. */
	deliver_done(-1, 0, w);
	event_free(w->ev_done);
	event_free(w->ev_settled);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

void
relay_writer_settles(struct relay_writer *w, uint64_t *settled, uint64_t *failed)
{
	pthread_mutex_lock(&w->mu);
	if (settled)
		*settled = w->settles;
	if (failed)
		*failed = w->settle_failures;
	pthread_mutex_unlock(&w->mu);
}

void
relay_writer_stats(struct relay_writer *w, uint64_t *commits, uint64_t *ops)
{
	pthread_mutex_lock(&w->mu);
	if (commits)
		*commits = w->commits;
	if (ops)
		*ops = w->ops;
	pthread_mutex_unlock(&w->mu);
}
