/* Outcome classification: see include/odoo_relay/classify.h for the rules. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "odoo_relay/classify.h"
#include "odoo_relay/error.h"
#include "odoo_relay/utf8.h"

/* The head of a trimmed traceback is capped so that its tail, which names
 * the exception, always fits. */
#define HEAD_MAX 512
/* How much of a non-JSON body (an HTML error page) goes into detail. */
#define SNIPPET_MAX 512
#define RETRY_AFTER_MAX_S INT64_C(1000000000)

/* What the rules decided, before the strings are copied into the outcome. */
struct verdict {
	enum relay_class klass;
	enum relay_scope scope;
	int unknown;
};

static const char *const transport_names[] = {
	[RELAY_TRANSPORT_OK] = "ok",
	[RELAY_TRANSPORT_CONNECT] = "connect",
	[RELAY_TRANSPORT_TIMEOUT] = "timeout",
	[RELAY_TRANSPORT_RESET] = "reset",
	[RELAY_TRANSPORT_TOO_BIG] = "too_big",
	[RELAY_TRANSPORT_CANCELLED] = "cancelled",
	[RELAY_TRANSPORT_ERROR] = "error",
};

const char *
relay_transport_name(int t)
{
	if (t < 0 || (size_t)t >= sizeof transport_names / sizeof transport_names[0])
		return "unknown";
	return transport_names[t];
}

const char *
relay_scope_name(int s)
{
	switch (s) {
	case RELAY_SCOPE_TARGET: return "target";
	case RELAY_SCOPE_ROUTE: return "route";
	default: return "none";
	}
}

/* The length of the longest prefix of s (len bytes) that is at most max
 * bytes and does not end inside a UTF-8 sequence. */
static size_t
utf8_prefix(const char *s, size_t len, size_t max)
{
	return relay_utf8_prefix(s, len, max);
}

/* The offset at which the longest suffix of s (len bytes) of at most max
 * bytes starts on a character boundary. */
static size_t
utf8_suffix(const char *s, size_t len, size_t max)
{
	size_t off;

	if (len <= max)
		return 0;
	off = len - max;
	while (off < len && ((unsigned char)s[off] & 0xc0) == 0x80)
		off++;
	return off;
}

static char *
dup_n(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* A copy of s cut to max - 1 bytes; NULL in gives NULL out (and *err
 * untouched), allocation failure sets *err. */
static char *
dup_capped(const char *s, size_t max, int *err)
{
	char *p;

	if (!s)
		return NULL;
	p = dup_n(s, utf8_prefix(s, strlen(s), max - 1));
	if (!p)
		*err = ENOMEM;
	return p;
}

/* A message for one line of a log or a status: dup_capped without the
 * trailing newlines and spaces that Odoo leaves on some texts (psycopg2's
 * "... does not exist\n"), which would otherwise show as a literal "\n". */
static char *
dup_message(const char *s, size_t max, int *err)
{
	char *p = dup_capped(s, max, err);
	size_t n = p ? strlen(p) : 0;

	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == ' ' ||
	                 p[n - 1] == '\t'))
		p[--n] = '\0';
	return p;
}

/* Case-insensitive strstr: the server's wording is lower case today, but a
 * capital must not turn a wrong database into an outage. */
static int
has_text(const char *s, const char *needle)
{
	size_t n = strlen(needle);

	for (; *s; s++)
		if (strncasecmp(s, needle, n) == 0)
			return 1;
	return 0;
}

/*
 * Whether an OperationalError says that the configured database cannot be
 * used at all: it does not exist, the database role may not connect to it,
 * or it takes no connections. Each is the operator's to fix, whatever the
 * database is called; the name is never part of the test, so a database
 * named like a phrase below changes nothing. A lost connection or a server
 * that is starting is Odoo's to recover and stays transient.
 */
static int
database_unusable(const char *message)
{
	const char *q = strstr(message, "database \"");
	const char *end;

	if (has_text(message, "permission denied for database") ||
	    has_text(message, "no pg_hba.conf entry") ||
	    has_text(message, "is not currently accepting connections"))
		return 1;
	/* database "<name>" does not exist: look after the quoted name. */
	if (!q)
		q = strstr(message, "Database \"");
	if (!q)
		return 0;
	end = strrchr(q + 10, '"');
	return end && has_text(end, "\" does not exist");
}

char *
relay_trim_traceback(const char *text, size_t len)
{
	const char *line_start[4] = { NULL, NULL, NULL, NULL }; /* last 3 line starts, ring */
	size_t nlines = 0, head_len, tail_off, tail_len, i, out_len;
	const char *tail;
	char *out;

	if (!text)
		return NULL;
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	for (i = 0; i < len; i++) {
		if (i == 0 || text[i - 1] == '\n') {
			line_start[nlines % 3] = text + i;
			nlines++;
		}
	}
	if (nlines <= 5)
		return dup_n(text, utf8_prefix(text, len, RELAY_CLASSIFY_DETAIL_MAX - 1));

	head_len = (size_t)((const char *)memchr(text, '\n', len) - text);
	head_len = utf8_prefix(text, head_len, HEAD_MAX);
	tail = line_start[nlines % 3]; /* the oldest of the last three */
	tail_len = len - (size_t)(tail - text);
	/* head "\n...\n" tail NUL */
	tail_off = utf8_suffix(tail, tail_len, RELAY_CLASSIFY_DETAIL_MAX - 1 - head_len - 5);
	tail += tail_off;
	tail_len -= tail_off;
	out_len = head_len + 5 + tail_len;
	out = malloc(out_len + 1);
	if (!out)
		return NULL;
	memcpy(out, text, head_len);
	memcpy(out + head_len, "\n...\n", 5);
	memcpy(out + head_len + 5, tail, tail_len);
	out[out_len] = '\0';
	return out;
}

/* A printable excerpt of a body that is not JSON (an HTML error page). */
static char *
snippet(const char *body, size_t len)
{
	size_t n = utf8_prefix(body, len, SNIPPET_MAX), i;
	char *s = dup_n(body, n);

	if (!s)
		return NULL;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = ' ';
	return s;
}

int64_t
relay_retry_after_ms(const char *value, int64_t now_ms)
{
	const char *p = value, *rest;
	int64_t secs = 0;
	struct tm tm;
	time_t t;

	if (!p)
		return -1;
	while (*p == ' ' || *p == '\t')
		p++;
	if (isdigit((unsigned char)*p)) {
		for (; isdigit((unsigned char)*p); p++)
			if (secs < RETRY_AFTER_MAX_S)
				secs = secs * 10 + (*p - '0');
		rest = p;
		if (secs > RETRY_AFTER_MAX_S)
			secs = RETRY_AFTER_MAX_S;
	} else {
		/* IMF-fixdate, the one form senders must produce (RFC 9110). The
		 * day and month names are English whatever the locale: the
		 * daemon never calls setlocale, so strptime's C locale matches. */
		memset(&tm, 0, sizeof tm);
		rest = strptime(p, "%a, %d %b %Y %H:%M:%S GMT", &tm);
		if (!rest)
			return -1;
		t = timegm(&tm);
		if (t == (time_t)-1)
			return -1;
		secs = (int64_t)t - now_ms / 1000;
		if (secs < 0)
			secs = 0;
		if (secs > RETRY_AFTER_MAX_S)
			secs = RETRY_AFTER_MAX_S;
	}
	while (*rest == ' ' || *rest == '\t')
		rest++;
	if (*rest)
		return -1;
	return secs * 1000;
}

void
relay_outcome_clear(struct relay_outcome *o)
{
	if (!o)
		return;
	free(o->error_name);
	free(o->message);
	free(o->detail);
	json_decref(o->result);
	memset(o, 0, sizeof *o);
}

int
relay_outcome_copy(struct relay_outcome *dst, const struct relay_outcome *src)
{
	int err = 0;

	*dst = *src;
	dst->error_name = dst->message = dst->detail = NULL;
	dst->result = NULL;
	dst->result_at = dst->result_len = 0; /* the copy has no body */
	if (src->error_name && !(dst->error_name = strdup(src->error_name)))
		err = ENOMEM;
	if (src->message && !(dst->message = strdup(src->message)))
		err = ENOMEM;
	if (src->detail && !(dst->detail = strdup(src->detail)))
		err = ENOMEM;
	if (err) {
		relay_outcome_clear(dst);
		return err;
	}
	dst->result = json_incref(src->result);
	return 0;
}

int
relay_outcome_set(struct relay_outcome *o, enum relay_class klass, enum relay_scope scope,
                  const char *name, const char *message, const char *detail)
{
	int err = 0;

	memset(o, 0, sizeof *o);
	o->klass = klass;
	o->scope = klass == RELAY_CLASS_CONFIG ? scope : RELAY_SCOPE_NONE;
	o->error_name = dup_capped(name, RELAY_CLASSIFY_MESSAGE_MAX, &err);
	o->message = dup_message(message, RELAY_CLASSIFY_MESSAGE_MAX, &err);
	o->detail = dup_capped(detail, RELAY_CLASSIFY_DETAIL_MAX, &err);
	if (err) {
		relay_outcome_clear(o);
		return err;
	}
	return 0;
}

/* The class name without its module path. */
static const char *
short_name(const char *name)
{
	const char *dot = strrchr(name, '.');

	return dot ? dot + 1 : name;
}

static int
name_in(const char *shortname, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(shortname, *list) == 0)
			return 1;
	return 0;
}

static const char *const transient_names[] = {
	"SerializationFailure", "LockNotAvailable", "DeadlockDetected",
	"InFailedSqlTransaction", "TransactionRollbackError", "ConcurrencyError",
	"LockError", NULL
};
static const char *const target_names[] = { "AccessDenied", "SessionExpiredException", NULL };
static const char *const route_names[] = {
	"AccessError", "AttributeError", "TypeError", "IndexError", "NotFound",
	"UnprocessableEntity", NULL
};
static const char *const permanent_names[] = {
	"ValidationError", "MissingError", "RedirectWarning", NULL
};

/* The table of exception names; message only matters where it says so. */
static struct verdict
by_name(const char *name, const char *message)
{
	struct verdict v = { RELAY_CLASS_PERMANENT, RELAY_SCOPE_NONE, 0 };
	const char *s;

	if (!name) {
		v.unknown = 1;
		return v;
	}
	if (!message)
		message = "";
	s = short_name(name);
	if (name_in(s, transient_names)) {
		v.klass = RELAY_CLASS_TRANSIENT;
	} else if (strcmp(s, "OperationalError") == 0) {
		/* "connection to server ... failed: FATAL: database "x" does not
		 * exist" is ours to fix; a lost connection is Odoo's to recover. */
		if (database_unusable(message)) {
			v.klass = RELAY_CLASS_CONFIG;
			v.scope = RELAY_SCOPE_TARGET;
		} else {
			v.klass = RELAY_CLASS_TRANSIENT;
		}
	} else if (name_in(s, target_names)) {
		v.klass = RELAY_CLASS_CONFIG;
		v.scope = RELAY_SCOPE_TARGET;
	} else if (name_in(s, route_names)) {
		v.klass = RELAY_CLASS_CONFIG;
		v.scope = RELAY_SCOPE_ROUTE;
	} else if (strcmp(s, "UserError") == 0) {
		if (strncmp(message, "Object ", 7) == 0 && strstr(message, " doesn't exist")) {
			v.klass = RELAY_CLASS_CONFIG;
			v.scope = RELAY_SCOPE_ROUTE;
		}
	} else if (strcmp(s, "ValueError") == 0) {
		if (strncmp(message, "Invalid field", 13) == 0) {
			v.klass = RELAY_CLASS_CONFIG;
			v.scope = RELAY_SCOPE_ROUTE;
		}
	} else if (!name_in(s, permanent_names)) {
		v.unknown = 1;
	}
	return v;
}

/* Odoo's error, wherever the protocol puts it: a JSON-RPC envelope's
 * error.data, a JSON-2 body {name, message, debug, ...}, or a JSON-2 body
 * that is only the message string. Returns 1 if root held an error. */
static int
error_fields(json_t *root, const char **name, const char **message, const char **debug)
{
	json_t *err, *data;

	*name = *message = *debug = NULL;
	if (json_is_string(root)) {
		*message = json_string_value(root);
		return 1;
	}
	if (!json_is_object(root))
		return 0;
	err = json_object_get(root, "error");
	if (json_is_object(err)) {
		data = json_object_get(err, "data");
		*name = json_string_value(json_object_get(data, "name"));
		*message = json_string_value(json_object_get(data, "message"));
		if (!*message)
			*message = json_string_value(json_object_get(err, "message"));
		*debug = json_string_value(json_object_get(data, "debug"));
		return 1;
	}
	*name = json_string_value(json_object_get(root, "name"));
	*message = json_string_value(json_object_get(root, "message"));
	*debug = json_string_value(json_object_get(root, "debug"));
	return *name != NULL || *message != NULL;
}

/* Copy the verdict and texts into out. detail is trimmed as a traceback
 * (first line, "...", last three) when it is one, else only cut to size. */
static int
fill_d(struct relay_outcome *out, struct verdict v, const char *name, const char *message,
       const char *detail, size_t detail_len, int traceback)
{
	int err = 0;

	out->klass = v.klass;
	out->scope = v.klass == RELAY_CLASS_CONFIG ? v.scope : RELAY_SCOPE_NONE;
	out->unknown = v.unknown;
	out->error_name = dup_capped(name, RELAY_CLASSIFY_MESSAGE_MAX, &err);
	out->message = dup_message(message, RELAY_CLASSIFY_MESSAGE_MAX, &err);
	if (detail) {
		out->detail = traceback ? relay_trim_traceback(detail, detail_len) :
			dup_n(detail, utf8_prefix(detail, detail_len, RELAY_CLASSIFY_DETAIL_MAX - 1));
		if (!out->detail)
			err = ENOMEM;
	}
	return err;
}

static int
fill(struct relay_outcome *out, struct verdict v, const char *name, const char *message,
     const char *detail, size_t detail_len)
{
	return fill_d(out, v, name, message, detail, detail_len, 1);
}

static int
classify_transport(const struct relay_exchange *x, struct relay_outcome *out)
{
	struct verdict v = { RELAY_CLASS_TRANSIENT, RELAY_SCOPE_NONE, 0 };
	const char *name, *msg;
	const char *d = x->transport_detail && *x->transport_detail ? x->transport_detail : NULL;
	int rc;

	switch (x->transport) {
	case RELAY_TRANSPORT_CONNECT:
		name = "transport.connect";
		msg = "cannot connect to odoo";
		break;
	case RELAY_TRANSPORT_TIMEOUT:
		name = "transport.timeout";
		msg = "odoo did not answer in time";
		break;
	case RELAY_TRANSPORT_RESET:
		name = "transport.reset";
		msg = "connection to odoo failed after the request was sent";
		break;
	case RELAY_TRANSPORT_TOO_BIG:
		v.klass = RELAY_CLASS_PERMANENT;
		name = "transport.too_big";
		msg = "odoo's answer is over max_response_bytes";
		break;
	case RELAY_TRANSPORT_CANCELLED:
		name = "transport.cancelled";
		msg = "call cancelled before odoo answered";
		break;
	default:
		name = "transport.error";
		msg = "local failure while calling odoo";
		break;
	}
	rc = fill(out, v, name, msg, d, d ? strlen(d) : 0);
	out->transport = x->transport;
	return rc;
}

static int
content_type_is_json(const char *ct)
{
	const char *p;

	if (!ct || !*ct)
		return 1;
	for (p = ct; *p && *p != ';'; p++)
		if (strncasecmp(p, "json", 4) == 0)
			return 1;
	return 0;
}

/* A non-2xx answer: the status decides, the body's exception name refines. */
static int
classify_status(const struct relay_exchange *x, json_t *root, struct relay_outcome *out)
{
	struct verdict v = { RELAY_CLASS_PERMANENT, RELAY_SCOPE_NONE, 0 };
	const char *name = NULL, *msg = NULL, *debug = NULL, *s = "";
	long st = x->http_status;
	char status_name[32], status_msg[64];
	char *snip = NULL;
	int has_error, rc;

	has_error = error_fields(root, &name, &msg, &debug);
	if (name)
		s = short_name(name);
	snprintf(status_name, sizeof status_name, "http.%ld", st);
	snprintf(status_msg, sizeof status_msg, "odoo answered http %ld", st);

	if (st >= 300 && st < 400) {
		v.klass = RELAY_CLASS_CONFIG;
		v.scope = RELAY_SCOPE_TARGET;
	} else if (st == 400) {
		v.klass = RELAY_CLASS_CONFIG;
		v.scope = RELAY_SCOPE_ROUTE;
	} else if (st == 401) {
		v.klass = RELAY_CLASS_CONFIG;
		v.scope = RELAY_SCOPE_TARGET;
	} else if (st == 403) {
		v.klass = RELAY_CLASS_CONFIG;
		v.scope = strcmp(s, "AccessDenied") == 0 ? RELAY_SCOPE_TARGET : RELAY_SCOPE_ROUTE;
	} else if (st == 404) {
		if (strcmp(s, "MissingError") == 0) {
			v.klass = RELAY_CLASS_PERMANENT;
		} else {
			v.klass = RELAY_CLASS_CONFIG;
			v.scope = has_error ? RELAY_SCOPE_ROUTE : RELAY_SCOPE_TARGET;
		}
	} else if (st == 408 || st == 409 || st == 425 || st == 429 ||
	           st == 502 || st == 503 || st == 504) {
		v.klass = RELAY_CLASS_TRANSIENT;
	} else if (st == 413) {
		v.klass = RELAY_CLASS_PERMANENT;
	} else if (st == 422) {
		if (name && (strcmp(s, "UserError") == 0 || strcmp(s, "ValidationError") == 0 ||
		             strcmp(s, "MissingError") == 0 || strcmp(s, "RedirectWarning") == 0)) {
			v = by_name(name, msg);
		} else {
			v.klass = RELAY_CLASS_CONFIG;
			v.scope = RELAY_SCOPE_ROUTE;
		}
	} else if (st >= 500 && st < 600) {
		v = by_name(name, msg);
	} else {
		v.unknown = 1;
	}

	if (!debug && !has_error && x->body && x->body_len > 0 &&
	    !(snip = snippet(x->body, x->body_len)))
		return ENOMEM;
	rc = fill(out, v, name ? name : status_name, msg ? msg : status_msg,
	          debug ? debug : snip, debug ? strlen(debug) : snip ? strlen(snip) : 0);
	free(snip);
	return rc;
}

/* Append up to len bytes of s to buf (cap bytes, used so far *used),
 * cutting on a character boundary; buf stays NUL-terminated. */
static void
append(char *buf, size_t cap, size_t *used, const char *s, size_t len)
{
	size_t n = utf8_prefix(s, len, cap - 1 - *used);

	memcpy(buf + *used, s, n);
	*used += n;
	buf[*used] = '\0';
}

/* load() reports row errors in its result instead of raising. */
static int
classify_load(json_t *result, struct relay_outcome *out)
{
	struct verdict v = { RELAY_CLASS_PERMANENT, RELAY_SCOPE_NONE, 0 };
	json_t *ids = json_object_get(result, "ids");
	json_t *msgs = json_object_get(result, "messages"), *m, *first = NULL;
	char detail[RELAY_CLASSIFY_DETAIL_MAX], line[128];
	const char *text, *type, *field;
	size_t i, used = 0;
	int n;

	if (json_is_array(ids))
		return 0;
	if (!json_is_object(result) || !json_is_false(ids)) {
		json_decref(out->result);
		out->result = NULL;
		v.unknown = 1;
		return fill(out, v, "odoo.load", "load returned an unexpected result", NULL, 0);
	}
	/* Kept for a driver that sent several rows: it tells which failed. */
	detail[0] = '\0';
	json_array_foreach(msgs, i, m) {
		text = json_string_value(json_object_get(m, "message"));
		type = json_string_value(json_object_get(m, "type"));
		field = json_string_value(json_object_get(m, "field"));
		if (!first && text && type && strcmp(type, "error") == 0)
			first = m;
		n = snprintf(line, sizeof line, "%srows %" JSON_INTEGER_FORMAT "-%"
		             JSON_INTEGER_FORMAT " field %.64s: ", used ? "\n" : "",
		             json_integer_value(json_object_get(json_object_get(m, "rows"), "from")),
		             json_integer_value(json_object_get(json_object_get(m, "rows"), "to")),
		             field ? field : "-");
		if (n > 0)
			append(detail, sizeof detail, &used, line, strlen(line));
		if (!text)
			text = "-";
		append(detail, sizeof detail, &used, text, strlen(text));
	}
	if (!first)
		first = json_array_get(msgs, 0);
	/* A row refused for want of access rights says nothing about the row
	 * (capture 558): the route's configuration is at fault. */
	json_array_foreach(msgs, i, m) {
		type = json_string_value(json_object_get(m, "type"));
		if (type && strcmp(type, "error") == 0 &&
		    relay_load_message_is_access(json_string_value(json_object_get(m, "message")))) {
			first = m;
			v.klass = RELAY_CLASS_CONFIG;
			v.scope = RELAY_SCOPE_ROUTE;
			break;
		}
	}
	text = json_string_value(json_object_get(first, "message"));
	return fill_d(out, v, v.klass == RELAY_CLASS_CONFIG ? "odoo.load.access" : "odoo.load",
	              text ? text : "load wrote nothing and gave no reason",
	              used ? detail : NULL, used, 0);
}

int
relay_load_message_is_access(const char *text)
{
	/* Odoo 16-19's AccessError texts, as load() puts them in messages. */
	static const char *const marks[] = {
		"You are not allowed to ", "Sorry, you are not allowed to ",
		"Access Denied", "Access denied", NULL,
	};

	if (!text)
		return 0;
	for (size_t i = 0; marks[i]; i++)
		if (strncmp(text, marks[i], strlen(marks[i])) == 0)
			return 1;
	return 0;
}

size_t
relay_load_failed_rows(const json_t *result, size_t nrows, const char **fail)
{
	const json_t *msgs = json_object_get(result, "messages"), *m;
	size_t i, named = 0;

	for (i = 0; i < nrows; i++)
		fail[i] = NULL;
	for (i = 0; i < json_array_size(msgs); i++) {
		const char *type, *text;
		json_int_t from;

		m = json_array_get(msgs, i);
		type = json_string_value(json_object_get(m, "type"));
		from = json_integer_value(json_object_get(json_object_get(m, "rows"), "from"));
		if (!type || strcmp(type, "error") != 0 ||
		    !json_is_integer(json_object_get(json_object_get(m, "rows"), "from")) ||
		    from < 0 || (size_t)from >= nrows || fail[from])
			continue;
		text = json_string_value(json_object_get(m, "message"));
		fail[from] = text && *text ? text : "load refused the row and gave no reason";
		named++;
	}
	return named;
}

static int
classify_success(const struct relay_exchange *x, json_t *root, const char *parse_error,
                 struct relay_outcome *out)
{
	struct verdict v = { RELAY_CLASS_CONFIG, RELAY_SCOPE_TARGET, 0 };
	const char *name, *msg, *debug;
	json_t *result, *err;
	char *snip = NULL, *detail = NULL;
	size_t dlen;
	int rc;

	if (!root) {
		if (content_type_is_json(x->content_type)) {
			v.klass = RELAY_CLASS_TRANSIENT;
			v.scope = RELAY_SCOPE_NONE;
			return fill(out, v, "proto.bad_json", "odoo's answer is not valid json",
			            parse_error, strlen(parse_error));
		}
		if (x->body && x->body_len && !(snip = snippet(x->body, x->body_len)))
			return ENOMEM;
		dlen = (snip ? strlen(snip) : 0) + strlen(x->content_type) + 32;
		if (!(detail = malloc(dlen))) {
			free(snip);
			return ENOMEM;
		}
		snprintf(detail, dlen, "content-type %s: %s", x->content_type, snip ? snip : "");
		rc = fill(out, v, "proto.not_json",
		          "odoo's url answered with something that is not json: is the url right?",
		          detail, strlen(detail));
		free(detail);
		free(snip);
		return rc;
	}
	if (x->protocol == RELAY_PROTO_JSONRPC) {
		if (!json_is_object(root))
			return fill(out, v, "proto.envelope",
			            "odoo's answer is not a json-rpc envelope", NULL, 0);
		err = json_object_get(root, "error");
		if (err && !json_is_null(err)) {
			error_fields(root, &name, &msg, &debug);
			v = by_name(name, msg);
			return fill(out, v, name ? name : "odoo.error",
			            msg ? msg : "odoo answered an error", debug,
			            debug ? strlen(debug) : 0);
		}
		result = json_object_get(root, "result");
	} else {
		result = root;
	}
	/* A method returning None gives an envelope without "result". */
	out->klass = RELAY_CLASS_DONE;
	out->result = result ? json_incref(result) : json_null();
	if (x->method && strcmp(x->method, "load") == 0)
		return classify_load(out->result, out);
	return 0;
}

static int
json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Where the result's own text lies in x's body (struct relay_outcome). The
 * body is valid JSON with no key twice (root is what it decodes to), so
 * after the envelope's first two members, checked byte for byte, and with
 * three members in all, what stands between the prefix and the closing
 * brace is the result and nothing else. */
static void
result_span(const struct relay_exchange *x, const json_t *root, struct relay_outcome *out)
{
	const char *b = x->body;
	size_t start = 0, end = x->body_len;

	while (end > 0 && json_space(b[end - 1]))
		end--;
	if (x->protocol == RELAY_PROTO_JSONRPC) {
		const json_t *id = json_object_get(root, "id");
		char head[96];
		int n;

		if (json_object_size(root) != 3 || !json_is_integer(id))
			return;
		n = snprintf(head, sizeof head, "{\"jsonrpc\": \"2.0\", \"id\": %" JSON_INTEGER_FORMAT
		             ", \"result\": ", json_integer_value(id));
		if (n <= 0 || (size_t)n >= sizeof head || end <= (size_t)n ||
		    memcmp(b, head, (size_t)n) != 0 || b[end - 1] != '}')
			return;
		start = (size_t)n;
		end--;
		while (end > start && json_space(b[end - 1]))
			end--;
	} else {
		while (start < end && json_space(b[start]))
			start++;
	}
	if (end > start) {
		out->result_at = start;
		out->result_len = end - start;
	}
}

int
relay_classify(const struct relay_exchange *x, struct relay_outcome *out)
{
	json_error_t jerr;
	json_t *root = NULL;
	int64_t ra;
	int rc;

	if (out)
		memset(out, 0, sizeof *out);
	if (!x || !out || (x->protocol != RELAY_PROTO_JSONRPC && x->protocol != RELAY_PROTO_JSON2))
		return -RELAY_EINVAL;
	out->http_status = x->http_status;
	if (x->transport != RELAY_TRANSPORT_OK) {
		rc = classify_transport(x, out);
	} else {
		int twice = 0; /* a key twice: decoded as before, the text not passed on */

		if (x->body && x->body_len > 0) {
			root = json_loadb(x->body, x->body_len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
			                  &jerr);
			if (!root && json_error_code(&jerr) == json_error_duplicate_key) {
				twice = 1;
				root = json_loadb(x->body, x->body_len, JSON_DECODE_ANY, &jerr);
			}
		} else {
			snprintf(jerr.text, sizeof jerr.text, "empty body");
		}
		if (x->http_status >= 200 && x->http_status < 300)
			rc = classify_success(x, root, jerr.text, out);
		else
			rc = classify_status(x, root, out);
		if (rc == 0 && !twice && out->klass == RELAY_CLASS_DONE && out->result &&
		    !json_is_null(out->result))
			result_span(x, root, out);
		json_decref(root);
	}
	if (rc == 0 && out->klass == RELAY_CLASS_TRANSIENT) {
		ra = relay_retry_after_ms(x->retry_after, x->now_ms);
		out->retry_after_ms = ra > 0 ? ra : 0;
	}
	if (rc) {
		relay_outcome_clear(out);
		return rc;
	}
	return 0;
}
