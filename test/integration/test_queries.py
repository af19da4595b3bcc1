"""On-demand queries: GET /query/<name> runs a declared search_read on Odoo.
Parameters are values only (injection refused before Odoo sees anything);
answers are cached, stale answers cover an Odoo that is down, identical
requests in flight share one call, rates are limited, the destination's
open circuit answers 503 at once, answers are bounded by limit and bytes,
callers authenticate, and --check-config places its errors."""
import base64
import copy
import hashlib
import hmac
import http.client
import json
import os
import signal
import subprocess
import threading
import time
import urllib.parse

from harness import (RELAYD, Emulator, Relay, Results, TempDir, base_config, wait_for)
from test_delivery import customer

TOKEN = b"query-token-1"
HMAC_KEY = b"query-hmac-key"


def odoo_call(emu, model, method, args, kwargs=None):
    """execute_kw on the emulator directly, as admin."""
    def rpc(service, method_, args_):
        c = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
        body = json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1,
                           "params": {"service": service, "method": method_, "args": args_}})
        c.request("POST", "/jsonrpc", body, {"Content-Type": "application/json"})
        r = json.loads(c.getresponse().read())
        c.close()
        if "error" in r:
            raise AssertionError("odoo error: %r" % r["error"])
        return r["result"]
    uid = rpc("common", "login", ["test", "admin", "test-api-key"])
    return rpc("object", "execute_kw", ["test", uid, "test-api-key", model, method, args, kwargs or {}])


def search_reads(emu):
    return emu.stats()["calls_by_method"].get("res.partner.search_read", 0)


def queries(**over):
    base = {
        "partners": {
            "model": "res.partner",
            "domain": ["&", ["name", "ilike", {"param": "q"}], ["active", "=", True]],
            "fields": ["id", "name", "email"],
            "order": "id",
            "limit": 10,
            "params": {"q": {"type": "string", "pattern": "[A-Za-z0-9 ]*", "max_length": 20}},
            "cache_s": 2, "stale_s": 60,
            "auth": {"scheme": "token", "secret_file": "query.token", "header": "X-Query-Token"},
        },
        "by_id": {
            "model": "res.partner",
            "domain": [["id", "=", {"param": "id"}]],
            "fields": ["id", "name"],
            "params": {"id": {"type": "integer", "min": 1, "max": 1000000}},
            "auth": {"scheme": "hmac-sha256", "secret_file": "query.hmac", "header": "X-Signature",
                     "prefix": "sha256="},
        },
        "public": {
            "model": "res.partner",
            "domain": [["name", "=like", {"param": "prefix"}]],
            "fields": ["id", "name"],
            "params": {"prefix": {"type": "string", "max_length": 40, "required": False,
                                  "default": "Shop%"}},
            "limit": 1000, "max_bytes": 2048, "cache_s": 30,
            "public": True, "auth": {"scheme": "none"},
            "rate_per_s": 1000, "caller_rate_per_s": 1000,
        },
        "limited": {
            "model": "res.partner",
            "domain": [["name", "ilike", {"param": "q"}]],
            "fields": ["id"],
            "params": {"q": {"type": "string", "max_length": 10}},
            "cache_s": 60, "rate_per_s": 0.5, "burst": 2,
            "public": True, "auth": {"scheme": "none"},
        },
        "per_caller": {
            "model": "res.partner",
            "domain": [["name", "ilike", {"param": "q"}]],
            "fields": ["id"],
            "params": {"q": {"type": "string", "max_length": 10}},
            "cache_s": 60, "caller_rate_per_s": 0.5, "burst": 1,
            "public": True, "auth": {"scheme": "none"},
        },
        "refused": {
            "model": "res.partner",
            "domain": [["no_such_field", "=", {"param": "v"}]],
            "fields": ["id"],
            "params": {"v": {"type": "string"}},
            "public": True, "auth": {"scheme": "none"},
        },
    }
    base.update(over)
    return base


def config(tmp, emu, probe_ms=100, **qover):
    return base_config(
        os.path.join(tmp, "state"),
        odoo={"url": emu.url, "database": "test", "login": "admin", "api_key_file": "odoo.key",
              "protocol": "jsonrpc", "query_max_in_flight": 2},
        delivery={"backoff": {"base_ms": 50, "cap_ms": 400, "max_attempts": 25, "max_age_s": 3600},
                  "probe_base_ms": probe_ms, "probe_cap_ms": probe_ms, "circuit_failures": 1,
                  "drain_timeout_ms": 2000},
        routes=[{"name": "customers", "source": "shop", "topics": ["customers/*"],
                 "operation": "upsert", "model": "res.partner",
                 "external_id": "shop_customer_{/id}",
                 "fields": {"name": "{/first_name} {/last_name}", "email": {"pointer": "/email"}}}],
        queries=queries(**qover))


def start(tmp, emu, **kw):
    secrets = {"shop.secret": b"test-shop-secret", "odoo.key": b"test-api-key",
               "query.token": TOKEN, "query.hmac": HMAC_KEY}
    r = Relay(tmp, config(tmp, emu, **kw), secrets=secrets)
    r.wait_delivering()
    return r


def get(r, path, headers=None, timeout=10):
    status, hdrs, data = r.request("GET", path, headers=headers, timeout=timeout)
    try:
        js = json.loads(data)
    except ValueError:
        js = None
    return status, hdrs, js


def tok():
    return {"X-Query-Token": TOKEN.decode()}


def seed(emu, n=5, name="Shop Partner %d", pad=0):
    vals = [{"name": (name % i) + ("x" * pad), "email": "p%d@example.com" % i} for i in range(n)]
    for v in vals:
        odoo_call(emu, "res.partner", "create", [v])


def test_answer_and_cache(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = start(tmp, emu)
        try:
            seed(emu, 3)
            before = search_reads(emu)
            st, _, data = r.request("GET", "/query/partners?q=Shop", headers=tok())
            js = json.loads(data)
            t.eq(st, 200, "answered")
            # the records as Odoo wrote them (its spacing), not encoded again
            t.check(b'[{"id": ' in data, "Odoo's own text of the records: " +
                    data[:80].decode("utf-8", "replace"))
            t.eq(js["count"], 3, "three records")
            t.eq(sorted(x["name"] for x in js["records"]),
                 ["Shop Partner 0", "Shop Partner 1", "Shop Partner 2"], "the records")
            t.eq(set(js["records"][0]), {"id", "name", "email"}, "the declared fields only")
            t.eq((js["cached"], js["age_s"]), (False, 0), "fresh from odoo")
            st, _, js = get(r, "/query/partners?q=Shop", tok())
            t.eq((st, js["cached"], js["count"]), (200, True, 3), "the second is cached")
            st, _, js = get(r, "/query/partners?q=Sho%70", tok())
            t.eq((st, js["cached"]), (200, True), "the key is the decoded value")
            t.eq(search_reads(emu) - before, 1, "one call to odoo for three requests")
            t.eq(r.metric("relay_query_cache_hits_total", 'query="partners"'), 2.0, "hits counted")
            t.eq(r.metric("relay_query_odoo_calls_total", 'query="partners"'), 1.0, "calls counted")
            t.eq(r.metric("relay_query_seconds_count", 'query="partners"'), 3.0,
                 "latency observed per query")
            time.sleep(2.2)
            st, _, js = get(r, "/query/partners?q=Shop", tok())
            t.eq((st, js["cached"]), (200, False), "past cache_s it asks odoo again")
            t.eq(search_reads(emu) - before, 2, "a second call")
            # optional parameter: absent and its default share one entry
            st, _, a = get(r, "/query/public")
            st2, _, b = get(r, "/query/public?prefix=Shop%25")
            t.eq((st, st2, a["cached"], b["cached"]), (200, 200, False, True),
                 "the default and the same value explicitly are one cache entry")
            wait_for(lambda: "partners" in r.ctl("status").stdout, timeout=10,
                     what="status lists the queries")
            out = r.ctl("status").stdout
            t.check("hit rate" in out and "res.partner" in out, "status shows hit rates: " +
                    [l for l in out.splitlines() if "partners" in l][0])
            js = json.loads(r.ctl("status", "--json").stdout)
            names = sorted(q["name"] for q in js["queries"])
            t.check("partners" in names and "public" in names, "status --json lists the queries")
        finally:
            t.eq(r.stop(), 0, "clean exit")
            emu.stop()


def test_parameters_refused(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = start(tmp, emu)
        try:
            before = search_reads(emu)
            bad = [
                ("/query/partners?q=a&x=1", "unknown parameter"),
                ("/query/partners?q[ilike]=a", "an operator in the name"),
                ("/query/partners?name=a", "a field name as a parameter"),
                ("/query/partners?q=" + urllib.parse.quote("x'),('id','>',0"), "a piece of domain"),
                ("/query/partners?q=" + urllib.parse.quote('["|",["id",">",0]]'), "a JSON domain"),
                ("/query/partners?q=" + "a" * 21, "over max_length"),
                ("/query/partners?q=a&q=b", "given twice"),
                ("/query/partners?q=%zz", "a bad escape"),
                ("/query/partners?q=%00", "a NUL byte"),
                ("/query/partners", "missing required"),
                ("/query/by_id?id=abc", "not an integer"),
                ("/query/by_id?id=1.5", "a real for an integer"),
                ("/query/by_id?id=0", "below min"),
                ("/query/by_id?id=" + "9" * 30, "far over max"),
                ("/query/public?prefix=" + urllib.parse.quote("%") + "&prefix=a", "twice"),
            ]
            for path, what in bad:
                headers = tok()
                if path.startswith("/query/by_id"):
                    headers = {"X-Signature": "sha256=" + hmac.new(HMAC_KEY, path.encode(),
                                                                   hashlib.sha256).hexdigest()}
                st, _, js = get(r, path, headers)
                t.eq(st, 400, "refused: " + what)
                t.check(js and js.get("detail"), "with a reason: %s" % (js and js.get("detail")))
            t.eq(search_reads(emu), before, "nothing reached odoo")
            st, _, js = get(r, "/query/nothing?q=a")
            t.eq(st, 404, "unknown query")
            st, _, _ = r.request("POST", "/query/partners?q=a", b"{}", tok())
            t.eq(st, 405, "POST is not a query")
            # a value that looks like a domain is only ever a value
            st, _, js = get(r, "/query/public?prefix=" + urllib.parse.quote("%' OR 1=1 --"))
            t.eq((st, js["count"]), (200, 0), "an SQL-looking value matches nothing")
            # odoo refuses a query: 400 with its message
            st, _, js = get(r, "/query/refused?v=x")
            t.eq(st, 400, "odoo's refusal is a 400")
            t.check("no_such_field" in (js or {}).get("detail", ""), "with odoo's message: %r" % js)
        finally:
            t.eq(r.stop(), 0, "clean exit")
            emu.stop()


def test_auth(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = start(tmp, emu)
        try:
            t.eq(get(r, "/query/partners?q=a")[0], 401, "no token")
            t.eq(get(r, "/query/partners?q=a", {"X-Query-Token": "wrong"})[0], 401, "wrong token")
            t.eq(get(r, "/query/partners?q=a", tok())[0], 200, "right token")
            path = "/query/by_id?id=3"
            sig = hmac.new(HMAC_KEY, path.encode(), hashlib.sha256).hexdigest()
            t.eq(get(r, path, {"X-Signature": "sha256=" + sig})[0], 200, "hmac over the target")
            t.eq(get(r, "/query/by_id?id=4", {"X-Signature": "sha256=" + sig})[0], 401,
                 "a signature for another target")
            t.check("query public is public" in r.logs(), "public queries warned about at start")
            t.check(r.metric("relay_query_errors_total", 'query="partners",reason="auth"') == 2.0,
                    "auth failures counted")
        finally:
            t.eq(r.stop(), 0, "clean exit")
            emu.stop()


def test_coalescing(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = start(tmp, emu)
        try:
            seed(emu, 3)
            emu.fault(mode="slow", delay_ms=700)
            before = search_reads(emu)
            results = []
            lock = threading.Lock()

            def one():
                st, _, js = get(r, "/query/partners?q=Partner", tok(), timeout=30)
                with lock:
                    results.append((st, js and js.get("count")))
            threads = [threading.Thread(target=one) for _ in range(100)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            emu.fault(mode="none")
            t.eq(len(results), 100, "every request answered")
            t.eq(sorted(set(results)), [(200, 3)], "all with the records")
            t.eq(search_reads(emu) - before, 1, "100 concurrent identical requests: one odoo call")
        finally:
            t.eq(r.stop(), 0, "clean exit")
            emu.stop()


def test_rate_limits(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = start(tmp, emu)
        try:
            got = [get(r, "/query/limited?q=a") for _ in range(3)]
            t.eq([g[0] for g in got], [200, 200, 429], "the query's burst of 2, then 429")
            t.check(int(got[2][1].get("Retry-After", "0")) >= 1, "429 says when to retry")
            got = [get(r, "/query/per_caller?q=a")[0] for _ in range(2)]
            t.eq(got, [200, 429], "the caller's rate")
        finally:
            t.eq(r.stop(), 0, "clean exit")
            emu.stop()


def test_odoo_down_and_stale(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = start(tmp, emu, probe_ms=60000)
        try:
            seed(emu, 2)
            st, _, js = get(r, "/query/partners?q=Shop", tok())
            t.eq((st, js["cached"]), (200, False), "filled the cache")
            emu.fault(mode="down")
            time.sleep(2.2)
            st, _, js = get(r, "/query/partners?q=Shop", tok())
            t.eq((st, js and js["cached"], js and js["count"]), (200, True, 2),
                 "stale while odoo is down")
            t.check(js and js["age_s"] >= 2, "with its age: %r" % (js and js.get("age_s")))
            st, hdrs, js = get(r, "/query/partners?q=Other", tok())
            t.eq(st, 503, "nothing stale: 503")
            t.check(int(hdrs.get("Retry-After", "0")) >= 1, "with Retry-After")
            t.check(r.metric("relay_query_stale_total", 'query="partners"') >= 1.0,
                    "stale answers counted")
            t.check("odoo unavailable" in r.logs(), "the failure is logged")
            # delivery meets the same Odoo: its circuit opens, and queries then
            # answer 503 at once without calling odoo, even once it is back
            r.post_shop(customer(1), "c-1")
            wait_for(lambda: r.metric("relay_circuit_open") == 1.0, what="the circuit to open")
            emu.fault(mode="none")
            before = search_reads(emu)
            st, _, js = get(r, "/query/partners?q=Else", tok())
            t.eq(st, 503, "circuit open: 503")
            t.eq(search_reads(emu), before, "without calling odoo")
            st, _, js = get(r, "/query/partners?q=Shop", tok())
            t.eq((st, js and js["cached"]), (200, True), "but the stale answer is still served")
        finally:
            t.eq(r.stop(), 0, "clean exit")
            emu.stop()


def test_slow_odoo_timeout(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        q = queries()["partners"]
        q = dict(q, timeout_ms=300)
        r = start(tmp, emu, partners=q)
        try:
            seed(emu, 2)
            st, _, js = get(r, "/query/partners?q=Shop", tok())
            t.eq(st, 200, "filled")
            time.sleep(2.2)
            emu.fault(mode="slow", delay_ms=1500)
            # stale (cached) means the relay stopped waiting at timeout_ms:
            # had it waited out Odoo's delay, the answer would be fresh
            st, _, js = get(r, "/query/partners?q=Shop", tok())
            t.eq((st, js and js["cached"]), (200, True), "odoo slow: the stale answer")
            st, _, js = get(r, "/query/partners?q=New", tok())
            t.eq(st, 504, "odoo slow, nothing stale: 504")
            emu.fault(mode="none")
        finally:
            t.eq(r.stop(), 0, "clean exit")
            emu.stop()


def test_big_answers(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = start(tmp, emu)
        try:
            seed(emu, 40, name="Shop Big %03d", pad=100)
            st, _, js = get(r, "/query/partners?q=Big", tok())
            t.eq((st, js["count"], len(js["records"])), (200, 10, 10), "bounded by limit")
            st, _, data = r.request("GET", "/query/public")
            js = json.loads(data)
            t.eq(st, 200, "answered")
            t.check(js.get("truncated") is True, "past max_bytes: truncated")
            t.check(b'{"id":' in data and b'{"id": ' not in data,
                    "cut to fit: the records encoded again, compact")
            t.check(len(json.dumps(js["records"], separators=(",", ":"))) <= 2048,
                    "records within max_bytes (%d)" % len(json.dumps(js["records"])))
            t.eq(js["count"], len(js["records"]), "count is what was sent")
            t.check(0 < js["count"] < 40, "some records, not all: %d" % js["count"])
        finally:
            t.eq(r.stop(), 0, "clean exit")
            emu.stop()


def test_reload(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = start(tmp, emu)
        try:
            cfg = copy.deepcopy(r.cfg)
            cfg["queries"]["added"] = {"model": "res.partner", "domain": [], "fields": ["id"],
                                       "limit": 1, "public": True, "auth": {"scheme": "none"}}
            r.write_config(cfg)
            n = r.logs().count("configuration reloaded")
            r.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: r.logs().count("configuration reloaded") > n, what="reloaded")
            t.eq(get(r, "/query/added")[0], 200, "a new query after a reload")
            bad = copy.deepcopy(cfg)
            bad["queries"]["added"]["domain"] = [["id", "bogus", 1]]
            r.write_config(bad)
            n = r.logs().count("reload refused")
            r.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: r.logs().count("reload refused") > n, what="refused")
            t.eq(get(r, "/query/added")[0], 200, "a refused reload keeps the queries")
            # A reload probes every destination again; while that probe is
            # out, on-demand reads of a destination that was up still go to
            # Odoo (a 503 would be a failure the reload made up).
            emu.fault(mode="slow", delay_ms=1500)
            r.write_config(cfg)
            n = r.logs().count("configuration reloaded")
            r.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: r.logs().count("configuration reloaded") > n, what="reloaded")
            t.eq(get(r, "/query/added")[0], 200, "a reload's probe does not refuse queries")
            emu.fault(mode="none")
        finally:
            t.eq(r.stop(), 0, "clean exit")
            emu.stop()


def check_config(tmp, cfg):
    path = os.path.join(tmp, "check.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
    p = subprocess.run([RELAYD, "--check-config", path], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stderr.strip(), path


def test_check_config(t):
    with TempDir() as tmp:
        for name, value in {"shop.secret": b"s", "odoo.key": b"k", "query.token": b"t",
                            "query.hmac": b"h"}.items():
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(value)
        emu = type("E", (), {"url": "http://127.0.0.1:1"})()
        good = config(tmp, emu)
        rc, err, path = check_config(tmp, good)
        t.eq(rc, 0, "the test configuration is valid: " + err)
        cases = [
            (["domain", 0, 1], "bogus", "unknown operator"),
            (["domain", 0, 0], {"param": "q"}, "a parameter can only be a value"),
            (["domain", 0, 0], "name) or (1", "invalid field name"),
            (["domain", 0, 2], {"param": "nope"}, "is not declared"),
            (["domain", 0], "&", "lacks operands"),
            (["fields", 0], "name,password", "invalid field name"),
            (["order"], "id; drop", "invalid order"),
            (["params", "q", "pattern"], "([a-z", "invalid pattern"),
            (["auth"], {"scheme": "none"}, "allowed only with \"public\": true"),
            (["destination"], "elsewhere", "no Odoo destination"),
        ]
        for keys, value, want in cases:
            cfg = copy.deepcopy(good)
            q = cfg["queries"]["partners"] if keys[0] != "domain" else None
            if keys[0] == "domain":
                cfg["queries"]["partners"]["domain"] = [["name", "ilike", {"param": "q"}]]
                node = cfg["queries"]["partners"]["domain"]
                for k in keys[1:-1]:
                    node = node[k]
                node[keys[-1]] = value
            else:
                node = q
                for k in keys[:-1]:
                    node = node[k]
                node[keys[-1]] = value
            rc, err, path = check_config(tmp, cfg)
            t.eq(rc, 1, "refused: " + want)
            t.check(err.startswith(path + ":") and err.split(":")[1].isdigit()
                    and err.split(":")[2].isdigit(), "with file:line:column: " + err)
            t.check(want in err, "says %r: %s" % (want, err))
        # the position is the offending value's
        cfg = copy.deepcopy(good)
        cfg["queries"]["partners"]["domain"] = [["name", "ilike", {"param": "q"}], ["id", "~", 1]]
        rc, err, path = check_config(tmp, cfg)
        text = open(path).read().splitlines()
        line, col = int(err.split(":")[1]), int(err.split(":")[2])
        t.check(text[line - 1][col - 1:].startswith('"~"'), "points at the operator: %s" % err)
        rc, err, path = check_config(tmp, good)
        t.check("warning: query public is public" in err, "--check-config warns about public queries")


def test_own_listener(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        secrets = {"shop.secret": b"test-shop-secret", "odoo.key": b"test-api-key",
                   "query.token": TOKEN, "query.hmac": HMAC_KEY}
        cfg = config(tmp, emu)
        cfg["query_listen"] = "127.0.0.1:0"
        r = Relay(tmp, cfg, secrets=secrets)
        try:
            r.wait_delivering()
            lines = open(r.listen_file).read().split("\n")
            qport = [int(l.split()[0].rsplit(":", 1)[1]) for l in lines if l.endswith(" query")]
            t.eq(len(qport), 1, "the listen file names the query listener")
            st, _, data = r.request("GET", "/query/public", port=qport[0])
            t.eq(st, 200, "queries on their own listener")
            t.eq(get(r, "/query/public")[0], 404, "and not on the webhook listener")
            st, _, _ = r.request("POST", "/hooks/open", b'{"id": 1}', {"Content-Type": "application/json"},
                                 port=qport[0])
            t.eq(st, 404, "no webhooks on the query listener")
            t.eq(r.request("GET", "/metrics", port=qport[0])[0], 404, "nor metrics")
            t.eq(r.request("GET", "/healthz", port=qport[0])[0], 200, "health is there")
        finally:
            t.eq(r.stop(), 0, "clean exit")
            emu.stop()


if __name__ == "__main__":
    t = Results()
    t.run(test_answer_and_cache)
    t.run(test_parameters_refused)
    t.run(test_auth)
    t.run(test_coalescing)
    t.run(test_rate_limits)
    t.run(test_odoo_down_and_stale)
    t.run(test_slow_odoo_timeout)
    t.run(test_big_answers)
    t.run(test_reload)
    t.run(test_check_config)
    t.run(test_own_listener)
    t.done()
