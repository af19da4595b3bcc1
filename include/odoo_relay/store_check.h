/*
 * odoo-relay: checking a store before it is trusted.
 *
 * LMDB keeps no checksums, and a reader of a damaged page can crash
 * instead of failing. Before the daemon or odoo-relayctl opens a store in
 * its own process, a child reads it (store_child_int.h): every page a
 * reader can reach, every record decoded. relay_store_verify does it all
 * before returning; relay_store_verify_start does what start-up reads at
 * once and the rest behind it, so that a large backlog does not hold
 * READY=1 back.
 *
 * The store is opened read-only there (store.h); nothing is written. Each
 * function forks: call it before opening dir in this process and before
 * starting threads.
 */
#ifndef ODOO_RELAY_STORE_CHECK_H
#define ODOO_RELAY_STORE_CHECK_H

/*
 * relay_store_verify - read the whole store in dir before trusting it: walk
 * LMDB's free list, its main database and each of ours, touching every page
 * a reader can reach, and decode every event and dead-letter record.
 *
 * LMDB keeps no checksums: a damaged page whose page numbers are garbage
 * makes a reader touch memory outside the file (SIGBUS) or the map
 * (SIGSEGV) instead of returning an error. So the walk runs in a child
 * process (fork), and a child that dies counts as a damaged store. The
 * child opens the store read-only on its own and writes nothing.
 *
 * Call it before opening dir in this process, and before starting threads
 * (it forks). It blocks for as long as reading the file takes.
 *
 * Returns 0 (readable, or no data file yet: nothing to check); -RELAY_ECORRUPT
 * (a record that does not decode, a page LMDB finds malformed, a file
 * that lacks a page in use, or a walk that died); -RELAY_EVERSION (a newer
 * schema or record version); MDB_INVALID (not an LMDB file);
 * MDB_VERSION_MISMATCH; EACCES; ENOMEM; or the errno of pipe2/fork.
 */
int relay_store_verify(const char *dir);

/*
 * relay_store_verify_start - relay_store_verify() in two steps, for a
 * start-up that must not wait for a walk of the whole store (seconds for a
 * backlog of a million events). It forks one child (call it, like
 * relay_store_verify, before opening dir in this process and before starting
 * threads), which:
 *   1. runs the quick check: relay_store_verify's walk of every table except
 *      the records of events and dead, of which it reads the first and the
 *      last (and the branch pages on the way to them). That is everything
 *      the daemon reads before delivery starts: ingest's lookups and inserts
 *      (dedup, lanes, due, the end of events), the counts and the oldest
 *      event the status and metrics show, and LMDB's free list;
 *   2. then, at the lowest priority (nice 19), walks the whole store as
 *      relay_store_verify does, in its own read transaction (a snapshot: the
 *      caller may write meanwhile), and reports that verdict too.
 * It blocks until the quick check's verdict. The child dies with the
 * caller (PR_SET_PDEATHSIG). While its snapshot is open, LMDB cannot reuse
 * the pages the caller frees: the file may grow by about what is written
 * during the walk (a killed child's reader slot is cleared at the next
 * relay_store_open).
 *
 * Returns the quick check's verdict, with relay_store_verify's codes;
 * *out is then set when a whole walk is under way (NULL when there is no
 * data file yet: nothing to check), else NULL.
 *
 * relay_store_check_fd - the descriptor that becomes readable when the
 * whole walk's verdict is in (or its child died): wait on it, then call
 * relay_store_check_end. Owned by c.
 *
 * relay_store_check_end - the whole walk's verdict (relay_store_verify's
 * codes; a child that died is -RELAY_ECORRUPT), reaping the child and
 * freeing c. Blocks until the verdict unless cancel is nonzero, which kills
 * the walk first and returns 0 when it had not finished. NULL gives 0.
 */
struct relay_store_check;
int relay_store_verify_start(const char *dir, struct relay_store_check **out);
int relay_store_check_fd(const struct relay_store_check *c);
int relay_store_check_end(struct relay_store_check *c, int cancel);

#endif
