#!/usr/bin/env bash
# The test command: on a fresh Debian 12 machine, as root, installs the
# dependencies, builds pg_uring with -Werror, installs it, and runs every
# test (pg_regress and TAP) as the postgres OS user, which PostgreSQL needs:
# first against Debian's PostgreSQL 15, then against an assert-enabled
# PostgreSQL 15 built from Debian's source package (scripts/build-cassert-pg.sh),
# which catches pin, lock and resource-owner misuse.  The buffer-read and
# write-back TAP files also run with pg_uring.io_method = sync against
# Debian's build (parity: the same results without a ring).
# Then Debian 13's PostgreSQL 17 in a chroot (scripts/pg17-chroot.sh): the
# build with -Werror, the pg_regress suite and the TAP suite but for the
# files on seq-scan read-ahead (PG17_EXCLUDED).  Then the power-loss harness
# (test/power/run.sh), as root, on 15 and on 17.
# Ends with one line "N passed, N failed, N skipped": pg_regress files, TAP
# assertions and power-loss checks, each counted once.  A skip fails the run
# (this machine has every feature the tests need: io_uring, the
# kernel.io_uring_disabled sysctl, loop devices) unless PGU_ALLOW_SKIPS=1.
#
# PGU_SKIP_DEPS=1 skips apt; PGU_SKIP_CASSERT=1 skips the assert-enabled run;
# PGU_SKIP_POWER=1 skips the power-loss harness, PGU_SKIP_PG17=1 the
# PostgreSQL 17 run (each counted as a skip).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
CASSERT_PREFIX=${PGU_CASSERT_PREFIX:-/opt/pg15-cassert}
export PG_CONFIG

if [ "$(id -u)" -ne 0 ]; then
	echo "scripts/test.sh installs packages and must run as root" >&2
	exit 2
fi
if [ "${PGU_SKIP_DEPS:-0}" != 1 ]; then
	bash "$top/scripts/install-deps.sh"
fi
bash "$top/scripts/build.sh"

# The io_uring-disabled startup test flips kernel.io_uring_disabled through
# this one narrow sudo rule, and puts it back; removed again on exit.
sudoers=/etc/sudoers.d/pg_uring-tests
pg17_root=${PGU_CHROOT:-/var/tmp/pgu-trixie}
sysctl_bin=$(command -v sysctl)
cat >"$sudoers" <<SUDO
postgres ALL=(root) NOPASSWD: $sysctl_bin -w kernel.io_uring_disabled=0, $sysctl_bin -w kernel.io_uring_disabled=1, $sysctl_bin -w kernel.io_uring_disabled=2
SUDO
chmod 0440 "$sudoers"
orig_disabled=$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 0)
cleanup() {
	rm -f "$sudoers" "$pg17_root$sudoers"
	if [ -w /proc/sys/kernel/io_uring_disabled ]; then
		echo "$orig_disabled" >/proc/sys/kernel/io_uring_disabled || true
	fi
}
trap cleanup EXIT

passed=0
failed=0
skipped=0
kept=()
# what failed, printed again just before the last line: CI shows only the
# tail of the output, which the power-loss harness fills otherwise
failures=$(mktemp /var/tmp/pg_uring-failures.XXXXXX)
# note_failures LABEL N FILE ERE: if N > 0, FILE's lines matching ERE go there
note_failures() {
	[ "$2" -gt 0 ] || return 0
	{
		echo "--- $1: $2 failed (output in $3)"
		grep -E "$4" "$3" | cut -c1-300 | head -20 || true
	} >>"$failures"
}

# The 10x (buffer reads) and 20x (write-back) TAP files that also run with
# pg_uring.io_method = sync, for parity: all of them but these two, whose
# subject exists only with a ring (an IO submitted and left unreaped while
# someone else acts on it):
#   102  completions processed by another backend and by the reaper
#   111  a prewarm asking core for a block whose read is held unreaped
#   208  a completion of an older IO racing a newer IO of the same buffer
# (Single cases that need a ring are marked in their files, e.g. 207's chain
# split by the kernel; where sync mode behaves differently on purpose the
# file asserts what sync mode must do, e.g. 211's wal_flush_waits = 0.)
SYNC_EXCLUDED="102 111 208"

# tap_files_except GLOB "N N ...": the TAP files test/t/GLOB but those numbered N
tap_files_except() {
	local f n
	for f in "$top"/test/t/$1; do
		n=$(basename "$f")
		case " $2 " in *" ${n%%_*} "*) continue ;; esac
		printf 'test/t/%s ' "$n"
	done
}

# The TAP files not run on PostgreSQL 17, whose subject is pg_uring's
# read-ahead of seq scans: on 17 seq scans read through core's own read
# stream and pg_uring leaves them to it (src/compat.h,
# PGU_CORE_STREAMS_SEQSCAN; 301 asserts that it does):
#   302  read-ahead (distance, strategy, LIMIT, errors, pin trap: seq scans)
#   303  read-ahead across subtransactions, cursors and descriptor limits
PG17_EXCLUDED="302 303"

# run_suites LABEL PG_CONFIG [sync|pg17]: both suites as postgres, from a copy
# it owns; with "sync", only the TAP files but SYNC_EXCLUDED, every node with
# pg_uring.io_method = sync (PGU_TEST_IO_METHOD); with "pg17", in the chroot of
# scripts/pg17-chroot.sh (its copy of this checkout, built with -Werror and
# installed there), without the files of PG17_EXCLUDED
# owned_copy: a copy of this checkout the postgres user owns, without
# tmp_check; prints its directory
owned_copy() {
	local work
	work=$(mktemp -d "/var/tmp/pg_uring-$1.XXXXXX")
	cp -a "$top/." "$work/"
	rm -rf "$work/tmp_check"
	chown -R postgres:postgres "$work"
	echo "$work"
}

run_suites() {
	local label=$1 pgc=$2 mode=${3:-io_uring} work regress_rc=0 tap_rc r_ok r_fail t_total t_fail t_bad t_skip t_skip_files f
	local tap_env="" tap_files="" sysctl=$sysctl_bin
	if [ "$mode" = pg17 ]; then
		bash "$top/scripts/pg17-chroot.sh" setup
		# 005 flips kernel.io_uring_disabled from inside the chroot: the same rule
		sed 's|'"$sysctl_bin"'|/usr/sbin/sysctl|g' "$sudoers" >"$pg17_root$sudoers"
		chmod 0440 "$pg17_root$sudoers"
		bash "$top/scripts/pg17-chroot.sh" build
		# (chown: the chroot's postgres user, whose uid may differ from this machine's)
		bash "$top/scripts/pg17-chroot.sh" run "make -s PG_CONFIG='$pgc' with_llvm=no install && chown -R postgres:postgres /build/pg_uring"
		work=$pg17_root/build/pg_uring
		tap_files=$(tap_files_except '[0-9][0-9][0-9]_*.pl' "$PG17_EXCLUDED")
		sysctl=/usr/sbin/sysctl
		echo "=== $label: $(bash "$top/scripts/pg17-chroot.sh" run "$pgc --version") ($pgc, in $pg17_root)"
		echo "    not run on 17: $PG17_EXCLUDED (seq-scan read-ahead, which pg_uring leaves to 17's read stream)"
	else
		work=$(owned_copy test)
		echo "=== $label: $("$pgc" --version) ($pgc)"
	fi
	# as_postgres CMD: CMD as the postgres user in the copy
	as_postgres() {
		if [ "$mode" = pg17 ]; then
			bash "$top/scripts/pg17-chroot.sh" run "su postgres -s /bin/bash -c \"cd /build/pg_uring && $1\""
		else
			su postgres -s /bin/bash -c "cd '$work' && $1"
		fi
	}

	set +e
	if [ "$mode" = sync ]; then
		tap_env="PGU_TEST_IO_METHOD=sync"
		tap_files=$(tap_files_except '[12][0-9][0-9]_*.pl' "$SYNC_EXCLUDED")
		: >"$work/regress.out"
	else
		as_postgres "PG_CONFIG='$pgc' bash test/regress.sh" 2>&1 | tee "$work/regress.out"
		regress_rc=${PIPESTATUS[0]}
	fi
	as_postgres "$tap_env PG_CONFIG='$pgc' PGU_SYSCTL='$sysctl' bash test/tap.sh $tap_files" 2>&1 | tee "$work/tap.out"
	tap_rc=${PIPESTATUS[0]}
	set -e

	r_ok=$(grep -cE '^(ok|test) .* \.\.\. +ok' "$work/regress.out" || true)
	r_fail=$(grep -cE '\.\.\. +FAILED' "$work/regress.out" || true)
	t_total=$(sed -n 's/^Files=[0-9]*, Tests=\([0-9]*\),.*/\1/p' "$work/tap.out" | tail -1)
	t_total=${t_total:-0}
	t_fail=$(sed -n 's/.*Failed \([0-9]*\)\/[0-9]* subtests.*/\1/p' "$work/tap.out" | awk '{s+=$1} END {print s+0}')
	# files that failed without a failed assertion (died, bad or missing plan): a
	# file whose assertions failed is already counted by them
	t_bad=$(grep -E '^test/t/[^ ]+\.pl +\((Wstat: [0-9]+ .*)?Tests: [0-9]+ Failed: 0\)$' "$work/tap.out" | grep -c . || true)
	# skipped: whole files (skip_all) and single assertions ("ok N # skip")
	t_skip_files=$(grep -cE '^test/t/[^ ]+\.pl \.+ skipped:' "$work/tap.out" || true)
	t_skip=$(cat "$work"/tmp_check/tap/tmp_check/log/regress_log_* 2>/dev/null |
		grep -cE '\) ok [0-9]+ # skip' || true)
	f=$((r_fail + t_fail + t_bad))
	if [ "$regress_rc" -ne 0 ] && [ "$r_fail" -eq 0 ]; then f=$((f + 1)); fi
	if [ "$tap_rc" -ne 0 ] && [ "$t_fail" -eq 0 ] && [ "$t_bad" -eq 0 ]; then f=$((f + 1)); fi
	if [ "$t_total" -eq 0 ]; then
		echo "$label: the TAP suite ran no test" >&2
		f=$((f + 1))
	fi
	passed=$((passed + r_ok + t_total - t_fail - t_skip))
	failed=$((failed + f))
	skipped=$((skipped + t_skip + t_skip_files))
	echo "=== $label: $((r_ok + t_total - t_fail - t_skip)) passed, $f failed, $((t_skip + t_skip_files)) skipped"
	grep -E '^test/t/[^ ]+\.pl \.+ skipped:' "$work/tap.out" || true
	if [ "$f" -eq 0 ]; then
		rm -rf "$work"
	else
		kept+=("$work")
		{
			echo "--- $label: $f failed (output in $work)"
			grep -hE '\.\.\. +FAILED' "$work/regress.out" || true
			grep -hE '^(test/t/[^ ]+\.pl +\(Wstat|#   Failed test|#   at |Bailout called|# +(got|expected):)' "$work/tap.out" |
				cut -c1-300 | head -60 || true
		} >>"$failures"
	fi
}

run_suites "Debian PostgreSQL 15" "$PG_CONFIG"
run_suites "Debian PostgreSQL 15, pg_uring.io_method = sync (10x, 20x)" "$PG_CONFIG" sync

if [ "${PGU_SKIP_CASSERT:-0}" != 1 ]; then
	bash "$top/scripts/build-cassert-pg.sh"
	cassert_pgc="$CASSERT_PREFIX/bin/pg_config"
	# objects are compiled against one server's headers: build apart
	build=$(mktemp -d /var/tmp/pg_uring-cassert-build.XXXXXX)
	cp -a "$top/src" "$top/Makefile" "$top/pg_uring.control" "$top"/pg_uring--*.sql "$build/"
	rm -f "$build"/src/*.o "$build"/*.so
	make -s -C "$build" PG_CONFIG="$cassert_pgc" with_llvm=no PGU_EXTRA_CFLAGS=-Werror
	make -s -C "$build" PG_CONFIG="$cassert_pgc" with_llvm=no install
	rm -rf "$build"
	run_suites "assert-enabled PostgreSQL 15" "$cassert_pgc"
fi

# run_tap LABEL OUT CMD...: a stage whose stdout is TAP (the power-loss
# harness, packaging), counted: a failed assertion, a non-zero exit without
# one, no plan, or fewer results than the plan are failures
run_tap() {
	local label=$1 out=$2 rc_tap p_ok p_skip_ok p_fail p_skip_all p_ran p_plan
	shift 2
	echo "=== $label"
	set +e
	"$@" 2>&1 | tee "$out"
	rc_tap=${PIPESTATUS[0]}
	set -e
	p_ok=$(grep -cE '^ok [0-9]+' "$out" || true)
	p_skip_ok=$(grep -cE '^ok [0-9]+ .*# skip' "$out" || true)
	p_fail=$(grep -cE '^not ok [0-9]+' "$out" || true)
	p_skip_all=$(grep -cE '^1\.\.0 # (SKIP|skip)' "$out" || true)
	p_ran=$(grep -cE '^1\.\.[1-9]' "$out" || true)
	if [ "$rc_tap" -ne 0 ] && [ "$p_fail" -eq 0 ]; then p_fail=1; fi
	if [ "$p_ran" -eq 0 ] && [ "$p_skip_all" -eq 0 ] && [ "$p_fail" -eq 0 ]; then
		echo "$label: no plan was printed" >&2
		p_fail=1
	fi
	p_plan=$(sed -n 's/^1\.\.\([1-9][0-9]*\).*/\1/p' "$out" | tail -1)
	if [ -n "$p_plan" ] && [ $((p_ok + p_fail)) -lt "$p_plan" ]; then
		echo "$label: $((p_ok + p_fail)) results for a plan of $p_plan" >&2
		p_fail=$((p_plan - p_ok))
	fi
	note_failures "$label" "$p_fail" "$out" '^not ok [0-9]+'
	passed=$((passed + p_ok - p_skip_ok))
	failed=$((failed + p_fail))
	skipped=$((skipped + p_skip_ok + p_skip_all))
	echo "=== $label: $((p_ok - p_skip_ok)) passed, $p_fail failed, $((p_skip_ok + p_skip_all)) skipped"
}

# Packaging, the way PostgreSQL users install and test an extension:
# META.json for PGXN; the Debian package (debian/, pg_buildext) built,
# installed and tested with its autopkgtest (make installcheck against the
# installed files), then removed, the files of the "make install" put back;
# make prove_installcheck (PGXS's TAP target) on one file.  TAP on stdout,
# the commands' own output in /var/tmp/pg_uring-packaging.log (printed when
# one fails)
packaging_tap() {
	local log=/var/tmp/pg_uring-packaging.log work n=0
	: >"$log"
	# step DESCRIPTION CMD...
	step() {
		local d=$1
		shift
		n=$((n + 1))
		if "$@" >>"$log" 2>&1; then
			echo "ok $n - $d"
		else
			echo "not ok $n - $d (output in $log)"
			tail -40 "$log" | sed 's/^/    /' >&2
		fi
	}
	echo "1..3"
	step "META.json" bash "$top/test/meta_json.sh"
	step "Debian package built, installed, tested" bash "$top/scripts/deb.sh"
	work=$(owned_copy pgxs)
	step "make prove_installcheck" su postgres -s /bin/bash -c \
		"cd '$work' && make -s PG_CONFIG='$PG_CONFIG' PGU_SYSCTL='$sysctl_bin' prove_installcheck PROVE_TESTS=test/t/011_footprint.pl"
	rm -rf "$work"
}
run_tap "packaging (META.json, the Debian package, make prove_installcheck)" /var/tmp/pg_uring-packaging.out packaging_tap

# PostgreSQL 17: Debian 13's, in a chroot (scripts/pg17-chroot.sh; the
# kernel and its io_uring are this machine's): build with -Werror, install
# there, run the pg_regress and TAP suites as the chroot's postgres user
if [ "${PGU_SKIP_PG17:-0}" = 1 ]; then
	echo "=== PostgreSQL 17: skipped (PGU_SKIP_PG17=1)"
	skipped=$((skipped + 1))
else
	run_suites "PostgreSQL 17 (Debian 13 chroot)" /usr/lib/postgresql/17/bin/pg_config pg17
fi

# the power-loss harness (root: loop devices, sysctls; its servers run as
# postgres): against Debian's 15, then against 17 in the chroot (where
# run_suites installed pg_uring; run copies this checkout in again)
if [ "${PGU_SKIP_POWER:-0}" = 1 ]; then
	echo "=== power loss: skipped (PGU_SKIP_POWER=1)"
	skipped=$((skipped + 1))
else
	run_tap "power loss (test/power/run.sh), PostgreSQL 15" /var/tmp/pg_uring-power-15.out bash -c "cd '$top' && PG_CONFIG='$PG_CONFIG' bash test/power/run.sh"
	if [ "${PGU_SKIP_PG17:-0}" != 1 ]; then
		run_tap "power loss (test/power/run.sh), PostgreSQL 17" /var/tmp/pg_uring-power-17.out \
			bash "$top/scripts/pg17-chroot.sh" run \
			"PG_CONFIG=/usr/lib/postgresql/17/bin/pg_config bash test/power/run.sh"
	fi
fi

for w in "${kept[@]}"; do
	echo "test output kept in $w (tmp_check/ holds the server logs)"
done
if [ -s "$failures" ]; then
	echo "=== what failed"
	head -100 "$failures"
fi
rm -f "$failures"
if [ "$skipped" -gt 0 ] && [ "${PGU_ALLOW_SKIPS:-0}" != 1 ]; then
	echo "$skipped tests were skipped: on this machine every feature they need exists, so a skip is a failure (PGU_ALLOW_SKIPS=1 accepts them elsewhere)" >&2
	failed=$((failed + 1))
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
