/*
 * fill-store: queue N events straight into a store, as the daemon's ingest
 * would (relay_store_ingest: events, due, lanes, dedup), in transactions of
 * BATCH events, and pause delivery, so that a benchmark can start the
 * daemon on a deep backlog without sending a million webhooks first.
 *
 * usage: fill-store STATE_DIR N [MAP_MB [BODY_BYTES]]
 * Each event looks like the benchmarks' webhook: source "shopify", topic
 * "customers/create", a lane of its own (the order id, as side_by_side's
 * lane pointer /id gives), a dedup key, two kept headers and a JSON body of
 * BODY_BYTES (default 1024).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "odoo_relay/error.h"
#include "odoo_relay/store.h"

#define BATCH 5000

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
main(int argc, char **argv)
{
	struct relay_store *st = NULL;
	uint64_t n, done = 0;
	size_t map_mb = 4096, body_len = 1024;
	char *body;
	int rc = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: fill-store STATE_DIR N [MAP_MB [BODY_BYTES]]\n");
		return 2;
	}
	n = strtoull(argv[2], NULL, 10);
	if (argc > 3)
		map_mb = strtoul(argv[3], NULL, 10);
	if (argc > 4)
		body_len = strtoul(argv[4], NULL, 10);
	if (body_len < 64 || !(body = malloc(body_len + 1))) {
		fprintf(stderr, "fill-store: body of at least 64 bytes\n");
		return 2;
	}
	rc = relay_store_open(argv[1], map_mb << 20, RELAY_STORE_CREATE, &st);
	if (rc) {
		fprintf(stderr, "fill-store: cannot open store %s: %s\n", argv[1], relay_strerror(rc));
		return 1;
	}
	if ((rc = relay_store_set_paused(st, NULL, NULL, 1)))
		goto out;
	while (done < n && !rc) {
		MDB_txn *txn;
		int64_t now = wall_ms();

		if ((rc = relay_store_txn_begin(st, NULL, &txn)))
			break;
		for (unsigned i = 0; i < BATCH && done < n && !rc; i++, done++) {
			struct relay_event ev = { 0 };
			struct relay_header h[2] = {
				{ "X-Shopify-Topic", "customers/create" },
				{ "X-Shopify-Shop-Domain", "bench.myshopify.com" },
			};
			char lane[32], key[64];
			int m;

			snprintf(lane, sizeof(lane), "%" PRIu64, (uint64_t)7000000000u + done);
			snprintf(key, sizeof(key), "fill-%" PRIu64 "-b6f1c2a4-9d2e-4c1b-8f7a", done);
			m = snprintf(body, body_len + 1, "{\"id\":%s,\"email\":\"c%" PRIu64
			             "@example.com\",\"note\":\"", lane, done);
			memset(body + m, 'x', body_len - (size_t)m - 2);
			memcpy(body + body_len - 2, "\"}", 2);
			ev.source = "shopify";
			ev.topic = "customers/create";
			ev.lane = lane;
			ev.dedup_key = key;
			ev.headers = h;
			ev.n_headers = 2;
			ev.body = (unsigned char *)body;
			ev.body_len = body_len;
			rc = relay_store_ingest(st, txn, &ev, 86400000, now, NULL, NULL);
		}
		if (rc)
			relay_store_txn_abort(st, txn);
		else
			rc = relay_store_txn_commit(st, txn);
	}
out:
	if (rc)
		fprintf(stderr, "fill-store: after %" PRIu64 " events: %s\n", done, relay_strerror(rc));
	else
		printf("%" PRIu64 " events queued in %s, delivery paused\n", done, argv[1]);
	relay_store_close(st);
	free(body);
	return rc ? 1 : 0;
}
