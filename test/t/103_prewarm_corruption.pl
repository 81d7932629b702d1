
# A page that fails verification (checksum) on disk.
#
# With data checksums on, 100 bytes in the middle of block N of the table
# (and of block M of its index) are overwritten while the server is down.
# Then:
#   - pg_uring_prewarm fails with core's "invalid page in block N of
#     relation base/..." (SQLSTATE XX001), after reading and caching every
#     other block; block N stays out of shared_buffers, and no IO is left;
#   - a plain SELECT fails with the same error (the failed buffer is not
#     valid: core reads it again);
#   - prewarming a range or a list without block N works; a list with it
#     fails;
#   - zero_damaged_pages = on: core's WARNING and a zeroed page, the call
#     returns normally; ignore_checksum_failure = on (the caller's setting)
#     accepts the page with core's warning;
#   - buffer_read_failures counts the failures.
# The same for an index block.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;
use PgUringPrewarm;

# ---------------------------------------------------------------------------
# helpers (local to this file)
# ---------------------------------------------------------------------------
# overwrite $len bytes at $off of block $blk of the file (server stopped)
sub pw_corrupt
{
	my ($node, $relpath, $blk, $off, $len) = @_;
	my $file = $node->data_dir . '/' . $relpath;
	open(my $fh, '+<:raw', $file) or die "could not open $file: $!";
	sysseek($fh, $blk * 8192 + $off, 0) or die "seek: $!";
	my $old;
	sysread($fh, $old, $len) == $len or die "read: $!";
	my $new = join('', map { chr(($_ * 37 + 11) & 0xff) } 1 .. $len);
	die "garbage equals the page contents" if $new eq $old;
	sysseek($fh, $blk * 8192 + $off, 0) or die "seek: $!";
	syswrite($fh, $new) == $len or die "write: $!";
	close $fh or die "close: $!";
	return;
}

# ---------------------------------------------------------------------------
# setup
# ---------------------------------------------------------------------------
my $node = pw_node('corruption');
pgu_start($node);
my $nblocks = pw_create_t($node, 100000, index => 1, analyze => 1);
my $nindex  = $node->safe_psql('postgres', "SELECT pg_relation_size('t_idx') / 8192");
my $relpath = $node->safe_psql('postgres', "SELECT pg_relation_filepath('t')");
my $idxpath = $node->safe_psql('postgres', "SELECT pg_relation_filepath('t_idx')");
my $bad  = int($nblocks / 2) + 5;    # not at the start of a combined read
my $ibad = int($nindex / 2) + 3;
my $rows_on_bad = $node->safe_psql('postgres',
	"SELECT count(*) FROM t WHERE ctid >= '($bad,0)' AND ctid < '(" . ($bad + 1) . ",0)'");
note "table $relpath: $nblocks blocks, corrupting block $bad ($rows_on_bad rows); "
  . "index $idxpath: $nindex blocks, corrupting block $ibad";
cmp_ok($rows_on_bad, '>', 0, 'the block to corrupt holds rows');

$node->stop;
pw_corrupt($node, $relpath, $bad,  4000, 100);
pw_corrupt($node, $idxpath, $ibad, 4000, 100);
$node->start;

# ---------------------------------------------------------------------------
# prewarm of the table fails with core's error, after caching the rest
# ---------------------------------------------------------------------------
my ($rc, $out, $err) = pgu_psql($node, "SELECT pg_uring_prewarm('t')");
isnt($rc, 0, 'pg_uring_prewarm of a table with a corrupt block fails');
like(
	$err,
	qr/ERROR:  XX001: invalid page in block $bad of relation \Q$relpath\E\n/,
	"error: invalid page in block $bad of relation $relpath, SQLSTATE XX001");
like($err, qr/WARNING:  .*page verification failed, calculated checksum \d+ but expected \d+/,
	'core\'s checksum warning was logged');

my @cached = pw_cached_blocks($node, 't');
is(scalar(@cached), $nblocks - 1, 'every other block is cached (nblocks - 1)');
ok(!grep({ $_ == $bad } @cached), "block $bad is not cached");
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'), 0, 'no IO left');
my $s = pw_stats($node);
cmp_ok($s->{buffer_read_failures}, '>=', 1,
	"buffer_read_failures = $s->{buffer_read_failures}");
is($s->{in_flight}, 0, 'nothing in flight');

# pg_uring again: the failed buffer is not valid, so it must read the block
# again (not take it for cached) and fail the same way
$node->safe_psql('postgres', 'SELECT pg_uring_reset_stats()');
($rc, $out, $err) = pgu_psql($node, "SELECT pg_uring_prewarm('t')");
like($err, qr/ERROR:  XX001: invalid page in block $bad of relation/,
	'a second prewarm fails again on the same block')
  or note "second prewarm returned '$out'";
$s = pw_stats($node);
is($s->{buffer_blocks}, 1, 'the second prewarm read only the missing block');
is($s->{buffer_read_failures}, 1, 'and counted one failure');

# core reads it again and fails the same way
($rc, $out, $err) = pgu_psql($node, 'SELECT count(*) FROM t');
isnt($rc, 0, 'a plain SELECT fails too');
like(
	$err,
	qr/ERROR:  XX001: invalid page in block $bad of relation \Q$relpath\E\n/,
	'the plain SELECT gets the same core error');

# and pg_uring after core's failure, with a block list
($rc, $out, $err) = pgu_psql($node, "SELECT pg_uring_prewarm_blocks('t', ARRAY[$bad]::int8[])");
like($err, qr/ERROR:  XX001: invalid page in block $bad of relation/,
	'pg_uring_prewarm_blocks of the bad block after core failed on it fails too')
  or note "pg_uring_prewarm_blocks returned '$out'";
@cached = pw_cached_blocks($node, 't');
is(scalar(@cached), $nblocks - 1, 'still every other block cached, the bad one not');

# ranges and lists around the bad block
$node->restart;
is( $node->safe_psql(
		'postgres',
		"SELECT pg_uring_prewarm('t', 'main', 0, $bad - 1) + pg_uring_prewarm('t', 'main', $bad + 1, NULL)"
	),
	$nblocks - 1,
	'prewarming the ranges around the bad block works');
($rc, $out, $err) =
  pgu_psql($node, "SELECT pg_uring_prewarm_blocks('t', ARRAY[$bad + 1, $bad, 0]::int8[])");
like($err, qr/ERROR:  XX001: invalid page in block $bad of relation/,
	'a block list containing the bad block fails');

# ---------------------------------------------------------------------------
# zero_damaged_pages and ignore_checksum_failure: the caller's settings
# ---------------------------------------------------------------------------
$node->restart;
($rc, $out, $err) = pgu_psql($node,
	"SET zero_damaged_pages = on; SELECT pg_uring_prewarm('t')");
is($rc, 0, 'with zero_damaged_pages = on prewarm succeeds');
is($out, $nblocks, 'and returns the number of blocks');
like(
	$err,
	qr/WARNING:  XX001: invalid page in block $bad of relation \Q$relpath\E; zeroing out page/,
	'with core\'s "zeroing out page" warning');
is(scalar(my @c = pw_cached_blocks($node, 't')), $nblocks, 'every block is cached now');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t'),
	100000 - $rows_on_bad, 'the zeroed page holds no rows; all other rows are there');

# the zeroed page lives only in shared_buffers: after a restart, the plain
# SELECT with zero_damaged_pages gives the same
$node->restart;
($rc, $out, $err) = pgu_psql($node, "SET zero_damaged_pages = on; SELECT count(*) FROM t");
is($out, 100000 - $rows_on_bad, 'core with zero_damaged_pages agrees');

$node->restart;
($rc, $out, $err) = pgu_psql($node,
	"SET ignore_checksum_failure = on; SELECT pg_uring_prewarm('t')");
is($rc, 0, 'with ignore_checksum_failure = on prewarm succeeds');
is($out, $nblocks, 'and returns the number of blocks');
like($err, qr/WARNING:  .*page verification failed, calculated checksum \d+ but expected \d+/,
	'with core\'s checksum warning');
unlike($err, qr/ERROR/, 'and no error');

# ---------------------------------------------------------------------------
# the index
# ---------------------------------------------------------------------------
$node->restart;
($rc, $out, $err) = pgu_psql($node, "SELECT pg_uring_prewarm('t_idx')");
isnt($rc, 0, 'pg_uring_prewarm of an index with a corrupt block fails');
like(
	$err,
	qr/ERROR:  XX001: invalid page in block $ibad of relation \Q$idxpath\E\n/,
	"error: invalid page in block $ibad of relation $idxpath");
@cached = pw_cached_blocks($node, 't_idx');
is(scalar(@cached), $nindex - 1, 'every other index block is cached');
ok(!grep({ $_ == $ibad } @cached), "index block $ibad is not cached");
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'), 0, 'no IO left');

# ---------------------------------------------------------------------------
# a clean server after all that
# ---------------------------------------------------------------------------
$s = pw_stats($node);
is($s->{in_flight}, 0, 'nothing in flight at the end');
ok($node->safe_psql('postgres', 'SELECT 1') eq '1', 'server is up');

$node->stop;
done_testing();
