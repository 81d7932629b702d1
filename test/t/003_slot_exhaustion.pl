
# The shared IO slot table running out: pg_uring.max_ios = 16 slots without
# a bounce page and pg_uring.bounce_buffers = 16 with one, the minimum of
# each (a batch with a file read and the read benchmark take slots with a
# page, NOP batches and the NOP benchmark slots without).
#
# 1. Five sessions each issuing batches of 13 IOs with file reads, NOP and
#    read benches at depth 12 and 16-block file reads at once: both classes
#    run out, they have to wait for slots, and all of them finish with
#    correct results; slot_waits counts the waits and no slot stays in use.
# 2. Deterministically: a held session owns 12 slots; a second session's
#    12-slot batch waits for slots, completes the held IOs while waiting,
#    and both finish.
# 3. A single request larger than the table fails cleanly (54000) and the
#    session keeps working.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;

my $node = pgu_node(
	'slots',
	'pg_uring.max_ios'        => 16,
	'pg_uring.bounce_buffers' => 16,
	'pg_uring.rings'          => 2);
pgu_start($node);
pgu_sql_helpers($node);
my ($path, $size) = pgu_data_file($node);
my $nblocks = int(($size + 8191) / 8192);
cmp_ok($nblocks, '>', 16, "data file has more blocks ($nblocks) than there are slots");
is($node->safe_psql('postgres', 'SHOW pg_uring.max_ios'), '16', 'max_ios is 16');
is($node->safe_psql('postgres', 'SHOW pg_uring.bounce_buffers'), '128kB', 'bounce_buffers is 16 pages');

# ---------------------------------------------------------------------------
# 1. concurrent sessions competing for 16 slots
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', 'SELECT pg_uring_reset_stats()');

my @ops = ((map { 'nop' } 1 .. 9), "read $path 0 8192",
	"read $path 24576 4096", 'nop+link', 'nop');
my $ops_sql    = join(', ', map { "'$_'" } @ops);
my $expect_sql = 'ARRAY[' . join(', ', (0) x 9, 8192, 4096, 0, 0) . ']';
my $nops       = scalar @ops;
my ($iters, $bench_ios, $files) = (100, 2000, 3);

my @sessions = map { pgu_session($node, "worker$_") } 1 .. 5;
for my $s (@sessions)
{
	$s->begin(
		"SELECT
		   (SELECT bad || '/' || total FROM pgu_repeat_batch(ARRAY[$ops_sql], $expect_sql, $iters)),
		   (SELECT ios FROM pg_uring_bench('nop', $bench_ios, 12)),
		   (SELECT ios FROM pg_uring_bench('read', $bench_ios, 12, '$path')),
		   (SELECT count(*) FILTER (WHERE pg_uring_read_file('$path', g * 8192, $size)
		                                = pg_read_binary_file('$path', g * 8192, $size))
		      FROM generate_series(0, $files - 1) g)");
}
for my $i (0 .. $#sessions)
{
	my ($out, $err) = $sessions[$i]->finish;
	is( $out,
		sprintf('0/%d|%d|%d|%d', $iters * $nops, $bench_ios, $bench_ios, $files),
		"worker$i: every batch result right, benches and file reads complete");
	is($err, '', "worker$i: no error or warning") or diag $err;
}
$_->quit for @sessions;

my $s = pgu_stats($node);
note explain $s;
cmp_ok($s->{slot_waits}, '>', 0, 'stats: backends had to wait for slots');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'),
	'0', 'no IO slot in use afterwards');
is($s->{in_flight}, 0, 'stats: nothing in flight');
is($s->{completed}, $s->{submitted}, 'stats: completed = submitted');
cmp_ok($s->{submitted}, '>=', 5 * ($iters * $nops + 2 * $bench_ios),
	'stats: every IO was submitted');
is($s->{errors} + $s->{cancelled}, 0, 'stats: no errors');

# all 16 slots are free again: a batch of exactly 16 runs
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FILTER (WHERE result = 0) FROM pg_uring_batch(array_fill('nop'::text, ARRAY[16]))"
	),
	'16',
	'a batch of max_ios IOs runs');

# ---------------------------------------------------------------------------
# 2. a slot waiter completes the IOs of the backend holding the slots
# ---------------------------------------------------------------------------
# one ring, and the reaper stopped (SIGSTOP) so that only the waiter can
# complete the held IOs
$node->append_conf('postgresql.conf', "pg_uring.rings = 1\n");
$node->restart;
my ($reaper) = pgu_children($node, qr/pg_uring reaper/);
kill 'STOP', $reaper;
$node->safe_psql('postgres', 'SELECT pg_uring_reset_stats()');

my $held = pgu_session($node, 'held');
my $hpid = $held->pid;
$held->query('SET pg_uring.test_hold_reap = on');
$held->begin(
	"SELECT count(*) FILTER (WHERE result = 0 AND reaped_by = 'other')
	   FROM pg_uring_batch(array_fill('nop'::text, ARRAY[12]))");
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) FROM pg_uring_ios WHERE owner_pid = $hpid AND state = 'submitted'",
		'12'),
	'the held session owns 12 submitted IOs');
ok(!$held->done, 'the held session is blocked');

my $waiter = pgu_session($node, 'waiter');
is( $waiter->query(
		"SELECT count(*) FILTER (WHERE result = 0 AND reaped_by = 'issuer')
		   FROM pg_uring_batch(array_fill('nop'::text, ARRAY[12]))"),
	'12',
	'a 12-IO batch with only 4 slots free waits and then runs');
is($held->finish, '12',
	'the held session finished: its IOs were completed by the slot waiter');
$s = pgu_stats($node);
is($s->{slot_waits},      1,  'stats: exactly one slot wait');
is($s->{reaped_by_other}, 12, 'stats: the waiter reaped the 12 held IOs');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'),
	'0', 'no IO slot in use afterwards');
kill 'CONT', $reaper;

# ---------------------------------------------------------------------------
# 3. requests larger than the table
# ---------------------------------------------------------------------------
my ($out, $err) = $waiter->query(
	"SELECT count(*) FROM pg_uring_batch(array_fill('nop'::text, ARRAY[17]))");
like(
	$err,
	qr/ERROR:\s+54000: pg_uring: request for 17 IO slots exceeds pg_uring\.max_ios \(16\)/,
	'a 17-IO batch fails with 54000, naming pg_uring.max_ios');
like($err, qr/HINT:\s+Raise pg_uring\.max_ios/, '...with a hint');
($out, $err) = $waiter->query("SELECT ios FROM pg_uring_bench('nop', 100, 17)");
like($err, qr/ERROR:\s+22023: depth must be between 1 and 16/,
	'a bench deeper than max_ios is refused');
($out, $err) = $waiter->query(
	"SELECT count(*) FILTER (WHERE result = 0) FROM pg_uring_batch(array_fill('nop'::text, ARRAY[16]));
	 SELECT pg_uring_read_file('$path', 0, $size) = pg_read_binary_file('$path');
	 SELECT count(*) FROM pg_uring_ios");
is($out, "16\nt\n0", 'the session keeps working after the errors');
is($err, '', '...without further errors');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'),
	'0', 'no IO slot in use after the errors');

$waiter->quit;
$held->quit;
ok(!$node->log_contains(qr/PANIC|server process .* was terminated|TRAP/),
	'no crash in the server log');
$node->stop;
done_testing();
