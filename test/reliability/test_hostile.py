"""Hostile clients (issues 6 and 10), against the real odoo-relayd with its
default limits (1024 connections, 10 s for headers, 1 MiB bodies, a 32 MiB
body budget).

test_hostile: 500 slowloris connections trickling headers or bodies and
2000 idle connections, each opened again as soon as the daemon drops it,
and workers looping over oversized bodies (a huge Content-Length, a real 2
MiB body) and header floods (1000 headers, one 64 KiB header), all at once,
from attacker.py in a process of its own. The attack holds more connections
than the daemon's table: it only stays fair because a new connection
closes the one that has waited longest for a request (see
include/odoo_relay/http_server.h).

test_body_flood: 1000 connections each announcing a 1 MiB body with a wrong
signature and sending all of it but the last byte, then the last bytes.
Without a budget the daemon held all of them at once (1 GiB).

Asserted: a well-behaved client is served (202) throughout, every request
of it; the daemon made room by closing waiting connections; the daemon's
memory stays under the bound odoo-relayd(8) gives (below); its descriptors
return to what they were once the attack ends; it is still alive and
answering; every flooding body got 401 or 503 with Retry-After. Reported,
never asserted: the well-behaved client's p99 latency without and with the
attack, and their ratio (issue 6 aims at most 2x).

The memory bound, as odoo-relayd(8) states it: per connection at most 116
KiB (the input buffer: max_header_bytes of 16 KiB, 64 KiB read ahead of a
pipelining client and one read of 16 KiB; the parsed request line and
headers, 16 KiB again; the connection, bufferevent and timers, 4 KiB), and
for bodies at most three copies of limits.body_budget_bytes (as received,
as the event handed to the writer, as the record it encodes), so

    bound = RSS before the attack + max_connections x 116 KiB
            + 3 x body_budget_bytes + the size of data.mdb (mapped)
"""
import json
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time

from rel import (BUILD, Emit, dump, RelRelay, Results, TempDir, base_config, figure,
                 hwm_kib, open_fds, rss_kib, scaled, shopify_sig, wait_for)

HERE = os.path.dirname(os.path.abspath(__file__))
SLOW = int(os.environ.get("RELAY_SLOWLORIS", 500))
IDLE = int(os.environ.get("RELAY_IDLE", 2000))
FLOOD_WORKERS = int(os.environ.get("RELAY_FLOOD_WORKERS", 4))
GOOD_REQUESTS = int(os.environ.get("RELAY_GOOD_REQUESTS", scaled(1000, 20000)))
# The attack lasts at least this long: past the header timeout, so that
# slowloris connections are timed out (408) and opened again.
ATTACK_S = float(os.environ.get("RELAY_ATTACK_S", scaled(15, 300)))
BODY_FLOOD = int(os.environ.get("RELAY_BODY_FLOOD", 1000))
# The defaults of odoo-relay.conf(5): the test runs with "limits": {}.
MAX_CONNECTIONS = 1024
MAX_BODY = 1 << 20
BODY_BUDGET = 32 << 20
PER_CONN_KIB = 2 * 16 + 80 + 4


def sanitized():
    try:
        return "RELAY_SANITIZE:BOOL=ON" in open(os.path.join(BUILD, "CMakeCache.txt")).read()
    except OSError:
        return False


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))]


def memory_bound(rss_before, state):
    """odoo-relayd(8)'s worst case over what the daemon held before."""
    data_mdb = os.path.getsize(os.path.join(state, "data.mdb")) // 1024
    return (rss_before + MAX_CONNECTIONS * PER_CONN_KIB + 3 * BODY_BUDGET // 1024 + data_mdb,
            data_mdb)


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))  # inherited
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def good_client(t, r, n, tag, rss, min_s=0.0):
    """At least n webhooks (and for at least min_s seconds), one connection
    each, as a sender does; latencies in ms."""
    lat, bad = [], []
    start = time.monotonic()
    i = -1
    while i + 1 < n or time.monotonic() - start < min_s:
        i += 1
        t0 = time.monotonic()
        st, _, _ = r.post_shop({"id": i, "n": i}, "%s-%d" % (tag, i))
        lat.append((time.monotonic() - t0) * 1000.0)
        if st != 202:
            bad.append(st)
        if i % 20 == 0:
            rss.append(rss_kib(r.proc.pid))
    t.eq(bad, [], "%s: every request of the well-behaved client accepted" % tag)
    return lat


def test_hostile(t):
    # the daemon needs its table and some; the attacker raises its own
    soft = raise_nofile(MAX_CONNECTIONS + 256)
    t.check(soft >= MAX_CONNECTIONS + 64, "RLIMIT_NOFILE %d holds the default table" % soft)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    slow, idle = SLOW, IDLE
    if hard < slow + idle + 64 * FLOOD_WORKERS + 256:
        idle = max(MAX_CONNECTIONS, hard - slow - 64 * FLOOD_WORKERS - 256)
        print("RLIMIT_NOFILE hard %d: %d idle connections instead of %d" % (hard, idle, IDLE))
    emit = Emit("hostile")
    with TempDir() as tmp:
        state = os.path.join(tmp, "state")
        # No Odoo here, so nothing drains: the map must hold whatever the
        # well-behaved client sends during the whole attack, at whatever rate
        # the machine allows (about 150 000 events in the soak's 300 s), or
        # it would be refused with 503 for a full store instead of served.
        cfg = base_config(state, map_size_mb=1024, limits={})
        r = RelRelay(tmp, cfg, emit=emit)
        attacker = None
        try:
            rss = []
            good_client(t, r, 50, "warm", rss)  # lazily opened descriptors, caches
            fds_before = open_fds(r.proc.pid)
            rss_before = rss_kib(r.proc.pid)
            base = good_client(t, r, GOOD_REQUESTS, "calm", rss)

            ready = os.path.join(tmp, "attack.ready")
            stats_path = os.path.join(tmp, "attack.json")
            # The attacker runs at the lowest priority: on a real server it is
            # elsewhere, and what it costs the daemon (its requests) is what
            # is measured, not the CPU its own interpreter burns on this box.
            attacker = subprocess.Popen(["nice", "-n", "19", sys.executable,
                                         os.path.join(HERE, "attacker.py"), "127.0.0.1",
                                         str(r.port), ready, stats_path, "--slow", str(slow),
                                         "--idle", str(idle), "--flood-workers", str(FLOOD_WORKERS)])
            wait_for(lambda: os.path.exists(ready) or attacker.poll() is not None, timeout=60,
                     what="the attack to be in place")
            t.check(attacker.poll() is None, "attacker running")
            # more than the table holds: the daemon's table is full
            wait_for(lambda: open_fds(r.proc.pid) >= fds_before + MAX_CONNECTIONS - 32, timeout=30,
                     what="the daemon's table full of the attack's connections")
            fds_attack = open_fds(r.proc.pid)
            under = good_client(t, r, GOOD_REQUESTS, "attack", rss, ATTACK_S)
            fds_attack = max(fds_attack, open_fds(r.proc.pid))
            t.check(attacker.poll() is None, "attacker still running at the end")
            attacker.send_signal(signal.SIGTERM)
            attacker.wait(60)
            stats = json.load(open(stats_path))
            attacker = None
            emit.add("http-bodies", "\n".join(stats["samples"].values()))
            evicted = r.metric("relay_http_evicted_total", 'listener="webhook"')
            t.check(evicted > 0, "the daemon closed waiting connections to make room (%d)" % evicted)
            bound, data_mdb = memory_bound(rss_before, state)
            peak = max(rss + [hwm_kib(r.proc.pid)])
            if sanitized():
                # ASan's quarantine keeps freed memory on purpose: no bound applies
                print("NOTE sanitizer build: the RSS bound is not checked")
            else:
                t.check(peak <= bound, "peak RSS %d KiB under the bound %d KiB" % (peak, bound))
            t.check(not any(s in r.logs() for s in ("AddressSanitizer", "runtime error:")),
                    "no sanitizer report")
            wait_for(lambda: open_fds(r.proc.pid) <= fds_before, timeout=60,
                     what="descriptors back to %d (now %d)" % (fds_before, open_fds(r.proc.pid)))
            fds_after = open_fds(r.proc.pid)
            answers = {int(k): v for k, v in stats["answers"].items()}
            t.check(answers.get(413, 0) > 0, "oversized bodies refused with 413 (%r)" % answers)
            t.check(answers.get(431, 0) > 0, "header floods refused with 431 (%r)" % answers)
            t.check(set(answers) <= {408, 413, 431}, "the attack got only 408, 413, 431 (%r)" % answers)
            t.check(r.proc.poll() is None, "the daemon survived")
            st, _, _ = r.request("GET", "/healthz")
            t.eq(st, 200, "healthy after the attack")
            st, _, _ = r.post_shop({"id": 1}, "after-attack")
            t.eq(st, 202, "serving after the attack")
            # once more without: the machine's own noise, for the reader to judge the ratio
            after = good_client(t, r, GOOD_REQUESTS, "calm-again", [])
            b99, a99, c99 = p99(base), p99(under), p99(after)
            figure("hostile p99", "%.1f ms without attack, %.1f ms under attack: ratio %.2f (goal <= 2); "
                   "%.1f ms without attack again" % (b99, a99, a99 / b99 if b99 else 0.0, c99),
                   "%d/%d/%d requests; %d slowloris + %d idle + %d flood workers for %.0f s, "
                   "default limits" % (len(base), len(under), len(after), slow, idle, FLOOD_WORKERS,
                                       ATTACK_S))
            figure("hostile memory", "peak RSS %d KiB (%.1f MiB), before the attack %d KiB; bound %d KiB "
                   "(%d conns x %d KiB + 3 x %d KiB + data.mdb %d KiB)"
                   % (peak, peak / 1024.0, rss_before, bound, MAX_CONNECTIONS, PER_CONN_KIB,
                      BODY_BUDGET // 1024, data_mdb), "ctest -R rel_hostile")
            figure("hostile fds", "%d before, %d under attack, %d after" % (fds_before, fds_attack, fds_after),
                   "/proc/PID/fd")
            figure("hostile answers", "%s, %d reconnects (%d closed without an answer), %d flood "
                   "requests; %d connections closed for room"
                   % (", ".join("%d x %d" % (v, k) for k, v in sorted(answers.items())),
                      stats["reconnects"], stats["closed_unanswered"], stats["floods"], evicted),
                   "attacker.py, /metrics")
            t.eq(r.stop(), 0, "clean exit")
        finally:
            if attacker:
                attacker.kill()
                attacker.wait()
            r.stop()


def flood_bodies(port, n, body, sig):
    """n connections, each announcing len(body) bytes and sending all but the
    last; then the last byte on each still reading. Returns the answers:
    [(status, headers)], None for a connection closed without one."""
    head = (b"POST /hooks/shop HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
            b"X-Shopify-Topic: customers/create\r\nX-Shopify-Hmac-Sha256: " + sig.encode() +
            b"\r\nContent-Length: %d\r\n" % len(body))
    sel = selectors.DefaultSelector()
    conns = []
    shared = memoryview(body)[:-1]  # one copy of the body for every connection
    for i in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        c = {"sock": s, "out": [memoryview(head + b"X-Shopify-Webhook-Id: flood-%d\r\n\r\n" % i),
                                shared], "last": body[-1:], "in": b"", "done": False}
        conns.append(c)
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, c)

    def finish(c):
        c["done"] = True
        c["out"] = None
        sel.unregister(c["sock"])
        c["sock"].close()

    deadline = time.monotonic() + 120
    last_sent = False
    while time.monotonic() < deadline:
        live = [c for c in conns if not c["done"]]
        if not live:
            break
        if not last_sent and all(c["out"] is None for c in live):
            last_sent = True  # all but the last bytes are out: send those
            for c in live:
                try:
                    c["sock"].send(c["last"])
                except OSError:
                    pass
        for key, ev in sel.select(timeout=0.5):
            c = key.data
            if c["done"]:
                continue
            if ev & selectors.EVENT_READ:
                try:
                    data = c["sock"].recv(65536)
                except OSError:
                    data = b""
                c["in"] += data
                if not data or b"\r\n\r\n" in c["in"]:
                    finish(c)
                    continue
            if ev & selectors.EVENT_WRITE and c["out"] is not None:
                try:
                    w = c["sock"].send(c["out"][0][:262144])
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    w = len(c["out"][0])
                c["out"][0] = c["out"][0][w:]
                if not len(c["out"][0]):
                    c["out"].pop(0)
                if not c["out"]:
                    c["out"] = None
                    sel.modify(c["sock"], selectors.EVENT_READ, c)
    for c in conns:
        if not c["done"]:
            finish(c)
    answers = []
    for c in conns:
        head_end = c["in"].find(b"\r\n\r\n")
        if not c["in"].startswith(b"HTTP/1.1 ") or head_end < 0:
            answers.append(None)
            continue
        answers.append((int(c["in"][9:12]), c["in"][:head_end].decode("latin-1")))
    return answers


def test_body_flood(t):
    raise_nofile(MAX_CONNECTIONS + 256)
    emit = Emit("hostile-bodies")
    with TempDir() as tmp:
        state = os.path.join(tmp, "state")
        r = RelRelay(tmp, base_config(state, limits={}), emit=emit)
        try:
            rss = []
            good_client(t, r, 20, "warm", rss)
            fds_before = open_fds(r.proc.pid)
            rss_before = rss_kib(r.proc.pid)
            body = b"{" + b" " * (MAX_BODY - 2) + b"}"
            # meanwhile a sender retries on 503 as senders do, until 202
            good = {"accepted": [], "statuses": set(), "retry_after": True}
            stop = threading.Event()

            def sender():
                i = 0
                while not stop.is_set():
                    st, hdrs, js = r.post_shop({"id": i}, "good-%d" % i)
                    good["statuses"].add(st)
                    if st == 202:
                        good["accepted"].append(js["id"])
                        i += 1
                    elif st == 503:
                        good["retry_after"] &= "Retry-After" in hdrs
                    time.sleep(0.01)
            th = threading.Thread(target=sender)
            th.start()
            try:
                answers = flood_bodies(r.port, BODY_FLOOD, body, shopify_sig(body, b"wrong"))
            finally:
                stop.set()
                th.join(30)
            peak = hwm_kib(r.proc.pid)
            statuses = {}
            for a in answers:
                k = a[0] if a else None
                statuses[k] = statuses.get(k, 0) + 1
            t.eq(statuses.get(None, 0), 0, "every flooding connection answered (%r)" % statuses)
            t.check(set(statuses) <= {401, 503}, "only 401 and 503 (%r)" % statuses)
            t.check(statuses.get(503, 0) > 0, "the budget was reached: 503 (%r)" % statuses)
            t.check(all("Retry-After: " in a[1] for a in answers if a and a[0] == 503),
                    "every 503 says Retry-After")
            t.check(good["statuses"] <= {202, 503} and good["retry_after"],
                    "the well-behaved sender got 202, or 503 with Retry-After (%r)" % good["statuses"])
            t.check(len(good["accepted"]) > 0, "the well-behaved sender was served during the flood")
            stored = {str(e["id"]) for e in dump(state, emit=emit) if e["source"] == "shop"}
            t.eq(set(good["accepted"]) - stored, set(), "everything accepted is stored")
            bound, data_mdb = memory_bound(rss_before, state)
            if sanitized():
                print("NOTE sanitizer build: the RSS bound is not checked")
            else:
                t.check(peak <= bound, "peak RSS %d KiB under the bound %d KiB" % (peak, bound))
            wait_for(lambda: open_fds(r.proc.pid) <= fds_before, timeout=60,
                     what="descriptors back to %d (now %d)" % (fds_before, open_fds(r.proc.pid)))
            st, _, _ = r.post_shop({"id": 1}, "after-flood")
            t.eq(st, 202, "serving after the flood")
            figure("hostile body flood", "peak RSS %d KiB (%.1f MiB), before %d KiB; bound %d KiB; "
                   "answers %s; the sender got %d accepted"
                   % (peak, peak / 1024.0, rss_before, bound,
                      ", ".join("%d x %s" % (v, k) for k, v in sorted(statuses.items(), key=str)),
                      len(good["accepted"])),
                   "%d x 1 MiB with a wrong signature, default limits" % BODY_FLOOD)
            t.eq(r.stop(), 0, "clean exit")
        finally:
            r.stop()


if __name__ == "__main__":
    t = Results()
    t.run(test_body_flood)
    t.run(test_hostile)
    t.done()
