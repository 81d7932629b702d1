#!/usr/bin/env bash
# Runs the TAP suite (test/t/*.pl) with PostgreSQL's own test modules
# (PostgreSQL::Test::Cluster).  Run as a non-root user that can write to
# the source tree; pg_uring must be installed.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$("$PG_CONFIG" --bindir)
pgxs=$(dirname "$("$PG_CONFIG" --pgxs)")

rm -rf "$top/tmp_check/tap"
mkdir -p "$top/tmp_check/tap"
cd "$top"
export PATH="$bindir:$PATH"
export TESTDIR="$top/tmp_check/tap"
# where data directories and logs go: 15 derives them from TESTDIR, 17 reads
# these two (and would otherwise use tmp_check and log in the current directory)
export TESTDATADIR="$TESTDIR/tmp_check"
export TESTLOGDIR="$TESTDIR/tmp_check/log"
export PG_REGRESS="$pgxs/../test/regress/pg_regress"
export PGPORT=${PGPORT:-55432}
# prove looks for *.t by default: name the .pl files explicitly
if [ "$#" -eq 0 ]; then
	set -- test/t/*.pl
fi
# with no inherited descriptor above stderr (test/closefds.sh says why)
exec bash "$top/test/closefds.sh" prove -I "$pgxs/../test/perl" -I "$top/test" ${PROVE_FLAGS:-} "$@"
