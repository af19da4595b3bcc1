/*
 * odoo-relay: the stored event record, and its versioned binary encoding.
 *
 * One record format serves the events database and the dead-letter database:
 * a dead letter is the event record with dead_ms, dead_reason and request set.
 *
 * Encoding, version 1 (all integers big-endian; a "str" is a u32 length and
 * that many bytes, no NUL; a length of 0xffffffff means NULL):
 *
 *   u8  version (1)          u8  flags (reserved, 0)
 *   u64 id                   i64 received_ms   i64 due_ms   i64 first_attempt_ms
 *   u32 attempts
 *   str source  str topic  str lane  str dedup_key  str route
 *   u32 n_headers, then n_headers × (str name, str value)
 *   str body
 *   str last_error
 *   u32 n_history, then n_history × attempt:
 *       i64 at_ms  u8 class  u16 http_status  i64 duration_ms
 *       str error_name  str message  str detail
 *   i64 dead_ms  str dead_reason  str request
 *
 * Changing the format (the written procedure):
 *  1. Bump RELAY_RECORD_VERSION and document the new layout above, keeping the
 *     old layout's description.
 *  2. Keep the decoder for every older version: decode it into the current
 *     struct, filling new fields with their defaults. Never rewrite a record
 *     only to upgrade it; records are upgraded when next written.
 *  3. Add a fixture store written by the old version under test/fixtures and a
 *     test that opens it and decodes every record.
 *  4. A record whose version is newer than this build knows is refused with
 *     -RELAY_EVERSION, never guessed at, and never overwritten.
 *
 * All functions are pure (no I/O) and thread-safe on distinct objects.
 */
#ifndef ODOO_RELAY_RECORD_H
#define ODOO_RELAY_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define RELAY_RECORD_VERSION 1
/* The attempt history keeps the first and the most recent attempts: every
 * attempt under the default max_attempts (25). Not part of the format: a
 * decoder accepts any count. */
#define RELAY_RECORD_MAX_HISTORY 32

/*
 * What a dead event does to the rest of its lane: the one enum for it. A
 * route's "dead_lane" (route.h) says it, the store applies it when it buries
 * the event (store.h, writer.h).
 */
enum relay_lane_policy {
	RELAY_LANE_CONTINUE = 0, /* the lane moves on to its next event */
	RELAY_LANE_HOLD = 1,     /* the lane waits until the dead letter is replayed or dropped */
};

/* The outcome classes of one delivery attempt. */
enum relay_class {
	RELAY_CLASS_NONE = 0,
	RELAY_CLASS_DONE,
	RELAY_CLASS_TRANSIENT,
	RELAY_CLASS_PERMANENT,
	RELAY_CLASS_CONFIG,
};

struct relay_header {
	char *name;
	char *value;
};

struct relay_attempt {
	int64_t at_ms;
	uint8_t klass;          /* enum relay_class */
	uint16_t http_status;   /* 0 when no HTTP answer */
	int64_t duration_ms;
	char *error_name;       /* Odoo's error.data.name, or a transport error name */
	char *message;
	char *detail;           /* trimmed traceback or transport detail */
};

struct relay_event {
	uint64_t id;            /* sequence number: the key in events and dead */
	int64_t received_ms;    /* wall clock, ms since the epoch */
	int64_t due_ms;         /* next attempt */
	int64_t first_attempt_ms; /* 0 before the first attempt */
	uint32_t attempts;      /* attempts charged (configuration failures are not) */
	char *source;
	char *topic;            /* "" when the source has none */
	char *lane;             /* NULL: no lane */
	char *dedup_key;
	char *route;            /* NULL until a route matched */
	struct relay_header *headers;
	size_t n_headers;
	unsigned char *body;    /* raw bytes as received */
	size_t body_len;
	char *last_error;       /* NULL if none */
	struct relay_attempt *history;
	size_t n_history;
	int64_t dead_ms;        /* 0 unless a dead letter */
	char *dead_reason;
	char *request;          /* the request last sent to Odoo (dead letters) */
};

/*
 * relay_record_encode - encode ev into a new malloc'd buffer.
 * Returns 0 with *buf and *len set (caller frees *buf), or ENOMEM,
 * or -RELAY_ETOOBIG if a field exceeds 4 GiB.
 */
int relay_record_encode(const struct relay_event *ev, unsigned char **buf, size_t *len);

/*
 * relay_record_decode - decode len bytes at buf into *ev, copying everything
 * (buf may be an LMDB value that dies with its transaction). On success the
 * caller owns ev's contents: free with relay_event_clear.
 * Returns 0, -RELAY_EVERSION for a version newer than this build knows,
 * -RELAY_ECORRUPT for truncated or inconsistent bytes, or ENOMEM. On failure
 * *ev is left zeroed.
 */
int relay_record_decode(const void *buf, size_t len, struct relay_event *ev);

/* relay_record_version - the version byte of an encoded record (not checked
 * against RELAY_RECORD_VERSION), or -1 if buf is NULL or len 0. Reads only. */
int relay_record_version(const void *buf, size_t len);

/* relay_event_clear - free everything ev owns and zero it; ev itself (often
 * on the stack) stays the caller's. NULL is a no-op. */
void relay_event_clear(struct relay_event *ev);

/*
 * relay_event_add_attempt - append a copy of a to ev's history, keeping at
 * most RELAY_RECORD_MAX_HISTORY entries: the first attempt and the most
 * recent ones. Returns 0 or ENOMEM (ev unchanged).
 */
int relay_event_add_attempt(struct relay_event *ev, const struct relay_attempt *a);

/* relay_class_name - "done", "transient", "permanent", "configuration", or
 * "none" (also for values outside enum relay_class). Static; never NULL. */
const char *relay_class_name(int klass);

#endif
