/*
 * odoo-relay: webhook signature verification.
 *
 * One request (its headers and raw body) is checked against a source's
 * struct relay_verify_conf (config.h). The schemes:
 *
 *   shopify      X-Shopify-Hmac-Sha256: base64 HMAC-SHA256(secret, body)
 *   woocommerce  X-WC-Webhook-Signature: base64 HMAC-SHA256(secret, body)
 *   github       X-Hub-Signature-256: "sha256=" hex HMAC-SHA256(secret, body)
 *                (hex digits of either case)
 *   stripe       Stripe-Signature: "t=<unix>,v1=<hex>[,v1=<hex>...][,v0=...]",
 *                each v1 a hex HMAC-SHA256(secret, "<t>.<body>"); any v1
 *                matching under any secret accepts; exactly one t required;
 *                other keys (v0, ...) are ignored
 *   hmac-sha256  vc->header: [vc->prefix] + HMAC-SHA256(secret, body) in
 *                vc->encoding (hex of either case, or base64 with or without
 *                its '=' padding); a configured prefix must be present
 *                (compared case-insensitively)
 *   token        vc->header NULL or "Authorization": "Bearer <secret>" (the
 *                word Bearer in any case); any other header: the value is the
 *                secret. An empty secret never matches.
 *   url_token    the token the sender put in the URL path (POST
 *                /hooks/<source>/<token>), which the HTTP layer hands over as
 *                the pseudo-header RELAY_URL_TOKEN_HEADER (no real header has
 *                a name starting with ':'); compared as token is, never in the
 *                texts. For Odoo's webhooks, which carry nothing else.
 *   none         everything is accepted
 *
 * Every secret of vc->secrets is tried, so a secret can be rotated by
 * listing the new one next to the old. Digests are decoded to their fixed
 * 32 bytes and compared with CRYPTO_memcmp against every secret's digest
 * without stopping at the first match; tokens are compared as
 * HMAC(secret, token) against HMAC(secret, secret) so that neither the
 * bytes nor the length of the secret shows in the timing. Leading and
 * trailing spaces and tabs of a header value are ignored.
 *
 * Pure: no I/O, no global state; thread-safe. Uses OpenSSL 3 libcrypto and
 * never leaves entries on the OpenSSL error queue for malformed input.
 */
#ifndef ODOO_RELAY_SIGNATURE_H
#define ODOO_RELAY_SIGNATURE_H

#include <stddef.h>
#include <stdint.h>

#include "odoo_relay/config.h"

/* The name under which the header lookup answers the URL's token. */
#define RELAY_URL_TOKEN_HEADER ":url-token"

/*
 * relay_header_fn - look up a request header for the verifier.
 * name is matched case-insensitively. Returns the value (NUL-terminated,
 * owned by the caller of the verifier, valid for the duration of the call
 * that received the callback), or NULL when the header is absent. When a
 * header occurs more than once, the callback chooses (the HTTP layer
 * returns the first).
 */
typedef const char *(*relay_header_fn)(void *ctx, const char *name);

/* The longest header value relay_signature_sign can produce for the fixed
 * schemes (stripe with a 20-digit timestamp); token and prefixed
 * hmac-sha256 values are longer by the secret or prefix length. */
#define RELAY_SIGNATURE_MAX 128

/*
 * relay_signature_verify - check one request.
 *
 * vc: the source's verification settings (borrowed). hdr/ctx: header lookup
 * (hdr may be NULL only for scheme none). body/len: the raw body exactly as
 * received (body may be NULL when len is 0). now_s: the current wall clock
 * time in seconds since the epoch, used by stripe only. why: if not NULL,
 * receives a short static text on failure (e.g. "missing
 * X-Shopify-Hmac-Sha256 header", "signature mismatch") and NULL on success;
 * it never contains secret or payload bytes.
 *
 * Returns:
 *   0              the signature verifies (or the scheme is none)
 *   -RELAY_ESIG    the header is missing or malformed, or no secret verifies
 *   -RELAY_ESTALE  stripe: the signature verifies but |now_s - t| exceeds
 *                  vc->tolerance_s (a tolerance <= 0 disables the check,
 *                  as Stripe's own libraries do)
 *   -RELAY_EINVAL  vc is unusable: NULL, an unknown scheme, no secrets,
 *                  hmac-sha256 without a header, or hdr NULL (a
 *                  configuration error that config.c should have caught)
 *   ENOMEM         libcrypto could not allocate its MAC context
 * The signature is checked before the stripe timestamp, so -RELAY_ESTALE
 * means an authentic but old (or early) request.
 *
 * Threads: any, at once. Each calling thread keeps HMAC contexts keyed
 * with the first secrets it verified with (a copy of them, cleansed when
 * replaced) until it ends.
 */
int relay_signature_verify(const struct relay_verify_conf *vc, relay_header_fn hdr,
                           void *ctx, const unsigned char *body, size_t len,
                           int64_t now_s, const char **why);

/*
 * relay_signature_sign - the header value a sender would send for body,
 * under vc's first secret; for tests, benchmarks and the emulator.
 *
 * Writes a NUL-terminated value into out (size outsz): base64 for shopify
 * and woocommerce, "sha256=<lowercase hex>" for github,
 * "t=<now_s>,v1=<lowercase hex>" for stripe, prefix + digest in vc->encoding
 * (base64 padded) for hmac-sha256, "Bearer <secret>" or the bare secret for
 * token, and "" for none. relay_signature_header() names the header.
 *
 * Returns 0, -RELAY_ETOOBIG if outsz is too small (out is then ""),
 * -RELAY_EINVAL for an unusable vc (as above, or a token secret containing
 * a NUL byte), or ENOMEM. Thread-safe.
 */
int relay_signature_sign(const struct relay_verify_conf *vc, const unsigned char *body,
                         size_t len, int64_t now_s, char *out, size_t outsz);

/*
 * relay_signature_header - the name of the header vc's scheme reads
 * ("X-Shopify-Hmac-Sha256", vc->header, "Authorization" for a token without
 * a header, ...), or NULL for none and unknown schemes. The result is static
 * or borrowed from vc. Thread-safe.
 */
const char *relay_signature_header(const struct relay_verify_conf *vc);

/*
 * Signing the Standard Webhooks way, for HTTP destinations.
 *
 * relay_whsec_decode - the key of a "whsec_<base64>" secret (len bytes at
 * text, no trailing newline): the base64 part decoded, into out->data
 * (malloc'd; the caller wipes and frees it) and out->len. Returns 0,
 * -RELAY_EINVAL when text does not start with "whsec_", its base64 is not
 * canonical padded standard base64, or it decodes to nothing; ENOMEM. On
 * failure out is empty. Pure.
 *
 * relay_webhook_sign - the value of the webhook-signature header for a
 * message: for each of the n secrets (decoded keys) in order,
 * "v1,<base64 HMAC-SHA256(key, msg_id "." ts "." body)>", separated by one
 * space (several during a rotation). msg_id must not contain '.'. Returns 0,
 * -RELAY_ETOOBIG when out (outsz bytes; 46 per secret always suffice) is too
 * small, -RELAY_EINVAL for no secrets, an empty key, or a bad msg_id, or
 * ENOMEM. On failure out is "". Pure; thread-safe.
 */
int relay_whsec_decode(const char *text, size_t len, struct relay_secret *out);
int relay_webhook_sign(const struct relay_secret *secrets, size_t n, const char *msg_id,
                       int64_t ts, const unsigned char *body, size_t len, char *out,
                       size_t outsz);

/*
 * relay_webhook_signer_new / _free / _sign - the same signature, with HMAC
 * contexts kept from one message to the next, each keyed with one of the
 * first four secrets it was last given (fetching the algorithm and keying a
 * context cost about as much as signing a small body): for a sender of many
 * messages. A secret that differs from the one a context holds re-keys it,
 * so the caller may pass other secrets at any time (after a reload).
 * new returns 0 or ENOMEM; sign returns as relay_webhook_sign, and
 * -RELAY_EINVAL for a NULL signer. A signer is used by one thread at a time;
 * it keeps copies of the keys until free, which wipes them. NULL frees
 * nothing.
 */
struct relay_webhook_signer;
int relay_webhook_signer_new(struct relay_webhook_signer **out);
void relay_webhook_signer_free(struct relay_webhook_signer *s);
int relay_webhook_signer_sign(struct relay_webhook_signer *s, const struct relay_secret *secrets,
                              size_t n, const char *msg_id, int64_t ts,
                              const unsigned char *body, size_t len, char *out, size_t outsz);

#endif
