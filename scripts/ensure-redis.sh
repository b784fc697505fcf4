#!/usr/bin/env bash
# scripts/ensure-redis.sh — make sure Debian's redis-server binary is installed, for the
# cluster tests (test/cluster/) and anyone trying cluster mode on one machine. It only
# installs: it starts nothing (each test starts its own redis-server on a free port, in a
# temp folder, with persistence off, and stops it). Idempotent and quiet when the binary
# is already there; installing needs root (apt-get).
set -euo pipefail

log() { printf 'ensure-redis: %s\n' "$*" >&2; }

if command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ]; then
  exit 0
fi

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else
    log "redis-server is not installed and installing it needs root: run 'apt-get install -y redis-server' as root"
    exit 2
  fi
}

log "installing redis-server (Debian package)"
if ! { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; } >/dev/null; then
  log "could not install redis-server with apt-get (see above); the cluster tests need it"
  exit 2
fi
# The package's own service is not what the tests use; a running one is left as it is.
command -v redis-server >/dev/null 2>&1 || { log "redis-server is still not on PATH after installing"; exit 2; }
