/*
 * odoo-emulator: the model methods a client can call, call_kw and JSON-2
 * dispatch with Python's argument binding, authentication, the records the
 * control API shows, and the seed data of a fresh database.
 */
#include "emu_orm.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- methods ----------------------------------------------------------- */

enum method_kind { MK_MODEL, MK_CREATE, MK_RECORDS };

struct method_def {
	const char *name;
	int model;              /* -1: every model */
	enum method_kind kind;
	struct emu_sig sig;     /* after self (and ids) */
	int (*fn)(struct emu *e, const struct emu_call *c, struct model *m,
		  json_t *ids, json_t **argv, json_t **result);
};

static int m_create(struct emu *e, const struct emu_call *c, struct model *m,
		    json_t *ids, json_t **argv, json_t **result)
{
	json_t *vl = argv[0], *v;
	json_int_t id;
	size_t i;

	(void)ids;
	if (orm_check_access(e, c, m, ACL_CREATE) < 0)
		return -1;
	if (json_is_object(vl)) {
		if (orm_create(e, c, m, vl, &id) < 0)
			return -1;
		*result = json_integer(id);
		return 0;
	}
	if (json_is_string(vl))
		return emu_raise(e, "builtins.AttributeError",
				 "'str' object has no attribute 'get'");
	if (!json_is_array(vl))
		return emu_raise(e, "builtins.TypeError", "'%s' object is not iterable",
				 emu_pytype(vl));
	*result = json_array();
	json_array_foreach(vl, i, v) {
		if (orm_create(e, c, m, v, &id) < 0) {
			json_decref(*result);
			*result = NULL;
			return -1;
		}
		json_array_append_new(*result, json_integer(id));
	}
	return 0;
}

static int m_search(struct emu *e, const struct emu_call *c, struct model *m,
		    json_t *ids, json_t **argv, json_t **result)
{
	json_t *recs;

	(void)ids;
	if (orm_search(e, c, m, argv[0], argv[1], argv[2], argv[3], &recs) < 0)
		return -1;
	*result = orm_ids_of(recs);
	json_decref(recs);
	return 0;
}

static bool load_classic(const json_t *load)
{
	return !load || emu_truthy(load);
}

static int m_search_read(struct emu *e, const struct emu_call *c,
			 struct model *m, json_t *ids, json_t **argv,
			 json_t **result)
{
	json_t *recs;
	int rc;

	(void)ids;
	emu_poll_note_search(e, m->def->name, argv[0]);
	if (orm_search(e, c, m, argv[0], argv[2], argv[3], argv[4], &recs) < 0)
		return -1;
	rc = orm_read(e, c, m, recs, argv[1], load_classic(argv[5]), result);
	json_decref(recs);
	if (rc == 0)
		emu_poll_unstamp(e, m->def->name, *result);
	return rc;
}

static int m_search_count(struct emu *e, const struct emu_call *c,
			  struct model *m, json_t *ids, json_t **argv,
			  json_t **result)
{
	json_t *recs;

	(void)ids;
	if (orm_search(e, c, m, argv[0], NULL, argv[1], NULL, &recs) < 0)
		return -1;
	*result = json_integer((json_int_t)json_array_size(recs));
	json_decref(recs);
	return 0;
}

static int m_name_search(struct emu *e, const struct emu_call *c,
			 struct model *m, json_t *ids, json_t **argv,
			 json_t **result)
{
	json_t *recs, *r;
	const char *name = json_is_string(argv[0]) ? json_string_value(argv[0]) : "";
	const char *op = json_is_string(argv[2]) ? json_string_value(argv[2]) : "ilike";
	json_int_t limit = argv[3] ? orm_opt_int(argv[3], -1) : 100;
	json_t *nameval = json_string(name);
	size_t i;

	(void)ids;
	if (!orm_is_op(op)) {
		json_decref(nameval);
		return emu_raise(e, "builtins.ValueError", "Invalid operator %s", op);
	}
	if (m->idx == M_PRODUCT && *name) {
		json_decref(nameval);
		return product_name_search(e, c, m, name, op, argv[1], limit, result);
	}
	if (orm_search(e, c, m, argv[1], NULL, NULL, NULL, &recs) < 0) {
		json_decref(nameval);
		return -1;
	}
	*result = json_array();
	json_array_foreach(recs, i, r) {
		char *dn = orm_display_name(e, m, r);
		json_t *dv = json_string(dn);

		if ((!*name || orm_scalar_match(dv, op, nameval)) &&
		    (limit < 0 || (json_int_t)json_array_size(*result) < limit))
			json_array_append_new(*result,
					      json_pack("[I, s]", (json_int_t)orm_rec_id(r), dn));
		json_decref(dv);
		free(dn);
	}
	json_decref(nameval);
	json_decref(recs);
	return 0;
}

static int m_fields_get(struct emu *e, const struct emu_call *c,
			struct model *m, json_t *ids, json_t **argv,
			json_t **result)
{
	json_t *all = argv[0], *attrs = argv[1];

	(void)ids;
	(void)c;
	*result = json_object();
	for (const struct field_def *f = m->def->fields; f->name; f++) {
		json_t *d, *filtered, *v;
		bool wanted = !json_is_array(all) || json_array_size(all) == 0;
		size_t i;

		json_array_foreach(all, i, v)
			if (json_is_string(v) && strcmp(json_string_value(v), f->name) == 0)
				wanted = true;
		if (!wanted)
			continue;
		d = json_pack("{s:s, s:s, s:b, s:b, s:b}", "type", orm_type_name(f->type),
			      "string", f->label, "required",
			      (f->flags & FF_REQUIRED) != 0, "readonly",
			      (f->flags & (FF_AUTO | FF_COMPUTED)) != 0, "store",
			      (f->flags & FF_COMPUTED) == 0);
		if (f->relation)
			json_object_set_new(d, "relation", json_string(f->relation));
		if (f->inverse)
			json_object_set_new(d, "relation_field", json_string(f->inverse));
		if (f->selection) {
			const char *const *sel = orm_field_selection(e, f);
			json_t *s = json_array();

			for (int k = 0; sel[k]; k += 2)
				json_array_append_new(s, json_pack("[s, s]", sel[k], sel[k + 1]));
			json_object_set_new(d, "selection", s);
		}
		if (json_is_array(attrs) && json_array_size(attrs)) {
			filtered = json_object();
			json_array_foreach(attrs, i, v)
				if (json_is_string(v) && json_object_get(d, json_string_value(v)))
					json_object_set(filtered, json_string_value(v),
							json_object_get(d, json_string_value(v)));
			json_decref(d);
			d = filtered;
		}
		json_object_set_new(*result, f->name, d);
	}
	return 0;
}

static int m_load(struct emu *e, const struct emu_call *c, struct model *m,
		  json_t *ids, json_t **argv, json_t **result)
{
	(void)ids;
	return orm_load(e, c, m, argv[0], argv[1], result);
}

/* The records of ids that exist (and that the record rules let one see). */
static json_t *existing(struct emu *e, const struct emu_call *c,
			struct model *m, json_t *ids)
{
	json_t *recs = json_array(), *x;
	size_t i;

	json_array_foreach(ids, i, x) {
		json_t *r = orm_rec_get(m, json_integer_value(x));

		if (r && (m->idx != M_APIKEY || orm_rec_int(r, "user_id") == c->uid))
			json_array_append(recs, r);
	}
	(void)e;
	return recs;
}

static int m_read(struct emu *e, const struct emu_call *c, struct model *m,
		  json_t *ids, json_t **argv, json_t **result)
{
	json_t *recs;
	int rc;

	if (orm_check_access(e, c, m, ACL_READ) < 0)
		return -1;
	recs = existing(e, c, m, ids);
	rc = orm_read(e, c, m, recs, argv[0], load_classic(argv[1]), result);
	json_decref(recs);
	return rc;
}

static int m_write(struct emu *e, const struct emu_call *c, struct model *m,
		   json_t *ids, json_t **argv, json_t **result)
{
	if (orm_check_access(e, c, m, ACL_WRITE) < 0 || orm_write(e, c, m, ids, argv[0]) < 0)
		return -1;
	*result = json_true();
	return 0;
}

static int m_unlink(struct emu *e, const struct emu_call *c, struct model *m,
		    json_t *ids, json_t **argv, json_t **result)
{
	(void)argv;
	if (orm_check_access(e, c, m, ACL_UNLINK) < 0 || orm_unlink(e, c, m, ids, true) < 0)
		return -1;
	*result = json_true();
	return 0;
}

static int m_exists(struct emu *e, const struct emu_call *c, struct model *m,
		    json_t *ids, json_t **argv, json_t **result)
{
	json_t *recs = existing(e, c, m, ids);

	(void)argv;
	*result = orm_ids_of(recs);
	json_decref(recs);
	return 0;
}

static int m_web_save(struct emu *e, const struct emu_call *c, struct model *m,
		      json_t *ids, json_t **argv, json_t **result)
{
	json_t *spec = argv[1], *row, *rec, *sv;
	json_int_t id;
	const char *key;

	if (json_array_size(ids) == 0) {
		if (orm_check_access(e, c, m, ACL_CREATE) < 0 ||
		    orm_create(e, c, m, argv[0], &id) < 0)
			return -1;
	} else {
		if (orm_check_access(e, c, m, ACL_WRITE) < 0 ||
		    orm_write(e, c, m, ids, argv[0]) < 0)
			return -1;
		id = json_integer_value(json_array_get(ids, 0));
	}
	rec = orm_rec_get(m, id);
	row = json_pack("{s:I}", "id", id);
	if (json_is_object(spec)) {
		json_object_foreach(spec, key, sv) {
			const struct field_def *f = orm_field_find(m, key);
			json_t *v;

			if (!f || strcmp(key, "id") == 0)
				continue;
			v = orm_value_read(e, m, rec, f, false);
			if (f->type == F_M2O && json_is_integer(v) &&
			    json_object_get(sv, "fields")) {
				struct model *cm = orm_model_find(e, f->relation);
				char *dn = orm_display_name(e, cm, orm_rec_get(cm, json_integer_value(v)));

				json_decref(v);
				v = json_pack("{s:I, s:s}", "id", json_integer_value(v), "display_name", dn);
				free(dn);
			}
			json_object_set_new(row, key, v);
		}
	}
	*result = json_pack("[o]", row);
	return 0;
}

static int m_check_object_reference(struct emu *e, const struct emu_call *c,
				    struct model *m, json_t *ids, json_t **argv,
				    json_t **result)
{
	const char *mod = json_string_value(argv[0]);
	const char *name = json_string_value(argv[1]);
	char *full = emu_printf("%s.%s", mod ? mod : "", name ? name : "");
	json_t *imd = orm_imd_lookup(e, full);
	struct model *target;

	(void)ids;
	(void)c;
	(void)m;
	if (!imd) {
		emu_raise(e, "builtins.ValueError",
			  "External ID not found in the system: %s", full);
		free(full);
		return -1;
	}
	target = orm_rec_str(imd, "model") ? orm_model_find(e, orm_rec_str(imd, "model")) : NULL;
	if (!target || !orm_rec_get(target, orm_rec_int(imd, "res_id"))) {
		emu_raise(e, "builtins.ValueError",
			  "No record found for unique ID %s. It may have been deleted.", full);
		free(full);
		return -1;
	}
	free(full);
	*result = json_pack("[s, I]", orm_rec_str(imd, "model"),
			    (json_int_t)orm_rec_int(imd, "res_id"));
	return 0;
}

/* Returns None: how clients meet an envelope with neither result nor error. */
static int m_toggle_noupdate(struct emu *e, const struct emu_call *c,
			     struct model *m, json_t *ids, json_t **argv,
			     json_t **result)
{
	const char *key;
	json_t *r;

	(void)ids;
	if (orm_check_access(e, c, m, ACL_WRITE) < 0)
		return -1;
	json_object_foreach(m->recs, key, r) {
		if (orm_rec_str(r, "model") && json_is_string(argv[0]) &&
		    strcmp(orm_rec_str(r, "model"), json_string_value(argv[0])) == 0 &&
		    orm_rec_int(r, "res_id") == json_integer_value(argv[1])) {
			json_t *nr = json_deep_copy(r);

			json_object_set_new(nr, "noupdate",
					    json_boolean(!json_is_true(json_object_get(r, "noupdate"))));
			orm_tx_touch(e, m, orm_rec_id(r));
			orm_store_put(e, m, nr);
			break;
		}
	}
	*result = NULL;
	return 0;
}

static int so_set_state(struct emu *e, const struct emu_call *c,
			struct model *m, json_t *ids, const char *const *from,
			const char *to, const char *refusal)
{
	json_t *x, *vals;
	size_t i;
	int rc;

	if (orm_check_access(e, c, m, ACL_WRITE) < 0)
		return -1;
	json_array_foreach(ids, i, x) {
		json_t *r = orm_rec_get(m, json_integer_value(x));
		bool ok = false;

		if (!r) {
			json_t *one = json_pack("[O]", x);

			orm_raise_missing(e, m->def->name, one, c->uid);
			json_decref(one);
			return -1;
		}
		for (int k = 0; from[k]; k++)
			if (orm_rec_str(r, "state") && strcmp(orm_rec_str(r, "state"), from[k]) == 0)
				ok = true;
		if (!ok)
			return emu_raise(e, "odoo.exceptions.UserError", "%s", refusal);
	}
	vals = json_pack("{s:s}", "state", to);
	rc = orm_write(e, c, m, ids, vals);
	json_decref(vals);
	return rc;
}

static int m_action_confirm(struct emu *e, const struct emu_call *c,
			    struct model *m, json_t *ids, json_t **argv,
			    json_t **result)
{
	static const char *const from[] = {"draft", "sent", NULL};

	(void)argv;
	if (so_set_state(e, c, m, ids, from, "sale",
			 "Some orders are not in a state requiring confirmation.") < 0)
		return -1;
	*result = json_true();
	return 0;
}

static int m_action_draft(struct emu *e, const struct emu_call *c,
			  struct model *m, json_t *ids, json_t **argv,
			  json_t **result)
{
	static const char *const from[] = {"cancel", "sent", NULL};

	(void)argv;
	if (so_set_state(e, c, m, ids, from, "draft",
			 "Only cancelled or sent orders can be set to quotation.") < 0)
		return -1;
	*result = json_true();
	return 0;
}

/*
 * @check_identity: outside a web session Odoo refuses; inside one whose
 * password was not checked lately it answers with the wizard that checks
 * it, and runs the call once that is done (run_check).
 */
static int identity_checked(struct emu *e, const struct emu_call *c,
			    struct model *m, const char *method, json_t *ids,
			    json_t **wizard_action)
{
	json_t *when, *vals, *call;
	json_int_t wid;
	char *req;

	*wizard_action = NULL;
	if (c->proto != EMU_WEB || !c->session)
		return emu_raise(e, "odoo.exceptions.UserError",
				 "This method can only be accessed over HTTP");
	when = json_object_get(c->session, "identity");
	if (json_is_integer(when) &&
	    time(NULL) - json_integer_value(when) < IDENTITY_CHECK_SECONDS)
		return 0;
	/* the call to run once the password is checked, kept on the wizard */
	call = json_pack("{s:s, s:s, s:O}", "model", m->def->name, "method",
			 method, "ids", ids);
	req = json_dumps(call, JSON_COMPACT);
	json_decref(call);
	vals = json_pack("{s:s}", "request", req);
	free(req);
	if (orm_create(e, c, orm_model_at(e, M_IDCHECK), vals, &wid) < 0) {
		json_decref(vals);
		return -1;
	}
	json_decref(vals);
	*wizard_action = json_pack("{s:s, s:s, s:I, s:s, s:s, s:[[b, s]]}",
				   "type", "ir.actions.act_window", "res_model",
				   "res.users.identitycheck", "res_id", wid, "name",
				   "Security Control", "target", "new", "views", 0,
				   "form");
	return 0;
}

static int m_desc_create(struct emu *e, const struct emu_call *c,
			 struct model *m, json_t *ids, json_t **argv,
			 json_t **result)
{
	(void)ids;
	return m_create(e, c, m, NULL, argv, result);
}

static int m_make_key(struct emu *e, const struct emu_call *c, struct model *m,
		      json_t *ids, json_t **argv, json_t **result)
{
	json_t *recs, *wizard, *key_rec;
	char key[41], *name, *list;
	json_int_t kid;
	int rc;

	(void)argv;
	if (identity_checked(e, c, m, "make_key", ids, &wizard) < 0)
		return -1;
	if (wizard) {
		*result = wizard;
		return 0;
	}
	recs = existing(e, c, m, ids);
	if (json_array_size(recs) > 1) {
		list = emu_repr(ids);
		list[0] = '(';
		list[strlen(list) - 1] = ')';
		emu_raise(e, "builtins.ValueError", "Expected singleton: %s%s",
			  m->def->name, list);
		free(list);
		json_decref(recs);
		return -1;
	}
	/* the name of an empty recordset is False, stored as text */
	name = emu_strdup(json_array_size(recs) && orm_rec_str(json_array_get(recs, 0), "name")
				  ? orm_rec_str(json_array_get(recs, 0), "name") : "false");
	emu_random_hex(key, 40);
	key_rec = json_pack("{s:s, s:I, s:b, s:b, s:s}", "name", name, "user_id",
			    (json_int_t)c->uid, "scope", 0, "expiration_date", 0,
			    "key", key);
	free(name);
	rc = orm_create(e, c, orm_model_at(e, M_APIKEY), key_rec, &kid);
	json_decref(key_rec);
	if (rc == 0 && json_array_size(recs)) {
		json_t *gone = orm_ids_of(recs);

		rc = orm_unlink(e, c, m, gone, false);
		json_decref(gone);
	}
	json_decref(recs);
	if (rc < 0)
		return -1;
	*result = json_pack("{s:s, s:s, s:s, s:[[b, s]], s:s, s:{s:s}}", "type",
			    "ir.actions.act_window", "res_model",
			    "res.users.apikeys.show", "name", "API Key Ready",
			    "views", 0, "form", "target", "new", "context",
			    "default_key", key);
	return 0;
}

static int m_remove(struct emu *e, const struct emu_call *c, struct model *m,
		    json_t *ids, json_t **argv, json_t **result)
{
	json_t *wizard, *x;
	size_t i;

	(void)argv;
	if (identity_checked(e, c, m, "remove", ids, &wizard) < 0)
		return -1;
	if (wizard) {
		*result = wizard;
		return 0;
	}
	json_array_foreach(ids, i, x) {
		json_t *r = orm_rec_get(m, json_integer_value(x));

		if (r && orm_rec_int(r, "user_id") != c->uid && !orm_is_admin(e, c->uid))
			return emu_raise(e, "odoo.exceptions.AccessError",
					 "You can not remove API keys unless they're yours or you are a system user");
	}
	if (orm_unlink(e, c, m, ids, false) < 0)
		return -1;
	*result = json_pack("{s:s}", "type", "ir.actions.act_window_close");
	return 0;
}

static const struct method_def *method_find(const struct model *m,
					    const char *name);

static int m_run_check(struct emu *e, const struct emu_call *c,
		       struct model *m, json_t *ids, json_t **argv,
		       json_t **result)
{
	json_t *wiz, *user, *req;
	const char *pw, *upw;
	struct model *tm;
	const struct method_def *md;
	json_t *none[EMU_MAX_PARAMS + 1] = {0};
	json_t *tids;
	int rc;

	(void)argv;
	if (json_array_size(ids) != 1 || !(wiz = orm_rec_get(m, json_integer_value(json_array_get(ids, 0))))) {
		if (json_array_size(ids) == 0)
			return emu_raise(e, "builtins.ValueError",
					 "Expected singleton: %s()", m->def->name);
		return orm_raise_missing(e, m->def->name, ids, c->uid);
	}
	if (!c->session)
		return emu_raise(e, "odoo.exceptions.UserError",
				 "This method can only be accessed over HTTP");
	user = orm_rec_get(orm_model_at(e, M_USERS), c->uid);
	pw = orm_rec_str(wiz, "password");
	upw = user ? orm_rec_str(user, "password") : NULL;
	if (!pw || !upw || !*upw || strcmp(pw, upw))
		return emu_raise(e, "odoo.exceptions.UserError",
				 "Incorrect Password, try again or click on Forgot Password to reset your password.");
	json_object_set_new(c->session, "identity", json_integer(time(NULL)));
	req = json_loads(orm_rec_str(wiz, "request") ? orm_rec_str(wiz, "request") : "{}", 0, NULL);
	tm = req ? orm_model_find(e, json_string_value(json_object_get(req, "model"))
				    ? json_string_value(json_object_get(req, "model")) : "") : NULL;
	md = tm ? method_find(tm, json_string_value(json_object_get(req, "method"))
				 ? json_string_value(json_object_get(req, "method")) : "") : NULL;
	if (!md) {
		json_decref(req);
		return emu_raise(e, "odoo.exceptions.UserError",
				 "The identity check has no request to run");
	}
	tids = orm_ids_normalize(json_object_get(req, "ids"));
	rc = md->fn(e, c, tm, tids, none, result);
	json_decref(tids);
	json_decref(req);
	return rc;
}

/* res.users.context_get: the caller's context; a cheap authenticated call
 * that JSON-2 clients use to check their key. */
static int m_context_get(struct emu *e, const struct emu_call *c,
			 struct model *m, json_t *ids, json_t **argv,
			 json_t **result)
{
	(void)e; (void)m; (void)ids; (void)argv;
	*result = json_pack("{s:s, s:s, s:I}", "lang", "en_US", "tz", "Europe/Brussels",
			    "uid", (json_int_t)c->uid);
	return 0;
}

#define SIG0 {.params = {NULL}}
static const struct method_def methods[] = {
	/* not @api.model_create_multi: call_kw takes the dict for ids */
	{"create", M_APIKEY_DESC, MK_RECORDS, {{"vals_list"}, 1, false}, m_desc_create},
	{"make_key", M_APIKEY_DESC, MK_RECORDS, SIG0, m_make_key},
	{"remove", M_APIKEY, MK_RECORDS, SIG0, m_remove},
	{"run_check", M_IDCHECK, MK_RECORDS, SIG0, m_run_check},
	{"check_object_reference", M_IMD, MK_MODEL,
	 {{"module", "xml_id", "raise_on_access_error"}, 2, false},
	 m_check_object_reference},
	{"toggle_noupdate", M_IMD, MK_MODEL, {{"model", "res_id"}, 2, false},
	 m_toggle_noupdate},
	{"context_get", M_USERS, MK_MODEL, SIG0, m_context_get},
	{"action_confirm", M_SO, MK_RECORDS, SIG0, m_action_confirm},
	{"action_cancel", M_SO, MK_RECORDS, SIG0, sale_action_cancel},
	{"action_lock", M_SO, MK_RECORDS, SIG0, sale_action_lock},
	{"action_unlock", M_SO, MK_RECORDS, SIG0, sale_action_unlock},
	{"action_draft", M_SO, MK_RECORDS, SIG0, m_action_draft},
	{"create", -1, MK_CREATE, {{"vals_list"}, 1, false}, m_create},
	{"search", -1, MK_MODEL, {{"domain", "offset", "limit", "order"}, 1, false},
	 m_search},
	{"search_read", -1, MK_MODEL,
	 {{"domain", "fields", "offset", "limit", "order", "load"}, 0, false},
	 m_search_read},
	{"search_count", -1, MK_MODEL, {{"domain", "limit"}, 1, false},
	 m_search_count},
	{"name_search", -1, MK_MODEL,
	 {{"name", "domain", "operator", "limit"}, 0, false}, m_name_search},
	{"fields_get", -1, MK_MODEL, {{"allfields", "attributes"}, 0, false},
	 m_fields_get},
	{"load", -1, MK_MODEL, {{"fields", "data"}, 2, false}, m_load},
	{"read", -1, MK_RECORDS, {{"fields", "load"}, 0, false}, m_read},
	{"write", -1, MK_RECORDS, {{"vals"}, 1, false}, m_write},
	{"unlink", -1, MK_RECORDS, SIG0, m_unlink},
	{"exists", -1, MK_RECORDS, SIG0, m_exists},
	{"web_save", -1, MK_RECORDS, {{"vals", "specification"}, 2, false},
	 m_web_save},
};

static const struct method_def *method_find(const struct model *m,
					    const char *name)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if ((methods[i].model == -1 || methods[i].model == m->idx) &&
		    strcmp(methods[i].name, name) == 0)
			return &methods[i];
	return NULL;
}

static char *qualname(const struct model *m, const struct method_def *md)
{
	/* the wrapper @api.model_create_multi leaves has no class in its name */
	if (md->kind == MK_CREATE)
		return emu_strdup(md->name);
	return emu_printf("%s.%s", m->def->cls, md->name);
}

static void tx_end(struct emu *e, int rc)
{
	if (rc < 0) {
		orm_tx_rollback(e);
		return;
	}
	if (e->data->written) {
		e->stats.writes++;
		e->stats.records_written += e->data->written;
	}
	emu_poll_tx_commit(e);
	orm_tx_begin(e);
}

int emu_call_kw(struct emu *e, const struct emu_call *c, const char *model,
		const char *method, json_t *args, json_t *kwargs,
		json_t **result)
{
	struct model *m = orm_model_find(e, model);
	const struct method_def *md;
	struct emu_call cc = *c;
	json_t *argv[EMU_MAX_PARAMS + 1], *kw = NULL, *rest = NULL, *ids = NULL;
	char *qn = NULL;
	int rc = -1;

	*result = NULL;
	if (!m)
		return emu_raise(e, "odoo.exceptions.UserError",
				 "Object %s doesn't exist", model);
	md = method_find(m, method);
	if (!md) {
		if (e->version >= 19)
			return emu_raise(e, "builtins.AttributeError",
					 "The method '%s.%s' does not exist", model, method);
		return emu_raise(e, "builtins.AttributeError",
				 "The method '%s' does not exist on the model '%s'",
				 method, model);
	}
	if (json_is_object(kwargs)) {
		kw = json_copy(kwargs);
		cc.context = json_object_get(kwargs, "context");
		json_object_del(kw, "context");
	}
	rest = json_is_array(args) ? json_copy(args) : json_array();
	if (md->kind == MK_RECORDS) {
		if (json_array_size(rest) == 0) {
			emu_raise(e, "builtins.IndexError", "tuple index out of range");
			goto out;
		}
		ids = orm_ids_normalize(json_array_get(rest, 0));
		json_array_remove(rest, 0);
	}
	qn = qualname(m, md);
	if (emu_bind(e, qn, &md->sig, rest, kw, false, argv) < 0)
		goto out;
	orm_tx_begin(e);
	rc = md->fn(e, &cc, m, ids, argv, result);
	if (rc == 0 && md->kind == MK_CREATE && json_array_size(args) == 0) {
		/* call_kw looks at args[0] after create() ran: it is not there */
		json_decref(*result);
		*result = NULL;
		rc = emu_raise(e, "builtins.IndexError", "tuple index out of range");
	}
	tx_end(e, rc);
out:
	free(qn);
	json_decref(kw);
	json_decref(rest);
	json_decref(ids);
	return rc;
}

int emu_call_json2(struct emu *e, const struct emu_call *c, const char *model,
		   const char *method, json_t *body, json_t **result)
{
	struct model *m = orm_model_find(e, model);
	const struct method_def *md;
	struct emu_call cc = *c;
	json_t *argv[EMU_MAX_PARAMS + 1], *kw, *ids;
	char *qn, *msg;
	int rc;

	*result = NULL;
	if (!m) {
		msg = emu_printf("the model '%s' does not exist", model);
		goto not_found;
	}
	if (method[0] == '_')
		return emu_raise(e, "odoo.exceptions.AccessError",
				 "Private methods (such as '%s.%s') cannot be called remotely.",
				 model, method);
	md = method_find(m, method);
	if (!md) {
		msg = emu_printf("The method '%s.%s' does not exist", model, method);
		goto not_found;
	}
	kw = json_copy(body);
	ids = orm_ids_normalize(json_object_get(body, "ids"));
	cc.context = json_object_get(body, "context");
	json_object_del(kw, "ids");
	json_object_del(kw, "context");
	if (md->kind != MK_RECORDS && json_array_size(ids)) {
		json_decref(kw);
		json_decref(ids);
		msg = emu_printf("cannot call %s.%s with ids", model, method);
		emu_raise_status(e, 422, "werkzeug.exceptions.UnprocessableEntity", "%s", msg);
		e->err.arguments = json_pack("[s, i]", msg, 422);
		free(msg);
		return -1;
	}
	qn = qualname(m, md);
	rc = emu_bind(e, qn, &md->sig, NULL, kw, true, argv);
	free(qn);
	if (rc == 0) {
		orm_tx_begin(e);
		rc = md->fn(e, &cc, m, ids, argv, result);
		/* a recordset comes back as its ids */
		if (rc == 0 && md->kind == MK_CREATE && json_is_integer(*result)) {
			json_t *one = json_pack("[O]", *result);

			json_decref(*result);
			*result = one;
		}
		tx_end(e, rc);
	}
	json_decref(kw);
	json_decref(ids);
	return rc;
not_found:
	emu_raise_status(e, 404, "werkzeug.exceptions.NotFound", "%s", msg);
	e->err.arguments = json_pack("[s, i]", msg, 404);
	free(msg);
	return -1;
}

/* ---- authentication ---------------------------------------------------- */

long emu_key_uid(struct emu *e, const char *key)
{
	const char *k;
	json_t *r;

	if (!key || !*key)
		return 0;
	json_object_foreach(orm_model_at(e, M_APIKEY)->recs, k, r) {
		json_t *u;

		if (!orm_rec_str(r, "key") || strcmp(orm_rec_str(r, "key"), key))
			continue;
		u = orm_rec_get(orm_model_at(e, M_USERS), orm_rec_int(r, "user_id"));
		if (u && json_is_true(json_object_get(u, "active")))
			return (long)orm_rec_id(u);
	}
	return 0;
}

static bool key_of(struct emu *e, long uid, const char *key)
{
	return emu_key_uid(e, key) == uid;
}

long emu_login(struct emu *e, const char *login, const char *secret,
	       bool allow_key)
{
	const char *k;
	json_t *u;

	if (!login || !secret || !*secret)
		return 0;
	json_object_foreach(orm_model_at(e, M_USERS)->recs, k, u) {
		const char *pw = orm_rec_str(u, "password");

		if (!json_is_true(json_object_get(u, "active")) || !orm_rec_str(u, "login") ||
		    strcmp(orm_rec_str(u, "login"), login))
			continue;
		if (pw && *pw && strcmp(pw, secret) == 0)
			return (long)orm_rec_id(u);
		if (allow_key && key_of(e, (long)orm_rec_id(u), secret))
			return (long)orm_rec_id(u);
		return 0;
	}
	return 0;
}

int emu_check_uid(struct emu *e, long uid, const json_t *secret)
{
	json_t *u = orm_rec_get(orm_model_at(e, M_USERS), uid);
	const char *s = json_string_value(secret), *pw;

	if (!u) {
		json_t *ids = json_pack("[I]", (json_int_t)uid);

		orm_raise_missing(e, "res.users", ids, uid);
		json_decref(ids);
		return -1;
	}
	pw = orm_rec_str(u, "password");
	if (json_is_true(json_object_get(u, "active")) && s && *s &&
	    ((pw && *pw && strcmp(pw, s) == 0) || key_of(e, uid, s)))
		return 0;
	return emu_raise(e, "odoo.exceptions.AccessDenied", "Access Denied");
}

json_t *emu_user_info(struct emu *e, long uid)
{
	json_t *u = orm_rec_get(orm_model_at(e, M_USERS), uid), *p;

	if (!u)
		return NULL;
	p = orm_rec_get(orm_model_at(e, M_PARTNER), orm_rec_int(u, "partner_id"));
	return json_pack("{s:s, s:s, s:I, s:s, s:s, s:b}", "name",
			 orm_rec_str(u, "name") ? orm_rec_str(u, "name") : "", "login",
			 orm_rec_str(u, "login") ? orm_rec_str(u, "login") : "", "partner_id",
			 (json_int_t)orm_rec_int(u, "partner_id"), "partner_name",
			 p && orm_rec_str(p, "name") ? orm_rec_str(p, "name") : "",
			 "partner_write_date",
			 p && orm_rec_str(p, "write_date") ? orm_rec_str(p, "write_date") : "",
			 "admin", orm_is_admin(e, uid));
}

/* ---- control ----------------------------------------------------------- */

json_t *emu_records_dump(struct emu *e, const char *model)
{
	struct model *m = orm_model_find(e, model);
	struct model *im = orm_model_at(e, M_IMD);
	json_t *out, *xmlids, *r, *recs;
	const char *key;
	size_t i;

	if (!m)
		return NULL;
	/* external ids by res_id, in one pass over ir.model.data */
	xmlids = json_object();
	json_object_foreach(im->recs, key, r) {
		char id[32], *k;
		json_t *list;

		if (!orm_rec_str(r, "model") || strcmp(orm_rec_str(r, "model"), model))
			continue;
		snprintf(id, sizeof(id), "%" JSON_INTEGER_FORMAT, orm_rec_int(r, "res_id"));
		list = json_object_get(xmlids, id);
		if (!list) {
			list = json_array();
			json_object_set_new(xmlids, id, list);
		}
		k = orm_imd_key(r);
		json_array_append_new(list, json_string(k));
		free(k);
	}
	recs = orm_all_by_id(e, m);
	out = json_array();
	json_array_foreach(recs, i, r) {
		json_t *row = json_object(), *val, *list;
		const char *k;
		char id[32];

		json_object_foreach(r, k, val) {
			const struct field_def *f = orm_field_find(m, k);

			/* internal flags and secrets stay inside */
			if (k[0] == '_' || (f && (f->flags & FF_HIDDEN)))
				continue;
			json_object_set(row, k, val);
		}
		snprintf(id, sizeof(id), "%" JSON_INTEGER_FORMAT, orm_rec_id(r));
		list = json_object_get(xmlids, id);
		json_object_set_new(row, "xmlids", list ? json_incref(list) : json_array());
		json_array_append_new(out, row);
	}
	json_decref(recs);
	json_decref(xmlids);
	return out;
}

/* ---- seed data --------------------------------------------------------- */

/* Seed records skip the ORM: they are what a fresh database holds. */
static json_int_t seed(struct emu *e, int midx, json_t *rec)
{
	struct model *m = orm_model_at(e, midx);
	json_int_t id = m->next_id++;
	char now[20];

	emu_now(now);
	json_object_set_new(rec, "id", json_integer(id));
	json_object_set_new(rec, "create_date", json_string(now));
	json_object_set_new(rec, "write_date", json_string(now));
	json_object_set_new(rec, "create_uid", json_integer(1));
	json_object_set_new(rec, "write_uid", json_integer(1));
	if (orm_field_find(m, "active") && !json_object_get(rec, "active"))
		json_object_set_new(rec, "active", json_true());
	orm_store_put(e, m, rec);
	return id;
}

static void seed_xmlid(struct emu *e, const char *module, const char *name,
		       int midx, json_int_t res_id)
{
	seed(e, M_IMD, json_pack("{s:s, s:s, s:s, s:I, s:b}", "module", module,
				 "name", name, "model", orm_model_at(e, midx)->def->name,
				 "res_id", res_id, "noupdate", 1));
}

static json_t *seed_partner(const char *name, bool active, bool company)
{
	return json_pack("{s:s, s:s, s:b, s:b, s:s, s:i, s:b}", "name", name,
			 "type", "contact", "active", active, "is_company",
			 company, "lang", "en_US", "company_id", 1, "parent_id", 0);
}

int emu_db_seed(struct emu *e)
{
	static const char *const countries[][4] = {
		/* code, xmlid name, name, calling code */
		{"AE", "ae", "United Arab Emirates", "971"}, {"AT", "at", "Austria", "43"},
		{"AU", "au", "Australia", "61"}, {"BE", "be", "Belgium", "32"},
		{"BR", "br", "Brazil", "55"}, {"CA", "ca", "Canada", "1"},
		{"CH", "ch", "Switzerland", "41"}, {"CN", "cn", "China", "86"},
		{"DE", "de", "Germany", "49"}, {"DK", "dk", "Denmark", "45"},
		{"ES", "es", "Spain", "34"}, {"FI", "fi", "Finland", "358"},
		{"FR", "fr", "France", "33"}, {"GB", "uk", "United Kingdom", "44"},
		{"IE", "ie", "Ireland", "353"}, {"IN", "in", "India", "91"},
		{"IT", "it", "Italy", "39"}, {"JP", "jp", "Japan", "81"},
		{"LU", "lu", "Luxembourg", "352"}, {"MX", "mx", "Mexico", "52"},
		{"NL", "nl", "Netherlands", "31"}, {"NO", "no", "Norway", "47"},
		{"PL", "pl", "Poland", "48"}, {"PT", "pt", "Portugal", "351"},
		{"SE", "se", "Sweden", "46"}, {"US", "us", "United States", "1"},
	};
	struct emu_db *fresh = emu_db_new();
	size_t i;
	json_t *pair;

	if (!fresh)
		return emu_raise(e, "builtins.MemoryError", "out of memory");
	emu_db_free(e->data);
	e->data = fresh;

	/* partners 1-6 and users 1-5, as a fresh Odoo database has them */
	seed(e, M_PARTNER, seed_partner("My Company", true, true));
	seed(e, M_PARTNER, seed_partner("OdooBot", false, false));
	seed(e, M_PARTNER, seed_partner("Administrator", true, false));
	seed(e, M_PARTNER, seed_partner("Public user", false, false));
	seed(e, M_PARTNER, seed_partner("Default User Template", false, false));
	seed(e, M_PARTNER, seed_partner("Portal User Template", false, false));
	json_object_set_new(orm_rec_get(orm_model_at(e, M_PARTNER), 3), "email",
			    json_string("admin@example.com"));
	seed(e, M_COMPANY, json_pack("{s:s, s:i, s:i}", "name", "My Company",
				     "partner_id", 1, "sequence", 0));
	seed(e, M_USERS, json_pack("{s:s, s:s, s:i, s:b, s:i, s:b}", "name", "OdooBot",
				   "login", "__system__", "partner_id", 2, "active", 0,
				   "company_id", 1, "_admin", 1));
	seed(e, M_USERS, json_pack("{s:s, s:s, s:s, s:i, s:i, s:s, s:b}", "name",
				   "Administrator", "login", e->admin_login,
				   "password", e->admin_password, "partner_id", 3,
				   "company_id", 1, "email", "admin@example.com",
				   "_admin", 1));
	seed(e, M_USERS, json_pack("{s:s, s:s, s:i, s:b, s:i}", "name", "Public user",
				   "login", "public", "partner_id", 4, "active", 0,
				   "company_id", 1));
	seed(e, M_USERS, json_pack("{s:s, s:s, s:i, s:b, s:i}", "name",
				   "Default User Template", "login", "default",
				   "partner_id", 5, "active", 0, "company_id", 1));
	seed(e, M_USERS, json_pack("{s:s, s:s, s:i, s:b, s:i}", "name",
				   "Portal User Template", "login", "portaltemplate",
				   "partner_id", 6, "active", 0, "company_id", 1));

	seed_xmlid(e, "base", "main_partner", M_PARTNER, 1);
	seed_xmlid(e, "base", "main_company", M_COMPANY, 1);
	seed_xmlid(e, "base", "partner_root", M_PARTNER, 2);
	seed_xmlid(e, "base", "user_root", M_USERS, 1);
	seed_xmlid(e, "base", "partner_admin", M_PARTNER, 3);
	seed_xmlid(e, "base", "user_admin", M_USERS, 2);
	seed_xmlid(e, "base", "public_partner", M_PARTNER, 4);
	seed_xmlid(e, "base", "public_user", M_USERS, 3);
	for (i = 0; i < sizeof(countries) / sizeof(countries[0]); i++) {
		json_int_t id = seed(e, M_COUNTRY,
				     json_pack("{s:s, s:s, s:i}", "name", countries[i][2],
					       "code", countries[i][0], "phone_code",
					       atoi(countries[i][3])));

		seed_xmlid(e, "base", countries[i][1], M_COUNTRY, id);
	}

	{
		static const char *const modules[][3] = {
			{ "base", "Base", "installed" }, { "web", "Web", "installed" },
			{ "mail", "Discuss", "installed" }, { "contacts", "Contacts", "installed" },
			{ "product", "Products & Pricelists", "installed" },
			{ "sale", "Sales", "installed" }, { "crm", "CRM", "uninstalled" },
			{ "shop_sync", "Shop Sync (a custom module)", "installed" },
		};
		for (i = 0; i < sizeof(modules) / sizeof(modules[0]); i++)
			seed(e, M_MODULE, json_pack("{s:s, s:s, s:s}", "name", modules[i][0],
						    "shortdesc", modules[i][1], "state", modules[i][2]));
	}

	/* API keys given on the command line; a login nobody has gets a user */
	json_array_foreach(e->api_keys, i, pair) {
		const char *login = json_string_value(json_array_get(pair, 0));
		const char *key = json_string_value(json_array_get(pair, 1));
		const char *k;
		json_t *u;
		json_int_t uid = 0;

		json_object_foreach(orm_model_at(e, M_USERS)->recs, k, u)
			if (orm_rec_str(u, "login") && strcmp(orm_rec_str(u, "login"), login) == 0)
				uid = orm_rec_id(u);
		if (!uid) {
			json_int_t pid = seed(e, M_PARTNER, seed_partner(login, true, false));

			uid = seed(e, M_USERS, json_pack("{s:s, s:s, s:I, s:i}", "name", login,
							 "login", login, "partner_id", pid,
							 "company_id", 1));
		}
		seed(e, M_APIKEY, json_pack("{s:s, s:I, s:b, s:b, s:s}", "name",
					    "odoo-emulator", "user_id", uid, "scope", 0,
					    "expiration_date", 0, "key", key));
	}
	return 0;
}

