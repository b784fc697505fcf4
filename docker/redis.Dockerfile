# The cluster's Redis image, built without a registry (docker/build-redis.sh): FROM the
# sandbox image (the Debian bookworm root filesystem debootstrap made), plus this host's
# own redis-server binary and the shared libraries it needs that are not libc's. The host
# is Debian bookworm too, so the binary runs here as it runs there. No Docker Hub needed.
# Redis runs as the base's unprivileged user (uid 1000), its append-only file in /data.
ARG BASE
FROM ${BASE}
USER root
COPY redis-server /usr/local/bin/redis-server
COPY lib/ /opt/redis/lib/
ENV LD_LIBRARY_PATH=/opt/redis/lib
RUN mkdir -p /data && chown 1000:1000 /data && redis-server --version
USER 1000
WORKDIR /data
CMD ["redis-server", "--appendonly", "yes", "--dir", "/data"]
