/*
 * odoo-relay: the big-endian primitives that the two stored-record codecs,
 * record.c (the event record) and hist_record.c (history, audit, edits),
 * share: both formats write integers big-endian and a byte field as a 4-byte
 * length then the bytes, 0xffffffff standing for NULL. Private to those two
 * files; their contracts are include/odoo_relay/record.h and hist_record.h.
 *
 * Header-only (static inline) and free of I/O, so that the pure modules
 * including it stay pure. The reader is written for hostile input: every
 * length is checked against what is left before anything is allocated or
 * copied.
 */
#ifndef RELAY_WIRE_INT_H
#define RELAY_WIRE_INT_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "odoo_relay/error.h"

/* The length that marks a NULL field; no field can be that long. */
#define RELAY_WIRE_NULL 0xffffffffu

/* Writes the n (1 to 8) low bytes of v at p, most significant first. */
static inline void
relay_wire_put_be(unsigned char *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
}

/* What is left to decode. */
struct relay_wire_in {
	const unsigned char *p;
	size_t left;
};

/* Reads an n-byte (1 to 8) big-endian integer into *v: 0, or
 * -RELAY_ECORRUPT when fewer than n bytes are left (*v is then untouched). */
static inline int
relay_wire_be(struct relay_wire_in *in, size_t n, uint64_t *v)
{
	uint64_t x = 0;

	if (in->left < n)
		return -RELAY_ECORRUPT;
	for (size_t i = 0; i < n; i++)
		x = (x << 8) | in->p[i];
	in->p += n;
	in->left -= n;
	*v = x;
	return 0;
}

/* An 8-byte two's-complement integer (0 when it is not there). */
static inline int
relay_wire_i64(struct relay_wire_in *in, int64_t *v)
{
	uint64_t x = 0;
	int rc = relay_wire_be(in, 8, &x);

	*v = (int64_t)x;
	return rc;
}

/* A length-prefixed field into a new NUL-terminated buffer that the caller
 * frees (*out NULL for the NULL marker); *outlen, when asked for, is its
 * length without the terminator. A text field (binary == 0) must not
 * contain a NUL, since a C string would silently lose whatever follows it.
 * 0, -RELAY_ECORRUPT (short or a NUL in text) or ENOMEM; *out is NULL on
 * error. */
static inline int
relay_wire_bytes(struct relay_wire_in *in, int binary, char **out, size_t *outlen)
{
	uint64_t len;
	char *s;
	int rc;

	*out = NULL;
	if (outlen)
		*outlen = 0;
	if ((rc = relay_wire_be(in, 4, &len)))
		return rc;
	if (len == RELAY_WIRE_NULL)
		return 0;
	if (len > in->left || (!binary && memchr(in->p, '\0', len)))
		return -RELAY_ECORRUPT;
	if (!(s = malloc(len + 1)))
		return ENOMEM;
	memcpy(s, in->p, len);
	s[len] = '\0';
	in->p += len;
	in->left -= len;
	*out = s;
	if (outlen)
		*outlen = len;
	return 0;
}

#endif
