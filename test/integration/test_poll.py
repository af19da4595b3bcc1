"""Polling out of Odoo: a source of kind odoo-poll reads res.partner from the
emulator (which stamps write_date as Odoo does) and its events go through a
route to an HTTP receiver. Proves: a row committed late with an older
write_date is still sent; 500 rows sharing one second, page size 100, all
sent once; an archived record sent as a change; a deleted one as a
deletion; a kill -9 between poll and commit, and one after the commit,
lose and repeat nothing; a restart resumes from the cursor; odoo-relayctl
sync polls now or resends records; status shows each poller; a poller
whose Odoo is down pauses and catches up; and both ways without echoes: a
customer from the shop stored in Odoo and polled out is sent once, a
relay write into it sends nothing, a person's change to an Odoo-owned
field goes out once."""
import datetime
import json
import os
import signal
import sys

from harness import Emulator, Relay, Results, TempDir, base_config, store_ids, wait_for

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_http_dest import Receiver, SECRETS  # noqa: E402


def execute(emu, model, method, args, kwargs=None):
    import http.client
    doc = {"jsonrpc": "2.0", "method": "call", "id": 1,
           "params": {"service": "object", "method": "execute_kw",
                      "args": ["test", 2, "admin", model, method, args, kwargs or {}]}}
    c = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=30)
    c.request("POST", "/jsonrpc", json.dumps(doc).encode(), {"Content-Type": "application/json"})
    r = json.loads(c.getresponse().read())
    c.close()
    if "error" in r:
        raise AssertionError("odoo error: %s" % r["error"]["data"]["message"])
    return r.get("result")


def config(tmp, emu, rcv, poll=None, routes=None, **over):
    p = {"kind": "odoo-poll", "model": "res.partner", "fields": ["name", "email", "phone"],
         "domain": [["email", "like", "@poll.test"]],
         "interval_s": 1, "overlap_s": 60, "page_size": 100, "deletion_check_s": 1}
    p.update(poll or {})
    sources = base_config("x")["sources"]
    sources["partners"] = p
    cfg = base_config(
        os.path.join(tmp, "state"), sources=sources,
        odoo={"url": emu.url, "database": "test", "login": "admin", "password_file": "odoo.key"},
        destinations={"shopapp": {"kind": "http", "url": rcv.url, "secret_file": "wh.key",
                                  "allow_private": True, "probe_base_ms": 100,
                                  "probe_cap_ms": 300, "timeout_ms": 2000,
                                  "backoff": {"base_ms": 50, "cap_ms": 300,
                                              "max_attempts": 50, "max_age_s": 3600}}},
        delivery={"probe_base_ms": 100, "probe_cap_ms": 300, "drain_timeout_ms": 2000},
        routes=routes or [{"name": "partners-out", "source": "partners", "destination": "shopapp",
                           "operation": "post", "body": "as_received"}])
    cfg.update(over)
    return cfg


def bodies(rcv):
    return [json.loads(b) for _, b, _ in rcv.posts()]


def sent(rcv, name=None, topic_deleted=False):
    """The events the receiver got for partner name (each webhook-id once: a
    retry of one event is not a second event)."""
    seen, out = set(), []
    for h, b, _ in rcv.posts():
        if h.get("webhook-id") in seen:
            continue
        seen.add(h.get("webhook-id"))
        out.append(json.loads(b))
    if name is None:
        return out
    return [b for b in out if b.get("name") == name]


def ctl_json(r, *args):
    p = r.ctl("--json", *args)
    return json.loads(p.stdout) if p.stdout.strip() else None


def poll_state(r):
    st = ctl_json(r, "status")
    return (st or {}).get("pollers", {}).get("partners", {})


def partner(emu, name, **vals):
    v = {"name": name, "email": name.lower().replace(" ", ".") + "@poll.test"}
    v.update(vals)
    return execute(emu, "res.partner", "create", [v])


def searches(emu):
    return emu.control("GET", "/control/stats")["calls_by_method"].get("res.partner.search_read", 0)


def start(tmp, **kw):
    emu = Emulator(tmp)
    rcv = Receiver()
    r = Relay(tmp, config(tmp, emu, rcv, **kw), secrets=SECRETS)
    return emu, rcv, r


def stop(emu, r):
    r.stop()
    emu.stop()


def test_late_row_and_archive_and_delete(t):
    with TempDir() as tmp:
        emu, rcv, r = start(tmp)
        try:
            first = partner(emu, "Ada Early")
            wait_for(lambda: sent(rcv, "Ada Early"), what="first record sent")
            b = sent(rcv, "Ada Early")[0]
            t.eq(b["id"], first, "body carries the id")
            t.eq(b["model"], "res.partner", "and the model")
            t.check(len(b["write_date"]) == 19 and b["active"] is True, "write_date and active")
            # a long transaction: its row is stamped now but appears later
            emu.control("POST", "/control/hold", {})
            late = partner(emu, "Late Row")
            emu.control("POST", "/control/clock", {"offset_ms": 5000})
            partner(emu, "After Row")
            wait_for(lambda: sent(rcv, "After Row"), what="the later row sent first")
            t.eq(sent(rcv, "Late Row"), [], "the held row is not visible yet")
            emu.control("POST", "/control/release", {})
            wait_for(lambda: sent(rcv, "Late Row"), what="the late row with its older stamp")
            rows = {x["id"]: x for x in emu.records() if x["id"] == late}
            t.check(rows[late]["write_date"] < sent(rcv, "After Row")[0]["write_date"] + ".9",
                    "the late row's stamp is older than what the cursor had passed")
            # archived: a change with active false
            execute(emu, "res.partner", "write", [[first], {"active": False}])
            wait_for(lambda: len(sent(rcv, "Ada Early")) == 2, what="archiving sent")
            t.eq(sent(rcv, "Ada Early")[1]["active"], False, "archived record sent as a change")
            # deleted: a deletion event, once
            execute(emu, "res.partner", "unlink", [[late]])
            wait_for(lambda: [b for b in sent(rcv) if b.get("id") == late and "name" not in b],
                     what="deletion sent")
            dels = [h for h, b, _ in rcv.posts() if json.loads(b).get("id") == late
                    and "name" not in json.loads(b)]
            t.eq(len({h["webhook-id"] for h in dels}), 1, "one deletion event")
            n = searches(emu)
            wait_for(lambda: searches(emu) >= n + 3, what="three more polls")
            for name in ("Ada Early", "Late Row", "After Row"):
                t.eq(len(sent(rcv, name)), 2 if name == "Ada Early" else 1,
                     "%s sent exactly as often as it changed" % name)
            st = poll_state(r)
            t.eq(st.get("model"), "res.partner", "status shows the poller")
            t.check(st.get("cursor", "") >= b["write_date"], "status shows the cursor")
            t.check(st.get("known") == 2 and st.get("deleted") == 1, "known and deleted counts")
            t.check(st.get("error") == "" and st.get("last_ok_ms", 0) > 0, "last run without error")
            t.eq(r.metric("relay_poll_changes_total", 'source="partners"'), 4.0,
                 "changes counted in /metrics")
            t.eq(r.metric("relay_poll_deletions_total", 'source="partners"'), 1.0,
                 "deletions counted")
            t.eq(r.metric("relay_poll_known_records", 'source="partners"'), 2.0, "known gauge")
        finally:
            stop(emu, r)


def test_500_in_one_second(t):
    with TempDir() as tmp:
        emu, rcv, r = start(tmp)
        try:
            ids = execute(emu, "res.partner", "create",
                          [[{"name": "Bulk %03d" % i, "email": "b%03d@poll.test" % i}
                            for i in range(500)]])
            recs = [x for x in emu.records() if x["id"] in set(ids)]
            t.eq(len({x["write_date"][:19] for x in recs}), 1, "500 rows share one second")
            wait_for(lambda: len(sent(rcv)) >= 500, timeout=60, what="500 sent")
            n = searches(emu)
            wait_for(lambda: searches(emu) >= n + 12, timeout=30, what="more polls")
            got = [b["id"] for b in sent(rcv)]
            t.eq(len(got), 500, "500 events, no more")
            t.eq(sorted(got), sorted(ids), "each record sent once")
        finally:
            stop(emu, r)


def test_crash_between_poll_and_commit(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        rcv = Receiver()
        cfg = config(tmp, emu, rcv)
        # the relay waits for Odoo longer than the test can last: only an
        # answer could end the poll, never a timeout
        cfg["odoo"]["timeout_ms"] = 3600000
        r = Relay(tmp, cfg, secrets=SECRETS)
        try:
            partner(emu, "Before Crash")
            wait_for(lambda: sent(rcv, "Before Crash"), what="first record")
            # Odoo's answers to polls are held (600 s): a poll reads, and the
            # relay dies before it had the answer to commit, however slow
            # the machine
            emu.fault(mode="slow", delay_ms=600000, method="res.partner.search_read")
            x = partner(emu, "In Flight")
            n = searches(emu)
            # a search_read that came after the record was made: it reads it
            wait_for(lambda: searches(emu) > n, what="a poll in flight")
            dom = emu.control("GET", "/control/hold")["last_search_read"]["res.partner"]
            cursor = poll_state(r).get("cursor")
            since = [leaf[2] for leaf in dom if leaf[0] == "write_date"]
            t.check(cursor and since and since[0] <= cursor,
                    "the poll in flight reads from before the cursor (%s): %s" % (cursor, since))
            # it has committed nothing: no event stored, nothing sent
            t.eq([e for e in store_ids(r.cfg["state_dir"]) if e.get("source") == "partners"],
                 [], "the poll in flight stored nothing")
            r.kill9()
            emu.fault(mode="none")
            t.eq(sent(rcv, "In Flight"), [], "nothing of the killed poll was sent")
            r.start()
            wait_for(lambda: sent(rcv, "In Flight"), what="sent after the restart")
            dom = emu.control("GET", "/control/hold")["last_search_read"]["res.partner"]
            since = [leaf[2] for leaf in dom if leaf[0] == "write_date"][0]
            floor = (datetime.datetime.strptime(cursor, "%Y-%m-%d %H:%M:%S") -
                     datetime.timedelta(seconds=60)).strftime("%Y-%m-%d %H:%M:%S")
            t.check(cursor and since >= floor, "the restart resumed from the cursor (%s) less "
                    "the overlap, not from the start: %s" % (cursor, since))
            # after the commit, before delivery: the receiver refuses
            rcv.mode = "fail"
            y = partner(emu, "Queued Then Killed")
            wait_for(lambda: any(e.get("source") == "partners"
                                 for e in store_ids(r.cfg["state_dir"])),
                     what="the event stored")
            r.kill9()
            rcv.mode = "ok"
            r.start()
            wait_for(lambda: sent(rcv, "Queued Then Killed"), what="delivered after restart")
            n = searches(emu)
            wait_for(lambda: searches(emu) >= n + 3, what="more polls")
            t.eq(len(sent(rcv, "In Flight")), 1, "the killed poll's record sent once")
            t.eq(len(sent(rcv, "Queued Then Killed")), 1, "the stored event sent once")
            t.eq(len(sent(rcv, "Before Crash")), 1, "nothing sent again")
            t.check(x != y, "two records")
        finally:
            stop(emu, r)


def test_sync_status_and_outage(t):
    with TempDir() as tmp:
        # the record exists before the relay starts: the poll at start must
        # find it whenever that poll runs (the next one is an hour away)
        emu = Emulator(tmp)
        rcv = Receiver()
        a = partner(emu, "Sync Me")
        r = Relay(tmp, config(tmp, emu, rcv, poll={"interval_s": 3600, "deletion_check_s": 0}),
                  secrets=SECRETS)
        try:
            wait_for(lambda: sent(rcv, "Sync Me"), what="first poll at start")
            partner(emu, "Not Yet")
            p = r.ctl("sync", "partners")
            t.eq(p.returncode, 0, "sync accepted: " + p.stderr)
            wait_for(lambda: sent(rcv, "Not Yet"), what="sync polls now")
            p = r.ctl("sync", "partners", "--id", str(a))
            t.eq(p.returncode, 0, "sync --id accepted")
            wait_for(lambda: len(sent(rcv, "Sync Me")) == 2, what="resent by id")
            audit = [json.loads(l) for l in r.ctl("--json", "audit", "--verb", "sync")
                     .stdout.splitlines() if l.strip()]
            t.eq([(a["verb"], a["count"]) for a in audit], [("sync", 0), ("sync", 1)],
                 "each sync is in the audit trail, with the records it asked for")
            p = r.ctl("sync", "nope", check=False)
            t.check(p.returncode != 0 and "nope" in p.stderr, "unknown source refused")
            p = r.ctl("sync", "partners", "--since", "yesterday", check=False)
            t.check(p.returncode != 0, "a bad time refused")
            p = r.ctl("--json", "sync", "partners", "--since", "2h")
            t.check(p.returncode == 0 and
                    len(json.loads(p.stdout)["request"]["since"]) == 19, "a duration taken")
            ok0 = poll_state(r).get("last_ok_ms") or 0
            n = len(sent(rcv))
            p = r.ctl("sync", "partners", "--since", "2000-01-01 00:00:00")
            t.eq(p.returncode, 0, "sync --since accepted")
            wait_for(lambda: "2000-01-01" in json.dumps(
                emu.control("GET", "/control/hold")["last_search_read"]), what="read from then")
            # that poll answered and committed, and what it stored is delivered
            wait_for(lambda: (poll_state(r).get("last_ok_ms") or 0) > ok0 and
                     not store_ids(r.cfg["state_dir"]), what="the sync's poll done")
            t.eq(len(sent(rcv, "Sync Me")), 2, "a sync from earlier sends no unchanged record")
            t.eq(len(sent(rcv)), n, "nor anything else")
            # Odoo goes down: the poller reports it, then catches up
            emu.fault(mode="down")
            r.ctl("sync", "partners")
            wait_for(lambda: poll_state(r).get("error"), what="the failure in status")
            out = r.ctl("status").stdout
            t.check("partners" in out and "res.partner" in out, "status names the poller")
            emu.fault(mode="none")
            partner(emu, "After Outage")
            # no sync: a failed poll is tried again within seconds, not at
            # the next interval (an hour here)
            wait_for(lambda: sent(rcv, "After Outage"), timeout=20, what="caught up")
            wait_for(lambda: poll_state(r).get("error") == "", what="the error cleared")
            # a reload with one more field: the poller goes on from its cursor
            cfg = json.loads(json.dumps(r.cfg))
            cfg["sources"]["partners"]["fields"].append("city")
            r.write_config(cfg)
            r.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "configuration reloaded" in r.logs(), what="the reload")
            before = poll_state(r).get("cursor")
            partner(emu, "After Reload", city="Leeds")
            r.ctl("sync", "partners")
            wait_for(lambda: sent(rcv, "After Reload"), what="polled after the reload")
            t.eq(sent(rcv, "After Reload")[0].get("city"), "Leeds", "the new field is sent")
            t.check(poll_state(r).get("cursor", "") >= (before or ""), "the cursor kept")
            # a record read again has a new projection: sent again, with the field
            wait_for(lambda: len(sent(rcv, "Sync Me")) == 3, what="re-projected record")
            t.check("city" in sent(rcv, "Sync Me")[2], "sent with the new field")
        finally:
            stop(emu, r)


def test_no_echo(t):
    """The shop owns name and email (a route writes them into Odoo); Odoo
    owns phone (the poller sends it out, with the external ID)."""
    with TempDir() as tmp:
        emu = Emulator(tmp)
        rcv = Receiver()
        routes = [
            {"name": "customers-in", "source": "shop", "destination": "odoo",
             "operation": "upsert", "model": "res.partner",
             "external_id": "shop_customer_{/id}",
             "fields": {"name": "{/name}", "email": {"pointer": "/email"}}},
            {"name": "partners-out", "source": "partners", "destination": "shopapp",
             "operation": "post", "body": "as_received"},
        ]
        cfg = config(tmp, emu, rcv, routes=routes,
                     poll={"fields": ["phone"], "domain": []})
        # the check refuses the same flow with email polled out too
        bad = json.loads(json.dumps(cfg))
        bad["sources"]["partners"]["fields"] = ["phone", "email"]
        r = Relay(tmp, bad, secrets=SECRETS, start=False)
        import subprocess
        from harness import RELAYD, wrapped
        chk = subprocess.run(wrapped(RELAYD, "RELAYD_WRAPPER") + ["--check-config", r.config_path],
                             capture_output=True, text=True, timeout=60)
        t.check(chk.returncode != 0 and "one owner per field" in chk.stderr and
                r.config_path + ":" in chk.stderr, "--check-config refuses: " + chk.stderr.strip())
        r.write_config(cfg)
        r.start()
        try:
            r.wait_delivering()
            st, _, _ = r.post_shop({"id": 7, "name": "Alan Turing", "email": "alan@shop.test"}, "c-7")
            t.eq(st, 202, "customer accepted")
            wait_for(lambda: [b for b in sent(rcv) if b.get("external_id", "") and
                              b["external_id"].endswith("shop_customer_7")],
                     what="the new partner polled out once")
            pid = [b for b in sent(rcv) if (b.get("external_id") or "").endswith("shop_customer_7")][0]["id"]
            # the shop changes what it owns: the relay writes Odoo, write_date moves
            before = [x["write_date"] for x in emu.records() if x["id"] == pid][0]
            emu.control("POST", "/control/clock", {"offset_ms": 2000})
            st, _, _ = r.post_shop({"id": 7, "name": "Alan M. Turing", "email": "alan@shop.test"},
                                   "c-7b", topic="customers/update")
            wait_for(lambda: [x for x in emu.records() if x["id"] == pid and
                              x["name"] == "Alan M. Turing"], what="the relay's write in Odoo")
            after = [x["write_date"] for x in emu.records() if x["id"] == pid][0]
            t.check(after > before, "the relay's write moved write_date")
            n = searches(emu)
            wait_for(lambda: searches(emu) >= n + 3, what="polls after the write")
            mine = [b for b in sent(rcv) if b["id"] == pid]
            t.eq(len(mine), 1, "no echo of the relay's own write")
            # a person changes the phone, which Odoo owns: out once
            execute(emu, "res.partner", "write", [[pid], {"phone": "+44 1234"}])
            wait_for(lambda: len([b for b in sent(rcv) if b["id"] == pid]) == 2,
                     what="the person's change sent")
            n = searches(emu)
            wait_for(lambda: searches(emu) >= n + 3, what="more polls")
            mine = [b for b in sent(rcv) if b["id"] == pid]
            t.eq(len(mine), 2, "the person's change went out once")
            t.eq(mine[1]["phone"], "+44 1234", "with its new value")
            t.check("email" not in mine[1], "fields the shop owns are not sent back")
            # Odoo goes down: delivery's circuit to it opens, the poller waits
            emu.fault(mode="down")
            st, _, _ = r.post_shop({"id": 8, "name": "Grace Hopper", "email": "grace@shop.test"},
                                   "c-8")
            t.eq(st, 202, "accepted while Odoo is down")
            wait_for(lambda: "circuit" in (poll_state(r).get("error") or ""), timeout=15,
                     what="the poller paused with the circuit")
            t.check(poll_state(r).get("paused") is True, "status says paused")
            emu.fault(mode="none")
            wait_for(lambda: [b for b in sent(rcv)
                              if (b.get("external_id") or "").endswith("shop_customer_8")],
                     timeout=20, what="caught up once the circuit closed")
            t.eq(poll_state(r).get("paused"), False, "no longer paused")
        finally:
            r.stop()
            emu.stop()


def test_json2_odoo19(t):
    """Odoo 19 over JSON-2: the same reads, named arguments only."""
    with TempDir() as tmp:
        emu = Emulator(tmp, version=19)
        rcv = Receiver()
        r = Relay(tmp, config(tmp, emu, rcv), secrets=SECRETS)
        try:
            a = partner(emu, "Ada Nineteen")
            wait_for(lambda: sent(rcv, "Ada Nineteen"), what="polled over JSON-2")
            execute(emu, "res.partner", "unlink", [[a]])
            wait_for(lambda: [b for b in sent(rcv) if b.get("id") == a and "name" not in b],
                     what="deletion over JSON-2")
            t.eq(emu.stats()["calls_by_method"].get("res.partner.search_read", 0) > 0, True,
                 "search_read went through the emulator")
            t.check("json2" in r.ctl("status").stdout, "the destination speaks JSON-2")
        finally:
            stop(emu, r)


if __name__ == "__main__":
    t = Results()
    for fn in (test_late_row_and_archive_and_delete, test_500_in_one_second,
               test_crash_between_poll_and_commit, test_sync_status_and_outage, test_no_echo,
               test_json2_odoo19):
        t.run(fn)
    t.done()
