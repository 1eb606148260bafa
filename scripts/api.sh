#!/usr/bin/env bash
# Runs only the API: gunicorn with exactly one uvicorn worker on API_HOST:API_PORT, logging to the terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f .env ]; then
  set -a; # shellcheck disable=SC1091
  . ./.env; set +a
fi
export API_HOST="${API_HOST:-127.0.0.1}" API_PORT="${API_PORT:-8000}"
exec .venv/bin/gunicorn --no-control-socket -c services/api/gunicorn.conf.py "canopy.main:app"
