// The Q4_0 x Q8_0 dot product with AVX-VNNI (vpdpbusd): one instruction multiplies unsigned
// by signed bytes and sums each four into an int32, where AVX2 needs sign, sign, maddubs and
// madd. The nibbles stay unsigned (0..15) and the -8 offset comes off as 8 * sum(y).
// Compiled with -mavx2 -mfma -mavxvnni; called only when cpuid reports AVX-VNNI.
// (Prefetch distances of 2, 8 and 16 KiB measured no better than dot_x86.hpp's 4 KiB.)
#include "node-agent/bench/dot_x86.hpp"

namespace fleet::agent::bench {

float dot_q4_0_q8_0_avxvnni(const BlockQ4_0* x, const BlockQ8_0* y, std::size_t blocks) {
  const __m256i eight = _mm256_set1_epi8(8);
  const __m256i zero = _mm256_setzero_si256();
  return dot_loop(x, y, blocks, [&](const BlockQ4_0& bx, const BlockQ8_0& by) {
    const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(by.qs));
    const __m256i dot = _mm256_dpbusd_avx_epi32(zero, unpack_nibbles(bx), qy);
    const __m256i off = _mm256_dpbusd_avx_epi32(zero, eight, qy);
    return _mm256_cvtepi32_ps(_mm256_sub_epi32(dot, off));
  });
}

}  // namespace fleet::agent::bench
