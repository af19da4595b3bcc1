/*
 * odoo-emulator: load(fields, data), the idempotent import: external ids in
 * an "id" column, relations by external id ("field/id") or database id
 * ("field/.id"), cells converted as Odoo's import converters do, and all or
 * nothing: one error message and the whole call is rolled back.
 */
#include "emu_orm.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- load -------------------------------------------------------------- */

enum col_kind { COL_SKIP, COL_XID, COL_DBID, COL_VALUE, COL_REF_XID, COL_REF_DBID };

struct column {
	enum col_kind kind;
	const struct field_def *f;
	const char *name;   /* as the messages name it */
};

static json_t *load_message(int row, const char *field, const char *msg)
{
	json_t *m = json_pack("{s:{s:i, s:i}, s:s, s:i}", "rows", "from", row,
			      "to", row, "type", "error", "record", row);

	if (field)
		json_object_set_new(m, "field", json_string(field));
	json_object_set_new(m, "message", json_string(msg));
	return m;
}

/* The "Possible Values" action Odoo attaches to a failed relation lookup. */
static json_t *moreinfo(struct emu *e, const char *res_model, json_t *domain)
{
	const char *list = e->version >= 18 ? "list" : "tree";
	char *mode = emu_printf("%s,form", list);
	json_t *mi = json_pack("{s:s, s:s, s:s, s:s, s:[[b, s], [b, s]], s:{s:b}, s:s, s:s, s:o}",
			       "name", "Possible Values", "type",
			       "ir.actions.act_window", "target", "new",
			       "view_mode", mode, "views", 0, list, 0, "form",
			       "context", "create", 0, "help",
			       "See all possible values", "res_model", res_model,
			       "domain", domain);

	free(mode);
	return mi;
}

json_t *orm_imd_lookup(struct emu *e, const char *xid)
{
	json_t *at = json_object_get(e->data->xmlids, xid);

	return at ? orm_rec_get(orm_model_at(e, M_IMD), json_integer_value(at)) : NULL;
}

/* module.name, with the module Odoo gives a bare name. */
static char *xid_full(const char *xid)
{
	if (strchr(xid, '.'))
		return emu_strdup(xid);
	return emu_printf("__import__.%s", xid);
}

static json_int_t xid_resolve(struct emu *e, const char *xid, const char *model)
{
	char *full = xid_full(xid);
	json_t *imd = orm_imd_lookup(e, full);
	struct model *m = orm_model_find(e, model);

	free(full);
	if (!imd || !orm_rec_str(imd, "model") || strcmp(orm_rec_str(imd, "model"), model))
		return 0;
	return orm_rec_get(m, orm_rec_int(imd, "res_id")) ? orm_rec_int(imd, "res_id") : 0;
}

static char *cell_text(json_t *cell)
{
	if (!cell || json_is_null(cell) || json_is_false(cell))
		return emu_strdup("");
	if (json_is_string(cell))
		return emu_strdup(json_string_value(cell));
	if (json_is_true(cell))
		return emu_strdup("True");
	return emu_repr(cell);
}

static json_int_t name_lookup(struct emu *e, struct model *cm, const char *name)
{
	const char *key;
	json_t *r;
	json_int_t best = 0;

	json_object_foreach(cm->recs, key, r) {
		char *dn = orm_display_name(e, cm, r);
		bool hit = strcmp(dn, name) == 0;

		free(dn);
		if (hit && (!best || orm_rec_id(r) < best))
			best = orm_rec_id(r);
	}
	return best;
}

/*
 * One cell through Odoo's import converters. Returns the value (new ref) or
 * NULL after appending an error message for the row.
 */
static json_t *cell_convert(struct emu *e, const struct column *col,
			    const char *s, int row, json_t *messages)
{
	const struct field_def *f = col->f;
	struct model *cm = f->relation ? orm_model_find(e, f->relation) : NULL;
	json_int_t i;
	double d;
	char *msg = NULL;
	json_t *info = NULL, *m;

	if (!*s) {
		if (f->type == F_INT)
			return json_integer(0);
		if (f->type == F_FLOAT)
			return json_real(0.0);
		return json_false();
	}
	switch (col->kind) {
	case COL_REF_XID:
		if ((i = xid_resolve(e, s, f->relation)))
			return json_integer(i);
		msg = emu_printf("No matching record found for external id '%s' in field '%s'",
				 s, f->label);
		info = moreinfo(e, "ir.model.data",
				json_pack("[[s, s, s]]", "model", "=", f->relation));
		goto fail;
	case COL_REF_DBID:
		if (orm_parse_int(s, &i) && orm_rec_get(cm, i))
			return json_integer(i);
		msg = emu_printf("No matching record found for database id '%s' in field '%s'",
				 s, f->label);
		info = moreinfo(e, f->relation, json_array());
		goto fail;
	default:
		break;
	}
	switch (f->type) {
	case F_INT:
		if (orm_parse_int(s, &i))
			return json_integer(i);
		msg = emu_printf("'%s' does not seem to be an integer for field '%s'",
				 s, f->label);
		goto fail;
	case F_FLOAT:
		if (orm_parse_float(s, &d))
			return json_real(d);
		msg = emu_printf("'%s' does not seem to be a number for field '%s'",
				 s, f->label);
		goto fail;
	case F_BOOL:
		if (!strcasecmp(s, "1") || !strcasecmp(s, "true") || !strcasecmp(s, "yes"))
			return json_true();
		if (!strcasecmp(s, "0") || !strcasecmp(s, "false") || !strcasecmp(s, "no"))
			return json_false();
		m = load_message(row, f->name, "");
		json_object_set_new(m, "type", json_string("warning"));
		msg = emu_printf("Unknown value '%s' for boolean field '%s', assuming 'yes'",
				 s, f->label);
		json_object_set_new(m, "message", json_string(msg));
		free(msg);
		json_array_append_new(messages, m);
		return json_true();
	case F_SEL: {
		const char *const *sel = orm_field_selection(e, f);

		for (int k = 0; sel[k]; k += 2)
			if (!strcasecmp(sel[k], s) || !strcasecmp(sel[k + 1], s))
				return json_string(sel[k]);
		msg = emu_printf("Value '%s' not found in selection field '%s'", s,
				 f->label);
		goto fail;
	}
	case F_DATE:
	case F_DATETIME:
		if (orm_valid_date(s, f->type == F_DATETIME) || orm_valid_date(s, false))
			return json_string(s);
		msg = emu_printf("'%s' does not seem to be a valid %s for field '%s'",
				 s, f->type == F_DATE ? "date" : "datetime", f->label);
		goto fail;
	case F_M2O:
		if ((i = name_lookup(e, cm, s)))
			return json_integer(i);
		msg = emu_printf("No matching record found for name '%s' in field '%s'",
				 s, f->label);
		info = moreinfo(e, f->relation, json_array());
		goto fail;
	default:
		return json_string(s);
	}
fail:
	m = load_message(row, f->name, msg);
	if (info)
		json_object_set_new(m, "moreinfo", info);
	json_object_set_new(m, "field_name", json_string(f->label));
	json_array_append_new(messages, m);
	free(msg);
	return NULL;
}

static int load_columns(struct emu *e, struct model *m, json_t *fields,
			struct column **out)
{
	size_t n = json_array_size(fields), i;
	struct column *cols = calloc(n ? n : 1, sizeof(*cols));
	json_t *fv;

	if (!cols)
		abort();
	json_array_foreach(fields, i, fv) {
		const char *name = json_string_value(fv);
		char *base, *slash;

		if (!name) {
			char *r = emu_repr(fv);

			emu_raise(e, "builtins.ValueError", "Invalid field name %s", r);
			free(r);
			goto fail;
		}
		cols[i].name = name;
		if (strcmp(name, "id") == 0) {
			cols[i].kind = COL_XID;
			continue;
		}
		if (strcmp(name, ".id") == 0) {
			cols[i].kind = COL_DBID;
			continue;
		}
		base = emu_strdup(name);
		slash = strchr(base, '/');
		if (slash)
			*slash++ = '\0';
		cols[i].f = orm_field_find(m, base);
		if (!cols[i].f || (cols[i].f->flags & FF_AUTO) ||
		    (cols[i].f->flags & (FF_COMPUTED | FF_INVERSE)) == FF_COMPUTED) {
			emu_raise(e, "builtins.ValueError", "Invalid field name '%s'", base);
			free(base);
			goto fail;
		}
		if (cols[i].f->type == F_O2M) {
			emu_raise(e, "builtins.ValueError",
				  "one2many columns ('%s') are not emulated by odoo-emulator",
				  name);
			free(base);
			goto fail;
		}
		if (!slash)
			cols[i].kind = COL_VALUE;
		else if (strcmp(slash, "id") == 0 && cols[i].f->type == F_M2O)
			cols[i].kind = COL_REF_XID;
		else if (strcmp(slash, ".id") == 0 && cols[i].f->type == F_M2O)
			cols[i].kind = COL_REF_DBID;
		else {
			emu_raise(e, "builtins.ValueError", "Invalid field name '%s'", name);
			free(base);
			goto fail;
		}
		free(base);
	}
	*out = cols;
	return 0;
fail:
	free(cols);
	return -1;
}

/* Registers (or repoints) the external id of a record load() made. */
static int xid_register(struct emu *e, const struct emu_call *c,
			struct model *m, const char *xid, json_int_t id)
{
	char *full = xid_full(xid), *dot = strchr(full, '.');
	json_t *imd = orm_imd_lookup(e, full);
	struct model *im = orm_model_at(e, M_IMD);
	int rc;

	if (imd) {
		json_t *nr = json_deep_copy(imd);

		json_object_set_new(nr, "model", json_string(m->def->name));
		json_object_set_new(nr, "res_id", json_integer(id));
		orm_tx_touch(e, im, orm_rec_id(imd));
		orm_store_put(e, im, nr);
		rc = 0;
	} else {
		json_t *vals;

		*dot = '\0';
		vals = json_pack("{s:s, s:s, s:s, s:I, s:b}", "module", full,
				 "name", dot + 1, "model", m->def->name, "res_id",
				 (json_int_t)id, "noupdate", 0);
		rc = orm_create(e, c, im, vals, NULL);
		json_decref(vals);
	}
	free(full);
	return rc;
}

int orm_load(struct emu *e, const struct emu_call *c, struct model *m,
	     json_t *fields, json_t *data, json_t **result)
{
	struct column *cols = NULL;
	json_t *messages, *ids, *row;
	size_t r, ncols;
	bool failed = false;
	char *rr;

	if (!json_is_array(fields)) {
		rr = emu_repr(fields);
		emu_raise(e, "builtins.TypeError", "fields must be a list, not %s", rr);
		free(rr);
		return -1;
	}
	if (!json_is_array(data))
		return emu_raise(e, "builtins.TypeError", "'%s' object is not iterable",
				 emu_pytype(data));
	if (orm_check_access(e, c, m, ACL_CREATE) < 0 || orm_check_access(e, c, m, ACL_WRITE) < 0)
		return -1;
	if (load_columns(e, m, fields, &cols) < 0)
		return -1;
	ncols = json_array_size(fields);
	messages = json_array();
	ids = json_array();
	json_array_foreach(data, r, row) {
		json_t *vals = json_object();
		const char *xid = NULL;
		json_int_t dbid = 0, target = 0;
		bool row_bad = false;
		int rc;

		if (!json_is_array(row)) {
			json_array_append_new(messages,
					      load_message((int)r, NULL, "row is not a list"));
			failed = true;
			json_decref(vals);
			continue;
		}
		for (size_t j = 0; j < ncols && j < json_array_size(row); j++) {
			char *s = cell_text(json_array_get(row, j));
			json_t *v;

			switch (cols[j].kind) {
			case COL_XID:
				if (*s)
					xid = json_string_value(json_array_get(row, j));
				break;
			case COL_DBID:
				if (*s && !(orm_parse_int(s, &dbid) && orm_rec_get(m, dbid))) {
					char *msg = emu_printf("Unknown database identifier '%s'", s);

					json_array_append_new(messages, load_message((int)r, ".id", msg));
					free(msg);
					dbid = 0;
					row_bad = true;
				}
				break;
			default:
				v = cell_convert(e, &cols[j], s, (int)r, messages);
				if (v)
					json_object_set_new(vals, cols[j].f->name, v);
				else
					row_bad = true;
				break;
			}
			free(s);
		}
		/*
		 * A row with a bad cell is still written without it, then
		 * everything is rolled back: that is why it consumes an id.
		 */
		if (xid) {
			char *full = xid_full(xid);
			json_t *imd = orm_imd_lookup(e, full);

			free(full);
			if (imd && orm_rec_str(imd, "model") &&
			    strcmp(orm_rec_str(imd, "model"), m->def->name) == 0 &&
			    orm_rec_get(m, orm_rec_int(imd, "res_id")))
				target = orm_rec_int(imd, "res_id");
		} else if (dbid) {
			target = dbid;
		}
		if (target) {
			json_t *one = json_pack("[I]", target);

			rc = orm_write(e, c, m, one, vals);
			json_decref(one);
		} else {
			rc = orm_create(e, c, m, vals, &target);
			if (rc == 0 && xid)
				rc = xid_register(e, c, m, xid, target);
		}
		if (rc < 0) {
			json_array_append_new(messages,
					      load_message((int)r, NULL, e->err.message));
			emu_error_clear(e);
			row_bad = true;
		}
		if (row_bad)
			failed = true;
		else
			json_array_append_new(ids, json_integer(target));
		json_decref(vals);
	}
	free(cols);
	if (failed) {
		/* all or nothing: the savepoint of the whole call goes */
		orm_tx_rollback(e);
		json_decref(ids);
		ids = json_false();
	}
	*result = json_pack("{s:o, s:o, s:i}", "ids", ids, "messages", messages,
			    "nextrow", 0);
	return 0;
}

