/*
 * What a route needs to bring orders into Odoo, compiled (pure, no I/O):
 *
 *  - "find" value specs: a relation found at delivery time by fields of
 *    another model (products by SKU), resolved by the Odoo driver through
 *    lookup.h; route_find_compile gives the normalised find object the
 *    mapping engine copies into each plan (relay_plan.finds).
 *  - "then": follow-up calls on the record just written, each only when a
 *    field of the record (read first) holds one of the given values.
 *  - "warnings": what a load() warning does to the row that got it.
 *  - "refuse": the pre-read that recognises updates Odoo would refuse
 *    (a locked record, lines removed from a confirmed one).
 *
 * The contract is in include/odoo_relay/route.h (schema) and route_int.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "odoo_relay/error.h"
#include "odoo_relay/jsonptr.h"
#include "odoo_relay/route.h"
#include "odoo_relay/schema.h"
#include "route_int.h"

/* [A-Za-z_][A-Za-z0-9_]*: a field or method name. */
static int
name_ok(const char *s)
{
	if (!s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
		return 0;
	return route_valid_chars(s, "_");
}

static int
model_ok(const char *s)
{
	return s && s[0] && s[0] != '.' && route_valid_chars(s, "_.");
}

int
route_find_compile(struct relay_schema *s, const json_t *spec, const char *what, json_t **out)
{
	static const char *const keys[] = { "model", "where", "multiple", "order", "active_test",
	                                    "company_id", "cache_s", NULL };
	static const struct relay_schema_enum multiple[] = {
		{ "fail", 0 }, { "first", 1 }, { NULL, 0 },
	};
	const json_t *f = json_object_get(spec, "find"), *where, *ptr;
	const char *model = NULL, *order = NULL, *field;
	int64_t company = 0, cache_s = RELAY_FIND_CACHE_S;
	int active = 1, first = 0, rc;
	size_t mark;
	json_t *o;

	*out = NULL;
	mark = relay_schema_push(s, what);
	if (!json_is_object(f)) {
		rc = relay_schema_fail_at(s, f, spec, "%s.find: expected an object with model and where", what);
		goto out;
	}
	relay_schema_push(s, "find");
	if ((rc = relay_schema_keys(s, f, keys, NULL)) != 0 ||
	    (rc = relay_schema_string(s, f, "model", 1, &model)) != 0 ||
	    (rc = relay_schema_enum(s, f, "multiple", 0, multiple, "policy", &first)) != 0 ||
	    (rc = relay_schema_string(s, f, "order", 0, &order)) != 0 ||
	    (rc = relay_schema_bool(s, f, "active_test", &active)) != 0 ||
	    (rc = relay_schema_int(s, f, "company_id", 1, INT32_MAX, &company)) != 0 ||
	    (rc = relay_schema_int(s, f, "cache_s", 0, 86400, &cache_s)) != 0)
		goto out;
	if (!model_ok(model)) {
		rc = relay_schema_fail_at(s, json_object_get(f, "model"), f,
		                          "%s.find.model: not a model name (like \"product.product\")", what);
		goto out;
	}
	where = json_object_get(f, "where");
	if (!json_is_object(where) || json_object_size(where) != 1) {
		rc = relay_schema_fail_at(s, where ? where : f, where ? f : NULL,
		                          "%s.find.where: expected an object of one field and "
		                          "the pointer to its value ({\"default_code\": \"/sku\"})",
		                          what);
		goto out;
	}
	field = json_object_iter_key(json_object_iter((json_t *)where));
	ptr = json_object_get(where, field);
	if (!name_ok(field)) {
		rc = relay_schema_fail_at(s, ptr, where, "%s.find.where: %s is not a field name", what, field);
		goto out;
	}
	if (!json_is_string(ptr) || json_string_value(ptr)[0] != '/' ||
	    !relay_jsonptr_valid(json_string_value(ptr))) {
		rc = relay_schema_fail_at(s, ptr, where, "%s.find.where.%s: expected a JSON pointer "
		                          "(\"/sku\")", what, field);
		goto out;
	}
	if (first && !order) {
		rc = relay_schema_fail_at(s, json_object_get(f, "multiple"), f, "%s.find.multiple: \"first\" "
		                          "needs an explicit \"order\" (\"id asc\"): the first of "
		                          "an unordered search is a guess", what);
		goto out;
	}
	o = json_pack("{s:s,s:s,s:s,s:b,s:b,s:I,s:s?}", "model", model, "field", field,
	              "pointer", json_string_value(ptr), "first", first, "active_test", active,
	              "cache_ms", (json_int_t)cache_s * 1000, "order", order);
	if (!o) {
		rc = ENOMEM;
		goto out;
	}
	if (company && json_object_set_new(o, "company_id", json_integer(company))) {
		json_decref(o);
		rc = ENOMEM;
		goto out;
	}
	*out = o;
out:
	relay_schema_pop(s, mark);
	return rc;
}

/* One step of "then": {"call", "when": {field: [values]}, "context"}. */
static int
step_compile(struct relay_schema *s, const json_t *v, const json_t *parent, json_t *steps)
{
	static const char *const keys[] = { "call", "when", "context", NULL };
	const char *method = NULL, *field;
	json_t *when, *vals, *ctx = NULL, *x;
	size_t i;
	int rc;

	if (!json_is_object(v))
		return relay_schema_fail_at(s, v, parent, "expected an object with call and when");
	if ((rc = relay_schema_keys(s, v, keys, NULL)) != 0 ||
	    (rc = relay_schema_string(s, v, "call", 1, &method)) != 0 ||
	    (rc = relay_schema_object(s, v, "context", 0, &ctx)) != 0)
		return rc;
	if (method[0] == '_' || !name_ok(method))
		return relay_schema_fail_at(s, json_object_get(v, "call"), v, "call: not a public "
		                            "method name");
	when = json_object_get(v, "when");
	if (!json_is_object(when) || json_object_size(when) != 1)
		return relay_schema_fail_at(s, when ? when : v, when ? v : NULL, "when: expected "
		                            "one field and the values that allow the call "
		                            "({\"state\": [\"draft\", \"sent\"]}): a step runs only "
		                            "when the record is in such a state");
	field = json_object_iter_key(json_object_iter(when));
	vals = json_object_get(when, field);
	if (!name_ok(field))
		return relay_schema_fail_at(s, vals, when, "when: %s is not a field name", field);
	if (!json_is_array(vals) || json_array_size(vals) == 0)
		return relay_schema_fail_at(s, vals, when, "when.%s: expected a non-empty array of "
		                            "values", field);
	json_array_foreach(vals, i, x) {
		if (!json_is_string(x) && !json_is_number(x) && !json_is_boolean(x))
			return relay_schema_fail_at(s, x, vals, "when.%s[%zu]: expected a scalar",
			                            field, i);
	}
	x = json_pack("{s:s,s:s,s:O,s:O?}", "call", method, "field", field, "values", vals,
	              "context", ctx);
	return !x || json_array_append_new(steps, x) ? ENOMEM : 0;
}

static int
then_compile(struct relay_schema *s, const json_t *route, struct relay_route *r)
{
	const json_t *v = json_object_get(route, "then");
	size_t i, mark;
	int rc = 0;

	if (!v)
		return 0;
	if (r->op != RELAY_OP_UPSERT)
		return relay_schema_fail_at(s, v, route, "then: follow-up steps run on the record "
		                            "an upsert wrote: use an upsert route");
	if (!(r->then = json_array()))
		return ENOMEM;
	mark = relay_schema_push(s, "then");
	if (json_is_object(v)) {
		rc = step_compile(s, v, route, r->then);
	} else if (json_is_array(v) && json_array_size(v) > 0) {
		for (i = 0; i < json_array_size(v) && rc == 0; i++) {
			size_t m = relay_schema_push_index(s, i);

			rc = step_compile(s, json_array_get(v, i), v, r->then);
			relay_schema_pop(s, m);
		}
	} else {
		rc = relay_schema_fail_at(s, v, route, "expected a step or a non-empty array of "
		                          "steps");
	}
	relay_schema_pop(s, mark);
	return rc;
}

static int
refuse_compile(struct relay_schema *s, const json_t *route, struct relay_route *r)
{
	static const char *const keys[] = { "locked_field", "confirmed", "line_model",
	                                    "removed_lines", "quantity_field", NULL };
	static const struct relay_schema_enum removed[] = {
		{ "fail", 0 }, { "zero", 1 }, { NULL, 0 },
	};
	const json_t *v = json_object_get(route, "refuse");
	const char *locked = "locked", *line_model = NULL, *qty = "product_uom_qty";
	json_t *confirmed = NULL, *x;
	int zero = 0, rc;
	size_t mark, i;

	if (!v)
		return 0;
	if (r->op != RELAY_OP_UPSERT)
		return relay_schema_fail_at(s, v, route, "refuse: for upsert routes only");
	if (!json_is_object(v))
		return relay_schema_fail_at(s, v, route, "refuse: expected an object");
	mark = relay_schema_push(s, "refuse");
	if ((rc = relay_schema_keys(s, v, keys, NULL)) != 0 ||
	    (rc = relay_schema_string(s, v, "locked_field", 0, &locked)) != 0 ||
	    (rc = relay_schema_array(s, v, "confirmed", 0, &confirmed)) != 0 ||
	    (rc = relay_schema_string(s, v, "line_model", r->n_lines > 0, &line_model)) != 0 ||
	    (rc = relay_schema_enum(s, v, "removed_lines", 0, removed, "policy", &zero)) != 0 ||
	    (rc = relay_schema_string(s, v, "quantity_field", 0, &qty)) != 0)
		goto out;
	if (!name_ok(locked) || !name_ok(qty) || (line_model && !model_ok(line_model))) {
		rc = relay_schema_fail_at(s, v, route, "not a field or model name");
		goto out;
	}
	json_array_foreach(confirmed, i, x) {
		if (!json_is_string(x)) {
			rc = relay_schema_fail_at(s, x, confirmed, "confirmed[%zu]: expected a state "
			                          "name", i);
			goto out;
		}
	}
	r->refuse = json_pack("{s:s,s:o,s:s?,s:b,s:s,s:s}", "locked_field", locked, "confirmed",
	                      confirmed ? json_incref(confirmed) : json_pack("[s]", "sale"),
	                      "line_model", line_model, "zero", zero, "quantity_field", qty,
	                      "line_field", r->n_lines ? r->lines[0].field : "");
	if (!r->refuse)
		rc = ENOMEM;
out:
	relay_schema_pop(s, mark);
	return rc;
}

int
route_order_compile(struct relay_schema *s, const json_t *route, struct relay_route *r)
{
	static const struct relay_schema_enum warnings[] = {
		{ "record", 0 }, { "fail", 1 }, { NULL, 0 },
	};
	int rc;

	if ((rc = then_compile(s, route, r)) != 0 || (rc = refuse_compile(s, route, r)) != 0)
		return rc;
	if (json_object_get(route, "warnings") && r->op != RELAY_OP_UPSERT)
		return relay_schema_fail_at(s, json_object_get(route, "warnings"), route,
		                            "warnings: for upsert routes only (load() warnings)");
	return relay_schema_enum(s, route, "warnings", 0, warnings, "policy", &r->warnings_fail);
}

const json_t *
relay_route_then(const struct relay_route *r)
{
	return r->then;
}

const json_t *
relay_route_refuse(const struct relay_route *r)
{
	return r->refuse;
}

int
relay_route_warnings_fail(const struct relay_route *r)
{
	return r->warnings_fail;
}
