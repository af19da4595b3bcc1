/*
 * odoo-relayd: process glue. Arguments, signals, systemd notification and the
 * wiring of the lib/ modules on one libevent loop:
 *
 *   ingest (HTTP) -> writer thread -> store <- delivery (scheduler, Odoo client)
 *          \-> queries (GET /query/<name>: cache, own Odoo clients; asks
 *               delivery whether a destination's circuit is open)
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>
#include <systemd/sd-daemon.h>

#include "odoo_relay/clock.h"
#include "odoo_relay/config.h"
#include "odoo_relay/delivery.h"
#include "odoo_relay/error.h"
#include "odoo_relay/history.h"
#include "odoo_relay/ingest.h"
#include "odoo_relay/json_arena.h"
#include "odoo_relay/log.h"
#include "odoo_relay/metrics.h"
#include "odoo_relay/poller.h"
#include "odoo_relay/query.h"
#include "odoo_relay/route.h"
#include "odoo_relay/store.h"
#include "odoo_relay/store_check.h"
#include "odoo_relay/writer.h"

#include "relayd_demo.h"

/* Dedup keys past their window are forgotten this often, this many at a time. */
#define SWEEP_INTERVAL_S 60
#define SWEEP_BATCH 10000
#define STATUS_INTERVAL_S 2

struct relayd {
	const char *config_path;
	const char *listen_file;
	struct relay_config *cfg;
	struct relay_routes *routes;
	struct event_base *base;
	struct relay_store *store;
	uint64_t gave_way_shown;  /* relay_history_gave_way_total reported so far */
	uint64_t damaged_shown;   /* relay_history_damaged_total reported so far */
	uint64_t acks_noted;      /* answers counted in the last "acks" note */
	struct relay_writer *writer;
	struct relay_metrics *metrics;
	struct relay_ingest *ingest;
	struct relay_delivery *delivery;
	struct relay_queries *queries;
	struct relay_poll_db poll_db;     /* the pollers' table, opened before the writer */
	struct relay_pollers *pollers;    /* odoo-poll sources */
	/* The whole walk of the store, under way after start-up (store.h
	 * relay_store_verify_start): delivery waits for it. */
	struct relay_store_check *check;
	struct event *check_ev;
	int failed;             /* run() returns 1: the store is damaged */
	struct event *sig_term, *sig_int, *sig_hup;
	struct event *watchdog, *status, *sweep, *drain;
	int stopping;
	int64_t drain_deadline_ms;
	uint64_t commits_shown, writes_shown; /* the writer's counts already in the metrics */
	uint64_t settles_shown, settle_failures_shown;
};

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: odoo-relayd --config FILE [--listen-file FILE] [--debug]\n"
	        "       odoo-relayd --check-config FILE\n"
	        "       odoo-relayd --demo [DIR] [--odoo-url URL]\n"
	        "       odoo-relayd --version | --help\n"
	        "\n"
	        "Receives webhooks, stores each durably before answering, and delivers\n"
	        "them into Odoo. See odoo-relayd(8) and odoo-relay.conf(5).\n"
	        "\n"
	        "  --config FILE        run with this configuration\n"
	        "  --check-config FILE  validate the configuration and its routes, then exit\n"
	        "  --demo [DIR]         run a demo configuration kept in DIR\n"
	        "                       (default /tmp/odoo-relay-demo)\n"
	        "  --odoo-url URL       with --demo: the Odoo to deliver to\n"
	        "                       (default http://127.0.0.1:8069)\n"
	        "  --listen-file FILE   write the bound addresses to FILE once listening\n"
	        "  --debug              log debug messages too\n");
}

/* Load a configuration and compile its routes: both or neither. */
static int
load_config(const char *path, struct relay_config **cfg, struct relay_routes **routes,
            char *msg, size_t n)
{
	struct relay_config_error err = { 0 };
	int rc = relay_config_load(path, cfg, &err);
	if (rc == 0)
		rc = relay_routes_compile(*cfg, routes, &err);
	if (rc) {
		if (rc == -RELAY_ECONFIG || err.text[0])
			relay_config_error_format(&err, msg, n);
		else
			snprintf(msg, n, "%s: %s", path, relay_strerror(rc));
		relay_config_free(*cfg);
		*cfg = NULL;
		*routes = NULL;
	}
	return rc;
}

#define UNVERIFIED_TEXT "source %s verifies no signature: anyone who can reach the " \
	"listener can queue events"

/* The warning for sources with scheme "none": logged at start, and printed
 * by --check-config (path set) with the source's place. */
static void
warn_unverified(const struct relay_config *cfg, const char *path)
{
	for (size_t i = 0; i < cfg->n_sources; i++) {
		const struct relay_source_conf *sc = &cfg->sources[i];

		if (sc->verify.scheme != RELAY_SIG_NONE || sc->kind == RELAY_SOURCE_ODOO_POLL)
			continue; /* a poll source is not posted to */
		if (!path) {
			relay_log(LOG_WARNING, UNVERIFIED_TEXT, sc->name);
			continue;
		}
		fprintf(stderr, "%s:%u:%u: warning: " UNVERIFIED_TEXT "\n", path, sc->line,
		        sc->column, sc->name);
	}
}

/*
 * What --check-config can tell of the state directory before a start would
 * stop on it: the daemon creates the directory (not its parents) and must
 * be able to write there. Access is checked for the user running the check,
 * which is the service's user when run as the man page says. Returns 0, or
 * 1 with msg set to "file:line:column: what".
 */
static int
check_state_dir(const struct relay_config *cfg, char *msg, size_t n)
{
	const char *dir = cfg->state_dir;
	char where[4352], parent[4096];
	struct stat st;
	const char *why = NULL;
	int err = 0;

	if (cfg->state_dir_line)
		snprintf(where, sizeof(where), "%s:%u:%u: state_dir %s", cfg->path, cfg->state_dir_line,
		         cfg->state_dir_column, dir);
	else
		snprintf(where, sizeof(where), "%s: state_dir %s (the default)", cfg->path, dir);
	if (stat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			why = "is not a directory";
		else if (access(dir, W_OK | X_OK) != 0)
			why = "is not writable", err = errno;
	} else if (errno != ENOENT) {
		why = "cannot be read", err = errno;
	} else {
		/* Missing: fine if the daemon can make it, as mkdir would. */
		snprintf(parent, sizeof(parent), "%s", dir);
		char *slash = strrchr(parent, '/');
		if (slash == parent)
			slash[1] = '\0';
		else if (slash)
			*slash = '\0';
		else
			snprintf(parent, sizeof(parent), ".");
		if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode))
			why = "does not exist, nor does its parent directory";
		else if (access(parent, W_OK | X_OK) != 0)
			why = "does not exist and cannot be created", err = errno;
	}
	if (!why)
		return 0;
	char etext[128];
	snprintf(etext, sizeof(etext), "%s", err ? relay_strerror(err) : "");
	etext[0] = (char)tolower((unsigned char)etext[0]); /* "permission denied" */
	/* a longer text is cut, and says so by its length alone */
	if (snprintf(msg, n, "%s %s%s%s", where, why, err ? ": " : "", etext) >= (int)n && n > 4)
		memcpy(msg + n - 4, "...", 4);
	return 1;
}

static void
notify_status(struct relayd *d)
{
	struct relay_delivery_status ds = { 0 };
	char circuits[1024] = "";
	size_t n = 0;

	if (d->delivery)
		relay_delivery_status(d->delivery, &ds);
	/* One destination: "circuit closed", as always; several: each by name. */
	if (ds.n_dest <= 1)
		snprintf(circuits, sizeof(circuits), "circuit %s%s", ds.n_dest ? ds.dest[0].circuit
		                                                                 : "closed",
		         ds.n_dest && ds.dest[0].paused ? " (paused)" : "");
	for (size_t i = 0; ds.n_dest > 1 && i < ds.n_dest && n < sizeof(circuits); i++) {
		int w = snprintf(circuits + n, sizeof(circuits) - n, "%s%s %s%s", i ? ", " : "circuits ",
		                 ds.dest[i].name, ds.dest[i].circuit, ds.dest[i].paused ? " (paused)" : "");
		if (w < 0)
			break;
		n += (size_t)w;
	}
	sd_notifyf(0, "STATUS=queued %" PRIu64 ", in flight %u, dead %" PRIu64 ", %s%s", ds.queued,
	           ds.in_flight, ds.dead, circuits, ds.paused ? ", paused" : "");
}

static int
acks_note_fn(void *arg, struct relay_store *st, MDB_txn *txn, struct relay_write_result *r)
{
	return relay_store_note_put(st, txn, "acks", arg);
}

static void
acks_noted(void *arg, int rc, const struct relay_write_result *r)
{
	free(arg);
}

/* The answers to senders against their deadlines, for odoo-relayctl
 * status: written when they changed, at most every STATUS_INTERVAL_S. */
static void
note_acks(struct relayd *d)
{
	uint64_t total = 0;
	char *text;

	if (!d->ingest || !d->writer)
		return;
	text = relay_ingest_acks_json(d->ingest, &total);
	if (!text || total == d->acks_noted) {
		free(text);
		return;
	}
	if (relay_writer_call(d->writer, acks_note_fn, text, acks_noted, text) == 0)
		d->acks_noted = total;
	else
		free(text);
}

static void
status_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relayd *d = arg;

	notify_status(d);
	note_acks(d);
	relay_queries_note(d->queries);
}

/* Queries ask delivery whether a destination's circuit is open. */
static int
circuit_open_cb(void *arg, const char *destination)
{
	struct relayd *d = arg;

	return d->delivery ? relay_delivery_circuit_open(d->delivery, destination) : 0;
}

static int
start_queries(struct relayd *d, const struct relay_config *cfg, struct relay_queries **out)
{
	int rc = relay_queries_new(d->base, d->metrics, d->writer, cfg, out);

	if (rc == 0)
		relay_queries_set_circuit(*out, circuit_open_cb, d);
	return rc;
}

static void
watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	/* Sent from the loop itself: a loop that is stuck stops the pings and
	 * systemd restarts the service. */
	sd_notify(0, "WATCHDOG=1");
}

static void
swept(void *arg, int rc, const struct relay_write_result *r)
{
	if (rc)
		relay_log(LOG_WARNING, "cannot sweep expired dedup keys: %s", relay_strerror(rc));
}

static int
sweep_fn(void *arg, struct relay_store *st, MDB_txn *txn, struct relay_write_result *r)
{
	size_t n = 0;
	int rc = relay_store_sweep_dedup(st, txn, relay_wall_ms(), SWEEP_BATCH, &n);
	r->id = n;
	return rc;
}

static void
versions_swept(void *arg, int rc, const struct relay_write_result *r)
{
	if (rc)
		relay_log(LOG_WARNING, "cannot sweep expired versions: %s", relay_strerror(rc));
}

/* The stale guard's table (store.h versions): same bound, own transaction. */
static int
sweep_versions_fn(void *arg, struct relay_store *st, MDB_txn *txn, struct relay_write_result *r)
{
	size_t n = 0;
	int rc = relay_store_sweep_versions(st, txn, relay_wall_ms(), SWEEP_BATCH, &n);
	r->id = n;
	return rc;
}

/* The history (history.h): small batches, each its own writer call, the
 * next one asked for only when the last is done, so that ingests and
 * outcomes share every commit with at most one batch of the sweep. */
#define HISTORY_SWEEP_BATCH 500

static int
sweep_history_fn(void *arg, struct relay_store *st, MDB_txn *txn, struct relay_write_result *r)
{
	size_t n = 0;
	int rc = relay_history_sweep(st, txn, relay_wall_ms(), HISTORY_SWEEP_BATCH, &n);
	r->id = n;
	return rc;
}

static void
history_swept(void *arg, int rc, const struct relay_write_result *r)
{
	struct relayd *d = arg;

	if (rc)
		relay_log(LOG_WARNING, "cannot sweep the history: %s", relay_strerror(rc));
	else if (r->id == HISTORY_SWEEP_BATCH && d->writer)
		relay_writer_call(d->writer, sweep_history_fn, NULL, history_swept, d);
}

static void
sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relayd *d = arg;
	relay_writer_call(d->writer, sweep_fn, NULL, swept, NULL);
	relay_writer_call(d->writer, sweep_versions_fn, NULL, versions_swept, NULL);
	relay_writer_call(d->writer, sweep_history_fn, NULL, history_swept, d);
}

/* The history's size, and what it gave up for new events. */
static void
history_metrics(struct relayd *d, struct relay_metrics *m)
{
	uint64_t evicted, skipped, n, bytes;

	relay_history_gave_way(d->store, &evicted, &skipped);
	relay_metrics_add(m, "relay_history_gave_way_total",
	                  "history entries removed before their retention or not kept, so that "
	                  "the store stays free for new events", NULL, NULL,
	                  (double)(evicted + skipped - d->gave_way_shown));
	d->gave_way_shown = evicted + skipped;
	uint64_t damaged = relay_history_damaged(d->store);
	relay_metrics_add(m, "relay_history_damaged_total",
	                  "history expiry rows, history records and audit records that did not "
	                  "decode and that the sweep removed", NULL, NULL,
	                  (double)(damaged - d->damaged_shown));
	d->damaged_shown = damaged;
	size_t free_bytes;
	if (relay_store_free_bytes(d->store, &free_bytes) == 0)
		relay_metrics_set(m, "relay_store_free_bytes",
		                  "bytes of the map free for new data (its unused tail as far as the "
		                  "disk allows, and LMDB's free pages)", NULL, NULL, (double)free_bytes);
	if (relay_history_stats(d->store, &n, &bytes) == 0) {
		relay_metrics_set(m, "relay_history_events", "events kept in the history", NULL, NULL,
		                  (double)n);
		relay_metrics_set(m, "relay_history_bytes",
		                  "bytes of store pages the history and its indexes take", NULL, NULL,
		                  (double)bytes);
	}
}

static void
metrics_hook(void *arg, struct relay_metrics *m)
{
	struct relayd *d = arg;
	uint64_t commits, writes, failed;

	if (d->delivery)
		relay_delivery_metrics(d->delivery, m);
	/* Writes per commit is how well group commit works under the load. */
	relay_writer_stats(d->writer, &commits, &writes);
	relay_metrics_add(m, "relay_store_commits_total", "durable store commits (each one fsync)",
	                  NULL, NULL, commits - d->commits_shown);
	relay_metrics_add(m, "relay_store_writes_total",
	                  "store writes (events received, outcomes, CLI changes) those commits carried",
	                  NULL, NULL, writes - d->writes_shown);
	d->commits_shown = commits;
	relay_writer_settles(d->writer, &commits, &failed);
	relay_metrics_add(m, "relay_store_settles_total",
	                  "store commits that only indexed events already stored (each one fsync)",
	                  NULL, NULL, commits - d->settles_shown);
	relay_metrics_add(m, "relay_store_settle_failures_total",
	                  "indexing stored events for delivery failed (tried again every second)",
	                  NULL, NULL, failed - d->settle_failures_shown);
	d->settles_shown = commits;
	d->settle_failures_shown = failed;
	relay_metrics_set(m, "relay_queue_unsettled",
	                  "events stored but not yet indexed for delivery, as of the last commit "
	                  "(the writer settles them within milliseconds)",
	                  NULL, NULL, (double)relay_store_unsettled(d->store));
	history_metrics(d, m);
	d->writes_shown = writes;
}

static int
config_note_fn(void *fn_arg, struct relay_store *st, MDB_txn *txn, struct relay_write_result *r)
{
	return relay_store_note_put(st, txn, "config", fn_arg);
}

static void
config_noted(void *arg, int rc, const struct relay_write_result *r)
{
	free(arg);
}

/* Leave the last configuration error (or none) for odoo-relayctl status. */
static void
note_config_error(struct relayd *d, const char *msg)
{
	char *text = NULL;
	if (msg) {
		json_t *o = json_pack("{s:I,s:s}", "at_ms", (json_int_t)relay_wall_ms(), "error", msg);
		text = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		if (!text)
			return;
	}
	if (relay_writer_call(d->writer, config_note_fn, text, config_noted, text))
		free(text);
}

static void
stored_hook(void *arg)
{
	struct relayd *d = arg;
	if (d->delivery)
		relay_delivery_kick(d->delivery);
}

/* Whether a reloaded configuration listens where the running one does. */
static int
same_addresses(const struct relay_config *a, const struct relay_config *b)
{
	if (a->n_listen != b->n_listen ||
	    !!a->admin_listen != !!b->admin_listen ||
	    (a->admin_listen && strcmp(a->admin_listen, b->admin_listen) != 0) ||
	    !!a->query_listen != !!b->query_listen ||
	    (a->query_listen && strcmp(a->query_listen, b->query_listen) != 0))
		return 0;
	for (size_t i = 0; i < a->n_listen; i++)
		if (strcmp(a->listen[i], b->listen[i]) != 0)
			return 0;
	return 1;
}

/* A reload refused: said, noted for odoo-relayctl status, and what it
 * built freed (cfg and routes may be NULL); the old configuration runs on. */
static void
refuse_reload(struct relayd *d, const char *msg, struct relay_config *cfg,
              struct relay_routes *routes)
{
	struct relay_log_fields f = { .message_id = RELAY_MSGID_RELOAD_REFUSED };

	relay_log_with(LOG_ERR, &f, "configuration reload refused, keeping the old one: %s", msg);
	note_config_error(d, msg);
	relay_routes_free(routes);
	relay_config_free(cfg);
	sd_notify(0, "READY=1");
}

static void
reload(struct relayd *d)
{
	char usec[64], msg[1024];
	struct relay_config *cfg;
	struct relay_routes *routes;

	snprintf(usec, sizeof(usec), "RELOADING=1\nMONOTONIC_USEC=%" PRId64, relay_mono_ms() * 1000);
	sd_notify(0, usec);
	if (load_config(d->config_path, &cfg, &routes, msg, sizeof(msg))) {
		refuse_reload(d, msg, NULL, NULL);
		return;
	}
	/* What cannot change without a restart is kept, and said so. */
	if (strcmp(cfg->state_dir, d->cfg->state_dir) != 0)
		relay_log(LOG_WARNING, "state_dir changed in %s: takes effect at the next restart",
		          d->config_path);
	if (cfg->map_size != d->cfg->map_size)
		relay_log(LOG_WARNING, "map_size_mb changed in %s: takes effect at the next restart",
		          d->config_path);
	if (!same_addresses(cfg, d->cfg))
		relay_log(LOG_WARNING, "listen, admin_listen or query_listen changed in %s: takes effect "
		          "at the next restart", d->config_path);
	/* The queries' clients, then delivery: the steps that can fail, and a
	 * refusal must leave every part on the old configuration, which stays
	 * allocated. */
	int rc = 0;
	struct relay_queries_gen *qgen = NULL;
	struct relay_queries *new_queries = NULL;
	if (d->queries)
		rc = relay_queries_prepare(d->queries, cfg, &qgen);
	else if (cfg->n_queries)
		rc = start_queries(d, cfg, &new_queries);
	if (rc) {
		snprintf(msg, sizeof(msg), "%s: %s (cannot set up a query's destination)",
		         d->config_path, relay_strerror(rc));
		refuse_reload(d, msg, cfg, routes);
		return;
	}
	if (d->delivery)
		rc = relay_delivery_set_config(d->delivery, cfg, routes);
	else if (cfg->n_destinations && !d->check) /* else once the store is checked */
		rc = relay_delivery_start(d->base, d->store, d->writer, d->metrics, cfg, routes,
		                          &d->delivery);
	if (rc) {
		snprintf(msg, sizeof(msg), "%s: %s", d->config_path,
		         rc == -RELAY_ECONFIG ? "no destination: delivery cannot be stopped by a "
		                                "reload (restart to run without one)"
		                              : relay_strerror(rc));
		if (rc != -RELAY_ECONFIG) {
			size_t n = strlen(msg);
			snprintf(msg + n, sizeof(msg) - n, " (cannot set up a destination)");
		}
		relay_queries_discard(qgen);
		relay_queries_free(new_queries);
		refuse_reload(d, msg, cfg, routes);
		return;
	}
	/* the pollers copy what they need: after delivery, which can refuse */
	if (d->pollers && (rc = relay_pollers_set_config(d->pollers, cfg)))
		relay_log(LOG_WARNING, "poll sources keep their previous configuration: %s",
		          relay_strerror(rc));
	if (qgen)
		relay_queries_commit(d->queries, qgen);
	else if (new_queries) {
		d->queries = new_queries;
		relay_ingest_set_queries(d->ingest, d->queries);
	}
	relay_ingest_set_config(d->ingest, cfg);
	relay_routes_free(d->routes);
	relay_config_free(d->cfg);
	d->cfg = cfg;
	d->routes = routes;
	note_config_error(d, NULL);
	struct relay_log_fields f = { .message_id = RELAY_MSGID_RELOADED };
	relay_log_with(LOG_NOTICE, &f, "configuration reloaded from %s", d->config_path);
	sd_notify(0, "READY=1");
	notify_status(d);
}

static void
drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relayd *d = arg;
	unsigned busy = relay_ingest_pending(d->ingest) +
	                (d->delivery ? relay_delivery_in_flight(d->delivery) : 0) +
	                relay_queries_in_flight(d->queries) + relay_pollers_in_flight(d->pollers);
	if (busy == 0 || relay_mono_ms() >= d->drain_deadline_ms) {
		if (busy)
			relay_log(LOG_WARNING, "stopping with %u calls unfinished: they stay queued", busy);
		event_base_loopbreak(d->base);
		return;
	}
	struct timeval tv = { 0, 20 * 1000 };
	evtimer_add(d->drain, &tv);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct relayd *d = arg;
	if (sig == SIGHUP) {
		if (d->config_path)
			reload(d);
		return;
	}
	if (d->stopping) {
		relay_log(LOG_WARNING, "second stop signal: stopping now");
		event_base_loopbreak(d->base);
		return;
	}
	d->stopping = 1;
	sd_notify(0, "STOPPING=1");
	relay_log(LOG_INFO, "stopping: no new work, waiting for calls in flight");
	relay_ingest_set_ready(d->ingest, 0);
	relay_ingest_stop_listening(d->ingest);
	if (d->delivery)
		relay_delivery_stop_taking(d->delivery);
	d->drain_deadline_ms = relay_mono_ms() + d->cfg->delivery.drain_timeout_ms;
	drain_cb(-1, 0, d);
}

static int
write_listen_file(struct relayd *d)
{
	char buf[1024], tmp[4096];
	relay_ingest_addresses(d->ingest, buf, sizeof(buf));
	snprintf(tmp, sizeof(tmp), "%s.tmp", d->listen_file);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return errno;
	fputs(buf, f);
	if (fclose(f) || rename(tmp, d->listen_file))
		return errno;
	return 0;
}

static int
open_listeners(struct relayd *d)
{
	int n = sd_listen_fds(1);
	if (n > 0) {
		for (int i = 0; i < n; i++) {
			int rc = relay_ingest_adopt(d->ingest, SD_LISTEN_FDS_START + i);
			if (rc) {
				relay_log(LOG_ERR, "cannot use socket passed by systemd: %s",
				          relay_strerror(rc));
				return rc;
			}
		}
		relay_log(LOG_INFO, "serving %d socket(s) passed by systemd", n);
	} else {
		for (size_t i = 0; i < d->cfg->n_listen; i++) {
			int rc = relay_ingest_listen(d->ingest, d->cfg->listen[i], 0);
			if (rc) {
				relay_log(LOG_ERR, "cannot listen on %s: %s", d->cfg->listen[i],
				          relay_strerror(rc));
				return rc;
			}
		}
		if (d->cfg->n_listen == 0) {
			relay_log(LOG_ERR, "no listen address configured and no socket passed by systemd");
			return -RELAY_ECONFIG;
		}
	}
	if (d->cfg->admin_listen) {
		int rc = relay_ingest_listen(d->ingest, d->cfg->admin_listen, 1);
		if (rc) {
			relay_log(LOG_ERR, "cannot listen on %s: %s", d->cfg->admin_listen,
			          relay_strerror(rc));
			return rc;
		}
	}
	if (d->cfg->query_listen) {
		int rc = relay_ingest_listen_queries(d->ingest, d->cfg->query_listen);
		if (rc) {
			relay_log(LOG_ERR, "cannot listen on %s: %s", d->cfg->query_listen,
			          relay_strerror(rc));
			return rc;
		}
	}
	return 0;
}

static struct event *
every(struct relayd *d, int64_t ms, event_callback_fn cb)
{
	struct event *ev = event_new(d->base, -1, EV_PERSIST, cb, d);
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	if (ev)
		event_add(ev, &tv);
	return ev;
}

/* What an operator can do about a store that does not open: it is never
 * replaced or repaired behind their back. */
static const char *
store_hint(int rc)
{
	switch (rc) {
	case -RELAY_EVERSION:
		return " (written by a newer odoo-relay: run that version, or move the directory "
		       "away to start with an empty store)";
	case -RELAY_ECORRUPT:
	case MDB_INVALID:
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_VERSION_MISMATCH:
		return " (the store is damaged or not a store: restore it from a backup, or move "
		       "the directory away to start with an empty store)";
	default:
		return "";
	}
}

/* The whole walk of the store is over: start delivery, or stop for good
 * on a damaged store, as a start-up that finds one does. */
static void
check_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relayd *d = arg;
	int rc = relay_store_check_end(d->check, 0);

	d->check = NULL;
	event_free(d->check_ev);
	d->check_ev = NULL;
	if (rc) {
		relay_log(LOG_ERR, "cannot open store %s: %s%s", d->cfg->state_dir, relay_strerror(rc),
		          store_hint(rc));
		d->failed = 1;
		relay_ingest_set_ready(d->ingest, 0);
		sd_notify(0, "STOPPING=1");
		event_base_loopbreak(d->base);
		return;
	}
	relay_log(LOG_INFO, "store %s read through: every record decodes", d->cfg->state_dir);
	if (d->cfg->n_destinations && !d->delivery && !d->stopping) {
		rc = relay_delivery_start(d->base, d->store, d->writer, d->metrics, d->cfg, d->routes,
		                          &d->delivery);
		if (rc) {
			relay_log(LOG_ERR, "cannot start delivery: %s", relay_strerror(rc));
			d->failed = 1;
			event_base_loopbreak(d->base);
		}
	}
}

static int
run(struct relayd *d)
{
	char addrs[1024];
	uint64_t wd_usec = 0;
	int rc;

	if (evthread_use_pthreads()) {
		relay_log(LOG_ERR, "cannot enable libevent threading");
		return 1;
	}
	d->base = event_base_new();
	d->metrics = relay_metrics_new();
	/* Two priorities: the writer's completions (0) before everything else
	 * (1, the default once there are two), see writer.c. */
	if (!d->base || !d->metrics || event_base_priority_init(d->base, 2)) {
		relay_log(LOG_ERR, "cannot start: out of memory");
		return 1;
	}
	/* Read all of it once, in a child, before trusting it: a damaged page
	 * would otherwise crash the daemon later, and again at every restart.
	 * What ingest and the status read is checked now; the records of the
	 * backlog, which only delivery reads, are walked while the daemon
	 * already takes webhooks, and delivery starts once they are (so a deep
	 * backlog does not hold READY=1 back). */
	rc = relay_store_verify_start(d->cfg->state_dir, &d->check);
	if (rc == 0)
		rc = relay_store_open(d->cfg->state_dir, d->cfg->map_size, RELAY_STORE_CREATE,
		                      &d->store);
	if (rc) {
		relay_log(LOG_ERR, "cannot open store %s: %s%s", d->cfg->state_dir, relay_strerror(rc),
		          store_hint(rc));
		return 1;
	}
	/* the pollers' table exists before the writer thread runs (store_poll.h) */
	rc = relay_poll_db_open(d->store, 1, &d->poll_db);
	if (rc == 0)
		rc = relay_writer_start(d->store, d->base, &d->writer);
	if (rc == 0)
		rc = relay_ingest_new(d->base, d->cfg, d->writer, d->metrics, &d->ingest);
	if (rc) {
		relay_log(LOG_ERR, "cannot start: %s", relay_strerror(rc));
		return 1;
	}
	relay_ingest_set_metrics_hook(d->ingest, metrics_hook, d);
	relay_ingest_set_stored_hook(d->ingest, stored_hook, d);
	/* an ingest's event is deliverable once settled (writer.h) */
	relay_writer_set_settled_hook(d->writer, stored_hook, d);
	if (open_listeners(d))
		return 1;
	if (d->check) {
		d->check_ev = event_new(d->base, relay_store_check_fd(d->check), EV_READ, check_cb, d);
		if (!d->check_ev || event_add(d->check_ev, NULL)) {
			relay_log(LOG_ERR, "cannot start: out of memory");
			return 1;
		}
	} else if (d->cfg->n_destinations) {
		rc = relay_delivery_start(d->base, d->store, d->writer, d->metrics, d->cfg, d->routes,
		                          &d->delivery);
		if (rc) {
			relay_log(LOG_ERR, "cannot start delivery: %s", relay_strerror(rc));
			return 1;
		}
	}
	if (!d->cfg->n_destinations) {
		relay_log(LOG_WARNING, "no destination configured: events are stored, not delivered");
	}
	if (d->cfg->n_queries) {
		rc = start_queries(d, d->cfg, &d->queries);
		if (rc) {
			relay_log(LOG_ERR, "cannot start queries: %s", relay_strerror(rc));
			return 1;
		}
		relay_ingest_set_queries(d->ingest, d->queries);
	}
	rc = relay_pollers_start(d->base, d->store, d->writer, &d->poll_db, d->cfg, circuit_open_cb,
	                         stored_hook, d, &d->pollers);
	if (rc) {
		relay_log(LOG_ERR, "cannot start the poll sources: %s", relay_strerror(rc));
		return 1;
	}
	relay_pollers_set_metrics(d->pollers, d->metrics);
	warn_unverified(d->cfg, NULL);
	relay_queries_warn_public(d->cfg, NULL);

	d->sig_term = evsignal_new(d->base, SIGTERM, signal_cb, d);
	d->sig_int = evsignal_new(d->base, SIGINT, signal_cb, d);
	d->sig_hup = evsignal_new(d->base, SIGHUP, signal_cb, d);
	d->drain = evtimer_new(d->base, drain_cb, d);
	if (!d->sig_term || !d->sig_int || !d->sig_hup || !d->drain) {
		relay_log(LOG_ERR, "cannot start: out of memory");
		return 1;
	}
	event_add(d->sig_term, NULL);
	event_add(d->sig_int, NULL);
	event_add(d->sig_hup, NULL);
	if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0)
		d->watchdog = every(d, (int64_t)(wd_usec / 2000), watchdog_cb);
	d->status = every(d, STATUS_INTERVAL_S * 1000, status_cb);
	d->sweep = every(d, SWEEP_INTERVAL_S * 1000, sweep_cb);
	/* What expired while the daemon was down goes at once. */
	relay_writer_call(d->writer, sweep_history_fn, NULL, history_swept, d);

	relay_ingest_addresses(d->ingest, addrs, sizeof(addrs));
	for (char *s = addrs, *nl; (nl = strchr(s, '\n')); s = nl + 1) {
		*nl = '\0';
		relay_log(LOG_INFO, "listening on %s", s);
	}
	if (d->listen_file && (rc = write_listen_file(d)) != 0) {
		relay_log(LOG_ERR, "cannot write %s: %s", d->listen_file, relay_strerror(rc));
		return 1;
	}
	relay_ingest_set_ready(d->ingest, 1);
	note_config_error(d, NULL);
	struct relay_log_fields f = { .message_id = RELAY_MSGID_STARTED };
	relay_log_with(LOG_NOTICE, &f, "odoo-relayd %s started, store %s", RELAY_VERSION,
	               d->cfg->state_dir);
	sd_notify(0, "READY=1");
	notify_status(d);

	event_base_loop(d->base, 0);
	return d->failed;
}

static void
teardown(struct relayd *d)
{
	/* The order matters: the writer first (its last completions answer
	 * pending webhooks and end delivery's jobs whose outcome was being
	 * written), then delivery (it cancels its calls: their events stay
	 * queued, nothing is written), then ingest. */
	if (d->check_ev)
		event_free(d->check_ev);
	relay_store_check_end(d->check, 1);
	if (d->writer)
		relay_writer_stop(d->writer);
	relay_pollers_free(d->pollers);
	relay_delivery_free(d->delivery);
	relay_queries_free(d->queries);
	relay_ingest_free(d->ingest);
	relay_store_close(d->store);
	struct event *evs[] = { d->sig_term, d->sig_int, d->sig_hup, d->watchdog,
	                        d->status, d->sweep, d->drain };
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (evs[i])
			event_free(evs[i]);
	relay_metrics_free(d->metrics);
	if (d->base)
		event_base_free(d->base);
	relay_routes_free(d->routes);
	relay_config_free(d->cfg);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", required_argument, NULL, 'C' },
		{ "demo", optional_argument, NULL, 'D' },
		{ "odoo-url", required_argument, NULL, 'u' },
		{ "listen-file", required_argument, NULL, 'l' },
		{ "debug", no_argument, NULL, 'd' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct relayd d = { 0 };
	const char *check = NULL, *demo = NULL, *odoo_url = "http://127.0.0.1:8069";
	char demo_path[4096], msg[1024];
	int c, debug = 0, want_demo = 0, status = 1;

	/* before any thread, and before jansson allocates */
	relay_json_arena_install();
	while ((c = getopt_long(argc, argv, "c:C:l:dVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': d.config_path = optarg; break;
		case 'C': check = optarg; break;
		case 'D':
			want_demo = 1;
			/* "--demo DIR" as well as "--demo=DIR" */
			if (!optarg && optind < argc && argv[optind][0] != '-')
				optarg = argv[optind++];
			demo = optarg ? optarg : "/tmp/odoo-relay-demo";
			break;
		case 'u': odoo_url = optarg; break;
		case 'l': d.listen_file = optarg; break;
		case 'd': debug = 1; break;
		case 'V': printf("odoo-relayd %s\n", RELAY_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 64;
		}
	}
	if (optind != argc || (!!d.config_path + !!check + want_demo) != 1) {
		usage(stderr);
		return 64;
	}
	relay_log_init(-1, debug ? LOG_DEBUG : LOG_INFO);
	signal(SIGPIPE, SIG_IGN);

	if (check) {
		struct relay_config *cfg;
		struct relay_routes *routes;
		if (load_config(check, &cfg, &routes, msg, sizeof(msg))) {
			fprintf(stderr, "%s\n", msg);
			return 1;
		}
		warn_unverified(cfg, check);
		relay_queries_warn_public(cfg, check);
		if (check_state_dir(cfg, msg, sizeof(msg))) {
			fprintf(stderr, "%s\n", msg);
			relay_routes_free(routes);
			relay_config_free(cfg);
			return 1;
		}
		if (cfg->n_queries)
			printf("%s: configuration ok (%zu sources, %zu routes, %zu queries)\n", check,
			       cfg->n_sources, relay_routes_count(routes), cfg->n_queries);
		else
			printf("%s: configuration ok (%zu sources, %zu routes)\n", check, cfg->n_sources,
			       relay_routes_count(routes));
		relay_routes_free(routes);
		relay_config_free(cfg);
		return 0;
	}
	if (want_demo) {
		int rc = relayd_demo_prepare(demo, odoo_url, demo_path, sizeof(demo_path));
		if (rc) {
			fprintf(stderr, "cannot prepare demo in %s: %s\n", demo, relay_strerror(rc));
			return 1;
		}
		d.config_path = demo_path;
	}
	if (load_config(d.config_path, &d.cfg, &d.routes, msg, sizeof(msg))) {
		relay_log(LOG_ERR, "%s", msg);
		return 1;
	}
	if (run(&d) == 0)
		status = 0;
	teardown(&d);
	relay_json_arena_release();
	if (status == 0) {
		struct relay_log_fields f = { .message_id = RELAY_MSGID_STOPPED };
		relay_log_with(LOG_NOTICE, &f, "odoo-relayd stopped");
	}
	return status;
}
