/* Stage timings of acknowledgements: see include/odoo_relay/acktrace.h. */
#include "odoo_relay/acktrace.h"

#ifdef RELAY_ACK_TRACE
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct {
	uint64_t n;
	int64_t v[RELAY_ACK_TRACE_SAMPLES];
} stages[RELAY_ACK_STAGES];

int64_t
relay_acktrace_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
relay_acktrace_add(enum relay_ack_stage stage, int64_t value)
{
	stages[stage].v[stages[stage].n++ % RELAY_ACK_TRACE_SAMPLES] = value;
}

static int
cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

void
relay_acktrace_dump(FILE *f)
{
	static const char *const name[RELAY_ACK_STAGES] = {
		"handler", "handoff", "apply", "commit", "wake", "answer", "total", "pages",
	};
	static int64_t tmp[RELAY_ACK_TRACE_SAMPLES];

	for (int s = 0; s < RELAY_ACK_STAGES; s++) {
		size_t n = stages[s].n < RELAY_ACK_TRACE_SAMPLES ? stages[s].n : RELAY_ACK_TRACE_SAMPLES;
		double div = s == RELAY_ACK_PAGES ? 1.0 : 1000.0;

		if (!n)
			continue;
		memcpy(tmp, stages[s].v, n * sizeof(*tmp));
		qsort(tmp, n, sizeof(*tmp), cmp64);
		fprintf(f, "acktrace %-8s n %8zu  p50 %9.1f  p90 %9.1f  p99 %9.1f %s\n", name[s], n,
		        (double)tmp[n / 2] / div, (double)tmp[n * 9 / 10] / div,
		        (double)tmp[n * 99 / 100] / div, s == RELAY_ACK_PAGES ? "pages" : "us");
	}
	fflush(f);
}
#endif
