#!/usr/bin/env bash
# Make sure a Docker daemon answers. Uses Debian's docker.io (20.10): /usr/bin/docker is its client (the
# newer client elsewhere on PATH has no buildx). When no daemon runs and we are root, start one with
# the flags these machines need and print its PID on stdout (the caller stops it); print nothing when
# a daemon was already running. Exit 1, with one line on stderr, when no daemon can be had.
set -euo pipefail

DOCKER=/usr/bin/docker
LOG=${DOCKERD_LOG:-/tmp/api-assistant-dockerd.log}

if [ -x "$DOCKER" ] && "$DOCKER" info >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "no Docker daemon answers and not root, so none can be started" >&2
    exit 1
fi
if ! command -v dockerd >/dev/null || [ ! -x "$DOCKER" ]; then
    # `apt-get install docker.io` runs as root here; mmdebstrap makes the local base image.
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io mmdebstrap; } \
        >/tmp/api-assistant-apt.log 2>&1 || {
        echo "could not install docker.io (see /tmp/api-assistant-apt.log)" >&2
        exit 1
    }
fi
# No iptables here: published ports go through docker-proxy on the host, builds use --network host.
dockerd --storage-driver=overlay2 --iptables=false --ip-forward=false >"$LOG" 2>&1 &
pid=$!
for _ in $(seq 60); do
    if "$DOCKER" info >/dev/null 2>&1; then
        echo "$pid"
        exit 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "dockerd exited at start-up: $(tail -n 1 "$LOG")" >&2
        exit 1
    fi
    sleep 1
done
kill "$pid" 2>/dev/null || true
echo "dockerd did not answer within 60 s (see $LOG)" >&2
exit 1
