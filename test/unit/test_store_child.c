/* store_child_int.h: a reader of an untrusted store, run in a child; and the
 * length check relay_store_open makes with it. */
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "check.h"
#include "odoo_relay/error.h"
#include "odoo_relay/store.h"
#include "store_child_int.h"

static char base[256];
static int touched;

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
answer(const void *arg)
{
	touched = 1;
	return *(const int *)arg;
}

static int
killed(const void *arg)
{
	(void)arg;
	raise(SIGKILL);
	return 0;
}

static int
silent_exit(const void *arg)
{
	(void)arg;
	_exit(0);
}

/* What fn returns comes back; what it changes stays in the child. */
static void
test_run_returns_the_verdict(void)
{
	int v = 42, neg = -RELAY_EVERSION;

	touched = 0;
	CHECK_INT(relay_store_child_run(answer, &v), 42);
	CHECK_INT(relay_store_child_run(answer, &neg), -RELAY_EVERSION);
	CHECK_INT(touched, 0);
}

/* A child that dies, or ends without a verdict, is the finding. */
static void
test_run_child_that_dies(void)
{
	CHECK_INT(relay_store_child_run(killed, NULL), -RELAY_ECORRUPT);
	CHECK_INT(relay_store_child_run(silent_exit, NULL), -RELAY_ECORRUPT);
}

static void
test_fork_verdict_reap(void)
{
	int fd, rc = 0;
	pid_t pid = relay_store_child_fork(&fd);

	CHECK(pid >= 0);
	if (pid == 0) {
		int seven = 7;

		_exit(write(fd, &seven, sizeof(seven)) == (ssize_t)sizeof(seven) ? 0 : 1);
	}
	if (pid < 0)
		return;
	CHECK_INT(relay_store_child_verdict(fd, &rc), 1);
	CHECK_INT(rc, 7);
	/* one verdict only: then the end of the pipe */
	CHECK_INT(relay_store_child_verdict(fd, &rc), 0);
	close(fd);
	relay_store_child_reap(pid);
	CHECK_INT(kill(pid, 0) == -1 ? errno : 0, ESRCH);
}

/* The length check on a whole file, and on one cut below a page in use. */
static void
test_length(void)
{
	char dir[300], path[400];
	struct relay_store *st;
	MDB_env *env = NULL;
	MDB_envinfo info;
	MDB_stat ms;
	struct stat sb;

	snprintf(dir, sizeof(dir), "%s/s", base);
	CHECK_INT(relay_store_open(dir, 8u << 20, RELAY_STORE_CREATE, &st), 0);
	if (!st)
		return;
	relay_store_close(st);
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	CHECK_INT(mdb_env_create(&env), 0);
	CHECK_INT(mdb_env_open(env, dir, MDB_RDONLY, 0), 0);
	CHECK_INT(mdb_env_stat(env, &ms), 0);
	CHECK_INT(mdb_env_info(env, &info), 0);
	CHECK_INT(relay_store_child_length(env, dir, ms.ms_psize), 0);
	/* the new store's last page is in use (its newest commit wrote it):
	 * a file without it is damaged */
	CHECK_INT(stat(path, &sb), 0);
	CHECK((size_t)sb.st_size >= (info.me_last_pgno + 1) * ms.ms_psize);
	CHECK_INT(truncate(path, (off_t)(info.me_last_pgno * ms.ms_psize)), 0);
	CHECK_INT(relay_store_child_length(env, dir, ms.ms_psize), -RELAY_ECORRUPT);
	mdb_env_close(env);
}

int
main(void)
{
	snprintf(base, sizeof(base), "%s/relay-child-XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 2;
	}
	RUN(test_run_returns_the_verdict);
	RUN(test_run_child_that_dies);
	RUN(test_fork_verdict_reap);
	RUN(test_length);
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return check_done();
}
