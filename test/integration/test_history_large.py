"""events list --delivered --lane over a lane with more history entries than
one read of the index takes (10000): every entry is counted and listed, none
cut off silently. The store is filled directly by hist-plant."""
import json
import os
import subprocess

from harness import BUILD, Relay, Results, TempDir, base_config

HIST_PLANT = os.environ.get("HIST_PLANT", os.path.join(BUILD, "test", "integration", "hist-plant"))
N = 10050


def plant(state, *args):
    p = subprocess.run([HIST_PLANT, state] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=300)
    if p.returncode != 0:
        raise AssertionError("hist-plant %s: %s" % (" ".join(map(str, args)), p.stderr))


def test_lane_over_index_page(t):
    with TempDir() as tmp:
        state = os.path.join(tmp, "state")
        os.mkdir(state)
        r = Relay(tmp, base_config(state), start=False)
        plant(state, "fill", "L", N)
        plant(state, "fill", "M", 3)
        p = r.ctl("--json", "events", "list", "--delivered", "--lane", "L", "--limit", "0",
                  check=False)
        t.eq(p.returncode, 0, "exit status (%s)" % p.stderr.strip())
        got = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
        t.eq(len(got), N, "every entry of the lane listed")
        t.eq(len({o["id"] for o in got}), N, "each once")
        t.check(all(o["lane"] == "L" for o in got), "all of lane L")
        ids = [int(o["id"]) for o in got]
        t.eq(ids, sorted(ids), "in id order")
        p = r.ctl("events", "list", "--delivered", "--lane", "L", check=False)
        t.eq(p.returncode, 0, "text: exit status")
        t.check(("50 of %d events shown" % N) in p.stdout,
                "text: the count is the lane's whole count: %r" % p.stdout[-200:])
        p = r.ctl("events", "list", "--delivered", "--lane", "L", "--since", "1h", "--limit",
                  "0", check=False)
        t.check(("%d events in the history" % N) in p.stdout, "text, --limit 0: all of them")


def main():
    t = Results()
    t.run(test_lane_over_index_page)
    return t.done()


if __name__ == "__main__":
    raise SystemExit(main())
