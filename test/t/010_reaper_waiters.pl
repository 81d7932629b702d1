
# The reaper completes at once what somebody sleeps on.
#
# A core backend in WaitIO on a buffer that pg_uring is reading knows
# nothing of rings: it sleeps until someone completes the IO.  The reaper
# normally leaves a completion to its issuer for pg_uring.reaper_delay; for
# an IO that a backend sleeps on (the buffer's IO condition variable has a
# waiter) it must not wait.
#
# One ring, pg_uring.reaper_delay = 1 s (its maximum).  Session A sets
# pg_uring.test_hold_reap (it never reaps its own completions) and
# prewarms a table small enough (< 256 blocks) that all of its reads are
# submitted before A waits.
# 1. Nobody waits on them: 200 ms later A's reads are all still submitted,
#    unreaped (the reaper honours its delay).
# 2. Session B reads one of those blocks through core (a TID scan): it
#    sleeps in WaitIO and the reaper completes the ring at once: B returns
#    the right row in well under the delay (under 300 ms; before this
#    change it waited out the rest of the second), A's prewarm returns every
#    block, the reaper processed the completions, A none.

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

my $node = pw_node(
	'reaper_waiters',
	'pg_uring.rings'        => '1',
	'pg_uring.reaper_delay' => '1000');
pgu_start($node);
my $nblocks = pw_create_t($node, 15000);
my $filenode = $node->safe_psql('postgres', "SELECT pg_relation_filenode('t')");
ok($nblocks > 64 && $nblocks < 256,
	"table has $nblocks blocks: more than one read, fewer than the pin cap");
is($node->safe_psql('postgres', 'SHOW pg_uring.reaper_delay'), '1s', 'reaper_delay = 1s');
my $row_sql = "SELECT id || ':' || h FROM t WHERE ctid = '(5,1)'";
my $row = $node->safe_psql('postgres', $row_sql);
like($row, qr/^\d+:[0-9a-f]{64}$/, "block 5's first row: $row");

# Restart (nothing cached), start A's held prewarm and return once all of
# its reads are in pg_uring_ios as submitted (one query per poll: the whole
# wait must stay well inside the reaper's 1 s), with the time it saw them
# and how many there are.
my $submitted_sql;

sub held_prewarm
{
	my ($label) = @_;
	$node->restart;
	$node->safe_psql('postgres', 'SELECT pg_uring_reset_stats()');
	is(pw_ncached($node, 't'), 0, "$label: nothing of t cached after a restart");
	my $a = pgu_session($node, 'holder_a');
	my $b = pgu_session($node, 'reader_b');
	$b->query('SELECT 1');
	my $apid = $a->pid;
	$a->query('SET pg_uring.test_hold_reap = on');
	# reads of A, submitted reads of A, the blocks of t they cover
	$submitted_sql = "SELECT count(*) || ' ' || count(*) FILTER (WHERE state = 'submitted')
		|| ' ' || coalesce(sum(substring(target from ' blocks [0-9]+-([0-9]+)')::int
		                       - substring(target from ' blocks ([0-9]+)-')::int + 1)
		                   FILTER (WHERE target ~ '^rel [0-9]+/[0-9]+/$filenode fork main '), 0)
		FROM pg_uring_ios WHERE owner_pid = $apid AND op = 'buffer read'";
	$a->begin("SELECT pg_uring_prewarm('t')");
	my ($n, $seen);
	for (1 .. 300)
	{
		my ($all, $sub, $bufs) = split / /, $node->safe_psql('postgres', $submitted_sql);
		if ($all > 0 && $sub == $all && $bufs == $nblocks)
		{
			($n, $seen) = ($sub, time);
			last;
		}
		usleep(10_000);
	}
	ok(defined $n, "$label: A has all of its reads submitted, none reaped (" . ($n // 0) . ' reads)');
	return ($a, $b, $n // 0, $seen // time);
}

sub submitted_now
{
	my ($all, $sub) = split / /, $node->safe_psql('postgres', $submitted_sql);
	return $sub;
}

# ---------------------------------------------------------------------------
# 1. nobody waits: the reaper leaves them for its delay
# ---------------------------------------------------------------------------
{
	my ($a, $b, $n, $seen) = held_prewarm('1');
	usleep(200_000);
	my $now = submitted_now();
	my $dt = time - $seen;
	ok($n > 1 && $now == $n,
		sprintf('1: %.0f ms later A\'s %d reads are all still unreaped (%d; nobody waits on them)',
			1000 * $dt, $n, $now));
	ok(!$a->done, '1: A is still waiting');
	my ($out, $err) = $a->finish;
	is($out, $nblocks, '1: A\'s prewarm returns every block once the reaper stepped in');
	$a->quit;
	$b->quit;
}

# ---------------------------------------------------------------------------
# 2. B sleeps on one of them: the reaper completes it at once
# ---------------------------------------------------------------------------
{
	my ($a, $b, $n, $seen) = held_prewarm('2');
	my $t1 = time;
	my ($out, $err) = $b->query($row_sql);
	my $t2 = time;
	is($out, $row, '2: B (core) reads the right row of block 5');
	is($err, '', '2: B: no error');
	# the reaper's own deadline is 1 s after the completions arrived, at
	# least 700 ms after A's reads were seen submitted (the poll takes 10 ms
	# a round): done well before that, it was B's wait that moved it
	cmp_ok($t2 - $seen, '<', 0.5,
		sprintf('2: B had the row %.0f ms after A\'s %d reads were seen unreaped (B\'s query: %.1f ms), not after the reaper\'s 1 s',
			1000 * ($t2 - $seen), $n, 1000 * ($t2 - $t1)));
	($out, $err) = $a->finish;
	is($out, $nblocks, '2: A\'s prewarm returns every block');
	my $s = pw_stats($node);
	cmp_ok($s->{reaped_by_reaper}, '>', 0, "2: the reaper processed completions ($s->{reaped_by_reaper})");
	is($s->{reaped_by_issuer}, 0, '2: A processed none of its own');
	is($s->{in_flight}, 0, '2: nothing in flight');
	is(pw_ncached($node, 't'), $nblocks, '2: every block of t is cached');
	$a->quit;
	$b->quit;
}

$node->stop;
done_testing();
