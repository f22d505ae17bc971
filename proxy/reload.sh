#!/bin/sh
# Applies a newer proxy image's configuration to this running container without a restart or a dropped
# request: reads a tar of that image's /etc/nginx on stdin, renders it with this container's environment
# and start-up hooks (/docker-entrypoint.d: the same checks), tests it, swaps it in for /tmp/nginx and
# reloads nginx gracefully.
# Installed as proxy-reload; runs as uid 101 like nginx itself. IMAGE names where the tree comes from:
#
#   docker run --rm --network none --entrypoint tar NEW_IMAGE -C /etc/nginx \
#       -c nginx.conf mime.types snippets conf.d templates | docker exec -i CONTAINER proxy-reload NEW_IMAGE
#
# Once nginx runs it, the tree and IMAGE are kept in /var/lib/proxy-release/<this container's host name>
# (a volume in Compose), so a restart of this container serves them again (20-envsubst-on-templates.sh).
#
# Exits non-zero, with nginx's or the hooks' error, and the running configuration untouched, when the
# new one is refused: 2 when it passed nginx -t but the running nginx would not reload it (a rate-limit
# zone with a new key, say), which a new container applies; 1 otherwise. Only the configuration is taken:
# the hooks and this script stay this image's.
set -euf

image=${1:-unknown}
kept=/var/lib/proxy-release/$(cat /etc/hostname)
live=/tmp/nginx
next=/tmp/nginx-next
# Whatever happens, no half-built tree is left behind for the next run.
trap 'rm -rf "$next" "$live.old"' EXIT
rm -rf "$next" "$live.old"
mkdir -p "$next/source"
tar -x -C "$next/source"

# The start-up hooks' checks and rendering into $next/out, then nginx's own test of the result.
if ! NGINX_SOURCE_DIR="$next/source" NGINX_OUTPUT_DIR="$next/out" NGINX_ENTRYPOINT_QUIET_LOGS=1 \
  /docker-entrypoint.sh nginx -t -q -c "$next/out/nginx.conf" >/dev/null; then
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
# The old tree comes back when nginx does not take the new one: what is on disk is what runs.
put_back() {
  rm -rf "$live"
  mv "$live.old" "$live"
  echo "proxy-reload: $2; nginx keeps running the old configuration" >&2
  exit "$1"
}

# The master's children (workers, cache manager): a reload that takes starts new ones.
master=$(cat /tmp/nginx.pid)
children() (
  set +f # this script's -f would keep the pattern from matching
  for stat in /proc/[0-9]*/stat; do
    if read -r pid _ _ parent _ 2>/dev/null <"$stat" && [ "$parent" = "$master" ]; then echo "$pid"; fi
  done
)
before=$(children)

# SIGHUP to the master: new workers take the new configuration, the old ones finish their requests first.
# The includes are relative, so the tree works from its new place. Its output is a "signal process
# started" notice unless it fails.
output=$(nginx -s reload -c "$live/nginx.conf" 2>&1) || put_back 1 "$output"
# Some changes pass nginx -t but not a reload, which compares with what runs: the master logs why and
# carries on with the old configuration, starting no new worker.
for _ in $(seq 50); do
  if children | grep -qvxF -e "$before"; then
    echo "proxy-reload: new configuration in place; nginx (pid $master) is reloading gracefully"
    rm -rf "$kept" && mkdir -p "$kept" && mv "$next/source" "$kept/nginx" && echo "$image" >"$kept/image"
    exit 0
  fi
  sleep 0.1
done
put_back 2 'nginx would not reload the new configuration (its log says why)'
