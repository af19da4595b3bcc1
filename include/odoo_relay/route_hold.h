/*
 * odoo-relay: routes held back after their destination refused their
 * mapping.
 *
 * A configuration failure that concerns one route (Odoo: no such model or
 * field, access refused for that model) says nothing about the event and
 * nothing about the other routes: the route is held, its events stay
 * queued and are not charged, and one of its events is let through now and
 * then to see whether the route works again, at a delay that doubles from
 * base_ms up to cap_ms. An answer for the route releases it; a reload
 * releases every route (it may have fixed them).
 *
 * A pure table: no I/O, no clock (times are the caller's monotonic
 * milliseconds), no logging (the results say what to log).
 * Ownership: the table copies route names. Threading: one thread.
 */
#ifndef ODOO_RELAY_ROUTE_HOLD_H
#define ODOO_RELAY_ROUTE_HOLD_H

#include <stddef.h>
#include <stdint.h>

struct relay_holds;

/* relay_holds_new - an empty table, or NULL when out of memory. */
struct relay_holds *relay_holds_new(void);
/* relay_holds_free - NULL is a no-op. */
void relay_holds_free(struct relay_holds *h);

/*
 * relay_hold - hold route (again). Returns 1 when it was not held (log
 * it), 0 when it was (its delay doubled), ENOMEM when it cannot be held
 * (the caller goes on without: the next event finds out again).
 */
int relay_hold(struct relay_holds *h, const char *route, int64_t now_ms, int64_t base_ms,
               int64_t cap_ms);

/* What relay_hold_check says of an event of route. */
enum relay_hold_verdict {
	RELAY_HOLD_FREE,       /* not held: send it */
	RELAY_HOLD_WAIT,       /* held: leave the event queued */
	RELAY_HOLD_TRY,        /* held, and due for a try: send this one, the next
	                          try is a delay later */
};

/* relay_hold_check - may an event of route go now? A try is never the
 * event let through a half-open circuit (half_open 1 gives WAIT). */
enum relay_hold_verdict relay_hold_check(struct relay_holds *h, const char *route,
                                         int64_t now_ms, int half_open);

/* relay_hold_release - route works: returns 1 when it was held (log it). */
int relay_hold_release(struct relay_holds *h, const char *route);

/* relay_hold_release_all - release every route, calling fn (may be NULL)
 * with each name first (for a reload's log line). */
void relay_hold_release_all(struct relay_holds *h, void (*fn)(const char *route, void *arg),
                            void *arg);

/* relay_holds_count - routes held now. */
size_t relay_holds_count(const struct relay_holds *h);

#endif
