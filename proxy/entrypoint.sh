#!/bin/sh
# Checks the proxy's environment, copies the configuration (/etc/nginx) to /tmp/nginx, fills the environment
# into its templates there (proxy.conf, templates/https.conf), picks the static snippets for TLS on or off,
# then runs the command (nginx -c /tmp/nginx/nginx.conf). The root filesystem is read-only, hence /tmp; a
# whole tree, with relative includes, so proxy-reload (reload.sh) can render a newer one next to it.
# The official image's 20-envsubst-on-templates.sh would render them, but our offline base images lack it.
#
#   API_RATE_LIMIT     requests per client address to the API: 10r/s (default), 600r/m, …
#   API_RATE_BURST     requests a client may go over that rate before getting 429s (default 20)
#   SERVER_NAME        host names served besides localhost and 127.0.0.1, space-separated; any other
#                      Host is dropped (default localhost)
#   TLS                on: HTTPS on 443 with /etc/nginx/tls/cert.pem and key.pem, and plain HTTP
#                      redirected to it (default off)
#   PUBLIC_HTTPS_PORT  the port clients reach HTTPS on, for that redirect (default 443)
#   FRONT_END_HOST     the upstreams' host names, fully qualified under Kubernetes (defaults front-end
#   BACK_END_HOST        and back-end)
#   RESOLVER           the DNS server for them (default: /etc/resolv.conf's first nameserver)
#   RESOLVER_IPV6      on: the upstreams' IPv6 addresses too, for IPv6-only clusters (default off)
#   TRUSTED_PROXIES    addresses or CIDRs whose X-Forwarded-For names the client and whose
#                      X-Forwarded-Proto names its scheme (default none)
#   STUB_STATUS_LISTEN where nginx's counters are served for the exporter: a port, or address:port
#                      (default 8080; 127.0.0.1:8080 where the exporter is a sidecar in the pod)
#   NGINX_WORKER_PROCESSES  the worker count; by default one per CPU of the container's quota
#                      (/docker-entrypoint.d/30-tune-worker-processes.sh)
#   NGINX_SOURCE_DIR   internal, for reload.sh: the tree to render (default /etc/nginx) and where
#   NGINX_OUTPUT_DIR     to (default /tmp/nginx)
set -euf # -f: a name like *.example.com is not a file pattern

fail() {
  echo "proxy: $*" >&2
  exit 64
}

# Whether every space-separated word of $2 matches the extended regex $1.
each_matches() {
  # shellcheck disable=SC2086 # split into words on purpose; set -f keeps them from being globbed
  [ -z "$2" ] || ! printf '%s\n' $2 | grep -Evq "^($1)\$"
}

API_RATE_LIMIT=${API_RATE_LIMIT:-10r/s}
API_RATE_BURST=${API_RATE_BURST:-20}
SERVER_NAME=${SERVER_NAME:-localhost}
TLS=${TLS:-off}
PUBLIC_HTTPS_PORT=${PUBLIC_HTTPS_PORT:-443}
FRONT_END_HOST=${FRONT_END_HOST:-front-end}
BACK_END_HOST=${BACK_END_HOST:-back-end}
RESOLVER=${RESOLVER:-$(awk '$1 == "nameserver" { print ($2 ~ /:/) ? "[" $2 "]" : $2; exit }' /etc/resolv.conf)}
RESOLVER_IPV6=${RESOLVER_IPV6:-off}
TRUSTED_PROXIES=${TRUSTED_PROXIES:-}
STUB_STATUS_LISTEN=${STUB_STATUS_LISTEN:-8080}

host='[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?'
# An IPv4 address, or an IPv6 one (it has a colon): a shape check, nginx has the last word.
address='([0-9]{1,3}(\.[0-9]{1,3}){3}|[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*)'
echo "$API_RATE_LIMIT" | grep -Eq '^[1-9][0-9]*r/[sm]$' ||
  fail "API_RATE_LIMIT must look like 10r/s or 600r/m, got '$API_RATE_LIMIT'"
echo "$API_RATE_BURST" | grep -Eq '^[1-9][0-9]*$' ||
  fail "API_RATE_BURST must be a whole number from 1 up, got '$API_RATE_BURST'"
each_matches "(\*\.)?$host" "$SERVER_NAME" ||
  fail "SERVER_NAME must be host names separated by spaces, got '$SERVER_NAME'"
echo "$PUBLIC_HTTPS_PORT" | grep -Eq '^[1-9][0-9]{0,4}$' ||
  fail "PUBLIC_HTTPS_PORT must be a port number, got '$PUBLIC_HTTPS_PORT'"
echo "$FRONT_END_HOST" | grep -Eqx "$host" || fail "FRONT_END_HOST must be one host name, got '$FRONT_END_HOST'"
echo "$BACK_END_HOST" | grep -Eqx "$host" || fail "BACK_END_HOST must be one host name, got '$BACK_END_HOST'"
[ -n "$RESOLVER" ] || fail 'no nameserver in /etc/resolv.conf: set RESOLVER to a DNS server address'
each_matches "$address|\[$address\](:[0-9]+)?|$host(:[0-9]+)?" "$RESOLVER" ||
  fail "RESOLVER must be DNS server addresses separated by spaces, got '$RESOLVER'"
case "$RESOLVER_IPV6" in on | off) ;; *) fail "RESOLVER_IPV6 must be on or off, got '$RESOLVER_IPV6'" ;; esac
echo "$STUB_STATUS_LISTEN" | grep -Eqx "(([0-9]{1,3}(\.[0-9]{1,3}){3}|\[[0-9A-Fa-f:.]+\]):)?[1-9][0-9]{0,4}" ||
  fail "STUB_STATUS_LISTEN must be a port or address:port, got '$STUB_STATUS_LISTEN'"
each_matches "$address(/[0-9]{1,3})?" "$TRUSTED_PROXIES" ||
  fail "TRUSTED_PROXIES must be addresses or CIDRs separated by spaces, got '$TRUSTED_PROXIES'"
# localhost and 127.0.0.1 are always in the template's server_name: listed twice, nginx would warn.
# shellcheck disable=SC2086 # one name a line: split into words on purpose, and set -f stops globbing
SERVER_NAME=$(printf '%s\n' $SERVER_NAME | grep -Fvix -e localhost -e 127.0.0.1 | sort -uf | tr '\n' ' ')

src=${NGINX_SOURCE_DIR:-/etc/nginx}
out=${NGINX_OUTPUT_DIR:-/tmp/nginx}
rm -rf "$out"
mkdir -p "$out"
# Not tls/: the certificate stays where it is mounted, and snippets/tls.conf names it by its full path.
cp -R "$src/nginx.conf" "$src/mime.types" "$src/snippets" "$src/conf.d" "$src/templates" "$out/"
export API_RATE_LIMIT API_RATE_BURST SERVER_NAME PUBLIC_HTTPS_PORT FRONT_END_HOST BACK_END_HOST RESOLVER \
  RESOLVER_IPV6 STUB_STATUS_LISTEN
# Only these are filled in: nginx's own $variables stay as they are.
render() {
  # shellcheck disable=SC2016 # envsubst's list of the variables to fill in: the names, unexpanded
  envsubst '${API_RATE_LIMIT} ${API_RATE_BURST} ${SERVER_NAME} ${PUBLIC_HTTPS_PORT} ${FRONT_END_HOST}
    ${BACK_END_HOST} ${RESOLVER} ${RESOLVER_IPV6} ${STUB_STATUS_LISTEN}' <"$src/$1" >"$out/conf.d/$(basename "$1")"
}
render conf.d/default.conf

# Relative links, so the tree still works once reload.sh has moved it into place.
case "$TLS" in
  off)
    ln -s snippets/listen-http.conf "$out/listen.conf"
    ;;
  on)
    for file in /etc/nginx/tls/cert.pem /etc/nginx/tls/key.pem; do
      [ -r "$file" ] || fail "TLS=on needs $file (mounted, and readable by uid $(id -u)?)"
    done
    ln -s snippets/listen-https.conf "$out/listen.conf"
    render templates/https.conf
    ;;
  *) fail "TLS must be on or off, got '$TLS'" ;;
esac

# One set_real_ip_from per trusted proxy, none leaving X-Forwarded-For unread; and the same list for the
# geo block that says whether the peer may set X-Forwarded-Proto (proxy.conf).
for cidr in $TRUSTED_PROXIES; do
  echo "set_real_ip_from $cidr;"
done >"$out/trusted-proxies.conf"
for cidr in $TRUSTED_PROXIES; do
  echo "$cidr 1;"
done >"$out/trusted-proxies-geo.conf"

# The worker count from the container's CPU quota: the hook the front-end's image runs at start too.
NGINX_OUTPUT_DIR=$out /docker-entrypoint.d/30-tune-worker-processes.sh >/dev/null

exec "$@"
