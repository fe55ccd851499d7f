#!/usr/bin/env bash
# Prints the figures behind `fleetctl kernel build` and the virtual board:
#   cold build   (empty ccache, empty fleetctl cache: extract + configure + compile)
#   warm build   (ccache warm, build tree and bundle cache removed: what CI on a used
#                 machine or a new checkout pays)
#   no change    (same inputs: the bundle comes from the cache)
#   boot to verified (QEMU power-on to power-off with fleet-agent verify inside), 5 runs
# Run after scripts/build.sh. Takes ~5-10 minutes on 2 cores; touches nothing outside a
# temporary folder except ~/.cache/ccache statistics.
set -euo pipefail
cd "$(dirname "$0")/.."
fleetctl=build/host/controller/fleetctl
sim=build/host/sim/fleet-sim
echo "fleetctl from build/host: $(grep -m1 '^CMAKE_BUILD_TYPE' build/host/CMakeCache.txt 2>/dev/null || echo 'not configured')"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export FLEETCTL_CACHE=$work/cache
secs() { python3 -c "import sys,json; print(round(json.load(sys.stdin)['seconds'],1))"; }

echo "kernel build, profile qemu-virt, $(nproc) cores"
cold=$(CCACHE_DIR=$work/ccache $fleetctl kernel build --profile qemu-virt --out "$work/b-cold" --json 2>/dev/null | secs)
echo "  cold build (no ccache, no cache):       ${cold} s"
# Warm ccache: the real ~/.cache/ccache, filled by an earlier build of the same config.
rm -rf "$FLEETCTL_CACHE/kbuild" "$FLEETCTL_CACHE/bundles"
$fleetctl kernel build --profile qemu-virt --out "$work/b-prime" --json >/dev/null 2>&1
rm -rf "$FLEETCTL_CACHE/kbuild" "$FLEETCTL_CACHE/bundles"
warm=$($fleetctl kernel build --profile qemu-virt --out "$work/b-warm" --json 2>/dev/null | secs)
echo "  warm build (ccache warm, fresh tree):   ${warm} s"
same=$($fleetctl kernel build --profile qemu-virt --out "$work/b-same" --json 2>/dev/null | secs)
echo "  no change (bundle from the cache):      ${same} s"

echo "boot to verified (qemu-system-aarch64 TCG, 2 vCPUs, 2 NUMA nodes, 1 GiB)"
total=0
for i in 1 2 3 4 5; do
  s=$($sim boot-verify --bundle "$work/b-warm" --json | secs)
  echo "  run $i: ${s} s"
  total=$(python3 -c "print($total + $s)")
done
echo "  mean: $(python3 -c "print(round($total / 5, 2))") s"
