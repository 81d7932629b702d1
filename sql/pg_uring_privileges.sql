--
-- Who may do what.  Statistics are public; the IOs in flight (which name
-- relation files and blocks) are for pg_monitor, file IO is not public.
--
CREATE ROLE regress_pgu_user LOGIN;
CREATE ROLE regress_pgu_reader LOGIN IN ROLE pg_read_server_files;
GRANT EXECUTE ON FUNCTION pg_uring_read_file(text, int8, int4) TO regress_pgu_user, regress_pgu_reader;

SELECT current_setting('data_directory') AS datadir \gset

SET ROLE regress_pgu_user;
SELECT count(*) AS rings FROM pg_uring_stats;
SELECT count(*) AS io_rows FROM pg_uring_stat_io;
SELECT count(*) AS writeback_rows FROM pg_uring_stat_writeback;
SELECT count(*) >= 0 AS database_readable FROM pg_uring_stat_database;
-- the IOs in flight name relation files and blocks: pg_monitor only
SELECT count(*) AS ios FROM pg_uring_ios;
SELECT count(*) AS ios FROM pg_uring_ios();
SELECT count(*) > 0 AS probe_rows FROM pg_uring_probe();
SELECT ring, mode FROM pg_uring_stats ORDER BY ring;
SELECT pg_uring_reset_stats();
SELECT * FROM pg_uring_batch(ARRAY['nop']);
SELECT pg_uring_fsync('global/pg_control');
SELECT * FROM pg_uring_bench('nop', 10);
SET pg_uring.test_hold_reap = on;
-- granted: inside the data directory only
SELECT length(pg_uring_read_file('global/pg_control', 0, 16)) AS len;
SELECT pg_uring_read_file('/etc/hostname');
SELECT pg_uring_read_file('../postgresql.conf');
SELECT pg_uring_read_file(:'datadir' || '/../x');
SELECT length(pg_uring_read_file(:'datadir' || '/global/pg_control', 0, 16)) AS abs_in_datadir;
RESET ROLE;

-- pg_read_server_files may read outside the data directory
SET ROLE regress_pgu_reader;
SELECT length(pg_uring_read_file('/etc/passwd', 0, 1)) AS len;
SELECT pg_uring_read_file('/nonexistent/file');
RESET ROLE;
-- pg_monitor may probe
GRANT pg_monitor TO regress_pgu_user;
SET ROLE regress_pgu_user;
SELECT count(*) > 0 AS probe_rows FROM pg_uring_probe();
SELECT count(*) >= 0 AS ios_readable FROM pg_uring_ios;
RESET ROLE;

DROP OWNED BY regress_pgu_user, regress_pgu_reader;
DROP ROLE regress_pgu_user;
DROP ROLE regress_pgu_reader;
DROP EXTENSION pg_uring;
-- after DROP EXTENSION the library stays loaded and the rings keep running
CREATE EXTENSION pg_uring;
SELECT count(*) AS rings FROM pg_uring_stats;
