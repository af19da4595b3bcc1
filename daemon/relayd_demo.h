/* odoo-relayd --demo: the built-in demo configuration. */
#ifndef RELAYD_DEMO_H
#define RELAYD_DEMO_H

#include <stddef.h>

/*
 * relayd_demo_prepare - write the demo configuration and its secret files
 * into dir (created 0700 if missing) and put the configuration's path into
 * path. The demo listens on 127.0.0.1:8080, takes Shopify-signed customer
 * webhooks on /hooks/shop (secret "demo-secret") and delivers them to the
 * Odoo at odoo_url (database "demo", user admin, key "admin": the bundled
 * emulator's defaults). It also takes Odoo's own webhooks on
 * /hooks/odoo/demo-odoo-hook-token and delivers them, confirmed against
 * Odoo and signed, to http://127.0.0.1:8082/orders (packaging/
 * demo-receiver.py). Returns 0 or an errno.
 */
int relayd_demo_prepare(const char *dir, const char *odoo_url, char *path, size_t n);

#endif
