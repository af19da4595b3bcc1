/*
 * odoo-relay: where the time of one acknowledgement goes, measured inside
 * the daemon. Built in only with -DRELAY_ACK_TRACE=ON (cmake option of the
 * same name); otherwise every call below is an empty inline function and
 * costs nothing.
 *
 * The stages of a webhook, each timed from the end of the one before
 * (enum relay_ack_stage): the request handler's work on the loop thread
 * (source lookup, signature check, JSON parse, copy into an event) up to the
 * hand-off to the writer; the wait until the writer thread takes it; the
 * store's work in the group's transaction; the commit (page writes and
 * fsyncs); the wait until the loop thread runs the completion; and the
 * answer (status line, headers, body queued on the socket). Pages written
 * per commit are sampled as well (LMDB's dirty pages, counted by the
 * writer). Each stage keeps its last RELAY_ACK_TRACE_SAMPLES samples.
 *
 * relay_acktrace_dump(f) prints each stage's count, p50, p90 and p99 (µs)
 * to f; the daemon calls it as it stops.
 *
 * Threading: each stage is written by one thread only (loop or writer), and
 * dump runs after the writer has stopped. Timestamps are CLOCK_MONOTONIC ns.
 */
#ifndef ODOO_RELAY_ACKTRACE_H
#define ODOO_RELAY_ACKTRACE_H

#include <stdint.h>
#include <stdio.h>

enum relay_ack_stage {
	RELAY_ACK_HANDLER,   /* loop: request handler up to the hand-off */
	RELAY_ACK_HANDOFF,   /* queued until the writer thread took it */
	RELAY_ACK_APPLY,     /* writer: the store's work in the transaction */
	RELAY_ACK_COMMIT,    /* writer: mdb_txn_commit (writes, fsyncs) */
	RELAY_ACK_WAKE,      /* committed until the loop ran the completion */
	RELAY_ACK_ANSWER,    /* loop: the completion, answer queued */
	RELAY_ACK_TOTAL,     /* handler start to answer queued */
	RELAY_ACK_PAGES,     /* not a time: pages written by one commit */
	RELAY_ACK_STAGES
};

#define RELAY_ACK_TRACE_SAMPLES 65536

#ifdef RELAY_ACK_TRACE
int64_t relay_acktrace_now(void);
void relay_acktrace_add(enum relay_ack_stage stage, int64_t value);
void relay_acktrace_dump(FILE *f);
#else
static inline int64_t relay_acktrace_now(void) { return 0; }
static inline void relay_acktrace_add(enum relay_ack_stage stage, int64_t value) { (void)stage; (void)value; }
static inline void relay_acktrace_dump(FILE *f) { (void)f; }
#endif

#endif
