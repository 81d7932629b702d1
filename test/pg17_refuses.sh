#!/usr/bin/env bash
# On a PostgreSQL version pg_uring is not yet safe on (16, 17; README.md,
# "PostgreSQL versions"), a server with pg_uring in shared_preload_libraries
# must refuse to start, naming the version, with a hint, unless
# pg_uring.test_untested_version is on; with it, it starts.  Run as the
# postgres user with PG_CONFIG naming such a server (scripts/test.sh runs it
# in the PostgreSQL 17 chroot).  Prints TAP lines; exits non-zero on failure.
set -uo pipefail

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/17/bin/pg_config}
bindir=$("$PG_CONFIG" --bindir)
ver=$("$PG_CONFIG" --version | sed 's/^PostgreSQL \([0-9]*\).*/\1/')
d=$(mktemp -d /tmp/pgu-refuse.XXXXXX)
trap '"$bindir/pg_ctl" -D "$d/data" -m immediate -w stop >/dev/null 2>&1; rm -rf "$d"' EXIT

if [ "$ver" -lt 16 ]; then
	echo "not ok 1 - PostgreSQL $ver is tested in full: this check is for 16 and later"
	exit 1
fi
if ! "$bindir/initdb" -A trust -D "$d/data" >/dev/null 2>&1; then
	echo "not ok 1 - initdb failed"
	exit 1
fi
cat >>"$d/data/postgresql.conf" <<CONF
shared_preload_libraries = 'pg_uring'
listen_addresses = ''
unix_socket_directories = '$d'
port = 56990
CONF

started=0
"$bindir/pg_ctl" -D "$d/data" -l "$d/log" -w -t 30 start >/dev/null 2>&1 && started=1
if [ "$started" = 0 ] &&
	grep -q "FATAL:  pg_uring is not yet safe to use on PostgreSQL $ver" "$d/log" &&
	grep -q "HINT:  Remove pg_uring from shared_preload_libraries" "$d/log"; then
	echo "ok 1 - PostgreSQL $ver with pg_uring preloaded refuses to start, naming the version, with a hint"
else
	echo "not ok 1 - PostgreSQL $ver with pg_uring preloaded: started=$started; the end of its log:"
	tail -5 "$d/log" | sed 's/^/# /'
	exit 1
fi

echo "pg_uring.test_untested_version = on" >>"$d/data/postgresql.conf"
if "$bindir/pg_ctl" -D "$d/data" -l "$d/log" -w -t 30 start >/dev/null 2>&1; then
	echo "ok 2 - ... and starts with pg_uring.test_untested_version = on"
else
	echo "not ok 2 - it does not start with pg_uring.test_untested_version = on; the end of its log:"
	tail -5 "$d/log" | sed 's/^/# /'
	exit 1
fi
