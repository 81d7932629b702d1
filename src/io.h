/*-------------------------------------------------------------------------
 *
 * io.h
 *	  The shared IO slot table and the op callback table.
 *
 * A slot describes one IO from staging to the moment its owner releases
 * it.  Slots live in shared memory because a completion may be reaped by
 * any process: the SQE's user_data encodes the slot index and generation,
 * never a backend-local pointer.
 *
 * Life cycle: FREE -> STAGED (owner filled it in) -> SUBMITTED (handed to
 * a ring) -> COMPLETED (a drainer stored the result and ran the op's
 * completion callback) -> FREE (the owner released it).  Only the owner
 * moves a slot out of FREE, STAGED or COMPLETED; any drainer moves it from
 * SUBMITTED to COMPLETED.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_URING_IO_H
#define PG_URING_IO_H

#include <sys/uio.h>

#include "pg_uring.h"
#include "storage/block.h"
#include "compat.h"

typedef enum PgUringSlotState
{
	PGU_SLOT_FREE = 0,
	PGU_SLOT_STAGED,
	PGU_SLOT_SUBMITTED,
	PGU_SLOT_COMPLETED
} PgUringSlotState;

typedef enum PgUringOp
{
	PGU_OP_NOP = 0,
	PGU_OP_FSYNC,
	PGU_OP_FDATASYNC,
	PGU_OP_READ,				/* read from an fd into shared memory */
	PGU_OP_FAIL,				/* read on an invalid fd: fails with EBADF */
	PGU_OP_BUFREAD,			/* read adjacent blocks into shared buffers */
	PGU_OP_BUFWRITE,		/* write one shared buffer from its bounce copy */
	PGU_OP_WALSYNC,			/* fsync of a WAL segment (wal.c) */
	PGU_OP_WRITEBACK_HINT,	/* sync_file_range(SYNC_FILE_RANGE_WRITE) of written blocks */
	PGU_OP_BUFWRITE_PAGE,	/* a further page of a combined buffer write: never submitted */
	PGU_NUM_OPS = 16			/* room for later op types */
} PgUringOp;

/* Flags of a staged IO, mapped to SQE flags by the engine. */
#define PGU_IO_LINK		0x01	/* IOSQE_IO_LINK: next IO runs only on success */
#define PGU_IO_DRAIN	0x02	/* IOSQE_IO_DRAIN: start after all prior complete */
#define PGU_IO_ASYNC	0x04	/* IOSQE_ASYNC: go straight to a kernel worker */

/* Who processed a completion. */
typedef enum PgUringReaper
{
	PGU_REAPED_NONE = 0,
	PGU_REAPED_ISSUER,
	PGU_REAPED_OTHER,
	PGU_REAPED_REAPER
} PgUringReaper;

typedef struct PgUringFileTarget
{
	int			fd;
	uint32		len;
	uint64		offset;
	char	   *buf;			/* shared memory address */
} PgUringFileTarget;

/* Most adjacent blocks one buffer read combines into one readv. */
#define PGU_MAX_COMBINE 16

/* test-only fault injection of a buffer read (pg_uring.test_fault) */
#define PGU_FAULT_NONE	0
#define PGU_FAULT_EIO	1
#define PGU_FAULT_SHORT 2

typedef struct PgUringBufTarget
{
	PgUringRelFile rfile;
	ForkNumber	fork;
	BlockNumber first_block;
	int			fd;				/* the segment file, opened by the owner */
	uint16		nblocks;
	uint8		fault;			/* PGU_FAULT_* chosen by the owner */
	bool		started;		/* its buffers are BM_IO_IN_PROGRESS (at submit) */
	bool		io_pinned;		/* started buffers hold a pin of the IO's own */
	bool		readahead;		/* a scan's read-ahead (counted as such) */
	BlockNumber fault_block;
	uint32		failed_mask;	/* blocks not made valid, set on completion */
	int32		buf_ids[PGU_MAX_COMBINE];
	struct iovec iov[PGU_MAX_COMBINE];
} PgUringBufTarget;

/* One dirty shared buffer written from the slot's bounce buffer. */
/*
 * A shared buffer written from the slot's bounce page.  Adjacent blocks of
 * one segment are combined into one pwritev: the first slot (the head) is
 * submitted, with an iovec over its own bounce page and those of the slots
 * of the further pages (PGU_OP_BUFWRITE_PAGE, staged, never submitted), and
 * its completion finishes every buffer of the run.
 */
typedef struct PgUringWriteTarget
{
	PgUringRelFile rfile;
	ForkNumber	fork;
	BlockNumber blkno;			/* the run's first block */
	int			fd;				/* the segment file, opened by the owner */
	int32		buf_id;
	bool		linked;			/* behind a WAL flush in a link chain */
	uint8		fault;			/* test: PGU_FAULT_EIO or _SHORT for this page's write */
	uint8		npages;			/* pages of the run (head only), >= 1 */
	uint8		written;		/* pages that reached the file (head, on completion) */
	bool		sync_pending;	/* head: written, its fsync is the owner's to do */
	int32		head;			/* further pages: the head's slot index */
	XLogRecPtr	lsn;			/* page LSN of the copy being written */
	uint64		wal_chain;		/* linked: the WAL chain it follows (its last fsync) */
	int32		page_slots[PGU_MAX_COMBINE];	/* head: slot of each page */
	int32		page_bufs[PGU_MAX_COMBINE]; /* head: buffer of each page */
	struct iovec iov[PGU_MAX_COMBINE];
} PgUringWriteTarget;

/* fsync of one WAL segment; the last of a chain says what it covers */
typedef struct PgUringWalTarget
{
	int			fd;
	bool		datasync;		/* fdatasync rather than fsync */
	bool		fault;			/* test: fsync fd -1, which fails with EBADF */
	uint16		nlinked;		/* page writes linked behind the chain (last only) */
	TimeLineID	tli;
	XLogSegNo	segno;
	XLogRecPtr	upto;			/* last of a chain: WAL durable up to here on success */
	uint64		chain;			/* user_data of the chain's last fsync */
} PgUringWalTarget;

typedef struct PgUringSlot
{
	pg_atomic_uint32 state;
	uint32		generation;
	int			next_free;
	int			owner_procno;
	int			owner_pid;
	int			ring;
	uint8		op;
	uint8		flags;
	uint8		reaped_by;
	bool		cancel_at_submit;	/* completes as -ECANCELED (ring.c) */
	int32		result;
	uint64		completion_seq;
	TimestampTz submit_time;
	TimestampTz complete_time;
	union
	{
		PgUringFileTarget file;
		PgUringBufTarget buf;
		PgUringWriteTarget write;
		PgUringWalTarget wal;
	}			target;
	ConditionVariable cv;
} PgUringSlot;

/* What a caller keeps of an IO: the slot and the generation it got. */
typedef struct PgUringHandle
{
	int			slot;
	uint32		generation;
} PgUringHandle;

/*
 * The op callback table.  The ring code calls prep to fill an SQE, sync_exec
 * in synchronous mode, complete when a result arrives (in whichever process
 * reaped it: no ERROR, no palloc, no lock the owner might hold), and
 * describe for pg_uring_ios.  complete may lower slot->result (a short
 * read seen as such, or an injected fault) before it is counted.
 */
typedef struct PgUringOpInfo
{
	const char *name;
	void		(*prep) (struct io_uring_sqe *sqe, PgUringSlot *slot);
	int32		(*sync_exec) (PgUringSlot *slot);
	/* result a linked successor needs; a different one breaks the chain */
	bool		(*result_ok) (PgUringSlot *slot, int32 result);
	void		(*complete) (PgUringSlot *slot);
	/* undo a staged IO that will never be submitted (ERROR, abort, exit) */
	void		(*abandon) (PgUringSlot *slot);
	void		(*describe) (PgUringSlot *slot, char *buf, size_t len);
	/* owner only, as the slot is freed (after completion or abandon) */
	void		(*release) (PgUringSlot *slot);

	/*
	 * Does a process outside pg_uring sleep on this submitted IO's result
	 * (a core backend in WaitIO on one of its buffers)?  Any process, no
	 * lock: a hint for the reaper, which then completes it at once instead
	 * of after pg_uring.reaper_delay.  NULL: never.
	 */
	bool		(*has_waiters) (PgUringSlot *slot);
} PgUringOpInfo;

extern void pgu_register_op(PgUringOp op, const PgUringOpInfo *info);
extern const PgUringOpInfo *pgu_op_info(int op);
extern const PgUringOpInfo *pgu_op_lookup(int op);
extern void pgu_fileops_register(void);
extern int	pgu_open_file(const char *path);
extern int	pgu_try_open_file(const char *path);
extern int	pgu_open_file_mode(const char *path, int flags);
extern void pgu_close_file(int fd);

/* shared memory */
extern Size pgu_io_shmem_size(void);
extern void pgu_io_shmem_init(void);
extern int	pgu_io_nslots(void);
extern int	pgu_io_nslots_of(bool with_bounce);
extern PgUringSlot *pgu_slot(int i);
extern char *pgu_slot_bounce(int i);

/* owner API */
extern void pgu_io_acquire(PgUringHandle *h, int n);
extern bool pgu_io_try_acquire(PgUringHandle *h, int n);
extern bool pgu_io_try_acquire_spare(PgUringHandle *h, int n);
extern bool pgu_io_handle_valid(PgUringHandle h);
extern void pgu_io_acquire_bounce(PgUringHandle *h, int n);
extern bool pgu_io_try_acquire_bounce(PgUringHandle *h, int n);
extern PgUringSlot *pgu_io_slot(PgUringHandle h);
extern void pgu_io_submit(PgUringHandle *h, int n);
extern void pgu_io_wait(PgUringHandle h);
extern void pgu_io_wait_many(PgUringHandle *h, int n);
extern bool pgu_io_is_completed(PgUringHandle h);
extern void pgu_io_restage(PgUringHandle *h);
extern void pgu_io_release(PgUringHandle *h, int n);
extern void pgu_io_cleanup_mine(void);

/* engine internals shared with ring.c */
extern void pgu_io_complete(PgUringSlot *slot, int32 result, PgUringRing *ring);
extern void pgu_io_after_drain(void);
extern void pgu_io_defer_after_drain(void (*fn) (void));
extern PgUringSlot *pgu_slot_from_user_data(uint64 user_data);
extern uint64 pgu_slot_user_data(PgUringSlot *slot);
extern bool pgu_io_slot_waited(PgUringSlot *slot);

#endif							/* PG_URING_IO_H */
