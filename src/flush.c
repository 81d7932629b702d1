/*-------------------------------------------------------------------------
 *
 * flush.c
 *	  pg_uring_flush(rel regclass DEFAULT NULL, sync boolean DEFAULT false):
 *	  write back every dirty shared buffer of a relation (with its TOAST
 *	  table and TOAST index), or of the whole pool, through the rings.
 *
 * Owns: argument checking and the choice of path.  Temporary relations live
 * in local buffers and are refused; during recovery buffers are written
 * through core (FlushOneBuffer), which maintains minRecoveryPoint.
 *
 * Dirty buffers are written in file order, as a checkpoint writes them:
 * the pool is scanned in windows of up to 256k buffers, each sorted by
 * (tablespace, database, relation, fork, block), so that adjacent blocks
 * combine into one pwritev and the kernel sees sequential writes.
 *
 * Invariants kept here: no ERROR escapes while a write may still be in
 * flight (pgu_wb_finish / pgu_wb_abort); a named relation stays locked
 * (AccessShareLock) until then; cancel is checked between buffers.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xlog.h"
#include "catalog/pg_class.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "io.h"
#include "writeback.h"

PG_FUNCTION_INFO_V1(pg_uring_flush);

/* dirty buffers are sorted in windows of at most this many */
#define FLUSH_WINDOW (256 * 1024)

typedef struct FlushCandidate
{
	BufferTag	tag;
	int			buf_id;
} FlushCandidate;

static int
candidate_cmp(const void *a, const void *b)
{
	const BufferTag *x = &((const FlushCandidate *) a)->tag;
	const BufferTag *y = &((const FlushCandidate *) b)->tag;

	PgUringRelFile xf = pgu_tag_file(x);
	PgUringRelFile yf = pgu_tag_file(y);

	if (PGU_RF_SPC(xf) != PGU_RF_SPC(yf))
		return PGU_RF_SPC(xf) < PGU_RF_SPC(yf) ? -1 : 1;
	if (PGU_RF_DB(xf) != PGU_RF_DB(yf))
		return PGU_RF_DB(xf) < PGU_RF_DB(yf) ? -1 : 1;
	if (PGU_RF_REL(xf) != PGU_RF_REL(yf))
		return PGU_RF_REL(xf) < PGU_RF_REL(yf) ? -1 : 1;
	if (x->forkNum != y->forkNum)
		return x->forkNum < y->forkNum ? -1 : 1;
	if (x->blockNum != y->blockNum)
		return x->blockNum < y->blockNum ? -1 : 1;
	return 0;
}

/* the relfilenodes of rel, of its TOAST table and of that table's index */
static int
collect_nodes(Relation rel, PgUringRelFile *nodes, List **opened)
{
	int			n = 0;

	nodes[n++] = PGU_REL_FILE(rel);
	if (OidIsValid(rel->rd_rel->reltoastrelid))
	{
		Relation	toast = relation_open(rel->rd_rel->reltoastrelid, AccessShareLock);
		List	   *indexes;
		ListCell   *lc;

		nodes[n++] = PGU_REL_FILE(toast);
		*opened = lappend(*opened, toast);
		indexes = RelationGetIndexList(toast);
		foreach(lc, indexes)
		{
			Relation	idx;

			if (n >= 8)
				break;
			idx = relation_open(lfirst_oid(lc), AccessShareLock);
			nodes[n++] = PGU_REL_FILE(idx);
			*opened = lappend(*opened, idx);
		}
		list_free(indexes);
	}
	return n;
}

Datum
pg_uring_flush(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_ARGISNULL(0) ? InvalidOid : PG_GETARG_OID(0);
	bool		sync = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	Relation	rel = NULL;
	List	   *opened = NIL;
	PgUringRelFile nodes[8];
	int			nnodes = 0;
	PgUringRelFile *filter = NULL;
	PgUringWriteback *volatile wb = NULL;
	int64		written = 0;
	ListCell   *lc;
	int			i;

	pgu_require_loaded();

	if (!PG_ARGISNULL(0))
	{
		rel = try_relation_open(relid, AccessShareLock);
		if (rel == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("relation with OID %u does not exist", relid),
					 errhint("Pass NULL to flush the whole buffer pool.")));
		if (!RELKIND_HAS_STORAGE(rel->rd_rel->relkind))
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("relation \"%s\" has no storage", RelationGetRelationName(rel)),
					 (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE ||
					  rel->rd_rel->relkind == RELKIND_PARTITIONED_INDEX) ?
					 errhint("Flush its partitions instead.") : 0));
		if (RelationUsesLocalBuffers(rel))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot flush temporary relation \"%s\" through pg_uring",
							RelationGetRelationName(rel)),
					 errhint("Temporary relations live in local buffers, which are private to their session.")));
		nnodes = collect_nodes(rel, nodes, &opened);
		filter = nodes;
	}

	if (RecoveryInProgress())
	{
		if (sync)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("recovery is in progress"),
					 errhint("During recovery buffers are written through core; a restartpoint makes them durable.")));
		for (i = 0; i < NBuffers; i++)
		{
			CHECK_FOR_INTERRUPTS();
			written += pgu_wb_through_core(i, filter, nnodes);
		}
	}
	else
	{
		/*
		 * With sync, what was committed before the call is durable when it
		 * returns: its pages (written and fdatasynced) and its commit records,
		 * which lie beyond the pages' LSNs (with synchronous_commit = off they
		 * may not even be written yet).
		 */
		XLogRecPtr	committed = sync ? GetXLogInsertRecPtr() : InvalidXLogRecPtr;

		PG_TRY();
		{
			FlushCandidate *cands;
			int			window = Min(NBuffers, FLUSH_WINDOW);

			wb = pgu_wb_begin(false, sync, pgu_write_depth);
			cands = MemoryContextAllocHuge(CurrentMemoryContext,
										   sizeof(FlushCandidate) * window);
			i = 0;
			while (i < NBuffers)
			{
				int			n = 0;
				int			k;

				for (; i < NBuffers && n < window; i++)
				{
					CHECK_FOR_INTERRUPTS();
					if (pgu_wb_candidate(i, filter, nnodes, &cands[n].tag))
						cands[n++].buf_id = i;
				}
				/* in file order, as a checkpoint writes: adjacent blocks combine */
				qsort(cands, n, sizeof(FlushCandidate), candidate_cmp);
				for (k = 0; k < n; k++)
				{
					CHECK_FOR_INTERRUPTS();
					(void) pgu_wb_add_tagged(wb, cands[k].buf_id, &cands[k].tag);
				}
			}
			written = pgu_wb_finish(wb);
			pfree(cands);
#ifndef PGU_TEST_BREAK_WAL_RULE
			/* (the power-loss harness's negative control writes early and skips this) */
			if (sync)
				XLogFlush(committed);
#endif
		}
		PG_CATCH();
		{
			if (wb != NULL)
				pgu_wb_abort(wb);
			else
				pgu_io_cleanup_mine();
			PG_RE_THROW();
		}
		PG_END_TRY();
	}

	foreach(lc, opened)
		relation_close((Relation) lfirst(lc), AccessShareLock);
	if (rel != NULL)
		relation_close(rel, AccessShareLock);
	PG_RETURN_INT64(written);
}
