
# A tiny pool (shared_buffers = 1MB, 128 buffers) and ten sessions mixing
# prewarms, flushes and core reads: pg_uring never makes a session fail with
# "no unpinned buffers available".
#
# Each reader and write-back caps its own pins (1/8 of the pool), and all
# of them together take their pins from a server-wide budget of a quarter
# of the pool: without that budget, six prewarms and four flushes could pin
# 10 x 16 = 160 buffers of the 128.
#
# pgbench runs the three scripts for 15 s with 10 clients: 4 prewarm a table
# eight times the pool, 3 update and flush another, 3 read a third through
# core (index and sequential scans).  Asserts: pgbench ends well (no client
# aborted), the log has no "no unpinned buffers available", every
# transaction of each script ran, nothing stays pinned, amcheck is clean, no
# TRAP or PANIC.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;
use PgUringPrewarm;

my $node = pw_node('tiny_pool', shared_buffers => '1MB', max_connections => '20');
pgu_start($node);
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION pg_buffercache;
	CREATE EXTENSION amcheck;
	CREATE TABLE big (id int NOT NULL, h text NOT NULL);
	INSERT INTO big SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, 90000) g;
	CREATE TABLE upd (id int NOT NULL, n int NOT NULL);
	INSERT INTO upd SELECT g, 0 FROM generate_series(1, 20000) g;
	CREATE TABLE rd (id int PRIMARY KEY, h text NOT NULL);
	INSERT INTO rd SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
	VACUUM (FREEZE, ANALYZE) big, upd, rd;
	CHECKPOINT;
});
is($node->safe_psql('postgres', 'SHOW shared_buffers'), '1MB', 'a 1 MB pool');
cmp_ok($node->safe_psql('postgres', "SELECT pg_relation_size('big') / 8192"), '>', 8 * 128,
	'big is more than eight times the pool');

my $dir = PostgreSQL::Test::Utils::tempdir();
my %scripts = (
	prewarm => "SELECT pg_uring_prewarm('big');\n",
	flush   => "\\set k random(1, 20000)\nUPDATE upd SET n = n + 1 WHERE id BETWEEN :k AND :k + 200;\nSELECT pg_uring_flush('upd');\n",
	read    => "\\set k random(1, 19000)\nSELECT count(*) FROM rd WHERE id BETWEEN :k AND :k + 1000;\nSELECT count(*) FROM rd;\n");
for my $s (keys %scripts)
{
	open(my $fh, '>', "$dir/$s.sql") or die $!;
	print $fh $scripts{$s};
	close $fh;
}
my $offset = -s $node->logfile;
my ($out, $err) = ('', '');
my $rc = IPC::Run::run(
	[
		'pgbench', '-n', '-c', '10', '-j', '2', '-T', '15',
		'-f', "$dir/prewarm.sql\@4", '-f', "$dir/flush.sql\@3", '-f', "$dir/read.sql\@3",
		'-d', $node->connstr('postgres')
	],
	'>', \$out, '2>', \$err);
ok($rc, 'pgbench ended well: no client aborted') or diag "$out\n$err";
unlike("$out\n$err", qr/aborted|no unpinned buffers/, 'pgbench reports no aborted client');
for my $s (qw(prewarm flush read))
{
	my ($n) = $out =~ /SQL script \d+: \Q$dir\E\/$s\.sql\n(?:.*\n)*?\s+- (\d+) transactions/;
	cmp_ok($n // 0, '>', 0, "the $s script ran " . ($n // 0) . ' transactions');
}
unlike(slurp_file($node->logfile, $offset), qr/no unpinned buffers available/,
	'the log has no "no unpinned buffers available"');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_buffercache WHERE pinning_backends > 0'),
	0, 'nothing stays pinned');
is($node->safe_psql('postgres', 'SELECT sum(n) > 0 FROM upd'), 't', 'the updates are there');
for my $t (qw(big upd rd))
{
	is($node->safe_psql('postgres', "SELECT count(*) FROM verify_heapam('$t')"), 0,
		"verify_heapam($t) finds nothing");
}
is($node->safe_psql('postgres', "SELECT bt_index_check('rd_pkey', true)"), '', 'bt_index_check(rd_pkey) passes');

$node->stop;
done_testing();
