/* store-dump: print the records of a store as JSON lines, for the integration
 * tests (they check what a separate process sees after a crash).
 *   store-dump STATE_DIR [events|dead|poll-stat]
 * Each line: {"id":N,"source":"…","dedup_key":"…","attempts":N,"dead_reason":…} */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "odoo_relay/error.h"
#include "odoo_relay/store.h"
#include "odoo_relay/store_check.h"
#include "odoo_relay/store_poll.h"

static int
print_one(void *arg, const struct relay_event *ev)
{
	json_t *hist = json_array();
	for (size_t i = 0; hist && i < ev->n_history; i++) {
		const struct relay_attempt *a = &ev->history[i];
		json_array_append_new(hist, json_pack("{s:I,s:s,s:i,s:s?,s:s?,s:s?}", "at_ms",
		                                      (json_int_t)a->at_ms, "class", relay_class_name(a->klass),
		                                      "http_status", a->http_status, "error_name", a->error_name,
		                                      "message", a->message, "detail", a->detail));
	}
	json_t *o = json_pack("{s:I,s:s?,s:s?,s:s?,s:s?,s:I,s:s?,s:s?,s:I,s:s?,s:s?,s:o*}", "id",
	                      (json_int_t)ev->id, "source", ev->source, "topic", ev->topic, "lane",
	                      ev->lane, "dedup_key", ev->dedup_key, "attempts", (json_int_t)ev->attempts,
	                      "last_error", ev->last_error, "dead_reason", ev->dead_reason,
	                      "due_ms", (json_int_t)ev->due_ms, "route", ev->route, "request",
	                      ev->request, "history", hist);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	if (s)
		puts(s);
	free(s);
	json_decref(o);
	return 0;
}

int
main(int argc, char **argv)
{
	struct relay_store *st;
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: store-dump STATE_DIR [events|dead|poll-stat]\n");
		return 64;
	}
	/* A damaged page can crash a reader: walk it in a child first. */
	int rc = relay_store_verify(argv[1]);
	if (rc == 0)
		rc = relay_store_open(argv[1], 0, RELAY_STORE_RDONLY, &st);
	if (rc) {
		fprintf(stderr, "cannot open store %s: %s\n", argv[1], relay_strerror(rc));
		return 1;
	}
	if (argc == 3 && strcmp(argv[2], "poll-stat") == 0) {
		/* the poller's table: "<entries> <bytes of its pages>" */
		struct relay_poll_db db;
		MDB_txn *txn = NULL;
		uint64_t entries = 0, bytes = 0;

		if ((rc = relay_poll_db_open(st, 0, &db)) == 0 &&
		    (rc = relay_store_read_begin(st, &txn)) == 0) {
			rc = relay_poll_db_stat(&db, txn, &entries, &bytes);
			relay_store_txn_abort(st, txn);
		}
		if (rc == 0)
			printf("%llu %llu\n", (unsigned long long)entries, (unsigned long long)bytes);
	} else if (argc == 3 && strcmp(argv[2], "dead") == 0)
		rc = relay_store_foreach_dead(st, 0, print_one, NULL);
	else
		rc = relay_store_foreach_event(st, 0, print_one, NULL);
	relay_store_close(st);
	if (rc) {
		fprintf(stderr, "cannot read store %s: %s\n", argv[1], relay_strerror(rc));
		return 1;
	}
	return 0;
}
