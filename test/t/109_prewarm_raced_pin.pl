
# The raced pin: a core reader pins the zero-filled buffer a prewarm got
# from ReadBufferExtended(RBM_ZERO_AND_LOCK) before the prewarm looked at the
# pins (design.md section 4, step 3).
#
# Core returns that buffer valid (zero-filled) and locked by the prewarm; a
# backend that pins it now believes the page valid and waits for the
# content lock.  The prewarm must then fill the page synchronously while it
# still holds the lock, and a failure there is a PANIC: a zero page left
# valid would be initialised over the real rows.
#
# The prewarm pauses holding block N's buffer (pg_uring.test_pause =
# 'claimed:N'); a SELECT by ctid reads block N, pins the buffer and waits
# for its content lock; then the pause ends.
#
# 1. A clean block: the SELECT returns the right row, zero_page_fills = 1,
#    every block is cached, t reads as before.
# 2. A corrupt block (checksum mismatch on disk): the prewarm PANICs with
#    the documented message, the server restarts, the SELECT never sees a
#    zero page; once the block is repaired t reads as before.
# Both: no TRAP, no PANIC but the one of case 2.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;
use PgUringPrewarm;
use PgUringWrite qw(wr_wait_restart wr_log_clean);

my $node = pw_node('raced_pin', 'pg_uring.rings' => '1', restart_after_crash => 'on');
pgu_start($node);
my $panic =
  qr/PANIC:\s+pg_uring: could not fill block 5 of relation t, which other backends already see as valid|was terminated by signal 6: Aborted/;
pgu_log_allow($panic);
my $nblocks = pw_create_t($node, 2000);
my $md5_sql = "SELECT md5(string_agg(h, '' ORDER BY id)) FROM t";
my $md5 = $node->safe_psql('postgres', $md5_sql);
my %row = map { $_ => $node->safe_psql('postgres', "SELECT id || ':' || h FROM t WHERE ctid = '($_,1)'") } (3, 5);

# prewarm paused on block $blk, a reader of block $blk pinned and waiting
sub raced
{
	my ($label, $blk) = @_;
	my $offset = -s $node->logfile;
	pgu_pause_set($node);
	my $a = pgu_session($node, 'prewarmer');
	$a->query("SET pg_uring.test_pause = 'claimed:$blk'");
	$a->begin("SELECT pg_uring_prewarm('t')");
	ok(pgu_wait_pause($node, 'prewarmer', "claimed (block $blk)", $offset),
		"$label: the prewarm holds block ${blk}'s zero-filled buffer");
	my $b = pgu_session($node, 'reader');
	$b->begin("SELECT id || ':' || h FROM t WHERE ctid = '($blk,1)'");
	ok( pgu_poll(
			sub {
				$node->safe_psql('postgres',
					"SELECT pinning_backends FROM pg_buffercache
					  WHERE relfilenode = pg_relation_filenode('t') AND relblocknumber = $blk
					    AND reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())")
				  eq '2';
			}),
		"$label: the reader pinned the buffer too (two pins)");
	pgu_pause_release($node);
	return ($a, $b, $offset);
}

# ---------------------------------------------------------------------------
# 1. a clean block
# ---------------------------------------------------------------------------
$node->restart;
$node->safe_psql('postgres', 'SELECT pg_uring_reset_stats()');
my ($a, $b, $offset) = raced('clean', 3);
is($b->finish, $row{3}, 'clean: the reader got the real row, not a zero page');
like($a->finish, qr/^\d+$/, 'clean: the prewarm finished');
is(pw_stats($node)->{zero_page_fills}, 1, 'clean: the prewarm filled the pinned page synchronously');
is(pw_ncached($node, 't'), $nblocks, "clean: every block of t ($nblocks) is cached");
is($node->safe_psql('postgres', $md5_sql), $md5, 'clean: t reads as before');
wr_log_clean($node, 'clean', $offset);
$a->quit;
$b->quit;

# ---------------------------------------------------------------------------
# 2. a corrupt block
# ---------------------------------------------------------------------------
my $file = $node->data_dir . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath('t')");
$node->stop;
open(my $fh, '+<', $file) or die "open $file: $!";
binmode $fh;
my $at = 5 * 8192 + 4000;
sysseek($fh, $at, 0);
sysread($fh, my $saved, 16) == 16 or die "read $file: $!";
sysseek($fh, $at, 0);
syswrite($fh, 'X' x 16) == 16 or die "write $file: $!";
close $fh;
$node->start;

($a, $b, $offset) = raced('corrupt', 5);
my ($bo, $be) = $b->finish;
# a zero page would have answered without error and without the row
like($be // '', qr/server closed the connection|connection to server was lost|terminating connection because of crash/,
	'corrupt: the reader lost its connection in the crash restart, never reading a zero page');
wr_wait_restart($node, 'corrupt', $offset);
like(slurp_file($node->logfile, $offset),
	qr/prewarmer PANIC:\s+pg_uring: could not fill block 5 of relation t, which other backends already see as valid/,
	'corrupt: the prewarm PANICked, as documented');
$a->quit;
$b->quit;
my ($rc, $o, $e) = pgu_psql($node, "SELECT count(*) FROM t WHERE ctid = '(5,1)'");
like($e, qr/invalid page in block 5 of relation/, 'corrupt: core reports the corrupt block (XX001)');

# repair the block: t reads as before
$node->stop;
open($fh, '+<', $file) or die "open $file: $!";
binmode $fh;
sysseek($fh, $at, 0);
syswrite($fh, $saved) == 16 or die "write $file: $!";
close $fh;
$node->start;
is($node->safe_psql('postgres', $md5_sql), $md5, 'corrupt: once the block is repaired t reads as before');
pw_amcheck($node, 0);

$node->stop;
done_testing();
