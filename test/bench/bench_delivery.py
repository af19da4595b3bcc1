#!/usr/bin/env python3
"""Delivery benchmark: how fast odoo-relayd drains a backlog into the Odoo
emulator answering at once (keep-alive on), each event one load() call and
its outcome committed durably, against bench-curl, a bare libcurl multi
client making the same calls with the same number in flight, in the same run.
Medians of several rounds, and the ratio relay/libcurl.

usage: bench_delivery.py [--build DIR] [--rounds N] [--events N] [--in-flight N]
                         [--retention-s S]
"""
import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SECRET = b"bench-secret"


def wait_for(cond, timeout, what, interval=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise RuntimeError("timed out waiting for " + what)


def call(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def metric(port, name):
    """name, or name{label="v",...}: the sum of the series that carry every
    label pair given (a series may carry more, as destination="odoo")."""
    _, data = call(port, "GET", "/metrics")
    base, _, labels = name.partition("{")
    want = set(re.findall(r'(\w+)="([^"]*)"', labels))
    total = 0.0
    for line in data.decode().splitlines():
        m = re.match(r"(\w+)(?:\{(.*)\})? (\S+)$", line)
        if m and m.group(1) == base and want <= set(re.findall(r'(\w+)="([^"]*)"', m.group(2) or "")):
            total += float(m.group(3))
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..", "build"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--in-flight", type=int, default=4)
    ap.add_argument("--retention-s", type=int, default=None,
                    help="delivery.retention_s (0: no history; default: the daemon's, 7 days)")
    args = ap.parse_args()
    relayd = os.path.join(args.build, "daemon", "odoo-relayd")
    emulator = os.path.join(args.build, "test", "emulator", "odoo-emulator")
    curl_bench = os.path.join(args.build, "test", "bench", "bench-curl")

    rates = {"libcurl": [], "relay": []}
    for rnd in range(args.rounds):
        tmp = tempfile.mkdtemp(prefix="relay-bench-")
        procs = []
        try:
            ports = os.path.join(tmp, "ports")
            procs.append(subprocess.Popen([emulator, "--port-file", ports, "--db", "bench",
                                           "--user", "admin:admin", "--api-key", "admin:bench-key"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_for(lambda: os.path.exists(ports), 10, "emulator")
            odoo_port, control_port = map(int, open(ports).read().split())
            call(control_port, "POST", "/control/keepalive", json.dumps({"enabled": True}))

            out = subprocess.run([curl_bench, "http://127.0.0.1:%d" % odoo_port, "bench", "admin",
                                  "bench-key", str(args.events), str(args.in_flight)],
                                 capture_output=True, text=True, timeout=600).stdout
            base = float(re.search(r"rate ([\d.]+)", out).group(1))
            rates["libcurl"].append(base)

            open(os.path.join(tmp, "shop.secret"), "wb").write(SECRET + b"\n")
            open(os.path.join(tmp, "odoo.key"), "w").write("bench-key\n")
            cfg = {
                "listen": ["127.0.0.1:0"], "state_dir": os.path.join(tmp, "state"), "map_size_mb": 1024,
                "sources": {"shop": {"verify": {"scheme": "shopify", "secret_file": "shop.secret"},
                                     "dedup": {"header": "X-Shopify-Webhook-Id"},
                                     "topic": {"header": "X-Shopify-Topic"}, "require_json": True}},
                "odoo": {"url": "http://127.0.0.1:%d" % odoo_port, "database": "bench", "login": "admin",
                         "api_key_file": "odoo.key", "protocol": "jsonrpc",
                         "max_in_flight": args.in_flight},
                "delivery": {"probe_base_ms": 20, "probe_cap_ms": 50},
                "routes": [{"name": "customers", "source": "shop", "topics": ["*"], "operation": "upsert",
                            "model": "res.partner", "external_id": "bench_{/id}",
                            "fields": {"name": "Bench {/id}", "email": {"pointer": "/email"}},
                            # one event per call, as bench-curl makes them
                            # (bench_batch.py measures batches)
                            "batch": {"max_rows": 1}}],
            }
            if args.retention_s is not None:
                cfg["delivery"]["retention_s"] = args.retention_s
            json.dump(cfg, open(os.path.join(tmp, "relay.json"), "w"))
            # Odoo down while the backlog is stored: the circuit holds it.
            call(control_port, "POST", "/control/fault", json.dumps({"mode": "down"}))
            listen = os.path.join(tmp, "listen")
            procs.append(subprocess.Popen([relayd, "--config", os.path.join(tmp, "relay.json"),
                                           "--listen-file", listen],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_for(lambda: os.path.exists(listen), 10, "relayd")
            relay_port = int(open(listen).read().split()[0].rsplit(":", 1)[1])

            def sender(k):
                c = http.client.HTTPConnection("127.0.0.1", relay_port, timeout=30)
                for i in range(k, args.events, 4):
                    body = json.dumps({"id": i % 1000, "email": "b%d@example.com" % i}).encode()
                    sig = base64.b64encode(hmac.new(SECRET, body, hashlib.sha256).digest()).decode()
                    c.request("POST", "/hooks/shop", body=body, headers={
                        "Content-Type": "application/json", "X-Shopify-Topic": "customers/update",
                        "X-Shopify-Webhook-Id": "b-%d" % i, "X-Shopify-Hmac-Sha256": sig})
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
            wait_for(lambda: metric(relay_port, "relay_queue_depth") == args.events, 30, "backlog stored")
            t0 = time.monotonic()
            call(control_port, "POST", "/control/fault", json.dumps({"mode": "none"}))
            # Every /metrics answer walks the due index (relay_store_stats),
            # which is the loop's work: poll often enough to time the drain
            # to a few percent, not so often that the probe slows it.
            wait_for(lambda: metric(relay_port, "relay_queue_depth") == 0, 600, "backlog drained",
                     interval=0.025)
            secs = time.monotonic() - t0
            delivered = metric(relay_port, 'relay_delivered_total{route="customers"}')
            if delivered != args.events:
                raise RuntimeError("delivered %d of %d" % (delivered, args.events))
            rates["relay"].append(args.events / secs)
            print("round %d: libcurl %.0f calls/s, relay %.0f events/s (%.2f s for %d)"
                  % (rnd + 1, base, args.events / secs, secs, args.events), file=sys.stderr)
        finally:
            for p in procs:
                p.terminate()
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
            shutil.rmtree(tmp, ignore_errors=True)

    b, r = statistics.median(rates["libcurl"]), statistics.median(rates["relay"])
    print("\ndelivery benchmark: medians of %d rounds, %d events, %d in flight, one load() each"
          % (args.rounds, args.events, args.in_flight))
    print("bare libcurl multi   %8.0f calls/s" % b)
    print("odoo-relayd          %8.0f events/s (outcome committed per event)   ratio %.2fx" % (r, r / b))


if __name__ == "__main__":
    main()
