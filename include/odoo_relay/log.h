/*
 * odoo-relay: logging, to journald with structured fields when stderr is
 * connected to the journal ($JOURNAL_STREAM), else to stderr as one line per
 * message with a "<N>" priority prefix (sd-daemon(3) style, which journald
 * and most supervisors understand) and the fields appended as key=value.
 *
 * Never log secrets or whole payloads: callers pass ids, names and Odoo's
 * error names and messages only.
 *
 * Threading: all functions may be called from any thread; a message is
 * written with one system call.
 */
#ifndef ODOO_RELAY_LOG_H
#define ODOO_RELAY_LOG_H

#include <stdint.h>
#include <syslog.h>

/* MESSAGE_IDs (sd-id128 form) of the significant events; the journal
 * catalog (systemd/odoo-relay.catalog) explains each one. */
#define RELAY_MSGID_STARTED        "4f3c1f0e8d2a4b6c9e7f5a1b2c3d4e01"
#define RELAY_MSGID_STOPPED        "4f3c1f0e8d2a4b6c9e7f5a1b2c3d4e02"
#define RELAY_MSGID_DEAD           "4f3c1f0e8d2a4b6c9e7f5a1b2c3d4e03"
#define RELAY_MSGID_CIRCUIT_OPEN   "4f3c1f0e8d2a4b6c9e7f5a1b2c3d4e04"
#define RELAY_MSGID_CIRCUIT_CLOSED "4f3c1f0e8d2a4b6c9e7f5a1b2c3d4e05"
#define RELAY_MSGID_RELOADED       "4f3c1f0e8d2a4b6c9e7f5a1b2c3d4e06"
#define RELAY_MSGID_RELOAD_REFUSED "4f3c1f0e8d2a4b6c9e7f5a1b2c3d4e07"
#define RELAY_MSGID_STORE_FULL     "4f3c1f0e8d2a4b6c9e7f5a1b2c3d4e08"
/* An operator's write through odoo-relayctl (its audit trail). */
#define RELAY_MSGID_AUDIT          "b7d1e2a4c9f04e3a8d6b5c2f1a0e9d16"

/* Structured fields of one message; NULL or 0 members are left out. */
struct relay_log_fields {
	const char *message_id;
	uint64_t event_id;
	const char *source;
	const char *topic;
	const char *route;
	const char *destination;
	const char *lane;
	unsigned attempt;
	const char *error_class;
	const char *odoo_model;
	const char *odoo_error;
	/* The load() batch the event travelled in: BATCH_ID and BATCH_SIZE
	 * when batch_id is not 0, BATCH_ROW (0-based) when batch_row >= 0.
	 * Zero-initialised fields leave all three out, so batch_row's 0 only
	 * counts with a batch_id. */
	uint64_t batch_id;
	unsigned batch_size;
	int batch_row;
};

/*
 * relay_log_init - choose the sink and the lowest priority written
 * (LOG_ERR..LOG_DEBUG). journal: 1 force journald, 0 force stderr, -1 decide
 * from $JOURNAL_STREAM. Call once at start, before other threads log.
 */
void relay_log_init(int journal, int max_priority);

/*
 * relay_log - a plain message at priority prio (LOG_ERR, LOG_WARNING, ...);
 * nothing when prio is above the init's max_priority. fmt and its arguments
 * are borrowed for the call. Never fails from the caller's point of view: the
 * message is cut at about 2 KiB, control characters become spaces on stderr,
 * and a message that cannot be written (journald gone falls back to stderr;
 * stderr closed or full) is dropped.
 */
void relay_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* relay_log_with - a message with structured fields (f borrowed for the
 * call, may be NULL; each field cut at about 600 bytes), as relay_log. */
void relay_log_with(int prio, const struct relay_log_fields *f, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
