#!/usr/bin/env bash
# Runs every fuzz target for a while: `fuzz/run.sh` (CI: 25 s each) or `fuzz/run.sh 3600` (the
# longer run). cargo-fuzz needs nightly features; on the stable toolchain RUSTC_BOOTSTRAP=1
# unlocks them (the sanitizer runtimes ship with the stable x86_64 Linux standard library).
# Installs cargo-fuzz from crates.io when it is missing. Crashes land in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
SECONDS_PER_TARGET="${1:-25}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for target in request_json mime_metadata imap_responses; do
    mkdir -p "corpus/$target"
    if [[ -d "seeds/$target" ]]; then cp -n seeds/"$target"/* "corpus/$target/" 2>/dev/null || true; fi
    echo "==> $target for ${SECONDS_PER_TARGET}s"
    cargo fuzz run -O "$target" "corpus/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1
done
