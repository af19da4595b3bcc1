/*
 * The HTTP client's address guard: relay_addr_private() over a table of
 * addresses (every IPv4 and IPv6 range it must refuse, with the addresses
 * just outside each, and IPv4 addresses carried inside IPv6 ones), and the
 * guard on the wire: a name that resolves to loopback, and a kept-alive
 * connection opened without the guard, are both refused for a request that
 * asks for it, while the same requests without it reach the server.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "check.h"
#include "odoo_relay/classify.h"
#include "odoo_relay/http_client.h"

/* ---- the table ---- */

enum { ALLOWED = 0, REFUSED = 1 };

static const struct {
	const char *addr;
	int want;
} table[] = {
	/* 0.0.0.0/8 "this network" */
	{ "0.0.0.0", REFUSED },
	{ "0.255.255.255", REFUSED },
	{ "1.0.0.0", ALLOWED },
	/* 10.0.0.0/8 */
	{ "9.255.255.255", ALLOWED },
	{ "10.0.0.0", REFUSED },
	{ "10.255.255.255", REFUSED },
	{ "11.0.0.0", ALLOWED },
	/* 100.64.0.0/10 shared (CGNAT) */
	{ "100.63.255.255", ALLOWED },
	{ "100.64.0.0", REFUSED },
	{ "100.127.255.255", REFUSED },
	{ "100.128.0.0", ALLOWED },
	/* 127.0.0.0/8 loopback */
	{ "126.255.255.255", ALLOWED },
	{ "127.0.0.1", REFUSED },
	{ "127.255.255.255", REFUSED },
	{ "128.0.0.0", ALLOWED },
	/* 169.254.0.0/16 link-local (cloud metadata) */
	{ "169.253.255.255", ALLOWED },
	{ "169.254.169.254", REFUSED },
	{ "169.255.0.0", ALLOWED },
	/* 172.16.0.0/12 */
	{ "172.15.255.255", ALLOWED },
	{ "172.16.0.0", REFUSED },
	{ "172.31.255.255", REFUSED },
	{ "172.32.0.0", ALLOWED },
	/* 192.0.0.0/24 IETF protocol assignments */
	{ "192.0.0.0", REFUSED },
	{ "192.0.0.255", REFUSED },
	{ "192.0.1.0", ALLOWED },
	/* 192.168.0.0/16 */
	{ "192.167.255.255", ALLOWED },
	{ "192.168.0.1", REFUSED },
	{ "192.168.255.255", REFUSED },
	{ "192.169.0.0", ALLOWED },
	/* 198.18.0.0/15 benchmarking */
	{ "198.17.255.255", ALLOWED },
	{ "198.18.0.0", REFUSED },
	{ "198.19.255.255", REFUSED },
	{ "198.20.0.0", ALLOWED },
	/* 224.0.0.0/4 multicast, 240.0.0.0/4 reserved, broadcast */
	{ "223.255.255.255", ALLOWED },
	{ "224.0.0.1", REFUSED },
	{ "239.255.255.255", REFUSED },
	{ "240.0.0.1", REFUSED },
	{ "255.255.255.255", REFUSED },
	/* public */
	{ "8.8.8.8", ALLOWED },
	{ "1.1.1.1", ALLOWED },

	/* IPv6: unspecified, loopback */
	{ "::", REFUSED },
	{ "::1", REFUSED },
	{ "::2", REFUSED },
	/* fe80::/10 link-local */
	{ "fe80::1", REFUSED },
	{ "febf:ffff::1", REFUSED },
	/* fec0::/10 site-local (deprecated) */
	{ "fec0::1", REFUSED },
	{ "feff::1", REFUSED },
	/* fc00::/7 unique local */
	{ "fbff:ffff::1", ALLOWED },
	{ "fc00::1", REFUSED },
	{ "fd12:3456::1", REFUSED },
	/* ff00::/8 multicast */
	{ "ff02::1", REFUSED },
	{ "ff0e::1", REFUSED },
	/* public */
	{ "2001:4860:4860::8888", ALLOWED },
	{ "2a00:1450::1", ALLOWED },
	{ "2001:200::1", ALLOWED },
	{ "2003::1", ALLOWED },
	{ "64:ff9a::7f00:1", ALLOWED },

	/* IPv4-mapped ::ffff:0:0/96: the IPv4 address decides */
	{ "::ffff:127.0.0.1", REFUSED },
	{ "::ffff:10.0.0.1", REFUSED },
	{ "::ffff:169.254.169.254", REFUSED },
	{ "::ffff:0.0.0.0", REFUSED },
	{ "::ffff:8.8.8.8", ALLOWED },
	/* IPv4-translated ::ffff:0:0:0/96 (SIIT): the IPv4 address decides */
	{ "::ffff:0:127.0.0.1", REFUSED },
	{ "::ffff:0:192.168.0.1", REFUSED },
	{ "::ffff:0:8.8.8.8", ALLOWED },
	/* IPv4-compatible ::/96, deprecated: refused whatever it carries */
	{ "::127.0.0.1", REFUSED },
	{ "::10.0.0.1", REFUSED },
	{ "::169.254.169.254", REFUSED },
	{ "::8.8.8.8", REFUSED },
	/* NAT64 well-known prefix 64:ff9b::/96: the IPv4 address decides */
	{ "64:ff9b::127.0.0.1", REFUSED },
	{ "64:ff9b::a9fe:a9fe", REFUSED },
	{ "64:ff9b::10.1.2.3", REFUSED },
	{ "64:ff9b::8.8.8.8", ALLOWED },
	/* NAT64 local-use 64:ff9b:1::/48: a translator of this network, and
	 * where it puts the IPv4 address depends on its prefix length */
	{ "64:ff9b:1::7f00:1", REFUSED },
	{ "64:ff9b:1:7f00:0:100::", REFUSED },
	{ "64:ff9b:1:808:8:800::", REFUSED },
	{ "64:ff9b:1::8.8.8.8", REFUSED },
	{ "64:ff9b:1:ffff::1", REFUSED },
	{ "64:ff9b:2::8.8.8.8", ALLOWED },
	/* 6to4 2002::/16: bits 16-47 are the IPv4 address */
	{ "2002:7f00:1::1", REFUSED },
	{ "2002:a00:1::", REFUSED },
	{ "2002:c0a8:101::1", REFUSED },
	{ "2002:a9fe:a9fe::", REFUSED },
	{ "2002:0:0::1", REFUSED },
	{ "2002:808:808::1", ALLOWED },
	/* Teredo 2001::/32: server in bits 32-63, client in the last 32 bits,
	 * each bit inverted */
	{ "2001:0:808:808:0:0:80ff:fffe", REFUSED },     /* client 127.0.0.1 */
	{ "2001:0:808:808:8000:ffff:f5ff:fffe", REFUSED }, /* client 10.0.0.1 */
	{ "2001:0:808:808::5601:5656", REFUSED },         /* client 169.254.169.169 */
	{ "2001:0:7f00:1::f7f7:f7f7", REFUSED },          /* server 127.0.0.1 */
	{ "2001:0:c0a8:1::f7f7:f7f7", REFUSED },          /* server 192.168.0.1 */
	{ "2001:0:808:808::f7f7:f7f7", ALLOWED },         /* both 8.8.8.8 */
	{ "2001:0:808:808::7f00:1", ALLOWED },            /* client 128.255.255.254 */
};

static int
private_of(const char *a)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, a, &in->sin_addr) == 1)
		in->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, a, &in6->sin6_addr) == 1)
		in6->sin6_family = AF_INET6;
	else
		return -1;
	return relay_addr_private((const struct sockaddr *)&ss);
}

static void
test_table(void)
{
	char got[96], want[96];
	size_t i;

	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		int p = private_of(table[i].addr);

		snprintf(got, sizeof got, "%s %s", table[i].addr,
		         p == 1 ? "refused" : p == 0 ? "allowed" : "unparsed");
		snprintf(want, sizeof want, "%s %s", table[i].addr,
		         table[i].want == REFUSED ? "refused" : "allowed");
		CHECK_STR(got, want);
	}
}

static void
test_not_ip(void)
{
	struct sockaddr_storage ss;

	CHECK_INT(relay_addr_private(NULL), 1);
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	CHECK_INT(relay_addr_private((const struct sockaddr *)&ss), 1);
	ss.ss_family = AF_UNSPEC;
	CHECK_INT(relay_addr_private((const struct sockaddr *)&ss), 1);
}

/* ---- on the wire ---- */

/*
 * A keep-alive HTTP/1.1 server on 127.0.0.1, port 0, on the test's loop:
 * it counts the connections it accepted and the requests it answered
 * (204, no body, connection left open), and keeps the last request's line,
 * body and whether it had a given test header.
 */
#define MAX_CONNS 8

struct conn {
	int fd;
	struct event *ev;
	char buf[4096];
	size_t len;
};

static struct event_base *base;
static struct {
	int fd, port;
	struct event *ev;
	struct conn conns[MAX_CONNS];
	int accepted, answered;
	char line[256], body[256];
	int had_x_test;
} srv;

static void
conn_close(struct conn *c)
{
	event_free(c->ev);
	close(c->fd);
	c->ev = NULL;
	c->fd = -1;
}

static void
on_conn(evutil_socket_t fd, short what, void *arg)
{
	static const char answer[] = "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n";
	struct conn *c = arg;
	ssize_t n;
	char *end;

	(void)what;
	n = read(fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		conn_close(c);
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	/* a request ends at its blank line, or after its Content-Length */
	while ((end = strstr(c->buf, "\r\n\r\n"))) {
		size_t used = (size_t)(end + 4 - c->buf), cl = 0, ll;
		char *h = strcasestr(c->buf, "\r\nContent-Length:");

		if (h && h < end)
			cl = strtoul(h + 17, NULL, 10);
		if (c->len < used + cl)
			return; /* the rest of the body is still to come */
		ll = strcspn(c->buf, "\r");
		snprintf(srv.line, sizeof srv.line, "%.*s", (int)ll, c->buf);
		snprintf(srv.body, sizeof srv.body, "%.*s", (int)cl, c->buf + used);
		*end = '\0';
		srv.had_x_test = strcasestr(c->buf, "\r\nX-Test:") != NULL;
		used += cl;
		srv.answered++;
		if (write(fd, answer, sizeof(answer) - 1) != (ssize_t)(sizeof(answer) - 1)) {
			conn_close(c);
			return;
		}
		memmove(c->buf, c->buf + used, c->len - used + 1);
		c->len -= used;
	}
}

/* Accept whatever is waiting; called from the loop and, to count a
 * connection that completed but was not yet seen, directly. */
static void
on_accept(evutil_socket_t lfd, short what, void *arg)
{
	int fd, i;

	(void)what;
	(void)arg;
	while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		srv.accepted++;
		for (i = 0; i < MAX_CONNS && srv.conns[i].fd >= 0; i++)
			;
		if (i == MAX_CONNS) {
			close(fd);
			continue;
		}
		srv.conns[i].fd = fd;
		srv.conns[i].len = 0;
		srv.conns[i].ev = event_new(base, fd, EV_READ | EV_PERSIST, on_conn, &srv.conns[i]);
		event_add(srv.conns[i].ev, NULL);
	}
}

static int
server_up(void)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int i;

	memset(&srv, 0, sizeof(srv));
	for (i = 0; i < MAX_CONNS; i++)
		srv.conns[i].fd = -1;
	srv.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (srv.fd < 0 || bind(srv.fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(srv.fd, 16) != 0 || getsockname(srv.fd, (struct sockaddr *)&sa, &sl) != 0)
		return -1;
	srv.port = ntohs(sa.sin_port);
	srv.ev = event_new(base, srv.fd, EV_READ | EV_PERSIST, on_accept, NULL);
	return srv.ev && event_add(srv.ev, NULL) == 0 ? 0 : -1;
}

static void
server_down(void)
{
	int i;

	for (i = 0; i < MAX_CONNS; i++)
		if (srv.conns[i].fd >= 0)
			conn_close(&srv.conns[i]);
	if (srv.ev)
		event_free(srv.ev);
	if (srv.fd >= 0)
		close(srv.fd);
	srv.ev = NULL; /* a second call does nothing */
	srv.fd = -1;
}

struct got {
	int done, refused;
	long status;
	enum relay_transport transport;
};

static void
on_reply(const struct relay_http_reply *r, void *arg)
{
	struct got *g = arg;

	g->done = 1;
	g->refused = r->refused;
	g->status = r->status;
	g->transport = r->transport;
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

/* Send c and run the loop until its reply (or a deadline that only keeps a
 * broken build from hanging). */
static void
send_and_wait(struct relay_http *h, struct relay_http_call *c, struct got *g)
{
	struct timeval tv = { 20, 0 };
	struct event *deadline = evtimer_new(base, on_deadline, NULL);

	c->timeout_ms = 10000;
	memset(g, 0, sizeof(*g));
	srv.line[0] = srv.body[0] = '\0';
	expired = 0;
	evtimer_add(deadline, &tv);
	CHECK_INT(relay_http_send(h, c, on_reply, g), 0);
	while (!g->done && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(deadline);
	CHECK(g->done);
}

/* One GET of /hook on host. */
static void
get(struct relay_http *h, const char *host, int refuse_private, struct got *g)
{
	struct relay_http_call c;
	char url[128];

	snprintf(url, sizeof url, "http://%s:%d/hook", host, srv.port);
	memset(&c, 0, sizeof(c));
	c.method = "GET";
	c.url = url;
	c.refuse_private = refuse_private;
	send_and_wait(h, &c, g);
	/* a connection the client completed shows in the backlog by now */
	on_accept(srv.fd, EV_READ, NULL);
}

/* A loop, the server on it and a client; NULL (with the failure counted)
 * if any of them cannot be made. wire_down undoes what was made. */
static struct relay_http *
wire_up(void)
{
	struct relay_http *h = NULL;

	base = event_base_new();
	CHECK(base != NULL);
	if (!base)
		return NULL;
	CHECK_INT(server_up(), 0);
	CHECK_INT(relay_http_new(base, &h), 0);
	return h;
}

static void
wire_down(struct relay_http *h)
{
	relay_http_free(h);
	if (base) {
		server_down();
		event_base_free(base);
	}
	base = NULL;
}

/* One request to 127.0.0.1, answered 204. */
static void
call(struct relay_http *h, const char *method, const char *path, const char *body,
     const char *const *headers, struct got *g)
{
	struct relay_http_call c;
	char url[128];

	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", srv.port, path);
	memset(&c, 0, sizeof(c));
	c.method = method;
	c.url = url; /* a new buffer each time: the client must compare text */
	c.body = body;
	c.body_len = body ? strlen(body) : 0;
	c.headers = headers;
	send_and_wait(h, &c, g);
	CHECK_INT(g->status, 204);
}

/* A handle kept from one request to the next keeps what stays the same and
 * takes each request's own: every change of URL, method, body or headers
 * reaches the server, in any order. */
static void
test_kept_handles(void)
{
	static const char *const with_x[] = { "X-Test: 1", NULL };
	static const struct {
		const char *method, *path, *body, *line;
		int x_test;
	} steps[] = {
		{ "POST", "/a", "one", "POST /a HTTP/1.1", 1 },
		{ "POST", "/a", "second", "POST /a HTTP/1.1", 0 },
		{ "POST", "/b", "", "POST /b HTTP/1.1", 0 },
		{ "PUT", "/b", "put", "PUT /b HTTP/1.1", 0 },
		{ "POST", "/b", "post again", "POST /b HTTP/1.1", 0 },
		{ "GET", "/c", NULL, "GET /c HTTP/1.1", 1 },
		{ "POST", "/c", "after a get", "POST /c HTTP/1.1", 0 },
	};
	struct relay_http *h = NULL;
	struct got g;
	size_t i;

	if (!(h = wire_up()))
		goto out;
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		call(h, steps[i].method, steps[i].path, steps[i].body,
		     steps[i].x_test ? with_x : NULL, &g);
		CHECK_STR(srv.line, steps[i].line);
		CHECK_STR(srv.body, steps[i].body ? steps[i].body : "");
		CHECK_INT(srv.had_x_test, steps[i].x_test);
	}
	CHECK_INT(srv.answered, 7);
	/* one connection served them all */
	on_accept(srv.fd, EV_READ, NULL);
	CHECK_INT(srv.accepted, 1);
	/* the same request again, the server gone: a kept handle reports this
	 * transfer's failure, not the last one's status */
	{
		struct relay_http_call c;
		char url[128];

		snprintf(url, sizeof url, "http://127.0.0.1:%d/c", srv.port);
		server_down();
		memset(&c, 0, sizeof(c));
		c.method = "POST";
		c.url = url;
		c.body = "after a get";
		c.body_len = strlen(c.body);
		send_and_wait(h, &c, &g);
		CHECK(g.transport != RELAY_TRANSPORT_OK);
		CHECK_INT(g.status, 0);
	}
out:
	wire_down(h);
}

static void
test_wire(void)
{
	struct relay_http *h = NULL;
	struct got g;
	int accepted;

	if (!(h = wire_up()))
		goto out;

	/* without the guard, a loopback literal is reached, and the
	 * connection is kept */
	get(h, "127.0.0.1", 0, &g);
	CHECK_INT(g.transport, RELAY_TRANSPORT_OK);
	CHECK_INT(g.status, 204);
	CHECK_INT(g.refused, 0);
	CHECK_INT(srv.accepted, 1);
	CHECK_INT(srv.answered, 1);

	/* with the guard, the same URL is refused although curl would reuse
	 * the connection kept from the request above: nothing is sent */
	get(h, "127.0.0.1", 1, &g);
	CHECK_INT(g.refused, 1);
	CHECK_INT(g.transport, RELAY_TRANSPORT_CONNECT);
	CHECK_INT(srv.answered, 1);

	/* a name that resolves to loopback: refused before connecting */
	accepted = srv.accepted;
	get(h, "localhost", 1, &g);
	CHECK_INT(g.refused, 1);
	CHECK_INT(g.transport, RELAY_TRANSPORT_CONNECT);
	CHECK_INT(srv.accepted, accepted);
	CHECK_INT(srv.answered, 1);

	/* ... and reached without the guard: the server was there */
	get(h, "localhost", 0, &g);
	CHECK_INT(g.transport, RELAY_TRANSPORT_OK);
	CHECK_INT(g.status, 204);
	CHECK_INT(g.refused, 0);
	CHECK_INT(srv.answered, 2);

	/* a kept connection to a name is not a way around the guard either */
	get(h, "localhost", 1, &g);
	CHECK_INT(g.refused, 1);
	CHECK_INT(srv.answered, 2);

	/* and the connections kept still serve requests without it */
	get(h, "127.0.0.1", 0, &g);
	CHECK_INT(g.status, 204);
	CHECK_INT(srv.answered, 3);
out:
	wire_down(h);
}

/* Run the loop, 10 ms at most a turn, until at most want events are added
 * to it (bounded: about 2 s). At most: curl's own timer may go too. */
static int
added_settles_at(int want)
{
	struct timeval tv = { 0, 10000 };
	int i;

	for (i = 0; i < 200; i++) {
		if (event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED) <= want)
			return 1;
		event_base_loopexit(base, &tv);
		event_base_loop(base, 0);
	}
	return event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED) <= want;
}

/*
 * A kept connection's read event stays registered between requests (it
 * saves two epoll_ctl calls a request). When the server closes the idle
 * connection, that event fires once: the client must stop watching the
 * socket, not hand curl a socket it is not watching and fire forever, and
 * the next request must open a new connection.
 */
static void
test_idle_closed(void)
{
	struct relay_http *h = NULL;
	struct got g;
	int before, i, round;

	if (!(h = wire_up()))
		goto out;
	for (round = 1; round <= 3; round++) {
		call(h, "POST", "/a", "one", NULL, &g);
		CHECK_INT(srv.answered, round);
		on_accept(srv.fd, EV_READ, NULL);
		CHECK_INT(srv.accepted, round);
		/* the server's listener and connection, the client's parked
		 * socket (curl's timer may be pending too) */
		before = event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED);
		for (i = 0; i < MAX_CONNS; i++)
			if (srv.conns[i].fd >= 0)
				conn_close(&srv.conns[i]);
		/* the server's event went with its close; the client's goes
		 * when it sees the end of the stream */
		CHECK(added_settles_at(before - 2));
		CHECK_INT(event_base_get_num_events(base, EVENT_BASE_COUNT_ACTIVE), 0);
	}
	/* and a connection kept, reused, still works */
	call(h, "POST", "/b", "two", NULL, &g);
	call(h, "POST", "/b", "three", NULL, &g);
	on_accept(srv.fd, EV_READ, NULL);
	CHECK_INT(srv.accepted, 4);
	CHECK_INT(srv.answered, 5);
out:
	wire_down(h);
}

int
main(void)
{
	RUN(test_table);
	RUN(test_not_ip);
	RUN(test_wire);
	RUN(test_kept_handles);
	RUN(test_idle_closed);
	return check_done();
}
