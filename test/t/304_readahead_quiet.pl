# A scan that finds everything cached stops looking ahead ("quiet": after
# 64 cached blocks in a row, no buffer lookups and no drains per block), and
# must look ahead again as soon as core has to read a block itself.
#
# Table q, its index prewarmed; the heap cached in stripes (every block of
# the cached stripes read in by pg_uring_prewarm, the others cold), read by
# a bitmap heap scan and by an index scan with read-ahead on and off:
#  - the results are core's;
#  - with the first half cached and the second cold, the scan reads ahead
#    most of the second half (it went quiet in the first half: without the
#    way back it would read nothing ahead at all);
#  - with stripes of 200 cached and 200 cold blocks, it reads ahead most of
#    every cold stripe;
#  - all cold: it reads ahead nearly the whole table (the control).

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;
use PgUringPrewarm;
use PgUringWrite qw(wr_log_clean);

my $node = pw_node('ra_quiet', shared_buffers => '64MB', 'pg_uring.reaper_delay' => '1');
pgu_start($node);
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION pg_buffercache;
	CREATE TABLE q (id int NOT NULL, pad text NOT NULL);
	INSERT INTO q SELECT g, repeat(md5(g::text), 6) FROM generate_series(1, 40000) g;
	CREATE INDEX q_id ON q (id);
	VACUUM (FREEZE, ANALYZE) q;
	CHECKPOINT;
});
my $nblocks = pw_nblocks($node, 'q');
ok($nblocks >= 1000 && $nblocks < 4000, "q has $nblocks blocks");
my $offset = -s $node->logfile;

my %plan = (
	bitmap => [ 'SET enable_seqscan = off; SET enable_indexscan = off;',
		qr/Bitmap Heap Scan on q/ ],
	index => [ 'SET enable_seqscan = off; SET enable_bitmapscan = off;',
		qr/Index Scan using q_id on q/ ]);
my $query = 'SELECT count(*), sum(hashtext(pad)) FROM q WHERE id BETWEEN 1 AND 40000';
my $expected = $node->safe_psql('postgres', "SET pg_uring.readahead = off; $query");
like($expected, qr/^40000\|-?\d+$/, 'core reads every row');

# a restarted server with q's index and the heap blocks in @cached in the pool
sub cold_but
{
	my (@cached) = @_;
	$node->restart;
	$node->safe_psql('postgres', "SELECT pg_uring_prewarm('q_id')");
	$node->safe_psql('postgres',
		'SELECT pg_uring_prewarm_blocks(\'q\', ARRAY[' . join(',', @cached) . ']::int8[])')
	  if @cached;
	$node->safe_psql('postgres', 'SELECT pg_uring_reset_stats()');
	return;
}

for my $kind ('bitmap', 'index')
{
	my ($set, $plan_re) = @{ $plan{$kind} };
	like($node->safe_psql('postgres', "$set EXPLAIN (COSTS OFF) $query"), $plan_re,
		"$kind: the plan");
	my @cases = (
		[ 'all cold', [], $nblocks ],
		[ 'first half cached', [ 0 .. int($nblocks / 2) - 1 ], $nblocks - int($nblocks / 2) ],
		[ 'stripes of 200 cached and 200 cold',
			[ grep { int($_ / 200) % 2 == 0 } 0 .. $nblocks - 1 ],
			scalar(grep { int($_ / 200) % 2 == 1 } 0 .. $nblocks - 1) ]);
	for my $c (@cases)
	{
		my ($what, $cached, $cold) = @$c;
		cold_but(@$cached);
		is(pw_ncached($node, 'q'), scalar(@$cached), "$kind, $what: " . scalar(@$cached) . ' blocks of q cached');
		is($node->safe_psql('postgres', "$set $query"), $expected, "$kind, $what: the result is core's");
		my $ra = pw_readahead($node);
		note "$kind, $what: $cold cold blocks, $ra->{reads} read ahead, $ra->{readahead_used} used";
		cmp_ok($ra->{reads}, '>=', int($cold * 0.8),
			"$kind, $what: read ahead at least 80% of the $cold cold blocks ($ra->{reads})");
		cmp_ok($ra->{reads}, '<=', $cold, "$kind, $what: read ahead no cached block ($ra->{reads} <= $cold)");
	}
}

is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_buffercache WHERE pinning_backends > 0'),
	0, 'no buffer is left pinned');
wr_log_clean($node, 'readahead quiet', $offset);
$node->stop;
done_testing();
