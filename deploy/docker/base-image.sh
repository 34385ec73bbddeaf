#!/usr/bin/env bash
# Make the local base image (default localhost/bookworm-python) when it is missing.
#
# No container registry is reachable here, so python:3.11-slim cannot be pulled. This builds the
# closest equivalent from Debian's packages: bookworm minbase with Python 3.11, venv, CA certificates
# and tini, plus this machine's extra CA certificates (pip verifies TLS through them inside a build).
# Needs root and mmdebstrap (Debian package). Elsewhere, build the Dockerfile on python:3.11-slim.
set -euo pipefail

IMAGE=${1:-localhost/bookworm-python}
DOCKER=/usr/bin/docker

if "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "base image $IMAGE exists"
    exit 0
fi
if ! command -v mmdebstrap >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap; } >/dev/null
fi

start=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Docs, man pages and translations are never read in a container.
mmdebstrap --quiet --mode=root --variant=minbase --include=python3,python3-venv,ca-certificates,tini \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/" 2>/dev/null || true' \
    --customize-hook='chroot "$1" update-ca-certificates >/dev/null 2>&1' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$work/base.tar"

"$DOCKER" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    "$work/base.tar" "$IMAGE" >/dev/null
echo "built base image $IMAGE in $(( $(date +%s) - start )) s"
