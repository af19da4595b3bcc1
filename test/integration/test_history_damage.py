"""Listings of the history and the audit trail over a damaged store: a
history or audit record that does not decode is skipped and counted (a
warning on stderr, a JSON object there under --json, "damaged" in trace
--json), the others are listed, and the listing exits 0; asking for the
damaged entry itself (events show ID) fails. The store is filled and
damaged directly by test/integration/hist-plant, no daemon running."""
import json
import os
import subprocess

from harness import BUILD, Relay, Results, TempDir, base_config, wait_for

HIST_PLANT = os.environ.get("HIST_PLANT", os.path.join(BUILD, "test", "integration", "hist-plant"))


def plant(state, *args):
    p = subprocess.run([HIST_PLANT, state] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError("hist-plant %s: %s" % (" ".join(map(str, args)), p.stderr))


def lines(out):
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def stderr_objects(err):
    got = []
    for l in err.splitlines():
        try:
            got.append(json.loads(l))
        except ValueError:
            pass
    return got


def setup(tmp):
    state = os.path.join(tmp, "state")
    os.mkdir(state)
    r = Relay(tmp, base_config(state), start=False)
    return r, state


def test_damaged_records_are_skipped(t):
    with TempDir() as tmp:
        r, state = setup(tmp)
        plant(state, "fill", "L", 5)
        p = r.ctl("--json", "events", "list", "--delivered", "--limit", "0")
        ids = [o["id"] for o in lines(p.stdout)]
        t.eq(len(ids), 5, "five entries in the history")
        # three operator writes, the middle one's record damaged
        for verb in ("pause", "resume", "pause"):
            p = r.ctl(verb, check=False)
            t.eq(p.returncode, 0, "%s: %s" % (verb, p.stderr.strip()))
        plant(state, "damage-history", ids[2])
        plant(state, "damage-audit", 2)

        for extra in ((), ("--lane", "L")):
            p = r.ctl("--json", "events", "list", "--delivered", "--limit", "0", *extra,
                      check=False)
            what = "events list --delivered %s" % " ".join(extra)
            t.eq(p.returncode, 0, what + ": exit 0 with a damaged entry")
            t.eq(sorted(o["id"] for o in lines(p.stdout)),
                 sorted(ids[:2] + ids[3:]), what + ": the good entries listed")
            t.eq([o.get("damaged") for o in stderr_objects(p.stderr)], [1],
                 what + ": one damaged entry counted on stderr")
            p = r.ctl("events", "list", "--delivered", *extra, check=False)
            t.eq(p.returncode, 0, what + " (text): exit 0")
            t.check("4 events in the history" in p.stdout, what + " (text): the four listed")
            t.check("1 history record" in p.stderr and "skipped" in p.stderr,
                    what + " (text): says one was skipped: %r" % p.stderr)

        p = r.ctl("--json", "audit", check=False)
        t.eq(p.returncode, 0, "audit: exit 0 with a damaged record")
        t.eq([o["verb"] for o in lines(p.stdout)], ["pause", "pause"], "audit: the good records")
        t.eq([o.get("damaged") for o in stderr_objects(p.stderr)], [1], "audit: one counted")
        p = r.ctl("audit", check=False)
        t.check(p.returncode == 0 and "1 audit record" in p.stderr, "audit (text): says so")

        p = r.ctl("--json", "trace", "L", check=False)
        t.eq(p.returncode, 0, "trace: exit 0")
        o = json.loads(p.stdout)
        t.eq(len(o["events"]), 4, "trace: the four that read")
        t.eq(o["damaged"], 2, "trace: the damaged entry and audit record counted")

        p = r.ctl("events", "show", ids[2], check=False)
        t.eq(p.returncode, 65, "events show of the damaged entry fails (%s)" % p.stderr.strip())


def test_sweep_goes_past_damage(t):
    """odoo-relayd's sweep at start removes a damaged expiry row (it sorts
    first), counts it, and goes on to sweep the expired entries behind it."""
    with TempDir() as tmp:
        r, state = setup(tmp)
        plant(state, "fill", "L", 5, 1)  # kept 1 ms: expired by the next sweep
        plant(state, "damage-exp")
        p = r.ctl("--json", "status", check=False)
        t.eq(json.loads(p.stdout)["history"]["events"], 5, "five entries before the sweep")
        r.start()
        try:
            wait_for(lambda: r.metric("relay_history_damaged_total") == 1.0,
                     what="the damaged row counted")
            wait_for(lambda: r.metric("relay_history_events") == 0.0,
                     what="the expired entries swept past it")
            t.check("history sweep removed 1 damaged entry" in r.logs(), "logged once")
            t.check("cannot sweep the history" not in r.logs(), "no failed sweep")
        finally:
            r.stop()


def test_damaged_edit_is_skipped(t):
    """An edit record of a dead letter that does not decode: dead show and
    events show (of an edited event since delivered) list the other
    versions and say one was skipped; trace counts it."""
    with TempDir() as tmp:
        r, state = setup(tmp)
        plant(state, "dead", 1)
        ids = [o["id"] for o in lines(r.ctl("--json", "dead", "list").stdout)]
        t.eq(len(ids), 1, "one dead letter")
        dead = ids[0]
        for n in (7, 8):
            p = r.ctl("dead", "edit", dead, "--set", "/id=%d" % n, check=False)
            t.eq(p.returncode, 0, "dead edit: %s" % p.stderr.strip())
        p = r.ctl("--json", "dead", "show", dead)
        t.eq([v["version"] for v in json.loads(p.stdout).get("versions", [])], [1, 2, 3],
             "three versions before the damage")
        plant(state, "damage-edit", dead, 2)

        for verb in ("dead",):
            what = "%s show" % verb
            p = r.ctl("--json", verb, "show", dead, check=False)
            t.eq(p.returncode, 0, what + ": exit 0 with a damaged edit record")
            o = json.loads(p.stdout)
            t.eq([v["version"] for v in o.get("versions", [])], [1, 3],
                 what + ": the versions that read")
            t.eq(o["body_json"], {"id": 8}, what + ": the current body")
            t.eq([(e.get("table"), e.get("damaged")) for e in stderr_objects(p.stderr)],
                 [("edit", 1)], what + ": one damaged edit record counted on stderr")
            p = r.ctl(verb, "show", dead, check=False)
            t.eq(p.returncode, 0, what + " (text): exit 0")
            t.check("body versions (2)" in p.stdout, what + " (text): two versions shown")
            t.check("1 edit record" in p.stderr and "skipped" in p.stderr,
                    what + " (text): says one was skipped: %r" % p.stderr)

        # events show of a delivered event with body versions (a dead
        # letter edited, replayed and delivered): the same
        plant(state, "fill", "L", 1)
        hist = [o["id"] for o in lines(r.ctl("--json", "events", "list", "--delivered").stdout)]
        t.eq(len(hist), 1, "one entry in the history")
        plant(state, "edits", hist[0], 3)
        p = r.ctl("--json", "events", "show", hist[0])
        t.eq([v["version"] for v in json.loads(p.stdout).get("versions", [])], [1, 2, 3],
             "events show: three versions before the damage")
        plant(state, "damage-edit", hist[0], 2)
        p = r.ctl("--json", "events", "show", hist[0], check=False)
        t.eq(p.returncode, 0, "events show: exit 0 with a damaged edit record")
        t.eq([v["version"] for v in json.loads(p.stdout).get("versions", [])], [1, 3],
             "events show: the versions that read")
        t.eq([(e.get("table"), e.get("damaged")) for e in stderr_objects(p.stderr)],
             [("edit", 1)], "events show: one damaged edit record counted on stderr")
        p = r.ctl("events", "show", hist[0], check=False)
        t.check(p.returncode == 0 and "1 edit record" in p.stderr and "skipped" in p.stderr,
                "events show (text): says one was skipped: %r" % p.stderr)

        p = r.ctl("--json", "trace", "dead-0", check=False)  # its dedup key
        t.eq(p.returncode, 0, "trace: exit 0")
        o = json.loads(p.stdout)
        t.eq([s["what"] for s in o["story"]].count("edited"), 1, "trace: the edit that reads")
        t.eq(o["damaged"], 1, "trace: the damaged edit record counted")


def main():
    t = Results()
    t.run(test_damaged_records_are_skipped)
    t.run(test_sweep_goes_past_damage)
    t.run(test_damaged_edit_is_skipped)
    return t.done()


if __name__ == "__main__":
    raise SystemExit(main())
