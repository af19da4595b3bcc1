/*
 * Unit tests of store_poll.c: hashes by (source, id), the known ids in a
 * range, state and request texts, a read-only store made before the table,
 * and what a tracked record costs on disk.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "odoo_relay/error.h"
#include "odoo_relay/store.h"
#include "odoo_relay/store_poll.h"

#define MAP (64u << 20)

static char base[] = "/tmp/relay-store-poll-XXXXXX";

static const char *
dir_of(const char *name)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", base, name);
	return path;
}

static void
test_hashes_and_ranges(void)
{
	struct relay_store *st = NULL;
	struct relay_poll_db db;
	MDB_txn *txn = NULL;
	unsigned char h[RELAY_POLL_HASH_LEN] = "abcdefg", got[RELAY_POLL_HASH_LEN];
	int64_t ids[16];
	size_t n;
	int added = -1;

	CHECK_INT(relay_store_open(dir_of("a"), MAP, RELAY_STORE_CREATE, &st), 0);
	if (!st)
		return;
	CHECK_INT(relay_poll_db_open(st, 1, &db), 0);
	CHECK_INT(db.present, 1);
	CHECK_INT(relay_store_txn_begin(st, NULL, &txn), 0);
	for (int64_t id = 1; id <= 10; id++) {
		h[7] = (unsigned char)id;
		CHECK_INT(relay_poll_db_hash_put(&db, txn, "src", id, h, &added), 0);
		CHECK_INT(added, 1);
	}
	/* another source, and a source that is a prefix of it, stay apart */
	CHECK_INT(relay_poll_db_hash_put(&db, txn, "src2", 3, h, NULL), 0);
	CHECK_INT(relay_poll_db_hash_put(&db, txn, "sr", 4, h, NULL), 0);
	CHECK_INT(relay_poll_db_hash_put(&db, txn, "src", 10, h, &added), 0);
	CHECK_INT(added, 0);
	CHECK_INT(relay_poll_db_hash_put(&db, txn, "", 1, h, NULL), -RELAY_EINVAL);
	CHECK_INT(relay_poll_db_text_put(&db, txn, RELAY_POLL_STATE, "src", "{\"cursor\":\"x\"}"), 0);
	CHECK_INT(relay_store_txn_commit(st, txn), 0);

	CHECK_INT(relay_store_read_begin(st, &txn), 0);
	CHECK_INT(relay_poll_db_hash_get(&db, txn, "src", 5, got), 0);
	CHECK_INT(got[7], 5);
	CHECK_INT(relay_poll_db_hash_get(&db, txn, "src", 11, got), -RELAY_ENOTFOUND);
	CHECK_INT(relay_poll_db_known(&db, txn, "src", 3, 7, ids, 16, &n), 0);
	CHECK_INT(n, 4);
	CHECK_INT(ids[0], 4);
	CHECK_INT(ids[3], 7);
	CHECK_INT(relay_poll_db_known(&db, txn, "src", 8, -1, ids, 16, &n), 0);
	CHECK_INT(n, 2);
	CHECK_INT(relay_poll_db_known(&db, txn, "src", 0, -1, ids, 3, &n), 0);
	CHECK_INT(n, 3); /* up to max; again from the last for more */
	CHECK_INT(relay_poll_db_known(&db, txn, "src2", 0, -1, ids, 16, &n), 0);
	CHECK_INT(n, 1);
	CHECK_INT(ids[0], 3);
	relay_store_txn_abort(st, txn);

	CHECK_INT(relay_store_txn_begin(st, NULL, &txn), 0);
	CHECK_INT(relay_poll_db_hash_del(&db, txn, "src", 5), 0);
	CHECK_INT(relay_poll_db_hash_del(&db, txn, "src", 5), -RELAY_ENOTFOUND);
	CHECK_INT(relay_poll_db_text_put(&db, txn, RELAY_POLL_REQUEST, "src", "{}"), 0);
	CHECK_INT(relay_poll_db_text_put(&db, txn, RELAY_POLL_REQUEST, "src", NULL), 0);
	CHECK_INT(relay_poll_db_text_put(&db, txn, RELAY_POLL_REQUEST, "src", NULL), 0);
	CHECK_INT(relay_store_txn_commit(st, txn), 0);
	relay_store_close(st);

	/* read-only, as odoo-relayctl status opens it */
	st = NULL;
	CHECK_INT(relay_store_open(dir_of("a"), MAP, RELAY_STORE_RDONLY, &st), 0);
	if (!st)
		return;
	CHECK_INT(relay_poll_db_open(st, 0, &db), 0);
	CHECK_INT(relay_store_read_begin(st, &txn), 0);
	{
		char *text = NULL;

		CHECK_INT(relay_poll_db_text_get(&db, txn, RELAY_POLL_STATE, "src", &text), 0);
		CHECK_STR(text, "{\"cursor\":\"x\"}");
		free(text);
		CHECK_INT(relay_poll_db_text_get(&db, txn, RELAY_POLL_REQUEST, "src", &text),
		          -RELAY_ENOTFOUND);
	}
	CHECK_INT(relay_poll_db_known(&db, txn, "src", 0, -1, ids, 16, &n), 0);
	CHECK_INT(n, 9);
	relay_store_txn_abort(st, txn);
	relay_store_close(st);
}

static int
request_commit(struct relay_store *st, const struct relay_poll_db *db, const char *text,
               uint64_t *seq)
{
	MDB_txn *txn = NULL;
	int rc = relay_store_txn_begin(st, NULL, &txn);

	if (rc)
		return rc;
	if ((rc = relay_poll_db_request_add(db, txn, "src", text, seq))) {
		relay_store_txn_abort(st, txn);
		return rc;
	}
	return relay_store_txn_commit(st, txn);
}

static int
request_next(struct relay_store *st, const struct relay_poll_db *db, uint64_t after,
             uint64_t *seq, char **text)
{
	MDB_txn *txn = NULL;
	int rc = relay_store_read_begin(st, &txn);

	if (rc)
		return rc;
	rc = relay_poll_db_request_next(db, txn, "src", after, seq, text);
	relay_store_txn_abort(st, txn);
	return rc;
}

static int
request_del(struct relay_store *st, const struct relay_poll_db *db, uint64_t seq)
{
	MDB_txn *txn = NULL;
	int rc = relay_store_txn_begin(st, NULL, &txn);

	if (rc)
		return rc;
	if ((rc = relay_poll_db_request_del(db, txn, "src", seq))) {
		relay_store_txn_abort(st, txn);
		return rc;
	}
	return relay_store_txn_commit(st, txn);
}

/*
 * The daemon takes a request in two steps: it reads it (the loop thread,
 * a read transaction), then deletes it (a writer operation, later).
 * odoo-relayctl may write a new request in between; the delete must remove
 * only the request taken, never the new one.
 */
static void
test_request_taken_while_another_comes(void)
{
	struct relay_store *st = NULL;
	struct relay_poll_db db;
	uint64_t a = 99, b = 99, c, d, seq = 99, taken;
	char *text = NULL;

	CHECK_INT(relay_store_open(dir_of("r"), MAP, RELAY_STORE_CREATE, &st), 0);
	if (!st)
		return;
	CHECK_INT(relay_poll_db_open(st, 1, &db), 0);
	/* relayctl: sync --id 7 */
	CHECK_INT(request_commit(st, &db, "{\"ids\":[7]}", &a), 0);
	/* the daemon reads it */
	CHECK_INT(request_next(st, &db, 0, &seq, &text), 0);
	CHECK_STR(text, "{\"ids\":[7]}");
	CHECK(seq == a);
	taken = seq;
	free(text);
	text = NULL;
	/* relayctl: sync --id 8, before the daemon's delete is committed */
	CHECK_INT(request_commit(st, &db, "{\"ids\":[8]}", &b), 0);
	CHECK(b != a);
	/* the daemon's delete of what it took */
	CHECK_INT(request_del(st, &db, taken), 0);
	/* the second request is still there, for the next tick */
	CHECK_INT(request_next(st, &db, taken, &seq, &text), 0);
	CHECK_STR(text, "{\"ids\":[8]}");
	CHECK(seq == b);
	free(text);
	text = NULL;
	CHECK_INT(request_del(st, &db, seq), 0);
	CHECK_INT(request_next(st, &db, 0, &seq, &text), -RELAY_ENOTFOUND);

	/* two written before the daemon looks: both run, oldest first, and
	 * numbers are never reused after a delete */
	CHECK_INT(request_commit(st, &db, "{}", &c), 0);
	CHECK_INT(request_commit(st, &db, "{\"since\":\"2026-12-05 10:00:00\"}", &d), 0);
	CHECK(c > b && d > c);
	CHECK_INT(request_next(st, &db, 0, &seq, &text), 0);
	CHECK_STR(text, "{}");
	CHECK(seq == c);
	free(text);
	text = NULL;
	/* read again before its delete came: the daemon asks past what it took */
	CHECK_INT(request_next(st, &db, c, &seq, &text), 0);
	CHECK(seq == d);
	free(text);
	text = NULL;
	CHECK_INT(request_del(st, &db, c), 0);
	CHECK_INT(request_del(st, &db, d), 0);
	CHECK_INT(request_del(st, &db, d), 0); /* absent: no error */
	CHECK_INT(request_next(st, &db, 0, &seq, &text), -RELAY_ENOTFOUND);
	relay_store_close(st);
}

/* A request left by an older odoo-relayctl, under the plain key: seq 0. */
static void
test_request_of_an_older_relayctl(void)
{
	struct relay_store *st = NULL;
	struct relay_poll_db db;
	MDB_txn *txn = NULL;
	uint64_t seq = 99, n = 0;
	char *text = NULL;

	CHECK_INT(relay_store_open(dir_of("o"), MAP, RELAY_STORE_CREATE, &st), 0);
	if (!st)
		return;
	CHECK_INT(relay_poll_db_open(st, 1, &db), 0);
	CHECK_INT(relay_store_txn_begin(st, NULL, &txn), 0);
	CHECK_INT(relay_poll_db_text_put(&db, txn, RELAY_POLL_REQUEST, "src", "{\"old\":1}"), 0);
	CHECK_INT(relay_store_txn_commit(st, txn), 0);
	CHECK_INT(request_commit(st, &db, "{\"new\":1}", &n), 0);
	CHECK(n > 0);
	CHECK_INT(request_next(st, &db, 0, &seq, &text), 0);
	CHECK_STR(text, "{\"old\":1}");
	CHECK(seq == 0);
	free(text);
	text = NULL;
	CHECK_INT(request_del(st, &db, 0), 0);
	CHECK_INT(request_next(st, &db, 0, &seq, &text), 0);
	CHECK_STR(text, "{\"new\":1}");
	CHECK(seq == n);
	free(text);
	relay_store_close(st);
}

/* A store made before the table, opened read-only: nothing, no error. */
static void
test_before_the_table(void)
{
	struct relay_store *st = NULL;
	struct relay_poll_db db;
	MDB_txn *txn = NULL;
	int64_t ids[4];
	size_t n = 9;
	char *text = NULL;

	CHECK_INT(relay_store_open(dir_of("b"), MAP, RELAY_STORE_CREATE, &st), 0);
	relay_store_close(st);
	st = NULL;
	CHECK_INT(relay_store_open(dir_of("b"), MAP, RELAY_STORE_RDONLY, &st), 0);
	if (!st)
		return;
	CHECK_INT(relay_poll_db_open(st, 0, &db), 0);
	CHECK_INT(db.present, 0);
	CHECK_INT(relay_store_read_begin(st, &txn), 0);
	CHECK_INT(relay_poll_db_known(&db, txn, "src", 0, -1, ids, 4, &n), 0);
	CHECK_INT(n, 0);
	CHECK_INT(relay_poll_db_text_get(&db, txn, RELAY_POLL_STATE, "src", &text), -RELAY_ENOTFOUND);
	relay_store_txn_abort(st, txn);
	relay_store_close(st);
}

/* Bytes per tracked record: 100 000 hashes of a 12-byte source. */
static void
test_bytes_per_record(void)
{
	struct relay_store *st = NULL;
	struct relay_poll_db db;
	MDB_txn *txn = NULL;
	unsigned char h[RELAY_POLL_HASH_LEN] = { 0 };
	uint64_t entries = 0, bytes = 0;

	CHECK_INT(relay_store_open(dir_of("c"), MAP, RELAY_STORE_CREATE, &st), 0);
	if (!st)
		return;
	CHECK_INT(relay_poll_db_open(st, 1, &db), 0);
	CHECK_INT(relay_store_txn_begin(st, NULL, &txn), 0);
	/* ids as Odoo gives them: ascending, the way a first sync adds them */
	for (int64_t id = 1; id <= 100000; id++) {
		memcpy(h, &id, sizeof(id));
		if (relay_poll_db_hash_put(&db, txn, "partners_out", id, h, NULL))
			break;
	}
	CHECK_INT(relay_poll_db_stat(&db, txn, &entries, &bytes), 0);
	CHECK_INT(relay_store_txn_commit(st, txn), 0);
	CHECK_INT(entries, 100000);
	printf("poll table: %llu entries, %llu bytes of pages, %.1f bytes per tracked record\n",
	       (unsigned long long)entries, (unsigned long long)bytes,
	       entries ? (double)bytes / (double)entries : 0.0);
	/* the bound store_poll.h documents */
	CHECK(bytes / entries >= 40 && bytes / entries <= 80);
	relay_store_close(st);
}

int
main(void)
{
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_hashes_and_ranges);
	RUN(test_request_taken_while_another_comes);
	RUN(test_request_of_an_older_relayctl);
	RUN(test_before_the_table);
	RUN(test_bytes_per_record);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", base);
	}
	return check_done();
}
