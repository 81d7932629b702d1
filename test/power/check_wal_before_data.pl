#!/usr/bin/perl
#
# check_wal_before_data.pl PGDATA [BINDIR]
#
# Offline WAL-before-data check of a data directory copied right after a
# simulated power cut, run BEFORE any server starts on it (recovery would
# overwrite the evidence).
#
# What it proves: PostgreSQL's WAL rule says a data page may reach the disk
# only after the WAL up to its LSN is durable.  After a power cut, the WAL
# that survived ends at some LSN E (the end of the valid WAL from the last
# checkpoint's REDO on).  If the rule was kept, every data page on the disk
# has pd_lsn <= E.  A page with pd_lsn > E was written before its WAL was
# durable: it carries changes recovery knows nothing about (for example of a
# transaction whose commit is lost), which is exactly what the rule forbids.
#
# How:
#   - REDO location, its timeline and the WAL segment size from pg_controldata;
#   - the end of valid WAL from pg_waldump --start=REDO: it stops with
#     "error in WAL record at A: invalid record length at E: ..." (or another
#     reason naming E); without a position in the error (or when it stops
#     for lack of the next segment), the end of the last record it printed
#     (lsn + MAXALIGNed total length, plus the page headers it crosses);
#   - every 8 kB page of every main-fork file of a permanent relation (names
#     made of digits, with an optional .N segment suffix, under base/*/ and
#     global/; no _fsm, _vm, _init, and not the main fork of an unlogged
#     relation, whose pages are reset by recovery and may carry fake LSNs):
#     pd_lsn is its first 8 bytes, two little-endian uint32 (xlogid, xrecoff).
#     All-zero pages are skipped.
#
# Prints key=value figures (pages_checked, wal_end, highest_page_lsn,
# pages_beyond, damage_at: where pg_waldump found the first WAL it could not
# read, ...), and up to 10 "beyond: FILE block N lsn X/Y" lines.
# Exit status: 0 no page beyond the WAL end, 1 some page beyond it,
# 2 the check could not be done.
use strict;
use warnings;
no warnings 'portable';    # 64-bit LSNs and 0x100000000

my $pgdata = shift or die "usage: $0 PGDATA [BINDIR]\n";
my $bindir = shift // '/usr/lib/postgresql/15/bin';
my $BLCKSZ = 8192;
my $XLOG_BLCKSZ = 8192;

sub fail { print "error=@_\n"; exit 2; }

sub parse_lsn
{
	my ($s) = @_;
	$s =~ m{^([0-9A-Fa-f]+)/([0-9A-Fa-f]+)$} or fail("not an LSN: '$s'");
	return (hex($1) << 32) | hex($2);
}

sub fmt_lsn { my ($l) = @_; return sprintf('%X/%X', $l >> 32, $l & 0xFFFFFFFF); }

# --- pg_controldata ---------------------------------------------------------
my %ctl;
open(my $cd, '-|', "$bindir/pg_controldata", $pgdata) or fail("pg_controldata: $!");
while (<$cd>)
{
	chomp;
	$ctl{$1} = $2 if /^([^:]+):\s*(.*?)\s*$/;
}
close($cd) or fail("pg_controldata failed on $pgdata");
my $redo_s = $ctl{"Latest checkpoint's REDO location"} // fail('no REDO location');
my $tli = $ctl{"Latest checkpoint's TimeLineID"} // fail('no TimeLineID');
my $segsize = $ctl{'Bytes per WAL segment'} // fail('no WAL segment size');
my $redo = parse_lsn($redo_s);
print "redo=$redo_s\ntimeline=$tli\ncluster_state=$ctl{'Database cluster state'}\n";

# --- end of valid WAL ---------------------------------------------------------
# the end of a record of $len bytes starting at $lsn, crossing page headers
sub record_end
{
	my ($lsn, $len) = @_;
	my $pos = $lsn;
	while ($len > 0)
	{
		my $room = $XLOG_BLCKSZ - ($pos % $XLOG_BLCKSZ);
		if ($len <= $room) { $pos += $len; last; }
		$len -= $room;
		$pos += $room;
		$pos += ($pos % $segsize == 0) ? 40 : 24;    # long / short page header
	}
	return $pos;
}

my ($last_rec_end, $last_rec_line, $err, $nrec) = (undef, undef, undef, 0);
# pg_waldump is named the segments to read, from REDO's to the last one in
# pg_wal: without a file name it takes the WAL segment size from whichever
# segment the directory lists first, and a segment that was created but
# whose contents never reached the disk (0 bytes after the cut) makes it
# fail.  (Named a start segment only, it would stop at that segment's end.)
$segsize =~ /^(\d+)$/ or fail("bad WAL segment size '$segsize'");
my $segno = int($redo / $segsize);
my $per_id = int(0x100000000 / $segsize);
my $startseg = sprintf('%08X%08X%08X', $tli, int($segno / $per_id), $segno % $per_id);
opendir(my $wdir, "$pgdata/pg_wal") or fail("could not open $pgdata/pg_wal: $!");
my ($endseg) = sort { $b cmp $a } grep { /^[0-9A-F]{24}$/ && substr($_, 0, 8) eq substr($startseg, 0, 8) } readdir $wdir;
closedir $wdir;
$endseg = $startseg if !defined $endseg || $endseg lt $startseg;
open(my $wd, '-|', "$bindir/pg_waldump -p '$pgdata/pg_wal' --start=$redo_s --timeline=$tli $startseg $endseg 2>&1")
  or fail("pg_waldump: $!");
while (my $line = <$wd>)
{
	chomp $line;
	if ($line =~ m{len \(rec/tot\):\s*\d+/\s*(\d+),.*\blsn: ([0-9A-F]+/[0-9A-F]+)})
	{
		$nrec++;
		# XLogInsert's end pointer (what a page LSN is) is MAXALIGNed
		$last_rec_end = record_end(parse_lsn($2), ($1 + 7) & ~7);
		$last_rec_line = $line;
	}
	elsif ($line =~ /pg_waldump: (error|fatal): (.*)/)
	{
		$err = $2;
	}
}
close($wd);
print "wal_records=$nrec\n";
print "waldump_error=" . ($err // '(none)') . "\n";

my $wal_end;
my $source;
my $damage_at;    # where pg_waldump found WAL it could not read
if (defined $err)
{
	my $rest = $err;
	# "error in WAL record at A: REASON": A is the start of the last good record
	$rest =~ s{^error in WAL record at [0-9A-F]+/[0-9A-F]+:\s*}{};
	my @at = ($rest =~ m{\bat ([0-9A-F]+/[0-9A-F]+)}g);
	if (@at)
	{
		# "invalid record length at E", "record with incorrect prev-link P at E", ...
		$wal_end = parse_lsn($at[-1]);
		$source = 'error position';
		$damage_at = $wal_end;
	}
	elsif ($rest =~ /in log segment ([0-9A-F]{24}), offset (\d+)/)
	{
		# "invalid magic number ... in log segment S, offset N", "unexpected
		# pageaddr ... in log segment S, offset N": a page that is not there.
		# It may be in the middle of the invalid record, so it is not the WAL
		# end (the end of the last good record is), but it is where the
		# damage starts
		my ($seg, $off) = ($1, $2);
		my $per_id = 0x100000000 / $segsize;
		$damage_at = (hex(substr($seg, 8, 8)) * $per_id + hex(substr($seg, 16, 8))) * $segsize + $off;
	}
}
if (!defined $wal_end && defined $last_rec_end)
{
	$wal_end = $last_rec_end;
	$source = 'end of the last record';
}
if (!defined $wal_end && defined $err && $err =~ m{^error in WAL record at|could not find a valid record after})
{
	# not even the REDO record is readable: no valid WAL at all
	$wal_end = $redo;
	$source = 'REDO (no valid record)';
}
fail("could not find the end of WAL (pg_waldump: " . ($err // 'no error') . ")")
  unless defined $wal_end;
# the position an error names is where the next record would start: never
# before the end of the last good record
if (defined $last_rec_end && $wal_end < $last_rec_end)
{
	$wal_end = $last_rec_end;
	$source = 'end of the last record';
}
$damage_at //= $wal_end;    # no usable position: as far as the WAL reads
print "wal_end=" . fmt_lsn($wal_end) . "\nwal_end_source=$source\n";
print "damage_at=" . fmt_lsn($damage_at) . "\n";
print "last_record_end=" . (defined $last_rec_end ? fmt_lsn($last_rec_end) : '(none)') . "\n";

# --- data pages -----------------------------------------------------------------
my @dirs = ("$pgdata/global");
opendir(my $bd, "$pgdata/base") or fail("base: $!");
push @dirs, map { "$pgdata/base/$_" } grep { /^\d+$/ } readdir($bd);
closedir($bd);

my ($files, $pages, $zero, $newer_than_redo, $beyond, $max_lsn, $max_where) = (0, 0, 0, 0, 0, 0, '');
my @beyond;
my $zeropage = "\0" x $BLCKSZ;
for my $dir (sort @dirs)
{
	opendir(my $dh, $dir) or fail("$dir: $!");
	my @names = readdir($dh);
	closedir($dh);
	my %present = map { $_ => 1 } @names;
	for my $name (sort @names)
	{
		next unless $name =~ /^(\d+)(?:\.\d+)?$/;
		next if $present{"$1_init"};    # unlogged: reset by recovery
		my $path = "$dir/$name";
		next unless -f $path;
		(my $rel = $path) =~ s{^\Q$pgdata\E/}{};
		my $segno = ($name =~ /\.(\d+)$/) ? $1 : 0;
		open(my $fh, '<:raw', $path) or fail("$path: $!");
		$files++;
		my $blk = 0;
		my $buf;
		while ((my $n = sysread($fh, $buf, $BLCKSZ)) > 0)
		{
			fail("$path: short read of block $blk ($n bytes)") if $n != $BLCKSZ;
			my ($xlogid, $xrecoff) = unpack('VV', $buf);
			my $lsn = ($xlogid << 32) | $xrecoff;
			if ($lsn == 0 && $buf eq $zeropage)
			{
				$zero++;
				$blk++;
				next;
			}
			$pages++;
			$newer_than_redo++ if $lsn > $redo;
			if ($lsn > $max_lsn)
			{
				$max_lsn = $lsn;
				$max_where = "$rel block " . ($segno * 131072 + $blk);
			}
			if ($lsn > $wal_end)
			{
				$beyond++;
				push @beyond, "$rel block " . ($segno * 131072 + $blk) . " lsn " . fmt_lsn($lsn)
				  if @beyond < 10;
			}
			$blk++;
		}
		close($fh);
	}
}
print "files_checked=$files\n";
print "pages_checked=$pages\n";
print "zero_pages_skipped=$zero\n";
print "pages_newer_than_redo=$newer_than_redo\n";
print "highest_page_lsn=" . fmt_lsn($max_lsn) . "\n";
print "highest_page=$max_where\n";
print "pages_beyond=$beyond\n";
print "beyond: $_\n" for @beyond;
exit($beyond > 0 ? 1 : 0);
