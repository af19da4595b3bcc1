/*
 * odoo-relayctl compact: rewrite the store without its free pages.
 *
 * LMDB never shrinks its file, and a process that has it mapped cannot have
 * it swapped beneath it, so compacting is an offline operation:
 *
 *  1. Refuse while any process has the environment open. Every process
 *     that opens an LMDB environment holds a shared fcntl lock on the first
 *     byte of lock.mdb for as long as it has it open (the first opener tries
 *     it exclusively to know it must initialise the lock table);
 *     ctl_holder() asks the kernel for it (F_GETLK), which is exact, covers
 *     crashed processes (the kernel drops their locks) and names the pid.
 *  2. Copy: relay_store_compact() writes DIR/compact.tmp/data.mdb, a
 *     consistent snapshot without free pages (mdb_env_copy2 with
 *     MDB_CP_COMPACT); the copy is given the owner and mode of data.mdb
 *     and fsync'ed.
 *  3. Close the door: an open file description lock (F_OFD_SETLK) for
 *     writing on that same byte. It conflicts with LMDB's own locks, so
 *     taking it fails if anyone opened the store meanwhile, and anyone who
 *     tries now waits. data.mdb must also be unchanged since step 2 (inode,
 *     size, modification time): else the copy may miss a commit, and we
 *     stop with the original untouched.
 *  4. Swap: data.mdb -> data.mdb.old, the copy -> data.mdb, fsync the
 *     directory. The old lock.mdb describes the old file (its transaction
 *     ids): it is truncated and removed while our lock still holds it, so
 *     that a process that was waiting for it fails to open instead of
 *     trusting it, and the next opener makes a fresh one.
 *  5. Verify: open the new store, count events and dead letters (they must
 *     be what the old one had), then remove data.mdb.old. If the new store
 *     does not open or count the same, data.mdb.old is put back.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "odoo_relay/error.h"

#include "relayctl.h"

struct paths {
	char data[PATH_MAX], lock[PATH_MAX], old[PATH_MAX], tmp[PATH_MAX], tmp_data[PATH_MAX];
};

static int
fsync_path(const char *path, int dir)
{
	int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return errno;
	if (fsync(fd) != 0)
		rc = errno;
	close(fd);
	return rc;
}

/* Removes what an earlier, interrupted compact left in compact.tmp. */
static int
clear_tmp(const struct paths *p)
{
	if (unlink(p->tmp_data) != 0 && errno != ENOENT)
		return errno;
	if (rmdir(p->tmp) != 0 && errno != ENOENT)
		return errno;
	return 0;
}

static int
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static int
busy(const struct ctl *c, pid_t pid, const char *name)
{
	ctl_err("cannot compact %s: %s (pid %ld) has the store open; stop odoo-relayd first "
	        "(systemctl stop odoo-relay), then compact",
	        c->state_dir, name[0] ? name : "a process", (long)pid);
	return EX_TEMPFAIL;
}

struct before {
	struct relay_store_stats stats;
	size_t live;
	off_t file_size;
};

/* Sizes and counts of the store, opened and closed again here. */
static int
measure(struct ctl *c, struct before *b)
{
	struct stat sb;
	char data[PATH_MAX];
	int rc;

	if ((rc = ctl_open(c, 0)))
		return rc;
	rc = relay_store_stats(c->st, c->now_ms, &b->stats);
	if (!rc)
		rc = relay_store_live_bytes(c->st, &b->live);
	ctl_close(c);
	if (rc) {
		ctl_err("cannot measure store %s: %s", c->state_dir, ctl_strerror(rc));
		return ctl_exit_of(rc);
	}
	snprintf(data, sizeof(data), "%s/data.mdb", c->state_dir);
	b->file_size = stat(data, &sb) == 0 ? sb.st_size : 0;
	return 0;
}

static int
report(struct ctl *c, int dry_run, const struct before *b, uint64_t after, pid_t holder,
       const char *holder_name)
{
	char s1[32], s2[32], s3[32];
	uint64_t before = (uint64_t)b->file_size;
	uint64_t saved = before > after ? before - after : 0;

	if (c->json) {
		json_t *o = json_pack("{s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "store", c->state_dir,
		                      "dry_run", dry_run, "before_bytes", (json_int_t)before,
		                      dry_run ? "expected_bytes" : "after_bytes", (json_int_t)after,
		                      dry_run ? "expected_saving_bytes" : "saved_bytes", (json_int_t)saved,
		                      "map_used", (json_int_t)b->stats.map_used, "live_bytes",
		                      (json_int_t)b->live, "events", (json_int_t)b->stats.events, "dead",
		                      (json_int_t)b->stats.dead);

		if (o && dry_run && holder &&
		    json_object_set_new(o, "blocked_by_pid", json_integer(holder))) {
			json_decref(o);
			o = NULL;
		}
		return ctl_json_print(o, 0);
	}
	ctl_fmt_bytes(before, s1, sizeof(s1));
	ctl_fmt_bytes(after, s2, sizeof(s2));
	ctl_fmt_bytes(saved, s3, sizeof(s3));
	if (dry_run) {
		printf("dry run: %s/data.mdb is %s; a compacted copy would take about %s, saving about "
		       "%s\n",
		       c->state_dir, s1, s2, s3);
		printf("(%" PRIu64 " events and %" PRIu64 " dead letters; nothing changed)\n",
		       b->stats.events, b->stats.dead);
		if (holder)
			printf("compact would refuse now: %s (pid %ld) has the store open; stop "
			       "odoo-relayd first (systemctl stop odoo-relay)\n",
			       holder_name[0] ? holder_name : "a process", (long)holder);
	} else {
		printf("compacted %s: data.mdb %s -> %s (saved %s); %" PRIu64 " events and %" PRIu64
		       " dead letters kept\n",
		       c->state_dir, s1, s2, s3, b->stats.events, b->stats.dead);
	}
	return 0;
}

/* Takes an open-file-description write lock on lock.mdb's first byte:
 * returns the descriptor, -1 with errno EAGAIN if someone has the store
 * open, or -1 with another errno. */
static int
close_the_door(const char *lock)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
	int fd = open(lock, O_RDWR | O_CLOEXEC), e;

	if (fd < 0)
		return -1;
	if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
		e = errno == EACCES ? EAGAIN : errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Puts data.mdb.old back after a failed swap or verification. After a
 * verification, lock.mdb describes the compacted file: it goes too (nobody
 * else has it open: the store was ours alone). */
static void
roll_back(const struct paths *p, int drop_lock)
{
	if (drop_lock)
		unlink(p->lock);
	if (rename(p->old, p->data) != 0)
		ctl_err("cannot put %s back as %s: %s: do it by hand before starting odoo-relayd",
		        p->old, p->data, ctl_strerror(errno));
	else
		ctl_err("the old store is back in place, unchanged");
	fsync_path(p->old, 0);
}

int
ctl_compact(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "json", no_argument, NULL, CTL_OPT_JSON },
		{ "help", no_argument, NULL, CTL_OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	struct paths p;
	struct before b = { 0 };
	struct relay_store_stats after;
	struct stat s1, s2, tsb;
	char holder_name[64];
	pid_t holder = 0;
	int ch, dry_run = 0, h, rc, fd = -1, status;

	while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (ch) {
		case 'n': dry_run = 1; break;
		case CTL_OPT_JSON: c->json = 1; break;
		case CTL_OPT_HELP: return ctl_help(c->verb);
		default: return ctl_getopt_error(c, ch, argv);
		}
	}
	if (optind < argc)
		return ctl_usage(c, "unexpected argument \"%s\"", argv[optind]);
	if ((rc = ctl_config(c)))
		return rc;
	snprintf(p.data, sizeof(p.data), "%s/data.mdb", c->state_dir);
	snprintf(p.lock, sizeof(p.lock), "%s/lock.mdb", c->state_dir);
	snprintf(p.old, sizeof(p.old), "%s/data.mdb.old", c->state_dir);
	snprintf(p.tmp, sizeof(p.tmp), "%s/compact.tmp", c->state_dir);
	snprintf(p.tmp_data, sizeof(p.tmp_data), "%s/compact.tmp/data.mdb", c->state_dir);

	/* 1. nobody may have the store open (checked with no store open here) */
	h = ctl_holder(c->state_dir, &holder, holder_name, sizeof(holder_name));
	if (h < 0 && h != -ENOENT) {
		if (h == -EACCES)
			ctl_err("cannot compact %s: need write access to %s and the directory: run as root "
			        "or as the store's owner",
			        c->state_dir, p.lock);
		else
			ctl_err("cannot examine %s: %s", p.lock, ctl_strerror(-h));
		return ctl_exit_of(-h);
	}
	if (h == 1 && !dry_run)
		return busy(c, holder, holder_name);
	if ((rc = measure(c, &b)))
		return rc;
	if (dry_run)
		return report(c, 1, &b, b.live, h == 1 ? holder : 0, holder_name);
	if (access(p.old, F_OK) == 0) {
		ctl_err("cannot compact %s: %s exists, left by an interrupted compact; if data.mdb opens "
		        "fine (" CTL_PROG " status), remove it and run compact again",
		        c->state_dir, p.old);
		return EX_TEMPFAIL;
	}

	/* 2. the copy */
	if (stat(p.data, &s1) != 0) {
		ctl_err("cannot compact %s: %s: %s", c->state_dir, p.data, ctl_strerror(errno));
		return ctl_exit_of(errno);
	}
	if ((rc = clear_tmp(&p)) || (mkdir(p.tmp, 0700) != 0 && (rc = errno))) {
		ctl_err("cannot make %s for the copy: %s", p.tmp, ctl_strerror(rc));
		return ctl_exit_of(rc);
	}
	if ((rc = relay_store_compact(c->state_dir, p.tmp))) {
		ctl_err("cannot write the compacted copy %s: %s", p.tmp_data, ctl_strerror(rc));
		status = ctl_exit_of(rc);
		goto drop_copy;
	}
	/* the copy is made by whoever runs this (root, usually): give it to the
	 * store's owner, or odoo-relayd could not open it */
	if (chown(p.tmp_data, s1.st_uid, s1.st_gid) != 0 || chmod(p.tmp_data, s1.st_mode & 07777) != 0 ||
	    (rc = fsync_path(p.tmp_data, 0))) {
		rc = rc ? rc : errno;
		ctl_err("cannot prepare the compacted copy %s: %s", p.tmp_data, ctl_strerror(rc));
		status = ctl_exit_of(rc);
		goto drop_copy;
	}
	if (stat(p.tmp_data, &tsb) != 0) {
		ctl_err("cannot read the compacted copy %s: %s", p.tmp_data, ctl_strerror(errno));
		status = EX_IOERR;
		goto drop_copy;
	}

	/* 3. nobody may come in now, and nothing may have changed */
	if ((fd = close_the_door(p.lock)) < 0) {
		if (errno == EAGAIN && ctl_holder(c->state_dir, &holder, holder_name,
		                                  sizeof(holder_name)) == 1) {
			status = busy(c, holder, holder_name);
		} else if (errno == EAGAIN) {
			ctl_err("cannot compact %s: a process opened the store during the copy; stop it and "
			        "run compact again",
			        c->state_dir);
			status = EX_TEMPFAIL;
		} else {
			ctl_err("cannot lock %s: %s", p.lock, ctl_strerror(errno));
			status = ctl_exit_of(errno);
		}
		goto drop_copy;
	}
	if (stat(p.data, &s2) != 0 || !same_file(&s1, &s2)) {
		ctl_err("cannot compact %s: data.mdb changed during the copy (did odoo-relayd run?); "
		        "nothing was swapped: run compact again with the daemon stopped",
		        c->state_dir);
		status = EX_TEMPFAIL;
		goto drop_copy;
	}

	/* 4. the swap */
	if (rename(p.data, p.old) != 0) {
		ctl_err("cannot move %s aside: %s", p.data, ctl_strerror(errno));
		status = ctl_exit_of(errno);
		goto drop_copy;
	}
	if (rename(p.tmp_data, p.data) != 0) {
		ctl_err("cannot move the compacted copy into place: %s", ctl_strerror(errno));
		status = EX_IOERR;
		roll_back(&p, 0);
		goto drop_copy;
	}
	if (ftruncate(fd, 0) != 0 || unlink(p.lock) != 0)
		ctl_err("warning: cannot remove the old %s: %s", p.lock, ctl_strerror(errno));
	close(fd);
	fd = -1;
	rmdir(p.tmp);
	if ((rc = fsync_path(c->state_dir, 1)))
		ctl_err("warning: cannot fsync %s: %s", c->state_dir, ctl_strerror(rc));

	/* 5. verify, then let the old file go */
	if ((rc = ctl_open(c, 0))) {
		ctl_err("the compacted store does not open");
		roll_back(&p, 1);
		return rc;
	}
	rc = relay_store_stats(c->st, c->now_ms, &after);
	ctl_close(c);
	if (rc || after.events != b.stats.events || after.dead != b.stats.dead ||
	    after.next_id != b.stats.next_id) {
		if (rc)
			ctl_err("cannot read the compacted store: %s", ctl_strerror(rc));
		else
			ctl_err("the compacted store holds %" PRIu64 " events and %" PRIu64
			        " dead letters, not %" PRIu64 " and %" PRIu64,
			        after.events, after.dead, b.stats.events, b.stats.dead);
		roll_back(&p, 1);
		return EX_SOFTWARE;
	}
	if (unlink(p.old) != 0)
		ctl_err("warning: cannot remove %s: %s", p.old, ctl_strerror(errno));
	fsync_path(c->state_dir, 1);
	/* Recorded in the compacted store, the one that stays. */
	if (ctl_open(c, 1) == 0) {
		ctl_audit_record(c, argc, argv, NULL, 0, 0);
		ctl_close(c);
	}
	return report(c, 0, &b, (uint64_t)tsb.st_size, 0, "");

drop_copy:
	if (fd >= 0)
		close(fd);
	clear_tmp(&p);
	return status;
}
