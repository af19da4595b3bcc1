#!/usr/bin/env bash
# odoo-relay from a fresh Debian 12 machine, in one command (run as root or with sudo):
#
#   packaging/bootstrap.sh demo   install what is missing, build, and run odoo-relayd in the
#                                 foreground on its built-in demo configuration, against the
#                                 bundled Odoo emulator, with a few sample webhooks sent
#   packaging/bootstrap.sh test   install what is missing, build with warnings as errors and run
#                                 the whole test suite: the package under systemd (as root), a
#                                 short run of every fuzz target, ctest, then ctest again under
#                                 AddressSanitizer+UBSan
#   packaging/bootstrap.sh bench  install wrk, nginx and redis-server too, build, and run the benchmarks
#   packaging/bootstrap.sh deps   only install the Debian packages
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)

deps=(build-essential cmake pkg-config libevent-dev libcurl4-openssl-dev libjansson-dev
      liblmdb-dev libsystemd-dev libssl-dev python3 curl openssl)
test_deps=(clang libclang-rt-14-dev debhelper dpkg-dev fakeroot lintian systemd-container
           debootstrap util-linux prometheus)

apt_install() {
	local missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "bootstrap: missing packages ${missing[*]}: run as root or with sudo" >&2
		exit 1
	fi
	echo "bootstrap: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	# Another apt or dpkg run (unattended-upgrades on a fresh machine) holds
	# the lock for a while: wait for it rather than fail at once.
	# install waits by itself; update does not wait for the lists lock, so
	# it is tried again while the lock is what stops it.
	local wait=(-o DPkg::Lock::Timeout=600) err tries=0
	until err=$(apt-get "${wait[@]}" update -qq 2>&1 >/dev/null); do
		if ! grep -q "Could not get lock" <<<"$err" || [ $((tries += 1)) -gt 120 ]; then
			printf '%s\n' "$err" >&2
			exit 1
		fi
		[ "$tries" -eq 1 ] && echo "bootstrap: waiting for another apt run to finish" >&2
		sleep 5
	done
	apt-get "${wait[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_deps() {
	apt_install "${deps[@]}"
}


build() { # build DIR [cmake options...]
	local dir=$1; shift
	cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
	cmake --build "$dir" -j "$jobs"
}

case "${1:-}" in
deps)
	install_deps
	;;
demo)
	install_deps
	build "$top/build"
	demo_dir=${DEMO_DIR:-/tmp/odoo-relay-demo}
	mkdir -p "$demo_dir"
	# The bundled Odoo emulator stands in for Odoo on 127.0.0.1:8069.
	"$top/build/test/emulator/odoo-emulator" --port 8069 --db demo --user admin:admin \
		--port-file "$demo_dir/emulator.ports" >"$demo_dir/emulator.log" 2>&1 &
	emu=$!
	# The external system Odoo's changes go out to (prints what it gets).
	python3 "$top/packaging/demo-receiver.py" "$demo_dir" 8082 &
	receiver=$!
	trap 'kill $emu $receiver $sender 2>/dev/null; wait 2>/dev/null' EXIT
	# listening before odoo-relayd probes it (5 s at most)
	for _ in $(seq 50); do
		(exec 3<>/dev/tcp/127.0.0.1/8082) 2>/dev/null && break
		sleep 0.1
	done
	# A few sample Shopify customer webhooks, sent once odoo-relayd listens,
	# so that events visibly flow (see the log below and README.md).
	"$top/packaging/demo-send.sh" "$demo_dir" &
	sender=$!
	echo "bootstrap: odoo-relayd on 127.0.0.1:8080 (metrics on :8081), Odoo emulator on :8069, receiver on :8082; Ctrl-C stops" >&2
	"$top/build/daemon/odoo-relayd" --demo "$demo_dir" --odoo-url http://127.0.0.1:8069 || true
	;;
bench)
	install_deps
	# redis-server: the queue of the Node/BullMQ peer that
	# bench_ingest.py --peer compares against (which also needs node and npm)
	apt_install wrk nginx-light redis-server
	build "$top/build"
	cmake --build "$top/build" --target bench
	;;
test)
	install_deps
	# what the fuzz targets (clang, libFuzzer) and the systemd test (a Debian
	# package booted in a systemd guest) need besides the build
	apt_install "${test_deps[@]}"
	build "$top/build-ci" -DRELAY_WERROR=ON
	if [ "$(id -u)" -eq 0 ]; then
		RELAY_BUILD_DIR="$top/build-ci" "$top/test/systemd/run.sh" -o "$top/build-ci/systemd-test"
	else
		echo "bootstrap: the systemd test needs root; skipped" >&2
	fi
	"$top/test/fuzz/run.sh" "${FUZZ_SECONDS:-10}"
	(cd "$top/build-ci" && ctest --output-on-failure -j "$jobs")
	build "$top/build-asan" -DRELAY_WERROR=ON -DRELAY_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	(cd "$top/build-asan" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j "$jobs")
	;;
*)
	echo "usage: $0 demo|test|bench|deps" >&2
	exit 64
	;;
esac
