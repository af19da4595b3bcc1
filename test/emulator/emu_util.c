/*
 * odoo-emulator: exceptions, Python-flavoured formatting and argument
 * binding. Odoo's error messages are Python's (repr() of values, the
 * TypeError of a call that does not bind), so the emulator speaks Python
 * here to give clients the texts they will meet in production.
 */
#include "emu.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static void die_oom(void)
{
	fputs("odoo-emulator: out of memory\n", stderr);
	abort();
}

char *emu_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		die_oom();
	va_end(ap);
	return s;
}

char *emu_strdup(const char *s)
{
	char *d = strdup(s ? s : "");

	if (!d)
		die_oom();
	return d;
}

void emu_error_clear(struct emu *e)
{
	free(e->err.name);
	free(e->err.message);
	json_decref(e->err.arguments);
	memset(&e->err, 0, sizeof(e->err));
}

static int raise_va(struct emu *e, int status, const char *name,
		    const char *fmt, va_list ap)
{
	char *msg;

	emu_error_clear(e);
	if (vasprintf(&msg, fmt, ap) < 0)
		die_oom();
	e->err.name = emu_strdup(name);
	e->err.message = msg;
	e->err.status = status;
	return -1;
}

int emu_raise(struct emu *e, const char *name, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	raise_va(e, 0, name, fmt, ap);
	va_end(ap);
	return -1;
}

int emu_raise_status(struct emu *e, int status, const char *name,
		     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	raise_va(e, status, name, fmt, ap);
	va_end(ap);
	return -1;
}

static bool ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), m = strlen(tail);

	return n >= m && strcmp(s + n - m, tail) == 0;
}

/* The statuses of Odoo 19's JSON-2 dispatcher (UserError.http_status). */
int emu_error_status(const struct emu *e)
{
	const char *n = e->err.name ? e->err.name : "";

	if (e->err.status)
		return e->err.status;
	if (ends_with(n, ".AccessError") || ends_with(n, ".AccessDenied"))
		return 403;
	if (ends_with(n, ".MissingError") || ends_with(n, ".NotFound"))
		return 404;
	if (ends_with(n, ".LockError"))
		return 409;
	if (ends_with(n, ".UserError") || ends_with(n, ".ValidationError") ||
	    ends_with(n, ".RedirectWarning") ||
	    ends_with(n, ".UnprocessableEntity"))
		return 422;
	if (ends_with(n, ".Unauthorized"))
		return 401;
	if (ends_with(n, ".BadRequest"))
		return 400;
	return 500;
}

/*
 * A short traceback in the shape of Odoo's: clients must only ever log it,
 * so its content is not Odoo's, but its first and last lines are.
 */
static char *make_debug(const char *name, const char *message)
{
	const char *shown = name;

	if (strncmp(name, "builtins.", 9) == 0)
		shown = name + 9;
	return emu_printf(
		"Traceback (most recent call last):\n"
		"  File \"/opt/odoo/odoo/http.py\", line 1954, in _transactioning\n"
		"    return service_model.retrying(func, env=self.env)\n"
		"  File \"odoo-emulator\", line 1, in emulated_call\n"
		"    raise %s\n"
		"%s%s%s\n",
		shown, shown, *message ? ": " : "", message);
}

json_t *emu_error_data(const struct emu *e)
{
	const char *name = e->err.name ? e->err.name : "builtins.Exception";
	const char *msg = e->err.message ? e->err.message : "";
	char *debug = make_debug(name, msg);
	json_t *args = e->err.arguments ? json_incref(e->err.arguments)
					: json_pack("[s]", msg);
	json_t *d = json_pack("{s:s, s:s, s:s, s:o, s:{}}", "name", name,
			      "debug", debug, "message", msg, "arguments",
			      args, "context");

	free(debug);
	return d;
}

const char *emu_pytype(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING: return "str";
	case JSON_INTEGER: return "int";
	case JSON_REAL: return "float";
	case JSON_TRUE:
	case JSON_FALSE: return "bool";
	case JSON_ARRAY: return "list";
	case JSON_OBJECT: return "dict";
	default: return "NoneType";
	}
}

bool emu_truthy(const json_t *v)
{
	if (!v)
		return false;
	switch (json_typeof(v)) {
	case JSON_STRING: return json_string_length(v) > 0;
	case JSON_INTEGER: return json_integer_value(v) != 0;
	case JSON_REAL: return json_real_value(v) != 0.0;
	case JSON_TRUE: return true;
	case JSON_ARRAY: return json_array_size(v) > 0;
	case JSON_OBJECT: return json_object_size(v) > 0;
	default: return false;
	}
}

/* Appends to a growing string; the emulator's only string builder. */
struct sbuf {
	char *s;
	size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;

		while (cap < b->len + n + 1)
			cap *= 2;
		b->s = realloc(b->s, cap);
		if (!b->s)
			die_oom();
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void repr_string(struct sbuf *b, const char *s, size_t n)
{
	char q = '\'';

	if (memchr(s, '\'', n) && !memchr(s, '"', n))
		q = '"';
	sb_add(b, &q, 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[8];

		if (c == '\\' || c == (unsigned char)q) {
			esc[0] = '\\';
			esc[1] = (char)c;
			sb_add(b, esc, 2);
		} else if (c == '\n') {
			sb_str(b, "\\n");
		} else if (c == '\r') {
			sb_str(b, "\\r");
		} else if (c == '\t') {
			sb_str(b, "\\t");
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", c);
			sb_str(b, esc);
		} else {
			sb_add(b, (const char *)&c, 1);
		}
	}
	sb_add(b, &q, 1);
}

/* Python prints the shortest text that reads back as the same double. */
static void repr_real(struct sbuf *b, double d)
{
	char buf[40];

	if (isnan(d)) {
		sb_str(b, "nan");
		return;
	}
	if (isinf(d)) {
		sb_str(b, d < 0 ? "-inf" : "inf");
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	sb_str(b, buf);
	if (!strpbrk(buf, ".en"))
		sb_str(b, ".0");
}

static void repr_into(struct sbuf *b, const json_t *v)
{
	char buf[32];
	size_t i;
	const char *key;
	json_t *item;
	bool first = true;

	switch (json_typeof(v)) {
	case JSON_STRING:
		repr_string(b, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
		sb_str(b, buf);
		break;
	case JSON_REAL:
		repr_real(b, json_real_value(v));
		break;
	case JSON_TRUE: sb_str(b, "True"); break;
	case JSON_FALSE: sb_str(b, "False"); break;
	case JSON_NULL: sb_str(b, "None"); break;
	case JSON_ARRAY:
		sb_str(b, "[");
		json_array_foreach(v, i, item) {
			if (i)
				sb_str(b, ", ");
			repr_into(b, item);
		}
		sb_str(b, "]");
		break;
	case JSON_OBJECT:
		sb_str(b, "{");
		json_object_foreach((json_t *)v, key, item) {
			if (!first)
				sb_str(b, ", ");
			first = false;
			repr_string(b, key, strlen(key));
			sb_str(b, ": ");
			repr_into(b, item);
		}
		sb_str(b, "}");
		break;
	}
}

char *emu_repr(const json_t *v)
{
	struct sbuf b = {0};

	if (!v)
		sb_str(&b, "None");
	else
		repr_into(&b, v);
	return b.s;
}

char *emu_name_list(const char *const *names, int n)
{
	struct sbuf b = {0};

	sb_str(&b, "");
	for (int i = 0; i < n; i++) {
		if (i && n == 2)
			sb_str(&b, " and ");
		else if (i && i == n - 1)
			sb_str(&b, ", and ");
		else if (i)
			sb_str(&b, ", ");
		sb_str(&b, "'");
		sb_str(&b, names[i]);
		sb_str(&b, "'");
	}
	return b.s;
}

void emu_random_hex(char *out, size_t nhex)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char raw[64];
	size_t nraw = (nhex + 1) / 2;

	if (nraw > sizeof(raw))
		nraw = sizeof(raw);
	if (getrandom(raw, nraw, 0) != (ssize_t)nraw) {
		/* a test secret: predictable is acceptable, absent is not */
		for (size_t i = 0; i < nraw; i++)
			raw[i] = (unsigned char)rand();
	}
	for (size_t i = 0; i < nhex && i / 2 < nraw; i++)
		out[i] = digits[(raw[i / 2] >> ((i % 2) ? 0 : 4)) & 0xf];
	out[nhex] = '\0';
}

void emu_now(char out[20])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 20, "%Y-%m-%d %H:%M:%S", &tm);
}

int emu_py_iter(struct emu *e, const json_t *v, const char *callee,
		json_t **out)
{
	json_t *arr;
	const char *s, *key;
	size_t n;
	json_t *item;

	switch (json_typeof(v)) {
	case JSON_ARRAY:
		*out = json_copy((json_t *)v);
		return 0;
	case JSON_STRING:
		arr = json_array();
		s = json_string_value(v);
		n = json_string_length(v);
		for (size_t i = 0; i < n;) {
			size_t k = 1;

			/* one Python character is one UTF-8 sequence */
			while (i + k < n && ((unsigned char)s[i + k] & 0xc0) == 0x80)
				k++;
			json_array_append_new(arr, json_stringn(s + i, k));
			i += k;
		}
		*out = arr;
		return 0;
	case JSON_OBJECT:
		arr = json_array();
		json_object_foreach((json_t *)v, key, item)
			json_array_append_new(arr, json_string(key));
		*out = arr;
		return 0;
	default:
		*out = NULL;
		return emu_raise(e, "builtins.TypeError",
				 "%s argument after * must be an iterable, not %s",
				 callee, emu_pytype(v));
	}
}

static int param_index(const struct emu_sig *sig, const char *name)
{
	for (int i = 0; sig->params[i]; i++)
		if (strcmp(sig->params[i], name) == 0)
			return i;
	return -1;
}

/* inspect.Signature.bind(): keywords only, and its own messages. */
static int bind_json2(struct emu *e, const struct emu_sig *sig,
		      json_t *kwargs, json_t **out)
{
	const char *key;
	json_t *v;
	char *msg;

	json_object_foreach(kwargs, key, v) {
		int i = param_index(sig, key);

		if (i < 0) {
			if (sig->varkw)
				continue;
			msg = emu_printf("got an unexpected keyword argument '%s'", key);
			goto unbound;
		}
		out[i] = v;
	}
	for (int i = 0; i < sig->required; i++) {
		if (!out[i]) {
			msg = emu_printf("missing a required argument: '%s'",
					 sig->params[i]);
			goto unbound;
		}
	}
	return 0;
unbound:
	emu_raise_status(e, 422, "werkzeug.exceptions.UnprocessableEntity",
			 "%s", msg);
	e->err.arguments = json_pack("[s, i]", msg, 422);
	free(msg);
	return -1;
}

int emu_bind(struct emu *e, const char *qualname, const struct emu_sig *sig,
	     json_t *args, json_t *kwargs, bool json2, json_t **out)
{
	int nparams = 0, nargs = args ? (int)json_array_size(args) : 0;
	const char *missing[EMU_MAX_PARAMS];
	int nmissing = 0;
	const char *key;
	json_t *v;

	while (sig->params[nparams])
		nparams++;
	for (int i = 0; i <= EMU_MAX_PARAMS; i++)
		out[i] = NULL;
	if (kwargs && !json_is_object(kwargs))
		kwargs = NULL;
	if (json2)
		return bind_json2(e, sig, kwargs, out);
	for (int i = 0; i < nargs && i < nparams; i++)
		out[i] = json_array_get(args, (size_t)i);
	if (kwargs) {
		json_object_foreach(kwargs, key, v) {
			int i = param_index(sig, key);

			if (i < 0) {
				if (sig->varkw)
					continue;
				return emu_raise(e, "builtins.TypeError",
						 "%s() got an unexpected keyword argument '%s'",
						 qualname, key);
			}
			if (i < nargs)
				return emu_raise(e, "builtins.TypeError",
						 "%s() got multiple values for argument '%s'",
						 qualname, key);
			out[i] = v;
		}
	}
	if (nargs > nparams) {
		if (sig->required == nparams)
			return emu_raise(e, "builtins.TypeError",
					 "%s() takes %d positional argument%s but %d were given",
					 qualname, nparams + 1, nparams ? "s" : "",
					 nargs + 1);
		return emu_raise(e, "builtins.TypeError",
				 "%s() takes from %d to %d positional arguments but %d were given",
				 qualname, sig->required + 1, nparams + 1, nargs + 1);
	}
	for (int i = 0; i < sig->required; i++)
		if (!out[i])
			missing[nmissing++] = sig->params[i];
	if (nmissing) {
		char *names = emu_name_list(missing, nmissing);

		emu_raise(e, "builtins.TypeError",
			  "%s() missing %d required positional argument%s: %s",
			  qualname, nmissing, nmissing > 1 ? "s" : "", names);
		free(names);
		return -1;
	}
	return 0;
}
