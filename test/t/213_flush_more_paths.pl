
# Two write-back paths nothing else forces.
#
# 1. wal_sync_method = open_datasync: WAL writes are durable as they are
#    written, so nothing is fsynced.  Inside a transaction that has written
#    WAL it has not "flushed", pg_uring_wal_flush() returns at least what
#    was written and submits no fsync (wal_flushes = 0), and pg_uring_flush
#    writes every dirty page plainly (no WAL fsync chain, nothing linked or
#    deferred); after an immediate stop t holds what was committed.
# 2. A prewarm of a relation while a flush of it has writes staged (paused
#    with pg_uring.test_pause = 'write_staged': the buffers valid, pinned,
#    IO in progress): the prewarm reads nothing twice and does not wait for
#    the staged writes (it finishes while the flush is still paused); then
#    the flush finishes, nothing is left dirty, and t reads right.
# Both: no TRAP or PANIC.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;
use PgUringWrite;

my $node = wr_node('more_paths', wr_linked_conf(), wal_sync_method => 'open_datasync');
pgu_start($node);
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION pg_buffercache;
	CREATE TABLE t (id int NOT NULL, v text NOT NULL);
	INSERT INTO t SELECT g, repeat('a', 100) FROM generate_series(1, 20000) g;
	CHECKPOINT;
});
my $offset = -s $node->logfile;

# ---------------------------------------------------------------------------
# 1. open_datasync
# ---------------------------------------------------------------------------
is($node->safe_psql('postgres', 'SHOW wal_sync_method'), 'open_datasync', 'wal_sync_method is open_datasync');
my $before = wr_stats($node);
my $out = $node->safe_psql(
	'postgres', q{
	BEGIN;
	UPDATE t SET v = repeat('b', 100);
	SELECT pg_current_wal_lsn() AS written \gset
	SELECT pg_uring_wal_flush() >= :'written'::pg_lsn AS covers;
	SELECT count(*) FROM pg_buffercache WHERE isdirty AND relfilenode = pg_relation_filenode('t');
	SELECT pg_uring_flush('t');
	COMMIT;
});
my ($covers, $dirty, $n) = split /\n/, $out;
is($covers, 't', 'open_datasync: pg_uring_wal_flush covers what was written');
cmp_ok($dirty, '>', 100, "open_datasync: $dirty pages of t dirty");
is($n, $dirty, 'open_datasync: the flush wrote every one of them');
my $d = wr_delta($before, wr_stats($node));
is("$d->{wal_flushes}|$d->{linked_writes}|$d->{cancelled_chains}", '0|0|0',
	'open_datasync: no WAL fsync submitted, nothing linked');
is($d->{buffer_write_failures}, 0, 'open_datasync: no failure');
my $digest = wr_digest($node, 't', 'id, v');
$node->stop('immediate');
$node->start;
is(wr_digest($node, 't', 'id, v'), $digest, 'open_datasync: after an immediate stop t holds what was committed');

# ---------------------------------------------------------------------------
# 2. a prewarm of a relation whose writes are staged
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', "UPDATE t SET v = repeat('c', 100)");
my $digest2 = wr_digest($node, 't', 'id, v');
$dirty = wr_dirty($node, ['t']);
$offset = -s $node->logfile;
pgu_pause_set($node);
my $f = pgu_session($node, 'flusher');
$f->query("SET pg_uring.test_pause = 'write_staged'");
$f->begin("SELECT pg_uring_flush('t')");
ok(pgu_wait_pause($node, 'flusher', 'write_staged', $offset), 'staged: the flush paused with writes staged');
my $staged = $node->safe_psql('postgres',
	"SELECT count(*) FROM pg_uring_ios WHERE owner_pid = " . $f->pid . " AND state = 'staged'");
cmp_ok($staged, '>', 0, "staged: $staged writes staged");
my $p = pgu_session($node, 'prewarmer');
$p->begin("SELECT pg_uring_prewarm('t')");
ok($p->wait_done(20), 'staged: the prewarm finished while the flush was still paused');
is($p->finish, 0, 'staged: it read nothing (every block is cached)');
pgu_pause_release($node);
is($f->finish, $dirty, "staged: the flush wrote the $dirty dirty pages");
is(wr_dirty($node, ['t']), 0, 'staged: nothing left dirty');
is(wr_digest($node, 't', 'id, v'), $digest2, 'staged: t reads right');
wr_log_clean($node, 'more paths', $offset);
$f->quit;
$p->quit;

$node->stop;
done_testing();
