#!/usr/bin/env bash
# A self-signed certificate for https://localhost, for trying TLS locally (docker-compose.tls.yml).
# Never for production: browsers will warn, since nobody vouches for it.
# Usage: scripts/certs-dev.sh [DIR]   (default: certs/ at the repository root)
set -euo pipefail
dir=${1:-"$(cd "$(dirname "$0")/.." && pwd)/certs"}
mkdir -p "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 -subj '/CN=localhost' \
  -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' -keyout "$dir/localhost.key" -out "$dir/localhost.crt" 2>/dev/null
# The proxy runs as an unprivileged user that must read the key through the bind mount.
chmod 644 "$dir/localhost.key" "$dir/localhost.crt"
echo "wrote $dir/localhost.crt and $dir/localhost.key (self-signed, 30 days, localhost + 127.0.0.1)"
