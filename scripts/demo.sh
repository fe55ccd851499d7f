#!/usr/bin/env bash
# The main job on this machine, no Pi needed (as root): set up, build the qemu-virt kernel
# bundles and the aarch64 agent (cached after the first run), start a virtual rack of three
# Pi 5 boards, roll the tuned kernel out with a canary wave, show `fleetctl status` (every
# board's verification and the tokens/s its agent measured on the new kernel), then
# roll out a deliberately bad bundle (its kernel fails its contract: THP never), which
# fails on the canary, is rolled back there and stops the rollout. The rack is torn down at
# the end unless --keep is given.
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0
[ "${1:-}" = "--keep" ] && keep=1
bash scripts/setup.sh
bash scripts/build.sh

fleetctl=build/host/controller/fleetctl
sim=build/host/sim/fleet-sim
rack=build/demo-rack
echo "== kernels: the tuned qemu-virt kernel, the boards' stock kernel, a bad variant"
echo "   (first run: about 5 minutes of kernel build; later runs: seconds)"
$fleetctl kernel build --profile qemu-virt --out build/bundles/qemu-virt
for v in stock thp-never; do
  $fleetctl kernel build --profile sim/profiles/qemu-virt-$v.yaml --out build/bundles/qemu-virt-$v
done

echo "== rack: three virtual Pi 5 boards on the stock kernel"
$sim rack down --rack $rack >/dev/null 2>&1 || true
rm -rf $rack
teardown() { [ $keep = 1 ] || $sim rack down --rack $rack >/dev/null 2>&1 || true; }
trap teardown EXIT
$sim rack up -n 3 --rack $rack --bundle build/bundles/qemu-virt-stock --base-port 22700 --wait 300 | grep -v '^  fleetctl'

export FLEETCTL_STATE=$PWD/$rack/fleet.db
common=(--inventory $rack/inventory.yml --accept-new-host-keys --known-hosts $rack/known_hosts
        --listen 127.0.0.1:50151 --report-address 10.0.2.2:50151)
echo "== rollout: the tuned kernel, a canary wave then the rest"
$fleetctl rollout --bundle build/bundles/qemu-virt --serial 1,100% "${common[@]}"
$fleetctl status

echo "== rollout: a bad bundle (its command line turns THP off); expected to stop at the canary"
if $fleetctl rollout --bundle build/bundles/qemu-virt-thp-never --serial 1,100% "${common[@]}"; then
  echo "demo: the bad rollout succeeded, which it must not" >&2
  exit 1
fi
$fleetctl status
if [ $keep = 1 ]; then
  echo "== the rack keeps running: $sim rack status --rack $rack; ssh -i $rack/id_ed25519 -p 22701 root@127.0.0.1"
  echo "   stop it with: $sim rack down --rack $rack"
fi
echo "== demo done: the tuned kernel is committed on every board; the bad one was stopped and rolled back"
