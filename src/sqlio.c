/*-------------------------------------------------------------------------
 *
 * sqlio.c
 *	  SQL-callable IO through the shared rings: pg_uring_read_file,
 *	  pg_uring_fsync, pg_uring_batch (link chains and drain barriers, for
 *	  diagnostics and tests) and pg_uring_bench (latency and throughput).
 *
 * Owns: the files these functions open.  Each is opened with plain open()
 * and accounted with AcquireExternalFD(), never a VFD (fd.c may close a
 * VFD's kernel fd at any moment), and is closed only after every IO on it
 * has completed, on success and on ERROR alike.
 *
 * Invariants kept here: no function returns, or lets an ERROR escape,
 * while one of its IOs may still be in flight; absolute paths outside the
 * data directory need pg_read_server_files, as pg_read_binary_file does.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "io.h"

PG_FUNCTION_INFO_V1(pg_uring_read_file);
PG_FUNCTION_INFO_V1(pg_uring_fsync);
PG_FUNCTION_INFO_V1(pg_uring_batch);
PG_FUNCTION_INFO_V1(pg_uring_bench);

#define PGU_MAX_READ_FILE	(1024 * 1024)
#define PGU_MAX_FILES		64

/* files opened by the current call, closed once their IOs are done */
typedef struct OpenFiles
{
	int			n;
	int			fds[PGU_MAX_FILES];
} OpenFiles;

static char *
check_path(text *arg)
{
	char	   *path = text_to_cstring(arg);

	canonicalize_path(path);
	if (is_absolute_path(path))
	{
		if (!is_member_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES) &&
			(!path_is_prefix_of_path(DataDir, path) ||
			 path_contains_parent_reference(path)))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("absolute path not allowed"),
					 errhint("Only roles with privileges of pg_read_server_files may access files outside the data directory.")));
	}
	else if (!path_is_relative_and_below_cwd(path))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("path must be in or below the data directory")));
	return path;
}

static int
open_file(OpenFiles *files, const char *path)
{
	int			fd;

	if (files->n >= PGU_MAX_FILES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many files in one pg_uring call"),
				 errdetail("At most %d files may be used at once.", PGU_MAX_FILES)));
	fd = pgu_open_file(path);
	files->fds[files->n++] = fd;
	return fd;
}

static void
close_files(OpenFiles *files)
{
	while (files->n > 0)
		pgu_close_file(files->fds[--files->n]);
}

/*
 * On ERROR: wait for every IO this backend has in flight (cleanup drains),
 * then close the files they used.  Called from PG_CATCH.
 */
static void
abandon_call(OpenFiles *files)
{
	pgu_io_cleanup_mine();
	close_files(files);
}

static void
report_io_error(const char *what, const char *path, int32 res)
{
	errno = -res;
	ereport(ERROR,
			(errcode_for_file_access(),
			 errmsg("could not %s file \"%s\" through pg_uring: %m", what, path)));
}

/* ------------------------------------------------------------------------
 * pg_uring_read_file(path text, file_offset int8, length int4) RETURNS bytea
 * ------------------------------------------------------------------------
 */
Datum
pg_uring_read_file(PG_FUNCTION_ARGS)
{
	char	   *path;
	int64		offset = PG_GETARG_INT64(1);
	int32		length = PG_GETARG_INT32(2);
	bytea	   *result;
	OpenFiles	files = {0};
	int			group = 32;
	int64		got = 0;

	pgu_require_loaded();
	path = check_path(PG_GETARG_TEXT_PP(0));
	if (offset < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("requested file offset cannot be negative")));
	if (length < 0 || length > PGU_MAX_READ_FILE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("requested length must be between 0 and %d", PGU_MAX_READ_FILE)));
	/* a quarter of the bounce slots at most, so writes are never starved of them */
	group = Max(1, Min(group, pgu_io_nslots_of(true) / 4));

	result = palloc(VARHDRSZ + length);
	PG_TRY();
	{
		int			fd = open_file(&files, path);
		bool		eof = false;
		PgUringHandle *h = palloc(sizeof(PgUringHandle) * group);

		while (got < length && !eof)
		{
			int			n = 0;
			int			i;

			CHECK_FOR_INTERRUPTS();
			n = (int) Min((int64) group, (length - got + BLCKSZ - 1) / BLCKSZ);
			pgu_io_acquire_bounce(h, n);
			for (i = 0; i < n; i++)
			{
				PgUringSlot *slot = pgu_io_slot(h[i]);

				slot->op = PGU_OP_READ;
				slot->target.file.fd = fd;
				slot->target.file.offset = offset + got + (int64) i * BLCKSZ;
				slot->target.file.len = (uint32) Min((int64) BLCKSZ, length - got - (int64) i * BLCKSZ);
				slot->target.file.buf = pgu_slot_bounce(h[i].slot);
			}
			pgu_io_submit(h, n);
			pgu_io_wait_many(h, n);
			for (i = 0; i < n; i++)
			{
				PgUringSlot *slot = pgu_io_slot(h[i]);

				if (eof)
					continue;
				if (slot->result < 0)
					report_io_error("read", path, slot->result);
				memcpy(VARDATA(result) + got, slot->target.file.buf, slot->result);
				got += slot->result;
				if ((uint32) slot->result < slot->target.file.len)
					eof = true;
			}
			pgu_io_release(h, n);
		}
		close_files(&files);
	}
	PG_CATCH();
	{
		abandon_call(&files);
		PG_RE_THROW();
	}
	PG_END_TRY();

	SET_VARSIZE(result, VARHDRSZ + got);
	PG_RETURN_BYTEA_P(result);
}

/* ------------------------------------------------------------------------
 * pg_uring_fsync(path text, data_only bool) RETURNS void
 * ------------------------------------------------------------------------
 */
Datum
pg_uring_fsync(PG_FUNCTION_ARGS)
{
	char	   *path;
	bool		data_only = PG_GETARG_BOOL(1);
	OpenFiles	files = {0};

	pgu_require_loaded();
	path = check_path(PG_GETARG_TEXT_PP(0));

	PG_TRY();
	{
		PgUringHandle h;
		PgUringSlot *slot;
		int32		res;

		pgu_io_acquire(&h, 1);
		slot = pgu_io_slot(h);
		slot->op = data_only ? PGU_OP_FDATASYNC : PGU_OP_FSYNC;
		slot->target.file.fd = open_file(&files, path);
		pgu_io_submit(&h, 1);
		pgu_io_wait(h);
		res = slot->result;
		pgu_io_release(&h, 1);
		if (res < 0)
			report_io_error("fsync", path, res);
		close_files(&files);
	}
	PG_CATCH();
	{
		abandon_call(&files);
		PG_RE_THROW();
	}
	PG_END_TRY();
	PG_RETURN_VOID();
}

/* ------------------------------------------------------------------------
 * pg_uring_batch(ops text[]): one batch, submitted under one lock
 * ------------------------------------------------------------------------
 */
typedef struct BatchOp
{
	PgUringOp	op;
	uint8		flags;
	char	   *path;
	int64		offset;
	int32		len;
	char	   *spec;
} BatchOp;

static void
bad_spec(const char *spec, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid pg_uring op \"%s\": %s", spec, why),
			 errhint("Write each op as \"name[+link][+drain][+async] [path [offset [length]]]\" where name is nop, fail, fsync, fdatasync or read.")));
}

static void
parse_op(char *spec, BatchOp *op)
{
	char	   *copy = pstrdup(spec);
	char	   *save = NULL;
	char	   *word;
	char	   *name;
	char	   *flag;
	char	   *arg;

	memset(op, 0, sizeof(*op));
	op->spec = spec;
	op->len = BLCKSZ;
	word = strtok_r(copy, " \t", &save);
	if (word == NULL)
		bad_spec(spec, "empty");

	name = strtok(word, "+");
	if (strcmp(name, "nop") == 0)
		op->op = PGU_OP_NOP;
	else if (strcmp(name, "fail") == 0)
		op->op = PGU_OP_FAIL;
	else if (strcmp(name, "fsync") == 0)
		op->op = PGU_OP_FSYNC;
	else if (strcmp(name, "fdatasync") == 0)
		op->op = PGU_OP_FDATASYNC;
	else if (strcmp(name, "read") == 0)
		op->op = PGU_OP_READ;
	else
		bad_spec(spec, "unknown op");
	while ((flag = strtok(NULL, "+")) != NULL)
	{
		if (strcmp(flag, "link") == 0)
			op->flags |= PGU_IO_LINK;
		else if (strcmp(flag, "drain") == 0)
			op->flags |= PGU_IO_DRAIN;
		else if (strcmp(flag, "async") == 0)
			op->flags |= PGU_IO_ASYNC;
		else
			bad_spec(spec, "unknown flag");
	}

	arg = strtok_r(NULL, " \t", &save);
	if (op->op == PGU_OP_NOP || op->op == PGU_OP_FAIL)
	{
		if (arg != NULL)
			bad_spec(spec, "this op takes no arguments");
		return;
	}
	if (arg == NULL)
		bad_spec(spec, "a path is required");
	op->path = check_path(cstring_to_text(arg));
	if (op->op != PGU_OP_READ)
	{
		if (strtok_r(NULL, " \t", &save) != NULL)
			bad_spec(spec, "fsync takes only a path");
		return;
	}
	if ((arg = strtok_r(NULL, " \t", &save)) != NULL)
	{
		char	   *end;

		errno = 0;
		op->offset = strtoll(arg, &end, 10);
		if (errno != 0 || *end != '\0' || op->offset < 0)
			bad_spec(spec, "offset must be a non-negative integer");
		if ((arg = strtok_r(NULL, " \t", &save)) != NULL)
		{
			long		len;

			errno = 0;
			len = strtol(arg, &end, 10);
			if (errno != 0 || *end != '\0' || len < 0 || len > BLCKSZ)
				bad_spec(spec, psprintf("length must be between 0 and %d", BLCKSZ));
			op->len = (int32) len;
		}
	}
	if (strtok_r(NULL, " \t", &save) != NULL)
		bad_spec(spec, "too many arguments");
}

static const char *
reaped_by_name(uint8 r)
{
	switch (r)
	{
		case PGU_REAPED_ISSUER:
			return "issuer";
		case PGU_REAPED_OTHER:
			return "other";
		case PGU_REAPED_REAPER:
			return "reaper";
	}
	return "none";
}

#define BATCH_NCOLS 7

Datum
pg_uring_batch(PG_FUNCTION_ARGS)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *elemnulls;
	int			n;
	int			i;
	BatchOp    *ops;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	OpenFiles	files = {0};
	PgUringHandle *h;
	int32	   *results;
	uint64	   *seqs;
	uint8	   *reaped;

	pgu_require_loaded();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("ops must not be null")));
	arr = PG_GETARG_ARRAYTYPE_P(0);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("ops must be a one-dimensional array")));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &elemnulls, &n);
	InitMaterializedSRF(fcinfo, 0);
	if (n == 0)
		return (Datum) 0;

	ops = palloc(sizeof(BatchOp) * n);
	for (i = 0; i < n; i++)
	{
		if (elemnulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("ops must not contain nulls")));
		parse_op(TextDatumGetCString(elems[i]), &ops[i]);
	}

	h = palloc(sizeof(PgUringHandle) * n);
	results = palloc(sizeof(int32) * n);
	seqs = palloc(sizeof(uint64) * n);
	reaped = palloc(sizeof(uint8) * n);

	PG_TRY();
	{
		int		   *fds = palloc(sizeof(int) * n);

		/* open everything first: no ERROR may come between acquire and submit */
		for (i = 0; i < n; i++)
			fds[i] = ops[i].path ? open_file(&files, ops[i].path) : -1;

		/* a batch with a read takes slots with bounce pages, all of them */
		for (i = 0; i < n && ops[i].op != PGU_OP_READ; i++)
			;
		if (i < n)
			pgu_io_acquire_bounce(h, n);
		else
			pgu_io_acquire(h, n);
		for (i = 0; i < n; i++)
		{
			PgUringSlot *slot = pgu_io_slot(h[i]);

			slot->op = ops[i].op;
			slot->flags = ops[i].flags;
			slot->target.file.fd = fds[i];
			slot->target.file.offset = ops[i].offset;
			slot->target.file.len = ops[i].len;
			slot->target.file.buf = ops[i].op == PGU_OP_READ ? pgu_slot_bounce(h[i].slot) : NULL;
		}
		pgu_io_submit(h, n);
		pgu_io_wait_many(h, n);
		for (i = 0; i < n; i++)
		{
			PgUringSlot *slot = pgu_io_slot(h[i]);

			results[i] = slot->result;
			seqs[i] = slot->completion_seq;
			reaped[i] = slot->reaped_by;
		}
		pgu_io_release(h, n);
		close_files(&files);
	}
	PG_CATCH();
	{
		abandon_call(&files);
		PG_RE_THROW();
	}
	PG_END_TRY();

	for (i = 0; i < n; i++)
	{
		Datum		values[BATCH_NCOLS];
		bool		nulls[BATCH_NCOLS];
		char		flags[32];
		int			order = 1;
		int			j;

		memset(nulls, 0, sizeof(nulls));
		/* completion order within the batch, from the ring's reap sequence */
		for (j = 0; j < n; j++)
			if (seqs[j] < seqs[i])
				order++;
		snprintf(flags, sizeof(flags), "%s%s%s",
				 (ops[i].flags & PGU_IO_LINK) ? "+link" : "",
				 (ops[i].flags & PGU_IO_DRAIN) ? "+drain" : "",
				 (ops[i].flags & PGU_IO_ASYNC) ? "+async" : "");
		values[0] = Int32GetDatum(i + 1);
		values[1] = CStringGetTextDatum(pgu_op_info(ops[i].op)->name);
		values[2] = CStringGetTextDatum(flags[0] ? flags + 1 : "");
		values[3] = Int32GetDatum(results[i]);
		if (results[i] < 0)
			values[4] = CStringGetTextDatum(strerror(-results[i]));
		else
			nulls[4] = true;
		values[5] = Int32GetDatum(order);
		values[6] = CStringGetTextDatum(reaped_by_name(reaped[i]));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * pg_uring_bench(op text, ios int8, depth int4, path text)
 * ------------------------------------------------------------------------
 */
#define PGU_BENCH_MAX_IOS	(10 * 1000 * 1000)
#define PGU_BENCH_MAX_DEPTH 256

static int
cmp_uint32(const void *a, const void *b)
{
	uint32		x = *(const uint32 *) a;
	uint32		y = *(const uint32 *) b;

	return (x > y) - (x < y);
}

static void
bench_setup(PgUringHandle h, PgUringOp op, int fd, uint64 nblocks)
{
	PgUringSlot *slot = pgu_io_slot(h);

	slot->op = op;
	slot->flags = 0;
	if (op == PGU_OP_READ)
	{
		slot->target.file.fd = fd;
		slot->target.file.len = BLCKSZ;
		slot->target.file.offset =
			pg_prng_uint64_range(&pg_global_prng_state, 0, nblocks - 1) * BLCKSZ;
		slot->target.file.buf = pgu_slot_bounce(h.slot);
	}
}

#define BENCH_NCOLS 9

Datum
pg_uring_bench(PG_FUNCTION_ARGS)
{
	char	   *opname;
	int64		total = PG_GETARG_INT64(1);
	int32		depth = PG_GETARG_INT32(2);
	PgUringOp	op;
	char	   *path = NULL;
	OpenFiles	files = {0};
	uint32	   *lat;
	int64		done = 0;
	int64		issued = 0;
	instr_time	start,
				elapsed;
	TupleDesc	tupdesc;
	Datum		values[BENCH_NCOLS];
	bool		nulls[BENCH_NCOLS] = {0};
	double		sum = 0;
	double		secs;
	int64		i;
	int			maxdepth;

	pgu_require_loaded();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("op, ios and depth must not be null")));
	opname = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (strcmp(opname, "nop") == 0)
		op = PGU_OP_NOP;
	else if (strcmp(opname, "read") == 0)
		op = PGU_OP_READ;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown benchmark op \"%s\"", opname),
				 errhint("Use \"nop\" or \"read\".")));
	if (total < 1 || total > PGU_BENCH_MAX_IOS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ios must be between 1 and %d", PGU_BENCH_MAX_IOS)));
	/* reads land in bounce pages: their own slots */
	maxdepth = Min(PGU_BENCH_MAX_DEPTH, pgu_io_nslots_of(op == PGU_OP_READ));
	if (depth < 1 || depth > maxdepth)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("depth must be between 1 and %d", maxdepth),
				 op == PGU_OP_READ ? errhint("The read benchmark uses the pg_uring.bounce_buffers slots.") : 0));
	if (op == PGU_OP_READ)
	{
		if (PG_ARGISNULL(3))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the read benchmark needs a file path")));
		path = check_path(PG_GETARG_TEXT_PP(3));
	}
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	lat = palloc_extended(sizeof(uint32) * total, MCXT_ALLOC_HUGE);

	PG_TRY();
	{
		int			fd = -1;
		uint64		nblocks = 0;
		int			nslots = (int) Min((int64) depth, total);
		PgUringHandle *h = palloc(sizeof(PgUringHandle) * nslots);
		PgUringHandle *resubmit = palloc(sizeof(PgUringHandle) * nslots);
		bool	   *busy = palloc0(sizeof(bool) * nslots);
		int			next = 0;

		if (op == PGU_OP_READ)
		{
			struct stat st;

			fd = open_file(&files, path);
			if (fstat(fd, &st) < 0)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not stat file \"%s\": %m", path)));
			nblocks = st.st_size / BLCKSZ;
			if (nblocks == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("file \"%s\" is smaller than one block", path)));
		}

		INSTR_TIME_SET_CURRENT(start);
		if (op == PGU_OP_READ)
			pgu_io_acquire_bounce(h, nslots);
		else
			pgu_io_acquire(h, nslots);
		for (i = 0; i < nslots; i++)
		{
			bench_setup(h[i], op, fd, nblocks);
			busy[i] = true;
		}
		pgu_io_submit(h, nslots);
		issued = nslots;

		while (done < total)
		{
			int			nre = 0;
			int			j;

			CHECK_FOR_INTERRUPTS();
			while (!busy[next])
				next = (next + 1) % nslots;
			pgu_io_wait(h[next]);

			/* collect everything that has completed, resubmit in one batch */
			for (j = 0; j < nslots; j++)
			{
				PgUringSlot *slot;

				if (!busy[j] || !pgu_io_is_completed(h[j]))
					continue;
				slot = pgu_io_slot(h[j]);
				if (slot->result < 0)
					report_io_error("read", path ? path : "(none)", slot->result);
				lat[done++] = (uint32) Min(slot->complete_time - slot->submit_time,
										   (TimestampTz) PG_UINT32_MAX);
				busy[j] = false;
				if (issued < total)
				{
					pgu_io_restage(&h[j]);
					bench_setup(h[j], op, fd, nblocks);
					busy[j] = true;
					resubmit[nre++] = h[j];
					issued++;
				}
			}
			if (nre > 0)
			{
				pgu_io_submit(resubmit, nre);
				/* handles were copied: refresh generations from the array */
				for (j = 0; j < nre; j++)
					Assert(pgu_io_slot(resubmit[j])->generation == resubmit[j].generation);
			}
			if (done < total)
				next = (next + 1) % nslots;
		}
		INSTR_TIME_SET_CURRENT(elapsed);
		INSTR_TIME_SUBTRACT(elapsed, start);
		pgu_io_release(h, nslots);
		close_files(&files);
	}
	PG_CATCH();
	{
		abandon_call(&files);
		PG_RE_THROW();
	}
	PG_END_TRY();

	for (i = 0; i < total; i++)
		sum += lat[i];
	qsort(lat, total, sizeof(uint32), cmp_uint32);
	secs = INSTR_TIME_GET_DOUBLE(elapsed);

	values[0] = CStringGetTextDatum(opname);
	values[1] = Int32GetDatum(depth);
	values[2] = Int64GetDatum(total);
	values[3] = Float8GetDatum(secs);
	values[4] = Float8GetDatum(secs > 0 ? total / secs : 0);
	values[5] = Float8GetDatum(sum / total);
	values[6] = Float8GetDatum((double) lat[(total - 1) / 2]);
	values[7] = Float8GetDatum((double) lat[(int64) ((total - 1) * 0.99)]);
	values[8] = Float8GetDatum((double) lat[total - 1]);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
