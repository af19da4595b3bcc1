/*
 * odoo-relay: the records of the history, the audit trail and the edited
 * bodies of dead letters, and their versioned binary encodings.
 *
 * All integers big-endian; a "str" is a u32 length and that many bytes, no
 * NUL, 0xffffffff for NULL (as in record.h).
 *
 * History record (table history), format 1:
 *   u8  format (1)   u8 outcome (enum relay_hist_outcome)   u8 flags (bit 0: body kept)
 *   i64 settled_ms   i64 expiry_ms
 *   str destination
 *   u64 batch_id     u32 batch_size   i32 batch_row
 *   u16 http_status
 *   str xid          str odoo_model   i64 odoo_id
 *   str note
 *   32 bytes: SHA-256 of the body as received (or as last edited)
 *   u32 length, then the event record (record.h; its body left out, NULL,
 *       when the body was not kept)
 *
 * Audit record (table audit), format 1:
 *   u8 format (1)  i64 at_ms  u32 uid  str user  str verb  str what
 *   u64 count      u32 n_ids, then n_ids x u64 id (at most RELAY_AUDIT_MAX_IDS)
 *
 * Edited body (table edits), format 1:
 *   u8 format (1)  i64 at_ms  str user  str body (binary)
 *
 * Changing a format follows record.h's procedure: bump the format byte,
 * keep the decoder of every older format, refuse a newer one
 * (-RELAY_EVERSION) and never overwrite it.
 *
 * Pure (no I/O); thread-safe on distinct objects. Decoders copy everything
 * (the input may be an LMDB value that dies with its transaction) and
 * leave the output zeroed on failure.
 */
#ifndef ODOO_RELAY_HIST_RECORD_H
#define ODOO_RELAY_HIST_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "odoo_relay/record.h"

#define RELAY_HIST_FORMAT 1
#define RELAY_AUDIT_FORMAT 1
#define RELAY_EDIT_FORMAT 1
/* ids kept with one audit record; count says how many there were. */
#define RELAY_AUDIT_MAX_IDS 1000

/* How an event left the queue for the history. */
enum relay_hist_outcome {
	RELAY_HIST_DELIVERED = 1, /* applied at its destination */
	RELAY_HIST_SUPERSEDED,    /* a newer event of its lane and route went instead */
	RELAY_HIST_STALE,         /* older than the version already applied: not sent */
	RELAY_HIST_DROPPED,       /* dropped: by an operator (a dead letter) or a route */
	RELAY_HIST_UNROUTED,      /* no route took it, and its source drops those */
	RELAY_HIST_PHANTOM,       /* its record was gone from Odoo when confirmed: not sent */
	RELAY_HIST_OUTCOME_MAX = RELAY_HIST_PHANTOM,
};

struct relay_hist_entry {
	int outcome;              /* enum relay_hist_outcome */
	int64_t settled_ms;       /* when it left the queue (wall clock) */
	int64_t expiry_ms;        /* swept from then on */
	char *destination;        /* NULL when it went nowhere */
	uint64_t batch_id;        /* the call that carried it; 0: alone */
	uint32_t batch_size;
	int32_t batch_row;        /* -1: none */
	uint16_t http_status;     /* the destination's answer; 0 when none */
	char *xid;                /* the external ID written ("module.name"), or NULL */
	char *odoo_model;         /* the Odoo model written, or NULL */
	int64_t odoo_id;          /* the Odoo record id written; 0 when not known */
	char *note;               /* how ("delivered", "superseded by event 12", ...) */
	int body_kept;            /* 1: ev.body is the body; 0: only digest is */
	unsigned char digest[32]; /* SHA-256 of the body */
	struct relay_event ev;    /* the event as it was last stored */
};

struct relay_audit_entry {
	uint64_t seq;             /* its key (not encoded in the value) */
	int64_t at_ms;
	uint32_t uid;
	char *user;               /* the login name of uid, or its number */
	char *verb;               /* "dead replay", "pause", ... */
	char *what;               /* the arguments, in words */
	uint64_t count;           /* events it touched (0 for pause, resume, ...) */
	uint64_t *ids;            /* the first of them (at most RELAY_AUDIT_MAX_IDS) */
	size_t n_ids;
};

struct relay_edit {
	uint32_t version;         /* its key's (not encoded): 1 is the original */
	int64_t at_ms;
	char *user;               /* NULL for the original */
	unsigned char *body;      /* NUL-terminated copy; len without the NUL */
	size_t body_len;
};

/* relay_hist_outcome_name - "delivered", "superseded", "stale", "dropped",
 * "unrouted"; "unknown" for other values. Static. */
const char *relay_hist_outcome_name(int outcome);

/* relay_hist_digest - SHA-256 of len bytes at p into out. Returns 0 or
 * ENOMEM. */
int relay_hist_digest(const void *p, size_t len, unsigned char out[32]);

/* Encoders: a new malloc'd buffer in *buf (caller frees), its length in
 * *len. 0, ENOMEM, -RELAY_EINVAL (outcome out of range), -RELAY_ETOOBIG (a
 * field over 4 GiB). relay_hist_encode leaves the body out unless
 * e->body_kept. */
int relay_hist_encode(const struct relay_hist_entry *e, unsigned char **buf, size_t *len);
int relay_audit_encode(const struct relay_audit_entry *e, unsigned char **buf, size_t *len);
int relay_edit_encode(const struct relay_edit *e, unsigned char **buf, size_t *len);

/* Decoders: 0, -RELAY_EVERSION (a newer format), -RELAY_ECORRUPT, ENOMEM. */
int relay_hist_decode(const void *buf, size_t len, struct relay_hist_entry *e);
int relay_audit_decode(const void *buf, size_t len, struct relay_audit_entry *e);
int relay_edit_decode(const void *buf, size_t len, struct relay_edit *e);

/* Free what the entries own and zero them; NULL is a no-op. */
void relay_hist_clear(struct relay_hist_entry *e);
void relay_audit_clear(struct relay_audit_entry *e);
void relay_edit_clear(struct relay_edit *e);

#endif
