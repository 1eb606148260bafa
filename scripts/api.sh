#!/usr/bin/env bash
# Runs only the API: gunicorn with exactly one uvicorn worker on API_HOST:API_PORT, logging to the terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
# .env fills in only what the environment does not already set (so API_PORT=9000 make api wins).
# shellcheck source=scripts/lib/dotenv.sh disable=SC1091
. scripts/lib/dotenv.sh
canopy_load_dotenv .env
export API_HOST="${API_HOST:-127.0.0.1}" API_PORT="${API_PORT:-8000}"
# POSTGRES=local: a PostgreSQL cluster in DATA_DIR/postgres (started if it is not running; it
# keeps running after the API stops: scripts/postgres.sh stop DATA_DIR/postgres).
if [[ ${POSTGRES:-} == local ]]; then
  [[ -z ${DATABASE_URL:-} ]] || { echo "api: POSTGRES=local and DATABASE_URL are both set: choose one" >&2; exit 1; }
  data_dir=${DATA_DIR:-.data}
  [[ $data_dir == /* ]] || data_dir=$PWD/$data_dir
  DATABASE_URL=$(scripts/postgres.sh start "$data_dir/postgres")
  export DATABASE_URL
elif [[ -n ${POSTGRES:-} ]]; then
  echo "api: POSTGRES must be unset or 'local', not '$POSTGRES'" >&2
  exit 1
fi
exec .venv/bin/gunicorn --no-control-socket -c services/api/gunicorn.conf.py "canopy.main:app"
