/*
 * libFuzzer target for the configuration parser (lib/config.c) and the
 * route compiler behind it (lib/route.c): each input is a configuration
 * file, loaded with relay_config_loadb and, when valid, its routes compiled.
 *
 * Beyond the sanitizers it checks the contracts of config.h and route.h:
 * a failure returns a documented code, leaves *out NULL and says what is
 * wrong (a text, and a place inside the input when it names one); a success
 * has every source findable by its name, and compiling routes either works
 * or fails with -RELAY_ECONFIG (or ENOMEM) and a text.
 *
 * Secret files: the seeds (copies of test/fixtures/config and the example
 * configuration) name secret files relative to the configuration, so the
 * file names they use are made, once, in a temporary directory that stands
 * in for the configuration's. An input naming a secret file by an absolute
 * path or through ".." is skipped: opening whatever file the fuzzer names
 * (a FIFO, a device) could block or have effects, and reading files is not
 * what this target tests.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "odoo_relay/config.h"
#include "odoo_relay/error.h"
#include "odoo_relay/route.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every secret file a seed names, relative to the configuration. */
static const char *const secret_files[] = {
	"secrets/shop.secret", "secrets/old.secret", "secrets/github.secret",
	"secrets/stripe.secret", "secrets/token.secret", "secrets/odoo.key",
	"secrets/newline.secret", "creds/shop.secret", "creds/odoo.key",
	"shop.secret", "odoo.key", "shopify-new.secret", "shopify-old.secret",
	"woocommerce.secret", "stripe.secret", "github.secret", "forms.secret",
	"warehouse.token", "odoo-api.key",
};

static char dir[256];
static char name[300];     /* dir/odoo-relay.json: what the input is loaded as */

static void
cleanup(void)
{
	char path[512];
	size_t i;

	for (i = 0; i < sizeof(secret_files) / sizeof(secret_files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, secret_files[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/secrets/empty.secret", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/secrets", dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/creds", dir);
	rmdir(path);
	rmdir(dir);
}

static void
make_file(const char *rel, const char *text)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		perror(path);
		abort(); /* nothing to fuzz without the set-up */
	}
	close(fd);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[512];
	size_t i;

	unsetenv("CREDENTIALS_DIRECTORY");
	/* $TMPDIR: run.sh points it into its work directory, which it removes
	 * even when this process dies */
	snprintf(dir, sizeof(dir), "%s/odoo-relay-fuzz-XXXXXX",
	         getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		abort();
	}
	atexit(cleanup);
	snprintf(path, sizeof(path), "%s/secrets", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/creds", dir);
	mkdir(path, 0700);
	for (i = 0; i < sizeof(secret_files) / sizeof(secret_files[0]); i++)
		make_file(secret_files[i], "fuzz-secret\n");
	make_file("secrets/empty.secret", "");
	snprintf(name, sizeof(name), "%s/odoo-relay.json", dir);
	return 0;
}

static int
names_file(const char *key)
{
	size_t n = strlen(key);

	return (n >= 5 && strcmp(key + n - 5, "_file") == 0) ||
	       (n >= 6 && strcmp(key + n - 6, "_files") == 0);
}

static int
unsafe_path(const json_t *v)
{
	const char *s = json_string_value(v);

	return s && (s[0] == '/' || strstr(s, "..") != NULL);
}

/* Whether any "*_file" or "*_files" member anywhere names a path outside
 * the configuration's directory. */
static int
unsafe(const json_t *v)
{
	const char *key;
	json_t *m, *x;
	size_t i;

	if (json_is_array(v)) {
		json_array_foreach(v, i, m)
			if (unsafe(m))
				return 1;
		return 0;
	}
	if (!json_is_object(v))
		return 0;
	json_object_foreach((json_t *)v, key, m) {
		if (names_file(key)) {
			if (unsafe_path(m))
				return 1;
			json_array_foreach(m, i, x)
				if (unsafe_path(x))
					return 1;
		}
		if (unsafe(m))
			return 1;
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct relay_config *cfg = (struct relay_config *)1;
	struct relay_routes *routes = NULL;
	struct relay_config_error err;
	char msg[1024];
	json_t *doc;
	size_t i;
	int rc;

	/* config.c parses with the same flags: what fails here fails there
	 * before any secret is read */
	doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (doc && unsafe(doc)) {
		json_decref(doc);
		return 0;
	}
	json_decref(doc);

	rc = relay_config_loadb(name, (const char *)data, size, &cfg, &err);
	relay_config_error_format(&err, msg, sizeof(msg));
	if (rc != 0) {
		if (cfg != NULL || err.text[0] == '\0')
			abort();
		if (rc != -RELAY_ECONFIG && rc != ENOENT && rc != EACCES && rc != EISDIR &&
		    rc != ENOTDIR && rc != ENAMETOOLONG && rc != ELOOP && rc != ENOMEM)
			abort();
		return 0;
	}
	if (cfg == NULL)
		abort();
	for (i = 0; i < cfg->n_sources; i++) {
		const char *n = cfg->sources[i].name;

		if (relay_config_source(cfg, n, strlen(n)) != &cfg->sources[i])
			abort();
	}
	memset(&err, 0, sizeof(err));
	rc = relay_routes_compile(cfg, &routes, &err);
	if (rc == 0) {
		for (i = 0; i < relay_routes_count(routes); i++) {
			const struct relay_route *r = relay_routes_at(routes, i);

			if (relay_routes_find(routes, relay_route_name(r)) != r)
				abort();
		}
		relay_routes_free(routes);
	} else if ((rc != -RELAY_ECONFIG && rc != ENOMEM) || err.text[0] == '\0') {
		abort();
	}
	relay_config_free(cfg);
	return 0;
}
