#!/usr/bin/env bash
# The probe against llama.cpp's own llama-bench, per model shape, on this machine (or, with
# --aarch64, both built for the Pi 5's Cortex-A76 and run under qemu-aarch64 -cpu cortex-a76).
#
#   bench/llama_vs_probe.sh --source LLAMA_CPP_DIR [--shapes "1b 110m"] [--rounds 9]
#                           [--threads N] [--tokens 128] [--sync gomp|spin] [--aarch64]
#
# - builds llama-bench from the llama.cpp tree at --source (or $LLAMA_CPP_DIR) into
#   build/llama-x86-SYNC or build/llama-aarch64-SYNC (ccache; nothing is downloaded: README,
#   Benchmarks, "The probe against llama-bench", says how to bring a tree here), CPU only, as a user builds it
#   (GGML_NATIVE here; armv8.2-a+dotprod, static, for the Pi 5), with GGML_OPENMP on (its
#   default) for --sync gomp, off for --sync spin; the probe's threads meet the same way;
# - writes a random-weight Q4_0 GGUF file of each shape with bench/gguf_random.py, the shape
#   being the one the probe reports (so both read the same matrices);
# - alternates the two, --rounds times each: the probe (fleet-agent bench, its defaults: at
#   least 16 tokens and 2 s, positions 0..TOKENS-1 spread) and llama-bench (-p 0 -n TOKENS
#   -r 1, generation only: tg128 by default, as llama-bench's own default; -mmp 0, the
#   weights read into memory: on this repository's VM a memory-mapped model ran at a fifth of
#   the speed, its page cache being reclaimed under it);
# - prints per shape the medians, probe / llama-bench (goal: within 10%, 0.90-1.10), each
#   one's effective bandwidth (weight bytes per token x tokens/s) over the measured read
#   bandwidth (goal 0.85 for the probe), how far the probe's second run was from its first
#   (goal: within 5% on a quiet machine), and a verdict on the 10% goal from the paired ratios
#   of the rounds (each probe run over the llama-bench run after it): within when an interval
#   of at least 90% of their median is inside 0.90-1.10, outside when wholly outside, else "cannot tell".
# Takes about 10 minutes for the first build, then ~2 minutes per shape here at 9 rounds (--aarch64: the
# cross build and qemu's emulation, several minutes per shape; the 15m and 110m shapes).
set -euo pipefail
cd "$(dirname "$0")/.."
src=${LLAMA_CPP_DIR:-}
shapes=""
rounds=9  # 5 is the fewest that give a 90% interval of the median; 9 give 96% without min and max
threads=$(nproc)
tokens=128
sync=gomp
arch=x86
while [ $# -gt 0 ]; do
  case $1 in
    --source) src=$2; shift 2 ;;
    --shapes) shapes=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --tokens) tokens=$2; shift 2 ;;
    --sync) sync=$2; shift 2 ;;
    --aarch64) arch=aarch64; shift ;;
    -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "llama_vs_probe.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$shapes" ] || { [ $arch = x86 ] && shapes="1b 110m" || shapes="15m 110m"; }
[ -n "$src" ] || { echo "llama_vs_probe.sh: give --source LLAMA_CPP_DIR (a llama.cpp source tree) or set LLAMA_CPP_DIR" >&2; exit 2; }
[ -f "$src/examples/llama-bench/llama-bench.cpp" ] || [ -f "$src/tools/llama-bench/llama-bench.cpp" ] ||
  { echo "llama_vs_probe.sh: $src is not a llama.cpp tree (no llama-bench.cpp under examples/ or tools/)" >&2; exit 2; }
case $sync in
  gomp) openmp=ON ;;
  spin) openmp=OFF ;;
  *) echo "llama_vs_probe.sh: --sync takes gomp or spin, got '$sync'" >&2; exit 2 ;;
esac
for n in "$rounds" "$threads" "$tokens"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "llama_vs_probe.sh: --rounds, --threads and --tokens take a positive number, got '$n'" >&2; exit 2; }
done
tools="jq cmake ninja ccache /usr/bin/python3"
[ $arch = x86 ] || tools="$tools aarch64-linux-gnu-g++ qemu-aarch64-static"
for tool in $tools; do
  command -v "$tool" >/dev/null || { echo "llama_vs_probe.sh: needs $tool (scripts/setup.sh installs it)" >&2; exit 2; }
done

if [ $arch = x86 ]; then
  agent=build/host/node-agent/fleet-agent
  run=()
  [ -x "$agent" ] || { echo "llama_vs_probe.sh: no $agent (run scripts/build.sh)" >&2; exit 1; }
else
  agent=build/aarch64/node-agent/fleet-agent
  [ -x "$agent" ] || { echo "llama_vs_probe.sh: no $agent (cmake --build --preset aarch64-agent)" >&2; exit 1; }
  export QEMU_CPU=cortex-a76
  run=(qemu-aarch64-static)
fi
# shellcheck source=bench/llama_build.sh
. bench/llama_build.sh
llama_build "$src" $arch $openmp llama-bench
out=$llama_out
llama=$(find "$out" -name llama-bench -type f -perm -u+x | head -1)
[ -n "$llama" ] || { echo "llama_vs_probe.sh: the build made no llama-bench" >&2; exit 1; }
echo "llama.cpp: $(git -C "$src" describe --always 2>/dev/null || echo "tree at $src"), $llama"
if [ $openmp = ON ] && ! llama_has_openmp; then
  echo "llama_vs_probe.sh: llama.cpp's build found no OpenMP, so its threads spin; run with --sync spin" >&2; exit 1
fi
echo "threads meet: $sync ($([ $sync = gomp ] && echo "libgomp's barrier in both, as llama.cpp's default build" || echo "ggml's spinning barrier, GGML_OPENMP=OFF; the probe's PhaseBarrier"))"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"${run[@]}" "$agent" bench --no-probe --json 2>/dev/null > "$work/bw.json"
read_bw=$(jq "[.bandwidth.results[] | select(.kernel==\"read\" and .threads==$threads and .hugepage) | .gbps] | max // 0" "$work/bw.json")
if [ "$read_bw" = 0 ]; then  # --threads other than every CPU: the all-CPU figure
  read_bw=$(jq '[.bandwidth.results[] | select(.kernel=="read" and .hugepage) | .gbps] | max // 0' "$work/bw.json")
fi
[ "$read_bw" != 0 ] || { echo "llama_vs_probe.sh: fleet-agent bench measured no read bandwidth" >&2; exit 1; }
printf 'read bandwidth (%s threads, MADV_HUGEPAGE): %.2f GB/s\n' "$threads" "$read_bw"

median() { sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

printf '\n%-5s %-10s %10s %8s %12s %8s %8s %10s %10s %9s\n' shape layout "probe t/s" spread "llama t/s" "sd" ratio "probe/read" "llama/read" "2nd run"
for shape in $shapes; do
  "${run[@]}" "$agent" bench --model-shape "$shape" --no-bandwidth --threads "$threads" --json 2>/dev/null > "$work/p0.json"
  dims=$(jq -r '.probe.shape | "--dim \(.dim) --layers \(.layers) --ffn \(.ffn) --heads \(.heads) --kv-heads \(.kv_heads) --vocab \(.vocab)"' "$work/p0.json")
  # shellcheck disable=SC2086
  /usr/bin/python3 bench/gguf_random.py "$work/$shape.gguf" $dims --name "$shape" 2>/dev/null
  : > "$work/probe.txt"; : > "$work/llama.txt"
  for ((r = 1; r <= rounds; r++)); do
    "${run[@]}" "$agent" bench --model-shape "$shape" --no-bandwidth --threads "$threads" --context "$tokens" --sync "$sync" --json 2>/dev/null > "$work/p.json"
    jq -r '.probe.tokens_per_s' "$work/p.json" >> "$work/probe.txt"
    if ! "${run[@]}" "$llama" -m "$work/$shape.gguf" -p 0 -n "$tokens" -r 1 -t "$threads" -mmp 0 -o json \
         2> "$work/l.err" > "$work/l.json"; then
      echo "llama_vs_probe.sh: llama-bench failed on the $shape shape:" >&2; tail -5 "$work/l.err" >&2; exit 1
    fi
    jq -r '.[] | select(.n_gen > 0) | .avg_ts' "$work/l.json" >> "$work/llama.txt"
  done
  [ -s "$work/probe.txt" ] && [ -s "$work/llama.txt" ] ||
    { echo "llama_vs_probe.sh: no figures for the $shape shape" >&2; exit 1; }
  p=$(median < "$work/probe.txt"); l=$(median < "$work/llama.txt")
  bpt=$(jq '.probe.bytes_per_token' "$work/p.json")
  jq -r --argjson p "$p" --argjson l "$l" --argjson bw "$read_bw" --argjson bpt "$bpt" \
     --argjson first "$(sed -n 1p "$work/probe.txt")" --argjson second "$(sed -n 2p "$work/probe.txt" | grep . || sed -n 1p "$work/probe.txt")" \
     --arg sd "$(awk '{s+=$1; q+=$1*$1; n++} END {m=s/n; v=q/n-m*m; printf "%.1f", (v>0?sqrt(v):0)}' "$work/llama.txt")" \
     '.probe | [.shape.name, .layout, ($p*10|round/10), "\(.spread*1000|round/10)%", ($l*10|round/10), $sd,
               ($p/$l*1000|round/1000), ($bpt*$p/1e9/$bw*100|round/100), ($bpt*$l/1e9/$bw*100|round/100),
               "\((($second/$first-1)*1000|round/10))%"] | @tsv' "$work/p.json" |
    awk -F'\t' '{printf "%-5s %-10s %10s %8s %12s %8s %8.3f %10.2f %10.2f %9s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10}'
  echo "  rounds: probe $(tr '\n' ' ' < "$work/probe.txt")| llama-bench $(tr '\n' ' ' < "$work/llama.txt")" | awk '{printf "  "; for (i=1;i<=NF;i++) printf (($i+0==$i)? "%.1f ":"%s "), $i; print ""}'
  # Each round runs the two back to back, so their ratio is paired: the machine's drift
  # between rounds (a fifth on a shared VM) moves both. The goal is judged on a confidence
  # interval of the median paired ratio (order statistics, at least 90%, which narrows as
  # rounds are added), not on one median: a verdict the noise can overturn is not given.
  /usr/bin/python3 - "$work/probe.txt" "$work/llama.txt" <<'PY'
import math, sys
probe = [float(x) for x in open(sys.argv[1]).read().split()]
llama = [float(x) for x in open(sys.argv[2]).read().split()]
if len(probe) != len(llama) or not probe or min(llama) <= 0:
    sys.exit(f"llama_vs_probe.sh: {len(probe)} probe and {len(llama)} llama-bench figures: not one pair a round")
r = sorted(p / l for p, l in zip(probe, llama))
n = len(r)
mid = (r[(n - 1) // 2] + r[n // 2]) / 2
# The interval [r_(k), r_(n-k+1)] holds the median with probability 1 - 2 P(Binomial(n, 1/2) < k).
def below(k):
    return sum(math.comb(n, i) for i in range(k)) / 2 ** n
k = 0
while k + 1 <= n // 2 and 1 - 2 * below(k + 1) >= 0.90:
    k += 1
if k == 0:
    print(f"  paired ratios: median {mid:.3f} of {n} rounds: too few rounds for a 90% interval (5 or more)")
    sys.exit(0)
lo, hi, level = r[k - 1], r[n - k], 1 - 2 * below(k)
if lo >= 0.90 and hi <= 1.10:
    verdict = "within 10%"
elif hi < 0.90 or lo > 1.10:
    verdict = "outside 10%"
else:
    verdict = "cannot tell at 10%: the interval spans the bound (more rounds, a quieter machine)"
print(f"  paired ratios: median {mid:.3f}, {level:.0%} interval {lo:.3f}-{hi:.3f} of {n} rounds: {verdict}")
PY
done
echo
echo "ratio: probe / llama-bench generation tokens/s, medians of alternating runs (goal 0.90-1.10);"
echo "  paired ratios: each round's probe over the llama-bench run right after it; the verdict needs"
echo "  the median's interval (90% or more) inside 0.90-1.10 (within) or wholly outside it (outside)."
echo "x/read: weight bytes per token x tokens/s over the read bandwidth (goal 0.85 for the probe)."
echo "2nd run: the probe's second run against its first (goal: within 5% on a quiet machine)."
