
# A page dirtied again while its write is staged stays dirty after the write
# completes (BM_JUST_DIRTIED), and the newer version is not lost.
#
# The write copies the page into its bounce buffer and clears
# BM_JUST_DIRTIED when it is staged; the completion clears BM_DIRTY only if
# nobody set BM_JUST_DIRTIED meanwhile.  Here the flush of t pauses with its
# writes staged (pg_uring.test_pause = 'write_staged', their buffers
# IO-in-progress, the copies taken), another session updates a row of a
# page whose write is staged, then the pause ends.
#
# Asserts: the flush returns and wrote the pages; the updated page is still
# dirty, the others are clean; a second flush writes exactly that page; the
# update is there after an immediate stop; the log has no TRAP or PANIC.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;
use PgUringWrite;

my $node = wr_node('redirtied');
pgu_start($node);
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION pg_buffercache;
	CREATE TABLE t (id int NOT NULL, v text NOT NULL) WITH (fillfactor = 50);
	INSERT INTO t SELECT g, 'old' FROM generate_series(1, 2000) g;
	CHECKPOINT;
	UPDATE t SET v = 'first';
});
my $dirty = wr_dirty($node, ['t']);
cmp_ok($dirty, '>', 2, "$dirty pages of t are dirty");
# for each page of t, its first row (id and ctid): read now, since a scan of
# t while the flush is paused would prune and dirty its pages
my %row_on;
for my $line (split /\n/, $node->safe_psql('postgres',
	"SELECT DISTINCT ON (p) p, id, ctid FROM (SELECT (ctid::text::point)[0]::int AS p, id, ctid FROM t) s ORDER BY p, id"))
{
	my ($p, $id, $ctid) = split /\|/, $line;
	$row_on{$p} = [ $id, $ctid ];
}
my $offset = -s $node->logfile;

pgu_pause_set($node);
my $a = pgu_session($node, 'flusher');
$a->query("SET pg_uring.test_pause = 'write_staged'");
$a->begin("SELECT pg_uring_flush('t')");
ok(pgu_wait_pause($node, 'flusher', 'write_staged', $offset),
	'the flush paused with its writes staged');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM pg_uring_ios WHERE owner_pid = " . $a->pid . " AND state = 'staged'") > 0
	  ? 'staged' : 'none',
	'staged', 'pg_uring_ios shows the staged writes');

# a page of t whose write is staged (which pages come first depends on where
# t's buffers are in the pool), and a row on it
my $staged = $node->safe_psql('postgres',
	"SELECT string_agg(target, '; ') FROM pg_uring_ios WHERE owner_pid = " . $a->pid
	  . " AND state = 'staged' AND target ~ ('^rel [0-9]+/[0-9]+/' || pg_relation_filenode('t') || ' fork main ')");
my ($page) = $staged =~ /fork main blocks? (\d+)/;
ok(defined $page, 'a write of a page of t is staged') or diag "staged: $staged";
$page //= 0;
my ($id, $ctid) = @{ $row_on{$page} // [ 0, '(0,0)' ] };
ok(exists $row_on{$page}, "row $id is on page $page, at $ctid");

# an update of that row, while the write of its page is staged (the
# content lock is free: only the copy was taken under it)
is($node->safe_psql('postgres', "UPDATE t SET v = 'second' WHERE ctid = '$ctid' RETURNING (ctid::text::point)[0]::int"),
	$page, "the row was updated in place, on page $page (HOT)");
pgu_pause_release($node);
my $written = $a->finish;
cmp_ok($written, '>=', $dirty, "the flush wrote the $dirty pages ($written)");

my $dirty_pages = $node->safe_psql('postgres',
	"SELECT string_agg(relblocknumber::text, ',') FROM pg_buffercache
	  WHERE isdirty AND relfilenode = pg_relation_filenode('t')
	    AND reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())");
is($dirty_pages, $page, "only the page dirtied again meanwhile is still dirty");
is($node->safe_psql('postgres', "SELECT pg_uring_flush('t')"), '1',
	'a second flush writes exactly that page');
is(wr_dirty($node, ['t']), 0, 'then t is clean');
wr_log_clean($node, 'redirtied', $offset);

$a->quit;
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', "SELECT v FROM t WHERE id = $id"), 'second',
	'after an immediate stop the newer version is there');
is($node->safe_psql('postgres', "SELECT count(*) FROM t WHERE v = 'first'"), 1999,
	'and so are the other rows');

$node->stop;
done_testing();
