/* Unit tests for lib/utf8.c: cuts land before a character, never in it. */
#include <string.h>

#include <jansson.h>

#include "check.h"
#include "odoo_relay/utf8.h"

/* Whether jansson takes s as a string: the reason for the module. */
static int
json_ok(const char *s)
{
	json_t *j = json_string(s);
	int ok = j != NULL;

	json_decref(j);
	return ok;
}

static void
test_prefix(void)
{
	const char *s = "a\xc3\xa9" "b\xe2\x82\xac" "c\xf0\x9f\x98\x80"; /* a é b € c 😀 */
	size_t len = strlen(s);

	CHECK_INT(relay_utf8_prefix(s, len, len), len);
	CHECK_INT(relay_utf8_prefix(s, len, 100), len);
	CHECK_INT(relay_utf8_prefix(s, len, 0), 0);
	CHECK_INT(relay_utf8_prefix(s, len, 1), 1);
	CHECK_INT(relay_utf8_prefix(s, len, 2), 1); /* inside é */
	CHECK_INT(relay_utf8_prefix(s, len, 3), 3);
	CHECK_INT(relay_utf8_prefix(s, len, 5), 4); /* inside € */
	CHECK_INT(relay_utf8_prefix(s, len, 6), 4);
	CHECK_INT(relay_utf8_prefix(s, len, 7), 7);
	CHECK_INT(relay_utf8_prefix(s, len, 9), 8); /* inside 😀 */
	CHECK_INT(relay_utf8_prefix(s, len, 11), 8);
}

static void
test_trim(void)
{
	char b[16];

	strcpy(b, "ab\xc3");
	CHECK_INT(relay_utf8_trim(b), 2);
	CHECK_STR(b, "ab");
	strcpy(b, "ab\xc3\xa9");
	CHECK_INT(relay_utf8_trim(b), 4); /* complete: kept */
	strcpy(b, "x\xe2\x82");
	CHECK_INT(relay_utf8_trim(b), 1);
	strcpy(b, "x\xf0\x9f\x98");
	CHECK_INT(relay_utf8_trim(b), 1);
	strcpy(b, "x\xf0\x9f\x98\x80");
	CHECK_INT(relay_utf8_trim(b), 5);
	strcpy(b, "");
	CHECK_INT(relay_utf8_trim(b), 0);
	strcpy(b, "plain");
	CHECK_INT(relay_utf8_trim(b), 5);
	/* stray continuation bytes are not a cut of ours: left alone */
	strcpy(b, "x\x80\x80\x80\x80");
	CHECK_INT(relay_utf8_trim(b), 5);
}

/* The poller keeps its error in 512 bytes: an error whose byte 511 is the
 * second byte of é, and one where it is inside a 4-byte character. */
static void
test_snprintf_error_512(void)
{
	char error[512], text[1200];
	size_t n = 0;
	int got;

	while (n + 2 < sizeof(text)) {
		text[n++] = (char)0xc3;
		text[n++] = (char)0xa9;
	}
	text[n] = '\0';
	got = relay_utf8_snprintf(error, sizeof(error), "%s", text);
	CHECK_INT(got, 510);
	CHECK_INT(strlen(error), 510);
	CHECK(json_ok(error));
	/* what plain snprintf leaves: the reason for the module */
	memcpy(error, text, sizeof(error) - 1);
	error[sizeof(error) - 1] = '\0';
	CHECK(!json_ok(error));

	strcpy(text, "poll failed: ");
	n = strlen(text);
	while (n + 4 < sizeof(text)) {
		memcpy(text + n, "\xf0\x9f\x98\x80", 4);
		n += 4;
	}
	text[n] = '\0';
	got = relay_utf8_snprintf(error, sizeof(error), "%s", text);
	/* 13 + 4k <= 511: k = 124, 509 bytes */
	CHECK_INT(got, 509);
	CHECK(json_ok(error));

	/* fits: as snprintf */
	CHECK_INT(relay_utf8_snprintf(error, sizeof(error), "%s %d", "\xc3\xa9t\xc3\xa9", 5), 7);
	CHECK_STR(error, "\xc3\xa9t\xc3\xa9 5");
	/* a size of one holds the NUL alone */
	CHECK_INT(relay_utf8_snprintf(error, 1, "%s", "\xc3\xa9"), 0);
	CHECK_STR(error, "");
	CHECK_INT(relay_utf8_snprintf(error, 2, "%s", "\xc3\xa9"), 0);
	CHECK_STR(error, "");
}

int
main(void)
{
	RUN(test_prefix);
	RUN(test_trim);
	RUN(test_snprintf_error_512);
	return check_done();
}
