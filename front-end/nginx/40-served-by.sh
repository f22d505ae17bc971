#!/bin/sh
# Names this replica in every answer (X-Served-By) by an opaque id, not by its container or pod name: the
# first 12 hex digits of the SHA-256 of its host name, as the back-end does. `npm run deploy` computes the
# same from the containers it starts, to see the proxy reach each new one. Writes into the configuration
# copy in /tmp that 30-tune-worker-processes.sh made.
set -eu
out=${NGINX_OUTPUT_DIR:-/tmp/nginx}
id=$(tr -d '\n' </proc/sys/kernel/hostname | sha256sum | cut -c1-12)
# shellcheck disable=SC2016 # $served_by is nginx's variable, not the shell's
printf '# Written at start-up by %s.\nmap "" $served_by {\n    default "%s";\n}\n' "$0" "$id" >"$out/conf.d/served-by.conf"
