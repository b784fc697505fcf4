#!/usr/bin/env bash
# docker/build-redis.sh — build the Redis image docker/cluster-compose.yaml runs
# (aido-redis:latest, or AIDO_REDIS_IMAGE) with no registry: the sandbox image plus this
# host's redis-server (Debian's package: `apt-get install redis-server`) and the shared
# libraries it links, except the C library's own, which the bookworm base already has.
# Prints the image name on the last line of stdout; progress goes to stderr.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
tag="${AIDO_REDIS_IMAGE:-aido-redis:latest}"
base="${AIDO_SANDBOX_IMAGE:-aido-sandbox:latest}"
log() { printf 'redis-image: %s\n' "$*" >&2; }

bin="$(command -v redis-server)" || { log "no redis-server here: apt-get install redis-server"; exit 2; }
docker image inspect "$base" >/dev/null 2>&1 || {
  log "the sandbox image $base is missing: run \`npx tsx scripts/ensure-image.ts\` first"; exit 2; }

ctx="$(mktemp -d "${TMPDIR:-/tmp}/aido-redis-ctx.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/lib"
cp "$(readlink -f "$bin")" "$ctx/redis-server"
# `ldd` lines: "name => /path (addr)"; libc, libm and the loader stay the base's.
ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | while read -r lib; do
  case "$(basename "$lib")" in libc.so.* | libm.so.* | ld-linux*) continue ;; esac
  cp -L "$lib" "$ctx/lib/"
done
cp "$root/docker/redis.Dockerfile" "$ctx/Dockerfile"
log "building $tag on $base with $($bin --version | cut -d' ' -f3)"
docker build -q --label aido.redis=1 --build-arg "BASE=$base" -t "$tag" "$ctx" >&2
echo "$tag"
