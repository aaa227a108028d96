#!/usr/bin/env bash
# Starts or stops moto's server (local DynamoDB, KMS, S3 and SQS) on 127.0.0.1 for the tests.
#   tests/servers/moto.sh start -> writes `export MAILROOM_TEST_AWS_ENDPOINT=http://127.0.0.1:PORT`
#                                  to $MAILROOM_TEST_STATE/env and the pid to .../moto.pid
#   tests/servers/moto.sh stop  -> stops the process recorded in $MAILROOM_TEST_STATE/moto.pid
# Starting again while the recorded server answers keeps it (and rewrites the env line).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${MAILROOM_TEST_STATE:-$ROOT/tests/.state}"
PID_FILE="$STATE/moto.pid"
PORT_FILE="$STATE/moto.port"
LOG_FILE="$STATE/moto.log"
ENV_FILE="$STATE/env"
VAR=MAILROOM_TEST_AWS_ENDPOINT

log() { echo "moto.sh: $*" >&2; }

# Whether moto answers HTTP on port $1 (any HTTP status counts: the server is up).
answers() {
    python3 - "$1" <<'PY' 2>/dev/null
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=1)
except urllib.error.HTTPError:
    pass
PY
}

recorded_pid_alive() {
    [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}

env_set() {
    touch "$ENV_FILE"
    sed -i "/^export $VAR=/d" "$ENV_FILE"
    echo "export $VAR=http://127.0.0.1:$1" >>"$ENV_FILE"
}

install_moto() {
    python3 -c 'import moto.server' 2>/dev/null && python3 -c 'import flask, flask_cors' 2>/dev/null && return 0
    command -v python3 >/dev/null 2>&1 || {
        log "installing python3"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends python3 python3-pip python3-venv
    }
    log "installing moto[server] with pip"
    # A distribution's system Python refuses plain pip installs (PEP 668); fall back to allowing it.
    python3 -m pip install --quiet 'moto[server]' ||
        python3 -m pip install --quiet --break-system-packages 'moto[server]'
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stop() {
    if recorded_pid_alive; then
        local pid
        pid="$(cat "$PID_FILE")"
        kill "$pid"
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "moto (pid $pid) did not stop on TERM; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$PID_FILE" "$PORT_FILE"
    if [[ -f "$ENV_FILE" ]]; then
        sed -i "/^export $VAR=/d" "$ENV_FILE"
    fi
}

start() {
    mkdir -p "$STATE"
    if recorded_pid_alive && [[ -f "$PORT_FILE" ]] && answers "$(cat "$PORT_FILE")"; then
        env_set "$(cat "$PORT_FILE")"
        echo "moto already running at http://127.0.0.1:$(cat "$PORT_FILE") (pid $(cat "$PID_FILE"))"
        return 0
    fi
    stop
    install_moto
    local port pid
    port="$(free_port)"
    if command -v moto_server >/dev/null 2>&1; then
        nohup moto_server -H 127.0.0.1 -p "$port" >"$LOG_FILE" 2>&1 &
    else
        nohup python3 -m moto.server -H 127.0.0.1 -p "$port" >"$LOG_FILE" 2>&1 &
    fi
    pid=$!
    echo "$pid" >"$PID_FILE"
    echo "$port" >"$PORT_FILE"
    for _ in $(seq 1 150); do
        if answers "$port"; then
            env_set "$port"
            echo "moto at http://127.0.0.1:$port (pid $pid)"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    log "moto did not start; its log:"
    cat "$LOG_FILE" >&2 || true
    stop
    return 1
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
