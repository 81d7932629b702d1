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
*)
	echo "usage: clients.sh acks FILE | flush REL" >&2
	exit 2
	;;
esac
