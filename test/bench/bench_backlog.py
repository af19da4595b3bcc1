#!/usr/bin/env python3
"""Deep-backlog benchmark: odoo-relayd started on an empty store and on one
holding N queued events (default 1 million, queued straight into the store
by fill-store, delivery paused), each started R times (on a backlog
filled anew for each round; with --keep DIR, filled once and kept, growing
by what each round sends). For each start:
the time from exec to READY=1 (sd_notify, through a NOTIFY_SOCKET of our
own), the daemon's own memory (RssAnon: not the mapped store, which is
RssFile), and the rate wrk gets at 64 connections with the Shopify-signed
1 KiB webhook of shopify_hook.py (every 202 a durable commit), once at
READY=1 and once the daemon has read the whole store (it does that after
READY=1 and logs when done). Medians are printed with the backlog/empty
ratios.

usage: bench_backlog.py [--build DIR] [--events N] [--rounds R] [--seconds S] [--keep DIR]
Needs wrk (packaging/bootstrap.sh bench installs it) and about 2.5 GB of
disk per million events.
"""
import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import shopify_hook  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def status_kb(pid, key):
    for line in open("/proc/%d/status" % pid):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def start(relayd, tmp, state, port):
    """Starts the daemon; returns (process, seconds to READY=1)."""
    cfg = {"listen": ["127.0.0.1:%d" % port], "state_dir": state, "map_size_mb": 8192,
           "limits": {"max_connections": 1024},
           "sources": {"shopify": shopify_hook.source_conf()},
           # a destination, so that delivery runs (paused by fill-store)
           "odoo": {"url": "http://127.0.0.1:9", "database": "bench", "login": "admin",
                    "api_key_file": "odoo.key", "protocol": "jsonrpc"},
           "routes": [{"name": "customers", "source": "shopify", "topics": ["*"],
                       "operation": "upsert", "model": "res.partner",
                       "external_id": "shop_customer_{/id}",
                       "fields": {"email": {"pointer": "/email"}}}]}
    path = os.path.join(tmp, "relay.json")
    json.dump(cfg, open(path, "w"))
    sock_path = os.path.join(tmp, "notify.sock")
    if os.path.exists(sock_path):
        os.unlink(sock_path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(sock_path)
    s.settimeout(120)
    env = dict(os.environ, NOTIFY_SOCKET=sock_path)
    log = open(os.path.join(tmp, "relayd.log"), "a")
    t0 = time.monotonic()
    p = subprocess.Popen([relayd, "--config", path], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        while b"READY=1" not in s.recv(4096):
            pass
    finally:
        s.close()
    return p, time.monotonic() - t0


def wrk(port, script, conns, seconds):
    out = subprocess.run(["wrk", "-t%d" % min(conns, 2), "-c%d" % conns, "-d%ds" % seconds,
                          "--latency", "-s", script, "http://127.0.0.1:%d" % port],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, int(non2xx.group(1)) if non2xx else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..", "build"))
    ap.add_argument("--events", type=int, default=1000000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--keep", help="directory to keep (and reuse) the filled store in")
    args = ap.parse_args()
    relayd = os.path.join(args.build, "daemon", "odoo-relayd")
    fill = os.path.join(args.build, "test", "bench", "fill-store")
    if not shutil.which("wrk"):
        sys.exit("bench_backlog: wrk is not installed (packaging/bootstrap.sh bench)")

    # whether this daemon reads the records after READY=1 (and logs when done)
    walks = b"read through" in open(relayd, "rb").read()

    tmp = tempfile.mkdtemp(prefix="relay-backlog-")
    try:
        script = os.path.join(tmp, "hooks.lua")
        open(script, "w").write(shopify_hook.lua_script())
        open(os.path.join(tmp, "shop.secret"), "wb").write(shopify_hook.SECRET)
        open(os.path.join(tmp, "odoo.key"), "w").write("bench-key\n")
        if args.keep:
            os.makedirs(args.keep, exist_ok=True)
        full = os.path.join(args.keep or tmp, "full-%d" % args.events)

        def fill_backlog():
            t0 = time.monotonic()
            shutil.rmtree(full, ignore_errors=True)
            subprocess.run([fill, full, str(args.events), "8192"], check=True)
            print("filled %s with %d events in %.1f s" % (full, args.events, time.monotonic() - t0),
                  file=sys.stderr)

        results = {}
        for rnd in range(args.rounds):
            for name in ("empty", "backlog"):
                if name == "backlog":
                    # a new backlog each round (each round's webhooks add to
                    # it), unless --keep reuses the one there
                    if not args.keep or not os.path.exists(os.path.join(full, "data.mdb")):
                        fill_backlog()
                    state = full
                else:
                    state = os.path.join(tmp, "state")
                    shutil.rmtree(state, ignore_errors=True)
                    subprocess.run([fill, state, "0", "8192"], check=True, capture_output=True)
                port = free_port()
                log = os.path.join(tmp, "relayd.log")
                log_at = os.path.getsize(log) if os.path.exists(log) else 0
                p, ready = start(relayd, tmp, state, port)
                t_ready = time.monotonic()
                done = []

                def watch():
                    # when the daemon logs that it has read every record
                    while walks and time.monotonic() - t_ready < 300:
                        with open(log) as f:
                            f.seek(log_at)
                            if "read through" in f.read():
                                break
                        time.sleep(0.05)
                    done.append(time.monotonic() - t_ready)

                watcher = threading.Thread(target=watch)
                watcher.start()
                try:
                    rss_ready = status_kb(p.pid, "RssAnon")
                    # at once: while the store's records are still being read
                    rate0, errors = wrk(port, script, 64, args.seconds)
                    # then once they are (a daemon that reads them before
                    # READY=1 says nothing of it)
                    watcher.join()
                    walk = done[0]
                    rate, e2 = wrk(port, script, 64, args.seconds)
                    errors += e2
                    rss = max(rss_ready, status_kb(p.pid, "RssAnon"))
                finally:
                    p.terminate()
                    p.wait(60)
                r = {"ready": ready, "rss": rss / 1024.0, "rate0": rate0, "rate": rate,
                     "walk": walk if walks else 0.0, "errors": errors}
                results.setdefault(name, []).append(r)
                print("round %d %-7s READY=1 after %.3f s  RssAnon %.1f MiB  %8.0f req/s at once, "
                      "%8.0f req/s after the walk (%.1f s)  non-2xx %d"
                      % (rnd + 1, name, ready, r["rss"], rate0, rate, r["walk"], errors),
                      file=sys.stderr)

        def med(name, key):
            return statistics.median(x[key] for x in results[name])

        print("\nbacklog benchmark: %d queued events (delivery paused) against an empty store, "
              "medians of %d rounds, 64 connections for %d s" % (args.events, args.rounds, args.seconds))
        print("%-8s %10s %12s %14s %7s %14s %7s %8s" % (
            "store", "READY=1 s", "RssAnon MiB", "req/s at once", "ratio", "req/s after", "ratio",
            "walk s"))
        for name in ("empty", "backlog"):
            print("%-8s %10.3f %12.1f %14.0f %6.2fx %14.0f %6.2fx %8.1f" % (
                name, med(name, "ready"), med(name, "rss"), med(name, "rate0"),
                med(name, "rate0") / med("empty", "rate0"), med(name, "rate"),
                med(name, "rate") / med("empty", "rate"), med(name, "walk")))
        print("(at once: wrk starts at READY=1; after: once the daemon has read every record of "
              "the store, which it logs; walk: READY=1 to then)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
