/*-------------------------------------------------------------------------
 *
 * writer.c
 *	  The pg_uring writer: a background worker that keeps the buffers the
 *	  clock sweep will evict next clean, with asynchronous writes, so that
 *	  fewer backends must write a dirty victim themselves.
 *
 * Owns: the writer's own scan position, resource owner and memory context.
 *
 * Each round (every pg_uring.writer_delay; ten times that after a few
 * rounds that saw no dirty buffer at all) it walks the pool from where it
 * stopped, for at most one full pass, and writes up to
 * pg_uring.writer_max_pages buffers that are valid, dirty, unpinned and
 * have usage_count 0: those are what the sweep takes next if nobody uses
 * them again.  It does not move the sweep's hand or read its allocation
 * counter (StrategySyncStart would reset the counter under the core
 * bgwriter, and so distort buffers_alloc).
 *
 * Invariants kept here:
 *	- It never blocks on a buffer: a buffer whose content lock is taken,
 *	  that has an IO in progress, or whose WAL is not yet written is skipped
 *	  (for the last, the WAL writer is asked to write, XLogSetAsyncXactLSN).
 *	- Every round ends with all its writes completed and every pin dropped;
 *	  on ERROR it waits for its IOs (pgu_wb_abort) before the resource owner
 *	  releases the pins, logs the error and carries on with the next round.
 *	- It starts only once recovery has finished (on a standby core writes).
 *	- SIGTERM ends it with exit code 1, so that the postmaster starts it
 *	  again unless the server is shutting down.
 *	- Its writes are registered with the checkpointer from whichever process
 *	  completes them, which core counts in pg_stat_bgwriter.buffers_backend;
 *	  pg_uring_stat_writeback.sync_requests counts them so they can be told apart.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/buf_internals.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/wait_event.h"

#include "io.h"
#include "writeback.h"


/*
 * After this many rounds that found no dirty buffer at all, the writer
 * sleeps WRITER_IDLE_FACTOR times pg_uring.writer_delay (at most 10 s)
 * between rounds, until a round sees a dirty buffer again or a reload
 * wakes it.
 */
#define WRITER_IDLE_ROUNDS 4
#define WRITER_IDLE_FACTOR 10

/*
 * One round: returns the number of dirty buffers seen (written or not);
 * *written is set to the number queued for writing.
 */
static int
writer_round(int *hand, int *written)
{
	PgUringWriteback *volatile wb = NULL;
	volatile int queued = 0;
	volatile int dirty = 0;

	PG_TRY();
	{
		int			scanned;

		wb = pgu_wb_begin(true, false, pgu_write_depth);
		for (scanned = 0; scanned < NBuffers && queued < pgu_writer_max_pages; scanned++)
		{
			BufferDesc *desc = GetBufferDescriptor(*hand);
			uint32		state = pg_atomic_read_u32(&desc->state);

			if (state & BM_DIRTY)
				dirty++;
			if ((state & (BM_VALID | BM_DIRTY | BM_IO_IN_PROGRESS)) == (BM_VALID | BM_DIRTY) &&
				BUF_STATE_GET_REFCOUNT(state) == 0 &&
				BUF_STATE_GET_USAGECOUNT(state) == 0 &&
				pgu_wb_add(wb, *hand, NULL, 0))
				queued++;
			*hand = (*hand + 1) % NBuffers;
			if (ShutdownRequestPending)
				break;
		}
		(void) pgu_wb_finish(wb);
	}
	PG_CATCH();
	{
		HOLD_INTERRUPTS();
		EmitErrorReport();
		if (wb != NULL)
			pgu_wb_abort(wb);
		else
			pgu_io_cleanup_mine();
		LWLockReleaseAll();
		ConditionVariableCancelSleep();
		ResourceOwnerRelease(CurrentResourceOwner, RESOURCE_RELEASE_BEFORE_LOCKS, false, true);
		ResourceOwnerRelease(CurrentResourceOwner, RESOURCE_RELEASE_LOCKS, false, true);
		ResourceOwnerRelease(CurrentResourceOwner, RESOURCE_RELEASE_AFTER_LOCKS, false, true);
		FlushErrorState();
		RESUME_INTERRUPTS();
	}
	PG_END_TRY();
	if (queued > 0)
		pgu_count(pgu_ring(pgu_my_ring()), PGU_C_WRITER_PAGES, queued);
	*written = queued;
	return dirty;
}

/* the sleep before the next round: longer when there was nothing to write */
static long
writer_timeout(int idle_rounds)
{
	if (idle_rounds >= WRITER_IDLE_ROUNDS)
		return Min((long) pgu_writer_delay * WRITER_IDLE_FACTOR, 10000L);
	return pgu_writer_delay;
}

void
pgu_writer_main(Datum arg)
{
	MemoryContext round_cxt;
	int			hand = 0;
	int			idle_rounds = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	CurrentResourceOwner = ResourceOwnerCreate(NULL, "pg_uring writer");
	round_cxt = AllocSetContextCreate(TopMemoryContext, "pg_uring writer round",
									  ALLOCSET_DEFAULT_SIZES);
	ereport(LOG,
			(errmsg("pg_uring writer started: at most %d pages every %d ms",
					pgu_writer_max_pages, pgu_writer_delay)));

	while (!ShutdownRequestPending)
	{
		MemoryContext old;
		int			dirty;
		int			written = 0;

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 writer_timeout(idle_rounds), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (ShutdownRequestPending)
			break;

		old = MemoryContextSwitchTo(round_cxt);
		dirty = writer_round(&hand, &written);
		if (dirty > 0)
			idle_rounds = 0;
		else if (idle_rounds < WRITER_IDLE_ROUNDS)
			idle_rounds++;
		ereport(DEBUG2,
				(errmsg_internal("pg_uring writer: round saw %d dirty buffers and wrote %d, next round in %ld ms",
								 dirty, written, writer_timeout(idle_rounds))));
		MemoryContextSwitchTo(old);
		MemoryContextReset(round_cxt);
	}

	/*
	 * Exit code 1, not 0: the postmaster unregisters for good a worker that
	 * exits with 0, and pg_uring.writer = on promises a writer.  After a
	 * SIGTERM that is not the postmaster's shutdown (pg_terminate_backend,
	 * kill) a new writer starts after bgw_restart_time; at shutdown none.
	 */
	proc_exit(1);
}
