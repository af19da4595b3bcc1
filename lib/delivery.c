/*
 * Delivery: the wiring of scheduler, drivers, circuits, held routes and
 * settle. See include/odoo_relay/delivery.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "odoo_relay/circuit.h"
#include "odoo_relay/classify.h"
#include "odoo_relay/clock.h"
#include "odoo_relay/confirm.h"
#include "odoo_relay/delivery.h"
#include "odoo_relay/destination.h"
#include "odoo_relay/error.h"
#include "odoo_relay/history.h"
#include "odoo_relay/log.h"
#include "odoo_relay/metrics.h"
#include "odoo_relay/route_hold.h"
#include "odoo_relay/scheduler.h"
#include "odoo_relay/settle.h"
#include "odoo_relay/store.h"
#include "odoo_relay/writer.h"
#include "odoo_relay/utf8.h"

/* Lane heads superseded at once, at most; events looked at behind one. */
#define SUPERSEDING_MAX 64
#define SUPERSEDE_LOOK 256

/* A driver instance; replaced at each reload, freed once its last user (a
 * job or a probe) is back. */
struct inst {
	const struct relay_driver_ops *ops;
	void *drv;
	unsigned users;
	int retired;
	int announced;              /* its protocol was logged */
	struct dest *dest;
	LIST_ENTRY(inst) link;
};

/* A configured destination: its circuit, its limits, its instances. */
struct dest {
	struct relay_delivery *d;
	char *name;
	char *where;                /* for logs: "odoo at http://..., database x" */
	const struct relay_destination_conf *conf; /* borrowed from d->cfg; NULL once gone */
	struct relay_sched_dest sd;
	struct relay_circuit circuit;
	struct inst *cur;
	LIST_HEAD(, inst) insts;    /* every live instance, cur included */
	struct event *probe_timer;
	unsigned probing;           /* probes in flight (an old instance's may still be) */
	int paused;                 /* odoo-relayctl pause --destination */
	int stopping;               /* a 410: paused here until the store says so */
	int gone;                   /* removed by a reload */
	LIST_ENTRY(dest) link;
};

struct relay_delivery {
	struct event_base *base;
	struct relay_store *store;
	struct relay_writer *writer;
	struct relay_metrics *metrics;
	const struct relay_config *cfg;
	const struct relay_routes *routes;
	struct relay_scheduler *sched;
	MDB_txn *rtxn; /* the read transaction of the tick running, or NULL */
	MDB_txn *parked; /* its handle between ticks (relay_store_read_park) */
	struct relay_settle *settle;
	struct relay_holds *holds;
	LIST_HEAD(, dest) dests;    /* configured ones, then gone ones until free */
	struct event *tick, *kick;
	int stopping;
	int freeing;
	int paused;                 /* every route (odoo-relayctl pause) */
	uint64_t superseding[SUPERSEDING_MAX]; /* lane heads being superseded */
	unsigned n_superseding;
};

static void probe_start(struct dest *ds);

/* ---- small helpers ---- */

static struct dest *
dest_of(const struct relay_job *j)
{
	return j->sd ? (struct dest *)((char *)j->sd - offsetof(struct dest, sd)) : NULL;
}

static struct dest *
dest_find(struct relay_delivery *d, const char *name)
{
	struct dest *ds;

	LIST_FOREACH(ds, &d->dests, link)
		if (!ds->gone && strcmp(ds->name, name) == 0)
			return ds;
	return NULL;
}

static void
inst_release(struct inst *in)
{
	if (--in->users == 0 && in->retired) {
		LIST_REMOVE(in, link);
		in->ops->destroy(in->drv);
		free(in);
	}
}

/* A gone destination is freed with its last job and probe. */
static void
dest_free(struct dest *ds)
{
	while (!LIST_EMPTY(&ds->insts)) {
		struct inst *in = LIST_FIRST(&ds->insts);
		LIST_REMOVE(in, link);
		in->ops->destroy(in->drv);
		free(in);
	}
	if (ds->probe_timer)
		event_free(ds->probe_timer);
	free(ds->name);
	free(ds->where);
	free(ds);
}

static void
dest_maybe_free(struct dest *ds)
{
	struct inst *in;

	if (!ds->gone || ds->sd.jobs || ds->probing)
		return;
	LIST_FOREACH(in, &ds->insts, link)
		if (in->users)
			return;
	relay_scheduler_detach(ds->d->sched, &ds->sd);
	LIST_REMOVE(ds, link);
	dest_free(ds);
}

/* ---- the state odoo-relayctl reads ---- */

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

/* The least healthy destination first: open, probing, half-open, closed. */
static int
sickness(enum relay_circuit_state s)
{
	switch (s) {
	case RELAY_CIRCUIT_STATE_OPEN: return 3;
	case RELAY_CIRCUIT_STATE_PROBING: return 2;
	case RELAY_CIRCUIT_STATE_HALF_OPEN: return 1;
	default: return 0;
	}
}

static const char *
protocol_of(const struct dest *ds)
{
	return ds->cur ? ds->cur->ops->protocol(ds->cur->drv) : "auto";
}

/* Leave every destination's circuit in the store, for odoo-relayctl status;
 * the top-level fields are the least healthy one's. */
static void
note_state(struct relay_delivery *d)
{
	json_t *o = json_object(), *arr = json_array();
	const struct dest *worst = NULL, *ds;
	char *text = NULL;

	if (!o || !arr)
		goto out;
	LIST_FOREACH(ds, &d->dests, link) {
		if (ds->gone)
			continue;
		if (!worst || sickness(ds->circuit.state) > sickness(worst->circuit.state))
			worst = ds;
		json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s,s:I,s:s?}", "name", ds->name,
		                                     "kind", ds->cur ? ds->cur->ops->kind : "?",
		                                     "protocol", protocol_of(ds), "circuit",
		                                     relay_circuit_state_name(ds->circuit.state),
		                                     "since_ms", (json_int_t)ds->circuit.since_ms,
		                                     "error", ds->circuit.why[0] ? ds->circuit.why
		                                                                 : NULL));
	}
	if (worst) {
		json_object_set_new(o, "circuit",
		                    json_string(relay_circuit_state_name(worst->circuit.state)));
		json_object_set_new(o, "since_ms", json_integer(worst->circuit.since_ms));
		if (worst->circuit.why[0])
			json_object_set_new(o, "error", json_string(worst->circuit.why));
	}
	json_object_set(o, "destinations", arr);
	text = json_dumps(o, JSON_COMPACT);
	if (text && relay_writer_call(d->writer, note_fn, text, note_done, text))
		free(text);
out:
	json_decref(arr);
	json_decref(o);
}

/* ---- circuits ---- */

static void
arm_probe(struct dest *ds)
{
	int64_t ms = ds->circuit.probe_delay_ms;
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	evtimer_add(ds->probe_timer, &tv);
}

/* What a change of a destination's circuit means: log it, arm the probe,
 * record it, look for work. */
static void
circuit_changed(struct dest *ds, enum relay_circuit_change ch, const struct relay_outcome *o)
{
	struct relay_delivery *d = ds->d;

	switch (ch) {
	case RELAY_CIRCUIT_SAME:
		return;
	case RELAY_CIRCUIT_OPENED: {
		struct relay_log_fields f = {
			.message_id = RELAY_MSGID_CIRCUIT_OPEN, .destination = ds->name,
			.error_class = relay_class_name(o ? (int)o->klass : RELAY_CLASS_TRANSIENT),
			.odoo_error = o ? o->error_name : NULL,
		};
		relay_log_with(o && o->klass == RELAY_CLASS_CONFIG ? LOG_ERR : LOG_WARNING, &f,
		               "delivery to %s paused (circuit open): %s", ds->where, ds->circuit.why);
		arm_probe(ds);
		break;
	}
	case RELAY_CIRCUIT_REOPENED:
		relay_log(LOG_DEBUG, "probe of %s failed: %s", ds->where, ds->circuit.why);
		arm_probe(ds);
		break;
	case RELAY_CIRCUIT_CLOSED: {
		struct relay_log_fields f = { .message_id = RELAY_MSGID_CIRCUIT_CLOSED,
		                              .destination = ds->name };
		relay_log_with(LOG_NOTICE, &f, "delivery to %s resumed (circuit closed)", ds->where);
		break;
	}
	case RELAY_CIRCUIT_HALF_OPENED:
	case RELAY_CIRCUIT_READY:
		break;
	}
	note_state(d);
	relay_delivery_kick(d);
}

static void
circuit_open(struct dest *ds, const struct relay_outcome *o, const char *why)
{
	char text[sizeof(ds->circuit.why)];

	relay_utf8_snprintf(text, sizeof(text), "%s%s%s%s%s", why, o && o->error_name ? ": " : "",
	         o && o->error_name ? o->error_name : "", o && o->message ? ": " : "",
	         o && o->message ? o->message : "");
	circuit_changed(ds, relay_circuit_open(&ds->circuit, text, relay_wall_ms()), o);
}

struct probe_ctx {
	struct dest *ds;
	struct inst *in;
};

static void
probe_done(const struct relay_outcome *o, void *arg)
{
	struct probe_ctx *p = arg;
	struct dest *ds = p->ds;
	struct inst *in = p->in;
	struct relay_delivery *d = ds->d;

	free(p);
	ds->probing--;
	inst_release(in);
	if (d->freeing)
		return;
	if (ds->gone) {
		dest_maybe_free(ds);
		return;
	}
	if (in != ds->cur) /* a reload replaced it: its own probe decides */
		return;
	if (o->klass == RELAY_CLASS_DONE) {
		if (!in->announced) {
			/* Said once per instance: which protocol it chose. */
			in->announced = 1;
			relay_log(LOG_INFO, "destination %s: %s answers, protocol %s", ds->name, ds->where,
			          protocol_of(ds));
		}
		circuit_changed(ds, relay_circuit_probe_passed(&ds->circuit, relay_wall_ms()), o);
		return;
	}
	circuit_open(ds, o, "probe failed");
}

static void
probe_start(struct dest *ds)
{
	struct probe_ctx *p = malloc(sizeof(*p));
	struct inst *in = ds->cur;
	int rc;

	if (!p) {
		circuit_open(ds, NULL, "out of memory for a probe");
		return;
	}
	p->ds = ds;
	p->in = in;
	in->users++;
	ds->probing++;
	if ((rc = in->ops->probe(in->drv, probe_done, p)) != 0) {
		ds->probing--;
		inst_release(in);
		free(p);
		circuit_open(ds, NULL, "cannot start a probe");
	}
}

static void
probe_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dest *ds = arg;

	if (!ds->d->stopping && !ds->gone && !ds->probing && relay_circuit_probe_due(&ds->circuit))
		probe_start(ds);
}

/* ---- jobs ---- */

static void
job_end(struct relay_job *j, void *arg)
{
	struct relay_delivery *d = arg;
	struct dest *ds = dest_of(j);
	struct inst *in = j->owner;

	relay_scheduler_job_done(d->sched, j);
	if (in)
		inst_release(in);
	if (ds)
		dest_maybe_free(ds);
	if (!d->freeing)
		relay_delivery_kick(d);
}

static void
route_held(struct relay_delivery *d, struct relay_job *j, const struct relay_outcome *o)
{
	struct dest *ds = dest_of(j);
	int64_t base = ds ? ds->circuit.conf.probe_base_ms : d->cfg->delivery.probe_base_ms;
	int64_t cap = ds ? ds->circuit.conf.probe_cap_ms : d->cfg->delivery.probe_cap_ms;

	if (relay_hold(d->holds, j->route, relay_mono_ms(), base, cap) == 1) {
		struct relay_log_fields f = {
			.message_id = RELAY_MSGID_CIRCUIT_OPEN, .event_id = j->ev.id,
			.source = j->ev.source, .route = j->route, .destination = j->dest,
			.error_class = "configuration", .odoo_error = o->error_name,
		};
		relay_log_with(LOG_ERR, &f, "route %s suspended: %s refused its mapping: %s", j->route,
		               j->dest, o->message ? o->message : o->error_name);
	}
}

static void
route_works(struct relay_delivery *d, const char *route)
{
	if (route && relay_hold_release(d->holds, route)) {
		struct relay_log_fields f = { .message_id = RELAY_MSGID_CIRCUIT_CLOSED, .route = route };
		relay_log_with(LOG_NOTICE, &f, "route %s resumed", route);
	}
}

/* ---- a destination that asks to be stopped (HTTP 410) ---- */

struct stop {
	struct relay_delivery *d;
	char *name;
	char key[160], note[160];
	char *why;
};

static int
stop_fn(void *fn_arg, struct relay_store *st, MDB_txn *txn, struct relay_write_result *r)
{
	struct stop *sp = fn_arg;
	int rc = relay_store_set_paused(st, txn, sp->key, 1);

	return rc ? rc : relay_store_note_put(st, txn, sp->note, sp->why);
}

static void
stop_done(void *arg, int rc, const struct relay_write_result *r)
{
	struct stop *sp = arg;
	struct dest *ds;

	LIST_FOREACH(ds, &sp->d->dests, link)
		if (strcmp(ds->name, sp->name) == 0)
			break;
	if (rc) {
		/* it stays stopped in memory, until a restart (which meets the
		 * 410 again) */
		relay_log(LOG_ERR, "cannot record the pause of destination %s: %s", sp->name,
		          relay_strerror(rc));
	} else if (ds) {
		ds->stopping = 0; /* the store holds the pause: resume clears it */
	}
	if (ds && !sp->d->freeing)
		note_state(sp->d);
	free(sp->name);
	free(sp->why);
	free(sp);
}

/* Pause ds durably, with the reason, until an operator resumes it (the
 * pause of odoo-relayctl pause --destination). */
static void
dest_stop(struct dest *ds, const struct relay_outcome *o)
{
	struct relay_delivery *d = ds->d;
	struct stop *sp;
	char when[40];
	time_t now = (time_t)(relay_wall_ms() / 1000);
	struct tm tm;

	if (ds->stopping)
		return;
	ds->stopping = 1;
	ds->paused = 1;
	ds->sd.slots = 0;
	{
		struct relay_log_fields f = {
			.message_id = RELAY_MSGID_CIRCUIT_OPEN, .destination = ds->name,
			.error_class = "configuration", .odoo_error = o->error_name,
		};
		relay_log_with(LOG_ERR, &f, "delivery to %s stopped: %s; resume it with "
		               "odoo-relayctl resume --destination %s", ds->where ? ds->where : ds->name,
		               o->message ? o->message : o->error_name ? o->error_name : "stop",
		               ds->name);
	}
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!(sp = calloc(1, sizeof(*sp))) || !(sp->name = strdup(ds->name)) ||
	    asprintf(&sp->why, "%s (%s)", o->message ? o->message : "stopped by the endpoint",
	             when) < 0) {
		if (sp)
			sp->why = NULL;
		goto fail;
	}
	sp->d = d;
	snprintf(sp->key, sizeof(sp->key), "@%s", ds->name);
	snprintf(sp->note, sizeof(sp->note), "%s%s", RELAY_PAUSE_NOTE, ds->name);
	if (relay_writer_call(d->writer, stop_fn, sp, stop_done, sp) == 0) {
		note_state(d);
		return;
	}
fail:
	relay_log(LOG_ERR, "cannot record the pause of destination %s", ds->name);
	if (sp) {
		free(sp->name);
		free(sp->why);
		free(sp);
	}
	note_state(d);
}

/* A driver's answer for one job. Circuits hear of each answer of the
 * destination once (info->first), however many jobs its call carried,
 * except transient failures: those count per event. */
static void
sent(struct relay_job *j, const struct relay_outcome *o, const char *request, const char *how,
     const struct relay_sent_info *info, void *arg)
{
	struct relay_delivery *d = arg;
	struct dest *ds = dest_of(j);
	int64_t now = relay_wall_ms();

	j->batch_id = info->batch_id;
	j->batch_size = info->batch_size;
	j->batch_row = info->row;
	j->answer_http_status = (int)o->http_status;
	/* A transient failure counts for each event it hit (the circuit counts
	 * distinct events); anything else once per answer. */
	if (!info->first && o->klass != RELAY_CLASS_TRANSIENT)
		ds = NULL;

	/* The call's slot is free now; the outcome is written while other calls
	 * go on, so that one fsync covers many outcomes. */
	relay_scheduler_call_done(d->sched, j);
	if (d->freeing) {
		job_end(j, d);
		return;
	}
	relay_delivery_kick(d);
	if (o->unknown) {
		struct relay_log_fields f = { .event_id = j->ev.id, .route = j->route,
		                              .destination = j->dest, .odoo_error = o->error_name };
		relay_log_with(LOG_WARNING, &f, "unrecognised failure from %s for event %" PRIu64
		               ": %s: %s", j->dest, j->ev.id, o->error_name ? o->error_name : "?",
		               o->message ? o->message : "");
	}
	switch (o->klass) {
	case RELAY_CLASS_DONE:
		if (ds && !ds->gone)
			circuit_changed(ds, relay_circuit_answered(&ds->circuit, now), o);
		route_works(d, j->route);
		relay_settle_done(d->settle, j, how ? how : "delivered");
		return;
	case RELAY_CLASS_CONFIG:
		/* Says nothing about the event: charge nothing, leave it queued. */
		if (o->scope == RELAY_SCOPE_STOP) {
			if (ds && !ds->gone)
				dest_stop(ds, o);
		} else if (o->scope == RELAY_SCOPE_ROUTE && j->route)
			route_held(d, j, o);
		else if (ds && !ds->gone)
			circuit_open(ds, o, "the destination refused our configuration");
		relay_settle_release(d->settle, j);
		return;
	case RELAY_CLASS_TRANSIENT:
		if (o->transport == RELAY_TRANSPORT_CANCELLED) {
			relay_settle_release(d->settle, j);
			return;
		}
		if (o->transport == RELAY_TRANSPORT_CONNECT) {
			/* Not there at all: not the event's fault. */
			if (ds && !ds->gone)
				circuit_open(ds, o, "cannot connect");
			relay_settle_release(d->settle, j);
			return;
		}
		if (ds && !ds->gone) {
			char why[sizeof(ds->circuit.why)];
			relay_utf8_snprintf(why, sizeof(why), "repeated transient failures: %s%s%s",
			         o->error_name ? o->error_name : "error", o->message ? ": " : "",
			         o->message ? o->message : "");
			circuit_changed(ds, relay_circuit_transient(&ds->circuit, j->ev.id, why, now), o);
		}
		relay_settle_failed(d->settle, j, o, request);
		return;
	case RELAY_CLASS_PERMANENT:
	default:
		if (ds && !ds->gone)
			circuit_changed(ds, relay_circuit_answered(&ds->circuit, now), o);
		relay_settle_failed(d->settle, j, o, request);
		return;
	}
}

/* What to do with an event whose topic no route takes. */
static void
unrouted(struct relay_delivery *d, struct relay_job *j)
{
	const struct relay_source_conf *sc =
		relay_config_source(d->cfg, j->ev.source, strlen(j->ev.source));
	char why[600];

	relay_metrics_add(d->metrics, "relay_unrouted_total", "events no route matched, by source",
	                  "source", j->ev.source, 1);
	if (sc && sc->unrouted == RELAY_UNROUTED_DROP) {
		relay_settle_dropped(d->settle, j, "dropped (no route)");
		return;
	}
	relay_utf8_snprintf(why, sizeof(why), "no route for source %s topic \"%s\"", j->ev.source,
	         j->ev.topic ? j->ev.topic : "");
	relay_settle_dead(d->settle, j, why);
}

/* ---- supersession ---- */

/* Older events of a lane that a newer one of the same route supersedes:
 * ids[0..n-1] (the head first) end, ids[n] is the newest. */
struct supersede {
	struct relay_delivery *d;
	char *source, *lane, *route, *dest;
	uint64_t ids[SUPERSEDE_LOOK];
	size_t n;
	int applied;
	int64_t retention_ms;
	int keep_body;
	int dedup_digest;
};

static void
supersede_free(struct supersede *sp)
{
	free(sp->source);
	free(sp->lane);
	free(sp->route);
	free(sp->dest);
	free(sp);
}

/* On the writer thread: if the lane still starts with those events, they
 * end (each completed in turn, which makes the next the head) and the
 * newest is the head, due now. */
static int
supersede_fn(void *fn_arg, struct relay_store *st, MDB_txn *txn, struct relay_write_result *r)
{
	struct supersede *sp = fn_arg;
	uint64_t now[SUPERSEDE_LOOK];
	size_t m = 0;
	int rc;

	sp->applied = 0;
	if ((rc = relay_store_lane_ids(st, txn, sp->source, sp->lane, now, sp->n + 1, &m)))
		return rc;
	if (m != sp->n + 1 || memcmp(now, sp->ids, (sp->n + 1) * sizeof(*now)) != 0)
		return 0; /* the lane changed meanwhile: leave it */
	for (size_t i = 0; i < sp->n; i++) {
		char note[64];
		struct relay_hist_settle hs = {
			.outcome = RELAY_HIST_SUPERSEDED, .destination = sp->dest, .batch_row = -1,
			.note = note, .retention_ms = sp->retention_ms, .keep_body = sp->keep_body,
			.dedup_digest = sp->dedup_digest,
		};

		snprintf(note, sizeof(note), "superseded by event %" PRIu64, sp->ids[sp->n]);
		if ((rc = relay_history_complete(st, txn, sp->ids[i], &hs, relay_wall_ms(), NULL)))
			return rc;
	}
	sp->applied = 1;
	return 0;
}

static void
supersede_done(void *arg, int rc, const struct relay_write_result *r)
{
	struct supersede *sp = arg;
	struct relay_delivery *d = sp->d;

	for (unsigned i = 0; i < d->n_superseding; i++)
		if (d->superseding[i] == sp->ids[0]) {
			d->superseding[i] = d->superseding[--d->n_superseding];
			break;
		}
	if (rc) {
		relay_log(LOG_WARNING, "cannot supersede events of lane %s: %s", sp->lane,
		          relay_strerror(rc));
	} else if (sp->applied) {
		for (size_t i = 0; i < sp->n; i++) {
			struct relay_log_fields f = { .event_id = sp->ids[i], .source = sp->source,
			                              .route = sp->route, .destination = sp->dest,
			                              .lane = sp->lane };
			relay_log_with(LOG_INFO, &f, "event %" PRIu64 " superseded by event %" PRIu64,
			               sp->ids[i], sp->ids[sp->n]);
		}
		relay_metrics_add2(d->metrics, "relay_superseded_total",
		                   "events not sent because a newer one of their lane and route "
		                   "was, by route", "route", sp->route, "destination", sp->dest,
		                   (double)sp->n);
	}
	supersede_free(sp);
	if (!d->freeing)
		relay_delivery_kick(d);
}

/* Whether j, a due lane head of a route with "supersede", waits while older
 * events of its lane are superseded: 1, or 0 to send it as it is. */
static int
supersede(struct relay_delivery *d, struct relay_job *j, const struct relay_route *r)
{
	struct supersede *sp;
	size_t n = 0, k = 0;

	for (unsigned i = 0; i < d->n_superseding; i++)
		if (d->superseding[i] == j->ev.id)
			return 1;
	if (d->n_superseding == SUPERSEDING_MAX || !(sp = calloc(1, sizeof(*sp))))
		return 0;
	if (relay_store_lane_ids(d->store, NULL, j->ev.source, j->ev.lane, sp->ids, SUPERSEDE_LOOK,
	                         &n) || n < 2 || sp->ids[0] != j->ev.id)
		goto no;
	/* the run of the same route's events right behind the head */
	for (size_t i = 1; i < n; i++) {
		struct relay_event ev;
		int same;

		if (relay_store_get_event(d->store, NULL, sp->ids[i], &ev))
			break;
		same = relay_routes_match(d->routes, ev.source, ev.topic ? ev.topic : "") == r;
		relay_event_clear(&ev);
		if (!same)
			break;
		k = i;
	}
	if (k == 0)
		goto no;
	sp->d = d;
	sp->n = k;
	sp->retention_ms = j->hist_retention_ms;
	sp->keep_body = j->hist_keep_body;
	sp->dedup_digest = j->hist_dedup_digest;
	if (!(sp->source = strdup(j->ev.source)) || !(sp->lane = strdup(j->ev.lane)) ||
	    !(sp->route = strdup(j->route)) || !(sp->dest = strdup(j->dest)))
		goto no;
	if (relay_writer_call(d->writer, supersede_fn, sp, supersede_done, sp))
		goto no;
	d->superseding[d->n_superseding++] = j->ev.id;
	return 1;
no:
	supersede_free(sp);
	return 0;
}

/* What the history keeps of the job's event when it leaves the queue. */
static void
history_conf(struct relay_delivery *d, struct relay_job *j)
{
	const struct relay_source_conf *sc =
		relay_config_source(d->cfg, j->ev.source, strlen(j->ev.source));

	j->hist_retention_ms = d->cfg->delivery.retention_s * 1000;
	j->hist_keep_body = sc ? sc->retain_body : 1;
	j->hist_dedup_digest = sc && sc->kind == RELAY_SOURCE_ODOO;
}

static enum relay_sched_verdict
resolve(void *arg, struct relay_job *j)
{
	struct relay_delivery *d = arg;
	const struct relay_route *r = relay_routes_match(d->routes, j->ev.source,
	                                                 j->ev.topic ? j->ev.topic : "");
	const char *dname;
	struct dest *ds;
	int paused = 0;

	history_conf(d, j);
	if (!r)
		return RELAY_SCHED_START; /* sd NULL: unrouted */
	if (relay_store_get_paused(d->store, d->rtxn, relay_route_name(r), &paused) == 0 && paused)
		return RELAY_SCHED_SKIP;
	if (!(dname = relay_route_destination(r)) || !(ds = dest_find(d, dname)))
		return RELAY_SCHED_SKIP; /* stored, not delivered, until a destination exists */
	/* A paused destination or an open circuit: the scheduler finds no room
	 * (sd.slots is 0) and remembers it, so a backlog is not read again. */
	j->half_open = ds->circuit.state == RELAY_CIRCUIT_STATE_HALF_OPEN;
	if (relay_hold_check(d->holds, relay_route_name(r), relay_mono_ms(), j->half_open) ==
	    RELAY_HOLD_WAIT)
		return RELAY_SCHED_SKIP;
	j->sd = &ds->sd;
	j->route = strdup(relay_route_name(r));
	j->dest = strdup(ds->name);
	j->model = strdup(relay_route_model(r));
	j->backoff = *relay_route_backoff(r);
	j->permanent_retries = relay_route_permanent_retries(r);
	j->permanent_delay_ms = relay_route_permanent_retry_delay_ms(r);
	j->lane_policy = relay_route_dead_lane(r);
	relay_route_batch(r, &j->batch_max, &j->batch_wait_ms);
	if (j->half_open || j->batch_max > ds->cur->ops->max_batch)
		j->batch_max = j->half_open ? 1 : ds->cur->ops->max_batch;
	if (j->batch_max > ds->sd.max_batch)
		ds->sd.max_batch = j->batch_max;
	if (!j->route || !j->dest || !j->model) {
		j->sd = NULL;
		return RELAY_SCHED_SKIP;
	}
	if (relay_route_supersede(r) && j->ev.lane && *j->ev.lane && supersede(d, j, r)) {
		j->sd = NULL;
		return RELAY_SCHED_SKIP; /* its lane's newest event goes instead */
	}
	return RELAY_SCHED_START;
}

/* ---- the stale guard ---- */

/*
 * For a route with "version": learn each job's external-ID name and version
 * (kept on the job for settle to record at completion), and end as stale
 * every job whose version is older than the one applied last to its record.
 * The others stay in jobs[], in order; returns how many. A job whose
 * version cannot be read goes on unguarded: its mapping fails it, with the
 * same text, in the driver.
 */
static size_t
stale_drop(struct relay_delivery *d, const struct relay_route *r, struct relay_job **jobs,
           size_t n)
{
	int64_t window_s, now = relay_wall_ms();
	enum relay_version_kind kind = relay_route_version(r, NULL, &window_s);
	size_t keep = 0;

	for (size_t i = 0; i < n; i++) {
		struct relay_job *j = jobs[i];
		struct relay_version_entry e;
		json_t *payload = json_loadb((const char *)j->ev.body, j->ev.body_len, 0, NULL);
		char why[256];
		int rc = payload ? relay_route_version_key(r, payload, &j->version_name, &j->version,
		                                           NULL, 0)
		                 : -RELAY_EINVAL;

		json_decref(payload);
		if (rc == 0) {
			j->version_kind = (int)kind;
			j->version_window_ms = window_s * 1000;
			rc = relay_store_version_get(d->store, NULL, j->route, j->version_name, &e);
		}
		if (rc == 0 && e.kind == (int)kind && e.expiry_ms > now && e.version > j->version) {
			snprintf(why, sizeof(why), "its version is older than the one applied %" PRId64
			         " s ago", (now - e.applied_ms) / 1000);
			relay_scheduler_call_done(d->sched, j);
			relay_settle_stale(d->settle, j, why);
			continue;
		}
		if (rc && rc != -RELAY_ENOTFOUND && j->version_name) {
			/* The table cannot be read: send unguarded rather than hold the
			 * route (the event is applied as it would be without "version"). */
			struct relay_log_fields f = { .event_id = j->ev.id, .route = j->route };
			relay_log_with(LOG_WARNING, &f, "cannot read the version of %s: %s",
			               j->version_name, relay_strerror(rc));
		}
		jobs[keep++] = j;
	}
	return keep;
}

static void send_call(struct relay_delivery *d, struct dest *ds, const struct relay_route *r,
                      struct relay_job **jobs, size_t n);

/* ---- confirm: the record read from Odoo just before delivery ---- */

/* A read on its way for one job. */
struct confirm {
	struct relay_delivery *d;
	struct relay_job *j;
	struct inst *in;            /* the Odoo destination's instance read */
	int64_t id;
	char *model;
};

/* The confirm could not tell: a failure charged to the event (retried with
 * its route's backoff, so an Odoo outage never makes a phantom). */
static void
confirm_failed(struct relay_delivery *d, struct relay_job *j, const struct relay_outcome *given,
               enum relay_class klass, const char *name, const char *why, const char *request)
{
	struct relay_outcome o = { 0 };

	if (!given) {
		if (relay_outcome_set(&o, klass, RELAY_SCOPE_NONE, name, why, NULL))
			o.klass = klass;
		given = &o;
	}
	relay_scheduler_call_done(d->sched, j);
	relay_settle_failed(d->settle, j, given, request);
	relay_outcome_clear(&o);
	relay_delivery_kick(d);
}

static void
confirmed(const struct relay_outcome *o, const char *request, const json_t *records, void *arg)
{
	struct confirm *cf = arg;
	struct relay_delivery *d = cf->d;
	struct relay_job *j = cf->j;
	struct dest *cds = cf->in->dest, *ds = dest_of(j);
	const struct relay_route *r;
	char why[600], *body = NULL;
	size_t len = 0;
	int rc;

	inst_release(cf->in);
	if (d->freeing || (o->klass == RELAY_CLASS_TRANSIENT &&
	                   o->transport == RELAY_TRANSPORT_CANCELLED)) {
		relay_scheduler_call_done(d->sched, j);
		if (d->freeing)
			job_end(j, d);
		else
			relay_settle_release(d->settle, j);
		goto out;
	}
	if (o->klass == RELAY_CLASS_DONE) {
		if (cds && !cds->gone)
			circuit_changed(cds, relay_circuit_answered(&cds->circuit, relay_wall_ms()), o);
		rc = relay_confirm_apply(j->ev.body, j->ev.body_len, cf->id, records, &body, &len, why,
		                         sizeof(why));
	} else if (o->klass == RELAY_CLASS_PERMANENT && o->error_name &&
	           strstr(o->error_name, "MissingError")) {
		rc = RELAY_CONFIRM_GONE; /* how some servers say that it does not exist */
	} else {
		/* Odoo down, slow, or refusing us: not the record's fault. The
		 * Odoo destination's circuit hears of it as a call of its own. */
		if (cds && !cds->gone) {
			if (o->klass == RELAY_CLASS_CONFIG && o->scope != RELAY_SCOPE_ROUTE)
				circuit_open(cds, o, "the destination refused our configuration");
			else if (o->transport == RELAY_TRANSPORT_CONNECT)
				circuit_open(cds, o, "cannot connect");
		}
		confirm_failed(d, j, o, o->klass, NULL, NULL, request);
		goto out;
	}
	if (rc == RELAY_CONFIRM_GONE) {
		snprintf(why, sizeof(why), "%s %" PRId64 " does not exist in %s (any more)", cf->model,
		         cf->id, cds ? cds->name : "odoo");
		relay_scheduler_call_done(d->sched, j);
		relay_settle_phantom(d->settle, j, why);
		relay_delivery_kick(d);
		goto out;
	}
	if (rc != RELAY_CONFIRM_FOUND) {
		confirm_failed(d, j, NULL, rc == ENOMEM ? RELAY_CLASS_TRANSIENT : RELAY_CLASS_PERMANENT,
		               "confirm.answer", rc == ENOMEM ? relay_strerror(rc) : why, request);
		goto out;
	}
	free(j->send_body);
	j->send_body = body;
	j->send_body_len = len;
	r = relay_routes_find(d->routes, j->route);
	if (!ds || ds->gone || !ds->cur || !r) {
		/* its destination went with a reload while Odoo answered */
		relay_scheduler_call_done(d->sched, j);
		relay_settle_release(d->settle, j);
		goto out;
	}
	send_call(d, ds, r, &j, 1);
out:
	free(cf->model);
	free(cf);
	/* the read may have been the last user of a destination a reload
	 * removed */
	if (cds && cds->gone && !d->freeing)
		dest_maybe_free(cds);
}

/* Read j's record from the route's Odoo destination; confirmed() goes on. */
static void
confirm_start(struct relay_delivery *d, const struct relay_route *r, struct relay_job *j)
{
	const json_t *rf = NULL;
	const char *cname = relay_route_confirm(r, &rf);
	struct dest *cds = dest_find(d, cname);
	struct confirm *cf = NULL;
	json_t *fields = NULL, *ids = NULL;
	char why[300];
	int rc;

	if (!(cf = calloc(1, sizeof(*cf)))) {
		confirm_failed(d, j, NULL, RELAY_CLASS_TRANSIENT, "confirm", "out of memory", NULL);
		return;
	}
	rc = relay_confirm_target(j->ev.body, j->ev.body_len, rf, &cf->model, &cf->id, &fields, why,
	                          sizeof(why));
	if (rc) {
		confirm_failed(d, j, NULL, rc == ENOMEM ? RELAY_CLASS_TRANSIENT : RELAY_CLASS_PERMANENT,
		               "confirm.event", rc == ENOMEM ? relay_strerror(rc) : why, NULL);
		goto fail;
	}
	if (!cds || !cds->cur || !cds->cur->ops->read) {
		snprintf(why, sizeof(why), "cannot confirm: no destination %s that reads Odoo", cname);
		confirm_failed(d, j, NULL, RELAY_CLASS_TRANSIENT, "confirm.destination", why, NULL);
		goto fail;
	}
	if (cds->circuit.state == RELAY_CIRCUIT_STATE_OPEN ||
	    cds->circuit.state == RELAY_CIRCUIT_STATE_PROBING) {
		snprintf(why, sizeof(why), "cannot confirm: delivery to %s is paused (circuit open)",
		         cds->name);
		confirm_failed(d, j, NULL, RELAY_CLASS_TRANSIENT, "confirm.circuit_open", why, NULL);
		goto fail;
	}
	cf->d = d;
	cf->j = j;
	cf->in = cds->cur;
	cf->in->users++;
	rc = (ids = json_pack("[I]", (json_int_t)cf->id)) ?
	     cf->in->ops->read(cf->in->drv, cf->model, ids, fields, confirmed, cf) : ENOMEM;
	json_decref(ids);
	json_decref(fields);
	if (rc == 0)
		return;
	inst_release(cf->in);
	confirm_failed(d, j, NULL, RELAY_CLASS_TRANSIENT, "confirm", relay_strerror(rc), NULL);
	fields = NULL;
fail:
	json_decref(fields);
	free(cf->model);
	free(cf);
}

/* One call's jobs (one job, or a batch of one route's). */
static void
start(void *arg, struct relay_job **jobs, size_t n)
{
	struct relay_delivery *d = arg;
	struct dest *ds = dest_of(jobs[0]);
	const struct relay_route *r;

	if (!ds) {
		for (size_t i = 0; i < n; i++)
			unrouted(d, jobs[i]);
		return;
	}
	r = relay_routes_find(d->routes, jobs[0]->route);
	if (ds->gone || !ds->cur || !r) {
		/* Gone while the batch gathered (a reload): it waits in the store. */
		for (size_t i = 0; i < n; i++) {
			relay_scheduler_call_done(d->sched, jobs[i]);
			relay_settle_release(d->settle, jobs[i]);
		}
		return;
	}
	if (relay_route_version(r, NULL, NULL) != RELAY_VERSION_NONE &&
	    (n = stale_drop(d, r, jobs, n)) == 0)
		return;
	if (relay_route_confirm(r, NULL)) {
		/* read the record first; the send follows from confirmed() */
		for (size_t i = 0; i < n; i++)
			confirm_start(d, r, jobs[i]);
		return;
	}
	send_call(d, ds, r, jobs, n);
}

/* Hand one call's jobs to ds's driver. */
static void
send_call(struct relay_delivery *d, struct dest *ds, const struct relay_route *r,
          struct relay_job **jobs, size_t n)
{
	struct inst *in;
	int rc;

	in = ds->cur;
	in->users += (unsigned)n;
	for (size_t i = 0; i < n; i++)
		jobs[i]->owner = in;
	rc = in->ops->send(in->drv, jobs, n, r, sent, d);
	if (rc) {
		struct relay_outcome o = { 0 };
		struct relay_sent_info info = { .batch_size = (unsigned)n, .row = -1, .first = 1 };

		relay_outcome_set(&o, RELAY_CLASS_TRANSIENT, RELAY_SCOPE_NONE, "relay.call",
		                  relay_strerror(rc), NULL);
		for (size_t i = 0; i < n; i++) {
			sent(jobs[i], &o, NULL, NULL, &info, d);
			info.first = 0;
		}
		relay_outcome_clear(&o);
	}
}

/* ---- the loop ---- */

static void
schedule_tick(struct relay_delivery *d, int64_t ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	evtimer_add(d->tick, &tv);
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay_delivery *d = arg;
	struct dest *ds;
	char key[80];
	int64_t next;

	if (d->stopping || d->freeing)
		return;
	/* One read transaction for the tick: the pause flags here, and the
	 * scheduler's pass with what resolve reads (d->rtxn). NULL if it
	 * cannot begin: each read then takes one of its own. */
	d->rtxn = relay_store_read_renew(d->store, &d->parked) == 0 ? d->parked : NULL;
	relay_store_get_paused(d->store, d->rtxn, NULL, &d->paused);
	/* What each destination may take now: its circuit, its pause. */
	LIST_FOREACH(ds, &d->dests, link) {
		if (ds->gone) {
			ds->sd.slots = 0;
			continue;
		}
		snprintf(key, sizeof(key), "@%s", ds->name);
		ds->paused = 0;
		relay_store_get_paused(d->store, d->rtxn, key, &ds->paused);
		ds->paused |= ds->stopping;
		ds->sd.slots = ds->paused ? 0 : relay_circuit_slots(&ds->circuit, ds->sd.max_calls);
	}
	next = relay_scheduler_dispatch(d->sched, d->rtxn, relay_wall_ms(), relay_mono_ms());
	relay_store_read_park(d->rtxn);
	d->rtxn = NULL;
	schedule_tick(d, next);
}

void
relay_delivery_kick(struct relay_delivery *d)
{
	if (!d->stopping && !d->freeing)
		event_active(d->kick, EV_TIMEOUT, 0);
}

/* ---- destinations from the configuration ---- */

static int
inst_new(struct relay_delivery *d, const struct relay_destination_conf *conf, struct inst **out)
{
	const struct relay_driver_ops *ops = relay_driver_for(conf->kind);
	struct inst *in;
	int rc;

	if (!ops)
		return -RELAY_EINVAL;
	if (!(in = calloc(1, sizeof(*in))))
		return ENOMEM;
	in->ops = ops;
	if ((rc = ops->create(d->base, conf, &in->drv)) != 0) {
		free(in);
		return rc;
	}
	*out = in;
	return 0;
}

static void
dest_configure(struct dest *ds, const struct relay_destination_conf *conf)
{
	free(ds->where);
	ds->where = NULL;
	if (conf->kind == RELAY_DEST_HTTP) {
		if (asprintf(&ds->where, "%s (http at %s)", conf->name,
		             conf->http.url ? conf->http.url : "?") < 0)
			ds->where = NULL;
		ds->conf = conf;
		ds->sd.max_calls = conf->http.max_in_flight ? conf->http.max_in_flight : 1;
		ds->sd.rate_per_s = conf->http.rate_per_s;
		return;
	}
	if (asprintf(&ds->where, "%s (odoo at %s, database %s)", conf->name,
	             conf->odoo.url ? conf->odoo.url : "?",
	             conf->odoo.database ? conf->odoo.database : "?") < 0)
		ds->where = NULL;
	ds->conf = conf;
	ds->sd.max_calls = conf->odoo.max_in_flight ? conf->odoo.max_in_flight : 1;
	ds->sd.rate_per_s = conf->odoo.rate_per_s;
}

static struct relay_circuit_conf
circuit_conf_of(const struct relay_destination_conf *conf)
{
	return (struct relay_circuit_conf){ .failures = conf->circuit_failures,
	                                    .probe_base_ms = conf->probe_base_ms,
	                                    .probe_cap_ms = conf->probe_cap_ms };
}

static struct dest *
dest_new(struct relay_delivery *d, const struct relay_destination_conf *conf, struct inst *in)
{
	struct dest *ds = calloc(1, sizeof(*ds));
	struct relay_circuit_conf cc = circuit_conf_of(conf);

	if (!ds || !(ds->name = strdup(conf->name)) ||
	    !(ds->probe_timer = evtimer_new(d->base, probe_timer_cb, ds))) {
		if (ds)
			free(ds->name);
		free(ds);
		return NULL;
	}
	ds->d = d;
	LIST_INIT(&ds->insts);
	dest_configure(ds, conf);
	relay_circuit_init(&ds->circuit, &cc, relay_wall_ms());
	in->dest = ds;
	ds->cur = in;
	LIST_INSERT_HEAD(&ds->insts, in, link);
	return ds;
}

/* The new instances, one per destination of cfg, in cfg's order; all or
 * none. */
static int
insts_new(struct relay_delivery *d, const struct relay_config *cfg, struct inst ***out)
{
	struct inst **ins;
	int rc = 0;

	if (cfg->n_destinations == 0 || cfg->n_destinations > RELAY_DELIVERY_MAX_DEST)
		return -RELAY_ECONFIG;
	if (!(ins = calloc(cfg->n_destinations, sizeof(*ins))))
		return ENOMEM;
	for (size_t i = 0; i < cfg->n_destinations && rc == 0; i++)
		rc = inst_new(d, &cfg->destinations[i], &ins[i]);
	if (rc) {
		for (size_t i = 0; i < cfg->n_destinations; i++)
			if (ins[i]) {
				ins[i]->ops->destroy(ins[i]->drv);
				free(ins[i]);
			}
		free(ins);
		return rc;
	}
	*out = ins;
	return 0;
}

static void
retire(struct inst *in)
{
	in->retired = 1;
	if (in->users == 0) {
		LIST_REMOVE(in, link);
		in->ops->destroy(in->drv);
		free(in);
	}
}

static void
resumed_by_reload(const char *route, void *arg)
{
	struct relay_log_fields f = { .message_id = RELAY_MSGID_CIRCUIT_CLOSED, .route = route };

	relay_log_with(LOG_NOTICE, &f, "route %s resumed by a reload", route);
}

/* Swap in cfg's destinations with their new instances ins (taken over). */
static int
apply(struct relay_delivery *d, const struct relay_config *cfg, struct inst **ins)
{
	struct dest *ds, *nds;
	struct dest **made = calloc(cfg->n_destinations, sizeof(*made));
	size_t i;

	if (!made)
		return ENOMEM;
	/* Everything that can fail first: the new destinations' structs. */
	for (i = 0; i < cfg->n_destinations; i++) {
		if (dest_find(d, cfg->destinations[i].name))
			continue;
		if (!(made[i] = dest_new(d, &cfg->destinations[i], ins[i]))) {
			while (i-- > 0)
				if (made[i]) {
					made[i]->cur = NULL;
					LIST_INIT(&made[i]->insts);
					dest_free(made[i]);
				}
			free(made);
			return ENOMEM;
		}
	}
	/* Destinations that are gone take no new events. */
	LIST_FOREACH(ds, &d->dests, link) {
		int kept = 0;

		for (i = 0; i < cfg->n_destinations && !kept; i++)
			kept = !ds->gone && strcmp(ds->name, cfg->destinations[i].name) == 0;
		if (!kept && !ds->gone) {
			relay_log(LOG_NOTICE, "destination %s removed by a reload: it takes no new "
			          "events", ds->name);
			ds->gone = 1;
			ds->conf = NULL;
			evtimer_del(ds->probe_timer);
			retire(ds->cur);
			ds->cur = NULL;
		}
	}
	for (i = 0; i < cfg->n_destinations; i++) {
		const struct relay_destination_conf *conf = &cfg->destinations[i];
		struct relay_circuit_conf cc = circuit_conf_of(conf);

		if (made[i]) {
			LIST_INSERT_HEAD(&d->dests, made[i], link);
			relay_scheduler_attach(d->sched, &made[i]->sd);
			probe_start(made[i]);
			continue;
		}
		ds = dest_find(d, conf->name);
		dest_configure(ds, conf);
		ins[i]->dest = ds;
		LIST_INSERT_HEAD(&ds->insts, ins[i], link);
		retire(ds->cur);
		ds->cur = ins[i];
		relay_circuit_reload(&ds->circuit, &cc, relay_wall_ms());
		evtimer_del(ds->probe_timer);
		probe_start(ds);
	}
	free(made);
	for (ds = LIST_FIRST(&d->dests); ds; ds = nds) {
		nds = LIST_NEXT(ds, link);
		dest_maybe_free(ds);
	}
	relay_scheduler_forget(d->sched);
	note_state(d);
	return 0;
}

int
relay_delivery_start(struct event_base *base, struct relay_store *store,
                     struct relay_writer *writer, struct relay_metrics *metrics,
                     const struct relay_config *cfg, const struct relay_routes *routes,
                     struct relay_delivery **out)
{
	struct relay_delivery *d = calloc(1, sizeof(*d));
	struct inst **ins = NULL;
	int rc;

	if (!d)
		return ENOMEM;
	d->base = base;
	d->store = store;
	d->writer = writer;
	d->metrics = metrics;
	d->cfg = cfg;
	d->routes = routes;
	LIST_INIT(&d->dests);
	d->tick = evtimer_new(base, tick_cb, d);
	d->kick = event_new(base, -1, 0, tick_cb, d);
	d->holds = relay_holds_new();
	if (!d->tick || !d->kick || !d->holds ||
	    relay_scheduler_new(store, resolve, start, d, &d->sched) ||
	    relay_settle_new(writer, metrics, job_end, d, &d->settle)) {
		rc = ENOMEM;
		goto fail;
	}
	if ((rc = insts_new(d, cfg, &ins)) != 0)
		goto fail;
	if ((rc = apply(d, cfg, ins)) != 0) {
		for (size_t i = 0; i < cfg->n_destinations; i++) {
			ins[i]->ops->destroy(ins[i]->drv);
			free(ins[i]);
		}
		goto fail;
	}
	free(ins);
	*out = d;
	return 0;
fail:
	free(ins);
	relay_delivery_free(d);
	return rc;
}

int
relay_delivery_set_config(struct relay_delivery *d, const struct relay_config *cfg,
                          const struct relay_routes *routes)
{
	struct inst **ins;
	int rc;

	/* Everything that can fail comes first: a refusal changes nothing. */
	if ((rc = insts_new(d, cfg, &ins)) != 0)
		return rc;
	if ((rc = apply(d, cfg, ins)) != 0) {
		for (size_t i = 0; i < cfg->n_destinations; i++) {
			ins[i]->ops->destroy(ins[i]->drv);
			free(ins[i]);
		}
		free(ins);
		return rc;
	}
	free(ins);
	d->cfg = cfg;
	d->routes = routes;
	relay_hold_release_all(d->holds, resumed_by_reload, NULL);
	relay_delivery_kick(d);
	return 0;
}

void
relay_delivery_stop_taking(struct relay_delivery *d)
{
	struct dest *ds;

	d->stopping = 1;
	evtimer_del(d->tick);
	LIST_FOREACH(ds, &d->dests, link)
		evtimer_del(ds->probe_timer);
}

unsigned
relay_delivery_in_flight(const struct relay_delivery *d)
{
	return relay_scheduler_jobs(d->sched) + d->n_superseding;
}

void
relay_delivery_status(struct relay_delivery *d, struct relay_delivery_status *st)
{
	struct relay_store_stats ss = { 0 };
	struct relay_settle_counts sc;
	const struct dest *ds, *worst = NULL;

	relay_store_stats(d->store, relay_wall_ms(), &ss);
	relay_settle_counts(d->settle, &sc);
	st->queued = ss.events;
	st->dead = ss.dead;
	st->in_flight = relay_scheduler_calls(d->sched);
	st->paused = d->paused;
	st->delivered = sc.delivered;
	st->retried = sc.retried;
	st->dead_lettered = sc.dead_lettered;
	st->n_dest = 0;
	LIST_FOREACH(ds, &d->dests, link) {
		struct relay_delivery_dest_status *x;

		if (ds->gone || st->n_dest == RELAY_DELIVERY_MAX_DEST)
			continue;
		if (!worst || sickness(ds->circuit.state) > sickness(worst->circuit.state))
			worst = ds;
		x = &st->dest[st->n_dest++];
		x->name = ds->name;
		x->kind = ds->cur->ops->kind;
		x->protocol = protocol_of(ds);
		x->circuit = relay_circuit_state_name(ds->circuit.state);
		x->circuit_since_ms = ds->circuit.since_ms;
		x->error = ds->circuit.why;
		x->in_flight = ds->sd.calls;
		x->paused = ds->paused;
	}
	st->circuit = worst ? relay_circuit_state_name(worst->circuit.state) : "closed";
	st->circuit_since_ms = worst ? worst->circuit.since_ms : 0;
}

void
relay_delivery_metrics(struct relay_delivery *d, struct relay_metrics *m)
{
	struct relay_store_stats ss = { 0 };
	int64_t now = relay_wall_ms();
	const struct dest *ds;

	relay_store_stats(d->store, now, &ss);
	relay_metrics_set(m, "relay_queue_depth", "events queued, delayed and parked ones included",
	                  NULL, NULL, (double)ss.events);
	relay_metrics_set(m, "relay_queue_due", "events due for delivery now", NULL, NULL,
	                  (double)ss.due_now);
	relay_metrics_set(m, "relay_dead_letters", "events in the dead-letter queue", NULL, NULL,
	                  (double)ss.dead);
	relay_metrics_set(m, "relay_oldest_event_age_seconds", "age of the oldest queued event",
	                  NULL, NULL, ss.oldest_received_ms ? (double)(now - ss.oldest_received_ms) / 1000.0 : 0);
	LIST_FOREACH(ds, &d->dests, link) {
		if (ds->gone)
			continue;
		relay_metrics_set(m, "relay_in_flight", "calls in flight, by destination",
		                  "destination", ds->name, ds->sd.calls);
		relay_metrics_set(m, "relay_circuit_open",
		                  "1 while delivery to a destination is paused by its circuit",
		                  "destination", ds->name,
		                  ds->circuit.state == RELAY_CIRCUIT_STATE_CLOSED ? 0 : 1);
		relay_metrics_set(m, "relay_destination_paused",
		                  "1 while a destination is paused by odoo-relayctl", "destination",
		                  ds->name, ds->paused);
		relay_metrics_set2(m, "relay_destination_info",
		                   "a destination's kind and the protocol it speaks (always 1)",
		                   "destination", ds->name, "protocol", protocol_of(ds), 1);
	}
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
	struct dest *ds;

	if (!d)
		return;
	d->freeing = 1;
	/* Freeing an instance runs the callbacks of its calls and probes
	 * (cancelled): with d->freeing they end their jobs and write nothing. */
	LIST_FOREACH(ds, &d->dests, link) {
		evtimer_del(ds->probe_timer);
		while (!LIST_EMPTY(&ds->insts)) {
			struct inst *in = LIST_FIRST(&ds->insts);
			LIST_REMOVE(in, link);
			in->retired = 0; /* freed here, not by its last user */
			in->users += 1;  /* nor by a callback from inside destroy */
			in->ops->destroy(in->drv);
			free(in);
		}
		ds->cur = NULL;
	}
	relay_scheduler_free(d->sched);
	while (!LIST_EMPTY(&d->dests)) {
		ds = LIST_FIRST(&d->dests);
		LIST_REMOVE(ds, link);
		dest_free(ds);
	}
	relay_settle_free(d->settle);
	relay_holds_free(d->holds);
	relay_store_read_end(d->parked);
	if (d->tick)
		event_free(d->tick);
	if (d->kick)
		event_free(d->kick);
	free(d);
}

int
relay_delivery_circuit_open(const struct relay_delivery *d, const char *destination)
{
	const struct dest *ds;

	if (!d || !destination)
		return 0;
	LIST_FOREACH(ds, &d->dests, link)
		if (!ds->gone && strcmp(ds->name, destination) == 0)
			return relay_circuit_down(&ds->circuit);
	return 0;
}
