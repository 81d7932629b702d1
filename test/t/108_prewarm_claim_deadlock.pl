
# A prewarm never holds a claimed buffer IO-in-progress while it waits for
# core (design.md section 4, two-phase start).
#
# The deadlock this guards against: the prewarm has claimed leaf S of a
# btree and, before submitting it, asks core for block L; a concurrent
# insert holds L's content lock while it splits L and reads L's right
# sibling, S.  If S were IO-in-progress but unsubmitted, the insert would
# sleep in WaitIO on it (holding L's lock, so uninterruptibly), while the
# prewarm waits for L's content lock: both stuck for good.
#
# Set-up: an index on float8 built so that leaf 8's right sibling is leaf
# 4 (blocks 5 to 7 are leaves in between) and leaf 8 is full: the next key
# in its range splits it.  After a restart only the metapage, the root and
# one far leaf are cached.  The prewarm claims 4..7 and pauses
# (pg_uring.test_pause = 'claim:8') between its buffer-table look-up of
# block 8 (not cached) and asking core for it; meanwhile the insert reads
# leaf 8, splits it and reads leaf 4.  Then the pause ends.
#
# Asserts: the insert finishes while the prewarm is paused (it read leaf 4
# through core), the prewarm then finishes too, leaf 8 was split, every
# block of the index is cached, amcheck is clean, and the log shows no
# TRAP/PANIC.  On code where claims are IO-in-progress before submission
# the insert hangs here.

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

my $node = pw_node('claim_deadlock', 'pg_uring.rings' => '1');
pgu_start($node);

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION pageinspect;
	CREATE EXTENSION amcheck;
	CREATE EXTENSION pg_buffercache;
	CREATE TABLE k (id float8 NOT NULL);
	INSERT INTO k SELECT g * 1000 FROM generate_series(1, 600) g;
	CREATE INDEX kidx ON k (id);
	INSERT INTO k SELECT g FROM generate_series(1, 999) g;
});
my $leaf = sub {
	my ($b) = @_;
	return $node->safe_psql('postgres',
		"SELECT type::text || ':' || btpo_next FROM bt_page_stats('kidx', $b)");
};
is($leaf->(8), 'l:4', "set-up: leaf 8's right sibling is leaf 4");
is($leaf->($_), "l:" . ($_ + 1), "set-up: block $_ is a leaf, before leaf " . ($_ + 1))
  for 5 .. 7;

# fill leaf 8 with keys between 999 and 1000 (its high key) until the next
# one does not fit
$node->safe_psql(
	'postgres', q{
	DO $$
	DECLARE i int := 1;
	BEGIN
		WHILE (SELECT free_size FROM bt_page_stats('kidx', 8)) >= 20 LOOP
			INSERT INTO k VALUES (999 + i / 10000.0);
			i := i + 1;
		END LOOP;
	END $$;
	CHECKPOINT;
});
is($leaf->(8), 'l:4', 'set-up: leaf 8 is full and not split yet');
my $nblocks = $node->safe_psql('postgres', "SELECT pg_relation_size('kidx') / 8192");
is($nblocks, 9, 'set-up: the index has 9 blocks');
my $rows = $node->safe_psql('postgres', 'SELECT count(*) FROM k');

$node->restart;
my $ins = pgu_session($node, 'inserter');
# caches the metapage, the root and the rightmost leaf (2), nothing in 4..8
is($ins->query('SET enable_seqscan = off; SET enable_bitmapscan = off;
	SELECT count(*) FROM k WHERE id = 600000'), '1', 'the inserter looked up a far key');
my $cached = $node->safe_psql('postgres',
	"SELECT string_agg(relblocknumber::text, ',' ORDER BY relblocknumber) FROM pg_buffercache
	  WHERE relfilenode = pg_relation_filenode('kidx') AND reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())");
is($cached, '0,2,3', 'only the metapage, the rightmost leaf and the root are cached');

pgu_pause_set($node);
my $offset = -s $node->logfile;
my $pw = pgu_session($node, 'prewarmer');
$pw->query("SET pg_uring.test_pause = 'claim:8'");
$pw->begin("SELECT pg_uring_prewarm('kidx')");
ok(pgu_wait_pause($node, 'prewarmer', 'claim (block 8)', $offset),
	'the prewarm paused before asking core for block 8');

# the split reads leaf 4, which the prewarm has claimed
$ins->begin('INSERT INTO k VALUES (999.99995)');
my $ins_done = $ins->wait_done(20);
ok($ins_done, 'the insert that splits leaf 8 finished while the prewarm was paused');
pgu_pause_release($node);
my ($n, $err) = $pw->finish(30);
ok(defined $n, 'the prewarm finished after the pause') or diag "prewarm: $err";
like($n // '', qr/^\d+$/, "the prewarm read " . ($n // '?') . ' blocks');
SKIP:
{
	skip 'the insert hung: the sessions are deadlocked', 5 unless $ins_done;
	my ($o, $e) = $ins->finish(10);
	is($e, '', 'the insert raised nothing');
	is($node->safe_psql('postgres', 'SELECT count(*) FROM k'), $rows + 1, 'the row is there');
	cmp_ok($node->safe_psql('postgres', "SELECT pg_relation_size('kidx') / 8192"),
		'>', 9, 'leaf 8 was split (the index grew)');
	is($node->safe_psql('postgres', "SELECT bt_index_check('kidx', true)"), '',
		'bt_index_check(kidx, heapallindexed) passes');
	is($node->safe_psql('postgres', "SELECT count(*) FROM verify_heapam('k')"), 0,
		'verify_heapam(k) finds nothing');
}
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_buffercache b JOIN pg_class c ON b.relfilenode = c.relfilenode
	  WHERE c.relname = 'kidx' AND b.relforknumber = 0 AND b.relblocknumber < 9
	    AND b.reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())"),
	9, 'every block of the index is cached');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_buffercache WHERE pinning_backends > 0"),
	0, 'no buffer is left pinned');
wr_log_clean($node, 'claim deadlock', $offset);

# deadlocked sessions wait in LWLocks and WaitIO with interrupts held:
# only an immediate stop ends them
$node->stop($ins_done ? 'fast' : 'immediate');
$ins->quit;
$pw->quit;
done_testing();
