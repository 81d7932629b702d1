
# In synchronous mode (pg_uring.io_method = sync) a backend waiting for a
# pg_uring buffer read that another backend is running sleeps on the
# buffer's IO condition variable instead of spinning.
#
# Session A prewarms t and pauses inside the synchronous read of block 0
# (pg_uring.test_pause = 'sync_read:0', while the file pg_uring.pause
# exists): its buffers are IO-in-progress, its IO slot submitted.  Session
# B prewarms t too; it finds those buffers being read by A and, at the end
# of its prewarm, waits for them (pg_uring_complete_buffer_io).
#
# Asserts: the server runs in sync mode (pg_uring_stats, the probe, the
# LOG line); B waits (it is not done after 2 s); B uses less than 0.2 s of
# CPU in those 2 s (it spun at 100% before the fix); after the pause ends
# both prewarms return, t reads the same as before (md5), every block of t
# is cached, nothing is left pinned, and the log has no TRAP or PANIC.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;
use PgUringPrewarm;
use PgUringWrite qw(wr_log_clean);

my $node = pw_node('sync_wait', 'pg_uring.io_method' => 'sync', 'pg_uring.rings' => '1');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_uring');
is($node->safe_psql('postgres', 'SELECT string_agg(DISTINCT mode, \',\') FROM pg_uring_stats'),
	'sync', 'pg_uring.io_method = sync: the rings are in synchronous mode');
is($node->safe_psql('postgres',
		"SELECT value FROM pg_uring_probe() WHERE section = 'shared_rings' AND name = 'setup_error'"),
	'pg_uring.io_method is sync', 'the probe says why');
like(slurp_file($node->logfile), qr/LOG:\s+pg_uring: pg_uring.io_method = sync, every IO runs synchronously/,
	'the server logged the mode');
unlike(slurp_file($node->logfile), qr/WARNING:\s+pg_uring: could not create/,
	'no warning: sync mode was asked for');

my $nblocks = pw_create_t($node, 20000);
my $md5 = $node->safe_psql('postgres', 'SELECT md5(string_agg(h, \'\' ORDER BY id)) FROM t');
$node->restart;

pgu_pause_set($node);
my $offset = -s $node->logfile;
my $a = pgu_session($node, 'prewarm_a');
$a->query("SET pg_uring.test_pause = 'sync_read:0'");
$a->begin("SELECT pg_uring_prewarm('t')");
ok(pgu_wait_pause($node, 'prewarm_a', 'sync_read (block 0)', $offset),
	'A paused inside the synchronous read of block 0');

my $b = pgu_session($node, 'prewarm_b');
my $bpid = $b->pid;
$b->begin("SELECT pg_uring_prewarm('t')");
# B reads the rest and then waits for A's blocks
my $event = '';
ok(pgu_poll(sub { ($event = pw_wait_event($node, $bpid)) eq 'IPC:BufferIO' }),
	'B waits on the IO condition variable of a buffer A is reading')
  or diag "B's wait event: $event";
my $cpu0 = cpu_ticks($bpid);
sleep 2;
my $cpu1 = cpu_ticks($bpid);
ok(!$b->done, 'after 2 s B is still waiting for A');
my $hz = POSIX::sysconf(POSIX::_SC_CLK_TCK());
my $used = ($cpu1 - $cpu0) / $hz;
note "B used $used s of CPU in 2 s";
cmp_ok($used, '<', 0.2, 'B sleeps while it waits (less than 0.2 s of CPU in 2 s)');

pgu_pause_release($node);
like($a->finish, qr/^\d+$/, 'A finished its prewarm');
like($b->finish, qr/^\d+$/, 'B finished its prewarm');
is(pw_ncached($node, 't'), $nblocks, "every block of t ($nblocks) is cached");
is($node->safe_psql('postgres', 'SELECT md5(string_agg(h, \'\' ORDER BY id)) FROM t'), $md5,
	't reads the same as before');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_buffercache WHERE pinning_backends > 0'),
	0, 'no buffer is left pinned');
wr_log_clean($node, 'sync wait', $offset);

$a->quit;
$b->quit;
$node->stop;
done_testing();

# user + system CPU time of a process, in clock ticks
sub cpu_ticks
{
	my ($pid) = @_;
	open(my $st, '<', "/proc/$pid/stat") or die "/proc/$pid/stat: $!";
	my $line = <$st>;
	close $st;
	$line =~ s/^.*\) //;
	my @f = split / /, $line;
	return $f[11] + $f[12];
}
