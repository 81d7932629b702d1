
# Read-ahead gives the same answers as no read-ahead.
#
# A pool smaller than the data (shared_buffers = 16MB, ~60 MB of tables),
# data checksums on.  Two sessions run the same generated workload side by
# side, one with pg_uring.readahead = on (and every per-node switch on, the
# distance changing from query to query), the other with it off.  Every
# query's full output, and its EXPLAIN, must be the same in both, and no
# query may fail (those meant to fail must fail the same way).
#
# The workload (srand(42), so the same queries every run) covers
#   - serial seq scans: count(*), quals, a qual that rejects every tuple,
#   - parallel seq scans (and parallel bitmap heap and index scans), also
#     with a LIMIT that ends the workers mid-scan,
#   - bitmap heap scans: exact and lossy (small work_mem), BitmapOr,
#   - index scans (forward, backward, = ANY) and index-only scans over
#     all-visible and not all-visible pages,
#   - LIMIT 1 / LIMIT 100 / OFFSET, with and without ORDER BY,
#   - nested loops whose inner seq scan, index scan, index-only scan or
#     bitmap heap scan is rescanned, some with a LIMIT per rescan,
#   - scrollable cursors (FETCH FORWARD / BACKWARD / ABSOLUTE, through seq,
#     index, index-only and bitmap scans), a WITH HOLD cursor fetched after
#     COMMIT, cursors left open at COMMIT and ROLLBACK,
#   - scans ended by an error (division by zero in the qual, also in a
#     parallel worker) and by statement_timeout (during a pg_sleep in the
#     qual, and at 30-400 ms into queries that run for seconds, so that it
#     falls wherever the scan is: waiting for a read, between reads ahead,
#     in a rescan, in a parallel worker).
# The tables: "wide" (~25 MB, a btree on an uncorrelated column u), "corr"
# (a btree on a correlated column c; its last quarter inserted after VACUUM,
# so not all-visible), "sparse" (long runs of empty pages: rows deleted in
# big contiguous ranges, then VACUUM: the pin trap shape), "small" (the
# outer side of the joins).
#
# Why the comparison is sound although writers run all along: two
# background sessions write while the workload runs, creating dirty buffers,
# evictions and pages that change under the scans:
#   - one updates, deletes, re-inserts and vacuums the table "churn", which
#     no compared query reads, and checkpoints now and then;
#   - one does the same to the rows of "wide" with id > $nstable (and
#     vacuums wide).  Every compared query on wide has "id <= $nstable" in
#     its qual (for the index-only scans, on the INCLUDE column; written
#     "id + 0 <= $nstable" where the scan is to use the index on u, so that
#     the planner does not take the primary key for it instead), so it
#     reads those pages (its scan, its read-ahead and the index entries
#     pointing there) but never returns those rows.  The rows it returns are
#     never written after the load, so their contents and their physical
#     order (block, line pointer) are fixed: a serial seq scan with
#     synchronize_seqscans = off returns them in the same order every time.
# Where the order of a scan is not fixed (synchronize_seqscans = on, which
# starts a big table's scan where another scan is; parallel scans) the
# queries print only aggregates, ORDER BY results, or counts that do not
# depend on which rows a LIMIT got (plus a check of every such row's
# contents: h = md5(id)).
#
# Afterwards:
#   - four backends are terminated (pg_terminate_backend) in the middle of a
#     seq scan, a parallel seq scan, an index scan and a bitmap heap scan
#     that read ahead;
#   - probes, with nothing else running: a scan of each kind reads ahead
#     in ra_on and reads nothing ahead in ra_off (pg_uring_stat_io), so the
#     switch really switches;
#   - with every session still connected and idle: no buffer is pinned (a
#     leaked pin of an idle session would show; closing the sessions first
#     would hide it), no IO is in flight, no read failed, amcheck
#     (verify_heapam on every table, bt_index_check with heapallindexed on
#     every index) finds nothing, each session still has the read-ahead
#     setting it ran with, and the log has no TRAP, PANIC, signal, pin leak
#     or "no unpinned buffers available".
# Runs in about 25-35 s (PGU_RA_ROUNDS=n runs n rounds of the workload
# instead of 2).

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use PgUringTest;
use PgUringPrewarm;

my $nstable = 110000;    # wide: rows 1..$nstable are never written after the load
my $nwriter = 8000;      # wide: rows $nstable+1 .. $nstable+$nwriter are the writer's

my $t_start = time();
my $node = pw_node('ra_identity',
	shared_buffers       => '16MB',
	max_connections      => '30',
	max_worker_processes => '16',
	max_parallel_workers => '8');
pgu_start($node);

# ---------------------------------------------------------------------------
# the data
# ---------------------------------------------------------------------------
$node->safe_psql(
	'postgres', qq{
	CREATE EXTENSION amcheck;
	CREATE EXTENSION pg_buffercache;

	-- wide: u is a permutation of id (uncorrelated with the physical order)
	CREATE TABLE wide (id int PRIMARY KEY, u int NOT NULL, n int NOT NULL DEFAULT 0,
					   h text NOT NULL, pad text NOT NULL);
	INSERT INTO wide
		SELECT g, ((g::bigint * 48271) % 1000003)::int, 0, md5(g::text),
			   repeat(chr(65 + g % 26), 120)
		FROM generate_series(1, $nstable) g;
	INSERT INTO wide
		SELECT g, ((g::bigint * 69621) % 1000003)::int, 0, md5(g::text), repeat('w', 120)
		FROM generate_series($nstable + 1, $nstable + $nwriter) g;
	CREATE INDEX wide_u ON wide (u) INCLUDE (id);

	-- corr: c follows the physical order
	CREATE TABLE corr (id int NOT NULL, c int NOT NULL, v int NOT NULL,
					   h text NOT NULL, pad text NOT NULL);
	INSERT INTO corr SELECT g, g, g % 1000, md5(g::text), repeat('c', 60)
		FROM generate_series(1, 100000) g;
	CREATE INDEX corr_c ON corr (c);

	-- sparse: 15 rows a page; only four islands of rows survive
	CREATE TABLE sparse (id int PRIMARY KEY, k int NOT NULL, h text NOT NULL, pad text NOT NULL);
	INSERT INTO sparse SELECT g, g % 97, md5(g::text), repeat('s', 440)
		FROM generate_series(1, 24000) g;
	DELETE FROM sparse
		WHERE NOT (id <= 600 OR id BETWEEN 8001 AND 8150 OR id BETWEEN 16001 AND 16015
				   OR id > 23000);

	CREATE TABLE small (id int PRIMARY KEY, wu int NOT NULL, cc int NOT NULL, sk int NOT NULL);
	INSERT INTO small
		SELECT g, (((g * 523)::bigint * 48271) % 1000003)::int, g * 600, g % 97
		FROM generate_series(1, 200) g;

	-- written by a background session only, never read by the compared queries
	CREATE TABLE churn (id int PRIMARY KEY, n int NOT NULL, pad text NOT NULL);
	INSERT INTO churn SELECT g, 0, repeat('x', 150) FROM generate_series(1, 30000) g;

	VACUUM (FREEZE, ANALYZE) wide, corr, sparse, small, churn;
	-- corr's last 30000 rows: after the VACUUM, so their pages are not all-visible
	INSERT INTO corr SELECT g, g, g % 1000, md5(g::text), repeat('c', 60)
		FROM generate_series(100001, 130000) g;
	ANALYZE corr;
	CHECKPOINT;
});

is($node->safe_psql('postgres', 'SHOW data_checksums'), 'on', 'data checksums are on');
is($node->safe_psql('postgres', 'SHOW shared_buffers'), '16MB', 'a 16 MB pool');
my $data_mb = $node->safe_psql('postgres',
	q{SELECT round(sum(pg_relation_size(c.oid)) / 1048576.0) FROM pg_class c
	  JOIN pg_namespace n ON n.oid = c.relnamespace
	  WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i')});
cmp_ok($data_mb, '>=', 3 * 16, "the tables and indexes ($data_mb MB) are more than three times the pool");

# sparse: long runs of empty pages (the VACUUM left them in place)
my ($sp_blocks, $sp_used, $sp_gap) = split /\|/, $node->safe_psql(
	'postgres', q{
	WITH b AS (SELECT DISTINCT (ctid::text::point)[0]::int AS blk FROM sparse),
		 g AS (SELECT blk - lag(blk) OVER (ORDER BY blk) - 1 AS gap FROM b)
	SELECT pg_relation_size('sparse') / 8192, (SELECT count(*) FROM b), (SELECT max(gap) FROM g)});
note "sparse: $sp_blocks blocks, $sp_used with rows, longest run of empty pages $sp_gap";
cmp_ok($sp_blocks, '>', 10 * $sp_used, "sparse: $sp_used of its $sp_blocks blocks hold rows");
cmp_ok($sp_gap, '>=', 300, "sparse: a run of $sp_gap empty pages");

# ---------------------------------------------------------------------------
# the workload: a list of items, generated before anything else uses rand
# ---------------------------------------------------------------------------
srand(42);

sub rint { my ($lo, $hi) = @_; return $lo + int(rand($hi - $lo + 1)); }
sub pick { return $_[ int(rand(@_)) ]; }

my @distances = (1, 2, 8, 32, 64, 128, 512, 1024);
my %serial = (
	max_parallel_workers_per_gather => 0,
	enable_indexscan                => 'off',
	enable_indexonlyscan            => 'off',
	enable_bitmapscan               => 'off');
my %parallel = (
	parallel_setup_cost             => 0,
	parallel_tuple_cost             => 0,
	min_parallel_table_scan_size    => 0,
	min_parallel_index_scan_size    => 0,
	max_parallel_workers_per_gather => 2);
my %bitmap = (enable_indexscan => 'off', enable_indexonlyscan => 'off', enable_seqscan => 'off');
my %index  = (enable_bitmapscan => 'off', enable_seqscan => 'off');
my %nestloop = (enable_hashjoin => 'off', enable_mergejoin => 'off', enable_material => 'off');
my $wcheck = "bool_and(h = md5(id::text))";    # every row's contents are right

my @items;

# kind, set (hash), sql (what runs), explain (what EXPLAIN is run on: the
# query, or a cursor's DECLARE), plan (regex the EXPLAIN must match),
# expect: 'rows' (output, not only zeros), 'zero' (exactly "0"), 'empty'
# (no output) or a regex of the error both sessions must end with
sub item
{
	my (%i) = @_;
	$i{set} = { %{ $i{set} // {} } };
	$i{set}{'pg_uring.readahead_distance'} = pick(@distances);
	$i{explain} = $i{sql} unless exists $i{explain};
	$i{expect} //= 'rows';
	push @items, \%i;
	return;
}

# each FETCH's rows are told apart by an \echo line
sub fetches
{
	my ($cur, @f) = @_;
	return join("\n", map { "\\echo -- $_\nFETCH $_ FROM $cur;" } @f);
}

# one round of the workload: every kind of query, with new parameters
sub generate_round
{
	# --- serial seq scans -------------------------------------------------
	item(kind => 'seqscan', set => \%serial, plan => qr/Seq Scan on sparse/,
		sql => "SELECT count(*) FROM sparse");
	item(kind => 'seqscan', set => \%serial, plan => qr/Seq Scan on corr/,
		sql => "SELECT count(*) FROM corr");
	item(kind => 'seqscan', set => \%serial, plan => qr/Seq Scan on small/,
		sql => "SELECT count(*), sum(wu) FROM small");
	item(kind => 'seqscan', set => \%serial, plan => qr/Seq Scan on wide/, expect => 'zero',
		sql => "SELECT count(*) FROM wide WHERE id <= $nstable AND h = 'no such row'");
	item(kind => 'seqscan', set => \%serial, plan => qr/Seq Scan on sparse/, expect => 'empty',
		sql => "SELECT id FROM sparse WHERE pad = ''");
	item(kind => 'seqscan', set => \%serial, plan => qr/Seq Scan on corr/, expect => 'zero',
		sql => "SELECT count(*) FROM corr WHERE v < 0");
	for (1 .. 6)
	{
		my ($m, $r) = (rint(3, 40), 0);
		$r = rint(0, $m - 1);
		item(kind => 'seqscan', set => \%serial, plan => qr/Seq Scan on wide/,
			sql => "SELECT count(*), sum(u::bigint), md5(string_agg(h, ',' ORDER BY id)), $wcheck "
			  . "FROM wide WHERE id <= $nstable AND u % $m = $r");
	}
	for (1 .. 4)
	{
		my $r = rint(0, 4999);
		item(kind => 'seqscan', set => \%serial, plan => qr/Seq Scan on wide/,
			sql => "SELECT id, u, h FROM wide WHERE id <= $nstable AND u % 5000 = $r ORDER BY id");
	}
	for (1 .. 4)
	{
		my ($m, $r) = (rint(2, 9), 0);
		$r = rint(0, $m - 1);
		item(kind => 'seqscan', set => \%serial, plan => qr/Seq Scan on sparse/,
			sql => "SELECT count(*), sum(id), min(id), max(id), $wcheck FROM sparse WHERE id % $m = $r");
	}
	for (1 .. 3)
	{
		my $v = rint(0, 999);
		# serial, synchronize_seqscans off: the physical order, no ORDER BY
		item(kind => 'seqscan', set => { %serial, synchronize_seqscans => 'off' },
			plan => qr/Seq Scan on corr/,
			sql => "SELECT id, c, h FROM corr WHERE v = $v");
	}
	for (1 .. 2)
	{
		my $k = rint(0, 96);
		item(kind => 'seqscan', set => { %serial, synchronize_seqscans => 'off' },
			plan => qr/Seq Scan on sparse/,
			sql => "SELECT id, h FROM sparse WHERE k = $k");
	}

	# --- parallel scans ---------------------------------------------------
	for (1 .. 4)
	{
		my ($m, $r) = (rint(3, 30), 0);
		$r = rint(0, $m - 1);
		item(kind => 'parallel', set => { %parallel, enable_indexscan => 'off',
				enable_indexonlyscan => 'off', enable_bitmapscan => 'off' },
			plan => qr/Parallel Seq Scan on wide/s,
			sql => "SELECT count(*), sum(u::bigint), $wcheck FROM wide WHERE id <= $nstable AND u % $m = $r");
	}
	item(kind => 'parallel', set => { %parallel, enable_indexscan => 'off',
			enable_indexonlyscan => 'off', enable_bitmapscan => 'off' },
		plan => qr/Parallel Seq Scan on sparse/,
		sql => "SELECT count(*), sum(id), $wcheck FROM sparse");
	item(kind => 'parallel', set => { %parallel, enable_indexscan => 'off',
			enable_indexonlyscan => 'off', enable_bitmapscan => 'off' },
		plan => qr/Parallel Seq Scan on wide/, expect => 'zero',
		sql => "SELECT count(*) FROM wide WHERE id <= $nstable AND pad = 'none'");
	for (1 .. 2)
	{
		my $v = rint(0, 999);
		item(kind => 'parallel', set => { %parallel, enable_indexscan => 'off',
				enable_indexonlyscan => 'off', enable_bitmapscan => 'off' },
			plan => qr/Gather.*Parallel Seq Scan on corr/s,
			sql => "SELECT id, c, h FROM corr WHERE v = $v ORDER BY id");
	}
	for (1 .. 2)
	{
		my $m = rint(50, 400);
		# the LIMIT ends the scan early: the workers stop mid-scan
		item(kind => 'parallel', set => { %parallel, enable_indexscan => 'off',
				enable_indexonlyscan => 'off', enable_bitmapscan => 'off' },
			plan => qr/Limit.*Gather.*Parallel Seq Scan on wide/s,
			sql => "SELECT count(*), $wcheck FROM (SELECT id, h FROM wide "
			  . "WHERE id <= $nstable AND u % $m = 1 LIMIT 100) s");
	}
	{
		# the inner Gather is rescanned: its workers start again, each time
		my $s = rint(1, 190);
		item(kind => 'parallel', set => { %parallel, %nestloop, enable_indexscan => 'off',
				enable_indexonlyscan => 'off', enable_bitmapscan => 'off' },
			plan => qr/Nested Loop.*Gather.*Gather.*Parallel Seq Scan on wide/s,
			sql => "SELECT s.id, count(w.id), sum(w.id) FROM "
			  . "(SELECT * FROM small WHERE id BETWEEN $s AND $s + 3 OFFSET 0) s "
			  . "JOIN wide w ON w.u % 1000 = s.sk AND w.id <= $nstable GROUP BY s.id ORDER BY s.id");
	}
	for (1 .. 2)
	{
		my $a = rint(0, 800000);
		item(kind => 'parallel', set => { %parallel, enable_seqscan => 'off',
				enable_indexscan => 'off', enable_indexonlyscan => 'off' },
			plan => qr/Parallel Bitmap Heap Scan on wide/,
			sql => "SELECT count(*), sum(id), $wcheck FROM wide "
			  . "WHERE u BETWEEN $a AND $a + 150000 AND id + 0 <= $nstable");
	}
	for (1 .. 2)
	{
		my $a = rint(0, 800000);
		item(kind => 'parallel', set => { %parallel, enable_seqscan => 'off',
				enable_bitmapscan => 'off', enable_indexonlyscan => 'off' },
			plan => qr/Parallel Index Scan using wide_u/,
			sql => "SELECT count(*), sum(id), $wcheck FROM wide "
			  . "WHERE u BETWEEN $a AND $a + 300000 AND id + 0 <= $nstable");
	}

	# --- bitmap heap scans ------------------------------------------------
	for (1 .. 6)
	{
		my ($a, $w) = (rint(0, 900000), pick(500, 5000, 40000));
		item(kind => 'bitmap', set => \%bitmap, plan => qr/Bitmap Heap Scan on wide/,
			sql => "SELECT count(*), sum(id), md5(string_agg(h, ',' ORDER BY id)), $wcheck "
			  . "FROM wide WHERE u BETWEEN $a AND $a + $w AND id + 0 <= $nstable");
	}
	for (1 .. 3)
	{
		my $a = rint(0, 600000);
		# lossy pages: the bitmap does not fit in work_mem
		item(kind => 'bitmap', set => { %bitmap, work_mem => '64kB' },
			plan => qr/Bitmap Heap Scan on wide/,
			sql => "SELECT count(*), sum(id), $wcheck FROM wide "
			  . "WHERE u BETWEEN $a AND $a + 300000 AND id + 0 <= $nstable");
	}
	for (1 .. 4)
	{
		my ($a, $w) = (rint(1, 125000), pick(100, 3000, 20000));
		item(kind => 'bitmap', set => \%bitmap, plan => qr/Bitmap Heap Scan on corr/,
			sql => "SELECT count(*), sum(v), md5(string_agg(h, ',' ORDER BY id)), $wcheck "
			  . "FROM corr WHERE c BETWEEN $a AND $a + $w");
	}
	for (1 .. 3)
	{
		my ($a, $b) = (rint(1, 700), rint(8100, 23500));
		item(kind => 'bitmap', set => \%bitmap, plan => qr/Bitmap Heap Scan on sparse/,
			sql => "SELECT count(*), sum(id), $wcheck FROM sparse WHERE id BETWEEN $a AND $b");
	}
	for (1 .. 2)
	{
		my ($a, $b) = (rint(0, 400000), rint(500000, 900000));
		item(kind => 'bitmap', set => \%bitmap, plan => qr/BitmapOr/,
			sql => "SELECT count(*), sum(id), $wcheck FROM wide WHERE id <= $nstable AND "
			  . "(u BETWEEN $a AND $a + 8000 OR u BETWEEN $b AND $b + 8000)");
	}
	for (1 .. 2)
	{
		my ($a, $b) = (rint(1, 50000), rint(60000, 120000));
		item(kind => 'bitmap', set => \%bitmap, plan => qr/BitmapOr/,
			sql => "SELECT count(*), sum(v), $wcheck FROM corr "
			  . "WHERE c BETWEEN $a AND $a + 4000 OR c BETWEEN $b AND $b + 4000 OR c = ANY ('{7,77,777,7777}')");
	}
	for (1 .. 2)
	{
		my $a = rint(0, 990000);
		item(kind => 'bitmap', set => \%bitmap, plan => qr/Bitmap Heap Scan on wide/,
			sql => "SELECT id, u, h FROM wide WHERE u BETWEEN $a AND $a + 600 AND id + 0 <= $nstable ORDER BY id");
	}

	# --- index scans ------------------------------------------------------
	for (1 .. 4)
	{
		my $a = rint(0, 990000);
		my $dir = pick('', ' DESC');
		item(kind => 'indexscan', set => \%index, plan => qr/Index Scan (Backward )?using wide_u/,
			sql => "SELECT u, id, h FROM wide WHERE u BETWEEN $a AND $a + 900 AND id + 0 <= $nstable "
			  . "ORDER BY u$dir");
	}
	for (1 .. 4)
	{
		my $a = rint(0, 950000);
		item(kind => 'indexscan', set => \%index, plan => qr/Index Scan using wide_u/,
			sql => "SELECT count(*), sum(id), md5(string_agg(h, ',' ORDER BY u)), $wcheck "
			  . "FROM wide WHERE u BETWEEN $a AND $a + 25000 AND id + 0 <= $nstable");
	}
	for (1 .. 3)
	{
		my ($a, $w) = (rint(1, 120000), pick(200, 5000));
		my $dir = pick('', ' DESC');
		item(kind => 'indexscan', set => \%index, plan => qr/Index Scan (Backward )?using corr_c/,
			sql => "SELECT count(*), md5(string_agg(h, ',' ORDER BY c$dir)), $wcheck "
			  . "FROM (SELECT c, id, h FROM corr WHERE c BETWEEN $a AND $a + $w ORDER BY c$dir) s");
	}
	for (1 .. 2)
	{
		my ($a, $b) = (rint(1, 700), rint(16000, 23600));
		item(kind => 'indexscan', set => \%index, plan => qr/Index Scan using sparse_pkey/,
			sql => "SELECT count(*), sum(k), md5(string_agg(h, ',' ORDER BY id)), $wcheck "
			  . "FROM sparse WHERE id BETWEEN $a AND $b");
	}
	for (1 .. 2)
	{
		my $i = rint(1, $nstable - 20000);
		item(kind => 'indexscan', set => \%index, plan => qr/Index Scan using wide_pkey/,
			sql => "SELECT count(*), md5(string_agg(h || pad, ',' ORDER BY id)), $wcheck "
			  . "FROM wide WHERE id BETWEEN $i AND $i + 15000");
	}
	{
		my @keys = map { ((rint(1, $nstable) * 48271) % 1000003) } 1 .. 40;
		push @keys, map { rint(0, 1000002) } 1 .. 10;
		my $list = join(',', @keys);
		item(kind => 'indexscan', set => \%index, plan => qr/Index Scan using wide_u/,
			sql => "SELECT u, id, h FROM wide WHERE u = ANY ('{$list}') AND id + 0 <= $nstable ORDER BY u");
	}

	# --- index-only scans -------------------------------------------------
	for (1 .. 4)
	{
		my ($a, $w) = (rint(0, 900000), pick(3000, 30000, 100000));
		item(kind => 'indexonly', set => \%index, plan => qr/Index Only Scan using wide_u/,
			sql => "SELECT count(*), sum(id::bigint), sum(u::bigint) FROM wide "
			  . "WHERE u BETWEEN $a AND $a + $w AND id + 0 <= $nstable");
	}
	for (1 .. 4)
	{
		# from the all-visible part into the newer tail, or inside the tail
		my $a = pick(rint(95000, 100500), rint(100000, 128000));
		my $dir = pick('', ' DESC');
		item(kind => 'indexonly', set => \%index, plan => qr/Index Only Scan (Backward )?using corr_c/,
			sql => "SELECT c FROM corr WHERE c BETWEEN $a AND $a + 400 ORDER BY c$dir");
	}
	for (1 .. 2)
	{
		my $a = rint(1, 100000);
		item(kind => 'indexonly', set => \%index, plan => qr/Index Only Scan using corr_c/,
			sql => "SELECT count(*), sum(c) FROM corr WHERE c >= $a");
	}
	item(kind => 'indexonly', set => \%index, plan => qr/Index Only Scan using sparse_pkey/,
		sql => "SELECT count(*), sum(id) FROM sparse WHERE id BETWEEN 500 AND 23100");

	# --- LIMIT ------------------------------------------------------------
	for (1 .. 3)
	{
		my $m = rint(5, 500);
		# synchronize_seqscans on: which rows is not fixed, how many and their contents are
		item(kind => 'limit', set => \%serial, plan => qr/Limit.*Seq Scan on wide/s,
			sql => "SELECT count(*), $wcheck FROM (SELECT id, h FROM wide "
			  . "WHERE id <= $nstable AND u % $m = 0 LIMIT 1) s");
		item(kind => 'limit', set => \%serial, plan => qr/Limit.*Seq Scan on wide/s,
			sql => "SELECT count(*), $wcheck FROM (SELECT id, h FROM wide "
			  . "WHERE id <= $nstable AND u % $m = 1 LIMIT 100) s");
	}
	for (1 .. 3)
	{
		my $m = rint(5, 300);
		# synchronize_seqscans off, serial: the physical order, no ORDER BY
		item(kind => 'limit', set => { %serial, synchronize_seqscans => 'off' },
			plan => qr/Limit.*Seq Scan on wide/s,
			sql => "SELECT id, u, h FROM wide WHERE id <= $nstable AND u % $m = 2 LIMIT 100");
	}
	item(kind => 'limit', set => { %serial, synchronize_seqscans => 'off' },
		plan => qr/Limit.*Seq Scan on sparse/s,
		sql => "SELECT id, h FROM sparse WHERE id > 600 LIMIT 100");
	item(kind => 'limit', set => { %serial, synchronize_seqscans => 'off' },
		plan => qr/Limit.*Seq Scan on sparse/s,
		sql => "SELECT id FROM sparse WHERE id > 8150 LIMIT 1");
	item(kind => 'limit', set => { %serial, synchronize_seqscans => 'off' },
		plan => qr/Limit.*Seq Scan on corr/s,
		sql => "SELECT id, c FROM corr OFFSET " . rint(1000, 120000) . " LIMIT 10");
	for (1 .. 2)
	{
		my $m = rint(10, 99);
		item(kind => 'limit', set => \%serial, plan => qr/Limit.*Sort.*Seq Scan on wide/s,
			sql => "SELECT id, u FROM wide WHERE id <= $nstable AND u % $m = 3 ORDER BY u LIMIT 100");
	}
	for (1 .. 3)
	{
		my $a = rint(0, 990000);
		# an index scan's order is the index's, with or without ORDER BY
		item(kind => 'limit', set => \%index, plan => qr/Limit.*Index Scan using wide_u/s,
			sql => "SELECT u, id, h FROM wide WHERE u > $a AND id + 0 <= $nstable LIMIT " . pick(1, 100));
	}
	item(kind => 'limit', set => \%index, plan => qr/Limit.*Index Only Scan Backward using corr_c/s,
		sql => "SELECT c FROM corr ORDER BY c DESC LIMIT 100");
	item(kind => 'limit', set => \%index, plan => qr/Limit.*Index Scan using sparse_pkey/s,
		sql => "SELECT id, h FROM sparse WHERE id > 650 ORDER BY id LIMIT 1");

	# --- nested loops with rescans ----------------------------------------
	for (1 .. 3)
	{
		my $s = rint(1, 190);
		item(kind => 'join', set => { %nestloop, %serial },
			plan => qr/Nested Loop.*Seq Scan on sparse/s,
			sql => "SELECT s.id, count(x.id), sum(x.id) FROM small s JOIN sparse x ON x.k = s.sk "
			  . "WHERE s.id BETWEEN $s AND $s + 3 GROUP BY s.id ORDER BY s.id");
	}
	for (1 .. 2)
	{
		my $s = rint(1, 185);
		# a LIMIT in every rescan: the inner seq scan stops early, each time
		item(kind => 'join', set => { %nestloop, %serial, synchronize_seqscans => 'off' },
			plan => qr/Nested Loop.*Limit.*Seq Scan on corr/s,
			sql => "SELECT s.id, x.id, x.h FROM small s CROSS JOIN LATERAL "
			  . "(SELECT id, h FROM corr WHERE corr.v = s.sk LIMIT 3) x "
			  . "WHERE s.id BETWEEN $s AND $s + 9 ORDER BY s.id, x.id");
		item(kind => 'join', set => { %nestloop, %serial },
			plan => qr/Nested Loop.*Limit.*Seq Scan on corr/s,
			sql => "SELECT count(*), bool_and(x.h = md5(x.id::text)) FROM small s CROSS JOIN LATERAL "
			  . "(SELECT id, h FROM corr WHERE corr.v = s.sk + 1 LIMIT 3) x "
			  . "WHERE s.id BETWEEN $s AND $s + 9");
	}
	{
		my $s = rint(1, 150);
		# each rescan crosses runs of empty pages before its first row
		item(kind => 'join', set => { %nestloop, %serial, synchronize_seqscans => 'off' },
			plan => qr/Nested Loop.*Limit.*Seq Scan on sparse/s,
			sql => "SELECT s.id, x.id FROM small s CROSS JOIN LATERAL "
			  . "(SELECT id FROM sparse WHERE sparse.id > s.id * 115 LIMIT 1) x "
			  . "WHERE s.id BETWEEN $s AND $s + 40 ORDER BY s.id");
	}
	for (1 .. 3)
	{
		my $s = rint(1, 180);
		item(kind => 'join', set => { %nestloop, enable_bitmapscan => 'off' },
			plan => qr/Nested Loop.*Index Scan using wide_u/s,
			sql => "SELECT s.id, count(*), sum(w.id), md5(string_agg(w.h, ',' ORDER BY w.id)) "
			  . "FROM small s JOIN wide w ON w.u BETWEEN s.wu AND s.wu + 8000 AND w.id + 0 <= $nstable "
			  . "WHERE s.id BETWEEN $s AND $s + 15 GROUP BY s.id ORDER BY s.id");
	}
	{
		my $s = rint(1, 150);
		item(kind => 'join', set => { %nestloop, enable_bitmapscan => 'off' },
			plan => qr/Nested Loop.*Index Scan using wide_u/s,
			sql => "SELECT s.id, w.id, w.h FROM small s JOIN wide w ON w.u = s.wu "
			  . "WHERE s.id BETWEEN $s AND $s + 40 AND w.id <= $nstable ORDER BY s.id");
	}
	for (1 .. 2)
	{
		my $s = rint(1, 180);
		item(kind => 'join', set => { %nestloop, enable_bitmapscan => 'off' },
			plan => qr/Nested Loop.*Index Scan using corr_c/s,
			sql => "SELECT s.id, count(*), md5(string_agg(x.h, ',' ORDER BY x.id)) FROM small s "
			  . "JOIN corr x ON x.c BETWEEN s.cc AND s.cc + 700 "
			  . "WHERE s.id BETWEEN $s AND $s + 20 GROUP BY s.id ORDER BY s.id");
		item(kind => 'join', set => { %nestloop, enable_bitmapscan => 'off' },
			plan => qr/Nested Loop.*Index Only Scan using corr_c/s,
			sql => "SELECT s.id, count(*), sum(x.c) FROM small s "
			  . "JOIN corr x ON x.c BETWEEN s.cc - 300 AND s.cc + 300 "
			  . "WHERE s.id BETWEEN $s AND $s + 20 GROUP BY s.id ORDER BY s.id");
	}
	for (1 .. 2)
	{
		my $s = rint(1, 180);
		item(kind => 'join', set => { %nestloop, enable_indexscan => 'off', enable_indexonlyscan => 'off' },
			plan => qr/Nested Loop.*Bitmap Heap Scan on wide/s,
			sql => "SELECT s.id, count(*), sum(w.id) FROM small s "
			  . "JOIN wide w ON w.u BETWEEN s.wu AND s.wu + 5000 AND w.id + 0 <= $nstable "
			  . "WHERE s.id BETWEEN $s AND $s + 15 GROUP BY s.id ORDER BY s.id");
	}

	# --- cursors ----------------------------------------------------------
	for (1 .. 2)
	{
		my $m = rint(7, 60);
		my $q = "SELECT id, u, h FROM wide WHERE id <= $nstable AND u % $m = 4";
		my $n = rint(50, 1000);
		item(kind => 'cursor', set => { %serial, synchronize_seqscans => 'off' },
			plan => qr/Seq Scan on wide/, explain => "DECLARE c SCROLL CURSOR FOR $q",
			sql => "BEGIN;\nDECLARE c SCROLL CURSOR FOR $q;\n"
			  . fetches('c', 'FORWARD 10', 'BACKWARD 5', "ABSOLUTE $n", 'FORWARD 10',
				'ABSOLUTE -1', 'BACKWARD 5', 'ABSOLUTE 3', 'RELATIVE ' . rint(100, 400),
				'BACKWARD 2')
			  . "\nCLOSE c;\nCOMMIT;");
	}
	{
		# across the runs of empty pages, forwards and backwards
		my $q = "SELECT id, h FROM sparse WHERE id % 3 = 0";
		item(kind => 'cursor', set => { %serial, synchronize_seqscans => 'off' },
			plan => qr/Seq Scan on sparse/, explain => "DECLARE c SCROLL CURSOR FOR $q",
			sql => "BEGIN;\nDECLARE c SCROLL CURSOR FOR $q;\n"
			  . fetches('c', 'FORWARD 10', 'ABSOLUTE 199', 'FORWARD 3', 'BACKWARD 5',
				'ABSOLUTE 260', 'BACKWARD 70', 'ABSOLUTE -2', 'BACKWARD 10')
			  . "\nCLOSE c;\nCOMMIT;");
	}
	for (1 .. 2)
	{
		my $a = rint(0, 900000);
		my $q = "SELECT u, id, h FROM wide WHERE u BETWEEN $a AND $a + 20000 AND id + 0 <= $nstable ORDER BY u";
		item(kind => 'cursor', set => \%index,
			plan => qr/Index Scan using wide_u/, explain => "DECLARE c SCROLL CURSOR FOR $q",
			sql => "BEGIN;\nDECLARE c SCROLL CURSOR FOR $q;\n"
			  . fetches('c', 'FORWARD 10', 'BACKWARD 5', 'ABSOLUTE ' . rint(100, 1500),
				'FORWARD 10', 'ABSOLUTE -1', 'BACKWARD 5', 'ABSOLUTE 1')
			  . "\nCLOSE c;\nCOMMIT;");
	}
	{
		my $a = rint(98000, 110000);
		my $q = "SELECT c FROM corr WHERE c BETWEEN $a AND $a + 5000 ORDER BY c";
		item(kind => 'cursor', set => \%index,
			plan => qr/Index Only Scan using corr_c/, explain => "DECLARE c SCROLL CURSOR FOR $q",
			sql => "BEGIN;\nDECLARE c SCROLL CURSOR FOR $q;\n"
			  . fetches('c', 'FORWARD 10', 'BACKWARD 5', 'ABSOLUTE 3000', 'BACKWARD 5',
				'ABSOLUTE -1', 'BACKWARD 3')
			  . "\nCLOSE c;\nCOMMIT;");
	}
	{
		my $a = rint(0, 700000);
		my $q = "SELECT id, u, h FROM wide WHERE u BETWEEN $a AND $a + 30000 AND id + 0 <= $nstable";
		item(kind => 'cursor', set => \%bitmap,
			plan => qr/Bitmap Heap Scan on wide/, explain => "DECLARE c SCROLL CURSOR FOR $q",
			sql => "BEGIN;\nDECLARE c SCROLL CURSOR FOR $q;\n"
			  . fetches('c', 'FORWARD 10', 'BACKWARD 5', 'ABSOLUTE 2000', 'FORWARD 10', 'ABSOLUTE -1',
				'BACKWARD 5')
			  . "\nCLOSE c;\nCOMMIT;");
	}
	{
		# WITH HOLD: COMMIT runs the scan to its end into a store; fetched after
		my $q = "SELECT id, h FROM sparse WHERE id % 7 = 1";
		item(kind => 'cursor', set => { %serial, synchronize_seqscans => 'off' },
			plan => qr/Seq Scan on sparse/, explain => "DECLARE h SCROLL CURSOR WITH HOLD FOR $q",
			sql => "BEGIN;\nDECLARE h SCROLL CURSOR WITH HOLD FOR $q;\n"
			  . fetches('h', 'FORWARD 10')
			  . "\nCOMMIT;\n"
			  . fetches('h', 'FORWARD 10', 'BACKWARD 5', 'ABSOLUTE 100', 'ABSOLUTE -1', 'BACKWARD 3')
			  . "\nCLOSE h;");
		my $m = rint(5, 50);
		my $q2 = "SELECT id, u FROM wide WHERE id <= $nstable AND u % $m = 0";
		item(kind => 'cursor', set => { %serial, synchronize_seqscans => 'off' },
			plan => qr/Seq Scan on wide/, explain => "DECLARE h NO SCROLL CURSOR WITH HOLD FOR $q2",
			sql => "BEGIN;\nDECLARE h NO SCROLL CURSOR WITH HOLD FOR $q2;\n"
			  . fetches('h', 'FORWARD 10')
			  . "\nCOMMIT;\n"
			  . fetches('h', 'FORWARD 10', 'FORWARD 1', 'ABSOLUTE 500')
			  . "\nCLOSE h;");
	}
	{
		# cursors left open mid-scan when the transaction ends
		my $q = "SELECT id, u FROM wide WHERE id <= $nstable";
		item(kind => 'cursor', set => { %serial, synchronize_seqscans => 'off' },
			plan => qr/Seq Scan on wide/, explain => "DECLARE c CURSOR FOR $q",
			sql => "BEGIN;\nDECLARE c CURSOR FOR $q;\n"
			  . fetches('c', 'FORWARD 5', 'ABSOLUTE 40000', 'FORWARD 2')
			  . "\nCOMMIT;\n"
			  . "BEGIN;\nDECLARE c CURSOR FOR $q;\n"
			  . fetches('c', 'ABSOLUTE 70000', 'FORWARD 2')
			  . "\nROLLBACK;");
		my $a = rint(0, 500000);
		my $q2 = "SELECT u, id, h FROM wide WHERE u > $a AND id + 0 <= $nstable ORDER BY u";
		item(kind => 'cursor', set => \%index,
			plan => qr/Index Scan using wide_u/, explain => "DECLARE c CURSOR FOR $q2",
			sql => "BEGIN;\nDECLARE c CURSOR FOR $q2;\n"
			  . fetches('c', 'FORWARD 5', 'ABSOLUTE 3000', 'FORWARD 2')
			  . "\nCOMMIT;");
	}

	# --- scans ended by an error ------------------------------------------
	{
		my $k = rint(20000, 100000);
		item(kind => 'error', set => \%serial, plan => qr/Seq Scan on wide/,
			expect => qr/^ERROR:  22012: division by zero$/m,
			sql => "SELECT count(*) FROM wide WHERE id <= $nstable AND 1 / (id - $k) IS NOT NULL");
		$k = rint(20000, 100000);
		item(kind => 'error', set => { %parallel, enable_indexscan => 'off',
				enable_indexonlyscan => 'off', enable_bitmapscan => 'off' },
			plan => qr/Parallel Seq Scan on wide/, expect => qr/^ERROR:  22012: division by zero$/m,
			sql => "SELECT count(*) FROM wide WHERE id <= $nstable AND 1 / (id - $k) IS NOT NULL");
		$k = rint(0, 999000);
		item(kind => 'error', set => \%bitmap, plan => qr/Bitmap Heap Scan on wide/,
			expect => qr/^ERROR:  22012: division by zero$/m,
			sql => "SELECT count(*) FROM wide WHERE u BETWEEN $k AND $k + 9000 AND id + 0 <= $nstable "
			  . "AND 1 / (u % 500) IS NOT NULL");
		# 100 sleeps of 50 ms: always longer than the timeout
		item(kind => 'error', set => { %serial, statement_timeout => '300ms' },
			plan => qr/Seq Scan on wide/,
			expect => qr/^ERROR:  57014: canceling statement due to statement timeout$/m,
			sql => "SELECT count(*) FROM wide WHERE id <= $nstable "
			  . "AND (id % 1100 <> 0 OR pg_sleep(0.05) IS NOT NULL)");
		item(kind => 'error', set => { %index, statement_timeout => '300ms' },
			plan => qr/Index Scan using wide_u/,
			expect => qr/^ERROR:  57014: canceling statement due to statement timeout$/m,
			sql => "SELECT count(*) FROM wide WHERE u > 1000 AND id + 0 <= $nstable "
			  . "AND (id % 1100 <> 0 OR pg_sleep(0.05) IS NOT NULL) AND h <> ''");

		# The timeout falls wherever the scan is (waiting for a read, between
		# reads ahead, starting a rescan): each query runs for seconds (200
		# rescans of ~25 ms each at least), the timeout is at most 400 ms.
		my $timeout = sub { return { statement_timeout => rint(30, 400) . 'ms' } };
		my $lateral = "SELECT count(*) FROM small s CROSS JOIN LATERAL";
		item(kind => 'error', set => { %serial, %nestloop, %{ $timeout->() } },
			plan => qr/Nested Loop.*Seq Scan on small.*Seq Scan on wide/s,
			expect => qr/^ERROR:  57014: canceling statement due to statement timeout$/m,
			sql => "$lateral (SELECT 1 FROM wide w WHERE w.h = s.wu::text OFFSET 0) x");
		item(kind => 'error', set => { %serial, %nestloop, %{ $timeout->() } },
			plan => qr/Nested Loop.*Seq Scan on small.*Seq Scan on sparse/s,
			expect => qr/^ERROR:  57014: canceling statement due to statement timeout$/m,
			sql => "$lateral (SELECT 1 FROM sparse x WHERE x.h = s.wu::text OFFSET 0) x "
			  . "CROSS JOIN LATERAL (SELECT 1 FROM corr c WHERE c.h = s.sk::text OFFSET 0) y");
		item(kind => 'error', set => { %index, %nestloop, %{ $timeout->() } },
			plan => qr/Nested Loop.*Index Scan using wide_u/s,
			expect => qr/^ERROR:  57014: canceling statement due to statement timeout$/m,
			sql => "$lateral (SELECT 1 FROM wide w WHERE w.u > s.wu AND w.h = 'x' OFFSET 0) x");
		item(kind => 'error', set => { %bitmap, %nestloop, %{ $timeout->() } },
			plan => qr/Nested Loop.*Bitmap Heap Scan on wide/s,
			expect => qr/^ERROR:  57014: canceling statement due to statement timeout$/m,
			sql => "$lateral (SELECT 1 FROM wide w WHERE w.u > s.wu AND w.h = 'x' OFFSET 0) x");
		# the Gather is rescanned once per distinct h of sparse (~1900 times):
		# the workers are cancelled with the leader
		item(kind => 'error', set => { %parallel, %nestloop, enable_indexscan => 'off',
				enable_indexonlyscan => 'off', enable_bitmapscan => 'off', %{ $timeout->() } },
			plan => qr/Nested Loop.*Gather.*Parallel Seq Scan on wide/s,
			expect => qr/^ERROR:  57014: canceling statement due to statement timeout$/m,
			sql => "SELECT count(*) FROM wide a WHERE a.id <= $nstable "
			  . "AND EXISTS (SELECT 1 FROM sparse x WHERE x.h = a.pad)");
	}
	return;
}

# the rounds (PGU_RA_ROUNDS for a longer run)
my $rounds = $ENV{PGU_RA_ROUNDS} // 2;
generate_round() for 1 .. $rounds;

my @kinds = qw(seqscan parallel bitmap indexscan indexonly limit join cursor error);
note scalar(@items) . " queries: "
  . join(', ', map { my $k = $_; "$k " . scalar(grep { $_->{kind} eq $k } @items) } @kinds);

# ---------------------------------------------------------------------------
# sessions
# ---------------------------------------------------------------------------
my %ra;    # readahead setting => session
for my $mode ('on', 'off')
{
	my $s = pgu_session($node, "ra_$mode");
	my ($o, $e) = $s->query(
		"SET pg_uring.readahead = $mode;\n"
		  . "SET pg_uring.readahead_seqscan = on;\n"
		  . "SET pg_uring.readahead_bitmapscan = on;\n"
		  . "SET pg_uring.readahead_indexscan = on;\n"
		  . "SELECT current_setting('pg_uring.readahead')");
	is($o, $mode, "session ra_$mode runs with pg_uring.readahead = $mode") or diag $e;
	$ra{$mode} = $s;
}

# the writers
my @writers = (
	{ s => pgu_session($node, 'w_churn'), n => 0, pending => 0, errors => [] },
	{ s => pgu_session($node, 'w_wide'),  n => 0, pending => 0, errors => [] });
my $next_checkpoint = time() + 3;
my $writing = 1;

sub writer_batch
{
	my ($w, $i) = @_;
	my $n = ++$w->{n};
	if ($i == 0)
	{
		my ($k, $k2) = (rint(1, 29000), rint(1, 29800));
		my $sql = "UPDATE churn SET n = n + 1, pad = repeat(chr(97 + $n % 26), 150) "
		  . "WHERE id BETWEEN $k AND $k + 999;\n"
		  . "DELETE FROM churn WHERE id BETWEEN $k2 AND $k2 + 199;\n"
		  . "INSERT INTO churn SELECT g, $n, repeat('y', 150) FROM generate_series($k2, $k2 + 199) g;\n";
		$sql .= "VACUUM churn;\n" if $n % 10 == 0;
		if (time() > $next_checkpoint)
		{
			$sql .= "CHECKPOINT;\n";
			$next_checkpoint = time() + 3;
		}
		return $sql . "SELECT pg_sleep(0.02)";
	}
	my ($k, $k2) = (rint(1, $nwriter - 150), rint(1, $nwriter - 60));
	my ($lo, $lo2) = ($nstable + $k, $nstable + $k2);
	my $sql = "UPDATE wide SET n = n + 1 WHERE id BETWEEN $lo AND $lo + 149;\n"
	  . "DELETE FROM wide WHERE id BETWEEN $lo2 AND $lo2 + 59;\n"
	  . "INSERT INTO wide SELECT g, ((g::bigint * 69621 + $n) % 1000003)::int, $n, md5(g::text), "
	  . "repeat('z', 120) FROM generate_series($lo2, $lo2 + 59) g;\n";
	$sql .= "VACUUM wide;\n" if $n % 8 == 0;
	return $sql . "SELECT pg_sleep(0.03)";
}

# finish the writers' batches that are done, start the next ones
sub service_writers
{
	for my $i (0 .. $#writers)
	{
		my $w = $writers[$i];
		if ($w->{pending} && $w->{s}->done)
		{
			my ($o, $e) = $w->{s}->finish;
			push @{ $w->{errors} }, $e // 'timeout' if !defined $o || $e ne '';
			$w->{pending} = 0;
		}
		if (!$w->{pending} && $writing)
		{
			$w->{s}->begin(writer_batch($w, $i));
			$w->{pending} = 1;
		}
	}
	return;
}

sub settings
{
	my ($set) = @_;
	my @k = sort keys %$set;
	return (join('', map { "SET $_ = '$set->{$_}';\n" } @k),
		join('', map { "\nRESET $_;" } @k));
}

# run $sql in both sessions at once (with the item's settings); returns
# { on => [out, err], off => [out, err] }, and hung => 1 if a session did
# not finish within $PgUringTest::TIMEOUT seconds
sub run_pair
{
	my ($it, $sql) = @_;
	my ($pre, $post) = settings($it->{set});
	$sql =~ s/;?\s*$/;/;    # the RESETs follow on their own lines
	$ra{$_}->begin("$pre$sql$post") for ('on', 'off');
	my $deadline = time() + $PgUringTest::TIMEOUT;
	while (!($ra{on}->done && $ra{off}->done) && time() < $deadline)
	{
		service_writers();
		usleep(5_000);
	}
	my %r;
	for my $mode ('on', 'off')
	{
		$r{hung} = 1 unless $ra{$mode}->done;
		my ($o, $e) = $ra{$mode}->finish(1);
		$o //= '<timeout>';
		$e //= '';
		$e =~ s/^psql:<stdin>:\d+: //mg;    # the line number in psql's input
		$r{$mode} = [ $o, $e ];
	}
	service_writers();
	return \%r;
}

# a readable account of where two outputs part
sub first_difference
{
	my ($on, $off) = @_;
	my @a = split /\n/, $on, -1;
	my @b = split /\n/, $off, -1;
	my $i = 0;
	$i++ while $i < @a && $i < @b && $a[$i] eq $b[$i];
	my $from = $i > 2 ? $i - 2 : 0;
	my $text = sprintf("output parts at line %d (on: %d lines, off: %d lines)\n", $i + 1,
		scalar(@a), scalar(@b));
	for my $j ($from .. $i + 2)
	{
		next if $j >= @a && $j >= @b;
		my $mark = $j == $i ? '>' : ' ';
		$text .= sprintf("%s %4d on : %s\n", $mark, $j + 1, $j < @a ? $a[$j] : '<none>');
		$text .= sprintf("%s %4d off: %s\n", $mark, $j + 1, $j < @b ? $b[$j] : '<none>');
	}
	return $text;
}

# ---------------------------------------------------------------------------
# run the workload
# ---------------------------------------------------------------------------
my $t_work = time();
my (%same, %same_plan, %plan_ok, %clean, %as_expected, @bad);
my $hung;    # the query a session did not finish
service_writers();
for my $idx (0 .. $#items)
{
	my $it = $items[$idx];
	my $k  = $it->{kind};
	my $label = "$k #$idx (distance $it->{set}{'pg_uring.readahead_distance'}): $it->{sql}";

	my $p = run_pair($it, "EXPLAIN (COSTS OFF) $it->{explain}");
	$hung = "EXPLAIN of $label" if $p->{hung};
	last if $hung;
	if ($p->{on}[0] eq $p->{off}[0] && $p->{on}[1] eq $p->{off}[1])
	{
		$same_plan{$k}++;
	}
	else
	{
		push @bad, [ $k, 'plan', "$label\nEXPLAIN on:\n$p->{on}[0]\n$p->{on}[1]\nEXPLAIN off:\n$p->{off}[0]\n$p->{off}[1]" ];
	}
	if ($p->{off}[1] eq '' && $p->{off}[0] =~ $it->{plan})
	{
		$plan_ok{$k}++;
	}
	else
	{
		push @bad, [ $k, 'node', "$label\nwants $it->{plan}; EXPLAIN:\n$p->{off}[0]\n$p->{off}[1]" ];
	}

	my $r = run_pair($it, $it->{sql});
	$hung = $label if $r->{hung};
	last if $hung;
	my ($on, $off) = ($r->{on}, $r->{off});
	my $exp = $it->{expect};
	if (ref $exp)
	{
		# both must fail, with the same error (its first line: a parallel
		# worker's error has a CONTEXT line the leader's has not)
		my ($eon)  = $on->[1] =~ /^(ERROR:.*)$/m;
		my ($eoff) = $off->[1] =~ /^(ERROR:.*)$/m;
		if ($on->[0] eq $off->[0] && defined $eon && defined $eoff && $eon eq $eoff)
		{
			$same{$k}++;
		}
		else
		{
			push @bad, [ $k, 'output', "$label\nstdout on: $on->[0]\nstdout off: $off->[0]\n"
				  . "stderr on: $on->[1]\nstderr off: $off->[1]" ];
		}
		my $ok = 1;
		for my $m ('on', 'off')
		{
			my @lines = grep { !/^(LOCATION|CONTEXT):/ } split /\n/, $r->{$m}[1];
			$ok = 0 unless @lines == 1 && $lines[0] =~ $exp && $r->{$m}[0] eq '';
		}
		if ($ok) { $clean{$k}++; $as_expected{$k}++; }
		else
		{
			push @bad, [ $k, 'expect', "$label\nwants exactly one error matching $exp\n"
				  . "stderr on: $on->[1]\nstderr off: $off->[1]" ];
		}
		next;
	}

	if ($on->[0] eq $off->[0])
	{
		$same{$k}++;
	}
	else
	{
		push @bad, [ $k, 'output', "$label\n" . first_difference($on->[0], $off->[0]) ];
	}
	if ($on->[1] eq '' && $off->[1] eq '')
	{
		$clean{$k}++;
	}
	else
	{
		push @bad, [ $k, 'error', "$label\nstderr on: $on->[1]\nstderr off: $off->[1]" ];
	}
	my $good = sub {
		my ($o) = @_;
		return $o eq '0' if $exp eq 'zero';
		return $o eq ''  if $exp eq 'empty';
		# rows: some output, and not only zeros and empty columns
		return $o ne '' && $o =~ /[1-9a-f]/;
	};
	if ($good->($on->[0]) && $good->($off->[0]))
	{
		$as_expected{$k}++;
	}
	else
	{
		push @bad, [ $k, 'expect', "$label\nwants '$exp'; on: '"
			  . substr($on->[0], 0, 200) . "'; off: '" . substr($off->[0], 0, 200) . "'" ];
	}
}
my $t_workload = time() - $t_work;

# let the writers finish what they are doing; they stay connected
$writing = 0;
for my $w (@writers)
{
	next unless $w->{pending};
	my ($o, $e) = $w->{s}->finish;
	push @{ $w->{errors} }, $e // 'timeout' if !defined $o || $e ne '';
	$w->{pending} = 0;
}
note sprintf("workload: %.1f s; writer batches: churn %d, wide %d", $t_workload,
	$writers[0]{n}, $writers[1]{n});
ok(!defined $hung, "every query of the workload ended within $PgUringTest::TIMEOUT s")
  or diag "hung: $hung";

for my $k (@kinds)
{
	my $total = scalar(grep { $_->{kind} eq $k } @items);
	my @mine = grep { $_->[0] eq $k } @bad;
	my %why;
	push @{ $why{ $_->[1] } }, $_->[2] for @mine;
	my $show = sub {
		my ($what) = @_;
		my @l = @{ $why{$what} // [] };
		return unless @l;
		diag(scalar(@l) . " of $total: first:\n$l[0]");
		diag("others:\n" . join("\n", map { (split /\n/)[0] } @l[ 1 .. ($#l > 5 ? 5 : $#l) ]))
		  if @l > 1;
	};
	cmp_ok($total, '>', 0, "$k: the workload has such queries ($total)");
	is($same_plan{$k} // 0, $total, "$k: EXPLAIN is the same with read-ahead on and off")
	  or $show->('plan');
	is($plan_ok{$k} // 0, $total, "$k: every query's plan has the node it is there for")
	  or $show->('node');
	is($same{$k} // 0, $total, "$k: every query gives the same output with read-ahead on and off")
	  or $show->('output');
	is($clean{$k} // 0, $total,
		$k eq 'error'
		? "$k: every query fails, with just its error, in both sessions"
		: "$k: no query reports an error or warning in either session")
	  or do { $show->('error'); $show->('expect'); };
	is($as_expected{$k} // 0, $total,
		"$k: every query's output is what it must be (rows, 0, nothing or its error)")
	  or $show->('expect');
}

# a hung session would only make the rest time out
if (defined $hung)
{
	done_testing();
	exit 1;
}

# the writers really wrote, and without error
for my $w (@writers)
{
	cmp_ok($w->{n}, '>=', 5, "writer $w->{s}{name} ran $w->{n} batches during the workload");
	is_deeply($w->{errors}, [], "writer $w->{s}{name}: no batch failed");
}
is($node->safe_psql('postgres', "SELECT count(*) FROM wide WHERE id > $nstable AND n > 0") > 0 ? 1 : 0,
	1, 'the writer updated rows of wide (beyond the compared ones)');

# Backends ended (pg_terminate_backend) in the middle of scans that read
# ahead: whatever they had pinned or in flight must not outlive them (the
# checks below).  Each query runs for seconds; the kill comes after 50 to
# 400 ms.
{
	my %set = (%nestloop, 'pg_uring.readahead' => 'on');
	my @victims = (
		[ 'seq scan', 'seqscan', { %set, %serial },
		  "SELECT count(*) FROM small s CROSS JOIN LATERAL "
		  . "(SELECT 1 FROM wide w WHERE w.h = s.wu::text OFFSET 0) x" ],
		[ 'parallel seq scan', 'parallel', { %set, %parallel, enable_indexscan => 'off',
			enable_indexonlyscan => 'off', enable_bitmapscan => 'off' },
		  "SELECT count(*) FROM wide a WHERE a.id <= $nstable "
		  . "AND EXISTS (SELECT 1 FROM sparse x WHERE x.h = a.pad)" ],
		[ 'index scan', 'indexscan', { %set, %index },
		  "SELECT count(*) FROM small s CROSS JOIN LATERAL "
		  . "(SELECT 1 FROM wide w WHERE w.u > s.wu AND w.h = 'x' OFFSET 0) x" ],
		[ 'bitmap heap scan', 'bitmap', { %set, %bitmap },
		  "SELECT count(*) FROM small s CROSS JOIN LATERAL "
		  . "(SELECT 1 FROM wide w WHERE w.u > s.wu AND w.h = 'x' OFFSET 0) x" ]);
	for my $v (@victims)
	{
		my ($what, $tag, $vset, $sql) = @$v;
		my $victim = pgu_session($node, "ra_killed_$tag");
		my $pid = $victim->pid;
		my ($pre) = settings($vset);
		my ($o, $e) = $victim->query($pre . "SELECT current_setting('pg_uring.readahead')");
		is("$o$e", 'on', "killed: the ${what}'s session reads ahead");
		$victim->begin($sql);
		pgu_poll(sub {
			$node->safe_psql('postgres', "SELECT state FROM pg_stat_activity WHERE pid = $pid") eq 'active' });
		usleep(1000 * (50 + int(rand(351))));
		like($node->safe_psql('postgres', "SELECT state || ': ' || query FROM pg_stat_activity WHERE pid = $pid"),
			qr/^active: \Q$sql\E/, "killed: the $what is running");
		is($node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)"), 't',
			"killed: the $what is terminated mid-query");
		ok($victim->wait_exit(30), "killed: the ${what}'s session ended");
		like($victim->stderr_so_far, qr/FATAL:  57P01: terminating connection due to administrator command/,
			"killed: the ${what}'s session was told why");
		is($victim->{out}, '', "killed: the $what did not finish");
	}
	ok(pgu_poll(sub {
		$node->safe_psql('postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'ra_killed_%' "
			  . "OR backend_type = 'parallel worker'") eq '0' }, 30),
		'killed: the backends and their parallel workers are gone');
}

# what read-ahead did, for the notes
my $ra_all_sql = q{SELECT coalesce(sum(reads), 0) || ' blocks read, ' || coalesce(sum(readahead_used), 0)
  || ' used, ' || coalesce(sum(readahead_wasted), 0) || ' wasted, '
  || coalesce(sum(readahead_waited), 0) || ' waited for'
  FROM pg_uring_stat_io WHERE io_kind = 'read-ahead'};

# The switch really switches: with nothing else running, a scan of each
# kind in ra_on must read ahead (pg_uring_stat_io's read-ahead rows move),
# the same scan in ra_off must read nothing ahead.  Before each run, ra_off
# (which reads nothing ahead itself) reads another table through an index
# (no ring strategy: it takes the pool), so that the probed table's blocks
# are not in the pool and the scan has something to read.
# A parallel seq scan reads ahead only within its process's chunk of the
# table (rasource.c), and PostgreSQL 15 makes a table of fewer than 4096
# blocks (wide has ~3000) into chunks of one block: there is nothing to read
# ahead, so for it only "off reads nothing ahead" is asserted.
{
	my $ra_sql = q{SELECT coalesce(sum(reads), 0) FROM pg_uring_stat_io WHERE io_kind = 'read-ahead'};
	my %evict = (
		wide => "SELECT count(h) FROM corr WHERE c > 0",
		corr => "SELECT count(h) FROM wide WHERE id > 0");
	my %par = (%parallel, enable_indexscan => 'off', enable_indexonlyscan => 'off',
		enable_bitmapscan => 'off');
	my @probes = (
		[ 'a serial seq scan', 'wide', \%serial,
		  "SELECT count(*) FROM wide WHERE id <= $nstable AND h = 'none'" ],
		[ 'a parallel seq scan', 'wide', \%par,
		  "SELECT count(*) FROM wide WHERE id <= $nstable AND h = 'none'" ],
		[ 'a bitmap heap scan', 'wide', \%bitmap,
		  "SELECT count(*) FROM wide WHERE u BETWEEN 0 AND 600000 AND id + 0 <= $nstable AND h <> ''" ],
		[ 'an index scan', 'wide', \%index,
		  "SELECT count(*) FROM wide WHERE u BETWEEN 400000 AND 1000003 AND id + 0 <= $nstable AND h <> ''" ],
		[ 'an index-only scan', 'corr', \%index,
		  "SELECT count(*), sum(c) FROM corr WHERE c > 100000" ]);
	my ($epre, $epost) = settings(\%index);
	for my $p (@probes)
	{
		my ($what, $table, $set, $sql) = @$p;
		my ($pre, $post) = settings($set);
		my %delta;
		for my $mode ('on', 'off')
		{
			my ($eo, $ee) = $ra{off}->query("$epre$evict{$table};$epost");
			my $before = $node->safe_psql('postgres', $ra_sql);
			my ($o, $e) = $ra{$mode}->query("$pre$sql;$post");
			is("$ee$e", '', "probe: $what in ra_$mode runs (and the eviction before it)");
			$delta{$mode} = $node->safe_psql('postgres', $ra_sql) - $before;
		}
		note "probe: $what: blocks read ahead with read-ahead on $delta{on}, off $delta{off}";
		if ($what =~ /seq scan/ && $node->pg_version >= 17)
		{
			# 17 reads seq scans through its own read stream: pg_uring
			# leaves them to it, whatever pg_uring.readahead_seqscan says
			is($delta{on}, 0,
				"probe: $what on PostgreSQL 17 is left to core's read stream (nothing read ahead by pg_uring)");
		}
		elsif ($what !~ /parallel/)
		{
			cmp_ok($delta{on}, '>', 0, "probe: $what with pg_uring.readahead = on reads ahead");
		}
		is($delta{off}, 0, "probe: $what with pg_uring.readahead = off reads nothing ahead");
	}
}

# the sessions kept their settings all along
for my $mode ('on', 'off')
{
	my ($o, $e) = $ra{$mode}->query(
		"SHOW pg_uring.readahead;\nSHOW pg_uring.readahead_seqscan;\n"
		  . "SHOW pg_uring.readahead_bitmapscan;\nSHOW pg_uring.readahead_indexscan;\n"
		  . "SHOW pg_uring.readahead_distance");
	is($o, "$mode\non\non\non\n512kB", "after the workload, session ra_$mode still has "
		  . "pg_uring.readahead = $mode (switches on, distance back at its default)")
	  or diag $e;
}

# ---------------------------------------------------------------------------
# afterwards: nothing pinned, no IO left, no read failed, amcheck clean
# ---------------------------------------------------------------------------
# every session (ra_on, ra_off, the writers) is still connected and idle
my $pinned_sql = 'SELECT count(*) FROM pg_buffercache WHERE pinning_backends > 0';
my $unpinned = pgu_poll(sub { $node->safe_psql('postgres', $pinned_sql) eq '0' }, 10);
ok($unpinned, 'no buffer stays pinned once every session is idle (the sessions still connected)')
  or diag $node->safe_psql('postgres',
	q{SELECT coalesce(c.relname, b.relfilenode::text), b.relblocknumber, b.pinning_backends
	  FROM pg_buffercache b LEFT JOIN pg_class c ON c.relfilenode = b.relfilenode
	  WHERE b.pinning_backends > 0 ORDER BY 1, 2 LIMIT 20});
ok(pgu_poll(sub { $node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios') eq '0' }, 10),
	'no IO left in pg_uring_ios');
note "read-ahead since the start: " . $node->safe_psql('postgres', $ra_all_sql);
my $s = pw_stats($node);
note join(', ', map { "$_ = $s->{$_}" } sort keys %$s);
is($s->{in_flight}, 0, 'nothing in flight');
is($s->{errors}, 0, 'no IO error');
is($s->{buffer_read_failures}, 0, 'no buffer read failed');

my @tables = qw(wide corr sparse small churn);
for my $t (@tables)
{
	my $rows = $node->safe_psql('postgres', "SELECT * FROM verify_heapam('$t')");
	is($rows, '', "verify_heapam($t) finds nothing");
}
my @indexes = split /\n/, $node->safe_psql(
	'postgres', q{
	SELECT i.indexrelid::regclass FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
	JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' ORDER BY 1});
is(scalar(@indexes), 6, 'six indexes to check: ' . join(', ', @indexes));
for my $i (@indexes)
{
	is($node->safe_psql('postgres', "SELECT bt_index_check('$i', true)"),
		'', "bt_index_check($i, heapallindexed) passes");
}

$_->quit for $ra{on}, $ra{off}, map { $_->{s} } @writers;

$node->stop;
my $log = slurp_file($node->logfile);
is(pgu_count_matches($log, qr/TRAP:|PANIC|terminated by signal/), 0,
	'the server log has no TRAP, PANIC or process terminated by a signal');
is(pgu_count_matches($log, qr/no unpinned buffers available|buffer refcount leak|resource was not closed/),
	0, 'the server log has no pin exhaustion and no leaked pin or resource');
note sprintf("total %.1f s", time() - $t_start);
done_testing();
