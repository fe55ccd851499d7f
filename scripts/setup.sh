#!/usr/bin/env bash
# Installs every Debian package fleetctl needs to build, test and run the virtual rack.
# Idempotent: packages already present are skipped by apt; safe to rerun.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (it installs Debian packages with apt-get)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# Host (amd64) toolchain, libraries, kernel build tools and the emulator.
host_pkgs=(
  build-essential cmake ninja-build pkg-config ccache git
  libssh-dev libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libyaml-cpp-dev libspdlog-dev catch2 libsqlite3-dev zlib1g-dev libssl-dev
  openssh-server openssh-client qemu-system-arm qemu-user-static
  linux-source-6.1 gcc-aarch64-linux-gnu g++-aarch64-linux-gnu
  bc flex bison libelf-dev kmod cpio xz-utils busybox-static rsync python3
  # dtc: fleet-sim writes the Pi 5 bootloader's chosen/bootloader node into each board's
  # device tree (the node the agent reads its EEPROM version from).
  device-tree-compiler
  # A board's SD card: its FAT32 bootfs made with mkfs.vfat, read and written with mtools
  # (never mounted), judged with fsck.vfat -n; its ext4 root made with mke2fs -d, read with
  # debugfs (e2fsprogs).
  dosfstools mtools e2fsprogs
  nlohmann-json3-dev file binutils jq time
  # fleetctl serve --http: the web dashboard (cpp-httplib), /metrics (prometheus-cpp's core),
  # the board page's chart (Chart.js, served from the package's path).
  libcpp-httplib-dev prometheus-cpp-dev libjs-chart.js
  # Their tests: a real Prometheus scraping fleetctl (and promtool checking the text), a real
  # browser (headless Chromium, driven over the DevTools protocol by python3-websocket).
  prometheus chromium python3-websocket
  # Packages: CPack's .debs, checked by lintian; man pages made from --help by help2man.
  lintian help2man
  # The fuzz tree (preset fuzz): clang 16 is Debian 12's oldest clang that compiles
  # libstdc++ 12's <expected> (cmake/Fuzz.cmake); llvm-14 brings llvm-symbolizer.
  clang-16 libclang-rt-16-dev libfuzzer-16-dev llvm-14
  # fleetctl model push: peer to peer over BitTorrent with TLS (node-agent/model/swarm.hpp).
  libtorrent-rasterbar-dev
)
# The static aarch64 agent links these arm64 libraries. yaml-cpp is left out on purpose:
# libyaml-cpp-dev cannot be installed for both architectures at once, so the agent reads
# its (small) inputs without it.
arm64_pkgs=(
  libgrpc++-dev:arm64 libprotobuf-dev:arm64 libspdlog-dev:arm64
  libssl-dev:arm64 zlib1g-dev:arm64 libc6-dev:arm64
  # fleet-model, the boards' side of a model push, links Debian's shared libtorrent (there is
  # no static one); fleetctl pushes libtorrent-rasterbar.so.2.0 beside it.
  libtorrent-rasterbar-dev:arm64
)

missing() {
  local p out=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || out+=("$p")
  done
  printf '%s\n' "${out[@]}"
}

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
  need_update=1
fi

mapfile -t todo < <(missing "${host_pkgs[@]}" "${arm64_pkgs[@]}" | sed '/^$/d')
if [ "${#todo[@]}" -eq 0 ]; then
  echo "setup.sh: all packages present"
  exit 0
fi
echo "setup.sh: installing ${#todo[@]} packages: ${todo[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${todo[@]}"
echo "setup.sh: done"
