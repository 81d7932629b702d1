/*-------------------------------------------------------------------------
 *
 * writeback.c
 *	  Asynchronous writes of dirty shared buffers through the shared rings,
 *	  ordered behind the WAL they need: the write-back object.
 *
 * Owns: the write-back object, which keeps up to pg_uring.write_depth
 * writes of one caller (pg_uring_flush or the writer) in flight, with the
 * segment files they write to, the FIFO of its IOs and its submission
 * policy.  The ops these writes are (completion in any process) are in
 * writeop.c.
 *
 * A write mirrors core's FlushBuffer (design.md section 6) with exported
 * functions only: pin the buffer where it is (ReadRecentBuffer, which
 * re-checks the tag under the header lock and leaves usage_count alone),
 * share-lock its content, set BM_IO_IN_PROGRESS under the header lock
 * (skip it if another IO is in progress or it is no longer dirty), clear
 * BM_JUST_DIRTIED, copy the page into the slot's shared bounce buffer,
 * release the content lock, then checksum the copy.  The LSN that decides
 * the WAL rule is read from the copy, i.e. from exactly what reaches disk.
 *
 * Invariants kept here:
 *	- WAL before data, always.  A permanent page whose LSN is beyond what is
 *	  durable is written only behind a WAL flush: linked (IOSQE_IO_LINK)
 *	  after this caller's own chain of WAL fsyncs, so that a failed fsync
 *	  makes the kernel cancel the writes, or after another process's flush
 *	  in flight has been seen to succeed.  IOSQE_IO_DRAIN is never used for
 *	  this: it orders after completion, not success.  A page whose LSN is
 *	  beyond what is even written is not written now: BM_IO_IN_PROGRESS is
 *	  dropped at once, the WAL writer is asked to write (XLogSetAsyncXactLSN)
 *	  and pg_uring_flush comes back to it after core made the WAL durable.
 *	  Unlogged and temporary pages need no WAL (BM_PERMANENT is read with
 *	  the state, under the header lock).
 *	- A failed WAL fsync is a PANIC in the process that reaps it (wal.c),
 *	  after the writes linked behind it have come back cancelled.
 *	- Completion uses no file descriptor (writeop.c): a segment whose fsync
 *	  the checkpointer could not take is fsynced here, by the owner, when it
 *	  reclaims the write.
 *	- The owner's pin outlives the kernel's access to the file: it is
 *	  dropped only after the write completed.  DROP, TRUNCATE and DROP
 *	  DATABASE wait for that pin before they unlink or truncate, so no write
 *	  reaches a file that is gone or a block beyond a new end.
 *	- A segment file is opened (open(), O_RDWR, never O_CREAT) while a pin
 *	  on one of its buffers is held and reused only while some write of ours
 *	  on it is staged or in flight; when none is, it is closed (or, for a
 *	  sync flush, kept only for the final fdatasync and never written
 *	  through again).  So a cached fd can never outlive its relfilenode.
 *	- Staged, unsubmitted writes are submitted before this process blocks on
 *	  anything (a content lock, a free IO slot, a WAL flush by core), and
 *	  undone by the op's abandon callback on ERROR and exit.
 *	- Counts: a pin taken to write is no buffer hit; a written page counts in
 *	  pgBufferUsage.shared_blks_written as in core.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "access/xlog.h"
#include "common/relpath.h"
#include "executor/instrument.h"
#include "miscadmin.h"
#include "storage/buf_internals.h"
#include "storage/bufmgr.h"
#include "storage/fd.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "ring.h"
#include "wal.h"
#include "writeback.h"
#include "writeop.h"

/* plain (unlinked) writes submitted together: this many SQEs or pages */
#define WB_BATCH 16
#define WB_BATCH_PAGES 64
/* most writes linked behind one WAL flush (the kernel runs a chain in order) */
#define WB_CHAIN 16
/*
 * Pins one caller holds at once (and never more than 1/8 of the pool):
 * several batches of combined writes, so that the kernel writes one while
 * we copy the next.
 */
#define WB_MAX_PINS 1024
/* segment files kept open only for the final fdatasync of a sync flush */
#define WB_MAX_RETIRED 64

typedef struct WbFile
{
	PgUringRelFile rfile;
	ForkNumber	fork;
	BlockNumber segno;
	int			fd;				/* -1: entry free */
	int			inflight;		/* our writes on it, staged or submitted */
	bool		retired;		/* kept for the final fdatasync only */
	bool		written;		/* a write was submitted through it */
	uint64		opened;			/* order of opening, for the final sync */
	/* blocks written since the last writeback hint (segment-relative) */
	int			hint_count;
	BlockNumber hint_lo;
	BlockNumber hint_hi;
} WbFile;

typedef struct WbEntry
{
	PgUringHandle h;
	int			file;			/* -1 for a WAL fsync */
	int32		buf_id;			/* -1 for a WAL fsync */
} WbEntry;

/* a buffer to come back to: it was busy, or its WAL was not written */
typedef struct WbLater
{
	int			buf_id;
	BufferTag	tag;
	XLogRecPtr	lsn;			/* deferred for WAL; 0 if it was busy */
} WbLater;

struct PgUringWriteback
{
	bool		nowait;
	bool		sync;
	bool		second_pass;
	int			hint_pages;		/* writeback hint every so many written blocks, 0: none */
	int			depth;
	int			maxpins;
	int			npinned;
	/* staged, not yet submitted */
	WbEntry		plain[WB_BATCH + WB_CHAIN];
	int			nplain;
	int			plain_pages;	/* pages of the staged plain writes */
	WbEntry		linked[WB_CHAIN];
	int			nlinked;
	XLogRecPtr	linked_lsn;
	/* submitted, oldest first */
	WbEntry    *fifo;
	int			fifo_cap;
	int			head;
	int			count;
	PgUringHandle *scratch;
	WbFile	   *files;
	int			nfiles;
	int			maxfiles;
	int			nretired;
	uint64		nopened;
	WbLater    *later;
	int			nlater;
	int			maxlater;
	/* results */
	int64		nwritten;
	int64		nfailed;
	bool		failed;
	int32		fail_result;
	PgUringRelFile fail_rfile;
	ForkNumber	fail_fork;
	BlockNumber fail_block;
};

/* ------------------------------------------------------------------------
 * Segment files
 * ------------------------------------------------------------------------
 */
static int
wb_file(PgUringWriteback *wb, PgUringRelFile rfile, ForkNumber fork, BlockNumber segno)
{
	WbFile	   *f;
	char	   *path;
	int			free_entry = -1;
	int			i;

	for (i = 0; i < wb->nfiles; i++)
	{
		f = &wb->files[i];
		if (f->fd < 0)
		{
			if (free_entry < 0)
				free_entry = i;
			continue;
		}
		if (!f->retired && f->segno == segno && f->fork == fork &&
			PGU_RF_EQUAL(f->rfile, rfile))
			return i;
	}
	if (free_entry < 0)
	{
		if (wb->nfiles == wb->maxfiles)
		{
			wb->maxfiles *= 2;
			wb->files = repalloc(wb->files, sizeof(WbFile) * wb->maxfiles);
		}
		free_entry = wb->nfiles++;
		wb->files[free_entry].fd = -1;
	}
	/* the buffer we hold pinned keeps the file from being unlinked */
	path = pgu_segment_path(rfile, fork, segno);
	f = &wb->files[free_entry];
	f->fd = pgu_open_file_mode(path, O_RDWR);
	pfree(path);
	f->rfile = rfile;
	f->fork = fork;
	f->segno = segno;
	f->inflight = 0;
	f->retired = false;
	f->written = false;
	f->hint_count = 0;
	f->opened = ++wb->nopened;
	return free_entry;
}

static void
close_file(PgUringWriteback *wb, WbFile *f)
{
	if (f->fd < 0)
		return;
	pgu_close_file(f->fd);
	f->fd = -1;
	if (f->retired)
		wb->nretired--;
	f->retired = false;
}

static void sync_files(PgUringWriteback *wb);

/* no write of ours on it any more: close it, or keep it for the final sync */
static void
retire_file(PgUringWriteback *wb, WbFile *f)
{
	if (!wb->sync || !f->written)
	{
		close_file(wb, f);
		return;
	}
	f->retired = true;
	wb->nretired++;
}

/* ------------------------------------------------------------------------
 * Submission and reclaiming
 * ------------------------------------------------------------------------
 */
static WbEntry *
fifo_at(PgUringWriteback *wb, int i)
{
	return &wb->fifo[(wb->head + i) % wb->fifo_cap];
}

static void
fifo_push(PgUringWriteback *wb, WbEntry *e)
{
	Assert(wb->count < wb->fifo_cap);
	*fifo_at(wb, wb->count) = *e;
	wb->count++;
}

/*
 * pg_uring.test_write_delay, and pg_uring.test_pause = 'write_staged':
 * staged writes wait before they are submitted.
 */
static void
test_delay(void)
{
	int			waited = 0;

	pgu_test_pause_at("write_staged", -1);

	while (waited < pgu_test_write_delay)
	{
		CHECK_FOR_INTERRUPTS();
		pg_usleep(10000L);
		waited += 10;
	}
}

static void
submit_plain(PgUringWriteback *wb)
{
	int			n = wb->nplain;
	int			i;

	if (n == 0)
		return;
	test_delay();
	for (i = 0; i < n; i++)
	{
		wb->scratch[i] = wb->plain[i].h;
		fifo_push(wb, &wb->plain[i]);
	}
	wb->nplain = 0;
	wb->plain_pages = 0;
	pgu_io_submit(wb->scratch, n);
	pgu_test_pause_at("write_submitted", -1);
}

static void
linked_to_plain(PgUringWriteback *wb)
{
	int			i;

	for (i = 0; i < wb->nlinked; i++)
		wb->plain[wb->nplain++] = wb->linked[i];
	wb->nlinked = 0;
	wb->linked_lsn = InvalidXLogRecPtr;
	submit_plain(wb);
}

static void reclaim_oldest(PgUringWriteback *wb);

/*
 * Another process (or an earlier chain of ours) has a WAL flush in flight
 * that covers lsn: wait for its result rather than submit a redundant one,
 * helping every ring along.  Gives up after a second (the caller then links
 * its own).  A failed flush anywhere is a PANIC here too (the process that
 * reaped it PANICs as well, with the details).
 */
static bool
wait_inflight_flush(PgUringWriteback *wb, XLogRecPtr lsn)
{
	TimestampTz start;
	bool		ok = false;
	int			i;

	if ((XLogRecPtr) pg_atomic_read_u64(&pgu_shared->wal_flush_submitted) < lsn)
		return false;
	start = GetCurrentTimestamp();
	for (;;)
	{
		pgu_wal_check_failed();
		if (pgu_wal_safe_upto() >= lsn)
		{
			ok = true;
			break;
		}
		if (TimestampDifferenceExceeds(start, GetCurrentTimestamp(), 1000))
			break;
		for (i = 0; i < pgu_shared->nrings; i++)
			(void) pgu_ring_try_drain(pgu_ring(i));
		(void) ConditionVariableTimedSleep(&pgu_shared->wal_cv, 5, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	if (ok)
		pgu_count(pgu_ring(pgu_my_ring()), PGU_C_WAL_WAITS, 1);
	return ok;
}

/*
 * Submit the staged writes that need WAL beyond what is durable: behind our
 * own chain of WAL fsyncs, each write linked to the next, so that a failed
 * fsync cancels them all.
 */
static void
submit_linked(PgUringWriteback *wb)
{
	PgUringRing *ring = pgu_ring(pgu_my_ring());
	PgUringHandle wh[PGU_WAL_MAX_CHAIN];
	XLogRecPtr	lsn = wb->linked_lsn;
	XLogRecPtr	upto;
	XLogSegNo	first = 0;
	int			n;
	int			k = 0;
	int			i;

	if (wb->nlinked == 0)
		return;
	/* nothing staged waits while we wait for a WAL flush */
	submit_plain(wb);
	if (pgu_wal_safe_upto() >= lsn || wait_inflight_flush(wb, lsn))
	{
		linked_to_plain(wb);
		return;
	}
	upto = GetXLogWriteRecPtr();
	Assert(upto >= lsn);
	n = pgu_wal_chain_length(upto, &first);
	if (n == 0)
	{
		linked_to_plain(wb);
		return;
	}
	if (n > PGU_WAL_MAX_CHAIN || n + wb->nlinked > (int) ring->sq_entries ||
		!pgu_io_try_acquire(wh, n))
	{
		/* too long a chain for one submission, or no slot: core flushes */
		XLogFlush(lsn);
		linked_to_plain(wb);
		return;
	}

	pgu_wal_stage(wh, n, first, upto, wb->nlinked);
	for (i = 0; i < n; i++)
	{
		WbEntry		e;

		e.h = wh[i];
		e.file = -1;
		e.buf_id = -1;
		fifo_push(wb, &e);
		wb->scratch[k++] = wh[i];
	}
	for (i = 0; i < wb->nlinked; i++)
	{
		WbEntry    *e = &wb->linked[i];
		PgUringSlot *slot = pgu_io_slot(e->h);

		slot->target.write.linked = true;
		slot->target.write.wal_chain = pgu_slot_user_data(pgu_io_slot(wh[n - 1]));
		if (i < wb->nlinked - 1)
			slot->flags |= PGU_IO_LINK;
		fifo_push(wb, e);
		wb->scratch[k++] = e->h;
	}
	pgu_count(ring, PGU_C_LINKED_WRITES, wb->nlinked);
	wb->nlinked = 0;
	wb->linked_lsn = InvalidXLogRecPtr;
	test_delay();
	pgu_io_submit(wb->scratch, k);
	pgu_test_pause_at("chain_submitted", -1);
}

static void
submit_staged(PgUringWriteback *wb)
{
	submit_linked(wb);
	submit_plain(wb);
}

static void
note_failure(PgUringWriteback *wb, PgUringSlot *slot, BlockNumber blkno, int npages)
{
	PgUringWriteTarget *t = &slot->target.write;

	wb->nfailed += npages;
	/* report the cause, not a write cancelled behind it */
	if (wb->failed && !(wb->fail_result == -ECANCELED && slot->result != -ECANCELED))
		return;
	wb->failed = true;
	/* a short write: the bytes of the block it ended in */
	wb->fail_result = slot->result >= 0 ?
		slot->result - (int32) (blkno - t->blkno) * BLCKSZ : slot->result;
	wb->fail_rfile = t->rfile;
	wb->fail_fork = t->fork;
	wb->fail_block = blkno;
}

/*
 * Ask the kernel to start writing back the blocks of file fi written since
 * the last hint.  Submitted at once and reclaimed like a write (the file
 * stays open until it completed); skipped if no slot is free or the FIFO
 * has no room.
 */
static void
writeback_hint(PgUringWriteback *wb, int fi)
{
	WbFile	   *f = &wb->files[fi];
	PgUringHandle h;
	PgUringSlot *slot;
	WbEntry		e;

	/* within our depth, so the FIFO keeps room for a WAL chain */
	if (wb->count + wb->nplain + wb->nlinked >= wb->depth || !pgu_io_try_acquire(&h, 1))
		return;
	slot = pgu_io_slot(h);
	slot->op = PGU_OP_WRITEBACK_HINT;
	slot->target.file.fd = f->fd;
	slot->target.file.offset = (uint64) f->hint_lo * BLCKSZ;
	slot->target.file.len = (uint32) (f->hint_hi - f->hint_lo + 1) * BLCKSZ;
	f->hint_count = 0;
	f->inflight++;
	e.h = h;
	e.file = fi;
	e.buf_id = -1;
	fifo_push(wb, &e);
	pgu_io_submit(&h, 1);
}

/* Wait for our oldest IO and account for it, dropping its pin and slot. */
static void
reclaim_oldest(PgUringWriteback *wb)
{
	WbEntry    *e;
	PgUringSlot *slot;

	if (wb->count == 0)
		submit_staged(wb);
	if (wb->count == 0)
		return;
	e = fifo_at(wb, 0);
	pgu_io_wait(e->h);
	slot = pgu_io_slot(e->h);
	if (slot->op == PGU_OP_WALSYNC)
	{
		/* a failed WAL fsync was a PANIC in whoever reaped it */
		if (slot->result < 0)
			elog(PANIC, "pg_uring: a failed WAL fsync was not reported");
		pgu_io_release(&e->h, 1);
	}
	else if (slot->op == PGU_OP_WRITEBACK_HINT)
	{
		WbFile	   *f = &wb->files[e->file];

		pgu_io_release(&e->h, 1);
		if (--f->inflight == 0)
			retire_file(wb, f);
	}
	else
	{
		PgUringWriteTarget *t = &slot->target.write;
		WbFile	   *f = &wb->files[e->file];
		BlockNumber blk = t->blkno % ((BlockNumber) RELSEG_SIZE);
		int			npages = t->npages;
		int			written = t->written;
		int			i;

		Assert(slot->op == PGU_OP_BUFWRITE);
		pgu_write_finish_pending_sync(slot);
		written = t->written;
		wb->nwritten += written;
		pgBufferUsage.shared_blks_written += written;
		if (written < npages)
			note_failure(wb, slot, t->blkno + written, npages - written);
		if (written > 0 && wb->hint_pages > 0)
		{
			if (f->hint_count == 0 || blk < f->hint_lo)
				f->hint_lo = blk;
			if (f->hint_count == 0 || blk + written - 1 > f->hint_hi)
				f->hint_hi = blk + written - 1;
			f->hint_count += written;
		}
		/* the further pages' slots first: the head says which they are */
		for (i = npages - 1; i >= 0; i--)
		{
			ReleaseBuffer(t->page_bufs[i] + 1);
			if (i > 0)
			{
				PgUringHandle ph;

				ph.slot = t->page_slots[i];
				ph.generation = pgu_slot(ph.slot)->generation;
				pgu_io_release(&ph, 1);
			}
		}
		pgu_io_release(&e->h, 1);
		wb->npinned -= npages;
		pgu_pins_release(npages);
		f->inflight -= npages;
		if (wb->hint_pages > 0 && f->hint_count >= wb->hint_pages)
			writeback_hint(wb, e->file);
		if (f->inflight == 0)
			retire_file(wb, f);
	}
	wb->head = (wb->head + 1) % wb->fifo_cap;
	wb->count--;
}

static void
reclaim_all(PgUringWriteback *wb)
{
	submit_staged(wb);
	while (wb->count > 0)
		reclaim_oldest(wb);
}

/*
 * Room for one more staged write: a slot of our depth and a pin, ours and
 * from the server-wide budget (pgu_pins_*), which the caller gives back
 * unless the write is staged.  While the budget is spent, reclaim our own
 * writes (submitting what is staged first); with none left, wait for other
 * processes'.
 */
static void
make_room(PgUringWriteback *wb)
{
	if (!pgu_test_hold_reap)
		(void) pgu_ring_try_drain(pgu_ring(pgu_my_ring()));
	while (wb->count > 0 && pgu_io_is_completed(fifo_at(wb, 0)->h))
		reclaim_oldest(wb);
	while (wb->count + wb->nplain + wb->nlinked >= wb->depth ||
		   wb->npinned >= wb->maxpins)
		reclaim_oldest(wb);
	if (wb->nretired >= WB_MAX_RETIRED)
		sync_files(wb);
	while (!pgu_pins_try_reserve())
	{
		if (wb->count > 0 || wb->nplain > 0 || wb->nlinked > 0)
			reclaim_oldest(wb);
		else
			pgu_pins_wait();
	}
}

static void
remember_later(PgUringWriteback *wb, int buf_id, BufferTag *tag, XLogRecPtr lsn)
{
	WbLater    *l;

	if (wb->nowait || wb->second_pass)
		return;
	if (wb->nlater == wb->maxlater)
	{
		wb->maxlater = Max(64, wb->maxlater * 2);
		wb->later = wb->later == NULL ?
			palloc(sizeof(WbLater) * wb->maxlater) :
			repalloc(wb->later, sizeof(WbLater) * wb->maxlater);
	}
	l = &wb->later[wb->nlater++];
	l->buf_id = buf_id;
	l->tag = *tag;
	l->lsn = lsn;
}

/* ------------------------------------------------------------------------
 * Writing one buffer
 * ------------------------------------------------------------------------
 */

/*
 * A page that needs no WAL flush and follows the last staged plain write in
 * the same segment joins it: one pwritev for up to PGU_MAX_COMBINE pages.
 * Its slot keeps the page (bounce copy, buffer, pin) but is never
 * submitted; waiters on its buffer are sent to the head's slot.
 */
static bool
join_run(PgUringWriteback *wb, int fi, PgUringSlot *slot, PgUringHandle h)
{
	WbEntry    *prev;
	PgUringSlot *hs;
	PgUringWriteTarget *ht;
	PgUringWriteTarget *t = &slot->target.write;

	if (wb->nplain == 0)
		return false;
	prev = &wb->plain[wb->nplain - 1];
	hs = pgu_io_slot(prev->h);
	ht = &hs->target.write;
	if (prev->file != fi || ht->linked || ht->npages >= PGU_MAX_COMBINE ||
		t->blkno != ht->blkno + ht->npages)
		return false;
	slot->op = PGU_OP_BUFWRITE_PAGE;
	t->head = prev->h.slot;
	ht->page_slots[ht->npages] = h.slot;
	ht->page_bufs[ht->npages] = t->buf_id;
	ht->iov[ht->npages] = t->iov[0];
	ht->npages++;
	ht->lsn = Max(ht->lsn, t->lsn);
	pgu_bufmap_set(t->buf_id, prev->h.slot);
	return true;
}
static bool
write_tagged(PgUringWriteback *wb, int buf_id, BufferTag *tag)
{
	BufferDesc *desc = GetBufferDescriptor(buf_id);
	Buffer		buffer = buf_id + 1;
	LWLock	   *content = BufferDescriptorGetContentLock(desc);
	PgUringHandle h;
	PgUringSlot *slot;
	PgUringWriteTarget *t;
	char	   *copy;
	int64		hits;
	uint32		state;
	bool		permanent;
	bool		need_wal;
	XLogRecPtr	lsn;
	WbEntry		e;
	int			fi;
	BlockNumber fault_block;

	make_room(wb);

	/* a slot first: never wait for one while holding a claimed buffer */
	if (!pgu_io_try_acquire_bounce(&h, 1))
	{
		bool		got = false;

		submit_staged(wb);
		while (!got && wb->count > 0)
		{
			reclaim_oldest(wb);
			got = pgu_io_try_acquire_bounce(&h, 1);
		}
		if (!got)
			pgu_io_acquire_bounce(&h, 1);
	}

	hits = pgBufferUsage.shared_blks_hit;
	if (!ReadRecentBuffer(pgu_tag_file(tag), tag->forkNum, tag->blockNum, buffer))
	{
		pgu_io_release(&h, 1);
		pgu_pins_release(1);
		return false;
	}
	pgBufferUsage.shared_blks_hit = hits;	/* pinned to write: not a hit */

	if (!LWLockConditionalAcquire(content, LW_SHARED))
	{
		if (wb->nowait)
		{
			ReleaseBuffer(buffer);
			pgu_io_release(&h, 1);
			pgu_pins_release(1);
			return false;
		}
		/* never block holding staged writes: a waiter may need one */
		submit_staged(wb);
		LWLockAcquire(content, LW_SHARED);
	}

	state = LockBufHdr(desc);
	if ((state & BM_IO_IN_PROGRESS) || !(state & BM_DIRTY))
	{
		bool		busy = (state & BM_IO_IN_PROGRESS) != 0;

		UnlockBufHdr(desc, state);
		LWLockRelease(content);
		ReleaseBuffer(buffer);
		pgu_io_release(&h, 1);
		pgu_pins_release(1);
		if (busy)
			remember_later(wb, buf_id, tag, InvalidXLogRecPtr);
		return false;
	}
	permanent = (state & BM_PERMANENT) != 0;
	state |= BM_IO_IN_PROGRESS;
	state &= ~BM_JUST_DIRTIED;
	pgu_bufmap_set(buf_id, h.slot);	/* in the same hold as IO_IN_PROGRESS */
	UnlockBufHdr(desc, state);

	/* from here the buffer is in a slot whose abandon callback undoes it */
	slot = pgu_io_slot(h);
	slot->op = PGU_OP_BUFWRITE;
	t = &slot->target.write;
	t->rfile = pgu_tag_file(tag);
	t->fork = tag->forkNum;
	t->blkno = tag->blockNum;
	t->fd = -1;
	t->buf_id = buf_id;
	t->linked = false;
	t->fault = PGU_FAULT_NONE;
	if (pgu_test_fault_at("weio", &fault_block) && fault_block == tag->blockNum)
		t->fault = PGU_FAULT_EIO;
	else if (pgu_test_fault_at("wshort", &fault_block) && fault_block == tag->blockNum)
		t->fault = PGU_FAULT_SHORT;
	t->npages = 1;
	t->written = 0;
	t->head = h.slot;
	t->page_slots[0] = h.slot;
	t->page_bufs[0] = buf_id;
	copy = pgu_slot_bounce(h.slot);
	t->iov[0].iov_base = copy;
	t->iov[0].iov_len = BLCKSZ;
	memcpy(copy, BufferGetPage(buffer), BLCKSZ);
	LWLockRelease(content);

	/* the LSN of exactly what reaches disk decides the WAL rule */
	lsn = PageGetLSN((Page) copy);
	t->lsn = lsn;
	PageSetChecksumInplace((Page) copy, tag->blockNum);

	need_wal = permanent && lsn > pgu_wal_safe_upto();
#ifdef PGU_TEST_BREAK_WAL_RULE
	/*
	 * Negative control of the power-loss harness (test/power), never in a
	 * release: pages are written whatever their WAL, and pg_uring_flush with
	 * sync does not flush WAL at its end either (flush.c).
	 */
	need_wal = false;
#endif
	if (need_wal && lsn > GetXLogWriteRecPtr())
	{
		/* WAL not even written: never early, never IO_IN_PROGRESS meanwhile */
		slot->op = PGU_OP_NOP;
		pgu_write_finish(buf_id, WRITE_UNDONE);
		pgu_io_release(&h, 1);
		ReleaseBuffer(buffer);
		pgu_pins_release(1);
		XLogSetAsyncXactLSN(lsn);
		pgu_count(pgu_ring(pgu_my_ring()), PGU_C_WRITES_DEFERRED, 1);
		remember_later(wb, buf_id, tag, lsn);
		return false;
	}

	fi = wb_file(wb, pgu_tag_file(tag), tag->forkNum, tag->blockNum / ((BlockNumber) RELSEG_SIZE));
	t->fd = wb->files[fi].fd;
	wb->files[fi].inflight++;
	wb->files[fi].written = true;
	wb->npinned++;

	e.h = h;
	e.file = fi;
	e.buf_id = buf_id;
	if (need_wal)
	{
		wb->linked[wb->nlinked++] = e;
		wb->linked_lsn = Max(wb->linked_lsn, lsn);
		if (wb->nlinked >= WB_CHAIN)
			submit_linked(wb);
	}
	else
	{
		if (!join_run(wb, fi, slot, h))
			wb->plain[wb->nplain++] = e;
		if (++wb->plain_pages >= WB_BATCH_PAGES || wb->nplain >= WB_BATCH)
			submit_plain(wb);
	}
	return true;
}

/* ------------------------------------------------------------------------
 * The caller's API
 * ------------------------------------------------------------------------
 */
PgUringWriteback *
pgu_wb_begin(bool nowait, bool sync, int depth)
{
	PgUringWriteback *wb = palloc0(sizeof(PgUringWriteback));

	pgu_require_loaded();
	wb->nowait = nowait;
	wb->sync = sync;

	/*
	 * Writeback hints as core gives them: checkpoint_flush_after for a flush
	 * (it prepares a checkpoint), bgwriter_flush_after for the writer.  Our
	 * writes come in buffer order, not block order, so a hint covers the
	 * span of blocks written since the last one, every 8 times as many.
	 */
	wb->hint_pages = 8 * (nowait ? bgwriter_flush_after : checkpoint_flush_after);
	wb->depth = Max(1, Min(depth, pgu_io_nslots_of(true) / 2));
	wb->maxpins = Max(1, Min(WB_MAX_PINS, NBuffers / 8));
	wb->fifo_cap = wb->depth + PGU_WAL_MAX_CHAIN + 1;
	wb->fifo = palloc(sizeof(WbEntry) * wb->fifo_cap);
	wb->scratch = palloc(sizeof(PgUringHandle) * (wb->fifo_cap + WB_BATCH + WB_CHAIN));
	wb->maxfiles = 16;
	wb->files = palloc(sizeof(WbFile) * wb->maxfiles);
	return wb;
}

/*
 * Queue a write of shared buffer buf_id if it is valid and dirty (and, with
 * a filter, belongs to one of those relfilenodes).  Returns true if a write
 * was staged or submitted.
 */
bool
pgu_wb_candidate(int buf_id, const PgUringRelFile *filter, int nfilter, BufferTag *tag)
{
	BufferDesc *desc = GetBufferDescriptor(buf_id);
	uint32		state;
	int			i;

	/* cheap unlocked look first: most buffers are clean */
	state = pg_atomic_read_u32(&desc->state);
	if ((state & (BM_TAG_VALID | BM_VALID | BM_DIRTY)) != (BM_TAG_VALID | BM_VALID | BM_DIRTY))
		return false;

	state = LockBufHdr(desc);
	*tag = desc->tag;
	UnlockBufHdr(desc, state);
	if ((state & (BM_TAG_VALID | BM_VALID | BM_DIRTY)) != (BM_TAG_VALID | BM_VALID | BM_DIRTY))
		return false;
	if (filter != NULL)
	{
		for (i = 0; i < nfilter; i++)
			if (PGU_RF_EQUAL(pgu_tag_file(tag), filter[i]))
				return true;
		return false;
	}
	return true;
}

/*
 * Queue a write of shared buffer buf_id, which held the page tag when the
 * caller looked (pgu_wb_candidate), if it still does and is still dirty.
 * Returns true if a write was staged or submitted.
 */
bool
pgu_wb_add_tagged(PgUringWriteback *wb, int buf_id, BufferTag *tag)
{
	if (wb->nowait &&
		(pg_atomic_read_u32(&GetBufferDescriptor(buf_id)->state) & BM_IO_IN_PROGRESS))
		return false;
	return write_tagged(wb, buf_id, tag);
}

/* Both at once: queue a write of buf_id if it is a dirty page of filter. */
bool
pgu_wb_add(PgUringWriteback *wb, int buf_id, const PgUringRelFile *filter, int nfilter)
{
	BufferTag	tag;

	if (!pgu_wb_candidate(buf_id, filter, nfilter, &tag))
		return false;
	return pgu_wb_add_tagged(wb, buf_id, &tag);
}

/* Wait until a buffer has no IO in progress, draining its ring if it is ours. */
static void
wait_buffer_io(int buf_id)
{
	BufferDesc *desc = GetBufferDescriptor(buf_id);

	while (pg_atomic_read_u32(&desc->state) & BM_IO_IN_PROGRESS)
	{
		if (!pg_uring_complete_buffer_io(buf_id + 1))
			(void) ConditionVariableTimedSleep(BufferDescriptorGetIOCV(desc), 10,
											   WAIT_EVENT_BUFFER_IO);
	}
	ConditionVariableCancelSleep();
}

/*
 * Fdatasync every segment we wrote through, behind a drain barrier: a
 * drained no-op starts only once every IO submitted to the ring before it
 * has completed, and nothing submitted after it starts before it, so the
 * fdatasyncs cover our writes without us waiting for them first, and run
 * in parallel.  (A drain on an fdatasync itself would hold up every other
 * backend's IOs on the shared ring for as long as the fdatasync takes.)
 * The fdatasyncs are submitted after our writes, on the same ring.
 */
static void
sync_files(PgUringWriteback *wb)
{
	PgUringRing *ring = pgu_ring(pgu_my_ring());
	int			maxbatch = Min(64, (int) ring->sq_entries - 1);
	int		   *which;
	PgUringHandle *h;
	int			nsync = 0;
	int			start;
	int			i;
	uint32		fault_seg;

	submit_staged(wb);
	which = palloc(sizeof(int) * wb->nfiles);
	for (i = 0; i < wb->nfiles; i++)
	{
		WbFile	   *f = &wb->files[i];
		int			j;

		if (f->fd < 0 || !f->written)
			continue;

		/*
		 * A segment may have had several fds of ours (one is closed when no
		 * write of ours is on it, a later write opens another): one
		 * fdatasync covers the file, through the fd opened last.
		 */
		for (j = 0; j < nsync; j++)
		{
			WbFile	   *g = &wb->files[which[j]];

			if (g->segno == f->segno && g->fork == f->fork &&
				PGU_RF_EQUAL(g->rfile, f->rfile))
				break;
		}
		if (j == nsync)
			which[nsync++] = i;
		else if (f->opened > wb->files[which[j]].opened)
		{
			wb->files[which[j]].written = false;
			if (wb->files[which[j]].retired)
				close_file(wb, &wb->files[which[j]]);
			which[j] = i;
		}
		else
		{
			f->written = false;
			if (f->retired)
				close_file(wb, f);
		}
	}
	h = palloc(sizeof(PgUringHandle) * (maxbatch + 1));

	for (start = 0; start < nsync; start += maxbatch)
	{
		int			n = Min(maxbatch, nsync - start);

		if (!pgu_io_try_acquire(h, n + 1))
		{
			/* free our own slots before waiting for others' */
			while (wb->count > 0)
				reclaim_oldest(wb);
			pgu_io_acquire(h, n + 1);
		}
		pgu_io_slot(h[0])->op = PGU_OP_NOP;
		pgu_io_slot(h[0])->flags |= PGU_IO_DRAIN;
		for (i = 0; i < n; i++)
		{
			PgUringSlot *slot = pgu_io_slot(h[i + 1]);

			slot->op = PGU_OP_FDATASYNC;
			slot->target.file.fd = wb->files[which[start + i]].fd;
			/* pg_uring.test_fault "dsfail:N": the fdatasync of segment N fails */
			if (pgu_test_fault_at("dsfail", &fault_seg) &&
				fault_seg == wb->files[which[start + i]].segno)
				slot->target.file.fd = -1;
		}
		pgu_io_submit(h, n + 1);
		pgu_count(ring, PGU_C_DRAINED_WRITES, n);
		/* our writes before the barrier, then the barrier and the syncs */
		while (wb->count > 0)
			reclaim_oldest(wb);
		pgu_io_wait_many(h, n + 1);
		for (i = 0; i < n; i++)
		{
			WbFile	   *f = &wb->files[which[start + i]];
			int32		res = pgu_io_slot(h[i + 1])->result;

			if (res < 0)
			{
				char	   *path = pgu_segment_path(f->rfile, f->fork, f->segno);

				pgu_io_release(h, n + 1);
				errno = -res;
				ereport(data_sync_elevel(ERROR),
						(errcode_for_file_access(),
						 errmsg("could not fsync file \"%s\": %m", path)));
			}
			f->written = false;
			if (f->retired)
				close_file(wb, f);
		}
		pgu_io_release(h, n + 1);
	}
	pfree(h);
	pfree(which);
}

/*
 * Come back to the buffers that were busy or whose WAL was not written:
 * have core make their WAL durable, wait for other IOs on them, try once
 * more.
 */
static void
second_pass(PgUringWriteback *wb)
{
	XLogRecPtr	maxlsn = InvalidXLogRecPtr;
	int			i;

	reclaim_all(wb);
	wb->second_pass = true;
	for (i = 0; i < wb->nlater; i++)
		maxlsn = Max(maxlsn, wb->later[i].lsn);
	if (maxlsn != InvalidXLogRecPtr)
		XLogFlush(maxlsn);
	for (i = 0; i < wb->nlater; i++)
	{
		WbLater    *l = &wb->later[i];

		CHECK_FOR_INTERRUPTS();
		if (l->lsn == InvalidXLogRecPtr)
		{
			submit_staged(wb);
			wait_buffer_io(l->buf_id);
		}
		if (pg_atomic_read_u32(&GetBufferDescriptor(l->buf_id)->state) & BM_DIRTY)
			(void) write_tagged(wb, l->buf_id, &l->tag);
	}
}

static void
close_all_files(PgUringWriteback *wb)
{
	int			i;

	for (i = 0; i < wb->nfiles; i++)
		close_file(wb, &wb->files[i]);
}

/*
 * Submit what is staged, come back to what was skipped (unless nowait),
 * sync if asked, wait for everything and drop every pin.  Reports the
 * first failed write as an ERROR (the buffer stays dirty).  Returns the
 * number of buffers written.
 */
int64
pgu_wb_finish(PgUringWriteback *wb)
{
	submit_staged(wb);
	if (wb->nlater > 0)
		second_pass(wb);
	if (wb->sync)
		sync_files(wb);
	reclaim_all(wb);
	close_all_files(wb);

	if (wb->failed)
	{
		char	   *path = pgu_segment_path(wb->fail_rfile, wb->fail_fork,
										wb->fail_block / ((BlockNumber) RELSEG_SIZE));

		if (wb->fail_result < 0)
		{
			errno = -wb->fail_result;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not write block %u in file \"%s\" through pg_uring: %m",
							wb->fail_block, path),
					 errdetail("%lld buffer writes failed; those buffers stay dirty.",
							   (long long) wb->nfailed),
					 errhint("The next checkpoint writes them again.")));
		}
		ereport(ERROR,
				(errcode(ERRCODE_DISK_FULL),
				 errmsg("could not write block %u in file \"%s\" through pg_uring: wrote only %d of %d bytes",
						wb->fail_block, path, wb->fail_result, BLCKSZ),
				 errdetail("%lld buffer writes failed; those buffers stay dirty.",
						   (long long) wb->nfailed),
				 errhint("Check free disk space.")));
	}
	return wb->nwritten;
}

/*
 * On ERROR: undo what is staged, wait for what is in flight (draining; no
 * interrupt can cut this short), close the files.  Pins are left to the
 * resource owner, which releases them only after this returned.
 */
void
pgu_wb_abort(PgUringWriteback *wb)
{
	pgu_io_cleanup_mine();
	close_all_files(wb);
	pgu_pins_release_all();
	wb->count = 0;
	wb->nplain = 0;
	wb->plain_pages = 0;
	wb->nlinked = 0;
}

/*
 * During recovery core must write (it keeps minRecoveryPoint): write one
 * dirty buffer through FlushOneBuffer.  Returns 1 if it was written.
 */
int64
pgu_wb_through_core(int buf_id, const PgUringRelFile *filter, int nfilter)
{
	BufferDesc *desc = GetBufferDescriptor(buf_id);
	BufferTag	tag;
	uint32		state;
	int64		hits;

	if (!pgu_wb_candidate(buf_id, filter, nfilter, &tag))
		return 0;
	hits = pgBufferUsage.shared_blks_hit;
	if (!ReadRecentBuffer(pgu_tag_file(&tag), tag.forkNum, tag.blockNum, buf_id + 1))
		return 0;
	pgBufferUsage.shared_blks_hit = hits;
	LockBuffer(buf_id + 1, BUFFER_LOCK_SHARE);
	state = pg_atomic_read_u32(&desc->state);
	FlushOneBuffer(buf_id + 1);
	LockBuffer(buf_id + 1, BUFFER_LOCK_UNLOCK);
	ReleaseBuffer(buf_id + 1);
	return (state & BM_DIRTY) ? 1 : 0;
}
