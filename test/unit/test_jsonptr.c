/* RFC 6901 JSON pointers and the text of scalars. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "check.h"
#include "odoo_relay/error.h"
#include "odoo_relay/jsonptr.h"

static json_t *
parse(const char *text)
{
	json_error_t err;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &err);

	if (j == NULL)
		fprintf(stderr, "fixture does not parse: %s\n", err.text);
	return j;
}

/* The integer at ptr, or -1 if absent or not an integer. */
static long long
int_at(json_t *root, const char *ptr)
{
	json_t *v = relay_jsonptr_get(root, ptr);
	return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

/* The example document of RFC 6901 section 5, and its answers. */
static void
test_rfc6901_examples(void)
{
	json_t *doc = parse("{\"foo\": [\"bar\", \"baz\"], \"\": 0, \"a/b\": 1, \"c%d\": 2,"
	                    " \"e^f\": 3, \"g|h\": 4, \"i\\\\j\": 5, \"k\\\"l\": 6, \" \": 7,"
	                    " \"m~n\": 8}");
	json_t *v;

	CHECK(doc != NULL);
	CHECK(relay_jsonptr_get(doc, "") == doc);
	v = relay_jsonptr_get(doc, "/foo");
	CHECK(json_is_array(v) && json_array_size(v) == 2);
	CHECK_STR(json_string_value(relay_jsonptr_get(doc, "/foo/0")), "bar");
	CHECK_INT(int_at(doc, "/"), 0);
	CHECK_INT(int_at(doc, "/a~1b"), 1);
	CHECK_INT(int_at(doc, "/c%d"), 2);
	CHECK_INT(int_at(doc, "/e^f"), 3);
	CHECK_INT(int_at(doc, "/g|h"), 4);
	CHECK_INT(int_at(doc, "/i\\j"), 5);
	CHECK_INT(int_at(doc, "/k\"l"), 6);
	CHECK_INT(int_at(doc, "/ "), 7);
	CHECK_INT(int_at(doc, "/m~0n"), 8);
	/* escapes are not a substitution of the text */
	CHECK(relay_jsonptr_get(doc, "/a/b") == NULL);
	CHECK(relay_jsonptr_get(doc, "/m~n") == NULL);
	json_decref(doc);
}

static void
test_escapes_and_validity(void)
{
	json_t *doc = parse("{\"~1\": 9, \"/0\": 10, \"a\": {\"\": {\"b\": 11}}}");
	char *ptr, *key;
	json_t *big;

	CHECK(doc != NULL);
	/* "~01" is "~1", not "/": ~1 is unescaped before ~0 would be */
	CHECK_INT(int_at(doc, "/~01"), 9);
	CHECK_INT(int_at(doc, "/~10"), 10);
	/* an empty token is the key "" */
	CHECK_INT(int_at(doc, "/a//b"), 11);

	CHECK_INT(relay_jsonptr_valid(""), 1);
	CHECK_INT(relay_jsonptr_valid("/"), 1);
	CHECK_INT(relay_jsonptr_valid("/a~0~1/b"), 1);
	CHECK_INT(relay_jsonptr_valid("a"), 0);
	CHECK_INT(relay_jsonptr_valid("#/a"), 0);
	CHECK_INT(relay_jsonptr_valid("/~"), 0);
	CHECK_INT(relay_jsonptr_valid("/a~2"), 0);
	CHECK_INT(relay_jsonptr_valid("/a~"), 0);
	CHECK_INT(relay_jsonptr_valid(NULL), 0);
	CHECK(relay_jsonptr_get(doc, "a") == NULL);
	CHECK(relay_jsonptr_get(doc, "/~") == NULL);
	CHECK(relay_jsonptr_get(doc, "/~2") == NULL);
	CHECK(relay_jsonptr_get(doc, NULL) == NULL);
	CHECK(relay_jsonptr_get(NULL, "") == NULL);
	json_decref(doc);

	/* a long key with escapes takes the allocating path */
	key = malloc(402);
	ptr = malloc(2 + 400 + 4 + 1);
	CHECK(key && ptr);
	if (key && ptr) {
		memset(key, 'k', 400);
		memcpy(key + 400, "/~", 2);
		big = json_object();
		json_object_setn_new(big, key, 402, json_integer(12));
		ptr[0] = '/';
		memset(ptr + 1, 'k', 400);
		memcpy(ptr + 401, "~1~0", 5);
		CHECK_INT(int_at(big, ptr), 12);
		ptr[404] = '1';
		CHECK(relay_jsonptr_get(big, ptr) == NULL);
		json_decref(big);
	}
	free(key);
	free(ptr);
}

static void
test_arrays(void)
{
	json_t *doc = parse("{\"a\": [10, 11, [20, 21], {\"x\": 30}], \"s\": \"str\", \"n\": null}");

	CHECK(doc != NULL);
	CHECK_INT(int_at(doc, "/a/0"), 10);
	CHECK_INT(int_at(doc, "/a/1"), 11);
	CHECK_INT(int_at(doc, "/a/2/1"), 21);
	CHECK_INT(int_at(doc, "/a/3/x"), 30);
	CHECK(relay_jsonptr_get(doc, "/a/4") == NULL);
	CHECK(relay_jsonptr_get(doc, "/a/-") == NULL);
	CHECK(relay_jsonptr_get(doc, "/a/01") == NULL);
	CHECK(relay_jsonptr_get(doc, "/a/00") == NULL);
	CHECK(relay_jsonptr_get(doc, "/a/+1") == NULL);
	CHECK(relay_jsonptr_get(doc, "/a/-1") == NULL);
	CHECK(relay_jsonptr_get(doc, "/a/1a") == NULL);
	CHECK(relay_jsonptr_get(doc, "/a/ 1") == NULL);
	CHECK(relay_jsonptr_get(doc, "/a/") == NULL);
	CHECK(relay_jsonptr_get(doc, "/a/18446744073709551617") == NULL);
	CHECK(relay_jsonptr_get(doc, "/a/99999999999999999999999999999999") == NULL);
	/* through a scalar, and a present null */
	CHECK(relay_jsonptr_get(doc, "/s/0") == NULL);
	CHECK(relay_jsonptr_get(doc, "/a/0/x") == NULL);
	CHECK(json_is_null(relay_jsonptr_get(doc, "/n")));
	CHECK(relay_jsonptr_get(doc, "/missing") == NULL);
	json_decref(doc);

	/* an array at the root */
	doc = parse("[\"r0\", \"r1\"]");
	CHECK_STR(json_string_value(relay_jsonptr_get(doc, "/1")), "r1");
	json_decref(doc);
}

static void
check_text(json_t *v, const char *want)
{
	char buf[64] = "junk";

	CHECK_INT(relay_json_scalar_text(v, buf, sizeof(buf)), 0);
	CHECK_STR(buf, want);
	json_decref(v);
}

static void
test_scalar_text(void)
{
	char buf[8];
	json_t *v;

	check_text(json_string("evt_1"), "evt_1");
	check_text(json_string(""), "");
	check_text(json_string("M\xc3\xbcller"), "M\xc3\xbcller");
	check_text(json_integer(42), "42");
	check_text(json_integer(-7), "-7");
	check_text(json_integer(820982911946154508LL), "820982911946154508");
	check_text(json_integer(INT64_MIN), "-9223372036854775808");
	check_text(json_real(0.1), "0.1");
	check_text(json_real(1.5), "1.5");
	check_text(json_real(2.0), "2");
	check_text(json_real(-0.25), "-0.25");
	check_text(json_real(1e300), "1e+300");
	check_text(json_real(0.1 + 0.2), "0.30000000000000004");
	check_text(json_true(), "true");
	check_text(json_false(), "false");

	/* not scalars */
	CHECK_INT(relay_json_scalar_text(NULL, buf, sizeof(buf)), -RELAY_EINVAL);
	v = json_object();
	CHECK_INT(relay_json_scalar_text(v, buf, sizeof(buf)), -RELAY_EINVAL);
	json_decref(v);
	v = json_array();
	CHECK_INT(relay_json_scalar_text(v, buf, sizeof(buf)), -RELAY_EINVAL);
	json_decref(v);
	CHECK_INT(relay_json_scalar_text(json_null(), buf, sizeof(buf)), -RELAY_EINVAL);
	v = json_stringn("a\0b", 3);
	CHECK_INT(relay_json_scalar_text(v, buf, sizeof(buf)), -RELAY_EINVAL);
	json_decref(v);

	/* sizes: the text and its NUL must fit */
	v = json_string("1234567");
	CHECK_INT(relay_json_scalar_text(v, buf, 8), 0);
	CHECK_STR(buf, "1234567");
	CHECK_INT(relay_json_scalar_text(v, buf, 7), -RELAY_ETOOBIG);
	CHECK_STR(buf, "");
	json_decref(v);
	v = json_integer(12345678);
	CHECK_INT(relay_json_scalar_text(v, buf, 8), -RELAY_ETOOBIG);
	CHECK_STR(buf, "");
	json_decref(v);
	CHECK_INT(relay_json_scalar_text(json_false(), buf, 5), -RELAY_ETOOBIG);
	CHECK_INT(relay_json_scalar_text(json_false(), buf, 6), 0);
	CHECK_STR(buf, "false");
	v = json_real(0.30000000000000004);
	CHECK_INT(relay_json_scalar_text(v, buf, 8), -RELAY_ETOOBIG);
	json_decref(v);
	v = json_string("x");
	CHECK_INT(relay_json_scalar_text(v, NULL, 0), -RELAY_ETOOBIG);
	json_decref(v);
}

/* The text of the number spelled json (parsed as jansson reads a body). */
static const char *
number_text(const char *json)
{
	static char buf[64];
	json_t *v = parse(json);

	if (relay_json_scalar_text(v, buf, sizeof(buf)) != 0)
		snprintf(buf, sizeof(buf), "(not a scalar)");
	json_decref(v);
	return buf;
}

static void
test_number_forms(void)
{
	static const char *const one[] = { "1", "1.0", "1e0", "1E+0", "10e-1", "0.1e1", "1.000",
	                                   "100E-2" };
	static const long long samples[] = { 7, -7, 100, 1000000, -1000000, 123456789,
	                                     100000000000000LL, 9007199254740991LL,
	                                     -9007199254740991LL, 4503599627370497LL };
	char spell[64], want[32];
	size_t i;

	/* one number, one text, however the sender wrote it */
	for (i = 0; i < sizeof(one) / sizeof(one[0]); i++)
		CHECK_STR(number_text(one[i]), "1");
	CHECK_STR(number_text("-0"), "0");
	CHECK_STR(number_text("-0.0"), "0");
	CHECK_STR(number_text("0e5"), "0");
	CHECK_STR(number_text("1e6"), "1000000");
	CHECK_STR(number_text("1e15"), "1000000000000000");
	CHECK_STR(number_text("-2.5e3"), "-2500");
	for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		snprintf(want, sizeof(want), "%lld", samples[i]);
		CHECK_STR(number_text(want), want);
		snprintf(spell, sizeof(spell), "%lld.0", samples[i]);
		CHECK_STR(number_text(spell), want);
		snprintf(spell, sizeof(spell), "%lld000e-3", samples[i]);
		CHECK_STR(number_text(spell), want);
		snprintf(spell, sizeof(spell), "%.17e", (double)samples[i]);
		CHECK_STR(number_text(spell), want);
	}
	/* fractions: the shortest text that reads back */
	CHECK_STR(number_text("1.5"), "1.5");
	CHECK_STR(number_text("15e-1"), "1.5");
	CHECK_STR(number_text("1.50"), "1.5");
	CHECK_STR(number_text("0.1"), "0.1");
	CHECK_STR(number_text("1e-7"), "1e-07");
	CHECK_STR(number_text("4503599627370495.5"), "4503599627370495.5");
	/* at and above 2^53 a real may stand for several integers: not made one */
	CHECK_STR(number_text("9007199254740992.0"), "9007199254740992");
	CHECK_STR(number_text("1e18"), "1e+18");
	CHECK_STR(number_text("1000000000000000000"), "1000000000000000000");
	CHECK_STR(number_text("-1e300"), "-1e+300");
}

int
main(void)
{
	RUN(test_rfc6901_examples);
	RUN(test_escapes_and_validity);
	RUN(test_arrays);
	RUN(test_scalar_text);
	RUN(test_number_forms);
	return check_done();
}
