#!/usr/bin/env bash
# The test command: on a fresh Debian 12 machine, as root, installs the
# dependencies, builds pg_uring with -Werror, installs it, and runs every
# test (pg_regress and TAP) as the postgres OS user, which PostgreSQL needs.
# Ends with one line "N passed, N failed".
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
export PG_CONFIG

if [ "$(id -u)" -ne 0 ]; then
	echo "scripts/test.sh installs packages and must run as root" >&2
	exit 2
fi
if [ "${PGU_SKIP_DEPS:-0}" != 1 ]; then
	bash "$top/scripts/install-deps.sh"
fi
bash "$top/scripts/build.sh"

# The server refuses to run as root: test from a copy the postgres user owns.
work=$(mktemp -d /var/tmp/pg_uring-test.XXXXXX)
cp -a "$top/." "$work/"
rm -rf "$work/tmp_check"
chown -R postgres:postgres "$work"

# The io_uring-disabled startup test flips kernel.io_uring_disabled through
# this one narrow sudo rule, and puts it back; removed again on exit.
sudoers=/etc/sudoers.d/pg_uring-tests
sysctl_bin=$(command -v sysctl)
cat >"$sudoers" <<SUDO
postgres ALL=(root) NOPASSWD: $sysctl_bin -w kernel.io_uring_disabled=0, $sysctl_bin -w kernel.io_uring_disabled=1, $sysctl_bin -w kernel.io_uring_disabled=2
SUDO
chmod 0440 "$sudoers"
orig_disabled=$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 0)
cleanup() {
	rm -f "$sudoers"
	if [ -w /proc/sys/kernel/io_uring_disabled ]; then
		echo "$orig_disabled" >/proc/sys/kernel/io_uring_disabled || true
	fi
}
trap cleanup EXIT

as_pg() { su postgres -s /bin/bash -c "cd '$work' && PG_CONFIG='$PG_CONFIG' PGU_SYSCTL='$sysctl_bin' $*"; }

set +e
as_pg bash test/regress.sh 2>&1 | tee "$work/regress.out"
regress_rc=${PIPESTATUS[0]}
as_pg bash test/tap.sh 2>&1 | tee "$work/tap.out"
tap_rc=${PIPESTATUS[0]}
set -e

r_ok=$(grep -cE '^(ok|test) .* \.\.\. +ok|^ok [0-9]+ ' "$work/regress.out" || true)
r_fail=$(grep -cE '\.\.\. +FAILED|^not ok ' "$work/regress.out" || true)
t_total=$(sed -n 's/^Files=[0-9]*, Tests=\([0-9]*\),.*/\1/p' "$work/tap.out" | tail -1)
t_total=${t_total:-0}
t_fail=$(sed -n 's/.*Failed \([0-9]*\)\/[0-9]* subtests.*/\1/p' "$work/tap.out" | awk '{s+=$1} END {print s+0}')
t_bad=$(grep -cE '(Wstat|Bad plan|No plan found)' "$work/tap.out" || true)
passed=$((r_ok + t_total - t_fail))
failed=$((r_fail + t_fail + t_bad))
if [ "$regress_rc" -ne 0 ] && [ "$r_fail" -eq 0 ]; then failed=$((failed + 1)); fi
if [ "$tap_rc" -ne 0 ] && [ "$t_fail" -eq 0 ] && [ "$t_bad" -eq 0 ]; then failed=$((failed + 1)); fi

if [ "$failed" -eq 0 ]; then
	rm -rf "$work"
else
	echo "test output kept in $work (tmp_check/ holds the server logs)"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
