
# A relation over 1 GB: reads and writes on both sides of a segment
# boundary (block 131072 starts file "<relfilenode>.1").
#
# big has one 800-byte row per page (fillfactor 10), 132000 pages: segment 0
# is full, segment 1 holds the last 928 blocks.  After a restart (cold):
#
# 1. pg_uring_prewarm of blocks 131000..131199 reads exactly those 200
#    blocks (no read crosses the boundary: every one is cached and right).
# 2. An injected EIO on block 131100 names the segment file
#    "base/<db>/<relfilenode>.1" and the block.
# 3. pg_uring_flush('big', sync => true) after an update of those 200 rows
#    writes them and fdatasyncs each segment it wrote; a failing fdatasync of
#    segment 1 (test_fault 'dsfail:1', data_sync_retry = on) names the ".1"
#    file: the sync is per segment.
# 4. An injected write error on block 131150 names the ".1" file (and the
#    first block of the combined write it failed).
# Then: after an immediate stop the updates are there, verify_heapam finds
# nothing, no TRAP or PANIC.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;
use PgUringWrite;

my $node = wr_node('multi_segment', data_sync_retry => 'on', max_wal_size => '2GB');
pgu_start($node);
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION pg_buffercache;
	CREATE EXTENSION amcheck;
	CREATE TABLE big (id int NOT NULL, pad text NOT NULL) WITH (fillfactor = 10);
	ALTER TABLE big ALTER COLUMN pad SET STORAGE PLAIN;
	INSERT INTO big SELECT g, repeat('p', 800) FROM generate_series(1, 132000) g;
	CHECKPOINT;
});
my $path = $node->safe_psql('postgres', "SELECT pg_relation_filepath('big')");
is($node->safe_psql('postgres', "SELECT pg_relation_size('big') / 8192"), 132000, 'big has 132000 blocks');
ok(-f $node->data_dir . "/$path.1", "its second segment file $path.1 exists");
my $range = 'ctid >= \'(131000,0)\' AND ctid < \'(131200,0)\'';
my $rows_sql = "SELECT count(*) || ':' || sum(id) FROM big WHERE $range";
my $rows = $node->safe_psql('postgres', $rows_sql);
is($rows, '200:' . (200 * 131001 + 199 * 200 / 2), 'one row on each of blocks 131000..131199');
my $cached_sql = "SELECT count(*) FROM pg_buffercache WHERE relfilenode = pg_relation_filenode('big')
	AND relforknumber = 0 AND relblocknumber BETWEEN 131000 AND 131199
	AND reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())";
$node->restart;
my $offset = -s $node->logfile;

# 1. a prewarm across the boundary
is($node->safe_psql('postgres', $cached_sql), 0, 'prewarm: cold after the restart');
is($node->safe_psql('postgres', "SELECT pg_uring_prewarm('big', 'main', 131000, 131199)"),
	200, 'prewarm: 200 blocks read, 72 in segment 0 and 128 in segment 1');
is($node->safe_psql('postgres', $cached_sql), 200, 'prewarm: all 200 cached');
is($node->safe_psql('postgres', $rows_sql), $rows, 'prewarm: they read right');

# 2. a read error in segment 1
$node->restart;
my ($rc, $o, $e) = pgu_psql($node,
	"SET pg_uring.test_fault = 'eio:131100'; SELECT pg_uring_prewarm('big', 'main', 131000, 131199)");
like($e, qr/could not read block 131100 in file "\Q$path\E\.1": Input\/output error/,
	'read error: the message names the segment file and the block');

# 3. write-back with sync: one fdatasync per segment
$node->safe_psql('postgres', "UPDATE big SET pad = repeat('q', 800) WHERE $range");
($rc, $o, $e) = pgu_psql($node,
	"SET pg_uring.test_fault = 'dsfail:1'; SELECT pg_uring_flush('big', sync => true)");
like($e, qr/could not fsync file "\Q$path\E\.1": Bad file descriptor/,
	'sync: segment 1 has an fdatasync of its own, and a failed one names the ".1" file');
$node->safe_psql('postgres', "UPDATE big SET pad = repeat('r', 800) WHERE $range");
my $before = wr_stats($node);
my $n = $node->safe_psql('postgres', "SELECT pg_uring_flush('big', sync => true)");
cmp_ok($n, '>=', 200, "sync: the flush wrote the updated pages ($n)");
my $d = wr_delta($before, wr_stats($node));
cmp_ok($d->{drained_writes}, '>=', 2, "sync: $d->{drained_writes} fdatasyncs, one per segment written");
is(wr_dirty($node, ['big']), 0, 'sync: big is clean');

# 4. a write error in segment 1
$node->safe_psql('postgres', "UPDATE big SET pad = repeat('s', 800) WHERE $range");
($rc, $o, $e) = pgu_psql($node,
	"SET pg_uring.test_fault = 'weio:131150'; SELECT pg_uring_flush('big')");
# a combined write fails as a whole: the message names its first block
my ($wblk) = $e =~ /could not write block (\d+) in file "\Q$path\E\.1" through pg_uring: Input\/output error/;
ok(defined $wblk && $wblk <= 131150 && $wblk > 131150 - 16,
	'write error: the message names the ".1" file and the first block of the failed write ('
	  . ($wblk // '?') . ')')
  or diag $e;
is($node->safe_psql('postgres', "SELECT pg_uring_flush('big') > 0"), 't',
	'write error: without the fault the pages are written');
# from here nothing fails on purpose
my $clean_from = -s $node->logfile;

$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', "SELECT count(*) FROM big WHERE $range AND pad = repeat('s', 800)"),
	200, 'after an immediate stop the last update of all 200 rows is there');
is($node->safe_psql('postgres', "SELECT count(*) FROM verify_heapam('big')"), 0,
	'verify_heapam(big) finds nothing');
wr_log_clean($node, 'multi-segment', $clean_from);
unlike(slurp_file($node->logfile, $offset), qr/TRAP:|PANIC/, 'no TRAP or PANIC at all');

$node->stop;
done_testing();
