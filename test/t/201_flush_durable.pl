
# pg_uring_flush writes back what it should, all of it, and what it wrote is
# what a restart reads.
#
# No checkpoint by time and no bgwriter LRU writes on this node, so between
# two statements of the test nothing but pg_uring_flush writes a buffer.
#
# 1. pg_uring_flush('t'): returns exactly the number of dirty buffers of t
#    (all forks, with its TOAST table) that pg_buffercache showed before
#    (hundreds), buffer_writes grows by that count, none of them is dirty
#    afterwards, the index of t is left dirty (not part of t), and
#    pg_uring_flush('t_pkey') then cleans it the same way.
# 2. A TOAST-heavy table: heap, TOAST table and TOAST index all dirty
#    before, all clean after pg_uring_flush on the table alone.
# 3. An unlogged table: flushed and clean with no linked or deferred write;
#    the shutdown checkpoint of a clean restart then has nothing of it to
#    write, and its contents survive the restart.
# 4. The whole pool, pg_uring_flush(): returns the number of dirty buffers
#    in the pool, none is left dirty.
# 5. sync => true, for one table (drained_writes grows by at least the
#    number of segment files the dirty buffers were in) and for the pool.
# 6. Durability: the tables are read once (hint bits, pruning), then
#    flushed; with nothing dirty, a checkpoint that writes no shared buffer
#    (pg_stat_bgwriter) moves the redo point past the flushes, then an
#    immediate stop: after recovery every table reads back what was
#    committed (md5 over the ordered contents), checksums included, its
#    index finds every row, amcheck finds nothing.
# 7. Permissions: a plain role gets 42501, a member of pg_checkpoint can
#    flush; temporary tables give 0A000, a view 42809.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;
use PgUringWrite;

my $node = wr_node('flush_durable', shared_buffers => '64MB');
pgu_start($node);
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION pg_buffercache;
	CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL);
	INSERT INTO t SELECT g, md5(g::text) || md5((-g)::text) FROM generate_series(1, 40000) g;
	CREATE TABLE tt (id int PRIMARY KEY, payload text NOT NULL);
	ALTER TABLE tt ALTER payload SET STORAGE EXTERNAL;
	INSERT INTO tt SELECT g, (SELECT string_agg(md5(g::text || ':' || i), '') FROM generate_series(1, 100) i)
	  FROM generate_series(1, 300) g;
	CREATE UNLOGGED TABLE u (id int, v text);
	INSERT INTO u SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
	CREATE ROLE plain LOGIN;
	CREATE ROLE cp LOGIN IN ROLE pg_checkpoint;
	GRANT SELECT, UPDATE ON t TO plain, cp;
	CHECKPOINT;
});

my $t_digest = sub { wr_digest($node, 't', 'id') };
my $tt_digest = sub { wr_digest($node, 'tt', 'id', q{id || ':' || md5(payload)}) };
my $u_digest = sub { wr_digest($node, 'u', 'id') };

# count dirty buffers of t, flush, check; returns the count
sub flush_rel_checked
{
	my ($label, $rel, %opt) = @_;
	my $sync = $opt{sync} ? 'true' : 'false';
	my $before = wr_dirty($node, $rel, toast => 1);
	cmp_ok($before, '>=', $opt{min} // 100, "$label: $before dirty buffers of $rel before");
	my $s0 = wr_stats($node);
	my $n = $node->safe_psql('postgres', "SELECT pg_uring_flush('$rel', $sync)");
	my $d = wr_delta($s0, wr_stats($node));
	is($n, $before, "$label: pg_uring_flush('$rel') wrote every one of them");
	is($d->{buffer_writes}, $n, "$label: buffer_writes grew by the count returned");
	is($d->{buffer_write_failures} + $d->{errors} + $d->{cancelled}, 0,
		"$label: no failed or cancelled IO");
	is(wr_dirty($node, $rel, toast => 1), 0, "$label: no dirty buffer of $rel left");
	is($d->{in_flight}, 0, "$label: nothing left in flight");
	return ($n, $d);
}

# ---------------------------------------------------------------------------
# 1. one table, then its index
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', q{UPDATE t SET v = v || 'x' WHERE id % 2 = 0});
my $idx_dirty = wr_dirty($node, 't_pkey');
cmp_ok($idx_dirty, '>', 10, "t_pkey has $idx_dirty dirty buffers");
flush_rel_checked('table', 't');
is(wr_dirty($node, 't_pkey'), $idx_dirty, 'table: its index was not written (not part of t)');
flush_rel_checked('index', 't_pkey', min => 10);

# ---------------------------------------------------------------------------
# 2. TOAST
# ---------------------------------------------------------------------------
$node->safe_psql('postgres',
	q{UPDATE tt SET payload = (SELECT string_agg(md5(id::text || '/' || i), '') FROM generate_series(1, 100) i) WHERE id % 3 <> 0}
);
my ($tt_node, $toast_node, $toast_idx_node) = wr_filenodes($node, 'tt');
ok($toast_node && $toast_idx_node, 'tt has a TOAST table and a TOAST index');
my $nt = $node->safe_psql('postgres',
	"SELECT count(*) FROM pg_buffercache WHERE isdirty AND relfilenode = $toast_node");
my $nti = $node->safe_psql('postgres',
	"SELECT count(*) FROM pg_buffercache WHERE isdirty AND relfilenode = $toast_idx_node");
cmp_ok($nt, '>', 100, "TOAST: $nt dirty buffers of the TOAST table");
cmp_ok($nti, '>', 0, "TOAST: $nti dirty buffers of the TOAST index");
flush_rel_checked('TOAST', 'tt');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_buffercache WHERE isdirty AND relfilenode IN ($tt_node, $toast_node, $toast_idx_node)"),
	0,
	'TOAST: heap, TOAST table and TOAST index all clean');

# ---------------------------------------------------------------------------
# 3. unlogged
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', q{UPDATE u SET v = v || '!' WHERE id % 2 = 1});
my (undef, $ud) = flush_rel_checked('unlogged', 'u');
is($ud->{linked_writes} + $ud->{writes_deferred} + $ud->{wal_flushes}, 0,
	'unlogged: no linked write, no deferred write, no WAL flush');
my $u_expected = $u_digest->();
$node->restart;
is($u_digest->(), $u_expected, 'unlogged: contents survive a clean restart');

# ---------------------------------------------------------------------------
# 4. the whole pool
# ---------------------------------------------------------------------------
$node->safe_psql(
	'postgres', q{
	UPDATE t SET v = v || 'y' WHERE id % 3 = 0;
	UPDATE tt SET payload = payload || 'z' WHERE id % 5 = 0;
	UPDATE u SET v = v || '?' WHERE id % 7 = 0;
});
# the same session counts, flushes and counts again (its catalog lookups
# are cached by the first count, so the second one dirties nothing)
my $pool_sql = q{
	SELECT count(*) FROM pg_buffercache WHERE isdirty;
	SELECT sum(writes) AS w0 FROM pg_uring_stat_io WHERE io_kind = 'write-back' \gset
	SELECT count(*) FROM pg_buffercache WHERE isdirty;
	SELECT pg_uring_flush();
	SELECT count(*) FROM pg_buffercache WHERE isdirty;
	SELECT sum(writes) - :w0 FROM pg_uring_stat_io WHERE io_kind = 'write-back';
};
my (undef, $before, $n, $after, $writes) = split /\n/, $node->safe_psql('postgres', $pool_sql);
cmp_ok($before, '>', 200, "pool: $before dirty buffers before");
is($n, $before, 'pool: pg_uring_flush() wrote every one of them');
is($after, 0, 'pool: no dirty buffer left in the pool');
is($writes, $n, 'pool: buffer_writes grew by the count returned');

# ---------------------------------------------------------------------------
# 5. sync => true
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', q{UPDATE t SET v = v || 's' WHERE id % 4 = 1});
my $files = $node->safe_psql(
	'postgres', q{
	SELECT count(DISTINCT (relfilenode, relforknumber, relblocknumber / 131072))
	  FROM pg_buffercache WHERE isdirty AND relfilenode = pg_relation_filenode('t')});
cmp_ok($files, '>=', 1, "sync: the dirty buffers of t are in $files segment file(s)");
my (undef, $sd) = flush_rel_checked('sync table', 't', sync => 1);
# (a segment is fdatasynced once per fd opened on it: at least once each)
cmp_ok($sd->{drained_writes}, '>=', $files,
	"sync table: every segment file written fdatasynced behind the drain barrier ($sd->{drained_writes} fdatasyncs)");

$node->safe_psql(
	'postgres', q{
	UPDATE t SET v = v || 'S' WHERE id % 4 = 2;
	UPDATE tt SET payload = payload || 'S' WHERE id % 4 = 2;
	UPDATE u SET v = v || 'S' WHERE id % 4 = 2;
});
my $s0 = wr_stats($node);
($before, $n, $after) = (split /\n/,
	$node->safe_psql('postgres', $pool_sql =~ s/pg_uring_flush\(\)/pg_uring_flush(NULL, true)/r))[1..3];
my $d = wr_delta($s0, wr_stats($node));
cmp_ok($before, '>', 100, "sync pool: $before dirty buffers before");
is($n, $before, 'sync pool: every one written');
is($after, 0, 'sync pool: no dirty buffer left');
cmp_ok($d->{drained_writes}, '>=', 3, "sync pool: $d->{drained_writes} segment files fdatasynced behind the barrier");
is($d->{buffer_write_failures} + $d->{errors} + $d->{cancelled}, 0, 'sync pool: nothing failed');

# ---------------------------------------------------------------------------
# 6. what was written is what recovery reads
# ---------------------------------------------------------------------------
$node->safe_psql(
	'postgres', q{
	UPDATE t SET v = v || 'last' WHERE id % 10 = 3;
	UPDATE tt SET payload = payload || 'last' WHERE id % 10 = 3;
	DELETE FROM t WHERE id % 17 = 0;
});
# read everything once first: the reads set hint bits and prune, which
# dirties pages; what pg_uring_flush then writes is final
my %expected = (t => $t_digest->(), tt => $tt_digest->());
$node->safe_psql('postgres',
	'SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM t WHERE id > 0; SELECT count(*) FROM tt WHERE id > 0');
my $s1 = wr_stats($node);
cmp_ok($node->safe_psql('postgres', 'SELECT pg_uring_flush()'), '>', 100,
	'durability: the last changes flushed through pg_uring');
is(wr_delta($s1, wr_stats($node))->{buffer_write_failures}, 0, 'durability: no write failed');
is($t_digest->(), $expected{t}, 'durability: t reads the same');
is($tt_digest->(), $expected{tt}, 'durability: tt reads the same');
# nothing is dirty, so this checkpoint writes no buffer: after it, recovery
# replays nothing of t or tt and reads what pg_uring wrote
# (PostgreSQL 17 moved the checkpointer's counters to pg_stat_checkpointer)
my $bgw_sql =
  $node->pg_version >= 17
  ? 'SELECT num_requested, buffers_written FROM pg_stat_checkpointer'
  : 'SELECT checkpoints_req, buffers_checkpoint FROM pg_stat_bgwriter';
my ($req0, $bufs0) = split /\|/, $node->safe_psql('postgres', $bgw_sql);
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_buffercache WHERE isdirty; CHECKPOINT'),
	0, 'durability: nothing dirty before the checkpoint');
# the checkpointer reports its counters just after it lets CHECKPOINT return
my ($req1, $bufs1);
ok( pgu_poll(sub {
		($req1, $bufs1) = split /\|/, $node->safe_psql('postgres', $bgw_sql);
		$req1 > $req0;
	}),
	'durability: the checkpoint is counted');
is($bufs1 - $bufs0, 0, 'durability: the checkpoint wrote no shared buffer');
my $offset = -s $node->logfile;
$node->stop('immediate');
$node->start;
is($t_digest->(), $expected{t}, 'durability: t after an immediate stop equals what was committed');
is($tt_digest->(), $expected{tt}, 'durability: tt (TOAST) equals what was committed');
is($node->safe_psql('postgres', 'SELECT count(*) FROM u'), 0,
	'durability: the unlogged table was reset by crash recovery');
wr_amcheck($node, 'durability', [ 't', 'tt' ], [ 't_pkey', 'tt_pkey' ]);
is($node->safe_psql('postgres',
		'SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM t WHERE id > 0'),
	(split /:/, $expected{t})[0], 'durability: the index finds every row');
wr_log_clean($node, 'durability', $offset);

# ---------------------------------------------------------------------------
# 7. permissions and refused relations
# ---------------------------------------------------------------------------
my ($rc, $out, $err) = pgu_psql($node, "SELECT pg_uring_flush('t')", extra_params => [ '-U', 'plain' ]);
like($err, qr/ERROR:\s+42501: permission denied for function pg_uring_flush/,
	'a plain role may not flush a table');
($rc, $out, $err) = pgu_psql($node, 'SELECT pg_uring_flush()', extra_params => [ '-U', 'plain' ]);
like($err, qr/ERROR:\s+42501: permission denied for function pg_uring_flush/,
	'a plain role may not flush the pool');
($rc, $out, $err) = pgu_psql($node, 'SET pg_uring.test_write_delay = 10', extra_params => [ '-U', 'plain' ]);
like($err, qr/ERROR:\s+42501: permission denied to set parameter "pg_uring.test_write_delay"/,
	'a plain role may not set pg_uring.test_write_delay');

($rc, $out, $err) = pgu_psql($node,
	"UPDATE t SET v = v || 'cp' WHERE id < 5000; SELECT pg_uring_flush('t'); SELECT pg_uring_flush();",
	extra_params => [ '-U', 'cp' ]);
my ($n_cp) = split /\n/, $out // '';
is($err, '', 'a member of pg_checkpoint may flush');
cmp_ok($n_cp // 0, '>', 10, "pg_checkpoint member: pg_uring_flush('t') wrote $n_cp buffers");
is(wr_dirty($node, 't', toast => 1), 0, 'pg_checkpoint member: t is clean afterwards');

($rc, $out, $err) = pgu_psql($node,
	q{CREATE TEMP TABLE tmp AS SELECT g FROM generate_series(1, 1000) g; SELECT pg_uring_flush('tmp')});
like($err, qr/ERROR:\s+0A000: cannot flush temporary relation "tmp" through pg_uring/,
	'a temporary table is refused with 0A000');
($rc, $out, $err) = pgu_psql($node,
	q{CREATE VIEW tv AS SELECT * FROM t; SELECT pg_uring_flush('tv')});
like($err, qr/ERROR:\s+42809: relation "tv" has no storage/, 'a view is refused with 42809');
is($node->safe_psql('postgres', "SELECT pg_uring_flush('t')"), 0,
	'flushing a clean table writes nothing');

is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'), 0, 'no IO slot left in use');
wr_log_clean($node, 'whole run', 0);
$node->stop;
done_testing();
