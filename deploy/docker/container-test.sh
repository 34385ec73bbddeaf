#!/usr/bin/env bash
# Container test: runs the built image the way production does and checks it from outside.
#
#   deploy/docker/container-test.sh [IMAGE]     (default api-assistant:latest; `make container-test`)
#
# Needs a Docker daemon (deploy/docker/dockerd.sh). Every check prints PASS, FAIL or SKIP; a SKIP is a
# check that cannot run yet and says what enables it. Exits 1 when any check fails.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

IMAGE=${1:-api-assistant:latest}
DOCKER=/usr/bin/docker
RUN_ID="api-assistant-ctest-$$"
VOLUME="$RUN_ID-data"
QUESTION="how do I refund an order?"
EXPECTED="POST /orders/{orderId}/refund"
STOP_LIMIT_S=5
work=$(mktemp -d)
started_at=$(date +%s)
passed=0
failed=0
skipped=0

pass() { passed=$((passed + 1)); echo "PASS  $1"; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; [ $# -lt 2 ] || sed 's/^/      | /' <<<"$2" | tail -n 25; }
skip() { skipped=$((skipped + 1)); echo "SKIP  $1"; }

cleanup() {
    "$DOCKER" rm -f "$RUN_ID-serve" "$RUN_ID-diff" >/dev/null 2>&1
    "$DOCKER" volume rm -f "$VOLUME" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

# The hardened way to run it: read-only root, a tmpfs /tmp, data in the volume.
# shellcheck disable=SC2054  # the commas are tmpfs mount options
hardened=(--read-only --tmpfs /tmp:rw,nosuid,nodev,size=256m -v "$VOLUME:/data")

if ! "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "FAIL  image $IMAGE does not exist (run make image)"
    echo "container-test: 0 passed, 1 failed"
    exit 1
fi
echo "container test of $IMAGE ($(( $("$DOCKER" image inspect --format '{{.Size}}' "$IMAGE") / 1000000 )) MB)"

# 1. The command line answers.
if out=$(timeout 120 "$DOCKER" run --rm --network none "$IMAGE" --help 2>&1) && grep -q '^usage: api-assistant' <<<"$out"; then
    pass "--help prints the usage"
else
    fail "--help prints the usage" "$out"
fi

# 2. It is configured to run as uid 1000 (checked again on the running server below).
user=$("$DOCKER" image inspect --format '{{.Config.User}}' "$IMAGE")
if [ "$user" = "1000:1000" ] && [ "$(timeout 60 "$DOCKER" run --rm --network none --entrypoint id "$IMAGE" -u 2>&1)" = 1000 ]; then
    pass "runs as uid 1000 (USER $user)"
else
    fail "runs as uid 1000" "USER is '$user'"
fi

# 3. What is installed is exactly what requirements.lock pins (so what CI tests is what ships).
normalise() { tr 'A-Z_.' 'a-z--' | sort; }
lock_pins=$(grep -E '^[A-Za-z0-9]' requirements.lock | cut -d' ' -f1 | normalise)
image_pins=$(timeout 60 "$DOCKER" run --rm --network none --entrypoint python3 "$IMAGE" -c '
import importlib.metadata as m
names = {d.metadata["Name"]: d.version for d in m.distributions()}
print("\n".join(n + "==" + v for n, v in names.items() if n not in ("pip", "api-assistant")))' 2>&1 | normalise)
if [ "$lock_pins" = "$image_pins" ]; then
    pass "installed packages match requirements.lock ($(wc -l <<<"$lock_pins") pins)"
else
    fail "installed packages match requirements.lock" "$(diff <(echo "$lock_pins") <(echo "$image_pins"))"
fi

# 4. The offline demo answers with no network at all, on a read-only root: it indexes the bundled
# example into /data and answers from it.
out=$(printf '%s\n/quit\n' "$QUESTION" \
    | timeout 300 "$DOCKER" run --rm -i --network none "${hardened[@]}" "$IMAGE" demo 2>&1)
status=$?
if [ $status = 0 ] && grep -q 'Indexed `bookshop`' <<<"$out" && grep -qF "$EXPECTED" <<<"$out"; then
    pass "offline demo (--network none, --read-only) indexes the example and answers"
else
    fail "offline demo (--network none, --read-only) indexes the example and answers (exit $status)" "$out"
fi
if grep -qiE 'read-only file system|permission denied' <<<"$out"; then
    fail "no write errors in the demo's output" "$(grep -iE 'read-only file system|permission denied' <<<"$out")"
else
    pass "no write errors in the demo's output"
fi

# 5. The index lives in the volume: a new container answers from it.
out=$(timeout 300 "$DOCKER" run --rm --network none "${hardened[@]}" "$IMAGE" ask "$QUESTION" 2>&1)
if grep -qF "$EXPECTED" <<<"$out"; then
    pass "a new container answers from the index kept in /data"
else
    fail "a new container answers from the index kept in /data" "$out"
fi

# 6. Nothing is written outside /data and /tmp: the same work on a writable root leaves no changes
# (libraries often swallow write errors, so the read-only run alone would not show them).
out=$(printf '%s\n/quit\n' "$QUESTION" | timeout 300 "$DOCKER" run -i --name "$RUN_ID-diff" --network none \
    --tmpfs /tmp -v "$VOLUME:/data" "$IMAGE" demo 2>&1)
changes=$("$DOCKER" diff "$RUN_ID-diff" 2>&1)
if grep -qF "$EXPECTED" <<<"$out" && [ -z "$changes" ]; then
    pass "writes nothing outside /data and /tmp (docker diff is empty)"
else
    fail "writes nothing outside /data and /tmp" "$changes"
fi

# 7. The server: Slack's HTTP mode (fake credentials start it; only /ready notices that auth.test fails) on a
# published port, read-only root. /health, /ready and /metrics are served the same way in every mode.
# The health check runs every second here (30 s in the image) so its verdict comes quickly. SLACK_API_URL
# points at a closed local port: auth.test fails at once, where a lookup of slack.com from a container
# without DNS would hang in a thread for seconds and hold up the exit that `docker stop` times.
if ! "$DOCKER" run -d --name "$RUN_ID-serve" "${hardened[@]}" -p 127.0.0.1::3000 --health-interval 1s \
    -e SLACK_BOT_TOKEN=xoxb-container-test -e SLACK_SIGNING_SECRET=container-test \
    -e SLACK_API_URL=http://127.0.0.1:9/api/ "$IMAGE" \
    >/dev/null 2>"$work/run.err"; then
    fail "server container starts" "$(cat "$work/run.err")"
else
    port=$("$DOCKER" port "$RUN_ID-serve" 3000/tcp | head -n1 | sed 's/.*://')
    base="http://127.0.0.1:$port"
    # status_of PATH: the HTTP status (000 when nothing answers); the body lands in $work/body.
    status_of() { curl -s -o "$work/body" -w '%{http_code}' --max-time 5 "$base$1"; }
    up=""
    for _ in $(seq 120); do
        code=$(status_of /healthz)
        if [ "$code" != 000 ]; then up=1; break; fi
        [ "$("$DOCKER" inspect --format '{{.State.Running}}' "$RUN_ID-serve")" = true ] || break
        sleep 1
    done
    if [ -n "$up" ]; then
        pass "server answers on published port $port"
    else
        fail "server answers on published port $port" "$("$DOCKER" logs "$RUN_ID-serve" 2>&1)"
    fi

    code=$(status_of /healthz)
    if [ "$code" = 200 ]; then pass "GET /healthz is 200"; else fail "GET /healthz is 200 (got $code)"; fi

    code=$(status_of /health)
    if [ "$code" = 200 ]; then pass "GET /health is 200"; else fail "GET /health is 200 (got $code)" "$(cat "$work/body")"; fi
    health=""
    for _ in $(seq 30); do
        health=$("$DOCKER" inspect --format '{{.State.Health.Status}}' "$RUN_ID-serve")
        [ "$health" = starting ] || break
        sleep 1
    done
    if [ "$health" = healthy ]; then
        pass "Docker's HEALTHCHECK reports healthy"
    else
        fail "Docker's HEALTHCHECK reports healthy (got $health)" \
            "$("$DOCKER" inspect --format '{{json .State.Health}}' "$RUN_ID-serve")"
    fi

    # The Slack token here is fake (and slack.com out of reach), so auth.test fails: /ready must say so once
    # the adapter has tried it (until then Slack is "starting"; auth.test's connection retries take a moment).
    for _ in $(seq 30); do
        code=$(status_of /ready)
        grep -q '"slack": "starting"' "$work/body" || break
        sleep 1
    done
    if [ "$code" = 503 ] && grep -q '"not_ready": {[^}]*"slack": "auth.test failed' "$work/body"; then
        pass "GET /ready is 503 naming slack (fake token)"
    else
        fail "GET /ready is 503 naming slack (got $code)" "$(cat "$work/body")"
    fi

    code=$(status_of /metrics)
    if [ "$code" = 200 ] && grep -q '^process_cpu_seconds_total ' "$work/body" \
        && grep -q '^api_assistant_component_ready{component="slack"} 0.0' "$work/body" \
        && grep -qE '^api_assistant_questions_total\{[^}]*platform="slack"[^}]*\} 0.0$' "$work/body"; then
        pass "GET /metrics is 200 with process and api_assistant_ metrics"
    else
        fail "GET /metrics is 200 with process and api_assistant_ metrics (got $code)" "$(head -c 3000 "$work/body")"
    fi

    check=$("$DOCKER" inspect --format '{{json .Config.Healthcheck.Test}}' "$RUN_ID-serve")
    if grep -q '/health' <<<"$check"; then pass "HEALTHCHECK probes /health"; else fail "HEALTHCHECK probes /health" "$check"; fi

    # Every process in the container (tini and the app) runs as uid 1000.
    uids=$("$DOCKER" top "$RUN_ID-serve" -eo pid,uid,args 2>&1 | tail -n +2)
    if [ -n "$uids" ] && ! awk '$2 != 1000' <<<"$uids" | grep -q .; then
        pass "every process of the running server is uid 1000"
    else
        fail "every process of the running server is uid 1000" "$uids"
    fi

    start=$(date +%s.%N)
    "$DOCKER" stop -t 10 "$RUN_ID-serve" >/dev/null
    took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    code=$("$DOCKER" inspect --format '{{.State.ExitCode}}' "$RUN_ID-serve")
    # 137 would mean Docker gave up waiting and sent SIGKILL.
    if awk -v t="$took" -v limit="$STOP_LIMIT_S" 'BEGIN { exit !(t < limit) }' && [ "$code" != 137 ]; then
        pass "docker stop took $took s (< $STOP_LIMIT_S s), exit code $code"
    else
        fail "docker stop took $took s, exit code $code (want < $STOP_LIMIT_S s, not 137)" \
            "$("$DOCKER" logs "$RUN_ID-serve" 2>&1)"
    fi
fi

echo "container test took $(( $(date +%s) - started_at )) s"
echo "container-test: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
