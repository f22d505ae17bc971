#!/bin/sh
# /docker-entrypoint.sh of the nginx look-alike, as in the official image: when the command is nginx, it runs
# the executable *.sh hooks in /docker-entrypoint.d (and sources *.envsh) in version order, then the command.
set -e
log() { if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then echo "$@"; fi; }
if [ "$1" = nginx ] || [ "$1" = nginx-debug ]; then
  for f in $(find /docker-entrypoint.d/ -follow -type f -print | sort -V); do
    # shellcheck source=/dev/null # the hooks are the derived image's
    case "$f" in
      *.envsh) if [ -x "$f" ]; then log "$0: sourcing $f"; . "$f"; else log "$0: ignoring $f, not executable"; fi ;;
      *.sh) if [ -x "$f" ]; then log "$0: launching $f"; "$f"; else log "$0: ignoring $f, not executable"; fi ;;
      *) log "$0: ignoring $f" ;;
    esac
  done
  log "$0: configuration complete; ready for start up"
fi
exec "$@"
