#!/usr/bin/env python3
"""Batching benchmark: records/s that odoo-relayd drains a backlog into the
Odoo emulator with its cost model on (calibrated on a real Odoo 18: a fixed
cost per call plus a cost per created and per updated row, one call at a
time), with batching (load() of up to --rows rows) against one record per
call, for creates and for updates, over JSON-RPC and JSON-2; and the relay
against bench-curl, a bare libcurl client sending the same batches with the
same calls in flight. Every outcome is committed durably by the relay.
All in the same run.

The backlog is stored while Odoo is down; the relay's rate is timed from
the first load() Odoo receives to the last outcome committed (as the bare
client is timed from its first call), and also from Odoo's return (its
probe and the one call of the half-open circuit included).

usage: bench_batch.py [--build DIR] [--rows N] [--events N] [--single-events N]
                      [--in-flight N] [--protocols jsonrpc,json2]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

from bench_delivery import HERE, SECRET, call, metric, wait_for  # noqa: F401

import base64
import hashlib
import hmac
import http.client
import time


class Emulator:
    def __init__(self, build, tmp):
        ports = os.path.join(tmp, "ports")
        self.proc = subprocess.Popen(
            [os.path.join(build, "test", "emulator", "odoo-emulator"), "--port-file", ports,
             "--version", "19", "--db", "bench", "--user", "admin:admin",
             "--api-key", "admin:bench-key"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(ports), 10, "emulator")
        self.port, self.control = map(int, open(ports).read().split())
        self.ctl("/control/keepalive", {"enabled": True})
        self.ctl("/control/cost", {"on": True})

    def ctl(self, path, body):
        st, data = call(self.control, "POST", path, json.dumps(body))
        if st != 200:
            raise RuntimeError("%s: %d %s" % (path, st, data))

    def reset(self):
        self.ctl("/control/reset", {})
        self.ctl("/control/keepalive", {"enabled": True})
        self.ctl("/control/cost", {"on": True})

    def stop(self):
        self.proc.terminate()
        self.proc.wait(20)


def bare(build, emu, n, rows, in_flight, proto, tag):
    out = subprocess.run([os.path.join(build, "test", "bench", "bench-curl"),
                          "http://127.0.0.1:%d" % emu.port, "bench", "admin", "bench-key", str(n),
                          str(in_flight), str(rows), proto, tag],
                         capture_output=True, text=True, timeout=900).stdout
    m = re.search(r"rate ([\d.]+) failed (\d+)", out)
    if not m or m.group(2) != "0":
        raise RuntimeError("bench-curl: " + out)
    return float(m.group(1))


def post_all(port, n, tag):
    def sender(k):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for i in range(k, n, 4):
            body = json.dumps({"id": i, "email": "%s%d@example.com" % (tag, i)}).encode()
            sig = base64.b64encode(hmac.new(SECRET, body, hashlib.sha256).digest()).decode()
            c.request("POST", "/hooks/shop", body=body, headers={
                "Content-Type": "application/json", "X-Shopify-Topic": "customers/update",
                "X-Shopify-Webhook-Id": "%s-%d" % (tag, i), "X-Shopify-Hmac-Sha256": sig})
            r = c.getresponse()
            r.read()
            if r.status != 202:
                raise RuntimeError("ingest answered %d" % r.status)
        c.close()

    ths = [threading.Thread(target=sender, args=(k,)) for k in range(4)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()


class Relay:
    def __init__(self, build, tmp, emu, rows, in_flight, proto):
        open(os.path.join(tmp, "shop.secret"), "wb").write(SECRET + b"\n")
        open(os.path.join(tmp, "odoo.key"), "w").write("bench-key\n")
        cfg = {
            "listen": ["127.0.0.1:0"], "state_dir": os.path.join(tmp, "state"), "map_size_mb": 1024,
            "sources": {"shop": {"verify": {"scheme": "shopify", "secret_file": "shop.secret"},
                                 "dedup": {"header": "X-Shopify-Webhook-Id"},
                                 "topic": {"header": "X-Shopify-Topic"}, "require_json": True}},
            "odoo": {"url": "http://127.0.0.1:%d" % emu.port, "database": "bench",
                     "login": "admin", "api_key_file": "odoo.key", "protocol": proto,
                     "max_in_flight": in_flight},
            "delivery": {"probe_base_ms": 20, "probe_cap_ms": 50},
            "routes": [{"name": "customers", "source": "shop", "topics": ["*"],
                        "operation": "upsert", "model": "res.partner",
                        "external_id": "bench_{/id}",
                        "fields": {"name": "Bench {/id}", "email": {"pointer": "/email"}},
                        "batch": {"max_rows": rows}}],
        }
        json.dump(cfg, open(os.path.join(tmp, "relay.json"), "w"))
        listen = os.path.join(tmp, "listen")
        self.proc = subprocess.Popen([os.path.join(build, "daemon", "odoo-relayd"), "--config",
                                      os.path.join(tmp, "relay.json"), "--listen-file", listen],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(listen), 10, "relayd")
        self.port = int(open(listen).read().split()[0].rsplit(":", 1)[1])
        self.delivered = 0

    def drain(self, emu, n, tag):
        """n events stored while Odoo is down, then the time to deliver them."""
        emu.ctl("/control/fault", {"mode": "down"})
        post_all(self.port, n, tag)
        wait_for(lambda: metric(self.port, "relay_queue_depth") == n, 60, "backlog stored")
        emu.ctl("/control/stats", {})
        t0 = time.monotonic()
        emu.ctl("/control/fault", {"mode": "none"})
        wait_for(lambda: metric(self.port, "relay_queue_depth") == 0, 1800, "backlog drained",
                 interval=0.025)
        t1 = time.monotonic()
        _, data = call(emu.control, "GET", "/control/stats")
        first = json.loads(data)["load_first_us"] / 1e6
        self.delivered += n
        got = metric(self.port, 'relay_delivered_total{route="customers"}')
        if got != self.delivered:
            raise RuntimeError("delivered %d of %d" % (got, self.delivered))
        # from the first load() to the last outcome committed (what the bare
        # client times), and from Odoo's return (probe and half-open included)
        return n / (t1 - first), n / (t1 - t0)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


def measure(build, proto, rows, n, in_flight):
    """{(who, kind): records/s} for one batch size: the bare client then the
    relay, creates then updates, each on a fresh emulator database."""
    out = {}
    tmp = tempfile.mkdtemp(prefix="relay-bench-")
    emu = Emulator(build, tmp)
    try:
        out[("bare", "create")] = bare(build, emu, n, rows, in_flight, proto, "c")
        out[("bare", "update")] = bare(build, emu, n, rows, in_flight, proto, "u")
        emu.reset()
        r = Relay(build, tmp, emu, rows, in_flight, proto)
        try:
            out[("relay", "create")], out[("drain", "create")] = r.drain(emu, n, "c")
            out[("relay", "update")], out[("drain", "update")] = r.drain(emu, n, "u")
        finally:
            r.stop()
    finally:
        emu.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..", "build"))
    ap.add_argument("--rows", type=int, default=100)
    ap.add_argument("--events", type=int, default=2000, help="events per batched run")
    ap.add_argument("--single-events", type=int, default=200, help="events per one-per-call run")
    ap.add_argument("--in-flight", type=int, default=4)
    ap.add_argument("--protocols", default="jsonrpc,json2")
    args = ap.parse_args()

    print("batching benchmark: emulator cost model on (defaults), %d calls in flight"
          % args.in_flight)
    for proto in args.protocols.split(","):
        one = measure(args.build, proto, 1, args.single_events, args.in_flight)
        many = measure(args.build, proto, args.rows, args.events, args.in_flight)
        print("\n%s" % proto)
        print("%-8s %-28s %12s %12s %10s %14s" % ("", "", "bare client", "odoo-relayd",
                                                   "relay/bare", "relay drain*"))
        for kind in ("create", "update"):
            for label, m, n in (("1 row per call", one, args.single_events),
                                ("%d rows per call" % args.rows, many, args.events)):
                b, r = m[("bare", kind)], m[("relay", kind)]
                print("%-8s %-28s %10.0f/s %10.0f/s %9.2fx %12.0f/s"
                      % (kind, "%s (%d)" % (label, n), b, r, r / b, m[("drain", kind)]))
            print("%-8s %-28s %12s %10.1fx %24.1fx"
                  % (kind, "relay gain from batching", "",
                     many[("relay", kind)] / one[("relay", kind)],
                     many[("drain", kind)] / one[("drain", kind)]))
        print("* from Odoo's return after an outage: the probe and the half-open call included")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
