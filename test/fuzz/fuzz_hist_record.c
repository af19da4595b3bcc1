/*
 * libFuzzer target for the decoders of lib/hist_record.c: a history entry,
 * an audit record and an edited body, each tried on every input.
 *
 * Beyond "no crash, no out-of-bounds read": each decoder refuses every
 * non-canonical input, so what it accepts must encode back to exactly the
 * same bytes, and a refusal must leave its output zeroed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "odoo_relay/hist_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
same(const unsigned char *buf, size_t len, const uint8_t *data, size_t size)
{
	if (len != size || memcmp(buf, data, size) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct relay_hist_entry hz;
	static const struct relay_audit_entry az;
	static const struct relay_edit ez;
	struct relay_hist_entry h;
	struct relay_audit_entry a;
	struct relay_edit e;
	unsigned char *buf = NULL;
	size_t len = 0;

	if (relay_hist_decode(data, size, &h) == 0) {
		if (relay_hist_encode(&h, &buf, &len) != 0)
			abort();
		same(buf, len, data, size);
		free(buf);
		relay_hist_clear(&h);
	} else if (memcmp(&h, &hz, sizeof(h)) != 0) {
		abort();
	}
	if (relay_audit_decode(data, size, &a) == 0) {
		if (relay_audit_encode(&a, &buf, &len) != 0)
			abort();
		same(buf, len, data, size);
		free(buf);
		relay_audit_clear(&a);
	} else if (memcmp(&a, &az, sizeof(a)) != 0) {
		abort();
	}
	if (relay_edit_decode(data, size, &e) == 0) {
		if (relay_edit_encode(&e, &buf, &len) != 0)
			abort();
		same(buf, len, data, size);
		free(buf);
		relay_edit_clear(&e);
	} else if (memcmp(&e, &ez, sizeof(e)) != 0) {
		abort();
	}
	return 0;
}
