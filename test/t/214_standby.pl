
# pg_uring during recovery, on a streaming hot standby: core must do the
# writing there (it maintains minRecoveryPoint), and WAL is not pg_uring's
# to flush.
#
# A primary with pg_uring; a standby from its base backup, with the writer
# switched on.  After the primary updated t and the standby replayed it:
# - on the standby the pg_uring writer does not run (it starts only after
#   recovery);
# - pg_uring_wal_flush() is refused (55000, "recovery is in progress");
# - pg_uring_flush('t', sync => true) is refused (55000) with a hint;
# - pg_uring_flush('t') writes t's dirty buffers through core: it returns
#   their number, none is left dirty, and no buffer write goes through the
#   rings (buffer_writes stays 0);
# - after promotion, pg_uring_flush writes through the rings again and the
#   writer starts.
# No TRAP or PANIC on either node.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;
use PgUringWrite;

my $primary = wr_node('primary', max_wal_senders => '4', wal_level => 'replica', hot_standby => 'on');
pgu_start($primary);
$primary->safe_psql(
	'postgres', q{
	CREATE EXTENSION pg_buffercache;
	CREATE TABLE t (id int NOT NULL, v int NOT NULL);
	INSERT INTO t SELECT g, 0 FROM generate_series(1, 20000) g;
	CHECKPOINT;
});
$primary->backup('b');
my $standby = pgu_track_node(PostgreSQL::Test::Cluster->new('standby'));
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf', "pg_uring.writer = on\npg_uring.writer_delay = 10ms\n");
$standby->start;
$primary->safe_psql('postgres', 'UPDATE t SET v = v + 1');
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');
is($standby->safe_psql('postgres', 'SELECT sum(v) FROM t'), 20000, 'it replayed the update');

my $dirty_sql = "SELECT count(*) FROM pg_buffercache WHERE isdirty AND relfilenode = pg_relation_filenode('t')
	AND reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())";
my $dirty = $standby->safe_psql('postgres', $dirty_sql);
cmp_ok($dirty, '>', 0, "the standby has $dirty dirty buffers of t from replay");
is(scalar(pgu_children($standby, qr/pg_uring writer/)), 0, 'no pg_uring writer runs during recovery');

my ($rc, $o, $e) = pgu_psql($standby, 'SELECT pg_uring_wal_flush()');
like($e, qr/ERROR:\s+55000: recovery is in progress/, 'pg_uring_wal_flush is refused during recovery (55000)');
($rc, $o, $e) = pgu_psql($standby, "SELECT pg_uring_flush('t', sync => true)");
like($e, qr/ERROR:\s+55000: recovery is in progress/, 'pg_uring_flush with sync is refused during recovery (55000)');
like($e, qr/HINT:\s+During recovery buffers are written through core/, '... with a hint');

$standby->safe_psql('postgres', 'SELECT pg_uring_reset_stats()');
is($standby->safe_psql('postgres', "SELECT pg_uring_flush('t')"), $dirty,
	'pg_uring_flush on the standby wrote every dirty buffer of t');
is($standby->safe_psql('postgres', $dirty_sql), 0, 'none is left dirty');
is($standby->safe_psql('postgres', q{SELECT sum(writes) FROM pg_uring_stat_io WHERE io_kind = 'write-back'}), 0,
	'they were written through core, not through the rings');

# promotion: out of recovery, pg_uring writes again
$standby->promote;
ok(wr_wait_up($standby), 'the standby was promoted');
ok(pgu_poll(sub { pgu_children($standby, qr/pg_uring writer/) == 1 }), 'the writer starts after recovery');
$standby->safe_psql('postgres', 'UPDATE t SET v = v + 1');
$standby->safe_psql('postgres', 'SELECT pg_uring_reset_stats()');
cmp_ok($standby->safe_psql('postgres', "SELECT pg_uring_flush('t', sync => true)"), '>', 0,
	'after promotion pg_uring_flush with sync works');
is($standby->safe_psql('postgres', $dirty_sql), 0, 'and leaves t clean');
cmp_ok($standby->safe_psql('postgres', 'SELECT sum(buffer_writes) + sum(writer_pages) FROM ' . pgu_counters()),
	'>', 0, 'through the rings');
is($standby->safe_psql('postgres', 'SELECT sum(v) FROM t'), 40000, 't holds both updates');

$standby->stop;
$primary->stop;
done_testing();
