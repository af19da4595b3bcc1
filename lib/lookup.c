/*
 * Finds resolved in Odoo, cached (contract in include/odoo_relay/lookup.h).
 *
 * A resolve groups its finds by model, field and options; each group's
 * uncached values go in search_read calls of up to RELAY_LOOKUP_CHUNK
 * values, one after the other; the answers are matched back to the finds
 * by the field's value as Odoo gives it (record_key, match_ids): a string
 * in full and exactly (Odoo's "in" on a char field is exact and
 * case-sensitive, as a SKU is), a number by its value (10.0 is the find's
 * "10" or "10.0"), a many2one ([id, "name"]) by its id. Only found ids are
 * cached: a value that matched nothing is asked again next time (the
 * product may be created).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "odoo_relay/clock.h"
#include "odoo_relay/error.h"
#include "odoo_relay/jsonptr.h"
#include "odoo_relay/lookup.h"
#include "odoo_relay/utf8.h"
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

/*
 * Values are matched through keys: "s" and a string in full, "n" and a
 * number's text (relay_json_scalar_text: 10.0 and 10 are both "n10").
 * A record's field value has one key (none for false: an empty field);
 * a find's value, always text, has "s" and itself, and the "n" keys of
 * the number it spells when it is one, so that it meets the record's
 * value whatever its type.
 */

/* The key of a record's field value v into *key (malloc'd), or NULL: a
 * many2one [id, "name"] by its id, a string in full. 0, or -1 when the
 * value can match nothing (false, null, a list of ids, a string holding a
 * NUL) or on allocation failure. */
static int
record_key(const json_t *v, char **key)
{
	char num[64];

	*key = NULL;
	if (json_is_array(v)) {
		/* a many2one is [id, "name"]; a list of ids (x2many) matches nothing */
		if (json_array_size(v) != 2 || !json_is_integer(json_array_get(v, 0)) ||
		    !(json_is_string(json_array_get(v, 1)) || json_is_false(json_array_get(v, 1))))
			return -1;
		v = json_array_get(v, 0);
	}
	if (json_is_string(v)) {
		if (memchr(json_string_value(v), '\0', json_string_length(v)))
			return -1;
		return asprintf(key, "s%s", json_string_value(v)) < 0 ? (*key = NULL, -1) : 0;
	}
	if (json_is_true(v))
		return (*key = strdup("strue")) ? 0 : -1;
	if (!json_is_number(v) || relay_json_scalar_text(v, num, sizeof(num)) != 0)
		return -1;
	return asprintf(key, "n%s", num) < 0 ? (*key = NULL, -1) : 0;
}

/* The "n" keys of text when it is a plain decimal number ("10", "-3",
 * "10.50", "1e3"; not " 1", "0x1A", "inf"): as an integer (exact beyond
 * 2^53) and as a double, into k1 and k2 (size n each; "" when none). */
static void
number_keys(const char *text, char *k1, char *k2, size_t n)
{
	const char *p = text + (text[0] == '-' || text[0] == '+');
	int integral = 1;
	char *end;
	json_t *j;

	k1[0] = k2[0] = '\0';
	if (!((*p >= '0' && *p <= '9') || (*p == '.' && p[1] >= '0' && p[1] <= '9')))
		return;
	for (const char *q = p; *q; q++) {
		if (*q >= '0' && *q <= '9')
			continue;
		if (!strchr(".eE+-", *q))
			return;
		integral = 0;
	}
	if (integral) {
		long long ll;

		errno = 0;
		ll = strtoll(text, &end, 10);
		if (errno == 0 && *end == '\0' && (j = json_integer((json_int_t)ll))) {
			k1[0] = 'n';
			if (relay_json_scalar_text(j, k1 + 1, n - 1) != 0)
				k1[0] = '\0';
			json_decref(j);
		}
	}
	{
		double d;

		errno = 0;
		d = strtod(text, &end);
		if (*end == '\0' && isfinite(d) && (j = json_real(d))) {
			k2[0] = 'n';
			if (relay_json_scalar_text(j, k2 + 1, n - 1) != 0)
				k2[0] = '\0';
			json_decref(j);
		}
	}
}

/* The ids of hits (key -> [ids]) that value (a find's, text) matches, in
 * the order found, each once: a new array, or NULL on allocation failure. */
static json_t *
match_ids(const json_t *hits, const char *value)
{
	json_t *out = json_array(), *id;
	char k1[80], k2[80], *sk = NULL;
	const char *keys[3];
	size_t i, j, m;

	if (!out || asprintf(&sk, "s%s", value) < 0) {
		json_decref(out);
		return NULL;
	}
	number_keys(value, k1, k2, sizeof(k1));
	keys[0] = sk;
	keys[1] = k1;
	keys[2] = strcmp(k1, k2) != 0 ? k2 : "";
	for (i = 0; i < 3; i++) {
		if (!keys[i][0])
			continue;
		json_array_foreach(json_object_get(hits, keys[i]), j, id) {
			const json_t *seen;
			int dup = 0;

			json_array_foreach(out, m, seen)
				dup |= json_equal((json_t *)seen, id);
			if (!dup)
				json_array_append(out, id);
		}
	}
	free(sk);
	return out;
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

	if (!hits)
		return;
	json_array_foreach(records, i, rec) {
		const char *field = json_string_value(json_object_get(json_object_get(q, "find"), "field"));
		json_t *ids;
		char *key;

		if (record_key(json_object_get(rec, field), &key) != 0)
			continue;
		if (!(ids = json_object_get(hits, key))) {
			ids = json_array();
			json_object_set_new(hits, key, ids);
		}
		json_array_append(ids, json_object_get(rec, "id"));
		free(key);
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
		ids = match_ids(hits, value);
		const char *model = json_string_value(json_object_get(f, "model"));
		const char *field = json_string_value(json_object_get(f, "field"));
		char msg[700];
		if (!ids || json_array_size(ids) == 0) {
			snprintf(msg, sizeof(msg), "no %s with %s '%s'%s", model, field, value,
			         json_object_get(f, "company_id") ? " in the company" : "");
			relay_utf8_trim(msg);
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
			relay_utf8_trim(msg);
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
		json_decref(ids);
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
			relay_utf8_trim(msg);
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
