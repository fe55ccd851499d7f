#!/usr/bin/env bash
# Prints what fleetctl costs at 32 and 128 boards on real SSH, without QEMU: a rack of light
# boards (fleet-sim light: a folder, an sshd on loopback and the host's fleet-agent per board)
# takes a full rollout of the qemu-virt kernel, --serial 1,100%, max-fail 0%, reports over TLS.
# Per case: wall time, the controller's peak RSS (its own getrusage), and the mean time per
# step (from entering one to entering the next), which says where the time goes.
# The boards run on this machine: the controller shares its 2 cores with 32 or 128 sshd and
# agents, so the figures are an upper bound for a controller whose boards are elsewhere.
# Needs root, scripts/build.sh and the qemu-virt bundles (scripts/demo.sh builds them).
# LIGHT_CASES="BOARDS:FORKS ..." changes the cases (default "32:5 32:50 128:5 128:50").
# Light boards measure the controller only; the QEMU rack proves the kernels.
set -euo pipefail
cd "$(dirname "$0")/.."
sim=$PWD/build/host/sim/fleet-sim
fleetctl=$PWD/build/host/controller/fleetctl
agent=$PWD/build/host/node-agent/fleet-agent
stock=$PWD/build/bundles/qemu-virt-stock
new=$PWD/build/bundles/qemu-virt
for f in "$sim" "$fleetctl" "$agent"; do
  [ -x "$f" ] || { echo "light_rack.sh: no $f (run scripts/build.sh)" >&2; exit 1; }
done
for b in "$stock" "$new"; do
  [ -f "$b/manifest.json" ] || { echo "light_rack.sh: no $b (build the qemu-virt bundles first: scripts/demo.sh)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "light_rack.sh: light boards need root (mount and PID namespaces)" >&2; exit 1; }
# sshd chroots into the boards: their folder must be root's all the way up (not /tmp).
work=$PWD/build/light-bench
rm -rf "$work"
mkdir -p "$work"
sim_pid=
cleanup() {
  if [ -n "$sim_pid" ]; then kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
echo "light rack: $(nproc) cores, bundle $(du -sh "$new" | cut -f1) ($(basename "$new")), agent $(du -h "$agent" | cut -f1); $(git log -1 --format='%h %s' | cut -c1-60)"
port=$((25000 + RANDOM % 1000))
for case in ${LIGHT_CASES:-32:5 32:50 128:5 128:50}; do
  n=${case%%:*}
  forks=${case##*:}
  rack=$work/rack-$n-$forks
  t0=$(date +%s.%N)
  "$sim" light -n "$n" --rack "$rack" --bundle "$stock" --base-port "$port" >"$work/sim.log" 2>&1 &
  sim_pid=$!
  for _ in $(seq 1 1200); do
    grep -q 'light rack ready' "$work/sim.log" && break
    kill -0 "$sim_pid" 2>/dev/null || { cat "$work/sim.log" >&2; exit 1; }
    sleep 0.1
  done
  grep -q 'light rack ready' "$work/sim.log" || { echo "light_rack.sh: the rack did not start" >&2; cat "$work/sim.log" >&2; exit 1; }
  t1=$(date +%s.%N)
  report=$((port + n + 1))
  # Each saved step is a line ("[wave 2] pi-7 install"): stamped as it comes.
  python3 - "$fleetctl" "$rack" "$agent" "$new" "$forks" "$report" <<'PY' >"$work/result" || true
import resource, subprocess, sys, time
fleetctl, rack, agent, bundle, forks, report = sys.argv[1:]
argv = [fleetctl, "rollout", "--bundle", bundle, "--inventory", f"{rack}/inventory.yml", "--agent", agent,
        "--forks", forks, "--accept-new-host-keys", "--known-hosts", f"{rack}/known_hosts",
        "--state", f"{rack}/fleet.db", "--listen", f"127.0.0.1:{report}", "--report-address", f"127.0.0.1:{report}"]
t0 = time.monotonic()
p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
lines = []
for line in p.stdout:
    lines.append((time.monotonic() - t0, line.rstrip("\n")))
rc = p.wait()
with open("build/light-rack-rollout.log", "w") as log:  # the last case's whole output, kept
    log.writelines(f"{t:8.3f} {l}\n" for t, l in lines)
wall = time.monotonic() - t0
rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
if rc != 0:
    shown = [l for _, l in lines if "failed" in l or "error" in l][:20] + [l for _, l in lines[-5:]]
    print("\n".join(shown), file=sys.stderr)
    sys.exit(f"fleetctl rollout exited {rc}; its output: build/light-rack-rollout.log")
steps = {}
for t, l in lines:
    w = l.split()
    if len(w) >= 4 and w[0] == "[wave":
        steps.setdefault(w[2], []).append((t, w[3].rstrip(":")))
spent = {}
for seq in steps.values():
    for (t, name), (t2, _) in zip(seq, seq[1:]):
        spent.setdefault(name, []).append(t2 - t)
done = [l for _, l in lines if " done: " in l]
print(f"{wall:.1f} {rss_mib:.1f}")
print(done[-1] if done else "(no summary)")
order = ["connect", "inspect", "push_bundle", "staged", "push_agent", "install", "reboot", "await_boot", "await_outcome"]
print("  ".join(f"{k} {sum(spent[k]) / len(spent[k]):.1f}" for k in order if k in spent))
PY
  if ! [ -s "$work/result" ]; then
    cp "$work/sim.log" build/light-rack-sim.log
    echo "light_rack.sh: the rollout failed; fleet-sim's output: build/light-rack-sim.log" >&2
    exit 1
  fi
  read -r wall rss <"$work/result"
  printf '%4d boards, forks %2d: rollout %6.1f s wall, controller peak RSS %5.1f MiB (rack up in %.1f s)\n' \
    "$n" "$forks" "$wall" "$rss" "$(echo "$t1 - $t0" | bc)"
  sed -n 2p "$work/result" | sed 's/^/    /'
  echo "    mean s per step: $(sed -n 3p "$work/result")"
  kill "$sim_pid"
  wait "$sim_pid" || true
  sim_pid=
  rm -rf "$rack"
  port=$((port + n + 10))
done
