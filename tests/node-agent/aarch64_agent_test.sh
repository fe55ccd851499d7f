#!/usr/bin/env bash
# Runs the static aarch64 fleet-agent under qemu-aarch64-static (no -L: a second glibc tree
# makes it hang) against a folder shaped like a board, once passing and once with THP never.
set -euo pipefail
agent=${1:?usage: aarch64_agent_test.sh AGENT [HOST_AGENT]}
host_agent=${2:-}
[ -x "$agent" ] || { echo "FAIL: no aarch64 agent at $agent (run scripts/build.sh)"; exit 1; }
file "$agent" | grep -q 'ARM aarch64.*statically linked' || { echo "FAIL: $agent is not a static aarch64 binary"; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/proc/self" "$root/proc/sys/kernel" "$root/sys/kernel/mm/transparent_hugepage" "$root/sys/devices/system/node"
echo "KernelPageSize:       16 kB" > "$root/proc/self/smaps"
echo "6.1.192-fleet-qemu" > "$root/proc/sys/kernel/osrelease"
printf 'MemTotal: 1000 kB\nMemAvailable: 900 kB\n' > "$root/proc/meminfo"
printf 'CONFIG_HZ=100\nCONFIG_NO_HZ_IDLE=y\n' | gzip > "$root/proc/config.gz"
echo "0-1" > "$root/sys/devices/system/node/online"
echo "always [madvise] never" > "$root/sys/kernel/mm/transparent_hugepage/enabled"
cat > "$root/contract.json" <<'JSON'
{"kernel_release":"6.1.192-fleet-qemu","page_size":16384,"thp":"madvise","numa_nodes":2,"hz":100,"tick":"NO_HZ_IDLE","headless":true}
JSON
out=$(timeout 60 qemu-aarch64-static "$agent" verify --json --root "$root" --contract "$root/contract.json")
echo "$out"
echo "$out" | grep -q '"ok":true' || { echo "FAIL: expected ok:true"; exit 1; }

echo "always madvise [never]" > "$root/sys/kernel/mm/transparent_hugepage/enabled"
set +e
out=$(timeout 60 qemu-aarch64-static "$agent" verify --json --root "$root" --contract "$root/contract.json")
rc=$?
set -e
echo "$out"
[ "$rc" -eq 1 ] || { echo "FAIL: expected exit 1 with THP never, got $rc"; exit 1; }
echo "$out" | grep -q '"actual":"never"' || { echo "FAIL: THP actual never not reported"; exit 1; }
echo "aarch64 agent: verify passes on the tuned folder and fails on THP never"

# The throughput probe's aarch64 paths: vdotq_s32 (qemu's default CPU has the dot-product
# extension) and the portable one, each against the scalar reference, ggml's repacked
# layouts 4x4 and 4x8 on both, the attention's F16 kernels (NEON's fcvtl/fcvtn), and our own
# F16 conversions against NEON's instructions.
out=$(timeout 120 qemu-aarch64-static "$agent" bench --self-test)
echo "$out"
for line in 'neon-dotprod' 'portable' 'q4_0_4x4 neon-dotprod' 'q4_0_4x8 neon-dotprod' 'q4_0_4x4 portable' 'f16 neon' 'f16 portable' "f16 conversions against neon's instructions"; do
  echo "$out" | grep -q "^$line: ok" || { echo "FAIL: $line did not match the reference"; exit 1; }
done
# The layout follows the CPU as ggml's does: the Pi 5's Cortex-A76 (dot product, no i8mm)
# 4x4, a CPU with i8mm (qemu's max) 4x8, a Cortex-A53 (neither) plain rows; all decode the
# same tokens (the weights are seeded per row, whatever the layout).
tokens=""
for cpu_layout in cortex-a76:q4_0_4x4:neon-dotprod max:q4_0_4x8:neon-dotprod cortex-a53:rows:portable; do
  IFS=: read -r cpu layout path <<< "$cpu_layout"
  out=$(QEMU_CPU=$cpu timeout 120 qemu-aarch64-static "$agent" bench --model-shape 15m --no-bandwidth --tokens 3 --min-seconds 0 --json)
  echo "$out" | grep -q "\"dot_path\": \"$path\"" || { echo "FAIL: on $cpu the probe did not use $path"; echo "$out"; exit 1; }
  echo "$out" | grep -q "\"layout\": \"$layout\"" || { echo "FAIL: on $cpu the probe did not hold its weights as $layout"; echo "$out"; exit 1; }
  token=$(echo "$out" | sed -n 's/.*"last_token": \([0-9]*\).*/\1/p')
  [[ $token =~ ^[0-9]+$ ]] || { echo "FAIL: on $cpu the probe reported no last token"; echo "$out"; exit 1; }
  tokens="$tokens $token"
  echo "  $cpu: $path, $layout, last token $token"
done
if [ -n "$host_agent" ]; then  # and this machine's own build, on its own layout
  out=$(timeout 120 "$host_agent" bench --model-shape 15m --no-bandwidth --tokens 3 --min-seconds 0 --json)
  token=$(echo "$out" | sed -n 's/.*"last_token": \([0-9]*\).*/\1/p')
  [[ $token =~ ^[0-9]+$ ]] || { echo "FAIL: the host's probe reported no last token"; echo "$out"; exit 1; }
  tokens="$tokens $token"
  echo "  this machine: $(echo "$out" | sed -n 's/.*"layout": "\([^"]*\)".*/\1/p'), last token $token"
fi
[ "$(echo $tokens | tr ' ' '\n' | sort -u | wc -l)" -eq 1 ] || { echo "FAIL: the layouts decoded different tokens:$tokens"; exit 1; }
echo "aarch64 agent: the dot-product paths and layouts match the reference and the probe decodes the same tokens"
