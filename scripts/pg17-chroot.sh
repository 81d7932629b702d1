#!/usr/bin/env bash
# scripts/pg17-chroot.sh - PostgreSQL 17 for pg_uring on a Debian 12 machine:
# a Debian 13 ("trixie") chroot made with debootstrap from the machine's own
# Debian mirror, with Debian 13's postgresql-17, postgresql-server-dev-17
# (PGXS, pg_regress, the PostgreSQL::Test TAP modules), liburing-dev, a
# compiler and IPC::Run, sudo and procps (TAP 005 flips a sysctl) and
# e2fsprogs (the power-loss harness).  Debian 13's source packages are not reachable
# here, so there is no assert-enabled 17 this way.  The kernel, and so
# io_uring, is the machine's own.
#
# Usage, as root:
#     bash scripts/pg17-chroot.sh setup          # idempotent: creates or completes the chroot
#     bash scripts/pg17-chroot.sh build          # copies this checkout in, builds it against 17
#     bash scripts/pg17-chroot.sh run 'CMD'      # runs CMD in the chroot (bash -c), in the copy
#
# Every command mounts /proc, /sys and /dev into the chroot for its own
# duration and unmounts them when it ends, also on error or interrupt.
# PGU_CHROOT (default /var/tmp/pgu-trixie) is where the chroot lives;
# PGU_MIRROR overrides the mirror (default: the first URI of the machine's
# Debian entry in /etc/apt).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
root=${PGU_CHROOT:-/var/tmp/pgu-trixie}
pkgs="postgresql-17 postgresql-server-dev-17 liburing-dev gcc make libipc-run-perl ca-certificates sudo procps e2fsprogs"

die() { echo "pg17-chroot: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot, mounts)"

mirror() {
	local m=${PGU_MIRROR:-}
	if [ -z "$m" ]; then
		m=$(sed -n 's/^URIs: *\([^ ]*debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
	fi
	if [ -z "$m" ]; then
		m=$(sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\(http[^ ]*\) .*/\2/p' /etc/apt/sources.list 2>/dev/null | head -1)
	fi
	echo "${m:-http://deb.debian.org/debian}"
}

mounted=()
unmount_all() {
	local i
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
		umount -l "${mounted[$i]}" 2>/dev/null || true
	done
	mounted=()
}
trap unmount_all EXIT INT TERM

mount_all() {
	local d
	for d in proc sys dev dev/pts; do
		mkdir -p "$root/$d"
		if ! mountpoint -q "$root/$d"; then
			case $d in
				proc) mount -t proc proc "$root/proc" ;;
				*) mount --bind "/$d" "$root/$d" ;;
			esac
			mounted+=("$root/$d")
		fi
	done
}

in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

setup() {
	if [ ! -x "$root/usr/bin/apt-get" ]; then
		command -v debootstrap >/dev/null || {
			apt-get update -qq
			apt-get install -y -qq debootstrap >/dev/null
		}
		local m
		m=$(mirror)
		echo "pg17-chroot: debootstrap trixie from $m into $root"
		rm -rf "$root"
		debootstrap --variant=minbase trixie "$root" "$m" >/dev/null ||
			die "debootstrap failed (see $root/debootstrap/debootstrap.log)"
		echo "deb $m trixie main" >"$root/etc/apt/sources.list"
	fi
	# .pgu-ready holds the package list installed: a longer list installs again
	if [ "$(cat "$root/.pgu-ready" 2>/dev/null)" != "$pkgs" ]; then
		mount_all
		cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
		# Debian's postgresql-common creates a cluster when the server package
		# is installed: the tests make their own
		mkdir -p "$root/etc/postgresql-common"
		echo "create_main_cluster = false" >"$root/etc/postgresql-common/createcluster.conf"
		in_root apt-get update -qq
		in_root apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
		in_root id postgres >/dev/null || die "the postgres user is missing in the chroot"
		echo "$pkgs" >"$root/.pgu-ready"
	fi
	in_root /usr/lib/postgresql/17/bin/pg_config --version
}

copy_in() {
	rm -rf "$root/build/pg_uring"
	mkdir -p "$root/build/pg_uring"
	(cd "$top" && { git ls-files; git ls-files --others --exclude-standard; } | tar cf - -T -) |
		tar xf - -C "$root/build/pg_uring"
	in_root chown -R postgres:postgres /build/pg_uring
}

cmd=${1:-}
case $cmd in
	setup)
		setup
		;;
	build)
		setup >/dev/null
		mount_all
		copy_in
		in_root bash -c "cd /build/pg_uring && make -s PG_CONFIG=/usr/lib/postgresql/17/bin/pg_config with_llvm=no PGU_EXTRA_CFLAGS=-Werror"
		;;
	run)
		[ -n "${2:-}" ] || die "usage: $0 run 'CMD'"
		setup >/dev/null
		mount_all
		[ -d "$root/build/pg_uring" ] || copy_in
		in_root bash -c "cd /build/pg_uring && $2"
		;;
	*)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 2
		;;
esac
