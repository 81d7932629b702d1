/*-------------------------------------------------------------------------
 *
 * wal.c
 *	  WAL segment flushes through the shared rings, and the shared record of
 *	  how far WAL is known to be durable and how far a submitted flush
 *	  reaches.
 *
 * Owns: PgUringShared's wal_durable, wal_flush_submitted, wal_flush_failed
 * and wal_cv; the WAL-sync op (fsync or fdatasync of one WAL segment);
 * pg_uring_wal_flush().
 *
 * Invariants kept here:
 *	- fsync only makes durable what was written: a flush covers WAL up to a
 *	  GetXLogWriteRecPtr() read before its fsyncs are submitted, never more.
 *	- The fsyncs of the segments a flush needs form one IOSQE_IO_LINK chain,
 *	  oldest first.  Only the last one carries the LSN the chain covers, and
 *	  its completion (in whichever process reaps it) advances wal_durable:
 *	  since the chain is linked, the last fsync succeeds only if every
 *	  earlier one did.  Page writes that need the WAL are linked behind the
 *	  last fsync (writeback.c), so a failed flush cancels them in the kernel.
 *	- A failed WAL fsync sets wal_flush_failed, which nothing clears short of
 *	  a crash restart, and the process that reaps it PANICs as core does
 *	  (data_sync_retry does not apply to WAL), whoever owns the IO and
 *	  whatever the owner is doing (cancelled, timed out, exiting): the PANIC
 *	  comes at the end of that drain, once the page writes linked behind the
 *	  chain have come back, so its DETAIL says what the kernel did with them.
 *	  After a failure no completion advances wal_durable, and anyone who
 *	  sees the flag before the crash restart PANICs too.
 *	- wal_durable and wal_flush_submitted only move forward (compare-and-swap).
 *	- fsync = off and the open_sync/open_datasync methods are respected: in
 *	  those cases there is nothing to fsync.  During recovery nothing is
 *	  flushed here (core maintains minRecoveryPoint).
 *	- WAL segments are opened with open() (pgu_open_file), not through fd.c's
 *	  VFDs, and closed only after their fsyncs completed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>
#include <unistd.h>

#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "ring.h"
#include "wal.h"

PG_FUNCTION_INFO_V1(pg_uring_wal_flush);

static void
advance_lsn(pg_atomic_uint64 *ptr, XLogRecPtr lsn)
{
	uint64		cur = pg_atomic_read_u64(ptr);

	while (cur < lsn && !pg_atomic_compare_exchange_u64(ptr, &cur, lsn))
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

/* Whether written WAL needs an fsync at all to be as durable as it gets. */
static bool
wal_needs_fsync(void)
{
	return enableFsync &&
		PGU_WAL_SYNC_METHOD != PGU_WAL_SYNC_OPEN && PGU_WAL_SYNC_METHOD != PGU_WAL_SYNC_OPEN_DSYNC;
}

/*
 * The highest LSN up to which a data page may be written right now without
 * any WAL flush: what is durable, or, when WAL needs no fsync (fsync = off,
 * open_sync, open_datasync), what is written.
 */
XLogRecPtr
pgu_wal_safe_upto(void)
{
	if (!wal_needs_fsync())
		return GetXLogWriteRecPtr();
	return pgu_wal_durable();
}

void
pgu_wal_check_failed(void)
{
	if (pg_atomic_read_u32(&pgu_shared->wal_flush_failed) != 0)
		ereport(PANIC,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a WAL flush through pg_uring failed in another process"),
				 errdetail("No later fsync of the WAL can be trusted.")));
}

/* ------------------------------------------------------------------------
 * The WAL-sync op
 * ------------------------------------------------------------------------
 */
static void
walsync_prep(struct io_uring_sqe *sqe, PgUringSlot *slot)
{
	PgUringWalTarget *t = &slot->target.wal;

	io_uring_prep_fsync(sqe, t->fault ? -1 : t->fd,
						t->datasync ? IORING_FSYNC_DATASYNC : 0);
}

static int32
walsync_sync(PgUringSlot *slot)
{
	PgUringWalTarget *t = &slot->target.wal;
	int			rc;

	if (t->fault)
		return -EBADF;
	rc = t->datasync ? fdatasync(t->fd) : fsync(t->fd);
	return rc < 0 ? -errno : 0;
}

static bool
walsync_result_ok(PgUringSlot *slot, int32 result)
{
	return result >= 0;
}

/* the failed WAL fsync this process reaped, PANICked on after the drain */
static struct
{
	bool		pending;
	TimeLineID	tli;
	XLogSegNo	segno;
	int32		result;
	int			ring;
	int			owner_pid;
	uint64		chain;			/* of the chain's last fsync, which writes follow */
} wal_failure;

/*
 * After the drain that reaped a failed WAL fsync: wait (a second at most)
 * for the page writes linked behind its chain, which the kernel cancels,
 * count what became of them, and PANIC as core does.
 */
static void
wal_failure_panic(void)
{
	char		path[MAXPGPATH];
	TimestampTz start = GetCurrentTimestamp();
	int			cancelled;
	int			written;
	int			other;
	int			pending;

	HOLD_INTERRUPTS();
	for (;;)
	{
		int			i;

		cancelled = written = other = pending = 0;
		for (i = 0; i < pgu_io_nslots(); i++)
		{
			PgUringSlot *slot = pgu_slot(i);
			uint32		state = pg_atomic_read_u32(&slot->state);

			if (slot->op != PGU_OP_BUFWRITE || !slot->target.write.linked ||
				slot->target.write.wal_chain != wal_failure.chain)
				continue;
			if (state == PGU_SLOT_SUBMITTED)
				pending++;
			else if (state != PGU_SLOT_COMPLETED)
				continue;
			else if (slot->result == -ECANCELED)
				cancelled++;
			else if (slot->result == (int32) slot->target.write.npages * BLCKSZ)
				written++;
			else
				other++;
		}
		if (pending == 0 || wal_failure.chain == 0 ||
			TimestampDifferenceExceeds(start, GetCurrentTimestamp(), 1000))
			break;
		(void) pgu_ring_progress(pgu_ring(wal_failure.ring), true);
	}

	XLogFilePath(path, wal_failure.tli, wal_failure.segno, wal_segment_size);
	errno = -wal_failure.result;
	ereport(PANIC,
			(errcode_for_file_access(),
			 errmsg("could not fsync file \"%s\" through pg_uring: %m", path),
			 cancelled + written + other + pending > 0 ?
			 errdetail_internal("%d of the %d page writes linked behind it were cancelled by the kernel, %d completed.",
								cancelled, cancelled + written + other + pending, written) : 0,
			 wal_failure.owner_pid != MyProcPid ?
			 errcontext("completing an IO of process %d", wal_failure.owner_pid) : 0));
}

/* any process: no ERROR, no palloc */
static void
walsync_complete(PgUringSlot *slot)
{
	PgUringWalTarget *t = &slot->target.wal;
	PgUringRing *ring = pgu_ring(slot->ring);

	if (slot->result < 0)
	{
		/* first, so that no later chain is trusted */
		pg_atomic_write_u32(&pgu_shared->wal_flush_failed, 1);
		pg_memory_barrier();
		if (t->nlinked > 0)
			pgu_count(ring, PGU_C_CANCELLED_CHAINS, 1);
		/* a cancelled link behind the failure is not the cause: keep the first */
		if (!wal_failure.pending || slot->result != -ECANCELED)
		{
			wal_failure.pending = true;
			wal_failure.tli = t->tli;
			wal_failure.segno = t->segno;
			wal_failure.result = slot->result;
			wal_failure.ring = slot->ring;
			wal_failure.owner_pid = slot->owner_pid;
			wal_failure.chain = t->chain;
		}
		pgu_io_defer_after_drain(wal_failure_panic);
	}
	else
	{
		pgu_count(ring, PGU_C_WAL_FLUSHES, 1);
		pg_memory_barrier();
		if (t->upto != InvalidXLogRecPtr &&
			pg_atomic_read_u32(&pgu_shared->wal_flush_failed) == 0)
			advance_lsn(&pgu_shared->wal_durable, t->upto);
	}
	ConditionVariableBroadcast(&pgu_shared->wal_cv);
}

static void
walsync_describe(PgUringSlot *slot, char *buf, size_t len)
{
	PgUringWalTarget *t = &slot->target.wal;
	char		name[MAXFNAMELEN];

	XLogFileName(name, t->tli, t->segno, wal_segment_size);
	if (t->upto != InvalidXLogRecPtr)
		snprintf(buf, len, "WAL %s up to %X/%X%s", name,
				 LSN_FORMAT_ARGS(t->upto), t->nlinked ? " (heads writes)" : "");
	else
		snprintf(buf, len, "WAL %s", name);
}

/* owner only: the segment stays open until its fsync completed */
static void
walsync_release(PgUringSlot *slot)
{
	if (slot->target.wal.fd >= 0)
	{
		pgu_close_file(slot->target.wal.fd);
		slot->target.wal.fd = -1;
	}
}

static const PgUringOpInfo walsync_info = {
	"wal fsync", walsync_prep, walsync_sync, walsync_result_ok,
	walsync_complete, NULL, walsync_describe, walsync_release
};

void
pgu_wal_register(void)
{
	pgu_register_op(PGU_OP_WALSYNC, &walsync_info);
}

/* ------------------------------------------------------------------------
 * Chains of WAL fsyncs
 * ------------------------------------------------------------------------
 */

/*
 * How many segment fsyncs a flush from what is durable up to 'upto' needs,
 * and the first segment.  0 if nothing needs an fsync.
 */
int
pgu_wal_chain_length(XLogRecPtr upto, XLogSegNo *first)
{
	XLogRecPtr	durable = pgu_wal_durable();
	XLogSegNo	last;

	if (upto <= durable || !wal_needs_fsync())
		return 0;
	XLByteToSeg(durable, *first, wal_segment_size);
	XLByteToPrevSeg(upto, last, wal_segment_size);
	if (last < *first)
		return 0;
	return (int) Min(last - *first + 1, (XLogSegNo) INT_MAX);
}

/*
 * Fill n acquired slots with the fsyncs of segments first .. first + n - 1,
 * all linked, the last one covering 'upto' and heading 'nlinked' page
 * writes that the caller links after it.  Opens the segment files; on
 * ERROR the caller's cleanup closes what was opened (the op's release
 * callback closes a segment as its slot is freed).
 */
void
pgu_wal_stage(PgUringHandle *h, int n, XLogSegNo first, XLogRecPtr upto,
			  int nlinked)
{
	TimeLineID	tli = GetWALInsertionTimeLine();
	int			i;

	for (i = 0; i < n; i++)
	{
		PgUringSlot *slot = pgu_io_slot(h[i]);
		PgUringWalTarget *t = &slot->target.wal;
		char		path[MAXPGPATH];

		slot->op = PGU_OP_WALSYNC;
		t->fd = -1;
		t->datasync = PGU_WAL_SYNC_METHOD == PGU_WAL_SYNC_FDATASYNC;
		t->fault = pgu_test_wal_fault;
		t->tli = tli;
		t->segno = first + i;
		t->upto = i == n - 1 ? upto : InvalidXLogRecPtr;
		t->nlinked = i == n - 1 ? (uint16) nlinked : 0;
		if (i < n - 1 || nlinked > 0)
			slot->flags |= PGU_IO_LINK;
		t->chain = pgu_slot_user_data(pgu_io_slot(h[n - 1]));
		XLogFilePath(path, tli, first + i, wal_segment_size);
		t->fd = pgu_open_file(path);
	}
	advance_lsn(&pgu_shared->wal_flush_submitted, upto);
}

/*
 * Make durable, through this backend's ring, the WAL written so far.
 * Returns the LSN that is now durable.
 */
XLogRecPtr
pgu_wal_flush_written(void)
{
	XLogRecPtr	written = GetXLogWriteRecPtr();
	XLogSegNo	first;
	int			total;

	pgu_wal_check_failed();
	if (written <= pgu_wal_durable())
		return pgu_wal_durable();
	if (!wal_needs_fsync())
	{
		/* nothing to fsync: written WAL is as durable as the server makes it */
		advance_lsn(&pgu_shared->wal_durable, written);
		return written;
	}

	total = pgu_wal_chain_length(written, &first);
	while (total > 0)
	{
		int			n = Min(total, PGU_WAL_MAX_CHAIN);
		PgUringHandle h[PGU_WAL_MAX_CHAIN];
		XLogRecPtr	upto;
		int			i;

		/* a chunk that is not the last covers its own segments only */
		if (n < total)
			XLogSegNoOffsetToRecPtr(first + n, 0, wal_segment_size, upto);
		else
			upto = written;

		pgu_io_acquire(h, n);
		PG_TRY();
		{
			pgu_wal_stage(h, n, first, upto, 0);
			pgu_io_submit(h, n);
			pgu_io_wait_many(h, n);
		}
		PG_CATCH();
		{
			pgu_io_cleanup_mine();
			PG_RE_THROW();
		}
		PG_END_TRY();
		/* a failed fsync was a PANIC in whoever reaped it */
		for (i = 0; i < n; i++)
			if (pgu_io_slot(h[i])->result < 0)
				elog(PANIC, "pg_uring: a failed WAL fsync was not reported");
		pgu_io_release(h, n);
		first += n;
		total -= n;
	}

	return Max(written, pgu_wal_durable());
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
