"""The stale-update guard through the real odoo-relayd and the Odoo emulator:
a route with "version" keeps the last applied version per external ID, and
an update older than it arrives after it (senders do not promise order) ends
as stale, not sent, so Odoo keeps the newer data. Equal versions are sent;
a missing version is a permanent failure naming the pointer; batches drop
their stale rows before the load(); the table survives a restart."""
import os

from harness import Emulator, Relay, Results, TempDir, base_config, store_ids, wait_for

ROUTE = {
    "name": "shop-versioned",
    "source": "shop",
    "topics": ["customers/*"],
    "operation": "upsert",
    "model": "res.partner",
    "external_id": "shop_customer_{/id}",
    "fields": {"name": {"pointer": "/name"}},
    "version": "/updated_at",
    "batch": {"max_rows": 1},
}


def config(tmp, emu, route=None):
    d = {"backoff": {"base_ms": 50, "cap_ms": 400, "max_attempts": 25, "max_age_s": 3600},
         "probe_base_ms": 100, "probe_cap_ms": 400, "circuit_failures": 5,
         "drain_timeout_ms": 2000}
    o = {"url": emu.url, "database": "test", "login": "admin", "api_key_file": "odoo.key",
         "protocol": "jsonrpc"}
    return base_config(os.path.join(tmp, "state"), odoo=o, delivery=d, routes=[route or ROUTE])


def names(emu):
    return {x[len("odoo_relay."):]: r["name"] for r in emu.records("res.partner")
            for x in r.get("xmlids", []) if x.startswith("odoo_relay.")}


def loads(emu):
    s = emu.stats()
    return s.get("calls_by_method", {}).get("res.partner.load", 0), s.get("load_rows", 0)


def settled(r):
    wait_for(lambda: not store_ids(r.cfg["state_dir"]), timeout=30, what="queue empty")


_seq = [0]


def post(r, cid, name, updated_at=None, **extra):
    _seq[0] += 1
    ev = {"id": cid, "name": name}
    if updated_at is not None:
        ev["updated_at"] = updated_at
    ev.update(extra)
    st, _, _ = r.post_shop(ev, "wh-%d" % _seq[0], topic="customers/update")
    assert st == 202, st


def stale(r):
    return r.metric("relay_stale_total", 'route="shop-versioned"')


def test_older_after_newer(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, config(tmp, emu))
        try:
            r.wait_delivering()
            post(r, 1, "newer", "2026-03-01T10:00:05Z")
            settled(r)
            # older by one second, written in another offset
            post(r, 1, "older", "2026-03-01T11:00:04+01:00")
            settled(r)
            t.eq(names(emu), {"shop_customer_1": "newer"}, "Odoo keeps the newer data")
            t.eq(loads(emu), (1, 1), "the older update is never sent")
            t.eq(stale(r), 1.0, "counted as stale")
            t.eq(store_ids(r.cfg["state_dir"], "dead"), [], "and not dead-lettered")
            t.check("stale, not sent" in r.logs(), "logged")
            # a newer one after it goes through
            post(r, 1, "newest", "2026-03-01T10:00:06.5Z")
            settled(r)
            t.eq(names(emu), {"shop_customer_1": "newest"}, "a newer version is applied")
            # per external ID: another customer's older time is not stale
            post(r, 2, "other", "2020-01-01T00:00:00Z")
            settled(r)
            t.eq(names(emu).get("shop_customer_2"), "other", "another record has its own version")
            t.eq(stale(r), 1.0, "still one stale")
        finally:
            r.stop()
            emu.stop()


def test_equal_version_is_sent(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, config(tmp, emu))
        try:
            r.wait_delivering()
            post(r, 1, "first", "2026-03-01T10:00:00Z")
            settled(r)
            post(r, 1, "second", "2026-03-01T12:00:00+02:00")
            settled(r)
            t.eq(names(emu), {"shop_customer_1": "second"}, "an equal version is applied")
            t.eq(stale(r), 0.0, "nothing stale")
        finally:
            r.stop()
            emu.stop()


def test_missing_version_fails(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, config(tmp, emu))
        try:
            r.wait_delivering()
            post(r, 1, "no version")
            post(r, 2, "bad version", "last tuesday")
            wait_for(lambda: len(store_ids(r.cfg["state_dir"], "dead")) == 2, timeout=30,
                     what="two dead letters")
            dead = sorted(store_ids(r.cfg["state_dir"], "dead"), key=lambda d: d["lane"])
            reasons = [d.get("dead_reason") or "" for d in dead]
            t.check("missing /updated_at for version" in reasons[0], "missing: " + reasons[0])
            t.check("/updated_at is not an RFC 3339 time" in reasons[1], "bad: " + reasons[1])
            t.eq(loads(emu), (0, 0), "nothing sent")
        finally:
            r.stop()
            emu.stop()


def test_batch_drops_stale_rows(t):
    route = dict(ROUTE, batch={"max_rows": 50, "max_wait_ms": 20})
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, config(tmp, emu, route))
        try:
            r.wait_delivering()
            for i in range(10):
                post(r, i, "v2-%d" % i, "2026-03-01T10:00:02Z")
            settled(r)
            calls0, rows0 = loads(emu)
            t.eq(rows0, 10, "ten rows applied")
            # a backlog: older updates for 0-4, newer ones for 5-9
            r.ctl("pause")
            for i in range(10):
                post(r, i, "v%d-%d" % (1 if i < 5 else 3, i),
                     "2026-03-01T10:00:0%dZ" % (1 if i < 5 else 3))
            r.ctl("resume")
            settled(r)
            calls, rows = loads(emu)
            t.eq(rows - rows0, 5, "only the five newer rows sent")
            t.eq(calls - calls0, 1, "in one load()")
            want = {"shop_customer_%d" % i: ("v2-%d" if i < 5 else "v3-%d") % i for i in range(10)}
            t.eq(names(emu), want, "Odoo keeps the newer data of each")
            t.eq(stale(r), 5.0, "five stale")
        finally:
            r.stop()
            emu.stop()


def test_numbers_and_restart(t):
    route = dict(ROUTE, version={"pointer": "/version", "kind": "number"})
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, config(tmp, emu, route))
        try:
            r.wait_delivering()
            post(r, 1, "seven", version=7)
            settled(r)
            # a crash, not a clean stop: the version was committed with the
            # event's completion, so an empty queue means it is on disk
            r.kill9()
            r.start()
            r.wait_delivering()
            post(r, 1, "five", version="5")
            settled(r)
            t.eq(names(emu), {"shop_customer_1": "seven"}, "the table survives a crash and restart")
            t.eq(stale(r), 1.0, "stale after the restart")
            post(r, 1, "ten", version=10)
            settled(r)
            t.eq(names(emu), {"shop_customer_1": "ten"}, "a higher number goes through")
        finally:
            r.stop()
            emu.stop()


if __name__ == "__main__":
    t = Results()
    only = os.environ.get("ONLY")
    if only:
        t.run(globals()[only])
        t.done()
    t.run(test_older_after_newer)
    t.run(test_equal_version_is_sent)
    t.run(test_missing_version_fails)
    t.run(test_batch_drops_stale_rows)
    t.run(test_numbers_and_restart)
    t.done()
