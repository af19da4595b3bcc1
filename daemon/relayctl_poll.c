/*
 * odoo-relayctl: the poll sources. "sync SOURCE [--since TIME] [--id ID...]"
 * leaves a request in the store (store_poll.h) that odoo-relayd takes
 * within a second; status shows each poller's state as the daemon keeps it.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "odoo_relay/clock.h"
#include "odoo_relay/error.h"
#include "odoo_relay/poll.h"
#include "odoo_relay/store_poll.h"
#include "relayctl.h"

#define SYNC_IDS_MAX 1000
#define SYNC_WAIT_S 300      /* --wait without a value */
#define SYNC_WAIT_MAX_S 86400

json_t *
ctl_pollers(struct ctl *c)
{
	struct relay_poll_db db;
	MDB_txn *txn = NULL;
	json_t *out = json_object();

	if (!out || !c->cfg || relay_poll_db_open(c->st, 0, &db) ||
	    relay_store_read_begin(c->st, &txn))
		return out;
	for (size_t i = 0; i < c->cfg->n_sources; i++) {
		const struct relay_source_conf *s = &c->cfg->sources[i];
		char *text = NULL;
		json_t *o = NULL;
		json_int_t ok;
		uint64_t seq;

		if (s->kind != RELAY_SOURCE_ODOO_POLL)
			continue;
		if (relay_poll_db_text_get(&db, txn, RELAY_POLL_STATE, s->name, &text) == 0)
			o = json_loads(text, 0, NULL);
		free(text);
		if (!json_is_object(o)) {
			json_decref(o);
			o = json_pack("{s:s, s:s, s:s, s:b}", "cursor", "", "model", s->poll->model,
			              "destination", s->poll->destination, "never_ran", 1);
		}
		ok = json_integer_value(json_object_get(o, "last_ok_ms"));
		/* lag: how old the view of Odoo may be, since the last complete poll */
		json_object_set_new(o, "lag_s", ok ? json_integer((c->now_ms - ok) / 1000) : json_null());
		text = NULL;
		json_object_set_new(o, "sync_pending",
		                    json_boolean(relay_poll_db_request_next(&db, txn, s->name, 0, &seq,
		                                                            &text) == 0));
		free(text);
		json_object_set_new(out, s->name, o);
	}
	relay_store_txn_abort(c->st, txn);
	return out;
}

void
ctl_pollers_problems(const json_t *pollers, json_t *problems)
{
	const char *name;
	json_t *o;
	char line[700];

	json_object_foreach((json_t *)pollers, name, o) {
		const char *e = json_string_value(json_object_get(o, "error"));

		if (!e || !*e)
			continue;
		snprintf(line, sizeof(line), "poll source %.100s: %.500s", name, e);
		json_array_append_new(problems, json_string(line));
	}
}

/* The last sync by id, when some of its ids were not sent: they are not
 * in the source (outside its domain, or archived while it leaves archived
 * records out), which an operator asking for them wants to know. */
static void
print_last_sync(const json_t *last)
{
	const json_t *absent = json_object_get(last, "not_in_source"), *v;
	size_t i;

	if (!json_array_size(absent))
		return;
	printf("            last sync by id: %zu sent, not in the source (not sent):",
	       json_array_size(json_object_get(last, "sent")));
	json_array_foreach(absent, i, v) {
		if (i == 20) {
			printf(" and %zu more", json_array_size(absent) - i);
			break;
		}
		printf("%s %" JSON_INTEGER_FORMAT, i ? "," : "", json_integer_value(v));
	}
	printf("\n");
}

void
ctl_pollers_print(const struct ctl *c, const json_t *pollers)
{
	const char *name;
	json_t *o;
	char run[96], ok[96], lag[32], b1[160], b2[600];
	int first = 1;

	json_object_foreach((json_t *)pollers, name, o) {
		json_int_t last = json_integer_value(json_object_get(o, "last_run_ms"));
		json_int_t good = json_integer_value(json_object_get(o, "last_ok_ms"));
		const char *cur = json_string_value(json_object_get(o, "cursor"));
		const char *e = json_string_value(json_object_get(o, "error"));

		ctl_fmt_when(c->now_ms, last, run, sizeof(run));
		ctl_fmt_when(c->now_ms, good, ok, sizeof(ok));
		if (good)
			ctl_fmt_dur(c->now_ms - good, lag, sizeof(lag));
		printf("%s%s (%s from %s): cursor %s, last run %s, last complete %s, lag %s, "
		       "%" JSON_INTEGER_FORMAT " known, %" JSON_INTEGER_FORMAT " changes and %"
		       JSON_INTEGER_FORMAT " deletions sent%s\n",
		       first ? "pollers     " : "            ", ctl_clip(name, 64, b1, sizeof(b1)),
		       json_string_value(json_object_get(o, "model")) ?: "?",
		       json_string_value(json_object_get(o, "destination")) ?: "?",
		       cur && *cur ? cur : "-", last ? run : "never", good ? ok : "never",
		       good ? lag : "-", json_integer_value(json_object_get(o, "known")),
		       json_integer_value(json_object_get(o, "changed")),
		       json_integer_value(json_object_get(o, "deleted")),
		       json_is_true(json_object_get(o, "sync_pending")) ? ", sync pending" : "");
		if (e && *e)
			printf("            error: %s\n", ctl_clip(e, 300, b2, sizeof(b2)));
		print_last_sync(json_object_get(o, "last_sync"));
		first = 0;
	}
}

static const struct option sync_opts[] = {
	{ "since", required_argument, NULL, 's' },
	{ "id", required_argument, NULL, 'i' },
	{ "wait", optional_argument, NULL, 'w' },
	{ "json", no_argument, NULL, CTL_OPT_JSON },
	{ "help", no_argument, NULL, CTL_OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

/* Ids from "7", "7,8,9": appended to ids. Returns 0 or -1. */
static int
add_ids(json_t *ids, const char *arg)
{
	const char *p = arg;

	while (*p) {
		char *end;
		long long v;

		if (*p < '0' || *p > '9')
			return -1;
		errno = 0;
		v = strtoll(p, &end, 10);
		if (errno || v <= 0 || (*end && *end != ','))
			return -1;
		if (json_array_size(ids) >= SYNC_IDS_MAX ||
		    json_array_append_new(ids, json_integer(v)))
			return -1;
		p = *end ? end + 1 : end;
	}
	return 0;
}

/* Whole seconds, digits only. Returns 0 or -1. */
static int
parse_seconds(const char *arg, int64_t *out)
{
	char *end;
	long long v;

	if (*arg < '0' || *arg > '9')
		return -1;
	errno = 0;
	v = strtoll(arg, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

/*
 * --wait: the state of source once odoo-relayd has run request seq (its
 * "request_done" reaches it: requests run in order), a new object; NULL
 * when wait_s passed first.
 */
static json_t *
wait_done(struct ctl *c, const struct relay_poll_db *db, const char *source, uint64_t seq,
          int64_t wait_s)
{
	int64_t end = relay_wall_ms() + wait_s * 1000;
	struct timespec tick = { 0, 100 * 1000 * 1000 };

	for (;;) {
		MDB_txn *txn = NULL;
		char *text = NULL;
		json_t *o = NULL;

		if (relay_store_read_begin(c->st, &txn) == 0) {
			if (relay_poll_db_text_get(db, txn, RELAY_POLL_STATE, source, &text) == 0)
				o = json_loads(text, 0, NULL);
			relay_store_txn_abort(c->st, txn);
			free(text);
		}
		if (o && (uint64_t)json_integer_value(json_object_get(o, "request_done")) >= seq)
			return o;
		json_decref(o);
		if (relay_wall_ms() >= end)
			return NULL;
		nanosleep(&tick, NULL);
	}
}

/* Prints ids as " 7, 8, 9" (the first 20, then how many more). */
static void
print_ids(const json_t *ids)
{
	const json_t *v;
	size_t i;

	json_array_foreach(ids, i, v) {
		if (i == 20) {
			printf(" and %zu more", json_array_size(ids) - i);
			break;
		}
		printf("%s %" JSON_INTEGER_FORMAT, i ? "," : "", json_integer_value(v));
	}
}

/*
 * --wait: what the request came to. 0; 1 when ids were not in the source
 * (not sent), as other verbs say "no such record"; EX_UNAVAILABLE when the job failed; EX_TEMPFAIL when
 * odoo-relayd did not run it in time (it stays, and runs when it does).
 */
static int
sync_outcome(struct ctl *c, const struct relay_poll_db *db, const char *source, uint64_t seq,
             int64_t wait_s, json_t *req)
{
	json_t *st = wait_done(c, db, source, seq, wait_s), *last, *absent;
	const char *err;
	int rc = 0;

	if (!st) {
		ctl_err("sync of %s not run within %lld s: is odoo-relayd running? (the request "
		        "stays and runs when it takes it)", source, (long long)wait_s);
		json_decref(req);
		return EX_TEMPFAIL;
	}
	/* The state keeps the outcome of the last request that ran: when a
	 * later one has run since, this one's outcome is no longer known. */
	int known = (uint64_t)json_integer_value(json_object_get(st, "request_done")) == seq;

	err = known ? json_string_value(json_object_get(st, "request_error")) : NULL;
	last = json_object_get(st, "last_sync");
	if (!json_object_get(req, "ids") ||
	    (uint64_t)json_integer_value(json_object_get(last, "seq")) != seq)
		last = NULL;
	absent = json_object_get(last, "not_in_source");
	if (err && *err)
		rc = EX_UNAVAILABLE;
	else if (json_array_size(absent))
		rc = 1;
	if (c->json) {
		json_t *o = json_pack("{s:s, s:s, s:o, s:b, s:s}", "action", "sync", "source", source,
		                      "request", req, "done", 1, "error", err ? err : "");

		int prc;

		if (o && last)
			json_object_set(o, "result", last);
		if (o && !known)
			json_object_set_new(o, "outcome_known", json_false());
		json_decref(st);
		prc = ctl_json_print(o, 0);
		return prc ? prc : rc;
	}
	json_decref(req);
	if (rc == EX_UNAVAILABLE) {
		ctl_err("sync of %s failed: %s", source, err);
	} else if (last) {
		printf("sync of %s done: %zu sent", source,
		       json_array_size(json_object_get(last, "sent")));
		if (json_array_size(absent)) {
			printf("; not in the source (outside its domain, archived while it leaves "
			       "archived records out, or deleted), not sent:");
			print_ids(absent);
		}
		printf("\n");
	} else if (!known) {
		printf("sync of %s done; a later request has run since, and what the status shows "
		       "is its outcome\n", source);
	} else {
		printf("sync of %s done\n", source);
	}
	json_decref(st);
	return rc;
}

int
ctl_sync(struct ctl *c, int argc, char **argv)
{
	const struct relay_source_conf *s = NULL;
	const char *since = NULL, *source;
	char norm[RELAY_POLL_TIME_LEN], *text = NULL;
	struct relay_poll_db db;
	json_t *ids = json_array(), *req = NULL;
	MDB_txn *txn = NULL;
	uint64_t seq = 0;
	int64_t t, wait_s = 0;
	int ch, rc;

	if (!ids)
		return EX_SOFTWARE;
	while ((ch = getopt_long(argc, argv, ":h", sync_opts, NULL)) != -1) {
		switch (ch) {
		case CTL_OPT_HELP: json_decref(ids); return ctl_help(c->verb);
		case CTL_OPT_JSON: c->json = 1; break;
		case 's': since = optarg; break;
		case 'w':
			wait_s = SYNC_WAIT_S;
			if (optarg && (parse_seconds(optarg, &wait_s) || wait_s < 1 ||
			               wait_s > SYNC_WAIT_MAX_S)) {
				json_decref(ids);
				return ctl_usage(c, "--wait: expected seconds, 1 to %d", SYNC_WAIT_MAX_S);
			}
			break;
		case 'i':
			if (add_ids(ids, optarg)) {
				json_decref(ids);
				return ctl_usage(c, "--id: expected record ids (7 or 7,8,9; at most %d)",
				                 SYNC_IDS_MAX);
			}
			break;
		default: json_decref(ids); return ctl_getopt_error(c, ch, argv);
		}
	}
	if (optind + 1 != argc) {
		json_decref(ids);
		return ctl_usage(c, optind >= argc ? "sync needs a source" : "unexpected argument \"%s\"",
		                 argv[optind < argc ? optind + 1 : 0]);
	}
	source = argv[optind];
	if (since && json_array_size(ids)) {
		json_decref(ids);
		return ctl_usage(c, "give --since or --id, not both");
	}
	if (since) {
		int64_t ms;

		/* Odoo's form is UTC; anything else as the other verbs take times
		 * (a zone, or local time; or a duration before now) */
		if (relay_poll_time_parse(since, &t) == 0) {
			relay_poll_time_format(t, norm);
		} else if (ctl_parse_time(since, c->now_ms, &ms) == 0) {
			relay_poll_time_format(ms / 1000, norm);
		} else {
			json_decref(ids);
			return ctl_usage(c, "--since: expected a time (\"2026-12-05 23:22:41\", UTC as "
			                    "Odoo writes it; or with a zone; or a duration such as 2h)");
		}
	}
	if ((rc = ctl_config(c))) {
		json_decref(ids);
		return rc;
	}
	for (size_t i = 0; c->cfg && i < c->cfg->n_sources; i++)
		if (!strcmp(c->cfg->sources[i].name, source))
			s = &c->cfg->sources[i];
	if (!s || s->kind != RELAY_SOURCE_ODOO_POLL) {
		json_decref(ids);
		return ctl_usage(c, "%s \"%s\" (sync takes a source of kind odoo-poll)",
		                 s ? "not a poll source:" : "no source is named", source);
	}
	if ((rc = ctl_open(c, 1))) {
		json_decref(ids);
		return rc;
	}
	req = json_pack("{s:I}", "at_ms", (json_int_t)c->now_ms);
	if (!req || (since && json_object_set_new(req, "since", json_string(norm))) ||
	    (json_array_size(ids) && json_object_set(req, "ids", ids)) ||
	    !(text = json_dumps(req, JSON_COMPACT))) {
		rc = ENOMEM;
		goto fail;
	}
	if ((rc = relay_poll_db_open(c->st, 1, &db)) || (rc = relay_store_txn_begin(c->st, NULL, &txn)))
		goto fail;
	/* a request of its own, never one that replaces another: the daemon
	 * deletes by number only what it took */
	if ((rc = relay_poll_db_request_add(&db, txn, source, text, &seq))) {
		relay_store_txn_abort(c->st, txn);
		goto fail;
	}
	if ((rc = ctl_audit_commit(c, txn, argc, argv, NULL, 0, json_array_size(ids))))
		goto fail;
	json_object_set_new(req, "seq", json_integer((json_int_t)seq));
	free(text);
	json_decref(ids);
	if (wait_s)
		return sync_outcome(c, &db, source, seq, wait_s, req);
	if (c->json)
		return ctl_json_print(json_pack("{s:s, s:s, s:o}", "action", "sync", "source", source,
		                                "request", req),
		                      0);
	json_decref(req);
	if (since)
		printf("sync of %s from %s requested: odoo-relayd runs it within a second\n", source,
		       norm);
	else if (json_array_size(ids))
		printf("sync of %s requested: odoo-relayd sends those records within a second\n",
		       source);
	else
		printf("sync of %s requested: odoo-relayd polls within a second\n", source);
	return 0;
fail:
	free(text);
	json_decref(ids);
	json_decref(req);
	ctl_err("cannot request a sync of %s: %s", source, ctl_strerror(rc));
	return ctl_exit_of(rc);
}
