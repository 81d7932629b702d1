
# Link chains and drain barriers through pg_uring_batch, with the counters
# they move, on io_uring rings and again on a node whose rings fell back to
# synchronous mode (started with kernel.io_uring_disabled = 2), where the
# same results must come out of the emulation.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;

# Result rows of one batch as "op:result:order" strings, in seq order.
sub batch
{
	my ($node, @ops) = @_;
	my $arr = join(', ', map { "'$_'" } @ops);
	my $out = $node->safe_psql('postgres',
		"SELECT op || ':' || result || ':' || completion_order || ':' || coalesce(error, '')
		   FROM pg_uring_batch(ARRAY[$arr]) ORDER BY seq");
	return [ split /\n/, $out ];
}

sub results { return join(',', map { (split /:/)[1] } @{ $_[0] }); }
sub orders  { return join(',', map { (split /:/)[2] } @{ $_[0] }); }
sub errors  { return join(',', map { (split /:/, $_, 4)[3] } @{ $_[0] }); }

sub delta
{
	my ($before, $after) = @_;
	my %d;
	$d{$_} = $after->{$_} - $before->{$_}
	  for grep { $after->{$_} =~ /^\d+$/ } keys %$after;
	return \%d;
}

sub chain_checks
{
	my ($node, $mode, $path) = @_;
	my ($r, $before, $d);
	my $version_size = $node->safe_psql('postgres',
		"SELECT size FROM pg_stat_file('PG_VERSION')");
	my $control_size = $node->safe_psql('postgres',
		"SELECT size FROM pg_stat_file('global/pg_control')");

	is(pgu_stats($node)->{mode}, $mode, "$mode: every ring is in mode $mode");

	# a chain that succeeds runs in order
	$before = pgu_stats($node);
	$r = batch($node, 'nop+link', 'nop+link', 'nop');
	is(results($r), '0,0,0', "$mode: nop chain succeeds");
	is(orders($r),  '1,2,3', "$mode: nop chain completes in order");
	$d = delta($before, pgu_stats($node));
	is($d->{linked},    2, "$mode: linked counter grew by 2");
	is($d->{submitted}, 3, "$mode: submitted grew by 3");
	is($d->{errors} + $d->{cancelled}, 0, "$mode: no error or cancellation");

	# a failing head cancels the rest of its chain
	$before = pgu_stats($node);
	$r = batch($node, 'fail+link', 'nop+link', 'nop');
	is(results($r), '-9,-125,-125', "$mode: failed head cancels the chain");
	is(orders($r),  '1,2,3',        "$mode: ...in chain order");
	like(errors($r), qr/^Bad file descriptor,Operation cancell?ed,Operation cancell?ed$/,
		"$mode: errors are named");
	$d = delta($before, pgu_stats($node));
	is($d->{errors},    1, "$mode: errors grew by 1");
	is($d->{cancelled}, 2, "$mode: cancelled grew by 2");
	is($d->{linked},    2, "$mode: linked grew by 2");
	is($d->{completed}, 3, "$mode: completed grew by 3");

	# the IO after the end of a chain (the last linked one) is independent
	$r = batch($node, 'fail+link', 'nop+link', 'nop', 'nop', "read $path 0 100");
	is(results($r), '-9,-125,-125,0,100',
		"$mode: IOs after the chain's end still run");

	# a failure in the middle: the members before it are unaffected
	$r = batch($node, 'nop+link', "read+link $path 8192 8192", 'fail+link',
		'nop+link', 'nop', 'nop');
	is(results($r), '0,8192,-9,-125,-125,0',
		"$mode: a failure mid-chain cancels only its successors");

	# two chains in one batch: the failure of one does not touch the other
	$r = batch($node, 'fail+link', 'nop', 'nop+link', 'nop');
	is(results($r), '-9,-125,0,0', "$mode: the second chain is independent");

	# a trailing +link (no successor) is harmless
	$r = batch($node, 'nop', 'nop+link');
	is(results($r), '0,0', "$mode: trailing link without a successor");

	# a short read breaks a chain; a full one does not
	$r = batch($node, 'read+link PG_VERSION 0 8192', 'nop', 'nop');
	is(results($r), "$version_size,-125,0",
		"$mode: short read ($version_size of 8192 bytes) cancels its successor");
	$r = batch($node, 'read+link global/pg_control 0 8192', 'nop');
	is(results($r), "$control_size,0",
		"$mode: full read of pg_control ($control_size bytes) keeps the chain");
	$r = batch($node, "read+link global/pg_control 4096 8192", 'nop');
	is(results($r), ($control_size - 4096) . ',-125',
		"$mode: read crossing EOF is short and cancels its successor");
	$r = batch($node, "read+link $path 0 100", "read+link $path 100 100",
		'fdatasync+link PG_VERSION', 'fsync global/pg_control');
	is(results($r), '100,100,0,0', "$mode: reads and syncs in one chain");

	# drain barrier: the drained IO completes after every earlier one, and
	# the IO after it after the barrier
	$before = pgu_stats($node);
	my @reads = map { "read+async $path " . ($_ * 8192) . ' 8192' } 0 .. 5;
	my $arr = join(', ', map { "'$_'" } @reads, 'nop+drain', 'nop');
	my $out = $node->safe_psql(
		'postgres', qq{
		SELECT count(*) FILTER (WHERE op = 'read' AND result = 8192 AND completion_order <= 6),
		       count(*) FILTER (WHERE seq = 7 AND result = 0 AND completion_order = 7),
		       count(*) FILTER (WHERE seq = 8 AND result = 0 AND completion_order = 8)
		  FROM generate_series(1, 20) g,
		       LATERAL pg_uring_batch(CASE WHEN g > 0 THEN ARRAY[$arr] END) b
	});
	is($out, '120|20|20',
		"$mode: in 20 batches the drained nop always completed after the 6 async reads"
	);
	$d = delta($before, pgu_stats($node));
	is($d->{drained},   20,  "$mode: drained grew by 20");
	is($d->{submitted}, 160, "$mode: 20 batches were really run");

	# without the drain flag the nop overtakes the async reads (it completes
	# inline while they go to kernel workers): shows that the check above
	# can tell a barrier from none
	if ($mode eq 'io_uring')
	{
		$arr = join(', ', map { "'$_'" } @reads, 'nop');
		my $last = $node->safe_psql(
			'postgres', qq{
			SELECT count(*) FILTER (WHERE seq = 7 AND completion_order = 7)
			  FROM generate_series(1, 20) g,
			       LATERAL pg_uring_batch(CASE WHEN g > 0 THEN ARRAY[$arr] END) b
		});
		cmp_ok($last, '<', 20,
			"$mode: without +drain the nop is not always last ($last of 20)");
	}

	is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'),
		'0', "$mode: no IO slot left in use");
	is(pgu_stats($node)->{in_flight}, 0, "$mode: nothing in flight");
	return;
}

# ---------------------------------------------------------------------------
# io_uring rings
# ---------------------------------------------------------------------------
my $node = pgu_node('chains', 'pg_uring.rings' => 2);
pgu_start($node);
my ($path) = pgu_data_file($node);
chain_checks($node, 'io_uring', $path);

# a chain longer than the ring is refused, not split
my $deep = pgu_node('deep', 'pg_uring.rings' => 1, 'pg_uring.queue_depth' => 8);
pgu_start($deep);
my ($ret, $out, $err) = $deep->psql('postgres',
	"SELECT count(*) FROM pg_uring_batch(array_fill('nop+link'::text, ARRAY[9]) || ARRAY['nop'])"
);
like($err, qr/linked chain longer than the ring's 8 entries/,
	'a chain longer than the submission queue is refused');
is( $deep->safe_psql(
		'postgres',
		"SELECT count(*) FILTER (WHERE result = 0) || '/' || count(*)
		   FROM pg_uring_batch(array_fill('nop+link'::text, ARRAY[7]) || array_fill('nop'::text, ARRAY[20]))"
	),
	'27/27',
	'a batch larger than the ring, chains within it, runs');
is($deep->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'),
	'0', 'no IO slot left in use after the refused chain');
$deep->stop;

ok(!$node->log_contains(qr/PANIC|server process .* was terminated|TRAP/),
	'io_uring: no crash in the server log');
$node->stop;

# ---------------------------------------------------------------------------
# synchronous fallback
# ---------------------------------------------------------------------------
SKIP:
{
	my $why = pgu_flip_check();
	skip "synchronous mode needs io_uring disabled: $why", 1 if $why;

	my $sync = pgu_node('chains_sync', 'pg_uring.rings' => 2);
	pgu_start_io_uring_disabled($sync);
	$sync->safe_psql('postgres', 'CREATE EXTENSION pg_uring');
	my ($spath) = pgu_data_file($sync);
	chain_checks($sync, 'sync', $spath);
	ok(!$sync->log_contains(qr/PANIC|server process .* was terminated|TRAP/),
		'sync: no crash in the server log');
	$sync->stop;
}

done_testing();
