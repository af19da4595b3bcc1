/* Unit tests for log.c: the line written to stderr when journald is not
 * the sink, and the journal fields it carries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "odoo_relay/log.h"

/* Runs one log call with stderr into a file; returns what was written. */
static char *
capture(int prio, const struct relay_log_fields *f, const char *msg)
{
	static char out[16384];
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	size_t n;

	if (!tmp || saved < 0)
		return NULL;
	dup2(fileno(tmp), STDERR_FILENO);
	relay_log_with(prio, f, "%s", msg);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	n = fread(out, 1, sizeof(out) - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
	return out;
}

static void
test_line(void)
{
	struct relay_log_fields f = { .message_id = "b7d1e2a4", .event_id = 18446744073709551615ULL,
	                              .source = "shop", .topic = "", .route = "r",
	                              .attempt = 3, .batch_id = 12, .batch_size = 100,
	                              .batch_row = 0 };
	char *s;

	relay_log_init(0, LOG_INFO);
	s = capture(LOG_INFO, &f, "event 1 delivered\nforged line");
	CHECK_STR(s, "<6>event 1 delivered forged line EVENT_ID=18446744073709551615 SOURCE=shop "
	             "ROUTE=r ATTEMPT=3 BATCH_ID=12 BATCH_SIZE=100 BATCH_ROW=0\n");
	f.batch_row = -1;
	f.event_id = 0;
	s = capture(LOG_WARNING, &f, "m");
	CHECK_STR(s, "<4>m SOURCE=shop ROUTE=r ATTEMPT=3 BATCH_ID=12 BATCH_SIZE=100\n");
	s = capture(LOG_DEBUG, &f, "below the level");
	CHECK_STR(s, "");
	s = capture(LOG_ERR, NULL, "no fields");
	CHECK_STR(s, "<3>no fields\n");
}

/* A field is cut at 599 bytes, NAME= included; a message at 2047. */
static void
test_cut(void)
{
	char big[9000], want[700];
	struct relay_log_fields f = { 0 };
	char *s;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	f.lane = big;
	relay_log_init(0, LOG_INFO);
	s = capture(LOG_INFO, &f, "m");
	snprintf(want, sizeof(want), "<6>m LANE=%.594s\n", big);
	CHECK_STR(s, want);
	s = capture(LOG_INFO, NULL, big);
	CHECK_INT(strlen(s), 3 + 2047 + 1);
	CHECK(s[3 + 2047] == '\n' && strncmp(s, "<6>xxx", 6) == 0);
}

int
main(void)
{
	RUN(test_line);
	RUN(test_cut);
	return check_done();
}
