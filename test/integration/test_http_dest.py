"""HTTP destinations: events delivered to an external endpoint (a small
receiver in this test, on 127.0.0.1 port 0) signed the Standard Webhooks way,
each exactly once and in order per lane, across an outage of the receiver;
429 with Retry-After and slow answers retried; 410 pauses the destination until
an operator resumes it; other 4xx dead-letter with the status and the body's start; the
address guard refuses loopback unless "allow_private" is set."""
import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import signal
import socket
import socketserver
import threading
import time

from harness import Emulator, Relay, Results, TempDir, base_config, store_ids, wait_for

KEY_B64 = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
KEY2_B64 = "c2Vjb25kLWtleS1ieXRlcw=="
ODOO_TOKEN = "odoo-hook-Tk7s9Qw2xLm4"
SECRETS = {"shop.secret": b"test-shop-secret", "odoo.key": b"test-api-key",
           "wh.key": ("whsec_" + KEY_B64).encode(), "wh2.key": ("whsec_" + KEY2_B64).encode(),
           "odoo.token": ODOO_TOKEN.encode()}


class Receiver:
    """The external system: records every request, checks its signature with
    each known key, and answers as told (self.plan: a list of answers to
    give first, then self.mode)."""

    def __init__(self, keys=(KEY_B64,)):
        self.keys = [base64.b64decode(k) for k in keys]
        self.got = []          # (headers, body, verified) of each POST, in arrival order
        self.status = []       # the status answered to each of them, same order
        self.options = 0
        self.mode = "ok"       # "ok", "gone", "fail"
        self.plan = []         # answers to give first: (status, headers, body, delay_s)
        self.lock = threading.Lock()
        self.port = 0
        self.server = None
        self.conns = []        # accepted connections, closed when it goes down
        self.up()

    def verify(self, headers, body):
        msg_id, ts = headers.get("webhook-id"), headers.get("webhook-timestamp")
        sig = headers.get("webhook-signature") or ""
        if not msg_id or not ts:
            return False
        signed = ("%s.%s." % (msg_id, ts)).encode() + body
        want = {"v1," + base64.b64encode(hmac.new(k, signed, hashlib.sha256).digest()).decode()
                for k in self.keys}
        return bool(want & set(sig.split(" ")))

    def up(self):
        rcv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def answer(self, status, headers=None, body=b""):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    for one in (v if isinstance(v, list) else [v]):  # a list: repeated
                        self.send_header(k, one)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_OPTIONS(self):
                with rcv.lock:
                    rcv.options += 1
                self.answer(204, {"Allow": "POST"})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hdrs = {k.lower(): v for k, v in self.headers.items()}
                with rcv.lock:
                    rcv.got.append((hdrs, body, rcv.verify(hdrs, body)))
                    step = rcv.plan.pop(0) if rcv.plan else None
                    mode = rcv.mode
                    rcv.status.append(step[0] if step else
                                      {"gone": 410, "fail": 503}.get(mode, 200))
                if step:
                    status, headers, text, delay = step
                    if delay:
                        time.sleep(delay)
                    self.answer(status, headers, text)
                elif mode == "gone":
                    self.answer(410, {}, b"gone")
                elif mode == "fail":
                    self.answer(503, {}, b"down for maintenance")
                else:
                    self.answer(200, {"Content-Type": "application/json"}, b'{"ok": true}')

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def process_request(self, request, client_address):
                with rcv.lock:
                    rcv.conns.append(request)
                super().process_request(request, client_address)

            def handle_error(self, request, client_address):
                pass  # the relay gave up on a slow answer: a broken pipe

        self.server = Server(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def down(self):
        """Stop listening and drop every open connection (keep-alive ones too)."""
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass

    def posts(self):
        with self.lock:
            return list(self.got)

    @property
    def url(self):
        return "http://127.0.0.1:%d/hooks/in" % self.port


def dest(rcv, **over):
    d = {"kind": "http", "url": rcv.url, "secret_file": "wh.key", "allow_private": True,
         "probe_base_ms": 100, "probe_cap_ms": 300, "timeout_ms": 2000,
         "backoff": {"base_ms": 50, "cap_ms": 300, "max_attempts": 20, "max_age_s": 3600}}
    d.update(over)
    return {k: v for k, v in d.items() if v is not None}


def config(tmp, rcv, routes=None, odoo=None, **over):
    sources = base_config("x")["sources"]
    # Odoo's own post, as its "Send Webhook Notification" sends it
    sources["odoo"] = {"kind": "odoo",
                       "verify": {"scheme": "url_token", "secret_file": "odoo.token"}}
    cfg = base_config(
        os.path.join(tmp, "state"), sources=sources,
        destinations=dict({"wh": dest(rcv, **over)}, **({"odoo": odoo} if odoo else {})),
        delivery={"probe_base_ms": 100, "probe_cap_ms": 300, "drain_timeout_ms": 2000},
        routes=routes or [
            {"name": "orders-out", "source": "shop", "destination": "wh",
             "fields": {"order": "shop-{/id}", "seq": {"pointer": "/seq"},
                        "email": {"pointer": "/email", "optional": True}}},
            {"name": "odoo-out", "source": "odoo", "destination": "wh", "operation": "post",
             "body": "as_received"},
        ])
    return cfg


def start(tmp, rcv, **kw):
    r = Relay(tmp, config(tmp, rcv, **kw), secrets=SECRETS)
    r.wait_delivering()
    return r


def order(i, seq):
    return {"id": i, "seq": seq, "email": "c%d@example.com" % i}


def queue_empty(r):
    return not store_ids(r.cfg["state_dir"])


def test_signed_ordered_across_outage(t):
    with TempDir() as tmp:
        rcv = Receiver()
        r = start(tmp, rcv)
        try:
            n = 0
            for seq in range(3):
                for i in (1, 2):
                    n += 1
                    st, _, _ = r.post_shop(order(i, seq), "w-%d-%d" % (i, seq))
                    t.eq(st, 202, "accepted")
            wait_for(lambda: len(rcv.posts()) >= n, what="first deliveries")
            # the receiver goes down; events keep coming, then it comes back
            rcv.down()
            for seq in range(3, 6):
                for i in (1, 2):
                    n += 1
                    r.post_shop(order(i, seq), "w-%d-%d" % (i, seq))
            odoo_body = json.dumps({"_action": "Send Webhook Notification(#41)", "_id": 7,
                                    "_model": "sale.order", "name": "S00007",
                                    "state": "sale"}).encode()
            st, _, _ = r.request("POST", "/hooks/odoo/" + ODOO_TOKEN, odoo_body,
                                 {"Content-Type": "application/json"})
            t.eq(st, 202, "odoo's post accepted")
            n += 1
            # Odoo's RPC layer may send the same post again: one event
            st, _, _ = r.request("POST", "/hooks/odoo?token=" + ODOO_TOKEN, odoo_body,
                                 {"Content-Type": "application/json"})
            t.check(st in (200, 202), "the replay is answered (%d)" % st)
            time.sleep(1.0)
            t.eq(len(rcv.posts()), 6, "nothing arrives while the receiver is down")
            rcv.up()
            wait_for(lambda: queue_empty(r), timeout=30, what="the backlog after the outage")
            got = rcv.posts()
            t.eq(len(got), n, "each event exactly once")
            t.check(all(v for _, _, v in got), "every request signed")
            ids = [h["webhook-id"] for h, _, _ in got]
            t.eq(len(set(ids)), n, "no redelivery")
            for lane in (1, 2):
                seqs = [json.loads(b)["seq"] for h, b, _ in got
                        if b.startswith(b"{\"order\"") and json.loads(b)["order"] == "shop-%d" % lane]
                t.eq(seqs, list(range(6)), "lane %d in order" % lane)
            # lanes go out side by side: order holds within a lane, not across
            first = [(h, json.loads(b)) for h, b, _ in got
                     if b.startswith(b"{\"order\"") and json.loads(b)["order"] == "shop-1"][0]
            t.eq(first[1], {"order": "shop-1", "seq": 0, "email": "c1@example.com"},
                 "the route's mapping, with JSON types")
            t.eq(first[0].get("content-type"), "application/json", "sent as JSON")
            raw = [b for h, b, _ in got if b == odoo_body]
            t.eq(len(raw), 1, "odoo's post passed on as it came")
            t.eq(rcv.options >= 1, True, "the probe is an OPTIONS request")
            t.check("whsec_" not in r.logs() and KEY_B64 not in r.logs(), "no secret in the logs")
        finally:
            t.eq(r.stop(), 0, "clean exit")
            rcv.down()


def test_retries(t):
    """429 with Retry-After, a slow answer (timeout) and 503 are retried; the
    webhook-id stays the same on every attempt; two secrets sign at once."""
    with TempDir() as tmp:
        rcv = Receiver(keys=(KEY2_B64,))  # knows only the new key
        rcv.plan = [(429, {"Retry-After": "1"}, b"slow down", 0),
                    (200, {}, b"", 3.0),      # over timeout_ms: a timeout
                    (503, {}, b"", 0)]
        r = start(tmp, rcv, secret_files=["wh.key", "wh2.key"], secret_file=None)
        try:
            t0 = time.monotonic()
            r.post_shop(order(5, 0), "r-1")
            wait_for(lambda: queue_empty(r), timeout=30, what="delivered after retries")
            got = rcv.posts()
            t.eq(len(got), 4, "four attempts")
            t.eq(len({h["webhook-id"] for h, _, _ in got}), 1, "one webhook-id on every attempt")
            t.check(all(v for _, _, v in got), "verifies under the second key")
            t.eq(len(got[0][0]["webhook-signature"].split(" ")), 2, "one v1 per secret")
            t.check(time.monotonic() - t0 >= 1.0, "Retry-After honoured")
        finally:
            t.eq(r.stop(), 0, "clean exit")
            rcv.down()


def test_masked_headers_longer_than_sent(t):
    """Masking makes an empty Set-Cookie longer ("Set-Cookie: ***"): an
    answer full of them must fit what the dead letter keeps (it overran
    the buffer before; ASan saw it)."""
    with TempDir() as tmp:
        rcv = Receiver()
        rcv.plan = [(422, {"Set-Cookie": [""] * 70}, b"", 0)]
        r = start(tmp, rcv)
        try:
            r.post_shop(order(10, 0), "m-1")
            wait_for(lambda: store_ids(r.cfg["state_dir"], "dead"), what="a dead letter")
            detail = store_ids(r.cfg["state_dir"], "dead")[0]["history"][-1]["detail"] or ""
            t.check(detail.startswith("HTTP 422\n") and detail.count("Set-Cookie: ***") >= 60,
                    "the cookies kept, masked: %r" % detail[:120])
        finally:
            t.eq(r.stop(), 0, "clean exit")
            rcv.down()


def test_4xx_dead_letters(t):
    with TempDir() as tmp:
        rcv = Receiver()
        rcv.plan = [(422, {"Content-Type": "application/json", "X-Request-Id": "rq-77",
                           "Set-Cookie": "session=receiver-session-secret"},
                     b'{"error": "unknown customer 9"}', 0)]
        r = start(tmp, rcv, headers={"X-Api-Key": "receiver-api-key"})
        try:
            r.post_shop(order(9, 0), "d-1")
            wait_for(lambda: store_ids(r.cfg["state_dir"], "dead"), what="a dead letter")
            d = store_ids(r.cfg["state_dir"], "dead")[0]
            t.eq(len(rcv.posts()), 1, "one attempt")
            t.eq(rcv.posts()[0][0].get("x-api-key"), "receiver-api-key", "extra header sent")
            t.eq(d["history"][-1]["http_status"], 422, "the status kept")
            detail = d["history"][-1]["detail"] or ""
            t.check("unknown customer 9" in detail, "the start of the body kept: %r" % detail)
            t.check(detail.startswith("HTTP 422\n") and "X-Request-Id: rq-77" in detail
                    and "Content-Type: application/json" in detail,
                    "the response's status and headers kept: %r" % detail)
            t.check("receiver-session-secret" not in detail and "Set-Cookie: ***" in detail,
                    "a cookie masked")
            req = d["request"] or ""
            t.check(req.startswith("POST " + rcv.url) and '"order":"shop-9"' in req,
                    "the request sent is kept: %r" % req[:200])
            t.check("receiver-api-key" not in req and "v1,***" in req, "with its secrets masked")
            # per destination: list, and replay once the endpoint takes it
            def dead_of(*filters):
                p = r.ctl("--json", "dead", "list", *filters)
                return [json.loads(l)["id"] for l in p.stdout.splitlines() if l.strip()]
            t.eq(len(dead_of("--destination", "wh")), 1, "dead list --destination wh")
            t.eq(dead_of("--destination", "elsewhere"), [], "another destination: none")
            p = r.ctl("dead", "replay", "--destination", "wh")
            t.eq(p.returncode, 0, "dead replay --destination wh: %s" % p.stderr)
            wait_for(lambda: len(rcv.posts()) == 2 and queue_empty(r), what="the replay delivered")
            t.eq(json.loads(rcv.posts()[1][1])["order"], "shop-9", "the replayed event")
            # the destination goes on
            r.post_shop(order(10, 0), "d-2")
            wait_for(lambda: queue_empty(r) and len(rcv.posts()) == 3,
                     what="the next event delivered")
        finally:
            t.eq(r.stop(), 0, "clean exit")
            rcv.down()


def test_410_stops_destination(t):
    """410 Gone pauses the destination durably, with its reason: neither a
    reload nor a restart resumes it; odoo-relayctl resume --destination does."""
    with TempDir() as tmp:
        rcv = Receiver()
        r = start(tmp, rcv)
        try:
            rcv.mode = "gone"
            r.post_shop(order(3, 0), "g-1")
            r.post_shop(order(3, 1), "g-2")
            wait_for(lambda: r.metric("relay_destination_paused", 'destination="wh"') == 1.0,
                     what="the destination pauses")
            t.check(any("410" in l and l.startswith("<3>") and "resume --destination wh" in l
                        for l in r.logs().splitlines()), "said at error level, with the way out")
            st = r.ctl("status")
            t.eq(st.returncode, 1, "status says degraded")
            t.check("destination wh paused: the endpoint answered 410 Gone" in st.stdout,
                    "status says why: %r" % st.stdout[-400:])
            js = json.loads(r.ctl("--json", "status").stdout)
            t.eq(js["paused_destinations"], ["wh"], "in the JSON status too")
            # a reload does not resume it
            r.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "reload" in r.logs().lower(), what="the reload")
            time.sleep(1.0)
            t.eq(len(rcv.posts()), 1, "nothing more is sent after 410, reload or not")
            t.eq(store_ids(r.cfg["state_dir"], "dead"), [], "nothing dead-lettered")
            t.eq([e["attempts"] for e in store_ids(r.cfg["state_dir"])], [0, 0], "nothing charged")
            # nor does a restart, even with the endpoint back
            rcv.mode = "ok"
            t.eq(r.stop(), 0, "clean exit")
            probes = rcv.options
            r.start()
            wait_for(lambda: rcv.options > probes, what="the restarted relay probes")
            wait_for(lambda: r.metric("relay_destination_paused", 'destination="wh"') == 1.0,
                     what="still paused after the restart")
            time.sleep(1.0)
            t.eq(len(rcv.posts()), 1, "still stopped after a restart")
            # an operator resumes it
            res = r.ctl("resume", "--destination", "wh")
            t.eq(res.returncode, 0, "resume: %s" % res.stderr)
            wait_for(lambda: queue_empty(r), timeout=20, what="delivered after the resume")
            seqs = [json.loads(b)["seq"] for _, b, _ in rcv.posts()[1:]]
            t.eq(seqs, [0, 1], "in order, after the resume")
            # (not any "410": the status's sizes and times may hold those digits)
            st = r.ctl("status").stdout
            t.check("destination wh paused" not in st and "410 Gone" not in st,
                    "the reason is gone with the pause: %r" % st[-600:])
        finally:
            t.eq(r.stop(), 0, "clean exit")
            rcv.down()


def test_address_guard(t):
    with TempDir() as tmp:
        rcv = Receiver()
        r = Relay(tmp, config(tmp, rcv, allow_private=False), secrets=SECRETS)
        try:
            r.post_shop(order(4, 0), "a-1")
            wait_for(lambda: "allow_private" in r.logs(), what="the refusal is logged")
            time.sleep(0.5)
            t.eq(rcv.posts(), [], "nothing reaches a loopback address")
            t.eq(rcv.options, 0, "not even the probe")
            t.eq(len(store_ids(r.cfg["state_dir"])), 1, "the event waits")
        finally:
            t.eq(r.stop(), 0, "clean exit")
            rcv.down()


def test_odoo_source(t):
    """Odoo's webhook: the token in the URL, compared in constant time and
    never logged; lane and topic from _model and _id; a replay counts once."""
    with TempDir() as tmp:
        rcv = Receiver()
        r = start(tmp, rcv)
        try:
            body = json.dumps({"_action": "Order confirmed(#12)", "_id": 31, "_model": "sale.order",
                               "name": "S00031", "amount_total": 120.5}).encode()
            ct = {"Content-Type": "application/json"}
            st, _, _ = r.request("POST", "/hooks/odoo/" + ODOO_TOKEN, body, ct)
            t.eq(st, 202, "accepted")
            st, _, _ = r.request("POST", "/hooks/odoo/" + ODOO_TOKEN + "x", body, ct)
            t.eq(st, 401, "a wrong token is refused")
            st, _, _ = r.request("POST", "/hooks/odoo", body, ct)
            t.eq(st, 401, "no token is refused")
            st, _, _ = r.request("POST", "/hooks/odoo/" + ODOO_TOKEN + "/more", body, ct)
            t.eq(st, 404, "nothing after the token")
            st, _, _ = r.request("POST", "/hooks/shop/" + ODOO_TOKEN, body, ct)
            t.eq(st, 404, "a source without url_token takes no token")
            st, _, _ = r.request("POST", "/hooks/odoo/" + ODOO_TOKEN, body, ct)
            t.check(st in (200, 202), "a replay is answered (%d)" % st)
            body2 = body.replace(b"120.5", b"130.0")
            r.request("POST", "/hooks/odoo/" + ODOO_TOKEN, body2, ct)
            wait_for(lambda: len(rcv.posts()) == 2 and queue_empty(r), what="two deliveries")
            time.sleep(0.3)
            got = rcv.posts()
            t.eq([b for _, b, _ in got], [body, body2], "each change once, in order, as sent")
            t.check(all(v for _, _, v in got), "signed")
            ev = store_ids(r.cfg["state_dir"], "events")
            t.eq(ev, [], "nothing left")
            t.check(ODOO_TOKEN not in r.logs(), "the token is never logged")
        finally:
            t.eq(r.stop(), 0, "clean exit")
            rcv.down()


def odoo_dest(emu):
    return {"url": emu.url, "database": "test", "login": "admin", "api_key_file": "odoo.key",
            "probe_base_ms": 100, "probe_cap_ms": 300}


def rpc(emu, model, method, *args, **kw):
    """One execute_kw on the emulator, as Odoo's own users would change data."""
    body = json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
        "service": "object", "method": "execute_kw",
        "args": ["test", 2, "test-api-key", model, method, list(args), kw]}}).encode()
    c = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    try:
        c.request("POST", "/jsonrpc", body, {"Content-Type": "application/json"})
        ans = json.loads(c.getresponse().read())
    finally:
        c.close()
    if "error" in ans:
        raise AssertionError("%s.%s: %s" % (model, method, ans["error"]))
    return ans.get("result")


def odoo_post(r, model, rid, **fields):
    """What Odoo's "Send Webhook Notification" posts (capture 473): sorted keys,
    its own _action, _id, _model and id, then the fields the rule selects."""
    body = dict(fields, _action="Send Webhook Notification(#180)", _id=rid, _model=model, id=rid)
    data = json.dumps(body, sort_keys=True).encode()
    st, _, _ = r.request("POST", "/hooks/odoo/" + ODOO_TOKEN, data,
                         {"Content-Type": "application/json"})
    return st


CONFIRM_ROUTES = [{"name": "odoo-out", "source": "odoo", "destination": "wh",
                   "body": "as_received", "confirm": True}]


def test_confirm(t):
    """confirm: true reads the record from Odoo just before delivery: a
    changed record goes out with its current values, one that does not
    exist (a rolled-back create) ends as phantom and is never sent, and an
    Odoo that is down makes a retry, not a phantom."""
    with TempDir() as tmp:
        rcv = Receiver()
        emu = Emulator(tmp)
        r = start(tmp, rcv, routes=CONFIRM_ROUTES, odoo=odoo_dest(emu))
        try:
            pid = rpc(emu, "res.partner", "create", {"name": "Ada", "email": "ada@old.example"})
            rpc(emu, "res.partner", "write", [pid], {"email": "ada@new.example"})
            # the post Odoo made for the create arrives with the create's values
            t.eq(odoo_post(r, "res.partner", pid, name="Ada", email="ada@old.example"), 202,
                 "accepted")
            wait_for(lambda: len(rcv.posts()) == 1 and queue_empty(r), what="the confirmed post")
            h, b, ok = rcv.posts()[0]
            got = json.loads(b)
            t.eq(got["email"], "ada@new.example", "the value Odoo holds now is sent")
            t.eq((got["_id"], got["_model"], got["name"]), (pid, "res.partner", "Ada"),
                 "the rest of the post kept")
            t.check(ok, "signed")

            # a create that rolled back after Odoo posted it (captures 481-484)
            t.eq(odoo_post(r, "res.partner", pid + 1000, name="Ghost", email="g@example.com"),
                 202, "the phantom's post accepted")
            wait_for(lambda: r.metric("relay_phantom_total") == 1.0 and queue_empty(r),
                     what="the phantom counted and ended")
            t.eq(len(rcv.posts()), 1, "a phantom is never delivered")
            t.eq(store_ids(r.cfg["state_dir"], "dead"), [], "nor dead-lettered")
            t.check(any("phantom" in l and str(pid + 1000) in l for l in r.logs().splitlines()),
                    "the phantom logged with its record")
            t.eq(r.metric("relay_phantom_total", 'route="odoo-out",destination="wh"'), 1.0,
                 "counted by route")
            # and kept in the history with its outcome, for trace and events show
            hist = [json.loads(l) for l in
                    r.ctl("--json", "events", "list", "--delivered").stdout.splitlines() if l.strip()]
            ghost = [h for h in hist if h["outcome"]["outcome"] == "phantom"]
            t.eq(len(ghost), 1, "the phantom is in the history as a phantom: %r" % hist)
            t.check(ghost and "phantom" in (ghost[0]["outcome"]["note"] or ""),
                    "with why it was not sent")

            # Odoo down during the confirm read: retried, not a phantom
            emu.fault(mode="down")
            t.eq(odoo_post(r, "res.partner", pid, name="Ada", email="ada@down.example"), 202,
                 "accepted while Odoo is down")
            wait_for(lambda: any(e["attempts"] >= 2 for e in store_ids(r.cfg["state_dir"])),
                     timeout=20, what="retries while Odoo is down")
            t.eq(len(rcv.posts()), 1, "nothing sent while Odoo cannot confirm")
            errs = [e.get("last_error") or "" for e in store_ids(r.cfg["state_dir"])]
            t.check(any("transport.connect" in x or "confirm.circuit_open" in x for x in errs),
                    "a transient failure of the read, or of Odoo's open circuit: %r" % errs)
            t.eq(r.metric("relay_phantom_total"), 1.0, "no phantom for an Odoo that is down")
            emu.fault(mode="none")
            rpc(emu, "res.partner", "write", [pid], {"email": "ada@back.example"})
            wait_for(lambda: len(rcv.posts()) == 2 and queue_empty(r), timeout=30,
                     what="delivered once Odoo is back")
            t.eq(json.loads(rcv.posts()[1][1])["email"], "ada@back.example",
                 "with the values of the moment it was sent")
        finally:
            t.eq(r.stop(), 0, "clean exit")
            rcv.down()
            emu.stop()


if __name__ == "__main__":
    t = Results()
    t.run(test_signed_ordered_across_outage)
    t.run(test_retries)
    t.run(test_masked_headers_longer_than_sent)
    t.run(test_4xx_dead_letters)
    t.run(test_410_stops_destination)
    t.run(test_address_guard)
    t.run(test_odoo_source)
    t.run(test_confirm)
    t.done()
