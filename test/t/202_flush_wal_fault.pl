
# Page writes linked behind WAL fsyncs, with and without a failing fsync.
#
# The WAL writer is slowed down and wal_buffers is tiny, so inside a large
# uncommitted transaction core has written WAL it has not flushed: the pages
# that transaction dirtied can only be written behind a WAL fsync.
#
# 1. No fault: pg_uring_flush('w') inside the transaction writes every dirty
#    buffer of w, some of them linked behind WAL fsyncs (linked_writes > 0,
#    wal_flushes > 0), no chain cancelled, nothing left dirty.  A checkpoint
#    right after (w clean, so it writes nothing of w), COMMIT, immediate
#    stop without reading w: recovery replays no page of w, and w then
#    reads as committed (md5 against the rows' formula), amcheck is clean.
# 2. pg_uring.test_wal_flush_fault (the WAL fsyncs fail with EBADF): the
#    flushing session loses its connection; the log has the PANIC naming the
#    WAL segment and a DETAIL where every page write linked behind the fsync
#    was cancelled by the kernel (cancelled = total > 0, completed = 0); the
#    server restarts by itself, recovery is done, the committed data is
#    intact (md5), amcheck is clean, pg_uring works again on the new rings
#    (the failure flag went with the old shared memory).  Twice: once as it
#    comes, once with the failed fsync's completion left to the reaper a
#    second late (pg_uring.test_hold_reap, reaper_delay = 1 s): the process
#    that reaps a failed WAL fsync PANICs, so there the reaper does, saying
#    whose IO it completed.
# 3. pg_uring_wal_flush() with the fault and written-but-unflushed WAL
#    PANICs the same way; the server comes back with the data intact.
# 4. A role that is not superuser cannot set the fault (42501).

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;
use PgUringWrite;

my $node = wr_node('wal_fault', wr_linked_conf());
pgu_start($node);
wr_create_w($node);
$node->safe_psql('postgres', 'CREATE ROLE plain LOGIN');
# the PANIC we cause, and its abort() seen by the postmaster
my $expected_panic =
  qr/PANIC:\s+could not fsync file "pg_wal\/[0-9A-F]{24}" through pg_uring|PANIC:\s+a WAL flush through pg_uring failed in another process|was terminated by signal 6: Aborted/;
pgu_log_allow($expected_panic);
my $digest = sub { wr_digest($node, 'w', 'id, v') };
my $next_id = 100000;
my $last_first;    # first id of the last big_insert

# the statements that leave WAL written but not flushed, in an open
# transaction
sub big_insert
{
	my $first = $next_id;
	$last_first = $first;
	$next_id += 20000;
	return qq{BEGIN;
INSERT INTO w SELECT g, repeat('w', 200) FROM generate_series($first, $first + 19999) g;
SELECT pg_current_wal_lsn() > pg_current_wal_flush_lsn() AS gap;
};
}

sub check_data
{
	my ($label, $expected) = @_;
	is($digest->(), $expected, "$label: w equals what was committed");
	wr_amcheck($node, $label, ['w'], ['w_idx']);
	is($node->safe_psql('postgres',
			'SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM w WHERE id > 0'),
		(split /:/, $expected)[0], "$label: the index finds every row");
	return;
}

# ---------------------------------------------------------------------------
# 1. linked writes, no fault
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', 'SELECT pg_uring_reset_stats()');
my $out = $node->safe_psql(
	'postgres', big_insert() . q{
	SELECT count(*) FROM pg_buffercache WHERE isdirty AND relfilenode = pg_relation_filenode('w');
	SELECT pg_uring_flush('w');
	SELECT count(*) FROM pg_buffercache WHERE isdirty AND relfilenode = pg_relation_filenode('w');
	SELECT sum(linked_writes), sum(wal_flushes), sum(cancelled_chains), sum(writes_deferred),
		   sum(buffer_write_failures) + sum(errors) + sum(cancelled), sum(buffer_writes)
	  FROM } . pgu_counters() . q{;
	CHECKPOINT;
	COMMIT;
});
my ($gap, $before, $n, $after, $stats) = split /\n/, $out;
my ($linked, $wal_flushes, $cancelled_chains, $deferred, $failures, $writes) = split /\|/, $stats;
note "no fault: linked_writes $linked, wal_flushes $wal_flushes, writes_deferred $deferred";
is($gap, 't', 'no fault: WAL was written beyond what is flushed');
cmp_ok($before, '>', 100, "no fault: $before dirty buffers of w");
is($n, $before, 'no fault: pg_uring_flush wrote every one of them');
is($writes, $n, 'no fault: buffer_writes equals the count returned');
is($after, 0, 'no fault: no dirty buffer of w left');
cmp_ok($linked, '>', 0, 'no fault: some writes were linked behind WAL fsyncs');
cmp_ok($wal_flushes, '>', 0, 'no fault: WAL was fsynced through the ring');
is($cancelled_chains, 0, 'no fault: no chain cancelled');
is($failures, 0, 'no fault: no failed or cancelled IO');
# the expected contents from their formula: reading w now would set hint
# bits, and recovery would replay them as full-page images over what
# pg_uring wrote
my $expected = wr_digest($node,
	"(SELECT g AS id, repeat('c', 100) || g AS v FROM generate_series(1, 5000) g
	  UNION ALL SELECT g, repeat('w', 200) FROM generate_series($last_first, $last_first + 19999) g) w",
	'id, v', 'w::text');
my $offset = -s $node->logfile;
$node->stop('immediate');
$node->start;
check_data('no fault, after an immediate stop', $expected);
wr_log_clean($node, 'no fault', $offset);

# ---------------------------------------------------------------------------
# 2. the fault under pg_uring_flush
# ---------------------------------------------------------------------------
sub fault_under_flush
{
	my ($label, $set) = @_;
	my $expected = $digest->();
	$node->safe_psql('postgres', 'CHECKPOINT');
	my $offset = -s $node->logfile;
	my $s = pgu_session($node, 'faulty');
	my $spid = $s->pid;
	is($s->query(big_insert() . "SET pg_uring.test_wal_flush_fault = on;\n$set"), 't',
		"$label: WAL was written beyond what is flushed");
	my ($o, $e) = $s->query("SELECT pg_uring_flush('w')");
	like($e, qr/server closed the connection unexpectedly|connection to server was lost/,
		"$label: the flushing session lost its connection");
	ok($s->wait_exit, "$label: the session's psql ended");
	wr_wait_restart($node, $label, $offset);
	my $log = slurp_file($node->logfile, $offset);
	# whoever reaps the failed fsync PANICs: the owner, or the reaper
	# completing the owner's IO (it says whose)
	like($log,
		qr/\] (?:faulty )?PANIC:\s+could not fsync file "pg_wal\/[0-9A-F]{24}" through pg_uring: Bad file descriptor/,
		"$label: the process that reaped the failure PANICked naming the WAL segment");
	ok($log =~ /faulty PANIC:\s+could not fsync file/ ||
		  $log =~ /CONTEXT:\s+completing an IO of process $spid\b/,
		"$label: the PANIC is the owner's, or says it completed the owner's IO");
	my ($c, $total, $completed) =
	  $log =~ /\] (?:faulty )?DETAIL:\s+(\d+) of the (\d+) page writes linked behind it were cancelled by the kernel, (\d+) completed\./;
	ok(defined $c, "$label: the DETAIL counts the linked writes")
	  or diag $log;
	cmp_ok($total // 0, '>', 0,
		"$label: page writes were linked behind the failed fsync (" . ($total // '?') . ')');
	is($c, $total, "$label: the kernel cancelled every one of them");
	is($completed, 0, "$label: none of them completed");
	like($log, qr/(?:server process|background worker "pg_uring reaper") \(PID \d+\) was terminated by signal 6/,
		"$label: the postmaster saw the PANIC and reset everything");
	check_data("$label, after the crash restart", $expected);
	is($node->safe_psql('postgres', "SELECT count(*) FROM w WHERE id >= $last_first"),
		0, "$label: the rows of the interrupted transaction are not there");
	wr_log_clean($node, $label, $offset, $expected_panic);
	return;
}

fault_under_flush('fault', '');

# the same with the failed fsync's completion left to the reaper, a second
# late (the flushing session never reaps its own IOs): the reaper PANICs,
# with what the kernel cancelled
$node->append_conf('postgresql.conf', "pg_uring.reaper_delay = 1000\n");
$node->reload;
fault_under_flush('fault, reaped late', 'SET pg_uring.test_hold_reap = on;');
$node->append_conf('postgresql.conf', "pg_uring.reaper_delay = 1\n");
$node->reload;

# pg_uring works again on the new rings, the failure flag is gone
my $st = wr_stats($node);
my ($o, $e);
is("$st->{in_flight}|$st->{cancelled_chains}|$st->{buffer_writes}", '0|0|0',
	'fault: fresh counters on the new rings, nothing in flight');
$out = $node->safe_psql(
	'postgres', q{
	UPDATE w SET v = v || '+' WHERE id % 10 = 0;
	SELECT pg_uring_flush('w') > 0;
	SELECT count(*) FROM pg_buffercache WHERE isdirty AND relfilenode = pg_relation_filenode('w');
	SELECT pg_uring_wal_flush() >= pg_current_wal_flush_lsn();
});
is($out, "t\n0\nt", 'fault: after the restart pg_uring_flush and pg_uring_wal_flush work again');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'), 0, 'fault: no IO slot in use');

# ---------------------------------------------------------------------------
# 3. the fault under pg_uring_wal_flush
# ---------------------------------------------------------------------------
$expected = $digest->();
$offset = -s $node->logfile;
my $s = pgu_session($node, 'faulty_wal');
is($s->query(big_insert() . 'SET pg_uring.test_wal_flush_fault = on'), 't',
	'wal flush fault: WAL was written beyond what is flushed');
($o, $e) = $s->query('SELECT pg_uring_wal_flush()');
like($e, qr/server closed the connection unexpectedly|connection to server was lost/,
	'wal flush fault: the session lost its connection');
ok($s->wait_exit, "wal flush fault: the session's psql ended");
wr_wait_restart($node, 'wal flush fault', $offset);
like(slurp_file($node->logfile, $offset),
	qr/PANIC:\s+could not fsync file "pg_wal\/[0-9A-F]{24}" through pg_uring: Bad file descriptor/,
	'wal flush fault: the PANIC is logged');
check_data('wal flush fault, after the crash restart', $expected);
wr_log_clean($node, 'wal flush fault', $offset, $expected_panic);

# ---------------------------------------------------------------------------
# 4. only superusers set the fault
# ---------------------------------------------------------------------------
my ($rc, $pout, $perr) = pgu_psql($node,
	"SET pg_uring.test_wal_flush_fault = on",
	extra_params => [ '-U', 'plain' ]);
like($perr,
	qr/ERROR:\s+42501: permission denied to set parameter "pg_uring.test_wal_flush_fault"/,
	'a plain role cannot set pg_uring.test_wal_flush_fault');
is($node->safe_psql('postgres', 'SHOW pg_uring.test_wal_flush_fault'), 'off', 'the fault is off');

$node->stop;
done_testing();
