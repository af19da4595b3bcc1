/*
 * odoo-emulator: the protocols. JSON-RPC at /jsonrpc (every version), the
 * web session calls (/web/session/authenticate, /web/dataset/call_kw) the
 * API key flow needs, JSON-2 at /json/2/<model>/<method> (version 19) and
 * GET /web/version. Envelopes, statuses and the non-JSON answers follow the
 * captures in test/fixtures/odoo/captures.
 */
#include "emu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HTML_400 \
	"<!doctype html>\n<html lang=en>\n<title>400 Bad Request</title>\n" \
	"<h1>Bad Request</h1>\n<p>Request inferred type is compatible with " \
	"[&#39;http&#39;] but &#39;%s&#39; is type=&#39;json&#39;.</p>\n"
#define HTML_404 \
	"<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n" \
	"<h1>Not Found</h1>\n<p>The requested URL was not found on the " \
	"server. If you entered the URL manually please check your spelling " \
	"and try again.</p>\n"
#define HTML_405 \
	"<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n" \
	"<h1>Method Not Allowed</h1>\n<p>The method is not allowed for the " \
	"requested URL.</p>\n"
#define HTML_303 \
	"<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n" \
	"<h1>Redirecting...</h1>\n<p>You should be redirected automatically " \
	"to the target URL: <a href=\"%s\">%s</a>. If not, click the link.\n"

#define CT_JSON "application/json; charset=utf-8"
#define CT_HTML "text/html; charset=utf-8"

void emu_reply_free(struct emu_reply *r)
{
	free(r->body);
	json_decref(r->headers);
	memset(r, 0, sizeof(*r));
}

static void reply_header(struct emu_reply *r, const char *name,
			 const char *value)
{
	if (!r->headers)
		r->headers = json_object();
	json_object_set_new(r->headers, name, json_string(value));
}

void emu_reply_text(struct emu_reply *r, int status, const char *ctype,
		    const char *text)
{
	free(r->body);
	r->status = status;
	r->content_type = ctype;
	r->body = emu_strdup(text);
	r->len = strlen(text);
}

/* Odoo serialises with Python's json.dumps defaults: ", " and ": ". */
void emu_reply_json(struct emu_reply *r, int status, json_t *doc)
{
	free(r->body);
	r->status = status;
	r->content_type = CT_JSON;
	r->body = json_dumps(doc, JSON_ENCODE_ANY | JSON_ENSURE_ASCII |
				  JSON_REAL_PRECISION(15));
	r->len = r->body ? strlen(r->body) : 0;
	json_decref(doc);
}

static void count_method(struct emu *e, const char *a, const char *b)
{
	char *key = emu_printf("%s.%s", a ? a : "?", b ? b : "?");
	json_t *n = json_object_get(e->stats.by_method, key);

	json_object_set_new(e->stats.by_method, key,
			    json_integer(json_integer_value(n) + 1));
	snprintf(e->cur_method, sizeof(e->cur_method), "%s", key);
	free(key);
}

/* Takes one from a fault counter; true when the fault applies. */
static bool fault_take(struct emu *e, int *counter)
{
	if (*counter == 0)
		return false;
	if (*counter > 0)
		(*counter)--;
	e->stats.faults++;
	return true;
}

/* The concurrency faults, raised where Odoo's retry loop would give up. */
static int concurrency_faults(struct emu *e, const char *model)
{
	if (fault_take(e, &e->faults.serialization))
		return emu_raise(e, "psycopg2.errors.SerializationFailure",
				 "could not serialize access due to concurrent update\n");
	if (fault_take(e, &e->faults.lock)) {
		if (e->version >= 19)
			return emu_raise(e, "odoo.exceptions.LockError",
					 "Cannot acquire a lock on the record, it is being modified by another transaction");
		return emu_raise(e, "psycopg2.errors.LockNotAvailable",
				 "could not obtain lock on row in relation \"%s\"\n",
				 model);
	}
	return 0;
}

static json_t *version_info(struct emu *e)
{
	return json_pack("[i, i, i, s, i, s]", e->version, 0, 0, "final", 0, "");
}

static char *version_text(struct emu *e)
{
	return emu_printf("%d.0", e->version);
}

/* What opening a database that is not ours does (captures 201-203, 245). */
static int check_db(struct emu *e, const json_t *db)
{
	const char *name = json_string_value(db);
	char *r;

	if (name && strcmp(name, e->db) == 0)
		return 0;
	if (name && strcmp(name, "postgres") == 0)
		return emu_raise(e, "psycopg2.errors.InsufficientPrivilege",
				 "permission denied for schema public\n");
	r = name ? emu_strdup(name) : emu_repr(db);
	emu_raise(e, "psycopg2.OperationalError",
		  "connection to server at \"127.0.0.1\", port 55432 failed: "
		  "FATAL:  database \"%s\" does not exist\n", r);
	free(r);
	return -1;
}

/* ---- JSON-RPC ---------------------------------------------------------- */

static void reply_envelope(struct emu *e, struct emu_reply *out, json_t *id,
			   int rc, json_t *result)
{
	json_t *env = json_pack("{s:s, s:O}", "jsonrpc", "2.0", "id",
				id ? id : json_null());

	if (rc < 0) {
		json_object_set_new(env, "error",
				    json_pack("{s:i, s:s, s:o}", "code",
					      e->version >= 19 ? 0 : 200, "message",
					      "Odoo Server Error", "data",
					      emu_error_data(e)));
		emu_error_clear(e);
	} else if (result) {
		json_object_set_new(env, "result", result);
	}
	emu_reply_json(out, 200, env);
}

static void reply_session_expired(struct emu *e, struct emu_reply *out,
				  json_t *id)
{
	json_t *env;

	emu_raise(e, "odoo.http.SessionExpiredException", "Session expired");
	env = json_pack("{s:s, s:O, s:{s:i, s:s, s:o}}", "jsonrpc", "2.0", "id",
			id ? id : json_null(), "error", "code", 100, "message",
			"Odoo Session Expired", "data", emu_error_data(e));
	emu_error_clear(e);
	emu_reply_json(out, 200, env);
}

/*
 * The checks of an Odoo type='json' route: POST, a JSON content type, a
 * JSON object. NULL after filling in the 400/405 answer.
 */
static json_t *json_route_body(const char *method, const char *path,
			       const char *content_type, const char *body,
			       size_t len, struct emu_reply *out)
{
	char mime[64] = "";
	json_t *doc;
	char *html;

	if (strcmp(method, "POST") && strcmp(method, "GET")) {
		emu_reply_text(out, 405, CT_HTML, HTML_405);
		reply_header(out, "Allow", "POST");
		return NULL;
	}
	if (content_type)
		sscanf(content_type, " %63[^; ]", mime);
	if (strcmp(method, "GET") == 0 ||
	    (strcasecmp(mime, "application/json") &&
	     strcasecmp(mime, "application/json-rpc"))) {
		html = emu_printf(HTML_400, path);
		emu_reply_text(out, 400, CT_HTML, html);
		free(html);
		return NULL;
	}
	doc = body && len ? json_loadb(body, len, JSON_DECODE_ANY, NULL) : NULL;
	if (!doc) {
		emu_reply_text(out, 400, CT_HTML, "Invalid JSON data");
		return NULL;
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		emu_reply_text(out, 400, CT_HTML, "Invalid JSON-RPC data");
		return NULL;
	}
	return doc;
}

/* dict(params): what the route does with a params that is not an object. */
static int params_dict(struct emu *e, json_t *params, json_t **out)
{
	json_t *items, *it;
	size_t i;

	*out = NULL;
	if (!params || json_is_null(params)) {
		*out = json_object();
		return 0;
	}
	if (json_is_object(params)) {
		*out = json_incref(params);
		return 0;
	}
	if (!json_is_array(params) && !json_is_string(params))
		return emu_raise(e, "builtins.TypeError", "'%s' object is not iterable",
				 emu_pytype(params));
	if (emu_py_iter(e, params, "dict()", &items) < 0)
		return -1;
	*out = json_object();
	json_array_foreach(items, i, it) {
		json_t *pair = NULL;
		size_t n;

		if (json_is_string(it) || json_is_array(it)) {
			if (emu_py_iter(e, it, "dict()", &pair) < 0)
				break;
		} else {
			emu_raise(e, "builtins.TypeError",
				  "cannot convert dictionary update sequence element #%zu to a sequence",
				  i);
			break;
		}
		n = json_array_size(pair);
		if (n != 2) {
			json_decref(pair);
			emu_raise(e, "builtins.ValueError",
				  "dictionary update sequence element #%zu has length %zu; 2 is required",
				  i, n);
			break;
		}
		if (json_is_string(json_array_get(pair, 0)))
			json_object_set(*out, json_string_value(json_array_get(pair, 0)),
					json_array_get(pair, 1));
		json_decref(pair);
	}
	json_decref(items);
	if (e->err.name) {
		json_decref(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

static int common_dispatch(struct emu *e, json_t *method, json_t *args,
			   json_t **result)
{
	static const struct emu_sig login_sig = {{"db", "login", "password"}, 3, false};
	static const struct emu_sig auth_sig = {
		{"db", "login", "password", "user_agent_env"}, 4, false};
	const char *m = json_string_value(method);
	json_t *argv[EMU_MAX_PARAMS + 1], *params;
	char *callee;
	bool auth;
	long uid;
	int rc;

	if (!m || (strcmp(m, "version") && strcmp(m, "login") &&
		   strcmp(m, "authenticate"))) {
		char *r = m ? emu_strdup(m) : emu_repr(method);

		emu_raise(e, "builtins.Exception", "Method not found: %s", r);
		free(r);
		return -1;
	}
	callee = emu_printf("odoo.service.common.exp_%s()", m);
	rc = emu_py_iter(e, args, callee, &params);
	free(callee);
	if (rc < 0)
		return -1;
	if (strcmp(m, "version") == 0) {
		size_t n = json_array_size(params);
		char *v = version_text(e);

		json_decref(params);
		if (n) {
			free(v);
			return emu_raise(e, "builtins.TypeError",
					 "exp_version() takes 0 positional arguments but %zu %s given",
					 n, n == 1 ? "was" : "were");
		}
		*result = json_pack("{s:s, s:o, s:s, s:i}", "server_version", v,
				    "server_version_info", version_info(e),
				    "server_serie", v, "protocol_version", 1);
		free(v);
		return 0;
	}
	auth = strcmp(m, "authenticate") == 0;
	if (emu_bind(e, auth ? "exp_authenticate" : "exp_login",
		     auth ? &auth_sig : &login_sig, params, NULL, false, argv) < 0 ||
	    check_db(e, argv[0]) < 0) {
		json_decref(params);
		return -1;
	}
	uid = 0;
	if (!fault_take(e, &e->faults.access_denied))
		uid = emu_login(e, json_string_value(argv[1]),
				json_string_value(argv[2]), true);
	*result = uid ? json_integer(uid) : json_false();
	json_decref(params);
	return 0;
}

static int db_dispatch(struct emu *e, json_t *method, json_t *args,
		       json_t **result)
{
	const char *m = json_string_value(method);

	(void)args;
	if (m && strcmp(m, "list") == 0) {
		*result = json_pack("[s]", e->db);
		return 0;
	}
	if (m && strcmp(m, "server_version") == 0) {
		char *v = version_text(e);

		*result = json_string(v);
		free(v);
		return 0;
	}
	if (m && strcmp(m, "db_exist") == 0) {
		const char *name = json_string_value(json_array_get(args, 0));

		*result = json_boolean(name && strcmp(name, e->db) == 0);
		return 0;
	}
	return emu_raise(e, "builtins.KeyError", "Method not found: %s",
			 m ? m : "?");
}

/* int(v), as dispatch() converts the uid. */
static int py_int(struct emu *e, const json_t *v, long *out)
{
	char *r;

	if (json_is_integer(v)) {
		*out = (long)json_integer_value(v);
		return 0;
	}
	if (json_is_real(v)) {
		*out = (long)json_real_value(v);
		return 0;
	}
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return 0;
	}
	if (json_is_string(v)) {
		char *end;
		long n = strtol(json_string_value(v), &end, 10);

		if (*json_string_value(v) && *end == '\0') {
			*out = n;
			return 0;
		}
		r = emu_repr(v);
		emu_raise(e, "builtins.ValueError",
			  "invalid literal for int() with base 10: %s", r);
		free(r);
		return -1;
	}
	return emu_raise(e, "builtins.TypeError",
			 "int() argument must be a string, a bytes-like object or a real number, not '%s'",
			 emu_pytype(v));
}

/* What check_method_name() and execute_cr() refuse before call_kw runs. */
static int check_call(struct emu *e, const json_t *model, const json_t *method)
{
	const char *mo = json_string_value(model), *me = json_string_value(method);
	char *r;

	if (me && me[0] == '_') {
		if (e->version >= 19)
			return emu_raise(e, "odoo.exceptions.AccessError",
					 "Private methods (such as '%s.%s') cannot be called remotely.",
					 mo ? mo : "?", me);
		return emu_raise(e, "odoo.exceptions.AccessError",
				 "Private methods (such as %s) cannot be called remotely.",
				 me);
	}
	if (!mo || !emu_model_exists(e, mo)) {
		r = mo ? emu_strdup(mo) : emu_repr(model);
		emu_raise(e, "odoo.exceptions.UserError", "Object %s doesn't exist", r);
		free(r);
		return -1;
	}
	if (!me) {
		r = emu_repr(method);
		emu_raise(e, "builtins.TypeError",
			  "attribute name must be string, not '%s'", emu_pytype(method));
		free(r);
		return -1;
	}
	return 0;
}

static int object_dispatch(struct emu *e, json_t *method, json_t *args,
			   json_t **result)
{
	static const struct emu_sig kw_sig = {{"obj", "method", "args", "kw"}, 3, false};
	const char *m = json_string_value(method);
	json_t *params = NULL, *rest = NULL, *argv[EMU_MAX_PARAMS + 1];
	json_t *posargs = NULL, *kw = NULL;
	struct emu_call call = {.proto = EMU_JSONRPC};
	int rc = -1;

	if (emu_py_iter(e, args, "odoo.service.model.dispatch()", &params) < 0)
		return -1;
	if (json_array_size(params) < 3) {
		emu_raise(e, "builtins.IndexError", "list index out of range");
		goto out;
	}
	if (py_int(e, json_array_get(params, 1), &call.uid) < 0 ||
	    check_db(e, json_array_get(params, 0)) < 0 ||
	    emu_check_uid(e, call.uid, json_array_get(params, 2)) < 0)
		goto out;
	if (fault_take(e, &e->faults.access_denied)) {
		emu_raise(e, "odoo.exceptions.AccessDenied", "Access Denied");
		goto out;
	}
	rest = json_array();
	for (size_t i = 3; i < json_array_size(params); i++)
		json_array_append(rest, json_array_get(params, i));
	if (m && strcmp(m, "execute_kw") == 0) {
		if (json_array_size(rest) > 4) {
			emu_raise(e, "builtins.TypeError",
				  "execute_kw() takes from 5 to 6 positional arguments but %zu were given",
				  json_array_size(rest) + 2);
			goto out;
		}
		if (emu_bind(e, "execute_kw", &kw_sig, rest, NULL, false, argv) < 0)
			goto out;
		if (argv[3] && !json_is_null(argv[3]) && !json_is_object(argv[3])) {
			if (emu_truthy(argv[3])) {
				emu_raise(e, "builtins.TypeError",
					  "odoo.service.model.execute() argument after ** must be a mapping, not %s",
					  emu_pytype(argv[3]));
				goto out;
			}
		} else if (argv[3]) {
			kw = json_incref(argv[3]);
		}
		if (emu_py_iter(e, argv[2], "odoo.service.model.execute()", &posargs) < 0)
			goto out;
	} else if (m && strcmp(m, "execute") == 0) {
		static const struct emu_sig ex_sig = {{"obj", "method"}, 2, false};
		json_t *two = json_array();

		for (size_t i = 0; i < 2 && i < json_array_size(rest); i++)
			json_array_append(two, json_array_get(rest, i));
		rc = emu_bind(e, "execute", &ex_sig, two, NULL, false, argv);
		json_decref(two);
		if (rc < 0)
			goto out;
		rc = -1;
		posargs = json_array();
		for (size_t i = 2; i < json_array_size(rest); i++)
			json_array_append(posargs, json_array_get(rest, i));
	} else {
		char *r = m ? emu_strdup(m) : emu_repr(method);

		emu_raise(e, "builtins.NameError", "Method not available %s", r);
		free(r);
		goto out;
	}
	if (check_call(e, argv[0], argv[1]) < 0)
		goto out;
	count_method(e, json_string_value(argv[0]), json_string_value(argv[1]));
	if (concurrency_faults(e, json_string_value(argv[0])) < 0)
		goto out;
	rc = emu_call_kw(e, &call, json_string_value(argv[0]),
			 json_string_value(argv[1]), posargs, kw, result);
out:
	json_decref(params);
	json_decref(rest);
	json_decref(posargs);
	json_decref(kw);
	return rc;
}

static void serve_jsonrpc(struct emu *e, const char *method, const char *path,
			  const char *content_type, const char *body,
			  size_t len, struct emu_reply *out)
{
	static const struct emu_sig rpc_sig = {{"service", "method", "args"}, 3, false};
	json_t *doc, *params = NULL, *argv[EMU_MAX_PARAMS + 1], *result = NULL;
	const char *svc;
	int rc = -1;

	doc = json_route_body(method, path, content_type, body, len, out);
	if (!doc)
		return;
	if (params_dict(e, json_object_get(doc, "params"), &params) < 0 ||
	    emu_bind(e, "RPC.jsonrpc", &rpc_sig, NULL, params, false, argv) < 0)
		goto reply;
	svc = json_string_value(argv[0]);
	if (svc && strcmp(svc, "common") == 0) {
		count_method(e, "common", json_string_value(argv[1]));
		rc = common_dispatch(e, argv[1], argv[2], &result);
	} else if (svc && strcmp(svc, "db") == 0) {
		count_method(e, "db", json_string_value(argv[1]));
		rc = db_dispatch(e, argv[1], argv[2], &result);
	} else if (svc && strcmp(svc, "object") == 0) {
		rc = object_dispatch(e, argv[1], argv[2], &result);
	} else {
		char *r = svc ? emu_strdup(svc) : emu_repr(argv[0]);

		emu_raise(e, "builtins.KeyError", "%s", r);
		free(r);
	}
reply:
	reply_envelope(e, out, json_object_get(doc, "id"), rc, rc < 0 ? NULL : result);
	if (rc < 0)
		json_decref(result);
	json_decref(params);
	json_decref(doc);
}

/* ---- the web session --------------------------------------------------- */

static json_t *session_from_cookie(struct emu *e, const char *cookie,
				   const char **sid)
{
	const char *p = cookie;

	while (p && (p = strstr(p, "session_id=")) != NULL) {
		char id[128];

		if (p == cookie || p[-1] == ' ' || p[-1] == ';') {
			if (sscanf(p + 11, "%127[^; ]", id) == 1) {
				json_t *s = json_object_get(e->sessions, id);

				if (s && sid)
					*sid = json_object_iter_key(json_object_iter_at(e->sessions, id));
				return s;
			}
		}
		p += 11;
	}
	return NULL;
}

/* The session info of /web/session/authenticate, shaped as capture 310. */
static json_t *session_info(struct emu *e, long uid)
{
	json_t *u = emu_user_info(e, uid);
	bool admin = json_is_true(json_object_get(u, "admin"));
	char *v = version_text(e);
	char *ws = emu_printf("%s-2", v);
	json_t *info = json_pack(
		"{s:i, s:b, s:b, s:b, s:b, s:{s:s, s:b, s:i}, s:s, s:{s:i, s:{s:i}},"
		" s:s, s:o, s:s, s:O, s:O, s:O, s:O, s:s, s:i, s:n, s:n, s:n, s:i, s:b}",
		"uid", (int)uid, "is_system", admin, "is_admin", admin, "is_public", 0,
		"is_internal_user", 1, "user_context", "lang", "en_US", "tz", 0, "uid",
		(int)uid, "db", e->db, "user_settings", "id", 1, "user_id", "id",
		(int)uid, "server_version", v, "server_version_info", version_info(e),
		"support_url", "https://www.odoo.com/buy", "name",
		json_object_get(u, "name"), "username", json_object_get(u, "login"),
		"partner_write_date", json_object_get(u, "partner_write_date"),
		"partner_display_name", json_object_get(u, "partner_name"),
		"web.base.url", "http://127.0.0.1:8069", "active_ids_limit", 20000,
		"profile_session", "profile_collectors", "profile_params",
		"max_file_upload_size", 134217728, "home_action_id", 0);

	json_object_set_new(info, "cache_hashes",
			    json_pack("{s:s, s:s}", "translations", "emulated",
				      "load_menus", "emulated"));
	json_object_set_new(info, "currencies",
			    json_pack("{s:{s:s, s:s, s:[i, i]}}", "1", "symbol", "$",
				      "position", "before", "digits", 69, 2));
	json_object_set_new(info, "bundle_params", json_pack("{s:s}", "lang", "en_US"));
	json_object_set_new(info, "test_mode", json_false());
	json_object_set_new(info, "view_info", json_pack(
		"{s:{s:s, s:s, s:b}, s:{s:s, s:s, s:b}, s:{s:s, s:s, s:b},"
		" s:{s:s, s:s, s:b}, s:{s:s, s:s, s:b}, s:{s:s, s:s, s:b},"
		" s:{s:s, s:s, s:b}}",
		"list", "display_name", "List", "icon", "oi oi-view-list", "multi_record", 1,
		"form", "display_name", "Form", "icon", "fa fa-address-card", "multi_record", 0,
		"graph", "display_name", "Graph", "icon", "fa fa-area-chart", "multi_record", 1,
		"pivot", "display_name", "Pivot", "icon", "oi oi-view-pivot", "multi_record", 1,
		"calendar", "display_name", "Calendar", "icon", "fa fa-calendar", "multi_record", 1,
		"kanban", "display_name", "Kanban", "icon", "oi oi-view-kanban", "multi_record", 1,
		"search", "display_name", "Search", "icon", "oi oi-search", "multi_record", 1));
	json_object_set_new(info, "user_companies", json_pack(
		"{s:i, s:{s:{s:i, s:s, s:i, s:[], s:b}}, s:{}}", "current_company", 1,
		"allowed_companies", "1", "id", 1, "name", "My Company", "sequence", 0,
		"child_ids", "parent_id", 0, "disallowed_ancestor_companies"));
	json_object_set_new(info, "show_effect", json_true());
	json_object_set_new(info, "display_switch_company_menu", json_false());
	json_object_set_new(info, "websocket_worker_version", json_string(ws));
	json_object_set_new(info, "tour_enabled", json_true());
	json_object_set_new(info, "current_tour", json_false());
	free(ws);
	free(v);
	json_decref(u);
	return info;
}

/* partner_id sits between partner_display_name and web.base.url in 310. */
static json_t *session_info_ordered(struct emu *e, long uid)
{
	json_t *info = session_info(e, uid), *out = json_object(), *v;
	json_t *u = emu_user_info(e, uid);
	const char *key;

	json_object_foreach(info, key, v) {
		if (strcmp(key, "web.base.url") == 0)
			json_object_set(out, "partner_id", json_object_get(u, "partner_id"));
		json_object_set(out, key, v);
	}
	json_decref(u);
	json_decref(info);
	return out;
}

static void serve_authenticate(struct emu *e, const char *method,
			       const char *path, const char *content_type,
			       const char *body, size_t len,
			       struct emu_reply *out)
{
	static const struct emu_sig sig = {{"db", "login", "password", "base_location"}, 3, false};
	json_t *doc, *params = NULL, *argv[EMU_MAX_PARAMS + 1], *result = NULL;
	char sid[65], *cookie;
	long uid;
	int rc = -1;

	doc = json_route_body(method, path, content_type, body, len, out);
	if (!doc)
		return;
	count_method(e, "web", "session.authenticate");
	if (params_dict(e, json_object_get(doc, "params"), &params) < 0 ||
	    emu_bind(e, "Session.authenticate", &sig, NULL, params, false, argv) < 0)
		goto reply;
	if (!json_is_string(argv[0]) || strcmp(json_string_value(argv[0]), e->db)) {
		emu_raise(e, "odoo.exceptions.AccessError", "Database not found.");
		goto reply;
	}
	/* an interactive login: passwords only, API keys are refused */
	uid = emu_login(e, json_string_value(argv[1]), json_string_value(argv[2]),
			false);
	if (!uid) {
		emu_raise(e, "odoo.exceptions.AccessDenied", "Access Denied");
		goto reply;
	}
	emu_random_hex(sid, 64);
	json_object_set_new(e->sessions, sid,
			    json_pack("{s:I, s:i}", "uid", (json_int_t)uid,
				      "identity", 0));
	cookie = emu_printf("session_id=%s; Max-Age=604800; HttpOnly; Path=/", sid);
	result = session_info_ordered(e, uid);
	rc = 0;
	reply_envelope(e, out, json_object_get(doc, "id"), rc, result);
	reply_header(out, "Set-Cookie", cookie);
	free(cookie);
	json_decref(params);
	json_decref(doc);
	return;
reply:
	reply_envelope(e, out, json_object_get(doc, "id"), rc, NULL);
	json_decref(params);
	json_decref(doc);
}

static void serve_call_kw(struct emu *e, const char *method, const char *path,
			  const char *content_type, const char *cookie,
			  const char *body, size_t len, struct emu_reply *out)
{
	static const struct emu_sig sig = {{"model", "method", "args", "kwargs", "path"}, 4, false};
	json_t *doc, *params = NULL, *argv[EMU_MAX_PARAMS + 1], *result = NULL;
	json_t *session, *posargs = NULL;
	struct emu_call call = {.proto = EMU_WEB};
	int rc = -1;

	doc = json_route_body(method, path, content_type, body, len, out);
	if (!doc)
		return;
	session = session_from_cookie(e, cookie, NULL);
	if (!session) {
		reply_session_expired(e, out, json_object_get(doc, "id"));
		json_decref(doc);
		return;
	}
	call.uid = (long)json_integer_value(json_object_get(session, "uid"));
	call.session = session;
	if (params_dict(e, json_object_get(doc, "params"), &params) < 0 ||
	    emu_bind(e, "DataSet.call_kw", &sig, NULL, params, false, argv) < 0 ||
	    check_call(e, argv[0], argv[1]) < 0 ||
	    emu_py_iter(e, argv[2], "odoo.api.call_kw()", &posargs) < 0)
		goto reply;
	count_method(e, json_string_value(argv[0]), json_string_value(argv[1]));
	if (concurrency_faults(e, json_string_value(argv[0])) < 0)
		goto reply;
	rc = emu_call_kw(e, &call, json_string_value(argv[0]),
			 json_string_value(argv[1]), posargs,
			 json_is_object(argv[3]) ? argv[3] : NULL, &result);
reply:
	reply_envelope(e, out, json_object_get(doc, "id"), rc, rc < 0 ? NULL : result);
	json_decref(posargs);
	json_decref(params);
	json_decref(doc);
}

/* ---- JSON-2 ------------------------------------------------------------ */

static void reply_json2_error(struct emu *e, struct emu_reply *out)
{
	int status = emu_error_status(e);

	emu_reply_json(out, status, emu_error_data(e));
	emu_error_clear(e);
	if (status == 401)
		reply_header(out, "WWW-Authenticate", "Bearer");
}

static int http_error(struct emu *e, int status, const char *name,
		      const char *msg)
{
	emu_raise_status(e, status, name, "%s", msg);
	e->err.arguments = json_pack("[s, i]", msg, status);
	return -1;
}

/* Odoo 18 has no JSON-2: its router sends /json/2 to the login page. */
static void serve_json2_redirect(const char *path, struct emu_reply *out)
{
	char loc[1024], *p = loc, *html;

	p += snprintf(loc, sizeof(loc), "/web/login?redirect=");
	for (const char *s = path; *s && p < loc + sizeof(loc) - 8; s++) {
		if (*s == '/')
			p += sprintf(p, "%%2F");
		else
			*p++ = *s;
	}
	strcpy(p, "%3F");
	html = emu_printf(HTML_303, loc, loc);
	emu_reply_text(out, 303, CT_HTML, html);
	reply_header(out, "Location", loc);
	free(html);
}

static void serve_json2(struct emu *e, const char *method, const char *path,
			const char *content_type, const char *authorization,
			const char *database, const char *body, size_t len,
			struct emu_reply *out)
{
	char model[128] = "", meth[128] = "", extra[8] = "", mime[64] = "";
	json_t *doc = NULL, *result = NULL;
	json_error_t jerr;
	struct emu_call call = {.proto = EMU_JSON2};
	const char *key = NULL;
	int n;

	if (e->version < 19) {
		serve_json2_redirect(path, out);
		return;
	}
	n = sscanf(path, "/json/2/%127[^/]/%127[^/]%7s", model, meth, extra);
	if (n != 2 || strcmp(method, "POST")) {
		http_error(e, 404, "werkzeug.exceptions.NotFound",
			   "Did you mean POST /json/2/<model>/<method>?");
		goto error;
	}
	if (authorization && strncasecmp(authorization, "bearer ", 7) == 0)
		key = authorization + 7;
	call.uid = key ? emu_key_uid(e, key) : 0;
	if (!call.uid || fault_take(e, &e->faults.access_denied)) {
		http_error(e, 401, "werkzeug.exceptions.Unauthorized", "Invalid apikey");
		goto error;
	}
	if (database && *database && strcmp(database, e->db)) {
		http_error(e, 404, "werkzeug.exceptions.NotFound",
			   "The database is not found");
		goto error;
	}
	if (content_type)
		sscanf(content_type, " %63[^; ]", mime);
	if (len && strcasecmp(mime, "application/json")) {
		http_error(e, 400, "werkzeug.exceptions.BadRequest",
			   "could not parse the body, expecting application/json");
		goto error;
	}
	doc = len ? json_loadb(body, len, JSON_DECODE_ANY, &jerr) : json_object();
	if (!doc) {
		char *msg = emu_printf("could not parse the body as json: %s", jerr.text);

		http_error(e, 400, "werkzeug.exceptions.BadRequest", msg);
		free(msg);
		goto error;
	}
	if (!json_is_object(doc)) {
		http_error(e, 400, "werkzeug.exceptions.BadRequest",
			   "could not parse the body, expecting a json object");
		goto error;
	}
	count_method(e, model, meth);
	if (emu_model_exists(e, model) && concurrency_faults(e, model) < 0)
		goto error;
	if (emu_call_json2(e, &call, model, meth, doc, &result) < 0)
		goto error;
	emu_reply_json(out, 200, result ? result : json_null());
	json_decref(doc);
	return;
error:
	json_decref(doc);
	reply_json2_error(e, out);
}

/* ---- routing ----------------------------------------------------------- */

void emu_rpc_serve(struct emu *e, const char *method, const char *path,
		   const char *content_type, const char *authorization,
		   const char *database, const char *cookie,
		   const char *body, size_t len, struct emu_reply *out)
{
	memset(out, 0, sizeof(*out));
	if (strcmp(path, "/jsonrpc") == 0) {
		serve_jsonrpc(e, method, path, content_type, body, len, out);
	} else if (strcmp(path, "/web/session/authenticate") == 0) {
		serve_authenticate(e, method, path, content_type, body, len, out);
	} else if (strncmp(path, "/web/dataset/call_kw", 20) == 0 &&
		   (path[20] == '\0' || path[20] == '/')) {
		serve_call_kw(e, method, path, content_type, cookie, body, len, out);
	} else if (strcmp(path, "/web/version") == 0) {
		char *v = version_text(e);

		emu_reply_json(out, 200, json_pack("{s:s, s:o}", "version", v,
						   "version_info", version_info(e)));
		free(v);
	} else if (strncmp(path, "/json/2", 7) == 0 &&
		   (path[7] == '\0' || path[7] == '/')) {
		serve_json2(e, method, path, content_type, authorization, database,
			    body, len, out);
	} else {
		emu_reply_text(out, 404, CT_HTML, HTML_404);
	}
}
