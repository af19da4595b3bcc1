#!/usr/bin/env python3
"""Ingest benchmark: wrk POSTs a 1 KiB JSON webhook, each with its own dedup
key, to odoo-relayd (durable: every 202 is an fsync'd LMDB commit) and, in the
same run, to nginx answering 202 on the same machine. Several rounds; medians
of each figure are printed with the ratio relay/nginx.

usage: bench_ingest.py [--build DIR] [--rounds N] [--seconds S]
Needs wrk and nginx (packaging/bootstrap.sh bench installs them).
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

WRK_SCRIPT = r"""
local body = '{"id": 123456, "type": "orders/create", "pad": "' .. string.rep("x", 960) .. '"}'
local counter = 0
local thread_id = 0
local threads = {}
function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end
function init(args)
   prefix = tostring(tid) .. "-" .. tostring(os.time()) .. "-" .. tostring(math.random(1, 1e9)) .. "-"
end
function request()
   counter = counter + 1
   return wrk.format("POST", "/hooks/bench", {
      ["Content-Type"] = "application/json",
      ["X-Token"] = "bench-token",
      ["X-Request-Id"] = prefix .. counter,
   }, body)
end
"""

NGINX_CONF = """
worker_processes auto;
error_log {tmp}/nginx-error.log;
pid {tmp}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            default_type application/json;
            return 202 '{{"id":"1","status":"queued"}}';
        }}
    }}
}}
"""


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=10):
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listening on %d" % port)


def to_ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(port, conns, seconds, script):
    threads = min(conns, 2)
    out = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds, "--latency",
                          "-s", script, "http://127.0.0.1:%d/hooks/bench" % port],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict((p, to_ms(v, u)) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rate": rate, "p50": lat.get("50"), "p99": lat.get("99"),
            "errors": int(non2xx.group(1)) if non2xx else 0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..", "build"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    relayd = os.path.join(args.build, "daemon", "odoo-relayd")
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
            sys.exit("bench_ingest: %s is not installed (packaging/bootstrap.sh bench)" % tool)

    tmp = tempfile.mkdtemp(prefix="relay-bench-")
    procs = []
    try:
        script = os.path.join(tmp, "post.lua")
        open(script, "w").write(WRK_SCRIPT)
        open(os.path.join(tmp, "token"), "w").write("bench-token\n")
        relay_port, nginx_port = free_port(), free_port()
        cfg = {
            "listen": ["127.0.0.1:%d" % relay_port],
            "state_dir": os.path.join(tmp, "state"),
            "map_size_mb": 4096,
            "limits": {"max_connections": 1024},
            "sources": {"bench": {
                "verify": {"scheme": "token", "header": "X-Token", "secret_file": "token"},
                "dedup": {"header": "X-Request-Id"},
                "topic": {"pointer": "/type"},
                "require_json": True}},
        }
        json.dump(cfg, open(os.path.join(tmp, "relay.json"), "w"))
        open(os.path.join(tmp, "nginx.conf"), "w").write(NGINX_CONF.format(tmp=tmp, port=nginx_port))
        log = open(os.path.join(tmp, "relayd.log"), "w")
        procs.append(subprocess.Popen([relayd, "--config", os.path.join(tmp, "relay.json")],
                                      stdout=log, stderr=subprocess.STDOUT))
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        procs.append(subprocess.Popen([nginx, "-c", os.path.join(tmp, "nginx.conf"), "-p", tmp,
                                       "-g", "daemon off;"], stderr=subprocess.DEVNULL))
        wait_port(relay_port)
        wait_port(nginx_port)

        results = {}
        for rnd in range(args.rounds):
            for conns in (64, 1):
                for name, port in (("nginx", nginx_port), ("relay", relay_port)):
                    r = run_wrk(port, conns, args.seconds, script)
                    results.setdefault((name, conns), []).append(r)
                    print("round %d %-5s c=%-2d %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  non-2xx %d"
                          % (rnd + 1, name, conns, r["rate"], r["p50"], r["p99"], r["errors"]),
                          file=sys.stderr)

        def med(name, conns, key):
            return statistics.median(x[key] for x in results[(name, conns)])

        print("\ningest benchmark: medians of %d rounds of %d s, 1 KiB JSON body" % (args.rounds, args.seconds))
        print("%-12s %12s %10s %10s %12s" % ("", "req/s", "p50 ms", "p99 ms", "ratio"))
        for conns in (64, 1):
            for name in ("nginx", "relay"):
                ratio = med(name, conns, "rate") / med("nginx", conns, "rate")
                print("%-5s c=%-4d %12.0f %10.2f %10.2f %11.2fx" % (
                    name, conns, med(name, conns, "rate"), med(name, conns, "p50"),
                    med(name, conns, "p99"), ratio))
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
