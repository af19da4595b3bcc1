"""Delivery into Odoo through the real odoo-relayd and the Odoo emulator:
idempotent upserts, outages, failure classes, the circuit, lane order, and
1000 events across 50 lanes applied exactly once."""
import json
import os
import threading

from harness import Emulator, Relay, Results, TempDir, base_config, store_ids, wait_for

CUSTOMER_ROUTE = {
    "name": "shop-customers",
    "source": "shop",
    "topics": ["customers/*"],
    "operation": "upsert",
    "model": "res.partner",
    "external_id": "shop_customer_{/id}",
    "fields": {
        "name": "{/first_name} {/last_name}",
        "email": {"pointer": "/email"},
    },
}


def delivery_config(tmp, emu, routes=None, **delivery):
    d = {"backoff": {"base_ms": 50, "cap_ms": 400, "max_attempts": 25, "max_age_s": 3600},
         "probe_base_ms": 100, "probe_cap_ms": 400, "circuit_failures": 5, "drain_timeout_ms": 2000}
    d.update(delivery)
    return base_config(os.path.join(tmp, "state"),
                       odoo={"url": emu.url, "database": "test", "login": "admin",
                             "api_key_file": "odoo.key", "protocol": "jsonrpc"},
                       delivery=d, routes=routes or [CUSTOMER_ROUTE])


def partners(emu, xmlid=None):
    recs = emu.records("res.partner")
    if xmlid is None:
        return [r for r in recs if any(x.startswith("odoo_relay.") for x in r.get("xmlids", []))]
    return [r for r in recs if "odoo_relay." + xmlid in r.get("xmlids", [])]


def customer(i, first="Ada", last="Lovelace", email=None):
    return {"id": i, "first_name": first, "last_name": last,
            "email": email or "c%d@example.com" % i}


def queue_empty(r):
    return not store_ids(r.cfg["state_dir"])


def test_upsert_is_idempotent(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, delivery_config(tmp, emu))
        try:
            st, _, js = r.post_shop(customer(42), "wh-a")
            t.eq(st, 202, "accepted")
            wait_for(lambda: partners(emu, "shop_customer_42"), what="partner created")
            p = partners(emu, "shop_customer_42")
            t.eq(len(p), 1, "one partner with the external id")
            t.eq(p[0]["name"], "Ada Lovelace", "name from the template")
            t.eq(p[0]["email"], "c42@example.com", "email from the pointer")
            # the same payload under a new webhook id: still one partner
            st, _, _ = r.post_shop(customer(42), "wh-b")
            t.eq(st, 202, "second webhook accepted")
            wait_for(lambda: queue_empty(r), what="queue drained")
            t.eq(len(partners(emu, "shop_customer_42")), 1, "still one partner")
            # an update changes it
            st, _, _ = r.post_shop(customer(42, email="new@example.com"), "wh-c", topic="customers/update")
            wait_for(lambda: partners(emu, "shop_customer_42")[0]["email"] == "new@example.com",
                     what="update applied")
            t.eq(len(partners(emu)), 1, "one partner in all")
            t.eq(r.metric("relay_delivered_total", 'route="shop-customers"'), 3.0, "delivered counter")
        finally:
            r.stop()
            emu.stop()


def test_outage_charges_nothing(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, delivery_config(tmp, emu))
        try:
            emu.fault(mode="down")
            for i in range(20):
                st, _, _ = r.post_shop(customer(i), "down-%d" % i)
                t.eq(st, 202, "accepted while odoo is down")
            wait_for(lambda: r.metric("relay_circuit_open") == 1.0, what="circuit open")
            evs = store_ids(r.cfg["state_dir"])
            t.eq(len(evs), 20, "nothing lost")
            t.eq([e["attempts"] for e in evs], [0] * 20, "no attempt charged while down")
            t.eq(store_ids(r.cfg["state_dir"], "dead"), [], "nothing dead")
            emu.fault(mode="none")
            wait_for(lambda: queue_empty(r), timeout=30, what="backlog drained after recovery")
            t.eq(len(partners(emu)), 20, "every event delivered")
            t.eq(r.metric("relay_circuit_open"), 0.0, "circuit closed again")
            t.check("circuit open" in r.logs() and "circuit closed" in r.logs(),
                    "one log line per circuit state change")
        finally:
            r.stop()
            emu.stop()


def test_failure_classes(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, delivery_config(tmp, emu))
        state = r.cfg["state_dir"]
        try:
            r.wait_delivering()
            # a ValidationError goes to the dead-letter queue with Odoo's message
            emu.fault(mode="validation", field="email", value="bad@example.com",
                      message="Invalid email address")
            st, _, js = r.post_shop(customer(1, email="bad@example.com"), "val-1")
            wait_for(lambda: store_ids(state, "dead"), what="dead letter")
            dead = store_ids(state, "dead")
            t.eq(len(dead), 1, "one dead letter")
            t.eq(str(dead[0]["id"]), js["id"], "the event that failed")
            t.check("Invalid email address" in (dead[0]["dead_reason"] or ""),
                    "dead reason carries Odoo's message (%r)" % dead[0]["dead_reason"])
            t.eq(partners(emu, "shop_customer_1"), [], "nothing written")
            emu.fault(mode="clear_validation")
            # a serialization failure is retried, then delivered
            emu.fault(mode="serialization", count=2)
            st, _, js = r.post_shop(customer(2), "ser-1")
            wait_for(lambda: partners(emu, "shop_customer_2"), what="delivered after retries")
            wait_for(lambda: queue_empty(r), what="queue empty")
            t.check(r.metric("relay_retried_total", 'route="shop-customers"') >= 2, "retries counted")
            # AccessDenied opens the circuit and charges nothing
            emu.fault(mode="access_denied")
            st, _, js = r.post_shop(customer(3), "acc-1")
            wait_for(lambda: r.metric("relay_circuit_open") == 1.0, what="circuit open on AccessDenied")
            evs = store_ids(state)
            t.eq(len(evs), 1, "event still queued")
            t.eq(evs[0]["attempts"], 0, "no attempt charged for AccessDenied")
            emu.fault(mode="none")
            wait_for(lambda: partners(emu, "shop_customer_3"), timeout=20, what="delivered after the fix")
            t.eq(len(store_ids(state, "dead")), 1, "still only the one dead letter")
        finally:
            r.stop()
            emu.stop()


def test_lane_order(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, delivery_config(tmp, emu))
        try:
            r.wait_delivering()
            emu.fault(mode="serialization", count=3)
            st1, _, _ = r.post_shop(customer(7, first="Old"), "lane-1", topic="customers/create")
            st2, _, _ = r.post_shop(customer(7, first="New"), "lane-2", topic="customers/update")
            t.eq((st1, st2), (202, 202), "both accepted")
            wait_for(lambda: queue_empty(r), timeout=30, what="lane drained")
            p = partners(emu, "shop_customer_7")
            t.eq(len(p), 1, "one partner")
            t.eq(p[0]["name"], "New Lovelace", "the update was applied after the create")
        finally:
            r.stop()
            emu.stop()


def test_thousand_events_fifty_lanes(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, delivery_config(tmp, emu))
        try:
            errors = []

            def sender(k):
                # a lane's events all come from one sender, in order
                for i in range(1000):
                    lane = i % 50
                    if lane % 4 != k:
                        continue
                    st, _, _ = r.post_shop(customer(lane, first="v%d" % (i // 50)), "many-%d" % i,
                                           topic="customers/update")
                    if st != 202:
                        errors.append(st)

            threads = [threading.Thread(target=sender, args=(k,)) for k in range(4)]
            for th in threads:
                th.start()
            for th in threads:
                th.join(120)
            t.eq(errors, [], "all 1000 accepted")
            wait_for(lambda: queue_empty(r), timeout=180, interval=0.2, what="1000 events delivered")
            ps = partners(emu)
            t.eq(len(ps), 50, "one partner per lane")
            t.eq(sorted(p["name"] for p in ps), sorted("v19 Lovelace" for _ in range(50)),
                 "each lane ends with its last event")
            t.eq(r.metric("relay_delivered_total", 'route="shop-customers"'), 1000.0,
                 "each event delivered once")
            t.eq(store_ids(r.cfg["state_dir"], "dead"), [], "nothing dead")
        finally:
            r.stop()
            emu.stop()


def test_module_prefix_refused(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        cfg = delivery_config(tmp, emu)
        cfg["odoo"]["module"] = "shop_sync"  # a module installed in that database
        r = Relay(tmp, cfg)
        try:
            st, _, _ = r.post_shop(customer(5), "mod-1")
            t.eq(st, 202, "ingest goes on")
            wait_for(lambda: "shop_sync" in r.logs(), what="refusal logged")
            t.eq(r.metric("relay_circuit_open"), 1.0, "delivery paused")
            t.check("installed" in r.logs(), "the log says why")
            t.eq(partners(emu), [], "nothing written under an installed module's name")
            evs = store_ids(r.cfg["state_dir"])
            t.eq([e["attempts"] for e in evs], [0], "the event waits, uncharged")
        finally:
            r.stop()
            emu.stop()


if __name__ == "__main__":
    t = Results()
    t.run(test_upsert_is_idempotent)
    t.run(test_outage_charges_nothing)
    t.run(test_failure_classes)
    t.run(test_lane_order)
    t.run(test_thousand_events_fifty_lanes)
    t.run(test_module_prefix_refused)
    t.done()
