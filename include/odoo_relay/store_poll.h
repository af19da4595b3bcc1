/*
 * odoo-relay: the poller's table in the store (one LMDB database, "poll",
 * in the environment of store.h, added under schema 1 like "versions": a
 * build that does not know it ignores it).
 *
 * Keys (integers big-endian):
 *   'h' source NUL u64 id -> 8 bytes: the hash of the record's projection
 *                            last sent (poll.h); the ids the poller knows
 *   's' source            -> the poller's state, a JSON text: {"cursor",
 *                            "last_run_ms", "last_ok_ms", "error", "known",
 *                            "changed", "deleted", "last_check_ms",
 *                            "request_done", "last_sync", ...}
 *   'r' source NUL u64 seq -> a request of odoo-relayctl sync, a JSON text:
 *                            {"since": "...", "ids": [...], "at_ms": N}
 *   'q' source            -> 8 bytes: the number of the last request given
 *   'r' source            -> a request of an older odoo-relayctl (seq 0)
 *
 * Size: a hash entry is 1 + len(source) + 1 + 8 bytes of key, 8 of value
 * and LMDB's node header (8) and slot (2): 28 + len(source) bytes, 40 for a
 * 12-byte source. Measured (unit_store_poll): 100 000 ids added in order,
 * in one transaction, take 41.0 bytes of pages each; a first sync that
 * commits page by page leaves pages about half full: 77.8 bytes each
 * (bench_poll.py, 100 000 records). Plan on about 80 bytes per tracked
 * record. The table holds one entry per record
 * of the source's domain: it grows with the model, not with its changes,
 * and a deletion removes its entry.
 *
 * Transactions: as store.h. Writes take a write transaction (the writer
 * thread's, or one of relay_store_txn_begin); reads any transaction, or
 * relay_store_read_begin's. Every value read is copied.
 *
 * Threads: relay_poll_db_open opens the database handle once (before the
 * writer thread starts, in a process that writes); afterwards the handle
 * (a plain number in struct relay_poll_db) may be used from any thread.
 *
 * Errors: 0; -RELAY_ENOTFOUND; -RELAY_EINVAL for an empty source or one
 * too long for a key (over 400 bytes); -RELAY_EFULL (map full); ENOMEM;
 * EACCES (read-only store); or an LMDB code.
 */
#ifndef ODOO_RELAY_STORE_POLL_H
#define ODOO_RELAY_STORE_POLL_H

#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "odoo_relay/poll.h"
#include "odoo_relay/store.h"

struct relay_poll_db {
	MDB_dbi dbi;
	int present;  /* 0: a read-only store made before the table (reads find nothing) */
};

#define RELAY_POLL_STATE 's'
#define RELAY_POLL_REQUEST 'r'

/*
 * relay_poll_db_open - open the table of st into *db: created when create
 * is 1 (in a top-level write transaction of its own, committed), else only
 * looked up (a read transaction; absent gives present 0 and 0).
 */
int relay_poll_db_open(struct relay_store *st, int create, struct relay_poll_db *db);

/* relay_poll_db_hash_get - the hash kept for (source, id) into hash, or
 * -RELAY_ENOTFOUND. */
int relay_poll_db_hash_get(const struct relay_poll_db *db, MDB_txn *txn, const char *source,
                           int64_t id, unsigned char hash[RELAY_POLL_HASH_LEN]);
/* relay_poll_db_hash_put - keep hash for (source, id); *added (may be NULL)
 * is 1 when the id was not known. */
int relay_poll_db_hash_put(const struct relay_poll_db *db, MDB_txn *txn, const char *source,
                           int64_t id, const unsigned char hash[RELAY_POLL_HASH_LEN], int *added);
/* relay_poll_db_hash_del - forget (source, id): 0, or -RELAY_ENOTFOUND. */
int relay_poll_db_hash_del(const struct relay_poll_db *db, MDB_txn *txn, const char *source,
                           int64_t id);

/*
 * relay_poll_db_known - the ids of source kept in the table with
 * after < id <= upto (upto < 0: no upper bound), in order, up to max into
 * ids; *n how many. Call again from the last one for more.
 */
int relay_poll_db_known(const struct relay_poll_db *db, MDB_txn *txn, const char *source,
                        int64_t after, int64_t upto, int64_t *ids, size_t max, size_t *n);

/* relay_poll_db_text_get / _put - the state (RELAY_POLL_STATE) or request
 * (RELAY_POLL_REQUEST) text of source. get: a malloc'd copy into *text
 * (caller frees) or -RELAY_ENOTFOUND. put: text NULL deletes (absent is
 * no error). */
int relay_poll_db_text_get(const struct relay_poll_db *db, MDB_txn *txn, char kind,
                           const char *source, char **text);
int relay_poll_db_text_put(const struct relay_poll_db *db, MDB_txn *txn, char kind,
                           const char *source, const char *text);

/*
 * Requests of odoo-relayctl sync, each under a key of its own ('r' source
 * NUL u64 seq, seq from the counter 'q' source, never reused), so that the
 * daemon deletes only the request it took: a request written while the
 * daemon takes the one before cannot be lost, and two written before the
 * daemon looks both run, in order. A request under the plain key 'r' source
 * (an older odoo-relayctl) is seq 0.
 *
 * relay_poll_db_request_add - keep text as the next request of source;
 * *seq (may be NULL) its number. A write transaction.
 * relay_poll_db_request_next - the oldest request of source numbered above
 * after (the one of seq 0 first, whatever after): a malloc'd copy into
 * *text (caller frees) and its number into *seq, or -RELAY_ENOTFOUND.
 * relay_poll_db_request_del - delete the request numbered seq, and only
 * it (absent is no error).
 */
int relay_poll_db_request_add(const struct relay_poll_db *db, MDB_txn *txn, const char *source,
                              const char *text, uint64_t *seq);
int relay_poll_db_request_next(const struct relay_poll_db *db, MDB_txn *txn, const char *source,
                               uint64_t after, uint64_t *seq, char **text);
int relay_poll_db_request_del(const struct relay_poll_db *db, MDB_txn *txn, const char *source,
                              uint64_t seq);

/* relay_poll_db_stat - entries of the whole table and the bytes of its
 * pages (branch, leaf, overflow), for the bytes per tracked record. */
int relay_poll_db_stat(const struct relay_poll_db *db, MDB_txn *txn, uint64_t *entries,
                       uint64_t *bytes);

#endif
