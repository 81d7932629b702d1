
# Helpers shared by the pg_uring TAP tests (test/t/*.pl).
#
# Loaded by the tests with "use FindBin; use lib $FindBin::RealBin;".  It is
# not a test itself (prove only runs *.pl here).
#
# Provides:
#   pgu_node          a node with pg_uring preloaded and settings applied
#   pgu_start         start it, CREATE EXTENSION, and check the rings' mode
#   pgu_session       a psql session in the background (PgUringTest::Session)
#   pgu_stats         pg_uring_stats summed over all rings, as a hash
#   pgu_uring_fds     io_uring (and eventfd) fds held by the postmaster, or
#                     by another process
#   pgu_postmaster_pid, pgu_children
#                     the postmaster's pid; pids of its children by title
#   pgu_data_file     a frozen, checkpointed table file to read
#   pgu_sql_helpers   SQL functions for the tests (pgu_repeat_batch)
#   pgu_poll          poll a Perl condition
#   pgu_count_matches count regex matches (e.g. in a server log)
#   pgu_psql          psql with verbose errors: (rc, stdout, stderr)
#   pgu_wait_up       wait until the server accepts connections and is out
#                     of recovery, retrying when psql dies on a broken pipe
#                     during a (crash) restart
#   pgu_track_node    register a node whose logs the END block checks
#                     (pgu_node, pw_node and wr_node do it)
#   pgu_log_allow     regexes of TRAP/PANIC/signal lines a test causes on
#                     purpose
#   pgu_pause_set, pgu_pause_release, pgu_wait_pause
#                     the barrier of pg_uring.test_pause: create and remove
#                     the file pg_uring.pause in the data directory; wait for
#                     a session to log that it reached a pause point
#   pgu_flip_check / pgu_start_io_uring_disabled
#                     start a node while kernel.io_uring_disabled = 2
#   pgu_io_method, pgu_io_method_conf
#                     the IO method the suite runs under: PGU_TEST_IO_METHOD
#                     (io_uring, the default, or sync); every node made by
#                     pgu_node, pw_node or wr_node gets it as
#                     pg_uring.io_method unless the test sets that itself
#
# Timeouts: every wait here is bounded by $PgUringTest::TIMEOUT seconds, and
# the PostgreSQL::Test default (used by poll_query_until, wait_for_log and
# psql) is lowered to the same value unless PG_TEST_TIMEOUT_DEFAULT is set.

package PgUringTest;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use Test::More;
use Time::HiRes qw(usleep);

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

our @EXPORT = qw(
	pgu_wait_event_sql
  pgu_node pgu_start pgu_session pgu_stats pgu_uring_fds
  pgu_postmaster_pid pgu_flip_check pgu_start_io_uring_disabled
  pgu_data_file pgu_count_matches pgu_children pgu_sql_helpers pgu_poll
  pgu_psql pgu_pause_set pgu_pause_release pgu_wait_pause
  pgu_track_node pgu_log_allow pgu_wait_up pgu_io_method pgu_io_method_conf
  pgu_counters
);

our $TIMEOUT = $ENV{PG_TEST_TIMEOUT_DEFAULT} || 60;
$PostgreSQL::Test::Utils::timeout_default = $TIMEOUT
  unless $ENV{PG_TEST_TIMEOUT_DEFAULT};

my $sysctl_file = '/proc/sys/kernel/io_uring_disabled';

# the IO method of the whole run (scripts/test.sh runs the 10x and 20x tests
# under both)
my $io_method = $ENV{PGU_TEST_IO_METHOD} // 'io_uring';
die "PGU_TEST_IO_METHOD must be io_uring or sync, not '$io_method'\n"
  unless $io_method eq 'io_uring' || $io_method eq 'sync';

sub pgu_io_method { return $io_method; }

# the setting for a node's %conf: ('pg_uring.io_method' => ...), unless the
# test chose one
sub pgu_io_method_conf
{
	my (%conf) = @_;
	return () if exists $conf{'pg_uring.io_method'};
	return ('pg_uring.io_method' => $io_method);
}

# value of kernel.io_uring_disabled to put back at exit, if we changed it
my $restore_disabled;

# nodes whose server logs are checked at exit, and what they may show
my @tracked_nodes;
my @log_allowed;

sub pgu_track_node
{
	my ($node) = @_;
	push @tracked_nodes, $node;
	return $node;
}

# Lines matching one of these regexes are crashes the test causes on
# purpose (a SIGKILL, an injected PANIC and the abort the postmaster sees).
sub pgu_log_allow
{
	push @log_allowed, @_;
	return;
}

# Every TAP file fails if any of its nodes' logs (the server log and, with
# logging_collector, log/*) shows an assertion failure, a PANIC or a process
# ended by a signal that the test did not declare with pgu_log_allow.
# Runs before PostgreSQL::Test::Cluster's own END (loaded first, so it runs
# last) tears the nodes down; an extra failing assertion makes the plan
# fail too.
END
{
	my @bad;
	for my $node (@tracked_nodes)
	{
		for my $f ($node->logfile, glob($node->data_dir . '/log/*'))
		{
			next unless -f $f;
			open(my $fh, '<', $f) or next;
			while (my $line = <$fh>)
			{
				next unless $line =~ /TRAP:|PANIC|terminated by signal/;
				next if grep { $line =~ $_ } @log_allowed;
				chomp $line;
				push @bad, "$f: $line";
			}
			close $fh;
		}
	}
	if (@bad)
	{
		my $n = scalar(@bad);
		splice(@bad, 10) if @bad > 10;
		Test::More::ok(0,
			"the server logs show no TRAP, PANIC or signal the test did not cause ($n lines)");
		Test::More::diag(join("\n", @bad));
	}
}

# ---------------------------------------------------------------------------
# Nodes
# ---------------------------------------------------------------------------

# A node (initialised, not started) with pg_uring preloaded.  %conf are extra
# settings; preload => 0 leaves shared_preload_libraries alone.
sub pgu_node
{
	my ($name, %conf) = @_;
	my $preload = exists $conf{preload} ? delete $conf{preload} : 1;
	my $node = pgu_track_node(PostgreSQL::Test::Cluster->new($name));

	$node->init;
	my $text = "autovacuum = off\nmax_connections = 30\n";
	$text .= "shared_preload_libraries = 'pg_uring'\n" if $preload;
	%conf = (pgu_io_method_conf(%conf), %conf) if $preload;
	for my $k (sort keys %conf)
	{
		$text .= "$k = '$conf{$k}'\n";
	}
	$node->append_conf('postgresql.conf', $text);
	return $node;
}

# Start the node, create the extension and make sure the shared rings are in
# the mode the node was configured for.  For pg_uring.io_method = sync that is
# 'sync'.  For io_uring they must really be io_uring rings.  If they are not
# because this host cannot create io_uring instances at all, the whole test is
# skipped (it is about io_uring behaviour; a skip fails scripts/test.sh unless
# PGU_ALLOW_SKIPS=1).  If they are not although a ring can be created now
# (someone flipped kernel.io_uring_disabled while the node started), restart
# once.
sub pgu_start
{
	my ($node) = @_;

	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION IF NOT EXISTS pg_uring');
	my $want = $node->safe_psql('postgres', 'SHOW pg_uring.io_method');
	if ($want eq 'sync')
	{
		my $modes = $node->safe_psql('postgres',
			"SELECT string_agg(DISTINCT mode, ',') FROM pg_uring_stats");
		BAIL_OUT("pg_uring.io_method = sync, but the rings are in mode '$modes'")
		  unless $modes eq 'sync';
		return;
	}
	for my $attempt (1 .. 2)
	{
		my $modes = $node->safe_psql('postgres',
			"SELECT string_agg(DISTINCT mode, ',') FROM pg_uring_stats");
		return if $modes eq 'io_uring';
		my $kernel = $node->safe_psql('postgres',
			"SELECT value FROM pg_uring_probe() WHERE section = 'kernel' AND name = 'ring_create'"
		);
		if ($kernel ne 'ok')
		{
			plan skip_all =>
			  "this host cannot create io_uring instances ($kernel)";
		}
		last if $attempt == 2;
		note "rings in mode '$modes' although io_uring works now; restarting once";
		$node->restart;
	}
	BAIL_OUT("pg_uring started in synchronous mode although io_uring works");
}

# Wait until the server accepts connections and recovery is done.
# poll_query_until feeds psql its query on stdin; while the server is still
# starting after a crash, psql can exit before reading it, and IPC::Run then
# dies on the broken pipe ("ack Broken pipe").  That is retried here, within
# $TIMEOUT seconds; a false result is a real time-out.
sub pgu_wait_up
{
	my ($node) = @_;
	my $deadline = time + $TIMEOUT;

	while (time < $deadline)
	{
		my $up = eval { $node->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') };

		return $up if defined $up;
		note("retrying after: $@");
		sleep 1;
	}
	return 0;
}

# pg_uring.test_pause pauses while this file exists
# The query giving "type:event" from pg_stat_activity for backend $pid.
# PostgreSQL 17 reports core's WaitIO sleep as "BufferIo", 15 as "BufferIO":
# the same wait on the buffer's IO condition variable, so it reads
# "IPC:BufferIO" here on every version.
sub pgu_wait_event_sql
{
	my ($pid) = @_;
	return "SELECT coalesce(wait_event_type, '') || ':' || "
	  . "CASE wait_event WHEN 'BufferIo' THEN 'BufferIO' ELSE coalesce(wait_event, '') END "
	  . "FROM pg_stat_activity WHERE pid = $pid";
}

sub pgu_pause_set
{
	my ($node) = @_;
	my $f = $node->data_dir . '/pg_uring.pause';
	open(my $fh, '>', $f) or die "could not create $f: $!";
	close $fh;
	return;
}

sub pgu_pause_release
{
	my ($node) = @_;
	unlink($node->data_dir . '/pg_uring.pause');
	return;
}

# Wait until session $who (its application_name) logs that it reached the
# pause point $what (e.g. "claim (block 8)"), in the log after $offset.
sub pgu_wait_pause
{
	my ($node, $who, $what, $offset) = @_;
	return eval {
		$node->wait_for_log(qr/\Q$who\E LOG:\s+pg_uring: test pause at \Q$what\E/, $offset);
		1;
	};
}

sub pgu_postmaster_pid
{
	my ($node) = @_;
	open(my $fh, '<', $node->data_dir . '/postmaster.pid')
	  or die "could not open postmaster.pid: $!";
	my $pid = <$fh>;
	close $fh;
	chomp $pid;
	return $pid;
}

# Number of fds of the postmaster (or of process $pid) that are io_uring
# instances; in list context also the number of eventfds.
sub pgu_uring_fds
{
	my ($node, $pid) = @_;
	my $dir = '/proc/' . ($pid // pgu_postmaster_pid($node)) . '/fd';
	my ($rings, $eventfds) = (0, 0);

	opendir(my $dh, $dir) or die "could not open $dir: $!";
	for my $fd (readdir $dh)
	{
		next if $fd =~ /^\./;
		my $target = readlink("$dir/$fd");
		next unless defined $target;
		$rings++    if $target eq 'anon_inode:[io_uring]';
		$eventfds++ if $target eq 'anon_inode:[eventfd]';
	}
	closedir $dh;
	return wantarray ? ($rings, $eventfds) : $rings;
}

# Child processes of the postmaster whose command line (the process title,
# e.g. "postgres: node: pg_uring reaper") matches $re: a list of pids.
sub pgu_children
{
	my ($node, $re) = @_;
	my $pm = pgu_postmaster_pid($node);
	my @pids;

	opendir(my $dh, '/proc') or die "could not open /proc: $!";
	for my $pid (grep { /^\d+$/ } readdir $dh)
	{
		open(my $st, '<', "/proc/$pid/stat") or next;
		my $stat = <$st>;
		close $st;
		next unless defined $stat;
		# pid (comm) state ppid ...; comm may contain spaces and parentheses
		next unless $stat =~ /\)\s+\S+\s+(\d+)/ && $1 == $pm;
		open(my $cl, '<', "/proc/$pid/cmdline") or next;
		my $cmd = do { local $/; <$cl> } // '';
		close $cl;
		$cmd =~ s/\0/ /g;
		push @pids, $pid if $cmd =~ $re;
	}
	closedir $dh;
	return @pids;
}

# Call $code every 0.1 s until it returns true; false after the timeout.
sub pgu_poll
{
	my ($code, $timeout) = @_;
	my $tries = 10 * ($timeout // $TIMEOUT);
	for (1 .. $tries)
	{
		return 1 if $code->();
		usleep(100_000);
	}
	return 0;
}

# SQL helpers for the tests:
#   pgu_repeat_batch(ops, expect, n): runs pg_uring_batch(ops) n times (a new
#   call each time) and returns how many results differed from expect[seq],
#   and how many rows there were.
sub pgu_sql_helpers
{
	my ($node) = @_;
	$node->safe_psql(
		'postgres', q{
		CREATE FUNCTION pgu_repeat_batch(ops text[], expect int[], n int,
										 OUT bad int, OUT total int)
		LANGUAGE plpgsql AS $$
		DECLARE
			r record;
		BEGIN
			bad := 0;
			total := 0;
			FOR i IN 1 .. n LOOP
				FOR r IN SELECT * FROM pg_uring_batch(ops) LOOP
					total := total + 1;
					IF r.result IS DISTINCT FROM expect[r.seq] THEN
						bad := bad + 1;
					END IF;
				END LOOP;
			END LOOP;
		END $$;
	});
	return;
}

# A subquery (with alias c) of one row per ring with every counter under
# its 1.0 name of pg_uring_stats, read from the 1.1 views a DBA reads: the
# ring-level columns of pg_uring_stats, pg_uring_stat_writeback, and the
# per-kind rows of pg_uring_stat_io (the mapping the 1.0--1.1 script's
# comment gives; sql/pg_uring_stats.sql checks it against the 1.0 function).
sub pgu_counters
{
	my $sql = q{(SELECT s.*, w.linked_writes, w.cancelled_chains, w.wal_flush_waits,
			w.writes_deferred, w.sync_requests, w.local_syncs, w.writer_pages,
			io.buffer_reads, io.buffer_blocks, io.buffer_read_failures,
			io.zero_page_fills, io.buffer_writes, io.buffer_write_failures,
			io.drained_writes, io.wal_flushes
		FROM pg_uring_stats s
		JOIN pg_uring_stat_writeback w USING (ring)
		JOIN (SELECT ring,
				sum(ios) FILTER (WHERE io_kind = 'prewarm') AS buffer_reads,
				sum(reads) FILTER (WHERE io_kind = 'prewarm') AS buffer_blocks,
				sum(failures) FILTER (WHERE io_kind = 'prewarm') AS buffer_read_failures,
				sum(sync_fills) FILTER (WHERE io_kind = 'prewarm') AS zero_page_fills,
				sum(writes) FILTER (WHERE io_kind = 'write-back') AS buffer_writes,
				sum(failures) FILTER (WHERE io_kind = 'write-back') AS buffer_write_failures,
				sum(fsyncs) FILTER (WHERE io_kind = 'write-back') AS drained_writes,
				sum(fsyncs) FILTER (WHERE io_kind = 'wal fsync') AS wal_flushes
			  FROM pg_uring_stat_io GROUP BY ring) io USING (ring)) c};
	$sql =~ s/\s+/ /g;
	return $sql;
}

# pg_uring_stats summed over the rings (modes joined with ',').
sub pgu_stats
{
	my ($node) = @_;
	my @cols = qw(in_flight submitted completed reaped_by_issuer
	  reaped_by_other reaped_by_reaper linked drained errors cancelled
	  submit_calls submit_lock_waits kernel_waits ring_full_waits slot_waits);
	my $sql =
	    'SELECT '
	  . join(', ', map { "sum($_)" } @cols)
	  . ", string_agg(DISTINCT mode, ','), count(*) FROM pg_uring_stats";
	my @v = split /\|/, $node->safe_psql('postgres', $sql);
	my %s;
	@s{ @cols, 'mode', 'rings' } = @v;
	return \%s;
}

# A relation file whose contents no longer change: a table written, frozen
# and checkpointed.  Returns (path relative to the data directory, size).
sub pgu_data_file
{
	my ($node, $rows) = @_;
	$rows //= 8000;
	$node->safe_psql(
		'postgres', qq{
		CREATE TABLE pgu_data AS
			SELECT g AS id, md5(g::text) AS h FROM generate_series(1, $rows) g;
		VACUUM (FREEZE) pgu_data;
		CHECKPOINT;
	});
	my ($path, $size) = split /\|/,
	  $node->safe_psql('postgres',
		"SELECT pg_relation_filepath('pgu_data'), pg_relation_size('pgu_data')"
	  );
	return ($path, $size);
}

# psql with verbose errors (SQLSTATE in the message), stopping at the first
# error; returns (rc, out, err).  Options: db (default postgres),
# extra_params (e.g. [ '-U', 'plain' ]).
sub pgu_psql
{
	my ($node, $sql, %opt) = @_;
	my ($out, $err);
	# psql that cannot connect (a server in crash restart) may exit before
	# IPC::Run has written its input: that is a failed psql (rc 2), not a
	# reason for the whole test file to die
	my $rc = eval {
		$node->psql($opt{db} // 'postgres', "\\set VERBOSITY verbose\n$sql",
			stdout => \$out, stderr => \$err, on_error_stop => 1,
			extra_params => $opt{extra_params} // []);
	};
	if (!defined $rc)
	{
		die $@ unless $@ =~ /Broken pipe/;
		return (2, $out // '', ($err // '') . "psql exited before reading its input: $@");
	}
	return ($rc, $out, $err);
}

sub pgu_count_matches
{
	my ($text, $re) = @_;
	my $n = 0;
	$n++ while $text =~ /$re/g;
	return $n;
}

# ---------------------------------------------------------------------------
# Background sessions
# ---------------------------------------------------------------------------

sub pgu_session
{
	return PgUringTest::Session->new(@_);
}

# ---------------------------------------------------------------------------
# kernel.io_uring_disabled
# ---------------------------------------------------------------------------

sub _read_disabled
{
	open(my $fh, '<', $sysctl_file) or return undef;
	my $v = <$fh>;
	close $fh;
	chomp $v if defined $v;
	return $v;
}

sub _set_disabled
{
	my ($value) = @_;
	my $sysctl = $ENV{PGU_SYSCTL};

	local $?;
	my $rc = system(
		"sudo -n '$sysctl' -w kernel.io_uring_disabled=$value >/dev/null 2>&1");
	my $now = _read_disabled();
	return ($rc == 0 && defined $now && $now eq $value);
}

sub _restore_disabled
{
	return unless defined $restore_disabled;
	my $v = $restore_disabled;
	if (_set_disabled($v))
	{
		undef $restore_disabled;
	}
	else
	{
		diag "could not restore kernel.io_uring_disabled to $v: do it by hand";
	}
}

END
{
	local $?;
	_restore_disabled();
}

# Can this test flip kernel.io_uring_disabled?  Returns '' if so, else why not.
sub pgu_flip_check
{
	my $sysctl = $ENV{PGU_SYSCTL};

	return 'PGU_SYSCTL is not set (scripts/test.sh sets it up with a sudo rule)'
	  unless defined $sysctl && $sysctl ne '';
	return "PGU_SYSCTL=$sysctl is not an executable"
	  unless -x $sysctl;
	my $orig = _read_disabled();
	return "this kernel has no $sysctl_file"
	  unless defined $orig;
	return "unexpected value '$orig' in $sysctl_file"
	  unless $orig =~ /^[012]$/;
	for my $v (2, $orig)
	{
		local $?;
		my $rc = system(
			"sudo -n -l '$sysctl' -w kernel.io_uring_disabled=$v >/dev/null 2>&1"
		);
		return "sudo -n may not run '$sysctl -w kernel.io_uring_disabled=$v'"
		  if $rc != 0;
	}
	return '';
}

# Start $node while io_uring is disabled for everybody, and put the sysctl
# back as soon as the postmaster is up (it creates its rings, or fails to,
# before it accepts connections).  The old value is also put back at exit
# and on SIGINT/SIGTERM, should anything die in between.
sub pgu_start_io_uring_disabled
{
	my ($node) = @_;
	my $orig = _read_disabled();

	local $SIG{INT}  = sub { _restore_disabled(); die "SIGINT\n"; };
	local $SIG{TERM} = sub { _restore_disabled(); die "SIGTERM\n"; };
	local $SIG{HUP}  = sub { _restore_disabled(); die "SIGHUP\n"; };

	$restore_disabled = $orig;
	my $t0 = [Time::HiRes::gettimeofday()];
	die "could not set kernel.io_uring_disabled = 2" unless _set_disabled(2);
	my $ok = eval { $node->start(fail_ok => 1) };
	my $err = $@;
	_restore_disabled();
	note sprintf("kernel.io_uring_disabled was 2 for %.2f s",
		Time::HiRes::tv_interval($t0));
	die $err if $err;
	die "the node did not start with io_uring disabled" unless $ok;
	die "kernel.io_uring_disabled is still not back to $orig"
	  if defined $restore_disabled;
	return;
}

# ---------------------------------------------------------------------------
# PgUringTest::Session: psql reading SQL from a pipe, in the background
# ---------------------------------------------------------------------------

package PgUringTest::Session;

use strict;
use warnings;

use IPC::Run;
use Time::HiRes;

# $node, $name (application_name), %opt: timeout (seconds per wait)
sub new
{
	my ($class, $node, $name, %opt) = @_;
	my $self = bless {
		node    => $node,
		name    => $name // 'pgu_session',
		in      => '',
		out     => '',
		err     => '',
		n       => 0,
		pending => undef,
		timeout => $opt{timeout} // $PgUringTest::TIMEOUT,
	}, $class;

	$self->{timer} = IPC::Run::timer($self->{timeout});
	my $connstr =
	  $node->connstr('postgres') . " application_name=$self->{name}";
	$self->{h} = IPC::Run::start(
		[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=0', '-d', $connstr ],
		'<', \$self->{in}, '>', \$self->{out}, '2>', \$self->{err},
		$self->{timer});
	my ($pid, $err) = $self->query("\\set VERBOSITY verbose\nSELECT pg_backend_pid()");
	die "session $self->{name} could not connect: $err"
	  unless defined $pid && $pid =~ /^\d+$/;
	$self->{pid} = $pid;
	return $self;
}

sub pid { return $_[0]->{pid}; }

# Send SQL without waiting for its result.
sub begin
{
	my ($self, $sql) = @_;
	die "session $self->{name}: a query is still pending"
	  if defined $self->{pending};
	my $marker = "__pgu_done_$self->{name}_" . ++$self->{n} . '__';

	# terminate a trailing SQL statement, unless it is a backslash command
	$sql =~ s/\s+$//;
	$sql .= ';' unless $sql =~ /;$/ || $sql =~ /(^|\n)\s*\\[^\n]*$/;
	$self->{pending} = $marker;
	$self->{in} .= "$sql\n\\echo $marker\n\\warn $marker\n";
	$self->{h}->pump_nb if $self->{h}->pumpable;
	return;
}

sub alive
{
	my ($self) = @_;
	return $self->{h}->pumpable;
}

# Has the pending query finished (or the session gone)?
sub done
{
	my ($self) = @_;
	return 1 unless defined $self->{pending};
	$self->{h}->pump_nb if $self->{h}->pumpable;
	my $m = $self->{pending};
	return 1
	  if $self->{out} =~ /\Q$m\E\n/ && $self->{err} =~ /\Q$m\E\n/;
	return !$self->{h}->pumpable;
}

# Wait up to $timeout seconds for the pending query to finish, without
# collecting its result.  Returns whether it did.
sub wait_done
{
	my ($self, $timeout) = @_;
	my $tries = int(20 * $timeout) || 1;
	for (1 .. $tries)
	{
		return 1 if $self->done;
		Time::HiRes::usleep(50_000);
	}
	return $self->done;
}

# Wait for the pending query.  Returns (stdout, stderr) without the markers,
# or, in scalar context, stdout.  On timeout returns stdout undef and
# stderr 'timeout'; if the session died the output so far.
sub finish
{
	my ($self, $timeout) = @_;
	my $m = $self->{pending};
	die "session $self->{name}: nothing pending" unless defined $m;

	# complete once both markers have arrived with their newlines (a pump
	# may deliver a marker without the newline \echo and \warn end it with,
	# which would then begin the next query's output)
	$self->{timer}->start($timeout // $self->{timeout});
	while (!($self->{out} =~ /\Q$m\E\n/ && $self->{err} =~ /\Q$m\E\n/))
	{
		last unless $self->{h}->pumpable;
		last if $self->{timer}->is_expired;
		$self->{h}->pump;
	}
	my $complete = $self->{out} =~ /\Q$m\E\n/ && $self->{err} =~ /\Q$m\E\n/;
	my $timed_out = !$complete && $self->{h}->pumpable;
	my ($out, $err) = ($self->{out}, $self->{err});
	$out =~ s/\Q$m\E\n?//;
	$err =~ s/\Q$m\E\n?//;
	$self->{out} = $self->{err} = '';
	undef $self->{pending};
	if ($timed_out)
	{
		Test::More::diag("session $self->{name} timed out; output so far:\n"
			  . "stdout: $out\nstderr: $err");
		return wantarray ? (undef, 'timeout') : undef;
	}
	chomp $out;
	chomp $err;
	return wantarray ? ($out, $err) : $out;
}

sub query
{
	my ($self, $sql, $timeout) = @_;
	$self->begin($sql);
	return $self->finish($timeout);
}

# Wait for the psql process to end (after the server dropped us).
sub wait_exit
{
	my ($self, $timeout) = @_;
	$self->{timer}->start($timeout // $self->{timeout});
	while ($self->{h}->pumpable && !$self->{timer}->is_expired)
	{
		$self->{h}->pump;
	}
	my $gone = !$self->{h}->pumpable;
	eval { $self->{h}->finish } if $gone;
	return $gone;
}

# Output collected so far (e.g. the FATAL of a terminated session).
sub stderr_so_far
{
	my ($self) = @_;
	$self->{h}->pump_nb if $self->{h}->pumpable;
	return $self->{err};
}

sub quit
{
	my ($self) = @_;
	return unless $self->{h};
	if ($self->{h}->pumpable)
	{
		$self->{in} .= "\\q\n";
		$self->{timer}->start(10);
		eval {
			$self->{h}->pump
			  while $self->{h}->pumpable && !$self->{timer}->is_expired;
		};
	}
	eval { $self->{h}->kill_kill(grace => 2) } if $self->{h}->pumpable;
	eval { $self->{h}->finish };
	undef $self->{h};
	return;
}

sub DESTROY
{
	my ($self) = @_;
	local ($@, $?);
	$self->quit if $self->{h};
}

1;
