
# Starting without io_uring, and loading pg_uring without preloading it.
#
# 1. A node started while kernel.io_uring_disabled = 2 (set through the
#    sudo rule scripts/test.sh installs; PGU_SYSCTL names sysctl) comes up,
#    logs exactly one WARNING with DETAIL and HINT, reports every ring in
#    synchronous mode, and still gives the same results for every op,
#    including emulated link cancellation.
# 2. Without shared_preload_libraries every pg_uring function fails with a
#    clear error (55000), and the server keeps running.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;

my $why = pgu_flip_check();
plan skip_all => "cannot disable io_uring for the test: $why" if $why;

my $orig_disabled = slurp_file('/proc/sys/kernel/io_uring_disabled');
chomp $orig_disabled;

# ---------------------------------------------------------------------------
# 1. started with io_uring disabled
# ---------------------------------------------------------------------------
my $node = pgu_node('nouring', 'pg_uring.rings' => 3);
pgu_start_io_uring_disabled($node);
is(slurp_file('/proc/sys/kernel/io_uring_disabled'),
	"$orig_disabled\n", 'kernel.io_uring_disabled is back to its old value');

is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is up');
$node->safe_psql('postgres', 'CREATE EXTENSION pg_uring');

my $log = slurp_file($node->logfile);
is( pgu_count_matches(
		$log, qr/WARNING:\s+pg_uring: could not create shared io_uring instances, falling back to synchronous IO/
	),
	1,
	'exactly one WARNING about the fallback');
like(
	$log,
	qr/falling back to synchronous IO\n.*DETAIL:\s+io_uring_setup\(\d+ entries\) failed: Operation not permitted \(errno 1\)\.\n.*HINT:\s+.*kernel\.io_uring_disabled/,
	'the WARNING has a DETAIL naming the errno and a HINT naming the sysctl');
unlike($log, qr/created \d+ shared io_uring instances/,
	'no ring creation was logged');

my $s = pgu_stats($node);
is($s->{mode},  'sync', 'pg_uring_stats: every ring is in mode sync');
is($s->{rings}, 3,      'pg_uring_stats: one row per configured ring');

my %probe = map { my @f = split /\|/, $_, 3; ("$f[0].$f[1]" => $f[2] // '') }
  split /\n/,
  $node->safe_psql('postgres', 'SELECT section, name, value FROM pg_uring_probe()');
is($probe{'shared_rings.mode'}, 'sync', 'pg_uring_probe: mode sync');
like($probe{'shared_rings.setup_error'}, qr/io_uring_setup.*Operation not permitted/,
	'pg_uring_probe: setup_error names the failure and its errno');
is($probe{'shared_rings.rings'}, '3', 'pg_uring_probe: 3 rings');
ok(exists $probe{'kernel.ring_create'}, 'pg_uring_probe still probes the kernel');

# every op, with the same results as on io_uring
my ($path, $size) = pgu_data_file($node);
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(op || ':' || result || ':' || reaped_by, ',' ORDER BY seq)
		   FROM pg_uring_batch(ARRAY['nop', 'read $path 0 8192', 'read $path 8192 1000',
		                             'fsync $path', 'fdatasync PG_VERSION', 'read PG_VERSION 0 8192',
		                             'read $path $size 8192', 'fail'])"
	),
	"nop:0:issuer,read:8192:issuer,read:1000:issuer,fsync:0:issuer,fdatasync:0:issuer,read:3:issuer,read:0:issuer,fail:-9:issuer",
	'a batch of every op gives the io_uring results');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(result::text, ',' ORDER BY seq)
		   FROM pg_uring_batch(ARRAY['nop+link', 'fail+link', 'nop+link', 'nop', 'nop',
		                             'read+link PG_VERSION', 'nop'])"
	),
	'0,-9,-125,-125,0,3,-125',
	'link cancellation is emulated, short reads included');
is( $node->safe_psql(
		'postgres',
		"SELECT pg_uring_read_file('$path', 0, $size) = pg_read_binary_file('$path'),
		        length(pg_uring_read_file('$path', 100, 20000)),
		        pg_uring_read_file('PG_VERSION') = pg_read_binary_file('PG_VERSION')"
	),
	't|20000|t',
	'pg_uring_read_file returns the right data');
is($node->safe_psql('postgres', "SELECT pg_uring_fsync('$path'), pg_uring_fsync('$path', false)"),
	'|', 'pg_uring_fsync works');
is( $node->safe_psql(
		'postgres',
		"SELECT ios FROM pg_uring_bench('nop', 2000, 8);
		 SELECT ios FROM pg_uring_bench('read', 500, 4, '$path')"),
	"2000\n500",
	'pg_uring_bench works');
$s = pgu_stats($node);
is($s->{mode},      'sync', 'still sync');
is($s->{in_flight}, 0,      'nothing in flight');
is($s->{completed}, $s->{submitted}, 'completed = submitted');
is($s->{errors},    2, 'the two failing ops were counted');
is($s->{cancelled}, 3, 'the three cancelled ops were counted');
is($s->{reaped_by_other} + $s->{reaped_by_reaper},
	0, 'synchronous IO is always completed by its issuer');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'),
	'0', 'no IO slot in use');
like($node->safe_psql('postgres', 'SHOW pg_uring.rings'), qr/^3$/, 'settings still there');
ok(!$node->log_contains(qr/PANIC|server process .* was terminated|TRAP/),
	'no crash in the server log');

# a plain restart, with io_uring allowed again, creates real rings
SKIP:
{
	skip "io_uring was already disabled before the test", 2
	  if $orig_disabled ne '0';
	my $offset = -s $node->logfile;
	$node->restart;
	is(pgu_stats($node)->{mode}, 'io_uring',
		'after a restart with io_uring allowed the rings are io_uring rings');
	ok(!$node->log_contains(qr/could not create shared io_uring instances/, $offset),
		'...and no WARNING this time');
}
$node->stop;

# ---------------------------------------------------------------------------
# 2. loaded without shared_preload_libraries
# ---------------------------------------------------------------------------
my $plain = pgu_node('nopreload', preload => 0);
$plain->start;

my ($ret, $out, $err) = $plain->psql('postgres', 'CREATE EXTENSION pg_uring');
is("$ret|$err", '0|', 'CREATE EXTENSION pg_uring works without the preload');
$plain->safe_psql('postgres', 'CREATE TABLE pt AS SELECT g FROM generate_series(1, 100) g');
{
	my %calls = (
		'pg_uring_stats'        => 'SELECT * FROM pg_uring_stats',
		'pg_uring_stat_io'      => 'SELECT * FROM pg_uring_stat_io',
		'pg_uring_stat_database' => 'SELECT * FROM pg_uring_stat_database',
		'pg_uring_ios'          => 'SELECT * FROM pg_uring_ios',
		'pg_uring_probe'        => 'SELECT * FROM pg_uring_probe()',
		'pg_uring_reset_stats'  => 'SELECT pg_uring_reset_stats()',
		'pg_uring_batch'        => "SELECT * FROM pg_uring_batch(ARRAY['nop'])",
		'pg_uring_read_file'    => "SELECT pg_uring_read_file('PG_VERSION')",
		'pg_uring_fsync'        => "SELECT pg_uring_fsync('PG_VERSION')",
		'pg_uring_bench'        => "SELECT * FROM pg_uring_bench('nop', 10, 1)",
		'pg_uring_prewarm'      => "SELECT pg_uring_prewarm('pt')",
		'pg_uring_prewarm_blocks' => "SELECT pg_uring_prewarm_blocks('pt', ARRAY[0]::int8[])",
		'pg_uring_wal_flush'    => 'SELECT pg_uring_wal_flush()',
		'pg_uring_flush'        => "SELECT pg_uring_flush('pt')",);
	# every SQL function of the extension is called here
	is( $plain->safe_psql(
			'postgres',
			"SELECT string_agg(DISTINCT p.proname, ',' ORDER BY p.proname)
			   FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
			  WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
			    AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_uring')"),
		join(',', sort keys %calls),
		'the calls below cover every function of the extension');
	for my $f (sort keys %calls)
	{
		($ret, $out, $err) = $plain->psql('postgres',
			"\\set VERBOSITY verbose\n$calls{$f}");
		like(
			$err,
			qr/ERROR:\s+55000: pg_uring must be loaded via shared_preload_libraries/,
			"$f fails with 55000 and a clear message");
	}
	like($err, qr/HINT:\s+Add pg_uring to shared_preload_libraries/, '...and a hint');

	# a session that has already loaded the library keeps working
	($ret, $out, $err) = $plain->psql('postgres',
		"LOAD 'pg_uring';\n\\set VERBOSITY verbose\nSELECT * FROM pg_uring_stats;\nSELECT 'still here'",
		on_error_stop => 0);
	like($err, qr/55000: pg_uring must be loaded via shared_preload_libraries/,
		'after LOAD the error is the same');
	is($out, 'still here', 'the session goes on after the error');
}

is($plain->safe_psql('postgres', 'SELECT 1'), '1', 'the server is still running');
ok(!$plain->log_contains(qr/PANIC|server process .* was terminated|TRAP|reinitializing/),
	'no crash in the server log');
$plain->stop;

done_testing();
