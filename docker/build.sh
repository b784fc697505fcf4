#!/usr/bin/env bash
# docker/build.sh — build the daemon image (agentd) when it is missing or stale. Stale
# means: a different hash of what goes in (the built app, production node_modules, the
# Node binary's version, the recipes, the base image's id), stored as the image label
# aido.daemon.recipe. With a registry: docker/Dockerfile (FROM node:20-bookworm-slim).
# Without (AIDO_OFFLINE=1, or the registry does not answer): docker/offline.Dockerfile,
# FROM the sandbox image (the debootstrap base) with the host's Node binary copied in.
# Needs `npm run build` done and the sandbox image present (run-aido.sh does both first).
# Prints the image name on the last line of stdout; progress goes to stderr.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
tag="${AIDO_DAEMON_IMAGE:-aido-agentd:latest}"
registry_base="node:20-bookworm-slim"
log() { printf 'daemon-image: %s\n' "$*" >&2; }

cd "$root"
[ -f dist/cli/main.js ] || { log "dist/ is missing: run \`npm run build\` first"; exit 2; }
sandbox="$(node --input-type=module -e 'import { loadConfig } from "./dist/config.js"; console.log(loadConfig().sandbox.image)')"
sandbox_id="$(docker image inspect -f '{{.Id}}' "$sandbox" 2>/dev/null)" || {
  log "the sandbox image $sandbox is missing: run \`npx tsx scripts/ensure-image.ts\` first"; exit 2; }

hash="$(
  {
    node --version
    cat docker/Dockerfile docker/offline.Dockerfile
    echo "$sandbox_id $root"
    find dist manifests skills sandbox-image package.json package-lock.json -type f -print0 | sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-64
)"
current="$(docker image inspect -f '{{index .Config.Labels "aido.daemon.recipe"}}' "$tag" 2>/dev/null || true)"
if [ "$current" = "$hash" ]; then
  log "$tag is up to date"
  echo "$tag"
  exit 0
fi

use_registry=0
if [ "${AIDO_OFFLINE:-0}" != "1" ]; then
  if docker image inspect "$registry_base" >/dev/null 2>&1; then
    use_registry=1
  else
    log "checking whether a registry serves $registry_base"
    if timeout 120 docker pull -q "$registry_base" >/dev/null 2>&1; then use_registry=1; else
      log "no registry answered: building offline on $sandbox"; fi
  fi
fi

ctx="$(mktemp -d "${TMPDIR:-/tmp}/aido-daemon-ctx.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT
log "staging the app (dist, manifests, skills, production node_modules)"
mkdir -p "$ctx/app"
cp -a dist manifests skills sandbox-image package.json package-lock.json "$ctx/app/"
# A node_modules that is a link (a worktree sharing another checkout's) is copied as the
# folder it points at: the prune below must act on the copy, never on the linked tree.
cp -a "$(readlink -f node_modules)" "$ctx/app/node_modules"
(cd "$ctx/app" && npm prune --omit=dev --offline --no-audit --no-fund --loglevel=error >&2)
log "app staged: $(du -sh "$ctx/app" | cut -f1)"

if [ "$use_registry" = 1 ]; then
  cp docker/Dockerfile "$ctx/Dockerfile"
  args=(--build-arg "APP_DIR=$root")
else
  cp docker/offline.Dockerfile "$ctx/Dockerfile"
  cp "$(command -v node)" "$ctx/node"
  args=(--build-arg "BASE=$sandbox" --build-arg "APP_DIR=$root")
fi
log "building $tag"
docker build "${args[@]}" --label "aido.daemon.recipe=$hash" -t "$tag" "$ctx" >&2
log "built $tag"
echo "$tag"
