/*
 * Around an order's load(): finds into cells, warnings, the guard before,
 * the follow-up steps after (contract in include/odoo_relay/odoo_order.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "odoo_relay/error.h"
#include "odoo_relay/jsonptr.h"
#include "odoo_relay/odoo_order.h"
#include "odoo_relay/utf8.h"
#include "call_fail_int.h"

static int value_in(const json_t *v, const json_t *values);

const char *
relay_order_apply_finds(json_t *load_data, const json_t *finds)
{
	const json_t *f;
	size_t i;
	char text[32];

	json_array_foreach(finds, i, f) {
		json_t *row = json_array_get(load_data, (size_t)json_integer_value(json_object_get(f, "row")));
		const json_t *id = json_object_get(f, "id");

		const json_t *xid = json_object_get(f, "xmlid");
		int as_xmlid = json_is_true(json_object_get(f, "as_xmlid"));

		if (!json_is_integer(id) || (as_xmlid && !json_is_string(xid)))
			return json_string_value(json_object_get(f, "error"))
			       ? json_string_value(json_object_get(f, "error")) : "not resolved";
		snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT, json_integer_value(id));
		json_array_set_new(row, (size_t)json_integer_value(json_object_get(f, "col")),
		                   as_xmlid ? json_copy((json_t *)xid) : json_string(text));
	}
	return NULL;
}

char *
relay_order_load_warnings(const json_t *load_result, size_t from, size_t to)
{
	const json_t *msgs = json_object_get(load_result, "messages"), *m;
	char *out = NULL;
	size_t i;

	json_array_foreach(msgs, i, m) {
		const json_t *rows = json_object_get(m, "rows");
		json_int_t a = json_integer_value(json_object_get(rows, "from"));
		json_int_t b = json_integer_value(json_object_get(rows, "to"));
		const char *text = json_string_value(json_object_get(m, "message"));
		char *next;

		if (!json_is_string(json_object_get(m, "type")) ||
		    strcmp(json_string_value(json_object_get(m, "type")), "warning") != 0 || !text)
			continue;
		/* a warning naming no row concerns every row of the call */
		if (rows && (b < 0 || (size_t)b < from || (a >= 0 && (size_t)a >= to)))
			continue;
		if (asprintf(&next, "%s%s%s", out ? out : "", out ? "; " : "", text) < 0)
			break;
		free(out);
		out = next;
	}
	return out;
}

json_int_t
relay_order_load_id(const json_t *load_result, size_t k)
{
	const json_t *id = json_array_get(json_object_get(load_result, "ids"), k);

	/* 0 and negative numbers name no record: a step must never get them */
	return json_is_integer(id) && json_integer_value(id) > 0 ? json_integer_value(id) : 0;
}

json_int_t
relay_order_load_row_id(const json_t *load_result, size_t k, size_t records, char *why,
                        size_t n)
{
	const json_t *ids = json_object_get(load_result, "ids"), *id;
	json_int_t got;
	char text[64];

	if (!json_is_array(ids)) {
		snprintf(why, n, "load answered no list of record ids: the record of this row is "
		         "not known");
		return 0;
	}
	if (json_array_size(ids) != records) {
		snprintf(why, n, "load answered %zu record ids for %zu records: which id is whose "
		         "is not known", json_array_size(ids), records);
		return 0;
	}
	id = json_array_get(ids, k);
	if ((got = relay_order_load_id(load_result, k)) > 0)
		return got;
	if (relay_json_scalar_text(id, text, sizeof(text)) != 0)
		snprintf(text, sizeof(text), "%s", json_is_null(id) ? "null" : "not a number");
	snprintf(why, n, "load answered no record id for this row (%s in its place)", text);
	return 0;
}

json_int_t
relay_order_xmlid_res_id(const json_t *row, const char *module, char *why, size_t n)
{
	const json_t *id = json_object_get(row, "res_id");
	char text[64];

	if (json_is_integer(id) && json_integer_value(id) > 0)
		return json_integer_value(id);
	if (!id)
		snprintf(text, sizeof(text), "no res_id");
	else if (json_is_string(id))
		relay_utf8_snprintf(text, sizeof(text), "res_id \"%s\"", json_string_value(id));
	else if (relay_json_scalar_text(id, text + 7, sizeof(text) - 7) == 0)
		memcpy(text, "res_id ", 7);
	else
		snprintf(text, sizeof(text), "res_id %s", json_is_null(id) ? "null" : "not a number");
	relay_utf8_snprintf(why, n, "ir.model.data answered %s for external id %s.%s: not a "
	                    "record id", text, module ? module : "?",
	                    json_is_string(json_object_get(row, "name"))
	                    ? json_string_value(json_object_get(row, "name")) : "?");
	return 0;
}

/* ---- the follow-up steps: one call after the other ---- */

struct order_op {
	struct relay_odoo *client;
	relay_order_fn cb;
	void *arg;
	char *model;
	json_int_t id;
	json_t *context;
	/* steps */
	json_t *steps;
	size_t step;
	char *note;
};

static void
op_free(struct order_op *op)
{
	free(op->model);
	json_decref(op->context);
	json_decref(op->steps);
	free(op->note);
	free(op);
}

static void
op_end(struct order_op *op, const struct relay_outcome *failure, const char *request)
{
	struct relay_outcome o;
	char *msg = NULL;

	/* A failure says which step and what state it found first. */
	if (failure && op->note && failure->klass != RELAY_CLASS_DONE &&
	    asprintf(&msg, "%s: %s", op->note, failure->message ? failure->message
	             : failure->error_name ? failure->error_name : "failed") >= 0) {
		o = *failure;
		o.message = msg;
		op->cb(op->arg, &o, request, op->note);
		free(msg);
	} else {
		op->cb(op->arg, failure, request, op->note);
	}
	op_free(op);
}

static void
op_fail(struct order_op *op, enum relay_class klass, const char *name, const char *why)
{
	struct relay_outcome o = { 0 };

	if (relay_outcome_set(&o, klass, RELAY_SCOPE_NONE, name, why, NULL))
		o = (struct relay_outcome){ .klass = RELAY_CLASS_TRANSIENT,
		                            .transport = RELAY_TRANSPORT_ERROR };
	op_end(op, &o, NULL);
	relay_outcome_clear(&o);
}

static void
note_add(struct order_op *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
note_add(struct order_op *op, const char *fmt, ...)
{
	va_list ap;
	char *part = NULL, *next = NULL;

	va_start(ap, fmt);
	if (vasprintf(&part, fmt, ap) < 0)
		part = NULL;
	va_end(ap);
	if (!part)
		return;
	if (asprintf(&next, "%s%s%s", op->note ? op->note : "", op->note ? "; " : "", part) >= 0) {
		free(op->note);
		op->note = next;
	}
	free(part);
}

/* The text of a read value: scalars as they are, a many2one's name. */
void
relay_order_value_text(const json_t *v, char *buf, size_t n)
{
	if (json_is_array(v))
		v = json_array_get(v, 1);
	if (json_is_string(v))
		snprintf(buf, n, "%s", json_string_value(v));
	else if (relay_json_scalar_text(v, buf, n) != 0)
		snprintf(buf, n, "?");
}

int
relay_order_step_allows(const json_t *steps, size_t k, const json_t *v)
{
	return value_in(v, json_object_get(json_array_get(steps, k), "values"));
}

static int
value_in(const json_t *v, const json_t *values)
{
	const json_t *x;
	size_t i;

	if (json_is_array(v))
		v = json_array_get(v, 0); /* many2one: its id */
	json_array_foreach(values, i, x) {
		if (json_equal((json_t *)v, (json_t *)x))
			return 1;
		if (json_is_number(v) && json_is_number(x) &&
		    json_number_value(v) == json_number_value(x))
			return 1;
	}
	return 0;
}

static json_t *
step_context(const struct order_op *op, const json_t *step)
{
	const json_t *own = json_object_get(step, "context");
	json_t *ctx;

	if (!op->context && !own)
		return NULL;
	ctx = op->context ? json_deep_copy(op->context) : json_object();
	if (ctx && own)
		json_object_update(ctx, (json_t *)own);
	return ctx;
}

/* ---- follow-up steps ---- */

static int step_read(struct order_op *op);

static void
step_called(struct relay_odoo_result *res, void *arg)
{
	struct order_op *op = arg;
	const json_t *step = json_array_get(op->steps, op->step);
	int rc;

	if (res->outcome.klass != RELAY_CLASS_DONE) {
		note_add(op, "%s failed", json_string_value(json_object_get(step, "call")));
		op_end(op, &res->outcome, res->request);
		return;
	}
	note_add(op, "called");
	op->step++;
	if (op->step >= json_array_size(op->steps)) {
		op_end(op, NULL, NULL);
		return;
	}
	if ((rc = step_read(op)) != 0)
		op_fail(op, RELAY_CLASS_TRANSIENT, "relay.call", relay_strerror(rc));
}

/* The current step's call, its state allowing it. */
static int
step_call(struct order_op *op)
{
	const json_t *step = json_array_get(op->steps, op->step);
	json_t *named = step_context(op, step), *ids = json_pack("[I]", op->id);
	int rc;

	if (named)
		named = json_pack("{s:o}", "context", named);
	rc = ids ? relay_odoo_call(op->client, op->model,
	                           json_string_value(json_object_get(step, "call")), ids, named,
	                           step_called, op) : ENOMEM;
	json_decref(ids);
	json_decref(named);
	return rc;
}

static void
step_state(struct relay_odoo_result *res, void *arg)
{
	struct order_op *op = arg;
	const json_t *step = json_array_get(op->steps, op->step);
	const char *call = json_string_value(json_object_get(step, "call"));
	const char *field = json_string_value(json_object_get(step, "field"));
	const json_t *rec, *v;
	char text[128];
	int rc;

	if (res->outcome.klass != RELAY_CLASS_DONE) {
		op_end(op, &res->outcome, res->request);
		return;
	}
	rec = json_array_get(res->outcome.result, 0);
	if (!rec) {
		char why[256];

		snprintf(why, sizeof(why), "%s %" JSON_INTEGER_FORMAT " is gone: cannot run %s",
		         op->model, op->id, call);
		op_fail(op, RELAY_CLASS_PERMANENT, "relay.step", why);
		return;
	}
	v = json_object_get(rec, field);
	relay_order_value_text(v, text, sizeof(text));
	if (!value_in(v, json_object_get(step, "values"))) {
		/* Already past that state (a replay, a duplicate): nothing to do. */
		note_add(op, "%s skipped: %s %s", call, field, text);
		op->step++;
		if (op->step >= json_array_size(op->steps)) {
			op_end(op, NULL, NULL);
			return;
		}
		if ((rc = step_read(op)) != 0)
			op_fail(op, RELAY_CLASS_TRANSIENT, "relay.call", relay_strerror(rc));
		return;
	}
	note_add(op, "%s: %s %s", call, field, text);
	if ((rc = step_call(op)) != 0)
		op_fail(op, RELAY_CLASS_TRANSIENT, "relay.call", relay_strerror(rc));
}

static int
step_read(struct order_op *op)
{
	const json_t *step = json_array_get(op->steps, op->step);
	json_t *ids = json_pack("[I]", op->id);
	json_t *named = json_pack("{s:[s]}", "fields",
	                          json_string_value(json_object_get(step, "field")));
	json_t *ctx = step_context(op, step);
	int rc;

	if (named && ctx)
		json_object_set_new(named, "context", ctx);
	else
		json_decref(ctx);
	rc = ids && named ? relay_odoo_call(op->client, op->model, "read", ids, named, step_state,
	                                    op) : ENOMEM;
	json_decref(ids);
	json_decref(named);
	return rc;
}

static struct order_op *
steps_op(struct relay_odoo *client, const char *model, json_int_t id, const json_t *steps,
         size_t first, const json_t *context, relay_order_fn cb, void *arg)
{
	struct order_op *op = calloc(1, sizeof(*op));

	if (!op)
		return NULL;
	op->client = client;
	op->cb = cb;
	op->arg = arg;
	op->id = id;
	op->step = first;
	op->model = strdup(model);
	op->steps = json_deep_copy(steps);
	if (context)
		op->context = json_deep_copy(context);
	if (!op->model || !op->steps || (context && !op->context)) {
		op_free(op);
		return NULL;
	}
	return op;
}

int
relay_order_steps_call(struct relay_odoo *client, const char *model, json_int_t id,
                       const json_t *steps, const json_t *context, const json_t *value,
                       relay_order_fn cb, void *arg)
{
	struct order_op *op;
	char text[128];
	int rc;

	if (id <= 0 || !relay_order_step_allows(steps, 0, value))
		return -RELAY_EINVAL;
	if (!(op = steps_op(client, model, id, steps, 0, context, cb, arg)))
		return ENOMEM;
	relay_order_value_text(value, text, sizeof(text));
	note_add(op, "%s: %s %s", json_string_value(json_object_get(json_array_get(steps, 0), "call")),
	         json_string_value(json_object_get(json_array_get(steps, 0), "field")), text);
	if ((rc = step_call(op)) != 0)
		op_free(op);
	return rc;
}

int
relay_order_steps(struct relay_odoo *client, const char *model, json_int_t id,
                  const json_t *steps, size_t first, const json_t *context, relay_order_fn cb,
                  void *arg)
{
	struct order_op *op;
	int rc;

	if (id <= 0 || first >= json_array_size(steps))
		return -RELAY_EINVAL;
	if (!(op = steps_op(client, model, id, steps, first, context, cb, arg)))
		return ENOMEM;
	if ((rc = step_read(op)) != 0)
		op_free(op);
	return rc;
}

/* ---- the guard before the load: reads once for all the records of a call ---- */

struct guard_many {
	struct relay_odoo *client;
	relay_order_many_fn cb;
	void *arg;
	char *model, *module;
	json_t *refuse, *context;
	json_t *recs;              /* per plan: {"name", "ours": {...}, "lines_sent", "res_id"?,
	                              "removed": [[id, xid], ...]} */
	json_t *verdicts;          /* per plan: null, {"refused": why} or {"note": text} */
	size_t write_at;           /* the next record whose removed lines go to 0 */
};

static void
gm_free(struct guard_many *g)
{
	free(g->model);
	free(g->module);
	json_decref(g->refuse);
	json_decref(g->context);
	json_decref(g->recs);
	json_decref(g->verdicts);
	free(g);
}

static void
gm_end(struct guard_many *g, const struct relay_outcome *failure, const char *request)
{
	g->cb(g->arg, failure, request, failure ? NULL : g->verdicts);
	gm_free(g);
}

static void gm_fail(struct guard_many *g, int rc);

/* Odoo answered the guard's call wrongly (why): permanent, and marked
 * unknown (no rule knows such an answer), as the load's answer without
 * ids is. */
static void
gm_bad_answer(struct guard_many *g, const struct relay_odoo_result *res, const char *why)
{
	struct relay_outcome o = { 0 };

	if (relay_outcome_set(&o, RELAY_CLASS_PERMANENT, RELAY_SCOPE_NONE, "odoo.ir_model_data",
	                      why, NULL)) {
		gm_fail(g, ENOMEM);
		return;
	}
	o.unknown = 1;
	o.http_status = res->outcome.http_status;
	gm_end(g, &o, res->request);
	relay_outcome_clear(&o);
}

static void
gm_fail(struct guard_many *g, int rc)
{
	struct relay_outcome o = { 0 };

	relay_call_failed(&o, rc);
	gm_end(g, &o, NULL);
	relay_outcome_clear(&o);
}

/* A call of the guard answered: 0 when it did its work, or 1 when it
 * failed and the guard has ended with its outcome (g is gone). */
static int
gm_call_failed(struct guard_many *g, struct relay_odoo_result *res)
{
	if (res->outcome.klass == RELAY_CLASS_DONE)
		return 0;
	gm_end(g, &res->outcome, res->request);
	return 1;
}

/* Calls method of model on ids (may be NULL) with named (NULL: out of
 * memory), answered to cb; takes neither reference. A call that cannot be
 * made ends the guard. */
static void
gm_call(struct guard_many *g, const char *model, const char *method, json_t *ids,
        json_t *named, relay_odoo_cb cb)
{
	int rc = named ? relay_odoo_call(g->client, model, method, ids, named, cb, g) : ENOMEM;

	if (rc)
		gm_fail(g, rc);
}

static json_t *
gm_context(const struct guard_many *g, json_t *named)
{
	if (named && g->context)
		json_object_set(named, "context", g->context);
	return named;
}

static void
gm_verdict(struct guard_many *g, size_t i, const char *key, const char *text)
{
	json_array_set_new(g->verdicts, i, json_pack("{s:s}", key, text));
}

static int gm_write_next(struct guard_many *g);

static void
gm_written(struct relay_odoo_result *res, void *arg)
{
	struct guard_many *g = arg;
	const json_t *rec = json_array_get(g->recs, g->write_at);
	char note[120];
	int rc;

	if (gm_call_failed(g, res))
		return;
	snprintf(note, sizeof(note), "%zu removed line%s set to quantity 0",
	         json_array_size(json_object_get(rec, "removed")),
	         json_array_size(json_object_get(rec, "removed")) == 1 ? "" : "s");
	gm_verdict(g, g->write_at, "note", note);
	g->write_at++;
	if ((rc = gm_write_next(g)) == 1)
		gm_end(g, NULL, NULL);
	else if (rc)
		gm_fail(g, rc);
}

/* The next record with lines to set to 0: 0 (a write went), 1 (none
 * left), or an error. */
static int
gm_write_next(struct guard_many *g)
{
	for (; g->write_at < json_array_size(g->recs); g->write_at++) {
		const json_t *rec = json_array_get(g->recs, g->write_at), *x;
		json_t *cmds, *named, *ids;
		size_t k;
		int rc;

		if (json_array_size(json_object_get(rec, "removed")) == 0 ||
		    !json_is_null(json_array_get(g->verdicts, g->write_at)))
			continue;
		cmds = json_array();
		json_array_foreach(json_object_get(rec, "removed"), k, x)
			json_array_append_new(cmds, json_pack("[i,O,{s:i}]", 1, json_array_get(x, 0),
			                      json_string_value(json_object_get(g->refuse,
			                      "quantity_field")), 0));
		named = gm_context(g, json_pack("{s:{s:o}}", "vals", json_string_value(
		                   json_object_get(g->refuse, "line_field")), cmds));
		ids = json_pack("[O]", json_object_get(rec, "res_id"));
		rc = named && ids ? relay_odoo_call(g->client, g->model, "write", ids, named,
		                                    gm_written, g) : ENOMEM;
		json_decref(named);
		json_decref(ids);
		return rc;
	}
	return 1;
}

static void
gm_lines(struct relay_odoo_result *res, void *arg)
{
	struct guard_many *g = arg;
	json_t *names, *rec;
	const json_t *row, *lid;
	size_t i, k;
	int zero = json_is_true(json_object_get(g->refuse, "zero")), rc;

	if (gm_call_failed(g, res))
		return;
	json_array_foreach(res->outcome.result, i, row) {
		char why[300];

		if (relay_order_xmlid_res_id(row, g->module, why, sizeof(why)) == 0) {
			gm_bad_answer(g, res, why);
			return;
		}
	}
	names = json_object();
	json_array_foreach(res->outcome.result, i, row) {
		char key[32], *full = NULL;

		snprintf(key, sizeof(key), "%" JSON_INTEGER_FORMAT,
		         json_integer_value(json_object_get(row, "res_id")));
		if (asprintf(&full, "%s.%s", g->module,
		             json_string_value(json_object_get(row, "name"))) >= 0)
			json_object_set_new(names, key, json_string(full));
		free(full);
	}
	json_array_foreach(g->recs, i, rec) {
		json_t *removed = json_array();

		json_array_foreach(json_object_get(rec, "lines"), k, lid) {
			char key[32];
			const char *xid;

			snprintf(key, sizeof(key), "%" JSON_INTEGER_FORMAT, json_integer_value(lid));
			xid = json_string_value(json_object_get(names, key));
			if (xid && !json_object_get(json_object_get(rec, "ours"), xid))
				json_array_append_new(removed, json_pack("[O,s]", lid, xid));
		}
		json_object_set_new(rec, "removed", removed);
		if (json_array_size(removed) && !zero) {
			char why[1024];
			int off = snprintf(why, sizeof(why), "%zu line%s of confirmed %s %s.%s %s no "
			                   "longer in the event (", json_array_size(removed),
			                   json_array_size(removed) == 1 ? "" : "s", g->model, g->module,
			                   json_string_value(json_object_get(rec, "name")),
			                   json_array_size(removed) == 1 ? "is" : "are");
			for (k = 0; k < json_array_size(removed) && k < 5 && off > 0 &&
			            (size_t)off < sizeof(why); k++)
				off += snprintf(why + off, sizeof(why) - (size_t)off, "%s%s", k ? ", " : "",
				                json_string_value(json_array_get(json_array_get(removed, k), 1)));
			if (off > 0 && (size_t)off < sizeof(why))
				snprintf(why + off, sizeof(why) - (size_t)off, "): Odoo does not remove "
				         "lines of a confirmed order (set \"removed_lines\": \"zero\" to set "
				         "their quantity to 0 instead)");
			relay_utf8_trim(why);
			gm_verdict(g, i, "refused", why);
		}
	}
	json_decref(names);
	g->write_at = 0;
	if ((rc = gm_write_next(g)) == 1)
		gm_end(g, NULL, NULL);
	else if (rc)
		gm_fail(g, rc);
}

static void
gm_read(struct relay_odoo_result *res, void *arg)
{
	struct guard_many *g = arg;
	const char *locked = json_string_value(json_object_get(g->refuse, "locked_field"));
	const char *line_field = json_string_value(json_object_get(g->refuse, "line_field"));
	const char *line_model = json_string_value(json_object_get(g->refuse, "line_model"));
	json_t *all_lines, *rec, *named;
	const json_t *row;
	size_t i, k;

	if (gm_call_failed(g, res))
		return;
	all_lines = json_array();
	json_array_foreach(g->recs, i, rec) {
		const json_t *found = NULL;
		char state[64], why[600];

		if (!json_object_get(rec, "res_id"))
			continue;
		json_array_foreach(res->outcome.result, k, row)
			if (json_equal(json_object_get(row, "id"), json_object_get(rec, "res_id")))
				found = row;
		if (!found)
			continue; /* gone meanwhile: the load creates it again */
		relay_order_value_text(json_object_get(found, "state"), state, sizeof(state));
		if (json_is_true(json_object_get(found, locked)) &&
		    json_is_true(json_object_get(rec, "lines_sent"))) {
			relay_utf8_snprintf(why, sizeof(why), "%s %s.%s is locked in Odoo (state %s): "
			                    "Odoo refuses any change of its lines' products, quantities "
			                    "and prices, even unchanged; unlock it in Odoo, then replay "
			                    "the event", g->model, g->module,
			                    json_string_value(json_object_get(rec, "name")), state);
			gm_verdict(g, i, "refused", why);
			continue;
		}
		if (!line_model || !line_field || !*line_field ||
		    !value_in(json_object_get(found, "state"), json_object_get(g->refuse, "confirmed")))
			continue;
		json_object_set(rec, "lines", json_object_get(found, line_field));
		json_array_extend(all_lines, json_object_get(found, line_field));
	}
	if (json_array_size(all_lines) == 0) {
		json_decref(all_lines);
		gm_end(g, NULL, NULL);
		return;
	}
	named = gm_context(g, json_pack("{s:[[s,s,s],[s,s,s],[s,s,o]],s:[s,s]}", "domain",
	                   "module", "=", g->module, "model", "=", line_model, "res_id", "in",
	                   all_lines, "fields", "name", "res_id"));
	gm_call(g, "ir.model.data", "search_read", NULL, named, gm_lines);
	json_decref(named);
}

static void
gm_found(struct relay_odoo_result *res, void *arg)
{
	struct guard_many *g = arg;
	const char *locked = json_string_value(json_object_get(g->refuse, "locked_field"));
	const char *line_field = json_string_value(json_object_get(g->refuse, "line_field"));
	json_t *ids, *rec, *named;
	const json_t *row;
	size_t i, k;

	if (gm_call_failed(g, res))
		return;
	/* a res_id that is no record id is never read, written nor taken for
	 * "the record is new" */
	json_array_foreach(res->outcome.result, k, row) {
		char why[300];

		if (relay_order_xmlid_res_id(row, g->module, why, sizeof(why)) == 0) {
			gm_bad_answer(g, res, why);
			return;
		}
	}
	ids = json_array();
	json_array_foreach(g->recs, i, rec) {
		json_array_foreach(res->outcome.result, k, row) {
			if (json_equal(json_object_get(row, "name"), json_object_get(rec, "name"))) {
				json_object_set(rec, "res_id", json_object_get(row, "res_id"));
				json_array_append(ids, json_object_get(row, "res_id"));
			}
		}
	}
	if (json_array_size(ids) == 0) {
		json_decref(ids);
		gm_end(g, NULL, NULL); /* all new: nothing Odoo could refuse */
		return;
	}
	named = gm_context(g, json_pack("{s:[s,s]}", "fields", "state", locked));
	if (named && line_field && *line_field)
		json_array_append_new(json_object_get(named, "fields"), json_string(line_field));
	gm_call(g, g->model, "read", ids, named, gm_read);
	json_decref(named);
	json_decref(ids);
}

int
relay_order_guard_many(struct relay_odoo *client, const struct relay_plan *const *plans,
                       size_t n, const json_t *refuse, const json_t *context,
                       relay_order_many_fn cb, void *arg)
{
	struct guard_many *g = calloc(1, sizeof(*g));
	const char *line_field = json_string_value(json_object_get(refuse, "line_field"));
	json_t *names = json_array(), *named = NULL;
	char col[160];
	int rc = ENOMEM;

	if (!g || !names || n == 0)
		goto fail;
	g->client = client;
	g->cb = cb;
	g->arg = arg;
	g->model = strdup(plans[0]->model);
	g->module = strdup(plans[0]->xmlid_module);
	g->refuse = json_deep_copy(refuse);
	g->recs = json_array();
	g->verdicts = json_array();
	if (context)
		g->context = json_deep_copy(context);
	if (!g->model || !g->module || !g->refuse || !g->recs || !g->verdicts ||
	    (context && !g->context))
		goto fail;
	snprintf(col, sizeof(col), "%s/id", line_field ? line_field : "");
	for (size_t p = 0; p < n; p++) {
		const struct relay_plan *plan = plans[p];
		json_t *ours = json_object();
		size_t c = (size_t)-1;
		int sent = 0;

		for (size_t i = 0; i < json_array_size(plan->load_fields); i++) {
			const char *f = json_string_value(json_array_get(plan->load_fields, i));

			if (strcmp(f, col) == 0)
				c = i;
			if (line_field && *line_field && strncmp(f, line_field, strlen(line_field)) == 0 &&
			    f[strlen(line_field)] == '/')
				sent = 1;
		}
		for (size_t i = 0; c != (size_t)-1 && i < json_array_size(plan->load_data); i++) {
			const char *x = json_string_value(json_array_get(json_array_get(plan->load_data,
			                                                                 i), c));
			if (x && *x)
				json_object_set_new(ours, x, json_true());
		}
		json_array_append_new(g->recs, json_pack("{s:s,s:o,s:b}", "name", plan->xmlid_name,
		                                         "ours", ours, "lines_sent", sent));
		json_array_append_new(g->verdicts, json_null());
		json_array_append_new(names, json_string(plan->xmlid_name));
	}
	named = gm_context(g, json_pack("{s:[[s,s,s],[s,s,s],[s,s,O]],s:[s,s]}", "domain",
	                   "module", "=", g->module, "model", "=", g->model, "name", "in", names,
	                   "fields", "name", "res_id"));
	rc = named ? relay_odoo_call(client, "ir.model.data", "search_read", NULL, named, gm_found,
	                             g) : ENOMEM;
	json_decref(named);
	json_decref(names);
	if (rc == 0)
		return 0;
	names = NULL;
fail:
	json_decref(names);
	if (g)
		gm_free(g);
	return rc;
}
