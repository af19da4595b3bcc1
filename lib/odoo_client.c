/* The Odoo client: see include/odoo_relay/odoo_client.h. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "odoo_relay/clock.h"
#include "odoo_relay/error.h"
#include "odoo_relay/http_client.h"
#include "odoo_relay/odoo_client.h"
#include "odoo_relay/utf8.h"

/* What an HTTP request of the client is for. */
enum op_kind {
	OP_VERSION_WEB,   /* GET /web/version */
	OP_VERSION_RPC,   /* common.version over /jsonrpc */
	OP_LOGIN,         /* common.login */
	OP_CALL,          /* execute_kw or /json/2 */
	OP_CONTEXT,       /* JSON-2 probe: res.users.context_get */
};

/* One call or probe, from relay_odoo_call/probe until its callback. */
struct odoo_call {
	TAILQ_ENTRY(odoo_call) link;   /* o->calls */
	TAILQ_ENTRY(odoo_call) wait;   /* o->waiting, while waiting is set */
	int waiting;
	int probe;
	struct relay_odoo *o;
	char *model, *method;
	json_t *ids, *named;
	relay_odoo_cb cb;
	void *arg;
	int64_t start_ms;
	unsigned relogins;
	enum relay_odoo_protocol sent_proto; /* of the last request sent */
	char *request;                 /* masked text of the last request sent */
	json_t *version;               /* probe: the server's version answer */
};

/* The argument of one HTTP request. */
struct odoo_op {
	struct relay_odoo *o;
	enum op_kind kind;
	struct odoo_call *call;        /* NULL for the shared version and login */
	unsigned uid_gen;              /* OP_CALL: the login the request used */
};

TAILQ_HEAD(call_list, odoo_call);

struct relay_odoo {
	struct event_base *base;
	struct relay_http *http;
	char *url, *db, *login;
	char *key;                     /* NUL-terminated copy, wiped on free */
	size_t key_len;
	char *key_json;                /* the key as jansson writes it, quoted; wiped */
	enum relay_odoo_protocol conf_proto, proto;
	int64_t connect_timeout_ms, timeout_ms;
	size_t max_response;
	int server_major;
	int64_t uid;                   /* 0: not logged in */
	unsigned uid_gen;              /* bumped by every successful login */
	int detecting, logging_in;     /* a shared version or login request is out */
	struct call_list calls, waiting;
	unsigned in_flight;
	json_int_t next_id;
	int closing;
	/* Callbacks may free the client (relay_odoo_free): while on_http runs
	 * (depth > 0) destruction waits for it to unwind. */
	int depth;
	int free_pending;
};

static void on_http(const struct relay_http_reply *resp, void *arg);
static int call_advance(struct odoo_call *c);
static void odoo_destroy(struct relay_odoo *o);

const char *
relay_odoo_protocol_name(int protocol)
{
	switch (protocol) {
	case RELAY_PROTO_JSONRPC: return "jsonrpc";
	case RELAY_PROTO_JSON2: return "json2";
	default: return "auto";
	}
}

static int
major_of_text(const char *s)
{
	long v;

	if (!s)
		return 0;
	while (*s && !isdigit((unsigned char)*s))
		s++;
	if (!*s)
		return 0;
	v = strtol(s, NULL, 10);
	return v > 0 && v < 1000 ? (int)v : 0;
}

int
relay_odoo_parse_major(const json_t *version)
{
	const char *keys[] = { "server_version_info", "version_info" };
	const char *texts[] = { "server_version", "version" };
	json_t *first;
	json_int_t v;
	size_t i;
	int m;

	if (!json_is_object(version))
		return 0;
	for (i = 0; i < 2; i++) {
		first = json_array_get(json_object_get(version, keys[i]), 0);
		if (json_is_integer(first)) {
			v = json_integer_value(first);
			if (v > 0 && v < 1000)
				return (int)v;
		} else if ((m = major_of_text(json_string_value(first))) > 0) {
			return m; /* "saas~18" */
		}
	}
	for (i = 0; i < 2; i++)
		if ((m = major_of_text(json_string_value(json_object_get(version, texts[i])))) > 0)
			return m;
	return 0;
}

/* Classify an answer; an outcome is always produced (a local failure to
 * classify becomes transient). */
static void
classify_resp(const struct relay_http_reply *resp, enum relay_odoo_protocol proto,
              const char *method, struct relay_outcome *out)
{
	struct relay_exchange x = {
		.transport = resp->transport,
		.transport_detail = resp->error,
		.http_status = resp->status,
		.retry_after = resp->retry_after,
		.now_ms = relay_wall_ms(),
		.content_type = resp->content_type,
		.body = resp->body,
		.body_len = resp->body_len,
		.protocol = proto == RELAY_PROTO_JSON2 ? RELAY_PROTO_JSON2 : RELAY_PROTO_JSONRPC,
		.method = method,
	};

	if (relay_classify(&x, out) != 0) {
		relay_outcome_set(out, RELAY_CLASS_TRANSIENT, RELAY_SCOPE_NONE, "transport.error",
		                  "out of memory while reading odoo's answer", NULL);
		out->transport = RELAY_TRANSPORT_ERROR;
	}
}

/* The outcome of a request that could not be made (rc from sending). */
static void
local_outcome(int rc, struct relay_outcome *out)
{
	struct relay_exchange x = {
		.transport = rc == -RELAY_ECLOSED ? RELAY_TRANSPORT_CANCELLED : RELAY_TRANSPORT_ERROR,
		.transport_detail = relay_strerror(rc),
		.protocol = RELAY_PROTO_JSONRPC,
	};

	if (relay_classify(&x, out) != 0)
		memset(out, 0, sizeof *out);
}

static void
call_free(struct odoo_call *c)
{
	free(c->model);
	free(c->method);
	free(c->request);
	json_decref(c->ids);
	json_decref(c->named);
	json_decref(c->version);
	free(c);
}

/* Run c's callback with out (consumed), read from answer (or NULL), and
 * free c. */
static void
finish_answer(struct odoo_call *c, struct relay_outcome *out,
              const struct relay_http_reply *answer)
{
	struct relay_odoo *o = c->o;
	struct relay_odoo_result r;

	if (c->waiting) {
		TAILQ_REMOVE(&o->waiting, c, wait);
		c->waiting = 0;
	}
	TAILQ_REMOVE(&o->calls, c, link);
	o->in_flight--;
	memset(&r, 0, sizeof r);
	r.outcome = *out;
	memset(out, 0, sizeof *out);
	r.request = c->request;
	r.duration_ms = relay_mono_ms() - c->start_ms;
	r.protocol = c->probe || c->sent_proto == RELAY_PROTO_AUTO ? o->proto : c->sent_proto;
	r.server_major = o->server_major;
	r.relogins = c->relogins;
	if (answer) {
		r.body = answer->body;
		r.body_len = answer->body_len;
	} else {
		r.outcome.result_at = r.outcome.result_len = 0;
	}
	c->cb(&r, c->arg);
	relay_outcome_clear(&r.outcome);
	call_free(c);
}

static void
finish(struct odoo_call *c, struct relay_outcome *out)
{
	finish_answer(c, out, NULL);
}

static void
finish_local(struct odoo_call *c, int rc)
{
	struct relay_outcome out;

	local_outcome(rc, &out);
	finish(c, &out);
}

static void
finish_copy(struct odoo_call *c, const struct relay_outcome *src)
{
	struct relay_outcome out;

	if (relay_outcome_copy(&out, src) != 0)
		local_outcome(ENOMEM, &out);
	finish(c, &out);
}

/* Send one request to path under the base URL. body NULL makes a GET. */
static int
send_op(struct relay_odoo *o, enum op_kind kind, struct odoo_call *c, const char *path,
        const char *body, int json2_auth)
{
	struct relay_http_call req;
	const char *headers[5];
	char *url = NULL, *auth = NULL, *dbh = NULL;
	struct odoo_op *op;
	size_t n = 0, len;
	int rc = ENOMEM;

	if (o->closing)
		return -RELAY_ECLOSED;
	if (!(op = calloc(1, sizeof *op)))
		return ENOMEM;
	op->o = o;
	op->kind = kind;
	op->call = c;
	op->uid_gen = o->uid_gen;
	len = strlen(o->url) + strlen(path) + 1;
	if (!(url = malloc(len)))
		goto out;
	snprintf(url, len, "%s%s", o->url, path);
	headers[n++] = "Accept: application/json";
	if (body)
		headers[n++] = "Content-Type: application/json";
	if (json2_auth) {
		len = sizeof "Authorization: bearer " + o->key_len;
		if (!(auth = malloc(len)))
			goto out;
		snprintf(auth, len, "Authorization: bearer %s", o->key);
		headers[n++] = auth;
		if (o->db && *o->db) {
			len = sizeof "X-Odoo-Database: " + strlen(o->db);
			if (!(dbh = malloc(len)))
				goto out;
			snprintf(dbh, len, "X-Odoo-Database: %s", o->db);
			headers[n++] = dbh;
		}
	}
	headers[n] = NULL;
	memset(&req, 0, sizeof req);
	memset(&req, 0, sizeof(req)); /* fields this client does not use stay 0 */
	req.method = body ? "POST" : "GET";
	req.url = url;
	req.headers = headers;
	req.body = body;
	req.body_len = body ? strlen(body) : 0;
	req.connect_timeout_ms = o->connect_timeout_ms;
	req.timeout_ms = o->timeout_ms;
	req.max_response_bytes = o->max_response;
	rc = relay_http_send(o->http, &req, on_http, op);
out:
	if (auth) {
		OPENSSL_cleanse(auth, strlen(auth));
		free(auth);
	}
	free(dbh);
	free(url);
	if (rc)
		free(op);
	return rc;
}

static void
free_secret_text(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/*
 * text (JSON, as jansson wrote it) with every string token that is the API
 * key, as jansson writes it, replaced by "***", into *out (malloc'd). The
 * text is walked token by token, so only whole strings match (never bytes
 * that straddle two of them), wherever the key is: the key cannot stay in
 * the copy. -RELAY_EINVAL when no string is the key (it was meant to be
 * there: nothing is sent), ENOMEM.
 */
static int
mask_key(const struct relay_odoo *o, const char *text, char **out)
{
	static const char stars[] = "\"***\"";
	size_t klen = strlen(o->key_json), tlen = strlen(text), used = 0, i = 0, n = 0;
	char *m;

	*out = NULL;
	/* each string of the text becomes at most as long as the mask */
	if (!(m = malloc(tlen + tlen / 2 * (sizeof stars - 1) + 1)))
		return ENOMEM;
	while (i < tlen) {
		size_t j;

		if (text[i] != '"') {
			m[used++] = text[i++];
			continue;
		}
		for (j = i + 1; j < tlen && text[j] != '"'; j++)
			if (text[j] == '\\' && j + 1 < tlen)
				j++;
		if (j >= tlen) /* not what jansson writes: leave the rest */
			j = tlen - 1;
		if (j + 1 - i == klen && memcmp(text + i, o->key_json, klen) == 0) {
			memcpy(m + used, stars, sizeof stars - 1);
			used += sizeof stars - 1;
			n++;
		} else {
			memcpy(m + used, text + i, j + 1 - i);
			used += j + 1 - i;
		}
		i = j + 1;
	}
	m[used] = '\0';
	if (n == 0) {
		free(m);
		return -RELAY_EINVAL;
	}
	*out = m;
	return 0;
}

/*
 * A JSON-RPC request for service.method(args). args is consumed. When
 * mask >= 0, args[mask] is the API key: *masked gets the text with "***"
 * there, *real the text with the key. *masked may be NULL (not wanted).
 */
static int
rpc_texts(struct relay_odoo *o, const char *service, const char *method, json_t *args,
          int mask, char **real, char **masked)
{
	json_t *req;
	int rc = ENOMEM;

	*real = NULL;
	if (masked)
		*masked = NULL;
	if (!args)
		return ENOMEM;
	req = json_pack("{s:s,s:s,s:I,s:{s:s,s:s,s:O}}", "jsonrpc", "2.0", "method", "call",
	                "id", (json_int_t)++o->next_id, "params", "service", service,
	                "method", method, "args", args);
	if (!req)
		goto out;
	if (mask >= 0 &&
	    json_array_set_new(args, (size_t)mask, json_stringn(o->key, o->key_len)) != 0)
		goto out;
	if (!(*real = json_dumps(req, JSON_COMPACT)))
		goto out;
	/* The masked text from the real one: one encoding of the request
	 * instead of two (a batch's rows are most of its text). */
	if (masked && mask >= 0 && (rc = mask_key(o, *real, masked)) != 0)
		goto out;
	rc = ENOMEM;
	if (masked && !*masked && !(*masked = strdup(*real)))
		goto out;
	rc = 0;
out:
	json_decref(req);
	json_decref(args);
	if (rc) {
		free_secret_text(*real);
		*real = NULL;
		if (masked) {
			free(*masked);
			*masked = NULL;
		}
	}
	return rc;
}

static int
send_version_web(struct relay_odoo *o, struct odoo_call *c)
{
	return send_op(o, OP_VERSION_WEB, c, "/web/version", NULL, 0);
}

static int
send_version_rpc(struct relay_odoo *o, struct odoo_call *c)
{
	char *real;
	int rc = rpc_texts(o, "common", "version", json_array(), -1, &real, NULL);

	if (rc)
		return rc;
	rc = send_op(o, OP_VERSION_RPC, c, "/jsonrpc", real, 0);
	free(real);
	return rc;
}

static int
send_login(struct relay_odoo *o, struct odoo_call *c)
{
	char *real;
	int rc = rpc_texts(o, "common", "login",
	                   json_pack("[s,s,n]", o->db, o->login), 2, &real, NULL);

	if (rc)
		return rc;
	rc = send_op(o, OP_LOGIN, c, "/jsonrpc", real, 0);
	free_secret_text(real);
	return rc;
}

static int
send_context(struct relay_odoo *o, struct odoo_call *c)
{
	return send_op(o, OP_CONTEXT, c, "/json/2/res.users/context_get", "{}", 1);
}

/*
 * The leading parameters of the ORM methods the relay calls, in order.
 * execute_kw passes kwargs through, but @api.model_create_multi create()
 * takes its records positionally only (IndexError otherwise, as Odoo 18
 * answers), and positional arguments are what Odoo's own clients send: so
 * these are sent positionally, whatever else stays a keyword.
 */
static const struct {
	const char *method;
	const char *params[3];
} positional[] = {
	{ "load", { "fields", "data" } },
	{ "create", { "vals_list" } },
	{ "write", { "vals" } },
	{ "search", { "domain" } },
	{ "search_count", { "domain" } },
	{ "search_read", { "domain", "fields" } },
	{ "read", { "fields" } },
};

/* args (ids first, if any) and kwargs for execute_kw from the named
 * arguments. Returns the new kwargs object, or NULL for ENOMEM. */
static json_t *
split_named(const char *method, json_t *named, json_t *args)
{
	json_t *kw = named ? json_copy(named) : json_object();
	if (!kw)
		return NULL;
	for (size_t i = 0; i < sizeof(positional) / sizeof(positional[0]); i++) {
		if (strcmp(positional[i].method, method) != 0)
			continue;
		for (size_t p = 0; p < 3 && positional[i].params[p]; p++) {
			json_t *v = json_object_get(kw, positional[i].params[p]);
			if (!v)
				break; /* the rest stay keywords, in order */
			if (json_array_append(args, v) ||
			    json_object_del(kw, positional[i].params[p])) {
				json_decref(kw);
				return NULL;
			}
		}
		break;
	}
	return kw;
}

static int
call_send_jsonrpc(struct odoo_call *c)
{
	struct relay_odoo *o = c->o;
	json_t *args, *pos, *kw;
	char *real, *masked;
	int rc;

	/* execute_kw(db, uid, key, model, method, args, kwargs); the key's
	 * place is filled by rpc_texts. */
	pos = json_array();
	if (!pos || (c->ids && json_array_append(pos, c->ids))) {
		json_decref(pos);
		return ENOMEM;
	}
	if (!(kw = split_named(c->method, c->named, pos))) {
		json_decref(pos);
		return ENOMEM;
	}
	args = json_pack("[s,I,n,s,s,o,o]", o->db, (json_int_t)o->uid, c->model, c->method, pos, kw);
	if (!args)
		return ENOMEM;
	if ((rc = rpc_texts(o, "object", "execute_kw", args, 2, &real, &masked)))
		return rc;
	rc = send_op(o, OP_CALL, c, "/jsonrpc", real, 0);
	free_secret_text(real);
	if (rc) {
		free(masked);
		return rc;
	}
	free(c->request);
	c->request = masked;
	c->sent_proto = RELAY_PROTO_JSONRPC;
	return 0;
}

static int
call_send_json2(struct odoo_call *c)
{
	struct relay_odoo *o = c->o;
	char *model = NULL, *method = NULL, *path = NULL, *body = NULL, *text = NULL;
	json_t *obj;
	size_t len;
	int rc = ENOMEM;

	obj = c->named ? json_copy(c->named) : json_object();
	if (!obj)
		return ENOMEM;
	if (c->ids && json_object_set(obj, "ids", c->ids) != 0)
		goto out;
	if (!(body = json_dumps(obj, JSON_COMPACT)))
		goto out;
	if (!(model = curl_easy_escape(NULL, c->model, 0)) ||
	    !(method = curl_easy_escape(NULL, c->method, 0)))
		goto out;
	len = sizeof "/json/2//" + strlen(model) + strlen(method);
	if (!(path = malloc(len)))
		goto out;
	snprintf(path, len, "/json/2/%s/%s", model, method);
	len = sizeof "POST \n" + strlen(path) + strlen(body);
	if (!(text = malloc(len)))
		goto out;
	snprintf(text, len, "POST %s\n%s", path, body);
	if ((rc = send_op(o, OP_CALL, c, path, body, 1)))
		goto out;
	free(c->request);
	c->request = text;
	text = NULL;
	c->sent_proto = RELAY_PROTO_JSON2;
out:
	json_decref(obj);
	free(body);
	free(path);
	free(text);
	curl_free(model);
	curl_free(method);
	return rc;
}

static void
wait_push(struct odoo_call *c)
{
	if (!c->waiting) {
		TAILQ_INSERT_TAIL(&c->o->waiting, c, wait);
		c->waiting = 1;
	}
}

static void
wait_pop(struct odoo_call *c)
{
	if (c->waiting) {
		TAILQ_REMOVE(&c->o->waiting, c, wait);
		c->waiting = 0;
	}
}

/* Start the shared version request unless one is out. */
static int
detect_start(struct relay_odoo *o)
{
	int rc;

	if (o->detecting)
		return 0;
	if ((rc = send_version_web(o, NULL)) == 0)
		o->detecting = 1;
	return rc;
}

static int
login_start(struct relay_odoo *o)
{
	int rc;

	if (o->logging_in)
		return 0;
	if ((rc = send_login(o, NULL)) == 0)
		o->logging_in = 1;
	return rc;
}

/* Move c on: wait for the version or a login, or send it. Never runs a
 * callback; on error c is not waiting and the caller finishes it. */
static int
call_advance(struct odoo_call *c)
{
	struct relay_odoo *o = c->o;
	int rc;

	if (o->closing)
		return -RELAY_ECLOSED;
	if (o->proto == RELAY_PROTO_AUTO) {
		wait_push(c);
		rc = detect_start(o);
	} else if (o->proto == RELAY_PROTO_JSONRPC && o->uid <= 0) {
		wait_push(c);
		rc = login_start(o);
	} else {
		rc = o->proto == RELAY_PROTO_JSON2 ? call_send_json2(c) : call_send_jsonrpc(c);
	}
	if (rc)
		wait_pop(c);
	return rc;
}

/* The shared version or login request ended: move every waiting call on,
 * or fail them all with fail. */
static void
drain_waiting(struct relay_odoo *o, const struct relay_outcome *fail)
{
	struct call_list batch;
	struct odoo_call *c;
	int rc;

	/* Callbacks may add calls to o->waiting: work on a detached list. */
	TAILQ_INIT(&batch);
	while ((c = TAILQ_FIRST(&o->waiting))) {
		TAILQ_REMOVE(&o->waiting, c, wait);
		TAILQ_INSERT_TAIL(&batch, c, wait);
	}
	while ((c = TAILQ_FIRST(&batch))) {
		TAILQ_REMOVE(&batch, c, wait);
		c->waiting = 0;
		if (fail)
			finish_copy(c, fail);
		else if ((rc = call_advance(c)))
			finish_local(c, rc);
	}
}

static void
version_known(struct relay_odoo *o, int major)
{
	o->server_major = major;
	if (o->conf_proto == RELAY_PROTO_AUTO)
		o->proto = major >= 19 ? RELAY_PROTO_JSON2 : RELAY_PROTO_JSONRPC;
}

static json_t *
probe_result(struct odoo_call *c)
{
	struct relay_odoo *o = c->o;
	json_t *r = json_pack("{s:i,s:s,s:O}", "major", o->server_major,
	                      "protocol", relay_odoo_protocol_name(o->proto),
	                      "version", c->version ? c->version : json_null());

	if (r && o->proto == RELAY_PROTO_JSONRPC &&
	    json_object_set_new(r, "uid", json_integer(o->uid)) != 0) {
		json_decref(r);
		return NULL;
	}
	return r;
}

static void
probe_done(struct odoo_call *c, struct relay_outcome *out)
{
	if (out->klass == RELAY_CLASS_DONE) {
		json_decref(out->result);
		if (!(out->result = probe_result(c))) {
			relay_outcome_clear(out);
			local_outcome(ENOMEM, out);
		}
	}
	finish(c, out);
}

static void
on_version(struct relay_odoo *o, struct odoo_call *c, const struct relay_http_reply *resp,
           int web)
{
	struct relay_outcome out;
	json_t *ver = NULL;
	int major = 0, rc;

	memset(&out, 0, sizeof out);
	if (web && resp->transport == RELAY_TRANSPORT_OK) {
		if (resp->status == 200)
			ver = json_loadb(resp->body, resp->body_len, 0, NULL);
		if ((major = relay_odoo_parse_major(ver)) == 0) {
			/* Not a version (an older Odoo without /web/version, or a
			 * page that is not Odoo's): ask over JSON-RPC. */
			json_decref(ver);
			if ((rc = send_version_rpc(o, c)) == 0)
				return;
			ver = NULL;
			local_outcome(rc, &out);
		}
	} else {
		classify_resp(resp, RELAY_PROTO_JSONRPC, "version", &out);
		if (out.klass == RELAY_CLASS_DONE) {
			major = relay_odoo_parse_major(out.result);
			ver = json_incref(out.result);
			relay_outcome_clear(&out);
			if (major == 0) {
				json_decref(ver);
				ver = NULL;
				relay_outcome_set(&out, RELAY_CLASS_CONFIG, RELAY_SCOPE_TARGET,
				                  "odoo.version",
				                  "cannot tell odoo's version from its answer", NULL);
			}
		}
	}
	if (major > 0) {
		version_known(o, major);
		out.klass = RELAY_CLASS_DONE;
	}
	if (!c) {
		o->detecting = 0;
		json_decref(ver);
		drain_waiting(o, major > 0 ? NULL : &out);
		relay_outcome_clear(&out);
		return;
	}
	/* A probe: go on to the credentials. */
	if (major == 0) {
		finish(c, &out);
		return;
	}
	json_decref(c->version);
	c->version = ver;
	rc = o->proto == RELAY_PROTO_JSON2 ? send_context(o, c) : send_login(o, c);
	if (rc)
		finish_local(c, rc);
}

static void
on_login(struct relay_odoo *o, struct odoo_call *c, const struct relay_http_reply *resp)
{
	struct relay_outcome out;
	char msg[512];

	classify_resp(resp, RELAY_PROTO_JSONRPC, "login", &out);
	if (out.klass == RELAY_CLASS_DONE) {
		if (json_is_integer(out.result) && json_integer_value(out.result) > 0) {
			o->uid = json_integer_value(out.result);
			o->uid_gen++;
		} else {
			/* false: bad login or key. The uid we had is no good either. */
			o->uid = 0;
			relay_outcome_clear(&out);
			relay_utf8_snprintf(msg, sizeof msg, "login failed for %s on database %s",
			                    o->login, o->db);
			relay_outcome_set(&out, RELAY_CLASS_CONFIG, RELAY_SCOPE_TARGET, "odoo.login",
			                  msg, NULL);
			out.http_status = resp->status;
		}
	}
	if (c) {
		probe_done(c, &out);
		return;
	}
	o->logging_in = 0;
	drain_waiting(o, out.klass == RELAY_CLASS_DONE ? NULL : &out);
	relay_outcome_clear(&out);
}

static int
is_access_denied(const struct relay_outcome *out)
{
	const char *n = out->error_name, *dot;

	if (out->klass != RELAY_CLASS_CONFIG || !n)
		return 0;
	dot = strrchr(n, '.');
	return strcmp(dot ? dot + 1 : n, "AccessDenied") == 0;
}

static void
on_call(struct relay_odoo *o, struct odoo_call *c, const struct relay_http_reply *resp,
        unsigned uid_gen)
{
	struct relay_outcome out;
	int rc;

	classify_resp(resp, c->sent_proto, c->method, &out);
	if (c->sent_proto == RELAY_PROTO_JSONRPC && is_access_denied(&out) &&
	    c->relogins == 0 && !o->closing) {
		/* The key may have been rotated under a cached uid: log in again,
		 * once, unless another call already did since this one was sent. */
		c->relogins++;
		if (uid_gen == o->uid_gen)
			o->uid = 0;
		relay_outcome_clear(&out);
		if ((rc = call_advance(c)))
			finish_local(c, rc);
		return;
	}
	finish_answer(c, &out, resp);
}

static void
on_context(struct relay_odoo *o, struct odoo_call *c, const struct relay_http_reply *resp)
{
	struct relay_outcome out;

	classify_resp(resp, RELAY_PROTO_JSON2, "context_get", &out);
	probe_done(c, &out);
}

static void
on_http(const struct relay_http_reply *resp, void *arg)
{
	struct odoo_op op = *(struct odoo_op *)arg;
	struct relay_odoo *o = op.o;

	free(arg);
	o->depth++;
	switch (op.kind) {
	case OP_VERSION_WEB:
		on_version(op.o, op.call, resp, 1);
		break;
	case OP_VERSION_RPC:
		on_version(op.o, op.call, resp, 0);
		break;
	case OP_LOGIN:
		on_login(op.o, op.call, resp);
		break;
	case OP_CALL:
		on_call(op.o, op.call, resp, op.uid_gen);
		break;
	case OP_CONTEXT:
		on_context(op.o, op.call, resp);
		break;
	}
	if (--o->depth == 0 && o->free_pending)
		odoo_destroy(o);
}

/* Text that goes into a header or a URL must not break out of it. */
static int
has_ctl(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 1;
	return 0;
}

int
relay_odoo_new(struct event_base *base, const struct relay_odoo_conf *conf,
               struct relay_odoo **out)
{
	struct relay_odoo *o;
	json_t *probe_key;
	size_t n;
	int rc = ENOMEM;

	*out = NULL;
	if (!base || !conf || !conf->configured || !conf->url || !*conf->url || !conf->database ||
	    !conf->login || !conf->api_key.data || conf->api_key.len == 0 ||
	    has_ctl((const char *)conf->api_key.data, conf->api_key.len) ||
	    has_ctl(conf->url, strlen(conf->url)) || has_ctl(conf->database, strlen(conf->database)))
		return -RELAY_EINVAL;
	/* The key goes into JSON strings: it must be UTF-8. */
	if (!(probe_key = json_stringn((const char *)conf->api_key.data, conf->api_key.len)))
		return -RELAY_EINVAL;
	if (!(o = calloc(1, sizeof *o))) {
		json_decref(probe_key);
		return ENOMEM;
	}
	o->key_json = json_dumps(probe_key, JSON_ENCODE_ANY);
	json_decref(probe_key);
	if (!o->key_json) {
		free(o);
		return ENOMEM;
	}
	TAILQ_INIT(&o->calls);
	TAILQ_INIT(&o->waiting);
	o->base = base;
	o->conf_proto = o->proto = conf->protocol;
	o->connect_timeout_ms = conf->connect_timeout_ms;
	o->timeout_ms = conf->timeout_ms;
	o->max_response = conf->max_response_bytes;
	n = strlen(conf->url);
	while (n > 0 && conf->url[n - 1] == '/')
		n--;
	if (!(o->url = strndup(conf->url, n)) || !(o->db = strdup(conf->database)) ||
	    !(o->login = strdup(conf->login)) || !(o->key = malloc(conf->api_key.len + 1)))
		goto fail;
	memcpy(o->key, conf->api_key.data, conf->api_key.len);
	o->key[conf->api_key.len] = '\0';
	o->key_len = conf->api_key.len;
	if ((rc = relay_http_new(base, &o->http)))
		goto fail;
	*out = o;
	return 0;
fail:
	relay_odoo_free(o);
	return rc;
}

static void
odoo_destroy(struct relay_odoo *o)
{
	struct odoo_call *c;

	o->closing = 1;
	o->free_pending = 0;
	/* Each transfer's callback runs with "cancelled"; that fails its call
	 * and, for a shared version or login, the calls waiting for it. Keep
	 * on_http from destroying o again when it unwinds. */
	o->depth++;
	relay_http_free(o->http);
	o->http = NULL;
	while ((c = TAILQ_FIRST(&o->calls)))
		finish_local(c, -RELAY_ECLOSED);
	o->depth--;
	free(o->url);
	free(o->db);
	free(o->login);
	if (o->key) {
		OPENSSL_cleanse(o->key, o->key_len);
		free(o->key);
	}
	free_secret_text(o->key_json);
	free(o);
}

void
relay_odoo_free(struct relay_odoo *o)
{
	/* Again from a callback of the cancellation: the first call finishes. */
	if (!o || o->closing)
		return;
	o->closing = 1;
	if (o->depth > 0) {
		/* From inside a callback of this client: the frames below still
		 * use o. on_http destroys it on its way out; until then nothing
		 * new is sent (send_op refuses once closing). */
		o->free_pending = 1;
		return;
	}
	odoo_destroy(o);
}

static struct odoo_call *
call_new(struct relay_odoo *o, relay_odoo_cb cb, void *arg)
{
	struct odoo_call *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	c->o = o;
	c->cb = cb;
	c->arg = arg;
	c->start_ms = relay_mono_ms();
	return c;
}

static void
call_accept(struct odoo_call *c)
{
	TAILQ_INSERT_TAIL(&c->o->calls, c, link);
	c->o->in_flight++;
}

static void
call_reject(struct odoo_call *c)
{
	wait_pop(c);
	TAILQ_REMOVE(&c->o->calls, c, link);
	c->o->in_flight--;
	call_free(c);
}

int
relay_odoo_call(struct relay_odoo *o, const char *model, const char *method,
                json_t *ids, json_t *named, relay_odoo_cb cb, void *arg)
{
	struct odoo_call *c;
	int rc;

	if (!o || !model || !*model || !method || !*method || !cb ||
	    (ids && !json_is_array(ids)) || (named && !json_is_object(named)))
		return -RELAY_EINVAL;
	if (o->closing)
		return -RELAY_ECLOSED;
	if (!(c = call_new(o, cb, arg)))
		return ENOMEM;
	if (!(c->model = strdup(model)) || !(c->method = strdup(method))) {
		call_free(c);
		return ENOMEM;
	}
	c->ids = json_incref(ids);
	c->named = json_incref(named);
	call_accept(c);
	if ((rc = call_advance(c))) {
		call_reject(c);
		return rc;
	}
	return 0;
}

int
relay_odoo_probe(struct relay_odoo *o, relay_odoo_cb cb, void *arg)
{
	struct odoo_call *c;
	int rc;

	if (!o || !cb)
		return -RELAY_EINVAL;
	if (o->closing)
		return -RELAY_ECLOSED;
	if (!(c = call_new(o, cb, arg)))
		return ENOMEM;
	c->probe = 1;
	call_accept(c);
	/* A configured JSON-RPC target may not have /web/version (before 17). */
	rc = o->conf_proto == RELAY_PROTO_JSONRPC ? send_version_rpc(o, c) : send_version_web(o, c);
	if (rc) {
		call_reject(c);
		return rc;
	}
	return 0;
}

unsigned
relay_odoo_in_flight(const struct relay_odoo *o)
{
	return o ? o->in_flight : 0;
}

enum relay_odoo_protocol
relay_odoo_protocol(const struct relay_odoo *o)
{
	return o ? o->proto : RELAY_PROTO_AUTO;
}
