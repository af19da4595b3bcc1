#!/usr/bin/env python3
"""Polling benchmark: a source of kind odoo-poll reads res.partner from the
Odoo emulator and a route posts every change to an HTTP receiver that
answers 200 at once (keep-alive, asyncio). Figures, medians of the rounds:

  first sync   RECORDS partners made in the emulator before the relay
               starts; the time from the relay's start until the receiver
               has every one of them (poll, hash, commit, deliver), as
               records per second; and the poller's own part (its first
               complete poll, from status: poll_took_ms)
  deletions    the time of one comparison of ids (search of ids only,
               10 000 a page, against the ids kept), from status:
               check_took_ms, per 100 000 records
  latency      a partner changed in the emulator, until the receiver has
               it: the poll interval (1 s) plus the poll and the delivery;
               CHANGES changes, one after the other
  table        bytes per tracked record of the poller's table (LMDB pages
               of the table / entries), from the store after the sync

usage: bench_poll.py [--build DIR] [--rounds N] [--records N] [--changes N]
                     [--page-size N]
"""
import argparse
import asyncio
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


class Receiver:
    """An HTTP/1.1 endpoint that answers 200 at once and counts bodies by
    partner name (first arrival time of each)."""

    def __init__(self):
        self.first = {}      # name -> monotonic time of its first arrival
        self.count = 0
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self.ready.wait()

    def _run(self):
        asyncio.set_event_loop(self.loop)
        srv = self.loop.run_until_complete(asyncio.start_server(self._conn, "127.0.0.1", 0))
        self.port = srv.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    async def _conn(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                n = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        n = int(line.split(b":", 1)[1])
                body = await reader.readexactly(n) if n else b""
                now = time.monotonic()
                try:
                    name = json.loads(body).get("name")
                except ValueError:
                    name = None
                with self.lock:
                    self.count += 1
                    if name is not None and name not in self.first:
                        self.first[name] = now
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def names(self):
        with self.lock:
            return len(self.first)

    def seen(self, name):
        with self.lock:
            return self.first.get(name)


def rpc(port, model, method, args, kwargs=None):
    doc = {"jsonrpc": "2.0", "method": "call", "id": 1,
           "params": {"service": "object", "method": "execute_kw",
                      "args": ["bench", 2, "admin", model, method, args, kwargs or {}]}}
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", "/jsonrpc", json.dumps(doc).encode(), {"Content-Type": "application/json"})
    r = json.loads(c.getresponse().read())
    c.close()
    if "error" in r:
        raise RuntimeError(r["error"]["data"]["message"])
    return r["result"]


def wait(cond, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise RuntimeError("timed out waiting for " + what)


def cpu_s(pid):
    """User and system CPU seconds of a process so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_round(build, records, changes, page_size):
    tmp = tempfile.mkdtemp(prefix="bench-poll-")
    emu = relayd = None
    try:
        pf = os.path.join(tmp, "emu.ports")
        emu = subprocess.Popen([os.path.join(build, "test", "emulator", "odoo-emulator"),
                                "--port-file", pf, "--db", "bench", "--user", "admin:admin",
                                "--api-key", "admin:bench-key"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait(lambda: os.path.exists(pf), 10, "emulator")
        port, control = [int(x) for x in open(pf).read().split()]
        c = http.client.HTTPConnection("127.0.0.1", control, timeout=10)
        c.request("POST", "/control/keepalive", b'{"enabled": true}',
                  {"Content-Type": "application/json"})
        c.getresponse().read()
        # made two hours ago, so that later polls, which read again from
        # the cursor less its overlap (5 minutes), do not read them all again;
        # then one record now, which moves the cursor to now
        c.request("POST", "/control/clock", b'{"offset_ms": -7200000}',
                  {"Content-Type": "application/json"})
        c.getresponse().read()
        ids = []
        for start in range(0, records, 10000):
            ids += rpc(port, "res.partner", "create",
                [[{"name": "P%06d" % i, "email": "p%06d@bench.test" % i}
                  for i in range(start, min(records, start + 10000))]])
        c.request("POST", "/control/clock", b'{"offset_ms": 0}',
                  {"Content-Type": "application/json"})
        c.getresponse().read()
        ids += rpc(port, "res.partner", "create", [[{"name": "Marker",
                                                     "email": "marker@bench.test"}]])
        records += 1
        rcv = Receiver()
        for name, text in (("odoo.key", "bench-key"),
                           ("wh.key", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")):
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text + "\n")
        cfg = {
            "listen": ["127.0.0.1:0"], "state_dir": os.path.join(tmp, "state"),
            "map_size_mb": 4096,
            "sources": {"partners": {"kind": "odoo-poll", "model": "res.partner",
                                     "fields": ["name", "email"], "interval_s": 1,
                                     "page_size": page_size, "deletion_check_s": 60,
                                     "domain": [["email", "like", "@bench.test"]]}},
            "odoo": {"url": "http://127.0.0.1:%d" % port, "database": "bench",
                     "login": "admin", "password_file": "odoo.key"},
            "destinations": {"shop": {"kind": "http",
                                      "url": "http://127.0.0.1:%d/in" % rcv.port,
                                      "secret_file": "wh.key", "allow_private": True,
                                      "max_in_flight": 32}},
            "routes": [{"name": "out", "source": "partners", "destination": "shop",
                        "operation": "post", "body": "as_received"}],
        }
        path = os.path.join(tmp, "relay.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        emu_cpu0 = cpu_s(emu.pid)
        t0 = time.monotonic()
        relayd = subprocess.Popen([os.path.join(build, "daemon", "odoo-relayd"), "--config", path],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait(lambda: rcv.names() >= records, 1800, "the first sync")
        sync_s = time.monotonic() - t0
        emu_cpu, relay_cpu = cpu_s(emu.pid) - emu_cpu0, cpu_s(relayd.pid)

        def state():
            p = subprocess.run([os.path.join(build, "daemon", "odoo-relayctl"), "--config", path,
                                "--json", "status"], capture_output=True, text=True)
            return json.loads(p.stdout)["pollers"]["partners"]

        st = wait(lambda: (lambda s: s if s.get("check_took_ms") else None)(state()), 600,
                  "a deletion check")
        lat = []
        for i in range(changes):
            name = "Changed %d" % i
            t = time.monotonic()
            rpc(port, "res.partner", "write", [[ids[i]], {"name": name}])
            wait(lambda: rcv.seen(name), 60, "a change")
            lat.append(rcv.seen(name) - t)
        relayd.terminate()
        relayd.wait(30)
        relayd = None
        p = subprocess.run([os.path.join(build, "test", "integration", "store-dump"),
                            cfg["state_dir"], "poll-stat"], capture_output=True, text=True)
        per = None
        if p.returncode == 0 and p.stdout.strip():
            ent, by = [int(x) for x in p.stdout.split()]
            per = by / ent if ent else None
        return {"sync_s": sync_s, "rate": records / sync_s, "poll_ms": st["poll_took_ms"],
                "check_ms": st["check_took_ms"], "latency_s": statistics.median(lat),
                "latency_max_s": max(lat), "bytes_per_record": per,
                "emu_cpu_s": emu_cpu, "relay_cpu_s": relay_cpu}
    finally:
        if relayd:
            relayd.kill()
        if emu:
            emu.kill()
            emu.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..", "build"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--records", type=int, default=100000)
    ap.add_argument("--changes", type=int, default=5)
    ap.add_argument("--page-size", type=int, default=1000)
    a = ap.parse_args()
    res = []
    for r in range(a.rounds):
        x = one_round(a.build, a.records, a.changes, a.page_size)
        print("round %d: first sync %.1f s (%.0f records/s; its poll %.1f s; CPU: emulator "
              "%.1f s, odoo-relayd %.1f s), deletion check %.2f s, change latency median "
              "%.2f s (max %.2f s), %s bytes per tracked record" %
              (r + 1, x["sync_s"], x["rate"], x["poll_ms"] / 1000, x["emu_cpu_s"],
               x["relay_cpu_s"], x["check_ms"] / 1000,
               x["latency_s"], x["latency_max_s"],
               "%.1f" % x["bytes_per_record"] if x["bytes_per_record"] else "?"), flush=True)
        res.append(x)
    med = {k: statistics.median([x[k] for x in res if x[k] is not None] or [0]) for k in res[0]}
    scale = 100000 / a.records
    print("median of %d rounds, %d records, page size %d: first sync %.0f records/s "
          "(%.1f s; its poll %.1f s), deletion check %.2f s per 100 000 records, change "
          "latency %.2f s, %.1f bytes per tracked record"
          % (a.rounds, a.records, a.page_size, med["rate"], med["sync_s"], med["poll_ms"] / 1000,
             med["check_ms"] / 1000 * scale, med["latency_s"], med["bytes_per_record"]))


if __name__ == "__main__":
    sys.exit(main())
