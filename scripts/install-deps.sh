#!/usr/bin/env bash
# Installs what the test suite needs when it is missing: QEMU 7.2 (qemu-system-x86_64,
# qemu-storage-daemon, qemu-img, qemu-io) and its guest agent (qemu-ga) from Debian's
# packages, openssl (the TLS tests make their certificates with it), and QEMU's Python
# client (pip package qemu.qmp) used to check our server. Idempotent; safe to run as root on a fresh machine.
set -euo pipefail

need_qemu=0
for bin in qemu-system-x86_64 qemu-storage-daemon qemu-img qemu-io; do
  command -v "$bin" >/dev/null 2>&1 || need_qemu=1
done

if [ "$need_qemu" = 1 ]; then
  echo "install-deps: installing QEMU from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # qemu-system-x86 and qemu-utils must come from the same release: a newer qemu-utils
  # (e.g. from backports) blocks the install, so pin both to qemu-system-x86's candidate.
  v=$(apt-cache policy qemu-system-x86 | awk '/Candidate:/ {print $2}')
  if [ -n "$v" ] && [ "$v" != "(none)" ]; then
    apt-get install -y -qq --no-install-recommends --allow-downgrades \
      "qemu-system-x86=$v" "qemu-utils=$v" >/dev/null
  else
    apt-get install -y -qq --no-install-recommends qemu-system-x86 qemu-utils >/dev/null
  fi
fi

if ! command -v qemu-ga >/dev/null 2>&1; then
  echo "install-deps: installing qemu-guest-agent from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Only the binary is wanted: the tests start qemu-ga themselves, with dangerous commands
  # blocked; the package's own service is not started here (no systemd in CI).
  apt-get install -y -qq --no-install-recommends qemu-guest-agent >/dev/null
fi

if ! command -v openssl >/dev/null 2>&1; then
  echo "install-deps: installing openssl from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends openssl >/dev/null
fi

if ! command -v man >/dev/null 2>&1 || ! command -v groff >/dev/null 2>&1; then
  echo "install-deps: installing man-db and groff (the man page test renders qmp's)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends man-db groff-base >/dev/null
fi

if ! python3 -c 'import qemu.qmp' >/dev/null 2>&1; then
  echo "install-deps: installing the pip package qemu.qmp" >&2
  python3 -m pip install -q --disable-pip-version-check qemu.qmp >/dev/null
fi
