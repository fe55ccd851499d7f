#pragma once
// The loop the x86 dot products share: two FMA accumulators (one chain would wait out its
// latency on every block), software prefetch, the odd block, the horizontal sum. Each
// path's file includes this and passes its per-block kernel; each compiles it with its own
// target flags, so this header is only for files built with -mavx2 -mfma at least.
#include <immintrin.h>

#include "node-agent/bench/quant.hpp"

namespace fleet::agent::bench {

const float* fp16_lookup();

// Measured on a 2-vCPU Xeon: the hardware prefetcher alone fed the AVX2 loop at 4.3 GB/s
// from DRAM against 17.7 GB/s for a plain read; 4 KiB ahead gave 13.7 GB/s (256 B: 4.9,
// 1 KiB: 9.5, 8 KiB: 13.8), near the 15.7 GB/s the loop reaches from cache.
inline constexpr int k_prefetch_bytes = 4096;

// block_dot(x, y) -> 8 float lanes whose sum is the block's integer dot product.
template <class BlockDot>
inline float dot_loop(const BlockQ4_0* x, const BlockQ8_0* y, std::size_t blocks, BlockDot block_dot) {
  const float* t = fp16_lookup();
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 1 < blocks; i += 2) {
    // Weights stream from memory once per token: ask for them well ahead.
    __builtin_prefetch(reinterpret_cast<const char*>(x + i) + k_prefetch_bytes);
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(t[x[i].d] * t[y[i].d]), block_dot(x[i], y[i]), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(t[x[i + 1].d] * t[y[i + 1].d]), block_dot(x[i + 1], y[i + 1]), acc1);
  }
  if (i < blocks) acc0 = _mm256_fmadd_ps(_mm256_set1_ps(t[x[i].d] * t[y[i].d]), block_dot(x[i], y[i]), acc0);
  const __m256 acc = _mm256_add_ps(acc0, acc1);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 16 bytes of nibbles -> 32 bytes: weights 0..15 (low nibbles), then 16..31 (high), 0..15.
inline __m256i unpack_nibbles(const BlockQ4_0& x) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x.qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0f));
}

}  // namespace fleet::agent::bench
