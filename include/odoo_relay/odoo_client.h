/*
 * odoo-relay: the asynchronous client for one Odoo target.
 *
 * Speaks the two external APIs of Odoo (see odoo/API.md) over
 * http_client.h on the caller's libevent loop:
 *
 *   JSON-RPC  POST <url>/jsonrpc, object.execute_kw(db, uid, key, model,
 *             method, args, kwargs) with args = [ids] when ids are given,
 *             else [], and kwargs = the named arguments (a "context" among
 *             them is Odoo's context). execute_kw calls
 *             method(*args, **kwargs), so this reaches every public method.
 *             The uid comes from common.login(db, login, key), made once and
 *             cached.
 *   JSON-2    POST <url>/json/2/<model>/<method>, body {"ids": ids, <named
 *             arguments>} (Odoo 19+), "Authorization: bearer <key>",
 *             "X-Odoo-Database: <db>" when a database is configured.
 *
 * Protocol "auto" asks the server its version once, before the first call:
 * GET <url>/web/version, or common.version over /jsonrpc when that does not
 * answer with a version; major >= 19 picks JSON-2, else JSON-RPC.
 * server_version_info[0] may be a number or a string such as "saas~18".
 *
 * Authentication failures:
 *   - login answering false is a configuration failure of the target,
 *     error_name "odoo.login", "login failed for <login> on database <db>";
 *   - AccessDenied from execute_kw drops the cached uid, logs in again once
 *     and retries that call once; only a second AccessDenied is reported
 *     (configuration, target). Never more than that per call: ten failed
 *     logins start Odoo's cooldown.
 * A failure to learn the version or to log in fails every call waiting for
 * it with that outcome; the next call tries again.
 *
 * Secrets: the API key is never logged nor put in an outcome or error text.
 * The request text handed to callbacks (for dead letters) is the JSON body
 * with the key of a JSON-RPC call replaced by "***"; for JSON-2 it is
 * "POST /json/2/<model>/<method>\n" followed by the body (the key travels
 * only in a header).
 *
 * This module does not log: outcomes carry everything a caller logs.
 *
 * Threading: a client and everything about it belongs to the thread running
 * its event_base.
 */
#ifndef ODOO_RELAY_ODOO_CLIENT_H
#define ODOO_RELAY_ODOO_CLIENT_H

#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "odoo_relay/classify.h"
#include "odoo_relay/config.h"

struct relay_odoo;

/* The result of one call or probe, valid during the callback only. */
struct relay_odoo_result {
	/* The classification. The callback may take outcome.result (keep
	 * the pointer and set the field to NULL); the rest is freed after. */
	struct relay_outcome outcome;
	/* The last request sent for this call, API key masked; NULL when
	 * nothing was sent (failed before: version, login, cancelled). */
	const char *request;
	int64_t duration_ms;               /* from the call to this callback, logins included */
	enum relay_odoo_protocol protocol; /* the protocol used; AUTO if never known */
	int server_major;                  /* Odoo's major version, 0 if not known */
	unsigned relogins;                 /* logins made again for this call (0 or 1) */
	/* The answer's body the outcome was read from (outcome.result_at and
	 * result_len point into it), valid only during the callback; NULL when
	 * the outcome was not read from the call's own answer. */
	const char *body;
	size_t body_len;
};

/* Called exactly once per accepted call or probe, from the loop, never from
 * inside relay_odoo_call or relay_odoo_probe. It may start new calls, and
 * it may free the client. */
typedef void (*relay_odoo_cb)(struct relay_odoo_result *res, void *arg);

/*
 * relay_odoo_new - a client for conf on base.
 *
 * conf is copied (the key included, wiped when the client is freed), so the
 * configuration may be freed or reloaded while the client lives; base is
 * borrowed and must outlive it. Nothing is sent until the first call.
 * Returns 0 with *out set, -RELAY_EINVAL when conf is not configured or
 * lacks url, database, login or key, ENOMEM, or -RELAY_ETRANSPORT when
 * libcurl cannot start. Loop thread only.
 */
int relay_odoo_new(struct event_base *base, const struct relay_odoo_conf *conf,
                   struct relay_odoo **out);

/*
 * relay_odoo_free - cancel everything and free the client. Every call and
 * probe not yet answered gets its callback with transport "cancelled"
 * (class transient: the event stays queued): from within this function, or,
 * when it is called from a callback of this same client, once that callback
 * has returned. Do not use o after this call, except from those cancelled
 * callbacks, where relay_odoo_call and relay_odoo_probe return
 * -RELAY_ECLOSED. NULL is a no-op.
 */
void relay_odoo_free(struct relay_odoo *o);

/*
 * relay_odoo_call - call model.method on Odoo.
 *
 * ids    a JSON array of record ids, or NULL for a method on the model
 *        (create, load, search...). Borrowed: the client takes a reference.
 * named  a JSON object of named arguments (may hold "context"), or NULL for
 *        none. Borrowed likewise. Do not change either until the callback.
 * cb     called once with the outcome, classified as in classify.h with
 *        the method name (so load's row errors are permanent failures).
 *
 * Returns 0 (cb will be called), -RELAY_EINVAL for a missing model, method
 * or cb, ids that is not an array or named that is not an object,
 * -RELAY_ECLOSED while the client is being freed, ENOMEM, or
 * -RELAY_ETRANSPORT. On error cb is never called.
 */
int relay_odoo_call(struct relay_odoo *o, const char *model, const char *method,
                    json_t *ids, json_t *named, relay_odoo_cb cb, void *arg);

/*
 * relay_odoo_probe - check that the target answers and accepts our
 * credentials, without touching data: ask the version (and, for "auto",
 * choose the protocol again), then log in (JSON-RPC, refreshing the cached
 * uid) or call res.users.context_get (JSON-2). For the scheduler to test an
 * open circuit. The outcome is done with result
 * {"major": N, "protocol": "jsonrpc"|"json2", "version": <server's answer>,
 * "uid": N (JSON-RPC only)}, or the failure. Returns as relay_odoo_call.
 */
int relay_odoo_probe(struct relay_odoo *o, relay_odoo_cb cb, void *arg);

/* relay_odoo_in_flight - calls and probes accepted whose callback has not
 * run yet (including those waiting for the version or a login). Cannot
 * fail. Loop thread only. */
unsigned relay_odoo_in_flight(const struct relay_odoo *o);

/* relay_odoo_protocol - the protocol in use: the configured one, or for
 * "auto" the one chosen, RELAY_PROTO_AUTO until the server has told. Cannot
 * fail. Loop thread only. */
enum relay_odoo_protocol relay_odoo_protocol(const struct relay_odoo *o);

/* relay_odoo_protocol_name - "jsonrpc", "json2", or "auto" (also for any
 * other value). Static; never NULL. Thread-safe. */
const char *relay_odoo_protocol_name(int protocol);

/* relay_odoo_parse_major - Odoo's major version from a version answer: an
 * object with "server_version_info" or "version_info" (first element a
 * number, or a string such as "saas~18"), else "server_version" or
 * "version" ("18.0", "saas~18.3+e"). Returns the major version, or 0 if
 * none is found. Pure. */
int relay_odoo_parse_major(const json_t *version);

#endif
