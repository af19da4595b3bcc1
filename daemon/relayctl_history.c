/*
 * odoo-relayctl: the history of events that left the queue (events show
 * and events list --delivered), trace, the audit trail (audit, and the
 * record every writing verb leaves), and dead edit. The tables are
 * history.h's; what the operator sees is odoo-relayctl(8).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "odoo_relay/clock.h"
#include "odoo_relay/error.h"
#include "odoo_relay/history.h"
#include "odoo_relay/jsonptr.h"
#include "odoo_relay/log.h"

#include "relayctl.h"

#define TRACE_MAX 10000
#define DIFF_MAX_LINES 2000 /* the table is lines squared: 16 MB at most */

static json_t *
jstr(const char *s)
{
	return s ? json_string(s) : json_null();
}

static const char *
hex_digest(const unsigned char d[32], char *buf)
{
	for (int i = 0; i < 32; i++)
		sprintf(buf + 2 * i, "%02x", d[i]);
	return buf;
}

/* ---- who ---- */

/* The Unix user running us ("root (sudo alice)" under sudo), in buf. */
static char *
who(char *buf, size_t n)
{
	struct passwd *pw = getpwuid(getuid());
	const char *sudo = getenv("SUDO_USER");

	if (pw)
		snprintf(buf, n, "%s", pw->pw_name);
	else
		snprintf(buf, n, "%lu", (unsigned long)getuid());
	if (getuid() == 0 && sudo && *sudo) {
		size_t l = strlen(buf);
		snprintf(buf + l, n - l, " (sudo %s)", sudo);
	}
	return buf;
}

/* ---- damaged records ---- */

/* Whether rc is a record that does not decode (damaged, or written by a
 * newer odoo-relay): a listing passes over those and says how many. */
static int
is_damaged(int rc)
{
	return rc == -RELAY_ECORRUPT || rc == -RELAY_EVERSION;
}

/* The one line a listing gives when it passed over records it could not
 * read: a warning on stderr, a JSON object there under --json (stdout
 * keeps one object per record). The listing still exits 0: the records it
 * shows are right, and an operator who asks for one that does not read
 * (events show ID) gets an error. */
static void
warn_damaged(const struct ctl *c, const char *table, uint64_t n)
{
	if (!n)
		return;
	if (c->json) {
		fprintf(stderr, "{\"warning\":\"damaged\",\"table\":\"%s\",\"damaged\":%" PRIu64
		        "}\n", table, n);
		return;
	}
	ctl_err("warning: %" PRIu64 " %s record%s in %s could not be read (damaged, or written by "
	        "a newer odoo-relay) and %s skipped", n, table, n == 1 ? "" : "s", c->state_dir,
	        n == 1 ? "was" : "were");
}

/* ---- the history's part of events show and events list ---- */

static int64_t
retention_ms(const struct ctl *c)
{
	return (c->cfg ? c->cfg->delivery.retention_s : RELAY_HISTORY_RETENTION_DEFAULT_S) * 1000;
}

static int
keep_body(const struct ctl *c, const char *source)
{
	const struct relay_source_conf *sc =
		c->cfg && source ? relay_config_source(c->cfg, source, strlen(source)) : NULL;

	return sc ? sc->retain_body : 1;
}

int
ctl_history_settle_of(const struct ctl *c, const char *source, struct relay_hist_settle *s)
{
	memset(s, 0, sizeof(*s));
	s->batch_row = -1;
	s->retention_ms = retention_ms(c);
	s->keep_body = keep_body(c, source);
	return 0;
}

static json_t *
json_outcome(const struct relay_hist_entry *e)
{
	char dig[65];
	json_t *o = json_object();

	if (!o)
		return NULL;
	if (json_object_set_new(o, "outcome", json_string(relay_hist_outcome_name(e->outcome))) ||
	    ctl_json_time(o, "settled", e->settled_ms) || ctl_json_time(o, "expires", e->expiry_ms) ||
	    json_object_set_new(o, "destination", jstr(e->destination)) ||
	    json_object_set_new(o, "batch", e->batch_id ? json_pack("{s:I,s:i,s:i}", "id",
	                                                            (json_int_t)e->batch_id, "size",
	                                                            (int)e->batch_size, "row",
	                                                            (int)e->batch_row)
	                                                : json_null()) ||
	    json_object_set_new(o, "http_status",
	                        e->http_status ? json_integer(e->http_status) : json_null()) ||
	    json_object_set_new(o, "external_id", jstr(e->xid)) ||
	    json_object_set_new(o, "odoo_model", jstr(e->odoo_model)) ||
	    json_object_set_new(o, "odoo_id", e->odoo_id > 0 ? json_integer(e->odoo_id) : json_null()) ||
	    json_object_set_new(o, "note", jstr(e->note)) ||
	    json_object_set_new(o, "body_kept", json_boolean(e->body_kept)) ||
	    json_object_set_new(o, "body_sha256", json_string(hex_digest(e->digest, dig)))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* The answer in words: "HTTP 200, external ID x, res.partner 7". */
static const char *
answer_text(const struct relay_hist_entry *e, char *buf, size_t n)
{
	size_t l = 0;

	buf[0] = '\0';
	if (e->http_status)
		l += (size_t)snprintf(buf + l, n - l, "HTTP %u", e->http_status);
	if (e->xid && l < n)
		l += (size_t)snprintf(buf + l, n - l, "%sexternal ID %s", l ? ", " : "", e->xid);
	if (e->odoo_model && e->odoo_id > 0 && l < n)
		snprintf(buf + l, n - l, "%s%s %" PRId64, l ? ", " : "", e->odoo_model, e->odoo_id);
	return buf[0] ? buf : "-";
}

static json_t *
json_versions(const struct relay_edit *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++) {
		json_t *o = json_pack("{s:i,s:o,s:s%}", "version", (int)v[i].version, "user",
		                      jstr(v[i].user), "body", (const char *)v[i].body, v[i].body_len);

		if (!o || ctl_json_time(o, "at", v[i].at_ms) || json_array_append_new(a, o)) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static void print_versions(const struct ctl *c, const struct relay_edit *v, size_t n);
static char *diff_text(const struct relay_edit *a, const struct relay_edit *b);

int
ctl_history_show(struct ctl *c, uint64_t id)
{
	struct relay_hist_entry e;
	struct relay_edit *v = NULL;
	size_t nv = 0;
	int rc = relay_history_get(c->st, NULL, id, &e);

	if (rc == -RELAY_ENOTFOUND)
		return -1;
	if (rc) {
		ctl_err("cannot read event %" PRIu64 " from the history of %s: %s", id, c->state_dir,
		        ctl_strerror(rc));
		return ctl_exit_of(rc);
	}
	uint64_t bad_edits = 0;

	relay_edit_list(c->st, NULL, id, &v, &nv, &bad_edits);
	warn_damaged(c, "edit", bad_edits);
	if (c->json) {
		json_t *o = ctl_json_event(c, &e.ev, "history", 1);

		if (o && (json_object_set_new(o, "outcome", json_outcome(&e)) ||
		          (nv && json_object_set_new(o, "versions", json_versions(v, nv))))) {
			json_decref(o);
			o = NULL;
		}
		if (o && !e.body_kept) {
			/* not an empty body: one the history did not keep */
			json_object_set_new(o, "body_bytes", json_null());
			json_object_set_new(o, "body_json", json_null());
			json_object_set_new(o, "body_text", json_null());
			json_object_set_new(o, "body_base64", json_null());
		}
		rc = ctl_json_print(o, 0);
	} else {
		char buf[512], dig[65];

		ctl_print_event(c, &e.ev, relay_hist_outcome_name(e.outcome));
		printf("\noutcome\n");
		printf("  %-13s%s\n", "outcome", relay_hist_outcome_name(e.outcome));
		ctl_fmt_when(c->now_ms, e.settled_ms, buf, sizeof(buf));
		printf("  %-13s%s\n", "settled", buf);
		printf("  %-13s%s\n", "destination", e.destination ? e.destination : "-");
		if (e.batch_id)
			printf("  %-13sbatch %" PRIu64 " of %u rows, row %d\n", "batch", e.batch_id,
			       e.batch_size, e.batch_row);
		printf("  %-13s%s\n", "answer", answer_text(&e, buf, sizeof(buf)));
		printf("  %-13s%s\n", "note", e.note ? e.note : "-");
		printf("  %-13ssha256 %s%s\n", "body", hex_digest(e.digest, dig),
		       e.body_kept ? "" : " (the body itself is not kept: retain_body is false)");
		ctl_fmt_when(c->now_ms, e.expiry_ms, buf, sizeof(buf));
		printf("  %-13s%s\n", "kept until", buf);
		if (nv)
			print_versions(c, v, nv);
		rc = 0;
	}
	for (size_t i = 0; i < nv; i++)
		relay_edit_clear(&v[i]);
	free(v);
	relay_hist_clear(&e);
	return rc;
}

struct hlister {
	struct ctl *c;
	const struct ctl_filter *f;
	struct ctl_table *table;
	json_t *lines;
	uint64_t matched, shown, damaged;
	int err;
};

static int
hlist_one(void *arg, const struct relay_hist_entry *e)
{
	struct hlister *l = arg;
	struct ctl_filter f = *l->f;
	char id[24], when[48], att[16], ans[256], clip[256];

	f.since_ms = f.until_ms = -1; /* they apply to the settled time here */
	if (!ctl_filter_match(l->c, &f, &e->ev))
		return 0;
	if (l->f->since_ms >= 0 && e->settled_ms < l->f->since_ms)
		return 0;
	if (l->f->until_ms >= 0 && e->settled_ms >= l->f->until_ms)
		return 0;
	l->matched++;
	if (l->f->limit && l->shown >= l->f->limit)
		return 0;
	l->shown++;
	if (l->c->json) {
		json_t *o = ctl_json_event(l->c, &e->ev, "history", 0);

		if (!o || json_object_set_new(o, "outcome", json_outcome(e)) ||
		    json_array_append_new(l->lines, o))
			return l->err = ENOMEM;
		return 0;
	}
	ctl_fmt_u64(e->ev.id, id, sizeof(id));
	ctl_fmt_time(e->settled_ms, when, sizeof(when));
	snprintf(att, sizeof(att), "%" PRIu32, e->ev.attempts);
	const char *row[] = { id, when, e->ev.source, e->ev.topic, e->ev.lane,
		              ctl_route_of(l->c, &e->ev), relay_hist_outcome_name(e->outcome), att,
		              ctl_clip(answer_text(e, ans, sizeof(ans)), 60, clip, sizeof(clip)) };
	return l->err = ctl_table_add(l->table, row);
}

int
ctl_history_list(struct ctl *c, const struct ctl_filter *f)
{
	static const char *const titles[] = { "ID", "SETTLED", "SOURCE", "TOPIC", "LANE", "ROUTE",
		                              "OUTCOME", "ATT", "ANSWER" };
	struct hlister l = { .c = c, .f = f };
	int rc;

	if (c->json)
		l.lines = json_array();
	else
		l.table = ctl_table_new("rllllllrl", titles);
	if (!l.lines && !l.table) {
		ctl_err("cannot list the history: out of memory");
		return EX_OSERR;
	}
	if (f->lane) {
		/* A lane is in the trace index: read its entries alone, not the
		 * whole history, a page of ids at a time until the index says
		 * there are no more (each page from the last id on). */
		uint64_t *ids = malloc(TRACE_MAX * sizeof(*ids)), from = 0;
		size_t n = 0;
		int more = 1;

		rc = ids ? 0 : ENOMEM;
		while (!rc && !l.err && more) {
			rc = relay_history_find_from(c->st, NULL, RELAY_TRACE_LANE, f->lane, from, ids,
			                             TRACE_MAX, &n, &more);
			if (rc || n == 0 || ids[n - 1] == UINT64_MAX)
				more = 0;
			else
				from = ids[n - 1] + 1;
			for (size_t i = 0; !rc && !l.err && i < n; i++) {
				struct relay_hist_entry e;
				int grc = relay_history_get(c->st, NULL, ids[i], &e);

				if (grc == 0) {
					hlist_one(&l, &e);
					relay_hist_clear(&e);
				} else if (is_damaged(grc)) {
					l.damaged++;
				} else if (grc != -RELAY_ENOTFOUND) { /* not found: swept meanwhile */
					rc = grc;
				}
			}
		}
		free(ids);
	} else {
		rc = relay_history_foreach(c->st, 0, hlist_one, &l, &l.damaged);
	}
	if (rc || l.err) {
		json_decref(l.lines);
		ctl_table_free(l.table);
		ctl_err("cannot list the history of %s: %s", c->state_dir,
		        ctl_strerror(l.err ? l.err : rc));
		return ctl_exit_of(l.err ? l.err : rc);
	}
	warn_damaged(c, "history", l.damaged);
	if (c->json)
		return ctl_json_print_lines(l.lines);
	if (!l.matched) {
		ctl_table_free(l.table);
		printf("no events in the history%s\n", f->any ? " match" : "");
		return 0;
	}
	ctl_table_print(l.table, stdout);
	if (l.shown < l.matched)
		printf("%" PRIu64 " of %" PRIu64 " events shown (--limit 0 shows all)\n", l.shown,
		       l.matched);
	else
		printf("%" PRIu64 " event%s in the history\n", l.matched, l.matched == 1 ? "" : "s");
	return 0;
}

/* ---- the audit trail ---- */

/* What an audit record of this run holds; user and what are the
 * caller's buffers (160 and 1024 bytes). */
static void
audit_entry(struct ctl *c, int argc, char **argv, const uint64_t *ids, size_t n_ids,
            uint64_t count, char *user, char *what, struct relay_audit_entry *e)
{
	size_t l = 0, wn = 1024;

	what[0] = '\0';
	for (int i = 1; i < argc && l < wn - 1; i++) {
		if (!strcmp(argv[i], "--json"))
			continue;
		l += (size_t)snprintf(what + l, wn - l, "%s%s", l ? " " : "", argv[i]);
	}
	if (l >= wn)
		memcpy(what + wn - 4, "...", 4);
	memset(e, 0, sizeof(*e));
	e->at_ms = relay_wall_ms();
	e->uid = (uint32_t)getuid();
	e->user = who(user, 160);
	e->verb = (char *)c->verb;
	e->what = what;
	e->count = count;
	e->ids = (uint64_t *)ids;
	e->n_ids = n_ids;
}

static void
audit_journal(struct ctl *c, const struct relay_audit_entry *e)
{
	char ids_text[64] = "";

	if (e->n_ids == 1)
		snprintf(ids_text, sizeof(ids_text), "%" PRIu64, e->ids[0]);
	else if (e->n_ids > 1)
		snprintf(ids_text, sizeof(ids_text), "%" PRIu64 "..%" PRIu64, e->ids[0],
		         e->ids[e->n_ids - 1]);
	sd_journal_send("MESSAGE=%s by %s: %s%s%s (%" PRIu64 " event%s)", c->verb, e->user, e->what,
	                ids_text[0] ? "; ids " : "", ids_text, e->count, e->count == 1 ? "" : "s",
	                "MESSAGE_ID=" RELAY_MSGID_AUDIT, "PRIORITY=5", "SYSLOG_IDENTIFIER=" CTL_PROG,
	                "RELAY_AUDIT_USER=%s", e->user, "RELAY_AUDIT_UID=%u", (unsigned)e->uid,
	                "RELAY_AUDIT_VERB=%s", c->verb, "RELAY_AUDIT_COUNT=%" PRIu64, e->count,
	                "RELAY_STATE_DIR=%s", c->state_dir ? c->state_dir : "", NULL);
}

int
ctl_audit_record(struct ctl *c, int argc, char **argv, const uint64_t *ids, size_t n_ids,
                 uint64_t count)
{
	char user[160], what[1024];
	struct relay_audit_entry e;
	int rc;

	audit_entry(c, argc, argv, ids, n_ids, count, user, what, &e); /* the record keeps 1000 */
	/* The journal first: it does not depend on the store being writable. */
	audit_journal(c, &e);
	rc = c->st ? relay_audit_add(c->st, NULL, &e, NULL) : EBADF;
	if (rc) {
		ctl_err("warning: cannot record this %s in the audit trail of %s: %s", c->verb,
		        c->state_dir, ctl_strerror(rc));
		return rc;
	}
	return 0;
}

int
ctl_audit_commit(struct ctl *c, MDB_txn *txn, int argc, char **argv, const uint64_t *ids,
                 size_t n_ids, uint64_t count)
{
	char user[160], what[1024];
	struct relay_audit_entry e;
	int rc, arc = 0;

	audit_entry(c, argc, argv, ids, n_ids, count, user, what, &e); /* the record keeps 1000 */
	if ((rc = relay_audit_commit(c->st, txn, &e, NULL, &arc)))
		return rc;
	if (arc)
		ctl_err("warning: cannot record this %s in the audit trail of %s: %s", c->verb,
		        c->state_dir, ctl_strerror(arc));
	/* After the commit: a line for a change that did not happen would lie. */
	audit_journal(c, &e);
	return 0;
}

struct alister {
	struct ctl *c;
	int64_t since, until;
	const char *user, *verb;
	uint64_t id;
	json_t *items;
	struct relay_audit_entry *keep;
	size_t n, cap;
	uint64_t damaged;
	int err;
};

static int
audit_match(const struct alister *l, const struct relay_audit_entry *e)
{
	if (l->since >= 0 && e->at_ms < l->since)
		return 0;
	if (l->until >= 0 && e->at_ms >= l->until)
		return 0;
	if (l->user && (!e->user || strncmp(e->user, l->user, strlen(l->user)) != 0 ||
	                (e->user[strlen(l->user)] != '\0' && e->user[strlen(l->user)] != ' ')))
		return 0;
	if (l->verb && (!e->verb || strstr(e->verb, l->verb) == NULL))
		return 0;
	if (l->id) {
		size_t i;
		for (i = 0; i < e->n_ids && e->ids[i] != l->id; i++)
			;
		if (i == e->n_ids)
			return 0;
	}
	return 1;
}

static json_t *
json_audit(const struct relay_audit_entry *e)
{
	json_t *o = json_pack("{s:I,s:s?,s:i,s:s?,s:s?,s:I}", "seq", (json_int_t)e->seq, "user",
	                      e->user, "uid", (int)e->uid, "verb", e->verb, "what", e->what, "count",
	                      (json_int_t)e->count);
	json_t *a = json_array();

	for (size_t i = 0; o && a && i < e->n_ids; i++)
		json_array_append_new(a, ctl_json_id(e->ids[i]));
	if (!o || !a || ctl_json_time(o, "at", e->at_ms) || json_object_set_new(o, "ids", a)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int
audit_one(void *arg, const struct relay_audit_entry *e)
{
	struct alister *l = arg;

	if (!audit_match(l, e))
		return 0;
	if (l->c->json) {
		json_t *o = json_audit(e);

		if (!o || json_array_append_new(l->items, o))
			return l->err = ENOMEM;
		return 0;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct relay_audit_entry *k = realloc(l->keep, cap * sizeof(*k));

		if (!k)
			return l->err = ENOMEM;
		l->keep = k;
		l->cap = cap;
	}
	struct relay_audit_entry *d = &l->keep[l->n];
	memset(d, 0, sizeof(*d));
	d->seq = e->seq;
	d->at_ms = e->at_ms;
	d->count = e->count;
	d->n_ids = e->n_ids;
	if (!(d->user = strdup(e->user ? e->user : "")) || !(d->verb = strdup(e->verb ? e->verb : "")) ||
	    !(d->what = strdup(e->what ? e->what : ""))) {
		relay_audit_clear(d);
		return l->err = ENOMEM;
	}
	l->n++;
	return 0;
}

static const struct option audit_opts[] = {
	{ "since", required_argument, NULL, 'S' },
	{ "until", required_argument, NULL, 'U' },
	{ "user", required_argument, NULL, 'u' },
	{ "verb", required_argument, NULL, 'v' },
	{ "id", required_argument, NULL, 'i' },
	{ "limit", required_argument, NULL, 'l' },
	{ "json", no_argument, NULL, CTL_OPT_JSON },
	{ "help", no_argument, NULL, CTL_OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

int
ctl_audit(struct ctl *c, int argc, char **argv)
{
	static const char *const titles[] = { "WHEN", "USER", "VERB", "COUNT", "WHAT" };
	struct alister l = { .c = c, .since = -1, .until = -1 };
	unsigned long limit = 50;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, ":h", audit_opts, NULL)) != -1) {
		char *end;

		switch (ch) {
		case CTL_OPT_HELP: return ctl_help(c->verb);
		case CTL_OPT_JSON: c->json = 1; break;
		case 'S':
			if (ctl_parse_time(optarg, c->now_ms, &l.since))
				return ctl_usage(c, "bad time \"%s\" for --since", optarg);
			break;
		case 'U':
			if (ctl_parse_time(optarg, c->now_ms, &l.until))
				return ctl_usage(c, "bad time \"%s\" for --until", optarg);
			break;
		case 'u': l.user = optarg; break;
		case 'v': l.verb = optarg; break;
		case 'i':
			if (ctl_parse_id(optarg, &l.id))
				return ctl_usage(c, "bad id \"%s\": ids are positive decimal numbers", optarg);
			break;
		case 'l':
			errno = 0;
			limit = strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg || optarg[0] == '-')
				return ctl_usage(c, "bad number \"%s\" for --limit", optarg);
			break;
		default: return ctl_getopt_error(c, ch, argv);
		}
	}
	if (optind < argc)
		return ctl_usage(c, "unexpected argument \"%s\" (filters are options)", argv[optind]);
	if ((rc = ctl_open(c, 0)))
		return rc;
	if (c->json && !(l.items = json_array()))
		return ctl_exit_of(ENOMEM);
	rc = relay_audit_foreach(c->st, audit_one, &l, &l.damaged);
	if (rc || l.err) {
		ctl_err("cannot read the audit trail of %s: %s", c->state_dir,
		        ctl_strerror(l.err ? l.err : rc));
		rc = ctl_exit_of(l.err ? l.err : rc);
		goto out;
	}
	warn_damaged(c, "audit", l.damaged);
	if (c->json) {
		size_t n = json_array_size(l.items), from = limit && n > limit ? n - limit : 0;

		for (size_t i = from; i < n && !rc; i++)
			rc = ctl_json_print(json_incref(json_array_get(l.items, i)), 1);
		goto out;
	}
	if (!l.n) {
		printf("no operator writes recorded%s\n",
		       l.since >= 0 || l.until >= 0 || l.user || l.verb || l.id ? " match" : "");
		goto out;
	}
	struct ctl_table *t = ctl_table_new("lllrl", titles);
	size_t from = limit && l.n > limit ? l.n - limit : 0;

	for (size_t i = from; t && i < l.n; i++) {
		char when[48], cnt[24];

		ctl_fmt_time(l.keep[i].at_ms, when, sizeof(when));
		ctl_fmt_u64(l.keep[i].count, cnt, sizeof(cnt));
		const char *row[] = { when, l.keep[i].user, l.keep[i].verb, cnt, l.keep[i].what };
		if (ctl_table_add(t, row))
			break;
	}
	if (t)
		ctl_table_print(t, stdout);
	if (from)
		printf("the last %lu of %zu shown (--limit 0 shows all)\n", limit, l.n);
out:
	for (size_t i = 0; i < l.n; i++)
		relay_audit_clear(&l.keep[i]);
	free(l.keep);
	json_decref(l.items);
	return rc;
}

/* ---- trace ---- */

struct story {
	int64_t at_ms;
	uint64_t id;
	int order;        /* within one event at one time: received first */
	char *kind;       /* "received", "attempt", "dead", "replayed", "edited", ... */
	char *text;
};

struct tracer {
	struct ctl *c;
	const char *key;
	char odoo[320];   /* the key as "model,id" when it reads as one */
	int kinds;        /* bit per kind searched: 1 dedup, 2 lane, 4 xid, 8 odoo */
	const char *source;
	uint64_t *ids;    /* matched, any state */
	size_t n_ids, cap_ids;
	json_t *events;
	struct story *lines;
	size_t n_lines, cap_lines;
	uint64_t damaged; /* history, audit and edit records that did not read */
	int err;
};

static int
add_line(struct tracer *t, int64_t at, uint64_t id, int order, const char *kind,
         const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int
add_line(struct tracer *t, int64_t at, uint64_t id, int order, const char *kind,
         const char *fmt, ...)
{
	va_list ap;
	struct story *s;

	if (t->n_lines == t->cap_lines) {
		size_t cap = t->cap_lines ? 2 * t->cap_lines : 32;
		struct story *n = realloc(t->lines, cap * sizeof(*n));

		if (!n)
			return t->err = ENOMEM;
		t->lines = n;
		t->cap_lines = cap;
	}
	s = &t->lines[t->n_lines];
	s->at_ms = at;
	s->id = id;
	s->order = order;
	s->text = NULL;
	va_start(ap, fmt);
	if (vasprintf(&s->text, fmt, ap) < 0)
		s->text = NULL;
	va_end(ap);
	if (!s->text || !(s->kind = strdup(kind))) {
		free(s->text);
		return t->err = ENOMEM;
	}
	t->n_lines++;
	return 0;
}

static int
seen(const struct tracer *t, uint64_t id)
{
	for (size_t i = 0; i < t->n_ids; i++)
		if (t->ids[i] == id)
			return 1;
	return 0;
}

static int
add_id(struct tracer *t, uint64_t id)
{
	if (t->n_ids == t->cap_ids) {
		size_t cap = t->cap_ids ? 2 * t->cap_ids : 16;
		uint64_t *n = realloc(t->ids, cap * sizeof(*n));

		if (!n)
			return t->err = ENOMEM;
		t->ids = n;
		t->cap_ids = cap;
	}
	t->ids[t->n_ids++] = id;
	return 0;
}

/* The lines every stored record gives: received, attempts, dead. */
static void
event_story(struct tracer *t, const struct relay_event *ev)
{
	add_line(t, ev->received_ms, ev->id, 0, "received",
	         "received from %s, topic \"%s\"%s%s%s%s", ev->source, ev->topic ? ev->topic : "",
	         ev->lane && *ev->lane ? ", lane " : "", ev->lane && *ev->lane ? ev->lane : "",
	         ev->dedup_key ? ", dedup key " : "", ev->dedup_key ? ev->dedup_key : "");
	for (size_t i = 0; i < ev->n_history; i++) {
		const struct relay_attempt *a = &ev->history[i];
		char http[24] = "";

		if (a->http_status)
			snprintf(http, sizeof(http), ", HTTP %u", a->http_status);
		add_line(t, a->at_ms, ev->id, 1, "attempt", "attempt: %s%s%s%s%s%s",
		         relay_class_name(a->klass), http, a->error_name ? ", " : "",
		         a->error_name ? a->error_name : "", a->message ? ": " : "",
		         a->message ? a->message : "");
	}
	if (ev->dead_ms)
		add_line(t, ev->dead_ms, ev->id, 2, "dead", "dead-lettered: %s",
		         ev->dead_reason ? ev->dead_reason : "-");
}

static int
json_trace_event(struct tracer *t, const struct relay_event *ev, const char *state,
                 const struct relay_hist_entry *h)
{
	json_t *o;

	if (!t->c->json)
		return 0;
	o = ctl_json_event(t->c, ev, state, 0);
	if (o && json_object_set_new(o, "state", json_string(state))) {
		json_decref(o);
		o = NULL;
	}
	if (o && h && json_object_set_new(o, "outcome", json_outcome(h))) {
		json_decref(o);
		o = NULL;
	}
	if (!o || json_array_append_new(t->events, o))
		return t->err = ENOMEM;
	return 0;
}

/* Whether a queued or dead record matches the key (the history is
 * searched through its index instead). */
static int
live_match(const struct tracer *t, const struct relay_event *ev)
{
	if (t->source && strcmp(t->source, ev->source) != 0)
		return 0;
	if ((t->kinds & 1) && ev->dedup_key && strcmp(ev->dedup_key, t->key) == 0)
		return 1;
	if ((t->kinds & 2) && ev->lane && strcmp(ev->lane, t->key) == 0)
		return 1;
	/* A dead letter names the external ID it failed to write in its
	 * request, as a JSON string. */
	if ((t->kinds & 4) && ev->request) {
		size_t n = strlen(t->key);
		for (const char *p = strstr(ev->request, t->key); p; p = strstr(p + 1, t->key))
			if (p > ev->request && p[-1] == '"' && p[n] == '"')
				return 1;
	}
	return 0;
}

static int
trace_live(void *arg, const struct relay_event *ev)
{
	struct tracer *t = arg;

	if (!live_match(t, ev) || seen(t, ev->id))
		return 0;
	if (add_id(t, ev->id))
		return t->err;
	event_story(t, ev);
	if (!ev->dead_ms)
		add_line(t, ev->due_ms > t->c->now_ms ? ev->due_ms : t->c->now_ms, ev->id, 3, "queued",
		         "queued: %u attempt%s so far", ev->attempts, ev->attempts == 1 ? "" : "s");
	return json_trace_event(t, ev, ev->dead_ms ? "dead" : "queued", NULL);
}

static void
trace_history(struct tracer *t, uint64_t id)
{
	struct relay_hist_entry e;
	char ans[512];
	int rc;

	if (seen(t, id))
		return;
	if ((rc = relay_history_get(t->c->st, NULL, id, &e))) {
		/* not found: swept since its trace key was read */
		if (is_damaged(rc))
			t->damaged++;
		return;
	}
	if (t->source && strcmp(t->source, e.ev.source) != 0) {
		relay_hist_clear(&e);
		return;
	}
	if (add_id(t, id) == 0) {
		const char *name = relay_hist_outcome_name(e.outcome);
		/* the note only when it says more than the outcome's name */
		const char *note = e.note && strcmp(e.note, name) != 0 ? e.note : NULL;

		event_story(t, &e.ev);
		add_line(t, e.settled_ms, id, 3, name, "%s%s%s: %s%s%s", name,
		         e.destination ? " to " : "", e.destination ? e.destination : "",
		         answer_text(&e, ans, sizeof(ans)), note ? "; " : "", note ? note : "");
		json_trace_event(t, &e.ev, "history", &e);
	}
	relay_hist_clear(&e);
}

static int
trace_audit(void *arg, const struct relay_audit_entry *e)
{
	struct tracer *t = arg;

	for (size_t i = 0; i < e->n_ids; i++)
		if (seen(t, e->ids[i]))
			add_line(t, e->at_ms, e->ids[i], 2, e->verb, "%s by %s%s%s", e->verb, e->user,
			         e->what && *e->what ? ": " : "", e->what ? e->what : "");
	return t->err;
}

static int
story_cmp(const void *a, const void *b)
{
	const struct story *x = a, *y = b;

	if (x->at_ms != y->at_ms)
		return x->at_ms < y->at_ms ? -1 : 1;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->order - y->order;
}

/* "model,id", "model:id" or "model/id" as "model,id" into buf; 0 or -1. */
static int
odoo_key(const char *key, char *buf, size_t n)
{
	const char *sep = strpbrk(key, ",:/");
	size_t ml;

	if (!sep || sep == key || !sep[1])
		return -1;
	for (const char *p = sep + 1; *p; p++)
		if (!isdigit((unsigned char)*p))
			return -1;
	ml = (size_t)(sep - key);
	for (size_t i = 0; i < ml; i++)
		if (!islower((unsigned char)key[i]) && !isdigit((unsigned char)key[i]) &&
		    key[i] != '.' && key[i] != '_')
			return -1;
	if (snprintf(buf, n, "%.*s,%s", (int)ml, key, sep + 1) >= (int)n)
		return -1;
	return 0;
}

static const struct option trace_opts[] = {
	{ "kind", required_argument, NULL, 'k' },
	{ "source", required_argument, NULL, 's' },
	{ "json", no_argument, NULL, CTL_OPT_JSON },
	{ "help", no_argument, NULL, CTL_OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

int
ctl_trace(struct ctl *c, int argc, char **argv)
{
	static const struct {
		const char *name;
		int bit, kind;
	} kinds[] = {
		{ "dedup", 1, RELAY_TRACE_DEDUP }, { "lane", 2, RELAY_TRACE_LANE },
		{ "xid", 4, RELAY_TRACE_XID }, { "odoo", 8, RELAY_TRACE_ODOO },
	};
	struct tracer t = { .c = c };
	uint64_t *found = NULL;
	int ch, rc = 0, more_any = 0;

	while ((ch = getopt_long(argc, argv, ":h", trace_opts, NULL)) != -1) {
		switch (ch) {
		case CTL_OPT_HELP: return ctl_help(c->verb);
		case CTL_OPT_JSON: c->json = 1; break;
		case 's': t.source = optarg; break;
		case 'k': {
			size_t i;
			for (i = 0; i < 4 && strcmp(kinds[i].name, optarg) != 0; i++)
				;
			if (i == 4)
				return ctl_usage(c, "unknown kind \"%s\" (dedup, lane, xid or odoo)", optarg);
			t.kinds |= kinds[i].bit;
			break;
		}
		default: return ctl_getopt_error(c, ch, argv);
		}
	}
	if (argc - optind != 1)
		return ctl_usage(c, argc - optind ? "one key at a time" : "trace what? give a key");
	t.key = argv[optind];
	if (!*t.key)
		return ctl_usage(c, "an empty key matches nothing");
	if (!t.kinds)
		t.kinds = 1 | 2 | 4 | (odoo_key(t.key, t.odoo, sizeof(t.odoo)) == 0 ? 8 : 0);
	else if ((t.kinds & 8) && odoo_key(t.key, t.odoo, sizeof(t.odoo)))
		return ctl_usage(c, "an Odoo record is model,id (res.partner,42)");
	if ((rc = ctl_open(c, 0)))
		return rc;
	if (c->json && !(t.events = json_array()))
		return ctl_exit_of(ENOMEM);
	if (!(found = malloc(TRACE_MAX * sizeof(*found)))) {
		rc = ENOMEM;
		goto fail;
	}
	/* The history, through its index. */
	for (size_t i = 0; i < 4; i++) {
		size_t n = 0;
		int more = 0;

		if (!(t.kinds & kinds[i].bit))
			continue;
		rc = relay_history_find(c->st, NULL, kinds[i].kind, kinds[i].kind == RELAY_TRACE_ODOO ? t.odoo : t.key,
		                        found, TRACE_MAX, &n, &more);
		if (rc)
			goto fail;
		more_any |= more;
		for (size_t k = 0; k < n && !t.err; k++)
			trace_history(&t, found[k]);
	}
	/* Queued events and dead letters: read whole (the queue is the small
	 * part of the store). */
	if ((rc = relay_store_foreach_event(c->st, 0, trace_live, &t)) ||
	    (rc = relay_store_foreach_dead(c->st, 0, trace_live, &t)))
		goto fail;
	/* Edits and the operator's writes on those events. */
	for (size_t i = 0; i < t.n_ids && !t.err; i++) {
		struct relay_edit *v = NULL;
		size_t nv = 0;
		uint64_t bad = 0;

		if (relay_edit_list(c->st, NULL, t.ids[i], &v, &nv, &bad) == 0)
			for (size_t k = 0; k < nv; k++) {
				if (v[k].version > 1)
					add_line(&t, v[k].at_ms, t.ids[i], 2, "edited",
					         "body edited by %s (version %u, %zu bytes)",
					         v[k].user ? v[k].user : "?", v[k].version, v[k].body_len);
				relay_edit_clear(&v[k]);
			}
		t.damaged += bad;
		free(v);
	}
	if (!t.err && t.n_ids) {
		uint64_t bad = 0;

		if ((rc = relay_audit_foreach(c->st, trace_audit, &t, &bad)))
			goto fail;
		t.damaged += bad;
	}
	if (t.err) {
		rc = t.err;
		goto fail;
	}
	if (t.n_lines)
		qsort(t.lines, t.n_lines, sizeof(*t.lines), story_cmp);
	if (c->json) {
		json_t *story = json_array(), *o;

		for (size_t i = 0; story && i < t.n_lines; i++) {
			o = json_pack("{s:o,s:s,s:s}", "id", ctl_json_id(t.lines[i].id), "what",
			              t.lines[i].kind, "text", t.lines[i].text);
			if (!o || ctl_json_time(o, "at", t.lines[i].at_ms) || json_array_append_new(story, o))
				break;
		}
		o = json_pack("{s:s,s:o,s:o,s:b,s:I}", "key", t.key, "events", t.events, "story",
		              story ? story : json_null(), "truncated", more_any, "damaged",
		              (json_int_t)t.damaged);
		t.events = NULL;
		rc = ctl_json_print(o, 0);
		goto out;
	}
	warn_damaged(c, "history, audit or edit", t.damaged);
	if (!t.n_ids) {
		printf("nothing matches \"%s\" (queued, dead letters, or the history of the last "
		       "retention period)\n", t.key);
		rc = 1;
		goto out;
	}
	printf("%zu event%s \"%s\"%s\n", t.n_ids, t.n_ids == 1 ? " matches" : "s match", t.key,
	       more_any ? " (the first " "10000 of the history)" : "");
	for (size_t i = 0; i < t.n_lines; i++) {
		char when[48], id[24];

		ctl_fmt_time(t.lines[i].at_ms, when, sizeof(when));
		ctl_fmt_u64(t.lines[i].id, id, sizeof(id));
		printf("%s  event %-8s %s\n", when, id, t.lines[i].text);
	}
	rc = 0;
	goto out;
fail:
	ctl_err("cannot trace \"%s\" in %s: %s", t.key, c->state_dir, ctl_strerror(rc));
	rc = ctl_exit_of(rc);
out:
	for (size_t i = 0; i < t.n_lines; i++) {
		free(t.lines[i].kind);
		free(t.lines[i].text);
	}
	free(t.lines);
	free(t.ids);
	free(found);
	json_decref(t.events);
	return rc;
}

/* ---- dead edit ---- */

/* The pretty form of a JSON body (for editing and diffs), else a copy. */
static char *
pretty(const unsigned char *body, size_t len, size_t *out_len)
{
	json_t *v = json_loadb((const char *)body, len, JSON_DECODE_ANY, NULL);
	char *s = v ? json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER) : NULL;

	json_decref(v);
	if (!s) {
		if (!(s = malloc(len + 1)))
			return NULL;
		memcpy(s, body, len);
		s[len] = '\0';
	}
	*out_len = strlen(s);
	return s;
}

static size_t
split_lines(char *s, char ***out)
{
	size_t n = 0, cap = 0;
	char **v = NULL;

	for (char *p = s; p && *p;) {
		char *nl = strchr(p, '\n');

		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			char **nv = realloc(v, cap * sizeof(*nv));
			if (!nv)
				break;
			v = nv;
		}
		v[n++] = p;
		if (!nl)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	*out = v;
	return n;
}

/* A line diff (longest common subsequence) of two versions, "-"/"+"/" "
 * prefixed; malloc'd text, or NULL. */
static char *
diff_text(const struct relay_edit *a, const struct relay_edit *b)
{
	size_t la, lb, na, nb;
	char *sa = pretty(a->body, a->body_len, &la), *sb = pretty(b->body, b->body_len, &lb);
	char **va = NULL, **vb = NULL, *out = NULL;
	unsigned *dp = NULL;
	size_t olen = 0;
	FILE *f;

	if (!sa || !sb)
		goto done;
	na = split_lines(sa, &va);
	nb = split_lines(sb, &vb);
	if (!(f = open_memstream(&out, &olen)))
		goto done;
	if (na > DIFF_MAX_LINES || nb > DIFF_MAX_LINES ||
	    !(dp = calloc((na + 1) * (nb + 1), sizeof(*dp)))) {
		fprintf(f, "(too long to compare line by line: %zu and %zu lines)\n", na, nb);
		fclose(f);
		goto done;
	}
	for (size_t i = na; i-- > 0;)
		for (size_t j = nb; j-- > 0;)
			dp[i * (nb + 1) + j] = strcmp(va[i], vb[j]) == 0
			                               ? dp[(i + 1) * (nb + 1) + j + 1] + 1
			                               : dp[(i + 1) * (nb + 1) + j] > dp[i * (nb + 1) + j + 1]
			                                         ? dp[(i + 1) * (nb + 1) + j]
			                                         : dp[i * (nb + 1) + j + 1];
	size_t i = 0, j = 0;
	while (i < na || j < nb) {
		if (i < na && j < nb && strcmp(va[i], vb[j]) == 0) {
			fprintf(f, "  %s\n", va[i]);
			i++, j++;
		} else if (j < nb && (i == na || dp[i * (nb + 1) + j + 1] >= dp[(i + 1) * (nb + 1) + j])) {
			fprintf(f, "+ %s\n", vb[j++]);
		} else {
			fprintf(f, "- %s\n", va[i++]);
		}
	}
	fclose(f);
done:
	free(dp);
	free(va);
	free(vb);
	free(sa);
	free(sb);
	return out;
}

static void
print_versions(const struct ctl *c, const struct relay_edit *v, size_t n)
{
	char when[128], size[32];

	printf("\nbody versions (%zu)\n", n);
	for (size_t i = 0; i < n; i++) {
		ctl_fmt_when(c->now_ms, v[i].at_ms, when, sizeof(when));
		ctl_fmt_bytes(v[i].body_len, size, sizeof(size));
		printf("  %u. %s  %s  %s\n", v[i].version, when,
		       v[i].version == 1 ? "original" : v[i].user ? v[i].user : "?", size);
	}
	if (n >= 2) {
		char *d = diff_text(&v[0], &v[n - 1]);

		printf("\ndiff of version 1 (original) and version %u (current)\n", v[n - 1].version);
		if (d)
			fputs(d, stdout);
		free(d);
	}
	printf("\n");
}

int
ctl_dead_versions(struct ctl *c, uint64_t id, json_t *o)
{
	struct relay_edit *v = NULL;
	size_t n = 0;
	uint64_t bad = 0;
	int rc = relay_edit_list(c->st, NULL, id, &v, &n, &bad);

	warn_damaged(c, "edit", bad);
	if (rc || !n)
		goto out;
	if (o) {
		char *d = n >= 2 ? diff_text(&v[0], &v[n - 1]) : NULL;

		json_object_set_new(o, "versions", json_versions(v, n));
		json_object_set_new(o, "diff", jstr(d));
		free(d);
	} else {
		print_versions(c, v, n);
	}
out:
	for (size_t i = 0; i < n; i++)
		relay_edit_clear(&v[i]);
	free(v);
	return rc;
}

static int
read_all(FILE *f, char **out, size_t *len)
{
	char *buf = NULL;
	size_t n = 0, cap = 0, r;

	do {
		if (n + 4096 > cap) {
			cap = cap ? 2 * cap : 8192;
			char *nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				return ENOMEM;
			}
			buf = nb;
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
	} while (r > 0);
	if (ferror(f)) {
		free(buf);
		return EIO;
	}
	if (!buf && !(buf = malloc(1)))
		return ENOMEM;
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/* Sets ptr (RFC 6901) in root to value; 0, or -1 when its parent is not
 * there or not a container. */
static int
ptr_set(json_t *root, const char *ptr, json_t *value)
{
	const char *slash = strrchr(ptr, '/');
	char *parent_ptr, *tok;
	json_t *parent;
	size_t tl;
	int rc = -1;

	if (!slash || ptr[0] != '/')
		return -1;
	if (!(parent_ptr = strndup(ptr, (size_t)(slash - ptr))))
		return -1;
	parent = parent_ptr[0] ? relay_jsonptr_get(root, parent_ptr) : root;
	free(parent_ptr);
	if (!parent || !(tok = malloc(strlen(slash) + 1)))
		return -1;
	/* unescape ~1 then ~0 */
	tl = 0;
	for (const char *p = slash + 1; *p; p++) {
		if (p[0] == '~' && p[1] == '1') {
			tok[tl++] = '/';
			p++;
		} else if (p[0] == '~' && p[1] == '0') {
			tok[tl++] = '~';
			p++;
		} else {
			tok[tl++] = *p;
		}
	}
	tok[tl] = '\0';
	if (json_is_object(parent)) {
		rc = json_object_set(parent, tok, value);
	} else if (json_is_array(parent)) {
		char *end;
		unsigned long i = strtoul(tok, &end, 10);

		if (strcmp(tok, "-") == 0)
			rc = json_array_append(parent, value);
		else if (*tok && !*end && i < json_array_size(parent))
			rc = json_array_set(parent, i, value);
	}
	free(tok);
	return rc;
}

/* Edits body in $VISUAL, $EDITOR or vi; *out the new text (malloc'd). */
static int
run_editor(const char *text, size_t len, char **out, size_t *out_len)
{
	const char *tmp = getenv("TMPDIR"), *ed = getenv("VISUAL");
	char path[4096], *cmd = NULL;
	int fd, rc = 0, st;
	FILE *f;

	if (!tmp || !*tmp)
		tmp = "/tmp";
	if (snprintf(path, sizeof(path), "%s/odoo-relayctl-edit-XXXXXX.json", tmp) >=
	    (int)sizeof(path))
		return ENAMETOOLONG;
	if (!ed || !*ed)
		ed = getenv("EDITOR");
	if (!ed || !*ed)
		ed = "vi";
	if ((fd = mkstemps(path, 5)) < 0)
		return errno;
	if (write(fd, text, len) != (ssize_t)len) {
		rc = errno ? errno : EIO;
		close(fd);
		goto out;
	}
	close(fd);
	/* Through the shell, as git and crontab do: $EDITOR may hold options. */
	if (asprintf(&cmd, "%s \"$1\"", ed) < 0) {
		rc = ENOMEM;
		goto out;
	}
	pid_t pid = fork();
	if (pid < 0) {
		rc = errno;
		goto out;
	}
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, "sh", path, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		rc = -RELAY_EINVAL;
		goto out;
	}
	if (!(f = fopen(path, "r"))) {
		rc = errno;
		goto out;
	}
	rc = read_all(f, out, out_len);
	fclose(f);
out:
	unlink(path);
	free(cmd);
	return rc;
}

static const struct option edit_opts[] = {
	{ "set", required_argument, NULL, 's' },
	{ "body-file", required_argument, NULL, 'f' },
	{ "replay", no_argument, NULL, 'r' },
	{ "json", no_argument, NULL, CTL_OPT_JSON },
	{ "help", no_argument, NULL, CTL_OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

int
ctl_dead_edit(struct ctl *c, int argc, char **argv)
{
	const char *sets[64], *body_file = NULL;
	size_t n_sets = 0, len = 0;
	char *body = NULL, user[160];
	struct relay_event ev = { 0 };
	uint64_t id;
	uint32_t version = 0;
	int ch, rc, replay = 0, is_json;
	MDB_txn *txn = NULL;

	while ((ch = getopt_long(argc, argv, ":h", edit_opts, NULL)) != -1) {
		switch (ch) {
		case CTL_OPT_HELP: return ctl_help(c->verb);
		case CTL_OPT_JSON: c->json = 1; break;
		case 's':
			if (n_sets == sizeof(sets) / sizeof(sets[0]))
				return ctl_usage(c, "at most 64 --set");
			if (optarg[0] != '/' || !strchr(optarg, '='))
				return ctl_usage(c, "--set takes /pointer=value, not \"%s\"", optarg);
			sets[n_sets++] = optarg;
			break;
		case 'f': body_file = optarg; break;
		case 'r': replay = 1; break;
		default: return ctl_getopt_error(c, ch, argv);
		}
	}
	if (argc - optind != 1)
		return ctl_usage(c, argc - optind ? "one id at a time" : "which one? give its id");
	if (ctl_parse_id(argv[optind], &id))
		return ctl_usage(c, "bad id \"%s\": ids are positive decimal numbers", argv[optind]);
	if (body_file && n_sets)
		return ctl_usage(c, "--body-file and --set exclude each other");
	if ((rc = ctl_open(c, 1)))
		return rc;
	if ((rc = relay_store_get_dead(c->st, NULL, id, &ev))) {
		if (rc == -RELAY_ENOTFOUND) {
			ctl_err("no dead letter %" PRIu64 " in %s (only dead letters can be edited)", id,
			        c->state_dir);
			return 1;
		}
		ctl_err("cannot read dead letter %" PRIu64 ": %s", id, ctl_strerror(rc));
		return ctl_exit_of(rc);
	}
	{
		const struct relay_source_conf *sc =
			c->cfg ? relay_config_source(c->cfg, ev.source, strlen(ev.source)) : NULL;
		json_t *v = json_loadb((const char *)ev.body, ev.body_len, JSON_DECODE_ANY, NULL);

		/* A JSON source: the configuration says so, or (without one) the
		 * body it sent was JSON. */
		is_json = sc ? sc->require_json || v != NULL : v != NULL;
		json_decref(v);
	}
	if (body_file) {
		FILE *f = strcmp(body_file, "-") == 0 ? stdin : fopen(body_file, "r");

		if (!f) {
			ctl_err("cannot read %s: %s", body_file, ctl_strerror(errno));
			rc = EX_NOINPUT;
			goto out;
		}
		rc = read_all(f, &body, &len);
		if (f != stdin)
			fclose(f);
		if (rc) {
			ctl_err("cannot read %s: %s", body_file, ctl_strerror(rc));
			rc = EX_IOERR;
			goto out;
		}
	} else if (n_sets) {
		json_error_t jerr;
		json_t *root = json_loadb((const char *)ev.body, ev.body_len, JSON_DECODE_ANY, &jerr);

		if (!root) {
			ctl_err("cannot --set in the body of dead letter %" PRIu64 ": it is not JSON "
			        "(%s); use --body-file", id, jerr.text);
			rc = EX_DATAERR;
			goto out;
		}
		for (size_t i = 0; i < n_sets; i++) {
			char *ptr = strdup(sets[i]), *eq = ptr ? strchr(ptr, '=') : NULL;
			json_t *val;

			if (!eq) {
				free(ptr);
				json_decref(root);
				rc = EX_OSERR;
				goto out;
			}
			*eq = '\0';
			/* A value that parses as JSON is that; anything else a string. */
			if (!(val = json_loads(eq + 1, JSON_DECODE_ANY, NULL)))
				val = json_string(eq + 1);
			rc = val ? ptr_set(root, ptr, val) : -1;
			json_decref(val);
			if (rc) {
				ctl_err("cannot set %s in dead letter %" PRIu64 ": its parent is not in the "
				        "body", ptr, id);
				free(ptr);
				json_decref(root);
				rc = EX_DATAERR;
				goto out;
			}
			free(ptr);
		}
		body = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
		json_decref(root);
		if (!body) {
			rc = EX_OSERR;
			goto out;
		}
		len = strlen(body);
	} else {
		size_t pl;
		char *text = pretty(ev.body, ev.body_len, &pl);

		if (!text) {
			rc = EX_OSERR;
			goto out;
		}
		rc = run_editor(text, pl, &body, &len);
		if (rc == 0 && len == pl && memcmp(body, text, pl) == 0) {
			free(text);
			printf("no change: dead letter %" PRIu64 " left as it was\n", id);
			rc = 0;
			goto out;
		}
		free(text);
		if (rc) {
			ctl_err("the editor failed (%s); dead letter %" PRIu64 " left as it was",
			        rc == -RELAY_EINVAL ? "non-zero exit" : ctl_strerror(rc), id);
			rc = 1;
			goto out;
		}
	}
	if (is_json) {
		json_error_t jerr;
		json_t *v = json_loadb(body, len, JSON_DECODE_ANY, &jerr);

		if (!v) {
			ctl_err("refused: the new body is not valid JSON (line %d, column %d: %s); dead "
			        "letter %" PRIu64 " keeps its body", jerr.line, jerr.column, jerr.text, id);
			rc = EX_DATAERR;
			goto out;
		}
		json_decref(v);
	}
	/* The edit and the replay commit together: an edited event is never
	 * replayed with its old body, nor left edited by a replay that failed. */
	if ((rc = relay_store_txn_begin(c->st, NULL, &txn)) ||
	    (rc = relay_edit_add(c->st, txn, id, body, len, who(user, sizeof(user)), relay_wall_ms(),
	                         &version)) ||
	    (replay && (rc = relay_store_replay(c->st, txn, id, relay_wall_ms())))) {
		relay_store_txn_abort(c->st, txn);
		ctl_err("cannot edit dead letter %" PRIu64 " in %s: %s", id, c->state_dir,
		        ctl_strerror(rc));
		rc = ctl_exit_of(rc);
		goto out;
	}
	if ((rc = ctl_audit_commit(c, txn, argc, argv, &id, 1, 1))) {
		ctl_err("cannot edit dead letter %" PRIu64 " in %s: %s", id, c->state_dir,
		        ctl_strerror(rc));
		rc = ctl_exit_of(rc);
		goto out;
	}
	if (c->json) {
		rc = ctl_json_print(json_pack("{s:s,s:o,s:i,s:b,s:I}", "action", "edit", "id",
		                              ctl_json_id(id), "version", (int)version, "replayed", replay,
		                              "bytes", (json_int_t)len),
		                    0);
		goto out;
	}
	printf("dead letter %" PRIu64 " edited: body version %u stored, the original kept\n", id,
	       version);
	if (replay)
		printf("replayed: back in the queue with the edited body, due now\n");
	else
		printf("not replayed: " CTL_PROG " dead replay %" PRIu64 " sends it (or edit with "
		       "--replay)\n", id);
	rc = 0;
out:
	free(body);
	relay_event_clear(&ev);
	return rc;
}

/* ---- status: answers to senders against their deadlines ---- */

/* The history's size and retention, for status. */
static void
status_history(struct ctl *c, json_t *out)
{
	uint64_t n = 0, bytes = 0;
	char size[32], keep[32];

	if (relay_history_stats(c->st, &n, &bytes))
		return;
	if (out) {
		json_object_set_new(out, "history",
		                    json_pack("{s:I,s:I,s:I}", "events", (json_int_t)n, "bytes",
		                              (json_int_t)bytes, "retention_s",
		                              (json_int_t)(retention_ms(c) / 1000)));
		return;
	}
	ctl_fmt_bytes(bytes, size, sizeof(size));
	ctl_fmt_dur(retention_ms(c), keep, sizeof(keep));
	printf("history     %" PRIu64 " event%s (%s), kept %s%s\n", n, n == 1 ? "" : "s", size,
	       retention_ms(c) > 0 ? keep : "not at all", c->cfg ? "" : " (the default: no configuration read)");
}

int
ctl_status_acks(struct ctl *c, json_t *out)
{
	char *text = NULL;
	json_t *o = NULL, *x;
	size_t i;

	status_history(c, out);

	if (relay_store_note_get(c->st, NULL, "acks", &text) == 0)
		o = json_loads(text, 0, NULL);
	free(text);
	if (out) {
		json_object_set_new(out, "acks", json_is_object(o) ? json_incref(o) : json_null());
		json_decref(o);
		return 0;
	}
	json_array_foreach(json_object_get(o, "sources"), i, x) {
		json_int_t dl = json_integer_value(json_object_get(x, "deadline_ms"));
		json_int_t slow = json_integer_value(json_object_get(x, "slow"));
		char last[96] = "";

		if (slow)
			ctl_fmt_when(c->now_ms, json_integer_value(json_object_get(x, "last_slow_ms")),
			             last, sizeof(last));
		printf("%-12s%s: %" JSON_INTEGER_FORMAT " answered, slowest %" JSON_INTEGER_FORMAT
		       " ms; %" JSON_INTEGER_FORMAT " over half its %" JSON_INTEGER_FORMAT
		       " ms deadline%s%s\n", i ? "" : "acks", json_string_value(json_object_get(x, "source")),
		       json_integer_value(json_object_get(x, "answered")),
		       json_integer_value(json_object_get(x, "max_ms")), slow, dl,
		       slow ? ", the last " : "", last);
	}
	json_decref(o);
	return 0;
}
