/*-------------------------------------------------------------------------
 *
 * io.c
 *	  The shared IO slot table: slot life cycle, ownership, results, and
 *	  waiting for one IO.
 *
 * Owns: the slot array, its two free lists, the bounce pages (one BLCKSZ
 * page, in shared memory, for each slot of the bounce class: ops that
 * write a copy of a buffer or read a file into shared memory), and the op
 * callback table.
 *
 * Two classes of slots, each with a free list of its own:
 *	- pg_uring.bounce_buffers slots that each own a bounce page, for buffer
 *	  writes and the SQL file reads (pg_uring_read_file, pg_uring_batch
 *	  with reads, the read benchmark);
 *	- pg_uring.max_ios slots without one, for reads straight into shared
 *	  buffers, fsyncs, hints and NOPs.
 * Neither class takes the other's slots, so reads (many, in flight a long
 * time) never starve write-back, and the shared memory that pages cost
 * grows with the writes that need them, not with max_ios.
 *
 * Invariants kept here:
 *	- A slot's generation changes every time it is handed out; user_data
 *	  carries (generation, index), so a late or stale completion never
 *	  matches a reused slot.
 *	- Only the owner moves a slot out of FREE, STAGED or COMPLETED; any
 *	  process moves it from SUBMITTED to COMPLETED, after storing the result
 *	  and running the op's completion callback.
 *	- An owner never releases a slot whose IO the kernel may still be
 *	  executing.  On ERROR, transaction or subtransaction abort and process
 *	  exit, pgu_io_cleanup_mine() waits for every submitted IO of this
 *	  process (draining, never sleeping on the reaper alone) and only then
 *	  frees its slots.
 *	- Waiting for a slot drains the ring rather than sleeping until the
 *	  issuer gets around to it.  Waiting for a free slot never errors: it
 *	  drains and sleeps until one is released.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/wait_event.h"

#include "compat.h"
#include "ring.h"

/* one class of slots: the bounce class is [0, nslots), the plain one follows */
typedef struct PgUringSlotClass
{
	int			nslots;
	int			free_head;
	int			nfree;
} PgUringSlotClass;

#define CLASS_PLAIN		0
#define CLASS_BOUNCE	1

typedef struct PgUringIoShared
{
	slock_t		lock;			/* protects the free lists */
	int			nslots;
	PgUringSlotClass class[2];
	ConditionVariable slot_freed;
} PgUringIoShared;

static PgUringIoShared *io_shared = NULL;
static PgUringSlot *slots = NULL;
static char *bounce = NULL;

static const PgUringOpInfo *op_table[PGU_NUM_OPS];

/* slots this process owns (staged, submitted or completed) */
static int	my_slot_count = 0;
static bool callbacks_registered = false;
static bool in_cleanup = false;

#define BOUNCE_ALIGN 4096

void
pgu_register_op(PgUringOp op, const PgUringOpInfo *info)
{
	Assert(op >= 0 && op < PGU_NUM_OPS);
	op_table[op] = info;
}

const PgUringOpInfo *
pgu_op_lookup(int op)
{
	if (op < 0 || op >= PGU_NUM_OPS)
		return NULL;
	return op_table[op];
}

const PgUringOpInfo *
pgu_op_info(int op)
{
	if (op < 0 || op >= PGU_NUM_OPS || op_table[op] == NULL)
		elog(PANIC, "pg_uring: unknown op %d", op);
	return op_table[op];
}

/* every slot: pg_uring.bounce_buffers with a page, pg_uring.max_ios without */
static int
all_slots(void)
{
	return pgu_bounce_buffers + pgu_max_ios;
}

Size
pgu_io_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(PgUringIoShared));

	size = add_size(size, mul_size(all_slots(), MAXALIGN(sizeof(PgUringSlot))));
	size = add_size(size, BOUNCE_ALIGN);
	size = add_size(size, mul_size(pgu_bounce_buffers, BLCKSZ));
	return size;
}

static void
class_init(PgUringSlotClass *c, int first, int n)
{
	int			i;

	c->nslots = n;
	c->nfree = n;
	c->free_head = n > 0 ? first : -1;
	for (i = first; i < first + n; i++)
		slots[i].next_free = (i + 1 < first + n) ? i + 1 : -1;
}

void
pgu_io_shmem_init(void)
{
	bool		found;
	char	   *base;
	int			i;

	base = ShmemInitStruct("pg_uring io slots", pgu_io_shmem_size(), &found);
	io_shared = (PgUringIoShared *) base;
	slots = (PgUringSlot *) (base + MAXALIGN(sizeof(PgUringIoShared)));
	bounce = (char *) TYPEALIGN(BOUNCE_ALIGN, (char *) slots +
								all_slots() * MAXALIGN(sizeof(PgUringSlot)));
	if (found)
		return;

	SpinLockInit(&io_shared->lock);
	io_shared->nslots = all_slots();
	ConditionVariableInit(&io_shared->slot_freed);
	for (i = 0; i < io_shared->nslots; i++)
	{
		PgUringSlot *slot = &slots[i];

		memset(slot, 0, sizeof(PgUringSlot));
		pg_atomic_init_u32(&slot->state, PGU_SLOT_FREE);
		slot->owner_procno = -1;
		slot->ring = -1;
		ConditionVariableInit(&slot->cv);
	}
	class_init(&io_shared->class[CLASS_BOUNCE], 0, pgu_bounce_buffers);
	class_init(&io_shared->class[CLASS_PLAIN], pgu_bounce_buffers,
			   io_shared->nslots - pgu_bounce_buffers);
}

/* all slots, of both classes */
int
pgu_io_nslots(void)
{
	return io_shared->nslots;
}

/* slots of one class: with a bounce page, or without */
int
pgu_io_nslots_of(bool with_bounce)
{
	return io_shared->class[with_bounce ? CLASS_BOUNCE : CLASS_PLAIN].nslots;
}

PgUringSlot *
pgu_slot(int i)
{
	return &slots[i];
}

char *
pgu_slot_bounce(int i)
{
	if (i < 0 || i >= io_shared->class[CLASS_BOUNCE].nslots)
		elog(PANIC, "pg_uring: IO slot %d has no bounce page", i);
	return bounce + (Size) i * BLCKSZ;
}

uint64
pgu_slot_user_data(PgUringSlot *slot)
{
	return ((uint64) slot->generation << 32) | (uint64) (slot - slots);
}

PgUringSlot *
pgu_slot_from_user_data(uint64 user_data)
{
	uint32		index = (uint32) (user_data & 0xFFFFFFFF);
	uint32		generation = (uint32) (user_data >> 32);
	PgUringSlot *slot;

	if (index >= (uint32) io_shared->nslots)
		return NULL;
	slot = &slots[index];
	if (slot->generation != generation ||
		pg_atomic_read_u32(&slot->state) != PGU_SLOT_SUBMITTED)
		return NULL;
	return slot;
}

/* ------------------------------------------------------------------------
 * Cleanup at abort and exit
 * ------------------------------------------------------------------------
 */

static void
pgu_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			pgu_io_cleanup_mine();
			break;
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			if (my_slot_count > 0)
			{
				elog(WARNING, "pg_uring: %d IO slots still held at commit", my_slot_count);
				pgu_io_cleanup_mine();
			}
			break;
		default:
			break;
	}
}

static void
pgu_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	/*
	 * Wait for and free every slot of this process: the failed call's, and
	 * also those of a scan of an outer query that reads ahead (the only IOs
	 * that stay in flight between calls).  Such a scan holds no pin on
	 * them; it finds its handles gone (pgu_io_handle_valid) and starts its
	 * window over.  We may only wait here: the pins of later issues belong
	 * to resource owners.
	 */
	if (event == SUBXACT_EVENT_ABORT_SUB)
		pgu_io_cleanup_mine();
}

static void
pgu_exit_callback(int code, Datum arg)
{
	pgu_io_cleanup_mine();
}

static void
pgu_register_callbacks(void)
{
	if (callbacks_registered)
		return;
	RegisterXactCallback(pgu_xact_callback, NULL);
	RegisterSubXactCallback(pgu_subxact_callback, NULL);
	/* lazily, per process: children start with an empty list */
	before_shmem_exit(pgu_exit_callback, (Datum) 0);
	callbacks_registered = true;
}

/* ------------------------------------------------------------------------
 * Owner API
 * ------------------------------------------------------------------------
 */

PgUringSlot *
pgu_io_slot(PgUringHandle h)
{
	PgUringSlot *slot;

	Assert(h.slot >= 0 && h.slot < io_shared->nslots);
	slot = &slots[h.slot];
	Assert(slot->generation == h.generation);
	Assert(slot->owner_pid == MyProcPid);
	return slot;
}

/*
 * Hand out n slots, all or nothing, waiting (not failing) while too few
 * are free.  The caller must hold no staged slots while it waits, or two
 * backends could wait for each other.
 */
static void
init_acquired(PgUringHandle *h, int n, int myring)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		PgUringSlot *slot = &slots[h[i].slot];

		slot->generation++;
		h[i].generation = slot->generation;
		slot->next_free = -1;
		slot->owner_procno = MyProc ? PGU_PROC_NUMBER(MyProc) : -1;
		slot->owner_pid = MyProcPid;
		slot->ring = myring;
		slot->op = PGU_OP_NOP;
		slot->flags = 0;
		slot->reaped_by = PGU_REAPED_NONE;
		slot->cancel_at_submit = false;
		slot->result = 0;
		slot->completion_seq = 0;
		slot->submit_time = 0;
		slot->complete_time = 0;
		memset(&slot->target, 0, sizeof(slot->target));
		pg_atomic_write_u32(&slot->state, PGU_SLOT_STAGED);
	}
	my_slot_count += n;
}

static bool
take_free(PgUringHandle *h, int n, int cls, int keep)
{
	PgUringSlotClass *c = &io_shared->class[cls];
	int			i;

	SpinLockAcquire(&io_shared->lock);
	if (c->nfree < n + keep)
	{
		SpinLockRelease(&io_shared->lock);
		return false;
	}
	for (i = 0; i < n; i++)
	{
		h[i].slot = c->free_head;
		c->free_head = slots[h[i].slot].next_free;
	}
	c->nfree -= n;
	SpinLockRelease(&io_shared->lock);
	return true;
}

/*
 * Hand out n slots of a class if they are free right now, leaving at least
 * keep of them free; never waits.
 */
static bool
try_acquire(PgUringHandle *h, int n, int cls, int keep)
{
	pgu_require_loaded();
	if (n <= 0 || n > io_shared->class[cls].nslots)
		return false;
	pgu_register_callbacks();
	if (!take_free(h, n, cls, keep))
		return false;
	init_acquired(h, n, pgu_my_ring());
	return true;
}

static void
acquire(PgUringHandle *h, int n, int cls)
{
	int			myring;
	bool		slept = false;

	pgu_require_loaded();
	if (n <= 0)
		elog(ERROR, "pg_uring: invalid IO slot request of %d", n);
	if (n > io_shared->class[cls].nslots)
	{
		if (cls == CLASS_BOUNCE)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("pg_uring: request for %d IO slots with a bounce page exceeds pg_uring.bounce_buffers (%d)",
							n, io_shared->class[cls].nslots),
					 errhint("Raise pg_uring.bounce_buffers or use a smaller batch or depth.")));
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("pg_uring: request for %d IO slots exceeds pg_uring.max_ios (%d)",
						n, io_shared->class[cls].nslots),
				 errhint("Raise pg_uring.max_ios or use a smaller batch or depth.")));
	}
	pgu_register_callbacks();
	myring = pgu_my_ring();

	while (!take_free(h, n, cls, 0))
	{
		/* class exhausted: help completions along, then sleep for a release */
		if (!slept)
			pgu_count(pgu_ring(myring), PGU_C_SLOT_WAITS, 1);
		slept = true;
		(void) pgu_ring_try_drain(pgu_ring(myring));
		(void) ConditionVariableTimedSleep(&io_shared->slot_freed, 10,
										   PG_WAIT_EXTENSION);
	}
	if (slept)
		ConditionVariableCancelSleep();
	init_acquired(h, n, myring);
}

/* slots without a bounce page: reads into shared buffers, fsyncs, hints */
bool
pgu_io_try_acquire(PgUringHandle *h, int n)
{
	return try_acquire(h, n, CLASS_PLAIN, 0);
}

/*
 * The same, for read-ahead: only while more than a quarter of the plain
 * class would stay free, so that scans reading ahead (many, each with IOs
 * in flight) never starve prewarm, WAL fsyncs and hints of a slot.
 */
bool
pgu_io_try_acquire_spare(PgUringHandle *h, int n)
{
	return try_acquire(h, n, CLASS_PLAIN, io_shared->class[CLASS_PLAIN].nslots / 4);
}

/*
 * Is this handle still the caller's IO?  Cleanup at (sub)transaction abort
 * waits for and frees every slot of the process, so an object that outlives
 * a subtransaction abort (an outer query's scan) may hold handles that were
 * freed under it: a freed or reused slot has another generation or owner.
 */
bool
pgu_io_handle_valid(PgUringHandle h)
{
	PgUringSlot *slot;

	if (io_shared == NULL || h.slot < 0 || h.slot >= io_shared->nslots)
		return false;
	slot = &slots[h.slot];
	return slot->generation == h.generation && slot->owner_pid == MyProcPid &&
		pg_atomic_read_u32(&slot->state) != PGU_SLOT_FREE;
}

void
pgu_io_acquire(PgUringHandle *h, int n)
{
	acquire(h, n, CLASS_PLAIN);
}

/* slots with a bounce page (pgu_slot_bounce): buffer writes, file reads */
bool
pgu_io_try_acquire_bounce(PgUringHandle *h, int n)
{
	return try_acquire(h, n, CLASS_BOUNCE, 0);
}

void
pgu_io_acquire_bounce(PgUringHandle *h, int n)
{
	acquire(h, n, CLASS_BOUNCE);
}

/*
 * Does any process sleep on the result of this submitted IO, as the op's
 * has_waiters callback knows (a core backend in WaitIO on one of its
 * buffers)?  Reads shared state without locks: a hint for the reaper
 * (reaper.c via ring.c), which then drains the ring at once instead of
 * leaving it to the issuer.  An issuer's own sleep on its slot
 * (pg_uring.test_hold_reap) does not count: that setting exists to leave
 * completions to others, and pg_uring.reaper_delay then says when the
 * reaper steps in.
 */
bool
pgu_io_slot_waited(PgUringSlot *slot)
{
	const PgUringOpInfo *info;

	if (pg_atomic_read_u32(&slot->state) != PGU_SLOT_SUBMITTED)
		return false;
	pg_read_barrier();
	info = slot->op < PGU_NUM_OPS ? op_table[slot->op] : NULL;
	return info != NULL && info->has_waiters != NULL && info->has_waiters(slot);
}

/*
 * Submit staged slots to this backend's ring, in order.  Links never cross
 * a batch split: a batch is cut only after an IO without PGU_IO_LINK.
 */
void
pgu_io_submit(PgUringHandle *h, int n)
{
	PgUringRing *ring = pgu_ring(pgu_my_ring());
	PgUringSlot **batch;
	int			start = 0;
	int			maxbatch = (int) ring->sq_entries;

	batch = palloc(sizeof(PgUringSlot *) * n);
	while (start < n)
	{
		int			end = start;
		int			cut = -1;

		/* longest prefix of at most maxbatch that ends outside a chain */
		while (end < n && end - start < maxbatch)
		{
			PgUringSlot *slot = pgu_io_slot(h[end]);

			Assert(pg_atomic_read_u32(&slot->state) == PGU_SLOT_STAGED);
			batch[end - start] = slot;
			end++;
			if (!(slot->flags & PGU_IO_LINK))
				cut = end;
		}
		if (end == n)
			cut = n;			/* a trailing LINK simply has no successor */
		if (cut < 0)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("pg_uring: linked chain longer than the ring's %d entries", maxbatch)));
		pgu_ring_submit(ring, batch, cut - start);
		start = cut;
	}
	pfree(batch);
}

/*
 * Reuse a completed slot for a new IO without returning it to the free
 * list (a new generation, so nothing can confuse the two IOs).
 */
void
pgu_io_restage(PgUringHandle *h)
{
	PgUringSlot *slot = pgu_io_slot(*h);

	if (pg_atomic_read_u32(&slot->state) != PGU_SLOT_COMPLETED)
		elog(ERROR, "pg_uring: restaging an IO slot that has not completed");
	slot->generation++;
	h->generation = slot->generation;
	slot->reaped_by = PGU_REAPED_NONE;
	slot->cancel_at_submit = false;
	slot->result = 0;
	slot->completion_seq = 0;
	slot->submit_time = 0;
	slot->complete_time = 0;
	pg_atomic_write_u32(&slot->state, PGU_SLOT_STAGED);
}

bool
pgu_io_is_completed(PgUringHandle h)
{
	PgUringSlot *slot = pgu_io_slot(h);

	if (pg_atomic_read_u32(&slot->state) == PGU_SLOT_COMPLETED)
	{
		pg_read_barrier();
		return true;
	}
	return false;
}

/*
 * Wait for one IO.  Drains the IO's ring (completing whatever other
 * backends' IOs are ready too) instead of sleeping until someone else does.
 * pg_uring.test_hold_reap makes the issuer sleep instead, so that another
 * backend or the reaper must complete it; cleanup ignores it.
 */
static void
pgu_io_wait_slot(PgUringSlot *slot)
{
	bool		slept = false;

	for (;;)
	{
		uint32		state = pg_atomic_read_u32(&slot->state);

		if (state == PGU_SLOT_COMPLETED)
			break;
		if (state != PGU_SLOT_SUBMITTED)
			elog(PANIC, "pg_uring: waiting for IO slot in state %u", state);

		if (pgu_test_hold_reap && !in_cleanup)
		{
			slept = true;
			(void) ConditionVariableTimedSleep(&slot->cv, 100, PG_WAIT_EXTENSION);
		}
		else
			(void) pgu_ring_progress(pgu_ring(slot->ring), true);
	}
	if (slept)
		ConditionVariableCancelSleep();
	pg_read_barrier();
}

void
pgu_io_wait(PgUringHandle h)
{
	pgu_io_wait_slot(pgu_io_slot(h));
}

void
pgu_io_wait_many(PgUringHandle *h, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		pgu_io_wait(h[i]);
}

static void
pgu_io_release_slot(PgUringSlot *slot)
{
	int			index = slot - slots;
	uint32		state = pg_atomic_read_u32(&slot->state);

	const PgUringOpInfo *info;

	if (state != PGU_SLOT_COMPLETED && state != PGU_SLOT_STAGED)
		elog(PANIC, "pg_uring: releasing IO slot %d in state %u", index, state);
	info = pgu_op_lookup(slot->op);
	if (info && info->release)
		info->release(slot);
	slot->owner_pid = 0;
	slot->owner_procno = -1;
	pg_atomic_write_u32(&slot->state, PGU_SLOT_FREE);

	{
		PgUringSlotClass *c = &io_shared->class[index < io_shared->class[CLASS_BOUNCE].nslots ? CLASS_BOUNCE : CLASS_PLAIN];

		SpinLockAcquire(&io_shared->lock);
		slot->next_free = c->free_head;
		c->free_head = index;
		c->nfree++;
		SpinLockRelease(&io_shared->lock);
	}
	my_slot_count--;
}

void
pgu_io_release(PgUringHandle *h, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		pgu_io_release_slot(pgu_io_slot(h[i]));
	ConditionVariableBroadcast(&io_shared->slot_freed);
}

/*
 * Wait for every IO this process has submitted, undo the ones it staged but
 * never submitted, then free all its slots.  Used on ERROR, abort and exit.  Holds interrupts: a wait here must not
 * be cut short by the very cancel that got us here.
 */
void
pgu_io_cleanup_mine(void)
{
	int			i;

	if (my_slot_count == 0 || io_shared == NULL)
		return;

	HOLD_INTERRUPTS();
	in_cleanup = true;

	/*
	 * Three passes: wait for everything submitted, undo everything staged,
	 * then free it all.  A staged slot may lend its page to another slot's
	 * IO (the further pages of a combined write), and an undo may read such
	 * a slot: nothing is freed while any IO or undo of ours may still use it.
	 */
	for (i = 0; i < io_shared->nslots; i++)
	{
		PgUringSlot *slot = &slots[i];

		if (slot->owner_pid == MyProcPid &&
			pg_atomic_read_u32(&slot->state) == PGU_SLOT_SUBMITTED)
			pgu_io_wait_slot(slot);
	}
	for (i = 0; i < io_shared->nslots; i++)
	{
		PgUringSlot *slot = &slots[i];

		if (slot->owner_pid == MyProcPid &&
			pg_atomic_read_u32(&slot->state) == PGU_SLOT_STAGED)
		{
			const PgUringOpInfo *info = pgu_op_lookup(slot->op);

			if (info && info->abandon)
				info->abandon(slot);
		}
	}
	for (i = 0; i < io_shared->nslots && my_slot_count > 0; i++)
	{
		PgUringSlot *slot = &slots[i];

		if (slot->owner_pid == MyProcPid &&
			pg_atomic_read_u32(&slot->state) != PGU_SLOT_FREE)
			pgu_io_release_slot(slot);
	}
	in_cleanup = false;
	ConditionVariableBroadcast(&io_shared->slot_freed);
	RESUME_INTERRUPTS();
}

/* ------------------------------------------------------------------------
 * Completion: runs in whichever process reaped the CQE
 * ------------------------------------------------------------------------
 */
void
pgu_io_complete(PgUringSlot *slot, int32 result, PgUringRing *ring)
{
	const PgUringOpInfo *info = pgu_op_info(slot->op);
	PgUringCounter who;

	/* the rest of a chain the kernel split after a failure (ring.c) */
	if (slot->cancel_at_submit)
		result = -ECANCELED;
	slot->result = result;
	slot->complete_time = GetCurrentTimestamp();
	slot->completion_seq = pg_atomic_fetch_add_u64(&ring->completion_seq, 1) + 1;
	if (pgu_am_reaper)
	{
		slot->reaped_by = PGU_REAPED_REAPER;
		who = PGU_C_REAPED_REAPER;
	}
	else if (slot->owner_pid == MyProcPid)
	{
		slot->reaped_by = PGU_REAPED_ISSUER;
		who = PGU_C_REAPED_ISSUER;
	}
	else
	{
		slot->reaped_by = PGU_REAPED_OTHER;
		who = PGU_C_REAPED_OTHER;
	}
	if (info->complete)
		info->complete(slot);

	pgu_count(ring, PGU_C_COMPLETED, 1);
	pgu_count(ring, who, 1);
	if (slot->result == -ECANCELED)
		pgu_count(ring, PGU_C_CANCELLED, 1);
	else if (slot->result < 0)
		pgu_count(ring, PGU_C_ERRORS, 1);

	pg_write_barrier();
	pg_atomic_write_u32(&slot->state, PGU_SLOT_COMPLETED);
	ConditionVariableBroadcast(&slot->cv);
}

/*
 * Work a completion callback leaves until the batch of completions it
 * belongs to has been processed (a PANIC that should come after the
 * cancelled IOs of the same chain were seen).  Process-local: it runs in
 * the process that ran the callback, when the ring code calls
 * pgu_io_after_drain() at the end of every drain.
 */
static void (*after_drain_fn) (void) = NULL;

void
pgu_io_defer_after_drain(void (*fn) (void))
{
	after_drain_fn = fn;
}

void
pgu_io_after_drain(void)
{
	void		(*fn) (void) = after_drain_fn;

	if (fn == NULL)
		return;
	after_drain_fn = NULL;
	fn();
}
