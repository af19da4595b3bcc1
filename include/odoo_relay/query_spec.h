/*
 * odoo-relay: the pure part of declared queries (GET /query/<name>).
 *
 * A query's domain is an Odoo domain written in the configuration, in
 * Polish notation: "&", "|" and "!" and leaves [field, operator, value].
 * A leaf's value may be {"param": "<name>"}: the value of that parameter
 * of the request, after it was checked against its declaration. That is
 * the only place a parameter ever goes: a request can choose values, never
 * a field, an operator or a piece of the domain. Fields are names of
 * [a-z_][a-z0-9_]* parts joined by "."; operators come from a fixed list;
 * the notation is checked for its arity.
 *
 * A request's query string ("sku=AB-1&warehouse=2") binds the parameters:
 * every name must be declared and appear once; every value is
 * percent-decoded ("+" is a space), must be UTF-8 without control
 * characters, within its length, of its type, within its range and match
 * its pattern. Absent parameters take their default or are refused when
 * required. The result is the domain to send and the cache key: the
 * parameters in declaration order, each as its canonical JSON value, so
 * that "qty=07" and "qty=7", or an absent parameter and its default, share
 * one cache entry.
 *
 * Nothing here does I/O. Pure; any thread (a query conf is immutable).
 */
#ifndef ODOO_RELAY_QUERY_SPEC_H
#define ODOO_RELAY_QUERY_SPEC_H

#include <stddef.h>

#include <jansson.h>

#include "odoo_relay/config.h"

/* The longest query string a request may carry. */
#define RELAY_QUERY_STRING_MAX 8192

/* relay_query_field_ok - a field name or dotted path ("partner_id.name"):
 * parts of [a-z_][a-z0-9_]*, at most 256 bytes. 1 or 0. */
int relay_query_field_ok(const char *name);

/* relay_query_param_name_ok - a parameter name: [A-Za-z_][A-Za-z0-9_]*, at
 * most 64 bytes. 1 or 0. */
int relay_query_param_name_ok(const char *name);

/* relay_query_order_problem - why order is not an Odoo order ("field [asc|desc]"
 * parts separated by commas), or NULL when it is. Static text. */
const char *relay_query_order_problem(const char *order);

/*
 * relay_query_domain_problem - why domain is not a valid domain template
 * whose parameters are among params (n of them), or NULL when it is. *at (if
 * at is not NULL) is set to the offending node (domain itself when the
 * problem is the whole). The text goes into buf (n_buf bytes) and is
 * returned; it quotes configured names only through relay_schema_quote.
 */
const char *relay_query_domain_problem(const json_t *domain, const struct relay_qparam_conf *params,
                                       size_t n, const json_t **at, char *buf, size_t n_buf);

/*
 * relay_qparam_compile - compile p->pattern (when set) into p->regex,
 * anchored at both ends, POSIX extended syntax. Returns 0, -RELAY_EINVAL
 * with the reason in buf (n bytes), or ENOMEM. relay_qparam_release frees
 * the compiled pattern (NULL-safe, idempotent).
 */
int relay_qparam_compile(struct relay_qparam_conf *p, char *buf, size_t n);
void relay_qparam_release(struct relay_qparam_conf *p);

/*
 * relay_qparam_value - check the len bytes at text (already decoded) against
 * p. Returns 0 with *out a new JSON value of p's type (caller owns it), or
 * -RELAY_EINVAL with *why a static text ("too long", "does not match the
 * pattern", ...), or ENOMEM.
 */
int relay_qparam_value(const struct relay_qparam_conf *p, const char *text, size_t len,
                       json_t **out, const char **why);

/* A request's parameters bound into q. */
struct relay_query_bound {
	json_t *domain;  /* the domain to send, a new value */
	char *key;       /* the cache key, NUL-terminated */
	size_t key_len;
};

/*
 * relay_query_bind - bind the query string qs (NULL or "" for none; as sent,
 * percent-encoded) into q's domain. Returns 0 with *out filled (free with
 * relay_query_bound_clear), -RELAY_EINVAL with why (n bytes, always
 * NUL-terminated) saying which parameter and what is wrong (names and
 * values of the request are quoted and cut, never echoed raw), or ENOMEM.
 * On error *out is zeroed.
 */
int relay_query_bind(const struct relay_query_conf *q, const char *qs,
                     struct relay_query_bound *out, char *why, size_t n);

/* relay_query_bound_clear - free what b holds and zero it; NULL-safe. */
void relay_query_bound_clear(struct relay_query_bound *b);

#endif
