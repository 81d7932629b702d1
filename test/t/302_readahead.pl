
# Read-ahead for ordinary queries (design.md section 7), point by point:
#
#  1. each node type reads ahead with pg_uring.readahead on and not with it
#     off (seq scan, parallel seq scan, bitmap heap scan, index scan, an
#     index-only scan that must visit the heap), and not for what core does
#     not read: an index-only scan over all-visible pages, a temp table;
#     the per-node switch turns one node type off;
#  2. EXPLAIN (ANALYZE, BUFFERS) counts shared reads as core does;
#  3. the pin trap: a table with long runs of empty pages and a qual that
#     keeps few rows, read with the issuer not reaping its own completions
#     (pg_uring.test_hold_reap), so that core meets blocks still in flight:
#     the results are core's and core did wait on our blocks;
#  4. the strategy: a seq scan of a table 4x the pool leaves no more of it
#     cached than core does (plus at most the read-ahead distance);
#  5. LIMIT: a cold LIMIT reads at most a handful of blocks more than core;
#  6. errors belong to the query that reaches the block: a checksum failure
#     read ahead gives core's own error (XX001) when the scan gets there,
#     none when a LIMIT stops before it; an injected EIO of a read-ahead is
#     repaired by core's own read, with the right result;
#  7. cancel (statement_timeout), ERROR mid-scan, cursors (scroll, backward,
#     WITH HOLD across COMMIT), nested-loop rescans, TRUNCATE and DROP right
#     after a scan in the same transaction, VACUUM during an open cursor:
#     correct, nothing pinned, no IO slot or file left behind;
#  8. the settings' bounds and units.
#
# "Cold" here is a restarted server (an empty pool); the page cache is not
# dropped (the tests run as the postgres OS user), so the reads are fast:
# this test is about what is read and what is right, bench/ about speed.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use PgUringTest;
use PgUringPrewarm;

# (serial seq scans read ahead only with pg_uring.readahead_seqscan = on:
# its default, off, is checked in section 8)
my $node = pw_node('readahead', shared_buffers => '32MB',
	'pg_uring.reaper_delay'      => '1',
	'pg_uring.readahead_seqscan' => 'on');
pgu_start($node);

# s: ~6 MB (below a quarter of the pool: no ring strategy), an uncorrelated
# indexed column r; big4: 4x the pool; trap: runs of 60 empty pages;
# nv: never vacuumed (no all-visible pages); small: the outer side of joins
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION pg_buffercache;
	CREATE TABLE s (id int NOT NULL, r int NOT NULL, pad text NOT NULL);
	INSERT INTO s SELECT g, (g * 7919) % 40000, repeat('s', 100)
	  FROM generate_series(1, 40000) g;
	CREATE INDEX s_r ON s (r);
	VACUUM ANALYZE s;
	CREATE TABLE big4 (id int NOT NULL, pad text NOT NULL);
	INSERT INTO big4 SELECT g, repeat('b', 200) FROM generate_series(1, 600000) g;
	VACUUM ANALYZE big4;
	CREATE TABLE trap (id int NOT NULL, pad text NOT NULL);
	INSERT INTO trap SELECT g, repeat('x', 200) FROM generate_series(1, 150000) g;
	DELETE FROM trap WHERE ((ctid::text::point)[0]::int / 60) % 2 = 0
	  AND (ctid::text::point)[0]::int < 4200;
	VACUUM ANALYZE trap;
	CREATE TABLE nv (id int NOT NULL, r int NOT NULL, pad text NOT NULL);
	INSERT INTO nv SELECT g, (g * 7919) % 40000, repeat('n', 100)
	  FROM generate_series(1, 40000) g;
	CREATE INDEX nv_r ON nv (r);
	ANALYZE nv;
	CREATE TABLE small (id int NOT NULL);
	INSERT INTO small SELECT g * 700 FROM generate_series(1, 50) g;
	ANALYZE small;
	CHECKPOINT;
});

sub ra { return pw_readahead($_[0]); }

# run $sql in a fresh session after a restart; returns (output, ra stats delta)
sub cold
{
	my ($sql, %opt) = @_;
	$node->restart;
	my $before = ra($node);
	my $out = $node->safe_psql('postgres', $sql);
	# completions the reaper processes after the query (wasted reads) count too
	usleep(50_000);
	my $after = ra($node);
	my %d = map { $_ => $after->{$_} - $before->{$_} } keys %$after;
	return ($out, \%d);
}

my $plain = "SET max_parallel_workers_per_gather = 0; SET enable_indexscan = off; "
  . "SET enable_indexonlyscan = off; SET enable_bitmapscan = off;\n";
my $bitmap = "SET enable_indexscan = off; SET enable_seqscan = off; SET enable_bitmapscan = on;\n";
my $index = "SET enable_bitmapscan = off; SET enable_seqscan = off; SET enable_indexonlyscan = off;\n";
my $ionly = "SET enable_bitmapscan = off; SET enable_seqscan = off; SET enable_indexonlyscan = on;\n";
my $parallel = "SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; "
  . "SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2;\n";

# ---------------------------------------------------------------------------
# 1. each node type
# ---------------------------------------------------------------------------
my @cases = (
	[ 'seq scan', $plain, 'SELECT count(*), sum(id) FROM s', 'Seq Scan' ],
	[ 'seq scan with a qual that keeps few rows', $plain,
		'SELECT count(*), sum(id) FROM s WHERE id % 1000 = 7', 'Seq Scan' ],
	[ 'parallel seq scan', $parallel, 'SELECT count(*), sum(id) FROM big4', 'Parallel Seq Scan' ],
	[ 'bitmap heap scan', $bitmap,
		'SELECT count(*), sum(id) FROM s WHERE r BETWEEN 1000 AND 3000', 'Bitmap Heap Scan' ],
	[ 'index scan', $index,
		'SELECT count(*), sum(id) FROM s WHERE r BETWEEN 1000 AND 3000', 'Index Scan' ],
	[ 'index-only scan visiting the heap', $ionly,
		'SELECT count(*), sum(r) FROM nv WHERE r BETWEEN 1000 AND 3000', 'Index Only Scan' ],
);
for my $c (@cases)
{
	my ($name, $set, $q, $plan) = @$c;
	my $explain = $node->safe_psql('postgres', "$set EXPLAIN (COSTS OFF) $q");
	like($explain, qr/\Q$plan\E/, "$name: the plan has a $plan");
	my ($off, $doff) = cold("SET pg_uring.readahead = off; $set $q");
	my ($on, $don) = cold("SET pg_uring.readahead = on; $set $q");
	is($on, $off, "$name: the same result with read-ahead on and off");
	ok($don->{reads} > 0 && $don->{readahead_used} > 0,
		"$name: read ahead with it on (blocks read $don->{reads}, used $don->{readahead_used})");
	is($doff->{reads}, 0, "$name: nothing read ahead with it off");
}

{
	my ($out, $d) = cold("$ionly SELECT count(*), sum(r) FROM s WHERE r BETWEEN 1000 AND 3000");
	is($d->{reads}, 0,
		'an index-only scan over all-visible pages reads nothing ahead (it fetches no heap block)');
	($out, $d) = cold("SET pg_uring.readahead_seqscan = off; $plain SELECT count(*) FROM s");
	is($d->{reads}, 0, 'pg_uring.readahead_seqscan = off: no read-ahead for a seq scan');
	($out, $d) = cold("SET pg_uring.readahead_seqscan = off; $index SELECT count(*) FROM s WHERE r BETWEEN 1000 AND 3000");
	ok($d->{reads} > 0, '... while an index scan still reads ahead');
	($out, $d) = cold(qq{CREATE TEMP TABLE tt AS SELECT g AS id, repeat('t', 100) AS pad
		FROM generate_series(1, 40000) g; $plain SELECT count(*) FROM tt});
	is($d->{reads}, 0, 'a temp table is left to core');
}

# per database: pg_uring_stat_database splits the read-ahead row of
# pg_uring_stat_io by the database of the relation read
{
	$node->safe_psql('postgres', 'CREATE DATABASE ra_db2');
	$node->safe_psql('ra_db2', q{
		CREATE TABLE s2 (id int NOT NULL, pad text NOT NULL);
		INSERT INTO s2 SELECT g, repeat('t', 100) FROM generate_series(1, 20000) g;
		VACUUM ANALYZE s2;
		CHECKPOINT;
	});
	my $nb_s = $node->safe_psql('postgres', q{SELECT pg_relation_size('s') / 8192});
	my $nb_s2 = $node->safe_psql('ra_db2', q{SELECT pg_relation_size('s2') / 8192});
	$node->restart;
	$node->safe_psql('postgres', 'SELECT pg_uring_reset_stats()');
	is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_stat_database'), 0,
		'per database: no row after a reset');
	my $c1 = $node->safe_psql('postgres', "$plain SELECT count(*) FROM s");
	my $c2 = $node->safe_psql('ra_db2', "$plain SELECT count(*) FROM s2");
	is("$c1|$c2", '40000|20000', 'per database: the scans in two databases are right');
	usleep(50_000);
	my @c = qw(ios reads failures readahead_waited readahead_used readahead_wasted);
	my %db;
	for my $row (split /\n/, $node->safe_psql('postgres',
			'SELECT coalesce(datname::text, datid::text, \'(other)\'), '
			  . join(', ', @c) . ' FROM pg_uring_stat_database ORDER BY 1'))
	{
		my ($name, @v) = split /\|/, $row;
		@{ $db{$name} }{@c} = @v;
	}
	is(join(',', sort keys %db), 'postgres,ra_db2', 'per database: one row for each database read');
	ok($db{postgres}{reads} > 0 && $db{postgres}{readahead_used} > 0
		  && $db{postgres}{reads} <= $nb_s,
		"per database: postgres read ahead $db{postgres}{reads} of s's $nb_s blocks");
	ok($db{ra_db2}{reads} > 0 && $db{ra_db2}{readahead_used} > 0
		  && $db{ra_db2}{reads} <= $nb_s2,
		"per database: ra_db2 read ahead $db{ra_db2}{reads} of s2's $nb_s2 blocks");
	my $r = ra($node);
	is(join(',', map { $db{postgres}{$_} + $db{ra_db2}{$_} } @c), join(',', map { $r->{$_} } @c),
		'per database: the rows add up to the read-ahead row of pg_uring_stat_io');
	$node->safe_psql('postgres', 'DROP DATABASE ra_db2');
	is($node->safe_psql('postgres',
			q{SELECT count(*) FILTER (WHERE datname IS NULL AND datid IS NOT NULL),
					 count(*) FILTER (WHERE datname = 'postgres') FROM pg_uring_stat_database}),
		'1|1', 'per database: a dropped database keeps its row, with a NULL datname');
	$node->safe_psql('postgres', 'SELECT pg_uring_reset_stats()');
}

# ---------------------------------------------------------------------------
# 2. EXPLAIN (ANALYZE, BUFFERS) counts shared reads as core does
# ---------------------------------------------------------------------------
sub buffers_read
{
	my ($set, $q, $mode) = @_;
	$node->restart;
	my $out = $node->safe_psql('postgres',
		"SET pg_uring.readahead = $mode; $set EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) $q");
	my ($line) = $out =~ /^.*?Buffers: (shared [^\n]*)/m;
	my ($read) = ($line // '') =~ /read=(\d+)/;
	return ($read // 0, $line // '(none)');
}
for my $c (@cases[0, 3, 4])
{
	my ($name, $set, $q) = @$c;
	my ($roff, $loff) = buffers_read($set, $q, 'off');
	my ($ron, $lon) = buffers_read($set, $q, 'on');
	ok($roff > 0 && $ron == $roff && $lon eq $loff,
		"$name: EXPLAIN BUFFERS counts shared hits and reads as core does ($lon / core: $loff)");
}

# ---------------------------------------------------------------------------
# 3. the pin trap
# ---------------------------------------------------------------------------
{
	my $q = "$plain SELECT count(*), sum(id) FROM trap WHERE id % 97 = 0";
	my ($off) = cold("SET pg_uring.readahead = off; $q");
	my ($on, $d) = cold("SET pg_uring.test_hold_reap = on; SET pg_uring.readahead = on; $q");
	is($on, $off, 'pin trap: core crossing empty pages into blocks in flight gets the same rows');
	ok($d->{readahead_waited} > 0,
		"pin trap: core did wait on blocks still being read ahead ($d->{readahead_waited})");
	($on, $d) = cold("SET pg_uring.test_hold_reap = on; SET pg_uring.readahead = on; $plain SELECT count(*), sum(id) FROM trap");
	($off) = cold("SET pg_uring.readahead = off; $plain SELECT count(*), sum(id) FROM trap");
	is($on, $off, 'pin trap: every row, too');
}

# ---------------------------------------------------------------------------
# 4. the strategy: a table 4x the pool
# ---------------------------------------------------------------------------
{
	my $nb = pw_nblocks($node, 'big4');
	my $pool = $node->safe_psql('postgres', "SELECT setting::int FROM pg_settings WHERE name = 'shared_buffers'");
	ok($nb >= 4 * $pool, "big4 is 4x the pool ($nb blocks, pool $pool)");
	my (undef, $d) = cold("SET pg_uring.readahead = on; $plain SELECT count(*) FROM big4");
	my $on = pw_ncached($node, 'big4');
	cold("SET pg_uring.readahead = off; $plain SELECT count(*) FROM big4");
	my $off = pw_ncached($node, 'big4');
	my $dist = $node->safe_psql('postgres',
		"SELECT setting FROM pg_settings WHERE name = 'pg_uring.readahead_distance'");
	ok($d->{reads} > 0, "the scan of big4 read ahead ($d->{reads} blocks)");
	ok($off > 0 && $on <= $off + $dist,
		"a seq scan 4x the pool leaves $on of its blocks cached, core $off (allowed: + $dist)");
}

# ---------------------------------------------------------------------------
# 5. LIMIT
# ---------------------------------------------------------------------------
# LIMIT 1 stops inside the first call into the scan: nothing is read ahead;
# a LIMIT over a few pages reads ahead what the distance has grown to by
# then (it doubles with each block the scan needed): at most the maximum
{
	my ($roff) = buffers_read($plain, 'SELECT * FROM s LIMIT 1', 'off');
	my ($ron) = buffers_read($plain, 'SELECT * FROM s LIMIT 1', 'on');
	ok($ron <= $roff + 4, "LIMIT 1: $ron blocks read with read-ahead, core $roff (at most 4 more)");
	($roff) = buffers_read($plain, 'SELECT * FROM s LIMIT 300', 'off');
	($ron) = buffers_read("$plain SET pg_uring.readahead_distance = 16;", 'SELECT * FROM s LIMIT 300', 'on');
	ok($ron > $roff && $ron <= $roff + 16,
		"LIMIT 300 (a few pages): $ron blocks read, core $roff (more, but at most the distance, 16)");
}

# ---------------------------------------------------------------------------
# 6. errors belong to the query that reaches the block
# ---------------------------------------------------------------------------
{
	# rows per block of s, and a block to break well inside the table
	my $per = $node->safe_psql('postgres',
		q{SELECT count(*) FROM s WHERE (ctid::text::point)[0] = 1});
	my $bad = 40;
	my ($inj_off) = cold("SET pg_uring.readahead = off; $plain SELECT count(*), sum(id) FROM s");
	my ($inj_on, $d) = cold("SET pg_uring.test_fault = 'eio:$bad'; SET pg_uring.readahead = on; $plain SELECT count(*), sum(id) FROM s");
	is($inj_on, $inj_off, 'an injected EIO of a read-ahead: core reads the block itself, same result');
	ok($d->{failures} > 0, "... and the failed read-ahead was counted ($d->{failures})");

	my $path = $node->data_dir . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath('s')");
	my $garbage = 'garbage that breaks the checksum';
	my $orig;
	$node->stop;
	open(my $fh, '+<', $path) or die "open $path: $!";
	binmode $fh;
	sysseek($fh, $bad * 8192 + 4000, 0) or die "seek: $!";
	sysread($fh, $orig, length $garbage) == length $garbage or die "read: $!";
	sysseek($fh, $bad * 8192 + 4000, 0) or die "seek: $!";
	syswrite($fh, $garbage) or die "write: $!";
	close $fh;
	$node->start;

	my ($rc, $out, $err) = pgu_psql($node, "SET pg_uring.readahead = off; $plain SELECT count(*) FROM s");
	my ($core_err) = $err =~ /(ERROR:\s+XX001: [^\n]*)/;
	ok($rc != 0 && defined $core_err, "core's error for the broken block: " . ($core_err // $err));
	$node->restart;
	($rc, $out, $err) = pgu_psql($node, "SET pg_uring.readahead = on; $plain SELECT count(*) FROM s");
	my ($ra_err) = $err =~ /(ERROR:\s+XX001: [^\n]*)/;
	is($ra_err, $core_err, 'read-ahead on: the query that reaches the block gets core\'s own error');

	# a LIMIT that stops two blocks before it, read ahead past it
	my $lim = ($bad - 2) * $per;
	$node->restart;
	($rc, $out, $err) = pgu_psql($node,
		"SET pg_uring.readahead = on; $plain SELECT count(*) FROM (SELECT * FROM s LIMIT $lim) x");
	is($rc, 0, "a LIMIT that stops before the broken block sees no error ($err)");
	my $f = 0;
	pgu_poll(sub { $f = ra($node)->{failures}; $f > 0 }, 10);
	ok($f > 0, "... although read-ahead read the broken block ($f failed)");

	# put the block right again for the rest
	$node->stop;
	open($fh, '+<', $path) or die "open $path: $!";
	binmode $fh;
	sysseek($fh, $bad * 8192 + 4000, 0) or die "seek: $!";
	syswrite($fh, $orig) or die "write: $!";
	close $fh;
	$node->start;
	is($node->safe_psql('postgres', "SET pg_uring.readahead = off; $plain SELECT count(*) FROM s"),
		'40000', 'the block is whole again');
}

# ---------------------------------------------------------------------------
# 7. cancel, ERROR, cursors, rescans, TRUNCATE/DROP, VACUUM
# ---------------------------------------------------------------------------
sub nothing_left
{
	my ($what) = @_;
	my $ok = pgu_poll(sub {
		$node->safe_psql('postgres', q{
			SELECT (SELECT count(*) FROM pg_buffercache WHERE pinning_backends > 0)
			     + (SELECT count(*) FROM pg_uring_ios)}) eq '0' }, 10);
	ok($ok, "$what: no buffer pinned, no IO slot held afterwards");
}

{
	$node->restart;
	my ($rc, $out, $err) = pgu_psql($node,
		"SET statement_timeout = '300ms'; $plain SELECT count(*) FROM big4 WHERE pg_sleep(0.0002) IS NOT NULL");
	like($err, qr/57014/, 'statement_timeout cancels a scan that reads ahead (57014)');
	nothing_left('cancel');

	$node->restart;
	($rc, $out, $err) = pgu_psql($node, "$plain SELECT count(*) FROM s WHERE 1 / (id - 20000) > -2");
	like($err, qr/22012/, 'an ERROR in the middle of a scan that reads ahead');
	nothing_left('ERROR mid-scan');

	$node->restart;
	my $sess = pgu_session($node, 'cursor');
	my $spath = $node->data_dir . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath('s')");
	my ($c1) = $sess->query(q{SET max_parallel_workers_per_gather = 0; BEGIN;
		DECLARE c SCROLL CURSOR FOR SELECT id FROM s;
		FETCH FORWARD 5000 FROM c;
		FETCH BACKWARD 3 FROM c;
		FETCH ABSOLUTE 20000 FROM c;
		FETCH FORWARD 2 FROM c});
	my @rows = split /\n/, $c1 // '';
	is(join(',', @rows[5000 .. $#rows]), '4999,4998,4997,20000,20001,20002',
		'a scroll cursor: forward, backward, absolute');
	# VACUUM (cleanup locks) while the cursor is open in the middle of s
	my ($v, $verr) = pgu_session($node, 'vacuum')->query('VACUUM s', 30);
	ok(defined $v && $verr eq '', "VACUUM runs while a cursor reads ahead ($verr)");
	$sess->query('COMMIT');
	my ($h) = $sess->query(q{BEGIN;
		DECLARE h CURSOR WITH HOLD FOR SELECT id FROM s WHERE id % 1000 = 0;
		FETCH 3 FROM h; COMMIT; FETCH 2 FROM h; CLOSE h});
	is(join(',', split(/\n/, $h // '')), '1000,2000,3000,4000,5000', 'a WITH HOLD cursor across COMMIT');
	my ($nl) = $sess->query(q{SET enable_hashjoin = off; SET enable_mergejoin = off;
		SET enable_material = off; SET enable_indexscan = off; SET enable_bitmapscan = off;
		SET enable_indexonlyscan = off;
		SELECT count(*), sum(s.id) FROM small JOIN s ON s.id = small.id});
	is($nl, '50|892500', 'a nested loop rescanning a seq scan 50 times');
	# core keeps s open through its own file cache (one descriptor); each
	# scan that read ahead opened it once more, and must have closed it
	my $open = grep { (readlink($_) // '') eq $spath } glob('/proc/' . $sess->pid . '/fd/*');
	ok($open <= 1, "the scans left no file of theirs open ($open descriptors of s, core's own included)");
	my ($tr, $trerr) = $sess->query(q{BEGIN;
		CREATE TABLE gone AS SELECT * FROM s;
		SELECT count(*) FROM gone;
		TRUNCATE gone;
		SELECT count(*) FROM gone;
		DROP TABLE gone;
		COMMIT}, 30);
	is($tr, "40000\n0", "TRUNCATE and DROP right after a scan in the same transaction ($trerr)");
	$sess->quit;
	nothing_left('cursors, rescans, TRUNCATE');
}

# ---------------------------------------------------------------------------
# 8. settings
# ---------------------------------------------------------------------------
{
	my ($rc, $out, $err) = pgu_psql($node, 'SET pg_uring.readahead_distance = 0');
	like($err, qr/22023.*outside the valid range/s, 'readahead_distance 0 is refused');
	($rc, $out, $err) = pgu_psql($node, 'SET pg_uring.readahead_distance = 1025');
	like($err, qr/22023.*outside the valid range/s, 'readahead_distance 1025 is refused');
	is($node->safe_psql('postgres', "SET pg_uring.readahead_distance = '512kB'; SHOW pg_uring.readahead_distance"),
		'512kB', 'readahead_distance is in blocks: 512kB is accepted and shown as such');
	is($node->safe_psql('postgres', "SELECT setting FROM pg_settings WHERE name = 'pg_uring.readahead_distance'"),
		'64', '... and the default is 64 blocks');

	# which seq scans read ahead: none by default (serial ones measured
	# slower than core's own, kernel read-ahead served, reads; parallel ones
	# faster on one machine and slower on another)
	is($node->safe_psql('postgres',
			"SELECT boot_val FROM pg_settings WHERE name = 'pg_uring.readahead_seqscan'"),
		'off', 'readahead_seqscan defaults to off');
	my ($o, $d) = cold("SET pg_uring.readahead_seqscan = parallel; $plain SELECT count(*) FROM s");
	is("$o|$d->{reads}", '40000|0', 'readahead_seqscan = parallel: a serial seq scan reads nothing ahead');
	($o, $d) = cold("SET pg_uring.readahead_seqscan = parallel; $parallel SELECT count(*) FROM big4");
	ok($o eq '600000' && $d->{reads} > 0,
		"readahead_seqscan = parallel: a parallel seq scan reads ahead ($d->{reads} blocks)");
	($o, $d) = cold("SET pg_uring.readahead_seqscan = off; $parallel SELECT count(*) FROM big4");
	is("$o|$d->{reads}", '600000|0', 'readahead_seqscan = off: a parallel seq scan reads nothing ahead');
	($rc, $out, $err) = pgu_psql($node, 'SET pg_uring.readahead_seqscan = sometimes');
	like($err, qr/22023.*invalid value.*Available values: off, parallel, on/s,
		'readahead_seqscan refuses other values and names the valid ones');
	is($node->safe_psql('postgres', 'SET pg_uring.readahead_seqscan = true; SHOW pg_uring.readahead_seqscan'),
		'on', 'readahead_seqscan still takes a boolean (true is on)');
}

my $log = slurp_file($node->logfile);
unlike($log, qr/IO slots still held at commit/, 'no IO slot was ever held at commit');
unlike($log, qr/buffer refcount leak/, 'no buffer refcount leak');

done_testing();
