#!/usr/bin/env bash
# docker-entrypoint.sh of the postgres look-alike. Like the official one: POSTGRES_PASSWORD / POSTGRES_USER /
# POSTGRES_DB, each also as *_FILE (a secret); an empty PGDATA is initialised with scram-sha-256 for TCP
# and the database created; started as root it drops to postgres, started as postgres it just runs.
# Not carried over: /docker-entrypoint-initdb.d, POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD.
set -Eeuo pipefail

# VAR or VAR_FILE (not both), else the default; exported as VAR.
file_env() {
  local var="$1" file_var="${1}_FILE" value="${2:-}"
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    echo "error: both $var and $file_var are set (but are exclusive)" >&2
    exit 1
  fi
  if [ -n "${!var:-}" ]; then value="${!var}"; elif [ -n "${!file_var:-}" ]; then value="$(<"${!file_var}")"; fi
  export "$var"="$value"
  unset "$file_var"
}

# `postgres --version` and the like only print something: no set-up for them.
wants_help() { [[ " $* " =~ \ (-\?|--help|--describe-config|-C|-V|--version)\  ]]; }

if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi

if [ "$1" = 'postgres' ] && ! wants_help "$@"; then
  if [ "$(id -u)" = '0' ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
  fi
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA" 2>/dev/null || :
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    file_env POSTGRES_PASSWORD
    file_env POSTGRES_USER postgres
    file_env POSTGRES_DB "$POSTGRES_USER"
    if [ -z "$POSTGRES_PASSWORD" ]; then
      echo 'error: the database is uninitialized and the superuser password is not specified:' \
        'set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE' >&2
      exit 1
    fi
    initdb -D "$PGDATA" --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
      --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256
    printf '\nhost all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
    printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
    if [ "$POSTGRES_DB" != 'postgres' ]; then
      # Socket only, as the official image does: nothing can connect over TCP before the setup is done.
      pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k /var/run/postgresql" -w start
      psql -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$POSTGRES_USER" -d postgres -q \
        --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
      pg_ctl -D "$PGDATA" -m fast -w stop
    fi
    echo 'PostgreSQL init process complete; ready for start up.'
  fi
  unset POSTGRES_PASSWORD
fi
exec "$@"
