/*
 * odoo-relay: asynchronous HTTP requests on the libevent loop (libcurl multi).
 *
 * The plumbing under the Odoo client: curl's multi interface driven by the
 * loop through CURLMOPT_SOCKETFUNCTION and CURLMOPT_TIMERFUNCTION and
 * curl_multi_socket_action(), so nothing ever blocks the loop (name
 * resolution uses curl's threaded resolver). It knows nothing of Odoo.
 *
 * Every transfer: only http and https, no redirects followed, no
 * "Expect: 100-continue", no signals (CURLOPT_NOSIGNAL), the connect and
 * total timeouts and the response size limit of its request, connection
 * reuse (keep-alive) where the server allows it.
 *
 * Threading: a struct relay_http and everything about it belongs to the
 * thread running its event_base; no function may be called from another.
 */
#ifndef ODOO_RELAY_HTTP_CLIENT_H
#define ODOO_RELAY_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "odoo_relay/classify.h"

struct relay_http;

struct relay_http_call {
	const char *method;            /* "GET", or "POST" (any other, e.g. "PUT", is sent as
	                                  a POST with that method and the body) */
	const char *url;
	const char *const *headers;    /* NULL-terminated "Name: value" lines, or NULL */
	const char *body;              /* POST body, or NULL for none */
	size_t body_len;
	int64_t connect_timeout_ms;    /* <= 0: curl's default */
	int64_t timeout_ms;            /* whole transfer; <= 0: none */
	size_t max_response_bytes;     /* 0: no limit */
	/* TLS, for https URLs: a CA bundle instead of the system's (NULL: the
	 * system's), a client certificate and its key (both PEM, or NULL), and
	 * insecure 1 to skip verifying the server (never the default). */
	const char *ca_file;
	const char *cert_file;
	const char *key_file;
	int insecure;
	/* 1: refuse to connect to an address relay_addr_private() names (the
	 * reply then says refused); also for every address a name resolves to,
	 * checked when each connection is opened, and again before a request
	 * goes out on a kept-alive connection (which another request may have
	 * opened without this). */
	int refuse_private;
};

/* What came back. Every pointer is valid only during the callback. */
/* Bytes of an answer's header lines kept in a reply (for dead letters). */
#define RELAY_HTTP_HEADERS_KEPT 1024

struct relay_http_reply {
	enum relay_transport transport; /* RELAY_TRANSPORT_OK: status and body are set */
	const char *error;             /* curl's text for a failed transport, else "" */
	long status;                   /* HTTP status, 0 if none arrived */
	const char *content_type;      /* or NULL */
	const char *retry_after;       /* the Retry-After header, or NULL */
	const char *headers;           /* the answer's header lines ("Name: value\n" each,
	                                  as many whole ones as RELAY_HTTP_HEADERS_KEPT
	                                  bytes hold), or NULL */
	const char *body;              /* NUL-terminated (the NUL not counted); never NULL */
	size_t body_len;
	int64_t duration_ms;           /* from relay_http_send to completion */
	int refused;                   /* the connection failed because refuse_private
	                                  refused an address (transport is CONNECT) */
};

/* Called once per accepted request, always from the loop, never from inside
 * relay_http_send. It may send new requests, and it may free the client. */
typedef void (*relay_http_cb)(const struct relay_http_reply *resp, void *arg);

/*
 * relay_http_new - a client on base (borrowed: it must outlive the client).
 * Returns 0 with *out set, ENOMEM, or -RELAY_ETRANSPORT when libcurl cannot
 * be initialised. Call from the loop's thread; the first call also runs
 * curl_global_init, which is not thread-safe, so make it before starting
 * other threads that use curl.
 */
int relay_http_new(struct event_base *base, struct relay_http **out);

/*
 * relay_http_free - cancel every transfer and free the client. The callback
 * of each transfer not yet completed is called, from within this function,
 * with transport RELAY_TRANSPORT_CANCELLED; from then on relay_http_send
 * returns -RELAY_ECLOSED. May be called from a callback of the same client:
 * the memory is then released when the loop leaves the client's handler,
 * and h must not be used after this call either way. NULL is a no-op.
 */
void relay_http_free(struct relay_http *h);

/*
 * relay_http_send - start a request. Everything in req is copied; the POST
 * body copy is wiped before it is freed (it may carry credentials). The
 * client keeps a copy of what a destination's requests share (URL, method,
 * timeouts, response limit, TLS files, refuse_private) and idle handles set
 * up for it, so that the next request with the same sets only its headers
 * and body; a request that differs in any of them is set up in full.
 * Returns 0 (cb will be called exactly once, later, from the loop),
 * -RELAY_EINVAL for a missing method or url, -RELAY_ECLOSED while the client
 * is being freed, ENOMEM, or -RELAY_ETRANSPORT if curl refuses the transfer.
 * On error cb is never called.
 */
int relay_http_send(struct relay_http *h, const struct relay_http_call *req,
                    relay_http_cb cb, void *arg);

/*
 * relay_addr_private - 1 when sa is an address a relay must not be pointed
 * at unless told so; else 0. IPv4: 0.0.0.0/8, 10/8, 100.64/10 (shared),
 * 127/8, 169.254/16, 172.16/12, 192.0.0/24, 192.168/16, 198.18/15, and
 * 224/3 (multicast, reserved, broadcast). IPv6: ::/96 (unspecified,
 * loopback, deprecated IPv4-compatible), fe80::/10, fec0::/10, fc00::/7,
 * ff00::/8, and the NAT64 local-use 64:ff9b:1::/48. An IPv4 address carried
 * in IPv6 is judged as IPv4: mapped ::ffff:a.b.c.d, translated
 * ::ffff:0:a.b.c.d, NAT64 64:ff9b::a.b.c.d, 6to4 2002:AABB:CCDD::/48, and
 * Teredo 2001::/32 (refused when either its server or its client address
 * is). An address family other than AF_INET and AF_INET6 is refused (1).
 * NULL gives 1. Pure.
 */
struct sockaddr;
int relay_addr_private(const struct sockaddr *sa);

#endif
