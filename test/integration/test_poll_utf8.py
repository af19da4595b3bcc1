"""A poller's error text is cut to fit its state; the cut must not split a
character. Odoo refuses a login that is 300 two-byte characters long: the
failure names the login, so the text is cut, and the cut falls inside a
character unless it is made at a character boundary. The state (JSON) must
still be written and show the error, in valid UTF-8."""
import os
import sys

from harness import Emulator, Relay, Results, TempDir, wait_for

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_http_dest import Receiver, SECRETS  # noqa: E402
from test_poll import config, poll_state  # noqa: E402

# "login failed for " is 17 bytes: an odd number of ASCII bytes more puts
# every 512-byte cut (odd offsets for the two-byte characters) inside one.
LOGIN = "x" + "\u00e9" * 300


def test_long_error_in_state(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        rcv = Receiver()
        cfg = config(tmp, emu, rcv)
        cfg["odoo"]["login"] = LOGIN
        r = Relay(tmp, cfg, secrets=SECRETS)
        try:
            err = wait_for(lambda: "login failed" in (poll_state(r).get("error") or "") and
                           poll_state(r)["error"], timeout=20,
                           what="the login failure in the poller's state")
            raw = err.encode("utf-8")
            t.check(len(raw) <= 511, "the error is cut to its buffer: %d bytes" % len(raw))
            t.check("failed: odoo.login: login failed for x" in err,
                    "the error is the poll's: %r" % err[:60])
            t.check(err.endswith("\u00e9") or err.endswith("x"),
                    "the cut is at a character: %r" % err[-8:])
        finally:
            r.stop()
            emu.stop()


if __name__ == "__main__":
    t = Results()
    t.run(test_long_error_in_state)
    t.done()
