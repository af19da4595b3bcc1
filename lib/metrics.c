/* Metrics in the Prometheus text format: see include/odoo_relay/metrics.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "odoo_relay/metrics.h"

enum kind { COUNTER, GAUGE, HISTOGRAM };

static const double bucket_bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };
#define NBUCKETS (sizeof(bucket_bounds) / sizeof(bucket_bounds[0]))

struct series {
	char *label, *value;
	char *label2, *value2;      /* a second label, or NULL */
	double v;
	uint64_t buckets[NBUCKETS];
	uint64_t count;
	double sum;
	struct series *next;
};

struct metric {
	char *name, *help;
	enum kind kind;
	struct series *series;
	struct metric *next;
};

struct relay_metrics {
	struct metric *head, *tail; /* in order of first use, for a stable output */
};

struct relay_metrics *
relay_metrics_new(void)
{
	return calloc(1, sizeof(struct relay_metrics));
}

void
relay_metrics_free(struct relay_metrics *m)
{
	if (!m)
		return;
	for (struct metric *x = m->head, *nx; x; x = nx) {
		nx = x->next;
		for (struct series *s = x->series, *ns; s; s = ns) {
			ns = s->next;
			free(s->label);
			free(s->value);
			free(s->label2);
			free(s->value2);
			free(s);
		}
		free(x->name);
		free(x->help);
		free(x);
	}
	free(m);
}

static int
same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static struct metric *
metric_find(const struct relay_metrics *m, const char *name)
{
	for (struct metric *x = m->head; x; x = x->next)
		if (strcmp(x->name, name) == 0)
			return x;
	return NULL;
}

static struct series *
series_get2(struct relay_metrics *m, const char *name, const char *help, enum kind kind,
            const char *label, const char *value, const char *label2, const char *value2)
{
	struct metric *x = metric_find(m, name);
	if (!x) {
		x = calloc(1, sizeof(*x));
		if (!x || !(x->name = strdup(name)) || !(x->help = strdup(help ? help : name))) {
			if (x)
				free(x->name);
			free(x);
			return NULL;
		}
		x->kind = kind;
		if (m->tail)
			m->tail->next = x;
		else
			m->head = x;
		m->tail = x;
	}
	struct series **pp = &x->series;
	for (; *pp; pp = &(*pp)->next)
		if (same((*pp)->label, label) && same((*pp)->value, value) &&
		    same((*pp)->label2, label2) && same((*pp)->value2, value2))
			return *pp;
	struct series *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	if ((label && !(s->label = strdup(label))) || (value && !(s->value = strdup(value))) ||
	    (label2 && !(s->label2 = strdup(label2))) || (value2 && !(s->value2 = strdup(value2)))) {
		free(s->label);
		free(s->value);
		free(s->label2);
		free(s);
		return NULL;
	}
	*pp = s;
	return s;
}

static struct series *
series_get(struct relay_metrics *m, const char *name, const char *help, enum kind kind,
           const char *label, const char *value)
{
	return series_get2(m, name, help, kind, label, value, NULL, NULL);
}

void
relay_metrics_add2(struct relay_metrics *m, const char *name, const char *help,
                   const char *label, const char *value, const char *label2,
                   const char *value2, uint64_t n)
{
	struct series *s = series_get2(m, name, help, COUNTER, label, value, label2, value2);
	if (s)
		s->v += (double)n;
}

void
relay_metrics_set2(struct relay_metrics *m, const char *name, const char *help,
                   const char *label, const char *value, const char *label2,
                   const char *value2, double v)
{
	struct series *s = series_get2(m, name, help, GAUGE, label, value, label2, value2);
	if (s)
		s->v = v;
}

void
relay_metrics_add(struct relay_metrics *m, const char *name, const char *help,
                  const char *label, const char *value, uint64_t n)
{
	struct series *s = series_get(m, name, help, COUNTER, label, value);
	if (s)
		s->v += (double)n;
}

void
relay_metrics_set(struct relay_metrics *m, const char *name, const char *help,
                  const char *label, const char *value, double v)
{
	struct series *s = series_get(m, name, help, GAUGE, label, value);
	if (s)
		s->v = v;
}

void
relay_metrics_observe(struct relay_metrics *m, const char *name, const char *help,
                      double seconds)
{
	relay_metrics_observe1(m, name, help, NULL, NULL, seconds);
}

void
relay_metrics_observe1(struct relay_metrics *m, const char *name, const char *help,
                       const char *label, const char *value, double seconds)
{
	struct series *s = series_get(m, name, help, HISTOGRAM, label, value);
	if (!s)
		return;
	for (size_t i = 0; i < NBUCKETS; i++)
		if (seconds <= bucket_bounds[i])
			s->buckets[i]++;
	s->count++;
	s->sum += seconds;
}

/* label="value", the value escaped as the text format requires: \\, \" and \n. */
static int
add_pair(struct evbuffer *out, const char *label, const char *value)
{
	int rc = evbuffer_add_printf(out, "%s=\"", label) < 0;

	for (const char *p = value ? value : ""; *p; p++) {
		if (*p == '\\' || *p == '"')
			rc |= evbuffer_add_printf(out, "\\%c", *p) < 0;
		else if (*p == '\n')
			rc |= evbuffer_add(out, "\\n", 2);
		else
			rc |= evbuffer_add(out, p, 1);
	}
	rc |= evbuffer_add(out, "\"", 1);
	return rc;
}

static int
add_label(struct evbuffer *out, const struct series *s, const char *extra)
{
	const char *label = s ? s->label : NULL;
	int rc = 0;

	if (!label && !extra)
		return 0;
	rc |= evbuffer_add(out, "{", 1);
	if (label) {
		rc |= add_pair(out, label, s->value);
		if (s->label2) {
			rc |= evbuffer_add(out, ",", 1);
			rc |= add_pair(out, s->label2, s->value2);
		}
	}
	if (extra)
		rc |= evbuffer_add_printf(out, "%s%s", label ? "," : "", extra) < 0;
	rc |= evbuffer_add(out, "}", 1);
	return rc;
}

int
relay_metrics_render(const struct relay_metrics *m, struct evbuffer *out)
{
	static const char *const kinds[] = { "counter", "gauge", "histogram" };
	int rc = 0;
	for (struct metric *x = m->head; x; x = x->next) {
		rc |= evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", x->name, x->help,
		                          x->name, kinds[x->kind]) < 0;
		for (struct series *s = x->series; s; s = s->next) {
			if (x->kind != HISTOGRAM) {
				rc |= evbuffer_add_printf(out, "%s", x->name) < 0;
				rc |= add_label(out, s, NULL);
				rc |= evbuffer_add_printf(out, " %.17g\n", s->v) < 0;
				continue;
			}
			for (size_t i = 0; i < NBUCKETS; i++) {
				char le[32];
				snprintf(le, sizeof(le), "le=\"%g\"", bucket_bounds[i]);
				rc |= evbuffer_add_printf(out, "%s_bucket", x->name) < 0;
				rc |= add_label(out, s, le);
				rc |= evbuffer_add_printf(out, " %llu\n", (unsigned long long)s->buckets[i]) < 0;
			}
			/* a series' own label (observe1) goes on every line of it */
			rc |= evbuffer_add_printf(out, "%s_bucket", x->name) < 0;
			rc |= add_label(out, s, "le=\"+Inf\"");
			rc |= evbuffer_add_printf(out, " %llu\n%s_sum", (unsigned long long)s->count,
			                          x->name) < 0;
			rc |= add_label(out, s, NULL);
			rc |= evbuffer_add_printf(out, " %.17g\n%s_count", s->sum, x->name) < 0;
			rc |= add_label(out, s, NULL);
			rc |= evbuffer_add_printf(out, " %llu\n", (unsigned long long)s->count) < 0;
		}
	}
	return rc ? ENOMEM : 0;
}
