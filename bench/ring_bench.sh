#!/usr/bin/env bash
# bench/ring_bench.sh - submit-to-complete latency and throughput of pg_uring.
#
# For every pg_uring.rings value (default 1 and 4) it restarts a throwaway
# PostgreSQL 15 cluster, and for every combination of op (nop, 8 kB read),
# depth (IOs each backend keeps in flight: 1 and 16) and number of
# concurrent backends (1, 4, 16) it runs pg_uring_bench() in that many
# sessions at once (pgbench -c N -t 1), and prints one Markdown table.
# Every case runs BENCH_ROUNDS times, the rounds alternating the ring
# counts; the table shows the median run of each case.
#
# Usage, from a checkout, after the extension is installed
# (bash scripts/build.sh as root):
#
#     sudo bash bench/ring_bench.sh        # as root: the server runs as postgres
#     bash bench/ring_bench.sh             # as postgres (or any non-root user)
#
# The report also goes to bench/results/ring_bench-<date>.txt, the raw
# per-session rows to ring_bench-<date>.csv next to it.
#
# Knobs (environment), with their defaults:
#   BENCH_RINGS="1 4"  BENCH_BACKENDS="1 4 16"  BENCH_OPS="nop read"
#   BENCH_DEPTHS="1 16"
#   BENCH_SECS=1.5          target seconds per run; IOs per backend are
#                           calibrated once per (op, depth, backends)
#   BENCH_ROUNDS=3          runs per case
#   BENCH_DATA_MB=96        size of the file the reads hit
#   BENCH_CASE_TIMEOUT=120  seconds before a run is declared hung
#   PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
set -euo pipefail
shopt -s inherit_errexit

BENCH_RINGS=${BENCH_RINGS:-"1 4"}
BENCH_BACKENDS=${BENCH_BACKENDS:-"1 4 16"}
BENCH_OPS=${BENCH_OPS:-"nop read"}
BENCH_DEPTHS=${BENCH_DEPTHS:-"1 16"}
BENCH_SECS=${BENCH_SECS:-1.5}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_DATA_MB=${BENCH_DATA_MB:-96}
BENCH_CASE_TIMEOUT=${BENCH_CASE_TIMEOUT:-120}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
export BENCH_RINGS BENCH_BACKENDS BENCH_OPS BENCH_DEPTHS BENCH_SECS BENCH_ROUNDS \
	BENCH_DATA_MB BENCH_CASE_TIMEOUT PG_CONFIG

PORT=5432					# the socket lives in our private temp dir

log() { echo "[ring_bench $(date +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

pg_bindir() {
	local b=""
	if [ -x "$PG_CONFIG" ] || command -v "$PG_CONFIG" >/dev/null 2>&1; then
		b=$("$PG_CONFIG" --bindir)
	fi
	[ -n "$b" ] || b=/usr/lib/postgresql/15/bin
	echo "$b"
}

# sha256 (first 12 hex digits) and mtime of the installed pg_uring.so
so_path() {
	local d=""
	if [ -x "$PG_CONFIG" ] || command -v "$PG_CONFIG" >/dev/null 2>&1; then
		d=$("$PG_CONFIG" --pkglibdir)
	fi
	echo "${d:-/usr/lib/postgresql/15/lib}/pg_uring.so"
}
so_id() {
	local f
	f=$(so_path)
	[ -f "$f" ] || { echo "missing"; return; }
	echo "sha256 $(sha256sum "$f" | cut -c1-12), installed $(date -u -r "$f" '+%Y-%m-%d %H:%M:%S UTC')"
}

# ---------------------------------------------------------------------------
# Inner part: runs as the server's OS user, inside the temp dir $1.
# Progress goes to stderr; the report (header and table) to stdout.
# ---------------------------------------------------------------------------
inner() {
	local work=$1
	local data=$work/data
	local bindir
	bindir=$(pg_bindir)

	# our connection settings only
	unset PGSERVICE PGSERVICEFILE PGOPTIONS PGPASSWORD PGPASSFILE PGSSLMODE \
		PGAPPNAME PGCONNECT_TIMEOUT PGTARGETSESSIONATTRS
	export PGHOST=$work PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres

	q() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -At -F '|' "$@"; }

	server_start() {
		"$bindir/pg_ctl" -D "$data" -l "$work/server.log" -w -t 60 start >/dev/null ||
			{ tail -n 30 "$work/server.log" >&2; die "server did not start"; }
	}
	server_stop() {
		"$bindir/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null
	}

	trap 'exit 143' TERM
	trap 'exit 130' INT
	local t_begin so_begin
	t_begin=$(date +%s)
	so_begin=$(so_id)

	log "initdb in $data"
	"$bindir/initdb" -k -A trust -U postgres --no-sync -D "$data" >"$work/initdb.log" 2>&1 ||
		{ cat "$work/initdb.log" >&2; die "initdb failed"; }
	cat >>"$data/postgresql.conf" <<CONF

# ring_bench
shared_preload_libraries = 'pg_uring'
listen_addresses = ''
unix_socket_directories = '$work'
port = $PORT
max_connections = 50
fsync = off
include_if_exists = 'ring_bench_rings.conf'
CONF
	echo "pg_uring.rings = 1" >"$data/ring_bench_rings.conf"
	server_start

	# extension, data file, bookkeeping
	q -c "CREATE EXTENSION pg_uring" >/dev/null ||
		die "CREATE EXTENSION pg_uring failed: is it installed? (bash scripts/build.sh as root)"
	local rows=$((BENCH_DATA_MB * 128 * 4))	# 4 rows of ~1.9 kB per 8 kB block
	log "creating the ${BENCH_DATA_MB} MB data file"
	q <<SQL
CREATE UNLOGGED TABLE ring_bench_data (filler text);
ALTER TABLE ring_bench_data ALTER COLUMN filler SET STORAGE PLAIN;
INSERT INTO ring_bench_data SELECT repeat('x', 1900) FROM generate_series(1, $rows);
CHECKPOINT;
CREATE TABLE ring_bench_case (case_id int PRIMARY KEY, round int, rings int, backends int,
	op text, depth int, ios_per_backend int8);
CREATE TABLE ring_bench_result (case_id int, client int, pid int,
	t0 timestamptz, t1 timestamptz, op text, depth int, ios int8,
	seconds float8, iops float8, mean_us float8, p50_us float8, p99_us float8,
	max_us float8);
-- one session's share of a case: timestamps around the call give wall time
CREATE FUNCTION ring_bench_run(p_case int, p_client int, p_op text,
	p_ios int8, p_depth int, p_path text) RETURNS void
LANGUAGE plpgsql AS \$\$
DECLARE
	t0 timestamptz;
	r record;
BEGIN
	t0 := clock_timestamp();
	SELECT * INTO r FROM pg_uring_bench(p_op, p_ios, p_depth, p_path);
	INSERT INTO ring_bench_result VALUES (p_case, p_client, pg_backend_pid(),
		t0, clock_timestamp(), r.op, r.depth, r.ios, r.seconds, r.iops,
		r.mean_us, r.p50_us, r.p99_us, r.max_us);
END \$\$;
SQL
	local relpath relbytes
	relpath=$(q -c "SELECT pg_relation_filepath('ring_bench_data')")
	relbytes=$(q -c "SELECT pg_relation_size('ring_bench_data')")
	[ "$relbytes" -lt $((1024 * 1024 * 1024)) ] || die "data file over one 1 GB segment"
	[ -f "$data/$relpath" ] || die "data file $data/$relpath not found"

	# machine context
	local pgver cpu memmb uring_disabled liburing
	pgver=$(q -c "SELECT version()")
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
	memmb=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024}' /proc/meminfo)
	uring_disabled=$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo "n/a (no such sysctl)")
	liburing=$(dpkg-query -W -f='${Version}' liburing2 2>/dev/null || echo unknown)
	local settings
	settings=$(q -c "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ', ' ORDER BY name)
		FROM pg_settings WHERE name IN ('pg_uring.queue_depth', 'pg_uring.max_ios',
		'pg_uring.reaper', 'pg_uring.reaper_delay', 'data_checksums', 'shared_buffers')")

	echo "pg_uring ring benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo
	echo "- kernel:              $(uname -r) ($(uname -m))"
	echo "- CPUs (nproc):        $(nproc)  [$cpu]"
	echo "- memory:              ${memmb} MB"
	echo "- PostgreSQL:          $pgver"
	echo "- io_uring_disabled:   $uring_disabled"
	echo "- liburing:            $liburing"
	echo "- pg_uring:            $(so_path): $so_begin"
	echo "                       checkout: ${BENCH_GIT_DESC:-unknown}"
	echo "- settings:            $settings"
	echo "- read file:           $relpath, $((relbytes / 1024 / 1024)) MB ($((relbytes / 8192)) blocks),"
	echo "                       8 kB reads at random block offsets, served from the OS page cache"
	echo "                       (file read once before measuring; no device IO is measured)"
	echo "- runs:                ~${BENCH_SECS} s each, ${BENCH_ROUNDS} per case (IOs per backend calibrated once per case)"
	echo "- load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo

	local case_seq=0 cal_seq=0
	local rowsfile=$work/rows.tsv notesfile=$work/notes.txt
	: >"$rowsfile"
	: >"$notesfile"

	# Runs one case: N sessions started together by pgbench, each calling
	# pg_uring_bench once.  Sets WALL (seconds, first start to last end).
	run_sessions() {
		local id=$1 n=$2 op=$3 depth=$4 ios=$5
		local path=NULL
		[ "$op" = read ] && path="'$relpath'"
		echo "SELECT ring_bench_run($id, :client_id, '$op', $ios, $depth, $path);" >"$work/case.sql"
		local rc=0
		timeout "$BENCH_CASE_TIMEOUT" "$bindir/pgbench" -n -c "$n" -j 1 -t 1 \
			-f "$work/case.sql" >"$work/pgbench.log" 2>&1 || rc=$?
		if [ "$rc" -eq 124 ]; then
			{
				echo
				echo "CASE HUNG: $n backend(s), op=$op depth=$depth ios=$ios did not finish in ${BENCH_CASE_TIMEOUT} s"
				echo "-- pg_stat_activity"
				q -c "SELECT pid, state, wait_event_type, wait_event, left(query, 80) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()" || true
				echo "-- pg_uring_ios (not free)"
				q -c "SELECT * FROM pg_uring_ios WHERE state <> 'free'" || true
				echo "-- pg_uring_stats"
				q -c "SELECT * FROM pg_uring_stats" || true
			} >&2
			die "case hung (see above)"
		elif [ "$rc" -ne 0 ]; then
			cat "$work/pgbench.log" >&2
			tail -n 20 "$work/server.log" >&2
			die "pgbench failed (rc $rc) for $n backend(s), op=$op depth=$depth"
		fi
		# One query for the outcome: session count, wall seconds, then the
		# aggregates (IOPS over wall time, IO-weighted mean, median of the
		# sessions' p50s, worst session's p99) and the ring counters.
		local res
		res=$(q -c "WITH r AS (SELECT count(*) AS sessions,
					extract(epoch FROM max(t1) - min(t0)) AS wall,
					round(extract(epoch FROM max(t1) - min(t0))::numeric, 2) AS wall_s,
					round(sum(ios) / extract(epoch FROM max(t1) - min(t0))) AS iops,
					round((sum(mean_us * ios) / sum(ios))::numeric, 1) AS mean,
					round(percentile_cont(0.5) WITHIN GROUP (ORDER BY p50_us)::numeric) AS p50,
					round(max(p99_us)::numeric) AS p99,
					round(max(max_us)::numeric) AS max,
					round(1000 * extract(epoch FROM max(t0) - min(t0))::numeric, 1) AS skew_ms,
					sum(ios) AS total
				FROM ring_bench_result WHERE case_id = $id),
			s AS (SELECT count(*) FILTER (WHERE submitted > 0) AS busy, sum(completed),
					sum(reaped_by_issuer), sum(reaped_by_other), sum(reaped_by_reaper),
					sum(submit_lock_waits), sum(kernel_waits), sum(errors)
				FROM pg_uring_stats)
			SELECT * FROM r, s")
		local got=${res%%|*}
		[ "$got" = "$n" ] || die "case $id: expected $n session results, got $got"
		res=${res#*|}
		WALL=${res%%|*}
		RESULT=${res#*|}
	}

	# IOs per backend for ~BENCH_SECS: grow a short run until it takes
	# >= 0.5 s, then scale; 2 significant digits.
	calibrate() {
		local n=$1 op=$2 depth=$3
		local ios=1000 attempt
		for attempt in 1 2 3 4 5 6 7 8; do
			cal_seq=$((cal_seq + 1))
			run_sessions $((-cal_seq)) "$n" "$op" "$depth" "$ios"
			if awk -v w="$WALL" 'BEGIN { exit !(w >= 0.5) }'; then
				break
			fi
			ios=$(awk -v i="$ios" -v w="$WALL" 'BEGIN {
				f = (w > 0) ? 0.7 / w : 20; if (f > 20) f = 20; if (f < 2) f = 2;
				printf "%d", i * f }')
		done
		q -c "DELETE FROM ring_bench_result WHERE case_id < 0"
		awk -v i="$ios" -v w="$WALL" -v t="$BENCH_SECS" 'BEGIN {
			x = i * t / w; if (x < 100) x = 100; if (x > 10000000) x = 10000000;
			e = 1; while (x >= 100) { x /= 10; e *= 10 }
			printf "%d", int(x + 0.5) * e }'
	}

	# IOs per backend, per (op, depth, backends): calibrated once, in the
	# first round with the first ring count, so every ring count and round
	# does the same work.
	declare -A ios_for=()
	local round rings n op depth ios key
	for round in $(seq 1 "$BENCH_ROUNDS"); do
		for rings in $BENCH_RINGS; do
			log "round $round/$BENCH_ROUNDS: restarting with pg_uring.rings = $rings"
			server_stop
			echo "pg_uring.rings = $rings" >"$data/ring_bench_rings.conf"
			server_start
			if [ "$(so_id)" != "$so_begin" ]; then
				echo "WARNING: pg_uring.so was reinstalled during the run (before round $round, rings=$rings): $(so_id); the runs mix builds" >>"$notesfile"
				log "WARNING: pg_uring.so changed since the start of the run"
			fi
			local shown mode nr
			shown=$(q -c "SHOW pg_uring.rings")
			[ "$shown" = "$rings" ] || die "pg_uring.rings is $shown, wanted $rings"
			IFS='|' read -r nr mode < <(q -c "SELECT count(*), string_agg(DISTINCT mode, ',') FROM pg_uring_stats")
			[ "$nr" = "$rings" ] || die "pg_uring_stats shows $nr rings, wanted $rings"
			[ "$mode" = io_uring ] || log "WARNING: rings run in mode '$mode', not io_uring"
			# page cache: read the file once
			cat "$data/$relpath" >/dev/null
			if [ "$round" -eq 1 ]; then
				echo "rings=$rings: ring mode $mode" >>"$notesfile"
				if command -v fincore >/dev/null 2>&1; then
					echo "rings=$rings: page cache before the cases: $(fincore -n -o RES,SIZE "$data/$relpath" 2>/dev/null | awk '{print $1 " of " $2 " resident"}')" >>"$notesfile"
				fi
			fi

			for depth in $BENCH_DEPTHS; do
				for op in $BENCH_OPS; do
					for n in $BENCH_BACKENDS; do
						key="$op|$depth|$n"
						if [ -z "${ios_for[$key]:-}" ]; then
							log "calibrating backends=$n op=$op depth=$depth"
							ios_for[$key]=$(calibrate "$n" "$op" "$depth")
						fi
						ios=${ios_for[$key]}
						case_seq=$((case_seq + 1))
						log "round $round rings=$rings backends=$n op=$op depth=$depth ios/backend=$ios"
						q -c "INSERT INTO ring_bench_case VALUES ($case_seq, $round, $rings, $n, '$op', $depth, $ios); SELECT pg_uring_reset_stats()" >/dev/null
						run_sessions "$case_seq" "$n" "$op" "$depth" "$ios"
						printf '%s|%s|%s|%s|%s|%s|%s\n' "$op" "$depth" "$n" "$rings" "$ios" "$round" "$RESULT" >>"$rowsfile"
					done
				done
			done
		done
	done
	# raw per-session rows for whoever wants more than the table
	q -c "\\copy (SELECT c.round, c.rings, c.backends, c.op, c.depth, r.client, r.pid, r.t0, r.t1, r.ios, r.seconds, r.iops, r.mean_us, r.p50_us, r.p99_us, r.max_us FROM ring_bench_result r JOIN ring_bench_case c USING (case_id) ORDER BY c.case_id, r.client) TO '$work/sessions.csv' WITH (FORMAT csv, HEADER)"
	server_stop

	# ---- report ----
	# rows.tsv fields: 1 op, 2 depth, 3 backends, 4 rings, 5 ios/backend,
	# 6 round, 7 wall, 8 iops, 9 mean, 10 p50, 11 p99, 12 max, 13 skew ms,
	# 14 total ios, 15 busy rings, 16 completed, 17 by issuer, 18 by other,
	# 19 by reaper, 20 submit lock waits, 21 kernel waits, 22 errors
	# One line per case: the round with the median IOPS (the lower middle
	# one for an even count), with the IOPS spread over all rounds.
	echo "| op   | depth | backends | rings | IOs/backend | wall s | total IOPS | IOPS spread | mean µs | p50 µs | p99 µs | reaped_by_other | reaped_by_reaper | submit_lock_waits | busy rings |"
	echo "|------|------:|---------:|------:|------------:|-------:|-----------:|------------:|--------:|-------:|-------:|----------------:|-----------------:|------------------:|-----------:|"
	awk -F'|' '{ o = ($1 == "nop") ? 0 : 1; print $2 "|" o "|" $0 }' "$rowsfile" |
		sort -t'|' -k1,1n -k2,2n -k5,5n -k6,6n -k10,10n | cut -d'|' -f3- |
		awk -F'|' '
		function flush(   m, r, f, spread) {
			if (cnt == 0) return
			m = int((cnt + 1) / 2)
			split(row[m], f, "|")
			spread = (cnt > 1 && f[8] > 0) ? sprintf("%.0f%%", 100 * (row_iops[cnt] - row_iops[1]) / f[8]) : "-"
			printf "| %-4s | %5s | %8s | %5s | %11s | %6s | %10s | %11s | %7s | %6s | %6s | %15s | %16s | %17s | %10s |\n",
				f[1], f[2], f[3], f[4], f[5], f[7], f[8], spread, f[9], f[10], f[11], f[18], f[19], f[20], f[15] "/" f[4]
			cnt = 0
		}
		{
			k = $1 "|" $2 "|" $3 "|" $4
			if (k != last) { flush(); last = k }
			cnt++; row[cnt] = $0; row_iops[cnt] = $8
		}
		END { flush() }'
	echo
	echo "- Each case ran $BENCH_ROUNDS time(s) (rounds alternate the ring counts); the line shows the run with the"
	echo "  median total IOPS; IOPS spread = (max - min) / median over the rounds."
	echo "- total IOPS: all backends' IOs / wall time from the first session's start to the last one's end."
	echo "- mean: over all IOs of all backends; p50: median of the backends' p50s; p99: the worst backend's p99."
	echo "  Latency is submit-to-complete per IO as pg_uring_bench reports it (µs timestamps): until"
	echo "  whichever process reaps the completion, not until the issuer notices it."
	echo "- reaped_by_other / reaped_by_reaper / submit_lock_waits: sums over all rings of pg_uring_stats,"
	echo "  reset before each run. busy rings: rings that saw IOs (each backend takes the next ring,"
	echo "  round-robin, on its first IO and keeps it)."
	echo "- depth: IOs each backend keeps in flight (1 = one at a time)."

	# consistency checks: every IO counted once, no errors
	local bad
	bad=$(awk -F'|' '$16 != $14 || $17 + $18 + $19 != $16 || $22 != 0 {
		printf "  round %s, %s depth %s, %s backends, rings %s: %s IOs run, %s completed (issuer %s, other %s, reaper %s), %s errors\n",
			$6, $1, $2, $3, $4, $14, $16, $17, $18, $19, $22 }' "$rowsfile")
	if [ -n "$bad" ]; then
		echo
		echo "WARNING: ring counters do not match the IOs run:"
		echo "$bad"
	fi
	echo
	sed 's/^/- /' "$notesfile"
	echo "- largest start skew between sessions of a case: $(awk -F'|' 'BEGIN { m = 0 } $13 + 0 > m { m = $13 + 0 } END { print m }' "$rowsfile") ms"
	echo "- load average after:  $(cut -d' ' -f1-3 /proc/loadavg) (includes the benchmark itself)"
	echo "- benchmark runtime: $(($(date +%s) - t_begin)) s"
}

# ---------------------------------------------------------------------------
# Outer part: as root or as the server's user; temp dir, cleanup, results.
# ---------------------------------------------------------------------------
WORK=""
RUN_AS=()
INNER_PID=""

cleanup() {
	local rc=$?
	trap - INT TERM
	if [ -n "$INNER_PID" ] && kill -0 "$INNER_PID" 2>/dev/null; then
		log "interrupted: stopping the benchmark"
		kill -TERM "$INNER_PID" 2>/dev/null || true
	fi
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if [ -f "$WORK/data/postmaster.pid" ]; then
			local bindir
			bindir=$(pg_bindir)
			"${RUN_AS[@]}" "$bindir/pg_ctl" -D "$WORK/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
				"${RUN_AS[@]}" "$bindir/pg_ctl" -D "$WORK/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
		fi
		if [ -n "$INNER_PID" ]; then
			local i
			for i in $(seq 1 50); do
				kill -0 "$INNER_PID" 2>/dev/null || break
				sleep 0.2
			done
		fi
		cd / && rm -rf "$WORK"
	fi
	return $rc
}

outer() {
	local top bindir
	top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	bindir=$(pg_bindir)
	local b
	for b in initdb pg_ctl psql pgbench; do
		[ -x "$bindir/$b" ] || die "$bindir/$b not found (set PG_CONFIG)"
	done
	command -v timeout >/dev/null || die "timeout (coreutils) not found"

	if [ "$(id -u)" -eq 0 ]; then
		id postgres >/dev/null 2>&1 || die "running as root needs an OS user 'postgres' for the server"
		if command -v runuser >/dev/null 2>&1; then
			RUN_AS=(runuser -u postgres --)
		else
			RUN_AS=(su_postgres)
		fi
	fi

	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	WORK=$(mktemp -d /var/tmp/pg_uring-bench.XXXXXX)
	chmod 700 "$WORK"
	cp "${BASH_SOURCE[0]}" "$WORK/ring_bench.sh"
	[ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$WORK"

	local results=$top/bench/results stamp out
	mkdir -p "$results"
	stamp=$(date +%Y%m%d-%H%M%S)
	out=$results/ring_bench-$stamp.txt

	BENCH_GIT_DESC=$(git_desc "$top")
	export BENCH_GIT_DESC
	# The inner part runs in the background and we wait for it: a trapped
	# signal interrupts 'wait' (not a foreground pipeline), so Ctrl-C or a
	# kill gets to cleanup at once, which ends the inner part.
	local rc=0
	cd "$WORK"
	"${RUN_AS[@]}" bash "$WORK/ring_bench.sh" --inner "$WORK" > >(tee "$out") &
	INNER_PID=$!
	wait "$INNER_PID" || rc=$?
	INNER_PID=""
	cd "$top"
	sleep 0.2			# let tee drain
	if [ "$rc" -ne 0 ]; then
		if [ -f "$WORK/server.log" ]; then
			cp "$WORK/server.log" "$results/ring_bench-$stamp-server.log"
			log "server log kept in $results/ring_bench-$stamp-server.log"
		fi
		log "failed (rc $rc); partial output in $out"
		exit "$rc"
	fi
	[ -f "$WORK/sessions.csv" ] && cp "$WORK/sessions.csv" "$results/ring_bench-$stamp.csv"
	log "table written to $out"
}

# commit of the checkout, and whether the extension's sources differ from it
git_desc() {
	local top=$1 head dirty
	head=$(git -C "$top" rev-parse --short HEAD 2>/dev/null) || { echo "not a git checkout"; return; }
	dirty=$(git -C "$top" status --porcelain -- src '*.sql' '*.control' Makefile 2>/dev/null | wc -l)
	if [ "$dirty" -gt 0 ]; then
		echo "$head, with uncommitted changes to $dirty source file(s)"
	else
		echo "$head"
	fi
}

# su fallback when runuser is missing: quote the command for su -c
su_postgres() {
	local cmd="" a
	for a in "$@"; do cmd+=" $(printf '%q' "$a")"; done
	su postgres -s /bin/bash -c "$cmd"
}

if [ "${1:-}" = "--inner" ]; then
	[ "$(id -u)" -ne 0 ] || die "--inner must not run as root"
	inner "$2"
else
	outer
fi
