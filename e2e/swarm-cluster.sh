#!/usr/bin/env bash
# Three Docker hosts on this one machine, for the cluster test (swarm-cluster.test.ts): each node is a
# network namespace with its own dockerd, wired to a bridge in a fourth namespace (the "LAN"), which also
# holds the registry and the load balancer. A veth joins that LAN to the root namespace, so the test's
# requests reach the balancer and each node's proxy. Run as root.
#
#   swarm-cluster.sh up     wipes any leftover, then starts the namespaces, the three dockerds, the
#                           registry (10.213.0.1:5000) and the load balancer (10.213.0.1:80)
#   swarm-cluster.sh down   stops and removes everything `up` made (idempotent, safe on a half-made cluster)
#   swarm-cluster.sh cut N / mend N   takes node N's link down / up again (a machine lost, then back)
#
# The bridge has a namespace of its own: in the root namespace br_netfilter is on and Docker's FORWARD
# policy would drop the nodes' traffic. dockerd starts under `nsenter --net`, not `ip netns exec`, which
# remounts /sys (dockerd then stops with "Devices cgroup isn't mounted").
set -euo pipefail

PREFIX=${CLUSTER_PREFIX:-softy-pinko-node}
LAN=${PREFIX}-lan
ROOT_LINK=softy-cluster0 # the root namespace's end of the LAN (15 characters at most)
NODES=(1 2 3)
NET=10.213.0          # the LAN: the bridge (registry, balancer) is .1, node N is .1N
LINK=10.213.1         # the root namespace (.1) and the LAN (.2), point to point
STATE=${CLUSTER_STATE:-/var/lib/${PREFIX}}

node_addr() { echo "$NET.1$1"; }

# Starts a daemon in the background, logging to $1, without the descriptors this script inherited: a lock
# held by whoever started the script (`flock`) must not live on in the daemons.
daemon() {
  local log=$1 fd
  shift
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
    done
    exec "$@" >"$log" 2>&1 </dev/null
  ) &
}
ns() { echo "${PREFIX}$1"; }
log() { printf '[cluster] %s\n' "$*" >&2; }

# Every process of a namespace, and every container process under a node's cgroup parent, killed.
kill_node() {
  local name=$1
  if [ -e "/run/netns/$name" ]; then
    ip netns pids "$name" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  fi
  local dir
  for dir in /sys/fs/cgroup/*/"$name"; do
    [ -d "$dir" ] || continue
    # shellcheck disable=SC2038 # xargs reads the PIDs the files hold, not file names
    find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  done
}

down() {
  local n name
  for n in "${NODES[@]}"; do kill_node "$(ns "$n")"; done
  kill_node "$LAN"
  sleep 0.5
  for n in "${NODES[@]}"; do
    name=$(ns "$n")
    # Mounts a killed dockerd leaves behind (container netns files, shm) pin its directories.
    grep -oE " (/run/$name|$STATE/$n)[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    find /sys/fs/cgroup/*/"$name" -depth -type d -exec rmdir {} + 2>/dev/null || true
    ip netns delete "$name" 2>/dev/null || true
    rm -rf "/run/$name" "/run/$name.sock" "/run/$name.pid"
  done
  ip link delete "$ROOT_LINK" 2>/dev/null || true
  ip netns delete "$LAN" 2>/dev/null || true
  rm -rf "$STATE"
}

up() {
  down
  mkdir -p "$STATE"
  ip netns add "$LAN"
  ip -n "$LAN" link set lo up
  ip -n "$LAN" link add br0 type bridge
  ip -n "$LAN" addr add "$NET.1/24" dev br0
  ip -n "$LAN" link set br0 up
  ip netns exec "$LAN" sysctl -qw net.ipv4.ip_forward=1
  # The root namespace's way in: the test's requests to the balancer and to each node's proxy.
  ip link add "$ROOT_LINK" type veth peer name root0 netns "$LAN"
  ip addr add "$LINK.1/30" dev "$ROOT_LINK"
  ip link set "$ROOT_LINK" up
  ip -n "$LAN" addr add "$LINK.2/30" dev root0
  ip -n "$LAN" link set root0 up
  ip route add "$NET.0/24" via "$LINK.2"

  local n name
  for n in "${NODES[@]}"; do
    name=$(ns "$n")
    ip netns add "$name"
    ip -n "$name" link set lo up
    ip link add "eth$n" netns "$name" type veth peer name "node$n" netns "$LAN"
    ip -n "$name" link set "eth$n" name eth0
    ip -n "$name" addr add "$(node_addr "$n")/24" dev eth0
    ip -n "$name" link set eth0 up
    ip -n "$name" route add default via "$NET.1"
    ip -n "$LAN" link set "node$n" master br0 up
    mkdir -p "$STATE/$n"
    # Everything of its own, so no two hosts collide: sockets, state, cgroups, local networks.
    # A UTS namespace too, so each host has a name of its own (node-1 …) in `docker node ls`.
    # shellcheck disable=SC2016 # $0 and $@ are the inner sh's: its host name, then dockerd and its flags
    daemon "$STATE/$n/dockerd.log" nsenter --net="/run/netns/$name" \
      unshare --uts sh -c 'hostname "$0" && exec "$@"' "node-$n" dockerd \
      --host "unix:///run/$name.sock" \
      --data-root "$STATE/$n/data" \
      --exec-root "/run/$name" \
      --pidfile "/run/$name.pid" \
      --cgroup-parent "$name" \
      --bip "10.21$((3 + n)).255.1/24" \
      --default-address-pool "base=10.21$((3 + n)).0.0/17,size=24" \
      --storage-driver vfs \
      --insecure-registry "$NET.1:5000" \
      --log-level warn
  done
  for n in "${NODES[@]}"; do
    name=$(ns "$n")
    for _ in $(seq 1 120); do
      docker -H "unix:///run/$name.sock" info >/dev/null 2>&1 && break
      sleep 0.5
    done
    docker -H "unix:///run/$name.sock" info >/dev/null || {
      tail -20 "$STATE/$n/dockerd.log" >&2
      exit 1
    }
  done
  log "3 dockerds up: $(for n in "${NODES[@]}"; do printf '%s ' "$(node_addr "$n")"; done)"

  # The registry every node pulls from (Debian's docker-registry: the distribution project's server).
  mkdir -p "$STATE/registry"
  cat >"$STATE/registry.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/registry
http:
  addr: $NET.1:5000
YAML
  daemon "$STATE/registry.log" nsenter --net="/run/netns/$LAN" docker-registry serve "$STATE/registry.yml"
  # The load balancer in front of the nodes' proxies: the configuration the docs ship, as is.
  daemon "$STATE/haproxy.log" env LB_BIND="$NET.1:80" NODE_1="$(node_addr 1)" NODE_2="$(node_addr 2)" \
    NODE_3="$(node_addr 3)" nsenter --net="/run/netns/$LAN" haproxy -f "$(dirname "$0")/../deploy/swarm/haproxy.cfg"
  log "registry on $NET.1:5000, load balancer on $NET.1:80"
}

# A machine lost: its only link goes down, as a pulled cable would.
cut() { ip -n "$LAN" link set "node$1" down; }
mend() { ip -n "$LAN" link set "node$1" up; }

case "${1:-}" in
  up) up ;;
  down) down ;;
  cut) cut "$2" ;;
  mend) mend "$2" ;;
  *)
    echo "usage: $0 up|down|cut N|mend N" >&2
    exit 64
    ;;
esac
