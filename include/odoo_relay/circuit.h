/*
 * odoo-relay: one destination's circuit, as a pure state machine.
 *
 * The circuit decides whether a destination may be sent anything. It takes
 * inputs (the result of a call or of a probe, a configuration failure, a
 * reload, an operator's reset) with the time they happened, and returns what
 * changed, so that its caller logs, arms the probe timer and kicks the
 * scheduler. It does no I/O, keeps no clock and calls nobody back.
 *
 *   closed ──(config failure │ no connection │ `failures` transient
 *             failures of distinct events in a row)──▶ open
 *   open ──(probe due)──▶ probing ──(probe passed)──▶ half-open
 *                                 └─(probe failed)──▶ open (delay doubled,
 *                                                     up to probe_cap_ms)
 *   half-open ──(the one event let through: done or permanent)──▶ closed
 *             └─(it failed transiently)──▶ open
 *
 * A start or a reload begins in probing, quietly: nothing is sent before the
 * destination answered a probe, and a probe that passes then closes the
 * circuit at once (no half-open step). If the circuit was open when the
 * reload came, that closing is reported as RELAY_CIRCUIT_CLOSED, like any
 * recovery.
 *
 * "since_ms" is the wall-clock time delivery stopped (the first opening of
 * an outage) or resumed: probes that cycle an open circuit through probing
 * and back do not move it.
 *
 * Threading: none of its own; a circuit belongs to one thread (the loop).
 * Ownership: struct relay_circuit is the caller's, embedded or allocated;
 * it holds no pointers.
 */
#ifndef ODOO_RELAY_CIRCUIT_H
#define ODOO_RELAY_CIRCUIT_H

#include <stdint.h>

enum relay_circuit_state {
	RELAY_CIRCUIT_STATE_CLOSED,
	RELAY_CIRCUIT_STATE_OPEN,
	RELAY_CIRCUIT_STATE_PROBING,
	RELAY_CIRCUIT_STATE_HALF_OPEN,
};

/* What an input did, for the caller to act on. */
enum relay_circuit_change {
	RELAY_CIRCUIT_SAME,       /* nothing to report */
	RELAY_CIRCUIT_OPENED,     /* delivery stopped: log it, arm the probe timer */
	RELAY_CIRCUIT_REOPENED,   /* a probe or the half-open event failed: arm the
	                             timer (next_probe_ms), log at debug level */
	RELAY_CIRCUIT_HALF_OPENED,/* a probe passed: let one event through */
	RELAY_CIRCUIT_CLOSED,     /* delivery resumed after an outage: log it */
	RELAY_CIRCUIT_READY,      /* the first probe after a start or reload passed
	                             with nothing to report: deliver */
};

struct relay_circuit_conf {
	unsigned failures;       /* transient failures of distinct events that open it (>= 1) */
	int64_t probe_base_ms;   /* first delay after an opening (> 0) */
	int64_t probe_cap_ms;    /* the delay doubles up to this (>= probe_base_ms) */
};

struct relay_circuit {
	struct relay_circuit_conf conf;
	enum relay_circuit_state state;
	int64_t since_ms;        /* wall clock; see above */
	int64_t probe_delay_ms;  /* the delay armed by the last opening */
	unsigned run;            /* transient failures of distinct events in a row */
	uint64_t run_event;      /* the event of the last of them */
	int quiet;               /* the first probe after a start or reload */
	int was_open;            /* a reload came while the circuit was not closed */
	char why[512];           /* why it opened, one line; "" when closed */
};

/*
 * relay_circuit_init - a new circuit in probing (quiet), since now_ms.
 * conf is copied. Cannot fail.
 */
void relay_circuit_init(struct relay_circuit *c, const struct relay_circuit_conf *conf,
                        int64_t now_ms);

/*
 * relay_circuit_reload - a new configuration: conf is copied, the circuit
 * goes to probing (quiet) and the caller starts a probe. A circuit that was
 * not closed reports RELAY_CIRCUIT_CLOSED when that probe passes.
 */
void relay_circuit_reload(struct relay_circuit *c, const struct relay_circuit_conf *conf,
                          int64_t now_ms);

/*
 * relay_circuit_probe_due - the probe timer fired. Returns 1 (state now
 * probing: start a probe) when the circuit is open, else 0 (a stale timer).
 */
int relay_circuit_probe_due(struct relay_circuit *c);

/* relay_circuit_probe_passed - the probe in flight passed. Returns READY,
 * CLOSED or HALF_OPENED; SAME when no probe was in flight. */
enum relay_circuit_change relay_circuit_probe_passed(struct relay_circuit *c, int64_t now_ms);

/*
 * relay_circuit_open - stop sending: a configuration failure, no connection
 * at all, a failed probe, or any other reason given in why (copied, cut to
 * one line of sizeof(c->why) - 1 bytes; control characters become spaces).
 * Returns OPENED for the first opening of an outage (also when a start's or
 * reload's probe fails), REOPENED when a probe or the half-open event failed
 * (the delay doubles), SAME when already open. The next probe is due
 * probe_delay_ms after now.
 */
enum relay_circuit_change relay_circuit_open(struct relay_circuit *c, const char *why,
                                             int64_t now_ms);

/*
 * relay_circuit_transient - event failed transiently (not a lost
 * connection, which is relay_circuit_open's). Counts distinct events: the
 * same event failing again does not add to the run. Opens (as
 * relay_circuit_open, with why) when the run reaches conf.failures, or at
 * once in half-open.
 */
enum relay_circuit_change relay_circuit_transient(struct relay_circuit *c, uint64_t event,
                                                  const char *why, int64_t now_ms);

/*
 * relay_circuit_answered - the destination answered a call for an event
 * (done, or a permanent failure of that event: either way it is up). Ends
 * the run; in half-open, closes the circuit and returns CLOSED.
 */
enum relay_circuit_change relay_circuit_answered(struct relay_circuit *c, int64_t now_ms);

/*
 * relay_circuit_reset - an operator asks for a probe now: an open circuit
 * goes to probing and 1 is returned (start a probe); otherwise 0.
 */
int relay_circuit_reset(struct relay_circuit *c);

/*
 * relay_circuit_down - 1 when the destination is known to be failing: the
 * circuit is open, or probing after it was open (a timed probe, or a
 * reload's probe of a circuit that was not closed); 0 when closed or
 * half-open, and during the quiet probe of a start or of a reload of a
 * closed circuit, which checks a destination nothing says is down. Other
 * callers of the destination (on-demand reads, pollers) hold back when it
 * is 1. Pure; cannot fail.
 */
int relay_circuit_down(const struct relay_circuit *c);

/* relay_circuit_slots - how many calls may be in flight: limit when closed,
 * 1 when half-open, 0 otherwise. */
unsigned relay_circuit_slots(const struct relay_circuit *c, unsigned limit);

/* relay_circuit_state_name - "closed", "open", "probing", "half-open". Static. */
const char *relay_circuit_state_name(enum relay_circuit_state s);

#endif
