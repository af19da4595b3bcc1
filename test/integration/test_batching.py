"""Batched delivery through the real odoo-relayd and the Odoo emulator: due
lane heads of one route go in one load(); a row that Odoo refuses gets its
own outcome with Odoo's message for it, the others are sent again at once
(no good row dead for a neighbour, no bad row sent twice); Odoo's
"Found more than 10 errors" cut; a batch cut off by Odoo going down; lane
order across batches; an access error inside load() (Odoo 19) charges
nobody; the route's context reaches Odoo; 1000 events over 50 lanes;
supersession (50 queued updates of one customer become one call)."""
import os
import re

from harness import Emulator, Relay, Results, TempDir, base_config, store_ids, wait_for

BATCH_ROUTE = {
    "name": "shop-batch",
    "source": "shop",
    "topics": ["customers/*"],
    "operation": "upsert",
    "model": "res.partner",
    "external_id": "shop_customer_{/id}",
    "fields": {"name": {"pointer": "/name"}, "email": {"pointer": "/email"}},
    "batch": {"max_rows": 50, "max_wait_ms": 20},
}


def config(tmp, emu, route=None, odoo=None, **delivery):
    d = {"backoff": {"base_ms": 50, "cap_ms": 400, "max_attempts": 25, "max_age_s": 3600},
         "probe_base_ms": 100, "probe_cap_ms": 400, "circuit_failures": 5,
         "drain_timeout_ms": 2000}
    d.update(delivery)
    o = {"url": emu.url, "database": "test", "login": "admin", "api_key_file": "odoo.key",
         "protocol": "jsonrpc"}
    o.update(odoo or {})
    return base_config(os.path.join(tmp, "state"), odoo=o, delivery=d,
                       routes=[route or BATCH_ROUTE])


def partners(emu):
    return {x[len("odoo_relay."):]: r for r in emu.records("res.partner")
            for x in r.get("xmlids", []) if x.startswith("odoo_relay.")}


def loads(emu):
    s = emu.stats()
    return s.get("calls_by_method", {}).get("res.partner.load", 0), s.get("load_rows", 0)


def queue_empty(r):
    return not store_ids(r.cfg["state_dir"])


def backlog(r, events, topic="customers/update"):
    """events posted while delivery is paused, then let go at once: a
    backlog, as after an outage."""
    r.wait_delivering()
    r.ctl("pause")
    for i, ev in enumerate(events):
        st, _, _ = r.post_shop(ev, "wh-%d-%d" % (ev["id"], i), topic=topic)
        assert st == 202, st
    r.ctl("resume")


def customer(i, name=None):
    return {"id": i, "name": "Customer %d" % i if name is None else name,
            "email": "c%d@example.com" % i}


def check_rows(t, emu, r, good, bad, calls, rows):
    """good applied once each, bad dead with one attempt each, and exactly
    calls load() calls carrying rows rows."""
    wait_for(lambda: queue_empty(r), timeout=30, what="backlog settled")
    ps = partners(emu)
    t.eq(sorted(ps), sorted("shop_customer_%d" % i for i in good), "the good rows, and only they")
    dead = store_ids(r.cfg["state_dir"], "dead")
    t.eq(sorted(int(d["lane"]) for d in dead), sorted(bad), "the bad rows, and only they, dead")
    for d in dead:
        t.eq(d["attempts"], 1, "a bad row is sent once")
    t.eq(loads(emu), (calls, rows), "load() calls and rows sent")
    return dead


def test_bad_row_in_the_middle(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, config(tmp, emu))
        try:
            evs = [customer(i, name="" if i == 5 else None) for i in range(10)]
            backlog(r, evs)
            dead = check_rows(t, emu, r, [i for i in range(10) if i != 5], [5], 2, 19)
            # its outcome says which batch and what Odoo said of that row
            did = str(dead[0]["id"])
            out = r.ctl("dead", "show", did).stdout
            t.check("Contacts require a name" in out, "dead show has the row's message: " + out)
            t.check("batch" in out and "of 10 rows, row 5" in out,
                    "dead show names the batch and the row")
            logs = r.logs()
            t.check("of 9 rows, row" in logs, "delivered rows logged with their batch")
            # and the journal fields carry the same, for journalctl BATCH_ID=...
            t.check(re.search(r"EVENT_ID=%s .*BATCH_ID=\d+ BATCH_SIZE=10 BATCH_ROW=5" % did, logs)
                    is not None, "the dead row's log line has BATCH_ID, BATCH_SIZE, BATCH_ROW")
        finally:
            r.stop()
            emu.stop()


def test_two_bad_rows(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, config(tmp, emu))
        try:
            evs = [customer(i, name="" if i in (0, 7) else None) for i in range(10)]
            backlog(r, evs)
            check_rows(t, emu, r, [i for i in range(10) if i not in (0, 7)], [0, 7], 2, 18)
        finally:
            r.stop()
            emu.stop()


def test_every_row_bad(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, config(tmp, emu))
        try:
            backlog(r, [customer(i, name="") for i in range(6)])
            check_rows(t, emu, r, [], list(range(6)), 1, 6)
        finally:
            r.stop()
            emu.stop()


def test_more_than_ten_errors(t):
    # Odoo stops after 10 write errors (capture 409): the rows after are not
    # named and go again, until every row has its outcome.
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, config(tmp, emu))
        try:
            evs = [customer(i, name="" if i < 15 else None) for i in range(25)]
            backlog(r, evs)
            check_rows(t, emu, r, list(range(15, 25)), list(range(15)), 3, 25 + 15 + 10)
        finally:
            r.stop()
            emu.stop()


def test_odoo_down_mid_batch(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, config(tmp, emu))
        try:
            r.wait_delivering()
            emu.fault(mode="slow", delay_ms=800)
            backlog(r, [customer(i) for i in range(30)])
            wait_for(lambda: loads(emu)[0] >= 1, what="a batch in flight")
            emu.fault(mode="down")
            wait_for(lambda: r.metric("relay_circuit_open") == 1.0, timeout=15,
                     what="circuit open while odoo is down")
            emu.fault(mode="none")
            wait_for(lambda: queue_empty(r), timeout=30, what="delivered after odoo came back")
            ps = partners(emu)
            t.eq(len(ps), 30, "every event applied")
            t.eq(len([p for p in emu.records("res.partner")
                      if p.get("name", "").startswith("Customer ")]), 30, "once each: no duplicate")
            t.eq(store_ids(r.cfg["state_dir"], "dead"), [], "nothing dead")
        finally:
            r.stop()
            emu.stop()


def test_lanes_across_batches(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, config(tmp, emu))
        try:
            evs = []
            for v in range(4):   # a create then three updates of each customer
                for i in range(20):
                    evs.append(customer(i, name="c%d v%d" % (i, v)))
            backlog(r, evs)
            wait_for(lambda: queue_empty(r), timeout=30, what="lanes drained")
            ps = partners(emu)
            t.eq(sorted(p["name"] for p in ps.values()),
                 sorted("c%d v3" % i for i in range(20)), "each lane ends with its last event")
            calls, rows = loads(emu)
            t.eq(rows, 80, "each event sent once")
            t.check(4 <= calls <= 12, "in batches, one event per lane each (%d calls)" % calls)
            t.eq(r.metric("relay_delivered_total", 'route="shop-batch"'), 80.0, "80 delivered")
        finally:
            r.stop()
            emu.stop()


def test_access_error_in_load_charges_nobody(t):
    # Odoo 19 says a missing right inside load() with HTTP 200 (capture 558)
    with TempDir() as tmp:
        emu = Emulator(tmp, version=19, extra=("--api-key", "clerk:clerk-key"))
        r = Relay(tmp, config(tmp, emu, odoo={"login": "clerk", "protocol": "json2"}),
                  secrets={"shop.secret": b"test-shop-secret", "odoo.key": b"clerk-key"})
        try:
            emu.fault(mode="no_create", model="res.partner")
            for i in range(3):
                r.post_shop(customer(i), "acc-%d" % i)
            wait_for(lambda: "suspended" in r.logs() or "paused" in r.logs(), timeout=15,
                     what="route suspended or circuit open")
            t.check("You are not allowed to create" in r.logs(), "Odoo's text logged")
            t.eq(store_ids(r.cfg["state_dir"], "dead"), [], "nobody dead-lettered")
            evs = store_ids(r.cfg["state_dir"])
            t.eq(len(evs), 3, "the events wait")
            t.eq([e["attempts"] for e in evs], [0, 0, 0], "nobody charged")
        finally:
            r.stop()
            emu.stop()


def test_context_reaches_odoo(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        route = dict(BATCH_ROUTE, context={"tracking_disable": True})
        r = Relay(tmp, config(tmp, emu, route=route))
        try:
            backlog(r, [customer(i) for i in range(5)])
            wait_for(lambda: queue_empty(r), what="delivered")
            t.eq(emu.stats().get("load_context"), {"tracking_disable": True},
                 "load() called with the route's context")
        finally:
            r.stop()
            emu.stop()


def test_thousand_events_fifty_lanes(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, config(tmp, emu, route=dict(BATCH_ROUTE, batch={"max_rows": 100,
                                                                         "max_wait_ms": 5})))
        try:
            r.wait_delivering()
            for i in range(1000):
                lane = i % 50
                st, _, _ = r.post_shop(customer(lane, name="c%d v%d" % (lane, i // 50)),
                                       "k-%d" % i)
                if st != 202:
                    t.eq(st, 202, "accepted")
            wait_for(lambda: queue_empty(r), timeout=120, interval=0.2, what="1000 delivered")
            ps = partners(emu)
            t.eq(len(ps), 50, "one partner per lane")
            t.eq(sorted(p["name"] for p in ps.values()),
                 sorted("c%d v19" % i for i in range(50)), "each lane ends with its last event")
            calls, rows = loads(emu)
            t.eq(rows, 1000, "each event sent exactly once")
            t.eq(r.metric("relay_delivered_total", 'route="shop-batch"'), 1000.0,
                 "1000 delivered")
            t.eq(store_ids(r.cfg["state_dir"], "dead"), [], "nothing dead")
        finally:
            r.stop()
            emu.stop()


def test_supersede(t):
    # 50 updates of one customer queued during an outage: one call, the newest
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, config(tmp, emu, route=dict(BATCH_ROUTE, supersede=True)))
        try:
            r.wait_delivering()
            # All 50 are queued before anything may go: a head sent while
            # its successors are still arriving cannot be superseded by them.
            r.ctl("pause")
            for v in range(50):
                st, _, _ = r.post_shop(customer(7, name="c7 v%d" % v), "sup-%d" % v)
                if st != 202:
                    t.eq(st, 202, "accepted")
            wait_for(lambda: len(store_ids(r.cfg["state_dir"])) == 50, what="50 stored")
            emu.fault(mode="down")
            r.ctl("resume")
            wait_for(lambda: r.metric("relay_circuit_open") == 1.0, what="the outage noticed")
            emu.fault(mode="none")
            wait_for(lambda: queue_empty(r), timeout=30, what="lane drained")
            ps = partners(emu)
            t.eq([p["name"] for p in ps.values()], ["c7 v49"], "the newest applied")
            t.eq(loads(emu), (1, 1), "one call of one row")
            t.eq(r.metric("relay_superseded_total", 'route="shop-batch"'), 49.0,
                 "49 counted as superseded")
            t.eq(r.metric("relay_delivered_total", 'route="shop-batch"'), 1.0, "1 delivered")
            t.check("superseded by event" in r.logs(), "each superseded event logged")
            t.eq(store_ids(r.cfg["state_dir"], "dead"), [], "nothing dead")
        finally:
            r.stop()
            emu.stop()


def test_supersede_stops_at_another_route(t):
    # create, update, update, delete, update in one lane: the updates right
    # behind a head collapse; the delete keeps its place
    with TempDir() as tmp:
        emu = Emulator(tmp)
        delete = {"name": "shop-delete", "source": "shop", "topics": ["customers/delete"],
                  "operation": "delete", "model": "res.partner",
                  "external_id": "shop_customer_{/id}"}
        cfg = config(tmp, emu, route=dict(BATCH_ROUTE, topics=["customers/update"],
                                          supersede=True))
        cfg["routes"].append(delete)
        r = Relay(tmp, cfg)
        try:
            r.wait_delivering()
            r.ctl("pause")
            seq = [("customers/update", "v0"), ("customers/update", "v1"),
                   ("customers/update", "v2"), ("customers/delete", None),
                   ("customers/update", "v3"), ("customers/update", "v4")]
            for i, (topic, v) in enumerate(seq):
                r.post_shop(customer(3, name=v or "gone"), "mix-%d" % i, topic=topic)
            r.ctl("resume")
            wait_for(lambda: queue_empty(r), timeout=30, what="lane drained")
            ps = partners(emu)
            t.eq([p["name"] for p in ps.values()], ["v4"],
                 "recreated after the delete with the newest")
            t.eq(loads(emu)[1], 2, "v2 then v4 sent, v0, v1 and v3 superseded")
            t.eq(r.metric("relay_superseded_total", 'route="shop-batch"'), 3.0, "3 superseded")
        finally:
            r.stop()
            emu.stop()


if __name__ == "__main__":
    t = Results()
    only = os.environ.get("ONLY")
    if only:
        t.run(globals()[only])
        t.done()
    t.run(test_bad_row_in_the_middle)
    t.run(test_two_bad_rows)
    t.run(test_every_row_bad)
    t.run(test_more_than_ten_errors)
    t.run(test_odoo_down_mid_batch)
    t.run(test_lanes_across_batches)
    t.run(test_access_error_in_load_charges_nobody)
    t.run(test_context_reaches_odoo)
    t.run(test_thousand_events_fifty_lanes)
    t.run(test_supersede)
    t.run(test_supersede_stops_at_another_route)
    t.done()
