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
