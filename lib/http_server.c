/*
 * A small HTTP/1.1 server for webhooks: see include/odoo_relay/http_server.h
 * for why this is not evhttp, and for the life of a request.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "odoo_relay/clock.h"
#include "odoo_relay/error.h"
#include "odoo_relay/http_server.h"
#include "odoo_relay/utf8.h"

#define MAX_LISTENERS 16
/* After an early answer (the body was not read), keep draining what the
 * client still sends for this long, so that closing the socket with unread
 * data does not reset the connection before the client reads the answer. */
#define LINGER_MS 2000
#define LINGER_MAX_BYTES (1u << 20)
/* Input buffered beyond the headers' limit before reading pauses. */
#define READ_AHEAD (64u * 1024)
/* The body budget when the limits give none (and at least max_body_bytes). */
#define BODY_BUDGET_DEFAULT ((size_t)32 << 20)
/* What a request refused for the body budget is told. */
#define BUDGET_RETRY_AFTER "Retry-After: 5\r\n"

enum conn_state {
	CONN_IDLE,      /* between requests */
	CONN_HEADERS,   /* reading the request line and headers */
	CONN_BODY,      /* reading Content-Length bytes */
	CONN_WAIT,      /* the handler has the request */
	CONN_WRITING,   /* the answer is being written */
	CONN_LINGER,    /* answered early, draining before close */
};

struct http_header {
	char *name;
	char *value;
};

/*
 * The request line and header lines, copied out of the input buffer into
 * blocks the request owns and parsed in place: the method, path, query and
 * every header name and value point into them. One allocation serves a
 * whole request's headers, where a copy of each line and of each name and
 * value cost three allocations and three frees per header.
 */
#define TEXT_BLOCK 1000 /* what glibc's per-thread cache takes */

struct text_block {
	struct text_block *next;
	size_t used, cap;
	char data[];
};

struct relay_http_request {
	struct http_conn *conn;    /* NULL once the client is gone */
	struct text_block *text;   /* the newest first */
	char *method;
	char *path;
	char *query;               /* after "?", without the fragment; NULL if none */
	int minor;                 /* HTTP/1.<minor> */
	struct http_header *headers;
	size_t n_headers, cap_headers;
	uint64_t content_length;
	int has_length;
	unsigned char *body;
	size_t body_len;
	size_t body_cap;           /* allocated, and charged to the server's budget */
	int keep_alive;
	int body_read;
	int answered;
	int64_t started_ms;
};

struct http_conn {
	struct relay_http_server *srv;
	struct bufferevent *bev;
	struct event *timer;
	struct event *deferred;    /* runs conn_deferred_cb on the next loop turn */
	enum conn_state state;
	int broken;                /* a write failed: free at the next loop turn */
	int peer_done;             /* the client shut its sending side */
	struct relay_http_request *req;
	size_t header_bytes;
	size_t lingered;
	int close_after;
	int waiting;               /* on srv->waiting: no complete request yet */
	uint64_t turn;             /* the loop turn it was accepted in (loop_turn) */
	char peer[INET6_ADDRSTRLEN]; /* the client's address, "" if not IP */
	LIST_ENTRY(http_conn) link;
	TAILQ_ENTRY(http_conn) wait_link;
};

struct relay_http_server {
	struct event_base *base;
	struct relay_http_limits lim;
	relay_http_headers_fn on_headers;
	relay_http_request_fn on_request;
	void *arg;
	struct evconnlistener *listeners[MAX_LISTENERS];
	size_t n_listeners;
	struct event *resume;      /* re-enables accepting after EMFILE */
	unsigned n_conns;
	int paused;
	size_t body_bytes;         /* body_cap of every request with a connection */
	uint64_t evicted, over_budget;
	/* Loop turns, counted: the marker event runs after the accepts of the
	 * turn that armed it, so accepts before it share a number. The loop's
	 * cached time cannot tell turns apart: libevent reads a coarse clock,
	 * and turns a few ms apart showed the same time, which made every
	 * waiting connection "this turn's" and none a candidate for room. */
	struct event *turn_ev;
	uint64_t turn_seq;
	int turn_armed;
	uint64_t burst_turn;       /* the loop turn of the accepts counted in burst */
	unsigned burst;
	LIST_HEAD(, http_conn) conns;
	/* Connections without a complete request (idle, reading, lingering),
	 * the one that has waited longest first: closed first when the table
	 * is full. */
	TAILQ_HEAD(, http_conn) waiting;
};

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_process(struct http_conn *c);
static void conn_flush(struct http_conn *c);

static void
arm_timer(struct http_conn *c, int64_t ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	evtimer_add(c->timer, &tv);
}

/* The body's memory leaves the budget when the request is freed, or when
 * its connection goes and the handler keeps it (the server no longer knows
 * when it will be freed). */
static void
request_uncharge(struct relay_http_request *req)
{
	if (req->conn && req->body_cap) {
		req->conn->srv->body_bytes -= req->body_cap;
		req->body_cap = 0;
	}
}

static void
request_free(struct relay_http_request *req)
{
	if (!req)
		return;
	request_uncharge(req);
	while (req->text) {
		struct text_block *b = req->text;

		req->text = b->next;
		free(b);
	}
	free(req->headers);
	free(req->body);
	free(req);
}

static void
listeners_enable(struct relay_http_server *srv, int on)
{
	for (size_t i = 0; i < srv->n_listeners; i++) {
		if (!srv->listeners[i])
			continue;
		if (on)
			evconnlistener_enable(srv->listeners[i]);
		else
			evconnlistener_disable(srv->listeners[i]);
	}
}

/* What bodies may still take (0 after a reload to a budget below what is held). */
static size_t
budget_left(const struct relay_http_server *srv)
{
	return srv->body_bytes < srv->lim.body_budget_bytes
	       ? srv->lim.body_budget_bytes - srv->body_bytes : 0;
}

/* Accept while there is room, or a waiting connection to close for room. */
static void
update_accepting(struct relay_http_server *srv)
{
	int want = srv->n_conns < srv->lim.max_connections || !TAILQ_EMPTY(&srv->waiting);
	if (want && srv->paused) {
		srv->paused = 0;
		listeners_enable(srv, 1);
	} else if (!want && !srv->paused) {
		srv->paused = 1;
		listeners_enable(srv, 0);
	}
}

/* The connection waits for a request (again): the newest of the waiting. */
static void
wait_enter(struct http_conn *c)
{
	if (c->waiting)
		TAILQ_REMOVE(&c->srv->waiting, c, wait_link);
	TAILQ_INSERT_TAIL(&c->srv->waiting, c, wait_link);
	c->waiting = 1;
	update_accepting(c->srv);
}

/* The connection has a complete request, or goes. */
static void
wait_leave(struct http_conn *c)
{
	if (!c->waiting)
		return;
	TAILQ_REMOVE(&c->srv->waiting, c, wait_link);
	c->waiting = 0;
	update_accepting(c->srv);
}

static void
conn_free(struct http_conn *c)
{
	struct relay_http_server *srv = c->srv;

	if (c->req) {
		if (c->state == CONN_WAIT) {
			/* the handler still holds it: it will answer into the void */
			request_uncharge(c->req);
			c->req->conn = NULL;
		} else {
			request_free(c->req);
		}
		c->req = NULL;
	}
	if (c->waiting) {
		TAILQ_REMOVE(&srv->waiting, c, wait_link);
		c->waiting = 0;
	}
	LIST_REMOVE(c, link);
	bufferevent_free(c->bev);
	event_free(c->timer);
	event_free(c->deferred);
	free(c);
	srv->n_conns--;
	update_accepting(srv);
}

static const char *
status_text(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

/* The Date header, formatted once a second. */
static const char *
http_date(void)
{
	static __thread time_t last;
	static __thread char buf[64];
	time_t now = time(NULL);
	if (now != last) {
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		last = now;
	}
	return buf;
}

void
relay_http_respond(struct relay_http_request *req, int status, const char *content_type,
                   const void *body, size_t len, const char *extra_headers)
{
	struct http_conn *c = req->conn;

	if (!c || req->answered) {
		if (!c)
			request_free(req);
		return;
	}
	req->answered = 1;
	/* A client that shut its sending side after pipelining more requests
	 * gets them answered too: the connection closes after the last. */
	c->close_after = !req->keep_alive || !req->body_read ||
	                 (c->peer_done && evbuffer_get_length(bufferevent_get_input(c->bev)) == 0);

	struct evbuffer *out = bufferevent_get_output(c->bev);
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Length: %zu\r\n",
	                    status, status_text(status), http_date(), len);
	if (content_type)
		evbuffer_add_printf(out, "Content-Type: %s\r\n", content_type);
	if (c->close_after)
		evbuffer_add(out, "Connection: close\r\n", 19);
	if (extra_headers)
		evbuffer_add(out, extra_headers, strlen(extra_headers));
	evbuffer_add(out, "\r\n", 2);
	/* HEAD gets the headers of the answer GET would get, no body. */
	if (len && !(req->method && strcmp(req->method, "HEAD") == 0))
		evbuffer_add(out, body, len);

	evtimer_del(c->timer);
	c->state = CONN_WRITING;
	wait_leave(c);
	c->req = NULL;
	request_free(req);
	/* Bound the write: a client that never reads its answer is dropped. */
	arm_timer(c, c->srv->lim.body_timeout_ms);
	conn_flush(c);
}

static void
json_escape_into(char *dst, size_t n, const char *s)
{
	size_t o = 0;
	for (; s && *s && o + 7 < n; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\') {
			dst[o++] = '\\';
			dst[o++] = (char)ch;
		} else if (ch < 0x20) {
			o += (size_t)snprintf(dst + o, n - o, "\\u%04x", ch);
		} else {
			dst[o++] = (char)ch;
		}
	}
	dst[o] = '\0';
	/* a detail cut to fit stays one JSON string */
	relay_utf8_trim(dst);
}

void
relay_http_respond_error(struct relay_http_request *req, int status, const char *error,
                         const char *detail, const char *extra_headers)
{
	char e[256], d[1024], body[1400];
	json_escape_into(e, sizeof(e), error);
	json_escape_into(d, sizeof(d), detail ? detail : "");
	int len = snprintf(body, sizeof(body), "{\"error\":\"%s\",\"detail\":\"%s\"}\n", e, d);
	relay_http_respond(req, status, "application/json", body, (size_t)len, extra_headers);
}

/* An answer the server gives on its own, before the handler saw the request
 * (or, for the body budget, before it saw the body). */
static void
conn_fail_with(struct http_conn *c, int status, const char *error, const char *detail,
               const char *extra_headers)
{
	if (!c->req) {
		c->req = calloc(1, sizeof(*c->req));
		if (!c->req) {
			conn_free(c);
			return;
		}
		c->req->conn = c;
	}
	c->req->keep_alive = 0;
	relay_http_respond_error(c->req, status, error, detail, extra_headers);
}

static void
conn_fail(struct http_conn *c, int status, const char *error, const char *detail)
{
	conn_fail_with(c, status, error, detail, NULL);
}

static void
conn_over_budget(struct http_conn *c)
{
	c->srv->over_budget++;
	conn_fail_with(c, 503, "server busy",
	               "too many request bodies are being received at once; retry later",
	               BUDGET_RETRY_AFTER);
}

static int
parse_request_line(struct relay_http_request *req, char *line)
{
	char *sp1 = strchr(line, ' ');
	if (!sp1)
		return -1;
	char *sp2 = strchr(sp1 + 1, ' ');
	if (!sp2 || strchr(sp2 + 1, ' '))
		return -1;
	*sp1 = *sp2 = '\0';
	const char *target = sp1 + 1, *version = sp2 + 1;
	if (!*line || *target != '/')
		return -1;
	if (strncmp(version, "HTTP/1.", 7) != 0 || (version[7] != '0' && version[7] != '1') ||
	    version[8] != '\0')
		return -2;
	for (const char *m = line; *m; m++)
		if (*m < 'A' || *m > 'Z')
			return -1;
	req->minor = version[7] - '0';
	/* in place: the path ends at '?' or '#', the query at '#' */
	char *path = sp1 + 1, *query = NULL;
	size_t plen = strcspn(path, "?#");
	if (path[plen] == '?') {
		query = path + plen + 1;
		query[strcspn(query, "#")] = '\0';
	}
	path[plen] = '\0';
	req->path = path;
	req->query = query;
	req->method = line;
	return 0;
}

static int
add_header(struct relay_http_request *req, char *line)
{
	char *colon = strchr(line, ':');
	if (!colon || colon == line)
		return -1;
	for (char *p = line; p < colon; p++)
		if (*p == ' ' || *p == '\t')
			return -1; /* no white space before the colon (RFC 9112 5.1) */
	*colon = '\0';
	char *v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	size_t vl = strlen(v);
	while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
		v[--vl] = '\0';
	if (req->n_headers == req->cap_headers) {
		size_t cap = req->cap_headers ? req->cap_headers * 2 : 16;
		struct http_header *h = realloc(req->headers, cap * sizeof(*h));
		if (!h)
			return ENOMEM;
		req->headers = h;
		req->cap_headers = cap;
	}
	struct http_header *h = &req->headers[req->n_headers];
	h->name = line;
	h->value = v;
	req->n_headers++;
	return 0;
}

static int
has_token(const char *value, const char *token)
{
	size_t tl = strlen(token);
	for (const char *p = value; p && *p;) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		size_t n = strcspn(p, ", \t");
		if (n == tl && strncasecmp(p, token, tl) == 0)
			return 1;
		p += n;
	}
	return 0;
}

/* The headers are in: check framing, then let the handler look. Returns 0 to
 * read the body, 1 when the request was answered. */
static int
headers_done(struct http_conn *c)
{
	struct relay_http_request *req = c->req;
	const char *te = relay_http_request_header(req, "Transfer-Encoding");
	const char *conn = relay_http_request_header(req, "Connection");

	req->keep_alive = req->minor >= 1 ? !(conn && has_token(conn, "close"))
	                                  : (conn && has_token(conn, "keep-alive"));
	size_t hosts = 0;
	for (size_t i = 0; i < req->n_headers; i++)
		hosts += strcasecmp(req->headers[i].name, "Host") == 0;
	if (hosts > 1 || (hosts == 0 && req->minor >= 1)) { /* RFC 9112 3.2 */
		conn_fail(c, 400, "bad request",
		          hosts ? "more than one Host header" : "an HTTP/1.1 request needs a Host header");
		return 1;
	}
	if (te) {
		conn_fail(c, 411, "length required",
		          "chunked request bodies are not accepted; send Content-Length");
		return 1;
	}
	for (size_t i = 0; i < req->n_headers; i++) {
		if (strcasecmp(req->headers[i].name, "Content-Length") != 0)
			continue;
		const char *v = req->headers[i].value;
		char *end;
		if (*v < '0' || *v > '9') {
			conn_fail(c, 400, "bad request", "malformed Content-Length");
			return 1;
		}
		errno = 0;
		unsigned long long n = strtoull(v, &end, 10);
		if (errno || *end || (req->has_length && n != req->content_length)) {
			conn_fail(c, 400, "bad request", "malformed or conflicting Content-Length");
			return 1;
		}
		req->content_length = n;
		req->has_length = 1;
	}

	c->state = CONN_WAIT; /* the handler may keep the request from here */
	if (c->srv->on_headers(req, c->srv->arg))
		return 1;
	c->state = CONN_HEADERS;

	if (req->content_length > c->srv->lim.max_body_bytes) {
		char d[128];
		snprintf(d, sizeof(d), "body of %llu bytes is over the limit of %zu bytes",
		         (unsigned long long)req->content_length, c->srv->lim.max_body_bytes);
		relay_http_respond_error(req, 413, "payload too large", d, NULL);
		return 1;
	}
	/* The body is buffered as it arrives (read_body): a client that
	 * announces a large body and sends little holds little. A new body
	 * that cannot fit in what is left of the budget is refused now. */
	if (req->content_length > budget_left(c->srv)) {
		c->srv->over_budget++;
		relay_http_respond_error(req, 503, "server busy",
		                         "too many request bodies are being received at once; "
		                         "retry later", BUDGET_RETRY_AFTER);
		return 1;
	}
	const char *expect = relay_http_request_header(req, "Expect");
	if (expect && strcasecmp(expect, "100-continue") == 0 && req->minor >= 1 &&
	    req->content_length > evbuffer_get_length(bufferevent_get_input(c->bev))) {
		evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
		conn_flush(c);
	}
	c->state = CONN_BODY;
	evtimer_del(c->timer);
	arm_timer(c, c->srv->lim.body_timeout_ms);
	return 0;
}

/* n bytes of req's text blocks (n > 0), or NULL without memory. */
static char *
request_text(struct relay_http_request *req, size_t n)
{
	struct text_block *b = req->text;

	if (!b || b->cap - b->used < n) {
		size_t cap = n > TEXT_BLOCK - sizeof(*b) ? n : TEXT_BLOCK - sizeof(*b);

		if (!(b = malloc(sizeof(*b) + cap)))
			return NULL;
		b->used = 0;
		b->cap = cap;
		b->next = req->text;
		req->text = b;
	}
	b->used += n;
	return b->data + b->used - n;
}

/* The next whole line of c's input, without its end of line (CRLF or a
 * bare LF, as evbuffer_readln takes them), moved into the request's text
 * and NUL-terminated: 0 with *line and *len; 0 with *line NULL when the
 * line takes the request line and headers over the limit (nothing is
 * copied); 1 when no whole line has arrived; ENOMEM. */
static int
next_line(struct http_conn *c, char **line, size_t *len)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t eol_len = 0;
	struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);

	if (eol.pos < 0)
		return 1;
	*len = (size_t)eol.pos;
	*line = NULL;
	c->header_bytes += *len + 2;
	if (c->header_bytes > c->srv->lim.max_header_bytes)
		return 0;
	if (!(*line = request_text(c->req, *len + 1)))
		return ENOMEM;
	if (evbuffer_remove(in, *line, *len) != (int)*len)
		return ENOMEM;
	(*line)[*len] = '\0';
	evbuffer_drain(in, eol_len);
	return 0;
}

static void
read_headers(struct http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	for (;;) {
		size_t len = 0;
		char *line = NULL;
		int got = next_line(c, &line, &len);
		if (got == ENOMEM) {
			conn_free(c);
			return;
		}
		if (got) {
			if (c->header_bytes + evbuffer_get_length(in) > c->srv->lim.max_header_bytes)
				conn_fail(c, 431, "request header fields too large",
				          "request line and headers are over the limit");
			else if (c->peer_done) /* the rest will never come */
				conn_free(c);
			return;
		}
		if (!line) { /* over the limit: nothing was copied */
			conn_fail(c, 431, "request header fields too large",
			          "request line and headers are over the limit");
			return;
		}
		/* A NUL would cut the line short of what the client sent (two
		 * values could become one); a bare CR is not a line end (RFC
		 * 9112 2.2). Either is refused wherever it is. */
		if (memchr(line, '\0', len) || memchr(line, '\r', len)) {
			conn_fail(c, 400, "bad request", "NUL or bare CR in the request line or a header");
			return;
		}
		int rc = 0;
		if (!c->req->method) {
			if (len == 0) /* tolerate empty lines before a request (RFC 9112 2.2) */
				continue;
			rc = parse_request_line(c->req, line);
			if (rc == -2) {
				conn_fail(c, 505, "http version not supported", "only HTTP/1.0 and 1.1");
				return;
			}
		} else if (len == 0) {
			if (headers_done(c))
				return;
			conn_process(c);
			return;
		} else if (line[0] == ' ' || line[0] == '\t') {
			rc = -1; /* obsolete line folding */
		} else if (c->req->n_headers >= c->srv->lim.max_headers) {
			conn_fail(c, 431, "request header fields too large", "too many headers");
			return;
		} else {
			rc = add_header(c->req, line);
		}
		if (rc == ENOMEM) {
			conn_free(c);
			return;
		}
		if (rc) {
			conn_fail(c, 400, "bad request", "malformed request line or header");
			return;
		}
	}
}

static void
read_body(struct http_conn *c)
{
	struct relay_http_server *srv = c->srv;
	struct relay_http_request *req = c->req;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t want = (size_t)req->content_length - req->body_len;
	size_t n = evbuffer_get_length(in);
	if (n > want)
		n = want;
	if (n && req->body_len + n + 1 > req->body_cap) {
		/* Grow to what has arrived (and the NUL), doubling so that a
		 * body trickling in is not copied over and over, never past
		 * Content-Length, and within the budget. */
		size_t need = req->body_len + n + 1, cap = req->body_cap * 2;
		if (cap < need)
			cap = need;
		if (cap > (size_t)req->content_length + 1)
			cap = (size_t)req->content_length + 1;
		if (cap - req->body_cap > budget_left(srv))
			cap = need;
		size_t add = cap - req->body_cap;
		if (add > budget_left(srv)) {
			conn_over_budget(c);
			return;
		}
		unsigned char *b = realloc(req->body, cap);
		if (!b) {
			srv->over_budget++;
			conn_fail_with(c, 503, "out of memory", "cannot buffer the body",
			               BUDGET_RETRY_AFTER);
			return;
		}
		req->body = b;
		req->body_cap = cap;
		srv->body_bytes += add;
	}
	if (n) {
		int got = evbuffer_remove(in, req->body + req->body_len, n);
		if (got > 0)
			req->body_len += (size_t)got;
	}
	if (req->body_len < req->content_length) {
		if (c->peer_done) /* the rest will never come */
			conn_free(c);
		return;
	}
	if (req->body)
		req->body[req->body_len] = '\0';
	req->body_read = 1;
	evtimer_del(c->timer);
	c->state = CONN_WAIT;
	wait_leave(c);
	/* Nothing more is parsed until this request is answered: pipelined
	 * bytes wait in the input, which the read watermark bounds. */
	c->srv->on_request(req, c->srv->arg);
}

static void
conn_process(struct http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	for (;;) {
		switch (c->state) {
		case CONN_IDLE:
			if (evbuffer_get_length(in) == 0) {
				if (c->peer_done)
					conn_free(c);
				return;
			}
			c->req = calloc(1, sizeof(*c->req));
			if (!c->req) {
				conn_free(c);
				return;
			}
			c->req->conn = c;
			c->req->started_ms = relay_mono_ms();
			c->header_bytes = 0;
			c->state = CONN_HEADERS;
			evtimer_del(c->timer);
			arm_timer(c, c->srv->lim.header_timeout_ms);
			break;
		case CONN_HEADERS:
			read_headers(c);
			return;
		case CONN_BODY:
			read_body(c);
			return;
		case CONN_LINGER: {
			size_t n = evbuffer_get_length(in);
			evbuffer_drain(in, n);
			c->lingered += n;
			if (c->lingered > LINGER_MAX_BYTES)
				conn_free(c);
			return;
		}
		default:
			return;
		}
	}
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	conn_process(arg);
}

/* The answer is written: close, or wait for the next request. */
static void
conn_written(struct http_conn *c)
{
	evtimer_del(c->timer);
	if (c->close_after && c->peer_done) { /* nothing more will come: done */
		conn_free(c);
		return;
	}
	if (c->close_after) {
		/* Half-close and drain, so unread request bytes do not turn the
		 * close into a reset that could destroy the answer in flight. */
		shutdown(bufferevent_getfd(c->bev), SHUT_WR);
		c->state = CONN_LINGER;
		c->lingered = 0;
		wait_enter(c);
		arm_timer(c, LINGER_MS);
		conn_process(c);
		return;
	}
	/* Keep-alive, or requests the client pipelined before it shut its
	 * side: the next one, if any, is in the input already. After a shut
	 * side, an unfinished one closes the connection (read_headers,
	 * read_body), since nothing more will come. */
	c->state = CONN_IDLE;
	wait_enter(c);
	arm_timer(c, c->srv->lim.idle_timeout_ms);
	conn_process(c);
}

/*
 * Write what is pending straight to the socket. Most answers fit at once,
 * which spares the two epoll changes and the loop turn of a write event; the
 * rest, if any, goes out through the bufferevent's write event. What comes
 * after the write (the next request, the close) runs at the next loop turn,
 * never inside the caller, which may be deep in parsing this connection.
 */
static void
conn_flush(struct http_conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	int failed = 0;
	/* A socket bufferevent keeps its output's front frozen so that only
	 * it drains it; it is idle here (EV_WRITE off), so drain it ourselves
	 * the way it would. */
	evbuffer_unfreeze(out, 1);
	while (evbuffer_get_length(out) > 0) {
		int n = evbuffer_write(out, fd);
		if (n > 0 || (n < 0 && errno == EINTR))
			continue;
		failed = !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
		break;
	}
	evbuffer_freeze(out, 1);
	if (failed) {
		c->broken = 1; /* the peer is gone */
		event_active(c->deferred, EV_TIMEOUT, 0);
		return;
	}
	if (evbuffer_get_length(out) > 0)
		bufferevent_enable(c->bev, EV_WRITE);
	else if (c->state == CONN_WRITING)
		event_active(c->deferred, EV_TIMEOUT, 0);
}

static void
conn_deferred_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;
	if (c->broken)
		conn_free(c);
	else if (c->state == CONN_WRITING &&
	         evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_written(c);
}

/* The bufferevent wrote the rest of an answer that did not fit at once. */
static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct http_conn *c = arg;
	bufferevent_disable(bev, EV_WRITE);
	if (c->state == CONN_WRITING)
		conn_written(c);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct http_conn *c = arg;
	/* A client may shut its sending side once its request is out and
	 * still read the answer: a request being answered is finished, then
	 * the connection closes. Anything else ends here. */
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    (c->state == CONN_WAIT || c->state == CONN_WRITING)) {
		c->peer_done = 1;
		/* requests pipelined before the shut are answered first */
		if (evbuffer_get_length(bufferevent_get_input(bev)) == 0)
			c->close_after = 1;
		bufferevent_disable(bev, EV_READ);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		conn_free(c);
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;
	switch (c->state) {
	case CONN_HEADERS:
		conn_fail(c, 408, "request timeout", "request headers not received in time");
		break;
	case CONN_BODY:
		conn_fail(c, 408, "request timeout", "request body not received in time");
		break;
	case CONN_WAIT:
		break; /* the handler's business */
	default:
		conn_free(c);
		break;
	}
}

static void
turn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay_http_server *srv = arg;

	(void)fd;
	(void)what;
	srv->turn_seq++;
	srv->turn_armed = 0;
}

/* The event loop's turn, as a number: the same for every accept this turn,
 * greater afterwards (the marker armed here runs after them). */
static uint64_t
loop_turn(struct relay_http_server *srv)
{
	if (!srv->turn_armed) {
		event_active(srv->turn_ev, EV_TIMEOUT, 0);
		srv->turn_armed = 1;
	}
	return srv->turn_seq;
}

/*
 * The connection to close for room: the one that has waited longest for a
 * complete request, but never one accepted in this turn of the loop (its
 * bytes may be there, not yet read: under a flood of reconnecting clients
 * every connection is young, and a sender would be closed for the loop's
 * slowness, not its own), and, among the EVICT_LOOK oldest, rather one with
 * no unread bytes waiting in its socket. NULL when there is none.
 */
#define EVICT_LOOK 16
static struct http_conn *
evict_candidate(struct relay_http_server *srv)
{
	uint64_t now = loop_turn(srv);
	struct http_conn *c, *first = NULL;
	int n = 0;

	TAILQ_FOREACH(c, &srv->waiting, wait_link) {
		int pending = 0;

		if (n++ == EVICT_LOOK)
			break;
		if (c->turn >= now)
			continue;
		if (!first)
			first = c;
		if (ioctl(bufferevent_getfd(c->bev), FIONREAD, &pending) == 0 && pending > 0)
			continue;
		return c;
	}
	return first;
}

/*
 * Accepts per loop turn. Past this the listeners rest until the next turn,
 * so that the connections just accepted are read before more come: a
 * listener that stays readable under a connection flood would otherwise
 * accept (and close for room) for as long as the flood lasts.
 */
#define ACCEPT_BURST 64

static void
rest_until_next_turn(struct relay_http_server *srv)
{
	struct timeval zero = { 0, 0 };

	listeners_enable(srv, 0);
	evtimer_add(srv->resume, &zero);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
          void *arg)
{
	struct relay_http_server *srv = arg;
	uint64_t turn = loop_turn(srv);

	if (turn != srv->burst_turn) {
		srv->burst_turn = turn;
		srv->burst = 0;
	}
	if (++srv->burst >= ACCEPT_BURST)
		rest_until_next_turn(srv);
	if (srv->n_conns >= srv->lim.max_connections) {
		/* Full: make room by closing the connection that has waited
		 * longest for a complete request. update_accepting() keeps the
		 * listeners off while there is none. When all that wait came in
		 * this turn, this one is taken over the limit and the listeners
		 * rest until the next turn: one connection over at most. */
		struct http_conn *old = evict_candidate(srv);
		if (old) {
			srv->evicted++;
			conn_free(old);
		} else if (TAILQ_EMPTY(&srv->waiting)) {
			update_accepting(srv);
			goto fail;
		} else {
			rest_until_next_turn(srv);
		}
	}
	struct http_conn *c = calloc(1, sizeof(*c));
	if (!c)
		goto fail;
	c->srv = srv;
	c->turn = turn;
	c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev)
		goto fail_conn;
	fd = -1;
	c->timer = evtimer_new(srv->base, conn_timer_cb, c);
	c->deferred = event_new(srv->base, -1, 0, conn_deferred_cb, c);
	if (!c->timer || !c->deferred)
		goto fail_bev;
	int one = 1;
	if (sa->sa_family == AF_INET)
		evutil_inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, c->peer,
		                 sizeof(c->peer));
	else if (sa->sa_family == AF_INET6)
		evutil_inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, c->peer,
		                 sizeof(c->peer));
	if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
		setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Reading stays on for the connection's life (toggling it costs two
	 * epoll changes a request); what a pipelining client sends ahead waits
	 * in the input, bounded by the high watermark. Writing is enabled only
	 * while an answer did not fit into the socket at once. */
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	bufferevent_setwatermark(c->bev, EV_READ, 0, srv->lim.max_header_bytes + READ_AHEAD);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_disable(c->bev, EV_WRITE);
	bufferevent_enable(c->bev, EV_READ);
	c->state = CONN_IDLE;
	arm_timer(c, srv->lim.header_timeout_ms);
	LIST_INSERT_HEAD(&srv->conns, c, link);
	srv->n_conns++;
	wait_enter(c);
	return;

fail_bev:
	if (c->timer)
		event_free(c->timer);
	if (c->deferred)
		event_free(c->deferred);
	bufferevent_free(c->bev);
fail_conn:
	free(c);
fail:
	if (fd >= 0)
		close(fd);
}

static void
resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay_http_server *srv = arg;
	if (!srv->paused)
		listeners_enable(srv, 1);
}

static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct relay_http_server *srv = arg;
	int err = EVUTIL_SOCKET_ERROR();
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		/* Out of descriptors: stop accepting for a moment instead of
		 * spinning on a listener that stays readable. */
		struct timeval tv = { 0, 100 * 1000 };
		listeners_enable(srv, 0);
		evtimer_add(srv->resume, &tv);
	}
}

void
relay_http_server_set_limits(struct relay_http_server *srv, const struct relay_http_limits *limits)
{
	srv->lim = *limits;
	if (!srv->lim.max_header_bytes)
		srv->lim.max_header_bytes = 16384;
	if (!srv->lim.max_headers)
		srv->lim.max_headers = 100;
	if (srv->lim.header_timeout_ms <= 0)
		srv->lim.header_timeout_ms = 10000;
	if (srv->lim.body_timeout_ms <= 0)
		srv->lim.body_timeout_ms = 30000;
	if (srv->lim.idle_timeout_ms <= 0)
		srv->lim.idle_timeout_ms = 60000;
	if (!srv->lim.max_connections)
		srv->lim.max_connections = 1024;
	if (!srv->lim.body_budget_bytes)
		srv->lim.body_budget_bytes = BODY_BUDGET_DEFAULT;
	if (srv->lim.body_budget_bytes < srv->lim.max_body_bytes)
		srv->lim.body_budget_bytes = srv->lim.max_body_bytes;
	/* What is held already may be over a smaller new budget: it drains
	 * as those requests end, and no body grows until it has. */
	if (srv->base) /* not at relay_http_server_new, where nothing is set up yet */
		update_accepting(srv);
}

int
relay_http_server_new(struct event_base *base, const struct relay_http_limits *limits,
                      relay_http_headers_fn on_headers, relay_http_request_fn on_request,
                      void *arg, struct relay_http_server **out)
{
	struct relay_http_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return ENOMEM;
	relay_http_server_set_limits(srv, limits);
	srv->base = base;
	TAILQ_INIT(&srv->waiting);
	srv->on_headers = on_headers;
	srv->on_request = on_request;
	srv->arg = arg;
	LIST_INIT(&srv->conns);
	srv->resume = evtimer_new(base, resume_cb, srv);
	srv->turn_ev = event_new(base, -1, 0, turn_cb, srv);
	srv->turn_seq = 1; /* 0 is no turn: burst_turn starts there */
	if (!srv->resume || !srv->turn_ev) {
		if (srv->resume)
			event_free(srv->resume);
		if (srv->turn_ev)
			event_free(srv->turn_ev);
		free(srv);
		return ENOMEM;
	}
	*out = srv;
	return 0;
}

static int
add_listener(struct relay_http_server *srv, struct evconnlistener *l)
{
	if (!l)
		return errno ? errno : EIO;
	evconnlistener_set_error_cb(l, accept_error_cb);
	if (srv->paused)
		evconnlistener_disable(l);
	srv->listeners[srv->n_listeners++] = l;
	return 0;
}

int
relay_http_server_listen(struct relay_http_server *srv, const char *hostport)
{
	char host[256];
	const char *port, *h = hostport;
	size_t hl;

	if (srv->n_listeners == MAX_LISTENERS)
		return -RELAY_EINVAL;
	if (*h == '[') {
		const char *close = strchr(h, ']');
		if (!close || close[1] != ':')
			return -RELAY_EINVAL;
		hl = (size_t)(close - h - 1);
		h++;
		port = close + 2;
	} else {
		const char *colon = strrchr(h, ':');
		if (!colon)
			return -RELAY_EINVAL;
		hl = (size_t)(colon - h);
		port = colon + 1;
	}
	if (hl == 0 || hl >= sizeof(host) || !*port)
		return -RELAY_EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';

	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	                          .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai;
	int rc = getaddrinfo(host, port, &hints, &ai);
	if (rc)
		return rc == EAI_SYSTEM ? errno : -RELAY_EINVAL;
	errno = 0;
	struct evconnlistener *l = evconnlistener_new_bind(
		srv->base, accept_cb, srv,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 511,
		ai->ai_addr, (int)ai->ai_addrlen);
	freeaddrinfo(ai);
	return add_listener(srv, l);
}

int
relay_http_server_adopt(struct relay_http_server *srv, int fd)
{
	if (srv->n_listeners == MAX_LISTENERS)
		return -RELAY_EINVAL;
	evutil_make_socket_nonblocking(fd);
	errno = 0;
	struct evconnlistener *l = evconnlistener_new(srv->base, accept_cb, srv,
	                                              LEV_OPT_CLOSE_ON_FREE, -1, fd);
	return add_listener(srv, l);
}

int
relay_http_server_port(const struct relay_http_server *srv, size_t i, char *buf, size_t n)
{
	if (i >= srv->n_listeners || !srv->listeners[i])
		return -1;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(evconnlistener_get_fd(srv->listeners[i]), (struct sockaddr *)&ss, &sl))
		return -1;
	char host[INET6_ADDRSTRLEN] = "";
	int port;
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		evutil_inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		port = ntohs(s6->sin6_port);
		if (buf)
			snprintf(buf, n, "[%s]:%d", host, port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		evutil_inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		port = ntohs(s4->sin_port);
		if (buf)
			snprintf(buf, n, "%s:%d", host, port);
	}
	return port;
}

void
relay_http_server_stop_listening(struct relay_http_server *srv)
{
	for (size_t i = 0; i < srv->n_listeners; i++) {
		if (srv->listeners[i])
			evconnlistener_free(srv->listeners[i]);
		srv->listeners[i] = NULL;
	}
}

void
relay_http_server_stats(const struct relay_http_server *srv, struct relay_http_stats *st)
{
	st->connections = srv->n_conns;
	st->body_bytes = srv->body_bytes;
	st->evicted = srv->evicted;
	st->over_budget = srv->over_budget;
}

void
relay_http_server_free(struct relay_http_server *srv)
{
	if (!srv)
		return;
	relay_http_server_stop_listening(srv);
	while (!LIST_EMPTY(&srv->conns))
		conn_free(LIST_FIRST(&srv->conns));
	event_free(srv->resume);
	event_free(srv->turn_ev);
	free(srv);
}

const char *
relay_http_request_method(const struct relay_http_request *req)
{
	return req->method ? req->method : "";
}

const char *
relay_http_request_path(const struct relay_http_request *req)
{
	return req->path ? req->path : "";
}

const char *
relay_http_request_query(const struct relay_http_request *req)
{
	return req->query;
}

const char *
relay_http_request_peer(const struct relay_http_request *req)
{
	return req->conn ? req->conn->peer : "";
}

const char *
relay_http_request_header(const struct relay_http_request *req, const char *name)
{
	for (size_t i = 0; i < req->n_headers; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

const unsigned char *
relay_http_request_body(const struct relay_http_request *req, size_t *len)
{
	*len = req->body_len;
	return req->body ? req->body : (const unsigned char *)"";
}

uint64_t
relay_http_request_content_length(const struct relay_http_request *req)
{
	return req->content_length;
}

int64_t
relay_http_request_started_ms(const struct relay_http_request *req)
{
	return req->started_ms;
}
