#!/bin/sh
# The test suite under valgrind memcheck: every unit test binary, then the
# integration tests and the reliability tests that measure nothing, with
# every odoo-relayd and odoo-relayctl they start running under valgrind
# (harness.py honours RELAYD_WRAPPER and RELAYCTL_WRAPPER).
#
#   test/reliability/valgrind.sh BUILD_DIR        (or: make valgrind)
#
# Use a build without sanitizers (-DRELAY_SANITIZE=OFF). Passes when every
# test passes and no valgrind log has an error or a definitely lost block.
# Processes the tests kill with SIGKILL leave logs without a summary: they
# are counted, not judged (their errors, if any, are still listed). Known
# reports from the libraries are in valgrind.supp, each with its reason.
set -u
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: valgrind.sh BUILD_DIR" >&2
	exit 64
fi
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
LOGS=$BUILD/test/reliability/valgrind
rm -rf "$LOGS"
mkdir -p "$LOGS"

VG="valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
 --errors-for-leak-kinds=definite --show-leak-kinds=definite
 --num-callers=30 --suppressions=$HERE/valgrind.supp --child-silent-after-fork=no"
failed=""

echo "== unit tests"
for t in "$BUILD"/test/unit_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	(cd "$SRC/test/fixtures" && $VG --log-file="$LOGS/$name.%p.log" "$t" >"$LOGS/$name.out" 2>&1)
	rc=$?
	echo "$name: exit $rc"
	[ $rc -eq 0 ] || failed="$failed $name"
done

echo "== integration and reliability tests, odoo-relayd and odoo-relayctl under valgrind"
export RELAY_BUILD_DIR="$BUILD"
export RELAYD_WRAPPER="$VG --log-file=$LOGS/relayd.%p.log"
export RELAYCTL_WRAPPER="$VG --log-file=$LOGS/relayctl.%p.log"
export RELAY_EMIT_DIR="$LOGS/emitted"
# No page sweep: a damaged page kills the verifying child by design, which
# memcheck reports as an invalid read.
export RELAY_PAGE_SWEEP=0
for t in "$SRC"/test/integration/test_*.py "$HERE/test_crash_loop.py" "$HERE/test_outage.py" \
         "$HERE/test_full_disk.py" "$HERE/test_corrupt_store.py" "$HERE/test_secrets.py"; do
	name=$(basename "$t" .py)
	python3 "$t" >"$LOGS/$name.out" 2>&1
	rc=$?
	echo "$name: exit $rc ($(tail -n 1 "$LOGS/$name.out"))"
	[ $rc -eq 0 ] || failed="$failed $name"
done

echo "== valgrind logs"
n=0; unfinished=0; bad=""
for log in "$LOGS"/*.log; do
	[ -f "$log" ] || continue
	n=$((n + 1))
	if ! grep -q "ERROR SUMMARY" "$log"; then
		unfinished=$((unfinished + 1))
	fi
	if grep -Eq "ERROR SUMMARY: [1-9]|definitely lost: [1-9]|Invalid (read|write|free)|uninitialised" "$log"; then
		bad="$bad $(basename "$log")"
	fi
done
echo "$n valgrind logs, $unfinished of processes killed before their summary"
for log in $bad; do
	echo "--- $log"
	sed -n '/== [A-Z].*\(Invalid\|uninitialised\|definitely lost\|Mismatched\|Syscall param\)/,/^==[0-9]*== $/p' \
		"$LOGS/$log" | head -60
done
if [ -n "$failed$bad" ]; then
	echo "valgrind: FAILED:$failed$bad (logs in $LOGS)"
	exit 1
fi
echo "valgrind: no errors, no leaks ($n processes)"
