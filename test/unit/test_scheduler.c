/*
 * Unit tests for lib/scheduler.c on a real store in a temporary directory:
 * due order, one event per lane, each destination's call slots, rate and
 * circuit, events with no destination, and that a backlog for a destination
 * without room is not read again at every scan.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "odoo_relay/record.h"
#include "odoo_relay/scheduler.h"
#include "odoo_relay/store.h"

#define MAP (16u << 20)
#define MAX_STARTED 256

struct world {
	struct relay_store *st;
	struct relay_scheduler *s;
	struct relay_sched_dest a, b;
	struct relay_job *started[MAX_STARTED];
	size_t n_started;
	unsigned resolved;
	unsigned n_calls_started;
	int skip_topic_x;
	unsigned batch_max;          /* for topic "a" */
	int64_t batch_wait_ms;
};

static enum relay_sched_verdict
resolve(void *arg, struct relay_job *j)
{
	struct world *w = arg;

	w->resolved++;
	if (w->skip_topic_x && j->ev.topic && strcmp(j->ev.topic, "x") == 0)
		return RELAY_SCHED_SKIP;
	if (j->ev.topic && strcmp(j->ev.topic, "a") == 0) {
		j->sd = &w->a;
		j->batch_max = w->batch_max;
		j->batch_wait_ms = w->batch_wait_ms;
		j->route = strdup("ra");
	}
	else if (j->ev.topic && strcmp(j->ev.topic, "b") == 0)
		j->sd = &w->b;
	return RELAY_SCHED_START; /* others: no destination */
}

static void
start(void *arg, struct relay_job **jobs, size_t n)
{
	struct world *w = arg;

	w->n_calls_started++;
	for (size_t i = 0; i < n; i++)
		if (w->n_started < MAX_STARTED)
			w->started[w->n_started++] = jobs[i];
}

static uint64_t
put(struct world *w, const char *topic, const char *lane, int64_t now)
{
	static int n;
	char key[32];
	struct relay_event ev;
	uint64_t id = 0;
	int dup = 0;

	memset(&ev, 0, sizeof(ev));
	snprintf(key, sizeof key, "k%d", ++n);
	ev.source = "s";
	ev.topic = (char *)topic;
	ev.lane = (char *)lane;
	ev.dedup_key = key;
	ev.body = (unsigned char *)"{}";
	ev.body_len = 2;
	CHECK_INT(relay_store_ingest(w->st, NULL, &ev, 1000, now, &id, &dup), 0);
	return id;
}

static void
end_all(struct world *w)
{
	for (size_t i = 0; i < w->n_started; i++)
		relay_scheduler_job_done(w->s, w->started[i]);
	w->n_started = 0;
}

static void
setup(struct world *w, char *dir)
{
	memset(w, 0, sizeof(*w));
	CHECK(mkdtemp(dir) != NULL);
	CHECK_INT(relay_store_open(dir, MAP, RELAY_STORE_CREATE, &w->st), 0);
	CHECK_INT(relay_scheduler_new(w->st, resolve, start, w, &w->s), 0);
	w->a.max_calls = w->a.slots = 2;
	w->b.max_calls = w->b.slots = 2;
	relay_scheduler_attach(w->s, &w->a);
	relay_scheduler_attach(w->s, &w->b);
}

static void
teardown(struct world *w, const char *dir)
{
	char cmd[256];

	end_all(w);
	relay_scheduler_free(w->s);
	relay_store_close(w->st);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	CHECK_INT(system(cmd), 0);
}

static void
test_limits_and_lanes(void)
{
	char dir[] = "/tmp/relay-sched-XXXXXX";
	struct world w;

	setup(&w, dir);
	uint64_t a1 = put(&w, "a", "L1", 1000);
	put(&w, "a", "L1", 1001); /* behind a1 in its lane: not due */
	uint64_t a3 = put(&w, "a", "L2", 1002);
	put(&w, "a", "L3", 1003); /* a's two slots are taken by then */
	uint64_t b1 = put(&w, "b", NULL, 1004);
	uint64_t n1 = put(&w, "none", NULL, 1005);

	relay_scheduler_dispatch(w.s, NULL, 2000, 10);
	CHECK_INT(w.n_started, 4);
	CHECK_INT(w.started[0]->ev.id, a1);
	CHECK_INT(w.started[1]->ev.id, a3);
	CHECK_INT(w.started[2]->ev.id, b1);
	CHECK_INT(w.started[3]->ev.id, n1);
	CHECK(w.started[3]->sd == NULL && !w.started[3]->calling);
	CHECK_INT(w.a.calls, 2);
	CHECK_INT(w.b.calls, 1);
	CHECK_INT(relay_scheduler_calls(w.s), 3);
	CHECK_INT(relay_scheduler_jobs(w.s), 4);
	/* nothing is started twice */
	relay_scheduler_dispatch(w.s, NULL, 2000, 20);
	CHECK_INT(w.n_started, 4);
	/* a call back frees a slot while its outcome is written */
	relay_scheduler_call_done(w.s, w.started[0]);
	relay_scheduler_call_done(w.s, w.started[0]);
	CHECK_INT(w.a.calls, 1);
	CHECK_INT(w.a.jobs, 2);
	relay_scheduler_dispatch(w.s, NULL, 2000, 30);
	CHECK_INT(w.n_started, 5);
	CHECK_STR(w.started[4]->ev.lane, "L3");
	teardown(&w, dir);
}

/* A destination without room: its events are read once, not at every scan. */
static void
test_no_room_is_remembered(void)
{
	char dir[] = "/tmp/relay-sched-XXXXXX";
	struct world w;

	setup(&w, dir);
	w.a.slots = 0; /* its circuit is open */
	for (int i = 0; i < 50; i++)
		put(&w, "a", NULL, 1000 + i);
	put(&w, "b", NULL, 2000);
	relay_scheduler_dispatch(w.s, NULL, 3000, 10);
	CHECK_INT(w.n_started, 1);
	CHECK_INT(w.resolved, 51);
	relay_scheduler_dispatch(w.s, NULL, 3000, 20);
	relay_scheduler_dispatch(w.s, NULL, 3000, 30);
	CHECK_INT(w.resolved, 51); /* a's backlog was not read again */
	/* room again: they go */
	w.a.slots = 2;
	relay_scheduler_dispatch(w.s, NULL, 3000, 40);
	CHECK_INT(w.n_started, 3);
	/* every destination full: no scan at all */
	w.b.slots = 0;
	w.a.slots = 0;
	unsigned before = w.resolved;
	relay_scheduler_dispatch(w.s, NULL, 3000, 50);
	CHECK_INT(w.resolved, before);
	teardown(&w, dir);
}

static void
test_rate_and_skip(void)
{
	char dir[] = "/tmp/relay-sched-XXXXXX";
	struct world w;
	int64_t next;

	setup(&w, dir);
	w.a.max_calls = w.a.slots = 10;
	w.a.rate_per_s = 2; /* a burst of 2, then one each 500 ms */
	for (int i = 0; i < 5; i++)
		put(&w, "a", NULL, 1000 + i);
	next = relay_scheduler_dispatch(w.s, NULL, 3000, 1000);
	CHECK_INT(w.n_started, 2);
	CHECK(next > 0 && next <= 501);
	relay_scheduler_dispatch(w.s, NULL, 3000, 1250);
	CHECK_INT(w.n_started, 2);
	relay_scheduler_dispatch(w.s, NULL, 3000, 1501);
	CHECK_INT(w.n_started, 3);
	end_all(&w);
	/* a skipped event (its route paused) stays queued and is asked again */
	w.skip_topic_x = 1;
	put(&w, "x", NULL, 2000);
	unsigned before = w.resolved;
	relay_scheduler_dispatch(w.s, NULL, 3000, 5000);
	relay_scheduler_dispatch(w.s, NULL, 3000, 5001);
	CHECK(w.resolved >= before + 2);
	w.skip_topic_x = 0;
	relay_scheduler_dispatch(w.s, NULL, 3000, 9000);
	CHECK(w.n_started >= 1);
	CHECK_STR(w.started[w.n_started - 1]->ev.topic, "x");
	/* a paused store starts nothing */
	end_all(&w);
	CHECK_INT(relay_store_set_paused(w.st, NULL, NULL, 1), 0);
	put(&w, "b", NULL, 2500);
	relay_scheduler_dispatch(w.s, NULL, 3000, 9500);
	CHECK_INT(w.n_started, 0);
	CHECK_INT(relay_store_set_paused(w.st, NULL, NULL, 0), 0);
	teardown(&w, dir);
}

/* Due lane heads of one route gather into one call that takes one slot, in
 * due order, never two of one lane; a call that is not full waits for its
 * deadline; the slot is free when the last job of the call is back. */
/* A pass reads the due index in batches that grow (8, 16, 32, 64, ...):
 * with room for them all, every due event starts in one pass, each once,
 * in due order, across the batches' edges. */
static void
test_growing_batches(void)
{
	char dir[] = "/tmp/relay-sched-XXXXXX";
	struct world w;
	uint64_t ids[200];
	char lane[16];

	setup(&w, dir);
	w.a.max_calls = w.a.slots = 200;
	for (size_t i = 0; i < 200; i++) {
		snprintf(lane, sizeof lane, "L%zu", i);
		ids[i] = put(&w, "a", lane, 1000 + (int64_t)i);
	}
	relay_scheduler_dispatch(w.s, NULL, 5000, 10);
	CHECK_INT(w.n_started, 200);
	for (size_t i = 0; i < w.n_started && i < 200; i++)
		CHECK_INT(w.started[i]->ev.id, ids[i]);
	CHECK_INT(w.a.calls, 200);
	/* nothing left to start: a second pass starts nothing */
	relay_scheduler_dispatch(w.s, NULL, 5000, 20);
	CHECK_INT(w.n_started, 200);
	teardown(&w, dir);
}

static void
test_batches(void)
{
	char dir[] = "/tmp/relay-sched-XXXXXX";
	struct world w;
	uint64_t ids[7];

	setup(&w, dir);
	w.a.max_calls = w.a.slots = 1;
	w.a.max_batch = 3;
	w.batch_max = 3;
	w.batch_wait_ms = 0;
	ids[0] = put(&w, "a", "L1", 1000);
	ids[1] = put(&w, "a", "L2", 1001);
	put(&w, "a", "L1", 1002);          /* behind ids[0] in its lane */
	ids[2] = put(&w, "a", "L3", 1003);
	ids[3] = put(&w, "a", "L4", 1004);
	ids[4] = put(&w, "a", NULL, 1005);
	relay_scheduler_dispatch(w.s, NULL, 2000, 10);
	/* one call of three in due order; the rest waits for the slot */
	CHECK_INT(w.n_calls_started, 1);
	CHECK_INT(w.n_started, 3);
	CHECK(w.started[0]->ev.id == ids[0] && w.started[1]->ev.id == ids[1] &&
	      w.started[2]->ev.id == ids[2]);
	CHECK_INT(w.a.calls, 1);
	CHECK_INT(relay_scheduler_calls(w.s), 1);
	CHECK_INT(relay_scheduler_jobs(w.s), 3);
	relay_scheduler_dispatch(w.s, NULL, 2000, 20);
	CHECK_INT(w.n_calls_started, 1);
	/* two back: the slot is still held; the third frees it */
	relay_scheduler_call_done(w.s, w.started[0]);
	relay_scheduler_call_done(w.s, w.started[2]);
	CHECK_INT(w.a.calls, 1);
	relay_scheduler_dispatch(w.s, NULL, 2000, 30);
	CHECK_INT(w.n_calls_started, 1);
	relay_scheduler_call_done(w.s, w.started[1]);
	relay_scheduler_call_done(w.s, w.started[1]);
	CHECK_INT(w.a.calls, 0);
	CHECK_INT(relay_scheduler_calls(w.s), 0);
	/* finishing ids[0] makes its lane's second event due */
	for (int i = 0; i < 3; i++)
		CHECK_INT(relay_store_complete(w.st, NULL, ids[i], 2000), 0);
	end_all(&w);
	w.n_calls_started = 0;
	relay_scheduler_dispatch(w.s, NULL, 2000, 40);
	CHECK_INT(w.n_calls_started, 1);
	CHECK_INT(w.n_started, 3); /* ids[3], ids[4] and L1's second, in due order */
	CHECK(w.started[0]->ev.id == ids[3] && w.started[1]->ev.id == ids[4]);
	for (size_t i = 0; i < w.n_started; i++)
		for (size_t k = i + 1; k < w.n_started; k++)
			CHECK(!w.started[i]->ev.lane || !w.started[k]->ev.lane ||
			      strcmp(w.started[i]->ev.lane, w.started[k]->ev.lane) != 0);
	for (size_t i = 0; i < w.n_started; i++) {
		relay_scheduler_call_done(w.s, w.started[i]);
		CHECK_INT(relay_store_complete(w.st, NULL, w.started[i]->ev.id, 2000), 0);
	}
	end_all(&w);

	/* a call that is not full waits until its deadline, gathering more */
	w.batch_wait_ms = 5;
	w.n_calls_started = 0;
	relay_scheduler_dispatch(w.s, NULL, 2000, 100);
	CHECK_INT(w.n_calls_started, 0); /* nothing due left but the gathered ones */
	ids[5] = put(&w, "a", "L9", 1900);
	int64_t next = relay_scheduler_dispatch(w.s, NULL, 2000, 100);
	CHECK_INT(w.n_calls_started, 0);
	CHECK(next <= 5);
	ids[6] = put(&w, "a", "L10", 1901);
	relay_scheduler_dispatch(w.s, NULL, 2000, 103);
	CHECK_INT(w.n_calls_started, 0);
	CHECK_INT(w.a.calls, 1); /* the gathering call holds the slot */
	relay_scheduler_dispatch(w.s, NULL, 2000, 105);
	CHECK_INT(w.n_calls_started, 1);
	CHECK_INT(w.n_started, 2);
	CHECK(w.started[0]->ev.id == ids[5] && w.started[1]->ev.id == ids[6]);
	/* a job of a gathering call freed with the scheduler: no leak */
	for (size_t i = 0; i < w.n_started; i++)
		relay_scheduler_call_done(w.s, w.started[i]);
	end_all(&w);
	CHECK_INT(relay_store_complete(w.st, NULL, ids[5], 2000), 0);
	CHECK_INT(relay_store_complete(w.st, NULL, ids[6], 2000), 0);
	put(&w, "a", "L11", 1950);
	relay_scheduler_dispatch(w.s, NULL, 2000, 200);
	CHECK_INT(w.a.gathering, 1);
	teardown(&w, dir);
}

/* A pass starts after the run of entries in flight at the front of the due
 * index; an entry written into that run since is found by the next pass
 * from the front, at most FULL_SCAN_MS (50 ms) later. */
static void
test_skip_in_flight_run(void)
{
	char dir[] = "/tmp/relay-sched-XXXXXX";
	struct world w;

	setup(&w, dir);
	uint64_t e1 = put(&w, "a", NULL, 1000);
	uint64_t e2 = put(&w, "a", NULL, 1001);
	relay_scheduler_dispatch(w.s, NULL, 5000, 10); /* from the front */
	CHECK_INT(w.n_started, 2);
	CHECK(w.n_started == 2 && w.started[0]->ev.id == e1 && w.started[1]->ev.id == e2);
	uint64_t e3 = put(&w, "b", NULL, 1002);
	relay_scheduler_dispatch(w.s, NULL, 5000, 20); /* after e2 */
	CHECK(w.n_started == 3 && w.started[2]->ev.id == e3);
	/* stamped before the run's end (a commit's clock behind the pass's) */
	uint64_t e0 = put(&w, "b", NULL, 999);
	unsigned resolved = w.resolved;
	int64_t next = relay_scheduler_dispatch(w.s, NULL, 5000, 30); /* after e3: e0 not read */
	CHECK_INT(w.n_started, 3);
	CHECK(next >= 1 && next <= 30); /* asks again by the next pass from the front */
	CHECK_INT(w.resolved, resolved);
	relay_scheduler_dispatch(w.s, NULL, 5000, 60); /* 50 ms after the last from the front */
	CHECK(w.n_started == 4 && w.started[3]->ev.id == e0);
	/* a reload forgets the run: the next pass reads from the front */
	uint64_t e00 = put(&w, "b", NULL, 998);
	relay_scheduler_forget(w.s);
	w.b.slots = w.b.max_calls = 3;
	relay_scheduler_dispatch(w.s, NULL, 5000, 61);
	CHECK(w.n_started == 5 && w.started[4]->ev.id == e00);
	teardown(&w, dir);
}

int
main(void)
{
	RUN(test_limits_and_lanes);
	RUN(test_no_room_is_remembered);
	RUN(test_rate_and_skip);
	RUN(test_batches);
	RUN(test_growing_batches);
	RUN(test_skip_in_flight_run);
	return check_done();
}
