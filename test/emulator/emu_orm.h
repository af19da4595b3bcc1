/*
 * odoo-emulator: the records, shared by the files that keep them
 * (emu_orm.c), search and read them (emu_search.c), import them
 * (emu_load.c) and serve the model methods (emu_methods.c).
 *
 * Functions that fail set e->err (emu_raise) and return -1. json_t results
 * are new references unless said otherwise; records (json objects) handed
 * out by orm_rec_get() are borrowed and live until the next change.
 */
#ifndef ODOO_EMU_ORM_H
#define ODOO_EMU_ORM_H

#include "emu.h"

enum ftype {
	F_CHAR, F_TEXT, F_HTML, F_INT, F_FLOAT, F_BOOL, F_DATE, F_DATETIME,
	F_SEL, F_M2O, F_O2M
};

#define FF_REQUIRED 0x01 /* NOT NULL in the table */
#define FF_COMPUTED 0x02 /* not stored: read gives a computed value */
#define FF_HIDDEN   0x04 /* write-only (passwords, keys): reads give "" */
#define FF_AUTO     0x08 /* set by the ORM itself: writes are ignored */
#define FF_CASCADE  0x10 /* m2o: deleting the target deletes the record */
#define FF_INVERSE  0x20 /* computed, but writing it sets what it is computed from */

struct field_def {
	const char *name;
	enum ftype type;
	const char *label;
	const char *relation; /* m2o, o2m: the comodel */
	const char *inverse;  /* o2m: the m2o field of the comodel */
	const char *const *selection; /* value, label, ..., NULL */
	unsigned flags;
};

#define ACL_READ   0x1
#define ACL_WRITE  0x2
#define ACL_CREATE 0x4
#define ACL_UNLINK 0x8
#define ACL_ALL    0xf

struct model_def {
	const char *name;
	const char *desc;   /* _description, as AccessError names it */
	const char *cls;    /* Python class, as TypeError names it */
	const char *order;  /* _order */
	const char *group;  /* the group AccessError says would allow it */
	unsigned user_acl;  /* what an internal (non-admin) user may do */
	unsigned admin_acl;
	const struct field_def *fields;
};

enum {
	M_PARTNER, M_USERS, M_COMPANY, M_COUNTRY, M_PRODUCT, M_SO, M_SOL,
	M_IMD, M_APIKEY, M_APIKEY_DESC, M_IDCHECK, M_MODULE, NMODELS
};

struct model {
	int idx;
	const struct model_def *def;
	json_t *recs;         /* "id" -> record */
	json_int_t next_id;   /* the table's sequence */
};

struct emu_db {
	struct model models[NMODELS];
	json_t *xmlids;       /* "module.name" -> ir.model.data id */
	json_t *journal;      /* [[model, id, old record or null], ...] */
	json_t *touched;      /* "model:id" -> true, for this transaction */
	json_int_t so_seq;    /* sale.order's name sequence */
	json_int_t written;   /* records changed by the current call */
};

#define IDENTITY_CHECK_SECONDS 600

/* ---- emu_orm.c: storage, values, access, create/write/unlink ---------- */

struct model *orm_model_at(struct emu *e, int idx);
struct model *orm_model_find(struct emu *e, const char *name);
json_t *orm_rec_get(const struct model *m, json_int_t id);
json_int_t orm_rec_id(const json_t *rec);
const char *orm_rec_str(const json_t *rec, const char *field);
json_int_t orm_rec_int(const json_t *rec, const char *field);
char *orm_imd_key(const json_t *rec);
void orm_store_put(struct emu *e, struct model *m, json_t *rec);
void orm_store_remove(struct emu *e, struct model *m, json_int_t id);
void orm_tx_touch(struct emu *e, struct model *m, json_int_t id);
void orm_tx_begin(struct emu *e);
void orm_tx_rollback(struct emu *e);
const struct field_def *orm_field_find(const struct model *m, const char *name);
const char *const *orm_field_selection(struct emu *e, const struct field_def *f);
bool orm_is_admin(struct emu *e, long uid);
const char *orm_type_name(enum ftype t);
char *orm_display_name(struct emu *e, struct model *m, json_t *rec);
json_t *orm_value_get(struct emu *e, struct model *m, json_t *rec, const struct field_def *f);
json_t *orm_value_read(struct emu *e, struct model *m, json_t *rec, const struct field_def *f, bool classic);
bool orm_parse_int(const char *s, json_int_t *out);
bool orm_parse_float(const char *s, double *out);
bool orm_valid_date(const char *s, bool with_time);
int orm_raise_missing(struct emu *e, const char *model, const json_t *ids, long uid);
int orm_check_access(struct emu *e, const struct emu_call *c, struct model *m, unsigned op);
int orm_create(struct emu *e, const struct emu_call *c, struct model *m, json_t *vals, json_int_t *id_out);
int orm_write(struct emu *e, const struct emu_call *c, struct model *m, json_t *ids, json_t *vals);
int orm_unlink(struct emu *e, const struct emu_call *c, struct model *m, json_t *ids, bool check);
bool orm_values_equal(const json_t *a, const json_t *b);

/* ---- emu_search.c: domains, search, read ------------------------------ */

bool orm_is_op(const char *s);
bool orm_scalar_match(const json_t *rv, const char *op, json_t *value);
int orm_search(struct emu *e, const struct emu_call *c, struct model *m, json_t *domain, json_t *offset, json_t *limit, json_t *order, json_t **out);
json_t *orm_ids_of(json_t *recs);
json_t *orm_ids_normalize(json_t *v);
int orm_read(struct emu *e, const struct emu_call *c, struct model *m, json_t *recs, json_t *fields, bool classic, json_t **out);
json_int_t orm_opt_int(const json_t *v, json_int_t dflt);
json_t *orm_all_by_id(struct emu *e, struct model *m);

/* ---- emu_load.c: load() ----------------------------------------------- */

int orm_load(struct emu *e, const struct emu_call *c, struct model *m, json_t *fields, json_t *data, json_t **result);
json_t *orm_imd_lookup(struct emu *e, const char *xid);

/* ---- emu_sale.c: the sale module's rules ------------------------------- */

int sale_line_write(struct emu *e, struct model *m, json_t *ids, json_t *conv);
int sale_line_unlink(struct emu *e, struct model *m, json_t *ids);
json_t *sale_value_get(struct emu *e, struct model *m, json_t *rec, const struct field_def *f);
int sale_action_lock(struct emu *e, const struct emu_call *c, struct model *m, json_t *ids, json_t **argv, json_t **result);
int sale_action_unlock(struct emu *e, const struct emu_call *c, struct model *m, json_t *ids, json_t **argv, json_t **result);
int product_name_search(struct emu *e, const struct emu_call *c, struct model *m, const char *name, const char *op, json_t *domain, json_int_t limit, json_t **result);
int sale_action_cancel(struct emu *e, const struct emu_call *c, struct model *m, json_t *ids, json_t **argv, json_t **result);

#endif
