/*
 * odoo-relay: confirming an Odoo webhook against Odoo before it goes on.
 *
 * Odoo posts its webhook ("Send Webhook Notification") from inside the
 * transaction that made the change: a transaction that rolls back afterwards
 * has still posted (a phantom), and a record written twice in quick
 * succession may be posted with values that are no longer current. A route
 * with "confirm" (route.h) therefore reads the record from Odoo just before
 * each delivery and sends what Odoo holds at that moment. These are the
 * pure halves of that: what to read, and what the answer means. The read
 * itself is a destination driver's (destination.h, read), the wiring is
 * delivery.c's.
 *
 * What is read: `read` of [_id] on _model, for the route's confirm "fields",
 * or by default the fields the webhook carries: every top-level member of
 * its body except "id" and those starting with '_' (Odoo adds _action, _id,
 * _model and id to the fields its automation rule selects). A webhook that
 * carries no field is read for "id" alone: an existence check.
 *
 * What is sent: the webhook's body, each member the read returned (other
 * than "id") replaced by its current value, members the webhook did not
 * carry added after its own; _action, _id, _model and id stay as posted.
 * Values are as Odoo's read() gives them (a many2one as [id, "name"]).
 *
 * Pure: no I/O, no clock, thread-safe; allocates only what it returns.
 */
#ifndef ODOO_RELAY_CONFIRM_H
#define ODOO_RELAY_CONFIRM_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* What an answer of read() says about the record. */
enum relay_confirm_result {
	RELAY_CONFIRM_FOUND = 0,     /* the record exists: its current values */
	RELAY_CONFIRM_GONE = 1,      /* read answered []: the record does not exist */
};

/*
 * relay_confirm_target - what to read for the webhook body (len bytes):
 * *model (malloc'd, caller frees), *id (> 0) and *fields (a new JSON array
 * of field names, caller decrefs): route_fields (the route's confirm
 * "fields", borrowed) when not NULL, else the webhook's fields as above.
 * Returns 0; -RELAY_EINVAL when the body is not an Odoo webhook (not a JSON
 * object, no "_model" string, no positive integer "_id"), with why (whysz
 * bytes, NUL-terminated) saying so and nothing returned; ENOMEM (nothing
 * returned).
 */
int relay_confirm_target(const unsigned char *body, size_t len, const json_t *route_fields,
                         char **model, int64_t *id, json_t **fields, char *why, size_t whysz);

/*
 * relay_confirm_apply - what Odoo's answer to that read (result, borrowed:
 * the JSON-RPC result or the JSON-2 body) means for the webhook body:
 *   RELAY_CONFIRM_GONE   an empty array: the record is gone; *out untouched
 *   RELAY_CONFIRM_FOUND  an array whose first element is an object with
 *                        "id" equal to id: *out (malloc'd, NUL-terminated,
 *                        compact JSON) and *out_len get the body to send
 * Returns one of those, -RELAY_EINVAL for any other answer or a body that
 * is not a JSON object (why filled), or ENOMEM.
 */
int relay_confirm_apply(const unsigned char *body, size_t len, int64_t id, const json_t *result,
                        char **out, size_t *out_len, char *why, size_t whysz);

#endif
