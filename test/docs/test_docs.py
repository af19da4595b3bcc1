"""The manual pages say what the program does: every HTTP status the
server can send is listed in odoo-relayd(8), the attempt history size in
odoo-relayctl(8) is the one the record module keeps, and no key the
configuration refuses is documented as if it worked."""
import os
import re
import sys

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def read(*path):
    with open(os.path.join(TOP, *path), encoding="utf-8") as f:
        return f.read()


def statuses_sent():
    """Every status literal passed to the server's answer functions."""
    found = set()
    for name in ("http_server.c", "ingest.c", "query.c"):
        src = read("lib", name)
        for m in re.finditer(r"(?:conn_fail(?:_with)?|relay_http_respond(?:_error)?)\(\s*[\w>.-]+,\s*(\d{3})", src):
            found.add(int(m.group(1)))
    return found


def roff_text(page):
    """The page's text with the roff escapes that split numbers undone."""
    return page.replace("\\-", "-").replace("\\&", "")


def main():
    failed = passed = 0

    def check(cond, what):
        nonlocal failed, passed
        print(("ok   " if cond else "FAIL ") + what)
        failed += not cond
        passed += bool(cond)

    relayd = roff_text(read("packaging", "odoo-relayd.8"))
    sent = statuses_sent()
    check(len(sent) >= 10, "found the statuses the server sends: %s" % sorted(sent))
    for st in sorted(sent):
        check(re.search(r"\b%d\b" % st, relayd) is not None,
              "odoo-relayd(8) documents status %d" % st)

    hist = re.search(r"#define RELAY_RECORD_MAX_HISTORY (\d+)", read("include", "odoo_relay", "record.h"))
    relayctl = roff_text(read("packaging", "odoo-relayctl.8"))
    m = re.search(r"the most recent ones \((\d+) in all", relayctl)
    check(hist is not None and m is not None and m.group(1) == hist.group(1),
          "odoo-relayctl(8) gives the attempt history size the record keeps (%s, %s)" %
          (m and m.group(1), hist and hist.group(1)))
    check("secret files included" not in relayctl,
          "odoo-relayctl(8) does not claim that the CLI reads secret files")

    conf = roff_text(read("packaging", "odoo-relay.conf.5"))
    example = read("packaging", "odoo-relay.json")
    for key in ("retention_s", "retain_body", "deadline_ms"):
        check(re.search(r"^\.BR? %s\b" % key, read("packaging", "odoo-relay.conf.5"), re.M)
              is not None, "odoo-relay.conf(5) documents %s" % key)

    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
