/* pg_uring--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION pg_uring" to load this file. \quit

CREATE FUNCTION pg_uring_stats(
	OUT ring int4,
	OUT mode text,
	OUT in_flight int8,
	OUT submitted int8,
	OUT completed int8,
	OUT reaped_by_issuer int8,
	OUT reaped_by_other int8,
	OUT reaped_by_reaper int8,
	OUT linked int8,
	OUT drained int8,
	OUT errors int8,
	OUT cancelled int8,
	OUT submit_calls int8,
	OUT submit_lock_waits int8,
	OUT kernel_waits int8,
	OUT ring_full_waits int8,
	OUT slot_waits int8,
	OUT buffer_reads int8,
	OUT buffer_blocks int8,
	OUT buffer_read_failures int8,
	OUT zero_page_fills int8,
	OUT buffer_ios_helped int8,
	OUT wal_flushes int8,
	OUT buffer_writes int8,
	OUT buffer_write_failures int8,
	OUT linked_writes int8,
	OUT drained_writes int8,
	OUT cancelled_chains int8,
	OUT wal_flush_waits int8,
	OUT writes_deferred int8,
	OUT sync_requests int8,
	OUT local_syncs int8,
	OUT writer_pages int8,
	OUT sq_entries int4,
	OUT cq_entries int4)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'pg_uring_stats'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE VIEW pg_uring_stats AS SELECT * FROM pg_uring_stats();
GRANT SELECT ON pg_uring_stats TO PUBLIC;

CREATE FUNCTION pg_uring_reset_stats()
RETURNS void
AS 'MODULE_PATHNAME', 'pg_uring_reset_stats'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;
REVOKE ALL ON FUNCTION pg_uring_reset_stats() FROM PUBLIC;

CREATE FUNCTION pg_uring_ios(
	OUT slot int4,
	OUT owner_pid int4,
	OUT ring int4,
	OUT op text,
	OUT target text,
	OUT flags text,
	OUT state text,
	OUT result int4,
	OUT age interval)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'pg_uring_ios'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE VIEW pg_uring_ios AS SELECT * FROM pg_uring_ios();
GRANT SELECT ON pg_uring_ios TO PUBLIC;

CREATE FUNCTION pg_uring_probe(
	OUT section text,
	OUT name text,
	OUT value text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'pg_uring_probe'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;
-- it reports host details (kernel release, limits): monitoring roles only
REVOKE ALL ON FUNCTION pg_uring_probe() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_uring_probe() TO pg_monitor;

-- IO through the rings.  These read server files, so, like
-- pg_read_binary_file, they are not granted to PUBLIC.
CREATE FUNCTION pg_uring_read_file(path text, file_offset int8 DEFAULT 0,
								   length int4 DEFAULT 8192)
RETURNS bytea
AS 'MODULE_PATHNAME', 'pg_uring_read_file'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION pg_uring_read_file(text, int8, int4) FROM PUBLIC;

CREATE FUNCTION pg_uring_fsync(path text, data_only boolean DEFAULT true)
RETURNS void
AS 'MODULE_PATHNAME', 'pg_uring_fsync'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION pg_uring_fsync(text, boolean) FROM PUBLIC;

CREATE FUNCTION pg_uring_batch(ops text[],
	OUT seq int4,
	OUT op text,
	OUT flags text,
	OUT result int4,
	OUT error text,
	OUT completion_order int4,
	OUT reaped_by text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'pg_uring_batch'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION pg_uring_batch(text[]) FROM PUBLIC;

CREATE FUNCTION pg_uring_bench(op text, ios int8, depth int4 DEFAULT 1,
	path text DEFAULT NULL,
	OUT op text,
	OUT depth int4,
	OUT ios int8,
	OUT seconds float8,
	OUT iops float8,
	OUT mean_us float8,
	OUT p50_us float8,
	OUT p99_us float8,
	OUT max_us float8)
RETURNS record
AS 'MODULE_PATHNAME', 'pg_uring_bench'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION pg_uring_bench(text, int8, int4, text) FROM PUBLIC;

-- Asynchronous reads into shared_buffers.  Like pg_prewarm, these need
-- SELECT on the relation; they are parallel unsafe because the pins and the
-- in-flight reads belong to the calling backend.
CREATE FUNCTION pg_uring_prewarm(rel regclass, fork text DEFAULT 'main',
								 first_block int8 DEFAULT NULL,
								 last_block int8 DEFAULT NULL)
RETURNS int8
AS 'MODULE_PATHNAME', 'pg_uring_prewarm'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION pg_uring_prewarm_blocks(rel regclass, blocks int8[],
										fork text DEFAULT 'main')
RETURNS int8
AS 'MODULE_PATHNAME', 'pg_uring_prewarm_blocks'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;

-- WAL made durable through the rings (the first piece of ordered write-back)
CREATE FUNCTION pg_uring_wal_flush()
RETURNS pg_lsn
AS 'MODULE_PATHNAME', 'pg_uring_wal_flush'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION pg_uring_wal_flush() FROM PUBLIC;

-- Write-back of dirty shared buffers through the rings, WAL first.  Like
-- CHECKPOINT, for superusers and members of pg_checkpoint.
CREATE FUNCTION pg_uring_flush(rel regclass DEFAULT NULL, sync boolean DEFAULT false)
RETURNS int8
AS 'MODULE_PATHNAME', 'pg_uring_flush'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION pg_uring_flush(regclass, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_uring_flush(regclass, boolean) TO pg_checkpoint;
