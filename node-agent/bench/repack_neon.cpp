// q4_0_4x4 and q4_0_4x8 with the Armv8.2 dot product (ggml's NEON gemv for both: i8mm only
// changes the layout ggml picks, the vector product uses sdot). Compiled with
// -march=armv8.2-a+dotprod; called only when AT_HWCAP says so.
//
// 4x4: the 64 bytes of a block column are 4 loads of 16: bytes 4c..4c+3 of rows 0-3. Lane r
// of an sdot with lane c of the activations adds row r's 4 products.
// 4x8: 4 loads of 16: bytes 0-7 of rows 0,1 / rows 2,3, then bytes 8-15; the activations'
// 8 bytes are repeated in both halves, and a pairwise add folds each row's two lanes.
#include <arm_neon.h>

#include <cstring>

#include "node-agent/bench/quant.hpp"

namespace fleet::agent::bench {

namespace {

// The group's 4 fp16 scales times the activations' scale, converted with FCVTL as ggml does
// (a 256 KiB lookup table would compete with the weights for the A76's 512 KiB L2).
inline float32x4_t scales4(const std::uint8_t* p, std::uint16_t dx) {
  std::uint16_t h[4];
  std::memcpy(h, p, 8);
  const float32x4_t d = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h)));
  return vmulq_f32(d, vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(dx))));
}

// The loop both layouts share: a group of 4 rows at a time, its block columns in turn.
// block_sums(b, x) -> the 4 rows' integer sums, each times 16, of the group's 64 bytes of
// nibbles b[0..3] (16 each, XORed) with one Q8_0 block.
template <class BlockSums>
inline void gemv_4_rows(const std::uint8_t* w, const BlockQ8_0* x, std::size_t blocks, std::size_t groups, float* out,
                        BlockSums block_sums) {
  constexpr std::size_t group = 4 * sizeof(BlockQ4_0);
  for (std::size_t g = 0; g < groups; ++g) {
    const std::uint8_t* p = w + g * blocks * group;
    float32x4_t acc = vdupq_n_f32(0);
    for (std::size_t k = 0; k < blocks; ++k, p += group) {
      const std::int8_t* qs = reinterpret_cast<const std::int8_t*>(p + 8);
      const int8x16_t b[4] = {vld1q_s8(qs), vld1q_s8(qs + 16), vld1q_s8(qs + 32), vld1q_s8(qs + 48)};
      // Every product carried a factor 16: a fixed-point conversion with 4 fraction bits.
      acc = vfmaq_f32(acc, vcvtq_n_f32_s32(block_sums(b, x[k]), 4), scales4(p, x[k].d));
    }
    vst1q_f32(out + 4 * g, acc);
  }
}

}  // namespace

void gemv_q4_0_4x4_neon(const std::uint8_t* w, const BlockQ8_0* x, std::size_t blocks, std::size_t groups, float* out) {
  const int8x16_t high = vdupq_n_s8(std::int8_t(0xf0));
  gemv_4_rows(w, x, blocks, groups, out, [&](const int8x16_t* b, const BlockQ8_0& xk) {
    const int8x16_t a0 = vld1q_s8(xk.qs), a1 = vld1q_s8(xk.qs + 16);
    int32x4_t s = vdupq_n_s32(0);
    s = vdotq_laneq_s32(s, vshlq_n_s8(b[0], 4), a0, 0);
    s = vdotq_laneq_s32(s, vshlq_n_s8(b[1], 4), a0, 1);
    s = vdotq_laneq_s32(s, vshlq_n_s8(b[2], 4), a0, 2);
    s = vdotq_laneq_s32(s, vshlq_n_s8(b[3], 4), a0, 3);
    s = vdotq_laneq_s32(s, vandq_s8(b[0], high), a1, 0);
    s = vdotq_laneq_s32(s, vandq_s8(b[1], high), a1, 1);
    s = vdotq_laneq_s32(s, vandq_s8(b[2], high), a1, 2);
    s = vdotq_laneq_s32(s, vandq_s8(b[3], high), a1, 3);
    return s;
  });
}

void gemv_q4_0_4x8_neon(const std::uint8_t* w, const BlockQ8_0* x, std::size_t blocks, std::size_t groups, float* out) {
  const int8x16_t high = vdupq_n_s8(std::int8_t(0xf0));
  gemv_4_rows(w, x, blocks, groups, out, [&](const int8x16_t* b, const BlockQ8_0& xk) {
    std::int64_t a[4];
    std::memcpy(a, xk.qs, 32);
    const int8x16_t a0 = vreinterpretq_s8_s64(vdupq_n_s64(a[0])), a1 = vreinterpretq_s8_s64(vdupq_n_s64(a[1]));
    const int8x16_t a2 = vreinterpretq_s8_s64(vdupq_n_s64(a[2])), a3 = vreinterpretq_s8_s64(vdupq_n_s64(a[3]));
    int32x4_t s01 = vdupq_n_s32(0), s23 = vdupq_n_s32(0);
    s01 = vdotq_s32(s01, vshlq_n_s8(b[0], 4), a0);
    s23 = vdotq_s32(s23, vshlq_n_s8(b[1], 4), a0);
    s01 = vdotq_s32(s01, vshlq_n_s8(b[2], 4), a1);
    s23 = vdotq_s32(s23, vshlq_n_s8(b[3], 4), a1);
    s01 = vdotq_s32(s01, vandq_s8(b[0], high), a2);
    s23 = vdotq_s32(s23, vandq_s8(b[1], high), a2);
    s01 = vdotq_s32(s01, vandq_s8(b[2], high), a3);
    s23 = vdotq_s32(s23, vandq_s8(b[3], high), a3);
    return vpaddq_s32(s01, s23);
  });
}

}  // namespace fleet::agent::bench
