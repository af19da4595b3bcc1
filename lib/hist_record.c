/*
 * The records of the history, the audit trail and edited bodies: see
 * include/odoo_relay/hist_record.h, whose format comment this implements.
 * Encoding grows a buffer as it goes; decoding checks every length against
 * what is left before it allocates, and refuses trailing bytes.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "odoo_relay/error.h"
#include "odoo_relay/hist_record.h"
#include "wire_int.h"

#define HR_NULL RELAY_WIRE_NULL

/* ---- encoding ---- */

struct out {
	unsigned char *p;
	size_t len, cap;
	int err;
};

static void
need(struct out *o, size_t n)
{
	unsigned char *p;
	size_t cap;

	if (o->err || o->len + n <= o->cap)
		return;
	cap = o->cap ? o->cap : 256;
	while (cap < o->len + n)
		cap *= 2;
	if (!(p = realloc(o->p, cap))) {
		o->err = ENOMEM;
		return;
	}
	o->p = p;
	o->cap = cap;
}

static void
put_be(struct out *o, uint64_t v, size_t n)
{
	need(o, n);
	if (o->err)
		return;
	relay_wire_put_be(o->p + o->len, v, n);
	o->len += n;
}

static void
put_raw(struct out *o, const void *p, size_t n)
{
	need(o, n);
	if (o->err || !n)
		return;
	memcpy(o->p + o->len, p, n);
	o->len += n;
}

static void
put_bytes(struct out *o, const void *p, size_t n, int is_null)
{
	if (is_null) {
		put_be(o, HR_NULL, 4);
		return;
	}
	if (n >= HR_NULL) {
		o->err = -RELAY_ETOOBIG;
		return;
	}
	put_be(o, n, 4);
	put_raw(o, p, n);
}

static void
put_str(struct out *o, const char *s)
{
	put_bytes(o, s, s ? strlen(s) : 0, s == NULL);
}

static int
out_end(struct out *o, unsigned char **buf, size_t *len)
{
	if (o->err) {
		free(o->p);
		*buf = NULL;
		*len = 0;
		return o->err;
	}
	*buf = o->p;
	*len = o->len;
	return 0;
}

/* ---- decoding ---- */

static int
get_str(struct relay_wire_in *in, char **out)
{
	return relay_wire_bytes(in, 0, out, NULL);
}

static int
get_format(struct relay_wire_in *in, unsigned known)
{
	uint64_t f;
	int rc = relay_wire_be(in, 1, &f);

	if (rc)
		return rc;
	if (f == 0)
		return -RELAY_ECORRUPT;
	return f > known ? -RELAY_EVERSION : 0;
}

/* ---- history ---- */

const char *
relay_hist_outcome_name(int outcome)
{
	switch (outcome) {
	case RELAY_HIST_DELIVERED: return "delivered";
	case RELAY_HIST_SUPERSEDED: return "superseded";
	case RELAY_HIST_STALE: return "stale";
	case RELAY_HIST_DROPPED: return "dropped";
	case RELAY_HIST_UNROUTED: return "unrouted";
	case RELAY_HIST_PHANTOM: return "phantom";
	default: return "unknown";
	}
}

/* SHA-256, fetched once for the process (as the HMAC in signature.c): the
 * implicit fetch behind EVP_sha256() was half the cost of a digest of a
 * small body, on the writer thread for every settled event. */
static _Atomic(EVP_MD *) sha256_alg;

static EVP_MD *
sha256_algorithm(void)
{
	EVP_MD *md = atomic_load(&sha256_alg), *none = NULL;

	if (md)
		return md;
	if (!(md = EVP_MD_fetch(NULL, "SHA256", NULL)))
		return NULL;
	if (!atomic_compare_exchange_strong(&sha256_alg, &none, md)) {
		EVP_MD_free(md);
		md = none;
	}
	return md;
}

int
relay_hist_digest(const void *p, size_t len, unsigned char out[32])
{
	EVP_MD *md = sha256_algorithm();
	unsigned int n = 0;

	if (!md)
		return ENOMEM;
	return EVP_Digest(p ? p : "", len, out, &n, md, NULL) == 1 && n == 32 ? 0 : ENOMEM;
}

int
relay_hist_encode(const struct relay_hist_entry *e, unsigned char **buf, size_t *len)
{
	struct out o = { 0 };
	struct relay_event ev = e->ev; /* shallow: read only */
	unsigned char *rec;
	size_t rlen;
	int rc;

	*buf = NULL;
	*len = 0;
	if (e->outcome < 1 || e->outcome > RELAY_HIST_OUTCOME_MAX)
		return -RELAY_EINVAL;
	if (!e->body_kept) {
		ev.body = NULL;
		ev.body_len = 0;
	}
	if ((rc = relay_record_encode(&ev, &rec, &rlen)))
		return rc;
	put_be(&o, RELAY_HIST_FORMAT, 1);
	put_be(&o, (uint64_t)e->outcome, 1);
	put_be(&o, e->body_kept ? 1 : 0, 1);
	put_be(&o, (uint64_t)e->settled_ms, 8);
	put_be(&o, (uint64_t)e->expiry_ms, 8);
	put_str(&o, e->destination);
	put_be(&o, e->batch_id, 8);
	put_be(&o, e->batch_size, 4);
	put_be(&o, (uint32_t)e->batch_row, 4);
	put_be(&o, e->http_status, 2);
	put_str(&o, e->xid);
	put_str(&o, e->odoo_model);
	put_be(&o, (uint64_t)e->odoo_id, 8);
	put_str(&o, e->note);
	put_raw(&o, e->digest, 32);
	put_bytes(&o, rec, rlen, 0);
	free(rec);
	return out_end(&o, buf, len);
}

int
relay_hist_decode(const void *buf, size_t len, struct relay_hist_entry *e)
{
	struct relay_wire_in in = { buf, len };
	uint64_t v;
	char *rec = NULL;
	size_t rlen;
	int rc;

	memset(e, 0, sizeof(*e));
	if (!buf)
		return -RELAY_ECORRUPT;
	if ((rc = get_format(&in, RELAY_HIST_FORMAT)))
		return rc;
	if ((rc = relay_wire_be(&in, 1, &v)))
		goto fail;
	if (v < 1 || v > RELAY_HIST_OUTCOME_MAX) {
		rc = -RELAY_ECORRUPT;
		goto fail;
	}
	e->outcome = (int)v;
	if ((rc = relay_wire_be(&in, 1, &v)))
		goto fail;
	if (v > 1) {
		rc = -RELAY_ECORRUPT;
		goto fail;
	}
	e->body_kept = (int)v;
	if ((rc = relay_wire_i64(&in, &e->settled_ms)) || (rc = relay_wire_i64(&in, &e->expiry_ms)) ||
	    (rc = get_str(&in, &e->destination)) || (rc = relay_wire_be(&in, 8, &e->batch_id)))
		goto fail;
	if ((rc = relay_wire_be(&in, 4, &v)))
		goto fail;
	e->batch_size = (uint32_t)v;
	if ((rc = relay_wire_be(&in, 4, &v)))
		goto fail;
	e->batch_row = (int32_t)(uint32_t)v;
	if ((rc = relay_wire_be(&in, 2, &v)))
		goto fail;
	e->http_status = (uint16_t)v;
	if ((rc = get_str(&in, &e->xid)) || (rc = get_str(&in, &e->odoo_model)) ||
	    (rc = relay_wire_i64(&in, &e->odoo_id)) || (rc = get_str(&in, &e->note)))
		goto fail;
	if (in.left < 32) {
		rc = -RELAY_ECORRUPT;
		goto fail;
	}
	memcpy(e->digest, in.p, 32);
	in.p += 32;
	in.left -= 32;
	if ((rc = relay_wire_bytes(&in, 1, &rec, &rlen)))
		goto fail;
	if (!rec || in.left) {
		free(rec);
		rc = -RELAY_ECORRUPT;
		goto fail;
	}
	rc = relay_record_decode(rec, rlen, &e->ev);
	free(rec);
	if (rc)
		goto fail;
	/* Canonical: an entry without its body holds none (decode then encode
	 * gives back the same bytes). */
	if (!e->body_kept && e->ev.body) {
		rc = -RELAY_ECORRUPT;
		goto fail;
	}
	return 0;
fail:
	relay_hist_clear(e);
	return rc;
}

void
relay_hist_clear(struct relay_hist_entry *e)
{
	if (!e)
		return;
	free(e->destination);
	free(e->xid);
	free(e->odoo_model);
	free(e->note);
	relay_event_clear(&e->ev);
	memset(e, 0, sizeof(*e));
}

/* ---- audit ---- */

int
relay_audit_encode(const struct relay_audit_entry *e, unsigned char **buf, size_t *len)
{
	struct out o = { 0 };
	size_t n = e->n_ids < RELAY_AUDIT_MAX_IDS ? e->n_ids : RELAY_AUDIT_MAX_IDS;

	put_be(&o, RELAY_AUDIT_FORMAT, 1);
	put_be(&o, (uint64_t)e->at_ms, 8);
	put_be(&o, e->uid, 4);
	put_str(&o, e->user);
	put_str(&o, e->verb);
	put_str(&o, e->what);
	put_be(&o, e->count, 8);
	put_be(&o, n, 4);
	for (size_t i = 0; i < n; i++)
		put_be(&o, e->ids[i], 8);
	return out_end(&o, buf, len);
}

int
relay_audit_decode(const void *buf, size_t len, struct relay_audit_entry *e)
{
	struct relay_wire_in in = { buf, len };
	uint64_t v;
	int rc;

	memset(e, 0, sizeof(*e));
	if (!buf)
		return -RELAY_ECORRUPT;
	if ((rc = get_format(&in, RELAY_AUDIT_FORMAT)) || (rc = relay_wire_i64(&in, &e->at_ms)) ||
	    (rc = relay_wire_be(&in, 4, &v)))
		goto fail;
	e->uid = (uint32_t)v;
	if ((rc = get_str(&in, &e->user)) || (rc = get_str(&in, &e->verb)) ||
	    (rc = get_str(&in, &e->what)) || (rc = relay_wire_be(&in, 8, &e->count)) ||
	    (rc = relay_wire_be(&in, 4, &v)))
		goto fail;
	if (v > RELAY_AUDIT_MAX_IDS || v * 8 != in.left) {
		rc = -RELAY_ECORRUPT;
		goto fail;
	}
	if (v && !(e->ids = malloc(v * sizeof(*e->ids)))) {
		rc = ENOMEM;
		goto fail;
	}
	e->n_ids = v;
	for (size_t i = 0; i < e->n_ids; i++)
		relay_wire_be(&in, 8, &e->ids[i]);
	return 0;
fail:
	relay_audit_clear(e);
	return rc;
}

void
relay_audit_clear(struct relay_audit_entry *e)
{
	if (!e)
		return;
	free(e->user);
	free(e->verb);
	free(e->what);
	free(e->ids);
	memset(e, 0, sizeof(*e));
}

/* ---- edits ---- */

int
relay_edit_encode(const struct relay_edit *e, unsigned char **buf, size_t *len)
{
	struct out o = { 0 };

	put_be(&o, RELAY_EDIT_FORMAT, 1);
	put_be(&o, (uint64_t)e->at_ms, 8);
	put_str(&o, e->user);
	put_bytes(&o, e->body ? e->body : (const unsigned char *)"", e->body_len, 0);
	return out_end(&o, buf, len);
}

int
relay_edit_decode(const void *buf, size_t len, struct relay_edit *e)
{
	struct relay_wire_in in = { buf, len };
	char *body = NULL;
	int rc;

	memset(e, 0, sizeof(*e));
	if (!buf)
		return -RELAY_ECORRUPT;
	if ((rc = get_format(&in, RELAY_EDIT_FORMAT)) || (rc = relay_wire_i64(&in, &e->at_ms)) ||
	    (rc = get_str(&in, &e->user)) || (rc = relay_wire_bytes(&in, 1, &body, &e->body_len)))
		goto fail;
	e->body = (unsigned char *)body;
	if (!e->body || in.left) {
		rc = -RELAY_ECORRUPT;
		goto fail;
	}
	return 0;
fail:
	relay_edit_clear(e);
	return rc;
}

void
relay_edit_clear(struct relay_edit *e)
{
	if (!e)
		return;
	free(e->user);
	free(e->body);
	memset(e, 0, sizeof(*e));
}
