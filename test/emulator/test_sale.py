#!/usr/bin/env python3
"""The sale module's rules (emu_sale.c) asserted on what is stored, beyond
the shapes the replay compares (captures 660-699):

- action_confirm of a confirmed or cancelled order is a UserError and
  changes nothing;
- a locked order refuses a load that sends its lines' fields even with
  the values they have, and keeps them; a new line is still added;
- a line of a confirmed order cannot be removed, by command 2 or unlink;
  its quantity can be set to 0, and keeps its price;
- on a draft order a quantity written alone re-prices the line at the
  list price; with its price it keeps that price;
- action_cancel: a draft is cancelled at once; a confirmed order answers
  with the wizard and stays confirmed unless the context has
  disable_cancel_warning; a locked order may not be cancelled.

usage: test_sale.py ODOO_EMULATOR
"""

import sys

import emutest

DB = "relaytest"
COLS = ["id", "partner_id/id", "order_line/id", "order_line/product_id/id",
        "order_line/product_uom_qty", "order_line/price_unit"]


def call(emu, model, method, *args, **kwargs):
    status, doc = emu.jsonrpc("object", "execute_kw", DB, 2, "admin", model,
                              method, list(args), kwargs)
    if status != 200:
        raise RuntimeError("%s.%s: %s %s" % (model, method, status, doc))
    return doc


def result(emu, model, method, *args, **kwargs):
    doc = call(emu, model, method, *args, **kwargs)
    if "error" in doc:
        raise RuntimeError("%s.%s: %s" % (model, method, doc["error"]))
    return doc.get("result")


def error_of(doc):
    return (doc.get("error") or {}).get("data", {}).get("message", "")


def lines(emu, so):
    return [(l["product_uom_qty"], l["price_unit"]) for l in result(
        emu, "sale.order.line", "search_read", [["order_id", "=", so]],
        fields=["product_uom_qty", "price_unit"], order="id")]


def state(emu, so):
    return result(emu, "sale.order", "read", [so], fields=["state", "locked"])[0]


def order(emu, name, qty=("2", "1")):
    r = result(emu, "sale.order", "load", COLS,
               [["t.%s" % name, "t.cust", "t.%s_l1" % name, "t.p1", qty[0], "18.00"],
                ["", "", "t.%s_l2" % name, "t.p2", qty[1], "4.00"]])
    return r["ids"][0]


def main():
    res = emutest.Results("emulator_sale")
    with emutest.Emulator(emutest.binary_from_argv(), "--db", DB, "--user", "admin:admin") as emu:
        result(emu, "product.product", "load", ["id", "name", "default_code", "list_price"],
               [["t.p1", "One", "P1", "19.90"], ["t.p2", "Two", "P2", "5.00"]])
        result(emu, "res.partner", "load", ["id", "name"], [["t.cust", "Customer"]])

        so = order(emu, "a")
        res.check("confirm a draft", result(emu, "sale.order", "action_confirm", [so]) is True)
        doc = call(emu, "sale.order", "action_confirm", [so])
        res.check("confirm again: UserError",
                  error_of(doc) == "Some orders are not in a state requiring confirmation.",
                  doc)
        res.check("still confirmed", state(emu, so)["state"] == "sale")

        # removal refused, quantity 0 allowed and priced as before
        line_ids = result(emu, "sale.order.line", "search", [["order_id", "=", so]], order="id")
        doc = call(emu, "sale.order", "write", [so], {"order_line": [[2, line_ids[1]]]})
        res.check("command 2 on a confirmed order refused",
                  error_of(doc).startswith("Once a sales order is confirmed"), doc)
        doc = call(emu, "sale.order.line", "unlink", [line_ids[1]])
        res.check("unlink refused", error_of(doc).startswith("Once a sales order is confirmed"))
        res.check("quantity 0 allowed", result(emu, "sale.order", "write", [so],
                  {"order_line": [[1, line_ids[1], {"product_uom_qty": 0}]]}) is True)
        res.check("lines kept, price kept", lines(emu, so) == [(2.0, 18.0), (0.0, 4.0)],
                  lines(emu, so))

        # locked: unchanged values refused, new line added
        call(emu, "sale.order", "action_lock", [so])
        res.check("locked", state(emu, so)["locked"] is True)
        r = result(emu, "sale.order", "load", COLS,
                   [["t.a", "t.cust", "t.a_l1", "t.p1", "2", "18.00"]])
        res.check("locked: unchanged line refused", r["ids"] is False and
                  r["messages"][0]["message"].startswith(
                      "It is forbidden to modify the following fields in a locked order:"), r)
        r = result(emu, "sale.order", "load", ["id", "order_line/product_id/id",
                                               "order_line/product_uom_qty",
                                               "order_line/price_unit"],
                   [["t.a", "t.p2", "1", "5.00"]])
        res.check("locked: a new line is added", r["ids"] == [so] and len(lines(emu, so)) == 3,
                  r)
        doc = call(emu, "sale.order", "action_cancel", [so])
        res.check("locked: cancel refused", "locked order" in error_of(doc), doc)
        call(emu, "sale.order", "action_unlock", [so])

        # cancel: wizard without the context, done with it
        r = result(emu, "sale.order", "action_cancel", [so])
        res.check("cancel of a confirmed order: the wizard",
                  isinstance(r, dict) and r.get("res_model") == "sale.order.cancel", r)
        res.check("still confirmed", state(emu, so)["state"] == "sale")
        r = result(emu, "sale.order", "action_cancel", [so],
                   context={"disable_cancel_warning": True})
        res.check("cancelled with disable_cancel_warning",
                  r is True and state(emu, so)["state"] == "cancel")
        doc = call(emu, "sale.order", "action_confirm", [so])
        res.check("confirm a cancelled order: UserError",
                  error_of(doc) == "Some orders are not in a state requiring confirmation.")

        # draft: quantity alone re-priced, with its price kept
        so2 = order(emu, "b")
        result(emu, "sale.order", "load", ["id", "order_line/id", "order_line/product_uom_qty"],
               [["t.b", "t.b_l1", "3"]])
        res.check("draft: quantity alone re-prices at the list price",
                  lines(emu, so2)[0] == (3.0, 19.9), lines(emu, so2))
        result(emu, "sale.order", "load", ["id", "order_line/id", "order_line/product_uom_qty",
                                           "order_line/price_unit"],
                  [["t.b", "t.b_l1", "4", "17.00"]])
        res.check("draft: quantity with its price keeps it", lines(emu, so2)[0] == (4.0, 17.0),
                  lines(emu, so2))
        res.check("cancel of a draft: at once",
                  result(emu, "sale.order", "action_cancel", [so2]) is True and
                  state(emu, so2)["state"] == "cancel")
    return res.finish()


if __name__ == "__main__":
    sys.exit(main())
