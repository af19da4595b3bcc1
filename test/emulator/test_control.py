#!/usr/bin/env python3
"""The emulator's control API: faults, records, stats, reset, keep-alive.

usage: test_control.py ODOO_EMULATOR
"""

import http.client
import socket
import sys
import threading
import time

import emutest

DB = "relaytest"
DEADLINE = 10.0


def execute(emu, model, method, args, kwargs=None, secret="admin"):
    return emu.jsonrpc("object", "execute_kw", DB, 2, secret, model, method,
                       args, kwargs or {})


def err_name(doc):
    return ((doc or {}).get("error") or {}).get("data", {}).get("name")


def err_message(doc):
    return ((doc or {}).get("error") or {}).get("data", {}).get("message")


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


def poll(cond):
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return False


def test_down_up(res, emu):
    port = emu.port
    status, doc = emu.jsonrpc("common", "version")
    res.check("version before down", status == 200 and "result" in doc)
    status, doc = emu.fault(mode="down")
    res.check("down accepted", status == 200 and doc["faults"]["down"] is True, doc)
    res.check("down refuses connects", refused(port))
    status, doc = emu.fault(mode="none")
    res.check("none accepted", status == 200 and doc["faults"]["down"] is False, doc)
    status, doc = emu.jsonrpc("common", "version")
    res.check("same port answers again", status == 200 and
              doc["result"]["server_version"] == "18.0", doc)


def test_down_with_held_reply(res, emu):
    """A reply held by "slow" when the listener goes must not crash it."""
    emu.fault(mode="slow", delay_ms=60000)
    before = emu.control_get("/control/stats")[1]["calls"]
    outcome = {}

    def call():
        try:
            outcome["status"] = emu.jsonrpc("common", "version")[0]
        except (OSError, http.client.HTTPException) as exc:
            outcome["error"] = exc

    t = threading.Thread(target=call)
    t.start()
    arrived = poll(lambda: emu.control_get("/control/stats")[1]["calls"] > before)
    res.check("held request arrived", arrived)
    emu.fault(mode="down")
    t.join(DEADLINE)
    res.check("held request ends when down", not t.is_alive() and "error" in outcome,
              outcome)
    emu.fault(mode="none")
    status, doc = emu.jsonrpc("common", "version")
    res.check("answers after held reply was dropped", status == 200, status)


def test_http_status(res, emu):
    status, doc = emu.fault(mode="http_status", status=503, retry_after=5, count=2)
    res.check("http_status accepted", status == 200, doc)
    for i in range(2):
        status, hdrs, body = emu.request("POST", "/jsonrpc", b"{}",
                                         {"Content-Type": "application/json"})
        res.check("503 #%d status" % i, status == 503, status)
        res.check("503 #%d retry-after" % i, hdrs.get("retry-after") == "5", hdrs)
        res.check("503 #%d html" % i, hdrs.get("content-type", "").startswith("text/html")
                  and b"503" in body, body[:80])
    status, doc = emu.jsonrpc("common", "version")
    res.check("after count, 200 again", status == 200, status)

    emu.fault(mode="http_status", status=502)
    statuses = [emu.request("GET", "/web/version")[0] for _ in range(3)]
    res.check("no count: every answer", statuses == [502, 502, 502], statuses)
    hdrs = emu.request("GET", "/web/version")[1]
    res.check("no retry_after: no header", "retry-after" not in hdrs, hdrs)
    emu.fault(mode="none")
    res.check("none clears http_status", emu.request("GET", "/web/version")[0] == 200)


def test_serialization_and_lock(res, emu):
    emu.fault(mode="serialization", count=1)
    status, doc = emu.jsonrpc("common", "version")
    res.check("serialization spares common", "result" in doc, doc)
    status, doc = execute(emu, "res.partner", "search_count", [[]])
    res.check("serialization fault", status == 200 and
              err_name(doc) == "psycopg2.errors.SerializationFailure", doc)
    status, doc = execute(emu, "res.partner", "search_count", [[]])
    res.check("serialization count spent", isinstance(doc.get("result"), int), doc)

    emu.fault(mode="lock", count=1)
    status, doc = execute(emu, "res.partner", "write", [[3], {"phone": "1"}])
    res.check("lock fault", err_name(doc) == "psycopg2.errors.LockNotAvailable", doc)
    status, doc = execute(emu, "res.partner", "read", [[3], ["phone"]])
    res.check("lock fault wrote nothing", doc["result"][0]["phone"] is False, doc)
    status, doc = execute(emu, "res.partner", "write", [[3], {"phone": "1"}])
    res.check("lock count spent", doc.get("result") is True, doc)

    emu.fault(mode="serialization")
    names = [err_name(execute(emu, "res.partner", "search_count", [[]])[1])
             for _ in range(3)]
    res.check("serialization without count", names ==
              ["psycopg2.errors.SerializationFailure"] * 3, names)
    emu.fault(mode="none")
    status, doc = execute(emu, "res.partner", "search_count", [[]])
    res.check("none clears serialization", "result" in doc, doc)


def test_access_denied(res, emu):
    emu.fault(mode="access_denied", count=2)
    status, doc = execute(emu, "res.partner", "search_count", [[]])
    res.check("access_denied on execute_kw",
              err_name(doc) == "odoo.exceptions.AccessDenied", doc)
    status, doc = emu.jsonrpc("common", "login", DB, "admin", "admin")
    res.check("access_denied on login", doc.get("result") is False, doc)
    status, doc = emu.jsonrpc("common", "login", DB, "admin", "admin")
    res.check("access_denied count spent", doc.get("result") == 2, doc)


def test_validation(res, emu):
    status, doc = emu.fault(mode="validation", field="email", value="bad@x",
                            message="email bad@x is refused")
    res.check("validation accepted", status == 200 and
              len(doc["faults"]["validation"]) == 1, doc)
    status, doc = execute(emu, "res.partner", "create",
                          [{"name": "V1", "email": "bad@x"}])
    res.check("validation on create",
              err_name(doc) == "odoo.exceptions.ValidationError" and
              err_message(doc) == "email bad@x is refused", doc)
    status, doc = execute(emu, "res.partner", "create",
                          [{"name": "V2", "email": "good@x"}])
    res.check("other values pass", isinstance(doc.get("result"), int), doc)
    pid = doc.get("result")
    status, doc = execute(emu, "res.partner", "write", [[pid], {"email": "bad@x"}])
    res.check("validation on write",
              err_name(doc) == "odoo.exceptions.ValidationError", doc)
    status, doc = execute(emu, "res.partner", "load",
                          [["id", "name", "email"],
                           [["odoo_relay.v3", "V3", "ok@x"],
                            ["odoo_relay.v4", "V4", "bad@x"]]])
    r = doc.get("result") or {}
    res.check("validation on load: ids false", r.get("ids") is False, doc)
    msgs = r.get("messages") or [{}]
    res.check("validation on load: row message",
              msgs[0].get("type") == "error" and msgs[0].get("record") == 1 and
              msgs[0].get("message") == "email bad@x is refused", msgs)
    status, doc = execute(emu, "ir.model.data", "search_count",
                          [[["name", "=", "v3"]]])
    res.check("load wrote nothing", doc.get("result") == 0, doc)
    emu.fault(mode="none")
    status, doc = execute(emu, "res.partner", "create",
                          [{"name": "V5", "email": "bad@x"}])
    res.check("none keeps the validation rule",
              err_name(doc) == "odoo.exceptions.ValidationError", doc)
    status, doc = emu.fault(mode="clear_validation")
    res.check("clear_validation", doc["faults"]["validation"] == [], doc)
    status, doc = execute(emu, "res.partner", "create",
                          [{"name": "V6", "email": "bad@x"}])
    res.check("after clear_validation", isinstance(doc.get("result"), int), doc)


def test_slow(res, emu):
    status, doc = emu.fault(mode="slow", delay_ms=50)
    res.check("slow accepted", doc["faults"]["delay_ms"] == 50, doc)
    emu.fault(mode="serialization", count=1)
    status, doc = execute(emu, "res.partner", "search_count", [[]])
    res.check("slow combines with serialization",
              err_name(doc) == "psycopg2.errors.SerializationFailure", doc)
    status, doc = emu.jsonrpc("common", "version")
    res.check("slow still answers", status == 200 and "result" in doc)
    status, doc = emu.fault(mode="none")
    res.check("none clears slow", doc["faults"]["delay_ms"] == 0, doc)


def test_load_ids(res, emu):
    rows = [["odoo_relay.li%d" % i, "LI %d" % i] for i in range(3)]
    status, doc = emu.fault(mode="load_ids", ids="short", count=1)
    res.check("load_ids accepted", doc["faults"]["load_ids"] == "short" and
              doc["faults"]["load_ids_count"] == 1, doc)
    status, doc = execute(emu, "res.partner", "load", [["id", "name"], rows[:2]])
    ids = (doc.get("result") or {}).get("ids")
    res.check("short: the last id left out", isinstance(ids, list) and len(ids) == 1, doc)
    status, doc = execute(emu, "ir.model.data", "search_count",
                          [[["name", "in", ["li0", "li1"]]]])
    res.check("short: both rows written", doc.get("result") == 2, doc)
    status, doc = execute(emu, "res.partner", "load", [["id", "name"], rows[2:]])
    ids = (doc.get("result") or {}).get("ids")
    res.check("load_ids count spent", isinstance(ids, list) and len(ids) == 1 and
              isinstance(ids[0], int), doc)
    emu.fault(mode="load_ids", ids="false")
    status, doc = execute(emu, "res.partner", "load", [["id", "name"], rows[:2]])
    ids = (doc.get("result") or {}).get("ids")
    res.check("false: the last id is false", isinstance(ids, list) and len(ids) == 2 and
              isinstance(ids[0], int) and ids[1] is False, doc)
    status, doc = emu.fault(mode="load_ids", ids="none")
    res.check("load_ids refuses other kinds", status == 400, doc)
    status, doc = emu.fault(mode="none")
    res.check("none clears load_ids", doc["faults"]["load_ids"] == "", doc)


def test_slow_method(res, emu):
    """slow with a method holds only that method's answers: the call is
    applied at once, its answer waits; every other answer comes."""
    status, doc = emu.fault(mode="slow", delay_ms=60000, method="res.partner.create")
    res.check("slow method accepted", doc["faults"]["slow_method"] == "res.partner.create" and
              doc["faults"]["delay_ms"] == 60000, doc)
    status, doc = execute(emu, "res.partner", "search_count", [[]])
    res.check("another method answers", status == 200 and isinstance(doc.get("result"), int),
              doc)
    outcome = {}

    def call():
        try:
            outcome["doc"] = execute(emu, "res.partner", "create", [{"name": "Held Create"}])
        except (OSError, http.client.HTTPException) as exc:
            outcome["error"] = exc

    t = threading.Thread(target=call)
    t.start()
    applied = poll(lambda: any(r.get("name") == "Held Create" for r in
                               emu.control_get("/control/records?model=res.partner")[1]))
    res.check("the held call is applied", applied)
    res.check("its answer is held", t.is_alive() and not outcome, outcome)
    emu.fault(mode="down")
    t.join(DEADLINE)
    res.check("held answer ends when down", not t.is_alive() and "doc" not in outcome, outcome)
    status, doc = emu.fault(mode="none")
    res.check("none clears the method", doc["faults"]["slow_method"] == "", doc)
    status, doc = emu.fault(mode="slow", delay_ms=1, method=5)
    res.check("a method that is not a name is refused", status == 400, doc)
    emu.fault(mode="none")


def test_records_stats_reset(res, emu):
    status, doc = execute(emu, "res.partner", "load",
                          [["id", "name", "country_id/id"],
                           [["odoo_relay.shop_customer_1", "Shop Customer", "base.be"]]])
    pid = (doc.get("result") or {}).get("ids", [None])[0]
    res.check("load for records", isinstance(pid, int), doc)
    status, recs = emu.control_get("/control/records?model=res.partner")
    mine = [r for r in recs if r.get("id") == pid]
    res.check("records lists the record", status == 200 and len(mine) == 1, status)
    if mine:
        res.check("records carry xmlids",
                  mine[0].get("xmlids") == ["odoo_relay.shop_customer_1"], mine[0])
        status, countries = emu.control_get("/control/records?model=res.country")
        be = [c for c in countries if "base.be" in c.get("xmlids", [])]
        res.check("relation by external id",
                  len(be) == 1 and mine[0].get("country_id") == be[0]["id"], mine[0])
    status, users = emu.control_get("/control/records?model=res.users")
    res.check("records hide passwords",
              status == 200 and all("password" not in u for u in users))
    status, doc = emu.control_get("/control/records?model=no.such")
    res.check("records of an unknown model", status == 404, status)

    status, stats = emu.control_get("/control/stats")
    res.check("stats shape", set(stats) >= {"calls", "calls_by_method", "writes"}, stats)
    res.check("stats count calls", stats["calls"] > 10 and
              stats["calls_by_method"].get("res.partner.load", 0) >= 2, stats)
    res.check("stats count writes", stats["writes"] >= 3, stats)

    status, doc = emu.control_post("/control/reset", {})
    res.check("reset", status == 200, doc)
    status, stats = emu.control_get("/control/stats")
    res.check("reset forgets stats", stats["calls"] == 0 and
              stats["calls_by_method"] == {} and stats["writes"] == 0, stats)
    status, recs = emu.control_get("/control/records?model=res.partner")
    res.check("reset forgets records", all(r["id"] != pid for r in recs))
    res.check("reset seeds again", any(r["name"] == "My Company" for r in recs))
    status, doc = execute(emu, "res.partner", "create", [{"name": "after reset"}])
    res.check("ids start again after reset", doc.get("result") == 7, doc)


def test_none_envelope(res, emu):
    status, doc = execute(emu, "ir.model.data", "toggle_noupdate",
                          ["res.country", 1])
    res.check("None: neither result nor error",
              status == 200 and set(doc) == {"jsonrpc", "id"}, doc)


def test_keepalive(res, emu):
    hdrs = emu.request("GET", "/web/version")[1]
    res.check("connection close by default", hdrs.get("connection") == "close", hdrs)
    status, doc = emu.control_post("/control/keepalive", {"enabled": True})
    res.check("keepalive on", doc.get("keep_alive") is True, doc)
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    try:
        answers = []
        for _ in range(3):
            conn.request("GET", "/web/version")
            resp = conn.getresponse()
            answers.append((resp.status, resp.getheader("Connection")))
            resp.read()
        res.check("three answers on one connection",
                  answers == [(200, None)] * 3, answers)
    except (OSError, http.client.HTTPException) as exc:
        res.check("three answers on one connection", False, exc)
    finally:
        conn.close()
    emu.control_post("/control/keepalive", {"enabled": False})
    hdrs = emu.request("GET", "/web/version")[1]
    res.check("keepalive off again", hdrs.get("connection") == "close", hdrs)


def test_bad_control(res, emu):
    status, doc = emu.fault(mode="bogus")
    res.check("unknown mode", status == 400 and "error" in doc, doc)
    status, doc = emu.fault(mode="http_status", status=42)
    res.check("bad status", status == 400, doc)
    status, _, body = emutest.http_request(emu.control, "POST", "/control/fault",
                                           b"[1", {"Content-Type": "application/json"})
    res.check("bad body", status == 400, body)
    status, _, body = emutest.http_request(emu.control, "GET", "/control/nothing")
    res.check("unknown endpoint", status == 404, body)


def test_clock_and_hold(res, emu):
    """A held transaction's row appears at release with a stamp older than
    rows written meanwhile; stamps keep microseconds, the wire seconds."""
    emu.control_post("/control/reset", {})
    status, st = emu.control_post("/control/clock", {"offset_ms": 3600000})
    res.check("clock accepted", status == 200 and st["offset_ms"] == 3600000, st)
    status, st = emu.control_post("/control/clock", {"offset_ms": "x"})
    res.check("clock refuses a non-integer", status == 400, st)
    status, st = emu.control_post("/control/hold", {})
    res.check("hold accepted", status == 200 and st["hold_next"] is True, st)
    _, doc = execute(emu, "res.partner", "create", [{"name": "Held Row"}])
    held = doc["result"]
    _, st = emu.control_get("/control/hold")
    res.check("one row held", st["held"] == 1 and st["hold_next"] is False, st)
    emu.control_post("/control/clock", {"offset_ms": 3602000})
    _, doc = execute(emu, "res.partner", "create", [{"name": "Later Row"}])
    later = doc["result"]
    fields = {"fields": ["name", "write_date"], "context": {"active_test": False}}
    _, doc = execute(emu, "res.partner", "search_read",
                     [[["id", "in", [held, later]]]], fields)
    res.check("held row invisible", [r["id"] for r in doc["result"]] == [later], doc)
    _, doc = execute(emu, "res.partner", "read", [[held], ["name"]])
    res.check("held row unreadable", doc.get("result") == [], doc)
    status, st = emu.control_post("/control/release", {})
    res.check("release", status == 200 and st["released"] == 1, st)
    _, doc = execute(emu, "res.partner", "search_read",
                     [[["id", "in", [held, later]]]],
                     dict(fields, order="write_date asc, id asc"))
    rows = doc["result"]
    res.check("released row first by write_date",
              [r["id"] for r in rows] == [held, later], rows)
    res.check("wire write_date in whole seconds",
              all(len(r["write_date"]) == 19 for r in rows), rows)
    _, recs = emu.control_get("/control/records?model=res.partner")
    stored = {r["id"]: r["write_date"] for r in recs}
    res.check("stored write_date keeps microseconds",
              len(stored[held]) == 26 and stored[held] < stored[later], stored)
    sec = rows[0]["write_date"]
    for op, want in ((">", 1), (">=", 1), ("=", 0), ("<", 0)):
        _, doc = execute(emu, "res.partner", "search_count",
                         [[["id", "=", held], ["write_date", op, sec]]])
        res.check("write_date %s its own second" % op, doc.get("result") == want, doc)
    emu.control_post("/control/reset", {})
    _, st = emu.control_get("/control/hold")
    res.check("reset clears the clock", st["offset_ms"] == 0, st)


def main():
    binary = emutest.binary_from_argv()
    res = emutest.Results("emulator_control")
    emu = emutest.Emulator(binary, "--db", DB)
    emu.start()
    try:
        for test in (test_down_up, test_down_with_held_reply, test_http_status,
                     test_serialization_and_lock, test_access_denied,
                     test_validation, test_slow, test_slow_method, test_load_ids, test_none_envelope,
                     test_records_stats_reset, test_keepalive, test_bad_control,
                     test_clock_and_hold):
            before = len(res.failed)
            try:
                test(res, emu)
            except Exception as exc:  # report and go on to the next test
                res.check(test.__name__, False, "raised %r" % exc)
            print("%s %s" % ("ok  " if len(res.failed) == before else "FAIL",
                             test.__name__))
    finally:
        code = emu.stop()
    res.check("exits cleanly on SIGTERM", code == 0, code)
    return res.finish()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, OSError) as exc:  # the emulator did not start
        print("FAIL %s" % exc)
        print("0 passed, 1 failed")
        sys.exit(1)
