/* Unit tests for lib/circuit.c: the state machine, its "since" and its delays. */
#include <string.h>

#include <jansson.h>

#include "check.h"
#include "odoo_relay/circuit.h"

static const struct relay_circuit_conf conf = { .failures = 3, .probe_base_ms = 100,
                                                .probe_cap_ms = 1000 };

static void
test_start(void)
{
	struct relay_circuit c;

	relay_circuit_init(&c, &conf, 1000);
	CHECK_INT(c.state, RELAY_CIRCUIT_STATE_PROBING);
	CHECK_INT(relay_circuit_slots(&c, 4), 0);
	/* the first probe passes: deliver at once, nothing to log */
	CHECK_INT(relay_circuit_probe_passed(&c, 1010), RELAY_CIRCUIT_READY);
	CHECK_INT(c.state, RELAY_CIRCUIT_STATE_CLOSED);
	CHECK_INT(c.since_ms, 1010);
	CHECK_INT(relay_circuit_slots(&c, 4), 4);
	/* a second "passed" with no probe in flight changes nothing */
	CHECK_INT(relay_circuit_probe_passed(&c, 1020), RELAY_CIRCUIT_SAME);

	/* a start whose probe fails is an opening, logged, with the base delay */
	relay_circuit_init(&c, &conf, 2000);
	CHECK_INT(relay_circuit_open(&c, "probe failed: database\n\"x\" does not exist\n", 2005),
	          RELAY_CIRCUIT_OPENED);
	CHECK_INT(c.probe_delay_ms, 100);
	CHECK(strchr(c.why, '\n') == NULL);
	CHECK_STR(c.why, "probe failed: database \"x\" does not exist ");
}

/* since_ms is when delivery stopped, however many probes fail after. */
static void
test_since_is_the_opening(void)
{
	struct relay_circuit c;
	int64_t t = 10000;

	relay_circuit_init(&c, &conf, t);
	relay_circuit_probe_passed(&c, t);
	CHECK_INT(relay_circuit_open(&c, "cannot connect", t + 500), RELAY_CIRCUIT_OPENED);
	CHECK_INT(c.since_ms, t + 500);
	int64_t want[] = { 200, 400, 800, 1000, 1000 };
	for (int i = 0; i < 5; i++) {
		CHECK_INT(relay_circuit_probe_due(&c), 1);
		CHECK_INT(c.state, RELAY_CIRCUIT_STATE_PROBING);
		CHECK_INT(relay_circuit_open(&c, "probe failed", t + 1000 + i * 1000),
		          RELAY_CIRCUIT_REOPENED);
		CHECK_INT(c.probe_delay_ms, want[i]);
		CHECK_INT(c.since_ms, t + 500);
	}
	/* a stale timer in another state starts nothing */
	CHECK_INT(relay_circuit_open(&c, "again", t + 9000), RELAY_CIRCUIT_SAME);
	CHECK_INT(relay_circuit_probe_due(&c), 1);
	CHECK_INT(relay_circuit_probe_due(&c), 0);
	/* recovery: half-open, then the one event closes it, since moves */
	CHECK_INT(relay_circuit_probe_passed(&c, t + 20000), RELAY_CIRCUIT_HALF_OPENED);
	CHECK_INT(c.since_ms, t + 500);
	CHECK_INT(relay_circuit_slots(&c, 4), 1);
	CHECK_INT(relay_circuit_answered(&c, t + 20010), RELAY_CIRCUIT_CLOSED);
	CHECK_INT(c.since_ms, t + 20010);
	CHECK_STR(c.why, "");
}

static void
test_transient_run(void)
{
	struct relay_circuit c;

	relay_circuit_init(&c, &conf, 0);
	relay_circuit_probe_passed(&c, 0);
	/* one event failing again and again is that event's trouble */
	for (int i = 0; i < 10; i++)
		CHECK_INT(relay_circuit_transient(&c, 7, "timeout", 10 + i), RELAY_CIRCUIT_SAME);
	CHECK_INT(c.state, RELAY_CIRCUIT_STATE_CLOSED);
	/* three distinct events in a row open it */
	CHECK_INT(relay_circuit_transient(&c, 8, "timeout", 30), RELAY_CIRCUIT_SAME);
	CHECK_INT(relay_circuit_transient(&c, 9, "timeout", 31), RELAY_CIRCUIT_OPENED);
	CHECK_INT(c.state, RELAY_CIRCUIT_STATE_OPEN);
	CHECK_STR(c.why, "timeout");

	/* an answer in between ends the run */
	relay_circuit_init(&c, &conf, 0);
	relay_circuit_probe_passed(&c, 0);
	relay_circuit_transient(&c, 1, "t", 1);
	relay_circuit_transient(&c, 2, "t", 2);
	CHECK_INT(relay_circuit_answered(&c, 3), RELAY_CIRCUIT_SAME);
	CHECK_INT(relay_circuit_transient(&c, 3, "t", 4), RELAY_CIRCUIT_SAME);
	CHECK_INT(c.state, RELAY_CIRCUIT_STATE_CLOSED);

	/* in half-open, the event let through failing reopens at once, backing off */
	relay_circuit_open(&c, "down", 5);
	relay_circuit_probe_due(&c);
	CHECK_INT(relay_circuit_probe_passed(&c, 6), RELAY_CIRCUIT_HALF_OPENED);
	CHECK_INT(relay_circuit_transient(&c, 4, "still down", 7), RELAY_CIRCUIT_REOPENED);
	CHECK_INT(c.probe_delay_ms, 200);
	/* an open circuit ignores the stragglers' failures */
	CHECK_INT(relay_circuit_transient(&c, 5, "t", 8), RELAY_CIRCUIT_SAME);
}

/* A reload probes again; an open circuit it clears says it closed. */
static void
test_reload(void)
{
	struct relay_circuit c;
	struct relay_circuit_conf other = conf;

	relay_circuit_init(&c, &conf, 0);
	relay_circuit_open(&c, "odoo refused our configuration: AccessDenied", 100);
	relay_circuit_probe_due(&c);
	relay_circuit_open(&c, "probe failed", 300);
	other.probe_base_ms = 50;
	relay_circuit_reload(&c, &other, 400);
	CHECK_INT(c.state, RELAY_CIRCUIT_STATE_PROBING);
	CHECK_INT(c.conf.probe_base_ms, 50);
	CHECK_INT(c.since_ms, 0); /* stopped since the start: it never closed */
	CHECK_INT(relay_circuit_probe_passed(&c, 450), RELAY_CIRCUIT_CLOSED);
	CHECK_INT(c.since_ms, 450);

	/* a reload of a closed circuit is quiet when its probe passes */
	relay_circuit_reload(&c, &other, 500);
	CHECK_INT(c.since_ms, 500);
	CHECK_INT(relay_circuit_probe_passed(&c, 510), RELAY_CIRCUIT_READY);
	/* and an opening, with the new base delay, when it fails */
	relay_circuit_reload(&c, &other, 600);
	CHECK_INT(relay_circuit_open(&c, "probe failed", 610), RELAY_CIRCUIT_OPENED);
	CHECK_INT(c.probe_delay_ms, 50);
	CHECK_INT(c.since_ms, 600);
}

static void
test_reset_and_names(void)
{
	struct relay_circuit c;

	relay_circuit_init(&c, &conf, 0);
	CHECK_INT(relay_circuit_reset(&c), 0); /* probing already */
	relay_circuit_open(&c, "down", 1);
	relay_circuit_probe_due(&c);
	relay_circuit_open(&c, "down", 2);
	relay_circuit_probe_due(&c);
	relay_circuit_open(&c, "down", 3);
	CHECK_INT(c.probe_delay_ms, 400);
	CHECK_INT(relay_circuit_reset(&c), 1);
	CHECK_INT(c.state, RELAY_CIRCUIT_STATE_PROBING);
	CHECK_INT(c.probe_delay_ms, 100);
	CHECK_STR(relay_circuit_state_name(RELAY_CIRCUIT_STATE_CLOSED), "closed");
	CHECK_STR(relay_circuit_state_name(RELAY_CIRCUIT_STATE_OPEN), "open");
	CHECK_STR(relay_circuit_state_name(RELAY_CIRCUIT_STATE_PROBING), "probing");
	CHECK_STR(relay_circuit_state_name(RELAY_CIRCUIT_STATE_HALF_OPEN), "half-open");
	CHECK_STR(relay_circuit_state_name((enum relay_circuit_state)9), "?");
}

/* Who else holds back: a destination known to fail, not one being checked. */
static void
test_down(void)
{
	struct relay_circuit c;

	relay_circuit_init(&c, &conf, 0);
	CHECK_INT(relay_circuit_down(&c), 0); /* a start's probe: nothing known */
	relay_circuit_probe_passed(&c, 1);
	CHECK_INT(relay_circuit_down(&c), 0);
	relay_circuit_reload(&c, &conf, 2);
	CHECK_INT(c.state, RELAY_CIRCUIT_STATE_PROBING);
	CHECK_INT(relay_circuit_down(&c), 0); /* a reload of a closed circuit */
	relay_circuit_open(&c, "down", 3);
	CHECK_INT(relay_circuit_down(&c), 1);
	CHECK_INT(relay_circuit_probe_due(&c), 1);
	CHECK_INT(relay_circuit_down(&c), 1); /* the timed probe of an outage */
	relay_circuit_reload(&c, &conf, 4);
	CHECK_INT(relay_circuit_down(&c), 1); /* a reload during an outage */
	relay_circuit_probe_passed(&c, 5);
	CHECK_INT(relay_circuit_down(&c), 0);
	relay_circuit_open(&c, "down", 6);
	relay_circuit_probe_due(&c);
	CHECK_INT(relay_circuit_probe_passed(&c, 7), RELAY_CIRCUIT_HALF_OPENED);
	CHECK_INT(relay_circuit_down(&c), 0); /* half-open: calls go again */
	CHECK_INT(relay_circuit_reset(&c), 0);
}

/* A why longer than the circuit keeps is cut before a character, not in
 * it: the status shows it as a JSON string, which must be valid UTF-8. */
static void
test_long_why_stays_utf8(void)
{
	struct relay_circuit c;
	char why[700];
	json_t *s;
	size_t n = 0;

	/* two-byte characters from offset 0: byte 511 is a second byte */
	while (n + 2 < sizeof(why)) {
		why[n++] = (char)0xc3;
		why[n++] = (char)0xa9;
	}
	why[n] = '\0';
	relay_circuit_init(&c, &conf, 1000);
	CHECK_INT(relay_circuit_open(&c, why, 1001), RELAY_CIRCUIT_OPENED);
	CHECK(strlen(c.why) < sizeof(c.why));
	CHECK(strlen(c.why) >= sizeof(c.why) - 2);
	s = json_string(c.why);
	CHECK(s != NULL);
	json_decref(s);
}

int
main(void)
{
	RUN(test_start);
	RUN(test_since_is_the_opening);
	RUN(test_transient_run);
	RUN(test_reload);
	RUN(test_reset_and_names);
	RUN(test_down);
	RUN(test_long_why_stays_utf8);
	return check_done();
}
