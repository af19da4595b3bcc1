/*
 * Unit tests for lib/odoo_client.c (and lib/http_client.c under it).
 *
 * A small evhttp server on 127.0.0.1, port 0, on the same event_base as the
 * client, answers canned Odoo responses. The first path segment of the
 * client's URL picks the server's behaviour ("http://127.0.0.1:P/<mode>"),
 * so the client's paths arrive as /<mode>/jsonrpc, /<mode>/web/version, ...
 * Every wait runs the loop until the callbacks fired, bounded by a deadline
 * event, so a broken client fails a check instead of hanging.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "check.h"
#include "odoo_relay/error.h"
#include "odoo_relay/odoo_client.h"

#define KEY "k3y-0f-the-relay-bot-8c1f"
#define DEADLINE_MS 10000

static struct event_base *base;

/* What the server saw. */
static struct server {
	struct evhttp *http;
	int port;
	int version_web, version_rpc, logins, execs, json2, contexts;
	int deny_left;                 /* mode "deny1": AccessDenied answers to give */
	int bad_gets;                  /* /web/version not a GET, or with a body */
	json_t *last_args;             /* params.args of the last execute_kw */
	json_t *last_json2;            /* body of the last /json/2 call */
	char last_auth[128], last_db[64], last_path[128];
} srv;

static void
reply(struct evhttp_request *req, int code, const char *ct, const char *body,
      const char *retry_after)
{
	struct evbuffer *b = evbuffer_new();

	evbuffer_add(b, body, strlen(body));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ct);
	if (retry_after)
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", retry_after);
	evhttp_send_reply(req, code, "canned", b);
	evbuffer_free(b);
}

static void
reply_json(struct evhttp_request *req, int code, json_t *j)
{
	char *s = json_dumps(j, 0);

	reply(req, code, "application/json; charset=utf-8", s, NULL);
	free(s);
	json_decref(j);
}

static void
rpc_result(struct evhttp_request *req, json_t *result)
{
	reply_json(req, 200, json_pack("{s:s,s:i,s:o}", "jsonrpc", "2.0", "id", 1, "result", result));
}

static void
rpc_error(struct evhttp_request *req, const char *name, const char *message)
{
	reply_json(req, 200, json_pack("{s:s,s:i,s:{s:i,s:s,s:{s:s,s:s,s:s,s:[s],s:{}}}}",
	                               "jsonrpc", "2.0", "id", 1, "error", "code", 200,
	                               "message", "Odoo Server Error", "data", "name", name,
	                               "debug", "Traceback (most recent call last):\n  File x\n",
	                               "message", message, "arguments", message, "context"));
}

/* A big answer; chunked (no Content-Length) so only the write callback
 * can notice the size, or with a Content-Length announced up front. */
static void
reply_big(struct evhttp_request *req, int chunked)
{
	struct evbuffer *b = evbuffer_new();
	int i;

	evbuffer_add_printf(b, "{\"jsonrpc\": \"2.0\", \"id\": 1, \"result\": [");
	for (i = 0; i < 8000; i++)
		evbuffer_add_printf(b, "%s%d", i ? ", " : "", i);
	evbuffer_add_printf(b, "]}");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	if (chunked) {
		evhttp_send_reply_start(req, 200, "OK");
		evhttp_send_reply_chunk(req, b);
		evhttp_send_reply_end(req);
	} else {
		evhttp_send_reply(req, 200, "OK", b);
	}
	evbuffer_free(b);
}

static void
on_jsonrpc(struct evhttp_request *req, const char *mode, json_t *body)
{
	json_t *params = json_object_get(body, "params"), *args = json_object_get(params, "args");
	const char *service = json_string_value(json_object_get(params, "service"));
	const char *method = json_string_value(json_object_get(params, "method"));
	const char *key;

	if (!service || !method) {
		reply(req, 400, "text/html", "Invalid JSON-RPC data", NULL);
		return;
	}
	if (strcmp(service, "common") == 0 && strcmp(method, "version") == 0) {
		srv.version_rpc++;
		rpc_result(req, json_pack("{s:s,s:[i,i,i,s,i,s],s:s,s:i}", "server_version", "18.0",
		                          "server_version_info", 18, 0, 0, "final", 0, "",
		                          "server_serie", "18.0", "protocol_version", 1));
		return;
	}
	if (strcmp(service, "common") == 0 && strcmp(method, "login") == 0) {
		srv.logins++;
		key = json_string_value(json_array_get(args, 2));
		if (strcmp(mode, "badlogin") == 0 || !key ||
		    (strcmp(key, KEY) != 0 && strcmp(mode, "anykey") != 0))
			rpc_result(req, json_false());
		else
			rpc_result(req, json_integer(2));
		return;
	}
	if (strcmp(service, "object") != 0 || strcmp(method, "execute_kw") != 0) {
		rpc_error(req, "builtins.KeyError", service);
		return;
	}
	srv.execs++;
	json_decref(srv.last_args);
	srv.last_args = json_incref(args);
	key = json_string_value(json_array_get(args, 2));
	if (!key || (strcmp(key, KEY) != 0 && strcmp(mode, "anykey") != 0) ||
	    strcmp(mode, "deny") == 0 ||
	    (strcmp(mode, "deny1") == 0 && srv.deny_left-- > 0)) {
		rpc_error(req, "odoo.exceptions.AccessDenied", "Access Denied");
	} else if (strcmp(mode, "busy") == 0) {
		reply(req, 503, "text/html", "<html><h1>503 Service Unavailable</h1></html>", "7");
	} else if (strcmp(mode, "hang") == 0 ||
	           (strcmp(mode, "mixed") == 0 &&
	            strcmp(json_string_value(json_array_get(args, 4)), "slow") == 0)) {
		/* never answer: the client's timeout must fire */
	} else if (strcmp(mode, "big") == 0 || strcmp(mode, "bigchunked") == 0) {
		reply_big(req, strcmp(mode, "bigchunked") == 0);
	} else if (strcmp(mode, "loadbad") == 0) {
		rpc_result(req, json_pack("{s:b,s:[{s:{s:i,s:i},s:s,s:s,s:s}],s:i}", "ids", 0,
		                          "messages", "rows", "from", 0, "to", 0, "type", "error",
		                          "field", "parent_id", "message",
		                          "No matching record found for external id 'relay.nope'",
		                          "nextrow", 0));
	} else {
		rpc_result(req, json_integer(42));
	}
}

static void
on_json2(struct evhttp_request *req, const char *mode, const char *rest, json_t *body)
{
	const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	const char *db = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Odoo-Database");

	srv.json2++;
	snprintf(srv.last_auth, sizeof srv.last_auth, "%s", auth ? auth : "");
	snprintf(srv.last_db, sizeof srv.last_db, "%s", db ? db : "");
	snprintf(srv.last_path, sizeof srv.last_path, "%s", rest);
	json_decref(srv.last_json2);
	srv.last_json2 = json_incref(body);
	if (!auth || strcmp(auth, "bearer " KEY) != 0) {
		reply_json(req, 401, json_pack("{s:s,s:s,s:[s],s:{}}", "name",
		                               "werkzeug.exceptions.Unauthorized", "message",
		                               "Invalid apikey", "arguments", "Invalid apikey",
		                               "context"));
		return;
	}
	if (strcmp(rest, "/json/2/res.users/context_get") == 0) {
		srv.contexts++;
		reply_json(req, 200, json_pack("{s:s,s:s}", "lang", "en_US", "tz", "Europe/Brussels"));
		return;
	}
	reply_json(req, 200, json_pack("[i]", 7));
}

static void
handle(struct evhttp_request *req, void *arg)
{
	const char *uri = evhttp_request_get_uri(req), *rest;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	char mode[32];
	json_t *body = NULL;

	rest = uri[0] == '/' ? strchr(uri + 1, '/') : NULL;
	if (!rest || (size_t)(rest - uri - 1) >= sizeof mode) {
		reply(req, 404, "text/html", "<h1>Not Found</h1>", NULL);
		return;
	}
	memcpy(mode, uri + 1, (size_t)(rest - uri - 1));
	mode[rest - uri - 1] = '\0';
	if (len)
		body = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, NULL);

	if (strcmp(rest, "/web/version") == 0) {
		srv.version_web++;
		if (evhttp_request_get_command(req) != EVHTTP_REQ_GET || len > 0)
			srv.bad_gets++;
		if (strcmp(mode, "v19") == 0)
			reply_json(req, 200, json_pack("{s:[i,i,i,s,i,s],s:s}", "version_info",
			                               19, 0, 0, "final", 0, "", "version", "19.0"));
		else if (strcmp(mode, "saas") == 0)
			reply_json(req, 200, json_pack("{s:[s,i,i,s,i,s],s:s}", "version_info",
			                               "saas~18", 3, 0, "final", 0, "",
			                               "version", "saas~18.3+e"));
		else
			reply(req, 404, "text/html", "<h1>Not Found</h1>", NULL);
	} else if (strcmp(rest, "/jsonrpc") == 0) {
		on_jsonrpc(req, mode, body);
	} else if (strncmp(rest, "/json/2/", 8) == 0) {
		if (strcmp(mode, "v18json2") == 0)
			reply(req, 303, "text/html", "<title>Redirecting...</title>", NULL);
		else
			on_json2(req, mode, rest, body);
	} else {
		reply(req, 404, "text/html", "<h1>Not Found</h1>", NULL);
	}
	json_decref(body);
}

static int
server_start(void)
{
	struct evhttp_bound_socket *bs;
	struct sockaddr_in sa;
	socklen_t sl = sizeof sa;

	memset(&srv, 0, sizeof srv);
	if (!(srv.http = evhttp_new(base)))
		return -1;
	evhttp_set_gencb(srv.http, handle, NULL);
	if (!(bs = evhttp_bind_socket_with_handle(srv.http, "127.0.0.1", 0)))
		return -1;
	if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl) != 0)
		return -1;
	srv.port = ntohs(sa.sin_port);
	return 0;
}

static void
server_reset(void)
{
	srv.version_web = srv.version_rpc = srv.logins = srv.execs = srv.json2 = 0;
	srv.contexts = srv.deny_left = srv.bad_gets = 0;
	json_decref(srv.last_args);
	json_decref(srv.last_json2);
	srv.last_args = srv.last_json2 = NULL;
	srv.last_auth[0] = srv.last_db[0] = srv.last_path[0] = '\0';
}

/* What one callback got. */
struct got {
	int fired;
	int klass, scope;
	char *error_name, *message, *request;
	int64_t retry_after_ms;
	enum relay_odoo_protocol protocol;
	int server_major;
	unsigned relogins;
	json_t *result;
};

static void
got_clear(struct got *g)
{
	free(g->error_name);
	free(g->message);
	free(g->request);
	json_decref(g->result);
	memset(g, 0, sizeof *g);
}

static void
on_result(struct relay_odoo_result *r, void *arg)
{
	struct got *g = arg;

	g->fired++;
	g->klass = r->outcome.klass;
	g->scope = r->outcome.scope;
	g->error_name = r->outcome.error_name ? strdup(r->outcome.error_name) : NULL;
	g->message = r->outcome.message ? strdup(r->outcome.message) : NULL;
	g->request = r->request ? strdup(r->request) : NULL;
	g->retry_after_ms = r->outcome.retry_after_ms;
	g->protocol = r->protocol;
	g->server_major = r->server_major;
	g->relogins = r->relogins;
	/* Take the result, as the contract allows. */
	g->result = r->outcome.result;
	r->outcome.result = NULL;
}

static int expired;

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	expired = 1;
	event_base_loopbreak(base);
}

/* Run the loop until pred(arg) holds or the deadline passes. */
static int
run_until(int (*pred)(void *), void *arg)
{
	struct timeval tv = { DEADLINE_MS / 1000, (DEADLINE_MS % 1000) * 1000 };
	struct event *deadline = evtimer_new(base, on_deadline, NULL);

	expired = 0;
	evtimer_add(deadline, &tv);
	while (!pred(arg) && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(deadline);
	return !expired;
}

struct gots {
	struct got *const *gs;
	size_t n;
};

static int
all_fired(void *arg)
{
	const struct gots *w = arg;
	size_t i;

	for (i = 0; i < w->n; i++)
		if (!w->gs[i]->fired)
			return 0;
	return 1;
}

/* Run the loop until every callback in gs has fired, or the deadline. */
static int
wait_for(struct got *const *gs, size_t n)
{
	struct gots w = { gs, n };

	return run_until(all_fired, &w);
}

static int
server_has_exec(void *arg)
{
	return srv.execs > 0;
}

static int
wait1(struct got *g)
{
	struct got *gs[1] = { g };

	return wait_for(gs, 1);
}

static struct relay_odoo_conf
conf_for(const char *mode, enum relay_odoo_protocol proto)
{
	static char url[128];
	struct relay_odoo_conf c;

	snprintf(url, sizeof url, "http://127.0.0.1:%d/%s", srv.port, mode);
	memset(&c, 0, sizeof c);
	c.configured = 1;
	c.url = url;
	c.database = "relaytest";
	c.login = "relaybot";
	c.api_key.data = (unsigned char *)KEY;
	c.api_key.len = strlen(KEY);
	c.protocol = proto;
	c.connect_timeout_ms = 2000;
	c.timeout_ms = 8000;
	c.max_in_flight = 4;
	c.max_response_bytes = 1 << 20;
	return c;
}

static struct relay_odoo *
client(const struct relay_odoo_conf *c)
{
	struct relay_odoo *o = NULL;

	CHECK_INT(relay_odoo_new(base, c, &o), 0);
	return o;
}

static int
no_key(const char *s)
{
	return s == NULL || strstr(s, KEY) == NULL;
}

/*
 * The kept request masks the key as a JSON string wherever it is: a key
 * that JSON escapes, a key of one byte (shorter than its mask), the key as
 * a value of the call; a value that only contains it is left alone.
 */
static void
test_request_masked(void)
{
	/* ",2," would also match across the strings around the uid (2) */
	static const char *const keys[] = { "q\"uo\\te/k", "k", ",2," };

	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		struct relay_odoo_conf c = conf_for("anykey", RELAY_PROTO_JSONRPC);
		struct relay_odoo *o;
		struct got g = { 0 };
		json_t *named, *req, *args, *vals;
		char *enc;

		c.api_key.data = (unsigned char *)keys[i];
		c.api_key.len = strlen(keys[i]);
		if (!(o = client(&c)))
			continue;
		named = json_pack("{s:{s:s,s:s+}}", "vals", "name", keys[i], "ref", "x-", keys[i]);
		server_reset();
		CHECK_INT(relay_odoo_call(o, "res.partner", "create", NULL, named, on_result, &g), 0);
		CHECK(wait1(&g));
		CHECK_INT(g.klass, RELAY_CLASS_DONE);
		/* the key was sent */
		CHECK_STR(json_string_value(json_array_get(srv.last_args, 2)), keys[i]);
		req = g.request ? json_loads(g.request, 0, NULL) : NULL;
		CHECK(req != NULL);
		args = json_object_get(json_object_get(req, "params"), "args");
		CHECK_STR(json_string_value(json_array_get(args, 0)), "relaytest");
		CHECK_INT(json_integer_value(json_array_get(args, 1)), 2);
		CHECK_STR(json_string_value(json_array_get(args, 2)), "***");
		vals = json_object_get(json_array_get(args, 6), "vals"); /* a keyword of create */
		CHECK_STR(json_string_value(json_object_get(vals, "name")), "***");
		CHECK(json_string_value(json_object_get(vals, "ref")) &&
		      strcmp(json_string_value(json_object_get(vals, "ref")) + 2, keys[i]) == 0);
		json_t *ks = json_string(keys[i]);

		enc = json_dumps(ks, JSON_ENCODE_ANY);
		json_decref(ks);
		if (i == 0)
			CHECK(g.request && enc && !strstr(g.request, enc) && !strstr(g.request, keys[i]));
		free(enc);
		json_decref(req);
		json_decref(named);
		relay_odoo_free(o);
		got_clear(&g);
	}
}

static void
test_jsonrpc_call(void)
{
	struct relay_odoo_conf c = conf_for("ok", RELAY_PROTO_JSONRPC);
	struct relay_odoo *o = client(&c);
	json_t *ids = json_pack("[i]", 7);
	json_t *named = json_pack("{s:{s:s},s:{s:s}}", "vals", "name", "Relay Test 1",
	                          "context", "lang", "en_US");
	/* write's vals go positionally after the ids, as capture 111 sends
	 * them; the rest stays a keyword argument. */
	json_t *want = json_pack("[s,i,s,s,s,[[i],{s:s}],{s:{s:s}}]", "relaytest", 2, KEY,
	                         "res.partner", "write", 7, "name", "Relay Test 1", "context",
	                         "lang", "en_US");
	struct got g = { 0 }, g2 = { 0 };

	server_reset();
	CHECK_INT(relay_odoo_call(o, "res.partner", "write", ids, named, on_result, &g), 0);
	CHECK_INT(g.fired, 0); /* never from inside the call */
	CHECK_INT(relay_odoo_in_flight(o), 1);
	CHECK(wait1(&g));
	CHECK_INT(g.fired, 1);
	CHECK_INT(g.klass, RELAY_CLASS_DONE);
	CHECK_INT(json_integer_value(g.result), 42);
	CHECK_INT(g.protocol, RELAY_PROTO_JSONRPC);
	CHECK_INT(srv.logins, 1);
	CHECK_INT(srv.execs, 1);
	CHECK(json_equal(srv.last_args, want));
	/* The kept request: the call as sent, with the key masked. */
	CHECK(g.request && strstr(g.request, "\"execute_kw\"") && strstr(g.request, "\"***\""));
	CHECK(g.request && no_key(g.request));
	CHECK_INT(relay_odoo_in_flight(o), 0);

	/* The uid is cached: no second login. No ids: args is []. */
	CHECK_INT(relay_odoo_call(o, "res.partner", "create", NULL, NULL, on_result, &g2), 0);
	CHECK(wait1(&g2));
	CHECK_INT(g2.klass, RELAY_CLASS_DONE);
	CHECK_INT(srv.logins, 1);
	CHECK_INT(json_array_size(json_array_get(srv.last_args, 5)), 0);
	CHECK(json_is_object(json_array_get(srv.last_args, 6)));
	CHECK_INT(json_object_size(json_array_get(srv.last_args, 6)), 0);

	got_clear(&g);
	got_clear(&g2);
	json_decref(ids);
	json_decref(named);
	json_decref(want);
	relay_odoo_free(o);
}

static void
test_login_false(void)
{
	struct relay_odoo_conf c = conf_for("badlogin", RELAY_PROTO_JSONRPC);
	struct relay_odoo *o = client(&c);
	struct got g1 = { 0 }, g2 = { 0 };
	struct got *gs[2] = { &g1, &g2 };

	server_reset();
	CHECK_INT(relay_odoo_call(o, "res.partner", "create", NULL, NULL, on_result, &g1), 0);
	CHECK_INT(relay_odoo_call(o, "res.partner", "create", NULL, NULL, on_result, &g2), 0);
	CHECK_INT(relay_odoo_in_flight(o), 2);
	CHECK(wait_for(gs, 2));
	CHECK_INT(srv.logins, 1); /* one login shared by the waiting calls */
	CHECK_INT(srv.execs, 0);
	CHECK_INT(g1.klass, RELAY_CLASS_CONFIG);
	CHECK_INT(g1.scope, RELAY_SCOPE_TARGET);
	CHECK_STR(g1.error_name, "odoo.login");
	CHECK_STR(g1.message, "login failed for relaybot on database relaytest");
	CHECK(g1.request == NULL);
	CHECK_INT(g2.klass, RELAY_CLASS_CONFIG);
	CHECK_STR(g2.error_name, "odoo.login");
	CHECK_INT(relay_odoo_in_flight(o), 0);
	got_clear(&g1);
	got_clear(&g2);
	relay_odoo_free(o);
}

static void
test_relogin_once(void)
{
	struct relay_odoo_conf c = conf_for("deny1", RELAY_PROTO_JSONRPC);
	struct relay_odoo *o = client(&c);
	struct got g = { 0 };

	server_reset();
	srv.deny_left = 1;
	CHECK_INT(relay_odoo_call(o, "res.partner", "write", NULL, NULL, on_result, &g), 0);
	CHECK(wait1(&g));
	CHECK_INT(g.klass, RELAY_CLASS_DONE);
	CHECK_INT(json_integer_value(g.result), 42);
	CHECK_INT(srv.logins, 2); /* the first, and exactly one again */
	CHECK_INT(srv.execs, 2);
	CHECK_INT(g.relogins, 1);
	got_clear(&g);
	relay_odoo_free(o);
}

static void
test_denied_twice(void)
{
	struct relay_odoo_conf c = conf_for("deny", RELAY_PROTO_JSONRPC);
	struct relay_odoo *o = client(&c);
	struct got g = { 0 };

	server_reset();
	CHECK_INT(relay_odoo_call(o, "res.partner", "write", NULL, NULL, on_result, &g), 0);
	CHECK(wait1(&g));
	CHECK_INT(g.klass, RELAY_CLASS_CONFIG);
	CHECK_INT(g.scope, RELAY_SCOPE_TARGET);
	CHECK_STR(g.error_name, "odoo.exceptions.AccessDenied");
	CHECK_INT(srv.logins, 2);
	CHECK_INT(srv.execs, 2);
	CHECK_INT(g.relogins, 1);
	CHECK(no_key(g.request) && no_key(g.message));
	got_clear(&g);
	relay_odoo_free(o);
}

static void
test_json2(void)
{
	struct relay_odoo_conf c = conf_for("ok", RELAY_PROTO_JSON2);
	struct relay_odoo *o = client(&c);
	json_t *named = json_pack("{s:[{s:s}],s:{s:s}}", "vals_list", "name", "A",
	                          "context", "lang", "en_US");
	json_t *ids = json_pack("[i,i]", 3, 4);
	json_t *want = json_pack("{s:[{s:s}],s:{s:s},s:[i,i]}", "vals_list", "name", "A",
	                         "context", "lang", "en_US", "ids", 3, 4);
	struct got g = { 0 }, g2 = { 0 };

	server_reset();
	CHECK_INT(relay_odoo_call(o, "res.partner", "create", NULL, named, on_result, &g), 0);
	CHECK(wait1(&g));
	CHECK_INT(g.klass, RELAY_CLASS_DONE);
	CHECK_INT(json_integer_value(json_array_get(g.result, 0)), 7);
	CHECK_INT(g.protocol, RELAY_PROTO_JSON2);
	CHECK_STR(srv.last_auth, "bearer " KEY);
	CHECK_STR(srv.last_db, "relaytest");
	CHECK_STR(srv.last_path, "/json/2/res.partner/create");
	CHECK(json_equal(srv.last_json2, named));
	CHECK_INT(srv.logins, 0); /* JSON-2 needs no login */
	CHECK(g.request && strncmp(g.request, "POST /json/2/res.partner/create\n{", 33) == 0);
	CHECK(no_key(g.request));

	CHECK_INT(relay_odoo_call(o, "res.partner", "write", ids, named, on_result, &g2), 0);
	CHECK(wait1(&g2));
	CHECK_INT(g2.klass, RELAY_CLASS_DONE);
	CHECK_STR(srv.last_path, "/json/2/res.partner/write");
	CHECK(json_equal(srv.last_json2, want));
	/* the caller's object is not changed by adding ids */
	CHECK(json_object_get(named, "ids") == NULL);
	got_clear(&g);
	got_clear(&g2);
	json_decref(named);
	json_decref(ids);
	json_decref(want);
	relay_odoo_free(o);
}

static void
test_json2_bad_key(void)
{
	struct relay_odoo_conf c = conf_for("ok", RELAY_PROTO_JSON2);
	struct relay_odoo *o;
	struct got g = { 0 };

	c.api_key.data = (unsigned char *)"expired-key";
	c.api_key.len = strlen("expired-key");
	o = client(&c);
	server_reset();
	CHECK_INT(relay_odoo_call(o, "res.partner", "create", NULL, NULL, on_result, &g), 0);
	CHECK(wait1(&g));
	CHECK_INT(g.klass, RELAY_CLASS_CONFIG);
	CHECK_INT(g.scope, RELAY_SCOPE_TARGET);
	CHECK_STR(g.error_name, "werkzeug.exceptions.Unauthorized");
	CHECK(g.request && !strstr(g.request, "expired-key"));
	got_clear(&g);
	relay_odoo_free(o);
}

static void
test_busy(void)
{
	struct relay_odoo_conf c = conf_for("busy", RELAY_PROTO_JSONRPC);
	struct relay_odoo *o = client(&c);
	struct got g = { 0 };

	server_reset();
	CHECK_INT(relay_odoo_call(o, "res.partner", "create", NULL, NULL, on_result, &g), 0);
	CHECK(wait1(&g));
	CHECK_INT(g.klass, RELAY_CLASS_TRANSIENT);
	CHECK_STR(g.error_name, "http.503");
	CHECK_INT(g.retry_after_ms, 7000);
	got_clear(&g);
	relay_odoo_free(o);
}

static void
test_refused(void)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof sa;
	struct relay_odoo_conf c;
	struct relay_odoo *o;
	struct got g = { 0 };
	static char url[64];
	int fd, port = 0;

	/* A port that was just ours and is closed now: nobody listens. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	CHECK(port > 0);
	c = conf_for("ok", RELAY_PROTO_JSONRPC);
	snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
	c.url = url;
	o = client(&c);
	CHECK_INT(relay_odoo_call(o, "res.partner", "create", NULL, NULL, on_result, &g), 0);
	CHECK(wait1(&g));
	CHECK_INT(g.klass, RELAY_CLASS_TRANSIENT);
	CHECK_STR(g.error_name, "transport.connect");
	CHECK(g.request == NULL); /* the login failed: the call was never sent */
	got_clear(&g);
	relay_odoo_free(o);
}

static void
test_timeout(void)
{
	struct relay_odoo_conf c = conf_for("hang", RELAY_PROTO_JSONRPC);
	struct relay_odoo *o;
	struct got g = { 0 };

	c.timeout_ms = 300;
	o = client(&c);
	server_reset();
	CHECK_INT(relay_odoo_call(o, "res.partner", "create", NULL, NULL, on_result, &g), 0);
	CHECK(wait1(&g));
	CHECK_INT(srv.execs, 1);
	CHECK_INT(g.klass, RELAY_CLASS_TRANSIENT);
	CHECK_STR(g.error_name, "transport.timeout");
	CHECK(g.request != NULL); /* it was sent: outcome unknown */
	got_clear(&g);
	/* The next call on the same client times out likewise. */
	CHECK_INT(relay_odoo_call(o, "res.partner", "create", NULL, NULL, on_result, &g), 0);
	CHECK(wait1(&g));
	CHECK_INT(srv.execs, 2);
	CHECK_STR(g.error_name, "transport.timeout");
	got_clear(&g);
	relay_odoo_free(o);
}

static void
test_too_big(void)
{
	const char *modes[] = { "big", "bigchunked" };
	size_t i;

	for (i = 0; i < 2; i++) {
		struct relay_odoo_conf c = conf_for(modes[i], RELAY_PROTO_JSONRPC);
		struct relay_odoo *o;
		struct got g = { 0 };

		c.max_response_bytes = 1024;
		o = client(&c);
		server_reset();
		CHECK_INT(relay_odoo_call(o, "res.partner", "search", NULL, NULL, on_result, &g), 0);
		CHECK(wait1(&g));
		CHECK_INT(g.klass, RELAY_CLASS_PERMANENT);
		CHECK_STR(g.error_name, "transport.too_big");
		got_clear(&g);
		/* and the next call on the same client likewise */
		CHECK_INT(relay_odoo_call(o, "res.partner", "search", NULL, NULL, on_result, &g), 0);
		CHECK(wait1(&g));
		CHECK_STR(g.error_name, "transport.too_big");
		got_clear(&g);
		relay_odoo_free(o);
	}
}

static void
test_load_rows(void)
{
	struct relay_odoo_conf c = conf_for("loadbad", RELAY_PROTO_JSONRPC);
	struct relay_odoo *o = client(&c);
	json_t *named = json_pack("{s:[s,s],s:[[s,s]]}", "fields", "id", "parent_id/id",
	                          "data", "relay.c2", "relay.nope");
	struct got g = { 0 };

	server_reset();
	CHECK_INT(relay_odoo_call(o, "res.partner", "load", NULL, named, on_result, &g), 0);
	CHECK(wait1(&g));
	CHECK_INT(g.klass, RELAY_CLASS_PERMANENT);
	CHECK_STR(g.error_name, "odoo.load");
	CHECK_STR(g.message, "No matching record found for external id 'relay.nope'");
	/* load(fields, data) positionally, as capture 120 sends it */
	json_t *pos = json_pack("[O,O]", json_object_get(named, "fields"), json_object_get(named, "data"));
	CHECK(json_equal(json_array_get(srv.last_args, 5), pos));
	CHECK_INT(json_object_size(json_array_get(srv.last_args, 6)), 0);
	json_decref(pos);
	got_clear(&g);
	json_decref(named);
	relay_odoo_free(o);
}

static void
test_auto(void)
{
	static const struct {
		const char *mode;
		int proto, major, web, rpc, logins, json2;
	} rows[] = {
		{ "v19", RELAY_PROTO_JSON2, 19, 1, 0, 0, 2 },
		{ "v18", RELAY_PROTO_JSONRPC, 18, 1, 1, 1, 0 },   /* no /web/version */
		{ "saas", RELAY_PROTO_JSONRPC, 18, 1, 0, 1, 0 },  /* "saas~18" */
	};
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct relay_odoo_conf c = conf_for(rows[i].mode, RELAY_PROTO_AUTO);
		struct relay_odoo *o = client(&c);
		struct got g1 = { 0 }, g2 = { 0 };
		struct got *gs[2] = { &g1, &g2 };

		server_reset();
		CHECK_INT(relay_odoo_protocol(o), RELAY_PROTO_AUTO);
		/* Two calls before the version is known share one question. */
		CHECK_INT(relay_odoo_call(o, "res.partner", "create", NULL, NULL, on_result, &g1), 0);
		CHECK_INT(relay_odoo_call(o, "res.partner", "create", NULL, NULL, on_result, &g2), 0);
		CHECK(wait_for(gs, 2));
		CHECK_INT(g1.klass, RELAY_CLASS_DONE);
		CHECK_INT(g2.klass, RELAY_CLASS_DONE);
		CHECK_INT(g1.protocol, rows[i].proto);
		CHECK_INT(g1.server_major, rows[i].major);
		CHECK_INT(relay_odoo_protocol(o), rows[i].proto);
		CHECK_INT(srv.version_web, rows[i].web);
		CHECK_INT(srv.version_rpc, rows[i].rpc);
		CHECK_INT(srv.logins, rows[i].logins);
		CHECK_INT(srv.json2, rows[i].json2);
		got_clear(&g1);
		got_clear(&g2);
		relay_odoo_free(o);
	}
}

static void
test_probe(void)
{
	struct relay_odoo_conf c = conf_for("ok", RELAY_PROTO_JSONRPC);
	struct relay_odoo *o = client(&c);
	struct got g = { 0 };

	server_reset();
	CHECK_INT(relay_odoo_probe(o, on_result, &g), 0);
	CHECK_INT(relay_odoo_in_flight(o), 1);
	CHECK(wait1(&g));
	CHECK_INT(g.klass, RELAY_CLASS_DONE);
	CHECK_INT(json_integer_value(json_object_get(g.result, "major")), 18);
	CHECK_STR(json_string_value(json_object_get(g.result, "protocol")), "jsonrpc");
	CHECK_INT(json_integer_value(json_object_get(g.result, "uid")), 2);
	CHECK_STR(json_string_value(json_object_get(json_object_get(g.result, "version"),
	                                            "server_version")), "18.0");
	CHECK_INT(srv.version_rpc, 1);
	CHECK_INT(srv.logins, 1);
	got_clear(&g);
	relay_odoo_free(o);

	/* auto on 19: version over /web/version, key checked over JSON-2 */
	c = conf_for("v19", RELAY_PROTO_AUTO);
	o = client(&c);
	server_reset();
	CHECK_INT(relay_odoo_probe(o, on_result, &g), 0);
	CHECK(wait1(&g));
	CHECK_INT(g.klass, RELAY_CLASS_DONE);
	CHECK_STR(json_string_value(json_object_get(g.result, "protocol")), "json2");
	CHECK_INT(srv.contexts, 1);
	CHECK_INT(srv.logins, 0);
	CHECK_INT(relay_odoo_protocol(o), RELAY_PROTO_JSON2);
	got_clear(&g);
	relay_odoo_free(o);

	/* bad credentials */
	c = conf_for("badlogin", RELAY_PROTO_JSONRPC);
	o = client(&c);
	server_reset();
	CHECK_INT(relay_odoo_probe(o, on_result, &g), 0);
	CHECK(wait1(&g));
	CHECK_INT(g.klass, RELAY_CLASS_CONFIG);
	CHECK_STR(g.error_name, "odoo.login");
	got_clear(&g);
	relay_odoo_free(o);

	/* Odoo 18 answering the JSON-2 check with its login redirect */
	c = conf_for("v18json2", RELAY_PROTO_JSON2);
	o = client(&c);
	server_reset();
	CHECK_INT(relay_odoo_probe(o, on_result, &g), 0);
	CHECK(wait1(&g));
	CHECK_INT(g.klass, RELAY_CLASS_CONFIG);
	CHECK_INT(g.scope, RELAY_SCOPE_TARGET);
	CHECK_STR(g.error_name, "http.303");
	got_clear(&g);
	relay_odoo_free(o);
}

/* POSTs and GETs in turn on one client: a GET never inherits a POST's
 * method or body. */
static void
test_post_then_get(void)
{
	struct relay_odoo_conf c = conf_for("v19", RELAY_PROTO_AUTO);
	struct relay_odoo *o = client(&c);
	json_t *named = json_pack("{s:{s:s}}", "vals", "name", "x");
	struct got g = { 0 };
	int i;

	server_reset();
	for (i = 0; i < 3; i++) {
		CHECK_INT(relay_odoo_call(o, "res.partner", "create", NULL, named, on_result, &g), 0);
		CHECK(wait1(&g));
		CHECK_INT(g.klass, RELAY_CLASS_DONE);
		got_clear(&g);
		CHECK_INT(relay_odoo_probe(o, on_result, &g), 0);
		CHECK(wait1(&g));
		CHECK_INT(g.klass, RELAY_CLASS_DONE);
		got_clear(&g);
	}
	CHECK_INT(srv.version_web, 4); /* the first call's detection, then 3 probes */
	CHECK_INT(srv.bad_gets, 0);
	CHECK_INT(srv.contexts, 3);
	CHECK_STR(srv.last_path, "/json/2/res.users/context_get");
	json_decref(named);
	relay_odoo_free(o);
}

static void
test_cancel(void)
{
	struct relay_odoo_conf c = conf_for("hang", RELAY_PROTO_JSONRPC);
	struct relay_odoo *o = client(&c), *o2;
	struct got g = { 0 }, w1 = { 0 }, w2 = { 0 };

	server_reset();
	CHECK_INT(relay_odoo_call(o, "res.partner", "create", NULL, NULL, on_result, &g), 0);
	/* Run until the server holds the call. */
	CHECK(run_until(server_has_exec, NULL));
	CHECK_INT(srv.execs, 1);
	CHECK_INT(g.fired, 0);
	relay_odoo_free(o);
	CHECK_INT(g.fired, 1);
	CHECK_INT(g.klass, RELAY_CLASS_TRANSIENT);
	CHECK_STR(g.error_name, "transport.cancelled");

	/* Calls still waiting for the version are cancelled too. */
	c = conf_for("hang", RELAY_PROTO_AUTO);
	o2 = client(&c);
	CHECK_INT(relay_odoo_call(o2, "res.partner", "create", NULL, NULL, on_result, &w1), 0);
	CHECK_INT(relay_odoo_call(o2, "res.partner", "write", NULL, NULL, on_result, &w2), 0);
	relay_odoo_free(o2);
	CHECK_INT(w1.fired, 1);
	CHECK_INT(w2.fired, 1);
	CHECK_STR(w1.error_name, "transport.cancelled");
	CHECK_STR(w2.error_name, "transport.cancelled");
	got_clear(&g);
	got_clear(&w1);
	got_clear(&w2);
}

/* A callback that frees the client it came from. */
struct freeing {
	struct got g;
	struct relay_odoo *o;
};

static void
on_result_free(struct relay_odoo_result *r, void *arg)
{
	struct freeing *f = arg;

	on_result(r, &f->g);
	if (f->o) {
		relay_odoo_free(f->o);
		/* From here on the client takes no more work. */
		CHECK_INT(relay_odoo_call(f->o, "res.partner", "create", NULL, NULL, on_result,
		                          &f->g), -RELAY_ECLOSED);
		f->o = NULL;
	}
}

static void
test_free_in_callback(void)
{
	struct relay_odoo_conf c = conf_for("mixed", RELAY_PROTO_JSONRPC);
	struct relay_odoo *o = client(&c);
	struct freeing f = { { 0 }, o };
	struct got slow = { 0 }, w1 = { 0 }, w2 = { 0 };
	struct got *gs[2] = { &f.g, &slow };

	/* The answer to one call frees the client; the call still out is
	 * cancelled once that callback has returned. */
	server_reset();
	CHECK_INT(relay_odoo_call(o, "res.partner", "slow", NULL, NULL, on_result, &slow), 0);
	CHECK_INT(relay_odoo_call(o, "res.partner", "create", NULL, NULL, on_result_free, &f), 0);
	CHECK(wait_for(gs, 2));
	CHECK_INT(f.g.fired, 1);
	CHECK_INT(f.g.klass, RELAY_CLASS_DONE);
	CHECK_INT(slow.fired, 1);
	CHECK_STR(slow.error_name, "transport.cancelled");
	got_clear(&f.g);
	got_clear(&slow);

	/* Freed by the first of several calls failed by one login: the others
	 * still get exactly one callback each. */
	c = conf_for("badlogin", RELAY_PROTO_JSONRPC);
	f.o = o = client(&c);
	server_reset();
	CHECK_INT(relay_odoo_call(o, "res.partner", "create", NULL, NULL, on_result_free, &f), 0);
	CHECK_INT(relay_odoo_call(o, "res.partner", "create", NULL, NULL, on_result, &w1), 0);
	CHECK_INT(relay_odoo_call(o, "res.partner", "create", NULL, NULL, on_result, &w2), 0);
	{
		struct got *all[3] = { &f.g, &w1, &w2 };

		CHECK(wait_for(all, 3));
	}
	CHECK_INT(f.g.fired, 1);
	CHECK_INT(w1.fired, 1);
	CHECK_INT(w2.fired, 1);
	CHECK_STR(f.g.error_name, "odoo.login");
	CHECK_STR(w1.error_name, "odoo.login");
	CHECK_STR(w2.error_name, "odoo.login");
	CHECK_INT(srv.logins, 1);
	got_clear(&f.g);
	got_clear(&w1);
	got_clear(&w2);
}

static void
test_invalid(void)
{
	struct relay_odoo_conf c = conf_for("ok", RELAY_PROTO_JSONRPC);
	struct relay_odoo *o = NULL;
	json_t *notarray = json_object();
	struct got g = { 0 };

	c.api_key.len = 0;
	CHECK_INT(relay_odoo_new(base, &c, &o), -RELAY_EINVAL);
	CHECK(o == NULL);
	c.api_key.data = (unsigned char *)"bad\nkey";
	c.api_key.len = 7;
	CHECK_INT(relay_odoo_new(base, &c, &o), -RELAY_EINVAL);
	c = conf_for("ok", RELAY_PROTO_JSONRPC);
	c.configured = 0;
	CHECK_INT(relay_odoo_new(base, &c, &o), -RELAY_EINVAL);
	c = conf_for("ok", RELAY_PROTO_JSONRPC);
	o = client(&c);
	CHECK_INT(relay_odoo_call(o, NULL, "create", NULL, NULL, on_result, &g), -RELAY_EINVAL);
	CHECK_INT(relay_odoo_call(o, "res.partner", "", NULL, NULL, on_result, &g), -RELAY_EINVAL);
	CHECK_INT(relay_odoo_call(o, "res.partner", "write", notarray, NULL, on_result, &g),
	          -RELAY_EINVAL);
	CHECK_INT(relay_odoo_call(o, "res.partner", "write", NULL, notarray, NULL, &g),
	          -RELAY_EINVAL);
	CHECK_INT(relay_odoo_in_flight(o), 0);
	relay_odoo_free(o);
	CHECK_INT(g.fired, 0);
	json_decref(notarray);
}

static void
test_parse_major(void)
{
	json_t *j;

	j = json_pack("{s:[i,i]}", "server_version_info", 18, 0);
	CHECK_INT(relay_odoo_parse_major(j), 18);
	json_decref(j);
	j = json_pack("{s:[s,i]}", "server_version_info", "saas~17", 4);
	CHECK_INT(relay_odoo_parse_major(j), 17);
	json_decref(j);
	j = json_pack("{s:[i],s:s}", "version_info", 19, "version", "19.0");
	CHECK_INT(relay_odoo_parse_major(j), 19);
	json_decref(j);
	j = json_pack("{s:s}", "server_version", "saas~18.3+e");
	CHECK_INT(relay_odoo_parse_major(j), 18);
	json_decref(j);
	j = json_pack("{s:s}", "version", "unknown");
	CHECK_INT(relay_odoo_parse_major(j), 0);
	json_decref(j);
	j = json_pack("[i]", 18);
	CHECK_INT(relay_odoo_parse_major(j), 0);
	json_decref(j);
	CHECK_INT(relay_odoo_parse_major(NULL), 0);
	CHECK_STR(relay_odoo_protocol_name(RELAY_PROTO_JSON2), "json2");
}

int
main(void)
{
	base = event_base_new();
	if (!base || server_start() != 0) {
		fprintf(stderr, "cannot start the test server\n");
		return 1;
	}
	RUN(test_parse_major);
	RUN(test_invalid);
	RUN(test_jsonrpc_call);
	RUN(test_request_masked);
	RUN(test_login_false);
	RUN(test_relogin_once);
	RUN(test_denied_twice);
	RUN(test_json2);
	RUN(test_json2_bad_key);
	RUN(test_busy);
	RUN(test_refused);
	RUN(test_timeout);
	RUN(test_too_big);
	RUN(test_load_rows);
	RUN(test_auto);
	RUN(test_probe);
	RUN(test_post_then_get);
	RUN(test_cancel);
	RUN(test_free_in_callback);
	server_reset();
	evhttp_free(srv.http);
	event_base_free(base);
	return check_done();
}
