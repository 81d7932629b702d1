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

# The pg_regress suite (sql/, expected/).  "make installcheck" runs it
# against a temporary instance that pg_regress starts itself with the
# settings of test/regress.conf (pg_uring preloaded) and data checksums on;
# test/regress.sh ("make regresscheck") starts one of its own with the same
# settings.  The files run in the order test/regress.sh gives them.
REGRESS = pg_uring pg_uring_privileges pg_uring_prewarm pg_uring_wal \
	pg_uring_flush pg_uring_readahead pg_uring_stats
REGRESS_OPTS = --temp-instance=$(CURDIR)/tmp_check/instance \
	--temp-config=$(srcdir)/test/regress.conf

# The TAP suite (test/t/*.pl, its modules in test/t): "make
# prove_installcheck", or "make installcheck PGU_INSTALLCHECK_TAP=1" for
# both suites.  PGXS's installcheck runs prove as well whenever TAP_TESTS
# is set, and the TAP suite takes long and needs a sudo rule for one file
# (README.md), so plain installcheck leaves it out.
ifdef PGU_INSTALLCHECK_TAP
TAP_TESTS = 1
endif
PROVE_TESTS = $(patsubst $(srcdir)/%,%,$(sort $(wildcard $(srcdir)/test/t/*.pl)))

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

# Data checksums in the temporary instance of "make installcheck".  From
# PostgreSQL 17 on, pg_regress passes PG_TEST_INITDB_EXTRA_OPTS to initdb.
# Before that it has no such option: pg_regress runs initdb (and postgres,
# pg_ctl, psql) from --bindir, so it gets a directory of symbolic links to
# the real programs in which initdb is a script that adds -k.
PGU_CHECKSUM_BINDIR = $(CURDIR)/tmp_check/bin
ifeq ($(shell test $(MAJORVERSION) -ge 17 && echo yes),yes)
installcheck: override export PG_TEST_INITDB_EXTRA_OPTS := -k $(PG_TEST_INITDB_EXTRA_OPTS)
installcheck: pgu-tmp-check
else
installcheck: pgu-checksum-bindir
REGRESS_OPTS += --bindir=$(PGU_CHECKSUM_BINDIR)
endif

# pg_regress creates the temporary instance's directory, not its parent
.PHONY: pgu-tmp-check pgu-checksum-bindir
pgu-tmp-check:
	$(MKDIR_P) '$(CURDIR)/tmp_check'

pgu-checksum-bindir: pgu-tmp-check
	rm -rf '$(PGU_CHECKSUM_BINDIR)'
	$(MKDIR_P) '$(PGU_CHECKSUM_BINDIR)'
	for prog in '$(bindir)'/*; do \
		ln -s "$$prog" '$(PGU_CHECKSUM_BINDIR)'/ || exit 1; \
	done
	rm '$(PGU_CHECKSUM_BINDIR)/initdb'
	printf '%s\n' '#!/bin/sh' \
		'# written by pg_uring'"'"'s Makefile: data checksums for pg_regress'"'"'s temporary instance' \
		'exec "$(bindir)/initdb" --data-checksums "$$@"' >'$(PGU_CHECKSUM_BINDIR)/initdb'
	chmod 755 '$(PGU_CHECKSUM_BINDIR)/initdb'

# the TAP modules (PgUringTest.pm, ...) beside PostgreSQL's; PROVE_FLAGS
# stays free for the caller's own flags (PROVE_FLAGS=--verbose)
PG_PROVE_FLAGS += -I $(srcdir)/test/t

# prove runs with no inherited descriptor above stderr, as from test/tap.sh
# (test/closefds.sh says why)
PGU_PROVE := $(PROVE)
PROVE = bash $(abspath $(srcdir))/test/closefds.sh $(PGU_PROVE)

# where the TAP nodes keep data directories and logs: 15 derives both from
# TESTDIR (which PGXS sets), 17 reads these two, as test/tap.sh sets them
prove_installcheck installcheck: export TESTDATADIR = $(CURDIR)/tmp_check
prove_installcheck installcheck: export TESTLOGDIR = $(CURDIR)/tmp_check/log

.PHONY: prove_installcheck
prove_installcheck:
	$(prove_installcheck)

.PHONY: test regresscheck tapcheck
regresscheck:
	PG_CONFIG=$(PG_CONFIG) bash test/regress.sh

tapcheck:
	PG_CONFIG=$(PG_CONFIG) bash test/tap.sh

test: regresscheck tapcheck

# every module includes the shared headers: rebuild on any header change
$(OBJS): $(wildcard $(srcdir)/src/*.h)
