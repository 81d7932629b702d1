
# Helpers shared by the pg_uring_prewarm TAP tests (test/t/1*.pl).
#
# Loaded like PgUringTest, next to which it is used:
#   use FindBin; use lib $FindBin::RealBin; use PgUringPrewarm;
# It is not a test itself (prove only runs *.pl here).
#
# Provides:
#   pw_node           a node (initialised, not started) with data checksums,
#                     pg_uring preloaded and the prewarm tests' settings
#                     (shared_buffers = 128MB, ...); %conf adds or overrides
#   pw_stats          every counter of pg_uring_stats summed over the rings,
#                     as a hash ref
#   pw_cached_blocks  the main-fork blocks of a relation valid in
#                     shared_buffers (pg_buffercache), as a sorted list
#   pw_ncached        how many there are
#   pw_nblocks        the size of a relation in blocks
#   pw_max_block      the highest block of a backend's buffer reads in
#                     pg_uring_ios, -1 if none
#   pw_wait_event     a backend's 'wait_event_type:wait_event'
#
# The tests need pg_buffercache created for pw_cached_blocks and pw_ncached.

package PgUringPrewarm;

use strict;
use warnings;

use Exporter 'import';

use PostgreSQL::Test::Cluster;
use PgUringTest ();

our @EXPORT = qw(
  pw_node pw_stats pw_cached_blocks pw_ncached pw_nblocks
  pw_max_block pw_wait_event pw_amcheck pw_create_t pw_readahead
);

# the counters pw_stats sums (PgUringTest::pgu_counters names)
my @stats_cols = qw(in_flight submitted completed reaped_by_issuer
  reaped_by_other reaped_by_reaper errors cancelled buffer_reads
  buffer_blocks buffer_read_failures zero_page_fills buffer_ios_helped);

# A node with data checksums and pg_uring preloaded, not started.  %conf are
# settings added to or replacing the defaults below (shared_buffers =>
# '16MB', restart_after_crash => 'on', 'pg_uring.rings' => '1', ...).
sub pw_node
{
	my ($name, %conf) = @_;
	my $node = PgUringTest::pgu_track_node(PostgreSQL::Test::Cluster->new($name));
	$node->init(extra => ['--data-checksums']);
	my %all = (
		autovacuum                      => 'off',
		max_connections                 => '30',
		shared_preload_libraries        => 'pg_uring',
		shared_buffers                  => '128MB',
		max_parallel_workers_per_gather => '0',
		jit                             => 'off',
		PgUringTest::pgu_io_method_conf(%conf),
		%conf);
	$node->append_conf('postgresql.conf',
		join('', map { "$_ = '$all{$_}'\n" } sort keys %all));
	return $node;
}

# pg_uring's counters summed over the rings: { 1.0 column name => sum }
sub pw_stats
{
	my ($node) = @_;
	my @v = split /\|/,
	  $node->safe_psql('postgres',
		'SELECT ' . join(', ', map { "sum($_)" } @stats_cols) . ' FROM '
		  . PgUringTest::pgu_counters());
	my %s;
	@s{@stats_cols} = @v;
	return \%s;
}

# the read-ahead row of pg_uring_stat_io, summed over the rings:
# { ios, reads, failures, readahead_used, readahead_wasted, readahead_waited }
sub pw_readahead
{
	my ($node) = @_;
	my @c = qw(ios reads failures readahead_used readahead_wasted readahead_waited);
	my @v = split /\|/, $node->safe_psql('postgres',
		'SELECT ' . join(', ', map { "coalesce(sum($_), 0)" } @c)
		  . " FROM pg_uring_stat_io WHERE io_kind = 'read-ahead'");
	my %h;
	@h{@c} = @v;
	return \%h;
}

# blocks of a relation (main fork) valid in shared_buffers, as a sorted list
sub pw_cached_blocks
{
	my ($node, $rel) = @_;
	my $out = $node->safe_psql(
		'postgres', qq{
		SELECT relblocknumber FROM pg_buffercache
		 WHERE relfilenode = pg_relation_filenode('$rel')
		   AND reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
		   AND relforknumber = 0
		 ORDER BY 1});
	return $out eq '' ? () : split /\n/, $out;
}

# the number of those blocks
sub pw_ncached
{
	my ($node, $rel) = @_;
	return $node->safe_psql(
		'postgres', qq{
		SELECT count(*) FROM pg_buffercache
		 WHERE relfilenode = pg_relation_filenode('$rel')
		   AND reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
		   AND relforknumber = 0});
}

# size of a relation (main fork) in blocks
sub pw_nblocks
{
	my ($node, $rel) = @_;
	return $node->safe_psql('postgres',
		"SELECT pg_relation_size('$rel') / current_setting('block_size')::int");
}

# highest block of the buffer reads of backend $pid in pg_uring_ios, -1 if
# none
sub pw_max_block
{
	my ($node, $pid) = @_;
	return $node->safe_psql(
		'postgres', qq{
		SELECT coalesce(max(substring(target from 'blocks \\d+-(\\d+)\$')::int), -1)
		  FROM pg_uring_ios WHERE owner_pid = $pid AND op = 'buffer read'});
}

# what backend $pid waits on: 'wait_event_type:wait_event' (':' when it does
# not wait, '' when there is no such backend)
sub pw_wait_event
{
	my ($node, $pid) = @_;
	return $node->safe_psql('postgres', PgUringTest::pgu_wait_event_sql($pid));
}

# amcheck on table t, and on its index t_idx unless $with_index is false:
# verify_heapam finds nothing, bt_index_check (heapallindexed) passes.
# Two assertions (one without the index).
sub pw_amcheck
{
	my ($node, $with_index) = @_;
	$with_index //= 1;
	$node->safe_psql('postgres', 'CREATE EXTENSION IF NOT EXISTS amcheck');
	Test::More::is($node->safe_psql('postgres', "SELECT count(*) FROM verify_heapam('t')"),
		0, 'verify_heapam(t) finds nothing');
	Test::More::is($node->safe_psql('postgres', "SELECT bt_index_check('t_idx', true)"),
		'', 'bt_index_check(t_idx, heapallindexed) passes')
	  if $with_index;
	return;
}

# The tests' table: pg_buffercache, then t (id, h = md5(id) twice) with $rows
# rows, optionally its unique index t_idx (index => 1), frozen (and analyzed
# with analyze => 1), checkpointed.  Returns t's number of blocks.
sub pw_create_t
{
	my ($node, $rows, %opt) = @_;
	my $index = $opt{index} ? "CREATE UNIQUE INDEX t_idx ON t (id);\n" : '';
	my $vacuum = $opt{analyze} ? 'FREEZE, ANALYZE' : 'FREEZE';
	$node->safe_psql(
		'postgres', qq{
		CREATE EXTENSION pg_buffercache;
		CREATE TABLE t (id int NOT NULL, h text NOT NULL);
		INSERT INTO t SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, $rows) g;
		$index
		VACUUM ($vacuum) t;
		CHECKPOINT;
	});
	return pw_nblocks($node, 't');
}

1;
