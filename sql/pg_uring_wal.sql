--
-- pg_uring_wal_flush: WAL written so far made durable through a ring.
--
CREATE TABLE walt (id int, v text);
SET synchronous_commit = off;
INSERT INTO walt SELECT g, repeat('w', 100) FROM generate_series(1, 20000) g;

-- it covers at least what core had flushed before the call, and never more
-- than was inserted (the WAL writer may flush more meanwhile: that is fine)
SELECT pg_current_wal_flush_lsn() AS core_flushed \gset
SELECT pg_uring_wal_flush() AS flushed \gset
SELECT :'flushed'::pg_lsn >= :'core_flushed'::pg_lsn AS covers_core_flush,
	   :'flushed'::pg_lsn <= pg_current_wal_insert_lsn() AS within_inserted;
-- it never goes backwards
SELECT pg_uring_wal_flush() >= :'flushed'::pg_lsn AS monotonic;

-- unflushed WAL across a segment switch: the segments are fsynced in one
-- linked chain, without errors
SELECT pg_uring_reset_stats();
SELECT pg_current_wal_insert_lsn() AS before_lsn \gset
INSERT INTO walt SELECT g, repeat('x', 100) FROM generate_series(1, 1000) g;
SELECT pg_switch_wal() IS NOT NULL AS switched;
INSERT INTO walt SELECT g, repeat('y', 100) FROM generate_series(1, 1000) g;
SELECT pg_uring_wal_flush() >= :'before_lsn'::pg_lsn AS flushed_past_start;
SELECT sum(errors) AS errors, sum(cancelled) AS cancelled, sum(in_flight) AS in_flight FROM pg_uring_stats;
RESET synchronous_commit;

-- not for everyone
CREATE ROLE regress_pgu_wal;
SET ROLE regress_pgu_wal;
SELECT pg_uring_wal_flush();
RESET ROLE;
DROP ROLE regress_pgu_wal;
DROP TABLE walt;
