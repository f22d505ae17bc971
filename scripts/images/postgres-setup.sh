#!/bin/sh
# Runs inside the postgres look-alike's rootfs once postgresql-17 is in: user postgres becomes 999:999 as in
# the official image, Debian's cluster goes (the entrypoint makes one in PGDATA), the directories are made.
set -eu
old_uid=$(id -u postgres)
old_gid=$(id -g postgres)
if [ "$old_uid" != 999 ]; then
  groupmod -g 999 postgres
  usermod -u 999 -g 999 postgres
  find / -xdev \( -uid "$old_uid" -o -gid "$old_gid" \) -exec chown -h 999:999 {} +
fi
rm -rf /etc/postgresql/17 /var/lib/postgresql/17
mkdir -p /var/lib/postgresql/data /var/run/postgresql /docker-entrypoint-initdb.d
chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
chmod 1777 /var/lib/postgresql/data
chmod 3777 /var/run/postgresql
