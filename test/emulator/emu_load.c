/*
 * odoo-emulator: load(fields, data), the idempotent import: external ids in
 * an "id" column, relations by external id ("field/id") or database id
 * ("field/.id"), cells converted as Odoo's import converters do, and all or
 * nothing: one error message and the whole call is rolled back.
 *
 * One2many sub-rows ("order_line/product_id/id", "order_line/id", ...) as
 * Odoo 18 imports them (captures 620-653): the first row of a record holds
 * its own cells and its first line; each following row whose other cells
 * are all empty holds one more line. A line whose external id exists is
 * updated in place; a line without one is created every time; lines left
 * out are kept.
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

/*
 * One column of fields. A sub-column ("order_line/product_id/id") belongs
 * to a one2many field: its kind and field are those of the line model.
 */
struct column {
	enum col_kind kind;
	const struct field_def *f;   /* NULL for COL_XID, COL_DBID */
	const struct field_def *o2m; /* sub-column: the one2many field, else NULL */
	const char *name;            /* as the caller wrote it */
};

/* Where a message points: the rows of one record and its index. */
struct span {
	int from, to, record;
};

static json_t *load_message(const struct span *sp, const char *field,
			    const char *msg)
{
	json_t *m = json_pack("{s:{s:i, s:i}, s:s, s:i}", "rows", "from",
			      sp->from, "to", sp->to, "type", "error", "record",
			      sp->record);

	if (field)
		json_object_set_new(m, "field", json_string(field));
	json_object_set_new(m, "message", json_string(msg));
	return m;
}

/*
 * The "Possible Values" action Odoo attaches to a failed relation lookup:
 * by name it lists the comodel; by external or database id, ir.model.data
 * filtered on the comodel (db_id_for does both the same way). domain:
 * stolen, NULL for none.
 */
static json_t *moreinfo(struct emu *e, const char *res_model, json_t *domain)
{
	const char *list = e->version >= 18 ? "list" : "tree";
	char *mode = emu_printf("%s,form", list);
	json_t *mi = json_pack("{s:s, s:s, s:s, s:s, s:[[b, s], [b, s]], s:{s:b}, s:s, s:s}",
			       "name", "Possible Values", "type",
			       "ir.actions.act_window", "target", "new",
			       "view_mode", mode, "views", 0, list, 0, "form",
			       "context", "create", 0, "help",
			       "See all possible values", "res_model", res_model);

	if (domain)
		json_object_set_new(mi, "domain", domain);
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

/*
 * What name_search(name, operator='=') finds, as import uses it for a
 * relation given by name: the display name, and for products what their
 * _name_search tries in turn (the internal reference, the barcode, the
 * name, then a "[reference]" inside the text). Returns the first match in
 * id order and sets *count to the number of matches.
 */
static bool product_match(json_t *r, const char *name, int pass)
{
	const char *v;

	switch (pass) {
	case 0:
		v = orm_rec_str(r, "default_code");
		return v && strcmp(v, name) == 0;
	case 1:
		v = orm_rec_str(r, "barcode");
		return v && strcmp(v, name) == 0;
	case 2:
		v = orm_rec_str(r, "name");
		return v && strcmp(v, name) == 0;
	default: {
		const char *open = strchr(name, '['), *close;

		if (!open || !(close = strchr(open + 1, ']')))
			return false;
		v = orm_rec_str(r, "default_code");
		return v && strlen(v) == (size_t)(close - open - 1) &&
		       strncmp(v, open + 1, (size_t)(close - open - 1)) == 0;
	}
	}
}

static json_int_t name_lookup(struct emu *e, struct model *cm, const char *name,
			      int *count)
{
	const char *key;
	json_t *r;
	json_int_t best = 0;
	int passes = cm->idx == M_PRODUCT ? 4 : 1;

	*count = 0;
	for (int pass = 0; pass < passes && !*count; pass++) {
		json_object_foreach(cm->recs, key, r) {
			bool hit;

			if (cm->idx == M_PRODUCT) {
				hit = product_match(r, name, pass);
			} else {
				char *dn = orm_display_name(e, cm, r);

				hit = strcmp(dn, name) == 0;
				free(dn);
			}
			if (!hit)
				continue;
			++*count;
			if (!best || orm_rec_id(r) < best)
				best = orm_rec_id(r);
		}
	}
	return best;
}

/*
 * One cell through Odoo's import converters. Returns the value (new ref) or
 * NULL after appending an error message for the record. A sub-column's
 * errors name the one2many field and "Its Label/Sub Label", as Odoo's
 * _str_to_one2many rewrites them; its warnings keep the one2many's label.
 */
static json_t *cell_convert(struct emu *e, const struct column *col,
			    const char *s, const struct span *sp,
			    json_t *messages)
{
	const struct field_def *f = col->f;
	struct model *cm = f->relation ? orm_model_find(e, f->relation) : NULL;
	const char *mfield = col->o2m ? col->o2m->name : f->name;
	const char *mlabel = col->o2m ? col->o2m->label : f->label;
	char *label = col->o2m ? emu_printf("%s/%s", col->o2m->label, f->label)
			       : emu_strdup(f->label);
	json_int_t i;
	double d;
	int n;
	char *msg = NULL;
	json_t *info = NULL, *m, *v = NULL;

	if (!*s) {
		if (f->type == F_INT)
			v = json_integer(0);
		else if (f->type == F_FLOAT)
			v = json_real(0.0);
		else
			v = json_false();
		goto out;
	}
	switch (col->kind) {
	case COL_REF_XID:
		if ((i = xid_resolve(e, s, f->relation))) {
			v = json_integer(i);
			goto out;
		}
		msg = emu_printf("No matching record found for external id '%s' in field '%s'",
				 s, label);
		info = moreinfo(e, "ir.model.data",
				json_pack("[[s, s, s]]", "model", "=", f->relation));
		goto fail;
	case COL_REF_DBID:
		if (orm_parse_int(s, &i) && orm_rec_get(cm, i)) {
			v = json_integer(i);
			goto out;
		}
		msg = emu_printf("No matching record found for database id '%s' in field '%s'",
				 s, label);
		info = moreinfo(e, "ir.model.data",
				json_pack("[[s, s, s]]", "model", "=", f->relation));
		goto fail;
	default:
		break;
	}
	switch (f->type) {
	case F_INT:
		if (orm_parse_int(s, &i)) {
			v = json_integer(i);
			goto out;
		}
		msg = emu_printf("'%s' does not seem to be an integer for field '%s'",
				 s, label);
		goto fail;
	case F_FLOAT:
		if (orm_parse_float(s, &d)) {
			v = json_real(d);
			goto out;
		}
		msg = emu_printf("'%s' does not seem to be a number for field '%s'",
				 s, label);
		goto fail;
	case F_BOOL:
		if (!strcasecmp(s, "1") || !strcasecmp(s, "true") || !strcasecmp(s, "yes")) {
			v = json_true();
			goto out;
		}
		if (!strcasecmp(s, "0") || !strcasecmp(s, "false") || !strcasecmp(s, "no")) {
			v = json_false();
			goto out;
		}
		m = load_message(sp, mfield, "");
		json_object_set_new(m, "type", json_string("warning"));
		msg = emu_printf("Unknown value '%s' for boolean field '%s', assuming 'yes'",
				 s, mlabel);
		json_object_set_new(m, "message", json_string(msg));
		free(msg);
		json_array_append_new(messages, m);
		v = json_true();
		goto out;
	case F_SEL: {
		const char *const *sel = orm_field_selection(e, f);

		for (int k = 0; sel[k]; k += 2)
			if (!strcasecmp(sel[k], s) || !strcasecmp(sel[k + 1], s)) {
				v = json_string(sel[k]);
				goto out;
			}
		msg = emu_printf("Value '%s' not found in selection field '%s'", s,
				 label);
		goto fail;
	}
	case F_DATE:
	case F_DATETIME:
		if (orm_valid_date(s, f->type == F_DATETIME) || orm_valid_date(s, false)) {
			v = json_string(s);
			goto out;
		}
		msg = emu_printf("'%s' does not seem to be a valid %s for field '%s'",
				 s, f->type == F_DATE ? "date" : "datetime", label);
		goto fail;
	case F_M2O:
		if ((i = name_lookup(e, cm, s, &n))) {
			if (n > 1) {
				msg = emu_printf("Found multiple matches for value \"%s\" in field \"%s\" (%d matches)",
						 s, mlabel, n);
				m = load_message(sp, mfield, msg);
				json_object_set_new(m, "type", json_string("warning"));
				json_array_append_new(messages, m);
				free(msg);
			}
			v = json_integer(i);
			goto out;
		}
		msg = emu_printf("No matching record found for name '%s' in field '%s'",
				 s, label);
		info = moreinfo(e, f->relation, NULL);
		goto fail;
	default:
		v = json_string(s);
		goto out;
	}
fail:
	m = load_message(sp, mfield, msg);
	if (info)
		json_object_set_new(m, "moreinfo", info);
	json_object_set_new(m, "field_name", json_string(mlabel));
	json_array_append_new(messages, m);
	free(msg);
out:
	free(label);
	return v;
}

/*
 * The kind of column "rest" names in model m: "id", ".id", "field",
 * "field/id" or "field/.id" (a many2one). 0, or -1 with ValueError raised.
 */
static int column_parse(struct emu *e, struct model *m, const char *full,
			const char *rest, struct column *col)
{
	char *base = emu_strdup(rest), *slash = strchr(base, '/');
	const struct field_def *f;
	int rc = -1;

	if (slash)
		*slash++ = '\0';
	if (!slash && strcmp(base, "id") == 0) {
		col->kind = COL_XID;
		rc = 0;
		goto out;
	}
	if (!slash && strcmp(base, ".id") == 0) {
		col->kind = COL_DBID;
		rc = 0;
		goto out;
	}
	f = orm_field_find(m, base);
	if (!f || (f->flags & FF_AUTO) ||
	    (f->flags & (FF_COMPUTED | FF_INVERSE)) == FF_COMPUTED) {
		emu_raise(e, "builtins.ValueError", "Invalid field name '%s'", base);
		goto out;
	}
	col->f = f;
	if (f->type == F_O2M) {
		struct model *cm = orm_model_find(e, f->relation);

		/* a bare "order_line" (lines by name) and nested one2many */
		if (col->o2m || !slash) {
			emu_raise(e, "builtins.ValueError",
				  "one2many column '%s' is not emulated by odoo-emulator",
				  full);
			goto out;
		}
		col->o2m = f;
		col->f = NULL;
		rc = column_parse(e, cm, full, slash, col);
		goto out;
	}
	if (!slash)
		col->kind = COL_VALUE;
	else if (strcmp(slash, "id") == 0 && f->type == F_M2O)
		col->kind = COL_REF_XID;
	else if (strcmp(slash, ".id") == 0 && f->type == F_M2O)
		col->kind = COL_REF_DBID;
	else {
		emu_raise(e, "builtins.ValueError", "Invalid field name '%s'", full);
		goto out;
	}
	rc = 0;
out:
	free(base);
	return rc;
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

		if (!name) {
			char *r = emu_repr(fv);

			emu_raise(e, "builtins.ValueError", "Invalid field name %s", r);
			free(r);
			goto fail;
		}
		cols[i].name = name;
		if (column_parse(e, m, name, name, &cols[i]) < 0)
			goto fail;
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

/* The record an external id names in model m, or 0. */
static json_int_t xid_target(struct emu *e, struct model *m, const char *xid)
{
	char *full = xid_full(xid);
	json_t *imd = orm_imd_lookup(e, full);

	free(full);
	if (imd && orm_rec_str(imd, "model") &&
	    strcmp(orm_rec_str(imd, "model"), m->def->name) == 0 &&
	    orm_rec_get(m, orm_rec_int(imd, "res_id")))
		return orm_rec_int(imd, "res_id");
	return 0;
}

static bool cell_empty(json_t *row, size_t j)
{
	char *s = cell_text(json_array_get(row, j));
	bool empty = !*s;

	free(s);
	return empty;
}

/*
 * Odoo's _extract_records: a row whose cells outside one2many columns are
 * all empty, with something in a one2many column, carries one more
 * sub-record of the record above it.
 */
static bool row_continues(const struct column *cols, size_t ncols, json_t *row)
{
	bool sub = false;

	if (!json_is_array(row))
		return false;
	for (size_t j = 0; j < ncols; j++) {
		if (cell_empty(row, j))
			continue;
		if (!cols[j].o2m)
			return false;
		sub = true;
	}
	return sub;
}

/*
 * Turns a failed create or write into the load message Odoo gives: a NOT
 * NULL violation reads "Missing required value for the field 'Label'
 * (name)" and names the field, as load's error mapping does; anything
 * else is the exception's text.
 */
static json_t *failure_message(struct emu *e, const struct span *sp)
{
	static const char mandatory[] = "The operation cannot be completed:\n"
					"- Create/update: a mandatory field is not set.";
	const char *text = e->err.message ? e->err.message : "";
	const char *at = strstr(text, "\nField: ");
	json_t *m;

	if (strncmp(text, mandatory, sizeof(mandatory) - 1) == 0 && at) {
		const char *label = at + 8, *open = strrchr(label, '(');
		const char *close = open ? strchr(open, ')') : NULL;

		if (open && close && open > label) {
			char *lab = emu_printf("%.*s", (int)(open - label - 1), label);
			char *name = emu_printf("%.*s", (int)(close - open - 1), open + 1);
			char *msg = emu_printf("Missing required value for the field '%s' (%s)",
					       lab, name);

			m = load_message(sp, NULL, msg);
			json_object_set_new(m, "field", json_string(name));
			free(lab);
			free(name);
			free(msg);
			return m;
		}
	}
	return load_message(sp, NULL, text);
}

/*
 * The lines of one one2many field in rows [sp->from, sp->to], converted:
 * [[target id or 0, external id or null, vals], ...] (new reference), or
 * NULL after the message of the first bad line. As in Odoo's
 * _str_to_one2many, the first error stops the field: its message names
 * the one2many and "Its Label/Sub Label", and no line of it is written.
 */
static json_t *lines_convert(struct emu *e, const struct field_def *o2m,
			     const struct column *cols, size_t ncols,
			     json_t *data, const struct span *sp,
			     json_t *messages)
{
	struct model *cm = orm_model_find(e, o2m->relation);
	json_t *lines = json_array();

	for (int r = sp->from; r <= sp->to; r++) {
		json_t *row = json_array_get(data, (size_t)r), *vals;
		const char *xid = NULL;
		json_int_t dbid = 0;
		bool any = false, bad = false;

		/* a row with nothing for this field carries no line of it */
		for (size_t j = 0; j < ncols; j++)
			if (cols[j].o2m == o2m && !cell_empty(row, j))
				any = true;
		if (!any)
			continue;
		vals = json_object();
		for (size_t j = 0; j < ncols && !bad; j++) {
			char *s;
			json_t *v;

			if (cols[j].o2m != o2m)
				continue;
			s = cell_text(json_array_get(row, j));
			switch (cols[j].kind) {
			case COL_XID:
				if (*s)
					xid = json_string_value(json_array_get(row, j));
				break;
			case COL_DBID:
				if (*s && !(orm_parse_int(s, &dbid) && orm_rec_get(cm, dbid))) {
					char *msg = emu_printf("No matching record found for database id '%s' in field '%s'",
							       s, o2m->label);
					json_t *m = load_message(sp, o2m->name, msg);

					json_object_set_new(m, "moreinfo",
							    moreinfo(e, "ir.model.data",
								     json_pack("[[s, s, s]]", "model", "=",
									       cm->def->name)));
					json_object_set_new(m, "field_name", json_string(o2m->label));
					json_array_append_new(messages, m);
					free(msg);
					bad = true;
				}
				break;
			default:
				v = cell_convert(e, &cols[j], s, sp, messages);
				if (v)
					json_object_set_new(vals, cols[j].f->name, v);
				else
					bad = true;
				break;
			}
			free(s);
		}
		if (bad) {
			json_decref(vals);
			json_decref(lines);
			return NULL;
		}
		/* an external id that names nothing yet is the new line's */
		json_array_append_new(lines, json_pack("[I, o, o]",
						       xid ? xid_target(e, cm, xid) : dbid,
						       xid ? json_string(xid) : json_null(),
						       vals));
	}
	return lines;
}

/*
 * Writes the lines of one one2many field of record parent. A line whose
 * external id exists is linked to the record and updated in place; any
 * other line is created and, when it has an external id, the id is
 * registered for it. Lines the rows do not mention are left as they are,
 * as Odoo's import does. false: a message was added.
 */
static bool load_lines(struct emu *e, const struct emu_call *c,
		       const struct field_def *o2m, const struct column *cols,
		       size_t ncols, json_t *data, const struct span *sp,
		       json_int_t parent, json_t *messages)
{
	struct model *cm = orm_model_find(e, o2m->relation);
	json_t *lines = lines_convert(e, o2m, cols, ncols, data, sp, messages);
	json_t *line;
	size_t i;
	bool ok = true;

	if (!lines)
		return false;
	json_array_foreach(lines, i, line) {
		json_int_t target = json_integer_value(json_array_get(line, 0));
		const char *xid = json_string_value(json_array_get(line, 1));
		json_t *vals = json_array_get(line, 2);
		int rc;

		json_object_set_new(vals, o2m->inverse, json_integer(parent));
		if (target) {
			json_t *one = json_pack("[I]", target);

			rc = orm_write(e, c, cm, one, vals);
			json_decref(one);
		} else {
			rc = orm_create(e, c, cm, vals, &target);
			if (rc == 0 && xid)
				rc = xid_register(e, c, cm, xid, target);
		}
		if (rc < 0) {
			/* one write of the record in Odoo: its first error ends it */
			json_array_append_new(messages, failure_message(e, sp));
			emu_error_clear(e);
			ok = false;
			break;
		}
	}
	json_decref(lines);
	return ok;
}

/*
 * One record: the cells of its first row outside one2many columns, then
 * the lines of each one2many field. *id: the record's id, 0 if it failed.
 */
static bool load_record(struct emu *e, const struct emu_call *c,
			struct model *m, const struct column *cols, size_t ncols,
			json_t *data, const struct span *sp, json_t *messages,
			json_int_t *id, bool *write_failed)
{
	json_t *row = json_array_get(data, (size_t)sp->from);
	json_t *vals = json_object();
	const char *xid = NULL;
	json_int_t dbid = 0, target = 0;
	bool ok = true, created = false;
	int rc;

	for (size_t j = 0; j < ncols && j < json_array_size(row); j++) {
		char *s;
		json_t *v;

		if (cols[j].o2m)
			continue;
		s = cell_text(json_array_get(row, j));
		switch (cols[j].kind) {
		case COL_XID:
			if (*s)
				xid = json_string_value(json_array_get(row, j));
			break;
		case COL_DBID:
			if (*s && !(orm_parse_int(s, &dbid) && orm_rec_get(m, dbid))) {
				char *msg = emu_printf("Unknown database identifier '%s'", s);

				json_array_append_new(messages, load_message(sp, ".id", msg));
				free(msg);
				dbid = 0;
				ok = false;
			}
			break;
		default:
			v = cell_convert(e, &cols[j], s, sp, messages);
			if (v)
				json_object_set_new(vals, cols[j].f->name, v);
			else
				ok = false;
			break;
		}
		free(s);
	}
	/*
	 * A record with a bad cell is still written without it, then
	 * everything is rolled back: that is why it consumes an id.
	 */
	target = xid ? xid_target(e, m, xid) : dbid;
	if (target) {
		json_t *one = json_pack("[I]", target);

		rc = orm_write(e, c, m, one, vals);
		json_decref(one);
	} else {
		rc = orm_create(e, c, m, vals, &target);
		created = rc == 0;
	}
	json_decref(vals);
	if (rc < 0) {
		json_array_append_new(messages, failure_message(e, sp));
		emu_error_clear(e);
		*id = 0;
		*write_failed = true;
		return false;
	}
	e->cost.pending_us += created ? e->cost.create_row_us : e->cost.update_row_us;
	/* each one2many once, in the order of its first column */
	for (size_t j = 0; j < ncols; j++) {
		bool seen = false;

		if (!cols[j].o2m)
			continue;
		for (size_t k = 0; k < j; k++)
			if (cols[k].o2m == cols[j].o2m)
				seen = true;
		if (!seen && !load_lines(e, c, cols[j].o2m, cols, ncols, data, sp,
					 target, messages))
			ok = false;
	}
	/* the lines' external ids come first, as in Odoo */
	if (created && xid && xid_register(e, c, m, xid, target) < 0) {
		json_array_append_new(messages, failure_message(e, sp));
		emu_error_clear(e);
		*write_failed = true;
		ok = false;
	}
	*id = ok ? target : 0;
	return ok;
}

int orm_load(struct emu *e, const struct emu_call *c, struct model *m,
	     json_t *fields, json_t *data, json_t **result)
{
	struct column *cols = NULL;
	json_t *messages, *ids;
	size_t ncols, nrows;
	bool failed = false;
	int record = 0, errors = 0;
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
	if (orm_check_access(e, c, m, ACL_CREATE) < 0 || orm_check_access(e, c, m, ACL_WRITE) < 0) {
		struct span sp0 = {0, 0, 0};

		if (e->version < 19 || json_array_size(data) == 0)
			return -1;
		/* 19 says it as the first row's message, with HTTP 200 (capture 558) */
		*result = json_pack("{s:b, s:[o], s:i}", "ids", 0, "messages",
				    load_message(&sp0, NULL, e->err.message ? e->err.message : ""),
				    "nextrow", 0);
		emu_error_clear(e);
		return 0;
	}
	e->stats.load_rows += (long)json_array_size(data);
	if (!e->stats.load_first_us) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		e->stats.load_first_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	}
	json_decref(e->stats.load_context);
	e->stats.load_context = c->context ? json_deep_copy(c->context) : NULL;
	if (load_columns(e, m, fields, &cols) < 0)
		return -1;
	ncols = json_array_size(fields);
	nrows = json_array_size(data);
	messages = json_array();
	ids = json_array();
	for (size_t r = 0; r < nrows; record++) {
		struct span sp = {(int)r, (int)r, record};
		json_int_t id;
		size_t end = r + 1;

		if (!json_is_array(json_array_get(data, r))) {
			json_array_append_new(messages,
					      load_message(&sp, NULL, "row is not a list"));
			failed = true;
			r++;
			continue;
		}
		while (end < nrows && row_continues(cols, ncols, json_array_get(data, end)))
			end++;
		sp.to = (int)end - 1;
		bool write_failed = false;
		if (load_record(e, c, m, cols, ncols, data, &sp, messages, &id, &write_failed))
			json_array_append_new(ids, json_integer(id));
		else
			failed = true;
		r = end;
		/*
		 * Odoo counts the errors raised while writing (not those of
		 * converting a cell: all of those are listed, capture 408) and
		 * stops after ten when they are more than one in ten records
		 * (capture 409): the rows after are neither written nor named.
		 */
		if (write_failed && ++errors >= 10 && errors >= record / 10) {
			json_array_append_new(messages, json_pack("{s:s, s:s}", "type", "warning",
				"message", "Found more than 10 errors and more than one error per 10 "
				"records, interrupted to avoid showing too many errors."));
			break;
		}
	}
	free(cols);
	if (failed) {
		/* all or nothing: the savepoint of the whole call goes */
		orm_tx_rollback(e);
		json_decref(ids);
		ids = json_false();
	}
	if (!failed && json_array_size(ids) && e->faults.load_ids[0] &&
	    e->faults.load_ids_count != 0) {
		/* an answer that does not give every row its id: the rows are
		 * written, the answer is wrong */
		if (e->faults.load_ids_count > 0)
			e->faults.load_ids_count--;
		e->stats.faults++;
		if (strcmp(e->faults.load_ids, "short") == 0)
			json_array_remove(ids, json_array_size(ids) - 1);
		else
			json_array_set_new(ids, json_array_size(ids) - 1, json_false());
	}
	*result = json_pack("{s:o, s:o, s:i}", "ids", ids, "messages", messages,
			    "nextrow", 0);
	return 0;
}
