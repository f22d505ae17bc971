#!/bin/sh
# Applies a newer proxy image's configuration to this running container without a restart or a dropped
# request: reads a tar of that image's /etc/nginx on stdin, renders it with this container's environment
# (the entrypoint's own checks), tests it, swaps it in for /tmp/nginx and reloads nginx gracefully.
# Installed as proxy-reload; needs only /tmp writable, as uid 101 like nginx itself:
#
#   docker run --rm --network none --entrypoint tar NEW_IMAGE -C /etc/nginx \
#       -c nginx.conf mime.types snippets conf.d templates | docker exec -i CONTAINER proxy-reload
#
# Exits non-zero, with nginx's or the entrypoint's error, and the running configuration untouched, when the
# new one is refused. Only the configuration is taken: the entrypoint and this script stay this image's.
set -euf

live=/tmp/nginx
next=/tmp/nginx-next
# Whatever happens, no half-built tree is left behind for the next run.
trap 'rm -rf "$next" "$live.old"' EXIT
rm -rf "$next" "$live.old"
mkdir -p "$next/source"
tar -x -C "$next/source"

# The entrypoint's validation and rendering into $next/out, then nginx's own test of the result.
if ! NGINX_SOURCE_DIR="$next/source" NGINX_OUTPUT_DIR="$next/out" \
  proxy-entrypoint nginx -t -q -c "$next/out/nginx.conf"; then
  echo 'proxy-reload: new configuration refused; nginx keeps running the old one' >&2
  exit 1
fi

# A directory cannot be renamed over a non-empty one: the old tree is moved aside first, so nginx's
# files are missing for the instant between the two renames (nginx reads them only on reload).
mv "$live" "$live.old"
mv "$next/out" "$live" || {
  mv "$live.old" "$live"
  exit 1
}
# SIGHUP to the master (pid file /tmp/nginx.pid): new workers take the new configuration, the old ones
# finish their requests first. The includes are relative, so the tree works from its new place.
# Its output is a "signal process started" notice unless it fails.
output=$(nginx -s reload -c "$live/nginx.conf" 2>&1) || {
  printf '%s\nproxy-reload: the new configuration is in place, but nginx was not told\n' "$output" >&2
  exit 1
}
echo "proxy-reload: new configuration in place; nginx (pid $(cat /tmp/nginx.pid)) is reloading gracefully"
