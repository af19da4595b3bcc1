/*
 * libFuzzer target for the mapping engine: a fixed route set (every
 * operation, lookups, externals, optional and default values, two "lines"
 * arrays) is compiled once; each input is parsed as JSON and mapped through
 * every route. Beyond the sanitizers it checks the shape of each plan: a
 * load call has "id" first and rows as wide as its columns, every cell a
 * string, only the first row carrying the record's external ID; a failed map
 * returns one of the documented codes and leaves an empty plan.
 *
 *   clang -fsanitize=fuzzer,address,undefined -Iinclude test/fuzz/fuzz_route.c \
 *       lib/route.c lib/config.c lib/jsonptr.c lib/error.c -ljansson -lcrypto -llmdb
 * Seeds: test/fuzz/corpus/route/ (with test/fixtures/route/customer.json, order.json).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "odoo_relay/config.h"
#include "odoo_relay/error.h"
#include "odoo_relay/route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char config_text[] =
	"{\"listen\": \"127.0.0.1:0\", \"sources\": {\"s\": {\"verify\": {\"scheme\": \"none\"},"
	" \"dedup\": {\"pointer\": \"/id\"}}}, \"routes\": ["
	"{\"name\": \"customer\", \"source\": \"s\", \"operation\": \"upsert\","
	" \"model\": \"res.partner\", \"external_id\": \"c_{/id}\", \"fields\": {"
	"  \"name\": \"{/first_name} {/last_name}\","
	"  \"email\": {\"pointer\": \"/email\", \"optional\": true},"
	"  \"comment\": {\"pointer\": \"/note\", \"default\": \"none\"},"
	"  \"ref\": \"{{{/id}}}\","
	"  \"country_id/id\": {\"lookup\": {\"BE\": \"base.be\", \"1\": \"base.fr\"},"
	"                    \"pointer\": \"/address/country\", \"default\": \"\"},"
	"  \"parent_id/id\": {\"external\": true, \"pointer\": \"/company\", \"optional\": true}}},"
	"{\"name\": \"order\", \"source\": \"s\", \"operation\": \"upsert\", \"model\": \"sale.order\","
	" \"external_id\": \"o_{/id}\", \"fields\": {\"client_order_ref\": {\"pointer\": \"/name\","
	"  \"optional\": true}}, \"lines\": ["
	"  {\"field\": \"order_line\", \"pointer\": \"/items\", \"optional\": true, \"fields\": {"
	"   \"id\": \"l_{/id}\", \"product_uom_qty\": {\"pointer\": \"/q\", \"default\": 1},"
	"   \"product_id/id\": {\"external\": true, \"template\": \"p_{/sku}\", \"optional\": true}}},"
	"  {\"field\": \"tag_ids\", \"pointer\": \"/tags\", \"optional\": true,"
	"   \"fields\": {\"id\": \"t_{/n}\", \"name\": {\"pointer\": \"/n\", \"optional\": true}}}]},"
	"{\"name\": \"write\", \"source\": \"s\", \"operation\": \"write\", \"model\": \"res.partner\","
	" \"external_id\": \"c_{/id}\", \"missing\": \"create\", \"fields\": {"
	"  \"active\": {\"const\": false}, \"name\": {\"pointer\": \"/name\", \"optional\": true},"
	"  \"lang\": {\"lookup\": {\"BE\": \"fr_BE\"}, \"template\": \"{/cc}\", \"optional\": true}}},"
	"{\"name\": \"delete\", \"source\": \"s\", \"operation\": \"delete\", \"model\": \"res.partner\","
	" \"external_id\": \"{/a/0}--{/b~1c}\"},"
	"{\"name\": \"call\", \"source\": \"s\", \"operation\": \"call\", \"model\": \"res.partner\","
	" \"method\": \"message_post\", \"args\": {\"body\": \"{/text}\", \"ids\": {\"pointer\": \"/ids\"},"
	"  \"author\": {\"external\": true, \"template\": \"u_{/u}\", \"optional\": true}}},"
	"{\"name\": \"raw\", \"source\": \"s\", \"operation\": \"call\", \"model\": \"crm.lead\","
	" \"method\": \"apply\", \"args\": {\"pointer\": \"/kwargs\"}}]}";

static struct relay_routes *routes;

static void
setup(void)
{
	struct relay_config *cfg = NULL;
	struct relay_config_error err;

	if (relay_config_loadb("fuzz.json", config_text, strlen(config_text), &cfg, &err) != 0 ||
	    relay_routes_compile(cfg, &routes, &err) != 0)
		abort(); /* the fixed route set is broken: nothing to fuzz */
	relay_config_free(cfg);
}

/* The shape of a load call, see route.h and the comment above. */
static void
check_load(const struct relay_plan *p)
{
	size_t i, j, ncols;

	if (!json_is_array(p->load_fields) || !json_is_array(p->load_data))
		abort();
	ncols = json_array_size(p->load_fields);
	if (ncols == 0 || strcmp(json_string_value(json_array_get(p->load_fields, 0)), "id") != 0 ||
	    json_array_size(p->load_data) == 0)
		abort();
	for (i = 0; i < json_array_size(p->load_data); i++) {
		json_t *row = json_array_get(p->load_data, i);

		if (json_array_size(row) != ncols)
			abort();
		for (j = 0; j < ncols; j++) {
			if (!json_is_string(json_array_get(row, j)))
				abort();
		}
		/* only the first row names the record */
		if ((i == 0) != (json_string_length(json_array_get(row, 0)) > 0))
			abort();
	}
}

static void
check_plan(const struct relay_route *r, const struct relay_plan *p)
{
	if (p->model == NULL || p->op != relay_route_op(r))
		abort();
	if (p->op != RELAY_OP_CALL &&
	    (p->xmlid_module == NULL || p->xmlid_name == NULL || p->xmlid_name[0] == '\0' ||
	     strspn(p->xmlid_name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                           "0123456789_-") != strlen(p->xmlid_name)))
		abort();
	if (p->op == RELAY_OP_UPSERT || (p->op == RELAY_OP_WRITE && p->missing_create))
		check_load(p);
	if (p->op == RELAY_OP_WRITE && !json_is_object(p->values))
		abort();
	if (p->op == RELAY_OP_CALL && (p->method == NULL || !json_is_object(p->named)))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct relay_plan plan;
	json_error_t jerr;
	json_t *payload;
	char why[128];
	size_t i;
	int rc;

	if (routes == NULL)
		setup();
	payload = json_loadb((const char *)data, size, JSON_DECODE_ANY, &jerr);
	if (payload == NULL)
		return 0;
	for (i = 0; i < relay_routes_count(routes); i++) {
		const struct relay_route *r = relay_routes_at(routes, i);

		rc = relay_route_map(r, payload, "odoo_relay", &plan, why, sizeof(why));
		if (rc == 0) {
			check_plan(r, &plan);
		} else {
			if (rc != -RELAY_EPATH && rc != -RELAY_EINVAL && rc != ENOMEM)
				abort();
			if (why[0] == '\0' || plan.model != NULL || plan.load_data != NULL)
				abort();
		}
		relay_plan_clear(&plan);
	}
	json_decref(payload);
	return 0;
}
