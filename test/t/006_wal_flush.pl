
# pg_uring_wal_flush: WAL that core has written but not flushed is fsynced
# through the ring.
#
# The WAL writer is slowed down (10 s delay, no flush-after) and wal_buffers
# is tiny, so a large uncommitted transaction makes core write WAL without
# flushing it.  Inside that transaction pg_uring_wal_flush() must submit
# an fsync of the segment being written (wal_flushes = 1) and return an LSN
# at least as far as what was written; with fsync = off it must submit none.
#
# A chain of several segment fsyncs is not exercised here because core never
# leaves one: XLogWrite fsyncs each segment as it finishes writing it, so
# written-but-unflushed WAL lies within the segment being written.  The
# ~50 MB transaction below shows that (still one fsync, nothing linked).

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;

# (PostgreSQL::Test::Cluster turns fsync off by default: on here)
my $node = pgu_node(
	'walflush',
	'fsync'                  => 'on',
	'pg_uring.rings'         => 1,
	'wal_buffers'            => '64kB',
	'wal_writer_delay'       => '10s',
	'wal_writer_flush_after' => '0',
	'max_wal_size'           => '1GB',
	'checkpoint_timeout'     => '1h');
pgu_start($node);
$node->safe_psql('postgres', 'CREATE TABLE w (id int, v text)');

# one session: an open transaction writes WAL, nobody flushes it
sub flush_in_open_xact
{
	my ($rows) = @_;
	my $counters = pgu_counters();
	return $node->safe_psql(
		'postgres', qq{
		SELECT pg_uring_reset_stats();
		BEGIN;
		INSERT INTO w SELECT g, repeat('w', 200) FROM generate_series(1, $rows) g;
		SELECT pg_current_wal_lsn() AS written, pg_current_wal_flush_lsn() AS flushed \\gset
		SELECT pg_uring_wal_flush() AS returned \\gset
		SELECT :'written'::pg_lsn > :'flushed'::pg_lsn AS gap,
			   :'returned'::pg_lsn >= :'written'::pg_lsn AS covers_written,
			   sum(wal_flushes) AS wal_flushes, sum(linked) AS linked,
			   sum(errors) + sum(cancelled) AS failures
		  FROM $counters;
		COMMIT;
	});
}

# within one segment
my ($gap, $covers, $flushes, $linked, $failures) = split /\|/,
  (split /\n/, flush_in_open_xact(20000))[-1];
is($gap, 't', 'core has written WAL it has not flushed');
is($covers, 't', 'pg_uring_wal_flush covers everything written');
is($flushes, 1, 'it fsynced the segment being written through the ring');
is($failures, 0, 'no failed or cancelled fsync');

# a transaction writing ~50 MB of WAL (16 MB segments): core itself fsyncs each
# segment it finishes writing, so what is left is the segment being written
($gap, $covers, $flushes, $linked, $failures) = split /\|/,
  (split /\n/, flush_in_open_xact(200000))[-1];
is($gap, 't', 'large transaction: written beyond flushed');
is($covers, 't', 'large transaction: covered');
is($flushes, 1, 'large transaction: one fsync, of the segment being written (core fsynced the others)');
is($linked, 0, 'large transaction: a chain of one, nothing linked');
is($failures, 0, 'no failed or cancelled fsync');

# nothing written since: nothing to do
is( $node->safe_psql(
		'postgres', q{
		SELECT pg_uring_wal_flush() AS first \gset
		SELECT pg_uring_reset_stats();
		SELECT pg_uring_wal_flush() >= :'first'::pg_lsn, sum(fsyncs)
		  FROM pg_uring_stat_io WHERE io_kind = 'wal fsync'}),
	"\nt|0",
	'a second flush with nothing new written submits nothing');

# fsync = off: nothing is fsynced
$node->append_conf('postgresql.conf', "fsync = off\n");
$node->reload;
($gap, $covers, $flushes, $linked, $failures) = split /\|/,
  (split /\n/, flush_in_open_xact(20000))[-1];
is($covers, 't',  'fsync = off: the LSN returned still covers what was written');
is($flushes, 0, 'fsync = off: no fsync submitted');

$node->stop;
done_testing();
