#!/usr/bin/env bash
# Starts or stops the test OAuth provider (binary test-oauth-server of crate mailroom-tests).
#   tests/servers/oauth.sh start   -> writes `export MAILROOM_TEST_OAUTH_URL=...` to $MAILROOM_TEST_STATE/env
#   tests/servers/oauth.sh stop    -> stops the process recorded in $MAILROOM_TEST_STATE/oauth.pid
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${MAILROOM_TEST_STATE:-$ROOT/tests/.state}"
PID_FILE="$STATE/oauth.pid"
LOG_FILE="$STATE/oauth.log"
ENV_FILE="$STATE/env"

stop() {
    if [[ -f "$PID_FILE" ]]; then
        local pid
        pid="$(cat "$PID_FILE")"
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
            for _ in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
        fi
        rm -f "$PID_FILE"
    fi
    if [[ -f "$ENV_FILE" ]]; then
        sed -i '/^export MAILROOM_TEST_OAUTH_URL=/d' "$ENV_FILE"
    fi
}

start() {
    mkdir -p "$STATE"
    stop
    (cd "$ROOT" && cargo build -q -p mailroom-tests --bin test-oauth-server)
    local bin url=""
    bin="${CARGO_TARGET_DIR:-$ROOT/target}/debug/test-oauth-server"
    # Port 0: the server binds a free loopback port itself and prints its URL once listening.
    nohup "$bin" "127.0.0.1:0" >"$LOG_FILE" 2>&1 &
    echo $! >"$PID_FILE"
    for _ in $(seq 1 100); do
        url="$(grep -m1 -o 'http://127\.0\.0\.1:[0-9]*' "$LOG_FILE" || true)"
        if [[ -n "$url" ]] && (exec 3<>"/dev/tcp/127.0.0.1/${url##*:}") 2>/dev/null; then
            touch "$ENV_FILE"
            sed -i '/^export MAILROOM_TEST_OAUTH_URL=/d' "$ENV_FILE"
            echo "export MAILROOM_TEST_OAUTH_URL=$url" >>"$ENV_FILE"
            echo "test OAuth server at $url (pid $(cat "$PID_FILE"))"
            return 0
        fi
        if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "the test OAuth server did not start; its log:" >&2
    cat "$LOG_FILE" >&2 || true
    stop
    return 1
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
