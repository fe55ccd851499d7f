// The F16 x F16 dot product with AVX2, FMA and F16C, as ggml's ggml_vec_dot_f16 runs on x86
// (GGML_F16_VEC: 8 halves widened by vcvtph2ps, four accumulators, 32 elements a round, the
// lanes summed in float, the tail in double). Compiled with -mavx2 -mfma -mf16c; called only
// when cpuid reports all three (f16_kernels).
#include <immintrin.h>

#include "node-agent/bench/f16.hpp"

namespace fleet::agent::bench {

// F16C's own conversions, 8 at a time (vcvtps2ph rounding to nearest even, vcvtph2ps): no
// kernel runs them; they check fp32_to_fp16 and fp16_to_fp32 with an implementation that is
// not ours (f16_hardware).
void to_f16_f16c(const float* x, F16* y, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) y[i] = static_cast<F16>(_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(x[i]), _MM_FROUND_TO_NEAREST_INT), 0));
}

void to_f32_f16c(const F16* x, float* y, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
  for (; i < n; ++i) y[i] = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(x[i])));
}

float dot_f16_f16c(const F16* x, const F16* y, std::size_t n) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (std::size_t r = 0; r < 4; ++r) {
      const __m256 a = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i + 8 * r)));
      const __m256 b = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(y + i + 8 * r)));
      acc[r] = _mm256_fmadd_ps(a, b, acc[r]);
    }
  }
  const __m256 s4 = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(s4), _mm256_extractf128_ps(s4, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  double sum = _mm_cvtss_f32(s);
  const float* t = fp16_lookup();
  for (; i < n; ++i) sum += double(t[x[i]] * t[y[i]]);
  return float(sum);
}

}  // namespace fleet::agent::bench
