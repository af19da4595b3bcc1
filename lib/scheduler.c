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
#define SCAN_BATCH 64
#define SCAN_MAX_BATCHES 16
#define BAD_IDS 32
/* Events held at once, per call slot: room for outcomes waiting for their
 * commit while the next calls go out. */
#define JOBS_PER_CALL 16

/* Events lately left for want of room, and where they were going, so that
 * a backlog for a destination that is down is not read again at every
 * scan. Direct-mapped by id; a collision only costs a read. */
#define SEEN 1024
struct seen {
	uint64_t id;
	struct relay_sched_dest *sd;
};

struct relay_scheduler {
	struct relay_store *store;
	LIST_HEAD(, relay_sched_dest) dests;
	struct seen seen[SEEN];
	relay_sched_resolve_fn resolve;
	relay_sched_start_fn start;
	void *arg;
	LIST_HEAD(, relay_job) jobs;
	unsigned n_jobs, n_calls;
	uint64_t bad_ids[BAD_IDS];   /* events that cannot be read: said once */
	size_t n_bad;
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
}

static void
job_free(struct relay_job *j)
{
	relay_event_clear(&j->ev);
	free(j->route);
	free(j->dest);
	free(j->model);
	free(j);
}

void
relay_scheduler_call_done(struct relay_scheduler *s, struct relay_job *job)
{
	if (!job->calling)
		return;
	job->calling = 0;
	s->n_calls--;
	if (job->sd)
		job->sd->calls--;
}

void
relay_scheduler_job_done(struct relay_scheduler *s, struct relay_job *job)
{
	relay_scheduler_call_done(s, job);
	LIST_REMOVE(job, link);
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

void
relay_scheduler_foreach(struct relay_scheduler *s, void (*fn)(struct relay_job *, void *), void *arg)
{
	struct relay_job *j;

	LIST_FOREACH(j, &s->jobs, link)
		fn(j, arg);
}

static int
in_flight(const struct relay_scheduler *s, uint64_t id)
{
	const struct relay_job *j;

	LIST_FOREACH(j, &s->jobs, link)
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

/* Whether sd may take a call, the rate aside. */
static int
has_slot(const struct relay_sched_dest *sd)
{
	unsigned slots = sd->slots < sd->max_calls ? sd->slots : sd->max_calls;

	return sd->calls < slots && sd->jobs < sd->max_calls * JOBS_PER_CALL;
}

/* Whether any destination may take a call: else a scan is pointless. An
 * event with no destination (unrouted) waits for the next scan with room,
 * or for the poll: settling it is not urgent. */
static int
any_slot(const struct relay_scheduler *s)
{
	const struct relay_sched_dest *sd;

	LIST_FOREACH(sd, &s->dests, link)
		if (has_slot(sd))
			return 1;
	return LIST_EMPTY(&s->dests);
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
	struct relay_job *j;
	int64_t wait = 0;
	int rc;

	if (seen->id == id && seen->sd && !has_slot(seen->sd))
		return;
	if (!(j = calloc(1, sizeof(*j))))
		return;
	if ((rc = relay_store_get_event(s->store, NULL, id, &j->ev)) != 0) {
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
	if (j->sd && !room(j->sd, mono_ms, &wait)) {
		if (wait > 0 && wait < *next_ms)
			*next_ms = wait;
		seen->id = id;
		seen->sd = j->sd;
		goto leave;
	}
	LIST_INSERT_HEAD(&s->jobs, j, link);
	s->n_jobs++;
	if (j->sd) {
		j->sd->jobs++;
		j->sd->calls++;
		j->calling = 1;
		s->n_calls++;
	}
	s->start(s->arg, j);
	return;
leave:
	job_free(j);
}

int64_t
relay_scheduler_dispatch(struct relay_scheduler *s, int64_t now_ms, int64_t mono_ms)
{
	struct relay_due due[SCAN_BATCH], after;
	int64_t next_ms = POLL_MS, nd;
	int have_after = 0, paused = 0;

	relay_store_get_paused(s->store, NULL, NULL, &paused);
	if (paused)
		return POLL_MS;
	for (int batch = 0; batch < SCAN_MAX_BATCHES; batch++) {
		size_t n = 0;

		if (relay_store_scan_due(s->store, now_ms, have_after ? &after : NULL, due, SCAN_BATCH,
		                         &n))
			break;
		for (size_t i = 0; i < n && any_slot(s); i++)
			if (!in_flight(s, due[i].id) && !is_bad(s, due[i].id))
				consider(s, due[i].id, mono_ms, &next_ms);
		if (n < SCAN_BATCH || !any_slot(s))
			break;
		after = due[n - 1];
		have_after = 1;
	}
	if (relay_store_next_due(s->store, &nd) == 0 && nd > now_ms && nd - now_ms < next_ms)
		next_ms = nd - now_ms;
	return next_ms;
}
