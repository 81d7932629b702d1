/*-------------------------------------------------------------------------
 *
 * bufop.c
 *	  The buffer-read op, and the shared state of buffers pg_uring does IO
 *	  on: completing reads from any process, ending any pg_uring IO on a
 *	  shared buffer, and letting a waiter finish it.
 *
 * Owns: the per-buffer map (int32[NBuffers], buffer id -> IO slot doing a
 * pg_uring read or write on it), the server-wide pin budget of readers and
 * write-backs, and the PGU_OP_BUFREAD callbacks (prep, sync, complete,
 * abandon, describe, has_waiters).  The reader object that stages and
 * submits these reads is in bufread.c; the write op in writeop.c ends
 * its IOs with pgu_end_buffer_io() from here.
 *
 * Invariants kept here:
 *	- Completion (in any process) verifies each page with flags 0 and never
 *	  ERRORs: success sets BM_VALID, failure sets BM_IO_ERROR and leaves the
 *	  buffer not valid, so the next reader redoes it through core and gets
 *	  core's error.  Either way BM_IO_IN_PROGRESS is cleared and the
 *	  buffer's IO condition variable broadcast.
 *	- The buffer's map entry is set and cleared in the same header-lock
 *	  hold as BM_IO_IN_PROGRESS, so a completion never erases a newer IO's.
 *	- A staged read that is never submitted is undone by abandon: started
 *	  runs end as failed (waiters woken), unstarted claims need nothing but
 *	  the unpin the resource owner does.
 *	- Every pin of a reader or a write-back is taken first from a budget of
 *	  a quarter of shared_buffers (pgu_pins_*), so other sessions do not run
 *	  out of unpinned buffers because of us; a process's share goes back at
 *	  exit.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>
#include <unistd.h>

#include "access/xlog.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "storage/buf_internals.h"
#include "storage/bufmgr.h"
#include "storage/checksum.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/proclist.h"
#include "storage/shmem.h"
#include "utils/wait_event.h"

#include "ring.h"

/* not exported by a header in PostgreSQL 15 */
extern bool ignore_checksum_failure;

/* failed_mask has a bit per block of a read */
StaticAssertDecl(PGU_MAX_COMBINE < 32, "PGU_MAX_COMBINE must fit failed_mask");

static int32 *buf_io_map = NULL;

/* pins held by pg_uring's readers and writers, server-wide */
typedef struct PgUringPinBudget
{
	pg_atomic_uint32 held;
	uint32		max;
} PgUringPinBudget;

static PgUringPinBudget *pin_budget = NULL;
static int	my_pins = 0;		/* taken by this process */

/* ------------------------------------------------------------------------
 * Shared memory: the per-buffer map
 * ------------------------------------------------------------------------
 */
Size
pgu_bufread_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(PgUringPinBudget)), mul_size(NBuffers, sizeof(int32)));
}

void
pgu_bufread_shmem_init(void)
{
	bool		found;
	int			i;
	char	   *base;

	base = ShmemInitStruct("pg_uring buffer map", pgu_bufread_shmem_size(), &found);
	pin_budget = (PgUringPinBudget *) base;
	buf_io_map = (int32 *) (base + MAXALIGN(sizeof(PgUringPinBudget)));
	if (found)
		return;
	pg_atomic_init_u32(&pin_budget->held, 0);
	pin_budget->max = Max(16, NBuffers / 4);
	for (i = 0; i < NBuffers; i++)
		buf_io_map[i] = -1;
}

/* ------------------------------------------------------------------------
 * The server-wide pin budget of readers and writers
 * ------------------------------------------------------------------------
 */
static void
pins_exit(int code, Datum arg)
{
	pgu_pins_release_all();
}

/*
 * Take one pin from the budget, if it has one left.  Every buffer a reader
 * claims and every buffer a write-back pins is taken from it first, and
 * given back when the pin is dropped, so that all of pg_uring together
 * never holds more than a quarter of shared_buffers pinned: sessions on a
 * small pool do not run out of unpinned buffers because of us.
 */
bool
pgu_pins_try_reserve(void)
{
	static bool exit_registered = false;
	uint32		cur = pg_atomic_read_u32(&pin_budget->held);

	while (cur < pin_budget->max)
	{
		if (pg_atomic_compare_exchange_u32(&pin_budget->held, &cur, cur + 1))
		{
			if (!exit_registered)
			{
				/* per process, lazily: children start with an empty list */
				before_shmem_exit(pins_exit, (Datum) 0);
				exit_registered = true;
			}
			my_pins++;
			return true;
		}
	}
	return false;
}

void
pgu_pins_release(int n)
{
	/* an abort may have given back everything already (release_all) */
	n = Min(n, my_pins);
	if (n <= 0)
		return;
	my_pins -= n;
	pg_atomic_sub_fetch_u32(&pin_budget->held, (uint32) n);
}

/* ERROR, abort, exit: our pins are (or are about to be) gone */
void
pgu_pins_release_all(void)
{
	if (pin_budget != NULL)
		pgu_pins_release(my_pins);
}

/*
 * The budget is spent and we hold no pin of our own to give back: other
 * processes' pins go as their IOs complete.  Nothing of ours is staged.
 */
void
pgu_pins_wait(void)
{
	CHECK_FOR_INTERRUPTS();
	pgstat_report_wait_start(PG_WAIT_EXTENSION);
	pg_usleep(1000L);
	pgstat_report_wait_end();
}

/*
 * Writes (writeback.c, writeop.c) record their slot in the same map, so that whoever
 * waits on a buffer knows which ring to drain, whatever the IO.  Set with
 * the buffer header locked, as BM_IO_IN_PROGRESS is set (or, for the pages
 * of a combined write, while that IO of ours is in progress), and cleared
 * as it is cleared, in the same hold.
 */
void
pgu_bufmap_set(int buf_id, int slot)
{
	buf_io_map[buf_id] = slot;
}

/* the slot doing a pg_uring IO on this buffer, or -1 (a hint unless locked) */
int
pgu_bufmap_get(int buf_id)
{
	return buf_io_map[buf_id];
}


/* ------------------------------------------------------------------------
 * The op: prep, sync, complete (any process), abandon, describe
 * ------------------------------------------------------------------------
 */
static off_t
seg_offset(BlockNumber blkno)
{
	return (off_t) (blkno % ((BlockNumber) RELSEG_SIZE)) * BLCKSZ;
}

static void
bufread_prep(struct io_uring_sqe *sqe, PgUringSlot *slot)
{
	PgUringBufTarget *t = &slot->target.buf;

	io_uring_prep_readv(sqe, t->fd, t->iov, t->nblocks, seg_offset(t->first_block));
}

static int32
bufread_sync(PgUringSlot *slot)
{
	PgUringBufTarget *t = &slot->target.buf;
	ssize_t		rc;

	pgu_test_pause_at("sync_read", t->first_block);
	rc = preadv(t->fd, t->iov, t->nblocks, seg_offset(t->first_block));
	return rc < 0 ? -errno : (int32) rc;
}

static bool
bufread_result_ok(PgUringSlot *slot, int32 result)
{
	return result == (int32) slot->target.buf.nblocks * BLCKSZ;
}

static bool
page_ok(Page page, BlockNumber blkno)
{
	if (!PageIsVerifiedExtended(page, blkno, 0))
		return false;

	/*
	 * With flags 0 PageIsVerifiedExtended still honours the *drainer's*
	 * ignore_checksum_failure.  The owner's setting is applied when core
	 * re-reads a failed block, so here a checksum mismatch always fails.
	 */
	if (ignore_checksum_failure && DataChecksumsEnabled() && !PageIsNew(page) &&
		pg_checksum_page((char *) page, blkno) != ((PageHeader) page)->pd_checksum)
		return false;
	return true;
}

/*
 * End the IO on a shared buffer, in any process: under the header lock
 * clear BM_IO_IN_PROGRESS and clear_bits and set set_bits; a write that
 * landed (written) also clears BM_DIRTY and BM_CHECKPOINT_NEEDED, unless the
 * page was dirtied again meanwhile (BM_JUST_DIRTIED); an IO that holds a
 * pin of its own (unpin, read-ahead: design.md section 7) drops it in the
 * same hold, so nobody ever sees a buffer that is done but still pinned by
 * an IO, and wakes a cleanup-lock waiter (VACUUM) that our pin was the last
 * one in the way of, as UnpinBuffer does.  Then forget the buffer's slot
 * and wake whoever sleeps on its IO.
 */
static void
end_buffer_io(int buf_id, uint32 clear_bits, uint32 set_bits, bool written,
			  bool unpin)
{
	BufferDesc *desc = GetBufferDescriptor(buf_id);
	BlockNumber blkno = desc->tag.blockNum;
	uint32		state;
	int			pin_waiter = -1;

	state = LockBufHdr(desc);
	Assert(state & BM_IO_IN_PROGRESS);
	state &= ~(BM_IO_IN_PROGRESS | clear_bits);
	state |= set_bits;
	if (written && !(state & BM_JUST_DIRTIED))
		state &= ~(BM_DIRTY | BM_CHECKPOINT_NEEDED);
	if (unpin)
	{
		Assert(BUF_STATE_GET_REFCOUNT(state) > 0);
		state -= BUF_REFCOUNT_ONE;
		if ((state & BM_PIN_COUNT_WAITER) && BUF_STATE_GET_REFCOUNT(state) == 1)
		{
			pin_waiter = desc->wait_backend_pgprocno;
			state &= ~BM_PIN_COUNT_WAITER;
		}
	}
	/* in the same hold: once unlocked, a newer IO may set its own entry */
	buf_io_map[buf_id] = -1;
	UnlockBufHdr(desc, state);
	pgu_test_pause_at("end_io", (int64) blkno);
	ConditionVariableBroadcast(BufferDescriptorGetIOCV(desc));
	if (pin_waiter >= 0)
		ProcSendSignal(pin_waiter);
}

/* a read or a write (writeop.c) of a buffer the owner keeps pinned */
void
pgu_end_buffer_io(int buf_id, uint32 clear_bits, uint32 set_bits, bool written)
{
	end_buffer_io(buf_id, clear_bits, set_bits, written, false);
}

static void
finish_buffer(int buf_id, bool valid, bool unpin)
{
	if (valid)
		end_buffer_io(buf_id, BM_IO_ERROR, BM_VALID, false, unpin);
	else
		end_buffer_io(buf_id, BM_VALID, BM_IO_ERROR, false, unpin);
}

/*
 * Runs in whichever process reaped the CQE.  No ERROR, no palloc, no lock
 * but buffer header spinlocks.
 */
static void
bufread_complete(PgUringSlot *slot)
{
	PgUringBufTarget *t = &slot->target.buf;
	PgUringRing *ring = pgu_ring(slot->ring);
	int32		res = slot->result;
	Oid			dboid = PGU_RF_DB(t->rfile);
	uint32		failed = 0;
	int			waited = 0;
	int			i;

	if (t->fault != PGU_FAULT_NONE && t->fault_block >= t->first_block &&
		t->fault_block < t->first_block + t->nblocks && res >= 0)
	{
		if (t->fault == PGU_FAULT_EIO)
			res = -EIO;
		else
			res = Min(res, (int32) (t->fault_block - t->first_block) * BLCKSZ + BLCKSZ / 2);
		slot->result = res;
	}

	for (i = 0; i < t->nblocks; i++)
	{
		Page		page = (Page) BufferGetBlock(t->buf_ids[i] + 1);
		bool		valid;

		valid = res >= (int32) (i + 1) * BLCKSZ &&
			page_ok(page, t->first_block + i);
		if (!valid)
			failed |= (1U << i);
		/* a core backend already asleep on a block we read ahead */
		if (t->readahead && pgu_buffer_io_waited(t->buf_ids[i]))
			waited++;
		finish_buffer(t->buf_ids[i], valid, t->io_pinned);
	}
	t->failed_mask = failed;
	if (t->readahead)
	{
		pgu_count_ra(ring, dboid, PGU_C_RA_READS, 1);
		pgu_count_ra(ring, dboid, PGU_C_RA_BLOCKS, t->nblocks);
		if (failed)
			pgu_count_ra(ring, dboid, PGU_C_RA_FAILURES, pg_popcount32(failed));
		if (waited)
			pgu_count_ra(ring, dboid, PGU_C_RA_WAITED, waited);
	}
	else
	{
		pgu_count(ring, PGU_C_BUF_READS, 1);
		pgu_count(ring, PGU_C_BUF_BLOCKS, t->nblocks);
		if (failed)
			pgu_count(ring, PGU_C_BUF_FAILURES, pg_popcount32(failed));
	}
}

/*
 * A staged read that will never be submitted.  Its claims were never made
 * IO-in-progress unless the run was started: those are ended as failed (not
 * valid, waiters woken); unstarted claims are only pinned, not valid
 * buffers, which the resource owner unpins and anyone may read later.
 */
static void
bufread_abandon(PgUringSlot *slot)
{
	PgUringBufTarget *t = &slot->target.buf;
	int			i;

	if (t->started)
		for (i = 0; i < t->nblocks; i++)
			finish_buffer(t->buf_ids[i], false, t->io_pinned);
	t->failed_mask = (1U << t->nblocks) - 1;	/* nblocks <= PGU_MAX_COMBINE */
}

static void
bufread_describe(PgUringSlot *slot, char *buf, size_t len)
{
	PgUringBufTarget *t = &slot->target.buf;

	snprintf(buf, len, "rel %u/%u/%u fork %s blocks %u-%u",
			 PGU_RF_SPC(t->rfile), PGU_RF_DB(t->rfile), PGU_RF_REL(t->rfile),
			 forkNames[t->fork], t->first_block,
			 t->first_block + Max(t->nblocks, 1) - 1);
}

/*
 * Does anyone sleep on this buffer's IO condition variable (core's WaitIO,
 * pg_uring_complete_buffer_io)?  The wake-up list is read without its
 * spinlock: a sleeper is on it before it looks at the buffer's state, so
 * one that is already asleep is always seen; a stale answer only moves a
 * completion by pg_uring.reaper_delay.
 */
bool
pgu_buffer_io_waited(int buf_id)
{
	ConditionVariable *cv = BufferDescriptorGetIOCV(GetBufferDescriptor(buf_id));

	return !proclist_is_empty(&cv->wakeup);
}

static bool
bufread_has_waiters(PgUringSlot *slot)
{
	PgUringBufTarget *t = &slot->target.buf;
	int			i;

	if (!t->started)
		return false;
	for (i = 0; i < t->nblocks && i < PGU_MAX_COMBINE; i++)
		if (t->buf_ids[i] >= 0 && t->buf_ids[i] < NBuffers &&
			pgu_buffer_io_waited(t->buf_ids[i]))
			return true;
	return false;
}

static const PgUringOpInfo bufread_info = {
	"buffer read", bufread_prep, bufread_sync, bufread_result_ok,
	bufread_complete, bufread_abandon, bufread_describe, NULL,
	bufread_has_waiters
};

void
pgu_bufread_register(void)
{
	pgu_register_op(PGU_OP_BUFREAD, &bufread_info);
}

/* ------------------------------------------------------------------------
 * Any backend waiting on a pg_uring buffer read
 * ------------------------------------------------------------------------
 */

/*
 * If a pg_uring read is in progress on this shared buffer, complete it by
 * draining the ring it was submitted to (finishing every other IO that is
 * ready there too) instead of sleeping until its issuer reaps.  Returns
 * true if there was such a read.  For other extensions: call it before
 * waiting on a buffer that is BM_IO_IN_PROGRESS.
 */
bool
pg_uring_complete_buffer_io(int buffer)
{
	int			buf_id = buffer - 1;
	BufferDesc *desc;
	bool		helped = false;
	bool		slept = false;

	if (pgu_shared == NULL || buf_io_map == NULL || buffer <= 0 || buffer > NBuffers)
		return false;
	desc = GetBufferDescriptor(buf_id);
	for (;;)
	{
		int			slotno = buf_io_map[buf_id];
		PgUringSlot *slot;
		uint32		state;

		if (slotno < 0)
			break;
		state = pg_atomic_read_u32(&desc->state);
		if (!(state & BM_IO_IN_PROGRESS))
			break;
		slot = pgu_slot(slotno);
		if (pg_atomic_read_u32(&slot->state) != PGU_SLOT_SUBMITTED || slot->ring < 0)
			break;				/* staged, not submitted: nothing to drain yet */
		if (!helped)
			pgu_count(pgu_ring(slot->ring), PGU_C_BUF_HELPED, 1);
		helped = true;
		if (pgu_ring(slot->ring)->active)
			(void) pgu_ring_progress(pgu_ring(slot->ring), true);
		else
		{
			/*
			 * Synchronous mode: the submitter is running the IO itself and
			 * wakes the buffer's waiters when it ends; nothing to drain.
			 */
			(void) ConditionVariableTimedSleep(BufferDescriptorGetIOCV(desc), 10,
											   WAIT_EVENT_BUFFER_IO);
			slept = true;
		}
	}
	if (slept)
		ConditionVariableCancelSleep();
	return helped;
}
