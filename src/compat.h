/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Every difference between the PostgreSQL versions pg_uring builds
 *	  against, named once; the logic uses these names and never tests
 *	  PG_VERSION_NUM itself.
 *
 * Versions: 15 (tested), 16 and 17 (issue 11: in progress; 16 introduced
 * what is named here).
 *
 * Relation files: PostgreSQL 16 renamed RelFileNode (spcNode, dbNode,
 * relNode) to RelFileLocator (spcOid, dbOid, relNumber), Relation's
 * rd_node to rd_locator, SMgrRelation's smgr_rnode to smgr_rlocator, and
 * moved a BufferTag's file into fields of the tag itself (read with
 * BufTagGetRelFileLocator, set with InitBufferTag); a sync FileTag's
 * rnode became rlocator.
 *
 * Elsewhere: PostgreSQL 16 renamed a table's pending statistics counters
 * (t_counts.t_blocks_fetched became counts.blocks_fetched); 17 dropped
 * PGPROC's pgprocno (GetNumberFromPGProc), made CreateWaitEventSet take a
 * resource owner instead of a memory context, renamed sync_method and its
 * SYNC_METHOD_* values to wal_sync_method and WAL_SYNC_METHOD_*, and moved
 * a bitmap heap scan's "no tuple needed, skip all-visible pages" decision
 * from the node (can_skip_fetch) into the scan's flags (SO_NEED_TUPLES).
 *
 * Read streams: PostgreSQL 17 reads sequential scans through a read stream
 * of its own (heapam's), which reads ahead and combines reads; pg_uring
 * leaves them to it (PGU_CORE_STREAMS_SEQSCAN) and reads ahead only for
 * bitmap heap scans and index scans there.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_URING_COMPAT_H
#define PG_URING_COMPAT_H

#include "storage/buf_internals.h"
#include "storage/smgr.h"
#include "utils/rel.h"

#if PG_VERSION_NUM >= 160000

#include "storage/relfilelocator.h"

typedef RelFileLocator PgUringRelFile;

#define PGU_RF_SPC(rf)			((rf).spcOid)
#define PGU_RF_DB(rf)			((rf).dbOid)
#define PGU_RF_REL(rf)			((rf).relNumber)
#define PGU_RF_EQUAL(a, b)		RelFileLocatorEquals(a, b)
#define PGU_REL_FILE(rel)		((rel)->rd_locator)
#define PGU_SMGR_FILE(smgr)		((smgr)->smgr_rlocator)
#define PGU_FILETAG_FILE(ft)	((ft).rlocator)

static inline PgUringRelFile
pgu_tag_file(const BufferTag *tag)
{
	return BufTagGetRelFileLocator(tag);
}

static inline void
pgu_tag_init(BufferTag *tag, PgUringRelFile rf, ForkNumber fork, BlockNumber blkno)
{
	InitBufferTag(tag, &rf, fork, blkno);
}

#else							/* PostgreSQL 15 */

#include "storage/relfilenode.h"

typedef RelFileNode PgUringRelFile;

#define PGU_RF_SPC(rf)			((rf).spcNode)
#define PGU_RF_DB(rf)			((rf).dbNode)
#define PGU_RF_REL(rf)			((rf).relNode)
#define PGU_RF_EQUAL(a, b)		RelFileNodeEquals(a, b)
#define PGU_REL_FILE(rel)		((rel)->rd_node)
#define PGU_SMGR_FILE(smgr)		((smgr)->smgr_rnode)
#define PGU_FILETAG_FILE(ft)	((ft).rnode)

static inline PgUringRelFile
pgu_tag_file(const BufferTag *tag)
{
	return tag->rnode;
}

static inline void
pgu_tag_init(BufferTag *tag, PgUringRelFile rf, ForkNumber fork, BlockNumber blkno)
{
	INIT_BUFFERTAG(*tag, rf, fork, blkno);
}

#endif

#if PG_VERSION_NUM >= 160000
#define PGU_TABSTAT_BLOCKS_FETCHED(ts)	((ts)->counts.blocks_fetched)
#define PGU_TABSTAT_BLOCKS_HIT(ts)		((ts)->counts.blocks_hit)
#else
#define PGU_TABSTAT_BLOCKS_FETCHED(ts)	((ts)->t_counts.t_blocks_fetched)
#define PGU_TABSTAT_BLOCKS_HIT(ts)		((ts)->t_counts.t_blocks_hit)
#endif

/* PostgreSQL 15 and 17 are tested; 16 only compiles (README.md) */
#define PGU_VERSION_TESTED			(PG_VERSION_NUM < 160000 || \
									 (PG_VERSION_NUM >= 170000 && PG_VERSION_NUM < 180000))

#if PG_VERSION_NUM >= 170000

#define PGU_CORE_STREAMS_SEQSCAN	true
#define PGU_PROC_NUMBER(proc)		GetNumberFromPGProc(proc)
#define PGU_WAL_SYNC_METHOD			wal_sync_method
#define PGU_WAL_SYNC_OPEN			WAL_SYNC_METHOD_OPEN
#define PGU_WAL_SYNC_OPEN_DSYNC		WAL_SYNC_METHOD_OPEN_DSYNC
#define PGU_WAL_SYNC_FDATASYNC		WAL_SYNC_METHOD_FDATASYNC

/* a wait event set that lives as long as the process: no resource owner */
#define pgu_create_wait_event_set(nevents)	CreateWaitEventSet(NULL, (nevents))

/* the bitmap heap scan will not fetch an all-visible page it needs no tuple of */
#define PGU_BITMAP_CAN_SKIP_FETCH(node) \
	((node)->ss.ss_currentScanDesc != NULL && \
	 ((node)->ss.ss_currentScanDesc->rs_flags & SO_NEED_TUPLES) == 0)

#else							/* PostgreSQL 15 and 16 */

#define PGU_CORE_STREAMS_SEQSCAN	false
#define PGU_PROC_NUMBER(proc)		((proc)->pgprocno)
#define PGU_WAL_SYNC_METHOD			sync_method
#define PGU_WAL_SYNC_OPEN			SYNC_METHOD_OPEN
#define PGU_WAL_SYNC_OPEN_DSYNC		SYNC_METHOD_OPEN_DSYNC
#define PGU_WAL_SYNC_FDATASYNC		SYNC_METHOD_FDATASYNC

#define pgu_create_wait_event_set(nevents)	CreateWaitEventSet(TopMemoryContext, (nevents))

#define PGU_BITMAP_CAN_SKIP_FETCH(node)	((node)->can_skip_fetch)

#endif

#endif							/* PG_URING_COMPAT_H */
