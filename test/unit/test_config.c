/* Unit tests for lib/config.c; run in test/fixtures (fixtures in config/). */
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "odoo_relay/config.h"
#include "odoo_relay/error.h"

/* Every secret byte string the fixtures hold: no error text may contain one. */
static const char *const all_secrets[] = {
	"shop-secret-5f2b9c", "old-secret-a1d7", "gh-secret-77e1", "stripe-secret-4d0f",
	"odoo-key-0c4e9a", "tok-secret-9b9b", "cred-secret-3a3a", "cred-odoo-key-e5e5", NULL,
};

static int
secret_is(const struct relay_secret *s, const char *want)
{
	return s->data && s->len == strlen(want) && memcmp(s->data, want, s->len) == 0;
}

static void
check_no_secret(const struct relay_config_error *err)
{
	char line[1024];
	const char *const *s;

	relay_config_error_format(err, line, sizeof line);
	for (s = all_secrets; *s; s++) {
		CHECK(strstr(err->text, *s) == NULL);
		CHECK(strstr(line, *s) == NULL);
	}
}

static void
test_full(void)
{
	struct relay_config *cfg = NULL;
	struct relay_config_error err;
	const struct relay_source_conf *s;
	const struct relay_odoo_conf *od;
	int rc = relay_config_load("config/good-full.json", &cfg, &err);

	CHECK_INT(rc, 0);
	if (rc) {
		fprintf(stderr, "unexpected error: %s:%u:%u: %s\n", err.file, err.line, err.column, err.text);
		return;
	}
	CHECK_STR(cfg->path, "config/good-full.json");
	CHECK_INT(cfg->n_listen, 3);
	CHECK_STR(cfg->listen[0], "127.0.0.1:8080");
	CHECK_STR(cfg->listen[1], "[::1]:8081");
	CHECK_STR(cfg->listen[2], "localhost:0");
	CHECK_STR(cfg->admin_listen, "127.0.0.1:9090");
	CHECK_STR(cfg->state_dir, "/tmp/odoo-relay-test");
	CHECK_INT(cfg->map_size, 64 << 20);
	CHECK_INT(cfg->limits.max_body_bytes, 262144);
	CHECK_INT(cfg->limits.header_timeout_ms, 5000);
	CHECK_INT(cfg->limits.body_timeout_ms, 15000);
	CHECK_INT(cfg->limits.max_connections, 200);
	CHECK_INT(cfg->n_sources, 6);

	/* sources keep document order */
	s = &cfg->sources[0];
	CHECK_STR(s->name, "shop");
	CHECK_INT(s->line, 13);
	CHECK_INT(s->column, 5);
	CHECK_INT(s->verify.scheme, RELAY_SIG_SHOPIFY);
	CHECK_INT(s->verify.n_secrets, 2);
	CHECK(secret_is(&s->verify.secrets[0], "shop-secret-5f2b9c"));
	CHECK(secret_is(&s->verify.secrets[1], "old-secret-a1d7")); /* "\r\n" dropped */
	CHECK(s->verify.header == NULL);
	CHECK_INT(s->dedup.kind, RELAY_REF_HEADER);
	CHECK_STR(s->dedup.name, "X-Shopify-Webhook-Id");
	CHECK_INT(s->dedup_window_s, 172800);
	CHECK_INT(s->topic.kind, RELAY_REF_HEADER);
	CHECK_STR(s->topic.name, "X-Shopify-Topic");
	CHECK_INT(s->lane.kind, RELAY_REF_POINTER);
	CHECK_STR(s->lane.name, "/id");
	CHECK_INT(s->n_keep_headers, 2);
	CHECK_STR(s->keep_headers[0], "X-Shopify-Topic");
	CHECK_STR(s->keep_headers[1], "X-Shopify-Shop-Domain");
	CHECK_INT(s->require_json, 1);
	CHECK_INT(s->unrouted, RELAY_UNROUTED_DROP);

	s = &cfg->sources[1];
	CHECK_STR(s->name, "gh");
	CHECK_INT(s->verify.scheme, RELAY_SIG_GITHUB);
	CHECK_INT(s->verify.n_secrets, 1);
	/* only one trailing newline is dropped */
	CHECK(secret_is(&s->verify.secrets[0], "gh-secret-77e1\n"));
	CHECK_INT(s->dedup_window_s, 259200);
	CHECK_INT(s->lane.kind, RELAY_REF_NONE);
	CHECK(s->lane.name == NULL);
	CHECK_INT(s->n_keep_headers, 0);
	CHECK_INT(s->require_json, 0); /* headers only */
	CHECK_INT(s->unrouted, RELAY_UNROUTED_DEAD);

	s = &cfg->sources[2];
	CHECK_STR(s->name, "pay");
	CHECK_INT(s->verify.scheme, RELAY_SIG_STRIPE);
	CHECK(secret_is(&s->verify.secrets[0], "stripe-secret-4d0f")); /* no newline at all */
	CHECK_INT(s->verify.tolerance_s, 120);
	CHECK_INT(s->dedup.kind, RELAY_REF_POINTER);
	CHECK_STR(s->topic.name, "/type");
	CHECK_STR(s->lane.name, "/data/object/customer");
	CHECK_INT(s->require_json, 1); /* pointers imply JSON */

	s = &cfg->sources[3];
	CHECK_STR(s->name, "erp.legacy-1");
	CHECK_INT(s->line, 34);
	CHECK_INT(s->column, 5);
	CHECK_INT(s->verify.scheme, RELAY_SIG_HMAC_SHA256);
	CHECK_STR(s->verify.header, "X-Signature");
	CHECK_INT(s->verify.encoding, RELAY_ENC_BASE64);
	CHECK_STR(s->verify.prefix, "sha256=");
	CHECK_INT(s->verify.tolerance_s, 300);
	CHECK_INT(s->require_json, 0);

	s = &cfg->sources[4];
	CHECK_STR(s->name, "forms");
	CHECK_INT(s->verify.scheme, RELAY_SIG_TOKEN);
	CHECK_STR(s->verify.header, "Authorization");
	CHECK(secret_is(&s->verify.secrets[0], "tok-secret-9b9b"));
	CHECK_STR(s->dedup.name, "/submission~1id");

	s = &cfg->sources[5];
	CHECK_STR(s->name, "lab");
	CHECK_INT(s->verify.scheme, RELAY_SIG_NONE);
	CHECK_INT(s->verify.n_secrets, 0);
	CHECK(s->verify.secrets == NULL);

	/* the top-level "odoo" object is the destination "odoo" */
	CHECK_INT(cfg->n_destinations, 1);
	od = &cfg->destinations[0].odoo;
	CHECK_STR(cfg->destinations[0].name, "odoo");
	CHECK_INT(cfg->destinations[0].kind, RELAY_DEST_ODOO);
	CHECK(relay_config_destination(cfg, "odoo") == &cfg->destinations[0]);
	CHECK_INT(od->configured, 1);
	CHECK_STR(od->url, "https://odoo.example.com:8069"); /* slashes stripped */
	CHECK_STR(od->database, "prod");
	CHECK_STR(od->login, "relaybot");
	CHECK(secret_is(&od->api_key, "odoo-key-0c4e9a"));
	CHECK_INT(od->protocol, RELAY_PROTO_JSON2);
	CHECK_INT(od->connect_timeout_ms, 3000);
	CHECK_INT(od->timeout_ms, 240000);
	CHECK_INT(od->max_in_flight, 8);
	CHECK(od->rate_per_s == 2.5);
	CHECK_STR(od->module, "shop_sync");
	CHECK_INT(od->max_response_bytes, 1048576);

	CHECK_INT(cfg->delivery.backoff.base_ms, 500);
	CHECK_INT(cfg->delivery.backoff.cap_ms, 600000);
	CHECK_INT(cfg->delivery.backoff.max_attempts, 12);
	CHECK_INT(cfg->delivery.backoff.max_age_s, 86400);
	CHECK_INT(cfg->delivery.circuit_failures, 3);
	CHECK_INT(cfg->delivery.probe_base_ms, 2000);
	CHECK_INT(cfg->delivery.probe_cap_ms, 30000);
	CHECK_INT(cfg->delivery.drain_timeout_ms, 5000);
	/* its circuit and backoff are the delivery section's */
	CHECK_INT(cfg->destinations[0].circuit_failures, 3);
	CHECK_INT(cfg->destinations[0].probe_base_ms, 2000);
	CHECK_INT(cfg->destinations[0].probe_cap_ms, 30000);
	CHECK_INT(cfg->destinations[0].backoff.base_ms, 500);
	CHECK_INT(cfg->destinations[0].backoff.cap_ms, 600000);
	CHECK_INT(cfg->destinations[0].backoff.max_attempts, 12);
	CHECK_INT(cfg->destinations[0].backoff.max_age_s, 86400);

	CHECK(json_is_array(cfg->routes));
	CHECK_INT(json_array_size(cfg->routes), 1);

	CHECK(relay_config_source(cfg, "shop", 4) == &cfg->sources[0]);
	CHECK(relay_config_source(cfg, "labX", 3) == &cfg->sources[5]); /* not NUL-terminated */
	CHECK(relay_config_source(cfg, "sho", 3) == NULL);
	CHECK(relay_config_source(cfg, "shopping", 8) == NULL);
	relay_config_free(cfg);
}

static void
test_minimal_defaults(void)
{
	struct relay_config *cfg = NULL;
	struct relay_config_error err;
	const struct relay_source_conf *s;
	int rc = relay_config_load("config/minimal.json", &cfg, &err);

	CHECK_INT(rc, 0);
	if (rc)
		return;
	CHECK_INT(cfg->n_listen, 1); /* a single string is accepted */
	CHECK_STR(cfg->listen[0], "127.0.0.1:8080");
	CHECK(cfg->admin_listen == NULL);
	CHECK_STR(cfg->state_dir, "/var/lib/odoo-relay");
	CHECK_INT(cfg->map_size, (size_t)1024 << 20);
	CHECK_INT(cfg->limits.max_body_bytes, 1048576);
	CHECK_INT(cfg->limits.header_timeout_ms, 10000);
	CHECK_INT(cfg->limits.body_timeout_ms, 30000);
	CHECK_INT(cfg->limits.max_connections, 1024);
	CHECK_INT(cfg->n_sources, 1);
	s = &cfg->sources[0];
	CHECK_STR(s->name, "shop");
	CHECK_INT(s->line, 4);
	CHECK_INT(s->column, 5);
	CHECK_INT(s->verify.n_secrets, 1);
	CHECK(secret_is(&s->verify.secrets[0], "shop-secret-5f2b9c"));
	CHECK_INT(s->dedup_window_s, 259200);
	CHECK_INT(s->topic.kind, RELAY_REF_NONE);
	CHECK_INT(s->lane.kind, RELAY_REF_NONE);
	CHECK_INT(s->require_json, 0);
	CHECK_INT(s->unrouted, RELAY_UNROUTED_DEAD);
	CHECK_INT(cfg->n_destinations, 0); /* no "odoo": events are stored only */
	CHECK(relay_config_destination(cfg, "odoo") == NULL);
	CHECK_INT(cfg->delivery.backoff.base_ms, 1000);
	CHECK_INT(cfg->delivery.backoff.cap_ms, 3600000);
	CHECK_INT(cfg->delivery.backoff.max_attempts, 25);
	CHECK_INT(cfg->delivery.backoff.max_age_s, 259200);
	CHECK_INT(cfg->delivery.circuit_failures, 5);
	CHECK_INT(cfg->delivery.probe_base_ms, 1000);
	CHECK_INT(cfg->delivery.probe_cap_ms, 60000);
	CHECK_INT(cfg->delivery.drain_timeout_ms, 10000);
	CHECK(cfg->routes == NULL);
	relay_config_free(cfg);
}

struct bad_case {
	const char *file;
	int rc;
	unsigned line, column;
	const char *text;       /* exact, or a substring when it starts with '~' */
};

static const struct bad_case bad_cases[] = {
	{ "bad-syntax.json", -RELAY_ECONFIG, 3, 11, "~'}' expected" },
	{ "bad-duplicate.json", -RELAY_ECONFIG, 4, 10, "~duplicate object key" },
	{ "bad-top-array.json", -RELAY_ECONFIG, 1, 1, "expected an object at the top level, got an array" },
	{ "bad-unknown-top.json", -RELAY_ECONFIG, 2, 3, "unknown key \"lisen\"" },
	{ "bad-unknown-nested.json", -RELAY_ECONFIG, 5, 40, "sources.shop.verify: unknown key \"secrt_file\"" },
	{ "bad-type.json", -RELAY_ECONFIG, 3, 18, "map_size_mb: expected an integer, got a string" },
	{ "bad-missing.json", -RELAY_ECONFIG, 4, 13, "sources.shop: missing required key \"dedup\"" },
	{ "bad-enum.json", -RELAY_ECONFIG, 5, 29,
	  "sources.shop.verify.scheme: unknown scheme \"shopfy\" (expected one of shopify, woocommerce, "
	  "github, stripe, hmac-sha256, token, url_token, none)" },
	{ "bad-range.json", -RELAY_ECONFIG, 14, 22, "odoo.max_in_flight: 300 is out of range (1..256)" },
	{ "bad-both-secrets.json", -RELAY_ECONFIG, 8, 9,
	  "sources.shop.verify.secret_files: use either \"secret_file\" or \"secret_files\", not both" },
	{ "bad-secret-missing.json", ENOENT, 5, 80,
	  "sources.shop.verify.secret_files[1]: cannot read secret file "
	  "config/secrets/does-not-exist.secret: no such file or directory" },
	{ "bad-retention.json", -RELAY_ECONFIG, 3, 32,
	  "delivery.retention_s: -1 is out of range (0..31536000)" },
	{ "bad-secret-empty.json", -RELAY_ECONFIG, 5, 55,
	  "sources.shop.verify.secret_file: secret file config/secrets/empty.secret is empty" },
	{ "bad-secret-newline.json", -RELAY_ECONFIG, 5, 55,
	  "sources.shop.verify.secret_file: secret file config/secrets/newline.secret is empty" },
	{ "bad-address.json", -RELAY_ECONFIG, 2, 32,
	  "listen[1]: invalid address \"127.0.0.1:70000\": port must be a number from 0 to 65535" },
	{ "bad-url.json", -RELAY_ECONFIG, 10, 12, "~must not contain credentials" },
	{ "bad-module.json", -RELAY_ECONFIG, 14, 15, "~odoo.module: invalid module name \"sale\"" },
	{ "bad-backoff.json", -RELAY_ECONFIG, 10, 45,
	  "delivery.backoff.cap_ms: base_ms (5000) must not exceed cap_ms (1000)" },
	{ "bad-after-secret.json", -RELAY_ECONFIG, 14, 17,
	  "odoo.protocol: unknown protocol \"xmlrpc\" (expected one of auto, jsonrpc, json2)" },
	{ "bad-header-scheme.json", -RELAY_ECONFIG, 5, 78,
	  "sources.shop.verify.header: allowed only with scheme hmac-sha256 and token, not \"shopify\"" },
	{ "bad-source-name.json", -RELAY_ECONFIG, 4, 5, "~sources: invalid source name \"my shop\"" },
	{ "bad-pointer.json", -RELAY_ECONFIG, 6, 29,
	  "sources.lab.dedup.pointer: invalid json pointer \"id\": must start with \"/\"" },
	{ "bad-ref-both.json", -RELAY_ECONFIG, 6, 36,
	  "sources.lab.dedup.pointer: use either \"header\" or \"pointer\", not both" },
	{ "bad-none-secret.json", -RELAY_ECONFIG, 5, 37,
	  "sources.lab.verify.secret_file: not allowed with scheme \"none\"" },
	{ "bad-routes.json", -RELAY_ECONFIG, 4, 13, "routes: expected an array, got an object" },
	/* null is a shared node in jansson: placed by its key, not its address */
	{ "bad-bool.json", -RELAY_ECONFIG, 7, 23, "sources.lab.require_json: expected a boolean, got null" },
	{ "does-not-exist.json", ENOENT, 0, 0, "cannot read configuration file: no such file or directory" },
	/* queries: a parameter is a value, never a field or an operator */
	{ "bad-query-operator.json", -RELAY_ECONFIG, 28, 11,
	  "queries.stock.domain: unknown operator \"=like%\"" },
	{ "bad-query-field-param.json", -RELAY_ECONFIG, 27, 11,
	  "queries.stock.domain: expected a field name, got an object (a parameter can only be a value)" },
	{ "bad-query-undeclared.json", -RELAY_ECONFIG, 36, 11,
	  "queries.stock.domain: parameter \"qty\" is not declared in \"params\"" },
	{ "bad-query-none.json", -RELAY_ECONFIG, 66, 19,
	  "queries.stock.auth.scheme: scheme \"none\" lets anyone read: allowed only with \"public\": true" },
	{ "bad-query-default.json", -RELAY_ECONFIG, 58, 22,
	  "queries.stock.params.min.default: expected an integer, got a string" },
};

static void
test_bad_files(void)
{
	size_t i;

	for (i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		const struct bad_case *b = &bad_cases[i];
		struct relay_config *cfg = (struct relay_config *)&cfg; /* must be reset to NULL */
		struct relay_config_error err;
		char path[128], want_file[128];
		int rc;

		snprintf(path, sizeof path, "config/%s", b->file);
		snprintf(want_file, sizeof want_file, "config/%s", b->file);
		fprintf(stderr, "   %s\n", b->file);
		rc = relay_config_load(path, &cfg, &err);
		CHECK_INT(rc, b->rc);
		CHECK(cfg == NULL);
		CHECK_STR(err.file, want_file);
		CHECK_INT(err.line, b->line);
		CHECK_INT(err.column, b->column);
		if (b->text[0] == '~') {
			CHECK(strstr(err.text, b->text + 1) != NULL);
			if (!strstr(err.text, b->text + 1))
				fprintf(stderr, "   text was: %s\n", err.text);
		} else {
			CHECK_STR(err.text, b->text);
		}
		check_no_secret(&err);
	}
}

/*
 * A secret file that is a FIFO, a socket, a directory or a device is refused
 * with its place, at once: a FIFO used to block the load until a writer
 * came. The load runs in a child with an alarm, so a hang fails the test.
 */
static void
test_secret_not_regular(void)
{
	char dir[] = "/tmp/relay-cfg-XXXXXX", fifo[64], sock[64], sub[64], text[1024];
	const char *kinds[][2] = { { fifo, "a FIFO" }, { sock, "a socket" }, { sub, "a directory" },
	                           { "/dev/null", "a device" } };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int sfd;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(fifo, sizeof fifo, "%s/fifo.secret", dir);
	snprintf(sock, sizeof sock, "%s/sock.secret", dir);
	snprintf(sub, sizeof sub, "%s/dir.secret", dir);
	CHECK_INT(mkfifo(fifo, 0600), 0);
	CHECK_INT(mkdir(sub, 0700), 0);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
	sfd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(sfd >= 0 && bind(sfd, (struct sockaddr *)&sa, sizeof sa) == 0);
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		int n = snprintf(text, sizeof text,
		                 "{\"listen\": \"127.0.0.1:0\",\n \"sources\": {\"shop\": {\n"
		                 "  \"verify\": {\"scheme\": \"shopify\", \"secret_file\": \"%s\"},\n"
		                 "  \"dedup\": {\"header\": \"X-Id\"}}}}\n", kinds[i][0]);
		pid_t pid = fork();

		if (pid == 0) {
			struct relay_config *cfg = NULL;
			struct relay_config_error err;
			char want[256];
			int rc;

			alarm(5);
			rc = relay_config_loadb("mem/kind.json", text, (size_t)n, &cfg, &err);
			snprintf(want, sizeof want, "is not a regular file (%s)", kinds[i][1]);
			_exit(rc == -RELAY_ECONFIG && cfg == NULL && err.line == 3 && err.column == 50 &&
			      strstr(err.text, want) ? 0 : 1);
		}
		int st = 0;

		CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
		if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
			fprintf(stderr, "   %s: %s\n", kinds[i][1],
			        WIFSIGNALED(st) ? "hung or crashed" : "wrong error");
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	if (sfd >= 0)
		close(sfd);
	unlink(fifo);
	unlink(sock);
	rmdir(sub);
	rmdir(dir);
}

static void
test_error_format(void)
{
	struct relay_config *cfg = (struct relay_config *)&cfg;
	struct relay_config_error err;
	char line[1024];

	CHECK_INT(relay_config_load("config/bad-unknown-top.json", &cfg, &err), -RELAY_ECONFIG);
	relay_config_error_format(&err, line, sizeof line);
	CHECK_STR(line, "config/bad-unknown-top.json:2:3: unknown key \"lisen\"");
	CHECK_INT(relay_config_load("config/nope.json", &cfg, &err), ENOENT);
	relay_config_error_format(&err, line, sizeof line);
	CHECK_STR(line, "config/nope.json: cannot read configuration file: no such file or directory");
	/* truncation is safe */
	relay_config_error_format(&err, line, 8);
	CHECK_STR(line, "config/");
}

static void
test_credentials_directory(void)
{
	struct relay_config *cfg = NULL;
	struct relay_config_error err;
	char abs[4096], text[8192];
	int rc;

	/* without it, "shop.secret" is looked up next to the file, where there is none */
	unsetenv("CREDENTIALS_DIRECTORY");
	rc = relay_config_load("config/creds.json", &cfg, &err);
	CHECK_INT(rc, ENOENT);
	CHECK(strstr(err.text, "config/shop.secret") != NULL);
	CHECK_INT(err.line, 5);
	CHECK_INT(err.column, 55);

	setenv("CREDENTIALS_DIRECTORY", "config/creds/", 1);
	rc = relay_config_load("config/creds.json", &cfg, &err);
	CHECK_INT(rc, 0);
	if (rc == 0) {
		CHECK(secret_is(&cfg->sources[0].verify.secrets[0], "cred-secret-3a3a"));
		CHECK(secret_is(&cfg->destinations[0].odoo.api_key, "cred-odoo-key-e5e5")); /* password_file */
		relay_config_free(cfg);
	}

	/* relative paths resolve against it, not the file's directory, and a
	 * missing credential is named by its full path */
	setenv("CREDENTIALS_DIRECTORY", "config/secrets", 1);
	rc = relay_config_load("config/minimal.json", &cfg, &err);
	CHECK_INT(rc, ENOENT);
	CHECK(strstr(err.text, "cannot read secret file config/secrets/secrets/shop.secret: ") != NULL);

	/* an absolute path ignores it */
	setenv("CREDENTIALS_DIRECTORY", "/nonexistent", 1);
	CHECK(realpath("config/secrets/shop.secret", abs) != NULL);
	snprintf(text, sizeof text,
	         "{\"sources\": {\"s\": {\"verify\": {\"scheme\": \"github\", \"secret_file\": \"%s\"},"
	         " \"dedup\": {\"header\": \"X\"}}}}", abs);
	rc = relay_config_loadb("/nonexistent/x.json", text, strlen(text), &cfg, &err);
	CHECK_INT(rc, 0);
	if (rc == 0) {
		CHECK(secret_is(&cfg->sources[0].verify.secrets[0], "shop-secret-5f2b9c"));
		relay_config_free(cfg);
	}
	unsetenv("CREDENTIALS_DIRECTORY");
}

static void
test_where(void)
{
	struct relay_config *cfg = NULL, *other = NULL;
	struct relay_config_error err;
	unsigned line = 0, column = 0;
	json_t *route, *fields, *stray;
	char text[1024];

	CHECK_INT(relay_config_load("config/good-full.json", &cfg, &err), 0);
	CHECK_INT(relay_config_load("config/minimal.json", &other, &err), 0);
	if (!cfg || !other)
		goto out;
	route = json_array_get(cfg->routes, 0);
	CHECK_INT(relay_config_where(cfg, cfg->routes, &line, &column), 0);
	CHECK_INT(line, 75);
	CHECK_INT(column, 13);
	CHECK_INT(relay_config_where(cfg, route, &line, &column), 0);
	CHECK_INT(line, 76);
	CHECK_INT(column, 5);
	CHECK_INT(relay_config_where(cfg, json_object_get(route, "model"), &line, &column), 0);
	CHECK_INT(line, 79);
	CHECK_INT(column, 16);
	fields = json_object_get(route, "fields");
	CHECK_INT(relay_config_where(cfg, fields, &line, &column), 0);
	CHECK_INT(line, 81);
	CHECK_INT(column, 17);
	CHECK_INT(relay_config_where(cfg, json_object_get(fields, "name"), &line, &column), 0);
	CHECK_INT(line, 81);
	CHECK_INT(column, 27);

	/* jansson shares true/false/null: "true" occurs several times here, and
	 * a wrong place is worse than none */
	CHECK_INT(relay_config_where(cfg, json_object_get(route, "create"), &line, &column), -RELAY_ENOTFOUND);
	/* "null" occurs once: unambiguous */
	CHECK_INT(relay_config_where(cfg, json_object_get(fields, "ref"), &line, &column), 0);
	CHECK_INT(line, 81);
	CHECK_INT(column, 49);

	/* nodes that are not this config's */
	stray = json_string("res.partner");
	CHECK_INT(relay_config_where(cfg, stray, &line, &column), -RELAY_ENOTFOUND);
	CHECK_INT(relay_config_where(other, route, &line, &column), -RELAY_ENOTFOUND);
	CHECK_INT(relay_config_where(cfg, NULL, &line, &column), -RELAY_ENOTFOUND);
	CHECK_INT(relay_config_where(NULL, route, &line, &column), -RELAY_ENOTFOUND);
	json_decref(stray);

	/* as route.c will report its errors */
	CHECK_INT(relay_config_error_set(&err, cfg, json_object_get(route, "model"), "unknown model %s", "\"x\""),
	          -RELAY_ECONFIG);
	relay_config_error_format(&err, text, sizeof text);
	CHECK_STR(text, "config/good-full.json:79:16: unknown model \"x\"");
	CHECK_INT(relay_config_error_set(&err, cfg, NULL, "routes: none match"), -RELAY_ECONFIG);
	relay_config_error_format(&err, text, sizeof text);
	CHECK_STR(text, "config/good-full.json: routes: none match");
	CHECK_INT(relay_config_error_set(NULL, cfg, route, "ignored"), -RELAY_ECONFIG);
out:
	relay_config_free(cfg);
	relay_config_free(other);
}

static void
test_loadb(void)
{
	static const char good[] =
		"{\"listen\": [\"0.0.0.0:8080\"],\n"
		" \"sources\": {\"lab\": {\"verify\": {\"scheme\": \"none\"},\n"
		"                      \"dedup\": {\"pointer\": \"/id\"}}},\n"
		" \"routes\": [ {\"m\\u00e9t\\u00e9o\": \"caf\xc3\xa9\", \"k\": \"v\"} ]}";
	static const char bad_utf8[] =
		"{\"sources\": {\"lab\": {\"verify\": {\"scheme\": \"none\"}, \"dedup\": {\"header\": \"X\"},\n"
		"  \"café\": 1, \"unrouted\": \"dead\"}}}";
	struct relay_config *cfg = NULL;
	struct relay_config_error err;
	unsigned line = 0, column = 0;
	json_t *r;
	int rc;

	rc = relay_config_loadb("mem/test.json", good, strlen(good), &cfg, &err);
	CHECK_INT(rc, 0);
	if (rc == 0) {
		CHECK_STR(cfg->path, "mem/test.json");
		CHECK_INT(cfg->n_listen, 1);
		CHECK_INT(cfg->sources[0].require_json, 1);
		CHECK_INT(cfg->sources[0].line, 2);
		CHECK_INT(cfg->sources[0].column, 14);
		/* escaped keys are matched to their jansson nodes; "café" (UTF-8)
		 * before "v" counts as 4 columns, as in jansson's own errors */
		r = json_array_get(cfg->routes, 0);
		CHECK_INT(relay_config_where(cfg, json_object_get(r, "k"), &line, &column), 0);
		CHECK_INT(line, 4);
		CHECK_INT(column, 47);
		CHECK_INT(relay_config_where(cfg, json_object_get(r, "m\xc3\xa9t\xc3\xa9o"), &line, &column), 0);
		CHECK_INT(column, 34);
		relay_config_free(cfg);
	}

	/* columns count characters, not bytes: "café" puts the unknown key at 3 */
	rc = relay_config_loadb("mem/utf8.json", bad_utf8, strlen(bad_utf8), &cfg, &err);
	CHECK_INT(rc, -RELAY_ECONFIG);
	CHECK_INT(err.line, 2);
	CHECK_INT(err.column, 3);
	CHECK_STR(err.text, "sources.lab: unknown key \"caf\\xc3\\xa9\"");

	/* a buffer need not be NUL-terminated; jansson's syntax errors carry places */
	rc = relay_config_loadb("buf", "{\"listen\": [1,]}XXXX", 16, &cfg, &err);
	CHECK_INT(rc, -RELAY_ECONFIG);
	CHECK(cfg == NULL);
	CHECK_STR(err.file, "buf");
	CHECK_INT(err.line, 1);
	CHECK(err.column > 0);
	rc = relay_config_loadb(NULL, "", 0, &cfg, &err);
	CHECK_INT(rc, -RELAY_ECONFIG);
	CHECK_STR(err.file, "");
	CHECK_INT(relay_config_loadb("x", NULL, 5, &cfg, &err), -RELAY_EINVAL);
	CHECK_INT(relay_config_loadb("x", "{}", 2, NULL, &err), -RELAY_EINVAL);
	/* no error struct is fine too */
	CHECK_INT(relay_config_loadb("x", "{}", 2, &cfg, NULL), -RELAY_ECONFIG);
	relay_config_free(NULL);
}

/* jansson skips a NUL byte after a number; the position scanner used to
 * loop on it forever, growing its table until memory ran out (fuzz_config). */
static void
test_nul_byte(void)
{
	static const char text[] =
		"{\"listen\": \"127.0.0.1:0\", \"map_size_mb\": 64\0,\n"
		" \"sources\": {\"lab\": {\"verify\": {\"scheme\": \"none\"}, \"dedup\": {\"header\": \"X\"},\n"
		"  \"bogus\": 1}}}";
	struct relay_config *cfg = NULL;
	struct relay_config_error err;
	int rc;

	rc = relay_config_loadb("nul.json", text, sizeof(text) - 1, &cfg, &err);
	CHECK_INT(rc, -RELAY_ECONFIG);
	CHECK(cfg == NULL);
	/* the places after the NUL are still right */
	CHECK_INT(err.line, 3);
	CHECK_INT(err.column, 3);
	CHECK_STR(err.text, "sources.lab: unknown key \"bogus\"");
}

/* Values quoted into messages are escaped, so they cannot forge log lines. */
static void
test_quoting(void)
{
	static const char text[] =
		"{\"sources\": {\"lab\": {\"verify\": {\"scheme\": \"none\\nFAKE\"}, \"dedup\": {\"header\": \"X\"}}}}";
	struct relay_config *cfg = NULL;
	struct relay_config_error err;

	CHECK_INT(relay_config_loadb("q.json", text, strlen(text), &cfg, &err), -RELAY_ECONFIG);
	CHECK(strchr(err.text, '\n') == NULL);
	CHECK(strstr(err.text, "\"none\\x0aFAKE\"") != NULL);

	/* and long ones are cut short, marked with "..." */
	{
		char big[600], key[301];

		memset(key, 'k', 300);
		key[300] = '\0';
		snprintf(big, sizeof big, "{\"%s\": 1}", key);
		CHECK_INT(relay_config_loadb("q.json", big, strlen(big), &cfg, &err), -RELAY_ECONFIG);
		CHECK(strlen(err.text) < 100);
		CHECK(strstr(err.text, "kkk...\"") != NULL);
	}
}

/* The shipped example must stay valid: its secret names are credentials. */
static void
test_packaged_example(void)
{
	struct relay_config *cfg = NULL;
	struct relay_config_error err;
	int rc;

	setenv("CREDENTIALS_DIRECTORY", "config/example-creds", 1);
	rc = relay_config_load("../../packaging/odoo-relay.json", &cfg, &err);
	unsetenv("CREDENTIALS_DIRECTORY");
	CHECK_INT(rc, 0);
	if (rc) {
		fprintf(stderr, "   %s:%u:%u: %s\n", err.file, err.line, err.column, err.text);
		return;
	}
	CHECK_INT(cfg->n_sources, 6);
	CHECK_INT(cfg->sources[0].verify.n_secrets, 2);
	CHECK(secret_is(&cfg->sources[0].verify.secrets[1], "example-shopify-old.secret-value"));
	CHECK_INT(cfg->n_destinations, 1);
	CHECK(secret_is(&cfg->destinations[0].odoo.api_key, "example-odoo-api.key-value"));
	CHECK_INT(cfg->destinations[0].odoo.configured, 1);
	CHECK(json_array_size(cfg->routes) >= 1);
	CHECK_INT(cfg->n_queries, 1);
	CHECK(cfg->n_queries == 1 && cfg->queries[0].auth.n_secrets == 1
	      && secret_is(&cfg->queries[0].auth.secrets[0], "example-shop-queries.token-value"));
	relay_config_free(cfg);
}

static void
test_listen_shapes(void)
{
	static const struct { const char *addr; int ok; } cases[] = {
		{ "127.0.0.1:0", 1 }, { "0.0.0.0:65535", 1 }, { "[::]:8080", 1 }, { "[::1]:1", 1 },
		{ "relay.example.com:443", 1 }, { "127.0.0.1", 0 }, { "::1:8080", 0 }, { "[::1]8080", 0 },
		{ "[zz]:80", 0 }, { ":8080", 0 }, { "127.0.0.1:", 0 }, { "127.0.0.1:65536", 0 },
		{ "127.0.0.1:80x", 0 }, { "300.1.1.1:80", 0 }, { "-bad-.com:80", 0 }, { "a b:80", 0 },
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct relay_config *cfg = NULL;
		struct relay_config_error err;
		char text[512];
		int rc;

		snprintf(text, sizeof text,
		         "{\"admin_listen\": \"%s\", \"sources\": {\"l\": {\"verify\": {\"scheme\": \"none\"},"
		         " \"dedup\": {\"header\": \"X\"}}}}", cases[i].addr);
		rc = relay_config_loadb("l.json", text, strlen(text), &cfg, &err);
		CHECK_INT(rc, cases[i].ok ? 0 : -RELAY_ECONFIG);
		if (rc != (cases[i].ok ? 0 : -RELAY_ECONFIG))
			fprintf(stderr, "   address %s: %s\n", cases[i].addr, rc ? err.text : "accepted");
		if (!rc) {
			CHECK_INT(cfg->n_listen, 0); /* "listen" left out: socket activation */
			CHECK_STR(cfg->admin_listen, cases[i].addr);
		} else {
			CHECK_INT(err.line, 1);
			CHECK_INT(err.column, 18);
		}
		relay_config_free(cfg);
	}
}

/* ---- destinations --------------------------------------------------------- */

#define DEST_HEAD "{\"listen\": \"127.0.0.1:0\",\n" \
	" \"sources\": {\"lab\": {\"verify\": {\"scheme\": \"none\"}, \"dedup\": {\"header\": \"X\"}}},\n"
#define ODOO_KEYS(db) "\"url\": \"http://127.0.0.1:8069/\", \"database\": \"" db "\", " \
	"\"login\": \"bot\", \"api_key_file\": \"secrets/odoo.key\""

/* Line and column (1-based) of the first needle in text at or after from. */
static void
text_position(const char *text, const char *needle, const char *from, unsigned *line,
              unsigned *column)
{
	const char *hit = strstr(from ? from : text, needle), *p;

	*line = 1;
	*column = 1;
	CHECK(hit != NULL);
	for (p = text; hit && p < hit; p++) {
		if (*p == '\n') {
			(*line)++;
			*column = 1;
		} else {
			(*column)++;
		}
	}
}

static void
test_destinations(void)
{
	static const char text[] = DEST_HEAD
		" \"delivery\": {\"circuit_failures\": 7, \"probe_base_ms\": 300, \"probe_cap_ms\": 9000,\n"
		"   \"backoff\": {\"base_ms\": 200, \"cap_ms\": 50000, \"max_attempts\": 9, \"max_age_s\": 600}},\n"
		" \"destinations\": {\n"
		"  \"company-a\": {\"kind\": \"odoo\", " ODOO_KEYS("a") ", \"module\": \"shop_a\",\n"
		"    \"max_in_flight\": 2, \"rate_per_s\": 5, \"protocol\": \"jsonrpc\"},\n"
		"  \"company_b.prod\": {" ODOO_KEYS("b") ", \"circuit_failures\": 2, \"probe_cap_ms\": 500,\n"
		"    \"backoff\": {\"cap_ms\": 1000}}}}\n";
	struct relay_config *cfg = NULL;
	struct relay_config_error err;
	const struct relay_destination_conf *a, *b;
	int rc;

	rc = relay_config_loadb("config/d.json", text, strlen(text), &cfg, &err);
	CHECK_INT(rc, 0);
	if (rc) {
		fprintf(stderr, "   %u:%u: %s\n", err.line, err.column, err.text);
		return;
	}
	CHECK_INT(cfg->n_destinations, 2);
	a = relay_config_destination(cfg, "company-a");
	b = relay_config_destination(cfg, "company_b.prod");
	CHECK(a == &cfg->destinations[0]); /* in the file's order */
	CHECK(b == &cfg->destinations[1]);
	CHECK(relay_config_destination(cfg, "odoo") == NULL);
	CHECK(relay_config_destination(cfg, "company") == NULL);
	CHECK(relay_config_destination(cfg, NULL) == NULL);
	CHECK(relay_config_destination(NULL, "company-a") == NULL);
	if (!a || !b)
		goto out;
	CHECK_INT(a->kind, RELAY_DEST_ODOO);
	CHECK_INT(b->kind, RELAY_DEST_ODOO); /* "kind" defaults to odoo */
	CHECK_INT(a->line, 6);
	CHECK_INT(a->column, 3);
	/* every key of the top-level "odoo" object, with its defaults */
	CHECK_INT(a->odoo.configured, 1);
	CHECK_STR(a->odoo.url, "http://127.0.0.1:8069");
	CHECK_STR(a->odoo.database, "a");
	CHECK_STR(a->odoo.login, "bot");
	CHECK(secret_is(&a->odoo.api_key, "odoo-key-0c4e9a"));
	CHECK_STR(a->odoo.module, "shop_a");
	CHECK_INT(a->odoo.max_in_flight, 2);
	CHECK(a->odoo.rate_per_s == 5);
	CHECK_INT(a->odoo.protocol, RELAY_PROTO_JSONRPC);
	CHECK_STR(b->odoo.module, "odoo_relay");
	CHECK_INT(b->odoo.max_in_flight, 4);
	CHECK_INT(b->odoo.protocol, RELAY_PROTO_AUTO);
	CHECK_INT(b->odoo.timeout_ms, 180000);
	CHECK_INT(b->odoo.connect_timeout_ms, 10000);
	CHECK_INT(b->odoo.max_response_bytes, 16777216);
	/* circuit and backoff: the delivery section's unless the destination says */
	CHECK_INT(a->circuit_failures, 7);
	CHECK_INT(a->probe_base_ms, 300);
	CHECK_INT(a->probe_cap_ms, 9000);
	CHECK_INT(a->backoff.base_ms, 200);
	CHECK_INT(a->backoff.cap_ms, 50000);
	CHECK_INT(a->backoff.max_attempts, 9);
	CHECK_INT(a->backoff.max_age_s, 600);
	CHECK_INT(b->circuit_failures, 2);
	CHECK_INT(b->probe_base_ms, 300);
	CHECK_INT(b->probe_cap_ms, 500);
	CHECK_INT(b->backoff.base_ms, 200);
	CHECK_INT(b->backoff.cap_ms, 1000);
	CHECK_INT(b->backoff.max_attempts, 9);
	CHECK_INT(b->backoff.max_age_s, 600);
out:
	relay_config_free(cfg);
}

/* The top-level "odoo" object is the destination "odoo", first of all. */
static void
test_destination_odoo_alias(void)
{
	static const char text[] = DEST_HEAD
		" \"destinations\": {\"staging\": {" ODOO_KEYS("staging") "}},\n"
		" \"odoo\": {" ODOO_KEYS("prod") ", \"max_in_flight\": 3}}\n";
	struct relay_config *cfg = NULL;
	struct relay_config_error err;
	int rc;

	rc = relay_config_loadb("config/d.json", text, strlen(text), &cfg, &err);
	CHECK_INT(rc, 0);
	if (rc) {
		fprintf(stderr, "   %u:%u: %s\n", err.line, err.column, err.text);
		return;
	}
	CHECK_INT(cfg->n_destinations, 2);
	CHECK_STR(cfg->destinations[0].name, "odoo");
	CHECK_STR(cfg->destinations[0].odoo.database, "prod");
	CHECK_INT(cfg->destinations[0].odoo.max_in_flight, 3);
	CHECK_INT(cfg->destinations[0].line, 4);
	CHECK_INT(cfg->destinations[0].column, 2);
	CHECK_INT(cfg->destinations[0].circuit_failures, 5);
	CHECK_INT(cfg->destinations[0].backoff.base_ms, 1000);
	CHECK_STR(cfg->destinations[1].name, "staging");
	CHECK_STR(cfg->destinations[1].odoo.database, "staging");
	CHECK(relay_config_destination(cfg, "odoo") == &cfg->destinations[0]);
	CHECK(relay_config_destination(cfg, "staging") == &cfg->destinations[1]);
	relay_config_free(cfg);
}

static void
test_destination_errors(void)
{
	static const struct {
		const char *dests;  /* the text after "destinations": */
		const char *at;     /* where the error points: the first occurrence in the whole text */
		const char *text;
	} cases[] = {
		{ "{\"odoo\": {" ODOO_KEYS("x") "}}", "\"odoo\": {\"url",
		  "destinations: destination \"odoo\" is also the top-level \"odoo\" object: keep one of them" },
		{ "{\"a\": {" ODOO_KEYS("x") ", \"colour\": 1}}", "\"colour\"",
		  "destinations.a: unknown key \"colour\"" },
		{ "{\"a b\": {" ODOO_KEYS("x") "}}", "\"a b\"",
		  "destinations: invalid destination name \"a b\" (expected 1 to 64 of A-Z a-z 0-9 _ . -)" },
		{ "{\"a\": {\"kind\": \"smtp\", " ODOO_KEYS("x") "}}", "\"smtp\"",
		  "destinations.a.kind: unknown kind \"smtp\" (expected one of odoo, http)" },
		{ "{\"a\": {\"kind\": 1, " ODOO_KEYS("x") "}}", "1,",
		  "destinations.a.kind: expected a string, got an integer" },
		{ "{\"a\": {\"url\": \"http://h\", \"login\": \"bot\", \"api_key_file\": \"secrets/odoo.key\"}}",
		  "{\"url\"", "destinations.a: missing required key \"database\"" },
		{ "{\"a\": {" ODOO_KEYS("x") ", \"probe_base_ms\": 5000, \"probe_cap_ms\": 4000}}", "4000",
		  "destinations.a.probe_cap_ms: probe_base_ms (5000) must not exceed probe_cap_ms (4000)" },
		{ "{\"a\": {" ODOO_KEYS("x") ", \"backoff\": {\"base_ms\": 10, \"cap_ms\": 5}}}", "5}",
		  "destinations.a.backoff.cap_ms: base_ms (10) must not exceed cap_ms (5)" },
		{ "{\"a\": {" ODOO_KEYS("x") ", \"backoff\": {\"max_attempts\": 0}}}", "0}",
		  "destinations.a.backoff.max_attempts: 0 is out of range (1..100000)" },
		{ "{\"a\": {" ODOO_KEYS("x") ", \"circuit_failures\": true}}", "true",
		  "destinations.a.circuit_failures: expected an integer, got a boolean" },
		{ "{\"a\": 5}", "5}", "destinations.a: expected an object, got an integer" },
		{ "[]", "[]", "destinations: expected an object, got an array" },
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct relay_config *cfg = (struct relay_config *)&cfg;
		struct relay_config_error err;
		char text[1024];
		unsigned line, column;
		int rc;

		snprintf(text, sizeof text, DEST_HEAD " \"odoo\": {" ODOO_KEYS("prod") "},\n"
		         " \"destinations\": %s}\n", cases[i].dests);
		rc = relay_config_loadb("config/d.json", text, strlen(text), &cfg, &err);
		CHECK_INT(rc, -RELAY_ECONFIG);
		CHECK(cfg == NULL);
		CHECK_STR(err.text, cases[i].text);
		/* the needle is looked for from "destinations" on, its line counted from the top */
		text_position(text, cases[i].at, strstr(text, "\"destinations\""), &line, &column);
		if (err.line != line || err.column != column)
			fprintf(stderr, "   case %zu: %s\n", i, cases[i].text);
		CHECK_INT(err.line, line);
		CHECK_INT(err.column, column);
	}
}

/* good-queries.json: every key of a query, and the defaults. */
static void
test_queries(void)
{
	struct relay_config *cfg = NULL;
	struct relay_config_error err;
	const struct relay_query_conf *q;

	CHECK_INT(relay_config_load("config/good-queries.json", &cfg, &err), 0);
	if (!cfg)
		return;
	CHECK_INT(cfg->n_queries, 2);
	CHECK_INT(cfg->destinations[0].query_max_in_flight, 3);
	q = relay_config_query(cfg, "stock", 5);
	CHECK(q != NULL);
	if (q) {
		CHECK_STR(q->destination, "odoo");
		CHECK_STR(q->model, "product.product");
		CHECK_INT(json_array_size(q->domain), 3);
		CHECK_INT(q->n_fields, 3);
		CHECK_STR(q->order, "default_code asc, id");
		CHECK_INT(q->limit, 20);
		CHECK_INT(q->n_params, 2);
		CHECK_STR(q->params[0].name, "sku");
		CHECK_INT(q->params[0].type, RELAY_QPARAM_STRING);
		CHECK_INT(q->params[0].max_length, 32);
		CHECK(q->params[0].required == 1 && q->params[0].regex != NULL);
		CHECK_INT(q->params[1].type, RELAY_QPARAM_INTEGER);
		CHECK(q->params[1].required == 0 && json_integer_value(q->params[1].default_value) == 0);
		CHECK_INT(q->cache_s, 10);
		CHECK_INT(q->stale_s, 300);
		CHECK_INT(q->cache_entries, 1000);
		CHECK_INT(q->max_bytes, 1048576);
		CHECK(q->rate_per_s == 50 && q->caller_rate_per_s == 5);
		CHECK_INT(q->auth.scheme, RELAY_SIG_TOKEN);
		CHECK_INT(q->public_, 0);
		CHECK_INT(q->line, 17);
		CHECK_INT(q->column, 5);
	}
	q = relay_config_query(cfg, "open-invoices", 13);
	CHECK(q != NULL && q->public_ == 1 && q->auth.scheme == RELAY_SIG_NONE && q->n_params == 0
	      && q->limit == 100 && q->cache_s == 0 && q->timeout_ms == 10000);
	CHECK(relay_config_query(cfg, "nope", 4) == NULL);
	relay_config_free(cfg);
}

int
main(void)
{
	unsetenv("CREDENTIALS_DIRECTORY");
	RUN(test_full);
	RUN(test_minimal_defaults);
	RUN(test_bad_files);
	RUN(test_secret_not_regular);
	RUN(test_error_format);
	RUN(test_credentials_directory);
	RUN(test_where);
	RUN(test_loadb);
	RUN(test_nul_byte);
	RUN(test_quoting);
	RUN(test_packaged_example);
	RUN(test_listen_shapes);
	RUN(test_destinations);
	RUN(test_destination_odoo_alias);
	RUN(test_destination_errors);
	RUN(test_queries);
	return check_done();
}
