/* Declared queries served over HTTP: see include/odoo_relay/query.h. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <jansson.h>

#include "odoo_relay/clock.h"
#include "odoo_relay/error.h"
#include "odoo_relay/http_server.h"
#include "odoo_relay/log.h"
#include "odoo_relay/metrics.h"
#include "odoo_relay/odoo_client.h"
#include "odoo_relay/query.h"
#include "odoo_relay/query_spec.h"
#include "odoo_relay/signature.h"
#include "odoo_relay/store.h"
#include "odoo_relay/writer.h"

/* Calls waiting for a slot of their destination, at most. */
#define QUEUE_MAX 1024
/* Requests waiting on one call, at most (then 503). */
#define WAITERS_MAX 100000
/* Callers whose rate is tracked per query (direct-mapped: two callers that
 * share a slot share a bucket until one of them is idle). */
#define CALLER_SLOTS 1024
#define LOG_INTERVAL_MS 10000
#define NOTE_INTERVAL_MS 2000
#define RETRY_DOWN_S 5

/* ---- counts, kept across reloads by name ---------------------------------- */

struct qcount {
	char *name;
	uint64_t requests, hits, stale, calls, errors;
	int64_t logged_ms;      /* when a failure was last logged */
	unsigned suppressed;    /* failures not logged since */
	LIST_ENTRY(qcount) link;
};

/* ---- destinations ----------------------------------------------------------- */

struct flight;
TAILQ_HEAD(flight_queue, flight);

struct qdest {
	struct relay_queries *qs;
	char *name;
	struct relay_odoo *odoo;
	unsigned max_in_flight;
	unsigned in_flight;
	unsigned queued;
	struct flight_queue queue;
	unsigned refs;          /* its generation, and each flight on it */
	LIST_ENTRY(qdest) link; /* qs->dests: every destination still alive */
};

/* ---- the cache ---------------------------------------------------------------- */

struct entry {
	char *key;
	char *records;          /* the JSON array text */
	size_t len;
	unsigned count;
	int truncated;
	int64_t fetched_ms;     /* monotonic */
	struct entry *next;     /* in its hash bucket */
	TAILQ_ENTRY(entry) lru; /* most recently used first */
};

struct bucket {
	double tokens;
	int64_t last_ms;
	char caller[48];
};

/* One query of a generation. */
struct qstate {
	const struct relay_query_conf *conf; /* valid while its generation is current */
	char *name;
	struct qdest *dest;
	struct qcount *count;
	char *model;
	json_t *fields;
	char *order;
	unsigned limit;
	int64_t cache_ms, stale_ms, timeout_ms;
	unsigned cache_entries;
	size_t cache_bytes, max_bytes;
	double rate, caller_rate, burst, caller_burst;
	struct entry **table;
	size_t n_table;          /* a power of two */
	unsigned n_entries;
	size_t bytes;
	TAILQ_HEAD(entry_lru_head, entry) lru;
	struct flight *flights;  /* in flight, by key (a list: few at once) */
	struct bucket rate_bucket;
	struct bucket *callers;  /* CALLER_SLOTS of them, or NULL */
	unsigned refs;           /* its generation, and each flight */
};

struct relay_queries_gen {
	struct relay_queries *qs;
	const struct relay_config *cfg;
	struct qstate **q;
	size_t n_q;
	struct qdest **d;
	size_t n_d;
};

struct waiter {
	struct relay_http_request *req;
	int64_t started_ms;
};

struct flight {
	struct qstate *q;
	struct qdest *d;
	char *key;
	json_t *named;           /* search_read's named arguments */
	struct waiter *w;
	size_t n_w, cap_w, first_w; /* waiters [first_w, n_w) still wait */
	struct event *timer;
	int state;               /* 0 queued, 1 calling, 2 back */
	int64_t started_ms;
	struct flight *next;     /* in q->flights */
	TAILQ_ENTRY(flight) qlink;
};

struct relay_queries {
	struct event_base *base;
	struct relay_metrics *metrics;
	struct relay_writer *writer;
	struct relay_queries_gen *cur;
	relay_queries_circuit_fn circuit;
	void *circuit_arg;
	LIST_HEAD(, qdest) dests;
	LIST_HEAD(, qcount) counts;
	unsigned waiting;        /* requests waiting for a call */
	unsigned calling;        /* calls to Odoo not back */
	int closing;
	uint64_t noted;          /* a digest of the counts last noted */
	int64_t noted_ms;
	int noting;              /* a note is being written */
	struct relay_queries **note_cell; /* its completion's pointer back to us */
};

/* ---- small things ------------------------------------------------------------ */

static uint64_t
fnv(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static void
metric(struct relay_queries *qs, const char *name, const char *help, const struct qstate *q)
{
	relay_metrics_add(qs->metrics, name, help, "query", q->name, 1);
}

static void
count_error(struct relay_queries *qs, struct qstate *q, const char *reason)
{
	q->count->errors++;
	relay_metrics_add2(qs->metrics, "relay_query_errors_total",
	                   "query requests answered with an error, by query and reason", "query",
	                   q->name, "reason", reason, 1);
}

static struct qcount *
count_of(struct relay_queries *qs, const char *name)
{
	struct qcount *c;

	LIST_FOREACH(c, &qs->counts, link)
		if (strcmp(c->name, name) == 0)
			return c;
	if (!(c = calloc(1, sizeof *c)) || !(c->name = strdup(name))) {
		free(c);
		return NULL;
	}
	LIST_INSERT_HEAD(&qs->counts, c, link);
	return c;
}

/* Log "query <name>: <failure>: <what>", at most once per LOG_INTERVAL_MS
 * per query (the count of the others goes with the next line). */
static void
log_failure(struct qstate *q, const char *odoo_error, const char *failure, const char *what)
{
	struct qcount *c = q->count;
	int64_t now = relay_mono_ms();
	struct relay_log_fields f = { .destination = q->dest->name, .odoo_model = q->model,
	                              .odoo_error = odoo_error };

	if (c->logged_ms && now - c->logged_ms < LOG_INTERVAL_MS) {
		c->suppressed++;
		return;
	}
	if (c->suppressed)
		relay_log_with(LOG_WARNING, &f, "query %s: %s: %s (and %u more failures in the last %d s)",
		               q->name, failure, what, c->suppressed, LOG_INTERVAL_MS / 1000);
	else
		relay_log_with(LOG_WARNING, &f, "query %s: %s: %s", q->name, failure, what);
	c->logged_ms = now;
	c->suppressed = 0;
}

/* A token bucket: 1 and one token taken, or 0 with *wait_s set. */
static int
take(struct bucket *b, double rate, double burst, int64_t now, int *wait_s)
{
	if (b->last_ms == 0)
		b->tokens = burst;
	else
		b->tokens = fmin(burst, b->tokens + (double)(now - b->last_ms) * rate / 1000.0);
	b->last_ms = now;
	if (b->tokens >= 1.0) {
		b->tokens -= 1.0;
		return 1;
	}
	*wait_s = (int)ceil((1.0 - b->tokens) / rate);
	if (*wait_s < 1)
		*wait_s = 1;
	return 0;
}

/* ---- the cache ---------------------------------------------------------------- */

static void
entry_free(struct qstate *q, struct entry *e)
{
	struct entry **pp = &q->table[fnv(e->key, strlen(e->key)) & (q->n_table - 1)];

	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	TAILQ_REMOVE(&q->lru, e, lru);
	q->n_entries--;
	q->bytes -= e->len + strlen(e->key);
	free(e->key);
	free(e->records);
	free(e);
}

/* The entry for key, or NULL; one past cache_s + stale_s is dropped. */
static struct entry *
cache_get(struct qstate *q, const char *key, int64_t now)
{
	struct entry *e;

	if (!q->table)
		return NULL;
	for (e = q->table[fnv(key, strlen(key)) & (q->n_table - 1)]; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			break;
	if (!e)
		return NULL;
	if (now - e->fetched_ms > q->cache_ms + q->stale_ms) {
		entry_free(q, e);
		return NULL;
	}
	TAILQ_REMOVE(&q->lru, e, lru);
	TAILQ_INSERT_HEAD(&q->lru, e, lru);
	return e;
}

/* Keep records (taken) for key; the least recently used go to make room. */
static void
cache_put(struct qstate *q, const char *key, char *records, size_t len, unsigned count,
          int truncated, int64_t now)
{
	struct entry *e, *old;
	size_t size = len + strlen(key);

	if (!q->table || size > q->cache_bytes) {
		free(records);
		return;
	}
	if ((old = cache_get(q, key, now)))
		entry_free(q, old);
	while ((q->n_entries >= q->cache_entries || q->bytes + size > q->cache_bytes)
	       && (old = TAILQ_LAST(&q->lru, entry_lru_head)))
		entry_free(q, old);
	if (!(e = calloc(1, sizeof *e)) || !(e->key = strdup(key))) {
		free(e);
		free(records);
		return;
	}
	e->records = records;
	e->len = len;
	e->count = count;
	e->truncated = truncated;
	e->fetched_ms = now;
	e->next = q->table[fnv(key, strlen(key)) & (q->n_table - 1)];
	q->table[fnv(key, strlen(key)) & (q->n_table - 1)] = e;
	TAILQ_INSERT_HEAD(&q->lru, e, lru);
	q->n_entries++;
	q->bytes += size;
}

/* ---- answers ------------------------------------------------------------------ */

static void
observe(struct relay_queries *qs, const char *query, int64_t started_ms)
{
	relay_metrics_observe1(qs->metrics, "relay_query_seconds",
	                       "time from the first byte of a query request to its answer, by query",
	                       "query", query, (double)(relay_mono_ms() - started_ms) / 1000.0);
}

static void
answer_records(struct relay_queries *qs, const struct qstate *q, struct relay_http_request *req,
               int64_t started_ms,
               const char *records, size_t len, unsigned count, int truncated, int cached,
               int64_t age_ms)
{
	char tail[128];
	int n = snprintf(tail, sizeof tail, ",\"count\":%u,\"cached\":%s,\"age_s\":%" PRId64 "%s}\n",
	                 count, cached ? "true" : "false", age_ms / 1000,
	                 truncated ? ",\"truncated\":true" : "");
	size_t head = sizeof("{\"records\":") - 1;
	char *body = malloc(head + len + (size_t)n);

	if (!body) {
		relay_http_respond_error(req, 503, "out of memory", "retry later", "Retry-After: 1\r\n");
		return;
	}
	memcpy(body, "{\"records\":", head);
	memcpy(body + head, records, len);
	memcpy(body + head + len, tail, (size_t)n);
	relay_http_respond(req, 200, "application/json", body, head + len + (size_t)n,
	                   "Cache-Control: no-store\r\n");
	free(body);
	observe(qs, q->name, started_ms);
}

static void
answer_entry(struct relay_queries *qs, struct qstate *q, struct relay_http_request *req,
             int64_t started_ms, const struct entry *e, int64_t now)
{
	answer_records(qs, q, req, started_ms, e->records, e->len, e->count, e->truncated, 1,
	               now - e->fetched_ms);
}

static void
answer_error(struct relay_queries *qs, const struct qstate *q, struct relay_http_request *req,
             int64_t started_ms,
             int status, const char *error, const char *detail, const char *headers)
{
	relay_http_respond_error(req, status, error, detail, headers);
	observe(qs, q->name, started_ms);
}

/* ---- flights -------------------------------------------------------------------- */

static void qdest_unref(struct qdest *d);
static void qstate_unref(struct qstate *q);
static void flight_start(struct flight *f);

static void
flight_unlink(struct flight *f)
{
	struct flight **pp = &f->q->flights;

	while (*pp && *pp != f)
		pp = &(*pp)->next;
	if (*pp)
		*pp = f->next;
}

static void
flight_free(struct flight *f)
{
	struct relay_queries *qs = f->d->qs;

	flight_unlink(f);
	qs->waiting -= (unsigned)(f->n_w - f->first_w);
	if (f->timer)
		event_free(f->timer);
	free(f->w);
	free(f->key);
	json_decref(f->named);
	qstate_unref(f->q);
	qdest_unref(f->d);
	free(f);
}

/* The waiters of f, answered with the stale entry when there is one, else
 * status. Only those that started before until_ms (all for INT64_MAX). */
static void
flight_answer_fail(struct flight *f, int64_t until_ms, int status, const char *error,
                   const char *detail, const char *headers, const char *reason)
{
	struct relay_queries *qs = f->d->qs;
	int64_t now = relay_mono_ms();
	struct entry *e = qs->closing ? NULL : cache_get(f->q, f->key, now);

	while (f->first_w < f->n_w && f->w[f->first_w].started_ms <= until_ms) {
		struct waiter *w = &f->w[f->first_w++];

		qs->waiting--;
		if (e) {
			f->q->count->stale++;
			metric(qs, "relay_query_stale_total",
			       "query requests answered from a stale cache entry while Odoo failed", f->q);
			answer_entry(qs, f->q, w->req, w->started_ms, e, now);
		} else {
			count_error(qs, f->q, reason);
			answer_error(qs, f->q, w->req, w->started_ms, status, error, detail, headers);
		}
	}
}

static void
flight_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct flight *f = arg;
	int64_t now = relay_mono_ms();
	char detail[128];

	snprintf(detail, sizeof detail, "odoo did not answer within %" PRId64 " ms", f->q->timeout_ms);
	flight_answer_fail(f, now - f->q->timeout_ms, 504, "gateway timeout", detail, NULL, "timeout");
	if (f->first_w < f->n_w) {
		int64_t ms = f->w[f->first_w].started_ms + f->q->timeout_ms - now;
		struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

		evtimer_add(f->timer, &tv);
	}
}

/* Drop records from the end of arr until its text fits in max bytes. */
static char *
render_records(json_t *arr, size_t max, size_t *len, unsigned *count, int *truncated)
{
	char *text;

	*truncated = 0;
	for (;;) {
		if (!(text = json_dumps(arr, JSON_COMPACT | JSON_ENCODE_ANY)))
			return NULL;
		*len = strlen(text);
		if (*len <= max || json_array_size(arr) == 0)
			break;
		free(text);
		/* guess how many fit, then step: one pass for a big overshoot */
		size_t n = json_array_size(arr), keep = (size_t)((double)n * (double)max / (double)*len);

		if (keep >= n)
			keep = n - 1;
		while (json_array_size(arr) > keep)
			json_array_remove(arr, json_array_size(arr) - 1);
		*truncated = 1;
	}
	*count = (unsigned)json_array_size(arr);
	return text;
}

static void
flight_done(struct relay_odoo_result *res, void *arg)
{
	struct flight *f = arg;
	struct qstate *q = f->q;
	struct qdest *d = f->d;
	struct relay_queries *qs = d->qs;
	struct relay_outcome *o = &res->outcome;
	int64_t now = relay_mono_ms();
	char retry[64];

	d->in_flight--;
	qs->calling--;
	f->state = 2;
	flight_unlink(f); /* new requests start a new call from now on */
	if (qs->closing) {
		flight_answer_fail(f, INT64_MAX, 503, "unavailable", "the relay is stopping",
		                   "Retry-After: 5\r\n", "stopping");
		flight_free(f);
		return;
	}
	if (o->klass == RELAY_CLASS_DONE && json_is_array(o->result)) {
		size_t len = 0;
		unsigned count = 0;
		int truncated = 0;
		char *text;

		/* Odoo's own text of the records when it fits: encoding them again
		 * was a fifth of the relay's work for an answer. */
		if (res->body && o->result_len > 0 && o->result_len <= q->max_bytes &&
		    o->result_at + o->result_len <= res->body_len) {
			if ((text = malloc(o->result_len + 1))) {
				memcpy(text, res->body + o->result_at, o->result_len);
				text[o->result_len] = '\0';
				len = o->result_len;
				count = (unsigned)json_array_size(o->result);
			}
		} else {
			text = render_records(o->result, q->max_bytes, &len, &count, &truncated);
		}

		if (!text) {
			flight_answer_fail(f, INT64_MAX, 503, "out of memory", "retry later",
			                   "Retry-After: 1\r\n", "internal");
		} else {
			while (f->first_w < f->n_w) {
				struct waiter *w = &f->w[f->first_w++];

				qs->waiting--;
				answer_records(qs, f->q, w->req, w->started_ms, text, len, count, truncated, 0, 0);
			}
			if (q->cache_ms > 0)
				cache_put(q, f->key, text, len, count, truncated, now);
			else
				free(text);
		}
	} else if (o->klass == RELAY_CLASS_DONE) {
		log_failure(q, NULL, "odoo answered", "not a list of records");
		flight_answer_fail(f, INT64_MAX, 502, "bad gateway",
		                   "odoo did not answer with a list of records", NULL, "bad_answer");
	} else if (o->klass == RELAY_CLASS_PERMANENT
	           || (o->klass == RELAY_CLASS_CONFIG && o->scope == RELAY_SCOPE_ROUTE)) {
		/* Odoo refused the query itself (a field it does not know, a
		 * value of the wrong type): the same request fails again */
		const char *msg = o->message ? o->message : "odoo refused the query";

		log_failure(q, o->error_name, "odoo refused the query", msg);
		while (f->first_w < f->n_w) {
			struct waiter *w = &f->w[f->first_w++];

			qs->waiting--;
			count_error(qs, q, "refused");
			answer_error(qs, f->q, w->req, w->started_ms, 400, "odoo refused the query", msg, NULL);
		}
	} else if (o->klass == RELAY_CLASS_CONFIG) {
		log_failure(q, o->error_name, "odoo refused the relay",
		            o->message ? o->message : "configuration");
		flight_answer_fail(f, INT64_MAX, 502, "bad gateway",
		                   "the destination refused the relay's credentials or configuration",
		                   NULL, "destination_config");
	} else {
		int64_t ra = o->retry_after_ms > 0 ? (o->retry_after_ms + 999) / 1000 : RETRY_DOWN_S;

		snprintf(retry, sizeof retry, "Retry-After: %" PRId64 "\r\n", ra);
		log_failure(q, o->error_name, "odoo unavailable",
		            o->message ? o->message : "transient failure");
		flight_answer_fail(f, INT64_MAX, 503, "unavailable", "odoo is unavailable; retry later",
		                   retry, "unavailable");
	}
	/* d stays while the queue is looked at: f may hold its last reference */
	d->refs++;
	flight_free(f);
	/* a slot is free: the next call of the queue goes */
	while (d->in_flight < d->max_in_flight && !TAILQ_EMPTY(&d->queue)) {
		struct flight *n = TAILQ_FIRST(&d->queue);

		TAILQ_REMOVE(&d->queue, n, qlink);
		d->queued--;
		flight_start(n);
	}
	qdest_unref(d);
}

static void
flight_start(struct flight *f)
{
	struct relay_queries *qs = f->d->qs;
	int rc;

	f->state = 1;
	f->d->in_flight++;
	qs->calling++;
	f->q->count->calls++;
	metric(qs, "relay_query_odoo_calls_total", "search_read calls made for queries", f->q);
	rc = relay_odoo_call(f->d->odoo, f->q->model, "search_read", NULL, f->named, flight_done, f);
	if (rc) {
		f->d->in_flight--;
		qs->calling--;
		flight_answer_fail(f, INT64_MAX, 503, "unavailable", relay_strerror(rc),
		                   "Retry-After: 5\r\n", "internal");
		flight_free(f);
	}
}

static int
waiter_add(struct flight *f, struct relay_http_request *req, int64_t started_ms)
{
	if (f->n_w == f->cap_w) {
		size_t cap = f->cap_w ? f->cap_w * 2 : 4;
		struct waiter *w;

		if (f->n_w >= WAITERS_MAX || !(w = realloc(f->w, cap * sizeof *w)))
			return ENOMEM;
		f->w = w;
		f->cap_w = cap;
	}
	f->w[f->n_w].req = req;
	f->w[f->n_w].started_ms = started_ms;
	f->n_w++;
	f->d->qs->waiting++;
	return 0;
}

/* ---- serving ------------------------------------------------------------------ */

static const char *
header_of(void *ctx, const char *name)
{
	return relay_http_request_header(ctx, name);
}

static struct qstate *
qstate_find(const struct relay_queries_gen *g, const char *name)
{
	size_t i;

	for (i = 0; g && i < g->n_q; i++)
		if (strcmp(g->q[i]->name, name) == 0)
			return g->q[i];
	return NULL;
}

void
relay_queries_serve(struct relay_queries *qs, struct relay_http_request *req)
{
	const char *path = relay_http_request_path(req), *qstr = relay_http_request_query(req);
	const char *name = path + sizeof(RELAY_QUERY_PREFIX) - 1, *why = NULL;
	int64_t started = relay_http_request_started_ms(req), now = relay_mono_ms();
	struct relay_query_bound b = { 0 };
	struct qstate *q;
	struct entry *e;
	struct flight *f;
	char text[512], hdr[64];
	int wait_s = 0, rc;

	if (strncmp(path, RELAY_QUERY_PREFIX, sizeof(RELAY_QUERY_PREFIX) - 1) != 0
	    || !(q = qstate_find(qs->cur, name))) {
		relay_http_respond_error(req, 404, "unknown query", "no query is configured by that name",
		                         NULL);
		return;
	}
	q->count->requests++;
	metric(qs, "relay_query_requests_total", "query requests received, by query", q);
	if (qs->closing) {
		count_error(qs, q, "stopping");
		answer_error(qs, q, req, started, 503, "unavailable", "the relay is stopping",
		             "Retry-After: 5\r\n");
		return;
	}
	if (q->conf->auth.scheme != RELAY_SIG_NONE) {
		/* hmac-sha256 signs the request target as sent */
		char *target = NULL;
		int n = asprintf(&target, "%s%s%s", path, qstr ? "?" : "", qstr ? qstr : "");

		rc = n < 0 ? ENOMEM
		           : relay_signature_verify(&q->conf->auth, header_of, req,
		                                    (const unsigned char *)target, (size_t)n,
		                                    relay_wall_ms() / 1000, &why);
		free(target);
		if (rc) {
			count_error(qs, q, "auth");
			if (rc != ENOMEM)
				log_failure(q, NULL, "refused a request", why ? why : "authentication failed");
			answer_error(qs, q, req, started, rc == ENOMEM ? 503 : 401,
			             rc == ENOMEM ? "out of memory" : "unauthorized",
			             rc == ENOMEM ? "retry later" : why, NULL);
			return;
		}
	}
	if (q->rate > 0 && !take(&q->rate_bucket, q->rate, q->burst, now, &wait_s)) {
		snprintf(hdr, sizeof hdr, "Retry-After: %d\r\n", wait_s);
		count_error(qs, q, "rate");
		answer_error(qs, q, req, started, 429, "too many requests",
		             "over the query's rate; retry later", hdr);
		return;
	}
	if (q->callers) {
		const char *caller = relay_http_request_peer(req);
		struct bucket *cb = &q->callers[fnv(caller, strlen(caller)) & (CALLER_SLOTS - 1)];

		if (strncmp(cb->caller, caller, sizeof cb->caller) != 0) {
			memset(cb, 0, sizeof *cb);
			snprintf(cb->caller, sizeof cb->caller, "%s", caller);
		}
		if (!take(cb, q->caller_rate, q->caller_burst, now, &wait_s)) {
			snprintf(hdr, sizeof hdr, "Retry-After: %d\r\n", wait_s);
			count_error(qs, q, "caller_rate");
			answer_error(qs, q, req, started, 429, "too many requests",
			             "over this caller's rate for the query; retry later", hdr);
			return;
		}
	}
	if ((rc = relay_query_bind(q->conf, qstr, &b, text, sizeof text)) != 0) {
		count_error(qs, q, rc == ENOMEM ? "internal" : "params");
		answer_error(qs, q, req, started, rc == ENOMEM ? 503 : 400,
		             rc == ENOMEM ? "out of memory" : "bad request", text,
		             rc == ENOMEM ? "Retry-After: 1\r\n" : NULL);
		return;
	}
	e = cache_get(q, b.key, now);
	if (e && now - e->fetched_ms < q->cache_ms) {
		q->count->hits++;
		metric(qs, "relay_query_cache_hits_total", "query requests answered from the cache", q);
		answer_entry(qs, q, req, started, e, now);
		goto out;
	}
	if (qs->circuit && qs->circuit(qs->circuit_arg, q->dest->name)) {
		if (e) {
			q->count->stale++;
			metric(qs, "relay_query_stale_total",
			       "query requests answered from a stale cache entry while Odoo failed", q);
			answer_entry(qs, q, req, started, e, now);
		} else {
			count_error(qs, q, "circuit_open");
			answer_error(qs, q, req, started, 503, "unavailable",
			             "the destination is unavailable (circuit open); retry later",
			             "Retry-After: " "5" "\r\n");
		}
		goto out;
	}
	for (f = q->flights; f; f = f->next)
		if (strcmp(f->key, b.key) == 0)
			break;
	if (f) { /* coalesced */
		if (waiter_add(f, req, started)) {
			count_error(qs, q, "busy");
			answer_error(qs, q, req, started, 503, "busy", "too many requests wait for odoo",
			             "Retry-After: 1\r\n");
		} else if (!evtimer_pending(f->timer, NULL)) {
			/* the others timed out already: this one has its own time */
			int64_t ms = q->timeout_ms;
			struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

			evtimer_add(f->timer, &tv);
		}
		goto out;
	}
	if (q->dest->in_flight >= q->dest->max_in_flight && q->dest->queued >= QUEUE_MAX) {
		if (e) {
			q->count->stale++;
			metric(qs, "relay_query_stale_total",
			       "query requests answered from a stale cache entry while Odoo failed", q);
			answer_entry(qs, q, req, started, e, now);
		} else {
			count_error(qs, q, "busy");
			answer_error(qs, q, req, started, 503, "busy", "too many queries wait for odoo",
			             "Retry-After: 1\r\n");
		}
		goto out;
	}
	if (!(f = calloc(1, sizeof *f)) || !(f->key = strdup(b.key))
	    || !(f->named = json_pack("{s:O,s:O,s:I}", "domain", b.domain, "fields", q->fields,
	                              "limit", (json_int_t)q->limit))
	    || (q->order && json_object_set_new(f->named, "order", json_string(q->order)))
	    || !(f->timer = evtimer_new(qs->base, flight_timer_cb, f))) {
		if (f) {
			if (f->timer)
				event_free(f->timer);
			json_decref(f->named);
			free(f->key);
			free(f);
		}
		count_error(qs, q, "internal");
		answer_error(qs, q, req, started, 503, "out of memory", "retry later", "Retry-After: 1\r\n");
		goto out;
	}
	f->q = q;
	f->d = q->dest;
	q->refs++;
	q->dest->refs++;
	f->started_ms = now;
	f->next = q->flights;
	q->flights = f;
	if (waiter_add(f, req, started)) {
		count_error(qs, q, "internal");
		answer_error(qs, q, req, started, 503, "out of memory", "retry later", "Retry-After: 1\r\n");
		flight_free(f);
		goto out;
	}
	{
		int64_t ms = q->timeout_ms;
		struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

		evtimer_add(f->timer, &tv);
	}
	if (f->d->in_flight < f->d->max_in_flight) {
		flight_start(f);
	} else {
		TAILQ_INSERT_TAIL(&f->d->queue, f, qlink);
		f->d->queued++;
	}
out:
	relay_query_bound_clear(&b);
}

/* ---- generations ------------------------------------------------------------ */

static void
qdest_unref(struct qdest *d)
{
	if (!d || --d->refs > 0 || d->qs->closing)
		return;
	LIST_REMOVE(d, link);
	relay_odoo_free(d->odoo);
	free(d->name);
	free(d);
}

static void
qstate_unref(struct qstate *q)
{
	struct entry *e;

	if (!q || --q->refs > 0)
		return;
	while ((e = TAILQ_FIRST(&q->lru)))
		entry_free(q, e);
	free(q->table);
	free(q->callers);
	free(q->name);
	free(q->model);
	json_decref(q->fields);
	free(q->order);
	qdest_unref(q->dest);
	free(q);
}

void
relay_queries_discard(struct relay_queries_gen *g)
{
	size_t i;

	if (!g)
		return;
	for (i = 0; i < g->n_q; i++)
		qstate_unref(g->q[i]);
	for (i = 0; i < g->n_d; i++)
		qdest_unref(g->d[i]);
	free(g->q);
	free(g->d);
	free(g);
}

static struct qdest *
gen_dest(struct relay_queries_gen *g, const struct relay_destination_conf *dc, int *rc)
{
	struct relay_queries *qs = g->qs;
	struct qdest *d;
	size_t i;

	for (i = 0; i < g->n_d; i++)
		if (strcmp(g->d[i]->name, dc->name) == 0)
			return g->d[i];
	if (!(d = calloc(1, sizeof *d)) || !(d->name = strdup(dc->name))) {
		free(d);
		*rc = ENOMEM;
		return NULL;
	}
	if ((*rc = relay_odoo_new(qs->base, &dc->odoo, &d->odoo)) != 0) {
		free(d->name);
		free(d);
		return NULL;
	}
	d->qs = qs;
	d->max_in_flight = dc->query_max_in_flight;
	d->refs = 1;
	TAILQ_INIT(&d->queue);
	LIST_INSERT_HEAD(&qs->dests, d, link);
	g->d[g->n_d++] = d;
	return d;
}

static size_t
pow2_at_least(size_t n)
{
	size_t p = 16;

	while (p < n && p < ((size_t)1 << 20))
		p <<= 1;
	return p;
}

static int
gen_query(struct relay_queries_gen *g, const struct relay_query_conf *qc, struct qstate **out)
{
	const struct relay_destination_conf *dc = relay_config_destination(g->cfg, qc->destination);
	struct qstate *q;
	size_t i;
	int rc = 0;

	if (!dc)
		return -RELAY_EINVAL; /* config.c checked it */
	if (!(q = calloc(1, sizeof *q)))
		return ENOMEM;
	q->refs = 1;
	TAILQ_INIT(&q->lru);
	q->conf = qc;
	*out = q;
	if (!(q->name = strdup(qc->name)) || !(q->model = strdup(qc->model))
	    || !(q->fields = json_array()) || (qc->order && !(q->order = strdup(qc->order)))
	    || !(q->count = count_of(g->qs, qc->name)))
		return ENOMEM;
	for (i = 0; i < qc->n_fields; i++)
		if (json_array_append_new(q->fields, json_string(qc->fields[i])))
			return ENOMEM;
	q->limit = qc->limit;
	q->cache_ms = qc->cache_s * 1000;
	q->stale_ms = qc->stale_s * 1000;
	q->timeout_ms = qc->timeout_ms;
	q->cache_entries = qc->cache_entries;
	q->cache_bytes = qc->cache_bytes;
	q->max_bytes = qc->max_bytes;
	q->rate = qc->rate_per_s;
	q->caller_rate = qc->caller_rate_per_s;
	q->burst = qc->burst ? qc->burst : fmax(1.0, ceil(q->rate));
	q->caller_burst = qc->burst ? qc->burst : fmax(1.0, ceil(q->caller_rate));
	if (q->cache_ms > 0) {
		q->n_table = pow2_at_least((size_t)q->cache_entries * 2);
		if (!(q->table = calloc(q->n_table, sizeof *q->table)))
			return ENOMEM;
	}
	if (q->caller_rate > 0 && !(q->callers = calloc(CALLER_SLOTS, sizeof *q->callers)))
		return ENOMEM;
	if (!(q->dest = gen_dest(g, dc, &rc)))
		return rc;
	q->dest->refs++;
	return 0;
}

int
relay_queries_prepare(struct relay_queries *qs, const struct relay_config *cfg,
                      struct relay_queries_gen **out)
{
	struct relay_queries_gen *g = calloc(1, sizeof *g);
	size_t i;
	int rc = 0;

	if (!g)
		return ENOMEM;
	g->qs = qs;
	g->cfg = cfg;
	if (cfg->n_queries && (!(g->q = calloc(cfg->n_queries, sizeof *g->q))
	                       || !(g->d = calloc(cfg->n_queries, sizeof *g->d)))) {
		rc = ENOMEM;
		goto fail;
	}
	for (i = 0; i < cfg->n_queries; i++) {
		struct qstate *q = NULL;

		rc = gen_query(g, &cfg->queries[i], &q);
		if (q)
			g->q[g->n_q++] = q;
		if (rc)
			goto fail;
	}
	*out = g;
	return 0;
fail:
	relay_queries_discard(g);
	return rc;
}

void
relay_queries_commit(struct relay_queries *qs, struct relay_queries_gen *g)
{
	struct relay_queries_gen *old = qs->cur;

	qs->cur = g;
	relay_queries_discard(old);
}

int
relay_queries_new(struct event_base *base, struct relay_metrics *metrics,
                  struct relay_writer *writer, const struct relay_config *cfg,
                  struct relay_queries **out)
{
	struct relay_queries *qs = calloc(1, sizeof *qs);
	struct relay_queries_gen *g;
	int rc;

	if (!qs)
		return ENOMEM;
	qs->base = base;
	qs->metrics = metrics;
	qs->writer = writer;
	LIST_INIT(&qs->dests);
	LIST_INIT(&qs->counts);
	if ((rc = relay_queries_prepare(qs, cfg, &g)) != 0) {
		free(qs);
		return rc;
	}
	relay_queries_commit(qs, g);
	*out = qs;
	return 0;
}

void
relay_queries_set_circuit(struct relay_queries *qs, relay_queries_circuit_fn fn, void *arg)
{
	qs->circuit = fn;
	qs->circuit_arg = arg;
}

unsigned
relay_queries_in_flight(const struct relay_queries *qs)
{
	return qs ? qs->calling + qs->waiting : 0;
}

/* ---- the note for odoo-relayctl status ------------------------------------------ */

static int
note_fn(void *fn_arg, struct relay_store *st, MDB_txn *txn, struct relay_write_result *r)
{
	return relay_store_note_put(st, txn, "queries", fn_arg);
}

static void
note_done(void *arg, int rc, const struct relay_write_result *r)
{
	struct relay_queries *qs = *(struct relay_queries **)arg;

	if (qs) {
		qs->noting = 0;
		qs->note_cell = NULL;
		if (rc)
			qs->noted = 0; /* try again next time */
	}
	free(arg);
}

void
relay_queries_note(struct relay_queries *qs)
{
	int64_t now = relay_mono_ms();
	uint64_t digest = 1;
	json_t *o, *arr;
	char *text;
	size_t i;

	if (!qs || !qs->writer || qs->noting || (qs->noted_ms && now - qs->noted_ms < NOTE_INTERVAL_MS))
		return;
	for (i = 0; qs->cur && i < qs->cur->n_q; i++) {
		const struct qcount *c = qs->cur->q[i]->count;

		digest = digest * 1000003u + fnv(c->name, strlen(c->name)) + c->requests * 7 + c->hits * 13
		         + c->stale * 17 + c->calls * 19 + c->errors * 23;
	}
	if (digest == qs->noted)
		return;
	if (!(o = json_object()) || !(arr = json_array())) {
		json_decref(o);
		return;
	}
	json_object_set_new(o, "queries", arr);
	json_object_set_new(o, "at_ms", json_integer(relay_wall_ms()));
	for (i = 0; qs->cur && i < qs->cur->n_q; i++) {
		const struct qstate *q = qs->cur->q[i];
		const struct qcount *c = q->count;

		json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "name",
		                                     q->name, "destination", q->dest->name, "model",
		                                     q->model, "requests", (json_int_t)c->requests,
		                                     "hits", (json_int_t)c->hits, "stale",
		                                     (json_int_t)c->stale, "calls",
		                                     (json_int_t)c->calls, "errors",
		                                     (json_int_t)c->errors, "cache_s",
		                                     (json_int_t)(q->cache_ms / 1000)));
	}
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!text)
		return;
	/* the completion learns whether qs still exists through this cell */
	struct relay_queries **cell = malloc(sizeof *cell + strlen(text) + 1);

	if (!cell) {
		free(text);
		return;
	}
	*cell = qs;
	strcpy((char *)(cell + 1), text);
	free(text);
	if (relay_writer_call(qs->writer, note_fn, (char *)(cell + 1), note_done, cell)) {
		free(cell);
		return;
	}
	qs->noting = 1;
	qs->note_cell = cell;
	qs->noted = digest;
	qs->noted_ms = now;
}

void
relay_queries_warn_public(const struct relay_config *cfg, const char *path)
{
	size_t i;

	for (i = 0; i < cfg->n_queries; i++) {
		const struct relay_query_conf *q = &cfg->queries[i];

		if (q->auth.scheme != RELAY_SIG_NONE)
			continue;
		if (path)
			fprintf(stderr, "%s:%u:%u: warning: query %s is public: anyone who can reach the "
			        "listener can read what it returns\n", path, q->line, q->column, q->name);
		else
			relay_log(LOG_WARNING, "query %s is public: anyone who can reach the listener can "
			          "read what it returns", q->name);
	}
}

void
relay_queries_free(struct relay_queries *qs)
{
	struct qdest *d;
	struct qcount *c;
	size_t i;

	if (!qs)
		return;
	qs->closing = 1;
	if (qs->note_cell)
		*qs->note_cell = NULL;
	/* queued calls never start: answer and free them */
	LIST_FOREACH(d, &qs->dests, link) {
		struct flight *f;

		while ((f = TAILQ_FIRST(&d->queue))) {
			TAILQ_REMOVE(&d->queue, f, qlink);
			d->queued--;
			flight_answer_fail(f, INT64_MAX, 503, "unavailable", "the relay is stopping",
			                   "Retry-After: 5\r\n", "stopping");
			flight_free(f);
		}
	}
	/* calls in flight end in flight_done, with "cancelled", from here */
	while ((d = LIST_FIRST(&qs->dests))) {
		LIST_REMOVE(d, link);
		relay_odoo_free(d->odoo);
		d->odoo = NULL;
		free(d->name);
		free(d);
	}
	if (qs->cur) {
		for (i = 0; i < qs->cur->n_q; i++)
			qs->cur->q[i]->dest = NULL;
		for (i = 0; i < qs->cur->n_q; i++)
			qstate_unref(qs->cur->q[i]);
		free(qs->cur->q);
		free(qs->cur->d);
		free(qs->cur);
	}
	while ((c = LIST_FIRST(&qs->counts))) {
		LIST_REMOVE(c, link);
		free(c->name);
		free(c);
	}
	free(qs);
}
