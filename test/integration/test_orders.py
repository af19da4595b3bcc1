"""Shop orders into sale.order through the real odoo-relayd and the Odoo
emulator (which answers as captures 600-699 show Odoo 18 with sales):
products found by SKU at delivery time ("find"), lines with external IDs
of their own, the order confirmed by a follow-up step that reads the
state first ("then"), refusals of what Odoo would refuse ("refuse"), and
a cancel.

What each test proves is in its name; calls are counted on the
emulator's /control/stats."""
import http.client
import json
import os
import re

import harness
from harness import Emulator, Relay, Results, TempDir, base_config, store_ids


def wait_for(cond, timeout=60.0, what="condition", interval=0.02):
    """harness.wait_for with room for slow runs (valgrind): conditions are
    polled, so a generous bound costs nothing when things go well."""
    return harness.wait_for(cond, timeout=timeout, what=what, interval=interval)

FIND_SKU = {"find": {"model": "product.product", "where": {"default_code": "/sku"}}}

ORDER_ROUTE = {
    "name": "shop-orders",
    "source": "shop",
    "topics": ["orders/create", "orders/updated"],
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
            "product_id/.id": FIND_SKU,
            "product_uom_qty": {"pointer": "/quantity"},
            "price_unit": {"pointer": "/price"},
        },
    },
    "then": {"call": "action_confirm", "when": {"state": ["draft", "sent"]}},
    "batch": {"max_rows": 100, "max_wait_ms": 20},
}

CANCEL_ROUTE = {
    "name": "shop-cancel",
    "source": "shop",
    "topics": ["orders/cancelled"],
    "operation": "upsert",
    "model": "sale.order",
    "external_id": "shop_order_{/id}",
    "create": False,
    "fields": {"client_order_ref": {"pointer": "/name"}},
    "then": {"call": "action_cancel", "when": {"state": ["draft", "sent", "sale"]},
             "context": {"disable_cancel_warning": True}},
}


def config(tmp, emu, routes=None, retries=0, retry_ms=60000):
    d = {"backoff": {"base_ms": 50, "cap_ms": 400, "max_attempts": 25, "max_age_s": 3600},
         "probe_base_ms": 100, "probe_cap_ms": 400, "circuit_failures": 50,
         "drain_timeout_ms": 2000}
    rs = []
    for r in routes or [ORDER_ROUTE, CANCEL_ROUTE]:
        r = dict(r)
        r["permanent_retries"] = retries
        r["permanent_retry_delay_ms"] = retry_ms
        rs.append(r)
    return base_config(os.path.join(tmp, "state"),
                       odoo={"url": emu.url, "database": "test", "login": "admin",
                             "api_key_file": "odoo.key", "protocol": "jsonrpc"},
                       delivery=d, routes=rs)


def odoo_load(emu, model, fields, rows):
    """A load() straight into the emulator, as an Odoo user would set up data."""
    doc = {"jsonrpc": "2.0", "method": "call", "id": 1,
           "params": {"service": "object", "method": "execute_kw",
                      "args": ["test", 2, "admin", model, "load", [fields, rows], {}]}}
    c = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=30)
    try:
        c.request("POST", "/jsonrpc", body=json.dumps(doc).encode(),
                  headers={"Content-Type": "application/json"})
        result = json.loads(c.getresponse().read())["result"]
    finally:
        c.close()
    if result["messages"] or not result["ids"]:
        raise AssertionError("setting up %s failed: %r" % (model, result))
    return result["ids"]


def odoo_call(emu, model, method, args, kwargs=None):
    doc = {"jsonrpc": "2.0", "method": "call", "id": 1,
           "params": {"service": "object", "method": "execute_kw",
                      "args": ["test", 2, "admin", model, method, args, kwargs or {}]}}
    c = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=30)
    try:
        c.request("POST", "/jsonrpc", body=json.dumps(doc).encode(),
                  headers={"Content-Type": "application/json"})
        return json.loads(c.getresponse().read())
    finally:
        c.close()


def seed_products(emu, n=3):
    rows = [["shop_setup.sku%d" % i, "Widget %d" % i, "SKU-%d" % i, "%d.00" % (10 + i)]
            for i in range(1, n + 1)]
    # two products share a reference: Odoo would pick the first without a word
    rows += [["shop_setup.dup_a", "Dup A", "SKU-DUP", "7.00"],
             ["shop_setup.dup_b", "Dup B", "SKU-DUP", "8.00"]]
    return odoo_load(emu, "product.product", ["id", "name", "default_code", "list_price"], rows)


def seed_customers(emu, ids):
    return odoo_load(emu, "res.partner", ["id", "name"],
                     [["odoo_relay.shop_customer_%d" % i, "Customer %d" % i] for i in ids])


def order(oid, customer=7, skus=("SKU-1", "SKU-2"), qty=2, name=None):
    return {"id": oid, "name": name or "SHOP%d" % oid, "customer": {"id": customer},
            "line_items": [{"id": oid * 10 + k, "sku": sku, "quantity": qty + k,
                            "price": 10.0 + k} for k, sku in enumerate(skus)]}


def orders_named(emu, name):
    return [o for o in emu.records("sale.order") if o.get("client_order_ref") == name]


def lines_of(emu, order_id):
    return sorted((l for l in emu.records("sale.order.line") if l.get("order_id") == order_id),
                  key=lambda l: l["id"])


def calls(emu, method):
    return emu.stats()["calls_by_method"].get(method, 0)


def queue_empty(r):
    return not store_ids(r.cfg["state_dir"])


def delivered(r, n, route="shop-orders"):
    return r.metric("relay_delivered_total", 'route="%s"' % route) == float(n)


def test_find_cache_per_context(t):
    """What a find found under one route's context (a company, a language)
    is not what another route's context would find: the cache keeps them
    apart, and each context searches once."""
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = None
        try:
            seed_products(emu)
            seed_customers(emu, [7])
            eu = dict(ORDER_ROUTE, name="orders-eu", topics=["orders/create"],
                      context={"allowed_company_ids": [1]})
            us = dict(ORDER_ROUTE, name="orders-us", topics=["orders/updated"],
                      external_id="shop_us_order_{/id}",
                      lines=dict(ORDER_ROUTE["lines"], fields=dict(
                          ORDER_ROUTE["lines"]["fields"], id="shop_us_line_{/id}")),
                      context={"allowed_company_ids": [2]})
            r = Relay(tmp, config(tmp, emu, routes=[eu, us]))
            r.post_shop(order(6001), "ctx-1", topic="orders/create")
            wait_for(lambda: queue_empty(r) and delivered(r, 1, "orders-eu"), what="the first route's order")
            t.eq(calls(emu, "product.product.search_read"), 1, "searched under its context")
            r.post_shop(order(6002), "ctx-2", topic="orders/updated")
            wait_for(lambda: queue_empty(r) and delivered(r, 1, "orders-us"), what="the second route's order")
            t.eq(calls(emu, "product.product.search_read"), 2,
                 "searched again under the other context, not taken from the first's cache")
            r.post_shop(order(6003), "ctx-3", topic="orders/create")
            wait_for(lambda: queue_empty(r) and delivered(r, 2, "orders-eu"), what="the first route again")
            t.eq(calls(emu, "product.product.search_read"), 2, "each context's own cache")
        finally:
            if r:
                r.stop()
            emu.stop()


def test_order_twice_lines_once_confirmed_once(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = None
        try:
            prods = seed_products(emu)
            seed_customers(emu, [7])
            r = Relay(tmp, config(tmp, emu))
            st, _, _ = r.post_shop(order(5001), "wh-1", topic="orders/create")
            t.eq(st, 202, "webhook accepted")
            wait_for(lambda: queue_empty(r) and delivered(r, 1), what="order delivered")
            so = orders_named(emu, "SHOP5001")
            t.eq(len(so), 1, "one order")
            t.eq(so[0]["state"], "sale", "confirmed by the follow-up step")
            ls = lines_of(emu, so[0]["id"])
            t.eq([(l["product_id"], l["product_uom_qty"], l["price_unit"]) for l in ls],
                 [(prods[0], 2.0, 10.0), (prods[1], 3.0, 11.0)],
                 "products found by SKU, quantities with their prices")
            t.eq(calls(emu, "product.product.search_read"), 1, "one search for both SKUs")
            t.eq(calls(emu, "sale.order.action_confirm"), 1, "confirmed once")
            t.check("action_confirm: state draft" in r.logs(), "the step and the state it "
                    "found are in the log")

            # the same order again (a resend, and orders/updated): lines once,
            # no second confirmation, SKUs from the cache
            st, _, _ = r.post_shop(order(5001), "wh-2", topic="orders/updated")
            t.eq(st, 202, "resend accepted")
            wait_for(lambda: queue_empty(r) and delivered(r, 2), what="resend delivered")
            t.eq(len(orders_named(emu, "SHOP5001")), 1, "still one order")
            t.eq([l["id"] for l in lines_of(emu, so[0]["id"])], [l["id"] for l in ls],
                 "the same two lines")
            t.eq(calls(emu, "sale.order.action_confirm"), 1, "not confirmed again")
            t.eq(calls(emu, "product.product.search_read"), 1, "SKUs from the cache")
            t.check("action_confirm skipped: state Sales Order" in r.logs() or
                    "action_confirm skipped: state sale" in r.logs(),
                    "the skipped step and the state found are logged")
            t.eq(store_ids(r.cfg["state_dir"], "dead"), [], "nothing dead")
        finally:
            if r:
                r.stop()
            emu.stop()


def test_unknown_and_ambiguous_sku_dead_lettered(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = None
        try:
            seed_products(emu)
            seed_customers(emu, [7])
            r = Relay(tmp, config(tmp, emu))
            r.post_shop(order(6001, skus=("SKU-1", "SKU-9")), "wh-u", topic="orders/create")
            r.post_shop(order(6002, skus=("SKU-DUP",)), "wh-a", topic="orders/create")
            state = r.cfg["state_dir"]
            wait_for(lambda: len(store_ids(state, "dead")) == 2, what="two dead letters")
            reasons = sorted(d["dead_reason"] or "" for d in store_ids(state, "dead"))
            t.check(any("no product.product with default_code 'SKU-9'" in x for x in reasons),
                    "unknown SKU named (%r)" % reasons)
            t.check(any("2 product.product records with default_code 'SKU-DUP'" in x
                        for x in reasons), "ambiguous SKU named, not guessed (%r)" % reasons)
            t.eq(orders_named(emu, "SHOP6001") + orders_named(emu, "SHOP6002"), [],
                 "neither order written")
            t.eq(calls(emu, "sale.order.load"), 0, "nothing sent to load()")
        finally:
            if r:
                r.stop()
            emu.stop()


def test_confirmed_then_killed_replays_without_error(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = None
        try:
            seed_products(emu)
            seed_customers(emu, [7])
            cfg = config(tmp, emu)
            # the relay waits for Odoo longer than the test can last: only
            # an answer could end the call, never a timeout
            cfg["odoo"]["timeout_ms"] = 3600000
            r = Relay(tmp, cfg)
            r.wait_delivering()
            # the confirmation is applied in Odoo at once, and its answer
            # held (600 s): the relay cannot hear of it before it is killed,
            # however slow the machine
            emu.fault(mode="slow", delay_ms=600000, method="sale.order.action_confirm")
            r.post_shop(order(7001), "wh-k", topic="orders/create")
            wait_for(lambda: any(o["state"] == "sale" for o in orders_named(emu, "SHOP7001")),
                     timeout=60, what="order confirmed in Odoo")
            t.eq(calls(emu, "sale.order.action_confirm"), 1, "the confirmation reached Odoo")
            # so the relay has recorded no outcome: had it recorded one
            # without the confirmation's answer, the replay below would test
            # nothing
            t.eq(delivered(r, 0), True, "the relay has not recorded it")
            t.eq(len(store_ids(r.cfg["state_dir"])), 1, "the event is still queued")
            r.kill9()
            emu.fault(mode="none")
            t.eq(len(store_ids(r.cfg["state_dir"])), 1, "the event is still queued after the kill")
            r.start()
            wait_for(lambda: queue_empty(r), timeout=60, what="replayed event done")
            t.eq(calls(emu, "sale.order.action_confirm"), 1, "confirmed once, never again")
            t.eq(store_ids(r.cfg["state_dir"], "dead"), [], "not dead-lettered")
            so = orders_named(emu, "SHOP7001")
            t.eq(len(so), 1, "one order")
            t.eq(len(lines_of(emu, so[0]["id"])), 2, "its two lines once")
            t.check("action_confirm skipped" in r.logs(), "the replay skipped the step")
        finally:
            if r:
                r.stop()
            emu.stop()


def test_order_before_customer(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = None
        try:
            seed_products(emu)
            r = Relay(tmp, config(tmp, emu, retries=100, retry_ms=100))
            r.post_shop(order(8001, customer=42), "wh-c", topic="orders/create")
            wait_for(lambda: r.metric("relay_retries_total") >= 1 or
                     calls(emu, "sale.order.load") >= 2, what="order refused for its customer")
            t.eq(orders_named(emu, "SHOP8001"), [], "not written without its customer")
            seed_customers(emu, [42])
            wait_for(lambda: queue_empty(r), timeout=60, what="order applied")
            so = orders_named(emu, "SHOP8001")
            t.eq(len(so), 1, "applied once the customer exists")
            t.eq(so[0]["state"], "sale", "and confirmed")
            t.eq(store_ids(r.cfg["state_dir"], "dead"), [], "nothing dead")
        finally:
            if r:
                r.stop()
            emu.stop()


def test_order_without_customer_dead_lettered_after_retries(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = None
        try:
            seed_products(emu)
            r = Relay(tmp, config(tmp, emu, retries=2, retry_ms=50))
            r.post_shop(order(8101, customer=43), "wh-n", topic="orders/create")
            state = r.cfg["state_dir"]
            wait_for(lambda: store_ids(state, "dead"), timeout=60, what="dead letter")
            dead = store_ids(state, "dead")
            t.check("shop_customer_43" in (dead[0]["dead_reason"] or ""),
                    "the reason names the missing customer (%r)" % dead[0]["dead_reason"])
            t.eq(calls(emu, "sale.order.load"), 3, "tried, then retried twice")
        finally:
            if r:
                r.stop()
            emu.stop()


def test_cancel(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = None
        try:
            seed_products(emu)
            seed_customers(emu, [7])
            r = Relay(tmp, config(tmp, emu))
            r.post_shop(order(9001), "wh-o", topic="orders/create")
            wait_for(lambda: queue_empty(r) and delivered(r, 1), what="order delivered")
            r.post_shop({"id": 9001, "name": "SHOP9001"}, "wh-x", topic="orders/cancelled")
            wait_for(lambda: queue_empty(r) and delivered(r, 1, "shop-cancel"),
                     what="cancel delivered")
            so = orders_named(emu, "SHOP9001")
            t.eq(so[0]["state"], "cancel", "the confirmed order is cancelled")
            # a duplicate cancel finds it cancelled: nothing called
            r.post_shop({"id": 9001, "name": "SHOP9001"}, "wh-x2", topic="orders/cancelled")
            wait_for(lambda: queue_empty(r) and delivered(r, 2, "shop-cancel"),
                     what="second cancel delivered")
            t.eq(calls(emu, "sale.order.action_cancel"), 1, "cancelled once")
            # a cancel of an order Odoo never had: the route may not create
            r.post_shop({"id": 9002, "name": "SHOP9002"}, "wh-x3", topic="orders/cancelled")
            wait_for(lambda: store_ids(r.cfg["state_dir"], "dead"), what="dead letter")
            t.eq(orders_named(emu, "SHOP9002"), [], "nothing created by a cancel")
        finally:
            if r:
                r.stop()
            emu.stop()


def guarded_route(removed):
    r = dict(ORDER_ROUTE)
    r["refuse"] = {"line_model": "sale.order.line", "removed_lines": removed}
    return r


def test_locked_order_refused_before_sending(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = None
        try:
            seed_products(emu)
            seed_customers(emu, [7])
            r = Relay(tmp, config(tmp, emu, routes=[guarded_route("fail")]))
            r.post_shop(order(10001), "wh-l1", topic="orders/create")
            wait_for(lambda: queue_empty(r) and delivered(r, 1), what="order delivered")
            so = orders_named(emu, "SHOP10001")[0]
            t.eq(so["state"], "sale", "confirmed")
            odoo_call(emu, "sale.order", "action_lock", [[so["id"]]])
            loads = calls(emu, "sale.order.load")
            r.post_shop(order(10001, qty=5), "wh-l2", topic="orders/updated")
            state = r.cfg["state_dir"]
            wait_for(lambda: store_ids(state, "dead"), what="dead letter")
            reason = store_ids(state, "dead")[0]["dead_reason"] or ""
            t.check("is locked in Odoo" in reason and "unlock it in Odoo" in reason,
                    "a clear reason (%r)" % reason)
            t.eq(calls(emu, "sale.order.load"), loads, "no load sent to the locked order")
            t.eq([l["product_uom_qty"] for l in lines_of(emu, so["id"])], [2.0, 3.0],
                 "lines unchanged")
        finally:
            if r:
                r.stop()
            emu.stop()


def test_removed_line_of_confirmed_order(t):
    for policy in ("fail", "zero"):
        with TempDir() as tmp:
            emu = Emulator(tmp)
            r = None
            try:
                seed_products(emu)
                seed_customers(emu, [7])
                r = Relay(tmp, config(tmp, emu, routes=[guarded_route(policy)]))
                r.post_shop(order(11001, skus=("SKU-1", "SKU-2", "SKU-3")), "wh-r1",
                            topic="orders/create")
                wait_for(lambda: queue_empty(r) and delivered(r, 1), what="order delivered")
                so = orders_named(emu, "SHOP11001")[0]
                t.eq(so["state"], "sale", "confirmed")
                # the shop drops the last line
                r.post_shop(order(11001, skus=("SKU-1", "SKU-2")), "wh-r2",
                            topic="orders/updated")
                state = r.cfg["state_dir"]
                ls = lambda: lines_of(emu, so["id"])
                if policy == "fail":
                    wait_for(lambda: store_ids(state, "dead"), what="dead letter")
                    reason = store_ids(state, "dead")[0]["dead_reason"] or ""
                    t.check("1 line of confirmed sale.order" in reason and
                            "no longer in the event" in reason,
                            "removal refused with a clear reason (%r)" % reason)
                    t.eq([l["product_uom_qty"] for l in ls()], [2.0, 3.0, 4.0],
                         "fail: lines unchanged")
                else:
                    wait_for(lambda: queue_empty(r) and delivered(r, 2), what="update delivered")
                    t.eq([l["product_uom_qty"] for l in ls()], [2.0, 3.0, 0.0],
                         "zero: the removed line has quantity 0")
                    t.eq(ls()[2]["price_unit"], 12.0, "and keeps its price")
                    t.eq(store_ids(state, "dead"), [], "zero: nothing dead")
                    t.check("1 removed line set to quantity 0" in r.logs(),
                            "zero: what was done is in the log")
            finally:
                if r:
                    r.stop()
                emu.stop()


def by_name_route(warnings):
    r = json.loads(json.dumps(ORDER_ROUTE))
    del r["lines"]["fields"]["product_id/.id"]
    r["lines"]["fields"]["product_id"] = {"pointer": "/sku"}  # Odoo's own name matching
    r["warnings"] = warnings
    return r


def test_load_warnings_recorded_or_failed(t):
    for policy in ("record", "fail"):
        with TempDir() as tmp:
            emu = Emulator(tmp)
            r = None
            try:
                prods = seed_products(emu)
                seed_customers(emu, [7])
                r = Relay(tmp, config(tmp, emu, routes=[by_name_route(policy)]))
                r.post_shop(order(12001, skus=("SKU-DUP",)), "wh-w", topic="orders/create")
                state = r.cfg["state_dir"]
                if policy == "record":
                    wait_for(lambda: queue_empty(r) and delivered(r, 1), what="delivered")
                    log = r.logs()
                    t.check("written with a warning from Odoo: Found multiple matches" in log,
                            "the warning is logged")
                    t.check("delivered (warning: Found multiple matches" in log,
                            "and kept with the outcome")
                    so = orders_named(emu, "SHOP12001")[0]
                    t.eq(lines_of(emu, so["id"])[0]["product_id"], prods[3],
                         "Odoo's silent first pick, which is why it is recorded")
                else:
                    wait_for(lambda: store_ids(state, "dead"), what="dead letter")
                    reason = store_ids(state, "dead")[0]["dead_reason"] or ""
                    t.check("fails on warnings" in reason and "Found multiple matches" in reason,
                            "the warning fails the event (%r)" % reason)
            finally:
                if r:
                    r.stop()
                emu.stop()


def test_deleted_product_searched_again(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = None
        try:
            prods = seed_products(emu)
            seed_customers(emu, [7])
            r = Relay(tmp, config(tmp, emu, retries=1, retry_ms=100))
            r.post_shop(order(13001, skus=("SKU-1",)), "wh-d1", topic="orders/create")
            wait_for(lambda: queue_empty(r) and delivered(r, 1), what="first order delivered")
            t.eq(calls(emu, "product.product.search_read"), 1, "SKU-1 searched once")
            # the product goes in Odoo while its id is cached
            res = odoo_call(emu, "product.product", "unlink", [[prods[0]]])
            t.eq(res.get("result"), True, "product deleted")
            r.post_shop(order(13002, skus=("SKU-1",)), "wh-d2", topic="orders/create")
            state = r.cfg["state_dir"]
            wait_for(lambda: store_ids(state, "dead"), what="dead letter")
            reason = store_ids(state, "dead")[0]["dead_reason"] or ""
            t.check("no product.product with default_code 'SKU-1'" in reason,
                    "the retry searched again and says what is missing (%r)" % reason)
            t.eq(calls(emu, "product.product.search_read"), 2,
                 "the failure naming the cached id dropped it")
        finally:
            if r:
                r.stop()
            emu.stop()


def test_failed_step_says_which_and_state(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = None
        try:
            seed_products(emu)
            seed_customers(emu, [7])
            # Odoo refuses the confirmation (a rule of its own)
            emu.fault(mode="validation", model="sale.order", field="state", value="sale",
                      message="Orders from this shop need a manual check")
            r = Relay(tmp, config(tmp, emu))
            r.post_shop(order(14001), "wh-f", topic="orders/create")
            state = r.cfg["state_dir"]
            wait_for(lambda: store_ids(state, "dead"), what="dead letter")
            reason = store_ids(state, "dead")[0]["dead_reason"] or ""
            t.check("action_confirm: state draft" in reason and "manual check" in reason,
                    "the reason names the step, the state found and Odoo's message (%r)"
                    % reason)
            t.eq(orders_named(emu, "SHOP14001")[0]["state"], "draft", "written, not confirmed")
        finally:
            if r:
                r.stop()
            emu.stop()


def test_find_giving_external_id(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = None
        try:
            prods = seed_products(emu)
            seed_customers(emu, [7])
            route = json.loads(json.dumps(ORDER_ROUTE))
            del route["lines"]["fields"]["product_id/.id"]
            route["lines"]["fields"]["product_id/id"] = FIND_SKU
            r = Relay(tmp, config(tmp, emu, routes=[route]))
            r.post_shop(order(15001), "wh-x1", topic="orders/create")
            wait_for(lambda: queue_empty(r) and delivered(r, 1), what="order delivered")
            so = orders_named(emu, "SHOP15001")[0]
            t.eq([l["product_id"] for l in lines_of(emu, so["id"])], prods[:2],
                 "products by their external IDs")
            t.eq(calls(emu, "ir.model.data.search_read"), 1,
                 "one search of the external IDs for both")
            r.post_shop(order(15002), "wh-x2", topic="orders/create")
            wait_for(lambda: queue_empty(r) and delivered(r, 2), what="second order delivered")
            t.eq((calls(emu, "product.product.search_read"),
                  calls(emu, "ir.model.data.search_read")), (1, 1), "then from the cache")
        finally:
            if r:
                r.stop()
            emu.stop()


def test_ambiguous_sku_picked_by_explicit_order(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = None
        try:
            prods = seed_products(emu)
            seed_customers(emu, [7])
            route = json.loads(json.dumps(ORDER_ROUTE))
            route["lines"]["fields"]["product_id/.id"] = {"find": {
                "model": "product.product", "where": {"default_code": "/sku"},
                "multiple": "first", "order": "id desc"}}
            r = Relay(tmp, config(tmp, emu, routes=[route]))
            r.post_shop(order(16001, skus=("SKU-DUP",)), "wh-p", topic="orders/create")
            wait_for(lambda: queue_empty(r) and delivered(r, 1), what="order delivered")
            so = orders_named(emu, "SHOP16001")[0]
            t.eq(lines_of(emu, so["id"])[0]["product_id"], prods[4],
                 "the first by the configured order (the newest), not Odoo's guess")
        finally:
            if r:
                r.stop()
            emu.stop()


def test_batch_of_orders_steps_and_warnings(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = None
        try:
            seed_products(emu)
            seed_customers(emu, [7])
            r = Relay(tmp, config(tmp, emu, routes=[by_name_route("record")]))
            r.post_shop(order(17000, skus=("SKU-DUP",)), "wh-b0", topic="orders/create")
            wait_for(lambda: queue_empty(r) and delivered(r, 1), what="first order delivered")
            before = emu.stats()["calls_by_method"]
            # queued while paused, they go in one load: 17000 again and four new
            r.ctl("pause")
            for n in range(5):
                r.post_shop(order(17000 + n, skus=("SKU-DUP",)), "wh-b%d-again" % n,
                            topic="orders/updated")
            wait_for(lambda: len(store_ids(r.cfg["state_dir"])) == 5, what="5 stored")
            r.ctl("resume")
            wait_for(lambda: queue_empty(r) and delivered(r, 6), what="batch delivered")
            after = emu.stats()["calls_by_method"]
            diff = lambda m: after.get(m, 0) - before.get(m, 0)
            t.eq(diff("sale.order.load"), 1, "one load for the five")
            t.eq(diff("sale.order.read"), 1, "one read of their states")
            t.eq(diff("sale.order.action_confirm"), 4, "the four new confirmed, not the old one")
            log = r.logs()
            t.eq(log.count("written with a warning from Odoo"), 6, "each row's warning logged")
            t.check("delivered (warning: Found multiple matches for value \"SKU-DUP\" in field "
                    "\"Order Lines\" (2 matches); action_confirm skipped: state sale)" in log,
                    "the old one: its warning and the skipped step in its outcome")
            t.eq(len(emu.records("sale.order")), 5, "five orders")
            t.eq(len(emu.records("sale.order.line")), 5, "one line each")
        finally:
            if r:
                r.stop()
            emu.stop()


def test_batch_refusals_read_once(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = None
        try:
            seed_products(emu)
            seed_customers(emu, [7])
            r = Relay(tmp, config(tmp, emu, routes=[guarded_route("zero")]))
            skus = ("SKU-1", "SKU-2", "SKU-3")
            for n in range(3):
                r.post_shop(order(18000 + n, skus=skus), "wh-g%d" % n, topic="orders/create")
            wait_for(lambda: queue_empty(r) and delivered(r, 3), what="three orders delivered")
            so = {n: orders_named(emu, "SHOP%d" % (18000 + n))[0]["id"] for n in range(3)}
            odoo_call(emu, "sale.order", "action_lock", [[so[0]]])
            before = emu.stats()["calls_by_method"]
            r.ctl("pause")
            r.post_shop(order(18000, skus=skus, qty=5), "wh-g0-upd", topic="orders/updated")
            r.post_shop(order(18001, skus=skus[:2]), "wh-g1-upd", topic="orders/updated")
            r.post_shop(order(18002, skus=skus), "wh-g2-upd", topic="orders/updated")
            wait_for(lambda: len(store_ids(r.cfg["state_dir"])) == 3, what="3 stored")
            r.ctl("resume")
            state = r.cfg["state_dir"]
            wait_for(lambda: queue_empty(r) and delivered(r, 5), what="two delivered")
            dead = store_ids(state, "dead")
            t.eq(len(dead), 1, "one refused")
            t.check("is locked in Odoo" in (dead[0]["dead_reason"] or ""),
                    "the locked one, saying so (%r)" % dead[0]["dead_reason"])
            qty = lambda n: [l["product_uom_qty"] for l in lines_of(emu, so[n])]
            t.eq(qty(0), [2.0, 3.0, 4.0], "locked: unchanged")
            t.eq(qty(1), [2.0, 3.0, 0.0], "removed line set to 0")
            t.eq(qty(2), [2.0, 3.0, 4.0], "resend: unchanged")
            after = emu.stats()["calls_by_method"]
            diff = lambda m: after.get(m, 0) - before.get(m, 0)
            t.eq(diff("ir.model.data.search_read"), 2, "orders and their lines: one search each")
            t.eq(diff("sale.order.read"), 2, "one read before, one of the states after")
            t.eq(diff("sale.order.write"), 1, "one write for the removed line")
            t.eq(diff("sale.order.load"), 1, "one load for the two that may go")
            t.check("1 removed line set to quantity 0" in r.logs(), "the zeroing logged")
        finally:
            if r:
                r.stop()
            emu.stop()


def test_two_events_of_one_order_in_one_batch(t):
    # a source without lanes: both events of an order may go in one load;
    # the second's steps wait for the first's, and find it confirmed
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = None
        try:
            seed_products(emu)
            seed_customers(emu, [7])
            route = dict(ORDER_ROUTE, source="feed", topics=["*"])
            cfg = config(tmp, emu, routes=[route])
            cfg["sources"]["feed"] = {"verify": {"scheme": "none"},
                                      "dedup": {"pointer": "/event_id"}}
            r = Relay(tmp, cfg)
            r.wait_delivering()
            r.ctl("pause")
            for n in range(2):
                body = dict(order(19001), event_id="e%d" % n)
                st, _, _ = r.request("POST", "/hooks/feed", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
                t.eq(st, 202, "event %d accepted" % n)
            wait_for(lambda: len(store_ids(r.cfg["state_dir"])) == 2, what="2 stored")
            r.ctl("resume")
            wait_for(lambda: queue_empty(r) and delivered(r, 2), what="both delivered")
            t.eq(calls(emu, "sale.order.load"), 1, "one load for both")
            t.eq(calls(emu, "sale.order.action_confirm"), 1, "confirmed once")
            t.eq(store_ids(r.cfg["state_dir"], "dead"), [], "nothing dead")
            t.check("action_confirm skipped: state sale" in r.logs(), "the second skipped it")
        finally:
            if r:
                r.stop()
            emu.stop()


def test_rows_reported_after_steps_keep_their_batch(t):
    """A row whose steps run while the next load of its batch is in flight
    is reported with the id and size of the load it was in, not the next's:
    two orders with a reference go in one load, one without (other columns)
    in a load of its own, sent before the first two's steps end."""
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = None
        try:
            seed_products(emu)
            seed_customers(emu, [7])
            route = dict(ORDER_ROUTE, fields=dict(
                ORDER_ROUTE["fields"],
                client_order_ref={"pointer": "/name", "optional": True}))
            r = Relay(tmp, config(tmp, emu, routes=[route]))
            r.wait_delivering()
            r.ctl("pause")
            ids = {}
            for oid in (9101, 9102, 9103):
                body = order(oid)
                if oid == 9103:
                    del body["name"]
                st, _, out = r.post_shop(body, "wh-b%d" % oid, topic="orders/create")
                t.eq(st, 202, "order %d accepted" % oid)
                ids[oid] = str(out["id"])
            r.ctl("resume")
            wait_for(lambda: queue_empty(r) and delivered(r, 3), what="three delivered")
            t.eq(calls(emu, "sale.order.load"), 2, "two loads: the columns differ")
            t.eq(calls(emu, "sale.order.action_confirm"), 3, "each confirmed")
            logs = r.logs()
            seen = {}
            for oid, eid in ids.items():
                m = re.findall(r"EVENT_ID=%s .*?BATCH_ID=(\d+) BATCH_SIZE=(\d+) BATCH_ROW=(-?\d+)"
                               % eid, logs)
                t.check(m, "event %s logged with its batch" % eid)
                seen[oid] = m[-1] if m else None
            t.eq([seen[9101] and seen[9101][:2], seen[9102] and seen[9102][:2]],
                 [seen[9101] and (seen[9101][0], "2")] * 2,
                 "the two orders of the first load: one batch id, of 2 rows (%r)" % seen)
            t.check(seen[9103] is not None and seen[9101] is not None and
                    seen[9103][0] != seen[9101][0] and seen[9103][1] == "1",
                    "the third: a batch of its own, of 1 row (%r)" % seen)
            # the history keeps the same batch as the journal
            for oid, eid in ids.items():
                shown = json.loads(r.ctl("--json", "events", "show", eid).stdout or "{}")
                batch = (shown.get("outcome") or {}).get("batch")
                t.eq(batch and [str(batch["id"]), str(batch["size"])],
                     seen[oid] and list(seen[oid][:2]),
                     "history of order %d: the batch it was loaded in" % oid)
        finally:
            if r:
                r.stop()
            emu.stop()


def test_load_answer_without_a_row_id_reaches_no_step(t):
    """A load() answer that holds false for a row, or leaves a row's id
    out (no Odoo answers so; the emulator's load_ids fault), never sends a
    step to a record id the answer does not give for sure: such a row is
    dead-lettered saying why and the other rows go on; a list one id short
    tells no row's id (which one is missing?), so no row of that call gets
    its steps; nothing is ever read or called on id 0."""
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = None
        try:
            seed_products(emu)
            seed_customers(emu, [7])
            r = Relay(tmp, config(tmp, emu))
            state = r.cfg["state_dir"]
            r.wait_delivering()

            def batch(oids, ids):
                emu.fault(mode="load_ids", ids=ids, count=1)
                r.ctl("pause")
                for oid in oids:
                    st, _, _ = r.post_shop(order(oid), "wh-i%d" % oid, topic="orders/create")
                    t.eq(st, 202, "order %d accepted" % oid)
                r.ctl("resume")

            def states(oid):
                return [o["state"] for o in orders_named(emu, "SHOP%d" % oid)]

            def reasons():
                return {int(d["lane"].rsplit("/", 1)[-1]) if d["lane"] else d["id"]:
                        d["dead_reason"] or "" for d in store_ids(state, "dead")}

            # a batch of two, the second's id false: the first goes on
            batch((9201, 9202), "false")
            wait_for(lambda: queue_empty(r) and len(store_ids(state, "dead")) == 1,
                     what="one delivered, one dead")
            t.eq(calls(emu, "sale.order.load"), 1, "one load for both")
            t.eq(states(9201), ["sale"], "the row with its id: confirmed")
            t.eq(states(9202), ["draft"], "the row without: written by Odoo, no step on it")
            t.eq(delivered(r, 1), True, "the first delivered")
            dead = [d["dead_reason"] or "" for d in store_ids(state, "dead")]
            t.check(dead and "no record id for this row (false in its place)" in dead[0] and
                    "its steps were not run" in dead[0], "the dead letter says why (%r)" % dead)

            # a batch of two, one id short: which is whose is not known
            batch((9203, 9204), "short")
            wait_for(lambda: queue_empty(r) and len(store_ids(state, "dead")) == 3,
                     what="both of the short answer dead")
            t.eq(states(9203) + states(9204), ["draft", "draft"], "neither confirmed")
            dead = [d["dead_reason"] or "" for d in store_ids(state, "dead")]
            t.eq(sum("load answered 1 record ids for 2 records" in x for x in dead), 2,
                 "both say the answer is short (%r)" % dead)

            # one order alone, no id at all
            batch((9205,), "short")
            wait_for(lambda: queue_empty(r) and len(store_ids(state, "dead")) == 4,
                     what="the lone order dead")
            t.eq(states(9205), ["draft"], "alone, no id: no step run")
            dead = [d["dead_reason"] or "" for d in store_ids(state, "dead")]
            t.eq(sum("load answered 0 record ids for 1 records" in x for x in dead), 1,
                 "it says so (%r)" % dead)

            t.eq(calls(emu, "sale.order.action_confirm"), 1, "one confirmation, of 9201")
            t.eq(calls(emu, "sale.order.read"), 1,
                 "one state read, of 9201's record: nothing read on id 0")
            t.check(not any("sale.order 0 " in x for x in dead),
                    "nothing about a record 0 (%r)" % dead)
        finally:
            if r:
                r.stop()
            emu.stop()

if __name__ == "__main__":
    t = Results()
    t.run(test_order_twice_lines_once_confirmed_once)
    t.run(test_find_cache_per_context)
    t.run(test_unknown_and_ambiguous_sku_dead_lettered)
    t.run(test_confirmed_then_killed_replays_without_error)
    t.run(test_order_before_customer)
    t.run(test_order_without_customer_dead_lettered_after_retries)
    t.run(test_cancel)
    t.run(test_locked_order_refused_before_sending)
    t.run(test_removed_line_of_confirmed_order)
    t.run(test_load_warnings_recorded_or_failed)
    t.run(test_deleted_product_searched_again)
    t.run(test_failed_step_says_which_and_state)
    t.run(test_find_giving_external_id)
    t.run(test_ambiguous_sku_picked_by_explicit_order)
    t.run(test_batch_of_orders_steps_and_warnings)
    t.run(test_batch_refusals_read_once)
    t.run(test_two_events_of_one_order_in_one_batch)
    t.run(test_rows_reported_after_steps_keep_their_batch)
    t.run(test_load_answer_without_a_row_id_reaches_no_step)
    t.done()
