--
-- The statistics views of 1.1: pg_uring_stats narrowed to what belongs to
-- a ring, the per-kind counters in pg_uring_stat_io, write-back's own in
-- pg_uring_stat_writeback, read-ahead per database in
-- pg_uring_stat_database.  Every counter of the 1.0 function
-- pg_uring_stats() is in exactly one view, under the name the 1.0--1.1
-- script's comment gives, with the same value.
--
CREATE EXTENSION IF NOT EXISTS pg_uring;
SELECT extversion FROM pg_extension WHERE extname = 'pg_uring';

\d pg_uring_stats
\d pg_uring_stat_writeback
\d pg_uring_stat_database

-- some IO of every kind: a prewarm, WAL flushed through the rings, linked
-- and drained page writes
SELECT pg_uring_reset_stats();
-- (a bulk CREATE TABLE AS writes through a ring of 16 MB: of 25 MB, most
-- is not in shared_buffers afterwards, so the prewarm has blocks to read)
CREATE TABLE st AS SELECT g AS id, repeat('s', 200) AS pad FROM generate_series(1, 100000) g;
CHECKPOINT;
SELECT pg_uring_prewarm('st') > 0 AS prewarmed;
BEGIN;
UPDATE st SET pad = repeat('t', 200) WHERE id % 40 = 0;
SELECT pg_uring_flush('st') > 0 AS flushed;
COMMIT;
UPDATE st SET pad = repeat('u', 200) WHERE id % 50 = 0;
SELECT pg_uring_flush('st', sync => true) > 0 AS synced;

-- the 1.0 function's columns, one by one, against the views
SELECT count(*) AS rings,
	   bool_and(f.in_flight = s.in_flight AND f.submitted = s.submitted
				AND f.completed = s.completed AND f.reaped_by_issuer = s.reaped_by_issuer
				AND f.reaped_by_other = s.reaped_by_other
				AND f.reaped_by_reaper = s.reaped_by_reaper
				AND f.buffer_ios_helped = s.buffer_ios_helped AND f.linked = s.linked
				AND f.drained = s.drained AND f.errors = s.errors
				AND f.cancelled = s.cancelled AND f.submit_calls = s.submit_calls
				AND f.submit_lock_waits = s.submit_lock_waits
				AND f.kernel_waits = s.kernel_waits
				AND f.ring_full_waits = s.ring_full_waits
				AND f.slot_waits = s.slot_waits AND f.sq_entries = s.sq_entries
				AND f.cq_entries = s.cq_entries AND f.mode = s.mode) AS ring_level_agree,
	   bool_and(f.linked_writes = w.linked_writes
				AND f.cancelled_chains = w.cancelled_chains
				AND f.wal_flush_waits = w.wal_flush_waits
				AND f.writes_deferred = w.writes_deferred
				AND f.sync_requests = w.sync_requests
				AND f.local_syncs = w.local_syncs
				AND f.writer_pages = w.writer_pages) AS writeback_agree,
	   bool_and(f.buffer_reads = p.ios AND f.buffer_blocks = p.reads
				AND f.buffer_read_failures = p.failures
				AND f.zero_page_fills = p.sync_fills) AS prewarm_agree,
	   bool_and(f.buffer_writes = wb.writes AND f.buffer_write_failures = wb.failures
				AND f.drained_writes = wb.fsyncs) AS write_back_agree,
	   bool_and(f.wal_flushes = wal.fsyncs AND f.wal_flushes = wal.ios) AS wal_agree,
	   -- and the IO really happened, so that the comparison compares something
	   sum(f.buffer_blocks) > 0 AS read, sum(f.buffer_writes) > 0 AS written,
	   sum(f.drained_writes) > 0 AS drained, sum(f.submitted) > 0 AS submitted
  FROM pg_uring_stats() f
  JOIN pg_uring_stats s USING (ring)
  JOIN pg_uring_stat_writeback w USING (ring)
  JOIN pg_uring_stat_io p ON p.ring = f.ring AND p.io_kind = 'prewarm'
  JOIN pg_uring_stat_io wb ON wb.ring = f.ring AND wb.io_kind = 'write-back'
  JOIN pg_uring_stat_io wal ON wal.ring = f.ring AND wal.io_kind = 'wal fsync';

-- the wide function is still there for 1.0 callers; the narrow view is
-- what a DBA reads
SELECT (SELECT count(*) FROM pg_attribute WHERE attrelid = 'pg_uring_stats'::regclass
		  AND attnum > 0) AS view_columns,
	   (SELECT count(*) FROM pg_proc p, unnest(p.proargmodes) m
		 WHERE p.proname = 'pg_uring_stats' AND m = 'o') AS function_columns;

-- sync_fills is NULL where a kind reads no buffers
SELECT io_kind, sync_fills IS NULL AS no_sync_fills
  FROM pg_uring_stat_io WHERE ring = 0 ORDER BY 1;

-- after a reset no database has a row (pg_uring_stat_database's rows
-- themselves are tested in test/t/302_readahead.pl: read-ahead depends on
-- timing)
SELECT pg_uring_reset_stats();
SELECT count(*) AS databases FROM pg_uring_stat_database;

DROP TABLE st;

-- upgrades: 1.0 keeps working with this library, and ALTER EXTENSION
-- UPDATE gives exactly the objects of a fresh CREATE EXTENSION
CREATE FUNCTION pgu_ext_objects() RETURNS SETOF text LANGUAGE sql AS $$
  SELECT pg_describe_object(d.classid, d.objid, d.objsubid)
	FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid
   WHERE d.refclassid = 'pg_extension'::regclass AND e.extname = 'pg_uring' AND d.deptype = 'e'
   ORDER BY 1
$$;
CREATE TABLE fresh_objects AS SELECT * FROM pgu_ext_objects() o;
CREATE TABLE fresh_cols AS
  SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type
	FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
   WHERE c.relname LIKE 'pg_uring%' AND c.relkind = 'v' AND a.attnum > 0;
CREATE TABLE fresh_acl AS
  SELECT relname, relacl::text AS acl FROM pg_class WHERE relname LIKE 'pg_uring%' AND relkind = 'v'
  UNION ALL
  SELECT p.oid::regprocedure::text, p.proacl::text FROM pg_proc p WHERE p.proname LIKE 'pg_uring%';
DROP EXTENSION pg_uring;
CREATE EXTENSION pg_uring VERSION '1.0';
SELECT count(*) AS columns_1_0 FROM pg_attribute
 WHERE attrelid = 'pg_uring_stats'::regclass AND attnum > 0;
SELECT count(*) AS rings, sum(buffer_reads) >= 0 AS buffer_reads_there FROM pg_uring_stats;
SELECT count(*) >= 0 AS ios_view_works FROM pg_uring_ios;
SELECT to_regclass('pg_uring_stat_io') IS NULL AS no_stat_io_in_1_0;
-- a view of the user's on pg_uring_stats stops the update, which changes nothing
CREATE VIEW my_ring_view AS SELECT ring, buffer_reads FROM pg_uring_stats;
ALTER EXTENSION pg_uring UPDATE TO '1.1';
SELECT extversion FROM pg_extension WHERE extname = 'pg_uring';
DROP VIEW my_ring_view;
ALTER EXTENSION pg_uring UPDATE TO '1.1';
SELECT extversion FROM pg_extension WHERE extname = 'pg_uring';
-- the same objects, the same view columns, the same privileges as fresh
(SELECT * FROM pgu_ext_objects() EXCEPT SELECT * FROM fresh_objects)
UNION ALL
(SELECT * FROM fresh_objects EXCEPT SELECT * FROM pgu_ext_objects());
-- (PostgreSQL 17 also records the views' row types and their array types
-- as members: they are compared below, not counted here)
SELECT count(*) AS objects FROM fresh_objects WHERE o NOT LIKE 'type %';
(SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod)
   FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
  WHERE c.relname LIKE 'pg_uring%' AND c.relkind = 'v' AND a.attnum > 0
 EXCEPT SELECT * FROM fresh_cols)
UNION ALL
(SELECT * FROM fresh_cols
 EXCEPT SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod)
   FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
  WHERE c.relname LIKE 'pg_uring%' AND c.relkind = 'v' AND a.attnum > 0);
(SELECT relname, relacl::text FROM pg_class WHERE relname LIKE 'pg_uring%' AND relkind = 'v'
 UNION ALL
 SELECT p.oid::regprocedure::text, p.proacl::text FROM pg_proc p WHERE p.proname LIKE 'pg_uring%'
 EXCEPT SELECT * FROM fresh_acl)
UNION ALL
(SELECT * FROM fresh_acl
 EXCEPT (SELECT relname, relacl::text FROM pg_class WHERE relname LIKE 'pg_uring%' AND relkind = 'v'
		 UNION ALL
		 SELECT p.oid::regprocedure::text, p.proacl::text FROM pg_proc p WHERE p.proname LIKE 'pg_uring%'));
DROP TABLE fresh_objects, fresh_cols, fresh_acl;
DROP FUNCTION pgu_ext_objects();
