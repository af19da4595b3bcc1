/*
 * libFuzzer target for the signature header parsers.
 *
 * Input layout: byte 0 picks the scheme, byte 1 the variant (encoding,
 * prefix, token header), then the header value up to the first '\n', then
 * the body. Each input is verified as it is; then a value made by
 * relay_signature_sign for the same body must verify, which checks the
 * parsers against the encoder on every body the fuzzer invents.
 *
 *   clang -fsanitize=fuzzer,address -I include test/fuzz/fuzz_signature.c \
 *         lib/signature.c lib/error.c -lcrypto -llmdb
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "odoo_relay/error.h"
#include "odoo_relay/signature.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1700000000

struct one_header {
	const char *name;
	const char *value;
};

static const char *
lookup(void *ctx, const char *name)
{
	const struct one_header *h = ctx;
	return h->name && strcasecmp(h->name, name) == 0 ? h->value : NULL;
}

static const enum relay_sig_scheme schemes[] = {
	RELAY_SIG_NONE, RELAY_SIG_SHOPIFY, RELAY_SIG_WOOCOMMERCE, RELAY_SIG_GITHUB,
	RELAY_SIG_STRIPE, RELAY_SIG_HMAC_SHA256, RELAY_SIG_TOKEN,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct relay_secret secrets[2] = {
		{ (unsigned char *)"old-secret", 10 },
		{ (unsigned char *)"fuzz-secret", 11 },
	};
	struct relay_verify_conf vc;
	struct one_header h;
	const uint8_t *nl, *body;
	char *value, sig[RELAY_SIGNATURE_MAX + 64];
	size_t vlen, blen;
	const char *why;
	int rc;

	if (size < 2)
		return 0;
	memset(&vc, 0, sizeof(vc));
	vc.scheme = schemes[data[0] % (sizeof(schemes) / sizeof(schemes[0]))];
	vc.secrets = secrets;
	vc.n_secrets = 2;
	vc.encoding = data[1] & 1 ? RELAY_ENC_BASE64 : RELAY_ENC_HEX;
	vc.prefix = data[1] & 2 ? "sha256=" : NULL;
	vc.tolerance_s = 300;
	if (vc.scheme == RELAY_SIG_HMAC_SHA256)
		vc.header = "X-Signature";
	else if (vc.scheme == RELAY_SIG_TOKEN && (data[1] & 4))
		vc.header = "X-Token";
	data += 2;
	size -= 2;

	nl = memchr(data, '\n', size);
	vlen = nl ? (size_t)(nl - data) : size;
	body = nl ? nl + 1 : data + size;
	blen = nl ? size - vlen - 1 : 0;

	/* A header value is a C string: whatever follows a NUL is not seen. */
	value = malloc(vlen + 1);
	if (value == NULL)
		return 0;
	memcpy(value, data, vlen);
	value[vlen] = '\0';

	h.name = relay_signature_header(&vc);
	h.value = value;
	why = NULL;
	rc = relay_signature_verify(&vc, lookup, &h, body, blen, NOW, &why);
	if (rc != 0 && rc != -RELAY_ESIG && rc != -RELAY_ESTALE)
		abort();
	if ((rc == 0) != (why == NULL))
		abort();

	/* Round trip: what the signer makes for this body verifies. */
	secrets[0] = secrets[1];
	vc.n_secrets = 1;
	if (relay_signature_sign(&vc, body, blen, NOW, sig, sizeof(sig)) != 0)
		abort();
	h.value = sig;
	if (relay_signature_verify(&vc, lookup, &h, body, blen, NOW, &why) != 0)
		abort();

	free(value);
	return 0;
}
