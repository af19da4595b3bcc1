/* hist-plant: put history entries, and damage, into a store directly (no
 * daemon), for the integration tests of listings over a large or damaged
 * history.
 *   hist-plant STATE_DIR fill LANE N [MS]  N delivered events of lane LANE,
 *                                         settled now, kept MS ms [7 days]
 *   hist-plant STATE_DIR damage-history ID   history record ID made junk
 *   hist-plant STATE_DIR damage-audit SEQ    audit record SEQ made junk
 *   hist-plant STATE_DIR damage-exp          an expiry row of the wrong size
 *   hist-plant STATE_DIR damage-edit ID V    edit record V of dead letter ID
 *                                            made junk
 *   hist-plant STATE_DIR edits ID N          N body versions kept for event
 *                                            ID (as a dead letter edited N-1
 *                                            times, then replayed, leaves)
 *   hist-plant STATE_DIR dead N              N dead letters (JSON bodies)
 *   hist-plant STATE_DIR txnid               prints the id of the last
 *                                            committed write transaction
 * Prints nothing else; exits 0, or 1 with a message. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "odoo_relay/clock.h"
#include "odoo_relay/error.h"
#include "odoo_relay/hist_record.h"
#include "odoo_relay/history.h"
#include "odoo_relay/store.h"
#include "odoo_relay/store_poll.h"

#define PER_TXN 2000

static int
fill(struct relay_store *st, const char *lane, uint64_t n, int64_t retention_ms)
{
	int64_t now = relay_wall_ms();
	int rc = 0;

	for (uint64_t done = 0; done < n && !rc;) {
		MDB_txn *txn;

		if ((rc = relay_store_txn_begin(st, NULL, &txn)))
			break;
		for (int k = 0; k < PER_TXN && done < n; k++, done++) {
			char dk[32], body[64];
			uint64_t id;
			int kept = 0;

			snprintf(dk, sizeof(dk), "plant-%" PRIu64, done);
			snprintf(body, sizeof(body), "{\"id\":%" PRIu64 "}", done);
			struct relay_event ev = { .source = "shop", .topic = "customers/update",
				                  .lane = (char *)lane, .dedup_key = dk,
				                  .body = (unsigned char *)body, .body_len = strlen(body) };
			struct relay_hist_settle s = {
				.outcome = RELAY_HIST_DELIVERED, .destination = "odoo", .batch_row = -1,
				.http_status = 200, .note = "delivered",
				.retention_ms = retention_ms,
				.keep_body = 1,
			};

			if ((rc = relay_store_ingest(st, txn, &ev, 0, now, &id, NULL)) ||
			    (rc = relay_history_complete(st, txn, id, &s, now, &kept)))
				break;
			if (!kept) {
				rc = -RELAY_EFULL;
				break;
			}
		}
		if (rc)
			relay_store_txn_abort(st, txn);
		else
			rc = relay_store_txn_commit(st, txn);
	}
	return rc;
}

static int
bury(struct relay_store *st, uint64_t n)
{
	int64_t now = relay_wall_ms();
	int rc = 0;

	for (uint64_t i = 0; i < n && !rc; i++) {
		char dk[32], body[64];
		struct relay_event ev = { .source = "shop", .topic = "customers/update",
			                  .dedup_key = dk, .body = (unsigned char *)body };
		struct relay_event got;
		uint64_t id;

		snprintf(dk, sizeof(dk), "dead-%" PRIu64, i);
		snprintf(body, sizeof(body), "{\"id\":%" PRIu64 "}", i);
		ev.body_len = strlen(body);
		if ((rc = relay_store_ingest(st, NULL, &ev, 0, now, &id, NULL)) ||
		    (rc = relay_store_get_event(st, NULL, id, &got)))
			break;
		got.dead_reason = strdup("planted");
		rc = relay_store_bury(st, NULL, &got, RELAY_LANE_HOLD, now);
		relay_event_clear(&got);
	}
	return rc;
}

static int
plant(struct relay_store *st, const char *table, const void *k, size_t klen)
{
	static const unsigned char junk[3] = { 1, 2, 3 };
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val kv = { klen, (void *)k }, vv = { sizeof(junk), (void *)junk };
	int rc;

	if (!strcmp(table, "history_exp"))
		vv.mv_size = 0;
	if ((rc = relay_store_txn_begin(st, NULL, &txn)))
		return rc;
	if ((rc = mdb_dbi_open(txn, table, 0, &dbi)) || (rc = mdb_put(txn, dbi, &kv, &vv, 0))) {
		relay_store_txn_abort(st, txn);
		return rc;
	}
	return relay_store_txn_commit(st, txn);
}

/* Versions 1..n of event id's body, written as relay_edit_add writes them. */
static int
versions(struct relay_store *st, uint64_t id, uint32_t n)
{
	MDB_txn *txn;
	MDB_dbi dbi;
	int rc;

	if ((rc = relay_store_txn_begin(st, NULL, &txn)))
		return rc;
	if ((rc = mdb_dbi_open(txn, "edits", 0, &dbi)))
		goto fail;
	for (uint32_t ver = 1; ver <= n; ver++) {
		char body[64];
		unsigned char k[12], *buf;
		size_t len;
		uint64_t v = id;
		struct relay_edit e = { .at_ms = relay_wall_ms(), .user = ver > 1 ? "plant" : NULL,
			                .body = (unsigned char *)body };
		MDB_val kv = { sizeof(k), k }, vv;

		e.body_len = (size_t)snprintf(body, sizeof(body), "{\"v\":%u}", ver);
		for (int i = 7; i >= 0; i--, v >>= 8)
			k[i] = (unsigned char)v;
		for (int i = 11; i >= 8; i--)
			k[i] = (unsigned char)(ver >> (8 * (11 - i)));
		if ((rc = relay_edit_encode(&e, &buf, &len)))
			goto fail;
		vv.mv_size = len;
		vv.mv_data = buf;
		rc = mdb_put(txn, dbi, &kv, &vv, 0);
		free(buf);
		if (rc)
			goto fail;
	}
	return relay_store_txn_commit(st, txn);
fail:
	relay_store_txn_abort(st, txn);
	return rc;
}

int
main(int argc, char **argv)
{
	struct relay_store *st;
	unsigned char k[12];
	int rc;

	if (argc < 3) {
		fprintf(stderr, "usage: hist-plant STATE_DIR fill LANE N | damage-history ID | "
		        "damage-audit SEQ | damage-exp | damage-edit ID V | "
		        "poll-request-legacy SOURCE JSON\n");
		return 64;
	}
	/* read-only for txnid: it must not count a transaction of its own */
	if ((rc = relay_store_open(argv[1], 64u << 20,
	                           strcmp(argv[2], "txnid") ? RELAY_STORE_CREATE : RELAY_STORE_RDONLY,
	                           &st))) {
		fprintf(stderr, "hist-plant: cannot open %s: %s\n", argv[1], relay_strerror(rc));
		return 1;
	}
	if (!strcmp(argv[2], "fill") && (argc == 5 || argc == 6)) {
		rc = fill(st, argv[3], strtoull(argv[4], NULL, 10),
		          argc == 6 ? strtoll(argv[5], NULL, 10)
		                    : RELAY_HISTORY_RETENTION_DEFAULT_S * INT64_C(1000));
	} else if ((!strcmp(argv[2], "damage-history") || !strcmp(argv[2], "damage-audit")) &&
	           argc == 4) {
		uint64_t v = strtoull(argv[3], NULL, 10);

		for (int i = 7; i >= 0; i--, v >>= 8)
			k[i] = (unsigned char)v;
		rc = plant(st, argv[2][7] == 'h' ? "history" : "audit", k, 8);
	} else if (!strcmp(argv[2], "damage-edit") && argc == 5) {
		uint64_t v = strtoull(argv[3], NULL, 10);
		uint32_t ver = (uint32_t)strtoul(argv[4], NULL, 10);

		for (int i = 7; i >= 0; i--, v >>= 8)
			k[i] = (unsigned char)v;
		for (int i = 11; i >= 8; i--, ver >>= 8)
			k[i] = (unsigned char)ver;
		rc = plant(st, "edits", k, 12);
	} else if (!strcmp(argv[2], "edits") && argc == 5) {
		rc = versions(st, strtoull(argv[3], NULL, 10), (uint32_t)strtoul(argv[4], NULL, 10));
	} else if (!strcmp(argv[2], "dead") && argc == 4) {
		rc = bury(st, strtoull(argv[3], NULL, 10));
	} else if (!strcmp(argv[2], "txnid") && argc == 3) {
		MDB_txn *txn;

		if ((rc = relay_store_read_begin(st, &txn)) == 0) {
			printf("%zu\n", (size_t)mdb_txn_id(txn));
			relay_store_txn_abort(st, txn);
		}
	} else if (!strcmp(argv[2], "poll-request-legacy") && argc == 5) {
		/* a sync request as an older odoo-relayctl wrote it: the plain key */
		struct relay_poll_db db;
		MDB_txn *txn;

		if ((rc = relay_poll_db_open(st, 1, &db)) == 0 &&
		    (rc = relay_store_txn_begin(st, NULL, &txn)) == 0) {
			if ((rc = relay_poll_db_text_put(&db, txn, RELAY_POLL_REQUEST, argv[3], argv[4])))
				relay_store_txn_abort(st, txn);
			else
				rc = relay_store_txn_commit(st, txn);
		}
	} else if (!strcmp(argv[2], "damage-exp") && argc == 3) {
		memset(k, 0, sizeof(k));
		rc = plant(st, "history_exp", k, 5);
	} else {
		fprintf(stderr, "hist-plant: unknown command %s\n", argv[2]);
		rc = 64;
	}
	relay_store_close(st);
	if (rc == 64)
		return 64;
	if (rc) {
		fprintf(stderr, "hist-plant: %s\n", relay_strerror(rc));
		return 1;
	}
	return 0;
}
