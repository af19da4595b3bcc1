/*
 * odoo-relayctl: the queue and the dead letters. events list/show, dead
 * list/show/replay/drop.
 *
 * Reads walk one read transaction each (relay_store_foreach_*): a
 * consistent snapshot that never blocks odoo-relayd. Changes first collect
 * the ids in such a snapshot, then move them in short write transactions
 * of BATCH records (one nested transaction per record), so the daemon's
 * writer never waits long for the lock. A record that vanished between the
 * two (delivered, replayed or dropped by someone else) is reported and
 * skipped: each store function moves its record atomically, so a race
 * loses nothing and applies nothing twice.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "odoo_relay/error.h"

#include "odoo_relay/history.h"

#include "relayctl.h"

#define DEFAULT_LIMIT 50
#define BATCH 64
#define SCAN_CHUNK 1024
#define REASON_COLS 60
#define ERROR_COLS 50
#define IDS_SHOWN 20

/* ---- the due index: which queued events are deliverable ---- */

struct due_set {
	struct relay_due *v; /* sorted by id */
	size_t n, cap;
};

static int
by_id(const void *a, const void *b)
{
	const struct relay_due *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* An event the daemon has not indexed yet, and will make due. */
static int
due_add_tail(void *arg, uint64_t id, int64_t due_ms)
{
	struct due_set *d = arg;

	if (d->n == d->cap) {
		struct relay_due *p = realloc(d->v, (d->cap + SCAN_CHUNK) * sizeof(*p));

		if (!p)
			return ENOMEM;
		d->v = p;
		d->cap += SCAN_CHUNK;
	}
	d->v[d->n].id = id;
	d->v[d->n].due_ms = due_ms;
	d->n++;
	return 0;
}

/* Reads every entry of the due index, and the events about to be in it.
 * Returns 0 or an error code. */
static int
due_load(struct ctl *c, struct due_set *d)
{
	struct relay_due *after = NULL, last;
	size_t n;
	int rc;

	memset(d, 0, sizeof(*d));
	do {
		if (d->cap - d->n < SCAN_CHUNK) {
			struct relay_due *p = realloc(d->v, (d->cap + SCAN_CHUNK) * sizeof(*p));

			if (!p)
				return ENOMEM;
			d->v = p;
			d->cap += SCAN_CHUNK;
		}
		if ((rc = relay_store_scan_due(c->st, NULL, INT64_MAX, after, d->v + d->n, SCAN_CHUNK, &n)))
			return rc;
		d->n += n;
		if (n) {
			last = d->v[d->n - 1];
			after = &last;
		}
	} while (n == SCAN_CHUNK);
	if ((rc = relay_store_tail_due(c->st, NULL, due_add_tail, d)))
		return rc;
	qsort(d->v, d->n, sizeof(*d->v), by_id);
	return 0;
}

/* "due", "delayed" or "parked"; *due_ms the due entry's time. */
static const char *
due_state(const struct ctl *c, const struct due_set *d, uint64_t id, int64_t *due_ms)
{
	struct relay_due key = { .id = id }, *hit;

	hit = d->n ? bsearch(&key, d->v, d->n, sizeof(*d->v), by_id) : NULL;
	if (!hit)
		return "parked";
	*due_ms = hit->due_ms;
	return hit->due_ms <= c->now_ms ? "due" : "delayed";
}

/* ---- listing ---- */

struct lister {
	struct ctl *c;
	const struct ctl_filter *f;
	const struct due_set *due; /* events only */
	int dead;
	uint64_t matched, shown;
	struct ctl_table *table;
	json_t *lines;             /* --json: one object per record */
	int err;
};

static int
list_one(void *arg, const struct relay_event *ev)
{
	struct lister *l = arg;
	struct ctl *c = l->c;
	const struct relay_attempt *last = ctl_last_attempt(ev);
	char id[24], when[48], age[32], att[16], clip[256];
	const char *state = NULL;
	int64_t due_ms = ev->due_ms;

	if (!ctl_filter_match(c, l->f, ev))
		return 0;
	l->matched++;
	if (l->f->limit && l->shown >= l->f->limit)
		return 0;
	l->shown++;
	if (!l->dead)
		state = due_state(c, l->due, ev->id, &due_ms);
	if (c->json) {
		json_t *o = ctl_json_event(c, ev, state, 0);

		if (!o || json_array_append_new(l->lines, o))
			return l->err = ENOMEM;
		return 0;
	}
	ctl_fmt_u64(ev->id, id, sizeof(id));
	snprintf(att, sizeof(att), "%" PRIu32, ev->attempts);
	if (l->dead) {
		ctl_fmt_time(ev->dead_ms, when, sizeof(when));
		ctl_fmt_dur(c->now_ms - ev->dead_ms, age, sizeof(age));
		const char *row[] = { id, when, age, ev->source, ev->topic, ctl_route_of(c, ev), att,
		                      last ? last->error_name : NULL,
		                      ctl_clip(ev->dead_reason, REASON_COLS, clip, sizeof(clip)) };
		l->err = ctl_table_add(l->table, row);
	} else {
		char st[48], rel[32];

		ctl_fmt_time(ev->received_ms, when, sizeof(when));
		ctl_fmt_dur(c->now_ms - ev->received_ms, age, sizeof(age));
		if (strcmp(state, "delayed") == 0) {
			ctl_fmt_rel(c->now_ms, due_ms, rel, sizeof(rel));
			snprintf(st, sizeof(st), "retry %s", rel);
			state = st;
		}
		const char *row[] = { id, when, age, ev->source, ev->topic, ev->lane,
		                      ctl_route_of(c, ev), state, att,
		                      ctl_clip(ev->last_error, ERROR_COLS, clip, sizeof(clip)) };
		l->err = ctl_table_add(l->table, row);
	}
	return l->err;
}

static const struct option list_opts[] = {
	{ "source", required_argument, NULL, CTL_F_SOURCE },
	{ "topic", required_argument, NULL, CTL_F_TOPIC },
	{ "route", required_argument, NULL, CTL_F_ROUTE },
	{ "destination", required_argument, NULL, CTL_F_DEST },
	{ "lane", required_argument, NULL, CTL_F_LANE },
	{ "older-than", required_argument, NULL, CTL_F_OLDER },
	{ "newer-than", required_argument, NULL, CTL_F_NEWER },
	{ "error", required_argument, NULL, CTL_F_ERROR },
	{ "since", required_argument, NULL, CTL_F_SINCE },
	{ "until", required_argument, NULL, CTL_F_UNTIL },
	{ "grep", required_argument, NULL, CTL_F_GREP },
	{ "limit", required_argument, NULL, CTL_F_LIMIT },
	{ "all", no_argument, NULL, 'a' },
	{ "dry-run", no_argument, NULL, 'n' },
	{ "yes", no_argument, NULL, 'y' },
	{ "delivered", no_argument, NULL, 'D' },
	{ "json", no_argument, NULL, CTL_OPT_JSON },
	{ "help", no_argument, NULL, CTL_OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

/* Which options each verb takes, by code. */
static int
allowed(int dead, int action, int code)
{
	switch (code) {
	case CTL_F_SOURCE:
	case CTL_F_TOPIC:
	case CTL_F_ROUTE:
	case CTL_F_DEST:
		return 1;
	case CTL_F_LANE:
	case CTL_F_OLDER:
	case CTL_F_NEWER:
		return !dead;
	case CTL_F_SINCE:
	case CTL_F_UNTIL:
		return dead || !action; /* events list: with --delivered only (list) */
	case CTL_F_ERROR:
	case CTL_F_GREP:
		return dead;
	case 'D': /* --delivered: events list only */
		return !dead && !action;
	case CTL_F_LIMIT:
		return !action;
	case 'a': /* --all: replay only */
		return action == 'r';
	case 'n':
		return action != 0;
	case 'y':
		return action == 'd';
	default:
		return 0;
	}
}

struct args {
	struct ctl_filter f;
	int all, dry_run, yes, delivered;
	int nargs;
	char **args;
};

/* Parses the options of a list or action verb (action: 0, 'r' replay, 'd'
 * drop); positional arguments are left in a->args. Returns -1 to go on, or
 * an exit status (help printed, or a usage error). */
static int
parse(struct ctl *c, int dead, int action, int argc, char **argv, struct args *a)
{
	int ch;

	memset(a, 0, sizeof(*a));
	ctl_filter_init(&a->f, action ? 0 : DEFAULT_LIMIT);
	while ((ch = getopt_long(argc, argv, ":h", list_opts, NULL)) != -1) {
		if (ch == CTL_OPT_HELP)
			return ctl_help(c->verb);
		if (ch == CTL_OPT_JSON) {
			c->json = 1;
			continue;
		}
		if (ch == '?' || ch == ':')
			return ctl_getopt_error(c, ch, argv);
		if (!allowed(dead, action, ch))
			return ctl_usage(c, "%s does not take %s", c->verb, argv[optind - 1]);
		switch (ch) {
		case 'a': a->all = 1; break;
		case 'n': a->dry_run = 1; break;
		case 'y': a->yes = 1; break;
		case 'D': a->delivered = 1; break;
		default: {
			int rc = ctl_filter_set(c, &a->f, ch, optarg);

			if (rc)
				return rc;
		}
		}
	}
	a->nargs = argc - optind;
	a->args = argv + optind;
	return -1;
}

static int
list(struct ctl *c, int dead, int argc, char **argv)
{
	static const char *const ev_titles[] = { "ID", "RECEIVED", "AGE", "SOURCE", "TOPIC",
		                                     "LANE", "ROUTE", "STATE", "ATT", "LAST ERROR" };
	static const char *const dead_titles[] = { "ID", "DEAD SINCE", "AGE", "SOURCE", "TOPIC",
		                                       "ROUTE", "ATT", "ERROR", "REASON" };
	struct due_set due = { 0 };
	struct args a;
	struct lister l = { 0 };
	int rc;

	if ((rc = parse(c, dead, 0, argc, argv, &a)) >= 0)
		return rc;
	if (a.nargs)
		return ctl_usage(c, "unexpected argument \"%s\" (filters are options)", a.args[0]);
	if (!dead && !a.delivered && (a.f.since_ms >= 0 || a.f.until_ms >= 0))
		return ctl_usage(c, "%s takes --since and --until with --delivered only", c->verb);
	if ((rc = ctl_open(c, 0)))
		return rc;
	if (a.delivered)
		return ctl_history_list(c, &a.f);
	l.c = c;
	l.f = &a.f;
	l.dead = dead;
	l.due = &due;
	if (c->json)
		l.lines = json_array();
	else
		l.table = dead ? ctl_table_new("rlrlllrll", dead_titles)
		               : ctl_table_new("rlrlllllrl", ev_titles);
	if (!l.lines && !l.table) {
		rc = ENOMEM;
		goto fail;
	}
	if (!dead && (rc = due_load(c, &due)))
		goto fail;
	rc = dead ? relay_store_foreach_dead(c->st, 0, list_one, &l)
	          : relay_store_foreach_event(c->st, 0, list_one, &l);
	if (rc)
		goto fail;
	free(due.v);
	due.v = NULL;
	if (c->json)
		return ctl_json_print_lines(l.lines);
	if (!l.matched) {
		ctl_table_free(l.table);
		printf("no %s%s\n", dead ? "dead letters" : "queued events", a.f.any ? " match" : "");
		return 0;
	}
	ctl_table_print(l.table, stdout);
	if (l.shown < l.matched)
		printf("%" PRIu64 " of %" PRIu64 " %s shown (--limit 0 shows all)\n", l.shown, l.matched,
		       dead ? "dead letters" : "events");
	else
		printf("%" PRIu64 " %s%s\n", l.matched,
		       dead ? (l.matched == 1 ? "dead letter" : "dead letters")
		            : (l.matched == 1 ? "event" : "events"),
		       !a.f.any ? "" : l.matched == 1 ? " matches" : " match");
	return 0;
fail:
	free(due.v);
	json_decref(l.lines);
	ctl_table_free(l.table);
	ctl_err("cannot list the %s of %s: %s", dead ? "dead letters" : "events", c->state_dir,
	        ctl_strerror(l.err ? l.err : rc));
	return ctl_exit_of(l.err ? l.err : rc);
}

int
ctl_events_list(struct ctl *c, int argc, char **argv)
{
	return list(c, 0, argc, argv);
}

int
ctl_dead_list(struct ctl *c, int argc, char **argv)
{
	return list(c, 1, argc, argv);
}

/* ---- show ---- */

static int
show(struct ctl *c, int dead, int argc, char **argv)
{
	struct relay_event ev;
	struct due_set due = { 0 };
	struct args a;
	const char *state = NULL;
	uint64_t id;
	int64_t due_ms = 0;
	int rc, other;

	if ((rc = parse(c, dead, 0, argc, argv, &a)) >= 0)
		return rc;
	if (a.f.any || a.f.limit != DEFAULT_LIMIT)
		return ctl_usage(c, "%s takes an id, not filters", c->verb);
	if (a.nargs != 1)
		return ctl_usage(c, a.nargs ? "one id at a time" : "which one? give its id");
	if (ctl_parse_id(a.args[0], &id))
		return ctl_usage(c, "bad id \"%s\": ids are positive decimal numbers", a.args[0]);
	if ((rc = ctl_open(c, 0)))
		return rc;
	rc = dead ? relay_store_get_dead(c->st, NULL, id, &ev) : relay_store_get_event(c->st, NULL, id, &ev);
	if (rc == -RELAY_ENOTFOUND && !dead) {
		int hs = ctl_history_show(c, id);

		if (hs >= 0)
			return hs;
	}
	if (rc == -RELAY_ENOTFOUND) {
		struct relay_event tmp;

		other = dead ? relay_store_get_event(c->st, NULL, id, &tmp)
		             : relay_store_get_dead(c->st, NULL, id, &tmp);
		relay_event_clear(&tmp);
		if (other == 0)
			ctl_err("event %s is not %s: it is %s (" CTL_PROG " %s show %s)", a.args[0],
			        dead ? "a dead letter" : "queued", dead ? "queued" : "a dead letter",
			        dead ? "events" : "dead", a.args[0]);
		else
			ctl_err("no %s %s in %s (%s)", dead ? "dead letter" : "queued event", a.args[0],
			        c->state_dir, dead ? "delivered, dropped, or never stored"
			                           : "and none in its history: never stored, or it left "
			                             "the queue longer ago than the retention period");
		return 1;
	}
	if (rc) {
		ctl_err("cannot read %s %s from %s: %s", dead ? "dead letter" : "event", a.args[0],
		        c->state_dir, ctl_strerror(rc));
		return ctl_exit_of(rc);
	}
	if (!dead) {
		if ((rc = due_load(c, &due))) {
			relay_event_clear(&ev);
			ctl_err("cannot read the due index of %s: %s", c->state_dir, ctl_strerror(rc));
			return ctl_exit_of(rc);
		}
		state = due_state(c, &due, id, &due_ms);
		free(due.v);
	}
	if (c->json) {
		json_t *o = ctl_json_event(c, &ev, state, 1);

		if (o && dead)
			ctl_dead_versions(c, id, o);
		rc = ctl_json_print(o, 0);
	} else {
		ctl_print_event(c, &ev, state);
		if (dead)
			ctl_dead_versions(c, id, NULL);
		rc = 0;
	}
	relay_event_clear(&ev);
	return rc;
}

int
ctl_events_show(struct ctl *c, int argc, char **argv)
{
	return show(c, 0, argc, argv);
}

int
ctl_dead_show(struct ctl *c, int argc, char **argv)
{
	return show(c, 1, argc, argv);
}

/* ---- replay and drop ---- */

struct idlist {
	uint64_t *v;
	size_t n, cap;
};

static int
ids_add(struct idlist *l, uint64_t id)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		uint64_t *p = realloc(l->v, cap * sizeof(*p));

		if (!p)
			return ENOMEM;
		l->v = p;
		l->cap = cap;
	}
	l->v[l->n++] = id;
	return 0;
}

struct collector {
	struct ctl *c;
	const struct ctl_filter *f;
	struct idlist *ids;
	struct ctl_table *table;   /* dry run, human */
	json_t *records;           /* dry run, --json */
};

static int
collect_one(void *arg, const struct relay_event *ev)
{
	struct collector *k = arg;
	const struct relay_attempt *last = ctl_last_attempt(ev);
	char id[24], when[48], clip[256];
	int rc;

	if (k->f && !ctl_filter_match(k->c, k->f, ev))
		return 0;
	if ((rc = ids_add(k->ids, ev->id)))
		return rc;
	if (k->records) {
		json_t *o = ctl_json_event(k->c, ev, NULL, 0);

		return !o || json_array_append_new(k->records, o) ? ENOMEM : 0;
	}
	if (k->table) {
		ctl_fmt_u64(ev->id, id, sizeof(id));
		ctl_fmt_time(ev->dead_ms, when, sizeof(when));
		const char *row[] = { id, when, ev->source, ev->topic, ctl_route_of(k->c, ev),
		                      last ? last->error_name : NULL,
		                      ctl_clip(ev->dead_reason, REASON_COLS, clip, sizeof(clip)) };
		return ctl_table_add(k->table, row);
	}
	return 0;
}

static json_t *
json_ids(const struct idlist *l)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < l->n; i++)
		if (json_array_append_new(a, ctl_json_id(l->v[i]))) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static void
print_ids(const char *what, const struct idlist *l)
{
	if (!l->n)
		return;
	printf("%s", what);
	for (size_t i = 0; i < l->n && i < IDS_SHOWN; i++)
		printf("%s%" PRIu64, i ? ", " : " ", l->v[i]);
	if (l->n > IDS_SHOWN)
		printf(", and %zu more", l->n - IDS_SHOWN);
	printf("\n");
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A dead letter dropped by an operator goes into the history (kept for the
 * retention period, as delivered events are). */
static int
drop_into_history(struct ctl *c, MDB_txn *txn, uint64_t id)
{
	struct relay_hist_settle s;
	struct relay_event ev;
	char note[64];
	int rc = relay_store_get_dead(c->st, txn, id, &ev);

	if (rc)
		return rc;
	ctl_history_settle_of(c, ev.source, &s);
	relay_event_clear(&ev);
	s.outcome = RELAY_HIST_DROPPED;
	snprintf(note, sizeof(note), "dropped by an operator (" CTL_PROG " dead drop)");
	s.note = note;
	return relay_history_drop(c->st, txn, id, &s, now_ms(), NULL);
}

/*
 * Moves ids[from..to) in one write transaction, one nested transaction per
 * record so that a record that is gone or damaged leaves the others alone,
 * and the audit record of those it moved in the same transaction.
 * Appends to done, gone and failed; returns 0, or the error that aborted
 * the batch (nothing of it was written).
 */
static int
move_batch(struct ctl *c, int drop, const struct idlist *ids, size_t from, size_t to,
           struct idlist *done, struct idlist *gone, struct idlist *failed, int argc,
           char **argv)
{
	struct idlist bdone = { 0 }, bgone = { 0 }, bfailed = { 0 };
	MDB_txn *top, *child;
	int rc;

	if ((rc = relay_store_txn_begin(c->st, NULL, &top)))
		return rc;
	for (size_t i = from; i < to; i++) {
		if ((rc = relay_store_txn_begin(c->st, top, &child)))
			goto abort;
		rc = drop ? drop_into_history(c, child, ids->v[i])
		          : relay_store_replay(c->st, child, ids->v[i], now_ms());
		if (rc == 0) {
			if ((rc = relay_store_txn_commit(c->st, child)) || (rc = ids_add(&bdone, ids->v[i])))
				goto abort;
			continue;
		}
		relay_store_txn_abort(c->st, child);
		if (rc == -RELAY_ENOTFOUND) {
			rc = ids_add(&bgone, ids->v[i]);
		} else if (rc == -RELAY_EEXIST || rc == -RELAY_ECORRUPT || rc == -RELAY_EVERSION) {
			/* this record's trouble, not the store's */
			ctl_err("cannot %s dead letter %" PRIu64 ": %s", drop ? "drop" : "replay", ids->v[i],
			        ctl_strerror(rc));
			rc = ids_add(&bfailed, ids->v[i]);
		}
		if (rc)
			goto abort;
	}
	rc = bdone.n ? ctl_audit_commit(c, top, argc, argv, bdone.v, bdone.n, bdone.n)
	             : relay_store_txn_commit(c->st, top);
	if (rc)
		goto out;
	for (size_t i = 0; !rc && i < bdone.n; i++)
		rc = ids_add(done, bdone.v[i]);
	for (size_t i = 0; !rc && i < bgone.n; i++)
		rc = ids_add(gone, bgone.v[i]);
	for (size_t i = 0; !rc && i < bfailed.n; i++)
		rc = ids_add(failed, bfailed.v[i]);
	goto out;
abort:
	relay_store_txn_abort(c->st, top);
out:
	free(bdone.v);
	free(bgone.v);
	free(bfailed.v);
	return rc;
}

static int
act(struct ctl *c, int drop, int argc, char **argv)
{
	static const char *const titles[] = { "ID", "DEAD SINCE", "SOURCE", "TOPIC", "ROUTE",
		                                  "ERROR", "REASON" };
	const char *verb = drop ? "drop" : "replay";
	struct idlist ids = { 0 }, missing = { 0 }, done = { 0 }, gone = { 0 }, failed = { 0 };
	struct collector k = { 0 };
	struct args a;
	int rc, status = 0;

	if ((rc = parse(c, 1, drop ? 'd' : 'r', argc, argv, &a)) >= 0)
		return rc;
	if (a.nargs && (a.all || a.f.any))
		return ctl_usage(c, "give ids or %s, not both", drop ? "filters" : "--all or filters");
	if (a.all && a.f.any)
		return ctl_usage(c, "--all and filters exclude each other");
	if (!a.nargs && !a.all && !a.f.any)
		return ctl_usage(c, "which dead letters? give ids, %s", drop ? "or filters" : "--all, or filters");
	for (int i = 0; i < a.nargs; i++) {
		uint64_t id;

		if (ctl_parse_id(a.args[i], &id))
			return ctl_usage(c, "bad id \"%s\": ids are positive decimal numbers", a.args[i]);
	}
	if ((rc = ctl_open(c, !a.dry_run)))
		return rc;

	k.c = c;
	k.ids = &ids;
	if (a.dry_run && c->json)
		k.records = json_array();
	else if (a.dry_run)
		k.table = ctl_table_new("rllllll", titles);
	if (a.dry_run && !k.records && !k.table) {
		rc = ENOMEM;
		goto fail;
	}
	/* The snapshot: which dead letters there are now. */
	if (a.nargs) {
		for (int i = 0; i < a.nargs; i++) {
			struct relay_event ev;
			uint64_t id;

			ctl_parse_id(a.args[i], &id);
			rc = relay_store_get_dead(c->st, NULL, id, &ev);
			if (rc == 0)
				rc = collect_one(&k, &ev);
			else if (rc == -RELAY_ENOTFOUND)
				rc = ids_add(&missing, id);
			relay_event_clear(&ev);
			if (rc)
				goto fail;
		}
	} else {
		k.f = a.all ? NULL : &a.f;
		if ((rc = relay_store_foreach_dead(c->st, 0, collect_one, &k)))
			goto fail;
	}
	for (size_t i = 0; i < missing.n; i++)
		ctl_err("no dead letter %" PRIu64 " in %s", missing.v[i], c->state_dir);
	if (missing.n)
		status = 1;

	if (a.dry_run) {
		if (c->json) {
			json_t *o = json_pack("{s:s,s:b,s:I,s:o,s:o,s:o}", "action", verb, "dry_run", 1,
			                      "matched", (json_int_t)ids.n, "ids", json_ids(&ids),
			                      "missing", json_ids(&missing), "records", k.records);
			k.records = NULL;
			if ((rc = ctl_json_print(o, 0)))
				status = rc;
			goto out;
		}
		if (ids.n)
			ctl_table_print(k.table, stdout);
		else
			ctl_table_free(k.table);
		k.table = NULL;
		printf("dry run: would %s %zu dead letter%s%s; nothing changed\n", verb, ids.n,
		       ids.n == 1 ? "" : "s", drop ? "" : " back into the queue");
		goto out;
	}
	if (!ids.n && !c->json) {
		printf("no dead letters %s; nothing to %s\n", a.nargs ? "with those ids" : "match", verb);
		goto out;
	}
	if (drop && ids.n > 1 && !a.yes) {
		ctl_err("%zu dead letters would be dropped for good: add --yes to drop them (--dry-run "
		        "lists them)",
		        ids.n);
		status = 1;
		goto out;
	}

	for (size_t from = 0; from < ids.n; from += BATCH) {
		size_t to = from + BATCH < ids.n ? from + BATCH : ids.n;

		if ((rc = move_batch(c, drop, &ids, from, to, &done, &gone, &failed, argc, argv))) {
			ctl_err("cannot %s dead letters in %s: %s (%zu of %zu %s before this)", verb,
			        c->state_dir, ctl_strerror(rc), done.n, ids.n,
			        drop ? "dropped" : "replayed");
			status = ctl_exit_of(rc);
			break;
		}
	}
	if (failed.n && !status)
		status = EX_DATAERR;
	if (c->json) {
		json_t *o = json_pack("{s:s,s:b,s:I,s:I,s:o,s:o,s:o,s:o}", "action", verb, "dry_run", 0,
		                      "matched", (json_int_t)ids.n, "done", (json_int_t)done.n, "ids",
		                      json_ids(&done), "gone", json_ids(&gone), "missing",
		                      json_ids(&missing), "failed", json_ids(&failed));
		rc = ctl_json_print(o, 0);
		if (rc && !status)
			status = rc;
		goto out;
	}
	if (drop)
		printf("dropped %zu dead letter%s\n", done.n, done.n == 1 ? "" : "s");
	else
		printf("replayed %zu dead letter%s: back in the queue, due now\n", done.n,
		       done.n == 1 ? "" : "s");
	print_ids(drop ? "dropped:" : "replayed:", &done);
	print_ids("already gone (delivered, replayed or dropped meanwhile), skipped:", &gone);
	print_ids("failed:", &failed);
	goto out;
fail:
	ctl_err("cannot read the dead letters of %s: %s", c->state_dir, ctl_strerror(rc));
	status = ctl_exit_of(rc);
out:
	json_decref(k.records);
	ctl_table_free(k.table);
	free(ids.v);
	free(missing.v);
	free(done.v);
	free(gone.v);
	free(failed.v);
	return status;
}

int
ctl_dead_replay(struct ctl *c, int argc, char **argv)
{
	return act(c, 0, argc, argv);
}

int
ctl_dead_drop(struct ctl *c, int argc, char **argv)
{
	return act(c, 1, argc, argv);
}
