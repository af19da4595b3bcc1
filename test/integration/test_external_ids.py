"""External IDs end to end, through the real odoo-relayd and the Odoo
emulator: values the old '_' rule merged (alice.smith and alice_smith, 1.5
and 1_5, two non-ASCII names) are distinct records; one number written as
1000000, 1e6 and 1000000.0 is one record; an empty id is dead-lettered with a message
naming the pointer; and --check-config refuses an external_id without a
pointer and order lines without an id of their own."""
import json
import os
import re
import subprocess

from harness import RELAYD, Emulator, Relay, Results, TempDir, base_config, store_ids, wait_for

ROUTE = {
    "name": "shop-customers",
    "source": "shop",
    "topics": ["customers/*"],
    "operation": "upsert",
    "model": "res.partner",
    "external_id": "shop_customer_{/id}",
    "fields": {"name": "{/name}"},
}


def config(tmp, emu, routes=None):
    d = {"backoff": {"base_ms": 50, "cap_ms": 400, "max_attempts": 25, "max_age_s": 3600},
         "probe_base_ms": 100, "probe_cap_ms": 400, "circuit_failures": 5,
         "drain_timeout_ms": 2000}
    return base_config(os.path.join(tmp, "state"),
                       odoo={"url": emu.url, "database": "test", "login": "admin",
                             "api_key_file": "odoo.key", "protocol": "jsonrpc"},
                       delivery=d, routes=routes or [ROUTE])


def ours(emu):
    """{external id: name} of the partners the relay wrote."""
    out = {}
    for rec in emu.records("res.partner"):
        for x in rec.get("xmlids", []):
            if x.startswith("odoo_relay."):
                out[x] = rec["name"]
    return out


def queue_empty(r):
    return not store_ids(r.cfg["state_dir"])


# (id value as sent, the record's external ID name): every value its own record
DISTINCT = [
    ("alice.smith", "shop_customer_alice-2Esmith"),
    ("alice_smith", "shop_customer_alice_smith"),
    (1.5, "shop_customer_1-2E5"),
    ("1_5", "shop_customer_1_5"),
    ("J\u00fcrgen", "shop_customer_J-C3-BCrgen"),
    ("J\u00f6rgen", "shop_customer_J-C3-B6rgen"),
    ("\u5c71\u7530", "shop_customer_-E5-B1-B1-E7-94-B0"),
    ("\u7530\u5c71", "shop_customer_-E7-94-B0-E5-B1-B1"),
    ("cus_Nx8aBc09", "shop_customer_cus_Nx8aBc09"),
]


def test_distinct_values_distinct_records(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, config(tmp, emu))
        try:
            for i, (value, _) in enumerate(DISTINCT):
                st, _, _ = r.post_shop({"id": value, "name": "customer %d" % i}, "wh-%d" % i)
                t.eq(st, 202, "webhook %d accepted" % i)
            wait_for(lambda: queue_empty(r), what="queue drained")
            t.eq(store_ids(r.cfg["state_dir"], "dead"), [], "nothing dead")
            got = ours(emu)
            t.eq(len(got), len(DISTINCT), "one partner per value: %r" % sorted(got))
            for i, (value, name) in enumerate(DISTINCT):
                t.eq(got.get("odoo_relay." + name), "customer %d" % i,
                     "%r is its own record, with its own data" % (value,))
            for x in got:
                t.check(re.fullmatch(r"odoo_relay\.[A-Za-z0-9_-]+", x) is not None,
                        "no dot or space in the name: %r" % x)
        finally:
            r.stop()
            emu.stop()


def test_number_forms_one_record(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, config(tmp, emu))
        try:
            # the same number three ways, in one lane (the source's lane is /id)
            for i, spelled in enumerate(["1000000", "1e6", "1000000.0"]):
                body = ('{"id": %s, "name": "million %d"}' % (spelled, i)).encode()
                st, _, _ = r.post_shop(None, "num-%d" % i, body=body)
                t.eq(st, 202, "%s accepted" % spelled)
                # in order: each must be applied before the next is sent
                wait_for(lambda: queue_empty(r), what="%s delivered" % spelled)
            got = ours(emu)
            t.eq(got, {"odoo_relay.shop_customer_1000000": "million 2"},
                 "1000000, 1e6 and 1000000.0 are one record, updated in place")
        finally:
            r.stop()
            emu.stop()


def test_empty_id_dead_lettered(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, config(tmp, emu))
        state = r.cfg["state_dir"]
        try:
            st, _, js = r.post_shop({"id": "", "name": "nobody"}, "wh-empty")
            t.eq(st, 202, "accepted (the mapping decides, not the ingest)")
            wait_for(lambda: store_ids(state, "dead"), what="empty id dead-lettered")
            dead = store_ids(state, "dead")
            t.eq(len(dead), 1, "one dead letter")
            reason = dead[0]["dead_reason"] or ""
            t.check("external_id: /id is empty" in reason,
                    "the reason names the pointer (%r)" % reason)
            # a second empty id is dead too: no shared record for "no value"
            st, _, _ = r.post_shop({"id": "", "name": "nobody else"}, "wh-empty-2")
            wait_for(lambda: len(store_ids(state, "dead")) == 2, what="second dead letter")
            t.eq(ours(emu), {}, "no record was written")
        finally:
            r.stop()
            emu.stop()


def check_config(tmp, routes):
    path = os.path.join(tmp, "c.json")
    with open(os.path.join(tmp, "shop.secret"), "w") as f:
        f.write("s\n")
    with open(path, "w") as f:
        json.dump(base_config(os.path.join(tmp, "state"), routes=routes), f, indent=2)
    p = subprocess.run([RELAYD, "--check-config", path], capture_output=True, text=True,
                       timeout=10)
    return path, p


def test_check_config_refuses(t):
    with TempDir() as tmp:
        fixed = dict(ROUTE, external_id="the_one_customer")
        path, p = check_config(tmp, [fixed])
        t.eq(p.returncode, 1, "an external_id without a pointer is refused")
        t.check(re.search(re.escape(path) + r":\d+:\d+: routes\[0\] \(shop-customers\): "
                          r"external_id: the template has no \{/pointer\}", p.stderr)
                is not None, "with file:line:column: %r" % p.stderr)
        dotted = dict(ROUTE, external_id="shop.customer_{/id}")
        path, p = check_config(tmp, [dotted])
        t.eq(p.returncode, 1, "a dot in the template's text is refused")
        t.check("cannot be in an external ID" in p.stderr, "said so: %r" % p.stderr)
        glued = dict(ROUTE, external_id="c_{/a}{/b}")
        path, p = check_config(tmp, [glued])
        t.eq(p.returncode, 1, "two pointers with nothing between them are refused")
        order = dict(ROUTE, name="shop-orders", model="sale.order",
                     external_id="shop_order_{/id}",
                     lines={"field": "order_line", "pointer": "/line_items",
                            "fields": {"name": {"pointer": "/title"}}})
        path, p = check_config(tmp, [order])
        t.eq(p.returncode, 1, "lines without an id in an upsert are refused")
        t.check(re.search(re.escape(path) + r":\d+:\d+: routes\[0\] \(shop-orders\): "
                          r"lines\.fields: \"id\" is required", p.stderr) is not None,
                "with file:line:column: %r" % p.stderr)
        order["lines"]["fields"]["id"] = "shop_order_line_{/id}"
        path, p = check_config(tmp, [order])
        t.eq(p.returncode, 0, "with an id they are fine: %r" % p.stderr)


if __name__ == "__main__":
    t = Results()
    t.run(test_distinct_values_distinct_records)
    t.run(test_number_forms_one_record)
    t.run(test_empty_id_dead_lettered)
    t.run(test_check_config_refuses)
    t.done()
