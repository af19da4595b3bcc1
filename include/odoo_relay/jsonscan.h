/*
 * odoo-relay: reading a JSON body without building it. A webhook source
 * needs two or three scalars of a body it must also check is JSON; jansson
 * builds the whole tree for that (an allocation per value: most of the
 * request's cost at high rates). These functions validate the text and find
 * a pointer's value in place, for the documents they are sure about, and
 * say "not sure" for everything else, so that the caller falls back to
 * jansson, whose verdict and error text then stand. They never accept a
 * text jansson's json_loadb(JSON_DECODE_ANY) refuses.
 *
 * Not sure (the caller falls back): anything jansson refuses, plus escapes
 * of U+0000 or of surrogates (\u0000, \ud83d...), integers of more than 18
 * characters, reals that could overflow a double, nesting deeper than
 * RELAY_JSONSCAN_MAX_DEPTH, and, for a lookup, an object on the pointer's
 * path with an escape in one of its keys, or a token over 255 bytes.
 *
 * Pure and thread-safe (no state).
 */
#ifndef ODOO_RELAY_JSONSCAN_H
#define ODOO_RELAY_JSONSCAN_H

#include <stddef.h>

#include <jansson.h>

#define RELAY_JSONSCAN_MAX_DEPTH 64

/*
 * relay_jsonscan_valid - 1 when s (n bytes) is surely one JSON value
 * (between optional whitespace) that jansson accepts, else 0: not JSON, or
 * not sure. s may be NULL when n is 0.
 */
int relay_jsonscan_valid(const unsigned char *s, size_t n);

/*
 * relay_jsonscan_get - on a text relay_jsonscan_valid accepted, the value
 * the JSON pointer ptr (jsonptr.h syntax) names, with relay_jsonptr_get's
 * rules (the last of duplicate keys; array tokens are decimal indexes
 * without leading zeros), as a new jansson value in *out (caller
 * json_decref's it): the scalar itself, or an empty object or array in
 * place of one; *out NULL when the value is absent.
 * Returns 1 (answered), 0 (not sure: *out NULL, use jansson), or -1 (out of
 * memory).
 */
int relay_jsonscan_get(const unsigned char *s, size_t n, const char *ptr, json_t **out);

#endif
