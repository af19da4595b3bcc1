"""odoo-relayctl against stores prepared by the test and against a running
odoo-relayd with the Odoo emulator: every verb, its --json form, its exit
statuses and its error messages; dead letters listed, shown, fixed, replayed
and applied exactly once; pause and resume; bulk replay by filter; dry runs
that change nothing; compaction refused while the daemon runs and done when
it is stopped."""
import json
import os
import re
import shutil
import signal
import subprocess
import time

from harness import (RELAYCTL, Emulator, Relay, Results, TempDir, base_config, store_ids,
                     wait_for)

EX_USAGE, EX_NOINPUT, EX_TEMPFAIL, EX_NOPERM = 64, 66, 75, 77

SHOP_ROUTE = {
    "name": "shop-customers",
    "source": "shop",
    "topics": ["customers/*"],
    "operation": "upsert",
    "model": "res.partner",
    "external_id": "shop_customer_{/id}",
    "fields": {"name": "{/first_name} {/last_name}", "email": {"pointer": "/email"}},
}
# A write to a partner the shop route made: Odoo refuses a bad value with
# odoo.exceptions.ValidationError (an upsert gets load()'s row message).
OPEN_ROUTE = {
    "name": "open-partners",
    "source": "open",
    "topics": ["partner.*"],
    "operation": "write",
    "model": "res.partner",
    "external_id": "shop_customer_{/id}",
    "fields": {"email": {"pointer": "/email"}},
    "missing": "fail",
}
RAW_SOURCE = {"verify": {"scheme": "none"}, "dedup": {"header": "X-Id"}}


def config(tmp, emu=None, **over):
    cfg = base_config(os.path.join(tmp, "state"), routes=[SHOP_ROUTE, OPEN_ROUTE], **over)
    cfg["sources"]["raw"] = RAW_SOURCE
    if emu:
        cfg["odoo"] = {"url": emu.url, "database": "test", "login": "admin",
                       "api_key_file": "odoo.key", "protocol": "jsonrpc"}
        cfg["delivery"] = {"backoff": {"base_ms": 50, "cap_ms": 400, "max_attempts": 25,
                                       "max_age_s": 3600},
                           "probe_base_ms": 100, "probe_cap_ms": 400, "circuit_failures": 3,
                           "drain_timeout_ms": 2000}
    return cfg


def ctl(r, *args, config=True, user=None):
    """Runs odoo-relayctl; returns (exit status, stdout, stderr)."""
    cmd = [RELAYCTL] + (["--config", r.config_path] if config else []) + list(args)
    if user:
        cmd = ["setpriv", "--reuid=" + user, "--regid=nogroup", "--clear-groups"] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def ctl_json(t, r, *args, want=0):
    """Runs a verb with --json; checks its exit status; returns the parsed
    object, or the list of objects for a list verb (one per line)."""
    rc, out, err = ctl(r, "--json", *args)
    t.eq(rc, want, "exit status of %s (%s)" % (" ".join(args), err.strip()))
    if args[-1] == "list" or (len(args) > 1 and args[1] == "list"):
        return [json.loads(line) for line in out.splitlines() if line.strip()]
    return json.loads(out)


def customer(i, email=None):
    return {"id": i, "first_name": "Ada", "last_name": "L%d" % i,
            "email": email or "c%d@example.com" % i}


def post_open(r, i, email):
    body = json.dumps({"id": i, "type": "partner.email", "email": email}).encode()
    st, _, data = r.request("POST", "/hooks/open", body, {"Content-Type": "application/json"})
    return st, json.loads(data)


def partners(emu, xmlid):
    return [p for p in emu.records("res.partner") if "odoo_relay." + xmlid in p.get("xmlids", [])]


def email_of(emu, i):
    p = partners(emu, "shop_customer_%d" % i)
    return p[0]["email"] if p else None


def dead_ids(r):
    return sorted(str(d["id"]) for d in store_ids(r.cfg["state_dir"], "dead"))


def queued_ids(r):
    return sorted(str(e["id"]) for e in store_ids(r.cfg["state_dir"]))


def dump(r):
    return (store_ids(r.cfg["state_dir"]), store_ids(r.cfg["state_dir"], "dead"))


# ---- usage -----------------------------------------------------------------

def test_usage_and_help(t):
    with TempDir() as tmp:
        r = Relay(tmp, config(tmp), start=False)
        rc, out, _ = ctl(r, "--help")
        t.eq(rc, 0, "--help")
        for verb in ("status", "events list", "events show", "dead list", "dead show", "dead replay",
                     "dead drop", "pause", "resume", "shape", "compact"):
            t.check(verb in out, "--help names %s" % verb)
            rc, vout, _ = ctl(r, *(verb.split() + ["--help"]))
            t.check(rc == 0 and ("usage: odoo-relayctl [GLOBAL] " + verb) in vout,
                    "%s --help (%d)" % (verb, rc))
        rc, out, _ = ctl(r, "dead", "--help")
        t.check(rc == 0 and "dead replay" in out and "dead drop" in out, "dead --help: its sub-verbs")
        rc, out, _ = ctl(r, "help", "events")
        t.check(rc == 0 and "events show" in out, "help events")
        for args in (["bogus"], [], ["dead"], ["dead", "bogus"], ["status", "--bogus"],
                     ["status", "extra"], ["events", "list", "--older-than", "5x"],
                     ["events", "list", "--limit", "-1"], ["events", "list", "--limit"],
                     ["dead", "list", "--since", "yesterday"], ["dead", "list", "--lane", "x"],
                     ["events", "list", "--error", "x"], ["events", "show", "abc"],
                     ["events", "show"], ["dead", "replay"], ["dead", "replay", "1", "--all"],
                     ["dead", "replay", "--all", "--source", "shop"], ["dead", "drop", "--all"],
                     ["dead", "drop", "0"], ["pause", "--route", "nope"], ["compact", "now"]):
            rc, out, err = ctl(r, *args)
            t.eq(rc, EX_USAGE, "usage error for %r" % args)
            t.check(err.startswith("odoo-relayctl: ") and "usage:" in err,
                    "usage message for %r on stderr (%r)" % (args, err))
        rc, _, err = ctl(r, "--config", r.config_path, "--state-dir", tmp, "status", config=False)
        t.eq(rc, EX_USAGE, "--config with --state-dir")
        rc, out, _ = ctl(r, "--version")
        t.check(rc == 0 and out.startswith("odoo-relayctl "), "--version")


def test_missing_and_unreadable_store(t):
    with TempDir() as tmp:
        r = Relay(tmp, config(tmp), start=False)
        state = r.cfg["state_dir"]
        rc, _, err = ctl(r, "status")
        t.eq(rc, EX_NOINPUT, "no state directory")
        t.check("cannot open store %s: no such file or directory" % state in err and
                "started once" in err, "message names the path (%r)" % err)
        os.mkdir(state)
        for args in (["status"], ["dead", "list"], ["pause"], ["dead", "replay", "--all"]):
            rc, _, err = ctl(r, *args)
            t.eq(rc, EX_NOINPUT, "empty state directory: %r" % args)
            t.check(os.path.join(state, "data.mdb") in err, "names data.mdb (%r)" % err)
        t.eq(os.listdir(state), [], "nothing created in the empty directory")
        rc, _, err = ctl(r, "--config", os.path.join(tmp, "nope.json"), "status", config=False)
        t.check(rc == EX_NOINPUT and "nope.json" in err, "missing configuration (%d %r)" % (rc, err))
        with open(os.path.join(tmp, "bad.json"), "w") as f:
            f.write('{"listen": 5}')
        rc, _, err = ctl(r, "--config", os.path.join(tmp, "bad.json"), "status", config=False)
        t.check(rc == 78 and "bad.json:1:" in err, "invalid configuration (%d %r)" % (rc, err))

        # a real store, then as a user who may not read it
        r.start()
        r.post_shop(customer(1), "perm-1")
        r.stop()
        copy = os.path.join(tmp, "copy")
        shutil.copytree(state, copy)
        if os.geteuid() != 0 or not shutil.which("setpriv"):
            print("note: not root or no setpriv: unreadable-store checks skipped")
            return
        os.chmod(tmp, 0o755)
        os.chmod(copy, 0o700)
        rc, _, err = ctl(r, "--state-dir", copy, "status", config=False, user="nobody")
        t.eq(rc, EX_NOPERM, "directory not readable")
        t.check(copy in err and "need" in err and "run as root" in err, "says what is needed (%r)" % err)
        os.chmod(copy, 0o755)
        os.chmod(os.path.join(copy, "data.mdb"), 0o600)
        rc, _, err = ctl(r, "--state-dir", copy, "events", "list", config=False, user="nobody")
        t.eq(rc, EX_NOPERM, "data.mdb not readable")
        t.check("need read access to %s/data.mdb" % copy in err and "group" in err,
                "names data.mdb and the group (%r)" % err)
        os.chmod(os.path.join(copy, "data.mdb"), 0o644)
        rc, _, err = ctl(r, "--state-dir", copy, "events", "list", config=False, user="nobody")
        t.check(rc == EX_NOPERM and "lock.mdb" in err, "lock.mdb not writable (%d %r)" % (rc, err))
        rc, _, err = ctl(r, "--state-dir", copy, "pause", "--force", config=False, user="nobody")
        t.check(rc == EX_NOPERM and "write access" in err, "pause needs write access (%d %r)" % (rc, err))
        rc, out, _ = ctl(r, "--state-dir", copy, "events", "list", config=False)
        t.check(rc == 0 and "perm-1" not in out and "shop" in out, "root reads the copy")


# ---- a store without delivery: events stay queued ----------------------------

def test_queue_listing(t):
    with TempDir() as tmp:
        r = Relay(tmp, config(tmp))
        try:
            ids = []
            for i, lane in ((1, 1), (2, 1), (3, 2)):
                st, _, js = r.post_shop(customer(lane), "q-%d" % i)
                ids.append(js["id"])
            for i in (4, 5):
                st, js = post_open(r, i, "o%d@example.com" % i)
                ids.append(js["id"])
            st, _, data = r.request("POST", "/hooks/raw", b"plain \x1b[31mtext\xff\n",
                                    {"X-Id": "raw-1", "Content-Type": "text/plain"})
            t.eq(st, 202, "raw body accepted")
            ids.append(json.loads(data)["id"])

            evs = ctl_json(t, r, "events", "list")
            t.eq([e["id"] for e in evs], ids, "every event, oldest first, ids as strings")
            t.eq([e["state"] for e in evs], ["due", "parked", "due", "due", "due", "due"],
                 "the second event of lane 1 is parked behind the first")
            t.eq([e["route"] for e in evs], ["shop-customers"] * 3 + ["open-partners"] * 2 + [None],
                 "routes the configuration matches")
            for args, want in ((["--source", "open"], ids[3:5]), (["--topic", "customers/*"], ids[:3]),
                               (["--topic", "partner.*"], ids[3:5]),
                               (["--lane", "1"], ids[:2]), (["--route", "open-partners"], ids[3:5]),
                               (["--limit", "2"], ids[:2]), (["--limit", "0"], ids),
                               (["--newer-than", "1h"], ids), (["--older-than", "1h"], []),
                               (["--source", "shop", "--lane", "2"], ids[2:3])):
                got = [e["id"] for e in ctl_json(t, r, "events", "list", *args)]
                t.eq(got, want, "events list %s" % " ".join(args))
            rc, out, _ = ctl(r, "events", "list", "--limit", "2")
            t.check(rc == 0 and "2 of 6 events shown" in out, "human list says what it left out")
            lines = out.splitlines()
            t.check(lines[0].split()[:3] == ["ID", "RECEIVED", "AGE"] and
                    lines[1].index("shop") == lines[2].index("shop"), "aligned table:\n" + out)
            rc, out, _ = ctl(r, "events", "list", "--source", "nope")
            t.check(rc == 0 and "no queued events match" in out, "nothing matches")

            rc, out, _ = ctl(r, "events", "show", ids[0])
            t.eq(rc, 0, "events show")
            t.check("X-Shopify-Topic: customers/create" in out, "kept headers shown")
            t.check('    "first_name": "Ada",' in out, "JSON body pretty-printed:\n" + out)
            one = ctl_json(t, r, "events", "show", ids[1])
            t.eq((one["id"], one["state"], one["body_json"]["id"]), (ids[1], "parked", 1),
                 "events show --json")
            t.eq(one["headers"][0], {"name": "X-Shopify-Topic", "value": "customers/create"},
                 "headers in --json")
            rc, out, _ = ctl(r, "events", "show", ids[5])
            t.check(rc == 0 and "\\x1b[31mtext\\xff" in out and "\x1b" not in out,
                    "a raw body is shown escaped:\n" + out)
            raw = ctl_json(t, r, "events", "show", ids[5])
            t.check(raw["body_json"] is None and raw["body_base64"], "raw body in --json as base64")
            rc, _, err = ctl(r, "events", "show", "999")
            t.check(rc == 1 and "no queued event 999" in err, "unknown id (%r)" % err)
            rc, _, err = ctl(r, "dead", "show", ids[0])
            t.check(rc == 1 and "is queued" in err, "dead show of a queued event (%r)" % err)

            shape = ctl_json(t, r, "shape")
            t.eq(shape["buckets"], ["0-1m", "1-5m", "5-30m", "30m-2h", "2-12h", "12h+"], "buckets")
            t.eq(shape["queued"][0], {"source": "TOTAL", "total": 6, "counts": [6, 0, 0, 0, 0, 0]},
                 "TOTAL row")
            t.eq([(q["source"], q["total"]) for q in shape["queued"][1:]],
                 [("open", 2), ("raw", 1), ("shop", 3)], "a row per source")
            rc, out, _ = ctl(r, "shape")
            t.check(rc == 0 and "0-1m" in out and "12h+" in out and "TOTAL" in out, "shape table")

            st = ctl_json(t, r, "status", want=1)
            t.eq(st["queued"], {"total": 6, "due_now": 5, "delayed": 0, "parked": 1}, "queued counts")
            t.eq(st["daemon"]["state"], "running", "daemon seen running")
            t.check(any("no odoo target" in p for p in st["problems"]),
                    "degraded: nothing is delivered (%r)" % st["problems"])
            t.eq({s["source"]: s["queued"] for s in st["sources"]}, {"shop": 3, "open": 2, "raw": 1},
                 "per source")
            t.eq({x["route"]: x["queued"] for x in st["routes"]},
                 {"shop-customers": 3, "open-partners": 2, None: 1}, "per route")
            t.check(st["oldest_age_s"] is not None and st["oldest_age_s"] >= 0, "oldest age")
            rc, out, _ = ctl(r, "status")
            t.check(rc == 1 and "queued      6 (due now 5, delayed 0, parked 1)" in out and
                    re.search(r"oldest      \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d \(", out) and
                    "health      degraded" in out, "status text:\n" + out)
            # a refused reload: the daemon notes it; the CLI reads the store without
            # the (now broken) configuration
            state = r.cfg["state_dir"]
            good = r.cfg
            with open(r.config_path, "w") as f:
                f.write('{\n  "listen": 5\n}\n')
            r.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: json.loads(ctl(r, "--state-dir", state, "--json", "status",
                                            config=False)[1])["config_error"],
                     what="the refused reload noted in the store")
            rc, out, _ = ctl(r, "--state-dir", state, "status", config=False)
            t.check("reload refused" in out and "odoo-relay.json:2:" in out,
                    "status shows the refused reload:\n" + out)
            rc, _, err = ctl(r, "status")
            t.check(rc == 78 and "odoo-relay.json:2:" in err, "the CLI refuses the broken file (%r)" % err)
            r.write_config(good)
            r.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: json.loads(ctl(r, "--json", "status")[1])["config_error"] is None,
                     what="a good reload clears the note")

            t.eq(ctl_json(t, r, "dead", "list"), [], "dead list --json: no lines")
            res = ctl_json(t, r, "dead", "replay", "--all", "--dry-run")
            t.eq((res["matched"], res["ids"]), (0, []), "replay --all --dry-run on none")
        finally:
            r.stop()


# ---- against a running daemon and the emulator --------------------------------

def test_dead_letter_fixed_and_replayed(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, config(tmp, emu))
        try:
            r.wait_delivering()
            emu.fault(mode="validation", field="email", value="bad@example.com",
                      message="Invalid email address")
            st, _, js = r.post_shop(customer(1, email="bad@example.com"), "bad-1")
            bad = js["id"]
            wait_for(lambda: dead_ids(r) == [bad], what="the dead letter")

            dead = ctl_json(t, r, "dead", "list", "--error", "odoo.load")
            t.eq([d["id"] for d in dead], [bad], "dead list --error names the Odoo error")
            t.eq(ctl_json(t, r, "dead", "list", "--error", "AccessDenied"), [], "--error filters")
            t.eq([d["id"] for d in ctl_json(t, r, "dead", "list", "--grep", "Invalid email")], [bad],
                 "--grep in the reason")
            t.eq([d["id"] for d in ctl_json(t, r, "dead", "list", "--since", "10m", "--until",
                                             "2999-01-01T00:00Z")], [bad], "--since/--until")
            t.eq(ctl_json(t, r, "dead", "list", "--until", "2000-01-01"), [], "--until before it")
            rc, out, _ = ctl(r, "dead", "list")
            t.check(rc == 0 and bad in out and "odoo.load" in out and "Invalid email" in out,
                    "dead list table:\n" + out)
            rc, out, _ = ctl(r, "dead", "show", bad)
            t.eq(rc, 0, "dead show")
            t.check("dead reason   odoo.load: Invalid email address" in out, "reason shown:\n" + out)
            t.check("permanent  HTTP 200" in out and "Invalid email address" in out,
                    "the attempt: class, status, message")
            t.check("request last sent to Odoo" in out and '"load"' in out, "the request sent")
            js = ctl_json(t, r, "dead", "show", bad)
            t.eq((js["id"], js["attempts"], js["history"][0]["class"], js["history"][0]["message"]),
                 (bad, 1, "permanent", "Invalid email address"), "dead show --json")
            t.check("load" in json.loads(js["request"])["params"]["args"], "request in --json")
            shape = ctl_json(t, r, "shape")
            t.eq(shape["dead_routes"], ["shop-customers"], "dead letters by route")
            t.eq(shape["dead"][1], {"error": "odoo.load", "total": 1, "counts": [1]},
                 "dead letters by error")
            t.eq(partners(emu, "shop_customer_1"), [], "nothing applied")

            # fix the cause, replay: applied once, history kept
            emu.fault(mode="clear_validation")
            before = r.metric("relay_delivered_total", 'route="shop-customers"')
            rc, out, err = ctl(r, "dead", "replay", bad)
            t.check(rc == 0 and "replayed 1 dead letter" in out, "replay (%d %r %r)" % (rc, out, err))
            wait_for(lambda: partners(emu, "shop_customer_1"), what="the replayed event applied")
            wait_for(lambda: queued_ids(r) == [], what="queue drained")
            t.eq(len(partners(emu, "shop_customer_1")), 1, "one partner with that external id")
            t.eq(partners(emu, "shop_customer_1")[0]["email"], "bad@example.com", "as sent")
            t.eq(r.metric("relay_delivered_total", 'route="shop-customers"') - before, 1.0,
                 "delivered once")
            t.eq(dead_ids(r), [], "the dead letter is gone")
            rc, _, err = ctl(r, "dead", "replay", bad)
            t.check(rc == 1 and "no dead letter %s" % bad in err, "a second replay finds nothing")
            rc, out, _ = ctl(r, "status")
            t.eq(rc, 0, "healthy again:\n" + out)
        finally:
            r.stop()
            emu.stop()


def test_pause_and_resume(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, config(tmp, emu))
        try:
            r.wait_delivering()
            t.eq(ctl(r, "status")[0], 0, "healthy")
            res = ctl_json(t, r, "pause")
            t.eq((res["paused"], res["changed"], res["paused_all"]), (True, True, True), "pause --json")
            st = ctl_json(t, r, "status", want=1)
            t.check(st["paused"]["all"] and any("paused" in p for p in st["problems"]),
                    "status: degraded while paused")
            wait_for(lambda: r.metric("relay_paused") == 1.0, what="the daemon sees the pause")
            calls = emu.stats()["calls"]
            st_, _, js = r.post_shop(customer(10), "p-10")
            t.eq(st_, 202, "ingest goes on while paused")
            # the one negative wait: a bounded look (the daemon rereads the
            # pause flags every 250 ms) that nothing moves
            deadline = time.monotonic() + 1.5
            moved = False
            while time.monotonic() < deadline and not moved:
                moved = emu.stats()["calls"] != calls or queued_ids(r) != [js["id"]]
                time.sleep(0.05)
            t.check(not moved, "nothing delivered while paused")
            evs = ctl_json(t, r, "events", "list")
            t.eq([(e["id"], e["attempts"]) for e in evs], [(js["id"], 0)], "still queued, no attempt")
            rc, out, _ = ctl(r, "resume")
            t.check(rc == 0 and "resumed" in out, "resume")
            wait_for(lambda: partners(emu, "shop_customer_10"), timeout=5, what="delivered after resume")
            wait_for(lambda: queued_ids(r) == [], what="queue drained")

            # one route: the other keeps going, which shows the paused one would have moved
            rc, out, _ = ctl(r, "pause", "--route", "shop-customers")
            t.check(rc == 0 and "route shop-customers paused" in out, "pause --route")
            _, _, js = r.post_shop(customer(11), "p-11")
            post_open(r, 10, "new10@example.com")
            wait_for(lambda: email_of(emu, 10) == "new10@example.com", what="the other route delivered")
            t.eq(partners(emu, "shop_customer_11"), [], "the paused route's event waits")
            # the other route's outcome is written just after its delivery
            wait_for(lambda: queued_ids(r) == [js["id"]], what="only the paused route's event queued")
            st = ctl_json(t, r, "status", want=1)
            t.eq(st["paused"], {"all": False, "routes": ["shop-customers"]}, "status shows the route")
            t.eq([x["paused"] for x in st["routes"] if x["route"] == "shop-customers"], [True],
                 "the route's row says paused")
            rc, _, _ = ctl(r, "resume", "--route", "shop-customers")
            t.eq(rc, 0, "resume --route")
            wait_for(lambda: partners(emu, "shop_customer_11"), timeout=5, what="route resumed")
            t.eq(ctl(r, "status")[0], 0, "healthy after resume")
            rc, out, _ = ctl(r, "pause", "--route", "gone", "--force")
            t.eq(rc, 0, "pause --force for a route not configured")
            rc, out, _ = ctl(r, "resume", "--route", "gone")
            t.eq(rc, 0, "a paused route resumes without --force")

            # the circuit: Odoo down -> open -> status 1; back -> closed -> 0
            emu.fault(mode="down")
            for i in range(3):
                r.post_shop(customer(20 + i), "down-%d" % i)
            wait_for(lambda: ctl(r, "status")[0] == 1, timeout=15, what="status degraded")
            st = ctl_json(t, r, "status", want=1)
            t.eq(st["circuit"]["circuit"], "open", "circuit open in status")
            t.check(any("circuit open" in p for p in st["problems"]), "the problem named")
            emu.fault(mode="none")
            wait_for(lambda: ctl(r, "status")[0] == 0, timeout=15, what="healthy after recovery")
            wait_for(lambda: queued_ids(r) == [], timeout=15, what="backlog delivered")
        finally:
            r.stop()
            emu.stop()


def test_bulk_replay_and_drop(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, config(tmp, emu))
        try:
            r.wait_delivering()
            for i in (40, 41):
                r.post_shop(customer(i), "good-%d" % i)
            wait_for(lambda: email_of(emu, 40) and email_of(emu, 41), what="partners to write to")
            emu.fault(mode="validation", field="email", value="bad@example.com",
                      message="Invalid email address")
            shop = [r.post_shop(customer(30 + i, email="bad@example.com"), "b-%d" % i)[2]["id"]
                    for i in range(2)]
            opn = [post_open(r, 40 + i, "bad@example.com")[1]["id"] for i in range(2)]
            wait_for(lambda: len(dead_ids(r)) == 4, what="four dead letters")
            t.eq([d["id"] for d in ctl_json(t, r, "dead", "list", "--route", "open-partners")], opn,
                 "dead list --route")
            t.eq([d["id"] for d in ctl_json(t, r, "dead", "list", "--error", "ValidationError")], opn,
                 "--error ValidationError: Odoo's exception from write")
            t.eq([d["id"] for d in ctl_json(t, r, "dead", "list", "--source", "shop",
                                             "--topic", "customers/*")], shop, "--source --topic")

            # dry runs change nothing
            before = dump(r)
            res = ctl_json(t, r, "dead", "replay", "--route", "shop-customers", "--dry-run")
            t.eq((res["dry_run"], res["matched"], res["ids"]), (True, 2, shop), "replay --dry-run")
            rc, out, _ = ctl(r, "dead", "replay", "--all", "--dry-run")
            t.check(rc == 0 and "would replay 4 dead letters" in out and all(i in out for i in shop + opn),
                    "replay --all --dry-run lists them:\n" + out)
            rc, out, _ = ctl(r, "dead", "drop", "--source", "open", "--dry-run")
            t.check(rc == 0 and "would drop 2" in out, "drop --dry-run")
            t.eq(dump(r), before, "store unchanged by the dry runs")
            rc, _, err = ctl(r, "dead", "drop", "--source", "open")
            t.check(rc == 1 and "2 dead letters" in err and "--yes" in err, "drop of two needs --yes (%r)" % err)
            t.eq(dump(r), before, "store unchanged by a refused drop")

            # the fix, then a replay of exactly one route's dead letters
            emu.fault(mode="clear_validation")
            res = ctl_json(t, r, "dead", "replay", "--route", "shop-customers")
            t.eq((res["matched"], res["done"], res["ids"], res["gone"]), (2, 2, shop, []), "replay --route")
            t.eq(dead_ids(r), sorted(opn), "the other route's dead letters stay")
            wait_for(lambda: all(partners(emu, "shop_customer_%d" % (30 + i)) for i in range(2)),
                     what="the replayed events applied")
            wait_for(lambda: queued_ids(r) == [], what="queue drained")
            t.eq([len(partners(emu, "shop_customer_%d" % (30 + i))) for i in range(2)], [1, 1],
                 "each applied once")
            t.eq(email_of(emu, 40), "c40@example.com", "the others were not replayed")

            # drop one by id (no --yes needed), then the last one by filter
            res = ctl_json(t, r, "dead", "drop", opn[0])
            t.eq((res["done"], res["ids"]), (1, [opn[0]]), "drop one by id")
            rc, out, _ = ctl(r, "dead", "drop", "--source", "open")
            t.check(rc == 0 and "dropped 1 dead letter" in out, "one left: no --yes needed")
            t.eq(dead_ids(r), [], "no dead letters left")
            t.eq(email_of(emu, 41), "c41@example.com", "dropped, never delivered")
        finally:
            r.stop()
            emu.stop()


def test_compact(t):
    with TempDir() as tmp:
        r = Relay(tmp, config(tmp))
        state = r.cfg["state_dir"]
        try:
            for i in range(40):
                r.post_shop(dict(customer(i), note="x" * 3000), "c-%d" % i)
            before = store_ids(state)
            rc, _, err = ctl(r, "compact")
            t.eq(rc, EX_TEMPFAIL, "compact refused while the daemon runs")
            t.check("stop odoo-relayd first" in err and "pid %d" % r.proc.pid in err,
                    "says who holds it and what to do (%r)" % err)
            dry = ctl_json(t, r, "compact", "--dry-run")
            t.check(dry["dry_run"] and dry["blocked_by_pid"] == r.proc.pid and
                    dry["expected_bytes"] <= dry["before_bytes"], "compact --dry-run: %r" % dry)
            t.eq(store_ids(state), before, "nothing changed")
        finally:
            r.stop()
        t.eq(ctl(r, "status")[0], 1, "status: degraded when the daemon is stopped")
        res = ctl_json(t, r, "compact")
        t.check(not res["dry_run"] and res["after_bytes"] <= res["before_bytes"] and res["events"] == 40,
                "compacted: %r" % res)
        t.eq(store_ids(state), before, "every event survives")
        t.eq(sorted(os.listdir(state)), ["data.mdb", "lock.mdb"], "no copy or old file left")
        r.start()
        try:
            st, _, _ = r.post_shop(customer(99), "c-99")
            t.eq(st, 202, "the daemon runs on the compacted store")
            t.eq(len(store_ids(state)), 41, "and adds to it")
            t.eq(ctl_json(t, r, "status", want=1)["queued"]["total"], 41, "status reads it")
        finally:
            r.stop()


if __name__ == "__main__":
    t = Results()
    t.run(test_usage_and_help)
    t.run(test_missing_and_unreadable_store)
    t.run(test_queue_listing)
    t.run(test_dead_letter_fixed_and_replayed)
    t.run(test_pause_and_resume)
    t.run(test_bulk_replay_and_drop)
    t.run(test_compact)
    t.done()
