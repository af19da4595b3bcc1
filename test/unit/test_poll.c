/*
 * Unit tests of poll.c: the odoo-poll source's configuration, the
 * one-owner-per-field rule, paging through rows that share a second, the
 * projection's hash and the event bodies. Pure: no I/O.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "odoo_relay/config.h"
#include "odoo_relay/error.h"
#include "odoo_relay/poll.h"
#include "odoo_relay/route.h"

#define HEAD \
	"{\n" \
	"  \"listen\": \"127.0.0.1:8080\",\n" \
	"  \"odoo\": {\"url\": \"http://127.0.0.1:8069\", \"database\": \"db\",\n" \
	"            \"login\": \"bot\", \"password_file\": \"secrets/odoo.key\"},\n" \
	"  \"sources\": {\n" \
	"    \"shop\": {\"verify\": {\"scheme\": \"token\", \"secret_file\": \"secrets/token.secret\"},\n" \
	"             \"dedup\": {\"header\": \"X-Id\"}},\n"

static int
load(const char *text, struct relay_config **cfg, struct relay_config_error *err)
{
	memset(err, 0, sizeof(*err));
	return relay_config_loadb("config/poll.json", text, strlen(text), cfg, err);
}

static void
test_conf_defaults(void)
{
	const char *text = HEAD
		"    \"out\": {\"kind\": \"odoo-poll\", \"model\": \"res.partner\",\n"
		"             \"fields\": [\"name\", \"email\"]}\n"
		"  }\n}\n";
	struct relay_config *cfg = NULL;
	struct relay_config_error err;
	const struct relay_poll_conf *p;

	CHECK_INT(load(text, &cfg, &err), 0);
	if (!cfg) {
		fprintf(stderr, "%s:%u:%u: %s\n", err.file, err.line, err.column, err.text);
		return;
	}
	CHECK_INT(cfg->sources[1].kind, RELAY_SOURCE_ODOO_POLL);
	p = cfg->sources[1].poll;
	CHECK(p != NULL);
	CHECK_STR(p->destination, "odoo");
	CHECK_STR(p->topic, "res.partner.changed");
	CHECK_STR(p->deleted_topic, "res.partner.deleted");
	CHECK_INT(p->interval_s, 60);
	CHECK_INT(p->overlap_s, 300);
	CHECK_INT(p->page_size, 500);
	CHECK_INT(p->deletion_check_s, 3600);
	CHECK_INT(p->n_fields, 3); /* "active" added: archiving is a change */
	CHECK_STR(p->fields[2], "active");
	CHECK_INT(p->field_line[0], 9);
	CHECK(cfg->sources[0].poll == NULL);
	relay_config_free(cfg);
}

static void
expect_error(const char *body, unsigned line, const char *needle)
{
	char text[2048];
	struct relay_config *cfg = NULL;
	struct relay_config_error err;

	snprintf(text, sizeof(text), "%s%s", HEAD, body);
	CHECK_INT(load(text, &cfg, &err), -RELAY_ECONFIG);
	CHECK_INT(err.line, line);
	CHECK(err.column > 0);
	CHECK(strstr(err.text, needle) != NULL);
	if (!strstr(err.text, needle))
		fprintf(stderr, "  got %u:%u %s\n", err.line, err.column, err.text);
	relay_config_free(cfg);
}

static void
test_conf_errors(void)
{
	expect_error("    \"out\": {\"kind\": \"odoo-poll\", \"fields\": [\"name\"]}\n  }\n}\n", 8,
	             "model");
	expect_error("    \"out\": {\"kind\": \"odoo-poll\", \"model\": \"res.partner\",\n"
	             "             \"fields\": [\"name\", \"id\"]}\n  }\n}\n", 9, "always sent");
	expect_error("    \"out\": {\"kind\": \"odoo-poll\", \"model\": \"res.partner\",\n"
	             "             \"fields\": [\"name\"], \"verify\": {}}\n  }\n}\n", 9, "verify");
	expect_error("    \"out\": {\"kind\": \"odoo-poll\", \"model\": \"res.partner\",\n"
	             "             \"fields\": [\"name\"], \"page_size\": 5}\n  }\n}\n", 9,
	             "page_size");
	expect_error("    \"out\": {\"kind\": \"odoo-poll\", \"model\": \"res.partner\",\n"
	             "             \"fields\": [\"name\"], \"domain\": [[\"a\", \"~\", 1]]}\n  }\n}\n",
	             9, "domain");
	expect_error("    \"out\": {\"kind\": \"odoo-poll\", \"model\": \"res.partner\",\n"
	             "             \"fields\": [\"name\"], \"destination\": \"nope\"}\n  }\n}\n", 8,
	             "no destination is named");
}

/* A route into Odoo that writes a field a poller sends back out: refused,
 * at the route's field; another field of the same model is fine. */
static void
test_one_owner(void)
{
	const char *bad = HEAD
		"    \"out\": {\"kind\": \"odoo-poll\", \"model\": \"res.partner\",\n"
		"             \"fields\": [\"name\", \"email\", \"phone\"]}\n"
		"  },\n"
		"  \"routes\": [{\"name\": \"in\", \"source\": \"shop\", \"operation\": \"upsert\",\n"
		"    \"model\": \"res.partner\", \"external_id\": \"c_{/id}\",\n"
		"    \"fields\": {\"name\": \"{/name}\",\n"
		"               \"email\": {\"pointer\": \"/email\"}}}]\n}\n";
	const char *good = HEAD
		"    \"out\": {\"kind\": \"odoo-poll\", \"model\": \"res.partner\",\n"
		"             \"fields\": [\"phone\", \"credit_limit\"]}\n"
		"  },\n"
		"  \"routes\": [{\"name\": \"in\", \"source\": \"shop\", \"operation\": \"upsert\",\n"
		"    \"model\": \"res.partner\", \"external_id\": \"c_{/id}\",\n"
		"    \"fields\": {\"name\": \"{/name}\",\n"
		"               \"email\": {\"pointer\": \"/email\"}}}]\n}\n";
	struct relay_config *cfg = NULL;
	struct relay_config_error err;
	struct relay_routes *routes = NULL;
	unsigned line = 0, column = 0;

	CHECK_INT(load(bad, &cfg, &err), 0);
	if (!cfg)
		return;
	CHECK_STR(relay_poll_owner(cfg, "odoo", "res.partner", "email", &line, &column), "out");
	CHECK_INT(line, 9);
	CHECK(relay_poll_owner(cfg, "odoo", "res.partner", "street", NULL, NULL) == NULL);
	CHECK(relay_poll_owner(cfg, "other", "res.partner", "email", NULL, NULL) == NULL);
	CHECK(relay_poll_owner(cfg, "odoo", "res.users", "email", NULL, NULL) == NULL);
	CHECK_INT(relay_routes_compile(cfg, &routes, &err), -RELAY_ECONFIG);
	CHECK_INT(err.line, 13);
	CHECK(strstr(err.text, "poll source \"out\"") != NULL);
	CHECK(strstr(err.text, "name of res.partner") != NULL);
	relay_config_free(cfg);
	cfg = NULL;
	CHECK_INT(load(good, &cfg, &err), 0);
	if (!cfg)
		return;
	CHECK_INT(relay_routes_compile(cfg, &routes, &err), 0);
	relay_routes_free(routes);
	relay_config_free(cfg);
}

static struct relay_poll_conf *
conf(unsigned page_size)
{
	struct relay_poll_conf *p = calloc(1, sizeof(*p));

	p->model = strdup("res.partner");
	p->destination = strdup("odoo");
	p->domain = json_pack("[[s, s, b]]", "is_company", "=", 0);
	p->fields = calloc(2, sizeof(char *));
	p->field_line = calloc(2, sizeof(unsigned));
	p->field_column = calloc(2, sizeof(unsigned));
	p->fields[0] = strdup("name");
	p->fields[1] = strdup("active");
	p->n_fields = 2;
	p->archived = 1;
	p->page_size = page_size;
	p->overlap_s = 300;
	return p;
}

static json_t *
rows_of(const int *ids, const char *const *dates, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:i, s:s, s:s}", "id", ids[i], "write_date",
		                                   dates[i], "name", "x"));
	return a;
}

static void
test_time(void)
{
	int64_t t;
	char out[RELAY_POLL_TIME_LEN];

	CHECK_INT(relay_poll_time_parse("2026-12-05 23:22:41", &t), 0);
	relay_poll_time_format(t - 300, out);
	CHECK_STR(out, "2026-12-05 23:17:41");
	CHECK_INT(relay_poll_time_parse("2026-12-05T23:22:41", &t), 0);
	CHECK_INT(relay_poll_time_parse("2026-12-05 23:22:41.123456", &t), 0);
	relay_poll_time_format(t, out);
	CHECK_STR(out, "2026-12-05 23:22:41");
	CHECK_INT(relay_poll_time_parse("2026-12-05 23:22", &t), -RELAY_EINVAL);
	CHECK_INT(relay_poll_time_parse("yesterday", &t), -RELAY_EINVAL);
}

static void
test_request(void)
{
	struct relay_poll_conf *p = conf(100);
	struct relay_poll_page pg;
	json_t *kw = NULL;
	char *text;

	relay_poll_begin(&pg, "2026-12-05 23:22:41", 300);
	CHECK_STR(pg.since, "2026-12-05 23:17:41");
	CHECK_STR(pg.cursor, "2026-12-05 23:22:41");
	CHECK_INT(relay_poll_request(p, &pg, &kw), 0);
	text = json_dumps(kw, JSON_COMPACT | JSON_SORT_KEYS);
	CHECK_STR(text, "{\"context\":{\"active_test\":false},\"domain\":[[\"is_company\",\"=\",false],"
	                "[\"write_date\",\">=\",\"2026-12-05 23:17:41\"]],\"fields\":[\"name\","
	                "\"active\",\"write_date\"],\"limit\":100,\"order\":\"write_date asc, id asc\"}");
	free(text);
	json_decref(kw);
	pg.phase = RELAY_POLL_IN_SECOND;
	strcpy(pg.second, "2026-12-05 23:59:59");
	pg.after_id = 42;
	CHECK_INT(relay_poll_request(p, &pg, &kw), 0);
	text = json_dumps(json_object_get(kw, "domain"), JSON_COMPACT);
	CHECK_STR(text, "[[\"is_company\",\"=\",false],[\"write_date\",\">=\",\"2026-12-05 23:59:59\"],"
	                "[\"write_date\",\"<\",\"2026-12-06 00:00:00\"],[\"id\",\">\",42]]");
	free(text);
	CHECK_STR(json_string_value(json_object_get(kw, "order")), "id asc");
	json_decref(kw);
	relay_poll_begin(&pg, "", 300);
	CHECK_STR(pg.since, "1970-01-01 00:00:00");
	CHECK_STR(pg.cursor, "");
	CHECK_INT(relay_poll_ids_request(p, 7, 1000, &kw), 0);
	text = json_dumps(kw, JSON_COMPACT | JSON_SORT_KEYS);
	CHECK_STR(text, "{\"context\":{\"active_test\":false},\"domain\":[[\"is_company\",\"=\",false],"
	                "[\"id\",\">\",7]],\"limit\":1000,\"order\":\"id asc\"}");
	free(text);
	json_decref(kw);
	relay_poll_conf_free(p);
}

/* A resend by id reads through the source's domain and archive rule: an id
 * outside them is not answered, and is reported absent. */
static void
test_resend_request(void)
{
	struct relay_poll_conf *p = conf(100);
	json_t *ids = json_pack("[i, i, i, i]", 9, 7, 8, 9), *kw = NULL, *rows, *absent;
	char *text;

	CHECK_INT(relay_poll_resend_request(p, ids, &kw), 0);
	text = json_dumps(kw, JSON_COMPACT | JSON_SORT_KEYS);
	CHECK_STR(text, "{\"context\":{\"active_test\":false},\"domain\":[[\"is_company\",\"=\",false],"
	                "[\"id\",\"in\",[9,7,8,9]]],\"fields\":[\"name\",\"active\",\"write_date\"],"
	                "\"order\":\"id asc\"}");
	free(text);
	json_decref(kw);
	/* a source that leaves archived records out: Odoo's default active_test */
	p->archived = 0;
	CHECK_INT(relay_poll_resend_request(p, ids, &kw), 0);
	CHECK(json_object_get(kw, "context") == NULL);
	json_decref(kw);
	rows = json_array();
	CHECK_INT(relay_poll_resend_request(p, rows, &kw), -RELAY_EINVAL);
	CHECK(kw == NULL);
	json_decref(rows);
	rows = json_pack("[{s:i}]", "id", 8);
	absent = relay_poll_ids_absent(ids, rows);
	text = json_dumps(absent, JSON_COMPACT);
	CHECK_STR(text, "[7,9]");
	free(text);
	json_decref(absent);
	json_decref(rows);
	json_decref(ids);
	relay_poll_conf_free(p);
}

/*
 * 25 rows in one second and page size 10: a full first page sends the
 * poll into that second, paged by id, and on past it; every id is taken
 * exactly once.
 */
static void
test_paging_one_second(void)
{
	struct relay_poll_page pg;
	int seen[64] = { 0 }, ids[10];
	const char *dates[10];
	size_t take, pages = 0;
	int base_id = 1;

	relay_poll_begin(&pg, NULL, 300);
	while (pg.phase != RELAY_POLL_DONE && pages < 20) {
		size_t n = 0;
		json_t *rows;

		/* what the emulator would answer for this page: rows 1..25 at :41
		 * (their microseconds in reverse id order), row 26 at :42 */
		if (pg.phase == RELAY_POLL_BY_TIME) {
			if (strcmp(pg.since, "2026-12-05 23:22:41") <= 0) {
				for (int id = 25; id >= 1 && n < 10; id--, n++) {
					ids[n] = id;
					dates[n] = "2026-12-05 23:22:41";
				}
			} else if (strcmp(pg.since, "2026-12-05 23:22:42") <= 0) {
				ids[n] = 26;
				dates[n++] = "2026-12-05 23:22:42";
			}
		} else {
			for (int id = (int)pg.after_id + 1; id <= 25 && n < 10; id++, n++) {
				ids[n] = id;
				dates[n] = "2026-12-05 23:22:41";
			}
		}
		rows = rows_of(ids, dates, n);
		CHECK_INT(relay_poll_next(&pg, rows, 10, &take), 0);
		for (size_t i = 0; i < take; i++)
			seen[json_integer_value(json_object_get(json_array_get(rows, i), "id"))]++;
		json_decref(rows);
		pages++;
	}
	(void)base_id;
	CHECK_INT(pg.phase, RELAY_POLL_DONE);
	for (int id = 1; id <= 26; id++)
		CHECK_INT(seen[id], 1);
	CHECK_STR(pg.cursor, "2026-12-05 23:22:42");
	/* 1 full by time (nothing taken), 3 in the second, 1 by time (26) */
	CHECK_INT(pages, 5);
}

static void
test_paging_mixed(void)
{
	struct relay_poll_page pg;
	const int ids[3] = { 5, 3, 9 };
	const char *dates[3] = { "2026-12-05 10:00:00", "2026-12-05 10:00:01", "2026-12-05 10:00:01" };
	json_t *rows = rows_of(ids, dates, 3);
	size_t take;

	relay_poll_begin(&pg, "2026-12-05 10:05:00", 300);
	CHECK_INT(relay_poll_next(&pg, rows, 3, &take), 0);
	CHECK_INT(take, 1); /* row 5; the second :01 is read again by id */
	CHECK_INT(pg.phase, RELAY_POLL_IN_SECOND);
	CHECK_STR(pg.second, "2026-12-05 10:00:01");
	/* the cursor never goes back below what it was */
	CHECK_STR(pg.cursor, "2026-12-05 10:05:00");
	json_decref(rows);
	rows = json_pack("[{s:s}]", "write_date", "2026-12-05 10:00:01");
	CHECK_INT(relay_poll_next(&pg, rows, 3, &take), -RELAY_EINVAL);
	json_decref(rows);
}

/* rows of ids and dates, NULL a write_date of false */
static json_t *
rows_some_unstamped(const int *ids, const char *const *dates, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:i, s:o, s:s}", "id", ids[i], "write_date",
		                                   dates[i] ? json_string(dates[i]) : json_false(),
		                                   "name", "x"));
	return a;
}

/*
 * A row with no write_date (false in the answer) is taken like the others
 * (hashed, sent when changed) and the cursor moves on the others' stamps:
 * it never stops the page.
 */
static void
test_paging_no_write_date(void)
{
	struct relay_poll_page pg;
	const int ids[3] = { 5, 6, 9 }, first[3] = { 6, 5, 9 }, last[3] = { 5, 9, 6 };
	const char *dates[3] = { "2026-12-05 10:00:00", NULL, "2026-12-05 10:00:01" };
	const char *dfirst[3] = { NULL, "2026-12-05 10:00:00", "2026-12-05 10:00:01" };
	const char *dlast[3] = { "2026-12-05 10:00:00", "2026-12-05 10:00:01", NULL };
	const char *none[3] = { NULL, NULL, NULL };
	json_t *rows = rows_some_unstamped(ids, dates, 3);
	size_t take = 0;

	CHECK_INT(relay_poll_row_stamped(json_array_get(rows, 0)), 1);
	CHECK_INT(relay_poll_row_stamped(json_array_get(rows, 1)), 0);
	/* the last page: everything taken, the cursor on the stamped rows */
	relay_poll_begin(&pg, NULL, 300);
	CHECK_INT(relay_poll_next(&pg, rows, 10, &take), 0);
	CHECK_INT(take, 3);
	CHECK_INT(pg.phase, RELAY_POLL_DONE);
	CHECK_STR(pg.cursor, "2026-12-05 10:00:01");
	json_decref(rows);
	/* a full page, the unstamped row first (as NULLS FIRST would put it):
	 * taken with what precedes the last second */
	rows = rows_some_unstamped(first, dfirst, 3);
	relay_poll_begin(&pg, NULL, 300);
	CHECK_INT(relay_poll_next(&pg, rows, 3, &take), 0);
	CHECK_INT(take, 2);
	CHECK_INT(pg.phase, RELAY_POLL_IN_SECOND);
	CHECK_STR(pg.second, "2026-12-05 10:00:01");
	CHECK_STR(pg.cursor, "2026-12-05 10:00:00");
	json_decref(rows);
	/* a full page ending with it (PostgreSQL's NULLS LAST): every stamped
	 * row came before it, so the page holds them all */
	rows = rows_some_unstamped(last, dlast, 3);
	relay_poll_begin(&pg, NULL, 300);
	CHECK_INT(relay_poll_next(&pg, rows, 3, &take), 0);
	CHECK_INT(take, 3);
	CHECK_INT(pg.phase, RELAY_POLL_DONE);
	CHECK_STR(pg.cursor, "2026-12-05 10:00:01");
	json_decref(rows);
	/* a full page of unstamped rows only: taken, and the poll ends there
	 * with its cursor where it was */
	rows = rows_some_unstamped(ids, none, 3);
	relay_poll_begin(&pg, "2026-12-05 09:00:00", 300);
	CHECK_INT(relay_poll_next(&pg, rows, 3, &take), 0);
	CHECK_INT(take, 3);
	CHECK_INT(pg.phase, RELAY_POLL_DONE);
	CHECK_STR(pg.cursor, "2026-12-05 09:00:00");
	json_decref(rows);
	/* while reading one second by id (they do not match it in Odoo; taken
	 * if they come) */
	rows = rows_some_unstamped(ids, dates, 3);
	relay_poll_begin(&pg, NULL, 300);
	pg.phase = RELAY_POLL_IN_SECOND;
	strcpy(pg.second, "2026-12-05 10:00:01");
	CHECK_INT(relay_poll_next(&pg, rows, 10, &take), 0);
	CHECK_INT(take, 3);
	CHECK_INT(pg.phase, RELAY_POLL_BY_TIME);
	CHECK_STR(pg.since, "2026-12-05 10:00:02");
	json_decref(rows);
	/* a row without an id is still refused */
	rows = json_pack("[{s:b}]", "write_date", 0);
	CHECK_INT(relay_poll_next(&pg, rows, 3, &take), -RELAY_EINVAL);
	json_decref(rows);
}

static void
test_project_and_bodies(void)
{
	struct relay_poll_conf *p = conf(100);
	unsigned char h1[RELAY_POLL_HASH_LEN], h2[RELAY_POLL_HASH_LEN], h3[RELAY_POLL_HASH_LEN];
	json_t *a = json_pack("{s:i, s:s, s:s, s:b, s:s}", "id", 7, "write_date",
	                      "2026-12-05 10:00:00", "name", "Ada", "active", 1, "extra", "x");
	json_t *b = json_pack("{s:b, s:s, s:i, s:s}", "active", 1, "name", "Ada", "id", 7,
	                      "write_date", "2026-12-06 11:00:00");
	json_t *pa = relay_poll_project(p, a, h1), *pb = relay_poll_project(p, b, h2), *pc;
	json_t *rows;
	char *body, *x;
	size_t len;

	/* a new write_date alone (an echo of our own write) is not a change */
	CHECK(memcmp(h1, h2, RELAY_POLL_HASH_LEN) == 0);
	json_object_set_new(b, "active", json_false());
	pc = relay_poll_project(p, b, h3);
	CHECK(memcmp(h1, h3, RELAY_POLL_HASH_LEN) != 0); /* archiving is */
	body = relay_poll_body(p, pa, 7, "2026-12-05 10:00:00", "odoo_relay.shop_customer_7", &len);
	CHECK_STR(body, "{\"active\":true,\"external_id\":\"odoo_relay.shop_customer_7\",\"id\":7,"
	                "\"model\":\"res.partner\",\"name\":\"Ada\",\"write_date\":\"2026-12-05 10:00:00\"}");
	CHECK_INT(len, strlen(body));
	free(body);
	body = relay_poll_deleted_body(p, 7, &len);
	CHECK_STR(body, "{\"id\":7,\"model\":\"res.partner\"}");
	free(body);
	rows = json_pack("[{s:s, s:s}, {s:s, s:s}]", "module", "__export__", "name", "p_7", "module",
	                 "odoo_relay", "name", "c_7");
	x = relay_poll_pick_xmlid(rows, "odoo_relay");
	CHECK_STR(x, "odoo_relay.c_7");
	free(x);
	x = relay_poll_pick_xmlid(rows, "other");
	CHECK_STR(x, "__export__.p_7");
	free(x);
	json_decref(rows);
	{
		char lane[64];

		relay_poll_lane(p, 7, lane, sizeof(lane));
		CHECK_STR(lane, "res.partner/7");
	}
	json_decref(a);
	json_decref(b);
	json_decref(pa);
	json_decref(pb);
	json_decref(pc);
	relay_poll_conf_free(p);
}

int
main(void)
{
	RUN(test_conf_defaults);
	RUN(test_conf_errors);
	RUN(test_one_owner);
	RUN(test_time);
	RUN(test_request);
	RUN(test_resend_request);
	RUN(test_paging_one_second);
	RUN(test_paging_mixed);
	RUN(test_paging_no_write_date);
	RUN(test_project_and_bodies);
	return check_done();
}
