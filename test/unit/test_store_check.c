/* relay_store_verify_start / relay_store_check_end: the quick check before
 * start-up goes on, the whole walk behind it. */
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "check.h"
#include "odoo_relay/error.h"
#include "odoo_relay/store.h"
#include "odoo_relay/store_check.h"

#define MAP (8u << 20)
#define EVENTS 5

static char base[256];

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
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

/* A store in dir with EVENTS events, ids 1..EVENTS. */
static void
make_store(const char *dir)
{
	struct relay_store *st;
	char body[64], key[16];

	CHECK_INT(relay_store_open(dir, MAP, RELAY_STORE_CREATE, &st), 0);
	if (!st)
		exit(2);
	for (int i = 1; i <= EVENTS; i++) {
		struct relay_event ev = { 0 };

		snprintf(body, sizeof(body), "{\"n\":%d}", i);
		snprintf(key, sizeof(key), "k%d", i);
		ev.source = "shop";
		ev.dedup_key = key;
		ev.body = (unsigned char *)body;
		ev.body_len = strlen(body);
		CHECK_INT(relay_store_ingest(st, NULL, &ev, 60000, 1000, NULL, NULL), 0);
	}
	relay_store_close(st);
}

/* Makes the record of id unreadable by this build: its version byte (the
 * first of the record, found by its id after it) becomes a newer one, in
 * every copy of it in the file (the live one, and those left in free pages
 * by earlier commits). Returns how many. */
static int
damage_record(const char *dir, uint64_t id)
{
	char path[600];
	unsigned char pat[10] = { 1, 0 }, *data;
	FILE *f;
	long size;
	int hits = 0;

	for (int b = 0; b < 8; b++)
		pat[2 + b] = (unsigned char)(id >> (56 - 8 * b));
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	if (!(f = fopen(path, "r+b")))
		return -1;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	data = malloc((size_t)size);
	fseek(f, 0, SEEK_SET);
	if (data && fread(data, 1, (size_t)size, f) == (size_t)size) {
		for (long off = 0; off + (long)sizeof(pat) <= size; off++) {
			if (memcmp(data + off, pat, sizeof(pat)) == 0) {
				fseek(f, off, SEEK_SET);
				fputc(0x7f, f);
				hits++;
			}
		}
	}
	free(data);
	fclose(f);
	return hits;
}

static void
test_healthy_and_missing(void)
{
	struct relay_store_check *c = (void *)1;

	CHECK_INT(relay_store_verify_start(path_in("none"), &c), 0);
	CHECK(c == NULL);
	make_store(path_in("ok"));
	CHECK_INT(relay_store_verify_start(path_in("ok"), &c), 0);
	CHECK(c != NULL);
	if (c) {
		CHECK(relay_store_check_fd(c) >= 0);
		CHECK_INT(relay_store_check_end(c, 0), 0);
	}
	CHECK_INT(relay_store_check_end(NULL, 0), 0);
	/* cancelled: the walk is stopped, no verdict is made up */
	CHECK_INT(relay_store_verify_start(path_in("ok"), &c), 0);
	if (c)
		CHECK_INT(relay_store_check_end(c, 1), 0);
}

/* A record in the middle of the backlog is the whole walk's finding: start-up
 * goes on, and the verdict that follows refuses the store. */
static void
test_damage_behind(void)
{
	struct relay_store_check *c = NULL;

	make_store(path_in("mid"));
	CHECK(damage_record(path_in("mid"), 3) >= 1);
	CHECK_INT(relay_store_verify(path_in("mid")), -RELAY_EVERSION);
	CHECK_INT(relay_store_verify_start(path_in("mid"), &c), 0);
	CHECK(c != NULL);
	if (c)
		CHECK_INT(relay_store_check_end(c, 0), -RELAY_EVERSION);
}

/* The records ingest and the status read (the first and the last) are the
 * quick check's: refused before start-up goes on. */
static void
test_damage_at_the_ends(void)
{
	struct relay_store_check *c = (void *)1;

	make_store(path_in("last"));
	CHECK(damage_record(path_in("last"), EVENTS) >= 1);
	CHECK_INT(relay_store_verify_start(path_in("last"), &c), -RELAY_EVERSION);
	CHECK(c == NULL);
	make_store(path_in("first"));
	CHECK(damage_record(path_in("first"), 1) >= 1);
	c = (void *)1;
	CHECK_INT(relay_store_verify_start(path_in("first"), &c), -RELAY_EVERSION);
	CHECK(c == NULL);
}

/* A data file shorter than its pages: refused by the quick check too. */
static void
test_truncated(void)
{
	struct relay_store_check *c = (void *)1;
	char path[600];
	struct stat sb;

	make_store(path_in("short"));
	snprintf(path, sizeof(path), "%s/data.mdb", path_in("short"));
	CHECK_INT(stat(path, &sb), 0);
	CHECK_INT(truncate(path, sb.st_size / 2), 0);
	CHECK_INT(relay_store_verify_start(path_in("short"), &c), -RELAY_ECORRUPT);
	CHECK(c == NULL);
}

/* Puts (or, with len 0, deletes) key in a database "pad" of dir's store,
 * one commit, with LMDB alone. */
static void
raw_put(const char *dir, const char *key, size_t len)
{
	static char big[200000];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { strlen(key), (void *)key }, v = { len, big };

	CHECK_INT(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 64);
	CHECK_INT(mdb_env_open(env, dir, 0, 0640), 0);
	CHECK_INT(mdb_txn_begin(env, NULL, 0, &txn), 0);
	CHECK_INT(mdb_dbi_open(txn, "pad", MDB_CREATE, &dbi), 0);
	CHECK_INT(len ? mdb_put(txn, dbi, &k, &v, 0) : mdb_del(txn, dbi, &k, NULL), 0);
	CHECK_INT(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* The first of the pages at the end of dir's data file that are all on
 * LMDB's free list (its last page + 1 if the last is in use), read with
 * LMDB alone; *psize its page size. */
static size_t
first_free_at_end(const char *dir, size_t *psize)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_envinfo info;
	MDB_stat ms;
	MDB_val k, v;
	unsigned char *free_pg;
	size_t first;

	CHECK_INT(mdb_env_create(&env), 0);
	CHECK_INT(mdb_env_open(env, dir, MDB_RDONLY, 0), 0);
	CHECK_INT(mdb_env_info(env, &info), 0);
	CHECK_INT(mdb_env_stat(env, &ms), 0);
	*psize = ms.ms_psize;
	free_pg = calloc(info.me_last_pgno + 1, 1);
	CHECK_INT(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	CHECK_INT(mdb_cursor_open(txn, 0, &cur), 0);
	while (free_pg && mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
		size_t n, pg;

		memcpy(&n, v.mv_data, sizeof(n));
		for (size_t i = 1; i <= n; i++) {
			memcpy(&pg, (char *)v.mv_data + i * sizeof(pg), sizeof(pg));
			if (pg <= info.me_last_pgno)
				free_pg[pg] = 1;
		}
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	for (first = info.me_last_pgno + 1; free_pg && first > 2 && free_pg[first - 1]; first--)
		;
	free(free_pg);
	return first;
}

/* A store whose last pages are free and not in the file: as LMDB leaves a
 * page that the transaction which took it from the end of the file gave
 * back before it committed, counted and never written. Here commits free
 * the pages at the end, and the file is cut to what is in use. Returns the
 * pages left in the file, and *psize their size. */
static size_t
make_free_tail(const char *dir, size_t *psize)
{
	char path[600];
	size_t first;
	struct stat sb;

	make_store(dir);
	raw_put(dir, "big", 200000); /* pages at the end of the file */
	raw_put(dir, "small", 1);
	raw_put(dir, "big", 0);
	raw_put(dir, "small", 1); /* copies the pages written last to freed ones */
	raw_put(dir, "small", 1);
	first = first_free_at_end(dir, psize);
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	CHECK_INT(stat(path, &sb), 0);
	CHECK((size_t)sb.st_size > first * *psize); /* else nothing to cut: the test proves nothing */
	CHECK_INT(truncate(path, (off_t)(first * *psize)), 0);
	return first;
}

static int
count_one(void *arg, const struct relay_event *ev)
{
	(void)ev;
	++*(int *)arg;
	return 0;
}

static int
count_events(const char *dir)
{
	struct relay_store *st;
	int n = 0;

	CHECK_INT(relay_store_open(dir, 0, RELAY_STORE_RDONLY, &st), 0);
	if (!st)
		return -1;
	CHECK_INT(relay_store_foreach_event(st, 0, count_one, &n), 0);
	relay_store_close(st);
	return n;
}

/* A data file that lacks only free pages is healthy: it opens, both checks
 * pass, and a write puts the pages back. One that lacks a page in use is
 * still refused, by the open as by the checks. */
static void
test_free_pages_past_the_end(void)
{
	struct relay_store_check *c = NULL;
	struct relay_store *st = (void *)1;
	struct relay_event ev = { 0 };
	const char *dir = path_in("freetail");
	char path[600];
	size_t first, psize;

	make_free_tail(dir, &psize);
	CHECK_INT(relay_store_verify(dir), 0);
	CHECK_INT(relay_store_verify_start(dir, &c), 0);
	CHECK(c != NULL);
	if (c)
		CHECK_INT(relay_store_check_end(c, 0), 0);
	CHECK_INT(count_events(dir), EVENTS);

	CHECK_INT(relay_store_open(dir, MAP, 0, &st), 0);
	ev.source = "shop";
	ev.dedup_key = "after";
	ev.body = (unsigned char *)"{}";
	ev.body_len = 2;
	if (st)
		CHECK_INT(relay_store_ingest(st, NULL, &ev, 60000, 1000, NULL, NULL), 0);
	relay_store_close(st);
	CHECK_INT(relay_store_verify(dir), 0);
	CHECK_INT(count_events(dir), EVENTS + 1);

	dir = path_in("usedtail");
	first = make_free_tail(dir, &psize);
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	CHECK_INT(truncate(path, (off_t)((first - 1) * psize)), 0); /* a page in use */
	CHECK_INT(relay_store_verify(dir), -RELAY_ECORRUPT);
	c = (void *)1;
	CHECK_INT(relay_store_verify_start(dir, &c), -RELAY_ECORRUPT);
	CHECK(c == NULL);
	st = (void *)1;
	CHECK_INT(relay_store_open(dir, 0, RELAY_STORE_RDONLY, &st), -RELAY_ECORRUPT);
	CHECK(st == NULL);
}

int
main(void)
{
	snprintf(base, sizeof(base), "%s/relay-check-XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 2;
	}
	RUN(test_healthy_and_missing);
	RUN(test_damage_behind);
	RUN(test_damage_at_the_ends);
	RUN(test_truncated);
	RUN(test_free_pages_past_the_end);
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return check_done();
}
