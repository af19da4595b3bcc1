"""SIGHUP reload of odoo-relayd: a changed route and a rotated webhook secret
take effect without a restart or a lost event; a broken file is refused,
logged, and the old configuration stays in force."""
import copy
import signal

from harness import Emulator, Relay, Results, TempDir, store_ids, wait_for
from test_delivery import CUSTOMER_ROUTE, customer, delivery_config, partners, queue_empty


def reload_and_wait(r, marker):
    """Send SIGHUP and wait for the log line that says how it went."""
    before = r.logs().count(marker)
    r.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: r.logs().count(marker) > before, what="reload outcome: " + marker)


def test_reload(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        cfg = delivery_config(tmp, emu)
        r = Relay(tmp, cfg)
        try:
            r.wait_delivering()
            r.post_shop(customer(1), "rl-1")
            wait_for(lambda: partners(emu, "shop_customer_1"), what="delivered before reload")

            # a new route: the external id template changes
            new = copy.deepcopy(cfg)
            route = dict(CUSTOMER_ROUTE, external_id="shop_person_{/id}")
            new["routes"] = [route]
            r.write_config(new)
            reload_and_wait(r, "configuration reloaded")
            r.post_shop(customer(2), "rl-2")
            wait_for(lambda: partners(emu, "shop_person_2"), what="the new route applied")
            t.eq(partners(emu, "shop_customer_2"), [], "the old route is gone")

            # a broken file: refused, the old configuration stays
            with open(r.config_path, "w") as f:
                f.write('{\n  "listen": ["127.0.0.1:0"],\n  "bogus": true\n}\n')
            reload_and_wait(r, "reload refused")
            t.check(r.config_path + ":3:3:" in r.logs(), "the refusal names file:line:column")
            t.check(r.proc.poll() is None, "still running")
            st, _, _ = r.post_shop(customer(3), "rl-3")
            t.eq(st, 202, "still accepting")
            wait_for(lambda: partners(emu, "shop_person_3"), what="still delivering with the kept config")

            # a rotated webhook secret, read again from its file on reload
            r.write_config(new)
            with open(tmp + "/shop.secret", "wb") as f:
                f.write(b"rotated-secret\n")
            reload_and_wait(r, "configuration reloaded")
            st, _, _ = r.post_shop(customer(4), "rl-4")
            t.eq(st, 401, "the old secret no longer verifies")
            st, _, _ = r.post_shop(customer(4), "rl-5", secret=b"rotated-secret")
            t.eq(st, 202, "the new secret does")
            wait_for(lambda: queue_empty(r), what="queue drained")
            t.eq(store_ids(r.cfg["state_dir"], "dead"), [], "nothing lost or dead across reloads")
        finally:
            t.eq(r.stop(), 0, "clean exit")
            emu.stop()


if __name__ == "__main__":
    t = Results()
    t.run(test_reload)
    t.done()
