/* Unit tests for lib/record.c: the versioned event record. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "odoo_relay/error.h"
#include "odoo_relay/record.h"

/* ---- a byte builder, to write records by hand from the format comment ---- */

struct bytes {
	unsigned char b[4096];
	size_t len;
};

static void
b_u8(struct bytes *b, uint8_t v)
{
	b->b[b->len++] = v;
}

static void
b_be(struct bytes *b, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--)
		b_u8(b, (uint8_t)(v >> (8 * i)));
}

static void
b_str(struct bytes *b, const char *s)
{
	if (!s) {
		b_be(b, 0xffffffffu, 4);
		return;
	}
	b_be(b, strlen(s), 4);
	memcpy(b->b + b->len, s, strlen(s));
	b->len += strlen(s);
}

/* A minimal version 1 record, byte by byte. */
static void
hand_record(struct bytes *b, uint8_t version)
{
	b->len = 0;
	b_u8(b, version);
	b_u8(b, 0);                 /* flags */
	b_be(b, 42, 8);             /* id */
	b_be(b, 1700000000000, 8);  /* received_ms */
	b_be(b, 1700000000500, 8);  /* due_ms */
	b_be(b, 0, 8);              /* first_attempt_ms */
	b_be(b, 3, 4);              /* attempts */
	b_str(b, "shop");
	b_str(b, "orders/create");
	b_str(b, NULL);             /* lane */
	b_str(b, "d-1");
	b_str(b, NULL);             /* route */
	b_be(b, 1, 4);              /* n_headers */
	b_str(b, "X-Topic");
	b_str(b, "orders/create");
	b_str(b, "{}");             /* body */
	b_str(b, NULL);             /* last_error */
	b_be(b, 1, 4);              /* n_history */
	b_be(b, (uint64_t)-5, 8);   /* at_ms, negative on purpose */
	b_u8(b, RELAY_CLASS_TRANSIENT);
	b_be(b, 503, 2);
	b_be(b, 12, 8);
	b_str(b, "http");
	b_str(b, "service unavailable");
	b_str(b, NULL);
	b_be(b, 0, 8);              /* dead_ms */
	b_str(b, NULL);
	b_str(b, NULL);
}

/* ---- a full event ---- */

static struct relay_header full_headers[] = {
	{ "Content-Type", "application/json" },
	{ "X-Empty", "" },
};

static struct relay_attempt full_history[] = {
	{ 1000, RELAY_CLASS_TRANSIENT, 502, 35, "http", "bad gateway", NULL },
	{ 2000, RELAY_CLASS_PERMANENT, 200, 1200, "odoo.exceptions.ValidationError",
	  "bad value", "Traceback (most recent call last):\n..." },
	{ 3000, RELAY_CLASS_CONFIG, 0, 0, "", "", "" },
};

static const unsigned char full_body[] = { '{', '"', 'a', '"', ':', 0, 1, 0xff, '}' };

static void
full_event(struct relay_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->id = UINT64_MAX - 1;
	ev->received_ms = 1700000000123;
	ev->due_ms = -1; /* odd values survive too */
	ev->first_attempt_ms = INT64_MAX;
	ev->attempts = 4000000000u;
	ev->source = "shopify";
	ev->topic = "";
	ev->lane = "order-7";
	ev->dedup_key = "wh-123";
	ev->route = "orders";
	ev->headers = full_headers;
	ev->n_headers = 2;
	ev->body = (unsigned char *)full_body;
	ev->body_len = sizeof(full_body);
	ev->last_error = "bad value";
	ev->history = full_history;
	ev->n_history = 3;
	ev->dead_ms = 1700000009999;
	ev->dead_reason = "permanent: ValidationError";
	ev->request = "{\"model\":\"res.partner\"}";
}

static int
streq_null(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

static int
is_zeroed(const struct relay_event *ev)
{
	static const struct relay_event zero;

	return memcmp(ev, &zero, sizeof(zero)) == 0;
}

static void
test_round_trip(void)
{
	struct relay_event in, out;
	unsigned char *buf = NULL, *buf2 = NULL;
	size_t len = 0, len2 = 0;

	full_event(&in);
	CHECK_INT(relay_record_encode(&in, &buf, &len), 0);
	CHECK_INT(relay_record_version(buf, len), 1);
	CHECK_INT(relay_record_decode(buf, len, &out), 0);

	CHECK(out.id == in.id);
	CHECK(out.received_ms == in.received_ms);
	CHECK(out.due_ms == -1);
	CHECK(out.first_attempt_ms == INT64_MAX);
	CHECK(out.attempts == 4000000000u);
	CHECK_STR(out.source, "shopify");
	CHECK_STR(out.topic, "");
	CHECK_STR(out.lane, "order-7");
	CHECK_STR(out.dedup_key, "wh-123");
	CHECK_STR(out.route, "orders");
	CHECK_INT(out.n_headers, 2);
	if (out.n_headers == 2) {
		CHECK_STR(out.headers[0].name, "Content-Type");
		CHECK_STR(out.headers[0].value, "application/json");
		CHECK_STR(out.headers[1].name, "X-Empty");
		CHECK_STR(out.headers[1].value, "");
	}
	CHECK_INT(out.body_len, sizeof(full_body));
	CHECK(out.body && memcmp(out.body, full_body, sizeof(full_body)) == 0);
	CHECK(out.body && out.body[out.body_len] == '\0'); /* terminated for parsers */
	CHECK_STR(out.last_error, "bad value");
	CHECK_INT(out.n_history, 3);
	for (size_t i = 0; i < 3 && i < out.n_history; i++) {
		CHECK(out.history[i].at_ms == full_history[i].at_ms);
		CHECK_INT(out.history[i].klass, full_history[i].klass);
		CHECK_INT(out.history[i].http_status, full_history[i].http_status);
		CHECK(out.history[i].duration_ms == full_history[i].duration_ms);
		CHECK(streq_null(out.history[i].error_name, full_history[i].error_name));
		CHECK(streq_null(out.history[i].message, full_history[i].message));
		CHECK(streq_null(out.history[i].detail, full_history[i].detail));
	}
	CHECK(out.history && out.history[0].detail == NULL);
	CHECK(out.dead_ms == in.dead_ms);
	CHECK_STR(out.dead_reason, "permanent: ValidationError");
	CHECK_STR(out.request, "{\"model\":\"res.partner\"}");

	/* The encoding is canonical: decoding and encoding again gives the
	 * same bytes. */
	CHECK_INT(relay_record_encode(&out, &buf2, &len2), 0);
	CHECK(len2 == len && buf2 && memcmp(buf, buf2, len) == 0);

	relay_event_clear(&out);
	CHECK(is_zeroed(&out));
	free(buf);
	free(buf2);
}

static void
test_null_vs_empty(void)
{
	struct relay_event in, out;
	unsigned char *buf = NULL;
	size_t len = 0;

	memset(&in, 0, sizeof(in));
	in.source = "s";
	in.topic = "";
	in.lane = NULL;
	in.dedup_key = "";
	in.body = (unsigned char *)""; /* empty, not absent */
	in.body_len = 0;
	CHECK_INT(relay_record_encode(&in, &buf, &len), 0);
	CHECK_INT(relay_record_decode(buf, len, &out), 0);
	CHECK_STR(out.topic, "");
	CHECK(out.lane == NULL);
	CHECK(out.route == NULL);
	CHECK_STR(out.dedup_key, "");
	CHECK(out.body != NULL && out.body_len == 0);
	CHECK(out.last_error == NULL && out.dead_reason == NULL && out.request == NULL);
	CHECK(out.headers == NULL && out.n_headers == 0);
	CHECK(out.history == NULL && out.n_history == 0);
	relay_event_clear(&out);
	free(buf);

	in.body = NULL;
	in.source = NULL;
	CHECK_INT(relay_record_encode(&in, &buf, &len), 0);
	CHECK_INT(relay_record_decode(buf, len, &out), 0);
	CHECK(out.body == NULL && out.body_len == 0);
	CHECK(out.source == NULL);
	relay_event_clear(&out);
	free(buf);

	/* A length without bytes is a caller bug, not a record. */
	in.body_len = 3;
	buf = NULL;
	CHECK_INT(relay_record_encode(&in, &buf, &len), -RELAY_EINVAL);
	CHECK(buf == NULL);
}

static void
test_hand_made_v1(void)
{
	struct bytes b;
	struct relay_event ev, copy;
	unsigned char *buf = NULL;
	size_t len = 0;

	hand_record(&b, 1);
	CHECK_INT(relay_record_decode(b.b, b.len, &ev), 0);
	CHECK(ev.id == 42);
	CHECK(ev.received_ms == 1700000000000);
	CHECK(ev.due_ms == 1700000000500);
	CHECK_INT(ev.attempts, 3);
	CHECK_STR(ev.source, "shop");
	CHECK_STR(ev.topic, "orders/create");
	CHECK(ev.lane == NULL && ev.route == NULL);
	CHECK_STR(ev.dedup_key, "d-1");
	CHECK_INT(ev.n_headers, 1);
	CHECK_INT(ev.body_len, 2);
	CHECK_INT(ev.n_history, 1);
	if (ev.n_history == 1) {
		CHECK(ev.history[0].at_ms == -5);
		CHECK_INT(ev.history[0].klass, RELAY_CLASS_TRANSIENT);
		CHECK_INT(ev.history[0].http_status, 503);
		CHECK_STR(ev.history[0].message, "service unavailable");
	}
	/* And the encoder writes exactly these bytes. */
	copy = ev;
	CHECK_INT(relay_record_encode(&copy, &buf, &len), 0);
	CHECK(len == b.len && buf && memcmp(buf, b.b, len) == 0);
	free(buf);
	relay_event_clear(&ev);
}

static void
test_newer_version(void)
{
	struct bytes b;
	struct relay_event ev;
	unsigned char v2 = 2;

	/* A "version 2" record: whatever follows, it is refused, not guessed. */
	hand_record(&b, 2);
	CHECK_INT(relay_record_version(b.b, b.len), 2);
	CHECK_INT(relay_record_decode(b.b, b.len, &ev), -RELAY_EVERSION);
	CHECK(is_zeroed(&ev));
	CHECK_INT(relay_record_decode(&v2, 1, &ev), -RELAY_EVERSION);
	b.b[0] = 255;
	CHECK_INT(relay_record_decode(b.b, b.len, &ev), -RELAY_EVERSION);
	/* Version 0 was never written. */
	b.b[0] = 0;
	CHECK_INT(relay_record_decode(b.b, b.len, &ev), -RELAY_ECORRUPT);
	CHECK_INT(relay_record_version(b.b, 0), -1);
	CHECK_INT(relay_record_version(NULL, 5), -1);
}

static void
test_truncations(void)
{
	struct relay_event in, out;
	unsigned char *buf = NULL, *copy;
	size_t len = 0;
	int refused = 0;

	full_event(&in);
	CHECK_INT(relay_record_encode(&in, &buf, &len), 0);
	/* Every prefix, each in a buffer of exactly that size so that the
	 * sanitizers see any read past the end. */
	for (size_t n = 0; n < len; n++) {
		copy = malloc(n ? n : 1);
		memcpy(copy, buf, n);
		if (relay_record_decode(copy, n, &out) == -RELAY_ECORRUPT && is_zeroed(&out))
			refused++;
		free(copy);
	}
	CHECK_INT(refused, len);

	/* One byte too many. */
	copy = malloc(len + 1);
	memcpy(copy, buf, len);
	copy[len] = 0;
	CHECK_INT(relay_record_decode(copy, len + 1, &out), -RELAY_ECORRUPT);
	free(copy);
	CHECK_INT(relay_record_decode(NULL, 0, &out), -RELAY_ECORRUPT);
	free(buf);
}

/* Offsets into hand_record()'s bytes. */
#define OFF_FLAGS 1
#define OFF_SOURCE_LEN (1 + 1 + 8 + 8 + 8 + 8 + 4)

static size_t
offset_of_n_headers(void)
{
	return OFF_SOURCE_LEN + (4 + 4) + (4 + 13) + 4 + (4 + 3) + 4;
}

static void
test_corrupt_lengths(void)
{
	struct bytes b;
	struct relay_event ev;
	size_t oh = offset_of_n_headers(), ohist;

	hand_record(&b, 1);
	CHECK_INT(b.b[oh + 3], 1); /* the offset arithmetic is right */

	/* A string length beyond the end. */
	b.b[OFF_SOURCE_LEN] = 0x7f;
	CHECK_INT(relay_record_decode(b.b, b.len, &ev), -RELAY_ECORRUPT);
	CHECK(is_zeroed(&ev));
	hand_record(&b, 1);
	b.b[OFF_SOURCE_LEN + 3] = 5; /* "shop" claims 5 bytes: everything shifts */
	CHECK_INT(relay_record_decode(b.b, b.len, &ev), -RELAY_ECORRUPT);
	/* 0xfffffffe is a length, not the NULL marker. */
	hand_record(&b, 1);
	memset(b.b + OFF_SOURCE_LEN, 0xff, 4);
	b.b[OFF_SOURCE_LEN + 3] = 0xfe;
	CHECK_INT(relay_record_decode(b.b, b.len, &ev), -RELAY_ECORRUPT);

	/* A count that the remaining bytes cannot hold: refused before any
	 * allocation of that size. */
	hand_record(&b, 1);
	memset(b.b + oh, 0xff, 4);
	b.b[oh + 3] = 0xfe;
	CHECK_INT(relay_record_decode(b.b, b.len, &ev), -RELAY_ECORRUPT);
	hand_record(&b, 1);
	b.b[oh + 3] = 2; /* two headers, bytes for one */
	CHECK_INT(relay_record_decode(b.b, b.len, &ev), -RELAY_ECORRUPT);
	CHECK(is_zeroed(&ev));

	/* n_history: after headers (4+7, 4+13), body (4+2), last_error (4). */
	ohist = oh + 4 + (4 + 7) + (4 + 13) + (4 + 2) + 4;
	hand_record(&b, 1);
	CHECK_INT(b.b[ohist + 3], 1);
	b.b[ohist] = 0x10;
	CHECK_INT(relay_record_decode(b.b, b.len, &ev), -RELAY_ECORRUPT);
	/* An unknown outcome class. */
	hand_record(&b, 1);
	b.b[ohist + 4 + 8] = 9;
	CHECK_INT(relay_record_decode(b.b, b.len, &ev), -RELAY_ECORRUPT);

	/* Reserved flags set. */
	hand_record(&b, 1);
	b.b[OFF_FLAGS] = 1;
	CHECK_INT(relay_record_decode(b.b, b.len, &ev), -RELAY_ECORRUPT);

	/* A NUL inside a text field would cut the string short silently. */
	hand_record(&b, 1);
	b.b[OFF_SOURCE_LEN + 4 + 1] = '\0';
	CHECK_INT(relay_record_decode(b.b, b.len, &ev), -RELAY_ECORRUPT);

	/* Every single-byte change either decodes or is refused cleanly. */
	hand_record(&b, 1);
	for (size_t i = 0; i < b.len; i++) {
		unsigned char saved = b.b[i];
		int rc;

		b.b[i] ^= 0xa5;
		rc = relay_record_decode(b.b, b.len, &ev);
		CHECK(rc == 0 || rc == -RELAY_ECORRUPT || rc == -RELAY_EVERSION);
		if (rc == 0)
			relay_event_clear(&ev);
		else
			CHECK(is_zeroed(&ev));
		b.b[i] = saved;
	}
}

static void
test_history_trimming(void)
{
	struct relay_event ev;
	struct relay_attempt a;
	char msg[32];
	int ok = 1;

	memset(&ev, 0, sizeof(ev));
	for (int i = 0; i < 40; i++) {
		memset(&a, 0, sizeof(a));
		a.at_ms = i;
		a.klass = RELAY_CLASS_TRANSIENT;
		snprintf(msg, sizeof(msg), "attempt %d", i);
		a.message = msg;
		a.error_name = i % 2 ? "odd" : NULL;
		if (relay_event_add_attempt(&ev, &a) != 0)
			ok = 0;
		if (ev.n_history > RELAY_RECORD_MAX_HISTORY)
			ok = 0;
	}
	CHECK(ok);
	CHECK_INT(ev.n_history, RELAY_RECORD_MAX_HISTORY);
	/* The first, then the most recent ones in order. */
	CHECK(ev.history[0].at_ms == 0);
	CHECK_STR(ev.history[0].message, "attempt 0");
	CHECK(ev.history[0].error_name == NULL);
	for (int i = 1; i < RELAY_RECORD_MAX_HISTORY; i++) {
		int want = 40 - RELAY_RECORD_MAX_HISTORY + i;

		snprintf(msg, sizeof(msg), "attempt %d", want);
		CHECK(ev.history[i].at_ms == want);
		CHECK_STR(ev.history[i].message, msg); /* a copy, not our buffer */
		CHECK(ev.history[i].message != msg);
	}
	CHECK_STR(ev.history[RELAY_RECORD_MAX_HISTORY - 1].error_name, "odd");

	/* Fewer than the limit: nothing dropped. */
	relay_event_clear(&ev);
	for (int i = 0; i < 3; i++) {
		memset(&a, 0, sizeof(a));
		a.at_ms = 100 + i;
		relay_event_add_attempt(&ev, &a);
	}
	CHECK_INT(ev.n_history, 3);
	CHECK(ev.history[2].at_ms == 102);
	relay_event_clear(&ev);
}

static void
test_class_names(void)
{
	CHECK_STR(relay_class_name(RELAY_CLASS_DONE), "done");
	CHECK_STR(relay_class_name(RELAY_CLASS_TRANSIENT), "transient");
	CHECK_STR(relay_class_name(RELAY_CLASS_PERMANENT), "permanent");
	CHECK_STR(relay_class_name(RELAY_CLASS_CONFIG), "configuration");
	CHECK_STR(relay_class_name(RELAY_CLASS_NONE), "none");
	CHECK_STR(relay_class_name(77), "none");
}

int
main(void)
{
	RUN(test_round_trip);
	RUN(test_null_vs_empty);
	RUN(test_hand_made_v1);
	RUN(test_newer_version);
	RUN(test_truncations);
	RUN(test_corrupt_lengths);
	RUN(test_history_trimming);
	RUN(test_class_names);
	return check_done();
}
