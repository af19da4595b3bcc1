"""odoo-relayctl sync --id against a source of kind odoo-poll that excludes
archived records and reads a domain. Proves: a resend by id reads the ids
through the source's domain and archive rule, as the regular poll does; an
id outside the domain, or archived, is not sent, is logged and shown in
status as not in the source, and the deletion check that follows reports
nothing deleted; an id inside is sent again; sync --wait says how the
request went (exit 1 with the ids not in the source); two requests made in
a row both run. And a record whose write_date the answer lacks (false): it is
sent, the poller goes on past it (a later record is sent), its status shows
no error, and it is logged once however often it is read again."""
import json
import os
import signal
import subprocess
import sys

from harness import BUILD, RELAYCTL, Emulator, Relay, Results, TempDir, store_ids, wait_for

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_http_dest import Receiver, SECRETS  # noqa: E402
from test_poll import config, execute, partner, poll_state, searches, sent  # noqa: E402


def deletions(rcv, ids):
    return [b for b in sent(rcv) if b.get("id") in ids and "name" not in b]


def test_sync_id_outside_the_source(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        rcv = Receiver()
        inside = partner(emu, "Inside One")
        outside = partner(emu, "Outside One", email="outside.one@elsewhere.test")
        archived = partner(emu, "Archived One", active=False)
        # polls only at start and when asked; deletion checks every second
        r = Relay(tmp, config(tmp, emu, rcv, poll={"archived": False, "interval_s": 3600,
                                                   "deletion_check_s": 1}),
                  secrets=SECRETS)
        try:
            wait_for(lambda: sent(rcv, "Inside One"), what="first poll at start")
            wait_for(lambda: (poll_state(r).get("last_check_ms") or 0) > 0,
                     what="a first deletion check")
            t.eq(sent(rcv, "Outside One") + sent(rcv, "Archived One"), [],
                 "the regular poll keeps to the domain and leaves archived records out")
            p = r.ctl("sync", "partners", "--id", "%d,%d,%d" % (outside, archived, inside),
                      "--wait=60", check=False)
            t.eq(p.returncode, 1, "sync --id --wait: some ids not in the source: " + p.stderr)
            t.check("1 sent" in p.stdout and "not in the source" in p.stdout and
                    "%d, %d" % (outside, archived) in p.stdout,
                    "the CLI says which ids were not sent: " + p.stdout)
            wait_for(lambda: len(sent(rcv, "Inside One")) == 2 and
                     not store_ids(r.cfg["state_dir"]), what="the record inside resent")
            t.eq(sent(rcv, "Outside One"), [], "a record outside the domain is not sent")
            t.eq(sent(rcv, "Archived One"), [], "nor an archived one")
            last = poll_state(r).get("last_sync") or {}
            t.eq(last.get("sent"), [inside], "status: the record sent")
            t.eq(last.get("not_in_source"), sorted([outside, archived]),
                 "status: the records not in the source")
            wait_for(lambda: "not in the source" in r.logs(), what="the log says so")
            line = [x for x in r.logs().splitlines() if "not in the source" in x][0]
            t.check(str(outside) in line and str(archived) in line and
                    str(inside) not in line.split("not in the source")[1],
                    "the log names the ids not in the source: " + line)
            out = r.ctl("status").stdout
            t.check("not in the source" in out, "status says so: " + out)
            # a deletion check that began after the sync: nothing to delete
            checked = poll_state(r).get("last_check_ms") or 0
            wait_for(lambda: (poll_state(r).get("last_check_ms") or 0) > checked,
                     what="a deletion check after the sync")
            wait_for(lambda: not store_ids(r.cfg["state_dir"]), what="nothing left to deliver")
            t.eq(deletions(rcv, {inside, outside, archived}), [],
                 "no deletion event for what was never sent")
            st = poll_state(r)
            t.eq(st.get("known"), 1, "the poller knows only the record inside")
            t.eq(st.get("deleted"), 0, "and counts no deletion")
            # an id that does not exist at all is not in the source either
            p = r.ctl("--json", "sync", "partners", "--id", "999999")
            req = json.loads(p.stdout)["request"]
            t.check(req.get("ids") == [999999] and req.get("seq", 0) > 0,
                    "the request carries the ids and its number")
            wait_for(lambda: (poll_state(r).get("last_sync") or {}).get("not_in_source")
                     == [999999], what="an unknown id reported")
            t.eq(len(sent(rcv, "Inside One")), 2, "nothing else sent")
            p = r.ctl("--json", "sync", "partners", "--id", str(inside), "--wait")
            out = json.loads(p.stdout)
            t.check(p.returncode == 0 and out.get("done") is True and
                    out.get("result", {}).get("sent") == [inside] and
                    out["result"].get("not_in_source") == [],
                    "--wait --json gives the outcome: " + p.stdout)
            wait_for(lambda: len(sent(rcv, "Inside One")) == 3 and
                     not store_ids(r.cfg["state_dir"]), what="resent once more")
            p = r.ctl("sync", "partners", "--wait=1x", check=False)
            t.check(p.returncode != 0 and "--wait" in p.stderr, "a bad --wait refused")
            # two requests in a row, the second written while the daemon may
            # be taking the first: both run
            r.ctl("sync", "partners", "--id", str(inside))
            r.ctl("sync", "partners", "--id", str(inside))
            wait_for(lambda: len(sent(rcv, "Inside One")) == 5 and
                     not store_ids(r.cfg["state_dir"]) and
                     not poll_state(r).get("sync_pending"), what="both requests run")
            t.eq(len(sent(rcv, "Inside One")), 5, "each request sent the record once")
        finally:
            r.stop()
            emu.stop()


def test_row_without_write_date(t):
    with TempDir() as tmp:
        emu = Emulator(tmp)
        rcv = Receiver()
        first = partner(emu, "Stamped Before")
        bare = partner(emu, "No Stamp")
        emu.control("POST", "/control/unstamped", {"model": "res.partner", "ids": [bare]})
        r = Relay(tmp, config(tmp, emu, rcv), secrets=SECRETS)
        try:
            wait_for(lambda: sent(rcv, "No Stamp"), what="the record without write_date sent")
            t.eq(sent(rcv, "No Stamp")[0]["write_date"], None, "sent with write_date null")
            t.eq(len(sent(rcv, "Stamped Before")), 1, "its neighbour too")
            # a later record: the poller did not stop at the unstamped one
            emu.control("POST", "/control/clock", {"offset_ms": 3000})
            partner(emu, "Stamped After")
            wait_for(lambda: sent(rcv, "Stamped After"), what="a later record sent")
            n = emu.stats()["calls_by_method"].get("res.partner.search_read", 0)
            wait_for(lambda: emu.stats()["calls_by_method"].get("res.partner.search_read", 0)
                     >= n + 3, what="three more polls reading it again")
            st = poll_state(r)
            t.eq(st.get("error"), "", "no error in status")
            t.check(st.get("cursor", "") >= sent(rcv, "Stamped After")[0]["write_date"],
                    "the cursor moved past it, on the others' stamps")
            t.eq(len(sent(rcv, "No Stamp")), 1, "sent once, not at every poll")
            logs = r.logs()
            t.eq(logs.count("%d has no write_date" % bare), 1, "logged once as a warning")
            t.check(first != bare, "two records")
        finally:
            r.stop()
            emu.stop()


def test_many_rows_without_write_date(t):
    """More unstamped records than the poller names (256): each is sent, the
    log names 256 and then says it names no more, once, and the poller
    goes on (under ASan, the list of names is never read past its end)."""
    with TempDir() as tmp:
        emu = Emulator(tmp)
        rcv = Receiver()
        vals = [{"name": "Bare %03d" % i, "email": "bare.%03d@poll.test" % i} for i in range(300)]
        ids = execute(emu, "res.partner", "create", [vals])
        emu.control("POST", "/control/unstamped", {"model": "res.partner", "ids": ids})
        # one page holds them all (a database never answers a write_date
        # condition with rows that have none: this is the emulator's fault)
        r = Relay(tmp, config(tmp, emu, rcv, poll={"page_size": 500}), secrets=SECRETS)
        try:
            wait_for(lambda: len([b for b in sent(rcv) if b.get("id") in ids]) >= 300,
                     what="every unstamped record sent", timeout=60)
            n = searches(emu)
            wait_for(lambda: searches(emu) >= n + 3, what="three more polls reading them again")
            logs = r.logs()
            t.eq(logs.count("has no write_date"), 256, "256 named")
            t.eq(logs.count("not named any further"), 1, "then said once that no more are")
            t.eq(poll_state(r).get("error"), "", "no error in status")
        finally:
            r.stop()
            emu.stop()


def test_sync_request_survives_a_crash(t):
    """A sync request whose job was running when the relay died runs after
    the restart: it is deleted from the store only once its job has ended."""
    with TempDir() as tmp:
        emu = Emulator(tmp)
        rcv = Receiver()
        inside = partner(emu, "Resent After Crash")
        cfg = config(tmp, emu, rcv, poll={"interval_s": 3600, "deletion_check_s": 3600})
        cfg["odoo"]["timeout_ms"] = 3600000  # only an answer ends a call
        r = Relay(tmp, cfg, secrets=SECRETS)
        try:
            wait_for(lambda: sent(rcv, "Resent After Crash"), what="first poll at start")
            # the resend's search_read is held: the relay dies in its job
            emu.fault(mode="slow", delay_ms=600000, method="res.partner.search_read")
            n = searches(emu)
            r.ctl("sync", "partners", "--id", str(inside))
            wait_for(lambda: searches(emu) > n, what="the resend in flight")
            r.kill9()
            emu.fault(mode="none")
            r.start()
            # the poll at start sends nothing (the record did not change):
            # a second send is the request, run after the restart
            wait_for(lambda: len(sent(rcv, "Resent After Crash")) == 2,
                     what="the request run after the restart")
            wait_for(lambda: not poll_state(r).get("sync_pending"), what="the request gone")
            t.eq(len(sent(rcv, "Resent After Crash")), 2, "sent again once, by the request")
        finally:
            r.stop()
            emu.stop()


def test_wait_sees_a_later_request(t):
    """sync --wait whose request ran, but a later one ran too before it
    looked: it says its outcome is no longer known, instead of printing the
    later request's as its own. (The waiting odoo-relayctl is stopped with
    SIGSTOP while the later request runs: no race.)"""
    with TempDir() as tmp:
        emu = Emulator(tmp)
        rcv = Receiver()
        a = partner(emu, "Wait First")
        b = partner(emu, "Wait Second")
        r = Relay(tmp, config(tmp, emu, rcv, poll={"interval_s": 3600, "deletion_check_s": 3600}),
                  secrets=SECRETS)
        waiter = None
        try:
            wait_for(lambda: sent(rcv, "Wait Second"), what="first poll at start")
            emu.fault(mode="slow", delay_ms=1500, method="res.partner.search_read")
            n = searches(emu)
            waiter = subprocess.Popen([RELAYCTL, "--config", r.config_path, "--json", "sync",
                                       "partners", "--id", str(a), "--wait=60"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            wait_for(lambda: searches(emu) > n, what="the first request taken")
            waiter.send_signal(signal.SIGSTOP)
            emu.fault(mode="none")
            r.ctl("sync", "partners", "--id", str(b))
            wait_for(lambda: (poll_state(r).get("request_done") or 0) >= 2,
                     what="the second request run")
            waiter.send_signal(signal.SIGCONT)
            out, err = waiter.communicate(timeout=60)
            t.eq(waiter.returncode, 0, "exit 0: " + err)
            o = json.loads(out)
            t.eq(o.get("outcome_known"), False, "--json: its outcome is no longer known")
            t.eq(o.get("error"), "", "no error of another request's reported")
            wait_for(lambda: len(sent(rcv, "Wait First")) >= 2, what="the first request's post")
            t.eq(len(sent(rcv, "Wait First")), 2, "the first request ran")
        finally:
            if waiter and waiter.poll() is None:
                waiter.send_signal(signal.SIGCONT)
                waiter.kill()
            r.stop()
            emu.stop()


HIST_PLANT = os.environ.get("HIST_PLANT", os.path.join(BUILD, "test", "integration", "hist-plant"))


def test_request_of_an_older_relayctl(t):
    """A request under the plain key an older odoo-relayctl wrote runs once
    (it is taken first, whatever was taken before, so it must go when taken),
    and a numbered request made after it then runs too."""
    with TempDir() as tmp:
        emu = Emulator(tmp)
        rcv = Receiver()
        a = partner(emu, "Legacy Asked")
        b = partner(emu, "Numbered Asked")
        r = Relay(tmp, config(tmp, emu, rcv, poll={"interval_s": 3600, "deletion_check_s": 3600}),
                  secrets=SECRETS)
        try:
            wait_for(lambda: sent(rcv, "Numbered Asked"), what="first poll at start")
            p = subprocess.run([HIST_PLANT, r.cfg["state_dir"], "poll-request-legacy", "partners",
                                json.dumps({"ids": [a]})], capture_output=True, text=True,
                               timeout=60)
            t.eq(p.returncode, 0, "the old request planted: " + p.stderr)
            wait_for(lambda: len(sent(rcv, "Legacy Asked")) >= 2, what="the old request run")
            p = r.ctl("sync", "partners", "--id", str(b), "--wait=30", check=False)
            t.eq(p.returncode, 0, "a numbered request after it runs: " + p.stdout + p.stderr)
            # --wait ends when the request has queued its events, not when
            # they are delivered
            wait_for(lambda: len(sent(rcv, "Numbered Asked")) >= 2, what="the numbered request's post")
            t.eq(len(sent(rcv, "Numbered Asked")), 2, "sent again by the numbered request")
            t.eq(len(sent(rcv, "Legacy Asked")), 2, "the old request ran once")
        finally:
            r.stop()
            emu.stop()


if __name__ == "__main__":
    t = Results()
    t.run(test_sync_id_outside_the_source)
    t.run(test_row_without_write_date)
    t.run(test_many_rows_without_write_date)
    t.run(test_sync_request_survives_a_crash)
    t.run(test_wait_sees_a_later_request)
    t.run(test_request_of_an_older_relayctl)
    t.done()
