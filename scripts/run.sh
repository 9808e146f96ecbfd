#!/usr/bin/env bash
# The main job: builds the `qmp` binary and runs one command with it: against the QEMU named by
# -s/QMP_SOCKET/QMP_PATH when one is given, else against the built-in simulated QEMU.
#   scripts/run.sh                      # query-status on the simulator
#   scripts/run.sh query-version        # any command, with key=value arguments
#   QMP_SOCKET=/run/vm.qmp scripts/run.sh query-status
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/target/release/qmp"
# The first build takes minutes: show cargo's progress then (on stderr, as cargo does); a
# rebuild with nothing to do stays quiet.
if [ -x "$bin" ]; then quiet=--quiet; else quiet=; echo "run.sh: building qmp (the first time takes a few minutes)" >&2; fi
cargo build --release $quiet --manifest-path "$root/Cargo.toml" -p qmp-cli
[ $# -gt 0 ] || set -- query-status
given=0
[ -n "${QMP_SOCKET:-}${QMP_PATH:-}" ] && given=1
for a in "$@"; do case "$a" in -s|-s*|--socket*|--path*|--sim) given=1 ;; esac; done
if [ "$given" = 1 ]; then exec "$bin" "$@"; fi
echo "run.sh: no QEMU given (-s ADDR or QMP_SOCKET): using the built-in simulated QEMU" >&2
exec "$bin" --sim "$@"
