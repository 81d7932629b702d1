
# Helpers shared by the write-back TAP tests (test/t/2*.pl).
#
# Loaded like PgUringTest, next to which it is used:
#   use FindBin; use lib $FindBin::RealBin; use PgUringTest; use PgUringWrite;
# It is not a test itself (prove only runs *.pl here).
#
# Provides:
#   wr_node           a node (initialised, not started) with data checksums,
#                     pg_uring preloaded, fsync = on, restart_after_crash = on,
#                     no checkpoint by time and no bgwriter LRU writes (so only
#                     what a test does writes buffers); %conf adds or
#                     overrides
#   wr_linked_conf    the settings under which core writes WAL without
#                     flushing it (tiny wal_buffers, a sleepy WAL writer), as
#                     a list for wr_node
#   wr_stats          every write-back counter of pg_uring_stats (and errors,
#                     cancelled, in_flight) summed over the rings, a hash ref;
#                     asked through a node or a pgu_session
#   wr_delta          the difference of two wr_stats hashes
#   wr_dirty          dirty buffers (any fork) of relations given by name,
#                     with their TOAST table and TOAST index if asked
#   wr_dirty_total    dirty buffers in the whole pool; with a usage count
#                     given, only those with that usage count
#   wr_filenodes      a relation's relfilenode, and those of its TOAST table
#                     and TOAST index
#   wr_digest         count and md5 over a table's rows in a given order
#   wr_amcheck        verify_heapam on tables, bt_index_check on indexes:
#                     one assertion each
#   wr_wait_restart   wait for a crash restart logged after an offset and for
#                     the server to accept connections again
#   wr_wait_up        wait until the server is up and out of recovery, retrying
#                     when psql dies on a broken pipe during start-up
#   wr_log_clean      the server log (from an offset) has no TRAP, no
#                     unexpected PANIC and no failed fsync: one assertion
#   wr_ios_of         pg_uring_ios slots of buffer writes of a relfilenode
#                     (count), by state if given
#   wr_file_size      size in bytes of a relation file (path relative to the
#                     data directory), -1 if it does not exist
#   wr_create_w       pg_buffercache, amcheck, and the WAL-fault tests' table
#                     w (id, v) with 5000 rows and its index w_idx,
#                     checkpointed
#
# The tests need pg_buffercache created for wr_dirty and wr_dirty_total.

package PgUringWrite;

use strict;
use warnings;

use Exporter 'import';
use Test::More;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PgUringTest qw(pgu_psql);

our @EXPORT = qw(
  wr_node wr_linked_conf wr_stats wr_delta wr_dirty wr_dirty_total
  wr_filenodes wr_digest wr_amcheck wr_wait_restart wr_log_clean
  wr_ios_of wr_file_size wr_wait_up wr_create_w wr_create_d
);

my @stats_cols = qw(in_flight errors cancelled wal_flushes buffer_writes
  buffer_write_failures linked_writes drained_writes cancelled_chains
  wal_flush_waits writes_deferred sync_requests local_syncs writer_pages);

# A node with data checksums and pg_uring preloaded, not started.
sub wr_node
{
	my ($name, %conf) = @_;
	my $node = PgUringTest::pgu_track_node(PostgreSQL::Test::Cluster->new($name));
	$node->init(extra => ['--data-checksums']);
	my %all = (
		autovacuum                      => 'off',
		max_connections                 => '30',
		shared_preload_libraries        => 'pg_uring',
		fsync                           => 'on',
		restart_after_crash             => 'on',
		checkpoint_timeout              => '1h',
		max_wal_size                    => '1GB',
		bgwriter_lru_maxpages           => '0',
		max_parallel_workers_per_gather => '0',
		jit                             => 'off',
		log_statement                   => 'none',
		PgUringTest::pgu_io_method_conf(%conf),
		%conf);
	$node->append_conf('postgresql.conf',
		join('', map { "$_ = '$all{$_}'\n" } sort keys %all));
	return $node;
}

# core writes WAL (wal_buffers full) but nobody flushes it for a while
sub wr_linked_conf
{
	return (
		wal_buffers            => '64kB',
		wal_writer_delay       => '10s',
		wal_writer_flush_after => '0');
}

# $src: a node, or a PgUringTest::Session to ask (no new connection)
sub wr_stats
{
	my ($src) = @_;
	my $sql = 'SELECT ' . join(', ', map { "sum($_)" } @stats_cols) . ' FROM '
	  . PgUringTest::pgu_counters();
	my @v = split /\|/,
	  $src->isa('PgUringTest::Session')
	  ? scalar($src->query($sql))
	  : $src->safe_psql('postgres', $sql);
	my %s;
	@s{@stats_cols} = @v;
	return \%s;
}

sub wr_delta
{
	my ($before, $after) = @_;
	return { map { $_ => $after->{$_} - $before->{$_} } keys %$after };
}

# relfilenodes of $rel, and of its TOAST table and TOAST index
sub wr_filenodes
{
	my ($node, $rel) = @_;
	my $out = $node->safe_psql(
		'postgres', qq{
		SELECT pg_relation_filenode(c.oid),
			   coalesce(pg_relation_filenode(nullif(c.reltoastrelid, 0)), 0),
			   coalesce((SELECT pg_relation_filenode(i.indexrelid) FROM pg_index i
						  WHERE i.indrelid = c.reltoastrelid), 0)
		  FROM pg_class c WHERE c.oid = '$rel'::regclass});
	return split /\|/, $out;
}

# dirty buffers of relfilenodes (a list of numbers) in this database
sub _dirty_of_filenodes
{
	my ($node, @fn) = @_;
	@fn = grep { $_ } @fn;
	return 0 unless @fn;
	return $node->safe_psql(
		'postgres', 'SELECT count(*) FROM pg_buffercache
		 WHERE isdirty AND relfilenode IN (' . join(',', @fn) . ')
		   AND reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())');
}

# dirty buffers of the named relations; toast => 1 includes their TOAST
# tables and TOAST indexes
sub wr_dirty
{
	my ($node, $rels, %opt) = @_;
	my @fn;
	for my $r (ref $rels ? @$rels : ($rels))
	{
		my @all = wr_filenodes($node, $r);
		push @fn, $opt{toast} ? @all : $all[0];
	}
	return _dirty_of_filenodes($node, @fn);
}

sub wr_dirty_total
{
	my ($node, $usage) = @_;
	my $where = defined $usage ? " AND usagecount = $usage" : '';
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_buffercache WHERE isdirty$where");
}

# "count:md5" over the rows of $table ordered by $order
sub wr_digest
{
	my ($node, $table, $order, $cols) = @_;
	$cols //= "$table\::text";
	return $node->safe_psql('postgres',
		"SELECT count(*) || ':' || coalesce(md5(string_agg($cols, ',' ORDER BY $order)), '') FROM $table"
	);
}

# verify_heapam finds nothing in each table, bt_index_check (with
# heapallindexed unless quick => 1) passes on each index
sub wr_amcheck
{
	my ($node, $label, $tables, $indexes, %opt) = @_;
	my $all = $opt{quick} ? 'false' : 'true';
	$node->safe_psql('postgres', 'CREATE EXTENSION IF NOT EXISTS amcheck');
	for my $t (@$tables)
	{
		my ($rc, $out, $err) = pgu_psql($node,
			"SELECT count(*) FROM verify_heapam('$t', check_toast => true)");
		is("$rc|$out|$err", '0|0|', "$label: verify_heapam($t) finds nothing");
	}
	for my $i (@$indexes)
	{
		my ($rc, $out, $err) = pgu_psql($node, "SELECT bt_index_check('$i', $all)");
		is("$rc|$err", '0|', "$label: bt_index_check($i, heapallindexed => $all) passes");
	}
	return;
}

# After a crash (something killed or PANICked after log offset $offset): the
# postmaster reinitialises and accepts connections again.  Two assertions.
sub wr_wait_restart
{
	my ($node, $label, $offset) = @_;
	ok( eval {
			$node->wait_for_log(
				qr/all server processes terminated; reinitializing/, $offset);
			1;
		},
		"$label: the server reinitialised after the crash");
	ok(wr_wait_up($node), "$label: the server is up again, recovery done");
	return;
}

# Wait until the server is up and out of recovery (PgUringTest's pgu_wait_up).
sub wr_wait_up
{
	my ($node) = @_;
	return PgUringTest::pgu_wait_up($node);
}

# No assertion failure, no PANIC other than those matching $allowed (a
# regex, or undef for none), no failed fsync, in the log from $offset.
sub wr_log_clean
{
	my ($node, $label, $offset, $allowed) = @_;
	my $log = slurp_file($node->logfile, $offset // 0);
	my @bad;
	for my $line (split /\n/, $log)
	{
		if ($line =~ /TRAP:|could not fsync|could not write block|was terminated by signal 6|PANIC:/)
		{
			next if defined $allowed && $line =~ $allowed;
			push @bad, $line;
		}
	}
	is(join("\n", @bad), '', "$label: the server log shows no TRAP, PANIC or failed write");
	return;
}

# buffer writes in pg_uring_ios on relfilenode $fn (main fork), optionally
# only in state $state
sub wr_ios_of
{
	my ($node, $fn, $state) = @_;
	my $st = defined $state ? " AND state = '$state'" : '';
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_uring_ios WHERE op LIKE 'buffer write%'
		    AND target ~ '^rel [0-9]+/[0-9]+/$fn fork '$st");
}

# d in database $db: $pages pages of 20 rows (192-byte tuples, fillfactor 50,
# so updates stay on their page), frozen (no hint bit left to set) and
# checkpointed; one assertion (its size); returns its relfilenode and file path
sub wr_create_d
{
	my ($node, $db, $pages) = @_;
	my $rows = 20 * $pages;
	$node->safe_psql(
		$db, qq{
		DROP TABLE IF EXISTS d;
		CREATE TABLE d (id int NOT NULL, v text NOT NULL) WITH (fillfactor = 50);
		INSERT INTO d SELECT g, repeat(md5(g::text), 5) FROM generate_series(1, $rows) g;
		VACUUM (FREEZE) d;
		CHECKPOINT;
	});
	Test::More::is($node->safe_psql($db, "SELECT pg_relation_size('d') / 8192"), $pages,
		"d has $pages pages");
	return split /\|/,
	  $node->safe_psql($db, "SELECT pg_relation_filenode('d'), pg_relation_filepath('d')");
}

sub wr_create_w
{
	my ($node) = @_;
	$node->safe_psql(
		'postgres', q{
		CREATE EXTENSION pg_buffercache;
		CREATE EXTENSION amcheck;
		CREATE TABLE w (id int NOT NULL, v text NOT NULL);
		CREATE INDEX w_idx ON w (id);
		INSERT INTO w SELECT g, repeat('c', 100) || g FROM generate_series(1, 5000) g;
		CHECKPOINT;
	});
	return;
}

sub wr_file_size
{
	my ($node, $relpath) = @_;
	my $f = $node->data_dir . '/' . $relpath;
	return -e $f ? (-s $f || 0) : -1;
}

1;
