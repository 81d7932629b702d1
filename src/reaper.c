/*-------------------------------------------------------------------------
 *
 * reaper.c
 *	  The background worker that guarantees completions are processed.
 *
 * Core backends that sleep on a buffer's IO condition variable know nothing
 * of rings, and an issuer may be busy or blocked; without the reaper a
 * completion could sit in a CQ indefinitely.  The reaper sleeps on the
 * eventfds registered with the rings.  When one fires it first leaves the
 * issuers pg_uring.reaper_delay to reap inline (the common, cheap case), and
 * then drains only rings whose completions from before that delay are still
 * unreaped.  So one wake-up covers a burst, and issuers keep doing most of
 * the reaping.
 *
 * Invariants kept here: the reaper owns no IO slots and never submits; it
 * only drains, under the ring's completion lock like everybody else.  It
 * always runs (there is no setting to turn it off) and does not exit while
 * any IO is in flight on a ring.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "ring.h"

bool		pgu_am_reaper = false;

static void
consume_eventfd(int fd)
{
	uint64		value;

	/* non-blocking; the count is of no interest, only the reset */
	while (read(fd, &value, sizeof(value)) == sizeof(value))
		;
}

void
pgu_reaper_main(Datum arg)
{
	WaitEventSet *set;
	int			nrings;
	int			i;
	unsigned   *tail_at_wake;
	bool		any_active = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	pgu_am_reaper = true;
	nrings = pgu_shared->nrings;
	tail_at_wake = palloc0(sizeof(unsigned) * nrings);

	set = CreateWaitEventSet(TopMemoryContext, 2 + nrings);
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (i = 0; i < nrings; i++)
	{
		PgUringRing *ring = pgu_ring(i);

		if (ring->active && ring->eventfd >= 0)
		{
			AddWaitEventToSet(set, WL_SOCKET_READABLE, ring->eventfd, NULL, ring);
			any_active = true;
		}
	}
	if (!any_active)
		ereport(LOG,
				(errmsg("pg_uring reaper: rings are in synchronous mode, nothing to reap")));

	while (!ShutdownRequestPending)
	{
		WaitEvent	events[8];
		int			nevents;
		bool		woke_on_ring = false;

		nevents = WaitEventSetWait(set, -1L, events, lengthof(events),
								   PG_WAIT_EXTENSION);
		for (i = 0; i < nevents; i++)
		{
			if (events[i].events & WL_LATCH_SET)
				ResetLatch(MyLatch);
			if (events[i].events & WL_SOCKET_READABLE)
				woke_on_ring = true;
		}
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!woke_on_ring)
			continue;

		/* reset every eventfd and note how far each CQ had got */
		for (i = 0; i < nrings; i++)
		{
			PgUringRing *ring = pgu_ring(i);

			if (!ring->active)
				continue;
			consume_eventfd(ring->eventfd);
			tail_at_wake[i] = pgu_ring_cq_tail(ring);
		}

		/* give the issuers their chance to reap inline */
		if (pgu_reaper_delay > 0)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 pgu_reaper_delay, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}

		/* drain rings where something seen at wake-up is still unreaped */
		for (i = 0; i < nrings; i++)
		{
			PgUringRing *ring = pgu_ring(i);

			if (!ring->active)
				continue;
			if ((int) (tail_at_wake[i] - pgu_ring_cq_head(ring)) > 0)
				(void) pgu_ring_progress(ring, false);
		}
	}

	/*
	 * Never leave IOs in flight behind, at shutdown or after
	 * pg_terminate_backend: a core backend may be sleeping on one, and its
	 * owner may be blocked (on a content lock held by that very backend)
	 * where it cannot drain.
	 */
	{
		int64		reaped = 0;

		for (;;)
		{
			uint32		inflight = 0;

			for (i = 0; i < nrings; i++)
			{
				PgUringRing *ring = pgu_ring(i);

				if (!ring->active || pg_atomic_read_u32(&ring->inflight) == 0)
					continue;
				inflight += pg_atomic_read_u32(&ring->inflight);
				reaped += pgu_ring_progress(ring, true);
			}
			if (inflight == 0 || !PostmasterIsAlive())
				break;
		}
		if (reaped > 0)
			ereport(LOG,
					(errmsg("pg_uring reaper: completed " INT64_FORMAT " IOs still in flight before exiting",
							reaped)));
	}

	/*
	 * Exit code 1: the postmaster unregisters for good a worker that exits
	 * with 0, and a server without its reaper can leave core backends
	 * sleeping on a buffer's IO.  After a SIGTERM that is not the
	 * postmaster's shutdown (pg_terminate_backend) a new reaper starts a
	 * second later; at shutdown none does.
	 */
	proc_exit(1);
}
