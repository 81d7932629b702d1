/*-------------------------------------------------------------------------
 *
 * writeop.c
 *	  The buffer-write ops: writing a dirty shared buffer from its bounce
 *	  copy, the further pages of a combined write, and the writeback hint;
 *	  their completion from any process.
 *
 * Owns: the callbacks of PGU_OP_BUFWRITE, PGU_OP_BUFWRITE_PAGE and
 * PGU_OP_WRITEBACK_HINT (prep, sync, complete, abandon, describe, release,
 * has_waiters), and how a write's buffers end (pgu_write_finish).  The
 * write-back object that copies, orders and submits these writes is in
 * writeback.c.
 *
 * Invariants kept here:
 *	- Completion (any process) uses no file descriptor: it registers the
 *	  segment's fsync with the checkpointer first (inside a critical section,
 *	  so a full queue is never compacted with palloc).  If the queue is full,
 *	  the buffers stay BM_IO_IN_PROGRESS and the owner, which has the segment
 *	  open, fsyncs it when it reclaims the write or frees the slot
 *	  (pgu_write_finish_pending_sync: PANIC on failure unless
 *	  data_sync_retry).  Only then clear BM_IO_IN_PROGRESS and BM_IO_ERROR,
 *	  and BM_DIRTY and BM_CHECKPOINT_NEEDED only if BM_JUST_DIRTIED is still
 *	  clear; broadcast the buffer's IO condition variable.  A failed, short
 *	  or cancelled write keeps BM_DIRTY and sets BM_IO_ERROR.
 *	- A combined write's head slot finishes every page of the run; the
 *	  further pages' slots are never submitted.
 *	- A staged write that is never submitted ends its buffers as undone
 *	  (abandon): still dirty, IO no longer in progress, waiters woken.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "access/xlog.h"
#include "common/relpath.h"
#include "miscadmin.h"
#include "storage/buf_internals.h"
#include "storage/bufmgr.h"
#include "storage/bufpage.h"
#include "storage/fd.h"
#include "storage/md.h"
#include "storage/sync.h"
#include "utils/wait_event.h"

#include "ring.h"
#include "wal.h"
#include "writeop.h"

static void end_write(PgUringSlot *slot);

/* the path of a relation fork's segment file, palloc'd */
char *
pgu_segment_path(PgUringRelFile rfile, ForkNumber fork, BlockNumber segno)
{
	char	   *path = relpathperm(rfile, fork);

	if (segno == 0)
		return path;
	return psprintf("%s.%u", path, segno);
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

static char *
slot_page(PgUringSlot *slot)
{
	return pgu_slot_bounce((int) (slot - pgu_slot(0)));
}

static void
bufwrite_prep(struct io_uring_sqe *sqe, PgUringSlot *slot)
{
	PgUringWriteTarget *t = &slot->target.write;

	if (t->npages == 1)
		io_uring_prep_write(sqe, t->fd, slot_page(slot), BLCKSZ, seg_offset(t->blkno));
	else
		io_uring_prep_writev(sqe, t->fd, t->iov, t->npages, seg_offset(t->blkno));
}

static int32
bufwrite_sync(PgUringSlot *slot)
{
	PgUringWriteTarget *t = &slot->target.write;
	ssize_t		rc;

	rc = pwritev(t->fd, t->iov, t->npages, seg_offset(t->blkno));
	return rc < 0 ? -errno : (int32) rc;
}

static bool
bufwrite_result_ok(PgUringSlot *slot, int32 result)
{
	return result == (int32) slot->target.write.npages * BLCKSZ;
}

/* page i of the run a head slot writes */
static PgUringWriteTarget *
page_target(PgUringSlot *head, int i)
{
	return &pgu_slot(head->target.write.page_slots[i])->target.write;
}

void
pgu_write_finish(int buf_id, WriteOutcome outcome)
{
	if (outcome == WRITE_DONE)
		pgu_end_buffer_io(buf_id, BM_IO_ERROR, 0, true);
	else if (outcome == WRITE_FAILED)
		pgu_end_buffer_io(buf_id, 0, BM_IO_ERROR, false);
	else
		pgu_end_buffer_io(buf_id, 0, 0, false);
}

/*
 * Runs in whichever process reaped the CQE: no ERROR, no palloc, no lock the
 * owner might hold (the checkpointer's request queue lock is never held by
 * an owner).
 */
static void
bufwrite_complete(PgUringSlot *slot)
{
	PgUringWriteTarget *t = &slot->target.write;
	PgUringRing *ring = pgu_ring(slot->ring);
	int			written = 0;
	int			i;

	t->sync_pending = false;
	/*
	 * pg_uring.test_fault "weio:N": the write covering block N fails;
	 * "wshort:N": it ends in the middle of block N.
	 */
	for (i = 0; i < t->npages && slot->result >= 0; i++)
	{
		uint8		fault = page_target(slot, i)->fault;

		if (fault == PGU_FAULT_EIO)
			slot->result = -EIO;
		else if (fault == PGU_FAULT_SHORT)
			slot->result = Min(slot->result, i * BLCKSZ + BLCKSZ / 2);
	}
	if (slot->result > 0)
		written = Min((int) t->npages, slot->result / BLCKSZ);
	if (written > 0)
	{
		FileTag		tag;
		bool		queued;

		/* a run never crosses a segment: one request covers it */
		memset(&tag, 0, sizeof(tag));
		tag.handler = SYNC_HANDLER_MD;
		tag.forknum = t->fork;
		PGU_FILETAG_FILE(tag) = t->rfile;
		tag.segno = t->blkno / ((BlockNumber) RELSEG_SIZE);

		/* a critical section keeps a full queue from being compacted (palloc) */
		START_CRIT_SECTION();
		queued = RegisterSyncRequest(&tag, SYNC_REQUEST, false);
		END_CRIT_SECTION();
		if (queued)
			pgu_count(ring, PGU_C_SYNC_REQUESTS, 1);
		else
		{
			/*
			 * As core's register_dirty_segment, the segment must be synced
			 * before the buffers are clean.  t->fd is a descriptor of the
			 * owner's, meaningless here: the owner does it when it reclaims
			 * the write (finish_pending_sync), and until then the buffers
			 * stay BM_IO_IN_PROGRESS, so no checkpoint can pass them by.
			 */
			t->written = (uint8) written;
			t->sync_pending = true;
			return;
		}
	}
	t->written = (uint8) written;
	end_write(slot);
}

/*
 * Count a finished write and end the IO on its pages: the first t->written
 * reached the file, the others failed.
 */
static void
end_write(PgUringSlot *slot)
{
	PgUringWriteTarget *t = &slot->target.write;
	PgUringRing *ring = pgu_ring(slot->ring);
	int			i;

	if (t->written > 0)
		pgu_count(ring, PGU_C_BUF_WRITES, t->written);
	if (t->written < t->npages)
		pgu_count(ring, PGU_C_BUF_WRITE_FAILURES, t->npages - t->written);
	for (i = 0; i < t->npages; i++)
		pgu_write_finish(t->page_bufs[i], i < t->written ? WRITE_DONE : WRITE_FAILED);
}

/*
 * Owner only, when it reclaims a write or frees its slot: the completion
 * found the checkpointer's request queue full, so fsync the segment here,
 * through the owner's own descriptor, and only then end the IO on the
 * pages (clean if written).  A failed fsync is a PANIC, as in core, unless
 * data_sync_retry: then the pages stay dirty and the write counts as failed.
 */
void
pgu_write_finish_pending_sync(PgUringSlot *slot)
{
	PgUringWriteTarget *t = &slot->target.write;
	BlockNumber segno = t->blkno / ((BlockNumber) RELSEG_SIZE);
	char	   *path;

	if (!t->sync_pending)
		return;
	t->sync_pending = false;
	path = pgu_segment_path(t->rfile, t->fork, segno);
	if (pg_fsync(t->fd) < 0)
	{
		int			save_errno = errno;

		errno = save_errno;
		ereport(data_sync_elevel(ERROR) >= PANIC ? PANIC : WARNING,
				(errcode_for_file_access(),
				 errmsg("could not fsync file \"%s\": %m", path),
				 errdetail("The checkpointer's request queue was full; the buffers written stay dirty.")));
		slot->result = -save_errno;
		t->written = 0;
	}
	else
	{
		pgu_count(pgu_ring(slot->ring), PGU_C_LOCAL_SYNCS, 1);
		ereport(DEBUG1,
				(errmsg_internal("pg_uring: fsynced \"%s\" itself: the checkpointer's request queue is full",
								 path)));
	}
	pfree(path);
	end_write(slot);
}

/* owner only, as the slot is freed (also on ERROR and exit) */
static void
bufwrite_release(PgUringSlot *slot)
{
	pgu_write_finish_pending_sync(slot);
}

/* owner only: a staged write that will never be submitted */
static void
bufwrite_abandon(PgUringSlot *slot)
{
	int			i;

	for (i = 0; i < slot->target.write.npages; i++)
		pgu_write_finish(slot->target.write.page_bufs[i], WRITE_UNDONE);
}

static void
bufwrite_describe(PgUringSlot *slot, char *buf, size_t len)
{
	PgUringWriteTarget *t = &slot->target.write;

	snprintf(buf, len, "rel %u/%u/%u fork %s blocks %u-%u lsn %X/%X%s",
			 PGU_RF_SPC(t->rfile), PGU_RF_DB(t->rfile), PGU_RF_REL(t->rfile),
			 forkNames[t->fork], t->blkno, t->blkno + Max(t->npages, 1) - 1,
			 LSN_FORMAT_ARGS(t->lsn), t->linked ? " behind WAL flush" : "");
}

static void
page_describe(PgUringSlot *slot, char *buf, size_t len)
{
	PgUringWriteTarget *t = &slot->target.write;

	snprintf(buf, len, "rel %u/%u/%u fork %s block %u: a page of the write in slot %d",
			 PGU_RF_SPC(t->rfile), PGU_RF_DB(t->rfile), PGU_RF_REL(t->rfile),
			 forkNames[t->fork], t->blkno, t->head);
}

/* the head's completion or abandon finishes these pages: nothing of their own */
static const PgUringOpInfo page_info = {
	"buffer write page", NULL, NULL, NULL, NULL, NULL, page_describe, NULL
};

/*
 * Writeback hint: start the kernel writing back blocks we wrote (as core's
 * checkpoint_flush_after does), so a later fsync finds little left.  Only
 * a hint: its result is ignored.
 */
static void
hint_prep(struct io_uring_sqe *sqe, PgUringSlot *slot)
{
	io_uring_prep_sync_file_range(sqe, slot->target.file.fd, slot->target.file.len,
								  slot->target.file.offset, SYNC_FILE_RANGE_WRITE);
}

static int32
hint_sync(PgUringSlot *slot)
{
	int			rc;

	rc = sync_file_range(slot->target.file.fd, (off_t) slot->target.file.offset,
						 (off_t) slot->target.file.len, SYNC_FILE_RANGE_WRITE);
	return rc < 0 ? -errno : 0;
}

static bool
hint_result_ok(PgUringSlot *slot, int32 result)
{
	return result >= 0;
}

static void
hint_describe(PgUringSlot *slot, char *buf, size_t len)
{
	snprintf(buf, len, "writeback of fd %d offset " UINT64_FORMAT " length %u",
			 slot->target.file.fd, slot->target.file.offset, slot->target.file.len);
}

static const PgUringOpInfo hint_info = {
	"writeback hint", hint_prep, hint_sync, hint_result_ok,
	NULL, NULL, hint_describe, NULL
};

/* a backend waits in WaitIO for one of the run's buffers (FlushBuffer, eviction) */
static bool
bufwrite_has_waiters(PgUringSlot *slot)
{
	PgUringWriteTarget *t = &slot->target.write;
	int			i;

	for (i = 0; i < t->npages && i < PGU_MAX_COMBINE; i++)
		if (t->page_bufs[i] >= 0 && t->page_bufs[i] < NBuffers &&
			pgu_buffer_io_waited(t->page_bufs[i]))
			return true;
	return false;
}

static const PgUringOpInfo bufwrite_info = {
	"buffer write", bufwrite_prep, bufwrite_sync, bufwrite_result_ok,
	bufwrite_complete, bufwrite_abandon, bufwrite_describe, bufwrite_release,
	bufwrite_has_waiters
};

void
pgu_writeback_register(void)
{
	pgu_register_op(PGU_OP_BUFWRITE, &bufwrite_info);
	pgu_register_op(PGU_OP_WRITEBACK_HINT, &hint_info);
	pgu_register_op(PGU_OP_BUFWRITE_PAGE, &page_info);
}

