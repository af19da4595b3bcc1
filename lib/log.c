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

static void
log_emit(int prio, const struct relay_log_fields *f, const char *fmt, va_list ap)
{
	char msg[2048];
	if (prio > log_max)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);

	char fb[MAX_FIELDS][600];
	size_t nf = 0;
	if (f) {
		if (f->message_id)
			snprintf(fb[nf++], sizeof(fb[0]), "MESSAGE_ID=%s", f->message_id);
		if (f->event_id)
			snprintf(fb[nf++], sizeof(fb[0]), "EVENT_ID=%" PRIu64, f->event_id);
		if (f->source)
			snprintf(fb[nf++], sizeof(fb[0]), "SOURCE=%s", f->source);
		if (f->topic && *f->topic)
			snprintf(fb[nf++], sizeof(fb[0]), "TOPIC=%s", f->topic);
		if (f->route)
			snprintf(fb[nf++], sizeof(fb[0]), "ROUTE=%s", f->route);
		if (f->destination)
			snprintf(fb[nf++], sizeof(fb[0]), "DESTINATION=%s", f->destination);
		if (f->lane)
			snprintf(fb[nf++], sizeof(fb[0]), "LANE=%s", f->lane);
		if (f->attempt)
			snprintf(fb[nf++], sizeof(fb[0]), "ATTEMPT=%u", f->attempt);
		if (f->error_class)
			snprintf(fb[nf++], sizeof(fb[0]), "ERROR_CLASS=%s", f->error_class);
		if (f->odoo_model && *f->odoo_model)
			snprintf(fb[nf++], sizeof(fb[0]), "ODOO_MODEL=%s", f->odoo_model);
		if (f->odoo_error)
			snprintf(fb[nf++], sizeof(fb[0]), "ODOO_ERROR=%s", f->odoo_error);
		if (f->batch_id) {
			snprintf(fb[nf++], sizeof(fb[0]), "BATCH_ID=%" PRIu64, f->batch_id);
			snprintf(fb[nf++], sizeof(fb[0]), "BATCH_SIZE=%u", f->batch_size);
			if (f->batch_row >= 0)
				snprintf(fb[nf++], sizeof(fb[0]), "BATCH_ROW=%d", f->batch_row);
		}
	}

	if (log_journal) {
		char m[2100], p[32];
		struct iovec iov[MAX_FIELDS + 3];
		size_t n = 0;
		snprintf(m, sizeof(m), "MESSAGE=%s", msg);
		snprintf(p, sizeof(p), "PRIORITY=%d", prio);
		iov[n++] = (struct iovec){ m, strlen(m) };
		iov[n++] = (struct iovec){ p, strlen(p) };
		iov[n++] = (struct iovec){ "SYSLOG_IDENTIFIER=odoo-relayd", 29 };
		for (size_t i = 0; i < nf; i++)
			iov[n++] = (struct iovec){ fb[i], strlen(fb[i]) };
		if (sd_journal_sendv(iov, (int)n) >= 0)
			return;
		/* journald went away: fall through to stderr */
	}

	char line[8192];
	int len = snprintf(line, sizeof(line), "<%d>%s", prio, msg);
	for (size_t i = 0; i < nf && len > 0 && (size_t)len < sizeof(line); i++) {
		if (strncmp(fb[i], "MESSAGE_ID=", 11) == 0)
			continue;
		char *eq = strchr(fb[i], '=');
		len += snprintf(line + len, sizeof(line) - (size_t)len, " %.*s=%s",
		                (int)(eq - fb[i]), fb[i], eq + 1);
	}
	if (len < 0)
		return;
	if ((size_t)len >= sizeof(line) - 1)
		len = (int)sizeof(line) - 2;
	/* One message, one line: a newline inside (Odoo's messages end with
	 * one) would split it and could forge a second line. */
	for (int i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20)
			line[i] = ' ';
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, (size_t)len);
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
