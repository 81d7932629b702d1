# test/power/clients.sh: the client loops of the power-loss harness, run as
# postgres by run.sh (PGHOST, PGPORT, PGDATABASE set), each until it is killed
# by the cut.
#
#   clients.sh acks FILE   one INSERT INTO acks per transaction (autocommit);
#                          an id is appended to FILE (outside the cluster) only
#                          after psql saw its COMMIT succeed: FILE lists the
#                          acknowledged commits
#   clients.sh flush REL SLEEP
#                          pg_uring_flush() of the whole pool, alternating with
#                          pg_uring_flush(REL, sync => true), SLEEP seconds
#                          apart; one session, stops at the first error
#   clients.sh scan REL    queries that read ahead through the rings, one
#                          session, pg_uring.readahead on: a seq scan of REL
#                          alternating with an index scan of a range of its
#                          primary key (aid); stops at the first error
set -u
case "${1:-}" in
acks)
	file=$2
	i=0
	while :; do
		i=$((i + 1))
		if psql -X -qAt -v ON_ERROR_STOP=1 -c "INSERT INTO acks VALUES ($i)" >/dev/null; then
			echo "$i" >>"$file"
		else
			echo "insert of $i failed" >&2
			sleep 0.05
		fi
	done
	;;
flush)
	rel=$2
	pause=$3
	while :; do
		echo "SELECT 'all', pg_uring_flush();"
		echo "SELECT pg_sleep($pause);"
		echo "SELECT 'sync', pg_uring_flush('$rel', sync => true);"
		echo "SELECT pg_sleep($pause);"
	done | psql -X -qAt -v ON_ERROR_STOP=1
	;;
scan)
	rel=$2
	{
		echo "SET pg_uring.readahead = on; SET pg_uring.readahead_seqscan = on;"
		echo "SET max_parallel_workers_per_gather = 0;"
		i=0
		while :; do
			i=$((i + 1))
			# the index scan first: on 17, where seq scans read through
			# core's read stream, it is what reads ahead through the rings
			echo "SET enable_seqscan = off; SET enable_indexscan = on; SET enable_bitmapscan = off;"
			echo "SELECT 'idx', count(*), sum(abalance) FROM $rel WHERE aid BETWEEN $(((i * 37813) % 900000)) AND $(((i * 37813) % 900000 + 50000));"
			echo "SET enable_seqscan = on; SET enable_indexscan = off;"
			echo "SELECT 'seq', count(*), sum(abalance) FROM $rel;"
		done
	} | psql -X -qAt -v ON_ERROR_STOP=1 >/dev/null
	;;
*)
	echo "usage: clients.sh acks FILE | flush REL SLEEP | scan REL" >&2
	exit 2
	;;
esac
