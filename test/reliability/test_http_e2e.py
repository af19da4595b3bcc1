"""Out of Odoo, end to end: partners created and written in the emulated
Odoo, each change posted to the relay as Odoo 18's "Send Webhook
Notification" posts it (captures 465-491: a create fires 11 identical posts
when the rule has no trigger fields, a write one; the body is the record's
selected fields with _action, _id, _model and id), and delivered by the
relay to a receiver that verifies every Standard Webhooks signature.

Across a receiver outage, a kill -9 of the relay while a delivery is at the
receiver, and a 410 Gone (the destination pauses until odoo-relayctl resume),
the receiver gets each change exactly once (a redelivery after the kill
carries the same webhook-id and the same body), every request signed, and
each partner's changes in the order they were made.

The route sends the body as Odoo posted it ("body": "as_received"): each
change carries its version in "ref", so order is checkable; confirm is
proved by test/integration/test_http_dest.py (test_confirm).

Environment: RELAY_HTTP_OUTAGE_S, the receiver's outage [5 s in CI, 60 s
at RELAY_SCALE=soak: make soak]; RELAY_HTTP_PARTNERS [4, soak 20].
"""
import json
import os
import sys
import time

from rel import Emulator, Relay, Results, TempDir, base_config, figure, scaled, store_ids, \
    wait_for

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from test_http_dest import ODOO_TOKEN, SECRETS, Receiver, rpc  # noqa: E402

OUTAGE_S = float(os.environ.get("RELAY_HTTP_OUTAGE_S", scaled(5, 60)))
PARTNERS = int(os.environ.get("RELAY_HTTP_PARTNERS", scaled(4, 20)))
CREATE_POSTS = 11   # what one create fired in capture 472-473


class Odoo:
    """The emulated Odoo and its automation rule: each change is made with
    execute_kw, then posted to the relay with the record's fields as read
    back, as Odoo's webhook action does."""

    def __init__(self, emu, relay):
        self.emu, self.relay = emu, relay
        self.version = {}   # partner id -> last version written
        self.posted = {}    # partner id -> [version, ...] in the order changed

    def post(self, pid, times=1):
        rec = rpc(self.emu, "res.partner", "read", [pid], fields=["name", "email", "ref"])[0]
        body = {"_action": "Relay partner webhook(#180)", "_id": pid, "_model": "res.partner",
                "email": rec["email"], "id": pid, "name": rec["name"], "ref": rec["ref"]}
        data = json.dumps(body, sort_keys=True).encode()
        for _ in range(times):
            st, _, _ = self.relay.request("POST", "/hooks/odoo/" + ODOO_TOKEN, data,
                                          {"Content-Type": "application/json"})
            if st not in (200, 202):
                raise AssertionError("the relay answered %d to Odoo's post" % st)

    def create(self, n):
        pid = rpc(self.emu, "res.partner", "create",
                  {"name": "Partner %d" % n, "email": "p%d-v0@example.com" % n, "ref": "v0"})
        self.version[pid] = 0
        self.posted[pid] = [0]
        self.post(pid, CREATE_POSTS)
        return pid

    def write(self, pid):
        v = self.version[pid] + 1
        rpc(self.emu, "res.partner", "write", [pid],
            {"ref": "v%d" % v, "email": "p%d-v%d@example.com" % (pid, v)})
        self.version[pid] = v
        self.posted[pid].append(v)
        self.post(pid)

    def write_all(self):
        for pid in list(self.version):
            self.write(pid)

    def changes(self):
        return sum(len(v) for v in self.posted.values())


def delivered(rcv):
    """The distinct webhook-ids the receiver accepted (answered 2xx)."""
    with rcv.lock:
        return {h["webhook-id"] for (h, _, _), st in zip(rcv.got, rcv.status) if st < 300}


def test_e2e(t):
    with TempDir() as tmp:
        rcv = Receiver()
        emu = Emulator(tmp)
        state = os.path.join(tmp, "state")
        sources = base_config("x")["sources"]
        sources["odoo"] = {"kind": "odoo",
                           "verify": {"scheme": "url_token", "secret_file": "odoo.token"}}
        cfg = base_config(
            state, sources=sources,
            destinations={"wh": {"kind": "http", "url": rcv.url, "secret_file": "wh.key",
                                 "allow_private": True, "timeout_ms": 10000,
                                 "probe_base_ms": 100, "probe_cap_ms": 500,
                                 "max_in_flight": 4,
                                 "backoff": {"base_ms": 50, "cap_ms": 500, "max_attempts": 1000,
                                             "max_age_s": 86400}}},
            delivery={"probe_base_ms": 100, "probe_cap_ms": 500, "drain_timeout_ms": 2000},
            routes=[{"name": "partners-out", "source": "odoo", "destination": "wh",
                     "body": "as_received"}])
        r = Relay(tmp, cfg, secrets=SECRETS)
        odoo = Odoo(emu, r)

        def drained():
            return not store_ids(state) and len(delivered(rcv)) == odoo.changes()

        try:
            r.wait_delivering()
            # created, then written once
            pids = [odoo.create(n) for n in range(PARTNERS)]
            odoo.write_all()
            wait_for(drained, timeout=30, what="the first changes delivered")
            t.eq(len(delivered(rcv)), 2 * PARTNERS, "11 identical posts of a create: one event")

            # the receiver goes down for OUTAGE_S while Odoo goes on changing
            rcv.down()
            t0 = time.monotonic()
            odoo.write_all()
            odoo.write_all()
            while time.monotonic() - t0 < OUTAGE_S:
                time.sleep(0.2)
            t.check(r.metric("relay_circuit_open", 'destination="wh"') == 1.0,
                    "the circuit is open during the outage")
            rcv.up()
            t1 = time.monotonic()
            wait_for(drained, timeout=60, what="the backlog after the outage")
            figure("http outage", "receiver down %.0f s, %d changes queued, drained in %.1f s"
                   % (OUTAGE_S, 2 * PARTNERS, time.monotonic() - t1),
                   "ctest -R rel_http_e2e; RELAY_HTTP_OUTAGE_S=60 for a minute")

            # kill -9 while a delivery is at the receiver (it answers late)
            before = len(rcv.posts())
            rcv.plan = [(200, {}, b"", 3.0)]
            odoo.write(pids[0])
            wait_for(lambda: len(rcv.posts()) > before, what="the delivery reaches the receiver")
            r.kill9()
            r.start()
            odoo.write(pids[0])  # and one more after the restart
            wait_for(drained, timeout=30, what="delivered after the kill")
            ids = [h["webhook-id"] for h, _, _ in rcv.posts()[before:]]
            t.check(ids.count(ids[0]) >= 2, "the change cut by the kill is delivered again, "
                    "with the same webhook-id: %r" % ids)

            # 410: the destination stops until an operator resumes it
            rcv.mode = "gone"
            odoo.write(pids[1])
            wait_for(lambda: r.metric("relay_destination_paused", 'destination="wh"') == 1.0,
                     what="the destination paused by the 410")
            gone_at = len(rcv.posts())
            odoo.write_all()     # queued meanwhile
            rcv.mode = "ok"
            time.sleep(0.5)
            t.eq(len(rcv.posts()), gone_at, "nothing sent while paused")
            p = r.ctl("resume", "--destination", "wh")
            t.eq(p.returncode, 0, "resume: %s" % p.stderr)
            wait_for(drained, timeout=30, what="delivered after the resume")

            # what the receiver saw
            got = rcv.posts()
            t.check(all(ok for _, _, ok in got), "every request signed (%d requests)" % len(got))
            bodies = {}
            for h, b, _ in got:
                bodies.setdefault(h["webhook-id"], set()).add(b)
            t.check(all(len(v) == 1 for v in bodies.values()),
                    "a redelivery carries the same body as the first")
            t.eq(len(delivered(rcv)), odoo.changes(), "each change accepted exactly once")
            seen = {}
            for h, b, _ in got:
                d = json.loads(b)
                seen.setdefault(d["_id"], []).append((int(d["ref"][1:]), h["webhook-id"]))
            in_order = True
            for pid, posted in odoo.posted.items():
                seq = seen.get(pid, [])
                firsts = []
                for v, wid in seq:
                    if not firsts or firsts[-1][1] != wid:
                        if any(w == wid for _, w in firsts):
                            in_order = False  # an old id after a newer one
                        firsts.append((v, wid))
                if [v for v, _ in firsts] != posted:
                    in_order = False
                    print("partner %d: posted %r, received %r" % (pid, posted, seq),
                          file=sys.stderr)
            t.check(in_order, "each partner's changes in the order made, none reordered")
            figure("http end to end", "%d partners, %d changes, %d requests received, %d "
                   "accepted once each, all signed, in order, across a %.0f s outage, a kill -9 "
                   "and a 410" % (PARTNERS, odoo.changes(), len(got), len(delivered(rcv)),
                                  OUTAGE_S), "ctest -R rel_http_e2e")
        finally:
            r.stop()
            rcv.down()
            emu.stop()


if __name__ == "__main__":
    t = Results()
    t.run(test_e2e)
    t.done()
