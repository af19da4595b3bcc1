/*
 * The route keys orders need (route_order.c): "find" specs compiled and
 * mapped into plan finds, "then", "refuse" and "warnings" compiled, and
 * their configuration errors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "check.h"
#include "odoo_relay/config.h"
#include "odoo_relay/error.h"
#include "odoo_relay/route.h"

static const char head[] =
	"{\"listen\": \"127.0.0.1:0\",\n"
	" \"sources\": {\"shop\": {\"verify\": {\"scheme\": \"none\"}, \"dedup\": {\"pointer\": \"/id\"}}},\n"
	" \"routes\": [\n  ";
static const char foot[] = "\n]}\n";

static int
compile(const char *route_text, struct relay_routes **out, struct relay_config_error *err)
{
	struct relay_config *cfg = NULL;
	size_t n = strlen(head) + strlen(route_text) + strlen(foot) + 1;
	char *text = malloc(n);
	int rc;

	memset(err, 0, sizeof(*err));
	*out = NULL;
	if (!text)
		return ENOMEM;
	snprintf(text, n, "%s%s%s", head, route_text, foot);
	rc = relay_config_loadb("test.json", text, strlen(text), &cfg, err);
	free(text);
	if (rc != 0)
		return rc;
	rc = relay_routes_compile(cfg, out, err);
	relay_config_free(cfg);
	return rc;
}

#define ORDER_HEAD "{\"name\": \"orders\", \"source\": \"shop\", \"operation\": \"upsert\", " \
	"\"model\": \"sale.order\", \"external_id\": \"o_{/id}\", " \
	"\"fields\": {\"client_order_ref\": \"{/name}\"}, "
#define LINES(prod) "\"lines\": {\"field\": \"order_line\", \"pointer\": \"/items\", " \
	"\"fields\": {\"id\": \"l_{/id}\", " prod ", \"product_uom_qty\": {\"pointer\": \"/q\"}}}"
#define FIND "\"product_id/.id\": {\"find\": {\"model\": \"product.product\", " \
	"\"where\": {\"default_code\": \"/sku\"}}}"

static void
test_find_maps_to_plan_finds(void)
{
	struct relay_routes *rs = NULL;
	struct relay_config_error err;
	struct relay_plan plan;
	char why[256];
	json_t *p;
	int rc;

	rc = compile(ORDER_HEAD LINES(FIND) ", \"then\": {\"call\": \"action_confirm\", "
	             "\"when\": {\"state\": [\"draft\", \"sent\"]}}, \"warnings\": \"fail\"}",
	             &rs, &err);
	CHECK_INT(rc, 0);
	if (rc) {
		fprintf(stderr, "%s\n", err.text);
		return;
	}
	const struct relay_route *r = relay_routes_find(rs, "orders");
	p = json_loads("{\"id\": 1, \"name\": \"S1\", \"items\": [{\"id\": 11, \"sku\": \"SKU-1\", "
	               "\"q\": 2}, {\"id\": 12, \"sku\": \"SKU-2\", \"q\": 1}]}", 0, NULL);
	CHECK_INT(relay_route_map(r, p, "m", &plan, why, sizeof(why)), 0);
	char *cols = json_dumps(plan.load_fields, JSON_COMPACT);
	CHECK_STR(cols, "[\"id\",\"client_order_ref\",\"order_line/id\",\"order_line/product_id/.id\","
	          "\"order_line/product_uom_qty\"]");
	free(cols);
	CHECK_INT(json_array_size(plan.finds), 2);
	json_t *f = json_array_get(plan.finds, 1);
	CHECK_INT(json_integer_value(json_object_get(f, "row")), 1);
	CHECK_INT(json_integer_value(json_object_get(f, "col")), 3);
	CHECK_STR(json_string_value(json_object_get(f, "value")), "SKU-2");
	CHECK_STR(json_string_value(json_object_get(f, "model")), "product.product");
	CHECK_STR(json_string_value(json_object_get(f, "field")), "default_code");
	CHECK(json_is_true(json_object_get(f, "active_test")));
	CHECK(json_is_false(json_object_get(f, "first")));
	CHECK_INT(json_integer_value(json_object_get(f, "cache_ms")), 300000);
	/* the cell waits for the driver */
	CHECK_STR(json_string_value(json_array_get(json_array_get(plan.load_data, 1), 3)), "");
	CHECK_INT(relay_route_warnings_fail(r), 1);
	CHECK_INT(json_array_size(relay_route_then(r)), 1);
	CHECK_STR(json_string_value(json_object_get(json_array_get(relay_route_then(r), 0), "call")),
	          "action_confirm");
	CHECK(relay_route_refuse(r) == NULL);
	relay_plan_clear(&plan);
	json_decref(p);

	relay_routes_free(rs);
	/* an external ID instead: "field/id" */
	rc = compile(ORDER_HEAD LINES("\"product_id/id\": {\"find\": {\"model\": \"product.product\", "
	             "\"where\": {\"default_code\": \"/sku\"}}}") "}", &rs, &err);
	CHECK_INT(rc, 0);
	r = relay_routes_find(rs, "orders");
	p = json_loads("{\"id\": 1, \"name\": \"S1\", \"items\": [{\"id\": 11, \"sku\": \"A\", "
	               "\"q\": 2}]}", 0, NULL);
	CHECK_INT(relay_route_map(r, p, "m", &plan, why, sizeof(why)), 0);
	CHECK(json_is_true(json_object_get(json_array_get(plan.finds, 0), "as_xmlid")));
	relay_plan_clear(&plan);
	json_decref(p);

	/* a SKU that is not a scalar is the event's fault, named by path */
	p = json_loads("{\"id\": 1, \"name\": \"S1\", \"items\": [{\"id\": 11, \"sku\": {}, "
	               "\"q\": 2}]}", 0, NULL);
	CHECK_INT(relay_route_map(r, p, "m", &plan, why, sizeof(why)), -RELAY_EINVAL);
	CHECK(strstr(why, "/items/0/sku") != NULL);
	json_decref(p);
	relay_routes_free(rs);
	/* a find among the record's own fields: row 0, and an absent optional
	 * value leaves the relation empty without a find */
	rc = compile("{\"name\": \"orders\", \"source\": \"shop\", \"operation\": \"upsert\", "
	             "\"model\": \"sale.order\", \"external_id\": \"o_{/id}\", \"fields\": "
	             "{\"client_order_ref\": \"{/name}\", \"partner_id/.id\": {\"find\": "
	             "{\"model\": \"res.partner\", \"where\": {\"email\": \"/email\"}, "
	             "\"company_id\": 1, \"active_test\": false}}, \"user_id/.id\": {\"find\": "
	             "{\"model\": \"res.users\", \"where\": {\"login\": \"/seller\"}}, "
	             "\"optional\": true}}}", &rs, &err);
	CHECK_INT(rc, 0);
	r = relay_routes_find(rs, "orders");
	p = json_loads("{\"id\": 1, \"name\": \"S1\", \"email\": \"a@b.c\"}", 0, NULL);
	CHECK_INT(relay_route_map(r, p, "m", &plan, why, sizeof(why)), 0);
	CHECK_INT(json_array_size(plan.finds), 1);
	f = json_array_get(plan.finds, 0);
	CHECK_INT(json_integer_value(json_object_get(f, "row")), 0);
	CHECK_INT(json_integer_value(json_object_get(f, "col")), 2);
	CHECK_INT(json_integer_value(json_object_get(f, "company_id")), 1);
	CHECK(json_is_false(json_object_get(f, "active_test")));
	CHECK_INT(json_array_size(plan.load_fields), 3); /* the optional one left out */
	relay_plan_clear(&plan);
	json_decref(p);

	relay_routes_free(rs);
}

static void
test_refuse_compiled(void)
{
	struct relay_routes *rs = NULL;
	struct relay_config_error err;
	unsigned rows = 0;
	int64_t wait = 0;
	int rc;

	rc = compile(ORDER_HEAD LINES(FIND) ", \"batch\": {\"max_rows\": 50}, \"refuse\": "
	             "{\"line_model\": \"sale.order.line\", \"removed_lines\": \"zero\"}}", &rs, &err);
	CHECK_INT(rc, 0);
	if (rc)
		return;
	const struct relay_route *r = relay_routes_find(rs, "orders");
	relay_route_batch(r, &rows, &wait);
	CHECK_INT(rows, 50); /* its reads are made once for a batch */
	const json_t *ref = relay_route_refuse(r);
	CHECK(json_is_true(json_object_get(ref, "zero")));
	CHECK_STR(json_string_value(json_object_get(ref, "locked_field")), "locked");
	CHECK_STR(json_string_value(json_object_get(ref, "line_field")), "order_line");
	CHECK_STR(json_string_value(json_array_get(json_object_get(ref, "confirmed"), 0)), "sale");
	relay_routes_free(rs);
}

static void
bad(const char *route_text, const char *needle)
{
	struct relay_routes *rs = NULL;
	struct relay_config_error err;
	int rc = compile(route_text, &rs, &err);

	CHECK_INT(rc, -RELAY_ECONFIG);
	CHECK(strstr(err.text, needle) != NULL);
	if (!strstr(err.text, needle))
		fprintf(stderr, "  got: %s\n", err.text);
	CHECK(err.line > 0);
	relay_routes_free(rs);
}

static void
test_errors(void)
{
	/* a find gives a database id: the column says so */
	bad(ORDER_HEAD LINES("\"product_id\": {\"find\": {\"model\": \"product.product\", "
	                     "\"where\": {\"default_code\": \"/sku\"}}}") "}",
	    "name the column \"product_id/.id\" or \"product_id/id\"");
	/* "/.id" without a find */
	bad(ORDER_HEAD LINES("\"product_id/.id\": {\"pointer\": \"/pid\"}") "}",
	    "give it a find");
	/* first without an order is a guess */
	bad(ORDER_HEAD LINES("\"product_id/.id\": {\"find\": {\"model\": \"product.product\", "
	                     "\"where\": {\"default_code\": \"/sku\"}, \"multiple\": \"first\"}}") "}",
	    "needs an explicit \"order\"");
	/* where: one field and a pointer */
	bad(ORDER_HEAD LINES("\"product_id/.id\": {\"find\": {\"model\": \"product.product\", "
	                     "\"where\": {\"default_code\": \"/sku\", \"name\": \"/n\"}}}") "}",
	    "expected an object of one field");
	bad(ORDER_HEAD LINES("\"product_id/.id\": {\"find\": {\"model\": \"product.product\", "
	                     "\"where\": {\"default_code\": \"sku\"}}}") "}",
	    "expected a JSON pointer");
	/* nothing beside a find but optional */
	bad(ORDER_HEAD LINES("\"product_id/.id\": {\"find\": {\"model\": \"product.product\", "
	                     "\"where\": {\"default_code\": \"/sku\"}}, \"default\": 1}") "}",
	    "a find takes only \"optional\"");
	/* then: a state to check */
	bad(ORDER_HEAD LINES(FIND) ", \"then\": {\"call\": \"action_confirm\"}}",
	    "a step runs only when the record is in such a state");
	bad(ORDER_HEAD LINES(FIND) ", \"then\": {\"call\": \"_private\", \"when\": {\"state\": "
	    "[\"draft\"]}}}", "not a public method name");
	/* refuse with lines needs the line model */
	bad(ORDER_HEAD LINES(FIND) ", \"refuse\": {}}", "line_model");
	bad(ORDER_HEAD LINES(FIND) ", \"warnings\": \"maybe\"}", "warnings");
	/* orders keys are for upserts */
	bad("{\"name\": \"w\", \"source\": \"shop\", \"operation\": \"write\", \"model\": "
	    "\"sale.order\", \"external_id\": \"o_{/id}\", \"fields\": {\"note\": \"{/n}\"}, "
	    "\"then\": {\"call\": \"action_confirm\", \"when\": {\"state\": [\"draft\"]}}}",
	    "then");
}

/* The worked example of the shipped configuration: an order by SKU,
 * confirmed, refusals recognised, a cancel route. */
static void
test_packaged_example(void)
{
	struct relay_config *cfg = NULL;
	struct relay_routes *rs = NULL;
	struct relay_config_error err;
	struct relay_plan plan;
	char why[256];
	json_t *o = json_loads("{\"id\": 5, \"name\": \"#5\", \"customer\": {\"id\": 7}, "
	                       "\"order_number\": 5, \"line_items\": [{\"id\": 91, \"title\": "
	                       "\"x\", \"sku\": \"SKU-1\", \"quantity\": 1, \"price\": 2.5}]}",
	                       0, NULL);
	int rc;

	setenv("CREDENTIALS_DIRECTORY", "config/example-creds", 1);
	rc = relay_config_load("../../packaging/odoo-relay.json", &cfg, &err);
	unsetenv("CREDENTIALS_DIRECTORY");
	CHECK_INT(rc, 0);
	if (rc == 0)
		rc = relay_routes_compile(cfg, &rs, &err);
	CHECK_INT(rc, 0);
	if (rc == 0) {
		const struct relay_route *r = relay_routes_find(rs, "shop-orders");

		CHECK_INT(relay_route_map(r, o, "odoo_relay", &plan, why, sizeof(why)), 0);
		CHECK_INT(json_array_size(plan.finds), 1);
		CHECK_STR(json_string_value(json_object_get(json_array_get(plan.finds, 0), "value")),
		          "SKU-1");
		relay_plan_clear(&plan);
		CHECK(relay_route_then(r) != NULL);
		CHECK(relay_route_refuse(r) != NULL);
		r = relay_routes_find(rs, "shop-orders-cancelled");
		CHECK(r != NULL && relay_route_then(r) != NULL);
	}
	json_decref(o);
	relay_routes_free(rs);
	relay_config_free(cfg);
}

int
main(void)
{
	RUN(test_find_maps_to_plan_finds);
	RUN(test_refuse_compiled);
	RUN(test_errors);
	RUN(test_packaged_example);
	return check_done();
}
