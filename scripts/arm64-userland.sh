#!/usr/bin/env bash
# Unpacks the arm64 Debian packages a virtual board's userland needs into a folder
# (default build/arm64-root). The .deb files come from Debian's archive through apt and
# are kept in the fleetctl cache, so a rerun costs nothing.
set -euo pipefail
out=${1:-build/arm64-root}
cache=${FLEETCTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fleetctl}/debs
# busybox-static: a shell and the core tools in one static arm64 binary.
pkgs=(busybox-static)

mkdir -p "$cache" "$out"
for p in "${pkgs[@]}"; do
  deb=$(ls -t "$cache/${p}_"*_arm64.deb 2>/dev/null | head -n1 || true)
  if [ -z "$deb" ]; then
    echo "arm64-userland: downloading $p:arm64"
    (cd "$cache" && apt-get download -q -o APT::Sandbox::User=root "$p:arm64")
    deb=$(ls -t "$cache/${p}_"*_arm64.deb | head -n1)
  fi
  stamp="$out/.$p.$(basename "$deb").stamp"
  if [ ! -f "$stamp" ]; then
    dpkg-deb -x "$deb" "$out"
    touch "$stamp"
  fi
done
echo "arm64-userland: $out ready (${pkgs[*]})"
