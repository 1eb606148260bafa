#!/usr/bin/env bash
# A local PostgreSQL cluster (Debian's postgresql 15) for `POSTGRES=local` and the tests.
#
#   scripts/postgres.sh start DIR   initdb DIR if it holds no cluster, start it, create the
#                                   `canopy` database; prints the DATABASE_URL on stdout
#   scripts/postgres.sh stop DIR    fast shutdown (open transactions roll back)
#   scripts/postgres.sh url DIR     the DATABASE_URL only
#
# DIR is both the data directory and the unix-socket directory: no TCP port is opened, and
# only DIR's owner (and root) can reach the socket, so local connections use `trust`.
# initdb and pg_ctl refuse to run as root: as root they run as the package's `postgres`
# user (runuser), which then owns DIR; every directory above DIR must let it pass (o+x).
# Settings: PG_BIN [/usr/lib/postgresql/15/bin], PG_USER [postgres, when root].
set -euo pipefail

die() { echo "postgres: $*" >&2; exit 1; }
usage() { echo "usage: $0 start|stop|url DIR" >&2; exit 2; }

[[ $# -eq 2 ]] || usage
action=$1
dir=$2
[[ $dir == /* ]] || dir=$PWD/$dir
pg_bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
# The socket path (DIR/.s.PGSQL.5432) must fit in sun_path (107 bytes).
((${#dir} <= 90)) || die "path too long for a unix socket (max 90 characters): $dir"
[[ $dir =~ ^[A-Za-z0-9._/-]+$ ]] || die "DIR may hold only letters, digits and . _ / -: $dir"

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u "${PG_USER:-postgres}" -- "$@"
  else
    "$@"
  fi
}

url() { printf 'postgresql+asyncpg://canopy@/canopy?host=%s\n' "$dir"; }

prepare_dir() {
  [[ -x $pg_bin/initdb ]] || die "no PostgreSQL in $pg_bin (apt-get install postgresql, or 'make run POSTGRES=local')"
  mkdir -p "$dir"
  if [[ $(id -u) -eq 0 ]]; then
    local owner=${PG_USER:-postgres}
    id "$owner" >/dev/null 2>&1 || die "user $owner does not exist (it comes with Debian's postgresql package)"
    chown "$owner:" "$dir"
    runuser -u "$owner" -- test -w "$dir" \
      || die "user $owner cannot reach $dir: every directory above it needs o+x (chmod o+x …)"
  fi
  chmod 700 "$dir"
}

init_cluster() {
  as_owner "$pg_bin/initdb" -D "$dir" -U canopy --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir.initdb.log" 2>&1 \
    || { cat "$dir.initdb.log" >&2; die "initdb failed"; }
  rm -f "$dir.initdb.log"
  as_owner tee -a "$dir/postgresql.conf" >/dev/null <<EOF
# Canopy (scripts/postgres.sh): unix socket in the data directory only.
listen_addresses = ''
unix_socket_directories = '$dir'
unix_socket_permissions = 0700
max_connections = 200
log_min_messages = warning
EOF
}

start() {
  prepare_dir
  [[ -f $dir/PG_VERSION ]] || init_cluster
  if ! as_owner "$pg_bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    as_owner "$pg_bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start >/dev/null \
      || { tail -n 20 "$dir/server.log" >&2 || true; die "could not start the cluster in $dir"; }
  fi
  local exists
  exists=$("$pg_bin/psql" -h "$dir" -U canopy -d postgres -XAtq \
    -c "SELECT 1 FROM pg_database WHERE datname = 'canopy'")
  [[ $exists == 1 ]] || "$pg_bin/psql" -h "$dir" -U canopy -d postgres -Xq -c "CREATE DATABASE canopy" >/dev/null
  url
}

stop() {
  [[ -f $dir/PG_VERSION ]] || die "no cluster in $dir"
  if as_owner "$pg_bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    as_owner "$pg_bin/pg_ctl" -D "$dir" -m fast -w -t 60 stop >/dev/null
  fi
}

case $action in
  start) start ;;
  stop) stop ;;
  url) url ;;
  *) usage ;;
esac
