/*
 * confirm: what a route's "confirm" reads for an Odoo webhook, what Odoo's
 * answer means (captures 446 and 451: read of a deleted id answers [];
 * 473: the body Odoo posts), and the "confirm" key of a route.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "odoo_relay/config.h"
#include "odoo_relay/confirm.h"
#include "odoo_relay/error.h"
#include "odoo_relay/route.h"

/* capture 473: what Odoo 18 posted for one res.partner create */
static const char odoo_body[] =
	"{\"_action\": \"Cap partner webhook(#180)\", \"_id\": 37020, \"_model\": \"res.partner\", "
	"\"email\": \"hook1@example.com\", \"id\": 37020, \"name\": \"Cap Hook Partner\"}";

static const unsigned char *
u(const char *s)
{
	return (const unsigned char *)s;
}

static void
test_target(void)
{
	char why[128], *model = NULL, *s;
	int64_t id = 0;
	json_t *fields = NULL, *rf;

	/* the fields the webhook carries, not Odoo's own members */
	CHECK_INT(relay_confirm_target(u(odoo_body), strlen(odoo_body), NULL, &model, &id, &fields,
	                               why, sizeof(why)), 0);
	CHECK_STR(model, "res.partner");
	CHECK_INT(id, 37020);
	s = fields ? json_dumps(fields, JSON_COMPACT) : NULL;
	CHECK_STR(s, "[\"email\",\"name\"]");
	free(s);
	free(model);
	json_decref(fields);

	/* the route's own list wins */
	rf = json_pack("[s,s]", "state", "amount_total");
	CHECK_INT(relay_confirm_target(u(odoo_body), strlen(odoo_body), rf, &model, &id, &fields,
	                               why, sizeof(why)), 0);
	s = fields ? json_dumps(fields, JSON_COMPACT) : NULL;
	CHECK_STR(s, "[\"state\",\"amount_total\"]");
	free(s);
	free(model);
	json_decref(fields);
	json_decref(rf);

	/* no field selected in Odoo: an existence check */
	{
		static const char bare[] = "{\"_action\": \"a\", \"_id\": 5, \"_model\": \"sale.order\", "
		                           "\"id\": 5}";
		CHECK_INT(relay_confirm_target(u(bare), strlen(bare), NULL, &model, &id, &fields, why,
		                               sizeof(why)), 0);
		s = fields ? json_dumps(fields, JSON_COMPACT) : NULL;
		CHECK_STR(s, "[\"id\"]");
		free(s);
		free(model);
		json_decref(fields);
	}

	/* not an Odoo webhook: refused with a reason, nothing returned */
	model = NULL;
	fields = NULL;
	CHECK_INT(relay_confirm_target(u("{\"id\": 1}"), 9, NULL, &model, &id, &fields, why,
	                               sizeof(why)), -RELAY_EINVAL);
	CHECK(strstr(why, "_model") != NULL);
	CHECK(model == NULL && fields == NULL);
	CHECK_INT(relay_confirm_target(u("{\"_model\": \"x\", \"_id\": \"7\"}"), 27, NULL, &model,
	                               &id, &fields, why, sizeof(why)), -RELAY_EINVAL);
	CHECK(strstr(why, "_id") != NULL);
	CHECK_INT(relay_confirm_target(u("{\"_model\": \"x\", \"_id\": 0}"), 25, NULL, &model, &id,
	                               &fields, why, sizeof(why)), -RELAY_EINVAL);
	CHECK_INT(relay_confirm_target(u("[1]"), 3, NULL, &model, &id, &fields, why, sizeof(why)),
	          -RELAY_EINVAL);
	CHECK_INT(relay_confirm_target(u("{nope"), 5, NULL, &model, &id, &fields, why, sizeof(why)),
	          -RELAY_EINVAL);
	CHECK(strstr(why, "not JSON") != NULL);
}

static void
test_apply(void)
{
	char why[128], *out = NULL;
	size_t len = 0;
	json_t *res;

	/* captures 446/451/484: a deleted or rolled-back record reads as [] */
	res = json_loads("[]", 0, NULL);
	CHECK_INT(relay_confirm_apply(u(odoo_body), strlen(odoo_body), 37020, res, &out, &len, why,
	                              sizeof(why)), RELAY_CONFIRM_GONE);
	CHECK(out == NULL);
	json_decref(res);

	/* a changed record: its current values replace the posted ones, in place;
	 * a field the webhook did not carry comes after */
	res = json_loads("[{\"id\": 37020, \"name\": \"Cap Hook Partner\", "
	                 "\"email\": \"hook1-new@example.com\", \"phone\": false}]", 0, NULL);
	CHECK_INT(relay_confirm_apply(u(odoo_body), strlen(odoo_body), 37020, res, &out, &len, why,
	                              sizeof(why)), RELAY_CONFIRM_FOUND);
	CHECK_STR(out, "{\"_action\":\"Cap partner webhook(#180)\",\"_id\":37020,"
	               "\"_model\":\"res.partner\",\"email\":\"hook1-new@example.com\",\"id\":37020,"
	               "\"name\":\"Cap Hook Partner\",\"phone\":false}");
	CHECK_INT(len, out ? strlen(out) : 0);
	free(out);
	json_decref(res);

	/* answers that do not fit */
	res = json_loads("[{\"id\": 99, \"name\": \"x\"}]", 0, NULL);
	CHECK_INT(relay_confirm_apply(u(odoo_body), strlen(odoo_body), 37020, res, &out, &len, why,
	                              sizeof(why)), -RELAY_EINVAL);
	json_decref(res);
	res = json_loads("{\"id\": 37020}", 0, NULL);
	CHECK_INT(relay_confirm_apply(u(odoo_body), strlen(odoo_body), 37020, res, &out, &len, why,
	                              sizeof(why)), -RELAY_EINVAL);
	CHECK(strstr(why, "list") != NULL);
	json_decref(res);
	CHECK_INT(relay_confirm_apply(u(odoo_body), strlen(odoo_body), 37020, NULL, &out, &len, why,
	                              sizeof(why)), -RELAY_EINVAL);
}

/* ---- the route key ---- */

static char dir[] = "/tmp/test_confirm.XXXXXX";

static void
write_file(const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w"))) {
		fputs(text, f);
		fclose(f);
	}
}

/* Compile routes against a configuration with an Odoo source, a shop
 * source, the HTTP destination wh and the Odoo destinations of dests. */
static int
compile(const char *odoo_dests, const char *routes, struct relay_routes **rs,
        struct relay_config_error *err)
{
	struct relay_config *cfg = NULL;
	char path[512], *text = NULL;
	int rc;

	*rs = NULL;
	snprintf(path, sizeof(path), "%s/relay.json", dir);
	if (asprintf(&text,
	             "{\"listen\": \"127.0.0.1:0\",\n"
	             " \"sources\": {\"shop\": {\"verify\": {\"scheme\": \"none\"}, "
	             "\"dedup\": {\"pointer\": \"/id\"}},\n"
	             "  \"odoo\": {\"kind\": \"odoo\", \"verify\": {\"scheme\": \"url_token\", "
	             "\"secret_file\": \"tok\"}}},\n"
	             " \"destinations\": {\"wh\": {\"kind\": \"http\", \"url\": "
	             "\"http://127.0.0.1:9/in\", \"secret_file\": \"k1\"}%s},\n"
	             " \"routes\": %s}\n", odoo_dests, routes) < 0)
		return ENOMEM;
	write_file("relay.json", text);
	free(text);
	memset(err, 0, sizeof(*err));
	if ((rc = relay_config_load(path, &cfg, err)) != 0) {
		fprintf(stderr, "config does not load: %u:%u: %s\n", err->line, err->column, err->text);
		return rc;
	}
	rc = relay_routes_compile(cfg, rs, err);
	relay_config_free(cfg);
	return rc;
}

#define ODOO(name) ",\n  \"" name "\": {\"url\": \"http://127.0.0.1:8069\", \"database\": " \
	"\"d\", \"login\": \"a\", \"api_key_file\": \"k2\"}"
#define ROUTE(src, confirm) "[{\"name\": \"out\", \"source\": \"" src "\", \"destination\": " \
	"\"wh\",\n  \"body\": \"as_received\", \"confirm\": " confirm "}]"

static void
test_route_key(void)
{
	struct relay_routes *rs;
	struct relay_config_error err;
	const struct relay_route *r;
	const json_t *f;

	write_file("k1", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n");
	write_file("k2", "api-key\n");
	write_file("tok", "odoo-token-1234567890\n");

	/* true: the only Odoo destination, the webhook's fields */
	CHECK_INT(compile(ODOO("odoo"), ROUTE("odoo", "true"), &rs, &err), 0);
	r = rs ? relay_routes_find(rs, "out") : NULL;
	f = (const json_t *)1;
	CHECK_STR(r ? relay_route_confirm(r, &f) : NULL, "odoo");
	CHECK(f == NULL);
	relay_routes_free(rs);

	/* false, or absent: no confirm */
	CHECK_INT(compile(ODOO("odoo"), ROUTE("odoo", "false"), &rs, &err), 0);
	r = rs ? relay_routes_find(rs, "out") : NULL;
	CHECK(r && relay_route_confirm(r, NULL) == NULL);
	relay_routes_free(rs);

	/* named, with fields, among several Odoo destinations */
	CHECK_INT(compile(ODOO("sales") ODOO("stock"),
	                  ROUTE("odoo", "{\"destination\": \"stock\", \"fields\": [\"state\"]}"),
	                  &rs, &err), 0);
	r = rs ? relay_routes_find(rs, "out") : NULL;
	f = NULL;
	CHECK_STR(r ? relay_route_confirm(r, &f) : NULL, "stock");
	CHECK(json_array_size(f) == 1 && strcmp(json_string_value(json_array_get(f, 0)), "state") == 0);
	relay_routes_free(rs);

	/* refused, at their place */
	CHECK_INT(compile(ODOO("sales") ODOO("stock"), ROUTE("odoo", "true"), &rs, &err),
	          -RELAY_ECONFIG);
	CHECK(strstr(err.text, "several Odoo destinations") != NULL);
	CHECK_INT(err.line, 7); /* the route: "true" is a shared node with no place */
	CHECK_INT(compile("", ROUTE("odoo", "true"), &rs, &err), -RELAY_ECONFIG);
	CHECK(strstr(err.text, "no Odoo destination") != NULL);
	CHECK_INT(compile(ODOO("odoo"), ROUTE("shop", "true"), &rs, &err), -RELAY_ECONFIG);
	CHECK(strstr(err.text, "kind odoo") != NULL);
	CHECK_INT(compile(ODOO("odoo"), ROUTE("odoo", "{\"destination\": \"wh\"}"), &rs, &err),
	          -RELAY_ECONFIG);
	CHECK(strstr(err.text, "no Odoo destination is named") != NULL);
	CHECK_INT(compile(ODOO("odoo"), ROUTE("odoo", "{\"fields\": [\"a b\"]}"), &rs, &err),
	          -RELAY_ECONFIG);
	CHECK(strstr(err.text, "field") != NULL);
	CHECK_INT(compile(ODOO("odoo"), ROUTE("odoo", "{\"fields\": []}"), &rs, &err),
	          -RELAY_ECONFIG);
	CHECK_INT(compile(ODOO("odoo"), ROUTE("odoo", "{\"when\": 1}"), &rs, &err), -RELAY_ECONFIG);
	CHECK(strstr(err.text, "when") != NULL);
	CHECK_INT(compile(ODOO("odoo"), ROUTE("odoo", "\"yes\""), &rs, &err), -RELAY_ECONFIG);
	/* an Odoo route takes no confirm */
	CHECK_INT(compile(ODOO("odoo"), "[{\"name\": \"in\", \"source\": \"odoo\", \"destination\": "
	                  "\"odoo\", \"operation\": \"delete\", \"model\": \"res.partner\", "
	                  "\"external_id\": \"p_{/id}\", \"confirm\": true}]", &rs, &err),
	          -RELAY_ECONFIG);
}

int
main(void)
{
	char cmd[600];
	int rc;

	RUN(test_target);
	RUN(test_apply);
	if (mkdtemp(dir)) {
		RUN(test_route_key);
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
	} else {
		CHECK(0);
	}
	rc = check_done();
	return rc;
}
