#!/usr/bin/env python3
"""`cmake --install BUILD --prefix DIR` puts every file under DIR: the
systemd units, sysusers.d, tmpfiles.d and the journal catalog included,
whatever prefix the build was configured with.

usage: test_install_prefix.py CMAKE BUILD_DIR"""
import os
import shutil
import subprocess
import sys
import tempfile


def main():
    cmake, build = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="relay-install-")
    failed = 0
    try:
        prefix = os.path.join(tmp, "root")
        out = subprocess.run([cmake, "--install", build, "--prefix", prefix],
                             capture_output=True, text=True)
        if out.returncode != 0:
            print("FAIL cmake --install: " + out.stderr)
            return 1
        installed = [line.split(": ", 1)[1] for line in out.stdout.splitlines()
                     if line.startswith("-- Installing: ") or line.startswith("-- Up-to-date: ")]
        outside = [p for p in installed if not p.startswith(prefix + os.sep)]
        for p in outside:
            print("FAIL installed outside the prefix: " + p)
        failed += bool(outside)
        for want in ("lib/systemd/system/odoo-relay.service", "lib/systemd/system/odoo-relay.socket",
                     "lib/sysusers.d/odoo-relay.conf", "lib/tmpfiles.d/odoo-relay.conf",
                     "lib/systemd/catalog/odoo-relay.catalog"):
            ok = os.path.exists(os.path.join(prefix, want))
            print(("ok   " if ok else "FAIL ") + "installed " + want)
            failed += not ok
        print("%d files installed" % len(installed))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
