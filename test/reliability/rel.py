"""Shared pieces of the reliability tests (issue 6). The process handling
comes from test/integration/harness.py; this adds what the reliability tests
have in common: the scale (CI or soak), distinctive secrets, a copy of
everything the daemon and its tools emit (for test_secrets.py), and /proc
readings of the daemon.

Environment:
  RELAY_BUILD_DIR  the build directory (as for the integration tests)
  RELAY_SCALE      "ci" (default) or "soak": how long and how hard
  RELAY_EMIT_DIR   where to keep what the daemon and tools said
                   [RELAY_BUILD_DIR/test/reliability/emitted]
"""
import json
import os
import shutil
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import harness  # noqa: E402
from harness import (BUILD, RELAYCTL, STORE_DUMP, Emulator, Relay, Results, TempDir,  # noqa: E402,F401
                     base_config, shopify_sig, store_ids, wait_for)

SCALE = os.environ.get("RELAY_SCALE", "ci")
SOAK = SCALE == "soak"

# Secrets no output may ever contain. Distinctive, so that a hit is not a
# coincidence; test_secrets.py greps for exactly these.
WEBHOOK_SECRET = b"rel-hook-secret-Zq8v3Kp1"
ODOO_API_KEY = b"rel-odoo-key-Wm4x7Ty2"
SECRETS = (WEBHOOK_SECRET, ODOO_API_KEY)

EMIT_DIR = os.environ.get("RELAY_EMIT_DIR", os.path.join(BUILD, "test", "reliability", "emitted"))


def scaled(ci, soak):
    return soak if SOAK else ci


def have_relayctl():
    return os.access(RELAYCTL, os.X_OK)


class Emit:
    """What one test run made the daemon and its tools say, kept in
    EMIT_DIR/<test>/ for test_secrets.py: daemon logs, error bodies,
    /metrics, store-dump and odoo-relayctl output."""

    def __init__(self, test):
        self.dir = os.path.join(EMIT_DIR, test)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir, exist_ok=True)
        self.lock = threading.Lock()

    def add(self, name, data):
        if isinstance(data, str):
            data = data.encode("utf-8", "replace")
        with self.lock:
            with open(os.path.join(self.dir, name), "ab") as f:
                f.write(data)
                if not data.endswith(b"\n"):
                    f.write(b"\n")

    def keep_file(self, path, name):
        """Copy path (again: the latest copy wins) as name."""
        if os.path.exists(path):
            with self.lock:
                shutil.copy(path, os.path.join(self.dir, name))


class RelRelay(Relay):
    """A Relay signing with WEBHOOK_SECRET, delivering with ODOO_API_KEY,
    and keeping every non-2xx answer body, /metrics and its log in emit."""

    def __init__(self, tmp, cfg, emit=None, **kw):
        self.emit = emit
        kw.setdefault("secrets", {"shop.secret": WEBHOOK_SECRET, "odoo.key": ODOO_API_KEY})
        super().__init__(tmp, cfg, **kw)

    def request(self, method, path, body=b"", headers=None, port=None, timeout=10):
        status, hdrs, data = super().request(method, path, body, headers, port, timeout)
        if self.emit and (status >= 300 or path == "/metrics"):
            self.emit.add("http-bodies", b"%d %s %s\n" % (status, path.encode(), data))
        return status, hdrs, data

    def post_shop(self, obj, webhook_id, topic="customers/create", secret=WEBHOOK_SECRET, **kw):
        return super().post_shop(obj, webhook_id, topic=topic, secret=secret, **kw)

    def stop(self, *a, **kw):
        rc = super().stop(*a, **kw)
        if self.emit:
            self.emit.keep_file(self.log_path, "relayd-%s.log" % os.path.basename(self.tmp))
        return rc

    def ctl(self, *args, check=True):
        p = super().ctl(*args, check=check)
        if self.emit:
            self.emit.add("relayctl", "$ odoo-relayctl %s\n%s%s" % (" ".join(args), p.stdout, p.stderr))
        return p


def emulator(tmp, **kw):
    """The emulator, accepting ODOO_API_KEY for admin."""
    extra = list(kw.pop("extra", ())) + ["--api-key", "admin:" + ODOO_API_KEY.decode()]
    return Emulator(tmp, extra=extra, **kw)


def odoo_conf(emu):
    return {"url": emu.url, "database": "test", "login": "admin", "api_key_file": "odoo.key",
            "protocol": "jsonrpc"}


# Each event's external ID is rel_<n>; the route writes the event's values.
EVENT_ROUTE = {
    "name": "rel-events",
    "source": "shop",
    "topics": ["*"],
    "operation": "upsert",
    "model": "res.partner",
    "external_id": "rel_{/n}",
    "fields": {"name": "event {/n}", "email": {"pointer": "/email"}},
}


def event(n, lane=None, email=None):
    return {"n": n, "id": lane if lane is not None else n, "email": email or "e%d@example.com" % n}


def delivery_conf(**over):
    d = {"backoff": {"base_ms": 50, "cap_ms": 500, "max_attempts": 1000, "max_age_s": 86400},
         "probe_base_ms": 100, "probe_cap_ms": 500, "circuit_failures": 5, "drain_timeout_ms": 2000}
    d.update(over)
    return d


def applied(emu):
    """{external id: [records]} of the records the relay wrote (rel_*)."""
    out = {}
    for r in emu.records("res.partner"):
        for x in r.get("xmlids", []):
            if x.startswith("odoo_relay.rel_"):
                out.setdefault(x[len("odoo_relay."):], []).append(r)
    return out


def dump(state, which="events", emit=None):
    """store_ids, keeping the output for the secrets test."""
    recs = store_ids(state, which)
    if emit:
        emit.add("store-dump", "\n".join(json.dumps(r) for r in recs))
    return recs


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def run_tool(args, emit=None, timeout=60):
    """Run a tool; keep what it printed. Returns the CompletedProcess."""
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if emit:
        emit.add("tools", "$ %s\nexit %d\n%s%s" % (" ".join(os.path.basename(a) if i == 0 else a
                                                       for i, a in enumerate(args)),
                                                   p.returncode, p.stdout, p.stderr))
    return p


def figure(name, value, how):
    """One figure for the README's Reliability section, greppable as FIGURE."""
    print("FIGURE %s: %s  [%s]" % (name, value, how))
    sys.stdout.flush()
