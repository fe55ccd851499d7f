// The Q4_0 x Q8_0 dot product with AVX-VNNI (vpdpbusd): one instruction multiplies unsigned
// by signed bytes and sums each four into an int32, where AVX2 needs sign, sign, maddubs and
// madd. The nibbles stay unsigned (0..15) and the -8 offset comes off as 8 * sum(y).
// Compiled with -mavx2 -mfma -mavxvnni; called only when cpuid reports AVX-VNNI.
#include <immintrin.h>

#include "node-agent/bench/quant.hpp"

namespace fleet::agent::bench {

const float* fp16_lookup();

namespace {
constexpr int k_prefetch_bytes = 4096;  // as in dot_avx2.cpp (2, 8 and 16 KiB: no better)

inline __m256 block_dot(const BlockQ4_0& x, const BlockQ8_0& y, const __m256i low4, const __m256i eight) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x.qs));
  const __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), low4);
  const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.qs));
  const __m256i zero = _mm256_setzero_si256();
  const __m256i dot = _mm256_dpbusd_avx_epi32(zero, nib, qy);
  const __m256i off = _mm256_dpbusd_avx_epi32(zero, eight, qy);
  return _mm256_cvtepi32_ps(_mm256_sub_epi32(dot, off));
}
}  // namespace

float dot_q4_0_q8_0_avxvnni(const BlockQ4_0* x, const BlockQ8_0* y, std::size_t blocks) {
  const float* t = fp16_lookup();
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i eight = _mm256_set1_epi8(8);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 1 < blocks; i += 2) {
    __builtin_prefetch(reinterpret_cast<const char*>(x + i) + k_prefetch_bytes);
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(t[x[i].d] * t[y[i].d]), block_dot(x[i], y[i], low4, eight), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(t[x[i + 1].d] * t[y[i + 1].d]), block_dot(x[i + 1], y[i + 1], low4, eight),
                           acc1);
  }
  if (i < blocks) acc0 = _mm256_fmadd_ps(_mm256_set1_ps(t[x[i].d] * t[y[i].d]), block_dot(x[i], y[i], low4, eight), acc0);
  const __m256 acc = _mm256_add_ps(acc0, acc1);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace fleet::agent::bench
