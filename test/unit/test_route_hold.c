/* Unit tests for lib/route_hold.c: held routes, their tries and delays. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "odoo_relay/route_hold.h"

static void
test_hold_and_try(void)
{
	struct relay_holds *h = relay_holds_new();

	CHECK(h != NULL);
	CHECK_INT(relay_hold_check(h, "orders", 0, 0), RELAY_HOLD_FREE);
	CHECK_INT(relay_hold(h, "orders", 1000, 100, 1000), 1); /* news: log it */
	CHECK_INT(relay_holds_count(h), 1);
	CHECK_INT(relay_hold_check(h, "orders", 1050, 0), RELAY_HOLD_WAIT);
	CHECK_INT(relay_hold_check(h, "customers", 1050, 0), RELAY_HOLD_FREE);
	/* due: one event is the try, the next waits a delay */
	CHECK_INT(relay_hold_check(h, "orders", 1100, 0), RELAY_HOLD_TRY);
	CHECK_INT(relay_hold_check(h, "orders", 1150, 0), RELAY_HOLD_WAIT);
	/* never the event let through a half-open circuit */
	CHECK_INT(relay_hold_check(h, "orders", 5000, 1), RELAY_HOLD_WAIT);
	/* failing again doubles the delay, up to the cap */
	CHECK_INT(relay_hold(h, "orders", 2000, 100, 1000), 0);
	CHECK_INT(relay_hold_check(h, "orders", 2199, 0), RELAY_HOLD_WAIT);
	CHECK_INT(relay_hold_check(h, "orders", 2200, 0), RELAY_HOLD_TRY);
	for (int i = 0; i < 10; i++)
		relay_hold(h, "orders", 3000, 100, 1000);
	CHECK_INT(relay_hold_check(h, "orders", 3999, 0), RELAY_HOLD_WAIT);
	CHECK_INT(relay_hold_check(h, "orders", 4000, 0), RELAY_HOLD_TRY);
	/* an answer releases it */
	CHECK_INT(relay_hold_release(h, "orders"), 1);
	CHECK_INT(relay_hold_release(h, "orders"), 0);
	CHECK_INT(relay_hold_check(h, "orders", 4001, 0), RELAY_HOLD_FREE);
	CHECK_INT(relay_holds_count(h), 0);
	relay_holds_free(h);
}

static int released;

static void
count_released(const char *route, void *arg)
{
	released++;
	CHECK(strcmp(route, "a") == 0 || strcmp(route, "b") == 0);
}

static void
test_release_all(void)
{
	struct relay_holds *h = relay_holds_new();

	relay_hold(h, "a", 0, 100, 1000);
	relay_hold(h, "b", 0, 100, 1000);
	relay_hold_release_all(h, count_released, NULL);
	CHECK_INT(released, 2);
	CHECK_INT(relay_holds_count(h), 0);
	CHECK_INT(relay_hold_check(h, "a", 0, 0), RELAY_HOLD_FREE);
	relay_holds_free(h);
	relay_holds_free(NULL);
}

int
main(void)
{
	RUN(test_hold_and_try);
	RUN(test_release_all);
	return check_done();
}
