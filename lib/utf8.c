/* Cutting text at UTF-8 character boundaries (see utf8.h). */
#include "odoo_relay/utf8.h"

#include <stdio.h>
#include <string.h>

static int
is_cont(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

size_t
relay_utf8_prefix(const char *s, size_t len, size_t max)
{
	size_t n;

	if (len <= max)
		return len;
	n = max;
	/* s[n] is the first byte left out: while it continues a character,
	 * that character is cut, so the cut goes before its lead byte. */
	while (n > 0 && is_cont((unsigned char)s[n]))
		n--;
	return n;
}

size_t
relay_utf8_trim(char *buf)
{
	size_t len = strlen(buf), lead = len, need;
	unsigned char c;

	/* Back over at most three continuation bytes to the lead byte. */
	while (lead > 0 && len - lead < 4 && is_cont((unsigned char)buf[lead - 1]))
		lead--;
	if (lead == 0)
		return len;
	c = (unsigned char)buf[lead - 1];
	if (c < 0xc0)
		return len; /* ASCII or stray continuation bytes: not ours to judge */
	need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
	if (len - (lead - 1) < need) {
		buf[lead - 1] = '\0';
		return lead - 1;
	}
	return len;
}

int
relay_utf8_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0) {
		if (size)
			buf[0] = '\0';
		return n;
	}
	if ((size_t)n < size)
		return n;
	return size ? (int)relay_utf8_trim(buf) : 0;
}
