/* Routes held back: see include/odoo_relay/route_hold.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "odoo_relay/route_hold.h"

struct hold {
	char *route;
	int64_t until_ms;   /* the next try, monotonic */
	int64_t delay_ms;
	int64_t cap_ms;
	LIST_ENTRY(hold) link;
};

struct relay_holds {
	LIST_HEAD(, hold) list;
	size_t n;
};

struct relay_holds *
relay_holds_new(void)
{
	struct relay_holds *h = calloc(1, sizeof(*h));

	if (h)
		LIST_INIT(&h->list);
	return h;
}

static struct hold *
find(const struct relay_holds *h, const char *route)
{
	struct hold *x;

	LIST_FOREACH(x, &h->list, link)
		if (strcmp(x->route, route) == 0)
			return x;
	return NULL;
}

static void
drop(struct relay_holds *h, struct hold *x)
{
	LIST_REMOVE(x, link);
	h->n--;
	free(x->route);
	free(x);
}

void
relay_holds_free(struct relay_holds *h)
{
	if (!h)
		return;
	while (!LIST_EMPTY(&h->list))
		drop(h, LIST_FIRST(&h->list));
	free(h);
}

int
relay_hold(struct relay_holds *h, const char *route, int64_t now_ms, int64_t base_ms,
           int64_t cap_ms)
{
	struct hold *x = find(h, route);
	int fresh = !x;

	if (!x) {
		if (!(x = calloc(1, sizeof(*x))) || !(x->route = strdup(route))) {
			free(x);
			return ENOMEM;
		}
		LIST_INSERT_HEAD(&h->list, x, link);
		h->n++;
		x->delay_ms = base_ms > 0 ? base_ms : 1000;
	} else {
		x->delay_ms = x->delay_ms > cap_ms / 2 ? cap_ms : x->delay_ms * 2;
	}
	x->cap_ms = cap_ms;
	x->until_ms = now_ms + x->delay_ms;
	return fresh;
}

enum relay_hold_verdict
relay_hold_check(struct relay_holds *h, const char *route, int64_t now_ms, int half_open)
{
	struct hold *x = find(h, route);

	if (!x)
		return RELAY_HOLD_FREE;
	if (half_open || now_ms < x->until_ms)
		return RELAY_HOLD_WAIT;
	/* This event is the route's try: the next one waits a delay. */
	x->until_ms = now_ms + x->delay_ms;
	return RELAY_HOLD_TRY;
}

int
relay_hold_release(struct relay_holds *h, const char *route)
{
	struct hold *x = find(h, route);

	if (!x)
		return 0;
	drop(h, x);
	return 1;
}

void
relay_hold_release_all(struct relay_holds *h, void (*fn)(const char *route, void *arg), void *arg)
{
	while (!LIST_EMPTY(&h->list)) {
		struct hold *x = LIST_FIRST(&h->list);

		if (fn)
			fn(x->route, arg);
		drop(h, x);
	}
}

size_t
relay_holds_count(const struct relay_holds *h)
{
	return h->n;
}
