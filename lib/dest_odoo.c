/*
 * The Odoo driver: an event's route mapped to a plan (route.h), the plan
 * executed through the Odoo client (odoo_client.h), the outcome returned.
 * See include/odoo_relay/destination.h for the contract.
 *
 * A plan is at most two calls: an upsert that may both create and update is
 * one load() (load resolves the external ID itself); anything else first
 * reads the external ID's record id from ir.model.data, then writes,
 * unlinks, loads or skips by what it found.
 *
 * Batches: several jobs of a route whose plans are such loads go as one
 * load() (rows in the order given; jobs whose columns differ, because an
 * optional field is absent, go in a call of their own, one after the
 * other). load() is all or nothing: when ids is false, the rows its
 * messages name get their permanent outcome with their own message, and
 * the others are sent again at once as a new batch (the rows after Odoo's
 * "Found more than 10 errors" were not tried: they go again too), until
 * every job has its outcome. A whole-call failure that names no row (a
 * permanent error of the call, ids false with no row named) sends the rest
 * one row per call, so that no row fails for a neighbour. A transient or
 * configuration failure is every job's: those not in the call are reported
 * cancelled (not charged). Write, delete and call go alone.
 *
 * Orders (route.h: "find", "then", "warnings", "refuse"): the finds of
 * every job of a call are resolved first, together (lookup.h), and a job
 * whose find fails ends before any load; a load's warnings are logged and
 * kept in the outcome's text (or fail the job); after a load, the "then"
 * steps of each record run (odoo_order.h), in a batch after one read of
 * the state of all its records; a route with "refuse" reads its records
 * before the load (odoo_order.h: for a batch, once for all of them).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "odoo_relay/destination.h"
#include "odoo_relay/error.h"
#include "odoo_relay/log.h"
#include "odoo_relay/clock.h"
#include "odoo_relay/odoo_client.h"
#include "odoo_relay/lookup.h"
#include "odoo_relay/odoo_order.h"
#include "odoo_relay/utf8.h"
#include "call_fail_int.h"

struct batch;

struct odoo_dest {
	struct event_base *base;
	struct relay_odoo *client;
	char *module;              /* external-ID module prefix */
	char *database;
	uint64_t batch_seq;        /* the last batch id given */
	struct relay_lookup *lookup; /* found ids of "find" specs, cached */
	LIST_HEAD(, batch) waiting; /* batches between send and their first call */
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
	json_t *context;           /* the route's, or NULL */
	json_t *then, *refuse;     /* the route's "then" and "refuse" (copies), or NULL */
	int warnings_fail;
	int guarded;               /* the "refuse" pre-read passed */
	char *note;                /* what the guard did, for the outcome */
	int load_status;           /* the HTTP status of the load, for the outcome after steps */
};

static void
odoo_job_free(struct odoo_job *oj)
{
	if (oj->have_plan)
		relay_plan_clear(&oj->plan);
	relay_outcome_clear(&oj->early);
	json_decref(oj->context);
	json_decref(oj->then);
	json_decref(oj->refuse);
	free(oj->note);
	free(oj);
}

/* What the history keeps of a done job: the external ID and the record
 * id written (from the lookup, or the first of a load()'s ids). */
static void
note_answer(struct relay_job *job, const struct relay_plan *p, const json_t *ids, size_t k,
            json_int_t res_id)
{
	const json_t *id = json_is_array(ids) ? json_array_get(ids, k) : NULL;

	if (p->xmlid_module && p->xmlid_name && !job->answer_xid &&
	    asprintf(&job->answer_xid, "%s.%s", p->xmlid_module, p->xmlid_name) < 0)
		job->answer_xid = NULL;
	/* A step's outcome, after the load's, carries no ids: keep the load's. */
	if (json_is_integer(id))
		job->answer_odoo_id = (int64_t)json_integer_value(id);
	else if (res_id > 0)
		job->answer_odoo_id = res_id;
}

static void
finish(struct odoo_job *oj, const struct relay_outcome *o, const char *request, const char *how)
{
	struct relay_sent_info info = { .batch_id = 0, .batch_size = 1, .row = -1, .first = 1 };

	if (o->klass == RELAY_CLASS_DONE && oj->have_plan)
		note_answer(oj->job, &oj->plan,
		            json_is_object(o->result) ? json_object_get(o->result, "ids") : NULL, 0,
		            oj->res_id);

	oj->cb(oj->job, o, request, how, &info, oj->arg);
	odoo_job_free(oj);
}

/* named with the route's context added (named taken over; NULL stays NULL
 * unless there is a context). */
static json_t *
with_context(json_t *named, const json_t *context)
{
	if (!context)
		return named;
	if (!named)
		named = json_object();
	if (named && !json_object_get(named, "context"))
		json_object_set_new(named, "context", json_deep_copy(context));
	return named;
}

static void
finish_done(struct odoo_job *oj, const char *how)
{
	struct relay_outcome o = { .klass = RELAY_CLASS_DONE };

	finish(oj, &o, NULL, how);
}

/* A failure made here (a find without a match, a refusal, ...). */
static void
finish_fail(struct odoo_job *oj, enum relay_class klass, const char *name, const char *why,
            const char *request)
{
	struct relay_outcome o = { 0 };

	if (relay_outcome_set(&o, klass, RELAY_SCOPE_NONE, name, why, NULL) == 0) {
		finish(oj, &o, request, NULL);
		relay_outcome_clear(&o);
	} else {
		finish(oj, &(struct relay_outcome){ .klass = RELAY_CLASS_TRANSIENT,
		                                    .transport = RELAY_TRANSPORT_ERROR }, NULL, NULL);
	}
}

/* "delivered", with what else happened in parentheses. */
static char *
how_text(const char *base, const char *a, const char *b)
{
	char *out = NULL;

	if (asprintf(&out, "%s%s%s%s%s%s", base, a || b ? " (" : "", a ? a : "",
	             a && b ? "; " : "", b ? b : "", a || b ? ")" : "") < 0)
		return NULL;
	return out;
}

/* The finds a permanent failure names are searched again next time. */
static void
forget_named(struct relay_lookup *lk, const json_t *finds, const struct relay_outcome *o)
{
	char *why = NULL;

	if (asprintf(&why, "%s\n%s", o->message ? o->message : "", o->detail ? o->detail : "") < 0)
		why = NULL;
	relay_lookup_forget(lk, finds, why ? why : "");
	free(why);
}

/* load() warnings for a row that was written: logged at warning level. */
static void
log_warnings(const struct relay_job *job, const char *warnings)
{
	struct relay_log_fields f = { .event_id = job->ev.id, .route = job->route,
	                              .destination = job->dest, .odoo_model = job->model };

	relay_log_with(LOG_WARNING, &f, "event %" PRIu64 " written with a warning from Odoo: %s",
	               job->ev.id, warnings);
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
stepped(void *arg, const struct relay_outcome *failure, const char *request, const char *note)
{
	struct odoo_job *oj = arg;
	char *how;

	if (failure) {
		finish(oj, failure, request, NULL);
		return;
	}
	how = how_text("delivered", oj->note, note);
	finish(oj, &(struct relay_outcome){ .klass = RELAY_CLASS_DONE, .http_status = oj->load_status },
	       NULL, how ? how : "delivered");
	free(how);
}

/* The permanent failure of a row whose load() answer gave no id for its
 * record (why: relay_order_load_row_id's text): Odoo answering wrongly,
 * so marked unknown, and its steps never run. 0, or ENOMEM. */
static int
no_id_outcome(struct relay_outcome *ro, const struct relay_outcome *o, const char *why)
{
	char msg[400];
	int rc;

	relay_utf8_snprintf(msg, sizeof(msg), "%s: its steps were not run", why);
	if ((rc = relay_outcome_set(ro, RELAY_CLASS_PERMANENT, RELAY_SCOPE_NONE, "odoo.load", msg,
	                            NULL)) != 0)
		return rc;
	ro->unknown = 1;
	ro->http_status = o->http_status;
	return 0;
}

/* The load of an upsert went through: its warnings, then its steps. */
static void
loaded(struct odoo_job *oj, const struct relay_outcome *o, const char *request)
{
	char *warn = relay_order_load_warnings(o->result, 0, (size_t)-1), *w = NULL;
	char no_id[200];
	json_int_t id = relay_order_load_row_id(o->result, 0, 1, no_id, sizeof(no_id));
	int rc;

	/* what Odoo answered, for the history, before steps replace the outcome
	 * (only an id the answer gives for sure) */
	oj->load_status = o->http_status;
	if (oj->have_plan)
		note_answer(oj->job, &oj->plan, NULL, 0, id > 0 ? id : oj->res_id);
	if (warn) {
		log_warnings(oj->job, warn);
		if (oj->warnings_fail) {
			char why[1024];

			relay_utf8_snprintf(why, sizeof(why), "written with a warning from Odoo "
			                    "(the route fails on warnings): %s", warn);
			free(warn);
			finish_fail(oj, RELAY_CLASS_PERMANENT, "odoo.load.warning", why, request);
			return;
		}
		/* kept with the guard's note, for the outcome */
		if (asprintf(&w, "%s%swarning: %s", oj->note ? oj->note : "", oj->note ? "; " : "",
		             warn) >= 0) {
			free(oj->note);
			oj->note = w;
		}
		free(warn);
	}
	if (oj->then && id <= 0) {
		struct relay_outcome ro = { 0 };

		if (no_id_outcome(&ro, o, no_id) == 0) {
			finish(oj, &ro, request, NULL);
			relay_outcome_clear(&ro);
		} else {
			finish_fail(oj, RELAY_CLASS_TRANSIENT, "relay.call", relay_strerror(ENOMEM),
			            NULL);
		}
		return;
	}
	if (oj->then) {
		rc = relay_order_steps(oj->od->client, oj->plan.model, id, oj->then, 0, oj->context,
		                       stepped, oj);
		if (rc == 0)
			return;
		finish_fail(oj, RELAY_CLASS_TRANSIENT, "relay.call", relay_strerror(rc), NULL);
		return;
	}
	stepped(oj, NULL, NULL, NULL);
}

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
		if (oj->plan.finds && o->klass == RELAY_CLASS_PERMANENT)
			forget_named(oj->od->lookup, oj->plan.finds, o);
		finish(oj, o, res->request, NULL);
		return;
	}
	if (oj->plan.op == RELAY_OP_UPSERT && oj->step == STEP_MAIN) {
		loaded(oj, o, res->request);
		return;
	}
	if (oj->step == STEP_LOOKUP) {
		const json_t *rows = o->result;
		const json_t *row = json_is_array(rows) ? json_array_get(rows, 0) : NULL;

		char why[300];

		oj->res_id = row ? relay_order_xmlid_res_id(row, oj->plan.xmlid_module, why,
		                                            sizeof(why)) : 0;
		if (row && !oj->res_id) {
			/* not "no record": Odoo answering wrongly, and the record
			 * may well exist (a create would make a second one) */
			struct relay_outcome bad = { 0 };

			if (relay_outcome_set(&bad, RELAY_CLASS_PERMANENT, RELAY_SCOPE_NONE,
			                      "odoo.ir_model_data", why, NULL) == 0) {
				bad.unknown = 1;
				bad.http_status = o->http_status;
				finish(oj, &bad, res->request, NULL);
				relay_outcome_clear(&bad);
			} else {
				finish_fail(oj, RELAY_CLASS_TRANSIENT, "relay.call",
				            relay_strerror(ENOMEM), NULL);
			}
			return;
		}
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
	int rc;

	named = with_context(named, oj->context);
	rc = relay_odoo_call(oj->od->client, model, method, ids, named, called, oj);

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

/* The "refuse" pre-read: a refusal ends the event, else the load goes. */
static void
guarded(void *arg, const struct relay_outcome *failure, const char *request,
        const json_t *verdicts)
{
	struct odoo_job *oj = arg;
	const json_t *v = json_array_get(verdicts, 0);
	const char *note = json_string_value(json_object_get(v, "note"));

	if (failure) {
		finish(oj, failure, request, NULL);
		return;
	}
	if (json_string_value(json_object_get(v, "refused"))) {
		finish_fail(oj, RELAY_CLASS_PERMANENT, "relay.refused",
		            json_string_value(json_object_get(v, "refused")), NULL);
		return;
	}
	oj->guarded = 1;
	if (note && !(oj->note = strdup(note))) {
		finish_fail(oj, RELAY_CLASS_TRANSIENT, "relay.plan", "out of memory", NULL);
		return;
	}
	step_next(oj);
}

/* Start the "refuse" pre-read of a lone event. */
static void
guard_one(struct odoo_job *oj)
{
	const struct relay_plan *plans[1] = { &oj->plan };
	int rc = relay_order_guard_many(oj->od->client, plans, 1, oj->refuse, oj->context, guarded,
	                                oj);

	/* from the loop, never from inside send (which may have called this):
	 * the scheduler registers the call only once send returns */
	if (rc && finish_later(oj, RELAY_CLASS_TRANSIENT, "relay.call", relay_strerror(rc)))
		finish_fail(oj, RELAY_CLASS_TRANSIENT, "relay.call", relay_strerror(rc), NULL);
}

/* The finds of a lone event answered: into its cells, then its plan. */
static void
found_one(void *arg, const struct relay_outcome *failure, const char *request, unsigned calls)
{
	struct odoo_job *oj = arg;
	const char *err;

	(void)calls;
	if (failure) {
		finish(oj, failure, request, NULL);
		return;
	}
	if ((err = relay_order_apply_finds(oj->plan.load_data, oj->plan.finds))) {
		finish_fail(oj, RELAY_CLASS_PERMANENT, "relay.find", err, NULL);
		return;
	}
	step_next(oj);
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
			if (oj->refuse && !oj->guarded) {
				guard_one(oj); /* then here again */
				return;
			}
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
			relay_utf8_snprintf(why, sizeof(why), "no record with external id %s.%s and "
			                    "the route may not create", p->xmlid_module, p->xmlid_name);
			struct relay_outcome o = { 0 };
			if (relay_outcome_set(&o, RELAY_CLASS_PERMANENT, RELAY_SCOPE_NONE, "relay.plan", why,
			                      NULL) == 0) {
				finish(oj, &o, NULL, NULL);
				relay_outcome_clear(&o);
			} else {
				finish(oj, &(struct relay_outcome){ .klass = RELAY_CLASS_TRANSIENT }, NULL,
				       NULL);
			}
		} else if (exists && oj->refuse && !oj->guarded) {
			guard_one(oj); /* then here again */
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
			relay_utf8_snprintf(why, sizeof(why), "no record with external id %s.%s",
			                    p->xmlid_module, p->xmlid_name);
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
	case RELAY_OP_POST:
		return; /* an HTTP route: never compiled for an Odoo destination */
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
	if (relay_route_context(route) && !(oj->context = json_deep_copy(relay_route_context(route)))) {
		free(oj);
		return ENOMEM;
	}
	payload = json_loadb((const char *)job->ev.body, job->ev.body_len, 0, &jerr);
	if (!payload) {
		relay_utf8_snprintf(why, sizeof(why), "body is not JSON: %s", jerr.text);
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
	oj->warnings_fail = relay_route_warnings_fail(route);
	if ((relay_route_then(route) && !(oj->then = json_deep_copy(relay_route_then(route)))) ||
	    (relay_route_refuse(route) &&
	     !(oj->refuse = json_deep_copy(relay_route_refuse(route))))) {
		rc = ENOMEM;
		goto out;
	}
	if (oj->plan.finds) {
		const char *err;

		rc = relay_lookup_resolve(od->lookup, od->client, oj->plan.finds, oj->context,
		                          found_one, oj);
		if (rc == 0)
			return 0;
		if (rc != 1)
			goto out;
		if ((err = relay_order_apply_finds(oj->plan.load_data, oj->plan.finds))) {
			rc = finish_later(oj, RELAY_CLASS_PERMANENT, "relay.find", err);
			goto out;
		}
	}
	step_next(oj);
	return 0;
out:
	if (rc)
		odoo_job_free(oj);
	return rc;
}

/* ---- batches: several upserts in one load() ---- */

/* ROW_READ: loaded, waiting for the batch's read of the state its first
 * step checks; ROW_STEP: its steps in flight. */
enum row_state { ROW_PENDING, ROW_IN_CALL, ROW_READ, ROW_STEP, ROW_REPORTED };

struct brow {
	struct relay_job *job;
	struct relay_plan plan;
	int have_plan;
	char why[256];             /* no plan: why */
	size_t off, nrows;         /* its data rows in the call in flight */
	enum row_state state;
	json_int_t rec_id;         /* ROW_READ: the record the load wrote */
	char *note;                /* ROW_READ: its warnings, for the outcome */
	char *gnote;               /* what the "refuse" guard did, for the outcome */
	int load_status;           /* the HTTP status of its load, for the outcome after steps */
	unsigned read_wave;        /* ROW_READ: the state read it waits for, 0: none yet */
	uint64_t call_id;          /* the load it was last sent in (0: none), and its size: */
	unsigned call_size;        /* its steps end after the batch's next load has begun */
};

struct batch {
	struct odoo_dest *od;
	relay_driver_done_fn cb;
	void *arg;
	char *model;
	json_t *context;
	struct brow *rows;
	size_t n, left;            /* rows, rows not reported yet */
	int solo;                  /* one row per call from now on */
	int first;                 /* the next report is the first of an answer */
	uint64_t id;               /* the call in flight */
	unsigned size;
	struct event *kick;        /* between send and the first call */
	LIST_ENTRY(batch) link;
	json_t *then;              /* the route's "then" (a copy), or NULL */
	json_t *refuse;            /* the route's "refuse" (a copy), or NULL */
	int warnings_fail;
	int in_call;               /* a load() of it is in flight */
	unsigned read_seq;         /* the last state read's wave */
};

/* A state read in flight: the rows of its wave are the ones it answers. */
struct state_read {
	struct batch *b;
	unsigned wave;
};

/* A row's follow-up steps in flight. */
struct row_step {
	struct batch *b;
	struct brow *r;
	char *note;                /* its warnings */
};

static void
batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		if (b->rows[i].have_plan)
			relay_plan_clear(&b->rows[i].plan);
		free(b->rows[i].note);
		free(b->rows[i].gnote);
	}
	if (b->kick)
		event_free(b->kick);
	json_decref(b->context);
	json_decref(b->then);
	json_decref(b->refuse);
	free(b->model);
	free(b->rows);
	free(b);
}

static void
report(struct batch *b, struct brow *r, const struct relay_outcome *o, const char *request,
       const char *how, int row)
{
	/* A row is reported with the load it went in: b->id is already the
	 * next load's when a row's steps end. */
	struct relay_sent_info info = { .batch_id = r->call_id ? r->call_id : b->id,
	                                .batch_size = r->call_id ? r->call_size : b->size,
	                                .row = row, .first = b->first };

	b->first = 0;
	r->state = ROW_REPORTED;
	b->left--;
	b->cb(r->job, o, request, how, &info, b->arg);
}

/* Every row not reported yet gets o; the batch is over (freed). */
static void
report_rest(struct batch *b, const struct relay_outcome *o, const char *request)
{
	int stepping = 0;

	for (size_t i = 0; i < b->n && b->left; i++) {
		struct brow *r = &b->rows[i];

		if (r->state == ROW_REPORTED)
			continue;
		if (r->state == ROW_STEP || r->state == ROW_READ) {
			stepping = 1; /* its steps report it, and the last frees b */
			continue;
		}
		if (r->state == ROW_IN_CALL) {
			report(b, r, o, request, NULL, -1);
		} else {
			/* Never sent in this answer's call: not charged. */
			struct relay_outcome c = { .klass = RELAY_CLASS_TRANSIENT,
			                           .transport = RELAY_TRANSPORT_CANCELLED };
			report(b, r, &c, NULL, NULL, -1);
		}
	}
	if (!stepping)
		batch_free(b);
}

/* The request kept with one row's dead letter: that row alone. */
static char *
row_request(const struct batch *b, const struct brow *r)
{
	json_t *o = json_pack("{s:s,s:s,s:O,s:O,s:I,s:i}", "model", b->model, "method", "load",
	                      "fields", r->plan.load_fields, "data", r->plan.load_data, "batch",
	                      (json_int_t)b->id, "batch_size", (int)b->size);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return text;
}

static void batch_next(struct batch *b);
static void batch_guard(struct batch *b);
static void batch_go_on(struct batch *b);

static void
row_stepped(void *arg, const struct relay_outcome *failure, const char *request,
            const char *note)
{
	struct row_step *st = arg;
	struct batch *b = st->b;

	if (failure) {
		report(b, st->r, failure, request, NULL, (int)st->r->off);
	} else {
		char *how = how_text("delivered", st->note, note);

		report(b, st->r,
		       &(struct relay_outcome){ .klass = RELAY_CLASS_DONE,
		                                .http_status = st->r->load_status },
		       NULL, how ? how : "delivered", (int)st->r->off);
		free(how);
	}
	free(st->note);
	free(st);
	batch_go_on(b);
}

static void report_transient(struct batch *b, struct brow *r, int rc);

/* Row r of a load that went through (its k-th of records records): its
 * warnings, then its steps, or its outcome now. */
static void
row_loaded(struct batch *b, struct brow *r, size_t k, size_t records,
           const struct relay_outcome *o, const char *request)
{
	char *warn, no_id[200];
	json_int_t id = relay_order_load_row_id(o->result, k, records, no_id, sizeof(no_id));

	r->load_status = o->http_status;
	if (r->have_plan)
		note_answer(r->job, &r->plan, NULL, 0, id);
	warn = relay_order_load_warnings(o->result, r->off, r->off + r->nrows);
	if (warn) {
		log_warnings(r->job, warn);
		if (b->warnings_fail) {
			struct relay_outcome ro = { 0 };
			char why[1024];

			relay_utf8_snprintf(why, sizeof(why), "written with a warning from Odoo "
			                    "(the route fails on warnings): %s", warn);
			free(warn);
			if (relay_outcome_set(&ro, RELAY_CLASS_PERMANENT, RELAY_SCOPE_NONE,
			                      "odoo.load.warning", why, NULL) == 0)
				report(b, r, &ro, request, NULL, (int)r->off);
			else
				report(b, r, o, request, "delivered", (int)r->off);
			relay_outcome_clear(&ro);
			return;
		}
		char *w = NULL;
		if (asprintf(&w, "warning: %s", warn) < 0)
			w = NULL;
		free(warn);
		warn = w;
	}
	if (r->gnote) {
		char *w = NULL;

		if (asprintf(&w, "%s%s%s", r->gnote, warn ? "; " : "", warn ? warn : "") >= 0) {
			free(warn);
			warn = w;
		}
	}
	if (!b->then) {
		char *how = how_text("delivered", warn, NULL);

		report(b, r, o, request, how ? how : "delivered", (int)r->off);
		free(how);
		free(warn);
		return;
	}
	if (id <= 0) {
		/* never a step on a record the answer does not name for sure */
		struct relay_outcome ro = { 0 };

		free(warn);
		if (no_id_outcome(&ro, o, no_id) == 0)
			report(b, r, &ro, request, NULL, (int)r->off);
		else
			report_transient(b, r, ENOMEM);
		relay_outcome_clear(&ro);
		return;
	}
	/* its steps wait for the state of every record of the call, read at once */
	r->state = ROW_READ;
	r->rec_id = id;
	r->note = warn;
}

static void
report_transient(struct batch *b, struct brow *r, int rc)
{
	struct relay_outcome ro = { 0 };

	relay_call_failed(&ro, rc);
	report(b, r, &ro, NULL, NULL, (int)r->off);
	relay_outcome_clear(&ro);
}

/* Row r ends without being sent, permanent: name, message. A bare
 * transient outcome stands in when that cannot be allocated, so that the
 * row still ends (and is tried again). */
static void
report_unsent(struct batch *b, struct brow *r, const char *name, const char *message)
{
	struct relay_outcome o = { 0 };

	if (relay_outcome_set(&o, RELAY_CLASS_PERMANENT, RELAY_SCOPE_NONE, name, message,
	                      NULL) == 0)
		report(b, r, &o, NULL, NULL, -1);
	else
		report(b, r, &(struct relay_outcome){ .klass = RELAY_CLASS_TRANSIENT }, NULL, NULL,
		       -1);
	relay_outcome_clear(&o);
}

/* The batch's first call (its searches, or its "refuse" pre-read) failed:
 * every pending row is charged with it. */
static void
batch_first_failed(struct batch *b, const struct relay_outcome *failure, const char *request)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->rows[i].state == ROW_PENDING)
			b->rows[i].state = ROW_IN_CALL;
	report_rest(b, failure, request);
}

/* A call of the batch could not be made: every row not reported yet ends
 * with that, transient. */
static void
batch_call_failed(struct batch *b, int rc)
{
	struct relay_outcome o = { 0 };

	relay_call_failed(&o, rc);
	report_rest(b, &o, NULL);
	relay_outcome_clear(&o);
}

/* Row r's steps, given the value its first step checks (read for the
 * whole call): called now, or skipped and the rest read one by one. */
static void
row_steps(struct batch *b, struct brow *r, const json_t *value)
{
	const json_t *step = json_array_get(b->then, 0);
	struct row_step *st = calloc(1, sizeof(*st));
	char text[128], *skip = NULL;
	int rc = ENOMEM;

	if (!st)
		goto fail;
	st->b = b;
	st->r = r;
	st->note = r->note;
	r->note = NULL;
	r->state = ROW_STEP;
	if (relay_order_step_allows(b->then, 0, value)) {
		rc = relay_order_steps_call(b->od->client, b->model, r->rec_id, b->then, b->context,
		                            value, row_stepped, st);
	} else {
		relay_order_value_text(value, text, sizeof(text));
		if (asprintf(&skip, "%s%s%s skipped: %s %s", st->note ? st->note : "",
		             st->note ? "; " : "", json_string_value(json_object_get(step, "call")),
		             json_string_value(json_object_get(step, "field")), text) < 0)
			goto fail;
		free(st->note);
		st->note = skip;
		if (json_array_size(b->then) == 1) {
			/* nothing else to do: done now (this is a call's callback) */
			char *how = how_text("delivered", st->note, NULL);

			report(b, r,
			       &(struct relay_outcome){ .klass = RELAY_CLASS_DONE,
			                                .http_status = r->load_status },
			       NULL, how ? how : "delivered", (int)r->off);
			free(how);
			free(st->note);
			free(st);
			return;
		}
		rc = relay_order_steps(b->od->client, b->model, r->rec_id, b->then, 1, b->context,
		                       row_stepped, st);
	}
	if (rc == 0)
		return;
fail:
	if (st)
		free(st->note);
	free(st);
	report_transient(b, r, rc);
}

static void batch_read_states(struct batch *b);

/* After a row's steps or a state read: the reads that waited (a second
 * event of one record goes after the first's steps), then the rest. */
static void
batch_go_on(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		if (b->rows[i].state == ROW_READ && b->rows[i].read_wave == 0) {
			batch_read_states(b);
			break;
		}
	}
	if (b->left == 0)
		batch_free(b); /* the instance may be gone with the last report */
	else if (!b->in_call)
		batch_next(b);
}

/* The state of every record of one wave: one read. */
static void
batch_states(struct relay_odoo_result *res, void *arg)
{
	struct state_read *sr = arg;
	struct batch *b = sr->b;
	unsigned wave = sr->wave;
	const json_t *rows = res->outcome.result, *rec;
	const char *field = json_string_value(json_object_get(json_array_get(b->then, 0), "field"));

	free(sr);
	b->first = 1;
	for (size_t i = 0; i < b->n; i++) {
		struct brow *r = &b->rows[i];
		const json_t *value = NULL;
		size_t k;

		if (r->state != ROW_READ || r->read_wave != wave)
			continue;
		if (res->outcome.klass != RELAY_CLASS_DONE) {
			report(b, r, &res->outcome, res->request, NULL, (int)r->off);
			continue;
		}
		json_array_foreach(rows, k, rec)
			if (json_integer_value(json_object_get(rec, "id")) == r->rec_id)
				value = json_object_get(rec, field);
		if (!value) {
			struct relay_outcome ro = { 0 };
			char why[200];

			snprintf(why, sizeof(why), "%s %" JSON_INTEGER_FORMAT " is gone: its steps "
			         "cannot run", b->model, r->rec_id);
			if (relay_outcome_set(&ro, RELAY_CLASS_PERMANENT, RELAY_SCOPE_NONE, "relay.step",
			                      why, NULL) == 0)
				report(b, r, &ro, NULL, NULL, (int)r->off);
			else
				report_transient(b, r, ENOMEM);
			relay_outcome_clear(&ro);
			continue;
		}
		row_steps(b, r, value);
	}
	batch_go_on(b);
}

/* Whether another row of record id has its steps or its read in flight. */
static int
record_busy(const struct batch *b, const struct brow *self, json_int_t id)
{
	for (size_t i = 0; i < b->n; i++) {
		const struct brow *r = &b->rows[i];

		if (r != self && r->rec_id == id &&
		    (r->state == ROW_STEP || (r->state == ROW_READ && r->read_wave != 0)))
			return 1;
	}
	return 0;
}

/* Read the state of the records of the rows waiting in ROW_READ, in a wave
 * of their own; a row whose record has another row's steps or read in
 * flight waits for them (batch_go_on). */
static void
batch_read_states(struct batch *b)
{
	const json_t *step = json_array_get(b->then, 0), *own;
	json_t *ids = json_array(), *named = NULL, *ctx = NULL;
	struct state_read *sr = calloc(1, sizeof(*sr));
	unsigned wave = ++b->read_seq;
	int rc = ENOMEM;

	for (size_t i = 0; ids && i < b->n; i++) {
		struct brow *r = &b->rows[i];

		if (r->state != ROW_READ || r->read_wave != 0 || record_busy(b, r, r->rec_id))
			continue;
		r->read_wave = wave;
		json_array_append_new(ids, json_integer(r->rec_id));
	}
	if (ids && json_array_size(ids) == 0) {
		json_decref(ids);
		free(sr);
		return;
	}
	own = json_object_get(step, "context");
	if (b->context || own) {
		ctx = b->context ? json_deep_copy(b->context) : json_object();
		if (ctx && own)
			json_object_update(ctx, (json_t *)own);
	}
	named = json_pack("{s:[s]}", "fields", json_string_value(json_object_get(step, "field")));
	if (named && ctx)
		json_object_set(named, "context", ctx);
	if (ids && named && sr) {
		sr->b = b;
		sr->wave = wave;
		rc = relay_odoo_call(b->od->client, b->model, "read", ids, named, batch_states, sr);
	}
	json_decref(ctx);
	json_decref(named);
	json_decref(ids);
	if (rc == 0)
		return;
	free(sr);
	for (size_t i = 0; i < b->n; i++)
		if (b->rows[i].state == ROW_READ && b->rows[i].read_wave == wave)
			report_transient(b, &b->rows[i], rc);
}

static void
batch_called(struct relay_odoo_result *res, void *arg)
{
	struct batch *b = arg;
	const struct relay_outcome *o = &res->outcome;
	size_t i, rec, total = 0, failed = 0;
	const char **fail = NULL;

	b->first = 1;
	b->in_call = 0;
	if (o->klass == RELAY_CLASS_DONE) {
		/* rows in the order of their records in the call */
		for (i = 0; i < b->n; i++)
			if (b->rows[i].state == ROW_IN_CALL)
				total++;
		for (i = 0, rec = 0; i < b->n && b->left; i++)
			if (b->rows[i].state == ROW_IN_CALL)
				row_loaded(b, &b->rows[i], rec++, total, o, res->request);
		if (b->then)
			batch_read_states(b);
		goto next;
	}
	if (o->klass == RELAY_CLASS_TRANSIENT || o->klass == RELAY_CLASS_CONFIG) {
		report_rest(b, o, res->request);
		return;
	}
	/* Permanent: which rows? */
	for (i = 0; i < b->n; i++)
		if (b->rows[i].state == ROW_IN_CALL)
			total = b->rows[i].off + b->rows[i].nrows;
	if (o->result && total && (fail = calloc(total, sizeof(*fail))))
		relay_load_failed_rows(o->result, total, fail);
	for (i = 0; fail && i < b->n; i++) {
		struct brow *r = &b->rows[i];
		const char *msg = NULL;

		if (r->state != ROW_IN_CALL)
			continue;
		for (size_t k = r->off; k < r->off + r->nrows && !msg; k++)
			msg = fail[k];
		if (msg)
			failed++;
	}
	if (failed == 0 && b->size == 1) {
		for (i = 0; i < b->n; i++)
			if (b->rows[i].state == ROW_IN_CALL)
				report(b, &b->rows[i], o, res->request, NULL, (int)b->rows[i].off);
		goto out;
	}
	if (failed == 0) {
		/* Nothing says which row: each alone from now on. */
		b->solo = 1;
		for (i = 0; i < b->n; i++)
			if (b->rows[i].state == ROW_IN_CALL)
				b->rows[i].state = ROW_PENDING;
		goto out;
	}
	for (i = 0; i < b->n && b->left; i++) {
		struct brow *r = &b->rows[i];
		const char *msg = NULL;
		size_t row = 0;

		if (r->state != ROW_IN_CALL)
			continue;
		for (size_t k = r->off; k < r->off + r->nrows && !msg; k++)
			if ((msg = fail[k]))
				row = k;
		if (!msg) {
			r->state = ROW_PENDING; /* good, or not tried: again at once */
			continue;
		}
		relay_lookup_forget(b->od->lookup, r->plan.finds, msg);
		struct relay_outcome ro = { 0 };
		char *req = row_request(b, r);
		if (relay_outcome_set(&ro, RELAY_CLASS_PERMANENT, RELAY_SCOPE_NONE, "odoo.load", msg,
		                      NULL) == 0) {
			ro.http_status = o->http_status;
			report(b, r, &ro, req, NULL, (int)row);
		} else {
			report(b, r, o, req, NULL, (int)row);
		}
		relay_outcome_clear(&ro);
		free(req);
	}
out:
	free(fail);
next:
	if (b->left == 0) {
		batch_free(b); /* the instance may be gone with the last report */
		return;
	}
	batch_next(b);
}

/* Send the next call of the batch: the first pending row and every pending
 * row with the same columns (one row alone in solo). */
static void
batch_next(struct batch *b)
{
	struct brow *head = NULL;
	json_t *data = json_array(), *named = NULL;
	size_t off = 0;
	unsigned size = 0;
	int rc;

	int stepping = 0;

	for (size_t i = 0; i < b->n; i++) {
		if (b->rows[i].state == ROW_PENDING && !head)
			head = &b->rows[i];
		stepping |= b->rows[i].state == ROW_STEP || b->rows[i].state == ROW_READ;
	}
	if (!head || !data) {
		json_decref(data);
		if (!head) {
			if (!stepping) /* else the last step's end frees it */
				batch_free(b);
			return;
		}
		rc = ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < b->n; i++) {
		struct brow *r = &b->rows[i];

		if (r->state != ROW_PENDING || (b->solo && r != head) ||
		    !json_equal(r->plan.load_fields, head->plan.load_fields))
			continue;
		r->state = ROW_IN_CALL;
		r->off = off;
		r->nrows = json_array_size(r->plan.load_data);
		off += r->nrows;
		json_array_extend(data, r->plan.load_data);
		size++;
	}
	b->id = ++b->od->batch_seq;
	b->size = size;
	for (size_t i = 0; i < b->n; i++) {
		if (b->rows[i].state == ROW_IN_CALL) {
			b->rows[i].call_id = b->id;
			b->rows[i].call_size = size;
		}
	}
	named = with_context(json_pack("{s:O,s:O}", "fields", head->plan.load_fields, "data", data),
	                     b->context);
	json_decref(data);
	rc = named ? relay_odoo_call(b->od->client, b->model, "load", NULL, named, batch_called, b)
	           : ENOMEM;
	json_decref(named);
	if (rc == 0) {
		b->in_call = 1;
		return;
	}
fail:
	b->first = 1;
	batch_call_failed(b, rc);
}

/* Found ids into each row's cells; a row with a find that failed ends. */
static void
batch_apply_finds(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct brow *r = &b->rows[i];
		const char *err;

		if (r->state != ROW_PENDING || !r->have_plan || !r->plan.finds)
			continue;
		if (!(err = relay_order_apply_finds(r->plan.load_data, r->plan.finds)))
			continue;
		report_unsent(b, r, "relay.find", err);
	}
}

static void
batch_found(void *arg, const struct relay_outcome *failure, const char *request, unsigned calls)
{
	struct batch *b = arg;

	(void)calls;
	b->first = 1;
	if (failure) {
		batch_first_failed(b, failure, request);
		return;
	}
	batch_apply_finds(b);
	batch_guard(b);
}

/* What the "refuse" pre-read said of each pending row. */
static void
batch_guarded(void *arg, const struct relay_outcome *failure, const char *request,
              const json_t *verdicts)
{
	struct batch *b = arg;
	size_t k = 0;

	b->first = 1;
	if (failure) {
		batch_first_failed(b, failure, request);
		return;
	}
	for (size_t i = 0; i < b->n; i++) {
		struct brow *r = &b->rows[i];
		const json_t *v;

		if (r->state != ROW_PENDING || !r->have_plan)
			continue;
		v = json_array_get(verdicts, k++);
		if (json_string_value(json_object_get(v, "note")))
			r->gnote = strdup(json_string_value(json_object_get(v, "note")));
		if (!json_string_value(json_object_get(v, "refused")))
			continue;
		report_unsent(b, r, "relay.refused",
		              json_string_value(json_object_get(v, "refused")));
	}
	if (b->left == 0) {
		batch_free(b);
		return;
	}
	batch_next(b);
}

/* The loads, after the "refuse" pre-read of the route if it has one. */
static void
batch_guard(struct batch *b)
{
	const struct relay_plan **plans;
	size_t n = 0;
	int rc;

	if (b->left == 0) {
		batch_free(b);
		return;
	}
	if (!b->refuse) {
		batch_next(b);
		return;
	}
	if (!(plans = calloc(b->n, sizeof(*plans)))) {
		rc = ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < b->n; i++)
		if (b->rows[i].state == ROW_PENDING && b->rows[i].have_plan)
			plans[n++] = &b->rows[i].plan;
	rc = n ? relay_order_guard_many(b->od->client, plans, n, b->refuse, b->context,
	                                batch_guarded, b) : 0;
	free(plans);
	if (rc == 0) {
		if (n == 0)
			batch_next(b);
		return;
	}
fail:
	b->first = 1;
	batch_call_failed(b, rc);
}

/* Resolve the finds of every row in one go (lookup.h), then the loads. */
static void
batch_find(struct batch *b)
{
	json_t *all = json_array();
	int rc = all ? 1 : ENOMEM; /* 1: nothing to search */

	for (size_t i = 0; all && i < b->n; i++)
		if (b->rows[i].state == ROW_PENDING && b->rows[i].have_plan && b->rows[i].plan.finds)
			json_array_extend(all, b->rows[i].plan.finds);
	if (all && json_array_size(all))
		rc = relay_lookup_resolve(b->od->lookup, b->od->client, all, b->context, batch_found,
		                          b);
	json_decref(all); /* the resolve holds its own reference */
	if (rc == 0)
		return;
	if (rc == 1) {
		batch_apply_finds(b);
		batch_guard(b);
		return;
	}
	batch_call_failed(b, rc);
}

/* The first call goes on the next loop turn (rows that cannot be mapped
 * are reported then): a driver never calls back from inside send. */
static void
batch_kick(evutil_socket_t fd, short what, void *arg)
{
	struct batch *b = arg;

	LIST_REMOVE(b, link);
	event_free(b->kick);
	b->kick = NULL;
	b->first = 1;
	for (size_t i = 0; i < b->n && b->left; i++) {
		struct brow *r = &b->rows[i];

		if (r->have_plan)
			continue;
		report_unsent(b, r, "relay.plan", r->why);
	}
	if (b->left == 0) {
		batch_free(b);
		return;
	}
	batch_find(b);
}

static int
start_batch(struct odoo_dest *od, struct relay_job *const *jobs, size_t n,
            const struct relay_route *route, relay_driver_done_fn cb, void *arg)
{
	struct batch *b = calloc(1, sizeof(*b));

	if (!b)
		return ENOMEM;
	b->od = od;
	b->cb = cb;
	b->arg = arg;
	b->n = b->left = n;
	b->model = strdup(relay_route_model(route));
	b->rows = calloc(n, sizeof(*b->rows));
	b->kick = event_new(od->base, -1, 0, batch_kick, b);
	if (relay_route_context(route))
		b->context = json_deep_copy(relay_route_context(route));
	if (relay_route_then(route))
		b->then = json_deep_copy(relay_route_then(route));
	if (relay_route_refuse(route))
		b->refuse = json_deep_copy(relay_route_refuse(route));
	b->warnings_fail = relay_route_warnings_fail(route);
	if (!b->model || !b->rows || !b->kick || (relay_route_context(route) && !b->context) ||
	    (relay_route_then(route) && !b->then) || (relay_route_refuse(route) && !b->refuse))
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		struct brow *r = &b->rows[i];
		json_error_t jerr;
		json_t *payload;
		int rc;

		r->job = jobs[i];
		r->state = ROW_PENDING;
		payload = json_loadb((const char *)jobs[i]->ev.body, jobs[i]->ev.body_len, 0, &jerr);
		if (!payload) {
			snprintf(r->why, sizeof(r->why), "body is not JSON: %s", jerr.text);
			continue;
		}
		rc = relay_route_map(route, payload, od->module, &r->plan, r->why, sizeof(r->why));
		json_decref(payload);
		if (rc == ENOMEM)
			goto nomem;
		if (rc) {
			if (!r->why[0])
				snprintf(r->why, sizeof(r->why), "%s", relay_strerror(rc));
			continue;
		}
		if (r->plan.op != RELAY_OP_UPSERT || !r->plan.load_fields) {
			relay_plan_clear(&r->plan);
			snprintf(r->why, sizeof(r->why), "not a load: it cannot go in a batch");
			continue;
		}
		r->have_plan = 1;
	}
	LIST_INSERT_HEAD(&od->waiting, b, link);
	event_active(b->kick, EV_TIMEOUT, 0);
	return 0;
nomem:
	batch_free(b);
	return ENOMEM;
}

static int
odoo_send(void *drv, struct relay_job *const *jobs, size_t n, const struct relay_route *route,
          relay_driver_done_fn cb, void *arg)
{
	unsigned rows;
	int64_t wait;

	if (n == 0)
		return -RELAY_EINVAL;
	relay_route_batch(route, &rows, &wait);
	if (n == 1)
		return start_one(drv, jobs[0], route, cb, arg);
	if (rows < n || relay_route_op(route) != RELAY_OP_UPSERT)
		return -RELAY_EINVAL;
	return start_batch(drv, jobs, n, route, cb, arg);
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

/* ---- reads (a route's confirm) ---- */

struct read {
	relay_driver_read_fn cb;
	void *arg;
};

static void
read_done(struct relay_odoo_result *res, void *arg)
{
	struct read *rd = arg;

	rd->cb(&res->outcome, res->request,
	       res->outcome.klass == RELAY_CLASS_DONE ? res->outcome.result : NULL, rd->arg);
	free(rd);
}

static int
odoo_read(void *drv, const char *model, json_t *ids, json_t *fields, relay_driver_read_fn cb,
          void *arg)
{
	struct odoo_dest *od = drv;
	struct read *rd;
	json_t *named;
	int rc;

	if (!json_is_array(ids) || !json_is_array(fields) || !cb)
		return -RELAY_EINVAL;
	if (!(rd = malloc(sizeof(*rd))))
		return ENOMEM;
	rd->cb = cb;
	rd->arg = arg;
	if (!(named = json_pack("{s:O}", "fields", fields)))
		rc = ENOMEM;
	else
		rc = relay_odoo_call(od->client, model, "read", ids, named, read_done, rd);
	json_decref(named); /* the client keeps a reference of its own */
	if (rc)
		free(rd);
	return rc;
}

/* ---- instances ---- */

static void
odoo_destroy(void *drv)
{
	struct odoo_dest *od = drv;

	if (!od)
		return;
	relay_odoo_free(od->client); /* batches in a call report cancelled */
	/* after the client: its cancelled searches still use the cache */
	while (!LIST_EMPTY(&od->waiting)) {
		struct batch *b = LIST_FIRST(&od->waiting);
		struct relay_outcome c = { .klass = RELAY_CLASS_TRANSIENT,
		                           .transport = RELAY_TRANSPORT_CANCELLED };

		LIST_REMOVE(b, link);
		b->first = 1;
		report_rest(b, &c, NULL);
	}
	relay_lookup_free(od->lookup);
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
	LIST_INIT(&od->waiting);
	/* Batch ids: short, and unlikely to repeat across instances and
	 * restarts (they start from the wall clock's seconds). */
	od->batch_seq = (uint64_t)(relay_wall_ms() / 1000 % 100000) * 10000;
	if (!(od->module = strdup(conf->odoo.module ? conf->odoo.module : "odoo_relay")) ||
	    !(od->database = strdup(conf->odoo.database ? conf->odoo.database : ""))) {
		rc = ENOMEM;
		goto fail;
	}
	if ((rc = relay_lookup_new(&od->lookup)) ||
	    (rc = relay_odoo_new(base, &conf->odoo, &od->client)))
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
	.max_batch = RELAY_ROUTE_BATCH_ROWS_MAX,
	.create = odoo_create,
	.destroy = odoo_destroy,
	.probe = odoo_probe,
	.send = odoo_send,
	.protocol = odoo_protocol,
	.read = odoo_read,
};

const struct relay_driver_ops *
relay_driver_for(enum relay_dest_kind kind)
{
	switch (kind) {
	case RELAY_DEST_ODOO:
		return &relay_driver_odoo;
	case RELAY_DEST_HTTP:
		return &relay_driver_http;
	}
	return NULL;
}
