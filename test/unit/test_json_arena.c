/* Unit tests for lib/json_arena.c: jansson's blocks in a thread's buffer. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "check.h"
#include "odoo_relay/json_arena.h"

static const char doc[] = "{\"id\": 7, \"name\": \"S00007\", \"lines\": [1, 2.5, true, null, "
                          "{\"k\": \"v\"}], \"partner\": {\"id\": 42, \"name\": \"Azure\"}}";

/* Parse doc and check what it holds; the tree is returned. */
static json_t *
parse_doc(void)
{
	json_t *j = json_loads(doc, 0, NULL);

	CHECK(json_is_object(j));
	CHECK_INT(json_integer_value(json_object_get(j, "id")), 7);
	CHECK_STR(json_string_value(json_object_get(j, "name")), "S00007");
	CHECK_STR(json_string_value(json_object_get(json_object_get(j, "partner"), "name")),
	          "Azure");
	CHECK_INT(json_array_size(json_object_get(j, "lines")), 5);
	return j;
}

/* Before install, a scope changes nothing: jansson uses malloc. */
static void
test_not_installed(void)
{
	json_t *j;

	relay_json_arena_begin();
	j = parse_doc();
	CHECK_INT(relay_json_arena_live(), 0);
	CHECK_INT(relay_json_arena_used(), 0);
	relay_json_arena_end();
	json_decref(j); /* after the scope, through the arena's free once installed */
}

/* In a scope the blocks come from the buffer; all freed, it starts again. */
static void
test_scope(void)
{
	json_t *j, *outside;
	size_t used;

	/* a value made before install, freed after it: still malloc's */
	outside = json_string("made before install");
	relay_json_arena_install();
	relay_json_arena_install(); /* idempotent */

	relay_json_arena_begin();
	j = parse_doc();
	CHECK(relay_json_arena_live() > 10);
	used = relay_json_arena_used();
	CHECK(used > 0 && used <= RELAY_JSON_ARENA_BYTES);
	json_decref(j);
	CHECK_INT(relay_json_arena_live(), 0);
	/* inside the scope the buffer keeps cutting forward */
	CHECK_INT(relay_json_arena_used(), used);
	relay_json_arena_end();
	CHECK_INT(relay_json_arena_used(), 0);

	/* the same again reuses the same bytes */
	relay_json_arena_begin();
	j = parse_doc();
	CHECK_INT(relay_json_arena_used(), used);
	json_decref(j);
	relay_json_arena_end();

	/* outside a scope: malloc, and freed through the arena's free */
	j = parse_doc();
	CHECK_INT(relay_json_arena_live(), 0);
	CHECK_INT(relay_json_arena_used(), 0);
	json_decref(j);
	json_decref(outside);
}

/* A tree kept past its scope holds the buffer: the next scope cuts after
 * it, and nothing is handed out twice; the last free starts it again. */
static void
test_kept_past_scope(void)
{
	json_t *kept, *j;
	size_t used;

	relay_json_arena_begin();
	kept = parse_doc();
	relay_json_arena_end();
	used = relay_json_arena_used();
	CHECK(used > 0);
	CHECK(relay_json_arena_live() > 0);

	relay_json_arena_begin();
	j = parse_doc();
	CHECK(relay_json_arena_used() > used);
	/* the kept tree is intact under the new one */
	CHECK_STR(json_string_value(json_object_get(kept, "name")), "S00007");
	json_decref(j);
	relay_json_arena_end();
	CHECK(relay_json_arena_used() > 0); /* kept still holds it */
	CHECK_INT(relay_json_arena_release(), -1);
	json_decref(kept);
	CHECK_INT(relay_json_arena_live(), 0);
	CHECK_INT(relay_json_arena_used(), 0);
}

/* A document larger than the buffer: what does not fit comes from malloc,
 * and the tree is whole. */
static void
test_overflow(void)
{
	json_t *arr, *j;
	char *text;
	size_t i;

	arr = json_array();
	for (i = 0; i < 4000; i++)
		json_array_append_new(arr, json_pack("{s:i, s:s}", "i", (int)i, "s", "some text"));
	text = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	CHECK(text != NULL && strlen(text) > RELAY_JSON_ARENA_BYTES);

	relay_json_arena_begin();
	j = json_loads(text, 0, NULL);
	CHECK_INT(json_array_size(j), 4000);
	CHECK_INT(json_integer_value(json_object_get(json_array_get(j, 3999), "i")), 3999);
	CHECK(relay_json_arena_used() <= RELAY_JSON_ARENA_BYTES);
	json_decref(j);
	CHECK_INT(relay_json_arena_live(), 0);
	relay_json_arena_end();
	free(text);
}

/* Each thread has its own buffer: a scope on one leaves the other's alone. */
static void *
other_thread(void *arg)
{
	json_t *j;

	(void)arg;
	CHECK_INT(relay_json_arena_live(), 0);
	relay_json_arena_begin();
	j = parse_doc();
	CHECK(relay_json_arena_live() > 0);
	json_decref(j);
	relay_json_arena_end();
	CHECK_INT(relay_json_arena_release(), 0);
	return NULL;
}

static void
test_threads(void)
{
	json_t *kept;
	pthread_t t;
	size_t live;

	relay_json_arena_begin();
	kept = parse_doc();
	relay_json_arena_end();
	live = relay_json_arena_live();
	CHECK_INT(pthread_create(&t, NULL, other_thread, NULL), 0);
	pthread_join(t, NULL);
	CHECK_INT(relay_json_arena_live(), live);
	json_decref(kept);
	CHECK_INT(relay_json_arena_live(), 0);
}

/* Blocks cut through jansson's allocator itself, up to the buffer's last
 * byte; then one of 0 bytes, which must still be a block of the buffer
 * (or malloc's), never a pointer past its end handed to free(). */
static void
test_full_and_empty(void)
{
	json_malloc_t m = NULL;
	json_free_t f = NULL;
	enum { N = RELAY_JSON_ARENA_BYTES / 16 };
	static void *blocks[N];
	void *zero;
	size_t i;

	json_get_alloc_funcs(&m, &f);
	CHECK(m != NULL && f != NULL);
	if (!m || !f)
		return;
	relay_json_arena_begin();
	for (i = 0; i < N; i++)
		blocks[i] = m(16);
	CHECK_INT(relay_json_arena_used(), RELAY_JSON_ARENA_BYTES);
	CHECK_INT(relay_json_arena_live(), N);
	zero = m(0);
	f(zero);
	CHECK_INT(relay_json_arena_live(), N);
	for (i = 0; i < N; i++)
		f(blocks[i]);
	CHECK_INT(relay_json_arena_live(), 0);
	relay_json_arena_end();
	CHECK_INT(relay_json_arena_used(), 0);
}

int
main(void)
{
	RUN(test_not_installed);
	RUN(test_scope);
	RUN(test_kept_past_scope);
	RUN(test_overflow);
	RUN(test_threads);
	RUN(test_full_and_empty);
	CHECK_INT(relay_json_arena_release(), 0);
	return check_done();
}
