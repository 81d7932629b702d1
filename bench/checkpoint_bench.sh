#!/usr/bin/env bash
# bench/checkpoint_bench.sh - a CHECKPOINT of >= 2 GB of dirty shared buffers:
# core alone against pg_uring_flush() first, then CHECKPOINT.
#
# One throwaway cluster (shared_buffers 3 GB, fsync on). A 2.2 GB table with
# fillfactor 50 is read into shared_buffers; "UPDATE t SET n = n + 1" (HOT,
# in place) then dirties every page. After every UPDATE the dirty buffers are
# counted (pg_buffercache), the OS page cache is written back ("sync"), and
# one case is timed:
#   core        CHECKPOINT
#   flush       SELECT pg_uring_flush(); then CHECKPOINT (both timed)
#   flush_sync  SELECT pg_uring_flush(NULL, true); then CHECKPOINT
# ROUNDS rounds, the order of the cases rotating from one round to the next.
# Plus fio sequential writes (8 kB buffered with an fsync at the end, 8 kB and
# 128 kB O_DIRECT) for the device's write throughput in the same run.
#
# Usage, as root (it runs "sync" and the server as the postgres OS user),
# from a checkout after the extension is installed (sudo bash scripts/build.sh):
#
#     sudo bash bench/checkpoint_bench.sh
#     sudo PGU_BENCH_QUICK=1 bash bench/checkpoint_bench.sh   # 0.3 GB, 1 round
#
# The report goes to stdout and to bench/results/checkpoint_bench-<date>.txt.
# See bench/WRITEBACK.md for what is measured and how to read the table.
#
# Knobs (environment), with their defaults:
#   PGU_BENCH_QUICK=0         1: a 0.3 GB table, 512 MB shared_buffers, 1 round
#   PGU_BENCH_TABLE_GB=2.2    table size in GiB (0.3 with QUICK)
#   PGU_BENCH_SB_MB=3072      shared_buffers in MB (512 with QUICK)
#   PGU_BENCH_ROUNDS=3        rounds of all cases (1 with QUICK)
#   PGU_BENCH_CASES="core flush flush_sync"
#   PGU_BENCH_FIO=1           0: skip the fio runs
#   PGU_BENCH_LOAD_WAIT=300   seconds to wait at most for a 1-minute load < 1.0
#   PGU_BENCH_QUIET_WAIT=30   seconds to wait at most before each case until other
#                            processes use < 10% of the CPUs
#   PGU_BENCH_MAX_SECS=1500   the whole run is stopped after this many seconds
#   PGU_BENCH_KEEP=0          1: keep the temp dir (server stopped) for a look
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
	TABLE_GB=${PGU_BENCH_TABLE_GB:-0.3}
	SB_MB=${PGU_BENCH_SB_MB:-512}
	ROUNDS=${PGU_BENCH_ROUNDS:-1}
else
	TABLE_GB=${PGU_BENCH_TABLE_GB:-2.2}
	SB_MB=${PGU_BENCH_SB_MB:-3072}
	ROUNDS=${PGU_BENCH_ROUNDS:-3}
fi
CASES=${PGU_BENCH_CASES:-core flush flush_sync}
DO_FIO=${PGU_BENCH_FIO:-1}
LOAD_WAIT=${PGU_BENCH_LOAD_WAIT:-300}
QUIET_WAIT=${PGU_BENCH_QUIET_WAIT:-30}
MAX_SECS=${PGU_BENCH_MAX_SECS:-1500}
KEEP=${PGU_BENCH_KEEP:-0}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PORT=5432						# the socket lives in our private temp dir
DB=postgres
DIRTY_WANTED=$((2 * 1024 * 1024 * 1024 / 8192))	# 2 GiB of 8 kB buffers
ROWS_PER_PAGE=3					# ~1 kB rows, fillfactor 50

log() { echo "[checkpoint_bench $(date +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || die "run as root: the script runs sync and the server as the postgres OS user"
awk -v g="$TABLE_GB" 'BEGIN { exit !(g + 0 >= 0.05) }' || die "PGU_BENCH_TABLE_GB must be a number >= 0.05"
[[ "$SB_MB" =~ ^[1-9][0-9]*$ ]] || die "PGU_BENCH_SB_MB must be a positive integer"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "PGU_BENCH_ROUNDS must be a positive integer"
[[ "$LOAD_WAIT" =~ ^[0-9]+$ ]] || die "PGU_BENCH_LOAD_WAIT must be a number of seconds"
[[ "$QUIET_WAIT" =~ ^[0-9]+$ ]] || die "PGU_BENCH_QUIET_WAIT must be a number of seconds"
[[ "$MAX_SECS" =~ ^[1-9][0-9]*$ ]] || die "PGU_BENCH_MAX_SECS must be a positive integer"
for c in $CASES; do
	case "$c" in core | flush | flush_sync) ;; *) die "unknown case '$c' in PGU_BENCH_CASES" ;; esac
done
id postgres >/dev/null 2>&1 || die "needs an OS user 'postgres' to run the server"
[ -x "$PG_CONFIG" ] || command -v "$PG_CONFIG" >/dev/null 2>&1 || die "PG_CONFIG=$PG_CONFIG not found"
BINDIR=$("$PG_CONFIG" --bindir)
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
SHAREDIR=$("$PG_CONFIG" --sharedir)
for b in initdb pg_ctl psql postgres; do
	[ -x "$BINDIR/$b" ] || die "$BINDIR/$b not found (set PG_CONFIG)"
done
[ -f "$PKGLIBDIR/pg_uring.so" ] || die "$PKGLIBDIR/pg_uring.so not found: install pg_uring (sudo bash scripts/build.sh) or set PG_CONFIG"
for e in pg_prewarm pg_buffercache; do
	[ -f "$SHAREDIR/extension/$e.control" ] || die "$e (contrib) is needed: apt-get install postgresql-contrib"
done
if [ "$DO_FIO" = 1 ]; then command -v fio >/dev/null 2>&1 || die "fio not found (apt-get install fio)"; fi
command -v timeout >/dev/null 2>&1 || die "timeout (coreutils) not found"

command -v runuser >/dev/null 2>&1 || die "runuser (util-linux) not found"
# as the postgres OS user (an array, so that timeout(1) can run it)
ASP=(runuser -u postgres --)

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS=$TOP/bench/results
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=$RESULTS/checkpoint_bench-$STAMP.txt
SO_SUM=$(md5sum "$PKGLIBDIR/pg_uring.so" | cut -c1-12)
SO_TIME=$(date -u -r "$PKGLIBDIR/pg_uring.so" '+%Y-%m-%d %H:%M:%S UTC')

TABLE_BLOCKS_WANTED=$(awk -v g="$TABLE_GB" 'BEGIN { printf "%d", g * 1024 * 1024 * 1024 / 8192 }')
TABLE_MB_WANTED=$((TABLE_BLOCKS_WANTED * 8192 / 1048576))
[ $((SB_MB * 1024 / 8)) -gt $((TABLE_BLOCKS_WANTED * 21 / 20)) ] ||
	die "shared_buffers (${SB_MB} MB) must be larger than the table (${TABLE_MB_WANTED} MB) plus 5%"
# table + fio file + WAL of a few rounds (every UPDATE logs a full-page image of every page)
NEED_MB=$((TABLE_MB_WANTED * 6 + 2048))
AVAIL_MB=$(df -Pm /var/tmp | awk 'NR == 2 { print $4 }')
[ "$AVAIL_MB" -gt "$NEED_MB" ] || die "/var/tmp has ${AVAIL_MB} MB free, the run needs about ${NEED_MB} MB"

# ---------------------------------------------------------------------------
# deadline, server, cleanup, psql, load and CPU measurement: bench/lib.sh
# ---------------------------------------------------------------------------
BENCH_NAME=checkpoint_bench				# names the partial report of an aborted run
Q_TIMEOUT=900						# default seconds a q (psql) call may take
QUIET_SAMPLE=3						# seconds a sample of wait_foreign_quiet
# shellcheck source=bench/lib.sh
. "$TOP/bench/lib.sh"

# ---------------------------------------------------------------------------
# cluster
# ---------------------------------------------------------------------------
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
WORK=$(mktemp -d /var/tmp/pg_uring-ckpt.XXXXXX)
chown postgres: "$WORK"
chmod 700 "$WORK"
DATA=$WORK/data
log "temp dir $WORK; table ${TABLE_MB_WANTED} MB, shared_buffers ${SB_MB} MB, $ROUNDS round(s) of: $CASES"
bounded 300 "${ASP[@]}" "$BINDIR/initdb" -k -D "$DATA" -U postgres >"$WORK/initdb.log" 2>&1 ||
	{ cat "$WORK/initdb.log" >&2; die "initdb failed"; }
cat >>"$DATA/postgresql.conf" <<EOF

# checkpoint_bench.sh
listen_addresses = ''
unix_socket_directories = '$WORK'
port = $PORT
shared_preload_libraries = 'pg_uring'
shared_buffers = ${SB_MB}MB
max_wal_size = 30GB
min_wal_size = 1GB
checkpoint_timeout = 1h
autovacuum = off
fsync = on
synchronous_commit = on
full_page_writes = on
jit = off
max_parallel_workers_per_gather = 0
log_checkpoints = on
EOF
pg_start
CK_PID=$(pgrep -P "$PM_PID" -f '^postgres: checkpointer' | head -n 1)
[ -n "$CK_PID" ] || die "no checkpointer process found under the postmaster ($PM_PID)"
q -c "CREATE EXTENSION pg_uring" >/dev/null || die "CREATE EXTENSION pg_uring failed: is it installed for $PG_CONFIG?"
q -c "CREATE EXTENSION pg_prewarm" >/dev/null
q -c "CREATE EXTENSION pg_buffercache" >/dev/null
q -c "SELECT length(pg_read_file('/proc/meminfo')) > 0" >/dev/null ||
	die "pg_read_file('/proc/meminfo') failed"

# ---------------------------------------------------------------------------
# load: ~1 kB rows, fillfactor 50 (3 rows a page, room for 3 new versions:
# every UPDATE is HOT and stays on its page), no index
# ---------------------------------------------------------------------------
ROWS=$((TABLE_BLOCKS_WANTED * ROWS_PER_PAGE))
log "loading $ROWS rows (~${TABLE_MB_WANTED} MB)"
t_load=$(date +%s)
q <<SQL
CREATE TABLE cb_t (id int8, n int4, filler text) WITH (fillfactor = 50, autovacuum_enabled = off);
ALTER TABLE cb_t ALTER COLUMN filler SET STORAGE PLAIN;
INSERT INTO cb_t SELECT g, 0, repeat(md5(g::text), 31) FROM generate_series(1, $ROWS) g;
VACUUM (FREEZE, ANALYZE) cb_t;
CHECKPOINT;
SQL
NBLOCKS=$(q -c "SELECT pg_relation_size('cb_t') / 8192")
RELPATH=$(q -c "SELECT pg_relation_filepath('cb_t')")
TABLE_BYTES=$((NBLOCKS * 8192))
NSEGS=$(((NBLOCKS + 131071) / 131072))
q -c "SELECT pg_prewarm('cb_t')" >/dev/null
T_LOAD=$(($(date +%s) - t_load))
log "table: $NBLOCKS blocks ($((TABLE_BYTES / 1048576)) MB, $NSEGS segment file(s)); load took ${T_LOAD} s"
[ "$NBLOCKS" -le "$((SB_MB * 128))" ] || die "the table ($NBLOCKS blocks) is larger than shared_buffers"

PGVER=$(q -c "SELECT version()")
SETTINGS=$(q -c "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name)
	FROM pg_settings WHERE name IN ('shared_buffers', 'huge_pages', 'data_checksums', 'max_wal_size',
	'checkpoint_timeout', 'checkpoint_flush_after', 'fsync', 'wal_level', 'full_page_writes', 'wal_sync_method',
	'autovacuum', 'bgwriter_lru_maxpages', 'pg_uring.rings', 'pg_uring.queue_depth', 'pg_uring.max_ios',
	'pg_uring.write_depth', 'pg_uring.writer', 'pg_uring.reaper')")
URING_MODE=$(q -c "SELECT string_agg(DISTINCT mode, ',') FROM pg_uring_stats")
[ "$URING_MODE" = io_uring ] || NOTES+=("WARNING: pg_uring rings run in mode '$URING_MODE', not io_uring: every pg_uring write is synchronous")
DEV=$(findmnt -n -o SOURCE -T "$DATA" | head -n 1)
FSTYPE=$(findmnt -n -o FSTYPE -T "$DATA" | head -n 1)
VMDIRTY="dirty_ratio=$(sysctl -n vm.dirty_ratio) dirty_background_ratio=$(sysctl -n vm.dirty_background_ratio) dirty_expire_centisecs=$(sysctl -n vm.dirty_expire_centisecs) dirty_writeback_centisecs=$(sysctl -n vm.dirty_writeback_centisecs)"

# ---------------------------------------------------------------------------
# fio: sequential 8 kB writes of a file as large as the table, in our temp dir
# ---------------------------------------------------------------------------
declare -A FIO_MBS=() FIO_WALL=()
# the file is written once beforehand (untimed, buffered, then synced), so
# that the timed runs overwrite allocated blocks whose pages are in the page
# cache, as a checkpoint of the table does (on this VM the first touch of
# page cache memory the guest never used is slow)
fio_layout() {
	rm -f "$WORK/fio.dat"
	bounded 300 fio --name=cb_layout --filename="$WORK/fio.dat" --rw=write --bs=1m --size="$TABLE_BYTES" \
		--ioengine=psync --direct=0 --end_fsync=1 --output-format=terse >/dev/null 2>"$WORK/fio.err" ||
		{ cat "$WORK/fio.err" >&2; die "fio layout failed"; }
}
fio_write() {
	local key=$1 engine=$2 direct=$3 bs=$4 extra=() out t0 t1 kb
	[ "$direct" = 0 ] && extra=(--end_fsync=1)
	bounded 300 sync
	t0=$(date +%s.%N)
	out=$(bounded 180 fio --name="cb_$key" --filename="$WORK/fio.dat" --rw=write --bs="$bs" \
		--size="$TABLE_BYTES" --ioengine="$engine" --iodepth=32 --direct="$direct" \
		"${extra[@]}" --runtime=150 --output-format=terse --terse-version=3 2>"$WORK/fio.err") ||
		{ cat "$WORK/fio.err" >&2; die "fio $key failed"; }
	t1=$(date +%s.%N)
	# terse v3: field 47 = KiB written, 48 = write bandwidth in KiB/s (without the end fsync)
	kb=$(echo "$out" | awk -F';' 'NF > 100 { print $47; exit }')
	FIO_MBS[$key]=$(echo "$out" | awk -F';' 'NF > 100 { printf "%.0f", $48 / 1024; exit }')
	FIO_WALL[$key]=$(awk -v kb="$kb" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f MB/s (%.0f MB in %.2f s)", kb / 1024 / (b - a), kb / 1024, b - a }')
	log "fio $key: ${FIO_MBS[$key]} MB/s (fio), wall ${FIO_WALL[$key]}"
}

# ---------------------------------------------------------------------------
# one case: re-dirty, count, sync, time
# ---------------------------------------------------------------------------
RAW_HEADER="round|case|order|update_s|dirty_buffers|table_dirty|load1|foreign_cpu_pct|pc_dirty_before_kb|flush_s|flushed|pc_dirty_mid_kb|ckpt_s|total_s|dirty_after|ckpt_buffers|ckpt_write_ms|ckpt_sync_ms|buffers_backend|sync_requests|local_syncs|buffer_writes|linked_writes|writes_deferred|drained_writes|write_failures|server_cpu_s|checkpointer_cpu_s"
STATS_SQL="SELECT b.buffers_checkpoint, b.checkpoint_write_time::int8, b.checkpoint_sync_time::int8, b.buffers_backend,
	u.sync_requests, u.local_syncs, u.buffer_writes, u.linked_writes, u.writes_deferred, u.drained_writes, u.write_failures
	FROM pg_stat_bgwriter b,
	(SELECT sum(w.sync_requests) AS sync_requests, sum(w.local_syncs) AS local_syncs, sum(wb.writes) AS buffer_writes,
	 sum(w.linked_writes) AS linked_writes, sum(w.writes_deferred) AS writes_deferred, sum(wb.fsyncs) AS drained_writes,
	 sum(wb.failures) AS write_failures FROM pg_uring_stat_writeback w
	 JOIN pg_uring_stat_io wb ON wb.ring = w.ring AND wb.io_kind = 'write-back') u"
PC_DIRTY_SQL="(SELECT sum((m[1])::int8) FROM regexp_matches(pg_read_file('/proc/meminfo'), '(?:Dirty|Writeback):\s+(\d+)', 'g') AS m)"
DIRTY_SQL="SELECT count(*) FILTER (WHERE isdirty),
	count(*) FILTER (WHERE isdirty AND relfilenode = pg_relation_filenode('cb_t')
		AND reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database()))
	FROM pg_buffercache"

run_case() {
	local round=$1 case=$2 order=$3 t0 t1 upd dirty tdirty pcb l1 fcpu out flush_stmt
	t0=$(date +%s.%N)
	q -c "UPDATE cb_t SET n = n + 1" >/dev/null
	t1=$(date +%s.%N)
	upd=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	IFS='|' read -r dirty tdirty <<<"$(q -c "$DIRTY_SQL")"
	[ "$tdirty" -ge "$NBLOCKS" ] ||
		NOTES+=("WARNING: round $round $case: only $tdirty of the table's $NBLOCKS blocks were dirty after the UPDATE")
	if [ "$QUICK" != 1 ] && [ "$dirty" -lt "$DIRTY_WANTED" ]; then
		NOTES+=("WARNING: round $round $case: $dirty dirty buffers, less than 2 GiB ($DIRTY_WANTED)")
	fi
	wait_foreign_quiet
	[ "$GATE_WAITED" = 0 ] || NOTES+=("round $round $case: waited ${GATE_WAITED} s for other processes to quieten (last seen: ${GATE_PCT}% of the CPUs)")
	bounded 300 sync
	sleep 1
	bounded 300 sync
	pcb=$(awk '/^(Dirty|Writeback):/ { s += $2 } END { print s + 0 }' /proc/meminfo)
	l1=$(load1)
	case "$case" in
	core) flush_stmt="SELECT 0 AS flushed" ;;
	flush) flush_stmt="SELECT pg_uring_flush() AS flushed" ;;
	flush_sync) flush_stmt="SELECT pg_uring_flush(NULL, true) AS flushed" ;;
	esac
	foreign_begin
	local st0 st1
	st0=$(server_ticks "$CK_PID")
	# one session; the clock is read in the server around each statement
	out=$(q <<SQL
$STATS_SQL \gset s0_
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
$flush_stmt \gset
SELECT extract(epoch FROM clock_timestamp()) AS t1 \gset
SELECT $PC_DIRTY_SQL AS pcmid \gset
SELECT extract(epoch FROM clock_timestamp()) AS t2 \gset
CHECKPOINT;
SELECT extract(epoch FROM clock_timestamp()) AS t3 \gset
$STATS_SQL \gset s1_
SELECT round((:t1 - :t0)::numeric, 3), :flushed, :pcmid, round((:t3 - :t2)::numeric, 3),
	round((:t1 - :t0 + :t3 - :t2)::numeric, 3), NULL AS dirty_after,
	:s1_buffers_checkpoint - :s0_buffers_checkpoint, :s1_checkpoint_write_time - :s0_checkpoint_write_time,
	:s1_checkpoint_sync_time - :s0_checkpoint_sync_time, :s1_buffers_backend - :s0_buffers_backend,
	:s1_sync_requests - :s0_sync_requests, :s1_local_syncs - :s0_local_syncs, :s1_buffer_writes - :s0_buffer_writes,
	:s1_linked_writes - :s0_linked_writes, :s1_writes_deferred - :s0_writes_deferred,
	:s1_drained_writes - :s0_drained_writes, :s1_write_failures - :s0_write_failures;
SQL
	) || die "round $round $case failed"
	st1=$(server_ticks "$CK_PID")
	foreign_end
	fcpu=$FOREIGN_PCT
	[ "$fcpu" -lt 10 ] || NOTES+=("round $round $case: foreign CPU ${fcpu}% (${FOREIGN_TOP:-?})")
	local da
	da=$(q -c "SELECT count(*) FILTER (WHERE isdirty) FROM pg_buffercache")
	# put dirty_after (field 6 of the output) in
	out=$(awk -F'|' -v OFS='|' -v da="$da" '{ $6 = da; print }' <<<"$out")
	local cpus
	cpus=$(awk -v a="$st0" -v b="$st1" -v hz="$CLK_TCK" 'BEGIN { split(a, x, " "); split(b, y, " ")
		printf "%.2f|%.2f", (y[1] - x[1]) / hz, (y[2] - x[2]) / hz }')
	printf '%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s\n' "$round" "$case" "$order" "$upd" "$dirty" "$tdirty" "$l1" "$fcpu" "$pcb" "$out" "$cpus" \
		>>"$WORK/raw.tsv"
	local flush_s ckpt_s total_s
	IFS='|' read -r flush_s _ _ ckpt_s total_s _ <<<"$out"
	log "round $round $case: UPDATE ${upd} s, $dirty dirty buffers ($tdirty of the table); flush ${flush_s} s + CHECKPOINT ${ckpt_s} s = ${total_s} s (load $l1, foreign CPU ${fcpu}%${FOREIGN_TOP:+: $FOREIGN_TOP})"
	local lsy
	lsy=$(cut -d'|' -f12 <<<"$out")
	if [ "$case" != core ] && [ "$(cut -d'|' -f2 <<<"$out")" -lt "$tdirty" ]; then
		NOTES+=("round $round $case: pg_uring_flush returned $(cut -d'|' -f2 <<<"$out"), fewer than the $tdirty dirty blocks of the table")
	fi
	[ "$lsy" = 0 ] || NOTES+=("round $round $case: $lsy local fsyncs (the checkpointer's request queue was full)")
}

# ---------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------
wait_for_quiet
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
if [ "$DO_FIO" = 1 ]; then
	log "fio: sequential writes of $((TABLE_BYTES / 1048576)) MB"
	fio_layout
	fio_write buf_8k psync 0 8k
	fio_write buf_8k_uring io_uring 0 8k
	fio_write direct_8k io_uring 1 8k
	fio_write direct_128k io_uring 1 128k
	rm -f "$WORK/fio.dat"
fi
read -ra CASE_LIST <<<"$CASES"
NC=${#CASE_LIST[@]}
t_cases=$(date +%s)
for round in $(seq 1 "$ROUNDS"); do
	for i in $(seq 0 $((NC - 1))); do
		# rotate: round 1 starts with the first case, round 2 with the second, ...
		c=${CASE_LIST[$(((i + round - 1) % NC))]}
		run_case "$round" "$c" $((i + 1))
	done
done
T_CASES=$(($(date +%s) - t_cases))
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
WAL_DIR_MB=$(du -sm "$DATA/pg_wal" | cut -f1)
CKPT_LOG=$(grep -c 'checkpoint complete' "$WORK/server.log" || true)
pg_stop
SO_SUM_END=$(md5sum "$PKGLIBDIR/pg_uring.so" | cut -c1-12)
[ "$SO_SUM_END" = "$SO_SUM" ] ||
	NOTES+=("WARNING: $PKGLIBDIR/pg_uring.so changed during the run ($SO_SUM -> $SO_SUM_END); the server kept the one it loaded at start")

# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------
# raw.tsv fields: 1 round 2 case 3 order 4 update_s 5 dirty 6 table_dirty 7 load1 8 foreign_cpu
# 9 pc_dirty_before 10 flush_s 11 flushed 12 pc_dirty_mid 13 ckpt_s 14 total_s 15 dirty_after
# 16 ckpt_buffers 17 ckpt_write_ms 18 ckpt_sync_ms 19 buffers_backend 20 sync_requests 21 local_syncs
# 22 buffer_writes 23 linked_writes 24 writes_deferred 25 drained_writes 26 write_failures
# 27 server_cpu_s 28 checkpointer_cpu_s
median() {	# median of field $2 for case $1
	awk -F'|' -v c="$1" -v f="$2" '$2 == c { print $f }' "$WORK/raw.tsv" |
		sort -g | awk '{ v[NR] = $1 } END {
			if (NR == 0) { print "nan"; exit }
			if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

report() {
	local cpu memmb c
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
	memmb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 }' /proc/meminfo)
	echo "pg_uring checkpoint benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')$([ "$QUICK" = 1 ] && echo "   [QUICK MODE: small table, not the issue's setup]")"
	echo
	echo "- table:              cb_t, $NBLOCKS blocks = $((TABLE_BYTES / 1048576)) MB in $NSEGS segment file(s) ($RELPATH*), fillfactor 50, $ROWS_PER_PAGE rows/block, no index"
	echo "- shared_buffers:     ${SB_MB} MB; every UPDATE cb_t SET n = n + 1 (HOT) dirties every block of the table"
	echo "- kernel:             $(uname -r) ($(uname -m)); nproc $(nproc) [$cpu]; RAM ${memmb} MB"
	echo "- vm:                 $VMDIRTY"
	echo "- PostgreSQL:         $PGVER"
	echo "- pg_uring.so:        md5 $SO_SUM..., installed $SO_TIME; rings in mode $URING_MODE"
	echo "- settings:           $SETTINGS"
	echo "- data directory:     $FSTYPE on $DEV"
	if [ "$DO_FIO" = 1 ]; then
		echo "- fio, sequential overwrites of a $((TABLE_BYTES / 1048576)) MB file (written once before, buffered; its pages in the page cache)"
		echo "  in the data directory's file system (sync before each):"
		printf '    %-40s %6s MB/s (fio), wall clock incl. the fsync: %s\n' "8 kB buffered, psync, fsync at end" "${FIO_MBS[buf_8k]}" "${FIO_WALL[buf_8k]}"
		printf '    %-40s %6s MB/s (fio), wall clock incl. the fsync: %s\n' "8 kB buffered, io_uring qd 32, fsync at end" "${FIO_MBS[buf_8k_uring]}" "${FIO_WALL[buf_8k_uring]}"
		printf '    %-40s %6s MB/s (fio), wall clock: %s\n' "8 kB O_DIRECT, io_uring, iodepth 32" "${FIO_MBS[direct_8k]}" "${FIO_WALL[direct_8k]}"
		printf '    %-40s %6s MB/s (fio), wall clock: %s\n' "128 kB O_DIRECT, io_uring, iodepth 32" "${FIO_MBS[direct_128k]}" "${FIO_WALL[direct_128k]}"
	fi
	echo "- rounds:             $ROUNDS of: $CASES (the order rotates by one case each round)"
	echo "- load average:       at start $LOAD_START; before the timed part $LOAD_BEFORE; at the end $LOAD_AFTER"
	echo
	local mc mf mfc mft mss mssc msst
	mc=$(median core 13)
	echo "| case | rounds | flush s | CHECKPOINT s | total s | total / core CHECKPOINT | CHECKPOINT / core CHECKPOINT | target | met? | MB/s (dirty table / total) | server CPU s |"
	echo "|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|"
	for c in $CASES; do
		local n mfl mck mto mcpu
		n=$(awk -F'|' -v c="$c" '$2 == c' "$WORK/raw.tsv" | wc -l)
		mfl=$(median "$c" 10)
		mck=$(median "$c" 13)
		mto=$(median "$c" 14)
		mcpu=$(median "$c" 27)
		awk -v c="$c" -v n="$n" -v fl="$mfl" -v ck="$mck" -v to="$mto" -v core="$mc" -v cpu="$mcpu" -v mb="$((TABLE_BYTES / 1048576))" 'BEGIN {
			r1 = (core > 0) ? to / core : 0; r2 = (core > 0) ? ck / core : 0
			label = (c == "core") ? "core: CHECKPOINT" : (c == "flush") ? "pg_uring_flush() + CHECKPOINT" : "pg_uring_flush(NULL, true) + CHECKPOINT"
			tgt = (c == "core") ? "-" : "<= 0.6"
			met = (c == "core") ? "-" : ((r1 <= 0.6) ? "yes" : "NO")
			printf "| %s | %d | %s | %.3f | %.3f | %s | %s | %s | %s | %.0f | %.2f |\n", label, n,
				(c == "core") ? "-" : sprintf("%.3f", fl), ck, to,
				(c == "core") ? "1.00" : sprintf("%.2f", r1), (c == "core") ? "1.00" : sprintf("%.2f", r2), tgt, met,
				(to > 0) ? mb / to : 0, cpu }'
	done
	echo
	echo "- medians over the rounds; total = flush + CHECKPOINT, each timed with clock_timestamp() in the server"
	echo "  (one session, the two statements back to back). The target (from the issue) is total / core <= 0.6."
	echo "- Before every timed case: UPDATE (untimed), the dirty buffers counted, then sync; sleep 1; sync, so each"
	echo "  case starts with no dirty OS page cache. The flush itself is not followed by a sync: its writes sit in"
	echo "  the page cache until CHECKPOINT fsyncs the segments (flush) or were fdatasynced by the flush (flush_sync)."
	echo
	echo "Raw rounds (page cache dirty = Dirty + Writeback from /proc/meminfo, kB: before the case, and between"
	echo "the flush and the CHECKPOINT; ckpt_* = pg_stat_bgwriter deltas for the CHECKPOINT, write/sync phases in ms;"
	echo "buffers_backend = pg_stat_bgwriter delta over the case; pg_uring columns = pg_uring_stats sums, deltas;"
	echo "foreign CPU = CPU used by processes outside this benchmark during the case, % of all CPUs; server CPU ="
	echo "CPU seconds used by all server processes (io_uring kernel workers included) during the timed session,"
	echo "checkpointer CPU = the checkpointer's share of it):"
	echo
	echo "| round | case | order | UPDATE s | dirty buffers | of the table | load1 | foreign CPU % | page cache dirty before kB | flush s | flushed | page cache dirty mid kB | CHECKPOINT s | total s | server CPU s | checkpointer CPU s | dirty after | ckpt buffers | ckpt write ms | ckpt sync ms | buffers_backend | sync_requests | buffers_backend - sync_requests | local_syncs | buffer_writes | linked_writes | writes_deferred | drained_writes | write failures |"
	echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	awk -F'|' -v OFS=' | ' '{ print "| " $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $27, $28, $15, $16, $17, $18, $19, $20, $19 - $20, $21, $22, $23, $24, $25, $26 " |" }' "$WORK/raw.tsv"
	echo
	echo "- pg_stat_bgwriter.buffers_backend counts every fsync request forwarded by a process other than core's"
	echo "  bgwriter (PostgreSQL 15, ForwardSyncRequest), so pg_uring's own writes are in it (one request per"
	echo "  write, which covers up to 16 adjacent pages: buffer_writes counts pages): buffers_backend -"
	echo "  sync_requests is what backends wrote themselves (0 expected here: no backend needed a free buffer)."
	echo "- WAL directory at the end: ${WAL_DIR_MB} MB; checkpoints logged: $CKPT_LOG"
	local nte
	for nte in "${NOTES[@]}"; do echo "- $nte"; done
	echo
	echo "load: ${T_LOAD} s; cases: ${T_CASES} s; whole benchmark: $(($(date +%s) - T_BEGIN)) s"
}
mkdir -p "$RESULTS"
report | tee "$OUT"
DONE=1
log "report written to $OUT"
