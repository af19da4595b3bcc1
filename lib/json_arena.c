/* jansson's allocations in a per-thread arena: see include/odoo_relay/json_arena.h. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "odoo_relay/json_arena.h"

/* jansson's blocks hold any type: cut them on malloc's alignment. */
#define ALIGN 16

struct arena {
	char *base;   /* RELAY_JSON_ARENA_BYTES, or NULL until the first scope */
	size_t used;  /* bytes cut since the buffer last started again */
	size_t live;  /* blocks cut and not yet freed */
	int active;   /* inside a scope */
};

static _Thread_local struct arena arena;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int installed;

static int
in_buffer(const struct arena *a, const void *p)
{
	uintptr_t u = (uintptr_t)p, b = (uintptr_t)a->base;

	return a->base && u >= b && u < b + RELAY_JSON_ARENA_BYTES;
}

static void *
arena_malloc(size_t size)
{
	struct arena *a = &arena;
	/* a block of 0 bytes still takes room: at the buffer's very end it
	 * would point past it, and its free would go to free() */
	size_t n = size ? (size + ALIGN - 1) & ~(size_t)(ALIGN - 1) : ALIGN;
	void *p;

	if (!a->active || n < size || n > RELAY_JSON_ARENA_BYTES - a->used)
		return malloc(size);
	p = a->base + a->used;
	a->used += n;
	a->live++;
	return p;
}

static void
arena_free(void *p)
{
	struct arena *a = &arena;

	if (!in_buffer(a, p)) {
		free(p);
		return;
	}
	/* the last block out starts the buffer again, unless a scope is
	 * still cutting from it (it starts again at its end) */
	if (--a->live == 0 && !a->active)
		a->used = 0;
}

static void
install(void)
{
	json_set_alloc_funcs(arena_malloc, arena_free);
	installed = 1;
}

void
relay_json_arena_install(void)
{
	pthread_once(&install_once, install);
}

void
relay_json_arena_begin(void)
{
	struct arena *a = &arena;

	if (!installed || a->active)
		return;
	if (!a->base && !(a->base = malloc(RELAY_JSON_ARENA_BYTES)))
		return; /* no buffer: jansson allocates from malloc */
	if (a->live == 0)
		a->used = 0;
	a->active = 1;
}

void
relay_json_arena_end(void)
{
	struct arena *a = &arena;

	a->active = 0;
	if (a->live == 0)
		a->used = 0;
}

size_t
relay_json_arena_live(void)
{
	return arena.live;
}

size_t
relay_json_arena_used(void)
{
	return arena.used;
}

int
relay_json_arena_release(void)
{
	struct arena *a = &arena;

	if (a->live != 0)
		return -1;
	free(a->base);
	a->base = NULL;
	a->used = 0;
	a->active = 0;
	return 0;
}
