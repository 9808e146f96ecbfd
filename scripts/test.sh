#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need when it is missing
# (QEMU 7.2 and openssl from Debian's packages, the pip package qemu.qmp), then runs every test of the
# workspace. Real-QEMU tests fail, never skip, when QEMU cannot be had. Ends with one line
# totalling every test binary's results.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
