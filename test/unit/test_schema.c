/* Unit tests for lib/schema.c: positions, getters, keys and the one wording. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "check.h"
#include "odoo_relay/error.h"
#include "odoo_relay/schema.h"

/* line 1: {
 * line 2:   "a": {"n": 5, "t": true, "s": "x", "e": "", "r": 2.5},
 * line 3:   "l": [1, null, "two"],
 * line 4:   "k": "hold", "f": false, "g": false
 * line 5: } */
static const char text[] =
	"{\n"
	"  \"a\": {\"n\": 5, \"t\": true, \"s\": \"x\", \"e\": \"\", \"r\": 2.5},\n"
	"  \"l\": [1, null, \"two\"],\n"
	"  \"k\": \"hold\", \"f\": false, \"g\": false\n"
	"}\n";

static struct relay_schema_doc *
parse(void)
{
	struct relay_schema_doc *doc = NULL;
	struct relay_config_error err;

	memset(&err, 0, sizeof(err));
	CHECK_INT(relay_schema_doc_parse(text, strlen(text), &doc, &err), 0);
	return doc;
}

static void
test_positions(void)
{
	struct relay_schema_doc *doc = parse();
	json_t *root = relay_schema_doc_root(doc), *a = json_object_get(root, "a");
	json_t *l = json_object_get(root, "l");
	unsigned line = 0, col = 0;

	CHECK_INT(relay_schema_where(doc, root, &line, &col), 0);
	CHECK_INT(line, 1);
	CHECK_INT(col, 1);
	CHECK_INT(relay_schema_where(doc, a, &line, &col), 0);
	CHECK_INT(line, 2);
	CHECK_INT(col, 8);
	CHECK_INT(relay_schema_where(doc, json_object_get(a, "n"), &line, &col), 0);
	CHECK_INT(col, 14);
	CHECK_INT(relay_schema_where_member(doc, a, "n", 1, &line, &col), 0);
	CHECK_INT(col, 9);
	/* a true that occurs once is placed, a false that occurs twice is not ... */
	CHECK_INT(relay_schema_where(doc, json_object_get(a, "t"), &line, &col), 0);
	CHECK_INT(col, 22);
	CHECK_INT(relay_schema_where(doc, json_object_get(root, "f"), NULL, NULL), -RELAY_ENOTFOUND);
	/* ... but as a member it is */
	CHECK_INT(relay_schema_where_member(doc, root, "g", 0, &line, &col), 0);
	CHECK_INT(line, 4);
	CHECK_INT(col, 33);
	CHECK_INT(relay_schema_where_index(doc, l, 2, &line, &col), 0);
	CHECK_INT(line, 3);
	CHECK_INT(col, 18);
	CHECK_INT(relay_schema_where_index(doc, l, 3, &line, &col), -RELAY_ENOTFOUND);
	CHECK_INT(relay_schema_where_member(doc, a, "zz", 0, &line, &col), -RELAY_ENOTFOUND);
	CHECK_INT(relay_schema_where(doc, NULL, &line, &col), -RELAY_ENOTFOUND);
	CHECK_INT(relay_schema_where(NULL, root, &line, &col), -RELAY_ENOTFOUND);
	relay_schema_doc_free(doc);
	relay_schema_doc_free(NULL);
}

static void
test_syntax(void)
{
	static const char bad[] = "{\"a\": 1,\n \"secret-ish\" 2}";
	struct relay_schema_doc *doc = (struct relay_schema_doc *)&doc;
	struct relay_config_error err;

	memset(&err, 0, sizeof(err));
	CHECK_INT(relay_schema_doc_parse(bad, strlen(bad), &doc, &err), -RELAY_ECONFIG);
	CHECK(doc == NULL);
	CHECK_INT(err.line, 2);
	CHECK(strstr(err.text, "near") == NULL); /* never quotes the input */
	CHECK_INT(relay_schema_doc_parse("{\"a\": 1, \"a\": 2}", 16, &doc, &err), -RELAY_ECONFIG);
	CHECK(strstr(err.text, "duplicate") != NULL);
	CHECK_INT(relay_schema_doc_parse(NULL, 3, &doc, &err), -RELAY_EINVAL);
}

static void
test_getters(void)
{
	static const struct relay_schema_enum lanes[] = { { "continue", 0 }, { "hold", 1 }, { NULL, 0 } };
	struct relay_schema_doc *doc = parse();
	json_t *root = relay_schema_doc_root(doc), *a = json_object_get(root, "a"), *o = NULL;
	struct relay_config_error err;
	struct relay_schema s;
	const char *str = NULL;
	int64_t n = 0;
	unsigned u = 0;
	double d = 0;
	int b = 0, e = 0;

	relay_schema_init(&s, doc, "t.json", &err, RELAY_SCHEMA_PLACE_MEMBER);
	relay_schema_push(&s, "a");
	CHECK_INT(relay_schema_int(&s, a, "n", 1, 10, &n), 0);
	CHECK_INT(n, 5);
	CHECK_INT(relay_schema_int(&s, a, "missing", 1, 10, &n), 0); /* absent: default kept */
	CHECK_INT(n, 5);
	CHECK_INT(relay_schema_int(&s, a, "n", 6, 10, &n), -RELAY_ECONFIG);
	CHECK_STR(err.text, "a.n: 5 is out of range (6..10)");
	CHECK_STR(err.file, "t.json");
	CHECK_INT(err.line, 2);
	CHECK_INT(err.column, 14);
	CHECK_INT(relay_schema_unsigned(&s, a, "n", 1, 9, &u), 0);
	CHECK_INT(u, 5);
	CHECK_INT(relay_schema_int(&s, a, "s", 0, 9, &n), -RELAY_ECONFIG);
	CHECK_STR(err.text, "a.s: expected an integer, got a string");
	CHECK_INT(relay_schema_number(&s, a, "r", 0, 3, &d), 0);
	CHECK(d == 2.5);
	CHECK_INT(relay_schema_number(&s, a, "n", 0, 1e6, &d), 0);
	CHECK(d == 5);
	CHECK_INT(relay_schema_number(&s, a, "r", 0, 1, &d), -RELAY_ECONFIG);
	CHECK_STR(err.text, "a.r: 2.5 is out of range (0..1)");
	CHECK_INT(relay_schema_bool(&s, a, "t", &b), 0);
	CHECK_INT(b, 1);
	CHECK_INT(relay_schema_bool(&s, a, "n", &b), -RELAY_ECONFIG);
	CHECK_STR(err.text, "a.n: expected a boolean, got an integer");
	CHECK_INT(relay_schema_string(&s, a, "s", 1, &str), 0);
	CHECK_STR(str, "x");
	CHECK_INT(relay_schema_string(&s, a, "e", 0, &str), -RELAY_ECONFIG);
	CHECK_STR(err.text, "a.e: must not be empty");
	CHECK_INT(relay_schema_string(&s, a, "zz", 1, &str), -RELAY_ECONFIG);
	CHECK_STR(err.text, "a: missing required key \"zz\"");
	CHECK_INT(err.line, 2);
	CHECK_INT(err.column, 8); /* at the object */
	relay_schema_pop(&s, 0);
	CHECK_INT(relay_schema_object(&s, root, "a", 1, &o), 0);
	CHECK(o == a);
	CHECK_INT(relay_schema_object(&s, root, "l", 1, &o), -RELAY_ECONFIG);
	CHECK_STR(err.text, "l: expected an object, got an array");
	CHECK_INT(relay_schema_array(&s, root, "l", 1, &o), 0);
	CHECK(json_is_array(o));
	CHECK_INT(relay_schema_enum(&s, root, "k", 1, lanes, "policy", &e), 0);
	CHECK_INT(e, 1);
	CHECK_INT(relay_schema_enum(&s, a, "s", 1, lanes, "policy", &e), -RELAY_ECONFIG);
	CHECK_STR(err.text, "s: unknown policy \"x\" (expected one of continue, hold)");
	/* a false member is placed by its key, although jansson shares it */
	CHECK_INT(relay_schema_int(&s, root, "g", 0, 1, &n), -RELAY_ECONFIG);
	CHECK_STR(err.text, "g: expected an integer, got a boolean");
	CHECK_INT(err.line, 4);
	CHECK_INT(err.column, 33);
	relay_schema_doc_free(doc);
}

static void
test_keys_and_places(void)
{
	static const char *const known[] = { "n", "t", "s", "e", NULL };
	struct relay_schema_doc *doc = parse();
	json_t *root = relay_schema_doc_root(doc), *a = json_object_get(root, "a");
	struct relay_config_error err;
	struct relay_schema s;

	/* config sections: an unknown key at its key */
	relay_schema_init(&s, doc, "t.json", &err, RELAY_SCHEMA_PLACE_MEMBER);
	relay_schema_push(&s, "a");
	CHECK_INT(relay_schema_keys(&s, a, known, NULL), -RELAY_ECONFIG);
	CHECK_STR(err.text, "a: unknown key \"r\"");
	CHECK_INT(err.column, 47);
	/* a check across members: at the member it names */
	CHECK_INT(relay_schema_error(&s, -RELAY_ECONFIG, a, "n", 0, RELAY_SCHEMA_ACROSS, "too big"),
	          -RELAY_ECONFIG);
	CHECK_STR(err.text, "a.n: too big");
	CHECK_INT(err.column, 14);

	/* routes: at values, with a scope before the path */
	relay_schema_init(&s, doc, "t.json", &err, RELAY_SCHEMA_PLACE_VALUE);
	relay_schema_scope(&s, "routes[%d] (%s)", 1, "r");
	CHECK_INT(relay_schema_keys(&s, a, known, "for operation call"), -RELAY_ECONFIG);
	CHECK_STR(err.text, "routes[1] (r): unknown key \"r\" for operation call");
	CHECK_INT(err.column, 52);
	CHECK_INT(relay_schema_error(&s, -RELAY_ECONFIG, a, "n", 0, RELAY_SCHEMA_ACROSS, "too big"),
	          -RELAY_ECONFIG);
	CHECK_STR(err.text, "routes[1] (r): n: too big");
	CHECK_INT(err.column, 8); /* the object */
	relay_schema_push(&s, "a");
	CHECK_INT(relay_schema_int(&s, a, "t", 0, 1, (int64_t[]){ 0 }), -RELAY_ECONFIG);
	CHECK_STR(err.text, "routes[1] (r): a.t: expected an integer, got a boolean");
	CHECK_INT(err.column, 8); /* a shared true: at its object */
	CHECK_INT(relay_schema_fail_at(&s, json_object_get(a, "s"), a, "bad %s", "thing"),
	          -RELAY_ECONFIG);
	CHECK_STR(err.text, "routes[1] (r): a: bad thing");
	CHECK_INT(err.column, 33);
	/* an element, and an error with no place */
	CHECK_INT(relay_schema_error(&s, -RELAY_ECONFIG, json_object_get(root, "l"), NULL, 2,
	                             RELAY_SCHEMA_INDEX, "no"), -RELAY_ECONFIG);
	CHECK_INT(err.line, 3);
	CHECK_INT(err.column, 18);
	CHECK_INT(relay_schema_oom(&s), ENOMEM);
	CHECK_INT(err.line, 0);
	/* no err: nothing described, the code still returned */
	relay_schema_init(&s, doc, NULL, NULL, RELAY_SCHEMA_PLACE_MEMBER);
	CHECK_INT(relay_schema_keys(&s, a, known, NULL), -RELAY_ECONFIG);
	relay_schema_doc_free(doc);
}

static void
test_rules(void)
{
	char q[96], big[200];

	CHECK(relay_schema_name_ok("shop-orders_2.v1"));
	CHECK(relay_schema_name_ok("a"));
	CHECK(!relay_schema_name_ok(""));
	CHECK(!relay_schema_name_ok("a b"));
	CHECK(!relay_schema_name_ok("a/b"));
	CHECK(!relay_schema_name_ok(NULL));
	memset(big, 'x', 65);
	big[65] = '\0';
	CHECK(!relay_schema_name_ok(big));
	big[64] = '\0';
	CHECK(relay_schema_name_ok(big));
	CHECK_STR(relay_schema_quote(q, sizeof(q), "a\"b\n"), "\"a\\\"b\\x0a\"");
	memset(big, 'k', 199);
	big[199] = '\0';
	relay_schema_quote(q, sizeof(q), big);
	CHECK(strlen(q) < sizeof(q));
	CHECK(strstr(q, "...") != NULL);
	CHECK_STR(relay_schema_type_name(NULL), "nothing");
	CHECK_STR(relay_schema_type_name(json_true()), "a boolean");
}

int
main(void)
{
	RUN(test_positions);
	RUN(test_syntax);
	RUN(test_getters);
	RUN(test_keys_and_places);
	RUN(test_rules);
	return check_done();
}
