
# Injected read faults (pg_uring.test_fault, superuser only).
#
# 'eio:N': the read covering block N completes with EIO.  pg_uring_prewarm
#   fails with "could not read block N in file "base/...": Input/output
#   error" (SQLSTATE 58030); the blocks of every other read are cached,
#   block N is not.
# 'short:N': the read covering block N ends in the middle of it: "could not
#   read block N in file "...": read only 4096 of 8192 bytes" (XX001); the
#   blocks before N are cached, block N is not.
# The failed buffers are left not valid, so once the fault is removed a
# plain SELECT (core) reads them again and returns the right data, and
# pg_uring_prewarm reads them again too.  No IO, pin or IO-in-progress
# buffer is left behind.  The setting is refused to non-superusers and
# rejects malformed values.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;
use PgUringPrewarm;

# ---------------------------------------------------------------------------
# helpers (local to this file)
# ---------------------------------------------------------------------------
# the blocks 0 .. n-1 missing from a sorted list
sub pw_missing
{
	my ($n, @have) = @_;
	my %h = map { $_ => 1 } @have;
	return grep { !$h{$_} } 0 .. $n - 1;
}

my $digest_sql = q{SELECT count(*) || ':' || md5(string_agg(id || ':' || h, ',' ORDER BY id)) FROM t};

# ---------------------------------------------------------------------------
# setup
# ---------------------------------------------------------------------------
my $node = pw_node('faults');
pgu_start($node);
my $nblocks = pw_create_t($node, 100000);
$node->safe_psql('postgres', 'CREATE ROLE plain LOGIN; GRANT SELECT ON t TO plain');
my $relpath = $node->safe_psql('postgres', "SELECT pg_relation_filepath('t')");
my $digest  = $node->safe_psql('postgres', $digest_sql);
is( $digest,
	$node->safe_psql('postgres',
		"SELECT count(*) || ':' || md5(string_agg(g || ':' || repeat(md5(g::text), 2), ',' ORDER BY g)) FROM generate_series(1, 100000) g"
	),
	'reference digest');
note "table $relpath has $nblocks blocks";

# ---------------------------------------------------------------------------
# the setting itself
# ---------------------------------------------------------------------------
my ($rc, $out, $err) = pgu_psql($node, "SET pg_uring.test_fault = 'bogus'");
like($err, qr/invalid value for parameter "pg_uring.test_fault"/, 'a malformed value is rejected');
($rc, $out, $err) = pgu_psql($node, "SET pg_uring.test_fault = 'eio:7'",
	extra_params => [ '-U', 'plain' ]);
like($err, qr/permission denied to set parameter "pg_uring.test_fault"/,
	'a non-superuser may not set it');
($rc, $out, $err) = pgu_psql($node, "SET pg_uring.test_hold_reap = on",
	extra_params => [ '-U', 'plain' ]);
like($err, qr/permission denied to set parameter "pg_uring.test_hold_reap"/,
	'nor pg_uring.test_hold_reap');

# ---------------------------------------------------------------------------
# EIO
# ---------------------------------------------------------------------------
for my $case ([ 'eio', int($nblocks / 2) + 5 ], [ 'eio', 0 ], [ 'eio', $nblocks - 1 ])
{
	my ($kind, $n) = @$case;
	$node->restart;
	$node->safe_psql('postgres', 'SELECT pg_uring_reset_stats()');
	($rc, $out, $err) =
	  pgu_psql($node, "SET pg_uring.test_fault = '$kind:$n'; SELECT pg_uring_prewarm('t')");
	isnt($rc, 0, "$kind:$n: pg_uring_prewarm fails");
	like(
		$err,
		qr/ERROR:  58030: could not read block $n in file "\Q$relpath\E": Input\/output error\n/,
		"$kind:$n: could not read block $n in file \"$relpath\": Input/output error (58030)")
	  or note $err;

	my @cached  = pw_cached_blocks($node, 't');
	my @missing = pw_missing($nblocks, @cached);
	note "$kind:$n: blocks not cached: @missing";
	ok((grep { $_ == $n } @missing), "$kind:$n: block $n is not cached");
	# only the one read that covered block N failed: at most 16 adjacent blocks
	ok(@missing >= 1 && @missing <= 16 && $missing[-1] - $missing[0] == $#missing
		  && $missing[0] <= $n && $missing[-1] >= $n,
		"$kind:$n: the other blocks are cached (missing: one run of <= 16 blocks around $n)");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'), 0,
		"$kind:$n: no IO left");
	my $s = pw_stats($node);
	cmp_ok($s->{buffer_read_failures}, '>=', 1, "$kind:$n: buffer_read_failures counted");
	cmp_ok($s->{errors}, '>=', 1, "$kind:$n: the IO error is counted in errors");
	is($s->{in_flight}, 0, "$kind:$n: nothing in flight");

	# core reads the failed buffers again
	is($node->safe_psql('postgres', $digest_sql), $digest,
		"$kind:$n: with the fault gone, a plain SELECT returns the right data");
	is(scalar(my @c = pw_cached_blocks($node, 't')), $nblocks,
		"$kind:$n: and every block is cached after it");
}

# pg_uring itself re-reads a failed block once the fault is gone
{
	my $n = int($nblocks / 3) + 2;
	$node->restart;
	($rc, $out, $err) =
	  pgu_psql($node, "SET pg_uring.test_fault = 'eio:$n'; SELECT pg_uring_prewarm('t')");
	like($err, qr/could not read block \d+ in file/, "eio:$n: prewarm fails");
	my @missing = pw_missing($nblocks, pw_cached_blocks($node, 't'));
	($rc, $out, $err) = pgu_psql($node, "SELECT pg_uring_prewarm('t')");
	is($err, '', "eio:$n: without the fault, a second prewarm has no error");
	is($out, scalar(@missing),
		"eio:$n: and reads the " . scalar(@missing) . " blocks that failed")
	  or note "it returned '$out'";
	is(scalar(my @c = pw_cached_blocks($node, 't')), $nblocks,
		"eio:$n: every block is cached after the second prewarm");
	is($node->safe_psql('postgres', $digest_sql), $digest, "eio:$n: data right");
}

# a single-block list
{
	my $n = 17;
	$node->restart;
	($rc, $out, $err) = pgu_psql($node,
		"SET pg_uring.test_fault = 'eio:$n'; SELECT pg_uring_prewarm_blocks('t', ARRAY[3, $n, 40]::int8[])");
	like($err, qr/ERROR:  58030: could not read block $n in file "\Q$relpath\E": Input\/output error/,
		"eio:$n: pg_uring_prewarm_blocks fails with the block's error");
	is_deeply([ pw_cached_blocks($node, 't') ], [ 3, 40 ],
		"eio:$n: the other listed blocks are cached");
}

# ---------------------------------------------------------------------------
# short reads
# ---------------------------------------------------------------------------
for my $n (int($nblocks / 2) + 5, 0, $nblocks - 1)
{
	$node->restart;
	$node->safe_psql('postgres', 'SELECT pg_uring_reset_stats()');
	($rc, $out, $err) =
	  pgu_psql($node, "SET pg_uring.test_fault = 'short:$n'; SELECT pg_uring_prewarm('t')");
	isnt($rc, 0, "short:$n: pg_uring_prewarm fails");
	like(
		$err,
		qr/ERROR:  XX001: could not read block $n in file "\Q$relpath\E": read only 4096 of 8192 bytes\n/,
		"short:$n: could not read block $n in file \"$relpath\": read only 4096 of 8192 bytes (XX001)")
	  or note $err;

	my @cached  = pw_cached_blocks($node, 't');
	my @missing = pw_missing($nblocks, @cached);
	note "short:$n: blocks not cached: @missing";
	is($missing[0], $n, "short:$n: block $n is the first block not cached (those before it are)");
	ok(@missing <= 16 && $missing[-1] - $missing[0] == $#missing,
		"short:$n: only the rest of the read covering it is missing");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_uring_ios'), 0,
		"short:$n: no IO left");
	my $s = pw_stats($node);
	cmp_ok($s->{buffer_read_failures}, '>=', 1, "short:$n: buffer_read_failures counted");

	is($node->safe_psql('postgres', $digest_sql), $digest,
		"short:$n: with the fault gone, a plain SELECT returns the right data");
}

# the fault is the session's own setting
{
	my $n = 100;
	$node->restart;
	my $a = pgu_session($node, 'faulty');
	my ($o, $e) = $a->query("SET pg_uring.test_fault = 'eio:$n'; SELECT pg_uring_prewarm('t', 'main', 0, 199)");
	like($e, qr/could not read block \d+ in file/, 'the session with the fault fails');
	is($node->safe_psql('postgres', "SELECT pg_uring_prewarm('t', 'main', 200, 399)"),
		200, 'another session, without the fault, prewarms other blocks fine');
	($o, $e) = $a->query("RESET pg_uring.test_fault; SELECT count(*) FROM t");
	is($o, 100000, 'after RESET the same session reads the table through core');
	$a->quit;
}

# no pins, no IO-in-progress buffer left: every buffer can be read, and
# nothing is pinned
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_buffercache WHERE pinning_backends > 0'),
	0, 'no buffer is pinned');
is($node->safe_psql('postgres', 'SELECT sum(in_flight) FROM pg_uring_stats'), 0,
	'nothing in flight at the end');

pw_amcheck($node, 0);

$node->stop;
done_testing();
