"""Integration test harness: runs the real odoo-relayd (and the Odoo emulator)
on 127.0.0.1 with port 0 and a temporary state directory, and talks to them
over HTTP. Python standard library only.

Every wait polls a condition with a deadline; nothing sleeps to synchronise.
Every process started is killed at the end, whatever happens.
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

BUILD = os.environ.get("RELAY_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
RELAYD = os.environ.get("RELAYD", os.path.join(BUILD, "daemon", "odoo-relayd"))
RELAYCTL = os.environ.get("RELAYCTL", os.path.join(BUILD, "daemon", "odoo-relayctl"))
EMULATOR = os.environ.get("ODOO_EMULATOR", os.path.join(BUILD, "test", "emulator", "odoo-emulator"))
STORE_DUMP = os.environ.get("STORE_DUMP", os.path.join(BUILD, "test", "integration", "store-dump"))

SECRET = b"test-shop-secret"


def wrapped(program, env_name):
    """program, behind the command in $env_name if set: RELAYD_WRAPPER="valgrind
    --log-file=..." runs every odoo-relayd under valgrind (test/reliability/valgrind.sh),
    RELAYCTL_WRAPPER likewise odoo-relayctl."""
    return shlex.split(os.environ.get(env_name, "")) + [program]


def wait_for(cond, timeout=10.0, what="condition", interval=0.02):
    """Poll cond() until it returns a true value; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def shopify_sig(body, secret=SECRET):
    return base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode()


class Results:
    """Counts checks; prints the closing 'N passed, N failed' line."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            frame = traceback.extract_stack(limit=2)[0]
            print("FAIL %s (line %d)" % (what, frame.lineno), file=sys.stderr)
        return cond

    def eq(self, got, want, what):
        ok = got == want
        if not ok:
            what = "%s: got %r, want %r" % (what, got, want)
        return self.check(ok, what)

    def run(self, fn, *args):
        print("-- %s" % fn.__name__, file=sys.stderr)
        try:
            fn(self, *args)
        except Exception:
            self.failed += 1
            traceback.print_exc()

    def done(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed else 0)


def base_config(state_dir, **over):
    cfg = {
        "listen": ["127.0.0.1:0"],
        "state_dir": state_dir,
        "map_size_mb": 64,
        "limits": {"max_body_bytes": 65536, "header_timeout_ms": 1000, "body_timeout_ms": 1000},
        "sources": {
            "shop": {
                "verify": {"scheme": "shopify", "secret_file": "shop.secret"},
                "dedup": {"header": "X-Shopify-Webhook-Id"},
                "topic": {"header": "X-Shopify-Topic"},
                "lane": {"pointer": "/id"},
                "keep_headers": ["X-Shopify-Topic", "X-Shopify-Shop-Domain"],
                "require_json": True,
            },
            "open": {
                "verify": {"scheme": "none"},
                "dedup": {"pointer": "/id"},
                "topic": {"pointer": "/type"},
            },
        },
    }
    cfg.update(over)
    return cfg


class Emulator:
    def __init__(self, tmp, version=18, extra=()):
        self.port_file = os.path.join(tmp, "emulator.ports")
        self.log = open(os.path.join(tmp, "emulator.log"), "w")
        self.proc = subprocess.Popen(
            [EMULATOR, "--port-file", self.port_file, "--version", str(version), "--db", "test",
             "--user", "admin:admin", "--api-key", "admin:test-api-key"] + list(extra),
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(self.port_file) or self.proc.poll() is not None,
                 what="emulator ports")
        ports = open(self.port_file).read().split()
        self.port, self.control_port = int(ports[0]), int(ports[1])
        self.url = "http://127.0.0.1:%d" % self.port

    def control(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.control_port, timeout=10)
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, path, body=data, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        text = r.read()
        c.close()
        return json.loads(text) if text else None

    def fault(self, **kw):
        return self.control("POST", "/control/fault", kw)

    def records(self, model="res.partner"):
        return self.control("GET", "/control/records?model=" + model)

    def stats(self):
        return self.control("GET", "/control/stats")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class Relay:
    """One odoo-relayd process on a configuration written to a temp dir."""

    def __init__(self, tmp, cfg, secrets=None, start=True, env=None):
        self.tmp = tmp
        self.cfg = cfg
        self.config_path = os.path.join(tmp, "odoo-relay.json")
        self.listen_file = os.path.join(tmp, "listen")
        self.log_path = os.path.join(tmp, "relayd.log")
        self.proc = None
        self.env = env
        for name, value in (secrets or {"shop.secret": SECRET, "odoo.key": b"test-api-key"}).items():
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(value + b"\n")
        self.write_config(cfg)
        if start:
            self.start()

    def write_config(self, cfg):
        self.cfg = cfg
        with open(self.config_path, "w") as f:
            json.dump(cfg, f, indent=2)

    def start(self):
        if os.path.exists(self.listen_file):
            os.unlink(self.listen_file)
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)
        env.pop("NOTIFY_SOCKET", None)
        if self.env:
            env.update(self.env)
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(wrapped(RELAYD, "RELAYD_WRAPPER") +
                                     ["--config", self.config_path, "--listen-file", self.listen_file],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        wait_for(lambda: os.path.exists(self.listen_file) or self.proc.poll() is not None,
                 what="relayd to listen")
        if self.proc.poll() is not None:
            raise AssertionError("odoo-relayd exited with %s:\n%s" % (self.proc.returncode, self.logs()))
        lines = open(self.listen_file).read().split("\n")
        self.addr = lines[0].split()[0]
        self.port = int(self.addr.rsplit(":", 1)[1])
        admin = [l.split()[0] for l in lines if l.endswith(" admin")]
        self.admin_port = int(admin[0].rsplit(":", 1)[1]) if admin else self.port

    def logs(self):
        try:
            return open(self.log_path).read()
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        return self.proc.returncode if self.proc else None

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def request(self, method, path, body=b"", headers=None, port=None, timeout=10):
        c = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, dict(r.getheaders()), data
        finally:
            c.close()

    def post_shop(self, obj, webhook_id, topic="customers/create", secret=SECRET, body=None,
                  headers=None):
        body = body if body is not None else json.dumps(obj).encode()
        h = {"Content-Type": "application/json", "X-Shopify-Topic": topic,
             "X-Shopify-Webhook-Id": webhook_id, "X-Shopify-Hmac-Sha256": shopify_sig(body, secret),
             "X-Shopify-Shop-Domain": "example.myshopify.com"}
        h.update(headers or {})
        status, hdrs, data = self.request("POST", "/hooks/shop", body, h)
        try:
            js = json.loads(data) if data else None
        except ValueError:
            js = None
        return status, hdrs, js

    def metric(self, name, label=None):
        """The value of metric name: the sum of its series that carry every
        label pair of label ('route="a"' or 'route="a",destination="b"'),
        or of all its series without one."""
        status, _, data = self.request("GET", "/metrics", port=self.admin_port)
        want = set(re.findall(r'(\w+)="([^"]*)"', label or ""))
        total = 0.0
        for line in data.decode().splitlines():
            m = re.match(r"(\w+)(?:\{(.*)\})? (\S+)$", line)
            if not m or m.group(1) != name:
                continue
            have = set(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
            if want <= have:
                total += float(m.group(3))
        return total

    def wait_delivering(self, timeout=10):
        """Wait until delivery has probed Odoo and the circuit is closed."""
        wait_for(lambda: self.metric("relay_circuit_open") == 0.0, timeout=timeout,
                 what="delivery to start")

    def ctl(self, *args, check=True):
        p = subprocess.run(wrapped(RELAYCTL, "RELAYCTL_WRAPPER") + ["--config", self.config_path] + list(args),
                           capture_output=True, text=True, timeout=60)
        if check and p.returncode not in (0, 1):
            raise AssertionError("odoo-relayctl %s: exit %d: %s" % (" ".join(args), p.returncode, p.stderr))
        return p


def store_ids(state_dir, which="events"):
    """The ids in the store's events or dead database, read by a separate process."""
    p = subprocess.run([STORE_DUMP, state_dir, which], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("store-dump failed: %s" % p.stderr)
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


class TempDir:
    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="relay-it-")
        return self.path

    def __exit__(self, *exc):
        if os.environ.get("RELAY_KEEP_TMP"):
            print("kept %s" % self.path, file=sys.stderr)
        else:
            shutil.rmtree(self.path, ignore_errors=True)
        return False
