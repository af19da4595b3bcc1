/*
 * odoo-relay: what one incoming webhook means for its source.
 *
 * For a request to POST /hooks/<source>, relay_source_extract verifies the
 * signature, parses the body as JSON when the source needs it, and takes
 * the dedup key (the sender's event id), the topic (event type) and the
 * lane (ordering key) from the configured headers or JSON pointers.
 * Limits on body size, Content-Type and timeouts are the HTTP layer's; so
 * is choosing which headers to keep with the event.
 *
 * A source of kind odoo (Odoo's "Send Webhook Notification", which posts
 * {"_action", "_id", "_model", <fields>} and can carry no secret but the
 * URL): its verification is url_token (the HTTP layer answers the token of
 * POST /hooks/<source>/<token> under RELAY_URL_TOKEN_HEADER, signature.h);
 * its dedup key is "sha256:" and the lower-case hex SHA-256 of the raw body
 * (a replayed request counts once within dedup_window_s); its lane is
 * "<_model>/<_id>" (both required: 400 otherwise); its topic the configured
 * ref, /_model unless set.
 *
 * Pure: no I/O, no global state; thread-safe on distinct outputs.
 */
#ifndef ODOO_RELAY_SOURCE_H
#define ODOO_RELAY_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "odoo_relay/config.h"
#include "odoo_relay/signature.h"

/* The longest dedup key, topic and lane accepted, in bytes. */
#define RELAY_SOURCE_VALUE_MAX 512

/* Room for a formatted failure text (it is cut to fit). */
#define RELAY_EXTRACT_WHY_MAX 320

/*
 * The result of relay_source_extract. The caller owns the strings and frees
 * them with relay_extract_clear.
 */
struct relay_extract {
	char *dedup_key;    /* never NULL nor "" after success */
	char *topic;        /* "" when the source has no topic or it is absent */
	char *lane;         /* NULL: no lane (not configured, absent, null or "") */
	json_t *json;       /* the parsed body while relay_source_extract runs;
	                       always NULL when it returns */
	char why_buf[RELAY_EXTRACT_WHY_MAX]; /* where formatted why texts live */
};

/*
 * relay_source_extract - verify one request and extract its keys.
 *
 * sc: the source (borrowed). hdr/ctx: the request's header lookup (see
 * signature.h); hdr may be NULL only when the scheme is none and no ref is
 * a header. body/len: the raw body (body may be NULL when len is 0).
 * now_s: wall clock seconds, for timestamped signatures. out: overwritten
 * (clear a previous result first); filled only on success, all pointers
 * NULL after a failure. http_status (may be NULL): 0 on success, else the
 * status to answer with. why (may be NULL): NULL on success, else a short
 * lower-case text for the error body and the log, e.g. "signature
 * mismatch", "body is not valid JSON: invalid token, line 1, column 2",
 * "dedup key /id not found in body", "missing header X-GitHub-Delivery".
 * It points to static text or into out->why_buf (valid until out is
 * cleared or reused) and never holds secret or payload bytes: jansson's
 * "near '...'" quote of the body is left out.
 *
 * The body is parsed (any JSON value at the top level, duplicate keys
 * resolved to the last, as Odoo's Python does) only when sc->require_json
 * is set or a ref is a JSON pointer, and only after the signature verified.
 * A JSON null counts as absent; a number or boolean becomes its text
 * (relay_json_scalar_text in jsonptr.h).
 *
 * Returns, with the status:
 *   0                               success
 *   -RELAY_ESIG, -RELAY_ESTALE  401 signature (see relay_signature_verify)
 *   -RELAY_EINVAL               400 body is not JSON though needed, or a
 *                                   value is an object or an array
 *   -RELAY_EPATH                400 the dedup key is absent or ""
 *   -RELAY_ETOOBIG              400 a value over RELAY_SOURCE_VALUE_MAX
 *   -RELAY_ECONFIG              500 the source is unusable (no dedup ref, an
 *                                   invalid pointer, a bad verify block):
 *                                   config.c should have refused it
 *   -RELAY_EINVAL               500 hdr is NULL though the source reads a
 *                                   header (out NULL: returned, nothing set)
 *   ENOMEM                      503
 */
int relay_source_extract(const struct relay_source_conf *sc, relay_header_fn hdr,
                         void *ctx, const unsigned char *body, size_t len,
                         int64_t now_s, struct relay_extract *out,
                         int *http_status, const char **why);

/* relay_extract_clear - free what ex holds and zero it; NULL is a no-op. */
void relay_extract_clear(struct relay_extract *ex);

#endif
