/*
 * The stored event record: see include/odoo_relay/record.h, whose format
 * comment is the specification this file implements.
 *
 * The decoder is written for hostile input (a corrupt page, a fuzzer): every
 * length is checked against the bytes that remain before anything is
 * allocated or copied, counts are bounded by the smallest encoding of one
 * element, and anything left over at the end is corruption. It also refuses
 * every non-canonical form (reserved flags set, an unknown class, a NUL
 * inside a string), so that decode then encode gives back the same bytes.
 *
 * Decoded strings and the body are NUL-terminated copies; the body's
 * terminator is not counted in body_len, and is there so that a JSON body can
 * be handed to a parser as a C string.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "odoo_relay/error.h"
#include "odoo_relay/record.h"
#include "wire_int.h"

#define REC_NULL RELAY_WIRE_NULL
/* The smallest encodings, to bound counts read from the input. */
#define REC_HEADER_MIN (4 + 4)
#define REC_ATTEMPT_MIN (8 + 1 + 2 + 8 + 4 + 4 + 4)

/* ---- encoding ---- */

struct rec_out {
	unsigned char *p;
};

static void
out_u8(struct rec_out *o, uint8_t v)
{
	*o->p++ = v;
}

static void
out_be(struct rec_out *o, uint64_t v, size_t n)
{
	relay_wire_put_be(o->p, v, n);
	o->p += n;
}

static void
out_u16(struct rec_out *o, uint16_t v)
{
	out_be(o, v, 2);
}

static void
out_u32(struct rec_out *o, uint32_t v)
{
	out_be(o, v, 4);
}

static void
out_u64(struct rec_out *o, uint64_t v)
{
	out_be(o, v, 8);
}

static void
out_bytes(struct rec_out *o, const void *p, size_t len, int is_null)
{
	if (is_null) {
		out_u32(o, REC_NULL);
		return;
	}
	out_u32(o, (uint32_t)len);
	if (len) {
		memcpy(o->p, p, len);
		o->p += len;
	}
}

static void
out_str(struct rec_out *o, const char *s)
{
	out_bytes(o, s, s ? strlen(s) : 0, s == NULL);
}

/* Adds the encoded size of a field of len bytes to *total; -RELAY_ETOOBIG
 * when the field cannot be represented (REC_NULL is reserved) or the total
 * would overflow. */
static int
size_add(size_t *total, size_t len)
{
	if (len >= REC_NULL)
		return -RELAY_ETOOBIG;
	if (len > SIZE_MAX - 4 || *total > SIZE_MAX - 4 - len)
		return -RELAY_ETOOBIG;
	*total += 4 + len;
	return 0;
}

static int
size_str(size_t *total, const char *s)
{
	return size_add(total, s ? strlen(s) : 0);
}

static int
record_size(const struct relay_event *ev, size_t *out)
{
	size_t total = 1 + 1 + 8 + 8 + 8 + 8 + 4;
	int rc;

	if ((ev->n_headers && !ev->headers) || (ev->n_history && !ev->history) ||
	    (ev->body_len && !ev->body))
		return -RELAY_EINVAL;
	if (ev->n_headers >= REC_NULL || ev->n_history >= REC_NULL)
		return -RELAY_ETOOBIG;
	if ((rc = size_str(&total, ev->source)) || (rc = size_str(&total, ev->topic)) ||
	    (rc = size_str(&total, ev->lane)) || (rc = size_str(&total, ev->dedup_key)) ||
	    (rc = size_str(&total, ev->route)))
		return rc;
	total += 4;
	for (size_t i = 0; i < ev->n_headers; i++)
		if ((rc = size_str(&total, ev->headers[i].name)) ||
		    (rc = size_str(&total, ev->headers[i].value)))
			return rc;
	if ((rc = size_add(&total, ev->body_len)) || (rc = size_str(&total, ev->last_error)))
		return rc;
	total += 4;
	for (size_t i = 0; i < ev->n_history; i++) {
		const struct relay_attempt *a = &ev->history[i];

		if (total > SIZE_MAX - (8 + 1 + 2 + 8))
			return -RELAY_ETOOBIG;
		total += 8 + 1 + 2 + 8;
		if ((rc = size_str(&total, a->error_name)) || (rc = size_str(&total, a->message)) ||
		    (rc = size_str(&total, a->detail)))
			return rc;
	}
	if (total > SIZE_MAX - 8)
		return -RELAY_ETOOBIG;
	total += 8;
	if ((rc = size_str(&total, ev->dead_reason)) || (rc = size_str(&total, ev->request)))
		return rc;
	*out = total;
	return 0;
}

int
relay_record_encode(const struct relay_event *ev, unsigned char **buf, size_t *len)
{
	struct rec_out o;
	unsigned char *b;
	size_t total;
	int rc;

	if ((rc = record_size(ev, &total)))
		return rc;
	if (!(b = malloc(total)))
		return ENOMEM;
	o.p = b;
	out_u8(&o, RELAY_RECORD_VERSION);
	out_u8(&o, 0);
	out_u64(&o, ev->id);
	out_u64(&o, (uint64_t)ev->received_ms);
	out_u64(&o, (uint64_t)ev->due_ms);
	out_u64(&o, (uint64_t)ev->first_attempt_ms);
	out_u32(&o, ev->attempts);
	out_str(&o, ev->source);
	out_str(&o, ev->topic);
	out_str(&o, ev->lane);
	out_str(&o, ev->dedup_key);
	out_str(&o, ev->route);
	out_u32(&o, (uint32_t)ev->n_headers);
	for (size_t i = 0; i < ev->n_headers; i++) {
		out_str(&o, ev->headers[i].name);
		out_str(&o, ev->headers[i].value);
	}
	out_bytes(&o, ev->body, ev->body_len, ev->body == NULL);
	out_str(&o, ev->last_error);
	out_u32(&o, (uint32_t)ev->n_history);
	for (size_t i = 0; i < ev->n_history; i++) {
		const struct relay_attempt *a = &ev->history[i];

		out_u64(&o, (uint64_t)a->at_ms);
		out_u8(&o, a->klass);
		out_u16(&o, a->http_status);
		out_u64(&o, (uint64_t)a->duration_ms);
		out_str(&o, a->error_name);
		out_str(&o, a->message);
		out_str(&o, a->detail);
	}
	out_u64(&o, (uint64_t)ev->dead_ms);
	out_str(&o, ev->dead_reason);
	out_str(&o, ev->request);
	*buf = b;
	*len = total;
	return 0;
}

/* ---- decoding ---- */

static int
in_u8(struct relay_wire_in *in, uint8_t *v)
{
	uint64_t x = 0;
	int rc = relay_wire_be(in, 1, &x);

	*v = (uint8_t)x;
	return rc;
}

static int
in_u16(struct relay_wire_in *in, uint16_t *v)
{
	uint64_t x = 0;
	int rc = relay_wire_be(in, 2, &x);

	*v = (uint16_t)x;
	return rc;
}

static int
in_u32(struct relay_wire_in *in, uint32_t *v)
{
	uint64_t x = 0;
	int rc = relay_wire_be(in, 4, &x);

	*v = (uint32_t)x;
	return rc;
}

static int
in_str(struct relay_wire_in *in, char **out)
{
	return relay_wire_bytes(in, 0, out, NULL);
}

/* Reads a count of elements whose smallest encoding is min_size bytes: a
 * count the remaining bytes cannot hold is corruption, which bounds the
 * allocation that follows by the input's size. */
static int
in_count(struct relay_wire_in *in, size_t min_size, size_t *n)
{
	uint32_t v;
	int rc;

	if ((rc = in_u32(in, &v)))
		return rc;
	if (v > in->left / min_size)
		return -RELAY_ECORRUPT;
	*n = v;
	return 0;
}

static int
decode_v1(struct relay_wire_in *in, struct relay_event *ev)
{
	uint8_t flags;
	uint64_t id;
	size_t n, body_len;
	char *body;
	int rc;

	if ((rc = in_u8(in, &flags)))
		return rc;
	if (flags != 0)
		return -RELAY_ECORRUPT;
	if ((rc = relay_wire_be(in, 8, &id)) || (rc = relay_wire_i64(in, &ev->received_ms)) ||
	    (rc = relay_wire_i64(in, &ev->due_ms)) || (rc = relay_wire_i64(in, &ev->first_attempt_ms)) ||
	    (rc = in_u32(in, &ev->attempts)))
		return rc;
	ev->id = id;
	if ((rc = in_str(in, &ev->source)) || (rc = in_str(in, &ev->topic)) ||
	    (rc = in_str(in, &ev->lane)) || (rc = in_str(in, &ev->dedup_key)) ||
	    (rc = in_str(in, &ev->route)))
		return rc;

	if ((rc = in_count(in, REC_HEADER_MIN, &n)))
		return rc;
	/* Zeroed and counted before they are read, so that a failure half-way
	 * frees exactly what was allocated. */
	if (n && !(ev->headers = calloc(n, sizeof(*ev->headers))))
		return ENOMEM;
	ev->n_headers = n;
	for (size_t i = 0; i < n; i++)
		if ((rc = in_str(in, &ev->headers[i].name)) ||
		    (rc = in_str(in, &ev->headers[i].value)))
			return rc;

	if ((rc = relay_wire_bytes(in, 1, &body, &body_len)))
		return rc;
	ev->body = (unsigned char *)body;
	ev->body_len = body_len;
	if ((rc = in_str(in, &ev->last_error)))
		return rc;

	if ((rc = in_count(in, REC_ATTEMPT_MIN, &n)))
		return rc;
	if (n && !(ev->history = calloc(n, sizeof(*ev->history))))
		return ENOMEM;
	ev->n_history = n;
	for (size_t i = 0; i < n; i++) {
		struct relay_attempt *a = &ev->history[i];

		if ((rc = relay_wire_i64(in, &a->at_ms)) || (rc = in_u8(in, &a->klass)) ||
		    (rc = in_u16(in, &a->http_status)) || (rc = relay_wire_i64(in, &a->duration_ms)))
			return rc;
		if (a->klass > RELAY_CLASS_CONFIG)
			return -RELAY_ECORRUPT;
		if ((rc = in_str(in, &a->error_name)) || (rc = in_str(in, &a->message)) ||
		    (rc = in_str(in, &a->detail)))
			return rc;
	}

	if ((rc = relay_wire_i64(in, &ev->dead_ms)) || (rc = in_str(in, &ev->dead_reason)) ||
	    (rc = in_str(in, &ev->request)))
		return rc;
	if (in->left != 0)
		return -RELAY_ECORRUPT;
	return 0;
}

int
relay_record_decode(const void *buf, size_t len, struct relay_event *ev)
{
	struct relay_wire_in in = { buf, len };
	uint8_t version;
	int rc;

	memset(ev, 0, sizeof(*ev));
	if (!buf || (rc = in_u8(&in, &version)))
		return -RELAY_ECORRUPT;
	if (version > RELAY_RECORD_VERSION)
		return -RELAY_EVERSION;
	/* Version 0 was never written: a zero byte here is damage. */
	if (version == 0)
		return -RELAY_ECORRUPT;
	if ((rc = decode_v1(&in, ev)))
		relay_event_clear(ev);
	return rc;
}

int
relay_record_version(const void *buf, size_t len)
{
	if (!buf || len == 0)
		return -1;
	return ((const unsigned char *)buf)[0];
}

static void
attempt_clear(struct relay_attempt *a)
{
	free(a->error_name);
	free(a->message);
	free(a->detail);
	memset(a, 0, sizeof(*a));
}

void
relay_event_clear(struct relay_event *ev)
{
	if (!ev)
		return;
	free(ev->source);
	free(ev->topic);
	free(ev->lane);
	free(ev->dedup_key);
	free(ev->route);
	for (size_t i = 0; i < ev->n_headers; i++) {
		free(ev->headers[i].name);
		free(ev->headers[i].value);
	}
	free(ev->headers);
	free(ev->body);
	free(ev->last_error);
	for (size_t i = 0; i < ev->n_history; i++)
		attempt_clear(&ev->history[i]);
	free(ev->history);
	free(ev->dead_reason);
	free(ev->request);
	memset(ev, 0, sizeof(*ev));
}

static int
dup_str(const char *s, char **out)
{
	*out = NULL;
	if (s && !(*out = strdup(s)))
		return ENOMEM;
	return 0;
}

int
relay_event_add_attempt(struct relay_event *ev, const struct relay_attempt *a)
{
	struct relay_attempt copy = *a;
	struct relay_attempt *h;

	copy.error_name = copy.message = copy.detail = NULL;
	if (dup_str(a->error_name, &copy.error_name) || dup_str(a->message, &copy.message) ||
	    dup_str(a->detail, &copy.detail)) {
		attempt_clear(&copy);
		return ENOMEM;
	}

	if (ev->n_history < RELAY_RECORD_MAX_HISTORY) {
		h = realloc(ev->history, (ev->n_history + 1) * sizeof(*h));
		if (!h) {
			attempt_clear(&copy);
			return ENOMEM;
		}
		ev->history = h;
		ev->history[ev->n_history++] = copy;
		return 0;
	}

	/* Full: the first attempt says when trouble began and stays; the
	 * oldest of the recent ones makes room. A history longer than the
	 * limit (decoded from a record written with a larger one) is cut back
	 * to it here. */
	size_t recent = RELAY_RECORD_MAX_HISTORY - 2; /* kept besides first and new */
	size_t from = ev->n_history - recent;

	h = ev->history;
	for (size_t i = 1; i < from; i++)
		attempt_clear(&h[i]);
	memmove(&h[1], &h[from], recent * sizeof(*h));
	h[RELAY_RECORD_MAX_HISTORY - 1] = copy;
	ev->n_history = RELAY_RECORD_MAX_HISTORY;
	return 0;
}

const char *
relay_class_name(int klass)
{
	switch (klass) {
	case RELAY_CLASS_DONE:
		return "done";
	case RELAY_CLASS_TRANSIENT:
		return "transient";
	case RELAY_CLASS_PERMANENT:
		return "permanent";
	case RELAY_CLASS_CONFIG:
		return "configuration";
	default:
		return "none";
	}
}
