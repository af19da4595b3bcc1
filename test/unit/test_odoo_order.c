/*
 * The pure helpers of odoo_order.c: found ids into load cells, load()
 * warnings by row, the ids of a load's records.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "check.h"
#include "odoo_relay/classify.h"
#include "odoo_relay/error.h"
#include "odoo_relay/odoo_order.h"
#include "odoo_relay/route.h"

static void
test_apply_finds(void)
{
	json_t *data = json_loads("[[\"o\", \"l1\", \"\"], [\"\", \"l2\", \"\"]]", 0, NULL);
	json_t *finds = json_loads("[{\"row\": 0, \"col\": 2, \"id\": 7}, "
	                           "{\"row\": 1, \"col\": 2, \"id\": 9}]", 0, NULL);
	char *s;

	CHECK(relay_order_apply_finds(data, finds) == NULL);
	s = json_dumps(data, JSON_COMPACT);
	CHECK_STR(s, "[[\"o\",\"l1\",\"7\"],[\"\",\"l2\",\"9\"]]");
	free(s);
	json_decref(finds);
	finds = json_loads("[{\"row\": 0, \"col\": 2, \"id\": 7}, {\"row\": 1, \"col\": 2, "
	                   "\"error\": \"no product.product with default_code 'X'\"}]", 0, NULL);
	CHECK_STR(relay_order_apply_finds(data, finds), "no product.product with default_code 'X'");
	CHECK(relay_order_apply_finds(data, NULL) == NULL);
	json_decref(finds);
	/* an external ID where the column is "field/id" */
	finds = json_loads("[{\"row\": 0, \"col\": 2, \"id\": 7, \"as_xmlid\": true, "
	                   "\"xmlid\": \"shop.p7\"}, {\"row\": 1, \"col\": 2, \"id\": 9, "
	                   "\"as_xmlid\": true, \"error\": \"product.product 9 has no external ID\"}]",
	                   0, NULL);
	CHECK_STR(relay_order_apply_finds(data, finds), "product.product 9 has no external ID");
	CHECK_STR(json_string_value(json_array_get(json_array_get(data, 0), 2)), "shop.p7");
	json_decref(finds);
	json_decref(data);
}

static void
test_load_warnings(void)
{
	/* capture 642's message, for rows 0-0, and another for rows 2-3 */
	json_t *res = json_loads("{\"ids\": [5, 6], \"messages\": ["
	    "{\"rows\": {\"from\": 0, \"to\": 0}, \"type\": \"warning\", \"record\": 0, "
	    "\"field\": \"order_line\", \"message\": \"Found multiple matches for value "
	    "\\\"SKU-DUP\\\" in field \\\"Order Lines\\\" (2 matches)\"}, "
	    "{\"rows\": {\"from\": 2, \"to\": 3}, \"type\": \"warning\", \"message\": \"w2\"}, "
	    "{\"rows\": {\"from\": 2, \"to\": 2}, \"type\": \"info\", \"message\": \"i\"}]}", 0, NULL);
	char *w;

	w = relay_order_load_warnings(res, 0, 2);
	CHECK_STR(w, "Found multiple matches for value \"SKU-DUP\" in field \"Order Lines\" "
	          "(2 matches)");
	free(w);
	w = relay_order_load_warnings(res, 2, 4);
	CHECK_STR(w, "w2");
	free(w);
	CHECK(relay_order_load_warnings(res, 4, 6) == NULL);
	w = relay_order_load_warnings(res, 0, (size_t)-1);
	CHECK(w && strstr(w, "; w2") != NULL);
	free(w);
	CHECK_INT(relay_order_load_id(res, 1), 6);
	CHECK_INT(relay_order_load_id(res, 2), 0);
	json_decref(res);
}

/* A load() answer that does not give a row a positive integer id gives
 * no id at all: 0, never a number a step could act on. */
static void
test_load_id_only_positive(void)
{
	json_t *res = json_loads("{\"ids\": [5, false, -3, \"7\", 7.0, null, 0]}", 0, NULL);
	json_t *bad = json_loads("{\"ids\": false}", 0, NULL);
	char why[200];

	CHECK_INT(relay_order_load_id(res, 0), 5);
	for (size_t k = 1; k < 8; k++)
		CHECK_INT(relay_order_load_id(res, k), 0);
	CHECK_INT(relay_order_load_id(bad, 0), 0);
	CHECK_INT(relay_order_load_id(NULL, 0), 0);

	/* by row: the id, or 0 and what the answer lacks */
	CHECK_INT(relay_order_load_row_id(res, 0, 7, why, sizeof(why)), 5);
	CHECK_INT(relay_order_load_row_id(res, 1, 7, why, sizeof(why)), 0);
	CHECK(strstr(why, "no record id") && strstr(why, "false"));
	CHECK_INT(relay_order_load_row_id(res, 2, 7, why, sizeof(why)), 0);
	CHECK(strstr(why, "-3") != NULL);
	CHECK_INT(relay_order_load_row_id(res, 3, 7, why, sizeof(why)), 0);
	CHECK_INT(relay_order_load_row_id(res, 6, 7, why, sizeof(why)), 0);
	/* a list of another length than the records sent: no row's id is
	 * known, not even the first's (which one is missing?) */
	CHECK_INT(relay_order_load_row_id(res, 0, 8, why, sizeof(why)), 0);
	CHECK(strstr(why, "7 record ids for 8 records") != NULL);
	CHECK_INT(relay_order_load_row_id(res, 0, 6, why, sizeof(why)), 0);
	CHECK_INT(relay_order_load_row_id(bad, 0, 1, why, sizeof(why)), 0);
	CHECK(why[0] != '\0');
	json_decref(res);
	json_decref(bad);
}

/* An ir.model.data row's res_id: a positive integer, or 0 and why. */
static void
test_xmlid_res_id(void)
{
	json_t *rows = json_loads("[{\"name\": \"SO1\", \"res_id\": 9}, {\"name\": \"SO1\", "
	                          "\"res_id\": false}, {\"name\": \"SO1\", \"res_id\": 0}, "
	                          "{\"name\": \"SO1\", \"res_id\": -2}, {\"name\": \"SO1\", "
	                          "\"res_id\": \"9\"}, {\"name\": \"SO1\", \"res_id\": 9.0}, "
	                          "{\"name\": \"SO1\", \"res_id\": null}, {\"name\": \"SO1\"}]",
	                          0, NULL);
	char why[200];

	CHECK_INT(relay_order_xmlid_res_id(json_array_get(rows, 0), "shop", why, sizeof(why)), 9);
	for (size_t k = 1; k < json_array_size(rows); k++) {
		why[0] = '\0';
		CHECK_INT(relay_order_xmlid_res_id(json_array_get(rows, k), "shop", why, sizeof(why)),
		          0);
		CHECK(strstr(why, "ir.model.data answered") && strstr(why, "shop.SO1") &&
		      strstr(why, "not a record id"));
	}
	relay_order_xmlid_res_id(json_array_get(rows, 1), "shop", why, sizeof(why));
	CHECK_STR(why, "ir.model.data answered res_id false for external id shop.SO1: not a "
	          "record id");
	relay_order_xmlid_res_id(json_array_get(rows, 3), "shop", why, sizeof(why));
	CHECK(strstr(why, "res_id -2 ") != NULL);
	relay_order_xmlid_res_id(json_array_get(rows, 4), "shop", why, sizeof(why));
	CHECK(strstr(why, "res_id \"9\" ") != NULL);
	relay_order_xmlid_res_id(json_array_get(rows, 7), "shop", why, sizeof(why));
	CHECK(strstr(why, "answered no res_id ") != NULL);
	json_decref(rows);
}

static int fired;

static void
on_steps(void *arg, const struct relay_outcome *failure, const char *request, const char *note)
{
	(void)arg;
	(void)failure;
	(void)request;
	(void)note;
	fired++;
}

/* No step goes to a record id that is not a positive integer. */
static void
test_steps_refuse_no_id(void)
{
	struct event_base *base = event_base_new();
	struct relay_odoo *client = NULL;
	struct relay_odoo_conf c;
	json_t *steps = json_loads("[{\"call\": \"action_confirm\", \"field\": \"state\", "
	                           "\"values\": [\"draft\"]}]", 0, NULL);
	json_t *draft = json_string("draft");

	memset(&c, 0, sizeof(c));
	c.configured = 1;
	c.url = "http://127.0.0.1:9"; /* nothing is sent: the loop never runs */
	c.database = "relaytest";
	c.login = "relaybot";
	c.api_key.data = (unsigned char *)"k3y";
	c.api_key.len = 3;
	c.protocol = RELAY_PROTO_JSONRPC;
	c.connect_timeout_ms = 1000;
	c.timeout_ms = 1000;
	c.max_in_flight = 4;
	c.max_response_bytes = 1 << 20;
	CHECK(base != NULL);
	CHECK_INT(relay_odoo_new(base, &c, &client), 0);
	fired = 0;
	CHECK_INT(relay_order_steps(client, "sale.order", 0, steps, 0, NULL, on_steps, NULL),
	          -RELAY_EINVAL);
	CHECK_INT(relay_order_steps(client, "sale.order", -4, steps, 0, NULL, on_steps, NULL),
	          -RELAY_EINVAL);
	CHECK_INT(relay_order_steps_call(client, "sale.order", 0, steps, NULL, draft, on_steps,
	                                 NULL), -RELAY_EINVAL);
	CHECK_INT(relay_odoo_in_flight(client), 0);
	relay_odoo_free(client);
	CHECK_INT(fired, 0);
	json_decref(steps);
	json_decref(draft);
	event_base_free(base);
}

/* ---- the refuse guard against an Odoo answering ir.model.data wrongly ---- */

/* A small Odoo on 127.0.0.1, port 0: login gives uid 2, ir.model.data
 * answers one row for the record with res_id bad_res_id (JSON text), and
 * every other call is counted (a read or write of the orders). */
static struct {
	struct event_base *base;
	const char *bad_res_id;
	int other_calls;
	int done;
	int failed, unknown;
	char error_name[64], message[256];
} fo;

static void
fo_reply(struct evhttp_request *req, json_t *result)
{
	json_t *doc = json_pack("{s:s,s:i,s:o}", "jsonrpc", "2.0", "id", 1, "result", result);
	char *s = json_dumps(doc, 0);
	struct evbuffer *b = evbuffer_new();

	evbuffer_add(b, s, strlen(s));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "application/json");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
	free(s);
	json_decref(doc);
}

static void
fo_handle(struct evhttp_request *req, void *arg)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	json_t *body = len ? json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, NULL) : NULL;
	json_t *params = json_object_get(body, "params"), *args = json_object_get(params, "args");
	const char *method = json_string_value(json_object_get(params, "method"));
	const char *model = json_string_value(json_array_get(args, 3));

	(void)arg;
	if (method && strcmp(method, "version") == 0) {
		fo_reply(req, json_pack("{s:s,s:[i,i,i,s,i,s],s:s,s:i}", "server_version", "18.0",
		                        "server_version_info", 18, 0, 0, "final", 0, "",
		                        "server_serie", "18.0", "protocol_version", 1));
	} else if (method && strcmp(method, "login") == 0) {
		fo_reply(req, json_integer(2));
	} else if (model && strcmp(model, "ir.model.data") == 0) {
		json_t *row = json_pack("{s:i,s:s,s:s}", "id", 11, "name", "SO1", "module", "shop");

		json_object_set_new(row, "res_id", json_loads(fo.bad_res_id, JSON_DECODE_ANY, NULL));
		fo_reply(req, json_pack("[o]", row));
	} else {
		fo.other_calls++;
		fo_reply(req, json_pack("[{s:i,s:s,s:b}]", "id", 5, "state", "sale", "locked", 0));
	}
	json_decref(body);
}

static void
fo_guarded(void *arg, const struct relay_outcome *failure, const char *request,
           const json_t *verdicts)
{
	(void)arg;
	(void)request;
	(void)verdicts;
	fo.done = 1;
	if (failure) {
		fo.failed = failure->klass == RELAY_CLASS_PERMANENT;
		fo.unknown = failure->unknown;
		snprintf(fo.error_name, sizeof(fo.error_name), "%s",
		         failure->error_name ? failure->error_name : "");
		snprintf(fo.message, sizeof(fo.message), "%s",
		         failure->message ? failure->message : "");
	}
	event_base_loopbreak(fo.base);
}

static void
fo_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

/* No res_id but a positive integer is taken for a record id: false, 0, a
 * negative, a text, a fraction, null or none is Odoo answering wrongly
 * (permanent, unknown), and the orders are neither read nor written. */
static void
test_guard_refuses_bad_res_id(void)
{
	static const char *const bad[] = { "false", "0", "-5", "\"5\"", "5.5", "null", "true",
	                                   "[5]" };
	struct evhttp *http;
	struct evhttp_bound_socket *bs;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	char url[64];
	struct relay_plan plan;
	const struct relay_plan *plans[1] = { &plan };
	json_t *refuse = json_loads("{\"locked_field\": \"locked\", \"line_field\": "
	                            "\"order_line\", \"line_model\": \"sale.order.line\", "
	                            "\"confirmed\": [\"sale\"], \"quantity_field\": "
	                            "\"product_uom_qty\"}", 0, NULL);

	memset(&fo, 0, sizeof(fo));
	fo.base = event_base_new();
	http = evhttp_new(fo.base);
	evhttp_set_gencb(http, fo_handle, NULL);
	bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
	CHECK(bs != NULL);
	if (!bs)
		return;
	getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(sa.sin_port));

	memset(&plan, 0, sizeof(plan));
	plan.op = RELAY_OP_UPSERT;
	plan.model = "sale.order";
	plan.xmlid_module = "shop";
	plan.xmlid_name = "SO1";
	plan.load_fields = json_loads("[\"id\", \"name\", \"order_line/id\"]", 0, NULL);
	plan.load_data = json_loads("[[\"shop.SO1\", \"SO1\", \"shop.SO1_l1\"]]", 0, NULL);

	/* a good answer reads the order: the fake Odoo and the guard work */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]) + 1; i++) {
		struct relay_odoo *client = NULL;
		struct relay_odoo_conf c;
		struct timeval tv = { 10, 0 };
		struct event *deadline = evtimer_new(fo.base, fo_deadline, fo.base);
		int good = i == sizeof(bad) / sizeof(bad[0]);

		fo.bad_res_id = good ? "5" : bad[i];
		fo.other_calls = fo.done = fo.failed = fo.unknown = 0;
		fo.error_name[0] = fo.message[0] = '\0';
		memset(&c, 0, sizeof(c));
		c.configured = 1;
		c.url = url;
		c.database = "relaytest";
		c.login = "relaybot";
		c.api_key.data = (unsigned char *)"k3y";
		c.api_key.len = 3;
		c.protocol = RELAY_PROTO_JSONRPC;
		c.connect_timeout_ms = 2000;
		c.timeout_ms = 8000;
		c.max_in_flight = 4;
		c.max_response_bytes = 1 << 20;
		CHECK_INT(relay_odoo_new(fo.base, &c, &client), 0);
		CHECK_INT(relay_order_guard_many(client, plans, 1, refuse, NULL, fo_guarded, NULL), 0);
		evtimer_add(deadline, &tv);
		while (!fo.done && evtimer_pending(deadline, NULL) &&
		       event_base_loop(fo.base, EVLOOP_ONCE) == 0)
			;
		event_free(deadline);
		CHECK(fo.done);
		if (good) {
			CHECK(fo.other_calls > 0);
			CHECK_STR(fo.error_name, "");
		} else {
			if (fo.other_calls || !fo.failed || !fo.unknown)
				fprintf(stderr, "res_id %s: %d other calls, failed %d, unknown %d\n",
				        bad[i], fo.other_calls, fo.failed, fo.unknown);
			CHECK_INT(fo.other_calls, 0);
			CHECK(fo.failed);
			CHECK(fo.unknown);
			CHECK_STR(fo.error_name, "odoo.ir_model_data");
			CHECK(strstr(fo.message, "res_id") != NULL && strstr(fo.message, "shop.SO1"));
		}
		relay_odoo_free(client);
	}
	json_decref(plan.load_fields);
	json_decref(plan.load_data);
	json_decref(refuse);
	evhttp_free(http);
	event_base_free(fo.base);
}

int
main(void)
{
	RUN(test_apply_finds);
	RUN(test_load_warnings);
	RUN(test_load_id_only_positive);
	RUN(test_steps_refuse_no_id);
	RUN(test_xmlid_res_id);
	RUN(test_guard_refuses_bad_res_id);
	return check_done();
}
