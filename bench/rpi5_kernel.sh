#!/usr/bin/env bash
# Prints the figures of the real target, the rpi5 kernel (bcm2712_defconfig of rpi-6.12.y plus
# our fragments), from the Raspberry Pi tree that FLEET_RPI_SOURCE names:
#   builds      rpi5-qemu, rpi5 (sharing one build tree) and rpi5-not-headless (Image only):
#               seconds each and how (built from what the tree already had, or up to date)
#   bundle      size, files, modules, dtbs, overlays; the Image of each
#   headless    Image size and MemTotal at boot of rpi5 against rpi5-not-headless (same tree,
#               same fragments but headless), both booted on the same virtual Pi 5
#   numa, thp   fleet-agent bench on the booted rpi5-qemu kernel (4 Cortex-A76, 2 GB, one
#               QEMU memory node): the bootloader's numa=fake=4 against numa=fake=1 (off),
#               THP madvise against always. TCG is not a Pi: these show that the switches
#               work, not what they are worth on a board.
# Options:
#   --cold        first build everything in an empty ccache and fleetctl cache (over 2 hours)
#   --fresh-tree  first build rpi5 in an empty fleetctl cache with the ccache as it is (the
#                 figure a CI machine that keeps its ccache pays)
#   --stock       also build a stock bcm2712_defconfig Image with plain make (30-40 min cold)
#   --no-bench    skip the numa/thp measurements (8 boots, about 10 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${FLEET_RPI_SOURCE:?set FLEET_RPI_SOURCE to a Raspberry Pi kernel tree (README: Building the rpi5 kernel)}"
export FLEET_RPI_SOURCE
fleetctl=build/host/controller/fleetctl
sim=build/host/sim/fleet-sim
cold=0 fresh=0 stock=0 bench=1
for a in "$@"; do
  case "$a" in
    --cold) cold=1 ;; --fresh-tree) fresh=1 ;; --stock) stock=1 ;; --no-bench) bench=0 ;;
    *) echo "rpi5_kernel.sh: unknown option $a" >&2; exit 2 ;;
  esac
done
echo "fleetctl from build/host: $(grep -m1 '^CMAKE_BUILD_TYPE' build/host/CMakeCache.txt 2>/dev/null || echo 'not configured')"
echo "source: $FLEET_RPI_SOURCE ($(make -s -C "$FLEET_RPI_SOURCE" kernelversion 2>/dev/null)), $(nproc) cores"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=build/bundles
field() { python3 -c "import sys,json; j=json.load(sys.stdin); print($1)"; }
build() {  # build PROFILE OUT [env...]: prints "seconds how"
  local profile=$1 dest=$2; shift 2
  env "$@" $fleetctl kernel build --profile "$profile" --out "$dest" --json 2>"$work/err" |
    field "round(j['seconds']), j['how']" | tr -d "(),'" ||
    { tail -20 "$work/err" >&2; exit 1; }
}

if [ $cold = 1 ]; then
  echo "== cold: empty ccache, empty fleetctl cache"
  echo "  rpi5-qemu: $(build rpi5-qemu "$work/cold" FLEETCTL_CACHE="$work/cache-cold" CCACHE_DIR="$work/ccache-cold") s"
fi
if [ $fresh = 1 ]; then
  echo "== warm ccache, fresh build tree"
  echo "  rpi5: $(build rpi5 "$work/fresh" FLEETCTL_CACHE="$work/cache-fresh") s"
fi

echo "== builds in the shared build tree (ccache and kbuild as they are now)"
echo "  rpi5-qemu:            $(build rpi5-qemu $out/rpi5-qemu)"
echo "  rpi5 (after it):      $(build rpi5 $out/rpi5)"
echo "  rpi5-not-headless:    $(build bench/profiles/rpi5-not-headless.yaml $out/rpi5-not-headless)"
echo "  rpi5 again (no change): $(build rpi5 $out/rpi5)"

echo "== the rpi5 bundle"
python3 - "$out/rpi5" <<'EOF'
import json, os, sys
b = sys.argv[1]
m = json.load(open(os.path.join(b, "manifest.json")))
files = m["files"]
total = sum(f["size"] for f in files.values())
def part(pred):
    sel = [p for p in files if pred(p)]
    return len(sel), sum(files[p]["size"] for p in sel)
mods = part(lambda p: p.endswith(".ko") or p.endswith(".ko.xz"))
dtbs = part(lambda p: p.startswith("boot/") and p.endswith(".dtb") and "/overlays/" not in p)
ovl = part(lambda p: p.startswith("boot/overlays/"))
mib = lambda n: f"{n / 1048576:.1f} MiB"
print(f"  kernel {m['kernel_release']}: {len(files)} files, {mib(total)}")
print(f"  kernel_2712.img {mib(files['boot/kernel_2712.img']['size'])}; {mods[0]} modules {mib(mods[1])}; "
      f"{dtbs[0]} dtbs; overlays/ {ovl[0]} files {mib(ovl[1])}")
EOF

if [ $stock = 1 ]; then
  echo "== stock bcm2712_defconfig (plain make, Image only)"
  t0=$(date +%s)
  make -s -C "$FLEET_RPI_SOURCE" O="$work/stock" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- bcm2712_defconfig
  make -s -C "$FLEET_RPI_SOURCE" O="$work/stock" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- \
    CC="ccache aarch64-linux-gnu-gcc" KBUILD_BUILD_TIMESTAMP=@0 -j"$(nproc)" Image >/dev/null
  echo "  built in $(( $(date +%s) - t0 )) s; Image $(stat -c %s "$work/stock/arch/arm64/boot/Image") bytes"
fi

echo "== headless: the same virtual Pi 5 (4 Cortex-A76, 2 GB) booting each Image"
pi5=(--cpus 4 --memory 2048 --qemu-numa-nodes 1 --append console=ttyAMA0 --json)
for b in rpi5 rpi5-not-headless; do
  size=$(stat -c %s "$out/$b/boot/kernel_2712.img")
  $sim boot-verify --bundle "$out/$b" "${pi5[@]}" >"$work/$b.json" 2>/dev/null || true
  python3 - "$work/$b.json" "$b" "$size" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
mem = (j.get("report") or {}).get("memory", {})
print(f"  {sys.argv[2]:18} Image {int(sys.argv[3]) / 1048576:6.2f} MiB  MemTotal {mem.get('mem_total_kb', 0) / 1024:7.1f} MiB"
      f"  MemAvailable {mem.get('mem_available_kb', 0) / 1024:7.1f} MiB")
print(f"  {'':18} {j.get('kernel_memory', '')}")
EOF
done

if [ $bench = 1 ]; then
  echo "== numa=fake and THP on the booted rpi5-qemu (fleet-agent bench --model-shape 15m; TCG, not a Pi)"
  for words in "" "numa=fake=1" "transparent_hugepage=always" "numa=fake=1 transparent_hugepage=always"; do
    for run in 1 2; do
      $sim boot-verify --bundle "$out/rpi5-qemu" --cpus 4 --memory 2048 --qemu-numa-nodes 1 \
        ${words:+--append "$words"} --bench "--model-shape 15m --size-mib 256 --repetitions 3" --json \
        >"$work/b.json" 2>/dev/null || true
      python3 - "$work/b.json" "${words:-bootloader default (numa=fake=4), madvise}" "$run" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
b = j.get("bench") or {}
m = b.get("machine") or {}
p = b.get("probe") or {}
reads = [r for r in (b.get("bandwidth") or {}).get("results", []) if r.get("kernel") == "read" and r.get("hugepage")]
best = max((r["gbps"] for r in reads), default=0)
print(f"  {sys.argv[2]:45} run {sys.argv[3]}: {m.get('numa_nodes', '?')} nodes, THP {m.get('thp', '?')}, "
      f"probe {p.get('tokens_per_s', 0):.2f} t/s (huge {p.get('huge_fraction', 0):.2f}), read {best:.2f} GB/s")
EOF
    done
  done
fi
