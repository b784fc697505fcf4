# The daemon image (agentd) built without a registry: FROM the sandbox image, whose base
# is the Debian bookworm root filesystem debootstrap made and `docker import`ed (see
# src/sandbox/image.ts), plus the host's own Node 20 binary and the built app. The host is
# Debian bookworm too, so the native modules built there (better-sqlite3) run here.
# APP_DIR: see Dockerfile. The daemon runs as root: it drives the engine through the
# mounted Docker socket, and hands goal folders to the sandbox user (uid 1000).
ARG BASE
FROM ${BASE}
ARG APP_DIR
USER root
COPY node /usr/local/bin/node
COPY app/ ${APP_DIR}/
RUN ln -s ${APP_DIR}/dist/cli/main.js /usr/local/bin/aido && aido --help >/dev/null
ENV NODE_ENV=production HOME=/root
WORKDIR ${APP_DIR}
# --no-memory-reducer: the daemon's V8 flags (src/daemon/detach.ts DAEMON_V8_FLAGS, docs/agents.md).
CMD ["node", "--no-memory-reducer", "/usr/local/bin/aido", "daemon", "start", "--foreground"]
