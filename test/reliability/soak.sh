#!/bin/sh
# The reliability tests at full scale (make soak): 100 crash cycles, a 10
# minute outage, 5 minutes of attack, 360 damaged stores, the full disk on
# tmpfs and on ext4, a 60 s outage of an HTTP receiver, then the secrets grep
# over all of it. About 27 minutes.
# Runs every test even when one fails; prints their FIGURE lines at the end.
#
#   test/reliability/soak.sh BUILD_DIR
set -u
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: soak.sh BUILD_DIR" >&2
	exit 64
fi
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$BUILD/test/reliability/soak
rm -rf "$OUT"
mkdir -p "$OUT"
export RELAY_BUILD_DIR="$BUILD" RELAY_SCALE=soak RELAY_EMIT_DIR="$BUILD/test/reliability/emitted"
failed=""

run() { # name script [VAR=value...]
	name=$1 script=$2
	shift 2
	echo "== $name"
	env "$@" python3 "$HERE/$script" >"$OUT/$name.out" 2>&1
	rc=$?
	grep -E "^(FIGURE|NOTE|SKIP|FAIL)" "$OUT/$name.out"
	echo "$name: exit $rc ($(tail -n 1 "$OUT/$name.out"))"
	[ $rc -eq 0 ] || failed="$failed $name"
}

run crash_loop test_crash_loop.py
run outage test_outage.py
run full_disk test_full_disk.py
run full_disk_ext4 test_full_disk.py RELAY_SMALL_FS=ext4
run hostile test_hostile.py
run corrupt_store test_corrupt_store.py
run http_e2e test_http_e2e.py
run secrets test_secrets.py

echo "== figures (outputs in $OUT)"
grep -h "^FIGURE" "$OUT"/*.out
if [ -n "$failed" ]; then
	echo "soak: FAILED:$failed"
	exit 1
fi
echo "soak: all passed"
