/*
 * odoo-relay: jansson's allocations in a per-thread arena, for the parse
 * of one request's body.
 *
 * Parsing a 1 KiB webhook makes jansson allocate and free a hundred small
 * blocks (each value, key, string and hash table). Through malloc, more
 * blocks of one size are freed at once than glibc's per-thread cache
 * holds, so they go back to the shared arena under its lock, and the next
 * large allocation merges them again: malloc and free were a sixth of the
 * daemon's CPU per webhook at 64 connections. In a scope, jansson's blocks
 * are cut from one buffer of the thread's instead, and freeing them costs
 * nothing.
 *
 * Safety does not rest on the scope's users: the buffer is reused only
 * when every block cut from it has been freed (jansson frees each block of
 * a tree on json_decref), so a value kept past its scope is only a buffer
 * that waits, never memory handed out twice. Blocks that do not fit, and
 * every block outside a scope, come from malloc as before.
 *
 * Threading: install once, before any other thread uses jansson (it sets
 * jansson's allocator for the process). Each thread has its own buffer and
 * scope; a block cut in a scope must be freed by the thread that cut it.
 * Without relay_json_arena_install, begin and end change nothing.
 */
#ifndef ODOO_RELAY_JSON_ARENA_H
#define ODOO_RELAY_JSON_ARENA_H

#include <stddef.h>

/* The bytes of a thread's buffer (allocated at its first scope). */
#define RELAY_JSON_ARENA_BYTES (64 * 1024)

/*
 * relay_json_arena_install - make jansson allocate through the arena from
 * now on (json_set_alloc_funcs). Idempotent. Call at process start, before
 * threads: values jansson allocated before are still freed correctly.
 */
void relay_json_arena_install(void);

/*
 * relay_json_arena_begin / relay_json_arena_end - open and close the
 * calling thread's scope. Scopes do not nest (a begin inside a scope is a
 * caller's bug and changes nothing). At end, if every block of the buffer
 * has been freed, the buffer starts again from its beginning; otherwise it
 * does when the last one is freed.
 */
void relay_json_arena_begin(void);
void relay_json_arena_end(void);

/*
 * relay_json_arena_live - blocks cut from the calling thread's buffer and
 * not yet freed; relay_json_arena_used - its bytes in use, freed or not,
 * since it last started again (for tests).
 */
size_t relay_json_arena_live(void);
size_t relay_json_arena_used(void);

/*
 * relay_json_arena_release - free the calling thread's buffer if no block
 * of it is live (at thread or process exit). Returns 0, or -1 if blocks
 * are still live (the buffer is then kept).
 */
int relay_json_arena_release(void);

#endif
