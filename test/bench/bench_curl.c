/*
 * bench-curl: the delivery benchmarks' baseline. A bare libcurl multi client
 * that makes the calls odoo-relayd would make for N events (load() calls
 * of ROWS records each, 1 by default: JSON-RPC execute_kw after one
 * common.login, or JSON-2 with the key as bearer), with the same number of
 * calls in flight, and prints the rate. Record i is "odoo_relay.bench_<i>"
 * with email "<TAG><i>@example.com": run it twice with another TAG to time
 * updates of the same records.
 *
 *   bench-curl URL DB LOGIN KEY N IN_FLIGHT [ROWS [jsonrpc|json2 [TAG]]]
 *
 * Prints "calls C rows N seconds S rate R" on stdout (R: records/s).
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
	long rows;
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
	if (argc < 7 || argc > 10) {
		fprintf(stderr, "usage: bench-curl URL DB LOGIN KEY N IN_FLIGHT [ROWS [jsonrpc|json2 "
		        "[TAG]]]\n");
		return 64;
	}
	const char *base = argv[1], *db = argv[2], *login = argv[3], *key = argv[4];
	long n = atol(argv[5]), inflight = atol(argv[6]);
	long rows = argc > 7 ? atol(argv[7]) : 1;
	int json2 = argc > 8 && strcmp(argv[8], "json2") == 0;
	const char *tag = argc > 9 ? argv[9] : "b";
	char url[1024], body[4096], auth[512];
	if (rows < 1)
		rows = 1;
	snprintf(url, sizeof(url), json2 ? "%s/json/2/res.partner/load" : "%s/jsonrpc", base);
	size_t bodysz = 512 + (size_t)rows * 160;
	char *big = malloc(bodysz);

	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (json2) {
		snprintf(auth, sizeof(auth), "Authorization: bearer %s", key);
		hdrs = curl_slist_append(hdrs, auth);
		snprintf(auth, sizeof(auth), "X-Odoo-Database: %s", db);
		hdrs = curl_slist_append(hdrs, auth);
	}

	/* log in once, as the relay does (JSON-2 needs no login) */
	int uid = 0;
	if (!json2) {
		struct sink s0;
		snprintf(body, sizeof(body),
		         "{\"jsonrpc\":\"2.0\",\"method\":\"call\",\"id\":1,\"params\":{\"service\":\"common\","
		         "\"method\":\"login\",\"args\":[\"%s\",\"%s\",\"%s\"]}}", db, login, key);
		char lurl[1024];
		snprintf(lurl, sizeof(lurl), "%s/jsonrpc", base);
		CURL *e = make_call(lurl, body, hdrs, &s0);
		curl_easy_perform(e);
		curl_easy_cleanup(e);
		const char *r = strstr(s0.buf, "\"result\"");
		uid = r ? atoi(strchr(r, ':') + 1) : 0;
		if (uid <= 0) {
			fprintf(stderr, "bench-curl: login failed: %s\n", s0.buf);
			return 1;
		}
	}

	CURLM *m = curl_multi_init();
	long started = 0, done = 0, failed = 0, calls = 0, in_calls = 0;
	double t0 = now_s();
	while (done < n) {
		while (started < n && in_calls < inflight) {
			/* the rows of one call */
			size_t used = 0;
			long k = started;
			used += (size_t)snprintf(big + used, bodysz - used, "[");
			for (; k < n && k < started + rows; k++)
				used += (size_t)snprintf(big + used, bodysz - used,
				                         "%s[\"odoo_relay.bench_%ld\",\"Bench %ld\","
				                         "\"%s%ld@example.com\"]", k > started ? "," : "",
				                         k, k, tag, k);
			snprintf(big + used, bodysz - used, "]");
			char *full = malloc(bodysz + 512);
			if (json2)
				snprintf(full, bodysz + 512, "{\"fields\":[\"id\",\"name\",\"email\"],"
				         "\"data\":%s}", big);
			else
				snprintf(full, bodysz + 512,
				         "{\"jsonrpc\":\"2.0\",\"method\":\"call\",\"id\":%ld,\"params\":"
				         "{\"service\":\"object\",\"method\":\"execute_kw\",\"args\":[\"%s\","
				         "%d,\"%s\",\"res.partner\",\"load\",[],{\"fields\":[\"id\",\"name\","
				         "\"email\"],\"data\":%s}]}}", calls + 2, db, uid, key, big);
			struct sink *sk = malloc(sizeof(*sk));
			sk->rows = k - started;
			CURL *c = make_call(url, full, hdrs, sk);
			free(full);
			curl_easy_setopt(c, CURLOPT_PRIVATE, sk);
			curl_multi_add_handle(m, c);
			started = k;
			calls++;
			in_calls++;
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
			struct sink *sk;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&sk);
			if (!strstr(sk->buf, "\"ids\": [") && !strstr(sk->buf, "\"ids\":["))
				failed++;
			done += sk->rows;
			in_calls--;
			free(sk);
			curl_multi_remove_handle(m, msg->easy_handle);
			curl_easy_cleanup(msg->easy_handle);
		}
		/* Wait for the sockets only when nothing finished: a finished
		 * transfer frees a slot to fill at once. */
		if (!finished)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	double secs = now_s() - t0;
	printf("calls %ld rows %ld seconds %.3f rate %.1f failed %ld\n", calls, n, secs,
	       (double)n / secs, failed);
	free(big);
	curl_multi_cleanup(m);
	curl_slist_free_all(hdrs);
	curl_global_cleanup();
	return failed ? 1 : 0;
}
