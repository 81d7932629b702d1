
# Prewarm under write load, with a buffer pool smaller than the table.
#
# shared_buffers = 16MB, a ~30 MB table with an index: every prewarm evicts
# buffers (some dirty, written by core on eviction) while
#   - two sessions prewarm the table and the index over and over (one of
#     them with pg_uring.test_hold_reap, so the reaper and the other
#     session complete its reads), with random ranges,
#   - pgbench updates one row and inserts one row per transaction,
#   - a session reads the table through core (seq scans and index scans),
#   - checkpoints run.
# Afterwards: no read failure, no IO left, every update and insert is there
# exactly once (sum of the counters = transactions, row count = initial +
# transactions), the initial rows' payload is intact, amcheck
# (verify_heapam, bt_index_check with heapallindexed) finds nothing, and the
# same holds after a restart and a prewarm of everything.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use PgUringTest;
use PgUringPrewarm;

my $nrows    = 250000;
my $duration = 20;

my $node = pw_node('torture', shared_buffers => '16MB',
	'pg_uring.rings' => '2', 'pg_uring.reaper_delay' => '5');
pgu_start($node);
$node->safe_psql(
	'postgres', qq{
	CREATE TABLE t (id int NOT NULL, h text NOT NULL, n int NOT NULL DEFAULT 0);
	INSERT INTO t SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, $nrows) g;
	CREATE UNIQUE INDEX t_idx ON t (id);
	CREATE SEQUENCE t_new START $nrows;
	SELECT setval('t_new', $nrows);
	VACUUM (FREEZE, ANALYZE) t;
	CHECKPOINT;
});
my $nblocks = pw_nblocks($node, 't');
cmp_ok($nblocks * 8192, '>', 1.5 * 16 * 1024 * 1024, "t ($nblocks blocks) is more than 1.5 times shared_buffers");
my $payload_sql = qq{SELECT md5(string_agg(id || ':' || h, ',' ORDER BY id)) FROM t WHERE id <= $nrows};
my $payload = $node->safe_psql('postgres',
	"SELECT md5(string_agg(g || ':' || repeat(md5(g::text), 2), ',' ORDER BY g)) FROM generate_series(1, $nrows) g"
);
$node->restart;

# ---------------------------------------------------------------------------
# the load
# ---------------------------------------------------------------------------
my $script = $node->basedir . '/torture.sql';
open(my $fh, '>', $script) or die "could not write $script: $!";
print $fh <<"EOF";
\\set id random(1, $nrows)
BEGIN;
UPDATE t SET n = n + 1 WHERE id = :id;
INSERT INTO t (id, h) VALUES (nextval('t_new') + 1, repeat(md5(:id::text), 2));
END;
EOF
close $fh;

my ($pb_out, $pb_err) = ('', '');
my $pgbench = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '2', '-T', $duration, '-f', $script,
	  $node->connstr('postgres') ],
	'>', \$pb_out, '2>', \$pb_err);

my @pw = (pgu_session($node, 'pw_1'), pgu_session($node, 'pw_2'));
$pw[1]->query('SET pg_uring.test_hold_reap = on');
my $reader = pgu_session($node, 'core_reader');

srand(107);
my %calls = (pw_1 => 0, pw_2 => 0, reader => 0);
my @errors;
my $total_read = 0;
my $next_checkpoint = time() + 4;
my $end = time() + $duration;
my @pending = (undef, undef);
my $rpending = 0;

while (time() < $end || grep({ defined } @pending) || $rpending)
{
	for my $i (0, 1)
	{
		my $s = $pw[$i];
		if (defined $pending[$i] && $s->done)
		{
			my ($o, $e) = $s->finish;
			push @errors, "pw_" . ($i + 1) . ": $e" if $e ne '';
			$total_read += $_ for grep { /^\d+$/ } split /[\n|]/, ($o // '');
			$calls{ 'pw_' . ($i + 1) }++;
			undef $pending[$i];
		}
		if (!defined $pending[$i] && time() < $end)
		{
			my $first = int(rand($nblocks));
			my $last  = $first + int(rand($nblocks - $first));
			my $q     = (rand() < 0.5)
			  ? "SELECT pg_uring_prewarm('t', 'main', $first, $last), pg_uring_prewarm('t_idx')"
			  : "SELECT pg_uring_prewarm('t')";
			$s->begin($q);
			$pending[$i] = $q;
		}
	}
	if ($rpending && $reader->done)
	{
		my ($o, $e) = $reader->finish;
		push @errors, "reader: $e" if $e ne '';
		push @errors, "reader: got '$o'" unless defined $o && $o =~ /^\d+\|t$/;
		$calls{reader}++;
		$rpending = 0;
	}
	if (!$rpending && time() < $end)
	{
		my $id = 1 + int(rand($nrows));
		$reader->begin(
			$calls{reader} % 2
			? "SELECT count(*), bool_and(h = repeat(md5(id::text), 2)) FROM t WHERE id <= $nrows"
			: "SET enable_seqscan = off; SELECT count(*), bool_and(h = repeat(md5(id::text), 2)) FROM t WHERE id BETWEEN $id AND $id + 5000 AND id <= $nrows"
		);
		$rpending = 1;
	}
	if (time() > $next_checkpoint && time() < $end)
	{
		$node->safe_psql('postgres', 'CHECKPOINT');
		$next_checkpoint = time() + 4;
	}
	usleep(20_000);
}
my $pgbench_ok = $pgbench->finish;
my ($xacts) = $pb_out =~ /number of transactions actually processed: (\d+)/;
note "pgbench: " . ($xacts // 'no count') . " transactions; prewarm calls: $calls{pw_1} + $calls{pw_2}, "
  . "$total_read blocks read; core reader queries: $calls{reader}";
ok($pgbench_ok, 'pgbench ran without error') or note $pb_err;
ok(defined $xacts && $xacts > 0, 'pgbench processed transactions');
is_deeply(\@errors, [], 'no prewarm or reader query failed');
cmp_ok($calls{pw_1}, '>', 2, 'the unheld prewarmer ran several times');
cmp_ok($calls{pw_2}, '>', 0, 'the held prewarmer completed at least once');
cmp_ok($total_read, '>', $nblocks, 'prewarm read more blocks than the table has (evictions)');
$_->quit for @pw, $reader;

my $s = pw_stats($node);
note join(', ', map { "$_ = $s->{$_}" } sort keys %$s);
is($s->{buffer_read_failures}, 0, 'no buffer read failed');
is($s->{errors}, 0, 'no IO error');
is($s->{in_flight}, 0, 'nothing in flight');
if (pgu_io_method() eq 'sync')
{
	# every IO completes in the call that submits it
	is($s->{reaped_by_other} + $s->{reaped_by_reaper}, 0,
		'sync: every completion was processed by its issuer');
	cmp_ok($s->{reaped_by_issuer}, '>', 0, 'sync: by its issuer');
}
else
{
	cmp_ok($s->{reaped_by_other} + $s->{reaped_by_reaper}, '>', 0,
		'some completions were reaped by others than their issuer');
}
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'), 0, 'no IO left');

sub check_data
{
	my ($label) = @_;
	is($node->safe_psql('postgres', 'SELECT count(*), sum(n) FROM t'),
		($nrows + $xacts) . "|$xacts",
		"$label: every insert and every update is there exactly once");
	is($node->safe_psql('postgres', $payload_sql), $payload,
		"$label: the initial rows' payload is intact");
	is($node->safe_psql('postgres',
			"SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM t WHERE id > 0"),
		$nrows + $xacts, "$label: the index finds every row");
	is($node->safe_psql('postgres', "SELECT count(*) FROM verify_heapam('t')"),
		0, "$label: verify_heapam(t) finds nothing");
	is($node->safe_psql('postgres', "SELECT bt_index_check('t_idx', true)"),
		'', "$label: bt_index_check(t_idx, heapallindexed) passes");
	return;
}

$node->safe_psql('postgres', 'CREATE EXTENSION amcheck');
check_data('after the load');

# written to disk right: restart, prewarm what fits, check again
$node->restart;
my $prewarmed = $node->safe_psql('postgres', "SELECT pg_uring_prewarm('t_idx') + pg_uring_prewarm('t', 'main', 0, 999)");
cmp_ok($prewarmed, '>', 0, "after restart: prewarm read $prewarmed blocks");
check_data('after restart');
$s = pw_stats($node);
is($s->{buffer_read_failures}, 0, 'after restart: no buffer read failed');

$node->stop;
done_testing();
