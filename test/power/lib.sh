# test/power/lib.sh: the shared pieces of the power-loss harness (sourced by run.sh)
#
# A "disk" is a sparse image file attached to a loop device and mounted as
# ext4 (-o commit=600: the journal commits only when something fsyncs).  With
# periodic page-cache writeback off (sysctls below), the image holds exactly
# what was written to the block device: what was fsynced (plus what ext4's
# ordered mode pushed out with a journal commit, which is never less safe).
# The "power cut" is a SIGKILL of the server's whole process group followed at
# once by a copy of the image; whatever sat in the page cache is not in the
# copy.  The copy is then mounted (ext4 replays its journal) and examined.
#
# Everything lives under $ROOT; the state needed to clean up (loop devices,
# mounts, server and client process groups, saved sysctls) is kept in shell
# arrays, so call these functions in the main shell, never inside $( ).

# the PostgreSQL under test: PG_CONFIG's (Debian's 15 by default; 17 in the
# chroot of scripts/pg17-chroot.sh)
PGBIN=$("${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}" --bindir)
PGMAJOR=$("$PGBIN/pg_config" --version | sed 's/^PostgreSQL \([0-9]*\).*/\1/')
ROOT=/var/tmp/pgu-power
PORT=57400
SOCK=$ROOT/sock
LOGS=$ROOT/logs
IMG_SIZE=3G

LOOPS=()          # loop devices we attached
MOUNTS=()         # mount points we mounted
SERVER_PGIDS=()   # process groups of servers we started (pg_ctl setsid()s the postmaster)
CLIENT_PGIDS=()   # process groups of client loops we started
SYSCTL_SAVED=()   # "name=value" to restore

# ---------------------------------------------------------------- TAP ----
T_N=0
T_FAIL=0
# TAP goes to fd 3 (the caller's stdout) and into the harness log; all other
# output of the harness goes to the log only
tap() { echo "$*" >&3; echo "TAP: $*"; }
ok() { T_N=$((T_N + 1)); tap "ok $T_N - $*"; }
not_ok() { T_N=$((T_N + 1)); T_FAIL=$((T_FAIL + 1)); tap "not ok $T_N - $*"; }
# check DESCRIPTION COMMAND...: ok if the command succeeds
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
# COMMANDS; verdict DESCRIPTION: ok if the last command before it succeeded
verdict() { local rc=$?; if [ $rc -eq 0 ]; then ok "$*"; else not_ok "$*"; fi; }
note() { tap "# $*"; }
say() { echo "[$(date +%T)] $*"; }

# ---------------------------------------------------- running as postgres ----
# every server and client runs as postgres, from a directory it can read
as_pg() {
	(cd "$ROOT" && runuser -u postgres -- env PGHOST="$SOCK" PGPORT="$PORT" PGDATABASE=postgres \
		PATH="$PGBIN:/usr/bin:/bin" "$@")
}
# psql_q SQL: one value per line, errors are fatal to the call
psql_q() { as_pg psql -X -qAt -v ON_ERROR_STOP=1 -c "$1"; }

# ------------------------------------------------------------- sysctls ----
SYSCTLS="dirty_writeback_centisecs dirty_expire_centisecs dirty_background_ratio dirty_ratio"
sysctl_save() {
	local s
	for s in $SYSCTLS; do SYSCTL_SAVED+=("$s=$(cat /proc/sys/vm/$s)"); done
	say "saved sysctls: ${SYSCTL_SAVED[*]}"
}
# no periodic writeback: only fsync (or memory pressure, not here) writes dirty pages
writeback_off() {
	echo 0 >/proc/sys/vm/dirty_writeback_centisecs
	echo 360000 >/proc/sys/vm/dirty_expire_centisecs
	echo 90 >/proc/sys/vm/dirty_background_ratio
	echo 95 >/proc/sys/vm/dirty_ratio
	say "periodic writeback off"
}
sysctl_restore() {
	local kv
	for kv in "${SYSCTL_SAVED[@]}"; do echo "${kv#*=}" >"/proc/sys/vm/${kv%%=*}"; done
	say "sysctls restored: ${SYSCTL_SAVED[*]}"
}

# ----------------------------------------------------------- the disks ----
# new_image FILE: a sparse image with an empty ext4 on it
new_image() {
	rm -f "$1"
	truncate -s "$IMG_SIZE" "$1"
	mkfs.ext4 -q -F "$1"
}
# disk_attach IMAGE MOUNTPOINT: loop device + mount (the journal is replayed here)
disk_attach() {
	local img=$1 mnt=$2 dev
	dev=$(losetup --find --show "$img") || return 1
	LOOPS+=("$dev")
	mkdir -p "$mnt"
	mount -t ext4 -o commit=600 "$dev" "$mnt" || return 1
	MOUNTS+=("$mnt")
	chown postgres: "$mnt"
	say "attached $img as $dev on $mnt"
}
_forget() { # _forget ARRAYNAME VALUE
	local -n arr=$1
	local i
	for i in "${!arr[@]}"; do [ "${arr[$i]}" = "$2" ] && unset 'arr[i]'; done
	arr=("${arr[@]}")
}
# disk_detach MOUNTPOINT: unmount and detach its loop device
disk_detach() {
	local mnt=$1 dev
	dev=$(findmnt -n -o SOURCE --target "$mnt" 2>/dev/null)
	umount "$mnt" && _forget MOUNTS "$mnt"
	if [ -n "$dev" ] && [ "${dev#/dev/loop}" != "$dev" ]; then
		losetup -d "$dev" && _forget LOOPS "$dev"
	fi
	say "detached $mnt ($dev)"
}

# --------------------------------------------------------- the servers ----
# server_start PGDATA LOGFILE: pg_ctl -w start (runs recovery if needed)
server_start() {
	local pgdata=$1 logfile=$2 pgid
	as_pg pg_ctl -w -t 600 -D "$pgdata" -l "$logfile" start || return 1
	pgid=$(ps -o pgid= -p "$(head -1 "$pgdata/postmaster.pid")" | tr -d ' ')
	SERVER_PGIDS+=("$pgid")
	say "server on $pgdata started, process group $pgid"
}
server_stop() {
	local pgdata=$1 pgid
	pgid=$(ps -o pgid= -p "$(head -1 "$pgdata/postmaster.pid" 2>/dev/null)" 2>/dev/null | tr -d ' ')
	as_pg pg_ctl -w -t 300 -D "$pgdata" -m fast stop || return 1
	[ -n "$pgid" ] && _forget SERVER_PGIDS "$pgid"
	return 0
}
# group_alive PGID: how many threads of the group are still running (not zombies):
# io_uring's io-wq workers are threads, and a process whose worker is still in
# the middle of a write or fsync is not gone yet
group_alive() {
	ps -eL -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/' | wc -l
}
kill_group() {
	local pgid=$1 i
	kill -KILL -- "-$pgid" 2>/dev/null
	for i in $(seq 1 500); do
		[ "$(group_alive "$pgid")" -eq 0 ] && return 0
		sleep 0.01
	done
	say "process group $pgid still has threads running after 5 s"
	return 1
}

# power_cut PGDATA IMAGE COPY: SIGKILL every process of the server at once, then
# copy the image: the copy is the disk after the power loss
power_cut() {
	local pgdata=$1 img=$2 copy=$3 pgid
	pgid=$(ps -o pgid= -p "$(head -1 "$pgdata/postmaster.pid")" | tr -d ' ')
	[ -n "$pgid" ] || { say "power_cut: no server on $pgdata"; return 1; }
	local t0 t1 t2
	t0=$(date +%s%N)
	kill_group "$pgid" || return 1
	t1=$(date +%s%N)
	_forget SERVER_PGIDS "$pgid"
	cp --sparse=always "$img" "$copy" || return 1
	t2=$(date +%s%N)
	say "power cut: process group $pgid killed (gone in $(((t1 - t0) / 1000000)) ms), $img copied to $copy in $(((t2 - t1) / 1000000)) ms ($(du -h "$copy" | cut -f1) used)"
	group_reaped "$pgid"
}
# group_reaped PGID: wait (at most 60 s) until no process of the group is left,
# not even a zombie.  The killed postmaster is an orphan that PID 1 reaps when
# it gets to it (a second or two on these machines); until then its PID
# exists, the copy's postmaster.pid names it, and PostgreSQL refuses to start
# ("lock file already exists"), which a real power cut never causes.
group_reaped() {
	local i
	for i in $(seq 1 600); do
		if [ "$(ps -e -o pgid= | awk -v g="$1" '$1 == g' | wc -l)" -eq 0 ]; then
			say "process group $1 reaped after $((i - 1))00 ms"
			return 0
		fi
		sleep 0.1
	done
	say "process group $1 still has processes (zombies?) after 60 s: $(ps -e -o pid=,pgid=,stat=,comm= | awk -v g="$1" '$2 == g' | tr '\n' ';')"
	return 0
}

# client_start NAME COMMAND...: a client loop as postgres in a session of its
# own (so its whole process tree can be killed), output to $LOGS/NAME.log
client_start() {
	local name=$1; shift
	setsid runuser -u postgres -- env PGHOST="$SOCK" PGPORT="$PORT" PGDATABASE=postgres \
		PATH="$PGBIN:/usr/bin:/bin" "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
	CLIENT_PGIDS+=("$!")
	say "client $name started: pid/pgid $!"
}
clients_stop() {
	local g
	for g in "${CLIENT_PGIDS[@]}"; do kill -KILL -- "-$g" 2>/dev/null; kill -KILL "$g" 2>/dev/null; done
	for g in "${CLIENT_PGIDS[@]}"; do wait "$g" 2>/dev/null; done
	CLIENT_PGIDS=()
}

# ------------------------------------------------------------- cleanup ----
# on exit, also on failure or Ctrl-C: servers, clients, mounts, loops, sysctls
cleanup() {
	local i
	trap - EXIT INT TERM
	clients_stop
	# (a server still tracked: its postmaster leads the group and runs on a data directory of ours)
	for i in "${SERVER_PGIDS[@]}"; do
		case "$(ps -o args= -p "$i" 2>/dev/null)" in *"$ROOT/"*) kill_group "$i" ;; esac
	done
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount "${MOUNTS[$i]}" || umount -l "${MOUNTS[$i]}"; done
	for i in "${LOOPS[@]}"; do losetup -d "$i"; done
	[ ${#SYSCTL_SAVED[@]} -gt 0 ] && sysctl_restore
	rm -f "$ROOT"/*.img "$ROOT"/*/*.img
	say "cleaned up"
}
# leftovers of an earlier run that died without cleaning up: our mounts, our
# loop devices (only those backed by files under $ROOT), then the directory
clean_root() {
	local m d
	for m in $(findmnt -rn -o TARGET | grep "^$ROOT/" | sort -r); do
		for d in $(find "$m" -maxdepth 2 -name postmaster.pid 2>/dev/null); do
			as_pg pg_ctl -D "$(dirname "$d")" -m immediate stop >/dev/null 2>&1
		done
		umount "$m" || umount -l "$m"
	done
	losetup -l -n -O NAME,BACK-FILE | awk -v r="$ROOT/" 'index($2, r) == 1 {print $1}' |
		while read -r d; do losetup -d "$d"; done
	rm -rf "$ROOT"
}

# -------------------------------------------------- the offline check ----
# offline_check NAME PGDATA: the WAL-before-data check of a copy, before any
# server runs on it; its figures land in the shell variables W_* (W_pages_checked, ...)
offline_check() {
	local name=$1 pgdata=$2 out=$LOGS/$1-offline.txt line k v
	perl "$HERE/check_wal_before_data.pl" "$pgdata" "$PGBIN" >"$out" 2>&1
	W_status=$?
	for k in redo timeline damage_at wal_end wal_end_source last_record_end pages_checked highest_page_lsn highest_page \
		pages_beyond pages_newer_than_redo waldump_error error cluster_state; do
		unset "W_$k"
	done
	while IFS= read -r line; do
		case "$line" in
		beyond:*) ;;
		*=*) k=${line%%=*}; v=${line#*=}; [[ $k =~ ^[a-z_]+$ ]] && printf -v "W_$k" '%s' "$v" ;;
		esac
	done <"$out"
	cat "$out"
	note "$name: offline: REDO ${W_redo:-?}, WAL end ${W_wal_end:-?} (${W_wal_end_source:-?}), pages checked ${W_pages_checked:-?}, highest page LSN ${W_highest_page_lsn:-?} (${W_highest_page:-?}), pages newer than REDO ${W_pages_newer_than_redo:-?}, pages beyond the WAL end ${W_pages_beyond:-?}"
	[ -n "${W_error:-}" ] && note "$name: offline check error: $W_error"
	grep '^beyond:' "$out" | head -5 | while IFS= read -r line; do note "$name:   $line"; done
	return 0
}

# lsn_ge A B, lsn_gt A B: compare LSNs written X/Y
lsn_num() { [[ $1 =~ ^[0-9A-Fa-f]+/[0-9A-Fa-f]+$ ]] && echo $(( (16#${1%/*} << 32) | 16#${1#*/} )); }
lsn_ge() { local a b; a=$(lsn_num "$1") && b=$(lsn_num "$2") && [ "$a" -ge "$b" ]; }
lsn_gt() { local a b; a=$(lsn_num "$1") && b=$(lsn_num "$2") && [ "$a" -gt "$b" ]; }

# wal_pieces FROM TO TLI SEGSIZE: "segment-file offset length" for each
# WAL segment's share of the LSN range [FROM, TO)
wal_pieces() {
	local from to tli=$3 seg=$4 pos start end segno per_id
	from=$(lsn_num "$1") && to=$(lsn_num "$2") || return 1
	per_id=$((4294967296 / seg))
	pos=$from
	while [ "$pos" -lt "$to" ]; do
		segno=$((pos / seg))
		start=$((segno * seg))
		end=$((start + seg))
		[ "$end" -gt "$to" ] && end=$to
		printf '%08X%08X%08X %d %d\n' "$tli" $((segno / per_id)) $((segno % per_id)) $((pos - start)) $((end - pos))
		pos=$end
	done
}

# --------------------------------------------------------------- checks ----
# log_clean NAME LOGFILE...: no TRAP, PANIC or "terminated by signal" (the cut
# itself is never logged: the postmaster dies with everyone else); and, except
# in the negative control, no sign of the PGU_TEST_BREAK_WAL_RULE build
log_clean() {
	local name=$1; shift
	local hits re='TRAP:|PANIC|terminated by signal'
	[ "$name" = nowal ] || re="$re|PGU_TEST_BREAK_WAL_RULE"
	hits=$(grep -h -E "$re" "$@" 2>/dev/null | head -5)
	if [ -z "$hits" ]; then
		return 0
	fi
	echo "$hits" | while IFS= read -r l; do note "$name: log: $l"; done
	return 1
}

# amcheck_clean TABLE...: verify_heapam of each table returns no row and
# bt_index_check(i, true) passes for each of its btree indexes
amcheck_clean() {
	local t list
	list=$(printf "'%s'," "$@")
	list=${list%,}
	psql_q "
	DO \$\$
	DECLARE
		r record;
		n bigint;
		bad bigint := 0;
	BEGIN
		FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c
				WHERE c.relname IN ($list) AND c.relkind = 'r' LOOP
			SELECT count(*) INTO n FROM verify_heapam(r.rel);
			IF n > 0 THEN RAISE WARNING 'verify_heapam(%): % rows', r.rel, n; bad := bad + n; END IF;
		END LOOP;
		FOR r IN SELECT i.indexrelid::regclass AS idx FROM pg_index i
				JOIN pg_class c ON c.oid = i.indrelid
				JOIN pg_class ic ON ic.oid = i.indexrelid
				JOIN pg_am a ON a.oid = ic.relam
				WHERE c.relname IN ($list) AND a.amname = 'btree' LOOP
			PERFORM bt_index_check(r.idx, true);
		END LOOP;
		IF bad > 0 THEN RAISE EXCEPTION 'verify_heapam found % problems', bad; END IF;
	END
	\$\$;" 2>&1
}

# pgbench_balances: prints "accounts branches tellers history" sums
pgbench_balances() {
	psql_q "SELECT (SELECT sum(abalance) FROM pgbench_accounts) || ' ' ||
		(SELECT sum(bbalance) FROM pgbench_branches) || ' ' ||
		(SELECT sum(tbalance) FROM pgbench_tellers) || ' ' ||
		(SELECT coalesce(sum(delta), 0) FROM pgbench_history)"
}
balances_agree() { local a b c d; read -r a b c d <<<"$1"; [ -n "$a" ] && [ "$a" = "$b" ] && [ "$b" = "$c" ] && [ "$c" = "$d" ]; }

# pg_uring_counters: buffer writes (and blocks read ahead) through the rings so far, as "name=value" pairs
pg_uring_counters() {
	psql_q "SELECT 'buffer_writes=' || sum(wb.writes) || ' linked_writes=' || sum(w.linked_writes) ||
		' drained_writes=' || sum(wb.fsyncs) || ' writer_pages=' || sum(w.writer_pages) ||
		' wal_flushes=' || sum(wal.fsyncs) || ' writes_deferred=' || sum(w.writes_deferred) ||
		' readahead_blocks=' || sum(ra.reads)
		FROM pg_uring_stat_writeback w
		JOIN pg_uring_stat_io wb ON wb.ring = w.ring AND wb.io_kind = 'write-back'
		JOIN pg_uring_stat_io wal ON wal.ring = w.ring AND wal.io_kind = 'wal fsync'
		JOIN pg_uring_stat_io ra ON ra.ring = w.ring AND ra.io_kind = 'read-ahead'"
}
counter() { sed -n "s/.*\\b$1=\\([0-9]*\\).*/\\1/p" <<<"$2"; }
