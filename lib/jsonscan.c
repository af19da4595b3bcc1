/* In-place JSON validation and pointer lookup: see include/odoo_relay/jsonscan.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "odoo_relay/jsonscan.h"

typedef const unsigned char *cur;

static void
skip_ws(cur *p, cur end)
{
	while (*p < end && (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r'))
		(*p)++;
}

static int
hex4(cur p, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		unsigned c = p[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return 0;
		*v = *v << 4 | d;
	}
	return 1;
}

static int
cont(cur p, cur end, size_t i)
{
	return p + i < end && (p[i] & 0xc0) == 0x80;
}

/* The length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0. */
static size_t
utf8_len(cur p, cur end)
{
	unsigned c = p[0];

	if (c >= 0xc2 && c <= 0xdf)
		return cont(p, end, 1) ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (!cont(p, end, 1) || !cont(p, end, 2))
			return 0;
		if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f))
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (!cont(p, end, 1) || !cont(p, end, 2) || !cont(p, end, 3))
			return 0;
		if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

/* 1 for the bytes a string holds as they are: printable ASCII but the
 * quote and the backslash. */
static const unsigned char plain[256] = {
#define P16(x) x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x
	P16(0), P16(0),                                 /* 0x00-0x1f: control */
	1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20-0x2f: '"' is 0x22 */
	P16(1), P16(1),                                 /* 0x30-0x4f */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x50-0x5f: '\\' is 0x5c */
	P16(1), P16(1),                                 /* 0x60-0x7f */
	P16(0), P16(0), P16(0), P16(0), P16(0), P16(0), P16(0), P16(0), /* UTF-8: checked */
#undef P16
};

/* A string at *p (its opening quote); past it on success. *esc: it holds
 * a backslash escape. */
static int
scan_string(cur *pp, cur end, int *esc)
{
	cur p = *pp + 1;

	*esc = 0;
	while (p < end) {
		unsigned c;
		size_t n;

		/* the common bytes first, without a branch each */
		while (p < end && plain[*p])
			p++;
		if (p >= end)
			break;
		c = *p;

		if (c == '"') {
			*pp = p + 1;
			return 1;
		}
		if (c < 0x20)
			return 0;
		if (c == '\\') {
			unsigned v;

			*esc = 1;
			if (++p >= end)
				return 0;
			switch (*p) {
			case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
				p++;
				break;
			case 'u':
				/* U+0000 and surrogates (paired or not) are jansson's call */
				if (end - p < 5 || !hex4(p + 1, &v) || v == 0 || (v >= 0xd800 && v <= 0xdfff))
					return 0;
				p += 5;
				break;
			default:
				return 0;
			}
			continue;
		}
		if (c < 0x80) {
			p++;
			continue;
		}
		if (!(n = utf8_len(p, end)))
			return 0;
		p += n;
	}
	return 0;
}

static int
digit(cur p, cur end)
{
	return p < end && *p >= '0' && *p <= '9';
}

/* A number at *p; *real: it has a fraction or an exponent. */
static int
scan_number(cur *pp, cur end, int *real)
{
	cur p = *pp, start = *pp, int_start;
	long exp = 0;
	int neg_exp = 0;

	*real = 0;
	if (*p == '-')
		p++;
	int_start = p;
	if (!digit(p, end))
		return 0;
	if (*p == '0') {
		p++;
		if (digit(p, end))
			return 0;
	} else {
		while (digit(p, end))
			p++;
	}
	size_t int_digits = (size_t)(p - int_start);
	if (p < end && *p == '.') {
		*real = 1;
		p++;
		if (!digit(p, end))
			return 0;
		while (digit(p, end))
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		*real = 1;
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			neg_exp = *p++ == '-';
		if (!digit(p, end))
			return 0;
		while (digit(p, end)) {
			exp = exp * 10 + (*p++ - '0');
			if (exp > 1000)
				return 0; /* an overflow or an underflow: jansson's call */
		}
	}
	/* An integer jansson's strtoll could not hold, a real strtod could
	 * overflow on: not sure. */
	if (!*real && p - start > 18)
		return 0;
	if (*real && (int_digits > 300 || (!neg_exp && (long)int_digits + exp > 300)))
		return 0;
	*pp = p;
	return 1;
}

static int
scan_literal(cur *pp, cur end, const char *lit, size_t n)
{
	if ((size_t)(end - *pp) < n || memcmp(*pp, lit, n) != 0)
		return 0;
	*pp += n;
	return 1;
}

/* One value at *p (no leading whitespace); past it on success. */
static int
scan_value(cur *pp, cur end, int depth)
{
	cur p = *pp;
	int esc, real;

	if (p >= end)
		return 0;
	switch (*p) {
	case '{':
	case '[': {
		unsigned char close = *p == '{' ? '}' : ']';

		if (depth >= RELAY_JSONSCAN_MAX_DEPTH)
			return 0;
		p++;
		skip_ws(&p, end);
		if (p < end && *p == close) {
			p++;
			break;
		}
		for (;;) {
			if (close == '}') {
				if (p >= end || *p != '"' || !scan_string(&p, end, &esc))
					return 0;
				skip_ws(&p, end);
				if (p >= end || *p != ':')
					return 0;
				p++;
				skip_ws(&p, end);
			}
			if (!scan_value(&p, end, depth + 1))
				return 0;
			skip_ws(&p, end);
			if (p >= end)
				return 0;
			if (*p == ',') {
				p++;
				skip_ws(&p, end);
				continue;
			}
			if (*p != close)
				return 0;
			p++;
			break;
		}
		break;
	}
	case '"':
		if (!scan_string(&p, end, &esc))
			return 0;
		break;
	case 't':
		if (!scan_literal(&p, end, "true", 4))
			return 0;
		break;
	case 'f':
		if (!scan_literal(&p, end, "false", 5))
			return 0;
		break;
	case 'n':
		if (!scan_literal(&p, end, "null", 4))
			return 0;
		break;
	default:
		if (*p != '-' && !(*p >= '0' && *p <= '9'))
			return 0;
		if (!scan_number(&p, end, &real))
			return 0;
		break;
	}
	*pp = p;
	return 1;
}

int
relay_jsonscan_valid(const unsigned char *s, size_t n)
{
	cur p = s, end = s + n;

	if (!s)
		return 0;
	skip_ws(&p, end);
	if (!scan_value(&p, end, 0))
		return 0;
	skip_ws(&p, end);
	return p == end;
}

/* Skips one value of a text already validated: strings by memchr, not
 * byte by byte. */
static void
skip_value(cur *pp, cur end)
{
	cur p = *pp;
	int nest = 0;

	do {
		switch (*p) {
		case '"':
			for (p++;; p++) {
				p = memchr(p, '"', (size_t)(end - p));
				/* escaped when an odd number of backslashes precede it */
				size_t bs = 0;
				while (p[-1 - (long)bs] == '\\')
					bs++;
				if (!(bs & 1))
					break;
			}
			p++;
			break;
		case '{':
		case '[':
			nest++;
			p++;
			break;
		case '}':
		case ']':
			nest--;
			p++;
			break;
		default:
			/* a number, a literal, or the white space, commas and colons
			 * between the members of what we are in */
			p++;
			while (p < end && *p != '"' && *p != '{' && *p != '[' && *p != '}' && *p != ']' &&
			       (nest || (*p != ',' && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')))
				p++;
			break;
		}
	} while (nest);
	*pp = p;
}

/* The next pointer token after *ptr (at a '/'), unescaped into tok.
 * Returns its length, or -1 (invalid, or too long: not sure). */
static long
next_token(const char **ptr, char *tok, size_t cap)
{
	const char *p = *ptr + 1;
	size_t n = 0;

	for (; *p && *p != '/'; p++) {
		char c = *p;

		if (c == '~') {
			if (p[1] == '0')
				c = '~';
			else if (p[1] == '1')
				c = '/';
			else
				return -1;
			p++;
		}
		if (n == cap)
			return -1;
		tok[n++] = c;
	}
	*ptr = p;
	return (long)n;
}

/* Array index token: "0" or digits without a leading zero, below 10^9. */
static long
index_of(const char *tok, long n)
{
	long v = 0;

	if (n < 1 || n > 9 || (tok[0] == '0' && n > 1))
		return -1;
	for (long i = 0; i < n; i++) {
		if (tok[i] < '0' || tok[i] > '9')
			return -1;
		v = v * 10 + (tok[i] - '0');
	}
	return v;
}

/* The string at p (valid, opening quote) unescaped, as a jansson string. */
static json_t *
string_value(cur p, cur end)
{
	cur q = p + 1;
	char *buf, *o;
	json_t *v;
	int esc;

	if (!scan_string(&p, end, &esc))
		return NULL;
	/* p is past the closing quote; the text is [q, p - 1) */
	if (!(buf = malloc((size_t)(p - q) + 1)))
		return NULL;
	for (o = buf; q < p - 1; q++) {
		unsigned u;

		if (*q != '\\') {
			*o++ = (char)*q;
			continue;
		}
		switch (*++q) {
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u':
			hex4(q + 1, &u); /* checked by scan_string: 1..0xffff, no surrogate */
			q += 4;
			if (u < 0x80) {
				*o++ = (char)u;
			} else if (u < 0x800) {
				*o++ = (char)(0xc0 | u >> 6);
				*o++ = (char)(0x80 | (u & 0x3f));
			} else {
				*o++ = (char)(0xe0 | u >> 12);
				*o++ = (char)(0x80 | (u >> 6 & 0x3f));
				*o++ = (char)(0x80 | (u & 0x3f));
			}
			break;
		default: *o++ = (char)*q; break; /* " \ / */
		}
	}
	v = json_stringn_nocheck(buf, (size_t)(o - buf));
	free(buf);
	return v;
}

/* Longer number texts are left to jansson (never in a webhook's ids). */
#define NUMBER_MAX 64

/* The number [p, q) as jansson reads it: strtoll for an integer, strtod
 * for a real. */
static json_t *
number_value(cur p, cur q, int real)
{
	char buf[NUMBER_MAX];

	memcpy(buf, p, (size_t)(q - p));
	buf[q - p] = '\0';
	return real ? json_real(strtod(buf, NULL)) : json_integer(strtoll(buf, NULL, 10));
}

int
relay_jsonscan_get(const unsigned char *s, size_t n, const char *ptr, json_t **out)
{
	cur p = s, end = s + n;
	char tok[256];

	*out = NULL;
	if (!s || !ptr || (*ptr && *ptr != '/'))
		return 0;
	skip_ws(&p, end);
	while (*ptr) {
		long tn = next_token(&ptr, tok, sizeof(tok));
		cur found = NULL;
		int esc;

		if (tn < 0)
			return 0;
		if (*p == '{') {
			p++;
			skip_ws(&p, end);
			while (*p != '}') {
				cur key = p;

				if (!scan_string(&p, end, &esc) || esc)
					return 0; /* an escaped key: jansson compares them */
				/* the last of duplicate keys wins, as in jansson */
				int match = p - key - 2 == tn && memcmp(key + 1, tok, (size_t)tn) == 0;
				skip_ws(&p, end);
				p++; /* ':' */
				skip_ws(&p, end);
				if (match)
					found = p;
				skip_value(&p, end);
				skip_ws(&p, end);
				if (*p == ',') {
					p++;
					skip_ws(&p, end);
				}
			}
		} else if (*p == '[') {
			long want = index_of(tok, tn), i = 0;

			p++;
			skip_ws(&p, end);
			while (*p != ']' && want >= 0) {
				if (i++ == want) {
					found = p;
					break;
				}
				skip_value(&p, end);
				skip_ws(&p, end);
				if (*p == ',') {
					p++;
					skip_ws(&p, end);
				}
			}
		}
		if (!found)
			return 1; /* absent: a missing key or index, or a token on a scalar */
		p = found;
	}
	switch (*p) {
	case '{': *out = json_object(); break;
	case '[': *out = json_array(); break;
	case '"': *out = string_value(p, end); break;
	case 't': *out = json_true(); break;
	case 'f': *out = json_false(); break;
	case 'n': *out = json_null(); break;
	default: {
		cur q = p;
		int real;

		if (!scan_number(&q, end, &real) || q - p >= NUMBER_MAX)
			return 0; /* a number this long is jansson's to read */
		*out = number_value(p, q, real);
		break;
	}
	}
	return *out ? 1 : -1;
}
