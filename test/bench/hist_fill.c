/*
 * hist-fill: fill a store's history directly (no daemon), for
 * bench_trace.py and the figures in the README.
 *
 *   hist-fill DIR N [BODY_BYTES] [MAP_MB] [--no-body]
 *
 * Creates the store in DIR (which must not hold one) and puts N events
 * through it: each is ingested and completed into the history, 10000 per
 * transaction, as customer i % (N / 3 + 1) of a Shopify-like source (so
 * lanes, external IDs and Odoo records repeat about three times), with a
 * JSON body of about BODY_BYTES [600] and three kept headers. Prints one
 * JSON line: entries, bytes of the history's pages, data.mdb's size, and
 * both per entry.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "odoo_relay/error.h"
#include "odoo_relay/history.h"
#include "odoo_relay/store.h"

#define PER_TXN 10000

int
main(int argc, char **argv)
{
	struct relay_store *st;
	uint64_t n, entries = 0, hbytes = 0;
	size_t body_bytes = 600, map_mb = 8192;
	int keep_body = 1, rc;
	char *body, path[4096];
	struct stat sb;

	if (argc < 3) {
		fprintf(stderr, "usage: hist-fill DIR N [BODY_BYTES] [MAP_MB] [--no-body]\n");
		return 64;
	}
	n = strtoull(argv[2], NULL, 10);
	if (argc > 3)
		body_bytes = strtoul(argv[3], NULL, 10);
	if (argc > 4)
		map_mb = strtoul(argv[4], NULL, 10);
	if (argc > 5 && strcmp(argv[5], "--no-body") == 0)
		keep_body = 0;
	if ((rc = relay_store_open(argv[1], map_mb << 20, RELAY_STORE_CREATE, &st))) {
		fprintf(stderr, "hist-fill: cannot open %s: %s\n", argv[1], relay_strerror(rc));
		return 1;
	}
	if (!(body = malloc(body_bytes + 256)))
		return 1;
	for (uint64_t done = 0; done < n;) {
		MDB_txn *txn;

		if ((rc = relay_store_txn_begin(st, NULL, &txn)))
			goto fail;
		for (int k = 0; k < PER_TXN && done < n; k++, done++) {
			uint64_t cust = done % (n / 3 + 1) + 1, id;
			char dk[64], lane[24], xid[64];
			int len = snprintf(body, body_bytes + 256,
			                   "{\"id\":%" PRIu64 ",\"email\":\"c%" PRIu64
			                   "@example.com\",\"note\":\"",
			                   cust, cust);
			for (; (size_t)len < body_bytes; len++)
				body[len] = (char)('a' + len % 26);
			len += snprintf(body + len, 8, "\"}");
			snprintf(dk, sizeof(dk), "%08" PRIx64 "-6e4b-4c39-9d1f-%012" PRIx64, done, done);
			snprintf(lane, sizeof(lane), "%" PRIu64, cust);
			snprintf(xid, sizeof(xid), "odoo_relay.shop_customer_%" PRIu64, cust);
			struct relay_header h[] = {
				{ "X-Shopify-Topic", "customers/update" },
				{ "X-Shopify-Shop-Domain", "example.myshopify.com" },
				{ "X-Shopify-Webhook-Id", dk },
			};
			struct relay_event ev = { .source = "shop", .topic = "customers/update",
				                  .lane = lane, .dedup_key = dk, .headers = h,
				                  .n_headers = 3, .body = (unsigned char *)body,
				                  .body_len = (size_t)len };
			int64_t now = 1700000000000 + (int64_t)done;
			struct relay_hist_settle s = {
				.outcome = RELAY_HIST_DELIVERED, .destination = "odoo", .batch_row = -1,
				.http_status = 200, .xid = xid, .odoo_model = "res.partner",
				.odoo_id = (int64_t)cust, .note = "delivered",
				.retention_ms = INT64_C(1) << 60, .keep_body = keep_body,
			};
			int kept = 0;

			if ((rc = relay_store_ingest(st, txn, &ev, 0, now, &id, NULL)) ||
			    (rc = relay_history_complete(st, txn, id, &s, now, &kept)))
				break;
			if (!kept) {
				fprintf(stderr, "hist-fill: the history gave way at %" PRIu64
				        " entries: give a larger MAP_MB\n", done);
				rc = -RELAY_EFULL;
				break;
			}
		}
		if (rc) {
			relay_store_txn_abort(st, txn);
			goto fail;
		}
		if ((rc = relay_store_txn_commit(st, txn)))
			goto fail;
	}
	relay_history_stats(st, &entries, &hbytes);
	relay_store_close(st);
	snprintf(path, sizeof(path), "%s/data.mdb", argv[1]);
	stat(path, &sb);
	printf("{\"entries\":%" PRIu64 ",\"history_bytes\":%" PRIu64 ",\"file_bytes\":%lld,"
	       "\"history_bytes_per_entry\":%.0f,\"file_bytes_per_entry\":%.0f,\"body_bytes\":%zu,"
	       "\"body_kept\":%s}\n",
	       entries, hbytes, (long long)sb.st_size, entries ? (double)hbytes / entries : 0.0,
	       entries ? (double)sb.st_size / entries : 0.0, body_bytes, keep_body ? "true" : "false");
	free(body);
	return 0;
fail:
	fprintf(stderr, "hist-fill: %s\n", relay_strerror(rc));
	relay_store_close(st);
	free(body);
	return 1;
}
