/*
 * The history, the audit trail and edits: see include/odoo_relay/history.h
 * for the contracts and lib/store_int.h for the tables.
 *
 * Everything runs against the caller's transaction the way store.c does;
 * the history entry of a completion is written in a nested transaction of
 * its own, so that a history that cannot be written (a full map, damage)
 * is rolled back alone and never costs the completion.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "odoo_relay/clock.h"
#include "odoo_relay/error.h"
#include "odoo_relay/history.h"
#include "odoo_relay/log.h"
#include "store_int.h"

/* Trace keys longer than this are not indexed (LMDB keys stop at 511). */
#define TRACE_KEY_MAX 480
/* The room measured is trusted this long (ms) while the estimate lasts. */
#define ROOM_TTL_MS 1000
#define GAVE_WAY_LOG_MS 60000

static void
be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static uint64_t
get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static MDB_val
mval(void *p, size_t n)
{
	MDB_val v = { n, p };

	return v;
}

static int
ro_missing(struct relay_store_hist *h)
{
	return !h->have;
}

/* ---- the floor ---- */

static size_t
floor_bytes(size_t map_bytes)
{
	size_t f = map_bytes / 8;

	return f < (1u << 20) ? (1u << 20) : f;
}

/* Whether an entry of about len encoded bytes may be written: 1 yes, 0 the
 * history gives way, -1 the room could not be measured (no entry, and
 * nothing evicted for it). Measured at most every ROOM_TTL_MS, and
 * whenever the estimate runs below the floor. */
static int
hist_room(struct relay_store *st, size_t len)
{
	struct relay_store_hist *h = relay_store_hist(st);
	size_t need = 2 * (len + 256) + 4 * 64;
	int64_t now = relay_mono_ms();

	if (h->room_at_ms == 0 || now - h->room_at_ms >= ROOM_TTL_MS ||
	    h->room < floor_bytes(h->map_bytes) + need) {
		if (h->room_at_ms && now - h->room_at_ms < 50 &&
		    h->room < floor_bytes(h->map_bytes) + need)
			return 0; /* measured just now: no better */
		if (relay_store_int_room(st, &h->room, &h->map_bytes))
			return -1;
		h->room_at_ms = now;
	}
	if (h->room < floor_bytes(h->map_bytes) + need)
		return 0;
	h->room -= need;
	return 1;
}

/* ---- trace keys ---- */

/* kind, text, NUL, u64 id into k; 0, or -1 when too long to index. */
static int
trace_key(unsigned char *k, size_t *klen, int kind, const char *text, uint64_t id)
{
	size_t n = strlen(text);

	if (n == 0 || 1 + n + 1 + 8 > TRACE_KEY_MAX)
		return -1;
	k[0] = (unsigned char)kind;
	memcpy(k + 1, text, n + 1);
	be64(k + 2 + n, id);
	*klen = 2 + n + 8;
	return 0;
}

/* Calls fn(txn, dbi, key) for each trace key of e (but its dedup key's
 * when no_dedup: relay_hist_settle's dedup_digest). */
static int
each_trace_key(MDB_txn *txn, MDB_dbi dbi, const struct relay_hist_entry *e, int no_dedup,
               int (*fn)(MDB_txn *, MDB_dbi, MDB_val *))
{
	unsigned char k[TRACE_KEY_MAX];
	char odoo[256];
	const char *texts[4] = { e->ev.dedup_key, e->ev.lane, e->xid, NULL };
	const int kinds[4] = { RELAY_TRACE_DEDUP, RELAY_TRACE_LANE, RELAY_TRACE_XID,
		               RELAY_TRACE_ODOO };
	size_t klen;
	int rc;

	if (e->odoo_model && e->odoo_id > 0 &&
	    snprintf(odoo, sizeof(odoo), "%s,%" PRId64, e->odoo_model, e->odoo_id) <
	            (int)sizeof(odoo))
		texts[3] = odoo;
	for (int i = 0; i < 4; i++) {
		if (!texts[i] || (i == 0 && no_dedup) ||
		    trace_key(k, &klen, kinds[i], texts[i], e->ev.id))
			continue;
		MDB_val kv = mval(k, klen);
		if ((rc = fn(txn, dbi, &kv)))
			return rc;
	}
	return 0;
}

static int
trace_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *k)
{
	MDB_val v = { 0, NULL };

	return mdb_put(txn, dbi, k, &v, 0);
}

static int
trace_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *k)
{
	int rc = mdb_del(txn, dbi, k, NULL);

	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* ---- entries ---- */

static int
edits_del(struct relay_store_hist *h, MDB_txn *txn, uint64_t id)
{
	MDB_cursor *cur;
	unsigned char kb[12];
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(txn, h->edits, &cur)))
		return rc;
	for (;;) {
		be64(kb, id);
		memset(kb + 8, 0, 4);
		k = mval(kb, 12);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc || k.mv_size != 12 || get64(k.mv_data) != id)
			break;
		if ((rc = mdb_cursor_del(cur, 0)))
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Removes entry id (found through its expiry row) with its trace keys and
 * edits; the caller deletes the expiry row. */
static int
entry_remove(struct relay_store_hist *h, MDB_txn *txn, uint64_t id, size_t *damaged)
{
	unsigned char kb[8];
	MDB_val k = mval(kb, 8), v;
	struct relay_hist_entry e;
	int rc;

	be64(kb, id);
	rc = mdb_get(txn, h->history, &k, &v);
	if (rc == MDB_NOTFOUND)
		return edits_del(h, txn, id);
	if (rc)
		return rc;
	/* An entry that does not decode goes all the same, its trace keys
	 * left behind: a trace finds them and no entry, which it skips. */
	if ((rc = relay_hist_decode(v.mv_data, v.mv_size, &e)) == 0) {
		rc = each_trace_key(txn, h->trace, &e, 0, trace_del); /* whichever were written */
		relay_hist_clear(&e);
		if (rc)
			return rc;
	} else if (rc == ENOMEM) {
		return rc;
	} else {
		(*damaged)++;
	}
	k = mval(kb, 8);
	if ((rc = mdb_del(txn, h->history, &k, NULL)) && rc != MDB_NOTFOUND)
		return rc;
	return edits_del(h, txn, id);
}

/* Removes up to max entries from the front of history_exp: those expired
 * by now_ms, or (now_ms < 0) the oldest whatever their expiry. *damaged
 * counts rows and records removed that did not decode: an expiry row of
 * the wrong size names no entry and goes alone (left in place it would
 * stop every sweep from then on); the entry it was for, if any, is no
 * longer swept by time. */
static int
remove_front(struct relay_store_hist *h, MDB_txn *txn, int64_t now_ms, size_t max, size_t *n,
             size_t *damaged)
{
	MDB_cursor *cur;
	MDB_val k, v;
	size_t steps = 0;
	int rc;

	*n = 0;
	if ((rc = mdb_cursor_open(txn, h->history_exp, &cur)))
		return rc;
	for (; steps < max; steps++) {
		if ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST))) {
			if (rc == MDB_NOTFOUND)
				rc = 0;
			break;
		}
		if (k.mv_size != 16) {
			if ((rc = mdb_cursor_del(cur, 0)))
				break;
			(*damaged)++;
			continue;
		}
		if (now_ms >= 0 && get64(k.mv_data) > (uint64_t)now_ms)
			break;
		uint64_t id = get64((const unsigned char *)k.mv_data + 8);
		if ((rc = entry_remove(h, txn, id, damaged)) || (rc = mdb_cursor_del(cur, 0)))
			break;
		(*n)++;
	}
	mdb_cursor_close(cur);
	return rc;
}

static void
gave_way(struct relay_store *st, size_t evicted)
{
	struct relay_store_hist *h = relay_store_hist(st);
	int64_t now = relay_mono_ms();

	/* Read by the loop thread for /metrics while the writer counts. */
	__atomic_add_fetch(&h->skipped, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&h->evicted, (uint64_t)evicted, __ATOMIC_RELAXED);
	if (h->gave_way_logged_ms && now - h->gave_way_logged_ms < GAVE_WAY_LOG_MS)
		return;
	h->gave_way_logged_ms = now;
	struct relay_log_fields f = { .message_id = RELAY_MSGID_STORE_FULL };
	relay_log_with(LOG_WARNING, &f,
	               "history gives way to new events: less than 1/8 of the store is free; "
	               "%" PRIu64 " oldest entries removed before their retention and %" PRIu64
	               " not kept so far (raise map_size_mb or lower delivery.retention_s)",
	               __atomic_load_n(&h->evicted, __ATOMIC_RELAXED),
	               __atomic_load_n(&h->skipped, __ATOMIC_RELAXED));
}

/* Puts k, with MDB_APPEND when it sorts after every key there: entries
 * come in about id (and expiry) order, and appended pages are split at
 * their end, so they stay full instead of half full (measured with
 * hist-fill, 600-byte bodies: 2366 -> 1680 bytes per entry). LMDB checks
 * the order itself: a key not after the last one comes back MDB_KEYEXIST,
 * with nothing written and the transaction still usable, and is then put
 * the ordinary way (overwriting an equal key, as before). */
static int
put_last(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v)
{
	int rc = mdb_put(txn, dbi, k, v, MDB_APPEND);

	return rc == MDB_KEYEXIST ? mdb_put(txn, dbi, k, v, 0) : rc;
}

/* Writes the history entry of ev in a nested transaction; never fails the
 * caller for the history's own sake. In a group run flat it writes into txn
 * itself and returns a failure: the group's rerun gets here nested. */
static int
hist_put(struct relay_store *st, MDB_txn *txn, const struct relay_event *ev,
         const struct relay_hist_settle *s, int64_t now_ms, int *kept)
{
	struct relay_store_hist *h = relay_store_hist(st);
	struct relay_hist_entry e = { 0 };
	unsigned char *buf = NULL, kb[16];
	size_t len;
	MDB_txn *child = NULL;
	MDB_val k, v;
	int rc;

	*kept = 0;
	if (s->outcome < 1 || s->outcome > RELAY_HIST_OUTCOME_MAX)
		return -RELAY_EINVAL;
	if (s->retention_ms <= 0 || !h->have)
		return 0;
	e.outcome = s->outcome;
	e.settled_ms = now_ms;
	e.expiry_ms = now_ms > INT64_MAX - s->retention_ms ? INT64_MAX : now_ms + s->retention_ms;
	e.destination = (char *)s->destination;
	e.batch_id = s->batch_id;
	e.batch_size = s->batch_size;
	e.batch_row = s->batch_row;
	e.http_status = (uint16_t)(s->http_status > 0 && s->http_status < 65536 ? s->http_status : 0);
	e.xid = (char *)s->xid;
	e.odoo_model = (char *)s->odoo_model;
	e.odoo_id = s->odoo_id;
	e.note = (char *)s->note;
	e.body_kept = s->keep_body != 0;
	e.ev = *ev; /* shallow: read only */
	if (relay_hist_digest(ev->body, ev->body_len, e.digest) ||
	    relay_hist_encode(&e, &buf, &len))
		return 0; /* out of memory: no entry, the completion stands */
	int room = hist_room(st, len);

	if (room < 0) {
		free(buf);
		return 0;
	}
	if (room == 0) {
		size_t n = 0;

		size_t damaged = 0;

		if (relay_store_txn_begin(st, txn, &child) == 0) {
			/* a commit frees the transaction whatever it returns */
			if (remove_front(h, child, -1, RELAY_HISTORY_EVICT, &n, &damaged) != 0)
				relay_store_txn_abort(st, child);
			else if (relay_store_txn_commit(st, child) != 0)
				n = 0;
			else if (damaged)
				__atomic_add_fetch(&h->damaged, (uint64_t)damaged, __ATOMIC_RELAXED);
		}
		/* Credit what went, about an entry like this one each: the
		 * estimate stays until the next measurement, and without the
		 * credit every completion until then evicted another batch
		 * (the history drained itself to a few entries near the floor). */
		h->room += n * (len + 256);
		gave_way(st, n);
		free(buf);
		return 0;
	}
	/* In a group run flat, straight into txn: a failure fails the op and
	 * the group's rerun comes back here nested, where the child keeps it
	 * apart (store.h, relay_store_txn_flat). */
	int direct = relay_store_int_flat(st, txn);

	if ((rc = relay_store_int_fault(st, "history"))) {
		free(buf);
		return direct ? rc : 0; /* as a put that failed would */
	}
	if (!direct && relay_store_txn_begin(st, txn, &child)) {
		free(buf);
		return 0;
	}
	if (direct)
		child = txn;
	be64(kb, ev->id);
	k = mval(kb, 8);
	v = mval(buf, len);
	rc = put_last(child, h->history, &k, &v);
	if (!rc) {
		be64(kb, (uint64_t)(e.expiry_ms < 0 ? 0 : e.expiry_ms));
		be64(kb + 8, ev->id);
		k = mval(kb, 16);
		v = mval(NULL, 0);
		rc = put_last(child, h->history_exp, &k, &v);
	}
	if (!rc)
		rc = each_trace_key(child, h->trace, &e, s->dedup_digest, trace_put);
	free(buf);
	if (direct) {
		*kept = rc == 0;
		return rc;
	}
	if (rc) {
		relay_store_txn_abort(st, child);
		if (rc == MDB_MAP_FULL)
			gave_way(st, 0);
		return 0;
	}
	if (relay_store_txn_commit(st, child) == 0)
		*kept = 1;
	return 0;
}

static int
settle_into_history(struct relay_store *st, MDB_txn *txn, uint64_t id,
                    const struct relay_hist_settle *s, int64_t now_ms, int *keptp, int dead)
{
	struct relay_event ev;
	MDB_txn *use, *own;
	int kept = 0, rc;

	if (keptp)
		*keptp = 0;
	if (!s || s->outcome < 1 || s->outcome > RELAY_HIST_OUTCOME_MAX)
		return -RELAY_EINVAL;
	if ((rc = relay_store_int_wbegin(st, txn, &use, &own)))
		return rc;
	rc = dead ? relay_store_get_dead(st, use, id, &ev) : relay_store_get_event(st, use, id, &ev);
	if (rc == 0) {
		rc = dead ? relay_store_drop(st, use, id, now_ms)
		          : relay_store_int_complete_read(st, use, &ev, now_ms);
		if (rc == 0)
			rc = hist_put(st, use, &ev, s, now_ms, &kept);
		/* An edited body no history entry keeps has nothing left to
		 * remove it later: it goes now. */
		if (rc == 0 && !kept && relay_store_hist(st)->have)
			rc = edits_del(relay_store_hist(st), use, id);
		relay_event_clear(&ev);
	}
	if ((rc = relay_store_int_wend(st, own, rc)))
		return rc;
	if (keptp)
		*keptp = kept;
	return 0;
}

int
relay_history_complete(struct relay_store *st, MDB_txn *txn, uint64_t id,
                       const struct relay_hist_settle *s, int64_t now_ms, int *kept)
{
	return settle_into_history(st, txn, id, s, now_ms, kept, 0);
}

int
relay_history_drop(struct relay_store *st, MDB_txn *txn, uint64_t id,
                   const struct relay_hist_settle *s, int64_t now_ms, int *kept)
{
	return settle_into_history(st, txn, id, s, now_ms, kept, 1);
}

/* Whether the first decodable audit record after the cursor's is older
 * than cutoff (1), not (0), or there is none (0). Moves the cursor. */
static int
audit_next_old(MDB_cursor *cur, int64_t cutoff, size_t max, int *old)
{
	MDB_val k, v;
	struct relay_audit_entry a;
	int rc;

	*old = 0;
	for (size_t i = 0; i < max; i++) {
		if ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)))
			return rc == MDB_NOTFOUND ? 0 : rc;
		if ((rc = relay_audit_decode(v.mv_data, v.mv_size, &a)) == ENOMEM)
			return rc;
		if (rc == 0) {
			*old = a.at_ms < cutoff;
			relay_audit_clear(&a);
			return 0;
		}
	}
	return 0;
}

/* Audit records older than keep go, oldest first (their keys are in
 * time order: the sequence grows with time). One that does not decode has
 * no time of its own: it goes once a record after it (a newer one) is old
 * enough to go, and is kept until then for an operator to see; either way
 * the records behind it are swept. *damaged counts those removed. */
static int
audit_sweep(struct relay_store_hist *h, MDB_txn *txn, int64_t now_ms, size_t max,
            size_t *damaged)
{
	MDB_cursor *cur;
	MDB_val k, v;
	struct relay_audit_entry a;
	int64_t cutoff = now_ms - RELAY_AUDIT_KEEP_MS;
	size_t n = 0;
	int rc;

	if ((rc = mdb_cursor_open(txn, h->audit, &cur)))
		return rc;
	while (n < max && (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0) {
		int old, bad = 0;

		if ((rc = relay_audit_decode(v.mv_data, v.mv_size, &a)) == ENOMEM)
			break;
		if (rc == 0) {
			old = a.at_ms < cutoff;
			relay_audit_clear(&a);
		} else {
			bad = 1;
			if ((rc = audit_next_old(cur, cutoff, max, &old)))
				break;
			if (old && (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)))
				break;
		}
		if (!old || (rc = mdb_cursor_del(cur, 0)))
			break;
		*damaged += (size_t)bad;
		n++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int
relay_history_sweep(struct relay_store *st, MDB_txn *txn, int64_t now_ms, size_t max,
                    size_t *swept)
{
	struct relay_store_hist *h = relay_store_hist(st);
	MDB_txn *use, *own;
	size_t n = 0, damaged = 0;
	int rc;

	if (swept)
		*swept = 0;
	if (!h->have)
		return 0;
	if ((rc = relay_store_int_fault(st, "sweep")))
		return rc;
	if ((rc = relay_store_int_wbegin(st, txn, &use, &own)))
		return rc;
	rc = remove_front(h, use, now_ms < 0 ? 0 : now_ms, max, &n, &damaged);
	if (!rc)
		rc = audit_sweep(h, use, now_ms, max, &damaged);
	if ((rc = relay_store_int_wend(st, own, rc)))
		return rc;
	/* Counted once gone for good; in the caller's transaction they are
	 * gone once it commits (an abort sees them again, and counts again). */
	if (damaged) {
		__atomic_add_fetch(&h->damaged, (uint64_t)damaged, __ATOMIC_RELAXED);
		relay_log(LOG_WARNING, "history sweep removed %zu damaged entr%s it could not read "
		          "(history or audit; counted in relay_history_damaged_total)",
		          damaged, damaged == 1 ? "y" : "ies");
	}
	if (swept)
		*swept = n;
	return 0;
}

/* ---- reads ---- */

int
relay_history_get(struct relay_store *st, MDB_txn *txn, uint64_t id, struct relay_hist_entry *e)
{
	struct relay_store_hist *h = relay_store_hist(st);
	unsigned char kb[8];
	MDB_val k = mval(kb, 8), v;
	MDB_txn *use, *own;
	int rc;

	memset(e, 0, sizeof(*e));
	if (ro_missing(h))
		return -RELAY_ENOTFOUND;
	if ((rc = relay_store_int_rbegin(st, txn, &use, &own)))
		return rc;
	be64(kb, id);
	rc = mdb_get(use, h->history, &k, &v);
	if (rc == 0)
		rc = relay_hist_decode(v.mv_data, v.mv_size, e);
	else if (rc == MDB_NOTFOUND)
		rc = -RELAY_ENOTFOUND;
	if (own)
		mdb_txn_abort(own);
	return rc;
}

/* Hands every entry of dbi, from the first key at or after *from (NULL:
 * from the first key), to visit inside a read transaction of the walk's
 * own, until visit returns non-zero. Returns 0 at the end, what visit
 * returned, or LMDB's error. */
static int
walk(struct relay_store *st, MDB_dbi dbi, const MDB_val *from,
     int (*visit)(void *ctx, const MDB_val *k, const MDB_val *v), void *ctx)
{
	MDB_txn *use, *own;
	MDB_cursor *cur;
	MDB_val k = { 0 }, v;
	MDB_cursor_op op = from ? MDB_SET_RANGE : MDB_NEXT;
	int rc;

	if (from)
		k = *from;
	if ((rc = relay_store_int_rbegin(st, NULL, &use, &own)))
		return rc;
	if ((rc = mdb_cursor_open(use, dbi, &cur)))
		goto out;
	while (!(rc = mdb_cursor_get(cur, &k, &v, op))) {
		op = MDB_NEXT;
		if ((rc = visit(ctx, &k, &v)))
			break;
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	mdb_cursor_close(cur);
out:
	mdb_txn_abort(own);
	return rc;
}

struct hist_walk {
	int (*cb)(void *arg, const struct relay_hist_entry *e);
	void *arg;
	uint64_t damaged;
};

/* A record that does not decode (damaged, or a newer format) is counted
 * and passed over: one bad record must not hide all the others. */
static int
skip_damaged(int rc, uint64_t *damaged)
{
	if (rc == -RELAY_ECORRUPT || rc == -RELAY_EVERSION) {
		(*damaged)++;
		return 0;
	}
	return rc;
}

static int
hist_visit(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct hist_walk *w = ctx;
	struct relay_hist_entry e;
	int rc;

	(void)k;
	if ((rc = relay_hist_decode(v->mv_data, v->mv_size, &e)))
		return skip_damaged(rc, &w->damaged);
	rc = w->cb(w->arg, &e);
	relay_hist_clear(&e);
	return rc;
}

int
relay_history_foreach(struct relay_store *st, uint64_t from_id,
                      int (*cb)(void *arg, const struct relay_hist_entry *e), void *arg,
                      uint64_t *damaged)
{
	struct relay_store_hist *h = relay_store_hist(st);
	struct hist_walk w = { cb, arg, 0 };
	unsigned char kb[8];
	MDB_val from = mval(kb, 8);
	int rc;

	if (damaged)
		*damaged = 0;
	if (ro_missing(h))
		return 0;
	be64(kb, from_id);
	rc = walk(st, h->history, &from, hist_visit, &w);
	if (damaged)
		*damaged = w.damaged;
	return rc;
}

int
relay_history_find(struct relay_store *st, MDB_txn *txn, int kind, const char *key,
                   uint64_t *ids, size_t max, size_t *n, int *more)
{
	return relay_history_find_from(st, txn, kind, key, 0, ids, max, n, more);
}

int
relay_history_find_from(struct relay_store *st, MDB_txn *txn, int kind, const char *key,
                        uint64_t from_id, uint64_t *ids, size_t max, size_t *n, int *more)
{
	struct relay_store_hist *h = relay_store_hist(st);
	unsigned char kb[TRACE_KEY_MAX];
	size_t klen, plen;
	MDB_txn *use, *own;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	*n = 0;
	if (more)
		*more = 0;
	if (ro_missing(h) || !key || trace_key(kb, &klen, kind, key, from_id))
		return 0;
	plen = klen - 8;
	if ((rc = relay_store_int_rbegin(st, txn, &use, &own)))
		return rc;
	if ((rc = mdb_cursor_open(use, h->trace, &cur)))
		goto out;
	k = mval(kb, klen);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size == plen + 8 && memcmp(k.mv_data, kb, plen) == 0) {
		if (*n == max) {
			if (more)
				*more = 1;
			break;
		}
		ids[(*n)++] = get64((const unsigned char *)k.mv_data + plen);
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	mdb_cursor_close(cur);
out:
	if (own)
		mdb_txn_abort(own);
	return rc;
}

int
relay_history_stats(struct relay_store *st, uint64_t *entries, uint64_t *bytes)
{
	struct relay_store_hist *h = relay_store_hist(st);
	MDB_txn *use, *own;
	MDB_stat s;
	MDB_dbi dbis[3];
	int rc;

	*entries = *bytes = 0;
	if (ro_missing(h))
		return 0;
	dbis[0] = h->history;
	dbis[1] = h->history_exp;
	dbis[2] = h->trace;
	if ((rc = relay_store_int_rbegin(st, NULL, &use, &own)))
		return rc;
	for (int i = 0; i < 3 && !rc; i++) {
		if ((rc = mdb_stat(use, dbis[i], &s)))
			break;
		if (i == 0)
			*entries = s.ms_entries;
		*bytes += (uint64_t)(s.ms_branch_pages + s.ms_leaf_pages + s.ms_overflow_pages) *
		          s.ms_psize;
	}
	mdb_txn_abort(own);
	return rc;
}

void
relay_history_gave_way(struct relay_store *st, uint64_t *evicted, uint64_t *skipped)
{
	struct relay_store_hist *h = relay_store_hist(st);

	*evicted = __atomic_load_n(&h->evicted, __ATOMIC_RELAXED);
	*skipped = __atomic_load_n(&h->skipped, __ATOMIC_RELAXED);
}

/* ---- audit ---- */

int
relay_audit_add(struct relay_store *st, MDB_txn *txn, const struct relay_audit_entry *e,
                uint64_t *seqp)
{
	struct relay_store_hist *h = relay_store_hist(st);
	MDB_txn *use, *own;
	unsigned char *buf = NULL, kb[8];
	size_t len;
	uint64_t seq = 0;
	MDB_val k, v;
	int rc;

	if (!h->have)
		return EACCES;
	if ((rc = relay_store_int_fault(st, "audit")))
		return rc;
	if ((rc = relay_audit_encode(e, &buf, &len)))
		return rc;
	if ((rc = relay_store_int_wbegin(st, txn, &use, &own))) {
		free(buf);
		return rc;
	}
	if (!(rc = relay_store_int_meta_next(st, use, "audit_seq", &seq))) {
		be64(kb, seq);
		k = mval(kb, 8);
		v = mval(buf, len);
		rc = mdb_put(use, h->audit, &k, &v, 0);
	}
	free(buf);
	if ((rc = relay_store_int_wend(st, own, rc)))
		return rc;
	if (seqp)
		*seqp = seq;
	return 0;
}

int
relay_audit_commit(struct relay_store *st, MDB_txn *txn, const struct relay_audit_entry *e,
                   uint64_t *seqp, int *audit_rc)
{
	MDB_txn *child = NULL;
	uint64_t seq = 0;
	int arc, rc;

	if (!(arc = relay_store_txn_begin(st, txn, &child))) {
		if ((arc = relay_audit_add(st, child, e, &seq)))
			relay_store_txn_abort(st, child);
		else
			arc = relay_store_txn_commit(st, child); /* nested: no fault, no disk */
	}
	if (audit_rc)
		*audit_rc = arc;
	rc = relay_store_txn_commit(st, txn);
	if (seqp)
		*seqp = rc || arc ? 0 : seq;
	return rc;
}

struct audit_walk {
	int (*cb)(void *arg, const struct relay_audit_entry *e);
	void *arg;
	uint64_t damaged;
};

static int
audit_visit(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct audit_walk *w = ctx;
	struct relay_audit_entry a;
	int rc;

	if ((rc = relay_audit_decode(v->mv_data, v->mv_size, &a)))
		return skip_damaged(rc, &w->damaged);
	a.seq = k->mv_size == 8 ? get64(k->mv_data) : 0;
	rc = w->cb(w->arg, &a);
	relay_audit_clear(&a);
	return rc;
}

int
relay_audit_foreach(struct relay_store *st,
                    int (*cb)(void *arg, const struct relay_audit_entry *e), void *arg,
                    uint64_t *damaged)
{
	struct relay_store_hist *h = relay_store_hist(st);
	struct audit_walk w = { cb, arg, 0 };
	int rc;

	if (damaged)
		*damaged = 0;
	if (ro_missing(h))
		return 0;
	rc = walk(st, h->audit, NULL, audit_visit, &w);
	if (damaged)
		*damaged = w.damaged;
	return rc;
}

/* ---- edits ---- */

static int
edit_put(struct relay_store_hist *h, MDB_txn *txn, uint64_t id, uint32_t version,
         const struct relay_edit *e)
{
	unsigned char kb[12], *buf;
	size_t len;
	MDB_val k, v;
	int rc;

	if ((rc = relay_edit_encode(e, &buf, &len)))
		return rc;
	be64(kb, id);
	kb[8] = (unsigned char)(version >> 24);
	kb[9] = (unsigned char)(version >> 16);
	kb[10] = (unsigned char)(version >> 8);
	kb[11] = (unsigned char)version;
	k = mval(kb, 12);
	v = mval(buf, len);
	rc = mdb_put(txn, h->edits, &k, &v, 0);
	free(buf);
	return rc;
}

/* The highest version kept for id, 0 when none. */
static int
edit_last(struct relay_store_hist *h, MDB_txn *txn, uint64_t id, uint32_t *version)
{
	MDB_cursor *cur;
	unsigned char kb[12];
	MDB_val k, v;
	int rc;

	*version = 0;
	be64(kb, id + 1);
	memset(kb + 8, 0, 4);
	k = mval(kb, 12);
	if ((rc = mdb_cursor_open(txn, h->edits, &cur)))
		return rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0)
		rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
	else if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (rc == 0 && k.mv_size == 12 && get64(k.mv_data) == id) {
		const unsigned char *p = (const unsigned char *)k.mv_data + 8;
		*version = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
do_edit(struct relay_store *st, MDB_txn *txn, uint64_t id, const void *body, size_t len,
        const char *user, int64_t now_ms, uint32_t *version)
{
	struct relay_store_hist *h = relay_store_hist(st);
	struct relay_event ev;
	uint32_t last;
	unsigned char *copy;
	int rc;

	if ((rc = relay_store_get_dead(st, txn, id, &ev)))
		return rc;
	if ((rc = edit_last(h, txn, id, &last)))
		goto out;
	if (last == 0) {
		struct relay_edit orig = { .at_ms = ev.received_ms, .user = NULL, .body = ev.body,
			                   .body_len = ev.body_len };
		if ((rc = edit_put(h, txn, id, 1, &orig)))
			goto out;
		last = 1;
	}
	struct relay_edit ne = { .at_ms = now_ms, .user = (char *)user,
		                 .body = (unsigned char *)body, .body_len = len };
	if ((rc = edit_put(h, txn, id, last + 1, &ne)))
		goto out;
	if (!(copy = malloc(len + 1))) {
		rc = ENOMEM;
		goto out;
	}
	if (len)
		memcpy(copy, body, len);
	copy[len] = '\0';
	free(ev.body);
	ev.body = copy;
	ev.body_len = len;
	if ((rc = relay_store_int_dead_put(st, txn, &ev)))
		goto out;
	*version = last + 1;
out:
	relay_event_clear(&ev);
	return rc;
}

int
relay_edit_add(struct relay_store *st, MDB_txn *txn, uint64_t id, const void *body, size_t len,
               const char *user, int64_t now_ms, uint32_t *version)
{
	MDB_txn *use, *own;
	uint32_t v = 0;
	int rc;

	if (!relay_store_hist(st)->have)
		return EACCES;
	if ((rc = relay_store_int_fault(st, "edit")))
		return rc;
	if ((rc = relay_store_int_wbegin(st, txn, &use, &own)))
		return rc;
	rc = do_edit(st, use, id, body, len, user, now_ms, &v);
	if ((rc = relay_store_int_wend(st, own, rc)))
		return rc;
	if (version)
		*version = v;
	return 0;
}

int
relay_edit_list(struct relay_store *st, MDB_txn *txn, uint64_t id, struct relay_edit **out,
                size_t *n, uint64_t *damaged)
{
	struct relay_store_hist *h = relay_store_hist(st);
	struct relay_edit *arr = NULL;
	size_t cnt = 0;
	MDB_txn *use, *own;
	MDB_cursor *cur;
	unsigned char kb[12];
	MDB_val k, v;
	int rc;

	uint64_t bad = 0;

	*out = NULL;
	*n = 0;
	if (damaged)
		*damaged = 0;
	if (ro_missing(h))
		return 0;
	if ((rc = relay_store_int_rbegin(st, txn, &use, &own)))
		return rc;
	if ((rc = mdb_cursor_open(use, h->edits, &cur)))
		goto out;
	be64(kb, id);
	memset(kb + 8, 0, 4);
	k = mval(kb, 12);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size == 12 && get64(k.mv_data) == id) {
		struct relay_edit *na = realloc(arr, (cnt + 1) * sizeof(*arr));
		const unsigned char *p = (const unsigned char *)k.mv_data + 8;

		if (!na) {
			rc = ENOMEM;
			break;
		}
		arr = na;
		if ((rc = relay_edit_decode(v.mv_data, v.mv_size, &arr[cnt])) == 0)
			arr[cnt++].version = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
			                     (uint32_t)p[2] << 8 | p[3];
		else if ((rc = skip_damaged(rc, &bad)))
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	mdb_cursor_close(cur);
out:
	if (own)
		mdb_txn_abort(own);
	if (rc) {
		for (size_t i = 0; i < cnt; i++)
			relay_edit_clear(&arr[i]);
		free(arr);
		return rc;
	}
	*out = arr;
	*n = cnt;
	if (damaged)
		*damaged = bad;
	return 0;
}

uint64_t
relay_history_damaged(struct relay_store *st)
{
	return __atomic_load_n(&relay_store_hist(st)->damaged, __ATOMIC_RELAXED);
}
