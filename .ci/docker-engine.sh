#!/usr/bin/env bash
# Installs what users run — Docker Engine 28 and Compose v2 — from Debian forky's packages into a
# private prefix, without adding forky to the host's apt, then starts that dockerd.
# Usage: bash .ci/docker-engine.sh [PREFIX]   (default /opt/docker-engine)
set -euo pipefail

prefix=${1:-/opt/docker-engine}
log() { printf '[docker-engine] %s\n' "$*"; }

# The host's runc stays: forky's needs glibc >= 2.38. docker.io from the host's suite brings it.
command -v runc >/dev/null || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc iptables >/dev/null
}

if [ ! -x "$prefix/usr/sbin/dockerd" ] || [ ! -x "$HOME/.docker/cli-plugins/docker-compose" ]; then
  # A throwaway apt state that knows only forky, on the mirror the host already uses.
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -oE '^(URIs:|deb) +(\[[^]]*\] +)?https?://[^ ]+' | grep -v security | grep -oE 'https?://[^ ]+' | head -1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  state=$(mktemp -d)
  trap 'rm -rf "$state"' EXIT
  mkdir -p "$state/lists/partial" "$state/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror forky main" >"$state/sources.list"
  apt_opts=(-o "Dir::Etc::SourceList=$state/sources.list" -o 'Dir::Etc::SourceParts=-'
    -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state" -o 'Acquire::Check-Valid-Until=false'
    -o 'APT::Get::List-Cleanup=0' -o 'APT::Sandbox::User=root')
  log "downloading docker.io, containerd and docker-compose from $mirror forky"
  apt-get "${apt_opts[@]}" update -qq
  (cd "$state" && {
    apt-get "${apt_opts[@]}" download docker.io containerd docker-compose docker-cli 2>/dev/null ||
      apt-get "${apt_opts[@]}" download docker.io containerd docker-compose
  })
  mkdir -p "$prefix"
  for deb in "$state"/*.deb; do dpkg-deb -x "$deb" "$prefix"; done
  mkdir -p "$HOME/.docker/cli-plugins"
  cp "$prefix/usr/libexec/docker/cli-plugins/docker-compose" "$HOME/.docker/cli-plugins/docker-compose"
fi

# Forky's binaries first on PATH, except runc (the host's).
rm -f "$prefix/usr/sbin/runc" "$prefix/usr/bin/runc"
export PATH="$prefix/usr/bin:$prefix/usr/sbin:$PATH"

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd $("$prefix/usr/sbin/dockerd" --version)"
  # vfs: works inside this sandbox without overlay support.
  nohup "$prefix/usr/sbin/dockerd" --storage-driver=vfs >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { tail -50 /var/log/dockerd.log; log 'dockerd did not start'; exit 1; }
fi
log "engine $(docker version --format '{{.Server.Version}}'), $(docker compose version)"
