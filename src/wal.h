/*-------------------------------------------------------------------------
 *
 * wal.h
 *	  WAL segment fsyncs through the rings: chains that page writes can be
 *	  linked behind (wal.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_URING_WAL_H
#define PG_URING_WAL_H

#include "access/xlogdefs.h"

#include "io.h"

/* most segments one chain of WAL fsyncs covers */
#define PGU_WAL_MAX_CHAIN 32

extern int	pgu_wal_chain_length(XLogRecPtr upto, XLogSegNo *first);
extern void pgu_wal_stage(PgUringHandle *h, int n, XLogSegNo first,
						  XLogRecPtr upto, int nlinked);
extern void pgu_wal_check_failed(void);

#endif							/* PG_URING_WAL_H */
