/* Unit tests for the HTTP server: raw requests over loopback sockets from the
 * test thread, the server on its own loop thread. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "check.h"
#include "odoo_relay/http_server.h"

static struct event_base *base;
static struct relay_http_server *srv, *srv_budget, *srv_full;
static int port, port_budget, port_full;
static pthread_t loop_thread;
static int headers_seen, requests_seen;
static struct relay_http_request *held; /* answered later through a timer */
static struct event *later_ev;

static int
on_headers(struct relay_http_request *req, void *arg)
{
	headers_seen++;
	if (strcmp(relay_http_request_path(req), "/nope") == 0) {
		relay_http_respond_error(req, 404, "unknown source", "no source nope", NULL);
		return 1;
	}
	return 0;
}

static void
later_cb(evutil_socket_t fd, short what, void *arg)
{
	if (held)
		relay_http_respond(held, 202, "application/json", "{\"later\":1}", 11, NULL);
	held = NULL;
}

static void
on_request(struct relay_http_request *req, void *arg)
{
	requests_seen++;
	size_t len;
	const unsigned char *body = relay_http_request_body(req, &len);
	if (strcmp(relay_http_request_path(req), "/later") == 0) {
		struct timeval tv = { 0, 200 * 1000 };
		if (held) /* one held at a time: the earlier one is answered now */
			relay_http_respond(held, 202, "application/json", "{\"later\":1}", 11, NULL);
		held = req;
		evtimer_add(later_ev, &tv);
		return;
	}
	char out[512];
	const char *q = relay_http_request_query(req), *lg = relay_http_request_header(req, "X-Long");
	int n = snprintf(out, sizeof(out), "{\"method\":\"%s\",\"path\":\"%s\",\"query\":\"%s\","
	                 "\"long\":%zu,\"len\":%zu,\"x\":\"%s\",\"first\":\"%c\"}",
	                 relay_http_request_method(req), relay_http_request_path(req), q ? q : "-",
	                 lg ? strlen(lg) : 0, len,
	                 relay_http_request_header(req, "x-test") ? relay_http_request_header(req, "X-Test") : "",
	                 len ? body[0] : '-');
	relay_http_respond(req, 200, "application/json", out, (size_t)n, "X-Extra: 1\r\n");
}

static void *
loop_main(void *arg)
{
	event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static int
connect_port(int p)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)p) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
connect_srv(void)
{
	return connect_port(port);
}

static void
send_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void
send_str(int fd, const char *s)
{
	send_all(fd, s, strlen(s));
}

/* Read until the peer closes, want_bytes are in, or 5 s pass. */
static size_t
recv_until(int fd, char *buf, size_t n, const char *stop)
{
	size_t got = 0;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 100) > 0) {
			ssize_t r = recv(fd, buf + got, n - 1 - got, 0);
			if (r <= 0)
				break;
			got += (size_t)r;
			buf[got] = '\0';
			if (stop && strstr(buf, stop))
				break;
		}
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 5 || got + 1 >= n)
			break;
	}
	buf[got] = '\0';
	return got;
}

static int
peer_closed(int fd)
{
	char b[64];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	for (int i = 0; i < 50; i++) {
		if (poll(&p, 1, 100) > 0) {
			ssize_t r = recv(fd, b, sizeof(b), 0);
			if (r == 0 || (r < 0 && errno == ECONNRESET))
				return 1;
		}
	}
	return 0;
}

static void
test_simple_and_keepalive(void)
{
	char buf[4096];
	int fd = connect_srv();
	const char *r1 = "POST /hooks/a HTTP/1.1\r\nHost: x\r\nX-Test: yes\r\nContent-Length: 5\r\n\r\nhello";
	send_all(fd, r1, strlen(r1));
	recv_until(fd, buf, sizeof(buf), "}");
	CHECK(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
	CHECK(strstr(buf, "\"len\":5") != NULL);
	CHECK(strstr(buf, "\"x\":\"yes\"") != NULL);
	CHECK(strstr(buf, "X-Extra: 1\r\n") != NULL);
	CHECK(strstr(buf, "Connection: close") == NULL);
	/* second request on the same connection, pipelined with a third */
	const char *r2 = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
	                 "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
	send_all(fd, r2, strlen(r2));
	recv_until(fd, buf, sizeof(buf), "\"first\":\"o\"}");
	CHECK(strstr(buf, "\"method\":\"GET\"") != NULL);
	CHECK(strstr(buf, "\"len\":2") != NULL);
	CHECK(strstr(buf, "Connection: close") != NULL);
	CHECK(peer_closed(fd));
	close(fd);
}

/*
 * The request line and headers are parsed in place in blocks the request
 * owns: lines ending in a bare LF, empty lines before the request, a path
 * cut at '?' and a query at '#', headers over many blocks and one longer
 * than a block all read back whole.
 */
static void
test_lines(void)
{
	char buf[4096], req[16384];
	size_t n = 0;
	int fd, i;

	fd = connect_srv();
	const char *r1 = "\r\n\nPOST /hooks/a?x=1&y=2#frag HTTP/1.1\nHost: x\nX-Test: bare\r\n"
	                 "Content-Length: 2\n\nhi";
	send_all(fd, r1, strlen(r1));
	recv_until(fd, buf, sizeof(buf), "}");
	CHECK(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
	CHECK(strstr(buf, "\"method\":\"POST\",\"path\":\"/hooks/a\",\"query\":\"x=1&y=2\"") != NULL);
	CHECK(strstr(buf, "\"x\":\"bare\"") != NULL);
	CHECK(strstr(buf, "\"len\":2,") != NULL);

	/* the same connection: 60 headers, one of 3000 bytes, X-Test last */
	n += (size_t)snprintf(req + n, sizeof(req) - n, "POST /b#only-a-fragment HTTP/1.1\r\nHost: x\r\n");
	for (i = 0; i < 60; i++)
		n += (size_t)snprintf(req + n, sizeof(req) - n,
		                      "X-Pad-%02d: %050d\r\n", i, i);
	n += (size_t)snprintf(req + n, sizeof(req) - n, "X-Long: ");
	memset(req + n, 'a', 3000);
	n += 3000;
	n += (size_t)snprintf(req + n, sizeof(req) - n,
	                      "\r\nX-Test:   padded   \r\nContent-Length: 0\r\n\r\n");
	send_all(fd, req, n);
	recv_until(fd, buf, sizeof(buf), "\"first\":\"-\"}");
	CHECK(strstr(buf, "\"path\":\"/b\",\"query\":\"-\",\"long\":3000,") != NULL);
	CHECK(strstr(buf, "\"x\":\"padded\"") != NULL);
	close(fd);
}

static void
expect_status_n(const char *req, size_t len, const char *status_line, const char *body_part)
{
	char buf[4096];
	int fd = connect_srv();
	send_all(fd, req, len);
	recv_until(fd, buf, sizeof(buf), "}\n");
	if (strncmp(buf, status_line, strlen(status_line)) != 0)
		fprintf(stderr, "got: %.80s\n", buf);
	CHECK(strncmp(buf, status_line, strlen(status_line)) == 0);
	CHECK(strstr(buf, "Content-Type: application/json") != NULL);
	CHECK(body_part == NULL || strstr(buf, body_part) != NULL);
	CHECK(peer_closed(fd));
	close(fd);
}

static void
expect_status(const char *req, const char *status_line, const char *body_part)
{
	expect_status_n(req, strlen(req), status_line, body_part);
}

/* Nothing to read and not closed, for 200 ms. */
static int
still_open(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 200) == 0;
}

/* Poll a figure the loop thread changes until it is want (5 s at most).
 * The read races with the loop thread's writes; a stale value only means
 * another turn. */
static int
wait_stat(struct relay_http_server *s, size_t (*get)(const struct relay_http_stats *), size_t want)
{
	for (int i = 0; i < 500; i++) {
		struct relay_http_stats st;
		relay_http_server_stats(s, &st);
		if (get(&st) == want)
			return 1;
		usleep(10000);
	}
	return 0;
}

static size_t stat_body(const struct relay_http_stats *st) { return st->body_bytes; }
static size_t stat_conns(const struct relay_http_stats *st) { return st->connections; }

static void
test_errors(void)
{
	int before = requests_seen;
	expect_status("POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", "HTTP/1.1 404", "unknown source");
	/* over the limit: answered from the headers, body never needed */
	expect_status("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n", "HTTP/1.1 413",
	              "over the limit");
	expect_status("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 411", NULL);
	expect_status("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n", "HTTP/1.1 400", NULL);
	expect_status("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
	              "HTTP/1.1 400", NULL);
	expect_status("POST /a HTTP/2.0\r\n\r\n", "HTTP/1.1 505", NULL);
	expect_status("garbage\r\n\r\n", "HTTP/1.1 400", NULL);
	expect_status("POST /a HTTP/1.1\r\n bad: fold\r\n\r\n", "HTTP/1.1 400", NULL);
	char big[20000];
	int n = snprintf(big, sizeof(big), "POST /a HTTP/1.1\r\nX-Big: ");
	memset(big + n, 'a', sizeof(big) - (size_t)n - 5);
	memcpy(big + sizeof(big) - 5, "\r\n\r\n", 5);
	expect_status(big, "HTTP/1.1 431", NULL);
	CHECK_INT(requests_seen, before);
}

static void
test_timeouts(void)
{
	/* slow headers: the total header deadline answers 408 even though the
	 * client keeps sending bytes */
	char buf[4096];
	int fd = connect_srv();
	send_str(fd, "POST /a HTTP/1.1\r\n");
	size_t got = recv_until(fd, buf, sizeof(buf), "}\n");
	CHECK(got > 0 && strncmp(buf, "HTTP/1.1 408", 12) == 0);
	CHECK(strstr(buf, "headers") != NULL);
	close(fd);
	/* slow body */
	fd = connect_srv();
	send_str(fd, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
	recv_until(fd, buf, sizeof(buf), "}\n");
	CHECK(strncmp(buf, "HTTP/1.1 408", 12) == 0);
	CHECK(strstr(buf, "body") != NULL);
	close(fd);
}

static void
test_expect_continue(void)
{
	char buf[4096];
	int fd = connect_srv();
	send_str(fd, "POST /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
	recv_until(fd, buf, sizeof(buf), "\r\n\r\n");
	CHECK(strncmp(buf, "HTTP/1.1 100 Continue", 21) == 0);
	send_str(fd, "xyz");
	recv_until(fd, buf, sizeof(buf), "}");
	CHECK(strstr(buf, "HTTP/1.1 200") != NULL);
	CHECK(strstr(buf, "\"first\":\"x\"") != NULL);
	close(fd);
}

static void
test_late_answer_and_gone_client(void)
{
	char buf[4096];
	int fd = connect_srv();
	send_str(fd, "POST /later HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
	recv_until(fd, buf, sizeof(buf), "}");
	CHECK(strstr(buf, "HTTP/1.1 202") != NULL);
	close(fd);
	/* the client leaves before the answer: the answer goes nowhere, no crash */
	int before = requests_seen;
	fd = connect_srv();
	send_str(fd, "POST /later HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
	for (int i = 0; i < 100 && requests_seen == before; i++)
		usleep(10000); /* wait for the server to have read the request */
	close(fd);
	CHECK_INT(requests_seen, before + 1);
	/* and the server still serves */
	fd = connect_srv();
	send_str(fd, "GET /x HTTP/1.0\r\n\r\n");
	recv_until(fd, buf, sizeof(buf), "}");
	CHECK(strstr(buf, "HTTP/1.1 200") != NULL);
	CHECK(strstr(buf, "Connection: close") != NULL); /* 1.0 without keep-alive */
	close(fd);
}

static void
test_half_close_and_head(void)
{
	char buf[4096];
	/* the client shuts its sending side once the request is out: the
	 * answer still comes, then the connection closes */
	int fd = connect_srv();
	send_str(fd, "POST /later HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
	shutdown(fd, SHUT_WR);
	recv_until(fd, buf, sizeof(buf), "}");
	CHECK(strstr(buf, "HTTP/1.1 202") != NULL);
	CHECK(strstr(buf, "Connection: close") != NULL);
	CHECK(peer_closed(fd));
	close(fd);
	/* HEAD: the headers GET would get, and no body */
	fd = connect_srv();
	send_str(fd, "HEAD /x HTTP/1.1\r\nHost: x\r\n\r\nGET /y HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	recv_until(fd, buf, sizeof(buf), "\"first\":\"-\"}");
	CHECK(strstr(buf, "HTTP/1.1 200") != NULL);
	CHECK(strstr(buf, "\"method\":\"HEAD\"") == NULL);
	CHECK(strstr(buf, "\"method\":\"GET\"") != NULL);
	close(fd);
}

static void
test_rfc9112(void)
{
	int before = requests_seen;
	/* RFC 9112 3.2: an HTTP/1.1 request has exactly one Host */
	expect_status("POST /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 400", "Host");
	expect_status("GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", "HTTP/1.1 400", "Host");
	/* a NUL in a value would cut it ("a\0b" read as "a"); after the
	 * version it would hide junk; a bare CR is no line end */
	static const char nul_value[] = "POST /a HTTP/1.1\r\nHost: x\r\nX-Test: a\0b\r\n"
	                                "Content-Length: 0\r\n\r\n";
	expect_status_n(nul_value, sizeof(nul_value) - 1, "HTTP/1.1 400", "NUL");
	static const char nul_version[] = "GET /a HTTP/1.1\0junk\r\nHost: x\r\n\r\n";
	expect_status_n(nul_version, sizeof(nul_version) - 1, "HTTP/1.1 400", "NUL");
	static const char nul_name[] = "GET /a HTTP/1.1\r\nHost: x\r\nX-\0Test: a\r\n\r\n";
	expect_status_n(nul_name, sizeof(nul_name) - 1, "HTTP/1.1 400", NULL);
	expect_status("GET /a HTTP/1.1\r\nHost: x\r\nX-Test: a\rb\r\n\r\n", "HTTP/1.1 400", "CR");
	CHECK_INT(requests_seen, before);
	/* HTTP/1.0 needs no Host */
	char buf[4096];
	int fd = connect_srv();
	send_str(fd, "GET /ten HTTP/1.0\r\n\r\n");
	recv_until(fd, buf, sizeof(buf), "}");
	CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
	close(fd);
}

/* Requests pipelined and then the sending side shut: every one answered, in
 * order (one of them answered later by the handler), then the close. */
static void
test_pipelined_half_close(void)
{
	char buf[8192];
	int fd = connect_srv();
	send_str(fd, "GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
	             "POST /later HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
	             "POST /three HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nZ");
	shutdown(fd, SHUT_WR);
	recv_until(fd, buf, sizeof(buf), "\"first\":\"Z\"}");
	const char *one = strstr(buf, "\"method\":\"GET\"");
	const char *two = strstr(buf, "HTTP/1.1 202");
	const char *three = strstr(buf, "\"first\":\"Z\"");
	CHECK(one != NULL);
	CHECK(two != NULL);
	CHECK(three != NULL);
	CHECK(one && two && three && one < two && two < three);
	/* only the last answer announces the close */
	const char *close_hdr = strstr(buf, "Connection: close");
	CHECK(close_hdr && two && close_hdr > two);
	CHECK(peer_closed(fd));
	close(fd);
}

static void
send_head(int fd, size_t content_length, size_t body_bytes)
{
	char h[256];
	snprintf(h, sizeof(h), "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n",
	         content_length);
	send_str(fd, h);
	for (size_t i = 0; i < body_bytes; i++)
		send_all(fd, "b", 1);
}

static void
send_body(int fd, size_t n)
{
	char b[2048];
	memset(b, 'b', n);
	send_all(fd, b, n);
}

/* srv_budget: bodies of 1000 bytes at most, 2002 bytes of them at once. A
 * body is charged as it arrives (plus its NUL: two whole bodies fit); a new
 * one that does not fit is 503 with Retry-After at once, and what is held
 * finishes. */
static void
test_body_budget(void)
{
	char buf[4096];
	int a = connect_port(port_budget), b = connect_port(port_budget);
	send_head(a, 1000, 0);
	send_body(a, 999);
	CHECK(wait_stat(srv_budget, stat_body, 1000));
	send_head(b, 1000, 0); /* fits: 1002 left */
	int c = connect_port(port_budget); /* a small one comes and goes */
	send_head(c, 10, 0);
	send_body(c, 10);
	recv_until(c, buf, sizeof(buf), "}");
	CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
	close(c);
	send_body(b, 999);
	CHECK(wait_stat(srv_budget, stat_body, 2000));
	/* 2 bytes left: a new body of 3 is refused before it is read */
	int d = connect_port(port_budget);
	send_head(d, 3, 0);
	recv_until(d, buf, sizeof(buf), "}\n");
	CHECK(strncmp(buf, "HTTP/1.1 503", 12) == 0);
	CHECK(strstr(buf, "Retry-After: ") != NULL);
	close(d);
	/* what was held is not touched */
	send_body(a, 1);
	recv_until(a, buf, sizeof(buf), "}");
	CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0 && strstr(buf, "\"len\":1000") != NULL);
	send_body(b, 1);
	recv_until(b, buf, sizeof(buf), "}");
	CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0 && strstr(buf, "\"len\":1000") != NULL);
	close(a);
	close(b);
	CHECK(wait_stat(srv_budget, stat_body, 0));

	/* a body that must grow past what others took meanwhile: 503 */
	int f = connect_port(port_budget), g = connect_port(port_budget), h = connect_port(port_budget);
	send_head(f, 1000, 0);
	send_body(f, 100);
	CHECK(wait_stat(srv_budget, stat_body, 101));
	send_head(g, 1000, 0);
	send_body(g, 999);
	CHECK(wait_stat(srv_budget, stat_body, 1101));
	send_head(h, 800, 0);
	send_body(h, 799);
	CHECK(wait_stat(srv_budget, stat_body, 1901));
	send_body(f, 899);
	recv_until(f, buf, sizeof(buf), "}\n");
	CHECK(strncmp(buf, "HTTP/1.1 503", 12) == 0);
	CHECK(strstr(buf, "Retry-After: ") != NULL);
	send_body(g, 1);
	recv_until(g, buf, sizeof(buf), "}");
	CHECK(strstr(buf, "\"len\":1000") != NULL);
	send_body(h, 1);
	recv_until(h, buf, sizeof(buf), "}");
	CHECK(strstr(buf, "\"len\":800") != NULL);
	close(f);
	close(g);
	close(h);
	CHECK(wait_stat(srv_budget, stat_body, 0));
	struct relay_http_stats st;
	relay_http_server_stats(srv_budget, &st);
	CHECK_INT(st.over_budget, 2);
}

/* srv_full: 3 connections at most, a 10 s header deadline. A new connection
 * to a full table closes the one that has waited longest for a request;
 * one whose request the handler holds is not a candidate. */
static void
test_full_table(void)
{
	char buf[4096];
	int a = connect_port(port_full);
	CHECK(wait_stat(srv_full, stat_conns, 1));
	int b = connect_port(port_full);
	CHECK(wait_stat(srv_full, stat_conns, 2));
	int c = connect_port(port_full);
	CHECK(wait_stat(srv_full, stat_conns, 3));
	int before = requests_seen;
	send_str(a, "POST /later HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
	/* a's request must be with the handler before d comes, or a is the
	 * one that waited longest (10 s at most: a loaded machine is slow) */
	for (int i = 0; i < 1000 && requests_seen == before; i++)
		usleep(10000);
	CHECK(requests_seen > before);
	/* full; b has waited longest: it goes, d is served at once */
	int d = connect_port(port_full);
	send_str(d, "GET /d HTTP/1.1\r\nHost: x\r\n\r\n");
	recv_until(d, buf, sizeof(buf), "}");
	CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
	CHECK(peer_closed(b));
	CHECK(still_open(c));
	recv_until(a, buf, sizeof(buf), "}");
	CHECK(strncmp(buf, "HTTP/1.1 202", 12) == 0);
	struct relay_http_stats st;
	relay_http_server_stats(srv_full, &st);
	CHECK_INT(st.evicted, 1);
	close(a);
	close(b);
	close(c);
	close(d);
}

int
main(void)
{
	evthread_use_pthreads();
	base = event_base_new();
	later_ev = evtimer_new(base, later_cb, NULL);
	struct relay_http_limits lim = {
		.max_body_bytes = 1000, .header_timeout_ms = 300, .body_timeout_ms = 300,
		.idle_timeout_ms = 2000, .max_connections = 64,
	};
	CHECK_INT(relay_http_server_new(base, &lim, on_headers, on_request, NULL, &srv), 0);
	CHECK_INT(relay_http_server_listen(srv, "127.0.0.1:0"), 0);
	CHECK(relay_http_server_listen(srv, "nonsense") != 0);
	port = relay_http_server_port(srv, 0, NULL, 0);
	CHECK(port > 0);
	struct relay_http_limits lim_budget = {
		.max_body_bytes = 1000, .body_budget_bytes = 2002, .header_timeout_ms = 5000,
		.body_timeout_ms = 5000, .max_connections = 64,
	};
	CHECK_INT(relay_http_server_new(base, &lim_budget, on_headers, on_request, NULL, &srv_budget),
	          0);
	CHECK_INT(relay_http_server_listen(srv_budget, "127.0.0.1:0"), 0);
	port_budget = relay_http_server_port(srv_budget, 0, NULL, 0);
	struct relay_http_limits lim_full = {
		.max_body_bytes = 1000, .header_timeout_ms = 10000, .body_timeout_ms = 10000,
		.idle_timeout_ms = 10000, .max_connections = 3,
	};
	CHECK_INT(relay_http_server_new(base, &lim_full, on_headers, on_request, NULL, &srv_full), 0);
	CHECK_INT(relay_http_server_listen(srv_full, "127.0.0.1:0"), 0);
	port_full = relay_http_server_port(srv_full, 0, NULL, 0);
	pthread_create(&loop_thread, NULL, loop_main, NULL);

	RUN(test_simple_and_keepalive);
	RUN(test_lines);
	RUN(test_errors);
	RUN(test_timeouts);
	RUN(test_expect_continue);
	RUN(test_late_answer_and_gone_client);
	RUN(test_half_close_and_head);
	RUN(test_rfc9112);
	RUN(test_pipelined_half_close);
	RUN(test_body_budget);
	RUN(test_full_table);

	event_base_loopbreak(base);
	pthread_join(loop_thread, NULL);
	if (held) /* a request whose client left: answering it frees it */
		relay_http_respond(held, 202, "application/json", "{}", 2, NULL);
	relay_http_server_free(srv);
	relay_http_server_free(srv_budget);
	relay_http_server_free(srv_full);
	event_free(later_ev);
	event_base_free(base);
	return check_done();
}
