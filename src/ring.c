/*-------------------------------------------------------------------------
 *
 * ring.c
 *	  The shared io_uring instances: creation in the postmaster, teardown at
 *	  crash restart, submission, draining and waiting in the kernel.
 *
 * Owns: PgUringShared and the PgUringRing array in shared memory, the
 * postmaster-private copies of every struct io_uring, and the eventfd they
 * all signal.
 *
 * Invariants kept here:
 *	- Rings are created once per shared memory lifetime, by the process
 *	  that initialises shared memory (the postmaster), before any backend
 *	  forks; children use the inherited fds and mappings.  No backend ever
 *	  creates a shared ring.  Setup flags that tie completion posting to the
 *	  submitting task (SINGLE_ISSUER, DEFER_TASKRUN, COOP_TASKRUN) are never
 *	  used.
 *	- The SQ side of a ring is touched only under its submit_lock, the CQ
 *	  side only under its complete_lock.  Lock order: submit, then complete.
 *	- A ring never has more IOs in flight than its CQ has entries: a
 *	  submitter that would exceed it drains first.
 *	- If the rings cannot be created the server still starts: one WARNING,
 *	  and every IO runs synchronously at submission (with LINK semantics
 *	  emulated), so callers see the same results either way.
 *	- After a crash restart the old rings are unmapped and closed from the
 *	  postmaster's private copies before new ones are created.
 *	- A CQE's user_data leads to a shared slot, never to local memory.
 *	- A link chain is never split: rings are created with SUBMIT_ALL where
 *	  the kernel has it, and when the kernel still takes only part of a
 *	  batch inside a chain, the rest waits for the part taken and is
 *	  cancelled if that part failed, as the kernel would have done.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/fd.h"
#include "storage/shmem.h"
#include "pgstat.h"
#include "utils/wait_event.h"

#include "ring.h"

PgUringShared *pgu_shared = NULL;

/*
 * Postmaster-private copies of the rings it created, so that a crash
 * restart (which throws the old shared memory away) can still unmap and
 * close them.  Plain malloc: must outlive shared memory reinitialisation.
 */
static struct io_uring *pm_rings = NULL;
static int	pm_eventfd = -1;
static int	pm_nrings = 0;

/* kernel wait granularity while someone waits for a CQE */
#define PGU_KERNEL_WAIT_MS	10

Size
pgu_ring_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(PgUringShared));

	size = add_size(size, mul_size(pgu_nrings, MAXALIGN(sizeof(PgUringRing))));
	return size;
}

static void
pgu_teardown_previous_rings(void)
{
	int			i;

	if (pm_rings == NULL)
		return;
	for (i = 0; i < pm_nrings; i++)
		io_uring_queue_exit(&pm_rings[i]);
	if (pm_eventfd >= 0)
		close(pm_eventfd);
	free(pm_rings);
	pm_rings = NULL;
	pm_eventfd = -1;
	pm_nrings = 0;
}

/*
 * Descriptors core must still have when it sizes its budget, right after
 * shared memory is set up (set_max_safe_fds(): NUM_RESERVED_FDS and
 * FD_MINFREE of fd.c, the same in PostgreSQL 15 to 17); with fewer the
 * server refuses to start.
 */
#define PGU_CORE_MIN_FDS	(10 + 48)

/*
 * How many rings the descriptor budget leaves room for.  Every descriptor
 * the postmaster holds now (ours included) stays open in every server
 * process and counts against max_files_per_process (and the open-files
 * limit) when core sizes its budget, right after this hook.  Each ring
 * takes one, and all of them share one eventfd.  Counted as core counts
 * them: every descriptor open now, below the limit.
 */
static int
rings_affordable(int *limit, int *open_now)
{
	struct rlimit rlim;
	int			fd;

	*limit = max_files_per_process;
	if (getrlimit(RLIMIT_NOFILE, &rlim) == 0 && rlim.rlim_cur != RLIM_INFINITY &&
		rlim.rlim_cur < (rlim_t) *limit)
		*limit = (int) rlim.rlim_cur;
	*open_now = 0;
	for (fd = 0; fd < *limit; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			(*open_now)++;
	return *limit - *open_now - PGU_CORE_MIN_FDS - 1;
}

/*
 * Try to create every ring.  On any failure, tear down what was created and
 * return the errno; the caller switches to synchronous mode.
 */
static int
pgu_create_rings(char *what, size_t whatlen)
{
	int			i;
	int			created = 0;
	int			err = 0;
	int			efd;
	int			limit;
	int			open_now;
	int			room = rings_affordable(&limit, &open_now);

	/* as many rings as the descriptor budget has room for, if any */
	if (room < 1)
	{
		snprintf(what, whatlen,
				 "no room in the file descriptor budget: each server process may open %d files, %d are open already, core needs %d, and the rings need %d",
				 limit, open_now, PGU_CORE_MIN_FDS, pgu_shared->nrings + 1);
		return EMFILE;
	}
	if (room < pgu_shared->nrings)
	{
		ereport(WARNING,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("pg_uring: creating %d of the %d shared io_uring instances pg_uring.rings asks for",
						room, pgu_shared->nrings),
				 errdetail("Each server process may open %d files; %d are open already, and core needs %d; a ring takes one more in every process, all rings one eventfd.",
						   limit, open_now, PGU_CORE_MIN_FDS),
				 errhint("Raise max_files_per_process (or the open files limit, ulimit -n), or lower pg_uring.rings, and restart the server.")));
		pgu_shared->nrings = room;
	}

	/*
	 * One eventfd for all rings (the reaper wakes on it and looks at every
	 * ring anyway): every descriptor created here stays open in every
	 * server process, and counts against max_files_per_process.
	 */
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0)
	{
		err = errno;
		snprintf(what, whatlen, "eventfd() failed: %s", strerror(err));
		return err;
	}

	for (i = 0; i < pgu_shared->nrings; i++)
	{
		PgUringRing *ring = &pgu_shared->rings[i];
		struct io_uring_params params;
		int			ret;

		/*
		 * IORING_SETUP_SUBMIT_ALL (Linux 5.18): the kernel goes on taking a
		 * batch past an entry that fails to start, so a submission is cut
		 * short only by a lack of memory.  Older kernels refuse the flag.
		 */
		memset(&params, 0, sizeof(params));
		params.flags = IORING_SETUP_SUBMIT_ALL;
		ret = io_uring_queue_init_params(pgu_shared->queue_depth, &ring->uring, &params);
		if (ret == -EINVAL)
		{
			memset(&params, 0, sizeof(params));
			ret = io_uring_queue_init_params(pgu_shared->queue_depth, &ring->uring, &params);
		}
		else if (ret == 0 && i == 0)
			pgu_shared->submit_all = true;
		if (ret < 0)
		{
			err = -ret;
			snprintf(what, whatlen, "io_uring_setup(%d entries) failed: %s",
					 pgu_shared->queue_depth, strerror(err));
			break;
		}
		created++;
		ring->sq_entries = params.sq_entries;
		ring->cq_entries = params.cq_entries;

		/*
		 * Reads flagged IOSQE_ASYNC run in io-wq workers, by default at most
		 * 4 per CPU at a time for regular files: too few to keep a deep
		 * queue of cold reads going.  Best effort: older kernels lack it.
		 */
		{
			unsigned int workers[2] = {(unsigned int) ring->sq_entries, 0};

			(void) io_uring_register_iowq_max_workers(&ring->uring, workers);
		}

		ret = io_uring_register_eventfd(&ring->uring, efd);
		if (ret < 0)
		{
			err = -ret;
			snprintf(what, whatlen, "io_uring_register_eventfd() failed: %s",
					 strerror(err));
			break;
		}
	}

	if (err != 0)
	{
		for (i = 0; i < created; i++)
			io_uring_queue_exit(&pgu_shared->rings[i].uring);
		close(efd);
		return err;
	}

	/* keep private copies for teardown at crash restart */
	pm_rings = malloc(sizeof(struct io_uring) * pgu_shared->nrings);
	if (pm_rings == NULL)
		elog(FATAL, "out of memory");
	for (i = 0; i < pgu_shared->nrings; i++)
	{
		pm_rings[i] = pgu_shared->rings[i].uring;
		pgu_shared->rings[i].active = true;
	}
	pm_nrings = pgu_shared->nrings;
	pgu_shared->eventfd = efd;
	pm_eventfd = efd;
	return 0;
}

/*
 * Called from shmem_startup_hook with AddinShmemInitLock held.
 */
void
pgu_ring_shmem_init(void)
{
	bool		found;
	LWLockPadded *locks;
	int			i;
	int			err;

	pgu_shared = ShmemInitStruct("pg_uring rings", pgu_ring_shmem_size(), &found);
	if (found)
		return;

	/* a crash restart: the previous generation's rings must go first */
	pgu_teardown_previous_rings();

	memset(pgu_shared, 0, pgu_ring_shmem_size());
	pgu_shared->nrings = pgu_nrings;
	pgu_shared->queue_depth = pgu_queue_depth;
	pgu_shared->eventfd = -1;
	pg_atomic_init_u32(&pgu_shared->next_ring, 0);
	pg_atomic_init_u64(&pgu_shared->wal_durable, 0);
	pg_atomic_init_u64(&pgu_shared->wal_flush_submitted, 0);
	pg_atomic_init_u32(&pgu_shared->wal_flush_failed, 0);
	ConditionVariableInit(&pgu_shared->wal_cv);
	pgu_shared->rings = (PgUringRing *) ((char *) pgu_shared +
										 MAXALIGN(sizeof(PgUringShared)));
	locks = GetNamedLWLockTranche(PGU_TRANCHE_NAME);
	for (i = 0; i < pgu_nrings; i++)
	{
		PgUringRing *ring = &pgu_shared->rings[i];
		int			c;

		ring->index = i;
		ring->active = false;
		ring->sq_entries = pgu_queue_depth;
		ring->cq_entries = 2 * pgu_queue_depth;
		ring->submit_lock = &locks[2 * i].lock;
		ring->complete_lock = &locks[2 * i + 1].lock;
		pg_atomic_init_u32(&ring->inflight, 0);
		pg_atomic_init_u64(&ring->completion_seq, 0);
		for (c = 0; c < PGU_NCOUNTERS; c++)
			pg_atomic_init_u64(&ring->counters[c], 0);
	}

	if (pgu_io_method == PGU_IO_METHOD_SYNC)
	{
		/* asked for: every IO runs synchronously, no ring is created */
		pgu_shared->uring_mode = false;
		snprintf(pgu_shared->setup_error, sizeof(pgu_shared->setup_error),
				 "pg_uring.io_method is sync");
		ereport(LOG,
				(errmsg("pg_uring: pg_uring.io_method = sync, every IO runs synchronously")));
		return;
	}
	err = pgu_create_rings(pgu_shared->setup_error, sizeof(pgu_shared->setup_error));
	if (err == 0)
	{
		pgu_shared->uring_mode = true;
		ereport(LOG,
				(errmsg("pg_uring: created %d shared io_uring instances of %d entries",
						pgu_shared->nrings, pgu_shared->rings[0].sq_entries)));
	}
	else
	{
		pgu_shared->uring_mode = false;
		pgu_shared->setup_errno = err;
		for (i = 0; i < pgu_nrings; i++)
			pgu_shared->rings[i].active = false;
		ereport(WARNING,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("pg_uring: could not create shared io_uring instances, falling back to synchronous IO"),
				 errdetail("%s (errno %d).", pgu_shared->setup_error, err),
				 errhint(err == EPERM || err == EACCES ?
						 "io_uring may be disabled by the kernel.io_uring_disabled sysctl or a seccomp policy; set kernel.io_uring_disabled = 0 and restart the server." :
						 err == ENOMEM ?
						 "Raise the memlock limit (ulimit -l) of the server, or lower pg_uring.rings or pg_uring.queue_depth, and restart the server." :
						 err == EMFILE ?
						 "Raise max_files_per_process (or the open files limit, ulimit -n) and restart the server." :
						 "Check that the kernel supports io_uring; pg_uring_probe() reports what it can do.")));
	}
}

void
pgu_require_loaded(void)
{
	if (pgu_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_uring must be loaded via shared_preload_libraries"),
				 errhint("Add pg_uring to shared_preload_libraries in postgresql.conf and restart the server.")));
}

PgUringRing *
pgu_ring(int i)
{
	Assert(i >= 0 && i < pgu_shared->nrings);
	return &pgu_shared->rings[i];
}

/*
 * The ring this process submits to, chosen round-robin on first use and
 * fixed for the life of the process, so concurrent backends spread evenly
 * over the rings (PGPROC numbers modulo the ring count did not).
 */
int
pgu_my_ring(void)
{
	static int	my_ring = -1;

	if (my_ring < 0)
		my_ring = (int) (pg_atomic_fetch_add_u32(&pgu_shared->next_ring, 1) %
						 (uint32) pgu_shared->nrings);
	return my_ring;
}

const char *
pgu_ring_mode_name(PgUringRing *ring)
{
	return ring->active ? "io_uring" : "sync";
}

/*
 * CQ head/tail read without the completion lock: good enough to decide
 * whether draining is worth trying.
 */
unsigned
pgu_ring_cq_head(PgUringRing *ring)
{
	return ring->active ? io_uring_smp_load_acquire(ring->uring.cq.khead) : 0;
}

unsigned
pgu_ring_cq_tail(PgUringRing *ring)
{
	return ring->active ? io_uring_smp_load_acquire(ring->uring.cq.ktail) : 0;
}

unsigned
pgu_ring_cq_ready(PgUringRing *ring)
{
	return pgu_ring_cq_tail(ring) - pgu_ring_cq_head(ring);
}

/*
 * Is a completion that sits in the CQ, not yet reaped, awaited by someone
 * (pgu_io_slot_waited)?  Looks at the CQEs between head and tail under the
 * completion lock in shared mode, so nobody moves the head meanwhile; if
 * the lock is taken, somebody is draining the ring already: false.
 */
bool
pgu_ring_cq_waited(PgUringRing *ring)
{
	unsigned	head;
	unsigned	tail;
	unsigned	mask;
	bool		waited = false;

	if (!ring->active || pgu_ring_cq_ready(ring) == 0)
		return false;
	if (!LWLockConditionalAcquire(ring->complete_lock, LW_SHARED))
		return false;
	head = io_uring_smp_load_acquire(ring->uring.cq.khead);
	tail = io_uring_smp_load_acquire(ring->uring.cq.ktail);
	mask = *ring->uring.cq.kring_mask;
	for (; head != tail && !waited; head++)
	{
		PgUringSlot *slot = pgu_slot_from_user_data(ring->uring.cq.cqes[head & mask].user_data);

		waited = slot != NULL && pgu_io_slot_waited(slot);
	}
	LWLockRelease(ring->complete_lock);
	return waited;
}

/*
 * Process every ready CQE.  Caller holds complete_lock.  Runs the op
 * callbacks on behalf of whichever backend owns each IO.
 */
static int
pgu_ring_drain_locked(PgUringRing *ring)
{
	int			n = 0;

	for (;;)
	{
		struct io_uring_cqe *cqe = NULL;
		uint64		user_data;
		int32		res;
		PgUringSlot *slot;

		if (io_uring_peek_cqe(&ring->uring, &cqe) != 0 || cqe == NULL)
			break;
		user_data = cqe->user_data;
		res = cqe->res;
		io_uring_cqe_seen(&ring->uring, cqe);
		n++;

		slot = pgu_slot_from_user_data(user_data);
		if (slot == NULL)
		{
			/* cannot happen unless shared memory is corrupt; never ERROR here */
			elog(LOG, "pg_uring: ring %d reaped a completion for no known IO (user_data " UINT64_FORMAT ")",
				 ring->index, user_data);
			continue;
		}
		pgu_io_complete(slot, res, ring);
	}
	if (n > 0)
		pg_atomic_sub_fetch_u32(&ring->inflight, n);
	return n;
}

static int	ring_progress(PgUringRing *ring, bool wait);

/*
 * Drain the ring if nobody else is draining it.  Returns the number reaped.
 */
int
pgu_ring_try_drain(PgUringRing *ring)
{
	int			n;

	if (!ring->active || pgu_ring_cq_ready(ring) == 0)
		return 0;
	if (!LWLockConditionalAcquire(ring->complete_lock, LW_EXCLUSIVE))
		return 0;
	n = pgu_ring_drain_locked(ring);
	LWLockRelease(ring->complete_lock);
	/* what a completion left until its batch was done (a PANIC) */
	pgu_io_after_drain();
	return n;
}

/*
 * Make progress on a ring: drain what is ready (waiting for whoever is
 * draining it now, if anyone); if nothing was ready and 'wait' is set, wait
 * in the kernel, for a bounded time, for the next completion and drain it.
 */
int
pgu_ring_progress(PgUringRing *ring, bool wait)
{
	int			n = ring_progress(ring, wait);

	/* what a completion left until its batch was done (a PANIC) */
	pgu_io_after_drain();
	return n;
}

static int
ring_progress(PgUringRing *ring, bool wait)
{
	int			n;

	if (!ring->active)
		return 0;

	LWLockAcquire(ring->complete_lock, LW_EXCLUSIVE);
	n = pgu_ring_drain_locked(ring);
	if (n == 0 && wait && pg_atomic_read_u32(&ring->inflight) > 0)
	{
		pgu_count(ring, PGU_C_KERNEL_WAITS, 1);
		if (ring->uring.features & IORING_FEAT_EXT_ARG)
		{
			struct io_uring_cqe *cqe;
			struct __kernel_timespec ts;

			ts.tv_sec = 0;
			ts.tv_nsec = PGU_KERNEL_WAIT_MS * 1000000L;
			pgstat_report_wait_start(PG_WAIT_EXTENSION);
			(void) io_uring_wait_cqe_timeout(&ring->uring, &cqe, &ts);
			pgstat_report_wait_end();
		}
		else
		{
			/*
			 * Without EXT_ARG liburing would add a timeout SQE, which needs
			 * the submission lock.  Poll instead.
			 */
			LWLockRelease(ring->complete_lock);
			pg_usleep(100L);
			LWLockAcquire(ring->complete_lock, LW_EXCLUSIVE);
		}
		n = pgu_ring_drain_locked(ring);
	}
	LWLockRelease(ring->complete_lock);
	return n;
}

/* Synchronous fallback: run the IOs in order, emulating LINK semantics. */
static void
pgu_ring_submit_sync(PgUringRing *ring, PgUringSlot **slots, int n)
{
	bool		chain_broken = false;
	TimestampTz now = GetCurrentTimestamp();
	int			i;

	for (i = 0; i < n; i++)
	{
		PgUringSlot *slot = slots[i];
		const PgUringOpInfo *info = pgu_op_info(slot->op);
		int32		res;

		slot->ring = ring->index;
		slot->submit_time = now;
		pg_atomic_write_u32(&slot->state, PGU_SLOT_SUBMITTED);
		if (slot->flags & PGU_IO_LINK)
			pgu_count(ring, PGU_C_LINKED, 1);
		if (slot->flags & PGU_IO_DRAIN)
			pgu_count(ring, PGU_C_DRAINED, 1);

		if (chain_broken)
			res = -ECANCELED;
		else
			res = info->sync_exec(slot);

		/* the chain continues past this IO only if it is linked and succeeded */
		if (slot->flags & PGU_IO_LINK)
			chain_broken = chain_broken || !info->result_ok(slot, res);
		else
			chain_broken = false;

		pgu_count(ring, PGU_C_SUBMITTED, 1);
		pgu_io_complete(slot, res, ring);
	}
	pgu_io_after_drain();
}

/*
 * Make the SQEs we filled visible to the kernel without entering it (as
 * liburing's io_uring_submit does first).  Caller holds submit_lock.
 */
static void
sq_publish(struct io_uring *uring)
{
	struct io_uring_sq *sq = &uring->sq;

	if (sq->sqe_head != sq->sqe_tail)
	{
		sq->sqe_head = sq->sqe_tail;
		io_uring_smp_store_release(sq->ktail, sq->sqe_tail);
	}
}

/*
 * The kernel took only the first 'cut' of our n entries, and entry cut - 1
 * is linked to entry cut: the kernel has ended the chain there, and the
 * rest would start unordered.  Wait for the part it took to complete.  If
 * it succeeded, the rest of the chain may run as it is (what it was linked
 * behind has succeeded).  If not, the kernel would have cancelled the rest:
 * turn those entries, still in the SQ and not yet read by the kernel, into
 * no-ops that complete as cancelled.  Caller holds submit_lock.
 */
static void
repair_split_chain(PgUringRing *ring, PgUringSlot **slots, int cut, int n)
{
	PgUringSlot *last = slots[cut - 1];
	struct io_uring_sq *sq = &ring->uring.sq;
	unsigned	head;
	int			i;

	elog(LOG, "pg_uring: the kernel took %d of %d entries submitted to ring %d, inside a link chain; the rest of the chain waits for the part it took",
		 cut, n, ring->index);
	/* what completions defer (a PANIC) waits until the chain is repaired */
	while (pg_atomic_read_u32(&last->state) != PGU_SLOT_COMPLETED)
		(void) ring_progress(ring, true);
	pg_read_barrier();
	if (pgu_op_info(last->op)->result_ok(last, last->result))
		return;

	head = io_uring_smp_load_acquire(sq->khead);
	for (i = cut; i < n; i++)
	{
		PgUringSlot *slot = slots[i];
		struct io_uring_sqe *sqe;
		unsigned	pos = (head + (unsigned) (i - cut)) & *sq->kring_mask;

		/*
		 * The SQ array maps ring positions to SQEs, unless the ring has none
		 * (IORING_SETUP_NO_SQARRAY, which liburing 2.6 and later ask for when
		 * the kernel has it): then position and SQE are the same.
		 */
		sqe = &sq->sqes[sq->array != NULL ? sq->array[pos] : pos];
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data64(sqe, pgu_slot_user_data(slot));
		slot->cancel_at_submit = true;
		if (!(slot->flags & PGU_IO_LINK))
			break;
	}
}

/*
 * Submit n staged slots (at most sq_entries, whole chains) to the ring.
 * On return every slot is SUBMITTED (or, in sync mode, COMPLETED).
 */
void
pgu_ring_submit(PgUringRing *ring, PgUringSlot **slots, int n)
{
	int			i;
	int			nlinked = 0;
	int			ndrained = 0;
	TimestampTz now;
	unsigned	base;
	uint32		split;
	unsigned	first_take = 0;
	int			taken = 0;

	Assert(n > 0 && n <= (int) ring->sq_entries);

	if (!ring->active)
	{
		pgu_ring_submit_sync(ring, slots, n);
		return;
	}

	for (;;)
	{
		if (!LWLockConditionalAcquire(ring->submit_lock, LW_EXCLUSIVE))
		{
			pgu_count(ring, PGU_C_SUBMIT_LOCK_WAITS, 1);
			LWLockAcquire(ring->submit_lock, LW_EXCLUSIVE);
		}
		/* only submitters raise inflight, and they hold this lock */
		if (pg_atomic_read_u32(&ring->inflight) + n <= ring->cq_entries)
			break;
		LWLockRelease(ring->submit_lock);
		pgu_count(ring, PGU_C_FULL_WAITS, 1);
		(void) pgu_ring_progress(ring, true);
	}
	pg_atomic_fetch_add_u32(&ring->inflight, n);

	/* From here to the release of the lock nothing may ERROR. */
	now = GetCurrentTimestamp();
	for (i = 0; i < n; i++)
	{
		PgUringSlot *slot = slots[i];
		const PgUringOpInfo *info = pgu_op_info(slot->op);
		struct io_uring_sqe *sqe;
		unsigned	sqe_flags = 0;

		/* every submitter leaves the SQ empty, and n <= sq_entries */
		sqe = io_uring_get_sqe(&ring->uring);
		if (sqe == NULL)
			elog(PANIC, "pg_uring: no free submission queue entry in ring %d", ring->index);
		slot->ring = ring->index;
		slot->submit_time = now;
		info->prep(sqe, slot);
		if (slot->flags & PGU_IO_LINK)
		{
			sqe_flags |= IOSQE_IO_LINK;
			nlinked++;
		}
		if (slot->flags & PGU_IO_DRAIN)
		{
			sqe_flags |= IOSQE_IO_DRAIN;
			ndrained++;
		}
		if (slot->flags & PGU_IO_ASYNC)
			sqe_flags |= IOSQE_ASYNC;
		io_uring_sqe_set_flags(sqe, sqe_flags);
		io_uring_sqe_set_data64(sqe, pgu_slot_user_data(slot));
		pg_atomic_write_u32(&slot->state, PGU_SLOT_SUBMITTED);
	}
	pg_write_barrier();

	/*
	 * Push until the kernel has taken every entry.  It may take fewer than
	 * we offer (no memory for requests): a link chain cut that way is
	 * repaired before the rest goes in.  pg_uring.test_fault "ssplit:N"
	 * offers only the first N entries of a larger batch the first time.
	 */
	base = io_uring_smp_load_acquire(ring->uring.sq.khead);
	if (pgu_test_fault_at("ssplit", &split) && split > 0 && split < (uint32) n)
		first_take = (unsigned) split;
	while (taken < n)
	{
		int			ret;
		int			now;

		if (first_take > 0)
		{
			/* liburing's io_uring_enter returns -errno, as io_uring_submit */
			sq_publish(&ring->uring);
			ret = io_uring_enter(ring->uring.ring_fd, first_take, 0, 0, NULL);
			first_take = 0;
		}
		else
			ret = io_uring_submit(&ring->uring);
		pgu_count(ring, PGU_C_SUBMIT_CALLS, 1);
		now = (int) (io_uring_smp_load_acquire(ring->uring.sq.khead) - base);
		if (now > taken)
		{
			if (now < n && (slots[now - 1]->flags & PGU_IO_LINK))
				repair_split_chain(ring, slots, now, n);
			taken = now;
		}
		if (ret >= 0)
			continue;
		if (ret == -EINTR || ret == -EAGAIN || ret == -EBUSY)
		{
			/* transient: make room and retry (lock order submit -> complete) */
			(void) ring_progress(ring, false);
			pg_usleep(100L);
			continue;
		}
		/* the SQEs are already visible to the kernel: cannot be taken back */
		elog(PANIC, "pg_uring: io_uring_submit on ring %d failed: %s",
			 ring->index, strerror(-ret));
	}

	pgu_count(ring, PGU_C_SUBMITTED, n);
	if (nlinked)
		pgu_count(ring, PGU_C_LINKED, nlinked);
	if (ndrained)
		pgu_count(ring, PGU_C_DRAINED, ndrained);
	LWLockRelease(ring->submit_lock);
	pgu_io_after_drain();
}
