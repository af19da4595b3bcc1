/*
 * odoo-relay: what the Odoo driver does around an order's load() (route.h:
 * "find", "then", "warnings", "refuse"), kept out of dest_odoo.c.
 *
 *  - relay_order_apply_finds: found ids into the load's cells.
 *  - relay_order_load_warnings: the warnings load() gave for some rows.
 *  - relay_order_guard_many: before the load of records that exist, read
 *    them and refuse what Odoo would refuse (a locked record; lines of ours
 *    removed from a confirmed one), or set removed lines to quantity 0.
 *  - relay_order_steps: after the load, the "then" steps, each reading the
 *    record's field first and calling only in an allowed state, so that a
 *    replay never raises "not in a state requiring confirmation".
 *
 * Threading: the loop thread of the client. The asynchronous functions
 * call back exactly once, from the loop, never from inside the call that
 * started them (they return an error instead, with no callback).
 * Ownership: arguments are borrowed until the function returns (copied as
 * needed); the callback's arguments are valid during the callback only.
 */
#ifndef ODOO_RELAY_ODOO_ORDER_H
#define ODOO_RELAY_ODOO_ORDER_H

#include <stddef.h>

#include <jansson.h>

#include "odoo_relay/classify.h"
#include "odoo_relay/odoo_client.h"
#include "odoo_relay/route.h"

/* failure: NULL when all went well, else why not (a permanent outcome
 * "relay.refused" for a refusal, or the failed call's outcome) with the
 * request sent (or NULL). note: what was done, for the event's outcome and
 * log ("action_confirm: state draft, called"), or NULL. */
typedef void (*relay_order_fn)(void *arg, const struct relay_outcome *failure,
                               const char *request, const char *note);

/*
 * relay_order_apply_finds - write each find's "id" (lookup.h) into its
 * load_data cell. Returns NULL when every find had an id, else the "error"
 * of the first that did not (borrowed from finds; nothing more is written
 * after it). finds NULL: nothing, NULL. Pure.
 */
const char *relay_order_apply_finds(json_t *load_data, const json_t *finds);

/*
 * relay_order_load_warnings - the texts of the "warning" messages of a
 * load() result that name a row in [from, to) ("; "-separated), or NULL
 * when there are none. The caller frees it. Pure.
 */
char *relay_order_load_warnings(const json_t *load_result, size_t from, size_t to);

/* relay_order_load_id - the k-th record id of a load() result: a positive
 * integer, or 0 when the answer has none there (ids false, shorter, or
 * holding false or anything but a positive integer in place k). Pure. */
json_int_t relay_order_load_id(const json_t *load_result, size_t k);

/*
 * relay_order_xmlid_res_id - the record id an ir.model.data row (a
 * search_read answer with fields name and res_id) gives for external ID
 * module.name: its res_id when that is a positive integer. Otherwise 0,
 * and why (size n, NUL-terminated) says what Odoo answered in its place
 * (false, 0, a negative, a text, null, none): Odoo always keeps a positive
 * id there, so 0 is Odoo answering wrongly, and such a value must never be
 * used as a record id (nor taken for "no record"). Pure.
 */
json_int_t relay_order_xmlid_res_id(const json_t *row, const char *module, char *why, size_t n);

/*
 * relay_order_load_row_id - the id of the k-th of the records records a
 * load() sent, when the answer gives it for sure: a positive integer in
 * place k of an ids list of exactly records ids. Otherwise 0, and why
 * (size n, NUL-terminated) says what the answer lacks: a list of another
 * length tells no row's id (which one is missing is not known), a false
 * or another value in place k none of that row's. A record's steps need
 * its id; Odoo's load() always gives one per record, so 0 is Odoo
 * answering wrongly. Pure.
 */
json_int_t relay_order_load_row_id(const json_t *load_result, size_t k, size_t records,
                                   char *why, size_t n);

/* verdicts: an array, one per plan: null (go ahead), {"refused": why} (a
 * permanent failure of that event) or {"note": what was done} ("1 removed
 * line set to quantity 0"); NULL with failure, the outcome of a call that
 * failed (every event's). */
typedef void (*relay_order_many_fn)(void *arg, const struct relay_outcome *failure,
                                    const char *request, const json_t *verdicts);

/*
 * relay_order_guard_many - the n plans of a call (one model, one module)
 * against refuse (relay_route_refuse), their records looked up by external
 * ID: one ir.model.data search, one read of the records that exist
 * (state, locked_field, line_field), one search of the line external IDs
 * of the confirmed ones, then one write per record whose removed lines go
 * to quantity 0. A locked record is refused when its plan sends lines; on
 * a confirmed one, a line of ours the plan no longer has is refused, or
 * set to 0 with "zero". Returns 0 (cb will come), ENOMEM or
 * the client's error (no callback).
 */
int relay_order_guard_many(struct relay_odoo *client, const struct relay_plan *const *plans,
                           size_t n, const json_t *refuse, const json_t *context,
                           relay_order_many_fn cb, void *arg);

/*
 * relay_order_steps - run steps (relay_route_then) from step first on, on
 * record id of model, with context (the route's; each step's own over it).
 * Returns 0 (cb will come), -RELAY_EINVAL when there is no step first or
 * id is not positive (no call is made on a record not known), ENOMEM or
 * the client's error (no callback).
 */
int relay_order_steps(struct relay_odoo *client, const char *model, json_int_t id,
                      const json_t *steps, size_t first, const json_t *context,
                      relay_order_fn cb, void *arg);

/*
 * relay_order_steps_call - the same when the value of step 0's field is
 * known already (read for many records at once) and allows the call: the
 * call goes now, then the other steps. -RELAY_EINVAL when value does not
 * allow it (relay_order_step_allows).
 */
int relay_order_steps_call(struct relay_odoo *client, const char *model, json_int_t id,
                           const json_t *steps, const json_t *context, const json_t *value,
                           relay_order_fn cb, void *arg);

/* relay_order_step_allows - 1 when value (as read: a many2one as [id,
 * name]) is one of step k's values. Pure. */
int relay_order_step_allows(const json_t *steps, size_t k, const json_t *value);

/* relay_order_value_text - a read value as text for notes (a many2one's
 * name). Pure. */
void relay_order_value_text(const json_t *v, char *buf, size_t n);

#endif
