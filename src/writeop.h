/*-------------------------------------------------------------------------
 *
 * writeop.h
 *	  The buffer-write ops (writeop.c), as the write-back object
 *	  (writeback.c) uses them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_URING_WRITEOP_H
#define PG_URING_WRITEOP_H

#include "io.h"

typedef enum WriteOutcome
{
	WRITE_DONE,					/* the page reached the file */
	WRITE_FAILED,				/* error, short write or cancelled */
	WRITE_UNDONE				/* never submitted */
} WriteOutcome;

extern void pgu_write_finish(int buf_id, WriteOutcome outcome);
extern void pgu_write_finish_pending_sync(PgUringSlot *slot);
extern char *pgu_segment_path(PgUringRelFile rfile, ForkNumber fork, BlockNumber segno);

#endif							/* PG_URING_WRITEOP_H */
