#!/usr/bin/env python3
"""load() with one2many sub-rows, as Odoo 18 does it (captures 620-653).

The same requests as the captures, with assertions on what is stored
rather than on the shape of the answers (test_replay.py does that):

- an order loaded twice with lines that have no external id of their own
  has its lines twice (620, 623);
- with "order_line/id" the second load finds the lines again: still two,
  a changed quantity and price updated in place, the line ids unchanged
  (626, 628, 630), and the lines get their external ids;
- a line left out of a later load is kept (633);
- continuation rows: only rows whose other cells are all empty are lines
  of the record above; a row with an "id" starts a new record;
- a line that does not resolve makes the whole call write nothing, with
  the message Odoo gives (653).

usage: test_o2m_load.py ODOO_EMULATOR
"""

import sys

import emutest

DB = "relaytest"
COLS = ["id", "partner_id/id", "client_order_ref", "order_line/product_id/id",
        "order_line/product_uom_qty", "order_line/price_unit"]
COLS_ID = ["id", "partner_id/id", "client_order_ref", "order_line/id",
           "order_line/product_id/id", "order_line/product_uom_qty",
           "order_line/price_unit"]


def execute(emu, model, method, *args, **kwargs):
    status, doc = emu.jsonrpc("object", "execute_kw", DB, 2, "admin", model,
                              method, list(args), kwargs)
    if status != 200 or "error" in doc:
        raise RuntimeError("%s.%s: %s %s" % (model, method, status, doc))
    return doc.get("result")


def load(emu, model, cols, rows):
    return execute(emu, model, "load", cols, rows)


def lines_of(emu, order_id):
    return execute(emu, "sale.order.line", "search_read",
                   [["order_id", "=", order_id]],
                   fields=["id", "product_id", "product_uom_qty", "price_unit"])


def line_xmlids(emu):
    return {r["complete_name"]: r["res_id"] for r in execute(
        emu, "ir.model.data", "search_read",
        [["model", "=", "sale.order.line"]], fields=["complete_name", "res_id"])}


def setup(res, emu):
    r = load(emu, "product.product",
             ["id", "name", "default_code", "list_price", "type"],
             [["ecom6.sku1", "Shop Widget One", "SKU-1", "19.90", "consu"],
              ["ecom6.sku2", "Shop Widget Two", "SKU-2", "5.00", "consu"]])
    res.check("products loaded", r["messages"] == [] and len(r["ids"]) == 2, r)
    r = load(emu, "res.partner", ["id", "name", "email"],
             [["ecom6.cust1", "Ecom Customer One", "cust1@example.com"]])
    res.check("customer loaded", r["messages"] == [] and len(r["ids"]) == 1, r)
    return {k: execute(emu, "product.product", "search",
                       [["default_code", "=", code]])[0]
            for k, code in (("sku1", "SKU-1"), ("sku2", "SKU-2"))}


def test_without_inner_ids(res, emu, prod):
    rows = [["ecom6.so1", "ecom6.cust1", "SHOP-1001", "ecom6.sku1", "2", "18.00"],
            ["", "", "", "ecom6.sku2", "1", "5.00"]]
    first = load(emu, "sale.order", COLS, rows)
    res.check("no inner id: first load", first["messages"] == []
              and len(first["ids"]) == 1, first)
    so = first["ids"][0]
    lines = lines_of(emu, so)
    res.check("no inner id: two lines after the first load", len(lines) == 2, lines)
    res.check("no inner id: lines as sent",
              [(l["product_id"][0], l["product_uom_qty"], l["price_unit"]) for l in lines]
              == [(prod["sku1"], 2.0, 18.0), (prod["sku2"], 1.0, 5.0)], lines)
    res.check("no inner id: description is the product's display name",
              lines[0]["product_id"][1] == "[SKU-1] Shop Widget One", lines)
    second = load(emu, "sale.order", COLS, rows)
    res.check("no inner id: second load, same order", second == first, second)
    lines = lines_of(emu, so)
    res.check("no inner id: four lines after the second load (as Odoo)",
              len(lines) == 4, lines)
    order = execute(emu, "sale.order", "read", [so], fields=["order_line"])
    res.check("no inner id: the order lists four lines",
              len(order[0]["order_line"]) == 4, order)
    res.check("no inner id: no line has an external id", line_xmlids(emu) == {},
              line_xmlids(emu))


def test_with_inner_ids(res, emu, prod):
    rows = [["ecom6.so2", "ecom6.cust1", "SHOP-1002", "ecom6.so2_l1", "ecom6.sku1", "2", "18.00"],
            ["", "", "", "ecom6.so2_l2", "ecom6.sku2", "1", "5.00"]]
    first = load(emu, "sale.order", COLS_ID, rows)
    res.check("inner id: first load", first["messages"] == []
              and len(first["ids"]) == 1, first)
    so = first["ids"][0]
    before = lines_of(emu, so)
    res.check("inner id: two lines after the first load", len(before) == 2, before)
    xids = line_xmlids(emu)
    res.check("inner id: the lines have their external ids",
              xids == {"ecom6.so2_l1": before[0]["id"],
                       "ecom6.so2_l2": before[1]["id"]}, xids)
    again = load(emu, "sale.order", COLS_ID, rows)
    res.check("inner id: second identical load", again == first, again)
    after = lines_of(emu, so)
    res.check("inner id: still two lines, the same ones", after == before, after)

    changed = [["ecom6.so2", "ecom6.cust1", "SHOP-1002", "ecom6.so2_l1", "ecom6.sku1", "3", "17.50"],
               ["", "", "", "ecom6.so2_l2", "ecom6.sku2", "1", "4.50"]]
    r = load(emu, "sale.order", COLS_ID, changed)
    res.check("inner id: changed load", r == first, r)
    after = lines_of(emu, so)
    res.check("inner id: still two lines after a change", len(after) == 2, after)
    res.check("inner id: qty and price updated in place",
              [(l["id"], l["product_uom_qty"], l["price_unit"]) for l in after]
              == [(before[0]["id"], 3.0, 17.5), (before[1]["id"], 1.0, 4.5)], after)
    sub = execute(emu, "sale.order", "read", [so], fields=["amount_untaxed"])
    res.check("inner id: the order's amount follows", sub[0]["amount_untaxed"] == 57.0, sub)

    omitted = [["ecom6.so2", "ecom6.cust1", "SHOP-1002", "ecom6.so2_l1", "ecom6.sku1", "3", "17.50"]]
    r = load(emu, "sale.order", COLS_ID, omitted)
    res.check("omitted line: load", r == first, r)
    kept = lines_of(emu, so)
    res.check("omitted line: the line left out is still there",
              [l["id"] for l in kept] == [l["id"] for l in before], kept)
    res.check("omitted line: it is as it was",
              kept[1]["product_uom_qty"] == 1.0 and kept[1]["price_unit"] == 4.5, kept)
    return so


def test_rows(res, emu, prod):
    # two orders in one call, each with a continuation row; a line with a
    # product by reference (default_code) and one by display name
    cols = ["id", "partner_id/id", "order_line/id", "order_line/product_id",
            "order_line/product_uom_qty"]
    rows = [["ecom6.so3", "ecom6.cust1", "ecom6.so3_l1", "SKU-1", "1"],
            ["", "", "ecom6.so3_l2", "[SKU-2] Shop Widget Two", "2"],
            ["ecom6.so4", "ecom6.cust1", "ecom6.so4_l1", "Shop Widget One", "5"],
            ["", "", "ecom6.so4_l2", "SKU-2", "6"]]
    r = load(emu, "sale.order", cols, rows)
    res.check("two records: two ids", r["messages"] == [] and len(r["ids"]) == 2, r)
    if len(r.get("ids") or []) == 2:
        a, b = lines_of(emu, r["ids"][0]), lines_of(emu, r["ids"][1])
        res.check("two records: each has its two lines",
                  [(l["product_id"][0], l["product_uom_qty"]) for l in a]
                  == [(prod["sku1"], 1.0), (prod["sku2"], 2.0)]
                  and [(l["product_id"][0], l["product_uom_qty"]) for l in b]
                  == [(prod["sku1"], 5.0), (prod["sku2"], 6.0)], (a, b))
    # a row with only an empty id and a parent cell is a new record, not a line
    rows = [["ecom6.so5", "ecom6.cust1", "ecom6.so5_l1", "SKU-1", "1"],
            ["", "ecom6.cust1", "", "SKU-2", "1"]]
    r = load(emu, "sale.order", cols, rows)
    res.check("a row with a parent cell starts a record",
              r["messages"] == [] and len(r["ids"]) == 2, r)


def test_bad_line(res, emu):
    before = execute(emu, "sale.order.line", "search_count", [])
    orders = execute(emu, "sale.order", "search_count", [])
    rows = [["ecom6.so11", "ecom6.cust1", "SHOP-1011", "ecom6.sku1", "1", "19.90"],
            ["", "", "", "ecom6.no_such_sku", "1", "3.00"]]
    r = load(emu, "sale.order", COLS, rows)
    msgs = r.get("messages") or [{}]
    res.check("bad line: nothing written", r["ids"] is False, r)
    res.check("bad line: one message for the record's two rows",
              len(msgs) == 1 and msgs[0].get("rows") == {"from": 0, "to": 1}
              and msgs[0].get("record") == 0 and msgs[0].get("field") == "order_line"
              and msgs[0].get("field_name") == "Order Lines", msgs)
    res.check("bad line: Odoo's text",
              msgs[0].get("message") == "No matching record found for external id "
              "'ecom6.no_such_sku' in field 'Order Lines/Product'", msgs)
    res.check("bad line: rolled back",
              execute(emu, "sale.order.line", "search_count", []) == before
              and execute(emu, "sale.order", "search_count", []) == orders)


def main():
    binary = emutest.binary_from_argv()
    res = emutest.Results("emulator_o2m_load")
    with emutest.Emulator(binary, "--db", DB) as emu:
        try:
            prod = setup(res, emu)
            test_without_inner_ids(res, emu, prod)
            test_with_inner_ids(res, emu, prod)
            test_rows(res, emu, prod)
            test_bad_line(res, emu)
        except RuntimeError as exc:
            res.check("calls answered", False, str(exc))
    res.check("exits cleanly on SIGTERM", emu.exit_code == 0, emu.exit_code)
    return res.finish()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, OSError) as exc:  # the emulator did not start
        print("FAIL %s" % exc)
        print("0 passed, 1 failed")
        sys.exit(1)
