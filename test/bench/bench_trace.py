#!/usr/bin/env python3
"""Trace benchmark: how long `odoo-relayctl trace KEY` takes with a large
history, for each kind of key, and what the history takes on disk.

A store is filled directly by hist-fill (no daemon): N events ingested and
completed into the history (customer i % (N/3 + 1), so each lane, external
ID and Odoo record matches about three events). Then each trace runs
several times as a separate process (the whole command: start, open and
verify the store, look up, print), and the median wall time is printed.

Note that odoo-relayctl walks the whole store once in a child process
before it opens it (relay_store_verify: LMDB has no checksums), which
dominates for a large store; --no-verify-time reports the lookup without
it by timing `trace` minus `events show` of an id that does not exist
(the same open and walk, no lookup).

usage: bench_trace.py [--build DIR] [--events N] [--body BYTES] [--rounds R]
                      [--dir DIR]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "..", "build"))
    ap.add_argument("--events", type=int, default=1000000)
    ap.add_argument("--body", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--dir", default=None, help="keep the store here (re-used if it exists)")
    a = ap.parse_args()
    fill = os.path.join(a.build, "test", "bench", "hist-fill")
    ctl = os.path.join(a.build, "daemon", "odoo-relayctl")
    tmp = a.dir or tempfile.mkdtemp(prefix="relay-bench-trace-")
    state = os.path.join(tmp, "state")
    os.makedirs(tmp, exist_ok=True)
    try:
        if not os.path.exists(os.path.join(state, "data.mdb")):
            t0 = time.monotonic()
            out = subprocess.run([fill, state, str(a.events), str(a.body), "16384"], check=True,
                                 capture_output=True, text=True).stdout
            print("filled in %.1f s: %s" % (time.monotonic() - t0, out.strip()))
        n = a.events
        cust = n // 3 // 2 + 1
        mid = n // 2
        keys = {
            "dedup": "%08x-6e4b-4c39-9d1f-%012x" % (mid, mid),
            "lane": str(cust),
            "xid": "odoo_relay.shop_customer_%d" % cust,
            "odoo": "res.partner,%d" % cust,
        }

        def timed(args):
            runs = []
            for _ in range(a.rounds):
                t0 = time.monotonic()
                p = subprocess.run([ctl, "--state-dir", state] + args, capture_output=True,
                                   text=True)
                runs.append(time.monotonic() - t0)
            return statistics.median(runs), p

        base, _ = timed(["events", "show", str(n + 100)])
        print("events show of a missing id (open + verify walk, no lookup): %.3f s" % base)
        for kind, key in keys.items():
            t, p = timed(["--json", "trace", "--kind", kind, key])
            found = len(json.loads(p.stdout)["events"]) if p.returncode == 0 else 0
            print("trace --kind %-5s %-40s %d events  %.3f s  (lookup %.3f s)"
                  % (kind, key, found, t, max(0.0, t - base)))
        t, p = timed(["--json", "trace", keys["lane"]])
        print("trace (every kind) %-40s %.3f s  (lookup %.3f s)" % (keys["lane"], t,
                                                                    max(0.0, t - base)))
    finally:
        if not a.dir:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
