/*
 * The pure helpers of odoo_order.c: found ids into load cells, load()
 * warnings by row, the ids of a load's records.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "check.h"
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

int
main(void)
{
	RUN(test_apply_finds);
	RUN(test_load_warnings);
	return check_done();
}
