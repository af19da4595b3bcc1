/*
 * odoo-relayctl: status, pause, resume and shape.
 *
 * status and shape read one snapshot per walk (relay_store_foreach_*) and
 * the notes the daemon leaves in the store ("delivery": the circuit;
 * "config": the last refused reload). Whether odoo-relayd runs is seen
 * from the lock LMDB holds in lock.mdb (ctl_holder), before the store is
 * opened here.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "odoo_relay/error.h"

#include "relayctl.h"

/* ---- counting by name ---- */

#define MAX_BUCKETS 8

struct tally {
	char *name;        /* NULL: none (no route, no error) */
	uint64_t queued, dead;
	uint64_t b[MAX_BUCKETS]; /* shape: per age bucket, or per route column */
	int configured;
};

struct tallies {
	struct tally *v;
	size_t n, cap;
};

static int
same(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* The tally of name, made if need be; NULL on ENOMEM. */
static struct tally *
tally_of(struct tallies *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (same(t->v[i].name, name))
			return &t->v[i];
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		struct tally *p = realloc(t->v, cap * sizeof(*p));

		if (!p)
			return NULL;
		t->v = p;
		t->cap = cap;
	}
	memset(&t->v[t->n], 0, sizeof(t->v[t->n]));
	if (name && !(t->v[t->n].name = strdup(name)))
		return NULL;
	return &t->v[t->n++];
}

static void
tallies_free(struct tallies *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].name);
	free(t->v);
	memset(t, 0, sizeof(*t));
}

/* Names in byte order, "none" last. */
static int
by_name(const void *a, const void *b)
{
	const struct tally *x = a, *y = b;

	if (!x->name || !y->name)
		return !x->name - !y->name;
	return strcmp(x->name, y->name);
}

/* (qsort's base must not be NULL, even for no elements) */
static void
sort_tallies(struct tallies *t)
{
	if (t->n > 1)
		qsort(t->v, t->n, sizeof(*t->v), by_name);
}

static json_t *
jname(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* ---- options of the verbs without filters ---- */

static const struct option plain_opts[] = {
	{ "route", required_argument, NULL, 'r' },
	{ "destination", required_argument, NULL, 'd' },
	{ "force", no_argument, NULL, 'f' },
	{ "json", no_argument, NULL, CTL_OPT_JSON },
	{ "help", no_argument, NULL, CTL_OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

/* Parses --json and --help, and with routes --route/--force. Returns -1 to
 * go on, else an exit status. */
static int
parse_plain(struct ctl *c, int argc, char **argv, int routes, const char **route, int *force)
{
	int ch;

	while ((ch = getopt_long(argc, argv, ":h", plain_opts, NULL)) != -1) {
		switch (ch) {
		case CTL_OPT_HELP: return ctl_help(c->verb);
		case CTL_OPT_JSON: c->json = 1; break;
		case 'r':
		case 'd':
		case 'f':
			if (!routes)
				return ctl_usage(c, "%s does not take %s", c->verb, argv[optind - 1]);
			if (ch == 'r')
				*route = optarg;
			else if (ch == 'd')
				c->destination = optarg;
			else
				*force = 1;
			break;
		default: return ctl_getopt_error(c, ch, argv);
		}
	}
	if (optind < argc)
		return ctl_usage(c, "unexpected argument \"%s\"", argv[optind]);
	if (route && *route && !**route)
		return ctl_usage(c, "--route needs a name");
	if (c->destination && !*c->destination)
		return ctl_usage(c, "--destination needs a name");
	if (route && *route && c->destination)
		return ctl_usage(c, "give --route or --destination, not both");
	return -1;
}

/* ---- status ---- */

struct counts {
	struct ctl *c;
	struct tallies sources, routes;
	int dead;
	int err;
};

static int
count_one(void *arg, const struct relay_event *ev)
{
	struct counts *k = arg;
	struct tally *s = tally_of(&k->sources, ev->source);
	struct tally *r = tally_of(&k->routes, ctl_route_of(k->c, ev));

	if (!s || !r)
		return k->err = ENOMEM;
	if (k->dead) {
		s->dead++;
		r->dead++;
	} else {
		s->queued++;
		r->queued++;
	}
	return 0;
}

/* The store keeps a destination's pause under "@name" among the routes'
 * (route names cannot start with '@'). */
#define DEST_PAUSE_PREFIX '@'

static int
add_paused(void *arg, const char *route)
{
	if (route[0] == DEST_PAUSE_PREFIX)
		return 0;
	return json_array_append_new(arg, json_string(route)) ? ENOMEM : 0;
}

static int
add_paused_dest(void *arg, const char *route)
{
	if (route[0] != DEST_PAUSE_PREFIX)
		return 0;
	return json_array_append_new(arg, json_string(route + 1)) ? ENOMEM : 0;
}

/* The daemon's note name as a JSON object, or NULL when there is none (or
 * it does not parse: it is advice, not data to fail on). */
static json_t *
note(struct ctl *c, const char *name, int *err)
{
	char *text = NULL;
	json_t *o;
	int rc = relay_store_note_get(c->st, NULL, name, &text);

	if (rc && rc != -RELAY_ENOTFOUND)
		*err = rc;
	if (rc)
		return NULL;
	o = json_loads(text, 0, NULL);
	free(text);
	if (o && !json_is_object(o)) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

/* relay_store_stats stops counting due events at RELAY_STATS_DUE_NOW_MAX
 * (the daemon asks often); status wants the figure. */
static int
count_due_now(struct ctl *c, uint64_t *n)
{
	struct relay_due batch[1024], last;
	const struct relay_due *after = NULL;
	size_t got;
	int rc;

	*n = 0;
	do {
		if ((rc = relay_store_scan_due(c->st, NULL, c->now_ms, after, batch, 1024, &got)))
			return rc;
		*n += got;
		if (got) {
			last = batch[got - 1];
			after = &last;
		}
	} while (got == 1024);
	return 0;
}

int
ctl_status(struct ctl *c, int argc, char **argv)
{
	struct relay_store_stats s;
	struct counts k = { .c = c };
	json_t *circuit = NULL, *cfgerr = NULL, *queries = NULL, *proutes = NULL, *problems = NULL, *out = NULL;
	json_t *pdests = NULL, *pollers = NULL;
	char holder[64] = "", buf[160], buf2[160];
	const char *daemon = "unknown";
	pid_t pid = 0;
	int rc, h, paused_all = 0, healthy;

	if ((rc = parse_plain(c, argc, argv, 0, NULL, NULL)) >= 0)
		return rc;
	if ((rc = ctl_config(c)))
		return rc;
	/* Before the store is open here: see ctl_holder. */
	h = ctl_holder(c->state_dir, &pid, holder, sizeof(holder));
	if (h == 0)
		daemon = "stopped";
	else if (h == 1 && strcmp(holder, "odoo-relayd") == 0)
		daemon = "running";
	if ((rc = ctl_open(c, 0)))
		return rc;

	if ((rc = relay_store_stats(c->st, c->now_ms, &s)))
		goto fail;
	if (s.due_now >= RELAY_STATS_DUE_NOW_MAX && (rc = count_due_now(c, &s.due_now)))
		goto fail;
	/* Every configured source and route shows, with nothing queued too. */
	for (size_t i = 0; c->cfg && i < c->cfg->n_sources; i++) {
		struct tally *t = tally_of(&k.sources, c->cfg->sources[i].name);

		if (!t) {
			rc = ENOMEM;
			goto fail;
		}
		t->configured = 1;
	}
	for (size_t i = 0; c->routes && i < relay_routes_count(c->routes); i++) {
		struct tally *t = tally_of(&k.routes, relay_route_name(relay_routes_at(c->routes, i)));

		if (!t) {
			rc = ENOMEM;
			goto fail;
		}
		t->configured = 1;
	}
	if ((rc = relay_store_foreach_event(c->st, 0, count_one, &k)))
		goto fail;
	k.dead = 1;
	if ((rc = relay_store_foreach_dead(c->st, 0, count_one, &k)))
		goto fail;
	if ((rc = relay_store_get_paused(c->st, NULL, NULL, &paused_all)))
		goto fail;
	if (!(proutes = json_array()) || !(problems = json_array()) || !(pdests = json_array())) {
		rc = ENOMEM;
		goto fail;
	}
	if ((rc = relay_store_foreach_paused(c->st, add_paused, proutes)) ||
	    (rc = relay_store_foreach_paused(c->st, add_paused_dest, pdests)))
		goto fail;
	circuit = note(c, "delivery", &rc);
	cfgerr = rc ? NULL : note(c, "config", &rc);
	queries = rc ? NULL : note(c, "queries", &rc);
	if (rc)
		goto fail;
	pollers = ctl_pollers(c);

	/* What makes delivery unhealthy, in the order an operator fixes it. */
	if (strcmp(daemon, "stopped") == 0)
		json_array_append_new(problems, json_string("odoo-relayd is not running (no process has "
		                                            "the store open)"));
	if (c->cfg && !c->cfg->n_destinations)
		json_array_append_new(problems, json_string("no destination configured (no odoo "
		                                            "target): events are "
		                                            "stored, not delivered"));
	{
		json_t *dests = json_object_get(circuit, "destinations");
		const char *state = json_string_value(json_object_get(circuit, "circuit"));

		if (json_array_size(dests) > 1) {
			/* each destination's circuit by name */
			size_t i;
			json_t *x;

			json_array_foreach(dests, i, x) {
				const char *st = json_string_value(json_object_get(x, "circuit"));
				const char *why = json_string_value(json_object_get(x, "error"));

				char line[256];

				if (!st || strcmp(st, "closed") == 0)
					continue;
				snprintf(line, sizeof(line), "circuit %.20s: delivery to %.64s stopped%s%.100s",
				         st, json_string_value(json_object_get(x, "name")), why ? ": " : "",
				         why ? why : "");
				json_array_append_new(problems, json_string(line));
			}
		} else if (state && strcmp(state, "closed") != 0) {
			const char *why = json_string_value(json_object_get(circuit, "error"));

			snprintf(buf, sizeof(buf), "circuit %.20s: delivery to Odoo stopped%s%.100s", state,
			         why ? ": " : "", why ? why : "");
			json_array_append_new(problems, json_string(buf));
		}
	}
	if (paused_all)
		json_array_append_new(problems, json_string("delivery paused for every route "
		                                            "(odoo-relayctl resume)"));
	{
		size_t i;
		json_t *r;

		char line[512];

		json_array_foreach(proutes, i, r) {
			snprintf(line, sizeof(line), "route %.100s paused (odoo-relayctl resume --route %.100s)",
			         json_string_value(r), json_string_value(r));
			json_array_append_new(problems, json_string(line));
		}
		json_array_foreach(pdests, i, r) {
			/* paused by the daemon itself (a 410): why, from its note */
			char nname[160], *why = NULL;

			snprintf(nname, sizeof(nname), "%s%s", RELAY_PAUSE_NOTE, json_string_value(r));
			if (relay_store_note_get(c->st, NULL, nname, &why))
				why = NULL;
			snprintf(line, sizeof(line), "destination %.100s paused%s%.200s (odoo-relayctl "
			         "resume --destination %.100s)", json_string_value(r), why ? ": " : "",
			         why ? why : "", json_string_value(r));
			free(why);
			json_array_append_new(problems, json_string(line));
		}
	}
	ctl_pollers_problems(pollers, problems);
	healthy = json_array_size(problems) == 0;

	sort_tallies(&k.sources);
	sort_tallies(&k.routes);

	if (c->json) {
		json_t *srcs = json_array(), *rts = json_array();

		for (size_t i = 0; srcs && i < k.sources.n; i++)
			json_array_append_new(srcs, json_pack("{s:o,s:I,s:I,s:b}", "source",
			                                      jname(k.sources.v[i].name), "queued",
			                                      (json_int_t)k.sources.v[i].queued, "dead",
			                                      (json_int_t)k.sources.v[i].dead, "configured",
			                                      k.sources.v[i].configured));
		for (size_t i = 0; rts && i < k.routes.n; i++) {
			int p = 0;

			if (k.routes.v[i].name)
				relay_store_get_paused(c->st, NULL, k.routes.v[i].name, &p);
			json_array_append_new(rts, json_pack("{s:o,s:I,s:I,s:b,s:b}", "route",
			                                     jname(k.routes.v[i].name), "queued",
			                                     (json_int_t)k.routes.v[i].queued, "dead",
			                                     (json_int_t)k.routes.v[i].dead, "paused", p,
			                                     "configured", k.routes.v[i].configured));
		}
		out = json_pack("{s:s,s:{s:s,s:o,s:o},s:b,s:O,s:{s:I,s:I,s:I,s:I},s:I,s:o,s:o,s:o,s:o,"
		                "s:{s:b,s:O},s:O,s:O,s:I,s:I}",
		                "store", c->state_dir,
		                "daemon", "state", daemon, "pid", h == 1 && pid > 0 ? json_integer(pid) : json_null(),
		                "process", h == 1 && holder[0] ? json_string(holder) : json_null(),
		                "healthy", healthy, "problems", problems,
		                "queued", "total", (json_int_t)s.events, "due_now", (json_int_t)s.due_now,
		                "delayed", (json_int_t)(s.due - s.due_now), "parked",
		                (json_int_t)(s.events - s.due),
		                "dead", (json_int_t)s.dead,
		                "oldest_received_ms", s.oldest_received_ms ? json_integer(s.oldest_received_ms) : json_null(),
		                "oldest_age_s", s.oldest_received_ms ? json_integer((c->now_ms - s.oldest_received_ms) / 1000) : json_null(),
		                "sources", srcs ? srcs : json_null(),
		                "routes", rts ? rts : json_null(),
		                "paused", "all", paused_all, "routes", proutes,
		                "paused_destinations", pdests,
		                "config_error", cfgerr ? cfgerr : json_null(),
		                "map_size", (json_int_t)s.map_size, "map_used", (json_int_t)s.map_used);
		if (out && json_object_set(out, "queries",
		                           json_object_get(queries, "queries") ? json_object_get(queries, "queries")
		                                                               : json_null())) {
			json_decref(out);
			out = NULL;
		}
		if (out && json_object_set(out, "pollers", pollers ? pollers : json_null())) {
			json_decref(out);
			out = NULL;
		}
		if (out && json_object_set(out, "circuit", circuit ? circuit : json_null())) {
			json_decref(out);
			out = NULL;
		}
		if (out)
			ctl_status_acks(c, out);
		if (!(rc = ctl_json_print(out, 0)))
			rc = healthy ? 0 : 1;
		goto done;
	}

	printf("store       %s\n", c->state_dir);
	ctl_fmt_bytes(s.map_used, buf, sizeof(buf));
	ctl_fmt_bytes(s.map_size, buf2, sizeof(buf2));
	printf("size        %s used of a %s map\n", buf, buf2);
	if (strcmp(daemon, "running") == 0)
		printf("daemon      odoo-relayd running (pid %ld)\n", (long)pid);
	else if (strcmp(daemon, "stopped") == 0)
		printf("daemon      not running (no process has the store open)\n");
	else if (h == 1)
		printf("daemon      unknown: the store is open in pid %ld (%s)\n", (long)pid,
		       holder[0] ? holder : "?");
	else
		printf("daemon      unknown: %s\n", ctl_strerror(-h));
	ctl_status_acks(c, NULL);
	if (circuit) {
		const char *state = json_string_value(json_object_get(circuit, "circuit"));
		const char *why = json_string_value(json_object_get(circuit, "error"));
		json_int_t since = json_integer_value(json_object_get(circuit, "since_ms"));

		ctl_fmt_when(c->now_ms, since, buf, sizeof(buf));
		printf("circuit     %s since %s%s\n", state ? state : "?", buf,
		       strcmp(daemon, "stopped") == 0 ? " (as the daemon left it)" : "");
		if (why)
			printf("            %s\n", ctl_clip(why, 200, buf, sizeof(buf)));
		/* each destination: its circuit and the protocol it speaks */
		size_t i;
		json_t *x;
		json_array_foreach(json_object_get(circuit, "destinations"), i, x) {
			const char *st = json_string_value(json_object_get(x, "circuit"));
			const char *dwhy = json_string_value(json_object_get(x, "error"));
			const char *name = json_string_value(json_object_get(x, "name"));
			int dp = 0;

			snprintf(buf2, sizeof(buf2), "@%s", name ? name : "");
			relay_store_get_paused(c->st, NULL, buf2, &dp);
			ctl_fmt_when(c->now_ms, json_integer_value(json_object_get(x, "since_ms")), buf,
			             sizeof(buf));
			printf("destination %s (%s, protocol %s): circuit %s since %s%s\n",
			       name ? name : "?", json_string_value(json_object_get(x, "kind")),
			       json_string_value(json_object_get(x, "protocol")), st ? st : "?", buf,
			       dp ? ", paused" : "");
			if (dwhy && json_array_size(json_object_get(circuit, "destinations")) > 1)
				printf("            %s\n", ctl_clip(dwhy, 200, buf, sizeof(buf)));
		}
	} else {
		printf("circuit     - (no delivery state recorded: %s)\n",
		       c->cfg && !c->cfg->n_destinations ? "no destination configured"
		                                          : "delivery has not started");
	}
	printf("paused      %s", paused_all ? "yes, every route" : "no");
	if (json_array_size(proutes)) {
		size_t i;
		json_t *r;

		printf("%s routes:", paused_all ? ";" : ", except");
		json_array_foreach(proutes, i, r)
			printf(" %s", ctl_clip(json_string_value(r), 64, buf, sizeof(buf)));
	}
	printf("\n");
	printf("queued      %" PRIu64 " (due now %" PRIu64 ", delayed %" PRIu64 ", parked %" PRIu64 ")\n",
	       s.events, s.due_now, s.due - s.due_now, s.events - s.due);
	printf("dead        %" PRIu64 "\n", s.dead);
	ctl_fmt_when(c->now_ms, s.oldest_received_ms, buf, sizeof(buf));
	printf("oldest      %s\n", s.oldest_received_ms ? buf : "-");
	{
		/* each query: how often the cache answered (fresh or stale) */
		size_t i;
		json_t *x;

		json_array_foreach(json_object_get(queries, "queries"), i, x) {
			json_int_t req = json_integer_value(json_object_get(x, "requests"));
			json_int_t hits = json_integer_value(json_object_get(x, "hits"));
			json_int_t stale = json_integer_value(json_object_get(x, "stale"));

			const char *dest = json_string_value(json_object_get(x, "destination"));

			printf("%s%s (%s on %s): %" JSON_INTEGER_FORMAT " requests, hit rate %.0f%% "
			       "(%" JSON_INTEGER_FORMAT " stale), %" JSON_INTEGER_FORMAT " odoo calls, %"
			       JSON_INTEGER_FORMAT " errors\n", i ? "            " : "queries     ",
			       ctl_clip(json_string_value(json_object_get(x, "name")), 64, buf, sizeof(buf)),
			       ctl_clip(json_string_value(json_object_get(x, "model")), 64, buf2, sizeof(buf2)),
			       dest ? dest : "?", req, req ? 100.0 * (double)(hits + stale) / (double)req : 0.0,
			       stale, json_integer_value(json_object_get(x, "calls")),
			       json_integer_value(json_object_get(x, "errors")));
		}
	}
	ctl_pollers_print(c, pollers);
	if (cfgerr) {
		json_int_t at = json_integer_value(json_object_get(cfgerr, "at_ms"));
		const char *e = json_string_value(json_object_get(cfgerr, "error"));

		ctl_fmt_when(c->now_ms, at, buf, sizeof(buf));
		printf("config      reload refused %s, the old configuration runs:\n            %s\n", buf,
		       ctl_clip(e ? e : "?", 300, buf2, sizeof(buf2)));
	} else {
		printf("config      no refused reload\n");
	}
	if (healthy) {
		printf("health      healthy\n");
	} else {
		size_t i;
		json_t *p;

		printf("health      degraded\n");
		json_array_foreach(problems, i, p)
			printf("            - %s\n", json_string_value(p));
	}
	{
		static const char *const st_titles[] = { "SOURCE", "QUEUED", "DEAD" };
		static const char *const rt_titles[] = { "ROUTE", "QUEUED", "DEAD", "PAUSED" };
		struct ctl_table *t = ctl_table_new("lrr", st_titles);

		for (size_t i = 0; t && i < k.sources.n; i++) {
			char q[24], d[24];

			ctl_fmt_u64(k.sources.v[i].queued, q, sizeof(q));
			ctl_fmt_u64(k.sources.v[i].dead, d, sizeof(d));
			const char *row[] = { k.sources.v[i].name, q, d };
			ctl_table_add(t, row);
		}
		if (t && k.sources.n) {
			printf("\n");
			ctl_table_print(t, stdout);
		} else {
			ctl_table_free(t);
		}
		t = ctl_table_new("lrrl", rt_titles);
		for (size_t i = 0; t && i < k.routes.n; i++) {
			char q[24], d[24];
			int p = 0;

			ctl_fmt_u64(k.routes.v[i].queued, q, sizeof(q));
			ctl_fmt_u64(k.routes.v[i].dead, d, sizeof(d));
			if (k.routes.v[i].name)
				relay_store_get_paused(c->st, NULL, k.routes.v[i].name, &p);
			const char *row[] = { k.routes.v[i].name ? k.routes.v[i].name : "- (no route)", q,
			                      d, paused_all || p ? "yes" : "no" };
			ctl_table_add(t, row);
		}
		if (t && k.routes.n) {
			printf("\n");
			ctl_table_print(t, stdout);
		} else {
			ctl_table_free(t);
		}
	}
	rc = healthy ? 0 : 1;
	goto done;
fail:
	ctl_err("cannot read the status of %s: %s", c->state_dir, ctl_strerror(k.err ? k.err : rc));
	rc = ctl_exit_of(k.err ? k.err : rc);
done:
	json_decref(problems);
	json_decref(proutes);
	json_decref(circuit);
	json_decref(pdests);
	json_decref(cfgerr);
	json_decref(queries);
	json_decref(pollers);
	tallies_free(&k.sources);
	tallies_free(&k.routes);
	return rc;
}

/* ---- pause and resume ---- */

struct names {
	char buf[512];
	size_t len;
};

static int
add_name(void *arg, const char *route)
{
	struct names *n = arg;
	if (route[0] == DEST_PAUSE_PREFIX) /* a destination's pause, not a route */
		return 0;
	int w = snprintf(n->buf + n->len, sizeof(n->buf) - n->len, "%s%s", n->len ? ", " : "", route);

	if (w > 0 && n->len + (size_t)w < sizeof(n->buf))
		n->len += (size_t)w;
	return 0;
}

static int
unknown_route(const struct ctl *c, const char *route, const char *what)
{
	struct names known = { .len = 0 };

	if (!c->routes)
		return ctl_usage(c, "cannot check route \"%s\" without the configuration: give --config, "
		                    "or --force",
		                 route);
	known.buf[0] = '\0';
	for (size_t i = 0; i < relay_routes_count(c->routes); i++)
		add_name(&known, relay_route_name(relay_routes_at(c->routes, i)));
	return ctl_usage(c, "unknown route \"%s\" (configured: %s); --force to %s it anyway", route,
	                 known.len ? known.buf : "none", what);
}

static int
unknown_destination(const struct ctl *c, const char *name, const char *what)
{
	struct names known = { .len = 0 };

	if (!c->cfg)
		return ctl_usage(c, "cannot check destination \"%s\" without the configuration: give "
		                    "--config, or --force", name);
	known.buf[0] = '\0';
	for (size_t i = 0; i < c->cfg->n_destinations; i++)
		add_name(&known, c->cfg->destinations[i].name);
	return ctl_usage(c, "unknown destination \"%s\" (configured: %s); --force to %s it anyway",
	                 name, known.len ? known.buf : "none", what);
}

/* pause or resume --destination NAME: the store key "@NAME". */
static int
pause_resume_destination(struct ctl *c, int paused, int force, int argc, char **argv)
{
	const char *name = c->destination, *what = paused ? "pause" : "resume";
	char key[160], nkey[160];
	MDB_txn *txn = NULL;
	int was = 0, rc;

	if (!force && (!c->cfg || !relay_config_destination(c->cfg, name)))
		return unknown_destination(c, name, what);
	if (snprintf(key, sizeof(key), "%c%s", DEST_PAUSE_PREFIX, name) >= (int)sizeof(key))
		return ctl_usage(c, "destination name too long");
	if ((rc = ctl_open(c, 1)))
		return rc;
	if (snprintf(nkey, sizeof(nkey), "%s%s", RELAY_PAUSE_NOTE, name) >= (int)sizeof(nkey))
		return ctl_usage(c, "destination name too long");
	/* a resume also forgets why the daemon paused it (a 410); the change
	 * and its audit record commit together */
	if ((rc = relay_store_txn_begin(c->st, NULL, &txn)) == 0) {
		if ((rc = relay_store_get_paused(c->st, txn, key, &was)) ||
		    (!was != !paused && (rc = relay_store_set_paused(c->st, txn, key, paused))) ||
		    (!paused && (rc = relay_store_note_put(c->st, txn, nkey, NULL))))
			relay_store_txn_abort(c->st, txn);
		else
			rc = ctl_audit_commit(c, txn, argc, argv, NULL, 0, 0);
	}
	if (rc) {
		ctl_err("cannot %s destination %s in %s: %s", what, name, c->state_dir,
		        ctl_strerror(rc));
		return ctl_exit_of(rc);
	}
	if (c->json)
		return ctl_json_print(json_pack("{s:s,s:s,s:b,s:b}", "action", what, "destination",
		                                name, "paused", paused, "changed", !was != !paused), 0);
	printf("destination %s %s%s\n", name, !was == !paused ? "was already " : "",
	       paused ? "paused" : "resumed");
	if (paused && !was)
		printf("odoo-relayd starts no new call to it within a second; calls in flight finish; "
		       "webhooks are still accepted and queued\n");
	return 0;
}

static int
pause_resume(struct ctl *c, int paused, int argc, char **argv)
{
	const char *route = NULL, *what = paused ? "pause" : "resume";
	struct names still = { .len = 0 };
	MDB_txn *txn = NULL;
	int force = 0, was = 0, all = 0, unknown, rc;

	still.buf[0] = '\0';
	if ((rc = parse_plain(c, argc, argv, 1, &route, &force)) >= 0)
		return rc;
	if ((rc = ctl_config(c)))
		return rc;
	if (c->destination)
		return pause_resume_destination(c, paused, force, argc, argv);
	unknown = route && !force && (!c->routes || !relay_routes_find(c->routes, route));
	/* A route gone from the configuration may still be paused in the
	 * store: resuming it needs no --force, so resume looks first. */
	if (unknown && paused)
		return unknown_route(c, route, what);
	if ((rc = ctl_open(c, 1)))
		return rc;
	if ((rc = relay_store_get_paused(c->st, NULL, route, &was)))
		goto fail;
	if (unknown && !was)
		return unknown_route(c, route, what);
	/* the change and its audit record commit together */
	if ((rc = relay_store_txn_begin(c->st, NULL, &txn)))
		goto fail;
	if (!was != !paused && (rc = relay_store_set_paused(c->st, txn, route, paused))) {
		relay_store_txn_abort(c->st, txn);
		goto fail;
	}
	if ((rc = ctl_audit_commit(c, txn, argc, argv, NULL, 0, 0)))
		goto fail;
	if ((rc = relay_store_get_paused(c->st, NULL, NULL, &all)) ||
	    (rc = relay_store_foreach_paused(c->st, add_name, &still)))
		goto fail;
	if (c->json) {
		json_t *o = json_pack("{s:s,s:o,s:b,s:b,s:b}", "action", what, "route", jname(route),
		                      "paused", paused, "changed", !was != !paused, "paused_all", all);
		json_t *a = json_array();

		if (o && a)
			relay_store_foreach_paused(c->st, add_paused, a);
		if (o && json_object_set_new(o, "paused_routes", a ? a : json_null())) {
			json_decref(o);
			o = NULL;
		}
		return ctl_json_print(o, 0);
	}
	if (route)
		printf("route %s %s%s\n", route, !was == !paused ? "was already " : "",
		       paused ? "paused" : "resumed");
	else
		printf("delivery %s%s for every route\n", !was == !paused ? "was already " : "",
		       paused ? "paused" : "resumed");
	if (paused && !was)
		printf("odoo-relayd starts no new call%s within a second; calls in flight finish; "
		       "webhooks are still accepted and queued\n",
		       route ? " on it" : "");
	if (!paused && all && route)
		printf("note: delivery is still paused for every route (" CTL_PROG " resume)\n");
	if (!paused && !route && still.len)
		printf("note: routes still paused by name: %s (" CTL_PROG " resume --route NAME)\n",
		       still.buf);
	return 0;
fail:
	ctl_err("cannot %s %s%s in %s: %s", what, route ? "route " : "delivery",
	        route ? route : "", c->state_dir, ctl_strerror(rc));
	return ctl_exit_of(rc);
}

int
ctl_pause(struct ctl *c, int argc, char **argv)
{
	return pause_resume(c, 1, argc, argv);
}

int
ctl_resume(struct ctl *c, int argc, char **argv)
{
	return pause_resume(c, 0, argc, argv);
}

/* ---- shape ---- */

static const struct {
	const char *name;
	int64_t below_ms; /* the bucket holds ages below this */
} buckets[] = {
	{ "0-1m", 60000 },          { "1-5m", 300000 },      { "5-30m", 1800000 },
	{ "30m-2h", 7200000 },      { "2-12h", 43200000 },  { "12h+", INT64_MAX },
};

#define N_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

/* Queued events per source and age bucket (b[]). */
struct shape {
	struct ctl *c;
	struct tallies sources;
	struct tally qtotal;
	int err;
};

#define GRID_COLS 64 /* routes shown as columns by the table; --json has all */

static size_t
bucket_of(int64_t age_ms)
{
	size_t i = 0;

	while (i + 1 < N_BUCKETS && age_ms >= buckets[i].below_ms)
		i++;
	return i;
}

static int
shape_event(void *arg, const struct relay_event *ev)
{
	struct shape *k = arg;
	struct tally *t = tally_of(&k->sources, ev->source);
	size_t b = bucket_of(k->c->now_ms - ev->received_ms);

	if (!t)
		return k->err = ENOMEM;
	t->queued++;
	t->b[b]++;
	k->qtotal.queued++;
	k->qtotal.b[b]++;
	return 0;
}

struct dead_cell {
	char *error, *route;
	uint64_t n;
};

struct dead_cells {
	struct ctl *c;
	struct dead_cell *v;
	size_t n, cap;
	int err;
};

static int
shape_dead(void *arg, const struct relay_event *ev)
{
	struct dead_cells *d = arg;
	const struct relay_attempt *last = ctl_last_attempt(ev);
	const char *error = last && last->error_name && *last->error_name ? last->error_name : NULL;
	const char *route = ctl_route_of(d->c, ev);

	for (size_t i = 0; i < d->n; i++)
		if (same(d->v[i].error, error) && same(d->v[i].route, route)) {
			d->v[i].n++;
			return 0;
		}
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct dead_cell *p = realloc(d->v, cap * sizeof(*p));

		if (!p)
			return d->err = ENOMEM;
		d->v = p;
		d->cap = cap;
	}
	d->v[d->n].error = error ? strdup(error) : NULL;
	d->v[d->n].route = route ? strdup(route) : NULL;
	d->v[d->n].n = 1;
	d->n++;
	if ((error && !d->v[d->n - 1].error) || (route && !d->v[d->n - 1].route))
		return d->err = ENOMEM;
	return 0;
}

static void
dead_cells_free(struct dead_cells *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].error);
		free(d->v[i].route);
	}
	free(d->v);
}

/* Rows (errors) and columns (routes) of the dead-letter table, sorted, with
 * their totals. */
static int
dead_axes(const struct dead_cells *d, struct tallies *errors, struct tallies *routes)
{
	for (size_t i = 0; i < d->n; i++) {
		struct tally *e = tally_of(errors, d->v[i].error);
		struct tally *r = tally_of(routes, d->v[i].route);

		if (!e || !r)
			return ENOMEM;
		e->dead += d->v[i].n;
		r->dead += d->v[i].n;
	}
	sort_tallies(errors);
	sort_tallies(routes);
	return 0;
}

static uint64_t
cell(const struct dead_cells *d, const char *error, const char *route)
{
	for (size_t i = 0; i < d->n; i++)
		if (same(d->v[i].error, error) && same(d->v[i].route, route))
			return d->v[i].n;
	return 0;
}

int
ctl_shape(struct ctl *c, int argc, char **argv)
{
	struct shape k = { .c = c };
	struct dead_cells d = { .c = c };
	struct tallies errors = { 0 }, routes = { 0 };
	uint64_t dead_total = 0;
	int rc;

	if ((rc = parse_plain(c, argc, argv, 0, NULL, NULL)) >= 0)
		return rc;
	if ((rc = ctl_open(c, 0)))
		return rc;
	if ((rc = relay_store_foreach_event(c->st, 0, shape_event, &k)) ||
	    (rc = relay_store_foreach_dead(c->st, 0, shape_dead, &d)) ||
	    (rc = dead_axes(&d, &errors, &routes)))
		goto fail;
	sort_tallies(&k.sources);
	for (size_t i = 0; i < errors.n; i++)
		dead_total += errors.v[i].dead;

	if (c->json) {
		json_t *o = json_object(), *names = json_array(), *q = json_array(), *dr = json_array(),
		       *de = json_array(), *counts;

		for (size_t b = 0; names && b < N_BUCKETS; b++)
			json_array_append_new(names, json_string(buckets[b].name));
		for (size_t i = 0; q && i <= k.sources.n; i++) {
			const struct tally *t = i == 0 ? &k.qtotal : &k.sources.v[i - 1];

			counts = json_array();
			for (size_t b = 0; counts && b < N_BUCKETS; b++)
				json_array_append_new(counts, json_integer((json_int_t)t->b[b]));
			json_array_append_new(q, json_pack("{s:o,s:I,s:o}", "source",
			                                   i == 0 ? json_string("TOTAL") : jname(t->name),
			                                   "total", (json_int_t)t->queued, "counts",
			                                   counts ? counts : json_null()));
		}
		for (size_t r = 0; dr && r < routes.n; r++)
			json_array_append_new(dr, jname(routes.v[r].name));
		for (size_t e = 0; de && e <= errors.n; e++) {
			counts = json_array();
			for (size_t r = 0; counts && r < routes.n; r++)
				json_array_append_new(counts, json_integer((json_int_t)(
				        e == 0 ? routes.v[r].dead
				               : cell(&d, errors.v[e - 1].name, routes.v[r].name))));
			json_array_append_new(de, json_pack("{s:o,s:I,s:o}", "error",
			                                    e == 0 ? json_string("TOTAL")
			                                           : jname(errors.v[e - 1].name),
			                                    "total",
			                                    (json_int_t)(e == 0 ? dead_total : errors.v[e - 1].dead),
			                                    "counts", counts ? counts : json_null()));
		}
		if (!o || json_object_set_new(o, "buckets", names ? names : json_null()) ||
		    json_object_set_new(o, "queued", q ? q : json_null()) ||
		    json_object_set_new(o, "dead_routes", dr ? dr : json_null()) ||
		    json_object_set_new(o, "dead", de ? de : json_null())) {
			json_decref(o);
			o = NULL;
		}
		rc = ctl_json_print(o, 0);
		goto out;
	}

	{
		const char *titles[2 + N_BUCKETS] = { "SOURCE", "TOTAL" };
		char align[3 + N_BUCKETS] = "lr";
		struct ctl_table *t;

		for (size_t b = 0; b < N_BUCKETS; b++) {
			titles[2 + b] = buckets[b].name;
			align[2 + b] = 'r';
		}
		align[2 + N_BUCKETS] = '\0';
		printf("queued events by age\n");
		if (!(t = ctl_table_new(align, titles))) {
			rc = ENOMEM;
			goto fail;
		}
		for (size_t i = 0; i <= k.sources.n; i++) {
			const struct tally *x = i == 0 ? &k.qtotal : &k.sources.v[i - 1];
			char num[1 + N_BUCKETS][24];
			const char *row[2 + N_BUCKETS];

			row[0] = i == 0 ? "TOTAL" : x->name;
			ctl_fmt_u64(x->queued, num[0], sizeof(num[0]));
			row[1] = num[0];
			for (size_t b = 0; b < N_BUCKETS; b++) {
				ctl_fmt_u64(x->b[b], num[1 + b], sizeof(num[1 + b]));
				row[2 + b] = num[1 + b];
			}
			ctl_table_add(t, row);
		}
		ctl_table_print(t, stdout);
	}
	printf("\ndead letters by error and route\n");
	{
		size_t nr = routes.n < GRID_COLS ? routes.n : GRID_COLS;
		const char *titles[2 + GRID_COLS] = { "ERROR", "TOTAL" };
		char align[3 + GRID_COLS] = "lr";
		struct ctl_table *t;

		for (size_t r = 0; r < nr; r++) {
			titles[2 + r] = routes.v[r].name ? routes.v[r].name : "-";
			align[2 + r] = 'r';
		}
		align[2 + nr] = '\0';
		if (!(t = ctl_table_new(align, titles))) {
			rc = ENOMEM;
			goto fail;
		}
		for (size_t e = 0; e <= errors.n; e++) {
			char num[1 + GRID_COLS][24];
			const char *row[2 + GRID_COLS];

			row[0] = e == 0 ? "TOTAL" : errors.v[e - 1].name ? errors.v[e - 1].name
			                                                   : "- (no attempt)";
			ctl_fmt_u64(e == 0 ? dead_total : errors.v[e - 1].dead, num[0], sizeof(num[0]));
			row[1] = num[0];
			for (size_t r = 0; r < nr; r++) {
				ctl_fmt_u64(e == 0 ? routes.v[r].dead
				                   : cell(&d, errors.v[e - 1].name, routes.v[r].name),
				            num[1 + r], sizeof(num[1 + r]));
				row[2 + r] = num[1 + r];
			}
			ctl_table_add(t, row);
		}
		ctl_table_print(t, stdout);
		if (routes.n > nr)
			printf("(%zu more routes not shown: --json has them all)\n", routes.n - nr);
	}
	rc = 0;
	goto out;
fail:
	ctl_err("cannot read the shape of %s: %s", c->state_dir,
	        ctl_strerror(k.err ? k.err : d.err ? d.err : rc));
	rc = ctl_exit_of(k.err ? k.err : d.err ? d.err : rc);
out:
	tallies_free(&k.sources);
	tallies_free(&errors);
	tallies_free(&routes);
	dead_cells_free(&d);
	return rc;
}
