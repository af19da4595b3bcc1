/*
 * odoo-relayctl: the operator's tool for the store of odoo-relayd. Global
 * options, the table of verbs, opening the store, and turning errors into
 * messages and exit statuses. The verbs live in relayctl_*.c; what the
 * files share is in relayctl.h, what the operator sees in odoo-relayctl(8).
 *
 * The CLI is a second process on the daemon's LMDB environment (see
 * DESIGN.md): it reads in read transactions, which never block the daemon,
 * and writes in short transactions of its own through the store API.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "odoo_relay/clock.h"
#include "odoo_relay/error.h"
#include "odoo_relay/store_check.h"

#include "relayctl.h"

struct verb {
	const char *name;
	const char *sub;       /* NULL: a verb without sub-verbs */
	int (*run)(struct ctl *c, int argc, char **argv);
	const char *synopsis;  /* after "odoo-relayctl [GLOBAL] " */
	const char *help;      /* what it does, its options */
};

#define FILTERS_EVENTS                                                                           \
	"  --source NAME          events from this source\n"                                     \
	"  --topic PATTERN        topics matching this glob (fnmatch: customers/*)\n"            \
	"  --route NAME           events of this route (the stored one, else the one\n"          \
	"                         the configuration matches now)\n"                              \
	"  --destination NAME     events whose route goes to this destination\n"               \
	"  --lane KEY             events of this ordering key\n"                                 \
	"  --older-than DURATION  received longer ago than this (90s, 5m, 2h, 1d, 1h30m)\n"     \
	"  --newer-than DURATION  received less long ago than this\n"

#define FILTERS_DEAD                                                                             \
	"  --source NAME          dead letters from this source\n"                               \
	"  --topic PATTERN        topics matching this glob (fnmatch: customers/*)\n"            \
	"  --route NAME           dead letters of this route\n"                                  \
	"  --destination NAME     dead letters whose route goes to this destination\n"         \
	"  --error NAME           the last attempt's Odoo error name contains NAME\n"            \
	"                         (ValidationError, psycopg2, transport.connect, ...)\n"         \
	"  --since TIME           dead-lettered at or after TIME (ISO 8601 such as\n"            \
	"                         2025-06-01T12:00 or 2025-06-01T10:00Z, or 2h for\n"            \
	"                         two hours ago)\n"                                              \
	"  --until TIME           dead-lettered before TIME\n"                                   \
	"  --grep TEXT            TEXT in the dead reason or the last error message\n"

static const struct verb verbs[] = {
	{ "status", NULL, ctl_status, "status",
	  "The queue at a glance: queued events (due now, delayed, parked behind\n"
	  "their lane), dead letters, the oldest event's age, counts per source and\n"
	  "per route, the circuit to Odoo and since when, pauses, the last refused\n"
	  "configuration, and whether odoo-relayd has the store open.\n"
	  "Exit status: 0 healthy; 1 degraded (circuit not closed, delivery paused,\n"
	  "or no odoo-relayd on the store); 66, 74 or 77 when the store cannot be read.\n" },
	{ "events", "list", ctl_events_list, "events list [--delivered] [FILTERS] [--limit N]",
	  "Queued events, oldest first, with their state: due (deliverable now),\n"
	  "delayed (waiting for a retry) or parked (behind an earlier event of its lane).\n"
	  "With --delivered, the history instead: events that left the queue\n"
	  "(delivered, superseded, stale, dropped, unrouted) within delivery.retention_s,\n"
	  "with their outcome and what the destination answered.\n"
	  "  --delivered            list the history\n"
	  FILTERS_EVENTS
	  "  --since TIME, --until TIME  with --delivered: left the queue in this range\n"
	  "  --limit N              show at most N [50]; 0 shows all\n" },
	{ "events", "show", ctl_events_show, "events show ID",
	  "One queued event in full: kept headers, the body (pretty-printed when it is\n"
	  "JSON), and every attempt with its time, class, HTTP status and Odoo error.\n"
	  "An event in the history is shown with its outcome: when it left the queue,\n"
	  "the destination, the batch, and what the destination answered.\n" },
	{ "dead", "list", ctl_dead_list, "dead list [FILTERS] [--limit N]",
	  "Dead letters, oldest first, with the error that killed them.\n" FILTERS_DEAD
	  "  --limit N              show at most N [50]; 0 shows all\n" },
	{ "dead", "show", ctl_dead_show, "dead show ID",
	  "One dead letter in full: as events show, plus when and why it died and\n"
	  "the request last sent to Odoo; for an edited one, its body versions and a\n"
	  "diff of the original and the current body.\n" },
	{ "dead", "replay", ctl_dead_replay, "dead replay ID... | --all | FILTERS [--dry-run]",
	  "Move dead letters back into the queue: due now, attempt counter reset,\n"
	  "history kept. odoo-relayd picks them up within a second, running or at its\n"
	  "next start.\n"
	  "  --all                  every dead letter\n" FILTERS_DEAD
	  "  --dry-run              list what would move, change nothing\n" },
	{ "dead", "drop", ctl_dead_drop, "dead drop ID... | FILTERS [--dry-run] [--yes]",
	  "Delete dead letters for good. More than one needs --yes.\n" FILTERS_DEAD
	  "  --dry-run              list what would go, change nothing\n"
	  "  --yes                  confirm dropping more than one\n" },
	{ "pause", NULL, ctl_pause, "pause [--route NAME | --destination NAME] [--force]",
	  "Stop delivery, of every route, of one route or to one destination;\n"
	  "odoo-relayd stops starting calls within a second. Webhooks are still\n"
	  "accepted and queued.\n"
	  "  --route NAME           pause this route only\n"
	  "  --destination NAME     pause delivery to this destination only\n"
	  "  --force                accept a name the configuration does not know\n" },
	{ "resume", NULL, ctl_resume, "resume [--route NAME | --destination NAME] [--force]",
	  "Start delivery again (every route, one route, or one destination);\n"
	  "within a second.\n"
	  "  --route NAME           resume this route only\n"
	  "  --destination NAME     resume delivery to this destination\n"
	  "  --force                accept a name the configuration does not know\n" },
	{ "sync", NULL, ctl_sync, "sync SOURCE [--since TIME] [--id ID...] [--wait[=SECONDS]]",
	  "Poll a source of kind odoo-poll now, without waiting for its interval:\n"
	  "odoo-relayd takes the request from the store within a second (running, or\n"
	  "at its next start). Records whose projection did not change are not sent\n"
	  "again.\n"
	  "  --since TIME           read from TIME (\"2026-12-05 23:22:41\", UTC as Odoo\n"
	  "                         writes it; a time with a zone; or a duration such\n"
	  "                         as 2h, before now), not from the cursor less its\n"
	  "                         overlap; the cursor stays\n"
	  "  --id ID                send these records again whatever their hash\n"
	  "                         (repeat it, or 7,8,9), read through the source's\n"
	  "                         domain and archive rule: others are not sent\n"
	  "  --wait[=SECONDS]       wait (300 s) until odoo-relayd has run it and say\n"
	  "                         how it went: exit 1 when ids were not in the\n"
	  "                         source, 69 when it failed, 75 when not run in time\n" },
	{ "shape", NULL, ctl_shape, "shape",
	  "The shape of the backlog: queued events by age (0-1m, 1-5m, 5-30m,\n"
	  "30m-2h, 2-12h, 12h+) per source, and dead letters by Odoo error per route.\n" },
	{ "dead", "edit", ctl_dead_edit,
	  "dead edit ID [--set /POINTER=VALUE]... | [--body-file FILE] [--replay]",
	  "Correct the body of a dead letter: in $VISUAL or $EDITOR (vi) on a\n"
	  "pretty-printed copy, or with --set or --body-file. A JSON source's body\n"
	  "must stay valid JSON. The original body is kept as version 1 and the edit\n"
	  "is stored as a new version (dead show lists them with a diff); the dead\n"
	  "letter stays dead unless --replay is given.\n"
	  "  --set /POINTER=VALUE   set one member (RFC 6901 pointer); VALUE is JSON,\n"
	  "                         or a string when it does not parse (repeatable)\n"
	  "  --body-file FILE       the new body, whole (- for standard input)\n"
	  "  --replay               replay it at once, with the edited body\n" },
	{ "trace", NULL, ctl_trace, "trace KEY [--kind dedup|lane|xid|odoo] [--source NAME]",
	  "Every event that matches KEY, queued, dead or in the history, and its\n"
	  "story in time order: received, attempts, dead-lettered, edits, replays and\n"
	  "drops, and how it left the queue (delivered, with what the destination\n"
	  "answered). KEY is a sender's event id (dedup key), a lane (ordering key),\n"
	  "an external ID (odoo_relay.shop_customer_42), or an Odoo record as\n"
	  "model,id (res.partner,42); all kinds are tried unless --kind says one.\n"
	  "Exit status 1 when nothing matches.\n"
	  "  --kind KIND            dedup, lane, xid or odoo only\n"
	  "  --source NAME          events of this source only\n" },
	{ "audit", NULL, ctl_audit, "audit [--since TIME] [--until TIME] [--user NAME] [--verb VERB] [--id ID]",
	  "What operators changed through " CTL_PROG " (replay, drop, edit, pause,\n"
	  "resume, compact, ...): when, the Unix user, the verb and its arguments, how\n"
	  "many events. Oldest first; the last 50 unless --limit says otherwise.\n"
	  "  --since TIME, --until TIME  a time range (ISO 8601, or 2h for two hours ago)\n"
	  "  --user NAME            writes by this Unix user\n"
	  "  --verb VERB            verbs containing VERB (replay, pause, ...)\n"
	  "  --id ID                writes that touched event ID\n"
	  "  --limit N              the last N [50]; 0 shows all\n" },
	{ "compact", NULL, ctl_compact, "compact [--dry-run]",
	  "Rewrite the store without its free pages and swap the copy in. Refuses\n"
	  "while any process (odoo-relayd) has the store open: stop it first\n"
	  "(systemctl stop odoo-relay).\n"
	  "  --dry-run              report the expected saving, change nothing\n" },
};

#define N_VERBS (sizeof(verbs) / sizeof(verbs[0]))

static void
global_usage(FILE *f)
{
	fprintf(f, "usage: " CTL_PROG " [--config FILE | --state-dir DIR] [--json] VERB [ARGS]\n\n"
	           "verbs:\n");
	for (size_t i = 0; i < N_VERBS; i++)
		fprintf(f, "  %s\n", verbs[i].synopsis);
	fprintf(f, "  help [VERB]\n\n"
	           "global options:\n"
	           "  -c, --config FILE      the daemon's configuration [" CTL_DEFAULT_CONFIG "]\n"
	           "  -s, --state-dir DIR    the store's directory, without a configuration\n"
	           "  -j, --json             output for programs (see odoo-relayctl(8))\n"
	           "  -h, --help             this text; VERB --help for a verb's\n"
	           "  -V, --version\n");
}

static const struct verb *
find_verb(const char *name, const char *sub)
{
	for (size_t i = 0; i < N_VERBS; i++)
		if (strcmp(verbs[i].name, name) == 0 &&
		    (!verbs[i].sub || (sub && strcmp(verbs[i].sub, sub) == 0)))
			return &verbs[i];
	return NULL;
}

static int
has_subs(const char *name)
{
	for (size_t i = 0; i < N_VERBS; i++)
		if (strcmp(verbs[i].name, name) == 0)
			return verbs[i].sub != NULL;
	return 0;
}

static int
is_verb(const char *name)
{
	for (size_t i = 0; i < N_VERBS; i++)
		if (strcmp(verbs[i].name, name) == 0)
			return 1;
	return 0;
}

/* The synopses of verb name (all of its sub-verbs), one per line. */
static void
print_synopses(FILE *f, const char *name)
{
	for (size_t i = 0; i < N_VERBS; i++)
		if (strcmp(verbs[i].name, name) == 0)
			fprintf(f, "usage: " CTL_PROG " [GLOBAL] %s\n", verbs[i].synopsis);
}

int
ctl_help(const char *name)
{
	char word[32];
	const char *sp = strchr(name, ' ');
	size_t wl = sp ? (size_t)(sp - name) : strlen(name);
	int shown = 0;

	if (wl >= sizeof(word))
		wl = sizeof(word) - 1;
	memcpy(word, name, wl);
	word[wl] = '\0';
	for (size_t i = 0; i < N_VERBS; i++) {
		if (strcmp(verbs[i].name, word) != 0 || (sp && verbs[i].sub && strcmp(verbs[i].sub, sp + 1)))
			continue;
		printf("%susage: " CTL_PROG " [GLOBAL] %s\n\n%s", shown ? "\n" : "", verbs[i].synopsis,
		       verbs[i].help);
		printf("  --json                 output for programs\n");
		shown = 1;
	}
	if (!shown) {
		global_usage(stdout);
		return 0;
	}
	printf("\nSee odoo-relayctl(8).\n");
	return 0;
}

static void ctl_verr(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* "odoo-relayctl: <message>" on stderr, after whatever stdout holds. */
static void
ctl_verr(const char *fmt, va_list ap)
{
	fflush(stdout);
	fputs(CTL_PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void
ctl_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ctl_verr(fmt, ap);
	va_end(ap);
}

int
ctl_usage(const struct ctl *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ctl_verr(fmt, ap);
	va_end(ap);
	if (c && c->verb) {
		const struct verb *v = NULL;
		char word[32];
		const char *sp = strchr(c->verb, ' ');

		snprintf(word, sizeof(word), "%.*s", sp ? (int)(sp - c->verb) : (int)strlen(c->verb),
		         c->verb);
		v = find_verb(word, sp ? sp + 1 : NULL);
		if (v)
			fprintf(stderr, "usage: " CTL_PROG " [GLOBAL] %s\n", v->synopsis);
		fprintf(stderr, "(" CTL_PROG " %s --help for more)\n", c->verb);
	} else {
		fprintf(stderr, "usage: " CTL_PROG " [--config FILE | --state-dir DIR] [--json] VERB "
		                "[ARGS]\n(" CTL_PROG " --help for the verbs)\n");
	}
	return EX_USAGE;
}

int
ctl_getopt_error(const struct ctl *c, int ch, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";

	if (ch == ':')
		return ctl_usage(c, "option %s needs a value", arg);
	if (optopt && optopt < 0x100 && isprint(optopt))
		return ctl_usage(c, "unknown option -%c", optopt);
	return ctl_usage(c, "unknown option %s", arg);
}

const char *
ctl_strerror(int rc)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s", relay_strerror(rc));
	/* errno texts start with a capital; our messages do not */
	if (rc > 0 && isupper((unsigned char)buf[0]) && !isupper((unsigned char)buf[1]))
		buf[0] = (char)tolower((unsigned char)buf[0]);
	return buf;
}

int
ctl_exit_of(int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case ENOENT:
	case ENOTDIR:
		return EX_NOINPUT;
	case EACCES:
	case EPERM:
	case EROFS:
		return EX_NOPERM;
	case ENOMEM:
		return EX_OSERR;
	case -RELAY_ECONFIG:
		return EX_CONFIG;
	case -RELAY_EVERSION:
	case -RELAY_ECORRUPT:
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
	case MDB_CORRUPTED:
		return EX_DATAERR;
	case -RELAY_EBUSY:
		return EX_TEMPFAIL;
	case -RELAY_EINVAL:
		return EX_USAGE;
	default:
		return EX_IOERR;
	}
}

int
ctl_parse_id(const char *s, uint64_t *id)
{
	char *end;
	unsigned long long v;

	if (!s || !isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v == 0)
		return -1;
	*id = (uint64_t)v;
	return 0;
}

/* ---- configuration and store ---- */

/* Loads the configuration once, unless --state-dir said where the store is.
 * Returns 0 or an exit status (message printed). */
static int
load_config(struct ctl *c)
{
	struct relay_config_error err;
	char msg[1024];
	int rc;

	if (c->cfg || !c->config_path)
		return 0;
	/* The secrets are the daemon's business: an operator in the group
	 * odoo-relay may inspect the queue without being able to read them. */
	rc = relay_config_load_flags(c->config_path, RELAY_CONFIG_NO_SECRETS, &c->cfg, &err);
	if (rc) {
		relay_config_error_format(&err, msg, sizeof(msg));
		if (rc == ENOENT && strcmp(err.file, c->config_path) == 0)
			ctl_err("cannot read configuration %s: no such file or directory (give --config FILE, "
			        "or --state-dir DIR for the store alone)",
			        c->config_path);
		else if (rc > 0)
			ctl_err("cannot load configuration %s: %s (--state-dir DIR reads the store without "
			        "it)",
			        c->config_path, msg);
		else
			ctl_err("invalid configuration: %s", msg);
		return rc == -RELAY_ECONFIG ? EX_CONFIG : ctl_exit_of(rc);
	}
	rc = relay_routes_compile(c->cfg, &c->routes, &err);
	if (rc) {
		relay_config_error_format(&err, msg, sizeof(msg));
		ctl_err("invalid configuration: %s", msg);
		return rc == -RELAY_ECONFIG ? EX_CONFIG : ctl_exit_of(rc);
	}
	c->state_dir = c->cfg->state_dir;
	c->map_size = c->cfg->map_size;
	return 0;
}

static void
owner_names(const struct stat *sb, char *user, size_t un, char *group, size_t gn)
{
	struct passwd *pw = getpwuid(sb->st_uid);
	struct group *gr = getgrgid(sb->st_gid);

	if (pw)
		snprintf(user, un, "%s", pw->pw_name);
	else
		snprintf(user, un, "uid %u", (unsigned)sb->st_uid);
	if (gr)
		snprintf(group, gn, "%s", gr->gr_name);
	else
		snprintf(group, gn, "gid %u", (unsigned)sb->st_gid);
}

/* After EACCES: find the path that refused, and say what access is needed
 * and who has it. */
static int
explain_eacces(const struct ctl *c, int write)
{
	char data[PATH_MAX], lock[PATH_MAX], user[64], group[64];
	struct stat sb;
	int fd;

	snprintf(data, sizeof(data), "%s/data.mdb", c->state_dir);
	snprintf(lock, sizeof(lock), "%s/lock.mdb", c->state_dir);
	if (stat(data, &sb) != 0) {
		if (stat(c->state_dir, &sb) == 0)
			owner_names(&sb, user, sizeof(user), group, sizeof(group));
		else
			snprintf(group, sizeof(group), "odoo-relay");
		ctl_err("need access to directory %s: run as root or as a member of group %s",
		        c->state_dir, group);
		return EX_NOPERM;
	}
	owner_names(&sb, user, sizeof(user), group, sizeof(group));
	if ((fd = open(data, (write ? O_RDWR : O_RDONLY) | O_CLOEXEC)) < 0) {
		if (write)
			ctl_err("need write access to %s: run as root or as user %s", data, user);
		else
			ctl_err("need read access to %s: run as root or as a member of group %s", data,
			        group);
		return EX_NOPERM;
	}
	close(fd);
	/* LMDB records every reader in lock.mdb, so reading needs to write it.
	 * Nothing of this process has the environment open now: closing this
	 * descriptor drops no lock of ours. */
	if ((fd = open(lock, O_RDWR | O_CLOEXEC)) < 0 && errno == EACCES) {
		ctl_err("need write access to %s (LMDB registers its readers there): run as root or as "
		        "user %s",
		        lock, user);
		return EX_NOPERM;
	}
	if (fd >= 0)
		close(fd);
	ctl_err("need %s access to %s and write access to directory %s: run as root or as user %s",
	        write ? "write" : "read", data, c->state_dir, user);
	return EX_NOPERM;
}

static int
missing_store(const char *path)
{
	ctl_err("cannot open store %s: no such file or directory (is odoo-relayd installed and "
	        "started once?)",
	        path);
	return EX_NOINPUT;
}

int
ctl_open(struct ctl *c, int write)
{
	char data[PATH_MAX], lock[PATH_MAX];
	struct stat sb, db;
	int rc, lock_existed;

	if ((rc = load_config(c)))
		return rc;
	if (c->st)
		return 0;
	if (stat(c->state_dir, &sb) != 0) {
		if (errno == ENOENT)
			return missing_store(c->state_dir);
		if (errno == EACCES)
			return explain_eacces(c, write);
		ctl_err("cannot open store %s: %s", c->state_dir, ctl_strerror(errno));
		return EX_IOERR;
	}
	if (!S_ISDIR(sb.st_mode)) {
		ctl_err("cannot open store %s: not a directory", c->state_dir);
		return EX_NOINPUT;
	}
	snprintf(data, sizeof(data), "%s/data.mdb", c->state_dir);
	snprintf(lock, sizeof(lock), "%s/lock.mdb", c->state_dir);
	/* A read-write open would make a new store where there is none. */
	if (stat(data, &db) != 0) {
		if (errno == ENOENT)
			return missing_store(data);
		if (errno == EACCES)
			return explain_eacces(c, write);
		ctl_err("cannot open store %s: %s", data, ctl_strerror(errno));
		return EX_IOERR;
	}
	lock_existed = access(lock, F_OK) == 0;
	/* LMDB has no checksums: a damaged page can crash a reader. The store
	 * is walked once in a child first, as odoo-relayd does at start. */
	rc = relay_store_verify(c->state_dir);
	if (rc == -RELAY_ECORRUPT || rc == MDB_INVALID || rc == MDB_CORRUPTED ||
	    rc == MDB_PAGE_NOTFOUND) {
		ctl_err("cannot open store %s: the store is damaged or not a store (%s): restore "
		        "it from a backup, or move the directory away",
		        c->state_dir, ctl_strerror(rc));
		return EX_DATAERR;
	}
	rc = relay_store_open(c->state_dir, c->map_size, write ? 0 : RELAY_STORE_RDONLY, &c->st);
	switch (rc) {
	case 0:
		break;
	case ENOENT:
		ctl_err("cannot open store %s: no odoo-relay store in %s (is odoo-relayd installed and "
		        "started once?)",
		        c->state_dir, data);
		return EX_NOINPUT;
	case EACCES:
		return explain_eacces(c, write);
	case -RELAY_EVERSION:
		ctl_err("cannot open store %s: it was written by a newer odoo-relay (schema above %d); "
		        "use that version's odoo-relayctl",
		        c->state_dir, RELAY_STORE_SCHEMA);
		return EX_DATAERR;
	default:
		ctl_err("cannot open store %s: %s", c->state_dir, ctl_strerror(rc));
		return ctl_exit_of(rc);
	}
	/* Run as root where the daemon never ran, LMDB made lock.mdb root's:
	 * odoo-relayd, which runs as the store's owner, could not open it. */
	if (!lock_existed && geteuid() == 0 && (db.st_uid != 0 || db.st_gid != 0) &&
	    chown(lock, db.st_uid, db.st_gid) != 0)
		ctl_err("warning: cannot give %s to the owner of %s: %s", lock, data,
		        ctl_strerror(errno));
	return 0;
}

void
ctl_close(struct ctl *c)
{
	relay_store_close(c->st);
	c->st = NULL;
}

int
ctl_config(struct ctl *c)
{
	return load_config(c);
}

/* Whether the command line of pid has an argument whose last path
 * component is odoo-relayd. */
static int
cmdline_runs(long pid)
{
	char path[64], buf[4096];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
	if (!(f = fopen(path, "re")))
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (size_t i = 0; i < n; i += strlen(buf + i) + 1) {
		const char *slash = strrchr(buf + i, '/');
		if (strcmp(slash ? slash + 1 : buf + i, "odoo-relayd") == 0)
			return 1;
	}
	return 0;
}

int
ctl_holder(const char *dir, pid_t *pid, char *name, size_t namesz)
{
	char lock[PATH_MAX], path[64];
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
	int fd, rc = 0;
	FILE *f;

	*pid = 0;
	if (namesz)
		name[0] = '\0';
	snprintf(lock, sizeof(lock), "%s/lock.mdb", dir);
	if ((fd = open(lock, O_RDWR | O_CLOEXEC)) < 0 && errno == EACCES)
		fd = open(lock, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fcntl(fd, F_GETLK, &fl) != 0)
		rc = -errno;
	else if (fl.l_type != F_UNLCK)
		rc = 1;
	close(fd);
	if (rc != 1)
		return rc;
	*pid = fl.l_pid;
	snprintf(path, sizeof(path), "/proc/%ld/comm", (long)fl.l_pid);
	if (namesz && fl.l_pid > 0 && (f = fopen(path, "re"))) {
		if (fgets(name, (int)namesz, f))
			name[strcspn(name, "\n")] = '\0';
		fclose(f);
	}
	/* Run under a wrapper (valgrind, a debugger), the process has the
	 * wrapper's name; its command line still names the program. */
	if (namesz && fl.l_pid > 0 && strcmp(name, "odoo-relayd") != 0 && cmdline_runs(fl.l_pid))
		snprintf(name, namesz, "odoo-relayd");
	return 1;
}

/* ---- main ---- */

static int
run(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL, *state_dir = NULL;
	char name[64];
	const struct verb *v;
	int ch;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:c:s:jhV", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': config = optarg; break;
		case 's': state_dir = optarg; break;
		case 'j': c->json = 1; break;
		case 'h': global_usage(stdout); return 0;
		case 'V': printf(CTL_PROG " %s\n", RELAY_VERSION); return 0;
		default: return ctl_getopt_error(c, ch, argv);
		}
	}
	if (config && state_dir)
		return ctl_usage(c, "--config and --state-dir exclude each other");
	if (state_dir && !*state_dir)
		return ctl_usage(c, "--state-dir needs a directory");
	c->config_path = state_dir ? NULL : config ? config : CTL_DEFAULT_CONFIG;
	c->state_dir = state_dir;
	if (optind >= argc)
		return ctl_usage(c, "no verb given");
	argv += optind;
	argc -= optind;

	if (strcmp(argv[0], "help") == 0) {
		if (argc < 2) {
			global_usage(stdout);
			return 0;
		}
		snprintf(name, sizeof(name), "%s%s%s", argv[1], argc > 2 ? " " : "", argc > 2 ? argv[2] : "");
		if (!is_verb(argv[1]))
			return ctl_usage(c, "unknown verb \"%s\"", argv[1]);
		return ctl_help(name);
	}
	if (!is_verb(argv[0]))
		return ctl_usage(c, "unknown verb \"%s\"", argv[0]);
	if (has_subs(argv[0])) {
		if (argc < 2 || argv[1][0] == '-') {
			if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
				return ctl_help(argv[0]);
			fflush(stdout);
			fprintf(stderr, CTL_PROG ": %s needs a sub-verb\n", argv[0]);
			print_synopses(stderr, argv[0]);
			return EX_USAGE;
		}
		if (!(v = find_verb(argv[0], argv[1]))) {
			fflush(stdout);
			fprintf(stderr, CTL_PROG ": unknown verb \"%s %s\"\n", argv[0], argv[1]);
			print_synopses(stderr, argv[0]);
			return EX_USAGE;
		}
		snprintf(name, sizeof(name), "%s %s", v->name, v->sub);
		argv++;
		argc--;
	} else {
		v = find_verb(argv[0], NULL);
		snprintf(name, sizeof(name), "%s", v->name);
	}
	c->verb = name;
	optind = 0; /* GNU getopt: start afresh on the verb's arguments */
	return v->run(c, argc, argv);
}

int
main(int argc, char **argv)
{
	struct ctl c = { 0 };
	int rc;

	tzset();
	c.now_ms = relay_wall_ms();
	rc = run(&c, argc, argv);
	ctl_close(&c);
	relay_routes_free(c.routes);
	relay_config_free(c.cfg);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		ctl_err("cannot write the output: %s", ctl_strerror(errno));
		if (!rc)
			rc = EX_IOERR;
	}
	return rc;
}
