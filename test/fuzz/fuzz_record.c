/*
 * libFuzzer target for relay_record_decode (lib/record.c).
 *
 * Beyond "no crash, no out-of-bounds read": the decoder refuses every
 * non-canonical input, so whatever it accepts must encode back to exactly
 * the same bytes, and a refusal must leave the event zeroed.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
 *       test/fuzz/fuzz_record.c lib/record.c -o fuzz_record
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "odoo_relay/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct relay_event zero;
	struct relay_event ev;
	unsigned char *buf = NULL;
	size_t len = 0;

	if (relay_record_decode(data, size, &ev) != 0) {
		if (memcmp(&ev, &zero, sizeof(ev)) != 0)
			abort();
		return 0;
	}
	if (relay_record_encode(&ev, &buf, &len) != 0 || len != size ||
	    memcmp(buf, data, size) != 0)
		abort();
	free(buf);
	relay_event_clear(&ev);
	return 0;
}
