/*
 * The durable store: every LMDB transaction of odoo-relay lives here or in
 * a module that keeps tables of its own through store_int.h (history.c,
 * store_poll.c); the checks made before a store is trusted are
 * store_check.c and store_child.c. The layout and the contracts are in
 * include/odoo_relay/store.h.
 *
 * Each write operation is written against an open transaction (the do_*
 * functions) and wrapped by a public function that either uses the caller's
 * transaction or runs one of its own. Operations re-read what they change
 * from the store instead of trusting the caller's copy, because
 * odoo-relayctl may have replayed, dropped or buried an event since the
 * daemon last read it: an id that vanished is -RELAY_ENOTFOUND, not damage.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "odoo_relay/error.h"
#include "odoo_relay/store.h"
#include "store_child_int.h"
#include "store_int.h"

#define STORE_MAX_READERS 126
#define STORE_MAX_DBS 32
#define STORE_FILE_MODE 0640
#define LOCK_FILE_MODE 0660
#define STORE_DIR_MODE 0750
#define KEY_BUF 512
#define PAUSE_PREFIX "pause:"

/*
 * The tail: events acknowledged but not yet in the indexes.
 *
 * A deferred ingest (relay_store_defer_index) commits the event's record
 * alone, at the end of events: the indexes (lanes, due, dedup, dedup_exp)
 * are written later for the whole tail at once (settle), so that the commit
 * a sender waits for copies the pages of one B-tree instead of five. What
 * settling needs is in the store, not in memory: the records past meta
 * "indexed" (all events up to that id are indexed) and each source's dedup
 * window (meta "dedup_window:<source>"). A settle is idempotent, and every
 * other write settles first, so that the indexes never see an event ahead
 * of an older one.
 *
 * What follows is a cache of that state, for the process's own writes:
 * the tail's ids with a hash of their dedup keys (for the duplicate check),
 * the mark, and the block of ids reserved in meta "next_id" (ids are handed
 * out from it without a write; a restart skips what is left of it). Each
 * top-level write transaction checks it against meta "next_id" and
 * "indexed", two reads: a write by another process (odoo-relayctl) that
 * touches the tail settles it, and one that takes ids reserves a block,
 * so either moves one of them. (Two handles deferring at once would not
 * see each other's tails: one process, the daemon's writer, defers.)
 * Fields change only inside a write transaction, under LMDB's writer lock,
 * except pending, which the writer thread reads outside one.
 */
struct tail_ent {
	uint64_t id;
	uint64_t hash; /* of source NUL dedup_key; 0: no dedup key */
};

#define TAIL_NEST 8 /* nested transactions whose cache state is kept */

struct tail {
	int defer;          /* relay_store_defer_index */
	int valid;          /* the fields below hold */
	uint64_t id_next, id_end; /* ids reserved: [id_next, id_end) */
	uint64_t mark;      /* meta "indexed"; valid only if have_mark */
	int have_mark;
	struct tail_ent *v;
	size_t n, cap;
	int64_t first_ms;   /* monotonic ms the oldest entry came in */
	uint64_t gen;       /* counts changes, to tell whether an abort undid any */
	struct {            /* at each open transaction's begin */
		uint64_t gen, id_next, id_end;
		int valid;
	} saved[TAIL_NEST];
	unsigned depth;     /* open transactions, the top-level one included */
	/* ids an abort gave back since the last commit, [keep_next,
	 * keep_end), for tail_load: an abort leaves no gap in the ids */
	uint64_t keep_next, keep_end;
	atomic_size_t pending; /* n as of the last top-level commit */
};

struct relay_store {
	MDB_env *env;
	MDB_dbi events, due, lanes, dedup, dedup_exp, dead, meta;
	MDB_dbi versions, versions_exp;
	int have_versions; /* 0: opened read-only on a store made before them */
	struct relay_store_hist hist; /* history, trace index, audit, edits (store_int.h) */
	unsigned flags;
	size_t maxkey;
	char *dir;
	int (*fault)(void *arg, const char *op);
	void *fault_arg;
	/* The top-level write transaction this process holds, to tell it from
	 * nested ones at commit. Only touched by the thread holding LMDB's
	 * writer lock, which orders the accesses. */
	MDB_txn *top;
	MDB_txn *flat; /* top while it runs a group flat (relay_store_txn_flat) */
	/* Ingest's view of the free space during one top-level transaction:
	 * measured at its first ingest (or carried over: room_carries), then
	 * reduced by an estimate of each
	 * ingest's pages (LMDB does not show a live transaction's usage). */
	uint64_t top_gen;  /* counts top-level write transactions */
	uint64_t room_gen; /* the transaction room was measured in */
	size_t room;       /* bytes believed free, less the reserve */
	int64_t room_ms;   /* when it was measured (monotonic) */
	size_t psize;
	struct tail tail;  /* the events not indexed yet (below) */
};

/* A key under construction. */
struct key {
	unsigned char b[KEY_BUF];
	size_t len;
};

/* ---- small helpers ---- */

static void
put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static uint64_t
get_be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Due times before the epoch sort as the epoch: they are all "due now". */
static uint64_t
ms_key(int64_t ms)
{
	return ms < 0 ? 0 : (uint64_t)ms;
}

static int
map_err(int rc)
{
	if (rc == MDB_MAP_FULL || rc == ENOSPC || rc == EDQUOT)
		return -RELAY_EFULL;
	return rc;
}

static int
fault(struct relay_store *st, const char *op)
{
	return st->fault ? st->fault(st->fault_arg, op) : 0;
}

static int
has_lane(const struct relay_event *ev)
{
	return ev->lane && ev->lane[0];
}

static int
same_str(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/* source "\0" lane "\0", leaving room for a u64 id after it. */
static int
lane_prefix(struct relay_store *st, const char *source, const char *lane, struct key *k)
{
	size_t ls = strlen(source), ll = strlen(lane);

	if (ls + 1 + ll + 1 + 8 > st->maxkey)
		return -RELAY_ETOOBIG;
	memcpy(k->b, source, ls + 1);
	memcpy(k->b + ls + 1, lane, ll + 1);
	k->len = ls + 1 + ll + 1;
	return 0;
}

/* k->b = u64 expiry (filled in later) + source "\0" dedup_key: the dedup
 * key proper starts at k->b + 8, the dedup_exp key is all of it. */
static int
dedup_key(struct relay_store *st, const char *source, const char *dkey, struct key *k)
{
	size_t ls = strlen(source), ld = strlen(dkey);

	if (8 + ls + 1 + ld > st->maxkey)
		return -RELAY_ETOOBIG;
	memset(k->b, 0, 8);
	memcpy(k->b + 8, source, ls + 1);
	memcpy(k->b + 8 + ls + 1, dkey, ld);
	k->len = 8 + ls + 1 + ld;
	return 0;
}

static MDB_val
val_of(void *p, size_t len)
{
	MDB_val v = { len, p };

	return v;
}

/* Deletes key, treating "not there" as done. */
static int
del_key(MDB_txn *txn, MDB_dbi dbi, void *p, size_t len)
{
	MDB_val k = val_of(p, len);
	int rc = mdb_del(txn, dbi, &k, NULL);

	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* 0 if key is present, MDB_NOTFOUND if not, else an error. */
static int
has_key(MDB_txn *txn, MDB_dbi dbi, void *p, size_t len)
{
	MDB_val k = val_of(p, len), v;

	return mdb_get(txn, dbi, &k, &v);
}

static int
put_empty(MDB_txn *txn, MDB_dbi dbi, void *p, size_t len)
{
	MDB_val k = val_of(p, len), v = { 0, NULL };

	return mdb_put(txn, dbi, &k, &v, 0);
}

/* ---- records ---- */

static int
rec_get(MDB_txn *txn, MDB_dbi dbi, uint64_t id, struct relay_event *ev)
{
	unsigned char kb[8];
	MDB_val k = val_of(kb, 8), v;
	int rc;

	memset(ev, 0, sizeof(*ev));
	put_be64(kb, id);
	if ((rc = mdb_get(txn, dbi, &k, &v)))
		return rc == MDB_NOTFOUND ? -RELAY_ENOTFOUND : rc;
	return relay_record_decode(v.mv_data, v.mv_size, ev);
}

static int
rec_put(MDB_txn *txn, MDB_dbi dbi, const struct relay_event *ev, unsigned flags)
{
	unsigned char kb[8], *buf;
	size_t len;
	MDB_val k = val_of(kb, 8), v;
	int rc;

	if ((rc = relay_record_encode(ev, &buf, &len)))
		return rc;
	put_be64(kb, ev->id);
	v = val_of(buf, len);
	rc = mdb_put(txn, dbi, &k, &v, flags);
	free(buf);
	return rc;
}

static int
rec_del(MDB_txn *txn, MDB_dbi dbi, uint64_t id)
{
	unsigned char kb[8];

	put_be64(kb, id);
	return del_key(txn, dbi, kb, 8);
}

static int
rec_has(MDB_txn *txn, MDB_dbi dbi, uint64_t id)
{
	unsigned char kb[8];

	put_be64(kb, id);
	return has_key(txn, dbi, kb, 8);
}

/* ---- due ---- */

static void
due_keyb(unsigned char *kb, int64_t due_ms, uint64_t id)
{
	put_be64(kb, ms_key(due_ms));
	put_be64(kb + 8, id);
}

static int
due_put(struct relay_store *st, MDB_txn *txn, int64_t due_ms, uint64_t id)
{
	unsigned char kb[16];

	due_keyb(kb, due_ms, id);
	return put_empty(txn, st->due, kb, 16);
}

static int
due_del(struct relay_store *st, MDB_txn *txn, int64_t due_ms, uint64_t id)
{
	unsigned char kb[16];

	due_keyb(kb, due_ms, id);
	return del_key(txn, st->due, kb, 16);
}

static int
due_has(struct relay_store *st, MDB_txn *txn, int64_t due_ms, uint64_t id)
{
	unsigned char kb[16];

	due_keyb(kb, due_ms, id);
	return has_key(txn, st->due, kb, 16);
}

/* ---- lanes ---- */

static void
lane_with_id(const struct key *prefix, uint64_t id, struct key *k)
{
	memcpy(k->b, prefix->b, prefix->len);
	put_be64(k->b + prefix->len, id);
	k->len = prefix->len + 8;
}

static int
lane_put(struct relay_store *st, MDB_txn *txn, const struct key *prefix, uint64_t id)
{
	struct key k;

	lane_with_id(prefix, id, &k);
	return put_empty(txn, st->lanes, k.b, k.len);
}

static int
lane_del(struct relay_store *st, MDB_txn *txn, const struct key *prefix, uint64_t id)
{
	struct key k;

	lane_with_id(prefix, id, &k);
	return del_key(txn, st->lanes, k.b, k.len);
}

static int
lane_has(struct relay_store *st, MDB_txn *txn, const struct key *prefix, uint64_t id)
{
	struct key k;

	lane_with_id(prefix, id, &k);
	return has_key(txn, st->lanes, k.b, k.len);
}

/* The lowest id >= from_id in the lane: 0, -RELAY_ENOTFOUND or an error.
 * Keys of one lane are exactly prefix + 8 bytes, and since neither source
 * nor lane contains a NUL no other lane's keys share the prefix. */
static int
lane_first_from(struct relay_store *st, MDB_txn *txn, const struct key *prefix, uint64_t from_id,
                uint64_t *id)
{
	MDB_cursor *cur;
	struct key k;
	MDB_val kv, v;
	int rc;

	lane_with_id(prefix, from_id, &k);
	kv = val_of(k.b, k.len);
	if ((rc = mdb_cursor_open(txn, st->lanes, &cur)))
		return rc;
	rc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE);
	if (rc == 0) {
		if (kv.mv_size == prefix->len + 8 && memcmp(kv.mv_data, prefix->b, prefix->len) == 0)
			*id = get_be64((const unsigned char *)kv.mv_data + prefix->len);
		else
			rc = -RELAY_ENOTFOUND;
	} else if (rc == MDB_NOTFOUND) {
		rc = -RELAY_ENOTFOUND;
	}
	mdb_cursor_close(cur);
	return rc;
}

/* Makes the queued event ev deliverable: a due entry at the later of its
 * due_ms and now_ms (the record follows, so that the invariant "due key ==
 * record's due_ms" holds). Nothing to do if it is in due already. */
static int
make_due(struct relay_store *st, MDB_txn *txn, struct relay_event *ev, int64_t now_ms)
{
	int rc = due_has(st, txn, ev->due_ms, ev->id);

	if (rc != MDB_NOTFOUND)
		return rc;
	if (ev->due_ms < now_ms) {
		ev->due_ms = now_ms;
		if ((rc = rec_put(txn, st->events, ev, 0)))
			return rc;
	}
	return due_put(st, txn, ev->due_ms, ev->id);
}

/* Removes the due entry of queued event id, if it has one: it is no longer
 * its lane's head. */
static int
park(struct relay_store *st, MDB_txn *txn, uint64_t id)
{
	struct relay_event ev;
	int rc = rec_get(txn, st->events, id, &ev);

	if (rc == -RELAY_ENOTFOUND)
		return 0;
	if (rc == 0)
		rc = due_del(st, txn, ev.due_ms, id);
	relay_event_clear(&ev);
	return rc;
}

/* Makes the head of the lane deliverable, whatever happened before:
 * idempotent. A head that is a dead letter holds the lane; a lane entry
 * with neither an event nor a dead letter behind it can only be left over
 * from damage, and is removed so that the lane does not stall forever. */
static int
promote(struct relay_store *st, MDB_txn *txn, const struct key *prefix, int64_t now_ms)
{
	struct relay_event ev;
	uint64_t head;
	int rc;

	for (;;) {
		rc = lane_first_from(st, txn, prefix, 0, &head);
		if (rc == -RELAY_ENOTFOUND)
			return 0;
		if (rc)
			return rc;
		rc = rec_get(txn, st->events, head, &ev);
		if (rc == 0) {
			rc = make_due(st, txn, &ev, now_ms);
			relay_event_clear(&ev);
			return rc;
		}
		if (rc != -RELAY_ENOTFOUND)
			return rc;
		rc = rec_has(txn, st->dead, head);
		if (rc != MDB_NOTFOUND)
			return rc; /* 0: held by a dead letter */
		if ((rc = lane_del(st, txn, prefix, head)))
			return rc;
	}
}

/* ---- meta ---- */

static int
meta_get_u64(struct relay_store *st, MDB_txn *txn, const char *name, uint64_t *v)
{
	MDB_val k = val_of((void *)name, strlen(name)), d;
	int rc = mdb_get(txn, st->meta, &k, &d);

	if (rc)
		return rc;
	if (d.mv_size != 8)
		return -RELAY_ECORRUPT;
	*v = get_be64(d.mv_data);
	return 0;
}

static int
meta_put_u64(struct relay_store *st, MDB_txn *txn, const char *name, uint64_t v)
{
	unsigned char b[8];
	MDB_val k = val_of((void *)name, strlen(name)), d = val_of(b, 8);

	put_be64(b, v);
	return mdb_put(txn, st->meta, &k, &d, 0);
}

/* ---- the tail (struct tail, above) ---- */

#define TAIL_MAX 256   /* entries: past this an ingest settles the tail first */
#define TAIL_AGE_MS 50 /* or once its oldest entry waited this long */
#define ID_BLOCK 64    /* ids reserved in meta "next_id" by one write */
#define WINDOW_PREFIX "dedup_window:"

static int64_t mono_ms(void);
static int read_begin(struct relay_store *st, MDB_txn *txn, MDB_txn **use, MDB_txn **own);

/* FNV-1a of source NUL dedup_key, never 0: a match is checked against the
 * record, so it only has to spread. */
static uint64_t
tail_hash(const char *source, const char *dkey)
{
	const unsigned char *p;
	uint64_t h = 14695981039346656037ull;

	for (p = (const unsigned char *)source; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	h *= 1099511628211ull;
	for (p = (const unsigned char *)dkey; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return h ? h : 1;
}

/* meta's name for source's window, NUL-terminated in k->b */
static int
window_key(struct relay_store *st, const char *source, struct key *k)
{
	size_t lp = sizeof(WINDOW_PREFIX) - 1, ls = strlen(source);

	if (lp + ls > st->maxkey || lp + ls >= sizeof(k->b))
		return -RELAY_ETOOBIG;
	memcpy(k->b, WINDOW_PREFIX, lp);
	memcpy(k->b + lp, source, ls + 1);
	k->len = lp + ls;
	return 0;
}

/* The dedup window a settle gives source's keys; 0: none. */
static int
window_get(struct relay_store *st, MDB_txn *txn, const char *source, int64_t *ms)
{
	struct key k;
	uint64_t v = 0;
	int rc = window_key(st, source, &k);

	if (rc == 0 && (rc = meta_get_u64(st, txn, (const char *)k.b, &v)) == MDB_NOTFOUND)
		rc = 0;
	*ms = (int64_t)v;
	return rc;
}

/* Written only when it changes: a read, not a page, per ingest. */
static int
window_set(struct relay_store *st, MDB_txn *txn, const char *source, int64_t ms)
{
	struct key k;
	int64_t cur;
	int rc;

	if ((rc = window_get(st, txn, source, &cur)) || cur == ms ||
	    (rc = window_key(st, source, &k)))
		return rc;
	return meta_put_u64(st, txn, (const char *)k.b, (uint64_t)ms);
}

static int
tail_add(struct relay_store *st, uint64_t id, uint64_t hash)
{
	struct tail *t = &st->tail;

	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;
		struct tail_ent *v = realloc(t->v, cap * sizeof(*v));

		if (!v)
			return ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	if (t->n == 0)
		t->first_ms = mono_ms();
	t->v[t->n].id = id;
	t->v[t->n].hash = hash;
	t->n++;
	t->gen++;
	return 0;
}

/* Reads the cache from the store, as txn sees it. */
static int
tail_load(struct relay_store *st, MDB_txn *txn)
{
	struct tail *t = &st->tail;
	struct relay_event ev;
	unsigned char kb[8];
	MDB_cursor *cur;
	MDB_val k, v;
	int64_t window;
	int rc;

	t->valid = 0;
	t->n = 0;
	t->gen++;
	rc = meta_get_u64(st, txn, "next_id", &t->id_next);
	if (rc == MDB_NOTFOUND)
		t->id_next = 1;
	else if (rc)
		return rc;
	t->id_end = t->id_next; /* nothing reserved: the next id writes a block */
	if (t->keep_end == t->id_next && t->keep_next < t->keep_end)
		t->id_next = t->keep_next; /* what an abort gave back */
	rc = meta_get_u64(st, txn, "indexed", &t->mark);
	t->have_mark = rc == 0;
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (rc || !t->have_mark)
		goto out;
	if ((rc = mdb_cursor_open(txn, st->events, &cur)))
		return rc;
	put_be64(kb, t->mark + 1);
	k = val_of(kb, 8);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		uint64_t hash = 0;

		if (k.mv_size != 8) {
			rc = -RELAY_ECORRUPT;
			break;
		}
		rc = relay_record_decode(v.mv_data, v.mv_size, &ev);
		/* damaged: the walk at start reports it; the settle passes it by */
		if (rc == -RELAY_ECORRUPT || rc == -RELAY_EVERSION)
			rc = 0;
		else if (rc)
			break;
		else if (ev.source && ev.dedup_key && ev.dedup_key[0] &&
		         !(rc = window_get(st, txn, ev.source, &window)) && window > 0)
			hash = tail_hash(ev.source, ev.dedup_key);
		if (!rc)
			rc = tail_add(st, get_be64(k.mv_data), hash);
		relay_event_clear(&ev);
		if (rc)
			break;
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		rc = 0;
out:
	if (rc == 0)
		t->valid = 1;
	return rc;
}

/* 1 if the cache no longer matches the store as txn sees it (or cannot
 * tell): another process wrote. */
static int
tail_stale(struct relay_store *st, MDB_txn *txn)
{
	struct tail *t = &st->tail;
	uint64_t v;
	int rc;

	if (meta_get_u64(st, txn, "next_id", &v) || v != t->id_end)
		return 1;
	rc = meta_get_u64(st, txn, "indexed", &v);
	if (t->have_mark)
		return rc != 0 || v != t->mark;
	return rc != MDB_NOTFOUND;
}

static int
tail_ready(struct relay_store *st, MDB_txn *txn)
{
	return st->tail.valid ? 0 : tail_load(st, txn);
}

/* The next id. Written to meta once per ID_BLOCK: "next_id" stays above
 * every id handed out, which is all a restart needs. */
static int
alloc_id(struct relay_store *st, MDB_txn *txn, uint64_t *id)
{
	struct tail *t = &st->tail;
	int rc;

	if (t->id_next >= t->id_end) {
		if ((rc = meta_put_u64(st, txn, "next_id", t->id_next + ID_BLOCK)))
			return rc;
		t->id_end = t->id_next + ID_BLOCK;
	}
	*id = t->id_next++;
	t->gen++;
	return 0;
}

/* The next id, one write each: ingest that does not defer keeps ids
 * without gaps across restarts. */
static int
alloc_id_exact(struct relay_store *st, MDB_txn *txn, uint64_t *id)
{
	struct tail *t = &st->tail;
	int rc = meta_get_u64(st, txn, "next_id", id);

	if (rc == MDB_NOTFOUND)
		*id = 1;
	else if (rc)
		return rc;
	if ((rc = meta_put_u64(st, txn, "next_id", *id + 1)))
		return rc;
	t->id_next = t->id_end = *id + 1;
	t->gen++;
	return 0;
}

/* Builds dk for (source, dkey) and looks it up: 0 with the id and expiry
 * it holds, MDB_NOTFOUND, or an error. */
static int
dedup_get(struct relay_store *st, MDB_txn *txn, const char *source, const char *dkey,
          struct key *dk, uint64_t *id, int64_t *expiry)
{
	MDB_val k, v;
	int rc;

	if ((rc = dedup_key(st, source, dkey, dk)))
		return rc;
	k = val_of(dk->b + 8, dk->len - 8);
	if ((rc = mdb_get(txn, st->dedup, &k, &v)))
		return rc;
	if (v.mv_size != 16)
		return -RELAY_ECORRUPT;
	*id = get_be64(v.mv_data);
	*expiry = (int64_t)get_be64((const unsigned char *)v.mv_data + 8);
	return 0;
}

/* Remembers dedup key dk (from dedup_key) for event id until expiry. */
/* Drops the sweep's entry of a key found expired (dk as dedup_get left
 * it, expiry its expiry): the caller puts the key again for a new event. */
static int
dedup_unexpire(struct relay_store *st, MDB_txn *txn, struct key *dk, int64_t expiry)
{
	put_be64(dk->b, (uint64_t)expiry);
	return del_key(txn, st->dedup_exp, dk->b, dk->len);
}

static int
dedup_put(struct relay_store *st, MDB_txn *txn, struct key *dk, uint64_t id, int64_t expiry)
{
	unsigned char vb[16];
	MDB_val k = val_of(dk->b + 8, dk->len - 8), v = val_of(vb, 16);
	int rc;

	put_be64(vb, id);
	put_be64(vb + 8, (uint64_t)expiry);
	if ((rc = mdb_put(txn, st->dedup, &k, &v, 0)))
		return rc;
	put_be64(dk->b, (uint64_t)expiry);
	return put_empty(txn, st->dedup_exp, dk->b, dk->len);
}

/* Puts ev in events as the new event id, due at now_ms (and received
 * then, unless the caller said when); see unput_event. */
static int
put_new_event(struct relay_store *st, MDB_txn *txn, struct relay_event *ev, uint64_t id,
              int64_t now_ms, unsigned flags)
{
	int rc;

	ev->id = id;
	ev->due_ms = now_ms;
	if (!ev->received_ms)
		ev->received_ms = now_ms;
	rc = rec_put(txn, st->events, ev, flags);
	return rc == MDB_KEYEXIST ? -RELAY_ECORRUPT : rc; /* next_id behind the events: damage */
}

/* An ingest failed: ev's fields as the caller gave them. */
static void
unput_event(struct relay_event *ev, const struct relay_event *saved)
{
	ev->id = saved->id;
	ev->due_ms = saved->due_ms;
	ev->received_ms = saved->received_ms;
}

/* Puts ev, a record of the tail, in the indexes, as ingest did before the
 * tail: idempotent, for a settle that a crash cut short, or a tail that
 * the build before it (which kept no mark) indexed already. */
static int
index_one(struct relay_store *st, MDB_txn *txn, const struct relay_event *ev)
{
	struct key lk, dk;
	uint64_t head, held;
	int64_t window, expiry;
	int rc;

	if (has_lane(ev)) {
		if ((rc = lane_prefix(st, ev->source, ev->lane, &lk)))
			return rc;
		rc = lane_has(st, txn, &lk, ev->id);
		if (rc == MDB_NOTFOUND) {
			rc = lane_first_from(st, txn, &lk, 0, &head);
			if (rc == -RELAY_ENOTFOUND) /* its lane's head */
				rc = due_put(st, txn, ev->due_ms, ev->id);
			if (!rc)
				rc = lane_put(st, txn, &lk, ev->id);
		}
	} else {
		rc = due_has(st, txn, ev->due_ms, ev->id);
		if (rc == MDB_NOTFOUND)
			rc = due_put(st, txn, ev->due_ms, ev->id);
	}
	if (rc || !ev->dedup_key || !ev->dedup_key[0])
		return rc;
	if ((rc = window_get(st, txn, ev->source, &window)) || window <= 0)
		return rc;
	rc = dedup_get(st, txn, ev->source, ev->dedup_key, &dk, &held, &expiry);
	if (rc == 0) {
		if (held == ev->id)
			return 0;
		/* an expired key of an earlier event: replaced */
		if ((rc = dedup_unexpire(st, txn, &dk, expiry)))
			return rc;
	} else if (rc != MDB_NOTFOUND) {
		return rc;
	}
	expiry = ev->due_ms > INT64_MAX - window ? INT64_MAX : ev->due_ms + window;
	return dedup_put(st, txn, &dk, ev->id, expiry);
}

/*
 * For readers: calls cb for each event of the tail (as txn sees it) that
 * the settle will make due, with the due time it will have: a reader
 * shows the queue as it is about to be, not an event "parked" for the
 * milliseconds before its settle. *unsettled counts the tail. A lane is
 * held by any event of it in lanes, or by an earlier one of the tail.
 */
static int
tail_due(struct relay_store *st, MDB_txn *txn, int (*cb)(void *arg, uint64_t id, int64_t due_ms),
         void *arg, uint64_t *unsettled)
{
	struct relay_event ev;
	struct key lk, *held = NULL;
	size_t n_held = 0, cap = 0;
	unsigned char kb[8];
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t mark, head;
	int rc;

	*unsettled = 0;
	rc = meta_get_u64(st, txn, "indexed", &mark);
	if (rc)
		return rc == MDB_NOTFOUND ? 0 : rc;
	if ((rc = mdb_cursor_open(txn, st->events, &cur)))
		return rc;
	put_be64(kb, mark + 1);
	k = val_of(kb, 8);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		int due = 1;

		if (k.mv_size != 8 || relay_record_decode(v.mv_data, v.mv_size, &ev))
			continue; /* the walk reports damage; a view does not fail on it */
		(*unsettled)++;
		if (!ev.source || !ev.source[0]) {
			due = 0; /* the settle passes it by */
		} else if (has_lane(&ev) && !(rc = lane_prefix(st, ev.source, ev.lane, &lk))) {
			for (size_t i = 0; due && i < n_held; i++)
				if (held[i].len == lk.len && memcmp(held[i].b, lk.b, lk.len) == 0)
					due = 0;
			if (due) {
				rc = lane_first_from(st, txn, &lk, 0, &head);
				if (rc == 0)
					due = 0;
				else if (rc == -RELAY_ENOTFOUND)
					rc = 0;
			}
			if (!rc && due) {
				if (n_held == cap) {
					struct key *p = realloc(held, (cap ? 2 * cap : 8) * sizeof(*p));

					if (!p)
						rc = ENOMEM;
					else {
						held = p;
						cap = cap ? 2 * cap : 8;
					}
				}
				if (!rc)
					held[n_held++] = lk;
			}
		} else if (rc == -RELAY_ETOOBIG) {
			rc = 0;
			due = 0;
		}
		if (!rc && due && cb)
			rc = cb(arg, get_be64(k.mv_data), ev.due_ms);
		relay_event_clear(&ev);
		if (rc)
			break;
	}
	mdb_cursor_close(cur);
	free(held);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int
relay_store_tail_due(struct relay_store *st, MDB_txn *txn,
                     int (*cb)(void *arg, uint64_t id, int64_t due_ms), void *arg)
{
	MDB_txn *use, *own;
	uint64_t n;
	int rc;

	if ((rc = read_begin(st, txn, &use, &own)))
		return rc;
	rc = tail_due(st, use, cb, arg, &n);
	if (own)
		mdb_txn_abort(own);
	return rc;
}

/* Indexes the whole tail and moves the mark past it. */
static int
do_settle(struct relay_store *st, MDB_txn *txn)
{
	struct tail *t = &st->tail;
	struct relay_event ev;
	int rc;

	if ((rc = tail_ready(st, txn)) || t->n == 0)
		return rc;
	for (size_t i = 0; i < t->n; i++) {
		rc = rec_get(txn, st->events, t->v[i].id, &ev);
		/* gone already; or damaged, which the walk at start reports: not
		 * a reason to stop every write that settles first */
		if (rc == -RELAY_ENOTFOUND || rc == -RELAY_ECORRUPT || rc == -RELAY_EVERSION)
			continue;
		if (!rc && ev.source && ev.source[0])
			rc = index_one(st, txn, &ev);
		relay_event_clear(&ev);
		if (rc)
			return rc;
	}
	if ((rc = meta_put_u64(st, txn, "indexed", t->v[t->n - 1].id)))
		return rc;
	t->mark = t->v[t->n - 1].id;
	t->n = 0;
	t->gen++;
	return 0;
}

static int
pause_key(struct relay_store *st, const char *route, struct key *k)
{
	size_t lp = strlen(PAUSE_PREFIX), lr;

	if (!route) {
		memcpy(k->b, "paused", 6);
		k->len = 6;
		return 0;
	}
	lr = strlen(route);
	if (lp + lr > st->maxkey)
		return -RELAY_ETOOBIG;
	memcpy(k->b, PAUSE_PREFIX, lp);
	memcpy(k->b + lp, route, lr);
	k->len = lp + lr;
	return 0;
}

/* ---- transactions ---- */

int
relay_store_txn_begin(struct relay_store *st, MDB_txn *parent, MDB_txn **txn)
{
	int rc;

	*txn = NULL;
	if (st->flags & RELAY_STORE_RDONLY)
		return EACCES;
	if ((rc = mdb_txn_begin(st->env, parent, 0, txn)))
		return map_err(rc);
	if (!parent) {
		st->top = *txn;
		st->top_gen++;
		st->tail.depth = 0;
		if (st->tail.valid && tail_stale(st, *txn))
			st->tail.valid = 0;
	}
	if (st->tail.depth < TAIL_NEST) {
		struct tail *t = &st->tail;

		t->saved[t->depth].gen = t->gen;
		t->saved[t->depth].id_next = t->id_next;
		t->saved[t->depth].id_end = t->id_end;
		t->saved[t->depth].valid = t->valid;
	}
	st->tail.depth++;
	return 0;
}

/* A transaction ends: an abort that undid changes to the cache drops it. */
static void
tail_txn_end(struct relay_store *st, int aborted)
{
	struct tail *t = &st->tail;

	if (t->depth == 0)
		return;
	t->depth--;
	if (!aborted || (t->depth < TAIL_NEST && t->saved[t->depth].gen == t->gen))
		return;
	t->valid = 0;
	/* begun with the cache unknown: what was given back before stays */
	if (t->depth < TAIL_NEST && t->saved[t->depth].valid) {
		t->keep_next = t->saved[t->depth].id_next;
		t->keep_end = t->saved[t->depth].id_end;
	}
}

int
relay_store_txn_commit(struct relay_store *st, MDB_txn *txn)
{
	int rc;

	if (txn == st->top) {
		st->top = NULL;
		st->flat = NULL;
		st->tail.depth = 1;
		if ((rc = fault(st, "commit"))) {
			mdb_txn_abort(txn);
			tail_txn_end(st, 1);
			return map_err(rc);
		}
		if ((rc = mdb_txn_commit(txn))) { /* LMDB freed txn */
			tail_txn_end(st, 1);
			return map_err(rc);
		}
		st->tail.depth = 0;
		st->tail.keep_next = st->tail.keep_end = 0;
		/* Unknown counts as one: the writer settles, which finds out. */
		atomic_store(&st->tail.pending, st->tail.valid ? st->tail.n : 1);
		return 0;
	}
	rc = mdb_txn_commit(txn);
	tail_txn_end(st, rc != 0);
	return map_err(rc);
}

void
relay_store_txn_abort(struct relay_store *st, MDB_txn *txn)
{
	if (!txn)
		return;
	if (txn == st->top) {
		st->top = st->flat = NULL;
		st->tail.depth = 1;
	}
	tail_txn_end(st, 1);
	mdb_txn_abort(txn);
}

void
relay_store_txn_flat(struct relay_store *st, MDB_txn *top)
{
	st->flat = top && top == st->top ? top : NULL;
}

int
relay_store_int_flat(const struct relay_store *st, const MDB_txn *txn)
{
	return txn != NULL && txn == st->flat;
}

void
relay_store_read_end(MDB_txn *txn)
{
	if (txn)
		mdb_txn_abort(txn);
}

void
relay_store_read_park(MDB_txn *txn)
{
	if (txn)
		mdb_txn_reset(txn);
}

int
relay_store_read_renew(struct relay_store *st, MDB_txn **txn)
{
	int rc;

	if (!*txn)
		return relay_store_read_begin(st, txn);
	if ((rc = mdb_txn_renew(*txn))) {
		mdb_txn_abort(*txn);
		*txn = NULL;
		return map_err(rc);
	}
	return 0;
}

int
relay_store_read_begin(struct relay_store *st, MDB_txn **txn)
{
	int rc;

	*txn = NULL;
	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn)))
		return map_err(rc);
	return 0;
}

/* For the public write functions: use the caller's txn, or begin our own. */
static int
write_begin_raw(struct relay_store *st, MDB_txn *txn, MDB_txn **use, MDB_txn **own)
{
	int rc = 0;

	*own = NULL;
	if (!txn)
		rc = relay_store_txn_begin(st, NULL, own);
	*use = txn ? txn : *own;
	return rc;
}

/* The same, settling the tail first: every write but a deferred ingest
 * sees the indexes whole. On failure nothing is left open. */
static int
write_begin(struct relay_store *st, MDB_txn *txn, MDB_txn **use, MDB_txn **own)
{
	int rc = write_begin_raw(st, txn, use, own);

	if (rc == 0 && (rc = do_settle(st, *use)) && *own) {
		relay_store_txn_abort(st, *own);
		*own = NULL;
	}
	return map_err(rc);
}

/* Ends our own txn (commit on success, abort on failure); a caller's txn is
 * left to the caller. Returns the operation's result, mapped. */
static int
write_end(struct relay_store *st, MDB_txn *own, int rc)
{
	if (own) {
		if (rc)
			relay_store_txn_abort(st, own);
		else
			rc = relay_store_txn_commit(st, own);
	}
	return map_err(rc);
}

static int
read_begin(struct relay_store *st, MDB_txn *txn, MDB_txn **use, MDB_txn **own)
{
	int rc = 0;

	*own = NULL;
	if (!txn)
		rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, own);
	*use = txn ? txn : *own;
	return rc;
}

/* ---- open and close ---- */

/* The history's tables (store_int.h), added under schema 1 like versions:
 * a read-only open of a store made before them does without
 * (hist.have 0), a read-write one creates them. */
static int
open_hist_dbs(struct relay_store *st, MDB_txn *txn, int rdonly)
{
	static const struct {
		const char *name;
		size_t off;
	} dbs[] = {
		{ "history", offsetof(struct relay_store_hist, history) },
		{ "history_exp", offsetof(struct relay_store_hist, history_exp) },
		{ "trace", offsetof(struct relay_store_hist, trace) },
		{ "audit", offsetof(struct relay_store_hist, audit) },
		{ "edits", offsetof(struct relay_store_hist, edits) },
	};
	int rc;

	st->hist.have = 1;
	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		MDB_dbi *dbi = (MDB_dbi *)((char *)&st->hist + dbs[i].off);

		rc = mdb_dbi_open(txn, dbs[i].name, rdonly ? 0 : MDB_CREATE, dbi);
		if (rc == MDB_NOTFOUND && rdonly) {
			st->hist.have = 0;
			return 0;
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int
open_dbs(struct relay_store *st)
{
	static const struct {
		const char *name;
		size_t off;
	} dbs[] = {
		{ "events", offsetof(struct relay_store, events) },
		{ "due", offsetof(struct relay_store, due) },
		{ "lanes", offsetof(struct relay_store, lanes) },
		{ "dedup", offsetof(struct relay_store, dedup) },
		{ "dedup_exp", offsetof(struct relay_store, dedup_exp) },
		{ "dead", offsetof(struct relay_store, dead) },
		{ "meta", offsetof(struct relay_store, meta) },
	};
	/* Added later, under the same schema: older builds ignore them, and a
	 * read-only open of a store made before them does without. */
	static const struct {
		const char *name;
		size_t off;
	} later[] = {
		{ "versions", offsetof(struct relay_store, versions) },
		{ "versions_exp", offsetof(struct relay_store, versions_exp) },
	};
	int rdonly = (st->flags & RELAY_STORE_RDONLY) != 0;
	MDB_txn *txn;
	MDB_val k = val_of("schema", 6), v;
	unsigned char b[4];
	int rc;

	if ((rc = mdb_txn_begin(st->env, NULL, rdonly ? MDB_RDONLY : 0, &txn)))
		return rc;
	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		MDB_dbi *dbi = (MDB_dbi *)((char *)st + dbs[i].off);

		rc = mdb_dbi_open(txn, dbs[i].name, rdonly ? 0 : MDB_CREATE, dbi);
		if (rc == MDB_NOTFOUND)
			rc = ENOENT; /* read-only, and never initialised: no store here */
		if (rc)
			goto fail;
	}
	st->have_versions = 1;
	for (size_t i = 0; i < sizeof(later) / sizeof(later[0]); i++) {
		MDB_dbi *dbi = (MDB_dbi *)((char *)st + later[i].off);

		rc = mdb_dbi_open(txn, later[i].name, rdonly ? 0 : MDB_CREATE, dbi);
		if (rc == MDB_NOTFOUND && rdonly) {
			st->have_versions = 0;
			rc = 0;
			break;
		}
		if (rc)
			goto fail;
	}
	if ((rc = open_hist_dbs(st, txn, rdonly)))
		goto fail;

	rc = mdb_get(txn, st->meta, &k, &v);
	if (rc == 0) {
		const unsigned char *p = v.mv_data;
		uint32_t schema;

		if (v.mv_size != 4) {
			rc = -RELAY_ECORRUPT;
			goto fail;
		}
		schema = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
		if (schema > RELAY_STORE_SCHEMA)
			rc = -RELAY_EVERSION;
		else if (schema == 0)
			rc = -RELAY_ECORRUPT;
		if (rc)
			goto fail;
	} else if (rc == MDB_NOTFOUND && rdonly) {
		rc = ENOENT;
		goto fail;
	} else if (rc == MDB_NOTFOUND) {
		b[0] = b[1] = b[2] = 0;
		b[3] = RELAY_STORE_SCHEMA;
		v = val_of(b, 4);
		if ((rc = mdb_put(txn, st->meta, &k, &v, 0)) ||
		    (rc = meta_put_u64(st, txn, "next_id", 1)))
			goto fail;
	} else {
		goto fail;
	}
	/* Committing keeps the database handles, read-only or not. */
	return mdb_txn_commit(txn);
fail:
	mdb_txn_abort(txn);
	return rc;
}


static size_t
round_up(size_t n, size_t unit)
{
	if (n % unit == 0)
		return n;
	if (n > SIZE_MAX - unit)
		return n;
	return n + unit - n % unit;
}

int
relay_store_open(const char *dir, size_t map_size, unsigned flags, struct relay_store **out)
{
	struct relay_store *st;
	struct stat sb;
	char *path = NULL;
	size_t psize = (size_t)sysconf(_SC_PAGESIZE);
	off_t file_size = 0;
	int rdonly = (flags & RELAY_STORE_RDONLY) != 0;
	int rc, fd;

	*out = NULL;
	if (!(st = calloc(1, sizeof(*st))))
		return ENOMEM;
	st->flags = flags;
	if (!(st->dir = strdup(dir)) || !(path = malloc(strlen(dir) + sizeof("/data.mdb")))) {
		rc = ENOMEM;
		goto fail;
	}
	sprintf(path, "%s/data.mdb", dir);

	if (rdonly) {
		/* Checked before LMDB sees the directory, because mdb_env_open
		 * creates lock.mdb even read-only: a CLI pointed at the wrong
		 * place must leave no files behind. */
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
			rc = errno;
			goto fail;
		}
		rc = fstat(fd, &sb) ? errno : 0;
		close(fd);
		if (rc)
			goto fail;
		file_size = sb.st_size;
	} else {
		if (stat(dir, &sb) != 0) {
			rc = errno;
			if (rc != ENOENT || !(flags & RELAY_STORE_CREATE))
				goto fail;
			if (mkdir(dir, STORE_DIR_MODE) != 0 && errno != EEXIST) {
				rc = errno;
				goto fail;
			}
		} else if (!S_ISDIR(sb.st_mode)) {
			rc = ENOTDIR;
			goto fail;
		}
		if (stat(path, &sb) == 0)
			file_size = sb.st_size;
	}

	if ((rc = mdb_env_create(&st->env)))
		goto fail;
	if ((rc = mdb_env_set_maxreaders(st->env, STORE_MAX_READERS)) ||
	    (rc = mdb_env_set_maxdbs(st->env, STORE_MAX_DBS)))
		goto fail;
	/* A map smaller than the file would refuse data that is already there
	 * (say the configured size was lowered): the file's size wins. */
	if ((size_t)file_size > map_size)
		map_size = (size_t)file_size;
	if (map_size && (rc = mdb_env_set_mapsize(st->env, round_up(map_size, psize))))
		goto fail;
	if ((rc = mdb_env_open(st->env, dir, MDB_NOTLS | (rdonly ? MDB_RDONLY : 0),
	                       STORE_FILE_MODE)))
		goto fail;
	if (!rdonly) {
		/* Every reader, odoo-relayctl's read-only ones too, takes a slot
		 * in the lock file: members of the store's group may read the
		 * queue, while data.mdb stays writable by its owner alone. */
		char lock[PATH_MAX];
		if (snprintf(lock, sizeof(lock), "%s/lock.mdb", dir) < (int)sizeof(lock))
			(void)chmod(lock, LOCK_FILE_MODE);
	}
	/* Reader slots left by a crashed process would pin old pages. */
	mdb_reader_check(st->env, NULL);
	{
		MDB_stat ms;

		if ((rc = mdb_env_stat(st->env, &ms)))
			goto fail;
		st->psize = ms.ms_psize;
	}
	if ((rc = relay_store_child_length(st->env, st->dir, st->psize)))
		goto fail;
	st->maxkey = (size_t)mdb_env_get_maxkeysize(st->env);
	if (st->maxkey > KEY_BUF)
		st->maxkey = KEY_BUF;
	if ((rc = open_dbs(st)))
		goto fail;

	free(path);
	*out = st;
	return 0;
fail:
	free(path);
	relay_store_close(st);
	return rc;
}

void
relay_store_close(struct relay_store *st)
{
	if (!st)
		return;
	if (st->env)
		mdb_env_close(st->env);
	free(st->tail.v);
	free(st->dir);
	free(st);
}

const char *
relay_store_dir(const struct relay_store *st)
{
	return st->dir;
}

void
relay_store_set_fault(struct relay_store *st, int (*fn)(void *arg, const char *op), void *arg)
{
	st->fault = fn;
	st->fault_arg = arg;
}

/* ---- space ---- */

/*
 * Why ingest keeps a reserve: a delivery, a reschedule or a dead-lettering
 * must copy every page it changes before it can free any (copy-on-write),
 * and pages freed by the last commit are not reusable yet. A map filled to
 * its last pages by ingests would refuse those too, and with no delivery
 * nothing would ever be freed again: the relay would be wedged until
 * someone raised the map size. So ingests (only they) stop short of the end
 * by 1/64 of the map, between 256 KiB and 8 MiB (measured: 64 KiB was not
 * enough for a run of single deliveries in many lanes).
 */
static size_t
reserve_pages(size_t map_pages, size_t psize)
{
	size_t r = map_pages / 64, lo = (256 * 1024) / psize, hi = (8u << 20) / psize;

	return r < lo ? lo : r > hi ? hi : r;
}

/* Free pages as of the last commit: never-used pages at the end of the map
 * (as many as the disk has room for) plus the free list. Read in a read
 * transaction of its own, because LMDB does not let a write transaction open
 * a cursor on its free list. */
static int
measure_room(struct relay_store *st, size_t *pages, size_t *map_pages)
{
	MDB_envinfo info;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	mdb_filehandle_t fd;
	struct stat sb;
	struct statvfs vfs;
	size_t n, tail, free_pages = 0;
	int rc;

	if ((rc = mdb_env_info(st->env, &info)))
		return rc;
	*map_pages = info.me_mapsize / st->psize;
	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)))
		return rc;
	if ((rc = mdb_cursor_open(txn, 0 /* the free list */, &cur)) == 0) {
		while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
			/* An IDL: a count of page numbers, then the numbers. */
			if (v.mv_size >= sizeof(n)) {
				memcpy(&n, v.mv_data, sizeof(n));
				free_pages += n;
			}
		}
		if (rc == MDB_NOTFOUND)
			rc = 0;
		mdb_cursor_close(cur);
	}
	mdb_txn_abort(txn);
	if (rc)
		return rc;
	n = (size_t)info.me_last_pgno + 1;
	tail = n < *map_pages ? *map_pages - n : 0;
	/* The map's tail is room only as far as the disk lets the file grow
	 * into it: on a disk that fills before the map, deliveries would find
	 * no page to record their outcome in, and nothing would ever be freed
	 * (found by test/reliability/test_full_disk.py). Pages the file holds
	 * already past the last one in use need no more disk. */
	if (mdb_env_get_fd(st->env, &fd) == 0 && fstat(fd, &sb) == 0 && fstatvfs(fd, &vfs) == 0) {
		size_t file_pages = (size_t)sb.st_size / st->psize;
		size_t disk = (size_t)((uint64_t)vfs.f_bavail * vfs.f_frsize / st->psize);

		disk += file_pages > n ? file_pages - n : 0;
		if (disk < tail)
			tail = disk;
	}
	*pages = tail + free_pages;
	return 0;
}

/* About the encoded size of ev: the body and headers dominate. */
static size_t
ingest_size(const struct relay_event *ev)
{
	size_t n = ev->body_len + 128;

	for (size_t i = 0; i < ev->n_headers; i++)
		n += 8 + (ev->headers[i].name ? strlen(ev->headers[i].name) : 0) +
		     (ev->headers[i].value ? strlen(ev->headers[i].value) : 0);
	return n;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Measuring the room (two system calls, a read transaction and a walk of
 * the free list) cost as much as the rest of a lone ingest. Far from full,
 * the estimate of the last measurement, less what ingests took since,
 * stands for a few transactions more: at most ROOM_CARRY_TXNS of them or
 * ROOM_CARRY_MS, and only while it is over ROOM_CARRY_MIN, more than those
 * transactions can use up (at worst some sixty pages each). Near the
 * reserve every transaction measures, as before.
 */
#define ROOM_CARRY_TXNS 64
#define ROOM_CARRY_MS 100
#define ROOM_CARRY_MIN ((size_t)32 << 20)

static int
room_carries(const struct relay_store *st)
{
	return st->room >= ROOM_CARRY_MIN && st->top_gen - st->room_gen < ROOM_CARRY_TXNS &&
	       mono_ms() - st->room_ms < ROOM_CARRY_MS;
}

/* Takes room for an ingest of about len encoded bytes out of the current
 * top-level transaction's estimate, or says MDB_MAP_FULL if that would eat
 * into the reserve. Estimates: a big record gets overflow pages of its own;
 * a small one shares leaf pages, which splits leave about half full; the
 * four index entries add a little. */
static int
take_room(struct relay_store *st, size_t len)
{
	size_t map_pages, pages, need;
	int rc;

	if (len > st->psize / 2)
		need = (len / st->psize + 1) * st->psize + 512;
	else
		need = 2 * (len + 256);
	if (!st->top || (st->room_gen != st->top_gen && !room_carries(st))) {
		if ((rc = measure_room(st, &pages, &map_pages)))
			return rc;
		map_pages = reserve_pages(map_pages, st->psize);
		st->room = pages > map_pages ? (pages - map_pages) * st->psize : 0;
		st->room_gen = st->top_gen;
		st->room_ms = mono_ms();
	}
	if (st->room < need)
		return MDB_MAP_FULL;
	st->room -= need;
	return 0;
}

/* ---- write operations ---- */

static int
do_ingest(struct relay_store *st, MDB_txn *txn, struct relay_event *ev, int64_t window_ms,
          int64_t now_ms, uint64_t *idp, int *dupp)
{
	int use_dedup = ev->dedup_key && ev->dedup_key[0] && window_ms > 0;
	struct key dk, lk;
	uint64_t id, head;
	int64_t expiry;
	int parked = 0, rc;

	if (!ev->source || !ev->source[0])
		return -RELAY_EINVAL;
	if (use_dedup) {
		rc = dedup_get(st, txn, ev->source, ev->dedup_key, &dk, &id, &expiry);
		if (rc == 0) {
			if (expiry > now_ms) {
				*idp = id;
				*dupp = 1;
				return 0;
			}
			/* Expired but not swept yet: replaced below. */
			if ((rc = dedup_unexpire(st, txn, &dk, expiry)))
				return rc;
		} else if (rc != MDB_NOTFOUND) {
			return rc;
		}
	}
	if (has_lane(ev)) {
		if ((rc = lane_prefix(st, ev->source, ev->lane, &lk)))
			return rc;
		rc = lane_first_from(st, txn, &lk, 0, &head);
		if (rc == 0)
			parked = 1;
		else if (rc != -RELAY_ENOTFOUND)
			return rc;
	}

	if ((rc = take_room(st, ingest_size(ev))) || (rc = alloc_id_exact(st, txn, &id)))
		return rc;

	struct relay_event saved = *ev;

	rc = put_new_event(st, txn, ev, id, now_ms, MDB_NOOVERWRITE);
	if (!rc && has_lane(ev))
		rc = lane_put(st, txn, &lk, id);
	if (!rc && !parked)
		rc = due_put(st, txn, now_ms, id);
	if (!rc && use_dedup)
		rc = dedup_put(st, txn, &dk, id,
		               now_ms > INT64_MAX - window_ms ? INT64_MAX : now_ms + window_ms);
	/* indexed at once: the mark, if the store keeps one, moves past it */
	if (!rc && st->tail.have_mark && !(rc = meta_put_u64(st, txn, "indexed", id))) {
		st->tail.mark = id;
		st->tail.gen++;
	}
	if (rc) {
		unput_event(ev, &saved);
		return rc;
	}
	*idp = id;
	*dupp = 0;
	return 0;
}

/* Ingest into the tail: the record alone, the indexes at the next settle. */
static int
do_ingest_deferred(struct relay_store *st, MDB_txn *txn, struct relay_event *ev,
                   int64_t window_ms, int64_t now_ms, uint64_t *idp, int *dupp)
{
	struct tail *t = &st->tail;
	int has_key = ev->dedup_key && ev->dedup_key[0];
	int use_dedup = has_key && window_ms > 0;
	struct relay_event old;
	struct key dk;
	uint64_t id, hash = 0;
	int64_t expiry;
	int rc;

	if (!ev->source || !ev->source[0])
		return -RELAY_EINVAL;
	if ((rc = tail_ready(st, txn)))
		return rc;
	if ((t->n >= TAIL_MAX || (t->n && mono_ms() - t->first_ms >= TAIL_AGE_MS)) &&
	    (rc = do_settle(st, txn)))
		return rc;
	if (has_key && (rc = window_set(st, txn, ev->source, use_dedup ? window_ms : 0)))
		return rc;
	if (use_dedup) {
		rc = dedup_get(st, txn, ev->source, ev->dedup_key, &dk, &id, &expiry);
		/* an expired key stays until the settle replaces it */
		if (rc == 0 && expiry > now_ms) {
			*idp = id;
			*dupp = 1;
			return 0;
		}
		if (rc && rc != MDB_NOTFOUND)
			return rc;
		hash = tail_hash(ev->source, ev->dedup_key);
		for (size_t i = 0; i < t->n; i++) {
			if (t->v[i].hash != hash)
				continue;
			rc = rec_get(txn, st->events, t->v[i].id, &old);
			if (rc == -RELAY_ENOTFOUND)
				continue;
			if (rc)
				return rc;
			int same = same_str(old.source, ev->source) &&
			           same_str(old.dedup_key, ev->dedup_key);
			relay_event_clear(&old);
			if (same) {
				*idp = t->v[i].id;
				*dupp = 1;
				return 0;
			}
		}
	}
	if ((rc = take_room(st, ingest_size(ev))))
		return rc;
	if (!t->have_mark) {
		/* every event so far was indexed as it came */
		if ((rc = meta_put_u64(st, txn, "indexed", t->id_next - 1)))
			return rc;
		t->mark = t->id_next - 1;
		t->have_mark = 1;
		t->gen++;
	}
	if ((rc = alloc_id(st, txn, &id)))
		return rc;

	struct relay_event saved = *ev;

	/* ids only grow, so the record goes at the end of events */
	if (!(rc = put_new_event(st, txn, ev, id, now_ms, MDB_APPEND)))
		rc = tail_add(st, id, hash);
	if (rc) {
		unput_event(ev, &saved);
		return rc;
	}
	*idp = id;
	*dupp = 0;
	return 0;
}

int
relay_store_ingest(struct relay_store *st, MDB_txn *txn, struct relay_event *ev,
                   int64_t dedup_window_ms, int64_t now_ms, uint64_t *id, int *duplicate)
{
	MDB_txn *use, *own;
	uint64_t got_id = 0;
	int dup = 0, rc;

	if ((rc = fault(st, "ingest")))
		return map_err(rc);
	if (st->tail.defer) {
		if ((rc = write_begin_raw(st, txn, &use, &own)))
			return rc;
		rc = do_ingest_deferred(st, use, ev, dedup_window_ms, now_ms, &got_id, &dup);
	} else {
		if ((rc = write_begin(st, txn, &use, &own)))
			return rc;
		rc = do_ingest(st, use, ev, dedup_window_ms, now_ms, &got_id, &dup);
	}
	if ((rc = write_end(st, own, rc)))
		return rc;
	if (id)
		*id = got_id;
	if (duplicate)
		*duplicate = dup;
	return 0;
}

void
relay_store_defer_index(struct relay_store *st, int on)
{
	st->tail.defer = on != 0;
	/* a tail a crash left is settled at the first chance */
	if (on)
		atomic_store(&st->tail.pending, 1);
}

int
relay_store_settle(struct relay_store *st, MDB_txn *txn)
{
	MDB_txn *use, *own;
	int rc;

	if ((rc = fault(st, "settle")))
		return map_err(rc);
	if ((rc = write_begin_raw(st, txn, &use, &own)))
		return rc;
	return write_end(st, own, do_settle(st, use));
}

size_t
relay_store_unsettled(struct relay_store *st)
{
	return atomic_load(&st->tail.pending);
}

/* Removes queued event ev, as read in txn, and promotes its lane's next. */
static int
complete_read(struct relay_store *st, MDB_txn *txn, const struct relay_event *ev, int64_t now_ms)
{
	struct key lk;
	int rc;

	if ((rc = rec_del(txn, st->events, ev->id)) || (rc = due_del(st, txn, ev->due_ms, ev->id)))
		return rc;
	if (has_lane(ev)) {
		if (!(rc = lane_prefix(st, ev->source, ev->lane, &lk)) &&
		    !(rc = lane_del(st, txn, &lk, ev->id)))
			rc = promote(st, txn, &lk, now_ms);
	}
	return rc;
}

static int
do_complete(struct relay_store *st, MDB_txn *txn, uint64_t id, int64_t now_ms)
{
	struct relay_event ev;
	int rc;

	if ((rc = rec_get(txn, st->events, id, &ev)))
		return rc;
	rc = complete_read(st, txn, &ev, now_ms);
	relay_event_clear(&ev);
	return rc;
}

int
relay_store_complete(struct relay_store *st, MDB_txn *txn, uint64_t id, int64_t now_ms)
{
	MDB_txn *use, *own;
	int rc;

	if ((rc = fault(st, "complete")))
		return map_err(rc);
	if ((rc = write_begin(st, txn, &use, &own)))
		return rc;
	return write_end(st, own, do_complete(st, use, id, now_ms));
}

int
relay_store_int_complete_read(struct relay_store *st, MDB_txn *txn, const struct relay_event *ev,
                              int64_t now_ms)
{
	int rc;

	if ((rc = fault(st, "complete")))
		return map_err(rc);
	return map_err(complete_read(st, txn, ev, now_ms));
}

/* Whether queued event ev (as stored) may be in due: no lane, or its head.
 * A lane with no entries at all is damage; the event is then treated as
 * having no lane rather than being parked forever. */
static int
is_deliverable(struct relay_store *st, MDB_txn *txn, const struct relay_event *ev, int *yes)
{
	struct key lk;
	uint64_t head;
	int rc;

	*yes = 1;
	if (!has_lane(ev))
		return 0;
	if ((rc = lane_prefix(st, ev->source, ev->lane, &lk)))
		return rc;
	rc = lane_first_from(st, txn, &lk, 0, &head);
	if (rc == -RELAY_ENOTFOUND)
		return 0;
	if (rc == 0)
		*yes = head == ev->id;
	return rc;
}

static int
do_reschedule(struct relay_store *st, MDB_txn *txn, const struct relay_event *ev)
{
	struct relay_event old;
	int deliverable, rc;

	if ((rc = rec_get(txn, st->events, ev->id, &old)))
		return rc;
	if (!same_str(old.source, ev->source) || !same_str(old.lane, ev->lane)) {
		rc = -RELAY_EINVAL;
		goto out;
	}
	if ((rc = due_del(st, txn, old.due_ms, ev->id)) || (rc = rec_put(txn, st->events, ev, 0)) ||
	    (rc = is_deliverable(st, txn, &old, &deliverable)))
		goto out;
	if (deliverable)
		rc = due_put(st, txn, ev->due_ms, ev->id);
out:
	relay_event_clear(&old);
	return rc;
}

int
relay_store_reschedule(struct relay_store *st, MDB_txn *txn, const struct relay_event *ev)
{
	MDB_txn *use, *own;
	int rc;

	if ((rc = fault(st, "reschedule")))
		return map_err(rc);
	if ((rc = write_begin(st, txn, &use, &own)))
		return rc;
	return write_end(st, own, do_reschedule(st, use, ev));
}

static int
do_bury(struct relay_store *st, MDB_txn *txn, const struct relay_event *ev,
        enum relay_lane_policy policy, int64_t now_ms)
{
	struct relay_event old, d;
	struct key lk;
	int rc;

	if ((rc = rec_get(txn, st->events, ev->id, &old)))
		return rc;
	if (!same_str(old.source, ev->source) || !same_str(old.lane, ev->lane)) {
		rc = -RELAY_EINVAL;
		goto out;
	}
	d = *ev; /* shallow: only read by the encoder */
	if (!d.dead_ms)
		d.dead_ms = now_ms;
	if ((rc = rec_del(txn, st->events, ev->id)) || (rc = due_del(st, txn, old.due_ms, ev->id)) ||
	    (rc = rec_put(txn, st->dead, &d, 0)))
		goto out;
	if (has_lane(&old) && policy == RELAY_LANE_CONTINUE) {
		if (!(rc = lane_prefix(st, old.source, old.lane, &lk)) &&
		    !(rc = lane_del(st, txn, &lk, ev->id)))
			rc = promote(st, txn, &lk, now_ms);
	}
out:
	relay_event_clear(&old);
	return rc;
}

int
relay_store_bury(struct relay_store *st, MDB_txn *txn, const struct relay_event *ev,
                 enum relay_lane_policy policy, int64_t now_ms)
{
	MDB_txn *use, *own;
	int rc;

	if ((rc = fault(st, "bury")))
		return map_err(rc);
	if ((rc = write_begin(st, txn, &use, &own)))
		return rc;
	return write_end(st, own, do_bury(st, use, ev, policy, now_ms));
}

static int
do_replay(struct relay_store *st, MDB_txn *txn, uint64_t id, int64_t now_ms)
{
	struct relay_event ev;
	struct key lk;
	uint64_t head, next;
	int rc;

	if ((rc = rec_get(txn, st->dead, id, &ev)))
		return rc;
	rc = rec_has(txn, st->events, id);
	if (rc != MDB_NOTFOUND) {
		rc = rc ? rc : -RELAY_EEXIST;
		goto out;
	}
	ev.attempts = 0;
	ev.first_attempt_ms = 0;
	ev.dead_ms = 0;
	free(ev.dead_reason);
	free(ev.request);
	ev.dead_reason = ev.request = NULL;
	ev.due_ms = now_ms;
	if ((rc = rec_del(txn, st->dead, id)) || (rc = rec_put(txn, st->events, &ev, 0)))
		goto out;
	if (!has_lane(&ev)) {
		rc = due_put(st, txn, now_ms, id);
		goto out;
	}
	if ((rc = lane_prefix(st, ev.source, ev.lane, &lk)))
		goto out;
	rc = lane_has(st, txn, &lk, id);
	if (rc == MDB_NOTFOUND)
		rc = lane_put(st, txn, &lk, id);
	if (rc || (rc = lane_first_from(st, txn, &lk, 0, &head)))
		goto out;
	if (head != id)
		goto out; /* parked behind an earlier event */
	/* It may have displaced a head that is in due: park that one, the lane
	 * delivers in id order. */
	rc = lane_first_from(st, txn, &lk, id + 1, &next);
	if (rc == 0)
		rc = park(st, txn, next);
	else if (rc == -RELAY_ENOTFOUND)
		rc = 0;
	if (!rc)
		rc = due_put(st, txn, now_ms, id);
out:
	relay_event_clear(&ev);
	return rc;
}

int
relay_store_replay(struct relay_store *st, MDB_txn *txn, uint64_t id, int64_t now_ms)
{
	MDB_txn *use, *own;
	int rc;

	if ((rc = fault(st, "replay")))
		return map_err(rc);
	if ((rc = write_begin(st, txn, &use, &own)))
		return rc;
	return write_end(st, own, do_replay(st, use, id, now_ms));
}

static int
do_drop(struct relay_store *st, MDB_txn *txn, uint64_t id, int64_t now_ms)
{
	struct relay_event ev;
	struct key lk;
	int rc;

	if ((rc = rec_get(txn, st->dead, id, &ev)))
		return rc;
	if ((rc = rec_del(txn, st->dead, id)) || !has_lane(&ev))
		goto out;
	if ((rc = lane_prefix(st, ev.source, ev.lane, &lk)))
		goto out;
	rc = lane_has(st, txn, &lk, id);
	if (rc == MDB_NOTFOUND) {
		rc = 0; /* it did not hold its lane */
		goto out;
	}
	if (!rc && !(rc = lane_del(st, txn, &lk, id)))
		rc = promote(st, txn, &lk, now_ms);
out:
	relay_event_clear(&ev);
	return rc;
}

int
relay_store_drop(struct relay_store *st, MDB_txn *txn, uint64_t id, int64_t now_ms)
{
	MDB_txn *use, *own;
	int rc;

	if ((rc = fault(st, "drop")))
		return map_err(rc);
	if ((rc = write_begin(st, txn, &use, &own)))
		return rc;
	return write_end(st, own, do_drop(st, use, id, now_ms));
}

/*
 * Sweep an expiry index: exp holds (be64 expiry ms, key) for entries of
 * table whose value carries that expiry as a be64 at exp_at (values of
 * val_size bytes). Deletes up to max entries that expired by now_ms, the
 * oldest first, and their index rows; an entry whose value names another
 * expiry (renewed since) keeps its value, only the stale index row goes.
 */
static int
sweep_expired(MDB_txn *txn, MDB_dbi table, MDB_dbi exp, size_t val_size, size_t exp_at,
              int64_t now_ms, size_t max, size_t *swept)
{
	MDB_cursor *cur;
	MDB_val k, v, tk, tv;
	int rc = 0;

	*swept = 0;
	if ((rc = mdb_cursor_open(txn, exp, &cur)))
		return rc;
	while (*swept < max) {
		/* The first entry each time: the one before it was just deleted. */
		if ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST))) {
			if (rc == MDB_NOTFOUND)
				rc = 0;
			break;
		}
		if (k.mv_size < 8) {
			rc = -RELAY_ECORRUPT;
			break;
		}
		uint64_t expiry = get_be64(k.mv_data);

		if (expiry > ms_key(now_ms))
			break;
		/* Only if the table still says this expiry: a newer write of the
		 * same key replaced it (and its index entry) otherwise. */
		tk = val_of((unsigned char *)k.mv_data + 8, k.mv_size - 8);
		rc = mdb_get(txn, table, &tk, &tv);
		if (rc == 0 && tv.mv_size == val_size &&
		    get_be64((const unsigned char *)tv.mv_data + exp_at) == expiry)
			rc = mdb_del(txn, table, &tk, NULL);
		else if (rc == 0 || rc == MDB_NOTFOUND)
			rc = 0;
		if (rc || (rc = mdb_cursor_del(cur, 0)))
			break;
		(*swept)++;
	}
	mdb_cursor_close(cur);
	return rc;
}

static int
do_sweep(struct relay_store *st, MDB_txn *txn, int64_t now_ms, size_t max, size_t *swept)
{
	return sweep_expired(txn, st->dedup, st->dedup_exp, 16, 8, now_ms, max, swept);
}

int
relay_store_sweep_dedup(struct relay_store *st, MDB_txn *txn, int64_t now_ms, size_t max,
                        size_t *swept)
{
	MDB_txn *use, *own;
	size_t n = 0;
	int rc;

	if (swept)
		*swept = 0;
	if ((rc = fault(st, "sweep")))
		return map_err(rc);
	if ((rc = write_begin(st, txn, &use, &own)))
		return rc;
	if ((rc = write_end(st, own, do_sweep(st, use, now_ms, max, &n))))
		return rc;
	if (swept)
		*swept = n;
	return 0;
}

/* ---- versions: the stale guard's table ---- */

#define VERSION_VAL 26
#define VERSION_FORMAT 1

/* k->b = u64 expiry (filled in later) + route "\0" name: the versions key
 * starts at k->b + 8, the versions_exp key is all of it. */
static int
version_key(struct relay_store *st, const char *route, const char *name, struct key *k)
{
	size_t lr, ln;

	if (!route || !name || !*route || !*name)
		return -RELAY_EINVAL;
	lr = strlen(route);
	ln = strlen(name);
	if (8 + lr + 1 + ln > st->maxkey)
		return -RELAY_ETOOBIG;
	memset(k->b, 0, 8);
	memcpy(k->b + 8, route, lr + 1);
	memcpy(k->b + 8 + lr + 1, name, ln);
	k->len = 8 + lr + 1 + ln;
	return 0;
}

static int
version_decode(const MDB_val *v, struct relay_version_entry *e)
{
	const unsigned char *p = v->mv_data;

	if (v->mv_size < 2)
		return -RELAY_ECORRUPT;
	if (p[0] > VERSION_FORMAT)
		return -RELAY_EVERSION;
	if (p[0] != VERSION_FORMAT || v->mv_size != VERSION_VAL)
		return -RELAY_ECORRUPT;
	e->kind = p[1];
	e->version = (int64_t)get_be64(p + 2);
	e->applied_ms = (int64_t)get_be64(p + 10);
	e->expiry_ms = (int64_t)get_be64(p + 18);
	return 0;
}

static int
version_get(struct relay_store *st, MDB_txn *txn, const struct key *k,
            struct relay_version_entry *e)
{
	MDB_val kv = val_of((void *)(k->b + 8), k->len - 8), v;
	int rc = mdb_get(txn, st->versions, &kv, &v);

	if (rc == MDB_NOTFOUND)
		return -RELAY_ENOTFOUND;
	return rc ? rc : version_decode(&v, e);
}

int
relay_store_version_get(struct relay_store *st, MDB_txn *txn, const char *route,
                        const char *name, struct relay_version_entry *out)
{
	MDB_txn *use, *own;
	struct key k;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = version_key(st, route, name, &k)))
		return rc;
	if (!st->have_versions)
		return -RELAY_ENOTFOUND;
	if ((rc = read_begin(st, txn, &use, &own)))
		return rc;
	rc = version_get(st, use, &k, out);
	if (own)
		mdb_txn_abort(own);
	if (rc)
		memset(out, 0, sizeof(*out));
	return rc;
}

static int
do_version_put(struct relay_store *st, MDB_txn *txn, struct key *k,
               const struct relay_version_entry *e, int *kept)
{
	struct relay_version_entry old;
	unsigned char b[VERSION_VAL];
	MDB_val kv, v;
	int rc = version_get(st, txn, k, &old);

	*kept = 0;
	if (rc == 0) {
		/* Never backwards: a newer version applied meanwhile stays. */
		if (old.kind == e->kind && old.expiry_ms > e->applied_ms && old.version > e->version) {
			*kept = 1;
			return 0;
		}
		put_be64(k->b, ms_key(old.expiry_ms));
		if ((rc = del_key(txn, st->versions_exp, k->b, k->len)))
			return rc;
	} else if (rc != -RELAY_ENOTFOUND && rc != -RELAY_ECORRUPT) {
		return rc; /* a damaged entry is replaced; a newer format is not */
	}
	b[0] = VERSION_FORMAT;
	b[1] = (unsigned char)e->kind;
	put_be64(b + 2, (uint64_t)e->version);
	put_be64(b + 10, (uint64_t)e->applied_ms);
	put_be64(b + 18, (uint64_t)e->expiry_ms);
	kv = val_of(k->b + 8, k->len - 8);
	v = val_of(b, sizeof(b));
	if ((rc = mdb_put(txn, st->versions, &kv, &v, 0)))
		return rc;
	put_be64(k->b, ms_key(e->expiry_ms));
	return put_empty(txn, st->versions_exp, k->b, k->len);
}

int
relay_store_version_put(struct relay_store *st, MDB_txn *txn, const char *route,
                        const char *name, const struct relay_version_entry *e, int *kept)
{
	MDB_txn *use, *own;
	struct key k;
	int rc, dummy;

	if (!kept)
		kept = &dummy;
	*kept = 0;
	if (!e || e->kind < 1 || e->kind > 255)
		return -RELAY_EINVAL;
	if ((rc = version_key(st, route, name, &k)))
		return rc;
	if ((rc = fault(st, "version")))
		return map_err(rc);
	if (!st->have_versions)
		return EACCES; /* read-only */
	if ((rc = write_begin(st, txn, &use, &own)))
		return rc;
	return write_end(st, own, do_version_put(st, use, &k, e, kept));
}

static int
do_sweep_versions(struct relay_store *st, MDB_txn *txn, int64_t now_ms, size_t max,
                  size_t *swept)
{
	return sweep_expired(txn, st->versions, st->versions_exp, VERSION_VAL, 18, now_ms, max,
	                     swept);
}

int
relay_store_sweep_versions(struct relay_store *st, MDB_txn *txn, int64_t now_ms, size_t max,
                           size_t *swept)
{
	MDB_txn *use, *own;
	size_t n = 0;
	int rc;

	if (swept)
		*swept = 0;
	if ((rc = fault(st, "sweep")))
		return map_err(rc);
	if (!st->have_versions)
		return EACCES;
	if ((rc = write_begin(st, txn, &use, &own)))
		return rc;
	if ((rc = write_end(st, own, do_sweep_versions(st, use, now_ms, max, &n))))
		return rc;
	if (swept)
		*swept = n;
	return 0;
}

static int
do_set_paused(struct relay_store *st, MDB_txn *txn, const char *route, int paused)
{
	struct key k;
	unsigned char one = 1, flag = paused ? 1 : 0;
	MDB_val kv, v;
	int rc;

	if ((rc = pause_key(st, route, &k)))
		return rc;
	kv = val_of(k.b, k.len);
	if (!route) {
		v = val_of(&flag, 1);
		return mdb_put(txn, st->meta, &kv, &v, 0);
	}
	if (!paused)
		return del_key(txn, st->meta, k.b, k.len);
	v = val_of(&one, 1);
	return mdb_put(txn, st->meta, &kv, &v, 0);
}

int
relay_store_set_paused(struct relay_store *st, MDB_txn *txn, const char *route, int paused)
{
	MDB_txn *use, *own;
	int rc;

	if ((rc = fault(st, "pause")))
		return map_err(rc);
	if ((rc = write_begin(st, txn, &use, &own)))
		return rc;
	return write_end(st, own, do_set_paused(st, use, route, paused));
}

/* ---- reads ---- */

int
relay_store_get_paused(struct relay_store *st, MDB_txn *txn, const char *route, int *paused)
{
	MDB_txn *use, *own;
	struct key k;
	MDB_val kv, v;
	int rc;

	*paused = 0;
	if ((rc = pause_key(st, route, &k)))
		return rc;
	if ((rc = read_begin(st, txn, &use, &own)))
		return rc;
	kv = val_of(k.b, k.len);
	rc = mdb_get(use, st->meta, &kv, &v);
	if (rc == 0)
		*paused = route ? 1 : (v.mv_size >= 1 && ((unsigned char *)v.mv_data)[0] != 0);
	else if (rc == MDB_NOTFOUND)
		rc = 0;
	if (own)
		mdb_txn_abort(own);
	return rc;
}

int
relay_store_foreach_paused(struct relay_store *st, int (*cb)(void *arg, const char *route),
                           void *arg)
{
	size_t lp = strlen(PAUSE_PREFIX);
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k = val_of(PAUSE_PREFIX, lp), v;
	char name[KEY_BUF + 1];
	MDB_cursor_op op = MDB_SET_RANGE;
	int rc;

	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)))
		return rc;
	if ((rc = mdb_cursor_open(txn, st->meta, &cur)))
		goto out;
	while (!(rc = mdb_cursor_get(cur, &k, &v, op))) {
		op = MDB_NEXT;
		if (k.mv_size < lp || memcmp(k.mv_data, PAUSE_PREFIX, lp) != 0 ||
		    k.mv_size - lp > KEY_BUF)
			break;
		memcpy(name, (char *)k.mv_data + lp, k.mv_size - lp);
		name[k.mv_size - lp] = '\0';
		if ((rc = cb(arg, name)))
			break;
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	mdb_cursor_close(cur);
out:
	mdb_txn_abort(txn);
	return rc;
}

static int
get_rec(struct relay_store *st, MDB_txn *txn, MDB_dbi dbi, uint64_t id, struct relay_event *ev)
{
	MDB_txn *use, *own;
	int rc;

	memset(ev, 0, sizeof(*ev));
	if ((rc = read_begin(st, txn, &use, &own)))
		return rc;
	rc = rec_get(use, dbi, id, ev);
	if (own)
		mdb_txn_abort(own);
	return rc;
}

int
relay_store_get_event(struct relay_store *st, MDB_txn *txn, uint64_t id, struct relay_event *ev)
{
	return get_rec(st, txn, st->events, id, ev);
}

int
relay_store_get_dead(struct relay_store *st, MDB_txn *txn, uint64_t id, struct relay_event *ev)
{
	return get_rec(st, txn, st->dead, id, ev);
}

int
relay_store_lane_ids(struct relay_store *st, MDB_txn *txn, const char *source, const char *lane,
                     uint64_t *ids, size_t max, size_t *n)
{
	MDB_txn *use, *own;
	MDB_cursor *cur = NULL;
	struct key prefix, k;
	MDB_val kv, v;
	int rc;

	*n = 0;
	if (!source || !lane || !*lane)
		return -RELAY_EINVAL;
	if ((rc = lane_prefix(st, source, lane, &prefix)))
		return rc;
	if ((rc = read_begin(st, txn, &use, &own)))
		return rc;
	if ((rc = mdb_cursor_open(use, st->lanes, &cur)))
		goto out;
	lane_with_id(&prefix, 0, &k);
	kv = val_of(k.b, k.len);
	for (rc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE); rc == 0 && *n < max;
	     rc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT)) {
		if (kv.mv_size != prefix.len + 8 || memcmp(kv.mv_data, prefix.b, prefix.len) != 0)
			break;
		ids[(*n)++] = get_be64((const unsigned char *)kv.mv_data + prefix.len);
	}
	if (rc == MDB_NOTFOUND || rc == 0)
		rc = 0;
	mdb_cursor_close(cur);
out:
	if (own)
		mdb_txn_abort(own);
	return map_err(rc);
}

int
relay_store_scan_due(struct relay_store *st, MDB_txn *rtxn, int64_t now_ms,
                     const struct relay_due *after, struct relay_due *out, size_t max, size_t *n)
{
	MDB_txn *txn, *own;
	MDB_cursor *cur;
	unsigned char kb[16];
	MDB_val k, v;
	MDB_cursor_op op = MDB_FIRST;
	int rc;

	*n = 0;
	if (max == 0)
		return 0;
	if ((rc = read_begin(st, rtxn, &txn, &own)))
		return rc;
	if ((rc = mdb_cursor_open(txn, st->due, &cur)))
		goto out;
	if (after) {
		due_keyb(kb, after->due_ms, after->id);
		k = val_of(kb, 16);
		op = MDB_SET_RANGE;
	}
	while (*n < max && !(rc = mdb_cursor_get(cur, &k, &v, op))) {
		op = MDB_NEXT;
		if (k.mv_size != 16) {
			rc = -RELAY_ECORRUPT;
			break;
		}
		if (after && memcmp(k.mv_data, kb, 16) == 0)
			continue; /* exclusive */
		uint64_t due = get_be64(k.mv_data);

		if (due > ms_key(now_ms))
			break;
		out[*n].due_ms = (int64_t)due;
		out[*n].id = get_be64((const unsigned char *)k.mv_data + 8);
		(*n)++;
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	mdb_cursor_close(cur);
out:
	if (own)
		mdb_txn_abort(own);
	return rc;
}

static int
first_due(struct relay_store *st, MDB_txn *txn, int64_t *due_ms)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(txn, st->due, &cur)))
		return rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	if (rc == 0 && k.mv_size != 16)
		rc = -RELAY_ECORRUPT;
	else if (rc == 0)
		*due_ms = (int64_t)get_be64(k.mv_data);
	else if (rc == MDB_NOTFOUND)
		rc = -RELAY_ENOTFOUND;
	mdb_cursor_close(cur);
	return rc;
}

int
relay_store_next_due(struct relay_store *st, MDB_txn *rtxn, int64_t *due_ms)
{
	MDB_txn *txn, *own;
	int rc;

	if ((rc = read_begin(st, rtxn, &txn, &own)))
		return rc;
	rc = first_due(st, txn, due_ms);
	if (own)
		mdb_txn_abort(own);
	return rc;
}

static int
db_count(MDB_txn *txn, MDB_dbi dbi, uint64_t *n)
{
	MDB_stat s;
	int rc = mdb_stat(txn, dbi, &s);

	if (!rc)
		*n = s.ms_entries;
	return rc;
}

/* Counts what the settle will make due into the figures of stats. */
struct stats_tail {
	int64_t now_ms;
	uint64_t due, due_now;
	int64_t first; /* the earliest due time, 0 for none */
};

static int
stats_tail_cb(void *arg, uint64_t id, int64_t due_ms)
{
	struct stats_tail *sc = arg;

	(void)id;
	sc->due++;
	if (due_ms <= sc->now_ms)
		sc->due_now++;
	if (!sc->first || due_ms < sc->first)
		sc->first = due_ms;
	return 0;
}

int
relay_store_stats(struct relay_store *st, int64_t now_ms, struct relay_store_stats *out)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_envinfo info;
	MDB_stat est;
	MDB_val k, v;
	MDB_cursor_op op = MDB_FIRST;
	uint64_t tail_due_n = 0, tail_due_now = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)))
		return rc;
	if ((rc = db_count(txn, st->events, &out->events)) ||
	    (rc = db_count(txn, st->due, &out->due)) || (rc = db_count(txn, st->dead, &out->dead)) ||
	    (rc = db_count(txn, st->dedup, &out->dedup)) ||
	    (st->have_versions && (rc = db_count(txn, st->versions, &out->versions))))
		goto out;
	rc = meta_get_u64(st, txn, "next_id", &out->next_id);
	if (rc && rc != MDB_NOTFOUND)
		goto out;
	rc = first_due(st, txn, &out->next_due_ms);
	if (rc && rc != -RELAY_ENOTFOUND)
		goto out;
	{
		struct stats_tail sc = { now_ms, 0, 0, out->next_due_ms };

		if ((rc = tail_due(st, txn, stats_tail_cb, &sc, &out->unsettled)))
			goto out;
		tail_due_now = sc.due_now;
		tail_due_n = sc.due;
		out->next_due_ms = sc.first;
	}

	if ((rc = mdb_cursor_open(txn, st->due, &cur)))
		goto out;
	/* Bounded: the daemon calls this from its event loop (each scrape of
	 * /metrics). The entries not yet due (retries waiting) are counted
	 * from the end, and are usually few; a backlog due now is the rest. */
	uint64_t later = 0;

	op = MDB_LAST;
	while (later < RELAY_STATS_DUE_NOW_MAX && !(rc = mdb_cursor_get(cur, &k, &v, op))) {
		op = MDB_PREV;
		if (k.mv_size == 16 && get_be64(k.mv_data) <= ms_key(now_ms))
			break;
		later++;
	}
	if (rc == 0 && later < RELAY_STATS_DUE_NOW_MAX) {
		out->due_now = out->due - later;
	} else if (rc == MDB_NOTFOUND) {
		out->due_now = 0; /* nothing due now: every entry is later */
		rc = 0;
	} else if (rc == 0) {
		/* As many waiting as the bound: count what is due from the front. */
		op = MDB_FIRST;
		while (out->due_now < RELAY_STATS_DUE_NOW_MAX &&
		       !(rc = mdb_cursor_get(cur, &k, &v, op))) {
			op = MDB_NEXT;
			if (k.mv_size != 16 || get_be64(k.mv_data) > ms_key(now_ms))
				break;
			out->due_now++;
		}
	}
	out->due += tail_due_n;
	out->due_now += tail_due_now;
	/* Arrival order is id order, so the lowest id is the oldest event
	 * (unless the clock went back). A record that does not decode leaves
	 * the figure at 0 rather than failing the whole report. */
	if (rc == 0 || rc == MDB_NOTFOUND) {
		mdb_cursor_close(cur);
		if ((rc = mdb_cursor_open(txn, st->events, &cur)))
			goto out;
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
		if (rc == 0) {
			struct relay_event ev;

			if (relay_record_decode(v.mv_data, v.mv_size, &ev) == 0)
				out->oldest_received_ms = ev.received_ms;
			relay_event_clear(&ev);
		}
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	mdb_cursor_close(cur);
	if (rc)
		goto out;

	if ((rc = mdb_env_info(st->env, &info)) || (rc = mdb_env_stat(st->env, &est)))
		goto out;
	out->map_size = info.me_mapsize;
	out->map_used = (size_t)(info.me_last_pgno + 1) * est.ms_psize;
out:
	mdb_txn_abort(txn);
	return rc;
}

static int
foreach_rec(struct relay_store *st, MDB_dbi dbi, uint64_t from_id,
            int (*cb)(void *arg, const struct relay_event *ev), void *arg)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	unsigned char kb[8];
	MDB_val k = val_of(kb, 8), v;
	MDB_cursor_op op = MDB_SET_RANGE;
	struct relay_event ev;
	int rc;

	put_be64(kb, from_id);
	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)))
		return rc;
	if ((rc = mdb_cursor_open(txn, dbi, &cur)))
		goto out;
	while (!(rc = mdb_cursor_get(cur, &k, &v, op))) {
		op = MDB_NEXT;
		if ((rc = relay_record_decode(v.mv_data, v.mv_size, &ev)))
			break;
		rc = cb(arg, &ev);
		relay_event_clear(&ev);
		if (rc)
			break;
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	mdb_cursor_close(cur);
out:
	mdb_txn_abort(txn);
	return rc;
}

int
relay_store_foreach_event(struct relay_store *st, uint64_t from_id,
                          int (*cb)(void *arg, const struct relay_event *ev), void *arg)
{
	return foreach_rec(st, st->events, from_id, cb, arg);
}

int
relay_store_foreach_dead(struct relay_store *st, uint64_t from_id,
                         int (*cb)(void *arg, const struct relay_event *ev), void *arg)
{
	return foreach_rec(st, st->dead, from_id, cb, arg);
}

int
relay_store_compact(const char *dir, const char *dest_dir)
{
	struct relay_store *st;
	int rc;

	if ((rc = relay_store_open(dir, 0, RELAY_STORE_RDONLY, &st)))
		return rc;
	rc = mdb_env_copy2(st->env, dest_dir, MDB_CP_COMPACT);
	relay_store_close(st);
	return rc;
}

/* ---- notes: small named texts the daemon leaves for odoo-relayctl ---- */

#define NOTE_PREFIX "note:"

static int
note_key(const char *name, char *buf, size_t n, size_t *len)
{
	int w = snprintf(buf, n, NOTE_PREFIX "%s", name ? name : "");
	if (!name || !*name || w < 0 || (size_t)w >= n)
		return -RELAY_EINVAL;
	*len = (size_t)w;
	return 0;
}

int
relay_store_note_put(struct relay_store *st, MDB_txn *txn, const char *name, const char *text)
{
	char kb[128];
	size_t kl;
	MDB_txn *use, *own;
	int rc;

	if ((rc = note_key(name, kb, sizeof(kb), &kl)))
		return rc;
	if ((rc = fault(st, "note")))
		return map_err(rc);
	if ((rc = write_begin(st, txn, &use, &own)))
		return rc;
	MDB_val k = val_of(kb, kl), v = val_of((void *)(text ? text : ""), text ? strlen(text) : 0);
	rc = text ? mdb_put(use, st->meta, &k, &v, 0) : mdb_del(use, st->meta, &k, NULL);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	return write_end(st, own, map_err(rc));
}

int
relay_store_note_get(struct relay_store *st, MDB_txn *txn, const char *name, char **text)
{
	char kb[128];
	size_t kl;
	MDB_txn *use, *own;
	MDB_val k, v;
	int rc;

	*text = NULL;
	if ((rc = note_key(name, kb, sizeof(kb), &kl)))
		return rc;
	if ((rc = read_begin(st, txn, &use, &own)))
		return rc;
	k = val_of(kb, kl);
	rc = mdb_get(use, st->meta, &k, &v);
	if (rc == 0) {
		if (!(*text = malloc(v.mv_size + 1)))
			rc = ENOMEM;
		else {
			memcpy(*text, v.mv_data, v.mv_size);
			(*text)[v.mv_size] = '\0';
		}
	} else if (rc == MDB_NOTFOUND) {
		rc = -RELAY_ENOTFOUND;
	}
	if (own)
		mdb_txn_abort(own);
	return rc;
}

/* ---- space: what a compacted copy would take ---- */

static int
add_pages(MDB_txn *txn, MDB_dbi dbi, size_t *pages)
{
	MDB_stat s;
	int rc = mdb_stat(txn, dbi, &s);

	if (!rc)
		*pages += s.ms_branch_pages + s.ms_leaf_pages + s.ms_overflow_pages;
	return rc;
}

int
relay_store_live_bytes(struct relay_store *st, size_t *bytes)
{
	MDB_dbi dbis[] = { st->events, st->due, st->lanes, st->dedup, st->dedup_exp, st->dead,
	                   st->meta };
	MDB_txn *txn;
	MDB_dbi main_dbi;
	size_t pages = 2; /* the two meta pages every LMDB file starts with */
	int rc;

	*bytes = 0;
	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)))
		return rc;
	/* The main database holds the named databases' roots: it is live too. */
	if ((rc = mdb_dbi_open(txn, NULL, 0, &main_dbi)) || (rc = add_pages(txn, main_dbi, &pages)))
		goto out;
	for (size_t i = 0; i < sizeof(dbis) / sizeof(dbis[0]); i++)
		if ((rc = add_pages(txn, dbis[i], &pages)))
			goto out;
	if (st->have_versions && ((rc = add_pages(txn, st->versions, &pages)) ||
	                          (rc = add_pages(txn, st->versions_exp, &pages))))
		goto out;
	if (st->hist.have) {
		MDB_dbi h[] = { st->hist.history, st->hist.history_exp, st->hist.trace,
		                st->hist.audit, st->hist.edits };
		for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++)
			if ((rc = add_pages(txn, h[i], &pages)))
				goto out;
	}
	*bytes = pages * st->psize;
out:
	mdb_txn_abort(txn);
	return rc;
}

/* ---- what the history module (history.c) shares with the store ---- */

struct relay_store_hist *
relay_store_hist(struct relay_store *st)
{
	return &st->hist;
}

MDB_env *
relay_store_int_env(struct relay_store *st)
{
	return st->env;
}

size_t
relay_store_int_tables(const struct relay_store *st, struct relay_store_int_table *t, size_t max)
{
	struct relay_store_int_table all[RELAY_STORE_INT_TABLES];
	size_t n = 0;

	all[n++] = (struct relay_store_int_table){ st->events, 1 };
	all[n++] = (struct relay_store_int_table){ st->due, 0 };
	all[n++] = (struct relay_store_int_table){ st->lanes, 0 };
	all[n++] = (struct relay_store_int_table){ st->dedup, 0 };
	all[n++] = (struct relay_store_int_table){ st->dedup_exp, 0 };
	all[n++] = (struct relay_store_int_table){ st->dead, 1 };
	all[n++] = (struct relay_store_int_table){ st->meta, 0 };
	if (st->have_versions) {
		all[n++] = (struct relay_store_int_table){ st->versions, 0 };
		all[n++] = (struct relay_store_int_table){ st->versions_exp, 0 };
	}
	if (st->hist.have) {
		all[n++] = (struct relay_store_int_table){ st->hist.history, 0 };
		all[n++] = (struct relay_store_int_table){ st->hist.history_exp, 0 };
		all[n++] = (struct relay_store_int_table){ st->hist.trace, 0 };
		all[n++] = (struct relay_store_int_table){ st->hist.audit, 0 };
		all[n++] = (struct relay_store_int_table){ st->hist.edits, 0 };
	}
	if (n > max)
		n = max;
	memcpy(t, all, n * sizeof(*t));
	return n;
}

int
relay_store_int_fault(struct relay_store *st, const char *op)
{
	return map_err(fault(st, op));
}

int
relay_store_int_wbegin(struct relay_store *st, MDB_txn *txn, MDB_txn **use, MDB_txn **own)
{
	return write_begin(st, txn, use, own);
}

int
relay_store_int_wend(struct relay_store *st, MDB_txn *own, int rc)
{
	return write_end(st, own, rc);
}

int
relay_store_int_rbegin(struct relay_store *st, MDB_txn *txn, MDB_txn **use, MDB_txn **own)
{
	return read_begin(st, txn, use, own);
}

/* Free bytes as of the last commit, and the map's size: measured fresh
 * (a read transaction and a walk of the free list). */
int
relay_store_int_room(struct relay_store *st, size_t *free_bytes, size_t *map_bytes)
{
	size_t pages, map_pages;
	int rc = measure_room(st, &pages, &map_pages);

	if (rc)
		return rc;
	*free_bytes = pages * st->psize;
	*map_bytes = map_pages * st->psize;
	return 0;
}

int
relay_store_int_meta_next(struct relay_store *st, MDB_txn *txn, const char *name, uint64_t *v)
{
	int rc = meta_get_u64(st, txn, name, v);

	if (rc == MDB_NOTFOUND) {
		*v = 1;
		rc = 0;
	}
	if (rc)
		return rc;
	return meta_put_u64(st, txn, name, *v + 1);
}

int
relay_store_int_dead_put(struct relay_store *st, MDB_txn *txn, const struct relay_event *ev)
{
	int rc = rec_has(txn, st->dead, ev->id);

	if (rc)
		return rc == MDB_NOTFOUND ? -RELAY_ENOTFOUND : rc;
	return rec_put(txn, st->dead, ev, 0);
}

int
relay_store_free_bytes(struct relay_store *st, size_t *bytes)
{
	size_t map_bytes;
	int rc = relay_store_int_room(st, bytes, &map_bytes);

	if (rc)
		*bytes = 0;
	return rc;
}

