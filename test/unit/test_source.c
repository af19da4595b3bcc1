/* Per-source verification and extraction of dedup key, topic and lane. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "check.h"
#include "odoo_relay/error.h"
#include "odoo_relay/json_arena.h"
#include "odoo_relay/source.h"

struct headers {
	const char *name[8];
	const char *value[8];
	size_t n;
};

static const char *
hdr_get(void *ctx, const char *name)
{
	struct headers *h = ctx;
	size_t i;

	for (i = 0; i < h->n; i++)
		if (strcasecmp(h->name[i], name) == 0)
			return h->value[i];
	return NULL;
}

static void
hdr_add(struct headers *h, const char *name, const char *value)
{
	h->name[h->n] = name;
	h->value[h->n] = value;
	h->n++;
}

static struct relay_secret stripe_secret = { (unsigned char *)"whsec_src_test", 14 };
static struct relay_secret github_secret = { (unsigned char *)"gh-secret", 9 };

static const char stripe_body[] =
	"{\"id\": \"evt_1NG8Du2eZvKYlo2CUI79vXWy\", \"object\": \"event\","
	" \"type\": \"invoice.paid\", \"data\": {\"object\": {\"id\": \"in_1\","
	" \"customer\": \"cus_9s6XKzkNRiz8i3\", \"amount_paid\": 4200,"
	" \"lines\": [1, 2], \"meta\": {}, \"paid\": true, \"note\": null, \"empty\": \"\"}}}";

/* A Stripe-like source: /id, /type, the customer as lane. */
static struct relay_source_conf
stripe_source(void)
{
	struct relay_source_conf sc;

	memset(&sc, 0, sizeof(sc));
	sc.name = "stripe";
	sc.verify.scheme = RELAY_SIG_STRIPE;
	sc.verify.secrets = &stripe_secret;
	sc.verify.n_secrets = 1;
	sc.verify.tolerance_s = 300;
	sc.dedup.kind = RELAY_REF_POINTER;
	sc.dedup.name = "/id";
	sc.topic.kind = RELAY_REF_POINTER;
	sc.topic.name = "/type";
	sc.lane.kind = RELAY_REF_POINTER;
	sc.lane.name = "/data/object/customer";
	sc.require_json = 1;
	return sc;
}

/* Sign body as the sender would, then extract. */
static int
run_signed(const struct relay_source_conf *sc, const char *body, size_t len, int64_t now,
           struct relay_extract *ex, int *status, const char **why)
{
	struct headers h = { { NULL }, { NULL }, 0 };
	char sig[RELAY_SIGNATURE_MAX];

	if (relay_signature_sign(&sc->verify, (const unsigned char *)body, len, now,
	                         sig, sizeof(sig)) != 0)
		return 12345;
	if (relay_signature_header(&sc->verify))
		hdr_add(&h, relay_signature_header(&sc->verify), sig);
	return relay_source_extract(sc, hdr_get, &h, (const unsigned char *)body, len, now,
	                            ex, status, why);
}

static int
run_stripe(const struct relay_source_conf *sc, const char *body, struct relay_extract *ex,
           int *status, const char **why)
{
	return run_signed(sc, body, strlen(body), 1700000000, ex, status, why);
}

/* Nothing is left in ex after a failure. */
static void
check_empty(const struct relay_extract *ex)
{
	CHECK(ex->dedup_key == NULL && ex->topic == NULL && ex->lane == NULL && ex->json == NULL);
}

static void
test_stripe_like(void)
{
	struct relay_source_conf sc = stripe_source();
	struct relay_extract ex;
	int status = -1;
	const char *why = "unset";

	CHECK_INT(run_stripe(&sc, stripe_body, &ex, &status, &why), 0);
	CHECK_INT(status, 0);
	CHECK(why == NULL);
	CHECK_STR(ex.dedup_key, "evt_1NG8Du2eZvKYlo2CUI79vXWy");
	CHECK_STR(ex.topic, "invoice.paid");
	CHECK_STR(ex.lane, "cus_9s6XKzkNRiz8i3");
	/* the body's tree lived only inside the call, in the arena */
	CHECK(ex.json == NULL);
	CHECK_INT(relay_json_arena_live(), 0);
	CHECK_INT(relay_json_arena_used(), 0);
	relay_extract_clear(&ex);
	check_empty(&ex);
	relay_extract_clear(&ex);       /* twice is harmless */
	relay_extract_clear(NULL);

	/* numbers and booleans become text */
	sc.lane.name = "/data/object/amount_paid";
	sc.topic.name = "/data/object/paid";
	CHECK_INT(run_stripe(&sc, stripe_body, &ex, &status, &why), 0);
	CHECK_STR(ex.lane, "4200");
	CHECK_STR(ex.topic, "true");
	relay_extract_clear(&ex);

	/* absent, null or empty: topic "", lane none */
	sc.topic.name = "/nothing";
	sc.lane.name = "/data/object/note";
	CHECK_INT(run_stripe(&sc, stripe_body, &ex, &status, &why), 0);
	CHECK_STR(ex.topic, "");
	CHECK(ex.lane == NULL);
	relay_extract_clear(&ex);
	sc.topic.name = "/data/object/note";
	sc.lane.name = "/data/object/empty";
	CHECK_INT(run_stripe(&sc, stripe_body, &ex, &status, &why), 0);
	CHECK_STR(ex.topic, "");
	CHECK(ex.lane == NULL);
	relay_extract_clear(&ex);
	sc.topic.kind = RELAY_REF_NONE;
	sc.lane.kind = RELAY_REF_NONE;
	CHECK_INT(run_stripe(&sc, stripe_body, &ex, &status, &why), 0);
	CHECK_STR(ex.topic, "");
	CHECK(ex.lane == NULL);
	relay_extract_clear(&ex);

	/* a numeric event id, as Shopify's order ids are */
	sc.dedup.name = "/data/object/amount_paid";
	CHECK_INT(run_stripe(&sc, stripe_body, &ex, &status, &why), 0);
	CHECK_STR(ex.dedup_key, "4200");
	relay_extract_clear(&ex);
}

static void
test_github_like(void)
{
	struct relay_source_conf sc;
	struct relay_extract ex;
	struct headers h = { { NULL }, { NULL }, 0 };
	const char *body = "payload=not%20json";   /* form-encoded: never parsed */
	char sig[RELAY_SIGNATURE_MAX];
	int status = -1;
	const char *why = "unset";

	memset(&sc, 0, sizeof(sc));
	sc.name = "github";
	sc.verify.scheme = RELAY_SIG_GITHUB;
	sc.verify.secrets = &github_secret;
	sc.verify.n_secrets = 1;
	sc.dedup.kind = RELAY_REF_HEADER;
	sc.dedup.name = "X-GitHub-Delivery";
	sc.topic.kind = RELAY_REF_HEADER;
	sc.topic.name = "X-GitHub-Event";

	CHECK_INT(relay_signature_sign(&sc.verify, (const unsigned char *)body, strlen(body), 0,
	                               sig, sizeof(sig)), 0);
	hdr_add(&h, "x-hub-signature-256", sig);
	hdr_add(&h, "x-github-event", "push");
	CHECK_INT(relay_source_extract(&sc, hdr_get, &h, (const unsigned char *)body, strlen(body),
	                               0, &ex, &status, &why), -RELAY_EPATH);
	CHECK_INT(status, 400);
	CHECK_STR(why, "missing header X-GitHub-Delivery");
	check_empty(&ex);

	hdr_add(&h, "x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958");
	CHECK_INT(relay_source_extract(&sc, hdr_get, &h, (const unsigned char *)body, strlen(body),
	                               0, &ex, &status, &why), 0);
	CHECK_INT(status, 0);
	CHECK(why == NULL);
	CHECK_STR(ex.dedup_key, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
	CHECK_STR(ex.topic, "push");
	CHECK(ex.lane == NULL);
	CHECK(ex.json == NULL);
	relay_extract_clear(&ex);

	/* require_json parses even without pointers, and refuses this body */
	sc.require_json = 1;
	CHECK_INT(relay_source_extract(&sc, hdr_get, &h, (const unsigned char *)body, strlen(body),
	                               0, &ex, &status, &why), -RELAY_EINVAL);
	CHECK_INT(status, 400);
	CHECK(why != NULL && strncmp(why, "body is not valid JSON: ", 24) == 0);
	check_empty(&ex);
	sc.require_json = 0;

	/* an empty delivery header is as good as none */
	h.value[2] = "";
	CHECK_INT(relay_source_extract(&sc, hdr_get, &h, (const unsigned char *)body, strlen(body),
	                               0, &ex, &status, &why), -RELAY_EPATH);
	CHECK_STR(why, "empty header X-GitHub-Delivery");

	/* the signature is checked before anything else */
	h.value[0] = "sha256=0000000000000000000000000000000000000000000000000000000000000000";
	CHECK_INT(relay_source_extract(&sc, hdr_get, &h, (const unsigned char *)body, strlen(body),
	                               0, &ex, &status, &why), -RELAY_ESIG);
	CHECK_INT(status, 401);
	CHECK_STR(why, "signature mismatch");
	check_empty(&ex);
}

static void
test_signature_errors(void)
{
	struct relay_source_conf sc = stripe_source();
	struct relay_extract ex;
	struct headers h = { { NULL }, { NULL }, 0 };
	char sig[RELAY_SIGNATURE_MAX];
	int status = -1;
	const char *why = NULL;
	size_t len = strlen(stripe_body);

	/* no header */
	CHECK_INT(relay_source_extract(&sc, hdr_get, &h, (const unsigned char *)stripe_body, len,
	                               1700000000, &ex, &status, &why), -RELAY_ESIG);
	CHECK_INT(status, 401);
	CHECK_STR(why, "missing Stripe-Signature header");
	check_empty(&ex);

	/* signed long ago */
	CHECK_INT(relay_signature_sign(&sc.verify, (const unsigned char *)stripe_body, len,
	                               1700000000, sig, sizeof(sig)), 0);
	hdr_add(&h, "Stripe-Signature", sig);
	CHECK_INT(relay_source_extract(&sc, hdr_get, &h, (const unsigned char *)stripe_body, len,
	                               1700000000 + 3600, &ex, &status, &why), -RELAY_ESTALE);
	CHECK_INT(status, 401);
	CHECK_STR(why, "Stripe-Signature timestamp outside tolerance");
	check_empty(&ex);

	/* a body that is not JSON but carries a good signature: the
	 * signature comes first, so this reaches the parser; and an unsigned
	 * broken body never does */
	CHECK_INT(run_stripe(&sc, "{\"id\": topsecretpayload}", &ex, &status, &why), -RELAY_EINVAL);
	CHECK_INT(status, 400);
	CHECK(why != NULL && strncmp(why, "body is not valid JSON: ", 24) == 0);
	CHECK(why != NULL && strstr(why, "line 1, column") != NULL);
	CHECK(why != NULL && strstr(why, "topsecret") == NULL);
	check_empty(&ex);
	CHECK_INT(relay_source_extract(&sc, hdr_get, &h, (const unsigned char *)"{", 1,
	                               1700000000, &ex, &status, &why), -RELAY_ESIG);
	CHECK_INT(status, 401);

	/* an empty body */
	CHECK_INT(run_signed(&sc, NULL, 0, 1700000000, &ex, &status, &why), -RELAY_EINVAL);
	CHECK_INT(status, 400);

	/* the secret never appears in a text */
	CHECK(why != NULL && strstr(why, "whsec") == NULL);
}

static void
test_value_errors(void)
{
	struct relay_source_conf sc = stripe_source();
	struct relay_extract ex;
	struct headers h = { { NULL }, { NULL }, 0 };
	char body[1200], key[600];
	int status = -1;
	const char *why = NULL;

	/* dedup absent, null, empty */
	sc.dedup.name = "/data/id";
	CHECK_INT(run_stripe(&sc, stripe_body, &ex, &status, &why), -RELAY_EPATH);
	CHECK_INT(status, 400);
	CHECK_STR(why, "dedup key /data/id not found in body");
	check_empty(&ex);
	sc.dedup.name = "/data/object/note";
	CHECK_INT(run_stripe(&sc, stripe_body, &ex, &status, &why), -RELAY_EPATH);
	CHECK_STR(why, "dedup key /data/object/note not found in body");
	sc.dedup.name = "/data/object/empty";
	CHECK_INT(run_stripe(&sc, stripe_body, &ex, &status, &why), -RELAY_EPATH);
	CHECK_STR(why, "dedup key /data/object/empty is empty in body");

	/* objects and arrays, for each of the three */
	sc.dedup.name = "/data/object/lines";
	CHECK_INT(run_stripe(&sc, stripe_body, &ex, &status, &why), -RELAY_EINVAL);
	CHECK_INT(status, 400);
	CHECK_STR(why, "dedup key /data/object/lines is an object or array, not a scalar");
	check_empty(&ex);
	sc.dedup.name = "/id";
	sc.topic.name = "/data";
	CHECK_INT(run_stripe(&sc, stripe_body, &ex, &status, &why), -RELAY_EINVAL);
	CHECK_STR(why, "topic /data is an object or array, not a scalar");
	check_empty(&ex);
	sc.topic.name = "/type";
	sc.lane.name = "/data/object/meta";
	CHECK_INT(run_stripe(&sc, stripe_body, &ex, &status, &why), -RELAY_EINVAL);
	CHECK_STR(why, "lane /data/object/meta is an object or array, not a scalar");
	check_empty(&ex);
	sc.lane.name = "/data/object/customer";

	/* 512 bytes of key pass, 513 do not */
	memset(key, 'k', 512);
	key[512] = '\0';
	snprintf(body, sizeof(body), "{\"id\": \"%s\"}", key);
	CHECK_INT(run_stripe(&sc, body, &ex, &status, &why), 0);
	CHECK(ex.dedup_key != NULL && strlen(ex.dedup_key) == 512);
	relay_extract_clear(&ex);
	snprintf(body, sizeof(body), "{\"id\": \"%sk\"}", key);
	CHECK_INT(run_stripe(&sc, body, &ex, &status, &why), -RELAY_ETOOBIG);
	CHECK_INT(status, 400);
	CHECK_STR(why, "dedup key /id longer than 512 bytes");
	check_empty(&ex);
	/* the same for a lane */
	snprintf(body, sizeof(body), "{\"id\": \"e1\", \"data\": {\"object\": {\"customer\": \"%sk\"}}}",
	         key);
	CHECK_INT(run_stripe(&sc, body, &ex, &status, &why), -RELAY_ETOOBIG);
	CHECK_STR(why, "lane /data/object/customer longer than 512 bytes");
	check_empty(&ex);

	/* and for a header */
	sc.verify.scheme = RELAY_SIG_NONE;
	sc.require_json = 0;
	sc.dedup.kind = RELAY_REF_HEADER;
	sc.dedup.name = "X-Event-Id";
	sc.topic.kind = RELAY_REF_NONE;
	sc.lane.kind = RELAY_REF_NONE;
	hdr_add(&h, "X-Event-Id", key);
	CHECK_INT(relay_source_extract(&sc, hdr_get, &h, NULL, 0, 0, &ex, &status, &why), 0);
	CHECK(ex.dedup_key != NULL && strlen(ex.dedup_key) == 512);
	CHECK(ex.json == NULL);
	relay_extract_clear(&ex);
	key[512] = 'k';
	key[513] = '\0';
	CHECK_INT(relay_source_extract(&sc, hdr_get, &h, NULL, 0, 0, &ex, &status, &why),
	          -RELAY_ETOOBIG);
	CHECK_INT(status, 400);
	CHECK_STR(why, "dedup key header X-Event-Id longer than 512 bytes");
}

static void
test_config_errors(void)
{
	struct relay_source_conf sc = stripe_source();
	struct relay_extract ex;
	int status = -1;
	const char *why = NULL;

	sc.dedup.kind = RELAY_REF_NONE;
	CHECK_INT(run_stripe(&sc, stripe_body, &ex, &status, &why), -RELAY_ECONFIG);
	CHECK_INT(status, 500);
	CHECK_STR(why, "source has no dedup key");
	check_empty(&ex);

	sc = stripe_source();
	sc.lane.name = "data/object/customer";
	CHECK_INT(run_stripe(&sc, stripe_body, &ex, &status, &why), -RELAY_ECONFIG);
	CHECK_INT(status, 500);
	CHECK_STR(why, "source has an invalid JSON pointer");
	check_empty(&ex);

	/* a verify block without secrets */
	sc = stripe_source();
	{
		struct headers h = { { "Stripe-Signature" }, { "t=1,v1=00" }, 1 };
		sc.verify.n_secrets = 0;
		CHECK_INT(relay_source_extract(&sc, hdr_get, &h, (const unsigned char *)"{}", 2, 1,
		                               &ex, &status, &why), -RELAY_ECONFIG);
		CHECK_INT(status, 500);
		check_empty(&ex);
	}
	CHECK_INT(relay_source_extract(NULL, hdr_get, NULL, NULL, 0, 0, &ex, &status, &why),
	          -RELAY_ECONFIG);
	CHECK_INT(relay_source_extract(&sc, hdr_get, NULL, NULL, 0, 0, NULL, NULL, NULL),
	          -RELAY_EINVAL);

	/* a header ref needs the lookup */
	sc = stripe_source();
	sc.verify.scheme = RELAY_SIG_NONE;
	sc.topic.kind = RELAY_REF_HEADER;
	sc.topic.name = "X-Topic";
	CHECK_INT(relay_source_extract(&sc, NULL, NULL, (const unsigned char *)"{\"id\": 1}", 9, 0,
	                               &ex, &status, &why), -RELAY_EINVAL);
	CHECK_INT(status, 500);
	check_empty(&ex);
}

static void
test_scheme_none_array_body(void)
{
	struct relay_source_conf sc;
	struct relay_extract ex;
	int status = -1;
	const char *why = NULL;
	const char *body = "[{\"event_id\": 77, \"kind\": \"sale.order\"}]";

	memset(&sc, 0, sizeof(sc));
	sc.verify.scheme = RELAY_SIG_NONE;
	sc.dedup.kind = RELAY_REF_POINTER;
	sc.dedup.name = "/0/event_id";
	sc.topic.kind = RELAY_REF_POINTER;
	sc.topic.name = "/0/kind";
	/* no header lookup needed when nothing is read from headers */
	CHECK_INT(relay_source_extract(&sc, NULL, NULL, (const unsigned char *)body, strlen(body), 0,
	                               &ex, &status, &why), 0);
	CHECK_STR(ex.dedup_key, "77");
	CHECK_STR(ex.topic, "sale.order");
	CHECK(ex.json == NULL);
	CHECK_INT(relay_json_arena_live(), 0);
	relay_extract_clear(&ex);
}

/* The dedup key and lane of body under a scheme-none source on /id and /lane. */
static void
check_keys(const char *body, const char *want_key, const char *want_lane)
{
	struct relay_source_conf sc;
	struct relay_extract ex;
	int status = -1;
	const char *why = NULL;

	memset(&sc, 0, sizeof(sc));
	sc.verify.scheme = RELAY_SIG_NONE;
	sc.dedup.kind = RELAY_REF_POINTER;
	sc.dedup.name = "/id";
	sc.lane.kind = RELAY_REF_POINTER;
	sc.lane.name = "/lane";
	CHECK_INT(relay_source_extract(&sc, NULL, NULL, (const unsigned char *)body, strlen(body),
	                               0, &ex, &status, &why), 0);
	CHECK_STR(ex.dedup_key, want_key);
	CHECK_STR(ex.lane, want_lane);
	relay_extract_clear(&ex);
}

static void
test_number_forms(void)
{
	/* one number, one dedup key and one lane, however the sender wrote it */
	check_keys("{\"id\": 1000000, \"lane\": 7}", "1000000", "7");
	check_keys("{\"id\": 1e6, \"lane\": 7.0}", "1000000", "7");
	check_keys("{\"id\": 1000000.0, \"lane\": 70e-1}", "1000000", "7");
	check_keys("{\"id\": 1.0E+6, \"lane\": 0.7e1}", "1000000", "7");
	check_keys("{\"id\": 1, \"lane\": -0.0}", "1", "0");
	check_keys("{\"id\": 1e0, \"lane\": 1.5}", "1", "1.5");
	/* what is different stays different */
	check_keys("{\"id\": 1.5, \"lane\": 15e-1}", "1.5", "1.5");
	check_keys("{\"id\": 1e18, \"lane\": 1000000000000000000}", "1e+18",
	           "1000000000000000000");
}

int
main(void)
{
	/* as the daemon runs: the body's tree in the thread's arena */
	relay_json_arena_install();
	RUN(test_stripe_like);
	RUN(test_github_like);
	RUN(test_signature_errors);
	RUN(test_value_errors);
	RUN(test_config_errors);
	RUN(test_scheme_none_array_body);
	RUN(test_number_forms);
	/* every path, the failures too, gave all of its blocks back */
	CHECK_INT(relay_json_arena_live(), 0);
	CHECK_INT(relay_json_arena_release(), 0);
	return check_done();
}
