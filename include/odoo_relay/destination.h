/*
 * odoo-relay: a destination's driver, the one interface every kind of
 * destination (Odoo, HTTP endpoints) implements.
 *
 * A driver instance belongs to one configured destination. Given jobs of
 * one route (an event each, see scheduler.h) it makes the calls that apply
 * them, and reports one outcome per job (classify.h: done; transient with
 * an optional retry-after; permanent; configuration, for the destination or
 * for the route) with the detail that logs and dead letters keep, and the
 * request that was sent. It returns outcomes; it never writes the store,
 * opens a circuit or schedules anything: the caller (delivery.c) does that
 * with what the driver reports.
 *
 * send takes up to max_batch jobs of one route, so that a driver that can
 * apply several events in one call (Odoo's load()) does; a driver that
 * cannot says max_batch 1. A driver that sends a batch and is told that
 * some rows failed reports those rows' outcomes and sends the others again
 * itself, at once, before their callbacks come. Each job's done callback comes exactly once,
 * from the loop, never from inside send; the jobs stay the caller's
 * (borrowed until their callback). A job whose event cannot even be mapped
 * gets a permanent outcome the same way.
 *
 * probe checks that the destination answers and accepts the configuration
 * (credentials, and for Odoo the external-ID module prefix), without
 * touching data: done means healthy, anything else is the failure.
 *
 * Threading: everything on the loop thread of the event_base given to
 * create. Freeing an instance (destroy) cancels what is in flight: the
 * pending callbacks come with a transient outcome whose transport is
 * RELAY_TRANSPORT_CANCELLED, from within destroy or right after.
 */
#ifndef ODOO_RELAY_DESTINATION_H
#define ODOO_RELAY_DESTINATION_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "odoo_relay/classify.h"
#include "odoo_relay/config.h"
#include "odoo_relay/route.h"
#include "odoo_relay/scheduler.h"

/* Which call carried a job, for its outcome's log and attempt: batch_id
 * names the call (unique in a process, 0 when the job went alone),
 * batch_size its rows, row this job's row in it (-1 when the outcome is the
 * whole call's), and first is 1 for the first outcome reported from one
 * answer of the destination (feed circuits once per call, not per row). */
struct relay_sent_info {
	uint64_t batch_id;
	unsigned batch_size;
	int row;
	int first;
};

/* One job's outcome. o and request (API key masked, or NULL when nothing was
 * sent) are valid during the callback only. how is a short text for the log
 * of a done outcome ("delivered", "deleted (already gone)"), else NULL. info
 * is never NULL. */
typedef void (*relay_driver_done_fn)(struct relay_job *job, const struct relay_outcome *o,
                                     const char *request, const char *how,
                                     const struct relay_sent_info *info, void *arg);
/* A read's outcome (o and request valid during the callback only); records
 * is the destination's answer when o->klass is done (borrowed: valid during
 * the callback; for Odoo's read() a list of records, [] when none exists),
 * else NULL. */
typedef void (*relay_driver_read_fn)(const struct relay_outcome *o, const char *request,
                                     const json_t *records, void *arg);
/* A probe's outcome, valid during the callback only. */
typedef void (*relay_driver_probe_fn)(const struct relay_outcome *o, void *arg);

struct relay_driver_ops {
	const char *kind;           /* "odoo", "http" */
	unsigned max_batch;         /* jobs per send, >= 1 (the route may ask fewer:
	                               relay_route_batch) */
	/* A new instance for conf (copied: conf may be freed after). Returns 0,
	 * ENOMEM, or -RELAY_EINVAL / -RELAY_ETRANSPORT when it cannot be set up. */
	int (*create)(struct event_base *base, const struct relay_destination_conf *conf,
	              void **out);
	void (*destroy)(void *drv);
	/* Returns 0 (cb will come), ENOMEM or -RELAY_ECLOSED; cb never comes then. */
	int (*probe)(void *drv, relay_driver_probe_fn cb, void *arg);
	/* n >= 1 jobs of route (borrowed during the call only). Returns 0 (every
	 * job's cb will come), or an error with no callback at all. */
	int (*send)(void *drv, struct relay_job *const *jobs, size_t n,
	            const struct relay_route *route, relay_driver_done_fn cb, void *arg);
	/* The protocol it speaks now, for status ("jsonrpc", "json2"; "auto"
	 * before the destination has told). Static text. */
	const char *(*protocol)(void *drv);
	/* Optional: NULL for a kind that cannot read. Read fields (a JSON
	 * array of names) of model's records ids (a JSON array of ids), both
	 * borrowed during the call, for a route's "confirm" (confirm.h): Odoo's
	 * read(). Returns 0 (cb will come, from the loop, never from inside;
	 * destroy cancels it as it cancels jobs), -RELAY_EINVAL, ENOMEM,
	 * -RELAY_ECLOSED; cb never comes then. */
	int (*read)(void *drv, const char *model, json_t *ids, json_t *fields,
	            relay_driver_read_fn cb, void *arg);
};

/* relay_driver_for - the driver of kind, or NULL for a kind without one. */
const struct relay_driver_ops *relay_driver_for(enum relay_dest_kind kind);

/* The Odoo driver (dest_odoo.c). */
extern const struct relay_driver_ops relay_driver_odoo;

/* The HTTP driver (dest_http.c): one signed request per event (Standard
 * Webhooks headers), max_batch 1; its probe is an OPTIONS request that any
 * HTTP answer passes; a 410 is reported with scope RELAY_SCOPE_STOP (the
 * caller pauses the destination until an operator resumes it).
 * odoo-relay.conf(5), HTTP DESTINATIONS. */
extern const struct relay_driver_ops relay_driver_http;

/*
 * relay_dest_http_classify - the outcome of one exchange with an HTTP
 * destination (x->protocol and x->method are not read), into *out
 * (overwritten; free with relay_outcome_clear):
 *   2xx                                       done
 *   408, 429, 5xx                             transient, Retry-After honoured
 *                                             (500, 501 and the other 5xx too:
 *                                             a server that fails may recover)
 *   410                                       configuration, scope STOP ("http.410")
 *   3xx (never followed), other 4xx, 1xx      permanent, "http.<status>",
 *                                             detail the start of the body
 *   transport failures                        transient ("transport.<kind>";
 *                                             connect keeps RELAY_TRANSPORT_CONNECT
 *                                             so that the circuit opens at once),
 *                                             except too_big: permanent
 * Returns 0, -RELAY_EINVAL for a NULL x or out, or ENOMEM (*out zeroed).
 * Pure; thread-safe.
 */
int relay_dest_http_classify(const struct relay_exchange *x, struct relay_outcome *out);

#endif
