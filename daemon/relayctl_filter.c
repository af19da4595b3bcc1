/*
 * odoo-relayctl: filters over events and dead letters, and the durations
 * and times they take. Pure functions of their arguments (and of the
 * local time zone, for times without one).
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "relayctl.h"

void
ctl_filter_init(struct ctl_filter *f, unsigned long limit)
{
	memset(f, 0, sizeof(*f));
	f->older_ms = f->newer_ms = f->since_ms = f->until_ms = -1;
	f->limit = limit;
}

int
ctl_parse_duration(const char *s, int64_t *ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
		{ "d", 86400000 }, { "w", 604800000 },
	};
	int64_t total = 0;
	const char *p = s;

	if (!s || !*s)
		return -1;
	while (*p) {
		char *end;
		unsigned long long n;
		size_t i, ul = 0;

		if (!isdigit((unsigned char)*p))
			return -1;
		errno = 0;
		n = strtoull(p, &end, 10);
		if (errno || n > (unsigned long long)INT64_MAX / 1000)
			return -1;
		p = end;
		if (!*p && p == s + strspn(s, "0123456789")) {
			/* a bare number: seconds */
			total += (int64_t)n * 1000;
			break;
		}
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			ul = strlen(units[i].unit);
			/* "m" must not take the "m" of "ms" */
			if (strncmp(p, units[i].unit, ul) == 0 && !isalpha((unsigned char)p[ul]))
				break;
		}
		if (i == sizeof(units) / sizeof(units[0]))
			return -1;
		if ((int64_t)n > (INT64_MAX - total) / units[i].ms)
			return -1;
		total += (int64_t)n * units[i].ms;
		p += ul;
	}
	*ms = total;
	return 0;
}

/* "Z", "+HH", "+HHMM" or "+HH:MM" into seconds east of UTC. */
static int
parse_zone(const char *p, long *off)
{
	int sign, hh, mm = 0;

	if (strcmp(p, "Z") == 0 || strcmp(p, "z") == 0) {
		*off = 0;
		return 0;
	}
	if (*p != '+' && *p != '-')
		return -1;
	sign = *p++ == '-' ? -1 : 1;
	if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]))
		return -1;
	hh = (p[0] - '0') * 10 + (p[1] - '0');
	p += 2;
	if (*p == ':')
		p++;
	if (*p) {
		if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]) || p[2])
			return -1;
		mm = (p[0] - '0') * 10 + (p[1] - '0');
	}
	if (hh > 23 || mm > 59)
		return -1;
	*off = sign * (hh * 3600L + mm * 60L);
	return 0;
}

int
ctl_parse_time(const char *s, int64_t now_ms, int64_t *ms)
{
	static const char *const forms[] = {
		"%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M",
		"%Y-%m-%d",
	};
	int64_t d, frac_ms = 0;
	struct tm tm;
	const char *rest = NULL;
	time_t t;
	long off;

	if (!s || !*s)
		return -1;
	if (ctl_parse_duration(s, &d) == 0) {
		*ms = now_ms - d;
		return 0;
	}
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]) && !rest; i++) {
		memset(&tm, 0, sizeof(tm));
		rest = strptime(s, forms[i], &tm);
		/* strptime takes "12" for %H:%M's hour and stops: want all or a zone */
		if (rest && *rest && *rest != '.' && *rest != 'Z' && *rest != 'z' && *rest != '+' &&
		    *rest != '-')
			rest = NULL;
		/* a date alone must not be followed by a zone: "2025-06-01-02" */
		if (rest && i == 4 && *rest)
			rest = NULL;
	}
	if (!rest)
		return -1;
	if (*rest == '.') {
		int digits = 0;

		for (rest++; isdigit((unsigned char)*rest); rest++, digits++)
			if (digits < 3)
				frac_ms = frac_ms * 10 + (*rest - '0');
		if (!digits)
			return -1;
		for (; digits < 3; digits++)
			frac_ms *= 10;
	}
	if (*rest) {
		if (parse_zone(rest, &off))
			return -1;
		tm.tm_isdst = 0;
		if ((t = timegm(&tm)) == (time_t)-1)
			return -1;
		t -= off;
	} else {
		tm.tm_isdst = -1;
		if ((t = mktime(&tm)) == (time_t)-1)
			return -1;
	}
	*ms = (int64_t)t * 1000 + frac_ms;
	return 0;
}

int
ctl_filter_set(const struct ctl *c, struct ctl_filter *f, int code, const char *arg)
{
	int64_t v;

	switch (code) {
	case CTL_F_SOURCE: f->source = arg; break;
	case CTL_F_TOPIC: f->topic = arg; break;
	case CTL_F_ROUTE: f->route = arg; break;
	case CTL_F_DEST: f->dest = arg; break;
	case CTL_F_LANE: f->lane = arg; break;
	case CTL_F_ERROR: f->error = arg; break;
	case CTL_F_GREP: f->grep = arg; break;
	case CTL_F_OLDER:
	case CTL_F_NEWER:
		if (ctl_parse_duration(arg, &v))
			return ctl_usage(c, "bad duration \"%s\" for --%s-than (try 90s, 5m, 2h, 1d or 1h30m)",
			                 arg, code == CTL_F_OLDER ? "older" : "newer");
		*(code == CTL_F_OLDER ? &f->older_ms : &f->newer_ms) = v;
		break;
	case CTL_F_SINCE:
	case CTL_F_UNTIL:
		if (ctl_parse_time(arg, c->now_ms, &v))
			return ctl_usage(c, "bad time \"%s\" for --%s (try 2025-06-01T12:00, "
			                    "2025-06-01T10:00:00Z or 2h for two hours ago)",
			                 arg, code == CTL_F_SINCE ? "since" : "until");
		*(code == CTL_F_SINCE ? &f->since_ms : &f->until_ms) = v;
		break;
	case CTL_F_LIMIT: {
		char *end;
		unsigned long long n;

		errno = 0;
		n = strtoull(arg, &end, 10);
		if (!isdigit((unsigned char)arg[0]) || *end || errno || n > ULONG_MAX)
			return ctl_usage(c, "bad number \"%s\" for --limit", arg);
		f->limit = (unsigned long)n;
		return 0;
	}
	default:
		return ctl_usage(c, "unknown filter");
	}
	if (!*arg)
		return ctl_usage(c, "empty value for a filter");
	f->any = 1;
	return 0;
}

const struct relay_attempt *
ctl_last_attempt(const struct relay_event *ev)
{
	return ev->n_history ? &ev->history[ev->n_history - 1] : NULL;
}

const char *
ctl_route_of(const struct ctl *c, const struct relay_event *ev)
{
	const struct relay_route *r;

	if (ev->route && *ev->route)
		return ev->route;
	if (!c->routes || !ev->source)
		return NULL;
	r = relay_routes_match(c->routes, ev->source, ev->topic ? ev->topic : "");
	return r ? relay_route_name(r) : NULL;
}

static int
eq(const char *want, const char *have)
{
	return strcmp(want, have ? have : "") == 0;
}

static int
contains(const char *hay, const char *needle)
{
	return hay && strstr(hay, needle) != NULL;
}

int
ctl_filter_match(const struct ctl *c, const struct ctl_filter *f, const struct relay_event *ev)
{
	const struct relay_attempt *last = ctl_last_attempt(ev);
	int64_t age = c->now_ms - ev->received_ms;

	if (f->source && !eq(f->source, ev->source))
		return 0;
	if (f->topic && fnmatch(f->topic, ev->topic ? ev->topic : "", 0) != 0)
		return 0;
	if (f->lane && !eq(f->lane, ev->lane))
		return 0;
	if (f->route && !eq(f->route, ctl_route_of(c, ev)))
		return 0;
	if (f->dest) {
		/* by the configuration: the destination of the event's route */
		const char *rn = ctl_route_of(c, ev);
		const struct relay_route *r = rn && c->routes ? relay_routes_find(c->routes, rn) : NULL;

		if (!r || !eq(f->dest, relay_route_destination(r)))
			return 0;
	}
	if (f->older_ms >= 0 && !(age > f->older_ms))
		return 0;
	if (f->newer_ms >= 0 && !(age < f->newer_ms))
		return 0;
	if (f->since_ms >= 0 && ev->dead_ms < f->since_ms)
		return 0;
	if (f->until_ms >= 0 && ev->dead_ms >= f->until_ms)
		return 0;
	if (f->error && !(last && contains(last->error_name, f->error)))
		return 0;
	if (f->grep && !contains(ev->dead_reason, f->grep) &&
	    !(last && contains(last->message, f->grep)))
		return 0;
	return 1;
}
