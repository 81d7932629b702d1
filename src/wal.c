/*-------------------------------------------------------------------------
 *
 * wal.c
 *	  WAL segment flushes through the shared rings, and the shared record of
 *	  how far WAL is known to be durable.
 *
 * Owns: PgUringShared's wal_durable (the highest LSN known durable, by us
 * or by core) and pg_uring_wal_flush().
 *
 * Invariants kept here:
 *	- fsync only makes durable what was written: the flush covers WAL up to
 *	  GetXLogWriteRecPtr() read before the fsyncs are submitted, never more.
 *	- The fsyncs of the segments a flush needs form one IOSQE_IO_LINK chain,
 *	  oldest first; the flush counts as done only if every one succeeded.
 *	  A failed WAL fsync is a PANIC, as in core (data_sync_retry is off).
 *	- wal_durable only moves forward (compare-and-swap).
 *	- fsync = off and the open_sync/open_datasync methods are respected: in
 *	  those cases there is nothing to fsync.  During recovery nothing is
 *	  flushed here (core maintains minRecoveryPoint).
 *	- WAL segments are opened with open() (pgu_open_file), not through fd.c's
 *	  VFDs, and closed only after their fsyncs completed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/pg_lsn.h"

#include "ring.h"

PG_FUNCTION_INFO_V1(pg_uring_wal_flush);

/* most segments one flush chains together */
#define PGU_WAL_MAX_CHAIN 32

static void
advance_durable(XLogRecPtr lsn)
{
	uint64		cur = pg_atomic_read_u64(&pgu_shared->wal_durable);

	while (cur < lsn &&
		   !pg_atomic_compare_exchange_u64(&pgu_shared->wal_durable, &cur, lsn))
		;
}

/* The highest LSN known durable, by pg_uring or by core. */
XLogRecPtr
pgu_wal_durable(void)
{
	XLogRecPtr	core = GetFlushRecPtr(NULL);
	XLogRecPtr	ours = (XLogRecPtr) pg_atomic_read_u64(&pgu_shared->wal_durable);

	return Max(core, ours);
}

/*
 * Make durable, through this backend's ring, the WAL written so far.
 * Returns the LSN that is now durable.
 */
XLogRecPtr
pgu_wal_flush_written(void)
{
	XLogRecPtr	written = GetXLogWriteRecPtr();
	XLogRecPtr	durable = pgu_wal_durable();
	TimeLineID	tli;
	XLogSegNo	first;
	XLogSegNo	last;

	if (written <= durable)
		return durable;
	if (!enableFsync ||
		sync_method == SYNC_METHOD_OPEN || sync_method == SYNC_METHOD_OPEN_DSYNC)
	{
		/* nothing to fsync: written WAL is as durable as the server makes it */
		advance_durable(written);
		return written;
	}

	tli = GetWALInsertionTimeLine();
	XLByteToSeg(durable, first, wal_segment_size);
	XLByteToPrevSeg(written, last, wal_segment_size);

	while (first <= last)
	{
		int			n = (int) Min((XLogSegNo) PGU_WAL_MAX_CHAIN, last - first + 1);
		PgUringHandle h[PGU_WAL_MAX_CHAIN];
		int			fds[PGU_WAL_MAX_CHAIN];
		char		paths[PGU_WAL_MAX_CHAIN][MAXPGPATH];
		volatile int nopen = 0;
		int			i;

		PG_TRY();
		{
			for (i = 0; i < n; i++)
			{
				XLogFilePath(paths[i], tli, first + i, wal_segment_size);
				fds[i] = pgu_open_file(paths[i]);
				nopen++;
			}
			pgu_io_acquire(h, n);
			for (i = 0; i < n; i++)
			{
				PgUringSlot *slot = pgu_io_slot(h[i]);

				slot->op = sync_method == SYNC_METHOD_FDATASYNC ?
					PGU_OP_FDATASYNC : PGU_OP_FSYNC;
				slot->target.file.fd = fds[i];
				if (i < n - 1)
					slot->flags |= PGU_IO_LINK;
			}
			pgu_io_submit(h, n);
			pgu_io_wait_many(h, n);
			pgu_count(pgu_ring(pgu_my_ring()), PGU_C_WAL_FLUSHES, n);
			for (i = 0; i < n; i++)
			{
				int32		res = pgu_io_slot(h[i])->result;

				if (res < 0)
				{
					/* a cancelled link follows the failure we report */
					errno = -res;
					ereport(PANIC,
							(errcode_for_file_access(),
							 errmsg("could not fsync file \"%s\" through pg_uring: %m",
									paths[i])));
				}
			}
			pgu_io_release(h, n);
			for (i = 0; i < nopen; i++)
				pgu_close_file(fds[i]);
		}
		PG_CATCH();
		{
			pgu_io_cleanup_mine();
			for (i = 0; i < nopen; i++)
				pgu_close_file(fds[i]);
			PG_RE_THROW();
		}
		PG_END_TRY();
		first += n;
	}

	advance_durable(written);
	return written;
}

/*
 * pg_uring_wal_flush() RETURNS pg_lsn: everything written so far made
 * durable through the ring; returns the LSN it covers.
 */
Datum
pg_uring_wal_flush(PG_FUNCTION_ARGS)
{
	pgu_require_loaded();
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("recovery is in progress"),
				 errhint("WAL is not flushed through pg_uring during recovery.")));
	PG_RETURN_LSN(pgu_wal_flush_written());
}
