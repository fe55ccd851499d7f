#!/usr/bin/env bash
# The main job on this machine, no Pi needed: set up (as root), build the qemu-virt kernel
# bundle and the aarch64 agent (cached after the first run), boot a virtual Pi 5 board with
# that kernel and print fleet-agent's verification of it. Then the same kernel with
# transparent_hugepage=never, which must fail on THP.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
echo "== kernel: fleetctl kernel build --profile qemu-virt (first run: a few minutes; then seconds)"
build/host/controller/fleetctl kernel build --profile qemu-virt --out build/bundles/qemu-virt
echo "== board: boot the bundle and verify it"
build/host/sim/fleet-sim boot-verify --bundle build/bundles/qemu-virt
echo "== board: the same kernel booted with transparent_hugepage=never (expected to fail on THP)"
if build/host/sim/fleet-sim boot-verify --bundle build/bundles/qemu-virt --append transparent_hugepage=never; then
  echo "demo: the THP=never board passed verification, which it must not" >&2
  exit 1
fi
echo "== demo done: the tuned kernel verified; the misconfigured boot was caught"
