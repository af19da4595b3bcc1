/*
 * bench-curl: the delivery benchmark's baseline. A bare libcurl multi client
 * that makes the calls odoo-relayd would make for N events (one JSON-RPC
 * execute_kw load() of one record each, after one common.login), with the
 * same number of calls in flight, and prints the rate.
 *
 *   bench-curl URL DB LOGIN KEY N IN_FLIGHT
 *
 * Prints "calls N seconds S rate R" on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct sink {
	char buf[4096];
	size_t len;
};

static size_t
on_data(char *p, size_t sz, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t k = sz * n;
	size_t room = sizeof(s->buf) - 1 - s->len;
	memcpy(s->buf + s->len, p, k < room ? k : room);
	s->len += k < room ? k : room;
	s->buf[s->len] = '\0';
	return k;
}

static CURL *
make_call(const char *url, const char *body, struct curl_slist *hdrs, struct sink *s)
{
	CURL *e = curl_easy_init();
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	s->len = 0;
	return e;
}

int
main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: bench-curl URL DB LOGIN KEY N IN_FLIGHT\n");
		return 64;
	}
	const char *base = argv[1], *db = argv[2], *login = argv[3], *key = argv[4];
	long n = atol(argv[5]), inflight = atol(argv[6]);
	char url[1024], body[4096];
	snprintf(url, sizeof(url), "%s/jsonrpc", base);

	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Expect:");

	/* log in once, as the relay does */
	struct sink s0;
	snprintf(body, sizeof(body),
	         "{\"jsonrpc\":\"2.0\",\"method\":\"call\",\"id\":1,\"params\":{\"service\":\"common\","
	         "\"method\":\"login\",\"args\":[\"%s\",\"%s\",\"%s\"]}}", db, login, key);
	CURL *e = make_call(url, body, hdrs, &s0);
	curl_easy_perform(e);
	curl_easy_cleanup(e);
	const char *r = strstr(s0.buf, "\"result\"");
	int uid = r ? atoi(strchr(r, ':') + 1) : 0;
	if (uid <= 0) {
		fprintf(stderr, "bench-curl: login failed: %s\n", s0.buf);
		return 1;
	}

	CURLM *m = curl_multi_init();
	long started = 0, done = 0, failed = 0;
	double t0 = now_s();
	while (done < n) {
		while (started < n && started - done < inflight) {
			snprintf(body, sizeof(body),
			         "{\"jsonrpc\":\"2.0\",\"method\":\"call\",\"id\":%ld,\"params\":{\"service\":"
			         "\"object\",\"method\":\"execute_kw\",\"args\":[\"%s\",%d,\"%s\","
			         "\"res.partner\",\"load\",[],{\"fields\":[\"id\",\"name\",\"email\"],"
			         "\"data\":[[\"odoo_relay.bench_%ld\",\"Bench %ld\",\"b%ld@example.com\"]]}]}}",
			         started + 2, db, uid, key, started % 1000, started, started);
			struct sink *sk = malloc(sizeof(*sk));
			CURL *c = make_call(url, body, hdrs, sk);
			curl_easy_setopt(c, CURLOPT_PRIVATE, sk);
			curl_multi_add_handle(m, c);
			started++;
		}
		int running, finished = 0;
		curl_multi_perform(m, &running);
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(m, &left))) {
			finished++;
			if (msg->msg != CURLMSG_DONE)
				continue;
			long code = 0;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
			if (msg->data.result != CURLE_OK || code != 200)
				failed++;
			char *sk;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &sk);
			free(sk);
			curl_multi_remove_handle(m, msg->easy_handle);
			curl_easy_cleanup(msg->easy_handle);
			done++;
		}
		/* Wait for the sockets only when nothing finished: a finished
		 * transfer frees a slot to fill at once. */
		if (!finished)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	double secs = now_s() - t0;
	printf("calls %ld seconds %.3f rate %.1f failed %ld\n", n, secs, (double)n / secs, failed);
	curl_multi_cleanup(m);
	curl_slist_free_all(hdrs);
	curl_global_cleanup();
	return failed ? 1 : 0;
}
