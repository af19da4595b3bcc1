/*
 * odoo-relayctl: what its files share. Not a library interface: every
 * function here is used by the one program and follows its conventions:
 *
 *   - a function that can fail and prints its own message returns an exit
 *     status (sysexits.h: EX_USAGE, EX_NOINPUT, EX_NOPERM, ...; 0 for
 *     success); one that does not print returns an error code of the one
 *     error space (include/odoo_relay/error.h) and says so;
 *   - messages go to stderr, lower case, "odoo-relayctl: " first, saying
 *     what failed first; results go to stdout;
 *   - everything is single-threaded.
 *
 * Files: relayctl.c (options, verb table, opening the store, errors),
 * relayctl_verbs.c (status, pause, resume, shape), relayctl_queue.c
 * (events and dead letters), relayctl_compact.c, relayctl_filter.c
 * (filters, durations, times), relayctl_out.c (tables, times, JSON, the
 * long form of one event).
 */
#ifndef ODOO_RELAYCTL_H
#define ODOO_RELAYCTL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <jansson.h>

#include "odoo_relay/config.h"
#include "odoo_relay/record.h"
#include "odoo_relay/route.h"
#include "odoo_relay/store.h"

#define CTL_PROG "odoo-relayctl"
#define CTL_DEFAULT_CONFIG "/etc/odoo-relay/odoo-relay.json"

/* Everything a verb works with. */
struct ctl {
	const char *config_path;      /* NULL with --state-dir */
	const char *state_dir;        /* the configuration's or --state-dir */
	size_t map_size;              /* the configuration's; 0 with --state-dir */
	int json;                     /* --json */
	struct relay_config *cfg;     /* NULL with --state-dir */
	struct relay_routes *routes;  /* NULL with --state-dir */
	struct relay_store *st;       /* opened by ctl_open */
	int64_t now_ms;               /* wall clock at start: one "now" per run */
	const char *verb;             /* "dead replay", for messages */
	const char *destination;      /* pause/resume --destination */
};

/* ---- relayctl.c ---- */

/* ctl_err - print "odoo-relayctl: <text>" to stderr. */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ctl_usage - print the message, then the current verb's synopsis, to
 * stderr; returns EX_USAGE. */
int ctl_usage(const struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ctl_help - print the help of verb name ("dead list") to stdout; returns 0. */
int ctl_help(const char *name);

/* ctl_strerror - relay_strerror(rc) starting lower case (errno texts do
 * not); a static buffer overwritten by the next call. */
const char *ctl_strerror(int rc);

/* ctl_exit_of - the exit status that goes with error code rc. */
int ctl_exit_of(int rc);

/* ctl_open - open c->state_dir, read-only or (write) read-write, never
 * creating a store. Returns 0, or prints why not and returns the exit
 * status (EX_NOINPUT, EX_NOPERM, EX_DATAERR, EX_IOERR). */
int ctl_open(struct ctl *c, int write);

/* ctl_config - load the configuration (and compile its routes) unless
 * --state-dir was given; sets state_dir and map_size. Returns 0 or an exit
 * status (message printed). ctl_open calls it. */
int ctl_config(struct ctl *c);

/* ctl_close - close the store if open. */
void ctl_close(struct ctl *c);

/*
 * ctl_holder - which other process has the store in dir open, from the
 * lock LMDB keeps on the first byte of dir/lock.mdb for as long as a
 * process has the environment open (shared; the first opener tries it
 * exclusively). Must be called while this process does NOT have the store
 * open: closing a descriptor of lock.mdb drops every lock of the process
 * on it, LMDB's included. Returns 1 with *pid and name (the process's
 * comm, "" if unknown) set, 0 when nobody holds it (or there is no lock
 * file), or -errno when the lock file cannot be examined.
 */
int ctl_holder(const char *dir, pid_t *pid, char *name, size_t namesz);

/* ctl_parse_id - a positive decimal event id. Returns 0 or -1. */
int ctl_parse_id(const char *s, uint64_t *id);

/* ---- getopt helpers shared by the verbs (relayctl.c) ---- */

/* Option codes common to every verb. */
#define CTL_OPT_HELP 'h'
#define CTL_OPT_JSON 0x100

/* ctl_getopt_error - the usage error for getopt's answer '?' or ':' on argv. */
int ctl_getopt_error(const struct ctl *c, int ch, char **argv);

/* ---- relayctl_filter.c ---- */

struct ctl_filter {
	const char *source;
	const char *topic;       /* fnmatch(3) pattern */
	const char *route;
	const char *dest;        /* the destination of the event's route */
	const char *lane;
	const char *error;       /* substring of the last attempt's error name */
	const char *grep;        /* substring of dead_reason or the last message */
	int64_t older_ms, newer_ms; /* age of received_ms; -1 when not set */
	int64_t since_ms, until_ms; /* dead_ms range; -1 when not set */
	unsigned long limit;     /* lists only */
	int any;                 /* some filter (not --limit) was given */
};

/* Filter option codes, for the verbs' getopt_long tables. */
enum {
	CTL_F_SOURCE = 0x200,
	CTL_F_TOPIC,
	CTL_F_ROUTE,
	CTL_F_LANE,
	CTL_F_ERROR,
	CTL_F_GREP,
	CTL_F_OLDER,
	CTL_F_NEWER,
	CTL_F_SINCE,
	CTL_F_UNTIL,
	CTL_F_LIMIT,
	CTL_F_DEST,
};

/* ctl_filter_init - no filter, limit as given. */
void ctl_filter_init(struct ctl_filter *f, unsigned long limit);

/* ctl_filter_set - apply filter option code with its argument. Returns 0,
 * or prints a usage error and returns EX_USAGE. */
int ctl_filter_set(const struct ctl *c, struct ctl_filter *f, int code, const char *arg);

/* ctl_filter_match - 1 if ev passes every filter of f (dead: a dead letter,
 * whose --since/--until apply to dead_ms), else 0. */
int ctl_filter_match(const struct ctl *c, const struct ctl_filter *f,
                     const struct relay_event *ev);

/* ctl_route_of - the route of ev: its stored route once an attempt was
 * made, else the configured route its source and topic match now, else
 * NULL. Owned by ev or by c->routes. */
const char *ctl_route_of(const struct ctl *c, const struct relay_event *ev);

/* ctl_last_attempt - ev's most recent attempt, or NULL. */
const struct relay_attempt *ctl_last_attempt(const struct relay_event *ev);

/* ctl_parse_duration - "90s", "5m", "2h", "1d", "1w", combinations such
 * as "1h30m", or a bare number of seconds, into *ms. Returns 0 or -1. */
int ctl_parse_duration(const char *s, int64_t *ms);

/* ctl_parse_time - an absolute ISO 8601 time ("2025-06-01",
 * "2025-06-01T12:30", "2025-06-01 12:30:15+02:00", "...Z"; local time
 * without a zone) or a duration meaning that long before now_ms. Returns 0
 * with *ms set, or -1. */
int ctl_parse_time(const char *s, int64_t now_ms, int64_t *ms);

/* ---- relayctl_out.c ---- */

struct ctl_table;

/* ctl_table_new - a table with the given column titles; align holds one
 * letter per column, 'l' or 'r'. NULL on ENOMEM. */
struct ctl_table *ctl_table_new(const char *align, const char *const *titles);

/* ctl_table_add - append a row of as many cells as columns (NULL shows as
 * "-"); cells are copied with control characters made visible. Returns 0
 * or ENOMEM. */
int ctl_table_add(struct ctl_table *t, const char *const *cells);

/* ctl_table_print - print the table with aligned columns, then free it. */
void ctl_table_print(struct ctl_table *t, FILE *f);
void ctl_table_free(struct ctl_table *t);

/* Time and size texts into buf (size n). */
void ctl_fmt_time(int64_t ms, char *buf, size_t n);          /* ISO 8601, local, offset */
void ctl_fmt_dur(int64_t ms, char *buf, size_t n);           /* "3m", "2h05m", "4d" */
void ctl_fmt_rel(int64_t now_ms, int64_t ms, char *buf, size_t n); /* "3m ago", "in 5s" */
void ctl_fmt_when(int64_t now_ms, int64_t ms, char *buf, size_t n); /* time (rel) */
void ctl_fmt_bytes(uint64_t bytes, char *buf, size_t n);     /* "1.5 MiB" */
void ctl_fmt_u64(uint64_t v, char *buf, size_t n);

/* ctl_clip - s with control characters made visible, cut to max display
 * columns with an ellipsis, into buf (size n); NULL gives "-". */
const char *ctl_clip(const char *s, size_t max, char *buf, size_t n);

/* ctl_json_print - print o (taking its reference) to stdout: indented, or
 * on one line (line != 0). Returns 0, or EX_SOFTWARE on ENOMEM (message
 * printed). */
int ctl_json_print(json_t *o, int line);

/* ctl_json_print_lines - print each element of the array lines (taking the
 * array's reference) on a line of its own, stopping at the first that
 * fails. Returns 0, or what ctl_json_print returned. */
int ctl_json_print_lines(json_t *lines);

/* ctl_json_id - the id as a JSON string (the HTTP API's form). */
json_t *ctl_json_id(uint64_t id);

/* ctl_json_time - {"..._ms": ms, "...": ISO text} into o under key
 * (NULL values when ms is 0). Returns 0 or -1. */
int ctl_json_time(json_t *o, const char *key, int64_t ms);

/* ctl_json_event - the JSON form of ev (see odoo-relayctl(8), "JSON
 * OUTPUT"): the summary fields, and with full the headers, the body, the
 * attempts and for a dead letter the request. state is "due", "delayed",
 * "parked" or NULL (dead letters). NULL on ENOMEM. */
json_t *ctl_json_event(const struct ctl *c, const struct relay_event *ev, const char *state,
                       int full);

/* ctl_print_event - the long human form of ev, for events show and dead
 * show. */
void ctl_print_event(const struct ctl *c, const struct relay_event *ev, const char *state);

/* ---- the verbs: each returns the exit status ---- */

int ctl_status(struct ctl *c, int argc, char **argv);

/* ---- relayctl_poll.c ---- */

/* ctl_sync - the verb "sync SOURCE [--since TIME] [--id ID...]". */
int ctl_sync(struct ctl *c, int argc, char **argv);
/* ctl_pollers - {source: state} of each odoo-poll source of the
 * configuration, as odoo-relayd keeps it, with "lag_s" and "sync_pending";
 * an empty object without a configuration. Never NULL but on ENOMEM. */
json_t *ctl_pollers(struct ctl *c);
/* ctl_pollers_problems - a line in problems for each poller with an error. */
void ctl_pollers_problems(const json_t *pollers, json_t *problems);
/* ctl_pollers_print - status's lines for the pollers. */
void ctl_pollers_print(const struct ctl *c, const json_t *pollers);
int ctl_pause(struct ctl *c, int argc, char **argv);
int ctl_resume(struct ctl *c, int argc, char **argv);
int ctl_shape(struct ctl *c, int argc, char **argv);
int ctl_events_list(struct ctl *c, int argc, char **argv);
int ctl_events_show(struct ctl *c, int argc, char **argv);
int ctl_dead_list(struct ctl *c, int argc, char **argv);
int ctl_dead_show(struct ctl *c, int argc, char **argv);
int ctl_dead_replay(struct ctl *c, int argc, char **argv);
int ctl_dead_drop(struct ctl *c, int argc, char **argv);
int ctl_compact(struct ctl *c, int argc, char **argv);
int ctl_trace(struct ctl *c, int argc, char **argv);
int ctl_audit(struct ctl *c, int argc, char **argv);
int ctl_dead_edit(struct ctl *c, int argc, char **argv);

/* ---- relayctl_history.c: the history, the audit trail, edits ---- */

struct relay_hist_settle;

/* ctl_audit_record - record a write this run made (the verb's argv, the
 * ids it touched, how many) in the store's audit trail and the journal
 * (MESSAGE_ID b7d1e2a4c9f04e3a8d6b5c2f1a0e9d16), in a transaction of its
 * own: for a write that is not a store transaction (compact), called once
 * it is done; the store must be open read-write (c->st). Prints a warning
 * and returns the error when the store refuses; the change itself stands. */
int ctl_audit_record(struct ctl *c, int argc, char **argv, const uint64_t *ids, size_t n_ids,
                     uint64_t count);

/* ctl_audit_commit - commit txn, the top-level write transaction of a
 * verb's change, with the audit record of that change in it (as
 * ctl_audit_record's), so that both are in the store or neither is; then
 * the journal line. A record that cannot be written (the store full) warns
 * and the change commits without it. Returns relay_store_txn_commit's
 * result (txn is freed either way); on failure nothing was written and
 * nothing journaled. Verbs whose change is a store transaction use this,
 * not ctl_audit_record. */
int ctl_audit_commit(struct ctl *c, MDB_txn *txn, int argc, char **argv, const uint64_t *ids,
                     size_t n_ids, uint64_t count);

/* ctl_history_settle_of - *s for an event of source leaving the queue by
 * this run's hand: the configuration's retention (7 days without one) and
 * the source's retain_body. Returns 0. */
int ctl_history_settle_of(const struct ctl *c, const char *source, struct relay_hist_settle *s);

/* ctl_history_show - events show for an event in the history: prints it
 * and returns the exit status, or -1 (nothing printed) when id is not in
 * the history. The store must be open. */
int ctl_history_show(struct ctl *c, uint64_t id);

/* ctl_history_list - events list --delivered with filter f (since/until
 * apply to the time the event left the queue); the store must be open.
 * Returns the exit status. */
int ctl_history_list(struct ctl *c, const struct ctl_filter *f);

/* ctl_dead_versions - the body versions of dead letter id and the diff of
 * the first and the last: printed, or into o (--json). 0 or an error code;
 * nothing when it was never edited. */
int ctl_dead_versions(struct ctl *c, uint64_t id, json_t *o);

/* ctl_status_acks - status's part on answers to senders (the daemon's
 * "acks" note): printed, or set as member "acks" of out (--json). */
int ctl_status_acks(struct ctl *c, json_t *out);

#endif
