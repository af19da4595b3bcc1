#!/bin/bash
# The odoo-relay Debian package under a real systemd: builds the .deb, boots a
# fresh Debian 12 guest with sdvm (systemd as PID 1, journald), installs the
# package there and runs guest-test.sh against the Odoo emulator.
#
#   test/systemd/run.sh [-o OUTDIR] [-t SECONDS]
#
# OUTDIR (default ./systemd-test-out) receives deb/ (package, build log,
# lintian report), guest/ (test.log, journal.txt, the unit's journal as JSON,
# security.txt, console.log) and, when it has to build one, build/.
# The emulator comes from $RELAY_BUILD_DIR/test/emulator/odoo-emulator when
# that exists, else it is built in OUTDIR/build.
#
# Needs root, systemd-container and debootstrap (test/systemd/sdvm/sdvm deps),
# the package's Build-Depends, lintian, and for the first run network access
# to a Debian mirror (the guest image is cached in /var/tmp/sdvm-cache).
# Prints PASS/FAIL lines and "N passed, N failed"; exits 0 only if all passed
# (77 when not root: skipped).
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/test/systemd
out=$PWD/systemd-test-out
timeout=600
while getopts "o:t:" o; do
	case $o in
	o) out=$OPTARG ;;
	t) timeout=$OPTARG ;;
	*) echo "usage: $0 [-o OUTDIR] [-t SECONDS]" >&2; exit 2 ;;
	esac
done
if [ "$(id -u)" != 0 ]; then
	echo "systemd-test: needs root (systemd-nspawn); skipped" >&2
	exit 77
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
t0=$(date +%s)

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
finish() {
	echo "$passed passed, $failed failed (wall time $(( $(date +%s) - t0 ))s)"
	[ "$failed" = 0 ]
	exit $?
}

# ---- the package --------------------------------------------------------
rm -rf "$out/deb"
if "$here/build-deb.sh" -n "$out/deb"; then
	pass "Debian package built"
else
	fail "Debian package built (see $out/deb/build.log)"
	finish
fi
deb=$(ls "$out"/deb/odoo-relay_*.deb)
changes=$(ls "$out"/deb/odoo-relay_*.changes)
if lintian --fail-on error,warning "$changes" > "$out/deb/lintian.txt" 2>&1; then
	pass "lintian: no errors or warnings"
else
	sed 's/^/    /' "$out/deb/lintian.txt"
	fail "lintian: no errors or warnings"
fi
if [ -e "$top/packaging/odoo-relayctl.8" ] && [ -e "$top/daemon/relayctl.c" ]; then
	contents=$(dpkg -c "$deb")
	if grep -q 'usr/sbin/odoo-relayctl$' <<<"$contents" &&
	   grep -q 'man8/odoo-relayctl.8.gz$' <<<"$contents"; then
		pass "package holds odoo-relayctl and its man page"
	else
		fail "package holds odoo-relayctl and its man page"
	fi
fi

# ---- the emulator -------------------------------------------------------
emu=${RELAY_BUILD_DIR:+$RELAY_BUILD_DIR/test/emulator/odoo-emulator}
if [ -z "$emu" ] || [ ! -x "$emu" ]; then
	echo "systemd-test: building the Odoo emulator in $out/build" >&2
	if cmake -S "$top" -B "$out/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$out/build.log" 2>&1 &&
	   cmake --build "$out/build" --target odoo-emulator -j "$(nproc)" >> "$out/build.log" 2>&1; then
		emu=$out/build/test/emulator/odoo-emulator
	else
		tail -20 "$out/build.log"
		fail "Odoo emulator built (see $out/build.log)"
		finish
	fi
fi

# ---- the guest ----------------------------------------------------------
in=$out/in
rm -rf "$in" "$out/guest"
mkdir -p "$in"
cp "$deb" "$emu" "$in/"
cp "$here/guest-test.sh" "$in/test.sh"
chmod 755 "$in/test.sh"

# The package's runtime dependencies (dpkg -i has no network in the guest),
# plus what the test itself uses: curl, openssl (webhook signatures), python3
# (reading journalctl -o json). Baked into the cached image.
export SDVM_EXTRA_PACKAGES="libevent-2.1-7 libevent-pthreads-2.1-7 libcurl4 libjansson4 liblmdb0 libssl3 curl openssl python3"
echo "systemd-test: running the guest (timeout ${timeout}s)" >&2
"$here/sdvm/sdvm" run -o "$out/guest" -t "$timeout" "$in" test.sh 2>"$out/sdvm.log"
rc=$?
if [ -f "$out/guest/test.log" ]; then
	cat "$out/guest/test.log"
	passed=$((passed + $(grep -c '^PASS: ' "$out/guest/test.log")))
	failed=$((failed + $(grep -c '^FAIL: ' "$out/guest/test.log")))
fi
if [ "$rc" != 0 ] && ! grep -q '^FAIL: ' "$out/guest/test.log" 2>/dev/null; then
	tail -20 "$out/sdvm.log"
	fail "guest ran the test (sdvm exit $rc, see $out/sdvm.log and $out/guest/)"
fi
finish
