/* Unit tests for lib/ack.c: answers to senders against their deadlines. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "check.h"
#include "odoo_relay/ack.h"

static void
test_slow(void)
{
	CHECK(!relay_acks_slow(2500, 5000)); /* half exactly is not over half */
	CHECK(relay_acks_slow(2501, 5000));
	CHECK(!relay_acks_slow(100000, 0)); /* no deadline: never near */
}

static void
test_counts(void)
{
	struct relay_acks *a;
	json_t *o, *s;
	char *text;

	CHECK(relay_acks_new(&a) == 0);
	relay_acks_note_time(a, 1000);
	CHECK_INT(relay_acks_record(a, "shop", 5000, 3), 0);
	CHECK_INT(relay_acks_record(a, "gh", 10000, 20), 0);
	relay_acks_note_time(a, 2000);
	CHECK_INT(relay_acks_record(a, "shop", 5000, 2600), 1);
	CHECK_INT(relay_acks_total(a), 3);
	text = relay_acks_json(a);
	o = text ? json_loads(text, 0, NULL) : NULL;
	CHECK(o != NULL);
	CHECK_INT(json_integer_value(json_object_get(o, "since_ms")), 1000);
	s = json_array_get(json_object_get(o, "sources"), 0);
	CHECK_STR(json_string_value(json_object_get(s, "source")), "shop");
	CHECK_INT(json_integer_value(json_object_get(s, "answered")), 2);
	CHECK_INT(json_integer_value(json_object_get(s, "slow")), 1);
	CHECK_INT(json_integer_value(json_object_get(s, "max_ms")), 2600);
	CHECK_INT(json_integer_value(json_object_get(s, "last_slow_ms")), 2000);
	CHECK_INT(json_integer_value(json_object_get(s, "deadline_ms")), 5000);
	s = json_array_get(json_object_get(o, "sources"), 1);
	CHECK_INT(json_integer_value(json_object_get(s, "slow")), 0);
	json_decref(o);
	free(text);
	relay_acks_free(a);
}

int
main(void)
{
	RUN(test_slow);
	RUN(test_counts);
	return check_done();
}
