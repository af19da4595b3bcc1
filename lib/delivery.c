/* Delivery of stored events into Odoo: see include/odoo_relay/delivery.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "odoo_relay/clock.h"
#include "odoo_relay/backoff.h"
#include "odoo_relay/classify.h"
#include "odoo_relay/delivery.h"
#include "odoo_relay/error.h"
#include "odoo_relay/log.h"
#include "odoo_relay/metrics.h"
#include "odoo_relay/odoo_client.h"
#include "odoo_relay/record.h"
#include "odoo_relay/route.h"
#include "odoo_relay/store.h"
#include "odoo_relay/writer.h"

/* The scheduler looks for work at least this often, so that what
 * odoo-relayctl changes (replay, pause) is seen within a second. */
#define POLL_MS 250
#define SCAN_BATCH 64
#define SCAN_MAX_BATCHES 16
#define BAD_IDS 32
/* Events handled at once, per call in flight: room for outcomes waiting for
 * their commit. */
#define JOBS_PER_CALL 16

enum circuit { CIRCUIT_CLOSED, CIRCUIT_OPEN, CIRCUIT_PROBING, CIRCUIT_HALF_OPEN };
static const char *const circuit_names[] = { "closed", "open", "probing", "half-open" };

enum step { STEP_LOOKUP, STEP_MAIN, STEP_WRITE_BACK };

/* An Odoo client; replaced on reload, freed once its last call is back. */
struct client {
	struct relay_odoo *odoo;
	unsigned users;
	int retired;
	LIST_ENTRY(client) link;
};

struct job {
	struct relay_delivery *d;   /* NULL once the engine is gone */
	struct client *client;
	struct relay_event ev;
	char *route;                /* NULL: no route matched */
	char *model;
	struct relay_backoff_conf backoff;
	unsigned permanent_retries;
	int64_t permanent_delay_ms;
	enum relay_lane_policy lane_policy;
	struct relay_plan plan;
	int have_plan;
	enum step step;
	const char *method;         /* of the call in flight */
	json_int_t res_id;          /* from the external-ID lookup, 0 if missing */
	int64_t started_ms;         /* monotonic, for durations */
	int half_open;              /* the one event let through to test the circuit */
	int calling;                /* a call to Odoo is in flight for it */
	LIST_ENTRY(job) link;
};

/* A route whose mapping Odoo refused (configuration for that route). */
struct suspended {
	char *route;
	int64_t until_ms;
	int64_t delay_ms;
	LIST_ENTRY(suspended) link;
};

struct relay_delivery {
	struct event_base *base;
	struct relay_store *store;
	struct relay_writer *writer;
	struct relay_metrics *metrics;
	const struct relay_config *cfg;
	const struct relay_routes *routes;
	struct client *client;
	LIST_HEAD(, client) retired;
	LIST_HEAD(, job) jobs;
	LIST_HEAD(, suspended) suspended;
	unsigned n_jobs;            /* events being handled, outcome writes included */
	unsigned n_calls;           /* of those, with a call to Odoo in flight */
	struct event *tick, *kick, *probe_timer;
	enum circuit circuit;
	int64_t circuit_since_ms;
	char circuit_error[512];    /* why it opened */
	int64_t probe_delay_ms;
	unsigned transient_run;
	int stopping;
	int starting;               /* first probe after start or reload: logs nothing */
	int reopen_logged;          /* a reload came while the circuit was open */
	int freeing;                /* callbacks from cancelled calls write nothing */
	int paused;
	double tokens;
	int64_t tokens_ms;
	uint64_t bad_ids[BAD_IDS];
	size_t n_bad;
	uint64_t delivered, retried, dead_lettered;
};

static void job_step(struct job *j);
static void schedule_tick(struct relay_delivery *d, int64_t ms);

static struct relay_log_fields
fields_of(const struct job *j)
{
	return (struct relay_log_fields){
		.event_id = j->ev.id, .source = j->ev.source, .topic = j->ev.topic,
		.route = j->route, .lane = j->ev.lane, .attempt = j->ev.attempts,
		.odoo_model = j->model,
	};
}

static void
client_release(struct relay_delivery *d, struct client *c)
{
	if (--c->users == 0 && c->retired) {
		LIST_REMOVE(c, link);
		relay_odoo_free(c->odoo);
		free(c);
	}
}

static void
job_free(struct job *j)
{
	struct relay_delivery *d = j->d;
	if (d) {
		LIST_REMOVE(j, link);
		d->n_jobs--;
		if (j->calling)
			d->n_calls--;
	}
	if (j->client && d)
		client_release(d, j->client);
	relay_event_clear(&j->ev);
	if (j->have_plan)
		relay_plan_clear(&j->plan);
	free(j->route);
	free(j->model);
	free(j);
}

/* The job is over: free it and look for more work. */
static void
job_done(struct job *j)
{
	struct relay_delivery *d = j->d;
	job_free(j);
	if (d)
		relay_delivery_kick(d);
}

/* ---- circuit ---- */

static int
note_fn(void *fn_arg, struct relay_store *st, MDB_txn *txn, struct relay_write_result *r)
{
	return relay_store_note_put(st, txn, "delivery", fn_arg);
}

static void
note_done(void *arg, int rc, const struct relay_write_result *r)
{
	if (rc)
		relay_log(LOG_WARNING, "cannot record the delivery state for odoo-relayctl: %s",
		          relay_strerror(rc));
	free(arg);
}

/* Leave the circuit's state in the store, for odoo-relayctl status. */
static void
note_state(struct relay_delivery *d)
{
	json_t *o = json_pack("{s:s,s:I,s:s?}", "circuit", circuit_names[d->circuit],
	                      "since_ms", (json_int_t)d->circuit_since_ms,
	                      "error", d->circuit_error[0] ? d->circuit_error : NULL);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (text && relay_writer_call(d->writer, note_fn, text, note_done, text))
		free(text);
}

static void
circuit_set(struct relay_delivery *d, enum circuit c)
{
	int changed = d->circuit != c;
	/* "Since" is when delivery stopped or started again: the probes that
	 * cycle an open circuit through probing and back do not move it. */
	if ((c == CIRCUIT_CLOSED) != (d->circuit == CIRCUIT_CLOSED) || d->circuit_since_ms == 0)
		d->circuit_since_ms = relay_wall_ms();
	d->circuit = c;
	if (c == CIRCUIT_CLOSED)
		d->circuit_error[0] = '\0';
	if (changed)
		note_state(d);
}

static void
circuit_open(struct relay_delivery *d, const struct relay_outcome *o, const char *why)
{
	int was = d->circuit;
	if (was == CIRCUIT_OPEN)
		return;
	snprintf(d->circuit_error, sizeof(d->circuit_error), "%s%s%s%s%s", why,
	         o && o->error_name ? ": " : "", o && o->error_name ? o->error_name : "",
	         o && o->message ? ": " : "", o && o->message ? o->message : "");
	/* One line in odoo-relayctl status and STATUS=, whatever Odoo wrote. */
	for (char *p = d->circuit_error; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	/* Opening from normal delivery, or at start or after a reload: the
	 * first probe comes soon and the change is logged. A failed probe
	 * backs off further, quietly. */
	int first = was == CIRCUIT_CLOSED || d->starting;
	if (first)
		d->probe_delay_ms = d->cfg->delivery.probe_base_ms;
	else
		d->probe_delay_ms = d->probe_delay_ms * 2 > d->cfg->delivery.probe_cap_ms
			? d->cfg->delivery.probe_cap_ms : d->probe_delay_ms * 2;
	if (d->probe_delay_ms <= 0)
		d->probe_delay_ms = 1000;
	d->starting = 0;
	circuit_set(d, CIRCUIT_OPEN);
	d->transient_run = 0;
	if (first) {
		struct relay_log_fields f = {
			.message_id = RELAY_MSGID_CIRCUIT_OPEN,
			.error_class = relay_class_name(o ? (int)o->klass : RELAY_CLASS_TRANSIENT),
			.odoo_error = o ? o->error_name : NULL,
		};
		relay_log_with(o && o->klass == RELAY_CLASS_CONFIG ? LOG_ERR : LOG_WARNING, &f,
		               "delivery to %s paused (circuit open): %s%s%s", d->cfg->odoo.url, why,
		               o && o->message ? ": " : "", o && o->message ? o->message : "");
	}
	struct timeval tv = { .tv_sec = d->probe_delay_ms / 1000,
	                      .tv_usec = (d->probe_delay_ms % 1000) * 1000 };
	evtimer_add(d->probe_timer, &tv);
}

static void
circuit_close(struct relay_delivery *d)
{
	if (d->circuit == CIRCUIT_CLOSED)
		return;
	circuit_set(d, CIRCUIT_CLOSED);
	d->transient_run = 0;
	struct relay_log_fields f = { .message_id = RELAY_MSGID_CIRCUIT_CLOSED };
	relay_log_with(LOG_NOTICE, &f, "delivery to %s resumed (circuit closed)", d->cfg->odoo.url);
	relay_delivery_kick(d);
}


struct probe_ctx {
	struct relay_delivery *d;
	struct client *c;
};

static void
probe_failed(struct relay_delivery *d, const struct relay_outcome *o, const char *why)
{
	/* The opening was logged; each failed probe only at debug level, so
	 * that an outage is one line when it starts and one when it ends. */
	if (!d->starting)
		relay_log(LOG_DEBUG, "probe of %s failed: %s%s%s", d->cfg->odoo.url,
		          o->error_name ? o->error_name : "error", o->message ? ": " : "",
		          o->message ? o->message : "");
	circuit_open(d, o, why);
}

/* The probe succeeded: close at once after a start or reload, else let one
 * real event through before closing the circuit. */
static void
probe_passed(struct relay_delivery *d)
{
	if (d->starting) {
		d->starting = 0;
		if (d->reopen_logged) {
			/* A reload cleared a circuit that was open: say so, as a probe
			 * that closes it does. */
			d->reopen_logged = 0;
			circuit_close(d);
			return;
		}
		circuit_set(d, CIRCUIT_CLOSED);
	} else {
		circuit_set(d, CIRCUIT_HALF_OPEN);
	}
	relay_delivery_kick(d);
}

/* Second step: our external-ID module must not be a module installed in
 * that database, or upgrading it would delete the records we made. */
static void
module_checked(struct relay_odoo_result *res, void *arg)
{
	struct probe_ctx *p = arg;
	struct relay_delivery *d = p->d;
	struct client *c = p->c;
	const struct relay_outcome *o = &res->outcome;
	free(p);
	if (d->freeing)
		return;
	client_release(d, c);
	if (d->circuit != CIRCUIT_PROBING)
		return;
	if (o->klass == RELAY_CLASS_DONE) {
		if (json_integer_value(o->result) > 0) {
			struct relay_outcome bad = { 0 };
			char msg[300];
			snprintf(msg, sizeof(msg), "the external-ID module \"%s\" is a module installed in "
			         "database %s: set odoo.module to a name of our own", d->cfg->odoo.module,
			         d->cfg->odoo.database);
			relay_outcome_set(&bad, RELAY_CLASS_CONFIG, RELAY_SCOPE_TARGET, "relay.module", msg,
			                  NULL);
			circuit_open(d, &bad, "refusing the configuration");
			relay_outcome_clear(&bad);
			return;
		}
		probe_passed(d);
		return;
	}
	if (o->klass == RELAY_CLASS_TRANSIENT) {
		probe_failed(d, o, "probe failed");
		return;
	}
	/* The API user may not read ir.module.module: say so, and go on. */
	relay_log(LOG_WARNING, "cannot check that module %s is not installed in %s: %s",
	          d->cfg->odoo.module, d->cfg->odoo.database,
	          o->message ? o->message : o->error_name ? o->error_name : "error");
	probe_passed(d);
}

static void
probe_done(struct relay_odoo_result *res, void *arg)
{
	struct probe_ctx *p = arg;
	struct relay_delivery *d = p->d;
	if (d->freeing) {
		free(p);
		return;
	}
	if (d->circuit != CIRCUIT_PROBING) {
		client_release(d, p->c);
		free(p);
		return;
	}
	if (res->outcome.klass != RELAY_CLASS_DONE) {
		client_release(d, p->c);
		free(p);
		probe_failed(d, &res->outcome, "probe failed");
		return;
	}
	json_t *named = json_pack("{s:[[s,s,s],[s,s,s]]}", "domain", "name", "=",
	                          d->cfg->odoo.module, "state", "=", "installed");
	int rc = named ? relay_odoo_call(p->c->odoo, "ir.module.module", "search_count", NULL,
	                                 named, module_checked, p) : ENOMEM;
	json_decref(named);
	if (rc) { /* the client reference passes on to module_checked otherwise */
		client_release(d, p->c);
		free(p);
		probe_passed(d);
	}
}

/* Start a probe: version and credentials, then the module check. */
static void
probe_start(struct relay_delivery *d)
{
	struct probe_ctx *p = malloc(sizeof(*p));
	circuit_set(d, CIRCUIT_PROBING);
	if (!p) {
		circuit_open(d, NULL, "out of memory for a probe");
		return;
	}
	p->d = d;
	p->c = d->client;
	d->client->users++;
	if (relay_odoo_probe(d->client->odoo, probe_done, p)) {
		client_release(d, p->c);
		free(p);
		circuit_open(d, NULL, "cannot start a probe");
	}
}

static void
probe_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay_delivery *d = arg;
	if (!d->stopping && d->circuit == CIRCUIT_OPEN)
		probe_start(d);
}

/* ---- routes suspended by a configuration failure of their own ---- */

static struct suspended *
suspended_find(struct relay_delivery *d, const char *route)
{
	struct suspended *s;
	LIST_FOREACH(s, &d->suspended, link)
		if (strcmp(s->route, route) == 0)
			return s;
	return NULL;
}

static void
route_suspend(struct relay_delivery *d, struct job *j, const struct relay_outcome *o)
{
	struct suspended *s = suspended_find(d, j->route);
	int64_t now = relay_mono_ms();
	if (!s) {
		if (!(s = calloc(1, sizeof(*s))) || !(s->route = strdup(j->route))) {
			free(s);
			return;
		}
		LIST_INSERT_HEAD(&d->suspended, s, link);
		s->delay_ms = d->cfg->delivery.probe_base_ms;
		struct relay_log_fields f = fields_of(j);
		f.message_id = RELAY_MSGID_CIRCUIT_OPEN;
		f.error_class = "configuration";
		f.odoo_error = o->error_name;
		relay_log_with(LOG_ERR, &f, "route %s suspended: odoo refused its mapping: %s",
		               j->route, o->message ? o->message : o->error_name);
	} else {
		s->delay_ms = s->delay_ms * 2 > d->cfg->delivery.probe_cap_ms
			? d->cfg->delivery.probe_cap_ms : s->delay_ms * 2;
	}
	s->until_ms = now + s->delay_ms;
}

static void
route_resume(struct relay_delivery *d, const char *route)
{
	struct suspended *s = route ? suspended_find(d, route) : NULL;
	if (!s)
		return;
	LIST_REMOVE(s, link);
	struct relay_log_fields f = { .message_id = RELAY_MSGID_CIRCUIT_CLOSED, .route = route };
	relay_log_with(LOG_NOTICE, &f, "route %s resumed", route);
	free(s->route);
	free(s);
}

/* ---- writing outcomes back ---- */

static void
written(void *arg, int rc, const struct relay_write_result *r)
{
	struct job *j = arg;
	if (rc && rc != -RELAY_ENOTFOUND) {
		/* The event stays as it was in the store and is tried again
		 * later; idempotent plans make that safe. */
		struct relay_log_fields f = fields_of(j);
		relay_log_with(LOG_ERR, &f, "cannot record the outcome of event %" PRIu64 ": %s",
		               j->ev.id, relay_strerror(rc));
	}
	job_done(j);
}

/* Submit a write for j; on failure to even queue it, the job just ends. */
static void
submit(struct job *j, int rc)
{
	if (rc)
		written(j, rc, NULL);
}

static int
event_dup(struct relay_event **out, const struct relay_event *ev)
{
	unsigned char *buf;
	size_t len;
	int rc = relay_record_encode(ev, &buf, &len);
	if (rc)
		return rc;
	struct relay_event *c = calloc(1, sizeof(*c));
	if (!c) {
		free(buf);
		return ENOMEM;
	}
	rc = relay_record_decode(buf, len, c);
	free(buf);
	if (rc) {
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

static void
add_attempt(struct job *j, const struct relay_outcome *o, int64_t now)
{
	struct relay_attempt a = {
		.at_ms = now, .klass = (uint8_t)o->klass, .http_status = (uint16_t)o->http_status,
		.duration_ms = relay_mono_ms() - j->started_ms, .error_name = o->error_name,
		.message = o->message, .detail = o->detail,
	};
	relay_event_add_attempt(&j->ev, &a);
	free(j->ev.last_error);
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s%s%s", o->error_name ? o->error_name : "error",
	         o->message ? ": " : "", o->message ? o->message : "");
	j->ev.last_error = strdup(buf);
	if (!j->ev.route && j->route)
		j->ev.route = strdup(j->route);
}

static void
bury(struct job *j, const char *reason, const char *request)
{
	struct relay_delivery *d = j->d;
	struct relay_event *copy;
	int64_t now = relay_wall_ms();

	free(j->ev.dead_reason);
	j->ev.dead_reason = strdup(reason);
	free(j->ev.request);
	j->ev.request = request ? strdup(request) : NULL;
	j->ev.dead_ms = now;
	if (!j->ev.route && j->route)
		j->ev.route = strdup(j->route);
	d->dead_lettered++;
	relay_metrics_add(d->metrics, "relay_dead_lettered_total", "events moved to the dead-letter queue, by route",
	                  "route", j->route ? j->route : "(none)", 1);
	struct relay_log_fields f = fields_of(j);
	f.message_id = RELAY_MSGID_DEAD;
	relay_log_with(LOG_ERR, &f, "event %" PRIu64 " dead-lettered: %s", j->ev.id, reason);
	int rc = event_dup(&copy, &j->ev);
	if (rc == 0)
		rc = relay_writer_bury(d->writer, copy, j->lane_policy, now, written, j);
	submit(j, rc);
}

static void
reschedule(struct job *j, int64_t due_ms)
{
	struct relay_event *copy;
	j->ev.due_ms = due_ms;
	j->d->retried++;
	relay_metrics_add(j->d->metrics, "relay_retried_total", "delivery attempts to be retried, by route",
	                  "route", j->route ? j->route : "(none)", 1);
	int rc = event_dup(&copy, &j->ev);
	if (rc == 0)
		rc = relay_writer_reschedule(j->d->writer, copy, written, j);
	submit(j, rc);
}

static void
complete(struct job *j, const char *how)
{
	struct relay_delivery *d = j->d;
	int64_t now = relay_wall_ms();
	d->delivered++;
	relay_metrics_add(d->metrics, "relay_delivered_total", "events applied in Odoo, by route",
	                  "route", j->route ? j->route : "(none)", 1);
	relay_metrics_observe(d->metrics, "relay_delivery_seconds",
	                      "time from receipt of an event to its delivery",
	                      (double)(now - j->ev.received_ms) / 1000.0);
	struct relay_log_fields f = fields_of(j);
	relay_log_with(LOG_INFO, &f, "event %" PRIu64 " %s in %" PRId64 " ms", j->ev.id, how,
	               relay_mono_ms() - j->started_ms);
	submit(j, relay_writer_complete(d->writer, j->ev.id, now, written, j));
}

/* A failure charged to the event: retry or give up. */
static void
charge(struct job *j, const struct relay_outcome *o, const char *request)
{
	int64_t now = relay_wall_ms(), due;
	if (!j->ev.first_attempt_ms)
		j->ev.first_attempt_ms = now;
	j->ev.attempts++;
	add_attempt(j, o, now);

	if (o->klass == RELAY_CLASS_PERMANENT) {
		if (j->ev.attempts <= j->permanent_retries) {
			reschedule(j, now + j->permanent_delay_ms);
			return;
		}
		bury(j, j->ev.last_error, request);
		return;
	}
	if (relay_backoff_next(&j->backoff, j->ev.attempts, j->ev.first_attempt_ms, now,
	                       o->retry_after_ms, relay_backoff_random(), &due) == RELAY_GIVE_UP) {
		char reason[1200];
		snprintf(reason, sizeof(reason), "gave up after %u attempts: %s", j->ev.attempts,
		         j->ev.last_error);
		bury(j, reason, request);
		return;
	}
	struct relay_log_fields f = fields_of(j);
	f.error_class = relay_class_name((int)o->klass);
	f.odoo_error = o->error_name;
	relay_log_with(LOG_INFO, &f, "event %" PRIu64 " attempt %u failed, retry in %" PRId64 " ms: %s",
	               j->ev.id, j->ev.attempts, due - now, j->ev.last_error);
	reschedule(j, due);
}

/* ---- executing a plan ---- */

static int
is_connect_failure(const struct relay_outcome *o)
{
	return o->error_name && strcmp(o->error_name, "transport.connect") == 0;
}

static int
is_missing_error(const struct relay_outcome *o)
{
	return o->error_name && strstr(o->error_name, "MissingError") != NULL;
}

static void
outcome(struct job *j, struct relay_odoo_result *res)
{
	struct relay_delivery *d = j->d;
	const struct relay_outcome *o = &res->outcome;

	if (o->unknown) {
		struct relay_log_fields f = fields_of(j);
		f.odoo_error = o->error_name;
		relay_log_with(LOG_WARNING, &f, "unrecognised failure from odoo for event %" PRIu64
		               ": %s: %s", j->ev.id, o->error_name ? o->error_name : "?",
		               o->message ? o->message : "");
	}
	switch (o->klass) {
	case RELAY_CLASS_DONE:
		break; /* handled by the caller */
	case RELAY_CLASS_CONFIG:
		/* Says nothing about the event: charge nothing, leave it queued. */
		if (o->scope == RELAY_SCOPE_ROUTE && j->route)
			route_suspend(d, j, o);
		else
			circuit_open(d, o, "odoo refused our configuration");
		job_done(j);
		return;
	case RELAY_CLASS_TRANSIENT:
		if (o->error_name && strcmp(o->error_name, "transport.cancelled") == 0) {
			job_done(j);
			return;
		}
		if (is_connect_failure(o)) {
			/* Odoo is not there at all: not the event's fault. */
			circuit_open(d, o, "cannot connect");
			job_done(j);
			return;
		}
		if (j->half_open || ++d->transient_run >= d->cfg->delivery.circuit_failures)
			circuit_open(d, o, "repeated transient failures");
		charge(j, o, res->request);
		return;
	case RELAY_CLASS_PERMANENT:
	default:
		d->transient_run = 0;
		if (j->half_open)
			circuit_close(d);
		charge(j, o, res->request);
		return;
	}
	d->transient_run = 0;
	if (j->half_open)
		circuit_close(d);
	if (j->route)
		route_resume(d, j->route);
}

static void
permanent(struct job *j, const char *why)
{
	struct relay_outcome o = { 0 };
	if (relay_outcome_set(&o, RELAY_CLASS_PERMANENT, RELAY_SCOPE_NONE, "relay.plan", why, NULL)) {
		job_done(j);
		return;
	}
	charge(j, &o, NULL);
	relay_outcome_clear(&o);
}

static void
called(struct relay_odoo_result *res, void *arg)
{
	struct job *j = arg;
	struct relay_delivery *d = j->d;

	if (d && j->calling) {
		/* The call's slot is free now; the outcome is written while other
		 * calls go on, so that one fsync covers many outcomes. */
		j->calling = 0;
		d->n_calls--;
		if (!d->freeing)
			relay_delivery_kick(d);
	}
	if (!d || d->freeing) {
		if (d)
			j->client = NULL; /* freed with the engine */
		job_free(j);
		return;
	}
	/* Deleting a record that is already gone is what we wanted. */
	if (j->step == STEP_MAIN && j->plan.op == RELAY_OP_DELETE && is_missing_error(&res->outcome)) {
		outcome(j, &(struct relay_odoo_result){ .outcome = { .klass = RELAY_CLASS_DONE } });
		complete(j, "deleted (already gone)");
		return;
	}
	if (res->outcome.klass != RELAY_CLASS_DONE) {
		outcome(j, res);
		return;
	}
	outcome(j, res);

	if (j->step == STEP_LOOKUP) {
		const json_t *rows = res->outcome.result;
		const json_t *row = json_is_array(rows) ? json_array_get(rows, 0) : NULL;
		j->res_id = row ? json_integer_value(json_object_get(row, "res_id")) : 0;
		j->step = STEP_MAIN;
		job_step(j);
		return;
	}
	complete(j, j->plan.op == RELAY_OP_DELETE ? "deleted" : "delivered");
}

static void
call(struct job *j, const char *model, const char *method, json_t *ids, json_t *named)
{
	j->method = method;
	int rc = relay_odoo_call(j->client->odoo, model, method, ids, named, called, j);
	json_decref(ids);
	json_decref(named);
	if (rc == 0) {
		j->calling = 1;
		j->d->n_calls++;
	} else {
		struct relay_outcome o = { 0 };
		relay_outcome_set(&o, RELAY_CLASS_TRANSIENT, RELAY_SCOPE_NONE, "relay.call",
		                  relay_strerror(rc), NULL);
		struct relay_odoo_result res = { .outcome = o };
		outcome(j, &res);
		relay_outcome_clear(&o);
	}
}

static void
call_load(struct job *j)
{
	json_t *named = json_pack("{s:O,s:O}", "fields", j->plan.load_fields, "data", j->plan.load_data);
	call(j, j->plan.model, "load", NULL, named);
}

/* The next call of the plan, or its end. */
static void
job_step(struct job *j)
{
	struct relay_plan *p = &j->plan;
	char why[512];

	if (p->op == RELAY_OP_CALL) {
		call(j, p->model, p->method, NULL, json_incref(p->named));
		return;
	}
	if (j->step == STEP_LOOKUP) {
		if (p->op == RELAY_OP_UPSERT && p->may_create && p->may_update) {
			j->step = STEP_MAIN; /* load() creates or updates by itself */
			call_load(j);
			return;
		}
		json_t *named = json_pack("{s:[[s,s,s],[s,s,s]],s:[s,s]}", "domain",
		                          "module", "=", p->xmlid_module, "name", "=", p->xmlid_name,
		                          "fields", "res_id", "model");
		call(j, "ir.model.data", "search_read", NULL, named);
		return;
	}
	int exists = j->res_id > 0;
	switch (p->op) {
	case RELAY_OP_UPSERT:
		if (exists && !p->may_update) {
			complete(j, "skipped (record exists; route may not update)");
		} else if (!exists && !p->may_create) {
			snprintf(why, sizeof(why), "no record with external id %s.%s and route %s may not create",
			         p->xmlid_module, p->xmlid_name, j->route);
			permanent(j, why);
		} else {
			call_load(j);
		}
		return;
	case RELAY_OP_WRITE:
		if (exists) {
			call(j, p->model, "write", json_pack("[I]", j->res_id),
			     json_pack("{s:O}", "vals", p->values));
		} else if (p->missing_create && p->may_create && p->load_fields) {
			call_load(j);
		} else {
			snprintf(why, sizeof(why), "no record with external id %s.%s", p->xmlid_module,
			         p->xmlid_name);
			permanent(j, why);
		}
		return;
	case RELAY_OP_DELETE:
		if (exists)
			call(j, p->model, "unlink", json_pack("[I]", j->res_id), NULL);
		else
			complete(j, "deleted (no such record)");
		return;
	default:
		permanent(j, "unknown operation");
		return;
	}
}

/* ---- the scheduler ---- */

static int
in_flight(const struct relay_delivery *d, uint64_t id)
{
	const struct job *j;
	LIST_FOREACH(j, &d->jobs, link)
		if (j->ev.id == id)
			return 1;
	return 0;
}

static int
is_bad(const struct relay_delivery *d, uint64_t id)
{
	for (size_t i = 0; i < d->n_bad; i++)
		if (d->bad_ids[i] == id)
			return 1;
	return 0;
}

static struct job *
job_new(struct relay_delivery *d)
{
	struct job *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->d = d;
	j->client = d->client;
	d->client->users++;
	j->started_ms = relay_mono_ms();
	j->backoff = d->cfg->delivery.backoff;
	LIST_INSERT_HEAD(&d->jobs, j, link);
	d->n_jobs++;
	return j;
}

/* What to do with an event whose topic no route takes. */
static void
unrouted(struct job *j)
{
	const struct relay_source_conf *sc =
		relay_config_source(j->d->cfg, j->ev.source, strlen(j->ev.source));
	relay_metrics_add(j->d->metrics, "relay_unrouted_total", "events no route matched, by source",
	                  "source", j->ev.source, 1);
	if (sc && sc->unrouted == RELAY_UNROUTED_DROP) {
		complete(j, "dropped (no route)");
		return;
	}
	char why[600];
	snprintf(why, sizeof(why), "no route for source %s topic \"%s\"", j->ev.source,
	         j->ev.topic ? j->ev.topic : "");
	bury(j, why, NULL);
}

/* Start one event. Returns 1 if it was started (or settled), 0 if skipped. */
static int
start_event(struct relay_delivery *d, uint64_t id, int half_open)
{
	struct job *j = job_new(d);
	if (!j)
		return 0;
	int rc = relay_store_get_event(d->store, NULL, id, &j->ev);
	if (rc) {
		if (rc != -RELAY_ENOTFOUND && d->n_bad < BAD_IDS) {
			/* Once per id: it would be logged at every scan otherwise. */
			d->bad_ids[d->n_bad++] = id;
			relay_log(LOG_ERR, "cannot read event %" PRIu64 " from the store: %s", id,
			          relay_strerror(rc));
		}
		job_free(j);
		return 0;
	}
	const struct relay_route *r = relay_routes_match(d->routes, j->ev.source,
	                                                 j->ev.topic ? j->ev.topic : "");
	if (!r) {
		unrouted(j);
		return 1;
	}
	int paused = 0;
	struct suspended *s = suspended_find(d, relay_route_name(r));
	relay_store_get_paused(d->store, NULL, relay_route_name(r), &paused);
	if (paused || (s && (s->until_ms > relay_mono_ms() || half_open))) {
		job_free(j);
		return 0;
	}
	if (s)
		s->until_ms = relay_mono_ms() + s->delay_ms; /* this event is the route's probe */
	j->half_open = half_open;
	j->route = strdup(relay_route_name(r));
	j->model = strdup(relay_route_model(r));
	j->backoff = *relay_route_backoff(r);
	j->permanent_retries = relay_route_permanent_retries(r);
	j->permanent_delay_ms = relay_route_permanent_retry_delay_ms(r);
	j->lane_policy = relay_route_dead_lane(r) == RELAY_DEAD_HOLD ? RELAY_LANE_HOLD
	                                                             : RELAY_LANE_CONTINUE;
	if (!j->route || !j->model) {
		job_free(j);
		return 0;
	}
	json_error_t jerr;
	json_t *payload = json_loadb((const char *)j->ev.body, j->ev.body_len, 0, &jerr);
	char why[512] = "";
	if (!payload) {
		snprintf(why, sizeof(why), "body is not JSON: %s", jerr.text);
		permanent(j, why);
		return 1;
	}
	rc = relay_route_map(r, payload, d->cfg->odoo.module, &j->plan, why, sizeof(why));
	json_decref(payload);
	if (rc) {
		permanent(j, why[0] ? why : relay_strerror(rc));
		return 1;
	}
	j->have_plan = 1;
	j->step = STEP_LOOKUP;
	job_step(j);
	return 1;
}

static int
take_token(struct relay_delivery *d, int64_t *wait_ms)
{
	double rate = d->cfg->odoo.rate_per_s;
	if (rate <= 0)
		return 1;
	int64_t now = relay_mono_ms();
	double burst = rate < 1 ? 1 : rate;
	d->tokens += (double)(now - d->tokens_ms) * rate / 1000.0;
	if (d->tokens > burst)
		d->tokens = burst;
	d->tokens_ms = now;
	if (d->tokens >= 1) {
		d->tokens -= 1;
		return 1;
	}
	*wait_ms = (int64_t)((1 - d->tokens) * 1000.0 / rate) + 1;
	return 0;
}

static void
dispatch(struct relay_delivery *d)
{
	int64_t next_ms = POLL_MS;
	if (d->stopping || d->freeing)
		return;
	relay_store_get_paused(d->store, NULL, NULL, &d->paused);
	if (d->paused || d->circuit == CIRCUIT_OPEN || d->circuit == CIRCUIT_PROBING)
		goto out;

	/* Calls in flight are limited by the target's max_in_flight; events
	 * whose outcome is being written, by a generous multiple of it. */
	unsigned limit = d->circuit == CIRCUIT_HALF_OPEN ? 1 : d->cfg->odoo.max_in_flight;
	unsigned max_jobs = d->circuit == CIRCUIT_HALF_OPEN ? 1 : limit * JOBS_PER_CALL;
	struct relay_due due[SCAN_BATCH], after;
	int have_after = 0;
	int64_t now = relay_wall_ms();
	for (int batch = 0; batch < SCAN_MAX_BATCHES && d->n_calls < limit && d->n_jobs < max_jobs;
	     batch++) {
		size_t n = 0;
		if (relay_store_scan_due(d->store, now, have_after ? &after : NULL, due, SCAN_BATCH, &n))
			break;
		for (size_t i = 0; i < n && d->n_calls < limit && d->n_jobs < max_jobs; i++) {
			if (in_flight(d, due[i].id) || is_bad(d, due[i].id))
				continue;
			int64_t wait;
			if (!take_token(d, &wait)) {
				next_ms = wait;
				goto out;
			}
			start_event(d, due[i].id, d->circuit == CIRCUIT_HALF_OPEN);
			if (d->circuit != CIRCUIT_CLOSED && d->circuit != CIRCUIT_HALF_OPEN)
				goto out;
		}
		if (n < SCAN_BATCH)
			break;
		after = due[n - 1];
		have_after = 1;
	}
	int64_t nd;
	if (d->n_calls < limit && relay_store_next_due(d->store, &nd) == 0 && nd > now &&
	    nd - now < next_ms)
		next_ms = nd - now;
out:
	schedule_tick(d, next_ms);
}

static void
schedule_tick(struct relay_delivery *d, int64_t ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	evtimer_add(d->tick, &tv);
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	dispatch(arg);
}

void
relay_delivery_kick(struct relay_delivery *d)
{
	if (d && !d->freeing)
		event_active(d->kick, EV_TIMEOUT, 0);
}

static int
client_new(struct relay_delivery *d, const struct relay_config *cfg, struct client **out)
{
	struct client *c = calloc(1, sizeof(*c));
	if (!c)
		return ENOMEM;
	int rc = relay_odoo_new(d->base, &cfg->odoo, &c->odoo);
	if (rc) {
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int
relay_delivery_start(struct event_base *base, struct relay_store *store,
                     struct relay_writer *writer, struct relay_metrics *metrics,
                     const struct relay_config *cfg, const struct relay_routes *routes,
                     struct relay_delivery **out)
{
	if (!cfg->odoo.configured)
		return -RELAY_ECONFIG;
	struct relay_delivery *d = calloc(1, sizeof(*d));
	if (!d)
		return ENOMEM;
	d->base = base;
	d->store = store;
	d->writer = writer;
	d->metrics = metrics;
	d->cfg = cfg;
	d->routes = routes;
	d->tokens_ms = relay_mono_ms();
	d->tokens = cfg->odoo.rate_per_s < 1 ? 1 : cfg->odoo.rate_per_s;
	LIST_INIT(&d->retired);
	LIST_INIT(&d->jobs);
	LIST_INIT(&d->suspended);
	d->circuit = CIRCUIT_CLOSED;
	d->tick = evtimer_new(base, tick_cb, d);
	d->kick = event_new(base, -1, 0, tick_cb, d);
	d->probe_timer = evtimer_new(base, probe_cb, d);
	int rc = d->tick && d->kick && d->probe_timer ? client_new(d, cfg, &d->client) : ENOMEM;
	if (rc) {
		relay_delivery_free(d);
		return rc;
	}
	/* Nothing is sent before the target answered a probe. */
	d->starting = 1;
	probe_start(d);
	*out = d;
	return 0;
}

int
relay_delivery_set_config(struct relay_delivery *d, const struct relay_config *cfg,
                          const struct relay_routes *routes)
{
	struct client *c;
	int rc;

	/* Everything that can fail comes first: a refusal changes nothing, and
	 * the caller keeps (and must not free) the configuration in use. */
	if (!cfg->odoo.configured)
		return -RELAY_ECONFIG;
	/* Always a new client: the key file may have been rotated. */
	if ((rc = client_new(d, cfg, &c)) != 0)
		return rc;
	d->cfg = cfg;
	d->routes = routes;
	struct client *old = d->client;
	d->client = c;
	old->retired = 1;
	if (old->users == 0) {
		relay_odoo_free(old->odoo);
		free(old);
	} else {
		LIST_INSERT_HEAD(&d->retired, old, link);
	}
	while (!LIST_EMPTY(&d->suspended)) { /* the routes may have been fixed */
		struct suspended *s = LIST_FIRST(&d->suspended);
		struct relay_log_fields f = { .message_id = RELAY_MSGID_CIRCUIT_CLOSED,
		                              .route = s->route };
		relay_log_with(LOG_NOTICE, &f, "route %s resumed by a reload", s->route);
		LIST_REMOVE(s, link);
		free(s->route);
		free(s);
	}
	/* Check the new target (and its module prefix) before using it; a
	 * circuit that was open and closes now is logged as closed. */
	d->reopen_logged = d->circuit != CIRCUIT_CLOSED;
	evtimer_del(d->probe_timer);
	d->starting = 1;
	probe_start(d);
	relay_delivery_kick(d);
	return 0;
}

void
relay_delivery_stop_taking(struct relay_delivery *d)
{
	d->stopping = 1;
	evtimer_del(d->tick);
	evtimer_del(d->probe_timer);
}

unsigned
relay_delivery_in_flight(const struct relay_delivery *d)
{
	return d->n_jobs;
}

void
relay_delivery_status(struct relay_delivery *d, struct relay_delivery_status *st)
{
	struct relay_store_stats ss = { 0 };
	relay_store_stats(d->store, relay_wall_ms(), &ss);
	st->queued = ss.events;
	st->dead = ss.dead;
	st->in_flight = d->n_calls;
	st->circuit = circuit_names[d->circuit];
	st->circuit_since_ms = d->circuit_since_ms;
	st->paused = d->paused;
	st->delivered = d->delivered;
	st->retried = d->retried;
	st->dead_lettered = d->dead_lettered;
}

void
relay_delivery_metrics(struct relay_delivery *d, struct relay_metrics *m)
{
	struct relay_store_stats ss = { 0 };
	int64_t now = relay_wall_ms();
	relay_store_stats(d->store, now, &ss);
	relay_metrics_set(m, "relay_queue_depth", "events queued, delayed and parked ones included",
	                  NULL, NULL, (double)ss.events);
	relay_metrics_set(m, "relay_queue_due", "events due for delivery now", NULL, NULL,
	                  (double)ss.due_now);
	relay_metrics_set(m, "relay_dead_letters", "events in the dead-letter queue", NULL, NULL,
	                  (double)ss.dead);
	relay_metrics_set(m, "relay_oldest_event_age_seconds", "age of the oldest queued event",
	                  NULL, NULL, ss.oldest_received_ms ? (double)(now - ss.oldest_received_ms) / 1000.0 : 0);
	relay_metrics_set(m, "relay_in_flight", "calls to Odoo in flight", NULL, NULL, d->n_calls);
	relay_metrics_set(m, "relay_circuit_open", "1 while delivery to Odoo is paused by the circuit",
	                  NULL, NULL, d->circuit == CIRCUIT_CLOSED ? 0 : 1);
	relay_metrics_set(m, "relay_paused", "1 while delivery is paused by odoo-relayctl", NULL,
	                  NULL, d->paused);
	relay_metrics_set(m, "relay_store_used_bytes", "bytes of the store file in use", NULL, NULL,
	                  (double)ss.map_used);
	relay_metrics_set(m, "relay_store_size_bytes", "the store's map size", NULL, NULL,
	                  (double)ss.map_size);
}

void
relay_delivery_free(struct relay_delivery *d)
{
	if (!d)
		return;
	d->freeing = 1;
	/* Jobs waiting for the writer outlive the engine: their completion
	 * only frees them. */
	while (!LIST_EMPTY(&d->jobs)) {
		struct job *j = LIST_FIRST(&d->jobs);
		LIST_REMOVE(j, link);
		d->n_jobs--;
		j->d = NULL;
		j->client = NULL;
	}
	/* Freeing a client runs the callbacks of its calls (cancelled): with
	 * j->d NULL they free their jobs and write nothing. */
	while (!LIST_EMPTY(&d->retired)) {
		struct client *c = LIST_FIRST(&d->retired);
		LIST_REMOVE(c, link);
		relay_odoo_free(c->odoo);
		free(c);
	}
	if (d->client) {
		relay_odoo_free(d->client->odoo);
		free(d->client);
	}
	while (!LIST_EMPTY(&d->suspended)) {
		struct suspended *s = LIST_FIRST(&d->suspended);
		LIST_REMOVE(s, link);
		free(s->route);
		free(s);
	}
	if (d->tick)
		event_free(d->tick);
	if (d->kick)
		event_free(d->kick);
	if (d->probe_timer)
		event_free(d->probe_timer);
	free(d);
}
