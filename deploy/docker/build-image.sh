#!/usr/bin/env bash
# Build the app image on this kind of machine: no registry, so a local base image (made when missing),
# and PyTorch's CPU wheel served to the build from a loopback index (the build runs with --network host
# so pip reaches it and the package index). Elsewhere a plain `docker build .` does the same job from
# python:3.11-slim and PyTorch's CPU index.
#
#   deploy/docker/build-image.sh [IMAGE]        (default api-assistant:latest)
#   BASE_IMAGE=... to use another base; it is only built here when it is the local default.
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGE=${1:-api-assistant:latest}
LOCAL_BASE=localhost/bookworm-python
BASE_IMAGE=${BASE_IMAGE:-$LOCAL_BASE}
DOCKER=/usr/bin/docker
PYTHON=${PYTHON:-python3}

if [ "$BASE_IMAGE" = "$LOCAL_BASE" ]; then
    deploy/docker/base-image.sh "$LOCAL_BASE"
fi

# The torch pin and hash from the lock: the wheel served must be exactly the one the lock names.
torch_pin=$(grep -m1 '^torch==' requirements.lock | cut -d' ' -f1)
torch_hashes=$(sed -n '/^torch==/,/^    #/p' requirements.lock | grep -o 'sha256:[0-9a-f]*' | cut -d: -f2)
if [ -z "$torch_pin" ] || [ -z "$torch_hashes" ]; then
    echo "no hashed torch pin in requirements.lock" >&2
    exit 1
fi

work=$(mktemp -d)
server=""
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/simple/torch"
# pip's configuration on these machines finds the CPU wheel on local disk.
"$PYTHON" -m pip download --quiet --no-deps --dest "$work/simple/torch" "$torch_pin" 2>&1 | grep -v 'is ignored' || true
wheel=$(find "$work/simple/torch" -name "*.whl" | head -n1)
[ -n "$wheel" ] || { echo "could not get the $torch_pin wheel with pip download" >&2; exit 1; }
if ! grep -qx "$(sha256sum "$wheel" | cut -d' ' -f1)" <<<"$torch_hashes"; then
    echo "$(basename "$wheel") does not match the hash in requirements.lock" >&2
    exit 1
fi

# The index URL is a build argument, so a fixed port keeps Docker's layer cache valid between builds
# (the lock's hash pins what is served); any free port when that one is taken.
port=$("$PYTHON" -c '
import socket
s = socket.socket()
try:
    s.bind(("127.0.0.1", 38611))
except OSError:
    s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
"$PYTHON" -m http.server --bind 127.0.0.1 --directory "$work" "$port" >/dev/null 2>&1 &
server=$!
for _ in $(seq 50); do
    "$PYTHON" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/simple/torch/', timeout=1)" \
        2>/dev/null && break
    sleep 0.2
done

log=${BUILD_LOG:-/tmp/api-assistant-image-build.log}
start=$(date +%s)
if ! "$DOCKER" build --network host \
    --build-arg BASE_IMAGE="$BASE_IMAGE" \
    --build-arg TORCH_INDEX_URL="http://127.0.0.1:$port/simple/" \
    -t "$IMAGE" . >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "docker build failed (whole log: $log)" >&2
    exit 1
fi
size=$("$DOCKER" image inspect --format '{{.Size}}' "$IMAGE")
echo "built $IMAGE from $BASE_IMAGE in $(( $(date +%s) - start )) s: $(( size / 1000000 )) MB (log: $log)"
