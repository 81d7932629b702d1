#!/usr/bin/env bash
# bench/writer_bench.sh - pgbench with a data set larger than shared_buffers,
# the pg_uring writer off against on: TPS and who wrote the dirty buffers.
#
# One throwaway cluster (shared_buffers 256 MB, fsync on). pgbench -i at
# scale 100 (~1.5 GB) once, then a clean shutdown and a copy of the data
# directory. Every run restores that copy (so all runs start from the same
# data, the OS page cache holding it, shared_buffers empty), starts the
# server with its pg_uring.writer settings and runs pgbench (8 clients,
# TPC-B-like, 120 s). It reports TPS and the deltas of pg_stat_bgwriter
# and pg_uring_stats, and then checks the data: after a restart (every page
# read back from disk, checksums on) the balances of accounts, tellers,
# branches and history must add up to the same sum.
#
# Runs (PGU_BENCH_RUNS), each "off" or "on[:writer_delay_ms[:writer_max_pages]]":
#   default: off on on off on:10 on:200:128
# (two off/on pairs in alternating order to show the noise, then two writer
# settings: a short delay, and a long delay with few pages a round).
#
# Usage, as root (it runs sync and the server as the postgres OS user),
# from a checkout after the extension is installed (sudo bash scripts/build.sh):
#
#     sudo bash bench/writer_bench.sh
#     sudo PGU_BENCH_QUICK=1 bash bench/writer_bench.sh   # scale 20, 20 s, off/on
#
# The report goes to stdout and to bench/results/writer_bench-<date>.txt.
# See bench/WRITEBACK.md for what is measured and how to read the table.
#
# Knobs (environment), with their defaults:
#   PGU_BENCH_QUICK=0          1: scale 20, 64 MB shared_buffers, 20 s runs, "off on"
#   PGU_BENCH_SCALE=100        pgbench scale (20 with QUICK)
#   PGU_BENCH_SB_MB=256        shared_buffers in MB (64 with QUICK)
#   PGU_BENCH_CLIENTS=8        pgbench clients (-c; -j 2)
#   PGU_BENCH_SECS=120         seconds per run (20 with QUICK)
#   PGU_BENCH_RUNS="off on on off on:10 on:200:128"   ("off on" with QUICK)
#   PGU_BENCH_MAX_WAL=4GB      max_wal_size (checkpoint_timeout stays 5min)
#   PGU_BENCH_VERIFY=1         0: skip the balance check after each run
#   PGU_BENCH_LOAD_WAIT=300    seconds to wait at most for a 1-minute load < 1.0
#   PGU_BENCH_QUIET_WAIT=60    seconds to wait at most before each run until other
#                             processes use < 10% of the CPUs
#   PGU_BENCH_MAX_SECS=1500    the whole run is stopped after this many seconds
#   PGU_BENCH_KEEP=0           1: keep the temp dir (server stopped) for a look
#   PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
set -euo pipefail
shopt -s inherit_errexit

if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
	exit 0
fi

T_BEGIN=$(date +%s)
QUICK=${PGU_BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
	SCALE=${PGU_BENCH_SCALE:-20}
	SB_MB=${PGU_BENCH_SB_MB:-64}
	SECS=${PGU_BENCH_SECS:-20}
	RUNS=${PGU_BENCH_RUNS:-off on}
else
	SCALE=${PGU_BENCH_SCALE:-100}
	SB_MB=${PGU_BENCH_SB_MB:-256}
	SECS=${PGU_BENCH_SECS:-120}
	RUNS=${PGU_BENCH_RUNS:-off on on off on:10 on:200:128}
fi
CLIENTS=${PGU_BENCH_CLIENTS:-8}
MAX_WAL=${PGU_BENCH_MAX_WAL:-4GB}
VERIFY=${PGU_BENCH_VERIFY:-1}
LOAD_WAIT=${PGU_BENCH_LOAD_WAIT:-300}
QUIET_WAIT=${PGU_BENCH_QUIET_WAIT:-60}
MAX_SECS=${PGU_BENCH_MAX_SECS:-1500}
KEEP=${PGU_BENCH_KEEP:-0}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PORT=5432						# the socket lives in our private temp dir
DB=postgres
SETTLE=5						# idle seconds after pgbench before the final counters

log() { echo "[writer_bench $(date +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || die "run as root: the script runs sync and the server as the postgres OS user"
[[ "$SCALE" =~ ^[1-9][0-9]*$ ]] || die "PGU_BENCH_SCALE must be a positive integer"
[[ "$SB_MB" =~ ^[1-9][0-9]*$ ]] || die "PGU_BENCH_SB_MB must be a positive integer"
[[ "$CLIENTS" =~ ^[1-9][0-9]*$ ]] || die "PGU_BENCH_CLIENTS must be a positive integer"
[[ "$SECS" =~ ^[1-9][0-9]*$ ]] || die "PGU_BENCH_SECS must be a positive integer"
[[ "$LOAD_WAIT" =~ ^[0-9]+$ ]] || die "PGU_BENCH_LOAD_WAIT must be a number of seconds"
[[ "$QUIET_WAIT" =~ ^[0-9]+$ ]] || die "PGU_BENCH_QUIET_WAIT must be a number of seconds"
[[ "$MAX_SECS" =~ ^[1-9][0-9]*$ ]] || die "PGU_BENCH_MAX_SECS must be a positive integer"
for r in $RUNS; do
	[[ "$r" =~ ^(off|on(:[0-9]+(:[0-9]+)?)?)$ ]] || die "bad run '$r' in PGU_BENCH_RUNS (off, on, on:DELAY_MS, on:DELAY_MS:MAX_PAGES)"
done
id postgres >/dev/null 2>&1 || die "needs an OS user 'postgres' to run the server"
[ -x "$PG_CONFIG" ] || command -v "$PG_CONFIG" >/dev/null 2>&1 || die "PG_CONFIG=$PG_CONFIG not found"
BINDIR=$("$PG_CONFIG" --bindir)
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
for b in initdb pg_ctl psql postgres pgbench; do
	[ -x "$BINDIR/$b" ] || die "$BINDIR/$b not found (set PG_CONFIG)"
done
[ -f "$PKGLIBDIR/pg_uring.so" ] || die "$PKGLIBDIR/pg_uring.so not found: install pg_uring (sudo bash scripts/build.sh) or set PG_CONFIG"
command -v timeout >/dev/null 2>&1 || die "timeout (coreutils) not found"
command -v runuser >/dev/null 2>&1 || die "runuser (util-linux) not found"
# as the postgres OS user (an array, so that timeout(1) can run it)
ASP=(runuser -u postgres --)

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS=$TOP/bench/results
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=$RESULTS/writer_bench-$STAMP.txt
SO_SUM=$(md5sum "$PKGLIBDIR/pg_uring.so" | cut -c1-12)
SO_TIME=$(date -u -r "$PKGLIBDIR/pg_uring.so" '+%Y-%m-%d %H:%M:%S UTC')

# two copies of the data set (~15 MB a scale unit) and the WAL of a run
NEED_MB=$((SCALE * 15 * 2 + 8192))
AVAIL_MB=$(df -Pm /var/tmp | awk 'NR == 2 { print $4 }')
[ "$AVAIL_MB" -gt "$NEED_MB" ] || die "/var/tmp has ${AVAIL_MB} MB free, the run needs about ${NEED_MB} MB"
read -ra RUN_LIST <<<"$RUNS"
EST=$((${#RUN_LIST[@]} * (SECS + 45) + SCALE + 60))
[ "$EST" -lt "$MAX_SECS" ] || log "WARNING: the runs need about $EST s, more than PGU_BENCH_MAX_SECS=$MAX_SECS: the last ones may be cut off"

# ---------------------------------------------------------------------------
# deadline, server, cleanup, psql, load and CPU measurement: bench/lib.sh
# ---------------------------------------------------------------------------
BENCH_NAME=writer_bench					# names the partial report of an aborted run
Q_TIMEOUT=600						# default seconds a q (psql) call may take
QUIET_SAMPLE=5						# seconds a sample of wait_foreign_quiet
# shellcheck source=bench/lib.sh
. "$TOP/bench/lib.sh"
RAW_HEADER="run|label|writer|delay_ms|max_pages|load1|foreign_cpu_pct|tps|lat_ms|xacts|buffers_alloc|buffers_backend|sync_requests|local_syncs|buffers_clean|maxwritten_clean|buffers_checkpoint|checkpoints|writer_pages|buffer_writes|writes_deferred|linked_writes|write_failures|backend_fsync|wal_mb|verify|log_problems|server_cpu_s|writer_cpu_s|so_md5"

# ---------------------------------------------------------------------------
# cluster and data set
# ---------------------------------------------------------------------------
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
WORK=$(mktemp -d /var/tmp/pg_uring-writer.XXXXXX)
chown postgres: "$WORK"
chmod 700 "$WORK"
DATA=$WORK/data
ORIG=$WORK/data.orig
log "temp dir $WORK; scale $SCALE, shared_buffers ${SB_MB} MB, $CLIENTS clients, ${SECS} s a run; runs: $RUNS"
bounded 300 "${ASP[@]}" "$BINDIR/initdb" -k -D "$DATA" -U postgres >"$WORK/initdb.log" 2>&1 ||
	{ cat "$WORK/initdb.log" >&2; die "initdb failed"; }
cat >>"$DATA/postgresql.conf" <<EOF

# writer_bench.sh
listen_addresses = ''
unix_socket_directories = '$WORK'
port = $PORT
shared_preload_libraries = 'pg_uring'
shared_buffers = ${SB_MB}MB
max_wal_size = $MAX_WAL
checkpoint_timeout = 5min
autovacuum = off
fsync = on
synchronous_commit = on
jit = off
log_checkpoints = on
include_if_exists = 'writer_bench_run.conf'
EOF
pg_start
q -c "CREATE EXTENSION pg_uring" >/dev/null || die "CREATE EXTENSION pg_uring failed: is it installed for $PG_CONFIG?"
log "pgbench -i -s $SCALE"
t_init=$(date +%s)
bounded 1200 "$BINDIR/pgbench" -i -q -s "$SCALE" -h "$WORK" -p "$PORT" -U postgres "$DB" >"$WORK/init.log" 2>&1 ||
	{ tail -n 20 "$WORK/init.log" >&2; die "pgbench -i failed"; }
q -c "CHECKPOINT" >/dev/null
DB_MB=$(q -c "SELECT pg_database_size(current_database()) / 1048576")
ACC_MB=$(q -c "SELECT pg_total_relation_size('pgbench_accounts') / 1048576")
PGVER=$(q -c "SELECT version()")
pg_stop
T_INIT=$(($(date +%s) - t_init))
cp -a "$DATA" "$ORIG"
rm -f "$ORIG/postmaster.opts"
log "data set: database ${DB_MB} MB (pgbench_accounts with its index ${ACC_MB} MB); init took ${T_INIT} s"
[ "$DB_MB" -gt "$SB_MB" ] || NOTES+=("WARNING: the database (${DB_MB} MB) is not larger than shared_buffers (${SB_MB} MB)")

# ---------------------------------------------------------------------------
# one run
# ---------------------------------------------------------------------------
STATS_SQL="SELECT b.buffers_alloc, b.buffers_backend, u.sync_requests, u.local_syncs, b.buffers_clean, b.maxwritten_clean,
	b.buffers_checkpoint, b.checkpoints_timed + b.checkpoints_req, u.writer_pages, u.buffer_writes, u.writes_deferred,
	u.linked_writes, u.write_failures, b.buffers_backend_fsync, pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8
	FROM pg_stat_bgwriter b,
	(SELECT sum(w.sync_requests) AS sync_requests, sum(w.local_syncs) AS local_syncs, sum(w.writer_pages) AS writer_pages,
	 sum(wb.writes) AS buffer_writes, sum(w.writes_deferred) AS writes_deferred, sum(w.linked_writes) AS linked_writes,
	 sum(wb.failures) AS write_failures FROM pg_uring_stat_writeback w
	 JOIN pg_uring_stat_io wb ON wb.ring = w.ring AND wb.io_kind = 'write-back') u"
VERIFY_SQL="SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(tbalance) FROM pgbench_tellers),
	(SELECT sum(bbalance) FROM pgbench_branches), (SELECT coalesce(sum(delta), 0) FROM pgbench_history),
	(SELECT count(*) FROM pgbench_history)"
SETTINGS_SQL="SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name)
	FROM pg_settings WHERE name IN ('shared_buffers', 'data_checksums', 'max_wal_size', 'checkpoint_timeout',
	'checkpoint_completion_target', 'fsync', 'synchronous_commit', 'wal_level', 'full_page_writes', 'autovacuum',
	'bgwriter_delay', 'bgwriter_lru_maxpages', 'bgwriter_lru_multiplier', 'backend_flush_after', 'pg_uring.rings',
	'pg_uring.queue_depth', 'pg_uring.max_ios', 'pg_uring.write_depth', 'pg_uring.writer', 'pg_uring.writer_delay',
	'pg_uring.writer_max_pages', 'pg_uring.reaper')"

# the deltas between two STATS_SQL rows (the last field, WAL bytes, becomes MB)
stats_delta() {
	awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, "|"); split(b, y, "|"); out = ""
			for (i = 1; i < n; i++) out = out (i > 1 ? "|" : "") sprintf("%.0f", y[i] - x[i])
			printf "%s|%.0f\n", out, (y[n] - x[n]) / 1048576 }'
}

run_one() {
	local run=$1 spec=$2 writer delay max label s0 s1 l1 fcpu out tps lat xacts d problems verify="-"
	IFS=: read -r writer delay max <<<"$spec"
	delay=${delay:-50}
	max=${max:-512}
	if [ "$writer" = off ]; then
		label=off
	else
		label="on ${delay} ms/${max} p"
	fi
	log "run $run ($label): restoring the data directory"
	pg_running && pg_stop
	rm -rf "$DATA"
	bounded 600 cp -a "$ORIG" "$DATA"
	bounded 300 sync
	cat >"$DATA/writer_bench_run.conf" <<EOF
pg_uring.writer = $writer
pg_uring.writer_delay = ${delay}ms
pg_uring.writer_max_pages = $max
EOF
	chown postgres: "$DATA/writer_bench_run.conf"
	# every run starts with the data set in the OS page cache
	find "$DATA/base" -type f -exec cat {} + >/dev/null
	local log_from
	log_from=$(wc -l <"$WORK/server.log" 2>/dev/null || echo 0)
	local so
	so=$(md5sum "$PKGLIBDIR/pg_uring.so" | cut -c1-8)
	pg_start
	[ -n "$RUN_SETTINGS" ] || RUN_SETTINGS=$(q -c "$SETTINGS_SQL")
	# the writer is a child of the postmaster, titled "postgres: pg_uring writer"
	local i have=0 wpid=""
	for i in 1 2 3 4 5 6 7 8 9 10; do
		wpid=$(pgrep -P "$PM_PID" -f '^postgres: pg_uring writer' | head -n 1 || true)
		if [ -n "$wpid" ]; then have=1; break; fi
		[ "$writer" = off ] && break
		sleep 0.5
	done
	if [ "$writer" = on ] && [ "$have" = 0 ]; then
		NOTES+=("WARNING: run $run ($label): no 'pg_uring writer' process under the postmaster")
	elif [ "$writer" = off ] && [ "$have" = 1 ]; then
		NOTES+=("WARNING: run $run ($label): a 'pg_uring writer' process runs although pg_uring.writer = off")
	fi
	# a reload wakes the checkpointer, which then hands the fsync requests it
	# absorbed (PG15 counts buffers_backend there) to the statistics
	q -c "SELECT pg_stat_reset_shared('bgwriter'), pg_uring_reset_stats()" >/dev/null
	wait_foreign_quiet
	[ "$GATE_WAITED" = 0 ] || NOTES+=("run $run ($label): waited ${GATE_WAITED} s for other processes to quieten (last seen: ${GATE_PCT}% of the CPUs)")
	q -c "SELECT pg_reload_conf()" >/dev/null
	sleep 1
	s0=$(q -c "$STATS_SQL")
	l1=$(load1)
	log "run $run ($label): pgbench -c $CLIENTS -T $SECS (load $l1)"
	local st0 st1 cpus
	st0=$(server_ticks "$wpid")
	foreign_begin
	out=$(bounded $((SECS + 120)) "$BINDIR/pgbench" -n -M prepared -c "$CLIENTS" -j 2 -T "$SECS" -P 30 \
		-h "$WORK" -p "$PORT" -U postgres "$DB" 2>"$WORK/pgbench.err") ||
		{ tail -n 20 "$WORK/pgbench.err" >&2; die "run $run ($label): pgbench failed"; }
	foreign_end
	fcpu=$FOREIGN_PCT
	st1=$(server_ticks "$wpid")
	cpus=$(awk -v a="$st0" -v b="$st1" -v hz="$CLK_TCK" 'BEGIN { split(a, x, " "); split(b, y, " ")
		printf "%.1f|%.1f", (y[1] - x[1]) / hz, (y[2] - x[2]) / hz }')
	[ "$fcpu" -lt 10 ] || NOTES+=("run $run ($label): foreign CPU ${fcpu}% during pgbench (${FOREIGN_TOP:-?})")
	sleep "$SETTLE"
	q -c "SELECT pg_reload_conf()" >/dev/null
	sleep 1
	s1=$(q -c "$STATS_SQL")
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$out")
	lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out")
	xacts=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
	[ -n "$tps" ] || die "run $run ($label): no tps in the pgbench output: $out"
	d=$(stats_delta "$s0" "$s1")
	if [ "$VERIFY" = 1 ]; then
		# a restart drops shared_buffers: the check reads every page from disk
		pg_stop
		pg_start
		local v
		v=$(q -c "$VERIFY_SQL")
		IFS='|' read -r va vt vb vh nh <<<"$v"
		if [ "$va" = "$vt" ] && [ "$vt" = "$vb" ] && [ "$vb" = "$vh" ] && [ "$nh" -ge "$xacts" ]; then
			verify=ok
		else
			verify=FAILED
			NOTES+=("ERROR: run $run ($label): the balances do not add up (accounts|tellers|branches|history|history rows = $v, $xacts transactions)")
		fi
	fi
	pg_stop
	problems=$(tail -n +"$((log_from + 1))" "$WORK/server.log" | grep -cE '(ERROR|PANIC|FATAL|WARNING):' || true)
	if [ "$problems" != 0 ]; then
		NOTES+=("run $run ($label): $problems ERROR/PANIC/FATAL/WARNING line(s) in the server log:")
		while IFS= read -r line; do NOTES+=("    $line"); done < <(tail -n +"$((log_from + 1))" "$WORK/server.log" |
			grep -E '(ERROR|PANIC|FATAL|WARNING):' | head -n 5)
	fi
	printf '%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s\n' "$run" "$label" "$writer" "$delay" "$max" "$l1" "$fcpu" \
		"$tps" "$lat" "$xacts" "$d" "$verify" "$problems" "$cpus" "$so" >>"$WORK/raw.tsv"
	local bb sr ls
	IFS='|' read -r _ bb sr ls _ <<<"$d"
	log "run $run ($label): $tps tps; buffers_backend $bb, sync_requests $sr, local_syncs $ls, own backend writes $((bb - sr - ls)); check $verify; foreign CPU ${fcpu}%${FOREIGN_TOP:+: $FOREIGN_TOP}"
}

# ---------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------
RUN_SETTINGS=""
wait_for_quiet
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
t_runs=$(date +%s)
n=0
for spec in "${RUN_LIST[@]}"; do
	n=$((n + 1))
	run_one "$n" "$spec"
done
T_RUNS=$(($(date +%s) - t_runs))
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
SO_SUM_END=$(md5sum "$PKGLIBDIR/pg_uring.so" | cut -c1-12)
[ "$(cut -d'|' -f30 "$WORK/raw.tsv" | sort -u | wc -l)" = 1 ] && [ "$SO_SUM_END" = "$SO_SUM" ] ||
	NOTES+=("WARNING: $PKGLIBDIR/pg_uring.so changed during the benchmark ($SO_SUM at the start, $SO_SUM_END at the end): compare only runs with the same md5 (column pg_uring.so md5 below)")

# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------
# raw.tsv: 1 run 2 label 3 writer 4 delay 5 max 6 load1 7 foreign_cpu 8 tps 9 lat_ms 10 xacts
# 11 buffers_alloc 12 buffers_backend 13 sync_requests 14 local_syncs 15 buffers_clean 16 maxwritten_clean
# 17 buffers_checkpoint 18 checkpoints 19 writer_pages 20 buffer_writes 21 writes_deferred 22 linked_writes
# 23 write_failures 24 backend_fsync 25 wal_mb 26 verify 27 log_problems 28 server_cpu_s 29 writer_cpu_s
# 30 so_md5 (of pg_uring.so when the server started)
report() {
	local cpu memmb
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
	memmb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 }' /proc/meminfo)
	echo "pg_uring writer benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')$([ "$QUICK" = 1 ] && echo "   [QUICK MODE: small data set and runs, not the issue's setup]")"
	echo
	echo "- data set:           pgbench scale $SCALE: database ${DB_MB} MB (pgbench_accounts + index ${ACC_MB} MB); shared_buffers ${SB_MB} MB"
	echo "- pgbench:            -n -M prepared -c $CLIENTS -j 2 -T $SECS (TPC-B-like); every run from the same copy of the"
	echo "                      data directory, in the OS page cache, after a server start (shared_buffers empty)"
	echo "- kernel:             $(uname -r) ($(uname -m)); nproc $(nproc) [$cpu]; RAM ${memmb} MB"
	echo "- PostgreSQL:         $PGVER"
	echo "- pg_uring.so:        md5 $SO_SUM..., installed $SO_TIME"
	echo "- settings (run 1):   $RUN_SETTINGS"
	echo "- load average:       at start $LOAD_START; before the runs $LOAD_BEFORE; at the end $LOAD_AFTER"
	echo
	echo "| run | writer | TPS | latency ms | buffers_backend (raw) | pg_uring sync_requests | backend writes (raw - sync_requests - local_syncs) | buffers_clean | buffers_checkpoint | checkpoints | writer_pages | buffers_alloc | WAL MB | check | foreign CPU % | load1 before |"
	echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"
	awk -F'|' '{ printf "| %s | %s | %.0f | %.2f | %d | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s | %s |\n",
		$1, $2, $8, $9, $12, $13, $12 - $13 - $14, $15, $17, $18, $19, $11, $25, $26, $7, $6 }' "$WORK/raw.tsv"
	echo
	echo "Off against on (default writer settings, 50 ms / 512 pages), medians over the runs of each:"
	echo
	echo "| writer | runs | TPS | backend writes | TPS on / off | backend writes off / on | targets: TPS higher, backend writes >= 5x fewer |"
	echo "|---|---:|---:|---:|---:|---:|---|"
	awk -F'|' '
		function med(arr, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (arr[j] < arr[i]) { t = arr[i]; arr[i] = arr[j]; arr[j] = t }
			return (n % 2) ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2 }
		$2 == "off" { no++; toff[no] = $8; boff[no] = $12 - $13 - $14 }
		$2 == "on 50 ms/512 p" { nn++; ton[nn] = $8; bon[nn] = $12 - $13 - $14 }
		END {
			if (no == 0 || nn == 0) { print "| (needs at least one off and one default on run) | | | | | | |"; exit }
			mto = med(toff, no); mbo = med(boff, no); mtn = med(ton, nn); mbn = med(bon, nn)
			printf "| off | %d | %.0f | %d | | | |\n", no, mto, mbo
			printf "| on | %d | %.0f | %d | %.2f | %s | TPS %s; writes %s |\n", nn, mtn, mbn, (mto > 0) ? mtn / mto : 0,
				(mbn > 0) ? sprintf("%.1f", mbo / mbn) : "inf", (mtn > mto) ? "higher" : "NOT higher",
				(mbn * 5 <= mbo) ? ">= 5x fewer" : "NOT 5x fewer" }' "$WORK/raw.tsv"
	echo
	echo "Other counters (deltas over the run; pg_uring_stats summed over the rings):"
	echo
	echo "| run | writer | pg_uring.so md5 | transactions | server CPU s | writer CPU s | local_syncs | maxwritten_clean | buffers_backend_fsync | pg_uring buffer_writes | writes_deferred | linked_writes | write failures | server log problems |"
	echo "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	awk -F'|' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $30, $10, $28, $29, $14, $16, $24, $20, $21, $22, $23, $27 }' "$WORK/raw.tsv"
	echo
	echo "- The counters are the deltas from just before pgbench to ${SETTLE} s after it ended (pg_reload_conf()"
	echo "  first, so that the checkpointer has handed over the fsync requests it absorbed); the writer's last"
	echo "  rounds after pgbench are in them."
	echo "- pg_stat_bgwriter.buffers_backend counts every fsync request forwarded by a process other than core's"
	echo "  bgwriter (PostgreSQL 15, ForwardSyncRequest): every write pg_uring completes is in it (one request per"
	echo "  write, which covers up to 16 adjacent pages), from whichever process completed it. pg_uring counts"
	echo "  those requests in sync_requests (and, when the checkpointer's queue was full, local_syncs), so"
	echo "  buffers_backend - sync_requests - local_syncs is what the backends wrote themselves (one page each)."
	echo "  Relation extensions (mdextend) register a request too and are in every run alike."
	echo "- check: after the run the server is restarted (shared_buffers empty, checksums on) and"
	echo "  sum(abalance) = sum(tbalance) = sum(bbalance) = sum(history.delta) is checked."
	echo "- foreign CPU: CPU used during the pgbench run by processes outside this benchmark, % of all CPUs."
	echo "  server CPU: CPU seconds of all server processes during the pgbench run (io_uring kernel workers"
	echo "  included); writer CPU: the pg_uring writer's share of it."
	local nte
	for nte in "${NOTES[@]}"; do echo "- $nte"; done
	echo
	echo "init: ${T_INIT} s; runs: ${T_RUNS} s; whole benchmark: $(($(date +%s) - T_BEGIN)) s"
}
mkdir -p "$RESULTS"
report | tee "$OUT"
DONE=1
log "report written to $OUT"
