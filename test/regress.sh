#!/usr/bin/env bash
# Runs the pg_regress suite (sql/, expected/) against a temporary instance
# with pg_uring preloaded and data checksums on.  Run as a non-root user
# that can write to the source tree; pg_uring must be installed.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$("$PG_CONFIG" --bindir)
pgxs=$(dirname "$("$PG_CONFIG" --pgxs)")
regress="$pgxs/../test/regress/pg_regress"
tmp="$top/tmp_check/regress"
port=${PGU_REGRESS_PORT:-54329}

rm -rf "$tmp"
mkdir -p "$tmp"
"$bindir/initdb" -k -A trust -U postgres --no-sync -D "$tmp/data" >"$tmp/initdb.log" 2>&1
cat "$top/test/regress.conf" >>"$tmp/data/postgresql.conf"
cat >>"$tmp/data/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$tmp'
CONF

stop() { "$bindir/pg_ctl" -D "$tmp/data" -m fast -w stop >/dev/null 2>&1 || true; }
trap stop EXIT
"$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w start >/dev/null

cd "$top"
status=0
"$regress" --bindir="$bindir" --host="$tmp" --port="$port" --user=postgres \
	--inputdir="$top" --outputdir="$tmp" --dbname=pg_uring_regress \
	pg_uring pg_uring_privileges pg_uring_prewarm pg_uring_wal pg_uring_flush pg_uring_readahead pg_uring_stats || status=$?
if [ "$status" -ne 0 ] && [ -f "$tmp/regression.diffs" ]; then
	cat "$tmp/regression.diffs"
fi
# the suite causes no crash: any of these in the server log is a failure
if grep -E 'TRAP:|PANIC|terminated by signal' "$tmp/server.log"; then
	echo "test/regress.sh: the server log shows an assertion failure, a PANIC or a crash" >&2
	echo "test server log (no TRAP, PANIC, crash) ... FAILED"
	status=1
else
	echo "test server log (no TRAP, PANIC, crash) ... ok"
fi
exit "$status"
