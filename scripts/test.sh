#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need when it is missing
# (QEMU 7.2 from Debian's packages, the pip package qemu.qmp), then runs every test of the
# workspace. Real-QEMU tests fail, never skip, when QEMU cannot be had.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo test --workspace --locked
