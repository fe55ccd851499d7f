#!/usr/bin/env bash
# Runs the static aarch64 fleet-agent under qemu-aarch64-static (no -L: a second glibc tree
# makes it hang) against a folder shaped like a board, once passing and once with THP never.
set -euo pipefail
agent=${1:?usage: aarch64_agent_test.sh AGENT}
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
# extension) and the portable one, each against the scalar reference.
out=$(timeout 120 qemu-aarch64-static "$agent" bench --self-test)
echo "$out"
echo "$out" | grep -q '^neon-dotprod: ok' || { echo "FAIL: the neon-dotprod path did not match the reference"; exit 1; }
echo "$out" | grep -q '^portable: ok' || { echo "FAIL: the portable path did not match the reference"; exit 1; }
out=$(timeout 120 qemu-aarch64-static "$agent" bench --model-shape 15m --no-bandwidth --tokens 3 --json)
echo "$out" | grep -q '"dot_path": "neon-dotprod"' || { echo "FAIL: the probe did not use neon-dotprod"; echo "$out"; exit 1; }
echo "aarch64 agent: the dot-product paths match the reference and the probe decodes"
