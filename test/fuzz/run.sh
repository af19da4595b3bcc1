#!/usr/bin/env bash
# Build the libFuzzer targets with clang and run each on its seed corpus.
#
#   test/fuzz/run.sh [options] [SECONDS | --runs N] [TARGET...]
#
#   SECONDS       fuzz each target for this long [20]: the CI setting
#   --runs N      fuzz each target for N executions instead (the soak:
#                 --runs 10000000)
#   --jobs J      fuzz with J processes at once (libFuzzer's -fork=J); the
#                 executions counted are those of all J together [1]
#   TARGET        only these targets (http, config, route, signature, record,
#                 or fuzz_http ...) [all of test/fuzz/fuzz_*.c]
#   --build-dir D the clang build tree [build-fuzz at the top of the tree]
#   --no-build    use the targets already built in the build tree
#
# Needs clang and libFuzzer's runtime: on Debian 12 the packages clang and
# libclang-rt-14-dev (which holds libclang_rt.fuzzer-x86_64.a).
#
# FUZZ_CC names the compiler [clang]. The CI setting takes about 100 s on two
# cores, build included; the soak takes hours (fuzz_http and fuzz_config do a
# few thousand executions a second, the others tens of thousands).
#
# Each target runs with leak detection on and UBSan halting on its first
# report. New inputs go to a temporary directory and the seeds in
# test/fuzz/corpus/<name>/ are only read, so the in-tree corpus never grows. A target that crashes, leaks, trips UBSan or
# an assertion, hangs (-timeout) or runs out of memory fails the run: its
# log and the input that did it are kept under BUILD/fuzz-artifacts/<name>/.
# The exit status is non-zero if any target failed.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
build=$top/build-fuzz
do_build=1
seconds=20
runs=
jobs=1
targets=()

usage() {
	sed -n '2,/^set -e/p' "$0" | sed -e '/^set -e/d' -e 's/^# \{0,1\}//' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--runs) [ $# -ge 2 ] || usage; runs=$2; shift 2 ;;
	--runs=*) runs=${1#--runs=}; shift ;;
	--jobs) [ $# -ge 2 ] || usage; jobs=$2; shift 2 ;;
	--jobs=*) jobs=${1#--jobs=}; shift ;;
	--build-dir) [ $# -ge 2 ] || usage; build=$2; shift 2 ;;
	--build-dir=*) build=${1#--build-dir=}; shift ;;
	--no-build) do_build=0; shift ;;
	-h|--help) usage ;;
	[0-9]*) seconds=$1; shift ;;
	-*) usage ;;
	*) targets+=("fuzz_${1#fuzz_}"); shift ;;
	esac
done
case $seconds in *[!0-9]*|'') usage ;; esac
case $runs in *[!0-9]*) usage ;; esac
case $jobs in *[!0-9]*|''|0) usage ;; esac

if [ ${#targets[@]} -eq 0 ]; then
	for src in "$top"/test/fuzz/fuzz_*.c; do
		targets+=("$(basename "$src" .c)")
	done
fi

if [ $do_build -eq 1 ]; then
	cc=${FUZZ_CC:-clang}
	if ! command -v "$cc" >/dev/null 2>&1; then
		echo "run.sh: $cc not found: install the Debian packages clang and libclang-rt-14-dev" >&2
		exit 1
	fi
	probe=$(mktemp -d)
	printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
		> "$probe/probe.c"
	if ! "$cc" -fsanitize=fuzzer,address,undefined "$probe/probe.c" -o "$probe/probe" \
		>"$probe/log" 2>&1; then
		cat "$probe/log" >&2
		rm -rf "$probe"
		echo "run.sh: $cc cannot link libFuzzer: install the Debian package libclang-rt-14-dev" >&2
		exit 1
	fi
	rm -rf "$probe"
	echo "run.sh: building ${targets[*]} in $build" >&2
	CC=$cc cmake -S "$top" -B "$build" -DRELAY_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		>"$build.cmake.log" 2>&1 || { cat "$build.cmake.log" >&2; exit 1; }
	rm -f "$build.cmake.log"
	cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target "${targets[@]}" >&2
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

# The work directory is in memory when it can be (fuzz_http commits to a
# store there), and is the targets' $TMPDIR, so that what a crashed target
# leaves is removed with it.
tmp=${TMPDIR:-/tmp}
[ -w /dev/shm ] && tmp=/dev/shm
work=$(mktemp -d "$tmp/odoo-relay-fuzz-run.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/tmp"
export TMPDIR=$work/tmp
failed=()
printf '%-16s %12s %10s %8s  %s\n' target executions exec/s seconds result

for t in "${targets[@]}"; do
	name=${t#fuzz_}
	bin=$build/test/fuzz/$t
	if [ ! -x "$bin" ]; then
		echo "run.sh: $bin is not built" >&2
		failed+=("$name")
		continue
	fi
	seeds=$top/test/fuzz/corpus/$name
	mkdir -p "$work/$name/corpus" "$work/$name/artifacts"
	args=(-detect_leaks=1 -timeout=30 -rss_limit_mb=2048 -print_final_stats=1
	      -artifact_prefix="$work/$name/artifacts/")
	if [ -n "$runs" ]; then
		args+=(-runs="$runs")
	else
		args+=(-max_total_time="$seconds")
	fi
	[ "$jobs" -gt 1 ] && args+=(-fork="$jobs")
	dirs=("$work/$name/corpus")
	[ -d "$seeds" ] && dirs+=("$seeds")
	log=$work/$name/log
	start=$(date +%s)
	rc=0
	(cd "$work/$name" && "$bin" "${args[@]}" "${dirs[@]}") >"$log" 2>&1 || rc=$?
	elapsed=$(( $(date +%s) - start ))

	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	if [ "$jobs" -gt 1 ]; then
		# Fork mode prints no final stats, only a running "#N: ..." line.
		execs=$(sed -n 's/^#\([0-9]*\): cov:.*/\1/p' "$log" | tail -1)
		[ -n "$execs" ] && speed=$(( execs / (elapsed > 0 ? elapsed : 1) ))
	fi
	result=ok
	# A report that did not stop the target still fails the run.
	if [ $rc -ne 0 ]; then
		result="failed (exit $rc)"
	elif grep -qE 'runtime error:|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|SUMMARY: ' "$log"; then
		result="failed (sanitizer report)"
	fi
	printf '%-16s %12s %10s %8s  %s\n' "$name" "${execs:-?}" "${speed:-?}" "$elapsed" "$result"
	if [ "$result" != ok ]; then
		failed+=("$name")
		keep=$build/fuzz-artifacts/$name
		mkdir -p "$keep"
		cp "$log" "$keep/log"
		cp -r "$work/$name/artifacts/." "$keep/" 2>/dev/null || true
		grep -E -m 20 -A 12 'ERROR: |runtime error:|==ERROR|SUMMARY: |deadly signal|timeout' \
			"$log" | head -60 >&2 || true
		echo "run.sh: $name: log and failing input kept in $keep" >&2
	fi
done

if [ ${#failed[@]} -ne 0 ]; then
	echo "run.sh: FAILED: ${failed[*]}" >&2
	exit 1
fi
echo "run.sh: all targets passed" >&2
