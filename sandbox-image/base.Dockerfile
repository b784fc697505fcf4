# Base layer of the sandbox image when a registry is reachable: Debian bookworm plus the
# packages in packages.txt. Without a registry, image.ts builds the same base offline with
# debootstrap from the host's Debian mirror and `docker import`s it instead.
FROM debian:bookworm-slim
COPY packages.txt /tmp/packages.txt
RUN apt-get update \
 && grep -v '^#' /tmp/packages.txt | grep -v '^$' | xargs apt-get install -y --no-install-recommends \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /tmp/packages.txt
