
# pg_uring's shared memory at default settings, and its two classes of IO
# slots.
#
# Only IOs that write a copy of a buffer or read a file need a page of
# their own in shared memory (a bounce page); reads go straight into shared
# buffers.  So there are pg_uring.bounce_buffers slots with a page (192 by
# default) and pg_uring.max_ios slots without (1024).
#
# 1. With shared_buffers = 128MB (PostgreSQL's default) and pg_uring's
#    defaults, everything pg_uring allocates in shared memory
#    (pg_shmem_allocations) is at most 2% of shared_buffers; the slot table
#    is (1024 + 192) slots plus 192 pages.
# 2. The classes: a batch of 1024 NOPs runs and one of 1025 fails naming
#    pg_uring.max_ios; a batch of 192 IOs with a file read runs, 193 fail
#    naming pg_uring.bounce_buffers; the read benchmark goes to depth 192, not 193;
#    the NOP benchmark to 256.
# 3. A flush of 2,000 dirty pages (ten times the bounce pages) completes
#    and leaves the table clean.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;
use PgUringWrite;

my $node = pgu_node('footprint', shared_buffers => '128MB');
pgu_start($node);

# ---------------------------------------------------------------------------
# 1. the footprint
# ---------------------------------------------------------------------------
is($node->safe_psql('postgres', 'SHOW pg_uring.max_ios'), '1024', 'pg_uring.max_ios: 1024 by default');
is($node->safe_psql('postgres', 'SHOW pg_uring.bounce_buffers'), '1536kB',
	'pg_uring.bounce_buffers: 192 pages (1536kB) by default');
my $sb = $node->safe_psql('postgres',
	"SELECT setting::bigint * 8192 FROM pg_settings WHERE name = 'shared_buffers'");
is($sb, 128 * 1024 * 1024, 'shared_buffers is 128MB');
my $all = $node->safe_psql('postgres',
	"SELECT string_agg(name || ' ' || allocated_size, ', ' ORDER BY name), sum(allocated_size)
	   FROM pg_shmem_allocations WHERE name LIKE 'pg_uring%'");
my ($list, $total) = split /\|/, $all;
note "pg_uring's shared memory: $list";
cmp_ok($total, '<=', 0.02 * $sb,
	sprintf('all of it (%d bytes, %.2f%% of shared_buffers) is at most 2%% of shared_buffers', $total, 100 * $total / $sb));
my ($slots) = $list =~ /pg_uring io slots (\d+)/;
cmp_ok($slots, '<', (1024 + 192) * 600 + 192 * 8192 + 8192,
	"the slot table ($slots bytes) is 1216 slots and 192 pages, no page per read slot");

# ---------------------------------------------------------------------------
# 2. the two classes
# ---------------------------------------------------------------------------
is($node->safe_psql('postgres',
		"SELECT count(*) FILTER (WHERE result = 0) FROM pg_uring_batch(array_fill('nop'::text, ARRAY[1024]))"),
	'1024', 'a batch of 1024 NOPs (pg_uring.max_ios) runs');
my ($rc, $out, $err) = pgu_psql($node, "SELECT count(*) FROM pg_uring_batch(array_fill('nop'::text, ARRAY[1025]))");
like($err, qr/ERROR:\s+54000: pg_uring: request for 1025 IO slots exceeds pg_uring\.max_ios \(1024\)/,
	'1025 NOPs: 54000, naming pg_uring.max_ios');
# (a batch with a read takes all its slots from the bounce class; a call
# may open at most 64 files, so the rest are NOPs)
my $reads = sub {
	return "SELECT count(*) FILTER (WHERE result >= 0) FROM pg_uring_batch(array_cat(ARRAY['read global/pg_control 0 8192'], array_fill('nop'::text, ARRAY[$_[0] - 1])))";
};
is($node->safe_psql('postgres', $reads->(192)), '192',
	'a batch of 192 IOs with a read (pg_uring.bounce_buffers) runs');
($rc, $out, $err) = pgu_psql($node, $reads->(193));
like($err, qr/ERROR:\s+54000: pg_uring: request for 193 IO slots with a bounce page exceeds pg_uring\.bounce_buffers \(192\)/,
	'193 with a read: 54000, naming pg_uring.bounce_buffers');
like($err, qr/HINT:\s+Raise pg_uring\.bounce_buffers/, '...with a hint');
$node->safe_psql('postgres', 'CREATE TABLE f AS SELECT g AS id, repeat(md5(g::text), 4) AS v FROM generate_series(1, 20000) g');
is($node->safe_psql('postgres', "SELECT depth FROM pg_uring_bench('read', 400, 192, pg_relation_filepath('f'))"),
	'192', 'the read benchmark runs at depth 192');
($rc, $out, $err) = pgu_psql($node, "SELECT depth FROM pg_uring_bench('read', 400, 193, pg_relation_filepath('f'))");
like($err, qr/depth must be between 1 and 192/, 'but not at 193');
is($node->safe_psql('postgres', "SELECT depth FROM pg_uring_bench('nop', 1000, 256)"),
	'256', 'the NOP benchmark runs at depth 256 (its own limit)');

# ---------------------------------------------------------------------------
# 3. many more writes than bounce pages
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_buffercache;
	CREATE TABLE w (id int, v text) WITH (fillfactor = 10);
	INSERT INTO w SELECT g, repeat('w', 500) FROM generate_series(1, 2000) g;
	CHECKPOINT;
	UPDATE w SET v = repeat('x', 500);
});
my $dirty = wr_dirty($node, 'w');
cmp_ok($dirty, '>=', 1000, "w: $dirty dirty pages, ten times the bounce pages");
my $written = $node->safe_psql('postgres', "SELECT pg_uring_flush('w')");
is($written, $dirty, 'pg_uring_flush wrote every one of them');
is(wr_dirty($node, 'w'), 0, 'w is clean');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'), 0, 'no IO slot in use');

$node->stop;
done_testing();
