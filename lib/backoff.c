/* Retry policy: see include/odoo_relay/backoff.h. */
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include <openssl/rand.h>

#include "odoo_relay/backoff.h"

/* The high 64 bits of a * b, in portable C (no __int128 on 32-bit targets). */
static uint64_t
mul_hi64(uint64_t a, uint64_t b)
{
	uint64_t a_lo = a & 0xffffffffu, a_hi = a >> 32;
	uint64_t b_lo = b & 0xffffffffu, b_hi = b >> 32;
	uint64_t lo_lo = a_lo * b_lo;
	uint64_t hi_lo = a_hi * b_lo;
	uint64_t lo_hi = a_lo * b_hi;
	uint64_t hi_hi = a_hi * b_hi;
	/* Cannot overflow: each term is below 2^32. */
	uint64_t cross = (lo_lo >> 32) + (hi_lo & 0xffffffffu) + lo_hi;

	return hi_hi + (hi_lo >> 32) + (cross >> 32);
}

int64_t
relay_backoff_ceiling(const struct relay_backoff_conf *c, unsigned attempt)
{
	int64_t base = c->base_ms, cap = c->cap_ms;
	unsigned shift;

	if (base <= 0 || cap <= 0)
		return 0;
	if (base >= cap)
		return cap;
	shift = attempt > 0 ? attempt - 1 : 0;
	/* base < cap <= INT64_MAX, so once base << shift reaches cap we stop
	 * before shifting a bit out. */
	if (shift >= 63 || base > (cap >> shift))
		return cap;
	return base << shift; /* <= cap */
}

int64_t
relay_backoff_delay(const struct relay_backoff_conf *c, unsigned attempt, uint64_t rnd)
{
	int64_t ceil = relay_backoff_ceiling(c, attempt);
	int64_t half = ceil / 2;

	/* Scale rnd onto [0, half] by multiplication rather than modulo, so that
	 * evenly spaced rnd give evenly spaced delays (and no modulo bias). */
	return ceil - half + (int64_t)mul_hi64(rnd, (uint64_t)half + 1);
}

int
relay_backoff_next(const struct relay_backoff_conf *c, unsigned attempts,
                   int64_t first_attempt_ms, int64_t now_ms, int64_t retry_after_ms,
                   uint64_t rnd, int64_t *due_ms)
{
	int64_t delay, ra_max;
	int over_attempts, over_age;

	if (first_attempt_ms <= 0 || first_attempt_ms > now_ms)
		first_attempt_ms = now_ms;
	over_attempts = c->max_attempts > 0 && attempts >= c->max_attempts;
	/* A max_age_s beyond what int64 milliseconds hold is never reached. */
	over_age = c->max_age_s > 0 && c->max_age_s <= INT64_MAX / 1000 &&
		now_ms - first_attempt_ms >= c->max_age_s * 1000;
	if (over_attempts || over_age) {
		if (due_ms)
			*due_ms = now_ms;
		return RELAY_GIVE_UP;
	}
	delay = relay_backoff_delay(c, attempts, rnd);
	if (retry_after_ms > 0) {
		ra_max = c->cap_ms > RELAY_BACKOFF_RETRY_AFTER_MAX_MS ?
			c->cap_ms : RELAY_BACKOFF_RETRY_AFTER_MAX_MS;
		if (retry_after_ms > ra_max)
			retry_after_ms = ra_max;
		if (retry_after_ms > delay)
			delay = retry_after_ms;
	}
	if (due_ms)
		*due_ms = now_ms > INT64_MAX - delay ? INT64_MAX : now_ms + delay;
	return RELAY_RETRY;
}

uint64_t
relay_backoff_random(void)
{
	static atomic_uint_fast64_t counter;
	unsigned char b[8];
	struct timespec ts;
	uint64_t v = 0;
	int i;

	if (RAND_bytes(b, sizeof b) == 1) {
		for (i = 0; i < 8; i++)
			v = v << 8 | b[i];
		return v;
	}
	/* splitmix64 over the clock and a counter: spread, not secrecy. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	v = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec +
	    atomic_fetch_add(&counter, 1) * UINT64_C(0x9e3779b97f4a7c15);
	v = (v ^ (v >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	v = (v ^ (v >> 27)) * UINT64_C(0x94d049bb133111eb);
	return v ^ (v >> 31);
}
