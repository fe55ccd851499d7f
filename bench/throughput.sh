#!/usr/bin/env bash
# Prints the figures behind `fleet-agent bench` on this machine:
#   memory bandwidth   read/copy/triad, 1 and all threads, with and without MADV_HUGEPAGE
#   the probe          per model shape: bytes read per token, time per token, effective GB/s,
#                      and that rate as a share of the measured read bandwidth (goal >= 0.85)
#   the dot product    one thread, per path, from cache and from memory (bench/dot_throughput)
#   the barrier        what a phase costs beyond its work: std::barrier against PhaseBarrier
#   THP and the paths  the 1b shape without huge pages, and on each dot-product path
#   agent memory       peak RSS of verify and send-reports (goal < 10 MB beside the buffers)
#   llama-bench        with LLAMA_BENCH=PROGRAM (bench/llama_vs_probe.sh builds one): its
#                      generation rate on a random-weight GGUF of the 1b shape, and its
#                      effective GB/s as a share of the read bandwidth beside the probe's
# Run after scripts/build.sh. About 2-4 minutes on 2 cores; needs ~8 GB free for 7b.
set -euo pipefail
cd "$(dirname "$0")/.."
agent=build/host/node-agent/fleet-agent
[ -x "$agent" ] || { echo "throughput.sh: no $agent (run scripts/build.sh)" >&2; exit 1; }
cmake --preset x86-static-agent >/dev/null
cmake --build --preset x86-static-agent --target fleet-agent >/dev/null
cmake --build build/host --target agent_rss dot_throughput phase_barrier >/dev/null
static_agent=build/x86-static/node-agent/fleet-agent
# Which build the figures come from: the dev tree is Release (-O3), the static agent MinSizeRel.
echo "builds: $(grep -m1 '^CMAKE_BUILD_TYPE' build/host/CMakeCache.txt) $(grep -m1 '^CMAKE_CXX_FLAGS_RELEASE' build/host/CMakeCache.txt) (build/host); static agent $(grep -m1 '^CMAKE_BUILD_TYPE' build/x86-static/CMakeCache.txt)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== machine and memory bandwidth"
$agent bench --no-probe > "$work/bw.txt" 2>/dev/null
sed -n '1p;3,$p' "$work/bw.txt"
$agent bench --no-probe --json 2>/dev/null > "$work/bw.json"
cpus=$(jq '.machine.cpus' "$work/bw.json")
read_bw=$(jq "[.bandwidth.results[] | select(.kernel==\"read\" and .threads==$cpus and .hugepage) | .gbps] | max" "$work/bw.json")
printf '\nread bandwidth used as the reference: %.2f GB/s (%s threads, MADV_HUGEPAGE)\n' "$read_bw" "$cpus"

probe() {  # shape [extra options...]: one line of the table
  local shape=$1; shift
  $agent bench --model-shape "$shape" --no-bandwidth --json "$@" 2>/dev/null > "$work/p.json"
  jq -r --argjson bw "$read_bw" --arg opts "${*:-}" '.probe |
    [.shape.name, $opts, (.bytes_per_token/1048576|floor), (.seconds_per_token*1000*10|round/10),
     (.seconds_per_token*1000/(.bytes_per_token/1e9)*10|round/10), (.effective_gbps*100|round/100),
     ((.effective_gbps/$bw)*100|round/100), (.tokens_per_s*100|round/100), .dot_path,
     ((.huge_fraction*100)|round)] | @tsv' "$work/p.json" | tee -a "$work/rows.tsv" |
    awk -F'\t' '{printf "  %-5s %-18s %7d MiB %9.1f ms %8.1f %9.2f %7.2f %9.2f  %-12s %3d%%\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10}'
}

echo
echo "== token-generation probe (synthetic Q4_0 weights, real arithmetic and memory traffic)"
echo "  shape options            bytes/token  ms/token    ms/GB   GB/s eff  of read  tokens/s  path         THP"
for s in 7b 3b 1b 110m 15m; do probe "$s"; done
# Time per token against bytes per token: the slope is the streaming rate, the intercept
# the fixed cost of a token (barriers between the matrix-vector phases, norms, quantizing).
awk -F'\t' '{gb=$3*1048576/1e9; ms=$4; n++; sx+=gb; sy+=ms; sxx+=gb*gb; sxy+=gb*ms}
     END {b=(n*sxy-sx*sy)/(n*sxx-sx*sx); a=(sy-b*sx)/n;
          printf "  fit over the shapes: ms/token = %.2f ms + %.1f ms per GB read (%.1f GB/s marginal)\n", a, b, 1000/b}' \
  "$work/rows.tsv"
echo
echo "== the dot product alone: is the probe bound by arithmetic or by memory here?"
build/host/bench/dot_throughput | sed 's/^/  /'

echo
echo "== threads meeting between the probe's phases (bench/phase_barrier)"
build/host/bench/phase_barrier | sed 's/^/  /'

echo
echo "== the THP effect and the dot-product paths (1b shape)"
probe 1b --hugepage     # MADV_HUGEPAGE; the table above holds the weights as llama.cpp does (no advice)
probe 1b --no-hugepage
for p in avx2 avx-vnni portable; do
  if $agent bench --self-test 2>/dev/null | grep -q "^$p: ok"; then probe 1b --path "$p"; fi
done

echo
echo "== agent memory"
build/host/bench/agent_rss "$static_agent" 2>/dev/null | sed 's/^/  /'
echo "  (the static x86-64 build: the same code and link as the aarch64 agent on the boards)"

if [ -n "${LLAMA_BENCH:-}" ]; then
  echo
  echo "== llama-bench beside the probe (1b shape, random weights, tg128, weights read into memory)"
  [ -x "$LLAMA_BENCH" ] || { echo "throughput.sh: LLAMA_BENCH=$LLAMA_BENCH is not a program" >&2; exit 1; }
  $agent bench --model-shape 1b --no-bandwidth --context 128 --json 2>/dev/null > "$work/p1b.json"
  dims=$(jq -r '.probe.shape | "--dim \(.dim) --layers \(.layers) --ffn \(.ffn) --heads \(.heads) --kv-heads \(.kv_heads) --vocab \(.vocab)"' "$work/p1b.json")
  # shellcheck disable=SC2086
  /usr/bin/python3 bench/gguf_random.py "$work/1b.gguf" $dims --name 1b 2>/dev/null
  "$LLAMA_BENCH" -m "$work/1b.gguf" -p 0 -n 128 -r 3 -t "$cpus" -mmp 0 -o json 2> "$work/l1b.err" > "$work/l1b.json" ||
    { echo "throughput.sh: llama-bench failed:" >&2; tail -5 "$work/l1b.err" >&2; exit 1; }
  bpt=$(jq '.probe.bytes_per_token' "$work/p1b.json")
  jq -r --argjson bw "$read_bw" --argjson bpt "$bpt" --slurpfile l "$work/l1b.json" '
    ($l[0][] | select(.n_gen > 0) | .avg_ts) as $lt |
    "  probe        \(.probe.tokens_per_s*100|round/100) t/s, \($bpt*.probe.tokens_per_s/1e9*100|round/100) GB/s = \($bpt*.probe.tokens_per_s/1e9/$bw*100|round/100) of read (goal 0.85)\n  llama-bench  \($lt*100|round/100) t/s, \($bpt*$lt/1e9*100|round/100) GB/s = \($bpt*$lt/1e9/$bw*100|round/100) of read"' "$work/p1b.json"
fi
