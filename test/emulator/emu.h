/*
 * odoo-emulator: the parts shared by its files.
 *
 * The emulator is a test program, not part of lib/: it answers like an Odoo
 * 16-19 server (JSON-RPC, JSON-2, the web session calls the API key flow
 * needs) from records held in memory. Everything runs on one libevent loop,
 * so nothing here is thread-safe and nothing needs to be.
 *
 * Errors inside a call are Python exceptions in spirit: a function that
 * fails sets emu->err with emu_raise() and returns -1; the protocol layer
 * turns the pending error into a JSON-RPC error object or a JSON-2 status.
 */
#ifndef ODOO_EMU_H
#define ODOO_EMU_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct emu_db;

/* The protocol a call arrived by: some Odoo behaviour depends on it. */
enum emu_proto {
	EMU_JSONRPC, /* POST /jsonrpc, object.execute_kw */
	EMU_WEB,     /* POST /web/dataset/call_kw with a session cookie */
	EMU_JSON2    /* POST /json/2/<model>/<method> (version 19) */
};

/* The pending exception of the call being served. */
struct emu_error {
	char *name;        /* Python class, e.g. "odoo.exceptions.ValidationError" */
	char *message;     /* str(exception) */
	json_t *arguments; /* NULL: [message] */
	int status;        /* JSON-2 status; 0: derived from name */
};

/* Injected faults, set through the control API (README.md). */
struct emu_faults {
	bool down;           /* the Odoo listener is closed */
	int delay_ms;        /* "slow": added to every answer */
	char slow_method[128]; /* "slow" with "method": only to that model.method's, "" all */
	int http_status;     /* 0: none; else answer with it, like a proxy */
	int http_count;      /* answers left with http_status; -1: all */
	int retry_after;     /* -1: no Retry-After header */
	int serialization;   /* calls left to fail; -1: all */
	int lock;            /* calls left to fail with a lock error; -1: all */
	int access_denied;   /* calls left to be refused; -1: all */
	json_t *validation;  /* [{model?, field, value, message}], independent of the rest */
	char no_create[64];  /* "no_create": a model users other than admin may not create */
	char load_ids[8];    /* "load_ids": "short" or "false", the answer's ids damaged */
	int load_ids_count;  /* load() answers left to damage; -1: all */
};

struct emu_stats {
	long calls;          /* requests answered on the Odoo port */
	long writes;         /* committed calls that changed records */
	long records_written;/* records created, updated or deleted by them */
	long faults;         /* answers decided by an injected fault */
	long load_rows;      /* data rows received by load() calls */
	int64_t load_first_us;/* CLOCK_MONOTONIC of the first load() call, 0: none yet */
	json_t *load_context;/* the last load() call's context, or NULL */
	json_t *by_method;   /* "res.partner.load" / "common.login" -> count */
};

/*
 * The cost model (POST /control/cost): each answer on the Odoo port waits
 * until one worker would have done it: a fixed cost per call plus a cost
 * per row load() created and per row it updated, calls one after the other
 * (Odoo with workers=0 serves one at a time). Off by default. The defaults
 * come from a real Odoo 18 (captures 410-419): a load of 1 new row took
 * 28 ms, of 200 new rows 113 ms; of 1 existing row 24 ms, of 200 1055 ms.
 */
#define EMU_COST_CALL_US 25000
#define EMU_COST_CREATE_ROW_US 500
#define EMU_COST_UPDATE_ROW_US 5000
struct emu_cost {
	bool on;
	long call_us, create_row_us, update_row_us;
	long pending_us;          /* the call being answered: its rows' cost */
	int64_t busy_until_us;    /* monotonic: when the worker is free */
};

/* emu_poll.c: the clock and the held transaction (README "Polling"). */
#define EMU_STAMP_LEN 27 /* "YYYY-MM-DD HH:MM:SS.ffffff" and NUL */
struct emu_pollctl {
	int64_t clock_offset_ms;  /* added to the clock that stamps rows */
	char tx_stamp[EMU_STAMP_LEN]; /* this transaction's stamp, "" until it writes */
	bool hold_next;           /* the next call that writes is held */
	json_t *held;             /* [[model idx, id, record or null], ...] or NULL */
	json_t *last_search;      /* model -> the domain of its last search_read, or NULL */
	json_t *unstamped;        /* model -> [ids] shown without write_date, or NULL */
};

struct emu {
	int version;              /* 16..19 */
	char *db;
	char *admin_login;
	char *admin_password;
	json_t *api_keys;         /* [[login, key], ...] from the command line */
	int latency_ms;
	struct emu_cost cost;
	bool keep_alive;          /* false: Connection: close, as Odoo does */
	char cur_method[128];     /* the model.method of the request being answered, "" none */
	struct emu_faults faults;
	struct emu_stats stats;
	struct emu_pollctl poll;
	struct emu_db *data;
	json_t *sessions;         /* session id -> {"uid", "identity"} */
	struct emu_error err;
};

/* What a model method needs to know about its caller. */
struct emu_call {
	long uid;
	enum emu_proto proto;
	json_t *session;          /* EMU_WEB: the session object (borrowed), else NULL */
	json_t *context;          /* the call's context (borrowed, may be NULL) */
};

/* --- emu_util.c -------------------------------------------------------- */

/* Sets the pending error (replacing any) and returns -1. */
int emu_raise(struct emu *e, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Same, with a JSON-2 status that the name would not give. */
int emu_raise_status(struct emu *e, int status, const char *name,
		     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void emu_error_clear(struct emu *e);
/* The JSON-2 status for the pending error. */
int emu_error_status(const struct emu *e);
/* {"name", "debug", "message", "arguments", "context"}: new reference. */
json_t *emu_error_data(const struct emu *e);

/* asprintf that aborts on out of memory: the emulator is a test tool. */
char *emu_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *emu_strdup(const char *s);
/* Python's repr() of a JSON value ('x', 1, True, None, [..], {..}). */
char *emu_repr(const json_t *v);
/* Python's type name of a JSON value: str, int, float, bool, list, dict, NoneType. */
const char *emu_pytype(const json_t *v);
/* Python truthiness. */
bool emu_truthy(const json_t *v);
/* 'a', "'a' and 'b'", "'a', 'b', and 'c'": as Python lists missing arguments. */
char *emu_name_list(const char *const *names, int n);
/* A fresh 40 hex digit secret. */
void emu_random_hex(char *out, size_t nhex);
/* "YYYY-MM-DD HH:MM:SS" in UTC, now. */
void emu_now(char out[20]);
/* Converts v to an array the way Python's f(*v) would; -1: TypeError. */
int emu_py_iter(struct emu *e, const json_t *v, const char *callee,
		json_t **out);

/*
 * A Python signature, to bind positional and keyword arguments the way a
 * call would and to fail with Python's own messages.
 */
#define EMU_MAX_PARAMS 6
struct emu_sig {
	const char *params[EMU_MAX_PARAMS + 1]; /* NULL-terminated, after self */
	int required;                           /* leading params with no default */
	bool varkw;                             /* accepts **kwargs */
};
/*
 * Binds args (array) and kwargs (object, may be NULL) to out[] (borrowed,
 * NULL for an absent optional). Unknown keywords land in *extra when the
 * signature has varkw. json2: no positional arguments and inspect.bind()'s
 * messages; the error is werkzeug's UnprocessableEntity then.
 */
int emu_bind(struct emu *e, const char *qualname, const struct emu_sig *sig,
	     json_t *args, json_t *kwargs, bool json2, json_t **out);

/* --- emu_orm.c --------------------------------------------------------- */

struct emu_db *emu_db_new(void);
void emu_db_free(struct emu_db *db);
/* Forgets every record and loads the seed data again. 0 or -1 (err set). */
int emu_db_seed(struct emu *e);

/* uid of an active user whose password or API key is secret; 0: none. */
long emu_login(struct emu *e, const char *login, const char *secret,
	       bool allow_key);
/* Checks what execute_kw checks of (uid, secret): MissingError, AccessDenied. */
int emu_check_uid(struct emu *e, long uid, const json_t *secret);
/* uid owning an API key; 0: none. */
long emu_key_uid(struct emu *e, const char *key);
/* {"name", "login", "partner_id", "partner_name", "admin"} of a user, or NULL. */
json_t *emu_user_info(struct emu *e, long uid);
bool emu_model_exists(struct emu *e, const char *model);

/*
 * Runs model.method as Odoo's call_kw would (args positional, ids first for
 * record methods; kwargs may be NULL). *result: new reference, NULL for a
 * Python None. Runs in its own transaction: on error nothing stays written.
 */
int emu_call_kw(struct emu *e, const struct emu_call *c, const char *model,
		const char *method, json_t *args, json_t *kwargs,
		json_t **result);
/* Same for JSON-2: body holds ids, context and the named arguments. */
int emu_call_json2(struct emu *e, const struct emu_call *c, const char *model,
		   const char *method, json_t *body, json_t **result);

/* All records of a model for the control API, or NULL for an unknown model. */
json_t *emu_records_dump(struct emu *e, const char *model);

/* --- emu_poll.c -------------------------------------------------------- */

/* The stamp of the current transaction, with microseconds: taken at its
 * first write, the same for every row it writes. */
void emu_tx_stamp(struct emu *e, char out[EMU_STAMP_LEN]);
/* A transaction begins (no stamp yet) / ends well (a held one goes aside). */
void emu_poll_tx_begin(struct emu *e);
void emu_poll_tx_commit(struct emu *e);
/* A stored datetime as the wire shows it (steals v, returns the result). */
json_t *emu_datetime_wire(json_t *v);
/* A datetime at full precision for comparing ("T" taken, ".000000" added);
 * anything else as it is. New reference. */
json_t *emu_datetime_full(const json_t *v);
/* /control/clock, /control/hold, /control/release, /control/unstamped:
 * true when path is one
 * of them, with *status and *doc (new) set. */
bool emu_poll_control(struct emu *e, bool post, const char *path, json_t *body,
		      int *status, json_t **doc);
/* Notes the domain of a search_read (GET /control/hold shows the last one
 * per model). */
void emu_poll_note_search(struct emu *e, const char *model, const json_t *domain);
/* Forgets the clock offset and any held rows. */
void emu_poll_reset(struct emu *e);
/* The records of rows (a search_read answer of model) that
 * POST /control/unstamped names lose their write_date: false. */
void emu_poll_unstamp(struct emu *e, const char *model, json_t *rows);

/* --- emu_rpc.c --------------------------------------------------------- */

/* One answer, built before it is sent (and maybe delayed). */
struct emu_reply {
	int status;
	const char *reason;
	const char *content_type;
	char *body;               /* owned */
	size_t len;
	json_t *headers;          /* extra headers: name -> value (owned) */
};

/*
 * Serves one request on the Odoo port. method: "GET", "POST", ...; body may
 * be NULL. The reply is filled in all cases.
 */
void emu_rpc_serve(struct emu *e, const char *method, const char *path,
		   const char *content_type, const char *authorization,
		   const char *database, const char *cookie,
		   const char *body, size_t len, struct emu_reply *out);
void emu_reply_free(struct emu_reply *r);
/* Sets a reply to a JSON document (steals doc). */
void emu_reply_json(struct emu_reply *r, int status, json_t *doc);
void emu_reply_text(struct emu_reply *r, int status, const char *ctype,
		    const char *text);

#endif
