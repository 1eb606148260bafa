#!/usr/bin/env bash
# Container entry point of the API image. With no usable SECRET_KEY given (unset, empty or
# the placeholder of .env.example), one is generated once and kept in DATA_DIR, so
# `docker compose up` works out of the box with ENVIRONMENT=production and tokens stay
# valid across restarts. A SECRET_KEY that is set is used as is.
set -euo pipefail

data_dir=${DATA_DIR:-/data}
case ${SECRET_KEY:-} in
  "" | change-me)
    secret_file=$data_dir/secret_key
    if [ ! -s "$secret_file" ]; then
      (umask 077 && python -c 'import secrets; print(secrets.token_hex(32))' >"$secret_file")
      echo "entrypoint: no SECRET_KEY given; generated one in $secret_file" >&2
    fi
    SECRET_KEY=$(cat "$secret_file")
    export SECRET_KEY
    ;;
esac

exec "$@"
