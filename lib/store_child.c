/* Reading a store not trusted yet, in a child: see store_child_int.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lmdb.h>

#include "odoo_relay/error.h"
#include "store_child_int.h"

int
relay_store_child_verdict(int fd, int *rc)
{
	ssize_t n;

	do
		n = read(fd, rc, sizeof(*rc));
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(*rc);
}

void
relay_store_child_reap(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

pid_t
relay_store_child_fork(int *fd)
{
	int fds[2], e;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) != 0)
		return -errno;
	if ((pid = fork()) < 0) {
		e = errno;
		close(fds[0]);
		close(fds[1]);
		return -e;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (null >= 0)
			dup2(null, STDERR_FILENO);
		close(fds[0]);
		*fd = fds[1];
		return 0;
	}
	close(fds[1]);
	*fd = fds[0];
	return pid;
}

int
relay_store_child_run(int (*fn)(const void *arg), const void *arg)
{
	int fd, rc;
	pid_t pid = relay_store_child_fork(&fd);

	if (pid < 0)
		return (int)-pid;
	if (pid == 0) {
		rc = fn(arg);
		_exit(write(fd, &rc, sizeof(rc)) == (ssize_t)sizeof(rc) ? 0 : 1);
	}
	if (!relay_store_child_verdict(fd, &rc))
		rc = -RELAY_ECORRUPT;
	close(fd);
	relay_store_child_reap(pid);
	return rc;
}

/* Marks in seen[] the pages first..first+n-1 that LMDB's free list holds
 * and counts them in *found. The free list is database 0: keyed by
 * transaction id, each value an array of page numbers (size_t) whose first
 * element is their count. */
static int
mark_free_pages(MDB_txn *txn, size_t first, size_t n, unsigned char *seen, size_t *found)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(txn, 0, &cur)))
		return rc;
	while (!(rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))) {
		const unsigned char *p = v.mv_data;
		size_t count, pg;

		if (v.mv_size < sizeof(count)) {
			rc = -RELAY_ECORRUPT;
			break;
		}
		memcpy(&count, p, sizeof(count));
		if (count > v.mv_size / sizeof(pg) - 1) {
			rc = -RELAY_ECORRUPT;
			break;
		}
		for (size_t i = 1; i <= count; i++) {
			memcpy(&pg, p + i * sizeof(pg), sizeof(pg));
			if (pg >= first && pg - first < n && !seen[pg - first]) {
				seen[pg - first] = 1;
				++*found;
			}
		}
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The child's work for relay_store_child_length: 0 if every page of the newest
 * commit that lies past the end of the data file (in directory arg) is on
 * the free list; -RELAY_ECORRUPT if one is not. */
static int
gap_is_free(const void *arg)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_envinfo info;
	MDB_stat ms;
	mdb_filehandle_t fd;
	struct stat sb;
	unsigned char *seen = NULL;
	size_t first, n, found = 0;
	int rc, tries = 0;

	if ((rc = mdb_env_create(&env)) ||
	    (rc = mdb_env_open(env, arg, MDB_RDONLY | MDB_NOTLS, 0)))
		goto out;
	/* The free list read and the last page compared must be one commit's,
	 * and a writer may commit between mdb_txn_begin and mdb_env_info. */
	for (;;) {
		rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
		if (rc == MDB_MAP_RESIZED && ++tries < 100 && !(rc = mdb_env_set_mapsize(env, 0)))
			continue;
		if (rc || (rc = mdb_env_info(env, &info)))
			goto out;
		if (info.me_last_txnid == mdb_txn_id(txn))
			break;
		mdb_txn_abort(txn);
		txn = NULL;
		if (++tries == 100) {
			rc = EAGAIN;
			goto out;
		}
	}
	/* That commit's pages were all written before it was: measured now,
	 * the file holds every one of them that is in use. */
	if ((rc = mdb_env_stat(env, &ms)) || (rc = mdb_env_get_fd(env, &fd)))
		goto out;
	if (fstat(fd, &sb) != 0) {
		rc = errno;
		goto out;
	}
	first = (size_t)sb.st_size / ms.ms_psize;
	if (first > info.me_last_pgno)
		goto out;
	n = info.me_last_pgno - first + 1;
	if (!(seen = calloc(n, 1))) {
		rc = ENOMEM;
		goto out;
	}
	if (!(rc = mark_free_pages(txn, first, n, seen, &found)) && found != n)
		rc = -RELAY_ECORRUPT;
out:
	free(seen);
	if (txn)
		mdb_txn_abort(txn);
	if (env)
		mdb_env_close(env);
	return rc;
}

int
relay_store_child_length(MDB_env *env, const char *dir, size_t psize)
{
	MDB_envinfo info;
	mdb_filehandle_t fd;
	struct stat sb;
	int rc;

	if ((rc = mdb_env_info(env, &info)) || (rc = mdb_env_get_fd(env, &fd)))
		return rc;
	if (fstat(fd, &sb) != 0)
		return errno;
	if ((uint64_t)sb.st_size < ((uint64_t)info.me_last_pgno + 1) * psize)
		return relay_store_child_run(gap_is_free, dir);
	return 0;
}
