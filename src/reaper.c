/*-------------------------------------------------------------------------
 *
 * reaper.c
 *	  The background worker that guarantees completions are processed.
 *
 * Core backends that sleep on a buffer's IO condition variable know nothing
 * of rings, and an issuer may be busy or blocked; without the reaper a
 * completion could sit in a CQ indefinitely.  The reaper sleeps on the one
 * eventfd every ring signals.  When it fires it first leaves the issuers
 * pg_uring.reaper_delay to reap inline (the common, cheap case), and
 * then drains only rings whose completions from before that delay are still
 * unreaped.  So one wake-up covers a burst, and issuers keep doing most of
 * the reaping.  Except where somebody sleeps on a completion that is ready
 * (a core backend in WaitIO on a buffer pg_uring reads or writes: the op's
 * has_waiters callback says so): that ring is drained at once, checked
 * every 50 us during the delay.
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
#include "utils/timestamp.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "compat.h"
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

/* completions seen at wake-up that nobody has reaped yet, on ring i */
static bool
unreaped(int i, unsigned *tail_at_wake)
{
	PgUringRing *ring = pgu_ring(i);

	return ring->active && (int) (tail_at_wake[i] - pgu_ring_cq_head(ring)) > 0;
}

/*
 * The reaper's delay after a wake-up: until pg_uring.reaper_delay has
 * passed or everything seen at wake-up is reaped.  Meanwhile, every
 * WAITER_POLL_US, a ring whose unreaped completions somebody sleeps on is
 * drained at once.  (The check looks only at the CQEs not yet reaped, under
 * a conditional shared lock: cheap enough to repeat that often, and only
 * while completions are waiting for their issuers.)
 */
#define WAITER_POLL_US 50

static void
wait_for_issuers(int nrings, unsigned *tail_at_wake)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), pgu_reaper_delay);

	for (;;)
	{
		bool		left = false;
		TimestampTz now;
		int			i;

		for (i = 0; i < nrings; i++)
		{
			if (!unreaped(i, tail_at_wake))
				continue;
			if (pgu_ring_cq_waited(pgu_ring(i)))
				(void) pgu_ring_progress(pgu_ring(i), false);
			if (unreaped(i, tail_at_wake))
				left = true;
		}
		if (!left || ShutdownRequestPending)
			return;
		now = GetCurrentTimestamp();
		if (now >= deadline)
			return;
		pg_usleep(Min(WAITER_POLL_US, deadline - now));
		if (!PostmasterIsAlive())
			proc_exit(1);
	}
}

void
pgu_reaper_main(Datum arg)
{
	WaitEventSet *set;
	int			nrings;
	int			i;
	unsigned   *tail_at_wake;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	pgu_am_reaper = true;
	nrings = pgu_shared->nrings;
	tail_at_wake = palloc0(sizeof(unsigned) * nrings);

	set = pgu_create_wait_event_set(3);
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	if (pgu_shared->eventfd >= 0)
		AddWaitEventToSet(set, WL_SOCKET_READABLE, pgu_shared->eventfd, NULL, NULL);
	else
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

		/* reset the eventfd and note how far each CQ had got */
		consume_eventfd(pgu_shared->eventfd);
		for (i = 0; i < nrings; i++)
		{
			PgUringRing *ring = pgu_ring(i);

			if (ring->active)
				tail_at_wake[i] = pgu_ring_cq_tail(ring);
		}

		/*
		 * Give the issuers their chance to reap inline, but complete at once
		 * what somebody is sleeping on (a core backend in WaitIO knows no
		 * ring and would sleep out the whole delay).
		 */
		if (pgu_reaper_delay > 0)
			wait_for_issuers(nrings, tail_at_wake);

		/* drain rings where something seen at wake-up is still unreaped */
		for (i = 0; i < nrings; i++)
			if (unreaped(i, tail_at_wake))
				(void) pgu_ring_progress(pgu_ring(i), false);
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
