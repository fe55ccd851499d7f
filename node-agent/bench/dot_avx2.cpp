// The Q4_0 x Q8_0 dot product with AVX2 + FMA, as ggml does it on x86 (ggml-cpu quants.c,
// mul_sum_i8_pairs_float). Compiled with -mavx2 -mfma; called only when cpuid says so.
#include "node-agent/bench/dot_x86.hpp"

namespace fleet::agent::bench {

float dot_q4_0_q8_0_avx2(const BlockQ4_0* x, const BlockQ8_0* y, std::size_t blocks) {
  const __m256i eight = _mm256_set1_epi8(8);
  const __m256i ones16 = _mm256_set1_epi16(1);
  return dot_loop(x, y, blocks, [&](const BlockQ4_0& bx, const BlockQ8_0& by) {
    const __m256i qx = _mm256_sub_epi8(unpack_nibbles(bx), eight);
    const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(by.qs));
    // maddubs wants unsigned x signed: move x's sign onto y.
    const __m256i dot16 = _mm256_maddubs_epi16(_mm256_sign_epi8(qx, qx), _mm256_sign_epi8(qy, qx));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(ones16, dot16));
  });
}

}  // namespace fleet::agent::bench
