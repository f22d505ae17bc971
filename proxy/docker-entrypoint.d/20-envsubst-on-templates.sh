#!/bin/sh
# Our take on the official image's hook of this name (which this file replaces there): copies /etc/nginx to
# /tmp/nginx, as NGINX_ENVSUBST_OUTPUT_DIR does for a read-only root, and fills in the settings that
# 16-proxy-settings.envsh checked: proxy.conf (conf.d/default.conf), and templates/https.conf with TLS=on.
# A whole tree with relative includes, so proxy-reload can render a newer one next to the live one.
#
#   NGINX_SOURCE_DIR   internal, for proxy-reload: the tree to render (default /etc/nginx) and where
#   NGINX_OUTPUT_DIR     to (default /tmp/nginx)
set -eu

src=${NGINX_SOURCE_DIR:-/etc/nginx}
out=${NGINX_OUTPUT_DIR:-/tmp/nginx}
# A restart serves what proxy-reload last applied to this very container (without the Compose volume
# the folder is read-only and empty).
kept=/var/lib/proxy-release/$(cat /etc/hostname)
if [ -z "${NGINX_SOURCE_DIR:-}" ] && [ -d "$kept/nginx" ]; then src=$kept/nginx; fi
rm -rf "$out"
mkdir -p "$out"
# Not tls/: the certificate stays where it is mounted, and snippets/tls.conf names it by its full path.
cp -R "$src/nginx.conf" "$src/mime.types" "$src/snippets" "$src/conf.d" "$src/templates" "$out/"

# Only these are filled in: nginx's own $variables stay as they are.
render() {
  # shellcheck disable=SC2016 # envsubst's list of the variables to fill in: the names, unexpanded
  envsubst '${API_RATE_LIMIT} ${API_RATE_BURST} ${SERVER_NAME} ${PUBLIC_HTTPS_PORT} ${FRONT_END_HOST}
    ${BACK_END_HOST} ${RESOLVER} ${RESOLVER_IPV6} ${STUB_STATUS_LISTEN}' <"$src/$1" >"$out/conf.d/${1##*/}"
}
render conf.d/default.conf

# Relative links, so the tree still works once proxy-reload has moved it into place.
if [ "$TLS" = on ]; then
  ln -s snippets/listen-https.conf "$out/listen.conf"
  render templates/https.conf
else
  ln -s snippets/listen-http.conf "$out/listen.conf"
fi

# One set_real_ip_from per trusted proxy, none leaving X-Forwarded-For unread; and the same list for the
# geo block that says whether the peer may set X-Forwarded-Proto (proxy.conf).
for cidr in $TRUSTED_PROXIES; do
  echo "set_real_ip_from $cidr;"
done >"$out/trusted-proxies.conf"
for cidr in $TRUSTED_PROXIES; do
  echo "$cidr 1;"
done >"$out/trusted-proxies-geo.conf"
