/*
 * odoo-relay: when to try a failed delivery again, and when to stop.
 *
 * A pure policy (no clock, no randomness of its own): callers pass the
 * current time and a random number, so the functions are deterministic and
 * unit-testable. The policy per route is struct relay_backoff_conf
 * (config.h).
 *
 * Delay: exponential, base * 2^(attempt-1), capped at cap_ms, with "equal
 * jitter": half of that ceiling is fixed and the other half is drawn
 * uniformly from rnd. Every delay therefore lies in [ceil - ceil/2, ceil]:
 * retries of many events that failed together spread out, yet no retry comes
 * sooner than half its step, and none later than the cap.
 *
 * All functions are thread-safe.
 */
#ifndef ODOO_RELAY_BACKOFF_H
#define ODOO_RELAY_BACKOFF_H

#include <stdint.h>

#include "odoo_relay/config.h"

enum relay_backoff_verdict {
	RELAY_RETRY = 0,
	RELAY_GIVE_UP = 1,
};

/* Retry-After is honoured up to the larger of the route's cap and this. A
 * server asking for more than that is treated as asking for that much, so a
 * bogus header cannot park an event for days. */
#define RELAY_BACKOFF_RETRY_AFTER_MAX_MS INT64_C(3600000)

/*
 * relay_backoff_ceiling - the upper bound of relay_backoff_delay for attempt:
 * min(cap_ms, base_ms * 2^(attempt-1)), computed without overflow for every
 * unsigned attempt. attempt 0 is taken as 1. A base_ms or cap_ms <= 0 gives 0.
 * Non-decreasing in attempt.
 */
int64_t relay_backoff_ceiling(const struct relay_backoff_conf *c, unsigned attempt);

/*
 * relay_backoff_delay - milliseconds to wait after attempt (1-based: the
 * attempt that just failed) failed.
 *
 * With ceil = relay_backoff_ceiling(c, attempt), the result is
 * ceil - ceil/2 + r, r in [0, ceil/2] chosen by rnd: rnd = 0 gives the
 * minimum, rnd = UINT64_MAX the maximum, and rnd values evenly spread over
 * the 64-bit range give results evenly spread over the interval (the
 * high half of rnd * (ceil/2 + 1) is taken, not a modulo). Never negative.
 */
int64_t relay_backoff_delay(const struct relay_backoff_conf *c, unsigned attempt, uint64_t rnd);

/*
 * relay_backoff_next - decide what to do after a failed, charged attempt.
 *
 * attempts         attempts charged so far, including the one that just
 *                  failed (so >= 1)
 * first_attempt_ms wall clock of the event's first attempt; 0 or a value
 *                  after now_ms means "this was the first" and is taken as now
 * now_ms           wall clock now
 * retry_after_ms   the server's Retry-After in ms, 0 (or negative) if none
 * rnd              a random number (relay_backoff_random()) for the jitter
 * due_ms           out: when to try again; set to now_ms on RELAY_GIVE_UP.
 *                  May be NULL.
 *
 * Returns RELAY_GIVE_UP when max_attempts > 0 and attempts >= max_attempts,
 * or when max_age_s > 0 and now_ms - first_attempt_ms >= max_age_s * 1000;
 * a limit of 0 means "no limit". Otherwise returns RELAY_RETRY with
 * *due_ms = now_ms + max(relay_backoff_delay(c, attempts, rnd),
 * min(retry_after_ms, max(cap_ms, RELAY_BACKOFF_RETRY_AFTER_MAX_MS))),
 * saturating at INT64_MAX. A retry may fall due after max_age: the
 * failure of that attempt then gives up (the event gets its last try rather
 * than being dropped early).
 */
int relay_backoff_next(const struct relay_backoff_conf *c, unsigned attempts,
                       int64_t first_attempt_ms, int64_t now_ms, int64_t retry_after_ms,
                       uint64_t rnd, int64_t *due_ms);

/*
 * relay_backoff_random - 64 random bits for relay_backoff_delay, from
 * OpenSSL's RAND_bytes. Should that fail (it does not once the library has
 * seeded), falls back to a mix of the monotonic clock and a counter: jitter
 * needs spread, not secrecy. Thread-safe; never fails.
 */
uint64_t relay_backoff_random(void);

#endif
