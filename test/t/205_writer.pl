
# The pg_uring writer: a background worker that writes dirty, unpinned,
# usage-count-0 buffers, at most pg_uring.writer_max_pages every
# pg_uring.writer_delay.
#
# 1. With pg_uring.writer = off there is no "pg_uring writer" process; with
#    it on (after a restart) there is one, and it logs its settings.
# 2. A pool holding many dirty buffers with usage count 0: after a restart
#    a table a (400 pages, under a quarter of the 16 MB pool so its scan uses
#    no ring) is updated once (usage count 1, dirty), a small table c is
#    updated five times (usage count 5, dirty), then pg_prewarm reads
#    (without a ring) just more of a big table b than there are free
#    buffers: the one clock sweep lap that takes brings every usage count
#    down by one, so a's pages are dirty at usage 0 and c's are not.  No
#    bgwriter LRU writes, no checkpoint by time: only the writer writes.
# 3. The settings take effect on reload (each reload also wakes the writer
#    for a round, and writer_pages grows by a whole round at once):
#      max_pages = 1, delay = 10s:  the round after a reload writes 1 page;
#      max_pages = 5:               the round after the reload writes 5;
#    then (after 4)
#      max_pages = 1, delay = 10ms: dozens of pages soon (at 10 s a round
#                                   that would take many minutes);
#      max_pages = 512, delay = 50ms: every dirty usage-0 buffer of a is
#                                   written.
#    pg_buffercache shows fewer dirty buffers of a at each step, none at the
#    end; writer_pages grew by at least a's dirty usage-0 buffers and at
#    most the pool's, buffer_writes as much, the writes registered their
#    fsyncs (sync_requests + local_syncs, one per write IO); c, whose buffers
#    kept a usage count above 0, is still dirty: the writer left it alone.
#    All observations go through one session, so that no new connection
#    allocates (and so evicts) buffers.
# 4. (between the max_pages and the delay steps) SIGTERM ends the writer;
#    the postmaster starts a new one (restart time 1 s), without a crash
#    restart, which logs the settings in force and, woken by a reload,
#    writes a round of 5 pages.
# 5. A checkpoint (nothing of a left to write), an immediate stop, a not
#    read since the writer wrote it: after recovery a reads back what was
#    committed (md5 against the rows' formula), amcheck finds nothing.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use PgUringTest;
use PgUringWrite;

my $node = wr_node('writer', shared_buffers => '16MB');
pgu_start($node);
my $writer_re = qr/pg_uring writer/;

# ---------------------------------------------------------------------------
# 1. the process
# ---------------------------------------------------------------------------
is($node->safe_psql('postgres', 'SHOW pg_uring.writer'), 'off', 'the writer is off by default');
is(scalar(pgu_children($node, $writer_re)), 0, 'writer off: no pg_uring writer process');

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION pg_buffercache;
	CREATE EXTENSION pg_prewarm;
	CREATE EXTENSION amcheck;
	CREATE TABLE a (id int NOT NULL, v text NOT NULL) WITH (fillfactor = 50);
	INSERT INTO a SELECT g, repeat(md5(g::text), 5) FROM generate_series(1, 8000) g;
	CREATE INDEX a_idx ON a (id);
	CREATE TABLE c (id int NOT NULL, n int NOT NULL) WITH (fillfactor = 50);
	INSERT INTO c SELECT g, 0 FROM generate_series(1, 2000) g;
	CREATE TABLE b (id int, v text);
	INSERT INTO b SELECT g, repeat('b', 200) FROM generate_series(1, 90000) g;
	VACUUM (FREEZE) a, b, c;
});
my $a_pages = $node->safe_psql('postgres', "SELECT pg_relation_size('a') / 8192");
is($a_pages, 400, 'a has 400 pages');
cmp_ok($node->safe_psql('postgres', "SELECT pg_relation_size('b') / 8192"), '>', 2048,
	'b is bigger than the pool');

$node->append_conf('postgresql.conf', qq{
pg_uring.writer = on
pg_uring.writer_max_pages = 1
pg_uring.writer_delay = '10s'
});
my $offset = -s $node->logfile;
$node->restart;
ok(pgu_poll(sub { pgu_children($node, $writer_re) == 1 }),
	'writer on: one pg_uring writer process');
ok($node->wait_for_log(qr/pg_uring writer started: at most 1 pages every 10000 ms/, $offset),
	'the writer logged its settings');

# ---------------------------------------------------------------------------
# 2. dirty buffers at usage count 0
# ---------------------------------------------------------------------------
# Everything from here on is asked through one session: a new connection
# would fill its caches from shared buffers, and every buffer it allocated
# would evict (and write through core) one of a's dirty buffers.
my $obs = pgu_session($node, 'observer');
my $q = sub { scalar $obs->query($_[0]) };
my $a_usage0_sql = q{
	SELECT count(*) FROM pg_buffercache WHERE isdirty AND usagecount = 0
	   AND relfilenode = pg_relation_filenode('a') AND relforknumber = 0};
my $a_dirty_sql = q{
	SELECT count(*) FROM pg_buffercache WHERE isdirty AND relforknumber = 0
	   AND relfilenode = pg_relation_filenode('a')};
my $c_dirty_sql = q{
	SELECT count(*) FROM pg_buffercache WHERE isdirty AND relforknumber = 0
	   AND relfilenode = pg_relation_filenode('c')};
my $c_usage0_sql = q{
	SELECT count(*) FROM pg_buffercache WHERE relforknumber = 0 AND usagecount = 0
	   AND relfilenode = pg_relation_filenode('c')};
my $free_sql = 'SELECT count(*) FROM pg_buffercache WHERE relfilenode IS NULL';
my $wp_sql = 'SELECT sum(writer_pages) FROM pg_uring_stat_writeback';
my $a_usage0 = sub { $q->($a_usage0_sql) };
my $wp = sub { $q->($wp_sql) };
# warm the session's caches with every query it will run
$q->($_) for $a_usage0_sql, $a_dirty_sql, $c_dirty_sql, $c_usage0_sql, $free_sql, $wp_sql,
  'SELECT pg_reload_conf()', "SELECT pg_prewarm('b', 'buffer', 'main', 0, 0)";
wr_stats($obs);

$q->('UPDATE c SET n = n + 1') for 1 .. 5;
$q->('UPDATE a SET v = upper(v)');
my $c_before = $q->($c_dirty_sql);
# c's pages, updated five times: each stays at a usage count above 0
cmp_ok($c_before, '>=', 10, "c: $c_before dirty pages (at least 10)");
is($q->($a_dirty_sql), $a_pages, 'a: every page dirty');
my $free = $q->($free_sql);
my $last = $free + 5;
$q->("SELECT pg_prewarm('b', 'buffer', 'main', 0, $last)");
is($q->($free_sql), 0, 'reading ' . ($last + 1) . " pages of b used the $free free buffers");
my $d0 = $a_usage0->();
my $t0 = $q->('SELECT count(*) FROM pg_buffercache WHERE isdirty AND usagecount = 0');
note "a: $d0 dirty buffers with usage count 0, " . $q->($a_dirty_sql) . " dirty in all; $t0 dirty usage-0 buffers in the pool";
# the clock sweep over the pool (reading b) took a's buffers to usage 0;
# a has $a_pages pages, all dirty: at least 300 of them are at 0, the rest
# depend on where the sweep stopped
cmp_ok($d0, '>=', 300, "a: $d0 dirty buffers with usage count 0 (at least 300)");
is($q->($c_dirty_sql), $c_before, 'c: still dirty');
is($q->($c_usage0_sql), 0, 'c: no buffer at usage count 0');

# ---------------------------------------------------------------------------
# 3. the settings, reloaded
# ---------------------------------------------------------------------------
my $s_start = wr_stats($obs);

# a reload wakes the writer: one round, then poll for its result
sub reload_round
{
	my ($label, $conf) = @_;
	$node->append_conf('postgresql.conf', $conf) if $conf;
	my $w0 = $wp->();
	$q->('SELECT pg_reload_conf()');
	ok(pgu_poll(sub { $wp->() > $w0 }), "$label: the writer ran a round after the reload");
	return $wp->() - $w0;
}

my $got = reload_round('max_pages 1, delay 10s');
# 1 page, or 2 when a 10 s round of its own fell in between (it cannot be
# more: two rounds in the poll's time at most)
ok($got >= 1 && $got <= 2, "max_pages 1, delay 10s: one round of 1 page, or two ($got)");
my $d1 = $a_usage0->();
ok($d1 <= $d0 && $d1 >= $d0 - $got, "max_pages 1: at most $got fewer dirty buffers of a ($d1)");

$got = reload_round('max_pages 5', "pg_uring.writer_max_pages = 5\n");
# 5, or 10 with a round of its own in between, or 6 with the last 1-page
# round still finishing: never more than 11
ok($got >= 5 && $got <= 11, "max_pages 5: a round of 5 pages, at most one more round ($got)");
my $d2 = $a_usage0->();
ok($d2 < $d1 && $d2 >= $d1 - $got, "max_pages 5: at most $got fewer dirty buffers of a ($d2)");

# ---------------------------------------------------------------------------
# 4. SIGTERM: a new writer, with the settings of the old one
# ---------------------------------------------------------------------------
my ($wpid) = pgu_children($node, $writer_re);
ok(defined $wpid, 'SIGTERM: found the writer');
my $w_term = $wp->();
$offset = -s $node->logfile;
is(kill('TERM', $wpid), 1, 'SIGTERM: sent to the writer');
ok(pgu_poll(sub { !kill(0, $wpid) }), 'SIGTERM: the writer exited');
ok( pgu_poll(sub { my @p = pgu_children($node, $writer_re); @p == 1 && $p[0] != $wpid }),
	'SIGTERM: the postmaster started a new writer');
ok($node->wait_for_log(qr/pg_uring writer started: at most 5 pages every 10000 ms/, $offset),
	'SIGTERM: the new writer logged its start, with the settings in force');
ok(!$node->log_contains(qr/terminating any other active server processes|reinitializing/, $offset),
	'SIGTERM: no crash restart');
is($q->('SELECT 1'), 1, 'SIGTERM: sessions are unaffected');
# (it may also have run a round as it started: its latch starts set)
$got = reload_round('new writer');
ok($got >= 5 && $got <= 11, "new writer: a round of 5 pages, at most one more round ($got)");
my $since_term = $wp->() - $w_term;
is($since_term % 5, 0, "new writer: whole rounds of 5 pages only ($since_term pages since the SIGTERM)");
my $d2b = $a_usage0->();
ok($d2b < $d2 && $d2b >= $d2 - $since_term,
	"new writer: at most $since_term fewer dirty buffers of a ($d2b)");
$d2 = $d2b;

# ---------------------------------------------------------------------------
# 3, continued: writer_delay
# ---------------------------------------------------------------------------
$node->append_conf('postgresql.conf', "pg_uring.writer_max_pages = 1\npg_uring.writer_delay = 10\n");
my $w0 = $wp->();
$q->('SELECT pg_reload_conf()');
ok(pgu_poll(sub { $wp->() >= $w0 + 50 }),
	'max_pages 1, delay 10ms: the writer wrote 50 pages one round at a time');
my $d3 = $a_usage0->();
cmp_ok($d3, '<=', $d2 - 50, "delay 10ms: fewer dirty buffers of a ($d3)");

$node->append_conf('postgresql.conf', "pg_uring.writer_max_pages = 512\npg_uring.writer_delay = 50\n");
$q->('SELECT pg_reload_conf()');
ok(pgu_poll(sub { $a_usage0->() == 0 }), 'max_pages 512: no dirty usage-0 buffer of a left');
is($q->($a_dirty_sql), 0, 'a: no dirty page left');
my $d = wr_delta($s_start, wr_stats($obs));
note join(', ', map { "$_ = $d->{$_}" } sort keys %$d);
# nothing sweeps the pool meanwhile: no buffer reaches usage count 0 but those
# that were there
ok($d->{writer_pages} >= $d0 && $d->{writer_pages} <= $t0,
	"writer_pages grew by $d->{writer_pages}: the $d0 dirty usage-0 pages of a, and at most the $t0 of the pool");
is($d->{buffer_writes}, $d->{writer_pages}, 'buffer_writes grew by as much');
# (one request per write IO, which may combine adjacent pages)
ok($d->{sync_requests} + $d->{local_syncs} > 0
	  && $d->{sync_requests} + $d->{local_syncs} <= $d->{buffer_writes},
	'the writes registered their fsyncs with the checkpointer (or synced themselves)');
is($d->{buffer_write_failures} + $d->{errors} + $d->{cancelled}, 0, 'no write failed');
is($q->($c_dirty_sql), $c_before, 'c (usage count above 0) was left dirty');
ok(pgu_poll(sub { $q->('SELECT sum(in_flight) FROM pg_uring_stats') == 0 }),
	'nothing left in flight');

# ---------------------------------------------------------------------------
# 5. durability
# ---------------------------------------------------------------------------
$obs->quit;
# expected from the rows' formula: reading a now would set hint bits and
# dirty it again (and the checkpoint would write it instead of the writer)
my $expected = wr_digest($node,
	'(SELECT g AS id, upper(repeat(md5(g::text), 5)) AS v FROM generate_series(1, 8000) g) a',
	'id', 'a::text');
is($node->safe_psql('postgres', q{
		SELECT count(*) FROM pg_buffercache WHERE isdirty AND relforknumber = 0
		   AND relfilenode = pg_relation_filenode('a')}),
	0, 'a has no dirty heap page before the checkpoint');
$node->safe_psql('postgres', 'CHECKPOINT');
$offset = -s $node->logfile;
$node->stop('immediate');
$node->start;
is(wr_digest($node, 'a', 'id'), $expected, 'after an immediate stop a equals what was committed');
wr_amcheck($node, 'after the immediate stop', [ 'a', 'c' ], ['a_idx']);
ok(pgu_poll(sub { pgu_children($node, $writer_re) == 1 }), 'the writer runs again after the restart');
wr_log_clean($node, 'whole run', 0);

$node->stop;
done_testing();
