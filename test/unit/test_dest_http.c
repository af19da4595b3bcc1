/*
 * HTTP destinations: Standard Webhooks signing against vectors computed
 * independently (the specification's own example, and the openssl command
 * line: see the commands by each vector), the whsec_ secret format, the
 * address guard, the classification of answers, the "http" destination
 * keys of the configuration, and the routes to such a destination.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "odoo_relay/config.h"
#include "odoo_relay/destination.h"
#include "odoo_relay/error.h"
#include "odoo_relay/http_client.h"
#include "odoo_relay/route.h"
#include "odoo_relay/signature.h"

/* ---- signing ---- */

static void
test_whsec_decode(void)
{
	struct relay_secret s;
	static const char *const bad[] = {
		"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",        /* no prefix */
		"whsec_",                                   /* nothing */
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",   /* not a multiple of 4 */
		"whsec_MfKQ9r8G*YqrTwjUPD8ILPZIo2LaLaSw",  /* not base64 */
		"whsec_c2Vj=b25kLWtleS1ieXRlcw==",         /* '=' inside */
		NULL,
	};
	size_t i;

	CHECK_INT(relay_whsec_decode("whsec_c2Vjb25kLWtleS1ieXRlcw==", 30, &s), 0);
	CHECK_INT(s.len, 16);
	CHECK(s.data && memcmp(s.data, "second-key-bytes", 16) == 0);
	free(s.data);
	for (i = 0; bad[i]; i++) {
		CHECK_INT(relay_whsec_decode(bad[i], strlen(bad[i]), &s), -RELAY_EINVAL);
		CHECK(s.data == NULL && s.len == 0);
	}
}

static void
test_sign_vectors(void)
{
	struct relay_secret k[2];
	char out[256];
	const char *spec_body = "{\"test\": 2432232314}";

	CHECK_INT(relay_whsec_decode("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 38, &k[0]), 0);
	CHECK_INT(relay_whsec_decode("whsec_c2Vjb25kLWtleS1ieXRlcw==", 30, &k[1]), 0);
	/* The Standard Webhooks specification's example; the same with
	 *   printf '%s' 'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}' |
	 *   openssl dgst -sha256 -mac HMAC -macopt hexkey:$(printf MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw |
	 *   base64 -d | xxd -p -c 256) -binary | base64 */
	CHECK_INT(relay_webhook_sign(k, 1, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
	                             (const unsigned char *)spec_body, strlen(spec_body), out,
	                             sizeof(out)), 0);
	CHECK_STR(out, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
	/* Rotation: one v1 per secret, in order. Made as above over
	 * 'evt_42.1700000000.{"a":1}' with each key. */
	CHECK_INT(relay_webhook_sign(k, 2, "evt_42", 1700000000, (const unsigned char *)"{\"a\":1}", 7,
	                             out, sizeof(out)), 0);
	CHECK_STR(out, "v1,cfycDJYosqF0R5vrNQte5ck6IvhTufvvKJR3qRG0HRM= "
	               "v1,DvMRF7A70+M8EiG7u9tBedsNmJHeYR/3SRtV31a/qUw=");
	CHECK_INT(relay_webhook_sign(k, 2, "evt_42", 1700000000, (const unsigned char *)"{}", 2,
	                             out, 50), -RELAY_ETOOBIG);
	CHECK_STR(out, "");
	CHECK_INT(relay_webhook_sign(k, 0, "evt_42", 1, NULL, 0, out, sizeof(out)), -RELAY_EINVAL);
	CHECK_INT(relay_webhook_sign(k, 1, "a.b", 1, NULL, 0, out, sizeof(out)), -RELAY_EINVAL);

	/* a signer kept from message to message gives the same vectors, and
	 * re-keys right between them (one key, then both, then the first) */
	{
		struct relay_webhook_signer *sg = NULL;

		CHECK_INT(relay_webhook_signer_new(&sg), 0);
		CHECK_INT(relay_webhook_signer_sign(sg, k, 1, "msg_p5jXN8AQM9LWM0D4loKWxJek",
		                                    1614265330, (const unsigned char *)spec_body,
		                                    strlen(spec_body), out, sizeof(out)), 0);
		CHECK_STR(out, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
		CHECK_INT(relay_webhook_signer_sign(sg, k, 2, "evt_42", 1700000000,
		                                    (const unsigned char *)"{\"a\":1}", 7, out,
		                                    sizeof(out)), 0);
		CHECK_STR(out, "v1,cfycDJYosqF0R5vrNQte5ck6IvhTufvvKJR3qRG0HRM= "
		               "v1,DvMRF7A70+M8EiG7u9tBedsNmJHeYR/3SRtV31a/qUw=");
		CHECK_INT(relay_webhook_signer_sign(sg, k, 1, "msg_p5jXN8AQM9LWM0D4loKWxJek",
		                                    1614265330, (const unsigned char *)spec_body,
		                                    strlen(spec_body), out, sizeof(out)), 0);
		CHECK_STR(out, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
		/* the secrets in the other order: each kept context re-keys */
		{
			struct relay_secret swapped[2] = { k[1], k[0] };

			CHECK_INT(relay_webhook_signer_sign(sg, swapped, 2, "evt_42", 1700000000,
			                                    (const unsigned char *)"{\"a\":1}", 7, out,
			                                    sizeof(out)), 0);
			CHECK_STR(out, "v1,DvMRF7A70+M8EiG7u9tBedsNmJHeYR/3SRtV31a/qUw= "
			               "v1,cfycDJYosqF0R5vrNQte5ck6IvhTufvvKJR3qRG0HRM=");
		}
		/* another secret at the same address and of the same length (a
		 * reload): the signer sees the bytes, not the pointer */
		{
			unsigned char kb[16];
			struct relay_secret one = { kb, sizeof(kb) };
			char want[256];

			memcpy(kb, "second-key-bytes", 16);
			CHECK_INT(relay_webhook_signer_sign(sg, &one, 1, "evt_7", 1700000001,
			                                    (const unsigned char *)"{}", 2, out,
			                                    sizeof(out)), 0);
			kb[15] = 'z';
			CHECK_INT(relay_webhook_signer_sign(sg, &one, 1, "evt_7", 1700000001,
			                                    (const unsigned char *)"{}", 2, out,
			                                    sizeof(out)), 0);
			CHECK_INT(relay_webhook_sign(&one, 1, "evt_7", 1700000001,
			                             (const unsigned char *)"{}", 2, want, sizeof(want)), 0);
			CHECK_STR(out, want);
			kb[15] = 's';
			CHECK_INT(relay_webhook_sign(&one, 1, "evt_7", 1700000001,
			                             (const unsigned char *)"{}", 2, want, sizeof(want)), 0);
			CHECK(strcmp(out, want) != 0);
		}
		/* more secrets than kept contexts: the rest are keyed per message */
		{
			struct relay_secret six[6] = { k[0], k[1], k[0], k[1], k[0], k[1] };
			char want[512], got[512];

			CHECK_INT(relay_webhook_sign(six, 6, "evt_9", 1700000002,
			                             (const unsigned char *)"{}", 2, want, sizeof(want)), 0);
			CHECK_INT(relay_webhook_signer_sign(sg, six, 6, "evt_9", 1700000002,
			                                    (const unsigned char *)"{}", 2, got,
			                                    sizeof(got)), 0);
			CHECK_STR(got, want);
		}
		CHECK_INT(relay_webhook_signer_sign(NULL, k, 1, "evt_1", 1, NULL, 0, out, sizeof(out)),
		          -RELAY_EINVAL);
		relay_webhook_signer_free(sg);
	}
	free(k[0].data);
	free(k[1].data);
}

/* ---- the address guard ---- */

static int
private4(const char *a)
{
	struct sockaddr_in in;

	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	if (inet_pton(AF_INET, a, &in.sin_addr) != 1)
		return -1;
	return relay_addr_private((const struct sockaddr *)&in);
}

static int
private6(const char *a)
{
	struct sockaddr_in6 in;

	memset(&in, 0, sizeof(in));
	in.sin6_family = AF_INET6;
	if (inet_pton(AF_INET6, a, &in.sin6_addr) != 1)
		return -1;
	return relay_addr_private((const struct sockaddr *)&in);
}

static void
test_address_guard(void)
{
	static const char *const priv4[] = {
		"127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.0.1", "172.31.255.255",
		"192.168.1.1", "169.254.169.254", "0.0.0.0", "100.64.0.1", "224.0.0.1",
		"255.255.255.255", "192.0.0.8", "198.18.0.1", NULL,
	};
	static const char *const pub4[] = {
		"8.8.8.8", "172.32.0.1", "172.15.255.255", "192.169.0.1", "100.128.0.1",
		"169.253.1.1", "1.1.1.1", "198.20.0.1", NULL,
	};
	static const char *const priv6[] = {
		"::1", "::", "fe80::1", "fd00::1", "fc12::3", "ff02::1", "::ffff:127.0.0.1",
		"::ffff:10.0.0.1", "64:ff9b::a9fe:a9fe", NULL,
	};
	static const char *const pub6[] = {
		"2001:4860:4860::8888", "2a00:1450::1", "::ffff:8.8.8.8", NULL,
	};
	struct sockaddr sa;
	size_t i;

	for (i = 0; priv4[i]; i++)
		CHECK_STR(private4(priv4[i]) == 1 ? priv4[i] : "allowed", priv4[i]);
	for (i = 0; pub4[i]; i++)
		CHECK_STR(private4(pub4[i]) == 0 ? pub4[i] : "refused", pub4[i]);
	for (i = 0; priv6[i]; i++)
		CHECK_STR(private6(priv6[i]) == 1 ? priv6[i] : "allowed", priv6[i]);
	for (i = 0; pub6[i]; i++)
		CHECK_STR(private6(pub6[i]) == 0 ? pub6[i] : "refused", pub6[i]);
	CHECK_INT(relay_addr_private(NULL), 1);
	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_UNIX;
	CHECK_INT(relay_addr_private(&sa), 1);
}

/* ---- classification ---- */

static void
classify(long status, enum relay_transport t, const char *retry_after, const char *body,
         struct relay_outcome *o)
{
	struct relay_exchange x = { .transport = t, .http_status = status,
	                            .retry_after = retry_after, .now_ms = 1700000000000,
	                            .body = body, .body_len = body ? strlen(body) : 0 };

	CHECK_INT(relay_dest_http_classify(&x, o), 0);
}

static void
test_classify(void)
{
	static const long transient[] = { 408, 429, 500, 501, 502, 503, 504, 507, 599 };
	static const long permanent[] = { 301, 302, 307, 400, 401, 403, 404, 409, 413, 422, 101 };
	struct relay_outcome o;
	size_t i;

	for (i = 200; i < 300; i += 4) {
		classify((long)i, RELAY_TRANSPORT_OK, NULL, "", &o);
		CHECK_INT(o.klass, RELAY_CLASS_DONE);
		relay_outcome_clear(&o);
	}
	for (i = 0; i < sizeof(transient) / sizeof(transient[0]); i++) {
		classify(transient[i], RELAY_TRANSPORT_OK, "7", "busy", &o);
		CHECK_INT(o.klass, RELAY_CLASS_TRANSIENT);
		CHECK_INT(o.retry_after_ms, 7000);
		CHECK_INT(o.http_status, transient[i]);
		relay_outcome_clear(&o);
	}
	for (i = 0; i < sizeof(permanent) / sizeof(permanent[0]); i++) {
		classify(permanent[i], RELAY_TRANSPORT_OK, "7", "{\"error\": \"no such customer\"}", &o);
		CHECK_INT(o.klass, RELAY_CLASS_PERMANENT);
		CHECK_INT(o.retry_after_ms, 0);
		CHECK_INT(o.http_status, permanent[i]);
		CHECK(o.detail && strstr(o.detail, "no such customer"));
		CHECK(o.error_name && strncmp(o.error_name, "http.", 5) == 0);
		relay_outcome_clear(&o);
	}
	classify(410, RELAY_TRANSPORT_OK, NULL, "gone", &o);
	CHECK_INT(o.klass, RELAY_CLASS_CONFIG);
	CHECK_INT(o.scope, RELAY_SCOPE_STOP);
	CHECK_STR(o.error_name, "http.410");
	relay_outcome_clear(&o);
	/* Retry-After as an HTTP date, 90 s after now */
	classify(503, RELAY_TRANSPORT_OK, "Tue, 14 Nov 2023 22:14:50 GMT", "", &o);
	CHECK_INT(o.retry_after_ms, 90000);
	relay_outcome_clear(&o);
	classify(0, RELAY_TRANSPORT_CONNECT, NULL, NULL, &o);
	CHECK_INT(o.klass, RELAY_CLASS_TRANSIENT);
	CHECK_INT(o.transport, RELAY_TRANSPORT_CONNECT);
	CHECK_STR(o.error_name, "transport.connect");
	relay_outcome_clear(&o);
	classify(0, RELAY_TRANSPORT_TIMEOUT, NULL, NULL, &o);
	CHECK_INT(o.klass, RELAY_CLASS_TRANSIENT);
	CHECK_INT(o.transport, RELAY_TRANSPORT_TIMEOUT);
	relay_outcome_clear(&o);
	classify(0, RELAY_TRANSPORT_RESET, NULL, NULL, &o);
	CHECK_INT(o.klass, RELAY_CLASS_TRANSIENT);
	relay_outcome_clear(&o);
	classify(200, RELAY_TRANSPORT_TOO_BIG, NULL, NULL, &o);
	CHECK_INT(o.klass, RELAY_CLASS_PERMANENT);
	relay_outcome_clear(&o);
	/* the start of a long body only, cut on a character boundary */
	{
		char big[2000];

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		big[511] = '\xc3';
		big[512] = '\xa9';
		classify(400, RELAY_TRANSPORT_OK, NULL, big, &o);
		CHECK(o.detail && strlen(o.detail) == 511);
		relay_outcome_clear(&o);
	}
	CHECK_INT(relay_dest_http_classify(NULL, &o), -RELAY_EINVAL);
	CHECK(relay_driver_for(RELAY_DEST_HTTP) == &relay_driver_http);
	CHECK_INT(relay_driver_http.max_batch, 1);
}

/* ---- configuration and routes ---- */

static char dir[] = "/tmp/test_dest_http.XXXXXX";

static void
write_file(const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* Load a configuration whose "destinations" and "routes" are given. */
static int
load(const char *dests, const char *routes, struct relay_config **cfg,
     struct relay_config_error *err)
{
	char path[512], *text = NULL;
	int rc;

	snprintf(path, sizeof(path), "%s/relay.json", dir);
	if (asprintf(&text,
	             "{\"listen\": \"127.0.0.1:0\",\n"
	             " \"sources\": {\"shop\": {\"verify\": {\"scheme\": \"none\"}, "
	             "\"dedup\": {\"pointer\": \"/id\"}}},\n"
	             " \"destinations\": %s,\n"
	             " \"routes\": %s}\n", dests, routes) < 0)
		return ENOMEM;
	write_file("relay.json", text);
	free(text);
	memset(err, 0, sizeof(*err));
	*cfg = NULL;
	rc = relay_config_load(path, cfg, err);
	return rc;
}

static const char wh[] = "{\"wh\": {\"kind\": \"http\", \"url\": \"http://127.0.0.1:9/in\", "
                         "\"secret_file\": \"k1\", \"allow_private\": true}}";

static void
test_config(void)
{
	struct relay_config *cfg;
	struct relay_config_error err;
	const struct relay_destination_conf *d;

	write_file("k1", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n");
	write_file("k2", "whsec_c2Vjb25kLWtleS1ieXRlcw==");
	write_file("bad", "not-a-whsec-key\n");
	CHECK_INT(load(wh, "[]", &cfg, &err), 0);
	d = relay_config_destination(cfg, "wh");
	CHECK(d && d->kind == RELAY_DEST_HTTP);
	if (d) {
		CHECK_STR(d->http.method, "POST");
		CHECK_INT(d->http.timeout_ms, 15000);
		CHECK_INT(d->http.connect_timeout_ms, 10000);
		CHECK_INT(d->http.tls_verify, 1);
		CHECK_INT(d->http.allow_private, 1);
		CHECK_INT(d->http.n_secrets, 1);
		CHECK_INT(d->http.secrets[0].len, 24);
		/* a day of retries at least: 60 attempts capped at an hour */
		CHECK_INT(d->backoff.max_attempts, 60);
		CHECK_INT(d->backoff.cap_ms, 3600000);
	}
	relay_config_free(cfg);

	CHECK_INT(load("{\"wh\": {\"kind\": \"http\", \"url\": \"https://example.com/hook?x=1\", "
	               "\"method\": \"PUT\", \"headers\": {\"X-Api-Key\": \"abc\"}, "
	               "\"timeout_ms\": 3000, \"secret_files\": [\"k1\", \"k2\"], "
	               "\"backoff\": {\"max_attempts\": 3}, \"circuit_failures\": 2}}", "[]",
	               &cfg, &err), 0);
	d = cfg ? relay_config_destination(cfg, "wh") : NULL;
	CHECK(d != NULL);
	if (d) {
		CHECK_STR(d->http.method, "PUT");
		CHECK_INT(d->http.n_headers, 1);
		CHECK_STR(d->http.headers[0], "X-Api-Key: abc");
		CHECK_INT(d->http.n_secrets, 2);
		CHECK_INT(d->http.secrets[1].len, 16);
		CHECK_INT(d->backoff.max_attempts, 3);
		CHECK_INT(d->backoff.max_age_s, 259200);
		CHECK_INT(d->circuit_failures, 2);
		CHECK_INT(d->http.allow_private, 0);
	}
	relay_config_free(cfg);

	/* refused, each at its place */
	CHECK_INT(load("{\"wh\": {\"kind\": \"http\", \"url\": \"http://x/\", \"secret_file\": \"bad\"}}",
	               "[]", &cfg, &err), -RELAY_ECONFIG);
	CHECK(strstr(err.text, "whsec_") != NULL);
	CHECK_INT(err.line, 3);
	CHECK_INT(load("{\"wh\": {\"kind\": \"http\", \"url\": \"http://x/\", \"secret_file\": \"k1\", "
	               "\"database\": \"d\"}}", "[]", &cfg, &err), -RELAY_ECONFIG);
	CHECK(strstr(err.text, "database") != NULL);
	CHECK_INT(load("{\"wh\": {\"kind\": \"http\", \"url\": \"http://x/\", \"secret_file\": \"k1\", "
	               "\"headers\": {\"webhook-id\": \"1\"}}}", "[]", &cfg, &err), -RELAY_ECONFIG);
	CHECK(strstr(err.text, "set by the relay") != NULL);
	CHECK_INT(load("{\"wh\": {\"kind\": \"http\", \"url\": \"http://x/\", \"secret_file\": \"k1\", "
	               "\"cert_file\": \"c.pem\"}}", "[]", &cfg, &err), -RELAY_ECONFIG);
	CHECK(strstr(err.text, "key_file") != NULL);
	CHECK_INT(load("{\"wh\": {\"kind\": \"http\", \"url\": \"http://x/\"}}", "[]", &cfg, &err),
	          -RELAY_ECONFIG);
	CHECK(strstr(err.text, "secret_file") != NULL);
	CHECK_INT(load("{\"wh\": {\"kind\": \"http\", \"url\": \"ftp://x/\", \"secret_file\": \"k1\"}}",
	               "[]", &cfg, &err), -RELAY_ECONFIG);
	CHECK_INT(load("{\"wh\": {\"kind\": \"http\", \"url\": \"http://x/\", \"secret_file\": \"k1\", "
	               "\"method\": \"GET\"}}", "[]", &cfg, &err), -RELAY_ECONFIG);
}

static const char two[] =
	"{\"wh\": {\"kind\": \"http\", \"url\": \"http://127.0.0.1:9/in\", \"secret_file\": \"k1\"},\n"
	"  \"odoo\": {\"url\": \"http://127.0.0.1:8069\", \"database\": \"d\", \"login\": \"a\", "
	"\"api_key_file\": \"k2\"}}";

static int
compile(const char *routes, struct relay_routes **rs, struct relay_config_error *err)
{
	struct relay_config *cfg;
	int rc = load(two, routes, &cfg, err);

	*rs = NULL;
	if (rc != 0) {
		fprintf(stderr, "config does not load: %u:%u: %s\n", err->line, err->column, err->text);
		return rc;
	}
	rc = relay_routes_compile(cfg, rs, err);
	relay_config_free(cfg);
	return rc;
}

static void
test_routes(void)
{
	struct relay_routes *rs;
	struct relay_config_error err;
	const struct relay_route *r;
	struct relay_plan plan;
	json_t *payload;
	char why[128], *s;

	CHECK_INT(compile("[{\"name\": \"out\", \"source\": \"shop\", \"destination\": \"wh\",\n"
	                  "  \"fields\": {\"ref\": \"order-{/id}\", \"total\": {\"pointer\": \"/t\"},\n"
	                  "   \"tags\": {\"const\": [1, 2]}, \"Note Text\": {\"pointer\": \"/n\", "
	                  "\"optional\": true}}},\n"
	                  " {\"name\": \"raw\", \"source\": \"shop\", \"destination\": \"wh\", "
	                  "\"operation\": \"post\", \"body\": \"as_received\"}]", &rs, &err), 0);
	r = relay_routes_find(rs, "out");
	CHECK(r != NULL);
	if (r) {
		CHECK_INT(relay_route_op(r), RELAY_OP_POST);
		CHECK_STR(relay_route_model(r), "");
		CHECK_INT(relay_route_body_as_received(r), 0);
		CHECK_INT(relay_route_backoff(r)->max_attempts, 60);
		payload = json_loads("{\"id\": 7, \"t\": 12.5}", 0, NULL);
		CHECK_INT(relay_route_map(r, payload, "odoo_relay", &plan, why, sizeof(why)), 0);
		s = plan.values ? json_dumps(plan.values, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		CHECK_STR(s, "{\"ref\":\"order-7\",\"tags\":[1,2],\"total\":12.5}");
		free(s);
		relay_plan_clear(&plan);
		json_decref(payload);
	}
	r = relay_routes_find(rs, "raw");
	CHECK(r && relay_route_body_as_received(r) == 1);
	relay_routes_free(rs);

	/* Odoo keys refused on an HTTP route, at their place */
	CHECK_INT(compile("[{\"name\": \"out\", \"source\": \"shop\", \"destination\": \"wh\",\n"
	                  "  \"model\": \"res.partner\", \"fields\": {\"a\": \"b\"}}]", &rs, &err),
	          -RELAY_ECONFIG);
	CHECK(strstr(err.text, "model") != NULL);
	CHECK_INT(err.line, 6);
	CHECK_INT(compile("[{\"name\": \"out\", \"source\": \"shop\", \"destination\": \"wh\",\n"
	                  "  \"operation\": \"upsert\", \"fields\": {\"a\": \"b\"}}]", &rs, &err),
	          -RELAY_ECONFIG);
	CHECK(strstr(err.text, "post") != NULL);
	CHECK_INT(err.line, 6);
	CHECK_INT(compile("[{\"name\": \"out\", \"source\": \"shop\", \"destination\": \"wh\",\n"
	                  "  \"fields\": {\"a\": {\"external\": true, \"template\": \"x_{/id}\"}}}]",
	                  &rs, &err), -RELAY_ECONFIG);
	CHECK_INT(compile("[{\"name\": \"out\", \"source\": \"shop\", \"destination\": \"wh\",\n"
	                  "  \"body\": \"as_received\", \"fields\": {\"a\": \"b\"}}]", &rs, &err),
	          -RELAY_ECONFIG);
	CHECK_INT(compile("[{\"name\": \"out\", \"source\": \"shop\", \"destination\": \"wh\"}]", &rs,
	                  &err), -RELAY_ECONFIG);
	CHECK(strstr(err.text, "fields") != NULL);
	/* and the other way round */
	CHECK_INT(compile("[{\"name\": \"in\", \"source\": \"shop\", \"destination\": \"odoo\",\n"
	                  "  \"operation\": \"post\", \"fields\": {\"a\": \"b\"}}]", &rs, &err),
	          -RELAY_ECONFIG);
	CHECK(strstr(err.text, "kind http") != NULL);
	CHECK_INT(err.line, 6);
	CHECK_INT(compile("[{\"name\": \"in\", \"source\": \"shop\", \"destination\": \"odoo\",\n"
	                  "  \"operation\": \"upsert\", \"model\": \"res.partner\", \"external_id\": "
	                  "\"p_{/id}\", \"fields\": {\"name\": \"x\"},\n  \"body\": \"as_received\"}]",
	                  &rs, &err), -RELAY_ECONFIG);
	CHECK(strstr(err.text, "body") != NULL);
	CHECK_INT(err.line, 7);
}

int
main(void)
{
	CHECK(mkdtemp(dir) != NULL);
	RUN(test_whsec_decode);
	RUN(test_sign_vectors);
	RUN(test_address_guard);
	RUN(test_classify);
	RUN(test_config);
	RUN(test_routes);
	{
		static const char *const files[] = { "k1", "k2", "bad", "relay.json", NULL };
		char path[512];

		for (size_t i = 0; files[i]; i++) {
			snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
			unlink(path);
		}
		rmdir(dir);
	}
	return check_done();
}
