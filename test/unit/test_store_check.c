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

#include "check.h"
#include "odoo_relay/error.h"
#include "odoo_relay/store.h"

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
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return check_done();
}
