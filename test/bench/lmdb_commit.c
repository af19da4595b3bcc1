/*
 * lmdb-commit: the floor under a durable acknowledgement on this disk. Times
 * N durable LMDB commits of one put each (a VALUE_BYTES value under a new
 * 8-byte key, default flags: synced data and meta page), in a fresh
 * environment in DIR, and prints their p50 and p99 in ms.
 *
 * usage: lmdb-commit DIR [N [VALUE_BYTES [TREES]]]
 * DIR must exist (its data.mdb and lock.mdb are made and left there).
 * TREES > 1 puts the value in one named database and a 40-byte key in
 * TREES - 1 more (random keys in one, increasing keys in the others), the
 * shape of an ingest (events, dedup, dedup_exp, lanes, meta): the same two
 * fsyncs, more pages written per commit.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lmdb.h>

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	MDB_env *env = NULL;
	MDB_dbi dbi[8];
	MDB_txn *txn;
	size_t n = 2000, vlen = 1024, trees = 1;
	double *t;
	char *val;
	int rc;

	if (argc < 2) {
		fprintf(stderr, "usage: lmdb-commit DIR [N [VALUE_BYTES]]\n");
		return 2;
	}
	if (argc > 2)
		n = strtoul(argv[2], NULL, 10);
	if (argc > 3)
		vlen = strtoul(argv[3], NULL, 10);
	if (argc > 4)
		trees = strtoul(argv[4], NULL, 10);
	if (trees < 1 || trees > 8)
		return 2;
	if (!n || !(t = calloc(n, sizeof(*t))) || !(val = malloc(vlen ? vlen : 1)))
		return 2;
	memset(val, 'x', vlen);
	if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_mapsize(env, (size_t)1 << 30)) ||
	    (rc = mdb_env_set_maxdbs(env, 8)) ||
	    (rc = mdb_env_open(env, argv[1], MDB_NOTLS, 0640)) ||
	    (rc = mdb_txn_begin(env, NULL, 0, &txn)))
		goto out;
	for (size_t d = 0; d < trees && !rc; d++) {
		char name[24];

		snprintf(name, sizeof(name), "t%zu", d);
		rc = mdb_dbi_open(txn, trees == 1 ? NULL : name, MDB_CREATE, &dbi[d]);
	}
	if (rc || (rc = mdb_txn_commit(txn)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		unsigned char kb[8];
		uint64_t id = i + 1;
		MDB_val k = { sizeof(kb), kb }, v = { vlen, val };
		double t0 = now_ms();

		for (int b = 0; b < 8; b++)
			kb[b] = (unsigned char)(id >> (56 - 8 * b));
		if ((rc = mdb_txn_begin(env, NULL, 0, &txn)))
			goto out;
		rc = mdb_put(txn, dbi[0], &k, &v, 0);
		for (size_t d = 1; d < trees && !rc; d++) {
			char kb2[40];
			/* tree 1 gets random keys (a dedup key), the others
			 * increasing ones (indexes by time or id) */
			uint64_t x = d == 1 ? (id * 0x9e3779b97f4a7c15ull) : id;
			MDB_val k2 = { sizeof(kb2), kb2 }, v2 = { 16, kb2 };

			memset(kb2, 'k', sizeof(kb2));
			for (int b = 0; b < 8; b++)
				kb2[b] = (char)(x >> (56 - 8 * b));
			rc = mdb_put(txn, dbi[d], &k2, &v2, 0);
		}
		if (rc) {
			mdb_txn_abort(txn);
			goto out;
		}
		if ((rc = mdb_txn_commit(txn)))
			goto out;
		t[i] = now_ms() - t0;
	}
	qsort(t, n, sizeof(*t), cmp_double);
	printf("lmdb-commit: %zu durable commits of %zu bytes in %zu tree%s: p50 %.3f ms  p99 %.3f ms\n",
	       n, vlen, trees, trees > 1 ? "s" : "", t[n / 2], t[n * 99 / 100]);
out:
	if (rc)
		fprintf(stderr, "lmdb-commit: %s\n", mdb_strerror(rc));
	if (env)
		mdb_env_close(env);
	free(t);
	free(val);
	return rc ? 1 : 0;
}
