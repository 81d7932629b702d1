/*-------------------------------------------------------------------------
 *
 * readahead.c
 *	  Read-ahead for ordinary queries: an ExecutorStart hook wraps the scan
 *	  nodes of a plan, and each wrapped scan keeps a window of the blocks it
 *	  will reach next in flight through the rings (design.md section 7).
 *
 * Owns: the executor hook, the wrapped nodes of the running queries (the
 * RaScan of each, found from the PlanState core passes to the wrapper),
 * each scan's window (the blocks ahead of where the scan is, in the order
 * the scan will reach them, and which of them are ours to read), its
 * distance, and the accounting of what was used and wasted.  The reads are
 * those of a PgUringReader in read-ahead mode (bufread.c): IO-owned pins,
 * claims through the scan's strategy, never waiting for room.
 *
 * Node types: SeqScan on heap tables in shared buffers (serial, parallel:
 * only the blocks of the worker's current chunk).  Temp tables, catalogs,
 * other table AMs and backward scans are left to core.
 *
 * Invariants kept here:
 *	- Plans, costs and EXPLAIN are unchanged: only ExecProcNodeReal is
 *	  swapped (ExecProcNodeInstr calls through it), and whatever was there
 *	  before (core's function or another extension's wrapper) is called.
 *	- Nothing is staged when core runs: each look-ahead ends with
 *	  pgu_reader_submit(), so the scan never meets a block we claimed but
 *	  did not start, and holds no private pin of ours on any block.
 *	- Never past what the scan can reach: the end of the table (or of the
 *	  block range a synchronized scan started at), the worker's chunk.
 *	- A read that fails raises nothing here: the block is left not valid
 *	  and the query that reaches it gets core's own error from core's read.
 *	- EXPLAIN (BUFFERS) counts as core does: a block read ahead counts as a
 *	  read when claimed (bufread.c) and the scan's own hit on it is taken
 *	  back when the scan reaches it; the table's pgstat counters likewise.
 *	- A scan's reads are waited for and its files closed when the scan
 *	  ends, and at the latest when the executor's memory goes (ExecutorEnd,
 *	  abort), through a callback on the query's memory context.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/relscan.h"
#include "access/tableam.h"
#include "catalog/catalog.h"
#include "executor/executor.h"
#include "executor/instrument.h"
#include "nodes/execnodes.h"
#include "nodes/nodeFuncs.h"
#include "pgstat.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "ring.h"
#include "bufread.h"
#include "readahead.h"

/* a scan's first look-ahead: a LIMIT must not pay for a long one */
#define RA_START_DISTANCE	4
/* BAS_BULKREAD's ring in PostgreSQL 15-17: 256 kB */
#define RA_BULKREAD_RING	(256 * 1024 / BLCKSZ)
/* within a ring strategy, leave this much of the ring to the scan itself */
#define RA_RING_SLACK		8
/* read-ahead reads one scan may have in flight */
#define RA_MAX_DEPTH		64

typedef struct RaEntry
{
	BlockNumber blkno;
	bool		ours;			/* read ahead by us (else it was cached) */
} RaEntry;

typedef struct RaQuery RaQuery;

typedef struct RaScan
{
	PlanState  *ps;
	ExecProcNodeMtd orig;		/* what ExecProcNodeReal was before us */
	ExprState  *qual;			/* the node's, evaluated by us (seq scan) */
	ProjectionInfo *proj;
	RaQuery    *query;
	Relation	rel;
	PgUringReader *reader;		/* created at the first look-ahead */
	BlockNumber last_block;		/* the scan's block at the last call */
	int			distance;		/* blocks to keep ahead, now */
	int			max_distance;
	/* the window: blocks after last_block, in the order the scan reaches them */
	RaEntry    *win;
	int			win_cap;
	int			win_head;
	int			win_count;
	int64		used;			/* not yet added to the ring's counters */
	int64		wasted;
	struct RaScan *next;
} RaScan;

struct RaQuery
{
	RaScan	   *scans;
	MemoryContext cxt;
	MemoryContextCallback cb;
};

static ExecutorStart_hook_type prev_ExecutorStart = NULL;

/* every wrapped scan of this backend's running queries */
static RaScan **active = NULL;
static int	nactive = 0;
static int	maxactive = 0;
static RaScan *last_hit = NULL;

/* ------------------------------------------------------------------------
 * The wrapped scans of this backend
 * ------------------------------------------------------------------------
 */
static void
active_add(RaScan *s)
{
	if (nactive == maxactive)
	{
		maxactive = Max(16, maxactive * 2);
		active = active == NULL ?
			MemoryContextAlloc(TopMemoryContext, sizeof(RaScan *) * maxactive) :
			repalloc(active, sizeof(RaScan *) * maxactive);
	}
	active[nactive++] = s;
}

static void
active_remove(RaScan *s)
{
	int			i;

	if (last_hit == s)
		last_hit = NULL;
	for (i = nactive - 1; i >= 0; i--)
	{
		if (active[i] == s)
		{
			active[i] = active[--nactive];
			return;
		}
	}
}

/* The RaScan of a node we wrapped: core calls the wrapper with its PlanState. */
static inline RaScan *
scan_of(PlanState *ps)
{
	int			i;

	if (likely(last_hit != NULL && last_hit->ps == ps))
		return last_hit;
	for (i = nactive - 1; i >= 0; i--)
	{
		if (active[i]->ps == ps)
		{
			last_hit = active[i];
			return last_hit;
		}
	}
	elog(ERROR, "pg_uring: read-ahead state of a plan node is missing");
	return NULL;				/* keep compiler quiet */
}

/* ------------------------------------------------------------------------
 * Accounting
 * ------------------------------------------------------------------------
 */
static void
flush_counts(RaScan *s)
{
	PgUringRing *ring;

	if (s->used == 0 && s->wasted == 0)
		return;
	ring = pgu_ring(pgu_my_ring());
	if (s->used)
		pgu_count(ring, PGU_C_RA_USED, s->used);
	if (s->wasted)
		pgu_count(ring, PGU_C_RA_WASTED, s->wasted);
	s->used = 0;
	s->wasted = 0;
}

/*
 * The scan reached a block we read ahead: core counted its access as a
 * hit, on top of the read counted when we claimed it.  Take the hit back,
 * so that EXPLAIN (BUFFERS) and the table's statistics say what core's own
 * read would have said.
 */
static void
count_used(RaScan *s)
{
	s->used++;
	if (pgBufferUsage.shared_blks_hit > 0)
		pgBufferUsage.shared_blks_hit--;
	if (pgstat_should_count_relation(s->rel))
	{
		s->rel->pgstat_info->t_counts.t_blocks_fetched--;
		s->rel->pgstat_info->t_counts.t_blocks_hit--;
	}
}

/* Forget the window: what we read ahead and the scan did not reach is wasted. */
static void
window_clear(RaScan *s)
{
	while (s->win_count > 0)
	{
		if (s->win[s->win_head].ours)
			s->wasted++;
		s->win_head = (s->win_head + 1) % s->win_cap;
		s->win_count--;
	}
	s->win_head = 0;
}

/*
 * The scan stopped (end of the scan, the executor is going away): wait for
 * our reads in flight, give back their slots and close the files.  The
 * reader stays, empty, for a rescan.
 */
static void
scan_stop(RaScan *s)
{
	window_clear(s);
	s->last_block = InvalidBlockNumber;
	s->distance = RA_START_DISTANCE;
	if (s->reader != NULL)
		pgu_reader_end(s->reader);
	flush_counts(s);
}

/*
 * The executor's memory is being freed: ExecutorEnd, or an abort (then
 * before the abort's IO cleanup, which undoes anything an ERROR left
 * staged).
 */
static void
query_gone(void *arg)
{
	RaQuery    *q = (RaQuery *) arg;
	RaScan	   *s;

	for (s = q->scans; s != NULL; s = s->next)
	{
		scan_stop(s);
		active_remove(s);
	}
	q->scans = NULL;
}

/* ------------------------------------------------------------------------
 * The window
 * ------------------------------------------------------------------------
 */

/*
 * The scan is at cur now, going forward.  Every block of the window up to
 * cur has been reached (heapam may cross several in one call, and a run of
 * empty pages longer than the window takes it past the whole window); the
 * scan never goes back while going forward, except through a rescan, which
 * the caller sees first (the scan's block becomes invalid).  The distance
 * doubles for each block the scan needed and we had read, and shrinks by
 * one for each it found cached anyway.
 */
static void
window_reach(RaScan *s, BlockNumber cur)
{
	int			i;
	int			upto = s->win_count - 1;

	for (i = 0; i < s->win_count; i++)
	{
		if (s->win[(s->win_head + i) % s->win_cap].blkno == cur)
		{
			upto = i;
			break;
		}
	}
	for (i = 0; i <= upto; i++)
	{
		RaEntry    *e = &s->win[s->win_head];

		if (e->ours)
		{
			count_used(s);
			s->distance = Min(s->max_distance, s->distance * 2);
		}
		else if (s->distance > 1)
			s->distance--;
		s->win_head = (s->win_head + 1) % s->win_cap;
		s->win_count--;
	}
}

static bool
window_push(RaScan *s, BlockNumber blkno, bool ours)
{
	RaEntry    *e;

	if (s->win_count >= s->win_cap)
		return false;
	e = &s->win[(s->win_head + s->win_count) % s->win_cap];
	e->blkno = blkno;
	e->ours = ours;
	s->win_count++;
	return true;
}

static BlockNumber
window_last(RaScan *s)
{
	return s->win[(s->win_head + s->win_count - 1) % s->win_cap].blkno;
}

/* ------------------------------------------------------------------------
 * Sequential scans
 * ------------------------------------------------------------------------
 */

/*
 * How many blocks the scan will still read after cur, in order cur+1,
 * cur+2, ... wrapping at the end of the table: for a serial scan up to the
 * block it started at (a synchronized scan starts anywhere) or the end of
 * its block limit; for a parallel one only the rest of this worker's chunk
 * (the next chunk may go to another process).
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
		n = Min((uint64) pw->phsw_chunk_remaining,
				pb->phs_nblocks - 1 - pw->phsw_nallocated);
		return n;
	}
	if (hs->rs_nblocks == 0 || cur >= hs->rs_nblocks)
		return 0;
	n = (hs->rs_startblock + hs->rs_nblocks - cur - 1) % hs->rs_nblocks;
	if (hs->rs_numblocks != InvalidBlockNumber)
		n = Min(n, hs->rs_numblocks > 0 ? hs->rs_numblocks - 1 : 0);
	return n;
}

/*
 * A scan with a ring strategy (a seq scan of a table larger than a quarter
 * of shared_buffers: BAS_BULKREAD) claims its read-ahead buffers through
 * that ring, and keeps its distance within the ring so that it evicts no
 * more than core would.  Known only once the scan has begun.
 */
static PgUringReader *
scan_reader(RaScan *s, HeapScanDesc hs)
{
	if (s->reader == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(s->query->cxt);

		if (hs->rs_strategy != NULL)
			s->max_distance = Min(s->max_distance, RA_BULKREAD_RING - RA_RING_SLACK);

		s->reader = pgu_reader_begin_readahead(s->rel, hs->rs_strategy,
											   hs->rs_nblocks, RA_MAX_DEPTH,
											   s->max_distance);
		MemoryContextSwitchTo(old);
	}
	return s->reader;
}

static void
seq_look_ahead(RaScan *s, HeapScanDesc hs)
{
	BlockNumber cur = hs->rs_cblock;
	BlockNumber left;
	BlockNumber next;
	PgUringReader *r;

	window_reach(s, cur);
	s->last_block = cur;
	left = seq_remaining(hs, cur);
	if (left <= (BlockNumber) s->win_count)
	{
		/* the window already holds everything the scan can still reach */
		if (s->reader != NULL && s->win_count == 0 && pgu_reader_pending(s->reader) > 0)
			pgu_reader_reap(s->reader);
		return;
	}
	left -= s->win_count;
	r = scan_reader(s, hs);
	pgu_reader_reap(r);

	/* top up in batches, so that adjacent blocks go in one readv */
	if (s->win_count <= s->distance / 2)
	{
		next = s->win_count > 0 ? window_last(s) : cur;
		while (s->win_count < s->distance && left > 0)
		{
			int			got;

			next = next + 1 >= hs->rs_nblocks ? 0 : next + 1;
			got = pgu_reader_try_add(r, next);
			if (got < 0)
				break;			/* no room now: try again at the next block */
			(void) window_push(s, next, got > 0);
			left--;
		}
		pgu_reader_submit(r);
	}

	/*
	 * The very next block: wait for it here rather than in core's WaitIO
	 * (unless a test leaves completions to others on purpose).
	 */
	if (s->win_count > 0 && s->win[s->win_head].ours && !pgu_test_hold_reap)
		(void) pgu_reader_wait_block(r, s->win[s->win_head].blkno);
}

static inline void
seq_check(RaScan *s, PlanState *ps)
{
	TableScanDesc sd = ((ScanState *) ps)->ss_currentScanDesc;
	HeapScanDesc hs = (HeapScanDesc) sd;

	if (sd == NULL || hs->rs_cblock == s->last_block)
		return;
	if (hs->rs_cblock == InvalidBlockNumber ||
		!ScanDirectionIsForward(ps->state->es_direction) ||
		!pgu_readahead || !pgu_readahead_seqscan)
	{
		/* rescanned, or no read-ahead now: forget the window */
		window_clear(s);
		s->last_block = hs->rs_cblock;
	}
	else
		seq_look_ahead(s, hs);
}

/*
 * The seq scan node, wrapped.  Its qual and projection were moved here
 * (wrap_seqscan), so that core's node returns every tuple of the table and
 * this loop sees each one: a qual that rejects most rows would otherwise
 * keep heapam inside one call for the whole scan, with no chance to read
 * ahead.  The loop is ExecScan's own: the same qual, the same projection,
 * the same "Rows Removed by Filter"; core's node still does the fetch, the
 * EvalPlanQual recheck and the interrupt checks.
 */
static TupleTableSlot *
ra_exec_seqscan(PlanState *ps)
{
	RaScan	   *s = scan_of(ps);
	ExprContext *econtext = ps->ps_ExprContext;

	for (;;)
	{
		TupleTableSlot *slot;

		seq_check(s, ps);
		slot = s->orig(ps);
		if (TupIsNull(slot))
		{
			scan_stop(s);
			if (s->proj)
				return ExecClearTuple(s->proj->pi_state.resultslot);
			return slot;
		}
		if (s->qual == NULL && s->proj == NULL)
			return slot;
		econtext->ecxt_scantuple = slot;
		if (s->qual == NULL || ExecQual(s->qual, econtext))
			return s->proj ? ExecProject(s->proj) : slot;
		InstrCountFiltered1(ps, 1);
		ResetExprContext(econtext);
	}
}

/* ------------------------------------------------------------------------
 * Wrapping the plan
 * ------------------------------------------------------------------------
 */

/* a heap table whose blocks live in shared buffers, not a catalog */
static bool
relation_ok(Relation rel)
{
	if (rel == NULL || rel->rd_tableam != GetHeapamTableAmRoutine())
		return false;
	if (RelationUsesLocalBuffers(rel) || IsCatalogRelation(rel))
		return false;
	return rel->rd_rel->relkind == RELKIND_RELATION ||
		rel->rd_rel->relkind == RELKIND_MATVIEW ||
		rel->rd_rel->relkind == RELKIND_TOASTVALUE;
}

static RaQuery *
query_of(EState *estate, RaQuery **qp)
{
	if (*qp == NULL)
	{
		RaQuery    *q = MemoryContextAllocZero(estate->es_query_cxt, sizeof(RaQuery));

		q->cxt = estate->es_query_cxt;
		q->cb.func = query_gone;
		q->cb.arg = q;
		MemoryContextRegisterResetCallback(estate->es_query_cxt, &q->cb);
		*qp = q;
	}
	return *qp;
}

static RaScan *
wrap(PlanState *ps, RaQuery *q, ExecProcNodeMtd fn)
{
	RaScan	   *s = MemoryContextAllocZero(q->cxt, sizeof(RaScan));

	s->ps = ps;
	s->orig = ps->ExecProcNodeReal;
	s->query = q;
	s->rel = ((ScanState *) ps)->ss_currentRelation;
	s->last_block = InvalidBlockNumber;
	s->distance = RA_START_DISTANCE;
	s->max_distance = pgu_readahead_distance;
	s->win_cap = s->max_distance;
	s->win = MemoryContextAlloc(q->cxt, sizeof(RaEntry) * s->win_cap);
	s->next = q->scans;
	q->scans = s;
	active_add(s);
	ps->ExecProcNodeReal = fn;
	return s;
}

typedef struct WrapContext
{
	EState	   *estate;
	RaQuery    *query;
} WrapContext;

static bool
wrap_walker(PlanState *ps, void *arg)
{
	WrapContext *ctx = (WrapContext *) arg;

	if (ps == NULL)
		return false;
	if (IsA(ps, SeqScanState) && pgu_readahead_seqscan &&
		relation_ok(((ScanState *) ps)->ss_currentRelation))
	{
		RaScan	   *s = wrap(ps, query_of(ctx->estate, &ctx->query), ra_exec_seqscan);

		/* core's node returns every tuple; the wrapper filters and projects */
		s->qual = ps->qual;
		s->proj = ps->ps_ProjInfo;
		ps->qual = NULL;
		ps->ps_ProjInfo = NULL;
	}
	return planstate_tree_walker(ps, wrap_walker, arg);
}

static void
ra_executor_start(QueryDesc *queryDesc, int eflags)
{
	WrapContext ctx;

	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);

	if (!pgu_readahead || (eflags & EXEC_FLAG_EXPLAIN_ONLY) ||
		pgu_shared == NULL || queryDesc->planstate == NULL)
		return;
	ctx.estate = queryDesc->estate;
	ctx.query = NULL;
	(void) wrap_walker(queryDesc->planstate, &ctx);
}

void
pgu_readahead_init(void)
{
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = ra_executor_start;
}
