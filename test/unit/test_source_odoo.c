/*
 * Odoo as a source: the url_token scheme, the keys of a source of kind
 * "odoo" in the configuration, and what relay_source_extract takes from
 * Odoo's own post (capture 473 of ../shared/odoo/captures, byte for byte;
 * its digest made with `openssl dgst -sha256` on the capture file).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "check.h"
#include "odoo_relay/config.h"
#include "odoo_relay/error.h"
#include "odoo_relay/signature.h"
#include "odoo_relay/source.h"

/* capture 473: what Odoo 18 posted for one res.partner create */
static const char odoo_body[] =
	"{\"_action\": \"Cap partner webhook(#180)\", \"_id\": 37020, \"_model\": \"res.partner\", "
	"\"email\": \"hook1@example.com\", \"id\": 37020, \"name\": \"Cap Hook Partner\"}";
static const char odoo_digest[] =
	"sha256:829e9d6215b167248a71d802e9396c2e4ba997f02111fbcea2d24baccd362c97";
static const char token[] = "Xk3_9fQ-2mZ.v8wL0pR~";

static const char *url_token; /* what the lookup answers for RELAY_URL_TOKEN_HEADER */

static const char *
hdr(void *ctx, const char *name)
{
	(void)ctx;
	if (strcmp(name, RELAY_URL_TOKEN_HEADER) == 0)
		return url_token;
	if (strcasecmp(name, "Content-Type") == 0)
		return "application/json";
	return NULL;
}

static void
test_url_token_scheme(void)
{
	struct relay_secret s = { (unsigned char *)token, sizeof(token) - 1 };
	struct relay_verify_conf vc = { .scheme = RELAY_SIG_URL_TOKEN, .secrets = &s, .n_secrets = 1 };
	const char *why;
	char out[64];

	CHECK_STR(relay_signature_header(&vc), RELAY_URL_TOKEN_HEADER);
	url_token = token;
	CHECK_INT(relay_signature_verify(&vc, hdr, NULL, NULL, 0, 0, &why), 0);
	url_token = "Xk3_9fQ-2mZ.v8wL0pR";
	CHECK_INT(relay_signature_verify(&vc, hdr, NULL, NULL, 0, 0, &why), -RELAY_ESIG);
	CHECK_STR(why, "token mismatch");
	url_token = NULL;
	CHECK_INT(relay_signature_verify(&vc, hdr, NULL, NULL, 0, 0, &why), -RELAY_ESIG);
	CHECK_STR(why, "missing token in the URL");
	url_token = "";
	CHECK_INT(relay_signature_verify(&vc, hdr, NULL, NULL, 0, 0, &why), -RELAY_ESIG);
	CHECK(why && strstr(why, token) == NULL);
	CHECK_INT(relay_signature_sign(&vc, NULL, 0, 0, out, sizeof(out)), 0);
	CHECK_STR(out, token);
}

static char dir[] = "/tmp/test_source_odoo.XXXXXX";

static int
load(const char *source, struct relay_config **cfg, struct relay_config_error *err)
{
	char path[512], *text = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "%s/t.json", dir);
	if (asprintf(&text, "{\"listen\": \"127.0.0.1:0\",\n \"sources\": {\"odoo-partners\": %s}}\n",
	             source) < 0)
		return ENOMEM;
	f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	free(text);
	*cfg = NULL;
	memset(err, 0, sizeof(*err));
	return relay_config_load(path, cfg, err);
}

static void
test_config(void)
{
	struct relay_config *cfg;
	struct relay_config_error err;
	const struct relay_source_conf *sc;
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/token", dir);
	if ((f = fopen(path, "w"))) {
		fprintf(f, "%s\n", token);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/short", dir);
	if ((f = fopen(path, "w"))) {
		fputs("abc\n", f);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/slash", dir);
	if ((f = fopen(path, "w"))) {
		fputs("abcdefgh/ijklmnopq\n", f);
		fclose(f);
	}
	CHECK_INT(load("{\"kind\": \"odoo\", \"verify\": {\"scheme\": \"url_token\", "
	               "\"secret_file\": \"token\"}}", &cfg, &err), 0);
	sc = cfg ? relay_config_source(cfg, "odoo-partners", 13) : NULL;
	CHECK(sc != NULL);
	if (sc) {
		CHECK_INT(sc->kind, RELAY_SOURCE_ODOO);
		CHECK_INT(sc->dedup_window_s, 600);
		CHECK_INT(sc->topic.kind, RELAY_REF_POINTER);
		CHECK_STR(sc->topic.name, "/_model");
		CHECK_INT(sc->require_json, 1);
		CHECK_INT(sc->verify.secrets[0].len, sizeof(token) - 1);
	}
	relay_config_free(cfg);
	CHECK_INT(load("{\"kind\": \"odoo\", \"verify\": {\"scheme\": \"url_token\", "
	               "\"secret_file\": \"token\"}, \"topic\": {\"pointer\": \"/_action\"}, "
	               "\"dedup_window_s\": 30}", &cfg, &err), 0);
	sc = cfg ? relay_config_source(cfg, "odoo-partners", 13) : NULL;
	CHECK(sc && strcmp(sc->topic.name, "/_action") == 0 && sc->dedup_window_s == 30);
	relay_config_free(cfg);

	CHECK_INT(load("{\"kind\": \"odoo\", \"verify\": {\"scheme\": \"url_token\", "
	               "\"secret_file\": \"token\"}, \"dedup\": {\"pointer\": \"/id\"}}", &cfg, &err),
	          -RELAY_ECONFIG);
	CHECK(strstr(err.text, "digest of the body") != NULL);
	CHECK_INT(load("{\"kind\": \"odoo\", \"verify\": {\"scheme\": \"url_token\", "
	               "\"secret_file\": \"token\"}, \"lane\": {\"pointer\": \"/id\"}}", &cfg, &err),
	          -RELAY_ECONFIG);
	CHECK(strstr(err.text, "_model") != NULL);
	CHECK_INT(load("{\"kind\": \"odoo\", \"verify\": {\"scheme\": \"token\", "
	               "\"secret_file\": \"token\"}}", &cfg, &err), -RELAY_ECONFIG);
	CHECK(strstr(err.text, "url_token") != NULL);
	CHECK_INT(load("{\"kind\": \"odoo\", \"verify\": {\"scheme\": \"url_token\", "
	               "\"secret_file\": \"short\"}}", &cfg, &err), -RELAY_ECONFIG);
	CHECK(strstr(err.text, "at least 16") != NULL);
	CHECK_INT(load("{\"kind\": \"odoo\", \"verify\": {\"scheme\": \"url_token\", "
	               "\"secret_file\": \"slash\"}}", &cfg, &err), -RELAY_ECONFIG);
	CHECK(strstr(err.text, "ijkl") == NULL && strstr(err.text, "abcd") == NULL);
	CHECK_INT(load("{\"kind\": \"erp\", \"verify\": {\"scheme\": \"none\"}, "
	               "\"dedup\": {\"pointer\": \"/id\"}}", &cfg, &err), -RELAY_ECONFIG);
	/* a webhook source (the default kind) still needs its dedup key */
	CHECK_INT(load("{\"verify\": {\"scheme\": \"url_token\", \"secret_file\": \"token\"}}", &cfg,
	               &err), -RELAY_ECONFIG);
	CHECK(strstr(err.text, "dedup") != NULL);
	unlink(path);
	snprintf(path, sizeof(path), "%s/short", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/token", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/t.json", dir);
	unlink(path);
}

static void
test_extract(void)
{
	struct relay_secret s = { (unsigned char *)token, sizeof(token) - 1 };
	struct relay_source_conf sc = {
		.name = "odoo-partners", .kind = RELAY_SOURCE_ODOO, .require_json = 1,
		.verify = { .scheme = RELAY_SIG_URL_TOKEN, .secrets = &s, .n_secrets = 1 },
		.topic = { RELAY_REF_POINTER, "/_model" }, .dedup_window_s = 600,
	};
	struct relay_extract ex;
	const char *why;
	int status;
	char again[sizeof(odoo_body) + 1];

	url_token = token;
	CHECK_INT(relay_source_extract(&sc, hdr, NULL, (const unsigned char *)odoo_body,
	                               strlen(odoo_body), 0, &ex, &status, &why), 0);
	CHECK_STR(ex.dedup_key, odoo_digest);
	CHECK_STR(ex.lane, "res.partner/37020");
	CHECK_STR(ex.topic, "res.partner");
	relay_extract_clear(&ex);

	/* another change of the record: another key, the same lane */
	snprintf(again, sizeof(again), "%s", odoo_body);
	memcpy(strstr(again, "hook1"), "hook2", 5);
	CHECK_INT(relay_source_extract(&sc, hdr, NULL, (const unsigned char *)again, strlen(again), 0,
	                               &ex, &status, &why), 0);
	CHECK(ex.dedup_key && strcmp(ex.dedup_key, odoo_digest) != 0);
	CHECK_STR(ex.lane, "res.partner/37020");
	relay_extract_clear(&ex);

	sc.topic.name = "/_action";
	CHECK_INT(relay_source_extract(&sc, hdr, NULL, (const unsigned char *)odoo_body,
	                               strlen(odoo_body), 0, &ex, &status, &why), 0);
	CHECK_STR(ex.topic, "Cap partner webhook(#180)");
	relay_extract_clear(&ex);

	CHECK_INT(relay_source_extract(&sc, hdr, NULL, (const unsigned char *)"{\"_model\": \"x\"}",
	                               15, 0, &ex, &status, &why), -RELAY_EPATH);
	CHECK_INT(status, 400);
	CHECK(why && strstr(why, "/_id") != NULL);
	url_token = "wrong-token-of-16-bytes";
	CHECK_INT(relay_source_extract(&sc, hdr, NULL, (const unsigned char *)odoo_body,
	                               strlen(odoo_body), 0, &ex, &status, &why), -RELAY_ESIG);
	CHECK_INT(status, 401);
	CHECK(why && strstr(why, token) == NULL && strstr(why, "wrong") == NULL);
}

int
main(void)
{
	CHECK(mkdtemp(dir) != NULL);
	RUN(test_url_token_scheme);
	RUN(test_config);
	RUN(test_extract);
	rmdir(dir);
	return check_done();
}
