/*-------------------------------------------------------------------------
 *
 * pg_uring.c
 *	  Module entry point: GUCs, shared memory hook chaining and the
 *	  registration of the reaper background worker.
 *
 * The map of the subsystem's files is at the top of pg_uring.h;
 * src/README.md walks one read and one write through them.
 *
 * Invariants kept here:
 *	- Nothing is set up unless the library is in shared_preload_libraries;
 *	  loaded any other way it defines no hooks, and every SQL function
 *	  reports a clear error instead of touching missing shared memory.
 *	- Shared memory is requested in shmem_request_hook and initialised in
 *	  shmem_startup_hook, which runs in the postmaster before any backend
 *	  forks and again after every crash restart.
 *	- The number of rings is a setting of its own; nothing here scales it
 *	  with max_connections.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/wait_event.h"
#include "pgstat.h"

#include "io.h"
#include "readahead.h"

PG_MODULE_MAGIC;

int			pgu_io_method = PGU_IO_METHOD_URING;
int			pgu_nrings = 4;
int			pgu_queue_depth = 256;
int			pgu_max_ios = 1024;
int			pgu_bounce_buffers = 192;
int			pgu_reaper_delay = 1;
bool		pgu_test_hold_reap = false;
static bool pgu_test_untested_version = false;
int			pgu_prewarm_depth = 64;
char	   *pgu_test_fault = NULL;
char	   *pgu_test_pause = NULL;
int			pgu_write_depth = 64;
bool		pgu_writer_enabled = false;
int			pgu_writer_delay = 50;
int			pgu_writer_max_pages = 512;
bool		pgu_test_wal_fault = false;
int			pgu_test_write_delay = 0;
bool		pgu_readahead = true;
int			pgu_readahead_distance = 64;
int			pgu_readahead_seqscan = PGU_RA_SEQ_OFF;
bool		pgu_readahead_bitmapscan = true;
bool		pgu_readahead_indexscan = true;

static const struct config_enum_entry io_method_options[] = {
	{"io_uring", PGU_IO_METHOD_URING, false},
	{"sync", PGU_IO_METHOD_SYNC, false},
	{NULL, 0, false}
};

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static const struct config_enum_entry readahead_seqscan_options[] = {
	{"off", PGU_RA_SEQ_OFF, false},
	{"parallel", PGU_RA_SEQ_PARALLEL, false},
	{"on", PGU_RA_SEQ_ON, false},
	{"false", PGU_RA_SEQ_OFF, true},
	{"true", PGU_RA_SEQ_ON, true},
	{"no", PGU_RA_SEQ_OFF, true},
	{"yes", PGU_RA_SEQ_ON, true},
	{"0", PGU_RA_SEQ_OFF, true},
	{"1", PGU_RA_SEQ_ON, true},
	{NULL, 0, false}
};

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

void		_PG_init(void);

/*
 * Register one of pg_uring's background workers (the reaper, the writer):
 * shared memory access, no database, restarted a second after it exits.
 */
void
pgu_register_bgworker(const char *name, const char *function, int start)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS;
	worker.bgw_start_time = (BgWorkerStartTime) start;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_uring");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(worker.bgw_name, BGW_MAXLEN, "%s", name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "%s", name);
	RegisterBackgroundWorker(&worker);
}

static bool
check_test_fault(char **newval, void **extra, GucSource source)
{
	char		kind[16];
	unsigned	blk;
	char		tail;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (sscanf(*newval, "%15[a-z]:%u%c", kind, &blk, &tail) == 2 &&
		(strcmp(kind, "eio") == 0 || strcmp(kind, "short") == 0 ||
		 strcmp(kind, "weio") == 0 || strcmp(kind, "wshort") == 0 ||
		 strcmp(kind, "dsfail") == 0 || strcmp(kind, "ssplit") == 0))
		return true;
	GUC_check_errdetail("Use \"eio:BLOCK\", \"short:BLOCK\", \"weio:BLOCK\", \"wshort:BLOCK\", \"dsfail:SEGMENT\", \"ssplit:N\" or an empty string.");
	return false;
}

/*
 * Whether pg_uring.test_fault injects a fault of this kind ("eio", "short":
 * buffer reads; "weio": buffer writes), and at which block.
 */
bool
pgu_test_fault_at(const char *kind, BlockNumber *blk)
{
	char		k[16];
	unsigned	b;

	if (pgu_test_fault == NULL || pgu_test_fault[0] == '\0' ||
		sscanf(pgu_test_fault, "%15[a-z]:%u", k, &b) != 2 || strcmp(k, kind) != 0)
		return false;
	*blk = (BlockNumber) b;
	return true;
}

/*
 * pg_uring.test_pause: a test-only barrier.  If the setting names this
 * point (optionally with ":N", matched against blk), log that we are here
 * and wait while the file "pg_uring.pause" exists in the data directory,
 * for at most a minute.  Interrupts are not processed: a pause stands for
 * a wait that cannot be interrupted (an LWLock, a kernel call).
 */
void
pgu_test_pause_at(const char *point, int64 blk)
{
	size_t		len = strlen(point);
	struct stat st;
	int			waited = 0;

	if (pgu_test_pause == NULL || strncmp(pgu_test_pause, point, len) != 0)
		return;
	if (pgu_test_pause[len] == ':')
	{
		if (blk < 0 || strtoll(pgu_test_pause + len + 1, NULL, 10) != blk)
			return;
	}
	else if (pgu_test_pause[len] != '\0')
		return;

	ereport(LOG,
			(errmsg("pg_uring: test pause at %s (block " INT64_FORMAT ")", point, blk)));
	pgstat_report_wait_start(PG_WAIT_EXTENSION);
	while (stat("pg_uring.pause", &st) == 0 && waited < 60000)
	{
		pg_usleep(10000L);
		waited += 10;
	}
	pgstat_report_wait_end();
	ereport(LOG, (errmsg("pg_uring: test pause at %s over", point)));
}

static void
pgu_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(add_size(add_size(add_size(pgu_ring_shmem_size(),
													   pgu_io_shmem_size()),
											  pgu_bufread_shmem_size()),
									 pgu_stats_shmem_size()));
	RequestNamedLWLockTranche(PGU_TRANCHE_NAME, 2 * pgu_nrings);
}

static void
pgu_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	pgu_io_shmem_init();
	pgu_bufread_shmem_init();
	pgu_stats_shmem_init();
	pgu_ring_shmem_init();
	LWLockRelease(AddinShmemInitLock);
}

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
#ifdef PGU_TEST_BREAK_WAL_RULE
	ereport(WARNING,
			(errmsg("pg_uring was built with PGU_TEST_BREAK_WAL_RULE: page writes ignore the WAL rule"),
			 errdetail("This build is the negative control of the power-loss tests and loses data on a power cut."),
			 errhint("Never use it for anything else; build without PGU_TEST_BREAK_WAL_RULE.")));
#endif

	DefineCustomEnumVariable("pg_uring.io_method",
							 "How pg_uring runs its IOs: through shared io_uring rings, or synchronously.",
							 "sync creates no ring and runs every IO in the process that submits it, with the same results; for comparisons and for hosts where io_uring is unwelcome.",
							 &pgu_io_method,
							 PGU_IO_METHOD_URING,
							 io_method_options,
							 PGC_POSTMASTER, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("pg_uring.rings",
							"Number of shared io_uring instances created at server start.",
							"Backends share these rings; the count does not grow with max_connections.",
							&pgu_nrings,
							4, 1, 64,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("pg_uring.queue_depth",
							"Submission queue entries per shared ring.",
							"The kernel rounds it up to a power of two; each ring's completion queue has twice as many entries.",
							&pgu_queue_depth,
							256, 8, 4096,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("pg_uring.max_ios",
							"Number of shared IO slots for reads into shared buffers, fsyncs and hints (staged or in flight at once, server-wide).",
							"Writes and file reads have slots of their own, pg_uring.bounce_buffers.",
							&pgu_max_ios,
							1024, 16, 65536,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("pg_uring.bounce_buffers",
							"Shared memory pages, one IO slot each, for IOs that write a copy of a buffer or read a file.",
							"Buffer writes, pg_uring_read_file, pg_uring_batch reads and the read benchmark use them; reads into shared buffers need none.",
							&pgu_bounce_buffers,
							192, 16, 32768,
							PGC_POSTMASTER, GUC_UNIT_BLOCKS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("pg_uring.reaper_delay",
							"How long the reaper leaves a completion to its issuer before processing it itself.",
							NULL,
							&pgu_reaper_delay,
							1, 0, 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("pg_uring.test_hold_reap",
							 "Test only: the issuing backend does not reap its own completions.",
							 "Another backend or the reaper must complete them.",
							 &pgu_test_hold_reap,
							 false,
							 PGC_SUSET, GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("pg_uring.prewarm_depth",
							"Buffer reads pg_uring_prewarm keeps in flight per backend.",
							"Each read combines up to 16 adjacent blocks; at most 256 buffers are pinned at once.",
							&pgu_prewarm_depth,
							64, 1, 1024,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomStringVariable("pg_uring.test_fault",
							   "Test only: inject a fault into a buffer IO or a submission.",
							   "\"eio:N\" fails the read that covers block N with EIO, \"short:N\" makes it end in the middle of block N, \"weio:N\" fails the write that covers block N with EIO, \"wshort:N\" makes it end in the middle of block N, \"dsfail:N\" fails the fdatasync of segment N of a pg_uring_flush with sync, \"ssplit:N\" makes the kernel take only the first N entries of a larger submission; empty for none.",
							   &pgu_test_fault,
							   "",
							   PGC_SUSET, GUC_NOT_IN_SAMPLE,
							   check_test_fault, NULL, NULL);
	DefineCustomIntVariable("pg_uring.write_depth",
							"Buffer writes pg_uring_flush and the pg_uring writer keep in flight per process.",
							"At most 256 buffers (and 1/8 of shared_buffers) are pinned at once.",
							&pgu_write_depth,
							64, 1, 1024,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("pg_uring.writer",
							 "Starts the pg_uring writer, which cleans buffers ahead of the clock sweep with asynchronous writes.",
							 NULL,
							 &pgu_writer_enabled,
							 false,
							 PGC_POSTMASTER, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("pg_uring.writer_delay",
							"Sleep between rounds of the pg_uring writer.",
							NULL,
							&pgu_writer_delay,
							50, 10, 10000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("pg_uring.writer_max_pages",
							"Most buffers the pg_uring writer writes in one round.",
							"Only buffers that are dirty, unpinned and have a usage count of 0 are written.",
							&pgu_writer_max_pages,
							512, 1, 1000000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("pg_uring.test_wal_flush_fault",
							 "Test only: WAL flushes submitted through the rings fail (an fsync of an invalid file descriptor).",
							 "The page writes linked behind them are cancelled by the kernel and the server PANICs.",
							 &pgu_test_wal_fault,
							 false,
							 PGC_SUSET, GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);
	DefineCustomStringVariable("pg_uring.test_pause",
							   "Test only: pause at a named point while the file pg_uring.pause exists in the data directory.",
							   "Points: \"claim:N\" (a prewarm, before asking core for block N), \"sync_read\" (a buffer read running in synchronous mode), \"chain_submitted\" (a write-back right after submitting a chain of WAL fsyncs and page writes, before it reaps), \"end_io:N\" (a completion that has just ended the IO on block N, before it wakes the waiters), \"write_staged\" (a write-back with writes staged, IO in progress, before it submits them), \"write_submitted\" (a write-back right after submitting page writes not linked to a WAL fsync, before it reaps them), \"claimed:N\" (a prewarm holding the zero-filled, locked buffer of block N, before it looks at the pins); empty for none.",
							   &pgu_test_pause,
							   "",
							   PGC_SUSET, GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("pg_uring.test_write_delay",
							"Test only: staged buffer writes wait this long before they are submitted.",
							NULL,
							&pgu_test_write_delay,
							0, 0, 60000,
							PGC_SUSET, GUC_NOT_IN_SAMPLE | GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("pg_uring.readahead",
							 "Ordinary queries read ahead through the shared rings.",
							 "Sequential, bitmap heap and index scans of heap tables in shared buffers; plans and EXPLAIN are unchanged.",
							 &pgu_readahead,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("pg_uring.readahead_distance",
							"Most blocks one scan reads ahead of where it is.",
							"The distance starts small and grows while the scan keeps needing what was read ahead; a sequential scan with a ring strategy stays within its ring.",
							&pgu_readahead_distance,
							64, 1, 1024,
							PGC_USERSET, GUC_UNIT_BLOCKS,
							NULL, NULL, NULL);
	DefineCustomEnumVariable("pg_uring.readahead_seqscan",
							 "Which sequential scans read ahead, if pg_uring.readahead is on: on (all), parallel (parallel ones only) or off.",
							 "A sequential scan is served well by the kernel's own read-ahead; ours measured slower for serial ones and, on some machines, parallel ones; see README.md.",
							 &pgu_readahead_seqscan,
							 PGU_RA_SEQ_OFF,
							 readahead_seqscan_options,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("pg_uring.readahead_bitmapscan",
							 "Bitmap heap scans read ahead, if pg_uring.readahead is on.",
							 NULL,
							 &pgu_readahead_bitmapscan,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("pg_uring.readahead_indexscan",
							 "Index scans and index-only scans (btree) read their heap blocks ahead, if pg_uring.readahead is on.",
							 NULL,
							 &pgu_readahead_indexscan,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("pg_uring.test_untested_version",
							 "Test only: start pg_uring on a PostgreSQL version it is not tested on.",
							 "PostgreSQL 15 and 17 are tested; 16 only compiles; see README.md.",
							 &pgu_test_untested_version,
							 false,
							 PGC_POSTMASTER, 0,
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved("pg_uring");

	/* a wrong page is worse than no pg_uring: refuse where it is not tested */
	if (!PGU_VERSION_TESTED && !pgu_test_untested_version)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("pg_uring is not tested on PostgreSQL %s", PG_MAJORVERSION),
				 errdetail("pg_uring is tested on PostgreSQL 15 and 17; on this version it only compiles."),
				 errhint("Remove pg_uring from shared_preload_libraries, or run PostgreSQL 15 or 17.  To test pg_uring on this version, set pg_uring.test_untested_version = on.")));

	pgu_fileops_register();
	pgu_bufread_register();
	pgu_writeback_register();
	pgu_wal_register();

	pgu_readahead_init();

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = pgu_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = pgu_shmem_startup;

	/*
	 * Always: core backends sleeping on a buffer's IO know nothing of rings,
	 * and only the reaper is sure to complete an IO whose owner is blocked.
	 */
	pgu_register_bgworker("pg_uring reaper", "pgu_reaper_main",
						  BgWorkerStart_PostmasterStart);
	/* on a standby core writes (it keeps minRecoveryPoint): start after recovery */
	if (pgu_writer_enabled)
		pgu_register_bgworker("pg_uring writer", "pgu_writer_main",
							  BgWorkerStart_RecoveryFinished);
}
