/* RFC 6901 JSON pointers: see include/odoo_relay/jsonptr.h. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "odoo_relay/error.h"
#include "odoo_relay/jsonptr.h"

/* Tokens up to this long are unescaped on the stack. */
#define TOKEN_STACK 256

int
relay_jsonptr_valid(const char *ptr)
{
	const char *p;

	if (ptr == NULL)
		return 0;
	if (*ptr == '\0')
		return 1;
	if (*ptr != '/')
		return 0;
	for (p = ptr; *p; p++) {
		if (*p == '~' && p[1] != '0' && p[1] != '1')
			return 0;
	}
	return 1;
}

/* Unescape tok (n bytes, valid escapes) into out; returns the new length. */
static size_t
unescape(const char *tok, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		if (tok[i] == '~') {
			out[o++] = tok[i + 1] == '0' ? '~' : '/';
			i++;
		} else {
			out[o++] = tok[i];
		}
	}
	return o;
}

/* An array index: "0" or [1-9][0-9]*, below size. */
static json_t *
array_step(json_t *arr, const char *tok, size_t n)
{
	size_t size = json_array_size(arr), idx = 0, i;

	if (n == 0 || (n > 1 && tok[0] == '0'))
		return NULL;
	for (i = 0; i < n; i++) {
		if (tok[i] < '0' || tok[i] > '9')
			return NULL;
		/* Anything at or past size is absent; stop before overflow. */
		idx = idx * 10 + (size_t)(tok[i] - '0');
		if (idx >= size)
			return NULL;
	}
	return json_array_get(arr, idx);
}

static json_t *
object_step(json_t *obj, const char *tok, size_t n)
{
	char stackbuf[TOKEN_STACK], *buf = stackbuf;
	json_t *v;
	size_t len;

	if (memchr(tok, '~', n) == NULL)
		return json_object_getn(obj, tok, n);
	if (n > sizeof(stackbuf)) {
		buf = malloc(n);
		if (buf == NULL)
			return NULL;
	}
	len = unescape(tok, n, buf);
	v = json_object_getn(obj, buf, len);
	if (buf != stackbuf)
		free(buf);
	return v;
}

json_t *
relay_jsonptr_get(json_t *root, const char *ptr)
{
	const char *tok, *end;
	json_t *cur = root;

	if (root == NULL || !relay_jsonptr_valid(ptr))
		return NULL;
	tok = ptr;
	while (*tok == '/' && cur != NULL) {
		tok++;
		end = strchr(tok, '/');
		if (end == NULL)
			end = tok + strlen(tok);
		if (json_is_object(cur))
			cur = object_step(cur, tok, (size_t)(end - tok));
		else if (json_is_array(cur))
			cur = array_step(cur, tok, (size_t)(end - tok));
		else
			cur = NULL;
		tok = end;
	}
	return cur;
}

/*
 * Below this magnitude every integer is exactly a double, so an integral
 * real names exactly one integer and may be written as that integer.
 */
#define REAL_EXACT_INT 9007199254740992.0 /* 2^53 */

/*
 * The text of real d: an integral value below 2^53 in magnitude as the
 * integer ("1.0", "1e0" and "-0.0" read as 1, 1 and 0 give "1", "1", "0"),
 * so one number gives one key whichever way the sender wrote it; anything
 * else as the shortest %.Ng, N in 1..17, that strtod reads back as d. Those
 * other forms have a '.' or an exponent, or are above 2^53, so they never
 * spell a different integer.
 */
static int
real_text(double d, char *out, size_t n)
{
	char tmp[32];
	int prec, len = 0;

	if (d == 0) {
		len = snprintf(tmp, sizeof(tmp), "0");
	} else if (d > -REAL_EXACT_INT && d < REAL_EXACT_INT && (double)(int64_t)d == d) {
		len = snprintf(tmp, sizeof(tmp), "%" PRId64, (int64_t)d);
	} else {
		for (prec = 1; prec <= 17; prec++) {
			len = snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
			if (strtod(tmp, NULL) == d)
				break;
		}
	}
	if (len < 0 || (size_t)len >= n)
		return -RELAY_ETOOBIG;
	memcpy(out, tmp, (size_t)len + 1);
	return 0;
}

int
relay_json_scalar_text(const json_t *v, char *buf, size_t n)
{
	const char *s;
	size_t len;
	int rc;

	if (v == NULL)
		return -RELAY_EINVAL;
	switch (json_typeof(v)) {
	case JSON_STRING:
		s = json_string_value(v);
		len = json_string_length(v);
		if (memchr(s, '\0', len) != NULL)
			return -RELAY_EINVAL;
		if (len >= n) {
			rc = -RELAY_ETOOBIG;
			goto toobig;
		}
		memcpy(buf, s, len + 1);
		return 0;
	case JSON_INTEGER:
		rc = snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		if (rc < 0 || (size_t)rc >= n) {
			rc = -RELAY_ETOOBIG;
			goto toobig;
		}
		return 0;
	case JSON_REAL:
		rc = real_text(json_real_value(v), buf, n);
		if (rc != 0)
			goto toobig;
		return 0;
	case JSON_TRUE:
	case JSON_FALSE:
		s = json_is_true(v) ? "true" : "false";
		if (strlen(s) >= n) {
			rc = -RELAY_ETOOBIG;
			goto toobig;
		}
		memcpy(buf, s, strlen(s) + 1);
		return 0;
	case JSON_OBJECT:
	case JSON_ARRAY:
	case JSON_NULL:
		break;
	}
	return -RELAY_EINVAL;

toobig:
	if (n > 0)
		buf[0] = '\0';
	return rc;
}
