
# Crash restarts and interrupted IO.
#
# The postmaster holds exactly pg_uring.rings io_uring fds.  After a backend
# is SIGKILLed (one busy in a long pg_uring_bench, one idle) and after the
# reaper is SIGKILLed, the server reinitialises: the rings are created again
# (logged), the postmaster still holds exactly pg_uring.rings io_uring fds
# and one eventfd shared by them (the old ones were closed), no IO slot is in use, and
# IO through the new rings returns correct data.
#
# pg_cancel_backend and pg_terminate_backend of a session inside a long
# benchmark end it with the right error, leave no IO slot behind and do
# not crash the server.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;

my $rings = 3;
my $node  = pgu_node(
	'crash',
	'pg_uring.rings'       => $rings,
	'pg_uring.queue_depth' => 64,
	'restart_after_crash'  => 'on');
pgu_start($node);
# the test SIGKILLs server processes on purpose
pgu_log_allow(qr/was terminated by signal 9: Killed/);
my ($path, $size) = pgu_data_file($node);

like(slurp_file($node->logfile),
	qr/pg_uring: created $rings shared io_uring instances of 64 entries/,
	'the rings were created at startup');
my ($nring_fds, $nevent_fds) = pgu_uring_fds($node);
is($nring_fds,  $rings, "the postmaster holds $rings io_uring fds");
is($nevent_fds, 1, "the postmaster holds one eventfd, shared by the $rings rings");
my $pm_pid = pgu_postmaster_pid($node);

# a query that runs a long benchmark, until interrupted: the bench is
# called once per row, each call far longer than any test step
my $long_bench =
  "SELECT count(*) FROM generate_series(1, 1000) g,
          LATERAL pg_uring_bench('nop', 10000000 + 0 * g, 16) b";

# wait until a session is inside pg_uring_bench with its slots in use
sub wait_busy
{
	my ($pid) = @_;
	return $node->poll_query_until(
		'postgres',
		"SELECT count(*) >= 16 FROM pg_uring_ios WHERE owner_pid = $pid");
}

# after a crash: wait for the reinitialisation and the new rings, then check
sub check_after_crash
{
	my ($what, $offset) = @_;

	ok( eval {
			$node->wait_for_log(
				qr/all server processes terminated; reinitializing/, $offset);
			1;
		},
		"$what: the server reinitialised");
	ok( eval {
			$node->wait_for_log(
				qr/pg_uring: created $rings shared io_uring instances/, $offset);
			1;
		},
		"$what: the rings were created again");
	ok(pgu_wait_up($node), "$what: the server accepts connections again");
	is(pgu_postmaster_pid($node), $pm_pid, "$what: same postmaster");

	my ($r, $e) = pgu_uring_fds($node);
	is($r, $rings, "$what: still exactly $rings io_uring fds in the postmaster");
	is($e, 1, "$what: still exactly one eventfd in the postmaster");

	my $s = pgu_stats($node);
	is($s->{rings}, $rings, "$what: pg_uring_stats has $rings rows");
	is($s->{mode}, 'io_uring', "$what: the rings are io_uring rings");
	is($s->{in_flight}, 0, "$what: nothing in flight on the new rings");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'),
		'0', "$what: no IO slot in use");
	is( $node->safe_psql(
			'postgres',
			"SELECT pg_uring_read_file('$path', 0, $size) = pg_read_binary_file('$path'),
			        (SELECT count(*) FROM pg_uring_batch(ARRAY['nop', 'read $path 0 8192', 'fsync $path'])
			          WHERE result >= 0)"
		),
		't|3',
		"$what: IO through the new rings works and reads the right data");
	ok(pgu_poll(sub { pgu_children($node, qr/pg_uring reaper/) == 1 }),
		"$what: the reaper runs again");
	return;
}

# ---------------------------------------------------------------------------
# crash 1: SIGKILL of a backend busy in pg_uring_bench
# ---------------------------------------------------------------------------
my $busy = pgu_session($node, 'busy');
my $bpid = $busy->pid;
$busy->begin($long_bench);
ok(wait_busy($bpid), 'crash 1: the session is inside a long benchmark');
my $offset = -s $node->logfile;
is(kill('KILL', $bpid), 1, 'crash 1: SIGKILL sent to the busy backend');
ok($busy->wait_exit, 'crash 1: the killed session\'s psql ended');
check_after_crash('crash 1', $offset);
like(slurp_file($node->logfile, $offset),
	qr/server process \(PID $bpid\) was terminated by signal 9/,
	'crash 1: the log names the killed backend');

# ---------------------------------------------------------------------------
# crash 2: SIGKILL of an idle backend, with a busy one around
# ---------------------------------------------------------------------------
my $idle = pgu_session($node, 'idle');
$busy = pgu_session($node, 'busy2');
$bpid = $busy->pid;
$busy->begin($long_bench);
ok(wait_busy($bpid), 'crash 2: another session is inside a long benchmark');
$offset = -s $node->logfile;
is(kill('KILL', $idle->pid), 1, 'crash 2: SIGKILL sent to the idle backend');
ok($busy->wait_exit, 'crash 2: the busy session was ended by the restart');
# the idle session only notices when it next talks to its backend
my (undef, $idle_err) = $idle->query('SELECT 1');
like($idle_err, qr/server closed the connection unexpectedly|connection to server was lost/,
	'crash 2: the killed idle session has lost its connection');
ok($idle->wait_exit, 'crash 2: the killed session\'s psql ended');
check_after_crash('crash 2', $offset);

# ---------------------------------------------------------------------------
# crash 3: SIGKILL of the reaper
# ---------------------------------------------------------------------------
my ($reaper) = pgu_children($node, qr/pg_uring reaper/);
ok(defined $reaper, 'crash 3: found the reaper process');
$offset = -s $node->logfile;
is(kill('KILL', $reaper), 1, 'crash 3: SIGKILL sent to the reaper');
check_after_crash('crash 3', $offset);

# ---------------------------------------------------------------------------
# cancel and terminate of a session inside a long benchmark
# ---------------------------------------------------------------------------
$offset = -s $node->logfile;
my $bystander = pgu_session($node, 'bystander');
my $victim    = pgu_session($node, 'victim');
my $vpid      = $victim->pid;

$victim->begin($long_bench);
ok(wait_busy($vpid), 'cancel: the session is inside a long benchmark');
is($node->safe_psql('postgres', "SELECT pg_cancel_backend($vpid)"),
	't', 'cancel: pg_cancel_backend sent');
my ($out, $err) = $victim->finish;
like($err, qr/ERROR:\s+57014: canceling statement due to user request/,
	'cancel: the benchmark ends with a cancel error');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_uring_ios WHERE owner_pid = $vpid"),
	'0', 'cancel: no IO slot of the session left');
is($victim->query("SELECT count(*) FROM pg_uring_batch(ARRAY['nop', 'nop']) WHERE result = 0"),
	'2', 'cancel: the session keeps working');

# the same with a held session (its IOs must be completed while it stops)
$victim->query('SET pg_uring.test_hold_reap = on');
$victim->begin($long_bench);
ok(wait_busy($vpid), 'cancel held: the held session is inside a long benchmark');
$node->safe_psql('postgres', "SELECT pg_cancel_backend($vpid)");
($out, $err) = $victim->finish;
like($err, qr/ERROR:\s+57014: canceling statement due to user request/,
	'cancel held: the benchmark ends with a cancel error');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_uring_ios WHERE owner_pid = $vpid"),
	'0', 'cancel held: no IO slot of the session left');
$victim->query('RESET pg_uring.test_hold_reap');

$victim->begin($long_bench);
ok(wait_busy($vpid), 'terminate: the session is inside a long benchmark');
is($node->safe_psql('postgres', "SELECT pg_terminate_backend($vpid)"),
	't', 'terminate: pg_terminate_backend sent');
ok($victim->wait_exit, 'terminate: the session ended');
like($victim->stderr_so_far,
	qr/FATAL:\s+57P01: terminating connection due to administrator command/,
	'terminate: the session got the right FATAL');
ok( $node->poll_query_until(
		'postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $vpid", '0'),
	'terminate: the backend is gone');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'),
	'0', 'terminate: no IO slot in use');
my $s = pgu_stats($node);
is($s->{in_flight}, 0, 'terminate: nothing in flight');

is($bystander->query('SELECT 42'), '42',
	'a session opened before cancel and terminate still works: no crash restart');
ok(!$node->log_contains(qr/was terminated by signal|reinitializing|PANIC|TRAP/, $offset),
	'cancel and terminate: no crash in the server log');
is( $node->safe_psql(
		'postgres',
		"SELECT pg_uring_read_file('$path', 8192, 100000) = pg_read_binary_file('$path', 8192, 100000)"
	),
	't',
	'IO still works at the end');
$bystander->quit;

$node->stop;
done_testing();
