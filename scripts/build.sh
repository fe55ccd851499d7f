#!/usr/bin/env bash
# Builds everything from the source tree: the host tree (fleetctl, host agent, tests), the
# static aarch64 agent for the boards, and the arm64 userland of the virtual boards.
# ccache makes reruns and fresh clones cheap.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
# ccache hits whatever folder the checkout lives in (CI clones afresh each time): paths
# below the checkout are hashed as relative ones, and the working directory is not hashed.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
echo "== build: host (fleetctl, tests)"
[ -f build/host/build.ninja ] || cmake --preset dev >/dev/null
cmake --build --preset dev -j "$jobs"
echo "== build: aarch64 fleet-agent (static)"
[ -f build/aarch64/build.ninja ] || cmake --preset aarch64-agent >/dev/null
cmake --build --preset aarch64-agent -j "$jobs"
echo "== build: arm64 userland for virtual boards"
bash scripts/arm64-userland.sh build/arm64-root
bash sim/rootfs.sh build/board-root
