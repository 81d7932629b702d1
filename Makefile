# pg_uring: shared io_uring rings for PostgreSQL 15 (PGXS)

MODULE_big = pg_uring
OBJS = \
	src/pg_uring.o \
	src/ring.o \
	src/io.o \
	src/fileops.o \
	src/reaper.o \
	src/stats.o \
	src/probe.o \
	src/sqlio.o \
	src/bufop.o \
	src/bufread.o \
	src/prewarm.o \
	src/readahead.o \
	src/rasource.o \
	src/wal.o \
	src/writeop.o \
	src/writeback.o \
	src/flush.o \
	src/writer.o

EXTENSION = pg_uring
DATA = pg_uring--1.0.sql pg_uring--1.0--1.1.sql
PGFILEDESC = "pg_uring - shared io_uring rings"

# the regression suite runs against a temporary instance that test/regress.sh
# starts with the library preloaded and data checksums on
REGRESS = pg_uring
REGRESS_OPTS = --inputdir=. --outputdir=.

SHLIB_LINK += -luring
# test only: "make PGU_TEST_BREAK_WAL_RULE=1" builds the power-loss harness's
# negative control (page writes ignore the WAL rule, and a sync flush does
# not flush WAL at its end); never install it as the server's pg_uring
ifdef PGU_TEST_BREAK_WAL_RULE
PG_CPPFLAGS += -DPGU_TEST_BREAK_WAL_RULE
endif
PG_CPPFLAGS += -I$(srcdir)/src
PG_CFLAGS += -Wall -Wmissing-prototypes -Wpointer-arith -Wendif-labels \
	-Wformat-security -Wno-format-truncation $(PGU_EXTRA_CFLAGS)

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

.PHONY: test regresscheck tapcheck
regresscheck:
	PG_CONFIG=$(PG_CONFIG) bash test/regress.sh

tapcheck:
	PG_CONFIG=$(PG_CONFIG) bash test/tap.sh

test: regresscheck tapcheck

# every module includes the shared headers: rebuild on any header change
$(OBJS): $(wildcard $(srcdir)/src/*.h)
