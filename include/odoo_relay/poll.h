/*
 * odoo-relay: the scheduled poller out of Odoo, its configuration and its
 * decisions, as values (pure: no I/O; the poller that acts on them is
 * poller.h, its tables store_poll.h).
 *
 * A source of kind "odoo-poll" (odoo-relay.conf(5), POLL SOURCES) reads one
 * model of one Odoo destination on a schedule:
 *   "destination" an Odoo destination to read from ["odoo"]
 *   "model"       required, e.g. "res.partner"
 *   "domain"      a fixed domain (no parameters) [[]]
 *   "fields"      required: the fields projected and sent (field names)
 *   "archived"    [true]: "active" is projected and active_test is off, so
 *                 that archiving is a change (false for models without
 *                 an "active" field)
 *   "interval_s"  seconds between polls [60], 1..86400
 *   "overlap_s"   how far behind the cursor each poll reads again [300],
 *                 0..86400: above the longest transaction Odoo allows
 *                 (limit_time_real), because Odoo stamps write_date with
 *                 the transaction's start and a row may commit later with
 *                 an older stamp
 *   "page_size"   records per search_read [500], 10..10000
 *   "topic"       of change events ["<model>.changed"]
 *   "deleted_topic" of deletion events ["<model>.deleted"]
 *   "deletion_check_s" seconds between comparisons of ids [3600]; 0: never
 *   "unrouted"    as for other sources ["dead"]
 *
 * Reading: search_read(domain + write_date >= cursor - overlap), ordered
 * "write_date asc, id asc", context active_test false when "archived".
 * JSON-RPC returns write_date in whole seconds while Odoo orders by its
 * microseconds, so a page that is full cannot be continued by (write_date,
 * id) inside its last second: the rows of that second are read again,
 * alone, ordered by id and paged by id ("write_date >= W and write_date <
 * W+1s and id > last"), then the reading goes on from W+1s. Nothing is
 * skipped, however many rows share one second.
 *
 * Each record's projection (the fields, without id and write_date) is
 * hashed (SHA-256, the first 8 bytes, of its canonical JSON); a record
 * becomes an event only when its hash differs from the one kept for
 * (source, id). The poller commits events, hashes and cursor together.
 *
 * Ownership: a struct relay_poll_conf belongs to its source's
 * configuration (config.h), freed with it. Everything here is pure and
 * thread-safe; functions returning json_t give new references.
 */
#ifndef ODOO_RELAY_POLL_H
#define ODOO_RELAY_POLL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "odoo_relay/schema.h"

struct relay_config;

struct relay_poll_conf {
	char *destination;        /* an Odoo destination's name */
	char *model;
	json_t *domain;           /* a fixed domain (array), owned */
	char **fields;            /* projected fields, "active" added when archived */
	size_t n_fields;
	unsigned *field_line, *field_column; /* where each configured field is (0: added) */
	int archived;
	int64_t interval_s, overlap_s, deletion_check_s;
	unsigned page_size;
	char *topic, *deleted_topic;
};

#define RELAY_POLL_TIME_LEN 20     /* "YYYY-MM-DD HH:MM:SS" and NUL */
#define RELAY_POLL_HASH_LEN 8
#define RELAY_POLL_ID_PAGE 10000   /* ids per search of the deletion check */

/*
 * relay_poll_conf_parse - parse the source object src of kind "odoo-poll"
 * (kind, unrouted and the keys above; anything else is refused) into a new
 * *out, errors through s (schema.h: file:line:column). doc gives the
 * positions of the fields. Returns 0, -RELAY_ECONFIG, or ENOMEM. The
 * destination is checked later (relay_poll_conf_check), once every
 * destination is known.
 */
int relay_poll_conf_parse(struct relay_schema *s, const struct relay_schema_doc *doc,
                          const json_t *src, struct relay_poll_conf **out);

/* relay_poll_conf_free - NULL is a no-op. */
void relay_poll_conf_free(struct relay_poll_conf *p);

/*
 * relay_poll_conf_check - every poll source of cfg names a destination of
 * kind odoo. Returns 0 or -RELAY_ECONFIG with err at the source's
 * "destination" (or its key when it was left out).
 */
int relay_poll_conf_check(const struct relay_config *cfg, struct relay_config_error *err);

/*
 * relay_poll_owner - the poll source of cfg that reads model from the
 * destination dest and projects field (a plain field name; "x/id" counts as
 * "x"), or NULL. For the one-owner-per-field rule (route.c): a route that
 * writes a field a poller sends back out would echo. *line and *column (may
 * be NULL) get where the field is listed.
 */
const char *relay_poll_owner(const struct relay_config *cfg, const char *dest, const char *model,
                             const char *field, unsigned *line, unsigned *column);

/* ---- reading: the state of one poll's paging --------------------------- */

enum relay_poll_phase {
	RELAY_POLL_BY_TIME = 0, /* write_date >= since, order write_date, id */
	RELAY_POLL_IN_SECOND,   /* the rows of second `second`, id > after_id, order id */
	RELAY_POLL_DONE,
};

struct relay_poll_page {
	enum relay_poll_phase phase;
	char since[RELAY_POLL_TIME_LEN];  /* BY_TIME */
	char second[RELAY_POLL_TIME_LEN]; /* IN_SECOND */
	int64_t after_id;                 /* IN_SECOND */
	char cursor[RELAY_POLL_TIME_LEN]; /* the highest write_date taken so far ("" none) */
};

/* relay_poll_time_parse - "YYYY-MM-DD HH:MM:SS" (or with a "T", or a date
 * alone, or fractions that are ignored) to seconds since the epoch, UTC.
 * Returns 0 or -RELAY_EINVAL. relay_poll_time_format - the reverse. */
int relay_poll_time_parse(const char *text, int64_t *out);
void relay_poll_time_format(int64_t t, char out[RELAY_POLL_TIME_LEN]);

/* relay_poll_begin - the first page of a poll from cursor ("" or NULL:
 * from the beginning) less overlap_s seconds. */
void relay_poll_begin(struct relay_poll_page *pg, const char *cursor, int64_t overlap_s);

/*
 * relay_poll_request - the named arguments of page pg's search_read for p
 * (a new object: domain, fields, order, limit, and context when archived).
 * Returns 0, -RELAY_EINVAL (pg done), or ENOMEM.
 */
int relay_poll_request(const struct relay_poll_conf *p, const struct relay_poll_page *pg,
                       json_t **kwargs);

/*
 * relay_poll_ids_request - the named arguments of one page of the deletion
 * check: search(domain + id > after_id, order "id asc", limit), context
 * active_test false when archived. Returns 0 or ENOMEM.
 */
int relay_poll_ids_request(const struct relay_poll_conf *p, int64_t after_id, unsigned limit,
                           json_t **kwargs);

/*
 * relay_poll_resend_request - the named arguments of the search_read of a
 * resend (odoo-relayctl sync --id): the records of ids (an array of
 * integers) read through the source's domain and archive rule as a poll
 * reads them (domain + id in ids, context active_test false only when
 * archived), ordered by id, with the poll's fields. An id outside them is
 * not in the answer: it is not in the source, and is not sent (sending it
 * would have the next deletion check report it deleted). Returns 0,
 * -RELAY_EINVAL (ids not a non-empty array), or ENOMEM.
 */
int relay_poll_resend_request(const struct relay_poll_conf *p, const json_t *ids,
                              json_t **kwargs);

/*
 * relay_poll_ids_absent - the ids of asked (an array of integers) that no
 * row of rows (search_read's records) has, in increasing order, each once:
 * a new array, or NULL (out of memory).
 */
json_t *relay_poll_ids_absent(const json_t *asked, const json_t *rows);

/*
 * relay_poll_next - what to do with the answer of page pg (rows: the array
 * search_read returned, in its order) and which page comes next: *take is
 * how many rows from the start are to be processed now (the rest come again
 * on the next page), and pg moves on (RELAY_POLL_DONE at the end) with its
 * cursor raised to the highest write_date taken. page_size is the limit
 * the request used. A row without a write_date (false, null, or not a
 * time) is taken like the others and does not move the cursor, which moves
 * on the other rows' stamps; a full page that ends with such rows (a
 * database orders them all last, or all first) holds every stamped row
 * and is the last. Returns 0, or -RELAY_EINVAL for rows that are not
 * records with an integer id (nothing changes then).
 */
int relay_poll_next(struct relay_poll_page *pg, const json_t *rows, unsigned page_size,
                    size_t *take);

/* relay_poll_row_stamped - 1 when row (a record of search_read) has a
 * write_date that is a time, 0 when it has none (false or null) or one that
 * does not read as a time. */
int relay_poll_row_stamped(const json_t *row);

/* ---- records ------------------------------------------------------------ */

/*
 * relay_poll_project - the projection of record rec (an object from
 * search_read) on p's fields: a new object with each field (null when
 * absent), and its hash into hash (RELAY_POLL_HASH_LEN bytes). Returns the
 * object or NULL (out of memory).
 */
json_t *relay_poll_project(const struct relay_poll_conf *p, const json_t *rec,
                           unsigned char hash[RELAY_POLL_HASH_LEN]);

/*
 * relay_poll_body - the event body of a changed record: the projection with
 * "id", "model", "write_date" and "external_id" (xmlid or null) added.
 * Returns a malloc'd compact JSON text (caller frees) with its length in
 * *len, or NULL.
 */
char *relay_poll_body(const struct relay_poll_conf *p, const json_t *projection, int64_t id,
                      const char *write_date, const char *xmlid, size_t *len);

/* relay_poll_deleted_body - {"id", "model"}, as relay_poll_body. */
char *relay_poll_deleted_body(const struct relay_poll_conf *p, int64_t id, size_t *len);

/* relay_poll_lane - "<model>/<id>" into buf (n bytes); the lane of both
 * kinds of event, so that a deletion follows the record's changes. */
void relay_poll_lane(const struct relay_poll_conf *p, int64_t id, char *buf, size_t n);

/*
 * relay_poll_pick_xmlid - of the ir.model.data rows of one record (objects
 * with "module" and "name"), the external ID to send: one in module when
 * there is one, else the first. A malloc'd "module.name" or NULL.
 */
char *relay_poll_pick_xmlid(const json_t *rows, const char *module);

#endif
