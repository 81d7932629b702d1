#!/usr/bin/env bash
# bench/prewarm_bench.sh - pg_uring_prewarm / pg_uring_prewarm_blocks against
# core pg_prewarm, cold (OS page cache dropped) and warm (page cache kept),
# with huge pages and shared_buffers larger than the table.
#
# Cases (every one after a server restart, core and pg_uring alternating
# which goes first from one run to the next):
#   1 full     pg_prewarm(rel, 'buffer')  vs  pg_uring_prewarm(rel)
#   2 random   2% of the blocks in shuffled order (a list saved beforehand):
#              one pg_prewarm(rel, 'buffer', 'main', b, b) per block, in one
#              statement  vs  pg_uring_prewarm_blocks(rel, <same list>)
#   3 sorted   a random 25% of the blocks in block order (autoprewarm-like),
#              same two sides; the device's read_ahead_kb is printed with it
# plus fio (io_uring, 8 kB, queue depth 32) sequential and random reads of
# the table's own segment files, as the device limit of this run.
#
# Usage, as root (it drops the page cache and sets vm.nr_hugepages), from a
# checkout after the extension is installed (sudo bash scripts/build.sh):
#
#     sudo bash bench/prewarm_bench.sh
#     sudo PGU_BENCH_QUICK=1 bash bench/prewarm_bench.sh     # ~200 MB, 1 run
#
# The report goes to stdout and to bench/results/prewarm_bench-<date>.txt.
# See bench/PREWARM.md for what is measured and how to read the table.
#
# Knobs (environment), with their defaults:
#   PGU_BENCH_QUICK=0        1: a 0.2 GB table, 1 run, 3 s fio runs
#   PGU_BENCH_TABLE_GB=1.2   table size in GiB (0.2 with QUICK)
#   PGU_BENCH_RUNS=3         runs per case and cache state (1 with QUICK)
#   PGU_BENCH_FIO_SECS=10    upper bound per fio run (3 with QUICK)
#   PGU_BENCH_SEED=0.42      setseed() for the block samples
#   PGU_BENCH_HUGE_PAGES=on  huge_pages to ask for (on, try or off)
#   PGU_BENCH_KEEP=0         1: keep the temp dir (server stopped) for a look
#   PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
set -euo pipefail
shopt -s inherit_errexit

if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
	exit 0
fi

QUICK=${PGU_BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
	TABLE_GB=${PGU_BENCH_TABLE_GB:-0.2}
	RUNS=${PGU_BENCH_RUNS:-1}
	FIO_SECS=${PGU_BENCH_FIO_SECS:-3}
else
	TABLE_GB=${PGU_BENCH_TABLE_GB:-1.2}
	RUNS=${PGU_BENCH_RUNS:-3}
	FIO_SECS=${PGU_BENCH_FIO_SECS:-10}
fi
SEED=${PGU_BENCH_SEED:-0.42}
HUGE_WANTED=${PGU_BENCH_HUGE_PAGES:-on}
KEEP=${PGU_BENCH_KEEP:-0}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}

RAND_PCT=2						# case 2: share of the blocks, shuffled
SORTED_PCT=25					# case 3: share of the blocks, in block order
PORT=5432						# the socket lives in our private temp dir
DB=postgres

log() { echo "[prewarm_bench $(date +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || die "run as root: the script drops the OS page cache and sets vm.nr_hugepages"
case "$HUGE_WANTED" in on | try | off) ;; *) die "PGU_BENCH_HUGE_PAGES must be on, try or off" ;; esac
awk -v g="$TABLE_GB" 'BEGIN { exit !(g + 0 > 0.01) }' || die "PGU_BENCH_TABLE_GB must be a number > 0.01"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "PGU_BENCH_RUNS must be a positive integer"
[[ "$FIO_SECS" =~ ^[1-9][0-9]*$ ]] || die "PGU_BENCH_FIO_SECS must be a positive integer"
id postgres >/dev/null 2>&1 || die "needs an OS user 'postgres' to run the server"
[ -x "$PG_CONFIG" ] || command -v "$PG_CONFIG" >/dev/null 2>&1 || die "PG_CONFIG=$PG_CONFIG not found"
BINDIR=$("$PG_CONFIG" --bindir)
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
SHAREDIR=$("$PG_CONFIG" --sharedir)
for b in initdb pg_ctl psql postgres; do
	[ -x "$BINDIR/$b" ] || die "$BINDIR/$b not found (set PG_CONFIG)"
done
[ -f "$PKGLIBDIR/pg_uring.so" ] || die "$PKGLIBDIR/pg_uring.so not found: install pg_uring (sudo bash scripts/build.sh) or set PG_CONFIG"
[ -f "$PKGLIBDIR/pg_prewarm.so" ] || die "$PKGLIBDIR/pg_prewarm.so not found: pg_prewarm (contrib) is needed for the core side"
HAVE_BUFFERCACHE=0
[ -f "$SHAREDIR/extension/pg_buffercache.control" ] && HAVE_BUFFERCACHE=1
command -v fio >/dev/null 2>&1 || die "fio not found (apt-get install fio)"
[ -w /proc/sys/vm/drop_caches ] || die "/proc/sys/vm/drop_caches is not writable (container without privileges?)"

if command -v runuser >/dev/null 2>&1; then
	asp() { runuser -u postgres -- "$@"; }
else
	asp() {
		local cmd="" a
		for a in "$@"; do cmd+=" $(printf '%q' "$a")"; done
		su postgres -s /bin/bash -c "$cmd"
	}
fi

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS=$TOP/bench/results
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=$RESULTS/prewarm_bench-$STAMP.txt

# ---------------------------------------------------------------------------
# temp dir, server, cleanup
# ---------------------------------------------------------------------------
WORK=""
DATA=""
HP_OLD=""						# vm.nr_hugepages before we touched it
HP_SET=""						# the value we set
DONE=0

pg_running() { [ -n "$DATA" ] && [ -f "$DATA/postmaster.pid" ]; }

pg_stop() {
	asp "$BINDIR/pg_ctl" -D "$DATA" -m fast -w -t 120 stop >/dev/null
}

# returns non-zero instead of dying, so huge_pages = on can fall back
pg_try_start() {
	asp "$BINDIR/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w -t 300 start >/dev/null 2>&1
}

# up to 5 attempts, topping up the huge page pool before each (another
# server starting at the same moment may have taken the free pages)
pg_start_retry() {
	local attempt
	for attempt in 1 2 3 4 5; do
		hp_ensure
		pg_try_start && return 0
		log "WARNING: server start $attempt failed: $(grep -E 'FATAL' "$WORK/server.log" | tail -n 1)"
		START_FAILURES=$((START_FAILURES + 1))
		sleep 1
	done
	return 1
}

pg_start() {
	pg_start_retry || { tail -n 30 "$WORK/server.log" >&2; die "server did not start (log: $WORK/server.log)"; }
}

cleanup() {
	local rc=$?
	set +e
	if pg_running; then
		asp "$BINDIR/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null 2>&1 ||
			asp "$BINDIR/pg_ctl" -D "$DATA" -m immediate -w -t 60 stop >/dev/null 2>&1
	fi
	if [ -n "$HP_OLD" ]; then
		local cur
		cur=$(cat /proc/sys/vm/nr_hugepages)
		if [ -z "$HP_SET" ]; then
			:
		elif [ "$cur" = "$HP_SET" ]; then
			sysctl -q -w vm.nr_hugepages="$HP_OLD" >/dev/null ||
				log "WARNING: could not restore vm.nr_hugepages to $HP_OLD (now $cur)"
		else
			log "WARNING: vm.nr_hugepages is $cur, not the $HP_SET we set: someone else changed it; left alone (it was $HP_OLD before)"
		fi
	fi
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if [ "$DONE" != 1 ] && [ -s "$WORK/raw.tsv" ]; then
			mkdir -p "$RESULTS"
			{
				echo "prewarm_bench INCOMPLETE (exit $rc) - raw rows so far:"
				echo "run|case|cache|side|order|secs|blocks|page_cache_resident_pct|buffers_after|by_issuer|by_other|by_reaper|buffer_reads|buffer_blocks|errors"
				cat "$WORK/raw.tsv"
			} >"$RESULTS/prewarm_bench-$STAMP.partial.txt"
			log "partial raw rows in $RESULTS/prewarm_bench-$STAMP.partial.txt"
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

q() {
	"$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -At -F '|' -h "$WORK" -p "$PORT" -U postgres -d "$DB" "$@"
}

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

# share of the table's segment files in the OS page cache, in percent
resident_pct() {
	if command -v fincore >/dev/null 2>&1; then
		fincore -b -n -o RES "${SEGS[@]}" 2>/dev/null |
			awk -v t="$TABLE_BYTES" '{ s += $1 } END { printf "%.0f", (t > 0) ? 100 * s / t : 0 }'
	else
		echo "?"
	fi
}

# read_ahead_kb of the block device under a directory: "<dev> <kb>"
# (partitions: the whole disk's queue; device mapper and md have their own)
read_ahead_of() {
	local dir=$1 majmin sys name kb
	majmin=$(findmnt -n -o MAJ:MIN -T "$dir" 2>/dev/null | head -n 1 | tr -d ' ')
	if [ -z "$majmin" ]; then
		majmin=$(stat -c '%Hd:%Ld' "$dir" 2>/dev/null || true)
	fi
	if [ -n "$majmin" ] && [ -e "/sys/dev/block/$majmin" ]; then
		sys=$(readlink -f "/sys/dev/block/$majmin")
		[ -f "$sys/partition" ] && sys=$(dirname "$sys")
		name=$(basename "$sys")
		kb=$(cat "$sys/queue/read_ahead_kb" 2>/dev/null || echo "?")
		echo "$name $kb"
	elif [ -n "$majmin" ] && [ -r "/sys/class/bdi/$majmin/read_ahead_kb" ]; then
		echo "bdi-$majmin $(cat "/sys/class/bdi/$majmin/read_ahead_kb")"
	else
		echo "unknown ?"
	fi
}

meminfo() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }

t_begin=$(date +%s)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$RESULTS"
WORK=$(mktemp -d /var/tmp/pg_uring-prewarm.XXXXXX)
chmod 700 "$WORK"
chown postgres:postgres "$WORK"
DATA=$WORK/data
: >"$WORK/raw.tsv"
NOTES=()

# ---------------------------------------------------------------------------
# cluster
# ---------------------------------------------------------------------------
TABLE_BLOCKS_WANTED=$(awk -v g="$TABLE_GB" 'BEGIN { x = g * 131072; printf "%d", (x == int(x)) ? x : int(x) + 1 }')
TABLE_MB_WANTED=$(((TABLE_BLOCKS_WANTED + 127) / 128))
# shared_buffers: table + 30%, rounded up to 64 MB
SB_MB=$(awk -v m="$TABLE_MB_WANTED" 'BEGIN { x = m * 1.3; x = int((x + 63) / 64) * 64; print x }')

log "initdb in $DATA (shared_buffers ${SB_MB}MB for a ${TABLE_MB_WANTED} MB table)"
asp "$BINDIR/initdb" -k -A trust -U postgres --no-sync -D "$DATA" >"$WORK/initdb.log" 2>&1 ||
	{ cat "$WORK/initdb.log" >&2; die "initdb failed"; }
cat >>"$DATA/postgresql.conf" <<CONF

# prewarm_bench
shared_preload_libraries = 'pg_uring'
listen_addresses = ''
unix_socket_directories = '$WORK'
port = $PORT
max_connections = 20
shared_buffers = ${SB_MB}MB
# nothing is written while measuring; the load is faster without these
fsync = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
max_wal_size = 16GB
checkpoint_timeout = 1h
# nothing else reads the table or plans in parallel / with JIT
autovacuum = off
jit = off
max_parallel_workers_per_gather = 0
include_if_exists = 'prewarm_bench_huge.conf'
CONF

# ---- huge pages ----
# Other PostgreSQL servers on the machine (huge_pages = try, the default)
# take free huge pages when they start, also between our restarts; so the
# pool is topped up before every start, not only once.
HUGE_STATE=""
HUGE_NOTE=""
HP_NEED=0
HP_TOPUPS=0
HP_MAY_DROP=1
START_FAILURES=0
hp_avail() { awk '/^HugePages_Free:/ { f = $2 } /^HugePages_Rsvd:/ { r = $2 } END { print f - r }' /proc/meminfo; }
hp_ensure() {
	[ "$HP_NEED" -gt 0 ] || return 0
	local avail cur want got
	avail=$(hp_avail)
	[ "$avail" -lt "$HP_NEED" ] || return 0
	cur=$(cat /proc/sys/vm/nr_hugepages)
	[ -n "$HP_OLD" ] || HP_OLD=$cur
	want=$((cur + HP_NEED - avail))
	sysctl -q -w vm.nr_hugepages="$want" >/dev/null 2>&1 || true
	got=$(cat /proc/sys/vm/nr_hugepages)
	if [ "$got" -lt "$want" ]; then
		# fragmented memory: free the page cache (not while a warm run is
		# being prepared), compact, try again
		[ "$HP_MAY_DROP" = 1 ] && drop_caches
		echo 1 >/proc/sys/vm/compact_memory 2>/dev/null || true
		sysctl -q -w vm.nr_hugepages="$want" >/dev/null 2>&1 || true
		got=$(cat /proc/sys/vm/nr_hugepages)
	fi
	HP_SET=$got
	HP_TOPUPS=$((HP_TOPUPS + 1))
	log "vm.nr_hugepages $cur -> $got (wanted $want: $HP_NEED x 2 MB pages needed, $avail were free)"
	hp_touch
}
# Fault in every free huge page of the pool once. New pool pages come from
# memory the guest may never have touched (or gave back to the host: free
# page reporting), and the first touch can cost far more than the zeroing
# every later fault does; without this, the first timed run after the pool
# grew pays it alone (seen: 1.8 s instead of 0.2 s for a 200 MB table).
HP_TOUCHER=""
hp_touch() {
	local n
	n=$(hp_avail)
	[ "$n" -gt 0 ] || return 0
	if [ -z "$HP_TOUCHER" ]; then
		if command -v cc >/dev/null 2>&1 && cat >"$WORK/hp_touch.c" <<'C' && cc -O -o "$WORK/hp_touch" "$WORK/hp_touch.c" 2>/dev/null; then
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
/* map n (or, if others took some meanwhile, fewer) 2 MB huge pages, touch each, unmap */
int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 0, i;
	size_t hp = 2UL << 20;
	for (; n > 0; n--)
	{
		char *p = mmap(NULL, n * hp, PROT_READ | PROT_WRITE,
					   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		if (p == MAP_FAILED)
			continue;
		for (i = 0; i < n; i++)
			p[i * hp] = 1;
		munmap(p, n * hp);
		break;
	}
	printf("%ld\n", n);
	return 0;
}
C
			HP_TOUCHER="$WORK/hp_touch"
		elif command -v python3 >/dev/null 2>&1; then
			cat >"$WORK/hp_touch.py" <<'PY'
import mmap, sys
n = int(sys.argv[1])
while n > 0:
    try:
        m = mmap.mmap(-1, n << 21, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x40000)
    except OSError:
        n -= 1
        continue
    for i in range(n):
        m[i << 21] = 1
    m.close()
    break
print(n)
PY
			HP_TOUCHER="python3 $WORK/hp_touch.py"
		else
			HP_TOUCHER=none
			NOTES+=("huge pages not pre-faulted (neither cc nor python3 found): the first run after the pool grew pays their first touch")
		fi
	fi
	[ "$HP_TOUCHER" != none ] || return 0
	local t0
	t0=$(date +%s.%N)
	HP_TOUCH_N=$($HP_TOUCHER "$n" 2>/dev/null || echo 0)
	HP_TOUCH_SECS=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
	log "pre-faulted $HP_TOUCH_N of $n free huge pages in $HP_TOUCH_SECS s"
}
HP_TOUCH_N=0
HP_TOUCH_SECS=0
# 2 MB pages mapped by the running postmaster
hp_of_server() {
	local pid
	pid=$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null) || { echo 0; return; }
	awk '/^Size:/ { s = $2 } /^KernelPageSize:/ { if ($2 == 2048) t += s } END { printf "%d", t / 2048 }' \
		"/proc/$pid/smaps" 2>/dev/null || echo 0
}
if [ "$HUGE_WANTED" != off ]; then
	HP_NEED=$(asp "$BINDIR/postgres" -D "$DATA" -C shared_memory_size_in_huge_pages 2>/dev/null || echo -1)
	if ! [[ "$HP_NEED" =~ ^[0-9]+$ ]] || [ "$HP_NEED" -le 0 ]; then
		# no answer (or no huge page support): shared_buffers + 10% + 64 MB, 2 MB pages
		HP_NEED=$(((SB_MB * 11 / 10 + 64) / 2))
		NOTES+=("postgres -C shared_memory_size_in_huge_pages gave no answer; estimated $HP_NEED pages")
	fi
	HP_NEED=$((HP_NEED + 4))	# small margin
	hp_ensure
	[ "$HP_TOPUPS" -gt 0 ] || hp_touch
fi
echo "huge_pages = $HUGE_WANTED" >"$DATA/prewarm_bench_huge.conf"
if pg_start_retry; then
	HUGE_STATE=$HUGE_WANTED
else
	if [ "$HUGE_WANTED" = on ]; then
		HUGE_NOTE=$(grep -E 'FATAL|HINT' "$WORK/server.log" | tail -n 2 | tr '\n' ' ')
		log "WARNING: the server did not start with huge_pages = on: $HUGE_NOTE"
		log "WARNING: falling back to huge_pages = try: THE RESULTS MAY BE WITHOUT HUGE PAGES"
		echo "huge_pages = try" >"$DATA/prewarm_bench_huge.conf"
		pg_start
		HUGE_STATE="try (FALLBACK: 'on' failed to start)"
	else
		tail -n 30 "$WORK/server.log" >&2
		die "server did not start"
	fi
fi
HP_IN_USE=$(hp_of_server)
if [ "$HUGE_WANTED" != off ] && [ "$HP_IN_USE" -le 0 ]; then
	HUGE_STATE="$HUGE_STATE, NOT IN USE (no 2 MB pages mapped)"
	log "WARNING: the server does not use huge pages"
fi
log "server up: huge_pages = $HUGE_STATE, $HP_IN_USE huge pages taken"

q -c "CREATE EXTENSION pg_uring" >/dev/null ||
	die "CREATE EXTENSION pg_uring failed: is it installed for $PG_CONFIG?"
q -c "CREATE EXTENSION pg_prewarm" >/dev/null
[ "$HAVE_BUFFERCACHE" = 1 ] && q -c "CREATE EXTENSION pg_buffercache" >/dev/null

# ---------------------------------------------------------------------------
# load: 4 rows of ~1.9 kB per 8 kB block, created and filled in one
# transaction (wal_level = minimal: no WAL), then frozen (hint bits and
# visibility map set), then checkpointed
# ---------------------------------------------------------------------------
ROWS=$((TABLE_BLOCKS_WANTED * 4))
log "loading $ROWS rows (~${TABLE_MB_WANTED} MB)"
t_load=$(date +%s)
q <<SQL
BEGIN;
CREATE TABLE pb_table (id int8, filler text) WITH (autovacuum_enabled = off);
ALTER TABLE pb_table ALTER COLUMN filler SET STORAGE PLAIN;
INSERT INTO pb_table SELECT g, repeat(md5(g::text), 59) FROM generate_series(1, $ROWS) g;
COMMIT;
-- two small tables that every timed session reads first, one through each
-- side, so both code paths are paged in before the clock starts
CREATE TABLE pb_warm_a AS SELECT g, repeat('a', 500) AS f FROM generate_series(1, 2000) g;
CREATE TABLE pb_warm_b AS SELECT g, repeat('b', 500) AS f FROM generate_series(1, 2000) g;
SQL
log "vacuum (freeze)"
q -c "VACUUM (FREEZE, ANALYZE) pb_table"
NBLOCKS=$(q -c "SELECT pg_relation_size('pb_table') / 8192")
N_RAND=$(awk -v n="$NBLOCKS" -v p="$RAND_PCT" 'BEGIN { x = int(n * p / 100 + 0.5); print (x < 1) ? 1 : x }')
N_SORTED=$(awk -v n="$NBLOCKS" -v p="$SORTED_PCT" 'BEGIN { x = int(n * p / 100 + 0.5); print (x < 1) ? 1 : x }')
log "block lists: $N_RAND shuffled ($RAND_PCT%), $N_SORTED sorted ($SORTED_PCT%), seed $SEED"
q <<SQL
SELECT setseed($SEED) \g /dev/null
-- case 2: 2% of the blocks, shuffled
CREATE TABLE pb_rand AS
	SELECT row_number() OVER (ORDER BY r) AS ord, b
	FROM (SELECT b, random() AS r FROM generate_series(0, $NBLOCKS - 1) AS b
		  ORDER BY r LIMIT $N_RAND) s
	ORDER BY ord;
-- case 3: another random 25%, in block order
CREATE TABLE pb_sorted AS
	SELECT row_number() OVER (ORDER BY b) AS ord, b
	FROM (SELECT b FROM generate_series(0, $NBLOCKS - 1) AS b
		  ORDER BY random() LIMIT $N_SORTED) s
	ORDER BY ord;
-- times one statement returning one int8, inside the server
CREATE FUNCTION pb_time(stmt text, OUT secs float8, OUT n int8)
LANGUAGE plpgsql AS \$\$
DECLARE
	t0 timestamptz;
BEGIN
	t0 := clock_timestamp();
	EXECUTE stmt INTO n;
	secs := extract(epoch FROM clock_timestamp() - t0);
END \$\$;
VACUUM (FREEZE, ANALYZE) pb_rand, pb_sorted, pb_warm_a, pb_warm_b;
CHECKPOINT;
SQL
T_LOAD=$(($(date +%s) - t_load))

# sanity: the lists hold distinct, in-range blocks and the right order
chk=$(q -c "SELECT (SELECT count(DISTINCT b) FROM pb_rand), (SELECT count(DISTINCT b) FROM pb_sorted),
	(SELECT max(b) FROM (SELECT b FROM pb_rand UNION ALL SELECT b FROM pb_sorted) s),
	(SELECT bool_and(b > lb) FROM (SELECT b, lag(b, 1, -1::int8) OVER (ORDER BY ord) AS lb FROM pb_sorted) s)")
IFS='|' read -r c_rand c_sorted c_max c_order <<<"$chk"
[ "$c_rand" = "$N_RAND" ] && [ "$c_sorted" = "$N_SORTED" ] && [ "$c_max" -lt "$NBLOCKS" ] && [ "$c_order" = t ] ||
	die "block lists are wrong: $chk"

RELPATH=$(q -c "SELECT pg_relation_filepath('pb_table')")
TABLE_BYTES=$((NBLOCKS * 8192))
SEGS=("$DATA/$RELPATH")
seg=1
while [ -f "$DATA/$RELPATH.$seg" ]; do
	SEGS+=("$DATA/$RELPATH.$seg")
	seg=$((seg + 1))
done
seg_bytes=0
for f in "${SEGS[@]}"; do seg_bytes=$((seg_bytes + $(stat -c %s "$f"))); done
[ "$seg_bytes" -eq "$TABLE_BYTES" ] || die "segment files hold $seg_bytes bytes, pg_relation_size says $TABLE_BYTES"
[ "$((SB_MB * 1024 * 1024))" -gt "$TABLE_BYTES" ] || die "shared_buffers (${SB_MB} MB) is not larger than the table"
log "table: $NBLOCKS blocks, $((TABLE_BYTES / 1048576)) MB in ${#SEGS[@]} segment file(s); load took ${T_LOAD} s"

# context that needs the server
PGVER=$(q -c "SELECT version()")
SETTINGS=$(q -c "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ', ' ORDER BY name)
	FROM pg_settings WHERE name IN ('shared_buffers', 'huge_pages', 'data_checksums', 'pg_uring.prewarm_depth',
	'pg_uring.rings', 'pg_uring.queue_depth', 'pg_uring.max_ios', 'pg_uring.reaper', 'pg_uring.reaper_delay',
	'effective_io_concurrency', 'wal_level', 'fsync')")
URING_MODE=$(q -c "SELECT string_agg(DISTINCT mode, ',') FROM pg_uring_stats")
[ "$URING_MODE" = io_uring ] || NOTES+=("WARNING: pg_uring rings run in mode '$URING_MODE', not io_uring: every pg_uring read is synchronous")
read -r RA_DEV RA_KB <<<"$(read_ahead_of "$DATA")"
FSTYPE=$(findmnt -n -o FSTYPE -T "$DATA" 2>/dev/null | head -n 1 || echo "?")
SCHED=$(sed 's/.*\[\(.*\)\].*/\1/' "/sys/block/$RA_DEV/queue/scheduler" 2>/dev/null || echo "?")
ROTA=$(cat "/sys/block/$RA_DEV/queue/rotational" 2>/dev/null || echo "?")
pg_stop

# ---------------------------------------------------------------------------
# fio: the device limit for the same files, after dropping the page cache
# ---------------------------------------------------------------------------
FIO_FILES=$(IFS=:; echo "${SEGS[*]}")
declare -A FIO_BW=() FIO_IOPS=()
fio_run() {
	local key=$1 rw=$2 direct=$3 bs=${4:-8k} extra=() out
	if [ "$rw" = read ]; then
		extra=(--file_service_type=sequential)
	else
		# a quarter of the table at most: every block read once (random map)
		extra=(--io_size=$((TABLE_BYTES / 4 / 8192 * 8192)))
	fi
	drop_caches
	out=$(fio --name="pb_$key" --ioengine=io_uring --rw="$rw" --bs="$bs" --iodepth=32 \
		--direct="$direct" --readonly --filename="$FIO_FILES" --runtime="$FIO_SECS" \
		"${extra[@]}" --output-format=terse --terse-version=3 2>"$WORK/fio.err") ||
		{ cat "$WORK/fio.err" >&2; die "fio $key failed"; }
	# terse v3: 7 = read bandwidth KiB/s, 8 = read IOPS
	FIO_BW[$key]=$(echo "$out" | awk -F';' 'NR == 1 { printf "%.1f", $7 / 1024 }')
	FIO_IOPS[$key]=$(echo "$out" | awk -F';' 'NR == 1 { printf "%d", $8 }')
	log "fio $key: ${FIO_BW[$key]} MB/s, ${FIO_IOPS[$key]} IOPS"
}
log "fio: sequential and random 8 kB reads, io_uring, queue depth 32, <= ${FIO_SECS} s each"
fio_run seq_buffered read 0
fio_run rand_buffered randread 0
fio_run seq_direct read 1
fio_run rand_direct randread 1
# for information: the device with large requests (pg_uring combines up to
# 16 adjacent blocks, 128 kB, per readv)
fio_run seq_direct_128k read 1 128k

# ---------------------------------------------------------------------------
# the timed cases
# ---------------------------------------------------------------------------
declare -A STMT=(
	[full.core]="SELECT pg_prewarm('pb_table'::regclass, 'buffer')"
	[full.uring]="SELECT pg_uring_prewarm('pb_table'::regclass)"
	[rand.core]="SELECT sum(pg_prewarm('pb_table'::regclass, 'buffer', 'main', b, b))::int8 FROM (SELECT b FROM pb_rand ORDER BY ord) s"
	[rand.uring]="SELECT pg_uring_prewarm_blocks('pb_table'::regclass, (SELECT array_agg(b ORDER BY ord) FROM pb_rand))"
	[sorted.core]="SELECT sum(pg_prewarm('pb_table'::regclass, 'buffer', 'main', b, b))::int8 FROM (SELECT b FROM pb_sorted ORDER BY ord) s"
	[sorted.uring]="SELECT pg_uring_prewarm_blocks('pb_table'::regclass, (SELECT array_agg(b ORDER BY ord) FROM pb_sorted))"
)
declare -A EXPECT=([full]=$NBLOCKS [rand]=$N_RAND [sorted]=$N_SORTED)

BUFCHECK="SELECT -1"
[ "$HAVE_BUFFERCACHE" = 1 ] && BUFCHECK="SELECT count(*) FROM pg_buffercache
	WHERE relfilenode = pg_relation_filenode('pb_table') AND relforknumber = 0
	AND reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())"

# restart the server with the page cache dropped (cold) or filled (warm)
restart_for() {
	local cache=$1
	pg_running && pg_stop
	# huge pages first, so that topping up the pool cannot disturb the page cache
	HP_MAY_DROP=0
	hp_ensure
	if [ "$cache" = cold ]; then
		drop_caches
	else
		cat "${SEGS[@]}" >/dev/null
	fi
	RESIDENT=$(resident_pct)
	pg_start
}

# one timed call in a fresh server; appends a row to raw.tsv
run_one() {
	local run=$1 case=$2 cache=$3 side=$4 order=$5
	local stmt=${STMT[$case.$side]} out
	restart_for "$cache"
	# untimed: page in both code paths, the block lists, the catalogs the
	# statement needs (EXPLAIN plans without executing); then zero the stats
	out=$(q <<SQL
\o /dev/null
LOAD 'pg_prewarm';
SELECT 'pb_table'::regclass, pg_relation_size('pb_table');
SELECT pg_prewarm('pb_warm_a');
SELECT pg_uring_prewarm('pb_warm_b');
SELECT pg_prewarm('pb_rand'), pg_prewarm('pb_sorted');
EXPLAIN $stmt;
SELECT pg_uring_reset_stats();
\o
SELECT secs, n FROM pb_time(\$pbq\$$stmt\$pbq\$);
SELECT coalesce(sum(s.reaped_by_issuer), 0), coalesce(sum(s.reaped_by_other), 0),
	coalesce(sum(s.reaped_by_reaper), 0), coalesce(sum(io.ios), 0), coalesce(sum(io.reads), 0),
	coalesce(sum(s.errors), 0) + coalesce(sum(io.failures), 0)
FROM pg_uring_stats s JOIN pg_uring_stat_io io ON io.ring = s.ring AND io.io_kind = 'prewarm';
$BUFCHECK;
SQL
	) || die "run $run $case $cache $side failed"
	local l1 l2 l3 secs n
	l1=$(sed -n 1p <<<"$out")
	l2=$(sed -n 2p <<<"$out")
	l3=$(sed -n 3p <<<"$out")
	IFS='|' read -r secs n <<<"$l1"
	[ -n "$secs" ] && [ -n "$n" ] || die "no timing from run $run $case $cache $side: $out"
	printf '%s|%s|%s|%s|%s|%s|%s|%s|%s|%s\n' "$run" "$case" "$cache" "$side" "$order" "$secs" "$n" \
		"$RESIDENT" "$l3" "$l2" >>"$WORK/raw.tsv"
	log "run $run $case $cache $side: ${secs} s, $n blocks (page cache ${RESIDENT}% before, buffers after: $l3)"
	if [ "$n" != "${EXPECT[$case]}" ]; then
		NOTES+=("WARNING: run $run $case $cache $side returned $n, expected ${EXPECT[$case]}")
	fi
	if [ "$HAVE_BUFFERCACHE" = 1 ] && [ "$l3" != "${EXPECT[$case]}" ]; then
		NOTES+=("WARNING: run $run $case $cache $side left $l3 of the table's blocks in shared_buffers, expected ${EXPECT[$case]}")
	fi
}

# what a restart costs both sides alike: every buffer's huge page is faulted
# and zeroed again on first use; measured on the (already touched) pool
HP_ZERO=""
if [ "$HUGE_WANTED" != off ] && [ "$HP_NEED" -gt 0 ]; then
	hp_touch
	[ "$HP_TOUCH_N" -gt 0 ] &&
		HP_ZERO=$(awk -v n="$HP_TOUCH_N" -v t="$HP_TOUCH_SECS" -v tb="$TABLE_BYTES" 'BEGIN {
			pages = tb / 2097152; printf "%.3f s for %d pages = %.3f s for the %d pages the table fills", t, n, t * pages / n, pages + 0.999 }')
fi

t_cases=$(date +%s)
for run in $(seq 1 "$RUNS"); do
	if [ $((run % 2)) -eq 1 ]; then sides="core uring"; else sides="uring core"; fi
	for case in full rand sorted; do
		for cache in cold warm; do
			order=1
			for side in $sides; do
				run_one "$run" "$case" "$cache" "$side" "$order"
				order=$((order + 1))
			done
		done
	done
done
pg_stop
T_CASES=$(($(date +%s) - t_cases))

# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------
# raw.tsv: 1 run, 2 case, 3 cache, 4 side, 5 order, 6 secs, 7 blocks,
# 8 page cache %, 9 buffers after, 10 by_issuer, 11 by_other, 12 by_reaper,
# 13 buffer_reads, 14 buffer_blocks, 15 errors
median() {	# median of field 6 for case, cache, side
	awk -F'|' -v c="$1" -v k="$2" -v s="$3" '$2 == c && $3 == k && $4 == s { print $6 }' "$WORK/raw.tsv" |
		sort -g | awk '{ v[NR] = $1 } END {
			if (NR == 0) { print "nan"; exit }
			if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

report() {
	local cpu memmb
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
	memmb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 }' /proc/meminfo)
	echo "pg_uring prewarm benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')$([ "$QUICK" = 1 ] && echo "   [QUICK MODE: small table, not the issue's setup]")"
	echo
	echo "- huge_pages:         $HUGE_STATE ($HP_IN_USE x 2 MB pages mapped by the postmaster; pool topped up $HP_TOPUPS time(s), $START_FAILURES failed start(s))"
	[ -n "$HUGE_NOTE" ] && echo "                      start with huge_pages = on failed: $HUGE_NOTE"
	[ -n "$HP_ZERO" ] && echo "- huge page faults:   $HP_ZERO (after every restart, both sides pay this inside their time)"
	echo "- table:              pb_table, $NBLOCKS blocks = $((TABLE_BYTES / 1048576)) MB in ${#SEGS[@]} segment file(s) ($RELPATH*), 4 rows/block, frozen"
	echo "- shared_buffers:     ${SB_MB} MB (table + 30%)"
	echo "- kernel:             $(uname -r) ($(uname -m)); nproc $(nproc) [$cpu]; RAM ${memmb} MB"
	echo "- PostgreSQL:         $PGVER"
	echo "- settings:           $SETTINGS"
	echo "- pg_uring mode:      $URING_MODE"
	echo "- data directory:     $FSTYPE on $RA_DEV (read_ahead_kb=$RA_KB, scheduler $SCHED, rotational $ROTA)"
	echo "- fio (io_uring, 8 kB, iodepth 32, the table's files, page cache dropped first, <= ${FIO_SECS} s):"
	printf '    %-22s %9s MB/s %8s IOPS\n' "sequential buffered" "${FIO_BW[seq_buffered]}" "${FIO_IOPS[seq_buffered]}"
	printf '    %-22s %9s MB/s %8s IOPS\n' "random buffered" "${FIO_BW[rand_buffered]}" "${FIO_IOPS[rand_buffered]}"
	printf '    %-22s %9s MB/s %8s IOPS\n' "sequential O_DIRECT" "${FIO_BW[seq_direct]}" "${FIO_IOPS[seq_direct]}"
	printf '    %-22s %9s MB/s %8s IOPS\n' "random O_DIRECT" "${FIO_BW[rand_direct]}" "${FIO_IOPS[rand_direct]}"
	printf '    %-22s %9s MB/s %8s IOPS   (128 kB reads, for information)\n' "sequential O_DIRECT" "${FIO_BW[seq_direct_128k]}" "${FIO_IOPS[seq_direct_128k]}"
	echo "- runs:               $RUNS per case and cache state, each after a server restart; cold = sync +"
	echo "                      drop_caches before the restart, warm = segment files read with cat first"
	echo "- block lists:        rand = $N_RAND blocks ($RAND_PCT%) shuffled, sorted = $N_SORTED blocks ($SORTED_PCT%) ascending (setseed $SEED)"
	echo "- load average:       before $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg)"
	echo
	echo "| case                               | cache | blocks | core median s | pg_uring median s | ratio | target  | met? | core MB/s | pg_uring MB/s | device limit s | pg_uring/limit |"
	echo "|------------------------------------|-------|-------:|--------------:|------------------:|------:|--------:|------|----------:|--------------:|---------------:|---------------:|"
	local case cache label target mc mu blocks limit
	for case in full rand sorted; do
		for cache in cold warm; do
			case "$case.$cache" in
			full.*) label="1 full table"; target=0.6 ;;
			rand.cold) label="2 random $RAND_PCT%, shuffled"; target=0.25 ;;
			rand.warm) label="2 random $RAND_PCT%, shuffled"; target="-" ;;
			sorted.*) label="3 random $SORTED_PCT%, sorted (ra ${RA_KB}kB)"; target=1.0 ;;
			esac
			blocks=${EXPECT[$case]}
			mc=$(median "$case" "$cache" core)
			mu=$(median "$case" "$cache" uring)
			# device limit (cold only): the time fio's rate needs for the same work;
			# case 3 can read the blocks one by one or the whole table, whichever is faster
			limit="-"
			if [ "$cache" = cold ]; then
				limit=$(awk -v c="$case" -v b="$blocks" -v t="$TABLE_BYTES" \
					-v sbw="${FIO_BW[seq_buffered]}" -v riops="${FIO_IOPS[rand_buffered]}" 'BEGIN {
					seq = (sbw > 0) ? t / 1048576 / sbw : 0
					rnd = (riops > 0) ? b / riops : 0
					if (c == "full") x = seq; else if (c == "rand") x = rnd; else x = (seq < rnd) ? seq : rnd
					printf "%.3f", x }')
			fi
			awk -v label="$label" -v cache="$cache" -v blocks="$blocks" -v mc="$mc" -v mu="$mu" \
				-v target="$target" -v limit="$limit" 'BEGIN {
				ratio = (mc > 0) ? mu / mc : 0
				met = (target == "-") ? "info" : ((ratio <= target + 0) ? "yes" : "NO")
				mbc = (mc > 0) ? blocks * 8192 / 1048576 / mc : 0
				mbu = (mu > 0) ? blocks * 8192 / 1048576 / mu : 0
				lr = (limit == "-" || limit + 0 <= 0) ? "-" : sprintf("%.2f", mu / limit)
				printf "| %-34s | %-5s | %6d | %13.3f | %17.3f | %5.2f | %7s | %-4s | %9.1f | %13.1f | %14s | %14s |\n",
					label, cache, blocks, mc, mu, ratio, (target == "-") ? "-" : "<= " target, met, mbc, mbu, limit, lr }'
		done
	done
	echo
	echo "- ratio = pg_uring median / core median (lower is better); target from the issue: full table <= 0.6"
	echo "  cold and warm, random 2% cold <= 0.25 (warm: for information), sorted 25% never slower than core."
	echo "- core: full = pg_prewarm(rel, 'buffer'); rand/sorted = one pg_prewarm(rel, 'buffer', 'main', b, b)"
	echo "  per block, in list order, in one statement. pg_uring: pg_uring_prewarm(rel) /"
	echo "  pg_uring_prewarm_blocks(rel, <list as int8[]>). Time = clock_timestamp() around the statement"
	echo "  inside the server (plpgsql EXECUTE), after an untimed warm-up in the same session."
	echo "- device limit (cold rows): the time fio's buffered rate needs for the same work (full: the table at"
	echo "  the sequential MB/s; rand: the blocks at the random IOPS; sorted: the faster of the two)."
	echo "  pg_uring/limit = 1.00 means pg_uring runs at the device's speed as fio measured it with 8 kB"
	echo "  reads; below 1.00 is possible because pg_uring reads up to 128 kB per readv (see the 128 kB line)."
	echo "- read_ahead_kb=$RA_KB on $RA_DEV: with a large read-ahead, core's sorted per-block reads are"
	echo "  nearly sequential (the kernel reads ahead past the gaps), so case 3's target is only <= 1.0."
	echo
	echo "Raw runs (secs = server-side time of the one timed statement; page cache % = share of the"
	echo "table's files cached before the restart; buffers after = the table's blocks in shared_buffers"
	echo "after the call, -1 without pg_buffercache; pg_uring_stats sums for that run, zeroed before it):"
	echo
	echo "| run | case   | cache | side  | order | secs     | blocks | page cache % | buffers after | reaped_by_issuer | reaped_by_other | reaped_by_reaper | buffer_reads | buffer_blocks | errors |"
	echo "|----:|--------|-------|-------|------:|---------:|-------:|-------------:|--------------:|-----------------:|----------------:|-----------------:|-------------:|--------------:|-------:|"
	awk -F'|' '{ printf "| %3s | %-6s | %-5s | %-5s | %5s | %8.4f | %6s | %12s | %13s | %16s | %15s | %16s | %12s | %13s | %6s |\n",
		$1, $2, $3, ($4 == "uring") ? "uring" : "core", $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 }' "$WORK/raw.tsv"
	echo
	echo "pg_uring_stats over all pg_uring runs (core runs add nothing but their warm-up, which is zeroed):"
	awk -F'|' '$4 == "uring" { i += $10; o += $11; r += $12; br += $13; bb += $14; e += $15 }
		END { printf "  reaped_by_issuer %d, reaped_by_other %d, reaped_by_reaper %d, buffer_reads %d, buffer_blocks %d (%.1f blocks/read), errors %d\n",
			i, o, r, br, bb, (br > 0) ? bb / br : 0, e }' "$WORK/raw.tsv"
	local nte
	for nte in "${NOTES[@]}"; do echo "- $nte"; done
	echo
	echo "load: ${T_LOAD} s; cases: ${T_CASES} s; whole benchmark: $(($(date +%s) - t_begin)) s"
}
report | tee "$OUT"
DONE=1
log "report written to $OUT"
