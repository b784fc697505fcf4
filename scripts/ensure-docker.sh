#!/usr/bin/env bash
# scripts/ensure-docker.sh — make sure a Docker engine answers and debootstrap is present
# (the sandbox image builds offline from a Debian root filesystem when no registry is
# reachable). Idempotent: what is already there is left alone. Used by CI and run-aido.sh.
# Installing needs root (apt-get); starting dockerd here needs root too.
set -euo pipefail

log() { printf 'ensure-docker: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    log "need root to run: $*"; exit 2
  fi
}

missing=()
command -v docker >/dev/null 2>&1 || missing+=(docker.io)
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
if ! command -v debootstrap >/dev/null 2>&1 && [ ! -x /usr/sbin/debootstrap ]; then missing+=(debootstrap); fi
if [ "${#missing[@]}" -gt 0 ]; then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  log "installing: $pkgs"
  as_root apt-get update -qq
  # shellcheck disable=SC2086
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs
else
  log "docker and debootstrap are installed"
fi

if docker info >/dev/null 2>&1; then
  log "the Docker engine answers ($(docker info --format '{{.ServerVersion}}'))"
  exit 0
fi

# A dockerd that is still shutting down (or was killed and left its pid file) makes a new
# one refuse to start: wait for the old process, then clear a stale pid file.
for _ in $(seq 1 30); do pgrep -x dockerd >/dev/null 2>&1 || break; sleep 1; done
if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid 2>/dev/null)" 2>/dev/null; then
  log "removing a stale /var/run/docker.pid"
  as_root rm -f /var/run/docker.pid
fi

log "starting dockerd in the background (log: /var/log/aido-dockerd.log)"
as_root sh -c 'nohup dockerd >/var/log/aido-dockerd.log 2>&1 &'
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    log "the Docker engine answers ($(docker info --format '{{.ServerVersion}}'))"
    exit 0
  fi
  sleep 1
done
log "dockerd did not answer within 60 s; last lines of its log:"
tail -n 20 /var/log/aido-dockerd.log >&2 || true
exit 1
