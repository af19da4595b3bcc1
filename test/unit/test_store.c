/* Unit tests for lib/store.c: the LMDB store, in temporary directories. */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lmdb.h>

#include "check.h"
#include "odoo_relay/error.h"
#include "odoo_relay/store.h"
#include "odoo_relay/store_check.h"

#define MAP (8u << 20)

static char base[256];

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
base_make(void)
{
	snprintf(base, sizeof(base), "%s/relay-store-XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		exit(2);
	}
}

static void
base_remove(void)
{
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *
path_in(const char *name)
{
	static char buf[4][512];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", base, name);
	return buf[i];
}

static int
exists(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0;
}

static int
entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static struct relay_store *
open_new(const char *name)
{
	struct relay_store *st = NULL;
	int rc = relay_store_open(path_in(name), MAP, RELAY_STORE_CREATE, &st);

	if (rc)
		fprintf(stderr, "open %s: %s\n", name, relay_strerror(rc));
	return st;
}

static struct relay_event
ev_make(const char *source, const char *lane, const char *dkey)
{
	struct relay_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.source = (char *)source;
	ev.topic = "t";
	ev.lane = (char *)lane;
	ev.dedup_key = (char *)dkey;
	ev.body = (unsigned char *)"{\"x\":1}";
	ev.body_len = 7;
	return ev;
}

static uint64_t
ingest(struct relay_store *st, const char *source, const char *lane, const char *dkey,
       int64_t now)
{
	struct relay_event ev = ev_make(source, lane, dkey);
	uint64_t id = 0;
	int dup = -1, rc;

	rc = relay_store_ingest(st, NULL, &ev, 1000, now, &id, &dup);
	if (rc || dup)
		fprintf(stderr, "ingest: rc %d dup %d\n", rc, dup);
	return rc ? 0 : id;
}

/* The due index as "id@due,id@due", everything up to now. */
static const char *
due_list(struct relay_store *st, int64_t now)
{
	static char out[1024];
	struct relay_due d[64];
	size_t n = 0, len = 0;
	int rc = relay_store_scan_due(st, NULL, now, NULL, d, 64, &n);

	out[0] = '\0';
	if (rc) {
		snprintf(out, sizeof(out), "error %d", rc);
		return out;
	}
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%llu@%lld", i ? "," : "",
		                        (unsigned long long)d[i].id, (long long)d[i].due_ms);
	return out;
}

static int64_t
due_of(struct relay_store *st, uint64_t id)
{
	struct relay_event ev;
	int64_t due = -1;

	if (relay_store_get_event(st, NULL, id, &ev) == 0)
		due = ev.due_ms;
	relay_event_clear(&ev);
	return due;
}

/* ---- tests ---- */

static void
test_open_create_close(void)
{
	struct relay_store *st = (struct relay_store *)1;
	struct relay_store_stats s;
	MDB_txn *txn = (MDB_txn *)1;
	struct stat sb;
	char dir[512];

	snprintf(dir, sizeof(dir), "%s", path_in("state"));

	/* Read-only never creates anything, anywhere. */
	CHECK_INT(relay_store_open(dir, MAP, RELAY_STORE_RDONLY, &st), ENOENT);
	CHECK(st == NULL);
	CHECK(!exists(dir));
	CHECK_INT(relay_store_open(dir, MAP, RELAY_STORE_RDONLY | RELAY_STORE_CREATE, &st), ENOENT);
	CHECK(!exists(dir));
	mkdir(path_in("empty"), 0700);
	CHECK_INT(relay_store_open(path_in("empty"), MAP, RELAY_STORE_RDONLY, &st), ENOENT);
	CHECK_INT(entries(path_in("empty")), 0);
	/* Read-write without CREATE needs the directory. */
	CHECK_INT(relay_store_open(dir, MAP, 0, &st), ENOENT);
	CHECK(!exists(dir));
	/* ...but initialises a store in an existing empty one. */
	CHECK_INT(relay_store_open(path_in("empty"), MAP, 0, &st), 0);
	relay_store_close(st);
	CHECK(exists(path_in("empty/data.mdb")));

	CHECK_INT(relay_store_open(dir, MAP, RELAY_STORE_CREATE, &st), 0);
	CHECK(st != NULL);
	CHECK(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode));
	CHECK_INT(sb.st_mode & 0707, 0700); /* 0750 less whatever umask took */
	CHECK(exists(path_in("state/data.mdb")));
	CHECK_STR(relay_store_dir(st), dir);
	CHECK_INT(relay_store_stats(st, 0, &s), 0);
	CHECK_INT(s.next_id, 1);
	CHECK_INT(s.events, 0);
	CHECK_INT(s.dead, 0);
	CHECK(s.map_size >= MAP);
	CHECK(s.map_used > 0 && s.map_used <= s.map_size);
	relay_store_close(st);
	relay_store_close(NULL);

	/* Read-only on an existing store: reads work, writes are refused. */
	CHECK_INT(relay_store_open(dir, 0, RELAY_STORE_RDONLY, &st), 0);
	CHECK_INT(relay_store_txn_begin(st, NULL, &txn), EACCES);
	CHECK(txn == NULL);
	CHECK_INT(relay_store_complete(st, NULL, 1, 0), EACCES);
	CHECK_INT(relay_store_stats(st, 0, &s), 0);
	relay_store_close(st);

	/* A file where the directory should be. */
	fclose(fopen(path_in("file"), "w"));
	CHECK_INT(relay_store_open(path_in("file"), MAP, RELAY_STORE_CREATE, &st), ENOTDIR);

	/* Unreadable: only meaningful when not root, who reads everything. */
	if (geteuid() != 0) {
		chmod(path_in("state/data.mdb"), 0);
		CHECK_INT(relay_store_open(dir, 0, RELAY_STORE_RDONLY, &st), EACCES);
		chmod(path_in("state/data.mdb"), 0640);
	}
}

static int
raw_put_schema(const char *dir, const void *val, size_t len)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { 6, "schema" }, v = { len, (void *)val };
	int rc;

	if ((rc = mdb_env_create(&env)))
		return rc;
	mdb_env_set_maxdbs(env, 8);
	if (!(rc = mdb_env_open(env, dir, 0, 0640)) && !(rc = mdb_txn_begin(env, NULL, 0, &txn))) {
		if (!(rc = mdb_dbi_open(txn, "meta", 0, &dbi)) &&
		    !(rc = mdb_put(txn, dbi, &k, &v, 0)))
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
	}
	mdb_env_close(env);
	return rc;
}

static void
test_schema(void)
{
	static const unsigned char v2[4] = { 0, 0, 0, 2 }, bad[3] = { 0, 0, 1 };
	struct relay_store *st = open_new("schema");
	uint64_t id;
	int dup;
	struct relay_event ev = ev_make("s", NULL, NULL);

	CHECK(st != NULL);
	CHECK_INT(relay_store_ingest(st, NULL, &ev, 0, 1, &id, &dup), 0);
	relay_store_close(st);
	CHECK_INT(raw_put_schema(path_in("schema"), v2, 4), 0);
	CHECK_INT(relay_store_open(path_in("schema"), MAP, 0, &st), -RELAY_EVERSION);
	CHECK_INT(relay_store_open(path_in("schema"), MAP, RELAY_STORE_RDONLY, &st), -RELAY_EVERSION);
	CHECK(st == NULL);
	/* Refused, not rewritten: back to 1, and the event is still there. */
	CHECK_INT(raw_put_schema(path_in("schema"), bad, 3), 0);
	CHECK_INT(relay_store_open(path_in("schema"), MAP, 0, &st), -RELAY_ECORRUPT);
	{
		static const unsigned char v1[4] = { 0, 0, 0, 1 };

		CHECK_INT(raw_put_schema(path_in("schema"), v1, 4), 0);
	}
	CHECK_INT(relay_store_open(path_in("schema"), MAP, 0, &st), 0);
	if (st) {
		CHECK_INT(relay_store_get_event(st, NULL, id, &ev), 0);
		relay_event_clear(&ev);
		relay_store_close(st);
	}
}

static void
test_ingest_dedup(void)
{
	struct relay_store *st = open_new("dedup");
	struct relay_event ev;
	struct relay_store_stats s;
	char longlane[600];
	uint64_t id = 0;
	int dup = -1;
	size_t swept = 99;

	if (!st)
		return;
	ev = ev_make("shop", NULL, "d1");
	ev.received_ms = 0;
	CHECK_INT(relay_store_ingest(st, NULL, &ev, 1000, 100, &id, &dup), 0);
	CHECK_INT(id, 1);
	CHECK_INT(dup, 0);
	CHECK_INT(ev.id, 1);
	CHECK_INT(ev.due_ms, 100);
	CHECK_INT(ev.received_ms, 100);

	/* Seen within the window: the first id, nothing written. */
	ev = ev_make("shop", NULL, "d1");
	CHECK_INT(relay_store_ingest(st, NULL, &ev, 1000, 500, &id, &dup), 0);
	CHECK_INT(id, 1);
	CHECK_INT(dup, 1);
	CHECK_INT(ev.id, 0);
	/* Same key, other source: a different event. */
	ev = ev_make("other", NULL, "d1");
	CHECK_INT(relay_store_ingest(st, NULL, &ev, 1000, 500, &id, &dup), 0);
	CHECK_INT(id, 2);
	CHECK_INT(dup, 0);
	/* Window over (expiry 1100 <= now): new again, window restarts. */
	ev = ev_make("shop", NULL, "d1");
	ev.received_ms = 7;
	CHECK_INT(relay_store_ingest(st, NULL, &ev, 1000, 1100, &id, &dup), 0);
	CHECK_INT(id, 3);
	CHECK_INT(dup, 0);
	CHECK_INT(ev.received_ms, 7); /* the caller's is kept */
	ev = ev_make("shop", NULL, "d1");
	CHECK_INT(relay_store_ingest(st, NULL, &ev, 1000, 2099, &id, &dup), 0);
	CHECK_INT(id, 3);
	CHECK_INT(dup, 1);
	/* No key, or no window: never a duplicate. */
	CHECK_INT(ingest(st, "shop", NULL, NULL, 1200), 4);
	CHECK_INT(ingest(st, "shop", NULL, NULL, 1200), 5);
	CHECK_INT(ingest(st, "shop", NULL, "", 1200), 6);
	ev = ev_make("shop", NULL, "nowindow");
	CHECK_INT(relay_store_ingest(st, NULL, &ev, 0, 1200, &id, &dup), 0);
	ev = ev_make("shop", NULL, "nowindow");
	CHECK_INT(relay_store_ingest(st, NULL, &ev, 0, 1200, &id, &dup), 0);
	CHECK_INT(dup, 0);
	CHECK_INT(id, 8);

	CHECK_INT(relay_store_stats(st, 0, &s), 0);
	CHECK_INT(s.events, 8);
	CHECK_INT(s.dedup, 2); /* shop/d1 (to 2100), other/d1 (to 1500) */
	CHECK_INT(s.next_id, 9);

	/* Sweep: only what expired, oldest first, at most max. */
	CHECK_INT(relay_store_sweep_dedup(st, NULL, 1499, 100, &swept), 0);
	CHECK_INT(swept, 0);
	CHECK_INT(relay_store_sweep_dedup(st, NULL, 1500, 100, &swept), 0);
	CHECK_INT(swept, 1);
	CHECK_INT(relay_store_stats(st, 0, &s), 0);
	CHECK_INT(s.dedup, 1);
	ev = ev_make("other", NULL, "d1");
	CHECK_INT(relay_store_ingest(st, NULL, &ev, 1000, 1501, &id, &dup), 0);
	CHECK_INT(dup, 0);
	for (int i = 0; i < 5; i++) {
		char key[16];

		snprintf(key, sizeof(key), "k%d", i);
		ev = ev_make("bulk", NULL, key);
		CHECK_INT(relay_store_ingest(st, NULL, &ev, 10, 3000 + i, &id, &dup), 0);
	}
	CHECK_INT(relay_store_sweep_dedup(st, NULL, 5000, 2, &swept), 0);
	CHECK_INT(swept, 2);
	CHECK_INT(relay_store_sweep_dedup(st, NULL, 5000, 100, &swept), 0);
	CHECK_INT(swept, 5); /* the other three, shop/d1 and other/d1 */
	CHECK_INT(relay_store_stats(st, 0, &s), 0);
	CHECK_INT(s.dedup, 0);
	/* Swept keys are forgotten: the same delivery id is new again. */
	ev = ev_make("bulk", NULL, "k0");
	CHECK_INT(relay_store_ingest(st, NULL, &ev, 10, 5000, &id, &dup), 0);
	CHECK_INT(dup, 0);

	/* Refusals write nothing. */
	CHECK_INT(relay_store_stats(st, 0, &s), 0);
	memset(longlane, 'x', sizeof(longlane) - 1);
	longlane[sizeof(longlane) - 1] = '\0';
	ev = ev_make("shop", longlane, NULL);
	CHECK_INT(relay_store_ingest(st, NULL, &ev, 1000, 6000, &id, &dup), -RELAY_ETOOBIG);
	ev = ev_make("shop", NULL, longlane);
	CHECK_INT(relay_store_ingest(st, NULL, &ev, 1000, 6000, &id, &dup), -RELAY_ETOOBIG);
	ev = ev_make(NULL, NULL, "x");
	CHECK_INT(relay_store_ingest(st, NULL, &ev, 1000, 6000, &id, &dup), -RELAY_EINVAL);
	ev = ev_make("", NULL, "x");
	CHECK_INT(relay_store_ingest(st, NULL, &ev, 1000, 6000, &id, &dup), -RELAY_EINVAL);
	{
		struct relay_store_stats s2;

		CHECK_INT(relay_store_stats(st, 0, &s2), 0);
		CHECK_INT(s2.events, s.events);
		CHECK_INT(s2.next_id, s.next_id);
	}
	relay_store_close(st);
}

static void
test_lanes(void)
{
	struct relay_store *st = open_new("lanes");
	struct relay_event ev;

	if (!st)
		return;
	CHECK_INT(ingest(st, "s", "o1", NULL, 1000), 1);
	CHECK_INT(ingest(st, "s", "o1", NULL, 1000), 2);
	CHECK_INT(ingest(st, "s", NULL, NULL, 1000), 3);
	CHECK_INT(ingest(st, "s", "o1", NULL, 1000), 4);
	CHECK_INT(ingest(st, "s", "o2", NULL, 1000), 5);
	CHECK_INT(ingest(st, "t", "o1", NULL, 1000), 6); /* same lane name, other source */
	CHECK_INT(ingest(st, "s", "", NULL, 1000), 7);   /* "" is no lane */
	CHECK_STR(due_list(st, INT64_MAX), "1@1000,3@1000,5@1000,6@1000,7@1000");

	/* A lane's ids, head first; other sources' lanes of that name apart. */
	{
		uint64_t ids[8];
		size_t n = 9;

		CHECK_INT(relay_store_lane_ids(st, NULL, "s", "o1", ids, 8, &n), 0);
		CHECK_INT(n, 3);
		CHECK(n == 3 && ids[0] == 1 && ids[1] == 2 && ids[2] == 4);
		CHECK_INT(relay_store_lane_ids(st, NULL, "s", "o1", ids, 2, &n), 0);
		CHECK_INT(n, 2);
		CHECK_INT(relay_store_lane_ids(st, NULL, "t", "o1", ids, 8, &n), 0);
		CHECK(n == 1 && ids[0] == 6);
		CHECK_INT(relay_store_lane_ids(st, NULL, "s", "nope", ids, 8, &n), 0);
		CHECK_INT(n, 0);
		CHECK_INT(relay_store_lane_ids(st, NULL, "s", "", ids, 8, &n), -RELAY_EINVAL);
	}

	/* Delivered: the next of the lane is due, not before now. */
	CHECK_INT(relay_store_complete(st, NULL, 1, 2000), 0);
	CHECK_STR(due_list(st, INT64_MAX), "3@1000,5@1000,6@1000,7@1000,2@2000");
	CHECK_INT(due_of(st, 2), 2000); /* the record follows its due entry */
	CHECK_INT(relay_store_get_event(st, NULL, 1, &ev), -RELAY_ENOTFOUND);
	CHECK_INT(relay_store_complete(st, NULL, 1, 2000), -RELAY_ENOTFOUND);

	/* Buried, lane continues. */
	ev = ev_make("s", "o1", NULL);
	ev.id = 2;
	ev.dead_reason = "permanent: ValidationError";
	ev.request = "{}";
	ev.attempts = 3;
	CHECK_INT(relay_store_bury(st, NULL, &ev, RELAY_LANE_CONTINUE, 3000), 0);
	CHECK_STR(due_list(st, INT64_MAX), "3@1000,5@1000,6@1000,7@1000,4@3000");
	CHECK_INT(relay_store_get_event(st, NULL, 2, &ev), -RELAY_ENOTFOUND);
	CHECK_INT(relay_store_get_dead(st, NULL, 2, &ev), 0);
	CHECK_INT(ev.dead_ms, 3000);
	CHECK_STR(ev.dead_reason, "permanent: ValidationError");
	CHECK_STR(ev.request, "{}");
	CHECK_INT(ev.attempts, 3);
	relay_event_clear(&ev);

	/* A newcomer parks behind the head. */
	CHECK_INT(ingest(st, "s", "o1", NULL, 3000), 8);
	CHECK_STR(due_list(st, INT64_MAX), "3@1000,5@1000,6@1000,7@1000,4@3000");

	/* Buried, lane held: nothing of o1 is deliverable. */
	ev = ev_make("s", "o1", NULL);
	ev.id = 4;
	ev.dead_ms = 3500;
	ev.dead_reason = "held";
	CHECK_INT(relay_store_bury(st, NULL, &ev, RELAY_LANE_HOLD, 4000), 0);
	CHECK_STR(due_list(st, INT64_MAX), "3@1000,5@1000,6@1000,7@1000");
	CHECK_INT(relay_store_get_dead(st, NULL, 4, &ev), 0);
	CHECK_INT(ev.dead_ms, 3500); /* the caller's, when set */
	relay_event_clear(&ev);

	/* Replayed: it is the head again, fresh. */
	CHECK_INT(relay_store_replay(st, NULL, 4, 5000), 0);
	CHECK_STR(due_list(st, INT64_MAX), "3@1000,5@1000,6@1000,7@1000,4@5000");
	CHECK_INT(relay_store_get_event(st, NULL, 4, &ev), 0);
	CHECK_INT(ev.attempts, 0);
	CHECK_INT(ev.dead_ms, 0);
	CHECK(ev.dead_reason == NULL && ev.request == NULL);
	CHECK_STR(ev.lane, "o1");
	relay_event_clear(&ev);
	CHECK_INT(relay_store_get_dead(st, NULL, 4, &ev), -RELAY_ENOTFOUND);
	CHECK_INT(relay_store_replay(st, NULL, 4, 5000), -RELAY_ENOTFOUND);

	/* Held again, then dropped: the lane moves on to 8. */
	ev = ev_make("s", "o1", NULL);
	ev.id = 4;
	CHECK_INT(relay_store_bury(st, NULL, &ev, RELAY_LANE_HOLD, 6000), 0);
	CHECK_STR(due_list(st, INT64_MAX), "3@1000,5@1000,6@1000,7@1000");
	CHECK_INT(relay_store_drop(st, NULL, 4, 7000), 0);
	CHECK_STR(due_list(st, INT64_MAX), "3@1000,5@1000,6@1000,7@1000,8@7000");
	CHECK_INT(relay_store_drop(st, NULL, 4, 7000), -RELAY_ENOTFOUND);
	CHECK_INT(relay_store_get_dead(st, NULL, 4, &ev), -RELAY_ENOTFOUND);

	/* Replaying 2 (buried with "continue", so out of its lane): it goes
	 * back in by id, ahead of 8, which is parked again. */
	CHECK_INT(relay_store_replay(st, NULL, 2, 8000), 0);
	CHECK_STR(due_list(st, INT64_MAX), "3@1000,5@1000,6@1000,7@1000,2@8000");
	CHECK_INT(relay_store_complete(st, NULL, 2, 9000), 0);
	CHECK_STR(due_list(st, INT64_MAX), "3@1000,5@1000,6@1000,7@1000,8@9000");

	/* A replayed event behind a live head is parked. */
	ev = ev_make("s", "o2", NULL);
	CHECK_INT(ingest(st, "s", "o2", NULL, 9000), 9);
	ev.id = 9;
	CHECK_INT(relay_store_bury(st, NULL, &ev, RELAY_LANE_CONTINUE, 9000), 0);
	CHECK_INT(relay_store_replay(st, NULL, 9, 9500), 0);
	CHECK_STR(due_list(st, INT64_MAX), "3@1000,5@1000,6@1000,7@1000,8@9000");
	CHECK_INT(relay_store_complete(st, NULL, 5, 9600), 0);
	CHECK_STR(due_list(st, INT64_MAX), "3@1000,6@1000,7@1000,8@9000,9@9600");

	/* Dropping one that did not hold its lane changes nothing else. */
	ev = ev_make("s", "o1", NULL);
	ev.id = 8;
	CHECK_INT(relay_store_bury(st, NULL, &ev, RELAY_LANE_CONTINUE, 9700), 0);
	CHECK_INT(relay_store_drop(st, NULL, 8, 9800), 0);
	CHECK_STR(due_list(st, INT64_MAX), "3@1000,6@1000,7@1000,9@9600");

	/* Burying needs the stored identity. */
	ev = ev_make("s", "other-lane", NULL);
	ev.id = 9;
	CHECK_INT(relay_store_bury(st, NULL, &ev, RELAY_LANE_CONTINUE, 9900), -RELAY_EINVAL);
	ev.id = 12345;
	CHECK_INT(relay_store_bury(st, NULL, &ev, RELAY_LANE_CONTINUE, 9900), -RELAY_ENOTFOUND);
	relay_store_close(st);
}

static void
test_due_and_reschedule(void)
{
	struct relay_store *st = open_new("due");
	struct relay_event ev;
	struct relay_attempt a;
	struct relay_due d[4], after;
	size_t n = 0;
	int64_t next = 0;

	if (!st)
		return;
	CHECK_INT(relay_store_next_due(st, NULL, &next), -RELAY_ENOTFOUND);
	CHECK_INT(ingest(st, "s", NULL, NULL, 100), 1);
	CHECK_INT(ingest(st, "s", NULL, NULL, 100), 2);
	CHECK_INT(ingest(st, "s", NULL, NULL, 100), 3);

	CHECK_INT(relay_store_get_event(st, NULL, 1, &ev), 0);
	memset(&a, 0, sizeof(a));
	a.at_ms = 150;
	a.klass = RELAY_CLASS_TRANSIENT;
	a.http_status = 503;
	a.message = "unavailable";
	CHECK_INT(relay_event_add_attempt(&ev, &a), 0);
	ev.attempts = 1;
	ev.first_attempt_ms = 150;
	ev.last_error = strdup("http 503");
	ev.due_ms = 500;
	CHECK_INT(relay_store_reschedule(st, NULL, &ev), 0);
	relay_event_clear(&ev);
	CHECK_INT(relay_store_get_event(st, NULL, 2, &ev), 0);
	ev.due_ms = 300;
	CHECK_INT(relay_store_reschedule(st, NULL, &ev), 0);
	relay_event_clear(&ev);

	CHECK_STR(due_list(st, 1000), "3@100,2@300,1@500");
	CHECK_STR(due_list(st, 299), "3@100");
	CHECK_STR(due_list(st, 99), "");
	CHECK_INT(relay_store_next_due(st, NULL, &next), 0);
	CHECK_INT(next, 100);
	CHECK_INT(relay_store_scan_due(st, NULL, 1000, NULL, d, 2, &n), 0);
	CHECK_INT(n, 2);
	CHECK(n == 2 && d[0].id == 3 && d[1].id == 2 && d[1].due_ms == 300);
	after = d[1];
	CHECK_INT(relay_store_scan_due(st, NULL, 1000, &after, d, 4, &n), 0);
	CHECK_INT(n, 1);
	CHECK(n == 1 && d[0].id == 1 && d[0].due_ms == 500);
	CHECK_INT(relay_store_scan_due(st, NULL, 1000, NULL, d, 0, &n), 0);
	CHECK_INT(n, 0);

	CHECK_INT(relay_store_get_event(st, NULL, 1, &ev), 0);
	CHECK_INT(ev.attempts, 1);
	CHECK_INT(ev.first_attempt_ms, 150);
	CHECK_STR(ev.last_error, "http 503");
	CHECK_INT(ev.n_history, 1);
	CHECK_INT(ev.due_ms, 500);

	/* An update that does not move it. */
	ev.route = strdup("orders");
	CHECK_INT(relay_store_reschedule(st, NULL, &ev), 0);
	relay_event_clear(&ev);
	CHECK_STR(due_list(st, 1000), "3@100,2@300,1@500");
	CHECK_INT(relay_store_get_event(st, NULL, 1, &ev), 0);
	CHECK_STR(ev.route, "orders");

	/* Identity must match; the id must exist. */
	ev.lane = strdup("new-lane");
	CHECK_INT(relay_store_reschedule(st, NULL, &ev), -RELAY_EINVAL);
	free(ev.lane);
	ev.lane = NULL;
	ev.id = 999;
	CHECK_INT(relay_store_reschedule(st, NULL, &ev), -RELAY_ENOTFOUND);
	relay_event_clear(&ev);

	/* A parked event stays parked whatever its due time. */
	CHECK_INT(ingest(st, "s", "L", NULL, 100), 4);
	CHECK_INT(ingest(st, "s", "L", NULL, 100), 5);
	CHECK_INT(relay_store_get_event(st, NULL, 5, &ev), 0);
	ev.due_ms = 50;
	CHECK_INT(relay_store_reschedule(st, NULL, &ev), 0);
	relay_event_clear(&ev);
	CHECK_STR(due_list(st, 1000), "3@100,4@100,2@300,1@500");
	CHECK_INT(relay_store_complete(st, NULL, 4, 60), 0);
	CHECK_STR(due_list(st, 1000), "5@60,3@100,2@300,1@500");

	/* The head can move too. */
	CHECK_INT(relay_store_get_event(st, NULL, 5, &ev), 0);
	ev.due_ms = 700;
	CHECK_INT(relay_store_reschedule(st, NULL, &ev), 0);
	relay_event_clear(&ev);
	CHECK_STR(due_list(st, 1000), "3@100,2@300,1@500,5@700");
	relay_store_close(st);
}

struct collect {
	uint64_t ids[64];
	size_t n;
	size_t stop_after;
};

static int
collect_cb(void *arg, const struct relay_event *ev)
{
	struct collect *c = arg;

	if (c->n < 64)
		c->ids[c->n++] = ev->id;
	if (!ev->source || !ev->body)
		return -1;
	return c->stop_after && c->n >= c->stop_after ? 42 : 0;
}

static int
paused_cb(void *arg, const char *route)
{
	char *out = arg;

	strcat(out, route);
	strcat(out, ";");
	return 0;
}

static void
test_counts_foreach_pause(void)
{
	struct relay_store *st = open_new("counts");
	struct relay_store_stats s;
	struct relay_event ev;
	struct collect c;
	char routes[256] = "";
	int paused = -1;

	if (!st)
		return;
	CHECK_INT(relay_store_stats(st, 0, &s), 0);
	CHECK_INT(s.oldest_received_ms, 0);
	CHECK_INT(s.next_due_ms, 0);
	CHECK_INT(ingest(st, "s", NULL, "a", 100), 1);
	CHECK_INT(ingest(st, "s", "L", "b", 200), 2);
	CHECK_INT(ingest(st, "s", "L", "c", 300), 3); /* parked */
	CHECK_INT(ingest(st, "s", NULL, "d", 400), 4);
	CHECK_INT(ingest(st, "s", NULL, "e", 500), 5);
	ev = ev_make("s", NULL, NULL);
	ev.id = 5;
	CHECK_INT(relay_store_bury(st, NULL, &ev, RELAY_LANE_CONTINUE, 600), 0);
	ev.id = 1;
	CHECK_INT(relay_store_bury(st, NULL, &ev, RELAY_LANE_CONTINUE, 600), 0);

	CHECK_INT(relay_store_stats(st, 250, &s), 0);
	CHECK_INT(s.events, 3);
	CHECK_INT(s.due, 2);     /* 2 and 4; 3 is parked */
	CHECK_INT(s.due_now, 1); /* 2 (due 200) */
	{
		struct relay_store_stats t;

		/* every side of the count: none due yet, all due, exactly at */
		CHECK_INT(relay_store_stats(st, 100, &t), 0);
		CHECK_INT(t.due_now, 0);
		CHECK_INT(relay_store_stats(st, 10000, &t), 0);
		CHECK_INT(t.due_now, 2);
		CHECK_INT(relay_store_stats(st, 400, &t), 0);
		CHECK_INT(t.due_now, 2);
		CHECK_INT(relay_store_stats(st, 399, &t), 0);
		CHECK_INT(t.due_now, 1);
	}
	CHECK_INT(s.dead, 2);
	CHECK_INT(s.dedup, 5);
	CHECK_INT(s.next_id, 6);
	CHECK_INT(s.oldest_received_ms, 200);
	CHECK_INT(s.next_due_ms, 200);

	memset(&c, 0, sizeof(c));
	CHECK_INT(relay_store_foreach_event(st, 0, collect_cb, &c), 0);
	CHECK_INT(c.n, 3);
	CHECK(c.n == 3 && c.ids[0] == 2 && c.ids[1] == 3 && c.ids[2] == 4);
	memset(&c, 0, sizeof(c));
	CHECK_INT(relay_store_foreach_event(st, 3, collect_cb, &c), 0);
	CHECK(c.n == 2 && c.ids[0] == 3);
	memset(&c, 0, sizeof(c));
	c.stop_after = 1;
	CHECK_INT(relay_store_foreach_event(st, 0, collect_cb, &c), 42);
	CHECK_INT(c.n, 1);
	memset(&c, 0, sizeof(c));
	CHECK_INT(relay_store_foreach_dead(st, 0, collect_cb, &c), 0);
	CHECK(c.n == 2 && c.ids[0] == 1 && c.ids[1] == 5);
	memset(&c, 0, sizeof(c));
	CHECK_INT(relay_store_foreach_dead(st, 6, collect_cb, &c), 0);
	CHECK_INT(c.n, 0);

	/* Pause flags. */
	CHECK_INT(relay_store_get_paused(st, NULL, NULL, &paused), 0);
	CHECK_INT(paused, 0);
	CHECK_INT(relay_store_set_paused(st, NULL, NULL, 1), 0);
	CHECK_INT(relay_store_get_paused(st, NULL, NULL, &paused), 0);
	CHECK_INT(paused, 1);
	CHECK_INT(relay_store_set_paused(st, NULL, "orders", 1), 0);
	CHECK_INT(relay_store_set_paused(st, NULL, "a", 1), 0);
	CHECK_INT(relay_store_get_paused(st, NULL, "orders", &paused), 0);
	CHECK_INT(paused, 1);
	CHECK_INT(relay_store_get_paused(st, NULL, "customers", &paused), 0);
	CHECK_INT(paused, 0);
	CHECK_INT(relay_store_foreach_paused(st, paused_cb, routes), 0);
	CHECK_STR(routes, "a;orders;");
	CHECK_INT(relay_store_set_paused(st, NULL, "a", 0), 0);
	CHECK_INT(relay_store_set_paused(st, NULL, "a", 0), 0); /* resuming twice is fine */
	CHECK_INT(relay_store_set_paused(st, NULL, NULL, 0), 0);
	CHECK_INT(relay_store_get_paused(st, NULL, NULL, &paused), 0);
	CHECK_INT(paused, 0);
	routes[0] = '\0';
	CHECK_INT(relay_store_foreach_paused(st, paused_cb, routes), 0);
	CHECK_STR(routes, "orders;");
	relay_store_close(st);
}

/* Everything survives a close, and ids keep counting. */
static void
test_reopen(void)
{
	struct relay_store *st = open_new("reopen");
	struct relay_event ev;
	int paused = 0, dup = 0;
	uint64_t id = 0;

	if (!st)
		return;
	CHECK_INT(ingest(st, "s", "L", "k1", 100), 1);
	CHECK_INT(ingest(st, "s", "L", "k2", 100), 2);
	CHECK_INT(ingest(st, "s", NULL, "k3", 100), 3);
	ev = ev_make("s", NULL, NULL);
	ev.id = 3;
	ev.dead_reason = "gone";
	CHECK_INT(relay_store_bury(st, NULL, &ev, RELAY_LANE_CONTINUE, 200), 0);
	CHECK_INT(relay_store_set_paused(st, NULL, "r", 1), 0);
	relay_store_close(st);

	CHECK_INT(relay_store_open(path_in("reopen"), MAP, 0, &st), 0);
	if (!st)
		return;
	CHECK_STR(due_list(st, INT64_MAX), "1@100");
	CHECK_INT(relay_store_get_dead(st, NULL, 3, &ev), 0);
	CHECK_STR(ev.dead_reason, "gone");
	relay_event_clear(&ev);
	CHECK_INT(relay_store_get_paused(st, NULL, "r", &paused), 0);
	CHECK_INT(paused, 1);
	ev = ev_make("s", "L", "k1");
	CHECK_INT(relay_store_ingest(st, NULL, &ev, 1000, 150, &id, &dup), 0);
	CHECK_INT(dup, 1);
	CHECK_INT(id, 1);
	CHECK_INT(ingest(st, "s", NULL, "k4", 150), 4);
	CHECK_INT(relay_store_complete(st, NULL, 1, 300), 0);
	CHECK_STR(due_list(st, INT64_MAX), "4@150,2@300");
	relay_store_close(st);
}

static void
test_compact(void)
{
	struct relay_store *st = open_new("big");
	struct relay_store *copy = NULL;
	struct relay_store_stats s1, s2;
	struct relay_event ev;

	if (!st)
		return;
	for (int i = 0; i < 200; i++)
		ingest(st, "s", i % 3 ? "L" : NULL, NULL, 100 + i);
	for (uint64_t id = 1; id <= 150; id++)
		relay_store_complete(st, NULL, id, 1000);
	CHECK_INT(relay_store_stats(st, 0, &s1), 0);
	relay_store_close(st);

	mkdir(path_in("copy"), 0700);
	CHECK_INT(relay_store_compact(path_in("big"), path_in("copy")), 0);
	CHECK_INT(relay_store_compact(path_in("big"), path_in("copy")), EEXIST);
	CHECK_INT(relay_store_compact(path_in("nothing"), path_in("copy")), ENOENT);
	CHECK_INT(relay_store_open(path_in("copy"), 0, RELAY_STORE_RDONLY, &copy), 0);
	if (!copy)
		return;
	CHECK_INT(relay_store_stats(copy, 0, &s2), 0);
	CHECK_INT(s2.events, 50);
	CHECK_INT(s2.events, s1.events);
	CHECK_INT(s2.due, s1.due);
	CHECK_INT(s2.next_id, 201);
	CHECK(s2.map_used <= s1.map_used);
	CHECK_STR(due_list(copy, INT64_MAX), due_list(copy, INT64_MAX)); /* scan works */
	CHECK_INT(relay_store_get_event(copy, NULL, 200, &ev), 0);
	CHECK_INT(ev.received_ms, 299);
	relay_event_clear(&ev);
	relay_store_close(copy);
}

struct fault {
	const char *op;  /* the op to fail, or NULL */
	int rc;
	int calls;       /* hook calls for that op */
	char seen[256];  /* every op the hook was asked about */
};

static int
fault_hook(void *arg, const char *op)
{
	struct fault *f = arg;

	if (strlen(f->seen) + strlen(op) + 2 < sizeof(f->seen)) {
		strcat(f->seen, op);
		strcat(f->seen, " ");
	}
	if (f->op && strcmp(f->op, op) == 0) {
		f->calls++;
		return f->rc;
	}
	return 0;
}

static void
test_fault_hook(void)
{
	struct relay_store *st = open_new("fault");
	struct relay_store_stats s;
	struct relay_event ev;
	struct fault f;
	uint64_t id = 0;
	int dup = 0;
	size_t swept;

	if (!st)
		return;
	memset(&f, 0, sizeof(f));
	relay_store_set_fault(st, fault_hook, &f);
	CHECK_INT(ingest(st, "s", NULL, "k", 100), 1);
	CHECK_STR(f.seen, "ingest commit ");

	f.op = "ingest";
	f.rc = MDB_MAP_FULL;
	ev = ev_make("s", NULL, "k2");
	CHECK_INT(relay_store_ingest(st, NULL, &ev, 1000, 100, &id, &dup), -RELAY_EFULL);
	f.rc = ENOSPC;
	CHECK_INT(relay_store_ingest(st, NULL, &ev, 1000, 100, &id, &dup), -RELAY_EFULL);
	f.rc = EIO;
	CHECK_INT(relay_store_ingest(st, NULL, &ev, 1000, 100, &id, &dup), EIO);
	CHECK_INT(f.calls, 3);
	CHECK_INT(relay_store_stats(st, 0, &s), 0);
	CHECK_INT(s.events, 1);
	CHECK_INT(s.next_id, 2);

	/* A failing commit: the operation is not applied. */
	f.op = "commit";
	f.rc = EIO;
	CHECK_INT(relay_store_complete(st, NULL, 1, 200), EIO);
	CHECK_INT(relay_store_get_event(st, NULL, 1, &ev), 0);
	relay_event_clear(&ev);
	f.rc = MDB_MAP_FULL;
	CHECK_INT(relay_store_set_paused(st, NULL, NULL, 1), -RELAY_EFULL);

	/* In a caller's transaction, a failing op leaves the rest usable. */
	{
		MDB_txn *txn;

		f.op = "drop";
		f.rc = ENOSPC;
		CHECK_INT(relay_store_txn_begin(st, NULL, &txn), 0);
		CHECK_INT(relay_store_drop(st, txn, 1, 200), -RELAY_EFULL);
		ev = ev_make("s", NULL, "k3");
		CHECK_INT(relay_store_ingest(st, txn, &ev, 1000, 200, &id, &dup), 0);
		CHECK_INT(id, 2);
		f.op = NULL;
		CHECK_INT(relay_store_txn_commit(st, txn), 0);
	}

	/* And once the fault is gone, everything works again. */
	f.op = NULL;
	f.seen[0] = '\0';
	CHECK_INT(relay_store_complete(st, NULL, 1, 200), 0);
	ev = ev_make("s", NULL, NULL);
	ev.id = 2;
	CHECK_INT(relay_store_bury(st, NULL, &ev, RELAY_LANE_CONTINUE, 300), 0);
	CHECK_INT(relay_store_replay(st, NULL, 2, 300), 0);
	CHECK_INT(relay_store_get_event(st, NULL, 2, &ev), 0);
	ev.due_ms = 400;
	CHECK_INT(relay_store_reschedule(st, NULL, &ev), 0);
	relay_event_clear(&ev);
	ev = ev_make("s", NULL, NULL);
	ev.id = 2;
	CHECK_INT(relay_store_bury(st, NULL, &ev, RELAY_LANE_CONTINUE, 300), 0);
	CHECK_INT(relay_store_drop(st, NULL, 2, 300), 0);
	CHECK_INT(relay_store_sweep_dedup(st, NULL, 100000, 10, &swept), 0);
	CHECK_INT(relay_store_set_paused(st, NULL, NULL, 1), 0);
	CHECK_STR(f.seen, "complete commit bury commit replay commit reschedule commit bury commit "
	                  "drop commit sweep commit pause commit ");
	relay_store_set_fault(st, NULL, NULL);
	relay_store_close(st);
}

static void
test_map_full(void)
{
	enum { BODY = 16 * 1024, MAXTRY = 400 };
	const size_t tiny = 1024 * 1024; /* the ingest reserve is 256 KiB of it */
	static unsigned char body[BODY];
	struct relay_store *st = NULL;
	struct relay_store_stats s;
	struct relay_event ev;
	uint64_t id, last = 0;
	int dup, rc = 0, n_ok = 0, intact = 0;

	CHECK_INT(relay_store_open(path_in("tiny"), tiny, RELAY_STORE_CREATE, &st), 0);
	if (!st)
		return;
	for (int i = 0; i < MAXTRY; i++) {
		memset(body, 'a' + i % 26, BODY);
		ev = ev_make("s", i % 2 ? "L" : NULL, NULL);
		ev.body = body;
		ev.body_len = BODY;
		rc = relay_store_ingest(st, NULL, &ev, 1000, 100, &id, &dup);
		if (rc)
			break;
		n_ok++;
		last = id;
	}
	CHECK_INT(rc, -RELAY_EFULL);
	CHECK(n_ok > 2);
	CHECK_INT(last, n_ok);
	/* Nothing committed was lost, and the store still answers. */
	for (uint64_t i = 1; i <= (uint64_t)n_ok; i++) {
		if (relay_store_get_event(st, NULL, i, &ev) == 0 && ev.body_len == BODY &&
		    ev.body[0] == 'a' + (i - 1) % 26 && ev.body[BODY - 1] == ev.body[0])
			intact++;
		relay_event_clear(&ev);
	}
	CHECK_INT(intact, n_ok);
	CHECK_INT(relay_store_stats(st, 0, &s), 0);
	CHECK_INT(s.events, n_ok);
	CHECK_INT(s.next_id, n_ok + 1);
	relay_store_close(st);

	/* Reopened with a smaller map than the file: the file's size wins,
	 * and everything is readable. */
	CHECK_INT(relay_store_open(path_in("tiny"), 64 * 1024, 0, &st), 0);
	if (!st)
		return;
	CHECK_INT(relay_store_stats(st, 0, &s), 0);
	CHECK_INT(s.events, n_ok);
	CHECK(s.map_size >= s.map_used && s.map_size > 64 * 1024);
	CHECK_INT(relay_store_get_event(st, NULL, (uint64_t)n_ok, &ev), 0);
	relay_event_clear(&ev);
	relay_store_close(st);

	/* Deliveries still go through on the full store, free pages, and
	 * space comes back. */
	CHECK_INT(relay_store_open(path_in("tiny"), tiny, 0, &st), 0);
	if (!st)
		return;
	for (uint64_t i = 1; i <= 4; i++)
		CHECK_INT(relay_store_complete(st, NULL, i, 200), 0);
	ev = ev_make("s", NULL, NULL);
	ev.body = body;
	ev.body_len = BODY;
	CHECK_INT(relay_store_ingest(st, NULL, &ev, 1000, 300, &id, &dup), 0);
	CHECK_INT(id, n_ok + 1);
	relay_store_close(st);

	/* Small events in lanes fill the map page by page: once ingest says
	 * full, every queued event can still be delivered (each delivery also
	 * rewrites the next head of its lane), thanks to ingest's reserve. */
	CHECK_INT(relay_store_open(path_in("tiny2"), tiny, RELAY_STORE_CREATE, &st), 0);
	if (!st)
		return;
	n_ok = 0;
	for (int i = 0; i < 5000; i++) {
		char lane[8];

		snprintf(lane, sizeof(lane), "L%d", i % 7);
		ev = ev_make("s", lane, NULL);
		ev.body = body;
		ev.body_len = 1500;
		if ((rc = relay_store_ingest(st, NULL, &ev, 1000, 100, &id, &dup)))
			break;
		n_ok++;
	}
	CHECK_INT(rc, -RELAY_EFULL);
	CHECK(n_ok > 50);
	intact = 0;
	for (uint64_t i = 1; i <= (uint64_t)n_ok; i++)
		intact += relay_store_complete(st, NULL, i, 200 + (int64_t)i) == 0;
	CHECK_INT(intact, n_ok);
	CHECK_INT(relay_store_stats(st, 0, &s), 0);
	CHECK_INT(s.events, 0);
	CHECK_INT(s.due, 0);
	relay_store_close(st);
}

/* versions: the stale guard's table. */
/* ---- deferred indexes (relay_store_defer_index) ---- */

static int
tail_due_cb(void *arg, uint64_t id, int64_t due_ms)
{
	char *out = arg;
	size_t len = strlen(out);

	snprintf(out + len, 1024 - len, "%s%llu@%lld", len ? "," : "", (unsigned long long)id,
	         (long long)due_ms);
	return 0;
}

static const char *
tail_due_list(struct relay_store *st)
{
	static char out[1024];
	int rc;

	out[0] = '\0';
	if ((rc = relay_store_tail_due(st, NULL, tail_due_cb, out)))
		snprintf(out, sizeof(out), "error %d", rc);
	return out;
}

static uint64_t
ingest_dup(struct relay_store *st, const char *source, const char *dkey, int64_t now, int *dup)
{
	struct relay_event ev = ev_make(source, NULL, dkey);
	uint64_t id = 0;

	*dup = -1;
	return relay_store_ingest(st, NULL, &ev, 1000, now, &id, dup) ? 0 : id;
}

/* The record at once, the indexes at the settle: the same queue as an
 * ingest that indexes at once, the same duplicates before and after. */
static void
test_deferred(void)
{
	struct relay_store *st = open_new("deferred");
	struct relay_store_stats s;
	struct relay_event ev;
	uint64_t ids[8];
	size_t n = 9;
	int dup;

	if (!st)
		return;
	relay_store_defer_index(st, 1);
	CHECK_INT(relay_store_unsettled(st), 1); /* not known until a settle */
	CHECK_INT(relay_store_settle(st, NULL), 0);
	CHECK_INT(relay_store_unsettled(st), 0);
	CHECK_INT(ingest(st, "s", "o1", "k1", 1000), 1);
	CHECK_INT(ingest(st, "s", "o1", "k2", 1000), 2);
	CHECK_INT(ingest(st, "s", NULL, "k3", 1100), 3);
	CHECK_INT(relay_store_unsettled(st), 3);

	/* stored, not indexed yet */
	CHECK_INT(relay_store_get_event(st, NULL, 2, &ev), 0);
	relay_event_clear(&ev);
	CHECK_STR(due_list(st, INT64_MAX), "");
	CHECK_INT(relay_store_lane_ids(st, NULL, "s", "o1", ids, 8, &n), 0);
	CHECK_INT(n, 0);
	/* readers see the queue the settle makes */
	CHECK_STR(tail_due_list(st), "1@1000,3@1100");
	CHECK_INT(relay_store_stats(st, 1050, &s), 0);
	CHECK_INT(s.events, 3);
	CHECK_INT(s.unsettled, 3);
	CHECK_INT(s.due, 2);
	CHECK_INT(s.due_now, 1);
	CHECK_INT(s.next_due_ms, 1000);
	CHECK_INT(s.dedup, 0);

	/* a duplicate of an unsettled event is found, with its id */
	CHECK_INT(ingest_dup(st, "s", "k2", 1500, &dup), 2);
	CHECK_INT(dup, 1);
	CHECK_INT(ingest_dup(st, "t", "k2", 1500, &dup), 4); /* other source */
	CHECK_INT(dup, 0);

	CHECK_INT(relay_store_settle(st, NULL), 0);
	CHECK_INT(relay_store_unsettled(st), 0);
	CHECK_STR(due_list(st, INT64_MAX), "1@1000,3@1100,4@1500");
	CHECK_INT(relay_store_lane_ids(st, NULL, "s", "o1", ids, 8, &n), 0);
	CHECK(n == 2 && ids[0] == 1 && ids[1] == 2);
	CHECK_STR(tail_due_list(st), "");
	CHECK_INT(relay_store_stats(st, 1500, &s), 0);
	CHECK_INT(s.unsettled, 0);
	CHECK_INT(s.dedup, 4);
	CHECK_INT(s.due, 3);

	/* settled, the keys live until ingest time + window, as before */
	CHECK_INT(ingest_dup(st, "s", "k1", 1999, &dup), 1);
	CHECK_INT(dup, 1);
	CHECK_INT(ingest_dup(st, "s", "k1", 2000, &dup), 5); /* expired: a new event */
	CHECK_INT(dup, 0);
	CHECK_INT(ingest_dup(st, "s", "k1", 2100, &dup), 5);
	CHECK_INT(dup, 1);

	/* any other write settles first, so a lane keeps id order: 6 parks
	 * behind 2, which the completion of 1 makes due */
	CHECK_INT(ingest(st, "s", "o1", NULL, 2600), 6);
	CHECK_INT(relay_store_complete(st, NULL, 1, 3000), 0);
	CHECK_INT(relay_store_unsettled(st), 0);
	CHECK_STR(due_list(st, INT64_MAX), "3@1100,4@1500,5@2000,2@3000");
	CHECK_INT(relay_store_lane_ids(st, NULL, "s", "o1", ids, 8, &n), 0);
	CHECK(n == 2 && ids[0] == 2 && ids[1] == 6);
	CHECK_INT(ingest_dup(st, "s", "k1", 2700, &dup), 5); /* replaced, not lost */
	CHECK_INT(dup, 1);
	CHECK_INT(relay_store_stats(st, 3000, &s), 0);
	CHECK_INT(s.dedup, 4);
	relay_store_close(st);
}

/* A tail left by a crash (closed unsettled) is settled by the next write
 * of any handle, with the dedup window it was ingested under; ids go on
 * above the reserved block. */
static void
test_deferred_reopen(void)
{
	struct relay_store *st = open_new("deferred-reopen");
	struct relay_store_stats s;
	uint64_t ids[8], id;
	size_t n = 9;
	int dup;

	if (!st)
		return;
	relay_store_defer_index(st, 1);
	CHECK_INT(ingest(st, "s", "a", "k1", 1000), 1);
	CHECK_INT(ingest(st, "s", "a", NULL, 1000), 2);
	CHECK_INT(ingest(st, "s", NULL, "k3", 1000), 3);
	relay_store_close(st);

	st = open_new("deferred-reopen"); /* indexes at once */
	if (!st)
		return;
	CHECK_INT(relay_store_stats(st, 1000, &s), 0);
	CHECK_INT(s.events, 3);
	CHECK_INT(s.unsettled, 3);
	CHECK_INT(s.due, 2);
	CHECK_STR(due_list(st, INT64_MAX), "");
	id = ingest_dup(st, "s", "k3", 1200, &dup); /* settles, then finds it */
	CHECK_INT(id, 3);
	CHECK_INT(dup, 1);
	CHECK_STR(due_list(st, INT64_MAX), "1@1000,3@1000");
	CHECK_INT(relay_store_lane_ids(st, NULL, "s", "a", ids, 8, &n), 0);
	CHECK(n == 2 && ids[0] == 1 && ids[1] == 2);
	CHECK_INT(ingest_dup(st, "s", "k1", 1999, &dup), 1);
	CHECK_INT(dup, 1);
	id = ingest(st, "s", NULL, NULL, 1200);
	CHECK(id > 3);
	CHECK_INT(relay_store_stats(st, 1200, &s), 0);
	CHECK_INT(s.unsettled, 0);
	CHECK_INT(s.dedup, 2);
	relay_store_close(st);

	st = open_new("deferred-reopen");
	if (!st)
		return;
	relay_store_defer_index(st, 1);
	CHECK_INT(ingest(st, "s", NULL, NULL, 1300), id + 1);
	CHECK_INT(relay_store_settle(st, NULL), 0);
	{
		char want[64];

		snprintf(want, sizeof(want), "1@1000,3@1000,%llu@1200,%llu@1300",
		         (unsigned long long)id, (unsigned long long)id + 1);
		CHECK_STR(due_list(st, INT64_MAX), want);
	}
	relay_store_close(st);
}

/* Ids taken in a transaction that aborted are given out again, nested or
 * not: an abort leaves no gap and no id twice. */
static void
test_deferred_abort(void)
{
	struct relay_store *st = open_new("deferred-abort");
	struct relay_event ev;
	MDB_txn *top, *child;
	uint64_t id = 0;
	int dup;

	if (!st)
		return;
	relay_store_defer_index(st, 1);
	CHECK_INT(ingest(st, "s", NULL, "k1", 1000), 1);
	CHECK_INT(relay_store_txn_begin(st, NULL, &top), 0);
	ev = ev_make("s", NULL, "k2");
	CHECK_INT(relay_store_ingest(st, top, &ev, 1000, 1000, &id, &dup), 0);
	CHECK_INT(id, 2);
	relay_store_txn_abort(st, top);
	CHECK_INT(relay_store_get_event(st, NULL, 2, &ev), -RELAY_ENOTFOUND);
	CHECK_INT(ingest_dup(st, "s", "k2", 1000, &dup), 2); /* not a duplicate */
	CHECK_INT(dup, 0);

	CHECK_INT(relay_store_txn_begin(st, NULL, &top), 0);
	CHECK_INT(relay_store_txn_begin(st, top, &child), 0);
	ev = ev_make("s", NULL, "k3");
	CHECK_INT(relay_store_ingest(st, child, &ev, 1000, 1000, &id, &dup), 0);
	CHECK_INT(id, 3);
	relay_store_txn_abort(st, child);
	ev = ev_make("s", NULL, "k4");
	CHECK_INT(relay_store_ingest(st, top, &ev, 1000, 1000, &id, &dup), 0);
	CHECK_INT(id, 3);
	CHECK_INT(relay_store_txn_commit(st, top), 0);
	CHECK_INT(ingest_dup(st, "s", "k3", 1000, &dup), 4);
	CHECK_INT(dup, 0);
	CHECK_INT(ingest_dup(st, "s", "k4", 1000, &dup), 3);
	CHECK_INT(dup, 1);
	CHECK_INT(relay_store_settle(st, NULL), 0);
	CHECK_STR(due_list(st, INT64_MAX), "1@1000,2@1000,3@1000,4@1000");
	relay_store_close(st);
}

/* A record of the tail that does not decode is passed by: the writes
 * that settle first go on (the walk at start is what reports damage). */
static void
test_deferred_damaged(void)
{
	struct relay_store *st = open_new("deferred-damaged");
	struct relay_store_stats s;
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	unsigned char kb[8] = { 0, 0, 0, 0, 0, 0, 0, 2 };
	char junk[] = "\001\007not a record";
	MDB_val k = { 8, kb }, v = { sizeof(junk), junk };
	uint64_t id;

	if (!st)
		return;
	relay_store_defer_index(st, 1);
	CHECK_INT(ingest(st, "s", "a", NULL, 1000), 1);
	CHECK_INT(ingest(st, "s", "a", NULL, 1000), 2);
	CHECK_INT(ingest(st, "s", NULL, NULL, 1000), 3);
	relay_store_close(st);

	/* record 2 overwritten behind the store's back */
	CHECK_INT(mdb_env_create(&env), 0);
	CHECK_INT(mdb_env_set_maxdbs(env, 32), 0);
	CHECK_INT(mdb_env_open(env, path_in("deferred-damaged"), 0, 0640), 0);
	CHECK_INT(mdb_txn_begin(env, NULL, 0, &txn), 0);
	CHECK_INT(mdb_dbi_open(txn, "events", 0, &dbi), 0);
	CHECK_INT(mdb_put(txn, dbi, &k, &v, 0), 0);
	CHECK_INT(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	st = open_new("deferred-damaged");
	if (!st)
		return;
	id = ingest(st, "s", NULL, NULL, 1100); /* settles first */
	CHECK(id > 3);
	CHECK_STR(due_list(st, 1000), "1@1000,3@1000");
	CHECK_INT(relay_store_stats(st, 1100, &s), 0);
	CHECK_INT(s.unsettled, 0);
	relay_store_close(st);
}

/* Another process writes between two of ours (as odoo-relayctl does): it
 * settles our tail and takes an id; we see both, and give out no id twice. */
static void
test_deferred_other_process(void)
{
	struct relay_store *st = open_new("deferred-other");
	struct relay_store_stats s;
	uint64_t ids[8], id;
	size_t n = 9;
	int status = -1;
	pid_t pid;

	if (!st)
		return;
	relay_store_defer_index(st, 1);
	CHECK_INT(ingest(st, "s", "x", NULL, 1000), 1);
	CHECK_INT(ingest(st, "s", "x", NULL, 1000), 2);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		struct relay_store *other = NULL;
		uint64_t oid = 0;

		/* a store of its own: the parent's environment is not touched */
		if (relay_store_open(path_in("deferred-other"), MAP, 0, &other))
			_exit(1);
		oid = ingest(other, "s", "x", NULL, 1100);
		relay_store_close(other);
		_exit(oid == 65 ? 0 : 2); /* above the parent's reserved block */
	}
	CHECK(pid > 0);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK_INT(status, 0);
	CHECK_INT(relay_store_lane_ids(st, NULL, "s", "x", ids, 8, &n), 0);
	CHECK(n == 3 && ids[0] == 1 && ids[1] == 2 && ids[2] == 65);
	id = ingest(st, "s", "x", NULL, 1200);
	CHECK_INT(id, 66);
	CHECK_INT(relay_store_settle(st, NULL), 0);
	CHECK_INT(relay_store_lane_ids(st, NULL, "s", "x", ids, 8, &n), 0);
	CHECK(n == 4 && ids[3] == 66);
	CHECK_STR(due_list(st, INT64_MAX), "1@1000");
	CHECK_INT(relay_store_stats(st, 1200, &s), 0);
	CHECK_INT(s.events, 4);
	relay_store_close(st);
}

static void
test_versions(void)
{
	struct relay_store *st = open_new("versions");
	struct relay_version_entry e = { .kind = 1, .version = 100, .applied_ms = 1000,
	                                 .expiry_ms = 5000 }, got;
	struct relay_store_stats s;
	struct relay_event ev;
	MDB_txn *txn = NULL, *child = NULL;
	uint64_t id = 0;
	size_t swept = 99;
	int kept = -1;

	if (!st)
		return;
	CHECK_INT(relay_store_version_get(st, NULL, "r", "c_1", &got), -RELAY_ENOTFOUND);
	CHECK_INT(relay_store_version_put(st, NULL, "r", "c_1", &e, &kept), 0);
	CHECK_INT(kept, 0);
	CHECK_INT(relay_store_version_get(st, NULL, "r", "c_1", &got), 0);
	CHECK_INT(got.kind, 1);
	CHECK_INT(got.version, 100);
	CHECK_INT(got.applied_ms, 1000);
	CHECK_INT(got.expiry_ms, 5000);
	/* Other route, same name: its own entry. */
	CHECK_INT(relay_store_version_get(st, NULL, "r2", "c_1", &got), -RELAY_ENOTFOUND);
	/* Never backwards while it lives. */
	e = (struct relay_version_entry){ .kind = 1, .version = 50, .applied_ms = 2000,
	                                  .expiry_ms = 6000 };
	CHECK_INT(relay_store_version_put(st, NULL, "r", "c_1", &e, &kept), 0);
	CHECK_INT(kept, 1);
	CHECK_INT(relay_store_version_get(st, NULL, "r", "c_1", &got), 0);
	CHECK_INT(got.version, 100);
	CHECK_INT(got.expiry_ms, 5000);
	/* Forwards (or equal) moves the entry and its expiry. */
	e.version = 100;
	CHECK_INT(relay_store_version_put(st, NULL, "r", "c_1", &e, &kept), 0);
	CHECK_INT(kept, 0);
	CHECK_INT(relay_store_version_get(st, NULL, "r", "c_1", &got), 0);
	CHECK_INT(got.expiry_ms, 6000);
	/* A kind change (the route was reconfigured) replaces it. */
	e = (struct relay_version_entry){ .kind = 2, .version = 3, .applied_ms = 2500,
	                                  .expiry_ms = 9000 };
	CHECK_INT(relay_store_version_put(st, NULL, "r", "c_2", &e, NULL), 0);
	CHECK_INT(relay_store_version_get(st, NULL, "r", "c_2", &got), 0);
	CHECK_INT(got.kind, 2);
	CHECK_INT(relay_store_stats(st, 0, &s), 0);
	CHECK_INT(s.versions, 2);
	/* Bad arguments. */
	CHECK_INT(relay_store_version_put(st, NULL, "", "c", &e, NULL), -RELAY_EINVAL);
	CHECK_INT(relay_store_version_put(st, NULL, "r", "c", NULL, NULL), -RELAY_EINVAL);
	e.kind = 0;
	CHECK_INT(relay_store_version_put(st, NULL, "r", "c", &e, NULL), -RELAY_EINVAL);

	/* Sweep: expired ones only (c_1 moved to 6000), at most max. */
	CHECK_INT(relay_store_sweep_versions(st, NULL, 5999, 10, &swept), 0);
	CHECK_INT(swept, 0);
	CHECK_INT(relay_store_version_get(st, NULL, "r", "c_1", &got), 0);
	CHECK_INT(relay_store_sweep_versions(st, NULL, 9000, 1, &swept), 0);
	CHECK_INT(swept, 1);
	CHECK_INT(relay_store_version_get(st, NULL, "r", "c_1", &got), -RELAY_ENOTFOUND);
	CHECK_INT(relay_store_version_get(st, NULL, "r", "c_2", &got), 0);
	CHECK_INT(relay_store_sweep_versions(st, NULL, 9000, 10, &swept), 0);
	CHECK_INT(swept, 1);
	CHECK_INT(relay_store_stats(st, 0, &s), 0);
	CHECK_INT(s.versions, 0);

	/* Completion and version in one transaction, as the writer runs them:
	 * a failing version put leaves the event queued and no version. */
	ev = ev_make("shop", "l1", NULL);
	CHECK_INT(relay_store_ingest(st, NULL, &ev, 0, 100, &id, NULL), 0);
	e = (struct relay_version_entry){ .kind = 1, .version = 7, .applied_ms = 200,
	                                  .expiry_ms = 900 };
	CHECK_INT(relay_store_txn_begin(st, NULL, &txn), 0);
	CHECK_INT(relay_store_txn_begin(st, txn, &child), 0);
	CHECK_INT(relay_store_complete(st, child, id, 200), 0);
	CHECK_INT(relay_store_version_put(st, child, "r", "", &e, NULL), -RELAY_EINVAL);
	relay_store_txn_abort(st, child);
	CHECK_INT(relay_store_txn_commit(st, txn), 0);
	CHECK_INT(relay_store_get_event(st, NULL, id, &ev), 0);
	relay_event_clear(&ev);
	CHECK_INT(relay_store_txn_begin(st, NULL, &txn), 0);
	CHECK_INT(relay_store_complete(st, txn, id, 200), 0);
	CHECK_INT(relay_store_version_put(st, txn, "r", "c_9", &e, NULL), 0);
	CHECK_INT(relay_store_txn_commit(st, txn), 0);
	CHECK_INT(relay_store_get_event(st, NULL, id, &ev), -RELAY_ENOTFOUND);
	CHECK_INT(relay_store_version_get(st, NULL, "r", "c_9", &got), 0);
	CHECK_INT(got.version, 7);
	relay_store_close(st);

	/* It persists; a read-only open reads it. */
	CHECK_INT(relay_store_open(path_in("versions"), MAP, RELAY_STORE_RDONLY, &st), 0);
	if (!st)
		return;
	CHECK_INT(relay_store_version_get(st, NULL, "r", "c_9", &got), 0);
	CHECK_INT(got.version, 7);
	relay_store_close(st);
}

/* A store written before the versions table (fixture store/v1): read-only
 * it works without the table, read-write creates it. */
static void
test_versions_old_store(void)
{
	struct relay_store *st = NULL;
	struct relay_version_entry e = { .kind = 1, .version = 5, .applied_ms = 10,
	                                 .expiry_ms = 20 }, got;
	struct relay_store_stats s;
	char cmd[1200];
	size_t swept;

	if (mkdir(path_in("old"), 0750) != 0) {
		CHECK(0);
		return;
	}
	snprintf(cmd, sizeof(cmd), "cp store/v1/data.mdb '%s/'", path_in("old"));
	CHECK_INT(system(cmd), 0);
	CHECK_INT(relay_store_verify(path_in("old")), 0);
	CHECK_INT(relay_store_open(path_in("old"), MAP, RELAY_STORE_RDONLY, &st), 0);
	if (!st)
		return;
	CHECK_INT(relay_store_version_get(st, NULL, "r", "c_1", &got), -RELAY_ENOTFOUND);
	CHECK_INT(relay_store_stats(st, 0, &s), 0);
	CHECK_INT(s.versions, 0);
	CHECK_INT(s.events, 6);
	CHECK_INT(relay_store_sweep_versions(st, NULL, 100, 10, &swept), EACCES);
	relay_store_close(st);
	CHECK_INT(relay_store_open(path_in("old"), MAP, 0, &st), 0);
	if (!st)
		return;
	CHECK_INT(relay_store_version_put(st, NULL, "r", "c_1", &e, NULL), 0);
	CHECK_INT(relay_store_version_get(st, NULL, "r", "c_1", &got), 0);
	CHECK_INT(got.version, 5);
	relay_store_close(st);
	CHECK_INT(relay_store_verify(path_in("old")), 0);
}

int
main(void)
{
	base_make();
	RUN(test_open_create_close);
	RUN(test_schema);
	RUN(test_ingest_dedup);
	RUN(test_lanes);
	RUN(test_due_and_reschedule);
	RUN(test_counts_foreach_pause);
	RUN(test_reopen);
	RUN(test_compact);
	RUN(test_fault_hook);
	RUN(test_map_full);
	RUN(test_deferred);
	RUN(test_deferred_reopen);
	RUN(test_deferred_abort);
	RUN(test_deferred_other_process);
	RUN(test_deferred_damaged);
	RUN(test_versions);
	RUN(test_versions_old_store);
	base_remove();
	return check_done();
}
