"""1000 shop orders of 3 lines each, across 100 customers and 20 products,
through odoo-relayd into the Odoo emulator: each order is applied exactly
once (one sale.order, three lines, confirmed once; 200 of them sent again
change nothing), and the product
lookups take a bounded number of calls (one search_read per batch at
most, fewer once the cache knows the SKUs). The calls per order are
printed for the README (run: ctest -R it_orders_bulk -V). Also: the
example's "refuse" counted, and 300 orders through four SIGKILLs."""
import os
import re

from harness import Emulator, Relay, Results, TempDir, store_ids, wait_for
from test_orders import ORDER_ROUTE, config, odoo_load

ORDERS, LINES, CUSTOMERS, PRODUCTS = 1000, 3, 100, 20


def order_of(n):
    return {"id": 100000 + n, "name": "B%d" % n, "customer": {"id": n % CUSTOMERS},
            "line_items": [{"id": (100000 + n) * 10 + k,
                            "sku": "SKU-%d" % ((n + k * 7) % PRODUCTS),
                            "quantity": k + 1, "price": 2.5} for k in range(LINES)]}


def test_thousand_orders(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = None
        try:
            odoo_load(emu, "product.product", ["id", "name", "default_code", "list_price"],
                      [["bulk.p%d" % i, "P%d" % i, "SKU-%d" % i, "1.00"]
                       for i in range(PRODUCTS)])
            odoo_load(emu, "res.partner", ["id", "name"],
                      [["odoo_relay.shop_customer_%d" % i, "C%d" % i] for i in range(CUSTOMERS)])
            r = Relay(tmp, config(tmp, emu, routes=[ORDER_ROUTE]))
            r.wait_delivering()
            emu.control("POST", "/control/stats", {})  # count from here
            for n in range(ORDERS):
                st, _, _ = r.post_shop(order_of(n), "bulk-%d" % n, topic="orders/create")
                if st != 202:
                    t.eq(st, 202, "webhook %d accepted" % n)
                    return
            wait_for(lambda: r.metric("relay_delivered_total", 'route="shop-orders"') == ORDERS,
                     timeout=240, interval=0.5, what="every order delivered")
            wait_for(lambda: not store_ids(r.cfg["state_dir"]), what="queue empty")
            sos = emu.records("sale.order")
            refs = [o["client_order_ref"] for o in sos]
            t.eq(len(sos), ORDERS, "one sale.order per shop order")
            t.eq(len(set(refs)), ORDERS, "no order twice")
            t.check(all(o["state"] == "sale" for o in sos), "every order confirmed")
            per_order = {}
            for l in emu.records("sale.order.line"):
                per_order[l["order_id"]] = per_order.get(l["order_id"], 0) + 1
            t.eq(sorted(set(per_order.values())), [LINES], "three lines each, never doubled")
            stats = emu.stats()
            by = stats["calls_by_method"]
            t.eq(by.get("sale.order.action_confirm"), ORDERS, "confirmed once each")
            t.eq(stats["load_rows"], ORDERS * LINES, "every row sent once")
            loads = by.get("sale.order.load", 0)
            searches = by.get("product.product.search_read", 0)
            t.check(1 <= searches <= loads, "lookups: at most one search per load "
                    "(%d searches, %d loads)" % (searches, loads))
            t.eq(store_ids(r.cfg["state_dir"], "dead"), [], "nothing dead")
            by = dict(by)

            # the first 200 again (the shop resends): batched, the state read
            # once per call, every confirmation skipped, no line added
            for n in range(200):
                st, _, _ = r.post_shop(order_of(n), "bulk-again-%d" % n, topic="orders/updated")
            wait_for(lambda: r.metric("relay_delivered_total", 'route="shop-orders"') ==
                     ORDERS + 200, timeout=120, interval=0.5, what="resends delivered")
            wait_for(lambda: not store_ids(r.cfg["state_dir"]), what="queue empty again")
            after = emu.stats()["calls_by_method"]
            t.eq(after.get("sale.order.action_confirm"), ORDERS, "no confirmation again")
            t.eq(len(emu.records("sale.order.line")), ORDERS * LINES, "no line added")
            t.check(after.get("sale.order.read", 0) - by.get("sale.order.read", 0) <=
                    after.get("sale.order.load", 0) - loads,
                    "one state read per load call at most")
            t.check("action_confirm skipped: state sale" in r.logs(), "skips in the log")
            total = sum(v for k, v in by.items() if "." in k and not k.startswith("common."))
            print("orders %d, lines %d: %d model calls (%.3f per order): %d loads, "
                  "%d product searches (%.4f per order), %d reads, %d confirms"
                  % (ORDERS, ORDERS * LINES, total, total / ORDERS, loads, searches,
                     searches / ORDERS, by.get("sale.order.read", 0),
                     by.get("sale.order.action_confirm", 0)))
        finally:
            if r:
                r.stop()
            emu.stop()


def test_orders_with_refuse(t):
    """The example's route reads the orders before writing them ("refuse"),
    once per batch. 200 orders, then the same 200 again, counted."""
    n_orders = 200
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = None
        try:
            odoo_load(emu, "product.product", ["id", "name", "default_code", "list_price"],
                      [["bulk.p%d" % i, "P%d" % i, "SKU-%d" % i, "1.00"]
                       for i in range(PRODUCTS)])
            odoo_load(emu, "res.partner", ["id", "name"],
                      [["odoo_relay.shop_customer_%d" % i, "C%d" % i] for i in range(CUSTOMERS)])
            route = dict(ORDER_ROUTE, refuse={"line_model": "sale.order.line",
                                              "removed_lines": "zero"})
            r = Relay(tmp, config(tmp, emu, routes=[route]))
            r.wait_delivering()
            emu.control("POST", "/control/stats", {})
            for n in range(n_orders):
                r.post_shop(order_of(n), "refuse-%d" % n, topic="orders/create")
            wait_for(lambda: r.metric("relay_delivered_total", 'route="shop-orders"') ==
                     n_orders, timeout=240, interval=0.5, what="every order delivered")
            first = dict(emu.stats()["calls_by_method"])
            for n in range(n_orders):
                r.post_shop(order_of(n), "refuse-again-%d" % n, topic="orders/updated")
            wait_for(lambda: r.metric("relay_delivered_total", 'route="shop-orders"') ==
                     2 * n_orders, timeout=240, interval=0.5, what="resends delivered")
            again = emu.stats()["calls_by_method"]
            t.eq(len(emu.records("sale.order")), n_orders, "one order each")
            t.eq(len(emu.records("sale.order.line")), n_orders * LINES, "lines once")
            t.eq(again.get("sale.order.action_confirm"), n_orders, "confirmed once each")
            model = lambda by: sum(v for k, v in by.items() if "." in k and
                                   not k.startswith("common."))
            print("refuse: %d new orders: %.2f model calls per order; sent again: %.2f per "
                  "order (%s)" % (n_orders, model(first) / n_orders,
                                  (model(again) - model(first)) / n_orders,
                                  ", ".join("%s %d" % (k, again[k] - first.get(k, 0))
                                            for k in sorted(again) if "." in k and
                                            not k.startswith("common."))))
        finally:
            if r:
                r.stop()
            emu.stop()


def test_orders_survive_kills(t):
    """300 orders, odoo-relayd killed with SIGKILL four times while calls
    to Odoo are in flight (loads, state reads, confirmations): every order
    once, three lines, confirmed exactly once, nothing dead."""
    n_orders = 300
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = None
        try:
            odoo_load(emu, "product.product", ["id", "name", "default_code", "list_price"],
                      [["bulk.p%d" % i, "P%d" % i, "SKU-%d" % i, "1.00"]
                       for i in range(PRODUCTS)])
            odoo_load(emu, "res.partner", ["id", "name"],
                      [["odoo_relay.shop_customer_%d" % i, "C%d" % i] for i in range(CUSTOMERS)])
            r = Relay(tmp, config(tmp, emu, routes=[ORDER_ROUTE]))
            r.wait_delivering()
            r.ctl("pause")
            for n in range(n_orders):
                r.post_shop(order_of(n), "kill-%d" % n, topic="orders/create")
            r.ctl("resume")
            kills = 0
            for _ in range(4):
                if not store_ids(r.cfg["state_dir"]):
                    break
                emu.fault(mode="slow", delay_ms=150)
                in_flight = []

                def ready():
                    # a call in flight, or nothing left to deliver
                    if r.metric("relay_in_flight") >= 1:
                        in_flight.append(True)
                        return True
                    return not store_ids(r.cfg["state_dir"])
                try:
                    wait_for(ready, timeout=30, interval=0.005, what="a call in flight")
                    if not in_flight:
                        break
                    r.kill9()
                    kills += 1
                finally:
                    emu.fault(mode="none")
                r.start()
            wait_for(lambda: not store_ids(r.cfg["state_dir"]), timeout=120, interval=0.5,
                     what="every order delivered")
            t.check(kills >= 1, "killed while calls were in flight (%d times)" % kills)
            sos = emu.records("sale.order")
            t.eq(len(sos), n_orders, "one sale.order per shop order")
            t.check(all(o["state"] == "sale" for o in sos), "every order confirmed")
            per_order = {}
            for l in emu.records("sale.order.line"):
                per_order[l["order_id"]] = per_order.get(l["order_id"], 0) + 1
            t.eq(sorted(set(per_order.values())), [LINES], "three lines each, never doubled")
            t.eq(emu.stats()["calls_by_method"].get("sale.order.action_confirm"), n_orders,
                 "confirmed exactly once each")
            t.eq(store_ids(r.cfg["state_dir"], "dead"), [], "nothing dead")
            again = len(set(re.findall(r"event (\d+) delivered \(action_confirm skipped",
                                       r.logs())))
            print("kills %d: %d orders applied once, %d of them loaded again after a kill "
                  "and found confirmed" % (kills, n_orders, again))
        finally:
            if r:
                r.stop()
            emu.stop()


if __name__ == "__main__":
    t = Results()
    t.run(test_thousand_orders)
    t.run(test_orders_with_refuse)
    t.run(test_orders_survive_kills)
    t.done()
