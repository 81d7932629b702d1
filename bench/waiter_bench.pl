#!/usr/bin/perl
# bench/waiter_bench.pl - how long a core backend waits for a block that
# another backend's pg_uring read has in flight, over what the read itself
# costs.
#
# A core backend that wants a block pg_uring is reading sleeps in WaitIO
# until somebody completes the IO.  The reaper completes at once an IO that
# somebody sleeps on (README, "The reaper"); this measures what that costs.
#
# One throwaway cluster (the TAP suite's PostgreSQL::Test::Cluster and
# test/t/PgUringTest.pm: no cluster code of its own), one ring, a 2,400-block
# table in the OS page cache (so the kernel completes a read in
# microseconds and what is measured is pg_uring's part).  Each trial:
#   A (pg_uring.test_hold_reap: it never reaps its own completions) prewarms
#     8 blocks nobody has read yet (pg_uring_prewarm_blocks), one combined
#     read that A leaves unreaped;
#   once pg_uring_ios shows it submitted, B fetches a row of the 4th block
#     by TID through core, timed inside the server (clock_timestamp() in a
#     PL/pgSQL function: no client round trip), then the same row again,
#     now cached: the difference is B's wait.
# For pg_uring.reaper_delay = 1 ms (the default) and 1000 ms (without the
# waiter check B would sleep out nearly all of it); TRIALS trials each
# (PGU_BENCH_TRIALS, default 200), after a restart.  In the same run the
# read latency of the same file through the ring at depth 1
# (pg_uring_bench), the "device" here.
#
# Usage, as the postgres OS user (or any user that can run the TAP suite),
# from a checkout with pg_uring installed:
#
#     PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config perl bench/waiter_bench.pl
#
# It needs PostgreSQL's TAP modules (postgresql-server-dev / pgxs
# src/test/perl) and prints a table; the figures measured are in README.md.
use strict;
use warnings;

use FindBin;
my $pgxs;
BEGIN
{
	my $pgc = $ENV{PG_CONFIG} // 'pg_config';
	chomp($pgxs = `$pgc --pgxs`);
	$pgxs =~ s{/[^/]+/[^/]+$}{};	# .../lib/pgxs/src
	chomp(my $bindir = `$pgc --bindir`);
	$ENV{PATH} = "$bindir:$ENV{PATH}";
	$ENV{PG_REGRESS} //= "$pgxs/test/regress/pg_regress";
	$ENV{TESTDIR} //= "/tmp/pgu-waiter-bench.$$";
	mkdir $ENV{TESTDIR};
}
use lib "$pgxs/test/perl";
use lib "$FindBin::RealBin/../test/t";
use lib "$FindBin::RealBin/../test";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use PgUringTest;
use PgUringPrewarm;

my $trials = $ENV{PGU_BENCH_TRIALS} // 200;
die "PGU_BENCH_TRIALS must be between 10 and 280\n" unless $trials =~ /^\d+$/ && $trials >= 10 && $trials <= 280;

my $node = pw_node('waiter_bench', 'pg_uring.rings' => '1');
pgu_start($node);
my $nblocks = pw_create_t($node, 2400 * 80);
die "t has $nblocks blocks, fewer than the trials need\n" if $nblocks < 8 * $trials + 16;
$node->safe_psql(
	'postgres', q{
	CREATE FUNCTION timed_fetch(tid) RETURNS float8 LANGUAGE plpgsql AS $$
	DECLARE t0 timestamptz; x text;
	BEGIN
		t0 := clock_timestamp();
		SELECT h INTO x FROM t WHERE ctid = $1;
		RETURN extract(epoch FROM clock_timestamp() - t0) * 1e6;
	END $$;
	SELECT count(*) FROM t;	-- the file into the OS page cache
});
my $path = $node->safe_psql('postgres', "SELECT pg_relation_filepath('t')");
my $filenode = $node->safe_psql('postgres', "SELECT pg_relation_filenode('t')");

sub pct
{
	my ($p, @v) = @_;
	my @s = sort { $a <=> $b } @v;
	return $s[ int($p / 100 * $#s + 0.5) ];
}

my @rows;
for my $delay (1, 1000)
{
	$node->append_conf('postgresql.conf', "pg_uring.reaper_delay = $delay\n");
	$node->restart;
	my $a = pgu_session($node, 'holder_a');
	my $b = pgu_session($node, 'reader_b');
	my $c = pgu_session($node, 'watcher_c');
	$a->query('SET pg_uring.test_hold_reap = on');
	$b->query("SELECT timed_fetch('(0,1)')");	# plan cached, catalogs read
	my $apid = $a->pid;
	my $sub_sql = "SELECT count(*) FROM pg_uring_ios WHERE owner_pid = $apid AND state = 'submitted'
		AND target ~ '^rel [0-9]+/[0-9]+/$filenode fork main '";
	$c->query($sub_sql);
	my (@wait, @missed);
	for my $i (1 .. $trials)
	{
		my $b0 = 16 + 8 * ($i - 1);
		$a->begin("SELECT pg_uring_prewarm_blocks('t', ARRAY(SELECT generate_series($b0, $b0 + 7)))");
		my $seen = 0;
		for (1 .. 2000)
		{
			last if ($seen = ($c->query($sub_sql) > 0));
			last if $a->done;
		}
		my $tid = '(' . ($b0 + 3) . ',1)';
		my ($cold) = $b->query("SELECT timed_fetch('$tid')");
		my ($warm) = $b->query("SELECT timed_fetch('$tid')");
		$a->finish;
		if ($seen)
		{
			push @wait, $cold - $warm;
		}
		else
		{
			push @missed, $i;
		}
	}
	$_->quit for $a, $b, $c;
	push @rows,
	  sprintf("| %4d ms | %3d | %7.1f | %7.1f | %7.1f | %8.1f | %d |",
		$delay, scalar(@wait), pct(50, @wait), pct(90, @wait), pct(99, @wait), pct(100, @wait),
		scalar(@missed));
}

my $dev = $node->safe_psql('postgres',
	"SELECT round(p50_us::numeric, 1) || ' ' || round(p99_us::numeric, 1) FROM pg_uring_bench('read', 2000, 1, '$path')");
my ($d50, $d99) = split / /, $dev;
$node->stop;

# (PostgreSQL::Test::Utils sends STDOUT to its log; diag reaches the terminal)
diag("B's wait for a block in A's unreaped read, over a cached fetch of it (us)");
diag('| reaper_delay | trials | p50 | p90 | p99 | max | not caught in flight |');
diag('|---|---|---|---|---|---|---|');
diag($_) for @rows;
diag("the same file read through the ring at depth 1 (pg_uring_bench): p50 $d50 us, p99 $d99 us");
ok(1, 'ran');
done_testing();
