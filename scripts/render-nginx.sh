#!/usr/bin/env bash
# Renders nginx/canopy.conf.template into a complete nginx.conf.
#
#   scripts/render-nginx.sh OUTPUT_FILE
#
# Only the placeholders listed in KNOWN below are replaced; nginx's own `$variables`
# are left untouched. Settings (environment, defaults in brackets):
#   TLS_CERT_FILE, TLS_KEY_FILE   required: PEM certificate (chain) and key
#   HTTPS_PORT [8443]  HTTP_PORT [8080]   ports nginx listens on
#   PUBLIC_HTTPS_PORT [HTTPS_PORT]        HTTPS port clients see (redirect target, CSP)
#   API_UPSTREAM [API_HOST:API_PORT]      where gunicorn listens (0.0.0.0 becomes 127.0.0.1);
#                                         several replicas: comma-separated host:port list
#   WEB_ROOT [services/web/dist]          the built SPA
#   NGINX_RUN_DIR [dir of OUTPUT_FILE]    pid file and temp directories
#   NGINX_LISTEN_ADDR [0.0.0.0]           address nginx binds
#   NGINX_MIME_TYPES [/etc/nginx/mime.types]
#   NGINX_USER [www-data when run as root] worker user; ignored when not root
#   NGINX_HTTP2 [on]                      on | off
#   NGINX_BIN [nginx]                     used to pick the HTTP/2 syntax of this nginx version
#   NGINX_TEMPLATE [nginx/canopy.conf.template next to this script's repo]
#   NGINX_WS_CONN_PER_IP [256]            WebSockets one client address may hold open (limit_conn, 1-65535)
#   NGINX_AUTH_CONN_PER_IP [4]            /api/auth/ requests one client address may have in progress (limit_conn,
#                                         1-65535): each login may hold a 64 MiB argon2 hash
set -euo pipefail

usage() { echo "usage: $0 OUTPUT_FILE" >&2; exit 2; }
die() { echo "render-nginx: $*" >&2; exit 1; }

[[ $# -eq 1 ]] || usage
output=$1

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)
template=${NGINX_TEMPLATE:-$repo_root/nginx/canopy.conf.template}
[[ -r $template ]] || die "template not readable: $template"

abspath() {  # absolute path without requiring it to exist
  case $1 in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s/%s\n' "$PWD" "$1" ;;
  esac
}

output=$(abspath "$output")
https_port=${HTTPS_PORT:-8443}
http_port=${HTTP_PORT:-8080}
public_https_port=${PUBLIC_HTTPS_PORT:-$https_port}
api_host=${API_HOST:-127.0.0.1}
[[ $api_host == 0.0.0.0 || $api_host == "::" ]] && api_host=127.0.0.1
api_upstream=${API_UPSTREAM:-$api_host:${API_PORT:-8000}}
run_dir=$(abspath "${NGINX_RUN_DIR:-$(dirname "$output")}")
web_root=$(abspath "${WEB_ROOT:-$repo_root/services/web/dist}")
[[ -n ${TLS_CERT_FILE:-} ]] || die "TLS_CERT_FILE is not set"
[[ -n ${TLS_KEY_FILE:-} ]] || die "TLS_KEY_FILE is not set"
cert_file=$(abspath "$TLS_CERT_FILE")
key_file=$(abspath "$TLS_KEY_FILE")

# One `server` line per replica, in both upstreams (any replica; the session's replica).
api_servers=""
IFS=, read -r -a upstream_list <<<"$api_upstream"
((${#upstream_list[@]} >= 1)) || die "API_UPSTREAM is empty"
for server in "${upstream_list[@]}"; do
  [[ $server =~ ^[A-Za-z0-9._-]+:[0-9]+$|^\[[0-9A-Fa-f:]+\]:[0-9]+$ ]] || die "API_UPSTREAM: not a host:port: '$server'"
  # A dead replica is skipped for 5 s; its sessions go to the next replica on the hash ring.
  api_servers+="server $server max_fails=1 fail_timeout=5s; "
done

for port in "$https_port" "$http_port" "$public_https_port"; do
  if ! [[ $port =~ ^[0-9]+$ ]] || ((10#$port < 1 || 10#$port > 65535)); then die "not a port: $port"; fi
done

if [[ $public_https_port == 443 ]]; then
  port_suffix=""
else
  port_suffix=":$public_https_port"
fi

if [[ $(id -u) -eq 0 ]]; then
  user_directive="user ${NGINX_USER:-www-data};"
else
  user_directive="# user: not set, nginx runs as the invoking user"
fi

# HTTP/2: `listen ... ssl http2` before nginx 1.25.1, `http2 on;` from then on.
listen_http2=""
http2_directive=""
if [[ ${NGINX_HTTP2:-on} == on ]]; then
  version=$("${NGINX_BIN:-nginx}" -v 2>&1 | sed -n 's#.*nginx/\([0-9][0-9.]*\).*#\1#p' || true)
  if [[ -n $version && $(printf '%s\n' 1.25.1 "$version" | sort -V | head -n 1) == 1.25.1 ]]; then
    http2_directive="http2 on;"
  else
    listen_http2=" http2"
  fi
fi

declare -A values=(
  [NGINX_USER_DIRECTIVE]=$user_directive
  [NGINX_RUN_DIR]=$run_dir
  [NGINX_MIME_TYPES]=${NGINX_MIME_TYPES:-/etc/nginx/mime.types}
  [NGINX_LISTEN_ADDR]=${NGINX_LISTEN_ADDR:-0.0.0.0}
  [HTTPS_PORT]=$https_port
  [HTTP_PORT]=$http_port
  [HTTPS_PORT_SUFFIX]=$port_suffix
  [LISTEN_HTTP2]=$listen_http2
  [HTTP2_DIRECTIVE]=$http2_directive
  [API_SERVERS]=$api_servers
  [TLS_CERT_FILE]=$cert_file
  [TLS_KEY_FILE]=$key_file
  [WEB_ROOT]=$web_root
  [NGINX_WS_CONN_PER_IP]=${NGINX_WS_CONN_PER_IP:-256}
  [NGINX_AUTH_CONN_PER_IP]=${NGINX_AUTH_CONN_PER_IP:-4}
)

# Values go into nginx.conf unquoted: allow only characters that cannot end a directive
# or start an nginx variable.
safe='^[][A-Za-z0-9._/:@+,-]*$'
for name in "${!values[@]}"; do
  case $name in NGINX_USER_DIRECTIVE | HTTP2_DIRECTIVE | LISTEN_HTTP2 | API_SERVERS) continue ;; esac
  [[ ${values[$name]} =~ $safe ]] \
    || die "$name has characters nginx.conf cannot take unquoted: '${values[$name]}'"
done
[[ ${NGINX_USER:-www-data} =~ ^[A-Za-z0-9._-]+$ ]] || die "bad NGINX_USER"
for name in NGINX_WS_CONN_PER_IP NGINX_AUTH_CONN_PER_IP; do
  [[ ${values[$name]} =~ ^[1-9][0-9]{0,4}$ && ${values[$name]} -le 65535 ]] \
    || die "$name must be a whole number from 1 to 65535 (nginx limit_conn)"
done

content=$(<"$template")
for name in "${!values[@]}"; do
  content=${content//"\${$name}"/"${values[$name]}"}
done

if leftover=$(grep -oE '\$\{[A-Za-z_][A-Za-z0-9_]*\}' <<<"$content" | sort -u | tr '\n' ' ') \
  && [[ -n $leftover ]]; then
  die "unknown placeholders left in $template: $leftover"
fi

mkdir -p "$(dirname "$output")" "$run_dir"
tmp=$(mktemp "$output.XXXXXX")
printf '%s\n' "$content" >"$tmp"
chmod 644 "$tmp"
mv -f "$tmp" "$output"
