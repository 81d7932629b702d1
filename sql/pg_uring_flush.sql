--
-- pg_uring_flush: dirty shared buffers written back through the rings.
--
CREATE EXTENSION IF NOT EXISTS pg_buffercache;
CREATE TABLE flt (id int PRIMARY KEY, v text);
INSERT INTO flt SELECT g, repeat('f', 100) FROM generate_series(1, 5000) g;
-- a TOAST value: flushing flt writes its TOAST relation too
INSERT INTO flt VALUES (0, (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 2000) g));
CHECKPOINT;

-- dirty buffers of flt, its index and its TOAST relation
CREATE FUNCTION pgu_dirty(rel regclass) RETURNS bigint LANGUAGE sql AS $$
	SELECT count(*) FROM pg_buffercache
	 WHERE isdirty AND reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
	   AND relfilenode = pg_relation_filenode(rel)
$$;
UPDATE flt SET v = repeat('g', 100) WHERE id % 2 = 0;
UPDATE flt SET v = v || 'x' WHERE id = 0;
SELECT pgu_dirty('flt') > 10 AS heap_dirty,
	   pgu_dirty('flt_pkey') > 0 AS index_dirty,
	   pgu_dirty((SELECT reltoastrelid FROM pg_class WHERE relname = 'flt')) > 0 AS toast_dirty;

-- the count returned is exactly what was dirty before (flt and its TOAST
-- relation and TOAST index; nothing else writes buffers here: no bgwriter
-- LRU writes, no checkpoint by time), and the relation is clean
SELECT pgu_dirty('flt') + pgu_dirty((SELECT reltoastrelid FROM pg_class WHERE relname = 'flt'))
	   + pgu_dirty((SELECT indexrelid FROM pg_index
					 WHERE indrelid = (SELECT reltoastrelid FROM pg_class WHERE relname = 'flt'))) AS dirty_before \gset
SELECT pg_uring_reset_stats();
SELECT pg_uring_flush('flt') AS written \gset
SELECT :written = :dirty_before AS counted,
	   pgu_dirty('flt') AS heap_dirty,
	   pgu_dirty((SELECT reltoastrelid FROM pg_class WHERE relname = 'flt')) AS toast_dirty;
-- adjacent blocks are combined into one pwritev, and each write registers
-- one fsync request with the checkpointer
SELECT sum(io.writes) = :written AS stats_agree, sum(io.failures) AS failures,
	   sum(s.submitted) < :written AS combined,
	   sum(w.sync_requests) + sum(w.local_syncs) BETWEEN 1 AND sum(s.submitted) AS fsyncs_registered,
	   sum(s.in_flight) AS in_flight
  FROM pg_uring_stats s JOIN pg_uring_stat_writeback w USING (ring)
  JOIN pg_uring_stat_io io ON io.ring = s.ring AND io.io_kind = 'write-back';
-- the index is a relation of its own
SELECT pg_uring_flush('flt_pkey') > 0 AS index_written, pgu_dirty('flt_pkey') AS index_dirty;
-- nothing left to write
SELECT pg_uring_flush('flt') AS again;

-- the whole pool, with fdatasync behind a drain barrier
UPDATE flt SET v = repeat('h', 100) WHERE id % 3 = 0;
SELECT pg_uring_reset_stats();
SELECT pg_uring_flush(sync => true) > 0 AS written;
SELECT pgu_dirty('flt') AS heap_dirty;
SELECT sum(io.fsyncs) > 0 AS synced, sum(s.drained) > 0 AS drain_barrier,
	   sum(s.errors) AS errors, sum(s.cancelled) AS cancelled
  FROM pg_uring_stats s JOIN pg_uring_stat_io io ON io.ring = s.ring AND io.io_kind = 'write-back';

-- unlogged relations need no WAL, and flush all the same
CREATE UNLOGGED TABLE flu AS SELECT g AS id FROM generate_series(1, 3000) g;
SELECT pg_uring_flush('flu') > 0 AS written, pgu_dirty('flu') AS dirty;

-- a WAL flush is linked only for WAL written and not yet durable: data
-- committed synchronously needs none
SELECT pg_uring_reset_stats();
UPDATE flt SET v = 'j' WHERE id < 100;
SELECT pg_uring_flush('flt') > 0 AS written;
SELECT sum(linked_writes) AS linked, sum(cancelled_chains) AS cancelled_chains FROM pg_uring_stat_writeback;

-- the data is what was written
SELECT count(*), count(*) FILTER (WHERE v = 'j') AS j, max(length(v)) FROM flt;

-- bad input
SELECT pg_uring_flush(0);
SELECT pg_uring_flush(4000000000::oid::regclass);
SELECT pg_uring_flush('no_such_table');
CREATE VIEW flv AS SELECT * FROM flt;
SELECT pg_uring_flush('flv');
CREATE TABLE flp (id int) PARTITION BY RANGE (id);
SELECT pg_uring_flush('flp');
DROP TABLE flp;
CREATE TEMP TABLE flte (id int);
INSERT INTO flte VALUES (1);
SELECT pg_uring_flush('flte');
-- NULL means the whole pool, a NULL sync means false
SELECT pg_uring_flush(NULL, NULL) >= 0 AS ok;

-- the test-only settings are for superusers
CREATE ROLE regress_pgu_flush;
CREATE ROLE regress_pgu_ckpt IN ROLE pg_checkpoint;
SET ROLE regress_pgu_flush;
SELECT pg_uring_flush('flt');
SET pg_uring.test_wal_flush_fault = on;
SET pg_uring.test_write_delay = 10;
-- members of pg_checkpoint may flush, as they may CHECKPOINT
SET ROLE regress_pgu_ckpt;
SELECT pg_uring_flush('flt') >= 0 AS ok;
RESET ROLE;
DROP ROLE regress_pgu_flush;
DROP ROLE regress_pgu_ckpt;

-- cancel: a long delay before submission is cut short by statement_timeout,
-- and nothing is left in progress
UPDATE flt SET v = 'k' WHERE id < 50;
SET pg_uring.test_write_delay = 60000;
SET statement_timeout = '300ms';
SELECT pg_uring_flush('flt');
RESET statement_timeout;
RESET pg_uring.test_write_delay;
SELECT count(*) AS ios_left FROM pg_uring_ios;
SELECT pg_uring_flush('flt') > 0 AS written_after_cancel, pgu_dirty('flt') AS dirty;

-- the error of a flush, SQLSTATE and message, with the relation path masked
CREATE FUNCTION pgu_flush_error(rel regclass) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_uring_flush(rel);
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, 'base/\d+/\d+', 'base/DB/REL');
END $$;

-- an IO error on a write (pg_uring.test_fault 'weio:N'): reported after all
-- the writes finished, with file, block and errno; the buffer stays dirty
-- and is written once the fault is gone
UPDATE flt SET v = 'w' WHERE id < 100;
SELECT pg_uring_reset_stats();
SET pg_uring.test_fault = 'weio:0';
SELECT pgu_flush_error('flt');
SELECT isdirty FROM pg_buffercache
 WHERE relfilenode = pg_relation_filenode('flt') AND relforknumber = 0 AND relblocknumber = 0;
SELECT pgu_dirty('flt') > 0 AS dirty_left, sum(io.failures) > 0 AS failures_counted,
	   sum(s.errors) > 0 AS io_errors, sum(s.in_flight) AS in_flight
  FROM pg_uring_stats s JOIN pg_uring_stat_io io ON io.ring = s.ring AND io.io_kind = 'write-back';
RESET pg_uring.test_fault;
SELECT pg_uring_flush('flt') > 0 AS written, pgu_dirty('flt') AS dirty;

-- a short write (pg_uring.test_fault 'wshort:N', the write covering block N
-- ends in its middle): the blocks before it are written, it and the rest of
-- its run stay dirty, and the error says how much of the block was written
UPDATE flt SET v = 's' WHERE id < 300;
SET pg_uring.test_fault = 'wshort:1';
SELECT pgu_flush_error('flt');
SELECT relblocknumber, isdirty FROM pg_buffercache
 WHERE relfilenode = pg_relation_filenode('flt') AND relforknumber = 0 AND relblocknumber < 2
 ORDER BY 1;
RESET pg_uring.test_fault;
SELECT pg_uring_flush('flt') > 0 AS written, pgu_dirty('flt') AS dirty;

DROP VIEW flv;
DROP TABLE flt, flu;
DROP FUNCTION pgu_dirty(regclass);
DROP FUNCTION pgu_flush_error(regclass);
