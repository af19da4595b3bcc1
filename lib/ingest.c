/* The HTTP handlers: see include/odoo_relay/ingest.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/crypto.h>

#include "odoo_relay/acktrace.h"
#include "odoo_relay/clock.h"
#include "odoo_relay/ack.h"
#include "odoo_relay/error.h"
#include "odoo_relay/http_server.h"
#include "odoo_relay/ingest.h"
#include "odoo_relay/log.h"
#include "odoo_relay/metrics.h"
#include "odoo_relay/query.h"
#include "odoo_relay/record.h"
#include "odoo_relay/source.h"
#include "odoo_relay/writer.h"
#include "odoo_relay/utf8.h"

#define HOOKS_PREFIX "/hooks/"
/* The kinds of listener, each with a server (a connection table) of its own. */
enum { LISTEN_WEBHOOK = 0, LISTEN_ADMIN = 1, LISTEN_QUERY = 2, LISTEN_KINDS = 3 };
/* A keep-alive connection with no request is closed after this long. */
#define IDLE_TIMEOUT_MS 60000
/* Signature failures are logged at most once per this many ms (the count of
 * the others goes with the next line):
 * a misconfigured secret needs a human, a scanner must not flood the log. */
#define SIG_LOG_INTERVAL_MS 10000
/* How long a sender should wait before retrying after a 503. */
#define RETRY_AFTER "Retry-After: 30\r\n"

struct relay_ingest {
	struct event_base *base;
	const struct relay_config *cfg;
	struct relay_writer *writer;
	struct relay_metrics *metrics;
	struct relay_queries *queries; /* GET /query/<name>, or NULL */
	/* One server for the webhook listeners (listen, sockets from systemd),
	 * one for admin_listen, which serves only health, readiness and
	 * metrics: each has its own connection table, so an attack on the
	 * first leaves the second answering, and its own limits (no body on
	 * admin, whatever a reload says). Created with their first listener.
	 * A third, for query_listen, serves only the queries and health. */
	struct relay_http_server *servers[LISTEN_KINDS];
	unsigned pending;
	int ready;
	int store_full;          /* the last write failed for space */
	int64_t sig_logged_ms;   /* when a signature failure was last logged */
	unsigned sig_suppressed; /* failures not logged since */
	relay_ingest_metrics_fn metrics_hook;
	void *metrics_arg;
	void (*stored_hook)(void *arg);
	void *stored_arg;
	struct server_ctx {
		struct relay_ingest *in;
		int admin;
		int kind;             /* LISTEN_* */
	} ctx[LISTEN_KINDS];      /* each server's handler argument */
	struct relay_http_stats shown[LISTEN_KINDS]; /* counts already added to the metrics */
	struct relay_acks *acks; /* answers against each source's deadline */
};

/* One request waiting for its commit. */
struct pending {
	struct relay_ingest *in;
	struct relay_http_request *req;
	int64_t started_ms;
	int64_t deadline_ms;     /* the source's, when the request came */
#ifdef RELAY_ACK_TRACE
	int64_t t_handler;   /* acktrace: when serve_hook began */
#endif
	char source[]; /* for metrics and logs: the config may be reloaded meanwhile */
};

static void
rejected(struct relay_ingest *in, const char *reason)
{
	relay_metrics_add(in->metrics, "relay_rejected_total",
	                  "webhook requests refused, by reason", "reason", reason, 1);
}

/*
 * The source of path: "/hooks/<name>" (a trailing '/' allowed), or for a
 * source whose scheme is url_token "/hooks/<name>/<token>", the token (its
 * bytes in the path, not NUL-terminated) in *token and *toklen (NULL, 0 when
 * there is none). NULL for any other path. The token is never logged nor
 * echoed: texts name the source only.
 */
static const struct relay_source_conf *
source_token_of(const struct relay_ingest *in, const char *path, const char **token,
                size_t *toklen)
{
	const struct relay_source_conf *sc;
	const char *name, *tok = NULL;
	size_t len, tn = 0;

	*token = NULL;
	*toklen = 0;
	if (strncmp(path, HOOKS_PREFIX, sizeof(HOOKS_PREFIX) - 1) != 0)
		return NULL;
	name = path + sizeof(HOOKS_PREFIX) - 1;
	len = strcspn(name, "/");
	if (name[len] == '/') {
		tok = name + len + 1;
		tn = strlen(tok);
		if (tn && tok[tn - 1] == '/')
			tn--;
		if (memchr(tok, '/', tn))
			return NULL;
	}
	if (!(sc = relay_config_source(in->cfg, name, len)))
		return NULL;
	if (sc->kind == RELAY_SOURCE_ODOO_POLL)
		return NULL; /* read from Odoo by the poller: nothing posts to it */
	if (sc->verify.scheme != RELAY_SIG_URL_TOKEN)
		return tn ? NULL : sc;
	*token = tn ? tok : NULL;
	*toklen = tn;
	return sc;
}

/* The value of parameter "token" in a query string (not NUL-terminated),
 * or NULL: the other place an operator may put a url_token. */
static const char *
query_token(const char *query, size_t *len)
{
	const char *p = query;

	while (p && *p) {
		size_t n = strcspn(p, "&");

		if (n > 6 && strncmp(p, "token=", 6) == 0) {
			*len = n - 6;
			return p + 6;
		}
		p = p[n] ? p + n + 1 : NULL;
	}
	return NULL;
}

static const struct relay_source_conf *
source_of(const struct relay_ingest *in, const char *path)
{
	const char *token;
	size_t toklen;

	return source_token_of(in, path, &token, &toklen);
}

static int
is_json_type(const char *ct)
{
	if (!ct)
		return 0;
	size_t n = strcspn(ct, "; \t");
	return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

/* A query request: served on the query listener when there is one, else on
 * the webhook listeners, once queries are set. */
static int
is_query(const struct relay_ingest *in, const struct server_ctx *sx, const char *path)
{
	return in->queries
	       && (sx->kind == LISTEN_QUERY || (sx->kind == LISTEN_WEBHOOK && !in->servers[LISTEN_QUERY]))
	       && strncmp(path, RELAY_QUERY_PREFIX, sizeof(RELAY_QUERY_PREFIX) - 1) == 0;
}

static int
on_headers(struct relay_http_request *req, void *arg)
{
	struct server_ctx *sx = arg;
	struct relay_ingest *in = sx->in;
	const char *path = relay_http_request_path(req);
	const char *method = relay_http_request_method(req);

	if (is_query(in, sx, path)) {
		if (strcmp(method, "GET") != 0) {
			rejected(in, "method");
			relay_http_respond_error(req, 405, "method not allowed", "queries are read with GET",
			                         "Allow: GET\r\n");
			return 1;
		}
		return 0;
	}
	if (strncmp(path, HOOKS_PREFIX, sizeof(HOOKS_PREFIX) - 1) != 0 || sx->kind != LISTEN_WEBHOOK) {
		/* With an admin address, metrics are served there alone: they
		 * name sources and routes, which the webhook side need not tell;
		 * never on the query listener. */
		int metrics_here = sx->admin || (sx->kind == LISTEN_WEBHOOK && !in->cfg->admin_listen);
		if (strcmp(path, "/healthz") && strcmp(path, "/readyz") &&
		    (strcmp(path, "/metrics") || !metrics_here)) {
			rejected(in, "not_found");
			relay_http_respond_error(req, 404, "not found", "no such endpoint", NULL);
			return 1;
		}
		if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
			rejected(in, "method");
			relay_http_respond_error(req, 405, "method not allowed", "use GET",
			                         "Allow: GET, HEAD\r\n");
			return 1;
		}
		return 0;
	}
	const struct relay_source_conf *sc = source_of(in, path);
	if (!sc) {
		char d[160];
		/* the path up to the source's name: a token after it stays out */
		size_t n = sizeof(HOOKS_PREFIX) - 1 + strcspn(path + sizeof(HOOKS_PREFIX) - 1, "/");
		n = relay_utf8_prefix(path, n, 100);
		snprintf(d, sizeof(d), "no source is configured for %.*s", (int)n, path);
		rejected(in, "unknown_source");
		relay_http_respond_error(req, 404, "unknown source", d, NULL);
		return 1;
	}
	if (strcmp(method, "POST") != 0) {
		rejected(in, "method");
		relay_http_respond_error(req, 405, "method not allowed", "webhooks are POSTed",
		                         "Allow: POST\r\n");
		return 1;
	}
	if (sc->require_json && !is_json_type(relay_http_request_header(req, "Content-Type"))) {
		rejected(in, "content_type");
		relay_http_respond_error(req, 415, "unsupported media type",
		                         "this source takes Content-Type: application/json", NULL);
		return 1;
	}
	if (relay_http_request_content_length(req) > in->cfg->limits.max_body_bytes)
		rejected(in, "too_large"); /* the server answers 413 */
	return 0;
}

/* The HTTP servers' own figures, by listener kind. */
static void
http_metrics(struct relay_ingest *in)
{
	static const char *const kind[LISTEN_KINDS] = { "webhook", "admin", "query" };
	for (int admin = 0; admin < LISTEN_KINDS; admin++) {
		struct relay_http_stats st;
		if (!in->servers[admin])
			continue;
		relay_http_server_stats(in->servers[admin], &st);
		relay_metrics_set(in->metrics, "relay_http_connections", "client connections open now",
		                  "listener", kind[admin], st.connections);
		relay_metrics_set(in->metrics, "relay_http_body_bytes",
		                  "request bodies buffered now (counted against limits.body_budget_bytes)",
		                  "listener", kind[admin], (double)st.body_bytes);
		relay_metrics_add(in->metrics, "relay_http_evicted_total",
		                  "connections closed without a request to make room for a new one "
		                  "(the table of limits.max_connections was full)",
		                  "listener", kind[admin], st.evicted - in->shown[admin].evicted);
		relay_metrics_add(in->metrics, "relay_http_over_budget_total",
		                  "requests answered 503 because their body did not fit in "
		                  "limits.body_budget_bytes", "listener", kind[admin],
		                  st.over_budget - in->shown[admin].over_budget);
		in->shown[admin] = st;
	}
}

static void
serve_get(struct relay_ingest *in, struct relay_http_request *req)
{
	const char *path = relay_http_request_path(req);
	if (strcmp(path, "/healthz") == 0) {
		relay_http_respond(req, 200, "application/json", "{\"status\":\"ok\"}\n", 16, NULL);
	} else if (strcmp(path, "/readyz") == 0) {
		if (in->ready && !in->store_full)
			relay_http_respond(req, 200, "application/json", "{\"status\":\"ready\"}\n", 19,
			                   NULL);
		else
			relay_http_respond_error(req, 503, "not ready",
			                         in->store_full ? "the store is full" : "starting or stopping",
			                         RETRY_AFTER);
	} else {
		struct evbuffer *b = evbuffer_new();
		if (b && in->metrics_hook)
			in->metrics_hook(in->metrics_arg, in->metrics);
		if (b)
			http_metrics(in);
		if (!b || relay_metrics_render(in->metrics, b)) {
			relay_http_respond_error(req, 503, "out of memory", "cannot render metrics",
			                         RETRY_AFTER);
		} else {
			size_t len = evbuffer_get_length(b);
			relay_http_respond(req, 200, "text/plain; version=0.0.4", evbuffer_pullup(b, -1),
			                   len, NULL);
		}
		if (b)
			evbuffer_free(b);
	}
}

/* What the verifier reads: the request's headers, and the URL's token
 * under RELAY_URL_TOKEN_HEADER. */
struct hook_ctx {
	struct relay_http_request *req;
	const char *token;       /* NUL-terminated copy, or NULL */
};

static const char *
header_of(void *ctx, const char *name)
{
	struct hook_ctx *hc = ctx;

	if (strcmp(name, RELAY_URL_TOKEN_HEADER) == 0)
		return hc->token;
	return relay_http_request_header(hc->req, name);
}

static void
log_signature_failure(struct relay_ingest *in, const char *source, const char *why)
{
	int64_t now = relay_mono_ms();
	if (in->sig_logged_ms && now - in->sig_logged_ms < SIG_LOG_INTERVAL_MS) {
		in->sig_suppressed++;
		return;
	}
	struct relay_log_fields f = { .source = source };
	if (in->sig_suppressed)
		relay_log_with(LOG_WARNING, &f, "rejected a webhook for source %s: %s "
		               "(and %u more signature failures in the last %d s)", source, why,
		               in->sig_suppressed, SIG_LOG_INTERVAL_MS / 1000);
	else
		relay_log_with(LOG_WARNING, &f, "rejected a webhook for source %s: %s", source, why);
	in->sig_logged_ms = now;
	in->sig_suppressed = 0;
}

static void
event_free_partial(struct relay_event *ev)
{
	relay_event_clear(ev);
	free(ev);
}

/* The headers the source keeps, copied into the event. */
static int
keep_headers(const struct relay_source_conf *sc, struct relay_http_request *req,
             struct relay_event *ev)
{
	if (!sc->n_keep_headers)
		return 0;
	ev->headers = calloc(sc->n_keep_headers, sizeof(*ev->headers));
	if (!ev->headers)
		return ENOMEM;
	for (size_t i = 0; i < sc->n_keep_headers; i++) {
		const char *v = relay_http_request_header(req, sc->keep_headers[i]);
		if (!v)
			continue;
		struct relay_header *h = &ev->headers[ev->n_headers];
		h->name = strdup(sc->keep_headers[i]);
		h->value = strdup(v);
		ev->n_headers++;
		if (!h->name || !h->value)
			return ENOMEM;
	}
	return 0;
}

/* An answer to a sender that stored or recognised its webhook: against
 * the sender's deadline (ack.h). */
static void
acked(struct relay_ingest *in, const struct pending *p)
{
	int64_t ms = relay_mono_ms() - p->started_ms;
	int slow;

	relay_metrics_observe1(in->metrics, "relay_ack_seconds",
	                       "time from the first byte of a webhook to its durable answer, by "
	                       "source", "source", p->source, (double)ms / 1000.0);
	relay_acks_note_time(in->acks, relay_wall_ms());
	slow = relay_acks_record(in->acks, p->source, p->deadline_ms, ms);
	relay_metrics_add(in->metrics, "relay_ack_slow_total",
	                  "answers to senders that took more than half the source's deadline_ms, "
	                  "by source", "source", p->source, slow > 0 ? 1 : 0);
}

static void
stored(void *arg, int rc, const struct relay_write_result *res)
{
	struct pending *p = arg;
	struct relay_ingest *in = p->in;
	char body[160];

	in->pending--;
	if (rc == 0 && res->duplicate) {
		in->store_full = 0;
		int n = snprintf(body, sizeof(body), "{\"status\":\"duplicate\",\"id\":\"%" PRIu64 "\"}\n",
		                 res->id);
		relay_metrics_add(in->metrics, "relay_duplicates_total",
		                  "webhooks recognised as duplicates, by source", "source", p->source, 1);
		acked(in, p);
		relay_http_respond(p->req, 200, "application/json", body, (size_t)n, NULL);
	} else if (rc == 0) {
		in->store_full = 0;
		int n = snprintf(body, sizeof(body), "{\"id\":\"%" PRIu64 "\",\"status\":\"queued\"}\n",
		                 res->id);
		relay_metrics_add(in->metrics, "relay_received_total",
		                  "webhooks stored durably, by source", "source", p->source, 1);
		acked(in, p);
		relay_http_respond(p->req, 202, "application/json", body, (size_t)n, NULL);
		if (in->stored_hook)
			in->stored_hook(in->stored_arg);
#ifdef RELAY_ACK_TRACE
		relay_acktrace_add(RELAY_ACK_TOTAL, relay_acktrace_now() - p->t_handler);
#endif
	} else if (rc == -RELAY_ETOOBIG) {
		/* The dedup key or lane is within source.c's limit but, with the
		 * source name, over LMDB's key size: this request can never be
		 * stored, and a 503 would have the sender retry it forever
		 * (found by fuzz_http). */
		rejected(in, "malformed");
		relay_http_respond_error(p->req, 400, "bad request",
		                         "dedup key or lane too long to store", NULL);
	} else {
		if (rc == -RELAY_EFULL && !in->store_full) {
			struct relay_log_fields f = { .message_id = RELAY_MSGID_STORE_FULL,
			                              .source = p->source };
			relay_log_with(LOG_ERR, &f,
			               "store full: refusing webhooks with 503 until space returns");
		} else if (rc != -RELAY_EFULL) {
			relay_log(LOG_ERR, "cannot store webhook from %s: %s", p->source,
			          relay_strerror(rc));
		}
		in->store_full = rc == -RELAY_EFULL;
		rejected(in, rc == -RELAY_EFULL ? "store_full" : "store_error");
		relay_http_respond_error(p->req, 503, rc == -RELAY_EFULL ? "store full" : "store error",
		                         "the event was not stored; retry later", RETRY_AFTER);
	}
	free(p);
}

static void
serve_hook(struct relay_ingest *in, struct relay_http_request *req)
{
	const char *tok;
	size_t toklen;
	const struct relay_source_conf *sc = source_token_of(in, relay_http_request_path(req), &tok,
	                                                     &toklen);
	char token[RELAY_SOURCE_VALUE_MAX + 1];
	struct hook_ctx hc = { req, NULL };
	struct relay_extract ex = { 0 };
	struct relay_event *ev = NULL;
	struct pending *p = NULL;
	const char *why = NULL;
	int status = 0, rc;
	size_t len;
	const unsigned char *body = relay_http_request_body(req, &len);
	int64_t t_handler = relay_acktrace_now();

	(void)t_handler;
	if (!sc) { /* the configuration was reloaded between headers and body */
		rejected(in, "unknown_source");
		relay_http_respond_error(req, 404, "unknown source", "source no longer configured", NULL);
		return;
	}
	if (!tok && sc && sc->verify.scheme == RELAY_SIG_URL_TOKEN)
		tok = query_token(relay_http_request_query(req), &toklen);
	if (tok && toklen < sizeof(token)) {
		memcpy(token, tok, toklen);
		token[toklen] = '\0';
		hc.token = token;
	} else if (tok) {
		hc.token = ""; /* too long to be one: a mismatch */
	}
	rc = relay_source_extract(sc, header_of, &hc, body, len, relay_wall_ms() / 1000, &ex, &status,
	                          &why);
	if (hc.token == token)
		OPENSSL_cleanse(token, toklen);
	if (rc) {
		const char *error = status == 401 ? "unauthorized" : status == 400 ? "bad request"
		                  : status == 503 ? "out of memory" : "internal error";
		rejected(in, status == 401 ? "signature" : status == 400 ? "malformed" : "internal");
		if (status == 401)
			log_signature_failure(in, sc->name, why);
		relay_http_respond_error(req, status ? status : 500, error, why,
		                         status == 503 ? RETRY_AFTER : NULL);
		goto out;
	}

	ev = calloc(1, sizeof(*ev));
	p = calloc(1, sizeof(*p) + strlen(sc->name) + 1);
	if (!ev || !p)
		goto nomem;
	ev->received_ms = relay_wall_ms();
	ev->source = strdup(sc->name);
	ev->topic = ex.topic, ex.topic = NULL;
	ev->lane = ex.lane, ex.lane = NULL;
	ev->dedup_key = ex.dedup_key, ex.dedup_key = NULL;
	ev->body = malloc(len ? len : 1);
	if (!ev->source || !ev->body || keep_headers(sc, req, ev))
		goto nomem;
	memcpy(ev->body, body, len);
	ev->body_len = len;

	p->in = in;
	p->req = req;
	p->started_ms = relay_http_request_started_ms(req);
	p->deadline_ms = sc->deadline_ms;
	strcpy(p->source, sc->name);
#ifdef RELAY_ACK_TRACE
	p->t_handler = t_handler;
	relay_acktrace_add(RELAY_ACK_HANDLER, relay_acktrace_now() - t_handler);
#endif
	rc = relay_writer_ingest(in->writer, ev, sc->dedup_window_s * 1000, relay_wall_ms(), stored, p);
	ev = NULL; /* the writer owns it now, whatever rc says */
	if (rc) {
		free(p);
		rejected(in, "store_error");
		relay_http_respond_error(req, 503, "unavailable", relay_strerror(rc), RETRY_AFTER);
		goto out;
	}
	in->pending++;
	goto out;

nomem:
	free(p);
	if (ev)
		event_free_partial(ev);
	rejected(in, "internal");
	relay_http_respond_error(req, 503, "out of memory", "retry later", RETRY_AFTER);
out:
	relay_extract_clear(&ex);
}

static void
on_request(struct relay_http_request *req, void *arg)
{
	struct server_ctx *sx = arg;
	if (is_query(sx->in, sx, relay_http_request_path(req)))
		relay_queries_serve(sx->in->queries, req);
	else if (strncmp(relay_http_request_path(req), HOOKS_PREFIX, sizeof(HOOKS_PREFIX) - 1) == 0 &&
	    sx->kind == LISTEN_WEBHOOK)
		serve_hook(sx->in, req);
	else
		serve_get(sx->in, req);
}

int
relay_ingest_new(struct event_base *base, const struct relay_config *cfg,
                 struct relay_writer *writer, struct relay_metrics *metrics,
                 struct relay_ingest **out)
{
	struct relay_ingest *in = calloc(1, sizeof(*in));
	if (!in || relay_acks_new(&in->acks)) {
		free(in);
		return ENOMEM;
	}
	in->base = base;
	in->cfg = cfg;
	in->writer = writer;
	in->metrics = metrics;
	*out = in;
	return 0;
}

static struct relay_http_limits
limits_of(const struct relay_config *cfg, int admin)
{
	const struct relay_limits *l = &cfg->limits;
	return (struct relay_http_limits){
		.max_body_bytes = admin ? 0 : l->max_body_bytes,
		.header_timeout_ms = l->header_timeout_ms,
		.body_timeout_ms = l->body_timeout_ms,
		.idle_timeout_ms = IDLE_TIMEOUT_MS,
		.max_connections = l->max_connections,
		.body_budget_bytes = admin ? 0 : l->body_budget_bytes,
	};
}

/* The server of the listeners of kind (LISTEN_*). Only the webhook
 * listeners take bodies. */
static int
server_of(struct relay_ingest *in, int kind, struct relay_http_server **srv)
{
	int admin = kind;
	if (!in->servers[admin]) {
		struct relay_http_limits hl = limits_of(in->cfg, kind != LISTEN_WEBHOOK);
		struct server_ctx *sx = &in->ctx[admin];
		sx->in = in;
		sx->admin = kind == LISTEN_ADMIN;
		sx->kind = kind;
		int rc = relay_http_server_new(in->base, &hl, on_headers, on_request, sx,
		                               &in->servers[admin]);
		if (rc)
			return rc;
	}
	*srv = in->servers[admin];
	return 0;
}

int
relay_ingest_listen(struct relay_ingest *in, const char *hostport, int admin)
{
	struct relay_http_server *srv;
	int rc = server_of(in, admin ? LISTEN_ADMIN : LISTEN_WEBHOOK, &srv);
	return rc ? rc : relay_http_server_listen(srv, hostport);
}

int
relay_ingest_listen_queries(struct relay_ingest *in, const char *hostport)
{
	struct relay_http_server *srv;
	int rc = server_of(in, LISTEN_QUERY, &srv);
	return rc ? rc : relay_http_server_listen(srv, hostport);
}

int
relay_ingest_adopt(struct relay_ingest *in, int fd)
{
	struct relay_http_server *srv;
	int rc = server_of(in, 0, &srv);
	return rc ? rc : relay_http_server_adopt(srv, fd);
}

int
relay_ingest_addresses(const struct relay_ingest *in, char *buf, size_t n)
{
	size_t off = 0;
	int count = 0;
	if (n)
		buf[0] = '\0';
	static const char *const suffix[LISTEN_KINDS] = { "", " admin", " query" };
	for (int admin = 0; admin < LISTEN_KINDS; admin++) {
		if (!in->servers[admin])
			continue;
		char a[128];
		for (size_t i = 0; relay_http_server_port(in->servers[admin], i, a, sizeof(a)) >= 0;
		     i++) {
			int w = snprintf(buf + off, n > off ? n - off : 0, "%s%s\n", a,
			                 suffix[admin]);
			if (w > 0 && off + (size_t)w < n)
				off += (size_t)w;
			count++;
		}
	}
	return count;
}

void
relay_ingest_set_config(struct relay_ingest *in, const struct relay_config *cfg)
{
	in->cfg = cfg;
	for (int admin = 0; admin < LISTEN_KINDS; admin++) {
		if (!in->servers[admin])
			continue;
		struct relay_http_limits hl = limits_of(cfg, admin != LISTEN_WEBHOOK);
		relay_http_server_set_limits(in->servers[admin], &hl);
	}
}

unsigned
relay_ingest_pending(const struct relay_ingest *in)
{
	return in->pending;
}

void
relay_ingest_set_metrics_hook(struct relay_ingest *in, relay_ingest_metrics_fn fn, void *arg)
{
	in->metrics_hook = fn;
	in->metrics_arg = arg;
}

void
relay_ingest_set_stored_hook(struct relay_ingest *in, void (*fn)(void *arg), void *arg)
{
	in->stored_hook = fn;
	in->stored_arg = arg;
}

void
relay_ingest_set_queries(struct relay_ingest *in, struct relay_queries *qs)
{
	in->queries = qs;
}

void
relay_ingest_set_ready(struct relay_ingest *in, int ready)
{
	in->ready = ready;
}

void
relay_ingest_stop_listening(struct relay_ingest *in)
{
	if (in->servers[LISTEN_WEBHOOK])
		relay_http_server_stop_listening(in->servers[LISTEN_WEBHOOK]);
	if (in->servers[LISTEN_QUERY])
		relay_http_server_stop_listening(in->servers[LISTEN_QUERY]);
}

void
relay_ingest_free(struct relay_ingest *in)
{
	if (!in)
		return;
	relay_acktrace_dump(stderr);
	for (int k = 0; k < LISTEN_KINDS; k++)
		relay_http_server_free(in->servers[k]);
	relay_acks_free(in->acks);
	free(in);
}

char *
relay_ingest_acks_json(const struct relay_ingest *in, uint64_t *total)
{
	if (total)
		*total = relay_acks_total(in->acks);
	return relay_acks_json(in->acks);
}
