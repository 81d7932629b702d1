
# Concurrent sessions completing each other's IOs on a shared ring.
#
# 1. pg_uring.rings = 1, the reaper stopped (SIGSTOP: it always runs, there
#    is no setting to turn it off): sessions whose issuer does not reap
#    (pg_uring.test_hold_reap) stay blocked with their IOs visible in
#    pg_uring_ios until another session's own IO drains the ring; they then
#    return correct results reaped by 'other'.
# 2. With the reaper running again: a held issuer is completed by the
#    reaper alone.
# 3. Four sessions doing many IOs at once on one ring (one of them holding
#    its reaps): every session gets correct results and the ring's totals
#    add up.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;

my $node = pgu_node('reap', 'pg_uring.rings' => 1);
pgu_start($node);

my ($path, $size) = pgu_data_file($node);
cmp_ok($size, '>=', 16 * 8192, "data file $path has at least 16 blocks");

my $s = pgu_stats($node);
is($s->{rings}, 1, 'one shared ring');
my @reaper = pgu_children($node, qr/pg_uring reaper/);
is(scalar(@reaper), 1, 'the reaper process is running');
my ($rc_guc, $o_guc, $e_guc) = pgu_psql($node, 'SHOW pg_uring.reaper');
like($e_guc, qr/unrecognized configuration parameter "pg_uring.reaper"/,
	'the reaper cannot be switched off: pg_uring.reaper is no setting');
kill 'STOP', $reaper[0];
pgu_sql_helpers($node);

# ---------------------------------------------------------------------------
# 1. held issuers are completed by another session's drain
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', 'SELECT pg_uring_reset_stats()');

my $a = pgu_session($node, 'held_a');
my $c = pgu_session($node, 'held_c');
my ($apid, $cpid) = ($a->pid, $c->pid);

$a->query('SET pg_uring.test_hold_reap = on');
$c->query('SET pg_uring.test_hold_reap = on');

$a->begin(
	"SELECT seq || ':' || op || ':' || result || ':' || reaped_by || ':' || completion_order
	   FROM pg_uring_batch(ARRAY['nop', 'nop', 'nop', 'read $path 8192 8192'])
	  ORDER BY seq");

ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) FROM pg_uring_ios WHERE owner_pid = $apid AND state = 'submitted'",
		'4'),
	'session A has 4 IOs submitted and unreaped');
is( $node->safe_psql(
		'postgres',
		"SELECT op || ':' || count(*) FROM pg_uring_ios WHERE owner_pid = $apid GROUP BY op ORDER BY op"
	),
	"nop:3\nread:1",
	'pg_uring_ios shows A\'s three nops and one read');
like(
	$node->safe_psql(
		'postgres',
		"SELECT target || '|' || ring FROM pg_uring_ios WHERE owner_pid = $apid AND op = 'read'"
	),
	qr/offset 8192 length 8192\|0$/,
	'the read is described with its offset and length, on ring 0');

# C reads 8 blocks with pg_uring_read_file, also held
# (one call only: nobody would complete a second one)
$c->begin(
	"WITH r AS MATERIALIZED (SELECT pg_uring_read_file('$path', 8192, 65536) AS d)
	 SELECT d = pg_read_binary_file('$path', 8192, 65536), length(d) FROM r");
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) FROM pg_uring_ios WHERE owner_pid = $cpid AND state = 'submitted' AND op = 'read'",
		'8'),
	'session C has 8 reads submitted and unreaped');

# both really wait (in pg_uring's condition variable sleep, not on a lock)
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE pid IN ($apid, $cpid)
		    AND state = 'active' AND wait_event_type = 'Extension'",
		'2'),
	'A and C are waiting in pg_uring');
ok(!$a->done, 'A has not returned');
ok(!$c->done, 'C has not returned');

$s = pgu_stats($node);
is($s->{in_flight}, 12, 'stats: 12 IOs in flight');
is($s->{submitted}, 12, 'stats: 12 submitted');
is($s->{completed}, 0,  'stats: none completed while held');

# B's own nop drains the shared ring, completing A's and C's IOs too.  A
# read that missed the page cache may post its completion only after B's
# drain: then B issues another nop (counted), never more than a few.
my $b_nops = 0;
my $b_ok   = 1;
for (1 .. 10)
{
	$b_nops++;
	$b_ok = 0
	  unless $node->safe_psql('postgres',
		"SELECT string_agg(op || ':' || result || ':' || reaped_by, ',') FROM pg_uring_batch(ARRAY['nop'])"
	  ) eq 'nop:0:issuer';
	last if $a->wait_done(2) && $c->wait_done(2);
}
ok($b_ok, "session B ran its own nop ($b_nops time(s))");
ok($a->done && $c->done, 'A and C returned after B drained the ring');

my $aout = $a->finish;
my @rows = split /\n/, ($aout // '');
is(scalar(@rows), 4, 'A returned 4 rows');
my (%orders, $ok_rows);
$ok_rows = 0;
for my $r (@rows)
{
	my ($seq, $op, $res, $by, $order) = split /:/, $r;
	my $want = $op eq 'read' ? 8192 : 0;
	$ok_rows++ if $res == $want && $by eq 'other';
	$orders{$order}++;
}
is($ok_rows, 4, 'all of A\'s IOs succeeded and were reaped by another backend')
  or diag $aout;
is(join(',', sort keys %orders), '1,2,3,4', 'completion orders are 1..4');

is($c->finish, "t|65536",
	'C read 8 blocks, reaped by another backend, identical to pg_read_binary_file'
);

is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'),
	'0', 'no IO slot in use afterwards');
$s = pgu_stats($node);
is($s->{in_flight},        0,  'stats: nothing in flight');
is($s->{submitted},        12 + $b_nops, 'stats: all IOs submitted');
is($s->{completed},        12 + $b_nops, 'stats: all IOs completed');
is($s->{reaped_by_other},  12, 'stats: A\'s and C\'s 12 IOs reaped by other');
is($s->{reaped_by_issuer}, $b_nops, 'stats: B\'s nops reaped by their issuer');
is($s->{reaped_by_reaper}, 0,  'stats: nothing reaped by a reaper');
is($s->{errors},           0,  'stats: no errors');

# the held sessions keep working
is( $a->query(
		"SET pg_uring.test_hold_reap = off;
		 SELECT string_agg(reaped_by, ',') FROM pg_uring_batch(ARRAY['nop', 'nop'])"
	),
	'issuer,issuer',
	'A, no longer held, reaps its own IOs');
$a->quit;
$c->quit;

# ---------------------------------------------------------------------------
# 2. the reaper completes a held issuer's IOs
# ---------------------------------------------------------------------------
kill 'CONT', $reaper[0];
ok(pgu_poll(sub { pgu_children($node, qr/pg_uring reaper/) == 1 }),
	'the reaper process is running');
$node->safe_psql('postgres', 'SELECT pg_uring_reset_stats()');

is( $node->safe_psql(
		'postgres',
		"SET pg_uring.test_hold_reap = on;
		 SELECT string_agg(op || ':' || result || ':' || reaped_by, ',' ORDER BY seq)
		   FROM pg_uring_batch(ARRAY['nop', 'read $path 0 8192', 'nop'])",
		timeout => $PgUringTest::TIMEOUT),
	'nop:0:reaper,read:8192:reaper,nop:0:reaper',
	'a held batch completes on its own, reaped by the reaper');
is( $node->safe_psql(
		'postgres',
		"SET pg_uring.test_hold_reap = on;
		 SELECT pg_uring_read_file('$path', 0, $size) = pg_read_binary_file('$path')",
		timeout => $PgUringTest::TIMEOUT),
	't',
	'a held pg_uring_read_file of the whole file is correct');
$s = pgu_stats($node);
my $nblocks = int(($size + 8191) / 8192);
is($s->{reaped_by_reaper}, 3 + $nblocks, 'stats: every IO reaped by the reaper');
is($s->{reaped_by_issuer} + $s->{reaped_by_other},
	0, 'stats: none by issuer or other');
is($s->{in_flight}, 0, 'stats: nothing in flight');

# ---------------------------------------------------------------------------
# 3. four sessions doing many IOs at once on the one ring
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', 'SELECT pg_uring_reset_stats()');

# per session: batches, nop bench, read bench, pg_uring_read_file checks
my @work = (
	{ iters => 150, nop_ios => 20000, read_ios => 4000, files => 20, hold => 0 },
	{ iters => 150, nop_ios => 20000, read_ios => 4000, files => 20, hold => 0 },
	{ iters => 150, nop_ios => 20000, read_ios => 4000, files => 20, hold => 0 },
	# held: every completion must come from another session or the reaper
	{ iters => 20, nop_ios => 300, read_ios => 100, files => 3, hold => 1 },);
my @batch = ('nop', "read $path 0 8192", 'nop+link', "read $path 16384",
	"read $path 40960 100", 'nop');
my $batch_sql = join(', ', map { "'$_'" } @batch);
my $batch_expect = 'ARRAY[0, 8192, 0, 8192, 100, 0]';

my @sessions;
my $expected_min = 0;
my $held_ios     = 0;
for my $i (0 .. $#work)
{
	my $w    = $work[$i];
	my $sess = pgu_session($node, "worker$i");
	$sess->query('SET pg_uring.test_hold_reap = on') if $w->{hold};
	push @sessions, $sess;
	my $ios = $w->{iters} * @batch + $w->{nop_ios} + $w->{read_ios};
	$expected_min += $ios;
	$held_ios = $ios if $w->{hold};
}
for my $i (0 .. $#work)
{
	my $w = $work[$i];
	$sessions[$i]->begin(
		"SELECT
		   (SELECT bad || '/' || total
		      FROM pgu_repeat_batch(ARRAY[$batch_sql], $batch_expect, $w->{iters})),
		   (SELECT ios FROM pg_uring_bench('nop', $w->{nop_ios}, 8)),
		   (SELECT ios FROM pg_uring_bench('read', $w->{read_ios}, 4, '$path')),
		   (SELECT count(*) FILTER (WHERE pg_uring_read_file('$path', (g % 7) * 8192, 40000 + g * 1000)
		                   IS DISTINCT FROM pg_read_binary_file('$path', (g % 7) * 8192, 40000 + g * 1000))
		           || '/' || count(*)
		      FROM generate_series(1, $w->{files}) g)");
}
for my $i (0 .. $#work)
{
	my $w = $work[$i];
	my ($out, $err) = $sessions[$i]->finish;
	is( $out,
		sprintf('0/%d|%d|%d|0/%d',
			$w->{iters} * @batch,
			$w->{nop_ios}, $w->{read_ios}, $w->{files}),
		"worker$i: all batch results right, benches complete, file reads identical"
	) or diag "stderr: $err";
	is($err, '', "worker$i: no error or warning");
	$sessions[$i]->quit;
}

is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'),
	'0', 'no IO slot in use after the concurrent run');
$s = pgu_stats($node);
note explain $s;
is($s->{in_flight}, 0, 'stats: nothing in flight');
is($s->{completed}, $s->{submitted}, 'stats: completed = submitted');
cmp_ok($s->{submitted}, '>=', $expected_min,
	"stats: at least the $expected_min IOs issued were submitted");
is( $s->{reaped_by_issuer} + $s->{reaped_by_other} + $s->{reaped_by_reaper},
	$s->{completed}, 'stats: every completion was reaped by exactly one process');
cmp_ok(
	$s->{reaped_by_other} + $s->{reaped_by_reaper},
	'>=', $held_ios,
	'stats: the held session\'s IOs were reaped by others');
is($s->{errors},    0, 'stats: no errors');
is($s->{cancelled}, 0, 'stats: nothing cancelled');
is($s->{linked}, 3 * 150 + 20, 'stats: one linked IO per batch');

ok(!$node->log_contains(qr/PANIC|server process .* was terminated|TRAP/),
	'no crash in the server log');

$node->stop;
done_testing();
