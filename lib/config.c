/*
 * odoo-relay: the configuration file (contract in include/odoo_relay/config.h,
 * schema in odoo-relay.conf(5)).
 *
 * Positions, typed getters, key and range checks and the wording of errors
 * come from the schema toolkit (schema.h), which the route compiler shares;
 * this file knows the sections: what each takes, its defaults and the rules
 * that tie its keys together. Values are looked up by (object, key), so a
 * true, false or null member is placed by its key, not by jansson's shared
 * node.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "odoo_relay/config.h"
#include "odoo_relay/error.h"
#include "odoo_relay/poll.h"
#include "odoo_relay/query_spec.h"
#include "odoo_relay/schema.h"
#include "odoo_relay/signature.h"

/* Far above any real configuration; stops a wrong path (a log, a device)
 * from being read whole into memory. */
#define CONFIG_MAX_BYTES (16u << 20)
/* Secrets are keys and tokens; anything larger is the wrong file. */
#define SECRET_MAX_BYTES 65536
#define SECRETS_MAX 16
#define SOURCE_NAME_MAX 64
#define HEADER_NAME_MAX 256
#define MS_DAY INT64_C(86400000)
#define S_YEAR INT64_C(31536000)

/* ---- validation context -------------------------------------------------- */

struct ctx {
	struct relay_config *cfg;
	struct relay_schema s;  /* positions, path and errors */
	unsigned flags;         /* RELAY_CONFIG_* */
	const char *base_dir;   /* for relative secret paths; NULL: the working directory */
};

/* strerror with a lower-case first letter, as messages go. Only errno
 * values come here (open, fstat, read, ENOMEM); not relay_strerror, which
 * names LMDB's codes too and so lives in the I/O library, not the pure one. */
static const char *
errtext(char *buf, size_t n, int e)
{
	snprintf(buf, n, "%s", strerror(e));
	if (buf[0] >= 'A' && buf[0] <= 'Z')
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}

/* A non-empty string, copied into *out (replacing what was there). */
static int
get_string(struct ctx *c, json_t *obj, const char *key, int required, char **out)
{
	const char *v = NULL;
	char *s;
	int rc;

	if ((rc = relay_schema_string(&c->s, obj, key, required, &v)) != 0 || !v)
		return rc;
	if (!(s = strdup(v)))
		return relay_schema_oom(&c->s);
	free(*out);
	*out = s;
	return 0;
}

static int
get_size(struct ctx *c, json_t *obj, const char *key, int64_t lo, int64_t hi, size_t *out)
{
	int64_t x = (int64_t)*out;
	int rc = relay_schema_int(&c->s, obj, key, lo, hi, &x);

	*out = (size_t)x;
	return rc;
}

/* ---- value checks -------------------------------------------------------- */

static int
is_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
	       || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* An HTTP field name (RFC 9110 token). */
static int
header_name_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > HEADER_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!is_tchar((unsigned char)s[i]))
			return 0;
	return 1;
}

/* An RFC 6901 pointer into the body: "" (the whole body) is not useful here. */
static const char *
pointer_problem(const char *s)
{
	if (s[0] != '/')
		return "must start with \"/\"";
	for (; *s; s++)
		if (*s == '~' && s[1] != '0' && s[1] != '1')
			return "\"~\" must be followed by 0 or 1";
	return NULL;
}

static int
port_ok(const char *s)
{
	unsigned long v = 0;
	size_t n = 0;

	for (; *s; s++, n++) {
		if (*s < '0' || *s > '9' || n >= 5)
			return 0;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	return n > 0 && v <= 65535;
}

/* A DNS name: labels of letters, digits and inner hyphens. */
static int
hostname_ok(const char *s, size_t n)
{
	size_t label = 0, i;

	if (n == 0 || n > 253)
		return 0;
	for (i = 0; i < n; i++) {
		char ch = s[i];

		if (ch == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
		      || (ch == '-' && label > 0)) || ++label > 63)
			return 0;
	}
	return label > 0 && s[n - 1] != '-';
}

/* Why "host:port" is not a listening address, or NULL when it is. */
static const char *
address_problem(const char *s)
{
	char host[256];
	const char *colon;
	unsigned char bin[16];
	size_t n;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return "expected [ipv6]:port";
		n = (size_t)(close - s - 1);
		if (n == 0 || n >= sizeof host)
			return "bad ipv6 address";
		memcpy(host, s + 1, n);
		host[n] = '\0';
		if (inet_pton(AF_INET6, host, bin) != 1)
			return "bad ipv6 address";
		return port_ok(close + 2) ? NULL : "port must be a number from 0 to 65535";
	}
	if (!(colon = strrchr(s, ':')))
		return "expected host:port";
	n = (size_t)(colon - s);
	if (memchr(s, ':', n))
		return "an ipv6 address needs brackets, as in [::1]:8080";
	if (n == 0 || n >= sizeof host)
		return "missing host (use 0.0.0.0 or [::] for all addresses)";
	memcpy(host, s, n);
	host[n] = '\0';
	if (strspn(host, "0123456789.") == n) {
		if (inet_pton(AF_INET, host, bin) != 1)
			return "bad ipv4 address";
	} else if (!hostname_ok(host, n)) {
		return "bad host name";
	}
	return port_ok(colon + 1) ? NULL : "port must be a number from 0 to 65535";
}

static int
check_address(struct ctx *c, json_t *container, const char *key, size_t index, const char *s)
{
	const char *why = address_problem(s);
	char q[96];

	if (!why)
		return 0;
	return relay_schema_error(&c->s, -RELAY_ECONFIG, container, key, index, key ? 0 : RELAY_SCHEMA_INDEX, "invalid address %s: %s", relay_schema_quote(q, sizeof q, s), why);
}

/* Why url is not an Odoo base URL, or NULL when it is. */
static const char *
url_problem(const char *url)
{
	const char *host, *s;
	size_t hlen;

	if (strncasecmp(url, "http://", 7) == 0)
		host = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		host = url + 8;
	else
		return "must start with http:// or https://";
	for (s = url; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return "must not contain spaces or control characters";
	if (strpbrk(url, "?#"))
		return "must not have a query or fragment";
	hlen = strcspn(host, "/");
	if (hlen == 0)
		return "missing host";
	if (memchr(host, '@', hlen))
		/* a password in the URL would end up in every log line naming it */
		return "must not contain credentials (use login and api_key_file)";
	return NULL;
}

static int
source_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > SOURCE_NAME_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')
		      || *s == '_' || *s == '.' || *s == '-'))
			return 0;
	return 1;
}

static int
module_name_ok(const char *s)
{
	/* Odoo's own modules: external IDs written under them would collide
	 * with, or overwrite, records that Odoo manages. */
	static const char *const core[] = {
		"base", "web", "mail", "sale", "account", "stock", "product", "contacts",
		"purchase", "crm", "website", "point_of_sale", "hr", "mrp", "project",
		"__import__", NULL,
	};
	const char *const *k;

	if (strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(s))
		return 0;
	for (k = core; *k; k++)
		if (strcmp(*k, s) == 0)
			return 0;
	return 1;
}

/* ---- secrets ------------------------------------------------------------- */

static void
secret_clear(struct relay_secret *s)
{
	if (s->data) {
		OPENSSL_cleanse(s->data, s->len);
		free(s->data);
	}
	s->data = NULL;
	s->len = 0;
}

static char *
secret_path(const struct ctx *c, const char *rel)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	char *full;

	if (rel[0] == '/')
		return strdup(rel);
	if (!dir || !*dir)
		dir = c->base_dir;
	if (!dir)
		return strdup(rel);
	if (asprintf(&full, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", rel) < 0)
		return NULL;
	return full;
}

/* What a file that is not a regular one is, for the message. */
static const char *
file_kind(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISSOCK(mode))
		return "a socket";
	if (S_ISCHR(mode) || S_ISBLK(mode))
		return "a device";
	return "an unknown kind of file";
}

/*
 * Reads the secret file named by rel (already checked to be a non-empty
 * string: member key of container, or its element index when key is NULL)
 * into *out. Errors name the file, never its contents. Returns 0, an errno,
 * or -RELAY_ECONFIG.
 */
static int
read_secret(struct ctx *c, json_t *container, const char *key, size_t index, const char *rel,
            struct relay_secret *out)
{
	unsigned where = key ? 0 : RELAY_SCHEMA_INDEX;
	char *full, e[128];
	unsigned char *buf = NULL;
	size_t len = 0, cap;
	struct stat st;
	int fd, rc = 0;

	if (c->flags & RELAY_CONFIG_NO_SECRETS) {
		out->data = NULL; /* the caller does not verify nor call anything */
		out->len = 0;
		return 0;
	}
	if (!(full = secret_path(c, rel)))
		return relay_schema_oom(&c->s);
	/* Refuse what is not a regular file before opening it: opening a FIFO
	 * waits for a writer, and would hang --check-config, the start or a
	 * running daemon's reload. O_NONBLOCK covers a file swapped in between
	 * (it changes nothing for a regular file), and fstat decides again. */
	if (stat(full, &st) == 0 && !S_ISREG(st.st_mode)) {
		rc = relay_schema_error(&c->s, -RELAY_ECONFIG, container, key, index, where, "secret file %s is not a regular file (%s)",
		          full, file_kind(st.st_mode));
		goto out;
	}
	if ((fd = open(full, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0) {
		rc = errno;
		relay_schema_error(&c->s, rc, container, key, index, where, "cannot read secret file %s: %s", full, errtext(e, sizeof e, rc));
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		rc = errno;
		relay_schema_error(&c->s, rc, container, key, index, where, "cannot read secret file %s: %s", full, errtext(e, sizeof e, rc));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = relay_schema_error(&c->s, -RELAY_ECONFIG, container, key, index, where, "secret file %s is not a regular file (%s)",
		          full, file_kind(st.st_mode));
		goto out_close;
	}
	if (st.st_size > SECRET_MAX_BYTES) {
		rc = relay_schema_error(&c->s, -RELAY_ECONFIG, container, key, index, where, "secret file %s is larger than %d bytes", full,
		          SECRET_MAX_BYTES);
		goto out_close;
	}
	/* one byte more than the size, to notice a file that grew meanwhile */
	cap = (size_t)st.st_size + 1;
	if (!(buf = malloc(cap))) {
		rc = relay_schema_oom(&c->s);
		goto out_close;
	}
	for (;;) {
		ssize_t r = read(fd, buf + len, cap - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = errno;
			relay_schema_error(&c->s, rc, container, key, index, where, "cannot read secret file %s: %s", full, errtext(e, sizeof e, rc));
			goto out_wipe;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len == cap) {
			rc = relay_schema_error(&c->s, -RELAY_ECONFIG, container, key, index, where, "secret file %s changed while it was read", full);
			goto out_wipe;
		}
	}
	/* editors end files with a newline; it is not part of the secret */
	if (len > 0 && buf[len - 1] == '\n') {
		len--;
		if (len > 0 && buf[len - 1] == '\r')
			len--;
	}
	if (len == 0) {
		rc = relay_schema_error(&c->s, -RELAY_ECONFIG, container, key, index, where, "secret file %s is empty", full);
		goto out_wipe;
	}
	secret_clear(out);
	out->data = buf;
	out->len = len;
	buf = NULL;
out_wipe:
	if (buf) {
		OPENSSL_cleanse(buf, cap);
		free(buf);
	}
out_close:
	close(fd);
out:
	free(full);
	return rc;
}

/* A member that must be a non-empty string naming a secret file. */
static int
secret_member(struct ctx *c, json_t *obj, const char *key, struct relay_secret *out)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_string(v))
		return relay_schema_fail_type(&c->s, obj, key, "a string");
	if (json_string_length(v) == 0)
		return relay_schema_error(&c->s, -RELAY_ECONFIG, obj, key, 0, 0, "must not be empty");
	return read_secret(c, obj, key, 0, json_string_value(v), out);
}

/* ---- the sections -------------------------------------------------------- */

static const struct relay_schema_enum scheme_names[] = {
	{ "shopify", RELAY_SIG_SHOPIFY }, { "woocommerce", RELAY_SIG_WOOCOMMERCE },
	{ "github", RELAY_SIG_GITHUB }, { "stripe", RELAY_SIG_STRIPE },
	{ "hmac-sha256", RELAY_SIG_HMAC_SHA256 }, { "token", RELAY_SIG_TOKEN },
	{ "url_token", RELAY_SIG_URL_TOKEN },
	{ "none", RELAY_SIG_NONE }, { NULL, 0 },
};

static int
parse_secrets(struct ctx *c, json_t *v, struct relay_verify_conf *vc)
{
	json_t *one = json_object_get(v, "secret_file"), *many = json_object_get(v, "secret_files");
	size_t i, mark;
	int rc = 0;

	if (vc->scheme == RELAY_SIG_NONE) {
		const char *key = one ? "secret_file" : "secret_files";

		if (one || many)
			return relay_schema_error(&c->s, -RELAY_ECONFIG, v, key, 0, RELAY_SCHEMA_AT_KEY, "not allowed with scheme \"none\"");
		return 0;
	}
	if (one && many)
		return relay_schema_error(&c->s, -RELAY_ECONFIG, v, "secret_files", 0, RELAY_SCHEMA_AT_KEY,
		            "use either \"secret_file\" or \"secret_files\", not both");
	if (!one && !many)
		return relay_schema_error(&c->s, -RELAY_ECONFIG, v, NULL, 0, 0,
		            "missing required key \"secret_file\" (or \"secret_files\")");
	if (one) {
		if (!(vc->secrets = calloc(1, sizeof *vc->secrets)))
			return relay_schema_oom(&c->s);
		vc->n_secrets = 1;
		return secret_member(c, v, "secret_file", &vc->secrets[0]);
	}
	if (!json_is_array(many))
		return relay_schema_fail_type(&c->s, v, "secret_files", "an array of strings");
	if (json_array_size(many) == 0 || json_array_size(many) > SECRETS_MAX)
		return relay_schema_error(&c->s, -RELAY_ECONFIG, v, "secret_files", 0, 0,
		            "expected 1 to %d file names, got %zu", SECRETS_MAX, json_array_size(many));
	if (!(vc->secrets = calloc(json_array_size(many), sizeof *vc->secrets)))
		return relay_schema_oom(&c->s);
	vc->n_secrets = json_array_size(many);
	mark = relay_schema_push(&c->s, "secret_files");
	for (i = 0; i < vc->n_secrets && rc == 0; i++) {
		json_t *f = json_array_get(many, i);
		size_t m = relay_schema_push_index(&c->s, i);

		if (!json_is_string(f) || json_string_length(f) == 0)
			rc = relay_schema_error(&c->s, -RELAY_ECONFIG, many, NULL, i, RELAY_SCHEMA_INDEX, "expected a non-empty string, got %s",
			          json_is_string(f) ? "an empty one" : relay_schema_type_name(f));
		else
			rc = read_secret(c, many, NULL, i, json_string_value(f), &vc->secrets[i]);
		relay_schema_pop(&c->s, m);
	}
	relay_schema_pop(&c->s, mark);
	return rc;
}

static int
parse_verify(struct ctx *c, json_t *src, const char *member, struct relay_verify_conf *vc)
{
	static const char *const keys[] = {
		"scheme", "secret_file", "secret_files", "header", "encoding", "prefix", "tolerance_s", NULL,
	};
	static const struct relay_schema_enum encodings[] = {
		{ "hex", RELAY_ENC_HEX }, { "base64", RELAY_ENC_BASE64 }, { NULL, 0 },
	};
	/* which scheme each optional key belongs to */
	static const struct { const char *key; const char *schemes; } only[] = {
		{ "header", "hmac-sha256 and token" }, { "encoding", "hmac-sha256" },
		{ "prefix", "hmac-sha256" }, { "tolerance_s", "stripe" },
	};
	char q[96];
	json_t *v;
	size_t mark, i;
	int rc, scheme = RELAY_SIG_NONE, enc = RELAY_ENC_HEX;

	if ((rc = relay_schema_object(&c->s, src, member, 1, &v)) != 0)
		return rc;
	mark = relay_schema_push(&c->s, member);
	if ((rc = relay_schema_keys(&c->s, v, keys, NULL)) != 0 || (rc = relay_schema_enum(&c->s, v, "scheme", 1, scheme_names, "scheme", &scheme)) != 0)
		goto out;
	vc->scheme = (enum relay_sig_scheme)scheme;
	for (i = 0; i < sizeof only / sizeof only[0]; i++) {
		int allowed = strcmp(only[i].key, "header") == 0
		              ? scheme == RELAY_SIG_HMAC_SHA256 || scheme == RELAY_SIG_TOKEN
		              : strcmp(only[i].key, "tolerance_s") == 0 ? scheme == RELAY_SIG_STRIPE
		              : scheme == RELAY_SIG_HMAC_SHA256;

		if (!allowed && json_object_get(v, only[i].key)) {
			rc = relay_schema_error(&c->s, -RELAY_ECONFIG, v, only[i].key, 0, RELAY_SCHEMA_AT_KEY,
			          "allowed only with scheme %s, not %s", only[i].schemes,
			          relay_schema_quote(q, sizeof q, json_string_value(json_object_get(v, "scheme"))));
			goto out;
		}
	}
	if ((rc = get_string(c, v, "header", scheme == RELAY_SIG_HMAC_SHA256, &vc->header)) != 0)
		goto out;
	if (vc->header && !header_name_ok(vc->header)) {
		rc = relay_schema_error(&c->s, -RELAY_ECONFIG, v, "header", 0, 0, "invalid header name %s",
		          relay_schema_quote(q, sizeof q, vc->header));
		goto out;
	}
	if (scheme == RELAY_SIG_TOKEN && !vc->header && !(vc->header = strdup("Authorization"))) {
		rc = relay_schema_oom(&c->s);
		goto out;
	}
	if ((rc = relay_schema_enum(&c->s, v, "encoding", 0, encodings, "encoding", &enc)) != 0
	    || (rc = get_string(c, v, "prefix", 0, &vc->prefix)) != 0
	    || (rc = relay_schema_int(&c->s, v, "tolerance_s", 1, 86400, &vc->tolerance_s)) != 0)
		goto out;
	vc->encoding = (enum relay_sig_encoding)enc;
	/* last: the structure is checked before any file is opened */
	rc = parse_secrets(c, v, vc);
out:
	relay_schema_pop(&c->s, mark);
	return rc;
}

static int
parse_ref(struct ctx *c, json_t *src, const char *key, int required, struct relay_ref *ref)
{
	static const char *const keys[] = { "header", "pointer", NULL };
	const char *why;
	char q[96];
	json_t *r, *h, *p;
	size_t mark;
	int rc;

	if ((rc = relay_schema_object(&c->s, src, key, required, &r)) != 0 || !r)
		return rc;
	mark = relay_schema_push(&c->s, key);
	if ((rc = relay_schema_keys(&c->s, r, keys, NULL)) != 0)
		goto out;
	h = json_object_get(r, "header");
	p = json_object_get(r, "pointer");
	if (h && p) {
		rc = relay_schema_error(&c->s, -RELAY_ECONFIG, r, "pointer", 0, RELAY_SCHEMA_AT_KEY,
		          "use either \"header\" or \"pointer\", not both");
	} else if (!h && !p) {
		rc = relay_schema_error(&c->s, -RELAY_ECONFIG, r, NULL, 0, 0, "missing required key \"header\" or \"pointer\"");
	} else if (h) {
		ref->kind = RELAY_REF_HEADER;
		if ((rc = get_string(c, r, "header", 1, &ref->name)) == 0 && !header_name_ok(ref->name))
			rc = relay_schema_error(&c->s, -RELAY_ECONFIG, r, "header", 0, 0, "invalid header name %s",
			          relay_schema_quote(q, sizeof q, ref->name));
	} else {
		ref->kind = RELAY_REF_POINTER;
		if ((rc = get_string(c, r, "pointer", 1, &ref->name)) == 0 && (why = pointer_problem(ref->name)))
			rc = relay_schema_error(&c->s, -RELAY_ECONFIG, r, "pointer", 0, 0, "invalid json pointer %s: %s",
			          relay_schema_quote(q, sizeof q, ref->name), why);
	}
out:
	relay_schema_pop(&c->s, mark);
	return rc;
}

static int
parse_keep_headers(struct ctx *c, json_t *src, struct relay_source_conf *s)
{
	json_t *a = json_object_get(src, "keep_headers");
	char q[96];
	size_t i, mark;
	int rc = 0;

	if (!a)
		return 0;
	if (!json_is_array(a))
		return relay_schema_fail_type(&c->s, src, "keep_headers", "an array of header names");
	if (json_array_size(a) && !(s->keep_headers = calloc(json_array_size(a), sizeof *s->keep_headers)))
		return relay_schema_oom(&c->s);
	mark = relay_schema_push(&c->s, "keep_headers");
	for (i = 0; i < json_array_size(a) && rc == 0; i++) {
		json_t *h = json_array_get(a, i);
		size_t m = relay_schema_push_index(&c->s, i);

		if (!json_is_string(h))
			rc = relay_schema_error(&c->s, -RELAY_ECONFIG, a, NULL, i, RELAY_SCHEMA_INDEX, "expected a string, got %s", relay_schema_type_name(h));
		else if (!header_name_ok(json_string_value(h)))
			rc = relay_schema_error(&c->s, -RELAY_ECONFIG, a, NULL, i, RELAY_SCHEMA_INDEX, "invalid header name %s",
			          relay_schema_quote(q, sizeof q, json_string_value(h)));
		else if (!(s->keep_headers[i] = strdup(json_string_value(h))))
			rc = relay_schema_oom(&c->s);
		else
			s->n_keep_headers = i + 1;
		relay_schema_pop(&c->s, m);
	}
	relay_schema_pop(&c->s, mark);
	return rc;
}

#define URL_TOKEN_MIN 16

/* A url_token secret goes in a URL path as it is: at least URL_TOKEN_MIN
 * of the bytes a path segment holds without encoding. */
static int
check_url_tokens(struct ctx *c, json_t *src, const struct relay_verify_conf *vc)
{
	json_t *v = json_object_get(src, "verify");
	const char *key = json_object_get(v, "secret_file") ? "secret_file" : "secret_files";
	size_t i, j;

	for (i = 0; i < vc->n_secrets; i++) {
		const struct relay_secret *t = &vc->secrets[i];
		int ok = t->len >= URL_TOKEN_MIN || (t->len == 0 && (c->flags & RELAY_CONFIG_NO_SECRETS));

		for (j = 0; ok && j < t->len; j++) {
			unsigned char ch = t->data[j];

			ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			     (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == '~';
		}
		if (!ok)
			return relay_schema_error(&c->s, -RELAY_ECONFIG, v, key, 0, 0,
			                          "a url_token must be at least %d of A-Z a-z 0-9 - _ . ~ "
			                          "(it goes in the URL as it is)", URL_TOKEN_MIN);
	}
	return 0;
}

/* The rules of a source of kind odoo: its dedup key and lane are fixed. */
static int
parse_odoo_source(struct ctx *c, json_t *src, struct relay_source_conf *s)
{
	static const char *const fixed[] = { "dedup", "lane", NULL };
	size_t i;

	for (i = 0; fixed[i]; i++)
		if (json_object_get(src, fixed[i]))
			return relay_schema_error(&c->s, -RELAY_ECONFIG, src, fixed[i], 0, RELAY_SCHEMA_AT_KEY,
			                          "not allowed for kind odoo: %s", i == 0
			                          ? "the dedup key is a digest of the body"
			                          : "the lane is the record, \"<_model>/<_id>\"");
	if (s->verify.scheme != RELAY_SIG_URL_TOKEN)
		return relay_schema_fail(&c->s, json_object_get(src, "verify"), "scheme",
		                         "a source of kind odoo takes scheme \"url_token\" (Odoo sends "
		                         "no signature, only the URL it was given)");
	if (s->topic.kind == RELAY_REF_NONE) {
		s->topic.kind = RELAY_REF_POINTER;
		if (!(s->topic.name = strdup("/_model")))
			return relay_schema_oom(&c->s);
	}
	return 0;
}

/* The sender's own limit on how long it waits for our answer, where it
 * documents one (Shopify: 5 s; GitHub: 10 s; Odoo's webhook action: 1 s),
 * else 10 s; and whether history keeps the body. */
static int
parse_source_history(struct ctx *c, json_t *src, struct relay_source_conf *s)
{
	int retain = 1, rc;

	if (s->kind == RELAY_SOURCE_ODOO)
		s->deadline_ms = 1000;
	else if (s->verify.scheme == RELAY_SIG_SHOPIFY)
		s->deadline_ms = 5000;
	else
		s->deadline_ms = 10000;
	if ((rc = relay_schema_bool(&c->s, src, "retain_body", &retain)) != 0
	    || (rc = relay_schema_int(&c->s, src, "deadline_ms", 100, 600000, &s->deadline_ms)) != 0)
		return rc;
	s->retain_body = retain != 0;
	return 0;
}

static int
parse_source(struct ctx *c, json_t *sources, const char *name, json_t *src, struct relay_source_conf *s)
{
	static const char *const keys[] = {
		"verify", "dedup", "dedup_window_s", "topic", "lane", "keep_headers",
		"require_json", "unrouted", "kind", "retain_body", "deadline_ms", NULL,
	};
	static const struct relay_schema_enum kinds[] = {
		{ "webhook", RELAY_SOURCE_WEBHOOK }, { "odoo", RELAY_SOURCE_ODOO },
		{ "odoo-poll", RELAY_SOURCE_ODOO_POLL }, { NULL, 0 },
	};
	int kind = RELAY_SOURCE_WEBHOOK;
	static const struct relay_schema_enum unrouted[] = {
		{ "dead", RELAY_UNROUTED_DEAD }, { "drop", RELAY_UNROUTED_DROP }, { NULL, 0 },
	};
	size_t mark;
	char q[96];
	int rc, require_json = -1, policy = RELAY_UNROUTED_DEAD;

	if (!source_name_ok(name))
		return relay_schema_error(&c->s, -RELAY_ECONFIG, sources, name, 0,
		                          RELAY_SCHEMA_AT_KEY | RELAY_SCHEMA_UNNAMED,
		            "invalid source name %s (expected 1 to %d of A-Z a-z 0-9 _ . -, not . or ..)",
		            relay_schema_quote(q, sizeof q, name), SOURCE_NAME_MAX);
	if (!(s->name = strdup(name)))
		return relay_schema_oom(&c->s);
	relay_schema_where_member(c->cfg->doc, sources, name, 1, &s->line, &s->column);
	if (!json_is_object(src))
		return relay_schema_fail_type(&c->s, sources, name, "an object");
	s->dedup_window_s = 259200;
	s->verify.tolerance_s = 300;
	mark = relay_schema_push(&c->s, name);
	if (json_is_string(json_object_get(src, "kind")) &&
	    strcmp(json_string_value(json_object_get(src, "kind")), "odoo-poll") == 0) {
		/* a poller reads Odoo: none of the keys of a source that is posted to */
		s->kind = RELAY_SOURCE_ODOO_POLL;
		if ((rc = relay_poll_conf_parse(&c->s, c->cfg->doc, src, &s->poll)) == 0)
			rc = relay_schema_enum(&c->s, src, "unrouted", 0, unrouted, "policy", &policy);
		s->unrouted = (enum relay_unrouted)policy;
		goto out;
	}
	if ((rc = relay_schema_keys(&c->s, src, keys, NULL)) != 0
	    || (rc = relay_schema_enum(&c->s, src, "kind", 0, kinds, "kind", &kind)) != 0)
		goto out;
	s->kind = (enum relay_source_kind)kind;
	if (s->kind == RELAY_SOURCE_ODOO)
		s->dedup_window_s = 600; /* Odoo replays a request within seconds */
	if ((rc = parse_verify(c, src, "verify", &s->verify)) != 0
	    || (s->verify.scheme == RELAY_SIG_URL_TOKEN
	        && (rc = check_url_tokens(c, src, &s->verify)) != 0)
	    || (rc = parse_ref(c, src, "dedup", s->kind != RELAY_SOURCE_ODOO, &s->dedup)) != 0
	    || (rc = relay_schema_int(&c->s, src, "dedup_window_s", 1, S_YEAR, &s->dedup_window_s)) != 0
	    || (rc = parse_ref(c, src, "topic", 0, &s->topic)) != 0
	    || (rc = parse_ref(c, src, "lane", 0, &s->lane)) != 0
	    || (rc = parse_keep_headers(c, src, s)) != 0
	    || (rc = relay_schema_bool(&c->s, src, "require_json", &require_json)) != 0
	    || (rc = relay_schema_enum(&c->s, src, "unrouted", 0, unrouted, "policy", &policy)) != 0)
		goto out;
	if ((rc = parse_source_history(c, src, s)) != 0)
		goto out;
	if (s->kind == RELAY_SOURCE_ODOO && (rc = parse_odoo_source(c, src, s)) != 0)
		goto out;
	if (require_json < 0)
		/* a pointer can only be followed into a JSON body */
		require_json = s->dedup.kind == RELAY_REF_POINTER || s->topic.kind == RELAY_REF_POINTER
		               || s->lane.kind == RELAY_REF_POINTER || s->kind == RELAY_SOURCE_ODOO;
	s->require_json = require_json;
	s->unrouted = (enum relay_unrouted)policy;
out:
	relay_schema_pop(&c->s, mark);
	return rc;
}

static int
parse_sources(struct ctx *c, json_t *root)
{
	struct relay_config *cfg = c->cfg;
	const char *name;
	json_t *sources, *src;
	size_t mark;
	int rc = 0;

	if ((rc = relay_schema_object(&c->s, root, "sources", 1, &sources)) != 0)
		return rc;
	if (json_object_size(sources) == 0)
		return relay_schema_error(&c->s, -RELAY_ECONFIG, root, "sources", 0, 0, "expected at least one source");
	if (!(cfg->sources = calloc(json_object_size(sources), sizeof *cfg->sources)))
		return relay_schema_oom(&c->s);
	mark = relay_schema_push(&c->s, "sources");
	json_object_foreach(sources, name, src) {
		/* counted before it is filled, so that a failure frees it */
		struct relay_source_conf *s = &cfg->sources[cfg->n_sources++];

		if ((rc = parse_source(c, sources, name, src, s)) != 0)
			break;
	}
	relay_schema_pop(&c->s, mark);
	return rc;
}

static int
parse_listen(struct ctx *c, json_t *root)
{
	struct relay_config *cfg = c->cfg;
	json_t *l = json_object_get(root, "listen");
	size_t n, i, mark;
	int rc = 0;

	if (!l)
		return 0; /* socket activation only: the daemon checks it has sockets */
	if (json_is_string(l)) {
		if ((rc = check_address(c, root, "listen", 0, json_string_value(l))) != 0)
			return rc;
		if (!(cfg->listen = calloc(1, sizeof *cfg->listen)) || !(cfg->listen[0] = strdup(json_string_value(l))))
			return relay_schema_oom(&c->s);
		cfg->n_listen = 1;
		return 0;
	}
	if (!json_is_array(l))
		return relay_schema_fail_type(&c->s, root, "listen", "a string or an array of strings");
	if ((n = json_array_size(l)) == 0)
		return relay_schema_error(&c->s, -RELAY_ECONFIG, root, "listen", 0, 0,
		            "expected at least one address (leave \"listen\" out to use only socket activation)");
	if (!(cfg->listen = calloc(n, sizeof *cfg->listen)))
		return relay_schema_oom(&c->s);
	mark = relay_schema_push(&c->s, "listen");
	for (i = 0; i < n && rc == 0; i++) {
		json_t *a = json_array_get(l, i);
		size_t m = relay_schema_push_index(&c->s, i);

		if (!json_is_string(a))
			rc = relay_schema_error(&c->s, -RELAY_ECONFIG, l, NULL, i, RELAY_SCHEMA_INDEX, "expected a string, got %s", relay_schema_type_name(a));
		else if ((rc = check_address(c, l, NULL, i, json_string_value(a))) == 0) {
			if (!(cfg->listen[i] = strdup(json_string_value(a))))
				rc = relay_schema_oom(&c->s);
			else
				cfg->n_listen = i + 1;
		}
		relay_schema_pop(&c->s, m);
	}
	relay_schema_pop(&c->s, mark);
	return rc;
}

static int
parse_limits(struct ctx *c, json_t *root)
{
	static const char *const keys[] = {
		"max_body_bytes", "header_timeout_ms", "body_timeout_ms", "max_connections",
		"body_budget_bytes", NULL,
	};
	struct relay_limits *l = &c->cfg->limits;
	json_t *o;
	size_t mark;
	int rc;

	if ((rc = relay_schema_object(&c->s, root, "limits", 0, &o)) != 0 || !o)
		return rc;
	mark = relay_schema_push(&c->s, "limits");
	if ((rc = relay_schema_keys(&c->s, o, keys, NULL)) == 0
	    && (rc = get_size(c, o, "max_body_bytes", 1, INT64_C(1) << 30, &l->max_body_bytes)) == 0
	    && (rc = relay_schema_int(&c->s, o, "header_timeout_ms", 1, MS_DAY, &l->header_timeout_ms)) == 0
	    && (rc = relay_schema_int(&c->s, o, "body_timeout_ms", 1, MS_DAY, &l->body_timeout_ms)) == 0
	    && (rc = relay_schema_unsigned(&c->s, o, "max_connections", 1, 1000000, &l->max_connections)) == 0
	    && (rc = get_size(c, o, "body_budget_bytes", 1, INT64_C(1) << 40,
	                      &l->body_budget_bytes)) == 0) {
		/* A body the budget cannot hold would be refused with 503 forever. */
		if (!json_object_get(o, "body_budget_bytes")) {
			if (l->body_budget_bytes < l->max_body_bytes)
				l->body_budget_bytes = l->max_body_bytes;
		} else if (l->body_budget_bytes < l->max_body_bytes) {
			rc = relay_schema_fail(&c->s, o, "body_budget_bytes", "must be at least max_body_bytes (%zu)",
			          l->max_body_bytes);
		}
	}
	relay_schema_pop(&c->s, mark);
	return rc;
}

/* The keys of an Odoo destination: the top-level "odoo" object takes these. */
static const char *const odoo_keys[] = {
	"url", "database", "login", "api_key_file", "password_file", "protocol",
	"connect_timeout_ms", "timeout_ms", "max_in_flight", "rate_per_s", "module",
	"max_response_bytes", "query_max_in_flight", NULL,
};

static void
odoo_defaults(struct relay_odoo_conf *od)
{
	od->configured = 1;
	od->protocol = RELAY_PROTO_AUTO;
	od->connect_timeout_ms = 10000;
	od->timeout_ms = 180000;
	od->max_in_flight = 4;
	od->rate_per_s = 0;
	od->max_response_bytes = 16777216;
}

/* The Odoo keys of object o (its other keys are checked by the caller). */
static int
parse_odoo_keys(struct ctx *c, json_t *o, struct relay_odoo_conf *od)
{
	static const struct relay_schema_enum protocols[] = {
		{ "auto", RELAY_PROTO_AUTO }, { "jsonrpc", RELAY_PROTO_JSONRPC }, { "json2", RELAY_PROTO_JSON2 },
		{ NULL, 0 },
	};
	const char *why, *secret_key;
	char q[96];
	size_t n;
	int rc, proto = RELAY_PROTO_AUTO;

	odoo_defaults(od);
	if ((rc = get_string(c, o, "url", 1, &od->url)) != 0)
		return rc;
	if ((why = url_problem(od->url)))
		return relay_schema_fail(&c->s, o, "url", "invalid url %s: %s",
		                         relay_schema_quote(q, sizeof q, od->url), why);
	/* the clients append "/jsonrpc" or "/json/2/..." */
	for (n = strlen(od->url); n > 0 && od->url[n - 1] == '/'; n--)
		od->url[n - 1] = '\0';
	if ((rc = get_string(c, o, "database", 1, &od->database)) != 0
	    || (rc = get_string(c, o, "login", 1, &od->login)) != 0
	    || (rc = relay_schema_enum(&c->s, o, "protocol", 0, protocols, "protocol", &proto)) != 0
	    || (rc = relay_schema_int(&c->s, o, "connect_timeout_ms", 1, MS_DAY, &od->connect_timeout_ms)) != 0
	    || (rc = relay_schema_int(&c->s, o, "timeout_ms", 1, MS_DAY, &od->timeout_ms)) != 0
	    || (rc = relay_schema_unsigned(&c->s, o, "max_in_flight", 1, 256, &od->max_in_flight)) != 0
	    || (rc = get_string(c, o, "module", 0, &od->module)) != 0
	    || (rc = get_size(c, o, "max_response_bytes", 1, INT64_C(1) << 30, &od->max_response_bytes)) != 0
	    || (rc = relay_schema_number(&c->s, o, "rate_per_s", 0, 1e6, &od->rate_per_s)) != 0)
		return rc;
	od->protocol = (enum relay_odoo_protocol)proto;
	if (od->module && !module_name_ok(od->module))
		return relay_schema_fail(&c->s, o, "module",
		                         "invalid module name %s (expected a-z 0-9 _, and not one of odoo's own modules)",
		                         relay_schema_quote(q, sizeof q, od->module));
	if (!od->module && !(od->module = strdup("odoo_relay")))
		return relay_schema_oom(&c->s);
	if (json_object_get(o, "api_key_file") && json_object_get(o, "password_file"))
		return relay_schema_error(&c->s, -RELAY_ECONFIG, o, "password_file", 0, RELAY_SCHEMA_AT_KEY,
		                          "use either \"api_key_file\" or \"password_file\", not both");
	secret_key = json_object_get(o, "api_key_file") ? "api_key_file" : "password_file";
	if (!json_object_get(o, secret_key))
		return relay_schema_fail(&c->s, o, NULL,
		                         "missing required key \"api_key_file\" (or \"password_file\")");
	return secret_member(c, o, secret_key, &od->api_key);
}

/*
 * The circuit of object o ("delivery" or a destination): circuit_failures,
 * probe_base_ms, probe_cap_ms over the values in *failures, *base, *cap.
 */
static int
parse_circuit(struct ctx *c, json_t *o, unsigned *failures, int64_t *base, int64_t *cap)
{
	int rc;

	if ((rc = relay_schema_unsigned(&c->s, o, "circuit_failures", 1, 100000, failures)) != 0
	    || (rc = relay_schema_int(&c->s, o, "probe_base_ms", 1, MS_DAY, base)) != 0
	    || (rc = relay_schema_int(&c->s, o, "probe_cap_ms", 1, MS_DAY, cap)) != 0)
		return rc;
	if (*base > *cap) {
		const char *key = json_object_get(o, "probe_cap_ms") ? "probe_cap_ms" : "probe_base_ms";

		return relay_schema_error(&c->s, -RELAY_ECONFIG, o, key, 0, RELAY_SCHEMA_ACROSS,
		                          "probe_base_ms (%" PRId64 ") must not exceed probe_cap_ms (%" PRId64 ")",
		                          *base, *cap);
	}
	return 0;
}

int
relay_config_parse_backoff(struct relay_schema *s, const json_t *obj, struct relay_backoff_conf *b)
{
	static const char *const keys[] = { "base_ms", "cap_ms", "max_attempts", "max_age_s", NULL };
	struct relay_backoff_conf nb = *b;
	json_t *o;
	size_t mark;
	int rc;

	if ((rc = relay_schema_object(s, obj, "backoff", 0, &o)) != 0 || !o)
		return rc;
	mark = relay_schema_push(s, "backoff");
	if ((rc = relay_schema_keys(s, o, keys, NULL)) == 0
	    && (rc = relay_schema_int(s, o, "base_ms", 1, MS_DAY, &nb.base_ms)) == 0
	    && (rc = relay_schema_int(s, o, "cap_ms", 1, 7 * MS_DAY, &nb.cap_ms)) == 0
	    && (rc = relay_schema_unsigned(s, o, "max_attempts", 1, 100000, &nb.max_attempts)) == 0
	    && (rc = relay_schema_int(s, o, "max_age_s", 1, S_YEAR, &nb.max_age_s)) == 0
	    && nb.base_ms > nb.cap_ms) {
		const char *key = json_object_get(o, "cap_ms") ? "cap_ms" : "base_ms";

		rc = relay_schema_error(s, -RELAY_ECONFIG, o, key, 0, RELAY_SCHEMA_ACROSS,
		                        "base_ms (%" PRId64 ") must not exceed cap_ms (%" PRId64 ")",
		                        nb.base_ms, nb.cap_ms);
	}
	relay_schema_pop(s, mark);
	if (rc == 0)
		*b = nb;
	return rc;
}

/* What the queries may use of destination d (config.h). */
static int
parse_query_share(struct ctx *c, json_t *o, struct relay_destination_conf *d)
{
	d->query_max_in_flight = d->odoo.max_in_flight / 2 ? d->odoo.max_in_flight / 2 : 1;
	return relay_schema_unsigned(&c->s, o, "query_max_in_flight", 1, 256,
	                             &d->query_max_in_flight);
}

/* The top-level "odoo" object: the destination named "odoo", first. */
static int
parse_odoo(struct ctx *c, json_t *root)
{
	struct relay_destination_conf *d;
	json_t *o;
	size_t mark;
	int rc;

	if ((rc = relay_schema_object(&c->s, root, "odoo", 0, &o)) != 0 || !o)
		return rc;
	/* counted before it is filled, so that a failure frees it */
	d = &c->cfg->destinations[c->cfg->n_destinations++];
	d->kind = RELAY_DEST_ODOO;
	relay_schema_where_member(c->cfg->doc, root, "odoo", 1, &d->line, &d->column);
	if (!(d->name = strdup("odoo")))
		return relay_schema_oom(&c->s);
	mark = relay_schema_push(&c->s, "odoo");
	if ((rc = relay_schema_keys(&c->s, o, odoo_keys, NULL)) == 0
	    && (rc = parse_odoo_keys(c, o, &d->odoo)) == 0)
		rc = parse_query_share(c, o, d);
	relay_schema_pop(&c->s, mark);
	return rc;
}

/* ---- HTTP destinations ---- */

/* The keys a destination of kind http takes besides the common ones. */
static const char *const http_keys[] = {
	"url", "method", "headers", "connect_timeout_ms", "timeout_ms", "max_in_flight",
	"rate_per_s", "max_response_bytes", "tls_verify", "ca_file", "cert_file", "key_file",
	"allow_private", "secret_file", "secret_files", NULL,
};

/* Headers the driver writes itself, which "headers" may not set. */
static int
header_reserved(const char *name)
{
	static const char *const names[] = {
		"webhook-id", "webhook-timestamp", "webhook-signature", "content-length", "host",
		"transfer-encoding", "connection", "expect", NULL,
	};
	size_t i;

	for (i = 0; names[i]; i++)
		if (strcasecmp(name, names[i]) == 0)
			return 1;
	return 0;
}

static int
parse_http_headers(struct ctx *c, json_t *o, struct relay_http_dest_conf *h)
{
	const char *name;
	json_t *hs, *v;
	char q[96];
	int rc;

	if ((rc = relay_schema_object(&c->s, o, "headers", 0, &hs)) != 0 || !hs)
		return rc;
	if (json_object_size(hs) > 64)
		return relay_schema_fail(&c->s, o, "headers", "at most 64 headers");
	if (!(h->headers = calloc(json_object_size(hs) + 1, sizeof(*h->headers))))
		return relay_schema_oom(&c->s);
	json_object_foreach(hs, name, v) {
		const char *val, *p;

		if (!header_name_ok(name))
			return relay_schema_error(&c->s, -RELAY_ECONFIG, hs, name, 0, RELAY_SCHEMA_AT_KEY,
			                          "invalid header name %s",
			                          relay_schema_quote(q, sizeof q, name));
		if (header_reserved(name))
			return relay_schema_error(&c->s, -RELAY_ECONFIG, hs, name, 0, RELAY_SCHEMA_AT_KEY,
			                          "header %s is set by the relay itself",
			                          relay_schema_quote(q, sizeof q, name));
		if (!json_is_string(v))
			return relay_schema_fail_type(&c->s, hs, name, "a string");
		val = json_string_value(v);
		for (p = val; *p; p++)
			if ((unsigned char)*p < 0x20 && *p != '\t')
				return relay_schema_fail(&c->s, hs, name,
				                         "a header value must not contain control characters");
		if (json_string_length(v) != strlen(val))
			return relay_schema_fail(&c->s, hs, name, "a header value must not contain NUL");
		if (asprintf(&h->headers[h->n_headers], "%s: %s", name, val) < 0) {
			h->headers[h->n_headers] = NULL;
			return relay_schema_oom(&c->s);
		}
		h->n_headers++;
	}
	return 0;
}

/* A file path of the TLS keys, resolved like a secret's (not read here:
 * curl reads it at each connection). */
static int
parse_http_path(struct ctx *c, json_t *o, const char *key, char **out)
{
	char *rel = NULL;
	int rc;

	if ((rc = get_string(c, o, key, 0, &rel)) != 0 || !rel)
		return rc;
	*out = secret_path(c, rel);
	free(rel);
	return *out ? 0 : relay_schema_oom(&c->s);
}

/* The signing secrets: "secret_file" or "secret_files", each "whsec_<base64>". */
static int
parse_http_secrets(struct ctx *c, json_t *o, struct relay_http_dest_conf *h)
{
	struct relay_verify_conf vc;
	size_t i;
	int rc;

	memset(&vc, 0, sizeof(vc));
	vc.scheme = RELAY_SIG_HMAC_SHA256;
	rc = parse_secrets(c, o, &vc);
	h->secrets = vc.secrets;
	h->n_secrets = vc.n_secrets;
	for (i = 0; rc == 0 && i < h->n_secrets; i++) {
		struct relay_secret raw = h->secrets[i];
		const char *key = json_object_get(o, "secret_file") ? "secret_file" : "secret_files";

		if (raw.len == 0 && (c->flags & RELAY_CONFIG_NO_SECRETS))
			continue;
		rc = relay_whsec_decode((const char *)raw.data, raw.len, &h->secrets[i]);
		secret_clear(&raw);
		if (rc == ENOMEM)
			return relay_schema_oom(&c->s);
		if (rc != 0 && strcmp(key, "secret_files") == 0)
			return relay_schema_error(&c->s, -RELAY_ECONFIG, json_object_get(o, key), NULL, i,
			                          RELAY_SCHEMA_INDEX, "the secret file does not hold a "
			                          "\"whsec_<base64>\" signing secret");
		if (rc != 0)
			return relay_schema_error(&c->s, -RELAY_ECONFIG, o, key, 0, 0,
			                          "the secret file does not hold a \"whsec_<base64>\" "
			                          "signing secret");
	}
	return rc;
}

static int
parse_http_keys(struct ctx *c, json_t *o, struct relay_http_dest_conf *h)
{
	static const struct relay_schema_enum methods[] = {
		{ "POST", 0 }, { "PUT", 1 }, { NULL, 0 },
	};
	const char *why;
	char q[96];
	int rc, method = 0;

	h->connect_timeout_ms = 10000;
	h->timeout_ms = 15000;
	h->max_in_flight = 8;
	h->max_response_bytes = 65536;
	h->tls_verify = 1;
	if ((rc = get_string(c, o, "url", 1, &h->url)) != 0)
		return rc;
	if ((why = url_problem(h->url)) && strcmp(why, "must not have a query or fragment") != 0)
		return relay_schema_fail(&c->s, o, "url", "invalid url %s: %s",
		                         relay_schema_quote(q, sizeof q, h->url), why);
	if (strchr(h->url, '#'))
		return relay_schema_fail(&c->s, o, "url", "invalid url %s: must not have a fragment",
		                         relay_schema_quote(q, sizeof q, h->url));
	if ((rc = relay_schema_enum(&c->s, o, "method", 0, methods, "method", &method)) != 0)
		return rc;
	if (!(h->method = strdup(method ? "PUT" : "POST")))
		return relay_schema_oom(&c->s);
	if ((rc = parse_http_headers(c, o, h)) != 0
	    || (rc = relay_schema_int(&c->s, o, "connect_timeout_ms", 1, MS_DAY, &h->connect_timeout_ms)) != 0
	    || (rc = relay_schema_int(&c->s, o, "timeout_ms", 1, MS_DAY, &h->timeout_ms)) != 0
	    || (rc = relay_schema_unsigned(&c->s, o, "max_in_flight", 1, 256, &h->max_in_flight)) != 0
	    || (rc = relay_schema_number(&c->s, o, "rate_per_s", 0, 1e6, &h->rate_per_s)) != 0
	    || (rc = get_size(c, o, "max_response_bytes", 1, INT64_C(1) << 30, &h->max_response_bytes)) != 0
	    || (rc = relay_schema_bool(&c->s, o, "tls_verify", &h->tls_verify)) != 0
	    || (rc = relay_schema_bool(&c->s, o, "allow_private", &h->allow_private)) != 0
	    || (rc = parse_http_path(c, o, "ca_file", &h->ca_file)) != 0
	    || (rc = parse_http_path(c, o, "cert_file", &h->cert_file)) != 0
	    || (rc = parse_http_path(c, o, "key_file", &h->key_file)) != 0)
		return rc;
	if (!h->cert_file != !h->key_file)
		return relay_schema_error(&c->s, -RELAY_ECONFIG, o, h->cert_file ? "cert_file" : "key_file",
		                          0, RELAY_SCHEMA_AT_KEY,
		                          "give both \"cert_file\" and \"key_file\", or neither");
	return parse_http_secrets(c, o, h);
}

static void
http_dest_free(struct relay_http_dest_conf *h)
{
	size_t i;

	free(h->url);
	free(h->method);
	for (i = 0; i < h->n_headers; i++)
		free(h->headers[i]);
	free(h->headers);
	free(h->ca_file);
	free(h->cert_file);
	free(h->key_file);
	for (i = 0; i < h->n_secrets; i++)
		secret_clear(&h->secrets[i]);
	free(h->secrets);
}

/*
 * The default retry schedule of an HTTP destination: with equal jitter
 * (backoff.c) its 60 attempts take at least a day (about 36 h on average)
 * before an event is dead, within the 72 h age limit.
 */
static const struct relay_backoff_conf http_backoff = {
	.base_ms = 1000, .cap_ms = 3600000, .max_attempts = 60, .max_age_s = 259200,
};

static int
parse_destination(struct ctx *c, json_t *dests, const char *name, json_t *o,
                  struct relay_destination_conf *d)
{
	/* every Odoo key, then the destination's own */
	static const char *const keys[] = {
		"url", "database", "login", "api_key_file", "password_file", "protocol",
		"connect_timeout_ms", "timeout_ms", "max_in_flight", "rate_per_s", "module",
		"max_response_bytes", "query_max_in_flight",
		"kind", "circuit_failures", "probe_base_ms", "probe_cap_ms", "backoff", NULL,
	};
	static const char *const common[] = {
		"kind", "circuit_failures", "probe_base_ms", "probe_cap_ms", "backoff", NULL,
	};
	static const struct relay_schema_enum kinds[] = {
		{ "odoo", RELAY_DEST_ODOO }, { "http", RELAY_DEST_HTTP }, { NULL, 0 },
	};
	const char *http_known[sizeof(http_keys) / sizeof(http_keys[0]) + sizeof(common) / sizeof(common[0])];
	size_t k, i;
	const struct relay_delivery_conf *dl = &c->cfg->delivery;
	char q[96];
	size_t mark;
	int rc, kind = RELAY_DEST_ODOO;

	if (!relay_schema_name_ok(name))
		return relay_schema_error(&c->s, -RELAY_ECONFIG, dests, name, 0,
		                          RELAY_SCHEMA_AT_KEY | RELAY_SCHEMA_UNNAMED,
		                          "invalid destination name %s (expected 1 to %d of A-Z a-z 0-9 _ . -)",
		                          relay_schema_quote(q, sizeof q, name), RELAY_SCHEMA_NAME_MAX);
	if (strcmp(name, "odoo") == 0 && c->cfg->n_destinations > 0
	    && strcmp(c->cfg->destinations[0].name, "odoo") == 0)
		return relay_schema_error(&c->s, -RELAY_ECONFIG, dests, name, 0,
		                          RELAY_SCHEMA_AT_KEY | RELAY_SCHEMA_UNNAMED,
		                          "destination \"odoo\" is also the top-level \"odoo\" object: "
		                          "keep one of them");
	if (!(d->name = strdup(name)))
		return relay_schema_oom(&c->s);
	relay_schema_where_member(c->cfg->doc, dests, name, 1, &d->line, &d->column);
	if (!json_is_object(o))
		return relay_schema_fail_type(&c->s, dests, name, "an object");
	d->circuit_failures = dl->circuit_failures;
	d->probe_base_ms = dl->probe_base_ms;
	d->probe_cap_ms = dl->probe_cap_ms;
	d->backoff = dl->backoff;
	mark = relay_schema_push(&c->s, name);
	if ((rc = relay_schema_enum(&c->s, o, "kind", 0, kinds, "kind", &kind)) != 0)
		goto out;
	d->kind = (enum relay_dest_kind)kind;
	switch (d->kind) {
	case RELAY_DEST_ODOO:
		if ((rc = relay_schema_keys(&c->s, o, keys, NULL)) == 0
		    && (rc = parse_odoo_keys(c, o, &d->odoo)) == 0)
			rc = parse_query_share(c, o, d);
		break;
	case RELAY_DEST_HTTP:
		for (k = 0; http_keys[k]; k++)
			http_known[k] = http_keys[k];
		for (i = 0; common[i]; i++)
			http_known[k++] = common[i];
		http_known[k] = NULL;
		d->backoff = http_backoff;
		if ((rc = relay_schema_keys(&c->s, o, http_known, "for kind http")) == 0)
			rc = parse_http_keys(c, o, &d->http);
		break;
	}
	if (rc != 0
	    || (rc = parse_circuit(c, o, &d->circuit_failures, &d->probe_base_ms, &d->probe_cap_ms)) != 0)
		goto out;
	rc = relay_config_parse_backoff(&c->s, o, &d->backoff);
out:
	relay_schema_pop(&c->s, mark);
	return rc;
}

/* "destinations", after "odoo" and "delivery" (whose values are the defaults). */
static int
parse_destinations(struct ctx *c, json_t *root)
{
	struct relay_config *cfg = c->cfg;
	const char *name;
	json_t *dests, *o;
	size_t mark, i;
	int rc = 0;

	/* the top-level "odoo" takes the delivery section's circuit and backoff */
	for (i = 0; i < cfg->n_destinations; i++) {
		cfg->destinations[i].circuit_failures = cfg->delivery.circuit_failures;
		cfg->destinations[i].probe_base_ms = cfg->delivery.probe_base_ms;
		cfg->destinations[i].probe_cap_ms = cfg->delivery.probe_cap_ms;
		cfg->destinations[i].backoff = cfg->delivery.backoff;
	}
	if ((rc = relay_schema_object(&c->s, root, "destinations", 0, &dests)) != 0 || !dests)
		return rc;
	mark = relay_schema_push(&c->s, "destinations");
	json_object_foreach(dests, name, o) {
		struct relay_destination_conf *d = &cfg->destinations[cfg->n_destinations++];

		if ((rc = parse_destination(c, dests, name, o, d)) != 0)
			break;
	}
	relay_schema_pop(&c->s, mark);
	return rc;
}

static int
parse_delivery(struct ctx *c, json_t *root)
{
	static const char *const keys[] = {
		"backoff", "circuit_failures", "probe_base_ms", "probe_cap_ms", "drain_timeout_ms",
		"retention_s", NULL,
	};
	struct relay_delivery_conf *d = &c->cfg->delivery;
	json_t *o;
	size_t mark;
	int rc;

	if ((rc = relay_schema_object(&c->s, root, "delivery", 0, &o)) != 0 || !o)
		return rc;
	mark = relay_schema_push(&c->s, "delivery");
	if ((rc = relay_schema_keys(&c->s, o, keys, NULL)) != 0
	    || (rc = relay_schema_int(&c->s, o, "retention_s", 0, S_YEAR, &d->retention_s)) != 0
	    || (rc = relay_config_parse_backoff(&c->s, o, &d->backoff)) != 0
	    || (rc = parse_circuit(c, o, &d->circuit_failures, &d->probe_base_ms, &d->probe_cap_ms)) != 0)
		goto out;
	rc = relay_schema_int(&c->s, o, "drain_timeout_ms", 0, MS_DAY, &d->drain_timeout_ms);
out:
	relay_schema_pop(&c->s, mark);
	return rc;
}

/* ---- queries ------------------------------------------------------------- */

static const struct relay_schema_enum qparam_types[] = {
	{ "string", RELAY_QPARAM_STRING }, { "integer", RELAY_QPARAM_INTEGER },
	{ "number", RELAY_QPARAM_NUMBER }, { "boolean", RELAY_QPARAM_BOOLEAN }, { NULL, 0 },
};

/* Whether domain has a leaf whose value is {"param": name}. */
static int
param_used(const json_t *domain, const char *name)
{
	size_t i;

	for (i = 0; i < json_array_size(domain); i++) {
		const json_t *v = json_array_get(json_array_get(domain, i), 2);
		const char *p = json_is_object(v) ? json_string_value(json_object_get(v, "param")) : NULL;

		if (p && strcmp(p, name) == 0)
			return 1;
	}
	return 0;
}

static int
parse_qparam(struct ctx *c, json_t *params, const char *name, json_t *o, struct relay_qparam_conf *p)
{
	static const char *const keys[] = {
		"type", "pattern", "min_length", "max_length", "min", "max", "required", "default", NULL,
	};
	static const char *const string_only[] = { "pattern", "min_length", "max_length", NULL };
	static const char *const number_only[] = { "min", "max", NULL };
	const char *const *k;
	json_t *def;
	char q[96], e[160];
	int64_t minl = 1, maxl = 64;
	size_t mark;
	int rc, type = RELAY_QPARAM_STRING, required = -1;

	if (!relay_query_param_name_ok(name))
		return relay_schema_error(&c->s, -RELAY_ECONFIG, params, name, 0,
		                          RELAY_SCHEMA_AT_KEY | RELAY_SCHEMA_UNNAMED,
		                          "invalid parameter name %s (expected A-Z a-z 0-9 _, not starting "
		                          "with a digit, at most 64)", relay_schema_quote(q, sizeof q, name));
	if (!(p->name = strdup(name)))
		return relay_schema_oom(&c->s);
	if (!json_is_object(o))
		return relay_schema_fail_type(&c->s, params, name, "an object");
	p->min = -9007199254740992.0;
	p->max = 9007199254740992.0;
	mark = relay_schema_push(&c->s, name);
	if ((rc = relay_schema_keys(&c->s, o, keys, NULL)) != 0
	    || (rc = relay_schema_enum(&c->s, o, "type", 0, qparam_types, "type", &type)) != 0)
		goto out;
	p->type = (enum relay_qparam_type)type;
	for (k = type == RELAY_QPARAM_STRING ? number_only : string_only; *k; k++)
		if (json_object_get(o, *k)) {
			rc = relay_schema_error(&c->s, -RELAY_ECONFIG, o, *k, 0, RELAY_SCHEMA_AT_KEY,
			                        "not allowed with type %s",
			                        qparam_types[type].name);
			goto out;
		}
	if (type == RELAY_QPARAM_BOOLEAN && (json_object_get(o, "min") || json_object_get(o, "max"))) {
		rc = relay_schema_error(&c->s, -RELAY_ECONFIG, o, json_object_get(o, "min") ? "min" : "max",
		                        0, RELAY_SCHEMA_AT_KEY, "not allowed with type boolean");
		goto out;
	}
	if ((rc = get_string(c, o, "pattern", 0, &p->pattern)) != 0
	    || (rc = relay_schema_int(&c->s, o, "min_length", 0, RELAY_QPARAM_VALUE_MAX, &minl)) != 0
	    || (rc = relay_schema_int(&c->s, o, "max_length", 1, RELAY_QPARAM_VALUE_MAX, &maxl)) != 0
	    || (rc = relay_schema_number(&c->s, o, "min", -9007199254740992.0, 9007199254740992.0, &p->min)) != 0
	    || (rc = relay_schema_number(&c->s, o, "max", -9007199254740992.0, 9007199254740992.0, &p->max)) != 0
	    || (rc = relay_schema_bool(&c->s, o, "required", &required)) != 0)
		goto out;
	p->min_length = (size_t)minl;
	p->max_length = (size_t)maxl;
	if (minl > maxl || p->min > p->max) {
		const char *key = minl > maxl ? "min_length" : "min";

		rc = relay_schema_error(&c->s, -RELAY_ECONFIG, o, key, 0, RELAY_SCHEMA_ACROSS,
		                        "must not exceed %s", minl > maxl ? "max_length" : "max");
		goto out;
	}
	if (p->pattern) {
		if ((rc = relay_qparam_compile(p, e, sizeof e)) == ENOMEM) {
			rc = relay_schema_oom(&c->s);
			goto out;
		}
		if (rc) {
			rc = relay_schema_error(&c->s, -RELAY_ECONFIG, o, "pattern", 0, 0, "%s", e);
			goto out;
		}
	}
	def = json_object_get(o, "default");
	if (required < 0)
		required = def == NULL;
	p->required = required;
	if (required && def) {
		rc = relay_schema_error(&c->s, -RELAY_ECONFIG, o, "default", 0, RELAY_SCHEMA_AT_KEY,
		                        "a required parameter takes no default");
		goto out;
	}
	if (!required && !def) {
		rc = relay_schema_error(&c->s, -RELAY_ECONFIG, o, "required", 0, RELAY_SCHEMA_AT_KEY,
		                        "an optional parameter needs a \"default\"");
		goto out;
	}
	if (def) {
		char text[64];
		const char *t = text, *why = NULL;
		size_t len;

		if (type == RELAY_QPARAM_STRING && json_is_string(def))
			t = json_string_value(def), len = json_string_length(def);
		else if (type == RELAY_QPARAM_INTEGER && json_is_integer(def))
			len = (size_t)snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, json_integer_value(def));
		else if (type == RELAY_QPARAM_NUMBER && json_is_number(def))
			len = (size_t)snprintf(text, sizeof text, "%.17g", json_number_value(def));
		else if (type == RELAY_QPARAM_BOOLEAN && json_is_boolean(def))
			len = (size_t)snprintf(text, sizeof text, "%s", json_is_true(def) ? "true" : "false");
		else {
			rc = relay_schema_fail_type(&c->s, o, "default", type == RELAY_QPARAM_STRING ? "a string"
			                            : type == RELAY_QPARAM_BOOLEAN ? "a boolean"
			                            : type == RELAY_QPARAM_INTEGER ? "an integer" : "a number");
			goto out;
		}
		if ((rc = relay_qparam_value(p, t, len, &p->default_value, &why)) == ENOMEM) {
			rc = relay_schema_oom(&c->s);
			goto out;
		}
		if (rc) {
			rc = relay_schema_error(&c->s, -RELAY_ECONFIG, o, "default", 0, 0, "the default %s", why);
			goto out;
		}
	}
out:
	relay_schema_pop(&c->s, mark);
	return rc;
}

static int
parse_qfields(struct ctx *c, json_t *o, struct relay_query_conf *qc)
{
	json_t *a;
	char q[96];
	size_t i, mark;
	int rc;

	if ((rc = relay_schema_array(&c->s, o, "fields", 1, &a)) != 0)
		return rc;
	if (json_array_size(a) == 0 || json_array_size(a) > 200)
		return relay_schema_fail(&c->s, o, "fields", "expected 1 to 200 field names, got %zu",
		                         json_array_size(a));
	if (!(qc->fields = calloc(json_array_size(a), sizeof *qc->fields)))
		return relay_schema_oom(&c->s);
	mark = relay_schema_push(&c->s, "fields");
	for (i = 0; i < json_array_size(a) && rc == 0; i++) {
		json_t *f = json_array_get(a, i);

		if (!json_is_string(f) || !relay_query_field_ok(json_string_value(f)) || strchr(json_string_value(f), '.'))
			rc = relay_schema_error(&c->s, -RELAY_ECONFIG, a, NULL, i, RELAY_SCHEMA_INDEX,
			                        "invalid field name %s (expected a-z 0-9 _)",
			                        json_is_string(f) ? relay_schema_quote(q, sizeof q, json_string_value(f))
			                                          : relay_schema_type_name(f));
		else if (!(qc->fields[i] = strdup(json_string_value(f))))
			rc = relay_schema_oom(&c->s);
		else
			qc->n_fields = i + 1;
	}
	relay_schema_pop(&c->s, mark);
	return rc;
}

static int
model_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 128 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_.") == n
	       && s[0] != '.' && s[n - 1] != '.' && !strstr(s, "..");
}

static int
parse_query(struct ctx *c, json_t *queries, const char *name, json_t *o, struct relay_query_conf *qc)
{
	static const char *const keys[] = {
		"destination", "model", "domain", "fields", "order", "limit", "params", "cache_s",
		"stale_s", "cache_entries", "cache_bytes", "max_bytes", "timeout_ms", "rate_per_s",
		"caller_rate_per_s", "burst", "public", "auth", NULL,
	};
	const struct relay_destination_conf *d;
	const json_t *at;
	const char *pname;
	json_t *params, *domain, *pv;
	char q[96], why[256];
	int64_t cache_bytes = 8 << 20, max_bytes = 1 << 20;
	unsigned limit = 100;
	size_t mark, m, i;
	int rc;

	if (!relay_schema_name_ok(name))
		return relay_schema_error(&c->s, -RELAY_ECONFIG, queries, name, 0,
		                          RELAY_SCHEMA_AT_KEY | RELAY_SCHEMA_UNNAMED,
		                          "invalid query name %s (expected 1 to %d of A-Z a-z 0-9 _ . -)",
		                          relay_schema_quote(q, sizeof q, name), RELAY_SCHEMA_NAME_MAX);
	if (!(qc->name = strdup(name)))
		return relay_schema_oom(&c->s);
	relay_schema_where_member(c->cfg->doc, queries, name, 1, &qc->line, &qc->column);
	if (!json_is_object(o))
		return relay_schema_fail_type(&c->s, queries, name, "an object");
	qc->cache_entries = 1000;
	qc->timeout_ms = 10000;
	mark = relay_schema_push(&c->s, name);
	if ((rc = relay_schema_keys(&c->s, o, keys, NULL)) != 0
	    || (rc = get_string(c, o, "destination", 0, &qc->destination)) != 0)
		goto out;
	if (!qc->destination && !(qc->destination = strdup("odoo"))) {
		rc = relay_schema_oom(&c->s);
		goto out;
	}
	if (!(d = relay_config_destination(c->cfg, qc->destination)) || d->kind != RELAY_DEST_ODOO) {
		rc = json_object_get(o, "destination")
		     ? relay_schema_fail(&c->s, o, "destination", "no Odoo destination is called %s",
		                         relay_schema_quote(q, sizeof q, qc->destination))
		     : relay_schema_error(&c->s, -RELAY_ECONFIG, queries, name, 0, RELAY_SCHEMA_AT_KEY | RELAY_SCHEMA_UNNAMED,
		                          "query %s reads the destination \"odoo\" (the default), which is "
		                          "not configured: name one in \"destination\"",
		                          relay_schema_quote(q, sizeof q, name));
		goto out;
	}
	if ((rc = get_string(c, o, "model", 1, &qc->model)) != 0)
		goto out;
	if (!model_name_ok(qc->model)) {
		rc = relay_schema_fail(&c->s, o, "model", "invalid model name %s (expected a-z 0-9 _ .)",
		                       relay_schema_quote(q, sizeof q, qc->model));
		goto out;
	}
	/* the parameters first: the domain names them */
	if ((rc = relay_schema_object(&c->s, o, "params", 0, &params)) != 0)
		goto out;
	if (params && json_object_size(params) > RELAY_QUERY_PARAMS_MAX) {
		rc = relay_schema_fail(&c->s, o, "params", "at most %d parameters, got %zu",
		                       RELAY_QUERY_PARAMS_MAX, json_object_size(params));
		goto out;
	}
	if (params && json_object_size(params)
	    && !(qc->params = calloc(json_object_size(params), sizeof *qc->params))) {
		rc = relay_schema_oom(&c->s);
		goto out;
	}
	m = relay_schema_push(&c->s, "params");
	if (params)
		json_object_foreach(params, pname, pv) {
			if ((rc = parse_qparam(c, params, pname, pv, &qc->params[qc->n_params++])) != 0)
				break;
		}
	relay_schema_pop(&c->s, m);
	if (rc != 0 || (rc = relay_schema_array(&c->s, o, "domain", 1, &domain)) != 0)
		goto out;
	if (relay_query_domain_problem(domain, qc->params, qc->n_params, &at, why, sizeof why)) {
		m = relay_schema_push(&c->s, "domain");
		rc = relay_schema_fail_at(&c->s, at, domain, "%s", why);
		relay_schema_pop(&c->s, m);
		goto out;
	}
	for (i = 0; i < qc->n_params; i++)
		if (!param_used(domain, qc->params[i].name)) {
			m = relay_schema_push(&c->s, "params");
			rc = relay_schema_error(&c->s, -RELAY_ECONFIG, params, qc->params[i].name, 0,
			                        RELAY_SCHEMA_AT_KEY, "declared but used nowhere in the domain");
			relay_schema_pop(&c->s, m);
			goto out;
		}
	qc->domain = json_incref(domain);
	if ((rc = parse_qfields(c, o, qc)) != 0 || (rc = get_string(c, o, "order", 0, &qc->order)) != 0)
		goto out;
	if (qc->order && (pname = relay_query_order_problem(qc->order))) {
		rc = relay_schema_fail(&c->s, o, "order", "invalid order %s: %s",
		                       relay_schema_quote(q, sizeof q, qc->order), pname);
		goto out;
	}
	if ((rc = relay_schema_unsigned(&c->s, o, "limit", 1, 10000, &limit)) != 0
	    || (rc = relay_schema_int(&c->s, o, "cache_s", 0, 86400, &qc->cache_s)) != 0
	    || (rc = relay_schema_int(&c->s, o, "stale_s", 0, 7 * 86400, &qc->stale_s)) != 0
	    || (rc = relay_schema_unsigned(&c->s, o, "cache_entries", 1, 1000000, &qc->cache_entries)) != 0
	    || (rc = relay_schema_int(&c->s, o, "cache_bytes", 1024, INT64_C(1) << 30, &cache_bytes)) != 0
	    || (rc = relay_schema_int(&c->s, o, "max_bytes", 1024, INT64_C(64) << 20, &max_bytes)) != 0
	    || (rc = relay_schema_int(&c->s, o, "timeout_ms", 1, MS_DAY, &qc->timeout_ms)) != 0
	    || (rc = relay_schema_number(&c->s, o, "rate_per_s", 0, 1e6, &qc->rate_per_s)) != 0
	    || (rc = relay_schema_number(&c->s, o, "caller_rate_per_s", 0, 1e6, &qc->caller_rate_per_s)) != 0
	    || (rc = relay_schema_unsigned(&c->s, o, "burst", 1, 1000000, &qc->burst)) != 0
	    || (rc = relay_schema_bool(&c->s, o, "public", &qc->public_)) != 0)
		goto out;
	qc->limit = limit;
	qc->cache_bytes = (size_t)cache_bytes;
	qc->max_bytes = (size_t)max_bytes;
	if (qc->stale_s && !qc->cache_s) {
		rc = relay_schema_error(&c->s, -RELAY_ECONFIG, o, "stale_s", 0, RELAY_SCHEMA_AT_KEY,
		                        "needs a cache: set cache_s too");
		goto out;
	}
	qc->auth.tolerance_s = 300;
	if ((rc = parse_verify(c, o, "auth", &qc->auth)) != 0)
		goto out;
	m = relay_schema_push(&c->s, "auth");
	if (qc->auth.scheme != RELAY_SIG_TOKEN && qc->auth.scheme != RELAY_SIG_HMAC_SHA256
	    && qc->auth.scheme != RELAY_SIG_NONE)
		rc = relay_schema_fail(&c->s, json_object_get(o, "auth"), "scheme",
		                       "a query takes scheme token, hmac-sha256 or none");
	else if (qc->auth.scheme == RELAY_SIG_NONE && !qc->public_)
		rc = relay_schema_fail(&c->s, json_object_get(o, "auth"), "scheme",
		                       "scheme \"none\" lets anyone read: allowed only with \"public\": true");
	else if (qc->auth.scheme != RELAY_SIG_NONE && qc->public_)
		rc = relay_schema_fail(&c->s, json_object_get(o, "auth"), "scheme",
		                       "a query with \"public\": true takes scheme \"none\"");
	relay_schema_pop(&c->s, m);
out:
	relay_schema_pop(&c->s, mark);
	return rc;
}

/* "queries", after the destinations they read. */
static int
parse_queries(struct ctx *c, json_t *root)
{
	struct relay_config *cfg = c->cfg;
	const char *name;
	json_t *queries, *o;
	size_t mark;
	int rc = 0;

	if ((rc = relay_schema_object(&c->s, root, "queries", 0, &queries)) != 0 || !queries
	    || json_object_size(queries) == 0)
		return rc;
	if (!(cfg->queries = calloc(json_object_size(queries), sizeof *cfg->queries)))
		return relay_schema_oom(&c->s);
	mark = relay_schema_push(&c->s, "queries");
	json_object_foreach(queries, name, o) {
		/* counted before it is filled, so that a failure frees it */
		if ((rc = parse_query(c, queries, name, o, &cfg->queries[cfg->n_queries++])) != 0)
			break;
	}
	relay_schema_pop(&c->s, mark);
	return rc;
}

static void
config_defaults(struct relay_config *cfg)
{
	cfg->map_size = (size_t)1024 << 20;
	cfg->limits.max_body_bytes = 1048576;
	cfg->limits.header_timeout_ms = 10000;
	cfg->limits.body_timeout_ms = 30000;
	cfg->limits.max_connections = 1024;
	cfg->limits.body_budget_bytes = (size_t)32 << 20;
	cfg->delivery.backoff.base_ms = 1000;
	cfg->delivery.backoff.cap_ms = 3600000;
	cfg->delivery.backoff.max_attempts = 25;
	cfg->delivery.backoff.max_age_s = 259200;
	cfg->delivery.circuit_failures = 5;
	cfg->delivery.probe_base_ms = 1000;
	cfg->delivery.probe_cap_ms = 60000;
	cfg->delivery.drain_timeout_ms = 10000;
	cfg->delivery.retention_s = 7 * 86400;
}

static int
config_parse(struct ctx *c, json_t *root)
{
	static const char *const keys[] = {
		"listen", "admin_listen", "query_listen", "state_dir", "map_size_mb", "limits", "sources", "odoo",
		"destinations", "delivery", "routes", "queries", NULL,
	};
	struct relay_config *cfg = c->cfg;
	int64_t map_mb = 1024;
	json_t *routes, *dests;
	int rc;

	if (!json_is_object(root))
		return relay_schema_fail(&c->s, root, NULL, "expected an object at the top level, got %s",
		                         relay_schema_type_name(root));
	dests = json_object_get(root, "destinations");
	/* room for "odoo" and every named destination, whatever fails */
	if (!(cfg->destinations = calloc(1 + (json_is_object(dests) ? json_object_size(dests) : 0),
	                                 sizeof *cfg->destinations)))
		return relay_schema_oom(&c->s);
	if ((rc = relay_schema_keys(&c->s, root, keys, NULL)) != 0
	    || (rc = parse_listen(c, root)) != 0
	    || (rc = get_string(c, root, "admin_listen", 0, &cfg->admin_listen)) != 0
	    || (cfg->admin_listen
	        && (rc = check_address(c, root, "admin_listen", 0, cfg->admin_listen)) != 0)
	    || (rc = get_string(c, root, "query_listen", 0, &cfg->query_listen)) != 0
	    || (cfg->query_listen
	        && (rc = check_address(c, root, "query_listen", 0, cfg->query_listen)) != 0)
	    || (rc = get_string(c, root, "state_dir", 0, &cfg->state_dir)) != 0
	    || (rc = relay_schema_int(&c->s, root, "map_size_mb", 1, 1048576, &map_mb)) != 0
	    || (rc = parse_limits(c, root)) != 0
	    || (rc = parse_sources(c, root)) != 0
	    || (rc = parse_odoo(c, root)) != 0
	    || (rc = parse_delivery(c, root)) != 0
	    || (rc = parse_destinations(c, root)) != 0
	    || (rc = parse_queries(c, root)) != 0
	    || (rc = relay_poll_conf_check(cfg, c->s.err)) != 0)
		return rc;
	cfg->map_size = (size_t)map_mb << 20;
	if ((routes = json_object_get(root, "routes"))) {
		if (!json_is_array(routes))
			return relay_schema_fail_type(&c->s, root, "routes", "an array");
		cfg->routes = routes; /* validated by the route compiler */
	}
	/* for the checks --check-config makes of the directory itself */
	relay_schema_where_member(cfg->doc, root, "state_dir", 0, &cfg->state_dir_line,
	                          &cfg->state_dir_column);
	if (!cfg->state_dir && !(cfg->state_dir = strdup("/var/lib/odoo-relay")))
		return relay_schema_oom(&c->s);
	return 0;
}

/* ---- public -------------------------------------------------------------- */

static void
error_start(struct relay_config_error *err, const char *file)
{
	if (!err)
		return;
	memset(err, 0, sizeof *err);
	snprintf(err->file, sizeof err->file, "%s", file ? file : "");
}

/* The directory of name, for relative secret paths; NULL for the working one. */
static char *
dir_of(const char *name)
{
	const char *slash = name ? strrchr(name, '/') : NULL;

	if (!slash)
		return NULL;
	if (slash == name)
		return strdup("/");
	return strndup(name, (size_t)(slash - name));
}

static int
config_loadb(const char *name, const char *text, size_t len, unsigned flags,
             struct relay_config **out, struct relay_config_error *err)
{
	struct ctx c = { .flags = flags };
	struct relay_config *cfg;
	char *base = NULL;
	int rc;

	if (out)
		*out = NULL;
	error_start(err, name);
	if (!out || (!text && len)) {
		if (err)
			snprintf(err->text, sizeof err->text, "invalid arguments");
		return -RELAY_EINVAL;
	}
	if (!(cfg = calloc(1, sizeof *cfg)) || !(cfg->path = strdup(name ? name : ""))
	    || (name && strrchr(name, '/') && !(base = dir_of(name)))) {
		rc = ENOMEM;
		if (err)
			snprintf(err->text, sizeof err->text, "out of memory");
		goto fail;
	}
	c.cfg = cfg;
	c.base_dir = base;
	if ((rc = relay_schema_doc_parse(text, len, &cfg->doc, err)) != 0) {
		if (rc == ENOMEM && err)
			snprintf(err->text, sizeof err->text, "out of memory");
		goto fail;
	}
	relay_schema_init(&c.s, cfg->doc, cfg->path, err, RELAY_SCHEMA_PLACE_MEMBER);
	config_defaults(cfg);
	if ((rc = config_parse(&c, relay_schema_doc_root(cfg->doc))) != 0)
		goto fail;
	free(base);
	*out = cfg;
	return 0;
fail:
	free(base);
	relay_config_free(cfg);
	return rc;
}

int
relay_config_loadb(const char *name, const char *text, size_t len, struct relay_config **out,
                   struct relay_config_error *err)
{
	return config_loadb(name, text, len, 0, out, err);
}

int
relay_config_load(const char *path, struct relay_config **out, struct relay_config_error *err)
{
	return relay_config_load_flags(path, 0, out, err);
}

int
relay_config_load_flags(const char *path, unsigned flags, struct relay_config **out,
                        struct relay_config_error *err)
{
	char *buf = NULL, e[128];
	size_t len = 0, cap = 0;
	int fd, rc;

	if (out)
		*out = NULL;
	error_start(err, path);
	if (!path || !out) {
		if (err)
			snprintf(err->text, sizeof err->text, "invalid arguments");
		return -RELAY_EINVAL;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		rc = errno;
		goto fail;
	}
	/* read to the end rather than trust st_size, so that pipes work too */
	for (;;) {
		ssize_t r;

		if (len == cap) {
			char *nb;

			if (cap >= CONFIG_MAX_BYTES) {
				close(fd);
				free(buf);
				if (err)
					snprintf(err->text, sizeof err->text, "configuration file is larger than %u bytes",
					         CONFIG_MAX_BYTES);
				return -RELAY_ECONFIG;
			}
			cap = cap ? cap * 2 : 8192;
			if (!(nb = realloc(buf, cap))) {
				rc = ENOMEM;
				close(fd);
				goto fail;
			}
			buf = nb;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = errno;
			close(fd);
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	rc = config_loadb(path, buf, len, flags, out, err);
	free(buf);
	return rc;
fail:
	free(buf);
	if (err)
		snprintf(err->text, sizeof err->text, "cannot read configuration file: %s", errtext(e, sizeof e, rc));
	return rc;
}

static void
ref_free(struct relay_ref *r)
{
	free(r->name);
}

void
relay_config_free(struct relay_config *cfg)
{
	size_t i, j;

	if (!cfg)
		return;
	for (i = 0; i < cfg->n_sources; i++) {
		struct relay_source_conf *s = &cfg->sources[i];

		for (j = 0; j < s->verify.n_secrets; j++)
			secret_clear(&s->verify.secrets[j]);
		free(s->verify.secrets);
		free(s->verify.header);
		free(s->verify.prefix);
		ref_free(&s->dedup);
		ref_free(&s->topic);
		ref_free(&s->lane);
		for (j = 0; j < s->n_keep_headers; j++)
			free(s->keep_headers[j]);
		free(s->keep_headers);
		free(s->name);
		relay_poll_conf_free(s->poll);
	}
	free(cfg->sources);
	for (i = 0; i < cfg->n_listen; i++)
		free(cfg->listen[i]);
	free(cfg->listen);
	free(cfg->admin_listen);
	free(cfg->query_listen);
	free(cfg->state_dir);
	for (i = 0; i < cfg->n_destinations; i++) {
		struct relay_destination_conf *d = &cfg->destinations[i];

		free(d->odoo.url);
		free(d->odoo.database);
		free(d->odoo.login);
		secret_clear(&d->odoo.api_key);
		free(d->odoo.module);
		http_dest_free(&d->http);
		free(d->name);
	}
	free(cfg->destinations);
	for (i = 0; i < cfg->n_queries; i++) {
		struct relay_query_conf *q = &cfg->queries[i];

		free(q->name);
		free(q->destination);
		free(q->model);
		json_decref(q->domain);
		for (j = 0; j < q->n_fields; j++)
			free(q->fields[j]);
		free(q->fields);
		free(q->order);
		for (j = 0; j < q->n_params; j++) {
			relay_qparam_release(&q->params[j]);
			free(q->params[j].name);
			free(q->params[j].pattern);
			json_decref(q->params[j].default_value);
		}
		free(q->params);
		for (j = 0; j < q->auth.n_secrets; j++)
			secret_clear(&q->auth.secrets[j]);
		free(q->auth.secrets);
		free(q->auth.header);
		free(q->auth.prefix);
	}
	free(cfg->queries);
	free(cfg->path);
	relay_schema_doc_free(cfg->doc);
	free(cfg);
}

int
relay_config_where(const struct relay_config *cfg, const json_t *node, unsigned *line, unsigned *column)
{
	return relay_schema_where(cfg ? cfg->doc : NULL, node, line, column);
}

int
relay_config_error_set(struct relay_config_error *err, const struct relay_config *cfg, const json_t *node,
                       const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -RELAY_ECONFIG;
	error_start(err, cfg ? cfg->path : NULL);
	if (relay_config_where(cfg, node, &err->line, &err->column) != 0)
		err->line = err->column = 0;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof err->text, fmt, ap);
	va_end(ap);
	return -RELAY_ECONFIG;
}

void
relay_config_error_format(const struct relay_config_error *err, char *buf, size_t n)
{
	if (!buf || n == 0)
		return;
	if (!err)
		snprintf(buf, n, "no error");
	else if (err->line && err->file[0])
		snprintf(buf, n, "%s:%u:%u: %s", err->file, err->line, err->column, err->text);
	else if (err->file[0])
		snprintf(buf, n, "%s: %s", err->file, err->text);
	else
		snprintf(buf, n, "%s", err->text);
}

const struct relay_source_conf *
relay_config_source(const struct relay_config *cfg, const char *name, size_t name_len)
{
	size_t i;

	if (!cfg || !name)
		return NULL;
	for (i = 0; i < cfg->n_sources; i++)
		if (strlen(cfg->sources[i].name) == name_len && memcmp(cfg->sources[i].name, name, name_len) == 0)
			return &cfg->sources[i];
	return NULL;
}

const struct relay_destination_conf *
relay_config_destination(const struct relay_config *cfg, const char *name)
{
	size_t i;

	if (!cfg || !name)
		return NULL;
	for (i = 0; i < cfg->n_destinations; i++)
		if (strcmp(cfg->destinations[i].name, name) == 0)
			return &cfg->destinations[i];
	return NULL;
}

const struct relay_query_conf *
relay_config_query(const struct relay_config *cfg, const char *name, size_t name_len)
{
	size_t i;

	if (!cfg || !name)
		return NULL;
	for (i = 0; i < cfg->n_queries; i++)
		if (strlen(cfg->queries[i].name) == name_len
		    && memcmp(cfg->queries[i].name, name, name_len) == 0)
			return &cfg->queries[i];
	return NULL;
}
