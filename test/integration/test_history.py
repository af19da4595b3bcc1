"""The history, trace, dead edit and the audit trail, through the real
odoo-relayd, odoo-relayctl and the Odoo emulator: delivered events stay in
the history with what Odoo answered; events show and events list
--delivered find them; trace finds an event by its dedup key, lane,
external ID and Odoo record, queued, dead or delivered; dead edit refuses a
body that is not JSON and keeps the original, and an edit replayed reaches
Odoo once with the edited body; every writing verb leaves an audit record;
every new verb has --json; retention 0 keeps no history, and expired
entries are swept at start; superseded, stale and unrouted events enter the
history too; a small store whose history would fill it keeps taking events."""
import json
import os
import subprocess
import time

from harness import RELAYCTL, Emulator, Relay, Results, TempDir, base_config, store_ids, wait_for

ROUTE = {
    "name": "shop-customers",
    "source": "shop",
    "topics": ["customers/*"],
    "operation": "upsert",
    "model": "res.partner",
    "external_id": "shop_customer_{/id}",
    "fields": {"name": "{/first_name} {/last_name}", "email": {"pointer": "/email"}},
    "batch": {"max_rows": 1},
}


def config(tmp, emu, **delivery):
    d = {"backoff": {"base_ms": 50, "cap_ms": 400, "max_attempts": 25, "max_age_s": 3600},
         "probe_base_ms": 100, "probe_cap_ms": 400, "circuit_failures": 5,
         "drain_timeout_ms": 2000}
    d.update(delivery)
    return base_config(os.path.join(tmp, "state"),
                       odoo={"url": emu.url, "database": "test", "login": "admin",
                             "api_key_file": "odoo.key", "protocol": "jsonrpc"},
                       delivery=d, routes=[ROUTE])


def customer(i, email=None):
    return {"id": i, "first_name": "Ada", "last_name": "L%d" % i,
            "email": email or "c%d@example.com" % i}


def ctl(r, *args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([RELAYCTL, "--config", r.config_path] + list(args), capture_output=True,
                       text=True, timeout=60, env=e)
    return p.returncode, p.stdout, p.stderr


def ctl_json(t, r, *args, want=0, lines=False):
    rc, out, err = ctl(r, "--json", *args)
    if want is not None:
        t.eq(rc, want, "exit status of %s (%s)" % (" ".join(args), err.strip()))
    if lines:
        return [json.loads(l) for l in out.splitlines() if l.strip()]
    return json.loads(out)


def queue_empty(r):
    return not store_ids(r.cfg["state_dir"])


def dead_ids(r):
    return sorted(str(d["id"]) for d in store_ids(r.cfg["state_dir"], "dead"))


def partner(emu, i):
    p = [x for x in emu.records("res.partner")
         if "odoo_relay.shop_customer_%d" % i in x.get("xmlids", [])]
    return p[0] if p else None


def test_history_and_trace(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, config(tmp, emu))
        try:
            r.wait_delivering()
            ids = []
            for k, (cid, wh) in enumerate(((1, "wh-1"), (2, "wh-2"), (1, "wh-3"))):
                st, _, js = r.post_shop(customer(cid, email="v%d@example.com" % k), wh,
                                        topic="customers/update")
                t.eq(st, 202, "accepted")
                ids.append(js["id"])
            wait_for(lambda: queue_empty(r), what="queue drained")
            pid = partner(emu, 1)["id"]

            hist = ctl_json(t, r, "events", "list", "--delivered", lines=True)
            t.eq(sorted(h["id"] for h in hist), sorted(ids), "every delivered event in the history")
            one = [h for h in hist if h["id"] == ids[0]][0]
            t.eq(one["outcome"]["outcome"], "delivered", "outcome delivered")
            t.eq(one["outcome"]["destination"], "odoo", "destination")
            t.eq(one["outcome"]["external_id"], "odoo_relay.shop_customer_1", "external ID")
            t.eq(one["outcome"]["odoo_model"], "res.partner", "model written")
            t.eq(one["outcome"]["odoo_id"], pid, "the record id Odoo answered")
            t.eq(one["outcome"]["http_status"], 200, "HTTP status")
            t.check(len(one["outcome"]["body_sha256"]) == 64, "digest")
            t.eq(ctl_json(t, r, "events", "list", "--delivered", "--lane", "2", lines=True)[0]["id"],
                 ids[1], "--lane filter on the history")
            t.eq(ctl_json(t, r, "events", "list", "--delivered", "--until", "2000-01-01",
                          lines=True), [], "--until filter on the history")

            rc, out, err = ctl(r, "events", "show", ids[0])
            t.check(rc == 0 and "delivered" in out and "external ID odoo_relay.shop_customer_1" in out
                    and "v0@example.com" in out, "events show of a delivered event:\n" + out + err)
            shown = ctl_json(t, r, "events", "show", ids[0])
            t.eq(shown["state"], "history", "events show --json: state")
            t.eq(shown["body_json"]["email"], "v0@example.com", "the body kept")
            rc, _, err = ctl(r, "events", "list", "--since", "1h")
            t.check(rc == 64 and "--delivered" in err, "--since without --delivered refused")

            # trace by each kind of key
            for key, want in (("wh-2", [ids[1]]), ("1", [ids[0], ids[2]]),
                              ("odoo_relay.shop_customer_1", [ids[0], ids[2]]),
                              ("res.partner,%d" % pid, [ids[0], ids[2]])):
                got = ctl_json(t, r, "trace", key)
                t.eq(sorted(e["id"] for e in got["events"]), sorted(want), "trace %s" % key)
                whats = [s["what"] for s in got["story"]]
                t.check("received" in whats and "delivered" in whats,
                        "trace %s tells the story: %r" % (key, whats))
                ats = [s["at_ms"] for s in got["story"]]
                t.eq(ats, sorted(ats), "trace %s in time order" % key)
            got = ctl_json(t, r, "trace", "--kind", "dedup", "1")
            t.eq(got["events"], [], "--kind dedup: a lane is not a dedup key")
            rc, out, _ = ctl(r, "trace", "wh-1")
            t.check(rc == 0 and "received from shop" in out and "delivered to odoo" in out,
                    "trace text:\n" + out)
            rc, out, _ = ctl(r, "trace", "no-such-key")
            t.check(rc == 1 and "nothing matches" in out, "trace of nothing: exit 1")

            # a dead letter is traced too
            emu.fault(mode="validation", field="email", value="bad@example.com",
                      message="Invalid email address")
            st, _, js = r.post_shop(customer(7, email="bad@example.com"), "wh-bad")
            bad = js["id"]
            wait_for(lambda: dead_ids(r) == [bad], what="the dead letter")
            got = ctl_json(t, r, "trace", "7")
            t.eq([(e["id"], e["state"]) for e in got["events"]], [(bad, "dead")], "trace a dead letter")
            t.check("dead" in [s["what"] for s in got["story"]], "its story says dead")
            got = ctl_json(t, r, "trace", "odoo_relay.shop_customer_7")
            t.eq([e["id"] for e in got["events"]], [bad], "a dead letter by its external ID")

            # edit: not JSON is refused, the original stays
            p = subprocess.run([RELAYCTL, "--config", r.config_path, "dead", "edit", bad,
                                "--body-file", "-"], input="{not json", capture_output=True,
                               text=True, timeout=60)
            t.check(p.returncode == 65 and "not valid JSON" in p.stderr,
                    "invalid JSON refused (%d %s)" % (p.returncode, p.stderr))
            d = ctl_json(t, r, "dead", "show", bad)
            t.eq(d["body_json"]["email"], "bad@example.com", "original body kept")
            t.check("versions" not in d, "no version stored by a refused edit")
            # $EDITOR that changes nothing: no change
            rc, out, _ = ctl(r, "dead", "edit", bad, env={"EDITOR": "true", "VISUAL": ""})
            t.check(rc == 0 and "no change" in out, "an editor that changes nothing: " + out)
            # $EDITOR that writes a fix, without --replay: stored, still dead
            rc, out, err = ctl(r, "dead", "edit", bad,
                               env={"VISUAL": "sed -i s/bad@example.com/ok1@example.com/"})
            t.check(rc == 0 and "version 2" in out, "edited in $VISUAL: " + out + err)
            t.eq(dead_ids(r), [bad], "not replayed without --replay")
            rc, out, _ = ctl(r, "dead", "show", bad)
            t.check(rc == 0 and "body versions (2)" in out and
                    '-   "email": "bad@example.com"' in out and
                    '+   "email": "ok1@example.com"' in out, "dead show: versions and a diff:\n" + out)
            d = ctl_json(t, r, "dead", "show", bad)
            t.eq(([v["version"] for v in d.get("versions", [])], d["body_json"]["email"]),
                 ([1, 2], "ok1@example.com"), "dead show --json: versions, the edited body")
            t.check("+" in (d.get("diff") or ""), "dead show --json: the diff")
            loads = emu.stats().get("calls_by_method", {}).get("res.partner.load", 0)
            emu.fault(mode="clear_validation")
            res = ctl_json(t, r, "dead", "edit", bad, "--set", "/email=good@example.com",
                           "--replay")
            t.eq((res["version"], res["replayed"]), (3, True), "dead edit --json")
            wait_for(lambda: partner(emu, 7) is not None, what="the edited event delivered")
            wait_for(lambda: queue_empty(r), what="queue drained")
            t.eq(partner(emu, 7)["email"], "good@example.com", "Odoo got the edited body")
            t.eq(emu.stats().get("calls_by_method", {}).get("res.partner.load", 0), loads + 1,
                 "Odoo got it once")
            shown = ctl_json(t, r, "events", "show", bad)
            t.eq([v["version"] for v in shown.get("versions", [])], [1, 2, 3],
                 "the history keeps every version")
            t.check("bad@example.com" in shown["versions"][0]["body"], "the original among them")
            rc, out, _ = ctl(r, "events", "show", bad)
            t.check("- " in out and "+ " in out and "good@example.com" in out,
                    "versions and a diff shown:\n" + out)
            got = ctl_json(t, r, "trace", "wh-bad")
            whats = [s["what"] for s in got["story"]]
            t.check("edited" in whats and "dead edit" in whats and whats[-1] == "delivered",
                    "trace: edits and the replay, then delivered: %r" % whats)

            # the audit trail after each verb
            for args in (["pause", "--route", "shop-customers"], ["resume", "--route", "shop-customers"],
                         ["pause"], ["resume"]):
                rc, _, err = ctl(r, *args)
                t.eq(rc, 0, "%s (%s)" % (args, err))
            emu.fault(mode="validation", field="email", value="bad@example.com", message="no")
            st, _, js = r.post_shop(customer(8, email="bad@example.com"), "wh-bad-2")
            st, _, js2 = r.post_shop(customer(9, email="bad@example.com"), "wh-bad-3")
            wait_for(lambda: dead_ids(r) == sorted([js["id"], js2["id"]]), what="two dead letters")
            rc, _, err = ctl(r, "dead", "replay", js["id"])
            t.eq(rc, 0, "dead replay (%s)" % err)
            wait_for(lambda: dead_ids(r) == sorted([js["id"], js2["id"]]), what="dead again")
            rc, _, err = ctl(r, "dead", "drop", js2["id"])
            t.eq(rc, 0, "dead drop (%s)" % err)
            audit = ctl_json(t, r, "audit", lines=True)
            verbs = [a["verb"] for a in audit]
            t.eq(verbs, ["dead edit", "dead edit", "pause", "resume", "pause", "resume",
                         "dead replay", "dead drop"], "one audit record per write")
            user = audit[0]["user"]
            t.check(user and all(a["user"] == user for a in audit), "the Unix user: %r" % user)
            t.eq(audit[-1]["ids"], [js2["id"]], "the ids a write touched")
            t.eq(audit[-1]["count"], 1, "how many")
            t.eq(audit[2]["what"], "--route shop-customers", "what was asked")
            t.eq([a["verb"] for a in ctl_json(t, r, "audit", "--verb", "drop", lines=True)],
                 ["dead drop"], "audit --verb")
            t.eq([a["verb"] for a in ctl_json(t, r, "audit", "--id", bad, lines=True)],
                 ["dead edit", "dead edit"], "audit --id")
            t.eq(ctl_json(t, r, "audit", "--user", "nobody-at-all", lines=True), [], "audit --user")
            t.eq(len(ctl_json(t, r, "audit", "--limit", "2", lines=True)), 2, "audit --limit")
            rc, out, _ = ctl(r, "audit")
            t.check(rc == 0 and "dead drop" in out and user in out, "audit table:\n" + out)
            # a dropped dead letter stays in the history
            dropped = ctl_json(t, r, "events", "show", js2["id"])
            t.eq(dropped["outcome"]["outcome"], "dropped", "dropped dead letter in the history")
            # compact (with the daemon stopped) is recorded in the compacted store
            r.stop()
            rc, _, err = ctl(r, "compact")
            t.eq(rc, 0, "compact (%s)" % err)
            audit = ctl_json(t, r, "audit", lines=True)
            t.eq(audit[-1]["verb"], "compact", "compact in the audit trail")
            t.eq(len(audit), 9, "the earlier records kept by the compaction")
        finally:
            r.stop()
            emu.stop()


def test_retention(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        cfg = config(tmp, emu, retention_s=0)
        cfg["sources"]["shop"]["retain_body"] = False
        r = Relay(tmp, cfg)
        try:
            r.wait_delivering()
            st, _, js = r.post_shop(customer(1), "wh-1")
            wait_for(lambda: queue_empty(r), what="delivered")
            t.eq(ctl_json(t, r, "events", "list", "--delivered", lines=True), [],
                 "retention 0: no history")
            r.stop()
            cfg = config(tmp, emu, retention_s=1)
            cfg["sources"]["shop"]["retain_body"] = False
            r.write_config(cfg)
            r.start()
            r.wait_delivering()
            st, _, js = r.post_shop(customer(2), "wh-2")
            wait_for(lambda: queue_empty(r), what="delivered")
            h = ctl_json(t, r, "events", "show", js["id"])
            t.check(h["body_json"] is None and h["body_bytes"] is None and h["outcome"]["body_kept"] is False and
                    len(h["outcome"]["body_sha256"]) == 64, "retain_body false: the digest only")
            # expired by the next start, when the daemon sweeps
            wait_for(lambda: time.time() * 1000 > h["outcome"]["expires_ms"], timeout=5,
                     what="expiry passed")
            r.stop()
            r.start()
            wait_for(lambda: ctl(r, "events", "show", js["id"])[0] == 1, what="swept at start")
        finally:
            r.stop()
            emu.stop()


def test_deadlines(t):
    """Answers are measured per source against its deadline_ms; one that took
    more than half of it (a sender slow to send its body here) is counted."""
    import socket
    with TempDir() as tmp:
        emu = Emulator(tmp)
        cfg = config(tmp, emu)
        cfg["sources"]["open"]["deadline_ms"] = 100
        r = Relay(tmp, cfg)
        try:
            st, _, _ = r.post_shop(customer(1), "wh-1")
            t.eq(st, 202, "accepted")
            t.eq(r.metric("relay_ack_seconds_count", 'source="shop"'), 1.0, "ack histogram by source")
            t.eq(r.metric("relay_ack_slow_total", 'source="shop"'), 0.0, "not slow")
            body = json.dumps({"id": "o-1", "type": "x"}).encode()
            s = socket.create_connection(("127.0.0.1", r.port))
            s.sendall(b"POST /hooks/open HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                      b"\r\nContent-Length: %d\r\n\r\n" % len(body))
            time.sleep(0.2)  # the stimulus: a sender slow to send its body
            s.sendall(body)
            answer = s.recv(4096)
            s.close()
            t.check(answer.startswith(b"HTTP/1.1 202"), "slow request accepted: %r" % answer[:40])
            t.eq(r.metric("relay_ack_slow_total", 'source="open"'), 1.0,
                 "an answer over half the deadline counted")
            t.eq(r.metric("relay_ack_slow_total", 'source="shop"'), 0.0, "per source")
            st = wait_for(lambda: (lambda s: s if s.get("acks") else None)(
                ctl_json(t, r, "status", want=None)), what="acks in status")
            t.eq(st["history"]["retention_s"], 604800, "status: the history's retention")
            acks = {a["source"]: a for a in st["acks"]["sources"]}
            t.eq((acks["open"]["slow"], acks["open"]["deadline_ms"]), (1, 100), "status: open")
            t.eq((acks["shop"]["slow"], acks["shop"]["deadline_ms"]), (0, 5000),
                 "status: shop, Shopify's 5 s by default")
            rc, out, _ = ctl(r, "status")
            t.check("over half its 100 ms deadline" in out and "history " in out,
                    "status text:\n" + out)
        finally:
            r.stop()
            emu.stop()


def test_outcomes(t):
    """Superseded, stale and unrouted events enter the history too, with
    their outcome; a full store keeps taking new events."""
    with TempDir() as tmp:
        emu = Emulator(tmp)
        cfg = config(tmp, emu)
        cfg["routes"] = [
            dict(ROUTE, name="sup", topics=["customers/update"], supersede=True),
            dict(ROUTE, name="ver", topics=["customers/versioned"], version="/v"),
        ]
        cfg["sources"]["open"]["unrouted"] = "drop"
        r = Relay(tmp, cfg)
        try:
            r.wait_delivering()
            r.ctl("pause")
            ids = [r.post_shop(customer(5, email="s%d@example.com" % k), "sup-%d" % k,
                               topic="customers/update")[2]["id"] for k in range(3)]
            wait_for(lambda: len(store_ids(r.cfg["state_dir"])) == 3, what="3 stored")
            r.ctl("resume")
            wait_for(lambda: queue_empty(r), what="lane drained")
            out = {h["id"]: h["outcome"] for h in
                   ctl_json(t, r, "events", "list", "--delivered", lines=True)}
            t.eq([out[i]["outcome"] for i in ids], ["superseded", "superseded", "delivered"],
                 "superseded ones in the history")
            t.eq(out[ids[0]]["note"], "superseded by event %s" % ids[2], "by which")

            new = dict(customer(6), v="2025-06-01T12:00:02Z")
            old = dict(customer(6, email="old@example.com"), v="2025-06-01T12:00:01Z")
            a = r.post_shop(new, "ver-1", topic="customers/versioned")[2]["id"]
            wait_for(lambda: queue_empty(r), what="v2 applied")
            b = r.post_shop(old, "ver-2", topic="customers/versioned")[2]["id"]
            wait_for(lambda: queue_empty(r), what="v1 settled")
            h = ctl_json(t, r, "events", "show", b)
            t.eq(h["outcome"]["outcome"], "stale", "a stale event in the history")
            t.check("stale" in (h["outcome"]["note"] or ""), "with why: %r" % h["outcome"]["note"])
            t.eq(ctl_json(t, r, "events", "show", a)["outcome"]["outcome"], "delivered", "v2")

            st, _, data = r.request("POST", "/hooks/open", b'{"id":"u1","type":"nothing"}',
                                    {"Content-Type": "application/json"})
            u = json.loads(data)["id"]
            wait_for(lambda: queue_empty(r), what="the unrouted one settled")
            h = ctl_json(t, r, "events", "show", u)
            t.eq(h["outcome"]["outcome"], "unrouted", "an unrouted event dropped into the history")
            got = ctl_json(t, r, "trace", "--source", "open", "u1")
            t.eq([e["id"] for e in got["events"]], [u], "traced by its dedup key")
        finally:
            r.stop()
            emu.stop()


def test_full_store(t):
    """A small store whose history would fill it: the history gives way and
    every new event is still accepted and delivered."""
    with TempDir() as tmp:
        emu = Emulator(tmp)
        cfg = config(tmp, emu)
        cfg["map_size_mb"] = 4
        r = Relay(tmp, cfg)
        try:
            r.wait_delivering()
            pad = "x" * 1500
            refused = 0
            for k in range(2500):
                st, _, _ = r.post_shop(dict(customer(k), note=pad), "full-%d" % k)
                if st != 202:
                    refused += 1
                if k % 250 == 249:
                    wait_for(lambda: queue_empty(r), timeout=60, what="delivered")
            t.eq(refused, 0, "every event accepted")
            wait_for(lambda: queue_empty(r), timeout=60, what="delivered")
            t.check(r.metric("relay_history_gave_way_total") > 0, "the history gave way")
            t.check("history gives way" in r.logs(), "and said so")
            n = r.metric("relay_history_events")
            t.check(0 < n < 2500, "the history keeps what fits (%d)" % n)
        finally:
            r.stop()
            emu.stop()


if __name__ == "__main__":
    t = Results()
    t.run(test_history_and_trace)
    t.run(test_retention)
    t.run(test_deadlines)
    t.run(test_outcomes)
    t.run(test_full_store)
    t.done()
