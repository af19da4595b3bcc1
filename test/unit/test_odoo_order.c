/*
 * The pure helpers of odoo_order.c: found ids into load cells, load()
 * warnings by row, the ids of a load's records.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <event2/event.h>

#include "check.h"
#include "odoo_relay/error.h"
#include "odoo_relay/odoo_order.h"

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

int
main(void)
{
	RUN(test_apply_finds);
	RUN(test_load_warnings);
	RUN(test_load_id_only_positive);
	RUN(test_steps_refuse_no_id);
	return check_done();
}
