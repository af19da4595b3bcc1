/* A destination's circuit: see include/odoo_relay/circuit.h. */
#include <stdio.h>
#include <string.h>

#include "odoo_relay/circuit.h"
#include "odoo_relay/utf8.h"

static const char *const state_names[] = { "closed", "open", "probing", "half-open" };

const char *
relay_circuit_state_name(enum relay_circuit_state s)
{
	return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "?";
}

/* since_ms marks when delivery stopped or resumed, nothing in between. */
static void
set_state(struct relay_circuit *c, enum relay_circuit_state s, int64_t now_ms)
{
	if ((s == RELAY_CIRCUIT_STATE_CLOSED) != (c->state == RELAY_CIRCUIT_STATE_CLOSED))
		c->since_ms = now_ms;
	c->state = s;
	if (s == RELAY_CIRCUIT_STATE_CLOSED)
		c->why[0] = '\0';
}

void
relay_circuit_init(struct relay_circuit *c, const struct relay_circuit_conf *conf, int64_t now_ms)
{
	memset(c, 0, sizeof(*c));
	c->conf = *conf;
	c->state = RELAY_CIRCUIT_STATE_PROBING;
	c->since_ms = now_ms;
	c->quiet = 1;
}

void
relay_circuit_reload(struct relay_circuit *c, const struct relay_circuit_conf *conf,
                     int64_t now_ms)
{
	c->conf = *conf;
	c->was_open = c->state != RELAY_CIRCUIT_STATE_CLOSED;
	/* An outage's since_ms stays where it began. */
	set_state(c, RELAY_CIRCUIT_STATE_PROBING, now_ms);
	c->quiet = 1;
	c->run = 0;
}

int
relay_circuit_probe_due(struct relay_circuit *c)
{
	if (c->state != RELAY_CIRCUIT_STATE_OPEN)
		return 0;
	c->state = RELAY_CIRCUIT_STATE_PROBING;
	return 1;
}

enum relay_circuit_change
relay_circuit_probe_passed(struct relay_circuit *c, int64_t now_ms)
{
	if (c->state != RELAY_CIRCUIT_STATE_PROBING)
		return RELAY_CIRCUIT_SAME;
	c->run = 0;
	if (c->quiet) {
		int was_open = c->was_open;

		c->quiet = 0;
		c->was_open = 0;
		set_state(c, RELAY_CIRCUIT_STATE_CLOSED, now_ms);
		return was_open ? RELAY_CIRCUIT_CLOSED : RELAY_CIRCUIT_READY;
	}
	set_state(c, RELAY_CIRCUIT_STATE_HALF_OPEN, now_ms);
	return RELAY_CIRCUIT_HALF_OPENED;
}

enum relay_circuit_change
relay_circuit_open(struct relay_circuit *c, const char *why, int64_t now_ms)
{
	enum relay_circuit_state was = c->state;
	int first;

	if (was == RELAY_CIRCUIT_STATE_OPEN)
		return RELAY_CIRCUIT_SAME;
	relay_utf8_snprintf(c->why, sizeof(c->why), "%s", why ? why : "");
	for (char *p = c->why; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	/* The first opening of an outage (or a start's or reload's failed
	 * probe) is news and gets the short delay; a failed probe backs off. */
	first = was == RELAY_CIRCUIT_STATE_CLOSED || c->quiet;
	if (first)
		c->probe_delay_ms = c->conf.probe_base_ms;
	else
		c->probe_delay_ms = c->probe_delay_ms > c->conf.probe_cap_ms / 2
			? c->conf.probe_cap_ms : c->probe_delay_ms * 2;
	if (c->probe_delay_ms <= 0)
		c->probe_delay_ms = 1000;
	c->quiet = 0;
	c->run = 0;
	set_state(c, RELAY_CIRCUIT_STATE_OPEN, now_ms);
	return first ? RELAY_CIRCUIT_OPENED : RELAY_CIRCUIT_REOPENED;
}

enum relay_circuit_change
relay_circuit_transient(struct relay_circuit *c, uint64_t event, const char *why, int64_t now_ms)
{
	if (c->state == RELAY_CIRCUIT_STATE_HALF_OPEN)
		return relay_circuit_open(c, why, now_ms);
	if (c->state != RELAY_CIRCUIT_STATE_CLOSED)
		return RELAY_CIRCUIT_SAME;
	if (c->run == 0 || c->run_event != event)
		c->run++;
	c->run_event = event;
	if (c->run >= (c->conf.failures ? c->conf.failures : 1))
		return relay_circuit_open(c, why, now_ms);
	return RELAY_CIRCUIT_SAME;
}

enum relay_circuit_change
relay_circuit_answered(struct relay_circuit *c, int64_t now_ms)
{
	c->run = 0;
	if (c->state != RELAY_CIRCUIT_STATE_HALF_OPEN)
		return RELAY_CIRCUIT_SAME;
	set_state(c, RELAY_CIRCUIT_STATE_CLOSED, now_ms);
	return RELAY_CIRCUIT_CLOSED;
}

int
relay_circuit_down(const struct relay_circuit *c)
{
	if (c->state == RELAY_CIRCUIT_STATE_OPEN)
		return 1;
	return c->state == RELAY_CIRCUIT_STATE_PROBING && (!c->quiet || c->was_open);
}

int
relay_circuit_reset(struct relay_circuit *c)
{
	if (c->state != RELAY_CIRCUIT_STATE_OPEN)
		return 0;
	c->probe_delay_ms = c->conf.probe_base_ms;
	c->state = RELAY_CIRCUIT_STATE_PROBING;
	return 1;
}

unsigned
relay_circuit_slots(const struct relay_circuit *c, unsigned limit)
{
	switch (c->state) {
	case RELAY_CIRCUIT_STATE_CLOSED:
		return limit;
	case RELAY_CIRCUIT_STATE_HALF_OPEN:
		return limit ? 1 : 0;
	default:
		return 0;
	}
}
