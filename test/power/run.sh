#!/bin/bash
# test/power/run.sh: pg_uring's power-loss tests (run as root from the repo top:
# "bash test/power/run.sh"; prints TAP, exit status 0 iff every test passed).
#
# What it proves: that what pg_uring writes back (pg_uring_flush, the writer)
# keeps PostgreSQL's WAL rule and survives a power cut, not merely a crash
# that leaves the page cache alive (pg_ctl stop -m immediate keeps it).  The
# data directory lives on ext4 on a loop device with periodic writeback off;
# the cut is a SIGKILL of the server's process group and an immediate copy of
# the backing image, so only what was fsynced is on the "disk" afterwards
# (lib.sh explains the mechanism).  On each copy, before any server starts:
# no data page carries an LSN beyond the end of the valid WAL
# (check_wal_before_data.pl); then recovery, and what each scenario needs:
#
#  s1  pgbench + writer + flush loops, synchronous_commit = on, 64 MB pool:
#      every acknowledged commit is there, balances agree, amcheck clean
#      (twice: cut after 40 s, and s1-early, after 8 s); a loop of seq and
#      index scans reads ahead all along (s1 and s2), so read-ahead IOs are
#      in flight at the cut and its claims evict dirty victims meanwhile
#  s2  the same with synchronous_commit = off and a sleepy WAL writer (WAL
#      undurable for up to 10 s), 1 GB pool (also twice: s2-early is cut 8 s
#      after start-up, inside the WAL writer's first 10 s without a flush)
#  s3  pg_uring_flush('t', sync => true) without a checkpoint: all rows there
#  s4  pg_uring_wal_flush() = L: every WAL byte up to L is on the disk, and
#      pg_waldump reads it up to L
#  s5  a page updated while pg_uring_flush has its write staged, then a
#      CHECKPOINT, cut: the update is on the disk (the buffer stayed dirty)
#  nowal negative control: s2 with a pg_uring built with PGU_TEST_BREAK_WAL_RULE
#      (page writes ignore the WAL rule): the offline check must find pages
#      beyond the WAL end, or the harness could not catch an early write
#
# Every scenario also checks the server logs (run and recovery) for TRAP:,
# PANIC and "terminated by signal".  Without loop devices: "1..0 # SKIP".
# Everything (images, mounts, build, logs) is under /var/tmp/pgu-power.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"

S3_ROWS=100000
NOWAL_LIB=$ROOT/nowal-lib

if [ "$(id -u)" -ne 0 ]; then
	echo "Bail out! test/power/run.sh must run as root (loop devices, mounts, sysctls)"
	exit 1
fi
if [ ! -e /dev/loop-control ] || ! command -v losetup >/dev/null || ! command -v mkfs.ext4 >/dev/null; then
	echo "1..0 # SKIP NO LOOP DEVICES (/dev/loop-control, losetup or mkfs.ext4 missing): the power-loss tests of pg_uring did NOT run"
	exit 0
fi
# a loop device must really attach (in some containers /dev/loop-control is there but unusable)
PROBE=$(mktemp /var/tmp/pgu-power-probe.XXXXXX)
truncate -s 1M "$PROBE"
if PROBE_DEV=$(losetup --find --show "$PROBE" 2>&1); then
	losetup -d "$PROBE_DEV"
	rm -f "$PROBE"
else
	rm -f "$PROBE"
	echo "1..0 # SKIP LOOP DEVICES UNUSABLE (losetup --find --show: $PROBE_DEV): the power-loss tests of pg_uring did NOT run"
	exit 0
fi
for b in initdb pg_ctl psql pgbench pg_controldata pg_waldump pg_checksums pg_config; do
	if [ ! -x "$PGBIN/$b" ]; then echo "Bail out! $PGBIN/$b is missing"; exit 1; fi
done

exec 9>/var/tmp/pgu-power.lock
if ! flock -n 9; then
	echo "Bail out! another test/power/run.sh is running (/var/tmp/pgu-power.lock)"
	exit 1
fi

T_START=$(date +%s)
exec 3>&1
clean_root >/dev/null 2>&1
mkdir -p "$LOGS" "$SOCK"
chown postgres: "$SOCK" "$LOGS"
exec >>"$LOGS/harness.log" 2>&1
cd "$ROOT" || exit 1

FINISHED=0
on_exit() {
	local rc=$?
	[ -n "${BUILD_PID:-}" ] && kill -KILL -- "-$BUILD_PID" 2>/dev/null    # not reaped yet: still ours
	[ -n "${NAP_PID:-}" ] && kill "$NAP_PID" 2>/dev/null
	cleanup
	if [ "$FINISHED" -eq 0 ]; then
		not_ok "the harness stopped before the end (exit status $rc)"
	fi
	note "total time $(($(date +%s) - T_START)) s"
	[ "$T_FAIL" -gt 0 ] && note "logs are kept in $LOGS (harness.log, <scenario>-run.log, <scenario>-recovery.log, <scenario>-offline.txt)"
	tap "1..$T_N"
	[ "$T_FAIL" -eq 0 ] && exit 0
	exit 1
}
trap on_exit EXIT
trap 'say "interrupted"; exit 130' INT TERM
bail() { not_ok "$*"; exit 1; }

sysctl_save
note "pg_uring power-loss tests on PostgreSQL $PGMAJOR ($PGBIN): images, mounts and logs under $ROOT; port $PORT"

# ------------------------------------------------ the negative control's build
# from HEAD (git archive: a consistent snapshot while the tree may be edited),
# into a directory of its own: never into the server's lib directory
build_nowal() {
	set -e
	rm -rf "$ROOT/build" "$NOWAL_LIB"
	mkdir -p "$ROOT/build" "$NOWAL_LIB"
	if git -c safe.directory="$REPO" -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
		git -c safe.directory="$REPO" -C "$REPO" archive HEAD Makefile pg_uring.control pg_uring--1.0.sql src |
			tar -x -C "$ROOT/build"
	else
		# a copy without git (the PostgreSQL 17 chroot's): the files as they are
		# (without the objects of the build there: make would keep them, and
		# the "variant" would be the normal build)
		tar -C "$REPO" --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
			-cf - Makefile pg_uring.control pg_uring--1.0.sql src | tar -x -C "$ROOT/build"
	fi
	make -C "$ROOT/build" -j2 PG_CONFIG="$PGBIN/pg_config" with_llvm=no PGU_TEST_BREAK_WAL_RULE=1
	cp "$ROOT/build/pg_uring.so" "$NOWAL_LIB/pg_uring.so"
	chmod 755 "$NOWAL_LIB" && chmod 644 "$NOWAL_LIB/pg_uring.so"
}
# in a session of its own, so that an interrupted run can stop the whole build
export ROOT NOWAL_LIB REPO PGBIN
setsid bash -c "$(declare -f build_nowal); build_nowal" >"$LOGS/build-nowal.log" 2>&1 </dev/null &
BUILD_PID=$!

# --------------------------------------------------------------- the template
# one cluster, initialised once and shut down cleanly; each scenario starts
# from a copy of its image: initdb -k, pg_uring, amcheck, pgbench -i -s 10, acks
TEMPLATE=$ROOT/template.img
make_template() {
	local mnt=$ROOT/template pgdata=$ROOT/template/pgdata
	new_image "$TEMPLATE" || return 1
	disk_attach "$TEMPLATE" "$mnt" || return 1
	as_pg initdb -k -A trust -D "$pgdata" || return 1
	cat >>"$pgdata/postgresql.conf" <<-EOF
		# pg_uring power-loss harness
		port = $PORT
		listen_addresses = ''
		unix_socket_directories = '$SOCK'
		shared_preload_libraries = 'pg_uring'
		fsync = on
		autovacuum = off
		checkpoint_timeout = 1h
		max_wal_size = 4GB
		log_line_prefix = '%m [%p] %b '
		log_min_messages = warning
		include_if_exists = 'power.conf'
	EOF
	# on 16 pg_uring starts only with the opt-in (README.md, PostgreSQL versions)
	if [ "$PGMAJOR" -eq 16 ]; then
		echo "pg_uring.test_untested_version = on" >>"$pgdata/postgresql.conf"
	fi
	server_start "$pgdata" "$LOGS/template.log" || return 1
	psql_q "CREATE EXTENSION pg_uring; CREATE EXTENSION amcheck;
		CREATE TABLE acks (id int PRIMARY KEY);" || return 1
	as_pg pgbench -i -q -s 10 || return 1
	psql_q "CHECKPOINT" || return 1
	server_stop "$pgdata" || return 1
	disk_detach "$mnt"
}
say "building the template"
make_template || bail "template cluster: initdb, pgbench -i -s 10 (see $LOGS/harness.log)"
note "template: initdb -k, pg_uring + amcheck, pgbench -i -s 10, ready after $(($(date +%s) - T_START)) s"

# ---------------------------------------------------------- scenario skeleton
# scenario_begin NAME CONF: a fresh disk from the template, CONF as power.conf,
# periodic writeback off, the server up (logs in $LOGS/NAME-run.log)
scenario_begin() {
	S=$1
	SDIR=$ROOT/$S
	mkdir -p "$SDIR"
	chown postgres: "$SDIR"
	RUNLOG=$LOGS/$S-run.log
	RECLOG=$LOGS/$S-recovery.log
	cp --sparse=always "$TEMPLATE" "$SDIR/disk.img" || return 1
	writeback_off
	disk_attach "$SDIR/disk.img" "$SDIR/disk" || return 1
	PGDATA_RUN=$SDIR/disk/pgdata
	printf '%s\n' "$2" >"$PGDATA_RUN/power.conf"
	chown postgres: "$PGDATA_RUN/power.conf"
	server_start "$PGDATA_RUN" "$RUNLOG"
}
# scenario_cut: the power cut (SIGKILL of the server's group, copy of the image),
# clients killed, sysctls back, the original dropped, the copy mounted
# ($CUT_HOOK, if set, runs after the copy, while the original is still mounted)
scenario_cut() {
	local rc=0
	power_cut "$PGDATA_RUN" "$SDIR/disk.img" "$SDIR/crash.img" || rc=1
	clients_stop
	[ $rc -eq 0 ] && [ -n "${CUT_HOOK:-}" ] && $CUT_HOOK
	sysctl_restore
	disk_detach "$SDIR/disk"
	rm -f "$SDIR/disk.img"
	[ $rc -eq 0 ] || return 1
	disk_attach "$SDIR/crash.img" "$SDIR/crash" || return 1
	PGDATA_CRASH=$SDIR/crash/pgdata
}
# scenario_recover: a server on the copy (recovery runs); $RECOVERED says whether it came up
scenario_recover() {
	# what a reboot does: the socket directory (a /run on a real machine) no
	# longer holds the killed server's socket and lock file; and say if the
	# PID in the copy's postmaster.pid belongs to a process now (power_cut
	# waited until the killed ones were reaped; PIDs wrap at 32768 here)
	rm -f "$SOCK/.s.PGSQL.$PORT" "$SOCK/.s.PGSQL.$PORT.lock"
	local old_pid
	old_pid=$(head -1 "$PGDATA_CRASH/postmaster.pid" 2>/dev/null)
	if [ -n "$old_pid" ] && kill -0 "$old_pid" 2>/dev/null; then
		note "$S: the PID in the copy's postmaster.pid ($old_pid) is alive now: $(ps -o user=,args= -p "$old_pid")"
	fi
	if server_start "$PGDATA_CRASH" "$RECLOG"; then RECOVERED=1; else RECOVERED=0; fi
	check "$S: the server recovered on the disk after the power cut" [ $RECOVERED -eq 1 ]
	if [ $RECOVERED -eq 0 ]; then
		# CI keeps only stdout: the reason must be there
		note "$S: the last lines of the recovery log ($RECLOG):"
		tail -n 25 "$RECLOG" 2>&1 | while IFS= read -r l; do note "  $l"; done
	fi
}
# scenario_end: stop the recovered server, pg_checksums of the stopped cluster, drop the copy
scenario_end() {
	local out
	if [ "$RECOVERED" -eq 1 ]; then
		server_stop "$PGDATA_CRASH"
		if out=$(as_pg pg_checksums --check -D "$PGDATA_CRASH" 2>&1); then
			ok "$S: pg_checksums clean after recovery ($(sed -n 's/^Blocks scanned: *//p' <<<"$out") blocks)"
		else
			echo "$out"
			not_ok "$S: pg_checksums clean after recovery"
		fi
	fi
	disk_detach "$SDIR/crash"
	rm -f "$SDIR/crash.img"
}
# the offline verdict of a positive scenario
wal_before_data_ok() {
	[ "$W_status" -eq 0 ] && [ "${W_pages_beyond:-x}" = 0 ]
	verdict "$S: WAL before data: no page on the disk is beyond the end of the valid WAL (${W_pages_beyond:-?} of ${W_pages_checked:-?} pages; WAL end ${W_wal_end:-?}, highest page LSN ${W_highest_page_lsn:-?})"
}
scenario_logs() { # scenario_logs [LOGFILE...]: defaults to the run and recovery logs
	local files=("$@")
	[ ${#files[@]} -eq 0 ] && files=("$RUNLOG" "$RECLOG")
	check "$S: no TRAP, PANIC or 'terminated by signal' in the server logs" log_clean "$S" "${files[@]}"
}

PGBENCH_TABLES="pgbench_accounts pgbench_branches pgbench_tellers pgbench_history acks"
COMMON_CONF="pg_uring.writer = on
pg_uring.writer_delay = 10ms"
# (wal_buffers small: backends write WAL out as they fill its buffers, so
# WAL is written, not flushed, between the WAL writer's rounds.  With the
# default, 16 MB at these pools, s2 on 17 linked no page write in 40 s:
# pg_uring never found WAL written beyond the flush pointer, so it deferred
# the writes that needed WAL instead, and the link went untested there)
SLEEPY_WAL="synchronous_commit = off
wal_writer_delay = 10s
wal_writer_flush_after = 1GB
wal_buffers = 256kB"

# ------------------------------------------------- s1, s2, s5: pgbench scenarios
# scenario_pgbench NAME KIND SECONDS PAUSE CONF: KIND is sync (s1), async (s2)
# or nowal (s5); the cut comes after SECONDS; PAUSE is the flush loop's sleep
# between calls (a loop that cleans the pool every few hundred ms leaves the
# writer nothing: it writes only buffers whose usage count fell to 0)
scenario_pgbench() {
	local name=$1 kind=$2 seconds=$3 pause=$4 conf=$5 acks=$ROOT/$1/acks.txt ctr nacks bal missing hist
	scenario_begin "$name" "$conf" || { not_ok "$name: server start on a fresh disk"; return; }
	psql_q "CHECKPOINT" || not_ok "$name: CHECKPOINT before the run"
	if [ "$kind" = nowal ]; then
		# the SQL function is bound to '$libdir/pg_uring' (the normal build): bind it
		# to the preloaded variant instead (same signature as pg_uring--1.0.sql)
		psql_q "CREATE OR REPLACE FUNCTION pg_uring_flush(rel regclass DEFAULT NULL, sync boolean DEFAULT false)
			RETURNS int8 AS '$NOWAL_LIB/pg_uring', 'pg_uring_flush'
			LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE"
		# and the statistics functions the counters read: on 17 a call bound
		# to '$libdir/pg_uring' loads that file as a second copy of the
		# library, one that was not preloaded and refuses to run (15 found
		# the preloaded variant)
		psql_q "UPDATE pg_proc SET probin = '$NOWAL_LIB/pg_uring' WHERE probin = '\$libdir/pg_uring'"
		check "nowal: the server loaded the PGU_TEST_BREAK_WAL_RULE build (its WARNING is in the log)" \
			grep -q 'pg_uring was built with PGU_TEST_BREAK_WAL_RULE' "$RUNLOG"
		check "nowal: pg_uring_flush() is bound to the variant ($NOWAL_LIB/pg_uring)" \
			[ "$(psql_q "SELECT probin FROM pg_proc WHERE proname = 'pg_uring_flush'")" = "$NOWAL_LIB/pg_uring" ]
	fi
	install -o postgres -m 644 /dev/null "$acks"
	client_start "$name-pgbench" pgbench -n -c 4 -j 2 -T 300 -P 5
	client_start "$name-flush" bash "$HERE/clients.sh" flush pgbench_accounts "$pause"
	client_start "$name-acks" bash "$HERE/clients.sh" acks "$acks"
	# read-ahead in flight all along: its claims evict (and so write) dirty
	# victims through core, and its IOs are cut mid-read
	[ "$kind" != nowal ] && client_start "$name-scan" bash "$HERE/clients.sh" scan pgbench_accounts
	sleep "$seconds" &    # (and wait: a signal's trap runs at once)
	NAP_PID=$!
	wait $NAP_PID
	NAP_PID=

	# all of it still running, right before the cut
	ctr=$(pg_uring_counters)
	local alive=1 g
	for g in "${CLIENT_PGIDS[@]}"; do [ "$(group_alive "$g")" -gt 0 ] || alive=0; done
	nacks=$(wc -l <"$acks")
	scenario_cut || { not_ok "$name: power cut and copy of the disk"; return; }

	note "$name: cut after $seconds s: $ctr; acknowledged commits: $nacks"
	check "$name: pgbench, the flush loop, the acks client (and the scan client) were all running at the cut" [ $alive -eq 1 ]
	[ "$kind" != nowal ] && check "$name: the scan client read ahead through the rings ($(counter readahead_blocks "$ctr") blocks)" \
		[ "$(counter readahead_blocks "$ctr")" -gt 0 ]
	[ "$(counter buffer_writes "$ctr")" -gt 0 ] && [ "$(counter drained_writes "$ctr")" -gt 0 ]
	verdict "$name: pages were written through pg_uring, with data fdatasyncs, before the cut"
	[ "$kind" = async ] && check "$name: page writes were linked behind WAL fsyncs ($(counter linked_writes "$ctr") linked writes)" \
		[ "$(counter linked_writes "$ctr")" -gt 0 ]
	# with a 1 GB pool nothing is evicted, no usage count drops to 0 and the
	# writer has nothing to do; with the flush loop pausing 3 s it has
	[ "$kind" = sync ] && [ "${pause%.*}" -ge 3 ] &&
		check "$name: the pg_uring writer wrote pages ($(counter writer_pages "$ctr"))" \
			[ "$(counter writer_pages "$ctr")" -gt 0 ]

	offline_check "$name" "$PGDATA_CRASH"
	if [ "$kind" = nowal ]; then
		if [ "$W_status" -ne 2 ] && [ "${W_pages_beyond:-0}" -gt 0 ]; then
			ok "negative control: the harness found ${W_pages_beyond} pages beyond the WAL end ${W_wal_end} (highest page LSN ${W_highest_page_lsn}) with page writes ignoring the WAL rule"
		else
			not_ok "negative control: the harness found no page beyond the WAL end, so it cannot catch an early write"
		fi
	else
		wal_before_data_ok
		check "$name: data pages written during the run reached the disk (${W_pages_newer_than_redo:-?} pages newer than REDO)" \
			[ "${W_pages_newer_than_redo:-0}" -gt 0 ]
	fi

	if [ "$kind" = nowal ]; then
		# recover with the normal build; the state is broken on purpose: report only
		sed -i '/dynamic_library_path/d' "$PGDATA_CRASH/power.conf"
		if server_start "$PGDATA_CRASH" "$RECLOG"; then
			RECOVERED=1
			bal=$(pgbench_balances 2>&1)
			note "nowal: recovery came up; balances (accounts branches tellers history): $bal; amcheck: $(amcheck_clean $PGBENCH_TABLES >/dev/null 2>&1 && echo clean || echo NOT clean) (expected to be broken, not a test)"
		else
			RECOVERED=0
			note "nowal: recovery failed (not a test: the variant breaks the WAL rule on purpose)"
		fi
		scenario_logs "$RUNLOG"
		log_clean "$S-recovery" "$RECLOG" >/dev/null || note "nowal: the recovery log has TRAP/PANIC lines (not a test)"
		if [ "$RECOVERED" -eq 1 ]; then server_stop "$PGDATA_CRASH"; fi
		disk_detach "$SDIR/crash"
		rm -f "$SDIR/crash.img"
		return
	fi

	scenario_recover
	if [ "$RECOVERED" -eq 1 ]; then
		psql_q "CREATE TABLE acked (id int); COPY acked FROM '$acks'" >/dev/null
		missing=$(psql_q "SELECT count(*) FROM acked a WHERE NOT EXISTS (SELECT 1 FROM acks k WHERE k.id = a.id)")
		local present extra
		present=$(psql_q "SELECT count(*) FROM acks")
		extra=$(psql_q "SELECT count(*) FROM acks k WHERE NOT EXISTS (SELECT 1 FROM acked a WHERE a.id = k.id)")
		if [ "$kind" = sync ]; then
			[ "$missing" = 0 ] && [ "$(wc -l <"$acks")" -gt 0 ]
			verdict "$name: every acknowledged commit survived ($(wc -l <"$acks") acknowledged ids checked, $missing missing; $present rows in acks, $extra committed but not yet acknowledged)"
		else
			note "$name: asynchronous commits: $(wc -l <"$acks") acknowledged, $missing lost (allowed with synchronous_commit = off), $present rows in acks"
		fi
		psql_q "DROP TABLE acked"
		bal=$(pgbench_balances)
		hist=$(psql_q "SELECT count(*) FROM pgbench_history")
		check "$name: pgbench balances agree (accounts branches tellers history: $bal; $hist pgbench transactions recovered)" balances_agree "$bal"
		check "$name: amcheck clean (verify_heapam, bt_index_check heapallindexed) on $PGBENCH_TABLES and their indexes" \
			amcheck_clean $PGBENCH_TABLES
	else
		not_ok "$name: checks after recovery (no server)"
	fi
	scenario_end
	scenario_logs
}

# ------------------------------------------- s3: flush(rel, sync => true) only
scenario_flush_rel() {
	local out written n sum ctl pre ctr
	scenario_begin s3 "shared_buffers = 256MB
$SLEEPY_WAL" || { not_ok "s3: server start on a fresh disk"; return; }
	psql_q "CHECKPOINT; CREATE TABLE t (id int, pad text); CREATE TABLE t_ctl (id int)" || not_ok "s3: setup"
	psql_q "INSERT INTO t SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, $S3_ROWS) g" ||
		not_ok "s3: insert of $S3_ROWS rows"
	pre=$(psql_q "SELECT 'core WAL flush ' || pg_current_wal_flush_lsn() || ', write ' || pg_current_wal_lsn() || ', insert ' || pg_current_wal_insert_lsn()")
	# the flush, then (the control, without any flush) 1000 rows committed
	# asynchronously, then at once the cut
	written=$(psql_q "SELECT pg_uring_flush('t', sync => true)")
	ctr=$(pg_uring_counters)
	psql_q "INSERT INTO t_ctl SELECT generate_series(1, 1000)"
	scenario_cut || { not_ok "s3: power cut and copy of the disk"; return; }
	note "s3: before the flush: $pre; pg_uring_flush('t', sync => true) wrote ${written:-?} pages; $ctr"
	check "s3: pg_uring_flush('t', sync => true) wrote pages (${written:-?})" [ "${written:-0}" -gt 0 ]

	offline_check s3 "$PGDATA_CRASH"
	wal_before_data_ok
	check "s3: the flushed pages reached the disk (${W_pages_newer_than_redo:-?} pages newer than REDO)" \
		[ "${W_pages_newer_than_redo:-0}" -gt 0 ]
	scenario_recover
	if [ "$RECOVERED" -eq 1 ]; then
		out=$(psql_q "SELECT count(*) || ' ' || coalesce(sum(id), 0) || ' ' || coalesce(sum(length(pad)), 0) FROM t")
		read -r n sum _ <<<"$out"
		[ "$out" = "$S3_ROWS $((S3_ROWS * (S3_ROWS + 1) / 2)) $((S3_ROWS * 96))" ]
		verdict "s3: all $S3_ROWS rows are there after recovery (rows checked: $n, sum of ids $sum, expected $((S3_ROWS * (S3_ROWS + 1) / 2)))"
		ctl=$(psql_q "SELECT count(*) FROM t_ctl")
		note "s3: control: 1000 rows committed asynchronously after the flush and never flushed: $ctl survived (0 expected unless the WAL writer flushed in between; not a test)"
		check "s3: amcheck clean on t" amcheck_clean t
	else
		not_ok "s3: checks after recovery (no server)"
	fi
	scenario_end
	scenario_logs
}

# -------------------------------------------------------- s4: pg_uring_wal_flush
# the WAL the server had written between core's flush pointer and L, read from
# the original (its page cache) right after the cut, to compare with the disk
save_written_wal() {
	local f off len tli seg
	tli=$(as_pg pg_controldata "$PGDATA_RUN" | sed -n "s/^Latest checkpoint's TimeLineID: *//p")
	seg=$(as_pg pg_controldata "$PGDATA_RUN" | sed -n "s/^Bytes per WAL segment: *//p")
	mkdir -p "$SDIR/wal-written"
	wal_pieces "$S4_FROM" "$S4_TO" "$tli" "$seg" >"$SDIR/wal-pieces.txt" || return 1
	while read -r f off len; do
		cp "$PGDATA_RUN/pg_wal/$f" "$SDIR/wal-written/$f" || return 1
	done <"$SDIR/wal-pieces.txt"
}
wal_on_disk_equal() {
	local f off len
	[ -s "$SDIR/wal-pieces.txt" ] || return 1
	while read -r f off len; do
		cmp -i "$off" -n "$len" "$SDIR/wal-written/$f" "$PGDATA_CRASH/pg_wal/$f" || return 1
	done <"$SDIR/wal-pieces.txt"
}
# s4_reads_up_to L: the first unreadable WAL (W_damage_at) is at or after L,
# or it is a record that begins before L right after the last complete one
s4_reads_up_to() {
	lsn_ge "${W_damage_at:-0/0}" "$1" && return 0
	[ -n "${W_damage_at:-}" ] && [ "${W_damage_at}" = "${W_wal_end:-}" ] && ! lsn_ge "$W_damage_at" "$1"
}

scenario_wal_flush() {
	local pre l post bytes
	scenario_begin s4 "shared_buffers = 256MB
$SLEEPY_WAL" || { not_ok "s4: server start on a fresh disk"; return; }
	psql_q "CHECKPOINT; CREATE TABLE w (id int, pad text)" || not_ok "s4: setup"
	psql_q "INSERT INTO w SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 100000) g" || not_ok "s4: insert"
	pre=$(psql_q "SELECT pg_current_wal_flush_lsn() || ' ' || pg_current_wal_lsn()")
	l=$(psql_q "SELECT pg_uring_wal_flush()")
	# more WAL after L, written or not, never flushed
	psql_q "INSERT INTO w SELECT g, 'after' FROM generate_series(1, 20000) g"
	post=$(psql_q "SELECT pg_current_wal_insert_lsn()")
	S4_FROM=${pre% *} S4_TO=$l CUT_HOOK=save_written_wal
	scenario_cut || { CUT_HOOK=; not_ok "s4: power cut and copy of the disk"; return; }
	CUT_HOOK=
	note "s4: before the call: core WAL flush pointer ${pre% *}, write pointer ${pre#* }; L = pg_uring_wal_flush() = ${l:-?}; insert pointer at the cut $post"
	check "s4: L is beyond what core had flushed (L ${l:-?} > core flush pointer ${pre% *}), so the check below means something" \
		lsn_gt "$l" "${pre% *}"

	bytes=$(( $(lsn_num "${l:-0/0}") - $(lsn_num "${pre% *}") ))
	check "s4: every WAL byte the server wrote up to L is on the disk ($bytes bytes from core's flush pointer ${pre% *} to L ${l:-?} compared)" \
		wal_on_disk_equal
	offline_check s4 "$PGDATA_CRASH"
	note "s4: L ${l:-?}; on the disk: valid WAL ends at ${W_wal_end:-?} (the end of the last complete record), first unreadable WAL at ${W_damage_at:-?}"
	# the record that crosses L is incomplete on the disk by design.  The
	# reader stops at L (the record's continuation is missing there) or, when
	# the record's header itself runs past L, at the record's start: then
	# the damage begins right where the last complete record ends, before L.
	# Every byte before L is on the disk (the check above), so a record that
	# starts before L and cannot be read is the one that crosses L.
	check "s4: the WAL on the disk reads up to L (first unreadable WAL ${W_damage_at:-?} >= L ${l:-?}, or the record that crosses L, beginning where the last complete record ends, ${W_wal_end:-?})" \
		s4_reads_up_to "${l:-FFFFFFFF/FFFFFFFF}"
	wal_before_data_ok
	scenario_recover
	scenario_end
	scenario_logs
}

# ----------------------------------- s5: a page re-dirtied while its write is staged
# pg_uring_flush('r') pauses with r's writes staged (pg_uring.test_pause =
# 'write_staged', the pause file in the data directory); an UPDATE of row 1
# commits meanwhile; the flush finishes.  The buffer must still be dirty,
# so the CHECKPOINT after it writes the new version: after the cut and
# recovery (from that checkpoint's REDO, after the UPDATE's WAL), row 1 has
# the new value.  Had the flush's completion cleaned the buffer, the
# checkpoint would have skipped it and the disk would hold the version the
# flush copied, with nothing left in the WAL to replay.
scenario_redirtied() {
	local before after flushed dirty v n pid
	scenario_begin s5 "shared_buffers = 256MB
synchronous_commit = on" || { not_ok "s5: server start on a fresh disk"; return; }
	psql_q "CREATE TABLE r (id int PRIMARY KEY, v text);
		INSERT INTO r SELECT g, 'initial' FROM generate_series(1, 100) g;
		CHECKPOINT;
		UPDATE r SET v = 'flushed'" || not_ok "s5: setup"
	install -o postgres -m 644 /dev/null "$PGDATA_RUN/pg_uring.pause"
	local off
	off=$(stat -c %s "$RUNLOG")
	client_start s5-flush psql -X -qAt -v ON_ERROR_STOP=1 \
		-c "SET pg_uring.test_pause = 'write_staged'" -c "SELECT 'flushed ' || pg_uring_flush('r')"
	pid=${CLIENT_PGIDS[-1]}
	for n in $(seq 1 300); do
		tail -c +$((off + 1)) "$RUNLOG" | grep -q 'pg_uring: test pause at write_staged' && break
		sleep 0.1
	done
	check "s5: the flush of r paused with its writes staged" \
		bash -c "tail -c +$((off + 1)) '$RUNLOG' | grep -q 'pg_uring: test pause at write_staged'"
	psql_q "UPDATE r SET v = 'after' WHERE id = 1" || not_ok "s5: the UPDATE while the write is staged"
	before=$(psql_q "SELECT pg_current_wal_insert_lsn()")
	rm -f "$PGDATA_RUN/pg_uring.pause"
	wait "$pid"
	flushed=$(sed -n 's/^flushed //p' "$LOGS/s5-flush.log")
	check "s5: pg_uring_flush('r') returned after the pause (${flushed:-nothing} pages written)" \
		[ "${flushed:-0}" -gt 0 ]
	dirty=$(psql_q "CREATE EXTENSION IF NOT EXISTS pg_buffercache;
		SELECT count(*) FROM pg_buffercache WHERE isdirty AND relforknumber = 0
		   AND relfilenode = pg_relation_filenode('r') AND relblocknumber = 0")
	check "s5: the page updated while its write was staged is still dirty after the flush" [ "$dirty" = 1 ]
	psql_q "CHECKPOINT" || not_ok "s5: CHECKPOINT after the flush"
	after=$(as_pg pg_controldata "$PGDATA_RUN" | sed -n "s/^Latest checkpoint's REDO location: *//p")
	scenario_cut || { not_ok "s5: power cut and copy of the disk"; return; }
	note "s5: WAL insert pointer right after the UPDATE $before; the checkpoint after the flush: REDO $after"
	check "s5: the checkpoint's REDO ($after) is past the UPDATE ($before), so recovery does not replay it" \
		lsn_ge "$after" "$before"
	offline_check s5 "$PGDATA_CRASH"
	wal_before_data_ok
	scenario_recover
	if [ "$RECOVERED" -eq 1 ]; then
		v=$(psql_q "SELECT v FROM r WHERE id = 1")
		n=$(psql_q "SELECT count(*) FROM r WHERE v = 'flushed'")
		check "s5: row 1 has the value updated while its write was staged ('${v:-?}')" [ "$v" = after ]
		check "s5: the other 99 rows have the flushed value ($n)" [ "$n" = 99 ]
		check "s5: amcheck clean on r" amcheck_clean r
	else
		not_ok "s5: checks after recovery (no server)"
	fi
	clients_stop
	scenario_end
	scenario_logs
}

# ------------------------------------------------------------------- the runs
S1_CONF="shared_buffers = 64MB
synchronous_commit = on
$COMMON_CONF"
S2_CONF="shared_buffers = 1GB
$SLEEPY_WAL
$COMMON_CONF"
# s1: the flush loop pauses 3 s, so the writer finds buffers to write too;
# s1-early: it pauses 0.2 s
# PGU_POWER_ONLY="s1-early s3" runs only those scenarios (for chasing one
# failure by hand; test.sh and CI always run all of them)
want() { [ -z "${PGU_POWER_ONLY:-}" ] || [[ " $PGU_POWER_ONLY " == *" $1 "* ]]; }
want s1 && scenario_pgbench s1 sync 40 3 "$S1_CONF"
want s1-early && scenario_pgbench s1-early sync 8 0.2 "$S1_CONF"
note "s1 done after $(($(date +%s) - T_START)) s"
want s2 && scenario_pgbench s2 async 40 0.02 "$S2_CONF"
want s2-early && scenario_pgbench s2-early async 8 0.02 "$S2_CONF"
note "s2 done after $(($(date +%s) - T_START)) s"

want s3 && scenario_flush_rel
want s4 && scenario_wal_flush
want s5 && scenario_redirtied
note "s3, s4 done after $(($(date +%s) - T_START)) s"

wait "$BUILD_PID"
BUILD_RC=$?
BUILD_PID=
if ! want nowal; then
	:
elif [ $BUILD_RC -eq 0 ] && [ -f "$NOWAL_LIB/pg_uring.so" ]; then
	ok "nowal: pg_uring built with PGU_TEST_BREAK_WAL_RULE=1 into $NOWAL_LIB (from HEAD)"
	scenario_pgbench nowal nowal 15 0.02 "$S2_CONF
dynamic_library_path = '$NOWAL_LIB:\$libdir'"
else
	not_ok "nowal: pg_uring built with PGU_TEST_BREAK_WAL_RULE=1 (see $LOGS/build-nowal.log)"
	not_ok "negative control: the harness found no page beyond the WAL end, so it cannot catch an early write"
fi

FINISHED=1
