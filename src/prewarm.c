/*-------------------------------------------------------------------------
 *
 * prewarm.c
 *	  SQL-facing prewarm: pg_uring_prewarm (a block range) and
 *	  pg_uring_prewarm_blocks (an arbitrary block list, in the given order,
 *	  the building block of an asynchronous autoprewarm).
 *
 * Owns: argument checking, privileges (SELECT on the relation), and the
 * choice between the asynchronous reader and a synchronous loop through
 * core (temporary relations live in local buffers; system catalogs are
 * read synchronously, because any catalog lookup while reads are in flight
 * could read an in-flight block through core).
 *
 * Invariants kept here: no row is returned and no ERROR escapes while a
 * read may still be in flight (pgu_reader_finish / pgu_reader_abort);
 * the relation stays locked (AccessShareLock) until then, so DROP and
 * TRUNCATE wait for us; cancel is checked between blocks.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/catalog.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "common/relpath.h"
#include "executor/instrument.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/smgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "bufread.h"
#include "io.h"

PG_FUNCTION_INFO_V1(pg_uring_prewarm);
PG_FUNCTION_INFO_V1(pg_uring_prewarm_blocks);

typedef struct BlockSource
{
	bool		is_list;
	BlockNumber first;
	BlockNumber last;
	int64	   *list;
	int			nlist;
} BlockSource;

static int64
source_count(BlockSource *src)
{
	return src->is_list ? src->nlist : (int64) src->last - src->first + 1;
}

static BlockNumber
source_block(BlockSource *src, int64 i)
{
	return src->is_list ? (BlockNumber) src->list[i] : src->first + (BlockNumber) i;
}

static Relation
open_for_prewarm(Oid relid, text *forkarg, ForkNumber *fork)
{
	Relation	rel;
	AclResult	aclresult;
	char	   *forkname;

	pgu_require_loaded();
	rel = relation_open(relid, AccessShareLock);
	aclresult = pg_class_aclcheck(relid, GetUserId(), ACL_SELECT);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, get_relkind_objtype(rel->rd_rel->relkind),
					   get_rel_name(relid));
	if (!RELKIND_HAS_STORAGE(rel->rd_rel->relkind))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("relation \"%s\" has no storage to prewarm",
						RelationGetRelationName(rel)),
				 errhint("Prewarm its partitions or indexes instead.")));

	forkname = text_to_cstring(forkarg);
	*fork = forkname_to_number(forkname);
	if (!smgrexists(RelationGetSmgr(rel), *fork))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("fork \"%s\" does not exist for relation \"%s\"",
						forkname, RelationGetRelationName(rel))));
	return rel;
}

/* temporary relations and system catalogs: through core, one block at a time */
static int64
prewarm_sync(Relation rel, ForkNumber fork, BlockSource *src)
{
	int64		n = source_count(src);
	int64		nread = 0;
	int64		i;

	for (i = 0; i < n; i++)
	{
		int64		hits = pgBufferUsage.shared_blks_hit + pgBufferUsage.local_blks_hit;
		Buffer		buf;

		CHECK_FOR_INTERRUPTS();
		buf = ReadBufferExtended(rel, fork, source_block(src, i), RBM_NORMAL, NULL);
		ReleaseBuffer(buf);
		if (pgBufferUsage.shared_blks_hit + pgBufferUsage.local_blks_hit == hits)
			nread++;
	}
	return nread;
}

static int64
prewarm_async(Relation rel, ForkNumber fork, BlockSource *src)
{
	PgUringReader *reader = pgu_reader_begin(rel, fork, pgu_prewarm_depth);
	int64		n = source_count(src);
	int64		nread = 0;
	int64		i;

	PG_TRY();
	{
		for (i = 0; i < n; i++)
		{
			CHECK_FOR_INTERRUPTS();
			pgu_reader_add(reader, source_block(src, i));
		}
		nread = pgu_reader_finish(reader);
	}
	PG_CATCH();
	{
		pgu_reader_abort(reader);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return nread;
}

static int64
prewarm(Relation rel, ForkNumber fork, BlockSource *src)
{
	if (source_count(src) == 0)
		return 0;
	if (RelationUsesLocalBuffers(rel) || IsCatalogRelation(rel))
		return prewarm_sync(rel, fork, src);
	return prewarm_async(rel, fork, src);
}

/*
 * pg_uring_prewarm(rel regclass, fork text DEFAULT 'main',
 *					first_block int8 DEFAULT NULL, last_block int8 DEFAULT NULL)
 */
Datum
pg_uring_prewarm(PG_FUNCTION_ARGS)
{
	Oid			relid;
	Relation	rel;
	ForkNumber	fork;
	int64		nblocks;
	int64		first;
	int64		last;
	BlockSource src = {0};
	int64		result;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("relation cannot be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("relation fork cannot be null")));
	relid = PG_GETARG_OID(0);
	rel = open_for_prewarm(relid, PG_GETARG_TEXT_PP(1), &fork);
	nblocks = RelationGetNumberOfBlocksInFork(rel, fork);

	first = PG_ARGISNULL(2) ? 0 : PG_GETARG_INT64(2);
	if (first < 0 || (nblocks > 0 && first >= nblocks) || (nblocks == 0 && first > 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("starting block number must be between 0 and " INT64_FORMAT,
						Max(nblocks - 1, 0))));
	last = PG_ARGISNULL(3) ? nblocks - 1 : PG_GETARG_INT64(3);
	if (nblocks > 0 && (last < first || last >= nblocks))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ending block number must be between " INT64_FORMAT " and " INT64_FORMAT,
						first, nblocks - 1)));

	if (nblocks == 0)
		result = 0;
	else
	{
		src.first = (BlockNumber) first;
		src.last = (BlockNumber) last;
		result = prewarm(rel, fork, &src);
	}
	relation_close(rel, AccessShareLock);
	PG_RETURN_INT64(result);
}

/*
 * pg_uring_prewarm_blocks(rel regclass, blocks int8[], fork text DEFAULT 'main')
 */
Datum
pg_uring_prewarm_blocks(PG_FUNCTION_ARGS)
{
	Oid			relid;
	Relation	rel;
	ForkNumber	fork;
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	int64		nblocks;
	BlockSource src = {0};
	int64		result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("relation, blocks and fork must not be null")));
	relid = PG_GETARG_OID(0);
	arr = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("blocks must be a one-dimensional array")));
	rel = open_for_prewarm(relid, PG_GETARG_TEXT_PP(2), &fork);
	nblocks = RelationGetNumberOfBlocksInFork(rel, fork);

	deconstruct_array(arr, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, &nulls, &n);
	src.is_list = true;
	src.nlist = n;
	src.list = palloc(sizeof(int64) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		int64		b;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("blocks must not contain nulls")));
		b = DatumGetInt64(elems[i]);
		if (b < 0 || b >= nblocks)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("block number " INT64_FORMAT " is out of range for relation \"%s\"",
							b, RelationGetRelationName(rel)),
					 errdetail("The fork has " INT64_FORMAT " blocks.", nblocks)));
		src.list[i] = b;
	}
	result = prewarm(rel, fork, &src);
	relation_close(rel, AccessShareLock);
	PG_RETURN_INT64(result);
}
