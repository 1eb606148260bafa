#!/usr/bin/env bash
# Makes a self-signed TLS certificate for local use, unless both files already exist.
#
#   scripts/gen-cert.sh CERT_FILE KEY_FILE [EXTRA_HOSTNAME_OR_IP ...]
#
# Subject alternative names: localhost, 127.0.0.1, ::1, plus the extra names given as
# arguments or, space/comma separated, in TLS_CERT_HOSTNAMES. Valid for 825 days.
set -euo pipefail

[[ $# -ge 2 ]] || { echo "usage: $0 CERT_FILE KEY_FILE [EXTRA_HOSTNAME_OR_IP ...]" >&2; exit 2; }
cert=$1
key=$2
shift 2

if [[ -s $cert && -s $key ]]; then
  echo "gen-cert: using the existing certificate $cert" >&2
  exit 0
fi
command -v openssl >/dev/null || { echo "gen-cert: openssl is not installed" >&2; exit 1; }

san="DNS:localhost,IP:127.0.0.1,IP:0:0:0:0:0:0:0:1"
hosts=${TLS_CERT_HOSTNAMES:-}
read -r -a extra <<<"${hosts//,/ }"
for name in "$@" ${extra[@]+"${extra[@]}"}; do
  [[ -n $name ]] || continue
  if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then
    san+=",IP:$name"
  elif [[ $name =~ ^[A-Za-z0-9*.-]+$ ]]; then
    san+=",DNS:$name"
  else
    echo "gen-cert: not a hostname or IP address: $name" >&2
    exit 1
  fi
done

mkdir -p "$(dirname "$cert")" "$(dirname "$key")"
tmp=$(mktemp -d "$(dirname "$key")/.gen-cert.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(
  umask 077
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -sha256 -nodes \
    -days 825 -subj "/CN=localhost/O=Canopy self-signed" \
    -addext "subjectAltName=$san" \
    -addext "keyUsage=critical,digitalSignature,keyCertSign" \
    -addext "extendedKeyUsage=serverAuth" \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
)
chmod 600 "$tmp/key.pem"
chmod 644 "$tmp/cert.pem"
mv -f "$tmp/key.pem" "$key"
mv -f "$tmp/cert.pem" "$cert"
echo "gen-cert: made a self-signed certificate $cert ($san)" >&2
