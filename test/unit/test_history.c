/* Unit tests for lib/history.c and lib/hist_record.c: the history, its
 * trace index, its sweep and its giving way to new events, the audit trail
 * and edited bodies, in temporary stores. */
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "odoo_relay/error.h"
#include "odoo_relay/history.h"
#include "odoo_relay/store.h"
#include "odoo_relay/store_check.h"

static char dir[256];

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static struct relay_store *
fresh(size_t map)
{
	struct relay_store *st = NULL;

	if (dir[0])
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	snprintf(dir, sizeof(dir), "%s/relay-hist-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(2);
	}
	CHECK_INT(relay_store_open(dir, map, 0, &st), 0);
	return st;
}

static uint64_t
ingest(struct relay_store *st, const char *dedup, const char *lane, const char *body, int64_t now)
{
	struct relay_event ev = { .source = "shop", .topic = "customers/update", .lane = (char *)lane,
		                  .dedup_key = (char *)dedup, .body = (unsigned char *)body,
		                  .body_len = strlen(body) };
	uint64_t id = 0;
	int dup = 0;

	CHECK_INT(relay_store_ingest(st, NULL, &ev, 3600000, now, &id, &dup), 0);
	return id;
}

static struct relay_hist_settle
settle(int64_t retention_ms, const char *xid, int64_t odoo_id)
{
	return (struct relay_hist_settle){
		.outcome = RELAY_HIST_DELIVERED, .destination = "odoo", .batch_id = 3, .batch_size = 2,
		.batch_row = 1, .http_status = 200, .xid = xid, .odoo_model = "res.partner",
		.odoo_id = odoo_id, .note = "delivered", .retention_ms = retention_ms, .keep_body = 1,
	};
}

static void
test_codec(void)
{
	struct relay_hist_entry e = { .outcome = RELAY_HIST_STALE, .settled_ms = 5, .expiry_ms = 9,
		                      .destination = "odoo", .batch_row = -1, .http_status = 200,
		                      .xid = "m.n", .note = "x", .body_kept = 0 };
	struct relay_hist_entry d;
	unsigned char *buf;
	size_t len;

	e.ev.id = 7;
	e.ev.source = "s";
	e.ev.body = (unsigned char *)"{\"a\":1}";
	e.ev.body_len = 7;
	CHECK_INT(relay_hist_digest(e.ev.body, e.ev.body_len, e.digest), 0);
	CHECK_INT(relay_hist_encode(&e, &buf, &len), 0);
	CHECK_INT(relay_hist_decode(buf, len, &d), 0);
	CHECK_INT(d.outcome, RELAY_HIST_STALE);
	CHECK_INT(d.batch_row, -1);
	CHECK_STR(d.xid, "m.n");
	CHECK(d.ev.body == NULL); /* not kept: the digest only */
	CHECK(memcmp(d.digest, e.digest, 32) == 0);
	relay_hist_clear(&d);
	buf[0] = RELAY_HIST_FORMAT + 1; /* a newer format is refused, not guessed */
	CHECK_INT(relay_hist_decode(buf, len, &d), -RELAY_EVERSION);
	buf[0] = RELAY_HIST_FORMAT;
	CHECK_INT(relay_hist_decode(buf, len - 1, &d), -RELAY_ECORRUPT);
	{
		/* a byte after the record: refused, and nothing leaks (ASan) */
		unsigned char *more = malloc(len + 1);
		memcpy(more, buf, len);
		more[len] = 0;
		CHECK_INT(relay_hist_decode(more, len + 1, &d), -RELAY_ECORRUPT);
		free(more);
	}
	free(buf);
	/* an entry without its body that holds one is not canonical */
	e.body_kept = 1;
	CHECK_INT(relay_hist_encode(&e, &buf, &len), 0);
	buf[2] = 0; /* flags: body not kept */
	CHECK_INT(relay_hist_decode(buf, len, &d), -RELAY_ECORRUPT);
	free(buf);

	uint64_t ids[] = { 4, 5 };
	struct relay_audit_entry a = { .at_ms = 11, .uid = 1000, .user = "alice", .verb = "dead drop",
		                       .what = "4 5 --yes", .count = 2, .ids = ids, .n_ids = 2 };
	struct relay_audit_entry ad;
	CHECK_INT(relay_audit_encode(&a, &buf, &len), 0);
	CHECK_INT(relay_audit_decode(buf, len, &ad), 0);
	CHECK_STR(ad.user, "alice");
	CHECK_INT(ad.n_ids, 2);
	CHECK_INT(ad.ids[1], 5);
	relay_audit_clear(&ad);
	free(buf);
}

/* An event whose dedup key is a digest of its body (Odoo's posts) gets no
 * trace key for it; its lane and record still find it, and the sweep
 * removes it whole. */
static void
test_digest_dedup_not_traced(void)
{
	struct relay_store *st = fresh(8u << 20);
	struct relay_hist_settle s;
	uint64_t a, ids[8];
	size_t n = 0, swept = 0;
	int kept = 0, more = 0;

	a = ingest(st, "sha256:0a1b", "sale.order/42", "{\"_id\":42}", 1000);
	s = settle(10000, NULL, 42);
	s.dedup_digest = 1;
	CHECK_INT(relay_history_complete(st, NULL, a, &s, 2000, &kept), 0);
	CHECK_INT(kept, 1);
	CHECK_INT(relay_history_find(st, NULL, RELAY_TRACE_DEDUP, "sha256:0a1b", ids, 8, &n, &more),
	          0);
	CHECK_INT(n, 0);
	CHECK_INT(relay_history_find(st, NULL, RELAY_TRACE_LANE, "sale.order/42", ids, 8, &n, &more),
	          0);
	CHECK(n == 1 && ids[0] == a);
	CHECK_INT(relay_history_sweep(st, NULL, 20000, 100, &swept), 0);
	CHECK_INT(swept, 1);
	CHECK_INT(relay_history_find(st, NULL, RELAY_TRACE_LANE, "sale.order/42", ids, 8, &n, &more),
	          0);
	CHECK_INT(n, 0);
	relay_store_close(st);
}

static void
test_complete_find_sweep(void)
{
	struct relay_store *st = fresh(8u << 20);
	struct relay_hist_entry e;
	struct relay_hist_settle s;
	uint64_t a, b, c, ids[8];
	size_t n = 0, swept = 0;
	int kept = 0, more = 0;

	a = ingest(st, "wh-1", "42", "{\"id\":42}", 1000);
	b = ingest(st, "wh-2", "42", "{\"id\":42,\"v\":2}", 1001);
	c = ingest(st, "wh-3", "7", "{\"id\":7}", 1002);
	s = settle(10000, "odoo_relay.c_42", 5);
	CHECK_INT(relay_history_complete(st, NULL, a, &s, 2000, &kept), 0);
	CHECK_INT(kept, 1);
	/* the lane moved on, as relay_store_complete does */
	CHECK_INT(relay_store_lane_ids(st, NULL, "shop", "42", ids, 8, &n), 0);
	CHECK_INT(n, 1);
	CHECK_INT(ids[0], b);
	CHECK_INT(relay_history_complete(st, NULL, b, &s, 3000, &kept), 0);
	s = settle(50000, "odoo_relay.c_7", 9);
	s.outcome = RELAY_HIST_SUPERSEDED;
	CHECK_INT(relay_history_complete(st, NULL, c, &s, 2500, &kept), 0);
	CHECK_INT(relay_history_complete(st, NULL, c, &s, 2500, &kept), -RELAY_ENOTFOUND);

	CHECK_INT(relay_history_get(st, NULL, a, &e), 0);
	CHECK_INT(e.outcome, RELAY_HIST_DELIVERED);
	CHECK_INT(e.settled_ms, 2000);
	CHECK_INT(e.expiry_ms, 12000);
	CHECK_STR(e.destination, "odoo");
	CHECK_INT(e.batch_id, 3);
	CHECK_INT(e.odoo_id, 5);
	CHECK_STR((const char *)e.ev.body, "{\"id\":42}");
	relay_hist_clear(&e);

	/* by each kind of key */
	CHECK_INT(relay_history_find(st, NULL, RELAY_TRACE_DEDUP, "wh-2", ids, 8, &n, &more), 0);
	CHECK(n == 1 && ids[0] == b);
	CHECK_INT(relay_history_find(st, NULL, RELAY_TRACE_LANE, "42", ids, 8, &n, &more), 0);
	CHECK(n == 2 && ids[0] == a && ids[1] == b);
	CHECK_INT(relay_history_find(st, NULL, RELAY_TRACE_LANE, "4", ids, 8, &n, &more), 0);
	CHECK_INT(n, 0); /* a prefix of a key is not the key */
	CHECK_INT(relay_history_find(st, NULL, RELAY_TRACE_XID, "odoo_relay.c_7", ids, 8, &n, &more), 0);
	CHECK(n == 1 && ids[0] == c);
	CHECK_INT(relay_history_find(st, NULL, RELAY_TRACE_ODOO, "res.partner,5", ids, 1, &n, &more), 0);
	CHECK(n == 1 && more == 1);
	/* the next page starts after the last id of the one before */
	CHECK_INT(relay_history_find_from(st, NULL, RELAY_TRACE_LANE, "42", 0, ids, 1, &n, &more), 0);
	CHECK(n == 1 && ids[0] == a && more == 1);
	CHECK_INT(relay_history_find_from(st, NULL, RELAY_TRACE_LANE, "42", ids[0] + 1, ids, 1, &n,
	                                  &more), 0);
	CHECK(n == 1 && ids[0] == b && more == 0);

	/* the sweep: a and b expire at 12000 and 13000, c at 52500 */
	CHECK_INT(relay_history_sweep(st, NULL, 12000, 100, &swept), 0);
	CHECK_INT(swept, 1);
	CHECK_INT(relay_history_get(st, NULL, a, &e), -RELAY_ENOTFOUND);
	CHECK_INT(relay_history_sweep(st, NULL, 60000, 1, &swept), 0);
	CHECK_INT(swept, 1); /* bounded */
	CHECK_INT(relay_history_sweep(st, NULL, 60000, 100, &swept), 0);
	CHECK_INT(swept, 1);
	CHECK_INT(relay_history_find(st, NULL, RELAY_TRACE_LANE, "42", ids, 8, &n, &more), 0);
	CHECK_INT(n, 0); /* its trace keys went with it */
	uint64_t entries, bytes;
	CHECK_INT(relay_history_stats(st, &entries, &bytes), 0);
	CHECK_INT(entries, 0);

	/* retention 0: completed, no entry */
	a = ingest(st, "wh-9", NULL, "{}", 70000);
	s = settle(0, NULL, 0);
	CHECK_INT(relay_history_complete(st, NULL, a, &s, 70000, &kept), 0);
	CHECK_INT(kept, 0);
	CHECK_INT(relay_history_get(st, NULL, a, &e), -RELAY_ENOTFOUND);
	CHECK_INT(relay_store_get_event(st, NULL, a, &e.ev), -RELAY_ENOTFOUND);
	relay_store_close(st);
}

static void
test_edits_and_audit(void)
{
	struct relay_store *st = fresh(8u << 20);
	struct relay_event ev = { 0 };
	struct relay_edit *v = NULL;
	struct relay_hist_settle s;
	size_t n = 0;
	uint32_t version = 0;
	uint64_t id, seq = 0;

	id = ingest(st, "wh-1", "1", "{\"email\":\"bad\"}", 1000);
	CHECK_INT(relay_store_get_event(st, NULL, id, &ev), 0);
	ev.dead_reason = strdup("bad email");
	CHECK_INT(relay_store_bury(st, NULL, &ev, RELAY_LANE_HOLD, 1500), 0);
	relay_event_clear(&ev);
	CHECK_INT(relay_edit_add(st, NULL, 999, "{}", 2, "alice", 2000, &version), -RELAY_ENOTFOUND);
	CHECK_INT(relay_edit_add(st, NULL, id, "{\"email\":\"ok\"}", 14, "alice", 2000, &version), 0);
	CHECK_INT(version, 2);
	CHECK_INT(relay_edit_add(st, NULL, id, "{\"email\":\"ok2\"}", 15, "bob", 3000, &version), 0);
	CHECK_INT(version, 3);
	CHECK_INT(relay_store_get_dead(st, NULL, id, &ev), 0);
	CHECK_STR((const char *)ev.body, "{\"email\":\"ok2\"}");
	relay_event_clear(&ev);
	CHECK_INT(relay_edit_list(st, NULL, id, &v, &n, NULL), 0);
	CHECK_INT(n, 3);
	if (n == 3) {
		CHECK_STR((const char *)v[0].body, "{\"email\":\"bad\"}");
		CHECK(v[0].user == NULL);
		CHECK_STR(v[2].user, "bob");
		CHECK_INT(v[1].version, 2);
	}
	for (size_t i = 0; i < n; i++)
		relay_edit_clear(&v[i]);
	free(v);

	/* dropped into the history; the edits stay with it, and go with it */
	s = settle(1000, NULL, 0);
	s.outcome = RELAY_HIST_DROPPED;
	CHECK_INT(relay_history_drop(st, NULL, id, &s, 4000, NULL), 0);
	CHECK_INT(relay_store_get_dead(st, NULL, id, &ev), -RELAY_ENOTFOUND);
	CHECK_INT(relay_edit_list(st, NULL, id, &v, &n, NULL), 0);
	CHECK_INT(n, 3);
	for (size_t i = 0; i < n; i++)
		relay_edit_clear(&v[i]);
	free(v);
	CHECK_INT(relay_history_sweep(st, NULL, 5000, 100, NULL), 0);
	CHECK_INT(relay_edit_list(st, NULL, id, &v, &n, NULL), 0);
	CHECK_INT(n, 0);

	struct relay_audit_entry a = { .at_ms = 1, .user = "alice", .verb = "pause", .what = "" };
	CHECK_INT(relay_audit_add(st, NULL, &a, &seq), 0);
	CHECK_INT(seq, 1);
	CHECK_INT(relay_audit_add(st, NULL, &a, &seq), 0);
	CHECK_INT(seq, 2);
	relay_store_close(st);
}

/* A store filled by the history keeps taking new events: the history
 * stops short of its floor and gives way. */
static void
test_full_store_keeps_ingesting(void)
{
	struct relay_store *st = fresh(4u << 20);
	char body[2048];
	uint64_t evicted = 0, skipped = 0, entries, bytes;
	int ok = 1;

	memset(body, 'x', sizeof(body) - 1);
	body[0] = '"';
	body[sizeof(body) - 2] = '"';
	body[sizeof(body) - 1] = '\0';
	for (int i = 0; i < 4000 && ok; i++) {
		struct relay_hist_settle s = settle(86400000, NULL, 0);
		char dk[32];
		uint64_t id;
		struct relay_event ev = { .source = "shop", .dedup_key = dk, .body = (unsigned char *)body,
			                  .body_len = strlen(body) };
		int dup;

		snprintf(dk, sizeof(dk), "k%d", i);
		if (relay_store_ingest(st, NULL, &ev, 0, 1000 + i, &id, &dup) != 0) {
			ok = 0;
			break;
		}
		if (relay_history_complete(st, NULL, id, &s, 1000 + i, NULL) != 0)
			ok = 0;
	}
	CHECK(ok); /* 4000 events of 2 KiB through a 4 MiB store */
	relay_history_gave_way(st, &evicted, &skipped);
	CHECK(skipped > 0 && evicted > 0);
	CHECK_INT(relay_history_stats(st, &entries, &bytes), 0);
	CHECK(entries > 0 && bytes < (4u << 20));
	/* It gives way a batch at a time, not more: each entry it did not
	 * keep came with one full batch evicted (no draining to nothing). */
	CHECK(skipped * RELAY_HISTORY_EVICT <= evicted + RELAY_HISTORY_EVICT);
	/* and the queue itself still takes events up to its own reserve */
	int n = 0;
	for (; n < 200; n++) {
		struct relay_event ev = { .source = "shop", .body = (unsigned char *)body,
			                  .body_len = strlen(body) };
		uint64_t id;
		if (relay_store_ingest(st, NULL, &ev, 0, 9000, &id, NULL) != 0)
			break;
	}
	CHECK_INT(n, 200);
	relay_store_close(st);
}

/* A store written before the history's tables (fixture store/v1, schema 1,
 * record version 1): read-only it reads as an empty history, read-write the
 * tables are created and its queued events and dead letters go into it. */
static void
test_old_store(void)
{
	struct relay_store *st = NULL;
	struct relay_hist_entry e;
	struct relay_hist_settle s = settle(1000, NULL, 0);
	uint64_t first = 0, entries, bytes;
	char cmd[600];
	int kept = 0;

	relay_store_close(fresh(8u << 20)); /* a new directory; the fixture goes in it */
	snprintf(cmd, sizeof(cmd), "cp store/v1/data.mdb '%s/'", dir);
	CHECK_INT(system(cmd), 0);
	CHECK_INT(relay_store_open(dir, 8u << 20, RELAY_STORE_RDONLY, &st), 0);
	if (!st)
		return;
	CHECK_INT(relay_history_get(st, NULL, 1, &e), -RELAY_ENOTFOUND);
	CHECK_INT(relay_history_stats(st, &entries, &bytes), 0);
	CHECK_INT(entries, 0);
	struct relay_audit_entry a = { .user = "x", .verb = "pause" };
	CHECK_INT(relay_audit_add(st, NULL, &a, NULL), EACCES);
	relay_store_close(st);

	CHECK_INT(relay_store_open(dir, 8u << 20, 0, &st), 0);
	if (!st)
		return;
	struct relay_due d;
	size_t n = 0;
	CHECK_INT(relay_store_scan_due(st, NULL, INT64_MAX, NULL, &d, 1, &n), 0);
	if (n == 1)
		first = d.id;
	CHECK(first > 0);
	CHECK_INT(relay_history_complete(st, NULL, first, &s, 5000, &kept), 0);
	CHECK_INT(kept, 1);
	CHECK_INT(relay_history_get(st, NULL, first, &e), 0);
	CHECK(e.ev.body_len > 0);
	relay_hist_clear(&e);
	relay_store_close(st);
	CHECK_INT(relay_store_verify(dir), 0);
}

/* Puts (k, v) into table name of st directly, as damage would leave it. */
static void
plant(struct relay_store *st, const char *name, const void *k, size_t klen, const void *v,
      size_t vlen)
{
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	MDB_val kv = { klen, (void *)k }, vv = { vlen, (void *)v };

	CHECK_INT(relay_store_txn_begin(st, NULL, &txn), 0);
	CHECK_INT(mdb_dbi_open(txn, name, 0, &dbi), 0);
	CHECK_INT(mdb_put(txn, dbi, &kv, &vv, 0), 0);
	CHECK_INT(relay_store_txn_commit(st, txn), 0);
}

static int
count_entry(void *arg, const struct relay_hist_entry *e)
{
	(void)e;
	(*(int *)arg)++;
	return 0;
}

static int
count_audit(void *arg, const struct relay_audit_entry *e)
{
	(void)e;
	(*(int *)arg)++;
	return 0;
}

/* A damaged expiry row, history record or audit record is removed (or
 * skipped) and counted by the sweep, which goes on past it; the walks
 * hand over every entry that reads and count those that do not. */
static void
test_damaged_entries(void)
{
	struct relay_store *st = fresh(8u << 20);
	struct relay_hist_settle s = settle(1000, NULL, 0);
	unsigned char bad_key[5] = { 0, 0, 0, 0, 1 }, junk[3] = { 1, 2, 3 }, k8[8] = { 0 };
	uint64_t a, b, c, damaged = 0, entries, bytes;
	size_t swept = 0;
	int seen = 0;

	a = ingest(st, "wh-1", "L", "{\"id\":1}", 1000);
	b = ingest(st, "wh-2", "L", "{\"id\":2}", 1001);
	c = ingest(st, "wh-3", "L", "{\"id\":3}", 1002);
	CHECK_INT(relay_history_complete(st, NULL, a, &s, 2000, NULL), 0);
	CHECK_INT(relay_history_complete(st, NULL, b, &s, 2001, NULL), 0);
	CHECK_INT(relay_history_complete(st, NULL, c, &s, 2002, NULL), 0);
	/* an expiry row of 5 bytes sorts before every real one */
	plant(st, "history_exp", bad_key, sizeof(bad_key), NULL, 0);
	/* entry b's record no longer decodes */
	k8[7] = (unsigned char)b;
	plant(st, "history", k8, 8, junk, sizeof(junk));

	/* the walk shows a and c, and says one did not read */
	CHECK_INT(relay_history_foreach(st, 0, count_entry, &seen, &damaged), 0);
	CHECK_INT(seen, 2);
	CHECK_INT(damaged, 1);

	/* audit: the middle one of three records no longer decodes */
	struct relay_audit_entry au = { .at_ms = 1, .user = "alice", .verb = "pause", .what = "" };
	uint64_t seq = 0;
	for (int i = 0; i < 3; i++)
		CHECK_INT(relay_audit_add(st, NULL, &au, &seq), 0);
	k8[7] = (unsigned char)(seq - 1);
	plant(st, "audit", k8, 8, junk, sizeof(junk));
	seen = 0;
	damaged = 0;
	CHECK_INT(relay_audit_foreach(st, count_audit, &seen, &damaged), 0);
	CHECK_INT(seen, 2);
	CHECK_INT(damaged, 1);

	/* the sweep goes past the damage: everything expired goes */
	CHECK_INT(relay_history_sweep(st, NULL, 10000, 100, &swept), 0);
	CHECK_INT(swept, 3);
	CHECK_INT(relay_history_stats(st, &entries, &bytes), 0);
	CHECK_INT(entries, 0);
	CHECK_INT(relay_history_damaged(st), 2); /* the row and the record */
	CHECK_INT(relay_history_sweep(st, NULL, 10000, 100, &swept), 0);
	CHECK_INT(swept, 0);
	/* the audit records, a year later: the damaged one goes with the old */
	CHECK_INT(relay_history_sweep(st, NULL, RELAY_AUDIT_KEEP_MS + 10, 100, &swept), 0);
	seen = 0;
	damaged = 0;
	CHECK_INT(relay_audit_foreach(st, count_audit, &seen, &damaged), 0);
	CHECK_INT(seen, 0);
	CHECK_INT(damaged, 0);
	CHECK_INT(relay_history_damaged(st), 3);
	relay_store_close(st);
}

static int
fail_op(void *arg, const char *op)
{
	return strcmp(op, (const char *)arg) == 0 ? EIO : 0;
}

static int
audit_count(struct relay_store *st)
{
	int n = 0;

	CHECK_INT(relay_audit_foreach(st, count_audit, &n, NULL), 0);
	return n;
}

/* An operator's change and its audit record commit in one transaction: a
 * failed commit leaves neither; a record that cannot be written leaves the
 * change to commit alone, and says so. */
static void
test_audit_commit(void)
{
	struct relay_store *st = fresh(8u << 20);
	struct relay_event ev = { 0 };
	struct relay_audit_entry a = { .at_ms = 5, .user = "alice", .verb = "dead replay",
		                       .what = "1", .count = 1 };
	MDB_txn *txn = NULL;
	uint64_t id, seq = 9;
	int arc = 0;

	id = ingest(st, "wh-1", "1", "{}", 1000);
	CHECK_INT(relay_store_get_event(st, NULL, id, &ev), 0);
	ev.dead_reason = strdup("bad");
	CHECK_INT(relay_store_bury(st, NULL, &ev, RELAY_LANE_HOLD, 1500), 0);
	relay_event_clear(&ev);
	a.ids = &id;
	a.n_ids = 1;

	/* the commit fails after the change and the record are in txn */
	relay_store_set_fault(st, fail_op, "commit");
	CHECK_INT(relay_store_txn_begin(st, NULL, &txn), 0);
	CHECK_INT(relay_store_replay(st, txn, id, 2000), 0);
	CHECK(relay_audit_commit(st, txn, &a, &seq, &arc) != 0);
	relay_store_set_fault(st, NULL, NULL);
	CHECK_INT(seq, 0);
	CHECK_INT(relay_store_get_dead(st, NULL, id, &ev), 0); /* still dead */
	relay_event_clear(&ev);
	CHECK_INT(audit_count(st), 0); /* and no record */

	/* the record cannot be written: the change commits alone */
	relay_store_set_fault(st, fail_op, "audit");
	CHECK_INT(relay_store_txn_begin(st, NULL, &txn), 0);
	CHECK_INT(relay_store_replay(st, txn, id, 2000), 0);
	CHECK_INT(relay_audit_commit(st, txn, &a, &seq, &arc), 0);
	relay_store_set_fault(st, NULL, NULL);
	CHECK(arc != 0);
	CHECK_INT(relay_store_get_dead(st, NULL, id, &ev), -RELAY_ENOTFOUND);
	CHECK_INT(audit_count(st), 0);

	/* and as it should go: both */
	CHECK_INT(relay_store_get_event(st, NULL, id, &ev), 0);
	ev.dead_reason = strdup("bad again");
	CHECK_INT(relay_store_bury(st, NULL, &ev, RELAY_LANE_HOLD, 2500), 0);
	relay_event_clear(&ev);
	CHECK_INT(relay_store_txn_begin(st, NULL, &txn), 0);
	CHECK_INT(relay_store_replay(st, txn, id, 3000), 0);
	CHECK_INT(relay_audit_commit(st, txn, &a, &seq, &arc), 0);
	CHECK_INT(arc, 0);
	CHECK(seq > 0);
	CHECK_INT(relay_store_get_dead(st, NULL, id, &ev), -RELAY_ENOTFOUND);
	CHECK_INT(audit_count(st), 1);
	relay_store_close(st);
}

/* Entries settled out of id and of expiry order are each kept, found and
 * swept in expiry order: the history's keys go in with MDB_APPEND when they
 * sort last and the ordinary way when not. A completion that fails at the
 * store ("complete") leaves the event queued and writes no entry. */
static void
test_out_of_order(void)
{
	struct relay_store *st = fresh(8u << 20);
	struct relay_hist_settle s = settle(0, NULL, 0);
	struct relay_hist_entry e;
	struct relay_event ev = { 0 };
	uint64_t id[4];
	/* settled in the order 2, 0, 3, 1, expiring at 9000, 7000, 8000, 7000 */
	static const int order[4] = { 2, 0, 3, 1 };
	static const int64_t expiry[4] = { 7000, 7000, 9000, 8000 };
	size_t swept = 0;
	int kept = 0;

	for (int i = 0; i < 4; i++) {
		char dedup[16];

		snprintf(dedup, sizeof(dedup), "o-%d", i);
		id[i] = ingest(st, dedup, NULL, "{}", 1000 + i);
	}
	relay_store_set_fault(st, fail_op, "complete");
	s.retention_ms = 1000;
	CHECK(relay_history_complete(st, NULL, id[0], &s, 5000, &kept) != 0);
	relay_store_set_fault(st, NULL, NULL);
	CHECK_INT(kept, 0);
	CHECK_INT(relay_history_get(st, NULL, id[0], &e), -RELAY_ENOTFOUND);
	CHECK_INT(relay_store_get_event(st, NULL, id[0], &ev), 0); /* still queued */
	relay_event_clear(&ev);

	for (int k = 0; k < 4; k++) {
		int i = order[k];

		s.retention_ms = expiry[i] - 5000;
		CHECK_INT(relay_history_complete(st, NULL, id[i], &s, 5000, &kept), 0);
		CHECK_INT(kept, 1);
	}
	for (int i = 0; i < 4; i++) {
		CHECK_INT(relay_history_get(st, NULL, id[i], &e), 0);
		CHECK_INT(e.ev.id, id[i]);
		CHECK_INT(e.expiry_ms, expiry[i]);
		relay_hist_clear(&e);
		CHECK_INT(relay_store_get_event(st, NULL, id[i], &ev), -RELAY_ENOTFOUND);
	}
	CHECK_INT(relay_history_sweep(st, NULL, 7000, 100, &swept), 0);
	CHECK_INT(swept, 2);
	CHECK_INT(relay_history_get(st, NULL, id[0], &e), -RELAY_ENOTFOUND);
	CHECK_INT(relay_history_get(st, NULL, id[1], &e), -RELAY_ENOTFOUND);
	CHECK_INT(relay_history_sweep(st, NULL, 8000, 100, &swept), 0);
	CHECK_INT(swept, 1);
	CHECK_INT(relay_history_get(st, NULL, id[3], &e), -RELAY_ENOTFOUND);
	CHECK_INT(relay_history_get(st, NULL, id[2], &e), 0);
	relay_hist_clear(&e);
	relay_store_close(st);
}

int
main(void)
{
	RUN(test_codec);
	RUN(test_complete_find_sweep);
	RUN(test_digest_dedup_not_traced);
	RUN(test_edits_and_audit);
	RUN(test_full_store_keeps_ingesting);
	RUN(test_old_store);
	RUN(test_damaged_entries);
	RUN(test_audit_commit);
	RUN(test_out_of_order);
	if (dir[0])
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return check_done();
}
