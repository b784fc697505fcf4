#!/usr/bin/env bash
# run-aido.sh — Aido from a fresh checkout in one command:
#
#   ./run-aido.sh "write a short report on X"     set up (first run), submit, watch, collect
#   ./run-aido.sh submit "another goal" [--manifest FILE] [--input FILE]...
#   ./run-aido.sh status [GOAL_ID]                daemon status and goals, or one goal
#   ./run-aido.sh ui [--rotate] [--open]          a one-time sign-in link to the web dashboard
#   ./run-aido.sh stop                            stop and remove the daemon container
#   ./run-aido.sh <any aido command>              run inside the daemon container (docker exec)
#   ./run-aido.sh --demo [--yes]                  the bundled multi-agent demo, no key needed
#
# The first run checks Node >= 20 and npm, a Docker engine, installs dependencies, builds
# the app, the sandbox image (offline with debootstrap when no registry answers) and the
# daemon image, then starts agentd in a container: --init, the Docker socket mounted (goal
# containers are its siblings), $AIDO_HOME mounted at the same path inside as outside (so
# the goal folders it bind-mounts resolve on the host), provider variables passed by name
# (`-e NAME`: values never land in a file, a log or a command line). A goal's deliverables
# (its output folder: regular files and folders only, no setuid bits, never through a link)
# are copied into ./output/ and the script exits with the goal's outcome: 0 succeeded,
# 1 failed or cancelled, 2 usage or set-up problem.
#
# Settings (environment): AIDO_HOME (default ~/.aido); AIDO_DAEMON_NETWORK (default
# host: providers on localhost, e.g. Ollama, stay reachable; "bridge" isolates the daemon);
# AIDO_DAEMON_CONTAINER (default aido-agentd-<hash of AIDO_HOME>); AIDO_OFFLINE=1 skips
# the registry probes; AIDO_REDIS_URL=redis://:PASSWORD@host:6379/0 makes the daemon a node
# of that cluster (docs/scale-out.md; read when the daemon container starts). The OTEL_*
# variables of trace export (docs/observability.md) reach the daemon by name too.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
AIDO_HOME="${AIDO_HOME:-$HOME/.aido}"
AIDO_HOME="$(realpath -m "$AIDO_HOME")"
export AIDO_HOME
home_hash="$(printf '%s' "$AIDO_HOME" | sha256sum | cut -c1-12)"
container="${AIDO_DAEMON_CONTAINER:-aido-agentd-$home_hash}"
network="${AIDO_DAEMON_NETWORK:-host}"

# Variables the daemon gets by name. The first group configures a provider.
provider_vars=(ANTHROPIC_API_KEY OPENAI_API_KEY DEEPSEEK_API_KEY OLLAMA_HOST AIDO_OPENAI_COMPAT_BASE_URL AIDO_REPLAY)
pass_vars=(ANTHROPIC_API_KEY ANTHROPIC_BASE_URL OPENAI_API_KEY OPENAI_BASE_URL DEEPSEEK_API_KEY DEEPSEEK_BASE_URL
  OLLAMA_HOST AIDO_OPENAI_COMPAT_BASE_URL AIDO_MODEL AIDO_MAX_CONCURRENT_INFERENCE AIDO_PERSISTENT_MEMORY
  AIDO_SPAWN_BATCH_CAP AIDO_REDIS_URL)
# OpenTelemetry trace export (docs/observability.md), passed by name as well.
otel_vars=(OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_TRACES_ENDPOINT OTEL_EXPORTER_OTLP_HEADERS
  OTEL_EXPORTER_OTLP_TRACES_HEADERS OTEL_EXPORTER_OTLP_TIMEOUT OTEL_EXPORTER_OTLP_TRACES_TIMEOUT
  OTEL_EXPORTER_OTLP_PROTOCOL OTEL_EXPORTER_OTLP_TRACES_PROTOCOL OTEL_SERVICE_NAME OTEL_RESOURCE_ATTRIBUTES
  OTEL_SDK_DISABLED OTEL_TRACES_EXPORTER OTEL_BSP_SCHEDULE_DELAY OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)

step() { printf '\n== %s\n' "$*" >&2; }
say() { printf 'run-aido: %s\n' "$*" >&2; }
die() { code="$1"; shift; say "$*"; exit "$code"; }

usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
}

# ---------------------------------------------------------------- checks

require_provider() {
  for v in "${provider_vars[@]}"; do [ -n "${!v:-}" ] && return 0; done
  cat >&2 <<'EOF'
run-aido: no model provider is configured, so nothing was set up or started.
Configure one (in the environment of this shell), then run again:
  export ANTHROPIC_API_KEY=...                   Anthropic (ANTHROPIC_BASE_URL for a proxy)
  export OPENAI_API_KEY=...                      OpenAI (OPENAI_BASE_URL for a proxy)
  export DEEPSEEK_API_KEY=...                    DeepSeek
  export OLLAMA_HOST=127.0.0.1:11434             a local Ollama
  export AIDO_OPENAI_COMPAT_BASE_URL=http://...  any OpenAI-compatible server (key in OPENAI_API_KEY)
  export AIDO_REPLAY=DIR                         replay recorded model answers from DIR (no provider)
AIDO_MODEL=provider/model picks the bootstrap agent's model (e.g. openai/gpt-4.1).
EOF
  exit 2
}

require_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    die 2 "Node.js 20 or newer with npm is required and was not found. Install it (for example \`nvm install 20\`, or your distribution's nodejs and npm packages when they are 20+), then run again."
  fi
  if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
    die 2 "Node.js $(node --version) is too old: Aido needs 20 or newer (for example \`nvm install 20\`)."
  fi
  say "node $(node --version), npm $(npm --version 2>/dev/null)"
}

require_docker() {
  if docker info >/dev/null 2>&1; then
    say "Docker engine $(docker info --format '{{.ServerVersion}}' 2>/dev/null) answers"
    return 0
  fi
  if [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null 2>&1; then
    say "no Docker engine answers: running scripts/ensure-docker.sh (installs docker.io and starts dockerd)"
    bash "$here/scripts/ensure-docker.sh" >&2 && docker info >/dev/null 2>&1 && return 0
  fi
  die 2 "a Docker engine is required. Install Docker Engine (Debian: \`apt-get install docker.io\`, then start dockerd), or run \`bash scripts/ensure-docker.sh\` as root, and make sure \`docker info\` works for this user."
}

# ---------------------------------------------------------------- set-up

# Whether node_modules holds what package-lock.json names. A stamp of the lock's hash is
# written after each install; without one (installed by hand), `npm ls` decides once.
# Modification times do not: `npm install` writes the lock after node_modules' own copy.
deps_current() {
  local want stamp=node_modules/.aido-lock.sha256
  [ -d node_modules ] || return 1
  want="$(sha256sum package-lock.json | cut -c1-64)"
  if [ -f "$stamp" ]; then
    [ "$(cat "$stamp")" = "$want" ]
    return
  fi
  npm ls --all >/dev/null 2>&1 || return 1
  printf '%s\n' "$want" >"$stamp"
}

install_and_build() {
  cd "$here" || exit 2
  # One set-up at a time per checkout: two runs starting together (two terminals, parallel
  # tests) must not npm ci or build over each other.
  exec 9>"$here/.aido-setup.lock"
  flock 9
  # A node_modules that is a link belongs to another checkout: npm ci would empty it there.
  if [ -L node_modules ]; then
    say "node_modules links to $(readlink node_modules): not reinstalling it"
  elif ! deps_current; then
    step "installing dependencies (npm ci)"
    npm ci --no-audit --no-fund >&2 || die 2 "npm ci failed (see above)"
    sha256sum package-lock.json | cut -c1-64 >node_modules/.aido-lock.sha256
  fi
  # The dashboard's page (dist/ui/) is part of the build: a dist from before it is stale too.
  if [ ! -f dist/cli/main.js ] || [ ! -f dist/ui/index.html ] ||
    [ -n "$(find src scripts/build-ui.mjs package.json tsconfig.json tsconfig.build.json -newer dist/cli/main.js -print -quit)" ]; then
    step "building the app (npm run build)"
    npm run build >&2 || die 2 "npm run build failed (see above)"
  fi
  step "sandbox image (goal containers)"
  npx tsx scripts/ensure-image.ts >&2 || die 2 "could not build the sandbox image (see above)"
  step "daemon image (agentd)"
  daemon_image="$(bash docker/build.sh | tail -n 1)"
  [ -n "$daemon_image" ] || die 2 "could not build the daemon image (see above)"
  exec 9>&-
  cd - >/dev/null || true
}

container_running() {
  [ "$(docker inspect -f '{{.State.Running}}' "$container" 2>/dev/null)" = "true" ]
}

docker_socket() {
  case "${DOCKER_HOST:-}" in
  unix://*) printf '%s' "${DOCKER_HOST#unix://}" ;;
  *) printf '/var/run/docker.sock' ;;
  esac
}

# The daemon container's OTEL_* arguments, appended to the caller's `args`. With host
# networking (the default) a collector on this machine's localhost is reachable as is. On
# another network the host is host.docker.internal (mapped to the host's gateway here); an
# endpoint on loopback would be the container itself, so that is said rather than left to
# fail quietly.
otel_args() {
  local v any=""
  for v in "${otel_vars[@]}"; do
    if [ -n "${!v:-}" ]; then
      args+=(-e "$v")
      any=1
    fi
  done
  if [ -z "$any" ] || [ "$network" = host ]; then return 0; fi
  args+=(--add-host host.docker.internal:host-gateway)
  for v in OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; do
    case "${!v:-}" in
    *://localhost* | *://127.* | *://\[::1\]*)
      say "note: $v points at this machine's loopback, which the daemon's container (network $network) does not share: use http://host.docker.internal:PORT"
      ;;
    esac
  done
}

start_daemon() {
  if container_running; then
    local running wanted
    running="$(docker inspect -f '{{.Image}}' "$container" 2>/dev/null)"
    wanted="$(docker image inspect -f '{{.Id}}' "$daemon_image" 2>/dev/null)"
    if [ "$running" != "$wanted" ]; then
      say "note: the daemon runs an older build; \`./run-aido.sh stop\` and run again to use the new one"
    fi
    return 0
  fi
  docker rm -f "$container" >/dev/null 2>&1 || true
  step "starting the daemon ($container)"
  mkdir -p "$AIDO_HOME" || die 2 "cannot create AIDO_HOME=$AIDO_HOME"
  local args=(--detach --name "$container" --init --network "$network" --restart unless-stopped
    --label "aido.home=$AIDO_HOME"
    -v "$(docker_socket):/var/run/docker.sock"
    -v "$AIDO_HOME:$AIDO_HOME" -e "AIDO_HOME=$AIDO_HOME")
  for v in "${pass_vars[@]}"; do [ -n "${!v:-}" ] && args+=(-e "$v"); done
  otel_args
  # Recorded answers to replay (read-only) or a folder to record into: same path inside.
  if [ -n "${AIDO_REPLAY:-}" ]; then
    local dir
    dir="$(cd "$AIDO_REPLAY" 2>/dev/null && pwd -P)" || die 2 "AIDO_REPLAY=$AIDO_REPLAY is not a folder"
    args+=(-v "$dir:$dir:ro" -e "AIDO_REPLAY=$dir")
  fi
  if [ -n "${AIDO_RECORD:-}" ]; then
    mkdir -p "$AIDO_RECORD" && local rec && rec="$(cd "$AIDO_RECORD" && pwd -P)"
    args+=(-v "$rec:$rec" -e "AIDO_RECORD=$rec")
  fi
  docker run "${args[@]}" "$daemon_image" >/dev/null || die 2 "docker run of the daemon failed (see above)"
  for _ in $(seq 1 90); do
    if ! container_running; then
      say "the daemon exited; its last log lines:"
      docker logs --tail 40 "$container" >&2 2>&1
      exit 2
    fi
    if docker exec "$container" aido daemon status >/dev/null 2>&1; then
      say "daemon up (socket $AIDO_HOME/agentd.sock)"
      return 0
    fi
    sleep 1
  done
  say "the daemon did not answer within 90 s; its last log lines:"
  docker logs --tail 40 "$container" >&2 2>&1
  exit 2
}

setup() {
  require_provider
  step "checking the machine"
  require_node
  require_docker
  install_and_build
  start_daemon
}

# ---------------------------------------------------------------- goals

# In a terminal, the command inside gets one too (-t): `aido watch` draws its live agent
# tree and `aido approvals` prompts only on a tty; the engine sizes it to this terminal and
# TERM goes in by name. Decided here, at the top level: inside $(...) stdout is a pipe.
exec_flags=(-i)
if [ -t 0 ] && [ -t 1 ]; then
  exec_flags=(-it)
  [ -n "${TERM:-}" ] && exec_flags+=(-e TERM)
fi

aido_in() {
  docker exec "${exec_flags[@]}" "$container" aido "$@"
}

require_running() {
  container_running || die 1 "the Aido daemon is not running: start it (and a first goal) with ./run-aido.sh \"your goal\""
}

json_field() {
  node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>{const v=JSON.parse(s)[process.argv[1]];process.stdout.write(v===undefined?"":String(v))})' "$1"
}

# Copy a host file named by --input/--manifest under $AIDO_HOME/inbox, which the daemon
# sees at the same path; prints the staged path.
stage_file() {
  local src="$1" inbox
  [ -e "$src" ] || die 2 "no such file: $src"
  inbox="$AIDO_HOME/inbox/$(date +%s)-$$"
  mkdir -p "$inbox" && cp -R "$src" "$inbox/" || die 2 "could not stage $src into $inbox"
  printf '%s/%s' "$inbox" "$(basename "$src")"
}

# The goal's deliverables into ./output. Its folder is private to the daemon (root in its
# container), so `aido output` there copies it into a staging folder owned by this user;
# `aido output --from` here merges that into ./output. Both copy regular files and folders
# only, rebuild modes (no setuid/setgid), and never write through a link.
collect_output() {
  local goal_id="$1" stage copied
  stage="$AIDO_HOME/inbox/output.$$"
  rm -rf "$stage"
  if ! docker exec "$container" aido output "$goal_id" --to "$stage" --owner "$(id -u):$(id -g)" >/dev/null; then
    say "could not collect the deliverables of goal $goal_id"
    return 1
  fi
  copied="$(node "$here/dist/cli/main.js" output --from "$stage" --to ./output)"
  rm -rf "$stage"
  [ -n "$copied" ] && say "deliverables: $copied"
  return 0
}

run_goal() {
  local args=()
  while [ $# -gt 0 ]; do
    case "$1" in
    --input | --manifest)
      [ $# -ge 2 ] || die 2 "$1 needs a file"
      local staged
      staged="$(stage_file "$2")" || exit 2
      args+=("$1" "$staged")
      shift 2
      ;;
    *) args+=("$1"); shift ;;
    esac
  done
  [ "${#args[@]}" -gt 0 ] || die 2 "no goal given: ./run-aido.sh \"what you want done\""
  # submit --follow watches from the goal's first event and writes its id where this
  # script (and the daemon, same path) can read it.
  local id_file goal_id
  mkdir -p "$AIDO_HOME/inbox" || die 2 "cannot write $AIDO_HOME/inbox"
  id_file="$AIDO_HOME/inbox/goal-id.$$"
  step "submitting the goal (Ctrl-C leaves the view; the goal keeps running)"
  aido_in submit "${args[@]}" --follow --id-file "$id_file"
  goal_id="$(cat "$id_file" 2>/dev/null)"
  rm -f "$id_file"
  [ -n "$goal_id" ] || die 1 "the daemon did not take the goal (see above)"
  local status state
  status="$(docker exec "$container" aido status "$goal_id" --json)" || die 1 "could not read the goal's status"
  state="$(printf '%s' "$status" | json_field state)"
  collect_output "$goal_id"
  case "$state" in
  succeeded) say "goal $goal_id succeeded"; exit 0 ;;
  queued | running) say "goal $goal_id is still $state: ./run-aido.sh watch $goal_id"; exit 1 ;;
  *)
    say "goal $goal_id $state: $(printf '%s' "$status" | json_field error)"
    exit 1
    ;;
  esac
}

# ---------------------------------------------------------------- the demo

# ./run-aido.sh --demo [--yes]: `aido demo` (docs/cli.md) in the daemon image, no key
# needed. The container runs `aido demo`, which starts its daemon inside it (goal
# containers are its siblings, as for the daemon container), with its own state in
# $AIDO_HOME/demo (emptied each run, mounted at the same path, given back to the caller's
# uid after the run so that the next run can empty it), demo/ mounted read-only
# (the recording it replays, the inputs) and no network at all: no provider can be
# reached. Its deliverables go to a staging folder, then into ./output on the host.
run_demo() {
  local yes=()
  while [ $# -gt 0 ]; do
    case "$1" in
    --yes) yes=(--yes); shift ;;
    *) die 2 "unknown argument $1 (./run-aido.sh --demo [--yes])" ;;
    esac
  done
  [ -d "$here/demo/recording" ] || die 2 "no demo recording in $here/demo/recording"
  if [ "${#yes[@]}" -eq 0 ] && [ "${exec_flags[*]}" = "-i" ]; then
    die 2 "not in a terminal, so the demo cannot ask for its approval here: run ./run-aido.sh --demo --yes (answers Allow Once)"
  fi
  step "checking the machine"
  require_node
  require_docker
  install_and_build
  local demo_home="$AIDO_HOME/demo" demo_container="aido-demo-$home_hash" stage code
  mkdir -p "$demo_home" "$AIDO_HOME/inbox" || die 2 "cannot write $AIDO_HOME"
  stage="$(mktemp -d "$AIDO_HOME/inbox/demo.XXXXXX")" || die 2 "cannot write $AIDO_HOME/inbox"
  docker rm -f "$demo_container" >/dev/null 2>&1 || true
  step "running the demo (state in $demo_home; the recording is replayed, no model is called)"
  # shellcheck disable=SC2016 # expanded by the container's shell
  docker run --rm "${exec_flags[@]}" --init --name "$demo_container" --network none \
    --label "aido.home=$demo_home" \
    -v "$(docker_socket):/var/run/docker.sock" \
    -v "$demo_home:$demo_home" -v "$here/demo:$here/demo:ro" -v "$stage:$stage" -w "$stage" \
    -e "AIDO_HOME=$demo_home" -e "OWNER=$(id -u):$(id -g)" \
    "$daemon_image" sh -c 'aido demo --home "$AIDO_HOME" "$@"; c=$?; chown -R "$OWNER" "$AIDO_HOME"; [ -d output ] && chown -R "$OWNER" output; exit $c' \
    aido-demo "${yes[@]}"
  code=$?
  if [ -d "$stage/output" ]; then
    node "$here/dist/cli/main.js" output --from "$stage/output" --to ./output >&2 || code=1
  fi
  rm -rf "$stage"
  exit "$code"
}

# ---------------------------------------------------------------- dispatch

# Sourced (tests call its functions): everything above is defined, nothing runs.
if [ "${BASH_SOURCE[0]}" != "$0" ]; then return 0; fi

case "${1:-}" in
"" | -h | --help | help)
  usage
  [ -n "${1:-}" ] && exit 0 || exit 2
  ;;
stop)
  if docker inspect "$container" >/dev/null 2>&1; then
    docker stop -t 30 "$container" >/dev/null && docker rm "$container" >/dev/null
    say "daemon stopped ($container)"
  else
    say "the daemon was not running"
  fi
  exit 0
  ;;
status)
  shift
  require_running
  if [ $# -gt 0 ]; then aido_in status "$@"; exit $?; fi
  aido_in daemon status && aido_in goals
  exit $?
  ;;
daemon-logs)
  shift
  docker logs "$@" "$container"
  exit $?
  ;;
submit)
  shift
  setup
  run_goal "$@"
  ;;
--demo | demo)
  # `demo` too: as a goal it would only meet "no model provider is configured".
  shift
  run_demo "$@"
  ;;
-*)
  die 2 "unknown option $1 (see ./run-aido.sh --help)"
  ;;
ui)
  # The dashboard: the daemon serves it on 127.0.0.1, which with the default host network
  # is this host's loopback, so the URL `aido ui` prints in the container works here. On
  # another network the container's loopback is its own and no published port reaches it.
  shift
  require_running
  [ "$network" = "host" ] || die 2 "./run-aido.sh ui needs the daemon on the host's network (AIDO_DAEMON_NETWORK=host, the default; it is $network): the dashboard listens on loopback only"
  open_here=0
  args=()
  for a in "$@"; do
    if [ "$a" = "--open" ]; then open_here=1; else args+=("$a"); fi
  done
  out="$(docker exec "$container" aido ui "${args[@]}")" || exit $?
  printf '%s\n' "$out"
  if [ "$open_here" = 1 ]; then
    if command -v xdg-open >/dev/null 2>&1; then
      # The link goes into a page only this user can read, not onto xdg-open's command line
      # (any local user reads those in /proc and could spend the code first); as `aido ui --open`.
      page="$AIDO_HOME/ui-open.html"
      link="$(printf '%s\n' "$out" | head -n 1)"
      (umask 077 && rm -f "$page" && printf '<!doctype html><meta charset="utf-8"><meta name="referrer" content="no-referrer"><meta http-equiv="refresh" content="0; url=%s"><title>Aido dashboard</title>\n' "$link" >"$page") &&
        xdg-open "$page" >/dev/null 2>&1 &
    else say "xdg-open is not available here; open the URL above in your browser"; fi
  fi
  exit 0
  ;;
# The first words of `aido` commands (DESIGN.md "CLI"); they run in the daemon's container.
daemon | goals | cancel | watch | approvals | agents | audit | manifest | image | memory | sandbox | run | logs)
  require_running
  aido_in "$@"
  exit $?
  ;;
*)
  # Anything else is a goal: ./run-aido.sh "write a report on X" [--manifest F] [--input F]
  setup
  run_goal "$@"
  ;;
esac
