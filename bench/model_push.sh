#!/usr/bin/env bash
# Prints how long `fleetctl model push` takes to put one file on N light boards, peer to
# peer, against a direct push (--direct: every board fetches from the controller only),
# with the controller's upload limited (--max-rate), and against one board's transfer.
# Light boards (fleet-sim light) are folders with an sshd each on loopback: the transfer is
# real (SSH, fleet-model, libtorrent over TLS, SHA-256 per piece, sha256 of the whole file,
# fsync), but every board runs on this machine's cores, which hash and encrypt for all of
# them; a rack has a CPU per board. So the peer-to-peer figures are an upper bound.
#
#
# MODEL_PUSH_RACK=qemu runs the same pushes on the QEMU rack (fleet-sim rack up): aarch64
# boards with their own kernel, TCP stack and fleet-model, reached through QEMU's user
# networking (each board's fleet-model port forwarded from loopback; the boards dial each
# other at 10.0.2.2). TCG emulates each board's CPU at a few MB/s of TLS and SHA-256, and two
# host cores run all of them, so the QEMU defaults are scaled down: a 16 MB file, the
# controller at 1 MB/s (one board's transfer 16.8 s, as 1 GB at 100 MB/s is 10 s), 2 and 4
# boards of one CPU and 512 MB each.
#
#   MODEL_PUSH_RACK   light (default) or qemu
#   MODEL_PUSH_CASES  board counts (default "4 16 32"; qemu "2 4")
#   MODEL_PUSH_SIZE   the file's size for head -c (default 1G; qemu 16M)
#   MODEL_PUSH_RATE   the controller's --max-rate (default 100M: 100 MB/s; qemu 1M)
#   MODEL_PUSH_QEMU_CPUS, MODEL_PUSH_QEMU_MEMORY  each QEMU board's CPUs and MB (default 1, 512)
#   MODEL_PUSH_DIRECT 0 skips the direct pushes (they take N times one board's transfer)
# Goal (issue 16): at 32 boards, the peer-to-peer push under 2.5 times one board's transfer.
# Needs root and scripts/build.sh (qemu: and the demo's stock bundle, as light boards).
set -euo pipefail
cd "$(dirname "$0")/.."
sim=$PWD/build/host/sim/fleet-sim
fleetctl=$PWD/build/host/controller/fleetctl
tools=$PWD/build/board-tools
stock=$PWD/build/bundles/qemu-virt-stock
[ -f "$stock/manifest.json" ] || { echo "model_push.sh: no $stock (scripts/demo.sh builds it): light boards boot its contract" >&2; exit 1; }
kind=${MODEL_PUSH_RACK:-light}
case $kind in
  light) size=${MODEL_PUSH_SIZE:-1G}; rate=${MODEL_PUSH_RATE:-100M}; cases=${MODEL_PUSH_CASES:-4 16 32}; advertise=() ;;
  qemu) size=${MODEL_PUSH_SIZE:-16M}; rate=${MODEL_PUSH_RATE:-1M}; cases=${MODEL_PUSH_CASES:-2 4}; advertise=(--advertise 10.0.2.2) ;;
  *) echo "model_push.sh: MODEL_PUSH_RACK is light or qemu, not '$kind'" >&2; exit 2 ;;
esac
board_arch=x86_64
[ "$kind" = qemu ] && board_arch=aarch64  # the QEMU boards run the Pi's build
for f in "$sim" "$fleetctl" "$tools/$board_arch/bin/fleet-model"; do
  [ -x "$f" ] || { echo "model_push.sh: no $f (run scripts/build.sh)" >&2; exit 1; }
done
if [ "$kind" = light ] && [ "$(id -u)" != 0 ]; then
  echo "model_push.sh: light boards need root (mount and PID namespaces)" >&2; exit 1
fi
# sshd chroots into the boards: their folder must be root's all the way up (not /tmp).
work=$PWD/build/model-push-bench
rm -rf "$work"
mkdir -p "$work"
sim_pid=
qemu_rack=
stop_rack() {
  if [ -n "$sim_pid" ]; then kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; fi
  sim_pid=
  if [ -n "$qemu_rack" ]; then "$sim" rack down --rack "$qemu_rack" >/dev/null 2>&1 || true; fi
  qemu_rack=
}
cleanup() {
  stop_rack
  rm -rf "$work"
}
trap cleanup EXIT
model=$work/bench-model.gguf
head -c "$size" /dev/urandom >"$model"
bytes=$(stat -c %s "$model")
rate_bytes=$(python3 -c "import sys; u={'':1,'k':1e3,'K':1e3,'M':1e6,'G':1e9}; s=sys.argv[1]; n=s.rstrip('kKMG'); print(int(float(n)*u[s[len(n):]]))" "$rate")
one=$(python3 -c "print(f'{$bytes/$rate_bytes:.1f}')")
echo "model push on a $kind rack: $(nproc) cores, a file of $bytes bytes, the controller's upload limited to $rate_bytes bytes/s: one board's transfer at that rate takes $one s; $(git log -1 --format='%h %s' | cut -c1-60)"
printf "%-7s %-8s %10s %10s %12s %14s %10s\n" boards mode "wall s" "transfer s" "x one board" "controller sent" "complete"
port=$((26000 + RANDOM % 1000))
push() {  # push RACK DEST [--direct]: prints the JSON summary's figures
  local rack=$1 dest=$2; shift 2
  local t0 t1
  t0=$(date +%s.%N)
  "$fleetctl" model push "$model" --inventory "$rack/inventory.yml" --accept-new-host-keys \
    --known-hosts "$rack/known_hosts" --state "$rack/fleet.db" --board-tools "$tools" --listen 127.0.0.1:0 \
    --max-rate "$rate" --dest "$dest" --forks 16 --json "${advertise[@]}" "$@" >"$work/push.json" 2>"$work/push.err" || true
  t1=$(date +%s.%N)
  python3 - "$work/push.json" "$t0" "$t1" "$one" <<'PY'
import json, sys
path, t0, t1, one = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
try:
    s = json.load(open(path))
except Exception:
    print(f"{t1 - t0:10.1f} {'-':>10} {'-':>12} {'-':>14} {'failed':>10}")
    sys.exit(0)
done = sum(1 for b in s["boards"] if b["outcome"] == "complete")
sent = s["controller_sent"] / max(1, s["size"])
print(f"{t1 - t0:10.1f} {s['seconds']:10.1f} {s['seconds'] / one:12.2f} {sent:11.2f} cp {done:>6}/{len(s['boards'])}")
PY
}
start_rack() {  # start_rack N DIR: a rack of N boards in DIR, its inventory DIR/inventory.yml
  local n=$1 rack=$2
  if [ "$kind" = qemu ]; then
    qemu_rack=$rack
    "$sim" rack up -n "$n" --rack "$rack" --bundle "$stock" --base-port "$port" --cpus "${MODEL_PUSH_QEMU_CPUS:-1}" \
      --memory "${MODEL_PUSH_QEMU_MEMORY:-512}" --wait 1200 >"$work/sim.log" 2>&1 ||
      { echo "model_push.sh: the QEMU rack did not start" >&2; cat "$work/sim.log" >&2; exit 1; }
    return
  fi
  "$sim" light -n "$n" --rack "$rack" --bundle "$stock" --base-port "$port" >"$work/sim.log" 2>&1 &
  sim_pid=$!
  for _ in $(seq 1 1200); do
    grep -q 'light rack ready' "$work/sim.log" && break
    kill -0 "$sim_pid" 2>/dev/null || { cat "$work/sim.log" >&2; exit 1; }
    sleep 0.1
  done
  grep -q 'light rack ready' "$work/sim.log" || { echo "model_push.sh: the rack did not start" >&2; cat "$work/sim.log" >&2; exit 1; }
}
for n in $cases; do
  rack=$work/rack-$n
  start_rack "$n" "$rack"
  printf "%-7s %-8s " "$n" "p2p"
  push "$rack" /var/lib/fleet/models-p2p
  rm -rf "$rack"/pi-*/root/var/lib/fleet/models-p2p  # a light board's; a QEMU board's disk goes with the rack
  if [ "${MODEL_PUSH_DIRECT:-1}" != 0 ]; then
    printf "%-7s %-8s " "$n" "direct"
    push "$rack" /var/lib/fleet/models-direct --direct
    rm -rf "$rack"/pi-*/root/var/lib/fleet/models-direct
  fi
  stop_rack
  rm -rf "$rack"
  port=$((port + n + 2))
done
