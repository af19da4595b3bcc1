/*
 * odoo-emulator: what the sale module adds to sale.order and its lines,
 * as captures 660-699 show it on Odoo 18 with sale_management:
 *
 *  - action_lock / action_unlock return None; a locked order refuses any
 *    write of a line that sends one of its protected fields, even with the
 *    value it already has (680, 687); new lines are still accepted (682).
 *  - lines of a confirmed order cannot be removed, by a write command or
 *    by unlink (675, 676): set the quantity to 0 instead (677).
 *  - action_cancel on an order that is not a draft answers with the
 *    cancel wizard's action and changes nothing (690), unless the context
 *    says disable_cancel_warning (692).
 *  - on a draft or sent order, a line whose quantity or product is written
 *    without its price is re-priced at the product's list price (636-637,
 *    697-698); a confirmed order keeps the price (677-678).
 *  - computed fields the captures read: locked, invoice_status,
 *    partner_invoice_id, partner_shipping_id, technical_price_unit.
 *  - product.product's name_search (607-616): the internal reference
 *    exactly, the barcode, the reference then the name by the operator,
 *    then a "[reference]" inside the text.
 */
#include "emu_orm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *order_of_line(struct emu *e, const json_t *line)
{
	return orm_rec_get(orm_model_at(e, M_SO), orm_rec_int(line, "order_id"));
}

static bool state_is(const json_t *so, const char *state)
{
	const char *s = so ? orm_rec_str(so, "state") : NULL;

	return s && strcmp(s, state) == 0;
}

/* sale.order.line._get_protected_fields(), by technical name: the order
 * the error lists their labels in (ir.model.fields is ordered by name). */
static const char *const protected_fields[] = {
	"analytic_distribution", "discount", "name", "price_unit", "product_id",
	"product_uom", "product_uom_qty", "tax_id", NULL
};

int sale_line_write(struct emu *e, struct model *m, json_t *ids, json_t *conv)
{
	size_t i;
	json_t *x;

	json_array_foreach(ids, i, x) {
		json_t *line = orm_rec_get(m, json_integer_value(x));
		json_int_t oid = json_is_integer(json_object_get(conv, "order_id"))
			? json_integer_value(json_object_get(conv, "order_id"))
			: (line ? orm_rec_int(line, "order_id") : 0);
		json_t *so = orm_rec_get(orm_model_at(e, M_SO), oid);
		char *labels = NULL;

		if (!line || !so)
			continue;
		if (json_is_true(json_object_get(so, "locked"))) {
			for (int k = 0; protected_fields[k]; k++) {
				const struct field_def *f;
				char *next;

				if (!json_object_get(conv, protected_fields[k]))
					continue;
				f = orm_field_find(m, protected_fields[k]);
				next = emu_printf("%s\n%s", labels ? labels : "",
						  f ? f->label : protected_fields[k]);
				free(labels);
				labels = next;
			}
			if (labels) {
				emu_raise(e, "odoo.exceptions.UserError",
					  "It is forbidden to modify the following fields in a locked order:%s",
					  labels);
				free(labels);
				return -1;
			}
		}
		if ((state_is(so, "draft") || state_is(so, "sent")) &&
		    !json_object_get(conv, "price_unit") &&
		    (json_object_get(conv, "product_uom_qty") || json_object_get(conv, "product_id"))) {
			json_int_t pid = json_is_integer(json_object_get(conv, "product_id"))
				? json_integer_value(json_object_get(conv, "product_id"))
				: orm_rec_int(line, "product_id");
			json_t *prod = orm_rec_get(orm_model_at(e, M_PRODUCT), pid);

			/* one price for every line written: they share conv */
			if (prod)
				json_object_set_new(conv, "price_unit",
						    json_real(json_number_value(
							    json_object_get(prod, "list_price"))));
		}
	}
	return 0;
}

int sale_line_unlink(struct emu *e, struct model *m, json_t *ids)
{
	size_t i;
	json_t *x;

	json_array_foreach(ids, i, x) {
		json_t *line = orm_rec_get(m, json_integer_value(x));

		if (line && state_is(order_of_line(e, line), "sale"))
			return emu_raise(e, "odoo.exceptions.UserError",
					 "Once a sales order is confirmed, you can't remove one of its lines (we need to track if something gets invoiced or delivered).\n"
					 "                Set the quantity to 0 instead.");
	}
	return 0;
}

json_t *sale_value_get(struct emu *e, struct model *m, json_t *rec,
		       const struct field_def *f)
{
	if (m->idx == M_SO && strcmp(f->name, "locked") == 0)
		return json_boolean(json_is_true(json_object_get(rec, "locked")));
	if (m->idx == M_SO && strcmp(f->name, "invoice_status") == 0)
		return json_string(state_is(rec, "sale") ? "to invoice" : "no");
	if (m->idx == M_SO && (strcmp(f->name, "partner_invoice_id") == 0 ||
			       strcmp(f->name, "partner_shipping_id") == 0)) {
		json_t *v = json_object_get(rec, "partner_id");

		return json_is_integer(v) ? json_incref(v) : json_false();
	}
	if (m->idx == M_SOL && strcmp(f->name, "technical_price_unit") == 0)
		return json_real(json_number_value(json_object_get(rec, "price_unit")));
	(void)e;
	return NULL;
}

static int set_locked(struct emu *e, const struct emu_call *c, struct model *m,
		      json_t *ids, bool locked)
{
	size_t i;
	json_t *x;

	if (orm_check_access(e, c, m, ACL_WRITE) < 0)
		return -1;
	json_array_foreach(ids, i, x) {
		json_t *so = orm_rec_get(m, json_integer_value(x)), *nr;

		if (!so) {
			json_t *one = json_pack("[O]", x);

			orm_raise_missing(e, m->def->name, one, c->uid);
			json_decref(one);
			return -1;
		}
		nr = json_deep_copy(so);
		json_object_set_new(nr, "locked", json_boolean(locked));
		orm_tx_touch(e, m, json_integer_value(x));
		orm_store_put(e, m, nr);
	}
	return 0;
}

int sale_action_lock(struct emu *e, const struct emu_call *c, struct model *m,
		     json_t *ids, json_t **argv, json_t **result)
{
	(void)argv;
	*result = NULL; /* None */
	return set_locked(e, c, m, ids, true);
}

int sale_action_unlock(struct emu *e, const struct emu_call *c, struct model *m,
		       json_t *ids, json_t **argv, json_t **result)
{
	(void)argv;
	*result = NULL;
	return set_locked(e, c, m, ids, false);
}

int sale_action_cancel(struct emu *e, const struct emu_call *c, struct model *m,
		       json_t *ids, json_t **argv, json_t **result)
{
	json_t *ctx = c->context, *x, *vals;
	bool warn = false;
	size_t i;
	int rc;

	(void)argv;
	json_array_foreach(ids, i, x) {
		json_t *so = orm_rec_get(m, json_integer_value(x));

		if (!so) {
			json_t *one = json_pack("[O]", x);

			orm_raise_missing(e, m->def->name, one, c->uid);
			json_decref(one);
			return -1;
		}
		if (json_is_true(json_object_get(so, "locked")))
			return emu_raise(e, "odoo.exceptions.UserError",
					 "You cannot cancel a locked order. Please unlock it first if you want to cancel it.");
		if (!state_is(so, "draft"))
			warn = true;
	}
	if (warn && !(json_is_object(ctx) && emu_truthy(json_object_get(ctx, "disable_cancel_warning")))) {
		/* the wizard that asks whether to tell the customer */
		*result = json_pack("{s:s, s:s, s:s, s:i, s:s, s:{s:i, s:O, s:b, s:s, s:s}, s:s}",
				    "name", "Cancel Sales Order", "view_mode", "form",
				    "res_model", "sale.order.cancel", "view_id", 928,
				    "type", "ir.actions.act_window", "context",
				    "default_template_id", 13, "default_order_id",
				    json_array_get(ids, 0), "mark_so_as_canceled", 1,
				    "default_email_layout_xmlid",
				    "mail.mail_notification_layout_with_responsible_signature",
				    "model_description", "Sales Order", "target", "new");
		return 0;
	}
	vals = json_pack("{s:s}", "state", "cancel");
	rc = orm_write(e, c, m, ids, vals);
	json_decref(vals);
	if (rc < 0)
		return -1;
	*result = json_true();
	return 0;
}

/* The records of domain AND field op value, in the model's order, their
 * ids appended to out unless there already. */
static int product_search_into(struct emu *e, const struct emu_call *c, struct model *m,
			       json_t *domain, const char *field, const char *op,
			       const char *value, json_int_t limit, json_t *out)
{
	json_t *dom = json_is_array(domain) ? json_deep_copy(domain) : json_array();
	json_t *recs, *r;
	size_t i;

	json_array_append_new(dom, json_pack("[s, s, s]", field, op, value));
	if (orm_search(e, c, m, dom, NULL, NULL, NULL, &recs) < 0) {
		json_decref(dom);
		return -1;
	}
	json_array_foreach(recs, i, r) {
		json_int_t id = orm_rec_id(r);
		bool seen = false;
		size_t k;
		json_t *x;

		if (limit >= 0 && (json_int_t)json_array_size(out) >= limit)
			break;
		json_array_foreach(out, k, x)
			if (json_integer_value(x) == id)
				seen = true;
		if (!seen)
			json_array_append_new(out, json_integer(id));
	}
	json_decref(recs);
	json_decref(dom);
	return 0;
}

int product_name_search(struct emu *e, const struct emu_call *c, struct model *m,
			const char *name, const char *op, json_t *domain, json_int_t limit,
			json_t **result)
{
	static const char *const positive[] = {"=", "ilike", "=ilike", "like", "=like", NULL};
	json_t *ids = json_array(), *x;
	bool pos = false;
	size_t i;
	int rc = 0;

	for (int k = 0; positive[k]; k++)
		pos |= strcmp(op, positive[k]) == 0;
	if (pos) {
		rc = product_search_into(e, c, m, domain, "default_code", "=", name, limit, ids);
		if (rc == 0 && json_array_size(ids) == 0)
			rc = product_search_into(e, c, m, domain, "barcode", "=", name, limit, ids);
	}
	if (rc == 0 && json_array_size(ids) == 0) {
		rc = product_search_into(e, c, m, domain, "default_code", op, name, limit, ids);
		if (rc == 0)
			rc = product_search_into(e, c, m, domain, "name", op, name, limit, ids);
	}
	if (rc == 0 && json_array_size(ids) == 0 && pos) {
		const char *open = strchr(name, '['), *close = open ? strchr(open + 1, ']') : NULL;

		if (close) {
			char *ref = emu_printf("%.*s", (int)(close - open - 1), open + 1);

			rc = product_search_into(e, c, m, domain, "default_code", "=", ref, limit, ids);
			free(ref);
		}
	}
	if (rc < 0) {
		json_decref(ids);
		return -1;
	}
	*result = json_array();
	json_array_foreach(ids, i, x) {
		json_t *r = orm_rec_get(m, json_integer_value(x));
		char *dn = orm_display_name(e, m, r);

		json_array_append_new(*result, json_pack("[O, s]", x, dn));
		free(dn);
	}
	json_decref(ids);
	return 0;
}
