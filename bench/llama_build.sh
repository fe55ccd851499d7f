# shellcheck shell=bash
# Sourced by bench/llama_vs_probe.sh and bench/gemv_vs_ggml.sh: builds llama.cpp from a source
# tree (nothing is downloaded), CPU only, as a user builds it: Release, static libraries, ccache,
# GGML_NATIVE on x86; for the Pi 5 (aarch64) armv8.2-a+dotprod, static, cross-compiled.
#
#   llama_build SRC ARCH OPENMP TARGET...
#     SRC     a llama.cpp tree; ARCH x86 or aarch64; OPENMP ON (GGML_OPENMP's default: libgomp's
#             barrier) or OFF (ggml's spinning one)
#     builds the targets into build/llama-ARCH-gomp (ON) or build/llama-ARCH-spin (OFF), from the
#     repository's top, and sets llama_out to that folder.
llama_build() {
  local src=$1 arch=$2 openmp=$3
  shift 3
  llama_out=build/llama-$arch-$([ "$openmp" = ON ] && echo gomp || echo spin)
  local common=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF
                -DGGML_OPENMP="$openmp" -DBUILD_SHARED_LIBS=OFF -DCMAKE_C_COMPILER_LAUNCHER=ccache
                -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  echo "== building $* from $src into $llama_out"
  if [ "$arch" = x86 ]; then
    cmake -S "$src" -B "$llama_out" "${common[@]}" -DGGML_NATIVE=ON >/dev/null
  else
    # The Pi 5's Cortex-A76: Armv8.2-A with the dot product, no i8mm. Static, so qemu-user needs
    # no sysroot; OpenMP's libraries named as archives (FindOpenMP would take libgomp.so).
    cmake -S "$src" -B "$llama_out" "${common[@]}" -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
      -DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++ \
      -DGGML_NATIVE=OFF -DGGML_CPU_ARM_ARCH=armv8.2-a+dotprod \
      -DOpenMP_gomp_LIBRARY="$(aarch64-linux-gnu-gcc -print-file-name=libgomp.a)" \
      -DOpenMP_pthread_LIBRARY="$(aarch64-linux-gnu-gcc -print-file-name=libpthread.a)" \
      -DCMAKE_EXE_LINKER_FLAGS=-static >/dev/null
  fi
  cmake --build "$llama_out" --target "$@" -j"$(nproc)" 2>&1 | tail -1
}

# Whether the llama.cpp build in llama_out found OpenMP (without it, GGML_OPENMP=ON builds spin).
llama_has_openmp() {
  grep -q '^OpenMP_C_FLAGS:STRING=-f' "$llama_out/CMakeCache.txt"
}
