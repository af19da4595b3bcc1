/*
 * relay_store_live_bytes, which odoo-relayctl compact --dry-run reports: it
 * must predict the size of the compacted copy relay_store_compact writes,
 * and fall below map_used once deletions have left free pages.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "odoo_relay/error.h"
#include "odoo_relay/store.h"

#define MAP (16u << 20)
#define N_EVENTS 200

static char base[] = "/tmp/relayctl-space-XXXXXX";

static const char *
path_in(const char *name)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s/%s", base, name);
	return buf;
}

static off_t
file_size(const char *dir)
{
	char p[300];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/data.mdb", dir);
	return stat(p, &sb) == 0 ? sb.st_size : -1;
}

static void
remove_store(const char *dir)
{
	char p[300];

	snprintf(p, sizeof(p), "%s/data.mdb", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/lock.mdb", dir);
	unlink(p);
	rmdir(dir);
}

static int
ingest_many(struct relay_store *st, int n)
{
	static char body[2000];
	char key[32];

	memset(body, 'x', sizeof(body));
	for (int i = 0; i < n; i++) {
		struct relay_event ev = { 0 };

		snprintf(key, sizeof(key), "k-%d", i);
		ev.source = "shop";
		ev.topic = "customers/create";
		ev.dedup_key = key;
		ev.body = (unsigned char *)body;
		ev.body_len = sizeof(body);
		if (relay_store_ingest(st, NULL, &ev, 0, 1000 + i, NULL, NULL))
			return -1;
	}
	return 0;
}

static void
test_live_bytes_predicts_the_copy(void)
{
	struct relay_store *st;
	struct relay_store_stats s;
	size_t empty, full, after;
	char store[256], copy[256];

	snprintf(store, sizeof(store), "%s", path_in("store"));
	snprintf(copy, sizeof(copy), "%s", path_in("copy"));
	CHECK_INT(relay_store_open(store, MAP, RELAY_STORE_CREATE, &st), 0);
	if (!st)
		return;
	CHECK_INT(relay_store_live_bytes(st, &empty), 0);
	CHECK(empty > 0);
	CHECK_INT(ingest_many(st, N_EVENTS), 0);
	CHECK_INT(relay_store_live_bytes(st, &full), 0);
	CHECK(full > empty + (size_t)N_EVENTS * 2000);
	/* delivered: their pages go to the free list */
	for (uint64_t id = 1; id <= N_EVENTS - 10; id++)
		CHECK_INT(relay_store_complete(st, NULL, id, 5000), 0);
	CHECK_INT(relay_store_live_bytes(st, &after), 0);
	CHECK_INT(relay_store_stats(st, 5000, &s), 0);
	CHECK(after < full);
	CHECK(after < s.map_used);
	relay_store_close(st);

	/* the compacted copy takes exactly what was predicted */
	CHECK_INT(mkdir(copy, 0700), 0);
	CHECK_INT(relay_store_compact(store, copy), 0);
	CHECK_INT(file_size(copy), (long long)after);
	CHECK(file_size(copy) < file_size(store));
	CHECK_INT(relay_store_open(copy, MAP, RELAY_STORE_RDONLY, &st), 0);
	if (st) {
		size_t again;

		CHECK_INT(relay_store_stats(st, 5000, &s), 0);
		CHECK_INT(s.events, 10);
		CHECK_INT(relay_store_live_bytes(st, &again), 0);
		CHECK_INT(again, after);
		relay_store_close(st);
	}
	remove_store(copy);
	remove_store(store);
}

int
main(void)
{
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_live_bytes_predicts_the_copy);
	rmdir(base);
	return check_done();
}
