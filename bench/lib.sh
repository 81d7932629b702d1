# bench/lib.sh - shell code shared by checkpoint_bench.sh, writer_bench.sh and
# readahead_bench.sh.
# Not run on its own: a benchmark sources it (". "$TOP/bench/lib.sh") after its
# checks, once the globals below are set, and before it creates its temp dir.
#
# What it provides, and the globals each piece expects from the caller:
#
#   DEADLINE, left, bounded <max secs> cmd...
#       at most max secs and never past T_BEGIN + MAX_SECS (both read when
#       the file is sourced); die on the deadline.
#   WORK="", DATA="", DONE=0, pg_running, pg_start, pg_stop
#       the throwaway server in $DATA (log $WORK/server.log), run as the
#       postgres OS user: ASP (array, e.g. runuser -u postgres --), BINDIR;
#       pg_start also sets PM_PID (the postmaster's PID).
#   cleanup, and the EXIT/INT/TERM traps
#       stops the server, writes $RESULTS/$BENCH_NAME-$STAMP.partial.txt
#       (RAW_HEADER, then $WORK/raw.tsv) unless DONE=1, removes $WORK
#       unless KEEP=1. Expects BENCH_NAME, RESULTS, STAMP, RAW_HEADER, KEEP.
#   q psql-args...
#       psql to the server (socket dir $WORK, PORT, DB), under bounded and
#       statement_timeout, both QTIMEOUT s, default Q_TIMEOUT.
#   load1, NOTES=(), wait_for_quiet
#       the 1-minute load average; wait_for_quiet waits at most LOAD_WAIT s
#       for it to drop below 1.0 (a NOTES entry when it does not).
#   MY_SESS, PM_PID=-1, CLK_TCK, busy_ticks, own_snapshot, uptime_ticks,
#   foreign_begin, foreign_end, wait_foreign_quiet
#       the CPU used by processes outside this benchmark (FOREIGN_PCT,
#       FOREIGN_TOP; scratch files $WORK/cpu0, $WORK/cpu1); the server is
#       PM_PID and its children. wait_foreign_quiet samples QUIET_SAMPLE s at
#       a time, at most QUIET_WAIT s, and sets GATE_WAITED and GATE_PCT.
#   server_ticks [pid]
#       "<all> <one>": CPU ticks of the server (PM_PID) and of child pid.
#   drop_caches
#       sync (bounded), then the OS page cache dropped (echo 3 >
#       /proc/sys/vm/drop_caches; needs root): the "cold" of a cold run.
#
# All of it runs under the caller's set -euo pipefail; log and die are the
# caller's.
# shellcheck shell=bash
# shellcheck disable=SC2034 # GATE_WAITED, GATE_PCT and the like are for the caller

# ---------------------------------------------------------------------------
# deadline: every external step runs under timeout(1) with what is left
# ---------------------------------------------------------------------------
DEADLINE=$((T_BEGIN + MAX_SECS))
left() {
	local l=$((DEADLINE - $(date +%s)))
	[ "$l" -gt 5 ] || die "the run took longer than PGU_BENCH_MAX_SECS=$MAX_SECS s: stopped"
	echo "$l"
}
bounded() {	# bounded <max secs> cmd...: at most max secs and never past the deadline
	local max=$1 l
	shift
	l=$(left)
	[ "$l" -lt "$max" ] && max=$l
	timeout -k 10 "$max" "$@"
}

# ---------------------------------------------------------------------------
# temp dir, server, cleanup
# ---------------------------------------------------------------------------
WORK=""
DATA=""
DONE=0

pg_running() { [ -n "$DATA" ] && [ -f "$DATA/postmaster.pid" ]; }
pg_start() {
	bounded 300 "${ASP[@]}" "$BINDIR/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w -t 280 start >/dev/null ||
		{ tail -n 30 "$WORK/server.log" >&2; die "server did not start (log: $WORK/server.log)"; }
	PM_PID=$(head -n 1 "$DATA/postmaster.pid")
}
pg_stop() {
	bounded 300 "${ASP[@]}" "$BINDIR/pg_ctl" -D "$DATA" -m fast -w -t 280 stop >/dev/null
}

cleanup() {
	local rc=$?
	set +e
	if pg_running; then
		"${ASP[@]}" "$BINDIR/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null 2>&1 ||
			"${ASP[@]}" "$BINDIR/pg_ctl" -D "$DATA" -m immediate -w -t 60 stop >/dev/null 2>&1
	fi
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if [ "$DONE" != 1 ] && [ -s "$WORK/raw.tsv" ]; then
			mkdir -p "$RESULTS"
			{
				echo "$BENCH_NAME INCOMPLETE (exit $rc) - raw rows so far:"
				echo "$RAW_HEADER"
				cat "$WORK/raw.tsv"
			} >"$RESULTS/$BENCH_NAME-$STAMP.partial.txt"
			log "partial raw rows in $RESULTS/$BENCH_NAME-$STAMP.partial.txt"
		fi
		if [ "$DONE" != 1 ] && [ -f "$WORK/server.log" ]; then
			log "last server log lines:"
			tail -n 15 "$WORK/server.log" >&2
		fi
		if [ "$KEEP" = 1 ]; then
			log "kept $WORK (PGU_BENCH_KEEP=1); remove it with: rm -rf $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
	return $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

drop_caches() {
	bounded 300 sync
	echo 3 >/proc/sys/vm/drop_caches
}

q() {
	bounded "${QTIMEOUT:-$Q_TIMEOUT}" env PGOPTIONS="-c statement_timeout=${QTIMEOUT:-$Q_TIMEOUT}s" \
		"$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -At -F '|' -h "$WORK" -p "$PORT" -U postgres -d "$DB" "$@"
}

# ---------------------------------------------------------------------------
# load on the machine: the 1-minute load average, and the CPU used by what
# is not ours (neither the postmaster nor its children, nor in this
# script's session) and not a kernel thread.  Every postmaster child calls
# setsid(), so the server is found by parent, not by session.
# ---------------------------------------------------------------------------
load1() { cut -d' ' -f1 /proc/loadavg; }
NOTES=()
wait_for_quiet() {
	local waited=0
	while awk -v l="$(load1)" 'BEGIN { exit !(l >= 1.0) }'; do
		if [ "$waited" -ge "$LOAD_WAIT" ]; then
			log "WARNING: 1-minute load still $(load1) after ${waited} s: going on"
			NOTES+=("the 1-minute load was still $(load1) after waiting ${waited} s for it to drop below 1.0")
			return 0
		fi
		[ "$waited" -eq 0 ] && log "waiting (at most ${LOAD_WAIT} s) for the 1-minute load ($(load1)) to drop below 1.0"
		sleep 10
		waited=$((waited + 10))
	done
	[ "$waited" -gt 0 ] && log "load $(load1) after ${waited} s"
	return 0
}
MY_SESS=$(ps -o sess= $$ | tr -d ' ')
PM_PID=-1
CLK_TCK=$(getconf CLK_TCK)
# busy CPU ticks of the whole machine: user, nice, system (not idle, iowait,
# steal, nor irq and softirq, which no task's times include: the disk
# interrupts of our own writes would look foreign)
busy_ticks() { awk '$1 == "cpu" { printf "%d", $2 + $3 + $4; exit }' /proc/stat; }
# prints "<ours> <kernel threads>": CPU ticks used so far by this benchmark
# (the postmaster with its exited children and every live child, threads
# such as io_uring workers included; every process of this script's
# session, with its exited children) and by kernel threads; writes
# "pid:starttime ticks comm" of every other process to file $1 (PID 1
# without its children: those are orphans, reaped long after they ran)
own_snapshot() {
	# processes come and go while cat reads: its complaints are expected
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pm="$PM_PID" -v g="$MY_SESS" -v list="$1" '{
		line = $0; sub(/^.*\) /, "", line); split(line, f, " ")
		# f: 1 state 2 ppid 3 pgrp 4 session 7 flags 12 utime 13 stime 14 cutime 15 cstime 20 starttime
		self = f[12] + f[13]; all = self + f[14] + f[15]
		if (int(f[7] / 2097152) % 2 == 1) { k += self; next }		# PF_KTHREAD
		if ($1 == pm || f[4] == g) { o += all; next }
		if (f[2] == pm) { o += self; next }
		comm = $0; sub(/^[^(]*\(/, "", comm); sub(/\) [^)]*$/, "", comm); gsub(/[^A-Za-z0-9_.:\/-]/, "_", comm)
		print $1 ":" f[20], ($1 == 1) ? self : all, comm > list }
		END { printf "%d %d\n", o, k }'
}
uptime_ticks() { awk -v hz="$CLK_TCK" '{ printf "%d", $1 * hz }' /proc/uptime; }
foreign_begin() {
	FOREIGN_B0=$(busy_ticks)
	FOREIGN_O0=$(own_snapshot "$WORK/cpu0")
	FOREIGN_T0=$(date +%s.%N)
	FOREIGN_UP0=$(uptime_ticks)
}
# FOREIGN_PCT: the CPU used since foreign_begin by everything but this
# benchmark and kernel threads, in % of all CPUs (the machine's busy time
# from /proc/stat minus ours); FOREIGN_TOP: the biggest other processes
# ("comm pct%, ...")
foreign_end() {
	local t1 b1 o1
	b1=$(busy_ticks)
	o1=$(own_snapshot "$WORK/cpu1")
	t1=$(date +%s.%N)
	FOREIGN_TOP=$(awk -v up0="$FOREIGN_UP0" -v hz="$CLK_TCK" -v t0="$FOREIGN_T0" -v t1="$t1" -v n="$(nproc)" '
		FNR == NR { a[$1] = $2; next }
		{ split($1, k, ":"); x = 0; if ($1 in a) x = $2 - a[$1]; else if (k[2] >= up0) x = $2; if (x > 0) c[$3] += x }
		END { w = (t1 - t0) * n * hz; for (m in c) if (w > 0 && 100 * c[m] / w >= 1) printf "%.0f %s\n", 100 * c[m] / w, m }' \
		"$WORK/cpu0" "$WORK/cpu1" | sort -rn | head -n 3 | awk '{ printf "%s%s %s%%", (NR > 1) ? ", " : "", $2, $1 }')
	FOREIGN_PCT=$(awk -v b0="$FOREIGN_B0" -v b1="$b1" -v o0="$FOREIGN_O0" -v o1="$o1" -v hz="$CLK_TCK" \
		-v t0="$FOREIGN_T0" -v t1="$t1" -v n="$(nproc)" 'BEGIN { split(o0, x, " "); split(o1, y, " ")
		d = (b1 - b0) - (y[1] - x[1]) - (y[2] - x[2]); if (d < 0) d = 0
		w = t1 - t0; printf "%.0f", (w > 0) ? 100 * d / hz / (w * n) : 0 }')
}
# before each timed case or run: wait (at most PGU_BENCH_QUIET_WAIT s) until
# the foreign processes used less than 10% of the CPUs over QUIET_SAMPLE s;
# GATE_WAITED and GATE_PCT say how long it waited and what it saw last
wait_foreign_quiet() {
	local waited=0
	while :; do
		foreign_begin
		sleep "$QUIET_SAMPLE"
		foreign_end
		GATE_PCT=$FOREIGN_PCT
		[ "$FOREIGN_PCT" -lt 10 ] && break
		if [ "$waited" -ge "$QUIET_WAIT" ]; then
			log "WARNING: other processes still use ${FOREIGN_PCT}% of the CPUs (${FOREIGN_TOP}) after ${waited} s: going on"
			break
		fi
		[ "$waited" -eq 0 ] && log "other processes use ${FOREIGN_PCT}% of the CPUs (${FOREIGN_TOP}): waiting (at most ${QUIET_WAIT} s)"
		waited=$((waited + QUIET_SAMPLE))
	done
	GATE_WAITED=$waited
}
# "<all> <one>": CPU ticks used so far by the server (the postmaster with its
# exited children, and every live child, its threads such as io_uring
# workers included) and by the child $1 alone (the checkpointer, the writer)
server_ticks() {
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pm="$PM_PID" -v one="${1:--1}" '{
		line = $0; sub(/^.*\) /, "", line); split(line, f, " ")
		if ($1 == pm) t += f[12] + f[13] + f[14] + f[15]
		else if (f[2] == pm) t += f[12] + f[13]
		if ($1 == one) c = f[12] + f[13] }
		END { printf "%d %d\n", t, c }'
}
