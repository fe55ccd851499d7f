#pragma once
// The q4_0_8x8 matrix-vector product on x86, shared by the AVX2 and AVX-VNNI builds: each
// includes this with its own target flags and passes how it sums products of byte pairs.
//
// A group's block column is 8 scales and 128 bytes: bytes 0-7 of rows 0..7 (64 bytes), then
// bytes 8-15 of rows 0..7. Four 32-byte loads give rows 0-3 and rows 4-7 of each half.
//
// The plan is ggml's AVX2 gemv (ggml_gemv_q4_0_8x8_q8_0), step for step: rows 0-3 and 4-7
// are interleaved by a 32-bit shuffle and a blend, so each 32-bit lane holds 4 weights of one
// row in the order 0 4 1 5 2 6 3 7; the activations are broadcast 4 bytes at a time by a
// shuffle of a 16-byte load doubled across the register; eight pair sums are added with no
// horizontal add; the 8 scales come in one F16C conversion of a shuffled load, and the rows
// are put back in order once, at the end. An earlier plan of ours (64-bit broadcasts and one
// horizontal add) took 0.86-0.92 of the time of ggml's MUL_MAT on weights in cache, on the
// same buffer (bench/gemv_vs_ggml.sh), and so read fast against llama-bench on the shapes
// that fit in cache (15m: 1.09). The probe stands for llama.cpp, so it takes llama.cpp's plan.
// The plan is ggml's (MIT licence, Copyright (c) 2023-2024 The ggml authors); this code is ours.
#include <immintrin.h>


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
  // The 8 fp16 scales in the lanes' row order 0 4 1 5 2 6 3 7 (bytes of scale r at 2r, 2r+1).
  const __m128i scale_order = _mm_setr_epi8(0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15);
  // Lanes 0 2 4 6 hold rows 0-3, lanes 1 3 5 7 rows 4-7.
  const __m256i out_order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  constexpr std::size_t group = 8 * sizeof(BlockQ4_0);
  constexpr int swap_pairs = 0xb1;  // 32-bit lanes 1 0 3 2 in each 128 bits
  constexpr int odd_lanes = 0xaa;   // a blend taking lanes 1 3 5 7 from its second operand
  for (std::size_t g = 0; g < groups; ++g) {
    const std::uint8_t* p = w + g * blocks * group;
    __m256 acc = _mm256_setzero_ps();
    for (std::size_t k = 0; k < blocks; ++k, p += group) {
      const std::uint8_t* qs = p + 16;
      const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs));       // rows 0-3, bytes 0-7
      const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32));  // rows 4-7, bytes 0-7
      const __m256i v2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 64));  // rows 0-3, bytes 8-15
      const __m256i v3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 96));  // rows 4-7, bytes 8-15
      auto lo = [&](__m256i v) { return _mm256_shuffle_epi8(sign_extend, _mm256_and_si256(v, low4)); };
      auto hi = [&](__m256i v) {
        return _mm256_shuffle_epi8(sign_extend, _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
      };
      // Weights 0-7 (w03_0: rows 0-3), 8-15, 16-23, 24-31 of each row.
      const __m256i w03_0 = lo(v0), w47_0 = lo(v1), w03_1 = lo(v2), w47_1 = lo(v3);
      const __m256i w03_2 = hi(v0), w47_2 = hi(v1), w03_3 = hi(v2), w47_3 = hi(v3);
      // Activations 0-15 and 16-31, each 16 bytes in both halves of a register.
      // (A 16-byte load and a lane permute, as ggml does, rather than one vbroadcasti128.)
      auto doubled = [](const std::int8_t* q) {
        const __m256i v = _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
        return _mm256_permute2f128_si256(v, v, 0);
      };
      const __m256i a_lo = doubled(x[k].qs), a_hi = doubled(x[k].qs + 16);
      // Weights j..j+3 of rows 0 4 1 5 2 6 3 7 (first: the even 4-byte halves, second: the odd).
      auto first = [&](__m256i r03, __m256i r47) {
        return _mm256_blend_epi32(r03, _mm256_shuffle_epi32(r47, swap_pairs), odd_lanes);
      };
      auto second = [&](__m256i r03, __m256i r47) {
        return _mm256_blend_epi32(_mm256_shuffle_epi32(r03, swap_pairs), r47, odd_lanes);
      };
      __m256i s = pair_sum(first(w03_0, w47_0), _mm256_shuffle_epi32(a_lo, 0x00));
      s = _mm256_add_epi32(s, pair_sum(second(w03_0, w47_0), _mm256_shuffle_epi32(a_lo, 0x55)));
      s = _mm256_add_epi32(s, pair_sum(first(w03_1, w47_1), _mm256_shuffle_epi32(a_lo, 0xaa)));
      s = _mm256_add_epi32(s, pair_sum(second(w03_1, w47_1), _mm256_shuffle_epi32(a_lo, 0xff)));
      s = _mm256_add_epi32(s, pair_sum(first(w03_2, w47_2), _mm256_shuffle_epi32(a_hi, 0x00)));
      s = _mm256_add_epi32(s, pair_sum(second(w03_2, w47_2), _mm256_shuffle_epi32(a_hi, 0x55)));
      s = _mm256_add_epi32(s, pair_sum(first(w03_3, w47_3), _mm256_shuffle_epi32(a_hi, 0xaa)));
      s = _mm256_add_epi32(s, pair_sum(second(w03_3, w47_3), _mm256_shuffle_epi32(a_hi, 0xff)));
      const __m256 scales = _mm256_cvtph_ps(_mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), scale_order));
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(scales, _mm256_set1_ps(t[x[k].d])), acc);
    }
    _mm256_storeu_ps(out + 8 * g, _mm256_permutevar8x32_ps(acc, out_order));
  }
}

}  // namespace fleet::agent::bench
