"""Named destinations: two Odoo databases in one daemon. When one is down its
circuit opens alone, the other keeps delivering, nothing is lost or charged;
a reload that moves a route to the other destination moves its queued events
with it; odoo-relayctl pauses one destination by name."""
import copy
import json
import os
import signal

from harness import Emulator, Relay, Results, TempDir, base_config, store_ids, wait_for
from test_delivery import customer, queue_empty


def route(name, topic, dest, prefix):
    return {
        "name": name, "source": "shop", "topics": [topic], "operation": "upsert",
        "model": "res.partner", "destination": dest, "external_id": prefix + "_{/id}",
        "fields": {"name": "{/first_name} {/last_name}", "email": {"pointer": "/email"}},
    }


def two_destinations(tmp, emu_a, emu_b):
    def dest(emu):
        return {"kind": "odoo", "url": emu.url, "database": "test", "login": "admin",
                "api_key_file": "odoo.key", "protocol": "jsonrpc", "probe_base_ms": 100,
                "probe_cap_ms": 400}
    return base_config(
        os.path.join(tmp, "state"),
        destinations={"sales": dest(emu_a), "billing": dest(emu_b)},
        delivery={"backoff": {"base_ms": 50, "cap_ms": 400, "max_attempts": 25, "max_age_s": 3600},
                  "probe_base_ms": 100, "probe_cap_ms": 400, "circuit_failures": 5,
                  "drain_timeout_ms": 2000},
        routes=[route("to-sales", "customers/*", "sales", "sales_customer"),
                route("to-billing", "invoices/*", "billing", "billing_customer")])


def xmlids(emu):
    return sorted(x for r in emu.records("res.partner") for x in r.get("xmlids", [])
                  if x.startswith("odoo_relay."))


def status(r):
    p = r.ctl("status", "--json", check=False)
    return json.loads(p.stdout)


def dest_state(r, name):
    for d in (status(r).get("circuit") or {}).get("destinations", []):
        if d["name"] == name:
            return d
    return {}


def test_one_down_other_delivers(t):
    with TempDir() as tmp:
        emu_a, emu_b = Emulator(os.path.join(tmp)), None
        os.makedirs(os.path.join(tmp, "b"))
        emu_b = Emulator(os.path.join(tmp, "b"))
        r = Relay(tmp, two_destinations(tmp, emu_a, emu_b))
        try:
            r.wait_delivering()
            t.check("protocol jsonrpc" in r.logs(), "each destination says its protocol")
            t.eq(r.metric("relay_destination_info", 'destination="sales",protocol="jsonrpc"'), 1.0,
                 "the protocol is a metric label")
            emu_b.fault(mode="down")
            for i in range(10):
                t.eq(r.post_shop(customer(i), "s-%d" % i)[0], 202, "accepted for sales")
                t.eq(r.post_shop(customer(100 + i), "b-%d" % i, topic="invoices/paid")[0], 202,
                     "accepted for billing")
            wait_for(lambda: r.metric("relay_circuit_open", 'destination="billing"') == 1.0,
                     what="billing's circuit open")
            wait_for(lambda: len(xmlids(emu_a)) == 10, what="sales delivered meanwhile")
            t.eq(r.metric("relay_circuit_open", 'destination="sales"'), 0.0,
                 "sales' circuit stays closed")
            t.eq(dest_state(r, "billing").get("circuit"), "open", "status: billing open")
            t.eq(dest_state(r, "sales").get("circuit"), "closed", "status: sales closed")
            t.check(status(r)["healthy"] is False, "a destination down is degraded")
            left = store_ids(r.cfg["state_dir"])
            t.eq(len(left), 10, "billing's ten events are queued")
            t.eq([e["attempts"] for e in left], [0] * 10, "none charged while billing is down")
            emu_b.fault(mode="none")
            wait_for(lambda: queue_empty(r), timeout=30, what="billing drained after recovery")
            t.eq(len(xmlids(emu_b)), 10, "every billing event delivered once")
            t.eq(len(xmlids(emu_a)), 10, "and nothing of billing's went to sales")
            t.eq(store_ids(r.cfg["state_dir"], "dead"), [], "nothing dead")
            t.eq(r.metric("relay_delivered_total", 'route="to-billing",destination="billing"'),
                 10.0, "delivered counted by route and destination")
        finally:
            t.eq(r.stop(), 0, "clean exit")
            emu_a.stop()
            emu_b.stop()


def test_reload_moves_a_route(t):
    with TempDir() as tmp:
        emu_a = Emulator(tmp)
        os.makedirs(os.path.join(tmp, "b"))
        emu_b = Emulator(os.path.join(tmp, "b"))
        cfg = two_destinations(tmp, emu_a, emu_b)
        r = Relay(tmp, cfg)
        try:
            r.wait_delivering()
            emu_b.fault(mode="down")
            for i in range(5):
                r.post_shop(customer(200 + i), "m-%d" % i, topic="invoices/paid")
            wait_for(lambda: r.metric("relay_circuit_open", 'destination="billing"') == 1.0,
                     what="billing's circuit open")
            t.eq(len(store_ids(r.cfg["state_dir"])), 5, "queued for billing")
            moved = copy.deepcopy(cfg)
            moved["routes"][1]["destination"] = "sales"
            r.write_config(moved)
            before = r.logs().count("configuration reloaded")
            r.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: r.logs().count("configuration reloaded") > before, what="reloaded")
            wait_for(lambda: queue_empty(r), timeout=30, what="the queued events went to sales")
            t.eq(len([x for x in xmlids(emu_a) if "billing_customer" in x]), 5,
                 "sales has billing's five")
            t.eq(xmlids(emu_b), [], "billing got none")
        finally:
            t.eq(r.stop(), 0, "clean exit")
            emu_a.stop()
            emu_b.stop()


def test_pause_one_destination(t):
    with TempDir() as tmp:
        emu_a = Emulator(tmp)
        os.makedirs(os.path.join(tmp, "b"))
        emu_b = Emulator(os.path.join(tmp, "b"))
        r = Relay(tmp, two_destinations(tmp, emu_a, emu_b))
        try:
            r.wait_delivering()
            p = r.ctl("pause", "--destination", "billing")
            t.check("destination billing paused" in p.stdout, "pause says so: " + p.stdout.strip())
            wait_for(lambda: r.metric("relay_destination_paused", 'destination="billing"') == 1.0,
                     what="the daemon sees the pause")
            r.post_shop(customer(300), "p-1", topic="invoices/paid")
            r.post_shop(customer(301), "p-2")
            wait_for(lambda: len(xmlids(emu_a)) == 1, what="sales still delivers")
            # the sales event leaves the store once its outcome is committed
            wait_for(lambda: len(store_ids(r.cfg["state_dir"])) == 1,
                     what="only billing's event left")
            t.eq(store_ids(r.cfg["state_dir"])[0]["attempts"], 0, "billing's event waits")
            t.check(any("destination billing paused" in x for x in status(r)["problems"]),
                    "status names the paused destination")
            p = r.ctl("pause", "--destination", "nope", check=False)
            t.check(p.returncode != 0 and "unknown destination" in p.stderr,
                    "an unknown destination is refused: " + p.stderr.strip())
            r.ctl("resume", "--destination", "billing")
            wait_for(lambda: queue_empty(r), what="billing resumes")
            t.eq(len(xmlids(emu_b)), 1, "and delivers")
        finally:
            t.eq(r.stop(), 0, "clean exit")
            emu_a.stop()
            emu_b.stop()


if __name__ == "__main__":
    t = Results()
    t.run(test_one_down_other_delivers)
    t.run(test_reload_moves_a_route)
    t.run(test_pause_one_destination)
    t.done()
