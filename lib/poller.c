/*
 * odoo-relay: the pollers out of Odoo (include/odoo_relay/poller.h).
 *
 * One struct poller per odoo-poll source. Its job runs as a chain of
 * callbacks: an Odoo call, its answer, a writer operation, its completion,
 * the next call. While a call or a writer operation is out, the poller is
 * busy and the loop does not touch the job's fields: the writer thread
 * reads them (and fills the commit counts) until its completion comes
 * back, which orders the two threads.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <event2/event.h>
#include <jansson.h>

#include "odoo_relay/clock.h"
#include "odoo_relay/error.h"
#include "odoo_relay/log.h"
#include "odoo_relay/metrics.h"
#include "odoo_relay/odoo_client.h"
#include "odoo_relay/poll.h"
#include "odoo_relay/poller.h"
#include "odoo_relay/store.h"
#include "odoo_relay/store_poll.h"
#include "odoo_relay/writer.h"
#include "odoo_relay/utf8.h"

#define TICK_MS 100
#define KNOWN_BATCH 1024
#define UNSTAMPED_MAX 256   /* records without write_date named in the log, each once */

enum job { JOB_NONE = 0, JOB_POLL, JOB_CHECK, JOB_RESEND };

/* One record of a page, ready to commit. */
struct entry {
	int64_t id;
	unsigned char hash[RELAY_POLL_HASH_LEN];
	char *body;
	size_t len;
};

struct poller {
	struct relay_pollers *ps;
	struct poller *next;
	char *source;
	struct relay_poll_conf *conf; /* our own copy */
	char *module;                 /* the destination's external-ID module */
	struct relay_odoo *odoo;

	/* state, as kept in the store */
	char cursor[RELAY_POLL_TIME_LEN];
	int64_t last_run_ms, last_ok_ms, last_check_ms;
	int64_t poll_took_ms, check_took_ms; /* how long the last complete ones took */
	uint64_t known, changed, deleted;
	char error[512];
	int paused;                   /* the destination's circuit is open */
	unsigned failures;            /* polls failed in a row: the retry's backoff */
	unsigned check_failures;      /* deletion checks failed in a row: theirs */
	int64_t next_check_ms;        /* a failed check waits until then (wall clock) */
	int state_fresh;              /* state read after any older poller's last job */
	uint64_t request_taken;       /* the number of the last sync request taken */
	uint64_t request_job;         /* the request the job in flight runs (0: none) */
	uint64_t request_done;        /* the last request whose job ended (state) */
	char request_error[512];      /* and how it ended ("" well) */
	int64_t *unstamped;           /* ids said to have no write_date (UNSTAMPED_MAX) */
	size_t n_unstamped;

	int64_t next_poll_ms;         /* wall clock */
	int retired, dying;

	/* the job */
	enum job job;
	int busy;
	struct relay_poll_page pg;
	json_t *rows;                 /* the page being handled */
	size_t take;
	struct entry *entries;
	size_t n_entries;
	int force;                    /* resend: whatever the hash */
	json_t *resend_ids;
	json_t *resend_result;        /* resend: {"sent", "not_in_source"} of its answer */
	json_t *last_sync;            /* the last resend's result, kept in the state */
	int64_t check_after, check_hi;
	int64_t *odoo_ids;
	size_t n_odoo_ids;
	int check_last;
	/* filled by the writer thread during a commit */
	uint64_t c_changed, c_added, c_deleted;
	int64_t c_now_ms;
	char c_cursor[RELAY_POLL_TIME_LEN];
};

struct relay_pollers {
	struct event_base *base;
	struct relay_store *st;
	struct relay_writer *writer;
	const struct relay_poll_db *db;
	relay_pollers_circuit_fn circuit;
	relay_pollers_kick_fn kick;
	void *arg;
	struct relay_metrics *metrics; /* NULL: none */
	struct event *tick;
	struct poller *list;
};

static void job_next(struct poller *p);
static void tick_cb(evutil_socket_t fd, short what, void *arg);

/* ---- state ---------------------------------------------------------------- */

/* The state text; with the figures of a commit when one is under way. */
static char *
state_text(const struct poller *p, const char *cursor, uint64_t known, uint64_t changed,
           uint64_t deleted, int64_t last_ok_ms, int64_t last_check_ms)
{
	json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:s, s:I, s:I, s:I, s:b, s:s, s:s, s:I}",
	                      "cursor", cursor, "last_run_ms", (json_int_t)p->last_run_ms,
	                      "last_ok_ms", (json_int_t)last_ok_ms, "last_check_ms",
	                      (json_int_t)last_check_ms, "error", p->error, "known",
	                      (json_int_t)known, "changed", (json_int_t)changed, "deleted",
	                      (json_int_t)deleted, "paused", p->paused, "model", p->conf->model,
	                      "destination", p->conf->destination, "interval_s",
	                      (json_int_t)p->conf->interval_s);
	/* an error cut in the middle of a character is no JSON string */
	json_t *req_error = json_string(p->request_error) ?: json_string("");
	char *text;

	if (o && (json_object_set_new(o, "poll_took_ms", json_integer(p->poll_took_ms)) ||
	          json_object_set_new(o, "check_took_ms", json_integer(p->check_took_ms)) ||
	          (p->request_done &&
	           (json_object_set_new(o, "request_done", json_integer((json_int_t)p->request_done)) ||
	            json_object_set(o, "request_error", req_error))) ||
	          (p->last_sync &&
	           json_object_set_new(o, "last_sync", json_deep_copy(p->last_sync))))) {
		json_decref(o);
		o = NULL;
	}
	text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	json_decref(req_error);
	return text;
}

static void
state_load(struct poller *p)
{
	MDB_txn *txn = NULL;
	char *text = NULL;
	json_t *o;

	if (relay_store_read_begin(p->ps->st, &txn))
		return;
	if (relay_poll_db_text_get(p->ps->db, txn, RELAY_POLL_STATE, p->source, &text) == 0 &&
	    (o = json_loads(text, 0, NULL))) {
		snprintf(p->cursor, sizeof(p->cursor), "%s",
		         json_string_value(json_object_get(o, "cursor")) ?: "");
		p->last_run_ms = json_integer_value(json_object_get(o, "last_run_ms"));
		p->last_ok_ms = json_integer_value(json_object_get(o, "last_ok_ms"));
		p->last_check_ms = json_integer_value(json_object_get(o, "last_check_ms"));
		p->known = (uint64_t)json_integer_value(json_object_get(o, "known"));
		p->changed = (uint64_t)json_integer_value(json_object_get(o, "changed"));
		p->deleted = (uint64_t)json_integer_value(json_object_get(o, "deleted"));
		p->request_done = (uint64_t)json_integer_value(json_object_get(o, "request_done"));
		relay_utf8_snprintf(p->request_error, sizeof(p->request_error), "%s",
		         json_string_value(json_object_get(o, "request_error")) ?: "");
		if (json_is_object(json_object_get(o, "last_sync"))) {
			json_decref(p->last_sync);
			p->last_sync = json_incref(json_object_get(o, "last_sync"));
		}
		json_decref(o);
	}
	free(text);
	relay_store_read_end(txn);
}

/* A state or request text written alone (a failure, a pause, a request
 * taken): best effort, logged when it fails. */
struct state_write {
	const struct relay_poll_db *db;
	char *source;
	char *text;
	char kind;
	uint64_t seq;                 /* a request taken: its number */
};

static int
text_fn(void *arg, struct relay_store *st, MDB_txn *txn, struct relay_write_result *r)
{
	struct state_write *w = arg;

	(void)st;
	(void)r;
	/* a request taken: that one only, not one written since */
	if (w->kind == RELAY_POLL_REQUEST)
		return relay_poll_db_request_del(w->db, txn, w->source, w->seq);
	return relay_poll_db_text_put(w->db, txn, w->kind, w->source, w->text);
}

static void
text_done(void *arg, int rc, const struct relay_write_result *r)
{
	struct state_write *w = arg;

	(void)r;
	if (rc)
		relay_log(LOG_WARNING, "poll source %s: cannot write its state: %s", w->source,
		          relay_strerror(rc));
	free(w->source);
	free(w->text);
	free(w);
}

static void
text_write(struct poller *p, char kind, char *text, uint64_t seq)
{
	struct state_write *w = calloc(1, sizeof(*w));

	if (!w || !(w->source = strdup(p->source))) {
		free(w);
		free(text);
		return;
	}
	w->db = p->ps->db;
	w->text = text;
	w->kind = kind;
	w->seq = seq;
	if (relay_writer_call(p->ps->writer, text_fn, w, text_done, w)) {
		free(w->source);
		free(w->text);
		free(w);
	}
}

static void
state_save(struct poller *p)
{
	char *text = state_text(p, p->cursor, p->known, p->changed, p->deleted, p->last_ok_ms,
	                        p->last_check_ms);

	if (text)
		text_write(p, RELAY_POLL_STATE, text, 0);
}

/* ---- jobs ------------------------------------------------------------------- */

static void
entries_clear(struct poller *p)
{
	for (size_t i = 0; i < p->n_entries; i++)
		free(p->entries[i].body);
	free(p->entries);
	p->entries = NULL;
	p->n_entries = 0;
}

static void
job_end(struct poller *p, const char *error)
{
	int64_t now = relay_wall_ms();

	if (error) {
		relay_utf8_snprintf(p->error, sizeof(p->error), "%s", error);
		relay_log(LOG_WARNING, "poll source %s: %s", p->source, error);
		if (p->ps->metrics)
			relay_metrics_add(p->ps->metrics, "relay_poll_errors_total",
			                  "polls and deletion checks that failed", "source", p->source, 1);
	} else {
		p->error[0] = '\0';
		if (p->job == JOB_POLL) {
			p->last_ok_ms = now;
			p->poll_took_ms = now - p->last_run_ms;
		} else if (p->job == JOB_CHECK) {
			p->last_check_ms = now;
			p->check_took_ms = now - p->last_run_ms;
		} else if (p->job == JOB_RESEND && p->resend_result) {
			json_object_set_new(p->resend_result, "at_ms", json_integer(now));
			json_object_set_new(p->resend_result, "seq", json_integer((json_int_t)p->request_job));
			json_decref(p->last_sync);
			p->last_sync = p->resend_result;
			p->resend_result = NULL;
			relay_log(LOG_INFO, "poll source %s: sync by id done: %zu sent, %zu not in the "
			          "source", p->source,
			          json_array_size(json_object_get(p->last_sync, "sent")),
			          json_array_size(json_object_get(p->last_sync, "not_in_source")));
		}
	}
	if (p->job == JOB_CHECK) {
		/* A deletion check has its own backoff: its failures neither
		 * hold polls back nor come back at every tick. */
		int64_t wait = (int64_t)1000 << (p->check_failures < 12 ? p->check_failures : 12);

		if (error) {
			p->check_failures++;
			p->next_check_ms = now + (wait < p->conf->deletion_check_s * 1000
			                          ? wait : p->conf->deletion_check_s * 1000);
		} else {
			p->check_failures = 0;
			p->next_check_ms = 0;
		}
	} else if (error) {
		/* A failed poll is tried again soon, doubling from 1 s up to the
		 * interval: a blip of Odoo's should not cost a whole interval's
		 * lag (an hour for some sources). */
		int64_t wait = (int64_t)1000 << (p->failures < 12 ? p->failures : 12);

		p->failures++;
		p->next_poll_ms = now + (wait < p->conf->interval_s * 1000 ? wait
		                                                         : p->conf->interval_s * 1000);
	} else if (p->job == JOB_POLL) {
		p->failures = 0;
		p->next_poll_ms = now + p->conf->interval_s * 1000;
	}
	json_decref(p->rows);
	p->rows = NULL;
	json_decref(p->resend_ids);
	p->resend_ids = NULL;
	json_decref(p->resend_result);
	p->resend_result = NULL;
	free(p->odoo_ids);
	p->odoo_ids = NULL;
	p->n_odoo_ids = 0;
	entries_clear(p);
	/* odoo-relayctl sync --wait looks for its request's number here, and
	 * for the error of the job that ran it */
	if (p->request_job) {
		p->request_done = p->request_job;
		relay_utf8_snprintf(p->request_error, sizeof(p->request_error), "%s",
		                    error ? error : "");
	}
	p->job = JOB_NONE;
	p->force = 0;
	state_save(p);
	/* after the state that says it ran: a crash between runs it again
	 * at the next start, never loses it */
	if (p->request_job)
		text_write(p, RELAY_POLL_REQUEST, NULL, p->request_job);
	p->request_job = 0;
}

static void
job_fail_outcome(struct poller *p, const char *what, const struct relay_outcome *o)
{
	char msg[512];

	relay_utf8_snprintf(msg, sizeof(msg), "%s failed: %s%s%s", what,
	                    o->error_name ? o->error_name : "error", o->message ? ": " : "",
	                    o->message ? o->message : "");
	/* one line in the state and the log */
	for (char *c = msg; *c; c++)
		if (*c == '\n')
			*c = ' ';
	job_end(p, msg);
}

/* ---- commit of a page (writer thread) ---------------------------------------- */

static int
ingest(struct relay_store *st, MDB_txn *txn, const char *source, const char *topic,
       const char *lane, char *body, size_t len, int64_t now)
{
	struct relay_event ev;
	uint64_t id;

	memset(&ev, 0, sizeof(ev));
	ev.source = (char *)source;
	ev.topic = (char *)topic;
	ev.lane = (char *)lane;
	ev.body = (unsigned char *)body;
	ev.body_len = len;
	ev.received_ms = now;
	return relay_store_ingest(st, txn, &ev, 0, now, &id, NULL);
}

static int
page_fn(void *arg, struct relay_store *st, MDB_txn *txn, struct relay_write_result *r)
{
	struct poller *p = arg;
	const struct relay_poll_db *db = p->ps->db;
	char lane[512], *text;
	int rc = 0;

	(void)r;
	p->c_changed = p->c_added = p->c_deleted = 0;
	for (size_t i = 0; i < p->n_entries; i++) {
		const struct entry *e = &p->entries[i];
		unsigned char old[RELAY_POLL_HASH_LEN];
		int added = 0;

		rc = relay_poll_db_hash_get(db, txn, p->source, e->id, old);
		if (rc && rc != -RELAY_ENOTFOUND)
			return rc;
		if (rc == 0 && !p->force && memcmp(old, e->hash, RELAY_POLL_HASH_LEN) == 0)
			continue; /* unchanged: an echo of our own write, or read again */
		relay_poll_lane(p->conf, e->id, lane, sizeof(lane));
		if ((rc = ingest(st, txn, p->source, p->conf->topic, lane, e->body, e->len,
		                 p->c_now_ms)) ||
		    (rc = relay_poll_db_hash_put(db, txn, p->source, e->id, e->hash, &added)))
			return rc;
		p->c_changed++;
		p->c_added += (uint64_t)added;
	}
	if (!(text = state_text(p, p->c_cursor, p->known + p->c_added, p->changed + p->c_changed,
	                        p->deleted, p->last_ok_ms, p->last_check_ms)))
		return ENOMEM;
	rc = relay_poll_db_text_put(db, txn, RELAY_POLL_STATE, p->source, text);
	free(text);
	return rc;
}

static int
search_ids(const int64_t *ids, size_t n, int64_t id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ids[mid] == id)
			return 1;
		if (ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int
cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* The ids kept in (check_after, check_hi] that Odoo did not list: deleted. */
static int
check_fn(void *arg, struct relay_store *st, MDB_txn *txn, struct relay_write_result *r)
{
	struct poller *p = arg;
	const struct relay_poll_db *db = p->ps->db;
	int64_t known[KNOWN_BATCH], after = p->check_after;
	char lane[512], *text;
	size_t n, len;
	int rc;

	(void)r;
	p->c_deleted = 0;
	do {
		if ((rc = relay_poll_db_known(db, txn, p->source, after, p->check_hi, known,
		                              KNOWN_BATCH, &n)))
			return rc;
		for (size_t i = 0; i < n; i++) {
			char *body;

			if (search_ids(p->odoo_ids, p->n_odoo_ids, known[i]))
				continue;
			if (!(body = relay_poll_deleted_body(p->conf, known[i], &len)))
				return ENOMEM;
			relay_poll_lane(p->conf, known[i], lane, sizeof(lane));
			rc = ingest(st, txn, p->source, p->conf->deleted_topic, lane, body, len,
			            p->c_now_ms);
			free(body);
			if (rc || (rc = relay_poll_db_hash_del(db, txn, p->source, known[i])))
				return rc;
			p->c_deleted++;
		}
		if (n)
			after = known[n - 1];
	} while (n == KNOWN_BATCH);
	if (!(text = state_text(p, p->cursor, p->known - p->c_deleted, p->changed,
	                        p->deleted + p->c_deleted, p->last_ok_ms, p->last_check_ms)))
		return ENOMEM;
	rc = relay_poll_db_text_put(db, txn, RELAY_POLL_STATE, p->source, text);
	free(text);
	return rc;
}

/* ---- the steps of a job (loop thread) ------------------------------------------ */

/* A write of the job came back (what: what it stored, for the message):
 * 0 when the job goes on, or 1 when it is over (the poller is going away,
 * or the write failed and the job has ended saying so). */
static int
write_ended_job(struct poller *p, int rc, const char *what)
{
	char msg[256];

	p->busy = 0;
	if (p->dying)
		return 1;
	if (rc) {
		snprintf(msg, sizeof(msg), "cannot store %s: %s", what, relay_strerror(rc));
		job_end(p, msg);
		return 1;
	}
	return 0;
}

static void
page_committed(void *arg, int rc, const struct relay_write_result *r)
{
	struct poller *p = arg;

	(void)r;
	if (write_ended_job(p, rc, "a page of changes"))
		return;
	memcpy(p->cursor, p->c_cursor, sizeof(p->cursor));
	p->known += p->c_added;
	p->changed += p->c_changed;
	if (p->ps->metrics) {
		relay_metrics_add(p->ps->metrics, "relay_poll_records_total",
		                  "records read by polls (read again in the overlap included)",
		                  "source", p->source, p->n_entries);
		relay_metrics_add(p->ps->metrics, "relay_poll_changes_total",
		                  "changed records stored as events", "source", p->source,
		                  p->c_changed);
	}
	if (p->c_changed && p->ps->kick)
		p->ps->kick(p->ps->arg);
	entries_clear(p);
	json_decref(p->rows);
	p->rows = NULL;
	if (p->job == JOB_RESEND || p->pg.phase == RELAY_POLL_DONE) {
		job_end(p, NULL);
		return;
	}
	job_next(p);
}

static void
commit_page(struct poller *p, const json_t *xmlids)
{
	json_t *by_id = json_object(), *row;
	char key[32];
	size_t i;

	if (!by_id || !(p->entries = calloc(p->take ? p->take : 1, sizeof(*p->entries))))
		goto oom;
	/* the external IDs of each record, by res_id */
	json_array_foreach(xmlids, i, row) {
		json_t *list;

		snprintf(key, sizeof(key), "%" JSON_INTEGER_FORMAT,
		         json_integer_value(json_object_get(row, "res_id")));
		if (!(list = json_object_get(by_id, key))) {
			list = json_array();
			if (!list || json_object_set_new(by_id, key, list))
				goto oom;
		}
		json_array_append(list, row);
	}
	for (i = 0; i < p->take; i++) {
		const json_t *rec = json_array_get(p->rows, i);
		struct entry *e = &p->entries[p->n_entries];
		int64_t id = json_integer_value(json_object_get(rec, "id"));
		json_t *proj = relay_poll_project(p->conf, rec, e->hash);
		char *xmlid;

		if (!proj)
			goto oom;
		snprintf(key, sizeof(key), "%" PRId64, id);
		xmlid = relay_poll_pick_xmlid(json_object_get(by_id, key), p->module);
		e->id = id;
		e->body = relay_poll_body(p->conf, proj, id,
		                          json_string_value(json_object_get(rec, "write_date")), xmlid,
		                          &e->len);
		free(xmlid);
		json_decref(proj);
		if (!e->body)
			goto oom;
		p->n_entries++;
	}
	json_decref(by_id);
	memcpy(p->c_cursor, p->job == JOB_RESEND ? p->cursor : p->pg.cursor, sizeof(p->c_cursor));
	p->c_now_ms = relay_wall_ms();
	p->busy = 1;
	if (relay_writer_call(p->ps->writer, page_fn, p, page_committed, p)) {
		p->busy = 0;
		job_end(p, "cannot store a page of changes: the writer is stopping");
	}
	return;
oom:
	json_decref(by_id);
	job_end(p, "out of memory");
}

static void
xmlids_answered(struct relay_odoo_result *res, void *arg)
{
	struct poller *p = arg;

	p->busy = 0;
	if (p->dying)
		return;
	if (res->outcome.klass == RELAY_CLASS_PERMANENT) {
		/* a user that may not read external IDs: the records go out
		 * without them rather than not at all (they are not hashed) */
		relay_log(LOG_WARNING, "poll source %s: cannot read external IDs, sending records "
		          "without them: %s", p->source,
		          res->outcome.message ? res->outcome.message : "refused");
		commit_page(p, NULL);
		return;
	}
	if (res->outcome.klass != RELAY_CLASS_DONE) {
		job_fail_outcome(p, "ir.model.data search_read", &res->outcome);
		return;
	}
	commit_page(p, res->outcome.result);
}

/* Calls method of model with kw (taken), answered to cb: the job is busy
 * until the answer comes. A call that cannot be made ends the job. */
static void
job_call(struct poller *p, const char *model, const char *method, json_t *kw,
         relay_odoo_cb cb)
{
	int rc;

	p->busy = 1;
	rc = relay_odoo_call(p->odoo, model, method, NULL, kw, cb, p);
	json_decref(kw);
	if (rc) {
		p->busy = 0;
		job_end(p, relay_strerror(rc));
	}
}

/* The external IDs of the rows taken, in one call. */
static void
fetch_xmlids(struct poller *p)
{
	json_t *ids = json_array(), *kw = NULL;

	for (size_t i = 0; ids && i < p->take; i++)
		json_array_append_new(ids, json_incref(json_object_get(json_array_get(p->rows, i), "id")));
	if (ids)
		kw = json_pack("{s:[[s,s,s],[s,s,O]], s:[s,s,s], s:s}", "domain", "model", "=",
		               p->conf->model, "res_id", "in", ids, "fields", "module", "name",
		               "res_id", "order", "id asc");
	json_decref(ids);
	if (!kw) {
		job_end(p, "out of memory");
		return;
	}
	job_call(p, "ir.model.data", "search_read", kw, xmlids_answered);
}

/* The ids of a resend that Odoo did not answer are not in the source
 * (outside its domain, archived when it leaves archived records out, or
 * gone): said in the log and kept for status, never sent. 0 or ENOMEM. */
static int
resend_answered(struct poller *p)
{
	json_t *absent = relay_poll_ids_absent(p->resend_ids, p->rows), *sent = json_array(), *row;
	char list[512];
	size_t i, len = 0;

	json_array_foreach(p->rows, i, row)
		if (sent)
			json_array_append(sent, json_object_get(row, "id"));
	json_decref(p->resend_result);
	p->resend_result = absent && sent ? json_pack("{s:o, s:o}", "sent", sent, "not_in_source",
	                                              absent)
	                                  : NULL;
	if (!p->resend_result) {
		if (!absent || !sent) {
			json_decref(absent);
			json_decref(sent);
		}
		return ENOMEM;
	}
	if (json_array_size(absent) == 0)
		return 0;
	list[0] = '\0';
	json_array_foreach(absent, i, row) {
		int w = snprintf(list + len, sizeof(list) - len, "%s%" JSON_INTEGER_FORMAT,
		                 i ? ", " : "", json_integer_value(row));

		if (w < 0 || (size_t)w >= sizeof(list) - len - 16) {
			snprintf(list + len, sizeof(list) - len, " and %zu more",
			         json_array_size(absent) - i);
			break;
		}
		len += (size_t)w;
	}
	relay_log(LOG_WARNING, "poll source %s: sync by id: not in the source (outside its domain, "
	          "archived while it leaves archived records out, or deleted), not sent: %s",
	          p->source, list);
	return 0;
}

/* Rows taken without a write_date: processed like the others (poll.h),
 * and said once per record, so that the operator learns of them without a
 * line at every poll that reads them again. */
static void
note_unstamped(struct poller *p)
{
	for (size_t i = 0; i < p->take; i++) {
		const json_t *row = json_array_get(p->rows, i);
		int64_t id = json_integer_value(json_object_get(row, "id"));
		size_t j;

		if (relay_poll_row_stamped(row) || p->n_unstamped > UNSTAMPED_MAX)
			continue; /* past the bound, none is named any more */
		for (j = 0; j < p->n_unstamped && p->unstamped[j] != id; j++)
			;
		if (j < p->n_unstamped)
			continue;
		if (!p->unstamped && !(p->unstamped = malloc(UNSTAMPED_MAX * sizeof(*p->unstamped))))
			return;
		if (p->n_unstamped == UNSTAMPED_MAX) {
			relay_log(LOG_WARNING, "poll source %s: more %s records without a write_date; "
			          "not named any further", p->source, p->conf->model);
			p->n_unstamped++;
			continue;
		}
		p->unstamped[p->n_unstamped++] = id;
		relay_log(LOG_WARNING, "poll source %s: %s %" PRId64 " has no write_date: it is "
		          "processed (sent when its fields change) and the cursor moves on the other "
		          "records' stamps", p->source, p->conf->model, id);
	}
}

static void
page_answered(struct relay_odoo_result *res, void *arg)
{
	struct poller *p = arg;
	int rc;

	p->busy = 0;
	if (p->dying)
		return;
	if (res->outcome.klass != RELAY_CLASS_DONE) {
		job_fail_outcome(p, "search_read", &res->outcome);
		return;
	}
	p->rows = res->outcome.result;
	res->outcome.result = NULL;
	if (!json_is_array(p->rows)) {
		job_end(p, "search_read answered something other than a list");
		return;
	}
	if (p->job == JOB_RESEND) {
		p->take = json_array_size(p->rows);
		if (resend_answered(p)) {
			job_end(p, "out of memory");
			return;
		}
	} else if ((rc = relay_poll_next(&p->pg, p->rows, p->conf->page_size, &p->take))) {
		job_end(p, "search_read answered records without an id");
		return;
	}
	note_unstamped(p);
	if (p->take == 0) {
		json_decref(p->rows);
		p->rows = NULL;
		if (p->job == JOB_RESEND || p->pg.phase == RELAY_POLL_DONE) {
			/* nothing new: the cursor may still have moved (never down) */
			if (p->job == JOB_POLL && strcmp(p->pg.cursor, p->cursor) > 0)
				memcpy(p->cursor, p->pg.cursor, sizeof(p->cursor));
			job_end(p, NULL);
		} else {
			job_next(p);
		}
		return;
	}
	fetch_xmlids(p);
}

static void check_next(struct poller *p);

static void
check_committed(void *arg, int rc, const struct relay_write_result *r)
{
	struct poller *p = arg;

	(void)r;
	if (write_ended_job(p, rc, "deletions"))
		return;
	p->known -= p->c_deleted;
	p->deleted += p->c_deleted;
	if (p->ps->metrics)
		relay_metrics_add(p->ps->metrics, "relay_poll_deletions_total",
		                  "deleted records stored as events", "source", p->source,
		                  p->c_deleted);
	if (p->c_deleted && p->ps->kick)
		p->ps->kick(p->ps->arg);
	free(p->odoo_ids);
	p->odoo_ids = NULL;
	p->n_odoo_ids = 0;
	if (p->check_last) {
		job_end(p, NULL);
		return;
	}
	p->check_after = p->check_hi;
	check_next(p);
}

static void
ids_answered(struct relay_odoo_result *res, void *arg)
{
	struct poller *p = arg;
	json_t *ids;
	size_t i, n;

	p->busy = 0;
	if (p->dying)
		return;
	if (res->outcome.klass != RELAY_CLASS_DONE) {
		job_fail_outcome(p, "search", &res->outcome);
		return;
	}
	ids = res->outcome.result;
	if (!json_is_array(ids)) {
		job_end(p, "search answered something other than a list");
		return;
	}
	n = json_array_size(ids);
	if (!(p->odoo_ids = malloc((n ? n : 1) * sizeof(*p->odoo_ids)))) {
		job_end(p, "out of memory");
		return;
	}
	for (i = 0; i < n; i++) {
		if (!json_is_integer(json_array_get(ids, i))) {
			job_end(p, "search answered something other than ids");
			return;
		}
		p->odoo_ids[i] = json_integer_value(json_array_get(ids, i));
	}
	p->n_odoo_ids = n;
	/* ordered by id already; sorted again so that the lookup never depends on it */
	qsort(p->odoo_ids, n, sizeof(*p->odoo_ids), cmp_id);
	p->check_last = n < RELAY_POLL_ID_PAGE;
	p->check_hi = p->check_last ? -1 : p->odoo_ids[n - 1];
	p->c_now_ms = relay_wall_ms();
	p->busy = 1;
	if (relay_writer_call(p->ps->writer, check_fn, p, check_committed, p)) {
		p->busy = 0;
		job_end(p, "cannot store deletions: the writer is stopping");
	}
}

static void
check_next(struct poller *p)
{
	json_t *kw = NULL;
	int rc;

	if ((rc = relay_poll_ids_request(p->conf, p->check_after, RELAY_POLL_ID_PAGE, &kw))) {
		job_end(p, relay_strerror(rc));
		return;
	}
	job_call(p, p->conf->model, "search", kw, ids_answered);
}

/* The next page of a poll, or the records of a resend. */
static void
job_next(struct poller *p)
{
	json_t *kw = NULL;
	int rc;

	if (p->job == JOB_RESEND) {
		/* through the source's domain and archive rule, as a poll reads */
		rc = relay_poll_resend_request(p->conf, p->resend_ids, &kw);
	} else {
		rc = relay_poll_request(p->conf, &p->pg, &kw);
	}
	if (rc) {
		job_end(p, relay_strerror(rc));
		return;
	}
	job_call(p, p->conf->model, "search_read", kw, page_answered);
}

static void
job_start(struct poller *p, enum job job, const char *since)
{
	p->job = job;
	p->last_run_ms = relay_wall_ms();
	if (job == JOB_CHECK) {
		p->check_after = 0;
		check_next(p);
		return;
	}
	if (job == JOB_POLL) {
		if (since) {
			relay_poll_begin(&p->pg, since, 0);
			/* a sync from an earlier time reads again; the cursor stays */
			memcpy(p->pg.cursor, p->cursor, sizeof(p->cursor));
		} else {
			relay_poll_begin(&p->pg, p->cursor, p->conf->overlap_s);
		}
	}
	job_next(p);
}

/*
 * A request of odoo-relayctl sync, taken when there is one: the oldest past
 * the last one taken, read here and deleted by the writer, by its number,
 * once its job has ended, so that a request written in between stays for
 * the next tick and the one taken survives a stop before its job ends
 * (store_poll.h).
 */
static int
take_request(struct poller *p)
{
	MDB_txn *txn = NULL;
	char *text = NULL;
	json_t *req, *since, *ids;
	uint64_t seq = 0;
	int rc;

	if (relay_store_read_begin(p->ps->st, &txn))
		return 0;
	rc = relay_poll_db_request_next(p->ps->db, txn, p->source, p->request_taken, &seq, &text);
	relay_store_read_end(txn);
	if (rc)
		return 0;
	/* Not taken again by this process (request_taken); deleted from the
	 * store only when its job has ended (job_end), so a stop or crash in
	 * between leaves it to run at the next start rather than losing it. */
	if (seq > p->request_taken)
		p->request_taken = seq;
	p->request_job = seq;
	/* An older odoo-relayctl's request, under the plain key (seq 0), is
	 * taken first whatever was taken before: it goes now, as it always
	 * did, or every idle tick would run it again until job_end. */
	if (seq == 0)
		text_write(p, RELAY_POLL_REQUEST, NULL, 0);
	req = json_loads(text, 0, NULL);
	free(text);
	since = json_object_get(req, "since");
	ids = json_object_get(req, "ids");
	relay_log(LOG_INFO, "poll source %s: sync requested%s%s", p->source,
	          json_is_string(since) ? " from " : "",
	          json_is_string(since) ? json_string_value(since) : "");
	if (json_is_array(ids) && json_array_size(ids)) {
		p->resend_ids = json_incref(ids);
		p->force = 1;
		job_start(p, JOB_RESEND, NULL);
	} else {
		job_start(p, JOB_POLL, json_is_string(since) ? json_string_value(since) : NULL);
	}
	json_decref(req);
	return 1;
}

static void
poller_tick(struct poller *p, int64_t now)
{
	int open;

	if (p->job != JOB_NONE || p->retired)
		return;
	/* after a reload, the source's old poller finishes its job first */
	for (const struct poller *q = p->ps->list; q; q = q->next)
		if (q != p && q->job != JOB_NONE && !strcmp(q->source, p->source))
			return;
	/* and the state it committed (cursor, counts) is what this one goes
	 * on from, not what was stored when this one was made */
	if (!p->state_fresh) {
		state_load(p);
		p->state_fresh = 1;
	}
	open = p->ps->circuit && p->ps->circuit(p->ps->arg, p->conf->destination);
	if (open != p->paused) {
		/* said once, when it changes */
		p->paused = open;
		if (open) {
			relay_utf8_snprintf(p->error, sizeof(p->error), "paused: the circuit of "
			                    "destination %s is open", p->conf->destination);
		} else {
			/* Odoo is back: catch up from the cursor now, not at the
			 * next interval */
			p->error[0] = '\0';
			p->next_poll_ms = now;
		}
		state_save(p);
	}
	if (open)
		return;
	if (take_request(p))
		return;
	if (now >= p->next_poll_ms) {
		job_start(p, JOB_POLL, NULL);
		return;
	}
	if (p->conf->deletion_check_s > 0 && p->last_ok_ms > 0 && now >= p->next_check_ms &&
	    now - p->last_check_ms >= p->conf->deletion_check_s * 1000)
		job_start(p, JOB_CHECK, NULL);
}

/* ---- life ---------------------------------------------------------------------- */

static struct relay_poll_conf *
conf_dup(const struct relay_poll_conf *c)
{
	struct relay_poll_conf *p = calloc(1, sizeof(*p));
	size_t i;

	if (!p)
		return NULL;
	*p = *c;
	p->destination = p->model = p->topic = p->deleted_topic = NULL;
	p->fields = NULL;
	p->field_line = p->field_column = NULL;
	p->n_fields = 0;
	p->domain = json_deep_copy(c->domain);
	p->destination = strdup(c->destination);
	p->model = strdup(c->model);
	p->topic = strdup(c->topic);
	p->deleted_topic = strdup(c->deleted_topic);
	p->fields = calloc(c->n_fields ? c->n_fields : 1, sizeof(*p->fields));
	p->field_line = calloc(c->n_fields ? c->n_fields : 1, sizeof(unsigned));
	p->field_column = calloc(c->n_fields ? c->n_fields : 1, sizeof(unsigned));
	if (!p->domain || !p->destination || !p->model || !p->topic || !p->deleted_topic ||
	    !p->fields || !p->field_line || !p->field_column)
		goto fail;
	for (i = 0; i < c->n_fields; i++) {
		if (!(p->fields[i] = strdup(c->fields[i])))
			goto fail;
		p->n_fields++;
	}
	return p;
fail:
	relay_poll_conf_free(p);
	return NULL;
}

static void
poller_free(struct poller *p)
{
	if (!p)
		return;
	p->dying = 1;
	relay_odoo_free(p->odoo);
	json_decref(p->rows);
	json_decref(p->resend_ids);
	json_decref(p->resend_result);
	json_decref(p->last_sync);
	free(p->unstamped);
	free(p->odoo_ids);
	entries_clear(p);
	relay_poll_conf_free(p->conf);
	free(p->module);
	free(p->source);
	free(p);
}

static int
poller_new(struct relay_pollers *ps, const struct relay_config *cfg,
           const struct relay_source_conf *sc, struct poller **out)
{
	const struct relay_destination_conf *d = NULL;
	struct poller *p;
	int rc;

	*out = NULL;
	for (size_t i = 0; i < cfg->n_destinations; i++)
		if (!strcmp(cfg->destinations[i].name, sc->poll->destination))
			d = &cfg->destinations[i];
	if (!d || d->kind != RELAY_DEST_ODOO)
		return -RELAY_ECONFIG;
	if (!(p = calloc(1, sizeof(*p))))
		return ENOMEM;
	p->ps = ps;
	if (!(p->source = strdup(sc->name)) || !(p->conf = conf_dup(sc->poll)) ||
	    !(p->module = strdup(d->odoo.module ? d->odoo.module : ""))) {
		poller_free(p);
		return ENOMEM;
	}
	if ((rc = relay_odoo_new(ps->base, &d->odoo, &p->odoo))) {
		poller_free(p);
		return rc;
	}
	state_load(p);
	*out = p;
	return 0;
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay_pollers *ps = arg;
	struct poller **pp = &ps->list;
	int64_t now = relay_wall_ms();

	(void)fd;
	(void)what;
	while (*pp) {
		struct poller *p = *pp;

		if (p->retired && p->job == JOB_NONE && !p->busy) {
			*pp = p->next;
			poller_free(p);
			continue;
		}
		poller_tick(p, now);
		if (ps->metrics && !p->retired) {
			relay_metrics_set(ps->metrics, "relay_poll_lag_seconds",
			                  "seconds since the last complete poll", "source", p->source,
			                  p->last_ok_ms ? (double)(now - p->last_ok_ms) / 1000.0 : -1.0);
			relay_metrics_set(ps->metrics, "relay_poll_known_records",
			                  "records the poller tracks (hashes kept)", "source", p->source,
			                  (double)p->known);
		}
		pp = &p->next;
	}
}

static int
build(struct relay_pollers *ps, const struct relay_config *cfg, struct poller **list)
{
	struct poller *head = NULL, **tail = &head;
	int rc = 0;

	for (size_t i = 0; i < cfg->n_sources; i++) {
		struct poller *p;

		if (cfg->sources[i].kind != RELAY_SOURCE_ODOO_POLL || !cfg->sources[i].poll)
			continue;
		if ((rc = poller_new(ps, cfg, &cfg->sources[i], &p)))
			break;
		*tail = p;
		tail = &p->next;
	}
	if (rc) {
		while (head) {
			struct poller *n = head->next;

			poller_free(head);
			head = n;
		}
		return rc;
	}
	*list = head;
	return 0;
}

int
relay_pollers_start(struct event_base *base, struct relay_store *st,
                    struct relay_writer *writer, const struct relay_poll_db *db,
                    const struct relay_config *cfg, relay_pollers_circuit_fn circuit,
                    relay_pollers_kick_fn kick, void *arg, struct relay_pollers **out)
{
	struct relay_pollers *ps = calloc(1, sizeof(*ps));
	struct timeval tv = { TICK_MS / 1000, (TICK_MS % 1000) * 1000 };
	int rc;

	if (!ps)
		return ENOMEM;
	ps->base = base;
	ps->st = st;
	ps->writer = writer;
	ps->db = db;
	ps->circuit = circuit;
	ps->kick = kick;
	ps->arg = arg;
	if ((rc = build(ps, cfg, &ps->list))) {
		free(ps);
		return rc;
	}
	if (!(ps->tick = event_new(base, -1, EV_PERSIST, tick_cb, ps)) ||
	    event_add(ps->tick, &tv)) {
		relay_pollers_free(ps);
		return ENOMEM;
	}
	/* the first poll at once, not a tick later */
	event_active(ps->tick, EV_TIMEOUT, 0);
	*out = ps;
	return 0;
}

int
relay_pollers_set_config(struct relay_pollers *ps, const struct relay_config *cfg)
{
	struct poller *fresh = NULL, *p, *q;
	int rc;

	if ((rc = build(ps, cfg, &fresh)))
		return rc;
	/* a source that stays keeps its timing and counts */
	for (p = fresh; p; p = p->next)
		for (q = ps->list; q; q = q->next)
			if (!q->retired && !strcmp(p->source, q->source)) {
				p->next_poll_ms = q->next_poll_ms;
				p->request_taken = q->request_taken;
			}
	for (q = ps->list; q; q = q->next)
		q->retired = 1;
	/* the old ones stay on the list until their job is back */
	for (p = fresh; p && p->next; p = p->next)
		;
	if (p) {
		p->next = ps->list;
		ps->list = fresh;
	}
	return 0;
}

void
relay_pollers_set_metrics(struct relay_pollers *ps, struct relay_metrics *m)
{
	if (ps)
		ps->metrics = m;
}

unsigned
relay_pollers_in_flight(const struct relay_pollers *ps)
{
	unsigned n = 0;

	for (const struct poller *p = ps ? ps->list : NULL; p; p = p->next)
		n += p->busy;
	return n;
}

void
relay_pollers_free(struct relay_pollers *ps)
{
	if (!ps)
		return;
	if (ps->tick)
		event_free(ps->tick);
	while (ps->list) {
		struct poller *p = ps->list;

		ps->list = p->next;
		poller_free(p);
	}
	free(ps);
}
