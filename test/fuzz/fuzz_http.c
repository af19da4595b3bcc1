/*
 * libFuzzer target for the HTTP request handling path: the real ingest
 * (lib/ingest.c) on the real server (lib/http_server.c), with source
 * verification and extraction (lib/source.c, lib/signature.c) and a group
 * commit writer on an LMDB store, all as odoo-relayd wires them.
 *
 * Each input is a byte stream a client sends on one connection: it is
 * written into a Unix socket accepted by the ingest's listener; once the
 * server has done all it can with it (see server_quiet), the writing side
 * is shut down, and the loop runs until the server has closed the
 * connection and every request it took has been answered. Beyond the
 * sanitizers, the answers are checked: each is a well-framed HTTP/1.1
 * response with a status from ingest.h's list (never 500, which would mean
 * config.c let through a source that source.c cannot use; no 503 but for a
 * full store), and every error is a JSON body.
 *
 * Signatures: mutating a body breaks its HMAC, which would leave everything
 * behind verification to the sources with scheme "none". So the text
 * "{SIG}" in a request's header block is replaced, before sending, by the
 * signature that request's source expects for that request's body (found
 * the way the server frames it: Content-Length bytes after the blank line).
 * A seed without it tests the verifier on whatever the fuzzer writes.
 *
 * Set-up (once): the configuration below, with secrets read from a
 * temporary directory removed right after; a store in another (in $TMPDIR,
 * else on /dev/shm, so that commits cost no disk I/O) whose files are
 * unlinked as soon as they are open. Every RESET_EVERY writer operations
 * the store is dropped and made anew, so that a long run does not fill it:
 * a full store is a path of its own (503), not the state every later input
 * should meet.
 *
 * FUZZ_HTTP_ECHO=1 in the environment prints every answer, to check what a
 * seed reaches: FUZZ_HTTP_ECHO=1 fuzz_http -runs=1 corpus/http/shop
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <linux/sockios.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "odoo_relay/config.h"
#include "odoo_relay/error.h"
#include "odoo_relay/ingest.h"
#include "odoo_relay/log.h"
#include "odoo_relay/metrics.h"
#include "odoo_relay/signature.h"
#include "odoo_relay/store.h"
#include "odoo_relay/writer.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SIG_TOKEN "{SIG}"
#define RESET_EVERY 5000
/* Loop turns for one input: far more than any input of libFuzzer's sizes
 * needs; reaching it means a connection that never ends. */
#define MAX_TURNS 1000000
/* Answers kept for the checks; a pipelined flood may produce more. */
#define MAX_ANSWER_BYTES (4u << 20)

/* One source per scheme and per kind of reference (header, pointer). */
static const char config_text[] =
	"{\"listen\": \"127.0.0.1:0\", \"map_size_mb\": 64,"
	" \"limits\": {\"max_body_bytes\": 65536, \"header_timeout_ms\": 2000,"
	"  \"body_timeout_ms\": 2000, \"max_connections\": 64},"
	" \"sources\": {"
	"  \"shop\": {\"verify\": {\"scheme\": \"shopify\","
	"    \"secret_files\": [\"secrets/shop.secret\", \"secrets/old.secret\"]},"
	"   \"dedup\": {\"header\": \"X-Shopify-Webhook-Id\"},"
	"   \"topic\": {\"header\": \"X-Shopify-Topic\"}, \"lane\": {\"pointer\": \"/id\"},"
	"   \"keep_headers\": [\"X-Shopify-Topic\", \"X-Shopify-Shop-Domain\"]},"
	"  \"woo\": {\"verify\": {\"scheme\": \"woocommerce\", \"secret_file\": \"secrets/woo.secret\"},"
	"   \"dedup\": {\"header\": \"X-WC-Webhook-Delivery-ID\"},"
	"   \"topic\": {\"header\": \"X-WC-Webhook-Topic\"}, \"lane\": {\"pointer\": \"/order_key\"}},"
	"  \"gh\": {\"verify\": {\"scheme\": \"github\", \"secret_file\": \"secrets/github.secret\"},"
	"   \"dedup\": {\"header\": \"X-GitHub-Delivery\"}, \"topic\": {\"header\": \"X-GitHub-Event\"},"
	"   \"require_json\": false, \"dedup_window_s\": 60},"
	"  \"pay\": {\"verify\": {\"scheme\": \"stripe\", \"secret_file\": \"secrets/stripe.secret\","
	"    \"tolerance_s\": 300},"
	"   \"dedup\": {\"pointer\": \"/id\"}, \"topic\": {\"pointer\": \"/type\"},"
	"   \"lane\": {\"pointer\": \"/data/object/customer\"}},"
	"  \"erp\": {\"verify\": {\"scheme\": \"hmac-sha256\", \"secret_file\": \"secrets/shop.secret\","
	"    \"header\": \"X-Signature\", \"encoding\": \"base64\", \"prefix\": \"sha256=\"},"
	"   \"dedup\": {\"header\": \"X-Request-Id\"}, \"lane\": {\"header\": \"X-Lane\"},"
	"   \"require_json\": false},"
	"  \"hex\": {\"verify\": {\"scheme\": \"hmac-sha256\", \"secret_file\": \"secrets/hex.secret\","
	"    \"header\": \"X-Sig\"},"
	"   \"dedup\": {\"pointer\": \"/event/id\"}, \"topic\": {\"pointer\": \"/event/type\"}},"
	"  \"forms\": {\"verify\": {\"scheme\": \"token\", \"secret_file\": \"secrets/token.secret\"},"
	"   \"dedup\": {\"pointer\": \"/submission~1id\"}},"
	"  \"tok\": {\"verify\": {\"scheme\": \"token\", \"secret_file\": \"secrets/token.secret\","
	"    \"header\": \"X-Token\"},"
	"   \"dedup\": {\"header\": \"X-Id\"}, \"require_json\": false, \"unrouted\": \"drop\"},"
	"  \"lab\": {\"verify\": {\"scheme\": \"none\"}, \"dedup\": {\"header\": \"X-Id\"},"
	"   \"topic\": {\"pointer\": \"/type\"}, \"lane\": {\"header\": \"X-Lane\"}},"
	"  \"raw\": {\"verify\": {\"scheme\": \"none\"}, \"dedup\": {\"header\": \"X-Id\"},"
	"   \"require_json\": false}}}";

static const struct {
	const char *name, *value;
} secrets[] = {
	{ "shop.secret", "shop-secret\n" },
	{ "old.secret", "old-shop-secret\n" },
	{ "woo.secret", "woo-secret" },
	{ "github.secret", "github-secret\n" },
	{ "stripe.secret", "whsec_fuzz\n" },
	{ "hex.secret", "hex-secret" },
	{ "token.secret", "tok-3f9a\n" },
};

static struct {
	char dir[256];            /* the secrets' temporary directory, during set-up */
	struct event_base *base;
	struct relay_config *cfg;
	struct relay_metrics *metrics;
	struct relay_store *store;
	struct relay_writer *writer;
	struct relay_ingest *ingest;
	struct sockaddr_un addr;  /* the listener, in the abstract namespace */
	socklen_t addr_len;
	uint64_t ops_at_start;
	unsigned generation;
	int echo;                 /* $FUZZ_HTTP_ECHO: print the answers (to check seeds) */
} fz;

static void die(const char *what, int rc) __attribute__((noreturn));

static void
die(const char *what, int rc)
{
	fprintf(stderr, "fuzz_http: %s: %s\n", what, relay_strerror(rc));
	abort(); /* nothing to fuzz without the set-up */
}

static void
write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t len = strlen(text);

	if (fd < 0 || write(fd, text, len) != (ssize_t)len)
		die(path, errno);
	close(fd);
}

/* An abstract Unix socket: nothing on disk, gone when closed. */
static int
listener_new(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket", errno);
	memset(&fz.addr, 0, sizeof(fz.addr));
	fz.addr.sun_family = AF_UNIX;
	snprintf(fz.addr.sun_path + 1, sizeof(fz.addr.sun_path) - 1, "odoo-relay-fuzz-%ld-%u",
	         (long)getpid(), fz.generation);
	fz.addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
	                          strlen(fz.addr.sun_path + 1));
	if (bind(fd, (struct sockaddr *)&fz.addr, fz.addr_len) != 0 || listen(fd, 16) != 0)
		die("bind", errno);
	return fd;
}

/* $TMPDIR (run.sh points it into its work directory, which it removes
 * even after a crash), else /dev/shm, else /tmp. */
static const char *
tmp_parent(void)
{
	const char *t = getenv("TMPDIR");

	if (t && *t)
		return t;
	return access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
}

static void
stack_start(void)
{
	char dir[256], path[512];
	int rc;

	snprintf(dir, sizeof(dir), "%s/odoo-relay-fuzz-XXXXXX", tmp_parent());
	if (!mkdtemp(dir))
		die("mkdtemp", errno);
	if ((rc = relay_store_open(dir, fz.cfg->map_size, RELAY_STORE_CREATE, &fz.store)) != 0)
		die("cannot open store", rc);
	/* LMDB keeps its descriptors: nothing need stay on disk, even after a
	 * crash */
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lock.mdb", dir);
	unlink(path);
	rmdir(dir);
	if ((rc = relay_writer_start(fz.store, fz.base, &fz.writer)) != 0)
		die("cannot start writer", rc);
	if ((rc = relay_ingest_new(fz.base, fz.cfg, fz.writer, fz.metrics, &fz.ingest)) != 0)
		die("cannot make ingest", rc);
	fz.generation++;
	if ((rc = relay_ingest_adopt(fz.ingest, listener_new())) != 0)
		die("cannot adopt listener", rc);
	relay_ingest_set_ready(fz.ingest, 1);
	relay_writer_stats(fz.writer, NULL, &fz.ops_at_start);
}

static void
stack_stop(void)
{
	relay_ingest_free(fz.ingest);
	relay_writer_stop(fz.writer);
	relay_store_close(fz.store);
	fz.ingest = NULL;
	fz.writer = NULL;
	fz.store = NULL;
}

static void
teardown(void)
{
	stack_stop();
	relay_config_free(fz.cfg);
	relay_metrics_free(fz.metrics);
	event_base_free(fz.base);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct relay_config_error err;
	char path[512];
	size_t i;
	int rc;

	relay_log_init(0, LOG_ERR);
	fz.echo = getenv("FUZZ_HTTP_ECHO") != NULL;
	signal(SIGPIPE, SIG_IGN);
	unsetenv("CREDENTIALS_DIRECTORY");
	if (evthread_use_pthreads() != 0)
		die("evthread_use_pthreads", ENOMEM);
	snprintf(fz.dir, sizeof(fz.dir), "%s/odoo-relay-fuzz-XXXXXX", tmp_parent());
	if (!mkdtemp(fz.dir))
		die("mkdtemp", errno);
	snprintf(path, sizeof(path), "%s/secrets", fz.dir);
	if (mkdir(path, 0700) != 0)
		die("mkdir", errno);
	for (i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
		snprintf(path, sizeof(path), "%s/secrets/%s", fz.dir, secrets[i].name);
		write_file(path, secrets[i].value);
	}
	snprintf(path, sizeof(path), "%s/fuzz.json", fz.dir);
	if ((rc = relay_config_loadb(path, config_text, strlen(config_text), &fz.cfg, &err)) != 0) {
		char msg[1024];
		relay_config_error_format(&err, msg, sizeof(msg));
		fprintf(stderr, "fuzz_http: %s\n", msg);
		abort();
	}
	/* read once: the secret files are not needed any more */
	for (i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
		snprintf(path, sizeof(path), "%s/secrets/%s", fz.dir, secrets[i].name);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/secrets", fz.dir);
	rmdir(path);
	rmdir(fz.dir);
	if (!(fz.base = event_base_new()) || !(fz.metrics = relay_metrics_new()))
		die("event_base_new", ENOMEM);
	stack_start();
	atexit(teardown);
	return 0;
}

/* ---- signing ------------------------------------------------------------- */

static const void *
find(const void *hay, size_t n, const char *needle)
{
	return memmem(hay, n, needle, strlen(needle));
}

/* The Content-Length of a header block as the server would take it (the
 * first such header), capped at max; 0 when absent or malformed. */
static size_t
content_length(const char *block, size_t n, size_t max)
{
	static const char name[] = "\ncontent-length:";
	const size_t nl = sizeof(name) - 1;
	unsigned long long v = 0;
	size_t i;

	for (i = 0; i + nl <= n; i++) {
		if (strncasecmp(block + i, name, nl) != 0)
			continue;
		for (i += nl; i < n && (block[i] == ' ' || block[i] == '\t'); i++)
			;
		for (; i < n && block[i] >= '0' && block[i] <= '9' && v <= max; i++)
			v = v * 10 + (unsigned)(block[i] - '0');
		break;
	}
	return v > max ? max : (size_t)v;
}

/* The source a request line names ("POST /hooks/<name>[/][?...] ..."). */
static const struct relay_source_conf *
source_of(const char *block, size_t n)
{
	const char *eol = find(block, n, "\r\n"), *p = find(block, n, " /hooks/");
	size_t len;

	if (!p || !eol || p > eol)
		return NULL;
	p += 8;
	for (len = 0; p + len < eol && strchr(" ?#/", p[len]) == NULL; len++)
		;
	return relay_config_source(fz.cfg, p, len);
}

/* The input with every SIG_TOKEN of a header block replaced by the right
 * signature (by nothing when the request names no source). NULL when out of
 * memory. */
static struct evbuffer *
sign_requests(const uint8_t *data, size_t size)
{
	struct evbuffer *out = evbuffer_new();
	const char *in = (const char *)data;
	size_t off = 0;

	if (!out)
		return NULL;
	while (off < size) {
		const char *end = find(in + off, size - off, "\r\n\r\n");
		const struct relay_source_conf *sc;
		size_t hlen, blen, tlen = strlen(SIG_TOKEN);
		char sig[RELAY_SIGNATURE_MAX + 512];
		const char *p, *t;

		if (!end) {
			evbuffer_add(out, in + off, size - off);
			break;
		}
		hlen = (size_t)(end - (in + off)) + 4;
		blen = content_length(in + off, hlen, size - off - hlen);
		sig[0] = '\0';
		if (find(in + off, hlen, SIG_TOKEN) && (sc = source_of(in + off, hlen)) != NULL &&
		    relay_signature_sign(&sc->verify, data + off + hlen, blen, time(NULL), sig,
		                         sizeof(sig)) != 0)
			sig[0] = '\0';
		for (p = in + off; (t = find(p, (size_t)(in + off + hlen - p), SIG_TOKEN)) != NULL;
		     p = t + tlen) {
			evbuffer_add(out, p, (size_t)(t - p));
			evbuffer_add(out, sig, strlen(sig));
		}
		evbuffer_add(out, p, (size_t)(in + off + hlen - p));
		evbuffer_add(out, in + off + hlen, blen);
		off += hlen + blen;
	}
	return out;
}

/* ---- the client side ----------------------------------------------------- */

struct client {
	int fd;
	struct evbuffer *req;     /* still to send */
	struct evbuffer *answers; /* received */
	struct event *ev_read, *ev_write;
	int sent;                 /* all sent, or the server stopped reading */
	int shut;                 /* our writing side is shut down */
	int closed;               /* the server closed or shut down its side */
};

static void
client_write(evutil_socket_t fd, short what, void *arg)
{
	struct client *cl = arg;
	size_t n = evbuffer_get_length(cl->req);
	ssize_t w = 0;

	if (n) {
		size_t chunk = n > 65536 ? 65536 : n;
		w = send(fd, evbuffer_pullup(cl->req, (ssize_t)chunk), chunk, MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (w > 0)
			evbuffer_drain(cl->req, (size_t)w);
	}
	if (w < 0 || evbuffer_get_length(cl->req) == 0) {
		cl->sent = 1;
		event_del(cl->ev_write);
	}
}

static void
client_read(evutil_socket_t fd, short what, void *arg)
{
	struct client *cl = arg;
	char buf[16384];
	ssize_t r = recv(fd, buf, sizeof(buf), 0);

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		cl->closed = 1;
		event_del(cl->ev_read);
		return;
	}
	if (evbuffer_get_length(cl->answers) < MAX_ANSWER_BYTES)
		evbuffer_add(cl->answers, buf, (size_t)r);
}

/*
 * Whether the server has done all it will do with what it was sent: it has
 * read every byte from the socket, no request waits for the writer, no
 * event is pending activation on the loop, and no answer waits for us to
 * read it. Only then is the writing side shut down. Shutting it down at once
 * would be simpler, but the server frees a connection on end of file even
 * while a request waits for its commit, which would leave every answer after
 * the first commit, and every pipelined request after it, untested.
 */
static int
server_quiet(const struct client *cl)
{
	int outq = 0, inq = 0;

	return relay_ingest_pending(fz.ingest) == 0 &&
	       event_base_get_num_events(fz.base, EVENT_BASE_COUNT_ACTIVE) == 0 &&
	       ioctl(cl->fd, SIOCOUTQ, &outq) == 0 && outq == 0 &&
	       ioctl(cl->fd, FIONREAD, &inq) == 0 && inq == 0;
}

/* ---- the checks on what the server answered ------------------------------- */

static int
allowed_status(int s)
{
	static const int ok[] = { 100, 200, 202, 400, 401, 404, 405, 408, 411, 413, 415, 431,
	                          503, 505 };
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (s == ok[i])
			return 1;
	return 0;
}

static void bad_answer(const char *why, const char *p, size_t n) __attribute__((noreturn));

static void
bad_answer(const char *why, const char *p, size_t n)
{
	fprintf(stderr, "fuzz_http: %s in answer: %.*s\n", why, (int)(n > 400 ? 400 : n), p);
	abort();
}

/* The answers as the server frames them: status line, headers, then
 * Content-Length bytes (none for 1xx). The server may close a connection
 * whose client half-closed it before an answer was written out, so the last
 * answer may be cut short; anything complete must be right. */
static void
check_answers(struct evbuffer *b)
{
	size_t n = evbuffer_get_length(b);
	const char *p = (const char *)evbuffer_pullup(b, -1);

	if (n >= MAX_ANSWER_BYTES)
		return; /* cut where it stopped being kept */
	while (n > 0) {
		const char *end = find(p, n, "\r\n\r\n");
		size_t hlen, clen;
		int status;

		if (!end)
			return;
		hlen = (size_t)(end - p) + 4;
		if (hlen < 13 || memcmp(p, "HTTP/1.1 ", 9) != 0 || p[12] != ' ' ||
		    sscanf(p + 9, "%3d", &status) != 1)
			bad_answer("malformed status line", p, n);
		if (!allowed_status(status))
			bad_answer("unexpected status", p, n);
		if (status == 100) {
			p += hlen;
			n -= hlen;
			continue;
		}
		if (!find(p, hlen, "\r\nContent-Length: ") || !find(p, hlen, "\r\nDate: "))
			bad_answer("missing header", p, n);
		clen = content_length(p, hlen, n);
		/* The answer to HEAD has the headers GET's would have and no
		 * body: what follows is the next answer, or nothing. */
		if (clen > 0 && (n - hlen == 0 || (n - hlen >= 9 && memcmp(p + hlen, "HTTP/1.1 ", 9) == 0))) {
			p += hlen;
			n -= hlen;
			continue;
		}
		if (clen > n - hlen)
			return; /* cut short */
		if (status >= 400 &&
		    (!find(p, hlen, "\r\nContent-Type: application/json\r\n") || clen < 10 ||
		     memcmp(p + hlen, "{\"error\":\"", 10) != 0))
			bad_answer("error without a JSON body", p, n);
		/* a full store is the one 503 an input can cause */
		if (status == 503 && (!find(p, hlen, "\r\nRetry-After: ") ||
		                      !find(p + hlen, clen, "\"store full\"")))
			bad_answer("503 other than a full store", p, n);
		p += hlen + clen;
		n -= hlen + clen;
	}
}

/* ---- one input ----------------------------------------------------------- */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct client cl = { .fd = -1 };
	uint64_t ops;
	unsigned turns = 0;

	relay_writer_stats(fz.writer, NULL, &ops);
	if (ops - fz.ops_at_start > RESET_EVERY) {
		stack_stop();
		stack_start();
	}
	if (!(cl.req = sign_requests(data, size)) || !(cl.answers = evbuffer_new()))
		goto out;
	cl.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (cl.fd < 0 || connect(cl.fd, (struct sockaddr *)&fz.addr, fz.addr_len) != 0)
		die("cannot connect to the listener", errno);
	cl.ev_read = event_new(fz.base, cl.fd, EV_READ | EV_PERSIST, client_read, &cl);
	cl.ev_write = event_new(fz.base, cl.fd, EV_WRITE | EV_PERSIST, client_write, &cl);
	if (!cl.ev_read || !cl.ev_write)
		goto out;
	event_add(cl.ev_read, NULL);
	event_add(cl.ev_write, NULL);

	while ((!cl.closed || relay_ingest_pending(fz.ingest) > 0) && turns++ < MAX_TURNS) {
		if (cl.sent && !cl.shut && server_quiet(&cl)) {
			shutdown(cl.fd, SHUT_WR);
			cl.shut = 1;
		}
		event_base_loop(fz.base, EVLOOP_ONCE);
	}
	if (turns > MAX_TURNS) {
		fprintf(stderr, "fuzz_http: the connection did not end\n");
		abort();
	}
	if (fz.echo)
		fprintf(stderr, "%.*s\n", (int)evbuffer_get_length(cl.answers),
		        (const char *)evbuffer_pullup(cl.answers, -1));
	check_answers(cl.answers);

out:
	if (cl.ev_read)
		event_free(cl.ev_read);
	if (cl.ev_write)
		event_free(cl.ev_write);
	if (cl.fd >= 0) {
		close(cl.fd);
		/* let the server see the close and free its side now, not in the
		 * next input's time */
		for (int i = 0; i < 4; i++)
			event_base_loop(fz.base, EVLOOP_NONBLOCK);
	}
	if (cl.req)
		evbuffer_free(cl.req);
	if (cl.answers)
		evbuffer_free(cl.answers);
	return 0;
}
