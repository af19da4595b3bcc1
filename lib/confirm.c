/* Confirming an Odoo webhook: see include/odoo_relay/confirm.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "odoo_relay/confirm.h"
#include "odoo_relay/error.h"

static json_t *
body_object(const unsigned char *body, size_t len, char *why, size_t whysz)
{
	json_error_t jerr;
	json_t *o = json_loadb((const char *)body, len, 0, &jerr);

	if (!o)
		snprintf(why, whysz, "the event's body is not JSON (line %d)", jerr.line);
	else if (!json_is_object(o)) {
		snprintf(why, whysz, "the event's body is not a JSON object");
		json_decref(o);
		o = NULL;
	}
	return o;
}

int
relay_confirm_target(const unsigned char *body, size_t len, const json_t *route_fields,
                     char **model, int64_t *id, json_t **fields, char *why, size_t whysz)
{
	json_t *o, *m, *i, *v, *f = NULL;
	const char *k;
	int rc = -RELAY_EINVAL;

	if (!(o = body_object(body, len, why, whysz)))
		return -RELAY_EINVAL;
	m = json_object_get(o, "_model");
	i = json_object_get(o, "_id");
	if (!json_is_string(m) || !*json_string_value(m)) {
		snprintf(why, whysz, "not an Odoo webhook: no \"_model\" to confirm against");
		goto out;
	}
	if (!json_is_integer(i) || json_integer_value(i) <= 0) {
		snprintf(why, whysz, "not an Odoo webhook: no record id in \"_id\" to confirm");
		goto out;
	}
	rc = ENOMEM;
	if (route_fields) {
		if (!(f = json_deep_copy(route_fields)))
			goto out;
	} else {
		if (!(f = json_array()))
			goto out;
		json_object_foreach(o, k, v) {
			if (k[0] == '_' || strcmp(k, "id") == 0)
				continue;
			if (json_array_append_new(f, json_string(k)))
				goto out;
		}
		/* nothing selected: read "id", which says whether it exists */
		if (json_array_size(f) == 0 && json_array_append_new(f, json_string("id")))
			goto out;
	}
	if (!(*model = strdup(json_string_value(m))))
		goto out;
	*id = (int64_t)json_integer_value(i);
	*fields = f;
	f = NULL;
	rc = 0;
out:
	json_decref(f);
	json_decref(o);
	return rc;
}

int
relay_confirm_apply(const unsigned char *body, size_t len, int64_t id, const json_t *result,
                    char **out, size_t *out_len, char *why, size_t whysz)
{
	json_t *o = NULL, *rec, *v;
	const char *k;
	char *text;
	int rc = -RELAY_EINVAL;

	if (!json_is_array(result)) {
		snprintf(why, whysz, "odoo's read answered something other than a list");
		return -RELAY_EINVAL;
	}
	if (json_array_size(result) == 0)
		return RELAY_CONFIRM_GONE;
	rec = json_array_get(result, 0);
	if (!json_is_object(rec) || !json_is_integer(json_object_get(rec, "id")) ||
	    json_integer_value(json_object_get(rec, "id")) != id) {
		snprintf(why, whysz, "odoo's read answered a list without the record asked for");
		return -RELAY_EINVAL;
	}
	if (!(o = body_object(body, len, why, whysz)))
		return -RELAY_EINVAL;
	rc = ENOMEM;
	json_object_foreach(rec, k, v) {
		if (strcmp(k, "id") == 0)
			continue;
		if (json_object_set(o, k, v))
			goto out;
	}
	if (!(text = json_dumps(o, JSON_COMPACT)))
		goto out;
	*out = text;
	*out_len = strlen(text);
	rc = RELAY_CONFIRM_FOUND;
out:
	json_decref(o);
	return rc;
}
