/*
 * Checking a store before it is trusted: see include/odoo_relay/store_check.h.
 * The walks run in a child (store_child_int.h) on a read-only open of the
 * store, so a page that crashes its reader is a verdict, not a crash here.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "odoo_relay/error.h"
#include "odoo_relay/record.h"
#include "odoo_relay/store.h"
#include "odoo_relay/store_check.h"
#include "store_child_int.h"
#include "store_int.h"

/* Reads one byte of every page v spans, and its last byte: a value whose
 * page number is garbage points outside the file or the map. */
static unsigned
touch_val(size_t psize, const MDB_val *v)
{
	const volatile unsigned char *p = v->mv_data;
	unsigned sum = 0;

	for (size_t i = 0; i < v->mv_size; i += psize)
		sum += p[i];
	if (v->mv_size)
		sum += p[v->mv_size - 1];
	return sum;
}

/* records 2: a table of records read only at its two ends (the quick
 * check, see relay_store_verify_start): its first and last records, and the
 * branch pages on the way to them. */
static int
verify_db(size_t psize, MDB_txn *txn, MDB_dbi dbi, int records, unsigned *sum)
{
	MDB_cursor *cur;
	MDB_val k, v;
	struct relay_event ev;
	int ends = records == 2, n = 0, rc;

	if ((rc = mdb_cursor_open(txn, dbi, &cur)))
		return rc;
	while (!(rc = mdb_cursor_get(cur, &k, &v, !ends ? MDB_NEXT : n++ ? MDB_LAST : MDB_FIRST))) {
		*sum += touch_val(psize, &k) + touch_val(psize, &v);
		if (records) {
			if ((rc = relay_record_decode(v.mv_data, v.mv_size, &ev)))
				break;
			relay_event_clear(&ev);
		}
		if (ends && n == 2)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Past the end of the file, so much of the map is left that a node offset
 * gone wrong (16 bits, from its page) lands in it: a read there is a SIGBUS,
 * never a read of whatever else happens to be mapped after the file. */
#define VERIFY_MAP_SLACK (1u << 20)

/* The child's work: open read-only, walk the free list, the main database
 * and each of ours, decode every record. */
static int
verify_here(const char *dir, size_t file_size, int quick)
{
	struct relay_store *st;
	struct relay_store_int_table t[RELAY_STORE_INT_TABLES];
	MDB_env *env;
	MDB_txn *txn = NULL;
	MDB_dbi main_dbi;
	MDB_stat ms;
	unsigned sum = 0;
	int rc;

	if ((rc = relay_store_open(dir, file_size + VERIFY_MAP_SLACK, RELAY_STORE_RDONLY, &st)))
		return rc;
	env = relay_store_int_env(st);
	rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	/* The walk behind start-up runs while the daemon writes: a store
	 * grown past this map meanwhile is not damage. Adopt its size. */
	if (rc == MDB_MAP_RESIZED && (rc = mdb_env_set_mapsize(env, 0)) == 0)
		rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	if (rc == 0 && (rc = mdb_env_stat(env, &ms)) == 0) {
		size_t n = relay_store_int_tables(st, t, sizeof(t) / sizeof(t[0]));

		/* LMDB's own: its main database (the names of ours) and its
		 * free list (database 0) */
		if ((rc = mdb_dbi_open(txn, NULL, 0, &main_dbi)) == 0 &&
		    (rc = verify_db(ms.ms_psize, txn, main_dbi, 0, &sum)) == 0)
			rc = verify_db(ms.ms_psize, txn, 0, 0, &sum);
		/* records: 1 decodes every record; 1 + quick reads only the two
		 * ends in the quick check, for a table of records that nothing
		 * but delivery (or the CLI) reads, and that may be large. */
		for (size_t i = 0; rc == 0 && i < n; i++)
			rc = verify_db(ms.ms_psize, txn, t[i].dbi, t[i].records ? 1 + quick : 0, &sum);
	}
	if (txn)
		mdb_txn_abort(txn);
	relay_store_close(st);
	/* LMDB's own findings mean the same to the caller as ours. */
	if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND)
		rc = -RELAY_ECORRUPT;
	return rc;
}

struct verify_arg {
	const char *dir;
	size_t file_size;
};

static int
verify_all(const void *arg)
{
	const struct verify_arg *a = arg;

	return verify_here(a->dir, a->file_size, 0);
}

/* The size of dir's data file: 0 with *size set, ENOENT when there is
 * none, ENOMEM, or the errno of stat. */
static int
data_file_size(const char *dir, size_t *size)
{
	struct stat sb;
	char *path;
	int rc;

	if (!(path = malloc(strlen(dir) + sizeof("/data.mdb"))))
		return ENOMEM;
	sprintf(path, "%s/data.mdb", dir);
	rc = stat(path, &sb) == 0 ? 0 : errno;
	free(path);
	*size = rc ? 0 : (size_t)sb.st_size;
	return rc;
}

int
relay_store_verify(const char *dir)
{
	struct verify_arg a = { dir, 0 };
	int rc = data_file_size(dir, &a.file_size);

	if (rc == ENOENT)
		return 0; /* nothing to read: opening it makes a new store */
	if (rc)
		return rc;
	return relay_store_child_run(verify_all, &a);
}

/* The two steps: the quick check now, the whole walk behind. */

struct relay_store_check {
	pid_t pid;
	int fd;
};

int
relay_store_verify_start(const char *dir, struct relay_store_check **out)
{
	struct relay_store_check *c;
	size_t size;
	int fd, rc;
	pid_t parent = getpid(), pid;

	*out = NULL;
	rc = data_file_size(dir, &size);
	if (rc == ENOENT)
		return 0; /* nothing to read: opening it makes a new store */
	if (rc)
		return rc;
	if (!(c = calloc(1, sizeof(*c))))
		return ENOMEM;
	if ((pid = relay_store_child_fork(&fd)) < 0) {
		free(c);
		return (int)-pid;
	}
	if (pid == 0) {
		/* A walk nobody waits for any more stops with its parent. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		rc = verify_here(dir, size, 1);
		if (write(fd, &rc, sizeof(rc)) != (ssize_t)sizeof(rc) || rc)
			_exit(1);
		/* The whole walk yields to the daemon it checks for. */
		(void)setpriority(PRIO_PROCESS, 0, 19);
		rc = verify_here(dir, size, 0);
		_exit(write(fd, &rc, sizeof(rc)) == (ssize_t)sizeof(rc) ? 0 : 1);
	}
	c->pid = pid;
	c->fd = fd;
	if (!relay_store_child_verdict(c->fd, &rc))
		rc = -RELAY_ECORRUPT; /* the quick check died on a page */
	if (rc) {
		close(c->fd);
		relay_store_child_reap(c->pid);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int
relay_store_check_fd(const struct relay_store_check *c)
{
	return c->fd;
}

int
relay_store_check_end(struct relay_store_check *c, int cancel)
{
	int rc;

	if (!c)
		return 0;
	if (cancel)
		kill(c->pid, SIGKILL);
	if (!relay_store_child_verdict(c->fd, &rc))
		rc = cancel ? 0 : -RELAY_ECORRUPT; /* no answer: the walk died */
	close(c->fd);
	relay_store_child_reap(c->pid);
	free(c);
	return rc;
}
