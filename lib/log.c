/* Logging to journald or stderr: see include/odoo_relay/log.h. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "odoo_relay/log.h"

static int log_journal;
static int log_max = LOG_INFO;

/* stderr is the journal when $JOURNAL_STREAM names its device and inode. */
static int
stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st))
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void
relay_log_init(int journal, int max_priority)
{
	log_journal = journal < 0 ? stderr_is_journal() : journal;
	log_max = max_priority;
}

#define MAX_FIELDS 15

static void log_emit(int prio, const struct relay_log_fields *f, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/*
 * The journal fields of one line, each "NAME=value" cut at FIELD_MAX - 1
 * bytes, appended without printf: a delivered event logs one line, and
 * formatting a dozen fields through snprintf was most of its cost.
 */
#define FIELD_MAX 600
struct fields {
	char b[MAX_FIELDS * FIELD_MAX];
	struct iovec v[MAX_FIELDS];
	size_t n, used;
};

static void
field_put(struct fields *fs, const char *name, const char *val)
{
	size_t nl = strlen(name), vl = strlen(val);
	char *d = fs->b + fs->used;

	if (fs->n == MAX_FIELDS)
		return;
	if (nl + vl > FIELD_MAX - 1)
		vl = nl < FIELD_MAX - 1 ? FIELD_MAX - 1 - nl : 0;
	memcpy(d, name, nl);
	memcpy(d + nl, val, vl);
	fs->v[fs->n++] = (struct iovec){ d, nl + vl };
	fs->used += nl + vl;
}

static void
field_u64(struct fields *fs, const char *name, uint64_t v)
{
	char t[24], *p = t + sizeof(t);

	*--p = '\0';
	do
		*--p = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	field_put(fs, name, p);
}

static void
log_emit(int prio, const struct relay_log_fields *f, const char *fmt, va_list ap)
{
	char msg[2048];
	if (prio > log_max)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);

	struct fields fs;
	fs.n = fs.used = 0;
	if (f) {
		if (f->message_id)
			field_put(&fs, "MESSAGE_ID=", f->message_id);
		if (f->event_id)
			field_u64(&fs, "EVENT_ID=", f->event_id);
		if (f->source)
			field_put(&fs, "SOURCE=", f->source);
		if (f->topic && *f->topic)
			field_put(&fs, "TOPIC=", f->topic);
		if (f->route)
			field_put(&fs, "ROUTE=", f->route);
		if (f->destination)
			field_put(&fs, "DESTINATION=", f->destination);
		if (f->lane)
			field_put(&fs, "LANE=", f->lane);
		if (f->attempt)
			field_u64(&fs, "ATTEMPT=", f->attempt);
		if (f->error_class)
			field_put(&fs, "ERROR_CLASS=", f->error_class);
		if (f->odoo_model && *f->odoo_model)
			field_put(&fs, "ODOO_MODEL=", f->odoo_model);
		if (f->odoo_error)
			field_put(&fs, "ODOO_ERROR=", f->odoo_error);
		if (f->batch_id) {
			field_u64(&fs, "BATCH_ID=", f->batch_id);
			field_u64(&fs, "BATCH_SIZE=", f->batch_size);
			if (f->batch_row >= 0)
				field_u64(&fs, "BATCH_ROW=", (uint64_t)f->batch_row);
		}
	}

	size_t ml = strlen(msg);
	if (log_journal) {
		char m[sizeof("MESSAGE=") + sizeof(msg)], p[32];
		struct iovec iov[MAX_FIELDS + 3];
		size_t n = 0;
		memcpy(m, "MESSAGE=", 8);
		memcpy(m + 8, msg, ml);
		snprintf(p, sizeof(p), "PRIORITY=%d", prio);
		iov[n++] = (struct iovec){ m, 8 + ml };
		iov[n++] = (struct iovec){ p, strlen(p) };
		iov[n++] = (struct iovec){ "SYSLOG_IDENTIFIER=odoo-relayd", 29 };
		for (size_t i = 0; i < fs.n; i++)
			iov[n++] = fs.v[i];
		if (sd_journal_sendv(iov, (int)n) >= 0)
			return;
		/* journald went away: fall through to stderr */
	}

	/* "<prio>message NAME=value ..." (no MESSAGE_ID), one line */
	char line[8192];
	size_t len = (size_t)snprintf(line, 16, "<%d>", prio);
	size_t room = sizeof(line) - 1; /* the newline */
	size_t c = ml < room - len ? ml : room - len;
	memcpy(line + len, msg, c);
	len += c;
	for (size_t i = 0; i < fs.n && len < room; i++) {
		const char *fv = fs.v[i].iov_base;
		size_t fl = fs.v[i].iov_len;
		if (fl >= 11 && memcmp(fv, "MESSAGE_ID=", 11) == 0)
			continue;
		line[len++] = ' ';
		c = fl < room - len ? fl : room - len;
		memcpy(line + len, fv, c);
		len += c;
	}
	/* One message, one line: a newline inside (Odoo's messages end with
	 * one) would split it and could forge a second line. */
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20)
			line[i] = ' ';
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

void
relay_log(int prio, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_emit(prio, NULL, fmt, ap);
	va_end(ap);
}

void
relay_log_with(int prio, const struct relay_log_fields *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_emit(prio, f, fmt, ap);
	va_end(ap);
}
