/* Answers to senders against their deadlines: see include/odoo_relay/ack.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "odoo_relay/ack.h"

struct ack_source {
	char *name;
	int64_t deadline_ms;
	uint64_t answered, slow;
	int64_t max_ms, last_slow_ms;
};

struct relay_acks {
	struct ack_source *v;
	size_t n, cap;
	uint64_t total;
	int64_t since_ms, wall_ms;
};

int
relay_acks_new(struct relay_acks **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : ENOMEM;
}

void
relay_acks_free(struct relay_acks *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i].name);
	free(a->v);
	free(a);
}

int
relay_acks_slow(int64_t ms, int64_t deadline_ms)
{
	return deadline_ms > 0 && ms * 2 > deadline_ms;
}

void
relay_acks_note_time(struct relay_acks *a, int64_t wall_ms)
{
	a->wall_ms = wall_ms;
	if (!a->since_ms)
		a->since_ms = wall_ms;
}

int
relay_acks_record(struct relay_acks *a, const char *source, int64_t deadline_ms, int64_t ms)
{
	struct ack_source *s = NULL;
	int slow = relay_acks_slow(ms, deadline_ms);

	for (size_t i = 0; i < a->n && !s; i++)
		if (strcmp(a->v[i].name, source) == 0)
			s = &a->v[i];
	if (!s) {
		if (a->n == a->cap) {
			size_t cap = a->cap ? 2 * a->cap : 8;
			struct ack_source *v = realloc(a->v, cap * sizeof(*v));

			if (!v)
				return -1;
			a->v = v;
			a->cap = cap;
		}
		s = &a->v[a->n];
		memset(s, 0, sizeof(*s));
		if (!(s->name = strdup(source)))
			return -1;
		a->n++;
	}
	s->deadline_ms = deadline_ms;
	s->answered++;
	a->total++;
	if (ms > s->max_ms)
		s->max_ms = ms;
	if (slow) {
		s->slow++;
		s->last_slow_ms = a->wall_ms;
	}
	return slow;
}

uint64_t
relay_acks_total(const struct relay_acks *a)
{
	return a->total;
}

char *
relay_acks_json(const struct relay_acks *a)
{
	json_t *o = json_object(), *arr = json_array();
	char *text = NULL;

	if (!o || !arr || json_object_set_new(o, "sources", arr)) {
		json_decref(arr);
		goto out;
	}
	if (json_object_set_new(o, "since_ms", json_integer(a->since_ms)))
		goto out;
	for (size_t i = 0; i < a->n; i++) {
		const struct ack_source *s = &a->v[i];

		if (json_array_append_new(arr, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "source", s->name,
		                                         "deadline_ms", (json_int_t)s->deadline_ms,
		                                         "answered", (json_int_t)s->answered, "slow",
		                                         (json_int_t)s->slow, "max_ms",
		                                         (json_int_t)s->max_ms, "last_slow_ms",
		                                         (json_int_t)s->last_slow_ms)))
			goto out;
	}
	text = json_dumps(o, JSON_COMPACT);
out:
	json_decref(o);
	return text;
}
