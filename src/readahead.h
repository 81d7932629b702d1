/*-------------------------------------------------------------------------
 *
 * readahead.h
 *	  Read-ahead for ordinary queries: the wrapped scan (readahead.c) and
 *	  the sources of its next blocks, one per node type (rasource.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_URING_READAHEAD_H
#define PG_URING_READAHEAD_H

#include "nodes/execnodes.h"
#include "nodes/tidbitmap.h"

#include "bufread.h"

typedef struct RaScan RaScan;

/* where a scan is, as its source sees it at a call (RaSource.where) */
typedef enum RaWhere
{
	RA_NONE,					/* not started, over, backward, or no read-ahead now */
	RA_SAME,					/* where it was at the last call */
	RA_MOVED,					/* further on, in the same pass */
	RA_NEWPASS					/* somewhere the window knows nothing of */
} RaWhere;

/*
 * Where the next blocks of one kind of scan come from.  Positions are the
 * scan's own order (a seq scan's blocks since it began, a bitmap's block
 * numbers, an index leaf's item numbers): the scan reaches them in
 * increasing order within a pass.
 */
typedef struct RaSource
{
	const char *name;
	/* where the scan is now (*pos set unless RA_NONE or RA_SAME) */
	RaWhere		(*where) (RaScan *s, uint64 *pos);
	/*
	 * The next block the scan will reach after everything generated so far;
	 * a visibility map page it pins in *vmbuf is the caller's to release.
	 */
	bool		(*next) (RaScan *s, BlockNumber *blkno, uint64 *pos, Buffer *vmbuf);
	/*
	 * Generate from the scan's position on: always for a new pass, else
	 * only if the scan has gone past everything generated.
	 */
	void		(*restart) (RaScan *s, bool newpass);
	/* the scan is over, or its executor is going: let go of what is held */
	void		(*stop) (RaScan *s);
} RaSource;

typedef struct RaEntry
{
	BlockNumber blkno;
	bool		ours;			/* read ahead by us (else it was cached) */
	uint64		pos;
} RaEntry;

typedef struct RaQuery RaQuery;

struct RaScan
{
	PlanState  *ps;
	const RaSource *src;
	ExecProcNodeMtd orig;		/* what ExecProcNodeReal was before us */
	/*
	 * A word of the scan's state that the source says tells whether the
	 * scan moved (a seq scan's current block), with its value when last
	 * looked at and the scan descriptor it belongs to: while it is
	 * unchanged, the wrapper skips the source altogether.  NULL: always ask.
	 */
	const uint32 *watch;
	uint32		watch_last;
	const void *watch_desc;
	ExprState  *qual;			/* the node's, evaluated by the wrapper */
	ProjectionInfo *proj;
	RaQuery    *query;
	Relation	rel;			/* the heap */
	BufferAccessStrategy strategy;	/* the scan's, once known */
	BlockNumber nblocks;		/* the heap's size when the reader began */
	PgUringReader *reader;		/* created at the first look-ahead */
	uint64		cur;			/* the scan's position at the last move */
	bool		in_pass;		/* cur and the window belong to the current pass */
	int			distance;		/* blocks to keep ahead, now */
	int			max_distance;
	/* the window: blocks ahead of cur, in the order the scan reaches them */
	RaEntry    *win;
	int			win_cap;
	int			win_head;
	int			win_count;
	bool		held;			/* a candidate that found no room last time */
	BlockNumber held_blkno;
	uint64		held_pos;
	/*
	 * Blocks the scan reached in a row that were cached when we looked;
	 * after RA_QUIET_AFTER of them the scan is quiet: no look-ahead (no
	 * buffer lookups, no drains) until this backend reads a block (core
	 * itself, or another scan's read-ahead), which
	 * pgBufferUsage.shared_blks_read, then beyond quiet_reads, tells.
	 */
	int			cached_run;
	bool		quiet;
	int64		quiet_reads;
	int64		used;			/* not yet added to the ring's counters */
	int64		wasted;
	struct RaScan *next;
	/* the source's own state */
	union
	{
		struct
		{
			BlockNumber last;	/* rs_cblock at the last call */
			BlockNumber gen_next;	/* next block to generate */
			BlockNumber gen_left;	/* blocks the scan reaches from gen_next on */
			uint64		gen_pos;
		}			seq;
		struct
		{
			TIDBitmap  *tbm;	/* the node's bitmap our iterator walks */
			TBMIterator *it;
			BlockNumber last;
			bool		done;
		}			bm;
		struct
		{
			BlockNumber page;	/* the leaf whose items we look at */
			int			item;	/* its item the scan was at */
			int			gen_item;	/* last item generated */
			BlockNumber gen_last;	/* block of that item */
			bool		index_only;
		}			ix;
	}			u;
};

/* readahead.c */
extern void pgu_readahead_init(void);

/* rasource.c */
extern const RaSource pgu_ra_seqscan;
extern const RaSource pgu_ra_bitmapscan;
extern const RaSource pgu_ra_indexscan;
extern bool pgu_ra_relation_ok(Relation rel);

/* pg_uring.readahead_seqscan: does a (parallel or serial) seq scan read ahead? */
static inline bool
pgu_ra_seqscan_on(bool parallel)
{
	return pgu_readahead_seqscan == PGU_RA_SEQ_ON ||
		(pgu_readahead_seqscan == PGU_RA_SEQ_PARALLEL && parallel);
}
extern bool pgu_ra_index_ok(Relation index);

#endif							/* PG_URING_READAHEAD_H */
