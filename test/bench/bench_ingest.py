#!/usr/bin/env python3
"""Ingest benchmark, side by side in one run: wrk POSTs the Shopify-signed
1 KiB customers/create webhook of shopify_hook.py (a new X-Shopify-Webhook-Id
each time) to

  nginx   answering 202 with nothing behind it (2 workers): the ceiling;
  relay   odoo-relayd, durable: every 202 is an fsync'd LMDB commit;
  peer1   with --peer DIR: what a team builds instead, a Node receiver that
  peer2   puts each webhook in a BullMQ queue on Redis with appendfsync
          always (1 and 2 Node processes); DIR is a copy of the peer's
          folder where `npm ci` was run;

at 64 connections and at 1, and measures the floor under a durable answer on
the same disk in the same round: lmdb-commit, one put of 1 KiB per durable
LMDB commit. Several rounds; medians of each figure are printed, then the
ratios the goals are stated in.

usage: bench_ingest.py [--build DIR] [--rounds N] [--seconds S] [--peer DIR]
                       [--against DIR] [--unparsed] [--relay-only] [--conns 64,1]

--against DIR adds relay-b, the odoo-relayd of another build (say of the
commit before a change), run right after relay in every round, and prints
the two side by side: an A/B in the same minutes. --unparsed adds
relay-raw, the same relay with a source that never parses the body (no
lane from its /id, no JSON check): the gap between the two is what the
JSON parse costs. Builds made with
-DRELAY_ACK_TRACE=ON print their stage timings (acktrace lines) after each
pair of runs. --relay-only leaves nginx
(and the goals' lines) out; --conns picks the connection counts.
Needs wrk and nginx, and for --peer node and redis-server
(packaging/bootstrap.sh bench installs wrk, nginx and redis-server).
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import shopify_hook  # noqa: E402

NGINX_CONF = """
worker_processes 2;
error_log {tmp}/nginx-error.log;
pid {tmp}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location /hooks/shopify {{ return 202; }}
    }}
}}
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=20):
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
                          "-s", script, "http://127.0.0.1:%d" % port],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict((p, to_ms(v, u)) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    done = re.search(r"(\d+) requests in", out)
    return {"rate": rate, "p50": lat.get("50"), "p99": lat.get("99"),
            "requests": int(done.group(1)) if done else 0,
            "errors": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(0) if errors else ""}


class Target:
    """One server under test: start() returns its port; stop() ends it."""

    def __init__(self, name, tmp, args):
        self.name, self.tmp, self.args = name, tmp, args
        self.procs = []

    def start(self):
        a, tmp = self.args, self.tmp
        if self.name == "nginx":
            port = free_port()
            open(os.path.join(tmp, "nginx.conf"), "w").write(NGINX_CONF.format(tmp=tmp, port=port))
            nginx = shutil.which("nginx") or "/usr/sbin/nginx"
            self.procs.append(subprocess.Popen([nginx, "-c", os.path.join(tmp, "nginx.conf"), "-p", tmp,
                                                "-g", "daemon off;"], stderr=subprocess.DEVNULL))
        elif self.name in ("relay", "relay-b", "relay-raw"):
            build = a.against if self.name == "relay-b" else a.build
            port = free_port()
            state = os.path.join(tmp, "state")
            shutil.rmtree(state, ignore_errors=True)
            cfg = {"listen": ["127.0.0.1:%d" % port], "state_dir": state, "map_size_mb": 4096,
                   "limits": {"max_connections": 1024},
                   "sources": {"shopify": shopify_hook.source_conf(parse=self.name != "relay-raw")}}
            json.dump(cfg, open(os.path.join(tmp, "relay.json"), "w"))
            # a build with -DRELAY_ACK_TRACE=ON logs its stage timings at stop
            self.log_path = os.path.join(tmp, self.name + ".log")
            log = open(self.log_path, "w")
            self.procs.append(subprocess.Popen(
                [os.path.join(build, "daemon", "odoo-relayd"), "--config",
                 os.path.join(tmp, "relay.json")], stdout=log, stderr=subprocess.STDOUT))
        else:  # peer1, peer2: the peer's own scripts, on its fixed ports
            port = 18090
            # (not captured: the redis-server it leaves running would hold the pipe)
            subprocess.run([os.path.join(a.peer, "bench", "redis.sh"), "start", "always"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            env = dict(os.environ, WORKERS=self.name[-1])
            log = open(os.path.join(tmp, "peer.log"), "a")
            self.procs.append(subprocess.Popen(["node", "receiver.js"], cwd=a.peer, env=env,
                                               stdout=log, stderr=subprocess.STDOUT))
        wait_port(port)
        return port

    def stop(self):
        for p in self.procs:
            p.send_signal(signal.SIGTERM if self.name != "nginx" else signal.SIGQUIT)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []
        if self.name.startswith("relay"):
            for line in open(self.log_path, errors="replace"):
                if "acktrace" in line:
                    print("%s %s" % (self.name, line.rstrip()), file=sys.stderr)
        if self.name.startswith("peer"):
            subprocess.run([os.path.join(self.args.peer, "bench", "redis.sh"), "stop"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def cpu_seconds(pid):
    """User and system CPU of every thread of pid so far."""
    t = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        t += int(fields[11]) + int(fields[12])
    return t / os.sysconf("SC_CLK_TCK")


def floor_commit(build, tmp, trees=1):
    """p50 and p99 of a raw durable LMDB commit of one 1 KiB put (with
    trees > 1: and a small key in each of trees - 1 more B-trees, the shape
    of an ingest), ms."""
    d = os.path.join(tmp, "floor")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    out = subprocess.run([os.path.join(build, "test", "bench", "lmdb-commit"), d, "2000", "1024",
                          str(trees)], capture_output=True, text=True, check=True).stdout
    m = re.search(r"p50 ([\d.]+) ms\s+p99 ([\d.]+) ms", out)
    return float(m.group(1)), float(m.group(2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..", "build"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--peer", help="a copy of the Node/BullMQ peer's folder, after npm ci")
    ap.add_argument("--against", help="another build directory, run as relay-b (an A/B)")
    ap.add_argument("--unparsed", action="store_true",
                    help="also relay-raw: a source that never parses the body")
    ap.add_argument("--relay-only", action="store_true", help="no nginx (and no goals' lines)")
    ap.add_argument("--conns", default="64,1", help="connection counts, comma-separated")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    if args.against:
        args.against = os.path.abspath(args.against)
    conn_list = [int(c) for c in args.conns.split(",")]
    for tool in ("wrk", "nginx") + (("node", "redis-server") if args.peer else ()):
        if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
            sys.exit("bench_ingest: %s is not installed (packaging/bootstrap.sh bench)" % tool)
    if args.peer:
        args.peer = os.path.abspath(args.peer)
        if not os.path.isdir(os.path.join(args.peer, "node_modules")):
            sys.exit("bench_ingest: run npm ci in %s first" % args.peer)
    names = ([] if args.relay_only else ["nginx"]) + ["relay"] + \
        (["relay-b"] if args.against else []) + (["relay-raw"] if args.unparsed else []) + \
        (["peer1", "peer2"] if args.peer else [])

    tmp = tempfile.mkdtemp(prefix="relay-bench-")
    results, floors, floors5 = {}, [], []
    try:
        script = os.path.join(tmp, "hooks.lua")
        open(script, "w").write(shopify_hook.lua_script())
        open(os.path.join(tmp, "shop.secret"), "wb").write(shopify_hook.SECRET)
        for rnd in range(args.rounds):
            floors.append(floor_commit(args.build, tmp))
            floors5.append(floor_commit(args.build, tmp, 5))
            print("round %d floor: durable single-put LMDB commit p50 %.3f ms  p99 %.3f ms; "
                  "in 5 trees p50 %.3f ms" % ((rnd + 1,) + floors[-1] + floors5[-1][:1]),
                  file=sys.stderr)
            for name in names:
                t = Target(name, tmp, args)
                port = t.start()
                try:
                    for conns in conn_list:
                        run_wrk(port, conns, 2, script)  # warm-up
                        pid = t.procs[0].pid if name.startswith("relay") else None
                        c0 = cpu_seconds(pid) if pid else 0
                        perf = None
                        if pid and os.environ.get("RELAY_BENCH_PERF"):
                            # a profile of the daemon: RELAY_BENCH_PERF=perf.data (.c64, .c1)
                            perf = subprocess.Popen(
                                ["perf", "record", "--call-graph",
                                 os.environ.get("RELAY_BENCH_CALLGRAPH", "fp"), "-o",
                                 "%s.c%d" % (os.environ["RELAY_BENCH_PERF"], conns), "-p",
                                 str(pid)], stderr=subprocess.DEVNULL)
                        r = run_wrk(port, conns, args.seconds, script)
                        if perf:
                            perf.send_signal(2)
                            perf.wait(30)
                        # the daemon's CPU (all its threads) per answered request
                        r["cpu_us"] = ((cpu_seconds(pid) - c0) / r["requests"] * 1e6
                                       if pid and r["requests"] else 0.0)
                        results.setdefault((name, conns), []).append(r)
                        print("round %d %-9s c=%-2d %8.0f req/s  p50 %6.3f ms  p99 %6.2f ms  non-2xx %d %s%s"
                              % (rnd + 1, name, conns, r["rate"], r["p50"], r["p99"], r["errors"],
                                 r["socket_errors"],
                                 "  %.1f us CPU/request" % r["cpu_us"] if pid else ""),
                              file=sys.stderr)
                finally:
                    t.stop()

        def med(name, conns, key):
            return statistics.median(x[key] for x in results[(name, conns)])

        floor50 = statistics.median(f[0] for f in floors)
        print("\ningest benchmark: medians of %d rounds of %d s, Shopify-signed 1 KiB webhook"
              % (args.rounds, args.seconds))
        base = "relay" if args.relay_only else "nginx"
        print("%-9s %4s %10s %9s %9s %9s %8s" % ("", "conns", "req/s", "p50 ms", "p99 ms",
                                                "/" + base, "CPU us"))
        for conns in conn_list:
            for name in names:
                print("%-9s %4d %10.0f %9.3f %9.2f %8.2fx %8s" % (
                    name, conns, med(name, conns, "rate"), med(name, conns, "p50"),
                    med(name, conns, "p99"), med(name, conns, "rate") / med(base, conns, "rate"),
                    "%.1f" % med(name, conns, "cpu_us") if name.startswith("relay") else ""))
        print("%-9s %4s %10s %9.3f %9.2f   (lmdb-commit: one 1 KiB put per durable commit)"
              % ("floor", "", "", floor50, statistics.median(f[1] for f in floors)))
        print("%-9s %4s %10s %9.3f %9.2f   (the same put and a key in 4 more B-trees, as an ingest)"
              % ("floor5", "", "", statistics.median(f[0] for f in floors5),
                 statistics.median(f[1] for f in floors5)))
        if args.against:
            for conns in conn_list:
                print("relay against relay-b (%s), %d connections: rate %.2fx, p50 %.3f against "
                      "%.3f ms" % (args.against, conns,
                                   med("relay", conns, "rate") / med("relay-b", conns, "rate"),
                                   med("relay", conns, "p50"), med("relay-b", conns, "p50")))
        if args.unparsed:
            for conns in conn_list:
                print("relay-raw (the body never parsed), %d connection%s: %.2fx relay's rate%s, "
                      "%.1f us less CPU per request" % (
                          conns, "" if conns == 1 else "s",
                          med("relay-raw", conns, "rate") / med("relay", conns, "rate"),
                          "" if args.relay_only else ", %.2fx nginx" % (
                              med("relay-raw", conns, "rate") / med("nginx", conns, "rate")),
                          med("relay", conns, "cpu_us") - med("relay-raw", conns, "cpu_us")))
        if args.relay_only or set(conn_list) != {64, 1}:
            return
        print("\nrelay, CPU per request (all threads): %.1f us at 64 connections, %.1f us at 1"
              % (med("relay", 64, "cpu_us"), med("relay", 1, "cpu_us")))
        print("relay, 1 connection: p50 %.3f ms = %.2fx the durable commit floor (goal <= 1.5x)"
              % (med("relay", 1, "p50"), med("relay", 1, "p50") / floor50))
        print("relay, 64 connections: %.2fx nginx (goal >= 0.35x), p99 %.2f ms (goal <= 5 ms)"
              % (med("relay", 64, "rate") / med("nginx", 64, "rate"), med("relay", 64, "p99")))
        if args.peer:
            best = max(med(p, 64, "rate") for p in ("peer1", "peer2"))
            print("relay, 64 connections: %.2fx the faster peer (goal >= 3x)"
                  % (med("relay", 64, "rate") / best))
            print("relay, 1 connection: p50 %.3f ms against the peer's %.3f / %.3f ms (goal: below)"
                  % (med("relay", 1, "p50"), med("peer1", 1, "p50"), med("peer2", 1, "p50")))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
