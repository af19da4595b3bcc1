/*
 * Unit tests for lib/writer.c: the group-commit thread. Ordering between
 * threads is forced with a "gate" operation that holds the writer inside a
 * group until the test lets it go, never with sleeps.
 */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <lmdb.h>

#include "check.h"
#include "odoo_relay/error.h"
#include "odoo_relay/history.h"
#include "odoo_relay/store.h"
#include "odoo_relay/writer.h"

#define MAP (64u << 20)
#define GUARD_S 120 /* only against a hang: no test waits for time to pass */

static char base_dir[256];
static struct event_base *base;
static pthread_t loop_thread;
static int done_count, done_target;

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static struct relay_store *
store_new(const char *name, size_t map)
{
	char dir[512];
	struct relay_store *st = NULL;
	int rc;

	snprintf(dir, sizeof(dir), "%s/%s", base_dir, name);
	if ((rc = relay_store_open(dir, map, RELAY_STORE_CREATE, &st)))
		fprintf(stderr, "open %s: %s\n", dir, relay_strerror(rc));
	return st;
}

static struct relay_event *
ev_new(const char *lane, const char *dkey)
{
	struct relay_event *ev = calloc(1, sizeof(*ev));

	ev->source = strdup("src");
	ev->topic = strdup("t");
	ev->lane = lane ? strdup(lane) : NULL;
	ev->dedup_key = dkey ? strdup(dkey) : NULL;
	ev->body = (unsigned char *)strdup("{}");
	ev->body_len = 2;
	return ev;
}

/* ---- completions ---- */

struct res {
	int called;
	int rc;
	uint64_t id;
	int dup;
	int on_loop; /* called on the loop thread */
};

static void
count_done(void)
{
	if (++done_count >= done_target)
		event_base_loopbreak(base);
}

static void
res_cb(void *arg, int rc, const struct relay_write_result *r)
{
	struct res *x = arg;

	x->called++;
	x->rc = rc;
	x->id = r->id;
	x->dup = r->duplicate;
	x->on_loop = pthread_equal(pthread_self(), loop_thread);
	count_done();
}

static void
guard_cb(evutil_socket_t fd, short what, void *arg)
{
	fprintf(stderr, "guard: loop still waiting after %d s\n", GUARD_S);
	event_base_loopbreak(base);
}

/* Runs the loop until `target` completions (counted from 0 by the caller). */
static void
run_until(int target)
{
	struct timeval tv = { GUARD_S, 0 };
	struct event *guard;

	done_target = target;
	if (done_count >= target)
		return;
	guard = evtimer_new(base, guard_cb, NULL);
	evtimer_add(guard, &tv);
	event_base_dispatch(base);
	event_free(guard);
}

/* ---- the gate: a writer op that waits for the test ---- */

struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int entered, released;
};

static void
gate_init(struct gate *g)
{
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	g->entered = g->released = 0;
}

static int
gate_fn(void *arg, struct relay_store *st, MDB_txn *txn, struct relay_write_result *r)
{
	struct gate *g = arg;

	pthread_mutex_lock(&g->mu);
	g->entered = 1;
	pthread_cond_broadcast(&g->cv);
	while (!g->released)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
	r->id = 4242;
	return 0;
}

/* Waits until the writer thread is inside gate_fn, i.e. holding a group. */
static int
gate_wait_entered(struct gate *g)
{
	struct timespec until;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += GUARD_S;
	pthread_mutex_lock(&g->mu);
	while (!g->entered && rc == 0)
		rc = pthread_cond_timedwait(&g->cv, &g->mu, &until);
	pthread_mutex_unlock(&g->mu);
	return g->entered;
}

static void
gate_release(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->released = 1;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

/* ---- tests ---- */

#define N_HALF 500

struct submitter {
	struct relay_writer *w;
	struct res *res;
	int failed;
};

static void *
submit_half(void *arg)
{
	struct submitter *s = arg;
	char key[32];

	for (int i = 0; i < N_HALF; i++) {
		snprintf(key, sizeof(key), "thread-%d", i);
		if (relay_writer_ingest(s->w, ev_new(i % 3 ? "lane" : NULL, key), 60000, 1000,
		                        res_cb, &s->res[i]))
			s->failed++;
	}
	return NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
test_many_ingests(void)
{
	static struct res res[2 * N_HALF];
	static uint64_t ids[2 * N_HALF];
	struct relay_store *st = store_new("many", MAP);
	struct relay_writer *w = NULL;
	struct relay_store_stats s;
	struct submitter sub;
	pthread_t th;
	uint64_t commits = 0, ops = 0;
	int bad = 0, off_loop = 0, distinct = 1, failed = 0;
	char key[32];

	if (!st)
		return;
	memset(res, 0, sizeof(res));
	done_count = 0;
	CHECK_INT(relay_writer_start(st, base, &w), 0);
	if (!w)
		return;
	sub.w = w;
	sub.res = res + N_HALF;
	sub.failed = 0;
	CHECK_INT(pthread_create(&th, NULL, submit_half, &sub), 0);
	for (int i = 0; i < N_HALF; i++) {
		snprintf(key, sizeof(key), "loop-%d", i);
		if (relay_writer_ingest(w, ev_new(i % 2 ? "lane" : NULL, key), 60000, 1000, res_cb,
		                        &res[i]))
			failed++;
	}
	pthread_join(th, NULL);
	CHECK_INT(failed, 0);
	CHECK_INT(sub.failed, 0);
	run_until(2 * N_HALF);
	CHECK_INT(done_count, 2 * N_HALF);

	for (int i = 0; i < 2 * N_HALF; i++) {
		if (res[i].called != 1 || res[i].rc != 0 || res[i].dup || res[i].id == 0)
			bad++;
		if (!res[i].on_loop)
			off_loop++;
		ids[i] = res[i].id;
	}
	CHECK_INT(bad, 0);
	CHECK_INT(off_loop, 0);
	qsort(ids, 2 * N_HALF, sizeof(ids[0]), cmp_u64);
	for (int i = 1; i < 2 * N_HALF; i++)
		if (ids[i] == ids[i - 1])
			distinct = 0;
	CHECK(distinct);
	CHECK(ids[0] == 1 && ids[2 * N_HALF - 1] == 2 * N_HALF);
	relay_writer_stats(w, &commits, &ops);
	CHECK_INT(ops, 2 * N_HALF);
	CHECK(commits >= 1 && commits <= ops);
	relay_writer_stop(w);

	CHECK_INT(relay_store_stats(st, 0, &s), 0);
	CHECK_INT(s.events, 2 * N_HALF);
	CHECK_INT(s.dedup, 2 * N_HALF);
	relay_store_close(st);
}

/* Everything submitted while the writer is held in one group goes into the
 * next one: two commits for 1001 operations, in submission order. */
static void
test_grouping(void)
{
	static struct res res[1000];
	struct relay_store *st = store_new("group", MAP);
	struct relay_writer *w = NULL;
	struct res gate_res = { 0 }, dup_res = { 0 };
	struct gate g;
	uint64_t commits = 0, ops = 0;
	int in_order = 1;
	char key[32];

	if (!st)
		return;
	memset(res, 0, sizeof(res));
	done_count = 0;
	gate_init(&g);
	CHECK_INT(relay_writer_start(st, base, &w), 0);
	if (!w)
		return;
	CHECK_INT(relay_writer_call(w, gate_fn, &g, res_cb, &gate_res), 0);
	CHECK(gate_wait_entered(&g));
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		relay_writer_ingest(w, ev_new(NULL, key), 60000, 1000, res_cb, &res[i]);
	}
	/* A duplicate of an event of the same group: seen, thanks to the
	 * nested transactions reading their parent's writes. */
	relay_writer_ingest(w, ev_new(NULL, "k7"), 60000, 1000, res_cb, &dup_res);
	gate_release(&g);
	run_until(1002);

	CHECK_INT(gate_res.rc, 0);
	CHECK_INT(gate_res.id, 4242);
	for (int i = 0; i < 1000; i++)
		if (res[i].rc != 0 || res[i].id != (uint64_t)i + 1)
			in_order = 0;
	CHECK(in_order);
	CHECK_INT(dup_res.rc, 0);
	CHECK_INT(dup_res.dup, 1);
	CHECK_INT(dup_res.id, 8);
	relay_writer_stats(w, &commits, &ops);
	CHECK_INT(commits, 2);
	CHECK_INT(ops, 1002);
	CHECK(commits < ops);
	relay_writer_stop(w);
	relay_store_close(st);
}

struct fault {
	pthread_mutex_t mu;
	int ingest_calls;
	int fail_commit; /* the number of the top-level commit to fail, 0: none */
	int commits;
};

/* The stale guard's completion: the event ends and its version is kept in
 * one transaction; when the version cannot be written, neither is. */
static int
version_fault(void *arg, const char *op)
{
	return strcmp(op, "version") == 0 ? MDB_MAP_FULL : 0;
}

static void
test_complete_version(void)
{
	struct res r[4];
	struct relay_store *st = store_new("complete-version", MAP);
	struct relay_writer *w = NULL;
	struct relay_version_entry e = { .kind = 1, .version = 77, .applied_ms = 300,
	                                 .expiry_ms = 9000 }, got;
	struct relay_event ev;

	if (!st)
		return;
	memset(r, 0, sizeof(r));
	done_count = 0;
	CHECK_INT(relay_writer_start(st, base, &w), 0);
	if (!w)
		return;
	relay_writer_ingest(w, ev_new("L", "a"), 60000, 100, res_cb, &r[0]);
	relay_writer_ingest(w, ev_new("L", "b"), 60000, 100, res_cb, &r[1]);
	run_until(2);
	CHECK_INT(relay_writer_complete_version(w, 1, 300, "route", "c_1", &e, res_cb, &r[2]), 0);
	run_until(3);
	CHECK_INT(r[2].rc, 0);
	CHECK_INT(r[2].id, 1);
	CHECK_INT(relay_store_get_event(st, NULL, 1, &ev), -RELAY_ENOTFOUND);
	CHECK_INT(relay_store_version_get(st, NULL, "route", "c_1", &got), 0);
	CHECK_INT(got.version, 77);
	CHECK_INT(got.expiry_ms, 9000);

	relay_store_set_fault(st, version_fault, NULL);
	e.version = 78;
	CHECK_INT(relay_writer_complete_version(w, 2, 400, "route", "c_1", &e, res_cb, &r[3]), 0);
	run_until(4);
	CHECK_INT(r[3].rc, -RELAY_EFULL);
	CHECK_INT(relay_store_get_event(st, NULL, 2, &ev), 0); /* still queued */
	relay_event_clear(&ev);
	CHECK_INT(relay_store_version_get(st, NULL, "route", "c_1", &got), 0);
	CHECK_INT(got.version, 77);
	CHECK_INT(relay_writer_complete_version(w, 2, 400, NULL, "c_1", &e, res_cb, &r[3]),
	          -RELAY_EINVAL);
	relay_writer_stop(w);
	relay_store_set_fault(st, NULL, NULL);
	relay_store_close(st);
}

static int
fault_hook(void *arg, const char *op)
{
	struct fault *f = arg;
	int rc = 0;

	pthread_mutex_lock(&f->mu);
	/* The group below runs flat first (ingest calls 1-3: the third
	 * fails, which aborts it), then again op by op in nested transactions
	 * (calls 4-13), where calls 6 and 10 fail: its ingests 2 and 6. */
	if (strcmp(op, "ingest") == 0) {
		f->ingest_calls++;
		if (f->ingest_calls == 3 || f->ingest_calls == 6 || f->ingest_calls == 10)
			rc = MDB_MAP_FULL;
	}
	/* Nested commits do not consult the hook: only the group's does. */
	if (strcmp(op, "commit") == 0 && ++f->commits == f->fail_commit)
		rc = EIO;
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* Writes an event, then fails: its write must not survive. */
static int
write_then_fail(void *arg, struct relay_store *st, MDB_txn *txn, struct relay_write_result *r)
{
	struct relay_event *ev = ev_new(NULL, "rolled-back");
	int rc = relay_store_ingest(st, txn, ev, 60000, 1000, &r->id, &r->duplicate);

	relay_event_clear(ev);
	free(ev);
	return rc ? rc : EPROTO;
}

/* Asks LMDB itself for more than the map has: a real MDB_MAP_FULL inside
 * a nested transaction. */
static int
overfill(void *arg, struct relay_store *st, MDB_txn *txn, struct relay_write_result *r)
{
	MDB_dbi dbi;
	MDB_val k = { 3, "big" }, v = { (size_t)arg, NULL };
	int rc;

	if ((rc = mdb_dbi_open(txn, "meta", 0, &dbi)))
		return rc;
	rc = mdb_put(txn, dbi, &k, &v, MDB_RESERVE);
	return rc == MDB_MAP_FULL ? -RELAY_EFULL : rc;
}

static void
test_faults(void)
{
	struct res res[10], extra[4], gate_res = { 0 };
	struct relay_store *st = store_new("fault", 2u << 20);
	struct relay_writer *w = NULL;
	struct relay_store_stats s;
	struct relay_event ev;
	struct fault f;
	struct gate g;
	int bad = 0;

	if (!st)
		return;
	memset(res, 0, sizeof(res));
	memset(extra, 0, sizeof(extra));
	memset(&f, 0, sizeof(f));
	pthread_mutex_init(&f.mu, NULL);
	relay_store_set_fault(st, fault_hook, &f);
	done_count = 0;
	gate_init(&g);
	CHECK_INT(relay_writer_start(st, base, &w), 0);
	if (!w)
		return;

	/* Group 2: ten ingests (two fail), an op that writes and fails, one
	 * that hits a real map-full, one after them. Held together by the
	 * gate in group 1. */
	relay_writer_call(w, gate_fn, &g, res_cb, &gate_res);
	CHECK(gate_wait_entered(&g));
	for (int i = 0; i < 10; i++)
		relay_writer_ingest(w, ev_new(i < 5 ? "L" : NULL, NULL), 0, 1000, res_cb, &res[i]);
	relay_writer_call(w, write_then_fail, NULL, res_cb, &extra[0]);
	relay_writer_call(w, overfill, (void *)(size_t)(4u << 20), res_cb, &extra[1]);
	relay_writer_ingest(w, ev_new(NULL, NULL), 0, 1000, res_cb, &extra[2]);
	gate_release(&g);
	run_until(14);

	for (int i = 0; i < 10; i++) {
		int want = (i == 2 || i == 6) ? -RELAY_EFULL : 0;

		if (res[i].called != 1 || res[i].rc != want || (want == 0) != (res[i].id != 0))
			bad++;
	}
	CHECK_INT(bad, 0);
	CHECK_INT(res[2].rc, -RELAY_EFULL);
	CHECK_INT(extra[0].rc, EPROTO);
	CHECK_INT(extra[1].rc, -RELAY_EFULL);
	CHECK_INT(extra[2].rc, 0);
	CHECK_INT(relay_store_stats(st, 0, &s), 0);
	CHECK_INT(s.events, 9); /* 8 + the last; not the rolled-back one */
	CHECK_INT(relay_store_get_event(st, NULL, extra[2].id, &ev), 0);
	relay_event_clear(&ev);
	CHECK_INT(extra[2].id, 9);

	/* A failing commit fails exactly the ops of its group. */
	pthread_mutex_lock(&f.mu);
	f.fail_commit = f.commits + 2;
	pthread_mutex_unlock(&f.mu);
	gate_init(&g);
	done_count = 0;
	relay_writer_call(w, gate_fn, &g, res_cb, &gate_res);
	CHECK(gate_wait_entered(&g));
	memset(res, 0, sizeof(res));
	relay_writer_complete(w, 1, 2000, res_cb, &res[0]);
	relay_writer_ingest(w, ev_new(NULL, NULL), 0, 2000, res_cb, &res[1]);
	relay_writer_ingest(w, ev_new(NULL, NULL), 0, 2000, res_cb, &res[2]);
	gate_release(&g);
	run_until(4);
	CHECK_INT(gate_res.rc, 0);
	CHECK_INT(res[0].rc, EIO);
	CHECK_INT(res[0].id, 1);
	CHECK_INT(res[1].rc, EIO);
	CHECK_INT(res[1].id, 0);
	CHECK_INT(res[2].rc, EIO);
	CHECK_INT(relay_store_get_event(st, NULL, 1, &ev), 0); /* not completed */
	relay_event_clear(&ev);
	CHECK_INT(relay_store_stats(st, 0, &s), 0);
	CHECK_INT(s.events, 9);

	/* And then it works again. */
	done_count = 0;
	memset(res, 0, sizeof(res));
	relay_writer_complete(w, 1, 3000, res_cb, &res[0]);
	relay_writer_ingest(w, ev_new(NULL, NULL), 0, 3000, res_cb, &res[1]);
	relay_writer_complete(w, 424242, 3000, res_cb, &res[2]);
	run_until(3);
	CHECK_INT(res[0].rc, 0);
	CHECK_INT(res[1].rc, 0);
	CHECK_INT(res[1].id, 10);
	CHECK_INT(res[2].rc, -RELAY_ENOTFOUND);
	relay_writer_stop(w);
	relay_store_set_fault(st, NULL, NULL);
	relay_store_close(st);
}

/* Delivery outcomes wait a moment for company before their commit (see
 * writer.c, GATHER_MS): they still commit with nothing else coming, an
 * ingest joins their group, and a stop does not leave them behind. */
static void
test_outcomes_alone(void)
{
	struct res r[8];
	struct relay_store *st = store_new("alone", MAP);
	struct relay_writer *w = NULL;
	struct relay_event ev;
	struct gate g;
	struct res gate_res = { 0 };
	uint64_t c0, c1, o0, o1;
	int i;

	if (!st)
		return;
	memset(r, 0, sizeof(r));
	done_count = 0;
	CHECK_INT(relay_writer_start(st, base, &w), 0);
	if (!w)
		return;
	for (i = 0; i < 4; i++)
		relay_writer_ingest(w, ev_new(NULL, NULL), 0, 100, res_cb, &r[i]);
	run_until(4);

	/* One outcome and then nothing: it commits on its own. */
	done_count = 0;
	relay_writer_complete(w, 1, 200, res_cb, &r[4]);
	run_until(1);
	CHECK_INT(r[4].called, 1);
	CHECK_INT(r[4].rc, 0);
	CHECK_INT(relay_store_get_event(st, NULL, 1, &ev), -RELAY_ENOTFOUND);

	/* Outcomes queued behind a busy writer, then an ingest: one group. */
	relay_writer_stats(w, &c0, &o0);
	gate_init(&g);
	done_count = 0;
	relay_writer_call(w, gate_fn, &g, res_cb, &gate_res);
	CHECK(gate_wait_entered(&g));
	relay_writer_complete(w, 2, 300, res_cb, &r[5]);
	relay_writer_complete(w, 3, 300, res_cb, &r[6]);
	relay_writer_ingest(w, ev_new(NULL, NULL), 0, 300, res_cb, &r[7]);
	gate_release(&g);
	run_until(4);
	relay_writer_stats(w, &c1, &o1);
	CHECK_INT(c1 - c0, 2); /* the gate's group, then the other three */
	CHECK_INT(o1 - o0, 4);
	CHECK(r[5].rc == 0 && r[6].rc == 0 && r[7].rc == 0 && r[7].id == 5);

	/* An outcome submitted just before the stop is committed by it. */
	done_count = 0;
	relay_writer_complete(w, 4, 400, res_cb, &r[0]);
	relay_writer_stop(w);
	CHECK_INT(done_count, 1);
	CHECK_INT(r[0].rc, 0);
	CHECK_INT(relay_store_get_event(st, NULL, 4, &ev), -RELAY_ENOTFOUND);
	relay_store_close(st);
}

/* An outcome written by a function (the history's completions): it runs
 * in the group's transaction, its effect is committed, and it waits for
 * company like the other outcomes. */
static int
complete_fn(void *arg, struct relay_store *st, MDB_txn *txn, struct relay_write_result *r)
{
	r->id = (uint64_t)(size_t)arg;
	return relay_store_complete(st, txn, r->id, 500);
}

static void
test_call_outcome(void)
{
	struct res r[2];
	struct relay_store *st = store_new("call_outcome", MAP);
	struct relay_writer *w = NULL;
	struct relay_event ev;

	if (!st)
		return;
	memset(r, 0, sizeof(r));
	done_count = 0;
	CHECK_INT(relay_writer_start(st, base, &w), 0);
	if (!w)
		return;
	relay_writer_ingest(w, ev_new(NULL, NULL), 0, 100, res_cb, &r[0]);
	run_until(1);
	done_count = 0;
	CHECK_INT(relay_writer_call_outcome(w, complete_fn, (void *)(size_t)r[0].id, res_cb, &r[1]),
	          0);
	CHECK_INT(relay_writer_call_outcome(w, NULL, NULL, res_cb, &r[1]), -RELAY_EINVAL);
	run_until(1);
	CHECK_INT(r[1].called, 1);
	CHECK_INT(r[1].rc, 0);
	CHECK_INT(r[1].id, r[0].id);
	CHECK_INT(relay_store_get_event(st, NULL, r[0].id, &ev), -RELAY_ENOTFOUND);
	relay_writer_stop(w);
	relay_store_close(st);
}

/* Reschedule, bury and complete through the writer. */
static void
test_ops(void)
{
	struct res r[6];
	struct relay_store *st = store_new("ops", MAP);
	struct relay_writer *w = NULL;
	struct relay_event *ev, got;
	struct relay_due d[4];
	size_t n = 0;

	if (!st)
		return;
	memset(r, 0, sizeof(r));
	done_count = 0;
	CHECK_INT(relay_writer_start(st, base, &w), 0);
	if (!w)
		return;
	relay_writer_ingest(w, ev_new("L", "a"), 60000, 100, res_cb, &r[0]);
	relay_writer_ingest(w, ev_new("L", "b"), 60000, 100, res_cb, &r[1]);
	relay_writer_ingest(w, ev_new(NULL, "c"), 60000, 100, res_cb, &r[2]);
	run_until(3);
	CHECK(r[0].id == 1 && r[1].id == 2 && r[2].id == 3);

	ev = calloc(1, sizeof(*ev));
	CHECK_INT(relay_store_get_event(st, NULL, 3, ev), 0);
	ev->due_ms = 5000;
	ev->attempts = 1;
	relay_writer_reschedule(w, ev, res_cb, &r[3]);
	ev = calloc(1, sizeof(*ev));
	CHECK_INT(relay_store_get_event(st, NULL, 1, ev), 0);
	ev->dead_reason = strdup("permanent");
	relay_writer_bury(w, ev, RELAY_LANE_HOLD, 200, res_cb, &r[4]);
	relay_writer_complete(w, 2, 300, res_cb, &r[5]);
	run_until(6);
	CHECK_INT(r[3].rc, 0);
	CHECK_INT(r[3].id, 3);
	CHECK_INT(r[4].rc, 0);
	CHECK_INT(r[4].id, 1);
	CHECK_INT(r[5].rc, 0);
	CHECK_INT(relay_store_scan_due(st, NULL, 10000, NULL, d, 4, &n), 0);
	CHECK(n == 1 && d[0].id == 3 && d[0].due_ms == 5000);
	CHECK_INT(relay_store_get_dead(st, NULL, 1, &got), 0);
	CHECK_STR(got.dead_reason, "permanent");
	CHECK_INT(got.dead_ms, 200);
	relay_event_clear(&got);
	relay_writer_stop(w);
	relay_store_close(st);
}

static int
noop_fn(void *arg, struct relay_store *st, MDB_txn *txn, struct relay_write_result *r)
{
	return 0;
}

struct stopper {
	struct relay_writer *w;
};

static void *
stop_thread(void *arg)
{
	struct stopper *s = arg;

	relay_writer_stop(s->w);
	return NULL;
}

/* Stop while work is queued: all of it is committed and called back. */
static void
test_stop(void)
{
	enum { QUEUED = 20, MAX_PROBES = 1000000 };
	static struct res res[QUEUED], probes[MAX_PROBES];
	struct relay_store *st = store_new("stop", MAP);
	struct relay_writer *w = NULL;
	struct relay_store_stats s;
	struct res gate_res = { 0 };
	struct stopper sp;
	struct gate g;
	pthread_t th;
	int accepted = 0, closed = 0, bad = 0, i;

	if (!st)
		return;
	memset(res, 0, sizeof(res));

	/* Without the loop ever running: stop delivers the completions. */
	done_count = 0;
	done_target = 1 << 30;
	CHECK_INT(relay_writer_start(st, base, &w), 0);
	if (!w)
		return;
	for (i = 0; i < 5; i++)
		relay_writer_ingest(w, ev_new(NULL, NULL), 0, 100, res_cb, &res[i]);
	relay_writer_stop(w);
	for (i = 0; i < 5; i++)
		if (res[i].called != 1 || res[i].rc != 0)
			bad++;
	CHECK_INT(bad, 0);
	CHECK_INT(done_count, 5);

	/* Stop while the writer is busy and more is queued; submits race the
	 * stop until one is refused. */
	memset(res, 0, sizeof(res));
	done_count = 0;
	gate_init(&g);
	CHECK_INT(relay_writer_start(st, base, &w), 0);
	if (!w)
		return;
	relay_writer_call(w, gate_fn, &g, res_cb, &gate_res);
	CHECK(gate_wait_entered(&g));
	for (i = 0; i < QUEUED; i++)
		relay_writer_ingest(w, ev_new(NULL, NULL), 0, 100, res_cb, &res[i]);
	sp.w = w;
	CHECK_INT(pthread_create(&th, NULL, stop_thread, &sp), 0);
	for (i = 0; i < MAX_PROBES && !closed; i++) {
		int rc = relay_writer_call(w, noop_fn, NULL, res_cb, &probes[accepted]);

		if (rc == -RELAY_ECLOSED)
			closed = 1;
		else if (rc == 0)
			accepted++;
		else
			break;
		sched_yield();
	}
	CHECK(closed);
	{
		/* Refused submits still take the event and free it. */
		struct relay_event *late = ev_new("x", "y");

		CHECK_INT(relay_writer_ingest(w, late, 0, 100, res_cb, NULL), -RELAY_ECLOSED);
	}
	gate_release(&g);
	pthread_join(th, NULL);

	CHECK_INT(gate_res.called, 1);
	for (i = 0; i < QUEUED; i++)
		if (res[i].called != 1 || res[i].rc != 0 || res[i].id == 0)
			bad++;
	for (i = 0; i < accepted; i++)
		if (probes[i].called != 1 || probes[i].rc != 0)
			bad++;
	CHECK_INT(bad, 0);
	CHECK_INT(done_count, 1 + QUEUED + accepted);
	CHECK_INT(relay_store_stats(st, 0, &s), 0);
	CHECK_INT(s.events, 5 + QUEUED);
	relay_store_close(st);
}

/* ---- the history entry of a completion, in a group run flat ---- */

struct hist_fault {
	pthread_mutex_t mu;
	int calls, fail; /* fail the first `fail` "history" writes */
};

static int
hist_fault_hook(void *arg, const char *op)
{
	struct hist_fault *f = arg;
	int rc = 0;

	if (strcmp(op, "history"))
		return 0;
	pthread_mutex_lock(&f->mu);
	if (++f->calls <= f->fail)
		rc = MDB_MAP_FULL;
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int
complete_into_history(void *arg, struct relay_store *st, MDB_txn *txn,
                      struct relay_write_result *r)
{
	struct relay_hist_settle s = { .outcome = RELAY_HIST_DELIVERED, .destination = "d",
	                               .batch_row = -1, .retention_ms = 60000 };
	r->id = (uint64_t)(uintptr_t)arg;
	return relay_history_complete(st, txn, r->id, &s, 500, NULL);
}

/*
 * A completion's history entry is written straight into the group's
 * transaction; when that write fails, the group runs again op by op and the
 * completion stands without its entry (history.h: the history never fails
 * the store's own work), and the group's other op is kept.
 */
static void
test_history_in_group(void)
{
	struct res r[5];
	struct relay_store *st = store_new("history-group", MAP);
	struct relay_writer *w = NULL;
	struct relay_hist_entry e;
	struct relay_event ev;
	struct hist_fault f = { .fail = 0 };
	struct gate g;
	struct res gate_res = { 0 };

	if (!st)
		return;
	memset(r, 0, sizeof(r));
	pthread_mutex_init(&f.mu, NULL);
	done_count = 0;
	CHECK_INT(relay_writer_start(st, base, &w), 0);
	if (!w)
		return;
	relay_writer_ingest(w, ev_new("A", "a"), 60000, 100, res_cb, &r[0]);
	relay_writer_ingest(w, ev_new("B", "b"), 60000, 100, res_cb, &r[1]);
	run_until(2);
	CHECK_INT(r[0].id, 1);
	CHECK_INT(r[1].id, 2);
	relay_store_set_fault(st, hist_fault_hook, &f);

	/* no failure: the entry is kept, written in the flat group */
	CHECK_INT(relay_writer_call_outcome(w, complete_into_history, (void *)(uintptr_t)1, res_cb,
	                                    &r[2]), 0);
	run_until(3);
	CHECK_INT(r[2].rc, 0);
	CHECK_INT(f.calls, 1);
	CHECK_INT(relay_history_get(st, NULL, 1, &e), 0);
	relay_hist_clear(&e);

	/* the first history write fails: the group (held together by the
	 * gate: the completion and an ingest) runs again nested, and the
	 * completion ends without an entry; the ingest is kept */
	f.fail = 3; /* the call above was the first; fail the next two */
	gate_init(&g);
	relay_writer_call(w, gate_fn, &g, res_cb, &gate_res);
	CHECK(gate_wait_entered(&g));
	CHECK_INT(relay_writer_call_outcome(w, complete_into_history, (void *)(uintptr_t)2, res_cb,
	                                    &r[3]), 0);
	relay_writer_ingest(w, ev_new("C", "c"), 60000, 100, res_cb, &r[4]);
	gate_release(&g);
	run_until(6);
	CHECK_INT(r[3].rc, 0);
	CHECK_INT(r[4].rc, 0);
	CHECK_INT(r[4].id, 3);
	CHECK_INT(f.calls, 3); /* flat (failed), then nested (failed too: no entry) */
	CHECK_INT(relay_store_get_event(st, NULL, 2, &ev), -RELAY_ENOTFOUND);
	CHECK_INT(relay_history_get(st, NULL, 2, &e), -RELAY_ENOTFOUND);
	CHECK_INT(relay_store_get_event(st, NULL, 3, &ev), 0);
	relay_event_clear(&ev);
	relay_writer_stop(w);
	relay_store_set_fault(st, NULL, NULL);
	relay_store_close(st);
}

static void
settled_hook(void *arg)
{
	(void)arg;
	count_done();
}

/* Ingests leave their indexes to a settle: the writer runs it once it has
 * nothing to do, tells the loop, and settles at stop. */
static void
test_settle(void)
{
	struct relay_store *st = store_new("settle", MAP);
	struct relay_writer *w = NULL;
	struct relay_store_stats s;
	struct res r[4];
	int i;

	if (!st)
		return;
	memset(r, 0, sizeof(r));
	done_count = 0;
	CHECK_INT(relay_writer_start(st, base, &w), 0);
	if (!w)
		return;
	for (i = 0; i < 3; i++)
		relay_writer_ingest(w, ev_new("L", NULL), 0, 100, res_cb, &r[i]);
	run_until(3);
	for (i = 0; i < 3; i++)
		CHECK_INT(r[i].rc, 0);
	/* the hook says when: the loop then finds them due */
	done_count = 0;
	relay_writer_set_settled_hook(w, settled_hook, NULL);
	run_until(1);
	CHECK_INT(done_count, 1);
	{
		uint64_t settled = 0, failed = 1;

		relay_writer_settles(w, &settled, &failed);
		CHECK(settled >= 1 && failed == 0);
	}
	CHECK_INT(relay_store_unsettled(st), 0);
	CHECK_INT(relay_store_stats(st, 100, &s), 0);
	CHECK_INT(s.unsettled, 0);
	CHECK_INT(s.events, 3);
	CHECK_INT(s.due, 1); /* the lane's head; the others parked */
	{
		struct relay_due d[4];
		size_t n = 0;

		CHECK_INT(relay_store_scan_due(st, NULL, INT64_MAX, NULL, d, 4, &n), 0);
		CHECK(n == 1 && d[0].id == r[0].id);
	}

	done_count = 0;
	relay_writer_ingest(w, ev_new(NULL, NULL), 0, 200, res_cb, &r[3]);
	run_until(1);
	CHECK_INT(r[3].rc, 0);
	relay_writer_stop(w);
	CHECK_INT(relay_store_stats(st, 200, &s), 0);
	CHECK_INT(s.unsettled, 0);
	CHECK_INT(s.due, 2);
	/* with the writer gone, an ingest of the handle's own is indexed at
	 * once: nobody is left to settle it */
	{
		struct relay_event *ev = ev_new(NULL, NULL);

		CHECK_INT(relay_store_ingest(st, NULL, ev, 0, 300, NULL, NULL), 0);
		relay_event_clear(ev);
		free(ev);
	}
	CHECK_INT(relay_store_unsettled(st), 0);
	CHECK_INT(relay_store_stats(st, 300, &s), 0);
	CHECK_INT(s.unsettled, 0);
	CHECK_INT(s.due, 3);
	relay_store_close(st);
}

static atomic_int settle_fail;

static int
settle_fault(void *arg, const char *op)
{
	(void)arg;
	return strcmp(op, "settle") == 0 && atomic_load(&settle_fail) ? EIO : 0;
}

/* A settle that fails is counted, leaves the events stored, and is tried
 * again until it works. */
static void
test_settle_fails(void)
{
	struct relay_store *st = store_new("settle-fails", MAP);
	struct relay_writer *w = NULL;
	struct res r = { 0 };
	uint64_t settled = 0, failed = 0;
	int i;

	if (!st)
		return;
	atomic_store(&settle_fail, 1);
	relay_store_set_fault(st, settle_fault, NULL);
	done_count = 0;
	CHECK_INT(relay_writer_start(st, base, &w), 0);
	if (!w)
		return;
	relay_writer_set_settled_hook(w, settled_hook, NULL);
	relay_writer_ingest(w, ev_new(NULL, NULL), 0, 100, res_cb, &r);
	run_until(1);
	CHECK_INT(r.rc, 0);
	for (i = 0; i < 10000 && failed == 0; i++) {
		usleep(1000);
		relay_writer_settles(w, &settled, &failed);
	}
	CHECK(failed >= 1);
	CHECK_INT(settled, 0);
	CHECK(relay_store_unsettled(st) > 0);

	atomic_store(&settle_fail, 0);
	done_count = 0;
	run_until(1); /* the hook: the retry worked */
	CHECK_INT(done_count, 1);
	relay_writer_settles(w, &settled, NULL);
	CHECK(settled >= 1);
	CHECK_INT(relay_store_unsettled(st), 0);
	relay_writer_stop(w);
	relay_store_set_fault(st, NULL, NULL);
	relay_store_close(st);
}

int
main(void)
{
	snprintf(base_dir, sizeof(base_dir), "%s/relay-writer-XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(base_dir)) {
		perror("mkdtemp");
		return 2;
	}
	evthread_use_pthreads();
	base = event_base_new();
	loop_thread = pthread_self();
	RUN(test_many_ingests);
	RUN(test_grouping);
	RUN(test_faults);
	RUN(test_ops);
	RUN(test_complete_version);
	RUN(test_outcomes_alone);
	RUN(test_call_outcome);
	RUN(test_history_in_group);
	RUN(test_stop);
	RUN(test_settle);
	RUN(test_settle_fails);
	event_base_free(base);
	nftw(base_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return check_done();
}
