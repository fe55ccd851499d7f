#!/usr/bin/env bash
# Prints what a virtual Pi 5 board costs under TCG on this machine:
#   power-on to ready  `fleet-sim board up --wait` from off to sshd listening (fleet-board: ready),
#                      3 times on one board (the first boot also runs systemd-sysusers)
#   one update         `fleetctl rollout` of the tuned qemu-virt kernel onto that board, from
#                      connect to committed (push agent and bundle, install, tryboot, verify)
# Run after scripts/build.sh and the qemu-virt bundles (scripts/demo.sh builds them, or
# `fleetctl kernel build --profile qemu-virt` and sim/profiles/qemu-virt-stock.yaml).
# About 3 minutes. BOARD_BOOT_RUNS=N changes the number of power-ons.
set -euo pipefail
cd "$(dirname "$0")/.."
sim=build/host/sim/fleet-sim
fleetctl=build/host/controller/fleetctl
for b in build/bundles/qemu-virt build/bundles/qemu-virt-stock; do
  [ -f "$b/manifest.json" ] || { echo "board_boot.sh: no $b (build the qemu-virt bundles first)" >&2; exit 1; }
done
runs=${BOARD_BOOT_RUNS:-3}
rack=$(mktemp -d)
trap '$sim rack down --rack "$rack" >/dev/null 2>&1 || true; rm -rf "$rack"' EXIT
port=$((23000 + RANDOM % 2000))
echo "board: $(nproc) host cores, QEMU TCG, 2 Cortex-A76, 1 GB; $(git log -1 --format='%h %s' | cut -c1-70)"
$sim board create pi-1 --rack "$rack" --bundle build/bundles/qemu-virt-stock --ssh-port $port --agent none >/dev/null

echo "== power-on to ready"
for i in $(seq 1 "$runs"); do
  : > "$rack/pi-1/console.log"
  t0=$(date +%s.%N)
  $sim board up pi-1 --rack "$rack" --wait 300 >/dev/null
  t1=$(date +%s.%N)
  printf '  run %d: %5.1f s power-on to sshd ready\n' "$i" "$(echo "$t1 - $t0" | bc)"
  $sim board down pi-1 --rack "$rack" >/dev/null
done

echo "== one update: fleetctl rollout of qemu-virt onto the board"
$sim board up pi-1 --rack "$rack" --wait 300 >/dev/null
cat > "$rack/inventory.yml" <<EOF
all:
  vars: {address: 127.0.0.1, key: $rack/id_ed25519, fleet_bench: 15m}
  hosts:
    pi-1: {port: $port}
EOF
t0=$(date +%s.%N)
# Each saved step is a line ("[wave 1] pi-1 install"): stamped as it comes, they give the
# time of every step, the figures bench/rollout_sim takes with --steps.
set -o pipefail
FLEETCTL_STATE=$rack/fleet.db $fleetctl rollout --bundle build/bundles/qemu-virt --inventory "$rack/inventory.yml" \
  --accept-new-host-keys --known-hosts "$rack/known_hosts" --listen 127.0.0.1:$((port + 1)) \
  --report-address 10.0.2.2:$((port + 1)) 2>&1 | while IFS= read -r line; do echo "$(date +%s.%N) $line"; done \
  >"$rack/rollout.log" || { tail -20 "$rack/rollout.log"; exit 1; }
t1=$(date +%s.%N)
printf '  rollout of one board: %.1f s (push agent and bundle, install, tryboot, verify, commit)\n' "$(echo "$t1 - $t0" | bc)"
echo "== its steps (seconds from entering one to entering the next)"
python3 - "$rack/rollout.log" <<'PY'
import sys
steps = []
for line in open(sys.argv[1]):
    t, _, rest = line.rstrip("\n").partition(" ")
    words = rest.split()
    if len(words) >= 4 and words[0] == "[wave" and words[2] == "pi-1":
        steps.append((float(t), words[3].rstrip(":")))
for (t, name), (t2, _) in zip(steps, steps[1:]):
    print(f"  {name:<14} {t2 - t:6.1f}")
PY
