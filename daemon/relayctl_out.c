/*
 * odoo-relayctl: output. Aligned tables, times (absolute in ISO 8601 local
 * time, and relative), sizes, the JSON forms, and the long form of one
 * event. No colour: the output is the same on a terminal and in a pipe.
 *
 * Whatever came from a webhook sender (topics, lanes, headers, bodies) may
 * hold terminal control sequences: the human output shows control
 * characters escaped, never raw.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include <openssl/evp.h>

#include "relayctl.h"

/* ---- text ---- */

/* Columns s takes on a terminal: UTF-8 continuation bytes take none. */
static size_t
display_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			w++;
	return w;
}

/* Appends s to buf (size n, used *len) with control characters and DEL
 * escaped, stopping at max display columns (0: no limit). Returns 1 if s
 * was cut. */
static int
escape_into(const char *s, size_t max, char *buf, size_t n, size_t *len)
{
	size_t cols = 0;

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		char tmp[8];
		size_t tl;

		if (ch < 0x20 || ch == 0x7f) {
			switch (ch) {
			case '\n': tl = (size_t)snprintf(tmp, sizeof(tmp), "\\n"); break;
			case '\t': tl = (size_t)snprintf(tmp, sizeof(tmp), "\\t"); break;
			case '\r': tl = (size_t)snprintf(tmp, sizeof(tmp), "\\r"); break;
			default: tl = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", ch); break;
			}
		} else {
			tmp[0] = (char)ch;
			tl = 1;
		}
		if (max && (ch & 0xC0) != 0x80 && cols + (tl > 1 ? tl : 1) > max)
			return 1;
		if (*len + tl + 1 > n)
			return 1;
		memcpy(buf + *len, tmp, tl);
		*len += tl;
		buf[*len] = '\0';
		if ((ch & 0xC0) != 0x80)
			cols += tl;
	}
	return 0;
}

const char *
ctl_clip(const char *s, size_t max, char *buf, size_t n)
{
	size_t len = 0;
	int cut;

	if (!s)
		return "-";
	buf[0] = '\0';
	/* room for the ellipsis, three bytes in UTF-8 */
	cut = escape_into(s, 0, buf, n - 3, &len);
	if (max && display_width(buf) > max) {
		len = 0;
		buf[0] = '\0';
		escape_into(s, max - 1, buf, n - 3, &len);
		cut = 1;
	}
	if (cut)
		memcpy(buf + len, "\xe2\x80\xa6", 4);
	return buf;
}

/* ---- tables ---- */

struct ctl_table {
	size_t ncols, nrows, cap;
	char align[16];
	char **cells; /* nrows * ncols, row 0 the titles */
};

struct ctl_table *
ctl_table_new(const char *align, const char *const *titles)
{
	struct ctl_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->ncols = strlen(align);
	if (t->ncols >= sizeof(t->align))
		t->ncols = sizeof(t->align) - 1;
	memcpy(t->align, align, t->ncols);
	if (ctl_table_add(t, titles)) {
		free(t);
		return NULL;
	}
	return t;
}

int
ctl_table_add(struct ctl_table *t, const char *const *cells)
{
	char buf[1024];

	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **p = realloc(t->cells, cap * t->ncols * sizeof(*p));

		if (!p)
			return ENOMEM;
		t->cells = p;
		t->cap = cap;
	}
	for (size_t i = 0; i < t->ncols; i++) {
		char *s = strdup(ctl_clip(cells[i], 0, buf, sizeof(buf)));

		if (!s) {
			while (i-- > 0)
				free(t->cells[t->nrows * t->ncols + i]);
			return ENOMEM;
		}
		t->cells[t->nrows * t->ncols + i] = s;
	}
	t->nrows++;
	return 0;
}

void
ctl_table_free(struct ctl_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

void
ctl_table_print(struct ctl_table *t, FILE *f)
{
	size_t w[16] = { 0 };

	for (size_t r = 0; r < t->nrows; r++)
		for (size_t i = 0; i < t->ncols; i++) {
			size_t cw = display_width(t->cells[r * t->ncols + i]);

			if (cw > w[i])
				w[i] = cw;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t i = 0; i < t->ncols; i++) {
			const char *s = t->cells[r * t->ncols + i];
			size_t pad = w[i] - display_width(s);
			int last = i + 1 == t->ncols;

			if (t->align[i] == 'r')
				fprintf(f, "%*s%s", (int)pad, "", s);
			else
				fprintf(f, "%s%*s", s, last ? 0 : (int)pad, "");
			if (!last)
				fputs("  ", f);
		}
		fputc('\n', f);
	}
	ctl_table_free(t);
}

/* ---- times and sizes ---- */

void
ctl_fmt_time(int64_t ms, char *buf, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char zone[8];

	if (ms <= 0 || !localtime_r(&t, &tm)) {
		snprintf(buf, n, "-");
		return;
	}
	/* ISO 8601 wants +02:00 where strftime's %z gives +0200 */
	strftime(zone, sizeof(zone), "%z", &tm);
	strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
	if (strlen(zone) == 5) {
		size_t l = strlen(buf);

		snprintf(buf + l, n > l ? n - l : 0, "%.3s:%.2s", zone, zone + 3);
	}
}

void
ctl_fmt_dur(int64_t ms, char *buf, size_t n)
{
	int64_t s = ms < 0 ? -ms / 1000 : ms / 1000;

	if (s < 60)
		snprintf(buf, n, "%" PRId64 "s", s);
	else if (s < 3600)
		snprintf(buf, n, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, n, "%" PRId64 "h%02" PRId64 "m", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, n, "%" PRId64 "d%02" PRId64 "h", s / 86400, s % 86400 / 3600);
}

void
ctl_fmt_rel(int64_t now_ms, int64_t ms, char *buf, size_t n)
{
	char d[32];

	if (ms <= 0) {
		snprintf(buf, n, "-");
		return;
	}
	if (ms > now_ms + 999) {
		ctl_fmt_dur(ms - now_ms, d, sizeof(d));
		snprintf(buf, n, "in %s", d);
	} else if (now_ms - ms < 1000) {
		snprintf(buf, n, "now");
	} else {
		ctl_fmt_dur(now_ms - ms, d, sizeof(d));
		snprintf(buf, n, "%s ago", d);
	}
}

void
ctl_fmt_when(int64_t now_ms, int64_t ms, char *buf, size_t n)
{
	char abs[48], rel[40];

	if (ms <= 0) {
		snprintf(buf, n, "-");
		return;
	}
	ctl_fmt_time(ms, abs, sizeof(abs));
	ctl_fmt_rel(now_ms, ms, rel, sizeof(rel));
	snprintf(buf, n, "%s (%s)", abs, rel);
}

void
ctl_fmt_bytes(uint64_t b, char *buf, size_t n)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int u = -1;

	if (b < 1024) {
		snprintf(buf, n, "%" PRIu64 " B", b);
		return;
	}
	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	snprintf(buf, n, "%.1f %s", v, units[u]);
}

void
ctl_fmt_u64(uint64_t v, char *buf, size_t n)
{
	snprintf(buf, n, "%" PRIu64, v);
}

/* ---- JSON ---- */

int
ctl_json_print(json_t *o, int line)
{
	char *s = o ? json_dumps(o, line ? JSON_COMPACT : JSON_INDENT(2)) : NULL;

	json_decref(o);
	if (!s) {
		ctl_err("cannot format the JSON output: out of memory");
		return EX_OSERR;
	}
	puts(s);
	free(s);
	return 0;
}

int
ctl_json_print_lines(json_t *lines)
{
	size_t i;
	json_t *o;
	int rc = 0;

	json_array_foreach(lines, i, o) {
		if ((rc = ctl_json_print(json_incref(o), 1)))
			break;
	}
	json_decref(lines);
	return rc;
}

json_t *
ctl_json_id(uint64_t id)
{
	char buf[24];

	ctl_fmt_u64(id, buf, sizeof(buf));
	return json_string(buf);
}

/* A JSON string of s (NULL: null). Text that is not UTF-8 cannot be a
 * JSON string as is: its bytes above 0x7f become U+FFFD. */
static json_t *
jstr(const char *s)
{
	json_t *v;

	if (!s)
		return json_null();
	if ((v = json_string(s)))
		return v;
	{
		size_t n = strlen(s);
		char *fixed = malloc(n * 3 + 1), *p = fixed;

		if (!fixed)
			return NULL;
		for (; *s; s++) {
			if ((unsigned char)*s < 0x80) {
				*p++ = *s;
			} else {
				memcpy(p, "\xef\xbf\xbd", 3);
				p += 3;
			}
		}
		*p = '\0';
		v = json_string(fixed);
		free(fixed);
		return v;
	}
}

int
ctl_json_time(json_t *o, const char *key, int64_t ms)
{
	char k[64], buf[48];

	snprintf(k, sizeof(k), "%s_ms", key);
	if (ms <= 0)
		return json_object_set_new(o, k, json_null()) || json_object_set_new(o, key, json_null());
	ctl_fmt_time(ms, buf, sizeof(buf));
	return json_object_set_new(o, k, json_integer((json_int_t)ms)) ||
	       json_object_set_new(o, key, json_string(buf));
}

static json_t *
json_attempt(const struct relay_attempt *a)
{
	json_t *o = json_object();

	if (!o || ctl_json_time(o, "at", a->at_ms) ||
	    json_object_set_new(o, "class", json_string(relay_class_name(a->klass))) ||
	    json_object_set_new(o, "http_status",
	                        a->http_status ? json_integer(a->http_status) : json_null()) ||
	    json_object_set_new(o, "duration_ms", json_integer((json_int_t)a->duration_ms)) ||
	    json_object_set_new(o, "error_name", jstr(a->error_name)) ||
	    json_object_set_new(o, "message", jstr(a->message)) ||
	    json_object_set_new(o, "detail", jstr(a->detail))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* The body: as text when it is UTF-8, else base64; and parsed when it is
 * JSON. */
static int
json_body(json_t *o, const struct relay_event *ev)
{
	json_t *parsed = NULL, *text, *b64 = NULL;

	if (ev->body_len)
		parsed = json_loadb((const char *)ev->body, ev->body_len, JSON_DECODE_ANY, NULL);
	text = json_stringn((const char *)(ev->body ? ev->body : (const unsigned char *)""),
	                    ev->body_len);
	if (!text) {
		size_t n = 4 * ((ev->body_len + 2) / 3) + 1;
		unsigned char *enc = malloc(n);

		if (!enc) {
			json_decref(parsed);
			return -1;
		}
		EVP_EncodeBlock(enc, ev->body, (int)ev->body_len);
		b64 = json_string((const char *)enc);
		free(enc);
	}
	return json_object_set_new(o, "body_bytes", json_integer((json_int_t)ev->body_len)) ||
	       json_object_set_new(o, "body_json", parsed ? parsed : json_null()) ||
	       json_object_set_new(o, "body_text", text ? text : json_null()) ||
	       json_object_set_new(o, "body_base64", b64 ? b64 : json_null());
}

json_t *
ctl_json_event(const struct ctl *c, const struct relay_event *ev, const char *state, int full)
{
	const struct relay_attempt *last = ctl_last_attempt(ev);
	json_t *o = json_object(), *a;
	int bad;

	if (!o)
		return NULL;
	bad = json_object_set_new(o, "id", ctl_json_id(ev->id)) ||
	      json_object_set_new(o, "source", jstr(ev->source)) ||
	      json_object_set_new(o, "topic", jstr(ev->topic ? ev->topic : "")) ||
	      json_object_set_new(o, "lane", jstr(ev->lane && *ev->lane ? ev->lane : NULL)) ||
	      json_object_set_new(o, "dedup_key", jstr(ev->dedup_key)) ||
	      json_object_set_new(o, "route", jstr(ctl_route_of(c, ev))) ||
	      ctl_json_time(o, "received", ev->received_ms) ||
	      json_object_set_new(o, "age_s", json_integer((json_int_t)((c->now_ms - ev->received_ms) / 1000))) ||
	      json_object_set_new(o, "attempts", json_integer(ev->attempts)) ||
	      json_object_set_new(o, "last_error", jstr(ev->last_error)) ||
	      json_object_set_new(o, "error_name", jstr(last ? last->error_name : NULL));
	if (!bad && ev->dead_ms)
		bad = ctl_json_time(o, "dead", ev->dead_ms) ||
		      json_object_set_new(o, "dead_reason", jstr(ev->dead_reason));
	else if (!bad)
		/* a parked event's due time means nothing until it heads its lane */
		bad = json_object_set_new(o, "state", jstr(state)) ||
		      ctl_json_time(o, "due", state && strcmp(state, "parked") == 0 ? 0 : ev->due_ms);
	if (bad || !full)
		goto out;

	bad = ctl_json_time(o, "first_attempt", ev->first_attempt_ms) ||
	      json_object_set_new(o, "headers", a = json_array());
	for (size_t i = 0; !bad && i < ev->n_headers; i++)
		bad = json_array_append_new(a, json_pack("{s:o,s:o}", "name", jstr(ev->headers[i].name),
		                                         "value", jstr(ev->headers[i].value)));
	bad = bad || json_body(o, ev) || json_object_set_new(o, "history", a = json_array());
	for (size_t i = 0; !bad && i < ev->n_history; i++)
		bad = json_array_append_new(a, json_attempt(&ev->history[i]));
	if (!bad && ev->dead_ms)
		bad = json_object_set_new(o, "request", jstr(ev->request));
out:
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ---- the long form of one event ---- */

/* Prints text indented, each line escaped. */
static void
print_block(const char *indent, const char *text, size_t len)
{
	char buf[4096];
	size_t start = 0;

	while (start < len) {
		size_t end = start, bl = 0;
		char *line;

		while (end < len && text[end] != '\n')
			end++;
		if (!(line = strndup(text + start, end - start)))
			return;
		buf[0] = '\0';
		int cut = escape_into(line, 0, buf, sizeof(buf), &bl);
		printf("%s%s%s\n", indent, buf, cut ? "\xe2\x80\xa6" : "");
		free(line);
		start = end + 1;
	}
}

/* Prints a JSON text pretty, or else as it is, escaped. */
static void
print_maybe_json(const char *indent, const unsigned char *p, size_t len)
{
	json_t *v = len ? json_loadb((const char *)p, len, JSON_DECODE_ANY, NULL) : NULL;
	char *pretty = v ? json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY) : NULL;

	json_decref(v);
	if (pretty) {
		/* json_dumps escapes control characters: safe to print */
		print_block(indent, pretty, strlen(pretty));
		free(pretty);
		return;
	}
	/* Not JSON: raw, with every byte that is not printable ASCII escaped
	 * (the bytes may be in any encoding). */
	{
		char *buf = malloc(len * 4 + 1), *q = buf;

		if (!buf)
			return;
		for (size_t i = 0; i < len; i++) {
			unsigned char ch = p[i];

			if (ch == '\n' || (ch >= 0x20 && ch < 0x7f))
				*q++ = (char)ch;
			else
				q += sprintf(q, ch == '\t' ? "\\t" : "\\x%02x", ch);
		}
		*q = '\0';
		print_block(indent, buf, (size_t)(q - buf));
		free(buf);
	}
}

static void
field(const char *name, const char *value)
{
	char buf[2048];

	printf("  %-13s %s\n", name, ctl_clip(value, 0, buf, sizeof(buf)));
}

void
ctl_print_event(const struct ctl *c, const struct relay_event *ev, const char *state)
{
	char buf[128], n[32];

	ctl_fmt_u64(ev->id, n, sizeof(n));
	if (ev->dead_ms)
		printf("dead letter %s\n", n);
	else
		printf("event %s (%s)\n", n, state ? state : "queued");
	field("source", ev->source);
	field("topic", ev->topic && *ev->topic ? ev->topic : "-");
	field("lane", ev->lane && *ev->lane ? ev->lane : "-");
	field("dedup key", ev->dedup_key ? ev->dedup_key : "-");
	field("route", ctl_route_of(c, ev) ? ctl_route_of(c, ev) : "- (no route matches)");
	ctl_fmt_when(c->now_ms, ev->received_ms, buf, sizeof(buf));
	field("received", buf);
	if (ev->dead_ms) {
		ctl_fmt_when(c->now_ms, ev->dead_ms, buf, sizeof(buf));
		field("dead since", buf);
		field("dead reason", ev->dead_reason ? ev->dead_reason : "-");
	} else {
		ctl_fmt_when(c->now_ms, ev->due_ms, buf, sizeof(buf));
		field("due", state && strcmp(state, "parked") == 0 ? "after the events before it in its lane"
		                                                    : buf);
	}
	if (ev->first_attempt_ms) {
		ctl_fmt_when(c->now_ms, ev->first_attempt_ms, buf, sizeof(buf));
		field("first attempt", buf);
	}
	snprintf(buf, sizeof(buf), "%" PRIu32, ev->attempts);
	field("attempts", buf);
	field("last error", ev->last_error ? ev->last_error : "-");

	printf("\nheaders (%zu kept)\n", ev->n_headers);
	for (size_t i = 0; i < ev->n_headers; i++) {
		char nb[256], vb[2048];

		printf("  %s: %s\n", ctl_clip(ev->headers[i].name, 0, nb, sizeof(nb)),
		       ctl_clip(ev->headers[i].value, 0, vb, sizeof(vb)));
	}

	ctl_fmt_bytes(ev->body_len, buf, sizeof(buf));
	{
		json_t *v = ev->body_len ? json_loadb((const char *)ev->body, ev->body_len,
		                                      JSON_DECODE_ANY, NULL)
		                         : NULL;

		printf("\nbody (%s%s)\n", buf, v ? ", JSON" : ev->body_len ? ", not JSON: raw, escaped" : "");
		json_decref(v);
	}
	print_maybe_json("  ", ev->body, ev->body_len);

	printf("\nattempts (%zu in the history", ev->n_history);
	if (ev->n_history == RELAY_RECORD_MAX_HISTORY)
		printf(": the first and the most recent");
	printf(")\n");
	for (size_t i = 0; i < ev->n_history; i++) {
		const struct relay_attempt *a = &ev->history[i];
		char when[128], http[16], dur[32];

		ctl_fmt_when(c->now_ms, a->at_ms, when, sizeof(when));
		if (a->http_status)
			snprintf(http, sizeof(http), "HTTP %u", a->http_status);
		else
			snprintf(http, sizeof(http), "no HTTP answer");
		ctl_fmt_dur(a->duration_ms, dur, sizeof(dur));
		printf("  %zu. %s  %s  %s  took %s\n", i + 1, when, relay_class_name(a->klass), http,
		       a->duration_ms < 1000 ? "<1s" : dur);
		if (a->error_name)
			printf("     error    %s\n", ctl_clip(a->error_name, 0, when, sizeof(when)));
		if (a->message) {
			printf("     message\n");
			print_block("       ", a->message, strlen(a->message));
		}
		if (a->detail && *a->detail) {
			printf("     detail\n");
			print_block("       ", a->detail, strlen(a->detail));
		}
	}
	if (ev->dead_ms) {
		printf("\nrequest last sent to Odoo\n");
		if (ev->request && *ev->request)
			print_maybe_json("  ", (const unsigned char *)ev->request, strlen(ev->request));
		else
			printf("  - (none: the event failed before a call was made)\n");
	}
}
