/*
 * odoo-relay: cutting text to a size without cutting a character.
 *
 * Texts that end up in JSON (states, statuses, answers) are cut to fixed
 * buffers here and there. A cut in the middle of a multi-byte UTF-8
 * character leaves invalid UTF-8, which jansson refuses as a string: the
 * whole state or answer that carries the text is then lost. These functions
 * cut before the character instead.
 *
 * Pure: no allocation, no global state; thread-safe on distinct buffers.
 * They only look at the bytes around the cut (a lead byte and its
 * continuation bytes): text that was invalid before stays invalid.
 */
#ifndef ODOO_RELAY_UTF8_H
#define ODOO_RELAY_UTF8_H

#include <stdarg.h>
#include <stddef.h>

/*
 * relay_utf8_prefix - the length of the longest prefix of s (len bytes, s
 * need not be NUL-terminated) of at most max bytes that does not end inside
 * a character: len when len <= max, else max backed off over the
 * continuation bytes at s[max]. s must be readable for len bytes.
 */
size_t relay_utf8_prefix(const char *s, size_t len, size_t max);

/*
 * relay_utf8_snprintf - snprintf(buf, size, fmt, ...), and when the text was
 * cut (it did not fit), the cut is moved back to a character boundary so buf
 * holds valid UTF-8 if the full text was. buf is always NUL-terminated when
 * size > 0. Returns the length of what is in buf, or a negative value when
 * formatting failed (buf is then "" if size > 0).
 */
int relay_utf8_snprintf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * relay_utf8_trim - for a NUL-terminated buf that may have been cut at its
 * end (by snprintf or a copy), drop a trailing incomplete character.
 * Returns the new length. A complete character at the end is kept.
 */
size_t relay_utf8_trim(char *buf);

#endif
