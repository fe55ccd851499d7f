#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (as root), builds everything and runs every test:
# unit, integration (real processes, qemu-user, Debian's kernel tree) and e2e (the
# qemu-virt kernel built by fleetctl, booted in QEMU, verified by the aarch64 agent).
# Then the fuzz tree: every parser's libFuzzer harness for 20 s (scripts/fuzz.sh, ctest -L fuzz).
# Extra arguments go to ctest, e.g. `bash scripts/test.sh -L unit`; the fuzz part runs only
# without them (a full run).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
bash scripts/setup.sh
bash scripts/build.sh
echo "== test: ctest (labels unit, integration, e2e)"
ctest --preset dev "$@"
if [ $# -eq 0 ]; then
  echo "== test: fuzz (label fuzz, tree build/fuzz)"
  fuzz_started=$(date +%s)
  bash scripts/fuzz.sh
  echo "== test: fuzz part done in $(( $(date +%s) - fuzz_started )) s"
else
  echo "== test: fuzz part skipped (ctest arguments given); bash scripts/fuzz.sh runs it"
fi
echo "== test: done in $(( $(date +%s) - started )) s"
