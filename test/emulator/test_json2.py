#!/usr/bin/env python3
"""JSON-2 (/json/2/<model>/<method>) of an emulator run with --version 19.

usage: test_json2.py ODOO_EMULATOR
"""

import json
import sys

import emutest

DB = "relaytest"
KEY = "0123456789abcdef0123456789abcdef01234567"
ERROR_KEYS = {"name", "message", "arguments", "context", "debug"}


def is_error(res, label, answer, status, name):
    st, hdrs, body = answer
    ok = res.check(label + " status", st == status, "%s != %s: %s" % (st, status, body))
    ok &= res.check(label + " json", hdrs.get("content-type", "").startswith("application/json"),
                    hdrs.get("content-type"))
    ok &= res.check(label + " error keys", isinstance(body, dict) and set(body) == ERROR_KEYS,
                    body)
    ok &= res.check(label + " name", isinstance(body, dict) and body.get("name") == name,
                    body)
    return ok


def main():
    binary = emutest.binary_from_argv()
    res = emutest.Results("emulator_json2")
    with emutest.Emulator(binary, "--version", "19", "--db", DB,
                          "--api-key", "admin:" + KEY,
                          "--api-key", "botuser:" + KEY[::-1]) as emu:
        def call(model, method, doc, key=KEY, headers=None):
            return emu.json2(model, method, doc, key, headers)

        status, hdrs, body = emu.request("GET", "/web/version")

        doc = json.loads(body)
        res.check("web/version", status == 200 and doc["version"] == "19.0" and
                  doc["version_info"][0] == 19, doc)

        # authentication
        is_error(res, "no key", call("res.partner", "search", {"domain": []}, key=None),
                 401, "werkzeug.exceptions.Unauthorized")
        is_error(res, "bad key", call("res.partner", "search", {"domain": []}, key="nope"),
                 401, "werkzeug.exceptions.Unauthorized")
        is_error(res, "other database",
                 call("res.partner", "search", {"domain": []},
                      headers={"X-Odoo-Database": "other"}),
                 404, "werkzeug.exceptions.NotFound")
        st, _, ids = call("res.partner", "search", {"domain": [["id", "=", 3]]},
                          headers={"X-Odoo-Database": DB})
        res.check("right database", st == 200 and ids == [3], (st, ids))

        # create, read, write, unlink
        st, _, ids = call("res.partner", "create",
                          {"vals_list": [{"name": "J2 A", "email": "a@j2"},
                                         {"name": "J2 B"}]})
        res.check("create list", st == 200 and isinstance(ids, list) and len(ids) == 2
                  and all(isinstance(i, int) for i in ids), (st, ids))
        st, _, one = call("res.partner", "create", {"vals_list": {"name": "J2 C"}})
        res.check("create dict gives a list", st == 200 and isinstance(one, list)
                  and len(one) == 1, (st, one))
        st, _, rows = call("res.partner", "search_read",
                           {"domain": [["name", "ilike", "J2 "]], "fields": ["name", "email"],
                            "order": "name"})
        res.check("search_read", st == 200 and [r["name"] for r in rows] ==
                  ["J2 A", "J2 B", "J2 C"] and set(rows[0]) == {"id", "name", "email"}, rows)
        st, _, n = call("res.partner", "search_count", {"domain": [["name", "ilike", "J2 "]]})
        res.check("search_count", st == 200 and n == 3, (st, n))
        st, _, ok = call("res.partner", "write", {"ids": ids, "vals": {"phone": "+32 1"}})
        res.check("write", st == 200 and ok is True, (st, ok))
        st, _, rows = call("res.partner", "read", {"ids": ids, "fields": ["phone"]})
        res.check("read", st == 200 and [r["phone"] for r in rows] == ["+32 1"] * 2, rows)
        st, _, ok = call("res.partner", "unlink", {"ids": one})
        res.check("unlink", st == 200 and ok is True, (st, ok))
        is_error(res, "write deleted", call("res.partner", "write",
                                           {"ids": one, "vals": {"name": "x"}}),
                 404, "odoo.exceptions.MissingError")

        # load, twice: one record
        doc = {"fields": ["id", "name", "country_id/id"],
               "data": [["odoo_relay.j2_1", "J2 Loaded", "base.be"]]}
        st, _, first = call("res.partner", "load", doc)
        st2, _, second = call("res.partner", "load", doc)
        res.check("load", st == 200 and isinstance(first.get("ids"), list) and
                  first.get("messages") == [] and first.get("nextrow") == 0, first)
        res.check("load twice updates", st2 == 200 and second.get("ids") == first.get("ids"),
                  second)
        st, _, bad = call("res.partner", "load",
                          {"fields": ["id", "name", "parent_id/id"],
                           "data": [["odoo_relay.j2_2", "J2 Orphan", "odoo_relay.none"]]})
        res.check("load row error", st == 200 and bad.get("ids") is False and
                  bad["messages"][0]["field"] == "parent_id", bad)

        # errors and their statuses
        is_error(res, "unknown model", call("res.partnerx", "search", {"domain": []}),
                 404, "werkzeug.exceptions.NotFound")
        is_error(res, "unknown method", call("res.partner", "frobnicate", {}),
                 404, "werkzeug.exceptions.NotFound")
        is_error(res, "private method", call("res.partner", "_search", {"domain": []}),
                 403, "odoo.exceptions.AccessError")
        is_error(res, "validation", call("res.partner", "create",
                                         {"vals_list": [{"name": False}]}),
                 422, "odoo.exceptions.ValidationError")
        is_error(res, "user error", call("res.users", "unlink", {"ids": [2]}),
                 422, "odoo.exceptions.UserError")
        answer = call("res.partner", "write", {"ids": ids})
        if is_error(res, "unbound argument", answer, 422,
                    "werkzeug.exceptions.UnprocessableEntity"):
            res.check("unbound argument message",
                      answer[2]["message"] == "missing a required argument: 'vals'",
                      answer[2]["message"])
        is_error(res, "unexpected argument",
                 call("res.partner", "search", {"domain": [], "bogus": 1}),
                 422, "werkzeug.exceptions.UnprocessableEntity")
        is_error(res, "ids on a model method",
                 call("res.partner", "create", {"ids": [1], "vals_list": [{"name": "x"}]}),
                 422, "werkzeug.exceptions.UnprocessableEntity")
        is_error(res, "unknown field", call("res.partner", "create",
                                            {"vals_list": [{"name": "x", "bogus": 1}]}),
                 500, "builtins.ValueError")
        is_error(res, "access error for a plain user",
                 call("res.users", "create", {"vals_list": [{"name": "x", "login": "x"}]},
                      key=KEY[::-1]),
                 403, "odoo.exceptions.AccessError")
        st, hdrs, body = emu.request("POST", "/json/2/res.partner/search", b"[1, 2]",
                                     {"Content-Type": "application/json",
                                      "Authorization": "bearer " + KEY})
        res.check("non-object body", st == 400, (st, body))
        st, hdrs, body = emu.request("POST", "/json/2/res.partner/search", b"{nope",
                                     {"Content-Type": "application/json",
                                      "Authorization": "bearer " + KEY})
        res.check("invalid json body", st == 400, (st, body))
        st, hdrs, body = emu.request("GET", "/json/2/res.partner/search")
        res.check("GET is not found", st == 404, (st, body))
        st, _, none = call("ir.model.data", "toggle_noupdate",
                           {"model": "res.country", "res_id": 1})
        res.check("None is null", st == 200 and none is None, (st, none))

        # faults through JSON-2
        emu.fault(mode="lock", count=1)
        is_error(res, "lock fault", call("res.partner", "write",
                                         {"ids": ids, "vals": {"phone": "2"}}),
                 409, "odoo.exceptions.LockError")
        emu.fault(mode="serialization", count=1)
        is_error(res, "serialization fault", call("res.partner", "search", {"domain": []}),
                 500, "psycopg2.errors.SerializationFailure")
        emu.fault(mode="access_denied", count=1)
        is_error(res, "access_denied fault", call("res.partner", "search", {"domain": []}),
                 401, "werkzeug.exceptions.Unauthorized")
        st, _, found = call("res.partner", "search", {"domain": [["id", "in", ids]]})
        res.check("faults spent", st == 200 and sorted(found) == sorted(ids), (st, found))

        # JSON-RPC on 19: the same server, error code 0
        st, doc = emu.jsonrpc("object", "execute_kw", DB, 2, KEY, "res.partnerx",
                              "search", [[]], {})
        res.check("jsonrpc code 0", doc.get("error", {}).get("code") == 0, doc)
        st, doc = emu.jsonrpc("object", "execute_kw", DB, 2, KEY, "res.partner",
                              "_search", [[]], {})
        res.check("jsonrpc 19 private message",
                  doc["error"]["data"]["message"] ==
                  "Private methods (such as 'res.partner._search') cannot be called remotely.",
                  doc)
        st, doc = emu.jsonrpc("common", "version")
        res.check("jsonrpc version 19", doc["result"]["server_version_info"][0] == 19, doc)
    res.check("exits cleanly on SIGTERM", emu.exit_code == 0, emu.exit_code)
    return res.finish()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, OSError) as exc:  # the emulator did not start
        print("FAIL %s" % exc)
        print("0 passed, 1 failed")
        sys.exit(1)
