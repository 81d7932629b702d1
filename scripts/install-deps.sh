#!/usr/bin/env bash
# Installs everything pg_uring needs to build, run and test on Debian 12.
# Run as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
	ca-certificates make gcc libc6-dev \
	postgresql-15 postgresql-server-dev-15 postgresql-contrib \
	liburing-dev libipc-run-perl perl procps sudo fio \
	mount e2fsprogs util-linux debootstrap \
	postgresql-server-dev-all debhelper dpkg-dev fakeroot python3
