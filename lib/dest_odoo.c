/*
 * The Odoo driver: an event's route mapped to a plan (route.h), the plan
 * executed through the Odoo client (odoo_client.h), the outcome returned.
 * See include/odoo_relay/destination.h for the contract.
 *
 * A plan is at most two calls: an upsert that may both create and update is
 * one load() (load resolves the external ID itself); anything else first
 * reads the external ID's record id from ir.model.data, then writes,
 * unlinks, loads or skips by what it found.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "odoo_relay/destination.h"
#include "odoo_relay/error.h"
#include "odoo_relay/log.h"
#include "odoo_relay/odoo_client.h"

struct odoo_dest {
	struct event_base *base;
	struct relay_odoo *client;
	char *module;              /* external-ID module prefix */
	char *database;
};

enum step { STEP_LOOKUP, STEP_MAIN };

/* One job's way through its plan. */
struct odoo_job {
	struct odoo_dest *od;
	struct relay_job *job;
	relay_driver_done_fn cb;
	void *arg;
	struct relay_plan plan;
	int have_plan;
	enum step step;
	json_int_t res_id;         /* from the lookup, 0 if missing */
	struct relay_outcome early; /* an outcome known before any call */
};

static void
odoo_job_free(struct odoo_job *oj)
{
	if (oj->have_plan)
		relay_plan_clear(&oj->plan);
	relay_outcome_clear(&oj->early);
	free(oj);
}

static void
finish(struct odoo_job *oj, const struct relay_outcome *o, const char *request, const char *how)
{
	oj->cb(oj->job, o, request, how, oj->arg);
	odoo_job_free(oj);
}

static void
finish_done(struct odoo_job *oj, const char *how)
{
	struct relay_outcome o = { .klass = RELAY_CLASS_DONE };

	finish(oj, &o, NULL, how);
}

/* An outcome known without a call goes back on the next loop turn: a
 * driver never calls back from inside send. */
static void
early_cb(evutil_socket_t fd, short what, void *arg)
{
	struct odoo_job *oj = arg;
	struct relay_outcome o = oj->early;

	memset(&oj->early, 0, sizeof(oj->early));
	finish(oj, &o, NULL, o.klass == RELAY_CLASS_DONE ? "skipped" : NULL);
	relay_outcome_clear(&o);
}

static int
finish_later(struct odoo_job *oj, enum relay_class klass, const char *name, const char *why)
{
	struct timeval now = { 0, 0 };
	int rc;

	relay_outcome_clear(&oj->early);
	if (klass == RELAY_CLASS_DONE)
		oj->early.klass = RELAY_CLASS_DONE;
	else if ((rc = relay_outcome_set(&oj->early, klass, RELAY_SCOPE_NONE, name, why, NULL)))
		return rc;
	return event_base_once(oj->od->base, -1, EV_TIMEOUT, early_cb, oj, &now) ? ENOMEM : 0;
}

static int
is_missing_error(const struct relay_outcome *o)
{
	return o->error_name && strstr(o->error_name, "MissingError") != NULL;
}

static void step_next(struct odoo_job *oj);

static void
called(struct relay_odoo_result *res, void *arg)
{
	struct odoo_job *oj = arg;
	const struct relay_outcome *o = &res->outcome;

	/* Deleting a record that is already gone is what we wanted. */
	if (oj->step == STEP_MAIN && oj->plan.op == RELAY_OP_DELETE && is_missing_error(o)) {
		finish_done(oj, "deleted (already gone)");
		return;
	}
	if (o->klass != RELAY_CLASS_DONE) {
		finish(oj, o, res->request, NULL);
		return;
	}
	if (oj->step == STEP_LOOKUP) {
		const json_t *rows = o->result;
		const json_t *row = json_is_array(rows) ? json_array_get(rows, 0) : NULL;

		oj->res_id = row ? json_integer_value(json_object_get(row, "res_id")) : 0;
		oj->step = STEP_MAIN;
		step_next(oj);
		return;
	}
	finish(oj, o, res->request, oj->plan.op == RELAY_OP_DELETE ? "deleted" : "delivered");
}

/* One call of the plan; ids and named are taken over. */
static void
call(struct odoo_job *oj, const char *model, const char *method, json_t *ids, json_t *named)
{
	int rc = relay_odoo_call(oj->od->client, model, method, ids, named, called, oj);

	json_decref(ids);
	json_decref(named);
	if (rc && finish_later(oj, RELAY_CLASS_TRANSIENT, "relay.call", relay_strerror(rc))) {
		/* Not even that: say it now, as a cancelled call would. */
		struct relay_outcome o = { .klass = RELAY_CLASS_TRANSIENT,
		                           .transport = RELAY_TRANSPORT_ERROR };
		finish(oj, &o, NULL, NULL);
	}
}

static void
call_load(struct odoo_job *oj)
{
	json_t *named = json_pack("{s:O,s:O}", "fields", oj->plan.load_fields, "data",
	                          oj->plan.load_data);

	call(oj, oj->plan.model, "load", NULL, named);
}

static void
step_next(struct odoo_job *oj)
{
	struct relay_plan *p = &oj->plan;
	char why[512];

	if (p->op == RELAY_OP_CALL) {
		call(oj, p->model, p->method, NULL, json_incref(p->named));
		return;
	}
	if (oj->step == STEP_LOOKUP) {
		if (p->op == RELAY_OP_UPSERT && p->may_create && p->may_update) {
			oj->step = STEP_MAIN; /* load() creates or updates by itself */
			call_load(oj);
			return;
		}
		call(oj, "ir.model.data", "search_read", NULL,
		     json_pack("{s:[[s,s,s],[s,s,s]],s:[s,s]}", "domain", "module", "=",
		               p->xmlid_module, "name", "=", p->xmlid_name, "fields", "res_id",
		               "model"));
		return;
	}
	int exists = oj->res_id > 0;
	switch (p->op) {
	case RELAY_OP_UPSERT:
		if (exists && !p->may_update) {
			finish_done(oj, "skipped (record exists; route may not update)");
		} else if (!exists && !p->may_create) {
			snprintf(why, sizeof(why), "no record with external id %s.%s and the route may "
			         "not create", p->xmlid_module, p->xmlid_name);
			struct relay_outcome o = { 0 };
			if (relay_outcome_set(&o, RELAY_CLASS_PERMANENT, RELAY_SCOPE_NONE, "relay.plan", why,
			                      NULL) == 0) {
				finish(oj, &o, NULL, NULL);
				relay_outcome_clear(&o);
			} else {
				finish(oj, &(struct relay_outcome){ .klass = RELAY_CLASS_TRANSIENT }, NULL,
				       NULL);
			}
		} else {
			call_load(oj);
		}
		return;
	case RELAY_OP_WRITE:
		if (exists) {
			call(oj, p->model, "write", json_pack("[I]", oj->res_id),
			     json_pack("{s:O}", "vals", p->values));
		} else if (p->missing_create && p->may_create && p->load_fields) {
			call_load(oj);
		} else {
			snprintf(why, sizeof(why), "no record with external id %s.%s", p->xmlid_module,
			         p->xmlid_name);
			struct relay_outcome o = { 0 };
			if (relay_outcome_set(&o, RELAY_CLASS_PERMANENT, RELAY_SCOPE_NONE, "relay.plan", why,
			                      NULL) == 0) {
				finish(oj, &o, NULL, NULL);
				relay_outcome_clear(&o);
			} else {
				finish(oj, &(struct relay_outcome){ .klass = RELAY_CLASS_TRANSIENT }, NULL,
				       NULL);
			}
		}
		return;
	case RELAY_OP_DELETE:
		if (exists)
			call(oj, p->model, "unlink", json_pack("[I]", oj->res_id), NULL);
		else
			finish_done(oj, "deleted (no such record)");
		return;
	case RELAY_OP_CALL:
		return; /* handled above: no lookup */
	}
}

/* Map one job's event and start its plan. 0, or an error with no callback. */
static int
start_one(struct odoo_dest *od, struct relay_job *job, const struct relay_route *route,
          relay_driver_done_fn cb, void *arg)
{
	struct odoo_job *oj = calloc(1, sizeof(*oj));
	json_error_t jerr;
	json_t *payload;
	char why[512] = "";
	int rc;

	if (!oj)
		return ENOMEM;
	oj->od = od;
	oj->job = job;
	oj->cb = cb;
	oj->arg = arg;
	payload = json_loadb((const char *)job->ev.body, job->ev.body_len, 0, &jerr);
	if (!payload) {
		snprintf(why, sizeof(why), "body is not JSON: %s", jerr.text);
		rc = finish_later(oj, RELAY_CLASS_PERMANENT, "relay.plan", why);
		goto out;
	}
	rc = relay_route_map(route, payload, od->module, &oj->plan, why, sizeof(why));
	json_decref(payload);
	if (rc) {
		rc = finish_later(oj, RELAY_CLASS_PERMANENT, "relay.plan",
		                  why[0] ? why : relay_strerror(rc));
		goto out;
	}
	oj->have_plan = 1;
	oj->step = STEP_LOOKUP;
	step_next(oj);
	return 0;
out:
	if (rc)
		odoo_job_free(oj);
	return rc;
}

static int
odoo_send(void *drv, struct relay_job *const *jobs, size_t n, const struct relay_route *route,
          relay_driver_done_fn cb, void *arg)
{
	/* max_batch is 1: one event per plan. */
	return n == 1 ? start_one(drv, jobs[0], route, cb, arg) : -RELAY_EINVAL;
}

/* ---- probes: credentials, then the module prefix ---- */

struct probe {
	struct odoo_dest *od;
	relay_driver_probe_fn cb;
	void *arg;
};

/* Our external-ID module must not be a module installed in that database,
 * or upgrading it would delete the records we made. */
static void
module_checked(struct relay_odoo_result *res, void *arg)
{
	struct probe *p = arg;
	const struct relay_outcome *o = &res->outcome;
	struct relay_outcome bad = { 0 }, ok = { .klass = RELAY_CLASS_DONE };
	char msg[300];

	if (o->klass == RELAY_CLASS_DONE && json_integer_value(o->result) > 0) {
		snprintf(msg, sizeof(msg), "the external-ID module \"%s\" is a module installed in "
		         "database %s: set module to a name of our own", p->od->module, p->od->database);
		relay_outcome_set(&bad, RELAY_CLASS_CONFIG, RELAY_SCOPE_TARGET, "relay.module", msg,
		                  NULL);
		p->cb(&bad, p->arg);
		relay_outcome_clear(&bad);
	} else if (o->klass == RELAY_CLASS_DONE || o->klass != RELAY_CLASS_TRANSIENT) {
		/* The API user may not read ir.module.module: say so, and go on. */
		if (o->klass != RELAY_CLASS_DONE)
			relay_log(LOG_WARNING, "cannot check that module %s is not installed in %s: %s",
			          p->od->module, p->od->database,
			          o->message ? o->message : o->error_name ? o->error_name : "error");
		p->cb(&ok, p->arg);
	} else {
		p->cb(o, p->arg);
	}
	free(p);
}

static void
probed(struct relay_odoo_result *res, void *arg)
{
	struct probe *p = arg;
	json_t *named;
	int rc;

	if (res->outcome.klass != RELAY_CLASS_DONE) {
		p->cb(&res->outcome, p->arg);
		free(p);
		return;
	}
	named = json_pack("{s:[[s,s,s],[s,s,s]]}", "domain", "name", "=", p->od->module, "state",
	                  "=", "installed");
	rc = named ? relay_odoo_call(p->od->client, "ir.module.module", "search_count", NULL, named,
	                             module_checked, p) : ENOMEM;
	json_decref(named);
	if (rc) {
		struct relay_outcome ok = { .klass = RELAY_CLASS_DONE };

		p->cb(&ok, p->arg);
		free(p);
	}
}

static int
odoo_probe(void *drv, relay_driver_probe_fn cb, void *arg)
{
	struct odoo_dest *od = drv;
	struct probe *p = malloc(sizeof(*p));
	int rc;

	if (!p)
		return ENOMEM;
	p->od = od;
	p->cb = cb;
	p->arg = arg;
	if ((rc = relay_odoo_probe(od->client, probed, p)))
		free(p);
	return rc;
}

/* ---- instances ---- */

static void
odoo_destroy(void *drv)
{
	struct odoo_dest *od = drv;

	if (!od)
		return;
	relay_odoo_free(od->client);
	free(od->module);
	free(od->database);
	free(od);
}

static int
odoo_create(struct event_base *base, const struct relay_destination_conf *conf, void **out)
{
	struct odoo_dest *od = calloc(1, sizeof(*od));
	int rc;

	if (!od)
		return ENOMEM;
	od->base = base;
	if (!(od->module = strdup(conf->odoo.module ? conf->odoo.module : "odoo_relay")) ||
	    !(od->database = strdup(conf->odoo.database ? conf->odoo.database : ""))) {
		rc = ENOMEM;
		goto fail;
	}
	if ((rc = relay_odoo_new(base, &conf->odoo, &od->client)))
		goto fail;
	*out = od;
	return 0;
fail:
	odoo_destroy(od);
	return rc;
}

static const char *
odoo_protocol(void *drv)
{
	struct odoo_dest *od = drv;

	return relay_odoo_protocol_name(relay_odoo_protocol(od->client));
}

const struct relay_driver_ops relay_driver_odoo = {
	.kind = "odoo",
	.max_batch = 1,
	.create = odoo_create,
	.destroy = odoo_destroy,
	.probe = odoo_probe,
	.send = odoo_send,
	.protocol = odoo_protocol,
};

const struct relay_driver_ops *
relay_driver_for(enum relay_dest_kind kind)
{
	switch (kind) {
	case RELAY_DEST_ODOO:
		return &relay_driver_odoo;
	}
	return NULL;
}
