/*-------------------------------------------------------------------------
 *
 * bufread.h
 *	  Reading blocks of a relation into shared buffers through the rings.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_URING_BUFREAD_H
#define PG_URING_BUFREAD_H

#include "utils/rel.h"

typedef struct PgUringReader PgUringReader;

extern PgUringReader *pgu_reader_begin(Relation rel, ForkNumber fork, int depth);
extern void pgu_reader_add(PgUringReader *reader, BlockNumber blkno);
extern int64 pgu_reader_finish(PgUringReader *reader);
extern void pgu_reader_abort(PgUringReader *reader);

#endif							/* PG_URING_BUFREAD_H */
