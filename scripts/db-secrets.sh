#!/usr/bin/env bash
# This checkout's own database secrets for the PostgreSQL override (docker-compose.postgres.yml): a random
# password and the back-end's URL holding it, in db/secrets/ (git-ignored, readable by you only), named in
# .env so Compose finds them. Never overwrites: a database volume keeps the password it was created with
# (docs/stores.md, "Rotate the database password", changes both).
# Usage: scripts/db-secrets.sh [DIR]   (default: db/secrets/ at the repository root)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir=${1:-"$root/db/secrets"}
mkdir -p "$dir"
chmod 700 "$dir"
if [[ -s "$dir/postgres-password" && -s "$dir/database-url" ]]; then
  echo "kept the secrets already in $dir"
else
  umask 077
  password="$(openssl rand -hex 24)"
  printf '%s\n' "$password" >"$dir/postgres-password"
  printf 'postgresql://softy:%s@db:5432/softy_pinko\n' "$password" >"$dir/database-url"
  # The containers run as other users (postgres, node) and read the files through Compose's bind mount.
  chmod 644 "$dir/postgres-password" "$dir/database-url"
  echo "wrote a new random password to $dir/postgres-password and $dir/database-url"
fi
if [[ -z ${1:-} ]]; then
  touch "$root/.env"
  for entry in "POSTGRES_PASSWORD_SECRET=./db/secrets/postgres-password" "DATABASE_URL_SECRET=./db/secrets/database-url"; do
    grep -q "^${entry%%=*}=" "$root/.env" || printf '%s\n' "$entry" >>"$root/.env"
  done
  echo "named them in $root/.env (POSTGRES_PASSWORD_SECRET, DATABASE_URL_SECRET)"
fi
