#!/usr/bin/env bash
# Full-sync benchmark with its peers in one run. Every round runs, against the same Dovecot
# mailbox over TLS with XOAUTH2: the raw `UID FETCH 1:* BODY.PEEK[]` reader (Rust, the same
# connection type the sync uses), Mailroom's full first sync into the embedded store and blob
# directory, Python imaplib and imapflow (Node). The order rotates each round so no client always
# follows the same one. Prints each run as it ends, then one table: medians over the rounds with
# the spread (min–max), and each client's ratio to the raw reader of the same round.
#
# usage: bench/sync-peers.sh [rounds] [messages]   (default 5 rounds, 10,000 messages)
# env:   PEER_TIMEOUT  seconds one client may take before it counts as timed out (default 600)
#        PEERS         which clients, comma list of raw,sync,imaplib,imapflow (default all)
#        BENCH_SYNC    the bench-sync binary (default target/release/bench-sync)
#        TMPDIR        where Mailroom's store and blobs go (default /tmp: the disk; /dev/shm: RAM)
# Needs the test servers (tests/servers/{oauth,dovecot}.sh start, env sourced), a release build
# of bench-sync (cargo build --release -p mailroom-tests --bin bench-sync), python3, and node
# with npm (bench/peers: npm install, run here when node_modules is missing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${1:-5}"
COUNT="${2:-10000}"
TIMEOUT="${PEER_TIMEOUT:-600}"
PEERS="${PEERS:-raw,sync,imaplib,imapflow}"
: "${MAILROOM_TEST_IMAP_PORT:?start the test servers and source \$MAILROOM_TEST_STATE/env}"
: "${MAILROOM_TEST_OAUTH_URL:?start the test servers and source \$MAILROOM_TEST_STATE/env}"
: "${MAILROOM_TEST_CA:?start the test servers and source \$MAILROOM_TEST_STATE/env}"
EMAIL="bench-$COUNT@example.test"
BENCH_SYNC="${BENCH_SYNC:-$ROOT/target/release/bench-sync}"
[[ -x "$BENCH_SYNC" ]] || { echo "build it first: cargo build --release -p mailroom-tests --bin bench-sync" >&2; exit 2; }
if [[ ",$PEERS," == *,imapflow,* && ! -d "$ROOT/bench/peers/node_modules" ]]; then
    (cd "$ROOT/bench/peers" && npm install --no-audit --no-fund --silent)
fi
export SSL_CERT_FILE="$MAILROOM_TEST_CA" MAILROOM_BENCH_JSON=1
RESULTS="$(mktemp)"
# Mailroom's data of every round stays until the end: deleting 10,000 files just before the next
# round's creates slows them (ext4 without a journal skips recently deleted inodes one by one).
DATA="$(mktemp -d "${TMPDIR:-/tmp}/mailroom-sync-bench.XXXXXX")"
trap 'rm -rf "$RESULTS" "$DATA"' EXIT

token() {
    curl -fsS -X POST "$MAILROOM_TEST_OAUTH_URL/admin/issue" -H 'content-type: application/json' \
        -d "{\"email\":\"$EMAIL\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

# Runs one client under the time limit; its JSON line goes to the results with the round added.
run() {
    local round="$1" name="$2" out
    shift 2
    if out="$(timeout "$TIMEOUT" "$@" | grep '^{')"; then
        while IFS= read -r line; do
            echo "$line" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); d["round"]=int(sys.argv[1]); print(json.dumps(d))' "$round" >>"$RESULTS"
            echo "  $line"
        done <<<"$out"
    else
        echo "  $name: failed or timed out after ${TIMEOUT}s (left out of the table)"
        echo "{\"peer\": \"$name\", \"round\": $round, \"failed\": true}" >>"$RESULTS"
    fi
}

echo "filling the mailbox with $COUNT messages (once; reused later)…"
timeout "$TIMEOUT" "$BENCH_SYNC" "$COUNT" fill
clients=(raw sync imaplib imapflow)
for ((round = 1; round <= ROUNDS; round++)); do
    echo "== round $round/$ROUNDS ($(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1-3 /proc/loadavg))"
    for ((i = 0; i < ${#clients[@]}; i++)); do
        c="${clients[$(((i + round - 1) % ${#clients[@]}))]}"
        [[ ",$PEERS," == *,$c,* ]] || continue
        case "$c" in
            raw) run "$round" raw "$BENCH_SYNC" "$COUNT" raw ;;
            sync) TMPDIR="$DATA" MAILROOM_BENCH_KEEP=1 run "$round" sync "$BENCH_SYNC" "$COUNT" sync ;;
            imaplib) run "$round" imaplib python3 "$ROOT/bench/peers/imaplib_fetch.py" \
                localhost "$MAILROOM_TEST_IMAP_PORT" "$MAILROOM_TEST_CA" "$EMAIL" "$(token)" ;;
            imapflow) run "$round" imapflow node "$ROOT/bench/peers/imapflow_fetch.mjs" \
                localhost "$MAILROOM_TEST_IMAP_PORT" "$MAILROOM_TEST_CA" "$EMAIL" "$(token)" ;;
        esac
    done
done

python3 - "$RESULTS" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def name(p):
    if p.startswith("raw"): return "raw UID FETCH 1:* (Rust)"
    if p.startswith("Mailroom"): return "Mailroom full sync (store + blobs)"
    return p
raw_by_round = {r["round"]: r for r in runs if r["peer"].startswith("raw") and not r.get("failed")}
rows = {}
for r in runs:
    rows.setdefault(name(r["peer"]), []).append(r)
def spread(values, fmt):
    if not values: return "–"
    med = statistics.median(values)
    return f"{fmt(med)} ({fmt(min(values))}–{fmt(max(values))})" if len(values) > 1 else fmt(med)
print("\n| client | runs ok | msgs/s | MB/s | CPU-s/GB | peak RSS MB | ratio to raw (msgs/s, same round) |")
print("|---|---|---|---|---|---|---|")
for client, rs in rows.items():
    ok = [r for r in rs if not r.get("failed")]
    mps = [r["messages"] / r["seconds"] for r in ok]
    mbs = [r["bytes"] / 1e6 / r["seconds"] for r in ok]
    cpu = [r["cpu_seconds"] / (r["bytes"] / 1e9) for r in ok if r["bytes"]]
    rss = [r["peak_rss_kb"] / 1024 for r in ok]
    ratios = [(r["messages"] / r["seconds"]) / (raw_by_round[r["round"]]["messages"] / raw_by_round[r["round"]]["seconds"])
              for r in ok if r["round"] in raw_by_round]
    print(f"| {client} | {len(ok)}/{len(rs)} | {spread(mps, lambda v: f'{v:,.0f}')} | {spread(mbs, lambda v: f'{v:.1f}')} "
          f"| {spread(cpu, lambda v: f'{v:.2f}')} | {spread(rss, lambda v: f'{v:.1f}')} | {spread(ratios, lambda v: f'{v:.2f}')} |")
print("\nmedian (min–max) over the rounds; peak RSS: VmHWM of the phase (Rust), ru_maxrss (Python), maxRSS (Node)")
EOF
