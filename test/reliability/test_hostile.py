"""Hostile clients (issue 6), against the real odoo-relayd: 1000 slowloris
connections trickling headers or bodies, 200 idle connections, and workers
looping over oversized bodies (a huge Content-Length, a real 2 MiB body)
and header floods (1000 headers, one 64 KiB header), all at once, from
attacker.py in a process of its own.

Asserted: a well-behaved client is served (202) throughout; the daemon's
memory stays under a bound derived from its limits (below); its
descriptors return to what they were once the attack ends; it is still
alive and answering. Reported, never asserted: the well-behaved client's
p99 latency without and with the attack, and their ratio (issue 6 aims at
most 2x).

The memory bound. Per connection the server holds at most: the input
buffer, which stops at max_header_bytes (16 KiB) plus one read (libevent
reads at most 16 KiB at once); the parsed request line and headers (again
at most 16 KiB); the body buffer, Content-Length bytes, at most
max_body_bytes, and once more as the encoded record while it waits for its
commit; the connection, bufferevent and timer (under 4 KiB). So

    bound = RSS before the attack + peak connections x (3 x 16 KiB +
            2 x max_body_bytes + 4 KiB) + the size of data.mdb (mapped)

with peak connections = the attacker's slow and idle connections plus two
per flood worker and the measuring client.
"""
import json
import os
import resource
import signal
import subprocess
import sys
import time

from rel import (BUILD, Emit, RelRelay, Results, TempDir, base_config, figure, hwm_kib, open_fds,
                 rss_kib, scaled, wait_for)

HERE = os.path.dirname(os.path.abspath(__file__))
SLOW = int(os.environ.get("RELAY_SLOWLORIS", 1000))
IDLE = 200
FLOOD_WORKERS = int(os.environ.get("RELAY_FLOOD_WORKERS", 4))
GOOD_REQUESTS = int(os.environ.get("RELAY_GOOD_REQUESTS", scaled(1000, 20000)))
# The attack lasts at least this long: past the header timeout, so that
# slowloris connections are timed out (408) and opened again.
ATTACK_S = float(os.environ.get("RELAY_ATTACK_S", scaled(15, 300)))
MAX_BODY = 65536
MAX_CONNECTIONS = 2048


def sanitized():
    try:
        return "RELAY_SANITIZE:BOOL=ON" in open(os.path.join(BUILD, "CMakeCache.txt")).read()
    except OSError:
        return False


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))]


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
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = MAX_CONNECTIONS + 256
    if soft < need and hard >= need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))  # inherited by the daemon
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    slow = SLOW
    if soft < SLOW + IDLE + 300:
        slow = max(100, soft - IDLE - 300)
        print("RLIMIT_NOFILE %d: %d slowloris connections instead of %d" % (soft, slow, SLOW))
    emit = Emit("hostile")
    with TempDir() as tmp:
        state = os.path.join(tmp, "state")
        # No Odoo here, so nothing drains: the map must hold whatever the
        # well-behaved client sends during the whole attack, at whatever rate
        # the machine allows (about 150 000 events in the soak's 300 s), or
        # it would be refused with 503 for a full store instead of served.
        cfg = base_config(state, map_size_mb=1024,
                          limits={"max_body_bytes": MAX_BODY, "header_timeout_ms": 10000,
                                  "body_timeout_ms": 30000,
                                  "max_connections": MAX_CONNECTIONS})
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
                                         "--idle", str(IDLE), "--flood-workers", str(FLOOD_WORKERS)])
            wait_for(lambda: os.path.exists(ready) or attacker.poll() is not None, timeout=60,
                     what="the attack to be in place")
            t.check(attacker.poll() is None, "attacker running")
            wait_for(lambda: open_fds(r.proc.pid) >= fds_before + slow + IDLE, timeout=30,
                     what="the daemon to hold the attack's connections")
            fds_attack = open_fds(r.proc.pid)
            under = good_client(t, r, GOOD_REQUESTS, "attack", rss, ATTACK_S)
            fds_attack = max(fds_attack, open_fds(r.proc.pid))
            t.check(attacker.poll() is None, "attacker still running at the end")
            attacker.send_signal(signal.SIGTERM)
            attacker.wait(60)
            stats = json.load(open(stats_path))
            attacker = None
            emit.add("http-bodies", "\n".join(stats["samples"].values()))
            data_mdb = os.path.getsize(os.path.join(state, "data.mdb")) // 1024
            peak_conns = slow + IDLE + 2 * FLOOD_WORKERS + 1
            per_conn = 3 * 16 + 2 * MAX_BODY // 1024 + 4
            bound = rss_before + peak_conns * per_conn + data_mdb
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
                   "%d/%d/%d requests; %d slowloris + %d idle + %d flood workers for %.0f s"
                   % (len(base), len(under), len(after), slow, IDLE, FLOOD_WORKERS, ATTACK_S))
            figure("hostile memory", "peak RSS %d KiB (%.1f MiB), before the attack %d KiB; bound %d KiB "
                   "(%d conns x %d KiB + data.mdb %d KiB)"
                   % (peak, peak / 1024.0, rss_before, bound, peak_conns, per_conn, data_mdb),
                   "ctest -R rel_hostile")
            figure("hostile fds", "%d before, %d under attack, %d after" % (fds_before, fds_attack, fds_after),
                   "/proc/PID/fd")
            figure("hostile answers", "%s, %d reconnects, %d flood requests"
                   % (", ".join("%d x %d" % (v, k) for k, v in sorted(answers.items())),
                      stats["reconnects"], stats["floods"]), "attacker.py")
            t.eq(r.stop(), 0, "clean exit")
        finally:
            if attacker:
                attacker.kill()
                attacker.wait()
            r.stop()


if __name__ == "__main__":
    t = Results()
    t.run(test_hostile)
    t.done()
