
# The two WAL cases of write-back that nothing else forces: a page whose WAL
# is not even written yet (writes_deferred), and a page whose WAL another
# process's flush in flight already covers (wal_flush_waits).
#
# 1. writes_deferred: in an open transaction an UPDATE leaves its WAL in
#    the WAL buffers (the WAL writer sleeps 10 s, wal_buffers are not full),
#    so the page's LSN is beyond what is written.  pg_uring_flush('t') in
#    that transaction must not write the page early: it defers it
#    (writes_deferred > 0, no linked write for it), has core flush the WAL,
#    and writes it afterwards; nothing is left dirty.
# 2. wal_flush_waits: A's flush of a pauses right after submitting its
#    chain of WAL fsyncs and linked writes (pg_uring.test_pause =
#    'chain_submitted'); B then flushes b, whose pages need WAL that A's
#    chain covers: B waits for that flush's result instead of submitting its
#    own (wal_flush_waits = 1, B links nothing), and its pages are written.
#    The reaper is stopped meanwhile, so A's chain stays unreaped until B
#    waits for it.  (With pg_uring.io_method = sync the chain has completed
#    inside A's submission before A pauses: B finds the WAL durable and
#    waits for nothing, wal_flush_waits = 0.)
# 3. pg_uring_flush(rel, sync => true) also makes durable the commit record
#    of a transaction committed (synchronous_commit = off) before it.
# The WAL writer is stopped (SIGSTOP) throughout, so that only the test
# writes or flushes WAL.  Both: every dirty page written, no failure, no
# TRAP or PANIC.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;
use PgUringWrite;

my $node = wr_node('wal_waits', wr_linked_conf(), 'pg_uring.rings' => '2');
pgu_start($node);
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION pg_buffercache;
	CREATE EXTENSION pageinspect;
	CREATE TABLE t (id int NOT NULL, v text NOT NULL);
	CREATE TABLE a (id int NOT NULL, v text NOT NULL);
	CREATE TABLE b (id int NOT NULL, v text NOT NULL);
	INSERT INTO t SELECT g, 'x' FROM generate_series(1, 1000) g;
	INSERT INTO a SELECT g, 'x' FROM generate_series(1, 1000) g;
	INSERT INTO b SELECT g, 'x' FROM generate_series(1, 1000) g;
	VACUUM (FREEZE) t, a, b;
	CHECKPOINT;
});
my $offset = -s $node->logfile;
# the WAL writer stopped (SIGSTOP): only what the test does writes or
# flushes WAL
my ($walwriter) = pgu_children($node, qr/walwriter/);
ok($walwriter, 'the WAL writer runs');
kill 'STOP', $walwriter;

# ---------------------------------------------------------------------------
# 1. WAL not even written: deferred
# ---------------------------------------------------------------------------
my $part1 = q{
	BEGIN;
	UPDATE t SET v = 'y' WHERE id = 1;
	SELECT pg_current_wal_insert_lsn() > pg_current_wal_lsn() AS not_written;
	SELECT count(*) FROM pg_buffercache WHERE isdirty AND relfilenode = pg_relation_filenode('t');
	SELECT count(*) FROM pg_buffercache WHERE isdirty AND relfilenode = pg_relation_filenode('t')
	   AND relforknumber = 0;
	SELECT pg_uring_flush('t');
	COMMIT;
};
# once, and a checkpoint: the catalog pages these statements read have
# their hint bits set, so that the second time they log no full-page image
# that would push the UPDATE's WAL out of the WAL buffers
$node->safe_psql('postgres', $part1);
$node->safe_psql('postgres', 'CHECKPOINT');
my $before = wr_stats($node);
my $out = $node->safe_psql('postgres', $part1);
# the heap pages of the old and the new row version carry the UPDATE's LSN;
# the visibility map page carries none (its change is in the heap record)
my ($not_written, $dirty, $heap_dirty, $n) = split /\n/, $out;
is($not_written, 't', 'deferred: the UPDATE\'s WAL was not written yet');
cmp_ok($heap_dirty, '>=', 1, "deferred: $heap_dirty heap pages of t dirty ($dirty in all)");
is($n, $dirty, 'deferred: the flush wrote them all in the end');
my $d = wr_delta($before, wr_stats($node));
is($d->{writes_deferred}, $heap_dirty, 'deferred: each heap page was deferred first (none written early)');
is($d->{linked_writes}, 0, 'deferred: it was not linked either: core made its WAL durable first');
is($d->{buffer_write_failures}, 0, 'deferred: no failure');
is(wr_dirty($node, ['t']), 0, 'deferred: t is clean');

# ---------------------------------------------------------------------------
# 2. another process's flush in flight covers the WAL: wait for its result
# ---------------------------------------------------------------------------
# the reaper stopped, so that A's completed chain stays unreaped until B
# waits for it (A and B are on different rings: B's own draining does not
# reap it either)
my ($reaper) = pgu_children($node, qr/pg_uring reaper/);
kill 'STOP', $reaper;
my $sa = pgu_session($node, 'flusher_a');
my $sb = pgu_session($node, 'flusher_b');
# b first, then a: a's WAL (written, not flushed) ends after b's
is($sb->query("BEGIN; UPDATE b SET v = 'y'"), '', 'waits: b updated in an open transaction');
# a's and b's WAL written (more WAL after it fills the WAL buffers), none
# of it flushed
is($sa->query("BEGIN; UPDATE a SET v = 'y'; UPDATE t SET v = 'z';
	SELECT pg_current_wal_lsn() > pg_current_wal_flush_lsn()"), 't',
	'waits: WAL written beyond what is flushed');
$before = wr_stats($node);
pgu_pause_set($node);
$sa->query("SET pg_uring.test_pause = 'chain_submitted'");
$sa->begin("SELECT pg_uring_flush('a')");
ok(pgu_wait_pause($node, 'flusher_a', 'chain_submitted', $offset),
	"waits: A paused right after submitting its chain");
my $mid = wr_stats($node);
is($node->safe_psql('postgres',
		"SELECT max(lsn) > pg_current_wal_flush_lsn() AND max(lsn) <= pg_current_wal_lsn()
		   FROM generate_series(0, pg_relation_size('b') / 8192 - 1) g, page_header(get_raw_page('b', g::int))"),
	't', "waits: b's pages need WAL that is written, not flushed");
my $b_written = $sb->query("SELECT pg_uring_flush('b')");
cmp_ok($b_written, '>', 0, "waits: B's flush wrote b's $b_written dirty pages");
my $after_b = wr_stats($node);
pgu_pause_release($node);
kill 'CONT', $reaper;
my $a_written = $sa->finish;
cmp_ok($a_written, '>', 0, "waits: A's flush wrote a's $a_written pages");
my $db = wr_delta($mid, $after_b);
note 'B: ' . join(', ', map { "$_ $db->{$_}" } sort keys %$db);
if (pgu_io_method() eq 'sync')
{
	# A's chain ran to its end inside its submission: when A pauses, the
	# WAL is durable already, and there is no flush in flight to wait for
	is($db->{wal_flush_waits}, 0, "waits (sync): B found the WAL durable, no flush in flight to wait for");
}
else
{
	is($db->{wal_flush_waits}, 1, "waits: B waited once for A's WAL flush in flight");
}
is($db->{linked_writes}, 0, 'waits: B linked no write behind a flush of its own');
is($db->{cancelled_chains}, 0, 'waits: no chain was cancelled');
$d = wr_delta($before, wr_stats($node));
cmp_ok($d->{linked_writes}, '>', 0, "waits: A's writes were linked behind its chain");
is($d->{buffer_write_failures}, 0, 'waits: no failure');
$sa->query('COMMIT');
$sb->query('COMMIT');

is(wr_dirty($node, ['a', 'b']), 0, 'waits: a and b are clean');

# ---------------------------------------------------------------------------
# 3. sync => true: the commit records of what was committed before are
#    durable too (with synchronous_commit = off they were not even written;
#    the update of a pushes t's WAL out of the WAL buffers, so t's page
#    needs no deferral, only its commit record is left unwritten)
# ---------------------------------------------------------------------------
$out = $node->safe_psql(
	'postgres', q{
	SET synchronous_commit = off;
	BEGIN;
	UPDATE t SET v = 'w' WHERE id = 2;
	UPDATE a SET v = 'w';
	COMMIT;
	SELECT pg_current_wal_insert_lsn() AS committed \gset
	SELECT pg_current_wal_flush_lsn() < :'committed'::pg_lsn AS not_durable;
	SELECT pg_uring_flush('t', sync => true) > 0 AS written;
	SELECT pg_current_wal_flush_lsn() >= :'committed'::pg_lsn AS durable;
});
is($out, "t\nt\nt", 'sync: a commit not yet durable before the flush is durable after it');
kill 'CONT', $walwriter;
wr_log_clean($node, 'wal waits', $offset);
$sa->quit;
$sb->quit;

$node->stop;
done_testing();
