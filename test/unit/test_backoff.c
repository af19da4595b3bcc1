/* Unit tests for lib/backoff.c: bounds, jitter spread, cap, give-up rules. */
#include <limits.h>
#include <stdint.h>

#include "check.h"
#include "odoo_relay/backoff.h"

static const struct relay_backoff_conf defaults = {
	.base_ms = 1000, .cap_ms = 3600000, .max_attempts = 25, .max_age_s = 259200,
};

static void
test_ceiling(void)
{
	struct relay_backoff_conf c = defaults;
	struct relay_backoff_conf huge = { .base_ms = INT64_MAX / 4, .cap_ms = INT64_MAX };
	unsigned a;

	CHECK_INT(relay_backoff_ceiling(&c, 0), 1000);  /* 0 is taken as 1 */
	CHECK_INT(relay_backoff_ceiling(&c, 1), 1000);
	CHECK_INT(relay_backoff_ceiling(&c, 2), 2000);
	CHECK_INT(relay_backoff_ceiling(&c, 3), 4000);
	CHECK_INT(relay_backoff_ceiling(&c, 12), 2048000);
	CHECK_INT(relay_backoff_ceiling(&c, 13), 3600000); /* 4096000 capped */
	CHECK_INT(relay_backoff_ceiling(&c, 63), 3600000);
	CHECK_INT(relay_backoff_ceiling(&c, 64), 3600000);
	CHECK_INT(relay_backoff_ceiling(&c, 65), 3600000);
	CHECK_INT(relay_backoff_ceiling(&c, 1u << 31), 3600000);
	CHECK_INT(relay_backoff_ceiling(&c, UINT_MAX), 3600000);
	/* No overflow when base * 2^n passes INT64_MAX. */
	CHECK_INT(relay_backoff_ceiling(&huge, 1), INT64_MAX / 4);
	CHECK_INT(relay_backoff_ceiling(&huge, 2), (INT64_MAX / 4) * 2);
	CHECK_INT(relay_backoff_ceiling(&huge, 3), (INT64_MAX / 4) * 4);
	CHECK_INT(relay_backoff_ceiling(&huge, 4), INT64_MAX);
	CHECK_INT(relay_backoff_ceiling(&huge, UINT_MAX), INT64_MAX);
	/* The upper bound never goes down. */
	for (a = 1; a < 200; a++)
		if (relay_backoff_ceiling(&c, a + 1) < relay_backoff_ceiling(&c, a))
			break;
	CHECK_INT(a, 200);
	for (a = 1; a < 200; a++)
		if (relay_backoff_ceiling(&huge, a + 1) < relay_backoff_ceiling(&huge, a))
			break;
	CHECK_INT(a, 200);
}

static void
test_degenerate(void)
{
	struct relay_backoff_conf zero = { .base_ms = 0, .cap_ms = 1000 };
	struct relay_backoff_conf inverted = { .base_ms = 5000, .cap_ms = 1000 };
	struct relay_backoff_conf one = { .base_ms = 1, .cap_ms = 1 };

	CHECK_INT(relay_backoff_delay(&zero, 5, UINT64_MAX), 0);
	CHECK_INT(relay_backoff_ceiling(&inverted, 1), 1000);
	CHECK_INT(relay_backoff_delay(&inverted, 1, 0), 500);
	CHECK_INT(relay_backoff_delay(&inverted, 1, UINT64_MAX), 1000);
	/* ceil 1: half 0, so the delay is exactly 1 whatever rnd is. */
	CHECK_INT(relay_backoff_delay(&one, 1, 0), 1);
	CHECK_INT(relay_backoff_delay(&one, 9, UINT64_MAX), 1);
}

/* For each attempt, over evenly spaced rnd values: every delay lies in
 * [ceil - ceil/2, ceil], both ends are reached, and the mean is in the
 * middle. The rnd values are fixed, so this cannot flake. */
static void
test_delay_distribution(void)
{
	const struct relay_backoff_conf confs[] = {
		defaults,
		{ .base_ms = 3, .cap_ms = 1001 },       /* odd ceilings */
		{ .base_ms = 250, .cap_ms = INT64_MAX }, /* no practical cap */
	};
	enum { N = 2000 };
	size_t ci;
	unsigned a;
	int i;

	for (ci = 0; ci < sizeof confs / sizeof confs[0]; ci++) {
		const struct relay_backoff_conf *c = &confs[ci];
		int bad_bounds = 0, bad_ends = 0, bad_mean = 0, over_cap = 0;

		for (a = 1; a <= 70; a++) {
			int64_t ceil = relay_backoff_ceiling(c, a), half = ceil / 2;
			int64_t lo = ceil - half, min = INT64_MAX, max = INT64_MIN;
			long double sum = 0, mean, mid;

			if (relay_backoff_delay(c, a, 0) != lo ||
			    relay_backoff_delay(c, a, UINT64_MAX) != ceil)
				bad_ends++;
			for (i = 0; i < N; i++) {
				uint64_t rnd = (uint64_t)i * (UINT64_MAX / (N - 1));
				int64_t d = relay_backoff_delay(c, a, rnd);

				if (d < lo || d > ceil)
					bad_bounds++;
				if (d > c->cap_ms)
					over_cap++;
				if (d < min)
					min = d;
				if (d > max)
					max = d;
				sum += (long double)d;
			}
			/* The last spaced rnd falls short of UINT64_MAX by less than
			 * N, so the largest delay may miss ceil by one step of half/N. */
			if (min != lo || max > ceil || max < ceil - half / (N - 1) - 1)
				bad_ends++;
			mean = sum / N;
			mid = (long double)lo + (long double)half / 2;
			/* Evenly spaced inputs: the mean is within a hair of the middle. */
			if (mean < mid - (long double)half / 100 - 1 ||
			    mean > mid + (long double)half / 100 + 1)
				bad_mean++;
		}
		CHECK_INT(bad_bounds, 0);
		CHECK_INT(bad_ends, 0);
		CHECK_INT(bad_mean, 0);
		CHECK_INT(over_cap, 0);
	}
}

static void
test_give_up(void)
{
	struct relay_backoff_conf c = defaults;
	const int64_t now = INT64_C(1700000000000), age_ms = c.max_age_s * 1000;
	int64_t due = -1;

	CHECK_INT(relay_backoff_next(&c, 24, now - 1000, now, 0, 0, &due), RELAY_RETRY);
	CHECK(due >= now + 1800000 && due <= now + 3600000);
	CHECK_INT(relay_backoff_next(&c, 25, now - 1000, now, 0, 0, &due), RELAY_GIVE_UP);
	CHECK_INT(due, now);
	CHECK_INT(relay_backoff_next(&c, 26, now - 1000, now, 0, 0, &due), RELAY_GIVE_UP);

	/* Age: exactly max_age gives up, a millisecond less does not. */
	CHECK_INT(relay_backoff_next(&c, 3, now - age_ms, now, 0, 0, &due), RELAY_GIVE_UP);
	CHECK_INT(relay_backoff_next(&c, 3, now - age_ms + 1, now, 0, 0, &due), RELAY_RETRY);
	/* first_attempt_ms 0 (or in the future) is "now": never too old. */
	CHECK_INT(relay_backoff_next(&c, 1, 0, now, 0, 0, &due), RELAY_RETRY);
	CHECK_INT(relay_backoff_next(&c, 1, now + 5000, now, 0, 0, &due), RELAY_RETRY);

	/* Limits of 0 mean no limit. */
	c.max_attempts = 0;
	c.max_age_s = 0;
	CHECK_INT(relay_backoff_next(&c, UINT_MAX, 1, now, 0, 0, &due), RELAY_RETRY);
	CHECK_INT(due, now + c.cap_ms / 2);
	CHECK_INT(relay_backoff_next(&c, 5, 1, now, 0, 0, NULL), RELAY_RETRY);
	/* An enormous max_age cannot overflow into a give-up. */
	c.max_age_s = INT64_MAX;
	CHECK_INT(relay_backoff_next(&c, 5, 1, now, 0, 0, &due), RELAY_RETRY);
}

static void
test_due(void)
{
	struct relay_backoff_conf c = defaults;
	const int64_t now = INT64_C(1700000000000);
	int64_t due;

	/* The delay for the attempts charged so far. */
	CHECK_INT(relay_backoff_next(&c, 1, now, now, 0, 0, &due), RELAY_RETRY);
	CHECK_INT(due, now + 500);
	CHECK_INT(relay_backoff_next(&c, 3, now, now, 0, UINT64_MAX, &due), RELAY_RETRY);
	CHECK_INT(due, now + 4000);
	/* Near the end of time the due time saturates. */
	CHECK_INT(relay_backoff_next(&c, 3, INT64_MAX - 10, INT64_MAX - 10, 0, UINT64_MAX, &due),
	          RELAY_RETRY);
	CHECK_INT(due, INT64_MAX);
}

static void
test_retry_after(void)
{
	struct relay_backoff_conf c = defaults;
	const int64_t now = INT64_C(1700000000000);
	int64_t due;

	/* Retry-After longer than the backoff wins. */
	CHECK_INT(relay_backoff_next(&c, 1, now, now, 30000, UINT64_MAX, &due), RELAY_RETRY);
	CHECK_INT(due, now + 30000);
	/* Shorter than the backoff: the backoff wins. */
	CHECK_INT(relay_backoff_next(&c, 10, now, now, 1000, 0, &due), RELAY_RETRY);
	CHECK_INT(due, now + 256000);
	/* Longer than max(cap, 1 h) is cut to that. */
	c.cap_ms = 60000;
	CHECK_INT(relay_backoff_next(&c, 1, now, now, INT64_C(36000000), 0, &due), RELAY_RETRY);
	CHECK_INT(due, now + RELAY_BACKOFF_RETRY_AFTER_MAX_MS);
	c.cap_ms = 7200000;
	CHECK_INT(relay_backoff_next(&c, 1, now, now, INT64_C(36000000), 0, &due), RELAY_RETRY);
	CHECK_INT(due, now + 7200000);
	/* Retry-After does not save an event from giving up. */
	CHECK_INT(relay_backoff_next(&c, 25, now, now, 5000, 0, &due), RELAY_GIVE_UP);
	/* A negative value is "none". */
	CHECK_INT(relay_backoff_next(&c, 1, now, now, -5, 0, &due), RELAY_RETRY);
	CHECK_INT(due, now + 500);
}

static void
test_random(void)
{
	uint64_t a = relay_backoff_random(), b = relay_backoff_random(), c = relay_backoff_random();

	/* Three equal 64-bit draws would mean the source is broken. */
	CHECK(!(a == b && b == c));
}

int
main(void)
{
	RUN(test_ceiling);
	RUN(test_degenerate);
	RUN(test_delay_distribution);
	RUN(test_give_up);
	RUN(test_due);
	RUN(test_retry_after);
	RUN(test_random);
	return check_done();
}
