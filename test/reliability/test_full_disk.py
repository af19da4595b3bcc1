"""Full disk and full map (issue 6).

ENOSPC: the state directory on a 4 MiB tmpfs (or, where tmpfs cannot be
mounted, a loop-mounted ext4 image) with a 64 MiB map, so that the disk
fills long before the map; a ballast file takes part of the space.
MDB_MAP_FULL: a 1 MiB map on an ordinary disk.

Each time: with Odoo down, senders post until the store is full; they get
503 with Retry-After and a JSON body; the daemon stays up; killed with
SIGKILL and restarted while still full it starts, and every event that got
a 202 is in the store and decodes; then space is freed (deliveries drain
the store, or the ballast is deleted) and ingest resumes by itself; in the
end every accepted event is in Odoo once with the values it was sent with.

RELAY_SMALL_FS=ext4 skips tmpfs (the soak run does both).
Mounting needs root (CAP_SYS_ADMIN): without it the ENOSPC case prints
SKIP with the reason and passes.
"""
import contextlib
import os
import subprocess

from rel import (EVENT_ROUTE, Emit, RelRelay, Results, TempDir, applied, base_config,
                 delivery_conf, dump, emulator, event, figure, odoo_conf, wait_for)

PAD = "x" * 2000


@contextlib.contextmanager
def small_fs(where, size_kib):
    """A filesystem of about size_kib mounted on where; yields its kind, or
    None (and why) when this process may not mount one."""
    os.makedirs(where)
    kind, why, image = None, [], None
    if os.environ.get("RELAY_SMALL_FS") == "ext4":
        why.append("tmpfs: not tried (RELAY_SMALL_FS=ext4)")
    else:
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dk,mode=0755" % size_kib, "tmpfs",
                            where], capture_output=True, text=True)
        if p.returncode == 0:
            kind = "tmpfs"
        else:
            why.append("tmpfs: " + (p.stderr.strip() or "exit %d" % p.returncode))
    if not kind:
        image = where + ".img"
        try:
            with open(image, "wb") as f:
                f.truncate(size_kib * 1024 * 2)  # ext4 keeps room for its journal
            subprocess.run(["mkfs.ext4", "-q", "-F", image], check=True, capture_output=True)
            p = subprocess.run(["mount", "-o", "loop", image, where], capture_output=True, text=True)
            if p.returncode == 0:
                kind = "ext4 image"
            else:
                why.append("loop ext4: " + p.stderr.strip())
        except (OSError, subprocess.CalledProcessError) as e:
            why.append("loop ext4: %s" % e)
    try:
        yield kind, "; ".join(why)
    finally:
        if kind:
            subprocess.run(["umount", "-l", where], capture_output=True)
        if image and os.path.exists(image):
            os.unlink(image)


def eat_disk(path):
    """Write path until the filesystem is full; returns the bytes written."""
    n = 0
    with open(path, "wb", buffering=0) as f:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    n += f.write(b"\0" * size)
            except OSError:
                pass
    return n


def fill(t, r, prefix, limit=20000):
    """Post until refused. Returns ({n: relay id} accepted, the refusal)."""
    acked = {}
    for n in range(1, limit):
        ev = dict(event(n, lane=n % 13), pad=PAD)
        st, hdrs, js = r.post_shop(ev, "%s-%d" % (prefix, n))
        if st == 202:
            acked[n] = js["id"]
            continue
        return acked, (n, st, hdrs, js)
    return acked, None


def check_full(t, r, what, refusal):
    t.check(refusal is not None, "%s: the store filled up" % what)
    if not refusal:
        return
    n, st, hdrs, js = refusal
    t.eq(st, 503, "%s: 503 when full" % what)
    t.check(str(hdrs.get("Retry-After", "")).isdigit(), "%s: with Retry-After (%r)" % (what, hdrs.get("Retry-After")))
    t.eq((js or {}).get("error"), "store full", "%s: json error body" % what)
    st, _, _ = r.request("GET", "/readyz")
    t.eq(st, 503, "%s: not ready while full" % what)
    st, _, _ = r.request("GET", "/healthz")
    t.eq(st, 200, "%s: alive while full" % what)
    t.check(r.proc.poll() is None, "%s: the daemon stays up" % what)


def check_kept(t, r, what, acked, state, emu=None):
    """Kill -9 while full, restart: every accepted event is there and decodes
    (or, when Odoo is up, was delivered)."""
    r.kill9()
    r.start()
    recs = dump(state, emit=r.emit)  # store-dump fails on a record that does not decode
    stored = {str(e["id"]) for e in recs}
    got = applied(emu) if emu else {}
    missing = [rid for n, rid in acked.items() if rid not in stored and "rel_%d" % n not in got]
    t.eq(sorted(missing, key=int), [], "%s: every 202 id in the store (or delivered) after kill -9" % what)
    t.check(all(e["source"] == "shop" and e["dedup_key"] for e in recs),
            "%s: records decode with their fields" % what)
    # The aborted commit may have left a few pages free: 202 or 503, but an answer.
    st, _, js = r.post_shop(dict(event(999999), pad=PAD), "after-restart")
    t.check(st in (202, 503), "%s: serving after the restart (%s)" % (what, st))
    if st == 202:
        acked[999999] = js["id"]


def check_applied(t, emu, what, acked):
    got = applied(emu)
    t.eq([n for n in acked if len(got.get("rel_%d" % n, [])) != 1], [],
         "%s: every accepted event applied once" % what)
    t.eq([n for n in acked if got.get("rel_%d" % n, [{}])[0].get("email") != event(n)["email"]], [],
         "%s: with its values" % what)


def test_disk_full(t):
    emit = Emit("full_disk")
    with TempDir() as tmp:
        mnt = os.path.join(tmp, "fs")
        with small_fs(mnt, 4096) as (kind, why):
            if not kind:
                print("SKIP disk full: cannot mount a small filesystem (%s)" % why)
                return
            emu = emulator(tmp)
            state = os.path.join(mnt, "state")
            cfg = base_config(state, map_size_mb=64, routes=[EVENT_ROUTE], delivery=delivery_conf(),
                              odoo=odoo_conf(emu))
            r = RelRelay(tmp, cfg, emit=emit)
            try:
                # A: a ballast takes part of the disk; the store fills the rest
                # up to its reserve (kept for deliveries to record outcomes in)
                emu.fault(mode="down")
                ballast = os.path.join(mnt, "ballast")
                with open(ballast, "wb") as f:
                    f.write(b"\0" * (1536 * 1024))
                acked, refusal = fill(t, r, "disk")
                check_full(t, r, "disk full", refusal)
                t.check("store full" in r.logs(), "disk full: logged")
                check_kept(t, r, "disk full", acked, state)
                # B: something else eats the reserve too: the disk is 100% full,
                # and the deliveries' commits now fail with ENOSPC for real
                eaten = eat_disk(os.path.join(mnt, "ballast2"))
                t.eq(os.statvfs(mnt).f_bavail, 0, "disk 100%% full (%d KiB eaten)" % (eaten // 1024))
                # deliveries go on as far as the free list has pages for their
                # outcomes; past that, recording an outcome fails (ENOSPC) and the
                # event is delivered again later (the same record: idempotent)
                emu.fault(mode="none")
                wait_for(lambda: "cannot record the outcome" in r.logs()
                         or r.metric("relay_queue_depth") == 0.0, timeout=60,
                         what="deliveries to go as far as the full disk lets them")
                enospc = "cannot record the outcome" in r.logs()
                st, _, _ = r.request("GET", "/healthz")
                t.eq(st, 200, "100% full: alive")
                # refused, or accepted into the pages the deliveries freed
                st, _, _ = r.post_shop(dict(event(refusal[0], lane=refusal[0] % 13), pad=PAD),
                                       "disk-%d" % refusal[0])
                t.check(st in (202, 503), "100%% full: answers (%s)" % st)
                check_kept(t, r, "100% full", acked, state, emu)
                # C: the space comes back: ingest resumes by itself, the backlog drains
                os.unlink(os.path.join(mnt, "ballast2"))
                os.unlink(ballast)
                wait_for(lambda: r.post_shop(dict(event(refusal[0], lane=refusal[0] % 13), pad=PAD),
                                             "disk-%d" % refusal[0])[0] in (200, 202),
                         timeout=30, what="ingest to resume once the ballast is gone")
                acked[refusal[0]] = None
                st, _, _ = r.request("GET", "/readyz")
                t.eq(st, 200, "disk full: ready again")
                wait_for(lambda: r.metric("relay_queue_depth") == 0.0, timeout=120,
                         what="the backlog delivered")
                # D: full again with Odoo down; deliveries alone make the room
                emu.fault(mode="down")
                more, refusal = fill(t, r, "disk2")
                check_full(t, r, "disk full again", refusal)
                emu.fault(mode="none")
                n = 100000 + refusal[0]
                wait_for(lambda: r.post_shop(dict(event(n, lane=n % 13), pad=PAD), "late-%d" % n)[0] == 202,
                         timeout=60, what="ingest to resume as deliveries free space")
                wait_for(lambda: r.metric("relay_queue_depth") == 0.0, timeout=120,
                         what="everything delivered")
                check_applied(t, emu, "disk full", acked)
                got = applied(emu)
                t.eq([m for m in more if len(got.get("rel_%d" % m, [])) != 1 or
                      got["rel_%d" % m][0]["name"] != "event %d" % m], [],
                     "disk full, second fill: all applied once")
                sv = os.statvfs(mnt)
                figure("disk full", "%s of %.1f MiB, map 64 MiB: %d + %d events accepted before 503 "
                       "(1 MiB kept for deliveries); at 100%% full deliveries %s; 0 lost across kill -9; "
                       "ingest resumed after deleting ballast and as deliveries freed pages"
                       % (kind, sv.f_blocks * sv.f_frsize / 1048576.0, len(acked) - 1, len(more),
                          "ran until an outcome could not be recorded (ENOSPC)" if enospc
                          else "drained the queue from the free list"), "ctest -R rel_full_disk")
                t.eq(r.stop(), 0, "clean exit")
            finally:
                r.stop()
                emu.stop()


def test_map_full(t):
    emit = Emit("full_map")
    with TempDir() as tmp:
        emu = emulator(tmp)
        state = os.path.join(tmp, "state")
        cfg = base_config(state, map_size_mb=1, routes=[EVENT_ROUTE], delivery=delivery_conf(),
                          odoo=odoo_conf(emu))
        r = RelRelay(tmp, cfg, emit=emit)
        try:
            emu.fault(mode="down")
            acked, refusal = fill(t, r, "map")
            check_full(t, r, "map full", refusal)
            check_kept(t, r, "map full", acked, state)
            emu.fault(mode="none")
            n = refusal[0]
            wait_for(lambda: r.post_shop(dict(event(n, lane=n % 13), pad=PAD), "map-%d" % n)[0] == 202,
                     timeout=60, what="ingest to resume as deliveries free space")
            acked[n] = None
            wait_for(lambda: r.metric("relay_queue_depth") == 0.0, timeout=120, what="everything delivered")
            check_applied(t, emu, "map full", acked)
            figure("map full", "map 1 MiB: %d events accepted before 503; 0 lost across kill -9; "
                   "ingest resumed as deliveries freed pages" % (len(acked) - 1), "ctest -R rel_full_disk")
            t.eq(r.stop(), 0, "clean exit")
        finally:
            r.stop()
            emu.stop()


if __name__ == "__main__":
    t = Results()
    t.run(test_disk_full)
    t.run(test_map_full)
    t.done()
