/*
 * odoo-relay: the two clocks, in milliseconds.
 *
 * Wall time (CLOCK_REALTIME) is what is stored and shown: received, due and
 * attempt times. Monotonic time (CLOCK_MONOTONIC) measures durations and
 * deadlines, which must not jump with the wall clock.
 * Both never fail and are thread-safe.
 */
#ifndef ODOO_RELAY_CLOCK_H
#define ODOO_RELAY_CLOCK_H

#include <stdint.h>

/* relay_wall_ms - milliseconds since the Unix epoch. */
int64_t relay_wall_ms(void);

/* relay_mono_ms - milliseconds on the monotonic clock (arbitrary origin). */
int64_t relay_mono_ms(void);

#endif
