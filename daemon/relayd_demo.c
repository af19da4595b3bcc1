/* The built-in demo configuration: see relayd_demo.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "relayd_demo.h"

static const char demo_config[] =
	"{\n"
	"  \"listen\": [\"127.0.0.1:8080\"],\n"
	"  \"admin_listen\": \"127.0.0.1:8081\",\n"
	"  \"state_dir\": \"%s/state\",\n"
	"  \"map_size_mb\": 64,\n"
	"  \"sources\": {\n"
	"    \"shop\": {\n"
	"      \"verify\": {\"scheme\": \"shopify\", \"secret_file\": \"shop.secret\"},\n"
	"      \"dedup\": {\"header\": \"X-Shopify-Webhook-Id\"},\n"
	"      \"topic\": {\"header\": \"X-Shopify-Topic\"},\n"
	"      \"lane\": {\"pointer\": \"/id\"},\n"
	"      \"keep_headers\": [\"X-Shopify-Topic\", \"X-Shopify-Shop-Domain\"],\n"
	"      \"require_json\": true\n"
	"    },\n"
	"    \"odoo\": {\n"
	"      \"kind\": \"odoo\",\n"
	"      \"verify\": {\"scheme\": \"url_token\", \"secret_file\": \"odoo-hook.token\"}\n"
	"    },\n"
	"    \"orders-poll\": {\n"
	"      \"kind\": \"odoo-poll\",\n"
	"      \"model\": \"sale.order\",\n"
	"      \"fields\": [\"name\", \"state\"],\n"
	"      \"archived\": false,\n"
	"      \"interval_s\": 2\n"
	"    }\n"
	"  },\n"
	"  \"destinations\": {\n"
	"    \"receiver\": {\n"
	"      \"kind\": \"http\",\n"
	"      \"url\": \"http://127.0.0.1:8082/orders\",\n"
	"      \"secret_file\": \"receiver.whsec\",\n"
	"      \"allow_private\": true,\n"
	"      \"probe_base_ms\": 500, \"probe_cap_ms\": 2000\n"
	"    }\n"
	"  },\n"
	"  \"odoo\": {\n"
	"    \"url\": \"%s\",\n"
	"    \"database\": \"demo\",\n"
	"    \"login\": \"admin\",\n"
	"    \"api_key_file\": \"odoo.key\",\n"
	"    \"protocol\": \"jsonrpc\"\n"
	"  },\n"
	"  \"delivery\": {\"backoff\": {\"base_ms\": 500, \"cap_ms\": 10000}},\n"
	"  \"routes\": [\n"
	"    {\n"
	"      \"name\": \"shop-customers\",\n"
	"      \"source\": \"shop\",\n"
	"      \"destination\": \"odoo\",\n"
	"      \"topics\": [\"customers/*\"],\n"
	"      \"operation\": \"upsert\",\n"
	"      \"model\": \"res.partner\",\n"
	"      \"external_id\": \"shop_customer_{/id}\",\n"
	"      \"fields\": {\n"
	"        \"name\": \"{/first_name} {/last_name}\",\n"
	"        \"email\": {\"pointer\": \"/email\"},\n"
	"        \"phone\": {\"pointer\": \"/phone\", \"optional\": true}\n"
	"      }\n"
	"    },\n"
	"    {\n"
	"      \"name\": \"shop-orders\",\n"
	"      \"source\": \"shop\",\n"
	"      \"destination\": \"odoo\",\n"
	"      \"topics\": [\"orders/create\", \"orders/updated\"],\n"
	"      \"operation\": \"upsert\",\n"
	"      \"model\": \"sale.order\",\n"
	"      \"external_id\": \"shop_order_{/id}\",\n"
	"      \"fields\": {\n"
	"        \"partner_id/id\": {\"external\": true, \"template\": \"shop_customer_{/customer/id}\"},\n"
	"        \"client_order_ref\": {\"pointer\": \"/name\"}\n"
	"      },\n"
	"      \"lines\": {\"field\": \"order_line\", \"pointer\": \"/line_items\", \"fields\": {\n"
	"        \"id\": \"shop_order_line_{/id}\",\n"
	"        \"product_id/.id\": {\"find\": {\"model\": \"product.product\",\n"
	"                                       \"where\": {\"default_code\": \"/sku\"}}},\n"
	"        \"product_uom_qty\": {\"pointer\": \"/quantity\"},\n"
	"        \"price_unit\": {\"pointer\": \"/price\"}\n"
	"      }},\n"
	"      \"then\": {\"call\": \"action_confirm\", \"when\": {\"state\": [\"draft\", \"sent\"]}},\n"
	"      \"permanent_retries\": 10,\n"
	"      \"permanent_retry_delay_ms\": 2000\n"
	"    },\n"
	"    {\n"
	"      \"name\": \"partners-out\",\n"
	"      \"source\": \"odoo\",\n"
	"      \"destination\": \"receiver\",\n"
	"      \"confirm\": true,\n"
	"      \"body\": \"as_received\"\n"
	"    },\n"
	"    {\n"
	"      \"name\": \"orders-out\",\n"
	"      \"source\": \"orders-poll\",\n"
	"      \"destination\": \"receiver\",\n"
	"      \"body\": \"as_received\"\n"
	"    }\n"
	"  ],\n"
	"  \"queries\": {\n"
	"    \"customer\": {\n"
	"      \"destination\": \"odoo\",\n"
	"      \"model\": \"res.partner\",\n"
	"      \"domain\": [[\"email\", \"=\", {\"param\": \"email\"}]],\n"
	"      \"fields\": [\"id\", \"name\", \"email\"],\n"
	"      \"limit\": 5,\n"
	"      \"params\": {\"email\": {\"type\": \"string\", \"max_length\": 254,\n"
	"                                \"required\": true}},\n"
	"      \"cache_s\": 5,\n"
	"      \"auth\": {\"scheme\": \"token\", \"secret_file\": \"query.token\",\n"
	"               \"header\": \"X-Relay-Token\"}\n"
	"    }\n"
	"  }\n"
	"}\n";

static int
write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f)
		return errno;
	fputs(text, f);
	if (fclose(f))
		return errno;
	return chmod(path, mode) ? errno : 0;
}

int
relayd_demo_prepare(const char *dir, const char *odoo_url, char *path, size_t n)
{
	char cfg[sizeof(demo_config) + 8192];
	int rc;

	if (mkdir(dir, 0700) && errno != EEXIST)
		return errno;
	snprintf(cfg, sizeof(cfg), demo_config, dir, odoo_url);
	if ((rc = write_file(dir, "odoo-relay.json", cfg, 0644)) ||
	    (rc = write_file(dir, "shop.secret", "demo-secret\n", 0600)) ||
	    (rc = write_file(dir, "odoo.key", "admin\n", 0600)) ||
	    (rc = write_file(dir, "query.token", "demo-query-token\n", 0600)) ||
	    (rc = write_file(dir, "odoo-hook.token", "demo-odoo-hook-token\n", 0600)) ||
	    (rc = write_file(dir, "receiver.whsec", "whsec_ZGVtby1yZWNlaXZlci1zZWNyZXQ=\n", 0600)))
		return rc;
	snprintf(path, n, "%s/odoo-relay.json", dir);
	return 0;
}
