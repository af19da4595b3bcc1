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
static struct relay_http_server *srv;
static int port;
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
	char out[256];
	int n = snprintf(out, sizeof(out), "{\"method\":\"%s\",\"len\":%zu,\"x\":\"%s\",\"first\":\"%c\"}",
	                 relay_http_request_method(req), len,
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
connect_srv(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
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
	                 "POST /b HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
	send_all(fd, r2, strlen(r2));
	recv_until(fd, buf, sizeof(buf), "\"first\":\"o\"}");
	CHECK(strstr(buf, "\"method\":\"GET\"") != NULL);
	CHECK(strstr(buf, "\"len\":2") != NULL);
	CHECK(strstr(buf, "Connection: close") != NULL);
	CHECK(peer_closed(fd));
	close(fd);
}

static void
expect_status(const char *req, const char *status_line, const char *body_part)
{
	char buf[4096];
	int fd = connect_srv();
	send_all(fd, req, strlen(req));
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
test_errors(void)
{
	int before = requests_seen;
	expect_status("POST /nope HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", "HTTP/1.1 404", "unknown source");
	/* over the limit: answered from the headers, body never needed */
	expect_status("POST /a HTTP/1.1\r\nContent-Length: 999999\r\n\r\n", "HTTP/1.1 413",
	              "over the limit");
	expect_status("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 411", NULL);
	expect_status("POST /a HTTP/1.1\r\nContent-Length: x\r\n\r\n", "HTTP/1.1 400", NULL);
	expect_status("POST /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
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
	send_all(fd, "POST /a HTTP/1.1\r\n", 18);
	size_t got = recv_until(fd, buf, sizeof(buf), "}\n");
	CHECK(got > 0 && strncmp(buf, "HTTP/1.1 408", 12) == 0);
	CHECK(strstr(buf, "headers") != NULL);
	close(fd);
	/* slow body */
	fd = connect_srv();
	send_all(fd, "POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", 43);
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
	send_all(fd, "POST /a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", 61);
	recv_until(fd, buf, sizeof(buf), "\r\n\r\n");
	CHECK(strncmp(buf, "HTTP/1.1 100 Continue", 21) == 0);
	send_all(fd, "xyz", 3);
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
	send_all(fd, "POST /later HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 44);
	recv_until(fd, buf, sizeof(buf), "}");
	CHECK(strstr(buf, "HTTP/1.1 202") != NULL);
	close(fd);
	/* the client leaves before the answer: the answer goes nowhere, no crash */
	int before = requests_seen;
	fd = connect_srv();
	send_all(fd, "POST /later HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 44);
	for (int i = 0; i < 100 && requests_seen == before; i++)
		usleep(10000); /* wait for the server to have read the request */
	close(fd);
	CHECK_INT(requests_seen, before + 1);
	/* and the server still serves */
	fd = connect_srv();
	send_all(fd, "GET /x HTTP/1.0\r\n\r\n", 19);
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
	send_all(fd, "POST /later HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 44);
	shutdown(fd, SHUT_WR);
	recv_until(fd, buf, sizeof(buf), "}");
	CHECK(strstr(buf, "HTTP/1.1 202") != NULL);
	CHECK(strstr(buf, "Connection: close") != NULL);
	CHECK(peer_closed(fd));
	close(fd);
	/* HEAD: the headers GET would get, and no body */
	fd = connect_srv();
	send_all(fd, "HEAD /x HTTP/1.1\r\n\r\nGET /y HTTP/1.1\r\nConnection: close\r\n\r\n", 58);
	recv_until(fd, buf, sizeof(buf), "\"first\":\"-\"}");
	CHECK(strstr(buf, "HTTP/1.1 200") != NULL);
	CHECK(strstr(buf, "\"method\":\"HEAD\"") == NULL);
	CHECK(strstr(buf, "\"method\":\"GET\"") != NULL);
	close(fd);
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
	pthread_create(&loop_thread, NULL, loop_main, NULL);

	RUN(test_simple_and_keepalive);
	RUN(test_errors);
	RUN(test_timeouts);
	RUN(test_expect_continue);
	RUN(test_late_answer_and_gone_client);
	RUN(test_half_close_and_head);

	event_base_loopbreak(base);
	pthread_join(loop_thread, NULL);
	if (held) /* a request whose client left: answering it frees it */
		relay_http_respond(held, 202, "application/json", "{}", 2, NULL);
	relay_http_server_free(srv);
	event_free(later_ev);
	event_base_free(base);
	return check_done();
}
