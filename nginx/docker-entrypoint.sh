#!/usr/bin/env bash
# Container entry point of the nginx image: a self-signed certificate when none is mounted
# at TLS_CERT_FILE/TLS_KEY_FILE, the template rendered, then nginx in the foreground
# (error log on stderr, access log on stdout, no query strings logged).
set -euo pipefail

lib=${CANOPY_SCRIPTS:-/usr/local/lib/canopy}
"$lib/gen-cert.sh" "$TLS_CERT_FILE" "$TLS_KEY_FILE"
"$lib/render-nginx.sh" "$NGINX_RUN_DIR/nginx.conf"
args=(-p "$NGINX_RUN_DIR" -c "$NGINX_RUN_DIR/nginx.conf" -e stderr)
nginx "${args[@]}" -t -q
exec nginx "${args[@]}" -g 'daemon off;' "$@"
