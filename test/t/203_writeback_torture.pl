
# Write-back under load, then crashes.
#
# pgbench (scale 10, about 150 MB) against a 16 MB pool, with the pg_uring
# writer on, a session running pg_uring_flush() over and over (0.3 s apart)
# and another running CHECKPOINT over and over (2 s apart); fsync = on.
#
# Round 1: after the load has run a while (and the writer and pg_uring_flush
# have written: writer_pages > 0, buffer_writes > 0, no flush or checkpoint
# failed; if the writer has written nothing yet, the load goes on for up to
# 30 s without new flushes), an immediate stop in the middle of it, then a
# start.
# Round 2: the same load, then SIGKILL of one pgbench backend: the server
# crash-restarts by itself.
# After each round: recovery done, amcheck (verify_heapam on the four tables,
# bt_index_check with heapallindexed on the three indexes) finds nothing,
# sum(abalance) = sum(bbalance) = sum(tbalance) = sum(history.delta), the
# history grew (transactions were committed), every account is found
# through the index, no IO slot left, no TRAP, PANIC or failed write
# logged.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use PgUringTest;
use PgUringWrite;

my $scale = 10;
my $node  = wr_node(
	'torture',
	shared_buffers                  => '16MB',
	'pg_uring.writer'               => 'on',
	# short rounds: the flush loop leaves the writer little, so it must look often
	'pg_uring.writer_delay'         => '20ms',
	checkpoint_completion_target    => '0.1',
	max_wal_size                    => '256MB');
pgu_start($node);
# the test SIGKILLs server processes on purpose
pgu_log_allow(qr/was terminated by signal 9: Killed/);
$node->safe_psql('postgres', 'CREATE EXTENSION pg_buffercache; CREATE EXTENSION amcheck');
$node->command_ok([ 'pgbench', '-i', '-q', '-s', $scale, $node->connstr('postgres') ],
	"pgbench -i -s $scale");
cmp_ok($node->safe_psql('postgres', "SELECT pg_relation_size('pgbench_accounts')"),
	'>', 5 * 16 * 1024 * 1024, 'pgbench_accounts is several times the pool');
ok(pgu_poll(sub { pgu_children($node, qr/pg_uring writer/) == 1 }), 'the writer runs');

my @tables  = qw(pgbench_accounts pgbench_branches pgbench_tellers pgbench_history);
my @indexes = qw(pgbench_accounts_pkey pgbench_branches_pkey pgbench_tellers_pkey);

# Run the load for $seconds, then call $end->() with it still running.
# Returns the number of flush and checkpoint calls that completed.
sub load_then
{
	my ($label, $seconds, $end) = @_;
	my ($pb_out, $pb_err) = ('', '');
	# (PostgreSQL::Test::Utils sets PGAPPNAME to the test's name)
	local $ENV{PGAPPNAME} = 'pgbench';
	my $pgbench = IPC::Run::start(
		[ 'pgbench', '-n', '-c', '4', '-j', '2', '-T', 10 * $seconds,
		  $node->connstr('postgres') ],
		'>', \$pb_out, '2>', \$pb_err,
		IPC::Run::timeout(20 * $seconds + $PgUringTest::TIMEOUT));
	my $flusher = pgu_session($node, 'flusher');
	my $ckpt    = pgu_session($node, 'checkpointer');
	my $s0      = wr_stats($node);
	my %calls   = (flush => 0, checkpoint => 0);
	my @errors;
	my $until = time() + $seconds;
	my %pending;

	# After $seconds, if the writer has not written yet (the flush loop can
	# leave it nothing: seen once in 20 s on the assert-enabled build), the
	# load goes on for up to 30 s more without new pg_uring_flush calls, so
	# that the round always has the writer, the flushes and the checkpoints
	# at work before its end.
	my $extended = 0;
	while (1)
	{
		if (time() >= $until)
		{
			last if $extended
			  || wr_delta($s0, wr_stats($node))->{writer_pages} > 0;
			$extended = 1;
			$until = time() + 30;
			note "$label: the writer has written nothing yet: 30 s more without new flushes";
		}
		if ($extended && wr_delta($s0, wr_stats($node))->{writer_pages} > 0)
		{
			last;
		}
		# the pauses leave the pool dirty enough for the writer to have work
		for my $job ([ 'flush', $flusher, 'SELECT pg_uring_flush(); SELECT pg_sleep(0.3)' ],
			[ 'checkpoint', $ckpt, 'CHECKPOINT; SELECT pg_sleep(2)' ])
		{
			my ($name, $s, $sql) = @$job;
			if ($pending{$name} && $s->done)
			{
				my ($o, $e) = $s->finish;
				push @errors, "$name: $e" if ($e // '') ne '';
				$calls{$name}++;
				$pending{$name} = 0;
			}
			if (!$pending{$name} && !($extended && $name eq 'flush'))
			{
				$s->begin($sql);
				$pending{$name} = 1;
			}
		}
		usleep(50_000);
	}
	my $d = wr_delta($s0, wr_stats($node));
	note "$label: pg_uring_flush calls $calls{flush}, checkpoints $calls{checkpoint}; "
	  . join(', ', map { "$_ = $d->{$_}" } sort keys %$d);
	ok($pgbench->pumpable, "$label: pgbench is still running");
	cmp_ok($calls{flush}, '>', 0, "$label: pg_uring_flush() completed $calls{flush} times");
	cmp_ok($calls{checkpoint}, '>', 0, "$label: CHECKPOINT completed $calls{checkpoint} times");
	is_deeply(\@errors, [], "$label: no flush or checkpoint failed");
	cmp_ok($d->{writer_pages}, '>', 0, "$label: the writer wrote $d->{writer_pages} pages");
	cmp_ok($d->{buffer_writes}, '>', 0, "$label: $d->{buffer_writes} buffer writes through the rings");
	is($d->{buffer_write_failures} + $d->{cancelled_chains}, 0, "$label: no write failed, no chain cancelled");

	$end->();

	$flusher->quit;
	$ckpt->quit;
	eval { $pgbench->finish };
	my ($xacts) = $pb_out =~ /number of transactions actually processed: (\d+)/;
	note "$label: pgbench processed " . ($xacts // '?') . ' transactions';
	return;
}

sub check_after
{
	my ($label, $history_before) = @_;
	wr_amcheck($node, $label, \@tables, \@indexes);
	my ($a, $b, $t, $h, $n) = split /\|/,
	  $node->safe_psql(
		'postgres', q{
		SELECT (SELECT sum(abalance) FROM pgbench_accounts),
			   (SELECT sum(bbalance) FROM pgbench_branches),
			   (SELECT sum(tbalance) FROM pgbench_tellers),
			   (SELECT coalesce(sum(delta), 0) FROM pgbench_history),
			   (SELECT count(*) FROM pgbench_history)});
	is("$a|$b|$t", "$h|$h|$h",
		"$label: sum(abalance) = sum(bbalance) = sum(tbalance) = sum(history.delta) = $h");
	cmp_ok($n, '>', $history_before, "$label: the history grew from $history_before to $n rows");
	is( $node->safe_psql(
			'postgres', q{
			SET enable_seqscan = off; SET enable_bitmapscan = off;
			SELECT count(*) FROM pgbench_accounts WHERE aid > 0}),
		$scale * 100000,
		"$label: every account is found through the index");
	# the writer keeps writing (rounds every 20 ms): its own IOs come and go
	my ($writer) = pgu_children($node, qr/pg_uring writer/);
	my $not_writer = defined $writer ? "WHERE owner_pid <> $writer" : '';
	note "$label: IO slots in use: "
	  . $node->safe_psql('postgres', "SELECT string_agg(owner_pid || ' ' || op || ' ' || state, ', ') FROM pg_uring_ios");
	is($node->safe_psql('postgres', "SELECT count(*) FROM pg_uring_ios $not_writer"), 0,
		"$label: no IO slot in use but the running writer's");
	return $n;
}

my $history = 0;

# ---------------------------------------------------------------------------
# round 1: immediate stop
# ---------------------------------------------------------------------------
my $offset = -s $node->logfile;
load_then('immediate stop', 20, sub { $node->stop('immediate') });
$node->start;
ok(wr_wait_up($node), 'immediate stop: the server is up again');
$history = check_after('immediate stop', $history);
ok(pgu_poll(sub { pgu_children($node, qr/pg_uring writer/) == 1 }), 'immediate stop: the writer runs again');
wr_log_clean($node, 'immediate stop', $offset);

# ---------------------------------------------------------------------------
# round 2: SIGKILL of a pgbench backend
# ---------------------------------------------------------------------------
$offset = -s $node->logfile;
my $victim;
load_then(
	'SIGKILL',
	15,
	sub {
		$victim = $node->safe_psql('postgres',
			"SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench' ORDER BY pid LIMIT 1");
		ok($victim =~ /^\d+$/, "SIGKILL: found a pgbench backend ($victim)");
		is(kill('KILL', $victim), 1, 'SIGKILL: sent');
	});
wr_wait_restart($node, 'SIGKILL', $offset);
like(slurp_file($node->logfile, $offset), qr/server process \(PID $victim\) was terminated by signal 9/,
	'SIGKILL: the log names the killed backend');
$history = check_after('SIGKILL', $history);
ok(pgu_poll(sub { pgu_children($node, qr/pg_uring writer/) == 1 }), 'SIGKILL: the writer runs again');
wr_log_clean($node, 'SIGKILL', $offset);

$node->stop;
done_testing();
