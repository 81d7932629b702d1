/* pg_uring--1.0--1.1.sql: read-ahead for ordinary queries */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_uring UPDATE TO '1.1'" to load this file. \quit

-- one row per ring and kind of IO, shaped like PostgreSQL 16's pg_stat_io:
-- reads, writes, writebacks and fsyncs in blocks (NULL where a kind has no
-- such operation), ios the IOs that moved them
CREATE FUNCTION pg_uring_stat_io(
	OUT ring int4,
	OUT io_kind text,
	OUT ios int8,
	OUT reads int8,
	OUT writes int8,
	OUT writebacks int8,
	OUT fsyncs int8,
	OUT failures int8,
	OUT readahead_used int8,
	OUT readahead_wasted int8,
	OUT readahead_waited int8,
	OUT op_bytes int8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'pg_uring_stat_io'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE VIEW pg_uring_stat_io AS SELECT * FROM pg_uring_stat_io();
GRANT SELECT ON pg_uring_stat_io TO PUBLIC;
