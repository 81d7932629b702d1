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
# The servers the tests start must inherit no descriptor from whatever ran
# the suite (a CI runner's pipes): tests such as 303 count the descriptors
# a postmaster starts with against max_files_per_process.  Perl marks its
# own as close-on-exec; close the inherited ones above stderr (but bash's
# own script descriptor, 255).
for fd in $(ls /proc/$$/fd); do
	case $fd in 0 | 1 | 2 | 255) continue ;; esac
	{ eval "exec $fd>&-"; } 2>/dev/null || true
done
# prove looks for *.t by default: name the .pl files explicitly
if [ "$#" -eq 0 ]; then
	set -- test/t/*.pl
fi
exec prove -I "$pgxs/../test/perl" -I "$top/test" ${PROVE_FLAGS:-} "$@"
