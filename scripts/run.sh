#!/usr/bin/env bash
# `make run`: the whole stack in the foreground — gunicorn (one uvicorn worker, through
# scripts/api.sh; REPLICAS of them) behind nginx with TLS, all logging to this terminal.
#
#  1. creates .env from .env.example with a random SECRET_KEY if there is none, and loads
#     it (variables already set in the environment win);
#  2. with POSTGRES=local, starts a PostgreSQL cluster in DATA_DIR/postgres (unix socket
#     only, scripts/postgres.sh) and points DATABASE_URL at it; it is stopped at the end;
#  3. makes a self-signed certificate under DATA_DIR/certs unless TLS_CERT_FILE and
#     TLS_KEY_FILE are configured;
#  4. renders nginx/canopy.conf.template into DATA_DIR/run/nginx-HTTPS_PORT/ and checks it;
#  5. starts REPLICAS gunicorn processes (ports API_PORT, API_PORT+1, ...) and nginx; Ctrl-C
#     or SIGTERM stops them all. A gunicorn that dies (a crash, kill -9) is started again
#     while nginx keeps serving (restart_api: at most API_MAX_RESTARTS, 5, within a minute);
#     if nginx dies, or a gunicorn keeps dying, the others are stopped too and the script
#     exits non-zero.
#
# Honours API_HOST, API_PORT, HTTPS_PORT, HTTP_PORT, DATA_DIR (two copies with different
# values run side by side), TLS_CERT_FILE, TLS_KEY_FILE, WEB_ROOT, NGINX_BIN,
# NGINX_LISTEN_ADDR, NGINX_USER, NGINX_WS_CONN_PER_IP, NGINX_AUTH_CONN_PER_IP, REPLICAS (1;
# more than one needs PostgreSQL: POSTGRES=local or a postgresql DATABASE_URL), POSTGRES
# (unset | local), API_MAX_RESTARTS (5).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo_root=$PWD
# shellcheck source=scripts/lib/dotenv.sh disable=SC1091
. scripts/lib/dotenv.sh

log() { printf 'run: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# ---- 1. settings ------------------------------------------------------------------------
if [[ ! -f .env ]]; then
  secret=$(openssl rand -hex 32 2>/dev/null || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  (
    umask 077
    if [[ -f .env.example ]]; then
      if grep -q '^SECRET_KEY=' .env.example; then
        sed "s|^SECRET_KEY=.*|SECRET_KEY=$secret|" .env.example >.env
      else
        { cat .env.example; printf '\nSECRET_KEY=%s\n' "$secret"; } >.env
      fi
    else
      printf '# Made by scripts/run.sh (no .env.example found)\nSECRET_KEY=%s\n' "$secret" >.env
    fi
  )
  log "created .env with a random SECRET_KEY"
fi
canopy_load_dotenv .env

export API_HOST=${API_HOST:-127.0.0.1}
export API_PORT=${API_PORT:-8000}
export HTTPS_PORT=${HTTPS_PORT:-8443}
export HTTP_PORT=${HTTP_PORT:-8080}
DATA_DIR=${DATA_DIR:-.data}
[[ $DATA_DIR == /* ]] || DATA_DIR=$repo_root/$DATA_DIR
export DATA_DIR
if [[ ! -d $DATA_DIR ]]; then
  # Private, like the API makes it (the database is 0600 in it). As root, nginx's workers (www-data)
  # must still pass through to their run directory below it: execute-only for others, no listing.
  (umask 077 && mkdir -p "$DATA_DIR")
  [[ $(id -u) -ne 0 ]] || chmod 711 "$DATA_DIR"
fi

nginx_bin=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}
[[ -x $nginx_bin ]] || die "nginx not found (apt-get install nginx, or run 'make run' which installs it)"
export NGINX_BIN=$nginx_bin

replicas=${REPLICAS:-1}
[[ $replicas =~ ^[0-9]+$ ]] && ((10#$replicas >= 1 && 10#$replicas <= 16)) \
  || die "REPLICAS must be a number from 1 to 16, not '$replicas'"
replicas=$((10#$replicas))
export REPLICAS=$replicas  # the API refuses SQLite itself too when this is above 1
case ${POSTGRES:-} in
  "" | local) ;;
  *) die "POSTGRES must be unset or 'local', not '$POSTGRES'" ;;
esac
if [[ ${POSTGRES:-} == local && -n ${DATABASE_URL:-} ]]; then
  die "POSTGRES=local and DATABASE_URL are both set: choose one"
fi
if ((replicas > 1)) && [[ ${POSTGRES:-} != local && ${DATABASE_URL:-} != postgres* ]]; then
  die "REPLICAS=$replicas needs PostgreSQL (POSTGRES=local, or DATABASE_URL=postgresql+asyncpg://...): \
replicas share sessions through the database, and SQLite is one process's file"
fi
if ((API_PORT + replicas - 1 > 65535)); then die "API_PORT=$API_PORT leaves no room for $replicas replicas"; fi

web_root=${WEB_ROOT:-$repo_root/services/web/dist}
[[ -f $web_root/index.html ]] || die "no web bundle in $web_root (build it: make web-build)"
export WEB_ROOT=$web_root

[[ -x scripts/api.sh ]] || die "scripts/api.sh is missing or not executable"

# ---- 2. PostgreSQL ------------------------------------------------------------------------
pg_dir=""
if [[ ${POSTGRES:-} == local ]]; then
  pg_dir=$DATA_DIR/postgres
  DATABASE_URL=$(scripts/postgres.sh start "$pg_dir") || die "could not start PostgreSQL in $pg_dir"
  export DATABASE_URL
  export POSTGRES=""  # the replicas use the URL; only this script starts and stops the cluster
  log "PostgreSQL is up in $pg_dir (unix socket only)"
fi

# ---- 3. certificate ---------------------------------------------------------------------
if [[ -n ${TLS_CERT_FILE:-} || -n ${TLS_KEY_FILE:-} ]]; then
  [[ -r ${TLS_CERT_FILE:-} && -r ${TLS_KEY_FILE:-} ]] \
    || die "TLS_CERT_FILE and TLS_KEY_FILE must both name readable files"
else
  TLS_CERT_FILE=$DATA_DIR/certs/cert.pem
  TLS_KEY_FILE=$DATA_DIR/certs/key.pem
  scripts/gen-cert.sh "$TLS_CERT_FILE" "$TLS_KEY_FILE"
fi
export TLS_CERT_FILE TLS_KEY_FILE

# ---- 4. nginx configuration ---------------------------------------------------------------
run_dir=$DATA_DIR/run/nginx-$HTTPS_PORT
mkdir -p "$run_dir"
if [[ $(id -u) -eq 0 && -z ${NGINX_USER:-} ]]; then
  # Workers drop to www-data, which must read the bundle and reach its temp directories.
  if id www-data >/dev/null 2>&1 && command -v runuser >/dev/null \
    && runuser -u www-data -- test -r "$web_root/index.html" \
    && runuser -u www-data -- test -x "$run_dir"; then
    NGINX_USER=www-data
  else
    NGINX_USER=root
    log "www-data cannot read $web_root or reach $run_dir: nginx workers run as root"
  fi
fi
export NGINX_USER=${NGINX_USER:-www-data}
upstream=""
for ((i = 0; i < replicas; i++)); do upstream+="${upstream:+,}$API_HOST:$((API_PORT + i))"; done
API_UPSTREAM=$upstream NGINX_RUN_DIR=$run_dir scripts/render-nginx.sh "$run_dir/nginx.conf"
nginx_args=(-p "$run_dir" -c "$run_dir/nginx.conf" -e stderr)
"$nginx_bin" "${nginx_args[@]}" -t -q || die "nginx rejected $run_dir/nginx.conf"

# ---- 5. processes -----------------------------------------------------------------------------
api_pids=()
nginx_pid=""
stopping=""

alive() {  # running and not yet a zombie
  local stat
  [[ -n $1 && -r /proc/$1/stat ]] || return 1
  stat=$(<"/proc/$1/stat") 2>/dev/null || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

any_alive() {
  local pid
  for pid in "$@"; do alive "$pid" && return 0; done
  return 1
}

name_of() {
  local i
  [[ $1 == "$nginx_pid" ]] && { echo nginx; return; }
  for i in "${!api_pids[@]}"; do
    [[ ${api_pids[$i]} == "$1" ]] && { echo "gunicorn (port $((API_PORT + i)))"; return; }
  done
  echo "process $1"
}

# Stops everything (whatever made the script end: a signal, a child's death or an error).
# gunicorn: TERM is a graceful stop (running turns finish, up to its graceful_timeout);
# nginx: QUIT is a graceful stop, bounded by worker_shutdown_timeout in the config;
# PostgreSQL last (a fast stop), once no replica can still write.
stop_children() {
  local pid
  set +e
  for pid in "${api_pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  if [[ -n $nginx_pid ]]; then kill -QUIT "$nginx_pid" 2>/dev/null; fi
  for _ in $(seq 1 150); do
    any_alive "${api_pids[@]}" "$nginx_pid" || break
    sleep 0.2
  done
  for pid in "${api_pids[@]}" $nginx_pid; do
    if alive "$pid"; then
      log "$(name_of "$pid") did not stop in 30 s: killing it"
    fi
    # The whole process group: also a gunicorn worker whose master did not stop.
    kill -KILL -- "-$pid" 2>/dev/null
  done
  wait 2>/dev/null
  api_pids=()
  nginx_pid=""
  if [[ -n $pg_dir ]]; then
    scripts/postgres.sh stop "$pg_dir" || log "PostgreSQL in $pg_dir did not stop cleanly"
    pg_dir=""
  fi
  set -e
}
trap 'stop_children' EXIT
trap 'stopping=INT' INT
trap 'stopping=TERM' TERM
trap 'stopping=HUP' HUP

# Each child gets its own process group (job control), so a Ctrl-C reaches only this
# script, which then stops them in order (gunicorn gracefully) and can kill a whole group.
start_api() {  # $1: the replica's index
  set -m
  API_PORT=$((API_PORT + $1)) scripts/api.sh &
  api_pids[$1]=$!
  set +m
}

# A replica died on its own: what is left of its group (a worker whose master was killed) goes,
# and a new one starts; nginx answers 502 meanwhile and clients reconnect. Returns 1 (give up)
# after API_MAX_RESTARTS restarts within 60 s: a crash loop is for the operator to see.
api_restarts=()
restart_api() {  # $1: the replica's index, $2: its exit status
  local recent=() t
  for t in "${api_restarts[@]}"; do ((SECONDS - t < 60)) && recent+=("$t"); done
  api_restarts=("${recent[@]}")
  ((${#api_restarts[@]} < ${API_MAX_RESTARTS:-5})) || { log "gunicorn keeps dying: giving up"; return 1; }
  kill -KILL -- "-${api_pids[$1]}" 2>/dev/null || true
  api_restarts+=("$SECONDS")
  log "$(name_of "${api_pids[$1]}") exited with status $2: starting it again (nginx keeps running)"
  sleep 1  # a pause between restarts; a signal meanwhile is handled once it ends
  [[ -z $stopping ]] || return 0
  start_api "$1"
}

replica_of() {  # the index of a replica's pid, or nothing
  local i
  for i in "${!api_pids[@]}"; do [[ ${api_pids[$i]} == "$1" ]] && { echo "$i"; return; }; done
  return 0
}

for ((i = 0; i < replicas; i++)); do start_api "$i"; done
set -m
"$nginx_bin" "${nginx_args[@]}" -g 'daemon off;' &
nginx_pid=$!
set +m

# Readiness: every replica on its own port first (no error-log noise from nginx meanwhile),
# then the whole path through nginx.
public_url="https://localhost:$HTTPS_PORT"
api_host_for_check=$API_HOST
[[ $api_host_for_check == 0.0.0.0 ]] && api_host_for_check=127.0.0.1
replicas_ready() {
  local i
  for ((i = 0; i < replicas; i++)); do
    curl -fs -o /dev/null --max-time 2 "http://$api_host_for_check:$((API_PORT + i))/api/readyz" || return 1
  done
}
all_running() {
  local pid
  for pid in "${api_pids[@]}" "$nginx_pid"; do alive "$pid" || return 1; done
}
if command -v curl >/dev/null; then
  for _ in $(seq 1 600); do
    if [[ -n $stopping ]] || ! all_running; then break; fi
    if replicas_ready && curl -fsk -o /dev/null --max-time 2 "https://127.0.0.1:$HTTPS_PORT/api/readyz"; then
      log "Canopy is up: $public_url ($replicas API replica(s); HTTP on port $HTTP_PORT redirects; Ctrl-C stops)"
      break
    fi
    sleep 0.1
  done
else
  log "starting Canopy on $public_url (Ctrl-C stops)"
fi

exited=""
status=0
while [[ -z $stopping ]]; do
  exited=""
  # A child that died before this wait (during the readiness checks, or the restart's pause) may
  # be reaped already, and `wait -n` would then wait on the others alone: ask first.
  for pid in "${api_pids[@]}" "$nginx_pid"; do
    if ! alive "$pid"; then
      exited=$pid
      if wait "$pid" 2>/dev/null; then status=0; else status=$?; fi
      break
    fi
  done
  if [[ -z $exited ]]; then
    if wait -n -p exited "${api_pids[@]}" "$nginx_pid"; then status=0; else status=$?; fi
    [[ -z ${exited:-} ]] && continue
  fi
  replica=$(replica_of "$exited")
  if [[ -n $replica && -z $stopping ]] && restart_api "$replica" "$status"; then continue; fi
  break
done

if [[ -n $stopping ]]; then
  log "SIG$stopping: stopping gunicorn and nginx"
  stop_children
  log "stopped"
  exit 0
fi
log "$(name_of "$exited") exited with status $status: stopping the rest"
stop_children
exit $((status == 0 ? 1 : status))
