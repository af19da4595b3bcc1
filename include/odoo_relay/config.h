/*
 * odoo-relay: the configuration file.
 *
 * One JSON file, validated strictly: unknown keys, wrong types, missing
 * required keys and out-of-range values are errors that name the file, the
 * line and the column of the offending value (1-based), and what is wrong.
 * Secrets are never inline: every secret is a "*_file" path, read at load
 * time. A relative secret path is resolved against $CREDENTIALS_DIRECTORY
 * when that is set (systemd LoadCredential=), else against the directory of
 * the configuration file. One trailing newline of a secret file is dropped.
 * Secret bytes are never copied into error messages or logs.
 *
 * The schema (defaults in brackets) is documented in odoo-relay.conf(5) and
 * packaging/odoo-relay.json; the structs below mirror it.
 *
 * Ownership: relay_config_load() returns a struct the caller owns and frees
 * with relay_config_free(); every pointer inside it lives as long as the
 * struct. Once loaded, a config is immutable and may be read from any thread.
 * A reload builds a new struct and swaps it in; the old one is freed only
 * when nothing refers to it any more.
 */
#ifndef ODOO_RELAY_CONFIG_H
#define ODOO_RELAY_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "odoo_relay/schema.h"

/* Where a value comes from in an incoming webhook. */
enum relay_ref_kind {
	RELAY_REF_NONE = 0,  /* not configured */
	RELAY_REF_HEADER,    /* a request header, matched case-insensitively */
	RELAY_REF_POINTER,   /* an RFC 6901 JSON pointer into the body */
};

struct relay_ref {
	enum relay_ref_kind kind;
	char *name;          /* header name or JSON pointer ("/id", "/data/object/id") */
};

enum relay_sig_scheme {
	RELAY_SIG_NONE = 0,  /* explicit "none": accepted, warned about at start */
	RELAY_SIG_SHOPIFY,   /* X-Shopify-Hmac-Sha256: base64 HMAC-SHA256(body) */
	RELAY_SIG_WOOCOMMERCE, /* X-WC-Webhook-Signature: base64 HMAC-SHA256(body) */
	RELAY_SIG_GITHUB,    /* X-Hub-Signature-256: "sha256=" hex HMAC-SHA256(body) */
	RELAY_SIG_STRIPE,    /* Stripe-Signature: t=..,v1=.. over "t.body" */
	RELAY_SIG_HMAC_SHA256, /* configurable header, hex or base64, optional prefix */
	RELAY_SIG_TOKEN,     /* shared secret in a header or Authorization: Bearer */
	RELAY_SIG_URL_TOKEN, /* shared secret as the last segment of the URL path:
	                        POST /hooks/<source>/<token> (Odoo can send nothing else) */
};

enum relay_sig_encoding { RELAY_ENC_HEX = 0, RELAY_ENC_BASE64 };

struct relay_secret {
	unsigned char *data; /* secret bytes, not NUL-terminated for callers' use */
	size_t len;
};

struct relay_verify_conf {
	enum relay_sig_scheme scheme;
	/* One or more secrets ("secret_file" or "secret_files"): a signature
	 * that verifies under any of them is good, which is how secrets rotate. */
	struct relay_secret *secrets;
	size_t n_secrets;
	char *header;        /* hmac-sha256, token: header name [token: Authorization] */
	enum relay_sig_encoding encoding; /* hmac-sha256 [hex] */
	char *prefix;        /* hmac-sha256: text before the digest, e.g. "sha256=" [none] */
	int64_t tolerance_s; /* stripe: max age of the signed timestamp [300] */
};

enum relay_unrouted { RELAY_UNROUTED_DEAD = 0, RELAY_UNROUTED_DROP };

/* What posts to a source. */
enum relay_source_kind {
	RELAY_SOURCE_WEBHOOK = 0, /* any sender: dedup and lane as configured */
	RELAY_SOURCE_ODOO,        /* Odoo's "Send Webhook Notification": verify url_token;
	                             the dedup key is "sha256:" and the hex SHA-256 of the
	                             body; the lane is "<_model>/<_id>"; topic [/_model] */
	RELAY_SOURCE_ODOO_POLL,   /* nothing posts: the poller reads Odoo on a schedule
	                             (poll.h); POST /hooks/<name> answers 404 */
};

struct relay_poll_conf;

struct relay_source_conf {
	char *name;                 /* URL path segment: POST /hooks/<name> */
	enum relay_source_kind kind; /* "kind" ["webhook"] */
	struct relay_verify_conf verify;
	struct relay_ref dedup;     /* required: the sender's event id (none for kind odoo) */
	int64_t dedup_window_s;     /* [259200 = 72 h; 600 for kind odoo] */
	struct relay_ref topic;     /* optional: event type [none: topic ""] */
	struct relay_ref lane;      /* optional: ordering key [none: no lane] */
	char **keep_headers;        /* request headers stored with the event */
	size_t n_keep_headers;
	int require_json;           /* 415 unless Content-Type is application/json;
	                               defaults to 1 when any ref is a pointer */
	enum relay_unrouted unrouted; /* an event no route matches ["dead"] */
	int retain_body;            /* history keeps the body, else its digest [true] */
	int64_t deadline_ms;        /* the sender's answer deadline [Shopify 5000, Odoo 1000,
	                               else 10000 (GitHub's)] */
	unsigned line, column;      /* where the source is defined */
	struct relay_poll_conf *poll; /* kind odoo-poll (poll.h), else NULL */
};

struct relay_limits {
	size_t max_body_bytes;      /* [1048576] */
	int64_t header_timeout_ms;  /* read of the request line and headers [10000] */
	int64_t body_timeout_ms;    /* read of the body [30000] */
	unsigned max_connections;   /* [1024] */
	size_t body_budget_bytes;   /* request bodies held at once [32 MiB, or
	                               max_body_bytes when that is larger] */
};

enum relay_odoo_protocol { RELAY_PROTO_AUTO = 0, RELAY_PROTO_JSONRPC, RELAY_PROTO_JSON2 };

struct relay_odoo_conf {
	int configured;             /* 1 in every destination of kind odoo */
	char *url;                  /* base URL, no trailing slash: http://127.0.0.1:8069 */
	char *database;
	char *login;
	struct relay_secret api_key; /* from api_key_file or password_file */
	enum relay_odoo_protocol protocol; /* ["auto"] */
	int64_t connect_timeout_ms; /* [10000] */
	int64_t timeout_ms;         /* total, above Odoo's limit_time_real [180000] */
	unsigned max_in_flight;     /* [4] */
	double rate_per_s;          /* calls per second, 0 = unlimited [0] */
	char *module;               /* external-ID module prefix ["odoo_relay"] */
	size_t max_response_bytes;  /* [16777216] */
};

struct relay_backoff_conf {
	int64_t base_ms;            /* [1000] */
	int64_t cap_ms;             /* [3600000] */
	unsigned max_attempts;      /* [25] */
	int64_t max_age_s;          /* [259200] */
};

struct relay_delivery_conf {
	struct relay_backoff_conf backoff;   /* defaults for every route */
	unsigned circuit_failures;  /* consecutive transient failures (across events) that open the circuit [5] */
	int64_t probe_base_ms;      /* first probe after the circuit opens [1000] */
	int64_t probe_cap_ms;       /* [60000] */
	int64_t drain_timeout_ms;   /* SIGTERM: wait for in-flight calls [10000] */
	int64_t retention_s;        /* history of settled events kept [604800 = 7 days; 0 none] */
};

/* What a destination is; each kind has a driver (destination.h). */
enum relay_dest_kind { RELAY_DEST_ODOO = 0, RELAY_DEST_HTTP };

/* A destination of kind "http": an external endpoint that receives each
 * event as one signed request (dest_http.c; odoo-relay.conf(5), HTTP
 * DESTINATIONS). */
struct relay_http_dest_conf {
	char *url;                  /* http:// or https://, no credentials, no fragment */
	char *method;               /* "POST" or "PUT" ["POST"] */
	char **headers;             /* extra "Name: value" lines, from "headers" */
	size_t n_headers;
	int64_t connect_timeout_ms; /* [10000] */
	int64_t timeout_ms;         /* total [15000] */
	unsigned max_in_flight;     /* [8] */
	double rate_per_s;          /* requests per second, 0 = unlimited [0] */
	size_t max_response_bytes;  /* [65536] */
	int tls_verify;             /* ["tls_verify": true] */
	char *ca_file;              /* CA bundle path (resolved like secrets), or NULL */
	char *cert_file, *key_file; /* client certificate and key (mTLS), both or neither */
	int allow_private;          /* ["allow_private": false]: requests to loopback,
	                               link-local or private addresses are refused */
	/* Signing keys: each "whsec_<base64>" file decoded to its key bytes;
	 * every one signs (rotation). At least one. */
	struct relay_secret *secrets;
	size_t n_secrets;
};

/*
 * A named destination: "destinations": {"<name>": {"kind": "odoo", ...}}.
 * The top-level "odoo" object is the destination named "odoo" (same keys,
 * "kind" implied). Names follow the rule of route names.
 */
struct relay_destination_conf {
	char *name;
	enum relay_dest_kind kind;
	struct relay_odoo_conf odoo;     /* kind odoo: configured is 1 */
	struct relay_http_dest_conf http; /* kind http */
	/* Its circuit; each defaults to the delivery section's value. */
	unsigned circuit_failures;
	int64_t probe_base_ms;
	int64_t probe_cap_ms;
	/* The default backoff of the routes that name it (a route's own
	 * "backoff" wins); defaults to the delivery section's. */
	struct relay_backoff_conf backoff;
	/* Calls in flight the queries of "queries" may make to it, on a client
	 * of their own: delivery keeps its max_in_flight whatever queries do
	 * [max_in_flight / 2, at least 1]. */
	unsigned query_max_in_flight;
	unsigned line, column;           /* where it is defined (its key) */
};

/* The type of a query parameter: what its text must look like, and the
 * JSON value it becomes in the domain. */
enum relay_qparam_type {
	RELAY_QPARAM_STRING = 0,  /* a JSON string */
	RELAY_QPARAM_INTEGER,     /* decimal digits, optional "-": a JSON integer */
	RELAY_QPARAM_NUMBER,      /* a decimal number: a JSON real */
	RELAY_QPARAM_BOOLEAN,     /* "true" or "false": a JSON boolean */
};

#define RELAY_QUERY_PARAMS_MAX 16
#define RELAY_QPARAM_VALUE_MAX 1024  /* the longest value max_length allows */

struct relay_qparam_conf {
	char *name;                  /* [A-Za-z_][A-Za-z0-9_]{0,63} */
	enum relay_qparam_type type; /* ["string"] */
	char *pattern;               /* string: POSIX extended regex the whole value
	                                must match (anchored for you); NULL for none */
	void *regex;                 /* the compiled pattern (a regex_t), or NULL */
	size_t min_length;           /* string: bytes [1] */
	size_t max_length;           /* string: bytes [64], at most RELAY_QPARAM_VALUE_MAX */
	double min, max;             /* integer, number: inclusive range
	                                [-2^53 .. 2^53] */
	int required;                /* [1]; 0 needs "default" */
	json_t *default_value;       /* a value of the type, used when absent; or NULL */
};

/* How a caller proves it may ask a query: "token" or "hmac-sha256" (over
 * the request target, path and query string as sent), or "none" when the
 * query is "public". The same keys as a source's "verify". */
struct relay_query_conf {
	char *name;                  /* GET /query/<name>; the rule of route names */
	char *destination;           /* an Odoo destination ["odoo"] */
	char *model;                 /* e.g. "product.product" */
	json_t *domain;              /* the validated domain (query_spec.h): leaves
	                                whose value is {"param": "<name>"} take the
	                                parameter's value; a reference owned here */
	char **fields;               /* field names to read; at least one */
	size_t n_fields;
	char *order;                 /* "name asc, id desc" or NULL */
	unsigned limit;              /* records at most, 1..10000 [100] */
	struct relay_qparam_conf *params;
	size_t n_params;
	int64_t cache_s;             /* fresh for [0: no cache] seconds */
	int64_t stale_s;             /* then served when Odoo fails or is slow [0] */
	unsigned cache_entries;      /* distinct parameter sets kept [1000] */
	size_t cache_bytes;          /* bytes of answers kept [8 MiB] */
	size_t max_bytes;            /* the records of one answer [1 MiB]: past it,
	                                records are dropped from the end and the
	                                answer says "truncated": true */
	int64_t timeout_ms;          /* waiting for Odoo before stale or 504 [10000] */
	double rate_per_s;           /* requests per second for the query, 0 = no limit [0] */
	double caller_rate_per_s;    /* per client address, 0 = no limit [0] */
	unsigned burst;              /* of both buckets [rate, at least 1] */
	int public_;                 /* "public": true allows auth scheme "none" */
	struct relay_verify_conf auth;
	unsigned line, column;       /* where it is defined (its key) */
};

struct relay_config {
	char *path;                 /* the file it was loaded from */
	char **listen;              /* "host:port" ("127.0.0.1:8080", "[::1]:0") */
	size_t n_listen;
	char *admin_listen;         /* optional separate address for /healthz /readyz /metrics */
	char *query_listen;         /* optional address of its own for GET /query/<name> */
	char *state_dir;            /* ["/var/lib/odoo-relay"] */
	unsigned state_dir_line, state_dir_column; /* where it is set; 0 for the default */
	size_t map_size;            /* bytes; the file says "map_size_mb" [1024 MiB] */
	struct relay_limits limits;
	struct relay_source_conf *sources;
	size_t n_sources;
	/* Every destination, "odoo" first when the top-level block is there,
	 * then in the file's order. 0 destinations: events are stored only. */
	struct relay_destination_conf *destinations;
	size_t n_destinations;
	struct relay_delivery_conf delivery;
	/* "queries": on-demand reads of Odoo, GET /query/<name> (query.h). */
	struct relay_query_conf *queries;
	size_t n_queries;
	/* The "routes" array as parsed, for route.c to compile; NULL if absent.
	 * Borrowed from the config: valid while the config lives. */
	json_t *routes;
	/* The parsed document and the positions of its values (schema.h), for
	 * modules that validate parts of it (route.c). */
	struct relay_schema_doc *doc;
};

/* struct relay_config_error (where, and what) is in schema.h. */

/*
 * relay_config_load - read, parse and validate the file at path.
 *
 * On success returns 0 and *out holds a new config (free with
 * relay_config_free). On failure *out is NULL, err (if not NULL) says where
 * and what, and the result is -RELAY_ECONFIG for an invalid file, or an
 * errno (ENOENT, EACCES, ...) when the file or a secret file cannot be read
 * (err then names the path). Thread-safe; does no other I/O. The file is
 * read once; nothing in the result refers to it.
 */
int relay_config_load(const char *path, struct relay_config **out,
                      struct relay_config_error *err);

/* relay_config_load flags */
#define RELAY_CONFIG_NO_SECRETS 0x1u /* do not read secret files: every secret is
                                        left empty (for odoo-relayctl, which needs
                                        only the state directory, sources and routes
                                        and may run without access to the secrets) */

/* relay_config_load_flags - relay_config_load with flags (above); the same
 * results, ownership and threading. */
int relay_config_load_flags(const char *path, unsigned flags, struct relay_config **out,
                            struct relay_config_error *err);

/* relay_config_loadb - as relay_config_load, from the len bytes at text
 * (copied: the caller keeps text); name is used in errors and as the base for
 * relative secret paths (its directory). -RELAY_EINVAL when out is NULL or
 * text is NULL with len > 0. */
int relay_config_loadb(const char *name, const char *text, size_t len,
                       struct relay_config **out, struct relay_config_error *err);

/* relay_config_free - free a config and everything in it; NULL is a no-op.
 * Secret bytes are wiped before they are freed. Nothing may use the config
 * or a pointer into it (a source, a destination, cfg->routes) afterwards. */
void relay_config_free(struct relay_config *cfg);

/*
 * relay_config_where - line and column (1-based) where node, a value inside
 * cfg->routes or any other part of the parsed document, begins. Returns 0,
 * or -RELAY_ENOTFOUND for a node that is not part of this config (or a NULL
 * cfg or node, or a true, false or null that occurs more than once: see
 * relay_schema_where). line and column may be NULL. Pure; any thread.
 */
int relay_config_where(const struct relay_config *cfg, const json_t *node,
                       unsigned *line, unsigned *column);

/* relay_config_error_set - fill err (may be NULL) for node of cfg: the file of
 * cfg, the position of node (0 0 if it has none) and a printf-style text.
 * Returns -RELAY_ECONFIG, for `return relay_config_error_set(...)`. */
int relay_config_error_set(struct relay_config_error *err, const struct relay_config *cfg,
                           const json_t *node, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* relay_config_error_format - "file:line:column: text" into buf (size n;
 * cut to fit, always NUL-terminated when n > 0); "file: text" without a
 * position. NULL err gives "no error". Pure. */
void relay_config_error_format(const struct relay_config_error *err, char *buf, size_t n);

/* relay_config_source - the source named by the name_len bytes at name, or
 * NULL (also for a NULL cfg or name). Borrowed from cfg: valid while cfg
 * lives. Pure; any thread. */
const struct relay_source_conf *relay_config_source(const struct relay_config *cfg,
                                                    const char *name, size_t name_len);

/* relay_config_destination - the destination called name, or NULL (also for
 * a NULL cfg or name). Borrowed from cfg: valid while cfg lives. Pure; any
 * thread. */
const struct relay_destination_conf *relay_config_destination(const struct relay_config *cfg,
                                                              const char *name);

/* relay_config_query - the query called name (name_len bytes), or NULL (also
 * for a NULL cfg or name). Borrowed from cfg. Pure; any thread. */
const struct relay_query_conf *relay_config_query(const struct relay_config *cfg,
                                                  const char *name, size_t name_len);

/*
 * relay_config_parse_backoff - the one reader of a "backoff" block
 * ({"base_ms", "cap_ms", "max_attempts", "max_age_s"}), wherever it appears:
 * the delivery section, a destination, a route. Reads member "backoff" of
 * obj, if there is one, over the values already in *b (the defaults), with
 * the ranges of odoo-relay.conf(5) and base_ms <= cap_ms. Returns 0, or
 * -RELAY_ECONFIG with s->err filled (b is then left as it was). Pure.
 */
int relay_config_parse_backoff(struct relay_schema *s, const json_t *obj,
                               struct relay_backoff_conf *b);

#endif
