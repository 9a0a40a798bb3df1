#!/usr/bin/env bash
# Entrypoint of the test bed's postgres stand-in. It does what the official image's entrypoint is
# documented to do (written for the test bed, same function names so scripts can source it):
#   - `postgres ...` (or just flags): started as root, it fixes ownership of PGDATA and re-executes
#     itself as `postgres` (gosu); started as `postgres` it goes straight on;
#   - an empty PGDATA is initialised: initdb with POSTGRES_USER and POSTGRES_PASSWORD (or *_FILE)
#     and POSTGRES_INITDB_ARGS, `host all all all <method>` appended to pg_hba.conf
#     (POSTGRES_HOST_AUTH_METHOD, default the server's password_encryption), POSTGRES_DB created,
#     /docker-entrypoint-initdb.d/*.sh|.sql|.sql.gz run against a socket-only temporary server;
#   - a PGDATA that holds a cluster is left as it is (the env is then ignored);
#   - any other command is executed as given.
set -Eeo pipefail

# file_env VAR [DEFAULT]: VAR from itself or from the file VAR_FILE names (not both).
file_env() {
  local var=$1 file_var="${1}_FILE" default=${2:-} value
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    echo >&2 "error: both $var and $file_var are set (but are exclusive)"
    exit 1
  fi
  value=$default
  if [ -n "${!var:-}" ]; then
    value=${!var}
  elif [ -n "${!file_var:-}" ]; then
    value=$(<"${!file_var}")
  fi
  export "$var=$value"
  unset "$file_var"
}

docker_setup_env() {
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER postgres
  file_env POSTGRES_DB "$POSTGRES_USER"
  file_env POSTGRES_INITDB_ARGS
  : "${POSTGRES_HOST_AUTH_METHOD:=}"
  declare -g DATABASE_ALREADY_EXISTS=''
  if [ -s "$PGDATA/PG_VERSION" ]; then DATABASE_ALREADY_EXISTS=true; fi
}

docker_create_db_directories() {
  mkdir -p "$PGDATA"
  chmod 00700 "$PGDATA" || :
  mkdir -p /var/run/postgresql || :
  chmod 03775 /var/run/postgresql || :
  if [ "$(id -u)" = 0 ]; then
    find "$PGDATA" \! -user postgres -exec chown postgres '{}' +
    find /var/run/postgresql \! -user postgres -exec chown postgres '{}' +
  fi
}

docker_verify_minimum_env() {
  if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
    cat >&2 <<'MSG'
Error: Database is uninitialized and superuser password is not specified.
       Set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE), or POSTGRES_HOST_AUTH_METHOD=trust.
MSG
    exit 1
  fi
}

docker_init_database_dir() {
  # The password reaches initdb through a pipe, never a command line.
  eval 'initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"
}

pg_setup_hba_conf() {
  if [ "${1:-}" = postgres ]; then shift; fi
  if [ -z "$POSTGRES_HOST_AUTH_METHOD" ]; then
    POSTGRES_HOST_AUTH_METHOD=$(postgres -C password_encryption "$@")
  fi
  printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
}

docker_temp_server_start() {
  if [ "${1:-}" = postgres ]; then shift; fi
  # Unix socket only: nobody connects before initialisation is complete.
  set -- "$@" -c listen_addresses='' -p "${PGPORT:-5432}"
  PGUSER="${PGUSER:-$POSTGRES_USER}" pg_ctl -D "$PGDATA" -o "$(printf '%q ' "$@")" -w start
}

docker_temp_server_stop() {
  PGUSER="${PGUSER:-postgres}" pg_ctl -D "$PGDATA" -m fast -w stop
}

# docker_process_sql [psql args]: runs SQL as POSTGRES_USER on POSTGRES_DB (or --dbname).
docker_process_sql() {
  local args=(--username "$POSTGRES_USER" --no-password --no-psqlrc)
  if [ -n "$POSTGRES_DB" ]; then args+=(--dbname "$POSTGRES_DB"); fi
  PGHOST='' PGHOSTADDR='' psql -v ON_ERROR_STOP=1 "${args[@]}" "$@"
}

docker_setup_db() {
  local exists
  exists=$(POSTGRES_DB='' docker_process_sql --dbname postgres --set db="$POSTGRES_DB" --tuples-only \
    <<<"SELECT 1 FROM pg_database WHERE datname = :'db';")
  if [ -z "$exists" ]; then
    POSTGRES_DB='' docker_process_sql --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    echo "created database $POSTGRES_DB"
  fi
}

docker_process_init_files() {
  local f
  for f in "$@"; do
    case "$f" in
      *.sh)
        if [ -x "$f" ]; then
          echo "$0: running $f"
          "$f"
        else
          echo "$0: sourcing $f"
          # shellcheck disable=SC1090
          . "$f"
        fi
        ;;
      *.sql) echo "$0: running $f" && docker_process_sql -f "$f" ;;
      *.sql.gz) echo "$0: running $f" && gunzip -c "$f" | docker_process_sql ;;
      *) echo "$0: ignoring $f" ;;
    esac
  done
}

_main() {
  if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi
  if [ "$1" = postgres ]; then
    docker_setup_env
    docker_create_db_directories
    if [ "$(id -u)" = 0 ]; then exec gosu postgres "${BASH_SOURCE[0]}" "$@"; fi
    if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
      docker_verify_minimum_env
      ls /docker-entrypoint-initdb.d/ >/dev/null # fails early if it is unreadable
      docker_init_database_dir
      pg_setup_hba_conf "$@"
      export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
      docker_temp_server_start "$@"
      docker_setup_db
      docker_process_init_files /docker-entrypoint-initdb.d/*
      docker_temp_server_stop
      unset PGPASSWORD
      echo 'PostgreSQL init process complete; ready for start up.'
    else
      echo 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
    fi
  fi
  exec "$@"
}

# Sourced (to reuse the functions) it does nothing by itself.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  _main "$@"
fi
