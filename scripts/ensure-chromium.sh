#!/usr/bin/env bash
# scripts/ensure-chromium.sh — make sure Debian's chromium is installed for the dashboard's
# browser tests (test/ui/, driven by playwright-core, which downloads no browser).
# Idempotent and quiet when it is there. Installing needs root (apt-get). Used by
# scripts/test.sh and by the ui tests' set-up, so `npx vitest run test/ui` works alone.
set -euo pipefail

log() { printf 'ensure-chromium: %s\n' "$*" >&2; }
bin="${AIDO_CHROMIUM:-/usr/bin/chromium}"

if [ -x "$bin" ]; then exit 0; fi

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else
    log "chromium is missing at $bin and installing it needs root: run \`apt-get install -y chromium\` as root"; exit 2
  fi
}

if ! command -v apt-get >/dev/null 2>&1; then
  log "chromium is missing at $bin and there is no apt-get here: install Chromium and set AIDO_CHROMIUM to its path"
  exit 2
fi
log "installing chromium (apt-get)"
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 || {
  as_root apt-get update -qq >/dev/null 2>&1 || true
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2 || {
    log "apt-get could not install chromium (see above)"; exit 2; }
}
[ -x "$bin" ] || { log "chromium installed but $bin is not there: set AIDO_CHROMIUM to its path"; exit 2; }
log "installed $("$bin" --version 2>/dev/null | head -n 1)"
