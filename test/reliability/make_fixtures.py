"""Regenerate the fixture stores of test/fixtures/store/ (see its README.md).

  RELAY_BUILD_DIR=build python3 test/reliability/make_fixtures.py OUTDIR

Runs the current odoo-relayd against the emulator to write a store in the
current formats (schema 1, record version 1) with known contents, compacts
it with mdb_copy -c (lmdb-utils), and derives the damaged ones from it.
Deterministic except for times and ids the daemon picks; expected.json
records what the tests check. Run it only to add a fixture for a new format
version: the committed "v1" store must stay what version 1 wrote (so
OUTDIR is required, and should not be test/fixtures/store itself).
"""
import json
import os
import random
import shutil
import subprocess
import sys

from rel import (EVENT_ROUTE, RelRelay, TempDir, base_config, delivery_conf, dump, emulator, event,
                 odoo_conf, wait_for)

if len(sys.argv) != 2:
    sys.exit("usage: make_fixtures.py OUTDIR")
OUT = sys.argv[1]


def write(name, data):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "data.mdb"), "wb") as f:
        f.write(data)


def make_v1(tmp):
    emu = emulator(tmp)
    state = os.path.join(tmp, "state")
    cfg = base_config(state, map_size_mb=1, routes=[EVENT_ROUTE], delivery=delivery_conf(),
                      odoo=odoo_conf(emu))
    r = RelRelay(tmp, cfg)
    sent = {}
    try:
        r.wait_delivering()
        # two dead letters, refused by a validation rule
        emu.fault(mode="validation", field="email", value="bad@example.com", message="fixture: bad email")
        for n in (1, 2):
            sent["fx-%d" % n] = event(n, lane=100 + n, email="bad@example.com")
            st, _, _ = r.post_shop(sent["fx-%d" % n], "fx-%d" % n)
            assert st == 202
        wait_for(lambda: len(dump(state, "dead")) == 2, what="two dead letters")
        emu.fault(mode="clear_validation")
        emu.fault(mode="down")
        # queued events: three in lane 7 (one head, two parked), three in lanes of their own
        for n, lane in ((3, 7), (4, 7), (5, 7), (6, 8), (7, 9), (8, 10)):
            sent["fx-%d" % n] = event(n, lane=lane)
            st, _, _ = r.post_shop(sent["fx-%d" % n], "fx-%d" % n, topic="customers/update")
            assert st == 202, st
        wait_for(lambda: r.metric("relay_circuit_open") == 1.0, what="circuit open")
        assert r.stop() == 0
    finally:
        r.stop()
        emu.stop()
    events, dead = dump(state), dump(state, "dead")
    v1 = os.path.join(tmp, "v1")
    os.makedirs(v1)
    subprocess.run(["mdb_copy", "-c", state, v1], check=True)
    data = open(os.path.join(v1, "data.mdb"), "rb").read()
    expected = {
        "events": [{k: e[k] for k in ("id", "source", "topic", "lane", "dedup_key")} for e in events],
        "dead": [{k: e[k] for k in ("id", "source", "topic", "lane", "dedup_key", "dead_reason")}
                 for e in dead],
        "bodies": sent,
    }
    return data, v1, expected


def main():
    with TempDir() as tmp:
        data, v1, expected = make_v1(tmp)
        psize = 4096
        write("v1", data)
        with open(os.path.join(OUT, "v1", "expected.json"), "w") as f:
            json.dump(expected, f, indent=1, sort_keys=True)
        # truncated: the last third of the file is gone, mid-page
        write("truncated", data[:len(data) * 2 // 3 - 100])
        # garbage: 512 random bytes over the middle of a page in the middle
        rng = random.Random(6)
        g = bytearray(data)
        page = (len(data) // psize) // 2
        at = page * psize + 1024
        g[at:at + 512] = bytes(rng.randrange(256) for _ in range(512))
        write("garbage", bytes(g))
        # not LMDB at all
        write("not-lmdb", b"this is not an lmdb file, it is a text file in its place\n" * 128)
        # a newer schema: meta "schema" = 2 (written with mdb_load)
        newer = os.path.join(tmp, "newer")
        shutil.copytree(v1, newer)
        dumped = ("VERSION=3\nformat=bytevalue\ntype=btree\nmapsize=1048576\nmaxreaders=126\n"
                  "HEADER=END\n 736368656d61\n 00000002\nDATA=END\n")
        subprocess.run(["mdb_load", "-s", "meta", newer], input=dumped.encode(), check=True)
        write("newer-schema", open(os.path.join(newer, "data.mdb"), "rb").read())
    for name in sorted(os.listdir(OUT)):
        p = os.path.join(OUT, name, "data.mdb")
        if os.path.exists(p):
            print("%-14s %7d bytes" % (name, os.path.getsize(p)))


if __name__ == "__main__":
    main()
