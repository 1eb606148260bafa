#!/usr/bin/env bash
# Runs only the API: gunicorn with exactly one uvicorn worker on API_HOST:API_PORT, logging to the terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
# .env fills in only what the environment does not already set (so API_PORT=9000 make api wins).
# shellcheck source=scripts/lib/dotenv.sh disable=SC1091
. scripts/lib/dotenv.sh
canopy_load_dotenv .env
export API_HOST="${API_HOST:-127.0.0.1}" API_PORT="${API_PORT:-8000}"
exec .venv/bin/gunicorn --no-control-socket -c services/api/gunicorn.conf.py "canopy.main:app"
