/*
 * Unit tests for lib/lookup.c: finds matched against what Odoo answers.
 *
 * A small evhttp server on 127.0.0.1, port 0, on the client's event_base,
 * answers JSON-RPC as Odoo does: a uid for common.login, and for every
 * execute_kw the records the test set in srv.answer (what a search_read
 * of Odoo would give: a many2one as [id, "name"], a float as 10.0). Every
 * wait runs the loop until the callback came, bounded by a deadline.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "check.h"
#include "odoo_relay/error.h"
#include "odoo_relay/lookup.h"
#include "odoo_relay/odoo_client.h"

#define KEY "k3y-0f-the-relay-bot-8c1f"
#define DEADLINE_MS 10000

static struct event_base *base;

static struct server {
	struct evhttp *http;
	int port;
	int execs;
	json_t *answer;            /* the next search_read's result */
	json_t *last_args;         /* params.args of the last execute_kw */
} srv;

static void
reply_json(struct evhttp_request *req, json_t *j)
{
	struct evbuffer *b = evbuffer_new();
	char *s = json_dumps(j, 0);

	evbuffer_add(b, s, strlen(s));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "application/json");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
	free(s);
	json_decref(j);
}

static void
handle(struct evhttp_request *req, void *arg)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	json_t *body = len ? json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, NULL) : NULL;
	json_t *params = json_object_get(body, "params");
	const char *service = json_string_value(json_object_get(params, "service"));
	const char *method = json_string_value(json_object_get(params, "method"));
	json_t *result;

	(void)arg;
	if (service && method && strcmp(method, "version") == 0)
		result = json_pack("{s:s,s:[i,i,i,s,i,s],s:s,s:i}", "server_version", "18.0",
		                   "server_version_info", 18, 0, 0, "final", 0, "", "server_serie",
		                   "18.0", "protocol_version", 1);
	else if (service && method && strcmp(method, "login") == 0)
		result = json_integer(2);
	else {
		srv.execs++;
		json_decref(srv.last_args);
		srv.last_args = json_incref(json_object_get(params, "args"));
		result = json_incref(srv.answer ? srv.answer : json_array());
	}
	reply_json(req, json_pack("{s:s,s:i,s:o}", "jsonrpc", "2.0", "id", 1, "result", result));
	json_decref(body);
}

static int
server_start(void)
{
	struct evhttp_bound_socket *bs;
	struct sockaddr_in sa;
	socklen_t sl = sizeof sa;

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

static struct relay_odoo *
client(void)
{
	static char url[128];
	struct relay_odoo_conf c;
	struct relay_odoo *o = NULL;

	snprintf(url, sizeof url, "http://127.0.0.1:%d/x", srv.port);
	memset(&c, 0, sizeof c);
	c.configured = 1;
	c.url = url;
	c.database = "relaytest";
	c.login = "relaybot";
	c.api_key.data = (unsigned char *)KEY;
	c.api_key.len = strlen(KEY);
	c.protocol = RELAY_PROTO_JSONRPC;
	c.connect_timeout_ms = 2000;
	c.timeout_ms = 8000;
	c.max_in_flight = 4;
	c.max_response_bytes = 1 << 20;
	CHECK_INT(relay_odoo_new(base, &c, &o), 0);
	return o;
}

/* What the resolve's callback got. */
struct got {
	int fired;
	int failed;
};

static void
on_resolved(void *arg, const struct relay_outcome *failure, const char *request, unsigned calls)
{
	struct got *g = arg;

	(void)request;
	(void)calls;
	g->fired++;
	g->failed = failure != NULL;
}

static int expired;

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	expired = 1;
	event_base_loopbreak(base);
}

static int
wait_fired(struct got *g)
{
	struct timeval tv = { DEADLINE_MS / 1000, (DEADLINE_MS % 1000) * 1000 };
	struct event *deadline = evtimer_new(base, on_deadline, NULL);

	expired = 0;
	evtimer_add(deadline, &tv);
	while (!g->fired && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(deadline);
	return g->fired;
}

/* A find object as the mapping engine makes it (route_map.c). */
static json_t *
find(const char *model, const char *field, const char *value)
{
	return json_pack("{s:s,s:s,s:s,s:b,s:i,s:i,s:i}", "model", model, "field", field, "value",
	                 value, "active_test", 1, "cache_ms", 0, "row", 0, "col", 1);
}

/* Resolve finds against answer (taken over); 1 when the callback came
 * once and without a failure. */
static int
resolve(json_t *finds, json_t *answer)
{
	struct relay_lookup *lk = NULL;
	struct relay_odoo *o = client();
	struct got g = { 0, 0 };
	int rc;

	json_decref(srv.answer);
	srv.answer = answer;
	CHECK_INT(relay_lookup_new(&lk), 0);
	rc = relay_lookup_resolve(lk, o, finds, NULL, on_resolved, &g);
	CHECK_INT(rc, 0);
	CHECK_INT(g.fired, 0); /* never from inside the call */
	if (rc == 0)
		CHECK(wait_fired(&g));
	relay_odoo_free(o);
	relay_lookup_free(lk);
	return g.fired == 1 && !g.failed;
}

static json_int_t
found_id(const json_t *finds, size_t k)
{
	const json_t *id = json_object_get(json_array_get(finds, k), "id");

	return json_is_integer(id) ? json_integer_value(id) : -1;
}

static const char *
found_error(const json_t *finds, size_t k)
{
	return json_string_value(json_object_get(json_array_get(finds, k), "error"));
}

/* A value longer than any buffer is compared in full: a record whose value
 * only starts the same is another record. */
static void
test_long_value(void)
{
	char want[701], other[701];
	json_t *finds;

	memset(want, 'A', 700);
	want[700] = '\0';
	memcpy(other, want, sizeof(other));
	other[600] = 'B';
	finds = json_pack("[o]", find("product.product", "default_code", want));
	CHECK(resolve(finds, json_pack("[{s:i,s:s},{s:i,s:s}]", "id", 11, "default_code", want,
	                               "id", 12, "default_code", other)));
	CHECK_INT(found_id(finds, 0), 11);
	CHECK(found_error(finds, 0) == NULL);
	json_decref(finds);

	/* only the one that starts the same: not it */
	finds = json_pack("[o]", find("product.product", "default_code", want));
	CHECK(resolve(finds, json_pack("[{s:i,s:s}]", "id", 12, "default_code", other)));
	CHECK_INT(found_id(finds, 0), -1);
	CHECK(found_error(finds, 0) && strncmp(found_error(finds, 0), "no product.product with "
	                                       "default_code 'AAAA", 40) == 0);
	json_decref(finds);
}

/* A float field: Odoo answers 10.0 and 10.5, the find may say 10, 10.0 or
 * 10.50. */
static void
test_float_value(void)
{
	json_t *finds = json_pack("[o,o,o,o]", find("product.product", "list_price", "10"),
	                          find("product.product", "list_price", "10.0"),
	                          find("product.product", "list_price", "10.50"),
	                          find("product.product", "list_price", "11"));

	CHECK(resolve(finds, json_pack("[{s:i,s:f},{s:i,s:f}]", "id", 5, "list_price", 10.0, "id",
	                               6, "list_price", 10.5)));
	CHECK_INT(found_id(finds, 0), 5);
	CHECK_INT(found_id(finds, 1), 5);
	CHECK_INT(found_id(finds, 2), 6);
	CHECK_INT(found_id(finds, 3), -1);
	CHECK(found_error(finds, 3) != NULL);
	json_decref(finds);

	/* an integer field answered as an integer */
	finds = json_pack("[o,o]", find("res.partner", "color", "7"),
	                  find("res.partner", "color", "7.0"));
	CHECK(resolve(finds, json_pack("[{s:i,s:i}]", "id", 3, "color", 7)));
	CHECK_INT(found_id(finds, 0), 3);
	CHECK_INT(found_id(finds, 1), 3);
	json_decref(finds);
}

/* A many2one field: Odoo answers [id, "name"] (or false); the find's value
 * is the related record's id. */
static void
test_many2one_value(void)
{
	json_t *finds = json_pack("[o,o]", find("res.partner", "parent_id", "42"),
	                          find("res.partner", "parent_id", "Acme"));

	CHECK(resolve(finds, json_pack("[{s:i,s:[i,s]},{s:i,s:b},{s:i,s:[i,s]}]", "id", 9,
	                               "parent_id", 42, "Acme", "id", 10, "parent_id", 0,
	                               "id", 11, "parent_id", 43, "Acme 42")));
	CHECK_INT(found_id(finds, 0), 9);
	CHECK(found_error(finds, 0) == NULL);
	/* the name is not the value compared: the id is */
	CHECK_INT(found_id(finds, 1), -1);
	json_decref(finds);

	/* a list of ids (a many2many) is not a many2one: its first id is not
	 * the record's value */
	finds = json_pack("[o]", find("res.partner", "category_id", "4"));
	CHECK(resolve(finds, json_pack("[{s:i,s:[i,i]}]", "id", 12, "category_id", 4, 5)));
	CHECK_INT(found_id(finds, 0), -1);
	json_decref(finds);
}

/* Strings stay exact: case, and a number-looking text against a string. */
static void
test_string_exact(void)
{
	json_t *finds = json_pack("[o,o,o]", find("product.product", "default_code", "sku-1"),
	                          find("product.product", "default_code", "7"),
	                          find("product.product", "default_code", "SKU-1"));

	CHECK(resolve(finds, json_pack("[{s:i,s:s},{s:i,s:s}]", "id", 1, "default_code", "SKU-1",
	                               "id", 2, "default_code", "07")));
	CHECK_INT(found_id(finds, 0), -1);
	CHECK_STR(found_error(finds, 0), "no product.product with default_code 'sku-1'");
	CHECK_INT(found_id(finds, 1), -1);
	CHECK_INT(found_id(finds, 2), 1);
	json_decref(finds);
}

/* The first search cannot be sent (here: the client is being freed, so
 * relay_odoo_call answers -RELAY_ECLOSED): the error is returned and no
 * callback comes, as lookup.h says and the callers (dest_odoo.c) expect. */
struct in_cancel {
	struct relay_lookup *lk;
	struct relay_odoo *o;
	json_t *finds;
	struct got g;
	int rc, ran;
};

static void
cancelled(struct relay_odoo_result *res, void *arg)
{
	struct in_cancel *c = arg;

	(void)res;
	c->ran++;
	c->rc = relay_lookup_resolve(c->lk, c->o, c->finds, NULL, on_resolved, &c->g);
}

static void
test_first_search_not_sent(void)
{
	struct in_cancel c;

	memset(&c, 0, sizeof(c));
	c.o = client();
	c.finds = json_pack("[o]", find("product.product", "default_code", "SKU-1"));
	CHECK_INT(relay_lookup_new(&c.lk), 0);
	CHECK_INT(relay_odoo_call(c.o, "res.partner", "search_count", NULL, NULL, cancelled, &c), 0);
	relay_odoo_free(c.o); /* the call ends cancelled, and the resolve in it cannot send */
	CHECK_INT(c.ran, 1);
	CHECK_INT(c.rc, -RELAY_ECLOSED);
	event_base_loop(base, EVLOOP_NONBLOCK);
	CHECK_INT(c.g.fired, 0);
	CHECK_INT(relay_lookup_cached(c.lk), 0);
	relay_lookup_free(c.lk);
	json_decref(c.finds);
}

int
main(void)
{
	base = event_base_new();
	if (!base || server_start() != 0) {
		fprintf(stderr, "cannot start the test server\n");
		return 1;
	}
	RUN(test_long_value);
	RUN(test_float_value);
	RUN(test_many2one_value);
	RUN(test_string_exact);
	RUN(test_first_search_not_sent);
	json_decref(srv.answer);
	json_decref(srv.last_args);
	evhttp_free(srv.http);
	event_base_free(base);
	return check_done();
}
