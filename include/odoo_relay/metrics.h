/*
 * odoo-relay: counters, gauges and histograms, exported in the Prometheus
 * text format (version 0.0.4) on GET /metrics.
 *
 * Metrics are identified by name and at most two labels (name=value), e.g.
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

/* relay_metrics_new - an empty set, owned by the caller (relay_metrics_free).
 * Returns NULL when out of memory. */
struct relay_metrics *relay_metrics_new(void);
/* relay_metrics_free - free the set and every series. NULL is a no-op. */
void relay_metrics_free(struct relay_metrics *m);

/* Counters: name should end in _total. label may be NULL (no label); help is
 * the HELP text, used the first time the metric is seen (NULL: the name).
 * name, help, label and value are borrowed for the call and copied when a
 * series is created. A metric keeps the kind of its first use: give each
 * name one kind (another kind's update is not rendered as such). */
void relay_metrics_add(struct relay_metrics *m, const char *name, const char *help,
                       const char *label, const char *value, uint64_t n);
/* Gauges. */
void relay_metrics_set(struct relay_metrics *m, const char *name, const char *help,
                       const char *label, const char *value, double v);
/* relay_metrics_add2, relay_metrics_set2 - the same with a second label
 * (label2 may be NULL for none): relay_delivered_total{route="r",destination="d"}.
 * A series is identified by both pairs. */
void relay_metrics_add2(struct relay_metrics *m, const char *name, const char *help,
                        const char *label, const char *value, const char *label2,
                        const char *value2, uint64_t n);
void relay_metrics_set2(struct relay_metrics *m, const char *name, const char *help,
                        const char *label, const char *value, const char *label2,
                        const char *value2, double v);
/* Histograms of seconds, with fixed buckets from 0.5 ms to 60 s. */
void relay_metrics_observe(struct relay_metrics *m, const char *name, const char *help,
                           double seconds);
/* relay_metrics_observe1 - the same, in the series of name whose label is
 * value (label NULL: the unlabelled series, as relay_metrics_observe). */
void relay_metrics_observe1(struct relay_metrics *m, const char *name, const char *help,
                            const char *label, const char *value, double seconds);

/* relay_metrics_render - append the text exposition to out (borrowed).
 * Returns 0, or ENOMEM when out could not grow: out then holds part of the
 * text and should be discarded. */
int relay_metrics_render(const struct relay_metrics *m, struct evbuffer *out);

#endif
