#!/usr/bin/env bash
# scripts/ensure-redis.sh — make sure Debian's redis-server and docker-compose are
# installed, for the cluster tests (test/cluster/: redis-server; compose.test.ts brings
# docker/cluster-compose.yaml up) and anyone trying cluster mode on one machine. It only
# installs: it starts nothing (each test starts its own redis-server on a free port, in a
# temp folder, with persistence off, and stops it). Idempotent and quiet when both are
# already there; installing needs root (apt-get).
set -euo pipefail

log() { printf 'ensure-redis: %s\n' "$*" >&2; }

missing=()
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
[ "${#missing[@]}" -eq 0 ] && exit 0

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else
    log "${missing[*]} not installed and installing needs root: run 'apt-get install -y ${missing[*]}' as root"
    exit 2
  fi
}

log "installing ${missing[*]} (Debian packages)"
if ! { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >/dev/null; then
  log "could not install ${missing[*]} with apt-get (see above); the cluster tests need them"
  exit 2
fi
# The package's own service is not what the tests use; a running one is left as it is.
for b in redis-server docker-compose; do
  command -v "$b" >/dev/null 2>&1 || { log "$b is still not on PATH after installing"; exit 2; }
done
