#!/usr/bin/env bash
# Builds an assert-enabled PostgreSQL 15 (--enable-cassert --enable-debug
# --enable-tap-tests) from Debian's postgresql-15 source package and installs
# it into /opt/pg15-cassert (or $PGU_CASSERT_PREFIX), together with what
# pg_uring's build and tests need from it: PGXS, pg_regress, the TAP modules
# (PostgreSQL::Test::Cluster), pgbench and the contrib modules pg_buffercache,
# pg_prewarm and amcheck.  Run as root on Debian 12; only Debian's mirror is
# needed.  Skips everything when the prefix already holds a cassert build.
# See scripts/README-cassert.md.
#
# Environment:
#   PGU_CASSERT_PREFIX   install prefix            (default /opt/pg15-cassert)
#   PGU_CASSERT_WORKDIR  download and build tree   (default /var/tmp/pgu-cassert-src)
#   PGU_CASSERT_CFLAGS   compiler flags            (default "-O1 -g -fno-omit-frame-pointer")
#   PGU_CASSERT_JOBS     make -j                   (default: 2 x nproc; hides the
#                        slow process start-up of these VMs)
#   PGU_CASSERT_VERSION  source version to fetch, e.g. 15.18-0+deb12u1
#                        (default: the candidate, then every listed version)
#   PGU_CASSERT_KEEP_SRC 0 removes the build tree after installing (default 1)
#   PGU_CASSERT_FORCE    1 rebuilds even if the prefix holds a cassert build
set -Eeuo pipefail

PREFIX=${PGU_CASSERT_PREFIX:-/opt/pg15-cassert}
WORKDIR=${PGU_CASSERT_WORKDIR:-/var/tmp/pgu-cassert-src}
CFLAGS_PG=${PGU_CASSERT_CFLAGS:--O1 -g -fno-omit-frame-pointer}
JOBS=${PGU_CASSERT_JOBS:-$((2 * $(nproc 2>/dev/null || echo 2)))}
SRCPKG=postgresql-15
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

log() { printf '[build-cassert-pg] %s\n' "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
	die "must run as root (it installs packages and writes $PREFIX)"
fi

# --- timing ---------------------------------------------------------------
t_script=$(date +%s)
phase_name=""
phase_start=0
timings=()
phase() {
	phase_end
	phase_name=$1
	phase_start=$(date +%s)
	log "== $phase_name"
}
phase_end() {
	if [ -n "$phase_name" ]; then
		local d=$(($(date +%s) - phase_start))
		timings+=("$(printf '%-22s %5ss' "$phase_name" "$d")")
		log "   $phase_name took ${d}s"
		phase_name=""
	fi
}
buildlog="$WORKDIR/build.log"
on_err() {
	local rc=$?
	log "FAILED (exit $rc) in phase: ${phase_name:-?}" >&2
	if [ -f "$buildlog" ]; then
		log "last lines of $buildlog:" >&2
		tail -n 40 "$buildlog" >&2 || true
	fi
	exit "$rc"
}
trap on_err ERR

# the contrib modules the tests use
contrib="contrib/pg_buffercache contrib/pg_prewarm contrib/amcheck contrib/pageinspect"
contrib_missing() {
	local d
	for d in $contrib; do
		[ -f "$PREFIX/lib/postgresql/$(basename "$d").so" ] || return 0
	done
	return 1
}

# --- 0. already built? ------------------------------------------------------
if [ "${PGU_CASSERT_FORCE:-0}" != 1 ] && [ -x "$PREFIX/bin/pg_config" ] &&
	"$PREFIX/bin/pg_config" --configure | grep -q -- "--enable-cassert"; then
	# a build from before a contrib module was added: build just that
	# module in the kept source tree, if there is one
	if contrib_missing && [ -f "$WORKDIR/src/config.status" ]; then
		for d in $contrib; do
			if [ ! -f "$PREFIX/lib/postgresql/$(basename "$d").so" ]; then
				log "adding $d to the cassert build in $PREFIX"
				make -s -j"$JOBS" -C "$WORKDIR/src/$d" >/dev/null
				make -s -C "$WORKDIR/src/$d" install >/dev/null
			fi
		done
	fi
	if ! contrib_missing; then
		log "$PREFIX already holds a cassert build ($("$PREFIX/bin/pg_config" --version)); nothing to do"
		exit 0
	fi
	log "$PREFIX holds a cassert build without all the contrib modules; rebuilding"
fi

# --- 1. deb-src entries -----------------------------------------------------
phase "deb-src + apt update"
# originals are kept outside sources.list.d (apt warns about stray files there)
backup() {
	mkdir -p /var/backups/pgu-cassert
	local b
	b="/var/backups/pgu-cassert/$(basename "$1").orig"
	[ -e "$b" ] || cp -p "$1" "$b"
}
# deb822 files: add deb-src to the Types of every stanza pointing at a Debian
# archive (URIs containing "debian"), unless it is there already.
for f in /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	if perl -00 -ne '$n++ if /^URIs:.*\bdebian\b/mi && /^Types:(?!.*\bdeb-src\b)/mi; END { exit($n ? 0 : 1) }' "$f"; then
		backup "$f"
		perl -00 -pi -e 's/^(Types:(?!.*\bdeb-src\b).*?)[ \t]*$/$1 deb-src/mi if /^URIs:.*\bdebian\b/mi' "$f"
		log "added deb-src to $f"
	fi
done
# classic one-line files: for every "deb" line of a Debian archive add the
# matching "deb-src" line, unless one is there already.
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
	[ -f "$f" ] || continue
	if perl -ne '
		if (/^\s*deb\s+(.*\S)\s*$/) { my $e = $1; $want{$e} = 1 if $e =~ m{\bdebian\b} }
		if (/^\s*deb-src\s+(.*\S)\s*$/) { $have{$1} = 1 }
		END { for (keys %want) { exit 0 unless $have{$_} } exit 1 }' "$f"; then
		backup "$f"
		perl -i -ne '
			BEGIN { open my $h, "<", $ARGV[0] or die; while (<$h>) { $have{$1} = 1 if /^\s*deb-src\s+(.*\S)\s*$/ } }
			print;
			if (/^\s*deb\s+(.*\S)\s*$/) {
				my $e = $1;
				if ($e =~ m{\bdebian\b} && !$have{$e}) { print "deb-src $e\n"; $have{$e} = 1 }
			}' "$f"
		log "added deb-src lines to $f"
	fi
done
apt-get update -qq

# --- 2. build dependencies --------------------------------------------------
phase "build deps"
# --without-readline and --without-icu keep the list short; bison and flex are
# only a safety net (the release tarball ships the generated parsers).
# Only what is missing is installed: naming an installed package to apt-get
# would also upgrade it (perl, dpkg, ...), which costs time and is not ours
# to do.
need=()
for p in dpkg-dev bzip2 xz-utils gcc make libc6-dev bison flex zlib1g-dev \
	perl libipc-run-perl; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
		need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
	log "installing: ${need[*]}"
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- 3. fetch the source ----------------------------------------------------
phase "fetch source"
mkdir -p "$WORKDIR"
: >"$buildlog"
dl="$WORKDIR/download"
fetch() { # [=version]
	rm -rf "$dl"
	mkdir -p "$dl"
	(cd "$dl" && apt-get source -q --download-only "$SRCPKG$1") >>"$buildlog" 2>&1
}
if [ -n "${PGU_CASSERT_VERSION:-}" ]; then
	fetch "=$PGU_CASSERT_VERSION" || die "apt-get source $SRCPKG=$PGU_CASSERT_VERSION failed"
elif ! fetch ""; then
	log "default source version not downloadable; trying the listed versions"
	ok=0
	for v in $(apt-cache showsrc "$SRCPKG" | sed -n 's/^Version: //p' | sort -u | sort -rV); do
		log "trying $SRCPKG=$v"
		if fetch "=$v"; then ok=1; break; fi
	done
	[ "$ok" = 1 ] || die "no version of source package $SRCPKG could be downloaded"
fi
dsc=$(ls "$dl"/"$SRCPKG"_*.dsc)
log "fetched $(basename "$dsc")"

# Unpack WITHOUT the Debian patches: 50-per-version-dirs.patch hard-codes
# pkglibdir to /usr/lib/postgresql/15/lib for any libdir not containing
# "postgres", which would make "make install" overwrite the system server's
# modules.  The plain upstream tree installs everything under $PREFIX.
phase "unpack"
src="$WORKDIR/src"
rm -rf "$src"
dpkg-source -q --no-check --skip-patches -x "$dsc" "$src" >>"$buildlog" 2>&1
log "upstream tree: $src ($(sed -n 's/^AC_INIT(\[PostgreSQL\], \[\([^]]*\)\].*/\1/p' "$src/configure.ac"))"

# --- 4. configure, build, install -------------------------------------------
phase "configure"
cd "$src"
./configure --prefix="$PREFIX" \
	--enable-cassert --enable-debug --enable-tap-tests \
	--without-icu --without-readline --with-zlib \
	CFLAGS="$CFLAGS_PG" >>"$buildlog" 2>&1

phase "make"
make -s -j"$JOBS" >>"$buildlog" 2>&1
for d in $contrib; do
	make -s -j"$JOBS" -C "$d" >>"$buildlog" 2>&1
done

phase "install"
# the top-level install covers the server, client programs (pgbench is core
# in 15), headers, PGXS, pg_regress (lib/postgresql/pgxs/src/test/regress) and,
# with --enable-tap-tests, the PostgreSQL::Test modules
# (lib/postgresql/pgxs/src/test/perl)
make -s install >>"$buildlog" 2>&1
for d in $contrib; do
	make -s -C "$d" install >>"$buildlog" 2>&1
done
phase_end

# --- 5. check the result ----------------------------------------------------
pgc="$PREFIX/bin/pg_config"
pgxs=$(dirname "$("$pgc" --pgxs)")
missing=0
for f in "$pgc" "$PREFIX/bin/postgres" "$PREFIX/bin/initdb" "$PREFIX/bin/pgbench" \
	"$pgxs/../test/regress/pg_regress" \
	"$pgxs/../test/perl/PostgreSQL/Test/Cluster.pm" \
	"$pgxs/../test/perl/PostgreSQL/Test/Utils.pm" \
	"$("$pgc" --pkglibdir)/pg_buffercache.so" \
	"$("$pgc" --pkglibdir)/pg_prewarm.so" \
	"$("$pgc" --pkglibdir)/amcheck.so" \
	"$("$pgc" --pkglibdir)/pageinspect.so" \
	"$("$pgc" --includedir-server)/postgres.h"; do
	if [ ! -e "$f" ]; then log "missing after install: $f" >&2; missing=1; fi
done
[ "$missing" = 0 ] || die "installation incomplete"
"$pgc" --configure | grep -q -- "--enable-cassert" || die "pg_config does not report --enable-cassert"

if [ "${PGU_CASSERT_KEEP_SRC:-1}" = 0 ]; then
	rm -rf "$src" "$dl"
fi

log "installed $("$pgc" --version) with --enable-cassert into $PREFIX"
log "phase timings:"
for t in "${timings[@]}"; do log "   $t"; done
log "   total                  $(($(date +%s) - t_script))s"
log "disk: prefix $(du -sh "$PREFIX" | cut -f1), work dir $(du -sh "$WORKDIR" | cut -f1)"
