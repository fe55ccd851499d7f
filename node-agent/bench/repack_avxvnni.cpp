// q4_0_8x8 with AVX-VNNI: the pair sum is one vpdpbusd (ggml's mul_sum_us8_pairs when built
// with AVX-VNNI or AVX512-VNNI and VL). Compiled with -mavx2 -mfma -mf16c -mavxvnni.
#include "node-agent/bench/repack_x86.hpp"

namespace fleet::agent::bench {

void gemv_q4_0_8x8_avxvnni(const std::uint8_t* w, const BlockQ8_0* x, std::size_t blocks, std::size_t groups,
                           float* out) {
  const __m256i zero = _mm256_setzero_si256();
  gemv_8x8(w, x, blocks, groups, out, [&](__m256i wq, __m256i a) {
    return _mm256_dpbusd_avx_epi32(zero, _mm256_sign_epi8(wq, wq), _mm256_sign_epi8(a, wq));
  });
}

}  // namespace fleet::agent::bench
