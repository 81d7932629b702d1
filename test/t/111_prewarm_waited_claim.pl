# A prewarm asks core for a block (RBM_ZERO_AND_LOCK) that another backend's
# read has in progress.  Core sleeps until that read ends and then hands back
# the page that read filled, locked.  PostgreSQL 15 counts that as a buffer
# hit; PostgreSQL 17 counts nothing, so the hit counter alone cannot tell it
# from the zero page core makes on a miss.  Taking it for one made the
# prewarm read the block again (or fill it synchronously, when others held
# pins), throwing away what another session had changed on the page
# meanwhile: 107's torture found a row too many and changed payloads on 17.
#
# Here:
#  - B (prewarm) is paused after deciding to ask core for block 0, before
#    asking (test_pause "claim:0");
#  - A (prewarm, test_hold_reap, the reaper stopped) has every block of t in
#    submitted, unreaped reads;
#  - C updates a row of block 0 and sleeps on the buffer's IO;
#  - B goes on, and sleeps on the buffer's IO inside core;
#  - the reaper goes on: A's reads complete, B and C wake up.
# B must leave block 0 alone: nothing of t is read twice, nothing filled
# synchronously, and C's update survives, in the buffer and on disk.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;
use PgUringPrewarm;
use PgUringWrite qw(wr_log_clean);

my $node = pw_node(
	'waited_claim',
	'pg_uring.rings'        => '1',
	'pg_uring.reaper_delay' => '1000');
pgu_start($node);
my $nblocks = pw_create_t($node, 15000);
my $filenode = $node->safe_psql('postgres', "SELECT pg_relation_filenode('t')");
my $id = $node->safe_psql('postgres', "SELECT id FROM t WHERE ctid = '(0,1)'");
is($id, '1', 'the row with id 1 is the first of block 0');
my $sum = $node->safe_psql('postgres', 'SELECT sum(hashtext(h)) FROM t WHERE id <> 1');

$node->restart;
$node->safe_psql('postgres', 'SELECT pg_uring_reset_stats()');
is(pw_ncached($node, 't'), 0, 'restart: nothing of t cached');
my $offset = -s $node->logfile;

my @reaper;
pgu_poll(sub { @reaper = pgu_children($node, qr/pg_uring reaper/); @reaper == 1 });
is(scalar(@reaper), 1, 'one reaper process');

my $a = pgu_session($node, 'holder_a');
my $b = pgu_session($node, 'claimer_b');
my $c = pgu_session($node, 'updater_c');
my ($apid, $bpid, $cpid) = ($a->pid, $b->pid, $c->pid);

pgu_pause_set($node);
$b->query("SET pg_uring.test_pause = 'claim:0'");
$b->begin("SELECT pg_uring_prewarm('t')");
ok(pgu_wait_pause($node, 'claimer_b', 'claim (block 0)', $offset),
	'B paused before asking core for block 0');

kill 'STOP', $reaper[0];
$a->query('SET pg_uring.test_hold_reap = on');
$a->begin("SELECT pg_uring_prewarm('t')");
my $a_reads = '';
ok( pgu_poll(
		sub {
			$a_reads = $node->safe_psql('postgres',
				"SELECT string_agg(state, ',') FROM pg_uring_ios WHERE owner_pid = $apid AND op = 'buffer read' AND target ~ '^rel [0-9]+/[0-9]+/$filenode fork main blocks 0-'"
			);
			return $a_reads eq 'submitted';
		}),
	'A has block 0 in a submitted, unreaped read')
  or diag "A's read of block 0: '$a_reads'";

$c->begin("UPDATE t SET h = 'changed while B waited' WHERE id = 1");
my $ev = '';
ok(pgu_poll(sub { ($ev = pw_wait_event($node, $cpid)) eq 'IPC:BufferIO' }),
	'C (the update) sleeps on the IO of A\'s read')
  or diag "C's wait event: $ev";

pgu_pause_release($node);
ok(pgu_poll(sub { ($ev = pw_wait_event($node, $bpid)) eq 'IPC:BufferIO' }),
	'B, asking core for block 0, sleeps on the IO of A\'s read')
  or diag "B's wait event: $ev";
ok(!$a->done && !$b->done && !$c->done, 'nobody finishes while the reaper is stopped');

kill 'CONT', $reaper[0];
my ($out, $err) = $c->finish;
is($err, '', 'C: the update succeeds');
($out, $err) = $b->finish;
is($out, '0', 'B\'s prewarm read no block (A read them all)');
is($err, '', 'B: no error');
($out, $err) = $a->finish;
is($out, $nblocks, 'A\'s prewarm returns the number of blocks');
is($err, '', 'A: no error');

my $s = pw_stats($node);
is($s->{buffer_blocks}, $nblocks,
	"every block of t was read once ($nblocks): B did not read block 0 again");
is($s->{zero_page_fills}, 0, 'B filled no page synchronously');
is($s->{in_flight}, 0, 'nothing in flight');

is($node->safe_psql('postgres', 'SELECT h FROM t WHERE id = 1'),
	'changed while B waited', 'C\'s update is in the buffer');
is($node->safe_psql('postgres', 'SELECT sum(hashtext(h)) FROM t WHERE id <> 1'),
	$sum, 'every other row is as before');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_buffercache WHERE pinning_backends > 0'),
	0, 'no buffer is left pinned');
wr_log_clean($node, 'waited claim', $offset);

$a->quit;
$b->quit;
$c->quit;
$node->safe_psql('postgres', 'CHECKPOINT');
$node->restart;
is($node->safe_psql('postgres', 'SELECT h FROM t WHERE id = 1'),
	'changed while B waited', 'after a checkpoint and a restart, C\'s update is on disk');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), '15000', 'and t has its 15000 rows');
pw_amcheck($node, 0);
$node->stop;
done_testing();
