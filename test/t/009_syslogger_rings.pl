
# What the syslogger keeps of the rings across crash restarts.
#
# The postmaster creates the rings in shmem_startup_hook, before it forks
# the syslogger (logging_collector = on), so the syslogger inherits their
# fds and mappings.  A crash restart tears the rings down in the postmaster
# and creates new ones, but the syslogger lives on (it is not restarted)
# and keeps the first generation alive in the kernel.  Later generations
# are created after the syslogger was forked, so it never gets them: the
# cost is bounded at one generation of rings (README.md, "Crash restarts").
#
# Three crash restarts (SIGKILL of a backend), then: the postmaster holds
# exactly pg_uring.rings io_uring fds (the current generation), the
# syslogger exactly pg_uring.rings too (the first generation, never more),
# and IO through the rings works.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgUringTest;

my $rings = 3;
my $node = pgu_node(
	'collector',
	'pg_uring.rings'    => $rings,
	logging_collector   => 'on',
	log_directory       => 'log',
	restart_after_crash => 'on');
pgu_start($node);
# the test SIGKILLs server processes on purpose
pgu_log_allow(qr/was terminated by signal 9: Killed/);

my ($logger) = pgu_children($node, qr/: logger\s*$/);
ok($logger, "the syslogger runs (pid $logger)");
is(scalar(pgu_uring_fds($node, $logger)), $rings,
	"at start the syslogger holds the $rings rings it inherited");

my $crashes = 0;
for my $i (1 .. 3)
{
	my $s = pgu_session($node, "victim$i");
	my $pm_before = pgu_postmaster_pid($node);
	kill 'KILL', $s->pid;
	# the restart is over when the log says so and a new session can do IO
	# through the new rings
	my $up = pgu_poll(
		sub {
			my $log = join('', map { slurp_file($_) } glob($node->data_dir . '/log/*'));
			return 0 if scalar(() = $log =~ /all server processes terminated; reinitializing/g) < $i;
			my ($rc, $o) = pgu_psql($node,
				"SELECT count(*) FROM pg_uring_batch(ARRAY['nop']) WHERE result = 0");
			return $rc == 0 && $o eq '1';
		});
	$crashes++ if $up && pgu_postmaster_pid($node) == $pm_before;
	$s->quit;
}
is($crashes, 3, 'three crash restarts, each back to IO through the rings');
my @loggers = pgu_children($node, qr/: logger\s*$/);
is("@loggers", $logger, 'the same syslogger lived through them');

my ($pm_rings, $pm_efds) = pgu_uring_fds($node);
is($pm_rings, $rings, "the postmaster holds exactly $rings io_uring fds (the current rings)");
is($pm_efds, 1, "... and one eventfd, shared by the rings");
my $logger_rings = pgu_uring_fds($node, $logger);
note "io_uring fds held by the syslogger after 3 crash restarts: $logger_rings";
is($logger_rings, $rings,
	"the syslogger still holds $rings io_uring fds: the first generation, no more");

my @logs = glob($node->data_dir . '/log/*');
my $log = join('', map { slurp_file($_) } @logs);
is(scalar(() = $log =~ /all server processes terminated; reinitializing/g), 3,
	'the collected log shows three reinitialisations');
unlike($log, qr/TRAP:|PANIC:/, 'the collected log shows no TRAP or PANIC');

$node->stop;
done_testing();
