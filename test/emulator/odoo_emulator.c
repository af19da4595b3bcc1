/*
 * odoo-emulator: a test program that answers like a real Odoo server.
 *
 *   odoo-emulator [--port N] [--control-port N] [--port-file FILE]
 *                 [--version 16|17|18|19] [--db NAME] [--user LOGIN:PASSWORD]
 *                 [--api-key LOGIN:KEY]... [--latency-ms N]
 *
 * Two listeners on 127.0.0.1: the Odoo port (JSON-RPC, JSON-2, the web
 * session calls) and the control port, where tests inject faults and look
 * at the records (README.md). This file holds the process, the listeners,
 * the reply path (delays, proxy-like statuses) and the control API; the
 * protocols are in emu_rpc.c and the records in emu_orm.c.
 */
#include "emu.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#define MAX_BODY (128u * 1024u * 1024u) /* Odoo's own request limit */

struct app {
	struct emu emu;
	struct event_base *base;
	struct evhttp *odoo;        /* NULL while the "down" fault holds */
	struct evhttp *control;
	int odoo_port;
	int control_port;
	struct pending *pending;    /* delayed replies, to cancel on "down" */
};

/* A reply held back by --latency-ms or the "slow" fault. */
struct pending {
	struct app *app;
	struct evhttp_request *req;
	struct evhttp_connection *conn;
	struct event *timer;
	struct emu_reply reply;
	struct pending *next, **prevp;
};

static const char *reason_for(int status)
{
	switch (status) {
	case 200: return "OK";
	case 303: return "SEE OTHER";
	case 400: return "BAD REQUEST";
	case 401: return "UNAUTHORIZED";
	case 403: return "FORBIDDEN";
	case 404: return "NOT FOUND";
	case 405: return "METHOD NOT ALLOWED";
	case 409: return "CONFLICT";
	case 413: return "REQUEST ENTITY TOO LARGE";
	case 415: return "UNSUPPORTED MEDIA TYPE";
	case 422: return "UNPROCESSABLE ENTITY";
	case 429: return "TOO MANY REQUESTS";
	case 500: return "INTERNAL SERVER ERROR";
	case 502: return "BAD GATEWAY";
	case 503: return "SERVICE UNAVAILABLE";
	case 504: return "GATEWAY TIMEOUT";
	default: return "STATUS";
	}
}

static void send_now(struct app *app, struct evhttp_request *req,
		     struct emu_reply *r)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *buf = evbuffer_new();
	const char *key;
	json_t *v;

	if (r->content_type)
		evhttp_add_header(h, "Content-Type", r->content_type);
	evhttp_add_header(h, "Server", "odoo-emulator");
	if (r->content_type && strncmp(r->content_type, "application/json", 16) == 0)
		evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	json_object_foreach(r->headers, key, v)
		evhttp_add_header(h, key, json_string_value(v));
	/* Odoo's threaded server closes after every answer */
	if (!app->emu.keep_alive)
		evhttp_add_header(h, "Connection", "close");
	if (buf && r->body)
		evbuffer_add(buf, r->body, r->len);
	evhttp_send_reply(req, r->status, reason_for(r->status), buf);
	if (buf)
		evbuffer_free(buf);
}

static void pending_free(struct pending *p)
{
	*p->prevp = p->next;
	if (p->next)
		p->next->prevp = p->prevp;
	event_free(p->timer);
	emu_reply_free(&p->reply);
	free(p);
}

/* The connection went (client gone, or "down"): the request went with it. */
static void on_pending_close(struct evhttp_connection *conn, void *arg)
{
	(void)conn;
	pending_free(arg);
}

static void on_pending_timer(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;

	(void)fd;
	(void)what;
	evhttp_connection_set_closecb(p->conn, NULL, NULL);
	send_now(p->app, p->req, &p->reply);
	pending_free(p);
}

/* Sends the reply, after the configured delay if any; takes the reply. */
static void send_reply(struct app *app, struct evhttp_request *req,
		       struct emu_reply *r)
{
	const struct emu_faults *f = &app->emu.faults;
	long delay = (long)app->emu.latency_ms +
		     (!f->slow_method[0] || strcmp(f->slow_method, app->emu.cur_method) == 0
		      ? f->delay_ms : 0);
	long delay_us = 0;
	struct pending *p;
	struct timeval tv;

	if (app->emu.cost.on) {
		/* one worker: this call starts when the previous one is done */
		struct emu_cost *c = &app->emu.cost;
		struct timespec ts;
		int64_t now_us;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		now_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
		if (c->busy_until_us < now_us)
			c->busy_until_us = now_us;
		c->busy_until_us += c->call_us + c->pending_us;
		delay_us = (long)(c->busy_until_us - now_us);
	}
	app->emu.cost.pending_us = 0;
	delay_us += delay * 1000;
	delay = delay_us / 1000;
	if (delay_us <= 0 || !(p = calloc(1, sizeof(*p)))) {
		send_now(app, req, r);
		emu_reply_free(r);
		return;
	}
	p->app = app;
	p->req = req;
	p->conn = evhttp_request_get_connection(req);
	p->reply = *r;
	p->timer = evtimer_new(app->base, on_pending_timer, p);
	p->next = app->pending;
	p->prevp = &app->pending;
	if (app->pending)
		app->pending->prevp = &p->next;
	app->pending = p;
	evhttp_connection_set_closecb(p->conn, on_pending_close, p);
	tv.tv_sec = delay_us / 1000000;
	tv.tv_usec = delay_us % 1000000;
	evtimer_add(p->timer, &tv);
}

static const char *method_name(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_PATCH: return "PATCH";
	default: return "OTHER";
	}
}

/* A body as a reverse proxy in front of Odoo would send it. */
static void proxy_reply(struct emu *e, struct emu_reply *r)
{
	const char *reason = reason_for(e->faults.http_status);
	char *html;

	html = emu_printf("<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n"
			  "<center><h1>%d %s</h1></center>\r\n<hr><center>nginx</center>\r\n"
			  "</body>\r\n</html>\r\n", e->faults.http_status, reason,
			  e->faults.http_status, reason);
	emu_reply_text(r, e->faults.http_status, "text/html", html);
	free(html);
	if (e->faults.retry_after >= 0) {
		char ra[16];

		snprintf(ra, sizeof(ra), "%d", e->faults.retry_after);
		r->headers = json_pack("{s:s}", "Retry-After", ra);
	}
}

static void on_odoo_request(struct evhttp_request *req, void *arg)
{
	struct app *app = arg;
	struct emu *e = &app->emu;
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evbuffer *body = evhttp_request_get_input_buffer(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	size_t len = evbuffer_get_length(body);
	struct emu_reply r = {0};

	e->stats.calls++;
	e->cur_method[0] = '\0';
	if (e->faults.http_status && e->faults.http_count != 0) {
		if (e->faults.http_count > 0)
			e->faults.http_count--;
		e->stats.faults++;
		proxy_reply(e, &r);
		send_reply(app, req, &r);
		return;
	}
	emu_rpc_serve(e, method_name(evhttp_request_get_command(req)),
		      path && *path ? path : "/",
		      evhttp_find_header(in, "Content-Type"),
		      evhttp_find_header(in, "Authorization"),
		      evhttp_find_header(in, "X-Odoo-Database"),
		      evhttp_find_header(in, "Cookie"),
		      len ? (const char *)evbuffer_pullup(body, -1) : NULL, len, &r);
	send_reply(app, req, &r);
}

static int bound_port(struct evhttp_bound_socket *h)
{
	struct sockaddr_in sa;
	socklen_t n = sizeof(sa);

	if (getsockname(evhttp_bound_socket_get_fd(h), (struct sockaddr *)&sa, &n) < 0)
		return -1;
	return ntohs(sa.sin_port);
}

static struct evhttp *listen_on(struct app *app, int port, int *bound,
				void (*cb)(struct evhttp_request *, void *))
{
	struct evhttp *http = evhttp_new(app->base);
	struct evhttp_bound_socket *h;

	if (!http)
		return NULL;
	evhttp_set_gencb(http, cb, app);
	evhttp_set_max_body_size(http, MAX_BODY);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
				   EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
				   EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
				   EVHTTP_REQ_PATCH);
	h = evhttp_bind_socket_with_handle(http, "127.0.0.1", (ev_uint16_t)port);
	if (!h) {
		evhttp_free(http);
		return NULL;
	}
	*bound = bound_port(h);
	return http;
}

/* "down": the listener and every connection go, so connects are refused. */
static void odoo_down(struct app *app)
{
	if (!app->odoo)
		return;
	evhttp_free(app->odoo);   /* runs on_pending_close for held replies */
	app->odoo = NULL;
	app->emu.faults.down = true;
}

static int odoo_up(struct app *app)
{
	int port;

	if (app->odoo)
		return 0;
	app->odoo = listen_on(app, app->odoo_port, &port, on_odoo_request);
	if (!app->odoo)
		return -1;
	app->emu.faults.down = false;
	return 0;
}

/* ---- control API ------------------------------------------------------- */

static json_t *faults_state(struct emu *e)
{
	return json_pack("{s:b, s:i, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:O, s:b, s:s, s:i}",
			 "down", e->faults.down, "delay_ms", e->faults.delay_ms,
			 "slow_method", e->faults.slow_method,
			 "http_status", e->faults.http_status, "http_count",
			 e->faults.http_count, "retry_after", e->faults.retry_after,
			 "serialization", e->faults.serialization, "lock",
			 e->faults.lock, "access_denied", e->faults.access_denied,
			 "validation", e->faults.validation, "keep_alive",
			 e->keep_alive, "load_ids", e->faults.load_ids, "load_ids_count",
			 e->faults.load_ids_count);
}

static int count_of(json_t *body)
{
	json_t *c = json_object_get(body, "count");

	return json_is_integer(c) ? (int)json_integer_value(c) : -1;
}

static void transport_clear(struct emu *e)
{
	e->faults.delay_ms = 0;
	e->faults.slow_method[0] = '\0';
	e->faults.http_status = 0;
	e->faults.http_count = 0;
	e->faults.retry_after = -1;
	e->faults.serialization = 0;
	e->faults.lock = 0;
	e->faults.access_denied = 0;
	e->faults.no_create[0] = '\0';
	e->faults.load_ids[0] = '\0';
	e->faults.load_ids_count = 0;
}

/* Applies one POST /control/fault; NULL or an error text. */
static const char *fault_apply(struct app *app, json_t *body)
{
	struct emu *e = &app->emu;
	const char *mode = json_string_value(json_object_get(body, "mode"));
	json_t *v;

	if (!mode)
		return "mode is missing";
	if (strcmp(mode, "none") == 0) {
		transport_clear(e);
		if (odoo_up(app) < 0)
			return "cannot bind the odoo port again";
	} else if (strcmp(mode, "down") == 0) {
		odoo_down(app);
	} else if (strcmp(mode, "slow") == 0) {
		v = json_object_get(body, "delay_ms");
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > 600000)
			return "delay_ms must be an integer from 0 to 600000";
		e->faults.delay_ms = (int)json_integer_value(v);
		v = json_object_get(body, "method");
		if (v && (!json_is_string(v) ||
			  strlen(json_string_value(v)) >= sizeof(e->faults.slow_method)))
			return "method must be a model.method name";
		snprintf(e->faults.slow_method, sizeof(e->faults.slow_method), "%s",
			 v ? json_string_value(v) : "");
	} else if (strcmp(mode, "http_status") == 0) {
		v = json_object_get(body, "status");
		if (!json_is_integer(v) || json_integer_value(v) < 200 ||
		    json_integer_value(v) > 599)
			return "status must be an integer from 200 to 599";
		e->faults.http_status = (int)json_integer_value(v);
		e->faults.http_count = count_of(body);
		v = json_object_get(body, "retry_after");
		e->faults.retry_after = json_is_integer(v) ? (int)json_integer_value(v) : -1;
	} else if (strcmp(mode, "serialization") == 0) {
		e->faults.serialization = count_of(body);
	} else if (strcmp(mode, "lock") == 0) {
		e->faults.lock = count_of(body);
	} else if (strcmp(mode, "access_denied") == 0) {
		e->faults.access_denied = count_of(body);
	} else if (strcmp(mode, "no_create") == 0) {
		v = json_object_get(body, "model");
		if (!json_is_string(v) || strlen(json_string_value(v)) >= sizeof(e->faults.no_create))
			return "no_create needs a model";
		snprintf(e->faults.no_create, sizeof(e->faults.no_create), "%s",
			 json_string_value(v));
	} else if (strcmp(mode, "validation") == 0) {
		json_t *rule;

		if (!json_is_string(json_object_get(body, "field")) ||
		    !json_object_get(body, "value"))
			return "validation needs field and value";
		rule = json_pack("{s:O, s:O}", "field", json_object_get(body, "field"),
				 "value", json_object_get(body, "value"));
		v = json_object_get(body, "message");
		json_object_set_new(rule, "message", json_is_string(v) ? json_incref(v)
					: json_sprintf("Invalid value for %s",
						       json_string_value(json_object_get(body, "field"))));
		if (json_is_string(json_object_get(body, "model")))
			json_object_set(rule, "model", json_object_get(body, "model"));
		json_array_append_new(e->faults.validation, rule);
	} else if (strcmp(mode, "load_ids") == 0) {
		v = json_object_get(body, "ids");
		if (!json_is_string(v) || (strcmp(json_string_value(v), "short") != 0 &&
					   strcmp(json_string_value(v), "false") != 0))
			return "load_ids needs ids \"short\" or \"false\"";
		snprintf(e->faults.load_ids, sizeof(e->faults.load_ids), "%s",
			 json_string_value(v));
		e->faults.load_ids_count = count_of(body);
	} else if (strcmp(mode, "clear_validation") == 0) {
		json_array_clear(e->faults.validation);
	} else {
		return "unknown mode";
	}
	return NULL;
}

static void stats_reset(struct emu *e)
{
	json_decref(e->stats.by_method);
	json_decref(e->stats.load_context);
	memset(&e->stats, 0, sizeof(e->stats));
	e->stats.by_method = json_object();
}

static json_t *cost_state(struct emu *e)
{
	return json_pack("{s:b, s:I, s:I, s:I}", "on", e->cost.on, "call_us",
			 (json_int_t)e->cost.call_us, "create_row_us",
			 (json_int_t)e->cost.create_row_us, "update_row_us",
			 (json_int_t)e->cost.update_row_us);
}

/*
 * POST /control/cost {"on": true|false, "call_us", "create_row_us",
 * "update_row_us"}: turns the cost model on (with the defaults for what is
 * not given) or off; NULL or an error text.
 */
static const char *cost_apply(struct emu *e, json_t *body)
{
	static const char *const keys[] = {"call_us", "create_row_us", "update_row_us"};
	long *vals[] = {&e->cost.call_us, &e->cost.create_row_us, &e->cost.update_row_us};
	const long dflt[] = {EMU_COST_CALL_US, EMU_COST_CREATE_ROW_US, EMU_COST_UPDATE_ROW_US};
	json_t *on = json_object_get(body, "on");

	if (on && !json_is_boolean(on))
		return "on must be true or false";
	for (size_t i = 0; i < 3; i++) {
		json_t *v = json_object_get(body, keys[i]);

		if (v && (!json_is_integer(v) || json_integer_value(v) < 0 ||
			  json_integer_value(v) > 10000000))
			return "costs must be integers from 0 to 10000000 (microseconds)";
	}
	e->cost.on = on ? json_is_true(on) : true;
	for (size_t i = 0; i < 3; i++) {
		json_t *v = json_object_get(body, keys[i]);

		*vals[i] = v ? (long)json_integer_value(v) : dflt[i];
	}
	e->cost.busy_until_us = 0;
	return NULL;
}

static void control_reply(struct app *app, struct evhttp_request *req,
			  int status, json_t *doc)
{
	struct emu_reply r = {0};

	emu_reply_json(&r, status, doc);
	send_now(app, req, &r);
	emu_reply_free(&r);
}

static json_t *control_error(const char *msg)
{
	return json_pack("{s:s}", "error", msg);
}

static void on_control_request(struct evhttp_request *req, void *arg)
{
	struct app *app = arg;
	struct emu *e = &app->emu;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : "";
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	json_t *body = NULL, *pdoc = NULL;
	const char *err;
	int pstatus;

	if (!path)
		path = "";
	if (cmd == EVHTTP_REQ_POST) {
		body = len ? json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, NULL)
			   : json_object();
		if (!json_is_object(body)) {
			json_decref(body);
			control_reply(app, req, 400, control_error("body must be a JSON object"));
			return;
		}
	}
	if (cmd == EVHTTP_REQ_POST && strcmp(path, "/control/fault") == 0) {
		err = fault_apply(app, body);
		control_reply(app, req, err ? 400 : 200,
			      err ? control_error(err)
				  : json_pack("{s:b, s:o}", "ok", 1, "faults", faults_state(e)));
	} else if (strcmp(path, "/control/cost") == 0 &&
		   (cmd == EVHTTP_REQ_POST || cmd == EVHTTP_REQ_GET)) {
		const char *bad = cmd == EVHTTP_REQ_POST ? cost_apply(e, body) : NULL;

		control_reply(app, req, bad ? 400 : 200, bad ? control_error(bad) : cost_state(e));
	} else if (cmd == EVHTTP_REQ_GET && strcmp(path, "/control/fault") == 0) {
		control_reply(app, req, 200, faults_state(e));
	} else if (cmd == EVHTTP_REQ_GET && strcmp(path, "/control/records") == 0) {
		struct evkeyvalq q = {0};
		const char *model;
		json_t *recs;

		evhttp_parse_query_str(query ? query : "", &q);
		model = evhttp_find_header(&q, "model");
		recs = model ? emu_records_dump(e, model) : NULL;
		control_reply(app, req, recs ? 200 : 404,
			      recs ? recs : control_error("unknown or missing model"));
		evhttp_clear_headers(&q);
	} else if (cmd == EVHTTP_REQ_GET && strcmp(path, "/control/stats") == 0) {
		control_reply(app, req, 200,
			      json_pack("{s:I, s:O, s:I, s:I, s:I, s:I, s:I, s:O?}", "calls",
					(json_int_t)e->stats.calls, "calls_by_method",
					e->stats.by_method, "writes",
					(json_int_t)e->stats.writes, "records_written",
					(json_int_t)e->stats.records_written, "faults",
					(json_int_t)e->stats.faults, "load_rows",
					(json_int_t)e->stats.load_rows, "load_first_us",
					(json_int_t)e->stats.load_first_us, "load_context",
					e->stats.load_context));
	} else if (cmd == EVHTTP_REQ_POST && strcmp(path, "/control/stats") == 0) {
		stats_reset(e); /* the counters only: records stay */
		control_reply(app, req, 200, json_pack("{s:b}", "ok", 1));
	} else if (cmd == EVHTTP_REQ_POST && strcmp(path, "/control/reset") == 0) {
		/* as if restarted: records, stats, sessions, faults, keep-alive,
		 * cost model */
		transport_clear(e);
		memset(&e->cost, 0, sizeof(e->cost));
		e->keep_alive = false;
		json_array_clear(e->faults.validation);
		json_object_clear(e->sessions);
		stats_reset(e);
		emu_poll_reset(e);
		if (emu_db_seed(e) < 0 || odoo_up(app) < 0) {
			emu_error_clear(e);
			control_reply(app, req, 500, control_error("reset failed"));
		} else {
			control_reply(app, req, 200, json_pack("{s:b}", "ok", 1));
		}
	} else if (emu_poll_control(e, cmd == EVHTTP_REQ_POST, path, body, &pstatus, &pdoc)) {
		control_reply(app, req, pstatus, pdoc);
	} else if (cmd == EVHTTP_REQ_POST && strcmp(path, "/control/keepalive") == 0) {
		e->keep_alive = emu_truthy(json_object_get(body, "enabled"));
		control_reply(app, req, 200, json_pack("{s:b, s:b}", "ok", 1,
						       "keep_alive", e->keep_alive));
	} else {
		control_reply(app, req, 404, control_error("no such control endpoint"));
	}
	json_decref(body);
}

/* ---- process ----------------------------------------------------------- */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopbreak(arg);
}

/* Written whole then renamed: a test polling for it never reads half. */
static int write_port_file(const char *path, int odoo, int control)
{
	char *tmp = emu_printf("%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	int rc = -1;

	if (!f)
		goto out;
	fprintf(f, "%d %d\n", odoo, control);
	if (fclose(f) != 0)
		goto out;
	if (rename(tmp, path) == 0)
		rc = 0;
out:
	if (rc < 0)
		fprintf(stderr, "odoo-emulator: cannot write port file %s: %s\n",
			path, strerror(errno));
	free(tmp);
	return rc;
}

static void usage(FILE *f)
{
	fputs("usage: odoo-emulator [--port N] [--control-port N] [--port-file FILE]\n"
	      "                     [--version 16|17|18|19] [--db NAME]\n"
	      "                     [--user LOGIN:PASSWORD] [--api-key LOGIN:KEY]...\n"
	      "                     [--latency-ms N]\n", f);
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

/* LOGIN:SECRET into two strings; the secret may hold colons. */
static int split_pair(const char *s, char **a, char **b)
{
	const char *colon = strchr(s, ':');

	if (!colon || colon == s || !colon[1])
		return -1;
	*a = strndup(s, (size_t)(colon - s));
	*b = strdup(colon + 1);
	return *a && *b ? 0 : -1;
}

static int parse_args(struct app *app, int argc, char **argv,
		      const char **port_file)
{
	static const struct option opts[] = {
		{"port", required_argument, NULL, 'p'},
		{"control-port", required_argument, NULL, 'c'},
		{"port-file", required_argument, NULL, 'f'},
		{"version", required_argument, NULL, 'v'},
		{"db", required_argument, NULL, 'd'},
		{"user", required_argument, NULL, 'u'},
		{"api-key", required_argument, NULL, 'k'},
		{"latency-ms", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	struct emu *e = &app->emu;
	char *a, *b;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_int(optarg, 0, 65535, &app->odoo_port) < 0)
				goto bad;
			break;
		case 'c':
			if (parse_int(optarg, 0, 65535, &app->control_port) < 0)
				goto bad;
			break;
		case 'f':
			*port_file = optarg;
			break;
		case 'v':
			if (parse_int(optarg, 16, 19, &e->version) < 0)
				goto bad;
			break;
		case 'd':
			free(e->db);
			e->db = emu_strdup(optarg);
			break;
		case 'u':
			if (split_pair(optarg, &a, &b) < 0)
				goto bad;
			free(e->admin_login);
			free(e->admin_password);
			e->admin_login = a;
			e->admin_password = b;
			break;
		case 'k':
			if (split_pair(optarg, &a, &b) < 0)
				goto bad;
			json_array_append_new(e->api_keys, json_pack("[s, s]", a, b));
			free(a);
			free(b);
			break;
		case 'l':
			if (parse_int(optarg, 0, 600000, &e->latency_ms) < 0)
				goto bad;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -1;
	}
	return 0;
bad:
	fprintf(stderr, "odoo-emulator: invalid option value: %s\n", optarg);
	return -1;
}

int main(int argc, char **argv)
{
	struct app app = {0};
	struct emu *e = &app.emu;
	const char *port_file = NULL;
	struct event *sigterm = NULL, *sigint = NULL;
	int rc = 1;

	signal(SIGPIPE, SIG_IGN);
	e->version = 18;
	e->db = emu_strdup("odoo");
	e->admin_login = emu_strdup("admin");
	e->admin_password = emu_strdup("admin");
	e->api_keys = json_array();
	e->sessions = json_object();
	e->faults.validation = json_array();
	e->faults.retry_after = -1;
	e->stats.by_method = json_object();
	if (parse_args(&app, argc, argv, &port_file) < 0)
		goto out;
	if (emu_db_seed(e) < 0) {
		fprintf(stderr, "odoo-emulator: cannot seed the records: %s\n",
			e->err.message);
		goto out;
	}
	app.base = event_base_new();
	if (!app.base) {
		fputs("odoo-emulator: cannot create the event loop\n", stderr);
		goto out;
	}
	app.odoo = listen_on(&app, app.odoo_port, &app.odoo_port, on_odoo_request);
	if (!app.odoo) {
		fprintf(stderr, "odoo-emulator: cannot listen on 127.0.0.1:%d\n",
			app.odoo_port);
		goto out;
	}
	app.control = listen_on(&app, app.control_port, &app.control_port,
				on_control_request);
	if (!app.control) {
		fprintf(stderr, "odoo-emulator: cannot listen on 127.0.0.1:%d\n",
			app.control_port);
		goto out;
	}
	sigterm = evsignal_new(app.base, SIGTERM, on_signal, app.base);
	sigint = evsignal_new(app.base, SIGINT, on_signal, app.base);
	if (!sigterm || !sigint || evsignal_add(sigterm, NULL) < 0 ||
	    evsignal_add(sigint, NULL) < 0) {
		fputs("odoo-emulator: cannot handle signals\n", stderr);
		goto out;
	}
	if (port_file && write_port_file(port_file, app.odoo_port, app.control_port) < 0)
		goto out;
	printf("%d %d\n", app.odoo_port, app.control_port);
	fflush(stdout);
	if (event_base_dispatch(app.base) < 0) {
		fputs("odoo-emulator: the event loop failed\n", stderr);
		goto out;
	}
	rc = 0;
out:
	if (sigterm)
		event_free(sigterm);
	if (sigint)
		event_free(sigint);
	if (app.odoo)
		evhttp_free(app.odoo);
	while (app.pending)
		pending_free(app.pending);
	if (app.control)
		evhttp_free(app.control);
	if (app.base)
		event_base_free(app.base);
	emu_db_free(e->data);
	emu_poll_reset(e);
	emu_error_clear(e);
	json_decref(e->api_keys);
	json_decref(e->sessions);
	json_decref(e->faults.validation);
	json_decref(e->stats.by_method);
	free(e->db);
	free(e->admin_login);
	free(e->admin_password);
	return rc;
}
