// q4_0_8x8 with AVX2: the pair sum is ggml's mul_sum_i8_pairs (the sign moves onto the
// activations, maddubs, then madd with ones). Compiled with -mavx2 -mfma -mf16c.
#include "node-agent/bench/repack_x86.hpp"

namespace fleet::agent::bench {

void gemv_q4_0_8x8_avx2(const std::uint8_t* w, const BlockQ8_0* x, std::size_t blocks, std::size_t groups, float* out) {
  const __m256i ones16 = _mm256_set1_epi16(1);
  gemv_8x8(w, x, blocks, groups, out, [&](__m256i wq, __m256i a) {
    return _mm256_madd_epi16(ones16, _mm256_maddubs_epi16(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(a, wq)));
  });
}

}  // namespace fleet::agent::bench
