/* Asynchronous HTTP on the loop: see include/odoo_relay/http_client.h. */
#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/crypto.h>

#include "odoo_relay/clock.h"
#include "odoo_relay/error.h"
#include "odoo_relay/http_client.h"

#ifndef RELAY_VERSION
#define RELAY_VERSION "0"
#endif

/*
 * One socket curl asked us to watch, or one it opened through us
 * (on_open_socket). curl closes those through us too (on_close_socket), so
 * their event can outlive curl's interest: when a transfer ends, curl stops
 * watching its connection (CURL_POLL_REMOVE) and the next transfer on it
 * watches it again, and keeping the read event registered in between saves
 * the loop two epoll_ctl calls a request. A socket we did not open (the
 * resolver's) may be closed behind our back: its event goes with curl's
 * interest, and so must never be parked.
 */
struct http_sock {
	LIST_ENTRY(http_sock) link;
	struct relay_http *h;
	curl_socket_t fd;
	struct event *ev;
	int owned;  /* opened by on_open_socket, in h->owned[fd] */
	int parked; /* curl is not watching it; ev (read only) stays registered */
};

/* Easy handles kept for the next requests: creating one and freeing it
 * cost more than resetting it. */
#define IDLE_EASY 16

/*
 * The options of a request that stay the same from one request to the next
 * of a client (its destination's URL, timeouts, TLS files, method). An idle
 * handle set up for the client's current profile keeps them, and the next
 * request sets only its own (headers, body, where the answer goes): a reset
 * and twenty options cost a tenth of curl's work per request. A request
 * with another profile makes it the current one and resets the handle.
 */
struct easy_profile {
	char *url, *method, *ca_file, *cert_file, *key_file;
	int64_t connect_timeout_ms, timeout_ms;
	size_t max;
	int insecure, refuse_private;
};

/* An idle easy handle and the profile generation it was set up for (0: it
 * was reset). */
struct idle_easy {
	CURL *e;
	unsigned gen;
};

/* One transfer: the easy handle and what it has received so far. The
 * buffers come last: only the fields before them are zeroed. */
struct http_xfer {
	TAILQ_ENTRY(http_xfer) link;
	struct relay_http *h;
	CURL *easy;
	unsigned gen;               /* the profile its handle is set up for, or 0 */
	struct curl_slist *headers;
	char *body;
	size_t body_len;
	char *resp;
	size_t resp_len, resp_cap, max;
	int too_big, nomem;
	char *retry_after;
	relay_http_cb cb;
	void *arg;
	int64_t start_ms;
	int refuse_private, refused;
	size_t hdrs_len;
	char errbuf[CURL_ERROR_SIZE];
	char hdrs[RELAY_HTTP_HEADERS_KEPT]; /* the answer's header lines, as many as fit */
};

struct relay_http {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	TAILQ_HEAD(, http_xfer) xfers;
	LIST_HEAD(, http_sock) socks;
	struct http_sock **owned;    /* by fd: the sockets we opened for curl */
	size_t n_owned;
	unsigned active;
	int closing;
	/* Callbacks may free the client: while the loop is inside one of
	 * our event handlers (depth > 0) destruction waits for it to unwind. */
	int depth;
	int free_pending;
	struct idle_easy idle[IDLE_EASY]; /* easy handles not in the multi */
	unsigned n_idle;
	/* Transfers' memory kept for the next requests: at 1.4 KB a transfer
	 * is a large chunk to malloc, and each allocation of one first merges
	 * all the small chunks freed since (malloc_consolidate). */
	struct http_xfer *spare[IDLE_EASY];
	unsigned n_spare;
	struct easy_profile prof;    /* the current profile */
	unsigned gen;                /* its generation, from 1 */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void
global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int
str_same(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static int
profile_same(const struct easy_profile *p, const struct relay_http_call *req)
{
	return p->url && str_same(p->url, req->url) && str_same(p->method, req->method) &&
	       str_same(p->ca_file, req->ca_file) && str_same(p->cert_file, req->cert_file) &&
	       str_same(p->key_file, req->key_file) &&
	       p->connect_timeout_ms == req->connect_timeout_ms &&
	       p->timeout_ms == req->timeout_ms && p->max == req->max_response_bytes &&
	       p->insecure == req->insecure && p->refuse_private == req->refuse_private;
}

static void
profile_clear(struct easy_profile *p)
{
	free(p->url);
	free(p->method);
	free(p->ca_file);
	free(p->cert_file);
	free(p->key_file);
	memset(p, 0, sizeof(*p));
}

static int
dup_or_null(const char *s, char **out)
{
	*out = NULL;
	return s && !(*out = strdup(s)) ? ENOMEM : 0;
}

/* Make req's options the current profile, in a new generation: handles set
 * up for the old one are reset when they are next used. ENOMEM leaves no
 * profile (generation 0 is never current). */
static int
profile_set(struct relay_http *h, const struct relay_http_call *req)
{
	struct easy_profile *p = &h->prof;

	profile_clear(p);
	if (++h->gen == 0)
		h->gen = 1;
	if (dup_or_null(req->url, &p->url) || dup_or_null(req->method, &p->method) ||
	    dup_or_null(req->ca_file, &p->ca_file) || dup_or_null(req->cert_file, &p->cert_file) ||
	    dup_or_null(req->key_file, &p->key_file)) {
		profile_clear(p);
		return ENOMEM;
	}
	p->connect_timeout_ms = req->connect_timeout_ms;
	p->timeout_ms = req->timeout_ms;
	p->max = req->max_response_bytes;
	p->insecure = req->insecure;
	p->refuse_private = req->refuse_private;
	return 0;
}

static void
xfer_free(struct http_xfer *x)
{
	if (!x)
		return;
	if (x->easy) {
		/* Out of the multi by now: kept for the next request, set up for
		 * the current profile or reset. Either way it points at nothing
		 * freed below (curl reads these only during a transfer, but a
		 * kept handle should not hold a freed pointer). */
		if (x->h && !x->h->closing && x->h->n_idle < IDLE_EASY) {
			if (x->gen && x->gen == x->h->gen &&
			    curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, NULL) == CURLE_OK &&
			    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, NULL) == CURLE_OK &&
			    (!x->body || curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, NULL) == CURLE_OK)) {
				x->h->idle[x->h->n_idle++] = (struct idle_easy){ x->easy, x->gen };
			} else {
				curl_easy_reset(x->easy);
				x->h->idle[x->h->n_idle++] = (struct idle_easy){ x->easy, 0 };
			}
		} else {
			curl_easy_cleanup(x->easy);
		}
	}
	curl_slist_free_all(x->headers);
	if (x->body) {
		/* A JSON-RPC body carries the API key. */
		OPENSSL_cleanse(x->body, x->body_len);
		free(x->body);
	}
	free(x->resp);
	free(x->retry_after);
	if (x->h && !x->h->closing && x->h->n_spare < IDLE_EASY)
		x->h->spare[x->h->n_spare++] = x;
	else
		free(x);
}

static size_t
on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct http_xfer *x = userdata;
	size_t n = size * nmemb, cap;
	char *p;

	if (x->max && (n > x->max || x->resp_len > x->max - n)) {
		/* Returning short makes curl abort with CURLE_WRITE_ERROR; the
		 * flag tells that apart from running out of memory. */
		x->too_big = 1;
		return 0;
	}
	if (x->resp_len + n + 1 > x->resp_cap) {
		cap = x->resp_cap ? x->resp_cap : 4096;
		while (cap < x->resp_len + n + 1)
			cap *= 2;
		if (!(p = realloc(x->resp, cap))) {
			x->nomem = 1;
			return 0;
		}
		x->resp = p;
		x->resp_cap = cap;
	}
	memcpy(x->resp + x->resp_len, ptr, n);
	x->resp_len += n;
	x->resp[x->resp_len] = '\0';
	return n;
}

static size_t
on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct http_xfer *x = userdata;
	size_t len = size * nitems, vlen;
	const char *v;

	if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		/* A new response (after a 1xx): forget the previous headers. */
		free(x->retry_after);
		x->retry_after = NULL;
		x->hdrs_len = 0;
		x->hdrs[0] = '\0';
		return len;
	}
	/* keep whole lines while they fit, for dead letters (no allocation) */
	vlen = len;
	while (vlen > 0 && (buf[vlen - 1] == '\r' || buf[vlen - 1] == '\n'))
		vlen--;
	if (vlen > 0 && x->hdrs_len + vlen + 2 <= sizeof(x->hdrs)) {
		memcpy(x->hdrs + x->hdrs_len, buf, vlen);
		x->hdrs_len += vlen;
		x->hdrs[x->hdrs_len++] = '\n';
		x->hdrs[x->hdrs_len] = '\0';
	}
	if (len > 12 && strncasecmp(buf, "retry-after:", 12) == 0) {
		v = buf + 12;
		vlen = len - 12;
		while (vlen > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			vlen--;
		}
		while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' ||
		                    v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
			vlen--;
		free(x->retry_after);
		x->retry_after = strndup(v, vlen); /* NULL on ENOMEM: header lost, no harm */
	}
	return len;
}

static enum relay_transport
transport_of(CURLcode rc, struct http_xfer *x)
{
	curl_off_t pre = 0;

	switch (rc) {
	case CURLE_OK:
		return RELAY_TRANSPORT_OK;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		return RELAY_TRANSPORT_CONNECT;
	case CURLE_OPERATION_TIMEDOUT:
		/* Before the request went out it is a connect failure: nothing
		 * was sent, so the outcome is known. */
		if (curl_easy_getinfo(x->easy, CURLINFO_PRETRANSFER_TIME_T, &pre) == CURLE_OK &&
		    pre == 0)
			return RELAY_TRANSPORT_CONNECT;
		return RELAY_TRANSPORT_TIMEOUT;
	case CURLE_ABORTED_BY_CALLBACK:
		/* on_prereq refused the connection before anything was sent */
		return x->refused ? RELAY_TRANSPORT_CONNECT : RELAY_TRANSPORT_ERROR;
	case CURLE_WRITE_ERROR:
		return x->too_big ? RELAY_TRANSPORT_TOO_BIG : RELAY_TRANSPORT_ERROR;
	case CURLE_FILESIZE_EXCEEDED:
		return RELAY_TRANSPORT_TOO_BIG;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_HTTP3:
		return RELAY_TRANSPORT_RESET;
	default:
		return RELAY_TRANSPORT_ERROR;
	}
}

/* Hand x's result to its owner and free it. x is already off the multi
 * handle and the list. */
static void
deliver(struct http_xfer *x, enum relay_transport t, const char *error)
{
	struct relay_http_reply r;
	char *ct = NULL;

	memset(&r, 0, sizeof r);
	r.transport = t;
	r.error = t == RELAY_TRANSPORT_OK ? "" : error ? error : "";
	if (t == RELAY_TRANSPORT_OK) {
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &r.status);
		if (curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK)
			r.content_type = ct;
		r.retry_after = x->retry_after;
		r.headers = x->hdrs;
	}
	r.body = x->resp && t == RELAY_TRANSPORT_OK ? x->resp : "";
	r.body_len = t == RELAY_TRANSPORT_OK ? x->resp_len : 0;
	r.duration_ms = relay_mono_ms() - x->start_ms;
	r.refused = t != RELAY_TRANSPORT_OK && x->refused;
	x->cb(&r, x->arg);
	xfer_free(x);
}

static void
complete(struct relay_http *h, struct http_xfer *x, CURLcode rc)
{
	enum relay_transport t = transport_of(rc, x);
	const char *error = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);

	if (x->nomem)
		error = "out of memory for the response";
	curl_multi_remove_handle(h->multi, x->easy);
	TAILQ_REMOVE(&h->xfers, x, link);
	h->active--;
	deliver(x, t, error);
}

static void http_destroy(struct relay_http *h);

/* ---- the address guard ---- */

/* a: an IPv4 address, 4 bytes in network order. */
static int
v4_private(const unsigned char *a)
{
	return a[0] == 0 || a[0] == 10 || a[0] == 127 || a[0] >= 224 ||
	       (a[0] == 100 && (a[1] & 0xc0) == 64) || (a[0] == 169 && a[1] == 254) ||
	       (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168) ||
	       (a[0] == 192 && a[1] == 0 && a[2] == 0) || (a[0] == 198 && (a[1] & 0xfe) == 18);
}

/*
 * a: an IPv6 address, 16 bytes. An IPv4 address carried inside one is
 * judged as IPv4: the kernel, a translator or a tunnel may deliver the
 * packets to it, so 2002:7f00:1:: must be refused like 127.0.0.1.
 */
static int
v6_private(const unsigned char *a)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const unsigned char translated[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const unsigned char nat64[12] = { 0, 0x64, 0xff, 0x9b };
	static const unsigned char nat64_local[6] = { 0, 0x64, 0xff, 0x9b, 0, 1 };
	static const unsigned char zero[12];
	unsigned char client[4];
	int i;

	/* ::/96: ::, ::1 and the IPv4-compatible ::a.b.c.d, deprecated
	 * (RFC 4291) and never a host's address: all of it is refused */
	if (memcmp(a, zero, 12) == 0)
		return 1;
	/* ::ffff:a.b.c.d mapped, ::ffff:0:a.b.c.d translated (RFC 2765),
	 * 64:ff9b::a.b.c.d through a NAT64 (RFC 6052) */
	if (memcmp(a, mapped, 12) == 0 || memcmp(a, translated, 12) == 0 ||
	    memcmp(a, nat64, 12) == 0)
		return v4_private(a + 12);
	/* 64:ff9b:1::/48 (RFC 8215) is a translator of this network's own, and
	 * where it puts the IPv4 address depends on the prefix length it was
	 * set up with: all of it is refused */
	if (memcmp(a, nat64_local, 6) == 0)
		return 1;
	/* 6to4 2002:AABB:CCDD::/48 (RFC 3056) carries a.b.c.d in bits 16-47 */
	if (a[0] == 0x20 && a[1] == 0x02)
		return v4_private(a + 2);
	/* Teredo 2001::/32 (RFC 4380): the server's address in bits 32-63, the
	 * client's in the last 32 bits with every bit inverted; packets may go
	 * to either */
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0) {
		for (i = 0; i < 4; i++)
			client[i] = (unsigned char)~a[12 + i];
		return v4_private(a + 4) || v4_private(client);
	}
	return (a[0] & 0xfe) == 0xfc ||                   /* fc00::/7 */
	       (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) || /* fe80::/10 */
	       (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0) || /* fec0::/10, deprecated site-local */
	       a[0] == 0xff;                              /* multicast */
}

int
relay_addr_private(const struct sockaddr *sa)
{
	if (!sa)
		return 1;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

		return v4_private((const unsigned char *)&in->sin_addr.s_addr);
	}
	if (sa->sa_family == AF_INET6)
		return v6_private(((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr);
	return 1;
}

static void sock_own(struct relay_http *h, curl_socket_t fd);
static void sock_free(struct http_sock *s);

/* Every new connection: refuse before connecting, so that not even a
 * connection attempt reaches an internal address. */
static curl_socket_t
on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct http_xfer *x = clientp;
	curl_socket_t fd;

	if (purpose == CURLSOCKTYPE_IPCXN && x->refuse_private && relay_addr_private(&a->addr)) {
		x->refused = 1;
		return CURL_SOCKET_BAD;
	}
	fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	/* Without memory for its record the socket is watched as one we did
	 * not open: it works, its event is never parked. */
	if (fd != CURL_SOCKET_BAD)
		sock_own(x->h, fd);
	return fd;
}

/* CURLOPT_CLOSESOCKETFUNCTION: curl closes a socket it opened through
 * on_open_socket (after telling on_socket it no longer watches it). */
static int
on_close_socket(void *clientp, curl_socket_t fd)
{
	struct relay_http *h = clientp;

	if (fd >= 0 && (size_t)fd < h->n_owned && h->owned[fd])
		sock_free(h->owned[fd]);
	return close(fd);
}

/*
 * Every transfer, once it has its connection and before anything is sent:
 * a connection kept alive is reused by a later transfer to the same host
 * and port without opening a socket, and the one that opened it may not
 * have asked for the guard. curl gives the peer's address as text; text
 * that does not parse is refused.
 */
static int
on_prereq(void *clientp, char *peer_ip, char *local_ip, int peer_port, int local_port)
{
	struct http_xfer *x = clientp;
	struct sockaddr_in6 in6;
	struct sockaddr_in in;
	const struct sockaddr *sa = NULL;

	(void)local_ip;
	(void)peer_port;
	(void)local_port;
	memset(&in, 0, sizeof(in));
	memset(&in6, 0, sizeof(in6));
	if (peer_ip && inet_pton(AF_INET, peer_ip, &in.sin_addr) == 1) {
		in.sin_family = AF_INET;
		sa = (const struct sockaddr *)&in;
	} else if (peer_ip && inet_pton(AF_INET6, peer_ip, &in6.sin6_addr) == 1) {
		in6.sin6_family = AF_INET6;
		sa = (const struct sockaddr *)&in6;
	}
	if (relay_addr_private(sa)) {
		x->refused = 1;
		return CURL_PREREQFUNC_ABORT;
	}
	return CURL_PREREQFUNC_OK;
}

/* Leave an event handler; destroy the client if a callback freed it. */
static void
leave(struct relay_http *h)
{
	if (--h->depth == 0 && h->free_pending)
		http_destroy(h);
}

/* Collect finished transfers after curl made progress. */
static void
drain(struct relay_http *h)
{
	struct http_xfer *x;
	CURLMsg *msg;
	CURLcode rc;
	CURL *easy;
	int left;

	while (!h->closing && (msg = curl_multi_info_read(h->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		easy = msg->easy_handle;
		rc = msg->data.result;
		x = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
		if (x)
			complete(h, x, rc);
	}
}

static void
on_event(evutil_socket_t fd, short kind, void *arg)
{
	struct http_sock *s = arg;
	struct relay_http *h = s->h;
	int action = 0, running;

	if (s->parked) {
		/* Readable while idle in curl's pool: the peer closed it or sent
		 * what nobody asked for. Stop watching; curl checks a kept
		 * connection before it reuses one, and closes this one then. */
		event_free(s->ev);
		s->ev = NULL;
		return;
	}
	if (kind & EV_READ)
		action |= CURL_CSELECT_IN;
	if (kind & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	h->depth++;
	curl_multi_socket_action(h->multi, fd, action, &running);
	drain(h);
	leave(h);
}

static void
on_timer_event(evutil_socket_t fd, short kind, void *arg)
{
	struct relay_http *h = arg;
	int running;

	h->depth++;
	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	drain(h);
	leave(h);
}

/* CURLMOPT_TIMERFUNCTION: curl wants to be called back after timeout_ms.
 * We never call curl from here, only arm the loop's timer. */
static int
on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct relay_http *h = userp;
	struct timeval tv;

	if (timeout_ms < 0)
		return evtimer_del(h->timer);
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	return evtimer_add(h->timer, &tv);
}

/* Free s and its event. Safe even while s->ev's own callback runs
 * (libevent 2.1 touches no event after its callback returns). */
static void
sock_free(struct http_sock *s)
{
	if (s->ev)
		event_free(s->ev);
	if (s->owned)
		s->h->owned[s->fd] = NULL;
	LIST_REMOVE(s, link);
	free(s);
}

/* A record for a socket not yet watched; owned: we opened it. NULL without
 * memory. */
static struct http_sock *
sock_new(struct relay_http *h, curl_socket_t fd, int owned)
{
	struct http_sock *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	s->h = h;
	s->fd = fd;
	s->owned = owned;
	LIST_INSERT_HEAD(&h->socks, s, link);
	return s;
}

static void
sock_own(struct relay_http *h, curl_socket_t fd)
{
	struct http_sock **t;
	size_t n;

	if (fd < 0)
		return;
	if ((size_t)fd >= h->n_owned) {
		n = h->n_owned ? h->n_owned : 64;
		while (n <= (size_t)fd)
			n *= 2;
		if (!(t = realloc(h->owned, n * sizeof *t)))
			return;
		memset(t + h->n_owned, 0, (n - h->n_owned) * sizeof *t);
		h->owned = t;
		h->n_owned = n;
	}
	/* Only on_close_socket closes what we opened, so no record should be
	 * left at a new socket's number; if one were, it is stale. */
	if (h->owned[fd])
		sock_free(h->owned[fd]);
	h->owned[fd] = sock_new(h, fd, 1);
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what curl asks. */
static int
on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct relay_http *h = userp;
	struct http_sock *s = socketp;
	short kind;

	(void)easy;
	if (!s && fd >= 0 && (size_t)fd < h->n_owned)
		s = h->owned[fd];
	if (what == CURL_POLL_REMOVE) {
		if (!s)
			return 0;
		if (!s->owned) {
			sock_free(s);
		} else if (s->ev && event_get_events(s->ev) == (EV_PERSIST | EV_READ)) {
			s->parked = 1;
		} else if (s->ev) {
			/* a parked write event would fire at once, and forever */
			event_free(s->ev);
			s->ev = NULL;
		}
		return 0;
	}
	if (!s && !(s = sock_new(h, fd, 0)))
		return -1;
	if (!socketp)
		curl_multi_assign(h->multi, fd, s);
	s->parked = 0;
	kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
	       ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	if (s->ev) {
		if (event_get_events(s->ev) == kind)
			return 0;
		event_free(s->ev);
	}
	if (!(s->ev = event_new(h->base, fd, kind, on_event, s)) || event_add(s->ev, NULL) < 0)
		return -1;
	return 0;
}

int
relay_http_new(struct event_base *base, struct relay_http **out)
{
	struct relay_http *h;
	int rc = ENOMEM;

	*out = NULL;
	if (!base)
		return -RELAY_EINVAL;
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return -RELAY_ETRANSPORT;
	if (!(h = calloc(1, sizeof *h)))
		return ENOMEM;
	h->base = base;
	TAILQ_INIT(&h->xfers);
	LIST_INIT(&h->socks);
	if (!(h->timer = evtimer_new(base, on_timer_event, h)))
		goto fail;
	if (!(h->multi = curl_multi_init())) {
		rc = -RELAY_ETRANSPORT;
		goto fail;
	}
	if (curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
	    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h) != CURLM_OK ||
	    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
	    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h) != CURLM_OK) {
		rc = -RELAY_ETRANSPORT;
		goto fail;
	}
	*out = h;
	return 0;
fail:
	if (h->multi)
		curl_multi_cleanup(h->multi);
	if (h->timer)
		event_free(h->timer);
	free(h);
	return rc;
}

static void
http_destroy(struct relay_http *h)
{
	struct http_sock *s;

	/* Closing cached connections may still call on_socket and on_timer,
	 * so the sockets' events and the timer outlive the multi handle.
	 * Freeing the event whose handler is running is safe: libevent 2.1
	 * touches no event after its callback returns. */
	curl_multi_cleanup(h->multi);
	while (h->n_idle > 0)
		curl_easy_cleanup(h->idle[--h->n_idle].e);
	while (h->n_spare > 0)
		free(h->spare[--h->n_spare]);
	profile_clear(&h->prof);
	while ((s = LIST_FIRST(&h->socks)))
		sock_free(s);
	free(h->owned);
	event_free(h->timer);
	free(h);
}

void
relay_http_free(struct relay_http *h)
{
	struct http_xfer *x;

	/* A second call, from a callback of the cancellation below, has
	 * nothing left to do: the first finishes the job. */
	if (!h || h->closing)
		return;
	h->closing = 1;
	h->depth++;
	while ((x = TAILQ_FIRST(&h->xfers))) {
		curl_multi_remove_handle(h->multi, x->easy);
		TAILQ_REMOVE(&h->xfers, x, link);
		h->active--;
		deliver(x, RELAY_TRANSPORT_CANCELLED, "cancelled");
	}
	h->free_pending = 1;
	leave(h);
}

static int
setopt_failed(CURLcode c, int *rc)
{
	if (c == CURLE_OK)
		return 0;
	*rc = c == CURLE_OUT_OF_MEMORY ? ENOMEM : -RELAY_ETRANSPORT;
	return 1;
}

/* The options of req's profile (struct easy_profile), on a new or reset
 * handle of client h. */
static int
set_profile(struct relay_http *h, CURL *e, const struct relay_http_call *req)
{
	int rc = 0;

	if (setopt_failed(curl_easy_setopt(e, CURLOPT_URL, req->url), &rc) ||
	    setopt_failed(curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https"), &rc) ||
	    setopt_failed(curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"), &rc) ||
	    setopt_failed(curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L), &rc) ||
	    setopt_failed(curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L), &rc) ||
	    setopt_failed(curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L), &rc) ||
	    setopt_failed(curl_easy_setopt(e, CURLOPT_USERAGENT, "odoo-relay/" RELAY_VERSION), &rc) ||
	    setopt_failed(curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write), &rc) ||
	    setopt_failed(curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header), &rc))
		return rc;
	if (req->connect_timeout_ms > 0 &&
	    setopt_failed(curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	                                   (long)req->connect_timeout_ms), &rc))
		return rc;
	if (req->timeout_ms > 0 &&
	    setopt_failed(curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms), &rc))
		return rc;
	if (setopt_failed(curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket), &rc) ||
	    setopt_failed(curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket), &rc) ||
	    setopt_failed(curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, h), &rc))
		return rc;
	if (req->refuse_private &&
	    setopt_failed(curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq), &rc))
		return rc;
	if ((req->ca_file && setopt_failed(curl_easy_setopt(e, CURLOPT_CAINFO, req->ca_file), &rc)) ||
	    (req->cert_file && setopt_failed(curl_easy_setopt(e, CURLOPT_SSLCERT, req->cert_file), &rc)) ||
	    (req->key_file && setopt_failed(curl_easy_setopt(e, CURLOPT_SSLKEY, req->key_file), &rc)) ||
	    (req->insecure &&
	     (setopt_failed(curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L), &rc) ||
	      setopt_failed(curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L), &rc))))
		return rc;
	/* Refuse an announced Content-Length over the limit before reading it. */
	if (req->max_response_bytes > 0 &&
	    setopt_failed(curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
	                                   (curl_off_t)req->max_response_bytes), &rc))
		return rc;
	if (strcmp(req->method, "GET") == 0)
		setopt_failed(curl_easy_setopt(e, CURLOPT_HTTPGET, 1L), &rc);
	else if (strcmp(req->method, "POST") != 0)
		setopt_failed(curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method), &rc);
	return rc;
}

/* The options of this request alone: its headers and body, and where the
 * answer goes (x). */
static int
set_request(CURL *e, struct http_xfer *x, const struct relay_http_call *req)
{
	int rc = 0;

	if (setopt_failed(curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers), &rc) ||
	    setopt_failed(curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf), &rc) ||
	    setopt_failed(curl_easy_setopt(e, CURLOPT_WRITEDATA, x), &rc) ||
	    setopt_failed(curl_easy_setopt(e, CURLOPT_HEADERDATA, x), &rc) ||
	    setopt_failed(curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)x), &rc))
		return rc;
	if (setopt_failed(curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x), &rc) ||
	    (req->refuse_private &&
	     setopt_failed(curl_easy_setopt(e, CURLOPT_PREREQDATA, x), &rc)))
		return rc;
	x->refuse_private = req->refuse_private;
	if (strcmp(req->method, "GET") == 0)
		return 0;
	x->body_len = req->body ? req->body_len : 0;
	if (!(x->body = malloc(x->body_len + 1)))
		return ENOMEM;
	if (x->body_len)
		memcpy(x->body, req->body, x->body_len);
	x->body[x->body_len] = '\0';
	if (setopt_failed(curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
	                                   (curl_off_t)x->body_len), &rc) ||
	    setopt_failed(curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body), &rc))
		return rc;
	return 0;
}

int
relay_http_send(struct relay_http *h, const struct relay_http_call *req,
                relay_http_cb cb, void *arg)
{
	struct curl_slist *l;
	struct http_xfer *x;
	CURL *e;
	const char *const *hd;
	int rc = ENOMEM, ready = 0;

	if (!h || !req || !req->method || !req->url || !cb)
		return -RELAY_EINVAL;
	if (h->closing)
		return -RELAY_ECLOSED;
	/* The answer's buffers need no zeroing: the lengths say what is in them. */
	if (h->n_spare)
		x = h->spare[--h->n_spare];
	else if (!(x = malloc(sizeof *x)))
		return ENOMEM;
	memset(x, 0, offsetof(struct http_xfer, errbuf));
	x->errbuf[0] = '\0';
	x->hdrs[0] = '\0';
	x->cb = cb;
	x->arg = arg;
	x->max = req->max_response_bytes;
	x->h = h;
	/* Without a profile (no memory to copy it) the handle is set up in
	 * full now and reset after. */
	x->gen = profile_same(&h->prof, req) || profile_set(h, req) == 0 ? h->gen : 0;
	if (h->n_idle) {
		struct idle_easy *ie = &h->idle[--h->n_idle];

		e = ie->e;
		ready = x->gen && ie->gen == x->gen;
		if (!ready && ie->gen)
			curl_easy_reset(e);
	} else {
		e = curl_easy_init();
	}
	if (!(x->easy = e)) {
		rc = -RELAY_ETRANSPORT;
		goto fail;
	}
	for (hd = req->headers; hd && *hd; hd++) {
		if (!(l = curl_slist_append(x->headers, *hd)))
			goto fail;
		x->headers = l;
	}
	/* An empty Expect: keeps curl from waiting for 100-continue on large
	 * bodies, which Odoo's server never sends. */
	if (!(l = curl_slist_append(x->headers, "Expect:")))
		goto fail;
	x->headers = l;
	if ((!ready && (rc = set_profile(h, e, req)) != 0) || (rc = set_request(e, x, req)) != 0)
		goto fail;
	x->start_ms = relay_mono_ms();
	/* Adding only arms the timer (on_timer): the transfer starts from the
	 * loop, so cb can never run inside this function. */
	if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
		rc = -RELAY_ETRANSPORT;
		goto fail;
	}
	TAILQ_INSERT_TAIL(&h->xfers, x, link);
	h->active++;
	return 0;
fail:
	x->gen = 0; /* half set up: reset before it is used again */
	xfer_free(x);
	return rc;
}
