#!/usr/bin/env bash
# Builds the libFuzzer harnesses of the parsers (preset fuzz: clang 16, ASan, UBSan;
# tests/fuzz) and runs them.
#   bash scripts/fuzz.sh                every harness for 20 s (ctest -L fuzz), as scripts/test.sh does
#   bash scripts/fuzz.sh NAME [SECONDS] one harness for longer (default an hour), on every core
# What a run finds stays in build/fuzz/tests/fuzz/: new inputs in corpus/NAME/ (the next run
# starts from them), a crash, hang or leak in crashes/NAME/.
set -euo pipefail
cd "$(dirname "$0")/.."
# As in build.sh: ccache hits whatever folder the checkout lives in.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
jobs=$(nproc)
started=$(date +%s)
[ -f build/fuzz/build.ninja ] || cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$jobs"
built=$(date +%s)
dir=build/fuzz/tests/fuzz
if [ $# -eq 0 ]; then
  ctest --preset fuzz -j "$jobs"
else
  name=$1 seconds=${2:-3600}
  if [ ! -x "$dir/${name}_fuzz" ]; then
    echo "fuzz.sh: no harness '$name'; there are: $(cd "$dir" && ls -- *_fuzz | sed 's/_fuzz$//' | tr '\n' ' ')" >&2
    exit 2
  fi
  dict=()
  [ -f "tests/fuzz/dict/$name.dict" ] && dict=("-dict=tests/fuzz/dict/$name.dict")
  symbolizer=$(command -v llvm-symbolizer-16 || command -v llvm-symbolizer-14 || command -v llvm-symbolizer || true)
  # -fork: one fuzzing process per core, merging into one corpus; stops at the first crash.
  ASAN_SYMBOLIZER_PATH=$symbolizer UBSAN_OPTIONS=print_stacktrace=1 \
    "$dir/${name}_fuzz" -fork="$jobs" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$dir/crashes/$name/" "${dict[@]}" \
    "$dir/corpus/$name" "tests/fuzz/corpus/$name"
fi
echo "== fuzz: built in $(( built - started )) s, fuzzed in $(( $(date +%s) - built )) s"
