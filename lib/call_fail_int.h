/*
 * odoo-relay: the outcome of an Odoo call that could not even be made (no
 * memory, a request that would not build), shared by the modules that drive
 * the Odoo client for a destination: dest_odoo.c, lookup.c and odoo_order.c.
 * Private to those files; what their callers see is in the contracts of
 * destination.h, lookup.h and odoo_order.h.
 */
#ifndef RELAY_CALL_FAIL_INT_H
#define RELAY_CALL_FAIL_INT_H

#include "odoo_relay/classify.h"
#include "odoo_relay/error.h"

/* Sets *o to a transient outcome named "relay.call" with rc's text. When
 * even that cannot be allocated, a bare transient transport error stands in,
 * so that the caller always has an outcome to report: a job must end even
 * when memory is short. Release it with relay_outcome_clear. */
static inline void
relay_call_failed(struct relay_outcome *o, int rc)
{
	if (relay_outcome_set(o, RELAY_CLASS_TRANSIENT, RELAY_SCOPE_NONE, "relay.call",
	                      relay_strerror(rc), NULL))
		*o = (struct relay_outcome){ .klass = RELAY_CLASS_TRANSIENT,
		                             .transport = RELAY_TRANSPORT_ERROR };
}

#endif
