
# Read-ahead (design.md section 7) where a scan outlives what happens under
# it: subtransaction aborts, a backend's file descriptor budget, VACUUM.
#
# One node: shared_buffers = 16MB (the tables are bigger than what stays
# cached; every run that compares starts from a restart, an empty pool),
# data checksums, synchronize_seqscans off (a fixed row order),
# max_files_per_process = 64 (PostgreSQL's minimum).
#
#  0. The node starts.  Core starts with max_files_per_process = 64, and so
#     must the server with pg_uring preloaded at its default pg_uring.rings:
#     each ring is a descriptor of the postmaster (its io_uring instance;
#     all rings share one eventfd) that set_max_safe_fds counts as already
#     open, and below 48 safe descriptors the postmaster refuses to start,
#     so pg_uring creates as many rings as fit (2 of the 4 here) and none
#     under the largest open files limit at which no ring fits (62), with
#     one ring one descriptor above it.  If it does not start, that check
#     fails and the rest runs with one ring (which leaves no descriptor to
#     spare: no restart may happen while the test holds a session open,
#     whose pipes pg_ctl and the postmaster inherit).
#
#  1. Subtransaction abort under an outer scan that reads ahead.
#     pgu_subxact_callback (io.c) waits for and frees every IO slot of the
#     process at SUBXACT_EVENT_ABORT_SUB, the slots of the outer query's
#     scan too: that scan must notice (pgu_io_handle_valid), forget them
#     and go on reading ahead.  An outer seq scan, index scan and bitmap
#     heap scan of o project f(), a PL/pgSQL function that for every 1000th
#     row (by id in the physical order, by r in the index's: the first
#     abort comes with the first rows) enters BEGIN ... EXCEPTION, runs an
#     inner query and fails: half of them by division by zero in the middle
#     of the inner scan (its reads in flight), half by RAISE after an inner
#     query ended by a LIMIT.  Each outer query runs three times, each from
#     a restart, in a session that stays connected for the checks:
#       - read-ahead off: the reference;
#       - inner queries on ic, cached beforehand, so that they read nothing
#         ahead: what pg_uring_stat_io counts is the outer scan's, and it
#         must be more than three quarters of o (a scan that stopped
#         reading ahead at the first abort, or whose reader kept the freed
#         handles, reads next to nothing);
#       - inner queries on i (more than a quarter of the pool: its seq
#         scans go through a ring and read ahead each time), with
#         pg_uring.test_hold_reap on and pg_uring.reaper_delay = 200ms, so
#         that the outer scan's reads are still unreaped when the inner one
#         fails: the abort's cleanup must wait for them itself; the total
#         read ahead must exceed the outer scan's alone.
#     Many aborts: a seq scan of o whose every 10th row aborts (4000 aborts,
#     reaps held): the outer scan reads ahead more than 90% of o, and then
#     a seq scan of i in the same session reads ahead more than three
#     quarters of what of i is not cached (whatever an abort failed to give
#     back, such as pins of the read-ahead budget, adds up until read-ahead
#     stops).
#     A cursor loop: two cursors (seq scan and index scan of o) read ahead;
#     FETCH, SAVEPOINT, FETCH inside it, a query reading ahead that fails,
#     ROLLBACK TO, four times; FETCH ALL, COMMIT (reaps held).
#     Checked each time: the full output (every row, or md5 of every row in
#     a fixed order) is the one with read-ahead off, with the rows it must
#     have (the count, the rows whose f() took the exception path); the
#     same errors; the scans read ahead; with the session still connected,
#     no buffer pinned and no IO slot held (a pin or slot an abort leaked,
#     a read freed while in flight, shows there).
#
#  2. File descriptor exhaustion.  Read-ahead opens segment files with
#     pgu_try_open_file (open() + AcquireExternalFD(), not a VFD) and keeps
#     each open until its scan stops; AcquireExternalFD allows max_safe_fds
#     / 3 external descriptors per backend (16 here, less the ones core
#     keeps); read-ahead takes at most half of those, and beyond that (or
#     when AcquireExternalFD refuses) it skips the block (no error).
#     p is partitioned into 150 tables of ~300 kB.
#       - A Merge Append over 150 index scans, all open at once: the same
#         output as with read-ahead off, no error, and it read ahead.
#       - 150 cursors in one transaction, each stopped in the middle of a
#         seq scan of its partition.  Then, in the same transaction, what
#         needs a descriptor of the external budget must work as it does
#         with read-ahead off: pg_uring_prewarm of a table, and, where
#         dblink is installed (Debian's build; the assert-enabled build of
#         scripts/build-cassert-pg.sh has no dblink), a dblink connection.
#         Read-ahead is only a hint and must not take the whole budget from
#         them (core gives no such error here).  The rest of every cursor
#         is fetched: the same checksums as with read-ahead off.  While the
#         cursors are open the backend holds read-only descriptors of
#         relation files (md.c opens them O_RDWR: these are read-ahead's),
#         never more descriptors in all than max_files_per_process; after
#         COMMIT none of read-ahead's is open, and (dblink) the session can
#         open as many connections as before the transaction: every
#         external descriptor was released, not only closed.
#       - Afterwards the server works: a new session's scan reads ahead
#         with the right result, the old session runs the Merge Append.
#
#  3. VACUUM is not starved by read-ahead.  Two sessions scan vt (bigger
#     than the pool) in a loop, seq scans, bitmap heap scans and index
#     scans, with test_hold_reap on and reaper_delay = 200ms (their reads
#     stay in flight, IO-owned pins held, until the reaper or a waiter
#     completes them); a third updates vt (non-HOT: dead tuples in the heap
#     and the index); a fourth runs VACUUM (FREEZE, DISABLE_PAGE_SKIPPING)
#     and VACUUM, three times each.  Each must end within 30 s (core takes
#     well under a second here; a VACUUM asleep on a cleanup lock or on an
#     IO that nobody completes fails the bound instead of hanging the
#     test), without error, and be counted in pg_stat_user_tables; every
#     scan's result is right (count, sum, contents); the scans read ahead,
#     and read-ahead IOs were seen in flight while the VACUUMs ran (not
#     asserted with pg_uring.io_method = sync, where an IO is in flight
#     only during its pread); afterwards verify_heapam and bt_index_check
#     (heapallindexed) are clean, nothing pinned, nothing in flight.
#
# The server log must show no TRAP, PANIC or signal (PgUringTest's END
# check), no pin or resource leak, no slot held at commit, no "no unpinned
# buffers available", no "out of file descriptors", no WARNING, and no
# ERROR but the eight the cursor loop causes.
#
# scripts/test.sh runs 3xx files with io_uring only; under
# PGU_TEST_IO_METHOD=sync the file runs too (without the in-flight check).
# About 25 s.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use Digest::MD5 qw(md5_hex);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use PgUringTest;
use PgUringPrewarm;

my $t_start = time();
my $sync = pgu_io_method() eq 'sync';

my $node = pw_node('ra_subxact_fds',
	shared_buffers          => '16MB',
	max_files_per_process   => '64',
	synchronize_seqscans    => 'off',
	'pg_uring.reaper_delay' => '1',
	# seq scans read ahead too (the default, off, leaves them to core)
	'pg_uring.readahead_seqscan' => 'on');

# ---------------------------------------------------------------------------
# 0. the node starts with max_files_per_process = 64
# ---------------------------------------------------------------------------
# How many rings fit: each server process may open min(64, ulimit -n) files,
# of which the postmaster has some open already when it starts (0, 1 and 2
# from pg_ctl; test/tap.sh closes whatever else the suite's caller passed
# down), core needs 58 of the rest (48 safe ones plus its 10 reserved), the
# rings' eventfd one, and each ring one.  The count open already is read
# off pg_uring's WARNING and checked against what the test itself saw, and
# the expectations follow from it: with 3 open, 2 of the 4 rings at 64
# files, and none at 62, the largest limit with no room for a ring (the
# boundary: one more descriptor and there would be one ring).
my $core_min = 58;
my $rings_asked = 4;
{
	$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
	my $core = $node->start(fail_ok => 1);
	ok($core, 'core starts with max_files_per_process = 64');
	$node->stop if $core;
	$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_uring'\n");
	my $offset = -s $node->logfile;
	my $ours = $node->start(fail_ok => 1);
	my $startlog = substr(slurp_file($node->logfile), $offset);
	ok($ours, 'so does the server with pg_uring preloaded at its default pg_uring.rings')
	  or diag join("\n", grep { /FATAL|DETAIL/ } split /\n/, $startlog);
	my ($open) = $startlog =~ /DETAIL:  Each server process may open 64 files; (\d+) are open already, and core needs $core_min;/;
	$open //= -1;
	note "the postmaster had $open descriptors open when pg_uring counted them";
	is($open, 3, 'the postmaster had 0, 1 and 2 open, nothing inherited from the test (test/tap.sh)');
	my $fit = 64 - $open - $core_min - 1;
	$fit = $rings_asked if $fit > $rings_asked;
	# it creates the rings the budget has room for, and says so
	like($startlog,
		qr/WARNING:  pg_uring: creating $fit of the $rings_asked shared io_uring instances pg_uring.rings asks for\n.*DETAIL:  .*\n.*HINT:  Raise max_files_per_process/,
		"with room for $fit rings, pg_uring creates $fit and logs a WARNING naming the setting");
	if ($ours)
	{
		is($node->safe_psql('postgres',
				q{CREATE EXTENSION pg_uring; SELECT count(*) || ' ' || string_agg(DISTINCT mode, ',') FROM pg_uring_stats}),
			"$fit io_uring", "... pg_uring_stats shows those $fit rings, in mode io_uring");
		$node->safe_psql('postgres', 'DROP EXTENSION pg_uring');
		$node->stop;

		# with an open files limit at which core still starts but no ring
		# fits, pg_uring runs synchronously and says why
		my $noroom = $open + $core_min + 1;
		my $pgdata = $node->data_dir;
		my $logfile = $node->logfile;
		$offset = -s $logfile;
		my $rc = system('bash', '-c',
			"ulimit -n $noroom && pg_ctl -D '$pgdata' -l '$logfile' -w start >/dev/null 2>&1");
		ok($rc == 0, "with ulimit -n $noroom the server with pg_uring starts too");
		my $nolog = substr(slurp_file($logfile), $offset);
		like($nolog,
			qr/WARNING:  pg_uring: could not create shared io_uring instances, falling back to synchronous IO\n.*DETAIL:  no room in the file descriptor budget: each server process may open $noroom files, $open are open already, core needs $core_min, and the rings need 5 \(errno 24\)\.\n.*HINT:  Raise max_files_per_process/,
			'... with no room for a ring: a WARNING with the budget and a hint, then synchronous IO');
		is($node->safe_psql('postgres',
				q{CREATE EXTENSION pg_uring; SELECT count(*) || ' ' || string_agg(DISTINCT mode, ',') FROM pg_uring_stats}),
			"$rings_asked sync", "... pg_uring_stats shows its $rings_asked rings in mode sync")
		  if $rc == 0;
		$node->safe_psql('postgres', 'DROP EXTENSION pg_uring') if $rc == 0;
		system('pg_ctl', '-D', $pgdata, '-m', 'fast', '-w', 'stop');

		# one more descriptor: one ring
		$offset = -s $logfile;
		$rc = system('bash', '-c',
			"ulimit -n " . ($noroom + 1) . " && pg_ctl -D '$pgdata' -l '$logfile' -w start >/dev/null 2>&1");
		ok($rc == 0, 'with ulimit -n ' . ($noroom + 1) . ' it starts');
		like(substr(slurp_file($logfile), $offset),
			qr/WARNING:  pg_uring: creating 1 of the $rings_asked shared io_uring instances/,
			'... with one ring');
		system('pg_ctl', '-D', $pgdata, '-m', 'fast', '-w', 'stop');
	}
	else
	{
		note 'going on with pg_uring.rings = 1';
		$node->append_conf('postgresql.conf', "pg_uring.rings = 1\n");
	}
	pgu_start($node);
}

sub ra { return pw_readahead($node); }

sub ra_delta
{
	my ($before, $after) = @_;
	return { map { $_ => $after->{$_} - $before->{$_} } keys %$after };
}

# no buffer pinned, no IO slot held (the sessions still connected)
sub nothing_left
{
	my ($what) = @_;
	my $sql = q{SELECT (SELECT count(*) FROM pg_buffercache WHERE pinning_backends > 0)
		|| '|' || (SELECT count(*) FROM pg_uring_ios)};
	my $last = '';
	my $ok = pgu_poll(sub { $last = $node->safe_psql('postgres', $sql); $last eq '0|0' }, 10);
	ok($ok, "$what: no buffer pinned, no IO slot held afterwards (pinned|slots: $last)")
	  or diag $node->safe_psql('postgres',
		q{SELECT coalesce(c.relname, b.relfilenode::text), b.relblocknumber, b.pinning_backends
		  FROM pg_buffercache b LEFT JOIN pg_class c ON c.relfilenode = b.relfilenode
		  WHERE b.pinning_backends > 0 ORDER BY 1, 2 LIMIT 20})
	  . "\n" . $node->safe_psql('postgres', 'SELECT * FROM pg_uring_ios LIMIT 20');
	return $ok;
}

my $plain = "SET enable_indexscan = off; SET enable_indexonlyscan = off; SET enable_bitmapscan = off;\n";
my $bitmap = "SET enable_indexscan = off; SET enable_indexonlyscan = off; SET enable_seqscan = off;\n";
my $index = "SET enable_bitmapscan = off; SET enable_indexonlyscan = off; SET enable_seqscan = off;\n";
my $hold = "SET pg_uring.test_hold_reap = on;\n";

# ---------------------------------------------------------------------------
# the data
# ---------------------------------------------------------------------------
# o: the outer table (~5 MB), r uncorrelated and indexed; i: the inner
# queries' table (~7 MB, more than a quarter of the pool); ic: a small
# inner table (cached before use); p: 150 partitions of ~300 kB, u indexed
# (with id), in the physical order within each; vt: section 3's
my $nparts = 150;
my $nvt = 110000;
my $t_setup = time();
$node->safe_psql(
	'postgres', qq{
	CREATE EXTENSION pg_buffercache;
	CREATE EXTENSION amcheck;

	CREATE TABLE o (id int NOT NULL, r int NOT NULL, h text NOT NULL, pad text NOT NULL);
	INSERT INTO o SELECT g, (g * 7919) % 40009, md5(g::text), repeat('o', 60)
	  FROM generate_series(1, 40000) g;
	CREATE INDEX o_r ON o (r);
	CREATE TABLE i (id int NOT NULL, pad text NOT NULL);
	INSERT INTO i SELECT g, repeat('i', 100) FROM generate_series(1, 50000) g;
	CREATE TABLE ic (id int NOT NULL, pad text NOT NULL);
	INSERT INTO ic SELECT g, repeat('c', 100) FROM generate_series(1, 5000) g;

	-- for every 1000th row (every \$3th): a subtransaction, an inner query
	-- on tbl (none: no inner query), an error
	CREATE FUNCTION f(x int, tbl text, every int DEFAULT 1000) RETURNS int
	LANGUAGE plpgsql AS \$\$
	DECLARE
		n bigint;
		stopper int := CASE tbl WHEN 'i' THEN 20000 ELSE 3000 END + x % 97;
		lim int := CASE tbl WHEN 'i' THEN 15000 ELSE 2500 END;
	BEGIN
		IF x % every <> 7 THEN
			RETURN x % 13;
		END IF;
		BEGIN
			IF tbl = 'none' THEN
				RAISE EXCEPTION 'raised at %', x;
			ELSIF (x / 1000) % 2 = 0 THEN
				-- division by zero in the middle of the inner scan
				IF tbl = 'i' THEN
					SELECT count(*) INTO n FROM i WHERE 1 / (i.id - stopper) > -2;
				ELSE
					SELECT count(*) INTO n FROM ic WHERE 1 / (ic.id - stopper) > -2;
				END IF;
			ELSE
				-- the inner query ends, then an error
				IF tbl = 'i' THEN
					SELECT count(*) INTO n FROM (SELECT 1 FROM i WHERE i.pad <> '' LIMIT lim) s;
				ELSE
					SELECT count(*) INTO n FROM (SELECT 1 FROM ic WHERE ic.pad <> '' LIMIT lim) s;
				END IF;
				RAISE EXCEPTION 'raised after % rows', n;
			END IF;
			RETURN -1;
		EXCEPTION WHEN division_by_zero OR raise_exception THEN
			RETURN 100 + x % 13;
		END;
	END \$\$;

	CREATE TABLE p (k int NOT NULL, id int NOT NULL, u int NOT NULL, pad text NOT NULL)
	  PARTITION BY LIST (k);
	DO \$\$
	BEGIN
		FOR j IN 0 .. $nparts - 1 LOOP
			EXECUTE format('CREATE TABLE p_%s PARTITION OF p FOR VALUES IN (%s)', j, j);
		END LOOP;
	END \$\$;
	INSERT INTO p SELECT g / 2000, g, g % 2000, repeat('p', 100)
	  FROM generate_series(0, $nparts * 2000 - 1) g;
	CREATE INDEX p_u ON p (u, id);

	-- the next rows of a cursor, as a count and an md5 chain
	CREATE FUNCTION fetch_sum(cur text, n int) RETURNS text LANGUAGE plpgsql AS \$\$
	DECLARE
		c refcursor := cur;
		r record;
		k int := 0;
		acc text := '';
	BEGIN
		WHILE k < n LOOP
			FETCH c INTO r;
			EXIT WHEN NOT FOUND;
			acc := md5(acc || r.id::text);
			k := k + 1;
		END LOOP;
		RETURN k || ':' || acc;
	END \$\$;
	-- a statement's error as a value (in a subtransaction)
	CREATE FUNCTION try_sql(q text) RETURNS text LANGUAGE plpgsql AS \$\$
	BEGIN
		EXECUTE q;
		RETURN 'ok';
	EXCEPTION WHEN OTHERS THEN
		RETURN SQLSTATE || ': ' || SQLERRM;
	END \$\$;

	CREATE TABLE vt (id int PRIMARY KEY, n int NOT NULL, h text NOT NULL, pad text NOT NULL)
	  WITH (vacuum_truncate = off);
	INSERT INTO vt SELECT g, 0, md5(g::text), repeat('v', 120) FROM generate_series(1, $nvt) g;
	CREATE INDEX vt_n ON vt (n);

	VACUUM ANALYZE o, i, ic, p, vt;
	CHECKPOINT;
});
note sprintf('setup: %.1f s', time() - $t_setup);

my %nb = map { $_ => pw_nblocks($node, $_) } qw(o i ic p_0 vt);
note join(', ', map { "$_: $nb{$_} blocks" } sort keys %nb);
my $pool = $node->safe_psql('postgres',
	"SELECT setting::int FROM pg_settings WHERE name = 'shared_buffers'");
cmp_ok($nb{o}, '>', $pool / 4, "o ($nb{o} blocks) is more than a quarter of the pool ($pool)");
cmp_ok($nb{i}, '>', $pool / 4, "i ($nb{i} blocks) too: its seq scans go through a ring");
cmp_ok($nb{ic}, '<', $pool / 4, "ic ($nb{ic} blocks) stays cached once read");
ok($nb{p_0} >= 25 && $nb{p_0} <= 60, "each partition of p is a few hundred kB ($nb{p_0} blocks)");
cmp_ok($nb{vt}, '>', $pool, "vt ($nb{vt} blocks) is bigger than the pool: its scans keep reading");

# ---------------------------------------------------------------------------
# 1. subtransaction abort under an outer scan that reads ahead
# ---------------------------------------------------------------------------

# Run $sql in a new session after a restart, after $pre (settings,
# warm-ups); returns (stdout, stderr, read-ahead delta of $sql), having
# checked that nothing is left pinned or held with the session connected.
# With $post: then, in the same session (reaping its completions again), a
# seq scan of i (bigger than a quarter of the pool: never cached), which
# must read ahead nearly all of i: whatever the aborts did, the session's
# (and the server's) budget of read-ahead pins and slots is whole again.
sub cold_session
{
	my ($what, $pre, $sql, $post) = @_;
	$node->restart;
	my $s = pgu_session($node, 'ra_subxact');
	my ($po, $pe) = $s->query($pre);
	is($pe // 'timeout', '', "$what: the settings and warm-up run");
	my $before = ra();
	my ($out, $err) = $s->query($sql, 60);
	my $d = ra_delta($before, ra());
	nothing_left($what);
	if ($post)
	{
		$before = ra();
		my $cold = $nb{i} - pw_ncached($node, 'i');
		my ($o, $e) = $s->query("RESET pg_uring.test_hold_reap; $plain SELECT count(*) FROM i", 60);
		my $dp = ra_delta($before, ra());
		is("$o$e", '50000', "$what: then a seq scan of i in the same session");
		cmp_ok($dp->{reads}, '>', $cold * 3 / 4,
			"$what: ... reads ahead as much as ever ($dp->{reads} of the $cold blocks of i not cached)");
	}
	$s->quit;
	return ($out // '', $err // 'timeout', $d);
}

{
	my @outer = (
		[ 'seq scan', $plain, 'Seq Scan on o', 'TRUE', 'id' ],
		[ 'index scan', $index, 'Index Scan using o_r on o', 'r BETWEEN 0 AND 25000', 'r' ],
		[ 'bitmap heap scan', $bitmap, 'Bitmap Heap Scan on o', 'r BETWEEN 0 AND 25000', 'id' ]);
	for my $c (@outer)
	{
		# $key: what f() is given, so that the first abort comes with the
		# first rows the scan returns (id in the physical order, r in the
		# index's)
		my ($what, $set, $plan, $cond, $key) = @$c;
		my $q = sub {
			my ($tbl) = @_;
			return "SELECT count(*), count(*) FILTER (WHERE v >= 100), "
			  . "md5(string_agg(id || ':' || v || ':' || h, ',' ORDER BY id)) "
			  . "FROM (SELECT id, h, f($key, '$tbl') AS v FROM o WHERE $cond OFFSET 0) s";
		};
		like($node->safe_psql('postgres', "$set EXPLAIN (COSTS OFF) " . $q->('i')),
			qr/\Q$plan\E/, "subxact, $what: the plan has a $plan");
		my $want = $node->safe_psql('postgres',
			"SELECT count(*) || '|' || count(*) FILTER (WHERE $key % 1000 = 7) FROM o WHERE $cond");

		my ($off, $eoff) = cold_session("subxact, $what, read-ahead off",
			"SET pg_uring.readahead = off; $set", $q->('i'));
		like($off, qr/^\Q$want\E\|[0-9a-f]{32}$/,
			"subxact, $what: read-ahead off gives every row, $want (rows|exception paths)");
		is($eoff, '', "subxact, $what: read-ahead off, no error");

		my ($on, $eon, $d) = cold_session("subxact, $what, inner queries cached",
			"$set SELECT count(*) FROM ic WHERE pad <> ''", $q->('ic'));
		is("$on$eon", $off, "subxact, $what, inner queries on a cached table: the same output");
		cmp_ok($d->{reads}, '>', $nb{o} * 3 / 4,
			"subxact, $what: the outer scan went on reading ahead across the aborts "
			  . "($d->{reads} blocks, used $d->{readahead_used}; o has $nb{o})");
		my $outer_only = $d->{reads};

		($on, $eon, $d) = cold_session("subxact, $what, inner queries reading ahead, reaps held",
			"$set $hold ALTER SYSTEM SET pg_uring.reaper_delay = '200ms'; SELECT pg_reload_conf();",
			$q->('i'));
		is("$on$eon", $off, "subxact, $what, inner queries reading ahead, reaps held: the same output");
		cmp_ok($d->{reads}, '>', $outer_only,
			"subxact, $what: the inner queries read ahead too ($d->{reads} blocks in all)");
		$node->safe_psql('postgres', 'ALTER SYSTEM RESET pg_uring.reaper_delay; SELECT pg_reload_conf()');
	}
}

# many aborts in one session: every 10th row of a seq scan of o aborts a
# subtransaction (4000 of them), the outer scan's reads unreaped each time:
# whatever an abort forgets to give back (a pin of the read-ahead budget,
# a slot) adds up, and the outer scan, or the next scan of the session,
# would stop reading ahead
{
	my $q = "SELECT count(*), count(*) FILTER (WHERE v >= 100), "
	  . "md5(string_agg(id || ':' || v || ':' || h, ',' ORDER BY id)) "
	  . "FROM (SELECT id, h, f(id, 'none', 10) AS v FROM o OFFSET 0) s";
	my $off = $node->safe_psql('postgres', "SET pg_uring.readahead = off; $plain $q");
	like($off, qr/^40000\|4000\|[0-9a-f]{32}$/, 'many aborts, read-ahead off: every row, 4000 aborts');
	my ($on, $eon, $d) = cold_session('many aborts, reaps held',
		"$plain $hold ALTER SYSTEM SET pg_uring.reaper_delay = '200ms'; SELECT pg_reload_conf();", $q, 1);
	$node->safe_psql('postgres', 'ALTER SYSTEM RESET pg_uring.reaper_delay; SELECT pg_reload_conf()');
	is("$on$eon", $off, 'many aborts: the same output with read-ahead on');
	cmp_ok($d->{reads}, '>', $nb{o} * 0.9,
		"many aborts: the outer scan read ahead all along ($d->{reads} blocks of o's $nb{o})");
}

# the cursor loop: SAVEPOINT / ROLLBACK TO between FETCHes of two cursors
# that read ahead, a FETCH inside each savepoint, a failing query reading
# ahead inside each
{
	my $script = "BEGIN;\n"
	  . "$plain DECLARE cs CURSOR FOR SELECT id, r, h FROM o;\n"
	  . "$index DECLARE ci CURSOR FOR SELECT id, r FROM o WHERE r BETWEEN 1000 AND 30000;\n"
	  . "RESET enable_seqscan; RESET enable_indexscan; RESET enable_bitmapscan;\n";
	for my $k (1 .. 4)
	{
		$script .= "FETCH 4000 FROM cs;\nFETCH 2500 FROM ci;\nSAVEPOINT s$k;\n"
		  . "FETCH 1000 FROM cs;\nFETCH 500 FROM ci;\n"
		  . "SELECT count(*) FROM i WHERE 1 / (id - " . (15000 + 5000 * $k) . ") > -2;\n"
		  . "ROLLBACK TO SAVEPOINT s$k;\n";
	}
	$script .= "FETCH ALL FROM cs;\nFETCH ALL FROM ci;\nCOMMIT;\n";
	my ($off, $eoff) = cold_session('cursor loop, read-ahead off', 'SET pg_uring.readahead = off', $script);
	my $nrows = () = ($off // '') =~ /\n/g;
	my $want_rows = $node->safe_psql('postgres',
		'SELECT (SELECT count(*) FROM o) + (SELECT count(*) FROM o WHERE r BETWEEN 1000 AND 30000)');
	is($nrows + 1, $want_rows, "cursor loop, read-ahead off: every row of both cursors ($want_rows)");
	is(pgu_count_matches($eoff, qr/^ERROR:  22012: division by zero$/m), 4,
		'cursor loop, read-ahead off: the four failing queries fail');
	my ($on, $eon, $d) = cold_session('cursor loop, read-ahead on, reaps held',
		"$hold ALTER SYSTEM SET pg_uring.reaper_delay = '200ms'; SELECT pg_reload_conf();", $script);
	$node->safe_psql('postgres', 'ALTER SYSTEM RESET pg_uring.reaper_delay; SELECT pg_reload_conf()');
	ok(defined $on && md5_hex($on) eq md5_hex($off),
		'cursor loop, read-ahead on: the same rows in the same order ('
		  . (defined $on ? scalar(() = $on =~ /\n/g) + 1 : 'none') . " rows)");
	is($eon, $eoff, 'cursor loop, read-ahead on: the same errors');
	cmp_ok($d->{reads}, '>', $nb{o} / 4, "cursor loop: the cursors read ahead ($d->{reads} blocks)");
}

# ---------------------------------------------------------------------------
# 2. file descriptor exhaustion
# ---------------------------------------------------------------------------
my $has_dblink = $node->safe_psql('postgres',
	"SELECT count(*) FROM pg_available_extensions WHERE name = 'dblink'");
if ($has_dblink)
{
	# how many dblink connections a session can open (up to 40) before the
	# external descriptor budget says no
	my $connstr = $node->connstr('postgres');
	$node->safe_psql('postgres', qq{
		CREATE EXTENSION dblink;
		CREATE FUNCTION nconn() RETURNS text LANGUAGE plpgsql AS \$\$
		DECLARE
			k int := 0;
			why text := '';
		BEGIN
			WHILE k < 40 LOOP
				BEGIN
					PERFORM dblink_connect('n' || k, \$c\$$connstr\$c\$);
				EXCEPTION WHEN OTHERS THEN
					GET STACKED DIAGNOSTICS why = PG_EXCEPTION_DETAIL;
					EXIT;
				END;
				k := k + 1;
			END LOOP;
			FOR j IN 0 .. k - 1 LOOP
				PERFORM dblink_disconnect('n' || j);
			END LOOP;
			RETURN k || ' (' || why || ')';
		END \$\$;
	});
}
note $has_dblink
  ? 'dblink is installed'
  : 'dblink is not installed here: only pg_uring_prewarm stands for what needs a descriptor';

# the descriptors of backend $pid: (all, read-only ones of relation files)
sub backend_fds
{
	my ($pid) = @_;
	my $base = $node->data_dir . '/base/';
	my ($all, $ro) = (0, 0);
	opendir(my $dh, "/proc/$pid/fd") or die "could not open /proc/$pid/fd: $!";
	for my $fd (grep { /^\d+$/ } readdir $dh)
	{
		my $target = readlink("/proc/$pid/fd/$fd") // next;
		$all++;
		next unless index($target, $base) == 0;
		open(my $fi, '<', "/proc/$pid/fdinfo/$fd") or next;
		my ($flags) = join('', <$fi>) =~ /^flags:\s+([0-7]+)/m;
		close $fi;
		$ro++ if defined $flags && (oct($flags) & 3) == 0;
	}
	closedir $dh;
	return ($all, $ro);
}

my $merge = "SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off; "
  . "SET enable_indexonlyscan = off;\n";
my $merge_q = "SELECT count(*), md5(string_agg(id::text, ',')) FROM (SELECT u, id FROM p ORDER BY u, id) s";
like($node->safe_psql('postgres', "$merge EXPLAIN (COSTS OFF) $merge_q"),
	qr/Merge Append.*Index Scan using p_${\($nparts - 1)}_u_id_idx/s,
	"fds: the plan is a Merge Append over the $nparts partitions' index scans");
{
	my ($off, $eoff) = cold_session('fds, Merge Append, read-ahead off',
		"SET pg_uring.readahead = off; $merge", $merge_q);
	like($off, qr/^${\($nparts * 2000)}\|[0-9a-f]{32}$/, 'fds, Merge Append, read-ahead off: every row');
	my ($on, $eon, $d) = cold_session('fds, Merge Append, read-ahead on',
		"$merge", $merge_q);
	is("$on$eon", $off, "fds: a Merge Append with $nparts index scans open at once: "
		  . 'the same output, no error');
	cmp_ok($d->{reads}, '>', 0, "fds: the Merge Append read ahead ($d->{reads} blocks)");
}

# 150 cursors stopped in the middle of their scans, in one transaction
{
	my $declare = "BEGIN;\n"
	  . join('', map { "DECLARE c$_ CURSOR FOR SELECT id FROM p_$_;\n" } 0 .. $nparts - 1)
	  . "SELECT string_agg(fetch_sum('c' || j, 100), ',' ORDER BY j) FROM generate_series(0, $nparts - 1) j;";
	my $connstr = $node->connstr('postgres');
	my @needs = (
		[ 'pg_uring_prewarm', q{SELECT try_sql('SELECT pg_uring_prewarm(''ic'')')} ]);
	push @needs, [ 'a dblink connection',
		"SELECT try_sql(\$q\$SELECT dblink_connect('x', \$c\$$connstr\$c\$)\$q\$) "
		  . "|| coalesce(' ' || try_sql(\$q\$SELECT dblink_disconnect('x')\$q\$), '')" ]
	  if $has_dblink;
	my $rest = "SELECT string_agg(fetch_sum('c' || j, 1000000), ',' ORDER BY j) "
	  . "FROM generate_series(0, $nparts - 1) j;\nCOMMIT;";

	my %r;
	for my $mode ('off', 'on')
	{
		$node->restart;
		my $s = pgu_session($node, "fds_$mode");
		if ($has_dblink)
		{
			my ($o, $e) = $s->query('SELECT nconn()', 30);
			$r{$mode}{nconn0} = ($o // '') . ($e // 'timeout');
		}
		my $before = ra();
		my ($o1, $e1) = $s->query("SET pg_uring.readahead = $mode;\n$declare", 60);
		$r{$mode}{first} = ($o1 // '') . ($e1 // 'timeout');
		my $d = ra_delta($before, ra());
		$r{$mode}{reads} = $d->{reads};
		($r{$mode}{fds}, $r{$mode}{rofds}) = backend_fds($s->pid);
		for my $n (@needs)
		{
			my ($o, $e) = $s->query($n->[1], 30);
			$r{$mode}{ $n->[0] } = ($o // '') . ($e // 'timeout');
		}
		my ($o2, $e2) = $s->query($rest, 60);
		$r{$mode}{rest} = ($o2 // '') . ($e2 // 'timeout');
		($r{$mode}{fds_after}, $r{$mode}{rofds_after}) = backend_fds($s->pid);
		if ($has_dblink)
		{
			my ($o, $e) = $s->query('SELECT nconn()', 30);
			$r{$mode}{nconn} = ($o // '') . ($e // 'timeout');
		}
		nothing_left("fds, $nparts cursors, read-ahead $mode");
		# kept for later, but not across a restart: the test's own pipes
		# to a live session are inherited by pg_ctl and the new postmaster,
		# whose descriptor budget they would shrink
		if ($mode eq 'on') { $r{$mode}{session} = $s; }
		else { $s->quit; }
	}
	my ($on, $off) = ($r{on}, $r{off});
	like($off->{first}, qr/^(100:[0-9a-f]{32},){${\($nparts - 1)}}100:[0-9a-f]{32}$/,
		"fds, read-ahead off: $nparts cursors, each fetched 100 rows");
	is($on->{first}, $off->{first}, "fds, read-ahead on: the same first 100 rows of each cursor");
	cmp_ok($on->{reads}, '>', 0, "fds: the cursors read ahead ($on->{reads} blocks)");
	is($off->{rofds}, 0, 'fds, read-ahead off: the backend has no read-only relation file open');
	cmp_ok($on->{rofds}, '>', 0,
		"fds, read-ahead on: with the cursors mid-scan, read-ahead holds relation files open ($on->{rofds})");
	cmp_ok($on->{fds}, '<=', 64,
		"fds: the backend has no more descriptors open than max_files_per_process ($on->{fds}; core $off->{fds})");
	for my $n (@needs)
	{
		is($off->{ $n->[0] }, $n->[0] eq 'pg_uring_prewarm' ? 'ok' : 'ok ok',
			"fds, read-ahead off: $n->[0] in the same transaction works");
		is($on->{ $n->[0] }, $off->{ $n->[0] },
			"fds, read-ahead on: $n->[0] in the same transaction works as with read-ahead off "
			  . '(read-ahead must not take the whole external descriptor budget)');
	}
	like($off->{rest}, qr/^(1900:[0-9a-f]{32},){${\($nparts - 1)}}1900:[0-9a-f]{32}$/,
		'fds, read-ahead off: the rest of every cursor, 1900 rows each');
	is($on->{rest}, $off->{rest}, 'fds, read-ahead on: the same rest of every cursor, no error');
	for my $mode ('off', 'on')
	{
		is($r{$mode}{rofds_after}, 0,
			"fds, read-ahead $mode: after COMMIT no read-only relation file (pg_uring's) is left open "
			  . "($r{$mode}{fds_after} descriptors in all)");
	}
	if ($has_dblink)
	{
		# With read-ahead off this is core alone (and the same prewarm and
		# dblink connection as with it on): Debian's 15.20 kept one external
		# descriptor more after this transaction than before it in 5 of 6
		# runs, where 15.18 (the assert-enabled build, and Debian's until
		# December 2026) gave them all back; why is not known.  Not
		# pg_uring's to assert, so it is noted; read-ahead on must give back
		# all it took, and leave at least what core leaves.
		note "fds, read-ahead off: dblink connections after COMMIT $r{off}{nconn}; before: $r{off}{nconn0}";
		ok($r{on}{nconn0} =~ /^[1-9]\d* / && $r{on}{nconn} eq $r{on}{nconn0},
			"fds, read-ahead on: after COMMIT the session can open as many dblink connections as "
			  . "before the transaction: every external descriptor was given back "
			  . "($r{on}{nconn}; before: $r{on}{nconn0})");
		my ($n_on) = $r{on}{nconn} =~ /^(\d+)/;
		my ($n_off) = $r{off}{nconn} =~ /^(\d+)/;
		ok(defined $n_on && defined $n_off && $n_on >= $n_off,
			"fds: after COMMIT read-ahead on leaves at least as many dblink connections possible as read-ahead off "
			  . '(' . ($n_on // '?') . ' >= ' . ($n_off // '?') . ')');
	}

	# the server works on: a new session reads ahead, the old one still runs
	my $before = ra();
	is($node->safe_psql('postgres', "$plain SELECT count(*), sum(id) FROM o"), '40000|800020000',
		'fds, afterwards: a new session scans o right');
	my $d = ra_delta($before, ra());
	cmp_ok($d->{reads}, '>', 0, "fds, afterwards: ... and reads ahead ($d->{reads} blocks)");
	my ($o, $e) = $r{on}{session}->query("$merge $merge_q", 60);
	like("$o$e", qr/^${\($nparts * 2000)}\|[0-9a-f]{32}$/,
		'fds, afterwards: the session of the cursors runs the Merge Append again');
	$r{on}{session}->quit;
}

# ---------------------------------------------------------------------------
# 3. VACUUM is not starved by read-ahead
# ---------------------------------------------------------------------------
{
	$node->restart;
	$node->safe_psql('postgres', "ALTER SYSTEM SET pg_uring.reaper_delay = '200ms'; SELECT pg_reload_conf()");
	my $vac0 = $node->safe_psql('postgres',
		"SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'vt'");
	my @scans = (
		[ 'seq', $plain, 1, $nvt ],
		[ 'bitmap', $bitmap, 5001, 35000 ],
		[ 'index', $index, 60001, 80000 ]);
	my @scanners;
	for my $k (1 .. 2)
	{
		my $s = pgu_session($node, "vt_scan$k");
		my ($o, $e) = $s->query($hold);
		push @scanners, { s => $s, n => 0, bad => [], next => $k - 1 };
	}
	my $upd = { s => pgu_session($node, 'vt_update'), n => 0, bad => [] };
	my $vac = pgu_session($node, 'vt_vacuum');
	my $mon = pgu_session($node, 'vt_monitor');
	my $before = ra();

	my $scan_sql = sub {
		my ($sc) = @_;
		my ($name, $set, $a, $b) = @{ $scans[ $sc->{next} % @scans ] };
		$sc->{cur} = [ $name, $a, $b ];
		return "$set SELECT count(*), sum(id), bool_and(h = md5(id::text)) FROM vt WHERE id BETWEEN $a AND $b";
	};
	# collect what finished; start the next scan or update unless $stop
	my $service = sub {
		my ($stop) = @_;
		for my $sc (@scanners)
		{
			if ($sc->{pending} && ($stop ? $sc->{s}->wait_done(60) : $sc->{s}->done))
			{
				my ($o, $e) = $sc->{s}->finish(1);
				my ($name, $a, $b) = @{ $sc->{cur} };
				my $want = ($b - $a + 1) . '|' . (($a + $b) * ($b - $a + 1) / 2) . '|t';
				push @{ $sc->{bad} }, "$name: " . ($o // 'timeout') . ' ' . ($e // '') . " (want $want)"
				  unless defined $o && $e eq '' && $o eq $want;
				$sc->{n}++;
				$sc->{next}++;
				$sc->{pending} = 0;
			}
			if (!$sc->{pending} && !$stop)
			{
				$sc->{s}->begin($scan_sql->($sc));
				$sc->{pending} = 1;
			}
		}
		if ($upd->{pending} && ($stop ? $upd->{s}->wait_done(60) : $upd->{s}->done))
		{
			my ($o, $e) = $upd->{s}->finish(1);
			push @{ $upd->{bad} }, ($e // 'timeout') unless defined $o && $e eq '';
			$upd->{n}++;
			$upd->{pending} = 0;
		}
		if (!$upd->{pending} && !$stop)
		{
			my $k = $upd->{n} % 40;
			$upd->{s}->begin("UPDATE vt SET n = n + 1 WHERE id % 40 = $k");
			$upd->{pending} = 1;
		}
	};

	my (@vac_times, @vac_bad);
	my ($max_inflight, $samples, $busy) = (0, 0, 0);
	for my $v (1 .. 6)
	{
		my $sql = $v % 2 ? 'VACUUM (FREEZE, DISABLE_PAGE_SKIPPING) vt' : 'VACUUM vt';
		# let the scans get going (and the updates make dead tuples) first
		my $t = time() + 0.3;
		while (time() < $t) { $service->(); usleep(10_000); }
		my $t0 = time();
		$vac->begin($sql);
		my $done = 0;
		while (time() < $t0 + 30)
		{
			$service->();
			my ($n) = $mon->query(
				q{SELECT count(*) FROM pg_uring_ios WHERE op = 'buffer read' AND state = 'submitted'});
			$samples++;
			$busy++ if defined $n && $n =~ /^\d+$/ && $n > 0;
			$max_inflight = $n if defined $n && $n =~ /^\d+$/ && $n > $max_inflight;
			if ($vac->done) { $done = 1; last; }
			usleep(10_000);
		}
		my $dt = time() - $t0;
		if ($done)
		{
			my ($o, $e) = $vac->finish;
			push @vac_bad, "$sql: $e" unless defined $o && $e eq '';
			push @vac_times, sprintf('%.2f', $dt);
		}
		else
		{
			push @vac_bad, "$sql: still running after 30 s";
			diag $node->safe_psql('postgres',
				q{SELECT pid, wait_event_type, wait_event, state, query FROM pg_stat_activity
				  WHERE application_name LIKE 'vt_%'});
			last;
		}
	}
	is_deeply(\@vac_bad, [], "VACUUM: every VACUUM ended within 30 s, without error (@vac_times s)");
	# the scans and the update still running end normally
	$service->(1);
	my $d = ra_delta($before, ra());
	note "VACUUM phase: scans " . join('+', map { $_->{n} } @scanners) . ", updates $upd->{n}, "
	  . "read ahead $d->{reads} blocks (waited for $d->{readahead_waited}), "
	  . "read-ahead IOs in flight in $busy of $samples samples during the VACUUMs, at most $max_inflight";
	for my $k (0 .. $#scanners)
	{
		cmp_ok($scanners[$k]{n}, '>=', 3, "VACUUM: scanner " . ($k + 1) . " ran $scanners[$k]{n} scans");
		is_deeply($scanners[$k]{bad}, [], "VACUUM: every scan of scanner " . ($k + 1) . ' was right');
	}
	cmp_ok($upd->{n}, '>=', 3, "VACUUM: the updater ran $upd->{n} updates");
	is_deeply($upd->{bad}, [], 'VACUUM: no update failed');
	cmp_ok($d->{reads}, '>', 0, "VACUUM: the scans read ahead ($d->{reads} blocks)");
	# (with pg_uring.io_method = sync an IO is "submitted" only while its
	# pread runs: nothing to assert)
	cmp_ok($max_inflight, '>', 0, 'VACUUM: read-ahead IOs were in flight while VACUUM ran '
		  . "(in $busy of $samples samples, up to $max_inflight)")
	  unless $sync;
	is($node->safe_psql('postgres', "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'vt'") - $vac0,
		6, 'VACUUM: the six VACUUMs of vt are counted');
	$node->safe_psql('postgres', 'ALTER SYSTEM RESET pg_uring.reaper_delay; SELECT pg_reload_conf()');
	nothing_left('VACUUM');
	is($node->safe_psql('postgres', "SELECT count(*) FROM verify_heapam('vt')"), '0',
		'VACUUM: verify_heapam(vt) finds nothing');
	for my $i ('vt_pkey', 'vt_n')
	{
		is($node->safe_psql('postgres', "SELECT bt_index_check('$i', true)"), '',
			"VACUUM: bt_index_check($i, heapallindexed) passes");
	}
	is($node->safe_psql('postgres', "$plain SELECT count(*), sum(id), bool_and(h = md5(id::text)) FROM vt"),
		"$nvt|" . ($nvt * ($nvt + 1) / 2) . '|t', 'VACUUM: vt has every row, right');
	$_->{s}->quit for @scanners, $upd;
	$vac->quit;
	$mon->quit;
}

# ---------------------------------------------------------------------------
# the log
# ---------------------------------------------------------------------------
for my $t (qw(o i ic vt))
{
	is($node->safe_psql('postgres', "SELECT count(*) FROM verify_heapam('$t')"), '0',
		"verify_heapam($t) finds nothing");
}
$node->stop;
my $log = slurp_file($node->logfile);
for my $what ('buffer refcount leak', 'resource was not closed', 'IO slots still held at commit',
	'no unpinned buffers available', 'out of file descriptors')
{
	is(pgu_count_matches($log, qr/\Q$what\E/), 0, "the server log has no '$what'");
}
# but section 0's: fewer rings than the 4 asked for (at every start), no
# ring under the lower ulimit -n (once)
is(pgu_count_matches($log,
		qr/\bWARNING: (?!.*pg_uring: creating [0-9]+ of the 4 shared io_uring instances|.*pg_uring: could not create shared io_uring instances)/),
	0, 'the server log has no WARNING but those of the ring count at start-up');
is(pgu_count_matches($log, qr/pg_uring: could not create shared io_uring instances/), 1,
	'... the one without a ring came once');
# the errors the test makes are caught (f, try_sql, nconn) but those of the
# cursor loop, four with read-ahead off and four with it on
my @errors = grep { /\bERROR: / } split /\n/, $log;
is(join("\n", grep { !/ ra_subxact ERROR:  division by zero$/ } @errors), '',
	'the server log has no ERROR but the failing queries of the cursor loop');
is(scalar(@errors), 8, '... eight of them');
note sprintf('total %.1f s', time() - $t_start);
done_testing();
