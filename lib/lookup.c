/*
 * Finds resolved in Odoo, cached (contract in include/odoo_relay/lookup.h).
 *
 * A resolve groups its finds by model, field and options; each group's
 * uncached values go in search_read calls of up to RELAY_LOOKUP_CHUNK
 * values, one after the other; the answers are matched back to the finds
 * by the field's value as text (Odoo's "in" on a char field is exact and
 * case-sensitive, as a SKU is). Only found ids are cached: a value that
 * matched nothing is asked again next time (the product may be created).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "odoo_relay/clock.h"
#include "odoo_relay/error.h"
#include "odoo_relay/jsonptr.h"
#include "odoo_relay/lookup.h"
#include "call_fail_int.h"

struct relay_lookup {
	json_t *cache;             /* key -> {"id", "exp"} */
};

struct resolve {
	struct relay_lookup *lk;
	struct relay_odoo *client;
	json_t *finds;
	json_t *context;
	json_t *queue;             /* [{"group", "find" (a sample), "values": [...]}] */
	size_t next;
	unsigned calls;
	relay_lookup_fn cb;
	void *arg;
};

int
relay_lookup_new(struct relay_lookup **out)
{
	struct relay_lookup *lk = calloc(1, sizeof(*lk));

	if (!lk || !(lk->cache = json_object())) {
		free(lk);
		return ENOMEM;
	}
	*out = lk;
	return 0;
}

void
relay_lookup_free(struct relay_lookup *lk)
{
	if (!lk)
		return;
	json_decref(lk->cache);
	free(lk);
}

size_t
relay_lookup_cached(const struct relay_lookup *lk)
{
	return lk ? json_object_size(lk->cache) : 0;
}

/* The group of a find: everything but its value ("\x1f"-separated). */
static char *
group_key(const json_t *f)
{
	const json_t *company = json_object_get(f, "company_id");
	const char *order = json_string_value(json_object_get(f, "order"));
	const char *ctx = json_string_value(json_object_get(f, "ctx"));
	char *k = NULL;

	if (asprintf(&k, "%s\x1f%s\x1f%d\x1f%" JSON_INTEGER_FORMAT "\x1f%d\x1f%s\x1f%d\x1f%s",
	             json_string_value(json_object_get(f, "model")),
	             json_string_value(json_object_get(f, "field")),
	             json_is_true(json_object_get(f, "active_test")),
	             company ? json_integer_value(company) : (json_int_t)0,
	             json_is_true(json_object_get(f, "first")), order ? order : "",
	             json_is_true(json_object_get(f, "as_xmlid")), ctx ? ctx : "") < 0)
		return NULL;
	return k;
}

static char *
cache_key(const char *group, const char *value)
{
	char *k = NULL;

	return asprintf(&k, "%s\x1e%s", group, value) < 0 ? NULL : k;
}

/* Whether text names the find: its model, or its id quoted as Odoo's
 * import messages quote values ("database id '42'"). */
static int
names_find(const char *text, const json_t *f)
{
	const char *model = json_string_value(json_object_get(f, "model"));
	char quoted[40];

	if (!text)
		return 0;
	if (model && strstr(text, model))
		return 1;
	if (json_is_string(json_object_get(f, "xmlid"))) {
		char *q = NULL;
		int hit = asprintf(&q, "'%s'", json_string_value(json_object_get(f, "xmlid"))) >= 0 &&
		          strstr(text, q) != NULL;

		free(q);
		if (hit)
			return 1;
	}
	if (!json_is_integer(json_object_get(f, "id")))
		return 0;
	snprintf(quoted, sizeof(quoted), "'%" JSON_INTEGER_FORMAT "'",
	         json_integer_value(json_object_get(f, "id")));
	return strstr(text, quoted) != NULL;
}

void
relay_lookup_forget(struct relay_lookup *lk, const json_t *finds, const char *why)
{
	const json_t *f;
	size_t i;

	if (!lk || !json_is_array(finds))
		return;
	json_array_foreach(finds, i, f) {
		if (why && !names_find(why, f))
			continue;
		char *g = group_key(f), *k = g ? cache_key(g, json_string_value(json_object_get(f, "value"))) : NULL;

		if (k)
			json_object_del(lk->cache, k);
		free(g);
		free(k);
	}
}

/* Keep the cache bounded: drop what expired, then, if still too big, all. */
static void
cache_trim(struct relay_lookup *lk, int64_t now)
{
	const char *key;
	json_t *v, *tmp;

	if (json_object_size(lk->cache) < RELAY_LOOKUP_CACHE_MAX)
		return;
	json_object_foreach_safe(lk->cache, tmp, key, v) {
		if (json_integer_value(json_object_get(v, "exp")) <= now)
			json_object_del(lk->cache, key);
	}
	if (json_object_size(lk->cache) >= RELAY_LOOKUP_CACHE_MAX)
		json_object_clear(lk->cache);
}

static void
resolve_free(struct resolve *r)
{
	json_decref(r->finds);
	json_decref(r->context);
	json_decref(r->queue);
	free(r);
}

static void
resolve_end(struct resolve *r, const struct relay_outcome *failure, const char *request)
{
	r->cb(r->arg, failure, request, r->calls);
	resolve_free(r);
}

/* The text of a record's field value, as the find's value is written. */
static int
value_text(const json_t *v, char *buf, size_t n)
{
	if (json_is_string(v)) {
		snprintf(buf, n, "%s", json_string_value(v));
		return 0;
	}
	return relay_json_scalar_text(v, buf, n);
}

/* Answer every find of group g whose value the answer covers. */
static void
apply_answer(struct resolve *r, const json_t *q, const json_t *records)
{
	const char *group = json_string_value(json_object_get(q, "group"));
	const json_t *values = json_object_get(q, "values"), *rec;
	json_t *f;
	json_t *hits = json_object(); /* value -> [ids] */
	int64_t now = relay_mono_ms();
	size_t i, k;
	char text[512];

	if (!hits)
		return;
	json_array_foreach(records, i, rec) {
		const char *field = json_string_value(json_object_get(json_object_get(q, "find"), "field"));
		json_t *ids;

		if (value_text(json_object_get(rec, field), text, sizeof(text)) != 0)
			continue;
		if (!(ids = json_object_get(hits, text))) {
			ids = json_array();
			json_object_set_new(hits, text, ids);
		}
		json_array_append(ids, json_object_get(rec, "id"));
	}
	json_array_foreach(r->finds, i, f) {
		char *g = group_key(f);
		const char *value = json_string_value(json_object_get(f, "value"));
		int covered = 0;
		json_t *ids, *x;

		if (!g || strcmp(g, group) != 0 || json_object_get(f, "id")) {
			free(g);
			continue;
		}
		json_array_foreach(values, k, x)
			if (strcmp(json_string_value(x), value) == 0)
				covered = 1;
		if (!covered) {
			free(g);
			continue;
		}
		ids = json_object_get(hits, value);
		const char *model = json_string_value(json_object_get(f, "model"));
		const char *field = json_string_value(json_object_get(f, "field"));
		char msg[700];
		if (!ids || json_array_size(ids) == 0) {
			snprintf(msg, sizeof(msg), "no %s with %s '%s'%s", model, field, value,
			         json_object_get(f, "company_id") ? " in the company" : "");
			json_object_set_new(f, "error", json_string(msg));
		} else if (json_array_size(ids) > 1 && !json_is_true(json_object_get(f, "first"))) {
			int off = snprintf(msg, sizeof(msg), "%zu %s records with %s '%s' (ids",
			                   json_array_size(ids), model, field, value);
			for (k = 0; k < json_array_size(ids) && k < 5 && off > 0 &&
			            (size_t)off < sizeof(msg); k++)
				off += snprintf(msg + off, sizeof(msg) - (size_t)off, "%s %" JSON_INTEGER_FORMAT,
				                k ? "," : "", json_integer_value(json_array_get(ids, k)));
			if (off > 0 && (size_t)off < sizeof(msg))
				snprintf(msg + off, sizeof(msg) - (size_t)off, "%s): refusing to guess "
				         "(\"multiple\": \"first\" with an \"order\" picks one)",
				         json_array_size(ids) > 5 ? ", ..." : "");
			json_object_set_new(f, "error", json_string(msg));
		} else {
			json_t *id = json_array_get(ids, 0);
			char *ck = cache_key(g, value);

			json_object_set(f, "id", id);
			if (json_is_true(json_object_get(f, "as_xmlid"))) {
				/* cached once its external ID is known */
				json_t *found = json_object_get(q, "found");

				if (!found)
					json_object_set_new((json_t *)q, "found", found = json_array());
				json_array_append(found, id);
			} else if (ck && json_integer_value(json_object_get(f, "cache_ms")) > 0)
				json_object_set_new(r->lk->cache, ck, json_pack("{s:O,s:I}", "id", id, "exp",
				                    (json_int_t)(now + json_integer_value(
				                    json_object_get(f, "cache_ms")))));
			free(ck);
		}
		free(g);
	}
	json_decref(hits);
}

static int search_next(struct resolve *r);

/* The external IDs of the records a search of group q found: the first
 * (oldest) of each record's, into its finds, and the cache. */
static void
apply_names(struct resolve *r, const json_t *q, const json_t *rows)
{
	const char *group = json_string_value(json_object_get(q, "group"));
	json_t *names = json_object(), *f;
	const json_t *row;
	int64_t now = relay_mono_ms();
	size_t i;
	char key[32];

	if (!names)
		return;
	json_array_foreach(rows, i, row) {
		char *full = NULL;

		snprintf(key, sizeof(key), "%" JSON_INTEGER_FORMAT,
		         json_integer_value(json_object_get(row, "res_id")));
		if (json_object_get(names, key) ||
		    asprintf(&full, "%s.%s", json_string_value(json_object_get(row, "module")),
		             json_string_value(json_object_get(row, "name"))) < 0)
			continue;
		json_object_set_new(names, key, json_string(full));
		free(full);
	}
	json_array_foreach(r->finds, i, f) {
		char *g = group_key(f), *ck;
		const json_t *xid;
		char msg[300];

		if (!g || strcmp(g, group) != 0 || !json_is_integer(json_object_get(f, "id")) ||
		    json_is_string(json_object_get(f, "xmlid"))) {
			free(g);
			continue;
		}
		snprintf(key, sizeof(key), "%" JSON_INTEGER_FORMAT,
		         json_integer_value(json_object_get(f, "id")));
		if (!(xid = json_object_get(names, key))) {
			snprintf(msg, sizeof(msg), "%s %s (%s '%s') has no external ID",
			         json_string_value(json_object_get(f, "model")), key,
			         json_string_value(json_object_get(f, "field")),
			         json_string_value(json_object_get(f, "value")));
			json_object_del(f, "id");
			json_object_set_new(f, "error", json_string(msg));
			free(g);
			continue;
		}
		json_object_set(f, "xmlid", (json_t *)xid);
		ck = cache_key(g, json_string_value(json_object_get(f, "value")));
		if (ck && json_integer_value(json_object_get(f, "cache_ms")) > 0)
			json_object_set_new(r->lk->cache, ck, json_pack("{s:O,s:O,s:I}", "id",
			                    json_object_get(f, "id"), "xmlid", xid, "exp",
			                    (json_int_t)(now + json_integer_value(
			                    json_object_get(f, "cache_ms")))));
		free(ck);
		free(g);
	}
	json_decref(names);
}

static void
searched(struct relay_odoo_result *res, void *arg)
{
	struct resolve *r = arg;
	json_t *q;
	int rc;

	if (res->outcome.klass != RELAY_CLASS_DONE) {
		resolve_end(r, &res->outcome, res->request);
		return;
	}
	q = json_array_get(r->queue, r->next - 1);
	if (json_object_get(q, "names")) {
		apply_names(r, q, res->outcome.result);
	} else {
		apply_answer(r, q, res->outcome.result);
		if (json_array_size(json_object_get(q, "found")))
			/* then the external IDs of what was found */
			json_array_insert_new(r->queue, r->next,
			                      json_pack("{s:O,s:O,s:O,s:b}", "group",
			                                json_object_get(q, "group"), "find",
			                                json_object_get(q, "find"), "ids",
			                                json_object_get(q, "found"), "names", 1));
	}
	if (r->next >= json_array_size(r->queue)) {
		resolve_end(r, NULL, NULL);
		return;
	}
	if ((rc = search_next(r)) == 0)
		return;
	struct relay_outcome o = { 0 };
	relay_call_failed(&o, rc);
	resolve_end(r, &o, NULL);
	relay_outcome_clear(&o);
}

/* Send the next search of the queue (there is one). 0, or why not. */
static int
search_next(struct resolve *r)
{
	const json_t *q = json_array_get(r->queue, r->next), *f;
	json_t *domain, *named, *ctx;
	int rc;

	r->next++;
	f = json_object_get(q, "find");
	if (json_object_get(q, "names")) {
		named = json_pack("{s:[[s,s,s],[s,s,O]],s:[s,s,s],s:s}", "domain", "model", "=",
		                  json_string_value(json_object_get(f, "model")), "res_id", "in",
		                  json_object_get(q, "ids"), "fields", "module", "name", "res_id",
		                  "order", "id");
		rc = named ? relay_odoo_call(r->client, "ir.model.data", "search_read", NULL, named,
		                             searched, r) : ENOMEM;
		json_decref(named);
		if (rc == 0)
			r->calls++;
		return rc;
	}
	domain = json_pack("[[s,s,O]]", json_string_value(json_object_get(f, "field")), "in",
	                   json_object_get(q, "values"));
	if (domain && json_object_get(f, "company_id"))
		json_array_append_new(domain, json_pack("[s,s,[O,b]]", "company_id", "in",
		                                        json_object_get(f, "company_id"), 0));
	ctx = r->context ? json_deep_copy(r->context) : json_object();
	if (ctx)
		json_object_set_new(ctx, "active_test",
		                    json_boolean(json_is_true(json_object_get(f, "active_test"))));
	named = json_pack("{s:o,s:[s,s],s:o}", "domain", domain, "fields", "id",
	                  json_string_value(json_object_get(f, "field")), "context", ctx);
	if (named && json_object_get(f, "order"))
		json_object_set(named, "order", json_object_get(f, "order"));
	rc = named ? relay_odoo_call(r->client, json_string_value(json_object_get(f, "model")),
	                             "search_read", NULL, named, searched, r) : ENOMEM;
	json_decref(named);
	if (rc == 0)
		r->calls++;
	return rc;
}

/* The finds the cache answers get their id; the others are queued, by
 * group, in chunks. */
static int
plan_searches(struct resolve *r)
{
	json_t *groups = json_object(), *f, *q;
	int64_t now = relay_mono_ms();
	size_t i;
	int rc = 0;

	if (!groups)
		return ENOMEM;
	cache_trim(r->lk, now);
	json_array_foreach(r->finds, i, f) {
		const char *value = json_string_value(json_object_get(f, "value"));
		char *g = group_key(f), *ck = g && value ? cache_key(g, value) : NULL;
		json_t *hit = ck ? json_object_get(r->lk->cache, ck) : NULL;

		json_object_del(f, "id");
		json_object_del(f, "error");
		json_object_del(f, "xmlid");
		if (!ck) {
			free(g);
			rc = value ? ENOMEM : -RELAY_EINVAL;
			break;
		}
		if (hit && json_integer_value(json_object_get(hit, "exp")) > now) {
			json_object_set(f, "id", json_object_get(hit, "id"));
			if (json_object_get(hit, "xmlid"))
				json_object_set(f, "xmlid", json_object_get(hit, "xmlid"));
		} else {
			json_t *list = json_object_get(groups, g);

			if (hit)
				json_object_del(r->lk->cache, ck);
			if (!list || json_array_size(json_object_get(list, "values")) >=
			             RELAY_LOOKUP_CHUNK) {
				if (list)
					json_array_append(r->queue, list);
				list = json_pack("{s:s,s:O,s:[],s:{}}", "group", g, "find", f, "values",
				                 "seen");
				json_object_set_new(groups, g, list);
			}
			if (!json_object_get(json_object_get(list, "seen"), value)) {
				json_object_set_new(json_object_get(list, "seen"), value, json_true());
				json_array_append_new(json_object_get(list, "values"), json_string(value));
			}
		}
		free(g);
		free(ck);
	}
	{
		const char *key;

		json_object_foreach(groups, key, q)
			json_array_append(r->queue, q);
	}
	json_decref(groups);
	return rc;
}

int
relay_lookup_resolve(struct relay_lookup *lk, struct relay_odoo *client, json_t *finds,
                     const json_t *context, relay_lookup_fn cb, void *arg)
{
	struct resolve *r;
	int rc = 0;

	if (!lk || !client || !json_is_array(finds) || !cb)
		return -RELAY_EINVAL;
	if (!(r = calloc(1, sizeof(*r))))
		return ENOMEM;
	r->lk = lk;
	r->client = client;
	r->finds = json_incref(finds);
	r->cb = cb;
	r->arg = arg;
	if ((context && !(r->context = json_deep_copy(context))) || !(r->queue = json_array())) {
		resolve_free(r);
		return ENOMEM;
	}
	/* The route's context is part of what a find found (a company, a
	 * language): each find carries it, so that the cache never answers
	 * one route with what another's context found. */
	{
		char *ctx = context ? json_dumps(context, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		size_t i;
		json_t *f;

		if (context && !ctx) {
			resolve_free(r);
			return ENOMEM;
		}
		json_array_foreach(finds, i, f)
			if (json_is_object(f) && json_object_set_new(f, "ctx", json_string(ctx ? ctx : "")))
				rc = ENOMEM;
		free(ctx);
		if (rc) {
			resolve_free(r);
			return rc;
		}
	}
	if ((rc = plan_searches(r)) != 0) {
		resolve_free(r);
		return rc;
	}
	if (json_array_size(r->queue) == 0) {
		resolve_free(r);
		return 1; /* the cache answered everything */
	}
	/* The first search starts now: its answer (and so cb) comes from the
	 * loop, and a client freed meanwhile cancels it. */
	if ((rc = search_next(r)) != 0) {
		resolve_free(r);
		return rc;
	}
	return 0;
}
