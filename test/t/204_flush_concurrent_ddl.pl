
# Relations dropped or truncated while pg_uring_flush has their buffers in
# hand: no write reaches a file that is gone or a block beyond a new end.
#
# pg_uring.test_pause = 'write_staged' holds a flush's staged writes (buffers
# pinned, BM_IO_IN_PROGRESS) before they are submitted, until the test
# removes the pause file: a barrier, not a sleep.
# pg_uring_flush() (whole pool) takes no relation lock, so DDL runs
# concurrently.  Each case: the flush is seen (pg_uring_ios) to hold staged
# writes of the relation, then the DDL starts in another session and is
# seen waiting on the buffer IO (pg_stat_activity: IPC/BufferIO) while those
# writes are still there; it finishes only after them, and both succeed.
#
# a. DROP TABLE: the old file is 0 bytes afterwards (core truncates it at
#    commit and unlinks it at the next checkpoint, so a write that landed
#    late would show as a non-empty file) and gone after a CHECKPOINT, which
#    must not fail on a sync request for it.
# b. TRUNCATE: the same for the old relfilenode; the table is empty.
# c. VACUUM truncating the heap (rows deleted at the end, the pages emptied
#    by an earlier VACUUM (TRUNCATE false)): while the emptied tail pages
#    are being written: afterwards the file is exactly as long as the
#    blocks holding rows (a late write beyond the new end would lengthen
#    it), equal to pg_relation_size; no buffer beyond the end; the rows
#    left are intact; the same after a checkpoint and a restart.
# d. DROP DATABASE while writes of one of its tables are staged: the
#    database directory is gone, a CHECKPOINT succeeds.
# e. pg_uring_flush('d') holds AccessShareLock: DROP TABLE waits for the
#    lock until the flush returned (with every dirty buffer of d written).
# Throughout: no IO slot left, no dirty buffer of a dropped relfilenode,
# a CHECKPOINT completes, no PANIC or failed write in the log.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;
use PgUringWrite;

my $node = wr_node('flush_ddl', shared_buffers => '32MB', 'pg_uring.rings' => '1');
pgu_start($node);
$node->safe_psql('postgres', 'CREATE EXTENSION pg_buffercache; CREATE EXTENSION amcheck');

my $flusher = pgu_session($node, 'flusher');
my $ddl     = pgu_session($node, 'ddl');
$flusher->query("SET pg_uring.test_pause = 'write_staged'");

sub wait_event
{
	my ($pid) = @_;
	return $node->safe_psql('postgres', pgu_wait_event_sql($pid));
}

# Start the flush, wait until it holds staged writes of relfilenode $fn
# (on blocks >= $minblock if given), start $ddl_sql in the other session,
# wait until it waits on the buffer IO, with the writes still staged or in
# flight.  Returns the flush's and the DDL's (out, err).
sub flush_against
{
	my ($label, $fn, $flush_sql, $ddl_sql, %opt) = @_;
	# (a write's target names its block, or the blocks first-last it combines)
	my $blk = defined $opt{minblock}
	  ? " AND substring(target from ' blocks? (?:[0-9]+-)?([0-9]+)')::int >= $opt{minblock}" : '';
	my $staged_sql = "SELECT count(*) FROM pg_uring_ios WHERE op LIKE 'buffer write%'
		AND state = 'staged' AND target ~ '^rel [0-9]+/[0-9]+/$fn fork main '$blk";

	pgu_pause_set($node);
	$flusher->begin($flush_sql);
	ok(pgu_poll(sub { $node->safe_psql('postgres', $staged_sql) > 0 || $flusher->done }),
		"$label: the flush has writes of the relation staged");
	ok(!$flusher->done, "$label: the flush is still running");
	$ddl->begin($ddl_sql);
	my $waits = $opt{waits} // qr/^IPC:BufferIO$/;
	ok(pgu_poll(sub { wait_event($ddl->pid) =~ $waits || $ddl->done }),
		"$label: the DDL started");
	my $ev = wait_event($ddl->pid);
	my $inflight = wr_ios_of($node, $fn);
	ok(!$ddl->done, "$label: the DDL has not finished while the writes are pending");
	like($ev, $waits, "$label: the DDL waits ($ev)");
	cmp_ok($inflight, '>', 0, "$label: with $inflight writes of the relation still staged or in flight");

	pgu_pause_release($node);
	my ($fo, $fe) = $flusher->finish;
	my ($do, $de) = $ddl->finish;
	is($fe, '', "$label: the flush returned without error");
	like($fo // '', qr/^\d+$/, "$label: the flush returned a count (" . ($fo // 'nothing') . ')');
	is($de, '', "$label: the DDL succeeded");
	is(wr_ios_of($node, $fn), 0, "$label: no write of the relation left in pg_uring_ios");
	return ($fo, $do);
}

sub after_checks
{
	my ($label, $db, @gone) = @_;
	for my $fn (@gone)
	{
		is( $node->safe_psql(
				'postgres',
				"SELECT count(*) FROM pg_buffercache WHERE relfilenode = $fn"
			),
			0,
			"$label: no buffer of the old relfilenode $fn");
	}
	my ($rc, $out, $err) = pgu_psql($node, 'CHECKPOINT');
	is("$rc|$err", '0|', "$label: a CHECKPOINT completes");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'), 0,
		"$label: no IO slot in use");
	is(wr_dirty_total($node), 0, "$label: nothing dirty after the checkpoint");
	return;
}

# dirty the first $pages pages of d (HOT updates stay on their page)
sub dirty_d
{
	my ($db, $pages) = @_;
	$node->safe_psql($db, "UPDATE d SET v = upper(v) WHERE id <= " . 20 * $pages);
	return;
}

my $offset = 0;

# ---------------------------------------------------------------------------
# a. DROP TABLE
# ---------------------------------------------------------------------------
{
	my ($fn, $path) = wr_create_d($node, 'postgres', 40);
	dirty_d('postgres', 10);
	my $dirty = wr_dirty($node, 'd');
	cmp_ok($dirty, '>=', 10, "DROP: $dirty dirty buffers of d");
	my ($n) = flush_against('DROP', $fn, 'SELECT pg_uring_flush()', 'DROP TABLE d');
	cmp_ok($n, '>=', $dirty, 'DROP: the flush wrote at least the buffers of d it had staged');
	my $size = wr_file_size($node, $path);
	ok($size <= 0, "DROP: the old file $path is empty or gone (size $size)");
	after_checks('DROP', 'postgres', $fn);
	is(wr_file_size($node, $path), -1, 'DROP: the old file is gone after the checkpoint');
}

# ---------------------------------------------------------------------------
# b. TRUNCATE
# ---------------------------------------------------------------------------
{
	my ($fn, $path) = wr_create_d($node, 'postgres', 40);
	dirty_d('postgres', 10);
	flush_against('TRUNCATE', $fn, 'SELECT pg_uring_flush()', 'TRUNCATE d');
	my $size = wr_file_size($node, $path);
	ok($size <= 0, "TRUNCATE: the old file $path is empty or gone (size $size)");
	isnt($node->safe_psql('postgres', "SELECT pg_relation_filenode('d')"), $fn,
		'TRUNCATE: d has a new relfilenode');
	is($node->safe_psql('postgres', 'SELECT count(*) FROM d'), 0, 'TRUNCATE: d is empty');
	after_checks('TRUNCATE', 'postgres', $fn);
	is(wr_file_size($node, $path), -1, 'TRUNCATE: the old file is gone after the checkpoint');
	is($node->safe_psql('postgres', "SELECT pg_relation_size('d')"), 0, 'TRUNCATE: the new file is empty');
}

# ---------------------------------------------------------------------------
# c. VACUUM truncating the heap
# ---------------------------------------------------------------------------
{
	my ($fn, $path) = wr_create_d($node, 'postgres', 40);
	# rows on pages 0..19 stay; 20..39 are emptied by a first VACUUM that
	# does not truncate, so they are dirty and empty: the flush writes them
	# while the second VACUUM cuts them off (it skips the all-visible pages
	# and only needs to read them backwards to find the new end)
	$node->safe_psql('postgres', q{
		DELETE FROM d WHERE id > 400;
		VACUUM (TRUNCATE false) d;
	});
	my $new_end = $node->safe_psql('postgres',
		q{SELECT max((ctid::text::point)[0])::int + 1 FROM d});
	is($new_end, 20, 'VACUUM: the rows left are on the first 20 pages');
	is($node->safe_psql('postgres', "SELECT pg_relation_size('d') / 8192"), 40,
		'VACUUM: the first VACUUM did not truncate');
	my $expected = wr_digest($node, 'd', 'id');
	my $dirty_tail = $node->safe_psql('postgres', qq{
		SELECT count(*) FROM pg_buffercache WHERE isdirty AND relforknumber = 0
		   AND relfilenode = $fn AND relblocknumber >= $new_end});
	is($dirty_tail, 20, 'VACUUM: the 20 emptied pages are dirty');
	flush_against('VACUUM', $fn, 'SELECT pg_uring_flush()', 'VACUUM d', minblock => $new_end);
	is($node->safe_psql('postgres', "SELECT pg_relation_size('d') / 8192"), $new_end,
		"VACUUM: the heap was truncated to $new_end pages");
	is(wr_file_size($node, $path), 8192 * $new_end,
		'VACUUM: the file on disk is exactly that long (no write beyond the new end)');
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM pg_buffercache WHERE relfilenode = $fn AND relforknumber = 0 AND relblocknumber >= $new_end"
		),
		0,
		'VACUUM: no buffer beyond the new end');
	is(wr_digest($node, 'd', 'id'), $expected, 'VACUUM: the rows left are intact');
	after_checks('VACUUM', 'postgres');
	is(wr_file_size($node, $path), 8192 * $new_end, 'VACUUM: still that long after the checkpoint');
	$node->restart;
	is(wr_digest($node, 'd', 'id'), $expected, 'VACUUM: the rows left are intact after a restart');
	is(wr_file_size($node, $path), 8192 * $new_end, 'VACUUM: and the file still that long');
	wr_amcheck($node, 'VACUUM', ['d'], []);
	# the restart ended the sessions
	$flusher = pgu_session($node, 'flusher');
	$ddl     = pgu_session($node, 'ddl');
	$flusher->query("SET pg_uring.test_pause = 'write_staged'");
}

# ---------------------------------------------------------------------------
# d. DROP DATABASE
# ---------------------------------------------------------------------------
{
	$node->safe_psql('postgres', 'CREATE DATABASE db2');
	my ($fn) = wr_create_d($node, 'db2', 20);
	my $dboid = $node->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = 'db2'");
	my $dbdir = "base/$dboid";
	ok(-d $node->data_dir . "/$dbdir", "DROP DATABASE: $dbdir exists");
	dirty_d('db2', 10);
	flush_against('DROP DATABASE', $fn, 'SELECT pg_uring_flush()', 'DROP DATABASE db2');
	ok(!-e $node->data_dir . "/$dbdir", "DROP DATABASE: $dbdir is gone");
	is($node->safe_psql('postgres', "SELECT count(*) FROM pg_buffercache WHERE reldatabase = $dboid"),
		0, 'DROP DATABASE: no buffer of the database left');
	after_checks('DROP DATABASE', 'postgres');
}

# ---------------------------------------------------------------------------
# e. pg_uring_flush('d') holds its lock: DROP waits for it
# ---------------------------------------------------------------------------
{
	my ($fn, $path) = wr_create_d($node, 'postgres', 40);
	dirty_d('postgres', 20);
	my $dirty = wr_dirty($node, 'd', toast => 1);
	my ($n) = flush_against('flush(d) vs DROP', $fn, "SELECT pg_uring_flush('d')", 'DROP TABLE d',
		waits => qr/^Lock:relation$/);
	is($n, $dirty, 'flush(d) vs DROP: the flush wrote every dirty buffer of d first');
	my $size = wr_file_size($node, $path);
	ok($size <= 0, "flush(d) vs DROP: the old file is empty or gone (size $size)");
	after_checks('flush(d) vs DROP', 'postgres', $fn);
}

$flusher->quit;
$ddl->quit;
wr_log_clean($node, 'whole run', 0);
$node->stop;
done_testing();
