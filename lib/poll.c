/*
 * odoo-relay: the poller's configuration and decisions, as values
 * (include/odoo_relay/poll.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "odoo_relay/config.h"
#include "odoo_relay/error.h"
#include "odoo_relay/poll.h"
#include "odoo_relay/query_spec.h"

#define FIELDS_MAX 256
#define DAY_S 86400

/* ---- configuration ------------------------------------------------------- */

void
relay_poll_conf_free(struct relay_poll_conf *p)
{
	size_t i;

	if (!p)
		return;
	free(p->destination);
	free(p->model);
	json_decref(p->domain);
	for (i = 0; i < p->n_fields; i++)
		free(p->fields[i]);
	free(p->fields);
	free(p->field_line);
	free(p->field_column);
	free(p->topic);
	free(p->deleted_topic);
	free(p);
}

static int
model_ok(const char *s)
{
	if (!*s || *s == '.')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '.'))
			return 0;
	return 1;
}

/* A plain field name: what search_read's "fields" takes (no dotted path). */
static int
field_ok(const char *s)
{
	return relay_query_field_ok(s) && !strchr(s, '.');
}

static int
add_field(struct relay_poll_conf *p, const char *name, unsigned line, unsigned column)
{
	if (!(p->fields[p->n_fields] = strdup(name)))
		return ENOMEM;
	p->field_line[p->n_fields] = line;
	p->field_column[p->n_fields] = column;
	p->n_fields++;
	return 0;
}

static int
parse_fields(struct relay_schema *s, const struct relay_schema_doc *doc, const json_t *src,
             struct relay_poll_conf *p)
{
	json_t *arr, *v;
	size_t i, j, n;
	int rc;

	if ((rc = relay_schema_array(s, src, "fields", 1, &arr)) != 0)
		return rc;
	n = json_array_size(arr);
	if (n == 0 || n > FIELDS_MAX)
		return relay_schema_fail(s, src, "fields", "expected 1 to %d field names", FIELDS_MAX);
	/* one more for "active" */
	if (!(p->fields = calloc(n + 1, sizeof(*p->fields))) ||
	    !(p->field_line = calloc(n + 1, sizeof(*p->field_line))) ||
	    !(p->field_column = calloc(n + 1, sizeof(*p->field_column))))
		return relay_schema_oom(s);
	json_array_foreach(arr, i, v) {
		const char *f = json_string_value(v);
		unsigned line = 0, column = 0;

		if (!f || !field_ok(f))
			return relay_schema_error(s, -RELAY_ECONFIG, arr, NULL, i, RELAY_SCHEMA_INDEX,
			                          "fields[%zu]: expected a field name ([a-z_][a-z0-9_]*)", i);
		if (!strcmp(f, "id") || !strcmp(f, "write_date"))
			return relay_schema_error(s, -RELAY_ECONFIG, arr, NULL, i, RELAY_SCHEMA_INDEX,
			                          "fields[%zu]: %s is always sent; leave it out", i, f);
		for (j = 0; j < p->n_fields; j++)
			if (!strcmp(p->fields[j], f))
				return relay_schema_error(s, -RELAY_ECONFIG, arr, NULL, i, RELAY_SCHEMA_INDEX,
				                          "fields[%zu]: %s is listed twice", i, f);
		relay_schema_where_index(doc, arr, i, &line, &column);
		if (add_field(p, f, line, column))
			return relay_schema_oom(s);
	}
	if (p->archived) {
		for (j = 0; j < p->n_fields; j++)
			if (!strcmp(p->fields[j], "active"))
				return 0;
		if (add_field(p, "active", 0, 0))
			return relay_schema_oom(s);
	}
	return 0;
}

static int
dup_default(struct relay_schema *s, const char *given, const char *model, const char *suffix,
            char **out)
{
	size_t n;

	if (given)
		*out = strdup(given);
	else {
		n = strlen(model) + strlen(suffix) + 1;
		if ((*out = malloc(n)))
			snprintf(*out, n, "%s%s", model, suffix);
	}
	return *out ? 0 : relay_schema_oom(s);
}

int
relay_poll_conf_parse(struct relay_schema *s, const struct relay_schema_doc *doc,
                      const json_t *src, struct relay_poll_conf **out)
{
	static const char *const keys[] = {
		"kind", "destination", "model", "domain", "fields", "archived", "interval_s",
		"overlap_s", "page_size", "topic", "deleted_topic", "deletion_check_s", "unrouted",
		NULL,
	};
	struct relay_poll_conf *p;
	const char *dest = "odoo", *model = NULL, *topic = NULL, *dtopic = NULL, *why;
	const json_t *at = NULL;
	json_t *domain = NULL;
	char buf[256];
	int rc, archived = 1;

	*out = NULL;
	if (!(p = calloc(1, sizeof(*p))))
		return relay_schema_oom(s);
	p->interval_s = 60;
	p->overlap_s = 300;
	p->deletion_check_s = 3600;
	p->page_size = 500;
	if ((rc = relay_schema_keys(s, src, keys, "for kind odoo-poll")) != 0
	    || (rc = relay_schema_string(s, src, "destination", 0, &dest)) != 0
	    || (rc = relay_schema_string(s, src, "model", 1, &model)) != 0
	    || (rc = relay_schema_bool(s, src, "archived", &archived)) != 0
	    || (rc = relay_schema_int(s, src, "interval_s", 1, DAY_S, &p->interval_s)) != 0
	    || (rc = relay_schema_int(s, src, "overlap_s", 0, DAY_S, &p->overlap_s)) != 0
	    || (rc = relay_schema_int(s, src, "deletion_check_s", 0, 7 * DAY_S,
	                              &p->deletion_check_s)) != 0
	    || (rc = relay_schema_unsigned(s, src, "page_size", 10, 10000, &p->page_size)) != 0
	    || (rc = relay_schema_string(s, src, "topic", 0, &topic)) != 0
	    || (rc = relay_schema_string(s, src, "deleted_topic", 0, &dtopic)) != 0)
		goto fail;
	if (!model_ok(model)) {
		rc = relay_schema_fail(s, src, "model", "not a model name (like \"res.partner\")");
		goto fail;
	}
	p->archived = archived;
	if ((rc = relay_schema_array(s, src, "domain", 0, &domain)) != 0)
		goto fail;
	if (domain && (why = relay_query_domain_problem(domain, NULL, 0, &at, buf, sizeof(buf)))) {
		rc = relay_schema_fail_at(s, at, src, "domain: %s", why);
		goto fail;
	}
	if (!(p->domain = domain ? json_deep_copy(domain) : json_array()) ||
	    !(p->destination = strdup(dest)) || !(p->model = strdup(model))) {
		rc = relay_schema_oom(s);
		goto fail;
	}
	if ((rc = parse_fields(s, doc, src, p)) != 0
	    || (rc = dup_default(s, topic, model, ".changed", &p->topic)) != 0
	    || (rc = dup_default(s, dtopic, model, ".deleted", &p->deleted_topic)) != 0)
		goto fail;
	*out = p;
	return 0;
fail:
	relay_poll_conf_free(p);
	return rc;
}

int
relay_poll_conf_check(const struct relay_config *cfg, struct relay_config_error *err)
{
	struct relay_schema s;
	size_t i, j;

	relay_schema_init(&s, cfg->doc, cfg->path, err, RELAY_SCHEMA_PLACE_VALUE);
	for (i = 0; i < cfg->n_sources; i++) {
		const struct relay_source_conf *src = &cfg->sources[i];
		const struct relay_destination_conf *d = NULL;

		if (src->kind != RELAY_SOURCE_ODOO_POLL)
			continue;
		for (j = 0; j < cfg->n_destinations; j++)
			if (!strcmp(cfg->destinations[j].name, src->poll->destination))
				d = &cfg->destinations[j];
		if (d && d->kind == RELAY_DEST_ODOO)
			continue;
		if (err) {
			memset(err, 0, sizeof(*err));
			snprintf(err->file, sizeof(err->file), "%s", cfg->path ? cfg->path : "");
			err->line = src->line;
			err->column = src->column;
			snprintf(err->text, sizeof(err->text),
			         "sources.%s.destination: %s \"%s\" (an odoo-poll source reads from a "
			         "destination of kind odoo)", src->name,
			         d ? "not of kind odoo:" : "no destination is named", src->poll->destination);
		}
		return -RELAY_ECONFIG;
	}
	return 0;
}

const char *
relay_poll_owner(const struct relay_config *cfg, const char *dest, const char *model,
                 const char *field, unsigned *line, unsigned *column)
{
	size_t i, j, n = strcspn(field, "/");

	for (i = 0; cfg && dest && model && i < cfg->n_sources; i++) {
		const struct relay_poll_conf *p = cfg->sources[i].poll;

		if (cfg->sources[i].kind != RELAY_SOURCE_ODOO_POLL || !p ||
		    strcmp(p->destination, dest) || strcmp(p->model, model))
			continue;
		for (j = 0; j < p->n_fields; j++) {
			/* "active" comes with archived: archiving belongs to Odoo */
			if (strlen(p->fields[j]) != n || strncmp(p->fields[j], field, n))
				continue;
			if (line)
				*line = p->field_line[j] ? p->field_line[j] : cfg->sources[i].line;
			if (column)
				*column = p->field_line[j] ? p->field_column[j] : cfg->sources[i].column;
			return cfg->sources[i].name;
		}
	}
	return NULL;
}

/* ---- time --------------------------------------------------------------- */

int
relay_poll_time_parse(const char *text, int64_t *out)
{
	struct tm tm;
	int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
	char sep = ' ';

	if (!text)
		return -RELAY_EINVAL;
	if (sscanf(text, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
		return -RELAY_EINVAL;
	if (text[10]) {
		sep = text[10];
		if ((sep != ' ' && sep != 'T') ||
		    sscanf(text + 11, "%2d:%2d:%2d%n", &h, &mi, &sec, &n) != 3 || n != 8 ||
		    (text[19] && text[19] != '.'))
			return -RELAY_EINVAL;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || h < 0 ||
	    mi < 0 || sec < 0)
		return -RELAY_EINVAL;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*out = (int64_t)timegm(&tm);
	return 0;
}

void
relay_poll_time_format(int64_t t, char out[RELAY_POLL_TIME_LEN])
{
	time_t tt = (time_t)(t < 0 ? 0 : t);
	struct tm tm;

	gmtime_r(&tt, &tm);
	if (strftime(out, RELAY_POLL_TIME_LEN, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(out, RELAY_POLL_TIME_LEN, "1970-01-01 00:00:00");
}

/* ---- paging ------------------------------------------------------------- */

void
relay_poll_begin(struct relay_poll_page *pg, const char *cursor, int64_t overlap_s)
{
	int64_t t = 0;

	memset(pg, 0, sizeof(*pg));
	pg->phase = RELAY_POLL_BY_TIME;
	if (cursor && *cursor && relay_poll_time_parse(cursor, &t) == 0) {
		snprintf(pg->cursor, sizeof(pg->cursor), "%s", cursor);
		t -= overlap_s;
	}
	relay_poll_time_format(t, pg->since);
}

static json_t *
leaf(const char *field, const char *op, json_t *value)
{
	return value ? json_pack("[s, s, o]", field, op, value) : NULL;
}

static int
append_leaf(json_t *domain, json_t *l)
{
	return l ? json_array_append_new(domain, l) : -1;
}

/* The fields a poll reads: the source's, and write_date. NULL: no memory. */
static json_t *
read_fields(const struct relay_poll_conf *p)
{
	json_t *fields = json_array();
	int bad = !fields;

	for (size_t i = 0; !bad && i < p->n_fields; i++)
		bad |= json_array_append_new(fields, json_string(p->fields[i]));
	if (bad || json_array_append_new(fields, json_string("write_date"))) {
		json_decref(fields);
		return NULL;
	}
	return fields;
}

/* kw, with archived records too when the source sends them (as every read
 * of the source does); kw itself on success, else NULL (kw released). */
static json_t *
with_archived(const struct relay_poll_conf *p, json_t *kw)
{
	if (kw && p->archived &&
	    json_object_set_new(kw, "context", json_pack("{s:b}", "active_test", 0))) {
		json_decref(kw);
		return NULL;
	}
	return kw;
}

int
relay_poll_request(const struct relay_poll_conf *p, const struct relay_poll_page *pg,
                   json_t **kwargs)
{
	json_t *domain = NULL, *fields = NULL, *kw = NULL;
	char next[RELAY_POLL_TIME_LEN];
	int64_t t;
	int bad = 0;

	*kwargs = NULL;
	if (pg->phase == RELAY_POLL_DONE)
		return -RELAY_EINVAL;
	if (!(domain = json_deep_copy(p->domain)) || !(fields = read_fields(p)))
		goto oom;
	/* the conditions of the page come after the configured ones: a domain
	 * is a list of leaves joined by an implicit "&" */
	if (pg->phase == RELAY_POLL_BY_TIME) {
		bad |= append_leaf(domain, leaf("write_date", ">=", json_string(pg->since)));
	} else {
		if (relay_poll_time_parse(pg->second, &t))
			goto inval;
		relay_poll_time_format(t + 1, next);
		bad |= append_leaf(domain, leaf("write_date", ">=", json_string(pg->second)));
		bad |= append_leaf(domain, leaf("write_date", "<", json_string(next)));
		bad |= append_leaf(domain, leaf("id", ">", json_integer(pg->after_id)));
	}
	if (bad)
		goto oom;
	kw = json_pack("{s:o, s:o, s:s, s:I}", "domain", domain, "fields", fields, "order",
	               pg->phase == RELAY_POLL_BY_TIME ? "write_date asc, id asc" : "id asc",
	               "limit", (json_int_t)p->page_size);
	domain = fields = NULL;
	if (!(kw = with_archived(p, kw)))
		goto oom;
	*kwargs = kw;
	return 0;
inval:
	json_decref(domain);
	json_decref(fields);
	return -RELAY_EINVAL;
oom:
	json_decref(domain);
	json_decref(fields);
	json_decref(kw);
	return ENOMEM;
}

int
relay_poll_ids_request(const struct relay_poll_conf *p, int64_t after_id, unsigned limit,
                       json_t **kwargs)
{
	json_t *domain = json_deep_copy(p->domain), *kw = NULL;

	*kwargs = NULL;
	if (!domain || append_leaf(domain, leaf("id", ">", json_integer(after_id))))
		goto oom;
	kw = json_pack("{s:o, s:s, s:I}", "domain", domain, "order", "id asc", "limit",
	               (json_int_t)limit);
	domain = NULL;
	if (!(kw = with_archived(p, kw)))
		goto oom;
	*kwargs = kw;
	return 0;
oom:
	json_decref(domain);
	json_decref(kw);
	return ENOMEM;
}

int
relay_poll_resend_request(const struct relay_poll_conf *p, const json_t *ids, json_t **kwargs)
{
	json_t *domain = NULL, *fields = NULL, *kw = NULL;

	*kwargs = NULL;
	if (!json_is_array(ids) || json_array_size(ids) == 0)
		return -RELAY_EINVAL;
	/* the source's own domain first, so that only its records come back */
	if (!(domain = json_deep_copy(p->domain)) || !(fields = read_fields(p)) ||
	    append_leaf(domain, leaf("id", "in", json_deep_copy(ids))))
		goto oom;
	kw = json_pack("{s:o, s:o, s:s}", "domain", domain, "fields", fields, "order", "id asc");
	domain = fields = NULL;
	/* archived records only when the source sends them: as the poll */
	if (!(kw = with_archived(p, kw)))
		goto oom;
	*kwargs = kw;
	return 0;
oom:
	json_decref(domain);
	json_decref(fields);
	json_decref(kw);
	return ENOMEM;
}

static int
cmp_int64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

json_t *
relay_poll_ids_absent(const json_t *asked, const json_t *rows)
{
	size_t n = json_array_size(asked), i, j;
	int64_t *ids = malloc((n ? n : 1) * sizeof(*ids));
	json_t *out = json_array(), *row;

	if (!ids || !out)
		goto oom;
	for (i = 0; i < n; i++)
		ids[i] = json_integer_value(json_array_get(asked, i));
	qsort(ids, n, sizeof(*ids), cmp_int64);
	for (i = 0; i < n; i++) {
		int found = 0;

		if (i > 0 && ids[i] == ids[i - 1])
			continue;
		json_array_foreach(rows, j, row)
			if (json_integer_value(json_object_get(row, "id")) == ids[i]) {
				found = 1;
				break;
			}
		if (!found && json_array_append_new(out, json_integer(ids[i])))
			goto oom;
	}
	free(ids);
	return out;
oom:
	free(ids);
	json_decref(out);
	return NULL;
}

/* The second of a row's write_date, or NULL for a row that has none. */
static const char *
row_second(const json_t *row, char out[RELAY_POLL_TIME_LEN])
{
	const char *w = json_string_value(json_object_get(row, "write_date"));
	int64_t t;

	if (!w || relay_poll_time_parse(w, &t))
		return NULL;
	relay_poll_time_format(t, out);
	return out;
}

int
relay_poll_row_stamped(const json_t *row)
{
	char sec[RELAY_POLL_TIME_LEN];

	return row_second(row, sec) != NULL;
}

static void
raise_cursor(struct relay_poll_page *pg, const char *second)
{
	if (strcmp(second, pg->cursor) > 0)
		snprintf(pg->cursor, sizeof(pg->cursor), "%s", second);
}

int
relay_poll_next(struct relay_poll_page *pg, const json_t *rows, unsigned page_size,
                size_t *take)
{
	char last[RELAY_POLL_TIME_LEN], sec[RELAY_POLL_TIME_LEN], next[RELAY_POLL_TIME_LEN];
	size_t i, n = json_array_size(rows), k;
	int64_t t;

	*take = 0;
	if (!json_is_array(rows) || pg->phase == RELAY_POLL_DONE)
		return -RELAY_EINVAL;
	for (i = 0; i < n; i++)
		if (!json_is_integer(json_object_get(json_array_get(rows, i), "id")))
			return -RELAY_EINVAL;
	/*
	 * A row without a write_date (false or null) is taken like the others
	 * and the cursor moves on the others' stamps: refusing the page would
	 * stop the source there for good, and leaving the row out would hide
	 * it (the poller says it once). A database orders such rows all first
	 * or all last, never among the others.
	 */
	if (pg->phase == RELAY_POLL_BY_TIME) {
		const json_t *end = n ? json_array_get(rows, n - 1) : NULL;

		if (n < page_size || !row_second(end, last)) {
			/* the last page: everything from since on is here. Or a
			 * full page ending unstamped: every stamped row comes before
			 * such rows (nulls last), so all of them are here too; and a
			 * page of unstamped rows only gives no time to go on from. */
			for (i = 0; i < n; i++)
				if (row_second(json_array_get(rows, i), sec))
					raise_cursor(pg, sec);
			*take = n;
			pg->phase = RELAY_POLL_DONE;
			return 0;
		}
		/* A full page: its last second may go on past it, and Odoo orders
		 * that second's rows by microseconds we never see, so they are
		 * read again by id. What comes before that second is complete. */
		for (k = 0; k < n; k++) {
			if (!row_second(json_array_get(rows, k), sec))
				continue; /* unstamped, first: taken */
			if (strcmp(sec, last) >= 0)
				break;
			raise_cursor(pg, sec);
		}
		*take = k;
		pg->phase = RELAY_POLL_IN_SECOND;
		memcpy(pg->second, last, sizeof(last));
		pg->after_id = 0;
		return 0;
	}
	/* IN_SECOND: every row of the second, by id */
	*take = n;
	if (n)
		raise_cursor(pg, pg->second);
	if (n == page_size) {
		pg->after_id = json_integer_value(json_object_get(json_array_get(rows, n - 1), "id"));
		return 0;
	}
	if (relay_poll_time_parse(pg->second, &t))
		return -RELAY_EINVAL;
	relay_poll_time_format(t + 1, next);
	memcpy(pg->since, next, sizeof(next));
	pg->phase = RELAY_POLL_BY_TIME;
	pg->after_id = 0;
	return 0;
}

/* ---- records ------------------------------------------------------------ */

json_t *
relay_poll_project(const struct relay_poll_conf *p, const json_t *rec,
                   unsigned char hash[RELAY_POLL_HASH_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	json_t *o = json_object();
	char *text = NULL;
	size_t i;

	if (!o)
		return NULL;
	for (i = 0; i < p->n_fields; i++) {
		json_t *v = json_object_get(rec, p->fields[i]);

		if (json_object_set_new(o, p->fields[i], v ? json_incref(v) : json_null()))
			goto fail;
	}
	/* canonical: sorted keys, no spaces, so equal values hash equal */
	if (!(text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)))
		goto fail;
	if (!EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL) ||
	    mdlen < RELAY_POLL_HASH_LEN)
		goto fail;
	memcpy(hash, md, RELAY_POLL_HASH_LEN);
	free(text);
	return o;
fail:
	free(text);
	json_decref(o);
	return NULL;
}

static char *
dump(json_t *o, size_t *len)
{
	char *text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(o);
	if (text && len)
		*len = strlen(text);
	return text;
}

char *
relay_poll_body(const struct relay_poll_conf *p, const json_t *projection, int64_t id,
                const char *write_date, const char *xmlid, size_t *len)
{
	json_t *o = json_deep_copy(projection);

	if (!o || json_object_set_new(o, "id", json_integer(id)) ||
	    json_object_set_new(o, "model", json_string(p->model)) ||
	    json_object_set_new(o, "write_date", write_date ? json_string(write_date) : json_null()) ||
	    json_object_set_new(o, "external_id", xmlid ? json_string(xmlid) : json_null())) {
		json_decref(o);
		return NULL;
	}
	return dump(o, len);
}

char *
relay_poll_deleted_body(const struct relay_poll_conf *p, int64_t id, size_t *len)
{
	return dump(json_pack("{s:I, s:s}", "id", (json_int_t)id, "model", p->model), len);
}

void
relay_poll_lane(const struct relay_poll_conf *p, int64_t id, char *buf, size_t n)
{
	snprintf(buf, n, "%s/%lld", p->model, (long long)id);
}

char *
relay_poll_pick_xmlid(const json_t *rows, const char *module)
{
	const json_t *pick = NULL, *r;
	size_t i, n;
	char *out;

	json_array_foreach(rows, i, r) {
		const char *m = json_string_value(json_object_get(r, "module"));

		if (!m || !json_string_value(json_object_get(r, "name")))
			continue;
		if (!pick || (module && !strcmp(m, module) &&
		              strcmp(json_string_value(json_object_get(pick, "module")), module)))
			pick = r;
	}
	if (!pick)
		return NULL;
	n = strlen(json_string_value(json_object_get(pick, "module"))) +
	    strlen(json_string_value(json_object_get(pick, "name"))) + 2;
	if ((out = malloc(n)))
		snprintf(out, n, "%s.%s", json_string_value(json_object_get(pick, "module")),
		         json_string_value(json_object_get(pick, "name")));
	return out;
}
