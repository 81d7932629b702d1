/*-------------------------------------------------------------------------
 *
 * rasource.c
 *	  Where the next blocks of a scan come from, for each node type that
 *	  reads ahead (readahead.c drives them).
 *
 * Owns: reading a running scan's state without changing it, and the
 * generators of the blocks it will reach next:
 *	- seq scan: the blocks after the current one, wrapping at the end of
 *	  the table, up to the block the scan started at (a synchronized scan
 *	  starts anywhere) or the end of its block limit; in a parallel scan
 *	  only the rest of this process's chunk;
 *	- bitmap heap scan: a second iterator over the node's own TIDBitmap,
 *	  skipping the blocks the scan has passed and the ones it will not
 *	  fetch (all-visible, when it needs no column);
 *	- index scan and index-only scan (btree): the heap blocks of the items
 *	  still to be returned from the current leaf page (BTScanOpaque's
 *	  currPos), for an index-only scan only those the visibility map does
 *	  not say are all-visible.
 *
 * Invariants kept here:
 *	- A scan's state is only read: an index scan is never advanced to look
 *	  ahead (that would break kill_prior_tuple and mark/restore), and the
 *	  bitmap's own iterators are never touched.
 *	- Never past what the scan can reach (the end of its table as the scan
 *	  saw it, its chunk, its bitmap, its leaf page).
 *	- Positions increase within a pass; anything else is a new pass.
 *	- Backward scans give RA_NONE: no read-ahead.
 *	- No buffer pin is kept between calls: the visibility map page a
 *	  generator looks at is the caller's to release after the look-ahead.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/nbtree.h"
#include "access/relscan.h"
#include "access/tableam.h"
#include "access/visibilitymap.h"
#include "catalog/catalog.h"
#include "catalog/pg_am_d.h"
#include "nodes/execnodes.h"
#include "nodes/plannodes.h"
#include "utils/rel.h"

#include "compat.h"
#include "ring.h"
#include "readahead.h"

/* a heap table whose blocks live in shared buffers, not a catalog */
bool
pgu_ra_relation_ok(Relation rel)
{
	if (rel == NULL || rel->rd_tableam != GetHeapamTableAmRoutine())
		return false;
	if (RelationUsesLocalBuffers(rel) || IsCatalogRelation(rel))
		return false;
	return rel->rd_rel->relkind == RELKIND_RELATION ||
		rel->rd_rel->relkind == RELKIND_MATVIEW ||
		rel->rd_rel->relkind == RELKIND_TOASTVALUE;
}

/* an index whose scan state we know how to read */
bool
pgu_ra_index_ok(Relation index)
{
	return index != NULL && index->rd_rel->relam == BTREE_AM_OID;
}

static bool
forward(RaScan *s)
{
	return ScanDirectionIsForward(s->ps->state->es_direction);
}

/* ------------------------------------------------------------------------
 * Sequential scans
 * ------------------------------------------------------------------------
 */

/*
 * How many blocks the scan will still read after cur, in the order cur+1,
 * cur+2, ... wrapping at the end of the table.
 */
static BlockNumber
seq_remaining(HeapScanDesc hs, BlockNumber cur)
{
	BlockNumber n;

	if (hs->rs_base.rs_parallel != NULL)
	{
		ParallelBlockTableScanDesc pb = (ParallelBlockTableScanDesc) hs->rs_base.rs_parallel;
		ParallelBlockTableScanWorker pw = hs->rs_parallelworkerdata;

		if (pw == NULL || pw->phsw_nallocated >= pb->phs_nblocks)
			return 0;
		return (BlockNumber) Min((uint64) pw->phsw_chunk_remaining,
								 pb->phs_nblocks - 1 - pw->phsw_nallocated);
	}
	if (hs->rs_nblocks == 0 || cur >= hs->rs_nblocks)
		return 0;
	n = (hs->rs_startblock + hs->rs_nblocks - cur - 1) % hs->rs_nblocks;
	if (hs->rs_numblocks != InvalidBlockNumber)
		n = Min(n, hs->rs_numblocks > 0 ? hs->rs_numblocks - 1 : 0);
	return n;
}

static BlockNumber
seq_start(HeapScanDesc hs)
{
	if (hs->rs_base.rs_parallel != NULL)
		return ((ParallelBlockTableScanDesc) hs->rs_base.rs_parallel)->phs_startblock;
	return hs->rs_startblock;
}

static HeapScanDesc
seq_desc(RaScan *s)
{
	return (HeapScanDesc) ((ScanState *) s->ps)->ss_currentScanDesc;
}

static RaWhere
seq_where(RaScan *s, uint64 *pos)
{
	HeapScanDesc hs = seq_desc(s);
	BlockNumber cb;
	BlockNumber prev;

	if (hs == NULL)
		return RA_NONE;
	cb = hs->rs_cblock;
	s->watch = &hs->rs_cblock;
	s->watch_last = cb;
	s->watch_desc = hs;
	if (cb == s->u.seq.last)
		return RA_SAME;
	prev = s->u.seq.last;
	s->u.seq.last = cb;
	if (cb == InvalidBlockNumber || hs->rs_nblocks == 0 || !forward(s) ||
		!pgu_readahead || !pgu_ra_seqscan_on(hs->rs_base.rs_parallel != NULL))
		return RA_NONE;
	if (s->reader == NULL)
	{
		s->strategy = hs->rs_strategy;
		s->nblocks = hs->rs_nblocks;
	}
	*pos = (cb + hs->rs_nblocks - seq_start(hs)) % hs->rs_nblocks;
	return prev == InvalidBlockNumber ? RA_NEWPASS : RA_MOVED;
}

static void
seq_restart(RaScan *s, bool newpass)
{
	HeapScanDesc hs = seq_desc(s);
	BlockNumber cb = hs->rs_cblock;

	/* the scan passed everything generated (a new parallel chunk, or a run of empty pages) */
	if (!newpass && s->u.seq.gen_pos > s->cur)
		return;
	s->u.seq.gen_next = cb + 1 >= hs->rs_nblocks ? 0 : cb + 1;
	s->u.seq.gen_left = seq_remaining(hs, cb);
	s->u.seq.gen_pos = s->cur + 1;
}

static bool
seq_next(RaScan *s, BlockNumber *blkno, uint64 *pos, Buffer *vmbuf)
{
	HeapScanDesc hs = seq_desc(s);

	if (s->u.seq.gen_left == 0)
		return false;
	*blkno = s->u.seq.gen_next;
	*pos = s->u.seq.gen_pos;
	s->u.seq.gen_next = s->u.seq.gen_next + 1 >= hs->rs_nblocks ? 0 : s->u.seq.gen_next + 1;
	s->u.seq.gen_pos++;
	s->u.seq.gen_left--;
	return true;
}

static void
seq_stop(RaScan *s)
{
	s->watch = NULL;
	s->u.seq.last = InvalidBlockNumber;
	s->u.seq.gen_left = 0;
}

const RaSource pgu_ra_seqscan = {
	"seq scan", seq_where, seq_next, seq_restart, seq_stop
};

/* ------------------------------------------------------------------------
 * Bitmap heap scans
 * ------------------------------------------------------------------------
 */
static void
bm_drop_iterator(RaScan *s)
{
	/* only our own memory: the bitmap itself may already be freed (rescan) */
	if (s->u.bm.it != NULL)
		tbm_end_iterate(s->u.bm.it);
	s->u.bm.it = NULL;
	s->u.bm.tbm = NULL;
	s->u.bm.done = false;
}

static RaWhere
bm_where(RaScan *s, uint64 *pos)
{
	BitmapHeapScanState *node = (BitmapHeapScanState *) s->ps;
	BlockNumber blk;
	bool		newpass = false;

	/*
	 * A rescan frees the node's bitmap and sets it to NULL before the next
	 * call builds a new one: our iterator goes at the first call that sees
	 * no bitmap, never later (a new bitmap may have the old one's address).
	 */
	if (node->tbm == NULL || node->tbmres == NULL || node->pstate != NULL ||
		node->ss.ss_currentScanDesc == NULL)
	{
		if (node->tbm != s->u.bm.tbm)
			bm_drop_iterator(s);
		if (s->u.bm.last == InvalidBlockNumber)
			return RA_SAME;
		s->u.bm.last = InvalidBlockNumber;
		return RA_NONE;
	}
	blk = node->tbmres->blockno;
	if (node->tbm == s->u.bm.tbm && blk == s->u.bm.last)
		return RA_SAME;
	s->u.bm.last = blk;
	if (!forward(s) || !pgu_readahead || !pgu_readahead_bitmapscan)
		return RA_NONE;
	if (node->tbm != s->u.bm.tbm)
	{
		MemoryContext old = MemoryContextSwitchTo(s->ps->state->es_query_cxt);

		bm_drop_iterator(s);
		s->u.bm.it = tbm_begin_iterate(node->tbm);
		s->u.bm.tbm = node->tbm;
		MemoryContextSwitchTo(old);
		newpass = true;
	}
	if (s->reader == NULL)
	{
		s->strategy = NULL;		/* bitmap heap scans use none */
		s->nblocks = ((HeapScanDesc) node->ss.ss_currentScanDesc)->rs_nblocks;
	}
	*pos = blk;
	return newpass ? RA_NEWPASS : RA_MOVED;
}

/* our iterator skips the blocks at or before the scan's (next) */
static void
bm_restart(RaScan *s, bool newpass)
{
}

static bool
bm_next(RaScan *s, BlockNumber *blkno, uint64 *pos, Buffer *vmbuf)
{
	BitmapHeapScanState *node = (BitmapHeapScanState *) s->ps;

	if (s->u.bm.it == NULL || s->u.bm.done)
		return false;
	for (;;)
	{
		TBMIterateResult *res = tbm_iterate(s->u.bm.it);

		if (res == NULL)
		{
			s->u.bm.done = true;
			return false;
		}
		if ((uint64) res->blockno <= s->cur)
			continue;
		/* the node will not read it: no column needed, all visible */
		if (PGU_BITMAP_CAN_SKIP_FETCH(node) && !res->recheck &&
			VM_ALL_VISIBLE(s->rel, res->blockno, vmbuf))
			continue;
		*blkno = res->blockno;
		*pos = res->blockno;
		return true;
	}
}

static void
bm_stop(RaScan *s)
{
	bm_drop_iterator(s);
	s->u.bm.last = InvalidBlockNumber;
}

const RaSource pgu_ra_bitmapscan = {
	"bitmap heap scan", bm_where, bm_next, bm_restart, bm_stop
};

/* ------------------------------------------------------------------------
 * Index scans and index-only scans (btree)
 * ------------------------------------------------------------------------
 */
static IndexScanDesc
ix_desc(RaScan *s)
{
	if (s->u.ix.index_only)
		return ((IndexOnlyScanState *) s->ps)->ioss_ScanDesc;
	return ((IndexScanState *) s->ps)->iss_ScanDesc;
}

static bool
ix_forward(RaScan *s)
{
	ScanDirection dir;

	if (s->u.ix.index_only)
		dir = ((IndexOnlyScan *) s->ps->plan)->indexorderdir;
	else
		dir = ((IndexScan *) s->ps->plan)->indexorderdir;
	/* the directions are -1, 0 and 1: forward if both agree */
	return (int) s->ps->state->es_direction * (int) dir > 0;
}

static RaWhere
ix_where(RaScan *s, uint64 *pos)
{
	IndexScanDesc scan = ix_desc(s);
	BTScanOpaque so;
	bool		newpass;

	if (scan == NULL || scan->opaque == NULL)
		return RA_NONE;
	so = (BTScanOpaque) scan->opaque;
	if (!BTScanPosIsValid(so->currPos))
	{
		if (s->u.ix.page == InvalidBlockNumber)
			return RA_SAME;
		s->u.ix.page = InvalidBlockNumber;
		return RA_NONE;
	}
	if (so->currPos.currPage == s->u.ix.page && so->currPos.itemIndex == s->u.ix.item)
		return RA_SAME;
	newpass = so->currPos.currPage != s->u.ix.page || so->currPos.itemIndex < s->u.ix.item;
	s->u.ix.page = so->currPos.currPage;
	s->u.ix.item = so->currPos.itemIndex;
	if (!ix_forward(s) || !pgu_readahead || !pgu_readahead_indexscan)
		return RA_NONE;
	if (s->reader == NULL)
	{
		s->strategy = NULL;		/* index scans use none */
		s->nblocks = RelationGetNumberOfBlocks(s->rel);
	}
	*pos = (uint64) so->currPos.itemIndex;
	return newpass ? RA_NEWPASS : RA_MOVED;
}

static void
ix_restart(RaScan *s, bool newpass)
{
	BTScanOpaque so = (BTScanOpaque) ix_desc(s)->opaque;

	if (!newpass && s->u.ix.gen_item >= s->u.ix.item)
		return;
	s->u.ix.gen_item = s->u.ix.item;
	/* the scan has this item's block already */
	s->u.ix.gen_last = ItemPointerGetBlockNumber(&so->currPos.items[s->u.ix.item].heapTid);
}

static bool
ix_next(RaScan *s, BlockNumber *blkno, uint64 *pos, Buffer *vmbuf)
{
	BTScanOpaque so = (BTScanOpaque) ix_desc(s)->opaque;

	while (s->u.ix.gen_item < so->currPos.lastItem)
	{
		BlockNumber blk;

		s->u.ix.gen_item++;
		blk = ItemPointerGetBlockNumber(&so->currPos.items[s->u.ix.gen_item].heapTid);
		if (blk == s->u.ix.gen_last)
			continue;
		s->u.ix.gen_last = blk;
		/* an index-only scan fetches from the heap only what is not all-visible */
		if (s->u.ix.index_only && VM_ALL_VISIBLE(s->rel, blk, vmbuf))
			continue;
		*blkno = blk;
		*pos = (uint64) s->u.ix.gen_item;
		return true;
	}
	return false;
}

static void
ix_stop(RaScan *s)
{
	s->u.ix.page = InvalidBlockNumber;
	s->u.ix.item = -1;
	s->u.ix.gen_item = INT_MAX;
}

const RaSource pgu_ra_indexscan = {
	"index scan", ix_where, ix_next, ix_restart, ix_stop
};
