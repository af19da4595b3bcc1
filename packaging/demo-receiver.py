#!/usr/bin/env python3
"""The demo's external system: an HTTP endpoint on 127.0.0.1 that takes
what odoo-relayd delivers to its "receiver" destination, checks each
request's Standard Webhooks signature with the secret in DIR/receiver.whsec,
prints what it got, and answers 204.

usage: demo-receiver.py [DIR [PORT]]   (defaults: /tmp/odoo-relay-demo 8082)
"""
import base64
import hashlib
import hmac
import http.server
import sys

DIR = sys.argv[1] if len(sys.argv) > 1 else "/tmp/odoo-relay-demo"
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 8082


def key():
    text = open(DIR + "/receiver.whsec").read().strip()
    return base64.b64decode(text[len("whsec_"):])


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self, status):
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_OPTIONS(self):  # the relay's probe
        self.answer(204)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        wid, ts = self.headers.get("webhook-id", ""), self.headers.get("webhook-timestamp", "")
        signed = ("%s.%s." % (wid, ts)).encode() + body
        want = "v1," + base64.b64encode(hmac.new(key(), signed, hashlib.sha256).digest()).decode()
        ok = want in (self.headers.get("webhook-signature") or "").split(" ")
        print("receiver: %s %s, signature %s: %s" % (self.command, wid, "ok" if ok else "BAD",
                                                      body.decode("utf-8", "replace")),
              file=sys.stderr, flush=True)
        self.answer(204 if ok else 401)


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
