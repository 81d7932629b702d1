/*-------------------------------------------------------------------------
 *
 * readahead.h
 *	  Read-ahead for ordinary queries (readahead.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_URING_READAHEAD_H
#define PG_URING_READAHEAD_H

extern void pgu_readahead_init(void);

#endif							/* PG_URING_READAHEAD_H */
