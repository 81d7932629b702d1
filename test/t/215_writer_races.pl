
# The pg_uring writer against DDL, against SIGKILL, and its back-off.
#
# The writer writes dirty, unpinned buffers at usage count 0.  To hand it a
# table's dirty pages and nothing else, each case starts from an empty pool
# (a restart), dirties the pages of d once (usage count 1), then reads just
# more of the big table b than there are free buffers (pg_prewarm, no ring):
# the one lap of the clock sweep that takes brings every usage count down by
# one, so d's dirty pages are at 0 and b's pages are clean (205 explains the
# arithmetic).  All observing goes through one session opened before: a new
# connection would evict buffers itself.
#
# pg_uring.test_pause = 'write_staged' (in postgresql.conf, so the writer
# has it) holds the writer's staged writes (pinned, BM_IO_IN_PROGRESS)
# before they are submitted, while the file pg_uring.pause exists: a
# barrier, not a sleep.
#
# a-d. DROP TABLE, TRUNCATE, VACUUM truncating the heap, DROP DATABASE,
#    each started while the writer holds staged writes of the relation
#    (pg_uring_ios: owner = the writer, state staged): the DDL waits on the
#    buffer IO (IPC:BufferIO) until the writes are done, then succeeds; no
#    write reaches a file that is gone or a block beyond a new end (the old
#    file is empty, VACUUM's file is exactly as long as its rows need); the
#    writer is the same process afterwards (no crash), no buffer of the old
#    relfilenode, no IO slot in use but the writer's, a CHECKPOINT
#    completes and leaves nothing dirty.
# e. SIGKILL of the writer while its writes are submitted and not reaped
#    (pg_uring.test_pause = 'write_submitted' holds the writer right after
#    it submitted them; the reaper is SIGSTOPped so nobody else reaps them
#    either, and continued right after the kill; with pg_uring.io_method =
#    sync the writes are done by then, their slots completed, not yet
#    reclaimed): the postmaster
#    reinitialises, a new writer starts, committed data is intact (md5 of
#    the rows against their formula), amcheck finds nothing, no IO slot in
#    use but the new writer's.
# f. Back-off, from the writer's DEBUG2 line per round (what it saw, how long
#    it sleeps next) and the lines' timestamps: with nothing dirty it sleeps
#    10 x pg_uring.writer_delay (200 ms) between rounds; a round that sees a
#    dirty buffer goes back to 200 ms; after a CHECKPOINT it sleeps 200 ms
#    three more times, and from the fourth idle round on 2 s.
# Throughout: no TRAP or PANIC in the log (the END block), and the writer
# logged no error.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::Local qw(timegm);
use PgUringTest;
use PgUringWrite;

my $node = wr_node(
	'writer_races',
	shared_buffers              => '16MB',
	'pg_uring.rings'            => '1',
	'pg_uring.writer'           => 'on',
	'pg_uring.writer_delay'     => '10ms',
	'pg_uring.writer_max_pages' => '512',
	'pg_uring.test_pause'       => 'write_staged',
	log_line_prefix             => '%m [%p] %b ');
pgu_start($node);
my $writer_re = qr/pg_uring writer/;

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION pg_buffercache;
	CREATE EXTENSION pg_prewarm;
	CREATE EXTENSION amcheck;
	CREATE TABLE b (id int, v text);
	INSERT INTO b SELECT g, repeat('b', 200) FROM generate_series(1, 90000) g;
	VACUUM (FREEZE) b;
});
cmp_ok($node->safe_psql('postgres', "SELECT pg_relation_size('b') / 8192"), '>', 2048,
	'b is bigger than the pool');

sub writer_pid
{
	my @w = pgu_children($node, $writer_re);
	return @w == 1 ? $w[0] : undef;
}

# SQL: the number of blocks of relfilenode $fn's main fork that buffer writes
# in pg_uring_ios (matching $where) cover (a write names its block range)
sub blocks_sql
{
	my ($where, $fn) = @_;
	return "SELECT coalesce(sum(substring(target from ' blocks [0-9]+-([0-9]+)')::int
	                 - substring(target from ' blocks ([0-9]+)-')::int + 1), 0)
	          FROM pg_uring_ios WHERE op LIKE 'buffer write%' AND $where
	           AND target ~ '^rel [0-9]+/[0-9]+/$fn fork main '";
}

# Restart (an empty pool), run $dirty_sql in $db, then one clock-sweep lap
# with the pause file in place: the writer stages d's dirty pages and
# pauses.  Returns the observing session (open, in postgres) and the DDL
# session (open, in postgres), or dies.
my $offset = 0;

sub hand_to_writer
{
	my ($label, $db, $fn, $dirty_sql, $want_dirty) = @_;
	$node->restart;
	ok(pgu_poll(sub { defined writer_pid() }), "$label: the writer runs");
	my $obs = pgu_session($node, 'observer');
	my $ddl = pgu_session($node, 'ddl');
	my $free_sql = 'SELECT count(*) FROM pg_buffercache WHERE relfilenode IS NULL';
	my $dirty_fn_sql = "SELECT count(*) FROM pg_buffercache WHERE isdirty AND relfilenode = $fn AND relforknumber = 0";
	my $staged_sql = blocks_sql("state = 'staged' AND owner_pid = %d", $fn);
	# warm the sessions' caches with what they will run
	$obs->query($_) for $free_sql, $dirty_fn_sql, sprintf($staged_sql, 0),
	  "SELECT pg_prewarm('b', 'buffer', 'main', 0, 0)",
	  "SELECT coalesce(wait_event_type, '') FROM pg_stat_activity WHERE pid = 0";
	$ddl->query('SELECT 1');

	$node->safe_psql($db, $dirty_sql);
	my $dirty = $obs->query($dirty_fn_sql);
	is($dirty, $want_dirty, "$label: $want_dirty dirty buffers of d");

	pgu_pause_set($node);
	$offset = -s $node->logfile;
	my $free = $obs->query($free_sql);
	$obs->query("SELECT pg_prewarm('b', 'buffer', 'main', 0, " . ($free + 5) . ')');
	my $w = writer_pid();
	# The writer pauses (write_staged) before it submits, and it submits a
	# run of adjacent pages once the run is full (16 pages, PGU_MAX_COMBINE)
	# or broken: whether d's other dirty pages are staged by then depends on
	# where the pool put their buffers (what else the restart loaded before
	# them), so only the first full run is sure to be staged.
	my $sure = $want_dirty < 16 ? $want_dirty : 16;
	my $staged = 0;
	ok(pgu_poll(sub { ($staged = $obs->query(sprintf($staged_sql, $w))) >= $sure }),
		"$label: the writer (pid $w) holds staged writes of $staged of the $want_dirty dirty pages of d (at least $sure)");
	return ($obs, $ddl, $w);
}

# Start $ddl_sql while the writer's writes are staged, check it waits on the
# buffer IO, release the writer, check both ended well.
sub ddl_against_writer
{
	my ($label, $obs, $ddl, $w, $fn, $ddl_sql) = @_;
	$ddl->begin($ddl_sql);
	my $ev_sql = pgu_wait_event_sql($ddl->pid);
	ok(pgu_poll(sub { $obs->query($ev_sql) eq 'IPC:BufferIO' || $ddl->done }),
		"$label: the DDL started");
	my $ev = $obs->query($ev_sql);
	my $held = $obs->query("SELECT count(*) FROM pg_uring_ios WHERE owner_pid = $w AND state = 'staged'
		AND target ~ '^rel [0-9]+/[0-9]+/$fn fork main '");
	ok(!$ddl->done, "$label: the DDL has not finished while the writer holds the writes");
	is($ev, 'IPC:BufferIO', "$label: the DDL waits on the buffer IO");
	cmp_ok($held, '>', 0, "$label: with $held writes of d still staged by the writer");

	pgu_pause_release($node);
	my ($out, $err) = $ddl->finish;
	is($err, '', "$label: the DDL succeeded");
	ok(pgu_poll(sub { $obs->query("SELECT count(*) FROM pg_uring_ios WHERE target ~ '^rel [0-9]+/[0-9]+/$fn fork '") == 0 }),
		"$label: no write of d left in pg_uring_ios");
	is(writer_pid(), $w, "$label: the same writer process runs (no crash)");
	return;
}

sub after_checks
{
	my ($label, $obs, @gone) = @_;
	for my $fn (@gone)
	{
		is($obs->query("SELECT count(*) FROM pg_buffercache WHERE relfilenode = $fn"),
			0, "$label: no buffer of the old relfilenode $fn");
	}
	my ($rc, $out, $err) = pgu_psql($node, 'CHECKPOINT');
	is("$rc|$err", '0|', "$label: a CHECKPOINT completes");
	my $w = writer_pid() // 0;
	is($obs->query("SELECT count(*) FROM pg_uring_ios WHERE owner_pid <> $w"), 0,
		"$label: no IO slot in use but the running writer's");
	is($obs->query('SELECT count(*) FROM pg_buffercache WHERE isdirty'), 0,
		"$label: nothing dirty after the checkpoint");
	my $log = slurp_file($node->logfile, $offset);
	my @errs = grep { /pg_uring writer\S* (?:ERROR|FATAL|WARNING)/ || /could not (?:write|fsync)/ }
	  split /\n/, $log;
	is(join("\n", @errs), '', "$label: the writer logged no error, no write failed");
	return;
}

# ---------------------------------------------------------------------------
# a. DROP TABLE
# ---------------------------------------------------------------------------
{
	my ($fn, $path) = wr_create_d($node, 'postgres', 40);
	my ($obs, $ddl, $w) = hand_to_writer('DROP', 'postgres', $fn, 'UPDATE d SET v = upper(v)', 40);
	ddl_against_writer('DROP', $obs, $ddl, $w, $fn, 'DROP TABLE d');
	my $size = wr_file_size($node, $path);
	ok($size <= 0, "DROP: the old file $path is empty or gone (size $size)");
	after_checks('DROP', $obs, $fn);
	is(wr_file_size($node, $path), -1, 'DROP: the old file is gone after the checkpoint');
	$obs->quit;
	$ddl->quit;
}

# ---------------------------------------------------------------------------
# b. TRUNCATE
# ---------------------------------------------------------------------------
{
	my ($fn, $path) = wr_create_d($node, 'postgres', 40);
	my ($obs, $ddl, $w) = hand_to_writer('TRUNCATE', 'postgres', $fn, 'UPDATE d SET v = upper(v)', 40);
	ddl_against_writer('TRUNCATE', $obs, $ddl, $w, $fn, 'TRUNCATE d');
	my $size = wr_file_size($node, $path);
	ok($size <= 0, "TRUNCATE: the old file $path is empty or gone (size $size)");
	is($obs->query('SELECT count(*) FROM d'), 0, 'TRUNCATE: d is empty');
	after_checks('TRUNCATE', $obs, $fn);
	is(wr_file_size($node, $path), -1, 'TRUNCATE: the old file is gone after the checkpoint');
	$obs->quit;
	$ddl->quit;
}

# ---------------------------------------------------------------------------
# c. VACUUM truncating the heap
# ---------------------------------------------------------------------------
{
	my ($fn, $path) = wr_create_d($node, 'postgres', 40);
	# rows on pages 0..19 stay; 20..39 are emptied by a VACUUM that does not
	# truncate (after the restart, so the emptied pages are dirty at usage
	# count 1: VACUUM's ring strategy does not raise it); the writer writes
	# them while the second VACUUM cuts them off
	my ($obs, $ddl, $w) = hand_to_writer('VACUUM', 'postgres', $fn,
		'DELETE FROM d WHERE id > 400; VACUUM (TRUNCATE false) d', 20);
	my $expected = $obs->query("SELECT md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM d");
	ddl_against_writer('VACUUM', $obs, $ddl, $w, $fn, 'VACUUM d');
	is($obs->query("SELECT pg_relation_size('d') / 8192"), 20, 'VACUUM: the heap was truncated to 20 pages');
	is(wr_file_size($node, $path), 8192 * 20,
		'VACUUM: the file on disk is exactly that long (no write beyond the new end)');
	is($obs->query("SELECT count(*) FROM pg_buffercache WHERE relfilenode = $fn AND relforknumber = 0 AND relblocknumber >= 20"),
		0, 'VACUUM: no buffer beyond the new end');
	is($obs->query("SELECT md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM d"), $expected,
		'VACUUM: the rows left are intact');
	after_checks('VACUUM', $obs);
	$obs->quit;
	$ddl->quit;
	$node->restart;
	is(wr_file_size($node, $path), 8192 * 20, 'VACUUM: still that long after a restart');
	wr_amcheck($node, 'VACUUM', ['d'], []);
}

# ---------------------------------------------------------------------------
# d. DROP DATABASE
# ---------------------------------------------------------------------------
{
	$node->safe_psql('postgres', 'CREATE DATABASE db2');
	my ($fn) = wr_create_d($node, 'db2', 20);
	my $dboid = $node->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = 'db2'");
	my ($obs, $ddl, $w) = hand_to_writer('DROP DATABASE', 'db2', $fn, 'UPDATE d SET v = upper(v)', 20);
	ddl_against_writer('DROP DATABASE', $obs, $ddl, $w, $fn, 'DROP DATABASE db2');
	ok(!-e $node->data_dir . "/base/$dboid", "DROP DATABASE: base/$dboid is gone");
	is($obs->query("SELECT count(*) FROM pg_buffercache WHERE reldatabase = $dboid"),
		0, 'DROP DATABASE: no buffer of the database left');
	after_checks('DROP DATABASE', $obs);
	$obs->quit;
	$ddl->quit;
}

# ---------------------------------------------------------------------------
# e. SIGKILL with the writer's writes submitted and not reaped
# ---------------------------------------------------------------------------
{
	my ($fn, $path) = wr_create_d($node, 'postgres', 40);
	$node->append_conf('postgresql.conf', qq{
pg_uring.test_pause = 'write_submitted'
});
	$node->restart;
	ok(pgu_poll(sub { defined writer_pid() }), 'SIGKILL: the writer runs');
	my $w = writer_pid();
	my ($reaper) = pgu_children($node, qr/pg_uring reaper/);
	ok(defined $reaper, 'SIGKILL: found the reaper');
	my $obs = pgu_session($node, 'observer');
	my $free_sql = 'SELECT count(*) FROM pg_buffercache WHERE relfilenode IS NULL';
	# (with pg_uring.io_method = sync a write is done inside its submission:
	# the writer then holds them completed, not yet reclaimed)
	my $state = pgu_io_method() eq 'sync' ? 'completed' : 'submitted';
	my $sub_sql = blocks_sql("state = '$state' AND owner_pid = $w", $fn);
	$obs->query($_) for $free_sql, $sub_sql, "SELECT pg_prewarm('b', 'buffer', 'main', 0, 0)";
	$node->safe_psql('postgres', 'UPDATE d SET v = upper(v) WHERE id % 2 = 0');
	my $expected = $node->safe_psql('postgres',
		"SELECT md5(string_agg(id || ':' || CASE WHEN id % 2 = 0 THEN upper(repeat(md5(id::text), 5)) ELSE repeat(md5(id::text), 5) END, ',' ORDER BY id)) FROM generate_series(1, 800) id"
	);
	# the reaper stopped: nobody but the (paused) writer would reap its writes
	is(kill('STOP', $reaper), 1, 'SIGKILL: the reaper is stopped (SIGSTOP)');
	pgu_pause_set($node);
	my $free = $obs->query($free_sql);
	$obs->query("SELECT pg_prewarm('b', 'buffer', 'main', 0, " . ($free + 5) . ')');
	ok(pgu_poll(sub { $obs->query($sub_sql) >= 40 }),
		"SIGKILL: the writer has writes of all 40 pages of d $state, not reaped");
	$obs->quit;
	my $off = -s $node->logfile;
	pgu_log_allow(qr/background worker "pg_uring writer" \(PID $w\) was terminated by signal 9/);
	is(kill('KILL', $w), 1, 'SIGKILL: sent to the writer');
	kill('CONT', $reaper);
	pgu_pause_release($node);
	wr_wait_restart($node, 'SIGKILL', $off);
	ok(pgu_poll(sub { my $x = writer_pid(); defined $x && $x != $w }),
		'SIGKILL: a new writer runs');
	is($node->safe_psql('postgres', "SELECT md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM d"),
		$expected, 'SIGKILL: d reads back what was committed');
	wr_amcheck($node, 'SIGKILL', ['d'], []);
	my $nw = writer_pid() // 0;
	is($node->safe_psql('postgres', "SELECT count(*) FROM pg_uring_ios WHERE owner_pid <> $nw"), 0,
		'SIGKILL: no IO slot in use but the new writer\'s');
	my ($rc, $out, $err) = pgu_psql($node, 'CHECKPOINT');
	is("$rc|$err", '0|', 'SIGKILL: a CHECKPOINT completes');
	$node->append_conf('postgresql.conf', qq{
pg_uring.test_pause = ''
});
	$node->restart;
	is($node->safe_psql('postgres', "SELECT md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM d"),
		$expected, 'SIGKILL: and after a clean restart');
}

# ---------------------------------------------------------------------------
# f. back-off
# ---------------------------------------------------------------------------
{
	# the writer's rounds, from $from in the log: [ epoch seconds, dirty, next ms ]
	my $rounds = sub {
		my ($from, $pid) = @_;
		my @r;
		for my $l (split /\n/, slurp_file($node->logfile, $from))
		{
			next unless $l =~ /^(\d+)-(\d+)-(\d+) (\d+):(\d+):(\d+)\.(\d+) UTC \[$pid\] .*pg_uring writer: round saw (\d+) dirty buffers and wrote \d+, next round in (\d+) ms/;
			push @r, [ timegm($6, $5, $4, $3, $2 - 1, $1) + $7 / 1000, $8, $9 ];
		}
		return @r;
	};
	$node->append_conf('postgresql.conf', qq{
pg_uring.writer_delay = '200ms'
log_timezone = 'UTC'
});
	$node->restart;
	ok(pgu_poll(sub { defined writer_pid() }), 'back-off: the writer runs');
	my $w = writer_pid();
	$node->safe_psql('postgres', "ALTER SYSTEM SET log_min_messages = 'debug2'; SELECT pg_reload_conf()");
	$node->safe_psql('postgres', 'CHECKPOINT');
	my $gaps = sub { my @r = @_; map { sprintf('%.2f', $r[$_][0] - $r[$_ - 1][0]) } 1 .. $#r };

	# 1. nothing dirty: rounds 10 x 200 ms apart
	my $from = -s $node->logfile;
	ok(pgu_poll(sub { my @r = $rounds->($from, $w); (grep { $_->[2] == 2000 } @r) >= 3 }),
		'back-off: the idle writer logged three rounds at the long sleep');
	my @r = grep { $_->[2] == 2000 && $_->[1] == 0 } $rounds->($from, $w);
	my @g = $gaps->(@r);
	ok(@g >= 2 && !grep({ $_ < 1.9 } @g),
		"back-off: with nothing dirty the writer sleeps 10 x 200 ms between rounds (gaps: @g s)");

	# 2. a dirty buffer (c's, in use, so the writer does not write it): 200 ms
	my $from2 = -s $node->logfile;
	$node->safe_psql('postgres', 'CREATE TABLE c (id int); INSERT INTO c VALUES (1)');
	ok(pgu_poll(sub { my @x = grep { $_->[1] > 0 } $rounds->($from2, $w); @x >= 5 }),
		'back-off: the writer logged five rounds that saw the dirty buffers');
	my @busy = grep { $_->[1] > 0 } $rounds->($from2, $w);
	is(join(' ', map { $_->[2] } @busy), join(' ', (200) x @busy),
		'back-off: each round that saw dirty buffers sleeps 200 ms next');
	@g = $gaps->(@busy);
	ok(!grep({ $_ > 1.0 } @g), "back-off: and they are about 200 ms apart (gaps: @g s)");

	# 3. clean again: 3 rounds more at 200 ms, then the long sleep
	my $from3 = -s $node->logfile;
	$node->safe_psql('postgres', 'CHECKPOINT');
	ok(pgu_poll(sub { my @x = grep { $_->[1] == 0 } $rounds->($from3, $w); @x >= 6 }),
		'back-off: the writer logged six idle rounds after the checkpoint');
	my @idle = grep { $_->[1] == 0 } $rounds->($from3, $w);
	is(join(' ', map { $_->[2] } @idle[0 .. 5]), '200 200 200 2000 2000 2000',
		'back-off: the fourth idle round in a row starts the long sleep');
	@g = $gaps->(@idle[3 .. 5]);
	ok(!grep({ $_ < 1.9 } @g), "back-off: and it sleeps that long (gaps: @g s)");
	$node->safe_psql('postgres', "ALTER SYSTEM RESET log_min_messages; SELECT pg_reload_conf()");
}

$node->stop;
done_testing();
