#!/bin/sh
# Turns the proxy's environment into nginx settings, then runs the command (nginx).
# The root filesystem is read-only, so the generated files go to /tmp/nginx, which proxy.conf
# includes: http.d/ in the http block, server.d/ in the server, api.d/ in `location /api`.
#
#   API_RATE_LIMIT   requests per client address to /api, e.g. 10r/s or 600r/m   (default 10r/s)
#   API_RATE_BURST   requests a client may go over that rate before getting 429s (default 20)
#   SERVER_NAME      space-separated host names to serve; any other Host is dropped (unset: any)
#   TLS_CERT_FILE    certificate (chain) and key, PEM, inside the container: both set turns HTTPS on
#   TLS_KEY_FILE       port 443, TLS 1.2/1.3, HTTP/2, HSTS, and HTTP redirected to HTTPS
#   PUBLIC_HTTPS_PORT  the port clients reach HTTPS on, for the redirect (default 443)
set -eu

fail() {
  echo "proxy: $*" >&2
  exit 64
}

generated=/tmp/nginx
rm -rf "$generated"
mkdir -p "$generated/http.d" "$generated/server.d" "$generated/api.d"

# --- rate limit for the API ---------------------------------------------------------------------
rate=${API_RATE_LIMIT:-10r/s}
burst=${API_RATE_BURST:-20}
echo "$rate" | grep -Eq '^[1-9][0-9]*r/[sm]$' || fail "API_RATE_LIMIT must look like 10r/s or 600r/m, got '$rate'"
echo "$burst" | grep -Eq '^[0-9]+$' || fail "API_RATE_BURST must be a whole number, got '$burst'"
cat >"$generated/http.d/rate-limit.conf" <<CONF
# One bucket per client address; 10 MB holds about 160,000 addresses.
limit_req_zone \$binary_remote_addr zone=api:10m rate=$rate;
CONF
cat >"$generated/api.d/rate-limit.conf" <<CONF
# Bursts up to $burst are served at once (nodelay); beyond that, 429.
limit_req zone=api burst=$burst nodelay;
CONF

# --- host names ---------------------------------------------------------------------------------
if [ -n "${SERVER_NAME:-}" ]; then
  echo "$SERVER_NAME" | grep -Eq '^[A-Za-z0-9.-]+( [A-Za-z0-9.-]+)*$' ||
    fail "SERVER_NAME must be host names separated by spaces, got '$SERVER_NAME'"
  # localhost and 127.0.0.1 stay allowed: the container's own health check uses them.
  names=$(echo "localhost 127.0.0.1 $SERVER_NAME" | sed 's/\./\\./g; s/ /|/g')
  cat >"$generated/server.d/server-name.conf" <<CONF
# Requests for any other host name get their connection closed without an answer.
if (\$host !~* ^($names)\$) {
    return 444;
}
CONF
fi

# --- TLS, opt-in --------------------------------------------------------------------------------
if [ -n "${TLS_CERT_FILE:-}" ] || [ -n "${TLS_KEY_FILE:-}" ]; then
  for file in "${TLS_CERT_FILE:-}" "${TLS_KEY_FILE:-}"; do
    [ -n "$file" ] || fail 'TLS needs both TLS_CERT_FILE and TLS_KEY_FILE'
    [ -r "$file" ] || fail "cannot read $file (mounted, and readable by uid $(id -u)?)"
  done
  https_port=${PUBLIC_HTTPS_PORT:-443}
  echo "$https_port" | grep -Eq '^[0-9]+$' || fail "PUBLIC_HTTPS_PORT must be a port number, got '$https_port'"
  port_suffix=""
  [ "$https_port" = 443 ] || port_suffix=":$https_port"
  cat >"$generated/server.d/tls.conf" <<CONF
listen 443 ssl;
http2 on;
ssl_certificate $TLS_CERT_FILE;
ssl_certificate_key $TLS_KEY_FILE;
# Mozilla's "intermediate" profile: TLS 1.2 and 1.3 only, forward-secret AEAD ciphers.
ssl_protocols TLSv1.2 TLSv1.3;
ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
ssl_prefer_server_ciphers off;
ssl_session_cache shared:TLS:10m;
ssl_session_timeout 1d;
ssl_session_tickets off;
# Plain HTTP only redirects; the health check (which does not follow redirects) still counts it as up.
if (\$scheme = http) {
    return 301 https://\$host$port_suffix\$request_uri;
}
CONF
fi

exec "$@"
