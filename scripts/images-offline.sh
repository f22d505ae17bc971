#!/usr/bin/env bash
# Builds look-alikes of the official base images on a machine without a container registry, from Debian
# packages (mmdebstrap and the host's apt mirror) and, for Node, the npm registry; then points Compose at
# them through the repository's .env. One builder (build) and one short recipe per image (recipe_NAME: the
# packages and mmdebstrap hooks; dockerfile_NAME: the image's settings; verify_NAME: what must hold).
#
# The mmdebstrap hooks are single-quoted on purpose: mmdebstrap runs each with `sh -c`, "$1" being the
# rootfs and $SP_* exported by this script.
# shellcheck disable=SC2016
set -euo pipefail

readonly NGINX_TAG='softy-pinko-base/nginx:1.30'
readonly NODE_TAG='softy-pinko-base/node:24'
readonly PROMETHEUS_TAG='softy-pinko-base/prometheus:2.42'
readonly NGINX_EXPORTER_TAG='softy-pinko-base/nginx-prometheus-exporter:0.11'
readonly POSTGRES_TAG='softy-pinko-base/postgres:17'
readonly NODE_MAJOR='24' NPM_MAJOR='11' CA_IN_IMAGE='/usr/local/share/ca-certificates/extra-ca-bundle.pem'
# An image whose label differs is rebuilt: bump the nginx revision when the look-alike changes.
readonly NGINX_LABEL='org.softy-pinko.nginx-revision=2'
readonly CA_LABEL='org.softy-pinko.extra-ca-bundle.sha256'
readonly STD_PATH='/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
ENV_FILE="$REPO_ROOT/.env"

log() { printf '[images:offline] %s\n' "$*"; }
die() { printf '[images:offline] ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
  cat <<EOF
Usage: scripts/images-offline.sh [--force] [--ca-bundle FILE|none]
Builds stand-ins for the official base images without a registry (reusing those that exist), then names them
in $ENV_FILE for \`docker compose up --build\`:
  $NGINX_TAG (Debian forky's nginx), $NODE_TAG (Node $NODE_MAJOR's official binary, npm $NPM_MAJOR),
  $PROMETHEUS_TAG, $NGINX_EXPORTER_TAG, $POSTGRES_TAG (Debian's packages)
  --force                rebuild the images even where they exist
  --ca-bundle FILE|none  a PEM bundle the node image trusts (NODE_EXTRA_CA_CERTS); default \$EXTRA_CA_BUNDLE,
                         else the host's /etc/ssl/certs/ca-certificates.crt
DEBIAN_MIRROR overrides the mirror in the host's apt sources. Needs root, docker, mmdebstrap and npm.
EOF
}

FORCE=0
CA_BUNDLE="${EXTRA_CA_BUNDLE:-}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --force) FORCE=1 ;;
    --ca-bundle) [[ $# -ge 2 ]] || die '--ca-bundle needs FILE or none'; CA_BUNDLE="$2"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done

# Whatever CA the host trusts (a proxy's CA installed with update-ca-certificates included), node trusts too.
[[ -n "$CA_BUNDLE" || ! -f /etc/ssl/certs/ca-certificates.crt ]] || CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
CA_BUNDLE="${CA_BUNDLE:-none}" CA_SHA256=none
if [[ "$CA_BUNDLE" != none ]]; then
  grep -qs -- '-----BEGIN CERTIFICATE-----' "$CA_BUNDLE" || die "no PEM certificate in $CA_BUNDLE (--ca-bundle none to skip)"
  CA_SHA256="$(sha256sum "$CA_BUNDLE" | cut -d' ' -f1)"
fi

[[ "$(id -u)" -eq 0 ]] || die 'must run as root (mmdebstrap builds the rootfs in root mode)'
docker info >/dev/null 2>&1 || die 'no docker daemon reachable (is dockerd running?)'
command -v mmdebstrap >/dev/null || die 'mmdebstrap not found (apt-get install mmdebstrap)'

# The host's first plain Debian suite (no -security, -updates or third-party repositories), so no mirror's
# host name is ever committed.
if [[ -n "${DEBIAN_MIRROR:-}" ]]; then
  MIRROR="${DEBIAN_MIRROR%/}"
else
  MIRROR="$(apt-get indextargets --no-release-info --format '$(TARGET_OF) $(REPO_URI) $(RELEASE)' | awk '
    $1 == "deb" && $2 ~ /^https?:/ && $3 ~ /^(bullseye|bookworm|trixie|forky|duke|sid|(old)*stable|testing|unstable)$/ {
      sub(/\/$/, "", $2); print $2; exit }')"
  [[ -n "$MIRROR" ]] || die 'no Debian mirror in the apt sources: set DEBIAN_MIRROR=http://…/debian'
fi
log "Debian mirror: $MIRROR"

# Everything temporary, mmdebstrap's own files included (TMPDIR), goes in one directory removed on exit.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/images-offline.XXXXXX")"
trap 'rm -rf -- "$WORK"' EXIT
trap 'exit 130' INT TERM
export TMPDIR="$WORK" SP_WORK="$WORK" SP_IMAGES="$SCRIPT_DIR/images"

# Every image: minbase, no docs, man pages, locales or apt lists (as Debian's -slim images; the dpkg options
# stay for derived images' installs). The Essential set is unpacked before they apply, so it is swept too.
# The merged-usr hook sets up /usr itself, so bookworm's usrmerge (and with it perl) stays out.
COMMON=(--mode=root --variant=minbase --aptopt='Acquire::Check-Valid-Until "false"')
[[ ! -d /usr/share/mmdebstrap/hooks/merged-usr ]] || COMMON+=(--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr)
for path in doc man info locale lintian; do COMMON+=(--dpkgopt="path-exclude=/usr/share/$path/*"); done
COMMON+=(
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-include=/usr/share/locale/locale.alias'
  --customize-hook='find "$1/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete; find "$1/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true'
  --customize-hook='rm -rf "$1"/usr/share/man/* "$1"/usr/share/info/* "$1"/usr/share/lintian/*; find "$1/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true'
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/*_* "$1"/var/cache/apt/*.bin "$1"/var/cache/debconf/*-old "$1"/var/log/dpkg.log "$1"/var/log/alternatives.log "$1"/var/log/apt/*'
)

# `docker run --rm ARGS…` must succeed and, unless WANT is empty, print WANT (exactly, or within with *WANT*).
expect() {
  local want="$1" got; shift
  got="$(docker run --rm "$@" 2>&1)" || die "docker run $*: failed: $got"
  # shellcheck disable=SC2053 # WANT is a pattern on purpose
  [[ -z "$want" || "$got" == $want ]] || die "docker run $*: says '$got', expected $want"
}

# ------------------------------------------------------------------------------------------------ recipes --
# A recipe sets SUITE, PACKAGES (comma-separated), HOOKS (more mmdebstrap options) and VERSION_OF (the package
# whose upstream version the image carries), or VERSION itself.

recipe_nginx() { # nginx:1.30: forky's nginx (bookworm's 1.22 is older than upstream `resolve`, 1.27.3)
  SUITE=forky PACKAGES=nginx,curl,ca-certificates,gettext-base VERSION_OF=nginx
  HOOKS=(
    --customize-hook='chroot "$1" groupadd --system --gid 101 nginx'
    --customize-hook='chroot "$1" useradd --system --uid 101 --gid nginx --no-create-home --home-dir /nonexistent --shell /bin/false --comment "nginx user" nginx'
    --customize-hook='mkdir -p "$1/etc/nginx/conf.d" "$1/usr/share/nginx/html" "$1/var/cache/nginx" "$1/var/log/nginx" "$1/docker-entrypoint.d"'
    --customize-hook='rm -rf "$1/etc/nginx/sites-enabled/default" "$1"/etc/nginx/conf.d/*; sed -i "s/^user www-data;/user nginx;/" "$1/etc/nginx/nginx.conf"'
    --customize-hook='ln -sf /dev/stdout "$1/var/log/nginx/access.log"; ln -sf /dev/stderr "$1/var/log/nginx/error.log"'
    --customize-hook='install -m 0755 "$SP_IMAGES/nginx-entrypoint.sh" "$1/docker-entrypoint.sh"'
  )
}
dockerfile_nginx() {
  dpkg --compare-versions "$1" ge 1.27.3 || die "nginx $1 in Debian $SUITE is older than 1.27.3 (resolve in upstream)"
  printf '%s\n' "ENV PATH=$STD_PATH NGINX_VERSION=$1" 'EXPOSE 80' 'ENTRYPOINT ["/docker-entrypoint.sh"]' \
    'CMD ["nginx", "-g", "daemon off;"]' 'STOPSIGNAL SIGQUIT'
}
verify_nginx() {
  expect "*nginx/$2*" "$1" nginx -v
  expect '' "$1" nginx -t -q # Debian's stock configuration, which our images replace
  expect 101 "$1" id -u nginx
}

# node:24-bookworm-slim: the official binary (npm package node-linux-ARCH) and npm, laid out as in that image.
recipe_node() {
  command -v npm >/dev/null || die 'npm not found on the host: it downloads Node and npm (apt-get install npm)'
  local arch
  case "$(dpkg --print-architecture)" in amd64) arch=x64 ;; arm64) arch=arm64 ;; *) die 'Node: amd64 or arm64 only' ;; esac
  log "downloading node-linux-$arch@$NODE_MAJOR and npm@$NPM_MAJOR from the npm registry"
  (cd "$WORK" && npm pack --silent "node-linux-$arch@$NODE_MAJOR" "npm@$NPM_MAJOR" >/dev/null) || die 'npm pack failed'
  tar -xzf "$WORK"/node-linux-*.tgz -C "$WORK" --no-same-owner package/bin/node
  VERSION="$(tgz_version "$WORK"/node-linux-*.tgz)"
  SUITE=bookworm PACKAGES=ca-certificates VERSION_OF=''
  HOOKS=(
    --customize-hook='install -D -m 0755 "$SP_WORK/package/bin/node" "$1/usr/local/bin/node"'
    --customize-hook='mkdir -p "$1/usr/local/lib/node_modules/npm" && tar -xzf "$SP_WORK"/npm-*.tgz -C "$1/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner'
    --customize-hook='cd "$1/usr/local/bin" && chmod 0755 ../lib/node_modules/npm/bin/np[mx]-cli.js && ln -s ../lib/node_modules/npm/bin/npm-cli.js npm && ln -s ../lib/node_modules/npm/bin/npx-cli.js npx'
    --customize-hook='chroot "$1" groupadd --gid 1000 node && chroot "$1" useradd --uid 1000 --gid node --shell /bin/bash --create-home node'
  )
  if [[ "$CA_BUNDLE" != none ]]; then
    log "the node image trusts $CA_BUNDLE"
    export SP_CA_BUNDLE="$CA_BUNDLE" # .pem, not .crt: update-ca-certificates leaves the system store alone
    HOOKS+=(--customize-hook="install -D -m 0644 \"\$SP_CA_BUNDLE\" \"\$1$CA_IN_IMAGE\"")
  fi
}
tgz_version() { # the version in an npm package's package.json
  tar -xzOf "$1" package/package.json | sed -n '/^ *"version":/{s/^ *"version": *"\([^"]*\)".*/\1/p;q;}'
}
dockerfile_node() {
  printf '%s\n' "ENV PATH=$STD_PATH NODE_VERSION=$1" 'CMD ["node"]'
  [[ "$CA_BUNDLE" == none ]] || echo "ENV NODE_EXTRA_CA_CERTS=$CA_IN_IMAGE"
}
verify_node() {
  expect "v$2" "$1" node --version
  expect "$(tgz_version "$WORK"/npm-*.tgz)" "$1" npm --version
  expect 1000 "$1" id -u node
  # What `npm ci` in our Dockerfiles needs: the registry over TLS from a container, the CA above included.
  expect '' "$1" npm view --no-update-notifier is-number version
}

recipe_prometheus() { # prom/prometheus: /prometheus belongs to nobody, so a fresh named volume is writable
  SUITE=bookworm PACKAGES=prometheus VERSION_OF=prometheus
  HOOKS=(--customize-hook='mkdir -p "$1/prometheus" && chown 65534:65534 "$1/prometheus"')
}
dockerfile_prometheus() {
  printf '%s\n' "ENV PATH=$STD_PATH" 'USER nobody' 'WORKDIR /prometheus' 'VOLUME ["/prometheus"]' 'EXPOSE 9090' \
    'ENTRYPOINT ["/bin/prometheus"]' \
    'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]'
}
verify_prometheus() {
  expect "*version $2*" "$1" --version
  expect '' --entrypoint promtool "$1" check config /etc/prometheus/prometheus.yml
}

recipe_exporter() { # nginx/nginx-prometheus-exporter: the official binary's name, so one entrypoint fits both
  SUITE=bookworm PACKAGES=prometheus-nginx-exporter VERSION_OF=prometheus-nginx-exporter
  HOOKS=(--customize-hook='ln -s prometheus-nginx-exporter "$1/usr/bin/nginx-prometheus-exporter"')
}
dockerfile_exporter() {
  printf '%s\n' "ENV PATH=$STD_PATH" 'USER 1001:1001' 'EXPOSE 9113' 'ENTRYPOINT ["/usr/bin/nginx-prometheus-exporter"]'
}
verify_exporter() { expect '' "$1" --version; }

# postgres:17: the same paths, user postgres 999:999, PATH and STOPSIGNAL, and the part of the official
# entrypoint this project uses (images/postgres-entrypoint.sh). No cluster from the package: PGDATA's is made
# on first start.
recipe_postgres() {
  SUITE=trixie PACKAGES=postgresql-17 VERSION_OF=postgresql-17
  HOOKS=(
    --essential-hook='mkdir -p "$1/etc/postgresql-common/createcluster.d" && echo "create_main_cluster = false" >"$1/etc/postgresql-common/createcluster.d/no-main-cluster.conf"'
    --customize-hook='chroot "$1" sh -s <"$SP_IMAGES/postgres-setup.sh"'
    --customize-hook='install -m 0755 "$SP_IMAGES/postgres-entrypoint.sh" "$1/usr/local/bin/docker-entrypoint.sh"'
  )
}
dockerfile_postgres() { # mmdebstrap empties /run: the socket's directory is made again on top
  printf '%s\n' "ENV PATH=/usr/lib/postgresql/17/bin:$STD_PATH PG_MAJOR=17 PG_VERSION=$1 PGDATA=/var/lib/postgresql/data" \
    'RUN mkdir -p /var/run/postgresql && chown 999:999 /var/run/postgresql && chmod 3777 /var/run/postgresql' \
    'VOLUME ["/var/lib/postgresql/data"]' 'EXPOSE 5432' 'ENTRYPOINT ["docker-entrypoint.sh"]' 'CMD ["postgres"]' \
    'STOPSIGNAL SIGINT'
}
verify_postgres() {
  local name="images-offline-postgres-$$" got=''
  expect "*) $2 *" "$1" postgres --version
  expect 999 "$1" id -u postgres
  expect 999 "$1" stat -c %u /var/run/postgresql
  # What the Compose override relies on: started as postgres, the password from a file, a database made.
  docker run -d --name "$name" --user postgres -e POSTGRES_USER=check -e POSTGRES_DB=check_db -e POSTGRES_PASSWORD_FILE=/tmp/pw \
    --entrypoint bash "$1" -c 'echo s3cret >/tmp/pw && exec docker-entrypoint.sh postgres' >/dev/null || die "$1: no start"
  for _ in $(seq 60); do
    got="$(docker exec -e PGPASSWORD=s3cret "$name" psql -h 127.0.0.1 -U check -d check_db -Atc 'SELECT current_database()' 2>/dev/null)" && break
    sleep 1
  done
  [[ "$got" == check_db ]] || got="$(docker logs "$name" 2>&1 | tail -20)"
  docker rm -f "$name" >/dev/null
  [[ "$got" == check_db ]] || die "$1: no database check_db after initialisation: $got"
}

# ------------------------------------------------------------------------------------------------ builder --
# Builds image NAME as TAG from recipe_NAME, dockerfile_NAME (plus LABEL) and verify_NAME.
build() {
  local name="$1" tag="$2" label="${3:-}" old tar="$WORK/$1.tar" id out
  old="$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)"
  SUITE='' PACKAGES='' VERSION='' VERSION_OF='' HOOKS=()
  "recipe_$name"
  log "building $tag: Debian $SUITE minbase + $PACKAGES (mmdebstrap, ~1 min)"
  [[ -z "$VERSION_OF" ]] || HOOKS+=(--customize-hook="chroot \"\$1\" dpkg-query -W -f='\${Version}' $VERSION_OF >\"\$SP_WORK/version\"")
  mmdebstrap "${COMMON[@]}" --include="$PACKAGES" "${HOOKS[@]}" "$SUITE" "$tar" "$MIRROR" >"$WORK/$name.log" 2>&1 \
    || { tail -n 60 "$WORK/$name.log" >&2; die "mmdebstrap failed for $tag (see above)"; }
  if [[ -n "$VERSION_OF" ]]; then
    VERSION="$(<"$WORK/version")" VERSION="${VERSION#*:}" VERSION="${VERSION%%[-+~]*}" # 1:2.42.0+ds-5 → 2.42.0
  fi
  id="$(docker import --message "images-offline.sh: Debian $SUITE, $PACKAGES $VERSION" "$tar")"
  rm -f "$tar"
  # The settings go on in a build FROM the import, for STOPSIGNAL and RUN; the legacy builder needs neither
  # buildx nor a registry to find a local image. dockerfile_NAME's own checks stop it before anything is tagged.
  out="$("dockerfile_$name" "$VERSION")"
  out="$(printf 'FROM %s\n%s\n%s\n' "$id" "$out" "${label:+LABEL $label}" | DOCKER_BUILDKIT=0 docker build -q -t "$tag" - 2>&1)" \
    || die "docker build of $tag failed: $out"
  log "verifying $tag"
  "verify_$name" "$tag" "$VERSION"
  # The image it replaced is dropped, unless a container or another image still uses it.
  if [[ -n "$old" && "$old" != "$(docker image inspect -f '{{.Id}}' "$tag")" ]] && docker rmi "$old" >/dev/null 2>&1; then
    log "removed the previous $tag (${old:7:12})"
  fi
  log "built $tag ($VERSION)"
}

# Reuses TAG when it exists with LABEL (key=value, if given) and without --force; builds it otherwise.
build_or_reuse() {
  local tag="$2" label="${3:-}" have
  if [[ "$FORCE" == 0 ]] && docker image inspect "$tag" >/dev/null 2>&1; then
    [[ -z "$label" ]] || have="$(docker image inspect -f "{{ index .Config.Labels \"${label%%=*}\" }}" "$tag" || true)"
    if [[ -z "$label" || "$have" == "${label#*=}" ]]; then
      log "$tag exists: reusing it (--force rebuilds)"
      return
    fi
    log "$tag exists but has ${label%%=*}=$have, not ${label#*=}: rebuilding"
  fi
  build "$@"
}

build_or_reuse nginx "$NGINX_TAG" "$NGINX_LABEL"
build_or_reuse node "$NODE_TAG" "$CA_LABEL=$CA_SHA256" # the CA bundle is baked in
build_or_reuse prometheus "$PROMETHEUS_TAG"
build_or_reuse exporter "$NGINX_EXPORTER_TAG"
build_or_reuse postgres "$POSTGRES_TAG"

# ----------------------------------------------------------------------------------------------------- .env --
# Each KEY=VALUE: its first line in .env is replaced in place (others dropped), or appended; other lines stay.
touch "$ENV_FILE"
for entry in NODE_IMAGE="$NODE_TAG" NGINX_IMAGE="$NGINX_TAG" PROMETHEUS_IMAGE="$PROMETHEUS_TAG" \
  NGINX_EXPORTER_IMAGE="$NGINX_EXPORTER_TAG" POSTGRES_IMAGE="$POSTGRES_TAG"; do
  awk -v key="${entry%%=*}" -v line="$entry" '
    $0 ~ "^[[:space:]]*(export[[:space:]]+)?" key "[[:space:]]*=" { if (!n++) print line; next }
    { print }
    END { if (!n) print line }' "$ENV_FILE" >"$WORK/env"
  cat "$WORK/env" >"$ENV_FILE" # in place: the file keeps its owner and mode
  log "wrote $entry to $ENV_FILE"
done
[[ ! -e "$REPO_ROOT/.git" ]] || git -C "$REPO_ROOT" check-ignore -q "$ENV_FILE" || log "WARNING: $ENV_FILE is not git-ignored: add .env to .gitignore"
docker images --format '  {{.Repository}}:{{.Tag}}  {{.Size}}' | grep -F 'softy-pinko-base/' || true
log 'done: now run docker compose up --build'
