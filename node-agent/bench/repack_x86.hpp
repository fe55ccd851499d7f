#pragma once
// The q4_0_8x8 matrix-vector product on x86, shared by the AVX2 and AVX-VNNI builds: each
// includes this with its own target flags and passes how it sums products of byte pairs.
//
// A group's block column is 8 scales and 128 bytes: bytes 0-7 of rows 0..7 (64 bytes), then
// bytes 8-15 of rows 0..7. Four 32-byte loads give rows 0-3 and rows 4-7 of each half. Each
// 32-bit lane pairs 4 weights of one row with 4 activations broadcast to every row, so one
// pair sum per nibble half and load gives 8 partial dot products; a horizontal add folds the
// two lanes of each row. ggml's AVX2 gemv does the same work with a different shuffle.
#include <immintrin.h>

#include <cstring>

#include "node-agent/bench/quant.hpp"

namespace fleet::agent::bench {

// pair_sum(w, a) -> int32 lanes, each the sum of 4 products of signed bytes.
template <class PairSum>
inline void gemv_8x8(const std::uint8_t* w, const BlockQ8_0* x, std::size_t blocks, std::size_t groups, float* out,
                     PairSum pair_sum) {
  const float* t = fp16_lookup();
  // The signed 4-bit values 0..7, -8..-1 as bytes, looked up by nibble.
  const __m256i sign_extend = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4,
                                               5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1);
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  // After the horizontal add the rows sit in the order 0 1 4 5 2 3 6 7.
  const __m256i scale_order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
  const __m256i out_order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
  constexpr std::size_t group = 8 * sizeof(BlockQ4_0);
  for (std::size_t g = 0; g < groups; ++g) {
    const std::uint8_t* p = w + g * blocks * group;
    __m256 acc = _mm256_setzero_ps();
    for (std::size_t k = 0; k < blocks; ++k, p += group) {
      const std::uint8_t* qs = p + 16;
      const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs));       // rows 0-3, bytes 0-7
      const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32));  // rows 4-7, bytes 0-7
      const __m256i v2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 64));  // rows 0-3, bytes 8-15
      const __m256i v3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 96));  // rows 4-7, bytes 8-15
      std::int64_t a[4];
      std::memcpy(a, x[k].qs, 32);
      const __m256i a0 = _mm256_set1_epi64x(a[0]), a1 = _mm256_set1_epi64x(a[1]);  // weights 0-7, 8-15
      const __m256i a2 = _mm256_set1_epi64x(a[2]), a3 = _mm256_set1_epi64x(a[3]);  // weights 16-23, 24-31
      auto lo = [&](__m256i v) { return _mm256_shuffle_epi8(sign_extend, _mm256_and_si256(v, low4)); };
      auto hi = [&](__m256i v) {
        return _mm256_shuffle_epi8(sign_extend, _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
      };
      __m256i s03 = _mm256_add_epi32(pair_sum(lo(v0), a0), pair_sum(lo(v2), a1));
      __m256i s47 = _mm256_add_epi32(pair_sum(lo(v1), a0), pair_sum(lo(v3), a1));
      s03 = _mm256_add_epi32(s03, _mm256_add_epi32(pair_sum(hi(v0), a2), pair_sum(hi(v2), a3)));
      s47 = _mm256_add_epi32(s47, _mm256_add_epi32(pair_sum(hi(v1), a2), pair_sum(hi(v3), a3)));
      const __m256i sums = _mm256_hadd_epi32(s03, s47);  // rows 0 1 4 5 | 2 3 6 7
      float d[8];
      for (int r = 0; r < 8; ++r) {
        std::uint16_t h;
        std::memcpy(&h, p + 2 * r, 2);
        d[r] = t[h];
      }
      const __m256 scales = _mm256_mul_ps(_mm256_permutevar8x32_ps(_mm256_loadu_ps(d), scale_order),
                                          _mm256_set1_ps(t[x[k].d]));
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), scales, acc);
    }
    _mm256_storeu_ps(out + 8 * g, _mm256_permutevar8x32_ps(acc, out_order));
  }
}

}  // namespace fleet::agent::bench
