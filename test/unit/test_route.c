/* Unit tests for lib/route.c; run in test/fixtures (fixtures in route/). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "check.h"
#include "odoo_relay/config.h"
#include "odoo_relay/error.h"
#include "odoo_relay/route.h"

#define MODULE "odoo_relay"

/* The routes of route/routes.json, compiled once; the config is freed at
 * once, so every test also checks that routes do not borrow from it. */
static struct relay_routes *fixture;

#define CHECK_JSON(got, want) do { \
	char *d_ = (got) ? json_dumps((got), JSON_COMPACT | JSON_ENCODE_ANY) : NULL; \
	CHECK_STR(d_, (want)); \
	free(d_); \
} while (0)

static json_t *
load_json(const char *path)
{
	json_error_t jerr;
	json_t *v = json_load_file(path, 0, &jerr);

	if (v == NULL)
		fprintf(stderr, "cannot load %s: %s\n", path, jerr.text);
	return v;
}

static json_t *
parse(const char *text)
{
	json_error_t jerr;
	json_t *v = json_loads(text, 0, &jerr);

	if (v == NULL)
		fprintf(stderr, "bad test JSON: %s: %s\n", text, jerr.text);
	return v;
}

static const struct relay_route *
route(const char *name)
{
	const struct relay_route *r = relay_routes_find(fixture, name);

	CHECK(r != NULL);
	return r;
}

/* The first lines of every configuration built from a route text: the route
 * under test is routes[1] and starts on line 5, column 3. */
static const char head[] =
	"{\"listen\": \"127.0.0.1:0\",\n"
	" \"sources\": {\"shop\": {\"verify\": {\"scheme\": \"none\"}, \"dedup\": {\"pointer\": \"/id\"}}},\n"
	" \"routes\": [\n"
	"  {\"name\": \"first\", \"source\": \"shop\", \"operation\": \"delete\", "
	"\"model\": \"res.partner\", \"external_id\": \"x_{/id}\"},\n"
	"  ";
static const char foot[] = "\n]}\n";

static char *
config_text(const char *route_text)
{
	size_t n = strlen(head) + strlen(route_text) + strlen(foot) + 1;
	char *s = malloc(n);

	if (s != NULL)
		snprintf(s, n, "%s%s%s", head, route_text, foot);
	return s;
}

/* Compile one route text (routes[1]); rc of the compile, routes in *out. */
static int
compile_one(const char *route_text, struct relay_routes **out, struct relay_config_error *err)
{
	struct relay_config *cfg = NULL;
	char *text = config_text(route_text);
	int rc;

	memset(err, 0, sizeof(*err));
	*out = NULL;
	if (text == NULL)
		return ENOMEM;
	rc = relay_config_loadb("test.json", text, strlen(text), &cfg, err);
	free(text);
	if (rc != 0) {
		fprintf(stderr, "config does not load: %u:%u: %s\n", err->line, err->column,
		        err->text);
		return rc;
	}
	rc = relay_routes_compile(cfg, out, err);
	relay_config_free(cfg);
	return rc;
}

/* Line and column (1-based) of the first needle in the route text. */
static void
position_of(const char *route_text, const char *needle, unsigned *line, unsigned *col)
{
	const char *hit = strstr(route_text, needle), *p;

	*line = 5;
	*col = 3;
	CHECK(hit != NULL);
	if (hit == NULL)
		return;
	for (p = route_text; p < hit; p++) {
		if (*p == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

/* ------------------------------------------------------------------ */

static void
test_compile_good(void)
{
	const struct relay_route *r;
	const struct relay_backoff_conf *b;

	CHECK_INT(relay_routes_count(fixture), 7);
	r = relay_routes_at(fixture, 0);
	CHECK_STR(relay_route_name(r), "shop-customers");
	CHECK_STR(relay_route_model(r), "res.partner");
	CHECK_INT(relay_route_op(r), RELAY_OP_UPSERT);
	b = relay_route_backoff(r);
	/* overridden where the route says, the delivery defaults elsewhere */
	CHECK_INT(b->base_ms, 2000);
	CHECK_INT(b->cap_ms, 120000);
	CHECK_INT(b->max_attempts, 10);
	CHECK_INT(b->max_age_s, 86400);
	CHECK_INT(relay_route_permanent_retries(r), 3);
	CHECK_INT(relay_route_permanent_retry_delay_ms(r), 30000);
	CHECK_INT(relay_route_dead_lane(r), RELAY_LANE_HOLD);

	r = relay_routes_at(fixture, 1);
	CHECK_STR(relay_route_name(r), "shop-orders");
	b = relay_route_backoff(r);
	CHECK_INT(b->base_ms, 500);
	CHECK_INT(b->cap_ms, 60000);
	CHECK_INT(b->max_attempts, 7);
	CHECK_INT(relay_route_permanent_retries(r), 0);
	CHECK_INT(relay_route_permanent_retry_delay_ms(r), 60000);
	CHECK_INT(relay_route_dead_lane(r), RELAY_LANE_CONTINUE);

	CHECK_INT(relay_route_op(route("shop-customer-disable")), RELAY_OP_WRITE);
	CHECK_INT(relay_route_op(route("shop-customer-delete")), RELAY_OP_DELETE);
	CHECK_INT(relay_route_op(route("crm-note")), RELAY_OP_CALL);
	CHECK(relay_routes_find(fixture, "nope") == NULL);
	CHECK(relay_routes_at(fixture, 7) == NULL);
}

static void
test_compile_no_routes(void)
{
	static const char text[] = "{\"listen\": \"127.0.0.1:0\", \"sources\": {\"shop\": "
		"{\"verify\": {\"scheme\": \"none\"}, \"dedup\": {\"pointer\": \"/id\"}}}}";
	struct relay_config *cfg = NULL;
	struct relay_routes *rs = NULL;
	struct relay_config_error err;

	CHECK_INT(relay_config_loadb("t.json", text, strlen(text), &cfg, &err), 0);
	CHECK_INT(relay_routes_compile(cfg, &rs, &err), 0);
	CHECK(rs != NULL);
	CHECK_INT(relay_routes_count(rs), 0);
	CHECK(relay_routes_match(rs, "shop", "x") == NULL);
	relay_routes_free(rs);
	relay_config_free(cfg);
	relay_routes_free(NULL);
}

static void
test_match(void)
{
	const struct relay_route *r;

	/* first match wins: shop-catch-all (topics ["*"]) comes last */
	r = relay_routes_match(fixture, "shop", "customers/update");
	CHECK_STR(r ? relay_route_name(r) : NULL, "shop-customers");
	r = relay_routes_match(fixture, "shop", "orders/paid");
	CHECK_STR(r ? relay_route_name(r) : NULL, "shop-orders");
	r = relay_routes_match(fixture, "shop", "orders");
	CHECK_STR(r ? relay_route_name(r) : NULL, "shop-orders");
	r = relay_routes_match(fixture, "shop", "customers/delete");
	CHECK_STR(r ? relay_route_name(r) : NULL, "shop-customer-delete");
	r = relay_routes_match(fixture, "shop", "anything/else");
	CHECK_STR(r ? relay_route_name(r) : NULL, "shop-catch-all");
	r = relay_routes_match(fixture, "shop", "");
	CHECK_STR(r ? relay_route_name(r) : NULL, "shop-catch-all");
	/* '?' is exactly one character */
	r = relay_routes_match(fixture, "crm", "notes/a");
	CHECK_STR(r ? relay_route_name(r) : NULL, "crm-note");
	CHECK(relay_routes_match(fixture, "crm", "notes/ab") == NULL);
	CHECK(relay_routes_match(fixture, "crm", "notes/") == NULL);
	CHECK(relay_routes_match(fixture, "crm", "customers/update") == NULL);
	CHECK(relay_routes_match(fixture, "nope", "customers/update") == NULL);
}

static void
test_customer_upsert(void)
{
	json_t *p = load_json("route/customer.json");
	struct relay_plan plan;
	char why[256] = "x";
	int rc;

	rc = relay_route_map(route("shop-customers"), p, MODULE, &plan, why, sizeof(why));
	CHECK_INT(rc, 0);
	CHECK_STR(why, "");
	CHECK_INT(plan.op, RELAY_OP_UPSERT);
	CHECK_STR(plan.model, "res.partner");
	CHECK_STR(plan.xmlid_module, "odoo_relay");
	CHECK_STR(plan.xmlid_name, "shop_customer_42");
	/* phone is optional and absent: no column at all; note has a default */
	CHECK_JSON(plan.load_fields,
	           "[\"id\",\"name\",\"email\",\"comment\",\"customer_rank\",\"is_company\","
	           "\"credit_limit\",\"country_id/id\",\"parent_id/id\",\"ref\"]");
	CHECK_JSON(plan.load_data,
	           "[[\"odoo_relay.shop_customer_42\",\"Ada Lovelace\",\"ada@example.com\","
	           "\"no note\",\"1\",\"0\",\"12.5\",\"base.be\",\"odoo_relay.shop_company_7\","
	           "\"{42}\"]]");
	CHECK(plan.values == NULL);
	CHECK(plan.method == NULL);
	CHECK(plan.named == NULL);
	CHECK_INT(plan.may_create, 1);
	CHECK_INT(plan.may_update, 1);
	CHECK_INT(plan.missing_create, 0);
	relay_plan_clear(&plan);
	CHECK(plan.model == NULL && plan.load_fields == NULL);
	relay_plan_clear(&plan); /* twice is harmless */
	json_decref(p);
}

static void
test_optional_and_default(void)
{
	json_t *p = load_json("route/customer.json");
	struct relay_plan plan;
	char why[256];

	if (p == NULL)
		return;
	/* present optional, a value instead of the default, other cell types */
	json_object_set_new(p, "phone", json_string("+32 9 000"));
	json_object_set_new(p, "note", json_string("pays late"));
	json_object_set_new(p, "is_company", json_true());
	json_object_set_new(p, "total_spent", json_integer(100));
	json_object_set_new(json_object_get(p, "default_address"), "country_code",
	                    json_string("FR"));
	CHECK_INT(relay_route_map(route("shop-customers"), p, MODULE, &plan, why, sizeof(why)), 0);
	CHECK_JSON(plan.load_fields,
	           "[\"id\",\"name\",\"email\",\"phone\",\"comment\",\"customer_rank\","
	           "\"is_company\",\"credit_limit\",\"country_id/id\",\"parent_id/id\",\"ref\"]");
	CHECK_JSON(plan.load_data,
	           "[[\"odoo_relay.shop_customer_42\",\"Ada Lovelace\",\"ada@example.com\","
	           "\"+32 9 000\",\"pays late\",\"1\",\"1\",\"100\",\"base.fr\","
	           "\"odoo_relay.shop_company_7\",\"{42}\"]]");
	relay_plan_clear(&plan);

	/* JSON null is a value: an empty cell, not the default */
	json_object_set_new(p, "phone", json_null());
	json_object_set_new(p, "note", json_null());
	CHECK_INT(relay_route_map(route("shop-customers"), p, MODULE, &plan, why, sizeof(why)), 0);
	CHECK_JSON(json_array_get(plan.load_data, 0) ?
	           json_array_get(json_array_get(plan.load_data, 0), 3) : NULL, "\"\"");
	CHECK_JSON(json_array_get(plan.load_data, 0) ?
	           json_array_get(json_array_get(plan.load_data, 0), 4) : NULL, "\"\"");
	relay_plan_clear(&plan);
	json_decref(p);
}

static void
test_missing_path(void)
{
	json_t *p = load_json("route/customer.json"), *o = load_json("route/order.json");
	struct relay_plan plan;
	char why[256];
	int rc;

	if (p == NULL || o == NULL)
		goto out;
	json_object_del(p, "email");
	rc = relay_route_map(route("shop-customers"), p, MODULE, &plan, why, sizeof(why));
	CHECK_INT(rc, -RELAY_EPATH);
	CHECK_STR(why, "missing /email for fields.email");
	/* a failed map leaves an empty plan */
	CHECK(plan.model == NULL && plan.load_fields == NULL && plan.load_data == NULL);
	CHECK(plan.xmlid_name == NULL);

	json_object_del(json_object_get(p, "company"), "id");
	json_object_set_new(p, "email", json_string("x@example.com"));
	rc = relay_route_map(route("shop-customers"), p, MODULE, &plan, why, sizeof(why));
	CHECK_INT(rc, -RELAY_EPATH);
	CHECK_STR(why, "missing /company/id for fields.parent_id/id");

	/* a null in a template counts as absent */
	json_object_set_new(p, "last_name", json_null());
	rc = relay_route_map(route("shop-customers"), p, MODULE, &plan, why, sizeof(why));
	CHECK_INT(rc, -RELAY_EPATH);
	CHECK_STR(why, "missing /last_name for fields.name");

	json_object_del(p, "id");
	rc = relay_route_map(route("shop-customers"), p, MODULE, &plan, why, sizeof(why));
	CHECK_INT(rc, -RELAY_EPATH);
	CHECK_STR(why, "missing /id for external_id");

	json_object_del(o, "customer");
	rc = relay_route_map(route("shop-orders"), o, MODULE, &plan, why, sizeof(why));
	CHECK_INT(rc, -RELAY_EPATH);
	CHECK_STR(why, "missing /customer/id for fields.partner_id/id");

	/* a small why buffer is cut, not overrun */
	rc = relay_route_map(route("shop-orders"), o, MODULE, &plan, why, 8);
	CHECK_INT(rc, -RELAY_EPATH);
	CHECK_STR(why, "missing");
out:
	json_decref(p);
	json_decref(o);
}

static void
test_wrong_kind(void)
{
	json_t *p = load_json("route/customer.json");
	struct relay_plan plan;
	char why[256];
	int rc;

	if (p == NULL)
		return;
	json_object_set_new(json_object_get(p, "default_address"), "country_code",
	                    json_string("XX-secret"));
	rc = relay_route_map(route("shop-customers"), p, MODULE, &plan, why, sizeof(why));
	CHECK_INT(rc, -RELAY_EINVAL);
	CHECK_STR(why, "fields.country_id/id: /default_address/country_code has no entry in "
	          "the lookup table and there is no default");
	CHECK(strstr(why, "XX-secret") == NULL); /* payload values stay out of texts */

	/* the write route's lookup has a default */
	rc = relay_route_map(route("shop-customer-disable"), p, MODULE, &plan, why, sizeof(why));
	CHECK_INT(rc, 0);
	CHECK_JSON(plan.values ? json_object_get(plan.values, "lang") : NULL, "\"en_US\"");
	relay_plan_clear(&plan);

	json_object_set_new(json_object_get(p, "default_address"), "country_code",
	                    json_string("BE"));
	json_object_set_new(p, "first_name", json_pack("{s:s}", "a", "b"));
	rc = relay_route_map(route("shop-customers"), p, MODULE, &plan, why, sizeof(why));
	CHECK_INT(rc, -RELAY_EINVAL);
	CHECK_STR(why, "fields.name: /first_name is an object, not text");

	json_object_set_new(p, "first_name", json_string("Ada"));
	json_object_set_new(p, "email", json_pack("[s]", "a@b"));
	rc = relay_route_map(route("shop-customers"), p, MODULE, &plan, why, sizeof(why));
	CHECK_INT(rc, -RELAY_EINVAL);
	CHECK_STR(why, "fields.email: the value is an array, but a load cell holds a scalar");

	/* the external-ID module must be usable */
	json_object_set_new(p, "email", json_string("a@b"));
	rc = relay_route_map(route("shop-customers"), p, "bad.module", &plan, why, sizeof(why));
	CHECK_INT(rc, -RELAY_EINVAL);
	rc = relay_route_map(route("shop-customers"), p, "", &plan, why, sizeof(why));
	CHECK_INT(rc, -RELAY_EINVAL);
	rc = relay_route_map(route("shop-customers"), p, NULL, &plan, why, sizeof(why));
	CHECK_INT(rc, -RELAY_EINVAL);
	json_decref(p);
}

static void
test_order_lines(void)
{
	json_t *o = load_json("route/order.json");
	struct relay_plan plan;
	char why[256];
	int rc;

	if (o == NULL)
		return;
	rc = relay_route_map(route("shop-orders"), o, MODULE, &plan, why, sizeof(why));
	CHECK_INT(rc, 0);
	CHECK_STR(plan.model, "sale.order");
	CHECK_STR(plan.xmlid_name, "shop_order_1001");
	CHECK_INT(plan.may_create, 1);
	CHECK_INT(plan.may_update, 0);
	CHECK_JSON(plan.load_fields,
	           "[\"id\",\"partner_id/id\",\"client_order_ref\",\"order_line/id\","
	           "\"order_line/product_id/id\",\"order_line/product_uom_qty\","
	           "\"order_line/price_unit\",\"order_line/name\"]");
	/* three rows; the parent cells only in the first; "A-1" and "C.3" encoded */
	CHECK_JSON(plan.load_data,
	           "[[\"odoo_relay.shop_order_1001\",\"odoo_relay.shop_customer_42\",\"#1001\","
	           "\"odoo_relay.shop_line_1\",\"odoo_relay.shop_product_A-2D1\",\"2\",\"9.50\","
	           "\"Apple\"],"
	           "[\"\",\"\",\"\",\"odoo_relay.shop_line_2\",\"odoo_relay.shop_product_B-2D2\","
	           "\"1\",\"3.00\",\"Bread\"],"
	           "[\"\",\"\",\"\",\"odoo_relay.shop_line_3\",\"odoo_relay.shop_product_C-2E3\","
	           "\"5\",\"0.99\",\"\"]]");
	relay_plan_clear(&plan);

	/* a line without a required value: the full payload path */
	json_object_del(json_array_get(json_object_get(o, "line_items"), 1), "sku");
	rc = relay_route_map(route("shop-orders"), o, MODULE, &plan, why, sizeof(why));
	CHECK_INT(rc, -RELAY_EPATH);
	CHECK_STR(why, "missing /line_items/1/sku for lines.fields.product_id/id");

	/* no lines: one row, the line cells empty */
	json_object_set_new(o, "line_items", json_array());
	rc = relay_route_map(route("shop-orders"), o, MODULE, &plan, why, sizeof(why));
	CHECK_INT(rc, 0);
	CHECK_INT(json_array_size(plan.load_fields), 8);
	CHECK_JSON(plan.load_data,
	           "[[\"odoo_relay.shop_order_1001\",\"odoo_relay.shop_customer_42\",\"#1001\","
	           "\"\",\"\",\"\",\"\",\"\"]]");
	relay_plan_clear(&plan);

	json_object_set_new(o, "line_items", json_string("nope"));
	rc = relay_route_map(route("shop-orders"), o, MODULE, &plan, why, sizeof(why));
	CHECK_INT(rc, -RELAY_EINVAL);
	CHECK_STR(why, "lines: /line_items is a string, not an array");

	json_object_del(o, "line_items");
	rc = relay_route_map(route("shop-orders"), o, MODULE, &plan, why, sizeof(why));
	CHECK_INT(rc, -RELAY_EPATH);
	CHECK_STR(why, "missing /line_items for lines");
	json_decref(o);
}

static void
test_two_line_fields(void)
{
	static const char text[] =
		"{\"name\": \"r\", \"source\": \"shop\", \"operation\": \"upsert\", "
		"\"model\": \"project.project\", \"external_id\": \"p_{/id}\", "
		"\"fields\": {\"name\": {\"pointer\": \"/name\"}}, \"lines\": ["
		"{\"field\": \"task_ids\", \"pointer\": \"/tasks\", \"fields\": {\"id\": \"task_{/t}\", "
		"\"name\": \"{/t}\"}},"
		"{\"field\": \"tag_ids\", \"pointer\": \"/tags\", \"optional\": true, "
		"\"fields\": {\"id\": {\"pointer\": \"/n\"}, \"name\": {\"pointer\": \"/n\"}}}]}";
	struct relay_routes *rs = NULL;
	struct relay_config_error err;
	struct relay_plan plan;
	json_t *p = parse("{\"id\": 1, \"name\": \"P\", \"tasks\": [{\"t\": \"a\"}, {\"t\": \"b\"},"
	                  " {\"t\": \"c\"}], \"tags\": [{\"n\": true}]}");
	char why[256];

	CHECK_INT(compile_one(text, &rs, &err), 0);
	if (rs == NULL || p == NULL)
		goto out;
	CHECK_INT(relay_route_map(relay_routes_find(rs, "r"), p, MODULE, &plan, why, sizeof(why)), 0);
	CHECK_JSON(plan.load_fields, "[\"id\",\"name\",\"task_ids/id\",\"task_ids/name\","
	           "\"tag_ids/id\",\"tag_ids/name\"]");
	CHECK_JSON(plan.load_data, "[[\"odoo_relay.p_1\",\"P\",\"odoo_relay.task_a\",\"a\","
	           "\"odoo_relay.true\",\"1\"],[\"\",\"\",\"odoo_relay.task_b\",\"b\",\"\",\"\"],"
	           "[\"\",\"\",\"odoo_relay.task_c\",\"c\",\"\",\"\"]]");
	relay_plan_clear(&plan);
	/* an optional array that is absent: its columns stay, empty */
	json_object_del(p, "tags");
	CHECK_INT(relay_route_map(relay_routes_find(rs, "r"), p, MODULE, &plan, why, sizeof(why)), 0);
	CHECK_JSON(plan.load_data, "[[\"odoo_relay.p_1\",\"P\",\"odoo_relay.task_a\",\"a\",\"\","
	           "\"\"],[\"\",\"\",\"odoo_relay.task_b\",\"b\",\"\",\"\"],"
	           "[\"\",\"\",\"odoo_relay.task_c\",\"c\",\"\",\"\"]]");
	relay_plan_clear(&plan);
out:
	json_decref(p);
	relay_routes_free(rs);
}

static void
test_write(void)
{
	static const char create_text[] =
		"{\"name\": \"w\", \"source\": \"shop\", \"operation\": \"write\", "
		"\"model\": \"res.partner\", \"external_id\": \"c_{/id}\", \"missing\": \"create\", "
		"\"fields\": {\"active\": {\"const\": false}, \"name\": {\"pointer\": \"/name\"},"
		" \"phone\": {\"pointer\": \"/phone\", \"optional\": true}}}";
	json_t *p = load_json("route/customer.json"), *q = parse("{\"id\": 5, \"name\": \"Bob\"}");
	struct relay_routes *rs = NULL;
	struct relay_config_error err;
	struct relay_plan plan;
	char why[256];

	if (p == NULL || q == NULL)
		goto out;
	CHECK_INT(relay_route_map(route("shop-customer-disable"), p, MODULE, &plan, why,
	                          sizeof(why)), 0);
	CHECK_INT(plan.op, RELAY_OP_WRITE);
	CHECK_STR(plan.xmlid_module, "odoo_relay");
	CHECK_STR(plan.xmlid_name, "shop_customer_42");
	/* JSON types kept; the absent optional comment left out */
	CHECK_JSON(plan.values, "{\"active\":false,\"email\":\"ada@example.com\","
	           "\"credit_limit\":12.5,\"category_names\":[\"vip\",\"b2b\"],\"lang\":\"fr_BE\"}");
	CHECK(plan.load_fields == NULL && plan.load_data == NULL);
	CHECK_INT(plan.missing_create, 0);
	CHECK_INT(plan.may_create, 1);
	CHECK_INT(plan.may_update, 1);
	relay_plan_clear(&plan);

	/* missing = create: the load call too */
	CHECK_INT(compile_one(create_text, &rs, &err), 0);
	if (rs == NULL)
		goto out;
	CHECK_INT(relay_route_map(relay_routes_find(rs, "w"), q, MODULE, &plan, why, sizeof(why)), 0);
	CHECK_INT(plan.missing_create, 1);
	CHECK_JSON(plan.values, "{\"active\":false,\"name\":\"Bob\"}");
	CHECK_JSON(plan.load_fields, "[\"id\",\"active\",\"name\"]");
	CHECK_JSON(plan.load_data, "[[\"odoo_relay.c_5\",\"0\",\"Bob\"]]");
	relay_plan_clear(&plan);
out:
	relay_routes_free(rs);
	json_decref(p);
	json_decref(q);
}

static void
test_delete(void)
{
	json_t *p = load_json("route/customer.json");
	struct relay_plan plan;
	char why[256];

	CHECK_INT(relay_route_map(route("shop-customer-delete"), p, MODULE, &plan, why,
	                          sizeof(why)), 0);
	CHECK_INT(plan.op, RELAY_OP_DELETE);
	CHECK_STR(plan.model, "res.partner");
	CHECK_STR(plan.xmlid_module, "odoo_relay");
	CHECK_STR(plan.xmlid_name, "shop_customer_42");
	CHECK(plan.load_fields == NULL && plan.load_data == NULL && plan.values == NULL);
	CHECK(plan.method == NULL && plan.named == NULL);
	CHECK_INT(plan.may_create, 0);
	relay_plan_clear(&plan);
	json_decref(p);
}

static void
test_call(void)
{
	json_t *p = parse("{\"id\": 9, \"text\": \"hello\", \"partners\": [3, 4], "
	                  "\"author\": \"u.1\", \"kwargs\": {\"stage\": \"won\", \"n\": [1]}}");
	struct relay_plan plan;
	char why[256];

	if (p == NULL)
		return;
	CHECK_INT(relay_route_map(route("crm-note"), p, MODULE, &plan, why, sizeof(why)), 0);
	CHECK_INT(plan.op, RELAY_OP_CALL);
	CHECK_STR(plan.model, "res.partner");
	CHECK_STR(plan.method, "message_post");
	CHECK_JSON(plan.named, "{\"body\":\"hello\",\"subtype_xmlid\":\"mail.mt_note\","
	           "\"partner_ids\":[3,4],\"author\":\"odoo_relay.u-2E1\"}");
	CHECK(plan.xmlid_name == NULL && plan.load_fields == NULL && plan.values == NULL);
	relay_plan_clear(&plan);

	CHECK_INT(relay_route_map(route("crm-raw"), p, MODULE, &plan, why, sizeof(why)), 0);
	CHECK_STR(plan.method, "relay_apply");
	CHECK_JSON(plan.named, "{\"stage\":\"won\",\"n\":[1]}");
	relay_plan_clear(&plan);

	json_object_set_new(p, "kwargs", json_pack("[i]", 1));
	CHECK_INT(relay_route_map(route("crm-raw"), p, MODULE, &plan, why, sizeof(why)),
	          -RELAY_EINVAL);
	CHECK_STR(why, "args: /kwargs is an array, not an object of named arguments");
	json_object_del(p, "kwargs");
	CHECK_INT(relay_route_map(route("crm-raw"), p, MODULE, &plan, why, sizeof(why)),
	          -RELAY_EPATH);
	CHECK_STR(why, "missing /kwargs for args");
	CHECK(plan.method == NULL);
	json_decref(p);
}

static void
test_template_escapes(void)
{
	static const char text[] =
		"{\"name\": \"t\", \"source\": \"shop\", \"operation\": \"upsert\", "
		"\"model\": \"res.partner\", \"external_id\": \"x_{/id}\", \"fields\": {"
		"\"name\": \"a{{b}}c {/n}%\", \"ref\": \"{/b}-{/r}-{/a~1b}-{{{{}}}}\", "
		"\"comment\": \"plain\"}}";
	struct relay_routes *rs = NULL;
	struct relay_config_error err;
	struct relay_plan plan;
	json_t *p = parse("{\"id\": 1, \"n\": 5, \"b\": true, \"r\": 0.1, \"a/b\": \"s\"}");
	char why[256];

	CHECK_INT(compile_one(text, &rs, &err), 0);
	if (rs == NULL || p == NULL)
		goto out;
	CHECK_INT(relay_route_map(relay_routes_find(rs, "t"), p, MODULE, &plan, why, sizeof(why)), 0);
	CHECK_JSON(plan.load_data,
	           "[[\"odoo_relay.x_1\",\"a{b}c 5%\",\"true-0.1-s-{{}}\",\"plain\"]]");
	relay_plan_clear(&plan);
out:
	json_decref(p);
	relay_routes_free(rs);
}

static void
test_external_id_names(void)
{
	static const char text[] =
		"{\"name\": \"s\", \"source\": \"shop\", \"operation\": \"delete\", "
		"\"model\": \"res.partner\", \"external_id\": \"{/handle}\"}";
	struct relay_routes *rs = NULL;
	struct relay_config_error err;
	struct relay_plan plan;
	json_t *p = parse("{\"handle\": \"a.b/c \\u00e9-Z_9\"}");
	char why[256];
	int rc;

	CHECK_INT(compile_one(text, &rs, &err), 0);
	if (rs == NULL || p == NULL)
		goto out;
	/* every byte outside [A-Za-z0-9_] becomes -XX ('-' too; é is two bytes) */
	CHECK_INT(relay_route_map(relay_routes_find(rs, "s"), p, MODULE, &plan, why, sizeof(why)), 0);
	CHECK_STR(plan.xmlid_module, "odoo_relay");
	CHECK_STR(plan.xmlid_name, "a-2Eb-2Fc-20-C3-A9-2DZ_9");
	relay_plan_clear(&plan);

	/* an empty value names no record: a failure naming the pointer */
	json_object_set_new(p, "handle", json_string(""));
	rc = relay_route_map(relay_routes_find(rs, "s"), p, MODULE, &plan, why, sizeof(why));
	CHECK_INT(rc, -RELAY_EINVAL);
	CHECK_STR(why, "external_id: /handle is empty: an external ID needs a value");

	json_object_set_new(p, "handle", json_integer(77));
	CHECK_INT(relay_route_map(relay_routes_find(rs, "s"), p, "my_mod", &plan, why, sizeof(why)), 0);
	CHECK_STR(plan.xmlid_module, "my_mod");
	CHECK_STR(plan.xmlid_name, "77");
	relay_plan_clear(&plan);
out:
	json_decref(p);
	relay_routes_free(rs);
}

/* "external_id_encoding": "legacy" renders names as releases before 0.2
 * did, so routes that wrote records then find them again after an
 * upgrade; everywhere an external ID is rendered, lines and relations too. */
static void
test_external_id_legacy(void)
{
	static const char text[] =
		"{\"name\": \"s\", \"source\": \"shop\", \"operation\": \"upsert\", "
		"\"model\": \"res.partner\", \"external_id\": \"p_{/handle}\",\n"
		"   \"external_id_encoding\": \"legacy\", \"fields\": {\"name\": {\"pointer\": \"/handle\"},\n"
		"   \"parent_id/id\": {\"template\": \"c_{/company}\", \"external\": true}}}";
	static const char bad[] =
		"{\"name\": \"s\", \"source\": \"shop\", \"operation\": \"upsert\", "
		"\"model\": \"res.partner\", \"external_id\": \"p_{/handle}\",\n"
		"   \"external_id_encoding\": \"v1\", \"fields\": {\"name\": {\"pointer\": \"/handle\"}}}";
	struct relay_routes *rs = NULL;
	struct relay_config_error err;
	struct relay_plan plan;
	json_t *p = parse("{\"handle\": \"a.b/c \\u00e9-Z_9\", \"company\": \"acme.io\"}");
	unsigned line, col;

	CHECK_INT(compile_one(text, &rs, &err), 0);
	if (rs == NULL || p == NULL)
		goto out;
	/* [A-Za-z0-9_-] kept, every other byte '_' (the old rule, lossy) */
	CHECK_INT(relay_route_map(relay_routes_find(rs, "s"), p, MODULE, &plan, NULL, 0), 0);
	CHECK_STR(plan.xmlid_name, "p_a_b_c___-Z_9");
	{
		char *data = plan.load_data ? json_dumps(plan.load_data, JSON_COMPACT) : NULL;

		CHECK(data != NULL && strstr(data, "odoo_relay.c_acme_io") != NULL);
		free(data);
	}
	relay_plan_clear(&plan);
	relay_routes_free(rs);
	rs = NULL;

	CHECK(compile_one(bad, &rs, &err) != 0);
	position_of(bad, "\"v1\"", &line, &col);
	CHECK_INT(err.line, line);
	CHECK_INT(err.column, col);
	CHECK(strstr(err.text, "external_id_encoding") != NULL);
out:
	json_decref(p);
	relay_routes_free(rs);
}

static void
test_owns(void)
{
	static const char ok[] =
		"{\"name\": \"o\", \"source\": \"shop\", \"operation\": \"upsert\", "
		"\"model\": \"res.partner\", \"external_id\": \"c_{/id}\", "
		"\"owns\": [\"name\", \"country_id\"], \"fields\": {\"name\": \"{/n}\", "
		"\"country_id/id\": {\"const\": \"base.be\"}}}";
	struct relay_routes *rs = NULL;
	struct relay_config_error err;

	/* "country_id" owns the relation column "country_id/id" */
	CHECK_INT(compile_one(ok, &rs, &err), 0);
	relay_routes_free(rs);
}

/* ------------------------------------------------------------------ */
/* External IDs: one payload value, one record                         */

/* The encoding of s (a C string), or "(error N)". */
static const char *
enc(const char *s)
{
	static char out[256];
	int rc = relay_xid_encode(s, strlen(s), out, sizeof(out));

	if (rc != 0)
		snprintf(out, sizeof(out), "(error %d)", rc);
	return out;
}

static void
test_xid_encoding(void)
{
	char out[64];
	size_t len = 99;

	/* letters, digits and '_' stay: numeric ids and Stripe-like ids keep their names */
	CHECK_STR(enc("42"), "42");
	CHECK_STR(enc("cus_Nx8aBc09_Z"), "cus_Nx8aBc09_Z");
	CHECK_STR(enc("alice_smith"), "alice_smith");
	/* everything else, '-' included, is '-' and two upper-case hex digits */
	CHECK_STR(enc("alice.smith"), "alice-2Esmith");
	CHECK_STR(enc("1.5"), "1-2E5");
	CHECK_STR(enc("1_5"), "1_5");
	CHECK_STR(enc("A-1"), "A-2D1");
	CHECK_STR(enc("-2E"), "-2D2E");
	CHECK_STR(enc("a b\t"), "a-20b-09");
	CHECK_STR(enc("M\xc3\xbcller"), "M-C3-BCller");
	CHECK_STR(enc("\xff/~{}"), "-FF-2F-7E-7B-7D");
	CHECK_INT(relay_xid_encode("a\0b", 3, out, sizeof(out)), 0);
	CHECK_STR(out, "a-00b");

	/* empty, NULL and sizes: 3n + 1 always fit */
	CHECK_INT(relay_xid_encode("", 0, out, sizeof(out)), -RELAY_EINVAL);
	CHECK_STR(out, "");
	CHECK_INT(relay_xid_encode(NULL, 1, out, sizeof(out)), -RELAY_EINVAL);
	CHECK_INT(relay_xid_encode("..", 2, out, 7), 0);
	CHECK_STR(out, "-2E-2E");
	CHECK_INT(relay_xid_encode("..", 2, out, 6), -RELAY_ETOOBIG);
	CHECK_STR(out, "");
	CHECK_INT(relay_xid_encode("ab", 2, NULL, 0), -RELAY_ETOOBIG);

	/* decoding is the reverse, and refuses what no encoder writes */
	CHECK_INT(relay_xid_decode("M-C3-BCller", 11, out, sizeof(out), &len), 0);
	CHECK_STR(out, "M\xc3\xbcller");
	CHECK_INT(len, 7);
	CHECK_INT(relay_xid_decode("a-00b", 5, out, sizeof(out), &len), 0);
	CHECK_INT(len, 3);
	CHECK(memcmp(out, "a\0b", 3) == 0);
	CHECK_INT(relay_xid_decode("-2D2E", 5, out, sizeof(out), NULL), 0);
	CHECK_STR(out, "-2E");
	CHECK_INT(relay_xid_decode("a.b", 3, out, sizeof(out), &len), -RELAY_EINVAL);
	CHECK_INT(len, 0);
	CHECK_INT(relay_xid_decode("a-2e", 4, out, sizeof(out), &len), -RELAY_EINVAL);
	CHECK_INT(relay_xid_decode("a-2", 3, out, sizeof(out), &len), -RELAY_EINVAL);
	CHECK_INT(relay_xid_decode("a-", 2, out, sizeof(out), &len), -RELAY_EINVAL);
	CHECK_INT(relay_xid_decode("-41", 3, out, sizeof(out), &len), -RELAY_EINVAL);
	CHECK_INT(relay_xid_decode("-5F", 3, out, sizeof(out), &len), -RELAY_EINVAL);
	CHECK_INT(relay_xid_decode("", 0, out, sizeof(out), &len), -RELAY_EINVAL);
	CHECK_INT(relay_xid_decode("abc", 3, out, 3, &len), -RELAY_ETOOBIG);
	CHECK_STR(out, "");
	CHECK_INT(relay_xid_decode("abc", 3, out, 4, &len), 0);
	CHECK_INT(relay_xid_decode("-2E-2E", 6, out, 3, &len), 0);
	CHECK_STR(out, "..");
}

/* A route whose external ID is template tpl; compiled into *rs. */
static const struct relay_route *
xid_route(const char *tpl, struct relay_routes **rs)
{
	char text[512];
	struct relay_config_error err;

	snprintf(text, sizeof(text), "{\"name\": \"x\", \"source\": \"shop\", \"operation\": "
	         "\"delete\", \"model\": \"res.partner\", \"external_id\": \"%s\"}", tpl);
	CHECK_INT(compile_one(text, rs, &err), 0);
	return *rs ? relay_routes_find(*rs, "x") : NULL;
}

/* The external ID name r gives payload (JSON text), or "(error: why)". */
static const char *
xid_of(const struct relay_route *r, const char *payload)
{
	static char name[512];
	struct relay_plan plan;
	char why[256];
	json_t *p = parse(payload);
	int rc;

	if (r == NULL || p == NULL) {
		json_decref(p);
		return "(no route or payload)";
	}
	rc = relay_route_map(r, p, MODULE, &plan, why, sizeof(why));
	if (rc == 0)
		snprintf(name, sizeof(name), "%s", plan.xmlid_name);
	else
		snprintf(name, sizeof(name), "(error: %s)", why);
	relay_plan_clear(&plan);
	json_decref(p);
	return name;
}

static void
test_external_id_collisions(void)
{
	struct relay_routes *rs = NULL;
	const struct relay_route *r = xid_route("shop_customer_{/id}", &rs);
	char a[512];

	/* the collisions of the old '_' rule are gone */
	snprintf(a, sizeof(a), "%s", xid_of(r, "{\"id\": \"alice.smith\"}"));
	CHECK_STR(a, "shop_customer_alice-2Esmith");
	CHECK_STR(xid_of(r, "{\"id\": \"alice_smith\"}"), "shop_customer_alice_smith");
	CHECK_STR(xid_of(r, "{\"id\": 1.5}"), "shop_customer_1-2E5");
	CHECK_STR(xid_of(r, "{\"id\": \"1_5\"}"), "shop_customer_1_5");
	CHECK_STR(xid_of(r, "{\"id\": \"J\\u00fcrgen\"}"), "shop_customer_J-C3-BCrgen");
	CHECK_STR(xid_of(r, "{\"id\": \"J\\u00f6rgen\"}"), "shop_customer_J-C3-B6rgen");
	CHECK_STR(xid_of(r, "{\"id\": \"\\u5c71\\u7530\"}"), "shop_customer_-E5-B1-B1-E7-94-B0");
	CHECK_STR(xid_of(r, "{\"id\": \"\\u7530\\u5c71\"}"), "shop_customer_-E7-94-B0-E5-B1-B1");
	/* today's names of plain ids do not change */
	CHECK_STR(xid_of(r, "{\"id\": 42}"), "shop_customer_42");
	CHECK_STR(xid_of(r, "{\"id\": \"cus_Nx8aBc09\"}"), "shop_customer_cus_Nx8aBc09");
	/* one number, one record, however it is written */
	CHECK_STR(xid_of(r, "{\"id\": 1}"), "shop_customer_1");
	CHECK_STR(xid_of(r, "{\"id\": 1.0}"), "shop_customer_1");
	CHECK_STR(xid_of(r, "{\"id\": 1e0}"), "shop_customer_1");
	CHECK_STR(xid_of(r, "{\"id\": 1000000}"), "shop_customer_1000000");
	CHECK_STR(xid_of(r, "{\"id\": 1e6}"), "shop_customer_1000000");
	CHECK_STR(xid_of(r, "{\"id\": 10000.00e2}"), "shop_customer_1000000");
	CHECK_STR(xid_of(r, "{\"id\": -0.0}"), "shop_customer_0");
	/* an empty value: a failure naming the pointer, never a shared name */
	CHECK_STR(xid_of(r, "{\"id\": \"\"}"), "(error: external_id: /id is empty: an external "
	          "ID needs a value)");
	CHECK_STR(xid_of(r, "{\"id\": null}"), "(error: missing /id for external_id)");
	relay_routes_free(rs);
}

static void
test_external_id_templates(void)
{
	static const char order[] =
		"{\"name\": \"o\", \"source\": \"shop\", \"operation\": \"upsert\", "
		"\"model\": \"sale.order\", \"external_id\": \"o_{/id}\", \"fields\": {"
		"\"partner_id/id\": {\"external\": true, \"pointer\": \"/customer\"}, "
		"\"company_id/id\": {\"external\": true, \"template\": \"main-company\"}}, "
		"\"lines\": {\"field\": \"order_line\", \"pointer\": \"/items\", \"fields\": {"
		"\"id\": \"l-{/sku}--{/n}\", \"name\": \"{/sku}\"}}}";
	struct relay_routes *rs = NULL, *rs2 = NULL;
	struct relay_config_error err;
	const struct relay_route *r;
	struct relay_plan plan;
	char why[256];
	json_t *p;

	/* two pointers with "--" between them: the pair is still one record */
	r = xid_route("s--{/shop}--{/id}", &rs);
	CHECK_STR(xid_of(r, "{\"shop\": \"a-b\", \"id\": 7}"), "s--a-2Db--7");
	CHECK_STR(xid_of(r, "{\"shop\": \"a\", \"id\": \"b--7\"}"), "s--a--b-2D-2D7");
	CHECK_STR(xid_of(r, "{\"shop\": \"x\", \"id\": \"\"}"), "(error: external_id: /id is "
	          "empty: an external ID needs a value)");
	relay_routes_free(rs);

	/* literal '-' around one pointer stays as written */
	r = xid_route("shop-{/id}-v2", &rs);
	CHECK_STR(xid_of(r, "{\"id\": 42}"), "shop-42-v2");
	CHECK_STR(xid_of(r, "{\"id\": \"4-2\"}"), "shop-4-2D2-v2");
	relay_routes_free(rs);

	/* inside lines and "external" specs the same encoding; a fixed target is fine */
	CHECK_INT(compile_one(order, &rs2, &err), 0);
	p = parse("{\"id\": 1, \"customer\": \"a.b\", \"items\": [{\"sku\": \"A.1\", \"n\": 1},"
	          " {\"sku\": \"A_1\", \"n\": 1}]}");
	if (rs2 == NULL || p == NULL)
		goto out;
	r = relay_routes_find(rs2, "o");
	CHECK_INT(relay_route_map(r, p, MODULE, &plan, why, sizeof(why)), 0);
	CHECK_JSON(plan.load_data,
	           "[[\"odoo_relay.o_1\",\"odoo_relay.a-2Eb\",\"odoo_relay.main-company\","
	           "\"odoo_relay.l-A-2E1--1\",\"A.1\"],"
	           "[\"\",\"\",\"\",\"odoo_relay.l-A_1--1\",\"A_1\"]]");
	relay_plan_clear(&plan);
	/* an empty value anywhere in an external ID names its full path */
	json_object_set_new(json_array_get(json_object_get(p, "items"), 1), "sku",
	                    json_string(""));
	CHECK_INT(relay_route_map(r, p, MODULE, &plan, why, sizeof(why)), -RELAY_EINVAL);
	CHECK_STR(why, "lines.fields.id: /items/1/sku is empty: an external ID needs a value");
	json_object_set_new(p, "customer", json_string(""));
	CHECK_INT(relay_route_map(r, p, MODULE, &plan, why, sizeof(why)), -RELAY_EINVAL);
	CHECK_STR(why, "fields.partner_id/id: /customer is empty: an external ID needs a value");
out:
	json_decref(p);
	relay_routes_free(rs2);
}

/*
 * Property: many random pairs of payload values, none giving one external
 * ID for two different values, and every name decoding back to the value's
 * text. A value is built together with its expected text, written
 * independently of the code under test: a string is its bytes; a number is
 * the decimal form of its value, whatever JSON spelling carries it (string
 * "1.5" and number 1.5 are one value by design: see odoo-relay.conf(5)).
 */
struct gen {
	uint64_t s;
};

static uint64_t
gen_next(struct gen *g)
{
	/* xorshift64*: fixed seed, the same pairs on every run */
	g->s ^= g->s >> 12;
	g->s ^= g->s << 25;
	g->s ^= g->s >> 27;
	return g->s * 2685821657736338717ULL;
}

static size_t
gen_below(struct gen *g, size_t n)
{
	return (size_t)(gen_next(g) % n);
}

/* One value: its JSON text in *json, its expected text in *want. */
struct val {
	char json[16384];
	char want[8192];
	size_t want_len;
};

/* Append code point cp as UTF-8 to want, and as JSON (raw or \u escaped) to json. */
static void
put_cp(struct gen *g, struct val *v, size_t *jl, uint32_t cp)
{
	unsigned char u[4];
	size_t n, i;

	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | cp >> 6);
		u[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xe0 | cp >> 12);
		u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xf0 | cp >> 18);
		u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		u[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	memcpy(v->want + v->want_len, u, n);
	v->want_len += n;
	if (cp < 0x20 || cp == '"' || cp == '\\' || (cp < 0x10000 && gen_below(g, 4) == 0)) {
		*jl += (size_t)snprintf(v->json + *jl, sizeof(v->json) - *jl, "\\u%04x",
		                        (unsigned)cp);
	} else if (cp >= 0x10000 && gen_below(g, 4) == 0) {
		uint32_t c = cp - 0x10000;

		*jl += (size_t)snprintf(v->json + *jl, sizeof(v->json) - *jl, "\\u%04x\\u%04x",
		                        (unsigned)(0xd800 | c >> 10), (unsigned)(0xdc00 | (c & 0x3ff)));
	} else {
		for (i = 0; i < n; i++)
			v->json[(*jl)++] = (char)u[i];
	}
}

/* Characters that the old rule confused, and the escape character's friends. */
static const char tricky[] = "._- -2E2D5F/:@+#~!\"\\\t\n,;=?&%{}[]()*'<>|^`$0123456789AEFaz_";

static uint32_t
gen_cp(struct gen *g)
{
	switch (gen_below(g, 6)) {
	case 0:
	case 1:
		return (uint32_t)(unsigned char)tricky[gen_below(g, sizeof(tricky) - 1)];
	case 2:
		return 0x20 + (uint32_t)gen_below(g, 0x5f);      /* printable ASCII */
	case 3:
		return 0x1 + (uint32_t)gen_below(g, 0x1f);       /* control characters */
	case 4:
		return 0xa0 + (uint32_t)gen_below(g, 0xd800 - 0xa0); /* BMP below surrogates */
	default:
		return 0x10000 + (uint32_t)gen_below(g, 0x100000); /* astral planes */
	}
}

/* A random string of len code points. */
static void
gen_string(struct gen *g, struct val *v, size_t len)
{
	size_t jl = 0, i;

	v->want_len = 0;
	v->json[jl++] = '"';
	for (i = 0; i < len; i++)
		put_cp(g, v, &jl, gen_cp(g));
	v->json[jl++] = '"';
	v->json[jl] = '\0';
	v->want[v->want_len] = '\0';
}

/*
 * A random number in a random JSON spelling. The value is k (an integer),
 * k/2 or k/10 for odd / not-multiple-of-10 k; the expected text is that
 * value in plain decimal, which is what scalar_text must print for it.
 */
struct num {
	int64_t k;
	unsigned den;
	int wide;          /* beyond 2^53: integer spelling only */
};

static void
gen_number(struct gen *g, struct val *v, struct num *nm, int respell)
{
	static const int64_t big[] = { INT64_MAX, INT64_MIN, 9007199254740993LL,
	                               -9007199254740993LL, 1LL << 62, 1000000000000000001LL };
	int64_t k, whole;
	unsigned frac = 0, den = 1;
	const char *sign;
	uint64_t mag;

	if (respell) {
		k = nm->k;
		den = nm->den;
		if (nm->wide)
			goto wide;
		goto spell;
	}
	switch (gen_below(g, 8)) {
	case 0:  /* beyond 2^53, only as an integer: exact in 64 bits */
		k = big[gen_below(g, sizeof(big) / sizeof(big[0]))];
		k = k < 0 ? k + (int64_t)gen_below(g, 3) : k - (int64_t)gen_below(g, 3);
		nm->k = k;
		nm->den = 1;
		nm->wide = 1;
wide:
		snprintf(v->json, sizeof(v->json), "%lld", (long long)k);
		snprintf(v->want, sizeof(v->want), "%lld", (long long)k);
		v->want_len = strlen(v->want);
		return;
	case 1:
	case 2:
		k = (int64_t)gen_below(g, 20) - 10;      /* small, many collisions of form */
		break;
	case 3:
		k = (int64_t)(gen_next(g) % (1ULL << 53)) * (gen_below(g, 2) ? 1 : -1);
		break;
	default:
		k = (int64_t)gen_below(g, 2000000) - 1000000;
		break;
	}
	switch (gen_below(g, 3)) {
	case 0:
		den = 1;
		break;
	case 1:
		den = 2;
		if (k % 2 == 0)
			k += 1;
		break;
	default:
		den = 10;
		if (k % 10 == 0)
			k += 3;
		break;
	}
	if (den > 1 && (k >= (1LL << 50) || k <= -(1LL << 50)))
		k /= 1024;                               /* keep k/den well within a double */
	if (den > 1 && k % (int64_t)den == 0)
		k += 1;
	nm->k = k;
	nm->den = den;
	nm->wide = 0;
spell:
	sign = k < 0 ? "-" : "";
	mag = k < 0 ? (uint64_t)0 - (uint64_t)k : (uint64_t)k;
	whole = (int64_t)(mag / den);
	frac = (unsigned)(mag % den) * (10 / den);
	if (den == 1)
		snprintf(v->want, sizeof(v->want), "%s%lld", k == 0 ? "" : sign, (long long)whole);
	else
		snprintf(v->want, sizeof(v->want), "%s%lld.%u", sign, (long long)whole, frac);
	v->want_len = strlen(v->want);
	/* spellings of the same value */
	switch (gen_below(g, den == 1 ? 7 : 4)) {
	case 0:
		snprintf(v->json, sizeof(v->json), "%s", v->want);
		break;
	case 1:  /* k e-1 for tenths, 5k e-1 for halves, k0 e-1 for integers */
		snprintf(v->json, sizeof(v->json), "%s%llue-1", sign,
		         (unsigned long long)(den == 1 ? mag * 10 : den == 2 ? mag * 5 : mag));
		break;
	case 2:  /* a trailing zero */
		snprintf(v->json, sizeof(v->json), "%s%s0", v->want, den == 1 ? ".0" : "");
		break;
	case 3:  /* as a string: the same text, so the same record */
		snprintf(v->json, sizeof(v->json), "\"%s\"", v->want);
		break;
	case 4:
		snprintf(v->json, sizeof(v->json), "%se0", v->want);
		break;
	case 5:
		snprintf(v->json, sizeof(v->json), "%sE+0", v->want);
		break;
	default:  /* "0000E-3" is not JSON */
		snprintf(v->json, sizeof(v->json), mag ? "%s%llu000E-3" : "%s%llu.000E-3", sign,
		         (unsigned long long)mag);
		break;
	}
}

/* b is a near copy of a: one code point changed to a character the old rule confused. */
static void
gen_mutant(struct gen *g, const struct val *a, struct val *b)
{
	static const char *const subst[] = { "_", "-", ".", " ", "-2E", "-5F", "-2D", "__", "" };
	const char *with = subst[gen_below(g, sizeof(subst) / sizeof(subst[0]))];
	size_t at, wl = strlen(with), jl = 0, i;

	/* a's want is valid UTF-8: pick a byte that starts a code point */
	do
		at = gen_below(g, a->want_len);
	while (((unsigned char)a->want[at] & 0xc0) == 0x80);
	i = at + 1;
	while (i < a->want_len && ((unsigned char)a->want[i] & 0xc0) == 0x80)
		i++;
	b->want_len = 0;
	memcpy(b->want, a->want, at);
	memcpy(b->want + at, with, wl);
	memcpy(b->want + at + wl, a->want + i, a->want_len - i);
	b->want_len = at + wl + a->want_len - i;
	b->want[b->want_len] = '\0';
	/* JSON: every byte of want as \u escapes where needed */
	b->json[jl++] = '"';
	for (i = 0; i < b->want_len; i++) {
		unsigned char ch = (unsigned char)b->want[i];

		if (ch < 0x20 || ch == '"' || ch == '\\')
			jl += (size_t)snprintf(b->json + jl, sizeof(b->json) - jl, "\\u%04x", ch);
		else
			b->json[jl++] = (char)ch;
	}
	b->json[jl++] = '"';
	b->json[jl] = '\0';
}

/* A random value; *is_num says whether it is a number (its value in *nm). */
static void
gen_value(struct gen *g, struct val *v, size_t i, struct num *nm, int *is_num)
{
	*is_num = 0;
	if (i % 97 == 0) {
		gen_string(g, v, 500 + gen_below(g, 1500));   /* very long: up to 6000 bytes */
	} else if (gen_below(g, 3) == 0) {
		gen_number(g, v, nm, 0);
		*is_num = 1;
	} else {
		gen_string(g, v, 1 + gen_below(g, 12));
	}
}

/* Map v through r: 0 and the name in name, or the map's rc. */
static int
gen_map(const struct relay_route *r, const struct val *v, char *name, size_t n)
{
	struct relay_plan plan;
	char why[256], body[16400];
	json_t *p;
	int rc;

	snprintf(body, sizeof(body), "{\"v\": %s}", v->json);
	p = json_loads(body, JSON_DECODE_ANY, NULL);
	if (p == NULL)
		return -1000;
	rc = relay_route_map(r, p, MODULE, &plan, why, sizeof(why));
	if (rc == 0) {
		snprintf(name, n, "%s", plan.xmlid_name);
		relay_plan_clear(&plan);
	}
	json_decref(p);
	return rc;
}

#define PROPERTY_PAIRS 200000

static void
test_external_id_property(void)
{
	static struct val a, b;
	static char na[20000], nb[20000], dec[8192];
	struct gen g = { 0x9e3779b97f4a7c15ULL };
	struct relay_routes *rs = NULL;
	const struct relay_route *r = xid_route("{/v}", &rs);
	size_t i, len, bad_pairs = 0, bad_decode = 0, bad_map = 0, same = 0;

	if (r == NULL)
		goto out;
	for (i = 0; i < PROPERTY_PAIRS; i++) {
		struct num nm;
		int ra, rb, want_same, is_num, b_num;

		gen_value(&g, &a, i, &nm, &is_num);
		if (is_num && gen_below(&g, 2) == 0)
			gen_number(&g, &b, &nm, 1);     /* the same number, another spelling */
		else if (!is_num && gen_below(&g, 3) == 0)
			gen_mutant(&g, &a, &b);
		else
			gen_value(&g, &b, i + 1, &nm, &b_num);
		if (a.want_len == 0 || b.want_len == 0)
			continue;  /* "" is a mapping failure, tested above */
		ra = gen_map(r, &a, na, sizeof(na));
		rb = gen_map(r, &b, nb, sizeof(nb));
		if (ra != 0 || rb != 0) {
			if (bad_map++ < 5)
				fprintf(stderr, "pair %zu: map failed (%d, %d): %s / %s\n", i, ra, rb,
				        a.json, b.json);
			continue;
		}
		want_same = a.want_len == b.want_len && memcmp(a.want, b.want, a.want_len) == 0;
		same += want_same;
		if (want_same != (strcmp(na, nb) == 0)) {
			if (bad_pairs++ < 5)
				fprintf(stderr, "pair %zu: %s and %s give %s and %s\n", i, a.json, b.json,
				        na, nb);
		}
		/* the name is made of [A-Za-z0-9_-] and decodes to the value's text */
		if (strspn(na, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
		    != strlen(na) || relay_xid_decode(na, strlen(na), dec, sizeof(dec), &len) != 0 ||
		    len != a.want_len || memcmp(dec, a.want, len) != 0) {
			if (bad_decode++ < 5)
				fprintf(stderr, "pair %zu: %s gives %s, which does not decode to %s\n", i,
				        a.json, na, a.want);
		}
	}
	CHECK_INT(bad_map, 0);
	CHECK_INT(bad_pairs, 0);
	CHECK_INT(bad_decode, 0);
	/* the generator does make equal values in different spellings */
	CHECK(same > 10000);
	fprintf(stderr, "%d pairs, %zu of one value in two spellings\n", PROPERTY_PAIRS, same);
out:
	relay_routes_free(rs);
}

/* The shipped example's routes compile, and its order lines have ids. */
static void
test_packaged_example(void)
{
	struct relay_config *cfg = NULL;
	struct relay_routes *rs = NULL;
	struct relay_config_error err;
	struct relay_plan plan;
	char why[256];
	json_t *o = parse("{\"id\": 5, \"name\": \"#5\", \"customer\": {\"id\": 7}, "
	                  "\"order_number\": 5, \"line_items\": [{\"id\": 91, \"title\": \"x\", "
	                  "\"sku\": \"SKU-1\", \"quantity\": 1, \"price\": 2.5}]}");
	int rc;

	setenv("CREDENTIALS_DIRECTORY", "config/example-creds", 1);
	rc = relay_config_load("../../packaging/odoo-relay.json", &cfg, &err);
	unsetenv("CREDENTIALS_DIRECTORY");
	CHECK_INT(rc, 0);
	if (rc == 0)
		rc = relay_routes_compile(cfg, &rs, &err);
	CHECK_INT(rc, 0);
	if (rc != 0) {
		fprintf(stderr, "   %s:%u:%u: %s\n", err.file, err.line, err.column, err.text);
		goto out;
	}
	CHECK_INT(relay_route_map(relay_routes_find(rs, "shop-orders"), o, MODULE, &plan, why,
	                          sizeof(why)), 0);
	CHECK_JSON(json_array_get(plan.load_fields, 4), "\"order_line/id\"");
	CHECK_JSON(json_array_get(json_array_get(plan.load_data, 0), 4),
	           "\"odoo_relay.shop_order_line_91\"");
	relay_plan_clear(&plan);
out:
	json_decref(o);
	relay_routes_free(rs);
	relay_config_free(cfg);
}

/* ------------------------------------------------------------------ */
/* Destinations                                                        */

#define DHEAD "{\"listen\": \"127.0.0.1:0\",\n" \
	" \"sources\": {\"shop\": {\"verify\": {\"scheme\": \"none\"}, \"dedup\": {\"pointer\": \"/id\"}}},\n"
#define DODOO(db) "{\"url\": \"http://127.0.0.1:8069\", \"database\": \"" db "\", " \
	"\"login\": \"bot\", \"api_key_file\": \"config/secrets/odoo.key\""
#define DROUTE_NAMED(name, extra) "{\"name\": \"" name "\", \"source\": \"shop\", " \
	"\"operation\": \"delete\", \"model\": \"res.partner\", \"external_id\": \"x_{/id}\"" extra "}"
#define DROUTE(extra) "{\"name\": \"r\", \"source\": \"shop\", \"operation\": \"delete\", " \
	"\"model\": \"res.partner\", \"external_id\": \"x_{/id}\"" extra "}"

/* Load text and compile its routes: the compile's rc, routes in *out. */
static int
compile_text(const char *text, struct relay_routes **out, struct relay_config_error *err)
{
	struct relay_config *cfg = NULL;
	int rc;

	memset(err, 0, sizeof(*err));
	*out = NULL;
	rc = relay_config_loadb("d.json", text, strlen(text), &cfg, err);
	if (rc != 0) {
		fprintf(stderr, "config does not load: %u:%u: %s\n", err->line, err->column, err->text);
		return rc;
	}
	rc = relay_routes_compile(cfg, out, err);
	relay_config_free(cfg);
	return rc;
}

/* Line and column of the first needle in text, counted from the top. */
static void
text_position(const char *text, const char *needle, unsigned *line, unsigned *col)
{
	const char *hit = strstr(text, needle), *p;

	*line = 1;
	*col = 1;
	CHECK(hit != NULL);
	for (p = text; hit != NULL && p < hit; p++) {
		if (*p == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

static void
test_destination_resolution(void)
{
	static const char none[] = DHEAD " \"routes\": [" DROUTE("") "]}";
	static const char one[] = DHEAD " \"odoo\": " DODOO("prod") "},\n \"routes\": [" DROUTE("") "]}";
	static const char named_one[] = DHEAD " \"destinations\": {\"a\": " DODOO("a") "}},\n"
		" \"routes\": [" DROUTE("") ",\n " DROUTE_NAMED("s", ", \"destination\": \"a\"") "]}";
	static const char two[] = DHEAD " \"odoo\": " DODOO("prod") "},\n"
		" \"destinations\": {\"staging\": " DODOO("staging") "}},\n"
		" \"routes\": [" DROUTE(", \"destination\": \"staging\"") ",\n "
		DROUTE_NAMED("p", ", \"destination\": \"odoo\"") "]}";
	struct relay_routes *rs;
	struct relay_config_error err;
	const struct relay_route *r;

	/* no destination: the route has none, its events are stored only */
	CHECK_INT(compile_text(none, &rs, &err), 0);
	r = relay_routes_find(rs, "r");
	CHECK(r != NULL && relay_route_destination(r) == NULL);
	relay_routes_free(rs);

	/* one: routes need not name it */
	CHECK_INT(compile_text(one, &rs, &err), 0);
	r = relay_routes_find(rs, "r");
	CHECK_STR(r ? relay_route_destination(r) : NULL, "odoo");
	relay_routes_free(rs);
	CHECK_INT(compile_text(named_one, &rs, &err), 0);
	r = relay_routes_find(rs, "r");
	CHECK_STR(r ? relay_route_destination(r) : NULL, "a");
	r = relay_routes_find(rs, "s");
	CHECK_STR(r ? relay_route_destination(r) : NULL, "a");
	relay_routes_free(rs);

	/* several: each route names its own */
	CHECK_INT(compile_text(two, &rs, &err), 0);
	r = relay_routes_find(rs, "r");
	CHECK_STR(r ? relay_route_destination(r) : NULL, "staging");
	r = relay_routes_find(rs, "p");
	CHECK_STR(r ? relay_route_destination(r) : NULL, "odoo");
	relay_routes_free(rs);
}

static void
test_destination_errors(void)
{
	static const struct {
		const char *text;
		const char *at;
		const char *want;
	} cases[] = {
		{ DHEAD " \"odoo\": " DODOO("prod") "},\n \"destinations\": {\"b\": " DODOO("b") "}},\n"
		  " \"routes\": [\n  " DROUTE("") "]}", "{\"name\"",
		  "routes[0] (r): missing required key \"destination\" (2 destinations are configured)" },
		{ DHEAD " \"odoo\": " DODOO("prod") "},\n"
		  " \"routes\": [\n  " DROUTE(", \"destination\": \"prod\"") "]}", "\"prod\"}",
		  "routes[0] (r): destination: no destination is named \"prod\"" },
		{ DHEAD " \"routes\": [\n  " DROUTE(", \"destination\": \"odoo\"") "]}", "\"odoo\"",
		  "routes[0] (r): destination: no destination is named \"odoo\"" },
		{ DHEAD " \"odoo\": " DODOO("prod") "},\n"
		  " \"routes\": [\n  " DROUTE(", \"destination\": 7") "]}", "7}",
		  "routes[0] (r): destination: expected a string, got an integer" },
	};
	struct relay_routes *rs;
	struct relay_config_error err;
	unsigned line, col;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_INT(compile_text(cases[i].text, &rs, &err), -RELAY_ECONFIG);
		CHECK(rs == NULL);
		CHECK_STR(err.text, cases[i].want);
		CHECK_STR(err.file, "d.json");
		text_position(cases[i].text, cases[i].at, &line, &col);
		CHECK_INT(err.line, line);
		CHECK_INT(err.column, col);
	}
}

/* A route's backoff: its own keys, else its destination's, else delivery's. */
static void
test_backoff_inheritance(void)
{
	static const char text[] = DHEAD
		" \"delivery\": {\"backoff\": {\"base_ms\": 100, \"cap_ms\": 9000, \"max_attempts\": 4}},\n"
		" \"odoo\": " DODOO("prod") "},\n"
		" \"destinations\": {\"slow\": " DODOO("slow") ", \"backoff\": {\"cap_ms\": 5000, \"max_age_s\": 60}}},\n"
		" \"routes\": [" DROUTE(", \"destination\": \"odoo\"") ",\n "
		DROUTE_NAMED("s", ", \"destination\": \"slow\"") ",\n "
		DROUTE_NAMED("t", ", \"destination\": \"slow\", \"backoff\": {\"base_ms\": 300, \"max_attempts\": 2}")
		"]}";
	struct relay_routes *rs;
	struct relay_config_error err;
	const struct relay_backoff_conf *b;

	CHECK_INT(compile_text(text, &rs, &err), 0);
	if (rs == NULL)
		return;
	b = relay_route_backoff(relay_routes_find(rs, "r"));  /* delivery's */
	CHECK_INT(b->base_ms, 100);
	CHECK_INT(b->cap_ms, 9000);
	CHECK_INT(b->max_attempts, 4);
	CHECK_INT(b->max_age_s, 259200);
	b = relay_route_backoff(relay_routes_find(rs, "s"));  /* its destination's */
	CHECK_INT(b->base_ms, 100);
	CHECK_INT(b->cap_ms, 5000);
	CHECK_INT(b->max_attempts, 4);
	CHECK_INT(b->max_age_s, 60);
	b = relay_route_backoff(relay_routes_find(rs, "t"));  /* its own, over those */
	CHECK_INT(b->base_ms, 300);
	CHECK_INT(b->cap_ms, 5000);
	CHECK_INT(b->max_attempts, 2);
	CHECK_INT(b->max_age_s, 60);
	relay_routes_free(rs);
}

/* ------------------------------------------------------------------ */

struct bad {
	const char *route;   /* the text of routes[1] */
	const char *at;      /* where the error must point: the first occurrence */
	const char *text;    /* the error text (exact) */
};

#define R(rest) "{\"name\": \"r\", \"source\": \"shop\", \"operation\": \"upsert\", " \
	"\"model\": \"res.partner\", \"external_id\": \"c_{/id}\",\n   " rest "}"

static const struct bad bad[] = {
	{ R("\"fields\": {\"email\": 5}"), "5}",
	  "routes[1] (r): fields.email: expected a string or an object with "
	  "pointer/template/const/lookup" },
	{ R("\"fields\": {\"name\": \"n\"}, \"colour\": \"red\""), "\"red\"",
	  "routes[1] (r): unknown key \"colour\" for operation upsert" },
	{ R("\"fields\": {\"name\": \"n\"}, \"create\": \"yes\""), "\"yes\"",
	  "routes[1] (r): create: expected a boolean, got a string" },
	{ "{\"name\": \"r\", \"source\": \"nope\", \"operation\": \"delete\", \"model\": \"m\", "
	  "\"external_id\": \"x_{/id}\"}", "\"nope\"",
	  "routes[1] (r): source: no source is named \"nope\"" },
	{ "{\"name\": \"first\", \"source\": \"shop\", \"operation\": \"delete\", \"model\": \"m\", "
	  "\"external_id\": \"x_{/id}\"}", "\"first\"",
	  "routes[1] (first): name: routes[0] has the same name" },
	{ "{\"name\": \"a b\", \"source\": \"shop\"}", "\"a b\"",
	  "routes[1]: name: expected 1 to 64 of [A-Za-z0-9_.-]" },
	{ "{\"source\": \"shop\"}", "{",
	  "routes[1]: missing required key \"name\"" },
	{ "{\"name\": \"r\", \"source\": \"shop\",\n \"external_id\": \"x_{/id}\"}", "{",
	  "routes[1] (r): missing required key \"operation\"" },
	{ "{\"name\": \"r\", \"source\": \"shop\", \"operation\": \"merge\"}", "\"merge\"",
	  "routes[1] (r): operation: unknown operation \"merge\" (expected one of upsert, "
	  "write, delete, call, post)" },
	{ "{\"name\": \"r\", \"source\": \"shop\", \"operation\": \"delete\", \"external_id\": \"x_{/id}\"}",
	  "{", "routes[1] (r): missing required key \"model\"" },
	{ "{\"name\": \"r\", \"source\": \"shop\", \"operation\": \"upsert\", \"model\": \"m\",\n"
	  " \"fields\": {\"name\": \"n\"}}", "{",
	  "routes[1] (r): external_id is required for upsert" },
	{ "{\"name\": \"r\", \"source\": \"shop\", \"operation\": \"upsert\", \"model\": \"m\",\n"
	  " \"external_id\": \"x_{/id}\"}", "{",
	  "routes[1] (r): fields is required for upsert" },
	{ R("\"fields\": true"), "{",
	  "routes[1] (r): fields: expected an object, got a boolean" },
	{ R("\"fields\": {\"email\": {\"pointer\": \"email\"}}"), "\"email\"}",
	  "routes[1] (r): fields.email.pointer: a JSON pointer must start with \"/\"" },
	{ R("\"fields\": {\"email\": {\"pointer\": \"/a~2\"}}"), "\"/a~2\"",
	  "routes[1] (r): fields.email.pointer: bad JSON pointer (\"~\" must be followed by "
	  "0 or 1)" },
	{ R("\"fields\": {\"name\": \"x {first}\"}"), "\"x {",
	  "routes[1] (r): fields.name: the pointer at character 4 of the template must start "
	  "with \"/\" (write \"{{\" for a brace)" },
	{ R("\"fields\": {\"name\": \"ab{/c\"}"), "\"ab{",
	  "routes[1] (r): fields.name: unclosed \"{\" at character 3 of the template" },
	{ R("\"fields\": {\"name\": \"a}b\"}"), "\"a}b\"",
	  "routes[1] (r): fields.name: unmatched \"}\" at character 2 of the template "
	  "(write \"}}\" for a brace)" },
	{ R("\"fields\": {\"name\": {\"template\": \"{/a~x}\"}}"), "\"{/a~x}\"",
	  "routes[1] (r): fields.name.template: bad JSON pointer at character 2 of the "
	  "template (\"~\" must be followed by 0 or 1)" },
	{ "{\"name\": \"r\", \"source\": \"shop\", \"operation\": \"delete\", \"model\": \"m\", "
	  "\"external_id\": \"x_{id}\"}", "\"x_{id}\"",
	  "routes[1] (r): external_id: the pointer at character 4 of the template must start "
	  "with \"/\" (write \"{{\" for a brace)" },
	{ R("\"fields\": {\"name\": \"n\"}, \"backoff\": {\"base_ms\": 5000, \"cap_ms\": 100}"),
	  "{\"base_ms\"", "routes[1] (r): backoff.cap_ms: base_ms (5000) must not exceed cap_ms (100)" },
	{ R("\"fields\": {\"name\": \"n\"}, \"backoff\": {\"base_ms\": 0}"), "0}",
	  "routes[1] (r): backoff.base_ms: 0 is out of range (1..86400000)" },
	{ R("\"fields\": {\"name\": \"n\"}, \"backoff\": {\"cap\": 1}"), "1}",
	  "routes[1] (r): backoff: unknown key \"cap\"" },
	{ R("\"fields\": {\"name\": \"n\"}, \"permanent_retries\": -1"), "-1",
	  "routes[1] (r): permanent_retries: -1 is out of range (0..1000)" },
	{ R("\"fields\": {\"name\": \"n\"}, \"dead_lane\": \"stop\""), "\"stop\"",
	  "routes[1] (r): dead_lane: unknown policy \"stop\" (expected one of continue, hold)" },
	{ R("\"owns\": [\"name\"],\n \"fields\": {\"name\": \"n\", \"email\": {\"pointer\": \"/e\"}}"),
	  "{\"pointer\": \"/e\"}",
	  "routes[1] (r): fields.email: the field is not in owns: this route is not its source "
	  "of truth" },
	{ R("\"owns\": [\"name\"], \"fields\": {\"name\": \"n\"}, \"lines\": {\"field\": \"line_ids\","
	    " \"pointer\": \"/l\", \"fields\": {\"id\": \"l_{/id}\", \"name\": \"x\"}}"), "{\"field\"",
	  "routes[1] (r): lines.field: line_ids is not in owns: this route is not its source "
	  "of truth" },
	{ "{\"name\": \"r\", \"source\": \"shop\", \"operation\": \"call\", \"model\": \"m\", "
	  "\"method\": \"_secret\"}", "\"_secret\"",
	  "routes[1] (r): method: _secret is private (leading \"_\"): Odoo refuses to call it "
	  "remotely" },
	{ "{\"name\": \"r\", \"source\": \"shop\", \"operation\": \"call\", \"model\": \"m\", "
	  "\"method\": \"go\", \"fields\": {}}", "{}",
	  "routes[1] (r): unknown key \"fields\" for operation call" },
	{ "{\"name\": \"r\", \"source\": \"shop\", \"operation\": \"write\", \"model\": \"m\", "
	  "\"external_id\": \"x_{/id}\",\n \"fields\": {\"country_id/id\": \"base.be\"}}", "\"base.be\"",
	  "routes[1] (r): fields.country_id/id: a relation by external ID needs load's "
	  "resolution: use an upsert route" },
	{ "{\"name\": \"r\", \"source\": \"shop\", \"operation\": \"write\", \"model\": \"m\", "
	  "\"external_id\": \"x_{/id}\",\n \"fields\": {\"n\": \"x\"}, \"lines\": {}}", "{}}",
	  "routes[1] (r): unknown key \"lines\" for operation write" },
	{ R("\"fields\": {\"parent_id\": {\"external\": true, \"template\": \"c_{/p}\"}}"),
	  "{\"external\"",
	  "routes[1] (r): fields.parent_id: an external ID goes in a relation column: name it "
	  "\"parent_id/id\"" },
	{ R("\"fields\": {\"country_id/id\": {\"lookup\": {\"BE\": \"base.be\"}}}"), "{\"lookup\"",
	  "routes[1] (r): fields.country_id/id: a lookup needs a pointer or a template for its "
	  "key" },
	{ R("\"fields\": {\"name\": {\"const\": \"x\", \"optional\": true}}"), "{\"const\"",
	  "routes[1] (r): fields.name: a const takes no lookup, external, optional or default" },
	{ R("\"fields\": {\"name\": {\"const\": {\"a\": 1}}}"), "{\"a\"",
	  "routes[1] (r): fields.name: the const is an object, but a load cell holds a scalar" },
	{ R("\"fields\": {\"name\": {\"pointer\": \"/n\", \"fallback\": \"x\"}}"), "\"x\"",
	  "routes[1] (r): fields.name: unknown key \"fallback\"" },
	{ R("\"fields\": {\"id\": \"x\"}"), "\"x\"",
	  "routes[1] (r): fields.id: the id column comes from external_id" },
	{ R("\"fields\": {\"name\": \"a\", \"name/id\": \"b\"}"), "\"b\"",
	  "routes[1] (r): fields.name/id: the field is set twice (also as name)" },
	{ R("\"fields\": {\"na-me\": \"a\"}"), "\"a\"",
	  "routes[1] (r): fields.na-me: not a valid Odoo field name (a field or \"field/id\")" },
	{ R("\"fields\": {\"name\": \"n\"}, \"topics\": []"), "[]",
	  "routes[1] (r): topics: expected a non-empty array of patterns, got an empty array" },
	{ R("\"fields\": {\"name\": \"n\"}, \"create\": false, \"update\": false"), "{",
	  "routes[1] (r): create and update are both false: the route could do nothing" },
	{ R("\"fields\": {\"name\": \"n\"}, \"lines\": {\"field\": \"l\", \"fields\": {\"a\": \"b\"}}"),
	  "{\"field\"", "routes[1] (r): lines: pointer is required (the array in the payload)" },
	{ R("\"fields\": {\"name\": \"n\"}, \"lines\": {\"field\": \"l\", \"pointer\": \"/l\","
	    " \"fields\": {\"a\": 1.5}}"), "1.5",
	  "routes[1] (r): lines.fields.a: expected a string or an object with "
	  "pointer/template/const/lookup" },
	{ R("\"fields\": {\"order_line\": \"x\"}, \"lines\": {\"field\": \"order_line\","
	    " \"pointer\": \"/l\", \"fields\": {\"id\": \"l_{/id}\", \"a\": \"b\"}}"), "\"x\"",
	  "routes[1] (r): fields.order_line: order_line is also in lines" },
	{ "{\"name\": \"r\", \"source\": \"shop\", \"operation\": \"write\", \"model\": \"m\", "
	  "\"external_id\": \"x_{/id}\", \"create\": false,\n \"missing\": \"create\", \"fields\": {\"n\": \"x\"}}",
	  "\"create\", \"fields\"",
	  "routes[1] (r): missing: \"create\" contradicts \"create\": false" },
	/* external-ID templates: one value, one record */
	{ "{\"name\": \"r\", \"source\": \"shop\", \"operation\": \"delete\", \"model\": \"m\",\n"
	  " \"external_id\": \"the_one\"}", "\"the_one\"",
	  "routes[1] (r): external_id: the template has no {/pointer}: every event would name "
	  "the same record" },
	{ "{\"name\": \"r\", \"source\": \"shop\", \"operation\": \"delete\", \"model\": \"m\",\n"
	  " \"external_id\": \"\"}", "\"\"}",
	  "routes[1] (r): external_id: empty: an external ID needs a name" },
	{ "{\"name\": \"r\", \"source\": \"shop\", \"operation\": \"delete\", \"model\": \"m\",\n"
	  " \"external_id\": \"s_{/a}{/b}\"}", "\"s_{",
	  "routes[1] (r): external_id: the pointers at characters 3 and 7 of the template have "
	  "nothing between them, so two different values could give one external ID (put "
	  "\"--\" between them)" },
	{ "{\"name\": \"r\", \"source\": \"shop\", \"operation\": \"delete\", \"model\": \"m\",\n"
	  " \"external_id\": \"shop.customer_{/id}\"}", "\"shop.",
	  "routes[1] (r): external_id: \".\" at character 5 of the template cannot be in an "
	  "external ID (letters, digits, \"_\" and \"-\" only)" },
	{ "{\"name\": \"r\", \"source\": \"shop\", \"operation\": \"delete\", \"model\": \"m\",\n"
	  " \"external_id\": \"c {/id}\"}", "\"c {",
	  "routes[1] (r): external_id: byte 0x20 at character 2 of the template cannot be in an "
	  "external ID (letters, digits, \"_\" and \"-\" only)" },
	{ "{\"name\": \"r\", \"source\": \"shop\", \"operation\": \"delete\", \"model\": \"m\",\n"
	  " \"external_id\": \"c{{{/id}}}\"}", "\"c{{",
	  "routes[1] (r): external_id: \"{\" at character 2 of the template cannot be in an "
	  "external ID (letters, digits, \"_\" and \"-\" only)" },
	{ R("\"fields\": {\"parent_id/id\": {\"external\": true, \"template\": \"c.{/p}\"}}"),
	  "\"c.{",
	  "routes[1] (r): fields.parent_id/id.template: \".\" at character 2 of the template "
	  "cannot be in an external ID (letters, digits, \"_\" and \"-\" only)" },
	/* lines of an upsert need their own external ID */
	{ R("\"fields\": {\"name\": \"n\"}, \"lines\": {\"field\": \"order_line\","
	    " \"pointer\": \"/l\", \"fields\": {\"name\": {\"pointer\": \"/t\"}}}"), "{\"name\": {",
	  "routes[1] (r): lines.fields: \"id\" is required: without an external ID of its own "
	  "each line is created again every time the record is loaded (e.g. \"id\": "
	  "\"line_{/id}\")" },
	{ R("\"fields\": {\"name\": \"n\"}, \"lines\": [{\"field\": \"order_line\","
	    " \"pointer\": \"/l\", \"fields\": {\"id\": \"l_{/id}\"}},\n {\"field\": \"tag_ids\","
	    " \"pointer\": \"/t\", \"fields\": {\"name\": \"{/n}\"}}]"), "{\"name\": \"{/n}",
	  "routes[1] (r): lines[1].fields: \"id\" is required: without an external ID of its "
	  "own each line is created again every time the record is loaded (e.g. \"id\": "
	  "\"line_{/id}\")" },
	{ R("\"fields\": {\"name\": \"n\"}, \"lines\": {\"field\": \"order_line\","
	    " \"pointer\": \"/l\", \"fields\": {\"id\": \"line\"}}"), "\"line\"",
	  "routes[1] (r): lines.fields.id: the template has no {/pointer}: every event would "
	  "name the same record" },
	{ R("\"fields\": {\"name\": \"n\"}, \"lines\": {\"field\": \"order_line\","
	    " \"pointer\": \"/l\", \"fields\": {\"id\": {\"template\": \"{/a}{/b}\"}}}"),
	  "\"{/a}",
	  "routes[1] (r): lines.fields.id.template: the pointers at characters 1 and 5 of the "
	  "template have nothing between them, so two different values could give one external "
	  "ID (put \"--\" between them)" },
};

static void
test_config_errors(void)
{
	struct relay_routes *rs;
	struct relay_config_error err;
	char line[1024];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unsigned want_line, want_col;
		int rc = compile_one(bad[i].route, &rs, &err);

		CHECK_INT(rc, -RELAY_ECONFIG);
		CHECK(rs == NULL);
		CHECK_STR(err.text, bad[i].text);
		position_of(bad[i].route, bad[i].at, &want_line, &want_col);
		if (err.line != want_line || err.column != want_col)
			fprintf(stderr, "case %zu: %s\n", i, bad[i].text);
		CHECK_INT(err.line, want_line);
		CHECK_INT(err.column, want_col);
		relay_routes_free(rs);
	}

	/* the first case by hand: the 5 of "email": 5 is on line 6, column 24 */
	compile_one(bad[0].route, &rs, &err);
	CHECK_INT(err.line, 6);
	CHECK_INT(err.column, 24);
	relay_config_error_format(&err, line, sizeof(line));
	CHECK_STR(line, "test.json:6:24: routes[1] (r): fields.email: expected a string or an "
	          "object with pointer/template/const/lookup");
}

/* "batch" and "context": defaults, values, where they are refused. */
static void
test_batch_and_context(void)
{
	struct relay_config_error err;
	struct relay_routes *rs;
	const struct relay_route *r;
	unsigned rows;
	int64_t wait;

	CHECK_INT(compile_one("{\"name\": \"b\", \"source\": \"shop\", \"operation\": \"upsert\", "
	                      "\"model\": \"res.partner\", \"external_id\": \"c_{/id}\", "
	                      "\"fields\": {\"name\": \"{/n}\"}}", &rs, &err), 0);
	r = relay_routes_find(rs, "b");
	relay_route_batch(r, &rows, &wait);
	CHECK_INT(rows, RELAY_ROUTE_BATCH_ROWS);
	CHECK_INT(wait, RELAY_ROUTE_BATCH_WAIT_MS);
	CHECK(relay_route_context(r) == NULL);
	relay_routes_free(rs);

	CHECK_INT(compile_one("{\"name\": \"b\", \"source\": \"shop\", \"operation\": \"upsert\", "
	                      "\"model\": \"res.partner\", \"external_id\": \"c_{/id}\", "
	                      "\"fields\": {\"name\": \"{/n}\"}, \"batch\": {\"max_rows\": 7, "
	                      "\"max_wait_ms\": 0}, \"context\": {\"tracking_disable\": true}}",
	                      &rs, &err), 0);
	r = relay_routes_find(rs, "b");
	relay_route_batch(r, &rows, &wait);
	CHECK_INT(rows, 7);
	CHECK_INT(wait, 0);
	CHECK(json_is_true(json_object_get(relay_route_context(r), "tracking_disable")));
	relay_routes_free(rs);

	/* an upsert that may not update looks its record up first: alone */
	CHECK_INT(compile_one("{\"name\": \"b\", \"source\": \"shop\", \"operation\": \"upsert\", "
	                      "\"model\": \"res.partner\", \"external_id\": \"c_{/id}\", "
	                      "\"fields\": {\"name\": \"{/n}\"}, \"update\": false}", &rs, &err), 0);
	relay_route_batch(relay_routes_find(rs, "b"), &rows, &wait);
	CHECK_INT(rows, 1);
	relay_routes_free(rs);

	/* write, delete and call go alone: "batch" is refused there */
	CHECK_INT(compile_one("{\"name\": \"b\", \"source\": \"shop\", \"operation\": \"delete\", "
	                      "\"model\": \"res.partner\", \"external_id\": \"c_{/id}\", "
	                      "\"batch\": {\"max_rows\": 5}}", &rs, &err), -RELAY_ECONFIG);
	CHECK(strstr(err.text, "batch") != NULL);
	CHECK_INT(compile_one("{\"name\": \"b\", \"source\": \"shop\", \"operation\": \"delete\", "
	                      "\"model\": \"res.partner\", \"external_id\": \"c_{/id}\"}", &rs, &err), 0);
	relay_route_batch(relay_routes_find(rs, "b"), &rows, &wait);
	CHECK_INT(rows, 1);
	relay_routes_free(rs);

	/* out of range, unknown keys, a context that is not an object */
	CHECK_INT(compile_one("{\"name\": \"b\", \"source\": \"shop\", \"operation\": \"upsert\", "
	                      "\"model\": \"res.partner\", \"external_id\": \"c_{/id}\", "
	                      "\"fields\": {\"name\": \"{/n}\"}, \"batch\": {\"max_rows\": 0}}",
	                      &rs, &err), -RELAY_ECONFIG);
	CHECK(strstr(err.text, "batch.max_rows") != NULL);
	CHECK_INT(compile_one("{\"name\": \"b\", \"source\": \"shop\", \"operation\": \"upsert\", "
	                      "\"model\": \"res.partner\", \"external_id\": \"c_{/id}\", "
	                      "\"fields\": {\"name\": \"{/n}\"}, \"batch\": {\"rows\": 3}}",
	                      &rs, &err), -RELAY_ECONFIG);
	CHECK_INT(compile_one("{\"name\": \"b\", \"source\": \"shop\", \"operation\": \"upsert\", "
	                      "\"model\": \"res.partner\", \"external_id\": \"c_{/id}\", "
	                      "\"fields\": {\"name\": \"{/n}\"}, \"context\": 3}", &rs, &err),
	          -RELAY_ECONFIG);
	CHECK(strstr(err.text, "context") != NULL);

	/* "supersede": upsert and write, off by default */
	CHECK_INT(compile_one("{\"name\": \"b\", \"source\": \"shop\", \"operation\": \"upsert\", "
	                      "\"model\": \"res.partner\", \"external_id\": \"c_{/id}\", "
	                      "\"fields\": {\"name\": \"{/n}\"}, \"supersede\": true}", &rs, &err), 0);
	CHECK_INT(relay_route_supersede(relay_routes_find(rs, "b")), 1);
	relay_routes_free(rs);
	CHECK_INT(compile_one("{\"name\": \"b\", \"source\": \"shop\", \"operation\": \"write\", "
	                      "\"model\": \"res.partner\", \"external_id\": \"c_{/id}\", "
	                      "\"fields\": {\"name\": \"{/n}\"}}", &rs, &err), 0);
	CHECK_INT(relay_route_supersede(relay_routes_find(rs, "b")), 0);
	relay_routes_free(rs);
	CHECK_INT(compile_one("{\"name\": \"b\", \"source\": \"shop\", \"operation\": \"delete\", "
	                      "\"model\": \"res.partner\", \"external_id\": \"c_{/id}\", "
	                      "\"supersede\": true}", &rs, &err), -RELAY_ECONFIG);
	CHECK_INT(compile_one("{\"name\": \"b\", \"source\": \"shop\", \"operation\": \"upsert\", "
	                      "\"model\": \"res.partner\", \"external_id\": \"c_{/id}\", "
	                      "\"fields\": {\"name\": \"{/n}\"}, \"supersede\": 1}", &rs, &err),
	          -RELAY_ECONFIG);
}

/* "version": the stale guard's key, and version parsing. */
static int64_t
ver(enum relay_version_kind kind, const char *json, int *rc)
{
	json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
	int64_t out = -1;

	*rc = v ? relay_version_parse(kind, v, &out) : -1;
	json_decref(v);
	return out;
}

static void
test_version(void)
{
	static const char *const pre = "{\"name\": \"b\", \"source\": \"shop\", \"operation\": "
	                               "\"upsert\", \"model\": \"res.partner\", \"external_id\": "
	                               "\"c_{/id}\", \"fields\": {\"name\": \"{/n}\"}, ";
	struct relay_routes *rs;
	struct relay_config_error err;
	const char *ptr = NULL;
	int64_t window = 0, v;
	char text[512], why[128], *name = NULL;
	unsigned line, col;
	int rc;

	/* A plain pointer: an RFC 3339 time, default window. */
	snprintf(text, sizeof(text), "%s\"version\": \"/updated_at\"}", pre);
	CHECK_INT(compile_one(text, &rs, &err), 0);
	const struct relay_route *r = relay_routes_find(rs, "b");
	CHECK_INT(relay_route_version(r, &ptr, &window), RELAY_VERSION_RFC3339);
	CHECK_STR(ptr, "/updated_at");
	CHECK_INT(window, RELAY_ROUTE_VERSION_WINDOW_S);
	json_t *p = json_pack("{s:i,s:s,s:s}", "id", 42, "n", "A", "updated_at",
	                      "2026-01-02T03:04:05+01:00");
	CHECK_INT(relay_route_version_key(r, p, &name, &v, why, sizeof(why)), 0);
	CHECK_STR(name, "c_42");
	CHECK_INT(v, 1767319445000000LL);
	free(name);
	struct relay_plan plan;
	CHECK_INT(relay_route_map(r, p, "odoo_relay", &plan, why, sizeof(why)), 0);
	CHECK_INT(plan.has_version, 1);
	CHECK_INT(plan.version, 1767319445000000LL);
	relay_plan_clear(&plan);
	/* Missing or unusable: a failure naming the pointer. */
	json_object_del(p, "updated_at");
	CHECK_INT(relay_route_map(r, p, "odoo_relay", &plan, why, sizeof(why)), -RELAY_EPATH);
	CHECK_STR(why, "missing /updated_at for version");
	CHECK_INT(relay_route_version_key(r, p, &name, &v, why, sizeof(why)), -RELAY_EPATH);
	CHECK(name == NULL);
	json_object_set_new(p, "updated_at", json_string("yesterday"));
	CHECK_INT(relay_route_map(r, p, "odoo_relay", &plan, why, sizeof(why)), -RELAY_EINVAL);
	CHECK_STR(why, "version: /updated_at is not an RFC 3339 time");
	json_decref(p);
	relay_routes_free(rs);

	/* The object form, write routes too. */
	CHECK_INT(compile_one("{\"name\": \"b\", \"source\": \"shop\", \"operation\": \"write\", "
	                      "\"model\": \"res.partner\", \"external_id\": \"c_{/id}\", "
	                      "\"fields\": {\"name\": \"{/n}\"}, \"version\": {\"pointer\": \"/v\", "
	                      "\"kind\": \"number\", \"window_s\": 60}}", &rs, &err), 0);
	CHECK_INT(relay_route_version(relay_routes_find(rs, "b"), &ptr, &window),
	          RELAY_VERSION_NUMBER);
	CHECK_STR(ptr, "/v");
	CHECK_INT(window, 60);
	relay_routes_free(rs);
	/* None by default. */
	snprintf(text, sizeof(text), "%s\"supersede\": true}", pre);
	CHECK_INT(compile_one(text, &rs, &err), 0);
	CHECK_INT(relay_route_version(relay_routes_find(rs, "b"), NULL, NULL), RELAY_VERSION_NONE);
	relay_routes_free(rs);

	/* Errors, placed at the value. */
	static const struct {
		const char *tail, *at, *says;
	} bad_keys[] = {
		{ "\"version\": \"updated_at\"}", "\"updated_at\"", "must start with" },
		{ "\"version\": 3}", "3}", "expected a JSON pointer" },
		{ "\"version\": {\"pointer\": \"/v\", \"kind\": \"date\"}}", "\"date\"", "kind" },
		{ "\"version\": {\"kind\": \"number\"}}", "{\"kind\"", "pointer" },
		{ "\"version\": {\"pointer\": \"/v\", \"window_s\": 0}}", "0}", "window_s" },
		{ "\"version\": {\"pointer\": \"/v\", \"order\": 1}}", "1}}", "order" },
	};
	for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
		snprintf(text, sizeof(text), "%s%s", pre, bad_keys[i].tail);
		CHECK_INT(compile_one(text, &rs, &err), -RELAY_ECONFIG);
		CHECK(strstr(err.text, bad_keys[i].says) != NULL);
		CHECK(strstr(err.text, "version") != NULL);
		position_of(text, bad_keys[i].at, &line, &col);
		if (err.line != line || err.column != col)
			fprintf(stderr, "bad[%zu]: %u:%u, want %u:%u: %s\n", i, err.line, err.column, line,
			        col, err.text);
		CHECK_INT(err.line, line);
		CHECK_INT(err.column, col);
	}
	CHECK_INT(compile_one("{\"name\": \"b\", \"source\": \"shop\", \"operation\": \"delete\", "
	                      "\"model\": \"res.partner\", \"external_id\": \"c_{/id}\", "
	                      "\"version\": \"/v\"}", &rs, &err), -RELAY_ECONFIG);

	/* RFC 3339: offsets, fractions, one instant written two ways. */
	CHECK_INT(ver(RELAY_VERSION_RFC3339, "\"1970-01-01T00:00:00Z\"", &rc), 0);
	CHECK_INT(rc, 0);
	CHECK_INT(ver(RELAY_VERSION_RFC3339, "\"2024-02-29T12:00:00.5Z\"", &rc), 1709208000500000LL);
	CHECK_INT(ver(RELAY_VERSION_RFC3339, "\"2024-02-29T13:30:00.500000+01:30\"", &rc),
	          1709208000500000LL);
	CHECK_INT(ver(RELAY_VERSION_RFC3339, "\"2024-02-29t07:00:00.123456789-05:00\"", &rc),
	          1709208000123456LL);
	CHECK_INT(ver(RELAY_VERSION_RFC3339, "\"2024-02-29 12:00:00z\"", &rc), 1709208000000000LL);
	CHECK_INT(ver(RELAY_VERSION_RFC3339, "\"1969-12-31T23:59:59Z\"", &rc), -1000000LL);
	CHECK_INT(ver(RELAY_VERSION_RFC3339, "\"2016-12-31T23:59:60Z\"", &rc), 1483228800000000LL);
	static const char *const bad_times[] = {
		"\"2023-02-29T00:00:00Z\"", "\"2024-13-01T00:00:00Z\"", "\"2024-01-01T24:00:00Z\"",
		"\"2024-01-01T00:00:00\"", "\"2024-01-01T00:00:00.Z\"", "\"2024-01-01T00:00:00+0100\"",
		"\"2024-01-01T00:00:00Zx\"", "\"2024-01-01\"", "1704067200", "\"2024-01-01T00:00:00.1234567890Z\"",
	};
	for (size_t i = 0; i < sizeof(bad_times) / sizeof(bad_times[0]); i++) {
		ver(RELAY_VERSION_RFC3339, bad_times[i], &rc);
		if (rc != -RELAY_EINVAL)
			fprintf(stderr, "accepted %s\n", bad_times[i]);
		CHECK_INT(rc, -RELAY_EINVAL);
	}
	/* Numbers: integers, as JSON or as text. */
	CHECK_INT(ver(RELAY_VERSION_NUMBER, "17", &rc), 17);
	CHECK_INT(ver(RELAY_VERSION_NUMBER, "\"-17\"", &rc), -17);
	CHECK_INT(ver(RELAY_VERSION_NUMBER, "\"9223372036854775807\"", &rc), INT64_MAX);
	CHECK_INT(rc, 0);
	CHECK_INT(ver(RELAY_VERSION_NUMBER, "\"-9223372036854775808\"", &rc), INT64_MIN);
	CHECK_INT(rc, 0);
	static const char *const bad_numbers[] = {
		"1.5", "\"9223372036854775808\"", "\"12a\"", "\"\"", "\"-\"", "true", "null",
	};
	for (size_t i = 0; i < sizeof(bad_numbers) / sizeof(bad_numbers[0]); i++) {
		ver(RELAY_VERSION_NUMBER, bad_numbers[i], &rc);
		CHECK_INT(rc, -RELAY_EINVAL);
	}
}

int
main(void)
{
	struct relay_config *cfg = NULL;
	struct relay_config_error err;
	int rc;

	rc = relay_config_load("route/routes.json", &cfg, &err);
	CHECK_INT(rc, 0);
	if (rc == 0) {
		rc = relay_routes_compile(cfg, &fixture, &err);
		CHECK_INT(rc, 0);
	}
	if (rc != 0) {
		fprintf(stderr, "fixture: %s:%u:%u: %s\n", err.file, err.line, err.column, err.text);
		relay_config_free(cfg);
		return check_done();
	}
	relay_config_free(cfg);

	RUN(test_compile_good);
	RUN(test_compile_no_routes);
	RUN(test_match);
	RUN(test_customer_upsert);
	RUN(test_optional_and_default);
	RUN(test_missing_path);
	RUN(test_wrong_kind);
	RUN(test_order_lines);
	RUN(test_two_line_fields);
	RUN(test_write);
	RUN(test_delete);
	RUN(test_call);
	RUN(test_template_escapes);
	RUN(test_external_id_names);
	RUN(test_external_id_legacy);
	RUN(test_xid_encoding);
	RUN(test_batch_and_context);
	RUN(test_external_id_collisions);
	RUN(test_external_id_templates);
	RUN(test_external_id_property);
	RUN(test_packaged_example);
	RUN(test_owns);
	RUN(test_config_errors);
	RUN(test_destination_resolution);
	RUN(test_destination_errors);
	RUN(test_backoff_inheritance);
	RUN(test_version);
	relay_routes_free(fixture);
	return check_done();
}
