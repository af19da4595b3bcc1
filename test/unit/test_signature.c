/*
 * Signature schemes against vectors made with the openssl command line
 * (test/fixtures/signature/make-vectors.sh), read from the fixture files.
 */
#include <ctype.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>

#include "check.h"
#include "odoo_relay/error.h"
#include "odoo_relay/signature.h"

/* --- request headers for the lookup callback --- */

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

static struct headers
one_header(const char *name, const char *value)
{
	struct headers h = { { name }, { value }, 1 };
	return h;
}

/* --- fixture vectors --- */

struct vector {
	char scheme[32], secret[128], header[64], value[256], prefix[32], encoding[16];
	unsigned char *body;
	size_t len;
	long long time;
};

static unsigned char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	long n;

	*len = 0;
	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
			buf[n] = '\0';
			*len = (size_t)n;
		} else {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

static void
field(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src);
}

/* Reads signature/<name>.txt; returns 0 or -1 (reported as a failed check). */
static int
vector_load(const char *name, struct vector *v)
{
	char path[256], line[512], body[128] = "";
	FILE *f;

	memset(v, 0, sizeof(*v));
	snprintf(path, sizeof(path), "signature/%s.txt", name);
	f = fopen(path, "r");
	CHECK(f != NULL);
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *sp, *val;

		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0' || (sp = strchr(line, ' ')) == NULL)
			continue;
		*sp = '\0';
		val = sp + 1;
		if (!strcmp(line, "scheme")) field(v->scheme, sizeof(v->scheme), val);
		else if (!strcmp(line, "secret")) field(v->secret, sizeof(v->secret), val);
		else if (!strcmp(line, "header")) field(v->header, sizeof(v->header), val);
		else if (!strcmp(line, "value")) field(v->value, sizeof(v->value), val);
		else if (!strcmp(line, "prefix")) field(v->prefix, sizeof(v->prefix), val);
		else if (!strcmp(line, "encoding")) field(v->encoding, sizeof(v->encoding), val);
		else if (!strcmp(line, "body")) field(body, sizeof(body), val);
		else if (!strcmp(line, "time")) v->time = atoll(val);
	}
	fclose(f);
	snprintf(path, sizeof(path), "signature/%s", body);
	v->body = slurp(path, &v->len);
	CHECK(v->body != NULL);
	CHECK(v->value[0] != '\0');
	return v->body && v->value[0] ? 0 : -1;
}

static enum relay_sig_scheme
scheme_of(const char *s)
{
	if (!strcmp(s, "shopify")) return RELAY_SIG_SHOPIFY;
	if (!strcmp(s, "woocommerce")) return RELAY_SIG_WOOCOMMERCE;
	if (!strcmp(s, "github")) return RELAY_SIG_GITHUB;
	if (!strcmp(s, "stripe")) return RELAY_SIG_STRIPE;
	if (!strcmp(s, "hmac-sha256")) return RELAY_SIG_HMAC_SHA256;
	return RELAY_SIG_TOKEN;
}

static struct relay_secret
secret(const char *s)
{
	struct relay_secret r = { (unsigned char *)s, strlen(s) };
	return r;
}

/* vc for v, with secrets[] (filled by the caller) as its secret list. */
static struct relay_verify_conf
conf_for(struct vector *v, struct relay_secret *secrets, size_t n)
{
	struct relay_verify_conf vc;

	memset(&vc, 0, sizeof(vc));
	vc.scheme = scheme_of(v->scheme);
	vc.secrets = secrets;
	vc.n_secrets = n;
	vc.header = v->header[0] && vc.scheme == RELAY_SIG_HMAC_SHA256 ? v->header : NULL;
	vc.prefix = v->prefix[0] ? v->prefix : NULL;
	vc.encoding = !strcmp(v->encoding, "base64") ? RELAY_ENC_BASE64 : RELAY_ENC_HEX;
	vc.tolerance_s = 300;
	return vc;
}

static int
verify_with(const struct relay_verify_conf *vc, const char *header, const char *value,
            const unsigned char *body, size_t len, int64_t now, const char **why)
{
	struct headers h = one_header(header, value);
	return relay_signature_verify(vc, hdr_get, &h, body, len, now, why);
}

/* --- the body-digest schemes: shopify, woocommerce, github, hmac-sha256 --- */

static void
check_digest_vector(const char *name)
{
	struct vector v;
	struct relay_secret secrets[2];
	struct relay_verify_conf vc;
	char out[512], lower[64], bad[512];
	const char *why = "unset";
	size_t i;

	fprintf(stderr, "   vector %s\n", name);
	if (vector_load(name, &v) != 0)
		goto out;
	secrets[0] = secret(v.secret);
	vc = conf_for(&v, secrets, 1);

	/* good, with the header name in another case than the sender's */
	for (i = 0; v.header[i] && i < sizeof(lower) - 1; i++)
		lower[i] = (char)tolower((unsigned char)v.header[i]);
	lower[i] = '\0';
	CHECK_INT(verify_with(&vc, lower, v.value, v.body, v.len, 0, &why), 0);
	CHECK(why == NULL);
	CHECK_STR(relay_signature_header(&vc), v.header);

	/* the signing helper agrees with openssl */
	CHECK_INT(relay_signature_sign(&vc, v.body, v.len, 0, out, sizeof(out)), 0);
	CHECK_STR(out, v.value);

	/* surrounding white space is not part of the value */
	snprintf(bad, sizeof(bad), " \t%s ", v.value);
	CHECK_INT(verify_with(&vc, v.header, bad, v.body, v.len, 0, NULL), 0);

	/* tampered body */
	if (v.len > 0) {
		v.body[v.len / 2] ^= 0x01;
		CHECK_INT(verify_with(&vc, v.header, v.value, v.body, v.len, 0, &why), -RELAY_ESIG);
		CHECK_STR(why, "signature mismatch");
		v.body[v.len / 2] ^= 0x01;
		CHECK_INT(verify_with(&vc, v.header, v.value, v.body, v.len - 1, 0, NULL), -RELAY_ESIG);
	} else {
		CHECK_INT(verify_with(&vc, v.header, v.value, (const unsigned char *)"x", 1, 0, &why),
		          -RELAY_ESIG);
		/* an empty body may come as NULL */
		CHECK_INT(verify_with(&vc, v.header, v.value, NULL, 0, 0, NULL), 0);
	}

	/* wrong secret, and rotation: either order of old and new verifies */
	secrets[0] = secret("not-the-secret");
	CHECK_INT(verify_with(&vc, v.header, v.value, v.body, v.len, 0, &why), -RELAY_ESIG);
	CHECK_STR(why, "signature mismatch");
	secrets[1] = secret(v.secret);
	vc.n_secrets = 2;
	CHECK_INT(verify_with(&vc, v.header, v.value, v.body, v.len, 0, NULL), 0);
	secrets[0] = secret(v.secret);
	secrets[1] = secret("not-the-secret");
	CHECK_INT(verify_with(&vc, v.header, v.value, v.body, v.len, 0, NULL), 0);
	vc.n_secrets = 1;

	/* missing header (another header is present) */
	CHECK_INT(verify_with(&vc, "X-Other", v.value, v.body, v.len, 0, &why), -RELAY_ESIG);
	CHECK(why != NULL && strncmp(why, "missing ", 8) == 0);
	if (vc.scheme != RELAY_SIG_HMAC_SHA256)
		CHECK(why != NULL && strstr(why, v.header) != NULL);

	/* malformed: empty, cut short, too long, a character outside the alphabet */
	CHECK_INT(verify_with(&vc, v.header, "", v.body, v.len, 0, &why), -RELAY_ESIG);
	CHECK(why != NULL && strncmp(why, "malformed ", 10) == 0);
	snprintf(bad, sizeof(bad), "%.*s", (int)strlen(v.value) - 2, v.value);
	CHECK_INT(verify_with(&vc, v.header, bad, v.body, v.len, 0, &why), -RELAY_ESIG);
	CHECK(why != NULL && strncmp(why, "malformed ", 10) == 0);
	snprintf(bad, sizeof(bad), "%s00", v.value);
	CHECK_INT(verify_with(&vc, v.header, bad, v.body, v.len, 0, &why), -RELAY_ESIG);
	CHECK(why != NULL && strncmp(why, "malformed ", 10) == 0);
	snprintf(bad, sizeof(bad), "%s", v.value);
	bad[strlen(bad) - 5] = '!';
	CHECK_INT(verify_with(&vc, v.header, bad, v.body, v.len, 0, &why), -RELAY_ESIG);
	CHECK(why != NULL && strncmp(why, "malformed ", 10) == 0);

	/* a valid-looking digest of the right size that is not the MAC */
	snprintf(bad, sizeof(bad), "%s", v.value);
	bad[strlen(bad) - 3] = bad[strlen(bad) - 3] == 'A' ? 'B' : 'A';
	CHECK_INT(verify_with(&vc, v.header, bad, v.body, v.len, 0, &why), -RELAY_ESIG);
	CHECK_STR(why, "signature mismatch");
	CHECK(ERR_peek_error() == 0);
out:
	free(v.body);
}

static void
test_digest_vectors(void)
{
	check_digest_vector("shopify");
	check_digest_vector("woocommerce");
	check_digest_vector("github");
	check_digest_vector("hmac-hex");
	check_digest_vector("hmac-base64-prefix");
	check_digest_vector("empty-body");
}

static void
test_github_forms(void)
{
	struct vector v;
	struct relay_secret s;
	struct relay_verify_conf vc;
	char buf[512];
	const char *why;
	size_t i;

	if (vector_load("github", &v) != 0)
		goto out;
	s = secret(v.secret);
	vc = conf_for(&v, &s, 1);

	/* uppercase hex digits verify too (the prefix stays lower case) */
	snprintf(buf, sizeof(buf), "%s", v.value);
	for (i = 7; buf[i]; i++)
		buf[i] = (char)toupper((unsigned char)buf[i]);
	CHECK_INT(verify_with(&vc, v.header, buf, v.body, v.len, 0, NULL), 0);

	/* the bare hex digest without "sha256=" is malformed */
	CHECK_INT(verify_with(&vc, v.header, v.value + 7, v.body, v.len, 0, &why), -RELAY_ESIG);
	CHECK_STR(why, "malformed X-Hub-Signature-256 header");
	/* so is the SHA-1 header's prefix */
	snprintf(buf, sizeof(buf), "sha1=%s", v.value + 7);
	CHECK_INT(verify_with(&vc, v.header, buf, v.body, v.len, 0, &why), -RELAY_ESIG);
	CHECK_STR(why, "malformed X-Hub-Signature-256 header");

	/* the example GitHub publishes in its webhook documentation */
	{
		const char *body = "Hello, World!";
		CHECK_INT(verify_with(&vc, "X-Hub-Signature-256",
		          "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
		          (const unsigned char *)body, strlen(body), 0, NULL), 0);
	}
out:
	free(v.body);
}

static void
test_base64_forms(void)
{
	struct vector v;
	struct relay_secret s;
	struct relay_verify_conf vc;
	char buf[512];
	const char *why;

	if (vector_load("shopify", &v) != 0)
		goto out;
	s = secret(v.secret);
	vc = conf_for(&v, &s, 1);

	/* without its '=' padding */
	snprintf(buf, sizeof(buf), "%.*s", (int)strlen(v.value) - 1, v.value);
	CHECK_INT(verify_with(&vc, v.header, buf, v.body, v.len, 0, NULL), 0);
	/* padding where a digit should be */
	snprintf(buf, sizeof(buf), "%.*s==", (int)strlen(v.value) - 2, v.value);
	CHECK_INT(verify_with(&vc, v.header, buf, v.body, v.len, 0, &why), -RELAY_ESIG);
	CHECK_STR(why, "malformed X-Shopify-Hmac-Sha256 header");
	/* hex where base64 is expected */
	CHECK_INT(verify_with(&vc, v.header,
	          "07feaa7bba1f167069e81d83dd2d8255bf7b919fafed8749aa1ce2af99797c65",
	          v.body, v.len, 0, &why), -RELAY_ESIG);
	CHECK_STR(why, "malformed X-Shopify-Hmac-Sha256 header");
	/* base64url alphabet is not base64 */
	snprintf(buf, sizeof(buf), "%s", v.value);
	CHECK(strchr(buf, '+') != NULL);
	*strchr(buf, '+') = '-';
	CHECK_INT(verify_with(&vc, v.header, buf, v.body, v.len, 0, &why), -RELAY_ESIG);
	CHECK_STR(why, "malformed X-Shopify-Hmac-Sha256 header");
	CHECK(ERR_peek_error() == 0);
out:
	free(v.body);
}

/* --- stripe --- */

static void
test_stripe(void)
{
	struct vector v;
	struct relay_secret secrets[2];
	struct relay_verify_conf vc;
	char buf[512], v1[80], out[256];
	const char *why;
	int64_t t;

	if (vector_load("stripe", &v) != 0)
		goto out;
	t = v.time;
	secrets[0] = secret(v.secret);
	vc = conf_for(&v, secrets, 1);
	snprintf(v1, sizeof(v1), "%s", strstr(v.value, "v1=") + 3);

	/* good, at the time of signing and at both ends of the tolerance */
	CHECK_INT(verify_with(&vc, v.header, v.value, v.body, v.len, t, &why), 0);
	CHECK(why == NULL);
	CHECK_INT(verify_with(&vc, v.header, v.value, v.body, v.len, t + 300, NULL), 0);
	CHECK_INT(verify_with(&vc, v.header, v.value, v.body, v.len, t - 300, NULL), 0);
	CHECK_INT(relay_signature_sign(&vc, v.body, v.len, t, out, sizeof(out)), 0);
	CHECK_STR(out, v.value);

	/* stale, and from the future beyond the tolerance */
	CHECK_INT(verify_with(&vc, v.header, v.value, v.body, v.len, t + 301, &why), -RELAY_ESTALE);
	CHECK_STR(why, "Stripe-Signature timestamp outside tolerance");
	CHECK_INT(verify_with(&vc, v.header, v.value, v.body, v.len, t - 301, NULL), -RELAY_ESTALE);
	CHECK_INT(verify_with(&vc, v.header, v.value, v.body, v.len, INT64_MIN, NULL), -RELAY_ESTALE);
	/* a tolerance of 0 disables the check */
	vc.tolerance_s = 0;
	CHECK_INT(verify_with(&vc, v.header, v.value, v.body, v.len, t + 86400 * 365, NULL), 0);
	vc.tolerance_s = 300;

	/* tampered body and wrong secret: a mismatch, not stale, even when late */
	v.body[3] ^= 0x20;
	CHECK_INT(verify_with(&vc, v.header, v.value, v.body, v.len, t, &why), -RELAY_ESIG);
	CHECK_STR(why, "signature mismatch");
	v.body[3] ^= 0x20;
	secrets[0] = secret("whsec_wrong");
	CHECK_INT(verify_with(&vc, v.header, v.value, v.body, v.len, t + 1000, &why), -RELAY_ESIG);
	CHECK_STR(why, "signature mismatch");

	/* rotated: the second secret verifies */
	secrets[1] = secret(v.secret);
	vc.n_secrets = 2;
	CHECK_INT(verify_with(&vc, v.header, v.value, v.body, v.len, t, NULL), 0);
	secrets[0] = secret(v.secret);
	vc.n_secrets = 1;

	/* several v1 with one good, a v0 and an unknown scheme ignored,
	 * spaces after the commas tolerated */
	snprintf(buf, sizeof(buf),
	         "t=%lld,v1=%064d,v1=zz, v1=%s,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39,v9=x",
	         (long long)t, 0, v1);
	CHECK_INT(verify_with(&vc, v.header, buf, v.body, v.len, t, NULL), 0);
	/* order does not matter */
	snprintf(buf, sizeof(buf), "v1=%s,t=%lld", v1, (long long)t);
	CHECK_INT(verify_with(&vc, v.header, buf, v.body, v.len, t, NULL), 0);

	/* the timestamp is signed: another t with the same v1 does not verify */
	snprintf(buf, sizeof(buf), "t=%lld,v1=%s", (long long)t + 1, v1);
	CHECK_INT(verify_with(&vc, v.header, buf, v.body, v.len, t, &why), -RELAY_ESIG);
	CHECK_STR(why, "signature mismatch");
	/* nor does a v0 (test mode's scheme) carrying the good digest */
	snprintf(buf, sizeof(buf), "t=%lld,v0=%s,v1=%064d", (long long)t, v1, 0);
	CHECK_INT(verify_with(&vc, v.header, buf, v.body, v.len, t, &why), -RELAY_ESIG);

	/* missing header */
	CHECK_INT(verify_with(&vc, "X-Other", v.value, v.body, v.len, t, &why), -RELAY_ESIG);
	CHECK_STR(why, "missing Stripe-Signature header");

	/* malformed headers */
	snprintf(buf, sizeof(buf), "v1=%s", v1);
	CHECK_INT(verify_with(&vc, v.header, buf, v.body, v.len, t, &why), -RELAY_ESIG);
	CHECK_STR(why, "missing timestamp in Stripe-Signature header");
	snprintf(buf, sizeof(buf), "t=%lld,t=%lld,v1=%s", (long long)t, (long long)t, v1);
	CHECK_INT(verify_with(&vc, v.header, buf, v.body, v.len, t, &why), -RELAY_ESIG);
	CHECK_STR(why, "duplicate timestamp in Stripe-Signature header");
	snprintf(buf, sizeof(buf), "t=%lld,v0=%s", (long long)t, v1);
	CHECK_INT(verify_with(&vc, v.header, buf, v.body, v.len, t, &why), -RELAY_ESIG);
	CHECK_STR(why, "no v1 signature in Stripe-Signature header");
	snprintf(buf, sizeof(buf), "t=-%lld,v1=%s", (long long)t, v1);
	CHECK_INT(verify_with(&vc, v.header, buf, v.body, v.len, t, &why), -RELAY_ESIG);
	CHECK_STR(why, "malformed timestamp in Stripe-Signature header");
	snprintf(buf, sizeof(buf), "t=99999999999999999999,v1=%s", v1);
	CHECK_INT(verify_with(&vc, v.header, buf, v.body, v.len, t, &why), -RELAY_ESIG);
	CHECK_STR(why, "malformed timestamp in Stripe-Signature header");
	snprintf(buf, sizeof(buf), "t=,v1=%s", v1);
	CHECK_INT(verify_with(&vc, v.header, buf, v.body, v.len, t, &why), -RELAY_ESIG);
	CHECK_STR(why, "malformed timestamp in Stripe-Signature header");
	snprintf(buf, sizeof(buf), "t=%lld,,v1=%s", (long long)t, v1);
	CHECK_INT(verify_with(&vc, v.header, buf, v.body, v.len, t, &why), -RELAY_ESIG);
	CHECK_STR(why, "malformed Stripe-Signature header");
	CHECK_INT(verify_with(&vc, v.header, "garbage", v.body, v.len, t, &why), -RELAY_ESIG);
	CHECK_STR(why, "malformed Stripe-Signature header");
	CHECK_INT(verify_with(&vc, v.header, "", v.body, v.len, t, &why), -RELAY_ESIG);
	CHECK_STR(why, "malformed Stripe-Signature header");
	/* attacker-made input leaves nothing on OpenSSL's error queue, where
	 * it would be blamed on the next TLS call of the same thread */
	CHECK(ERR_peek_error() == 0);

	/* a signature made now by the helper verifies now */
	CHECK_INT(relay_signature_sign(&vc, v.body, v.len, 1234567890, out, sizeof(out)), 0);
	CHECK(strncmp(out, "t=1234567890,v1=", 16) == 0);
	CHECK_INT(verify_with(&vc, v.header, out, v.body, v.len, 1234567890, NULL), 0);
out:
	free(v.body);
}

/* --- token --- */

static void
test_token(void)
{
	struct relay_secret secrets[2] = { { (unsigned char *)"s3cret-T0ken", 12 } };
	struct relay_verify_conf vc = { .scheme = RELAY_SIG_TOKEN, .secrets = secrets,
	                                .n_secrets = 1 };
	const unsigned char *body = (const unsigned char *)"{}";
	char out[64];
	const char *why;

	/* Authorization: Bearer, scheme word in any case */
	CHECK_STR(relay_signature_header(&vc), "Authorization");
	CHECK_INT(verify_with(&vc, "Authorization", "Bearer s3cret-T0ken", body, 2, 0, &why), 0);
	CHECK(why == NULL);
	CHECK_INT(verify_with(&vc, "authorization", "bEARER   s3cret-T0ken", body, 2, 0, NULL), 0);
	CHECK_INT(relay_signature_sign(&vc, body, 2, 0, out, sizeof(out)), 0);
	CHECK_STR(out, "Bearer s3cret-T0ken");

	/* mismatches: wrong, longer, shorter, other case */
	CHECK_INT(verify_with(&vc, "Authorization", "Bearer wrong", body, 2, 0, &why), -RELAY_ESIG);
	CHECK_STR(why, "token mismatch");
	CHECK_INT(verify_with(&vc, "Authorization", "Bearer s3cret-T0ken2", body, 2, 0, NULL),
	          -RELAY_ESIG);
	CHECK_INT(verify_with(&vc, "Authorization", "Bearer s3cret-T0ke", body, 2, 0, NULL),
	          -RELAY_ESIG);
	CHECK_INT(verify_with(&vc, "Authorization", "Bearer S3CRET-T0KEN", body, 2, 0, NULL),
	          -RELAY_ESIG);

	/* missing and malformed */
	CHECK_INT(verify_with(&vc, "X-Other", "Bearer s3cret-T0ken", body, 2, 0, &why), -RELAY_ESIG);
	CHECK_STR(why, "missing Authorization header");
	CHECK_INT(verify_with(&vc, "Authorization", "s3cret-T0ken", body, 2, 0, &why), -RELAY_ESIG);
	CHECK_STR(why, "malformed Authorization header (want Bearer)");
	CHECK_INT(verify_with(&vc, "Authorization", "Basic czNjcmV0", body, 2, 0, &why), -RELAY_ESIG);
	CHECK_STR(why, "malformed Authorization header (want Bearer)");
	CHECK_INT(verify_with(&vc, "Authorization", "Bearer", body, 2, 0, &why), -RELAY_ESIG);
	CHECK_STR(why, "malformed Authorization header (want Bearer)");
	CHECK_INT(verify_with(&vc, "Authorization", "Bearer   ", body, 2, 0, &why), -RELAY_ESIG);
	CHECK_STR(why, "malformed Authorization header (want Bearer)");
	CHECK_INT(verify_with(&vc, "Authorization", "Bearers3cret-T0ken", body, 2, 0, &why),
	          -RELAY_ESIG);
	CHECK_STR(why, "malformed Authorization header (want Bearer)");

	/* rotation, and an empty secret in the list matches nothing */
	secrets[1] = secrets[0];
	secrets[0] = secret("");
	vc.n_secrets = 2;
	CHECK_INT(verify_with(&vc, "Authorization", "Bearer s3cret-T0ken", body, 2, 0, NULL), 0);
	CHECK_INT(verify_with(&vc, "Authorization", "Bearer x", body, 2, 0, NULL), -RELAY_ESIG);
	secrets[0] = secrets[1];
	vc.n_secrets = 1;

	/* a custom header carries the bare secret */
	vc.header = "X-Gitlab-Token";
	CHECK_STR(relay_signature_header(&vc), "X-Gitlab-Token");
	CHECK_INT(verify_with(&vc, "x-gitlab-token", "s3cret-T0ken", body, 2, 0, NULL), 0);
	CHECK_INT(verify_with(&vc, "X-Gitlab-Token", "Bearer s3cret-T0ken", body, 2, 0, &why),
	          -RELAY_ESIG);
	CHECK_STR(why, "token mismatch");
	CHECK_INT(verify_with(&vc, "X-Gitlab-Token", "", body, 2, 0, &why), -RELAY_ESIG);
	CHECK_STR(why, "malformed token header");
	CHECK_INT(verify_with(&vc, "Authorization", "Bearer s3cret-T0ken", body, 2, 0, &why),
	          -RELAY_ESIG);
	CHECK_STR(why, "missing token header");
	CHECK_INT(relay_signature_sign(&vc, body, 2, 0, out, sizeof(out)), 0);
	CHECK_STR(out, "s3cret-T0ken");
	/* "authorization" named explicitly, in any case, still means Bearer */
	vc.header = "AUTHORIZATION";
	CHECK_INT(verify_with(&vc, "Authorization", "Bearer s3cret-T0ken", body, 2, 0, NULL), 0);
}

/* --- none, configuration errors, the helper's limits --- */

static void
test_none_and_config_errors(void)
{
	struct relay_secret s = { (unsigned char *)"k", 1 };
	struct relay_verify_conf vc = { .scheme = RELAY_SIG_NONE };
	struct headers none = { { NULL }, { NULL }, 0 };
	char out[128];
	const char *why = "unset";

	CHECK_INT(relay_signature_verify(&vc, hdr_get, &none, NULL, 0, 0, &why), 0);
	CHECK(why == NULL);
	CHECK_INT(relay_signature_verify(&vc, NULL, NULL, (const unsigned char *)"x", 1, 0, NULL), 0);
	CHECK(relay_signature_header(&vc) == NULL);
	CHECK_INT(relay_signature_sign(&vc, NULL, 0, 0, out, sizeof(out)), 0);
	CHECK_STR(out, "");

	/* no secrets */
	vc.scheme = RELAY_SIG_SHOPIFY;
	CHECK_INT(relay_signature_verify(&vc, hdr_get, &none, NULL, 0, 0, &why), -RELAY_EINVAL);
	CHECK(why != NULL);
	CHECK_INT(relay_signature_sign(&vc, NULL, 0, 0, out, sizeof(out)), -RELAY_EINVAL);
	/* no header lookup */
	vc.secrets = &s;
	vc.n_secrets = 1;
	CHECK_INT(relay_signature_verify(&vc, NULL, NULL, NULL, 0, 0, NULL), -RELAY_EINVAL);
	/* hmac-sha256 without a header */
	vc.scheme = RELAY_SIG_HMAC_SHA256;
	CHECK_INT(relay_signature_verify(&vc, hdr_get, &none, NULL, 0, 0, NULL), -RELAY_EINVAL);
	CHECK_INT(relay_signature_sign(&vc, NULL, 0, 0, out, sizeof(out)), -RELAY_EINVAL);
	/* an unknown scheme */
	vc.scheme = (enum relay_sig_scheme)99;
	CHECK_INT(relay_signature_verify(&vc, hdr_get, &none, NULL, 0, 0, NULL), -RELAY_EINVAL);
	CHECK(relay_signature_header(&vc) == NULL);
	CHECK_INT(relay_signature_verify(NULL, hdr_get, &none, NULL, 0, 0, NULL), -RELAY_EINVAL);

	/* the helper's buffer: 44 base64 characters need 45 bytes */
	vc.scheme = RELAY_SIG_SHOPIFY;
	CHECK_INT(relay_signature_sign(&vc, NULL, 0, 0, out, 44), -RELAY_ETOOBIG);
	CHECK_STR(out, "");
	CHECK_INT(relay_signature_sign(&vc, NULL, 0, 0, out, 45), 0);
	CHECK_INT((int)strlen(out), 44);
	CHECK_INT(relay_signature_sign(&vc, NULL, 0, 0, NULL, 0), -RELAY_ETOOBIG);
	vc.scheme = RELAY_SIG_STRIPE;
	CHECK_INT(relay_signature_sign(&vc, NULL, 0, INT64_MAX, out, RELAY_SIGNATURE_MAX), 0);
	/* a token with a NUL byte cannot be a header value */
	vc.scheme = RELAY_SIG_TOKEN;
	s.data = (unsigned char *)"a\0b";
	s.len = 3;
	CHECK_INT(relay_signature_sign(&vc, NULL, 0, 0, out, sizeof(out)), -RELAY_EINVAL);
}

/* GitHub-signed body under secret sig_key, verified with secrets[0..n). */
static int
github_check(const char *sig_key, const char *const *keys, size_t n)
{
	struct relay_secret secrets[8], one = secret(sig_key);
	struct relay_verify_conf vc;
	static const unsigned char body[] = "{\"action\":\"opened\"}";
	char value[RELAY_SIGNATURE_MAX];
	size_t i;

	memset(&vc, 0, sizeof(vc));
	vc.scheme = RELAY_SIG_GITHUB;
	vc.secrets = &one;
	vc.n_secrets = 1;
	if (relay_signature_sign(&vc, body, sizeof(body) - 1, 0, value, sizeof(value)) != 0)
		return -1000;
	for (i = 0; i < n; i++)
		secrets[i] = secret(keys[i]);
	vc.secrets = secrets;
	vc.n_secrets = n;
	return verify_with(&vc, "X-Hub-Signature-256", value, body, sizeof(body) - 1, 0, NULL);
}

static void *
rotate_thread(void *arg)
{
	static const char *const b[] = { "bbbbbbbbbb" };
	int *rc = arg;

	/* another thread: its own contexts, keyed with its own secrets */
	rc[0] = github_check("bbbbbbbbbb", b, 1);
	rc[1] = github_check("aaaaaaaaaa", b, 1);
	return NULL;
}

/*
 * A thread keeps HMAC contexts keyed with the first secrets it verified
 * with: a secret that changes in its slot (a rotation, another source) is
 * never verified with the old key, and a fifth secret, past the kept
 * ones, still counts.
 */
static void
test_kept_keys(void)
{
	static const char *const a[] = { "aaaaaaaaaa" }, *const b[] = { "bbbbbbbbbb" };
	static const char *const five[] = { "k1", "k2", "k3", "k4", "k5-fifth" };
	pthread_t t;
	int rc[2] = { 1, 1 };

	CHECK_INT(github_check("aaaaaaaaaa", a, 1), 0);
	/* the same length in the same slot: compared byte for byte */
	CHECK_INT(github_check("aaaaaaaaaa", b, 1), -RELAY_ESIG);
	CHECK_INT(github_check("bbbbbbbbbb", b, 1), 0);
	CHECK_INT(github_check("bbbbbbbbbb", a, 1), -RELAY_ESIG);
	CHECK_INT(github_check("aaaaaaaaaa", a, 1), 0);
	CHECK_INT(github_check("k5-fifth", five, 5), 0);
	CHECK_INT(github_check("k2", five, 5), 0);
	CHECK_INT(github_check("k6", five, 5), -RELAY_ESIG);
	CHECK_INT(github_check("aaaaaaaaaa", five, 5), -RELAY_ESIG);
	CHECK_INT(pthread_create(&t, NULL, rotate_thread, rc), 0);
	pthread_join(t, NULL);
	CHECK_INT(rc[0], 0);
	CHECK_INT(rc[1], -RELAY_ESIG);
	CHECK_INT(github_check("aaaaaaaaaa", a, 1), 0);
}

int
main(void)
{
	RUN(test_digest_vectors);
	RUN(test_github_forms);
	RUN(test_base64_forms);
	RUN(test_stripe);
	RUN(test_token);
	RUN(test_none_and_config_errors);
	RUN(test_kept_keys);
	return check_done();
}
