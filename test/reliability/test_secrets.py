"""Secrets never leave (issue 6): greps everything odoo-relayd and its tools
emitted for the secret values they were given: the webhook secret and the
Odoo API key, raw and in the encodings a careless log line would use
(base64, hex, HTTP Basic), and the HMAC a wrong signature should have had
(an answer that tells a forger the right signature is a leak too).

What is searched: the daemon logs, error bodies, /metrics and store-dump
and odoo-relayctl output that the other reliability tests kept in
RELAY_EMIT_DIR, plus this test's own run, which goes where a leak is most
likely: --debug logging, wrong signatures, Odoo refusing the key over
JSON-RPC and JSON-2, a dead letter with the Odoo call it made (store,
store-dump, `odoo-relayctl dead show`), a reload, --check-config on bad
files. The data files of the stores are searched for the API key too.
"""
import base64
import hashlib
import hmac
import json
import os
import signal
import stat

from rel import (EMIT_DIR, EVENT_ROUTE, ODOO_API_KEY, SECRETS, WEBHOOK_SECRET, Emit, RelRelay,
                 Results, TempDir, base_config, delivery_conf, dump, emulator, event, have_relayctl,
                 odoo_conf, run_tool, wait_for)
import harness  # after rel, which puts test/integration on the path

HERE = os.path.dirname(os.path.abspath(__file__))
# A key pasted into the configuration file itself, by mistake: letters only,
# the kind of token a JSON parser quotes back whole.
PASTED = "PastedOdooKeyAbcdefXyz"


def needles(extra=()):
    out = {}
    for s in SECRETS:
        name = s.decode()
        out[name + " (raw)"] = s
        out[name + " (base64)"] = base64.b64encode(s)
        out[name + " (hex)"] = s.hex().encode()
        out[name + " (basic auth)"] = base64.b64encode(b"admin:" + s)
    out["a key pasted into the configuration"] = PASTED.encode()
    for label, value in extra:
        out[label] = value
    return out


def debug_wrapper(tmp):
    """odoo-relayd with --debug, through the harness's RELAYD setting."""
    path = os.path.join(tmp, "relayd-debug")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec %s \"$@\" --debug\n" % harness.RELAYD)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


def own_run(t, emit, tmp):
    """Put the daemon and its tools where secrets could slip out. Returns the
    HMACs that wrong signatures should have had, and the store directories."""
    leaks = []
    states = []
    real = harness.RELAYD
    harness.RELAYD = debug_wrapper(tmp)
    try:
        for version, protocol in ((18, "jsonrpc"), (19, "json2")):
            sub = os.path.join(tmp, "v%d" % version)
            os.makedirs(sub)
            emu = emulator(sub, version=version)
            state = os.path.join(sub, "state")
            states.append(state)
            cfg = base_config(state, routes=[EVENT_ROUTE], delivery=delivery_conf(),
                              odoo=dict(odoo_conf(emu), protocol=protocol))
            r = RelRelay(sub, cfg, emit=emit)
            try:
                r.wait_delivering()
                # delivered, with the key on the wire
                st, _, _ = r.post_shop(event(1), "s-1")
                t.eq(st, 202, "v%d: accepted" % version)
                wait_for(lambda: r.metric("relay_queue_depth") == 0.0, what="delivered")
                # wrong signatures: the answer must not tell the right one
                for k, body in enumerate((b'{"n": 2, "id": 2}', b'{"n": 3}')):
                    right = harness.shopify_sig(body, WEBHOOK_SECRET)
                    leaks.append(("right HMAC of refused body %s" % body, right.encode()))
                    leaks.append(("right HMAC of refused body %s (hex)" % body,
                                  hmac.new(WEBHOOK_SECRET, body, hashlib.sha256).hexdigest().encode()))
                    st, _, _ = r.post_shop(None, "bad-%d" % k, body=body, secret=b"not-the-secret")
                    t.eq(st, 401, "v%d: wrong signature refused" % version)
                    st, _, _ = r.post_shop(None, "none-%d" % k, body=body,
                                           headers={"X-Shopify-Hmac-Sha256": ""})
                    t.eq(st, 401, "v%d: empty signature refused" % version)
                # a dead letter: its stored Odoo call is shown by the tools
                emu.fault(mode="validation", field="email", value="dead@example.com",
                          message="refused for the secrets test")
                st, _, js = r.post_shop(event(4, email="dead@example.com"), "s-4")
                wait_for(lambda: dump(state, "dead"), what="a dead letter")
                dead = dump(state, "dead", emit)
                t.check(dead and dead[0].get("request"), "v%d: the dead letter keeps its request" % version)
                if have_relayctl():
                    for args in (("status",), ("dead", "list"), ("dead", "show", js["id"]),
                                 ("--json", "dead", "show", js["id"]), ("events", "list"), ("shape",)):
                        p = r.ctl(*args)
                        t.check(p.returncode in (0, 1), "v%d: odoo-relayctl %s" % (version, " ".join(args)))
                # Odoo refuses the key: AccessDenied (JSON-RPC) or 401 (JSON-2)
                emu.fault(mode="access_denied")
                r.post_shop(event(5), "s-5")
                wait_for(lambda: r.metric("relay_circuit_open") == 1.0, what="circuit open on a bad key")
                emu.fault(mode="none")
                wait_for(lambda: r.metric("relay_circuit_open") == 0.0, timeout=20, what="circuit closed")
                # a reload, with and without a valid file
                r.proc.send_signal(signal.SIGHUP)
                wait_for(lambda: "configuration reloaded" in r.logs(), what="reload")
                with open(r.config_path, "w") as f:
                    f.write('{"listen": ["127.0.0.1:0"], "sources": {"shop": {"verify": '
                            '{"scheme": "shopify", "secret_file": "shop.secret"}, "bogus": 1}}}')
                r.proc.send_signal(signal.SIGHUP)
                wait_for(lambda: "reload refused" in r.logs(), what="reload refused")
                r.write_config(cfg)
                for port in {r.port, r.admin_port}:
                    r.request("GET", "/metrics", port=port)
                t.eq(r.stop(), 0, "v%d: clean exit" % version)
            finally:
                r.stop()
                emu.stop()
        # --check-config on files that hold secrets in the wrong places
        for name, text in (
                ("inline", {"listen": ["127.0.0.1:0"], "sources": {"shop": {"verify": {
                    "scheme": "shopify", "secret": WEBHOOK_SECRET.decode()}, "dedup": {"header": "X"}}}}),
                ("odoo-inline", {"listen": ["127.0.0.1:0"], "sources": {"shop": {"verify": {
                    "scheme": "none"}, "dedup": {"header": "X"}}}, "odoo": {
                    "url": "http://127.0.0.1:1", "database": "d", "login": "admin",
                    "api_key": ODOO_API_KEY.decode()}}),
                # not JSON: jansson quotes the token it stops at, and that token
                # may be a key pasted without quotes, or the string after a
                # missing comma (a regression test: lib/config.c drops it)
                ("unquoted", '{"listen": ["127.0.0.1:0"], "odoo": {"api_key": %s}}' % PASTED),
                ("no-comma", '{"listen": ["127.0.0.1:0"], "odoo": {"login": "admin" "%s"}}' % PASTED),
                ("bad-json", '{"listen": ["127.0.0.1:0"], "secret": "%s" ,,}' % ODOO_API_KEY.decode())):
            path = os.path.join(tmp, name + ".json")
            with open(path, "w") as f:
                f.write(text if isinstance(text, str) else json.dumps(text))
            p = run_tool([real, "--check-config", path], emit)
            t.check(p.returncode != 0, "--check-config refuses %s" % name)
    finally:
        harness.RELAYD = real
    return leaks, states


def scan(paths, wanted):
    hits = []
    n_bytes = 0
    for path in paths:
        try:
            data = open(path, "rb").read()
        except OSError:
            continue
        n_bytes += len(data)
        for label, value in wanted.items():
            if value and value in data:
                hits.append("%s in %s" % (label, os.path.relpath(path, EMIT_DIR)
                                          if path.startswith(EMIT_DIR) else path))
    return hits, n_bytes


def test_secrets(t):
    emit = Emit("secrets")
    with TempDir() as tmp:
        extra, states = own_run(t, emit, tmp)
        wanted = needles(extra)
        files = []
        for root, _, names in os.walk(EMIT_DIR):
            files += [os.path.join(root, n) for n in names]
        hits, n_bytes = scan(files, wanted)
        t.eq(hits, [], "no secret in anything the daemon and its tools said")
        t.check(len(files) >= 5 and n_bytes > 10000, "something was searched (%d files)" % len(files))
        stores = [os.path.join(s, "data.mdb") for s in states]
        fixtures = os.path.join(HERE, "..", "fixtures", "store")
        stores += [os.path.join(fixtures, d, "data.mdb") for d in os.listdir(fixtures)]
        key_only = {k: v for k, v in needles().items() if ODOO_API_KEY.decode() in k}
        hits, _ = scan(stores, key_only)
        t.eq(hits, [], "the Odoo API key is never written into a store")
        tests = sorted(d for d in os.listdir(EMIT_DIR))
        print("FIGURE secrets: %d files, %d KiB from %s searched for %d needles: no hit"
              % (len(files), n_bytes // 1024, ", ".join(tests), len(wanted)))


if __name__ == "__main__":
    t = Results()
    t.run(test_secrets)
    t.done()
