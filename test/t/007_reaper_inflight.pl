
# The reaper always runs and never exits while an IO is in flight.
#
# Core backends sleeping on a buffer's IO know nothing of rings, and an
# IO's owner may be blocked where it cannot drain: the reaper is what
# guarantees completion, so there is no setting to turn it off and it does
# not leave at SIGTERM (pg_terminate_backend, or a shutdown) while any ring
# has an IO in flight.
#
# An IO that stays in flight as long as the test wants: a read of a FIFO in
# the data directory (the test holds its write end open, so open() does not
# block), by a session that does not reap its own IOs
# (pg_uring.test_hold_reap).
#
# 1. SIGTERM to the reaper with the read in flight: a second later
#    the same reaper is still there; once the test writes into the FIFO the
#    read returns the bytes written, the reaper logs that it completed an IO
#    before exiting, exits, and a new reaper starts.
# 2. The same during a fast shutdown: while the read is in flight the reaper
#    is still there and the server is not down; after the write the
#    shutdown completes.
# Both: the log has no TRAP or PANIC.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use Fcntl;
use POSIX qw(mkfifo);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use PgUringTest;
use PgUringWrite qw(wr_log_clean);

my $node = pgu_node('reaper_inflight', 'pg_uring.rings' => 1);
pgu_start($node);
my $fifo = $node->data_dir . '/pgu_fifo';
mkfifo($fifo, 0600) or die "mkfifo $fifo: $!";

sub alive { my ($pid) = @_; return kill(0, $pid) ? 1 : 0; }

# a session with a read of the FIFO in flight; returns it and the write end
sub read_in_flight
{
	my ($label) = @_;
	sysopen(my $w, $fifo, O_RDWR) or die "open $fifo: $!";
	my $s = pgu_session($node, 'reader');
	$s->query('SET pg_uring.test_hold_reap = on');
	$s->begin("SELECT encode(pg_uring_read_file('pgu_fifo', 0, 16), 'escape')");
	ok( pgu_poll(
			sub {
				$node->safe_psql('postgres',
					"SELECT count(*) FROM pg_uring_ios WHERE op = 'read' AND state = 'submitted'") eq '1';
			}),
		"$label: the read of the FIFO is in flight");
	return ($s, $w);
}

# ---------------------------------------------------------------------------
# 1. SIGTERM to the reaper
# ---------------------------------------------------------------------------
my ($reaper) = pgu_children($node, qr/pg_uring reaper/);
ok($reaper, "the reaper runs (pid $reaper)");
my $offset = -s $node->logfile;
my ($s, $w) = read_in_flight('terminate');
# what pg_terminate_backend does; it refuses processes outside the proc
# array, such as the reaper
ok(kill('TERM', $reaper), 'terminate: SIGTERM sent to the reaper');
sleep 1;
ok(alive($reaper), 'terminate: a second later the reaper is still there, the read still in flight');
syswrite($w, "0123456789abcdef") == 16 or die "write to $fifo: $!";
is($s->finish, '0123456789abcdef', 'terminate: the read returned the bytes written');
ok(pgu_poll(sub { !alive($reaper) }), 'terminate: then the reaper exited');
like(slurp_file($node->logfile, $offset),
	qr/pg_uring reaper: completed 1 IOs still in flight before exiting/,
	'terminate: the reaper completed the read before it exited');
my @new;
ok(pgu_poll(sub { @new = pgu_children($node, qr/pg_uring reaper/); @new == 1 && $new[0] != $reaper }),
	'terminate: a new reaper started');
$s->quit;
close $w;

# ---------------------------------------------------------------------------
# 2. a fast shutdown
# ---------------------------------------------------------------------------
($reaper) = @new;
($s, $w) = read_in_flight('shutdown');
my ($out, $err) = ('', '');
my $stop = IPC::Run::start(
	[ 'pg_ctl', '-D', $node->data_dir, '-m', 'fast', '-w', 'stop' ],
	'>', \$out, '2>', \$err);
sleep 1;
ok(alive($reaper), 'shutdown: a second into the shutdown the reaper is still there');
ok(-e $node->data_dir . '/postmaster.pid', 'shutdown: the server is not down yet');
syswrite($w, "0123456789abcdef") == 16 or die "write to $fifo: $!";
$stop->finish;
is($?, 0, 'shutdown: pg_ctl stop succeeded once the read completed');
ok(!alive($reaper), 'shutdown: the reaper is gone');
$s->quit;
close $w;
wr_log_clean($node, 'reaper', $offset);

# stopped behind the node object's back: let it know
$node->_update_pid(0);
done_testing();
