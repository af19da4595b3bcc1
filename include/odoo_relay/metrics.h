/*
 * odoo-relay: counters, gauges and histograms, exported in the Prometheus
 * text format (version 0.0.4) on GET /metrics.
 *
 * Metrics are identified by name and at most one label (name=value), e.g.
 * relay_received_total{source="shop"}. A series is created on first use.
 *
 * Threading: a struct relay_metrics is used from the loop thread only.
 * Errors: updating never fails from the caller's point of view (a series that
 * cannot be allocated is not counted; relay_metrics_render reports ENOMEM).
 */
#ifndef ODOO_RELAY_METRICS_H
#define ODOO_RELAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct relay_metrics;
struct evbuffer;

/* relay_metrics_new - an empty set. Returns NULL when out of memory. */
struct relay_metrics *relay_metrics_new(void);
void relay_metrics_free(struct relay_metrics *m);

/* Counters: name should end in _total. label may be NULL (no label); help is
 * the HELP text, used the first time the metric is seen. */
void relay_metrics_add(struct relay_metrics *m, const char *name, const char *help,
                       const char *label, const char *value, uint64_t n);
/* Gauges. */
void relay_metrics_set(struct relay_metrics *m, const char *name, const char *help,
                       const char *label, const char *value, double v);
/* Histograms of seconds, with fixed buckets from 0.5 ms to 60 s. */
void relay_metrics_observe(struct relay_metrics *m, const char *name, const char *help,
                           double seconds);

/* relay_metrics_get - the current value of a counter or gauge series (0 if unknown). */
double relay_metrics_get(const struct relay_metrics *m, const char *name, const char *label,
                         const char *value);

/* relay_metrics_render - append the text exposition to out. Returns 0 or ENOMEM. */
int relay_metrics_render(const struct relay_metrics *m, struct evbuffer *out);

#endif
