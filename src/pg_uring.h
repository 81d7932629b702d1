/*-------------------------------------------------------------------------
 *
 * pg_uring.h
 *	  Declarations shared by every pg_uring module.
 *
 * pg_uring gives PostgreSQL 15 a small, fixed set of io_uring instances
 * that live in shared memory.  The postmaster creates them before any
 * backend forks; every backend submits to them under a per-ring lock and
 * any backend may process any completion.
 *
 * Module map (one concern each):
 *	  pg_uring.c  _PG_init: GUCs, hook chaining, background worker registration,
 *				  every module's initialisation
 *	  ring.c	  the shared rings: creation, teardown, submit, drain, kernel wait
 *	  io.c		  the IO slot table (slots with and without a bounce page):
 *				  life cycle, ownership, the op table, waiting
 *	  fileops.c   generic ops: no-op, fsync/fdatasync, read into shared memory
 *	  reaper.c	  background worker that guarantees completions are processed
 *	  stats.c	  ring counters and the SQL functions over them
 *	  probe.c	  pg_uring_probe(): what io_uring can do on this host
 *	  sqlio.c	  SQL-callable file IO, batch and benchmark functions
 *	  bufop.c	  the buffer-read op (completion by any backend), the per-buffer
 *				  map, the pin budget, ending any pg_uring IO on a buffer
 *	  bufread.c   the reader: claims, runs and a FIFO of reads of one fork (for
 *				  prewarm, and in read-ahead mode for a scan core runs)
 *	  prewarm.c   pg_uring_prewarm and pg_uring_prewarm_blocks
 *	  wal.c		  WAL segment flushes through the rings; WAL durability record
 *	  writeop.c   the buffer-write ops and their completion by any backend
 *	  writeback.c the write-back object: copies, WAL order, files, submission
 *	  flush.c	  pg_uring_flush(): a relation's or the pool's dirty buffers
 *	  writer.c	  the pg_uring writer: cleans buffers ahead of the clock sweep
 *	  readahead.c read-ahead for ordinary queries: the executor hook, the wrapped
 *				  scans, their windows and distances
 *	  rasource.c  where a scan's next blocks come from, per node type
 *	  compat.h	  every difference between PostgreSQL 15, 16 and 17 pg_uring meets
 *
 * Copyright (c) 2026, pg_uring developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_URING_H
#define PG_URING_H

#include "postgres.h"

#include "access/xlogdefs.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include <liburing.h>

#define PGU_TRANCHE_NAME	"pg_uring"

/* GUCs (pg_uring.c) */
typedef enum PgUringIoMethod
{
	PGU_IO_METHOD_URING,
	PGU_IO_METHOD_SYNC
} PgUringIoMethod;
extern int	pgu_io_method;
extern int	pgu_nrings;
extern int	pgu_queue_depth;
extern int	pgu_max_ios;
extern int	pgu_bounce_buffers;
extern int	pgu_reaper_delay;
extern bool pgu_test_hold_reap;
extern int	pgu_prewarm_depth;
extern char *pgu_test_fault;
extern bool pgu_test_fault_at(const char *kind, uint32 *blk);
extern char *pgu_test_pause;
extern void pgu_test_pause_at(const char *point, int64 blk);
extern int	pgu_write_depth;
extern bool pgu_writer_enabled;
extern int	pgu_writer_delay;
extern int	pgu_writer_max_pages;
extern bool pgu_test_wal_fault;
extern int	pgu_test_write_delay;
extern bool pgu_readahead;
extern int	pgu_readahead_distance;
/* pg_uring.readahead_seqscan: which sequential scans read ahead */
typedef enum PgUringRaSeq
{
	PGU_RA_SEQ_OFF,				/* none (the default) */
	PGU_RA_SEQ_PARALLEL,		/* parallel ones only */
	PGU_RA_SEQ_ON
} PgUringRaSeq;
extern int	pgu_readahead_seqscan;
extern bool pgu_readahead_bitmapscan;
extern bool pgu_readahead_indexscan;

/*
 * Per-ring counters.  The order here is the order of the columns of
 * pg_uring_stats; names live in stats.c.
 */
typedef enum PgUringCounter
{
	PGU_C_SUBMITTED,			/* SQEs handed to the kernel (or run sync) */
	PGU_C_COMPLETED,			/* CQEs processed */
	PGU_C_REAPED_ISSUER,		/* ... by the backend that submitted the IO */
	PGU_C_REAPED_OTHER,			/* ... by another backend */
	PGU_C_REAPED_REAPER,		/* ... by the reaper background worker */
	PGU_C_LINKED,				/* SQEs submitted with IOSQE_IO_LINK */
	PGU_C_DRAINED,				/* SQEs submitted with IOSQE_IO_DRAIN */
	PGU_C_ERRORS,				/* completions with a negative result */
	PGU_C_CANCELLED,			/* completions with -ECANCELED */
	PGU_C_SUBMIT_CALLS,			/* io_uring_submit() calls */
	PGU_C_SUBMIT_LOCK_WAITS,	/* submission lock was busy */
	PGU_C_KERNEL_WAITS,			/* waits in the kernel for a CQE */
	PGU_C_FULL_WAITS,			/* submitter found the ring full */
	PGU_C_SLOT_WAITS,			/* a backend waited for a free IO slot */
	PGU_C_BUF_READS,			/* buffer read IOs (one readv each) */
	PGU_C_BUF_BLOCKS,			/* blocks those IOs read */
	PGU_C_BUF_FAILURES,			/* blocks left not valid: IO error, short read, bad page */
	PGU_C_BUF_SYNC_FILLS,		/* zero pages already pinned by others, filled synchronously */
	PGU_C_BUF_HELPED,			/* another backend's buffer IO waited for by draining */
	PGU_C_WAL_FLUSHES,			/* WAL segment fsyncs completed */
	PGU_C_BUF_WRITES,			/* shared buffers written (successfully) */
	PGU_C_BUF_WRITE_FAILURES,	/* buffer writes that failed, were short or cancelled */
	PGU_C_LINKED_WRITES,		/* buffer writes linked behind a WAL flush */
	PGU_C_DRAINED_WRITES,		/* data-file fdatasyncs behind an IOSQE_IO_DRAIN barrier */
	PGU_C_CANCELLED_CHAINS,		/* WAL flush chains that failed, cancelling their writes */
	PGU_C_WAL_WAITS,			/* write batches that waited for another's WAL flush */
	PGU_C_WRITES_DEFERRED,		/* buffers skipped: their WAL was not yet written */
	PGU_C_SYNC_REQUESTS,		/* segment fsyncs handed to the checkpointer */
	PGU_C_LOCAL_SYNCS,			/* ... or done by the completer: request queue full */
	PGU_C_WRITER_PAGES,			/* buffer writes queued by the pg_uring writer */
	/* the counters above are the columns of pg_uring_stats (1.0) */
	PGU_C_RA_READS,				/* read-ahead IOs completed (one readv each) */
	PGU_C_RA_BLOCKS,			/* blocks those IOs read */
	PGU_C_RA_FAILURES,			/* ... left not valid: core reads them again if reached */
	PGU_C_RA_WAITED,			/* ... a core backend was asleep on at completion */
	PGU_C_RA_USED,				/* blocks read ahead that the scan then reached */
	PGU_C_RA_WASTED,			/* ... that it never reached (LIMIT, end, rescan) */
	/* PGU_C_RA_READS .. PGU_C_RA_WASTED are also counted per database */
	PGU_C_RA_SYNC_FILLS,		/* as PGU_C_BUF_SYNC_FILLS, for read-ahead */
	PGU_NCOUNTERS
} PgUringCounter;

#define PGU_NCOUNTERS_STATS	(PGU_C_WRITER_PAGES + 1)

/*
 * One shared ring.  The struct io_uring is liburing's own, placed in shared
 * memory so that its SQ bookkeeping (sqe_head/sqe_tail) is common to every
 * process that submits.  It is only touched under submit_lock (SQ side) or
 * complete_lock (CQ side).
 */
typedef struct PgUringRing
{
	struct io_uring uring;
	int			index;
	bool		active;			/* false: synchronous fallback */
	unsigned	sq_entries;
	unsigned	cq_entries;
	LWLock	   *submit_lock;
	LWLock	   *complete_lock;
	pg_atomic_uint32 inflight;	/* submitted, not yet completed */
	pg_atomic_uint64 completion_seq;	/* order in which CQEs were reaped */
	pg_atomic_uint64 counters[PGU_NCOUNTERS];
} PgUringRing;

/* Shared control block (ring.c allocates it, everybody reads it). */
typedef struct PgUringShared
{
	int			nrings;
	int			queue_depth;
	pg_atomic_uint32 next_ring;	/* round-robin ring assignment */
	pg_atomic_uint64 wal_durable;	/* highest LSN known durable (wal.c) */
	pg_atomic_uint64 wal_flush_submitted;	/* highest LSN a submitted flush covers */
	pg_atomic_uint32 wal_flush_failed;	/* a WAL fsync failed: PANIC follows */
	ConditionVariable wal_cv;	/* broadcast when a WAL flush completes */
	bool		uring_mode;		/* rings were created */
	int			eventfd;		/* registered with every ring, -1 if none */
	bool		submit_all;		/* ... with IORING_SETUP_SUBMIT_ALL */
	int			setup_errno;	/* why not, if not */
	char		setup_error[256];
	PgUringRing *rings;			/* nrings entries */
} PgUringShared;

extern PgUringShared *pgu_shared;

/* pg_uring.c */
extern void pgu_register_bgworker(const char *name, const char *function,
								  int start);

/* ring.c */
extern Size pgu_ring_shmem_size(void);
extern void pgu_ring_shmem_init(void);
extern void pgu_require_loaded(void);
extern int	pgu_my_ring(void);
extern PgUringRing *pgu_ring(int i);

/* bufop.c */
extern Size pgu_bufread_shmem_size(void);
extern void pgu_bufread_shmem_init(void);
extern void pgu_bufread_register(void);
PGDLLEXPORT extern bool pg_uring_complete_buffer_io(int buffer);
extern void pgu_bufmap_set(int buf_id, int slot);
extern int	pgu_bufmap_get(int buf_id);
extern bool pgu_pins_try_reserve(void);
extern void pgu_pins_release(int n);
extern void pgu_pins_release_all(void);
extern void pgu_pins_wait(void);
extern void pgu_end_buffer_io(int buf_id, uint32 clear_bits, uint32 set_bits,
							  bool written);
extern bool pgu_buffer_io_waited(int buf_id);

/* writeop.c */
extern void pgu_writeback_register(void);

/* wal.c */
extern XLogRecPtr pgu_wal_durable(void);
extern XLogRecPtr pgu_wal_flush_written(void);
extern XLogRecPtr pgu_wal_safe_upto(void);
extern void pgu_wal_register(void);

/* writer.c */
PGDLLEXPORT extern void pgu_writer_main(Datum arg);

/* reaper.c */
extern bool pgu_am_reaper;
PGDLLEXPORT extern void pgu_reaper_main(Datum arg);

/* stats.c */
#define PGU_DB_COUNTER_FIRST	PGU_C_RA_READS
#define PGU_NDB_COUNTERS		(PGU_C_RA_WASTED - PGU_C_RA_READS + 1)
extern Size pgu_stats_shmem_size(void);
extern void pgu_stats_shmem_init(void);
extern void pgu_count_db(Oid dboid, PgUringCounter c, uint64 n);

static inline void
pgu_count(PgUringRing *ring, PgUringCounter c, uint64 n)
{
	pg_atomic_fetch_add_u64(&ring->counters[c], n);
}

/* a read-ahead counter: the ring's and the database's (PGU_DB_COUNTER_FIRST..) */
static inline void
pgu_count_ra(PgUringRing *ring, Oid dboid, PgUringCounter c, uint64 n)
{
	pgu_count(ring, c, n);
	pgu_count_db(dboid, c, n);
}

#endif							/* PG_URING_H */
