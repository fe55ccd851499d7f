#include "node-agent/bench/f16.hpp"

namespace fleet::agent::bench {

// Implemented in f16_x86.cpp / f16_neon.cpp, compiled with their own target flags.
#if defined(__x86_64__)
float dot_f16_f16c(const F16* x, const F16* y, std::size_t n);
void to_f16_f16c(const float* x, F16* y, std::size_t n);
void to_f32_f16c(const F16* x, float* y, std::size_t n);
#endif
#if defined(__aarch64__)
void to_f16_neon(const float* x, F16* y, std::size_t n);
float dot_f16_neon(const F16* x, const F16* y, std::size_t n);
void to_f16_neon_only(const float* x, F16* y, std::size_t n);
void to_f32_neon(const F16* x, float* y, std::size_t n);
#endif

namespace {

void to_f16_portable(const float* x, F16* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

float dot_f16_portable(const F16* x, const F16* y, std::size_t n) {
  const float* t = fp16_lookup();
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += double(t[x[i]] * t[y[i]]);
  return float(sum);
}

}  // namespace

F16Kernels f16_portable_kernels() {
  (void)fp16_lookup();  // the table is built before any thread times anything
  return {to_f16_portable, dot_f16_portable, "portable"};
}

F16Kernels f16_kernels() {
  (void)fp16_lookup();
#if defined(__x86_64__)
  if (dot_path_available(DotPath::avx2) && cpu_has_f16c()) return {to_f16_portable, dot_f16_f16c, "f16c"};
#endif
#if defined(__aarch64__)
  return {to_f16_neon, dot_f16_neon, "neon"};
#else
  return f16_portable_kernels();
#endif
}

F16Hardware f16_hardware() {
#if defined(__x86_64__)
  // f16_x86.cpp is compiled for AVX2 too: called only where the kernels are.
  if (dot_path_available(DotPath::avx2) && cpu_has_f16c()) return {to_f16_f16c, to_f32_f16c, "f16c"};
#endif
#if defined(__aarch64__)
  return {to_f16_neon_only, to_f32_neon, "neon"};
#else
  return {};
#endif
}

double dot_f16_reference(const F16* x, const F16* y, std::size_t n) {
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += double(fp16_to_fp32(x[i])) * double(fp16_to_fp32(y[i]));
  return sum;
}

}  // namespace fleet::agent::bench
