#!/usr/bin/env bash
# gencert.sh DIR: a self-signed ECDSA P-256 certificate for localhost and 127.0.0.1, valid 7 days,
# written as DIR/cert.pem and DIR/key.pem (what Caddy's `tls internal` would issue: P-256).
set -euo pipefail
dir=${1:?usage: gencert.sh DIR}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -addext "basicConstraints=critical,CA:FALSE" -addext "keyUsage=critical,digitalSignature" \
  -addext "extendedKeyUsage=serverAuth" \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
chmod 600 "$dir/key.pem"
