"""Helpers shared by the emulator's tests (python3 standard library only).

Emulator starts odoo-emulator on port 0 with a port file, polls for the file
with a deadline, and always kills the process on the way out. Results
counts checks and prints "N passed, N failed" as the last line.
"""

import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

START_TIMEOUT = 10.0
HTTP_TIMEOUT = 10.0


class Emulator:
    def __init__(self, binary, *args):
        self.binary = binary
        self.args = list(args)
        self.proc = None
        self.stderr = None
        self.tmp = None
        self.port = self.control = None
        self.exit_code = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.exit_code = self.stop()

    def start(self):
        self.tmp = tempfile.mkdtemp(prefix="odoo-emu-")
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self):
        port_file = os.path.join(self.tmp, "ports")
        self.stderr = open(os.path.join(self.tmp, "stderr"), "w+")
        self.proc = subprocess.Popen(
            [self.binary, "--port-file", port_file] + self.args,
            stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if os.path.exists(port_file):
                with open(port_file) as f:
                    self.port, self.control = (int(x) for x in f.read().split())
                return
            if self.proc.poll() is not None:
                raise RuntimeError("odoo-emulator exited at start with status %d"
                                   % self.proc.returncode)
            time.sleep(0.02)
        raise RuntimeError("odoo-emulator did not write its port file in time")

    def stop(self):
        """Stops the emulator (SIGTERM, then SIGKILL); returns its exit
        status and prints what it wrote to stderr, if anything."""
        code = None
        if self.proc:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            code = self.proc.returncode
            self.proc = None
        if self.stderr:
            self.stderr.seek(0)
            text = self.stderr.read()
            if text:
                sys.stdout.write("odoo-emulator stderr:\n" + text)
            self.stderr.close()
            self.stderr = None
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        return code

    # -- calls ---------------------------------------------------------------

    def request(self, method, path, body=None, headers=None, port=None):
        return http_request(port or self.port, method, path, body, headers)

    def control_post(self, path, doc):
        status, _, body = http_request(self.control, "POST", path,
                                       json.dumps(doc).encode(),
                                       {"Content-Type": "application/json"})
        return status, json.loads(body)

    def control_get(self, path):
        status, _, body = http_request(self.control, "GET", path)
        return status, json.loads(body)

    def fault(self, **doc):
        return self.control_post("/control/fault", doc)

    def jsonrpc(self, service, method, *args):
        doc = {"jsonrpc": "2.0", "method": "call", "id": 1,
               "params": {"service": service, "method": method,
                          "args": list(args)}}
        status, _, body = self.request(
            "POST", "/jsonrpc", json.dumps(doc).encode(),
            {"Content-Type": "application/json"})
        return status, json.loads(body) if body else None

    def json2(self, model, method, doc, key=None, headers=None):
        h = {"Content-Type": "application/json"}
        if key:
            h["Authorization"] = "bearer " + key
        h.update(headers or {})
        status, hdrs, body = self.request(
            "POST", "/json/2/%s/%s" % (model, method),
            json.dumps(doc).encode(), h)
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = body
        return status, hdrs, parsed


def http_request(port, method, path, body=None, headers=None):
    """One request on a fresh connection: (status, {lower name: value}, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        return resp.status, hdrs, data
    finally:
        conn.close()


class Results:
    def __init__(self, title):
        self.title = title
        self.passed = 0
        self.failed = []

    def check(self, name, cond, detail=""):
        if cond:
            self.passed += 1
        else:
            self.failed.append((name, detail))
            print("FAIL %s %s" % (name, detail))
        return cond

    def finish(self):
        print("%s: %d checks" % (self.title, self.passed + len(self.failed)))
        for name, detail in self.failed:
            print("  failed: %s %s" % (name, detail))
        print("%d passed, %d failed" % (self.passed, len(self.failed)))
        sys.stdout.flush()
        return 1 if self.failed else 0


def binary_from_argv():
    if len(sys.argv) > 1:
        return sys.argv[1]
    env = os.environ.get("ODOO_EMULATOR")
    if env:
        return env
    sys.stderr.write("usage: %s PATH_TO_ODOO_EMULATOR (or $ODOO_EMULATOR)\n"
                     % sys.argv[0])
    sys.exit(2)
