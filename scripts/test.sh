#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (as root), builds everything and runs every test:
# unit, integration (real processes, qemu-user, Debian's kernel tree) and e2e (the
# qemu-virt kernel built by fleetctl, booted in QEMU, verified by the aarch64 agent).
# Extra arguments go to ctest, e.g. `bash scripts/test.sh -L unit`.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
bash scripts/setup.sh
bash scripts/build.sh
echo "== test: ctest (labels unit, integration, e2e)"
ctest --preset dev "$@"
echo "== test: done in $(( $(date +%s) - started )) s"
