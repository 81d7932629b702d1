--
-- pg_uring_prewarm and pg_uring_prewarm_blocks: asynchronous reads into
-- shared_buffers.  A bulk CREATE TABLE AS writes through a small ring of
-- buffers, so most of its blocks are not in shared_buffers afterwards:
-- those are what the prewarm must read.
--
CREATE EXTENSION IF NOT EXISTS pg_uring;
CREATE EXTENSION pg_buffercache;
SET pg_uring.prewarm_depth = 8;

-- bigger than a quarter of shared_buffers (128MB here), so sequential scans
-- use a small ring too and do not load it either
CREATE TABLE pw AS
  SELECT g AS id, md5(g::text) AS v, repeat('x', 200) AS pad
  FROM generate_series(1, 150000) g;
CREATE INDEX pw_id ON pw (id);
CHECKPOINT;
-- PostgreSQL 17 leaves most of a new table in shared_buffers: evict it
-- there (pg_buffercache_evict is new in 17), so that there is as much to read
DO $$
BEGIN
	IF to_regproc('pg_buffercache_evict') IS NOT NULL THEN
		PERFORM pg_buffercache_evict(bufferid) FROM pg_buffercache
		 WHERE relfilenode = pg_relation_filenode('pw')
		   AND reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database());
	END IF;
END $$;
SELECT pg_relation_size('pw') / 8192 AS pw_blocks \gset
SELECT :pw_blocks > 4096 AS big_enough;

CREATE FUNCTION cached_blocks(rel regclass, fork text DEFAULT 'main',
							  first int8 DEFAULT 0, last int8 DEFAULT 4294967295) RETURNS int8
LANGUAGE sql AS $$
  SELECT count(*) FROM pg_buffercache b
   WHERE b.relfilenode = pg_relation_filenode(rel)
	 AND b.reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
	 AND b.relforknumber = CASE fork WHEN 'main' THEN 0 WHEN 'fsm' THEN 1 WHEN 'vm' THEN 2 ELSE 3 END
	 AND b.relblocknumber BETWEEN first AND last
$$;

-- (id + 0: PostgreSQL 16 and later would read pw through its index to
-- give the aggregate its order, and cache all of it)
SELECT md5(string_agg(v || pad, ',' ORDER BY id + 0)) AS digest_before FROM pw \gset
SELECT cached_blocks('pw') < :pw_blocks / 2 AS most_blocks_not_cached;

-- a range: returns exactly the blocks it had to read
SELECT 100 - cached_blocks('pw', 'main', 1000, 1099) AS expect \gset
SELECT pg_uring_prewarm('pw', 'main', 1000, 1099) = :expect AS range_read_the_missing;
SELECT cached_blocks('pw', 'main', 1000, 1099) AS range_cached_now;

-- a block list, in any order, with duplicates: each missing block read once
SELECT count(*) AS expect FROM (VALUES (2500), (700), (2501), (3)) v(b)
 WHERE cached_blocks('pw', 'main', b, b) = 0 \gset
SELECT pg_uring_prewarm_blocks('pw', ARRAY[2500, 700, 700, 2501, 3, 2500]::int8[]) = :expect AS list_read_the_missing;
SELECT cached_blocks('pw', 'main', 700, 700) + cached_blocks('pw', 'main', 2500, 2501) +
	   cached_blocks('pw', 'main', 3, 3) AS list_cached_now;

-- the whole table: every block cached (valid) afterwards, so none was left
-- IO-in-progress (pg_buffercache shows only valid buffers with their tags)
SELECT :pw_blocks - cached_blocks('pw') AS expect \gset
SELECT pg_uring_prewarm('pw') = :expect AS read_the_missing_blocks;
SELECT cached_blocks('pw') = :pw_blocks AS all_cached;
-- and the pages are the right ones
SELECT md5(string_agg(v || pad, ',' ORDER BY id + 0)) = :'digest_before' AS same_contents FROM pw;
-- already cached: nothing to read
SELECT pg_uring_prewarm('pw') AS second_time;
SELECT pg_uring_prewarm('pw', 'main', 0, 9) AS range_cached;

-- the index, and its other forks
SELECT cached_blocks('pw_id') AS index_cached_before \gset
SELECT pg_uring_prewarm('pw_id') = pg_relation_size('pw_id') / 8192 - :index_cached_before AS index_read;
SELECT cached_blocks('pw_id') = pg_relation_size('pw_id') / 8192 AS index_all_cached;
VACUUM pw;
SELECT pg_uring_prewarm('pw', 'fsm') AS fsm_read, pg_uring_prewarm('pw', 'vm') AS vm_read \gset
SELECT cached_blocks('pw', 'fsm') = pg_relation_size('pw', 'fsm') / 8192 AS fsm_all_cached,
	   cached_blocks('pw', 'vm') = pg_relation_size('pw', 'vm') / 8192 AS vm_all_cached,
	   pg_relation_size('pw', 'fsm') > 0 AND pg_relation_size('pw', 'vm') > 0 AS forks_exist;

SELECT pg_uring_prewarm_blocks('pw', ARRAY[5, 3, 3, 1000, 2]::int8[]) AS list_cached;
SELECT pg_uring_prewarm_blocks('pw', ARRAY[]::int8[]) AS empty_list;

-- the buffer reads show in the statistics, completed by someone
SELECT sum(io.ios) > 0 AS reads_counted, sum(io.reads) >= :pw_blocks / 2 AS blocks_counted,
	   sum(io.failures) AS failures, sum(s.in_flight) AS in_flight
  FROM pg_uring_stats s JOIN pg_uring_stat_io io ON io.ring = s.ring AND io.io_kind = 'prewarm';
SELECT count(*) AS ios_left FROM pg_uring_ios;

-- temporary tables live in local buffers: read synchronously through core,
-- nothing through the rings (here every block is in local buffers already)
CREATE TEMP TABLE pw_temp AS SELECT g FROM generate_series(1, 10000) g;
SELECT sum(ios) AS reads_before FROM pg_uring_stat_io WHERE io_kind = 'prewarm' \gset
SELECT pg_uring_prewarm('pw_temp') AS temp_read;
SELECT sum(ios) = :reads_before AS temp_not_through_rings
  FROM pg_uring_stat_io WHERE io_kind = 'prewarm';
SELECT sum(g) FROM pw_temp;
-- system catalogs are read synchronously too: nothing through the rings
SELECT pg_uring_prewarm('pg_class') BETWEEN 0 AND pg_relation_size('pg_class') / 8192 AS catalog_read;
SELECT sum(ios) = :reads_before AS catalog_not_through_rings
  FROM pg_uring_stat_io WHERE io_kind = 'prewarm';

-- bad input
SELECT pg_uring_prewarm('pw', 'nosuchfork');
SELECT pg_uring_prewarm('pw', 'init');
SELECT pg_uring_prewarm('pw', 'main', -1);
SELECT pg_uring_prewarm('pw', 'main', :pw_blocks);
SELECT pg_uring_prewarm('pw', 'main', 10, 5);
SELECT pg_uring_prewarm('pw', 'main', 0, :pw_blocks);
SELECT pg_uring_prewarm(NULL);
SELECT pg_uring_prewarm('pw', NULL);
SELECT pg_uring_prewarm_blocks('pw', ARRAY[1, NULL]::int8[]);
SELECT pg_uring_prewarm_blocks('pw', ARRAY[:pw_blocks]::int8[]);
SELECT pg_uring_prewarm_blocks('pw', ARRAY[-1]::int8[]);
SELECT pg_uring_prewarm_blocks('pw', ARRAY[[1], [2]]::int8[]);
CREATE VIEW pw_view AS SELECT * FROM pw;
SELECT pg_uring_prewarm('pw_view');
CREATE TABLE pw_parted (id int) PARTITION BY RANGE (id);
SELECT pg_uring_prewarm('pw_parted');
-- an empty table has nothing to read
CREATE TABLE pw_empty (id int);
SELECT pg_uring_prewarm('pw_empty') AS empty_table;
SELECT pg_uring_prewarm('pw_empty', 'main', 0, 0) AS empty_range;

-- like pg_prewarm: SELECT privilege on the relation is required
CREATE ROLE regress_pgu_pw LOGIN;
SET ROLE regress_pgu_pw;
SELECT pg_uring_prewarm('pw');
SELECT pg_uring_prewarm_blocks('pw', ARRAY[1]::int8[]);
RESET ROLE;
GRANT SELECT ON pw TO regress_pgu_pw;
SET ROLE regress_pgu_pw;
SELECT pg_uring_prewarm('pw') AS granted;
-- the test-only fault setting is for superusers
SET pg_uring.test_fault = 'eio:1';
RESET ROLE;
SET pg_uring.test_fault = 'nonsense';
SET pg_uring.test_fault = 'eio:';
DROP OWNED BY regress_pgu_pw;
DROP ROLE regress_pgu_pw;

DROP VIEW pw_view;
DROP TABLE pw, pw_parted, pw_empty;
DROP FUNCTION cached_blocks(regclass, text, int8, int8);
DROP EXTENSION pg_buffercache;
