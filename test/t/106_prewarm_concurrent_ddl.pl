
# Prewarm against concurrent TRUNCATE / DROP, and two prewarms of the same
# table at once.
#
# 1. A prewarm of t paused before block 300 (pg_uring.test_pause =
#    'claim:300', the same barrier in both IO methods); session B runs TRUNCATE t, then
#    (after refilling) DROP TABLE t.  B waits for A's lock (seen in
#    pg_stat_activity), A completes without error returning the number of
#    blocks, then B succeeds; t reads as empty (or is gone) and no buffer of
#    the old relfilenodes (table and index) is left.
# 2. Unslowed prewarm and TRUNCATE started together, several rounds after
#    restarts: A returns 0 or the number of blocks (whoever got the lock
#    first), nothing fails, no buffer of the old relfilenode is left.
# 3. Two sessions prewarming the same table at once (overlapping ranges,
#    full ranges, opposite block lists), after restarts: both succeed, the
#    sum of their returns is the number of blocks (each block read once),
#    every block is cached and the data is right.  zero_page_fills (zero
#    pages already pinned by the other session, filled synchronously) is
#    reported.  A third session reading through core at the same time gets
#    the right data.
# 4. amcheck on the table and its index afterwards.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use List::Util qw(shuffle);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;
use PgUringPrewarm;

# ---------------------------------------------------------------------------
# helpers (local to this file)
# ---------------------------------------------------------------------------
# valid buffers of a relfilenode in this database (any fork)
sub pw_nbuffers_of_filenode
{
	my ($node, $filenode) = @_;
	return $node->safe_psql(
		'postgres', qq{
		SELECT count(*) FROM pg_buffercache
		 WHERE relfilenode = $filenode
		   AND reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())});
}

my $nrows = 120000;
my $digest_sql = q{SELECT count(*) || ':' || md5(string_agg(id || ':' || h, ',' ORDER BY id)) FROM t};

# (re)create and fill t; returns (nblocks, table filenode, index filenode)
sub fill_table
{
	my ($node, $rows, $salt) = @_;
	$node->safe_psql(
		'postgres', qq{
		CREATE TABLE IF NOT EXISTS t (id int NOT NULL, h text NOT NULL);
		CREATE UNIQUE INDEX IF NOT EXISTS t_idx ON t (id);
		INSERT INTO t SELECT g, repeat(md5(g::text || '$salt'), 2) FROM generate_series(1, $rows) g;
		VACUUM (FREEZE) t;
		CHECKPOINT;
	});
	return split /\|/,
	  $node->safe_psql('postgres',
		"SELECT pg_relation_size('t') / 8192, pg_relation_filenode('t'), pg_relation_filenode('t_idx')"
	  );
}

sub expected_digest
{
	my ($node, $rows, $salt) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) || ':' || md5(string_agg(g || ':' || repeat(md5(g::text || '$salt'), 2), ',' ORDER BY g)) FROM generate_series(1, $rows) g"
	);
}

# ---------------------------------------------------------------------------
# setup
# ---------------------------------------------------------------------------
my $node = pw_node('concurrent_ddl', 'pg_uring.rings' => '1');
pgu_start($node);
$node->safe_psql('postgres', 'CREATE EXTENSION pg_buffercache');

# ---------------------------------------------------------------------------
# 1. slow prewarm vs TRUNCATE, then vs DROP
# ---------------------------------------------------------------------------
for my $ddl ('TRUNCATE t', 'DROP TABLE t')
{
	my ($nblocks, $tnode, $inode) = fill_table($node, 2 * $nrows, $ddl);
	cmp_ok($nblocks, '>', 8 * 256, "$ddl: t has $nblocks blocks");
	$node->restart;

	my $a = pgu_session($node, 'prewarmer');
	my $b = pgu_session($node, 'ddl');
	$a->query("SET pg_uring.test_pause = 'claim:300'");
	my $off = -s $node->logfile;
	pgu_pause_set($node);
	$a->begin("SELECT pg_uring_prewarm('t')");
	ok(pgu_wait_pause($node, 'prewarmer', 'claim (block 300)', $off),
		"$ddl: A's prewarm is paused before block 300");
	ok(!$a->done, "$ddl: A still running");
	$b->begin($ddl);
	ok(pgu_poll(sub { pw_wait_event($node, $b->pid) =~ /^Lock:/ || $b->done }),
		"$ddl: B waits for a lock");
	ok(!$b->done, "$ddl: B has not finished while A runs");
	pgu_pause_release($node);
	my ($out, $err) = $a->finish;
	is($out, $nblocks, "$ddl: A completes and returns the number of blocks");
	is($err, '', "$ddl: A: no error");
	($out, $err) = $b->finish;
	is($err, '', "$ddl: B succeeds after A");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'), 0,
		"$ddl: no IO left");
	is(pw_nbuffers_of_filenode($node, $tnode), 0,
		"$ddl: no buffer of the old table relfilenode $tnode");
	is(pw_nbuffers_of_filenode($node, $inode), 0,
		"$ddl: no buffer of the old index relfilenode $inode");
	if ($ddl =~ /TRUNCATE/)
	{
		is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), 0, "$ddl: t is empty");
	}
	else
	{
		is($node->safe_psql('postgres', "SELECT to_regclass('t') IS NULL"), 't', "$ddl: t is gone");
	}
	$a->quit;
	$b->quit;
}

# ---------------------------------------------------------------------------
# 2. prewarm and TRUNCATE started together, unslowed
# ---------------------------------------------------------------------------
my %outcome;
for my $round (1 .. 4)
{
	my ($nblocks, $tnode, $inode) = fill_table($node, $nrows / 2, "r$round");
	$node->restart;
	my $a = pgu_session($node, 'prewarmer');
	my $b = pgu_session($node, 'truncater');
	# alternate who is sent first
	if ($round % 2)
	{
		$a->begin("SELECT pg_uring_prewarm('t'), pg_uring_prewarm('t_idx')");
		$b->begin('TRUNCATE t');
	}
	else
	{
		$b->begin('TRUNCATE t');
		$a->begin("SELECT pg_uring_prewarm('t'), pg_uring_prewarm('t_idx')");
	}
	my ($aout, $aerr) = $a->finish;
	my ($bout, $berr) = $b->finish;
	is($aerr, '', "round $round: prewarm: no error");
	is($berr, '', "round $round: TRUNCATE: no error");
	my ($ta, $ia) = split /\|/, ($aout // '');
	ok(defined $ta && ($ta == 0 || $ta == $nblocks),
		"round $round: prewarm of t returned 0 or $nblocks (got " . ($ta // 'nothing') . ')');
	$outcome{ defined $ta && $ta == 0 ? 'truncate first' : 'prewarm first' }++;
	is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), 0, "round $round: t is empty");
	is(pw_nbuffers_of_filenode($node, $tnode), 0,
		"round $round: no buffer of the old relfilenode");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'), 0,
		"round $round: no IO left");
	$a->quit;
	$b->quit;
}
note 'prewarm vs TRUNCATE outcomes: '
  . join(', ', map { "$_: $outcome{$_}" } sort keys %outcome);

# the table still works after all that: refill, read back through pg_uring
{
	$node->safe_psql('postgres', 'TRUNCATE t');
	my ($nblocks) = fill_table($node, $nrows, 'final');
	$node->restart;
	is($node->safe_psql('postgres', "SELECT pg_uring_prewarm('t')"), $nblocks,
		'refilled t: prewarm reads every block');
	is($node->safe_psql('postgres', $digest_sql), expected_digest($node, $nrows, 'final'),
		'refilled t: data right');
}

# ---------------------------------------------------------------------------
# 3. two prewarms of the same table at once
# ---------------------------------------------------------------------------
my $nblocks  = pw_nblocks($node, 't');
my $expected = expected_digest($node, $nrows, 'final');
my ($third, $two_third) = (int($nblocks / 3), int(2 * $nblocks / 3));
my @fwd = (0 .. $nblocks - 1);
my $fwd = 'ARRAY[' . join(',', @fwd) . ']::int8[]';
my $rev = 'ARRAY[' . join(',', reverse @fwd) . ']::int8[]';
srand(106);
my $shuf1 = 'ARRAY[' . join(',', shuffle @fwd) . ']::int8[]';
my $shuf2 = 'ARRAY[' . join(',', shuffle @fwd) . ']::int8[]';
my @pairs = (
	[ "overlapping ranges", "SELECT pg_uring_prewarm('t', 'main', 0, $two_third)",
		"SELECT pg_uring_prewarm('t', 'main', $third, NULL)" ],
	[ "overlapping ranges, depth 4",
		"SET pg_uring.prewarm_depth = 4; SELECT pg_uring_prewarm('t', 'main', 0, $two_third)",
		"SET pg_uring.prewarm_depth = 4; SELECT pg_uring_prewarm('t', 'main', $third, NULL)" ],
	[ "full ranges", "SELECT pg_uring_prewarm('t')", "SELECT pg_uring_prewarm('t')" ],
	[ "full ranges, depth 1",
		"SET pg_uring.prewarm_depth = 1; SELECT pg_uring_prewarm('t')",
		"SET pg_uring.prewarm_depth = 1; SELECT pg_uring_prewarm('t')" ],
	[ "opposite lists", "SELECT pg_uring_prewarm_blocks('t', $fwd)",
		"SELECT pg_uring_prewarm_blocks('t', $rev)" ],
	[ "shuffled lists", "SELECT pg_uring_prewarm_blocks('t', $shuf1)",
		"SELECT pg_uring_prewarm_blocks('t', $shuf2)" ],);

my $fills = 0;
for my $pair (@pairs)
{
	my ($label, $qa, $qb) = @$pair;
	$node->restart;
	$node->safe_psql('postgres', 'SELECT pg_uring_reset_stats()');
	my $a = pgu_session($node, 'pw_a');
	my $b = pgu_session($node, 'pw_b');
	$a->begin($qa);
	$b->begin($qb);
	my ($ao, $ae) = $a->finish;
	my ($bo, $be) = $b->finish;
	is($ae . $be, '', "$label: both prewarms succeed");
	($ao) = (split /\n/, $ao // '')[-1];
	($bo) = (split /\n/, $bo // '')[-1];
	is(($ao // 0) + ($bo // 0), $nblocks,
		"$label: returns add up to the number of blocks (" . ($ao // '?') . ' + ' . ($bo // '?') . ')');
	is(pw_ncached($node, 't'), $nblocks, "$label: every block cached");
	my $s = pw_stats($node);
	is($s->{buffer_read_failures}, 0, "$label: no read failures");
	is($s->{in_flight}, 0, "$label: nothing in flight");
	note "$label: zero_page_fills = $s->{zero_page_fills}, buffer_ios_helped = $s->{buffer_ios_helped}, "
	  . "reaped_by_other = $s->{reaped_by_other}, buffer_blocks = $s->{buffer_blocks}";
	$fills += $s->{zero_page_fills};
	is($s->{buffer_blocks} + $s->{zero_page_fills}, $nblocks,
		"$label: blocks read through the rings + filled synchronously = number of blocks");
	is($node->safe_psql('postgres', $digest_sql), $expected, "$label: data right");
	$a->quit;
	$b->quit;
}
note "zero_page_fills over all pairs: $fills";

# two prewarms and a core reader at once
for my $round (1 .. 2)
{
	$node->restart;
	my $a = pgu_session($node, 'pw_a');
	my $b = pgu_session($node, 'pw_b');
	my $c = pgu_session($node, 'core_c');
	$c->begin($digest_sql);
	$a->begin("SELECT pg_uring_prewarm('t')");
	$b->begin("SELECT pg_uring_prewarm_blocks('t', $rev)");
	my ($co, $ce) = $c->finish;
	my ($ao, $ae) = $a->finish;
	my ($bo, $be) = $b->finish;
	is($ae . $be . $ce, '', "with a core reader, round $round: no errors");
	is($co, $expected, "with a core reader, round $round: core reads the right data");
	cmp_ok($ao + $bo, '<=', $nblocks, "with a core reader, round $round: no block read twice ($ao + $bo)");
	is(pw_ncached($node, 't'), $nblocks, "with a core reader, round $round: every block cached");
	is($node->safe_psql('postgres', $digest_sql), $expected,
		"with a core reader, round $round: data right afterwards");
	$a->quit;
	$b->quit;
	$c->quit;
}

# ---------------------------------------------------------------------------
# 4. amcheck
# ---------------------------------------------------------------------------
pw_amcheck($node);
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'), 0, 'no IO left at the end');

$node->stop;
done_testing();
