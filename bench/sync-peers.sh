#!/usr/bin/env bash
# Full-sync benchmark with its peers in one run: for each round, bench-sync (a raw
# `UID FETCH 1:* BODY.PEEK[]` reader, then Mailroom's full sync into the embedded store), then
# Python imaplib and imapflow (Node) reading the same 10,000-message mailbox over TLS with the
# same kind of XOAUTH2 token. Prints one line per client and round.
#
# usage: bench/sync-peers.sh [rounds] [messages]   (default 3 rounds, 10,000 messages)
# Needs the test servers (tests/servers/{oauth,dovecot}.sh start, env sourced), a release
# build of bench-sync (cargo build --release -p mailroom-tests --bin bench-sync), python3 and
# node with npm (bench/peers: npm install, run here when node_modules is missing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${1:-3}"
COUNT="${2:-10000}"
: "${MAILROOM_TEST_IMAP_PORT:?start the test servers and source \$MAILROOM_TEST_STATE/env}"
: "${MAILROOM_TEST_OAUTH_URL:?start the test servers and source \$MAILROOM_TEST_STATE/env}"
: "${MAILROOM_TEST_CA:?start the test servers and source \$MAILROOM_TEST_STATE/env}"
EMAIL="bench-$COUNT@example.test"
BENCH_SYNC="${BENCH_SYNC:-$ROOT/target/release/bench-sync}"
if [[ ! -d "$ROOT/bench/peers/node_modules" ]]; then
    (cd "$ROOT/bench/peers" && npm install --no-audit --no-fund --silent)
fi
token() {
    curl -fsS -X POST "$MAILROOM_TEST_OAUTH_URL/admin/issue" -H 'content-type: application/json' \
        -d "{\"email\":\"$EMAIL\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
export SSL_CERT_FILE="$MAILROOM_TEST_CA"
for ((round = 1; round <= ROUNDS; round++)); do
    echo "== round $round"
    "$BENCH_SYNC" "$COUNT"
    python3 "$ROOT/bench/peers/imaplib_fetch.py" localhost "$MAILROOM_TEST_IMAP_PORT" "$MAILROOM_TEST_CA" "$EMAIL" "$(token)"
    node "$ROOT/bench/peers/imapflow_fetch.mjs" localhost "$MAILROOM_TEST_IMAP_PORT" "$MAILROOM_TEST_CA" "$EMAIL" "$(token)"
done
