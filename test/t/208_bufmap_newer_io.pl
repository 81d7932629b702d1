
# A completion never erases the per-buffer map entry of a newer IO.
#
# The map (buffer -> IO slot) tells whoever waits on a buffer which ring to
# drain.  An IO's entry is set in the header-lock hold that sets
# BM_IO_IN_PROGRESS and cleared in the hold that clears it.  Cleared after
# the header lock is released, a completion could erase the entry of an IO
# started on the same buffer in between, and the waiters of that IO would
# sleep instead of completing it.
#
# Two rings, the reaper stopped (SIGSTOP), a one-page table t.
# - A updates t and flushes it; A completes its own write W1 and pauses
#   right after ending the IO (pg_uring.test_pause = 'end_io:0').
# - B updates t again and flushes it while never reaping its own IOs
#   (pg_uring.test_hold_reap): its write W2 of the same buffer is submitted,
#   to the other ring (so A's drain does not reap it), and stays unreaped.
# - A's pause ends.
# - C flushes t, holding back its own opportunistic draining: it finds the
#   buffer busy with W2 and waits for it through the map, draining the
#   ring, which completes W2.
#
# Asserts: C finishes while the reaper is still stopped (with the map entry
# erased it would sleep for ever), buffer_ios_helped counts it, B's flush
# returns 1, nothing is left dirty, after an immediate stop t has both
# updates, and the log has no TRAP or PANIC.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;
use PgUringWrite;

my $node = wr_node('bufmap', 'pg_uring.rings' => '2');
pgu_start($node);
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION pg_buffercache;
	CREATE TABLE t (id int NOT NULL, v int NOT NULL);
	INSERT INTO t VALUES (1, 0);
	CHECKPOINT;
});
my ($reaper) = pgu_children($node, qr/pg_uring reaper/);
ok($reaper, 'the reaper runs');
kill 'STOP', $reaper;
my $before = wr_stats($node);
my $offset = -s $node->logfile;

pgu_pause_set($node);
my $a = pgu_session($node, 'flusher_a');
$a->query("UPDATE t SET v = v + 1; SET pg_uring.test_pause = 'end_io:0'");
$a->begin("SELECT pg_uring_flush('t')");
ok(pgu_wait_pause($node, 'flusher_a', 'end_io (block 0)', $offset),
	'A completed its write and paused right after ending the IO');

my $b = pgu_session($node, 'flusher_b');
$b->query('UPDATE t SET v = v + 10; SET pg_uring.test_hold_reap = on');
$b->begin("SELECT pg_uring_flush('t')");
my $ring_of = sub {
	my ($pid) = @_;
	return $node->safe_psql('postgres',
		"SELECT ring FROM pg_uring_ios WHERE owner_pid = $pid
		    AND op LIKE 'buffer write%' AND state = 'submitted'");
};
my $ring_a = $ring_of->($a->pid);
my $ring_b;
ok(pgu_poll(sub { ($ring_b = $ring_of->($b->pid)) ne '' }),
	"B's write of the same buffer is submitted and unreaped");
isnt($ring_b, $ring_a, "B's write is on the other ring (A: $ring_a, B: $ring_b)");

pgu_pause_release($node);
is($a->finish, '1', "A's flush wrote the page");

# C holds back its opportunistic draining too, so that it really waits for
# the busy buffer (the path buffer_ios_helped counts)
my $c = pgu_session($node, 'flusher_c');
$c->query('SET pg_uring.test_hold_reap = on');
$c->begin("SELECT pg_uring_flush('t')");
my $c_done = $c->wait_done(10);
ok($c_done, "C, waiting for B's write through the map, completed it with the reaper stopped");
kill 'CONT', $reaper;
my ($co, $ce) = $c->finish;
is("$co|$ce", '0|', 'C found nothing left to write');
is($b->finish, '1', "B's flush wrote the page");
my $d = wr_delta($before, wr_stats($node));
my $helped = $node->safe_psql('postgres', 'SELECT sum(buffer_ios_helped) FROM pg_uring_stats');
cmp_ok($helped, '>', 0, "buffer_ios_helped = $helped");
is(wr_dirty($node, ['t']), 0, 'no page of t is dirty');
wr_log_clean($node, 'map', $offset);

$a->quit;
$b->quit;
$c->quit;
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', 'SELECT v FROM t'), '11', 'after an immediate stop t has both updates');

$node->stop;
done_testing();
