/* Per-source verification and key extraction: see include/odoo_relay/source.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "odoo_relay/error.h"
#include "odoo_relay/json_arena.h"
#include "odoo_relay/jsonptr.h"
#include "odoo_relay/source.h"

/* Which value is being taken, for the texts and the rules on absence. */
enum which { WHICH_DEDUP, WHICH_TOPIC, WHICH_LANE };

static const char *const which_name[] = {
	[WHICH_DEDUP] = "dedup key",
	[WHICH_TOPIC] = "topic",
	[WHICH_LANE] = "lane",
};

/* Failure: the status and text for the caller, the code to return. */
struct fail {
	int status;
	const char *why;
};

static int
failf(struct fail *f, int status, int rc, const char *why)
{
	f->status = status;
	f->why = why;
	return rc;
}

static void
free_fields(struct relay_extract *ex)
{
	free(ex->dedup_key);
	free(ex->topic);
	free(ex->lane);
	json_decref(ex->json);
	ex->dedup_key = ex->topic = ex->lane = NULL;
	ex->json = NULL;
}

void
relay_extract_clear(struct relay_extract *ex)
{
	if (ex == NULL)
		return;
	free_fields(ex);
	ex->why_buf[0] = '\0';
}

static int
needs_json(const struct relay_source_conf *sc)
{
	return sc->require_json || sc->kind == RELAY_SOURCE_ODOO || sc->dedup.kind == RELAY_REF_POINTER ||
	       sc->topic.kind == RELAY_REF_POINTER || sc->lane.kind == RELAY_REF_POINTER;
}

/*
 * Parse the body. jansson's text may quote the offending token ("near
 * 'abc'"): the body is the sender's data and stays out of errors and logs.
 */
static int
parse_body(const unsigned char *body, size_t len, struct relay_extract *out,
           struct fail *f)
{
	json_error_t jerr;
	char *near;

	out->json = json_loadb(body ? (const char *)body : "", len, JSON_DECODE_ANY, &jerr);
	if (out->json != NULL)
		return 0;
	if (json_error_code(&jerr) == json_error_out_of_memory)
		return failf(f, 503, ENOMEM, "out of memory");
	near = strstr(jerr.text, " near ");
	if (near != NULL)
		*near = '\0';
	snprintf(out->why_buf, sizeof(out->why_buf),
	         "body is not valid JSON: %s, line %d, column %d",
	         jerr.text, jerr.line, jerr.column);
	return failf(f, 400, -RELAY_EINVAL, out->why_buf);
}

/*
 * The text of one ref into *val (malloc'd), or *val NULL when it is absent
 * (not configured, header missing, pointer absent, JSON null).
 */
static int
ref_value(const struct relay_ref *ref, enum which w, relay_header_fn hdr, void *ctx,
          struct relay_extract *out, char **val, struct fail *f)
{
	char text[RELAY_SOURCE_VALUE_MAX + 1];
	const char *s = NULL;
	json_t *node;
	int rc;

	*val = NULL;
	switch (ref->kind) {
	case RELAY_REF_NONE:
		return 0;
	case RELAY_REF_HEADER:
		if (ref->name == NULL)
			return failf(f, 500, -RELAY_ECONFIG, "source has a header ref without a name");
		if (hdr == NULL)
			return failf(f, 500, -RELAY_EINVAL, "no header lookup for a header ref");
		s = hdr(ctx, ref->name);
		if (s == NULL)
			return 0;
		if (strlen(s) > RELAY_SOURCE_VALUE_MAX) {
			snprintf(out->why_buf, sizeof(out->why_buf),
			         "%s header %s longer than %d bytes",
			         which_name[w], ref->name, RELAY_SOURCE_VALUE_MAX);
			return failf(f, 400, -RELAY_ETOOBIG, out->why_buf);
		}
		break;
	case RELAY_REF_POINTER:
		if (!relay_jsonptr_valid(ref->name))
			return failf(f, 500, -RELAY_ECONFIG, "source has an invalid JSON pointer");
		node = relay_jsonptr_get(out->json, ref->name);
		if (node == NULL || json_is_null(node))
			return 0;
		rc = relay_json_scalar_text(node, text, sizeof(text));
		if (rc == -RELAY_ETOOBIG) {
			snprintf(out->why_buf, sizeof(out->why_buf), "%s %s longer than %d bytes",
			         which_name[w], ref->name, RELAY_SOURCE_VALUE_MAX);
			return failf(f, 400, rc, out->why_buf);
		}
		if (rc != 0) {
			snprintf(out->why_buf, sizeof(out->why_buf), "%s %s is %s",
			         which_name[w], ref->name,
			         json_is_object(node) || json_is_array(node)
			         ? "an object or array, not a scalar" : "not usable as text");
			return failf(f, 400, -RELAY_EINVAL, out->why_buf);
		}
		s = text;
		break;
	default:
		return failf(f, 500, -RELAY_ECONFIG, "source has an unknown ref kind");
	}
	*val = strdup(s);
	if (*val == NULL)
		return failf(f, 503, ENOMEM, "out of memory");
	return 0;
}

/* The dedup key must be there and not be empty. */
static int
dedup_absent(const struct relay_ref *ref, int empty, struct relay_extract *out,
             struct fail *f)
{
	if (ref->kind == RELAY_REF_HEADER)
		snprintf(out->why_buf, sizeof(out->why_buf), "%s header %s",
		         empty ? "empty" : "missing", ref->name);
	else
		snprintf(out->why_buf, sizeof(out->why_buf), "dedup key %s %s",
		         ref->name, empty ? "is empty in body" : "not found in body");
	return failf(f, 400, -RELAY_EPATH, out->why_buf);
}

/* Odoo's post: the dedup key is a digest of the whole body ("sha256:<hex>"),
 * so that a request Odoo replays (its RPC layer retries a transaction after
 * a serialization failure) counts once, and two changes never share one. */
static int
odoo_dedup(const unsigned char *body, size_t len, struct relay_extract *out, struct fail *f)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;
	char *s;

	if (!EVP_Digest(body ? body : (const unsigned char *)"", len, d, &n, EVP_sha256(), NULL))
		return failf(f, 503, ENOMEM, "out of memory");
	if (!(s = malloc(7 + 2 * n + 1)))
		return failf(f, 503, ENOMEM, "out of memory");
	memcpy(s, "sha256:", 7);
	for (i = 0; i < n; i++) {
		s[7 + 2 * i] = digits[d[i] >> 4];
		s[7 + 2 * i + 1] = digits[d[i] & 0x0f];
	}
	s[7 + 2 * n] = '\0';
	out->dedup_key = s;
	return 0;
}

/* Odoo's post: the lane is the record, "<_model>/<_id>". */
static int
odoo_lane(struct relay_extract *out, struct fail *f)
{
	static const char *const names[] = { "/_model", "/_id" };
	char text[2][RELAY_SOURCE_VALUE_MAX + 1];
	size_t i;

	for (i = 0; i < 2; i++) {
		json_t *node = relay_jsonptr_get(out->json, names[i]);
		int rc = node && !json_is_null(node)
		         ? relay_json_scalar_text(node, text[i], sizeof(text[i])) : -RELAY_EPATH;

		if (rc == 0 && text[i][0] == '\0')
			rc = -RELAY_EPATH;
		if (rc != 0) {
			snprintf(out->why_buf, sizeof(out->why_buf), "odoo webhook without a usable %s "
			         "(send it from an automation rule's \"Send Webhook Notification\")",
			         names[i]);
			return failf(f, 400, rc == -RELAY_ETOOBIG ? rc : -RELAY_EPATH, out->why_buf);
		}
	}
	if (strlen(text[0]) + strlen(text[1]) + 1 > RELAY_SOURCE_VALUE_MAX) {
		snprintf(out->why_buf, sizeof(out->why_buf), "lane longer than %d bytes",
		         RELAY_SOURCE_VALUE_MAX);
		return failf(f, 400, -RELAY_ETOOBIG, out->why_buf);
	}
	if (asprintf(&out->lane, "%s/%s", text[0], text[1]) < 0) {
		out->lane = NULL;
		return failf(f, 503, ENOMEM, "out of memory");
	}
	return 0;
}

int
relay_source_extract(const struct relay_source_conf *sc, relay_header_fn hdr,
                     void *ctx, const unsigned char *body, size_t len,
                     int64_t now_s, struct relay_extract *out,
                     int *http_status, const char **why)
{
	struct fail f = { 0, NULL };
	int rc;

	if (out == NULL)
		return -RELAY_EINVAL;
	memset(out, 0, sizeof(*out));
	if (sc == NULL || (sc->kind != RELAY_SOURCE_ODOO &&
	                   (sc->dedup.kind == RELAY_REF_NONE || sc->dedup.name == NULL))) {
		rc = failf(&f, 500, -RELAY_ECONFIG, "source has no dedup key");
		goto fail;
	}
	if (body == NULL)
		len = 0;
	/* The body's tree lives only in this function: its blocks come from
	 * the thread's arena (json_arena.h), and all go back before it returns. */
	relay_json_arena_begin();

	rc = relay_signature_verify(&sc->verify, hdr, ctx, body, len, now_s, &f.why);
	if (rc == -RELAY_ESIG || rc == -RELAY_ESTALE) {
		f.status = 401;
		goto fail;
	}
	if (rc == -RELAY_EINVAL) {
		rc = failf(&f, 500, -RELAY_ECONFIG, f.why);
		goto fail;
	}
	if (rc != 0) {
		rc = failf(&f, 503, rc, "out of memory");
		goto fail;
	}

	if (needs_json(sc)) {
		rc = parse_body(body, len, out, &f);
		if (rc != 0)
			goto fail;
	}

	if (sc->kind == RELAY_SOURCE_ODOO)
		rc = odoo_dedup(body, len, out, &f);
	else
		rc = ref_value(&sc->dedup, WHICH_DEDUP, hdr, ctx, out, &out->dedup_key, &f);
	if (rc != 0)
		goto fail;
	if (out->dedup_key == NULL || out->dedup_key[0] == '\0') {
		rc = dedup_absent(&sc->dedup, out->dedup_key != NULL, out, &f);
		goto fail;
	}
	rc = ref_value(&sc->topic, WHICH_TOPIC, hdr, ctx, out, &out->topic, &f);
	if (rc != 0)
		goto fail;
	if (out->topic == NULL) {
		out->topic = strdup("");
		if (out->topic == NULL) {
			rc = failf(&f, 503, ENOMEM, "out of memory");
			goto fail;
		}
	}
	if (sc->kind == RELAY_SOURCE_ODOO)
		rc = odoo_lane(out, &f);
	else
		rc = ref_value(&sc->lane, WHICH_LANE, hdr, ctx, out, &out->lane, &f);
	if (rc != 0)
		goto fail;
	/* An empty lane would put unrelated events in one queue. */
	if (out->lane != NULL && out->lane[0] == '\0') {
		free(out->lane);
		out->lane = NULL;
	}

	json_decref(out->json);
	out->json = NULL;
	relay_json_arena_end();
	if (http_status)
		*http_status = 0;
	if (why)
		*why = NULL;
	return 0;

fail:
	free_fields(out);
	relay_json_arena_end();
	if (http_status)
		*http_status = f.status;
	if (why)
		*why = f.why;
	return rc;
}
