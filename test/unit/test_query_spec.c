/* Unit tests for lib/query_spec.c: domains, parameters, cache keys; run in
 * test/fixtures. A request can choose values, never a field, an operator or
 * a piece of the domain. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "check.h"
#include "odoo_relay/config.h"
#include "odoo_relay/error.h"
#include "odoo_relay/query_spec.h"

static struct relay_config *
load(const char *queries)
{
	struct relay_config *cfg = NULL;
	struct relay_config_error err;
	char *text;

	if (asprintf(&text,
	             "{\"sources\": {\"s\": {\"verify\": {\"scheme\": \"none\"}, \"dedup\": {\"header\": \"X-Id\"}}},\n"
	             " \"odoo\": {\"url\": \"http://127.0.0.1:8069\", \"database\": \"d\", \"login\": \"l\",\n"
	             "          \"api_key_file\": \"secrets/odoo.key\"},\n"
	             " \"queries\": %s}", queries) < 0)
		return NULL;
	if (relay_config_loadb("config/inline.json", text, strlen(text), &cfg, &err) != 0) {
		char buf[1024];

		relay_config_error_format(&err, buf, sizeof buf);
		fprintf(stderr, "   load: %s\n", buf);
	}
	free(text);
	return cfg;
}

static const char *const stock =
	"{\"stock\": {\"model\": \"product.product\","
	" \"domain\": [\"&\", [\"default_code\", \"=\", {\"param\": \"sku\"}],"
	"             \"|\", [\"qty_available\", \">=\", {\"param\": \"min\"}], [\"categ_id\", \"in\", {\"param\": \"cat\"}]],"
	" \"fields\": [\"id\"],"
	" \"params\": {\"sku\": {\"pattern\": \"[A-Z0-9-]+\", \"max_length\": 12},"
	"            \"min\": {\"type\": \"integer\", \"min\": 0, \"max\": 1000, \"default\": 0},"
	"            \"cat\": {\"type\": \"integer\", \"required\": false, \"default\": 1}},"
	" \"public\": true, \"auth\": {\"scheme\": \"none\"}},"
	" \"free\": {\"model\": \"res.partner\","
	" \"domain\": [[\"name\", \"ilike\", {\"param\": \"q\"}]], \"fields\": [\"name\"],"
	" \"params\": {\"q\": {\"max_length\": 40, \"min_length\": 0}},"
	" \"public\": true, \"auth\": {\"scheme\": \"none\"}},"
	" \"typed\": {\"model\": \"res.partner\","
	" \"domain\": [[\"name\", \"ilike\", {\"param\": \"q\"}], [\"x_num\", \"<=\", {\"param\": \"n\"}],"
	"             [\"active\", \"=\", {\"param\": \"b\"}]], \"fields\": [\"name\"],"
	" \"params\": {\"q\": {\"max_length\": 40, \"min_length\": 0},"
	"             \"n\": {\"type\": \"number\", \"min\": -1.5, \"max\": 1e6, \"default\": 2.5},"
	"             \"b\": {\"type\": \"boolean\", \"default\": true}},"
	" \"public\": true, \"auth\": {\"scheme\": \"none\"}}}";

static void
test_names(void)
{
	CHECK(relay_query_field_ok("name"));
	CHECK(relay_query_field_ok("partner_id.country_id.code"));
	CHECK(relay_query_field_ok("_x1"));
	CHECK(!relay_query_field_ok(""));
	CHECK(!relay_query_field_ok("Name"));
	CHECK(!relay_query_field_ok("name "));
	CHECK(!relay_query_field_ok("a..b"));
	CHECK(!relay_query_field_ok(".a"));
	CHECK(!relay_query_field_ok("a."));
	CHECK(!relay_query_field_ok("1abc"));
	CHECK(!relay_query_field_ok("name,id"));
	CHECK(!relay_query_field_ok("name) or (1=1"));
	CHECK(relay_query_param_name_ok("sku"));
	CHECK(relay_query_param_name_ok("Sku_2"));
	CHECK(!relay_query_param_name_ok("2sku"));
	CHECK(!relay_query_param_name_ok("s-k"));
	CHECK(!relay_query_param_name_ok("s[op]"));
	CHECK(relay_query_order_problem("id") == NULL);
	CHECK(relay_query_order_problem("name asc, id desc") == NULL);
	CHECK(relay_query_order_problem("id; drop table") != NULL);
	CHECK(relay_query_order_problem("id sideways") != NULL);
	CHECK(relay_query_order_problem("partner_id.name") != NULL);
	CHECK(relay_query_order_problem(",") != NULL);
	CHECK(relay_query_order_problem("") != NULL);
}

static void
domain_case(const char *domain, const char *want)
{
	struct relay_qparam_conf p = { .name = "v" };
	json_t *d = json_loads(domain, 0, NULL);
	const json_t *at = NULL;
	char buf[256];
	const char *why;

	CHECK(d != NULL);
	why = relay_query_domain_problem(d, &p, 1, &at, buf, sizeof buf);
	if (!want) {
		CHECK(why == NULL);
		if (why)
			fprintf(stderr, "   %s: %s\n", domain, why);
	} else {
		CHECK(why != NULL && strstr(why, want) != NULL);
		CHECK(at != NULL);
		if (!why || !strstr(why, want))
			fprintf(stderr, "   %s: got %s\n", domain, why ? why : "(ok)");
	}
	json_decref(d);
}

static void
test_domains(void)
{
	domain_case("[]", NULL);
	domain_case("[[\"name\", \"=\", {\"param\": \"v\"}]]", NULL);
	domain_case("[\"|\", [\"a\", \"=\", 1], \"!\", [\"b\", \"in\", [1, 2, null]]]", NULL);
	domain_case("[[\"a\", \"=\", 1], [\"b\", \"=\", 2]]", NULL); /* implicit & */
	domain_case("[\"&\", [\"a\", \"=\", 1]]", "lacks operands");
	domain_case("[\"!\"]", "lacks operands");
	domain_case("[\"AND\", [\"a\", \"=\", 1], [\"b\", \"=\", 1]]", "unknown domain operator");
	domain_case("[[\"a\", \"=\"]]", "a leaf is");
	domain_case("[[\"a\", \"=\", 1, 2]]", "a leaf is");
	domain_case("[[\"a\", \"==\", 1]]", "unknown operator");
	domain_case("[[\"a\", {\"param\": \"v\"}, 1]]", "an operator must be a string");
	domain_case("[[{\"param\": \"v\"}, \"=\", 1]]", "a parameter can only be a value");
	domain_case("[[\"A b\", \"=\", 1]]", "invalid field name");
	domain_case("[[\"a\", \"=\", {\"param\": \"w\"}]]", "is not declared");
	domain_case("[[\"a\", \"=\", {\"param\": \"v\", \"x\": 1}]]", "must be {\"param\"");
	domain_case("[[\"a\", \"in\", [{\"param\": \"v\"}]]]", "a list value holds");
	domain_case("[[\"a\", \"in\", [[1]]]]", "a list value holds");
	domain_case("[1]", "expected an operator");
	domain_case("{\"a\": 1}", "a domain is an array");
}

/* bind qs into query name of cfg: 0 with key and domain text, or the error */
static int
bind(const struct relay_config *cfg, const char *name, const char *qs, char *key, size_t nk,
     char **domain, char *why, size_t nw)
{
	const struct relay_query_conf *q = relay_config_query(cfg, name, strlen(name));
	struct relay_query_bound b;
	int rc;

	*domain = NULL;
	if (!q)
		return -1;
	rc = relay_query_bind(q, qs, &b, why, nw);
	if (rc == 0) {
		snprintf(key, nk, "%s", b.key);
		*domain = json_dumps(b.domain, JSON_COMPACT);
		CHECK_INT(b.key_len, strlen(b.key));
		relay_query_bound_clear(&b);
	} else {
		CHECK(b.key == NULL && b.domain == NULL);
	}
	return rc;
}

static void
test_bind(void)
{
	struct relay_config *cfg = load(stock);
	char key[512], why[256], key2[512];
	char *d = NULL;

	CHECK(cfg != NULL);
	if (!cfg)
		return;
	CHECK_INT(bind(cfg, "stock", "sku=AB-1&min=5&cat=7", key, sizeof key, &d, why, sizeof why), 0);
	CHECK_STR(key, "sku=\"AB-1\"&min=5&cat=7");
	CHECK_STR(d, "[\"&\",[\"default_code\",\"=\",\"AB-1\"],\"|\",[\"qty_available\",\">=\",5],"
	             "[\"categ_id\",\"in\",[7]]]");
	free(d);
	/* normalised: order, leading zeros, defaults, encoding */
	CHECK_INT(bind(cfg, "stock", "cat=1&min=000&sku=AB%2D1", key2, sizeof key2, &d, why, sizeof why), 0);
	free(d);
	CHECK_INT(bind(cfg, "stock", "sku=AB-1", key, sizeof key, &d, why, sizeof why), 0);
	free(d);
	CHECK_STR(key, key2);
	CHECK_STR(key, "sku=\"AB-1\"&min=0&cat=1");
	CHECK_INT(bind(cfg, "stock", "&&sku=AB-1&", key2, sizeof key2, &d, why, sizeof why), 0);
	free(d);
	CHECK_STR(key, key2);
	CHECK_INT(bind(cfg, "typed", "q=a+b", key, sizeof key, &d, why, sizeof why), 0);
	CHECK_STR(d, "[[\"name\",\"ilike\",\"a b\"],[\"x_num\",\"<=\",2.5],[\"active\",\"=\",true]]");
	free(d);
	CHECK_INT(bind(cfg, "typed", "q=a%20b&n=2.50&b=true", key2, sizeof key2, &d, why, sizeof why), 0);
	free(d);
	CHECK_STR(key, key2);
	CHECK_STR(key, "q=\"a b\"&n=2.5&b=true");
	relay_config_free(cfg);
}

static void
refused(const struct relay_config *cfg, const char *name, const char *qs, const char *want)
{
	char key[512], why[256];
	char *d = NULL;
	int rc = bind(cfg, name, qs, key, sizeof key, &d, why, sizeof why);

	CHECK_INT(rc, -RELAY_EINVAL);
	CHECK(d == NULL);
	CHECK(strstr(why, want) != NULL);
	if (rc != -RELAY_EINVAL || !strstr(why, want))
		fprintf(stderr, "   %s: got %d %s (want %s)\n", qs, rc, rc ? why : key, want);
	free(d);
}

static void
test_injection(void)
{
	struct relay_config *cfg = load(stock);
	char key[512], why[256], big[9000];
	char *d = NULL;

	CHECK(cfg != NULL);
	if (!cfg)
		return;
	/* names that are not declared: operators, fields, pieces of domain */
	refused(cfg, "stock", "sku=A&sku[ilike]=B", "unknown parameter \"sku[ilike]\"");
	refused(cfg, "stock", "sku=A&default_code=B", "unknown parameter \"default_code\"");
	refused(cfg, "stock", "sku=A&%7C=1", "unknown parameter \"|\"");
	refused(cfg, "stock", "sku=A&domain=%5B%5D", "unknown parameter \"domain\"");
	refused(cfg, "stock", "sku%3D=A", "unknown parameter \"sku=\"");
	refused(cfg, "stock", "sku%00x=A", "unknown parameter");
	/* values that are not of the declared shape */
	refused(cfg, "stock", "sku=A%27%29%2C%28%27id", "does not match the declared pattern");
	refused(cfg, "stock", "sku=A%27%29%2C%28%27id%27%2C%27%3E%27%2C0", "is too long");
	refused(cfg, "stock", "sku=%5B%22%7C%22%5D", "does not match the declared pattern");
	refused(cfg, "stock", "sku=ab", "does not match the declared pattern");
	refused(cfg, "stock", "sku=ABCDEFGHIJKLM", "is too long");
	refused(cfg, "stock", "sku=", "is too short");
	refused(cfg, "stock", "sku", "has no \"=value\"");
	refused(cfg, "stock", "sku=A&sku=B", "is given more than once");
	refused(cfg, "stock", "min=1", "missing required parameter \"sku\"");
	refused(cfg, "stock", "", "missing required parameter \"sku\"");
	refused(cfg, "stock", "sku=A&min=abc", "expected an integer");
	refused(cfg, "stock", "sku=A&min=1.5", "expected an integer");
	refused(cfg, "stock", "sku=A&min=1e3", "expected an integer");
	refused(cfg, "stock", "sku=A&min=0x10", "expected an integer");
	refused(cfg, "stock", "sku=A&min=+1", "expected an integer");
	refused(cfg, "stock", "sku=A&min=%201", "expected an integer");
	refused(cfg, "stock", "sku=A&min=-", "expected an integer");
	refused(cfg, "stock", "sku=A&min=1001", "is out of range");
	refused(cfg, "stock", "sku=A&min=-1", "is out of range");
	refused(cfg, "stock", "sku=A&min=99999999999999999999999999", "is out of range");
	refused(cfg, "stock", "sku=A&min=%zz", "malformed percent escape");
	refused(cfg, "stock", "sku=A&min=%4", "malformed percent escape");
	refused(cfg, "free", "q=%00", "NUL byte");
	refused(cfg, "free", "q=%0a", "UTF-8 text without control characters");
	refused(cfg, "free", "q=%ff", "UTF-8 text without control characters");
	refused(cfg, "free", "q=%c0%af", "UTF-8 text without control characters"); /* overlong "/" */
	refused(cfg, "free", "q=%ed%a0%80", "UTF-8 text without control characters"); /* surrogate */
	refused(cfg, "typed", "q=a&n=NaN", "expected a number");
	refused(cfg, "typed", "q=a&n=inf", "expected a number");
	refused(cfg, "typed", "q=a&n=1e999", "is out of range");
	refused(cfg, "typed", "q=a&n=-2", "is out of range");
	refused(cfg, "typed", "q=a&b=yes", "expected true or false");
	refused(cfg, "typed", "q=a&b=1", "expected true or false");
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	memcpy(big, "q=", 2);
	refused(cfg, "free", big, "query string longer than");
	refused(cfg, "free", "q=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "is too long");
	/* without a pattern, a value that spells a domain stays one string in
	 * the value's place: the structure of the domain never changes */
	CHECK_INT(bind(cfg, "free", "q=%22%5D%2C%5B%22id%22%2C%22%3E%22%2C0%5D%2C%5B%22x", key, sizeof key,
	               &d, why, sizeof why), 0);
	CHECK_STR(d, "[[\"name\",\"ilike\",\"\\\"],[\\\"id\\\",\\\">\\\",0],[\\\"x\"]]");
	free(d);
	CHECK_INT(bind(cfg, "free", "q=%7C", key, sizeof key, &d, why, sizeof why), 0);
	CHECK_STR(d, "[[\"name\",\"ilike\",\"|\"]]");
	free(d);
	/* a refusal quotes what it names, never raw */
	refused(cfg, "free", "%1b%5b31m=1", "unknown parameter \"\\x1b[31m\"");
	relay_config_free(cfg);
}

static void
config_refused(const char *queries, const char *want)
{
	struct relay_config *cfg = NULL;
	struct relay_config_error err;
	char *text;

	if (asprintf(&text,
	             "{\"sources\": {\"s\": {\"verify\": {\"scheme\": \"none\"}, \"dedup\": {\"header\": \"X-Id\"}}},\n"
	             " \"odoo\": {\"url\": \"http://127.0.0.1:8069\", \"database\": \"d\", \"login\": \"l\",\n"
	             "          \"api_key_file\": \"secrets/odoo.key\"},\n"
	             " \"queries\": %s}", queries) < 0)
		return;
	CHECK_INT(relay_config_loadb("config/inline.json", text, strlen(text), &cfg, &err), -RELAY_ECONFIG);
	CHECK(cfg == NULL);
	CHECK(err.line >= 4 && err.column > 0);
	CHECK(strstr(err.text, want) != NULL);
	if (!strstr(err.text, want))
		fprintf(stderr, "   got %u:%u: %s (want %s)\n", err.line, err.column, err.text, want);
	free(text);
}

static void
test_config_refusals(void)
{
	config_refused("{\"q\": {\"model\": \"res.partner\", \"domain\": [], \"fields\": [\"id\"], "
	               "\"params\": {\"v\": {}}, \"public\": true, \"auth\": {\"scheme\": \"none\"}}}",
	               "params.v: declared but used nowhere in the domain");
	config_refused("{\"q\": {\"model\": \"res.partner\", \"domain\": [], \"fields\": [\"id\"], "
	               "\"auth\": {\"scheme\": \"shopify\", \"secret_file\": \"secrets/shop.secret\"}}}",
	               "a query takes scheme token, hmac-sha256 or none");
	config_refused("{\"q\": {\"model\": \"res.partner\", \"domain\": [], \"fields\": [\"id\"], "
	               "\"public\": true, \"auth\": {\"scheme\": \"token\", \"secret_file\": \"secrets/shop.secret\"}}}",
	               "takes scheme \"none\"");
	config_refused("{\"q\": {\"model\": \"Res Partner\", \"domain\": [], \"fields\": [\"id\"], "
	               "\"public\": true, \"auth\": {\"scheme\": \"none\"}}}", "invalid model name");
	config_refused("{\"q\": {\"model\": \"res.partner\", \"domain\": [], \"fields\": [], "
	               "\"public\": true, \"auth\": {\"scheme\": \"none\"}}}", "expected 1 to 200 field names");
	config_refused("{\"q\": {\"model\": \"res.partner\", \"domain\": [], \"fields\": [\"id\"], \"stale_s\": 5, "
	               "\"public\": true, \"auth\": {\"scheme\": \"none\"}}}", "needs a cache");
	config_refused("{\"q\": {\"model\": \"res.partner\", \"domain\": [[\"a\", \"=\", {\"param\": \"v\"}]], "
	               "\"fields\": [\"id\"], \"params\": {\"v\": {\"required\": false}}, "
	               "\"public\": true, \"auth\": {\"scheme\": \"none\"}}}", "needs a \"default\"");
	config_refused("{\"q\": {\"model\": \"res.partner\", \"domain\": [[\"a\", \"=\", {\"param\": \"v\"}]], "
	               "\"fields\": [\"id\"], \"params\": {\"v\": {\"type\": \"integer\", \"pattern\": \"x\"}}, "
	               "\"public\": true, \"auth\": {\"scheme\": \"none\"}}}", "not allowed with type integer");
	config_refused("{\"q\": {\"model\": \"res.partner\", \"domain\": [[\"a\", \"=\", {\"param\": \"v\"}]], "
	               "\"fields\": [\"id\"], \"params\": {\"v\": {\"pattern\": \"[A-Z]+\", \"default\": \"abc\"}}, "
	               "\"public\": true, \"auth\": {\"scheme\": \"none\"}}}", "the default does not match");
	config_refused("{\"q\": {\"model\": \"res.partner\", \"domain\": [], \"fields\": [\"id\"], "
	               "\"destination\": \"other\", \"public\": true, \"auth\": {\"scheme\": \"none\"}}}",
	               "no Odoo destination is called \"other\"");
	config_refused("{\"a b\": {}}", "invalid query name");
}

int
main(void)
{
	RUN(test_names);
	RUN(test_domains);
	RUN(test_bind);
	RUN(test_injection);
	RUN(test_config_refusals);
	return check_done();
}
