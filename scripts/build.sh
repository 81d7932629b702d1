#!/usr/bin/env bash
# Builds pg_uring with warnings as errors and installs it into the
# PostgreSQL 15 found by pg_config.  Run as root.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
cd "$top"
make -s clean PG_CONFIG="$PG_CONFIG" with_llvm=no
make -s PG_CONFIG="$PG_CONFIG" with_llvm=no PGU_EXTRA_CFLAGS=-Werror
make -s install PG_CONFIG="$PG_CONFIG" with_llvm=no
