/*-------------------------------------------------------------------------
 *
 * fileops.c
 *	  The generic ops of the IO engine: no-op, fsync, fdatasync, a read from
 *	  a file into shared memory, and a deliberately failing op for tests.
 *
 * Owns: the PgUringOpInfo entries of these ops.
 *
 * Invariants kept here:
 *	- prep only fills the SQE from the slot; sync_exec performs the same IO
 *	  with a plain system call and returns the result the kernel would have
 *	  posted (negative errno on failure), so synchronous mode is faithful.
 *	- A read succeeds for a linked successor only if it read every byte, as
 *	  io_uring itself breaks a chain on a short read.
 *	- The fd in a slot is the caller's, opened with pgu_open_file(): it stays
 *	  open until the IO has completed (the owner waits before closing).
 *	  Completion needs no fd.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "storage/fd.h"

#include "io.h"

/*
 * Open a file for IO through the rings: plain open(), never a VFD (fd.c may
 * close a VFD's kernel fd at any moment), accounted with AcquireExternalFD().
 * The caller keeps it open until every IO on it has completed, then calls
 * pgu_close_file().
 */
int
pgu_open_file(const char *path)
{
	return pgu_open_file_mode(path, O_RDONLY);
}

/*
 * The same with other open flags (O_RDWR for writes).  O_CREAT is refused:
 * a file that is gone must stay gone, never be recreated by a late write.
 */
int
pgu_open_file_mode(const char *path, int flags)
{
	int			fd;

	Assert((flags & O_CREAT) == 0);
	flags &= ~O_CREAT;

	if (!AcquireExternalFD())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not open file \"%s\": too many open files", path),
				 errhint("Raise max_files_per_process or close other sessions.")));
	fd = open(path, flags | PG_BINARY | O_CLOEXEC);
	if (fd < 0)
	{
		int			save_errno = errno;

		ReleaseExternalFD();
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", path)));
	}
	return fd;
}

/*
 * pgu_open_file() for callers to whom a file is only a hint (read-ahead):
 * -1 instead of an ERROR, with nothing to release.
 */
int
pgu_try_open_file(const char *path)
{
	int			fd;

	if (!AcquireExternalFD())
		return -1;
	fd = open(path, O_RDONLY | PG_BINARY | O_CLOEXEC);
	if (fd < 0)
		ReleaseExternalFD();
	return fd;
}

void
pgu_close_file(int fd)
{
	close(fd);
	ReleaseExternalFD();
}

static bool
result_nonnegative(PgUringSlot *slot, int32 result)
{
	return result >= 0;
}

static bool
result_full_length(PgUringSlot *slot, int32 result)
{
	return result >= 0 && (uint32) result == slot->target.file.len;
}

static void
describe_file(PgUringSlot *slot, char *buf, size_t len)
{
	snprintf(buf, len, "fd %d offset " UINT64_FORMAT " length %u",
			 slot->target.file.fd, slot->target.file.offset,
			 slot->target.file.len);
}

static void
describe_fd(PgUringSlot *slot, char *buf, size_t len)
{
	snprintf(buf, len, "fd %d", slot->target.file.fd);
}

static void
describe_none(PgUringSlot *slot, char *buf, size_t len)
{
	buf[0] = '\0';
}

/* nop */
static void
nop_prep(struct io_uring_sqe *sqe, PgUringSlot *slot)
{
	io_uring_prep_nop(sqe);
}

static int32
nop_sync(PgUringSlot *slot)
{
	return 0;
}

/* fsync / fdatasync */
static void
fsync_prep(struct io_uring_sqe *sqe, PgUringSlot *slot)
{
	io_uring_prep_fsync(sqe, slot->target.file.fd,
						slot->op == PGU_OP_FDATASYNC ? IORING_FSYNC_DATASYNC : 0);
}

static int32
fsync_sync(PgUringSlot *slot)
{
	int			rc;

	if (slot->op == PGU_OP_FDATASYNC)
		rc = fdatasync(slot->target.file.fd);
	else
		rc = fsync(slot->target.file.fd);
	return rc < 0 ? -errno : 0;
}

/* read into shared memory */
static void
read_prep(struct io_uring_sqe *sqe, PgUringSlot *slot)
{
	io_uring_prep_read(sqe, slot->target.file.fd, slot->target.file.buf,
					   slot->target.file.len, slot->target.file.offset);
}

static int32
read_sync(PgUringSlot *slot)
{
	ssize_t		rc;

	rc = pread(slot->target.file.fd, slot->target.file.buf,
			   slot->target.file.len, (off_t) slot->target.file.offset);
	return rc < 0 ? -errno : (int32) rc;
}

/* fail: a read on fd -1, which the kernel rejects with EBADF */
static void
fail_prep(struct io_uring_sqe *sqe, PgUringSlot *slot)
{
	io_uring_prep_read(sqe, -1, NULL, 0, 0);
}

static int32
fail_sync(PgUringSlot *slot)
{
	return -EBADF;
}

static const PgUringOpInfo nop_info = {
	"nop", nop_prep, nop_sync, result_nonnegative, NULL, NULL, describe_none
};
static const PgUringOpInfo fsync_info = {
	"fsync", fsync_prep, fsync_sync, result_nonnegative, NULL, NULL, describe_fd
};
static const PgUringOpInfo fdatasync_info = {
	"fdatasync", fsync_prep, fsync_sync, result_nonnegative, NULL, NULL, describe_fd
};
static const PgUringOpInfo read_info = {
	"read", read_prep, read_sync, result_full_length, NULL, NULL, describe_file
};
static const PgUringOpInfo fail_info = {
	"fail", fail_prep, fail_sync, result_nonnegative, NULL, NULL, describe_none
};

void
pgu_fileops_register(void)
{
	pgu_register_op(PGU_OP_NOP, &nop_info);
	pgu_register_op(PGU_OP_FSYNC, &fsync_info);
	pgu_register_op(PGU_OP_FDATASYNC, &fdatasync_info);
	pgu_register_op(PGU_OP_READ, &read_info);
	pgu_register_op(PGU_OP_FAIL, &fail_info);
}
