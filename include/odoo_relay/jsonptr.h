/*
 * odoo-relay: RFC 6901 JSON pointers on jansson trees, and the text of a
 * JSON scalar as used for keys (dedup key, topic, lane).
 *
 * A pointer is "" (the whole document) or a sequence of "/token"; in a
 * token "~1" stands for '/' and "~0" for '~', and any other '~' makes the
 * pointer invalid. On an array a token must be a decimal index without
 * leading zeros ("0", "17"); "-" (one past the end) never names a value.
 *
 * Pure and thread-safe on distinct trees (jansson trees are not locked:
 * concurrent readers of one tree are fine as long as nobody changes it).
 */
#ifndef ODOO_RELAY_JSONPTR_H
#define ODOO_RELAY_JSONPTR_H

#include <stddef.h>

#include <jansson.h>

/*
 * relay_jsonptr_valid - 1 if ptr is a syntactically valid pointer, else 0
 * (also for NULL). Validity does not depend on any document.
 */
int relay_jsonptr_valid(const char *ptr);

/*
 * relay_jsonptr_get - the value ptr names in root, or NULL when ptr is
 * invalid, root or ptr is NULL, or the value is absent (a missing key, an
 * index out of range or malformed, "-", or a token applied to a scalar).
 * The result is borrowed: it lives as long as root holds it; json_incref it
 * to keep it longer. Allocates only for tokens longer than 255 bytes that
 * contain escapes (NULL then also on allocation failure).
 */
json_t *relay_jsonptr_get(json_t *root, const char *ptr);

/*
 * relay_json_scalar_text - the text of scalar v into buf (size n),
 * NUL-terminated: a string as it is (its UTF-8 bytes), an integer in
 * decimal, true and false as "true" and "false". A real (a number written
 * with a fraction or an exponent) that is a whole number below 2^53 in
 * magnitude is written as that integer, so 1, 1.0, 1e0 and 10e-1 all give
 * "1" and -0.0 gives "0": one number, one text, however the sender spelled
 * it. Any other real is the shortest "%.{1..17}g" form that reads back as
 * the same double ("0.1", "1.5", "1e+300"). Above 2^53 a double may stand
 * for several integers the sender could have meant, so it keeps that form:
 * 1e18 gives "1e+18", not the integer 1000000000000000000's text; when the
 * form has no exponent it is the exact value, so it never spells another
 * integer. Two number texts that read as the same double (0.1 and
 * 0.1000000000000000001) give the same text.
 * Returns 0; -RELAY_EINVAL for NULL, an object, an array, JSON null, or a
 * string that holds a NUL byte (it could not be a C string); or
 * -RELAY_ETOOBIG when the text and its NUL do not fit in n (buf is then ""
 * if n > 0). Thread-safe.
 */
int relay_json_scalar_text(const json_t *v, char *buf, size_t n);

#endif
