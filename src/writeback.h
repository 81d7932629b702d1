/*-------------------------------------------------------------------------
 *
 * writeback.h
 *	  Asynchronous writes of dirty shared buffers through the rings, in WAL
 *	  order (writeback.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_URING_WRITEBACK_H
#define PG_URING_WRITEBACK_H

#include "storage/buf_internals.h"
#include "compat.h"

typedef struct PgUringWriteback PgUringWriteback;

/*
 * nowait: skip every buffer that is busy (content lock taken, IO in
 * progress) or whose WAL is not written yet, instead of coming back to it
 * (the writer).  sync: end with fdatasync of every segment written.
 */
extern PgUringWriteback *pgu_wb_begin(bool nowait, bool sync, int depth);
extern bool pgu_wb_candidate(int buf_id, const PgUringRelFile *filter, int nfilter,
							 BufferTag *tag);
extern bool pgu_wb_add_tagged(PgUringWriteback *wb, int buf_id, BufferTag *tag);
extern bool pgu_wb_add(PgUringWriteback *wb, int buf_id,
					   const PgUringRelFile *filter, int nfilter);
extern int64 pgu_wb_finish(PgUringWriteback *wb);
extern void pgu_wb_abort(PgUringWriteback *wb);
extern int64 pgu_wb_through_core(int buf_id, const PgUringRelFile *filter, int nfilter);

#endif							/* PG_URING_WRITEBACK_H */
