
# A failed WAL fsync through pg_uring stops the server on every path, as a
# failed WAL fsync does in core ("fsyncgate"): the process that reaps it
# PANICs, whatever its owner is doing meanwhile.  After the failure the
# kernel may have dropped the WAL pages, and a later fsync on a fresh
# descriptor can succeed: the server must not go on.
#
# pg_uring.test_wal_flush_fault makes the WAL fsyncs fail (fd -1).  Inside
# an open transaction core has written WAL it has not flushed (tiny
# wal_buffers, a sleepy WAL writer), so pg_uring_flush must link page writes
# behind WAL fsyncs of its own.  Paths:
#
# 1. terminated: the flusher pauses right after submitting its chain
#    (pg_uring.test_pause = 'chain_submitted', while the file pg_uring.pause
#    exists), so it cannot look at its IOs; as soon as a cancelled chain is
#    counted (or the server is already restarting) the flusher is
#    terminated, then the pause ends.
# 2. statement_timeout: the reaper waits a second before reaping
#    (pg_uring.reaper_delay = 1000), the flusher's statement times out after
#    300 ms and its cleanup reaps the failure.  The transaction is a small
#    one after a checkpoint (see begin_path): dirty pages whose WAL is
#    already flushed would be plain writes, and a first batch of them, which
#    the flusher may not reap, would fill its depth and keep it waiting for
#    the reaper before it linked anything behind a WAL fsync.
# 3. the writer: pg_uring.writer with the fault on, a 2 MB pool cycled by
#    inserts in an open transaction, so the writer writes pages whose WAL is
#    written but not flushed.
# 4. a chain the kernel takes in two parts: pg_uring.test_fault 'ssplit:1'
#    makes the kernel take only the first WAL fsync of the submission; the
#    page writes linked behind the chain must still be cancelled, none
#    written (the DETAIL of the PANIC says so); a small transaction after
#    a checkpoint, as in 2, so that the flush links its first batch.  Not run
#    with pg_uring.io_method = sync, which has no submission queue.
#
# Each: the server PANICs ("could not fsync file ... through pg_uring") and
# reinitialises, recovery is done, committed data is intact (md5, amcheck),
# the interrupted transaction's rows are not there, no TRAP, and no PANIC
# but this one.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;
use PgUringWrite;

my $node = wr_node('wal_fault_paths', wr_linked_conf(), shared_buffers => '2MB');
pgu_start($node);
wr_create_w($node);
# the PANIC we cause, the PANIC of anyone who saw the failure before the
# restart, and their abort() seen by the postmaster
my $expected_panic =
  qr/PANIC:\s+could not fsync file "pg_wal\/[0-9A-F]{24}" through pg_uring|PANIC:\s+a WAL flush through pg_uring failed in another process|was terminated by signal 6: Aborted/;
pgu_log_allow($expected_panic);
my $next_id = 100000;

sub open_insert
{
	my ($rows) = @_;
	my $first = $next_id;
	$next_id += 20000;
	return ($first, qq{BEGIN;
INSERT INTO w SELECT g, repeat('w', 200) FROM generate_series($first, $first + $rows - 1) g;
SELECT pg_current_wal_lsn() > pg_current_wal_flush_lsn() AS gap;
});
}

# A path's start: what w holds, the log offset, and a session (named $app)
# inside a transaction that has written WAL it has not flushed, with $set
# run (asserted unless $set is undef: the writer may PANIC before).  With
# $small, a checkpoint first and 1000 rows, not 20000, so that every dirty
# page of w is the transaction's and none was evicted (which flushes WAL).
# Returns (expected digest, offset, first id inserted, session).
sub begin_path
{
	my ($label, $app, $set, $small) = @_;
	my $expected = wr_digest($node, 'w', 'id, v');
	$node->safe_psql('postgres', 'CHECKPOINT') if $small;
	my $offset = -s $node->logfile;
	my ($first, $sql) = open_insert($small ? 1000 : 20000);
	my $s = pgu_session($node, $app);
	my $gap = $s->query($sql . ($set // ''));
	is($gap, 't', "$label: WAL was written beyond what is flushed") if defined $set;
	return ($expected, $offset, $first, $s);
}

# the crash restart that a path must cause, and what must hold after it
sub check_panicked
{
	my ($label, $offset, $expected, $first) = @_;
	wr_wait_restart($node, $label, $offset);
	return check_after_panic($label, $offset, $expected, $first);
}

sub check_after_panic
{
	my ($label, $offset, $expected, $first) = @_;
	my $log = slurp_file($node->logfile, $offset);
	like($log, qr/PANIC:\s+could not fsync file "pg_wal\/[0-9A-F]{24}" through pg_uring: Bad file descriptor/,
		"$label: a PANIC names the failed WAL fsync");
	is(wr_digest($node, 'w', 'id, v'), $expected, "$label: w equals what was committed");
	wr_amcheck($node, $label, ['w'], ['w_idx']);
	is($node->safe_psql('postgres', "SELECT count(*) FROM w WHERE id >= $first"),
		0, "$label: the rows of the interrupted transaction are not there");
	wr_log_clean($node, $label, $offset, $expected_panic);
	return $log;
}

# ---------------------------------------------------------------------------
# 1. the flusher is terminated once the failure is reaped by someone else
# ---------------------------------------------------------------------------
{
	my $label = 'terminated';
	my ($expected, $offset, $first, $s) = begin_path($label, 'flusher1',
		"SET pg_uring.test_wal_flush_fault = on; SET pg_uring.test_pause = 'chain_submitted'");
	pgu_pause_set($node);
	$s->begin("SELECT pg_uring_flush('w')");
	my $seen = pgu_poll(
		sub {
			return 1 if slurp_file($node->logfile, $offset) =~ /reinitializing/;
			my ($rc, $o) = pgu_psql($node, 'SELECT sum(cancelled_chains) FROM pg_uring_stat_writeback');
			return $rc == 0 && $o =~ /^[1-9]/;
		});
	ok($seen, "$label: the failure was reaped");
	pgu_psql($node, 'SELECT pg_terminate_backend(' . $s->pid . ')');
	pgu_pause_release($node);
	check_panicked($label, $offset, $expected, $first);
	$s->quit;
}

# ---------------------------------------------------------------------------
# 2. the flusher's statement times out before the failure is reaped
# ---------------------------------------------------------------------------
{
	my $label = 'statement_timeout';
	$node->append_conf('postgresql.conf', "pg_uring.reaper_delay = 1000\n");
	$node->reload;
	my ($expected, $offset, $first, $s) = begin_path($label, 'flusher2',
		'SET pg_uring.test_wal_flush_fault = on; SET pg_uring.test_hold_reap = on', 'small');
	$s->query("SET statement_timeout = '300ms'; SELECT pg_uring_flush('w')");
	my $log = check_panicked($label, $offset, $expected, $first);
	# with pg_uring.test_hold_reap the flusher reaps only in its cleanup,
	# after the timeout, and the reaper waits a second: so the cleanup
	# reaped the failure and PANICked
	like($log, qr/flusher2 PANIC:\s+could not fsync file "pg_wal\/[0-9A-F]{24}" through pg_uring/,
		"$label: the flusher's cleanup after the timeout reaped the failure and PANICked");
	$s->quit;
	$node->append_conf('postgresql.conf', "pg_uring.reaper_delay = 1\n");
	$node->reload;
}

# ---------------------------------------------------------------------------
# 3. the writer meets the failure
# ---------------------------------------------------------------------------
{
	my $label = 'writer';
	# no restart after the crash: the restarted writer would meet the fault
	# again before the test could switch it off
	$node->append_conf('postgresql.conf',
		"pg_uring.writer = on\npg_uring.writer_delay = 10ms\npg_uring.test_wal_flush_fault = on\nrestart_after_crash = off\n");
	$node->restart;
	my ($expected, $offset, $first, $s) = begin_path($label, 'inserter3', undef);
	# more inserts in the same transaction cycle the pool until the writer
	# writes a page whose WAL is not flushed
	my $panicked = pgu_poll(
		sub {
			return 1 if slurp_file($node->logfile, $offset) =~ /database system is shut down/;
			$s->query("INSERT INTO w SELECT g, repeat('x', 200) FROM generate_series($first, $first + 999) g", 10)
			  if $s->alive;
			return 0;
		});
	ok($panicked, "$label: the server went down");
	like(slurp_file($node->logfile, $offset),
		qr/background worker "pg_uring (?:writer|reaper)" \(PID \d+\) was terminated by signal 6/,
		"$label: the writer, or the reaper completing its IO, PANICked");
	$s->quit;
	$node->_update_pid(0);
	$node->append_conf('postgresql.conf',
		"pg_uring.writer = off\npg_uring.test_wal_flush_fault = off\nrestart_after_crash = on\n");
	$node->start;
	check_after_panic($label, $offset, $expected, $first);
}

# ---------------------------------------------------------------------------
# 4. the kernel takes the chain in two parts
# ---------------------------------------------------------------------------
# (a ring's submission: with pg_uring.io_method = sync there is no kernel
# queue to take part of a chain, and 'ssplit' never fires)
if (pgu_io_method() eq 'sync')
{
	note 'split chain: not a case in pg_uring.io_method = sync (no submission queue)';
}
else
{
	my $label = 'split chain';
	my ($expected, $offset, $first, $s) = begin_path($label, 'flusher4',
		"SET pg_uring.test_wal_flush_fault = on; SET pg_uring.test_fault = 'ssplit:1'", 'small');
	my ($o, $e) = $s->query("SELECT pg_uring_flush('w')");
	like($e, qr/server closed the connection unexpectedly|connection to server was lost/,
		"$label: the flushing session lost its connection");
	my $log = check_panicked($label, $offset, $expected, $first);
	like($log, qr/pg_uring: the kernel took 1 of \d+ entries submitted to ring \d+, inside a link chain/,
		"$label: the submission was taken in two parts inside a chain");
	my ($c, $total, $completed) =
	  $log =~ /DETAIL:\s+(\d+) of the (\d+) page writes linked behind it were cancelled by the kernel, (\d+) completed\./;
	cmp_ok($total // 0, '>', 0, "$label: page writes were linked behind the failed chain (" . ($total // '?') . ')');
	is($completed // -1, 0, "$label: none of them was written");
	is($c // -1, $total // -2, "$label: every one of them was cancelled");
	$s->quit;
}

$node->stop;
done_testing();
