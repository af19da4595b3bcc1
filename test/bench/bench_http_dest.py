#!/usr/bin/env python3
"""HTTP destination benchmark: how fast odoo-relayd drains a backlog of
Odoo webhook events to an instant HTTP receiver (nginx answering 204 on
127.0.0.1, one worker, keep-alive), each event one signed request (Standard
Webhooks headers, the body as Odoo posted it) and its outcome committed
durably, against bench-http-curl, a bare libcurl multi client sending the
same requests (same body and header sizes, nothing computed) with the same
number in flight (by default 8, an HTTP destination's default max_in_flight),
in the same run. Medians of several rounds, and the ratio
relay/libcurl.

The backlog is stored while the destination is paused (odoo-relayctl
pause --destination); the drain is timed from the first delivery after the
resume to the moment relay_queue_depth is 0, that is, every event's
completion committed. Each
event has a lane of its own (sale order _id), so the lanes never wait.

usage: bench_http_dest.py [--build DIR] [--rounds N] [--events N] [--in-flight N]
       (RELAY_BENCH_PERF=FILE: a perf profile of the drain; RELAY_BENCH_WRAPPER: a
       command that runs odoo-relayd, such as valgrind --tool=callgrind)
Needs nginx (packaging/bootstrap.sh bench installs it).
"""
import argparse
import http.client
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
TOKEN = "bench-odoo-token-7Qx2"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

NGINX_CONF = """
worker_processes 1;
error_log {tmp}/nginx-error.log;
pid {tmp}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            return 204;
        }}
    }}
}}
"""


def wait_for(cond, timeout, what, interval=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise RuntimeError("timed out waiting for " + what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listening on %d" % port)


def call(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def cpu_seconds(pid):
    """User plus system CPU time of process pid, all its threads."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metric(port, name):
    """name, or name{label="v",...}: the sum of the series carrying those labels."""
    _, data = call(port, "GET", "/metrics")
    base, _, labels = name.partition("{")
    want = set(re.findall(r'(\w+)="([^"]*)"', labels))
    total = 0.0
    for line in data.decode().splitlines():
        m = re.match(r"(\w+)(?:\{(.*)\})? (\S+)$", line)
        if m and m.group(1) == base and want <= set(re.findall(r'(\w+)="([^"]*)"', m.group(2) or "")):
            total += float(m.group(3))
    return total


def body(i):
    """What Odoo posts for sale order i (keys sorted, as Odoo sends them);
    bench-http-curl sends the same bytes."""
    return ('{"_action": "Warehouse webhook(#42)", "_id": %d, "_model": "sale.order", '
            '"amount_total": 120.5, "id": %d, "name": "S%05d", "partner_id": 42, '
            '"state": "sale"}' % (i, i, i)).encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..", "build"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--events", type=int, default=50000)
    # what an operator gets: an HTTP destination's default max_in_flight
    ap.add_argument("--in-flight", type=int, default=8)
    args = ap.parse_args()
    relayd = os.path.join(args.build, "daemon", "odoo-relayd")
    relayctl = os.path.join(args.build, "daemon", "odoo-relayctl")
    curl_bench = os.path.join(args.build, "test", "bench", "bench-http-curl")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        sys.exit("bench_http_dest: nginx is not installed (packaging/bootstrap.sh bench)")

    rates = {"libcurl": [], "relay": []}
    cpus = []
    for rnd in range(args.rounds):
        tmp = tempfile.mkdtemp(prefix="relay-bench-http-")
        procs = []
        try:
            port = free_port()
            open(os.path.join(tmp, "nginx.conf"), "w").write(NGINX_CONF.format(tmp=tmp, port=port))
            procs.append(subprocess.Popen([nginx, "-c", os.path.join(tmp, "nginx.conf"), "-p", tmp,
                                           "-g", "daemon off;"], stderr=subprocess.DEVNULL))
            wait_port(port)
            url = "http://127.0.0.1:%d/hooks/in" % port

            out = subprocess.run([curl_bench, url, str(args.events), str(args.in_flight)],
                                 capture_output=True, text=True, timeout=600).stdout
            m = re.search(r"rate ([\d.]+) failed (\d+)", out)
            if not m or int(m.group(2)):
                raise RuntimeError("bench-http-curl: %s" % out)
            base = float(m.group(1))
            rates["libcurl"].append(base)

            open(os.path.join(tmp, "odoo.token"), "w").write(TOKEN + "\n")
            open(os.path.join(tmp, "wh.key"), "w").write(WHSEC + "\n")
            cfg = {
                "listen": ["127.0.0.1:0"], "state_dir": os.path.join(tmp, "state"),
                "map_size_mb": 1024,
                "sources": {"odoo": {"kind": "odoo",
                                     "verify": {"scheme": "url_token", "secret_file": "odoo.token"}}},
                "destinations": {"warehouse": {
                    "kind": "http", "url": url, "secret_file": "wh.key", "allow_private": True,
                    "max_in_flight": args.in_flight, "probe_base_ms": 20, "probe_cap_ms": 50}},
                "routes": [{"name": "orders-out", "source": "odoo", "destination": "warehouse",
                            "body": "as_received"}],
            }
            cfg_path = os.path.join(tmp, "relay.json")
            json.dump(cfg, open(cfg_path, "w"))
            listen = os.path.join(tmp, "listen")
            # RELAY_BENCH_WRAPPER="valgrind --tool=callgrind ..." for a profile
            wrapper = os.environ.get("RELAY_BENCH_WRAPPER", "").split()
            procs.append(subprocess.Popen(wrapper + [relayd, "--config", cfg_path,
                                                     "--listen-file", listen],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_for(lambda: os.path.exists(listen), 10, "relayd")
            lines = open(listen).read().split("\n")
            relay_port = int(lines[0].split()[0].rsplit(":", 1)[1])
            admin = [l.split()[0] for l in lines if l.endswith(" admin")]
            admin_port = int(admin[0].rsplit(":", 1)[1]) if admin else relay_port
            subprocess.run([relayctl, "--config", cfg_path, "pause", "--destination", "warehouse"],
                           check=True, capture_output=True, timeout=60)

            def sender(k):
                c = http.client.HTTPConnection("127.0.0.1", relay_port, timeout=30)
                for i in range(k + 1, args.events + 1, 4):
                    c.request("POST", "/hooks/odoo/" + TOKEN, body=body(i),
                              headers={"Content-Type": "application/json"})
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
            wait_for(lambda: metric(admin_port, "relay_queue_depth") == args.events, 30,
                     "backlog stored")
            perf = None
            if os.environ.get("RELAY_BENCH_PERF"):
                # a profile of the drain: RELAY_BENCH_PERF=perf.data
                perf = subprocess.Popen(["perf", "record", "--call-graph",
                                         os.environ.get("RELAY_BENCH_CALLGRAPH", "fp"), "-o",
                                         os.environ["RELAY_BENCH_PERF"], "-p",
                                         str(procs[-1].pid)], stderr=subprocess.DEVNULL)
                time.sleep(0.5)
            subprocess.run([relayctl, "--config", cfg_path, "resume", "--destination",
                            "warehouse"], check=True, capture_output=True, timeout=60)
            # timed from the first delivery the relay counts (it notices a
            # resume at its next poll of the store, up to 250 ms later)
            d0 = wait_for(lambda: metric(admin_port, "relay_delivered_total"), 10,
                          "the first delivery", interval=0.002)
            t0 = time.monotonic()
            c0 = cpu_seconds(procs[-1].pid)
            # a /metrics answer costs the loop about what a few deliveries do
            # (the due backlog is counted from its waiting end): poll every 10 ms,
            # a resolution of about 1 % of a drain of 50 000 events
            wait_for(lambda: metric(admin_port, "relay_queue_depth") == 0, 600, "backlog drained",
                     interval=0.01)
            secs = time.monotonic() - t0
            cpu = cpu_seconds(procs[-1].pid) - c0
            if perf:
                perf.send_signal(2)
                perf.wait(30)
            delivered = metric(admin_port, 'relay_delivered_total{route="orders-out"}')
            if delivered != args.events:
                raise RuntimeError("delivered %d of %d" % (delivered, args.events))
            rates["relay"].append((args.events - d0) / secs)
            cpus.append(cpu * 1e6 / (args.events - d0))
            print("round %d: libcurl %.0f requests/s, relay %.0f events/s (%.2f s for %d), "
                  "ratio %.2f, relay CPU %.1f us/event" % (
                      rnd + 1, base, (args.events - d0) / secs, secs, args.events - d0,
                      (args.events - d0) / secs / base, cpus[-1]), file=sys.stderr)
        finally:
            for p in procs:
                p.terminate()
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
            shutil.rmtree(tmp, ignore_errors=True)

    b, r = statistics.median(rates["libcurl"]), statistics.median(rates["relay"])
    print("\nHTTP destination benchmark: medians of %d rounds, %d events, %d in flight, "
          "nginx answering 204" % (args.rounds, args.events, args.in_flight))
    print("bare libcurl multi   %8.0f requests/s" % b)
    print("odoo-relayd          %8.0f events/s (signed, outcome committed per event)   "
          "ratio %.2fx" % (r, r / b))
    print("odoo-relayd CPU per event (all threads, user+system): %.1f us" %
          statistics.median(cpus))
    print("median of the rounds' own ratios: %.2fx" % statistics.median(
        x / y for x, y in zip(rates["relay"], rates["libcurl"])))


if __name__ == "__main__":
    main()
