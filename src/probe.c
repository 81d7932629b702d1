/*-------------------------------------------------------------------------
 *
 * probe.c
 *	  pg_uring_probe(): what a DBA asks first on a new host.  Whether
 *	  io_uring works here, which opcodes pg_uring relies on the kernel
 *	  supports, the features of the shared rings, and the memory they pin
 *	  (to compare with ulimit -l).
 *
 * Owns nothing shared.  It creates one small private ring in the calling
 * backend to ask the kernel, and tears it down before returning; the
 * shared rings are only read.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>
#include <sys/resource.h>
#include <sys/utsname.h>

#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "ring.h"

PG_FUNCTION_INFO_V1(pg_uring_probe);

typedef struct ProbeOut
{
	ReturnSetInfo *rsinfo;
} ProbeOut;

static void
emit(ProbeOut *out, const char *section, const char *name, const char *value)
{
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	values[0] = CStringGetTextDatum(section);
	values[1] = CStringGetTextDatum(name);
	if (value)
		values[2] = CStringGetTextDatum(value);
	else
		nulls[2] = true;
	tuplestore_putvalues(out->rsinfo->setResult, out->rsinfo->setDesc, values, nulls);
}

static void
emit_int(ProbeOut *out, const char *section, const char *name, int64 value)
{
	char		buf[32];

	snprintf(buf, sizeof(buf), INT64_FORMAT, value);
	emit(out, section, name, buf);
}

static const struct
{
	unsigned	flag;
	const char *name;
}			feature_names[] =
{
	{IORING_FEAT_SINGLE_MMAP, "SINGLE_MMAP"},
	{IORING_FEAT_NODROP, "NODROP"},
	{IORING_FEAT_SUBMIT_STABLE, "SUBMIT_STABLE"},
	{IORING_FEAT_RW_CUR_POS, "RW_CUR_POS"},
	{IORING_FEAT_CUR_PERSONALITY, "CUR_PERSONALITY"},
	{IORING_FEAT_FAST_POLL, "FAST_POLL"},
	{IORING_FEAT_POLL_32BITS, "POLL_32BITS"},
	{IORING_FEAT_SQPOLL_NONFIXED, "SQPOLL_NONFIXED"},
	{IORING_FEAT_EXT_ARG, "EXT_ARG"},
	{IORING_FEAT_NATIVE_WORKERS, "NATIVE_WORKERS"},
	{IORING_FEAT_RSRC_TAGS, "RSRC_TAGS"},
	{IORING_FEAT_CQE_SKIP, "CQE_SKIP"},
	{IORING_FEAT_LINKED_FILE, "LINKED_FILE"},
};

/* the opcodes pg_uring submits, now or in the write-back path */
static const struct
{
	int			op;
	const char *name;
}			opcode_names[] =
{
	{IORING_OP_NOP, "NOP"},
	{IORING_OP_READ, "READ"},
	{IORING_OP_READV, "READV"},
	{IORING_OP_WRITE, "WRITE"},
	{IORING_OP_WRITEV, "WRITEV"},
	{IORING_OP_FSYNC, "FSYNC"},
	{IORING_OP_SYNC_FILE_RANGE, "SYNC_FILE_RANGE"},
};

static void
features_text(unsigned features, StringInfo buf)
{
	int			i;

	for (i = 0; i < lengthof(feature_names); i++)
	{
		if (features & feature_names[i].flag)
		{
			if (buf->len > 0)
				appendStringInfoChar(buf, ' ');
			appendStringInfoString(buf, feature_names[i].name);
		}
	}
}

static int64
ring_mapped_bytes(struct io_uring *ring)
{
	int64		bytes = (int64) ring->sq.ring_sz +
		(int64) ring->sq.ring_entries * sizeof(struct io_uring_sqe);

	if (!(ring->features & IORING_FEAT_SINGLE_MMAP))
		bytes += ring->cq.ring_sz;
	return bytes;
}

static void
probe_host(ProbeOut *out)
{
	struct utsname uts;
	struct rlimit rl;
	FILE	   *f;
	char		buf[64];

	if (uname(&uts) == 0)
		emit(out, "host", "kernel_release", uts.release);

	f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
	if (f != NULL)
	{
		if (fgets(buf, sizeof(buf), f) != NULL)
		{
			buf[strcspn(buf, "\n")] = '\0';
			emit(out, "host", "io_uring_disabled", buf);
		}
		fclose(f);
	}
	else
		emit(out, "host", "io_uring_disabled", "absent (kernel predates the sysctl)");

	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0)
	{
		if (rl.rlim_cur == RLIM_INFINITY)
			emit(out, "host", "memlock_limit_bytes", "unlimited");
		else
			emit_int(out, "host", "memlock_limit_bytes", (int64) rl.rlim_cur);
	}
}

static void
probe_shared(ProbeOut *out)
{
	PgUringRing *ring0 = pgu_ring(0);
	StringInfoData buf;
	int64		per_ring;
	ssize_t		memlock;

	emit(out, "shared_rings", "mode", pgu_shared->uring_mode ? "io_uring" : "sync");
	emit(out, "shared_rings", "setup_error",
		 pgu_shared->uring_mode ? NULL : pgu_shared->setup_error);
	emit_int(out, "shared_rings", "rings", pgu_shared->nrings);
	emit_int(out, "shared_rings", "sq_entries", ring0->sq_entries);
	emit_int(out, "shared_rings", "cq_entries", ring0->cq_entries);
	if (!pgu_shared->uring_mode)
		return;

	initStringInfo(&buf);
	features_text(ring0->uring.features, &buf);
	emit(out, "shared_rings", "features", buf.data);
	emit(out, "shared_rings", "setup_flags",
		 pgu_shared->submit_all ? "SUBMIT_ALL" : "");

	per_ring = ring_mapped_bytes(&ring0->uring);
	emit_int(out, "shared_rings", "mapped_bytes_per_ring", per_ring);
	emit_int(out, "shared_rings", "mapped_bytes_total", per_ring * pgu_shared->nrings);

	/*
	 * liburing's estimate of what the rings are charged to RLIMIT_MEMLOCK
	 * (0 on kernels that no longer charge rings): computed, not measured.
	 */
	memlock = io_uring_mlock_size(pgu_shared->queue_depth, 0);
	if (memlock >= 0)
		emit_int(out, "shared_rings", "memlock_bytes_estimate",
				 (int64) memlock * pgu_shared->nrings);
}

static void
probe_kernel(ProbeOut *out)
{
	struct io_uring ring;
	struct io_uring_probe *probe;
	int			ret;
	int			i;
	char		buf[256];

	ret = io_uring_queue_init(8, &ring, 0);
	if (ret < 0)
	{
		snprintf(buf, sizeof(buf), "failed: %s (errno %d)", strerror(-ret), -ret);
		emit(out, "kernel", "ring_create", buf);
		return;
	}
	emit(out, "kernel", "ring_create", "ok");

	probe = io_uring_get_probe_ring(&ring);
	for (i = 0; i < lengthof(opcode_names); i++)
	{
		const char *v;

		if (probe == NULL)
			v = "unknown (no IORING_REGISTER_PROBE)";
		else
			v = io_uring_opcode_supported(probe, opcode_names[i].op) ?
				"supported" : "not supported";
		emit(out, "opcode", opcode_names[i].name, v);
	}
	if (probe)
		io_uring_free_probe(probe);
	io_uring_queue_exit(&ring);
}

Datum
pg_uring_probe(PG_FUNCTION_ARGS)
{
	ProbeOut	out;

	pgu_require_loaded();
	InitMaterializedSRF(fcinfo, 0);
	out.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	probe_host(&out);
	probe_shared(&out);
	probe_kernel(&out);
	return (Datum) 0;
}
