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
 * Node types: SeqScan (serial and parallel), BitmapHeapScan (not parallel),
 * IndexScan and IndexOnlyScan (btree) on heap tables in shared buffers;
 * where their next blocks come from is rasource.c's.  Temp tables,
 * catalogs, other table AMs and backward scans are left to core.
 *
 * Invariants kept here:
 *	- Plans, costs and EXPLAIN are unchanged: only ExecProcNodeReal is
 *	  swapped (ExecProcNodeInstr calls through it), and whatever was there
 *	  before (core's function or another extension's wrapper) is called.
 *	- Nothing is staged when core runs: each look-ahead ends with
 *	  pgu_reader_submit(), so the scan never meets a block we claimed but
 *	  did not start, and holds no private pin of ours on any block.
 *	- Never past what the scan can reach (rasource.c), nor past the end of
 *	  the table as the scan saw it.
 *	- A read that fails raises nothing here: the block is left not valid
 *	  and the query that reaches it gets core's own error from core's read.
 *	- EXPLAIN (BUFFERS) counts as core does: a block read ahead counts as a
 *	  read when claimed (bufread.c) and the scan's own hit on it is taken
 *	  back when the scan reaches it; the table's pgstat counters likewise.
 *	- A scan's reads are waited for and its files closed when the scan
 *	  ends, and at the latest when the executor's memory goes (ExecutorEnd,
 *	  abort), through a callback on the query's memory context.
 *	- A quiet scan (RA_QUIET_AFTER cached blocks in a row, nothing of ours
 *	  in flight or in the window) does not look ahead until this backend's
 *	  shared_blks_read moves (core read a block itself, or another scan's
 *	  read-ahead claimed one), so not everything is cached; it then starts
 *	  again from where the scan is.
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

#include "compat.h"
#include "ring.h"
#include "bufread.h"
#include "readahead.h"

/* a scan's first look-ahead: a LIMIT must not pay for a long one */
#define RA_START_DISTANCE	4
/* BAS_BULKREAD's ring in PostgreSQL 15-17: 256 kB */
#define RA_BULKREAD_RING	(256 * 1024 / BLCKSZ)
/* within a ring strategy, leave this much of the ring to the scan itself */
#define RA_RING_SLACK		8
/* used and wasted blocks are added to the ring's counters this many at a time */
#define RA_FLUSH_COUNTS		64
/* read-ahead reads one scan may have in flight */
#define RA_MAX_DEPTH		64
/* cached blocks in a row after which a scan stops looking ahead (quiet) */
#define RA_QUIET_AFTER		64

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
static pg_noinline RaScan *
scan_of_slow(PlanState *ps)
{
	int			i;

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
		pgu_count_ra(ring, MyDatabaseId, PGU_C_RA_USED, s->used);
	if (s->wasted)
		pgu_count_ra(ring, MyDatabaseId, PGU_C_RA_WASTED, s->wasted);
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
	if (++s->used >= RA_FLUSH_COUNTS)
		flush_counts(s);
	if (pgBufferUsage.shared_blks_hit > 0)
		pgBufferUsage.shared_blks_hit--;
	if (pgstat_should_count_relation(s->rel))
	{
		PGU_TABSTAT_BLOCKS_FETCHED(s->rel->pgstat_info)--;
		PGU_TABSTAT_BLOCKS_HIT(s->rel->pgstat_info)--;
	}
}

/* Forget the window: what we read ahead and the scan did not reach is wasted. */
static void
window_clear(RaScan *s)
{
	while (s->win_count > 0)
	{
		if (s->win[s->win_head].ours && ++s->wasted >= RA_FLUSH_COUNTS)
			flush_counts(s);
		s->win_head = (s->win_head + 1) % s->win_cap;
		s->win_count--;
	}
	s->win_head = 0;
	s->held = false;
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
	s->in_pass = false;
	s->distance = RA_START_DISTANCE;
	s->cached_run = 0;
	s->quiet = false;
	s->src->stop(s);
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
 * The scan is at position pos now, further on in the same pass: it has
 * reached every block of the window up to there (core may cross several
 * in one call, and a run of empty pages may take it past the whole
 * window).  The distance doubles for each block the scan needed and we had
 * read, and shrinks by one for each it found cached anyway.
 */
static void
window_reach(RaScan *s, uint64 pos)
{
	while (s->win_count > 0 && s->win[s->win_head].pos <= pos)
	{
		RaEntry    *e = &s->win[s->win_head];

		if (e->ours)
		{
			count_used(s);
			s->distance = Min(s->max_distance, s->distance * 2);
			s->cached_run = 0;
		}
		else
		{
			if (s->distance > 1)
				s->distance--;
			s->cached_run++;
		}
		s->win_head = (s->win_head + 1) % s->win_cap;
		s->win_count--;
	}
}

/* some block of the window was read ahead by us */
static bool
window_has_ours(RaScan *s)
{
	int			i;

	for (i = 0; i < s->win_count; i++)
		if (s->win[(s->win_head + i) % s->win_cap].ours)
			return true;
	return false;
}

static bool
window_push(RaScan *s, BlockNumber blkno, bool ours, uint64 pos)
{
	RaEntry    *e;

	if (s->win_count >= s->win_cap)
		return false;
	e = &s->win[(s->win_head + s->win_count) % s->win_cap];
	e->blkno = blkno;
	e->ours = ours;
	e->pos = pos;
	s->win_count++;
	return true;
}

/*
 * A scan with a ring strategy (a seq scan of a table larger than a quarter
 * of shared_buffers: BAS_BULKREAD) claims its read-ahead buffers through
 * that ring, and keeps its distance within the ring so that it evicts no
 * more than core would.  The source tells the strategy and the table's
 * size once the scan has begun.
 */
static PgUringReader *
scan_reader(RaScan *s)
{
	if (s->reader == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(s->query->cxt);

		if (s->strategy != NULL)
			s->max_distance = Min(s->max_distance, RA_BULKREAD_RING - RA_RING_SLACK);
		s->reader = pgu_reader_begin_readahead(s->rel, s->strategy, s->nblocks,
											   RA_MAX_DEPTH, s->max_distance);
		MemoryContextSwitchTo(old);
	}
	return s->reader;
}

/*
 * Keep the window topped up: in batches (once it is down to half the
 * distance), so that adjacent blocks go in one readv; a block that found
 * no room (no slot, pin or file right now) is held and tried first next
 * time.  Everything added is submitted before core runs again.  Then the
 * block the scan reaches next, if it is ours and still in flight, is
 * waited for here, draining the ring, rather than by core in WaitIO.
 */
static void
look_ahead(RaScan *s)
{
	PgUringReader *r = scan_reader(s);

	pgu_reader_reap(r);
	if (s->win_count <= s->distance / 2)
	{
		Buffer		vmbuf = InvalidBuffer;

		while (s->win_count < s->distance)
		{
			BlockNumber blkno;
			uint64		pos;
			int			got;

			if (s->held)
			{
				blkno = s->held_blkno;
				pos = s->held_pos;
				s->held = false;
			}
			else if (!s->src->next(s, &blkno, &pos, &vmbuf))
				break;
			if (blkno >= s->nblocks)
				continue;		/* beyond the table as the scan saw it */
			got = pgu_reader_try_add(r, blkno);
			if (got < 0)
			{
				s->held = true;
				s->held_blkno = blkno;
				s->held_pos = pos;
				break;
			}
			(void) window_push(s, blkno, got > 0, pos);
		}
		if (BufferIsValid(vmbuf))
			ReleaseBuffer(vmbuf);
		pgu_reader_submit(r);
	}
	if (s->win_count > 0 && s->win[s->win_head].ours && !pgu_test_hold_reap)
		(void) pgu_reader_wait_block(r, s->win[s->win_head].blkno);
}

/* At each call into the node: where is the scan, and what follows. */
static pg_noinline void
scan_check(RaScan *s)
{
	uint64		pos = 0;

	switch (s->src->where(s, &pos))
	{
		case RA_SAME:
			return;
		case RA_NONE:
			window_clear(s);
			s->in_pass = false;
			return;
		case RA_MOVED:
			if (s->in_pass)
			{
				s->cur = pos;
				window_reach(s, pos);
				if (s->win_count == 0 && !s->held)
					s->src->restart(s, false);
				break;
			}
			/* FALLTHROUGH */
		case RA_NEWPASS:
			window_clear(s);
			s->cur = pos;
			s->in_pass = true;
			s->src->restart(s, true);
			break;
	}
	if (s->quiet)
	{
		if (pgBufferUsage.shared_blks_read == s->quiet_reads)
			return;				/* all the scan reached was cached */
		/* this backend read a block (core, or another scan's read-ahead) */
		s->quiet = false;
		s->cached_run = 0;
		window_clear(s);
		s->src->restart(s, true);
	}
	look_ahead(s);
	/*
	 * Everything the scan reached lately was cached, and nothing of ours is
	 * in flight: stop looking ahead.  A warm scan then costs what the
	 * wrapper costs, not a buffer lookup and a drain per block.
	 */
	if (s->cached_run >= RA_QUIET_AFTER && s->reader != NULL &&
		pgu_reader_pending(s->reader) == 0 && !window_has_ours(s))
	{
		window_clear(s);
		s->quiet = true;
		s->quiet_reads = pgBufferUsage.shared_blks_read;
	}
}

/*
 * A wrapped scan node.  Its qual and projection were moved here (wrap()),
 * so that core's node returns every tuple it fetches and this loop sees
 * each one: a qual that rejects most rows would otherwise keep core inside
 * one call for the whole scan, with no chance to read ahead.  The loop is
 * ExecScan's own: the same qual, the same projection, the same "Rows
 * Removed by Filter"; core's node still does the fetch, the EvalPlanQual
 * recheck and the interrupt checks.
 */
/* the scan is over (or rescanned to nothing): what a scan node returns then */
static pg_noinline TupleTableSlot *
scan_end(RaScan *s, TupleTableSlot *slot)
{
	scan_stop(s);
	if (s->proj)
		return ExecClearTuple(s->proj->pi_state.resultslot);
	return slot;
}

static TupleTableSlot *
ra_exec_scan(PlanState *ps)
{
	RaScan	   *s = likely(last_hit != NULL && last_hit->ps == ps) ? last_hit : scan_of_slow(ps);
	ExprContext *econtext = ps->ps_ExprContext;

	for (;;)
	{
		TupleTableSlot *slot;

		/*
		 * The common case, kept cheap: the scan is on the block it was on at
		 * the last call (a seq scan's source watches its current block).
		 */
		if (s->watch == NULL || *s->watch != s->watch_last ||
			((ScanState *) ps)->ss_currentScanDesc != s->watch_desc)
			scan_check(s);
		slot = s->orig(ps);
		if (unlikely(TupIsNull(slot)))
			return scan_end(s, slot);
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

/*
 * Wrap a scan node: ExecProcNodeReal (what ExecProcNodeFirst or, under
 * EXPLAIN ANALYZE, ExecProcNodeInstr calls) becomes ours, and core's node
 * hands its qual and projection to us (ra_exec_scan).
 */
static void
wrap(PlanState *ps, RaQuery *q, const RaSource *src)
{
	RaScan	   *s = MemoryContextAllocZero(q->cxt, sizeof(RaScan));

	s->ps = ps;
	s->src = src;
	s->orig = ps->ExecProcNodeReal;
	s->query = q;
	s->rel = ((ScanState *) ps)->ss_currentRelation;
	s->distance = RA_START_DISTANCE;
	s->max_distance = pgu_readahead_distance;
	s->win_cap = s->max_distance;
	s->win = MemoryContextAlloc(q->cxt, sizeof(RaEntry) * s->win_cap);
	src->stop(s);				/* the source's state: not started */
	s->next = q->scans;
	q->scans = s;
	active_add(s);

	s->qual = ps->qual;
	s->proj = ps->ps_ProjInfo;
	ps->qual = NULL;
	ps->ps_ProjInfo = NULL;
	ps->ExecProcNodeReal = ra_exec_scan;
}

typedef struct WrapContext
{
	EState	   *estate;
	RaQuery    *query;
} WrapContext;

static const RaSource *
source_for(PlanState *ps, bool *index_only)
{
	*index_only = false;
	if (!pgu_ra_relation_ok(((ScanState *) ps)->ss_currentRelation))
		return NULL;
	switch (nodeTag(ps))
	{
		case T_SeqScanState:
			/* where core streams seq scans itself (17), they are its own */
			if (PGU_CORE_STREAMS_SEQSCAN)
				return NULL;
			return pgu_ra_seqscan_on(ps->plan->parallel_aware) ? &pgu_ra_seqscan : NULL;
		case T_BitmapHeapScanState:
			return pgu_readahead_bitmapscan ? &pgu_ra_bitmapscan : NULL;
		case T_IndexScanState:
			if (!pgu_readahead_indexscan ||
				!pgu_ra_index_ok(((IndexScanState *) ps)->iss_RelationDesc) ||
				((IndexScanState *) ps)->iss_NumOrderByKeys > 0)
				return NULL;
			return &pgu_ra_indexscan;
		case T_IndexOnlyScanState:
			if (!pgu_readahead_indexscan ||
				!pgu_ra_index_ok(((IndexOnlyScanState *) ps)->ioss_RelationDesc))
				return NULL;
			*index_only = true;
			return &pgu_ra_indexscan;
		default:
			return NULL;
	}
}

static bool
wrap_walker(PlanState *ps, void *arg)
{
	WrapContext *ctx = (WrapContext *) arg;

	if (ps == NULL)
		return false;
	switch (nodeTag(ps))
	{
		case T_SeqScanState:
		case T_BitmapHeapScanState:
		case T_IndexScanState:
		case T_IndexOnlyScanState:
			{
				bool		index_only;
				const RaSource *src = source_for(ps, &index_only);

				if (src != NULL)
				{
					RaQuery    *q = query_of(ctx->estate, &ctx->query);

					wrap(ps, q, src);
					if (index_only)
						q->scans->u.ix.index_only = true;
				}
				break;
			}
		default:
			break;
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
