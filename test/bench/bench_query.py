#!/usr/bin/env python3
"""Query benchmark (GET /query/<name>), two figures, each against a baseline
measured in the same run:

  cached    wrk GETs a query whose answer is in the relay's cache, against
            nginx serving a static file of the same bytes (goal >= 0.5x);
  uncached  wrk GETs a query with a different parameter each time (no cache,
            nothing to coalesce: every request is one search_read on the Odoo
            emulator), against wrk making the same search_read calls on the
            emulator directly over JSON-RPC, with as many in flight as the
            relay's query_max_in_flight (goal >= 0.9x).

The query is public (no authentication: nginx checks none either) and reads
PARTNERS res.partner records (id, name, email). The emulator answers at once,
so the uncached pair measures what the relay adds per call on the machine's
cores, which the relay, the emulator and wrk share. With --odoo-cost the
uncached pair runs again with the emulator's cost model on (each call costs
what a real Odoo 18 worker takes, one call at a time; test/emulator/README.md),
which is what a relay in front of a real Odoo meets. Several rounds; medians.

usage: bench_query.py [--build DIR] [--rounds N] [--seconds S] [--in-flight N]
                      [--odoo-cost]
Needs wrk and nginx (packaging/bootstrap.sh bench installs them).
"""
import argparse
import http.client
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
PARTNERS = 20

CACHED_LUA = r"""
wrk.method = "GET"
"""

UNCACHED_LUA = r"""
local threads = {}
function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end
function init(args)
   counter = 0
   base = (tid + 1) * 100000000 + math.random(1, 1000000) * 10
end
function request()
   counter = counter + 1
   return wrk.format("GET", "/query/bench_uncached?not_id=" .. tostring(base + counter))
end
"""

DIRECT_LUA = r"""
local threads = {}
function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end
function init(args)
   counter = 0
   base = (tid + 1) * 100000000 + math.random(1, 1000000) * 10
end
function request()
   counter = counter + 1
   local body = '{"jsonrpc":"2.0","method":"call","id":1,"params":{"service":"object",' ..
      '"method":"execute_kw","args":["bench",UID,"bench-key","res.partner","search_read",[],' ..
      '{"domain":[["id","!=",' .. tostring(base + counter) .. '],["name","=like","Bench%"]],' ..
      '"fields":["id","name","email"],"order":"id","limit":100}]}}'
   return wrk.format("POST", "/jsonrpc", {["Content-Type"] = "application/json"}, body)
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
        root {tmp}/www;
        location / {{ default_type application/json; }}
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


def wait_for(cond, timeout, what, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise RuntimeError("timed out waiting for " + what)


def listening(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def rpc(port, service, method, args):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/jsonrpc", json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1,
                                              "params": {"service": service, "method": method,
                                                         "args": args}}),
              {"Content-Type": "application/json"})
    r = json.loads(c.getresponse().read())
    c.close()
    if "error" in r:
        raise RuntimeError("odoo: %r" % r["error"])
    return r["result"]


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def cpu_seconds(pid):
    """User plus system CPU time of process pid, all its threads."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(url, conns, seconds, script):
    out = subprocess.run(["wrk", "-t%d" % min(conns, 2), "-c%d" % conns, "-d%ds" % seconds,
                          "--latency", "-s", script, url], capture_output=True, text=True,
                         timeout=seconds + 60).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p50_ms = float(p50.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)]
    return rate, int(non2xx.group(1)) if non2xx else 0, p50_ms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..", "build"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--in-flight", type=int, default=4)
    ap.add_argument("--odoo-cost", action="store_true",
                    help="also run the uncached pair with the emulator's cost model on")
    args = ap.parse_args()
    relayd = os.path.join(args.build, "daemon", "odoo-relayd")
    emulator = os.path.join(args.build, "test", "emulator", "odoo-emulator")
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
            sys.exit("bench_query: %s is not installed (packaging/bootstrap.sh bench)" % tool)

    tmp = tempfile.mkdtemp(prefix="relay-bench-")
    procs = []
    try:
        ports = os.path.join(tmp, "ports")
        procs.append(subprocess.Popen([emulator, "--port-file", ports, "--db", "bench",
                                       "--user", "admin:admin", "--api-key", "admin:bench-key"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for(lambda: os.path.exists(ports), 10, "emulator")
        odoo_port, control_port = map(int, open(ports).read().split())

        def control(path, body):
            c = http.client.HTTPConnection("127.0.0.1", control_port, timeout=10)
            c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            c.getresponse().read()
            c.close()
        # keep-alive on, as Odoo behind its usual proxy (bench_delivery.py does the same)
        control("/control/keepalive", {"enabled": True})
        uid = rpc(odoo_port, "common", "login", ["bench", "admin", "bench-key"])
        for i in range(PARTNERS):
            rpc(odoo_port, "object", "execute_kw",
                ["bench", uid, "bench-key", "res.partner", "create",
                 [{"name": "Bench Partner %03d" % i, "email": "bench%03d@example.com" % i}]])

        relay_port, nginx_port = free_port(), free_port()
        open(os.path.join(tmp, "odoo.key"), "w").write("bench-key\n")
        query = {"model": "res.partner", "fields": ["id", "name", "email"], "order": "id",
                 "limit": 100, "public": True, "auth": {"scheme": "none"}}
        cfg = {
            "listen": ["127.0.0.1:%d" % relay_port],
            "state_dir": os.path.join(tmp, "state"),
            "limits": {"max_connections": 1024},
            "sources": {"unused": {"verify": {"scheme": "none"}, "dedup": {"header": "X-Id"}}},
            "odoo": {"url": "http://127.0.0.1:%d" % odoo_port, "database": "bench",
                     "login": "admin", "api_key_file": "odoo.key", "protocol": "jsonrpc",
                     "max_in_flight": args.in_flight, "query_max_in_flight": args.in_flight},
            "queries": {
                "bench_cached": dict(query, domain=[["name", "=like", {"param": "prefix"}]],
                                     params={"prefix": {"max_length": 20}}, cache_s=86400),
                "bench_uncached": dict(query, domain=[["id", "!=", {"param": "not_id"}],
                                                      ["name", "=like", "Bench%"]],
                                       params={"not_id": {"type": "integer"}}),
            },
        }
        json.dump(cfg, open(os.path.join(tmp, "relay.json"), "w"))
        log = open(os.path.join(tmp, "relayd.log"), "w")
        # RELAY_BENCH_WRAPPER="valgrind --tool=callgrind ..." for a profile
        wrapper = os.environ.get("RELAY_BENCH_WRAPPER", "").split()
        relay_proc = subprocess.Popen(wrapper + [relayd, "--config", os.path.join(tmp, "relay.json")],
                                      stdout=log, stderr=subprocess.STDOUT)
        procs.append(relay_proc)
        wait_for(lambda: listening(relay_port), 60, "relay")
        cached_path = "/query/bench_cached?prefix=Bench%25"
        status, body = wait_for(lambda: (lambda r: r if r[0] == 200 else None)(get(relay_port, cached_path)),
                                10, "the relay to answer")
        os.makedirs(os.path.join(tmp, "www"))
        os.chmod(tmp, 0o755)  # nginx's workers may run as another user
        open(os.path.join(tmp, "www", "answer.json"), "wb").write(body)
        open(os.path.join(tmp, "nginx.conf"), "w").write(NGINX_CONF.format(tmp=tmp, port=nginx_port))
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        procs.append(subprocess.Popen([nginx, "-c", os.path.join(tmp, "nginx.conf"), "-p", tmp,
                                       "-g", "daemon off;"], stderr=subprocess.DEVNULL))
        wait_for(lambda: listening(nginx_port), 10, "nginx")
        st, static = get(nginx_port, "/answer.json")
        if st != 200 or static != body:
            sys.exit("bench_query: nginx does not serve the answer (%d)" % st)

        scripts = {}
        for name, text in (("cached", CACHED_LUA), ("uncached", UNCACHED_LUA),
                           ("direct", DIRECT_LUA.replace("UID", str(uid)))):
            scripts[name] = os.path.join(tmp, name + ".lua")
            open(scripts[name], "w").write(text)
        runs = [
            ("nginx static", "http://127.0.0.1:%d/answer.json" % nginx_port, 64, "cached"),
            ("relay cached", "http://127.0.0.1:%d%s" % (relay_port, cached_path), 64, "cached"),
            ("direct search_read", "http://127.0.0.1:%d/jsonrpc" % odoo_port, args.in_flight, "direct"),
            ("relay uncached", "http://127.0.0.1:%d/" % relay_port, 4 * args.in_flight, "uncached"),
            # one caller at a time: what the relay adds to the time of one answer
            ("direct search_read, 1 conn", "http://127.0.0.1:%d/jsonrpc" % odoo_port, 1, "direct"),
            ("relay uncached, 1 conn", "http://127.0.0.1:%d/" % relay_port, 1, "uncached"),
        ]
        costed = [(name + " (odoo cost)", url, conns, script) for name, url, conns, script in runs
                  if script != "cached" and conns != 1] if args.odoo_cost else []
        results, p50s, cpus = {}, {}, {}
        for rnd in range(args.rounds):
            for name, url, conns, script in runs + costed:
                control("/control/cost", {"on": name.endswith("(odoo cost)")})
                perf = None
                if os.environ.get("RELAY_BENCH_PERF") and name == "relay uncached":
                    # a profile of the relay's uncached answers: RELAY_BENCH_PERF=perf.data
                    perf = subprocess.Popen(["perf", "record", "--call-graph", os.environ.get("RELAY_BENCH_CALLGRAPH", "fp"), "-o",
                                             os.environ["RELAY_BENCH_PERF"], "-p",
                                             str(relay_proc.pid)], stderr=subprocess.DEVNULL)
                c0 = cpu_seconds(relay_proc.pid)
                rate, errors, p50 = run_wrk(url, conns, args.seconds, scripts[script])
                cpu_us = (cpu_seconds(relay_proc.pid) - c0) * 1e6 / max(rate * args.seconds, 1)
                if perf:
                    perf.send_signal(2)
                    perf.wait(30)
                if name.startswith("relay"):
                    cpus.setdefault(name, []).append(cpu_us)
                results.setdefault(name, []).append(rate)
                p50s.setdefault(name, []).append(p50)
                print("round %d %-40s c=%-3d %9.0f req/s  p50 %.3f ms  non-2xx %d%s"
                      % (rnd + 1, name, conns, rate, p50, errors,
                         "  relay CPU %.1f us/answer" % cpu_us if name.startswith("relay")
                         else ""), file=sys.stderr)
        med = dict((k, statistics.median(v)) for k, v in results.items())
        p50 = dict((k, statistics.median(v)) for k, v in p50s.items())
        print("\nquery benchmark: medians of %d rounds of %d s; answer %d bytes (%d records)"
              % (args.rounds, args.seconds, len(body), PARTNERS))
        print("%-40s %12s %10s %10s" % ("", "answers/s", "ratio", "p50 ms"))
        pairs = [("nginx static", "nginx static"), ("relay cached", "nginx static"),
                 ("direct search_read", "direct search_read"),
                 ("relay uncached", "direct search_read"),
                 ("direct search_read, 1 conn", "direct search_read, 1 conn"),
                 ("relay uncached, 1 conn", "direct search_read, 1 conn")]
        if args.odoo_cost:
            pairs += [("direct search_read (odoo cost)", "direct search_read (odoo cost)"),
                      ("relay uncached (odoo cost)", "direct search_read (odoo cost)")]
        for name, base in pairs:
            print("%-40s %12.0f %9.2fx %10.3f" % (name, med[name], med[name] / med[base], p50[name]))
        for name in sorted(cpus):
            print("%-40s relay CPU %.1f us per answer (all threads, user+system)"
                  % (name, statistics.median(cpus[name])))
        print("the relay adds %.3f ms (median) to one uncached answer at one connection"
              % (p50["relay uncached, 1 conn"] - p50["direct search_read, 1 conn"]))
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
