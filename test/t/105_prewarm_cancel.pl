
# Interrupting a prewarm: cancel, statement_timeout, terminate, SIGKILL.
#
# Session A prewarms a ~20 MB table slowly: pg_uring.test_hold_reap = on on
# a one-ring node whose reaper waits pg_uring.reaper_delay = 1000 ms, so A
# gets one batch (<= 256 pinned blocks) done per second.  (With
# pg_uring.io_method = sync no read waits for a reaper: A is held instead
# by a barrier before block 600, pg_uring.test_pause = 'claim:600', and
# the pause ends right after the interrupt is sent.)  In the middle of it A is
#   - cancelled (pg_cancel_backend): "canceling statement due to user
#     request";
#   - timed out (statement_timeout);
#   - terminated (pg_terminate_backend): its connection ends, no crash
#     restart;
#   - killed with SIGKILL: crash restart.
# After each: no row in pg_uring_ios, nothing in flight, no buffer pinned,
# the server runs (another session stays connected, except after SIGKILL),
# a plain SELECT of the whole table completes (no buffer stuck
# IO-in-progress; statement_timeout bounds it) with the right data, and a
# new prewarm caches every block.  At the end amcheck finds nothing.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;
use PgUringPrewarm;

my $digest_sql = q{SELECT count(*) || ':' || md5(string_agg(id || ':' || h, ',' ORDER BY id)) FROM t};
my $nrows = 250000;

# ---------------------------------------------------------------------------
# setup
# ---------------------------------------------------------------------------
my $node = pw_node(
	'cancel',
	restart_after_crash     => 'on',
	'pg_uring.rings'        => '1',
	'pg_uring.reaper_delay' => '1000');
pgu_start($node);
# the test SIGKILLs server processes on purpose
pgu_log_allow(qr/was terminated by signal 9: Killed/);
my $nblocks = pw_create_t($node, $nrows, index => 1);
my $digest  = $node->safe_psql('postgres', $digest_sql);
is( $digest,
	$node->safe_psql('postgres',
		"SELECT count(*) || ':' || md5(string_agg(g || ':' || repeat(md5(g::text), 2), ',' ORDER BY g)) FROM generate_series(1, $nrows) g"
	),
	'reference digest');
cmp_ok($nblocks, '>', 4 * 256, "table has $nblocks blocks (several batches of 256)");

# Start a slow prewarm in a new session; return it once its reads have got
# past the first batch, with IOs still pending.
sub slow_prewarm
{
	my ($label, %opt) = @_;
	my $a = pgu_session($node, 'victim');
	$a->query("SET statement_timeout = '$opt{timeout}'") if $opt{timeout};
	if (pgu_io_method() eq 'sync')
	{
		# every read completes before the prewarm goes on: hold it instead
		# with a barrier before block 600
		$a->query("SET pg_uring.test_pause = 'claim:600'");
		my $off = -s $node->logfile;
		pgu_pause_set($node);
		$a->begin("SELECT pg_uring_prewarm('t')");
		ok(pgu_wait_pause($node, 'victim', 'claim (block 600)', $off),
			"$label: A's prewarm is paused before block 600");
		ok(!$a->done, "$label: and still running");
		my $cached = pw_ncached($node, 't');
		ok($cached > 0 && $cached < $nblocks,
			"$label: in the middle of t ($cached of $nblocks blocks cached)");
		return $a;
	}
	$a->query('SET pg_uring.test_hold_reap = on');
	$a->begin("SELECT pg_uring_prewarm('t')");
	my $pid = $a->pid;
	# A is held back by ~1 s per batch of 256 blocks (reaper_delay), so the
	# whole prewarm takes ~10 s: catch it as soon as it has reads in flight
	ok(pgu_poll(sub { pw_max_block($node, $pid) >= 0 || $a->done }),
		"$label: A's prewarm has reads in flight");
	ok(!$a->done, "$label: and still running");
	cmp_ok($node->safe_psql('postgres',
			"SELECT count(*) FROM pg_uring_ios WHERE owner_pid = $pid"),
		'>', 0, "$label: with IOs in pg_uring_ios");
	return $a;
}

# the interrupt is sent: let a paused prewarm (sync mode) go on to see it
sub unpause
{
	pgu_pause_release($node);
	return;
}

# The checks after A is gone or has failed.  $a may still be connected.
sub check_clean
{
	my ($label, $observer) = @_;
	is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'), 0,
		"$label: no row in pg_uring_ios");
	is($node->safe_psql('postgres', 'SELECT sum(in_flight) FROM pg_uring_stats'), 0,
		"$label: nothing in flight");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_buffercache WHERE pinning_backends > 0'),
		0, "$label: no buffer pinned");
	if ($observer)
	{
		my ($o, $e) = $observer->query('SELECT 1');
		is($o, '1', "$label: another session is still connected (no crash restart)");
	}

	# pg_uring reads what is missing; every block is then valid
	my $before = pw_ncached($node, 't');
	my ($rc, $out, $err) = $node->psql('postgres', "SELECT pg_uring_prewarm('t')");
	is($err, '', "$label: a new prewarm succeeds");
	is($out, $nblocks - $before,
		"$label: and reads the " . ($nblocks - $before) . " blocks not cached ($before were)")
	  or note "it returned '$out'";
	is(pw_ncached($node, 't'), $nblocks, "$label: every block of t is cached now");

	# core reads the whole table, bounded in time
	($rc, $out, $err) = $node->psql('postgres',
		"SET statement_timeout = '30s'; $digest_sql");
	is($out, $digest, "$label: a plain SELECT completes with the right data")
	  or note $err;
	return;
}

# ---------------------------------------------------------------------------
# cancel
# ---------------------------------------------------------------------------
$node->restart;
my $obs = pgu_session($node, 'observer');
my $a = slow_prewarm('cancel');
ok($node->safe_psql('postgres', "SELECT pg_cancel_backend(" . $a->pid . ")") eq 't',
	'cancel: pg_cancel_backend');
unpause();
my ($out, $err) = $a->finish;
like($err, qr/ERROR:  57014: canceling statement due to user request/,
	'cancel: A gets "canceling statement due to user request"');
check_clean('cancel', $obs);
($out, $err) = $a->query('SELECT 42');
is($out, '42', 'cancel: A\'s session is usable afterwards');
$a->quit;

# ---------------------------------------------------------------------------
# statement_timeout
# ---------------------------------------------------------------------------
$node->restart;
$obs = pgu_session($node, 'observer');
my $t0 = time;
$a   = slow_prewarm('timeout', timeout => '2s');
# (paused in sync mode: the timer must have fired before the pause ends)
sleep(1) while pgu_io_method() eq 'sync' && time < $t0 + 3;
unpause();
($out, $err) = $a->finish;
like($err, qr/ERROR:  57014: canceling statement due to statement timeout/,
	'timeout: A gets "canceling statement due to statement timeout"');
check_clean('timeout', $obs);
$a->quit;

# ---------------------------------------------------------------------------
# terminate
# ---------------------------------------------------------------------------
$node->restart;
$obs = pgu_session($node, 'observer');
$a   = slow_prewarm('terminate');
my $apid = $a->pid;
ok($node->safe_psql('postgres', "SELECT pg_terminate_backend($apid)") eq 't',
	'terminate: pg_terminate_backend');
unpause();
ok($a->wait_exit, 'terminate: A\'s connection ends');
like($a->stderr_so_far, qr/FATAL:  57P01: terminating connection due to administrator command/,
	'terminate: A gets "terminating connection due to administrator command"');
ok(pgu_poll(sub {
			$node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $apid") == 0
		}),
	'terminate: A\'s backend is gone');
check_clean('terminate', $obs);

# ---------------------------------------------------------------------------
# SIGKILL: crash restart
# ---------------------------------------------------------------------------
$node->restart;
$obs = pgu_session($node, 'observer');
$a   = slow_prewarm('sigkill');
$apid = $a->pid;
my $log_offset = -s $node->logfile;
ok(kill('KILL', $apid), 'sigkill: SIGKILL sent to A');
unpause();
ok($a->wait_exit, 'sigkill: A\'s connection ends');
ok(pgu_wait_up($node), 'sigkill: the server accepts connections again');
my ($oo, $oe) = $obs->query('SELECT 1', 20);
isnt($oo, '1', 'sigkill: the other sessions were dropped (crash restart)');
like($oe, qr/terminating connection because of crash of another server process|server closed the connection|connection to server was lost/,
	'sigkill: the other session learns of the crash');
ok($node->log_contains('all server processes terminated; reinitializing', $log_offset),
	'sigkill: the postmaster reinitialized');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'), 0,
	'sigkill: no row in pg_uring_ios');
is($node->safe_psql('postgres', 'SELECT pg_uring_prewarm(\'t\')'), $nblocks,
	'sigkill: prewarm after the crash restart reads every block');
is(pw_ncached($node, 't'), $nblocks, 'sigkill: every block of t is cached');
is($node->safe_psql('postgres', $digest_sql), $digest, 'sigkill: data right');
check_clean('sigkill (after restart)', undef);

# the reaper came back
ok(pgu_poll(sub { scalar(my @r = pgu_children($node, qr/pg_uring reaper/)) == 1 }),
	'sigkill: the reaper runs again');

# ---------------------------------------------------------------------------
# amcheck
# ---------------------------------------------------------------------------
pw_amcheck($node);

$node->stop;
done_testing();
