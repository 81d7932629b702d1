
# A write completed by another process while the checkpointer's request
# queue is full: the segment is fsynced by the owner, through its own file
# descriptor, before the buffer is clean.
#
# The completion of a buffer write runs in whichever process reaps it.  It
# hands the segment's fsync to the checkpointer (RegisterSyncRequest); when
# the queue is full, core's rule is to fsync the segment before the buffer
# counts as written.  A descriptor number means nothing outside the owner,
# so the completing process must not fsync "t->fd": it would be closed
# there (EBADF, PANIC) or another file altogether.
#
# Set-up: a 1 MB pool (a request queue of 128 entries), 160 one-page tables
# (so 160 distinct requests, which compaction cannot shrink), the
# checkpointer stopped with SIGSTOP so nothing drains the queue, and
# pg_uring.test_hold_reap so the flushing session never reaps its own
# writes: the reaper completes them.  For every table: dirty its page,
# pg_uring_flush it.
#
# Asserts: every flush wrote its page and returned; no PANIC or failed fsync
# in the log; local_syncs > 0; each "fsynced ... itself" line (DEBUG1, from
# the flushing session) names the file of a table that session flushed, and
# there are local_syncs of them; no page is left dirty; after SIGCONT, a
# CHECKPOINT and an immediate stop, every table has its updated value.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;
use PgUringWrite;

my $ntables = 160;
my $node = wr_node('local_sync', shared_buffers => '1MB', max_connections => '10');
pgu_start($node);
$node->safe_psql(
	'postgres', qq{
	CREATE EXTENSION pg_buffercache;
	DO \$\$ BEGIN
		FOR i IN 1 .. $ntables LOOP
			EXECUTE format('CREATE TABLE t%s (v int NOT NULL)', i);
			EXECUTE format('INSERT INTO t%s VALUES (0)', i);
		END LOOP;
	END \$\$;
	CHECKPOINT;
});
my %file_of;
for my $line (split /\n/,
	$node->safe_psql('postgres',
		"SELECT relname || ' ' || pg_relation_filepath(oid) FROM pg_class WHERE relname ~ '^t[0-9]+\$'"))
{
	my ($rel, $path) = split / /, $line;
	$file_of{$path} = $rel;
}
is(scalar(keys %file_of), $ntables, "$ntables tables, each with its own file");

my ($ckpt) = pgu_children($node, qr/checkpointer/);
ok($ckpt, "the checkpointer's pid is $ckpt");
my $before = wr_stats($node);
my $offset = -s $node->logfile;
kill 'STOP', $ckpt;

my $s = pgu_session($node, 'flusher');
$s->query('SET pg_uring.test_hold_reap = on; SET log_min_messages = debug1');
my @written;
for my $i (1 .. $ntables)
{
	my ($o, $e) = $s->query("UPDATE t$i SET v = v + $i; SELECT pg_uring_flush('t$i')", 30);
	push @written, $o // "error: $e";
	last unless defined $o;
}
is(join(',', grep { $_ ne '1' } @written), '',
	"each of the $ntables flushes wrote its table's page");
$s->query('RESET log_min_messages');
my $d = wr_delta($before, wr_stats($s));
note "sync_requests $d->{sync_requests}, local_syncs $d->{local_syncs}";
cmp_ok($d->{local_syncs}, '>', 0, 'the request queue was full: some segments were synced locally');
cmp_ok($d->{buffer_writes}, '>=', $ntables, "buffer_writes covers the $ntables pages");

my $log = slurp_file($node->logfile, $offset);
my @synced = $log =~ /flusher DEBUG:\s+pg_uring: fsynced "([^"]+)" itself: the checkpointer's request queue is full/g;
is(scalar(@synced), $d->{local_syncs}, 'one log line for each local sync, from the flushing session');
is(join(',', grep { !exists $file_of{$_} } @synced), '',
	'every file synced locally is the file of a table that was flushed');
is($s->query(
		"SELECT count(*) FROM pg_buffercache b JOIN pg_class c ON b.relfilenode = c.relfilenode
		  WHERE c.relname ~ '^t[0-9]+\$' AND b.isdirty"),
	0, 'no page of the tables is left dirty');
wr_log_clean($node, 'local syncs', $offset);

kill 'CONT', $ckpt;
$s->quit;
$node->safe_psql('postgres', 'CHECKPOINT');
$node->stop('immediate');
$node->start;
my $sum = $node->safe_psql('postgres',
	'SELECT ' . join(' + ', map { "(SELECT v FROM t$_)" } 1 .. $ntables));
is($sum, $ntables * ($ntables + 1) / 2, 'after an immediate stop every table has its updated value');
wr_log_clean($node, 'after the restart', $offset);

$node->stop;
done_testing();
