"""SIGHUP reload of odoo-relayd: a changed route and a rotated webhook secret
take effect without a restart or a lost event; a broken file is refused,
logged, and the old configuration stays in force."""
import copy
import json
import os
import re
import signal
import subprocess
import time

from harness import RELAYD, Emulator, Relay, Results, TempDir, base_config, store_ids, wait_for
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


def ready(r):
    st, _, _ = r.request("GET", "/readyz", port=r.admin_port, timeout=5)
    return st


def test_reload_all_or_nothing(t):
    """Every step of a reload that can fail refuses the whole of it: the old
    configuration stays in force, in use by ingest and delivery alike."""
    with TempDir() as tmp:
        emu = Emulator(tmp)
        cfg = delivery_config(tmp, emu)
        r = Relay(tmp, cfg)
        n = [0]

        def still_working(what):
            n[0] += 1
            st, _, _ = r.post_shop(customer(100 + n[0]), "aon-%d" % n[0])
            t.eq(st, 202, what + ": still accepting")
            wait_for(lambda: partners(emu, "shop_customer_%d" % (100 + n[0])),
                     what=what + ": still delivering")
            t.eq(ready(r), 200, what + ": still ready")

        try:
            r.wait_delivering()
            fifo = os.path.join(tmp, "fifo.secret")
            os.mkfifo(fifo)
            broken = []
            # a route the compiler refuses
            bad = copy.deepcopy(cfg)
            bad["routes"] = [dict(CUSTOMER_ROUTE, operation="frobnicate")]
            broken.append(("a bad route", bad, "routes[0]"))
            # a secret file that is gone
            bad = copy.deepcopy(cfg)
            bad["sources"]["shop"]["verify"]["secret_file"] = "missing.secret"
            broken.append(("a missing secret file", bad, "missing.secret"))
            # a secret file that is a FIFO: refused at once, not waited on
            bad = copy.deepcopy(cfg)
            bad["sources"]["shop"]["verify"]["secret_file"] = "fifo.secret"
            broken.append(("a FIFO secret file", bad, "is not a regular file (a FIFO)"))
            # no odoo target: delivery cannot take it, so nothing may change
            bad = copy.deepcopy(cfg)
            del bad["odoo"]
            broken.append(("no destination", bad, "no destination"))
            for what, bad, text in broken:
                r.write_config(bad)
                reload_and_wait(r, "reload refused")
                last = [l for l in r.logs().splitlines() if "reload refused" in l][-1]
                t.check(text in last, what + ": the refusal says why (%s)" % last[-160:])
                t.check(r.proc.poll() is None, what + ": still running")
                still_working(what)
            # a good file after all that applies, and the old secret is still the one
            r.write_config(cfg)
            reload_and_wait(r, "configuration reloaded")
            still_working("after the refusals")
            wait_for(lambda: queue_empty(r), what="queue drained")
            t.eq(store_ids(r.cfg["state_dir"], "dead"), [], "nothing dead")
        finally:
            t.eq(r.stop(), 0, "clean exit")
            emu.stop()


def test_reload_starts_delivery(t):
    """A daemon started without an odoo target stores events; a reload that
    adds one delivers them."""
    with TempDir() as tmp:
        emu = Emulator(tmp)
        full = delivery_config(tmp, emu)
        bare = copy.deepcopy(full)
        del bare["odoo"]
        r = Relay(tmp, bare)
        try:
            st, _, _ = r.post_shop(customer(7), "sd-1")
            t.eq(st, 202, "stored without a target")
            t.check("no destination configured" in r.logs(), "said so at start")
            r.write_config(full)
            reload_and_wait(r, "configuration reloaded")
            wait_for(lambda: partners(emu, "shop_customer_7"), what="delivered after the reload")
        finally:
            t.eq(r.stop(), 0, "clean exit")
            emu.stop()


def test_circuit_truth(t):
    """The circuit's "since" is when it opened, not when the last probe
    failed; one opened by a configuration failure and cleared by a reload
    logs that it closed; its text is one line."""
    with TempDir() as tmp:
        emu = Emulator(tmp)
        good = delivery_config(tmp, emu)
        wrong = copy.deepcopy(good)
        wrong["odoo"]["database"] = "nosuchdb"
        r = Relay(tmp, wrong)
        try:
            def status():
                p = r.ctl("status", "--json", check=False)
                return json.loads(p.stdout)

            wait_for(lambda: (status().get("circuit") or {}).get("circuit") == "open",
                     what="circuit open on a wrong database")
            first = status()["circuit"]
            # several probes fail meanwhile (probe_cap_ms is 400)
            probes = emu.stats().get("calls", 0)
            wait_for(lambda: emu.stats().get("calls", 0) >= probes + 4, what="more probes")
            later = status()["circuit"]
            t.eq(later["since_ms"], first["since_ms"], "open since the opening, not the last probe")
            t.check("\\n" not in json.dumps(later["error"]) and "\n" not in later["error"],
                    "the reason is one line: %r" % later["error"])
            p = r.ctl("status", check=False)
            t.check("\\n" not in p.stdout, "status prints no literal \\n")
            t.check("does not exist" in later["error"], "the reason names the database")
            r.write_config(good)
            reload_and_wait(r, "configuration reloaded")
            wait_for(lambda: "circuit closed" in r.logs(), what="closing logged after the reload")
            r.post_shop(customer(9), "ct-1")
            wait_for(lambda: partners(emu, "shop_customer_9"), what="delivering")
        finally:
            t.eq(r.stop(), 0, "clean exit")
            emu.stop()


def test_check_config_state_dir(t):
    """--check-config reports what would stop the daemon at start, and the
    warning the daemon logs for a source that verifies nothing."""
    with TempDir() as tmp:
        path = os.path.join(tmp, "c.json")
        def check(state_dir):
            cfg = base_config(state_dir)
            with open(os.path.join(tmp, "shop.secret"), "w") as f:
                f.write("s\n")
            with open(path, "w") as f:
                json.dump(cfg, f, indent=2)
            return subprocess.run([RELAYD, "--check-config", path], capture_output=True, text=True,
                                  timeout=10)
        p = check(os.path.join(tmp, "state"))
        t.eq(p.returncode, 0, "a directory that can be created is fine")
        t.check("warning: source open verifies no signature" in p.stderr,
                "the scheme none warning, with its place: " + p.stderr.strip())
        t.check(path + ":" in p.stderr.split("warning")[0], "the warning names file:line:column")
        p = check(os.path.join(tmp, "no", "such", "dir"))
        t.eq(p.returncode, 1, "a directory whose parent is missing is refused")
        t.check(re.search(re.escape(path) + r":\d+:\d+: state_dir", p.stderr) is not None
                and "does not exist" in p.stderr,
                "named with file:line:column: " + p.stderr.strip())
        p = check(path)
        t.eq(p.returncode, 1, "a file is not a state directory")
        t.check("is not a directory" in p.stderr, "said so")
        ro = os.path.join(tmp, "ro")
        os.mkdir(ro, 0o555)
        if os.geteuid() == 0:
            # root writes anywhere; ask as nobody, whom the mode keeps out
            cfg_ro = base_config(ro)
            with open(path, "w") as f:
                json.dump(cfg_ro, f, indent=2)
            os.chmod(tmp, 0o755)
            os.chmod(os.path.join(tmp, "shop.secret"), 0o644)
            os.chmod(path, 0o644)
            p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                RELAYD, "--check-config", path], capture_output=True, text=True,
                               timeout=10)
        else:
            p = check(ro)
        t.eq(p.returncode, 1, "a directory the user cannot write is refused")
        t.check("is not writable" in p.stderr, "said so: " + p.stderr.strip())
        # a FIFO secret: refused at once, never waited on
        fifo = os.path.join(tmp, "fifo.secret")
        os.mkfifo(fifo)
        cfg = base_config(os.path.join(tmp, "state"))
        cfg["sources"]["shop"]["verify"]["secret_file"] = fifo
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2)
        p = subprocess.run([RELAYD, "--check-config", path], capture_output=True, text=True,
                           timeout=10)
        t.eq(p.returncode, 1, "a FIFO secret file is refused")
        t.check("is not a regular file (a FIFO)" in p.stderr and path + ":" in p.stderr,
                "with file:line:column: " + p.stderr.strip())


if __name__ == "__main__":
    t = Results()
    t.run(test_reload)
    t.run(test_reload_all_or_nothing)
    t.run(test_reload_starts_delivery)
    t.run(test_circuit_truth)
    t.run(test_check_config_state_dir)
    t.done()
