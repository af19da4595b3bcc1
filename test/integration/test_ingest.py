"""Durable ingest through the real odoo-relayd: accept, duplicate, every
rejection status, restart, and kill -9 during a burst of concurrent senders."""
import json
import os
import signal
import socket
import subprocess
import threading
import time

from harness import (RELAYD, Relay, Results, TempDir, base_config, shopify_sig, store_ids,
                     wait_for)


def test_accept_and_duplicate(t):
    with TempDir() as tmp:
        r = Relay(tmp, base_config(os.path.join(tmp, "state")))
        try:
            status, hdrs, js = r.post_shop({"id": 42, "email": "a@example.com"}, "wh-1")
            t.eq(status, 202, "first delivery accepted")
            t.eq(js.get("status"), "queued", "status queued")
            first = js.get("id")
            t.check(first and first.isdigit(), "id is a decimal string")
            t.check(hdrs.get("Content-Type", "").startswith("application/json"), "json answer")
            status, _, js = r.post_shop({"id": 42, "email": "a@example.com"}, "wh-1")
            t.eq(status, 200, "same webhook id again")
            t.eq(js, {"status": "duplicate", "id": first}, "duplicate names the first id")
            status, _, js = r.post_shop({"id": 42, "email": "b@example.com"}, "wh-2")
            t.eq(status, 202, "new webhook id accepted")
            t.check(js["id"] != first, "new id")
            ids = store_ids(r.cfg["state_dir"])
            t.eq(len(ids), 2, "stored once per webhook id")
            ev = [e for e in ids if str(e["id"]) == first][0]
            t.eq(ev["source"], "shop", "source kept")
            t.eq(ev["topic"], "customers/create", "topic from header")
            t.eq(ev["lane"], "42", "lane from JSON pointer")
            t.eq(ev["dedup_key"], "wh-1", "dedup key from header")
            t.eq(r.metric("relay_received_total", 'source="shop"'), 2.0, "received counter")
            t.eq(r.metric("relay_duplicates_total", 'source="shop"'), 1.0, "duplicate counter")
            commits, writes = r.metric("relay_store_commits_total"), r.metric("relay_store_writes_total")
            t.check(1 <= commits <= writes and writes >= 3,
                    "store commits (%r) and the writes they carried (%r), the 3 webhooks among them"
                    % (commits, writes))
            # their indexes follow in a commit of the writer's own
            _, _, text = r.request("GET", "/metrics", port=r.admin_port)
            t.check(b"\nrelay_queue_unsettled " in text and b"\nrelay_store_settles_total " in text,
                    "the settle's metrics are shown")
            wait_for(lambda: r.metric("relay_queue_unsettled") == 0.0, what="the events settled")
            t.check(r.metric("relay_store_settles_total") >= 1, "settled by the writer")
            # a source with the dedup key in the body and no signature
            body = json.dumps({"id": "evt_1", "type": "invoice.paid"}).encode()
            status, _, data = r.request("POST", "/hooks/open", body, {"Content-Type": "application/json"})
            t.eq(status, 202, "pointer dedup source accepted")
            status, _, data = r.request("POST", "/hooks/open", body, {"Content-Type": "application/json"})
            t.eq(status, 200, "pointer dedup duplicate")
            status, _, data = r.request("GET", "/healthz")
            t.eq(status, 200, "healthz")
            status, _, data = r.request("GET", "/readyz")
            t.eq(status, 200, "readyz")
        finally:
            t.eq(r.stop(), 0, "clean exit on SIGTERM")


def expect_error(t, r, status, what, method="POST", path="/hooks/shop", body=b"{}", headers=None):
    got, hdrs, data = r.request(method, path, body, headers or {})
    t.eq(got, status, what)
    try:
        js = json.loads(data)
    except ValueError:
        js = None
    t.check(isinstance(js, dict) and "error" in js and "detail" in js,
            "%s: json error body (%r)" % (what, data[:100]))
    return hdrs, js


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def raw(port, data, timeout=5):
    """Send data on a new connection; everything read until the server closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    try:
        s.sendall(data)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except OSError:
        pass
    finally:
        s.close()
    return out


def test_rejections(t):
    with TempDir() as tmp:
        r = Relay(tmp, base_config(os.path.join(tmp, "state")))
        try:
            # warm up (lazily opened descriptors), then count
            r.post_shop({"id": 0}, "warm-up")
            fds_before = open_fds(r.proc.pid)
            body = json.dumps({"id": 1}).encode()
            good = {"Content-Type": "application/json", "X-Shopify-Webhook-Id": "x1",
                    "X-Shopify-Topic": "customers/create", "X-Shopify-Hmac-Sha256": shopify_sig(body)}
            expect_error(t, r, 404, "unknown source", path="/hooks/nosuch", body=body, headers=good)
            expect_error(t, r, 404, "unknown path", path="/other", body=body, headers=good)
            expect_error(t, r, 405, "GET on a hook", method="GET", path="/hooks/shop", body=b"")
            bad = dict(good, **{"X-Shopify-Hmac-Sha256": shopify_sig(body, b"wrong")})
            expect_error(t, r, 401, "wrong secret", body=body, headers=bad)
            nosig = {k: v for k, v in good.items() if k != "X-Shopify-Hmac-Sha256"}
            expect_error(t, r, 401, "missing signature", body=body, headers=nosig)
            expect_error(t, r, 401, "tampered body", body=body + b" ", headers=good)
            text = dict(good, **{"Content-Type": "text/plain"})
            expect_error(t, r, 415, "wrong content type", body=body, headers=text)
            junk = b"{not json"
            expect_error(t, r, 400, "malformed json", body=junk,
                         headers=dict(good, **{"X-Shopify-Hmac-Sha256": shopify_sig(junk)}))
            nodedup = {k: v for k, v in good.items() if k != "X-Shopify-Webhook-Id"}
            expect_error(t, r, 400, "missing dedup key", body=body, headers=nodedup)
            # under the 512-byte limit of a key, but over LMDB's key size once
            # the source name is added: refused, not 503 forever (fuzz_http)
            longid = dict(good, **{"X-Shopify-Webhook-Id": "k" * 505})
            expect_error(t, r, 400, "dedup key too long to store", body=body, headers=longid)
            big = b"{\"id\": 1, \"pad\": \"" + b"a" * 70000 + b"\"}"
            expect_error(t, r, 413, "body over the limit", body=big,
                         headers=dict(good, **{"X-Shopify-Hmac-Sha256": shopify_sig(big)}))
            # 413 is answered from the headers alone: no body is ever sent here
            s = socket.create_connection(("127.0.0.1", r.port), timeout=5)
            s.sendall(b"POST /hooks/shop HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100000000\r\n\r\n")
            t.check(s.recv(4096).startswith(b"HTTP/1.1 413"), "413 before the body")
            s.close()
            # slow client: headers never finish
            s = socket.create_connection(("127.0.0.1", r.port), timeout=5)
            s.sendall(b"POST /hooks/shop HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n")
            data = s.recv(4096)
            t.check(data.startswith(b"HTTP/1.1 408"), "408 for a slow client (%r)" % data[:40])
            t.check(b'"error"' in data, "408 has a json body")
            s.close()
            # RFC 9112: a NUL in a value (here the dedup key "a\0b", which
            # would be cut to "a") and an HTTP/1.1 request without Host are 400
            sig = shopify_sig(body)
            head = (b"POST /hooks/shop HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
                    b"X-Shopify-Topic: customers/create\r\nX-Shopify-Hmac-Sha256: " + sig.encode() +
                    b"\r\nContent-Length: %d\r\n" % len(body))
            got = raw(r.port, head + b"X-Shopify-Webhook-Id: a\0b\r\n\r\n" + body)
            t.check(got.startswith(b"HTTP/1.1 400"), "NUL in the dedup key: 400 (%r)" % got[:40])
            got = raw(r.port, head.replace(b"Host: relay\r\n", b"") +
                      b"X-Shopify-Webhook-Id: no-host\r\n\r\n" + body)
            t.check(got.startswith(b"HTTP/1.1 400"), "no Host: 400 (%r)" % got[:40])
            t.eq(len(store_ids(r.cfg["state_dir"])), 1, "nothing stored for any rejection")
            wait_for(lambda: open_fds(r.proc.pid) <= fds_before, what="no descriptor leaked")
            t.check(r.metric("relay_rejected_total", 'reason="signature"') >= 3, "signature rejections counted")
            # still serving
            status, _, js = r.post_shop({"id": 1}, "after-errors")
            t.eq(status, 202, "accepts after errors")
        finally:
            t.eq(r.stop(), 0, "clean exit")


def test_restart_keeps_events(t):
    with TempDir() as tmp:
        state = os.path.join(tmp, "state")
        r = Relay(tmp, base_config(state))
        ids = set()
        for i in range(50):
            status, _, js = r.post_shop({"id": i % 7, "n": i}, "restart-%d" % i)
            t.eq(status, 202, "accepted %d" % i)
            ids.add(js["id"])
        t.eq(r.stop(), 0, "clean exit")
        r.start()
        try:
            stored = {str(e["id"]) for e in store_ids(state)}
            t.eq(stored, ids, "every event present after restart")
            status, _, js = r.post_shop({"id": 1, "n": 3}, "restart-3")
            t.eq(status, 200, "dedup survives restart")
            status, _, js = r.post_shop({"id": 1}, "restart-new")
            t.eq(status, 202, "accepts after restart")
            t.check(js["id"] not in ids, "ids are not reused")
        finally:
            r.stop()


def test_kill9_during_burst(t):
    with TempDir() as tmp:
        state = os.path.join(tmp, "state")
        r = Relay(tmp, base_config(state))
        acked = set()
        lock = threading.Lock()
        stop = threading.Event()

        def sender(n):
            for i in range(400):
                if stop.is_set():
                    return
                try:
                    status, _, js = r.post_shop({"id": n, "i": i}, "burst-%d-%d" % (n, i))
                except Exception:
                    continue  # the daemon died under us: that send was not acknowledged
                if status == 202:
                    with lock:
                        acked.add(js["id"])

        threads = [threading.Thread(target=sender, args=(n,)) for n in range(8)]
        for th in threads:
            th.start()
        wait_for(lambda: len(acked) >= 200, timeout=60, what="200 acknowledged events")
        r.kill9()
        stop.set()
        for th in threads:
            th.join(30)
        t.check(len(acked) >= 200, "burst acknowledged events before the kill (%d)" % len(acked))
        stored = {str(e["id"]) for e in store_ids(state)}
        missing = acked - stored
        t.eq(sorted(missing), [], "every acknowledged id is in the store after kill -9")
        r.start()
        try:
            status, _, _ = r.post_shop({"id": 1}, "after-kill")
            t.eq(status, 202, "accepts after restart")
        finally:
            r.stop()


def test_check_config(t):
    with TempDir() as tmp:
        good = os.path.join(tmp, "good.json")
        with open(os.path.join(tmp, "shop.secret"), "w") as f:
            f.write("s\n")
        with open(good, "w") as f:
            json.dump(base_config(os.path.join(tmp, "state")), f, indent=2)
        p = subprocess.run([RELAYD, "--check-config", good], capture_output=True, text=True)
        t.eq(p.returncode, 0, "valid configuration: exit 0 (%s)" % p.stderr.strip())
        bad = os.path.join(tmp, "bad.json")
        with open(bad, "w") as f:
            f.write('{\n  "listen": ["127.0.0.1:0"],\n  "lisen": 1\n}\n')
        p = subprocess.run([RELAYD, "--check-config", bad], capture_output=True, text=True)
        t.check(p.returncode != 0, "invalid configuration: non-zero exit")
        t.check(p.stderr.startswith(bad + ":3:3:"), "file:line:column first (%s)" % p.stderr.strip())
        t.check("lisen" in p.stderr, "names the unknown key")
        # the body budget must hold the largest body; unset, it grows to it
        small = os.path.join(tmp, "small-budget.json")
        with open(small, "w") as f:
            json.dump(base_config(os.path.join(tmp, "state"),
                                  limits={"max_body_bytes": 65536, "body_budget_bytes": 1000}), f)
        p = subprocess.run([RELAYD, "--check-config", small], capture_output=True, text=True)
        t.check(p.returncode == 1 and "limits.body_budget_bytes: must be at least max_body_bytes"
                in p.stderr, "a budget below max_body_bytes is refused (%s)" % p.stderr.strip())
        big = os.path.join(tmp, "big-bodies.json")
        with open(big, "w") as f:
            json.dump(base_config(os.path.join(tmp, "state"),
                                  limits={"max_body_bytes": 64 << 20}), f)
        p = subprocess.run([RELAYD, "--check-config", big], capture_output=True, text=True)
        t.eq(p.returncode, 0, "bodies over the default budget: it follows (%s)" % p.stderr.strip())
        p = subprocess.run([RELAYD, "--version"], capture_output=True, text=True)
        t.check(p.returncode == 0 and p.stdout.startswith("odoo-relayd "), "--version")
        p = subprocess.run([RELAYD, "--help"], capture_output=True, text=True)
        t.check(p.returncode == 0 and "--check-config" in p.stdout, "--help")
        p = subprocess.run([RELAYD, "--bogus"], capture_output=True, text=True)
        t.eq(p.returncode, 64, "unknown option: usage exit")


def test_store_full(t):
    from harness import Emulator
    with TempDir() as tmp:
        emu = Emulator(tmp)
        cfg = base_config(os.path.join(tmp, "state"), map_size_mb=1,
                          odoo={"url": emu.url, "database": "test", "login": "admin",
                                "api_key_file": "odoo.key", "protocol": "jsonrpc"},
                          delivery={"probe_base_ms": 100, "probe_cap_ms": 200},
                          routes=[{"name": "c", "source": "shop", "topics": ["*"], "operation": "upsert",
                                   "model": "res.partner", "external_id": "c_{/id}",
                                   "fields": {"name": "C {/id}"}}])
        r = Relay(tmp, cfg)
        try:
            emu.fault(mode="down")  # nothing leaves the store for now
            acked, full = set(), None
            pad = "p" * 8000
            for i in range(400):
                st, hdrs, js = r.post_shop({"id": i, "pad": pad}, "full-%d" % i)
                if st == 202:
                    acked.add(js["id"])
                else:
                    full = (st, hdrs, js)
                    break
            t.check(full is not None, "the 1 MiB map filled up")
            if full:
                st, hdrs, js = full
                t.eq(st, 503, "store full answers 503")
                t.check("Retry-After" in hdrs, "with Retry-After")
                t.eq(js.get("error"), "store full", "json error body")
            status, _, _ = r.request("GET", "/readyz")
            t.eq(status, 503, "not ready while full")
            t.check(r.proc.poll() is None, "the daemon stays up")
            stored = {str(e["id"]) for e in store_ids(r.cfg["state_dir"])}
            t.eq(acked - stored, set(), "nothing accepted was lost")
            emu.fault(mode="none")  # deliveries free the space
            st = wait_for(lambda: r.post_shop({"id": 999}, "after-full")[0] == 202, timeout=30,
                          what="ingest resumes by itself")
            t.check(st, "accepted again once space returned")
            status, _, _ = r.request("GET", "/readyz")
            t.eq(status, 200, "ready again")
        finally:
            r.stop()
            emu.stop()


def test_admin_listener(t):
    """admin_listen is marked in the listen file, keeps its limits (no body)
    across a reload, and during the SIGTERM drain stays open with /readyz
    503 until the process exits, while the webhook listener is closed."""
    from harness import Emulator
    from test_delivery import customer, delivery_config
    with TempDir() as tmp:
        emu = Emulator(tmp)
        cfg = delivery_config(tmp, emu, drain_timeout_ms=20000)
        cfg["admin_listen"] = "127.0.0.1:0"
        r = Relay(tmp, cfg)
        try:
            lines = [l for l in open(r.listen_file).read().split("\n") if l]
            t.eq([l.endswith(" admin") for l in lines], [False, True],
                 "the admin address, listed last, is marked (%r)" % lines)
            r.admin_port = int(lines[-1].split()[0].rsplit(":", 1)[1])
            st, _, _ = r.request("GET", "/metrics", port=r.admin_port)
            t.eq(st, 200, "metrics on the admin listener")
            st, _, _ = r.request("GET", "/metrics")
            t.eq(st, 404, "no metrics on the webhook listener")
            st, _, _ = r.request("POST", "/hooks/shop", b"{}", port=r.admin_port)
            t.eq(st, 404, "no webhooks on the admin listener")
            with_body = b"GET /healthz HTTP/1.1\r\nHost: relay\r\nContent-Length: 5\r\n\r\nhello"
            got = raw(r.admin_port, with_body)
            t.check(got.startswith(b"HTTP/1.1 413"), "admin takes no body (%r)" % got[:40])
            before = r.logs().count("configuration reloaded")
            r.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: r.logs().count("configuration reloaded") > before, what="reload")
            got = raw(r.admin_port, with_body)
            t.check(got.startswith(b"HTTP/1.1 413"), "admin takes no body after a reload (%r)" % got[:40])

            # a call that takes 3 s keeps the drain going
            r.wait_delivering()
            emu.fault(mode="slow", delay_ms=3000)
            st, _, _ = r.post_shop(customer(1), "drain-admin")
            t.eq(st, 202, "accepted")
            wait_for(lambda: r.metric("relay_in_flight") >= 1, what="a call in flight")
            r.proc.send_signal(signal.SIGTERM)
            wait_for(lambda: "stopping" in r.logs(), what="the drain to start")

            def refused():
                try:
                    socket.create_connection(("127.0.0.1", r.port), timeout=2).close()
                    return False
                except ConnectionRefusedError:
                    return True
            wait_for(refused, what="the webhook listener to close")
            answers = []
            while r.proc.poll() is None:
                try:
                    answers.append(r.request("GET", "/readyz", port=r.admin_port, timeout=2)[0])
                except OSError:
                    # The listener closes as the process exits: a refusal
                    # counts only if the process then lives on.
                    try:
                        r.proc.wait(5)
                    except subprocess.TimeoutExpired:
                        answers.append("refused")
                time.sleep(0.05)
            t.check(len(answers) >= 5, "readyz asked during the drain (%d times)" % len(answers))
            t.eq(sorted(set(answers)), [503], "readyz on the admin listener: 503 until the exit")
            t.eq(r.proc.returncode, 0, "clean exit after the drain")
        finally:
            r.stop()
            emu.stop()


if __name__ == "__main__":
    t = Results()
    t.run(test_check_config)
    t.run(test_accept_and_duplicate)
    t.run(test_rejections)
    t.run(test_admin_listener)
    t.run(test_restart_keeps_events)
    t.run(test_kill9_during_burst)
    t.run(test_store_full)
    t.done()
