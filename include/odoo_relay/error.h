/*
 * odoo-relay: the one error space.
 *
 * Every function of lib/ that can fail returns an int:
 *   0            success
 *   > 0          an errno value, passed through unchanged (ENOMEM, ENOSPC, EIO, ...)
 *   -30799..-30780  an LMDB return code (MDB_MAP_FULL, MDB_NOTFOUND, ...), passed through
 *   -RELAY_E...  one of ours, below
 *
 * relay_strerror() names all three kinds. Codes are stable: tests and the CLI's
 * --json output may print them.
 */
#ifndef ODOO_RELAY_ERROR_H
#define ODOO_RELAY_ERROR_H

/* Ours start well clear of LMDB's range (MDB_KEYEXIST is -30799). */
enum relay_error {
	RELAY_EBASE = 40000,
	RELAY_EINVAL,     /* an argument or input is malformed */
	RELAY_ECONFIG,    /* configuration is invalid; details in the config error */
	RELAY_ENOTFOUND,  /* no such record, source, route, ... */
	RELAY_EEXIST,     /* the key exists already (e.g. a duplicate dedup key) */
	RELAY_ESIG,       /* signature missing or does not verify */
	RELAY_ESTALE,     /* a signed timestamp outside its tolerance window */
	RELAY_EVERSION,   /* a record or store of a version this build cannot read */
	RELAY_ECORRUPT,   /* a record or store that does not decode */
	RELAY_ETOOBIG,    /* an input over its configured limit */
	RELAY_EFULL,      /* the store is full (map full or disk full) */
	RELAY_ECLOSED,    /* the component is shutting down and takes no more work */
	RELAY_EPATH,      /* a JSON pointer or template path is absent in the payload */
	RELAY_EPROTO,     /* a peer answered outside the protocol (not JSON, bad envelope) */
	RELAY_EODOO,      /* Odoo answered with an error object */
	RELAY_ETRANSPORT, /* the network call failed (connect, timeout, reset) */
	RELAY_EBUSY,      /* the resource is held by another process */
	RELAY_ELAST
};

/*
 * relay_strerror - a static, human-readable text for any code of the error
 * space (0, errno, LMDB or ours). Never NULL. Thread-safe.
 */
const char *relay_strerror(int err);

#endif
