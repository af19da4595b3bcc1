/*
 * odoo-relay: a small HTTP/1.1 server on a libevent loop, for webhooks.
 *
 * Why not evhttp: libevent 2.1's evhttp answers an over-long body with its
 * own HTML page, closes a slow client without a 408, has only inactivity
 * timeouts (a client sending one byte every few seconds keeps a connection
 * forever) and no limit on connections. A webhook receiver must answer every
 * rejection with a JSON body, bound each request's total read time and the
 * number of connections. So this module keeps the connection life cycle
 * itself, on libevent's listener and bufferevents, and reads lines with
 * evbuffer_readln. It speaks the part of HTTP/1.1 that senders use:
 * Content-Length bodies (a chunked body is refused with 411), keep-alive,
 * Expect: 100-continue, one request at a time per connection.
 *
 * Threading: everything runs on the loop thread of the event_base given to
 * relay_http_server_new(); no function here may be called from another
 * thread.
 *
 * Life of a request: the server reads the request line and headers (within
 * header_timeout_ms of the first byte), then calls on_headers. That callback
 * may answer at once (404, 413, 415 ...), in which case the body is never
 * read and the connection is closed after the answer. Otherwise the server
 * reads Content-Length bytes (within body_timeout_ms) and calls on_request.
 * The handler answers, now or later, with relay_http_respond(). Until it
 * does, the connection reads nothing more. If the client goes away before the
 * answer, the request stays valid until answered: relay_http_respond() then
 * only frees it. Every request is answered exactly once.
 *
 * What RFC 9112 asks of a server and this one does: a NUL or a bare CR
 * anywhere in the request line or a header line is 400; an HTTP/1.1 request
 * without exactly one Host header is 400; requests pipelined before the
 * client shut its sending side are all answered, in order, then the
 * connection closes.
 *
 * Memory. Bodies are buffered as their bytes arrive, and all the bodies the
 * server holds at once (being read, or read and waiting for their answer)
 * count against body_budget_bytes: a request whose body would take the total
 * past it is answered 503 with Retry-After, and nothing already read is
 * touched. Each connection holds at most its input buffer (max_header_bytes
 * plus 64 KiB read ahead of a pipelining client, plus one read of 16 KiB),
 * its parsed request line and headers (at most max_header_bytes again) and
 * its answer, so the server's memory is bounded by
 *
 *     max_connections x (2 x max_header_bytes + 80 KiB + 4 KiB) + body_budget_bytes
 *
 * Fairness. When all max_connections are open, a new connection closes the
 * one that has waited longest for a complete request: idle since its
 * accept or its last answer, or still sending its headers or body, or
 * draining after an early answer. A connection whose request the handler
 * holds or whose answer is being written is never closed this way. Only
 * when every connection is of that kind does accepting pause, until one
 * closes or starts to wait again. Slow and idle clients therefore cannot
 * keep a sender that writes its request at once from being served.
 */
#ifndef ODOO_RELAY_HTTP_SERVER_H
#define ODOO_RELAY_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct relay_http_server;
struct relay_http_request;

struct relay_http_limits {
	size_t max_body_bytes;       /* larger Content-Length: 413 before the body is read */
	size_t max_header_bytes;     /* request line + headers [16384]: 431 */
	unsigned max_headers;        /* [100]: 431 */
	int64_t header_timeout_ms;   /* total, from the first byte of a request: 408 */
	int64_t body_timeout_ms;     /* total, from the end of the headers: 408 */
	int64_t idle_timeout_ms;     /* keep-alive connection with no request: closed quietly */
	unsigned max_connections;    /* [1024] past it, the longest waiting connection is closed */
	size_t body_budget_bytes;    /* all bodies held at once [32 MiB, at least max_body_bytes]: 503 */
};

/* What the server has done and holds, for metrics. */
struct relay_http_stats {
	unsigned connections;        /* open now */
	size_t body_bytes;           /* buffered bodies now (what counts against the budget) */
	uint64_t evicted;            /* connections closed to make room for a new one */
	uint64_t over_budget;        /* requests answered 503 for the body budget */
};

/* Called when the request line and headers are in. Return 0 to read the body
 * and go on to on_request, or answer with relay_http_respond() and return 1. */
typedef int (*relay_http_headers_fn)(struct relay_http_request *req, void *arg);
/* Called with the whole request. Must answer, now or later. */
typedef void (*relay_http_request_fn)(struct relay_http_request *req, void *arg);

/*
 * relay_http_server_new - a server with no listener yet. limits is copied;
 * base is borrowed and must outlive the server; arg is passed to both
 * callbacks. The caller owns *out (relay_http_server_free).
 * Returns 0, or ENOMEM (*out untouched).
 */
int relay_http_server_new(struct event_base *base, const struct relay_http_limits *limits,
                          relay_http_headers_fn on_headers, relay_http_request_fn on_request,
                          void *arg, struct relay_http_server **out);

/*
 * relay_http_server_listen - bind and listen on "host:port" (IPv6 as
 * "[addr]:port"; port 0 picks a free port). hostport is borrowed for the
 * call. Returns 0, -RELAY_EINVAL for a malformed or unresolvable address or
 * when the server has 16 listeners already, or the errno of
 * getaddrinfo/bind/listen (EIO when libevent gives none).
 */
int relay_http_server_listen(struct relay_http_server *srv, const char *hostport);

/* relay_http_server_adopt - serve an already listening socket (socket
 * activation). On success the server owns fd from then on (closed by
 * relay_http_server_stop_listening or _free). Returns 0, -RELAY_EINVAL when
 * the server has 16 listeners already, or the errno of libevent's listener
 * (EIO when it gives none); on error fd stays the caller's. */
int relay_http_server_adopt(struct relay_http_server *srv, int fd);

/* relay_http_server_port - the local port of listener i (in the order they
 * were added), or -1 when there is no such listener (or it was closed) or
 * getsockname fails. Writes "host:port" ("[addr]:port" for IPv6) into buf,
 * NUL-terminated and truncated to n bytes, when buf is not NULL and the
 * result is not -1. */
int relay_http_server_port(const struct relay_http_server *srv, size_t i, char *buf, size_t n);

/* relay_http_server_set_limits - use limits (copied) for requests that start
 * from now on; max_connections applies to accepting from now on, and the body
 * budget to bodies that grow from now on (what is held already stays). */
void relay_http_server_set_limits(struct relay_http_server *srv,
                                  const struct relay_http_limits *limits);

/* relay_http_server_stop_listening - close the listeners (and their sockets,
 * adopted ones included), keep connections. Cannot fail; a second call does
 * nothing. */
void relay_http_server_stop_listening(struct relay_http_server *srv);

/* relay_http_server_stats - fill *st (see struct relay_http_stats), a
 * snapshot owned by the caller. Cannot fail. */
void relay_http_server_stats(const struct relay_http_server *srv, struct relay_http_stats *st);

/* relay_http_server_free - close listeners and connections. Requests still
 * waiting for an answer are detached: their later relay_http_respond() only
 * frees them. NULL is a no-op. */
void relay_http_server_free(struct relay_http_server *srv);

/* Accessors: cannot fail. What they return belongs to the request and is
 * valid until the request is answered (relay_http_respond frees it).
 * Strings are NUL-terminated, never NULL unless said. */
const char *relay_http_request_method(const struct relay_http_request *req);
const char *relay_http_request_path(const struct relay_http_request *req);   /* without the query */
/* The query string as sent (after "?", without "#..." and still
 * percent-encoded), or NULL when the target had no "?". */
const char *relay_http_request_query(const struct relay_http_request *req);
/* The client's IP address as text, "" when not known (not IP, or the client
 * is gone). */
const char *relay_http_request_peer(const struct relay_http_request *req);
/* Case-insensitive; the first header of that name, or NULL. */
const char *relay_http_request_header(const struct relay_http_request *req, const char *name);
/* The body (NUL-terminated after len bytes for convenience), valid in on_request. */
const unsigned char *relay_http_request_body(const struct relay_http_request *req, size_t *len);
/* Declared Content-Length (0 when absent). */
uint64_t relay_http_request_content_length(const struct relay_http_request *req);
/* Monotonic ms when the request's first byte arrived. */
int64_t relay_http_request_started_ms(const struct relay_http_request *req);

/*
 * relay_http_respond - answer req with status and body (content_type may be
 * NULL for no body type; extra_headers is "Name: value\r\n..." or NULL), then
 * free req. body, content_type and extra_headers are borrowed for the call
 * (copied into the output buffer); req must not be used afterwards. The connection is kept alive when the client allows it and the
 * body was read; otherwise it is closed once the answer is written.
 * Never fails from the caller's point of view: a client that went away is
 * simply not written to.
 */
void relay_http_respond(struct relay_http_request *req, int status, const char *content_type,
                        const void *body, size_t len, const char *extra_headers);

/* relay_http_respond_error - answer {"error": error, "detail": detail} with
 * status, as application/json, then free req as relay_http_respond does. The
 * strings are borrowed, detail may be NULL (""); once JSON-escaped, error is
 * cut to about 250 bytes and detail to about 1000. */
void relay_http_respond_error(struct relay_http_request *req, int status, const char *error,
                              const char *detail, const char *extra_headers);

#endif
