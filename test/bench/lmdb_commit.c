/*
 * lmdb-commit: the floor under a durable acknowledgement on this disk. Times
 * N durable LMDB commits of one put each (a VALUE_BYTES value under a new
 * 8-byte key, default flags: synced data and meta page), in a fresh
 * environment in DIR, and prints their p50 and p99 in ms.
 *
 * usage: lmdb-commit DIR [N [VALUE_BYTES]]
 * DIR must exist (its data.mdb and lock.mdb are made and left there).
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
	MDB_dbi dbi;
	MDB_txn *txn;
	size_t n = 2000, vlen = 1024;
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
	if (!n || !(t = calloc(n, sizeof(*t))) || !(val = malloc(vlen ? vlen : 1)))
		return 2;
	memset(val, 'x', vlen);
	if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_mapsize(env, (size_t)1 << 30)) ||
	    (rc = mdb_env_open(env, argv[1], MDB_NOTLS, 0640)) ||
	    (rc = mdb_txn_begin(env, NULL, 0, &txn)) || (rc = mdb_dbi_open(txn, NULL, 0, &dbi)) ||
	    (rc = mdb_txn_commit(txn)))
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
		if ((rc = mdb_put(txn, dbi, &k, &v, 0))) {
			mdb_txn_abort(txn);
			goto out;
		}
		if ((rc = mdb_txn_commit(txn)))
			goto out;
		t[i] = now_ms() - t0;
	}
	qsort(t, n, sizeof(*t), cmp_double);
	printf("lmdb-commit: %zu durable single-put commits of %zu bytes: p50 %.3f ms  p99 %.3f ms\n",
	       n, vlen, t[n / 2], t[n * 99 / 100]);
out:
	if (rc)
		fprintf(stderr, "lmdb-commit: %s\n", mdb_strerror(rc));
	if (env)
		mdb_env_close(env);
	free(t);
	free(val);
	return rc ? 1 : 0;
}
