--
-- Read-ahead for ordinary queries: plans and results are core's, the
-- wrapper still counts what the node's filter removes and still projects,
-- the settings have bounds and units, and pg_uring_stat_io has its shape.
-- (What is read ahead, and when, is in the TAP tests: it depends on timing.)
--
CREATE EXTENSION IF NOT EXISTS pg_uring;
SET max_parallel_workers_per_gather = 0;
CREATE TABLE ra (id int NOT NULL, r int NOT NULL, pad text NOT NULL);
INSERT INTO ra SELECT g, (g * 7919) % 20000, repeat('r', 100)
  FROM generate_series(1, 20000) g;
CREATE INDEX ra_r ON ra (r);
VACUUM ANALYZE ra;

-- the same plan with read-ahead on and off
SET pg_uring.readahead = on;
EXPLAIN (COSTS OFF) SELECT count(*) FROM ra WHERE id % 100 = 1;
SET pg_uring.readahead = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM ra WHERE id % 100 = 1;

-- the filter moved into the wrapper: its rows removed are still counted
SET pg_uring.readahead = on;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
  SELECT count(*) FROM ra WHERE id % 100 = 1;
SELECT count(*), sum(id) FROM ra WHERE id % 100 = 1;
-- and the projection
SELECT id * 2 AS twice, r + 1 AS r1 FROM ra WHERE id < 4 ORDER BY 1;
-- a bitmap heap scan and an index scan
SET enable_seqscan = off;
SET enable_indexscan = off;
EXPLAIN (COSTS OFF) SELECT count(*), sum(id) FROM ra WHERE r BETWEEN 100 AND 300;
SELECT count(*), sum(id) FROM ra WHERE r BETWEEN 100 AND 300;
RESET enable_indexscan;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT count(*), sum(id) FROM ra WHERE r BETWEEN 100 AND 300;
SELECT count(*), sum(id) FROM ra WHERE r BETWEEN 100 AND 300;
-- backward: left to core
SELECT id FROM ra WHERE r BETWEEN 100 AND 110 ORDER BY r DESC;
RESET enable_seqscan;
RESET enable_bitmapscan;

-- settings
SET pg_uring.readahead_distance = 0;
SET pg_uring.readahead_distance = 2000;
SET pg_uring.readahead_distance = '1MB';
SHOW pg_uring.readahead_distance;
RESET pg_uring.readahead_distance;
SET pg_uring.readahead = maybe;

-- pg_uring_stat_io: one row per ring and kind, NULL where a kind has no
-- such operation
\d pg_uring_stat_io
SELECT io_kind, count(*) AS rings, bool_and(op_bytes = 8192) AS op_bytes_8k
  FROM pg_uring_stat_io GROUP BY 1 ORDER BY 1;
SELECT io_kind, ios IS NULL AS no_ios, reads IS NULL AS no_reads,
       writes IS NULL AS no_writes, fsyncs IS NULL AS no_fsyncs,
       readahead_used IS NULL AS no_used
  FROM pg_uring_stat_io WHERE ring = 0 ORDER BY 1;
SELECT extversion FROM pg_extension WHERE extname = 'pg_uring';
DROP TABLE ra;
