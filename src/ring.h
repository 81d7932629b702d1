/*-------------------------------------------------------------------------
 *
 * ring.h
 *	  Submission to and completion from the shared rings.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_URING_RING_H
#define PG_URING_RING_H

#include "io.h"

extern void pgu_ring_submit(PgUringRing *ring, PgUringSlot **slots, int n);
extern int	pgu_ring_progress(PgUringRing *ring, bool wait);
extern int	pgu_ring_try_drain(PgUringRing *ring);
extern unsigned pgu_ring_cq_ready(PgUringRing *ring);
extern unsigned pgu_ring_cq_tail(PgUringRing *ring);
extern unsigned pgu_ring_cq_head(PgUringRing *ring);
extern bool pgu_ring_cq_waited(PgUringRing *ring);
extern const char *pgu_ring_mode_name(PgUringRing *ring);

#endif							/* PG_URING_RING_H */
