/* The one error space: see include/odoo_relay/error.h. */
#include <string.h>

#include <lmdb.h>

#include "odoo_relay/error.h"

static const char *const relay_messages[] = {
	[RELAY_EINVAL - RELAY_EBASE] = "invalid argument or input",
	[RELAY_ECONFIG - RELAY_EBASE] = "invalid configuration",
	[RELAY_ENOTFOUND - RELAY_EBASE] = "not found",
	[RELAY_EEXIST - RELAY_EBASE] = "already exists",
	[RELAY_ESIG - RELAY_EBASE] = "signature missing or invalid",
	[RELAY_ESTALE - RELAY_EBASE] = "signed timestamp outside tolerance",
	[RELAY_EVERSION - RELAY_EBASE] = "unsupported format version",
	[RELAY_ECORRUPT - RELAY_EBASE] = "corrupt record or store",
	[RELAY_ETOOBIG - RELAY_EBASE] = "over the configured limit",
	[RELAY_EFULL - RELAY_EBASE] = "store full",
	[RELAY_ECLOSED - RELAY_EBASE] = "shutting down",
	[RELAY_EPATH - RELAY_EBASE] = "path not present in payload",
	[RELAY_EPROTO - RELAY_EBASE] = "protocol error from peer",
	[RELAY_EODOO - RELAY_EBASE] = "odoo returned an error",
	[RELAY_ETRANSPORT - RELAY_EBASE] = "network transport failed",
	[RELAY_EBUSY - RELAY_EBASE] = "resource busy",
};

const char *
relay_strerror(int err)
{
	if (err == 0)
		return "success";
	if (err > 0)
		return strerror(err); /* glibc's is thread-safe for valid codes */
	if (err >= MDB_KEYEXIST && err <= MDB_LAST_ERRCODE)
		return mdb_strerror(err);
	if (-err > RELAY_EBASE && -err < RELAY_ELAST && relay_messages[-err - RELAY_EBASE])
		return relay_messages[-err - RELAY_EBASE];
	return "unknown error";
}
