/*
 * odoo-emulator: what a poller out of Odoo depends on, kept apart from the
 * rest of the ORM.
 *
 * Odoo stamps write_date (and create_date) with the time its transaction
 * started, keeps microseconds in the database, and sends whole seconds on
 * the wire (captures 440-453): `write_date > "...:41"` matches again the
 * rows shown as ":41", and `=` matches none of them. Here a stamp is taken
 * once per call (each call is a transaction), stored with microseconds,
 * cut to seconds when read, and compared with domain values at full
 * precision, a value without fractions meaning ".000000".
 *
 * Two controls make the timing problems of a real database reproducible:
 * a clock offset (POST /control/clock), and a held transaction
 * (POST /control/hold): the next call that writes commits invisibly, so
 * that other calls go on, stamp later times and are seen first; its rows
 * appear at POST /control/release with their older stamp.
 */
#include "emu_orm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static void stamp_format(int64_t us, char out[EMU_STAMP_LEN])
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;
	char sec[20], buf[64];

	gmtime_r(&t, &tm);
	strftime(sec, sizeof(sec), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(buf, sizeof(buf), "%s.%06d", sec, (int)(us % 1000000));
	memcpy(out, buf, EMU_STAMP_LEN - 1);
	out[EMU_STAMP_LEN - 1] = '\0';
}

static int64_t clock_now_us(const struct emu *e)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec + e->poll.clock_offset_ms * 1000;
}

void emu_tx_stamp(struct emu *e, char out[EMU_STAMP_LEN])
{
	/* the first write of a transaction fixes its stamp for every row */
	if (!e->poll.tx_stamp[0])
		stamp_format(clock_now_us(e), e->poll.tx_stamp);
	memcpy(out, e->poll.tx_stamp, EMU_STAMP_LEN);
}

void emu_poll_tx_begin(struct emu *e)
{
	e->poll.tx_stamp[0] = '\0';
}

json_t *emu_datetime_wire(json_t *v)
{
	/* the wire has whole seconds: "YYYY-MM-DD HH:MM:SS" */
	if (json_is_string(v) && json_string_length(v) > 19) {
		json_t *cut = json_stringn(json_string_value(v), 19);

		json_decref(v);
		return cut;
	}
	return v;
}

json_t *emu_datetime_full(const json_t *v)
{
	const char *s;
	char buf[EMU_STAMP_LEN];
	size_t n;

	if (!json_is_string(v))
		return json_incref((json_t *)v);
	s = json_string_value(v);
	n = strlen(s);
	/* "YYYY-MM-DDTHH:MM:SS" is taken as well (capture 449) */
	if (n < 19 || n >= sizeof(buf) || (s[10] != 'T' && s[10] != ' '))
		return json_incref((json_t *)v);
	memcpy(buf, s, n + 1);
	buf[10] = ' ';
	if (n == 19)
		memcpy(buf + 19, ".000000", 8);
	return json_string(buf);
}

/*
 * At the end of a call that wrote: a held transaction's rows go aside
 * (their state before the call comes back) until released.
 */
void emu_poll_tx_commit(struct emu *e)
{
	json_t *journal = e->data->journal, *j;
	size_t i, n = json_array_size(journal);

	if (!e->poll.hold_next || n == 0)
		return;
	e->poll.hold_next = false;
	if (!e->poll.held)
		e->poll.held = json_array();
	json_array_foreach(journal, i, j) {
		struct model *m = orm_model_at(e, (int)json_integer_value(json_array_get(j, 0)));
		json_int_t id = json_integer_value(json_array_get(j, 1));
		json_t *now = orm_rec_get(m, id);

		json_array_append_new(e->poll.held,
				      json_pack("[i, I, o]", m->idx, id,
						now ? json_deep_copy(now) : json_null()));
	}
	/* back to the state before the call, newest change first */
	while (n-- > 0) {
		j = json_array_get(journal, n);
		struct model *m = orm_model_at(e, (int)json_integer_value(json_array_get(j, 0)));
		json_int_t id = json_integer_value(json_array_get(j, 1));
		json_t *old = json_array_get(j, 2);

		if (json_is_null(old))
			orm_store_remove(e, m, id);
		else
			orm_store_put(e, m, json_deep_copy(old));
	}
}

/* The held rows become visible, with the stamps they were written with. */
static size_t release(struct emu *e)
{
	size_t i, n = json_array_size(e->poll.held);
	json_t *h;

	json_array_foreach(e->poll.held, i, h) {
		struct model *m = orm_model_at(e, (int)json_integer_value(json_array_get(h, 0)));
		json_int_t id = json_integer_value(json_array_get(h, 1));
		json_t *rec = json_array_get(h, 2);

		if (json_is_null(rec))
			orm_store_remove(e, m, id);
		else
			orm_store_put(e, m, json_deep_copy(rec));
	}
	json_decref(e->poll.held);
	e->poll.held = NULL;
	return n;
}

void emu_poll_note_search(struct emu *e, const char *model, const json_t *domain)
{
	if (!e->poll.last_search)
		e->poll.last_search = json_object();
	json_object_set_new(e->poll.last_search, model,
			    domain ? json_deep_copy(domain) : json_null());
}

void emu_poll_unstamp(struct emu *e, const char *model, json_t *rows)
{
	json_t *ids = json_object_get(e->poll.unstamped, model), *row, *id;
	size_t i, j;

	json_array_foreach(rows, i, row) {
		if (!json_object_get(row, "write_date"))
			continue;
		json_array_foreach(ids, j, id)
			if (json_integer_value(id) ==
			    json_integer_value(json_object_get(row, "id")))
				json_object_set_new(row, "write_date", json_false());
	}
}

void emu_poll_reset(struct emu *e)
{
	json_decref(e->poll.held);
	json_decref(e->poll.last_search);
	json_decref(e->poll.unstamped);
	memset(&e->poll, 0, sizeof(e->poll));
}

static json_t *state(struct emu *e)
{
	char now[EMU_STAMP_LEN];

	stamp_format(clock_now_us(e), now);
	return json_pack("{s:s, s:I, s:b, s:I, s:O?}", "now", now, "offset_ms",
			 (json_int_t)e->poll.clock_offset_ms, "hold_next", e->poll.hold_next,
			 "held", (json_int_t)json_array_size(e->poll.held), "last_search_read",
			 e->poll.last_search);
}

bool emu_poll_control(struct emu *e, bool post, const char *path, json_t *body,
		      int *status, json_t **doc)
{
	*status = 200;
	if (strcmp(path, "/control/clock") == 0) {
		json_t *off = json_object_get(body, "offset_ms");

		if (post && off && !json_is_integer(off)) {
			*status = 400;
			*doc = json_pack("{s:s}", "error", "offset_ms must be an integer");
			return true;
		}
		if (post && off)
			e->poll.clock_offset_ms = json_integer_value(off);
	} else if (post && strcmp(path, "/control/hold") == 0) {
		e->poll.hold_next = true;
	} else if (post && strcmp(path, "/control/release") == 0) {
		size_t n = release(e);

		e->poll.hold_next = false;
		*doc = json_pack("{s:b, s:I}", "ok", 1, "released", (json_int_t)n);
		return true;
	} else if (post && strcmp(path, "/control/unstamped") == 0) {
		/* a row whose write_date the answer lacks (false), as a row
		 * written around the ORM shows it; it still matches domains on
		 * its stored stamp */
		const char *model = json_string_value(json_object_get(body, "model"));
		json_t *ids = json_object_get(body, "ids");

		if (!model || !json_is_array(ids)) {
			*status = 400;
			*doc = json_pack("{s:s}", "error", "needs model and ids");
			return true;
		}
		if (!e->poll.unstamped)
			e->poll.unstamped = json_object();
		json_object_set(e->poll.unstamped, model, ids);
		*doc = json_pack("{s:b}", "ok", 1);
		return true;
	} else if (!post && strcmp(path, "/control/hold") == 0) {
		/* the state below */
	} else {
		return false;
	}
	*doc = state(e);
	return true;
}
