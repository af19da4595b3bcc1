/*
 * Writes the generated seed corpora of the fuzz targets:
 *
 *   make_seeds DIR   writes the files of DIR/http/, DIR/record/ and DIR/signature/
 *
 * They are kept in the tree (test/fuzz/corpus/); run this again after a
 * change to the record format, the signature schemes or fuzz_http.c's
 * configuration, and commit the result. Seeds are made by the library's own
 * encoders (relay_record_encode, relay_signature_sign), so that they are
 * valid by construction and follow the code when it changes. The config and
 * route seeds are copies of test/fixtures files and are not made here.
 *
 * Every output is deterministic (fixed times, no randomness), so that
 * regenerating changes nothing unless the code changed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "odoo_relay/config.h"
#include "odoo_relay/error.h"
#include "odoo_relay/record.h"
#include "odoo_relay/signature.h"

/* fuzz_signature.c's fixed clock and its second secret, which signs the
 * valid seeds; fuzz_http.c's stripe secret, for a stale signature. */
#define SIG_NOW 1700000000
#define SIG_SECRET "fuzz-secret"
#define HTTP_STRIPE_SECRET "whsec_fuzz"

static const char *outdir;
static int failed;

static void
put(const char *sub, const char *name, const void *data, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, sub);
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		perror(path);
		failed = 1;
		return;
	}
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, sub, name);
	if (!(f = fopen(path, "wb")) || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		failed = 1;
	}
}

/* ---- record -------------------------------------------------------------- */

static void
put_record(const char *name, const struct relay_event *ev)
{
	unsigned char *buf;
	size_t len;
	int rc = relay_record_encode(ev, &buf, &len);

	if (rc != 0) {
		fprintf(stderr, "make_seeds: cannot encode %s: %s\n", name, relay_strerror(rc));
		failed = 1;
		return;
	}
	put("record", name, buf, len);
	free(buf);
}

static void
records(void)
{
	static char body[] = "{\"id\":42,\"email\":\"ada@example.com\"}";
	struct relay_header headers[] = {
		{ "X-Shopify-Topic", "customers/create" },
		{ "X-Shopify-Shop-Domain", "shop.example.com" },
	};
	struct relay_attempt history[] = {
		{ 1700000001000, RELAY_CLASS_TRANSIENT, 503, 120, "transport", "service unavailable",
		  NULL },
		{ 1700000061000, RELAY_CLASS_PERMANENT, 200, 85, "odoo.exceptions.ValidationError",
		  "invalid email", "Traceback (most recent call last): ..." },
	};
	struct relay_event ev = {
		.id = 1,
		.received_ms = 1700000000000,
		.due_ms = 1700000000000,
		.source = "shop",
		.topic = "customers/create",
		.lane = "42",
		.dedup_key = "b54557e4-8f66-4d5c-9c3d-3c1b7b0f5a11",
		.body = (unsigned char *)body,
		.body_len = sizeof(body) - 1,
	};

	put_record("queued", &ev);

	ev.lane = NULL; /* no lane, no topic, empty body */
	ev.topic = "";
	ev.body_len = 0;
	put_record("no-lane-empty-body", &ev);

	ev.lane = "42";
	ev.topic = "customers/create";
	ev.body_len = sizeof(body) - 1;
	ev.headers = headers;
	ev.n_headers = 2;
	ev.route = "shop-customers";
	put_record("headers-route", &ev);

	ev.id = 77;
	ev.attempts = 2;
	ev.first_attempt_ms = 1700000001000;
	ev.due_ms = 1700000121000;
	ev.history = history;
	ev.n_history = 2;
	ev.last_error = "invalid email";
	put_record("retried", &ev);

	ev.dead_ms = 1700000062000;
	ev.dead_reason = "permanent: odoo.exceptions.ValidationError: invalid email";
	ev.request = "{\"jsonrpc\":\"2.0\",\"method\":\"call\",\"params\":{}}";
	put_record("dead-letter", &ev);
}

/* ---- signature ------------------------------------------------------------ */

/* fuzz_signature.c's layout: scheme index, variant bits, header value, '\n',
 * body. The scheme index is the position in its schemes[] table. */
enum { S_NONE, S_SHOPIFY, S_WOO, S_GITHUB, S_STRIPE, S_HMAC, S_TOKEN };

static const enum relay_sig_scheme scheme_of[] = {
	RELAY_SIG_NONE, RELAY_SIG_SHOPIFY, RELAY_SIG_WOOCOMMERCE, RELAY_SIG_GITHUB,
	RELAY_SIG_STRIPE, RELAY_SIG_HMAC_SHA256, RELAY_SIG_TOKEN,
};

static void
put_sig(const char *name, int scheme, int variant, const char *value, const char *body)
{
	char buf[4096];
	int n = snprintf(buf, sizeof(buf), "%c%c%s\n%s", scheme, variant, value, body);

	put("signature", name, buf, (size_t)n);
}

/* A seed whose header value is what fuzz_signature.c's secret signs. */
static void
put_signed(const char *name, int scheme, int variant, const char *body, int64_t now)
{
	struct relay_secret secret = { (unsigned char *)SIG_SECRET, sizeof(SIG_SECRET) - 1 };
	struct relay_verify_conf vc = {
		.scheme = scheme_of[scheme],
		.secrets = &secret,
		.n_secrets = 1,
		.encoding = variant & 1 ? RELAY_ENC_BASE64 : RELAY_ENC_HEX,
		.prefix = variant & 2 ? "sha256=" : NULL,
		.tolerance_s = 300,
	};
	char value[RELAY_SIGNATURE_MAX + 64];
	int rc;

	if (scheme == S_HMAC)
		vc.header = "X-Signature";
	else if (scheme == S_TOKEN && (variant & 4))
		vc.header = "X-Token";
	rc = relay_signature_sign(&vc, (const unsigned char *)body, strlen(body), now, value,
	                          sizeof(value));
	if (rc != 0) {
		fprintf(stderr, "make_seeds: cannot sign %s: %s\n", name, relay_strerror(rc));
		failed = 1;
		return;
	}
	put_sig(name, scheme, variant, value, body);
}

static void
signatures(void)
{
	static const char order[] = "{\"id\":820982911946154508,\"email\":\"jon@example.com\"}";
	static const char event[] = "{\"id\":\"evt_1\",\"type\":\"invoice.paid\"}";

	put_signed("none", S_NONE, 0, order, SIG_NOW);
	put_signed("shopify", S_SHOPIFY, 0, order, SIG_NOW);
	put_signed("shopify-empty-body", S_SHOPIFY, 0, "", SIG_NOW);
	put_signed("woocommerce", S_WOO, 0, order, SIG_NOW);
	put_signed("github", S_GITHUB, 0, "{\"zen\":\"Keep it simple.\"}", SIG_NOW);
	put_signed("stripe", S_STRIPE, 0, event, SIG_NOW);
	put_signed("stripe-stale", S_STRIPE, 0, event, SIG_NOW - 3600);
	put_signed("hmac-hex", S_HMAC, 0, order, SIG_NOW);
	put_signed("hmac-base64", S_HMAC, 1, order, SIG_NOW);
	put_signed("hmac-hex-prefix", S_HMAC, 2, order, SIG_NOW);
	put_signed("hmac-base64-prefix", S_HMAC, 3, order, SIG_NOW);
	put_signed("token-bearer", S_TOKEN, 0, order, SIG_NOW);
	put_signed("token-header", S_TOKEN, 4, order, SIG_NOW);
	/* malformed values, one per parser's way of refusing */
	put_sig("stripe-two-t", S_STRIPE, 0, "t=1700000000,t=1700000001,v1=00,v0=zz", event);
	put_sig("stripe-no-v1", S_STRIPE, 0, "t=1700000000,v0=abcdef", event);
	put_sig("github-no-prefix", S_GITHUB, 0,
	        "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90", order);
	put_sig("shopify-bad-base64", S_SHOPIFY, 0, "  not*base64==  ", order);
	put_sig("hmac-base64-unpadded", S_HMAC, 1, "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq8", "");
	put_sig("token-lowercase-bearer", S_TOKEN, 0, "bearer fuzz-secret", order);
}

/* ---- http ------------------------------------------------------------------ */

/* One request of fuzz_http.c's stream: Content-Length is added unless the
 * headers give one (or a Transfer-Encoding), and Host to an HTTP/1.1 request
 * without one (RFC 9112 wants it). "{SIG}" is signed by the target. */
static size_t
request(char *out, size_t n, const char *line, const char *headers, const char *body)
{
	int framed = strstr(headers, "Content-Length:") || strstr(headers, "Transfer-Encoding:");
	const char *host = strstr(line, "HTTP/1.1") && !strstr(headers, "Host:") ? "Host: relay\r\n" : "";
	int len;

	if (framed)
		len = snprintf(out, n, "%s\r\n%s%s\r\n%s", line, host, headers, body);
	else
		len = snprintf(out, n, "%s\r\n%s%sContent-Length: %zu\r\n\r\n%s", line, host,
		               headers, strlen(body), body);
	return len < 0 || (size_t)len >= n ? n - 1 : (size_t)len;
}

static void
put_http(const char *name, const char *line, const char *headers, const char *body)
{
	char buf[16384];
	size_t len = request(buf, sizeof(buf), line, headers, body);

	put("http", name, buf, len);
}

static void
http(void)
{
	static const char json[] = "Content-Type: application/json\r\n";
	static const char order[] =
		"{\"id\":820982911946154508,\"email\":\"jon@example.com\",\"order_key\":\"wc_order_1\","
		"\"total_price\":\"10.00\"}";
	static const char stripe[] =
		"{\"id\":\"evt_1NG8Du2eZvKYlo2CUI79vXWy\",\"type\":\"invoice.paid\","
		"\"data\":{\"object\":{\"customer\":\"cus_9s6XKzkNRiz8i3\"}}}";
	char h[8192], body[1024], sig[RELAY_SIGNATURE_MAX + 64];
	size_t len, i, o;

	/* accepted, one per source */
	snprintf(h, sizeof(h), "Host: relay\r\n%sX-Shopify-Webhook-Id: b54557e4-1\r\n"
	         "X-Shopify-Topic: orders/create\r\nX-Shopify-Shop-Domain: shop.example.com\r\n"
	         "X-Shopify-Hmac-Sha256: {SIG}\r\n", json);
	put_http("shop", "POST /hooks/shop HTTP/1.1", h, order);
	snprintf(h, sizeof(h), "%sX-WC-Webhook-Delivery-ID: 9f1\r\nX-WC-Webhook-Topic: order.updated\r\n"
	         "X-WC-Webhook-Signature: {SIG}\r\n", json);
	put_http("woo", "POST /hooks/woo HTTP/1.1", h, order);
	put_http("github", "POST /hooks/gh HTTP/1.1",
	         "X-GitHub-Delivery: 72d3162e-cc78-11e3-81ab-4c9367dc0958\r\nX-GitHub-Event: push\r\n"
	         "X-Hub-Signature-256: {SIG}\r\nContent-Type: application/x-www-form-urlencoded\r\n",
	         "payload=%7B%22zen%22%3A%22Keep+it+simple.%22%7D");
	snprintf(h, sizeof(h), "%sStripe-Signature: {SIG}\r\n", json);
	put_http("stripe", "POST /hooks/pay HTTP/1.1", h, stripe);
	put_http("hmac-base64-prefix", "POST /hooks/erp HTTP/1.1",
	         "X-Request-Id: r-1\r\nX-Lane: customer-7\r\nX-Signature: {SIG}\r\n",
	         "<invoice id=\"7\"/>");
	snprintf(h, sizeof(h), "%sX-Sig: {SIG}\r\n", json);
	put_http("hmac-hex", "POST /hooks/hex HTTP/1.1", h,
	         "{\"event\":{\"id\":\"e-1\",\"type\":\"stock.moved\"},\"qty\":3}");
	snprintf(h, sizeof(h), "%sAuthorization: {SIG}\r\n", json);
	put_http("token-bearer", "POST /hooks/forms HTTP/1.1", h,
	         "{\"submission/id\":7,\"email\":\"a@b.c\"}");
	put_http("token-header", "POST /hooks/tok HTTP/1.1", "X-Token: {SIG}\r\nX-Id: t-1\r\n", "hello");
	snprintf(h, sizeof(h), "%sX-Id: l-1\r\nX-Lane: 42\r\n", json);
	put_http("none-json", "POST /hooks/lab HTTP/1.1", h, "{\"type\":\"thing/created\",\"id\":1}");
	put_http("none-raw", "POST /hooks/raw/?from=fuzz HTTP/1.1", "X-Id: r-1\r\n",
	         "\x00\x01\x02 binary \xff");

	/* a duplicate: the second answer is 200 */
	len = request(h, sizeof(h), "POST /hooks/raw HTTP/1.1", "X-Id: dup-1\r\n", "same");
	len += request(h + len, sizeof(h) - len, "POST /hooks/raw HTTP/1.1", "X-Id: dup-1\r\n",
	               "same");
	put("http", "duplicate", h, len);

	/* keep-alive: health, readiness and metrics on one connection */
	len = request(h, sizeof(h), "GET /healthz HTTP/1.1", "Host: relay\r\n", "");
	len += request(h + len, sizeof(h) - len, "GET /readyz HTTP/1.1", "", "");
	len += request(h + len, sizeof(h) - len, "POST /hooks/raw HTTP/1.1", "X-Id: ka-1\r\n", "{}");
	len += request(h + len, sizeof(h) - len, "GET /metrics HTTP/1.1", "Connection: close\r\n",
	               "");
	put("http", "keep-alive", h, len);
	put_http("head", "HEAD /healthz HTTP/1.1", "", "");
	put_http("http10-keep-alive", "GET /healthz HTTP/1.0", "Connection: keep-alive\r\n", "");
	snprintf(h, sizeof(h), "%sExpect: 100-continue\r\nX-Id: e-1\r\n", json);
	put_http("expect-continue", "POST /hooks/lab HTTP/1.1", h, "{\"type\":\"x\"}");

	/* rejections, one per status and reason */
	snprintf(h, sizeof(h), "%sX-Shopify-Webhook-Id: b1\r\n"
	         "X-Shopify-Hmac-Sha256: 2cF+yoEA4QyZMmmIK0pZ3wJT8SFGKEnxvdKdMsfU1ro=\r\n", json);
	put_http("401-bad-signature", "POST /hooks/shop HTTP/1.1", h, order);
	snprintf(h, sizeof(h), "%sX-Shopify-Webhook-Id: b1\r\n", json);
	put_http("401-no-signature", "POST /hooks/shop HTTP/1.1", h, order);
	{
		/* authentic but an hour old: fuzz_http's stripe secret */
		struct relay_secret s = { (unsigned char *)HTTP_STRIPE_SECRET,
		                          sizeof(HTTP_STRIPE_SECRET) - 1 };
		struct relay_verify_conf vc = { .scheme = RELAY_SIG_STRIPE, .secrets = &s,
		                                .n_secrets = 1 };
		if (relay_signature_sign(&vc, (const unsigned char *)stripe, strlen(stripe),
		                         SIG_NOW, sig, sizeof(sig)) != 0)
			failed = 1;
		snprintf(h, sizeof(h), "%sStripe-Signature: %s\r\n", json, sig);
		put_http("401-stripe-stale", "POST /hooks/pay HTTP/1.1", h, stripe);
	}
	snprintf(h, sizeof(h), "%sX-Id: l-2\r\n", json);
	put_http("400-not-json", "POST /hooks/lab HTTP/1.1", h, "{\"type\": ");
	put_http("400-lane-object", "POST /hooks/pay HTTP/1.1", "Content-Type: application/json\r\n"
	         "Stripe-Signature: {SIG}\r\n",
	         "{\"id\":\"evt_2\",\"type\":\"x\",\"data\":{\"object\":{\"customer\":{\"id\":1}}}}");
	put_http("400-no-dedup", "POST /hooks/lab HTTP/1.1", json, "{\"type\":\"x\"}");
	o = (size_t)snprintf(h, sizeof(h), "X-Id: ");
	for (i = 0; i < 600; i++)
		h[o++] = 'k';
	snprintf(h + o, sizeof(h) - o, "\r\n");
	put_http("400-dedup-too-long", "POST /hooks/raw HTTP/1.1", h, "x");
	/* within that limit, too long for the store's keys with the source name */
	o = (size_t)snprintf(h, sizeof(h), "X-Id: ");
	for (i = 0; i < 505; i++)
		h[o++] = 'k';
	snprintf(h + o, sizeof(h) - o, "\r\n");
	put_http("400-dedup-too-long-to-store", "POST /hooks/raw HTTP/1.1", h, "x");
	o = (size_t)snprintf(h, sizeof(h), "%sX-Id: l-3\r\nX-Lane: ", json);
	for (i = 0; i < 505; i++)
		h[o++] = 'n';
	snprintf(h + o, sizeof(h) - o, "\r\n");
	put_http("400-lane-too-long-to-store", "POST /hooks/lab HTTP/1.1", h, "{\"type\":\"x\"}");
	put_http("400-bad-length", "POST /hooks/raw HTTP/1.1", "Content-Length: 1x\r\n", "");
	put_http("400-two-lengths", "POST /hooks/raw HTTP/1.1",
	         "X-Id: c\r\nContent-Length: 2\r\nContent-Length: 3\r\n", "abc");
	put_http("400-request-line", "POST  /hooks/raw HTTP/1.1", "", "");
	put_http("400-space-before-colon", "POST /hooks/raw HTTP/1.1", "X-Id : 1\r\n", "");
	put_http("400-folded-header", "POST /hooks/raw HTTP/1.1", "X-Id: 1\r\n  folded\r\n", "");
	put_http("404-path", "GET /nope HTTP/1.1", "", "");
	put_http("404-source", "POST /hooks/nobody HTTP/1.1", json, "{}");
	put_http("405-get-hook", "GET /hooks/raw HTTP/1.1", "", "");
	put_http("405-post-health", "POST /healthz HTTP/1.1", "", "");
	snprintf(h, sizeof(h), "Content-Type: text/plain\r\nX-Id: 1\r\n");
	put_http("415", "POST /hooks/lab HTTP/1.1", h, "{\"type\":\"x\"}");
	put_http("413", "POST /hooks/raw HTTP/1.1", "X-Id: big\r\nContent-Length: 1000000\r\n",
	         "");
	put_http("411-chunked", "POST /hooks/raw HTTP/1.1",
	         "X-Id: ch\r\nTransfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\n\r\n");
	o = 0;
	for (i = 0; i < 101; i++)
		o += (size_t)snprintf(h + o, sizeof(h) - o, "X-H%zu: %zu\r\n", i, i);
	put_http("431-headers", "POST /hooks/raw HTTP/1.1", h, "");
	put_http("505", "GET /healthz HTTP/2.0", "", "");
	/* a body cut short, then the connection ends */
	snprintf(body, sizeof(body), "POST /hooks/raw HTTP/1.1\r\nHost: relay\r\nX-Id: cut\r\nContent-Length: 99"
	         "\r\n\r\nonly part");
	put("http", "truncated-body", body, strlen(body));
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: make_seeds DIR\n");
		return 2;
	}
	outdir = argv[1];
	records();
	signatures();
	http();
	return failed;
}
