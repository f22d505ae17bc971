#!/usr/bin/env bash
# images-offline.sh — build our Docker base images without a container registry.
#
# On air-gapped / registry-less machines `FROM nginx:…` and `FROM node:…` cannot
# be pulled. This script builds two local look-alikes of the official images
# from Debian packages (mmdebstrap + apt mirror) and the npm registry, then
# points docker-compose at them through the repo-root `.env`:
#
#   softy-pinko-base/nginx:1.30  ~ nginx:1.30              (Debian forky)
#   softy-pinko-base/node:24     ~ node:24-bookworm-slim   (Debian bookworm)
#   softy-pinko-base/prometheus:2.42  ~ prom/prometheus       (Debian bookworm)
#   softy-pinko-base/nginx-prometheus-exporter:0.11
#                                ~ nginx/nginx-prometheus-exporter (Debian bookworm)
#   softy-pinko-base/postgres:17 ~ postgres:17             (Debian trixie)
#
# Afterwards an unchanged `docker compose up --build` builds FROM them, because
# docker-compose.yml passes ${NODE_IMAGE:-…} / ${NGINX_IMAGE:-…} as build args.
#
# The mmdebstrap hooks below are single-quoted on purpose: mmdebstrap runs each
# one with `sh -c`, "$1" being the rootfs and $SP_* exported by this script.
# shellcheck disable=SC2016
set -euo pipefail

readonly LOG_PREFIX='[images:offline]'
readonly NGINX_TAG='softy-pinko-base/nginx:1.30'
readonly NODE_TAG='softy-pinko-base/node:24'
readonly PROMETHEUS_TAG='softy-pinko-base/prometheus:2.42'
readonly NGINX_EXPORTER_TAG='softy-pinko-base/nginx-prometheus-exporter:0.11'
readonly MONITORING_SUITE='bookworm' # prometheus 2.42 and prometheus-nginx-exporter 0.11
readonly POSTGRES_TAG='softy-pinko-base/postgres:17'
readonly POSTGRES_MAJOR='17'
readonly POSTGRES_SUITE='trixie'    # bookworm has postgresql-15; trixie has 17
readonly NGINX_SUITE='forky'      # bookworm only has nginx 1.22; forky has 1.30
readonly NODE_SUITE='bookworm'    # same base as node:24-bookworm-slim
readonly NGINX_MIN_VERSION='1.27.3' # first release with `resolve` in `upstream`
readonly NODE_MAJOR='24'
readonly NPM_MAJOR='11'
readonly CA_IN_IMAGE='/usr/local/share/ca-certificates/extra-ca-bundle.pem'
readonly CA_LABEL='org.softy-pinko.extra-ca-bundle.sha256'
# Bumped when the nginx look-alike changes (2: /docker-entrypoint.sh and its hooks), so an older one is rebuilt.
readonly NGINX_REVISION_LABEL='org.softy-pinko.nginx-revision'
readonly NGINX_REVISION='2'
readonly STD_PATH='/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
ENV_FILE="$REPO_ROOT/.env"

log()  { printf '%s %s\n' "$LOG_PREFIX" "$*"; }
warn() { printf '%s WARNING: %s\n' "$LOG_PREFIX" "$*" >&2; }
die()  { printf '%s ERROR: %s\n' "$LOG_PREFIX" "$*" >&2; exit 1; }

usage() {
  cat <<EOF
Usage: scripts/images-offline.sh [--force] [--ca-bundle FILE|none] [--skip-registry-check]

Build local stand-ins for the official base images on a machine without a
container registry, then write NODE_IMAGE / NGINX_IMAGE into $ENV_FILE
so that \`docker compose up --build\` uses them.

  $NGINX_TAG   nginx from Debian $NGINX_SUITE (official nginx:1.30 look-alike)
  $NODE_TAG      official Node $NODE_MAJOR binary + npm $NPM_MAJOR on Debian $NODE_SUITE
                                (node:24-bookworm-slim look-alike)

Options:
  --force                 Rebuild images even if they already exist.
  --ca-bundle FILE|none   PEM bundle to trust inside the node image via
                          NODE_EXTRA_CA_CERTS (needed behind a TLS-inspecting
                          proxy / corporate MITM, else \`npm ci\` fails with
                          "self-signed certificate in certificate chain").
                          Default: \$EXTRA_CA_BUNDLE, else the host's
                          /etc/ssl/certs/ca-certificates.crt if it exists.
                          "none" builds without an extra CA.
  --skip-registry-check   Don't run \`npm view\` in the built node image to
                          prove it can reach the npm registry over TLS.
  -h, --help              Show this help.

Environment:
  DEBIAN_MIRROR     Debian mirror URL (default: first plain Debian suite found
                    in /etc/apt/sources.list and /etc/apt/sources.list.d/).
  EXTRA_CA_BUNDLE   Same as --ca-bundle.

Requires: root, docker, mmdebstrap, npm (only to download the Node/npm tarballs).
EOF
}

# ---------------------------------------------------------------- arguments --
FORCE=0
REGISTRY_CHECK=1
CA_BUNDLE="${EXTRA_CA_BUNDLE:-}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --force) FORCE=1 ;;
    --ca-bundle) [[ $# -ge 2 ]] || die "--ca-bundle needs an argument (FILE or none)"; CA_BUNDLE="$2"; shift ;;
    --ca-bundle=*) CA_BUNDLE="${1#*=}" ;;
    --skip-registry-check) REGISTRY_CHECK=0 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done

# Default to the host's system bundle: whatever CA the host trusts (including a
# proxy's CA installed via update-ca-certificates) is then trusted by node too.
if [[ -z "$CA_BUNDLE" && -f /etc/ssl/certs/ca-certificates.crt ]]; then
  CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
fi
[[ -n "$CA_BUNDLE" ]] || CA_BUNDLE=none
if [[ "$CA_BUNDLE" != none ]]; then
  [[ -r "$CA_BUNDLE" ]] || die "CA bundle not readable: $CA_BUNDLE (use --ca-bundle none to skip)"
  grep -q -- '-----BEGIN CERTIFICATE-----' "$CA_BUNDLE" \
    || die "CA bundle $CA_BUNDLE contains no PEM certificate"
  CA_SHA256="$(sha256sum "$CA_BUNDLE" | cut -d' ' -f1)"
else
  CA_SHA256=none
fi

# ------------------------------------------------------------- preflight -----
[[ "$(id -u)" -eq 0 ]] || die "must run as root (mmdebstrap builds the rootfs in root mode)"
command -v docker >/dev/null 2>&1 || die "docker not found (install docker.io)"
docker info >/dev/null 2>&1 || die "docker daemon not reachable (is dockerd running?)"
command -v mmdebstrap >/dev/null 2>&1 || die "mmdebstrap not found (apt-get install mmdebstrap)"

# Map the Debian architecture to the npm package suffix of the Node binary.
DEB_ARCH="$(dpkg --print-architecture)"
case "$DEB_ARCH" in
  amd64) NODE_ARCH=x64 ;;
  arm64) NODE_ARCH=arm64 ;;
  *) die "unsupported architecture $DEB_ARCH (node-linux-* package only for amd64/arm64 here)" ;;
esac

# ------------------------------------------------------------------ mirror --
# Find the Debian mirror in the host's apt config at run time, so no host name
# is ever committed. Only "plain" Debian suites count: -security/-updates live
# on other paths/hosts, and third-party repos (nodesource "nodistro", google
# "cloud-sdk") must never be used as a Debian mirror.
is_debian_suite() {
  case "$1" in
    buster|bullseye|bookworm|trixie|forky|duke|sid|oldoldstable|oldstable|stable|testing|unstable) return 0 ;;
    *) return 1 ;;
  esac
}

find_debian_mirror() {
  local f line uri suite
  # One-line format: deb [options] URI suite component...
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    while read -r line; do
      line="${line%%#*}"
      [[ "$line" =~ ^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+)[[:space:]]+([^[:space:]]+) ]] || continue
      uri="${BASH_REMATCH[2]}"; suite="${BASH_REMATCH[3]}"
      [[ "$uri" =~ ^https?:// ]] && is_debian_suite "$suite" && { echo "${uri%/}"; return 0; }
    done <"$f"
  done
  # deb822 format: stanzas separated by blank lines with Types/URIs/Suites.
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    while IFS=$'\t' read -r uri suites; do
      [[ "$uri" =~ ^https?:// ]] || continue
      for suite in $suites; do
        is_debian_suite "$suite" && { echo "${uri%/}"; return 0; }
      done
    done < <(awk '
      function flush() { if (types ~ /(^|[ \t])deb([ \t]|$)/ && uris != "" && enabled != "no") { split(uris, u, /[ \t]+/); print u[1] "\t" suites } types = uris = suites = ""; enabled = "" }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      { key = tolower($1); sub(/:$/, "", key); val = $0; sub(/^[^:]*:[ \t]*/, "", val) }
      key == "types"   { types = val }
      key == "uris"    { uris = val }
      key == "suites"  { suites = val }
      key == "enabled" { enabled = tolower(val) }
      END { flush() }' "$f")
  done
  return 1
}

if [[ -n "${DEBIAN_MIRROR:-}" ]]; then
  MIRROR="${DEBIAN_MIRROR%/}"
  log "using Debian mirror from \$DEBIAN_MIRROR: $MIRROR"
else
  MIRROR="$(find_debian_mirror)" \
    || die "no Debian mirror found in /etc/apt/sources.list{,.d/} — set DEBIAN_MIRROR=http://…/debian"
  log "using Debian mirror from apt sources: $MIRROR"
fi

# --------------------------------------------------------------- workspace --
# Everything temporary (mmdebstrap's own chroot dir included, via TMPDIR) lives
# under one mktemp dir, removed on any exit, so no root-owned leftovers.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/images-offline.XXXXXX")"
cleanup() { rm -rf -- "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
export TMPDIR="$WORK"
export SP_WORK="$WORK" # read by the mmdebstrap hooks below

# Keep images small: no docs/man pages/locales/info. Written to
# /etc/dpkg/dpkg.cfg.d/ so it also applies to later apt-get installs in
# derived images (like Debian's official *-slim images do). Copyrights stay.
SLIM_OPTS=(
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-include=/usr/share/locale/locale.alias'
  --dpkgopt='path-exclude=/usr/share/lintian/*'
  # The Essential set is unpacked before the dpkg options take effect, so
  # sweep the same paths once more; and drop apt lists/caches and logs.
  --customize-hook='find "$1/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete 2>/dev/null || true'
  --customize-hook='find "$1/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true'
  --customize-hook='rm -rf "$1"/usr/share/man/* "$1"/usr/share/info/* "$1"/usr/share/lintian/*'
  --customize-hook='find "$1/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true'
  --customize-hook='find "$1/var/lib/apt/lists" "$1/var/cache/apt" "$1/var/cache/debconf" -type f \( -name "*_*" -o -name "*.bin" -o -name "*-old" \) -delete 2>/dev/null || true'
  --customize-hook='rm -f "$1"/var/log/dpkg.log "$1"/var/log/alternatives.log "$1"/var/log/apt/*.log "$1"/var/log/apt/eipp.log.xz'
)

# Run mmdebstrap with its (and its hooks') chatter in a log file; on failure
# show the tail so CI logs still explain what went wrong.
run_mmdebstrap() {
  local name="$1"; shift
  local logf="$WORK/mmdebstrap-$name.log"
  if ! mmdebstrap "$@" >"$logf" 2>&1; then
    tail -n 60 "$logf" >&2
    die "mmdebstrap failed for the $name image (see output above)"
  fi
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }

# Tag BASE_ID + `STOPSIGNAL SIG` as TAG. Uses the legacy builder on purpose:
# it is in every Docker version, needs no buildx, and resolves the local
# image ID without contacting any registry. An empty build context is sent.
add_stopsignal() {
  local base="$1" sig="$2" tag="$3" out
  if ! out="$(printf 'FROM %s\nSTOPSIGNAL %s\n' "$base" "$sig" \
      | DOCKER_BUILDKIT=0 docker build -q -t "$tag" - 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "could not tag $tag (docker build FROM $base failed)"
  fi
}

# After a rebuild the previous image is left dangling; drop it (best effort,
# it may still be used by containers or as a parent of other images).
drop_old_image() {
  local old="$1" tag="$2"
  [[ -n "$old" && "$old" != "$(image_id "$tag")" ]] || return 0
  if docker rmi "$old" >/dev/null 2>&1; then log "removed previous $tag image ${old:7:12}"; fi
}

# ------------------------------------------------------------ nginx image --
# /docker-entrypoint.sh of the look-alike, as in the official image: when the command is nginx, it runs
# the executable *.sh hooks in /docker-entrypoint.d (and sources *.envsh) in version order, then the command.
nginx_entrypoint() {
  cat <<'ENTRYPOINT'
#!/bin/sh
set -e
log() { if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then echo "$@"; fi; }
if [ "$1" = nginx ] || [ "$1" = nginx-debug ]; then
  for f in $(find /docker-entrypoint.d/ -follow -type f -print | sort -V); do
    case "$f" in
      *.envsh) if [ -x "$f" ]; then log "$0: sourcing $f"; . "$f"; else log "$0: ignoring $f, not executable"; fi ;;
      *.sh) if [ -x "$f" ]; then log "$0: launching $f"; "$f"; else log "$0: ignoring $f, not executable"; fi ;;
      *) log "$0: ignoring $f" ;;
    esac
  done
  log "$0: configuration complete; ready for start up"
fi
exec "$@"
ENTRYPOINT
}

build_nginx() {
  nginx_entrypoint >"$WORK/nginx-entrypoint.sh"
  local tar="$WORK/nginx-rootfs.tar"
  log "building $NGINX_TAG: Debian $NGINX_SUITE minbase + nginx (mmdebstrap, ~1 min)"
  # Check-Valid-Until=false: the mirror this runs against may be a frozen
  # snapshot whose testing Release file has expired; signatures are still
  # verified against the host's debian-archive-keyring (bookworm's keyring
  # already contains the bookworm/trixie archive keys that sign forky).
  run_mmdebstrap nginx --mode=root --variant=minbase \
    --include=nginx,curl,ca-certificates,gettext-base \
    --aptopt='Acquire::Check-Valid-Until "false"' \
    "${SLIM_OPTS[@]}" \
    --customize-hook='chroot "$1" nginx -v 2>&1 | sed -n "s|.*nginx/\([0-9.]*\).*|\1|p" >"$SP_WORK/nginx.version"' \
    --customize-hook='! chroot "$1" getent passwd 101 >/dev/null || { echo "uid 101 already taken in rootfs" >&2; exit 1; }' \
    --customize-hook='chroot "$1" groupadd --system --gid 101 nginx' \
    --customize-hook='chroot "$1" useradd --system --uid 101 --gid nginx --no-create-home --home-dir /nonexistent --shell /bin/false --comment "nginx user" nginx' \
    --customize-hook='mkdir -p "$1/etc/nginx/conf.d" "$1/usr/share/nginx/html" "$1/var/cache/nginx" "$1/var/log/nginx"' \
    --customize-hook='rm -f "$1/etc/nginx/sites-enabled/default"; find "$1/etc/nginx/conf.d" -mindepth 1 -delete' \
    --customize-hook='sed -i "s/^user www-data;/user nginx;/" "$1/etc/nginx/nginx.conf"' \
    --customize-hook='ln -sf /dev/stdout "$1/var/log/nginx/access.log"; ln -sf /dev/stderr "$1/var/log/nginx/error.log"' \
    --customize-hook='install -m 0755 "$SP_WORK/nginx-entrypoint.sh" "$1/docker-entrypoint.sh" && mkdir -p "$1/docker-entrypoint.d"' \
    "$NGINX_SUITE" "$tar" "$MIRROR"

  # Fail before tagging anything if the suite's nginx is too old for our
  # config (`resolve` inside `upstream` needs >= 1.27.3).
  local ver
  ver="$(cat "$WORK/nginx.version" 2>/dev/null || true)"
  [[ -n "$ver" ]] || die "could not determine the nginx version in the $NGINX_SUITE rootfs"
  if ! dpkg --compare-versions "$ver" ge "$NGINX_MIN_VERSION"; then
    die "nginx $ver in Debian $NGINX_SUITE is older than $NGINX_MIN_VERSION (needed for 'resolve' in upstream blocks)"
  fi
  log "nginx version in rootfs: $ver (>= $NGINX_MIN_VERSION)"

  # Image config mirrors the official nginx image's Dockerfile.
  # `docker import --change` accepts no STOPSIGNAL on daemons < 25, so that
  # one instruction goes on top in a metadata-only build step (no new layer).
  local id
  id="$(docker import \
    --change "ENV PATH=$STD_PATH" \
    --change "ENV NGINX_VERSION=$ver" \
    --change 'EXPOSE 80' \
    --change "LABEL $NGINX_REVISION_LABEL=$NGINX_REVISION" \
    --change 'ENTRYPOINT ["/docker-entrypoint.sh"]' \
    --change 'CMD ["nginx", "-g", "daemon off;"]' \
    --message "images-offline.sh: Debian $NGINX_SUITE nginx $ver" \
    "$tar")"
  rm -f "$tar"
  add_stopsignal "$id" SIGQUIT "$NGINX_TAG"

  log "verifying $NGINX_TAG"
  local got
  got="$(docker run --rm "$NGINX_TAG" nginx -v 2>&1)" || die "$NGINX_TAG: 'nginx -v' failed"
  [[ "$got" == *"nginx/$ver"* ]] || die "$NGINX_TAG: 'nginx -v' says '$got', expected $ver"
  # The stock Debian config (our services replace it) must still be valid.
  docker run --rm "$NGINX_TAG" nginx -t -q || die "$NGINX_TAG: 'nginx -t' failed"
  [[ "$(docker run --rm "$NGINX_TAG" id -u nginx)" == 101 ]] || die "$NGINX_TAG: user nginx is not uid 101"
  log "built $NGINX_TAG (nginx $ver)"
}

# ------------------------------------------------------------- node image --
# Download a package tarball from the npm registry (honours the host's npm
# config: registry, proxy, cafile). Prints the path of the .tgz.
npm_pack() {
  local spec="$1" dir="$WORK/npm-pack" out
  mkdir -p "$dir"
  out="$(cd "$dir" && npm pack --silent "$spec")" || die "npm pack $spec failed"
  out="$(printf '%s\n' "$out" | tail -n1)"
  [[ -f "$dir/$out" ]] || die "npm pack $spec produced no tarball"
  echo "$dir/$out"
}

tgz_version() { # version field of package/package.json inside an npm tarball
  tar -xzOf "$1" package/package.json \
    | sed -n '/^[[:space:]]*"version":/{s/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p;q;}'
}

# Downloads the official Node binary and npm from the npm registry into $WORK/node and $SP_NPM_TGZ;
# sets the caller's node_ver and npm_ver.
download_node() {
  command -v npm >/dev/null 2>&1 \
    || die "npm not found on the host; it is needed to download node-linux-$NODE_ARCH@$NODE_MAJOR and npm@$NPM_MAJOR (apt-get install npm)"

  log "downloading node-linux-$NODE_ARCH@$NODE_MAJOR and npm@$NPM_MAJOR from the npm registry"
  local node_tgz npm_tgz
  node_tgz="$(npm_pack "node-linux-$NODE_ARCH@$NODE_MAJOR")"
  npm_tgz="$(npm_pack "npm@$NPM_MAJOR")"
  node_ver="$(tgz_version "$node_tgz")"
  npm_ver="$(tgz_version "$npm_tgz")"
  [[ "$node_ver" == "$NODE_MAJOR".* ]] || die "unexpected Node version '$node_ver' from node-linux-$NODE_ARCH@$NODE_MAJOR"
  # The node-linux-* package carries just package/bin/node (the official binary).
  mkdir -p "$WORK/node"
  tar -xzf "$node_tgz" -C "$WORK/node" --no-same-owner package/bin/node \
    || die "node-linux-$NODE_ARCH tarball has no package/bin/node"
  export SP_NPM_TGZ="$npm_tgz"
  log "Node v$node_ver, npm $npm_ver"
}

# Sets the caller's ca_hook: the mmdebstrap hook that installs the extra CA bundle, or a no-op.
node_ca_hook() {
  ca_hook=(--customize-hook=true)
  if [[ "$CA_BUNDLE" != none ]]; then
    # NODE_EXTRA_CA_CERTS adds these to Node's built-in roots, so npm inside
    # derived builds trusts e.g. a TLS-inspecting proxy the host trusts.
    # (.pem, not .crt: update-ca-certificates leaves the system store alone.)
    export SP_CA_BUNDLE="$CA_BUNDLE"
    ca_hook=(--customize-hook="install -D -m 0644 \"\$SP_CA_BUNDLE\" \"\$1$CA_IN_IMAGE\"")
    log "trusting extra CA bundle $CA_BUNDLE in $NODE_TAG"
  else
    log "no extra CA bundle (--ca-bundle none)"
  fi
}

# Checks $NODE_TAG: node and npm at the versions downloaded, user node as uid 1000, the registry reachable.
verify_node() {
  local node_ver=$1 npm_ver=$2
  log "verifying $NODE_TAG"
  local got
  got="$(docker run --rm "$NODE_TAG" node --version)" || die "$NODE_TAG: 'node --version' failed"
  [[ "$got" == "v$node_ver" && "$got" == v"$NODE_MAJOR".* ]] || die "$NODE_TAG: node --version says '$got', expected v$node_ver"
  got="$(docker run --rm "$NODE_TAG" npm --version)" || die "$NODE_TAG: 'npm --version' failed"
  [[ "$got" == "$npm_ver" ]] || die "$NODE_TAG: npm --version says '$got', expected $npm_ver"
  [[ "$(docker run --rm "$NODE_TAG" id -u node)" == 1000 ]] || die "$NODE_TAG: user node is not uid 1000"
  if [[ "$REGISTRY_CHECK" == 1 ]]; then
    # What `npm ci` in our Dockerfiles needs: TLS to the registry from inside
    # a container. Fails here (not mid compose build) if the CA is missing.
    log "checking npm registry access over TLS from inside $NODE_TAG"
    docker run --rm "$NODE_TAG" npm view --no-update-notifier is-number version >/dev/null \
      || die "$NODE_TAG cannot reach the npm registry (TLS-inspecting proxy? pass --ca-bundle FILE with its CA; or --skip-registry-check)"
  fi
}

build_node() {
  local node_ver npm_ver
  download_node

  local ca_hook
  node_ca_hook

  # In bookworm, init-system-helpers pulls in `usrmerge`, which drags in full
  # perl (~45 MB). mmdebstrap's merged-usr hook sets up the /usr symlinks
  # itself and installs the tiny `usr-is-merged` instead (as debian:*-slim).
  local usr_hook=()
  if [[ -d /usr/share/mmdebstrap/hooks/merged-usr ]]; then
    usr_hook=(--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr)
  else
    warn "mmdebstrap merged-usr hook not found; the node image will include perl via usrmerge"
  fi

  local tar="$WORK/node-rootfs.tar"
  log "building $NODE_TAG: Debian $NODE_SUITE minbase + Node v$node_ver (mmdebstrap, ~1 min)"
  # Layout and user exactly as in the official node image: binary in
  # /usr/local/bin, npm in /usr/local/lib/node_modules/npm with relative
  # npm/npx symlinks, user node 1000:1000 with a home.
  run_mmdebstrap node --mode=root --variant=minbase \
    --include=ca-certificates \
    "${usr_hook[@]}" \
    "${SLIM_OPTS[@]}" \
    --customize-hook='install -D -m 0755 "$SP_WORK/node/package/bin/node" "$1/usr/local/bin/node"' \
    --customize-hook='mkdir -p "$1/usr/local/lib/node_modules/npm" && tar -xzf "$SP_NPM_TGZ" -C "$1/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner' \
    --customize-hook='chmod 0755 "$1/usr/local/lib/node_modules/npm/bin/npm-cli.js" "$1/usr/local/lib/node_modules/npm/bin/npx-cli.js"' \
    --customize-hook='ln -sfn ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm"; ln -sfn ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"' \
    --customize-hook='chroot "$1" groupadd --gid 1000 node' \
    --customize-hook='chroot "$1" useradd --uid 1000 --gid node --shell /bin/bash --create-home node' \
    "${ca_hook[@]}" \
    "$NODE_SUITE" "$tar" "$MIRROR"

  local changes=(
    --change "ENV NODE_VERSION=$node_ver"
    --change "ENV PATH=$STD_PATH"
    --change "LABEL $CA_LABEL=$CA_SHA256"
    --change 'CMD ["node"]'
  )
  [[ "$CA_BUNDLE" == none ]] || changes+=(--change "ENV NODE_EXTRA_CA_CERTS=$CA_IN_IMAGE")
  docker import "${changes[@]}" \
    --message "images-offline.sh: Debian $NODE_SUITE + Node v$node_ver + npm $npm_ver" \
    "$tar" "$NODE_TAG" >/dev/null
  rm -f "$tar"

  verify_node "$node_ver" "$npm_ver"
  log "built $NODE_TAG (node v$node_ver, npm $npm_ver)"
}

# ------------------------------------------------------ monitoring images --
# For docker-compose.monitoring.yml: look-alikes of the official Prometheus and nginx exporter images,
# same entrypoints, users and paths, from Debian bookworm's packages.
merged_usr_hook() { # mmdebstrap's merged-usr hook keeps usrmerge (and with it perl) out of the image
  [[ -d /usr/share/mmdebstrap/hooks/merged-usr ]] && echo --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  return 0
}

build_prometheus() {
  local tar="$WORK/prometheus-rootfs.tar" ver usr_hook
  usr_hook="$(merged_usr_hook)"
  log "building $PROMETHEUS_TAG: Debian $MONITORING_SUITE minbase + prometheus (mmdebstrap, ~1 min)"
  # /prometheus belongs to nobody, as in the official image, so a fresh named volume is writable.
  run_mmdebstrap prometheus --mode=root --variant=minbase \
    --include=prometheus \
    ${usr_hook:+"$usr_hook"} \
    "${SLIM_OPTS[@]}" \
    --customize-hook='chroot "$1" prometheus --version 2>&1 | sed -n "s/^prometheus, version \([0-9.]*\).*/\1/p" >"$SP_WORK/prometheus.version"' \
    --customize-hook='mkdir -p "$1/prometheus" && chown 65534:65534 "$1/prometheus"' \
    "$MONITORING_SUITE" "$tar" "$MIRROR"
  ver="$(cat "$WORK/prometheus.version" 2>/dev/null || true)"
  [[ -n "$ver" ]] || die "could not determine the prometheus version in the $MONITORING_SUITE rootfs"

  docker import \
    --change "ENV PATH=$STD_PATH" \
    --change 'USER nobody' \
    --change 'WORKDIR /prometheus' \
    --change 'VOLUME ["/prometheus"]' \
    --change 'EXPOSE 9090' \
    --change 'ENTRYPOINT ["/bin/prometheus"]' \
    --change 'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]' \
    --message "images-offline.sh: Debian $MONITORING_SUITE prometheus $ver" \
    "$tar" "$PROMETHEUS_TAG" >/dev/null
  rm -f "$tar"

  log "verifying $PROMETHEUS_TAG"
  local got
  got="$(docker run --rm "$PROMETHEUS_TAG" --version 2>&1)" || die "$PROMETHEUS_TAG: 'prometheus --version' failed"
  [[ "$got" == *"version $ver"* ]] || die "$PROMETHEUS_TAG: 'prometheus --version' says '$got', expected $ver"
  docker run --rm --entrypoint promtool "$PROMETHEUS_TAG" check config /etc/prometheus/prometheus.yml >/dev/null \
    || die "$PROMETHEUS_TAG: promtool check config failed on the packaged config"
  log "built $PROMETHEUS_TAG (prometheus $ver)"
}

build_nginx_exporter() {
  local tar="$WORK/nginx-exporter-rootfs.tar" usr_hook
  usr_hook="$(merged_usr_hook)"
  log "building $NGINX_EXPORTER_TAG: Debian $MONITORING_SUITE minbase + prometheus-nginx-exporter (mmdebstrap)"
  # The official image's binary name, so the same entrypoint works with either image.
  run_mmdebstrap nginx-exporter --mode=root --variant=minbase \
    --include=prometheus-nginx-exporter \
    ${usr_hook:+"$usr_hook"} \
    "${SLIM_OPTS[@]}" \
    --customize-hook='ln -s prometheus-nginx-exporter "$1/usr/bin/nginx-prometheus-exporter"' \
    "$MONITORING_SUITE" "$tar" "$MIRROR"

  docker import \
    --change "ENV PATH=$STD_PATH" \
    --change 'USER 1001:1001' \
    --change 'EXPOSE 9113' \
    --change 'ENTRYPOINT ["/usr/bin/nginx-prometheus-exporter"]' \
    --message "images-offline.sh: Debian $MONITORING_SUITE prometheus-nginx-exporter" \
    "$tar" "$NGINX_EXPORTER_TAG" >/dev/null
  rm -f "$tar"

  log "verifying $NGINX_EXPORTER_TAG"
  docker run --rm "$NGINX_EXPORTER_TAG" --version >/dev/null 2>&1 \
    || die "$NGINX_EXPORTER_TAG: 'nginx-prometheus-exporter --version' failed"
  log "built $NGINX_EXPORTER_TAG"
}

# -------------------------------------------------------- postgres image --
# For docker-compose.postgres.yml: a look-alike of the official postgres:17 image from Debian trixie's
# postgresql-17: the same paths (PGDATA, /var/run/postgresql), user postgres 999:999, PATH, STOPSIGNAL,
# and an entrypoint with the part of the official one this project uses (see postgres_entrypoint).

# docker-entrypoint.sh of the look-alike. Like the official one: POSTGRES_PASSWORD / POSTGRES_USER /
# POSTGRES_DB, each also as *_FILE (a secret); an empty PGDATA is initialised with scram-sha-256 for TCP
# and the database created; started as root it drops to postgres, started as postgres it just runs.
# Not carried over: /docker-entrypoint-initdb.d, POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD.
postgres_entrypoint() {
  cat <<'ENTRYPOINT'
#!/usr/bin/env bash
set -Eeuo pipefail

# VAR or VAR_FILE (not both), else the default; exported as VAR.
file_env() {
  local var="$1" file_var="${1}_FILE" value="${2:-}"
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    echo "error: both $var and $file_var are set (but are exclusive)" >&2
    exit 1
  fi
  if [ -n "${!var:-}" ]; then value="${!var}"; elif [ -n "${!file_var:-}" ]; then value="$(<"${!file_var}")"; fi
  export "$var"="$value"
  unset "$file_var"
}

# `postgres --version` and the like only print something: no set-up for them.
wants_help() {
  local arg
  for arg; do
    case "$arg" in -'?' | --help | --describe-config | -C | -V | --version) return 0 ;; esac
  done
  return 1
}

if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi

if [ "$1" = 'postgres' ] && ! wants_help "$@"; then
  if [ "$(id -u)" = '0' ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
  fi
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA" 2>/dev/null || :
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    file_env POSTGRES_PASSWORD
    file_env POSTGRES_USER postgres
    file_env POSTGRES_DB "$POSTGRES_USER"
    if [ -z "$POSTGRES_PASSWORD" ]; then
      echo 'error: the database is uninitialized and the superuser password is not specified:' \
        'set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE' >&2
      exit 1
    fi
    initdb -D "$PGDATA" --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
      --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256
    printf '\nhost all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
    printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
    if [ "$POSTGRES_DB" != 'postgres' ]; then
      # Socket only, as the official image does: nothing can connect over TCP before the setup is done.
      pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k /var/run/postgresql" -w start
      psql -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$POSTGRES_USER" -d postgres -q \
        --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
      pg_ctl -D "$PGDATA" -m fast -w stop
    fi
    echo 'PostgreSQL init process complete; ready for start up.'
  fi
  unset POSTGRES_PASSWORD
fi
exec "$@"
ENTRYPOINT
}

# Runs inside the rootfs after postgresql-17 is installed: user postgres becomes 999:999 as in the official
# image, the cluster Debian made is dropped (the entrypoint makes one in PGDATA), the directories are made.
postgres_setup() {
  cat <<'SETUP'
set -eu
old_uid="$(id -u postgres)"; old_gid="$(id -g postgres)"
if [ "$old_uid" != 999 ]; then
  ! getent passwd 999 >/dev/null || { echo 'uid 999 already taken in rootfs' >&2; exit 1; }
  ! getent group 999 >/dev/null || { echo 'gid 999 already taken in rootfs' >&2; exit 1; }
  groupmod -g 999 postgres
  usermod -u 999 -g 999 postgres
  find / -xdev \( -uid "$old_uid" -o -gid "$old_gid" \) -exec chown -h 999:999 {} +
fi
rm -rf /etc/postgresql/17 /var/lib/postgresql/17
mkdir -p /var/lib/postgresql/data /var/run/postgresql /docker-entrypoint-initdb.d
chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
chmod 1777 /var/lib/postgresql/data
chmod 3777 /var/run/postgresql
/usr/lib/postgresql/17/bin/postgres --version | sed -n 's/.* \([0-9][0-9.]*\).*/\1/p' >/tmp/postgres.version
SETUP
}

build_postgres() {
  local tar="$WORK/postgres-rootfs.tar" ver usr_hook
  usr_hook="$(merged_usr_hook)"
  postgres_entrypoint >"$WORK/docker-entrypoint.sh"
  postgres_setup >"$WORK/postgres-setup.sh"
  log "building $POSTGRES_TAG: Debian $POSTGRES_SUITE minbase + postgresql-$POSTGRES_MAJOR (mmdebstrap, ~1 min)"
  # No main cluster from the package's postinst: the entrypoint initialises PGDATA on first start.
  # Check-Valid-Until=false: as for forky above, the mirror may be a snapshot with an expired Release file.
  run_mmdebstrap postgres --mode=root --variant=minbase \
    --include="postgresql-$POSTGRES_MAJOR" \
    --aptopt='Acquire::Check-Valid-Until "false"' \
    ${usr_hook:+"$usr_hook"} \
    "${SLIM_OPTS[@]}" \
    --essential-hook='mkdir -p "$1/etc/postgresql-common/createcluster.d" && echo "create_main_cluster = false" >"$1/etc/postgresql-common/createcluster.d/no-main-cluster.conf"' \
    --customize-hook='cp "$SP_WORK/postgres-setup.sh" "$1/tmp/" && chroot "$1" sh /tmp/postgres-setup.sh && mv "$1/tmp/postgres.version" "$SP_WORK/" && rm "$1/tmp/postgres-setup.sh"' \
    --customize-hook='install -m 0755 "$SP_WORK/docker-entrypoint.sh" "$1/usr/local/bin/docker-entrypoint.sh"' \
    "$POSTGRES_SUITE" "$tar" "$MIRROR"
  ver="$(cat "$WORK/postgres.version" 2>/dev/null || true)"
  [[ "$ver" == "$POSTGRES_MAJOR".* ]] || die "no PostgreSQL $POSTGRES_MAJOR in the $POSTGRES_SUITE rootfs (got '$ver')"

  local id
  id="$(docker import \
    --change "ENV PATH=/usr/lib/postgresql/$POSTGRES_MAJOR/bin:$STD_PATH" \
    --change "ENV PG_MAJOR=$POSTGRES_MAJOR" \
    --change "ENV PG_VERSION=$ver" \
    --change 'ENV PGDATA=/var/lib/postgresql/data' \
    --change 'VOLUME ["/var/lib/postgresql/data"]' \
    --change 'EXPOSE 5432' \
    --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
    --change 'CMD ["postgres"]' \
    --message "images-offline.sh: Debian $POSTGRES_SUITE postgresql-$POSTGRES_MAJOR $ver" \
    "$tar")"
  rm -f "$tar"
  # mmdebstrap empties /run, so the socket folder is made on top, as the official image has it; and the
  # official image stops with SIGINT, PostgreSQL's fast shutdown. Legacy builder: no registry, no buildx.
  local out
  if ! out="$(printf 'FROM %s\nRUN %s\nSTOPSIGNAL SIGINT\n' "$id" \
      'mkdir -p /var/run/postgresql && chown 999:999 /var/run/postgresql && chmod 3777 /var/run/postgresql' \
      | DOCKER_BUILDKIT=0 docker build -q -t "$POSTGRES_TAG" - 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "could not finish $POSTGRES_TAG (docker build FROM $id failed)"
  fi

  log "verifying $POSTGRES_TAG"
  local got name="images-offline-postgres-$$" ready=0
  got="$(docker run --rm "$POSTGRES_TAG" postgres --version)" || die "$POSTGRES_TAG: 'postgres --version' failed"
  [[ "$got" == *" $ver"* ]] || die "$POSTGRES_TAG: 'postgres --version' says '$got', expected $ver"
  [[ "$(docker run --rm "$POSTGRES_TAG" id -u postgres)" == 999 ]] || die "$POSTGRES_TAG: user postgres is not uid 999"
  [[ "$(docker run --rm "$POSTGRES_TAG" stat -c %u /var/run/postgresql)" == 999 ]] \
    || die "$POSTGRES_TAG: /var/run/postgresql is not postgres's"
  # What the Compose override relies on: started as postgres, the password from a file, a database made.
  docker run -d --name "$name" --user postgres -e POSTGRES_USER=check -e POSTGRES_DB=check_db \
    -e POSTGRES_PASSWORD_FILE=/tmp/pw --entrypoint bash "$POSTGRES_TAG" \
    -c 'echo s3cret >/tmp/pw && exec docker-entrypoint.sh postgres' >/dev/null \
    || die "$POSTGRES_TAG: could not start a check container"
  for _ in $(seq 1 60); do
    if docker exec "$name" pg_isready -q -h 127.0.0.1 -U check -d check_db; then ready=1; break; fi
    sleep 1
  done
  if [[ "$ready" == 1 ]]; then
    got="$(docker exec -e PGPASSWORD=s3cret "$name" psql -h 127.0.0.1 -U check -d check_db -Atc 'SELECT current_database()')" \
      || got=''
  fi
  [[ "$ready" == 1 && "$got" == check_db ]] || { docker logs "$name" 2>&1 | tail -20 >&2; docker rm -f "$name" >/dev/null; die "$POSTGRES_TAG: the init check failed"; }
  docker rm -f "$name" >/dev/null
  log "built $POSTGRES_TAG (PostgreSQL $ver)"
}

# ----------------------------------------------------------------- driver --
# Builds TAG with BUILD_FUNCTION, then drops the image it replaced.
rebuild() {
  local tag="$1" old_id
  old_id="$(image_id "$tag")"
  "$2"
  drop_old_image "$old_id" "$tag"
}

# Reuses TAG when it exists (unless --force), else builds it.
build_unless_present() {
  if [[ "$FORCE" == 0 ]] && image_exists "$1"; then
    log "$1 already exists — reusing it (--force to rebuild)"
  else
    rebuild "$1" "$2"
  fi
}

# Like build_unless_present, but an existing TAG whose LABEL is not WANTED (built from another recipe) is
# rebuilt with BUILD_FUNCTION; WHY says how it differs.
rebuild_unless_label() {
  local tag="$1" label="$2" wanted="$3" build="$4" why="$5" have
  have="$(docker image inspect -f "{{ index .Config.Labels \"$label\" }}" "$tag" 2>/dev/null || true)"
  if [[ "$FORCE" == 0 ]] && image_exists "$tag" && [[ "$have" != "$wanted" ]]; then
    log "$tag exists but $why — rebuilding"
    rebuild "$tag" "$build"
  else
    build_unless_present "$tag" "$build"
  fi
}

rebuild_unless_label "$NGINX_TAG" "$NGINX_REVISION_LABEL" "$NGINX_REVISION" build_nginx \
  'is an older look-alike (no /docker-entrypoint.sh)'
# The CA bundle is baked in, so a different --ca-bundle means a rebuild.
rebuild_unless_label "$NODE_TAG" "$CA_LABEL" "$CA_SHA256" build_node 'was built with a different CA bundle'

build_unless_present "$PROMETHEUS_TAG" build_prometheus
build_unless_present "$NGINX_EXPORTER_TAG" build_nginx_exporter
build_unless_present "$POSTGRES_TAG" build_postgres

# ------------------------------------------------------------------- .env --
# Sets KEY=VALUE in .env: the first KEY line is replaced in place, others dropped, every other line kept.
set_env_key() {
  local tmp="$WORK/env.new"
  [[ -f "$ENV_FILE" ]] || : >"$ENV_FILE"
  awk -v key="$1" -v line="$1=$2" '
    $0 ~ "^[[:space:]]*(export[[:space:]]+)?" key "[[:space:]]*=" { if (!n++) print line; next }
    { print }
    END { if (!n) print line }' "$ENV_FILE" >"$tmp"
  cat "$tmp" >"$ENV_FILE" # rewrite in place: keeps the file's owner/mode
}
for entry in NODE_IMAGE="$NODE_TAG" NGINX_IMAGE="$NGINX_TAG" PROMETHEUS_IMAGE="$PROMETHEUS_TAG" \
  NGINX_EXPORTER_IMAGE="$NGINX_EXPORTER_TAG" POSTGRES_IMAGE="$POSTGRES_TAG"; do
  set_env_key "${entry%%=*}" "${entry#*=}"
  log "wrote $entry to $ENV_FILE"
done
if git -C "$REPO_ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1 \
  && ! git -C "$REPO_ROOT" check-ignore -q "$ENV_FILE"; then
  warn "$ENV_FILE is not git-ignored — add '.env' to .gitignore so it is never committed"
fi

log "done. Images:"
docker images --format '  {{.Repository}}:{{.Tag}}  {{.Size}}' | grep -F 'softy-pinko-base/' || true
log "now run: docker compose up --build"
