/*
 * odoo-relay: which stored event goes out next, and to which destination.
 *
 * The scheduler scans the store's due index in due order and turns due
 * events into jobs, within each destination's limits: calls in flight
 * (max_calls, or what its circuit allows now: slots), calls started per
 * second (a token bucket), and events held at once (calls plus outcomes
 * still being written). An event already in flight is never started twice;
 * the store keeps only a lane's head due, so one event per lane is in
 * flight and order within a lane holds.
 *
 * Batches: resolve may let a job travel with others (batch_max > 1). Due
 * jobs of one destination with the same batch key (the route) then gather
 * into one call of at most batch_max jobs, in due order: the first takes a
 * call slot (and a token), the others join it without one. A call that is
 * not full waits up to batch_wait_ms (monotonic) for more due jobs, then
 * starts; a full one starts at once. The slot is free again when the last
 * job of the call is back (relay_scheduler_call_done for each). A call never
 * holds two jobs of one lane: only a lane's head is ever due.
 *
 * It knows nothing of Odoo, HTTP or JSON: which route and destination an
 * event takes, and whether that route is paused or held, is the caller's
 * resolve function; what is done with a job is the caller's start
 * function. Below it is only the store, which it reads.
 *
 * Ownership: the scheduler owns its jobs from the moment resolve sees them
 * until relay_scheduler_job_done. struct relay_sched_dest is the caller's
 * (one per destination); it must outlive every job that points at it.
 * Threading: the loop thread only.
 */
#ifndef ODOO_RELAY_SCHEDULER_H
#define ODOO_RELAY_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <lmdb.h>

#include "odoo_relay/config.h"
#include "odoo_relay/record.h"

struct relay_store;
struct relay_scheduler;
struct relay_sched_call;

/* One destination as the scheduler sees it. The caller sets the first
 * block (and may change it between dispatches); the scheduler keeps the
 * second. Zero-initialise before use. */
struct relay_sched_dest {
	unsigned max_calls;          /* calls in flight at most (>= 1) */
	double rate_per_s;           /* calls started per second, 0 = unlimited */
	unsigned slots;              /* calls the circuit allows now: 0, 1 or max_calls */
	unsigned max_batch;          /* the largest batch_max of its jobs (0 = 1): room
	                                for outcomes being written scales with it */
	/* the scheduler's */
	unsigned calls;              /* calls holding a slot (a batch is one call) */
	unsigned gathering;          /* calls gathering jobs, not started yet */
	unsigned jobs;               /* jobs in all, outcomes being written included */
	double tokens;
	int64_t tokens_ms;
	LIST_ENTRY(relay_sched_dest) link;
};

/* An event on its way out. Filled by the scheduler (ev, started_ms) and by
 * the caller's resolve (the rest). */
struct relay_job {
	struct relay_event ev;       /* owned; cleared with the job */
	struct relay_sched_dest *sd; /* NULL: no destination (unrouted, or none configured) */
	char *route;                 /* the route's name, owned; NULL when none matched */
	char *dest;                  /* the destination's name, owned; NULL with sd */
	char *model;                 /* the route's model, for logs, owned; or NULL */
	struct relay_backoff_conf backoff;
	unsigned permanent_retries;
	int64_t permanent_delay_ms;
	enum relay_lane_policy lane_policy;
	int half_open;               /* the one event let through a half-open circuit */
	unsigned batch_max;          /* resolve's: jobs per call with this one, 0 or 1 = alone */
	int64_t batch_wait_ms;       /* resolve's: how long a call that is not full waits */
	int calling;                 /* part of a call holding one of sd's slots */
	struct relay_sched_call *call; /* the scheduler's: that call */
	/* What the driver said of the call that carried it (delivery.c fills
	 * them for settle's logs and attempts): a batch id (0: none), its
	 * rows, and this job's row in it (-1: none, the whole call answered). */
	uint64_t batch_id;
	unsigned batch_size;
	int batch_row;
	/* The stale guard's (delivery.c, for a route with "version"): the
	 * event's external-ID name (owned; NULL: no guard), its version, the
	 * kind (enum relay_version_kind) and how long it is kept, which settle
	 * records when the event is done. */
	char *version_name;
	int64_t version;
	int version_kind;
	int64_t version_window_ms;
	/* The history's: how long an event that leaves the queue is kept and
	 * whether with its body (delivery.c's resolve, from the configuration),
	 * and what the destination answered (its driver: the external ID
	 * written, owned or NULL, and the Odoo record id, 0 when not known). */
	int64_t hist_retention_ms;
	int hist_keep_body;
	int hist_dedup_digest;         /* the dedup key is a digest of the body (history.h) */
	char *answer_xid;
	int64_t answer_odoo_id;
	int answer_http_status;      /* delivery.c: the last answer's HTTP status, 0 none */
	/* A route's "confirm" (delivery.c): the body a driver sends instead of
	 * ev.body, the record's current values (owned; NULL: ev.body). */
	char *send_body;
	size_t send_body_len;
	int64_t started_ms;          /* monotonic */
	void *owner;                 /* the caller's (the driver instance it went to) */
	LIST_ENTRY(relay_job) link;
	LIST_ENTRY(relay_job) hlink; /* the scheduler's: by id */
};

/* What resolve decided for a job. */
enum relay_sched_verdict {
	RELAY_SCHED_START,           /* start it (job->sd set), or settle it (sd NULL) */
	RELAY_SCHED_SKIP,            /* leave it queued: its route is paused or held */
};

/* Fill job->sd, route, dest and the policy fields; the event is read. May
 * fail only for memory: return RELAY_SCHED_SKIP then. */
typedef enum relay_sched_verdict (*relay_sched_resolve_fn)(void *arg, struct relay_job *job);
/* Take n >= 1 jobs, one call's (in due order; n is 1 unless they batch; the
 * array is valid during the call only): the caller ends each later with
 * relay_scheduler_job_done (never from inside relay_scheduler_dispatch's own
 * iteration: a job may be ended from within start only by settling it
 * asynchronously). */
typedef void (*relay_sched_start_fn)(void *arg, struct relay_job **jobs, size_t n);

/*
 * relay_scheduler_new - a scheduler over store (borrowed; must outlive it).
 * Returns 0, or ENOMEM.
 */
int relay_scheduler_new(struct relay_store *store, relay_sched_resolve_fn resolve,
                        relay_sched_start_fn start, void *arg, struct relay_scheduler **out);

/* relay_scheduler_attach - consider sd's room when deciding whether a scan
 * is worth going on; relay_scheduler_detach before sd is freed. */
void relay_scheduler_attach(struct relay_scheduler *s, struct relay_sched_dest *sd);
void relay_scheduler_detach(struct relay_scheduler *s, struct relay_sched_dest *sd);

/* relay_scheduler_forget - what resolve said of events so far may no longer
 * hold (a reload): ask again. */
void relay_scheduler_forget(struct relay_scheduler *s);

/* relay_scheduler_free - free the scheduler and every job it still holds
 * (their events cleared). NULL is a no-op. */
void relay_scheduler_free(struct relay_scheduler *s);

/*
 * relay_scheduler_dispatch - start what may start now (calls gathering
 * jobs whose wait is over included). now_ms is the wall
 * clock (the due index is in wall time), mono_ms the monotonic one (rates).
 * Every read of the pass (pause flag, due index, events) goes through txn,
 * a read transaction the caller holds (its resolve may read through it
 * too), or through one of the scheduler's own (NULL), ended before it
 * returns. Returns the milliseconds after which it should run again at the
 * latest (an event becoming due, a token, or the poll interval that notices
 * what odoo-relayctl changed).
 */
int64_t relay_scheduler_dispatch(struct relay_scheduler *s, MDB_txn *txn, int64_t now_ms,
                                 int64_t mono_ms);

/* relay_scheduler_call_done - job is back from its call, while its outcome
 * is still being written; the call's slot is free once every job of the
 * call is back. Idempotent. */
void relay_scheduler_call_done(struct relay_scheduler *s, struct relay_job *job);

/* relay_scheduler_job_done - job is over: free it. A job of a call still
 * gathering is taken out of it. */
void relay_scheduler_job_done(struct relay_scheduler *s, struct relay_job *job);

/* relay_scheduler_jobs - jobs held (outcomes being written included). */
unsigned relay_scheduler_jobs(const struct relay_scheduler *s);

/* relay_scheduler_calls - calls holding a slot, in all. */
unsigned relay_scheduler_calls(const struct relay_scheduler *s);

#endif
