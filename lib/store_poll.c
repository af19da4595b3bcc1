/*
 * odoo-relay: the poller's table in the store (include/odoo_relay/store_poll.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "odoo_relay/error.h"
#include "odoo_relay/store_poll.h"

#define SOURCE_MAX 400
#define KEY_MAX (1 + SOURCE_MAX + 1 + 8)

static int
map_rc(int rc)
{
	if (rc == MDB_NOTFOUND)
		return -RELAY_ENOTFOUND;
	if (rc == MDB_MAP_FULL || rc == ENOSPC || rc == EDQUOT)
		return -RELAY_EFULL;
	return rc;
}

int
relay_poll_db_open(struct relay_store *st, int create, struct relay_poll_db *db)
{
	MDB_txn *txn = NULL;
	int rc;

	memset(db, 0, sizeof(*db));
	rc = create ? relay_store_txn_begin(st, NULL, &txn) : relay_store_read_begin(st, &txn);
	if (rc)
		return rc;
	rc = mdb_dbi_open(txn, "poll", create ? MDB_CREATE : 0, &db->dbi);
	if (rc == MDB_NOTFOUND && !create) {
		relay_store_txn_abort(st, txn);
		return 0;
	}
	if (rc) {
		relay_store_txn_abort(st, txn);
		return map_rc(rc);
	}
	if (create) {
		if ((rc = relay_store_txn_commit(st, txn)))
			return rc;
	} else if ((rc = mdb_txn_commit(txn))) {
		/* committed, not aborted: an abort would close the new handle */
		return map_rc(rc);
	}
	db->present = 1;
	return 0;
}

/* kind source [NUL u64 id], built in k (KEY_MAX bytes); *kv points at it. */
static int
key_of(char kind, const char *source, int with_id, int64_t id, unsigned char *k, MDB_val *kv)
{
	size_t n = source ? strlen(source) : 0, len;

	if (n == 0 || n > SOURCE_MAX)
		return -RELAY_EINVAL;
	k[0] = (unsigned char)kind;
	memcpy(k + 1, source, n);
	len = 1 + n;
	if (with_id) {
		uint64_t u = (uint64_t)id;

		k[len] = 0;
		for (int i = 0; i < 8; i++)
			k[len + 1 + i] = (unsigned char)(u >> (56 - 8 * i));
		len += 9;
	}
	kv->mv_data = k;
	kv->mv_size = len;
	return 0;
}

static int64_t
id_of(const unsigned char *p)
{
	uint64_t u = 0;

	for (int i = 0; i < 8; i++)
		u = u << 8 | p[i];
	return (int64_t)u;
}

int
relay_poll_db_hash_get(const struct relay_poll_db *db, MDB_txn *txn, const char *source,
                       int64_t id, unsigned char hash[RELAY_POLL_HASH_LEN])
{
	unsigned char k[KEY_MAX];
	MDB_val kv, v;
	int rc;

	if (!db->present)
		return -RELAY_ENOTFOUND;
	if ((rc = key_of('h', source, 1, id, k, &kv)))
		return rc;
	if ((rc = mdb_get(txn, db->dbi, &kv, &v)))
		return map_rc(rc);
	if (v.mv_size != RELAY_POLL_HASH_LEN)
		return -RELAY_ECORRUPT;
	memcpy(hash, v.mv_data, RELAY_POLL_HASH_LEN);
	return 0;
}

int
relay_poll_db_hash_put(const struct relay_poll_db *db, MDB_txn *txn, const char *source,
                       int64_t id, const unsigned char hash[RELAY_POLL_HASH_LEN], int *added)
{
	unsigned char k[KEY_MAX];
	MDB_val kv, v, old;
	int rc;

	if (!db->present)
		return EACCES;
	if ((rc = key_of('h', source, 1, id, k, &kv)))
		return rc;
	if (added)
		*added = mdb_get(txn, db->dbi, &kv, &old) == MDB_NOTFOUND;
	v.mv_data = (void *)hash;
	v.mv_size = RELAY_POLL_HASH_LEN;
	return map_rc(mdb_put(txn, db->dbi, &kv, &v, 0));
}

int
relay_poll_db_hash_del(const struct relay_poll_db *db, MDB_txn *txn, const char *source,
                       int64_t id)
{
	unsigned char k[KEY_MAX];
	MDB_val kv;
	int rc;

	if (!db->present)
		return -RELAY_ENOTFOUND;
	if ((rc = key_of('h', source, 1, id, k, &kv)))
		return rc;
	return map_rc(mdb_del(txn, db->dbi, &kv, NULL));
}

int
relay_poll_db_known(const struct relay_poll_db *db, MDB_txn *txn, const char *source,
                    int64_t after, int64_t upto, int64_t *ids, size_t max, size_t *n)
{
	unsigned char k[KEY_MAX];
	MDB_cursor *cur = NULL;
	MDB_val kv, v;
	size_t plen;
	int rc;

	*n = 0;
	if (!db->present)
		return 0;
	if ((rc = key_of('h', source, 1, after < 0 ? 0 : after, k, &kv)))
		return rc;
	plen = kv.mv_size - 8; /* 'h' source NUL */
	if ((rc = mdb_cursor_open(txn, db->dbi, &cur)))
		return map_rc(rc);
	rc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE);
	while (rc == 0 && *n < max) {
		const unsigned char *p = kv.mv_data;
		int64_t id;

		if (kv.mv_size != plen + 8 || memcmp(p, k, plen))
			break;
		id = id_of(p + plen);
		if (upto >= 0 && id > upto)
			break;
		if (id > after)
			ids[(*n)++] = id;
		rc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : map_rc(rc);
}

int
relay_poll_db_text_get(const struct relay_poll_db *db, MDB_txn *txn, char kind,
                       const char *source, char **text)
{
	unsigned char k[KEY_MAX];
	MDB_val kv, v;
	int rc;

	*text = NULL;
	if (!db->present)
		return -RELAY_ENOTFOUND;
	if ((rc = key_of(kind, source, 0, 0, k, &kv)))
		return rc;
	if ((rc = mdb_get(txn, db->dbi, &kv, &v)))
		return map_rc(rc);
	if (!(*text = malloc(v.mv_size + 1)))
		return ENOMEM;
	memcpy(*text, v.mv_data, v.mv_size);
	(*text)[v.mv_size] = '\0';
	return 0;
}

int
relay_poll_db_text_put(const struct relay_poll_db *db, MDB_txn *txn, char kind,
                       const char *source, const char *text)
{
	unsigned char k[KEY_MAX];
	MDB_val kv, v;
	int rc;

	if (!db->present)
		return EACCES;
	if ((rc = key_of(kind, source, 0, 0, k, &kv)))
		return rc;
	if (!text) {
		rc = mdb_del(txn, db->dbi, &kv, NULL);
		return rc == MDB_NOTFOUND ? 0 : map_rc(rc);
	}
	v.mv_data = (void *)text;
	v.mv_size = strlen(text);
	return map_rc(mdb_put(txn, db->dbi, &kv, &v, 0));
}

#define REQUEST_COUNTER 'q'

int
relay_poll_db_request_add(const struct relay_poll_db *db, MDB_txn *txn, const char *source,
                          const char *text, uint64_t *seq)
{
	unsigned char k[KEY_MAX], cnt[8];
	MDB_val kv, v;
	uint64_t n = 0;
	int rc;

	if (seq)
		*seq = 0;
	if (!db->present)
		return EACCES;
	/* the counter, not the highest key: a number is never given twice,
	 * even once every request has been taken and deleted */
	if ((rc = key_of(REQUEST_COUNTER, source, 0, 0, k, &kv)))
		return rc;
	rc = mdb_get(txn, db->dbi, &kv, &v);
	if (rc == 0 && v.mv_size == 8)
		n = (uint64_t)id_of(v.mv_data);
	else if (rc && rc != MDB_NOTFOUND)
		return map_rc(rc);
	n++;
	for (int i = 0; i < 8; i++)
		cnt[i] = (unsigned char)(n >> (56 - 8 * i));
	v.mv_data = cnt;
	v.mv_size = 8;
	if ((rc = mdb_put(txn, db->dbi, &kv, &v, 0)))
		return map_rc(rc);
	if ((rc = key_of(RELAY_POLL_REQUEST, source, 1, (int64_t)n, k, &kv)))
		return rc;
	v.mv_data = (void *)text;
	v.mv_size = strlen(text);
	if ((rc = mdb_put(txn, db->dbi, &kv, &v, 0)))
		return map_rc(rc);
	if (seq)
		*seq = n;
	return 0;
}

int
relay_poll_db_request_next(const struct relay_poll_db *db, MDB_txn *txn, const char *source,
                           uint64_t after, uint64_t *seq, char **text)
{
	unsigned char k[KEY_MAX];
	MDB_cursor *cur = NULL;
	MDB_val kv, v;
	size_t plen;
	int rc;

	*seq = 0;
	*text = NULL;
	if (!db->present)
		return -RELAY_ENOTFOUND;
	/* an older odoo-relayctl's, under the plain key: the oldest */
	rc = relay_poll_db_text_get(db, txn, RELAY_POLL_REQUEST, source, text);
	if (rc != -RELAY_ENOTFOUND)
		return rc;
	if (after == UINT64_MAX)
		return -RELAY_ENOTFOUND;
	if ((rc = key_of(RELAY_POLL_REQUEST, source, 1, (int64_t)(after + 1), k, &kv)))
		return rc;
	plen = kv.mv_size - 8; /* 'r' source NUL */
	if ((rc = mdb_cursor_open(txn, db->dbi, &cur)))
		return map_rc(rc);
	rc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE);
	if (rc == 0 && (kv.mv_size != plen + 8 || memcmp(kv.mv_data, k, plen)))
		rc = MDB_NOTFOUND;
	if (rc == 0) {
		*seq = (uint64_t)id_of((const unsigned char *)kv.mv_data + plen);
		if ((*text = malloc(v.mv_size + 1))) {
			memcpy(*text, v.mv_data, v.mv_size);
			(*text)[v.mv_size] = '\0';
		} else {
			rc = ENOMEM;
		}
	}
	mdb_cursor_close(cur);
	return map_rc(rc);
}

int
relay_poll_db_request_del(const struct relay_poll_db *db, MDB_txn *txn, const char *source,
                          uint64_t seq)
{
	unsigned char k[KEY_MAX];
	MDB_val kv;
	int rc;

	if (seq == 0)
		return relay_poll_db_text_put(db, txn, RELAY_POLL_REQUEST, source, NULL);
	if (!db->present)
		return EACCES;
	if ((rc = key_of(RELAY_POLL_REQUEST, source, 1, (int64_t)seq, k, &kv)))
		return rc;
	rc = mdb_del(txn, db->dbi, &kv, NULL);
	return rc == MDB_NOTFOUND ? 0 : map_rc(rc);
}

int
relay_poll_db_stat(const struct relay_poll_db *db, MDB_txn *txn, uint64_t *entries,
                   uint64_t *bytes)
{
	MDB_stat s;
	int rc;

	*entries = *bytes = 0;
	if (!db->present)
		return 0;
	if ((rc = mdb_stat(txn, db->dbi, &s)))
		return map_rc(rc);
	*entries = s.ms_entries;
	*bytes = (uint64_t)(s.ms_branch_pages + s.ms_leaf_pages + s.ms_overflow_pages) * s.ms_psize;
	return 0;
}
