/*
 * bench-http-curl: the HTTP destination benchmark's baseline. A bare libcurl
 * multi client that POSTs what odoo-relayd sends an HTTP destination for N
 * events: the same JSON body (an Odoo webhook post for sale order i, as
 * bench_http_dest.py feeds the relay) and the same headers (Content-Type,
 * webhook-id, webhook-timestamp and a webhook-signature of the same length,
 * not computed: the bare client does nothing but send), with the same
 * number of requests in flight, and prints the rate. Any 2xx counts.
 *
 *   bench-http-curl URL N IN_FLIGHT
 *
 * Prints "requests N seconds S rate R failed F" on stdout.
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

static size_t
on_data(char *p, size_t sz, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return sz * n;
}

int
main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: bench-http-curl URL N IN_FLIGHT\n");
		return 64;
	}
	const char *url = argv[1];
	long n = atol(argv[2]), inflight = atol(argv[3]);
	long started = 0, done = 0, failed = 0, in_calls = 0;
	char body[512], h_id[64], h_ts[64];
	static const char h_sig[] =
		"webhook-signature: v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=";

	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURLM *m = curl_multi_init();
	double t0 = now_s();

	while (done < n) {
		while (started < n && in_calls < inflight) {
			struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
			CURL *e = curl_easy_init();

			/* the body bench_http_dest.py posts to the relay for event i */
			snprintf(body, sizeof(body),
			         "{\"_action\": \"Warehouse webhook(#42)\", \"_id\": %ld, "
			         "\"_model\": \"sale.order\", \"amount_total\": 120.5, \"id\": %ld, "
			         "\"name\": \"S%05ld\", \"partner_id\": 42, \"state\": \"sale\"}",
			         started + 1, started + 1, started + 1);
			snprintf(h_id, sizeof(h_id), "webhook-id: evt_%ld", started + 1);
			snprintf(h_ts, sizeof(h_ts), "webhook-timestamp: %ld", (long)time(NULL));
			h = curl_slist_append(h, h_id);
			h = curl_slist_append(h, h_ts);
			h = curl_slist_append(h, h_sig);
			h = curl_slist_append(h, "Expect:");
			curl_easy_setopt(e, CURLOPT_URL, url);
			curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
			curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
			curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
			curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
			curl_easy_setopt(e, CURLOPT_PRIVATE, h);
			curl_multi_add_handle(m, e);
			started++;
			in_calls++;
		}
		int running, finished = 0, left;
		CURLMsg *msg;

		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left))) {
			struct curl_slist *h;
			long code = 0;

			if (msg->msg != CURLMSG_DONE)
				continue;
			finished++;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
			if (msg->data.result != CURLE_OK || code < 200 || code > 299)
				failed++;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&h);
			curl_multi_remove_handle(m, msg->easy_handle);
			curl_easy_cleanup(msg->easy_handle);
			curl_slist_free_all(h);
			done++;
			in_calls--;
		}
		/* wait for the sockets only when nothing finished */
		if (!finished)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	double secs = now_s() - t0;

	printf("requests %ld seconds %.3f rate %.1f failed %ld\n", n, secs, (double)n / secs, failed);
	curl_multi_cleanup(m);
	curl_global_cleanup();
	return failed ? 1 : 0;
}
