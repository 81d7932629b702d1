
# pg_uring_prewarm and pg_uring_prewarm_blocks read the right data.
#
# A table of ~30 MB with a btree index, data checksums on.  After a restart
# (nothing cached) the asynchronous prewarm of the table and of the index
# must
#   - return the number of blocks of each (nothing was cached),
#   - leave every block valid in shared_buffers (pg_buffercache),
#   - leave no IO behind (pg_uring_ios, in_flight),
#   - produce pages whose contents are those core reads: the same digest of
#     the table (seq scan) and of the index (index-only scan) as after a
#     plain restart, with EXPLAIN (BUFFERS) showing only shared hits,
#   - count its reads in EXPLAIN (BUFFERS) as shared reads.
# A block range and a shuffled block list with duplicates read exactly the
# blocks asked for, and the list's distinct count is returned.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use List::Util qw(shuffle uniq);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;
use PgUringPrewarm;

# ---------------------------------------------------------------------------
# helpers (local to this file)
# ---------------------------------------------------------------------------

# digest of the heap (seq scan) and of the index (index-only scan)
sub pw_digests
{
	my ($node) = @_;
	my $heap = $node->safe_psql(
		'postgres', q{
		SET enable_indexscan = off; SET enable_bitmapscan = off;
		SET enable_indexonlyscan = off;
		SELECT count(*) || ':' || md5(string_agg(id || ':' || h, ',' ORDER BY id)) FROM t});
	my $index = $node->safe_psql(
		'postgres', q{
		SET enable_seqscan = off; SET enable_bitmapscan = off;
		SELECT count(*) || ':' || md5(string_agg(id::text, ',' ORDER BY id)) FROM t WHERE id > 0});
	return ($heap, $index);
}

# ---------------------------------------------------------------------------
# setup
# ---------------------------------------------------------------------------
my $node = pw_node('prewarm_data');
pgu_start($node);
my $nblocks = pw_create_t($node, 300000, index => 1, analyze => 1);
is($node->safe_psql('postgres', 'SHOW data_checksums'), 'on', 'data checksums are on');

my $nindex   = pw_nblocks($node, 't_idx');
my $expected = "300000:"
  . $node->safe_psql('postgres',
	"SELECT md5(string_agg(g || ':' || repeat(md5(g::text), 2), ',' ORDER BY g)) FROM generate_series(1, 300000) g"
  );
cmp_ok($nblocks * 8192, '>=', 20 * 1024 * 1024, "table has $nblocks blocks (>= 20 MB)");
note "index has $nindex blocks";

# reference digests, core reading after a plain restart
$node->restart;
my ($heap_ref, $index_ref) = pw_digests($node);
is($heap_ref, $expected, 'core reads the table as generated');
like($index_ref, qr/^300000:[0-9a-f]{32}$/, 'index-only scan sees every row');

# ---------------------------------------------------------------------------
# whole table and index
# ---------------------------------------------------------------------------
$node->restart;
$node->safe_psql('postgres', 'SELECT pg_uring_reset_stats()');
is(pw_ncached($node, 't'),     0, 'after restart no block of t is cached');
is(pw_ncached($node, 't_idx'), 0, 'after restart no block of t_idx is cached');

is($node->safe_psql('postgres', "SELECT pg_uring_prewarm('t')"),
	$nblocks, 'pg_uring_prewarm(t) returns the number of blocks');
is($node->safe_psql('postgres', "SELECT pg_uring_prewarm('t_idx')"),
	$nindex, 'pg_uring_prewarm(t_idx) returns the number of blocks');

is_deeply([ pw_cached_blocks($node, 't') ],
	[ 0 .. $nblocks - 1 ], 'every block of t is valid in shared_buffers');
is_deeply([ pw_cached_blocks($node, 't_idx') ],
	[ 0 .. $nindex - 1 ], 'every block of t_idx is valid in shared_buffers');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'),
	0, 'no IO left in pg_uring_ios');

my $s = pw_stats($node);
is($s->{in_flight}, 0, 'nothing in flight');
is($s->{buffer_blocks}, $nblocks + $nindex,
	'buffer_blocks counts every block read through the rings');
cmp_ok($s->{buffer_reads}, '<', $s->{buffer_blocks},
	'adjacent blocks were combined into fewer reads');
is($s->{buffer_read_failures}, 0, 'no read failures');
is($s->{errors}, 0, 'no IO errors');
cmp_ok($s->{submitted}, '>=', $s->{buffer_reads}, 'the reads were submitted to a ring');
is($s->{completed}, $s->{submitted}, 'every submitted IO completed');

is($node->safe_psql('postgres', "SELECT pg_uring_prewarm('t'), pg_uring_prewarm('t_idx')"),
	'0|0', 'a second prewarm finds everything cached');

# only shared hits for a seq scan and an index-only scan
my $plan = $node->safe_psql(
	'postgres', q{
	EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF)
	SELECT count(*), sum(length(h)) FROM t});
like($plan, qr/Seq Scan on t/, 'seq scan plan');
my ($hits) = $plan =~ /Buffers: shared hit=(\d+)/;
ok(defined $hits && $hits >= $nblocks, "seq scan: shared hit=" . ($hits // 'none'));
$plan =~ s/\nPlanning:.*//s;    # catalog reads while planning do not count
unlike($plan, qr/read=/, 'seq scan reads nothing: only shared hits') or note $plan;

$plan = $node->safe_psql(
	'postgres', q{
	SET enable_seqscan = off; SET enable_bitmapscan = off;
	EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF)
	SELECT count(*) FROM t WHERE id > 0});
like($plan, qr/Index Only Scan using t_idx/, 'index-only scan plan');
$plan =~ s/\nPlanning:.*//s;
unlike($plan, qr/read=/, 'index-only scan reads nothing: only shared hits') or note $plan;

my ($heap, $index) = pw_digests($node);
is($heap,  $heap_ref,  'table digest after prewarm equals the one read by core');
is($index, $index_ref, 'index digest after prewarm equals the one read by core');

# ---------------------------------------------------------------------------
# EXPLAIN (BUFFERS) counts prewarm's reads
# ---------------------------------------------------------------------------
$node->restart;
my $out = $node->safe_psql(
	'postgres', q{
	SELECT pg_uring_prewarm('t', 'main', 0, 0);
	EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF)
	SELECT pg_uring_prewarm('t');
});
my ($reads) = $out =~ /Buffers: shared (?:hit=\d+ )?read=(\d+)/;
is($reads, $nblocks - 1, 'EXPLAIN (BUFFERS) counts the blocks prewarm read as shared reads')
  or note $out;

# ---------------------------------------------------------------------------
# a block range
# ---------------------------------------------------------------------------
$node->restart;
my ($first, $last) = (int($nblocks / 3), int($nblocks / 3) + 299);
is($node->safe_psql('postgres', "SELECT pg_uring_prewarm('t', 'main', $first, $last)"),
	300, 'a range of 300 blocks returns 300');
is_deeply([ pw_cached_blocks($node, 't') ],
	[ $first .. $last ], 'exactly the blocks of the range are cached');
is($node->safe_psql('postgres', "SELECT pg_uring_prewarm('t', 'main', $first - 10, $last + 10)"),
	20, 'an overlapping wider range reads only the 20 missing blocks');

# ---------------------------------------------------------------------------
# a shuffled block list with duplicates
# ---------------------------------------------------------------------------
$node->restart;
srand(4242);
my @pick = grep { rand() < 0.4 } 0 .. $nblocks - 1;
my @list = shuffle(@pick, (shuffle @pick)[ 0 .. 49 ], $nblocks - 1, 0, $nblocks - 1);
my @distinct = sort { $a <=> $b } uniq @list;
my $array = 'ARRAY[' . join(',', @list) . ']::int8[]';
note scalar(@list) . " entries, " . scalar(@distinct) . " distinct blocks";

is($node->safe_psql('postgres', "SELECT pg_uring_prewarm_blocks('t', $array)"),
	scalar(@distinct), 'pg_uring_prewarm_blocks returns the number of distinct blocks');
is_deeply([ pw_cached_blocks($node, 't') ],
	\@distinct, 'exactly the listed blocks are cached');
is($node->safe_psql('postgres', "SELECT pg_uring_prewarm_blocks('t', $array)"),
	0, 'the same list again reads nothing');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'),
	0, 'no IO left in pg_uring_ios');

# the rest through core: the mix must give the same data
($heap, $index) = pw_digests($node);
is($heap, $heap_ref, 'table digest with listed blocks prewarmed equals core\'s');

# and the list on a freshly restarted server through the index too
$node->restart;
my @ilist = shuffle(0 .. $nindex - 1);
is( $node->safe_psql(
		'postgres',
		"SELECT pg_uring_prewarm_blocks('t_idx', ARRAY[" . join(',', @ilist) . "]::int8[])"),
	$nindex,
	'every index block in random order: returns the number of blocks');
($heap, $index) = pw_digests($node);
is($index, $index_ref, 'index digest after a shuffled prewarm equals core\'s');

$s = pw_stats($node);
is($s->{buffer_read_failures}, 0, 'no read failures overall');
is($s->{in_flight}, 0, 'nothing in flight at the end');

# ---------------------------------------------------------------------------
# structural checks
# ---------------------------------------------------------------------------
pw_amcheck($node);

$node->stop;
done_testing();
