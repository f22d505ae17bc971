#!/bin/sh
# One nginx worker per CPU the container may use, not per CPU of the node: `worker_processes auto` counts
# the node's. Our take on the official image's hook of the same name (which this file replaces there): the
# CPU quota (cgroup v1 cpu.cfs_quota_us / cpu.cfs_period_us, v2 cpu.max), rounded up, at least 1; `auto`
# when there is none. The root is read-only, so it writes the copy of the configuration in /tmp that nginx
# runs from (-c /tmp/nginx/nginx.conf), making that copy from /etc/nginx first if nothing else did.
#
#   NGINX_WORKER_PROCESSES                       a number (or auto): set explicitly, it wins
#   NGINX_ENTRYPOINT_WORKER_PROCESSES_AUTOTUNE   empty: leave `auto` (on in our images)
#   NGINX_OUTPUT_DIR                             internal: the rendered tree (default /tmp/nginx)
set -eu

out=${NGINX_OUTPUT_DIR:-/tmp/nginx}

# The CPUs a quota of $1 µs per period of $2 µs allows, rounded up; nothing for "no limit".
quota_cpus() {
  case "$1" in '' | max | -1) return 0 ;; esac
  [ "$2" -gt 0 ] && echo $((($1 + $2 - 1) / $2))
}

# Where a cgroup controller's files are for this process: its mount point plus its own path below the
# mount's root (the whole path without a cgroup namespace, "/" with one). $1: v1 controller, or "" for v2.
cgroup_dir() {
  if [ -n "$1" ]; then
    mount=$(awk -v c="$1" '$0 ~ / - cgroup / { n = split($NF, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) { print $4, $5; exit } }' /proc/self/mountinfo)
    path=$(awk -F: -v c="$1" '{ n = split($2, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) { print $3; exit } }' /proc/self/cgroup)
  else
    mount=$(awk '$0 ~ / - cgroup2 / { print $4, $5; exit }' /proc/self/mountinfo)
    path=$(awk -F: '$1 == "0" { print $3; exit }' /proc/self/cgroup)
  fi
  [ -n "$mount" ] && [ -n "$path" ] || return 0
  root=${mount%% *}
  point=${mount#* }
  [ "$root" = / ] && rel=$path || rel=${path#"$root"}
  echo "$point${rel%/}"
}

# The smallest quota between this cgroup and the top of its hierarchy: a parent's limit binds too.
cpu_quota() {
  best=
  v2=$(cgroup_dir '')
  v1=$(cgroup_dir cpu)
  for dir in "$v2" "$v1"; do
    [ -n "$dir" ] || continue
    while :; do
      n=
      if [ -r "$dir/cpu.max" ]; then
        read -r quota period <"$dir/cpu.max" && n=$(quota_cpus "$quota" "$period")
      elif [ -r "$dir/cpu.cfs_quota_us" ] && [ -r "$dir/cpu.cfs_period_us" ]; then
        n=$(quota_cpus "$(cat "$dir/cpu.cfs_quota_us")" "$(cat "$dir/cpu.cfs_period_us")")
      fi
      if [ -n "$n" ] && { [ -z "$best" ] || [ "$n" -lt "$best" ]; }; then best=$n; fi
      parent=${dir%/*}
      { [ -n "$parent" ] && [ "$parent" != "$dir" ] && [ -e "$parent/cgroup.procs" ]; } || break
      dir=$parent
    done
  done
  echo "$best"
}

if [ -n "${NGINX_WORKER_PROCESSES:-}" ]; then
  echo "$NGINX_WORKER_PROCESSES" | grep -Eqx 'auto|[1-9][0-9]{0,3}' || {
    echo "$0: NGINX_WORKER_PROCESSES must be a number from 1 or auto, got '$NGINX_WORKER_PROCESSES'" >&2
    exit 64
  }
  workers=$NGINX_WORKER_PROCESSES
elif [ -n "${NGINX_ENTRYPOINT_WORKER_PROCESSES_AUTOTUNE:-}" ]; then
  workers=$(cpu_quota)
  [ "${workers:-0}" -ge 1 ] 2>/dev/null || workers=auto
else
  workers=auto
fi

if [ ! -f "$out/nginx.conf" ]; then
  mkdir -p "$out"
  cp -R /etc/nginx/. "$out/"
fi
sed -i "s/^worker_processes .*;/worker_processes $workers;/" "$out/nginx.conf"
echo "$0: worker_processes $workers"
