#!/usr/bin/env python3
"""Copy the Odoo captures into the tree, trimming the tracebacks.

The captures of a real Odoo server carry a `debug` traceback of 1-6 KB in
every error answer. Nothing in the project reads past its first and last
lines, so the copies keep the first line and the last three, joined with
"\\n...\\n"; everything else (requests, headers, metadata, non-JSON bodies)
is copied as it is. Content-Length in the copied headers is fixed up so a
copy stays a consistent HTTP answer.

Run once to refresh test/fixtures/odoo/captures from a new capture run
(SOURCE_DIR: wherever the capture tool wrote its cases and INDEX.md):

    python3 test/emulator/trim_captures.py SOURCE_DIR \
        test/fixtures/odoo/captures
"""

import json
import os
import re
import shutil
import sys


def trim_debug(text):
    lines = text.rstrip("\n").split("\n")
    if len(lines) <= 4:
        return text
    return lines[0] + "\n...\n" + "\n".join(lines[-3:]) + "\n"


def trim_body(raw):
    """Return the trimmed body, or None when there is nothing to trim."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    err = doc.get("error")
    data = err.get("data") if isinstance(err, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("debug"), str):
        return None
    data["debug"] = trim_debug(data["debug"])
    # Odoo serialises with Python's defaults, so this keeps the layout.
    return json.dumps(doc)


def fix_length(headers, length):
    return re.sub(r"(?mi)^(Content-Length:)\s*\d+",
                  lambda m: "%s %d" % (m.group(1), length), headers)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: trim_captures.py SOURCE_DIR DEST_DIR\n")
        return 2
    src, dst = argv[1], argv[2]
    os.makedirs(dst, exist_ok=True)
    trimmed = copied = 0
    for name in sorted(os.listdir(src)):
        path = os.path.join(src, name)
        if not os.path.isfile(path):
            continue
        if name.endswith(".response.body"):
            with open(path, encoding="utf-8") as f:
                raw = f.read()
            body = trim_body(raw)
            if body is not None:
                with open(os.path.join(dst, name), "w", encoding="utf-8") as f:
                    f.write(body)
                hname = name[:-len(".body")] + ".headers"
                hpath = os.path.join(src, hname)
                if os.path.exists(hpath):
                    with open(hpath, encoding="utf-8", newline="") as f:
                        headers = f.read()
                    with open(os.path.join(dst, hname), "w", encoding="utf-8",
                              newline="") as f:
                        f.write(fix_length(headers, len(body.encode())))
                trimmed += 1
                continue
        if name.endswith(".response.headers"):
            body_name = name[:-len(".headers")] + ".body"
            with open(os.path.join(src, body_name), encoding="utf-8") as f:
                if trim_body(f.read()) is not None:
                    continue  # written with its trimmed body
        shutil.copyfile(path, os.path.join(dst, name))
        copied += 1
    print("%d bodies trimmed, %d files copied as they are" % (trimmed, copied))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
