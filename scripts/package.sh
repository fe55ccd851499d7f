#!/usr/bin/env bash
# Builds the three Debian packages and checks them with lintian:
#   build/packages/fleetctl_VERSION_amd64.deb     (from the host tree, preset dev)
#   build/packages/fleet-agent_VERSION_arm64.deb  (from the aarch64 tree, preset aarch64-agent)
#   build/packages/fleet-model_VERSION_arm64.deb  (the same tree: the boards' side of model push)
# Run scripts/build.sh first (or this builds what is missing). Exit non-zero if lintian
# reports an error on either.
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
out=build/packages
mkdir -p "$out"
[ -f build/host/build.ninja ] || cmake --preset dev >/dev/null
cmake --build --preset dev -j "$(nproc)" >/dev/null
[ -f build/aarch64/build.ninja ] || cmake --preset aarch64-agent >/dev/null
cmake --build --preset aarch64-agent -j "$(nproc)" >/dev/null
for tree in host aarch64; do
  (cd "build/$tree" && cpack -G DEB -B "$PWD/../packages/cpack-$tree" >/dev/null)
  mv build/packages/cpack-$tree/*.deb "$out/"
done
status=0
for deb in "$out"/fleetctl_*_amd64.deb "$out"/fleet-agent_*_arm64.deb "$out"/fleet-model_*_arm64.deb; do
  echo "== $deb ($(du -h "$deb" | cut -f1))"
  # --fail-on error: warnings are printed, errors fail.
  lintian --fail-on error --tag-display-limit 0 "$deb" || status=1
done
exit $status
