#!/usr/bin/env bash
# bench/readahead_bench.sh - ordinary queries with pg_uring.readahead on
# against off, in the same run: cold (server restart + OS page cache dropped)
# and warm (everything in shared_buffers).
#
# One throwaway cluster (initdb -k, shared_buffers 1.5 x the table). Table
#   t (id bigint, r bigint, pad text)   ~32 rows of ~250 bytes per 8 kB block
# of PGU_BENCH_TABLE_MB MB, r random (setseed), so uncorrelated with the
# physical order; index t_r_idx on t (r); VACUUM (FREEZE, ANALYZE); CHECKPOINT.
# Cases (each for pg_uring.readahead = on and = off, SET in the session; with
# pg_uring.readahead_seqscan = on, so that serial seq scans read ahead too,
# which its default, parallel, leaves to core):
#   idx_cold      Index Scan, 0.1% of the rows by r (enable_bitmapscan and
#                 enable_seqscan off): SELECT count(*), sum(length(pad)) ...
#   bitmap_cold   Bitmap Heap Scan, 0.5% of the rows by r (enable_indexscan and
#                 enable_seqscan off; effective_io_concurrency left at its default)
#   seq_cold      SELECT count(*) FROM t, serial (max_parallel_workers_per_gather 0)
#   seq_par_cold  the same with max_parallel_workers_per_gather 2 (Parallel Seq Scan;
#                 parallel_setup_cost and parallel_tuple_cost 0, so that small tables plan it too)
#   seq4_cold     4 sessions run seq_cold's query together: the time until all are done
#   limit1_cold   SELECT * FROM t LIMIT 1
#   idx_warm, bitmap_warm, seq_warm   the first three with table and index in
#                 shared_buffers (pg_prewarm), no restart; expected ratio ~1.0
# Every cold run: server stopped, sync, drop_caches, server started, then the
# memory primed (a scratch file as large as the table read and dropped again,
# see PGU_BENCH_PRIME). Runs alternate which mode goes first (on,off, off,on,
# on,off, ...); the report shows the order effect beside the ratio. EXPLAIN
# (COSTS OFF) in the timed session checks the plan node: a wrong plan stops
# the run. Device context measured in the same run: fio O_DIRECT reads of the
# table's own segment files (sequential 128 kB at iodepth 32, random 8 kB at
# iodepth 32 and 1) and a cold dd of the same files (before and after the cases).
#
# Usage, as root (it drops the page cache and runs the server as postgres),
# from a checkout after the extension is installed (sudo bash scripts/build.sh):
#
#     sudo bash bench/readahead_bench.sh                          # 2 GB, 5 runs
#     sudo PGU_BENCH_TABLE_MB=200 bash bench/readahead_bench.sh   # a few minutes
#
# The report goes to stdout and to bench/results/readahead_bench-<date>.txt,
# beside it .raw.tsv (every run), .stats.tsv (pg_uring_stats after every run)
# and .plans.txt (the EXPLAINs). See bench/README.md.
#
# Knobs (environment), with their defaults:
#   PGU_BENCH_TABLE_MB=2048   table size in MB (at least 16)
#   PGU_BENCH_SB_MB=          shared_buffers in MB (default: 1.5 x the table, >= 128)
#   PGU_BENCH_RUNS=5          runs per case and mode (the team's standard: >= 5)
#   PGU_BENCH_CASES="idx_cold bitmap_cold seq_cold seq_par_cold seq4_cold limit1_cold idx_warm bitmap_warm seq_warm"
#   PGU_BENCH_IDX_PCT=0.1     share of the rows the index scan fetches, in %
#   PGU_BENCH_BITMAP_PCT=0.5  share of the rows the bitmap heap scan fetches, in %
#   PGU_BENCH_WARM_REPS=3     executions per warm run (the run's time is their mean)
#   PGU_BENCH_FIO_SECS=10     upper bound per fio run
#   PGU_BENCH_FIO=1           0: skip fio (the dd reads stay)
#   PGU_BENCH_PRIME=1         0: no memory priming before the cold runs (and the cold dd).
#                            On this VM page cache pages freed by drop_caches go back
#                            to the host after ~2 s (free page reporting); a cold read
#                            that has to fault them in again runs 3-4x slower.
#   PGU_BENCH_SEED=0.42       setseed() for r
#   PGU_BENCH_LOAD_WAIT=120   seconds to wait at most for a 1-minute load < 1.0
#   PGU_BENCH_QUIET_WAIT=0    > 0: before each run, wait at most this long until other
#                            processes use < 10% of the CPUs (foreign CPU is always recorded)
#   PGU_BENCH_MAX_SECS=2700   the whole run is stopped after this many seconds
#   PGU_BENCH_KEEP=0          1: keep the temp dir (server stopped) for a look
#   PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
set -euo pipefail
shopt -s inherit_errexit

if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
	exit 0
fi

T_BEGIN=$(date +%s)
TABLE_MB=${PGU_BENCH_TABLE_MB:-2048}
SB_MB=${PGU_BENCH_SB_MB:-}
RUNS=${PGU_BENCH_RUNS:-5}
ALL_CASES="idx_cold bitmap_cold seq_cold seq_par_cold seq4_cold limit1_cold idx_warm bitmap_warm seq_warm"
CASES=${PGU_BENCH_CASES:-$ALL_CASES}
IDX_PCT=${PGU_BENCH_IDX_PCT:-0.1}
BMP_PCT=${PGU_BENCH_BITMAP_PCT:-0.5}
WARM_REPS=${PGU_BENCH_WARM_REPS:-3}
FIO_SECS=${PGU_BENCH_FIO_SECS:-10}
DO_FIO=${PGU_BENCH_FIO:-1}
PRIME=${PGU_BENCH_PRIME:-1}
SEED=${PGU_BENCH_SEED:-0.42}
LOAD_WAIT=${PGU_BENCH_LOAD_WAIT:-120}
QUIET_WAIT=${PGU_BENCH_QUIET_WAIT:-0}
MAX_SECS=${PGU_BENCH_MAX_SECS:-2700}
KEEP=${PGU_BENCH_KEEP:-0}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PORT=5432						# the socket lives in our private temp dir
DB=postgres
PAD=200							# bytes of pad: ~252 bytes a row with header and line pointer
ROWS_PER_BLOCK=32				# what that gives (8168 / 252); the load checks it
NCONC=4							# sessions of seq4_cold

log() { echo "[readahead_bench $(date +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || die "run as root: the script drops the OS page cache and runs the server as the postgres OS user"
[[ "$TABLE_MB" =~ ^[1-9][0-9]*$ ]] || die "PGU_BENCH_TABLE_MB must be an integer >= 16"
[ "$TABLE_MB" -ge 16 ] || die "PGU_BENCH_TABLE_MB must be an integer >= 16"
if [ -z "$SB_MB" ]; then
	SB_MB=$(((TABLE_MB * 3 / 2 + 63) / 64 * 64))
	[ "$SB_MB" -ge 128 ] || SB_MB=128
fi
[[ "$SB_MB" =~ ^[1-9][0-9]*$ ]] || die "PGU_BENCH_SB_MB must be a positive integer"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "PGU_BENCH_RUNS must be a positive integer"
[[ "$WARM_REPS" =~ ^[1-9][0-9]*$ ]] || die "PGU_BENCH_WARM_REPS must be a positive integer"
[[ "$FIO_SECS" =~ ^[1-9][0-9]*$ ]] || die "PGU_BENCH_FIO_SECS must be a positive integer"
[[ "$LOAD_WAIT" =~ ^[0-9]+$ ]] || die "PGU_BENCH_LOAD_WAIT must be a number of seconds"
[[ "$QUIET_WAIT" =~ ^[0-9]+$ ]] || die "PGU_BENCH_QUIET_WAIT must be a number of seconds"
[[ "$MAX_SECS" =~ ^[1-9][0-9]*$ ]] || die "PGU_BENCH_MAX_SECS must be a positive integer"
awk -v p="$IDX_PCT" 'BEGIN { exit !(p + 0 > 0 && p + 0 < 100) }' || die "PGU_BENCH_IDX_PCT must be a number in (0, 100)"
awk -v p="$BMP_PCT" 'BEGIN { exit !(p + 0 > 0 && p + 0 < 100) }' || die "PGU_BENCH_BITMAP_PCT must be a number in (0, 100)"
awk -v s="$SEED" 'BEGIN { exit !(s + 0 >= -1 && s + 0 <= 1) }' || die "PGU_BENCH_SEED must be a number in [-1, 1]"
for c in $CASES; do
	[[ " $ALL_CASES " == *" $c "* ]] || die "unknown case '$c' in PGU_BENCH_CASES (known: $ALL_CASES)"
done
[ -n "${CASES// /}" ] || die "PGU_BENCH_CASES is empty"
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
if [ "$DO_FIO" = 1 ]; then command -v fio >/dev/null 2>&1 || die "fio not found (apt-get install fio), or set PGU_BENCH_FIO=0"; fi
for c in timeout runuser findmnt dd md5sum; do
	command -v "$c" >/dev/null 2>&1 || die "$c not found (coreutils / util-linux)"
done
[ -w /proc/sys/vm/drop_caches ] || die "/proc/sys/vm/drop_caches is not writable (container without privileges?)"
# as the postgres OS user (an array, so that timeout(1) can run it)
ASP=(runuser -u postgres --)

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS=$TOP/bench/results
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=$RESULTS/readahead_bench-$STAMP.txt
RAW_OUT=$RESULTS/readahead_bench-$STAMP.raw.tsv
STATS_OUT=$RESULTS/readahead_bench-$STAMP.stats.tsv
PLANS_OUT=$RESULTS/readahead_bench-$STAMP.plans.txt
SO_SUM=$(md5sum "$PKGLIBDIR/pg_uring.so" | cut -c1-12)
SO_TIME=$(date -u -r "$PKGLIBDIR/pg_uring.so" '+%Y-%m-%d %H:%M:%S UTC')

ROWS=$((TABLE_MB * 128 * ROWS_PER_BLOCK))
# the table, its index (~22 bytes a row), the priming file, the WAL and slack
NEED_MB=$((TABLE_MB * 2 + ROWS * 22 / 1048576 + 2048))
AVAIL_MB=$(df -Pm /var/tmp | awk 'NR == 2 { print $4 }')
[ "$AVAIL_MB" -gt "$NEED_MB" ] || die "/var/tmp has ${AVAIL_MB} MB free, the run needs about ${NEED_MB} MB"
[ $((SB_MB * 10)) -gt $(((TABLE_MB + ROWS * 22 / 1048576) * 11)) ] ||
	die "shared_buffers (${SB_MB} MB) must hold the table (${TABLE_MB} MB) and its index plus 10% (the warm cases)"
MEM_MB=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 }' /proc/meminfo)
[ $((SB_MB + TABLE_MB + 1024)) -lt "$MEM_MB" ] || die "shared_buffers ${SB_MB} MB plus the table do not fit the ${MEM_MB} MB of RAM"

read -ra CASE_LIST <<<"$CASES"
COLD_CASES=()
WARM_CASES=()
for c in "${CASE_LIST[@]}"; do
	case "$c" in *_cold) COLD_CASES+=("$c") ;; *) WARM_CASES+=("$c") ;; esac
done

# ---------------------------------------------------------------------------
# deadline, server, cleanup, psql, load and CPU measurement, drop_caches:
# bench/lib.sh
# ---------------------------------------------------------------------------
BENCH_NAME=readahead_bench				# names the partial report of an aborted run
Q_TIMEOUT=600						# default seconds a q (psql) call may take
QUIET_SAMPLE=2						# seconds a sample of wait_foreign_quiet
RAW_HEADER=$(printf '%s\t' case mode run secs order n dev_read_mb dev_read_ios uring_buffer_blocks foreign_cpu_pct load1 so_md5 | sed 's/\t$//')
RAW_HEADER+=$'\tdetail'
# shellcheck source=bench/lib.sh
. "$TOP/bench/lib.sh"
[ "$RUNS" -ge 5 ] || NOTES+=("only $RUNS run(s) per case and mode: fewer than the team's standard of 5")

# ---------------------------------------------------------------------------
# cluster
# ---------------------------------------------------------------------------
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$RESULTS"
WORK=$(mktemp -d /var/tmp/pg_uring-ra.XXXXXX)
chown postgres: "$WORK"
chmod 700 "$WORK"
DATA=$WORK/data
: >"$WORK/raw.tsv"
log "temp dir $WORK; table ${TABLE_MB} MB, shared_buffers ${SB_MB} MB, $RUNS run(s) per case and mode of: $CASES"
bounded 300 "${ASP[@]}" "$BINDIR/initdb" -k -A trust -U postgres --no-sync -D "$DATA" >"$WORK/initdb.log" 2>&1 ||
	{ cat "$WORK/initdb.log" >&2; die "initdb failed"; }
cat >>"$DATA/postgresql.conf" <<EOF

# readahead_bench.sh
listen_addresses = ''
unix_socket_directories = '$WORK'
port = $PORT
max_connections = 30
shared_preload_libraries = 'pg_uring'
shared_buffers = ${SB_MB}MB
# nothing is written while measuring (the table is frozen); the load is
# faster without WAL (table and index are created in the loading transaction)
fsync = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
max_wal_size = 16GB
checkpoint_timeout = 1h
autovacuum = off
jit = off
maintenance_work_mem = 512MB
EOF
pg_start
q -c "CREATE EXTENSION pg_uring" >/dev/null || die "CREATE EXTENSION pg_uring failed: is it installed for $PG_CONFIG?"
q -c "CREATE EXTENSION pg_prewarm" >/dev/null
q -c "CREATE EXTENSION pg_buffercache" >/dev/null
q -c "SELECT current_setting('pg_uring.readahead')" >/dev/null 2>&1 ||
	die "the installed pg_uring has no GUC pg_uring.readahead"
q -c "SELECT length(pg_read_file('/proc/diskstats')) > 0" >/dev/null || die "pg_read_file('/proc/diskstats') failed"

# ---------------------------------------------------------------------------
# load
# ---------------------------------------------------------------------------
log "loading $ROWS rows (~${TABLE_MB} MB), index on r, VACUUM (FREEZE, ANALYZE)"
t_load=$(date +%s)
QTIMEOUT=$((TABLE_MB * 2 + 600)) q <<SQL
SELECT setseed($SEED) \g /dev/null
BEGIN;
CREATE TABLE t (id bigint, r bigint, pad text) WITH (autovacuum_enabled = off);
ALTER TABLE t ALTER COLUMN pad SET STORAGE PLAIN;
INSERT INTO t SELECT g, floor(random() * $ROWS)::int8, rpad('', $PAD, md5(g::text)) FROM generate_series(1, $ROWS) g;
CREATE INDEX t_r_idx ON t (r);
COMMIT;
VACUUM (FREEZE, ANALYZE) t;
CHECKPOINT;
SQL
T_LOAD=$(($(date +%s) - t_load))
NBLOCKS=$(q -c "SELECT pg_relation_size('t') / 8192")
TABLE_BYTES=$((NBLOCKS * 8192))
TABLE_MB_REAL=$(awk -v b="$TABLE_BYTES" 'BEGIN { printf "%.0f", b / 1048576 }')
IDX_MB=$(q -c "SELECT round(pg_relation_size('t_r_idx') / 1048576.0)")
RPB=$(awk -v r="$ROWS" -v b="$NBLOCKS" 'BEGIN { printf "%.1f", r / b }')
CORR=$(q -c "SELECT round(correlation::numeric, 4) FROM pg_stats WHERE tablename = 't' AND attname = 'r'")
VM_ALL=$(q -c "SELECT relallvisible FROM pg_class WHERE oid = 't'::regclass")
[ "$VM_ALL" -ge $((NBLOCKS * 99 / 100)) ] || NOTES+=("WARNING: only $VM_ALL of the $NBLOCKS blocks are all-visible after VACUUM")
log "table: $NBLOCKS blocks ($TABLE_MB_REAL MB, $RPB rows/block), index ${IDX_MB} MB, correlation of r $CORR; load took ${T_LOAD} s"

# the two ranges of r: 0.1% around the middle, 0.5% around a fifth
IDX_LO=$((ROWS / 2))
IDX_HI=$(awk -v lo="$IDX_LO" -v n="$ROWS" -v p="$IDX_PCT" 'BEGIN { w = int(n * p / 100 + 0.5); if (w < 1) w = 1; printf "%d", lo + w - 1 }')
BMP_LO=$((ROWS / 5))
BMP_HI=$(awk -v lo="$BMP_LO" -v n="$ROWS" -v p="$BMP_PCT" 'BEGIN { w = int(n * p / 100 + 0.5); if (w < 1) w = 1; printf "%d", lo + w - 1 }')
IFS='|' read -r N_IDX P_IDX <<<"$(q -c "SELECT count(*), count(DISTINCT (ctid::text::point)[0]) FROM t WHERE r BETWEEN $IDX_LO AND $IDX_HI")"
IFS='|' read -r N_BMP P_BMP <<<"$(q -c "SELECT count(*), count(DISTINCT (ctid::text::point)[0]) FROM t WHERE r BETWEEN $BMP_LO AND $BMP_HI")"
if [ "$N_IDX" -le 0 ] || [ "$N_BMP" -le 0 ]; then die "the ranges of r hold no rows ($N_IDX, $N_BMP)"; fi
log "index range r $IDX_LO..$IDX_HI: $N_IDX rows on $P_IDX blocks; bitmap range r $BMP_LO..$BMP_HI: $N_BMP rows on $P_BMP blocks"

RELPATH=$(q -c "SELECT pg_relation_filepath('t')")
SEGS=("$DATA/$RELPATH")
seg=1
while [ -f "$DATA/$RELPATH.$seg" ]; do
	SEGS+=("$DATA/$RELPATH.$seg")
	seg=$((seg + 1))
done
seg_bytes=0
for f in "${SEGS[@]}"; do seg_bytes=$((seg_bytes + $(stat -c %s "$f"))); done
[ "$seg_bytes" -eq "$TABLE_BYTES" ] || die "segment files hold $seg_bytes bytes, pg_relation_size says $TABLE_BYTES"
PRIME_MB=$((TABLE_BYTES / 1048576 + 64))
if [ "$PRIME" = 1 ]; then
	log "priming file: ${PRIME_MB} MB"
	bounded 900 dd if=/dev/zero of="$WORK/prime.dat" bs=1M count="$PRIME_MB" conv=fsync status=none ||
		die "could not write $WORK/prime.dat"
fi

PGVER=$(q -c "SELECT version()")
SETTINGS=$(q -c "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name)
	FROM pg_settings WHERE name IN ('shared_buffers', 'huge_pages', 'data_checksums', 'effective_io_concurrency',
	'maintenance_io_concurrency', 'synchronize_seqscans', 'random_page_cost', 'work_mem', 'max_parallel_workers',
	'max_worker_processes', 'pg_uring.readahead', 'pg_uring.readahead_distance', 'pg_uring.readahead_seqscan',
	'pg_uring.readahead_bitmapscan', 'pg_uring.readahead_indexscan', 'pg_uring.rings', 'pg_uring.queue_depth',
	'pg_uring.max_ios', 'pg_uring.reaper', 'pg_uring.reaper_delay')")
URING_MODE=$(q -c "SELECT string_agg(DISTINCT mode, ',') FROM pg_uring_stats")
[ "$URING_MODE" = io_uring ] || NOTES+=("WARNING: pg_uring rings run in mode '$URING_MODE', not io_uring")
STATS_COLS=$(q -c "SELECT string_agg(attname, E'\t' ORDER BY attnum) FROM pg_attribute
	WHERE attrelid = 'pg_uring_stats'::regclass AND attnum > 0 AND NOT attisdropped")
printf 'case\treadahead\trun\t%s\n' "$STATS_COLS" >"$STATS_OUT"

# the device under the data directory: /proc/diskstats counters (read in the
# server, around the timed statement), read_ahead_kb, scheduler
DEV_SRC=$(findmnt -n -o SOURCE -T "$DATA" | head -n 1)
FSTYPE=$(findmnt -n -o FSTYPE -T "$DATA" | head -n 1)
DEV_MAJMIN=$(findmnt -n -o MAJ:MIN -T "$DATA" | head -n 1 | tr -d ' ')
DEV_NAME="?"
RA_KB="?"
SCHED="?"
ROTA="?"
if [ -n "$DEV_MAJMIN" ] && [ -e "/sys/dev/block/$DEV_MAJMIN" ]; then
	sysdev=$(readlink -f "/sys/dev/block/$DEV_MAJMIN")
	DEV_NAME=$(basename "$sysdev")
	[ -f "$sysdev/partition" ] && sysdev=$(dirname "$sysdev")
	RA_KB=$(cat "$sysdev/queue/read_ahead_kb" 2>/dev/null || echo "?")
	SCHED=$(sed 's/.*\[\(.*\)\].*/\1/' "$sysdev/queue/scheduler" 2>/dev/null || echo "?")
	ROTA=$(cat "$sysdev/queue/rotational" 2>/dev/null || echo "?")
fi
if [ -n "$DEV_MAJMIN" ] && awk -v mm="$DEV_MAJMIN" '$1 ":" $2 == mm { f = 1 } END { exit !f }' /proc/diskstats; then
	IFS=: read -r dmaj dmin <<<"$DEV_MAJMIN"
	# fields: major minor name reads merged sectors_read ...
	DISK_SQL="(SELECT coalesce((m[1])::int8, -1) AS ios, coalesce((m[2])::int8, -1) AS sec
		FROM regexp_match(pg_read_file('/proc/diskstats'), '^\s*$dmaj\s+$dmin\s+\S+\s+(\d+)\s+\d+\s+(\d+)', 'n') AS m)"
else
	DISK_SQL="(SELECT -1::int8 AS ios, -1::int8 AS sec)"
	NOTES+=("no /proc/diskstats line for the data directory's device ($DEV_SRC, ${DEV_MAJMIN:-?}): no device read counts")
fi
# blocks pg_uring read into shared buffers (read ahead or prewarmed), summed
# over the rings (-1 without pg_uring_stat_io)
UBLOCKS_SQL="(SELECT coalesce(sum(reads), -1) FROM pg_uring_stat_io WHERE io_kind IN ('prewarm', 'read-ahead'))"

# ---------------------------------------------------------------------------
# the cases
# ---------------------------------------------------------------------------
NOIDX="SET enable_indexscan = off; SET enable_indexonlyscan = off; SET enable_bitmapscan = off;"
SERIAL="SET max_parallel_workers_per_gather = 0;"
declare -A STMT=(
	[idx]="SELECT count(*) AS n, sum(length(pad)) AS s FROM t WHERE r BETWEEN $IDX_LO AND $IDX_HI"
	[bitmap]="SELECT count(*) AS n, sum(length(pad)) AS s FROM t WHERE r BETWEEN $BMP_LO AND $BMP_HI"
	[seq]="SELECT count(*) AS n FROM t"
	[seq_par]="SELECT count(*) AS n FROM t"
	[seq4]="SELECT count(*) AS n FROM t"
	[limit1]="SELECT * FROM t LIMIT 1"
)
declare -A GUCS=(
	[idx]="SET enable_bitmapscan = off; SET enable_seqscan = off; $SERIAL"
	[bitmap]="SET enable_indexscan = off; SET enable_indexonlyscan = off; SET enable_seqscan = off; $SERIAL"
	[seq]="$NOIDX $SERIAL"
	# the costs only sway the planner (small tables); the execution is the same
	[seq_par]="$NOIDX SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;"
	[seq4]="$NOIDX $SERIAL"
	[limit1]="$NOIDX $SERIAL"
)
# what the run must return: count(*), or (limit1) the row count
declare -A EXPECT=([idx]=$N_IDX [bitmap]=$N_BMP [seq]=$ROWS [seq_par]=$ROWS [seq4]=$ROWS [limit1]=1)
declare -A NEXPR=([idx]=":'r_n'" [bitmap]=":'r_n'" [seq]=":'r_n'" [seq_par]=":'r_n'" [seq4]=":'r_n'" [limit1]=":rc")
declare -A LABEL=(
	[idx]="Index Scan, $IDX_PCT% ($N_IDX rows, $P_IDX blocks)"
	[bitmap]="Bitmap Heap Scan, $BMP_PCT% ($N_BMP rows, $P_BMP blocks)"
	[seq]="Seq Scan count(*), serial"
	[seq_par]="Parallel Seq Scan count(*), 2 workers planned"
	[seq4]="$NCONC concurrent Seq Scans count(*)"
	[limit1]="SELECT * LIMIT 1"
)

# the plan node each case must get (EXPLAIN (COSTS OFF) text in file $2)
plan_ok() {
	local f=$2
	case "$1" in
	idx) grep -Eq 'Index Scan using t_r_idx on t$' "$f" && ! grep -Eq 'Bitmap|Seq Scan|Index Only|Gather' "$f" ;;
	bitmap) grep -Eq 'Bitmap Heap Scan on t$' "$f" && grep -Eq 'Bitmap Index Scan on t_r_idx$' "$f" &&
		! grep -Eq 'Seq Scan|Index Scan using|Index Only|Gather' "$f" ;;
	seq | seq4) grep -Eq '(^|-> +)Seq Scan on t$' "$f" && ! grep -Eq 'Parallel|Gather|Index|Bitmap' "$f" ;;
	seq_par) grep -Eq 'Parallel Seq Scan on t$' "$f" && grep -Eq 'Gather' "$f" && ! grep -Eq 'Index|Bitmap' "$f" ;;
	limit1) grep -Eq '^ *Limit$' "$f" && grep -Eq '(^|-> +)Seq Scan on t$' "$f" &&
		! grep -Eq 'Parallel|Gather|Index|Bitmap' "$f" ;;
	*) return 1 ;;
	esac
}
check_plan() {	# check_plan base mode file what
	plan_ok "$1" "$3" || { cat "$3" >&2; die "$4: the plan (above) is not the one case '$1' needs (mode $2)"; }
}

# preflight: every case's plan in both modes, before anything is timed
{
	echo "readahead_bench $STAMP: plans (EXPLAIN (COSTS OFF)) checked before the runs"
	echo
} >"$PLANS_OUT"
declare -A PRE_DONE=()
for c in "${CASE_LIST[@]}"; do
	base=${c%_*}
	[ -z "${PRE_DONE[$base]:-}" ] || continue
	PRE_DONE[$base]=1
	for mode in on off; do
		q >"$WORK/explain.txt" <<SQL
${GUCS[$base]}
SET pg_uring.readahead = $mode;
SET pg_uring.readahead_seqscan = on;
EXPLAIN (COSTS OFF) ${STMT[$base]};
SQL
		check_plan "$base" "$mode" "$WORK/explain.txt" "preflight"
		{
			echo "== $base, pg_uring.readahead = $mode: ${GUCS[$base]}"
			echo "${STMT[$base]};"
			cat "$WORK/explain.txt"
			echo
		} >>"$PLANS_OUT"
	done
done
PAR_PLANNED=$({ grep -A 30 '^== seq_par' "$PLANS_OUT" || true; } | sed -n 's/^ *Workers Planned: \([0-9]*\)$/\1/p' | head -n 1)
[ -z "$PAR_PLANNED" ] || LABEL[seq_par]="Parallel Seq Scan count(*), $PAR_PLANNED workers planned"
log "plans checked for: $(printf '%s\n' "${!PRE_DONE[@]}" | sort | tr '\n' ' ')"
pg_stop

# ---------------------------------------------------------------------------
# the device: fio O_DIRECT reads of the table's own files, and a cold dd
# ---------------------------------------------------------------------------
declare -A FIO_MBS=() FIO_IOPS=()
FIO_FILES=$(IFS=:; echo "${SEGS[*]}")
fio_read() {	# fio_read key rw bs iodepth io_size_bytes
	local key=$1 rw=$2 bs=$3 depth=$4 size=$5 extra=() out
	[ "$rw" = read ] && extra=(--file_service_type=sequential)
	drop_caches
	out=$(bounded $((FIO_SECS + 120)) fio --name="ra_$key" --ioengine=io_uring --rw="$rw" --bs="$bs" \
		--iodepth="$depth" --direct=1 --readonly --filename="$FIO_FILES" --io_size="$size" \
		--runtime="$FIO_SECS" "${extra[@]}" --output-format=terse --terse-version=3 2>"$WORK/fio.err") ||
		{ cat "$WORK/fio.err" >&2; die "fio $key failed"; }
	# terse v3: 7 = read bandwidth KiB/s, 8 = read IOPS
	FIO_MBS[$key]=$(awk -F';' 'NR == 1 { printf "%.0f", $7 / 1024 }' <<<"$out")
	FIO_IOPS[$key]=$(awk -F';' 'NR == 1 { printf "%d", $8 }' <<<"$out")
	log "fio $key: ${FIO_MBS[$key]} MB/s, ${FIO_IOPS[$key]} IOPS"
}
# the page cache dropped, and (PRIME=1) memory the guest owns again for the
# next reads: the scratch file read into the page cache and dropped, just
# before the timed part (it must follow at once: ~2 s later the free pages
# are given back to the host again)
cold_caches() {
	drop_caches
	if [ "$PRIME" = 1 ]; then
		bounded 900 cat "$WORK/prime.dat" >/dev/null
		drop_caches
	fi
}
declare -A DD_MBS=()
dd_cold() {	# dd_cold key: the table's segment files read once, buffered, cold
	local t0 t1 f
	cold_caches
	t0=$(date +%s.%N)
	for f in "${SEGS[@]}"; do
		bounded 900 dd if="$f" of=/dev/null bs=1M status=none || die "dd $f failed"
	done
	t1=$(date +%s.%N)
	DD_MBS[$1]=$(awk -v b="$TABLE_BYTES" -v a="$t0" -v c="$t1" 'BEGIN { printf "%.0f", b / 1048576 / (c - a) }')
	log "dd $1: cold buffered read of the table's files: ${DD_MBS[$1]} MB/s"
}
wait_for_quiet
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
t_dev=$(date +%s)
if [ "$DO_FIO" = 1 ]; then
	log "fio: O_DIRECT reads of the table's files, <= ${FIO_SECS} s each"
	fio_read seq128k read 128k 32 "$TABLE_BYTES"
	fio_read rand8k_qd32 randread 8k 32 $((TABLE_BYTES / 4 / 8192 * 8192))
	fio_read rand8k_qd1 randread 8k 1 $((TABLE_BYTES / 16 / 8192 * 8192))
fi
dd_cold before
T_DEV=$(($(date +%s) - t_dev))

# ---------------------------------------------------------------------------
# one run
# ---------------------------------------------------------------------------
SO_SEEN=$SO_SUM
SO_NOW=$SO_SUM
start_server() {
	SO_NOW=$(md5sum "$PKGLIBDIR/pg_uring.so" | cut -c1-12)
	if [ "$SO_NOW" != "$SO_SEEN" ]; then
		NOTES+=("WARNING: $PKGLIBDIR/pg_uring.so changed during the run ($SO_SEEN -> $SO_NOW, seen at a server start before run $CUR_RUN): the raw rows name the build they ran with (so_md5); on/off pairs across builds do not compare")
		log "WARNING: pg_uring.so changed: $SO_SEEN -> $SO_NOW"
		SO_SEEN=$SO_NOW
	fi
	pg_start
}
restart_cold() {
	pg_running && pg_stop
	drop_caches
	start_server
	cold_caches
}

# the statement reps times, each result into r_*
stmt_lines() {	# stmt_lines base reps
	local i
	for i in $(seq 1 "$2"); do printf '%s \\gset r_\n' "${STMT[$1]}"; done
}

# appends the 'S' lines of $1 (pg_uring_stats) to the stats file
save_stats() {	# save_stats output case mode run
	grep '^S|' <<<"$1" | cut -d'|' -f2- | tr '|' '\t' | sed "s/^/$2\t$3\t$4\t/" >>"$STATS_OUT" || true
}

# one session: SETs, EXPLAIN (checked), stats reset, the clock and the device
# counters around reps executions; T line: secs|n|setting|dev ios|dev sectors|pg_uring blocks
run_single() {	# run_single case mode run reps
	local case=$1 mode=$2 run=$3 reps=$4 base=${1%_*} out
	out=$(q <<SQL
${GUCS[$base]}
SET pg_uring.readahead = $mode;
SET pg_uring.readahead_seqscan = on;
\o $WORK/explain.txt
EXPLAIN (COSTS OFF) ${STMT[$base]};
\o
SELECT pg_uring_reset_stats() \g /dev/null
SELECT extract(epoch FROM clock_timestamp()) AS t0, d.ios AS d0i, d.sec AS d0s FROM $DISK_SQL d \gset
$(stmt_lines "$base" "$reps")
SELECT extract(epoch FROM clock_timestamp()) AS t1, :ROW_COUNT AS rc, d.ios AS d1i, d.sec AS d1s FROM $DISK_SQL d \gset
SELECT 'T', round((:t1 - :t0)::numeric / $reps, 6), ${NEXPR[$base]}, current_setting('pg_uring.readahead'),
	:d1i - :d0i, :d1s - :d0s, $UBLOCKS_SQL;
SELECT 'S', s.* FROM pg_uring_stats s;
SQL
	) || die "run $run $case $mode failed"
	check_plan "$base" "$mode" "$WORK/explain.txt" "run $run $case"
	RUN_T=$(grep '^T|' <<<"$out" | cut -d'|' -f2-)
	RUN_DETAIL=$([ "$reps" -gt 1 ] && echo "mean of $reps executions" || echo "-")
	save_stats "$out" "$case" "$mode" "$run"
}

# NCONC sessions connect, SET, EXPLAIN, then sleep until the same moment and
# run the statement; time = latest end - earliest start (server clock)
run_concurrent() {	# run_concurrent case mode run
	local case=$1 mode=$2 run=$3 base=${1%_*} i pids=() at rc=0 out
	q -c "SELECT pg_uring_reset_stats()" >/dev/null
	at=$(awk -v t="$(date +%s.%N)" 'BEGIN { printf "%.3f", t + 3 }')
	for i in $(seq 1 "$NCONC"); do
		q >"$WORK/w$i.out" 2>"$WORK/w$i.err" <<SQL &
${GUCS[$base]}
SET pg_uring.readahead = $mode;
SET pg_uring.readahead_seqscan = on;
\o $WORK/explain-w$i.txt
EXPLAIN (COSTS OFF) ${STMT[$base]};
\o
SELECT pg_sleep_until(to_timestamp($at)) \g /dev/null
SELECT extract(epoch FROM clock_timestamp()) AS t0, d.ios AS d0i, d.sec AS d0s FROM $DISK_SQL d \gset
$(stmt_lines "$base" 1)
SELECT extract(epoch FROM clock_timestamp()) AS t1, d.ios AS d1i, d.sec AS d1s FROM $DISK_SQL d \gset
SELECT 'W', :t0, :t1, ${NEXPR[$base]}, current_setting('pg_uring.readahead'), :d0i, :d0s, :d1i, :d1s;
SQL
		pids+=($!)
	done
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || { rc=1; cat "$WORK/w$((i + 1)).err" >&2; }
	done
	[ "$rc" = 0 ] || die "run $run $case $mode: a session failed"
	for i in $(seq 1 "$NCONC"); do
		check_plan "$base" "$mode" "$WORK/explain-w$i.txt" "run $run $case session $i"
	done
	out=$(q -c "SELECT 'S', s.* FROM pg_uring_stats s")
	save_stats "$out" "$case" "$mode" "$run"
	local ub
	ub=$(q -c "SELECT $UBLOCKS_SQL")
	# W|t0|t1|n|setting|d0i|d0s|d1i|d1s, one line a session
	RUN_T=$(cat "$WORK"/w[0-9]*.out | grep '^W|' | awk -F'|' -v ub="$ub" -v at="$at" -v want="$NCONC" '
		NR == 1 || $2 < t0 { t0 = $2; d0i = $6; d0s = $7 }
		NR == 1 || $3 > t1 { t1 = $3; d1i = $8; d1s = $9 }
		NR == 1 || $2 > t0max { t0max = $2 }
		{ n[NR] = $4; s[NR] = $5; each = each sprintf("%s%.3f", (NR > 1) ? "," : "", $3 - $2) }
		END {
			if (NR != want) { print "ERROR: " NR " sessions reported"; exit }
			nn = n[1]; ss = s[1]; for (i = 2; i <= NR; i++) { if (n[i] != nn) nn = "mismatch"; if (s[i] != ss) ss = "mismatch" }
			printf "%.6f|%s|%s|%d|%d|%d|sessions %s s; start skew %.3f s, first start %.3f s after the planned moment\n",
				t1 - t0, nn, ss, d1i - d0i, d1s - d0s, ub, each, t0max - t0, t0 - at }')
	[[ "$RUN_T" != ERROR* ]] || die "run $run $case $mode: $RUN_T"
	RUN_DETAIL=${RUN_T##*|}
	RUN_T=${RUN_T%|*}
	awk -v d="$RUN_DETAIL" 'BEGIN { exit !(match(d, /skew [0-9.]+/) && substr(d, RSTART + 5, RLENGTH - 5) + 0 > 0.2) }' &&
		NOTES+=("run $run $case $mode: the sessions did not start together ($RUN_DETAIL)")
	return 0
}

CUR_RUN=0
FOREIGN_RUNS=()
run_one() {	# run_one case mode run order
	local case=$1 mode=$2 run=$3 order=$4 base=${1%_*} l1 fcpu secs n setting dios dsec ub dmb
	CUR_RUN=$run
	case "$case" in *_cold) restart_cold ;; esac
	if [ "$QUIET_WAIT" -gt 0 ]; then
		wait_foreign_quiet
		[ "$GATE_WAITED" = 0 ] || NOTES+=("run $run $case $mode: waited ${GATE_WAITED} s for other processes to quieten (last seen: ${GATE_PCT}% of the CPUs)")
	fi
	l1=$(load1)
	foreign_begin
	if [ "$base" = seq4 ]; then
		run_concurrent "$case" "$mode" "$run"
	else
		run_single "$case" "$mode" "$run" "$([ "${case#*_}" = warm ] && echo "$WARM_REPS" || echo 1)"
	fi
	foreign_end
	fcpu=$FOREIGN_PCT
	IFS='|' read -r secs n setting dios dsec ub <<<"$RUN_T"
	[ -n "$secs" ] || die "run $run $case $mode: no timing in the output"
	[ "$setting" = "$mode" ] || die "run $run $case $mode: pg_uring.readahead was '$setting' in the timed session"
	[ "$n" = "${EXPECT[$base]}" ] || die "run $run $case $mode: the query returned $n, expected ${EXPECT[$base]}"
	dmb=$(awk -v s="$dsec" 'BEGIN { if (s < 0) print -1; else printf "%.1f", s * 512 / 1048576 }')
	# (the per-process shares of FOREIGN_TOP are meaningless over a fraction of a second: names only)
	# shellcheck disable=SC2001 # a pattern with a repetition
	[ "$fcpu" -lt 10 ] || FOREIGN_RUNS+=("$case $mode run $run: ${fcpu}% ($(sed 's/ [0-9]*%//g' <<<"${FOREIGN_TOP:-?}"))")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$case" "$mode" "$run" "$secs" "$order" "$n" \
		"$dmb" "$dios" "$ub" "$fcpu" "$l1" "$SO_NOW" "$RUN_DETAIL" >>"$WORK/raw.tsv"
	log "run $run $case $mode: ${secs} s (device read ${dmb} MB in $dios reads, pg_uring blocks $ub; load $l1, foreign CPU ${fcpu}%)"
}

modes_of_run() { if [ $(($1 % 2)) -eq 1 ]; then echo "on off"; else echo "off on"; fi; }

# ---------------------------------------------------------------------------
# run: cold cases (run-major, the cases interleaved), then warm
# ---------------------------------------------------------------------------
t_cases=$(date +%s)
if [ "${#COLD_CASES[@]}" -gt 0 ]; then
	for run in $(seq 1 "$RUNS"); do
		for c in "${COLD_CASES[@]}"; do
			order=1
			for mode in $(modes_of_run "$run"); do
				run_one "$c" "$mode" "$run" "$order"
				order=$((order + 1))
			done
		done
	done
fi
WARM_BUF=""
if [ "${#WARM_CASES[@]}" -gt 0 ]; then
	log "warm: restart, pg_prewarm of t and t_r_idx"
	pg_running && pg_stop
	start_server
	QTIMEOUT=$((TABLE_MB + 300)) q -c "SELECT pg_prewarm('t'), pg_prewarm('t_r_idx')" >/dev/null
	BUFCOUNT="SELECT count(*) FROM pg_buffercache WHERE relfilenode = pg_relation_filenode('t') AND relforknumber = 0
		AND reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())"
	b0=$(q -c "$BUFCOUNT")
	[ "$b0" = "$NBLOCKS" ] || die "after pg_prewarm, $b0 of the table's $NBLOCKS blocks are in shared_buffers"
	for run in $(seq 1 "$RUNS"); do
		for c in "${WARM_CASES[@]}"; do
			order=1
			for mode in $(modes_of_run "$run"); do
				run_one "$c" "$mode" "$run" "$order"
				order=$((order + 1))
			done
		done
	done
	b1=$(q -c "$BUFCOUNT")
	WARM_BUF="$b0 of $NBLOCKS table blocks in shared_buffers before the warm runs, $b1 after"
	[ "$b1" = "$NBLOCKS" ] || NOTES+=("WARNING: after the warm runs only $b1 of the table's $NBLOCKS blocks were in shared_buffers")
	# for the plans file: one EXPLAIN ANALYZE of each case in both modes, warm
	{
		echo "== EXPLAIN (ANALYZE, BUFFERS, TIMING OFF), warm (table and index in shared_buffers), after the warm runs"
		echo
	} >>"$PLANS_OUT"
	for base in idx bitmap seq seq_par limit1; do
		for mode in on off; do
			{
				echo "== $base, pg_uring.readahead = $mode"
				q <<SQL
${GUCS[$base]}
SET pg_uring.readahead = $mode;
SET pg_uring.readahead_seqscan = on;
EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) ${STMT[$base]};
SQL
				echo
			} >>"$PLANS_OUT"
		done
	done
fi
T_CASES=$(($(date +%s) - t_cases))
pg_running && pg_stop
dd_cold after
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
SO_SUM_END=$(md5sum "$PKGLIBDIR/pg_uring.so" | cut -c1-12)
[ "$SO_SUM_END" = "$SO_SEEN" ] ||
	NOTES+=("WARNING: $PKGLIBDIR/pg_uring.so changed after the last server start ($SO_SEEN -> $SO_SUM_END): not used by this run")

# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------
# raw.tsv: 1 case 2 mode 3 run 4 secs 5 order 6 n 7 dev_read_mb 8 dev_read_ios
# 9 uring_buffer_blocks 10 foreign_cpu_pct 11 load1 12 so_md5 13 detail
stat_of() {	# stat_of case mode field what (median, min, max, count)
	awk -F'\t' -v c="$1" -v m="$2" -v f="$3" '$1 == c && $2 == m { print $f }' "$WORK/raw.tsv" |
		sort -g | awk -v w="$4" '{ v[NR] = $1 } END {
			if (w == "count") { print NR; exit }
			if (NR == 0) { print "nan"; exit }
			if (w == "min") print v[1]; else if (w == "max") print v[NR]
			else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# the order effect: median of the runs that went first in their pair over
# the median of those that went second, both modes together
order_ratio() {	# order_ratio case
	local a b
	a=$(awk -F'\t' -v c="$1" '$1 == c && $5 == 1 { print $4 }' "$WORK/raw.tsv" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
	b=$(awk -F'\t' -v c="$1" '$1 == c && $5 == 2 { print $4 }' "$WORK/raw.tsv" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
	awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "-" }'
}
# what a run does per second: MB/s of the table (seq*), heap blocks/s (idx, bitmap)
rate_of() {	# rate_of base secs
	awk -v b="$1" -v s="$2" -v mb="$TABLE_MB_REAL" -v pi="$P_IDX" -v pb="$P_BMP" -v k="$NCONC" 'BEGIN {
		if (s <= 0) { print "-"; exit }
		if (b == "seq" || b == "seq_par") printf "%.0f MB/s", mb / s
		else if (b == "seq4") printf "%.0f MB/s (%d scans)", k * mb / s, k
		else if (b == "idx") printf "%.0f blocks/s", pi / s
		else if (b == "bitmap") printf "%.0f blocks/s", pb / s
		else print "-" }'
}

report() {
	local cpu c base mo mf ratio
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
	echo "pg_uring read-ahead benchmark (pg_uring.readahead on against off), $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo
	echo "- table:              t (id bigint, r bigint, pad text): $ROWS rows, $NBLOCKS blocks = $TABLE_MB_REAL MB in ${#SEGS[@]} segment file(s) ($RELPATH*),"
	echo "                      $RPB rows/block, frozen, all-visible $VM_ALL blocks; r random (setseed $SEED), correlation $CORR;"
	echo "                      index t_r_idx on t (r): ${IDX_MB} MB"
	echo "- shared_buffers:     ${SB_MB} MB; ${WARM_BUF:-no warm cases}"
	echo "- kernel:             $(uname -r) ($(uname -m)); nproc $(nproc) [$cpu]; RAM ${MEM_MB} MB"
	echo "- PostgreSQL:         $PGVER"
	echo "- pg_uring.so:        md5 $SO_SUM..., installed $SO_TIME; rings in mode $URING_MODE"
	echo "- settings:           $SETTINGS"
	echo "- data directory:     $FSTYPE on $DEV_SRC ($DEV_NAME: read_ahead_kb=$RA_KB, scheduler $SCHED, rotational $ROTA)"
	echo "- device, this run (the table's own segment files, page cache dropped before each):"
	if [ "$DO_FIO" = 1 ]; then
		printf '    %-46s %7s MB/s %8s IOPS\n' "fio sequential 128 kB, O_DIRECT, iodepth 32" "${FIO_MBS[seq128k]}" "${FIO_IOPS[seq128k]}"
		printf '    %-46s %7s MB/s %8s IOPS\n' "fio random 8 kB, O_DIRECT, iodepth 32" "${FIO_MBS[rand8k_qd32]}" "${FIO_IOPS[rand8k_qd32]}"
		printf '    %-46s %7s MB/s %8s IOPS\n' "fio random 8 kB, O_DIRECT, iodepth 1" "${FIO_MBS[rand8k_qd1]}" "${FIO_IOPS[rand8k_qd1]}"
	fi
	printf '    %-46s %7s MB/s (before the cases), %s MB/s (after)\n' "dd bs=1M, buffered, cold$([ "$PRIME" = 1 ] && echo "+primed")" "${DD_MBS[before]}" "${DD_MBS[after]}"
	echo "- runs:               $RUNS per case and mode; order on,off / off,on / on,off ... (per case); cold = server"
	echo "                      stopped, sync, drop_caches, server started$([ "$PRIME" = 1 ] && echo ", memory primed (${PRIME_MB} MB scratch file read, dropped)"); warm ="
	echo "                      no restart, table and index prewarmed once, each run the mean of $WARM_REPS executions"
	echo "- load average:       at start $LOAD_START; before the device runs $LOAD_BEFORE; at the end $LOAD_AFTER"
	echo
	echo "| case | median off (s) | median on (s) | ratio on/off | runs (off/on) | order 1st/2nd | min-max off (s) | min-max on (s) | rate off | rate on | device MB read off / on | pg_uring blocks on | what |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
	for c in "${CASE_LIST[@]}"; do
		base=${c%_*}
		mf=$(stat_of "$c" off 4 median)
		mo=$(stat_of "$c" on 4 median)
		ratio=$(awk -v a="$mo" -v b="$mf" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
		printf '| %s | %.4f | %.4f | %s | %s/%s | %s | %.4f-%.4f | %.4f-%.4f | %s | %s | %s / %s | %s | %s |\n' \
			"$c" "$mf" "$mo" "$ratio" "$(stat_of "$c" off 4 count)" "$(stat_of "$c" on 4 count)" "$(order_ratio "$c")" \
			"$(stat_of "$c" off 4 min)" "$(stat_of "$c" off 4 max)" "$(stat_of "$c" on 4 min)" "$(stat_of "$c" on 4 max)" \
			"$(rate_of "$base" "$mf")" "$(rate_of "$base" "$mo")" \
			"$(stat_of "$c" off 7 median)" "$(stat_of "$c" on 7 median)" "$(stat_of "$c" on 9 median)" "${LABEL[$base]}"
	done
	echo
	echo "- time: clock_timestamp() in the server around the statement (seq4: the latest end minus the"
	echo "  earliest start of the $NCONC sessions, which sleep until a common moment first); medians over the runs."
	echo "  ratio on/off < 1 is faster with read-ahead; the warm cases should stay at about 1.0."
	echo "- order 1st/2nd: median of the runs that went first in their on/off pair over those that went second,"
	echo "  both modes pooled. Far from 1.00 means the position in the pair matters (a machine effect); then"
	echo "  the mode that went first more often (on, with an odd number of runs) is penalised or favoured."
	echo "- rate: table MB / time (seq*), distinct heap blocks of the range / time (idx, bitmap): compare"
	echo "  with the device lines above (seq: dd and fio sequential; idx and bitmap: fio random IOPS)."
	echo "- device MB read: /proc/diskstats sectors of $DEV_NAME read during the timed statement (the whole device,"
	echo "  other processes included; -1 if unknown). pg_uring blocks: sum of pg_uring_stat_io.reads (prewarm and read-ahead rows), reset"
	echo "  before each run (median of the on runs; all stats rows are in the .stats.tsv file)."
	if [ "${#FOREIGN_RUNS[@]}" -gt 0 ]; then
		cut -f10 "$WORK/raw.tsv" | sort -g | awk -v k="${#FOREIGN_RUNS[@]}" '{ v[NR] = $1 } END {
			printf "- %d of %d runs saw other processes use >= 10%% of the CPUs (median over all runs %s%%, max %s%%;\n", k, NR, v[int((NR + 1) / 2)], v[NR] }'
		echo "  column foreign_cpu_pct of the raw file); the worst: $(printf '%s\n' "${FOREIGN_RUNS[@]}" |
			sort -t: -k2 -rn | head -n 3 | paste -sd ';' | sed 's/;/; /g')"
	fi
	local nte
	for nte in "${NOTES[@]}"; do echo "- $nte"; done
	echo
	echo "Files: $OUT (this report), $RAW_OUT (every run), $STATS_OUT (pg_uring_stats after every run),"
	echo "       $PLANS_OUT (plans)"
	echo "load: ${T_LOAD} s; device: ${T_DEV} s; cases: ${T_CASES} s; whole benchmark: $(($(date +%s) - T_BEGIN)) s"
}
{
	echo "$RAW_HEADER"
	cat "$WORK/raw.tsv"
} >"$RAW_OUT"
report | tee "$OUT"
DONE=1
log "report written to $OUT"
