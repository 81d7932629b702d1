
# A failed data-file fdatasync of pg_uring_flush(rel, sync => true), with
# and without data_sync_retry, as core treats a failed data fsync.
#
# pg_uring.test_fault 'dsfail:0' makes the fdatasync of segment 0 of every
# file the flush wrote fail (fdatasync of fd -1: EBADF, for real, in the
# kernel).
#
# 1. data_sync_retry = off (the default): the flushing session PANICs,
#    naming the file; the server restarts by itself; t holds what was
#    committed; amcheck is clean.
# 2. data_sync_retry = on: an ERROR naming the file, the server stays up;
#    the write was registered with the checkpointer, so a CHECKPOINT
#    afterwards syncs the file again and succeeds; once the fault is gone
#    the flush with sync succeeds; t holds what was committed after an
#    immediate stop.
# Both: no TRAP, no PANIC but case 1's.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;
use PgUringWrite;

my $node = wr_node('sync_fault');
pgu_start($node);
my $panic =
  qr/PANIC:\s+could not fsync file "base\/\d+\/\d+": Bad file descriptor|was terminated by signal 6: Aborted/;
pgu_log_allow($panic);
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION pg_buffercache;
	CREATE EXTENSION amcheck;
	CREATE TABLE t (id int NOT NULL, v int NOT NULL);
	CREATE INDEX t_idx ON t (id);
	INSERT INTO t SELECT g, 0 FROM generate_series(1, 5000) g;
	CHECKPOINT;
});
my $sum = sub { $node->safe_psql('postgres', 'SELECT sum(v) FROM t') };

# ---------------------------------------------------------------------------
# 1. data_sync_retry = off: PANIC
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', 'UPDATE t SET v = 1');
my $offset = -s $node->logfile;
my $s = pgu_session($node, 'syncer');
$s->query("SET pg_uring.test_fault = 'dsfail:0'");
my ($o, $e) = $s->query("SELECT pg_uring_flush('t', sync => true)");
like($e, qr/server closed the connection unexpectedly|connection to server was lost/,
	'no retry: the flushing session lost its connection');
wr_wait_restart($node, 'no retry', $offset);
like(slurp_file($node->logfile, $offset),
	qr/syncer PANIC:\s+could not fsync file "base\/\d+\/\d+": Bad file descriptor/,
	'no retry: the flushing session PANICked naming the file');
is($sum->(), 5000, 'no retry: t holds what was committed');
wr_amcheck($node, 'no retry', ['t'], ['t_idx']);
$s->quit;

# ---------------------------------------------------------------------------
# 2. data_sync_retry = on: ERROR, the checkpointer retries
# ---------------------------------------------------------------------------
$node->append_conf('postgresql.conf', "data_sync_retry = on\n");
$node->restart;
$offset = -s $node->logfile;
$node->safe_psql('postgres', 'UPDATE t SET v = 2');
$s = pgu_session($node, 'syncer2');
$s->query("SET pg_uring.test_fault = 'dsfail:0'");
($o, $e) = $s->query("SELECT pg_uring_flush('t', sync => true)");
like($e, qr/ERROR:\s+\w+: could not fsync file "base\/\d+\/\d+": Bad file descriptor/,
	'retry: an ERROR naming the file');
is($s->query('SELECT 1'), '1', 'retry: the session and the server are still up');
# from here on nothing fails on purpose
$offset = -s $node->logfile;
is(wr_dirty($node, ['t']), 0, 'retry: the pages were written (only the sync failed)');
my ($rc, $co, $ce) = pgu_psql($node, 'CHECKPOINT');
is("$rc|$ce", '0|', 'retry: a CHECKPOINT syncs the files again and succeeds');
$s->query('RESET pg_uring.test_fault');
$node->safe_psql('postgres', 'UPDATE t SET v = 3');
is($s->query("SELECT pg_uring_flush('t', sync => true) > 0"), 't',
	'retry: without the fault the flush with sync succeeds');
$s->quit;
wr_log_clean($node, 'retry', $offset);
$node->stop('immediate');
$node->start;
is($sum->(), 15000, 'retry: after an immediate stop t holds what was committed');
wr_amcheck($node, 'retry', ['t'], ['t_idx']);

$node->stop;
done_testing();
