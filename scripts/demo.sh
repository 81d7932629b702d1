#!/usr/bin/env bash
# The main job: on a fresh Debian 12 machine, as root, installs the
# dependencies, builds and installs pg_uring, starts a throwaway cluster as
# the postgres OS user with pg_uring preloaded and data checksums on, does
# real IO through the shared rings (file reads, link chains, drains, a
# prewarm of pgbench_accounts into shared_buffers after a restart, cold
# bitmap heap and index scans with read-ahead off and on, 8 concurrent
# sessions, pgbench writes with the pg_uring writer on, then
# pg_uring_flush and a CHECKPOINT), prints the ring statistics, and checks
# that an immediate stop loses nothing that was committed.
# The cluster is removed at the end (PGU_KEEP=1 keeps it running).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
export PG_CONFIG

if [ "$(id -u)" -ne 0 ]; then
	echo "scripts/demo.sh installs packages and must run as root" >&2
	exit 2
fi
if [ "${PGU_SKIP_DEPS:-0}" != 1 ]; then
	bash "$top/scripts/install-deps.sh" >/dev/null
fi
bash "$top/scripts/build.sh"

bindir=$("$PG_CONFIG" --bindir)
dir=$(mktemp -d /var/tmp/pg_uring-demo.XXXXXX)
chown postgres:postgres "$dir"
port=${PGU_DEMO_PORT:-54321}
as_pg() { su postgres -s /bin/bash -c "$*"; }
psql_pg() { as_pg "'$bindir/psql' -X -h '$dir' -p $port -d postgres -v ON_ERROR_STOP=1 $*"; }

cleanup() {
	if [ "${PGU_KEEP:-0}" = 1 ]; then
		echo "cluster kept running: $bindir/psql -h $dir -p $port -U postgres postgres"
		return
	fi
	as_pg "'$bindir/pg_ctl' -D '$dir/data' -m fast -w stop" >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT

as_pg "'$bindir/initdb' -k -A trust -U postgres -D '$dir/data'" >/dev/null
cat >>"$dir/data/postgresql.conf" <<CONF
shared_preload_libraries = 'pg_uring'
port = $port
listen_addresses = ''
unix_socket_directories = '$dir'
shared_buffers = 512MB
pg_uring.rings = 4
pg_uring.queue_depth = 256
pg_uring.writer = on
CONF
as_pg "'$bindir/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w start" >/dev/null
grep -E 'pg_uring' "$dir/server.log" || true

echo "== loading data (pgbench scale 20, about 300 MB)"
as_pg "'$bindir/pgbench' -q -i -s 20 -h '$dir' -p $port postgres" 2>&1 | tail -1

psql_pg <<'SQL'
\pset footer off
CREATE EXTENSION pg_uring;
CHECKPOINT;
\echo == what io_uring can do on this host
SELECT section, name, value FROM pg_uring_probe();

\echo == reading pgbench_accounts through the rings, compared with a plain file read by core
SELECT pg_relation_filepath('pgbench_accounts') AS accounts \gset
SELECT md5(pg_uring_read_file(:'accounts', 0, 1048576)) =
       md5(pg_read_binary_file(:'accounts', 0, 1048576)) AS first_mb_identical;

\echo == 8 kB random reads of pgbench_accounts, one session, 1 and 32 in flight
SELECT op, depth, ios, round(iops) AS iops, round(mean_us::numeric, 1) AS mean_us, p50_us, p99_us
  FROM pg_uring_bench('read', 50000, 1, :'accounts');
SELECT op, depth, ios, round(iops) AS iops, round(mean_us::numeric, 1) AS mean_us, p50_us, p99_us
  FROM pg_uring_bench('read', 200000, 32, :'accounts');

\echo == a linked chain: a failed head cancels the IOs linked behind it
SELECT seq, op, flags, result, error FROM pg_uring_batch(ARRAY['fail+link', 'read+link ' || :'accounts', 'nop']);
\echo == a drain barrier: an fdatasync that starts only after the reads before it completed
SELECT seq, op, flags, result, completion_order
  FROM pg_uring_batch(ARRAY['read+async ' || :'accounts' || ' 0', 'read+async ' || :'accounts' || ' 8192',
                            'fdatasync+drain ' || :'accounts']);
SELECT pg_uring_fsync(:'accounts');
SQL

echo "== restart: shared_buffers is empty; prewarm pgbench_accounts through the rings"
as_pg "'$bindir/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w restart" >/dev/null
psql_pg <<'SQL'
\pset footer off
\timing on
SELECT pg_uring_prewarm('pgbench_accounts') AS table_blocks_read,
       pg_uring_prewarm('pgbench_accounts_pkey') AS index_blocks_read;
\timing off
\echo == every block is in shared_buffers and a scan reads nothing from disk
CREATE EXTENSION pg_buffercache;
SELECT count(*) AS cached_blocks,
       pg_relation_size('pgbench_accounts') / 8192 AS table_blocks
  FROM pg_buffercache WHERE relfilenode = pg_relation_filenode('pgbench_accounts');
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) SELECT sum(abalance) FROM pgbench_accounts;
SELECT sum(io.ios) AS prewarm_ios, sum(io.reads) AS prewarm_blocks,
       sum(s.reaped_by_issuer) AS reaped_by_issuer, sum(s.reaped_by_reaper) AS reaped_by_reaper
  FROM pg_uring_stats s JOIN pg_uring_stat_io io ON io.ring = s.ring AND io.io_kind = 'prewarm';
SQL

echo "== read-ahead for ordinary queries: a table of 1 M rows (~270 MB) with an index on a column"
echo "   uncorrelated with the physical order; each query cold (restart, page cache dropped),"
echo "   with pg_uring.readahead off, then on: same result, core's EXPLAIN counts, less time"
psql_pg -q <<'SQL'
CREATE TABLE ra (id int, r int, pad text);
INSERT INTO ra SELECT g, ((g::int8 * 7919) % 1000003)::int, repeat('x', 200) FROM generate_series(1, 1000000) g;
CREATE INDEX ra_r ON ra (r);
VACUUM ANALYZE ra;
CHECKPOINT;
SQL
for scan in bitmap index; do
	if [ "$scan" = bitmap ]; then
		plan="SET enable_seqscan = off; SET enable_indexscan = off;"
	else
		plan="SET enable_seqscan = off; SET enable_bitmapscan = off;"
	fi
	for mode in off on; do
		as_pg "'$bindir/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w restart" >/dev/null
		sync
		echo 3 >/proc/sys/vm/drop_caches
		echo "-- $scan scan of 1% of ra, cold, pg_uring.readahead = $mode"
		psql_pg -q <<SQL
\pset footer off
SET pg_uring.readahead = $mode;
$plan
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF)
  SELECT count(*), sum(length(pad)) FROM ra WHERE r BETWEEN 300000 AND 309999;
SELECT count(*) AS rows, sum(length(pad)) AS bytes FROM ra WHERE r BETWEEN 300000 AND 309999;
SELECT sum(ios) AS ios, sum(reads) AS blocks_read_ahead, sum(readahead_used) AS used,
       sum(readahead_wasted) AS wasted, sum(readahead_waited) AS waited_on_by_core
  FROM pg_uring_stat_io WHERE io_kind = 'read-ahead';
SQL
	done
done

echo "== concurrent sessions on the shared rings (8 clients x 20 s of pg_uring_bench)"
cat >"$dir/bench.sql" <<'SQL'
SELECT ios FROM pg_uring_bench('read', 2000, 4, pg_relation_filepath('pgbench_accounts'));
SQL
chown postgres "$dir/bench.sql"
as_pg "'$bindir/pgbench' -n -c 8 -j 2 -T 20 -f '$dir/bench.sql' -h '$dir' -p $port postgres" 2>&1 | grep -E 'transactions actually|tps'

echo "== write-back: restart with a 64 MB pool (smaller than the data, so the clock sweep evicts),"
echo "   then 8 pgbench clients for 20 s with the pg_uring writer cleaning ahead of the sweep"
as_pg "'$bindir/pg_ctl' -D '$dir/data' -l '$dir/server.log' -o '-c shared_buffers=64MB' -w restart" >/dev/null
as_pg "'$bindir/pgbench' -n -c 8 -j 2 -T 20 -h '$dir' -p $port postgres" 2>&1 | grep -E 'transactions actually|tps'
psql_pg <<'SQL'
\pset footer off
\echo == dirty buffers written through the rings (WAL first), then a CHECKPOINT with little left to do
SELECT count(*) FILTER (WHERE isdirty) AS dirty_before FROM pg_buffercache;
\timing on
SELECT pg_uring_flush(sync => true) AS written;
CHECKPOINT;
\timing off
SELECT count(*) FILTER (WHERE isdirty) AS dirty_after FROM pg_buffercache;
SELECT sum(w.writer_pages) AS writer_pages, sum(wb.writes) AS buffer_writes,
       sum(w.linked_writes) AS linked_writes, sum(wal.fsyncs) AS wal_fsyncs,
       sum(wb.fsyncs) AS drained_fdatasyncs, sum(w.writes_deferred) AS deferred,
       sum(wb.failures) AS failures
  FROM pg_uring_stat_writeback w
  JOIN pg_uring_stat_io wb ON wb.ring = w.ring AND wb.io_kind = 'write-back'
  JOIN pg_uring_stat_io wal ON wal.ring = w.ring AND wal.io_kind = 'wal fsync';
SELECT sum(abalance) AS accounts, (SELECT sum(delta) FROM pgbench_history) AS history
  FROM pgbench_accounts \gset
SELECT :accounts = :history AS balances_agree;
SQL

echo "== pg_uring_stats (one row per ring)"
psql_pg -c "'SELECT * FROM pg_uring_stats ORDER BY ring'"
echo "== pg_uring_stat_io (one row per ring and kind of IO)"
psql_pg -c "'SELECT * FROM pg_uring_stat_io ORDER BY ring, io_kind'"
echo "== pg_uring_stat_writeback, pg_uring_stat_database (read-ahead per database)"
psql_pg -c "'SELECT * FROM pg_uring_stat_writeback ORDER BY ring'"
psql_pg -c "'SELECT * FROM pg_uring_stat_database ORDER BY datname'"

echo "== crash (immediate stop) and restart: what was committed is all there"
echo "SELECT md5(string_agg(aid || ':' || abalance, ',' ORDER BY aid)) FROM pgbench_accounts;" >"$dir/md5.sql"
chown postgres "$dir/md5.sql"
psql_pg -At -f "'$dir/md5.sql'" >"$dir/before.md5"
as_pg "'$bindir/pg_ctl' -D '$dir/data' -m immediate -w stop" >/dev/null
as_pg "'$bindir/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w start" >/dev/null
psql_pg -At -f "'$dir/md5.sql'" >"$dir/after.md5"
if cmp -s "$dir/before.md5" "$dir/after.md5"; then
	echo "pgbench_accounts after the crash restart: identical ($(cat "$dir/after.md5"))"
else
	echo "pgbench_accounts differs after the crash restart" >&2
	exit 1
fi
