/*
 * odoo-relay: what store.c shares with the modules that keep tables of
 * their own in the same environment (history.c). Not a public interface:
 * lib/ only, and only for code that runs its LMDB work the way store.c
 * does (the transaction rules of store.h hold for every function here).
 *
 * The tables (opened by relay_store_open with the others, schema 1; a
 * read-only open of a store made before them leaves have at 0 and the
 * handles unset):
 *   history      u64 id -> history record (history.h, format 1)
 *   history_exp  (u64 expiry_ms, u64 id) -> empty: the sweep's order
 *   trace        (u8 kind, key text, NUL, u64 id) -> empty: history
 *                entries by dedup key, lane, external ID, Odoo record
 *   audit        u64 seq -> audit record (history.h)
 *   edits        (u64 id, u32 version) -> edited body (history.h)
 */
#ifndef ODOO_RELAY_STORE_INT_H
#define ODOO_RELAY_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "odoo_relay/store.h"

struct relay_store_hist {
	int have;
	MDB_dbi history, history_exp, trace, audit, edits;
	/* history.c's, under LMDB's writer lock (the thread that writes):
	 * room believed free, when it was measured (monotonic ms), the map's
	 * size, and what gave way so far. */
	size_t room, map_bytes;
	int64_t room_at_ms;
	uint64_t evicted, skipped;
	int64_t gave_way_logged_ms;
	/* expiry rows and records the sweep removed that did not decode */
	uint64_t damaged;
};

/* The handles above; owned by st, valid until relay_store_close. */
struct relay_store_hist *relay_store_hist(struct relay_store *st);

/* st's LMDB environment; owned by st, valid until relay_store_close. */
MDB_env *relay_store_int_env(struct relay_store *st);

/* One of st's tables, for a walk of the whole store (store_check.c). */
struct relay_store_int_table {
	MDB_dbi dbi;
	int records; /* its values are event records (events, dead) */
};

/* The most tables relay_store_int_tables gives. */
#define RELAY_STORE_INT_TABLES 16

/* Into t (room for max), every table st has open: events, due, lanes,
 * dedup, dedup_exp, dead, meta, then versions and the history's when the
 * store has them. Not LMDB's own (its main database, its free list), nor
 * the pollers' (store_poll.h). Returns how many it wrote. */
size_t relay_store_int_tables(const struct relay_store *st, struct relay_store_int_table *t,
                              size_t max);

/* The fault hook for op, its result mapped like every store error. */
int relay_store_int_fault(struct relay_store *st, const char *op);

/* 1 when txn is a top-level transaction that runs a group flat
 * (relay_store_txn_flat): a failure there reruns each op nested. */
int relay_store_int_flat(const struct relay_store *st, const MDB_txn *txn);

/* The caller's write transaction (txn) or one of our own (txn NULL; *own
 * set): wend commits our own on rc 0, aborts it otherwise, and returns the
 * result mapped (MDB_MAP_FULL, ENOSPC -> -RELAY_EFULL). */
int relay_store_int_wbegin(struct relay_store *st, MDB_txn *txn, MDB_txn **use, MDB_txn **own);
int relay_store_int_wend(struct relay_store *st, MDB_txn *own, int rc);
/* The caller's transaction or a read transaction of our own (*own: abort it). */
int relay_store_int_rbegin(struct relay_store *st, MDB_txn *txn, MDB_txn **use, MDB_txn **own);

/* Bytes free for new pages as of the last commit (the map's unused tail,
 * as far as the disk lets the file grow, plus LMDB's free list), and the
 * map's size. Opens a read transaction of its own. 0 or an LMDB code. */
int relay_store_int_room(struct relay_store *st, size_t *free_bytes, size_t *map_bytes);

/* A sequence kept in meta under name: *v gets the next value (from 1) and
 * the stored one moves on. In a write transaction. 0 or an LMDB code. */
int relay_store_int_meta_next(struct relay_store *st, MDB_txn *txn, const char *name,
                              uint64_t *v);

/* relay_store_complete for queued event ev, as the caller just read it from
 * the events in txn (a write transaction): no second read and decode of the
 * record. Consults the same fault hook ("complete"). 0, -RELAY_EFULL,
 * -RELAY_ETOOBIG (a lane key too long for the index), or an LMDB code; ev
 * stays the caller's. */
int relay_store_int_complete_read(struct relay_store *st, MDB_txn *txn,
                                  const struct relay_event *ev, int64_t now_ms);

/* Replace the dead letter ev->id by ev (its edited body). 0,
 * -RELAY_ENOTFOUND when there is no such dead letter, or an LMDB code. */
int relay_store_int_dead_put(struct relay_store *st, MDB_txn *txn, const struct relay_event *ev);

#endif
