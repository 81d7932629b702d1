/* pg_uring--1.0--1.1.sql: read-ahead for ordinary queries */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_uring UPDATE TO '1.1'" to load this file. \quit

-- one row per ring and kind of IO, shaped like PostgreSQL 16's pg_stat_io:
-- reads, writes, writebacks and fsyncs in blocks (NULL where a kind has no
-- such operation), ios the IOs that moved them; this is where 1.0's
-- per-kind columns of pg_uring_stats went (buffer_reads = ios and
-- buffer_blocks = reads of prewarm, buffer_read_failures = its failures,
-- zero_page_fills = its sync_fills, buffer_writes = writes of write-back,
-- drained_writes = its fsyncs, wal_flushes = fsyncs of wal fsync)
CREATE FUNCTION pg_uring_stat_io(
	OUT ring int4,
	OUT io_kind text,
	OUT ios int8,
	OUT reads int8,
	OUT writes int8,
	OUT writebacks int8,
	OUT fsyncs int8,
	OUT failures int8,
	OUT sync_fills int8,
	OUT readahead_used int8,
	OUT readahead_wasted int8,
	OUT readahead_waited int8,
	OUT op_bytes int8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'pg_uring_stat_io'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE VIEW pg_uring_stat_io AS SELECT * FROM pg_uring_stat_io();
GRANT SELECT ON pg_uring_stat_io TO PUBLIC;

-- pg_uring_stats keeps what belongs to a ring (submission, completion,
-- waits, sizes); the 1.0 function behind it stays, with all its columns
DROP VIEW pg_uring_stats;
CREATE VIEW pg_uring_stats AS
	SELECT ring, mode, in_flight, submitted, completed,
		   reaped_by_issuer, reaped_by_other, reaped_by_reaper, buffer_ios_helped,
		   linked, drained, errors, cancelled,
		   submit_calls, submit_lock_waits, kernel_waits, ring_full_waits, slot_waits,
		   sq_entries, cq_entries
	  FROM pg_uring_stats();
GRANT SELECT ON pg_uring_stats TO PUBLIC;

-- what only ordered write-back has: one row per ring
CREATE VIEW pg_uring_stat_writeback AS
	SELECT ring, linked_writes, cancelled_chains, wal_flush_waits, writes_deferred,
		   sync_requests, local_syncs, writer_pages
	  FROM pg_uring_stats();
GRANT SELECT ON pg_uring_stat_writeback TO PUBLIC;

-- read-ahead per database (the read-ahead row of pg_uring_stat_io, split
-- by the database of the relation read); datid NULL: the databases that
-- came after the table of 64 was full, until pg_uring_reset_stats()
CREATE FUNCTION pg_uring_stat_database(
	OUT datid oid,
	OUT datname name,
	OUT ios int8,
	OUT reads int8,
	OUT failures int8,
	OUT readahead_waited int8,
	OUT readahead_used int8,
	OUT readahead_wasted int8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'pg_uring_stat_database'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE VIEW pg_uring_stat_database AS SELECT * FROM pg_uring_stat_database();
GRANT SELECT ON pg_uring_stat_database TO PUBLIC;

-- pg_uring_ios names every in-flight IO's relation file and block: like
-- pg_buffercache, monitoring roles only
REVOKE ALL ON pg_uring_ios FROM PUBLIC;
REVOKE ALL ON FUNCTION pg_uring_ios() FROM PUBLIC;
GRANT SELECT ON pg_uring_ios TO pg_monitor;
GRANT EXECUTE ON FUNCTION pg_uring_ios() TO pg_monitor;
