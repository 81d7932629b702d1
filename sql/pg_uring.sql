--
-- pg_uring regression tests: the SQL interface of the shared rings.
-- Runs against an instance started by test/regress.sh or make installcheck
-- with test/regress.conf (pg_uring.rings = 2, pg_uring.queue_depth = 64,
-- pg_uring.max_ios = 128, pg_uring.bounce_buffers = 32) and data checksums.
--
CREATE EXTENSION pg_uring;

-- the instance has data checksums, however it was started (regress.sh, installcheck)
SHOW data_checksums;

-- the postmaster created the configured rings, in io_uring mode
SELECT ring, mode, sq_entries, cq_entries FROM pg_uring_stats ORDER BY ring;
SELECT name, setting, unit, context FROM pg_settings
 WHERE name LIKE 'pg_uring.%' ORDER BY name;

-- probe: the shared rings and what the kernel supports
SELECT name, value FROM pg_uring_probe()
 WHERE section = 'shared_rings' AND name IN ('mode', 'rings', 'sq_entries', 'cq_entries')
 ORDER BY name;
SELECT name, value FROM pg_uring_probe() WHERE section IN ('kernel', 'opcode') ORDER BY section, name;
SELECT count(*) AS host_rows FROM pg_uring_probe() WHERE section = 'host' AND value <> '';
SELECT (value::int8 > 0) AS rings_map_memory FROM pg_uring_probe() WHERE name = 'mapped_bytes_total';

SELECT pg_uring_reset_stats();

-- single ops
SELECT seq, op, flags, result, error FROM pg_uring_batch(ARRAY['nop']);
SELECT seq, op, flags, result, error FROM pg_uring_batch(ARRAY['fail']);
SELECT seq, op, result FROM pg_uring_batch(ARRAY['read global/pg_control 0 100', 'read global/pg_control 8000 1000']);
SELECT seq, op, result FROM pg_uring_batch(ARRAY['fsync global/pg_control', 'fdatasync global/pg_control']);
SELECT * FROM pg_uring_batch(ARRAY[]::text[]);

-- a linked chain runs in order; a failed head cancels the rest of the chain only
SELECT seq, op, flags, result, completion_order FROM pg_uring_batch(ARRAY['nop+link', 'nop+link', 'nop']);
SELECT seq, op, flags, result, error FROM pg_uring_batch(ARRAY['fail+link', 'nop+link', 'nop', 'nop']);
SELECT seq, op, flags, result, error FROM pg_uring_batch(ARRAY['nop+link', 'fail+link', 'nop']);
-- a chain the kernel takes in two parts (a short submit, forced here) stays
-- one chain: what it did not take runs only after what it took succeeded,
-- and is cancelled if that failed
SET pg_uring.test_fault = 'ssplit:1';
SELECT seq, op, flags, result, error FROM pg_uring_batch(ARRAY['fail+link', 'nop+link', 'nop', 'nop']);
SELECT seq, op, flags, result, completion_order FROM pg_uring_batch(ARRAY['nop+link', 'nop+link', 'nop']);
SET pg_uring.test_fault = 'ssplit:2';
SELECT seq, op, flags, result, error FROM pg_uring_batch(ARRAY['nop+link', 'fail+link', 'nop', 'nop']);
RESET pg_uring.test_fault;
-- a short read breaks a chain just like an error (pg_control is 8192 bytes)
SELECT seq, op, flags, result, error FROM pg_uring_batch(ARRAY['read+link global/pg_control 4096 8192', 'nop']);
SELECT seq, op, flags, result FROM pg_uring_batch(ARRAY['read+link global/pg_control 0 8192', 'nop']);

-- a drain barrier completes after everything submitted before it
SELECT op, flags, result, completion_order = 5 AS completed_last
  FROM pg_uring_batch(ARRAY['read+async global/pg_control 0 8192', 'read+async global/pg_control 0 4096',
							'read+async global/pg_control 4096 4096', 'read+async global/pg_control 0 512',
							'nop+drain'])
 WHERE op = 'nop';

-- the counters saw all of it: 25 submitted, 8 linked, 1 drained, 3 errors
-- (the three EBADF; a short read is not an error), 4 cancelled
SELECT sum(submitted) AS submitted, sum(completed) AS completed, sum(in_flight) AS in_flight,
	   sum(linked) AS linked, sum(drained) AS drained, sum(errors) AS errors,
	   sum(cancelled) AS cancelled,
	   sum(reaped_by_issuer + reaped_by_other + reaped_by_reaper) = sum(completed) AS all_reaped
  FROM pg_uring_stats;

-- reads through the rings return the same bytes as core's file access
CREATE TABLE pgu_t AS SELECT g AS id, md5(g::text) AS val FROM generate_series(1, 5000) g;
CHECKPOINT;
SELECT pg_relation_size('pgu_t') > 65536 AS several_blocks;
SELECT md5(pg_uring_read_file(pg_relation_filepath('pgu_t'), 0, pg_relation_size('pgu_t')::int4)) =
	   md5(pg_read_binary_file(pg_relation_filepath('pgu_t'))) AS same_bytes;
SELECT md5(pg_uring_read_file(pg_relation_filepath('pgu_t'), 12345, 20000)) =
	   md5(substring(pg_read_binary_file(pg_relation_filepath('pgu_t')) FROM 12346 FOR 20000)) AS same_slice;
-- reading past the end returns what is there
SELECT length(pg_uring_read_file('global/pg_control', 8000, 1000)) AS tail_bytes;
SELECT length(pg_uring_read_file('global/pg_control', 100000, 10)) AS past_eof;
SELECT pg_uring_fsync(pg_relation_filepath('pgu_t'));
SELECT pg_uring_fsync('global', false);

-- bad input
SELECT pg_uring_read_file('global/pg_control', -1, 10);
SELECT pg_uring_read_file('global/pg_control', 0, 2000000);
SELECT pg_uring_read_file('no_such_file');
SELECT pg_uring_fsync('no_such_file');
SELECT * FROM pg_uring_batch(ARRAY['frobnicate']);
SELECT * FROM pg_uring_batch(ARRAY['nop+sideways']);
SELECT * FROM pg_uring_batch(ARRAY['nop global/pg_control']);
SELECT * FROM pg_uring_batch(ARRAY['read']);
SELECT * FROM pg_uring_batch(ARRAY['read global/pg_control -5']);
SELECT * FROM pg_uring_batch(ARRAY['read global/pg_control 0 9000']);
SELECT * FROM pg_uring_batch(ARRAY['fsync global/pg_control 0']);
SELECT * FROM pg_uring_batch(ARRAY['nop', NULL]);
SELECT * FROM pg_uring_batch(ARRAY[['nop'], ['nop']]);
SELECT * FROM pg_uring_batch(array_fill('nop'::text, ARRAY[129]));
-- reads land in bounce pages: at most pg_uring.bounce_buffers of them at once
SELECT count(*) AS ios, count(*) FILTER (WHERE result = 512) AS ok
  FROM pg_uring_batch(array_fill('read global/pg_control 0 512'::text, ARRAY[32]));
SELECT * FROM pg_uring_batch(array_fill('read global/pg_control 0 512'::text, ARRAY[33]));
-- one read makes the whole batch take bounce slots
SELECT * FROM pg_uring_batch(array_cat(array_fill('nop'::text, ARRAY[32]), ARRAY['read global/pg_control 0 512']));

-- a batch larger than a ring's submission queue is split between chains
SELECT count(*) AS ios, count(*) FILTER (WHERE result = 0) AS ok
  FROM pg_uring_batch(array_fill('nop'::text, ARRAY[128]));

-- benchmark function
SELECT op, depth, ios, seconds > 0 AS timed, iops > 0 AS has_iops, p50_us <= p99_us AS ordered
  FROM pg_uring_bench('nop', 2000, 8);
SELECT op, depth, ios, seconds > 0 AS timed
  FROM pg_uring_bench('read', 500, 4, pg_relation_filepath('pgu_t'));
SELECT * FROM pg_uring_bench('write', 10);
SELECT * FROM pg_uring_bench('nop', 0);
SELECT * FROM pg_uring_bench('nop', 10, 129);
SELECT * FROM pg_uring_bench('read', 10, 33, pg_relation_filepath('pgu_t'));
SELECT op, depth, ios FROM pg_uring_bench('read', 64, 32, pg_relation_filepath('pgu_t'));
SELECT * FROM pg_uring_bench('read', 10, 1);
SELECT * FROM pg_uring_bench('read', 10, 1, 'global/pg_filenode.map');

-- nothing left in flight, nothing leaked, and the books balance
SELECT count(*) AS ios_in_table FROM pg_uring_ios;
SELECT sum(in_flight) AS in_flight, sum(submitted) = sum(completed) AS balanced FROM pg_uring_stats;

SELECT pg_uring_reset_stats();
SELECT sum(submitted) AS submitted, sum(completed) AS completed, sum(errors) AS errors FROM pg_uring_stats;

DROP TABLE pgu_t;
