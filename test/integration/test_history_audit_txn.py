"""An operator's write and its audit record commit in one store transaction:
for pause, resume (of delivery and of a destination), dead replay, dead drop
and dead edit, odoo-relayctl makes exactly one write transaction (read as
LMDB's last transaction id before and after, by hist-plant), and the audit
trail has the record; a replay of more dead letters than one batch (64)
makes one transaction and one record per batch. No daemon runs."""
import json
import os
import subprocess

from harness import BUILD, Relay, Results, TempDir, base_config

HIST_PLANT = os.environ.get("HIST_PLANT", os.path.join(BUILD, "test", "integration", "hist-plant"))


def plant(state, *args):
    p = subprocess.run([HIST_PLANT, state] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError("hist-plant %s: %s" % (" ".join(map(str, args)), p.stderr))
    return p.stdout


def txnid(state):
    return int(plant(state, "txnid"))


def audit(r):
    p = r.ctl("--json", "audit", "--limit", "0")
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


def dead(r):
    p = r.ctl("--json", "dead", "list", "--limit", "0")
    return [json.loads(l)["id"] for l in p.stdout.splitlines() if l.strip()]


def test_one_transaction(t):
    with TempDir() as tmp:
        state = os.path.join(tmp, "state")
        os.mkdir(state)
        r = Relay(tmp, base_config(state), start=False)
        plant(state, "dead", 3)
        ids = dead(r)
        t.eq(len(ids), 3, "three dead letters planted")
        steps = [
            ("pause",),
            ("resume",),
            ("pause", "--destination", "odoo", "--force"),
            ("resume", "--destination", "odoo", "--force"),
            ("dead", "replay", ids[0]),
            ("dead", "drop", ids[1]),
            ("dead", "edit", ids[2], "--set", "/id=7"),
        ]
        for args in steps:
            before, n_audit = txnid(state), len(audit(r))
            p = r.ctl(*args, check=False)
            t.eq(p.returncode, 0, "%s: exit status (%s)" % (" ".join(args), p.stderr.strip()))
            t.eq(txnid(state) - before, 1, "%s: one write transaction" % " ".join(args))
            got = audit(r)
            t.eq(len(got) - n_audit, 1, "%s: one audit record" % " ".join(args))
            if got:
                t.eq(got[-1]["verb"], " ".join(a for a in args[:2] if not a.startswith("-"))
                     if args[0] == "dead" else args[0], "%s: its verb" % " ".join(args))
        t.eq(dead(r), [ids[2]], "replayed and dropped: one dead letter left (edited)")

        # more than one batch: a transaction and a record per batch
        plant(state, "dead", 70)
        before, n_audit = txnid(state), len(audit(r))
        p = r.ctl("dead", "replay", "--all", check=False)
        t.eq(p.returncode, 0, "dead replay --all (%s)" % p.stderr.strip())
        t.eq(txnid(state) - before, 2, "dead replay of 71: two transactions")
        got = audit(r)[n_audit:]
        t.eq([(o["verb"], o["count"]) for o in got], [("dead replay", 64), ("dead replay", 7)],
             "a record per batch, each with its own count")
        t.eq(sum(len(o["ids"]) for o in got), 71, "every id replayed is in a record")


def main():
    t = Results()
    t.run(test_one_transaction)
    return t.done()


if __name__ == "__main__":
    raise SystemExit(main())
