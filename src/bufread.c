/*-------------------------------------------------------------------------
 *
 * bufread.c
 *	  The reader: reading blocks of one relation fork into shared_buffers
 *	  through the shared rings, with up to pg_uring.prewarm_depth reads in
 *	  flight (pg_uring_prewarm and pg_uring_prewarm_blocks use it).
 *
 * Owns: the reader object (its claims, runs of adjacent blocks, FIFO of
 * reads, segment files, pins and failures).  The op these reads are
 * (PGU_OP_BUFREAD: completion in any process), the per-buffer map and the
 * pin budget are in bufop.c.
 *
 * PostgreSQL 15 cannot allocate a buffer and leave its read pending, so a
 * block is claimed with exported functions only (design.md section 4):
 * ReadBufferExtended(RBM_ZERO_AND_LOCK) gives us the buffer pinned, zeroed,
 * "valid" and exclusively locked (or someone's page, locked: a hit, or on
 * 17 a page whose read it waited for, which counts no hit; a claim is only
 * ever a new, clean page); under the header spinlock, if our pin is
 * the only one, we clear BM_VALID: the claim is pinned, not valid and not
 * IO-in-progress, so whoever pins it before we submit reads it through
 * core.  When the run of adjacent claims is submitted (start_run), each
 * buffer still neither valid nor in progress becomes BM_IO_IN_PROGRESS,
 * and everyone who pins it from then on sleeps in core's WaitIO until the
 * read completes; a buffer someone else got to first splits the run.  If
 * somebody pinned the zero page while it looked valid, they believe it
 * valid: we fill it synchronously while still holding the exclusive content
 * lock, and any failure there is a PANIC, because a valid zero page would
 * later be initialised over real rows.
 *
 * Invariants kept here:
 *	- The owner's pins outlive the kernel's access to the pages: pins are
 *	  dropped only after the slot completed, and on ERROR the reader waits
 *	  for all its IOs before anything can release a pin.
 *	- A claimed buffer is always in a slot before it can be left behind
 *	  (the op's abandon callback undoes staged, never-submitted reads).
 *	- The reader never calls ReadBuffer* on a block it has in flight: a
 *	  block found in the buffer mapping table is skipped before core is
 *	  asked for it.
 *	- Segment files are opened with pgu_open_file() (open() and
 *	  AcquireExternalFD()), never a VFD, and closed only after every read on
 *	  them has completed.  Reads never cross a segment boundary.  Read-ahead
 *	  holds at most half of the backend's external descriptors.
 *	- At most PGU_MAX_PINS buffers (and 1/8 of shared_buffers) are pinned by
 *	  one reader, each also taken from the server-wide budget (bufop.c).
 *	- No claim is ever BM_IO_IN_PROGRESS while we can block: claims become
 *	  IO-in-progress only in start_run, right before they are submitted, and
 *	  the run being built while ReadBufferExtended runs for the next block
 *	  (which may wait for a content lock, or flush a victim) holds only
 *	  claims that anyone may read through core meanwhile.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>
#include <unistd.h>

#include "access/xlog.h"
#include "common/relpath.h"
#include "executor/instrument.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/buf_internals.h"
#include "storage/fd.h"
#include "storage/bufmgr.h"
#include "storage/md.h"
#include "storage/smgr.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "ring.h"
#include "bufread.h"

/* pins one reader may hold at once (and never more than 1/8 of the pool) */
#define PGU_MAX_PINS 256
/*
 * IOSQE_ASYNC (kernel workers do the copy, in parallel with us) for a
 * combined read once this many of ours are in flight.  Measured on a
 * 2-CPU host (bench/prewarm_bench.sh): it pays for multi-block reads, but
 * single-block random reads go faster through io_uring's own async buffered
 * read path, and reads served from the page cache complete inside the
 * submit call anyway (so nothing is in flight and no worker is woken).
 */
#define PGU_ASYNC_AFTER 2

typedef struct ReadFailure
{
	BlockNumber blkno;
	int32		result;			/* CQE result of the IO */
	int32		expected;		/* bytes that would have covered the block */
} ReadFailure;

struct PgUringReader
{
	Relation	rel;
	ForkNumber	fork;
	int			depth;
	int			nsegs;
	int		   *seg_fds;		/* -1 until opened */
	/* FIFO of our reads, staged or submitted */
	PgUringHandle *fifo;
	PgUringHandle *batch;		/* scratch for submission */
	int			head;
	int			count;
	int			nstaged;		/* the last nstaged of the FIFO */
	int			npinned;
	int			maxpins;
	int			combine;		/* most blocks per readv */
	/* the run being built in the slot at the tail, if open */
	bool		open_run;
	/* other backends' buffer reads we skipped and must see finished */
	int		   *foreign;
	int			nforeign;
	int			maxforeign;
	ReadFailure *failures;
	int			nfailures;
	int			maxfailures;
	int64		nread;
	/* claims given back unread at a split that found no slot: to add again */
	BlockNumber *pending;
	int			npending;
	int			maxpending;
	bool		readding;
	/* read-ahead (pgu_reader_begin_readahead) */
	bool		readahead;		/* IO-owned pins, never waits, failures not ours */
	BufferAccessStrategy strategy;	/* the scan's: claims go through its ring */
};

/* ------------------------------------------------------------------------
 * The reader
 * ------------------------------------------------------------------------
 */

static PgUringReader *
reader_create(Relation rel, ForkNumber fork, int depth, BlockNumber nblocks)
{
	PgUringReader *r = palloc0(sizeof(PgUringReader));
	int			i;

	r->rel = rel;
	r->fork = fork;
	r->depth = Max(1, Min(depth, pgu_io_nslots_of(false) / 2));
	r->nsegs = (int) (nblocks / ((BlockNumber) RELSEG_SIZE)) + 1;
	r->seg_fds = palloc(sizeof(int) * r->nsegs);
	for (i = 0; i < r->nsegs; i++)
		r->seg_fds[i] = -1;
	r->fifo = palloc(sizeof(PgUringHandle) * r->depth);
	r->batch = palloc(sizeof(PgUringHandle) * r->depth);
	r->maxpins = Max(1, Min(PGU_MAX_PINS, NBuffers / 8));
	r->combine = PGU_MAX_COMBINE;
	r->maxforeign = 64;
	r->foreign = palloc(sizeof(int) * r->maxforeign);
	return r;
}

PgUringReader *
pgu_reader_begin(Relation rel, ForkNumber fork, int depth)
{
	return reader_create(rel, fork, depth,
						 RelationGetNumberOfBlocksInFork(rel, fork));
}

/*
 * Read-ahead's share of this backend's external descriptors: half of what
 * AcquireExternalFD() allows (a third of max_safe_fds), so that dblink,
 * postgres_fdw and pg_uring's own functions always keep the other half,
 * however many scans sit idle with their files open (cursors).  A scan
 * over the share reads nothing ahead.
 */
static int	ra_fds_held = 0;

static int
ra_fd_share(void)
{
	return Max(1, max_safe_fds / 6);
}

static int
seg_fd(PgUringReader *r, BlockNumber blkno)
{
	int			segno = (int) (blkno / ((BlockNumber) RELSEG_SIZE));
	char	   *path;
	char	   *segpath;
	int			fd;

	if (segno >= r->nsegs && r->readahead)
		return -1;
	if (segno >= r->nsegs)
		elog(ERROR, "pg_uring: block %u is beyond the segments of relation %s",
			 blkno, RelationGetRelationName(r->rel));
	if (r->seg_fds[segno] >= 0)
		return r->seg_fds[segno];

	/* read-ahead is only a hint: no file, no read-ahead (and no ERROR) */
	if (r->readahead && ra_fds_held >= ra_fd_share())
		return -1;
	path = relpathperm(PGU_REL_FILE(r->rel), r->fork);
	segpath = segno == 0 ? path : psprintf("%s.%d", path, segno);
	fd = r->readahead ? pgu_try_open_file(segpath) : pgu_open_file(segpath);
	r->seg_fds[segno] = fd;
	if (r->readahead && fd >= 0)
		ra_fds_held++;
	return fd;
}

static void
close_segments(PgUringReader *r)
{
	int			i;

	for (i = 0; i < r->nsegs; i++)
	{
		if (r->seg_fds[i] >= 0)
		{
			pgu_close_file(r->seg_fds[i]);
			r->seg_fds[i] = -1;
			if (r->readahead)
				ra_fds_held--;
		}
	}
}

static PgUringHandle *
fifo_at(PgUringReader *r, int i)
{
	return &r->fifo[(r->head + i) % r->depth];
}

static void
flush_staged(PgUringReader *r)
{
	PgUringHandle *batch = r->batch;
	int			n = 0;
	int			i;

	/* an open run is staged too, but keeps growing: leave it */
	for (i = r->count - r->nstaged; i < r->count; i++)
	{
		if (r->open_run && i == r->count - 1)
			break;
		batch[n++] = *fifo_at(r, i);
	}
	if (n == 0)
		return;
	pgu_io_submit(batch, n);
	r->nstaged -= n;
}

/* A further read of the run started by start_run, or NULL if none can be had. */
static PgUringSlot *
split_slot(PgUringReader *r, PgUringSlot *from)
{
	PgUringHandle *h;
	PgUringSlot *slot;

	if (r->count >= r->depth)
		return NULL;
	h = fifo_at(r, r->count);
	if (!pgu_io_try_acquire(h, 1))
		return NULL;
	r->count++;
	r->nstaged++;
	slot = pgu_io_slot(*h);
	slot->op = PGU_OP_BUFREAD;
	slot->target.buf.rfile = from->target.buf.rfile;
	slot->target.buf.fork = from->target.buf.fork;
	slot->target.buf.fd = from->target.buf.fd;
	slot->target.buf.fault = from->target.buf.fault;
	slot->target.buf.fault_block = from->target.buf.fault_block;
	slot->target.buf.io_pinned = from->target.buf.io_pinned;
	slot->target.buf.readahead = from->target.buf.readahead;
	slot->target.buf.nblocks = 0;
	return slot;
}

/*
 * Start the IO of the run at the tail of the FIFO (design.md section 4,
 * two-phase start).  Its claims are pinned by us but neither valid nor
 * IO-in-progress, so anyone who wanted one meanwhile read it through core.
 * Now, under each buffer's header lock, those still neither valid nor in
 * progress become BM_IO_IN_PROGRESS, with their map entry, in the same
 * hold.  A buffer someone else got to first is unpinned and splits the run:
 * the rest goes into a further read.  If no slot (or FIFO entry) is free
 * right now, the rest is unpinned unread and its blocks are added again
 * once this run is submitted (readd_pending): we must not ask core for a
 * block we still pin, and must not wait for a slot holding claims.
 */
static void
start_run(PgUringReader *r)
{
	PgUringSlot *first = pgu_io_slot(*fifo_at(r, r->count - 1));
	PgUringSlot *slot = first;
	int32		bufs[PGU_MAX_COMBINE];
	BlockNumber blk0 = first->target.buf.first_block;
	int			n = first->target.buf.nblocks;
	int			i;

	memcpy(bufs, first->target.buf.buf_ids, sizeof(int32) * n);
	first->target.buf.nblocks = 0;
	for (i = 0; i < n; i++)
	{
		BufferDesc *desc = GetBufferDescriptor(bufs[i]);
		PgUringBufTarget *t;
		uint32		state;

		if (slot == NULL)
			slot = split_slot(r, first);
		if (slot == NULL)
		{
			ReleaseBuffer(bufs[i] + 1);
			r->npinned--;
			pgu_pins_release(1);
			if (r->readahead)
				continue;		/* only a hint: the scan reads it through core */
			if (r->npending == r->maxpending)
			{
				r->maxpending = Max(PGU_MAX_COMBINE, 2 * r->maxpending);
				r->pending = r->pending == NULL ?
					palloc(sizeof(BlockNumber) * r->maxpending) :
					repalloc(r->pending, sizeof(BlockNumber) * r->maxpending);
			}
			r->pending[r->npending++] = blk0 + i;
			continue;
		}
		t = &slot->target.buf;
		state = LockBufHdr(desc);
		if (state & (BM_VALID | BM_IO_IN_PROGRESS))
		{
			/* read (or being read) through core meanwhile: not ours */
			UnlockBufHdr(desc, state);
			ReleaseBuffer(bufs[i] + 1);
			r->npinned--;
			pgu_pins_release(1);
			if (t->nblocks > 0)
				slot = NULL;
			continue;
		}
		state |= BM_IO_IN_PROGRESS;
		state &= ~BM_IO_ERROR;

		/*
		 * Read-ahead: the IO takes a pin of its own, in this hold, and ours
		 * goes right after.  The scan that later reaches the block must not
		 * hold a private pin on it (PinBuffer would take an in-flight buffer
		 * for valid: the pin trap of design.md section 7); the completion,
		 * in whatever process, drops the IO's pin.  Before submission, never
		 * after: the completion may run before the submit call returns.
		 */
		if (t->io_pinned)
			state += BUF_REFCOUNT_ONE;
		pgu_bufmap_set(bufs[i], (int32) (slot - pgu_slot(0)));
		UnlockBufHdr(desc, state);
		if (t->io_pinned)
			ReleaseBuffer(bufs[i] + 1);
		if (t->nblocks == 0)
			t->first_block = blk0 + i;
		t->buf_ids[t->nblocks] = bufs[i];
		t->iov[t->nblocks].iov_base = BufferGetBlock(bufs[i] + 1);
		t->iov[t->nblocks].iov_len = BLCKSZ;
		t->nblocks++;
		t->started = true;
	}

	/* a slot that got no buffer goes back (only the last one can) */
	if (r->count > 0)
	{
		PgUringHandle *last = fifo_at(r, r->count - 1);

		if (pgu_io_slot(*last)->target.buf.nblocks == 0)
		{
			pgu_io_release(last, 1);
			r->count--;
			r->nstaged--;
		}
	}
	for (i = r->count - r->nstaged; i < r->count; i++)
	{
		PgUringSlot *s2 = pgu_io_slot(*fifo_at(r, i));

		if (r->count - r->nstaged >= PGU_ASYNC_AFTER && s2->target.buf.nblocks > 1)
			s2->flags |= PGU_IO_ASYNC;
	}
}

static void
close_run(PgUringReader *r)
{
	PgUringHandle *h;
	PgUringSlot *slot;

	if (!r->open_run)
		return;
	h = fifo_at(r, r->count - 1);
	slot = pgu_io_slot(*h);
	r->open_run = false;
	if (slot->target.buf.nblocks == 0)
	{
		/* nothing claimed into it: give the slot back */
		pgu_io_release(h, 1);
		r->count--;
		r->nstaged--;
		return;
	}
	slot->target.buf.fd = seg_fd(r, slot->target.buf.first_block);
	if (slot->target.buf.fd < 0)
	{
		/* read-ahead without the segment's file: give the claims back */
		int			i;

		for (i = 0; i < slot->target.buf.nblocks; i++)
			ReleaseBuffer(slot->target.buf.buf_ids[i] + 1);
		r->npinned -= slot->target.buf.nblocks;
		pgu_pins_release(slot->target.buf.nblocks);
		pgu_io_release(h, 1);
		r->count--;
		r->nstaged--;
		return;
	}
	start_run(r);

	/*
	 * Submit the started run at once, before anything that can block: its
	 * buffers are BM_IO_IN_PROGRESS now, and a backend that sleeps on one
	 * of them may hold something we would wait for.
	 */
	flush_staged(r);
}

/* Wait for the oldest read, account for it, drop its pins and its slot. */
static void
reclaim_oldest(PgUringReader *r)
{
	PgUringHandle *h = fifo_at(r, 0);
	PgUringSlot *slot = pgu_io_slot(*h);
	PgUringBufTarget *t = &slot->target.buf;
	int			i;

	Assert(r->count > 0);
	if (r->count - r->nstaged == 0)
	{
		close_run(r);
		flush_staged(r);
		/* h may have been released if it was an empty open run */
		if (r->count == 0)
			return;
	}
	pgu_io_wait(*h);
	for (i = 0; t->io_pinned && i < t->nblocks; i++)
	{
		/* nothing of ours to unpin; a failure is the query's, if it gets there */
		if (!(t->failed_mask & (1U << i)))
			r->nread++;
	}
	for (i = 0; !t->io_pinned && i < t->nblocks; i++)
	{
		if (t->failed_mask & (1U << i))
		{
			ReadFailure *f;

			if (r->nfailures == r->maxfailures)
			{
				r->maxfailures = Max(16, r->maxfailures * 2);
				r->failures = r->failures == NULL ?
					palloc(sizeof(ReadFailure) * r->maxfailures) :
					repalloc(r->failures, sizeof(ReadFailure) * r->maxfailures);
			}
			f = &r->failures[r->nfailures++];
			f->blkno = t->first_block + i;
			f->result = slot->result;
			f->expected = (i + 1) * BLCKSZ;
		}
		else
			r->nread++;
		ReleaseBuffer(t->buf_ids[i] + 1);
	}
	r->npinned -= t->nblocks;
	pgu_pins_release(t->nblocks);
	pgu_io_release(h, 1);
	r->head = (r->head + 1) % r->depth;
	r->count--;
}

/*
 * run_for() for read-ahead: a new run only if there is room right now (a
 * FIFO entry, a pin of ours and of the budget, the segment's file and a
 * slot beyond the quarter kept for others); never waits, NULL if not.
 */
static PgUringSlot *
readahead_run(PgUringReader *r, BlockNumber blkno)
{
	PgUringHandle *h;
	PgUringSlot *slot;
	int			fd;

	if (r->count >= r->depth || r->npinned >= r->maxpins)
		return NULL;
	fd = seg_fd(r, blkno);
	if (fd < 0)
		return NULL;
	if (!pgu_pins_try_reserve())
		return NULL;
	h = fifo_at(r, r->count);
	if (!pgu_io_try_acquire_spare(h, 1))
	{
		pgu_pins_release(1);
		return NULL;
	}
	r->count++;
	r->nstaged++;
	r->open_run = true;
	slot = pgu_io_slot(*h);
	slot->op = PGU_OP_BUFREAD;
	slot->target.buf.rfile = PGU_REL_FILE(r->rel);
	slot->target.buf.fork = r->fork;
	slot->target.buf.first_block = blkno;
	slot->target.buf.fd = fd;
	slot->target.buf.nblocks = 0;
	slot->target.buf.failed_mask = 0;
	slot->target.buf.started = false;
	slot->target.buf.io_pinned = true;
	slot->target.buf.readahead = true;
	slot->target.buf.fault = PGU_FAULT_NONE;
	if (pgu_test_fault_at("eio", &slot->target.buf.fault_block))
		slot->target.buf.fault = PGU_FAULT_EIO;
	else if (pgu_test_fault_at("short", &slot->target.buf.fault_block))
		slot->target.buf.fault = PGU_FAULT_SHORT;
	return slot;
}

/* Make sure the tail of the FIFO is an open run with room for blkno. */
static PgUringSlot *
run_for(PgUringReader *r, BlockNumber blkno)
{
	PgUringSlot *slot;
	PgUringHandle *h;

	if (r->open_run)
	{
		PgUringBufTarget *t;

		slot = pgu_io_slot(*fifo_at(r, r->count - 1));
		t = &slot->target.buf;
		if (t->nblocks == 0 ||
			(blkno == t->first_block + t->nblocks &&
			 t->nblocks < r->combine &&
			 blkno / RELSEG_SIZE == t->first_block / RELSEG_SIZE))
		{
			if (t->nblocks == 0)
				t->first_block = blkno;
			if (r->npinned < r->maxpins && pgu_pins_try_reserve())
				return slot;
		}
		close_run(r);
	}

	/*
	 * Reap inline what is ready (unless a test holds us back), so the reaper
	 * rarely has to, and give back the pins and slots of finished reads.
	 */
	if (!pgu_test_hold_reap)
		(void) pgu_ring_try_drain(pgu_ring(pgu_my_ring()));
	while (r->count > r->nstaged && pgu_io_is_completed(*fifo_at(r, 0)))
		reclaim_oldest(r);

	if (r->readahead)
		return readahead_run(r, blkno);

	/*
	 * Room: a FIFO entry and a pin, ours and from the server-wide budget.
	 * While the budget is spent, give back our own finished reads; with none
	 * left, wait for other processes' (everything of ours is submitted).
	 */
	for (;;)
	{
		if (r->count >= r->depth || r->npinned >= r->maxpins)
			reclaim_oldest(r);
		else if (pgu_pins_try_reserve())
			break;
		else if (r->count > 0)
			reclaim_oldest(r);
		else
			pgu_pins_wait();
	}

	h = fifo_at(r, r->count);
	if (!pgu_io_try_acquire(h, 1))
	{
		bool		got = false;

		/*
		 * Submit what we staged before waiting for a slot (never wait holding
		 * claims), and give back our own finished reads first: readers that
		 * all waited for a slot while holding completed ones would wait for
		 * each other for ever.
		 */
		flush_staged(r);
		while (!got && r->count > 0)
		{
			reclaim_oldest(r);
			got = pgu_io_try_acquire(fifo_at(r, r->count), 1);
		}
		h = fifo_at(r, r->count);
		if (!got)
			pgu_io_acquire(h, 1);
	}
	r->count++;
	r->nstaged++;
	r->open_run = true;
	slot = pgu_io_slot(*h);
	slot->op = PGU_OP_BUFREAD;
	slot->target.buf.rfile = PGU_REL_FILE(r->rel);
	slot->target.buf.fork = r->fork;
	slot->target.buf.first_block = blkno;
	slot->target.buf.fd = -1;
	slot->target.buf.nblocks = 0;
	slot->target.buf.failed_mask = 0;
	slot->target.buf.started = false;
	slot->target.buf.fault = PGU_FAULT_NONE;
	if (pgu_test_fault_at("eio", &slot->target.buf.fault_block))
		slot->target.buf.fault = PGU_FAULT_EIO;
	else if (pgu_test_fault_at("short", &slot->target.buf.fault_block))
		slot->target.buf.fault = PGU_FAULT_SHORT;
	return slot;
}

typedef enum ClaimResult
{
	CLAIM_CACHED,				/* already valid, or being read by someone */
	CLAIM_FILLED,				/* filled synchronously (others had pinned it) */
	CLAIM_OURS					/* BM_IO_IN_PROGRESS, ours to read */
} ClaimResult;

/*
 * Somebody pinned the zeroed buffer while it looked valid: they will read
 * it as soon as we release the content lock.  Fill it now, still holding
 * the lock; a failure here must not leave the zero page valid, so it is a
 * PANIC (crash restart), as for any failure inside a critical section.
 */
static void
fill_pinned_zero_page(PgUringReader *r, Buffer buf, BlockNumber blkno)
{
	PGAlignedBlock local;

	PG_TRY();
	{
		smgrread(RelationGetSmgr(r->rel), r->fork, blkno, local.data);
		if (!PageIsVerifiedExtended((Page) local.data, blkno,
									PIV_LOG_WARNING | PIV_REPORT_STAT))
		{
			if (!zero_damaged_pages)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("invalid page in block %u of relation %s",
								blkno, relpath(PGU_SMGR_FILE(RelationGetSmgr(r->rel)), r->fork))));
			ereport(WARNING,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("invalid page in block %u of relation %s; zeroing out page",
							blkno, relpath(PGU_SMGR_FILE(RelationGetSmgr(r->rel)), r->fork))));
			memset(local.data, 0, BLCKSZ);
		}
	}
	PG_CATCH();
	{
		/* others already hold this buffer as a valid (zero) page */
		HOLD_INTERRUPTS();
		EmitErrorReport();
		elog(PANIC, "pg_uring: could not fill block %u of relation %s, which other backends already see as valid",
			 blkno, RelationGetRelationName(r->rel));
	}
	PG_END_TRY();

	START_CRIT_SECTION();
	memcpy(BufferGetPage(buf), local.data, BLCKSZ);
	END_CRIT_SECTION();
}

static void
remember_foreign(PgUringReader *r, int buf_id)
{
	if (r->nforeign == r->maxforeign)
	{
		r->maxforeign *= 2;
		r->foreign = repalloc(r->foreign, sizeof(int) * r->maxforeign);
	}
	r->foreign[r->nforeign++] = buf_id;
}

/*
 * Is the block in the buffer mapping table in a state that leaves it to
 * others: valid, being read or written (maybe by us), or pinned by someone
 * about to read it?  Then it must not be asked of core by us.
 */
static bool
block_taken(PgUringReader *r, BlockNumber blkno)
{
	BufferTag	tag;
	uint32		hash;
	LWLock	   *partition;
	int			existing;
	uint32		existing_state;

	pgu_tag_init(&tag, PGU_REL_FILE(r->rel), r->fork, blkno);
	hash = BufTableHashCode(&tag);
	partition = BufMappingPartitionLock(hash);
	LWLockAcquire(partition, LW_SHARED);
	existing = BufTableLookup(&tag, hash);
	LWLockRelease(partition);
	if (existing < 0)
		return false;
	existing_state = pg_atomic_read_u32(&GetBufferDescriptor(existing)->state);
	if (existing_state & BM_IO_IN_PROGRESS)
	{
		/* being read (or written); if through a ring by another backend, help later */
		int			io_slot = pgu_bufmap_get(existing);

		if (io_slot >= 0 && pgu_slot(io_slot)->owner_pid != MyProcPid &&
			!r->readahead)
			remember_foreign(r, existing);
		return true;
	}
	if (existing_state & BM_VALID)
		return true;

	/*
	 * Pinned and not valid, no IO in progress: most likely another reader's
	 * claim, read once its run is submitted (or someone about to read it
	 * through core).  Leave it to them: asking core for it would make core
	 * zero it and us fill it synchronously.
	 */
	if (BUF_STATE_GET_REFCOUNT(existing_state) > 0)
		return true;

	/*
	 * In the table but not valid: an earlier read of it failed (by us or by
	 * core).  Not in flight, so core may be asked for it: it comes back
	 * through the zero-and-lock path of claim_block, to be read again.
	 */
	return false;
}

static ClaimResult
claim_block(PgUringReader *r, BlockNumber blkno, int *buf_id)
{
	int64		hits;
	Buffer		buf;
	BufferDesc *desc;
	uint32		state;

	/* cached, or being read (maybe by us): never ask core for it */
	if (block_taken(r, blkno))
		return CLAIM_CACHED;

	pgu_test_pause_at("claim", (int64) blkno);
	hits = pgBufferUsage.shared_blks_hit;
	buf = ReadBufferExtended(r->rel, r->fork, blkno, RBM_ZERO_AND_LOCK, r->strategy);
	if (pgBufferUsage.shared_blks_hit != hits)
	{
		UnlockReleaseBuffer(buf);
		return CLAIM_CACHED;
	}
	desc = GetBufferDescriptor(buf - 1);

	/*
	 * No hit counted, yet not necessarily the page core zeroed for us.
	 * PostgreSQL 17 counts no hit when it found the buffer being read by
	 * someone else, waited for that read, and found the page valid: it
	 * returns that page, locked, with its real contents, which anyone may
	 * have changed between the read's end and our lock.  A page core zeroed
	 * for us is new and clean.  Anything else is someone's page: leave it,
	 * since reading the block again would throw away what is only in the
	 * buffer.  (A clean new page may be a zero block someone read from
	 * disk: reading it again gives the same page.)
	 */
	state = pg_atomic_read_u32(&desc->state);
	if ((state & BM_DIRTY) || !PageIsNew(BufferGetPage(buf)))
	{
		UnlockReleaseBuffer(buf);
		return CLAIM_CACHED;
	}
	/* a zero-mode miss counts as neither hit nor read in core */
	pgBufferUsage.shared_blks_read++;
	pgu_test_pause_at("claimed", (int64) blkno);

	state = LockBufHdr(desc);
	if (BUF_STATE_GET_REFCOUNT(state) == 1)
	{
		/*
		 * A claim: pinned by us, neither valid nor IO-in-progress.  Whoever
		 * pins it before the run is started finds it not valid and reads it
		 * through core (StartBufferIO succeeds for them): nobody ever sleeps
		 * on a claim we have not submitted.
		 */
		state &= ~(BM_VALID | BM_IO_ERROR);

		/*
		 * Read-ahead: the scan's own access will count its use, as core's
		 * read would have.  Take back the one our claim counted, so that a
		 * block read ahead has the usage count core would give it (and one
		 * the scan never reached is the first to go).
		 */
		if (r->readahead && BUF_STATE_GET_USAGECOUNT(state) > 0)
			state -= BUF_USAGECOUNT_ONE;
		UnlockBufHdr(desc, state);
		LWLockRelease(BufferDescriptorGetContentLock(desc));
		*buf_id = buf - 1;
		return CLAIM_OURS;
	}
	UnlockBufHdr(desc, state);

	fill_pinned_zero_page(r, buf, blkno);
	pgu_count(pgu_ring(pgu_my_ring()),
			  r->readahead ? PGU_C_RA_SYNC_FILLS : PGU_C_BUF_SYNC_FILLS, 1);
	UnlockReleaseBuffer(buf);
	return CLAIM_FILLED;
}

static void reader_add(PgUringReader *r, BlockNumber blkno);

/* Add again the blocks a split gave back unread (start_run). */
static void
readd_pending(PgUringReader *r)
{
	if (r->readding)
		return;					/* the outer call goes on until none is left */
	r->readding = true;
	while (r->npending > 0)
	{
		int			n = r->npending;
		BlockNumber *blocks = palloc(sizeof(BlockNumber) * n);
		int			i;

		memcpy(blocks, r->pending, sizeof(BlockNumber) * n);
		r->npending = 0;
		for (i = 0; i < n; i++)
			reader_add(r, blocks[i]);
		pfree(blocks);
	}
	r->readding = false;
}

/*
 * Read one block (if not cached) into shared buffers.  Blocks may come in
 * any order; adjacent ones are combined into one readv.
 */
void
pgu_reader_add(PgUringReader *r, BlockNumber blkno)
{
	reader_add(r, blkno);
	readd_pending(r);
}

static void
reader_add(PgUringReader *r, BlockNumber blkno)
{
	PgUringSlot *slot;
	int			buf_id;
	ClaimResult res;

	/* claim only with a slot in hand: never wait for a slot holding a claim */
	slot = run_for(r, blkno);
	res = claim_block(r, blkno, &buf_id);
	if (res != CLAIM_OURS)
	{
		pgu_pins_release(1);	/* taken by run_for for this block */
		if (res == CLAIM_FILLED)
			r->nread++;
		/* the run cannot continue past a block we did not claim */
		if (slot->target.buf.nblocks > 0)
			close_run(r);
		return;
	}

	{
		PgUringBufTarget *t = &slot->target.buf;
		int			i = t->nblocks;

		t->buf_ids[i] = buf_id;
		t->nblocks = i + 1;
		r->npinned++;
	}
}

static void
report_io_failure(PgUringReader *r, ReadFailure *f)
{
	char	   *path = relpathperm(PGU_REL_FILE(r->rel), r->fork);
	BlockNumber segno = f->blkno / ((BlockNumber) RELSEG_SIZE);

	if (segno > 0)
		path = psprintf("%s.%u", path, segno);
	if (f->result < 0)
	{
		errno = -f->result;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read block %u in file \"%s\": %m", f->blkno, path)));
	}
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("could not read block %u in file \"%s\": read only %d of %d bytes",
					f->blkno, path, Max(0, f->result - (f->expected - BLCKSZ)), BLCKSZ)));
}

static void
drain_reader(PgUringReader *r)
{
	do
	{
		readd_pending(r);
		close_run(r);
		flush_staged(r);
		while (r->count > 0)
			reclaim_oldest(r);
	} while (r->npending > 0);
}

/*
 * Wait for everything and drop all pins.  A combined read that failed as a
 * whole (IO error, short read) says nothing about which of its blocks is
 * bad, so its blocks are read again one at a time.  Then report failures:
 * an IO error or short read with file, block and errno; a page that failed
 * verification is read again through core, which raises core's own error
 * (or, under zero_damaged_pages, zeroes it with core's warning).  The other
 * blocks are read and cached either way.
 */
int64
pgu_reader_finish(PgUringReader *r)
{
	int			i;

	drain_reader(r);

	if (r->combine > 1)
	{
		int			nretry = 0;
		BlockNumber *retry = NULL;
		int			nkeep = 0;

		for (i = 0; i < r->nfailures; i++)
		{
			ReadFailure *f = &r->failures[i];

			if (f->result < f->expected)
			{
				if (retry == NULL)
					retry = palloc(sizeof(BlockNumber) * r->nfailures);
				retry[nretry++] = f->blkno;
			}
			else
				r->failures[nkeep++] = *f;
		}
		if (nretry > 0)
		{
			r->nfailures = nkeep;
			r->combine = 1;
			for (i = 0; i < nretry; i++)
				pgu_reader_add(r, retry[i]);
			drain_reader(r);
		}
	}
	close_segments(r);

	/* blocks other backends were reading through a ring: help them finish */
	for (i = 0; i < r->nforeign; i++)
		(void) pg_uring_complete_buffer_io(r->foreign[i] + 1);

	for (i = 0; i < r->nfailures; i++)
	{
		ReadFailure *f = &r->failures[i];
		Buffer		buf;

		if (f->result < f->expected)
			report_io_failure(r, f);
		/* let core read it again: its error, its settings */
		buf = ReadBufferExtended(r->rel, r->fork, f->blkno, RBM_NORMAL, NULL);
		ReleaseBuffer(buf);
		r->nread++;
	}
	return r->nread;
}

/*
 * On ERROR: undo what is staged, wait for what is in flight (draining; no
 * interrupt can cut this short), close the files.  The pins are left to
 * the resource owner, which releases them only after we return.
 */
void
pgu_reader_abort(PgUringReader *r)
{
	pgu_io_cleanup_mine();
	close_segments(r);
	pgu_pins_release_all();
}

/* ------------------------------------------------------------------------
 * Read-ahead: the same reader, for a scan that core runs (readahead.c)
 *
 * Differences from prewarm's reader: every started buffer is pinned by its
 * IO, not by us (the scan reaches it through core and must find it either
 * in progress or done, never privately pinned); claims go through the
 * scan's own strategy; nothing waits for room (no slot, pin or file means
 * no read-ahead for that block); failures are left to whoever reaches the
 * block, and nothing here raises an error for them.  Between calls nothing
 * is staged: every add is followed by pgu_reader_submit() before core runs
 * again.
 * ------------------------------------------------------------------------
 */

/*
 * Cleanup at a (sub)transaction abort waited for and freed every slot of
 * this process, the ones of a reader that outlives it too (an outer
 * query's scan): forget them, with the pins the budget still counts.
 */
static void
revalidate(PgUringReader *r)
{
	if (r->count == 0 || pgu_io_handle_valid(*fifo_at(r, 0)))
		return;
	pgu_pins_release(r->npinned);
	r->npinned = 0;
	r->count = 0;
	r->nstaged = 0;
	r->head = 0;
	r->open_run = false;
	r->npending = 0;
}

PgUringReader *
pgu_reader_begin_readahead(Relation rel, BufferAccessStrategy strategy,
						   BlockNumber nblocks, int depth, int maxpins)
{
	PgUringReader *r = reader_create(rel, MAIN_FORKNUM, depth, nblocks);

	r->readahead = true;
	r->strategy = strategy;
	r->maxpins = Max(1, Min(r->maxpins, maxpins));
	return r;
}

/*
 * Read one block ahead, if it is not cached and there is room.  Returns 1
 * if it is now ours to read, 0 if it is cached (or being read by someone),
 * -1 if there was no room: the caller stops adding until later.
 */
int
pgu_reader_try_add(PgUringReader *r, BlockNumber blkno)
{
	PgUringSlot *slot;
	PgUringBufTarget *t;
	int			buf_id;

	Assert(r->readahead);
	revalidate(r);
	/* cached (the common case when warm): no slot, no file, no pin */
	if (block_taken(r, blkno))
		return 0;
	slot = run_for(r, blkno);
	if (slot == NULL)
		return -1;
	if (claim_block(r, blkno, &buf_id) != CLAIM_OURS)
	{
		pgu_pins_release(1);	/* taken by run_for for this block */
		if (slot->target.buf.nblocks > 0)
			close_run(r);
		return 0;
	}
	t = &slot->target.buf;
	t->buf_ids[t->nblocks++] = buf_id;
	r->npinned++;
	return 1;
}

/* Start and submit what was added: before core runs the scan again. */
void
pgu_reader_submit(PgUringReader *r)
{
	revalidate(r);
	close_run(r);
	flush_staged(r);
	Assert(r->nstaged == 0);
}

/* Process what is ready and give back finished reads; never waits. */
void
pgu_reader_reap(PgUringReader *r)
{
	revalidate(r);
	if (!pgu_test_hold_reap)
		(void) pgu_ring_try_drain(pgu_ring(pgu_my_ring()));
	while (r->count > r->nstaged && pgu_io_is_completed(*fifo_at(r, 0)))
		reclaim_oldest(r);
}

/*
 * If blkno is in one of our reads still in flight, wait for it here,
 * draining the ring, rather than let core sleep in WaitIO until somebody
 * else completes it.  True if we waited.
 */
bool
pgu_reader_wait_block(PgUringReader *r, BlockNumber blkno)
{
	int			i;

	revalidate(r);
	for (i = 0; i < r->count - r->nstaged; i++)
	{
		PgUringHandle *h = fifo_at(r, i);
		PgUringBufTarget *t = &pgu_io_slot(*h)->target.buf;

		if (blkno >= t->first_block && blkno < t->first_block + t->nblocks)
		{
			if (pgu_io_is_completed(*h))
				return false;
			pgu_io_wait(*h);
			return true;
		}
	}
	return false;
}

/* reads of ours in flight or done but not yet given back */
int
pgu_reader_pending(PgUringReader *r)
{
	revalidate(r);
	return r->count;
}

/*
 * The scan is over (or its executor is being freed): wait for our reads in
 * flight, give back their slots and close the files.  Safe during an
 * abort, before the abort's own cleanup: a read that an ERROR left staged
 * is not submitted but left to that cleanup, which undoes it (its file is
 * never read then, so closing it is safe).
 */
void
pgu_reader_end(PgUringReader *r)
{
	int			i;

	HOLD_INTERRUPTS();
	revalidate(r);
	for (i = 0; i < r->count; i++)
	{
		PgUringHandle *h = fifo_at(r, i);

		if (pg_atomic_read_u32(&pgu_io_slot(*h)->state) == PGU_SLOT_SUBMITTED)
			pgu_io_wait(*h);
	}
	while (r->count > 0 &&
		   pg_atomic_read_u32(&pgu_io_slot(*fifo_at(r, 0))->state) == PGU_SLOT_COMPLETED)
	{
		PgUringHandle *h = fifo_at(r, 0);

		pgu_pins_release(pgu_io_slot(*h)->target.buf.nblocks);
		r->npinned -= pgu_io_slot(*h)->target.buf.nblocks;
		pgu_io_release(h, 1);
		r->head = (r->head + 1) % r->depth;
		r->count--;
	}
	/* what is left is staged (an ERROR mid-add): its claims are the resource owner's */
	pgu_pins_release(r->npinned);
	r->npinned = 0;
	close_segments(r);
	RESUME_INTERRUPTS();
}
