/*
 * odoo-relay: finding records of another model at delivery time (a route's
 * "find" specs, route.h), for one Odoo destination.
 *
 * A plan's finds ask for "the product.product whose default_code is
 * SKU-1". relay_lookup_resolve answers all the finds it is given (those of
 * every event of a batch) with one search_read per model, field and
 * options, whose domain is [field, "in", every value not cached]; a
 * record answers a find when its field's value, as Odoo gives it, is the
 * find's value (text): a string in full and exactly, a number by value
 * (10.0 is "10" and "10.0"), a many2one ([id, "name"]) by its id. It
 * writes into each find object either "id" (the database id; and "xmlid",
 * "module.name", for a find with "as_xmlid", from one more search_read of
 * ir.model.data for the group) or "error" (a
 * text for the event's dead letter: "no product.product with default_code
 * 'SKU-9'", or several matches when the find may not pick the first).
 * Found ids are cached per (model, field, options, value) for the find's
 * cache_ms; relay_lookup_forget drops the entries a failed call used and
 * whose failure names them, so that a product deleted in Odoo is searched
 * again.
 *
 * Threading: the loop thread of the client's event_base. Ownership:
 * the instance owns its cache; finds and client are borrowed until the
 * callback.
 */
#ifndef ODOO_RELAY_LOOKUP_H
#define ODOO_RELAY_LOOKUP_H

#include <stddef.h>

#include <jansson.h>

#include "odoo_relay/classify.h"
#include "odoo_relay/odoo_client.h"

struct relay_lookup;

/* The most values one search_read asks for; more go in further calls. */
#define RELAY_LOOKUP_CHUNK 500
/* The most cache entries; beyond, the oldest half goes. */
#define RELAY_LOOKUP_CACHE_MAX 50000

/* relay_lookup_new - an empty cache. Returns 0 with *out set, or ENOMEM. */
int relay_lookup_new(struct relay_lookup **out);

/* relay_lookup_free - frees the cache. A resolve in flight must be over
 * (its client freed first: its calls then end cancelled). NULL: no-op. */
void relay_lookup_free(struct relay_lookup *lk);

/* failure: NULL when every search answered (each find then has "id" or
 * "error"); else the outcome of the search that failed (transient,
 * configuration, ...; finds it did not answer have neither), valid during
 * the callback, with request the request sent (or NULL). calls: how many
 * calls were made. */
typedef void (*relay_lookup_fn)(void *arg, const struct relay_outcome *failure,
                                const char *request, unsigned calls);

/*
 * relay_lookup_resolve - resolve finds (a JSON array of find objects as
 * relay_plan.finds holds them; a reference is taken), through client, with
 * context (the route's, or NULL; each find's active_test is added).
 * Returns 1 when the cache answered every find (each has "id"; no call, no
 * callback); 0 when the first search was sent: cb then comes exactly once,
 * from the loop (never from inside this call), also when a later search
 * cannot be sent (failure then says why, transient). Otherwise no callback
 * comes and the error is returned: -RELAY_EINVAL for a NULL argument or a
 * find without a value, ENOMEM, or the client's error when the first search
 * cannot be sent (relay_odoo_call: -RELAY_ECLOSED, -RELAY_ETRANSPORT, ...);
 * the caller ends its job with it (a driver's send returns it, and the
 * delivery counts a transient failure).
 */
int relay_lookup_resolve(struct relay_lookup *lk, struct relay_odoo *client, json_t *finds,
                         const json_t *context, relay_lookup_fn cb, void *arg);

/* relay_lookup_forget - drop the cache entries of finds (an array of find
 * objects, or NULL: nothing) that why names (a failure's message and
 * detail: the find's model, or its id quoted, "database id '42'"), or all
 * of them when why is NULL. */
void relay_lookup_forget(struct relay_lookup *lk, const json_t *finds, const char *why);

/* relay_lookup_cached - entries in the cache (tests, status). */
size_t relay_lookup_cached(const struct relay_lookup *lk);

#endif
