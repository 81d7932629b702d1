#!/usr/bin/env bash
# test/closefds.sh CMD...: runs CMD with no descriptor open but standard
# input, output and error.  The servers the TAP tests start must inherit no
# descriptor from whatever ran the suite (a CI runner's pipes): tests such
# as 303 count the descriptors a postmaster starts with against
# max_files_per_process.  Perl marks its own close-on-exec.  test/tap.sh and
# the Makefile's prove_installcheck both run prove through this.
for fd in $(ls /proc/$$/fd); do
	# (255: bash's own script descriptor, close-on-exec)
	case $fd in 0 | 1 | 2 | 255) continue ;; esac
	{ eval "exec $fd>&-"; } 2>/dev/null || true
done
exec "$@"
