/*
 * odoo-relay: reading a store that is not trusted yet, in a child process.
 * Not a public interface: lib/ only (store.c at open, store_check.c).
 *
 * LMDB keeps no checksums. A page whose numbers are garbage makes a reader
 * touch memory past the file (SIGBUS) or the map (SIGSEGV) instead of
 * failing, so a reader of a store that may be damaged runs in a forked
 * child, and a child that dies is the finding: -RELAY_ECORRUPT. The child's
 * stderr is /dev/null: whatever kills it (a sanitizer's report too) is not
 * a message for the caller's log.
 *
 * Threading: these fork, from any thread; the children call only LMDB and
 * libc. store_check.h says when its own callers may call it.
 */
#ifndef ODOO_RELAY_STORE_CHILD_INT_H
#define ODOO_RELAY_STORE_CHILD_INT_H

#include <stddef.h>
#include <sys/types.h>

#include <lmdb.h>

/* Forks a child with a pipe to its parent: returns 0 in the child, with *fd
 * the end to write (its stderr is /dev/null); the child's pid in the
 * parent, with *fd the end to read (both O_CLOEXEC); or -errno of pipe2 or
 * fork, with no descriptor left open. */
pid_t relay_store_child_fork(int *fd);

/* Reads the int a child wrote to fd: 1 with *rc set, 0 at the end of the
 * file (the child died or exited without a verdict). Retries on EINTR. */
int relay_store_child_verdict(int fd, int *rc);

/* Waits for child pid to end, retrying on EINTR; its status is dropped. */
void relay_store_child_reap(pid_t pid);

/* Runs fn(arg) in a child and returns what it returned; -RELAY_ECORRUPT if
 * the child died first; the errno of pipe2 or fork. Blocks until the child
 * ends. fn runs in the child only: what it changes stays there. */
int relay_store_child_run(int (*fn)(const void *arg), const void *arg);

/*
 * relay_store_child_length - whether the data file of env (opened on
 * directory dir, pages of psize bytes) holds every page its newest commit
 * uses. A file shorter than its meta page's last page may have been cut
 * short (copied half, a disk that filled while a backup was restored):
 * LMDB does not check, and the first read past the end is a SIGBUS. But a
 * healthy file can be shorter too: LMDB counts, and never writes, a page
 * that the transaction which took it from the end of the file gave back
 * before it committed (a "loose" page). Such pages are on the free list,
 * where no reader goes; so a short file is damaged only if a page it lacks
 * is not free. That is read in a child, because in a file really cut short
 * the free list's own pages may be past its end.
 *
 * Returns 0 (the file is long enough, or lacks only free pages);
 * -RELAY_ECORRUPT (a page in use is missing, or the child died); EAGAIN (a
 * writer committed a hundred times while the child tried to read one
 * commit's free list and last page together); or an LMDB code or errno.
 */
int relay_store_child_length(MDB_env *env, const char *dir, size_t psize);

#endif
