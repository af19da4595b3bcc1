/* Unit tests for lib/route.c; run in test/fixtures (fixtures in route/). */
#include <errno.h>
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
	CHECK_INT(relay_route_dead_lane(r), RELAY_DEAD_HOLD);

	r = relay_routes_at(fixture, 1);
	CHECK_STR(relay_route_name(r), "shop-orders");
	b = relay_route_backoff(r);
	CHECK_INT(b->base_ms, 500);
	CHECK_INT(b->cap_ms, 60000);
	CHECK_INT(b->max_attempts, 7);
	CHECK_INT(relay_route_permanent_retries(r), 0);
	CHECK_INT(relay_route_permanent_retry_delay_ms(r), 60000);
	CHECK_INT(relay_route_dead_lane(r), RELAY_DEAD_CONTINUE);

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
	/* three rows; the parent cells only in the first; "C.3" sanitised */
	CHECK_JSON(plan.load_data,
	           "[[\"odoo_relay.shop_order_1001\",\"odoo_relay.shop_customer_42\",\"#1001\","
	           "\"odoo_relay.shop_line_1\",\"odoo_relay.shop_product_A-1\",\"2\",\"9.50\","
	           "\"Apple\"],"
	           "[\"\",\"\",\"\",\"odoo_relay.shop_line_2\",\"odoo_relay.shop_product_B-2\","
	           "\"1\",\"3.00\",\"Bread\"],"
	           "[\"\",\"\",\"\",\"odoo_relay.shop_line_3\",\"odoo_relay.shop_product_C_3\","
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
		"{\"field\": \"task_ids\", \"pointer\": \"/tasks\", \"fields\": {\"name\": \"{/t}\"}},"
		"{\"field\": \"tag_ids\", \"pointer\": \"/tags\", \"optional\": true, "
		"\"fields\": {\"name\": {\"pointer\": \"/n\"}}}]}";
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
	CHECK_JSON(plan.load_fields, "[\"id\",\"name\",\"task_ids/name\",\"tag_ids/name\"]");
	CHECK_JSON(plan.load_data, "[[\"odoo_relay.p_1\",\"P\",\"a\",\"1\"],[\"\",\"\",\"b\",\"\"],"
	           "[\"\",\"\",\"c\",\"\"]]");
	relay_plan_clear(&plan);
	/* an optional array that is absent: its columns stay, empty */
	json_object_del(p, "tags");
	CHECK_INT(relay_route_map(relay_routes_find(rs, "r"), p, MODULE, &plan, why, sizeof(why)), 0);
	CHECK_JSON(plan.load_data, "[[\"odoo_relay.p_1\",\"P\",\"a\",\"\"],[\"\",\"\",\"b\",\"\"],"
	           "[\"\",\"\",\"c\",\"\"]]");
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
	           "\"partner_ids\":[3,4],\"author\":\"odoo_relay.u_1\"}");
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
	/* every byte outside [A-Za-z0-9_-] becomes '_' (é is two bytes) */
	CHECK_INT(relay_route_map(relay_routes_find(rs, "s"), p, MODULE, &plan, why, sizeof(why)), 0);
	CHECK_STR(plan.xmlid_module, "odoo_relay");
	CHECK_STR(plan.xmlid_name, "a_b_c___-Z_9");
	relay_plan_clear(&plan);

	json_object_set_new(p, "handle", json_string(""));
	rc = relay_route_map(relay_routes_find(rs, "s"), p, MODULE, &plan, why, sizeof(why));
	CHECK_INT(rc, -RELAY_EINVAL);
	CHECK_STR(why, "external_id: the external ID name is empty");

	json_object_set_new(p, "handle", json_integer(77));
	CHECK_INT(relay_route_map(relay_routes_find(rs, "s"), p, "my_mod", &plan, why, sizeof(why)), 0);
	CHECK_STR(plan.xmlid_module, "my_mod");
	CHECK_STR(plan.xmlid_name, "77");
	relay_plan_clear(&plan);
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
	  "\"external_id\": \"x\"}", "\"nope\"",
	  "routes[1] (r): source: no source is named \"nope\"" },
	{ "{\"name\": \"first\", \"source\": \"shop\", \"operation\": \"delete\", \"model\": \"m\", "
	  "\"external_id\": \"x\"}", "\"first\"",
	  "routes[1] (first): name: routes[0] has the same name" },
	{ "{\"name\": \"a b\", \"source\": \"shop\"}", "\"a b\"",
	  "routes[1]: name: expected 1 to 64 of [A-Za-z0-9_.-]" },
	{ "{\"source\": \"shop\"}", "{",
	  "routes[1]: name is required" },
	{ "{\"name\": \"r\", \"source\": \"shop\",\n \"external_id\": \"x\"}", "{",
	  "routes[1] (r): operation is required (upsert, write, delete or call)" },
	{ "{\"name\": \"r\", \"source\": \"shop\", \"operation\": \"merge\"}", "\"merge\"",
	  "routes[1] (r): operation: unknown \"merge\" (upsert, write, delete or call)" },
	{ "{\"name\": \"r\", \"source\": \"shop\", \"operation\": \"delete\", \"external_id\": \"x\"}",
	  "{", "routes[1] (r): model is required" },
	{ "{\"name\": \"r\", \"source\": \"shop\", \"operation\": \"upsert\", \"model\": \"m\",\n"
	  " \"fields\": {\"name\": \"n\"}}", "{",
	  "routes[1] (r): external_id is required for upsert" },
	{ "{\"name\": \"r\", \"source\": \"shop\", \"operation\": \"upsert\", \"model\": \"m\",\n"
	  " \"external_id\": \"x\"}", "{",
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
	  "{\"base_ms\"", "routes[1] (r): backoff: base_ms 5000 is above cap_ms 100" },
	{ R("\"fields\": {\"name\": \"n\"}, \"backoff\": {\"base_ms\": 0}"), "0}",
	  "routes[1] (r): backoff.base_ms: 0 is out of range [1, 9223372036854775807]" },
	{ R("\"fields\": {\"name\": \"n\"}, \"backoff\": {\"cap\": 1}"), "1}",
	  "routes[1] (r): backoff: unknown key \"cap\"" },
	{ R("\"fields\": {\"name\": \"n\"}, \"permanent_retries\": -1"), "-1",
	  "routes[1] (r): permanent_retries: -1 is out of range [0, 1000]" },
	{ R("\"fields\": {\"name\": \"n\"}, \"dead_lane\": \"stop\""), "\"stop\"",
	  "routes[1] (r): dead_lane: expected \"continue\" or \"hold\"" },
	{ R("\"owns\": [\"name\"],\n \"fields\": {\"name\": \"n\", \"email\": {\"pointer\": \"/e\"}}"),
	  "{\"pointer\": \"/e\"}",
	  "routes[1] (r): fields.email: the field is not in owns: this route is not its source "
	  "of truth" },
	{ R("\"owns\": [\"name\"], \"fields\": {\"name\": \"n\"}, \"lines\": {\"field\": \"line_ids\","
	    " \"pointer\": \"/l\", \"fields\": {\"name\": \"x\"}}"), "{\"field\"",
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
	  "\"external_id\": \"x\",\n \"fields\": {\"country_id/id\": \"base.be\"}}", "\"base.be\"",
	  "routes[1] (r): fields.country_id/id: a relation by external ID needs load's "
	  "resolution: use an upsert route" },
	{ "{\"name\": \"r\", \"source\": \"shop\", \"operation\": \"write\", \"model\": \"m\", "
	  "\"external_id\": \"x\",\n \"fields\": {\"n\": \"x\"}, \"lines\": {}}", "{}}",
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
	    " \"pointer\": \"/l\", \"fields\": {\"a\": \"b\"}}"), "\"x\"",
	  "routes[1] (r): fields.order_line: order_line is also in lines" },
	{ "{\"name\": \"r\", \"source\": \"shop\", \"operation\": \"write\", \"model\": \"m\", "
	  "\"external_id\": \"x\", \"create\": false,\n \"missing\": \"create\", \"fields\": {\"n\": \"x\"}}",
	  "\"create\", \"fields\"",
	  "routes[1] (r): missing: \"create\" contradicts \"create\": false" },
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
	RUN(test_owns);
	RUN(test_config_errors);
	relay_routes_free(fixture);
	return check_done();
}
