/*
 * odoo-emulator: the records and what Odoo's ORM does with them.
 *
 * A handful of models with enough fields to be useful, kept in memory as
 * JSON objects keyed by id. Each call is a transaction: every record it
 * touches is journalled first, and an error puts them all back. Sequences
 * are not put back, as in PostgreSQL, so ids consumed by a failed insert
 * stay consumed (the captures show those gaps).
 */
#include "emu_orm.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FLD(n, t, l, fl) {.name = n, .type = t, .label = l, .flags = fl}
#define REL(n, t, l, rel, inv, fl) \
	{.name = n, .type = t, .label = l, .relation = rel, .inverse = inv, \
	 .flags = fl}
#define SEL(n, l, sel, fl) \
	{.name = n, .type = F_SEL, .label = l, .selection = sel, .flags = fl}
#define MAGIC \
	FLD("id", F_INT, "ID", FF_AUTO), \
	FLD("display_name", F_CHAR, "Display Name", FF_COMPUTED), \
	FLD("create_date", F_DATETIME, "Created on", FF_AUTO), \
	REL("create_uid", F_M2O, "Created by", "res.users", NULL, FF_AUTO), \
	FLD("write_date", F_DATETIME, "Last Updated on", FF_AUTO), \
	REL("write_uid", F_M2O, "Last Updated by", "res.users", NULL, FF_AUTO), \
	{0}

static const char *const partner_type_sel[] = {
	"contact", "Contact", "invoice", "Invoice Address", "delivery",
	"Delivery Address", "other", "Other Address", NULL};
static const char *const company_type_sel[] = {
	"person", "Individual", "company", "Company", NULL};
static const char *const product_type_sel[] = {
	"consu", "Goods", "service", "Service", "combo", "Combo", NULL};
/* before 18.0 the product types were these */
static const char *const product_type_sel_old[] = {
	"consu", "Consumable", "service", "Service", "product",
	"Storable Product", NULL};
static const char *const so_state_sel[] = {
	"draft", "Quotation", "sent", "Quotation Sent", "sale", "Sales Order",
	"cancel", "Cancelled", NULL};

static const char *const so_invoice_status_sel[] = {
	"upselling", "Upselling Opportunity", "invoiced", "Fully Invoiced",
	"to invoice", "To Invoice", "no", "Nothing to Invoice", NULL};

static const struct field_def partner_fields[] = {
	FLD("name", F_CHAR, "Name", 0),
	FLD("complete_name", F_CHAR, "Complete Name", FF_COMPUTED),
	FLD("ref", F_CHAR, "Reference", 0),
	FLD("email", F_CHAR, "Email", 0),
	FLD("phone", F_CHAR, "Phone", 0),
	FLD("mobile", F_CHAR, "Mobile", 0),
	FLD("website", F_CHAR, "Website Link", 0),
	FLD("vat", F_CHAR, "Tax ID", 0),
	FLD("street", F_CHAR, "Street", 0),
	FLD("street2", F_CHAR, "Street2", 0),
	FLD("city", F_CHAR, "City", 0),
	FLD("zip", F_CHAR, "Zip", 0),
	REL("country_id", F_M2O, "Country", "res.country", NULL, 0),
	FLD("function", F_CHAR, "Job Position", 0),
	FLD("comment", F_HTML, "Notes", 0),
	FLD("is_company", F_BOOL, "Is a Company", 0),
	SEL("company_type", "Company Type", company_type_sel,
	    FF_COMPUTED | FF_INVERSE),
	SEL("type", "Address Type", partner_type_sel, 0),
	REL("parent_id", F_M2O, "Related Company", "res.partner", NULL, 0),
	REL("child_ids", F_O2M, "Contact", "res.partner", "parent_id", 0),
	REL("company_id", F_M2O, "Company", "res.company", NULL, 0),
	REL("user_id", F_M2O, "Salesperson", "res.users", NULL, 0),
	FLD("lang", F_CHAR, "Language", 0),
	FLD("tz", F_CHAR, "Timezone", 0),
	FLD("active", F_BOOL, "Active", 0),
	FLD("color", F_INT, "Color Index", 0),
	FLD("customer_rank", F_INT, "Customer Rank", 0),
	FLD("supplier_rank", F_INT, "Supplier Rank", 0),
	FLD("barcode", F_CHAR, "Barcode", 0),
	MAGIC
};

static const struct field_def users_fields[] = {
	FLD("name", F_CHAR, "Name", 0),
	FLD("login", F_CHAR, "Login", FF_REQUIRED),
	FLD("password", F_CHAR, "Password", FF_HIDDEN),
	REL("partner_id", F_M2O, "Related Partner", "res.partner", NULL,
	    FF_REQUIRED),
	FLD("email", F_CHAR, "Email", 0),
	FLD("active", F_BOOL, "Active", 0),
	REL("company_id", F_M2O, "Company", "res.company", NULL, FF_REQUIRED),
	FLD("lang", F_CHAR, "Language", 0),
	FLD("tz", F_CHAR, "Timezone", 0),
	MAGIC
};

static const struct field_def company_fields[] = {
	FLD("name", F_CHAR, "Company Name", FF_REQUIRED),
	REL("partner_id", F_M2O, "Partner", "res.partner", NULL, FF_REQUIRED),
	FLD("email", F_CHAR, "Email", 0),
	FLD("phone", F_CHAR, "Phone", 0),
	FLD("website", F_CHAR, "Website Link", 0),
	FLD("vat", F_CHAR, "Tax ID", 0),
	FLD("street", F_CHAR, "Street", 0),
	FLD("city", F_CHAR, "City", 0),
	FLD("zip", F_CHAR, "Zip", 0),
	REL("country_id", F_M2O, "Country", "res.country", NULL, 0),
	FLD("sequence", F_INT, "Sequence", 0),
	FLD("active", F_BOOL, "Active", 0),
	MAGIC
};

static const struct field_def country_fields[] = {
	FLD("name", F_CHAR, "Country Name", FF_REQUIRED),
	FLD("code", F_CHAR, "Country Code", 0),
	FLD("phone_code", F_INT, "Country Calling Code", 0),
	MAGIC
};

static const struct field_def product_fields[] = {
	FLD("name", F_CHAR, "Name", FF_REQUIRED),
	FLD("default_code", F_CHAR, "Internal Reference", 0),
	FLD("barcode", F_CHAR, "Barcode", 0),
	FLD("list_price", F_FLOAT, "Sales Price", 0),
	FLD("standard_price", F_FLOAT, "Cost", 0),
	SEL("type", "Product Type", product_type_sel, 0),
	FLD("sale_ok", F_BOOL, "Can be Sold", 0),
	FLD("purchase_ok", F_BOOL, "Can be Purchased", 0),
	FLD("description", F_HTML, "Description", 0),
	FLD("description_sale", F_TEXT, "Sales Description", 0),
	FLD("weight", F_FLOAT, "Weight", 0),
	REL("company_id", F_M2O, "Company", "res.company", NULL, 0),
	FLD("active", F_BOOL, "Active", 0),
	MAGIC
};

static const struct field_def so_fields[] = {
	FLD("name", F_CHAR, "Order Reference", FF_REQUIRED),
	REL("partner_id", F_M2O, "Customer", "res.partner", NULL, FF_REQUIRED),
	FLD("client_order_ref", F_CHAR, "Customer Reference", 0),
	FLD("origin", F_CHAR, "Source Document", 0),
	FLD("date_order", F_DATETIME, "Order Date", FF_REQUIRED),
	SEL("state", "Status", so_state_sel, 0),
	FLD("note", F_HTML, "Terms and conditions", 0),
	REL("order_line", F_O2M, "Order Lines", "sale.order.line", "order_id",
	    0),
	FLD("amount_untaxed", F_FLOAT, "Untaxed Amount", FF_COMPUTED),
	FLD("amount_total", F_FLOAT, "Total", FF_COMPUTED),
	REL("company_id", F_M2O, "Company", "res.company", NULL, FF_REQUIRED),
	REL("user_id", F_M2O, "Salesperson", "res.users", NULL, 0),
	FLD("locked", F_BOOL, "Locked", 0),
	SEL("invoice_status", "Invoice Status", so_invoice_status_sel, FF_COMPUTED),
	REL("partner_invoice_id", F_M2O, "Invoice Address", "res.partner", NULL,
	    FF_COMPUTED),
	REL("partner_shipping_id", F_M2O, "Delivery Address", "res.partner", NULL,
	    FF_COMPUTED),
	MAGIC
};

static const struct field_def sol_fields[] = {
	REL("order_id", F_M2O, "Order Reference", "sale.order", NULL,
	    FF_REQUIRED | FF_CASCADE),
	REL("product_id", F_M2O, "Product", "product.product", NULL, 0),
	FLD("name", F_TEXT, "Description", FF_REQUIRED),
	FLD("product_uom_qty", F_FLOAT, "Quantity", 0),
	FLD("price_unit", F_FLOAT, "Unit Price", 0),
	FLD("technical_price_unit", F_FLOAT, "Technical Price Unit", FF_COMPUTED),
	FLD("discount", F_FLOAT, "Discount (%)", 0),
	FLD("price_subtotal", F_FLOAT, "Subtotal", FF_COMPUTED),
	FLD("sequence", F_INT, "Sequence", 0),
	/* related: the order's status */
	SEL("state", "Order Status", so_state_sel, FF_COMPUTED),
	MAGIC
};

static const struct field_def imd_fields[] = {
	FLD("module", F_CHAR, "Module", FF_REQUIRED),
	FLD("name", F_CHAR, "External Identifier", FF_REQUIRED),
	FLD("model", F_CHAR, "Model Name", FF_REQUIRED),
	FLD("res_id", F_INT, "Record ID", 0),
	FLD("complete_name", F_CHAR, "Complete ID", FF_COMPUTED),
	FLD("noupdate", F_BOOL, "Non Updatable", 0),
	MAGIC
};

static const struct field_def apikey_fields[] = {
	FLD("name", F_CHAR, "Description", FF_REQUIRED),
	REL("user_id", F_M2O, "User", "res.users", NULL,
	    FF_REQUIRED | FF_CASCADE),
	FLD("scope", F_CHAR, "Scope", 0),
	FLD("expiration_date", F_DATETIME, "Expiration Date", 0),
	FLD("key", F_CHAR, "Key", FF_HIDDEN),
	MAGIC
};

static const struct field_def apikey_desc_fields[] = {
	FLD("name", F_CHAR, "Description", FF_REQUIRED),
	FLD("duration", F_CHAR, "Duration", 0),
	FLD("expiration_date", F_DATETIME, "Expiration Date", 0),
	MAGIC
};

static const struct field_def idcheck_fields[] = {
	FLD("password", F_CHAR, "Password", FF_HIDDEN),
	FLD("request", F_CHAR, "Request", FF_HIDDEN),
	MAGIC
};

static const char *const module_state_sel[] = {
	"uninstallable", "Uninstallable", "uninstalled", "Not Installed",
	"installed", "Installed", "to upgrade", "To be upgraded",
	"to remove", "To be removed", "to install", "To be installed", NULL
};

/* Installed modules: the relay refuses an external-ID prefix that names one. */
static const struct field_def module_fields[] = {
	FLD("name", F_CHAR, "Technical Name", FF_REQUIRED),
	FLD("shortdesc", F_CHAR, "Module Name", 0),
	SEL("state", "Status", module_state_sel, 0),
	MAGIC
};

#define ACCESS_RIGHTS "Administration/Access Rights"
#define SETTINGS "Administration/Settings"

static const struct model_def model_defs[NMODELS] = {
	[M_PARTNER] = {"res.partner", "Contact", "Partner",
		       "complete_name asc, id desc", ACCESS_RIGHTS, ACL_ALL,
		       ACL_ALL, partner_fields},
	[M_USERS] = {"res.users", "User", "Users", "name, login",
		     ACCESS_RIGHTS, ACL_READ, ACL_ALL, users_fields},
	[M_COMPANY] = {"res.company", "Companies", "Company", "sequence, name",
		       ACCESS_RIGHTS, ACL_READ, ACL_ALL, company_fields},
	[M_COUNTRY] = {"res.country", "Country", "Country", "name", SETTINGS,
		       ACL_READ, ACL_ALL, country_fields},
	[M_PRODUCT] = {"product.product", "Product Variant", "ProductProduct",
		       "default_code, name, id", SETTINGS, ACL_ALL, ACL_ALL,
		       product_fields},
	[M_SO] = {"sale.order", "Sales Order", "SaleOrder",
		  "date_order desc, id desc", SETTINGS, ACL_ALL, ACL_ALL,
		  so_fields},
	[M_SOL] = {"sale.order.line", "Sales Order Line", "SaleOrderLine",
		   "order_id, sequence, id", SETTINGS, ACL_ALL, ACL_ALL,
		   sol_fields},
	[M_IMD] = {"ir.model.data", "Model Data", "IrModelData",
		   "module, model, name", SETTINGS, ACL_READ, ACL_ALL,
		   imd_fields},
	/* keys are made by make_key and dropped by remove, never written */
	[M_APIKEY] = {"res.users.apikeys", "Users API Keys", "APIKeys", "id",
		      SETTINGS, ACL_READ, ACL_READ, apikey_fields},
	[M_APIKEY_DESC] = {"res.users.apikeys.description", "API Key Description",
			   "APIKeyDescription", "id", SETTINGS, ACL_ALL, ACL_ALL,
			   apikey_desc_fields},
	[M_IDCHECK] = {"res.users.identitycheck", "Password Check",
		       "CheckIdentity", "id", SETTINGS, ACL_ALL, ACL_ALL,
		       idcheck_fields},
	[M_MODULE] = {"ir.module.module", "Module", "IrModuleModule", "name",
		      SETTINGS, ACL_READ, ACL_READ, module_fields},
};

/* ---- storage and transactions ------------------------------------------ */

struct model *orm_model_at(struct emu *e, int idx)
{
	return &e->data->models[idx];
}

struct model *orm_model_find(struct emu *e, const char *name)
{
	for (int i = 0; i < NMODELS; i++)
		if (strcmp(model_defs[i].name, name) == 0)
			return orm_model_at(e, i);
	return NULL;
}

bool emu_model_exists(struct emu *e, const char *model)
{
	return orm_model_find(e, model) != NULL;
}

json_t *orm_rec_get(const struct model *m, json_int_t id)
{
	char key[32];

	snprintf(key, sizeof(key), "%" JSON_INTEGER_FORMAT, id);
	return json_object_get(m->recs, key);
}

json_int_t orm_rec_id(const json_t *rec)
{
	return json_integer_value(json_object_get(rec, "id"));
}

const char *orm_rec_str(const json_t *rec, const char *field)
{
	return json_string_value(json_object_get(rec, field));
}

json_int_t orm_rec_int(const json_t *rec, const char *field)
{
	return json_integer_value(json_object_get(rec, field));
}

char *orm_imd_key(const json_t *rec)
{
	return emu_printf("%s.%s", orm_rec_str(rec, "module") ? orm_rec_str(rec, "module") : "",
			  orm_rec_str(rec, "name") ? orm_rec_str(rec, "name") : "");
}

/* The only way records enter the store: keeps the xmlid index in step. */
void orm_store_put(struct emu *e, struct model *m, json_t *rec)
{
	char key[32];
	json_int_t id = orm_rec_id(rec);

	snprintf(key, sizeof(key), "%" JSON_INTEGER_FORMAT, id);
	if (m->idx == M_IMD) {
		json_t *old = json_object_get(m->recs, key);
		char *k;

		if (old) {
			k = orm_imd_key(old);
			if (json_integer_value(json_object_get(e->data->xmlids, k)) == id)
				json_object_del(e->data->xmlids, k);
			free(k);
		}
		k = orm_imd_key(rec);
		json_object_set_new(e->data->xmlids, k, json_integer(id));
		free(k);
	}
	json_object_set_new(m->recs, key, rec);
}

static void store_del(struct emu *e, struct model *m, json_int_t id)
{
	char key[32];
	json_t *old;

	snprintf(key, sizeof(key), "%" JSON_INTEGER_FORMAT, id);
	old = json_object_get(m->recs, key);
	if (!old)
		return;
	if (m->idx == M_IMD) {
		char *k = orm_imd_key(old);

		if (json_integer_value(json_object_get(e->data->xmlids, k)) == id)
			json_object_del(e->data->xmlids, k);
		free(k);
	}
	json_object_del(m->recs, key);
}

void orm_store_remove(struct emu *e, struct model *m, json_int_t id)
{
	store_del(e, m, id);
}

/* Journals a record before its first change in this transaction. */
void orm_tx_touch(struct emu *e, struct model *m, json_int_t id)
{
	char key[48];
	json_t *old;

	snprintf(key, sizeof(key), "%d:%" JSON_INTEGER_FORMAT, m->idx, id);
	if (json_object_get(e->data->touched, key))
		return;
	e->data->written++;
	json_object_set_new(e->data->touched, key, json_true());
	old = orm_rec_get(m, id);
	json_array_append_new(e->data->journal,
			      json_pack("[i, I, o]", m->idx, (json_int_t)id,
					old ? json_deep_copy(old) : json_null()));
}

void orm_tx_begin(struct emu *e)
{
	json_array_clear(e->data->journal);
	json_object_clear(e->data->touched);
	e->data->written = 0;
	emu_poll_tx_begin(e);
}

void orm_tx_rollback(struct emu *e)
{
	size_t n = json_array_size(e->data->journal);

	while (n-- > 0) {
		json_t *j = json_array_get(e->data->journal, n);
		struct model *m = orm_model_at(e, (int)json_integer_value(json_array_get(j, 0)));
		json_int_t id = json_integer_value(json_array_get(j, 1));
		json_t *old = json_array_get(j, 2);

		if (json_is_null(old))
			store_del(e, m, id);
		else
			orm_store_put(e, m, json_deep_copy(old));
	}
	orm_tx_begin(e);
}

/* ---- fields and values ------------------------------------------------- */

const struct field_def *orm_field_find(const struct model *m,
				       const char *name)
{
	for (const struct field_def *f = m->def->fields; f->name; f++)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

const char *const *orm_field_selection(struct emu *e,
				       const struct field_def *f)
{
	if (f->selection == product_type_sel && e->version < 18)
		return product_type_sel_old;
	return f->selection;
}

bool orm_is_admin(struct emu *e, long uid)
{
	json_t *u = orm_rec_get(orm_model_at(e, M_USERS), uid);

	return u && json_is_true(json_object_get(u, "_admin"));
}

const char *orm_type_name(enum ftype t)
{
	static const char *const names[] = {
		[F_CHAR] = "char", [F_TEXT] = "text", [F_HTML] = "html",
		[F_INT] = "integer", [F_FLOAT] = "float", [F_BOOL] = "boolean",
		[F_DATE] = "date", [F_DATETIME] = "datetime",
		[F_SEL] = "selection", [F_M2O] = "many2one", [F_O2M] = "one2many"};
	return names[t];
}


/* The commercial partner's name, as Odoo prefixes a contact's name with. */
static char *partner_complete_name(struct emu *e, json_t *rec)
{
	struct model *pm = orm_model_at(e, M_PARTNER);
	const char *name = orm_rec_str(rec, "name");
	json_t *top = rec;
	int depth = 0;

	if (!orm_rec_int(rec, "parent_id") || json_is_true(json_object_get(rec, "is_company")))
		return emu_strdup(name ? name : "");
	while (depth++ < 64) {
		json_t *p = orm_rec_get(pm, orm_rec_int(top, "parent_id"));

		if (!p)
			break;
		top = p;
		if (json_is_true(json_object_get(p, "is_company")))
			break;
	}
	if (top == rec)
		return emu_strdup(name ? name : "");
	return emu_printf("%s, %s", orm_rec_str(top, "name") ? orm_rec_str(top, "name") : "",
			  name ? name : "");
}

char *orm_display_name(struct emu *e, struct model *m, json_t *rec)
{
	const char *name;

	switch (m->idx) {
	case M_PARTNER:
		return partner_complete_name(e, rec);
	case M_IMD:
		return orm_imd_key(rec);
	case M_PRODUCT: {
		const char *code = orm_rec_str(rec, "default_code");

		name = orm_rec_str(rec, "name");
		if (code && *code)
			return emu_printf("[%s] %s", code, name ? name : "");
		return emu_strdup(name ? name : "");
	}
	case M_SOL: {
		json_t *so = orm_rec_get(orm_model_at(e, M_SO), orm_rec_int(rec, "order_id"));
		const char *n = orm_rec_str(rec, "name");

		return emu_printf("%s - %s", so && orm_rec_str(so, "name") ? orm_rec_str(so, "name") : "",
				  n ? n : "");
	}
	default:
		name = orm_rec_str(rec, "name");
		if (name)
			return emu_strdup(name);
		return emu_printf("%s,%" JSON_INTEGER_FORMAT, m->def->name,
				  orm_rec_id(rec));
	}
}

/* ids of the comodel records whose inverse field points at rec */
static json_t *o2m_ids(struct emu *e, const struct field_def *f, json_int_t id)
{
	struct model *cm = orm_model_find(e, f->relation);
	json_t *ids = json_array(), *r;
	const char *key;

	json_object_foreach(cm->recs, key, r)
		if (orm_rec_int(r, f->inverse) == id)
			json_array_append_new(ids, json_integer(orm_rec_id(r)));
	return ids;
}

static double sol_subtotal(const json_t *l)
{
	double qty = json_number_value(json_object_get(l, "product_uom_qty"));
	double price = json_number_value(json_object_get(l, "price_unit"));
	double disc = json_number_value(json_object_get(l, "discount"));

	return round(qty * price * (1.0 - disc / 100.0) * 100.0) / 100.0;
}

/* The value a field has for a record, as stored or computed: new reference. */
json_t *orm_value_get(struct emu *e, struct model *m, json_t *rec,
		      const struct field_def *f)
{
	json_t *v;

	if (f->flags & FF_HIDDEN)
		return json_string("");
	if (f->type == F_O2M)
		return o2m_ids(e, f, orm_rec_id(rec));
	if ((m->idx == M_SO || m->idx == M_SOL) && (v = sale_value_get(e, m, rec, f)))
		return v;
	if (strcmp(f->name, "display_name") == 0 ||
	    (strcmp(f->name, "complete_name") == 0 && m->idx != M_IMD)) {
		char *s = orm_display_name(e, m, rec);

		v = json_string(s);
		free(s);
		return v;
	}
	if (strcmp(f->name, "complete_name") == 0) {
		char *s = orm_imd_key(rec);

		v = json_string(s);
		free(s);
		return v;
	}
	if (strcmp(f->name, "company_type") == 0)
		return json_string(json_is_true(json_object_get(rec, "is_company"))
					   ? "company" : "person");
	if (strcmp(f->name, "price_subtotal") == 0)
		return json_real(sol_subtotal(rec));
	if (m->idx == M_SOL && strcmp(f->name, "state") == 0) {
		json_t *so = orm_rec_get(orm_model_at(e, M_SO), orm_rec_int(rec, "order_id"));

		return so && orm_rec_str(so, "state") ? json_string(orm_rec_str(so, "state"))
						      : json_false();
	}
	if (strcmp(f->name, "amount_untaxed") == 0 ||
	    strcmp(f->name, "amount_total") == 0) {
		struct model *lm = orm_model_at(e, M_SOL);
		const char *key;
		json_t *l;
		double sum = 0;

		json_object_foreach(lm->recs, key, l)
			if (orm_rec_int(l, "order_id") == orm_rec_id(rec))
				sum += sol_subtotal(l);
		return json_real(round(sum * 100.0) / 100.0);
	}
	v = json_object_get(rec, f->name);
	if (!v || json_is_null(v)) {
		if (f->type == F_INT)
			return json_integer(0);
		if (f->type == F_FLOAT)
			return json_real(0.0);
		return json_false();
	}
	return json_incref(v);
}

/* As read() shows it: many2one as [id, display_name] unless load is off. */
json_t *orm_value_read(struct emu *e, struct model *m, json_t *rec,
		       const struct field_def *f, bool classic)
{
	json_t *v = orm_value_get(e, m, rec, f);

	if (f->type == F_M2O && json_is_integer(v) && classic) {
		struct model *cm = orm_model_find(e, f->relation);
		json_t *target = orm_rec_get(cm, json_integer_value(v));
		json_t *pair;
		char *dn;

		if (!target) {
			json_decref(v);
			return json_false();
		}
		dn = orm_display_name(e, cm, target);
		pair = json_pack("[O, s]", v, dn);
		free(dn);
		json_decref(v);
		return pair;
	}
	if (f->type == F_DATETIME)
		return emu_datetime_wire(v);
	return v;
}

bool orm_parse_int(const char *s, json_int_t *out)
{
	char *end;
	long long v;

	while (isspace((unsigned char)*s))
		s++;
	if (!*s)
		return false;
	v = strtoll(s, &end, 10);
	while (isspace((unsigned char)*end))
		end++;
	if (*end || end == s)
		return false;
	*out = v;
	return true;
}

bool orm_parse_float(const char *s, double *out)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	if (!*s)
		return false;
	*out = strtod(s, &end);
	while (isspace((unsigned char)*end))
		end++;
	return *end == '\0';
}

bool orm_valid_date(const char *s, bool with_time)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, with_time ? "%Y-%m-%d %H:%M:%S" : "%Y-%m-%d", &tm);
	return end && *end == '\0';
}

static char *html_escape(const char *s)
{
	size_t n = 0;
	char *out, *p;

	for (const char *q = s; *q; q++)
		n += (*q == '<' || *q == '>') ? 4 : (*q == '&') ? 5 : 1;
	out = p = malloc(n + 1);
	if (!out)
		abort();
	for (const char *q = s; *q; q++) {
		if (*q == '<')
			p = stpcpy(p, "&lt;");
		else if (*q == '>')
			p = stpcpy(p, "&gt;");
		else if (*q == '&')
			p = stpcpy(p, "&amp;");
		else
			*p++ = *q;
	}
	*p = '\0';
	return out;
}

int orm_raise_missing(struct emu *e, const char *model, const json_t *ids,
		      long uid)
{
	char *list = NULL;
	size_t i;
	json_t *id;
	size_t n = json_array_size(ids);

	list = emu_strdup("");
	json_array_foreach(ids, i, id) {
		char *next = emu_printf("%s%s%" JSON_INTEGER_FORMAT, list,
					i ? ", " : "", json_integer_value(id));

		free(list);
		list = next;
	}
	emu_raise(e, "odoo.exceptions.MissingError",
		  "Record does not exist or has been deleted.\n"
		  "(Record: %s(%s%s), User: %ld)",
		  model, list, n == 1 ? "," : "", uid);
	free(list);
	return -1;
}

/*
 * Converts a value given to create() or write() the way the field's
 * convert_to_cache() and PostgreSQL would. *out: new reference.
 */
static int value_convert(struct emu *e, const struct emu_call *c,
			 struct model *m, const struct field_def *f,
			 json_t *v, json_t **out)
{
	char *r;
	json_int_t i;
	double d;
	const char *s;

	*out = NULL;
	switch (f->type) {
	case F_CHAR:
	case F_TEXT:
	case F_HTML:
		if (!v || json_is_false(v) || json_is_null(v)) {
			*out = json_false();
			return 0;
		}
		if (json_is_string(v)) {
			s = json_string_value(v);
		} else {
			r = emu_repr(v);
			*out = json_string(json_is_true(v) ? "True" : r);
			free(r);
			return 0;
		}
		if (f->type == F_HTML && *s && s[0] != '<') {
			char *esc = html_escape(s);

			r = emu_printf("<p>%s</p>", esc);
			free(esc);
			*out = json_string(r);
			free(r);
			return 0;
		}
		*out = json_string(s);
		return 0;
	case F_INT:
		if (!v || json_is_null(v) || json_is_false(v)) {
			*out = json_integer(0);
		} else if (json_is_true(v)) {
			*out = json_integer(1);
		} else if (json_is_integer(v)) {
			*out = json_incref(v);
		} else if (json_is_real(v)) {
			*out = json_integer((json_int_t)json_real_value(v));
		} else if (json_is_string(v)) {
			if (!orm_parse_int(json_string_value(v), &i)) {
				r = emu_repr(v);
				emu_raise(e, "builtins.ValueError",
					  "invalid literal for int() with base 10: %s", r);
				free(r);
				return -1;
			}
			*out = json_integer(i);
		} else {
			return emu_raise(e, "builtins.TypeError",
					 "int() argument must be a string, a bytes-like object or a real number, not '%s'",
					 emu_pytype(v));
		}
		return 0;
	case F_FLOAT:
		if (!v || json_is_null(v) || json_is_false(v)) {
			*out = json_real(0.0);
		} else if (json_is_true(v)) {
			*out = json_real(1.0);
		} else if (json_is_number(v)) {
			*out = json_real(json_number_value(v));
		} else if (json_is_string(v)) {
			if (!orm_parse_float(json_string_value(v), &d)) {
				r = emu_repr(v);
				emu_raise(e, "builtins.ValueError",
					  "could not convert string to float: %s", r);
				free(r);
				return -1;
			}
			*out = json_real(d);
		} else {
			return emu_raise(e, "builtins.TypeError",
					 "float() argument must be a string or a real number, not '%s'",
					 emu_pytype(v));
		}
		return 0;
	case F_BOOL:
		*out = json_boolean(emu_truthy(v));
		return 0;
	case F_DATE:
	case F_DATETIME:
		if (!v || json_is_null(v) || json_is_false(v)) {
			*out = json_false();
			return 0;
		}
		s = json_string_value(v);
		if (s && f->type == F_DATETIME && orm_valid_date(s, false)) {
			r = emu_printf("%s 00:00:00", s);
			*out = json_string(r);
			free(r);
			return 0;
		}
		if (!s || !orm_valid_date(s, f->type == F_DATETIME)) {
			r = emu_repr(v);
			emu_raise(e, "builtins.ValueError",
				  "time data %s does not match format '%s'", r,
				  f->type == F_DATETIME ? "%Y-%m-%d %H:%M:%S" : "%Y-%m-%d");
			free(r);
			return -1;
		}
		*out = json_string(s);
		return 0;
	case F_SEL: {
		const char *const *sel = orm_field_selection(e, f);

		if (!v || json_is_null(v) || json_is_false(v)) {
			*out = json_false();
			return 0;
		}
		for (int k = 0; json_is_string(v) && sel[k]; k += 2) {
			if (strcmp(sel[k], json_string_value(v)) == 0) {
				*out = json_incref(v);
				return 0;
			}
		}
		r = emu_repr(v);
		emu_raise(e, "builtins.ValueError", "Wrong value for %s.%s: %s",
			  m->def->name, f->name, r);
		free(r);
		return -1;
	}
	case F_M2O: {
		struct model *cm = orm_model_find(e, f->relation);
		json_t *ids;

		if (!v || json_is_null(v) || json_is_false(v) ||
		    (json_is_integer(v) && json_integer_value(v) == 0)) {
			*out = json_false();
			return 0;
		}
		if (json_is_true(v))
			i = 1;
		else if (json_is_integer(v))
			i = json_integer_value(v);
		else if (json_is_real(v))
			i = (json_int_t)json_real_value(v);
		else if (json_is_string(v) && orm_parse_int(json_string_value(v), &i))
			;
		else if (json_is_string(v))
			/* the cursor sends it as it is and PostgreSQL refuses it */
			return emu_raise(e, "psycopg2.errors.InvalidTextRepresentation",
					 "invalid input syntax for type integer: \"%s\"\n"
					 "LINE 1: INSERT INTO \"%s\" ...\n",
					 json_string_value(v), m->def->name);
		else {
			r = emu_repr(v);
			emu_raise(e, "builtins.ValueError",
				  "Wrong value for %s.%s: %s", m->def->name,
				  f->name, r);
			free(r);
			return -1;
		}
		if (!orm_rec_get(cm, i)) {
			ids = json_pack("[I]", i);
			orm_raise_missing(e, cm->def->name, ids, c->uid);
			json_decref(ids);
			return -1;
		}
		*out = json_integer(i);
		return 0;
	}
	case F_O2M:
		*out = json_incref(v);
		return 0;
	}
	return 0;
}

bool orm_values_equal(const json_t *a, const json_t *b)
{
	if (json_is_number(a) && json_is_number(b))
		return json_number_value(a) == json_number_value(b);
	if ((json_is_false(a) || json_is_null(a)) &&
	    (json_is_false(b) || json_is_null(b)))
		return true;
	if (json_is_boolean(a) && json_is_number(b))
		return (json_is_true(a) ? 1 : 0) == json_number_value(b);
	if (json_is_number(a) && json_is_string(b)) {
		json_int_t i;

		return orm_parse_int(json_string_value(b), &i) &&
		       (double)i == json_number_value(a);
	}
	return json_equal((json_t *)a, (json_t *)b);
}

static json_t *ids_missing(struct model *m, json_t *ids)
{
	json_t *missing = json_array(), *x;
	size_t i;

	json_array_foreach(ids, i, x)
		if (!orm_rec_get(m, json_integer_value(x)))
			json_array_append(missing, x);
	return missing;
}

/* ---- access ------------------------------------------------------------ */

int orm_check_access(struct emu *e, const struct emu_call *c,
		     struct model *m, unsigned op)
{
	unsigned acl = orm_is_admin(e, c->uid) ? m->def->admin_acl : m->def->user_acl;
	const char *what = op == ACL_READ ? "access" : op == ACL_WRITE ? "modify"
			 : op == ACL_CREATE ? "create" : "delete";

	if (op == ACL_CREATE && !orm_is_admin(e, c->uid) &&
	    strcmp(e->faults.no_create, m->def->name) == 0)
		acl &= ~ACL_CREATE; /* the no_create fault: a user without that right */
	if (acl & op)
		return 0;
	return emu_raise(e, "odoo.exceptions.AccessError",
			 "You are not allowed to %s '%s' (%s) records.\n\n"
			 "This operation is allowed for the following groups:\n"
			 "\t- %s\n\n"
			 "Contact your administrator to request access if necessary.",
			 what, m->def->desc, m->def->name, m->def->group);
}

/* ---- create, write, unlink ---------------------------------------------- */

static int raise_mandatory(struct emu *e, struct model *m,
			   const struct field_def *f)
{
	return emu_raise(e, "odoo.exceptions.ValidationError",
			 "The operation cannot be completed:\n"
			 "- Create/update: a mandatory field is not set.\n"
			 "- Delete: another model requires the record being deleted. If possible, archive it instead.\n\n"
			 "Model: %s (%s)\nField: %s (%s)\n",
			 m->def->desc, m->def->name, f->label, f->name);
}

/* The injected "validation" fault: a constraint on one value. */
static int check_rules(struct emu *e, struct model *m, json_t *vals)
{
	size_t i;
	json_t *rule;

	json_array_foreach(e->faults.validation, i, rule) {
		const char *model = json_string_value(json_object_get(rule, "model"));
		const char *field = json_string_value(json_object_get(rule, "field"));
		const char *msg = json_string_value(json_object_get(rule, "message"));
		json_t *v;

		if ((model && strcmp(model, m->def->name)) || !field)
			continue;
		v = json_object_get(vals, field);
		if (v && orm_values_equal(v, json_object_get(rule, "value")))
			return emu_raise(e, "odoo.exceptions.ValidationError", "%s",
					 msg ? msg : "Invalid value");
	}
	return 0;
}

/*
 * What PostgreSQL and the Python constraints check once a row is in: NOT
 * NULL, the check and unique constraints, recursion.
 */
static int check_constraints(struct emu *e, struct model *m, json_t *rec)
{
	const char *key;
	json_t *other;

	for (const struct field_def *f = m->def->fields; f->name; f++) {
		json_t *v = json_object_get(rec, f->name);

		if ((f->flags & FF_REQUIRED) && (!v || json_is_false(v) || json_is_null(v)))
			return raise_mandatory(e, m, f);
	}
	switch (m->idx) {
	case M_PARTNER: {
		json_t *name = json_object_get(rec, "name");
		const char *type = orm_rec_str(rec, "type");
		json_int_t p = orm_rec_int(rec, "parent_id");
		int depth = 0;

		if ((!type || strcmp(type, "contact") == 0) &&
		    (!name || !json_is_string(name)))
			return emu_raise(e, "odoo.exceptions.ValidationError",
					 "The operation cannot be completed: Contacts require a name");
		while (p && depth++ < 256) {
			json_t *pr = orm_rec_get(m, p);

			if (p == orm_rec_id(rec))
				return emu_raise(e, "odoo.exceptions.ValidationError",
						 "You cannot create recursive Partner hierarchies.");
			p = pr ? orm_rec_int(pr, "parent_id") : 0;
		}
		break;
	}
	case M_USERS:
		json_object_foreach(m->recs, key, other)
			if (orm_rec_id(other) != orm_rec_id(rec) && orm_rec_str(other, "login") &&
			    orm_rec_str(rec, "login") &&
			    strcmp(orm_rec_str(other, "login"), orm_rec_str(rec, "login")) == 0)
				return emu_raise(e, "odoo.exceptions.ValidationError",
						 "The operation cannot be completed: You can not have two users with the same login!");
		break;
	case M_IMD: {
		char *k = orm_imd_key(rec);
		json_t *at = json_object_get(e->data->xmlids, k);

		free(k);
		if (at && json_integer_value(at) != orm_rec_id(rec))
			return emu_raise(e, "odoo.exceptions.ValidationError",
					 "The operation cannot be completed: You cannot have multiple records with the same external ID!");
		break;
	}
	default:
		break;
	}
	return 0;
}


/*
 * Commands 5 and 6: the records no longer linked are deleted when the link
 * is their reason to exist (a required inverse), else unlinked.
 */
static int o2m_replace(struct emu *e, const struct emu_call *c,
		       struct model *cm, const struct field_def *f,
		       json_int_t id, json_t *keep)
{
	const struct field_def *inv = orm_field_find(cm, f->inverse);
	json_t *old = o2m_ids(e, f, id), *x, *y, *one, *vals;
	size_t k, q;
	int rc = 0;

	json_array_foreach(old, k, x) {
		bool kept = false;

		json_array_foreach(keep, q, y)
			if (json_integer_value(y) == json_integer_value(x))
				kept = true;
		if (kept)
			continue;
		one = json_pack("[O]", x);
		if (inv->flags & FF_REQUIRED) {
			rc = orm_unlink(e, c, cm, one, false);
		} else {
			vals = json_pack("{s:b}", f->inverse, 0);
			rc = orm_write(e, c, cm, one, vals);
			json_decref(vals);
		}
		json_decref(one);
		if (rc < 0)
			break;
	}
	json_decref(old);
	if (rc == 0 && json_is_array(keep) && json_array_size(keep)) {
		vals = json_pack("{s:I}", f->inverse, (json_int_t)id);
		rc = orm_write(e, c, cm, keep, vals);
		json_decref(vals);
	}
	return rc;
}

/* Applies x2many commands ([0, 0, vals], [1, id, vals], [2, id], ...). */
static int apply_o2m(struct emu *e, const struct emu_call *c, struct model *m,
		     const struct field_def *f, json_int_t id, json_t *cmds)
{
	struct model *cm = orm_model_find(e, f->relation);
	size_t i;
	json_t *cmd;
	char *r;

	if (!json_is_array(cmds))
		goto bad;
	json_array_foreach(cmds, i, cmd) {
		json_int_t op = json_integer_value(json_array_get(cmd, 0));
		json_t *arg1 = json_array_get(cmd, 1), *arg2 = json_array_get(cmd, 2);
		json_t *one, *vals;
		int rc = 0;

		if (!json_is_array(cmd) || !json_is_integer(json_array_get(cmd, 0)))
			goto bad;
		switch (op) {
		case 0:
			vals = json_is_object(arg2) ? json_deep_copy(arg2) : json_object();
			json_object_set_new(vals, f->inverse, json_integer(id));
			rc = orm_create(e, c, cm, vals, NULL);
			json_decref(vals);
			break;
		case 1:
			one = json_pack("[O]", arg1);
			rc = orm_write(e, c, cm, one, arg2);
			json_decref(one);
			break;
		case 2:
		case 3:
			one = json_pack("[O]", arg1);
			if (op == 2) {
				rc = orm_unlink(e, c, cm, one, false);
			} else {
				vals = json_pack("{s:b}", f->inverse, 0);
				rc = orm_write(e, c, cm, one, vals);
				json_decref(vals);
			}
			json_decref(one);
			break;
		case 4:
			one = json_pack("[O]", arg1);
			vals = json_pack("{s:I}", f->inverse, (json_int_t)id);
			rc = orm_write(e, c, cm, one, vals);
			json_decref(vals);
			json_decref(one);
			break;
		case 5:
		case 6:
			rc = o2m_replace(e, c, cm, f, id, op == 6 ? arg2 : NULL);
			break;
		default:
			goto bad;
		}
		if (rc < 0)
			return -1;
	}
	return 0;
bad:
	r = emu_repr(cmds);
	emu_raise(e, "builtins.ValueError", "Wrong value for %s.%s: %s",
		  m->def->name, f->name, r);
	free(r);
	return -1;
}

/*
 * Converts vals into *conv (typed values of stored fields) and *x2m (the
 * one2many commands, applied once the record exists).
 */
static int vals_convert(struct emu *e, const struct emu_call *c,
			struct model *m, json_t *vals, json_t **conv,
			json_t **x2m)
{
	const char *key;
	json_t *v;

	*conv = json_object();
	*x2m = json_object();
	json_object_foreach(vals, key, v) {
		const struct field_def *f = orm_field_find(m, key);
		json_t *cv;

		if (!f) {
			emu_raise(e, "builtins.ValueError",
				  "Invalid field '%s' on model '%s'", key, m->def->name);
			goto fail;
		}
		if (f->flags & FF_INVERSE) {
			/* company_type, the only one: it is is_company */
			json_object_set_new(*conv, "is_company",
					    json_boolean(json_is_string(v) &&
							 strcmp(json_string_value(v), "company") == 0));
			continue;
		}
		if (f->flags & (FF_COMPUTED | FF_AUTO))
			continue;
		if (f->type == F_O2M) {
			json_object_set(*x2m, key, v);
			continue;
		}
		if (value_convert(e, c, m, f, v, &cv) < 0)
			goto fail;
		json_object_set_new(*conv, key, cv);
	}
	return 0;
fail:
	json_decref(*conv);
	json_decref(*x2m);
	*conv = *x2m = NULL;
	return -1;
}

static void set_default(json_t *rec, const char *field, json_t *v)
{
	if (!json_object_get(rec, field))
		json_object_set_new(rec, field, v);
	else
		json_decref(v);
}

static int apply_x2m(struct emu *e, const struct emu_call *c, struct model *m,
		     json_int_t id, json_t *x2m)
{
	const char *key;
	json_t *v;

	json_object_foreach(x2m, key, v)
		if (apply_o2m(e, c, m, orm_field_find(m, key), id, v) < 0)
			return -1;
	return 0;
}

int orm_create(struct emu *e, const struct emu_call *c, struct model *m,
	       json_t *vals, json_int_t *id_out)
{
	json_t *rec = NULL, *x2m = NULL;
	char now[20], stamp[EMU_STAMP_LEN];
	json_int_t id;
	int rc = -1;

	if (!json_is_object(vals))
		return emu_raise(e, "builtins.AttributeError",
				 "'%s' object has no attribute 'get'", emu_pytype(vals));
	if (vals_convert(e, c, m, vals, &rec, &x2m) < 0)
		return -1;
	if (check_rules(e, m, rec) < 0)
		goto out;
	/* defaults, and what create() overrides do before the INSERT */
	if (orm_field_find(m, "active"))
		set_default(rec, "active", json_true());
	switch (m->idx) {
	case M_PARTNER:
		set_default(rec, "type", json_string("contact"));
		set_default(rec, "lang", json_string("en_US"));
		set_default(rec, "is_company", json_false());
		set_default(rec, "company_id", json_false());
		break;
	case M_USERS:
		set_default(rec, "company_id", json_integer(1));
		if (!json_is_integer(json_object_get(rec, "partner_id"))) {
			json_t *pv = json_object();
			json_int_t pid;

			json_object_set(pv, "name", json_object_get(rec, "name")
							    ? json_object_get(rec, "name") : json_false());
			if (json_object_get(rec, "email"))
				json_object_set(pv, "email", json_object_get(rec, "email"));
			rc = orm_create(e, c, orm_model_at(e, M_PARTNER), pv, &pid);
			json_decref(pv);
			if (rc < 0)
				goto out;
			rc = -1;
			json_object_set_new(rec, "partner_id", json_integer(pid));
		}
		break;
	case M_COMPANY:
		set_default(rec, "sequence", json_integer(10));
		if (!json_is_integer(json_object_get(rec, "partner_id")) &&
		    json_is_string(json_object_get(rec, "name"))) {
			json_t *pv = json_pack("{s:O, s:b}", "name",
					       json_object_get(rec, "name"), "is_company", 1);
			json_int_t pid;

			rc = orm_create(e, c, orm_model_at(e, M_PARTNER), pv, &pid);
			json_decref(pv);
			if (rc < 0)
				goto out;
			rc = -1;
			json_object_set_new(rec, "partner_id", json_integer(pid));
		}
		break;
	case M_PRODUCT:
		set_default(rec, "list_price", json_real(1.0));
		set_default(rec, "type", json_string("consu"));
		set_default(rec, "sale_ok", json_true());
		set_default(rec, "purchase_ok", json_true());
		break;
	case M_SO: {
		const char *name = orm_rec_str(rec, "name");

		if (!name || strcmp(name, "New") == 0) {
			char buf[32];

			snprintf(buf, sizeof(buf), "S%05" JSON_INTEGER_FORMAT,
				 e->data->so_seq++);
			json_object_set_new(rec, "name", json_string(buf));
		}
		emu_now(now);
		set_default(rec, "date_order", json_string(now));
		set_default(rec, "state", json_string("draft"));
		set_default(rec, "company_id", json_integer(1));
		set_default(rec, "user_id", json_integer(c->uid));
		break;
	}
	case M_SOL: {
		json_t *prod = orm_rec_get(orm_model_at(e, M_PRODUCT), orm_rec_int(rec, "product_id"));

		if (prod) {
			/* the description is the product's display name */
			char *dn = orm_display_name(e, orm_model_at(e, M_PRODUCT), prod);

			set_default(rec, "name", json_string(dn));
			free(dn);
			set_default(rec, "price_unit",
				    json_real(json_number_value(json_object_get(prod, "list_price"))));
		}
		set_default(rec, "product_uom_qty", json_real(1.0));
		set_default(rec, "price_unit", json_real(0.0));
		set_default(rec, "discount", json_real(0.0));
		set_default(rec, "sequence", json_integer(10));
		break;
	}
	case M_IMD:
		set_default(rec, "noupdate", json_false());
		break;
	default:
		break;
	}
	/* the INSERT: from here the id is consumed, whatever happens next */
	id = m->next_id++;
	emu_tx_stamp(e, stamp);
	json_object_set_new(rec, "id", json_integer(id));
	json_object_set_new(rec, "create_date", json_string(stamp));
	json_object_set_new(rec, "write_date", json_string(stamp));
	json_object_set_new(rec, "create_uid", json_integer(c->uid));
	json_object_set_new(rec, "write_uid", json_integer(c->uid));
	if (check_constraints(e, m, rec) < 0)
		goto out;
	orm_tx_touch(e, m, id);
	orm_store_put(e, m, json_incref(rec));
	if (apply_x2m(e, c, m, id, x2m) < 0)
		goto out;
	if (id_out)
		*id_out = id;
	rc = 0;
out:
	json_decref(rec);
	json_decref(x2m);
	return rc;
}

int orm_write(struct emu *e, const struct emu_call *c, struct model *m,
	      json_t *ids, json_t *vals)
{
	json_t *conv = NULL, *x2m = NULL, *missing, *x;
	char now[EMU_STAMP_LEN];
	size_t i;
	int rc = -1;

	if (!json_is_object(vals))
		return emu_raise(e, "builtins.AttributeError",
				 "'%s' object has no attribute 'items'", emu_pytype(vals));
	if (vals_convert(e, c, m, vals, &conv, &x2m) < 0)
		return -1;
	missing = ids_missing(m, ids);
	if (json_array_size(missing)) {
		orm_raise_missing(e, m->def->name, missing, c->uid);
		json_decref(missing);
		goto out;
	}
	json_decref(missing);
	if (check_rules(e, m, conv) < 0)
		goto out;
	if (m->idx == M_SOL && sale_line_write(e, m, ids, conv) < 0)
		goto out;
	emu_tx_stamp(e, now);
	json_array_foreach(ids, i, x) {
		json_int_t id = json_integer_value(x);
		json_t *rec = json_deep_copy(orm_rec_get(m, id));

		json_object_update(rec, conv);
		json_object_set_new(rec, "write_date", json_string(now));
		json_object_set_new(rec, "write_uid", json_integer(c->uid));
		/* checked before it is stored, so a duplicate never takes an index */
		if (check_constraints(e, m, rec) < 0) {
			json_decref(rec);
			goto out;
		}
		orm_tx_touch(e, m, id);
		orm_store_put(e, m, rec);
		if (apply_x2m(e, c, m, id, x2m) < 0)
			goto out;
	}
	rc = 0;
out:
	json_decref(conv);
	json_decref(x2m);
	return rc;
}

int orm_unlink(struct emu *e, const struct emu_call *c, struct model *m,
	       json_t *ids, bool check)
{
	json_t *missing = ids_missing(m, ids), *x;
	size_t i;

	if (json_array_size(missing)) {
		orm_raise_missing(e, m->def->name, missing, c->uid);
		json_decref(missing);
		return -1;
	}
	json_decref(missing);
	if (m->idx == M_SOL && sale_line_unlink(e, m, ids) < 0)
		return -1;
	json_array_foreach(ids, i, x) {
		json_int_t id = json_integer_value(x);
		json_t *rec = orm_rec_get(m, id);

		if (check && m->idx == M_USERS && id == 1)
			return emu_raise(e, "odoo.exceptions.UserError",
					 "You can not remove the admin user as it is used internally for resources created by Odoo (updates, module installation, ...)");
		if (check && m->idx == M_USERS && id == 2)
			return emu_raise(e, "odoo.exceptions.UserError",
					 "You cannot delete the admin user because it is utilized in various places (such as security configurations,...). Instead, archive it.");
		if (check && m->idx == M_SO && orm_rec_str(rec, "state") &&
		    strcmp(orm_rec_str(rec, "state"), "draft") &&
		    strcmp(orm_rec_str(rec, "state"), "cancel"))
			return emu_raise(e, "odoo.exceptions.UserError",
					 "You can not delete a sent quotation or a confirmed sales order. You must first cancel it.");
	}
	json_array_foreach(ids, i, x) {
		json_int_t id = json_integer_value(x);

		if (!orm_rec_get(m, id))
			continue; /* went with a cascade already */
		orm_tx_touch(e, m, id);
		store_del(e, m, id);
		/* what the foreign keys do: cascade, restrict or set null */
		for (int k = 0; k < NMODELS; k++) {
			struct model *om = orm_model_at(e, k);

			for (const struct field_def *f = om->def->fields; f->name; f++) {
				const char *key;
				json_t *r, *hit;
				size_t q;

				if (f->type != F_M2O || (f->flags & FF_AUTO) ||
				    strcmp(f->relation, m->def->name))
					continue;
				hit = json_array();
				json_object_foreach(om->recs, key, r)
					if (orm_rec_int(r, f->name) == id)
						json_array_append_new(hit, json_integer(orm_rec_id(r)));
				json_array_foreach(hit, q, r) {
					json_int_t rid = json_integer_value(r);
					json_t *one;

					if (f->flags & FF_CASCADE) {
						one = json_pack("[I]", rid);
						if (orm_unlink(e, c, om, one, false) < 0) {
							json_decref(one);
							json_decref(hit);
							return -1;
						}
						json_decref(one);
					} else if (f->flags & FF_REQUIRED) {
						json_decref(hit);
						return emu_raise(e, "odoo.exceptions.ValidationError",
								 "The operation cannot be completed: another model requires the record being deleted. If possible, archive it instead.\n\n"
								 "Model: %s (%s), Field: %s (%s)",
								 om->def->desc, om->def->name, f->label, f->name);
					} else {
						json_t *nr = json_deep_copy(orm_rec_get(om, rid));

						json_object_set_new(nr, f->name, json_false());
						orm_tx_touch(e, om, rid);
						orm_store_put(e, om, nr);
					}
				}
				json_decref(hit);
			}
		}
		/* and its external ids go with it */
		if (m->idx != M_IMD) {
			struct model *im = orm_model_at(e, M_IMD);
			json_t *gone = json_array(), *r;
			const char *key;
			size_t q;

			json_object_foreach(im->recs, key, r)
				if (orm_rec_int(r, "res_id") == id && orm_rec_str(r, "model") &&
				    strcmp(orm_rec_str(r, "model"), m->def->name) == 0)
					json_array_append_new(gone, json_integer(orm_rec_id(r)));
			json_array_foreach(gone, q, r) {
				orm_tx_touch(e, im, json_integer_value(r));
				store_del(e, im, json_integer_value(r));
			}
			json_decref(gone);
		}
	}
	return 0;
}


/* ---- the database ---------------------------------------------------- */

struct emu_db *emu_db_new(void)
{
	struct emu_db *db = calloc(1, sizeof(*db));

	if (!db)
		return NULL;
	for (int i = 0; i < NMODELS; i++) {
		db->models[i].idx = i;
		db->models[i].def = &model_defs[i];
		db->models[i].recs = json_object();
		db->models[i].next_id = 1;
	}
	db->xmlids = json_object();
	db->journal = json_array();
	db->touched = json_object();
	db->so_seq = 1;
	return db;
}

void emu_db_free(struct emu_db *db)
{
	if (!db)
		return;
	for (int i = 0; i < NMODELS; i++)
		json_decref(db->models[i].recs);
	json_decref(db->xmlids);
	json_decref(db->journal);
	json_decref(db->touched);
	free(db);
}

