/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  Ring counters, the per-database read-ahead counters, and the SQL
 *	  functions behind pg_uring_stats (and through it the views
 *	  pg_uring_stats and pg_uring_stat_writeback), pg_uring_stat_io,
 *	  pg_uring_stat_database and pg_uring_ios.
 *
 * Owns: the per-database table in shared memory.  Ring counters are
 * atomics in each ring and are bumped wherever the event happens; this
 * module only reads and resets them.  The per-database table has a fixed
 * number of entries, each claimed by the first count for a database (a
 * compare-and-swap of its OID) and kept until the next reset; counts for
 * databases that find it full go to one overflow entry, shown with a NULL
 * datid.
 *
 * Invariants: a reset zeroes event counters only, never in_flight, which is
 * state, not a statistic.  An entry's counters are zeroed when it is
 * claimed, so nothing a reset raced with is shown under another database.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "commands/dbcommands.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "ring.h"

PG_FUNCTION_INFO_V1(pg_uring_stats);
PG_FUNCTION_INFO_V1(pg_uring_reset_stats);
PG_FUNCTION_INFO_V1(pg_uring_ios);
PG_FUNCTION_INFO_V1(pg_uring_stat_io);
PG_FUNCTION_INFO_V1(pg_uring_stat_database);

/* databases with an entry of their own, until the next reset */
#define PGU_DB_ENTRIES		64

typedef struct PgUringDbStats
{
	pg_atomic_uint32 dboid;		/* InvalidOid: free */
	pg_atomic_uint64 counters[PGU_NDB_COUNTERS];
} PgUringDbStats;

/* PGU_DB_ENTRIES entries, then the overflow entry */
static PgUringDbStats *db_stats = NULL;

Size
pgu_stats_shmem_size(void)
{
	return mul_size(PGU_DB_ENTRIES + 1, sizeof(PgUringDbStats));
}

void
pgu_stats_shmem_init(void)
{
	bool		found;
	int			i;
	int			c;

	db_stats = ShmemInitStruct("pg_uring database stats", pgu_stats_shmem_size(), &found);
	if (found)
		return;
	for (i = 0; i <= PGU_DB_ENTRIES; i++)
	{
		pg_atomic_init_u32(&db_stats[i].dboid, InvalidOid);
		for (c = 0; c < PGU_NDB_COUNTERS; c++)
			pg_atomic_init_u64(&db_stats[i].counters[c], 0);
	}
}

static void
db_counters_zero(PgUringDbStats *e)
{
	int			c;

	for (c = 0; c < PGU_NDB_COUNTERS; c++)
		pg_atomic_write_u64(&e->counters[c], 0);
}

/* the entry of a database, claiming a free one if it has none */
static PgUringDbStats *
db_entry(Oid dboid)
{
	static int	last = -1;	/* this process's last database's entry */
	int			i;

	if (last >= 0 && pg_atomic_read_u32(&db_stats[last].dboid) == dboid)
		return &db_stats[last];
	for (i = 0; i < PGU_DB_ENTRIES; i++)
	{
		uint32		cur = pg_atomic_read_u32(&db_stats[i].dboid);

		if (cur == InvalidOid)
		{
			uint32		expected = InvalidOid;

			if (pg_atomic_compare_exchange_u32(&db_stats[i].dboid, &expected, dboid))
			{
				db_counters_zero(&db_stats[i]);
				last = i;
				return &db_stats[i];
			}
			cur = expected;
		}
		if (cur == dboid)
		{
			last = i;
			return &db_stats[i];
		}
	}
	return &db_stats[PGU_DB_ENTRIES];
}

/* count n events of a per-database counter (PGU_DB_COUNTER_FIRST..) */
void
pgu_count_db(Oid dboid, PgUringCounter c, uint64 n)
{
	Assert(c >= PGU_DB_COUNTER_FIRST && c < PGU_DB_COUNTER_FIRST + PGU_NDB_COUNTERS);
	if (db_stats == NULL || dboid == InvalidOid)
		return;
	pg_atomic_fetch_add_u64(&db_entry(dboid)->counters[c - PGU_DB_COUNTER_FIRST], n);
}

/* pg_uring_stats columns: ring, mode, in_flight, then the counters, then sizes */
#define STATS_FIXED_BEFORE	3
#define STATS_FIXED_AFTER	2
#define STATS_NCOLS			(STATS_FIXED_BEFORE + PGU_NCOUNTERS_STATS + STATS_FIXED_AFTER)

Datum
pg_uring_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	pgu_require_loaded();
	InitMaterializedSRF(fcinfo, 0);

	for (i = 0; i < pgu_shared->nrings; i++)
	{
		PgUringRing *ring = pgu_ring(i);
		Datum		values[STATS_NCOLS];
		bool		nulls[STATS_NCOLS];
		int			c;
		int			col = 0;

		memset(nulls, 0, sizeof(nulls));
		values[col++] = Int32GetDatum(i);
		values[col++] = CStringGetTextDatum(pgu_ring_mode_name(ring));
		values[col++] = Int64GetDatum((int64) pg_atomic_read_u32(&ring->inflight));
		for (c = 0; c < PGU_NCOUNTERS_STATS; c++)
			values[col++] = Int64GetDatum((int64) pg_atomic_read_u64(&ring->counters[c]));
		values[col++] = Int32GetDatum((int32) ring->sq_entries);
		values[col++] = Int32GetDatum((int32) ring->cq_entries);
		Assert(col == STATS_NCOLS);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

Datum
pg_uring_reset_stats(PG_FUNCTION_ARGS)
{
	int			i;

	pgu_require_loaded();
	for (i = 0; i < pgu_shared->nrings; i++)
	{
		PgUringRing *ring = pgu_ring(i);
		int			c;

		for (c = 0; c < PGU_NCOUNTERS; c++)
			pg_atomic_write_u64(&ring->counters[c], 0);
	}
	for (i = 0; i <= PGU_DB_ENTRIES; i++)
	{
		pg_atomic_write_u32(&db_stats[i].dboid, InvalidOid);
		db_counters_zero(&db_stats[i]);
	}
	PG_RETURN_VOID();
}

static const char *
slot_state_name(uint32 state)
{
	switch (state)
	{
		case PGU_SLOT_FREE:
			return "free";
		case PGU_SLOT_STAGED:
			return "staged";
		case PGU_SLOT_SUBMITTED:
			return "submitted";
		case PGU_SLOT_COMPLETED:
			return "completed";
	}
	return "unknown";
}

static void
flags_text(uint8 flags, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s",
			 (flags & PGU_IO_LINK) ? "link " : "",
			 (flags & PGU_IO_DRAIN) ? "drain " : "",
			 (flags & PGU_IO_ASYNC) ? "async " : "");
	if (buf[0] != '\0')
		buf[strlen(buf) - 1] = '\0';
}

#define IOS_NCOLS 9

/*
 * Every IO slot that is not free.  Fields are read without locks: a row is
 * a snapshot that may be torn while the slot changes state, which is fine
 * for monitoring; the slot is skipped if it became free meanwhile.
 */
Datum
pg_uring_ios(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TimestampTz now = GetCurrentTimestamp();
	int			i;

	pgu_require_loaded();
	InitMaterializedSRF(fcinfo, 0);

	for (i = 0; i < pgu_io_nslots(); i++)
	{
		PgUringSlot *slot = pgu_slot(i);
		PgUringSlot copy;
		uint32		state = pg_atomic_read_u32(&slot->state);
		Datum		values[IOS_NCOLS];
		bool		nulls[IOS_NCOLS];
		char		target[128];
		char		flags[32];
		const PgUringOpInfo *info;

		if (state == PGU_SLOT_FREE)
			continue;
		pg_read_barrier();
		memcpy(&copy, slot, sizeof(copy));
		if (pg_atomic_read_u32(&slot->state) == PGU_SLOT_FREE)
			continue;

		memset(nulls, 0, sizeof(nulls));
		values[0] = Int32GetDatum(i);
		values[1] = Int32GetDatum(copy.owner_pid);
		values[2] = Int32GetDatum(copy.ring);
		info = pgu_op_lookup(copy.op);
		values[3] = CStringGetTextDatum(info ? info->name : "unknown");
		if (info)
			info->describe(&copy, target, sizeof(target));
		else
			target[0] = '\0';
		values[4] = CStringGetTextDatum(target);
		flags_text(copy.flags, flags, sizeof(flags));
		values[5] = CStringGetTextDatum(flags);
		values[6] = CStringGetTextDatum(slot_state_name(state));
		if (state == PGU_SLOT_COMPLETED)
			values[7] = Int32GetDatum(copy.result);
		else
			nulls[7] = true;
		if (copy.submit_time != 0)
			values[8] = IntervalPGetDatum(DatumGetIntervalP(
									  DirectFunctionCall2(timestamp_mi,
														  TimestampTzGetDatum(now),
														  TimestampTzGetDatum(copy.submit_time))));
		else
			nulls[8] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * pg_uring_stat_io: one row per ring and kind of IO, shaped like
 * pg_stat_io (PostgreSQL 16): reads, writes, writebacks, fsyncs and
 * op_bytes mean what they mean there (blocks, not IOs; NULL where a kind
 * has no such operation); ios counts the IOs that moved them (a readv of
 * adjacent blocks is one), sync_fills counts the zero pages someone else
 * had pinned, filled synchronously instead, and the read-ahead columns say
 * what became of what the scans read ahead.
 */
typedef enum StatIoCol
{
	SIO_RING,
	SIO_KIND,
	SIO_IOS,
	SIO_READS,
	SIO_WRITES,
	SIO_WRITEBACKS,
	SIO_FSYNCS,
	SIO_FAILURES,
	SIO_SYNC_FILLS,
	SIO_USED,
	SIO_WASTED,
	SIO_WAITED,
	SIO_OP_BYTES,
	SIO_NCOLS
} StatIoCol;

static void
stat_io_row(ReturnSetInfo *rsinfo, int ringno, const char *kind,
			const int counter[SIO_NCOLS])
{
	PgUringRing *ring = pgu_ring(ringno);
	Datum		values[SIO_NCOLS];
	bool		nulls[SIO_NCOLS];
	int			c;

	memset(nulls, 0, sizeof(nulls));
	values[SIO_RING] = Int32GetDatum(ringno);
	values[SIO_KIND] = CStringGetTextDatum(kind);
	for (c = SIO_IOS; c < SIO_OP_BYTES; c++)
	{
		if (counter[c] < 0)
			nulls[c] = true;
		else
			values[c] = Int64GetDatum((int64) pg_atomic_read_u64(&ring->counters[counter[c]]));
	}
	values[SIO_OP_BYTES] = Int64GetDatum((int64) BLCKSZ);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

Datum
pg_uring_stat_io(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	/* counter of each column, -1 for NULL; ring, kind and op_bytes unused */
	static const int prewarm[SIO_NCOLS] = {
		0, 0, PGU_C_BUF_READS, PGU_C_BUF_BLOCKS, -1, -1, -1,
		PGU_C_BUF_FAILURES, PGU_C_BUF_SYNC_FILLS, -1, -1, -1, 0
	};
	static const int readahead[SIO_NCOLS] = {
		0, 0, PGU_C_RA_READS, PGU_C_RA_BLOCKS, -1, -1, -1,
		PGU_C_RA_FAILURES, PGU_C_RA_SYNC_FILLS, PGU_C_RA_USED, PGU_C_RA_WASTED,
		PGU_C_RA_WAITED, 0
	};
	static const int writeback[SIO_NCOLS] = {
		0, 0, -1, -1, PGU_C_BUF_WRITES, -1, PGU_C_DRAINED_WRITES,
		PGU_C_BUF_WRITE_FAILURES, -1, -1, -1, -1, 0
	};
	static const int wal[SIO_NCOLS] = {
		0, 0, PGU_C_WAL_FLUSHES, -1, -1, -1, PGU_C_WAL_FLUSHES,
		-1, -1, -1, -1, -1, 0
	};

	pgu_require_loaded();
	InitMaterializedSRF(fcinfo, 0);
	for (i = 0; i < pgu_shared->nrings; i++)
	{
		stat_io_row(rsinfo, i, "prewarm", prewarm);
		stat_io_row(rsinfo, i, "read-ahead", readahead);
		stat_io_row(rsinfo, i, "write-back", writeback);
		stat_io_row(rsinfo, i, "wal fsync", wal);
	}
	return (Datum) 0;
}

typedef enum StatDbCol
{
	SDB_DATID,
	SDB_DATNAME,
	SDB_COUNTERS,				/* PGU_NDB_COUNTERS columns, in counter order */
	SDB_NCOLS = SDB_COUNTERS + PGU_NDB_COUNTERS
} StatDbCol;

/*
 * pg_uring_stat_database: read-ahead per database, one row per database
 * counted since the last reset (datname NULL once it is dropped), and a
 * row with a NULL datid for the databases that found the table full.
 */
Datum
pg_uring_stat_database(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	pgu_require_loaded();
	InitMaterializedSRF(fcinfo, 0);
	for (i = 0; i <= PGU_DB_ENTRIES; i++)
	{
		Oid			dboid = pg_atomic_read_u32(&db_stats[i].dboid);
		Datum		values[SDB_NCOLS];
		bool		nulls[SDB_NCOLS];
		uint64		sum = 0;
		int			c;

		if (i < PGU_DB_ENTRIES && dboid == InvalidOid)
			continue;
		memset(nulls, 0, sizeof(nulls));
		for (c = 0; c < PGU_NDB_COUNTERS; c++)
		{
			uint64		v = pg_atomic_read_u64(&db_stats[i].counters[c]);

			values[SDB_COUNTERS + c] = Int64GetDatum((int64) v);
			sum += v;
		}
		if (i == PGU_DB_ENTRIES)
		{
			if (sum == 0)
				continue;
			nulls[SDB_DATID] = true;
			nulls[SDB_DATNAME] = true;
		}
		else
		{
			char	   *name = get_database_name(dboid);

			values[SDB_DATID] = ObjectIdGetDatum(dboid);
			if (name != NULL)
				values[SDB_DATNAME] = DirectFunctionCall1(namein, CStringGetDatum(name));
			else
				nulls[SDB_DATNAME] = true;
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
