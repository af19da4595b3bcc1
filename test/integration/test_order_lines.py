"""An order with lines through the real odoo-relayd into the Odoo emulator,
whose load() treats one2many sub-rows as Odoo 18 does (new lines for
sub-rows without an external ID of their own, lines with one updated in
place, lines left out kept). The route gives each line an external ID
(the inner "id" of "lines"), so the same order sent twice has its lines
once, and an update changes them in place.

Counts and fields are asserted, never the rendered external-ID strings of
the lines: how values are escaped into external IDs is not this test's
business."""
import http.client
import json
import os

from harness import Emulator, Relay, Results, TempDir, base_config, store_ids, wait_for

ORDER_ROUTE = {
    "name": "shop-orders",
    "source": "shop",
    "topics": ["orders/*"],
    "operation": "upsert",
    "model": "sale.order",
    "external_id": "shop_order_{/id}",
    "fields": {
        "partner_id/id": {"external": True, "template": "shop_customer_{/customer/id}"},
        "client_order_ref": {"pointer": "/name"},
    },
    "owns": ["partner_id", "client_order_ref", "order_line"],
    "lines": {
        "field": "order_line",
        "pointer": "/line_items",
        "fields": {
            "id": "shop_line_{/id}",
            "product_id/id": {"external": True, "template": "shop_product_{/sku}"},
            "product_uom_qty": {"pointer": "/quantity"},
            "price_unit": {"pointer": "/price"},
        },
    },
}


def config(tmp, emu):
    d = {"backoff": {"base_ms": 50, "cap_ms": 400, "max_attempts": 25, "max_age_s": 3600},
         "probe_base_ms": 100, "probe_cap_ms": 400, "circuit_failures": 5, "drain_timeout_ms": 2000}
    return base_config(os.path.join(tmp, "state"),
                       odoo={"url": emu.url, "database": "test", "login": "admin",
                             "api_key_file": "odoo.key", "protocol": "jsonrpc"},
                       delivery=d, routes=[ORDER_ROUTE])


def odoo_load(emu, model, fields, rows):
    """A load() straight into the emulator, as an Odoo user would set up data."""
    doc = {"jsonrpc": "2.0", "method": "call", "id": 1,
           "params": {"service": "object", "method": "execute_kw",
                      "args": ["test", 2, "admin", model, "load", [fields, rows], {}]}}
    c = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    try:
        c.request("POST", "/jsonrpc", body=json.dumps(doc).encode(),
                  headers={"Content-Type": "application/json"})
        result = json.loads(c.getresponse().read())["result"]
    finally:
        c.close()
    if result["messages"] or not result["ids"]:
        raise AssertionError("setting up %s failed: %r" % (model, result))
    return result["ids"]


def seed(emu):
    # module odoo_relay: where the route's "external" templates point
    skus = odoo_load(emu, "product.product", ["id", "name", "default_code", "list_price"],
                     [["odoo_relay.shop_product_SKU1", "Widget One", "SKU1", "19.90"],
                      ["odoo_relay.shop_product_SKU2", "Widget Two", "SKU2", "5.00"]])
    odoo_load(emu, "res.partner", ["id", "name"], [["odoo_relay.shop_customer_7", "Ada Lovelace"]])
    return skus


def order(qty1=2, price1=18.0):
    return {"id": 5001, "name": "SHOP5001", "customer": {"id": 7},
            "line_items": [{"id": 90001, "sku": "SKU1", "quantity": qty1, "price": price1},
                           {"id": 90002, "sku": "SKU2", "quantity": 1, "price": 5.0}]}


def orders(emu):
    return [o for o in emu.records("sale.order") if o.get("client_order_ref") == "SHOP5001"]


def lines(emu, order_id):
    return sorted((l for l in emu.records("sale.order.line") if l.get("order_id") == order_id),
                  key=lambda l: l["id"])


def queue_empty(r):
    return not store_ids(r.cfg["state_dir"])


def test_order_sent_twice_has_its_lines_once(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = None
        try:
            sku1, sku2 = seed(emu)
            r = Relay(tmp, config(tmp, emu))
            st, _, _ = r.post_shop(order(), "wh-order-1", topic="orders/create")
            t.eq(st, 202, "first webhook accepted")
            wait_for(lambda: queue_empty(r) and orders(emu), what="order delivered")
            so = orders(emu)
            t.eq(len(so), 1, "one order")
            first = lines(emu, so[0]["id"])
            t.eq([(l["product_id"], l["product_uom_qty"], l["price_unit"]) for l in first],
                 [(sku1, 2.0, 18.0), (sku2, 1.0, 5.0)], "two lines as sent")
            t.check(all(len(l.get("xmlids", [])) == 1 for l in first),
                    "each line has an external id of its own")

            # the same order again under a new webhook id (a resend)
            st, _, _ = r.post_shop(order(), "wh-order-2", topic="orders/create")
            t.eq(st, 202, "second webhook accepted")
            wait_for(lambda: queue_empty(r) and
                     r.metric("relay_delivered_total", 'route="shop-orders"') == 2.0,
                     what="second delivery")
            t.eq(len(orders(emu)), 1, "still one order")
            again = lines(emu, so[0]["id"])
            t.eq(len(again), 2, "its lines once, not twice")
            t.eq([l["id"] for l in again], [l["id"] for l in first], "the same line records")
            t.eq(len(emu.records("sale.order.line")), 2, "no line anywhere else")

            # an update of one line changes it in place
            st, _, _ = r.post_shop(order(qty1=3, price1=17.5), "wh-order-3", topic="orders/updated")
            t.eq(st, 202, "update accepted")
            wait_for(lambda: queue_empty(r) and
                     r.metric("relay_delivered_total", 'route="shop-orders"') == 3.0,
                     what="update delivered")
            upd = lines(emu, so[0]["id"])
            t.eq([(l["id"], l["product_uom_qty"], l["price_unit"]) for l in upd],
                 [(first[0]["id"], 3.0, 17.5), (first[1]["id"], 1.0, 5.0)],
                 "line updated in place, the other unchanged")
        finally:
            if r:
                r.stop()
            emu.stop()


if __name__ == "__main__":
    t = Results()
    t.run(test_order_sent_twice_has_its_lines_once)
    t.done()
