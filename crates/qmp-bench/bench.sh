#!/usr/bin/env bash
# Runs the benchmark program (issue 5) with everything it needs:
#   crates/qmp-bench/bench.sh            # full run, a few minutes at most on 2 cores
#   crates/qmp-bench/bench.sh --quick    # short run
#   crates/qmp-bench/bench.sh --json     # also one JSON object on stdout (table on stderr)
# It builds the `qmp` binary (for the one-shot measure) and the bench in release mode, and
# makes sure QEMU's Python client qemu.qmp can be imported: when the system Python lacks it,
# it is installed into a virtual environment under target/ (the program looks there too).
# Real QEMU 7.2 comes from scripts/install-deps.sh; without it those measures are reported
# as missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p qmp-cli -p qmp-bench
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/qmp-bench-venv"
if [ -z "${QMP_BENCH_PYTHON:-}" ] && ! python3 -c 'import qemu.qmp' 2>/dev/null \
    && ! "$venv/bin/python3" -c 'import qemu.qmp' 2>/dev/null; then
    echo "bench.sh: installing qemu.qmp into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/python3" -m pip install --quiet qemu.qmp
fi
exec "$target/release/qmp-bench" "$@"
