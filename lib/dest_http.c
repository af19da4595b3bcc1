/*
 * The HTTP driver: each event sent to an external endpoint as one signed
 * request. See include/odoo_relay/destination.h for the contract and
 * odoo-relay.conf(5), HTTP DESTINATIONS, for what an operator sees.
 *
 * The body is the route's mapping ("fields", a JSON object) or the event's
 * body as it came ("body": "as_received"). Every request carries the
 * Standard Webhooks headers: webhook-id "evt_<event id>" (the same on every
 * attempt, so that the receiver can drop a redelivery), webhook-timestamp
 * (seconds, at this attempt) and webhook-signature, one "v1,<base64>" per
 * signing secret.
 *
 * One event per request (max_batch 1): order within a lane is the
 * scheduler's (one event of a lane in flight at a time).
 *
 * 410 Gone is a configuration failure with scope RELAY_SCOPE_STOP: delivery
 * pauses the destination durably (the pause odoo-relayctl pause
 * --destination sets, with the reason), logs it at error level, and nothing
 * goes to the endpoint until an operator runs odoo-relayctl resume
 * --destination; a restart or a reload does not resume it.
 *
 * The probe is an OPTIONS request to the URL (no body, no signature): any
 * complete HTTP answer, whatever its status, means the endpoint is there.
 * It is cheap for the receiver and, unlike a bare TCP connect, also checks
 * TLS (certificates, mTLS) and that an HTTP server answers.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "odoo_relay/clock.h"
#include "odoo_relay/destination.h"
#include "odoo_relay/error.h"
#include "odoo_relay/http_client.h"
#include "odoo_relay/signature.h"
#include "odoo_relay/utf8.h"

#define SIG_MAX (16 * 48)          /* 16 secrets of "v1,<44>" and a space */
#define BODY_START_MAX 512         /* the start of an answer's body, for messages */

struct http_job;

struct http_dest {
	struct event_base *base;
	struct relay_http *client;
	struct relay_http_dest_conf conf; /* strings borrowed from copies below */
	char *url, *method, *ca_file, *cert_file, *key_file;
	char **headers;            /* the configured lines, NULL-terminated */
	size_t n_headers;
	struct relay_secret *secrets;
	size_t n_secrets;
	struct relay_webhook_signer *signer;
	uint64_t batch_seq;
	LIST_HEAD(, http_job) jobs; /* every job and probe not yet reported */
};

/* One job (or probe: job NULL) on its way. */
struct http_job {
	struct http_dest *hd;
	struct relay_job *job;
	relay_driver_done_fn cb;
	relay_driver_probe_fn probe_cb;
	void *arg;
	char *request;             /* what was sent, secrets masked (dead letters),
	                              made from the three below only for a failure */
	char *body;                /* the body sent */
	size_t body_len;
	char ts[24];               /* its webhook-timestamp */
	struct event *early;       /* an outcome known without a request */
	struct relay_outcome early_o;
	int in_http;               /* a request is in the client */
	LIST_ENTRY(http_job) link;
};

/* ---- classification (pure) ---- */

static char *
body_start(const char *body, size_t len)
{
	size_t n = len < BODY_START_MAX ? len : BODY_START_MAX;
	char *s;

	/* cut on a UTF-8 character boundary */
	while (n > 0 && n < len && ((unsigned char)body[n] & 0xc0) == 0x80)
		n--;
	if (!(s = malloc(n + 1)))
		return NULL;
	memcpy(s, body ? body : "", n);
	s[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 && s[i] != '\n' && s[i] != '\t')
			s[i] = ' ';
	return s;
}

int
relay_dest_http_classify(const struct relay_exchange *x, struct relay_outcome *out)
{
	char name[32], msg[160];
	enum relay_class klass;
	enum relay_scope scope = RELAY_SCOPE_NONE;
	char *detail = NULL;
	long st;
	int rc;

	if (!out)
		return -RELAY_EINVAL;
	memset(out, 0, sizeof(*out));
	if (!x)
		return -RELAY_EINVAL;
	if (x->transport != RELAY_TRANSPORT_OK) {
		klass = x->transport == RELAY_TRANSPORT_TOO_BIG ? RELAY_CLASS_PERMANENT
		                                                  : RELAY_CLASS_TRANSIENT;
		snprintf(name, sizeof(name), "transport.%s", relay_transport_name(x->transport));
		relay_utf8_snprintf(msg, sizeof(msg), "%s",
		         x->transport == RELAY_TRANSPORT_TOO_BIG ? "the answer is over max_response_bytes"
		         : x->transport == RELAY_TRANSPORT_CONNECT ? "cannot connect to the endpoint"
		         : x->transport == RELAY_TRANSPORT_TIMEOUT ? "no answer in time"
		         : "the exchange failed");
		if ((rc = relay_outcome_set(out, klass, scope, name, msg, x->transport_detail)))
			return rc;
		out->transport = x->transport;
		return 0;
	}
	st = x->http_status;
	out->http_status = st;
	if (st >= 200 && st <= 299) {
		out->klass = RELAY_CLASS_DONE;
		return 0;
	}
	snprintf(name, sizeof(name), "http.%ld", st);
	if (st == 408 || st == 429 || (st >= 500 && st <= 599)) {
		klass = RELAY_CLASS_TRANSIENT;
		snprintf(msg, sizeof(msg), "the endpoint answered %ld, will retry", st);
	} else if (st == 410) {
		klass = RELAY_CLASS_CONFIG;
		scope = RELAY_SCOPE_STOP;
		snprintf(msg, sizeof(msg), "the endpoint answered 410 Gone: delivery to it stopped "
		         "until an operator resumes it");
	} else if (st >= 300 && st <= 399) {
		klass = RELAY_CLASS_PERMANENT;
		snprintf(msg, sizeof(msg), "the endpoint answered %ld, a redirect, which is not "
		         "followed", st);
	} else {
		klass = RELAY_CLASS_PERMANENT;
		snprintf(msg, sizeof(msg), "the endpoint answered %ld", st);
	}
	if (x->body_len && !(detail = body_start(x->body, x->body_len)))
		return ENOMEM;
	rc = relay_outcome_set(out, klass, scope, name, msg, detail);
	free(detail);
	if (rc)
		return rc;
	out->http_status = st;
	if (klass == RELAY_CLASS_TRANSIENT) {
		int64_t ra = relay_retry_after_ms(x->retry_after, x->now_ms);

		out->retry_after_ms = ra > 0 ? ra : 0;
	}
	return 0;
}

/* ---- jobs ---- */

static void
job_free(struct http_job *hj)
{
	LIST_REMOVE(hj, link);
	if (hj->early)
		event_free(hj->early);
	relay_outcome_clear(&hj->early_o);
	free(hj->request);
	free(hj->body);
	free(hj);
}

/* What a dead letter keeps of the request: configured header values
 * masked (they may be credentials), the signature masked, the body as sent.
 * Made only when an attempt failed: a delivery that succeeds needs none. */
static void
request_text(struct http_job *hj)
{
	const struct http_dest *hd = hj->hd;
	size_t cap = strlen(hd->method) + strlen(hd->url) + strlen(hj->ts) + hj->body_len + 192;
	size_t used, i;
	char *req;

	for (i = 0; i < hd->n_headers; i++)
		cap += strlen(hd->headers[i]) + 8;
	if (!(req = malloc(cap)))
		return;
	used = (size_t)snprintf(req, cap, "%s %s\nContent-Type: application/json\n"
	                        "webhook-id: evt_%" PRIu64 "\nwebhook-timestamp: %s\n"
	                        "webhook-signature: v1,***\n", hd->method, hd->url, hj->job->ev.id,
	                        hj->ts);
	for (i = 0; i < hd->n_headers && used < cap; i++)
		used += (size_t)snprintf(req + used, cap - used, "%.*s: ***\n",
		                         (int)strcspn(hd->headers[i], ":"), hd->headers[i]);
	if (used < cap)
		snprintf(req + used, cap - used, "\n%.*s", (int)hj->body_len, hj->body);
	free(hj->request);
	hj->request = req;
}

static void
report(struct http_job *hj, const struct relay_outcome *o, const char *how)
{
	struct relay_sent_info info = { .batch_id = 0, .batch_size = 1, .row = -1, .first = 1 };

	if (hj->job && hj->body && o->klass != RELAY_CLASS_DONE && !hj->request)
		request_text(hj);

	if (hj->job)
		hj->cb(hj->job, o, hj->request, how, &info, hj->arg);
	else
		hj->probe_cb(o, hj->arg);
	job_free(hj);
}

static void
early_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_job *hj = arg;
	struct relay_outcome o = hj->early_o;

	(void)fd;
	(void)what;
	memset(&hj->early_o, 0, sizeof(hj->early_o));
	report(hj, &o, NULL);
	relay_outcome_clear(&o);
}

/* Report an outcome on the next loop turn (never from inside send). */
static int
report_later(struct http_job *hj, enum relay_class klass, enum relay_scope scope,
             const char *name, const char *why)
{
	struct timeval now = { 0, 0 };
	int rc;

	if ((rc = relay_outcome_set(&hj->early_o, klass, scope, name, why, NULL)))
		return rc;
	if (!(hj->early = evtimer_new(hj->hd->base, early_cb, hj)) || evtimer_add(hj->early, &now))
		return ENOMEM;
	return 0;
}

/* A failed answer's detail, for attempts and dead letters: its status
 * line and headers (cookies masked), a blank line, then the start of its
 * body (the classification's detail). o->detail is replaced; on ENOMEM it
 * stays as it was. */
static void
detail_with_headers(struct relay_outcome *o, const struct relay_http_reply *r)
{
	/* A masked line can come out longer than it went in ("Set-Cookie:"
	 * with an empty value gains ": ***"): room for that on every line. */
	size_t lines = 1, cap, used;
	const char *line = r->headers;
	char *d;

	for (const char *p = r->headers; *p; p++)
		lines += *p == '\n';
	cap = strlen(r->headers) + 8 * lines + (o->detail ? strlen(o->detail) : 0) + 64;
	if (!(d = malloc(cap)))
		return;
	used = (size_t)snprintf(d, cap, "HTTP %ld\n", r->status);
	while (*line && used < cap) {
		size_t n = strcspn(line, "\n"), name = strcspn(line, ":");

		if (name < n && ((name == 10 && strncasecmp(line, "set-cookie", 10) == 0) ||
		                 (name == 13 && strncasecmp(line, "authorization", 13) == 0)))
			used += (size_t)snprintf(d + used, cap - used, "%.*s: ***\n", (int)name, line);
		else
			used += (size_t)snprintf(d + used, cap - used, "%.*s\n", (int)n, line);
		line += n + (line[n] == '\n');
	}
	if (used < cap)
		snprintf(d + used, cap - used, "\n%s", o->detail ? o->detail : "");
	free(o->detail);
	o->detail = d;
}

static void
on_reply(const struct relay_http_reply *r, void *arg)
{
	struct http_job *hj = arg;
	struct relay_exchange x = {
		.transport = r->transport, .transport_detail = r->error, .http_status = r->status,
		.retry_after = r->retry_after, .now_ms = relay_wall_ms(),
		.content_type = r->content_type, .body = r->body, .body_len = r->body_len,
	};
	struct relay_outcome o;

	hj->in_http = 0;
	if (r->refused) {
		if (relay_outcome_set(&o, RELAY_CLASS_CONFIG, RELAY_SCOPE_TARGET,
		                      "http.address_refused",
		                      "the url leads to a loopback, link-local or private address; "
		                      "set \"allow_private\": true to allow it", r->error))
			memset(&o, 0, sizeof(o));
		o.transport = RELAY_TRANSPORT_CONNECT;
	} else if (!hj->job) {
		/* a probe: any answer is an endpoint that is there */
		if (r->transport == RELAY_TRANSPORT_OK) {
			memset(&o, 0, sizeof(o));
			o.klass = RELAY_CLASS_DONE;
			o.http_status = r->status;
		} else if (relay_dest_http_classify(&x, &o)) {
			memset(&o, 0, sizeof(o));
		}
	} else if (relay_dest_http_classify(&x, &o)) {
		memset(&o, 0, sizeof(o)); /* klass NONE: the caller treats it as transient */
		o.klass = RELAY_CLASS_TRANSIENT;
		o.transport = RELAY_TRANSPORT_ERROR;
	} else if (o.klass != RELAY_CLASS_DONE && r->transport == RELAY_TRANSPORT_OK && r->headers) {
		detail_with_headers(&o, r);
	}
	report(hj, &o, o.klass == RELAY_CLASS_DONE ? "delivered" : NULL);
	relay_outcome_clear(&o);
}

static struct http_job *
job_new(struct http_dest *hd, void *arg)
{
	struct http_job *hj = calloc(1, sizeof(*hj));

	if (!hj)
		return NULL;
	hj->hd = hd;
	hj->arg = arg;
	LIST_INSERT_HEAD(&hd->jobs, hj, link);
	return hj;
}

static void
call_of(const struct http_dest *hd, struct relay_http_call *c)
{
	memset(c, 0, sizeof(*c));
	c->url = hd->url;
	c->connect_timeout_ms = hd->conf.connect_timeout_ms;
	c->timeout_ms = hd->conf.timeout_ms;
	c->max_response_bytes = hd->conf.max_response_bytes;
	c->ca_file = hd->ca_file;
	c->cert_file = hd->cert_file;
	c->key_file = hd->key_file;
	c->insecure = !hd->conf.tls_verify;
	c->refuse_private = !hd->conf.allow_private;
}

/* The body for job: the mapping's object, or the event's body as it came.
 * Returns 0 with *out (malloc'd) and *len, or an error with why filled. */
static int
body_of(const struct relay_job *job, const struct relay_route *route, char **out, size_t *len,
        char *why, size_t whysz)
{
	struct relay_plan plan;
	json_error_t jerr;
	json_t *payload;
	int rc;

	/* a confirmed event: the record's current values (confirm.h) */
	const char *in = job->send_body ? job->send_body : (const char *)job->ev.body;
	size_t in_len = job->send_body ? job->send_body_len : job->ev.body_len;

	if (relay_route_body_as_received(route)) {
		if (!(*out = malloc(in_len + 1)))
			return ENOMEM;
		if (in_len)
			memcpy(*out, in, in_len);
		(*out)[in_len] = '\0';
		*len = in_len;
		return 0;
	}
	if (!(payload = json_loadb(in, in_len, 0, &jerr))) {
		snprintf(why, whysz, "the event's body is not JSON (line %d)", jerr.line);
		return -RELAY_EINVAL;
	}
	rc = relay_route_map(route, payload, "odoo_relay", &plan, why, whysz);
	json_decref(payload);
	if (rc)
		return rc;
	if (plan.values) {
		*out = json_dumps(plan.values, JSON_COMPACT);
	} else {
		json_t *empty = json_object();

		*out = empty ? json_dumps(empty, JSON_COMPACT) : NULL;
		json_decref(empty);
	}
	relay_plan_clear(&plan);
	if (!*out)
		return ENOMEM;
	*len = strlen(*out);
	return 0;
}

static int
send_one(struct http_dest *hd, struct relay_job *job, const struct relay_route *route,
         relay_driver_done_fn cb, void *arg)
{
	struct relay_http_call call;
	struct http_job *hj;
	char why[256] = "", id[32], sig[SIG_MAX];
	char h_id[48], h_ts[48], h_sig[SIG_MAX + 24];
	char *body = NULL;
	const char **headers = NULL;
	size_t len = 0, i, n = 0;
	int64_t now_s = relay_wall_ms() / 1000;
	int rc;

	h_sig[0] = '\0';
	if (!(hj = job_new(hd, arg)))
		return ENOMEM;
	hj->job = job;
	hj->cb = cb;
	if ((rc = body_of(job, route, &body, &len, why, sizeof(why))) != 0) {
		if (rc == ENOMEM)
			goto fail;
		rc = report_later(hj, RELAY_CLASS_PERMANENT, RELAY_SCOPE_NONE, "mapping", why);
		goto early;
	}
	hj->body = body;            /* kept for a failure's request text */
	hj->body_len = len;
	snprintf(id, sizeof(id), "evt_%" PRIu64, job->ev.id);
	snprintf(hj->ts, sizeof(hj->ts), "%" PRId64, now_s);
	if ((rc = relay_webhook_signer_sign(hd->signer, hd->secrets, hd->n_secrets, id, now_s,
	                                    (const unsigned char *)body, len, sig,
	                                    sizeof(sig))) != 0) {
		if (rc == ENOMEM)
			goto fail;
		rc = report_later(hj, RELAY_CLASS_CONFIG, RELAY_SCOPE_TARGET, "http.signing",
		                  "cannot sign: no usable signing secret");
		goto early;
	}
	rc = ENOMEM;
	if (!(headers = calloc(hd->n_headers + 5, sizeof(*headers))))
		goto fail_sig;
	snprintf(h_id, sizeof(h_id), "webhook-id: %s", id);
	snprintf(h_ts, sizeof(h_ts), "webhook-timestamp: %s", hj->ts);
	snprintf(h_sig, sizeof(h_sig), "webhook-signature: %s", sig);
	headers[n++] = "Content-Type: application/json";
	headers[n++] = h_id;
	headers[n++] = h_ts;
	headers[n++] = h_sig;
	for (i = 0; i < hd->n_headers; i++)
		headers[n++] = hd->headers[i];
	call_of(hd, &call);
	call.method = hd->method;
	call.headers = headers;
	call.body = body;
	call.body_len = len;
	rc = relay_http_send(hd->client, &call, on_reply, hj);
	if (rc == 0)
		hj->in_http = 1;
fail_sig:
	OPENSSL_cleanse(sig, strnlen(sig, sizeof(sig)));
	OPENSSL_cleanse(h_sig, strnlen(h_sig, sizeof(h_sig)));
	free(headers);
early:
	if (rc == 0)
		return 0;
fail:
	job_free(hj); /* no callback will come (frees the body) */
	return rc;
}

static int
http_send(void *drv, struct relay_job *const *jobs, size_t n, const struct relay_route *route,
          relay_driver_done_fn cb, void *arg)
{
	/* max_batch is 1: the scheduler gives one job per call */
	if (n != 1)
		return -RELAY_EINVAL;
	return send_one(drv, jobs[0], route, cb, arg);
}

static int
http_probe(void *drv, relay_driver_probe_fn cb, void *arg)
{
	struct http_dest *hd = drv;
	struct relay_http_call call;
	struct http_job *hj;
	int rc;

	if (!(hj = job_new(hd, arg)))
		return ENOMEM;
	hj->probe_cb = cb;
	call_of(hd, &call);
	call.method = "OPTIONS";
	if ((rc = relay_http_send(hd->client, &call, on_reply, hj)) == 0)
		hj->in_http = 1;
	if (rc)
		job_free(hj);
	return rc;
}

/* ---- instances ---- */

static void
http_destroy(void *drv)
{
	struct http_dest *hd = drv;
	size_t i;

	if (!hd)
		return;
	relay_http_free(hd->client); /* requests in flight report cancelled */
	while (!LIST_EMPTY(&hd->jobs)) {
		struct http_job *hj = LIST_FIRST(&hd->jobs);
		struct relay_outcome c = { .klass = RELAY_CLASS_TRANSIENT,
		                           .transport = RELAY_TRANSPORT_CANCELLED };

		report(hj, &c, NULL);
	}
	free(hd->url);
	free(hd->method);
	free(hd->ca_file);
	free(hd->cert_file);
	free(hd->key_file);
	for (i = 0; i < hd->n_headers; i++)
		free(hd->headers[i]);
	free(hd->headers);
	for (i = 0; i < hd->n_secrets; i++) {
		if (hd->secrets[i].data) {
			OPENSSL_cleanse(hd->secrets[i].data, hd->secrets[i].len);
			free(hd->secrets[i].data);
		}
	}
	free(hd->secrets);
	relay_webhook_signer_free(hd->signer);
	free(hd);
}

static char *
dup_or_null(const char *s, int *nomem)
{
	char *d;

	if (!s)
		return NULL;
	if (!(d = strdup(s)))
		*nomem = 1;
	return d;
}

static int
http_create(struct event_base *base, const struct relay_destination_conf *conf, void **out)
{
	const struct relay_http_dest_conf *c = &conf->http;
	struct http_dest *hd;
	int nomem = 0, rc;
	size_t i;

	if (conf->kind != RELAY_DEST_HTTP || !c->url || !c->n_secrets)
		return -RELAY_EINVAL;
	if (!(hd = calloc(1, sizeof(*hd))))
		return ENOMEM;
	hd->base = base;
	LIST_INIT(&hd->jobs);
	hd->conf = *c;
	hd->url = dup_or_null(c->url, &nomem);
	hd->method = dup_or_null(c->method ? c->method : "POST", &nomem);
	hd->ca_file = dup_or_null(c->ca_file, &nomem);
	hd->cert_file = dup_or_null(c->cert_file, &nomem);
	hd->key_file = dup_or_null(c->key_file, &nomem);
	if (nomem || !(hd->headers = calloc(c->n_headers + 1, sizeof(*hd->headers))) ||
	    !(hd->secrets = calloc(c->n_secrets, sizeof(*hd->secrets)))) {
		rc = ENOMEM;
		goto fail;
	}
	for (i = 0; i < c->n_headers; i++, hd->n_headers++)
		if (!(hd->headers[i] = strdup(c->headers[i]))) {
			rc = ENOMEM;
			goto fail;
		}
	for (i = 0; i < c->n_secrets; i++, hd->n_secrets++) {
		if (!c->secrets[i].len) {
			rc = -RELAY_EINVAL; /* loaded without secrets */
			goto fail;
		}
		if (!(hd->secrets[i].data = malloc(c->secrets[i].len))) {
			rc = ENOMEM;
			goto fail;
		}
		memcpy(hd->secrets[i].data, c->secrets[i].data, c->secrets[i].len);
		hd->secrets[i].len = c->secrets[i].len;
	}
	/* the copy must not point into conf */
	hd->conf.url = hd->conf.method = hd->conf.ca_file = hd->conf.cert_file = NULL;
	hd->conf.key_file = NULL;
	hd->conf.headers = NULL;
	hd->conf.secrets = NULL;
	if ((rc = relay_webhook_signer_new(&hd->signer)) != 0 ||
	    (rc = relay_http_new(base, &hd->client)) != 0)
		goto fail;
	*out = hd;
	return 0;
fail:
	http_destroy(hd);
	return rc;
}

static const char *
http_protocol(void *drv)
{
	(void)drv;
	return "webhook";
}

const struct relay_driver_ops relay_driver_http = {
	.kind = "http",
	.max_batch = 1,
	.create = http_create,
	.destroy = http_destroy,
	.probe = http_probe,
	.send = http_send,
	.protocol = http_protocol,
};
