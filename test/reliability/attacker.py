"""Hostile clients for test_hostile.py, in a process of their own so that
their work does not share the measuring client's interpreter.

  attacker.py HOST PORT READY_FILE STATS_FILE [--slow N] [--idle N] [--flood-workers N]

Keeps, until SIGTERM:
  - N slowloris connections (--slow, default 500): most trickle their
    headers a byte at a time, the rest send complete headers with a
    Content-Length and trickle the body; each one closed by the server
    (408, or closed to make room when its table is full) is opened again
    at once;
  - N idle connections (--idle, default 2000) that never send anything,
    reopened at once when the server closes them;
  - flood workers (--flood-workers, default 4) looping over: a huge
    Content-Length, a real 2 MiB body, 1000 headers, one 64 KiB header.
READY_FILE is written once every slow and idle connection is open; at exit
STATS_FILE gets JSON counts (answers by status, the first answer of each
status, reconnects, peak connections).
"""
import json
import os
import resource
import selectors
import signal
import socket
import sys
import threading
import time

HOST, PORT = sys.argv[1], int(sys.argv[2])
READY, STATS = sys.argv[3], sys.argv[4]
opts = dict(zip(sys.argv[5::2], sys.argv[6::2]))
N_SLOW = int(opts.get("--slow", 500))
N_IDLE = int(opts.get("--idle", 2000))
N_FLOOD = int(opts.get("--flood-workers", 4))

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = N_SLOW + N_IDLE + 64 * N_FLOOD + 256
if soft < want:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
lock = threading.Lock()
stats = {"answers": {}, "samples": {}, "reconnects": 0, "connect_errors": 0, "peak_open": 0,
         "floods": 0, "closed_unanswered": 0}


def count(data):
    """Count an answer by status; keep the first of each (for test_secrets.py)."""
    status = int(data[9:12])
    with lock:
        stats["answers"][status] = stats["answers"].get(status, 0) + 1
        stats["samples"].setdefault(status, data[:2000].decode("latin-1"))


HEAD_SLOW = b"POST /hooks/shop HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Slow: "
HEAD_BODY = (b"POST /hooks/shop HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             b"X-Shopify-Webhook-Id: slow\r\nContent-Length: 60000\r\n\r\n")


class Conn:
    def __init__(self, kind, i):
        self.kind, self.i = kind, i
        self.sock = None
        self.sent = 0


def open_conn(sel, c):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect((HOST, PORT))
    except BlockingIOError:
        pass
    except OSError:
        s.close()
        with lock:
            stats["connect_errors"] += 1
        return False
    c.sock, c.sent = s, 0
    sel.register(s, selectors.EVENT_READ, c)
    return True


def close_conn(sel, c):
    try:
        sel.unregister(c.sock)
    except (KeyError, ValueError):
        pass
    c.sock.close()
    c.sock = None


def slow_loop():
    sel = selectors.DefaultSelector()
    conns = [Conn("body" if i % 4 == 3 else "head", i) for i in range(N_SLOW)] + \
            [Conn("idle", i) for i in range(N_IDLE)]
    for c in conns:
        while not open_conn(sel, c) and not stop.is_set():
            time.sleep(0.01)
    with open(READY + ".tmp", "w") as f:
        f.write("%d\n" % len(conns))
    os.rename(READY + ".tmp", READY)
    next_tick = time.monotonic()
    while not stop.is_set():
        for key, _ in sel.select(timeout=0.05):
            c = key.data
            try:
                data = c.sock.recv(65536)
            except OSError:
                data = b""
            if data.startswith(b"HTTP/1.1 "):
                count(data)
            elif not data:
                with lock:
                    stats["closed_unanswered"] += 1
            if not data or data.startswith(b"HTTP/"):
                # the server answered (408) or closed: open another one
                close_conn(sel, c)
                with lock:
                    stats["reconnects"] += 1
                open_conn(sel, c)
        now = time.monotonic()
        if now < next_tick:
            continue
        # once a second, one more byte on every trickling connection
        next_tick = now + 1.0
        live = 0
        for c in conns:
            if not c.sock:
                open_conn(sel, c)
                continue
            live += 1
            if c.kind == "idle":
                continue
            if c.kind == "head":
                chunk = HEAD_SLOW if c.sent == 0 else b"a"
            else:
                chunk = HEAD_BODY if c.sent == 0 else b" "
            try:
                c.sock.send(chunk)
                c.sent += 1
            except OSError:
                pass
        with lock:
            stats["peak_open"] = max(stats["peak_open"], live)
    for c in conns:
        if c.sock:
            close_conn(sel, c)


def answer(s):
    try:
        data = s.recv(4096)
    except OSError:
        return None
    return data if data.startswith(b"HTTP/1.1 ") else None


def flood_loop(k):
    big = b"{" + b" " * (2 << 20) + b"}"
    requests = [
        b"POST /hooks/shop HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000000000000\r\n\r\n",
        b"POST /hooks/shop HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(big) + big,
        b"POST /hooks/shop HTTP/1.1\r\nHost: x\r\n" +
        b"".join(b"X-H%d: v\r\n" % i for i in range(1000)) + b"\r\n",
        b"POST /hooks/shop HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 65536 + b"\r\n\r\n",
    ]
    i = k
    while not stop.is_set():
        req = requests[i % len(requests)]
        i += 1
        try:
            s = socket.create_connection((HOST, PORT), timeout=5)
        except OSError:
            with lock:
                stats["connect_errors"] += 1
            time.sleep(0.05)
            continue
        try:
            s.sendall(req)
        except OSError:
            pass  # the server answered early and closed: read the answer
        data = answer(s)
        if data:
            count(data)
        with lock:
            stats["floods"] += 1
        s.close()


threads = [threading.Thread(target=slow_loop)] + \
          [threading.Thread(target=flood_loop, args=(k,)) for k in range(N_FLOOD)]
for th in threads:
    th.start()
for th in threads:
    th.join()
with open(STATS, "w") as f:
    json.dump(stats, f)
