/* Which event goes out next: see include/odoo_relay/scheduler.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "odoo_relay/error.h"
#include "odoo_relay/log.h"
#include "odoo_relay/scheduler.h"
#include "odoo_relay/store.h"

/* The scheduler looks for work at least this often, so that what
 * odoo-relayctl changes (replay, pause) is seen within a second. */
#define POLL_MS 250
/* A pass reads the due index in batches that start small and double: a
 * tick usually has a slot or two to fill, and reading 64 entries to start
 * one call was a tenth of the loop's work per delivered event. */
#define SCAN_FIRST 8
#define SCAN_BATCH 64
#define SCAN_MAX_ENTRIES 1024
/* A pass starts after the run of due entries, from the front, that were
 * all in flight at the last pass (they cannot start again), and from the
 * front at least this often: an entry written into that run since (a lane's
 * next event promoted by a commit stamped before the run's end) waits at
 * most this long. */
#define FULL_SCAN_MS 50
#define BAD_IDS 32
/* Events held at once, per call slot: room for outcomes waiting for their
 * commit while the next calls go out. */
#define JOBS_PER_CALL 64

/* Events lately left for want of room, and where they were going, so that
 * a backlog for a destination that is down is not read again at every
 * scan. Direct-mapped by id; a collision only costs a read. */
#define SEEN 1024
struct seen {
	uint64_t id;
	struct relay_sched_dest *sd;
};

/* One call: the jobs it carries hold it; its slot is free when the last is
 * back. While it gathers (not started yet) its jobs are in jobs[]. */
struct relay_sched_call {
	struct relay_sched_dest *sd;
	unsigned held;               /* jobs still holding it */
	int gathering;
	const char *key;             /* the first job's route (its string) */
	unsigned max;
	int64_t deadline_ms;         /* monotonic: start by then */
	struct relay_job **jobs;     /* gathering: max slots */
	size_t n;
	LIST_ENTRY(relay_sched_call) link;
};

#define ID_BUCKETS 1024

struct relay_scheduler {
	struct relay_store *store;
	LIST_HEAD(, relay_sched_call) gathering;
	LIST_HEAD(, relay_job) by_id[ID_BUCKETS];
	LIST_HEAD(, relay_sched_dest) dests;
	struct seen seen[SEEN];
	relay_sched_resolve_fn resolve;
	relay_sched_start_fn start;
	void *arg;
	LIST_HEAD(, relay_job) jobs;
	unsigned n_jobs, n_calls;
	uint64_t bad_ids[BAD_IDS];   /* events that cannot be read: said once */
	size_t n_bad;
	MDB_txn *rtxn;               /* the snapshot dispatch reads through, or NULL */
	struct relay_due skip;       /* the end of the in-flight run at the front */
	int have_skip;
	int64_t full_ms;             /* the last pass from the front (monotonic) */
};

int
relay_scheduler_new(struct relay_store *store, relay_sched_resolve_fn resolve,
                    relay_sched_start_fn start, void *arg, struct relay_scheduler **out)
{
	struct relay_scheduler *s = calloc(1, sizeof(*s));

	if (!s)
		return ENOMEM;
	s->store = store;
	s->resolve = resolve;
	s->start = start;
	s->arg = arg;
	LIST_INIT(&s->jobs);
	LIST_INIT(&s->dests);
	LIST_INIT(&s->gathering);
	for (size_t i = 0; i < ID_BUCKETS; i++)
		LIST_INIT(&s->by_id[i]);
	*out = s;
	return 0;
}

void
relay_scheduler_attach(struct relay_scheduler *s, struct relay_sched_dest *sd)
{
	LIST_INSERT_HEAD(&s->dests, sd, link);
}

void
relay_scheduler_detach(struct relay_scheduler *s, struct relay_sched_dest *sd)
{
	LIST_REMOVE(sd, link);
	relay_scheduler_forget(s);
}

void
relay_scheduler_forget(struct relay_scheduler *s)
{
	memset(s->seen, 0, sizeof(s->seen));
	s->have_skip = 0;
}

static void
job_free(struct relay_job *j)
{
	relay_event_clear(&j->ev);
	free(j->route);
	free(j->dest);
	free(j->model);
	free(j->version_name);
	free(j->answer_xid);
	free(j->send_body);
	free(j);
}

static void
call_free(struct relay_sched_call *c)
{
	free(c->jobs);
	free(c);
}

/* A call that gathers no more: out of the list, its jobs array gone. */
static void
call_stop_gathering(struct relay_sched_call *c)
{
	if (!c->gathering)
		return;
	c->gathering = 0;
	c->sd->gathering--;
	LIST_REMOVE(c, link);
	free(c->jobs);
	c->jobs = NULL;
}

void
relay_scheduler_call_done(struct relay_scheduler *s, struct relay_job *job)
{
	struct relay_sched_call *c = job->call;

	if (!job->calling)
		return;
	job->calling = 0;
	job->call = NULL;
	if (c->gathering) {
		/* Taken out before its call started (only when freeing). */
		for (size_t i = 0; i < c->n; i++)
			if (c->jobs[i] == job) {
				memmove(&c->jobs[i], &c->jobs[i + 1], (c->n - i - 1) * sizeof(*c->jobs));
				c->n--;
				break;
			}
	}
	if (--c->held > 0)
		return;
	call_stop_gathering(c);
	s->n_calls--;
	c->sd->calls--;
	call_free(c);
}

void
relay_scheduler_job_done(struct relay_scheduler *s, struct relay_job *job)
{
	relay_scheduler_call_done(s, job);
	LIST_REMOVE(job, link);
	LIST_REMOVE(job, hlink);
	s->n_jobs--;
	if (job->sd)
		job->sd->jobs--;
	job_free(job);
}

void
relay_scheduler_free(struct relay_scheduler *s)
{
	if (!s)
		return;
	while (!LIST_EMPTY(&s->jobs))
		relay_scheduler_job_done(s, LIST_FIRST(&s->jobs));
	free(s);
}

unsigned
relay_scheduler_jobs(const struct relay_scheduler *s)
{
	return s->n_jobs;
}

unsigned
relay_scheduler_calls(const struct relay_scheduler *s)
{
	return s->n_calls;
}

static int
in_flight(const struct relay_scheduler *s, uint64_t id)
{
	const struct relay_job *j;

	LIST_FOREACH(j, &s->by_id[id % ID_BUCKETS], hlink)
		if (j->ev.id == id)
			return 1;
	return 0;
}

static int
is_bad(const struct relay_scheduler *s, uint64_t id)
{
	for (size_t i = 0; i < s->n_bad; i++)
		if (s->bad_ids[i] == id)
			return 1;
	return 0;
}

/* Whether sd may hold one more job: calls in flight and outcomes being
 * written, room for two batches per call besides. */
static int
has_job_room(const struct relay_sched_dest *sd)
{
	unsigned batch = sd->max_batch ? sd->max_batch : 1;

	return sd->jobs < sd->max_calls * (JOBS_PER_CALL + 2 * batch);
}

/* Whether sd may take a call, the rate aside. */
static int
has_slot(const struct relay_sched_dest *sd)
{
	unsigned slots = sd->slots < sd->max_calls ? sd->slots : sd->max_calls;

	return sd->calls < slots && has_job_room(sd);
}

/* Whether sd may take a job now: a call slot, or a call gathering jobs. */
static int
takes_jobs(const struct relay_sched_dest *sd)
{
	return has_slot(sd) || (sd->gathering > 0 && has_job_room(sd));
}

/* Whether any destination may take a job: else a scan is pointless. An
 * event with no destination (unrouted) waits for the next scan with room,
 * or for the poll: settling it is not urgent. */
static int
any_slot(const struct relay_scheduler *s)
{
	const struct relay_sched_dest *sd;

	LIST_FOREACH(sd, &s->dests, link)
		if (takes_jobs(sd))
			return 1;
	return LIST_EMPTY(&s->dests);
}

/* Start a call that has gathered its jobs. */
static void
call_start(struct relay_scheduler *s, struct relay_sched_call *c)
{
	struct relay_job **jobs = c->jobs;
	size_t n = c->n;

	c->jobs = NULL; /* call_stop_gathering must not free it */
	c->gathering = 0;
	c->sd->gathering--;
	LIST_REMOVE(c, link);
	s->start(s->arg, jobs, n);
	free(jobs);
}

/* The call gathering jobs like j (its destination and key), or NULL. */
static struct relay_sched_call *
gathering_for(struct relay_scheduler *s, const struct relay_job *j)
{
	struct relay_sched_call *c;

	if (j->batch_max <= 1 || !j->route || !j->sd->gathering)
		return NULL;
	LIST_FOREACH(c, &s->gathering, link)
		if (c->sd == j->sd && c->n < c->max && strcmp(c->key, j->route) == 0)
			return c;
	return NULL;
}

/* Room for one more call at sd now: 1, or 0 and *wait_ms when only the
 * rate stands in the way. Takes the token when there is room. */
static int
room(struct relay_sched_dest *sd, int64_t mono_ms, int64_t *wait_ms)
{
	if (!has_slot(sd))
		return 0;
	if (sd->rate_per_s <= 0)
		return 1;
	double burst = sd->rate_per_s < 1 ? 1 : sd->rate_per_s;
	if (sd->tokens_ms == 0) {
		sd->tokens = burst;
		sd->tokens_ms = mono_ms;
	}
	sd->tokens += (double)(mono_ms - sd->tokens_ms) * sd->rate_per_s / 1000.0;
	if (sd->tokens > burst)
		sd->tokens = burst;
	sd->tokens_ms = mono_ms;
	if (sd->tokens >= 1) {
		sd->tokens -= 1;
		return 1;
	}
	*wait_ms = (int64_t)((1 - sd->tokens) * 1000.0 / sd->rate_per_s) + 1;
	return 0;
}

/* Look at one due event: start it, or leave it. */
static void
consider(struct relay_scheduler *s, uint64_t id, int64_t mono_ms, int64_t *next_ms)
{
	struct seen *seen = &s->seen[id % SEEN];
	struct relay_sched_call *c = NULL;
	struct relay_job *j;
	int64_t wait = 0;
	int rc;

	if (seen->id == id && seen->sd && !takes_jobs(seen->sd))
		return;
	if (!(j = calloc(1, sizeof(*j))))
		return;
	if ((rc = relay_store_get_event(s->store, s->rtxn, id, &j->ev)) != 0) {
		if (rc != -RELAY_ENOTFOUND && s->n_bad < BAD_IDS) {
			/* Once per id: it would be logged at every scan otherwise. */
			s->bad_ids[s->n_bad++] = id;
			relay_log(LOG_ERR, "cannot read event %" PRIu64 " from the store: %s", id,
			          relay_strerror(rc));
		}
		free(j);
		return;
	}
	j->started_ms = mono_ms;
	if (s->resolve(s->arg, j) != RELAY_SCHED_START)
		goto leave;
	if (j->sd && (c = gathering_for(s, j)) != NULL) {
		if (!has_job_room(j->sd))
			goto leave;
	} else if (j->sd && !room(j->sd, mono_ms, &wait)) {
		if (wait > 0 && wait < *next_ms)
			*next_ms = wait;
		seen->id = id;
		seen->sd = j->sd;
		goto leave;
	} else if (j->sd) {
		unsigned max = j->batch_max > 1 && j->route ? j->batch_max : 1;

		if (!(c = calloc(1, sizeof(*c))) || !(c->jobs = calloc(max, sizeof(*c->jobs)))) {
			free(c);
			goto leave;
		}
		c->sd = j->sd;
		c->key = j->route;
		c->max = max;
		c->deadline_ms = mono_ms + (j->batch_wait_ms > 0 ? j->batch_wait_ms : 0);
		c->gathering = 1;
		j->sd->gathering++;
		j->sd->calls++;
		s->n_calls++;
		LIST_INSERT_HEAD(&s->gathering, c, link);
	}
	LIST_INSERT_HEAD(&s->jobs, j, link);
	LIST_INSERT_HEAD(&s->by_id[id % ID_BUCKETS], j, hlink);
	s->n_jobs++;
	if (!j->sd) {
		struct relay_job *one[1] = { j };

		s->start(s->arg, one, 1);
		return;
	}
	j->sd->jobs++;
	j->calling = 1;
	j->call = c;
	c->held++;
	c->jobs[c->n++] = j;
	if (c->n == c->max)
		call_start(s, c);
	return;
leave:
	job_free(j);
}

/* Start the calls whose wait is over (all of them with force); the time
 * to the next deadline into *next_ms. */
static void
start_gathered(struct relay_scheduler *s, int64_t mono_ms, int force, int64_t *next_ms)
{
	struct relay_sched_call *c, *nc;

	for (c = LIST_FIRST(&s->gathering); c; c = nc) {
		nc = LIST_NEXT(c, link);
		if (force || c->deadline_ms <= mono_ms) {
			call_start(s, c);
			/* start may have ended jobs of other calls: begin again */
			nc = LIST_FIRST(&s->gathering);
		} else if (c->deadline_ms - mono_ms < *next_ms) {
			*next_ms = c->deadline_ms - mono_ms;
		}
	}
}

int64_t
relay_scheduler_dispatch(struct relay_scheduler *s, MDB_txn *txn, int64_t now_ms, int64_t mono_ms)
{
	struct relay_due due[SCAN_BATCH], after;
	int64_t next_ms = POLL_MS, nd;
	int have_after = 0, paused = 0;
	MDB_txn *own = NULL;

	/* One snapshot for the whole pass: a read transaction per scan, per
	 * event and per pause flag was a tenth of the loop's work per
	 * delivered event (and they could disagree with one another). */
	if (!txn && relay_store_read_begin(s->store, &own) == 0)
		txn = own;
	s->rtxn = txn;
	relay_store_get_paused(s->store, txn, NULL, &paused);
	if (paused) {
		start_gathered(s, mono_ms, 1, &next_ms);
		next_ms = POLL_MS;
		goto out;
	}
	/* The run of in-flight entries at the front is skipped (a full
	 * window of calls and outcomes waiting for their commit is hundreds of
	 * entries, read again for each call that ends). */
	int run = 1; /* still in the run of in-flight entries */

	if (s->have_skip && mono_ms - s->full_ms < FULL_SCAN_MS && mono_ms >= s->full_ms) {
		after = s->skip;
		have_after = 1;
	} else {
		s->have_skip = 0;
		s->full_ms = mono_ms;
	}
	for (size_t want = SCAN_FIRST, scanned = 0; scanned < SCAN_MAX_ENTRIES;) {
		size_t n = 0, i;

		if (relay_store_scan_due(s->store, txn, now_ms, have_after ? &after : NULL, due,
		                         want, &n))
			break;
		scanned += n;
		for (i = 0; i < n && any_slot(s); i++) {
			if (!in_flight(s, due[i].id) && !is_bad(s, due[i].id))
				consider(s, due[i].id, mono_ms, &next_ms);
			if (run && in_flight(s, due[i].id)) {
				s->skip = due[i];
				s->have_skip = 1;
			} else {
				run = 0;
			}
		}
		if (n < want || !any_slot(s))
			break;
		after = due[n - 1];
		have_after = 1;
		if (want < SCAN_BATCH)
			want *= 2;
	}
	start_gathered(s, mono_ms, 0, &next_ms);
	if (relay_store_next_due(s->store, txn, &nd) == 0 && nd > now_ms && nd - now_ms < next_ms)
		next_ms = nd - now_ms;
	/* The next pass from the front is due then: a tick must come by it,
	 * or an entry written into the run would wait for the poll. */
	if (s->have_skip) {
		int64_t left = FULL_SCAN_MS - (mono_ms - s->full_ms);

		if (left < 1)
			left = 1;
		if (left < next_ms)
			next_ms = left;
	}
out:
	s->rtxn = NULL;
	relay_store_read_end(own);
	return next_ms;
}
