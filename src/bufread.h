/*-------------------------------------------------------------------------
 *
 * bufread.h
 *	  Reading blocks of a relation into shared buffers through the rings.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_URING_BUFREAD_H
#define PG_URING_BUFREAD_H

#include "storage/bufmgr.h"
#include "utils/rel.h"

typedef struct PgUringReader PgUringReader;

extern PgUringReader *pgu_reader_begin(Relation rel, ForkNumber fork, int depth);
extern void pgu_reader_add(PgUringReader *reader, BlockNumber blkno);
extern int64 pgu_reader_finish(PgUringReader *reader);
extern void pgu_reader_abort(PgUringReader *reader);

/* read-ahead for a scan core runs (readahead.c) */
extern PgUringReader *pgu_reader_begin_readahead(Relation rel,
												 BufferAccessStrategy strategy,
												 BlockNumber nblocks,
												 int depth, int maxpins);
extern int	pgu_reader_try_add(PgUringReader *reader, BlockNumber blkno);
extern void pgu_reader_submit(PgUringReader *reader);
extern void pgu_reader_reap(PgUringReader *reader);
extern bool pgu_reader_wait_block(PgUringReader *reader, BlockNumber blkno);
extern int	pgu_reader_pending(PgUringReader *reader);
extern void pgu_reader_end(PgUringReader *reader);

#endif							/* PG_URING_BUFREAD_H */
