/* Webhook signature verification: see include/odoo_relay/signature.h. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "odoo_relay/error.h"
#include "odoo_relay/signature.h"

#define DIGEST_LEN 32               /* SHA-256 */
#define HEX_LEN (2 * DIGEST_LEN)
#define B64_LEN 44                  /* 4 * ceil(32 / 3), one '=' of padding */
#define STRIPE_T_MAX 24             /* "<int64>." and a NUL */

/* What each fixed scheme reads and how it complains; indexed by scheme. */
struct scheme_info {
	const char *header;
	const char *missing;
	const char *malformed;
};

static const struct scheme_info schemes[] = {
	[RELAY_SIG_SHOPIFY] = { "X-Shopify-Hmac-Sha256",
		"missing X-Shopify-Hmac-Sha256 header",
		"malformed X-Shopify-Hmac-Sha256 header" },
	[RELAY_SIG_WOOCOMMERCE] = { "X-WC-Webhook-Signature",
		"missing X-WC-Webhook-Signature header",
		"malformed X-WC-Webhook-Signature header" },
	[RELAY_SIG_GITHUB] = { "X-Hub-Signature-256",
		"missing X-Hub-Signature-256 header",
		"malformed X-Hub-Signature-256 header" },
	[RELAY_SIG_STRIPE] = { "Stripe-Signature",
		"missing Stripe-Signature header",
		"malformed Stripe-Signature header" },
	[RELAY_SIG_HMAC_SHA256] = { NULL,
		"missing signature header",
		"malformed signature header" },
	[RELAY_SIG_TOKEN] = { NULL,
		"missing token header",
		"malformed token header" },
	[RELAY_SIG_URL_TOKEN] = { RELAY_URL_TOKEN_HEADER,
		"missing token in the URL",
		"malformed token in the URL" },
};

static const char text_mismatch[] = "signature mismatch";

/*
 * One HMAC-SHA256 context per verification, re-keyed for each secret, so
 * that the algorithm is fetched once rather than once per secret.
 */
struct hmac {
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx;
	int digest_set;     /* the digest is set: a re-key need not fetch it again */
};

/*
 * The HMAC algorithm, fetched once for the process: a fetch looks it up in
 * OpenSSL's method store under a lock, which cost more than verifying a
 * small webhook. OpenSSL's algorithm objects may be shared between threads;
 * a fetch that failed is tried again by the next caller, and of two that
 * race, the loser frees its own. Held until the process ends.
 */
static _Atomic(EVP_MAC *) hmac_alg;

static EVP_MAC *
hmac_algorithm(void)
{
	EVP_MAC *mac = atomic_load(&hmac_alg), *none = NULL;

	if (mac)
		return mac;
	if (!(mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL)))
		return NULL;
	if (!atomic_compare_exchange_strong(&hmac_alg, &none, mac)) {
		EVP_MAC_free(mac);
		mac = none;
	}
	return mac;
}

static int
hmac_open(struct hmac *h)
{
	h->mac = hmac_algorithm();
	if (h->mac == NULL)
		return ENOMEM;
	h->ctx = EVP_MAC_CTX_new(h->mac);
	if (h->ctx == NULL) {
		h->mac = NULL;
		return ENOMEM;
	}
	h->digest_set = 0;
	return 0;
}

static void
hmac_close(struct hmac *h)
{
	EVP_MAC_CTX_free(h->ctx);
	h->ctx = NULL;
	h->mac = NULL;
}

/* HMAC-SHA256(key, pre || data) into out. */
static int
hmac_run(struct hmac *h, const unsigned char *key, size_t keylen,
         const void *pre, size_t prelen, const void *data, size_t len,
         unsigned char out[DIGEST_LEN])
{
	OSSL_PARAM params[2];
	size_t outlen = 0;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	                                             (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	/* A NULL key would mean "keep the previous key" to EVP_MAC_init. */
	if (key == NULL)
		key = (const unsigned char *)"";
	if (!EVP_MAC_init(h->ctx, key, keylen, h->digest_set ? NULL : params))
		return ENOMEM;
	h->digest_set = 1;
	if (prelen > 0 && !EVP_MAC_update(h->ctx, pre, prelen))
		return ENOMEM;
	if (len > 0 && !EVP_MAC_update(h->ctx, data, len))
		return ENOMEM;
	if (!EVP_MAC_final(h->ctx, out, &outlen, DIGEST_LEN) || outlen != DIGEST_LEN)
		return ENOMEM;
	return 0;
}

struct relay_webhook_signer;
static int keyed_run(struct relay_webhook_signer *s, size_t i, const struct relay_secret *key,
                     const void *pre, size_t prelen, const void *data, size_t len,
                     unsigned char out[DIGEST_LEN]);

/* With a signer, the first SIGNER_KEYS secrets use its keyed contexts. */
#define SIGNER_KEYS 4

/*
 * The calling thread's keyed contexts for verifying (a signer, used only to
 * keep them): a source's secrets rarely change, and a new context, its
 * digest and its key were a third of verifying a 1 KiB webhook. Created at
 * the thread's first verification, freed when the thread ends; NULL without
 * memory (verification then keys a context of its own, as before).
 */
static pthread_key_t verifier_key;
static pthread_once_t verifier_once = PTHREAD_ONCE_INIT;
static int verifier_key_ok;

static void
verifier_drop(void *p)
{
	relay_webhook_signer_free(p);
}

static void
verifier_key_make(void)
{
	verifier_key_ok = pthread_key_create(&verifier_key, verifier_drop) == 0;
}

static struct relay_webhook_signer *
verifier(void)
{
	struct relay_webhook_signer *v;

	pthread_once(&verifier_once, verifier_key_make);
	if (!verifier_key_ok)
		return NULL;
	if ((v = pthread_getspecific(verifier_key)) != NULL)
		return v;
	if (relay_webhook_signer_new(&v) != 0)
		return NULL;
	if (pthread_setspecific(verifier_key, v) != 0) {
		relay_webhook_signer_free(v);
		return NULL;
	}
	return v;
}

/* HMAC-SHA256(secret i of a verification, pre || data): the first
 * SIGNER_KEYS secrets through the thread's kept contexts, the others (or
 * all, without memory for those) through h, opened at its first use. */
static int
verify_hmac(struct hmac *h, size_t i, const struct relay_secret *key,
            const void *pre, size_t prelen, const void *data, size_t len,
            unsigned char out[DIGEST_LEN])
{
	struct relay_webhook_signer *v = i < SIGNER_KEYS ? verifier() : NULL;

	if (v)
		return keyed_run(v, i, key, pre, prelen, data, len, out);
	if (!h->ctx && hmac_open(h) != 0)
		return ENOMEM;
	return hmac_run(h, key->data, key->len, pre, prelen, data, len, out);
}

/* The value of a header without its surrounding spaces and tabs. */
static void
trim(const char *s, size_t n, const char **start, size_t *len)
{
	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	*start = s;
	*len = n;
}

/* Hex of either case to exactly DIGEST_LEN bytes; -1 if it is not that. */
static int
hex_decode(const char *s, size_t n, unsigned char out[DIGEST_LEN])
{
	size_t i;

	if (n != HEX_LEN)
		return -1;
	for (i = 0; i < DIGEST_LEN; i++) {
		/* OPENSSL_hexchar2int, unlike OPENSSL_hexstr2buf_ex, leaves
		 * nothing on the error queue for attacker-made input. */
		int hi = OPENSSL_hexchar2int((unsigned char)s[2 * i]);
		int lo = OPENSSL_hexchar2int((unsigned char)s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

static void
hex_encode(const unsigned char in[DIGEST_LEN], char out[HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < DIGEST_LEN; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[HEX_LEN] = '\0';
}

/* Standard base64 of exactly DIGEST_LEN bytes, its one '=' optional. */
static int
b64_decode(const char *s, size_t n, unsigned char out[DIGEST_LEN])
{
	char in[B64_LEN];
	unsigned char raw[B64_LEN / 4 * 3];

	if (n == B64_LEN - 1) {
		memcpy(in, s, n);
		in[n] = '=';
	} else if (n == B64_LEN) {
		memcpy(in, s, n);
	} else {
		return -1;
	}
	/* EVP_DecodeBlock decodes '=' as zero bits instead of counting it,
	 * so the padding is checked here: exactly one, at the end. */
	if (in[B64_LEN - 1] != '=' || in[B64_LEN - 2] == '=')
		return -1;
	if (EVP_DecodeBlock(raw, (const unsigned char *)in, B64_LEN) != (int)sizeof(raw))
		return -1;
	memcpy(out, raw, DIGEST_LEN);
	return 0;
}

/* Digest bytes in the wire encoding; out has room for B64_LEN + 1. */
static void
encode(enum relay_sig_encoding enc, const unsigned char d[DIGEST_LEN],
       char out[HEX_LEN + 1])
{
	if (enc == RELAY_ENC_BASE64)
		EVP_EncodeBlock((unsigned char *)out, d, DIGEST_LEN);
	else
		hex_encode(d, out);
}

static int
decode(enum relay_sig_encoding enc, const char *s, size_t n,
       unsigned char out[DIGEST_LEN])
{
	return enc == RELAY_ENC_BASE64 ? b64_decode(s, n, out) : hex_decode(s, n, out);
}

/*
 * Digest schemes over the body alone: [prefix] + encoded digest.
 * Every secret is tried; the comparisons do not stop at a match.
 */
static int
verify_body_digest(const struct relay_verify_conf *vc, const char *v, size_t vn,
                   const char *prefix, enum relay_sig_encoding enc,
                   const unsigned char *body, size_t len,
                   const char *malformed, const char **why)
{
	unsigned char want[DIGEST_LEN], got[DIGEST_LEN];
	struct hmac h = { 0 };
	size_t plen = prefix ? strlen(prefix) : 0;
	size_t i;
	int match = 0, rc;

	if (plen > 0) {
		if (vn < plen || strncasecmp(v, prefix, plen) != 0) {
			*why = malformed;
			return -RELAY_ESIG;
		}
		v += plen;
		vn -= plen;
	}
	if (decode(enc, v, vn, got) != 0) {
		*why = malformed;
		return -RELAY_ESIG;
	}
	for (i = 0; i < vc->n_secrets; i++) {
		rc = verify_hmac(&h, i, &vc->secrets[i], NULL, 0, body, len, want);
		if (rc != 0)
			goto out;
		match |= CRYPTO_memcmp(want, got, DIGEST_LEN) == 0;
	}
	rc = match ? 0 : -RELAY_ESIG;
	if (!match)
		*why = text_mismatch;
out:
	hmac_close(&h);
	OPENSSL_cleanse(want, sizeof(want));
	return rc;
}

/*
 * The comma-separated "key=value" items of a Stripe-Signature header.
 * kv_next returns 1 with an item, 0 at the end, -1 for an item that is
 * empty or has no '='.
 */
struct kv_iter {
	const char *p, *end;
};

static int
kv_next(struct kv_iter *it, const char **k, size_t *kn, const char **v, size_t *vn)
{
	const char *item, *comma, *eq;
	size_t n;

	if (it->p == NULL)
		return 0;
	comma = memchr(it->p, ',', (size_t)(it->end - it->p));
	trim(it->p, (size_t)((comma ? comma : it->end) - it->p), &item, &n);
	it->p = comma ? comma + 1 : NULL;
	eq = memchr(item, '=', n);
	if (eq == NULL || eq == item)
		return -1;
	*k = item;
	*kn = (size_t)(eq - item);
	*v = eq + 1;
	*vn = n - *kn - 1;
	return 1;
}

static int
key_is(const char *k, size_t kn, const char *name)
{
	return kn == strlen(name) && memcmp(k, name, kn) == 0;
}

/* Decimal digits only, no sign, within int64. */
static int
parse_unix(const char *s, size_t n, int64_t *out)
{
	int64_t t = 0;
	size_t i;

	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (t > (INT64_MAX - (s[i] - '0')) / 10)
			return -1;
		t = t * 10 + (s[i] - '0');
	}
	*out = t;
	return 0;
}

static int
verify_stripe(const struct relay_verify_conf *vc, const char *v, size_t vn,
              const unsigned char *body, size_t len, int64_t now_s, const char **why)
{
	unsigned char want[DIGEST_LEN], got[DIGEST_LEN];
	char signed_t[STRIPE_T_MAX];
	struct kv_iter it = { v, v + vn };
	struct hmac h = { 0 };
	const char *k, *val;
	size_t kn, valn, i, n_v1 = 0;
	int64_t t = 0;
	uint64_t age;
	int have_t = 0, match = 0, rc, tlen;

	while ((rc = kv_next(&it, &k, &kn, &val, &valn)) != 0) {
		if (rc < 0) {
			*why = schemes[RELAY_SIG_STRIPE].malformed;
			return -RELAY_ESIG;
		}
		if (key_is(k, kn, "t")) {
			if (have_t) {
				*why = "duplicate timestamp in Stripe-Signature header";
				return -RELAY_ESIG;
			}
			if (parse_unix(val, valn, &t) != 0) {
				*why = "malformed timestamp in Stripe-Signature header";
				return -RELAY_ESIG;
			}
			have_t = 1;
		} else if (key_is(k, kn, "v1")) {
			n_v1++;
		}
	}
	if (!have_t) {
		*why = "missing timestamp in Stripe-Signature header";
		return -RELAY_ESIG;
	}
	if (n_v1 == 0) {
		*why = "no v1 signature in Stripe-Signature header";
		return -RELAY_ESIG;
	}
	/* Stripe signs the timestamp as its libraries print it back. */
	tlen = snprintf(signed_t, sizeof(signed_t), "%" PRId64 ".", t);

	for (i = 0; i < vc->n_secrets; i++) {
		rc = verify_hmac(&h, i, &vc->secrets[i], signed_t, (size_t)tlen, body, len, want);
		if (rc != 0)
			goto out;
		it.p = v;
		while (kv_next(&it, &k, &kn, &val, &valn) > 0) {
			/* A v1 that is not a digest simply does not match:
			 * the others may still. */
			if (key_is(k, kn, "v1") && hex_decode(val, valn, got) == 0)
				match |= CRYPTO_memcmp(want, got, DIGEST_LEN) == 0;
		}
	}
	if (!match) {
		*why = text_mismatch;
		rc = -RELAY_ESIG;
		goto out;
	}
	/* Unsigned difference: no overflow for any pair of int64 values. */
	age = t > now_s ? (uint64_t)t - (uint64_t)now_s : (uint64_t)now_s - (uint64_t)t;
	if (vc->tolerance_s > 0 && age > (uint64_t)vc->tolerance_s) {
		*why = "Stripe-Signature timestamp outside tolerance";
		rc = -RELAY_ESTALE;
		goto out;
	}
	rc = 0;
out:
	hmac_close(&h);
	OPENSSL_cleanse(want, sizeof(want));
	return rc;
}

static int
token_in_authorization(const struct relay_verify_conf *vc)
{
	return vc->scheme == RELAY_SIG_TOKEN &&
	       (vc->header == NULL || strcasecmp(vc->header, "Authorization") == 0);
}

static int
verify_token(const struct relay_verify_conf *vc, const char *v, size_t vn,
             const char **why)
{
	static const char bearer[] = "Bearer";
	const size_t blen = sizeof(bearer) - 1;
	unsigned char want[DIGEST_LEN], got[DIGEST_LEN];
	struct hmac h;
	size_t i;
	int match = 0, rc;

	if (token_in_authorization(vc)) {
		if (vn <= blen || strncasecmp(v, bearer, blen) != 0 ||
		    (v[blen] != ' ' && v[blen] != '\t')) {
			*why = "malformed Authorization header (want Bearer)";
			return -RELAY_ESIG;
		}
		trim(v + blen, vn - blen, &v, &vn);
	}
	if (vn == 0) {
		*why = token_in_authorization(vc) ? "malformed Authorization header (want Bearer)"
		                                  : schemes[vc->scheme].malformed;
		return -RELAY_ESIG;
	}
	rc = hmac_open(&h);
	if (rc != 0)
		return rc;
	for (i = 0; i < vc->n_secrets; i++) {
		const struct relay_secret *s = &vc->secrets[i];

		/* An empty secret would accept an empty token: never. */
		if (s->len == 0)
			continue;
		rc = hmac_run(&h, s->data, s->len, NULL, 0, s->data, s->len, want);
		if (rc == 0)
			rc = hmac_run(&h, s->data, s->len, NULL, 0, v, vn, got);
		if (rc != 0)
			goto out;
		match |= CRYPTO_memcmp(want, got, DIGEST_LEN) == 0;
	}
	rc = match ? 0 : -RELAY_ESIG;
	if (!match)
		*why = "token mismatch";
out:
	hmac_close(&h);
	OPENSSL_cleanse(want, sizeof(want));
	OPENSSL_cleanse(got, sizeof(got));
	return rc;
}

static int
scheme_known(enum relay_sig_scheme s)
{
	/* Through int: the enum's type may be unsigned, and a value outside it
	 * (a struct filled by hand) must be refused, not indexed with. */
	return (int)s >= (int)RELAY_SIG_NONE && (int)s <= (int)RELAY_SIG_URL_TOKEN;
}

const char *
relay_signature_header(const struct relay_verify_conf *vc)
{
	if (vc == NULL || !scheme_known(vc->scheme) || vc->scheme == RELAY_SIG_NONE)
		return NULL;
	if (vc->scheme == RELAY_SIG_HMAC_SHA256)
		return vc->header;
	if (vc->scheme == RELAY_SIG_TOKEN)
		return vc->header ? vc->header : "Authorization";
	return schemes[vc->scheme].header;
}

int
relay_signature_verify(const struct relay_verify_conf *vc, relay_header_fn hdr,
                       void *ctx, const unsigned char *body, size_t len,
                       int64_t now_s, const char **why)
{
	const char *ignored, *name, *raw, *v;
	size_t vn;

	if (why == NULL)
		why = &ignored;
	*why = NULL;
	if (vc == NULL || !scheme_known(vc->scheme)) {
		*why = "unknown signature scheme";
		return -RELAY_EINVAL;
	}
	if (vc->scheme == RELAY_SIG_NONE)
		return 0;
	name = relay_signature_header(vc);
	if (hdr == NULL || name == NULL || vc->n_secrets == 0 || vc->secrets == NULL) {
		*why = "signature verification not configured";
		return -RELAY_EINVAL;
	}
	if (body == NULL)
		len = 0;

	raw = hdr(ctx, name);
	if (raw == NULL) {
		*why = vc->scheme == RELAY_SIG_TOKEN && token_in_authorization(vc)
		       ? "missing Authorization header" : schemes[vc->scheme].missing;
		return -RELAY_ESIG;
	}
	trim(raw, strlen(raw), &v, &vn);

	switch (vc->scheme) {
	case RELAY_SIG_SHOPIFY:
	case RELAY_SIG_WOOCOMMERCE:
		return verify_body_digest(vc, v, vn, NULL, RELAY_ENC_BASE64, body, len,
		                          schemes[vc->scheme].malformed, why);
	case RELAY_SIG_GITHUB:
		return verify_body_digest(vc, v, vn, "sha256=", RELAY_ENC_HEX, body, len,
		                          schemes[vc->scheme].malformed, why);
	case RELAY_SIG_HMAC_SHA256:
		return verify_body_digest(vc, v, vn, vc->prefix, vc->encoding, body, len,
		                          schemes[vc->scheme].malformed, why);
	case RELAY_SIG_STRIPE:
		return verify_stripe(vc, v, vn, body, len, now_s, why);
	case RELAY_SIG_TOKEN:
	case RELAY_SIG_URL_TOKEN:
		return verify_token(vc, v, vn, why);
	case RELAY_SIG_NONE:
		break;
	}
	return 0;
}

int
relay_signature_sign(const struct relay_verify_conf *vc, const unsigned char *body,
                     size_t len, int64_t now_s, char *out, size_t outsz)
{
	unsigned char d[DIGEST_LEN];
	char enc[HEX_LEN + 1], signed_t[STRIPE_T_MAX];
	const struct relay_secret *s;
	struct hmac h;
	int n, rc, tlen = 0;

	if (out == NULL || outsz == 0)
		return -RELAY_ETOOBIG;
	out[0] = '\0';
	if (vc == NULL || !scheme_known(vc->scheme))
		return -RELAY_EINVAL;
	if (vc->scheme == RELAY_SIG_NONE)
		return 0;
	if (vc->n_secrets == 0 || vc->secrets == NULL || relay_signature_header(vc) == NULL)
		return -RELAY_EINVAL;
	s = &vc->secrets[0];
	if (body == NULL)
		len = 0;

	if (vc->scheme == RELAY_SIG_TOKEN || vc->scheme == RELAY_SIG_URL_TOKEN) {
		if (s->len == 0 || s->len > INT32_MAX || memchr(s->data, '\0', s->len))
			return -RELAY_EINVAL;
		n = snprintf(out, outsz, "%s%.*s", token_in_authorization(vc) ? "Bearer " : "",
		             (int)s->len, (const char *)s->data);
		goto done;
	}

	if (vc->scheme == RELAY_SIG_STRIPE)
		tlen = snprintf(signed_t, sizeof(signed_t), "%" PRId64 ".", now_s);
	rc = hmac_open(&h);
	if (rc != 0)
		return rc;
	rc = hmac_run(&h, s->data, s->len, signed_t, (size_t)tlen, body, len, d);
	hmac_close(&h);
	if (rc != 0)
		return rc;

	switch (vc->scheme) {
	case RELAY_SIG_SHOPIFY:
	case RELAY_SIG_WOOCOMMERCE:
		encode(RELAY_ENC_BASE64, d, enc);
		n = snprintf(out, outsz, "%s", enc);
		break;
	case RELAY_SIG_GITHUB:
		encode(RELAY_ENC_HEX, d, enc);
		n = snprintf(out, outsz, "sha256=%s", enc);
		break;
	case RELAY_SIG_STRIPE:
		encode(RELAY_ENC_HEX, d, enc);
		n = snprintf(out, outsz, "t=%" PRId64 ",v1=%s", now_s, enc);
		break;
	default:
		encode(vc->encoding, d, enc);
		n = snprintf(out, outsz, "%s%s", vc->prefix ? vc->prefix : "", enc);
		break;
	}
done:
	if (n < 0 || (size_t)n >= outsz) {
		OPENSSL_cleanse(out, outsz);
		out[0] = '\0';
		return -RELAY_ETOOBIG;
	}
	return 0;
}

/* ---- Standard Webhooks signing (HTTP destinations) ---- */

int
relay_whsec_decode(const char *text, size_t len, struct relay_secret *out)
{
	static const char prefix[] = "whsec_";
	const size_t plen = sizeof(prefix) - 1;
	unsigned char *raw;
	size_t n, i, pad = 0;
	int got;

	if (out == NULL)
		return -RELAY_EINVAL;
	out->data = NULL;
	out->len = 0;
	if (text == NULL || len <= plen || memcmp(text, prefix, plen) != 0)
		return -RELAY_EINVAL;
	text += plen;
	n = len - plen;
	if (n % 4 != 0 || n > 4096)
		return -RELAY_EINVAL;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)text[i];

		if (ch == '=') {
			if (i + 2 < n)
				return -RELAY_EINVAL;
			pad++;
		} else if (pad || !((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		                    (ch >= '0' && ch <= '9') || ch == '+' || ch == '/')) {
			return -RELAY_EINVAL;
		}
	}
	if (!(raw = malloc(n / 4 * 3 + 1)))
		return ENOMEM;
	got = EVP_DecodeBlock(raw, (const unsigned char *)text, (int)n);
	if (got < 0 || (size_t)got < pad || (size_t)got - pad == 0) {
		OPENSSL_cleanse(raw, n / 4 * 3 + 1);
		free(raw);
		return -RELAY_EINVAL;
	}
	out->data = raw;
	out->len = (size_t)got - pad;
	return 0;
}

static int
webhook_sign(struct hmac *h, struct relay_webhook_signer *keep,
             const struct relay_secret *secrets, size_t n, const char *msg_id, int64_t ts,
             const unsigned char *body, size_t len, char *out, size_t outsz)
{
	unsigned char d[DIGEST_LEN];
	char enc[B64_LEN + 1], head[256];
	size_t i, used = 0;
	int hn, rc = 0;

	if (out == NULL || outsz == 0)
		return -RELAY_ETOOBIG;
	out[0] = '\0';
	if (secrets == NULL || n == 0 || msg_id == NULL || strchr(msg_id, '.'))
		return -RELAY_EINVAL;
	hn = snprintf(head, sizeof(head), "%s.%" PRId64 ".", msg_id, ts);
	if (hn < 0 || (size_t)hn >= sizeof(head))
		return -RELAY_EINVAL;
	if (body == NULL)
		len = 0;
	for (i = 0; i < n && rc == 0; i++) {
		int w;

		if (secrets[i].len == 0) {
			rc = -RELAY_EINVAL;
			break;
		}
		if (keep && i < SIGNER_KEYS)
			rc = keyed_run(keep, i, &secrets[i], head, (size_t)hn, body, len, d);
		else
			rc = hmac_run(h, secrets[i].data, secrets[i].len, head, (size_t)hn, body, len,
			              d);
		if (rc != 0)
			break;
		EVP_EncodeBlock((unsigned char *)enc, d, DIGEST_LEN);
		w = snprintf(out + used, outsz - used, "%sv1,%s", i ? " " : "", enc);
		if (w < 0 || (size_t)w >= outsz - used)
			rc = -RELAY_ETOOBIG;
		else
			used += (size_t)w;
	}
	OPENSSL_cleanse(d, sizeof(d));
	if (rc != 0)
		out[0] = '\0';
	return rc;
}

int
relay_webhook_sign(const struct relay_secret *secrets, size_t n, const char *msg_id,
                   int64_t ts, const unsigned char *body, size_t len, char *out, size_t outsz)
{
	struct hmac h;
	int rc;

	if (out == NULL || outsz == 0)
		return -RELAY_ETOOBIG;
	out[0] = '\0';
	if ((rc = hmac_open(&h)) != 0)
		return rc;
	rc = webhook_sign(&h, NULL, secrets, n, msg_id, ts, body, len, out, outsz);
	hmac_close(&h);
	return rc;
}

/*
 * A signer keeps its HMAC contexts from one message to the next: fetching
 * the algorithm costs more than signing a small body, and keying a context
 * (hashing the key's two pads, three digest set-ups) cost a third of a
 * signature. Each of the first SIGNER_KEYS secrets has a context keyed with
 * it, and a copy of the key to tell whether the secret it is asked for is
 * still that one (a reload may bring another secret at the same address).
 */
struct signer_key {
	EVP_MAC_CTX *ctx;
	unsigned char *key;
	size_t len;
};

struct relay_webhook_signer {
	struct hmac h;
	struct signer_key keyed[SIGNER_KEYS];
};

static void
signer_key_drop(struct signer_key *k)
{
	EVP_MAC_CTX_free(k->ctx);
	OPENSSL_clear_free(k->key, k->len);
	k->ctx = NULL;
	k->key = NULL;
	k->len = 0;
}

/* HMAC-SHA256(secret i, pre || data) with the context kept for slot i. */
static int
keyed_run(struct relay_webhook_signer *s, size_t i, const struct relay_secret *key,
          const void *pre, size_t prelen, const void *data, size_t len,
          unsigned char out[DIGEST_LEN])
{
	struct signer_key *k = &s->keyed[i];
	size_t outlen = 0;

	if (!k->ctx || k->len != key->len || CRYPTO_memcmp(k->key, key->data, key->len) != 0) {
		OSSL_PARAM params[2];

		signer_key_drop(k);
		params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
		                                             (char *)"SHA256", 0);
		params[1] = OSSL_PARAM_construct_end();
		if (!(k->ctx = EVP_MAC_CTX_new(s->h.mac)) ||
		    !(k->key = OPENSSL_memdup(key->data, key->len)))
			goto fail;
		k->len = key->len;
		if (!EVP_MAC_init(k->ctx, key->data, key->len, params))
			goto fail;
	} else if (!EVP_MAC_init(k->ctx, NULL, 0, NULL)) {
		/* A NULL key restarts the context with the key it has. */
		goto fail;
	}
	if ((prelen > 0 && !EVP_MAC_update(k->ctx, pre, prelen)) ||
	    (len > 0 && !EVP_MAC_update(k->ctx, data, len)) ||
	    !EVP_MAC_final(k->ctx, out, &outlen, DIGEST_LEN) || outlen != DIGEST_LEN)
		goto fail;
	return 0;
fail:
	signer_key_drop(k);
	return ENOMEM;
}

int
relay_webhook_signer_new(struct relay_webhook_signer **out)
{
	struct relay_webhook_signer *s = calloc(1, sizeof(*s));

	if (!s)
		return ENOMEM;
	if (hmac_open(&s->h) != 0) {
		free(s);
		return ENOMEM;
	}
	*out = s;
	return 0;
}

void
relay_webhook_signer_free(struct relay_webhook_signer *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < SIGNER_KEYS; i++)
		signer_key_drop(&s->keyed[i]);
	hmac_close(&s->h);
	free(s);
}

int
relay_webhook_signer_sign(struct relay_webhook_signer *s, const struct relay_secret *secrets,
                          size_t n, const char *msg_id, int64_t ts, const unsigned char *body,
                          size_t len, char *out, size_t outsz)
{
	if (out == NULL || outsz == 0)
		return -RELAY_ETOOBIG;
	out[0] = '\0';
	if (s == NULL)
		return -RELAY_EINVAL;
	return webhook_sign(&s->h, s, secrets, n, msg_id, ts, body, len, out, outsz);
}
