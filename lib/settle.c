/* An event's outcome, written back: see include/odoo_relay/settle.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "odoo_relay/backoff.h"
#include "odoo_relay/clock.h"
#include "odoo_relay/error.h"
#include "odoo_relay/history.h"
#include "odoo_relay/log.h"
#include "odoo_relay/metrics.h"
#include "odoo_relay/record.h"
#include "odoo_relay/settle.h"
#include "odoo_relay/writer.h"
#include "odoo_relay/utf8.h"

struct relay_settle {
	struct relay_writer *writer;
	struct relay_metrics *metrics;
	relay_settle_done_fn done;
	void *arg;
	struct relay_settle_counts counts;
};

/* A write in flight: the job it ends. */
struct pending {
	struct relay_settle *st;
	struct relay_job *job;
};

int
relay_settle_new(struct relay_writer *writer, struct relay_metrics *metrics,
                 relay_settle_done_fn done, void *arg, struct relay_settle **out)
{
	struct relay_settle *st = calloc(1, sizeof(*st));

	if (!st)
		return ENOMEM;
	st->writer = writer;
	st->metrics = metrics;
	st->done = done;
	st->arg = arg;
	*out = st;
	return 0;
}

void
relay_settle_free(struct relay_settle *st)
{
	free(st);
}

void
relay_settle_counts(const struct relay_settle *st, struct relay_settle_counts *out)
{
	*out = st->counts;
}

static struct relay_log_fields
fields_of(const struct relay_job *j)
{
	return (struct relay_log_fields){
		.event_id = j->ev.id, .source = j->ev.source, .topic = j->ev.topic,
		.route = j->route, .destination = j->dest, .lane = j->ev.lane,
		.attempt = j->ev.attempts, .odoo_model = j->model,
		.batch_id = j->batch_id, .batch_size = j->batch_size, .batch_row = j->batch_row,
	};
}

/* Which batch the job travelled in, for logs and attempts: " [batch 12
 * of 100 rows, row 17]", or "" when it went alone. */
static const char *
batch_note(const struct relay_job *j, char *buf, size_t sz)
{
	buf[0] = '\0';
	if (j->batch_id == 0)
		return buf;
	if (j->batch_row >= 0)
		snprintf(buf, sz, " [batch %" PRIu64 " of %u rows, row %d]", j->batch_id,
		         j->batch_size, j->batch_row);
	else
		snprintf(buf, sz, " [batch %" PRIu64 " of %u rows]", j->batch_id, j->batch_size);
	return buf;
}

static void
count(struct relay_settle *st, const struct relay_job *j, const char *name, const char *help)
{
	relay_metrics_add2(st->metrics, name, help, "route", j->route ? j->route : "(none)",
	                   "destination", j->dest ? j->dest : "(none)", 1);
}

static void
written(void *arg, int rc, const struct relay_write_result *r)
{
	struct pending *p = arg;
	struct relay_job *j = p->job;

	if (rc && rc != -RELAY_ENOTFOUND) {
		/* The event stays as it was in the store and is tried again
		 * later; idempotent calls make that safe. */
		struct relay_log_fields f = fields_of(j);
		relay_log_with(LOG_ERR, &f, "cannot record the outcome of event %" PRIu64 ": %s",
		               j->ev.id, relay_strerror(rc));
	}
	p->st->done(j, p->st->arg);
	free(p);
}

/* After a writer call: on failure to even queue it, the job ends now. */
static void
submitted(struct pending *p, int rc)
{
	if (rc)
		written(p, rc, NULL);
}

static struct pending *
pending_new(struct relay_settle *st, struct relay_job *j)
{
	struct pending *p = malloc(sizeof(*p));

	if (!p) {
		struct relay_log_fields f = fields_of(j);
		relay_log_with(LOG_ERR, &f, "cannot record the outcome of event %" PRIu64
		               ": out of memory", j->ev.id);
		st->done(j, st->arg);
		return NULL;
	}
	p->st = st;
	p->job = j;
	return p;
}

/* The writer takes a record of its own: a deep copy through the codec. */
static int
event_dup(struct relay_event **out, const struct relay_event *ev)
{
	unsigned char *buf;
	size_t len;
	int rc = relay_record_encode(ev, &buf, &len);

	if (rc)
		return rc;
	struct relay_event *c = calloc(1, sizeof(*c));
	if (!c) {
		free(buf);
		return ENOMEM;
	}
	rc = relay_record_decode(buf, len, c);
	free(buf);
	if (rc) {
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* A completion that the history keeps: everything copied, for the
 * writer thread. */
struct hist_write {
	uint64_t id;
	int64_t now_ms;
	struct relay_hist_settle hs;
	char *dest, *xid, *model, *note;
	char *vroute, *vname;        /* the stale guard's, or NULL */
	struct relay_version_entry version;
};

static void
hist_write_free(struct hist_write *h)
{
	free(h->dest);
	free(h->xid);
	free(h->model);
	free(h->note);
	free(h->vroute);
	free(h->vname);
	free(h);
}

/* On the writer thread: the completion, its history entry and the stale
 * guard's version in one transaction. */
static int
hist_write_fn(void *arg, struct relay_store *store, MDB_txn *txn, struct relay_write_result *r)
{
	struct hist_write *h = arg;
	int rc;

	r->id = h->id;
	if ((rc = relay_history_complete(store, txn, h->id, &h->hs, h->now_ms, NULL)))
		return rc;
	if (h->vroute)
		rc = relay_store_version_put(store, txn, h->vroute, h->vname, &h->version, NULL);
	return rc;
}

/* The pending write and the history's copy travel together. */
struct hist_pending {
	struct pending *p;
	struct hist_write *h;
};

static void
hist_written(void *arg, int rc, const struct relay_write_result *r)
{
	struct hist_pending *hp = arg;

	hist_write_free(hp->h);
	written(hp->p, rc, r);
	free(hp);
}

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Submits the completion of j with its history entry; 0, or an error with
 * nothing submitted (hist_written is then not called). */
static int
complete_with_history(struct relay_settle *st, struct relay_job *j, struct pending *p,
                      int outcome, const char *how, int64_t now,
                      const struct relay_version_entry *version)
{
	struct hist_pending *hp = calloc(1, sizeof(*hp));
	struct hist_write *h = calloc(1, sizeof(*h));
	int rc = ENOMEM;

	if (!hp || !h)
		goto fail;
	h->id = j->ev.id;
	h->now_ms = now;
	if ((j->dest && !(h->dest = strdup(j->dest))) ||
	    (j->answer_xid && !(h->xid = strdup(j->answer_xid))) ||
	    (j->model && !(h->model = strdup(j->model))) || (how && !(h->note = strdup(how))))
		goto fail;
	if (version) {
		if (!(h->vroute = dup_or_null(j->route)) || !(h->vname = dup_or_null(j->version_name)))
			goto fail;
		h->version = *version;
	}
	h->hs = (struct relay_hist_settle){
		.outcome = outcome, .destination = h->dest, .batch_id = j->batch_id,
		.batch_size = j->batch_size, .batch_row = j->batch_id ? j->batch_row : -1,
		.http_status = j->answer_http_status, .xid = h->xid,
		.odoo_model = j->answer_odoo_id > 0 ? h->model : NULL, .odoo_id = j->answer_odoo_id,
		.note = h->note, .retention_ms = j->hist_retention_ms, .keep_body = j->hist_keep_body,
		.dedup_digest = j->hist_dedup_digest,
	};
	hp->p = p;
	hp->h = h;
	if ((rc = relay_writer_call_outcome(st->writer, hist_write_fn, h, hist_written, hp)))
		goto fail;
	return 0;
fail:
	if (h)
		hist_write_free(h);
	free(hp);
	return rc;
}

static void
complete(struct relay_settle *st, struct relay_job *j, const char *how, int delivered)
{
	int64_t now = relay_wall_ms();
	struct pending *p;

	if (delivered) {
		st->counts.delivered++;
		count(st, j, "relay_delivered_total", "events applied at their destination, by route");
		relay_metrics_observe(st->metrics, "relay_delivery_seconds",
		                      "time from receipt of an event to its delivery",
		                      (double)(now - j->ev.received_ms) / 1000.0);
	}
	struct relay_log_fields f = fields_of(j);
	char note[96];
	relay_log_with(LOG_INFO, &f, "event %" PRIu64 " %s in %" PRId64 " ms%s", j->ev.id, how,
	               relay_mono_ms() - j->started_ms, batch_note(j, note, sizeof(note)));
	if (!(p = pending_new(st, j)))
		return;
	if (j->hist_retention_ms > 0) {
		struct relay_version_entry e = {
			.kind = j->version_kind, .version = j->version, .applied_ms = now,
			.expiry_ms = now + j->version_window_ms,
		};
		int with_version = delivered && j->version_name && j->route;

		submitted(p, complete_with_history(st, j, p,
		                                   delivered ? RELAY_HIST_DELIVERED : RELAY_HIST_UNROUTED,
		                                   how, now, with_version ? &e : NULL));
		return;
	}
	if (delivered && j->version_name && j->route) {
		/* The stale guard learns the version in the completion's own
		 * transaction. */
		struct relay_version_entry e = {
			.kind = j->version_kind, .version = j->version, .applied_ms = now,
			.expiry_ms = now + j->version_window_ms,
		};
		submitted(p, relay_writer_complete_version(st->writer, j->ev.id, now, j->route,
		                                           j->version_name, &e, written, p));
		return;
	}
	submitted(p, relay_writer_complete(st->writer, j->ev.id, now, written, p));
}

void
relay_settle_done(struct relay_settle *st, struct relay_job *job, const char *how)
{
	complete(st, job, how, 1);
}

/* An event that ends without being sent, like a delivered one (deleted,
 * its lane moves on): counted in metric by route, logged at notice level
 * with why, its history entry (outcome) saying so. what names the case
 * ("stale", "phantom") in the log line and the note. */
static void
unsent(struct relay_settle *st, struct relay_job *j, const char *what, const char *metric,
       const char *help, int outcome, const char *why)
{
	struct pending *p;

	count(st, j, metric, help);
	struct relay_log_fields f = fields_of(j);
	relay_log_with(LOG_NOTICE, &f, "event %" PRIu64 " %s, not sent: %s", j->ev.id, what, why);
	if (!(p = pending_new(st, j)))
		return;
	if (j->hist_retention_ms > 0) {
		char note[600];

		relay_utf8_snprintf(note, sizeof(note), "%s, not sent: %s", what, why);
		submitted(p, complete_with_history(st, j, p, outcome, note, relay_wall_ms(), NULL));
		return;
	}
	submitted(p, relay_writer_complete(st->writer, j->ev.id, relay_wall_ms(), written, p));
}

void
relay_settle_stale(struct relay_settle *st, struct relay_job *j, const char *why)
{
	st->counts.stale++;
	unsent(st, j, "stale", "relay_stale_total", "events older than the version already "
	       "applied, not sent, by route", RELAY_HIST_STALE, why);
}

void
relay_settle_phantom(struct relay_settle *st, struct relay_job *j, const char *why)
{
	st->counts.phantom++;
	unsent(st, j, "phantom", "relay_phantom_total", "events whose record no longer existed "
	       "in Odoo when confirmed, not sent, by route", RELAY_HIST_PHANTOM, why);
}

void
relay_settle_dropped(struct relay_settle *st, struct relay_job *job, const char *how)
{
	complete(st, job, how, 0);
}

static void
bury(struct relay_settle *st, struct relay_job *j, const char *reason, const char *request)
{
	struct relay_event *copy;
	struct pending *p;
	int64_t now = relay_wall_ms();
	int rc;

	free(j->ev.dead_reason);
	j->ev.dead_reason = strdup(reason);
	free(j->ev.request);
	j->ev.request = request ? strdup(request) : NULL;
	j->ev.dead_ms = now;
	if (!j->ev.route && j->route)
		j->ev.route = strdup(j->route);
	st->counts.dead_lettered++;
	count(st, j, "relay_dead_lettered_total", "events moved to the dead-letter queue, by route");
	struct relay_log_fields f = fields_of(j);
	f.message_id = RELAY_MSGID_DEAD;
	relay_log_with(LOG_ERR, &f, "event %" PRIu64 " dead-lettered: %s", j->ev.id, reason);
	if (!(p = pending_new(st, j)))
		return;
	rc = event_dup(&copy, &j->ev);
	if (rc == 0)
		rc = relay_writer_bury(st->writer, copy, j->lane_policy, now, written, p);
	submitted(p, rc);
}

void
relay_settle_dead(struct relay_settle *st, struct relay_job *job, const char *reason)
{
	bury(st, job, reason, NULL);
}

static void
reschedule(struct relay_settle *st, struct relay_job *j, int64_t due_ms)
{
	struct relay_event *copy;
	struct pending *p;
	int rc;

	j->ev.due_ms = due_ms;
	st->counts.retried++;
	count(st, j, "relay_retried_total", "delivery attempts to be retried, by route");
	if (!(p = pending_new(st, j)))
		return;
	rc = event_dup(&copy, &j->ev);
	if (rc == 0)
		rc = relay_writer_reschedule(st->writer, copy, written, p);
	submitted(p, rc);
}

static void
add_attempt(struct relay_job *j, const struct relay_outcome *o, int64_t now)
{
	struct relay_attempt a = {
		.at_ms = now, .klass = (uint8_t)o->klass, .http_status = (uint16_t)o->http_status,
		.duration_ms = relay_mono_ms() - j->started_ms, .error_name = o->error_name,
		.message = o->message, .detail = o->detail,
	};
	char buf[1024], note[96], *msg = NULL;

	/* The batch goes into the attempt's message: the record format stays. */
	batch_note(j, note, sizeof(note));
	if (note[0] && asprintf(&msg, "%s%s", o->message ? o->message : "", note) >= 0)
		a.message = msg;
	else
		msg = NULL;
	relay_event_add_attempt(&j->ev, &a);
	free(msg);
	free(j->ev.last_error);
	snprintf(buf, sizeof(buf), "%s%s%s%s", o->error_name ? o->error_name : "error",
	         o->message ? ": " : "", o->message ? o->message : "", note);
	j->ev.last_error = strdup(buf);
	if (!j->ev.route && j->route)
		j->ev.route = strdup(j->route);
}

void
relay_settle_failed(struct relay_settle *st, struct relay_job *j, const struct relay_outcome *o,
                    const char *request)
{
	int64_t now = relay_wall_ms(), due;

	if (!j->ev.first_attempt_ms)
		j->ev.first_attempt_ms = now;
	j->ev.attempts++;
	add_attempt(j, o, now);

	if (o->klass == RELAY_CLASS_PERMANENT) {
		if (j->ev.attempts <= j->permanent_retries) {
			reschedule(st, j, now + j->permanent_delay_ms);
			return;
		}
		bury(st, j, j->ev.last_error ? j->ev.last_error : "failed", request);
		return;
	}
	if (relay_backoff_next(&j->backoff, j->ev.attempts, j->ev.first_attempt_ms, now,
	                       o->retry_after_ms, relay_backoff_random(), &due) == RELAY_GIVE_UP) {
		char reason[1200];

		snprintf(reason, sizeof(reason), "gave up after %u attempts: %s", j->ev.attempts,
		         j->ev.last_error ? j->ev.last_error : "failed");
		bury(st, j, reason, request);
		return;
	}
	struct relay_log_fields f = fields_of(j);
	f.error_class = relay_class_name((int)o->klass);
	f.odoo_error = o->error_name;
	relay_log_with(LOG_INFO, &f, "event %" PRIu64 " attempt %u failed, retry in %" PRId64 " ms: %s",
	               j->ev.id, j->ev.attempts, due - now,
	               j->ev.last_error ? j->ev.last_error : "failed");
	reschedule(st, j, due);
}

void
relay_settle_release(struct relay_settle *st, struct relay_job *job)
{
	st->done(job, st->arg);
}
