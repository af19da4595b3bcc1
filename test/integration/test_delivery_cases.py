"""More delivery cases through the real odoo-relayd and the emulator: write
and delete operations, unrouted events, a crash with a call in flight, the
SIGTERM drain, a run of 503s opening the circuit with Retry-After honoured,
JSON-2 chosen by protocol auto, and what a dead letter keeps."""
import json
import os
import signal

from harness import Emulator, Relay, Results, TempDir, store_ids, wait_for
from test_delivery import CUSTOMER_ROUTE, customer, delivery_config, partners, queue_empty

WRITE_ROUTE = {
    "name": "shop-email", "source": "shop", "topics": ["customers/email"], "operation": "write",
    "model": "res.partner", "external_id": "shop_customer_{/id}",
    "fields": {"email": {"pointer": "/email"}}, "missing": "fail",
}
DELETE_ROUTE = {
    "name": "shop-delete", "source": "shop", "topics": ["customers/delete"], "operation": "delete",
    "model": "res.partner", "external_id": "shop_customer_{/id}",
}


def calls(emu, key):
    return emu.stats().get("calls_by_method", {}).get(key, 0)


def test_write_delete_unrouted(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, delivery_config(tmp, emu, routes=[WRITE_ROUTE, DELETE_ROUTE, CUSTOMER_ROUTE]))
        state = r.cfg["state_dir"]
        try:
            r.post_shop(customer(9), "w-1")
            wait_for(lambda: partners(emu, "shop_customer_9"), what="created")
            r.post_shop({"id": 9, "email": "w@example.com"}, "w-2", topic="customers/email")
            wait_for(lambda: partners(emu, "shop_customer_9")[0]["email"] == "w@example.com",
                     what="write applied")
            t.eq(partners(emu, "shop_customer_9")[0]["name"], "Ada Lovelace", "write touched only its field")
            # write to a record that does not exist: permanent, dead-lettered
            r.post_shop({"id": 404, "email": "x@example.com"}, "w-3", topic="customers/email")
            wait_for(lambda: store_ids(state, "dead"), what="missing record dead-lettered")
            d = store_ids(state, "dead")[0]
            t.check("shop_customer_404" in (d["dead_reason"] or ""), "reason names the external id")
            # delete, and delete again: a record already gone counts as done
            r.post_shop({"id": 9}, "w-4", topic="customers/delete")
            wait_for(lambda: not partners(emu, "shop_customer_9"), what="deleted")
            r.post_shop({"id": 9}, "w-5", topic="customers/delete")
            wait_for(lambda: queue_empty(r), what="second delete done")
            t.eq(len(store_ids(state, "dead")), 1, "second delete is not a failure")
            # no route for the topic: dead-lettered with "no route" (the default)
            st, _, js = r.post_shop({"id": 1}, "w-6", topic="orders/create")
            wait_for(lambda: len(store_ids(state, "dead")) == 2, what="unrouted dead-lettered")
            un = [x for x in store_ids(state, "dead") if str(x["id"]) == js["id"]][0]
            t.check("no route" in un["dead_reason"], "reason says no route (%r)" % un["dead_reason"])
            t.eq(r.metric("relay_unrouted_total", 'source="shop"'), 1.0, "unrouted counted")
        finally:
            r.stop()
            emu.stop()


def test_unrouted_drop(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        cfg = delivery_config(tmp, emu)
        cfg["sources"]["shop"]["unrouted"] = "drop"
        r = Relay(tmp, cfg)
        try:
            r.post_shop({"id": 1}, "d-1", topic="orders/create")
            wait_for(lambda: r.metric("relay_unrouted_total", 'source="shop"') == 1.0, what="counted")
            wait_for(lambda: queue_empty(r), what="dropped")
            t.eq(store_ids(r.cfg["state_dir"], "dead"), [], "dropped, not dead-lettered")
        finally:
            r.stop()
            emu.stop()


def test_crash_with_call_in_flight(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, delivery_config(tmp, emu))
        try:
            emu.fault(mode="slow", delay_ms=3000)
            r.post_shop(customer(77), "crash-1")
            wait_for(lambda: calls(emu, "res.partner.load") >= 1, what="the call reached odoo")
            r.kill9()
            # the slow answer lands with nobody listening; the record exists in Odoo
            wait_for(lambda: partners(emu, "shop_customer_77"), timeout=10, what="odoo applied it")
            emu.fault(mode="none")
            r.start()
            wait_for(lambda: queue_empty(r), what="delivered again after restart")
            t.check(calls(emu, "res.partner.load") >= 2, "the in-flight event was sent again")
            t.eq(len(partners(emu, "shop_customer_77")), 1, "and it left one record")
        finally:
            r.stop()
            emu.stop()


def test_sigterm_drains(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        # one event per call, so that four calls are four events in flight
        # (test_batching.py drains batches)
        alone = dict(CUSTOMER_ROUTE, batch={"max_rows": 1})
        r = Relay(tmp, delivery_config(tmp, emu, routes=[alone], drain_timeout_ms=10000))
        try:
            emu.fault(mode="slow", delay_ms=1500)
            for i in range(12):
                r.post_shop(customer(i), "drain-%d" % i)
            wait_for(lambda: calls(emu, "res.partner.load") >= 4, what="4 calls in flight")
            t.eq(r.stop(signal.SIGTERM), 0, "clean exit after the drain")
            done = len(partners(emu))
            left = len(store_ids(r.cfg["state_dir"]))
            t.check(done >= 4, "calls in flight finished (%d delivered)" % done)
            t.eq(done + left, 12, "the rest stays queued, nothing lost")
            t.check("stopping" in r.logs(), "stop logged")
        finally:
            r.stop()
            emu.stop()


def test_503_run_opens_circuit(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        r = Relay(tmp, delivery_config(tmp, emu, circuit_failures=3))
        try:
            r.wait_delivering()
            emu.fault(mode="http_status", status=503, retry_after=1)
            for i in range(6):
                r.post_shop(customer(i), "503-%d" % i)
            wait_for(lambda: r.metric("relay_circuit_open") == 1.0, what="circuit open after 503s")
            # the failures that opened it were charged to their events
            charged = wait_for(lambda: [e for e in store_ids(r.cfg["state_dir"]) if e["attempts"] > 0],
                               what="503 charged as a transient failure")
            t.eq(len(store_ids(r.cfg["state_dir"])), 6, "nothing lost")
            for e in charged:
                last = e["history"][-1]
                t.eq(last["http_status"], 503, "attempt keeps the HTTP status")
                t.check(e["due_ms"] - last["at_ms"] >= 1000, "Retry-After honoured")
            emu.fault(mode="none")
            wait_for(lambda: queue_empty(r), timeout=30, what="drained after 503s stop")
            t.eq(len(partners(emu)), 6, "all delivered")
        finally:
            r.stop()
            emu.stop()


def test_json2_auto(t):
    with TempDir() as tmp:
        emu = Emulator(tmp, version=19)
        cfg = delivery_config(tmp, emu)
        cfg["odoo"]["protocol"] = "auto"
        r = Relay(tmp, cfg)
        try:
            r.post_shop(customer(3), "j2-1")
            wait_for(lambda: partners(emu, "shop_customer_3"), what="delivered over JSON-2")
            st = emu.stats()
            t.check(any(k.startswith("json2") or "/json/2" in k for k in st.get("calls_by_method", {}))
                    or calls(emu, "common.login") == 0, "JSON-2 used, no JSON-RPC login (%r)" % st)
            r.post_shop(customer(3), "j2-2")
            wait_for(lambda: queue_empty(r), what="second delivered")
            t.eq(len(partners(emu, "shop_customer_3")), 1, "idempotent over JSON-2 too")
        finally:
            r.stop()
            emu.stop()


def test_dead_letter_contents(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        route = dict(CUSTOMER_ROUTE, backoff={"base_ms": 20, "cap_ms": 50, "max_attempts": 3})
        r = Relay(tmp, delivery_config(tmp, emu, routes=[route]))
        try:
            r.wait_delivering()
            emu.fault(mode="serialization")  # every call, until cleared
            st, _, js = r.post_shop(customer(11), "dl-1")
            wait_for(lambda: store_ids(r.cfg["state_dir"], "dead"), what="gave up after 3 attempts")
            d = store_ids(r.cfg["state_dir"], "dead")[0]
            t.eq(d["attempts"], 3, "three attempts charged")
            t.eq(len(d["history"]), 3, "every attempt kept")
            t.eq([h["class"] for h in d["history"]], ["transient"] * 3, "classes kept")
            t.check(all("SerializationFailure" in (h["error_name"] or "") for h in d["history"]),
                    "odoo error names kept")
            t.check("gave up after 3 attempts" in d["dead_reason"], "reason says why")
            t.eq(d["route"], "shop-customers", "route kept")
            req = d["request"] or ""
            t.check('"load"' in req and "shop_customer_11" in req, "the request sent is kept")
            t.check("test-api-key" not in req, "without the API key")
            t.check("test-api-key" not in r.logs(), "the key is never logged")
        finally:
            r.stop()
            emu.stop()


if __name__ == "__main__":
    t = Results()
    t.run(test_write_delete_unrouted)
    t.run(test_unrouted_drop)
    t.run(test_crash_with_call_in_flight)
    t.run(test_sigterm_drains)
    t.run(test_503_run_opens_circuit)
    t.run(test_json2_auto)
    t.run(test_dead_letter_contents)
    t.done()
