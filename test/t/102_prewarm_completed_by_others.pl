
# Buffer reads of pg_uring_prewarm completed by processes other than the
# issuer (pg_uring.rings = 1, so everybody shares the ring).
#
# Session A sets pg_uring.test_hold_reap, so it never reaps its own
# completions, and prewarms a table small enough (< 256 blocks, the pin cap)
# that all of its blocks are claimed and submitted before A waits.
#
# 1. Reaper on.  (a) reaper_delay = 1000 ms: while A waits, session B runs a
#    plain SELECT through core; it sleeps on the buffers' IO condition
#    variables until the reaper completes A's reads.  (b) The same with the
#    reaper stopped (SIGSTOP) while B runs, so that B is seen waiting on
#    BufferIO for certain; SIGCONT lets the reaper finish.  B's results are
#    right, A returns the number of blocks, reaped_by_reaper > 0.
# 2. The reaper stopped (SIGSTOP; it cannot be switched off).  While A
#    waits, B (also holding back its opportunistic
#    reaping) runs pg_uring_prewarm on the same table: it finds every block
#    being read by A and drains the ring to finish them (buffer_ios_helped,
#    reaped_by_other), returns 0, and A returns the number of blocks.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;
use PgUringPrewarm;

# ---------------------------------------------------------------------------
# helpers (local to this file)
# ---------------------------------------------------------------------------
# A's buffer reads in pg_uring_ios: [ [first, last, state], ... ]
sub pw_reads_of
{
	my ($node, $pid, $filenode) = @_;
	my $out = $node->safe_psql(
		'postgres', qq{
		SELECT target || '|' || state FROM pg_uring_ios
		 WHERE owner_pid = $pid AND op = 'buffer read'});
	my @r;
	for my $line (split /\n/, $out)
	{
		if ($line =~ m{^rel 1663/\d+/(\d+) fork main blocks (\d+)-(\d+)\|(\w+)$})
		{
			push @r, [ $2, $3, $4, $1 ];
		}
		else
		{
			push @r, [ -1, -1, "unparsed: $line", 0 ];
		}
	}
	return @r;
}

# Wait until A's reads in state 'submitted' cover blocks 0 .. n-1 each once.
sub pw_wait_all_submitted
{
	my ($node, $pid, $filenode, $n) = @_;
	my $last = '';
	my $ok = pgu_poll(
		sub {
			my @r = pw_reads_of($node, $pid);
			my %seen;
			my $good = 1;
			for my $r (@r)
			{
				$good = 0 unless $r->[2] eq 'submitted' && $r->[3] == $filenode;
				$seen{$_}++ for $r->[0] .. $r->[1];
			}
			$last = join(', ', map { "$_->[0]-$_->[1] $_->[2]" } @r);
			return $good
			  && scalar(keys %seen) == $n
			  && !grep { $_ != 1 } values %seen
			  && !grep { $_ < 0 || $_ >= $n } keys %seen;
		});
	note "A's reads: $last";
	return $ok;
}

# ---------------------------------------------------------------------------
# setup
# ---------------------------------------------------------------------------
my $node = pw_node(
	'completed_by_others',
	'pg_uring.rings'        => '1',
	'pg_uring.reaper_delay' => '1000');
pgu_start($node);
my $nblocks = pw_create_t($node, 15000);
my $filenode = $node->safe_psql('postgres', "SELECT pg_relation_filenode('t')");
ok($nblocks > 64 && $nblocks < 256,
	"table has $nblocks blocks: more than one read, fewer than the pin cap");
my $expected = $node->safe_psql('postgres',
	"SELECT count(*) || '|' || sum(hashtext(repeat(md5(g::text), 2))) FROM generate_series(1, 15000) g"
);
my $query = 'SELECT count(*), sum(hashtext(h)) FROM t';
is($node->safe_psql('postgres', $query), $expected, 'core reads the table as generated');
is($node->safe_psql('postgres', 'SHOW pg_uring.reaper_delay'), '1s', 'reaper_delay = 1s');

# ---------------------------------------------------------------------------
# 1a. reaper with a delay; B reads through core
# ---------------------------------------------------------------------------
$node->restart;
$node->safe_psql('postgres', 'SELECT pg_uring_reset_stats()');
is(pw_ncached($node, 't'), 0, 'restart: nothing of t cached');

my $a = pgu_session($node, 'holder_a');
my $b = pgu_session($node, 'reader_b');
my ($apid, $bpid) = ($a->pid, $b->pid);
$a->query('SET pg_uring.test_hold_reap = on');

$a->begin("SELECT pg_uring_prewarm('t')");
ok(pw_wait_all_submitted($node, $apid, $filenode, $nblocks),
	'1a: A has every block of t in submitted, unreaped reads');
$b->begin($query);
my $seen_b = '';
pgu_poll(
	sub {
		return 1 if $b->done;
		my $w = pw_wait_event($node, $bpid);
		$seen_b = $w if $w eq 'IPC:BufferIO';
		return $seen_b ne '';
	},
	10);
note "1a: B seen waiting on BufferIO: " . ($seen_b ? 'yes' : 'no (finished first)');
my ($out, $err) = $b->finish;
is($out, $expected, '1a: B (core) reads correct data while A\'s reads are pending');
is($err, '', '1a: B: no error');
($out, $err) = $a->finish;
is($out, $nblocks, '1a: A\'s prewarm returns the number of blocks');
is($err, '', '1a: A: no error');
my $s = pw_stats($node);
cmp_ok($s->{reaped_by_reaper}, '>', 0, "1a: reaped_by_reaper = $s->{reaped_by_reaper}");
is($s->{reaped_by_issuer}, 0, '1a: A reaped none of its own reads');
is($s->{buffer_blocks}, $nblocks, '1a: buffer_blocks = number of blocks');
is($s->{in_flight}, 0, '1a: nothing in flight');
is(pw_ncached($node, 't'), $nblocks, '1a: every block of t is cached');

# ---------------------------------------------------------------------------
# 1b. the reaper stopped while B waits: B must be seen sleeping on BufferIO
# ---------------------------------------------------------------------------
$a->quit;
$b->quit;
$node->restart;
$node->safe_psql('postgres', 'SELECT pg_uring_reset_stats()');
my @reaper;
pgu_poll(sub { @reaper = pgu_children($node, qr/pg_uring reaper/); @reaper == 1 });
is(scalar(@reaper), 1, '1b: one reaper process');

$a = pgu_session($node, 'holder_a');
$b = pgu_session($node, 'reader_b');
($apid, $bpid) = ($a->pid, $b->pid);
$a->query('SET pg_uring.test_hold_reap = on');

kill 'STOP', $reaper[0];
$a->begin("SELECT pg_uring_prewarm('t')");
ok(pw_wait_all_submitted($node, $apid, $filenode, $nblocks),
	'1b: A has every block of t in submitted, unreaped reads');
$b->begin($query);
my $b_event = '';
ok(pgu_poll(sub { ($b_event = pw_wait_event($node, $bpid)) eq 'IPC:BufferIO' }),
	'1b: B (core) sleeps on BufferIO for A\'s read')
  or diag "B's wait event: $b_event";
ok(!$a->done && !$b->done, '1b: neither A nor B finishes while the reaper is stopped');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_uring_ios WHERE state = 'submitted'"),
	scalar(my @x = pw_reads_of($node, $apid)), '1b: all of A\'s IOs are still unreaped');
kill 'CONT', $reaper[0];
($out, $err) = $b->finish;
is($out, $expected, '1b: B gets correct data once the reaper completed A\'s reads');
($out, $err) = $a->finish;
is($out, $nblocks, '1b: A\'s prewarm returns the number of blocks');
$s = pw_stats($node);
cmp_ok($s->{reaped_by_reaper}, '>', 0, "1b: reaped_by_reaper = $s->{reaped_by_reaper}");
is($s->{reaped_by_reaper}, $s->{completed}, '1b: the reaper completed every IO');
is($s->{buffer_read_failures}, 0, '1b: no read failures');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'), 0, '1b: no IO left');

# ---------------------------------------------------------------------------
# 2. the reaper stopped: B's own prewarm completes A's reads
# ---------------------------------------------------------------------------
$a->quit;
$b->quit;
$node->restart;
my @y = pgu_children($node, qr/pg_uring reaper/);
is(scalar(@y), 1, '2: the reaper runs');
kill 'STOP', $y[0];
$node->safe_psql('postgres', 'SELECT pg_uring_reset_stats()');

$a = pgu_session($node, 'holder_a');
$b = pgu_session($node, 'helper_b');
($apid, $bpid) = ($a->pid, $b->pid);
$a->query('SET pg_uring.test_hold_reap = on');
$a->begin("SELECT pg_uring_prewarm('t')");
ok(pw_wait_all_submitted($node, $apid, $filenode, $nblocks),
	'2: A has every block of t in submitted, unreaped reads');
my $nreads = scalar(my @z = pw_reads_of($node, $apid));
ok(!$a->done, '2: A waits: nobody completes its reads');
is(pw_wait_event($node, $apid), 'Extension:Extension', '2: A sleeps in pg_uring');

# B holds back its own opportunistic draining too, so that it really meets
# A's buffers still being read and completes them through
# pg_uring_complete_buffer_io (the path buffer_ios_helped counts)
($out, $err) = $b->query("SET pg_uring.test_hold_reap = on; SELECT pg_uring_prewarm('t')");
is($out, 0, '2: B\'s prewarm reads nothing itself (every block was A\'s)');
is($err, '', '2: B: no error');
($out, $err) = $a->finish;
is($out, $nblocks, '2: A\'s prewarm returns the number of blocks');
is($err, '', '2: A: no error');
$s = pw_stats($node);
is($s->{reaped_by_other}, $nreads, "2: all $nreads of A's reads reaped by other");
is($s->{reaped_by_reaper}, 0, '2: none by a reaper');
is($s->{reaped_by_issuer}, 0, '2: none by A');
cmp_ok($s->{buffer_ios_helped}, '>', 0, "2: buffer_ios_helped = $s->{buffer_ios_helped}");
is($s->{in_flight}, 0, '2: nothing in flight');
is(pw_ncached($node, 't'), $nblocks, '2: every block of t is cached');
is($node->safe_psql('postgres', $query), $expected, '2: the cached table reads correctly');
like(
	$node->safe_psql(
		'postgres',
		"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM t"),
	qr/Seq Scan on t.*\n\s+Buffers: shared hit=$nblocks\n/,
	'2: a seq scan is all shared hits');

$a->quit;
$b->quit;
kill 'CONT', $y[0];
pw_amcheck($node, 0);

$node->stop;
done_testing();
