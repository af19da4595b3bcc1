#!/bin/bash
# Build the odoo-relay Debian package from this source tree and check it with
# lintian.
#
#   test/systemd/build-deb.sh [-n] OUTDIR
#
# Copies the tree (the files git knows of, tracked or not, or everything but
# build directories outside git) to a temporary directory, puts
# packaging/debian at debian/, runs dpkg-buildpackage -us -uc -b there, and
# leaves the .deb, .changes and .buildinfo in OUTDIR, with the build log
# (build.log) and lintian's report (lintian.txt). -n skips lintian.
#
# Exit status: 0 when the package was built and lintian reported no error and
# no warning; 1 otherwise; 2 for wrong usage. Needs dpkg-dev, debhelper, the
# Build-Depends of packaging/debian/control and lintian (fakeroot is not
# needed: Rules-Requires-Root: no).
set -euo pipefail

run_lintian=1
while getopts n o; do
	case $o in
	n) run_lintian=0 ;;
	*) echo "usage: $0 [-n] OUTDIR" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || { echo "usage: $0 [-n] OUTDIR" >&2; exit 2; }

top=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/odoo-relay-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

version=$(dpkg-parsechangelog -l "$top/packaging/debian/changelog" -S Version)
upstream=$(sed -n 's/^project(odoo-relay VERSION \([0-9.]*\).*/\1/p' "$top/CMakeLists.txt")
if [ -n "$upstream" ] && [ "${version%%-*}" != "$upstream" ]; then
	echo "build-deb: warning: packaging/debian/changelog says $version," \
	     "CMakeLists.txt says $upstream" >&2
fi

src=$tmp/odoo-relay-$version
mkdir -p "$src"
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# Tracked and untracked files, not what .gitignore excludes (build*/).
	(cd "$top" && git ls-files -z --cached --others --exclude-standard) |
		(cd "$top" && xargs -0 cp --parents -a -t "$src" 2>/dev/null || true)
else
	tar -C "$top" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$src" -xf -
fi
[ -f "$src/CMakeLists.txt" ] || { echo "build-deb: cannot copy the source tree" >&2; exit 1; }
rm -rf "$src/debian"
cp -a "$src/packaging/debian" "$src/debian"
# Without packaging/CMakeLists.txt nothing but the binaries is installed and
# the package would lack its units. Until the top-level CMakeLists.txt adds
# it, add it to the copy (and say so).
if ! grep -q 'add_subdirectory(packaging)' "$src/CMakeLists.txt"; then
	echo "build-deb: warning: CMakeLists.txt lacks add_subdirectory(packaging);" \
	     "adding it to the copy" >&2
	echo 'add_subdirectory(packaging)' >> "$src/CMakeLists.txt"
fi

echo "build-deb: building odoo-relay $version in $src" >&2
t0=$(date +%s)
if ! (cd "$src" && dpkg-buildpackage -us -uc -b -j"$(nproc)") > "$out/build.log" 2>&1; then
	tail -40 "$out/build.log" >&2
	echo "build-deb: dpkg-buildpackage failed (log: $out/build.log)" >&2
	exit 1
fi
echo "build-deb: built in $(( $(date +%s) - t0 ))s" >&2

arch=$(dpkg-architecture -qDEB_HOST_ARCH)
changes=$tmp/odoo-relay_${version}_${arch}.changes
# Remove the packages of earlier builds so that OUTDIR holds one version.
rm -f "$out"/odoo-relay*_*.deb "$out"/odoo-relay_*.changes "$out"/odoo-relay_*.buildinfo
cp "$tmp"/odoo-relay*_"$version"_*.deb "$changes" "$tmp"/odoo-relay_"$version"_*.buildinfo "$out/"
ls "$out"/*.deb >&2

if [ $run_lintian = 1 ]; then
	# --fail-on: errors and warnings fail the build; info and pedantic tags
	# are printed for reading, not enforced.
	if lintian --fail-on error,warning --info --display-info "$changes" > "$out/lintian.txt" 2>&1; then
		echo "build-deb: lintian: no errors or warnings" >&2
	else
		cat "$out/lintian.txt" >&2
		echo "build-deb: lintian reported errors or warnings" >&2
		exit 1
	fi
fi
