#!/usr/bin/env bash
# The probe's q4_0_8x8 matrix-vector product (x86, AVX2) against llama.cpp's own kernel reached
# through its library, one thread, on the same Q4_0 weights and Q8_0 activation; with
# --aarch64, the Pi 5's q4_0_4x4 (the dot product), both built for armv8.2-a+dotprod and run
# under qemu-aarch64 -cpu cortex-a76.
#
#   bench/gemv_vs_ggml.sh --source LLAMA_CPP_DIR [--shape ROWSxCOLS ...] [--reps N] [--aarch64]
#
# - builds ggml's CPU libraries from the llama.cpp tree at --source (or $LLAMA_CPP_DIR) into
#   build/llama-x86-gomp (build/llama-aarch64-gomp) exactly as bench/llama_vs_probe.sh does
#   (bench/llama_build.sh; nothing is downloaded), and needs build/host/node-agent/bench/
#   libagent_bench.a (scripts/build.sh), or build/aarch64/... (cmake --build --preset aarch64-agent);
# - compiles bench/gemv_vs_ggml.cpp against both and runs it pinned to one CPU (taskset):
#   ours is gemv_fn(LAYOUT, this CPU's best path); ggml's is a one-thread GGML_OP_MUL_MAT
#   on a weight tensor in ggml's repack buffer (ggml repacks it), so its time also holds the
#   activation's quantization to Q8_0 (timed alone beside it) and the graph executor's overhead;
# - prints per shape whether our repack gives ggml's bytes, the agreement of the two outputs
#   (max |diff| and how many are bit-identical, and each against an exact sum in double), each
#   one's ns per call and GB/s of weights (medians of --reps alternating repetitions, default 7),
#   and ours/ggml (<1: ours faster); exits 1 if the outputs or the repacks disagree.
# --shape (repeatable): rows a multiple of 8, cols of 32; by default 512x768 (in L2), 3072x768
# and 2048x2048 (in L3), 16384x4096 (36 MiB, from memory). Runs on x86-64 (exits 2 elsewhere).
# A few seconds once built (--aarch64: minutes, emulated); the first llama.cpp build takes
# about 10 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
src=${LLAMA_CPP_DIR:-}
args=()
arch=x86
while [ $# -gt 0 ]; do
  case $1 in
    --source) src=$2; shift 2 ;;
    --shape) args+=(--shape "$2"); shift 2 ;;
    --reps) args+=(--reps "$2"); shift 2 ;;
    --aarch64) arch=aarch64; shift ;;
    -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gemv_vs_ggml.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ "$(uname -m)" = x86_64 ] ||
  { echo "gemv_vs_ggml.sh: runs on x86-64 (this is $(uname -m)); --aarch64 emulates the Pi 5" >&2; exit 2; }
[ -n "$src" ] || { echo "gemv_vs_ggml.sh: give --source LLAMA_CPP_DIR (a llama.cpp source tree) or set LLAMA_CPP_DIR" >&2; exit 2; }
[ -f "$src/ggml/include/ggml-cpu.h" ] ||
  { echo "gemv_vs_ggml.sh: $src is not a llama.cpp tree (no ggml/include/ggml-cpu.h)" >&2; exit 2; }
if [ $arch = x86 ]; then
  cxx=${CXX:-c++} ours=build/host/node-agent/bench/libagent_bench.a run=() static=()
else
  cxx=aarch64-linux-gnu-g++ ours=build/aarch64/node-agent/bench/libagent_bench.a static=(-static)
  run=(env QEMU_CPU=cortex-a76 qemu-aarch64-static)
fi
tools=(cmake ninja ccache "$cxx")
[ $arch = x86 ] || tools+=(qemu-aarch64-static)
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || { echo "gemv_vs_ggml.sh: needs $tool (scripts/setup.sh installs it)" >&2; exit 2; }
done
[ -f "$ours" ] || { echo "gemv_vs_ggml.sh: no $ours (scripts/build.sh; for --aarch64 cmake --build --preset aarch64-agent)" >&2; exit 1; }

# shellcheck source=bench/llama_build.sh
. bench/llama_build.sh
llama_build "$src" $arch ON ggml-cpu ggml-base
omp=()
llama_has_openmp && omp=(-fopenmp)  # libggml-cpu.a then calls libgomp

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ccache "$cxx" -O2 -std=c++23 -Wall -Wextra -I. -I"$src/ggml/include" \
  -c bench/gemv_vs_ggml.cpp -o "$work/gemv_vs_ggml.o"
"$cxx" -o "$work/gemv_vs_ggml" "$work/gemv_vs_ggml.o" "$ours" \
  "$llama_out/ggml/src/libggml-cpu.a" "$llama_out/ggml/src/libggml-base.a" "${omp[@]}" "${static[@]}" -lpthread -lm

pin=()
if command -v taskset >/dev/null; then
  cpu=$(taskset -pc $$ | sed 's/.*: //; s/[-,].*//')  # the first CPU this shell may run on
  pin=(taskset -c "$cpu")
  echo "pinned to CPU $cpu"
else
  echo "no taskset: not pinned to one CPU"
fi
"${pin[@]}" "${run[@]}" "$work/gemv_vs_ggml" "${args[@]}"
