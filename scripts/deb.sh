#!/usr/bin/env bash
# Builds the Debian package postgresql-<version>-pg-uring (debian/, with
# postgresql-common's pg_buildext) for each PostgreSQL version in
# debian/pgversions whose server and server-dev packages are installed on
# this machine, with dpkg-buildpackage -us -uc -b from a clean copy of the
# tree in a temporary directory; installs the packages; runs the pg_regress
# suite against them as the postgres OS user (debian/tests/installcheck,
# the autopkgtest: make installcheck in a copy that user owns); then
# removes the packages again and puts back any pg_uring files they had
# replaced (a "make install" of the checkout), unless PGU_DEB_KEEP=1.
# Ends with "deb: built, installed, regress suite passed" or fails.
#
# Run as root.  Needs postgresql-server-dev-all, postgresql-common,
# debhelper, dpkg-dev, fakeroot and liburing-dev (scripts/install-deps.sh).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
start=$(date +%s)

die() {
	echo "scripts/deb.sh: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "installs packages and must run as root"
for tool in dpkg-buildpackage dh pg_buildext fakeroot; do
	command -v "$tool" >/dev/null ||
		die "$tool not found (packages: dpkg-dev debhelper postgresql-server-dev-all fakeroot)"
done

# the versions to build: in debian/pgversions, with pgxs (server-dev) and a
# server to test against
versions=()
while read -r v; do
	case $v in '' | '#'*) continue ;; esac
	if [ -f "/usr/lib/postgresql/$v/lib/pgxs/src/makefiles/pgxs.mk" ] &&
		[ -x "/usr/lib/postgresql/$v/bin/postgres" ]; then
		versions+=("$v")
	else
		echo "deb: PostgreSQL $v (debian/pgversions): no server and server-dev installed here, not built"
	fi
done <"$top/debian/pgversions"
[ "${#versions[@]}" -gt 0 ] ||
	die "no version of debian/pgversions has its server and server-dev installed"
# pg_buildext builds what supported-versions lists (and debian/pgversions
# allows); supported-versions honours PG_SUPPORTED_VERSIONS
export PG_SUPPORTED_VERSIONS="${versions[*]}"

work=$(mktemp -d /var/tmp/pgu-deb.XXXXXX)
chmod 755 "$work"
backup="$work/backup"
installed=()
cleanup() {
	local rc=$?
	if [ "${PGU_DEB_KEEP:-0}" != 1 ] && [ "${#installed[@]}" -gt 0 ]; then
		dpkg -r "${installed[@]}" >"$work/remove.log" 2>&1 ||
			{ cat "$work/remove.log" >&2; rc=1; }
		# what a "make install" had put there before
		if [ -d "$backup" ]; then
			cp -a "$backup/." / || rc=1
		fi
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT

# a clean copy: the files git knows of or would add (what the other
# scripts see of the checkout), without build products and tmp_check
src="$work/pg-uring"
mkdir "$src"
if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
	git -C "$top" ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do
			# a tracked file deleted in the work tree is not copied
			if [ -e "$top/$f" ]; then printf '%s\0' "$f"; fi
		done | tar -C "$top" --null -T - -cf - | tar -C "$src" -xf -
else
	tar -C "$top" --exclude=./tmp_check --exclude='*.o' --exclude='*.so' \
		--exclude='*.bc' -cf - . | tar -C "$src" -xf -
fi

cd "$src"
# debian/control for the versions built here (pg_buildext checkcontrol
# compares it with what debian/control.in gives for them)
pg_buildext updatecontrol
echo "deb: building postgresql-{${versions[*]}}-pg-uring in $src"
if ! dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1; then
	tail -n 60 "$work/build.log"
	die "dpkg-buildpackage failed (the last lines of its log are above)"
fi

debs=()
for v in "${versions[@]}"; do
	deb=$(ls "$work"/postgresql-"$v"-pg-uring_*.deb 2>/dev/null | head -n 1)
	[ -n "$deb" ] || die "dpkg-buildpackage made no postgresql-$v-pg-uring package"
	debs+=("$deb")
	installed+=("postgresql-$v-pg-uring")
	echo "deb: built $(basename "$deb")"
done

# keep the pg_uring files the packages will replace
for deb in "${debs[@]}"; do
	dpkg-deb --fsys-tarfile "$deb" | tar -t | sed -n 's|^\./|/|p' |
		while read -r f; do
			if [ -f "$f" ] && [ ! -L "$f" ]; then
				mkdir -p "$backup$(dirname "$f")"
				cp -a "$f" "$backup$f"
			fi
		done
done

if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	"${debs[@]}" >"$work/install.log" 2>&1; then
	cat "$work/install.log"
	die "apt-get install of the packages failed"
fi
for pkg in "${installed[@]}"; do
	# the files on disk are the package's own
	if ! out=$(dpkg --verify "$pkg") || [ -n "$out" ]; then
		echo "$out"
		die "dpkg --verify $pkg: the installed files differ from the package"
	fi
	echo "deb: installed $pkg $(dpkg-query -W -f='${Version}' "$pkg")"
done

# the pg_regress suite against the installed packages: the autopkgtest
# (as postgres, in a copy that user owns)
if ! bash debian/tests/installcheck >"$work/regress.out" 2>&1; then
	cat "$work/regress.out"
	die "the pg_regress suite failed against the installed package"
fi
# the test lines of pg_regress 15 ("test x ... ok") and 16+ ("ok 1 - x")
ok_lines='^test .* \.\.\. +ok|^ok [0-9]+ +- '
grep -E "$ok_lines|^### | tests passed|^# All" "$work/regress.out" || true
# the suite's files: REGRESS in the Makefile, its continuation lines joined
nregress=$(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$top/Makefile" |
	sed -n 's/^REGRESS = //p' | wc -w)
ran=$(grep -Ec "$ok_lines" "$work/regress.out" || true)
[ "$ran" -eq $((nregress * ${#versions[@]})) ] ||
	die "expected $nregress pg_regress files to pass per version, $ran passed"

echo "deb: $(($(date +%s) - start)) s"
echo "deb: built, installed, regress suite passed"
