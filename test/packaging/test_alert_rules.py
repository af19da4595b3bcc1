"""The Prometheus alerting rules shipped in packaging/: promtool finds them
valid (check rules) and they fire when they should (test rules, on
odoo-relay-alerts.test.yml), and every metric they use is one a running
odoo-relayd exports on /metrics, with the labels the rules group by.
promtool comes with Debian's prometheus package (bootstrap.sh test
installs it); without it this test fails rather than pass unseen."""
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "test", "integration"))

from harness import Emulator, Relay, Results, TempDir, base_config, store_ids, wait_for  # noqa: E402

RULES = os.path.join(TOP, "packaging", "odoo-relay-alerts.yml")
TESTS = os.path.join(HERE, "odoo-relay-alerts.test.yml")


def promtool(t, *args):
    exe = shutil.which("promtool")
    if not t.check(exe is not None, "promtool is installed (apt-get install prometheus)"):
        return None
    p = subprocess.run([exe] + list(args), capture_output=True, text=True, cwd=HERE, timeout=120)
    return p


def test_promtool(t):
    p = promtool(t, "check", "rules", RULES)
    if p:
        t.check(p.returncode == 0 and "SUCCESS" in p.stdout, "check rules:\n" + p.stdout + p.stderr)
    p = promtool(t, "test", "rules", TESTS)
    if p:
        t.check(p.returncode == 0 and "SUCCESS" in p.stdout, "test rules:\n" + p.stdout + p.stderr)


def test_metrics_exported(t):
    text = open(RULES).read()
    exprs = re.findall(r"expr: (.*)", text)
    used = sorted(set(re.findall(r"\b(relay_[a-z_]+)\b", " ".join(exprs))))
    t.check(len(used) >= 6, "the rules use the relay's metrics: %r" % used)
    with TempDir() as tmp:
        emu = Emulator(tmp)
        cfg = base_config(os.path.join(tmp, "state"),
                          odoo={"url": emu.url, "database": "test", "login": "admin",
                                "api_key_file": "odoo.key", "protocol": "jsonrpc"},
                          routes=[{"name": "shop-customers", "source": "shop",
                                   "topics": ["customers/*"], "operation": "upsert",
                                   "model": "res.partner", "external_id": "shop_customer_{/id}",
                                   "fields": {"name": {"pointer": "/name"}}}])
        r = Relay(tmp, cfg)
        try:
            r.wait_delivering()
            st, _, _ = r.post_shop({"id": 1, "name": "Ada"}, "wh-1")
            t.eq(st, 202, "accepted")
            # an event no route takes: a dead letter
            st, _, _ = r.request("POST", "/hooks/open", b'{"id":"x1","type":"nothing"}',
                                 {"Content-Type": "application/json"})
            t.eq(st, 202, "accepted")
            wait_for(lambda: store_ids(cfg["state_dir"], "dead"), what="the dead letter")
            _, _, data = r.request("GET", "/metrics", port=r.admin_port)
            have = {}
            for line in data.decode().splitlines():
                m = re.match(r"(\w+)(?:\{(.*)\})? ", line)
                if m:
                    have.setdefault(m.group(1), set()).update(
                        re.findall(r'(\w+)="', m.group(2) or ""))
            for name in used:
                t.check(name in have, "%s is exported" % name)
            # the labels the rules group or name by
            for name, label in (("relay_dead_lettered_total", "route"),
                                ("relay_circuit_open", "destination"),
                                ("relay_ack_slow_total", "source")):
                t.check(label in have.get(name, set()), "%s has label %s" % (name, label))
        finally:
            r.stop()
            emu.stop()


if __name__ == "__main__":
    t = Results()
    t.run(test_promtool)
    t.run(test_metrics_exported)
    t.done()
