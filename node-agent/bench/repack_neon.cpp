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

}  // namespace

void gemv_q4_0_4x4_neon(const std::uint8_t* w, const BlockQ8_0* x, std::size_t blocks, std::size_t groups, float* out) {
  const int8x16_t high = vdupq_n_s8(std::int8_t(0xf0));
  constexpr std::size_t group = 4 * sizeof(BlockQ4_0);
  for (std::size_t g = 0; g < groups; ++g) {
    const std::uint8_t* p = w + g * blocks * group;
    float32x4_t acc = vdupq_n_f32(0);
    for (std::size_t k = 0; k < blocks; ++k, p += group) {
      const std::int8_t* qs = reinterpret_cast<const std::int8_t*>(p + 8);
      const int8x16_t b0 = vld1q_s8(qs), b1 = vld1q_s8(qs + 16), b2 = vld1q_s8(qs + 32), b3 = vld1q_s8(qs + 48);
      const int8x16_t a0 = vld1q_s8(x[k].qs), a1 = vld1q_s8(x[k].qs + 16);
      int32x4_t s = vdupq_n_s32(0);
      s = vdotq_laneq_s32(s, vshlq_n_s8(b0, 4), a0, 0);
      s = vdotq_laneq_s32(s, vshlq_n_s8(b1, 4), a0, 1);
      s = vdotq_laneq_s32(s, vshlq_n_s8(b2, 4), a0, 2);
      s = vdotq_laneq_s32(s, vshlq_n_s8(b3, 4), a0, 3);
      s = vdotq_laneq_s32(s, vandq_s8(b0, high), a1, 0);
      s = vdotq_laneq_s32(s, vandq_s8(b1, high), a1, 1);
      s = vdotq_laneq_s32(s, vandq_s8(b2, high), a1, 2);
      s = vdotq_laneq_s32(s, vandq_s8(b3, high), a1, 3);
      // Every product carried a factor 16: a fixed-point conversion with 4 fraction bits.
      acc = vfmaq_f32(acc, vcvtq_n_f32_s32(s, 4), scales4(p, x[k].d));
    }
    vst1q_f32(out + 4 * g, acc);
  }
}

void gemv_q4_0_4x8_neon(const std::uint8_t* w, const BlockQ8_0* x, std::size_t blocks, std::size_t groups, float* out) {
  const int8x16_t high = vdupq_n_s8(std::int8_t(0xf0));
  constexpr std::size_t group = 4 * sizeof(BlockQ4_0);
  for (std::size_t g = 0; g < groups; ++g) {
    const std::uint8_t* p = w + g * blocks * group;
    float32x4_t acc = vdupq_n_f32(0);
    for (std::size_t k = 0; k < blocks; ++k, p += group) {
      const std::int8_t* qs = reinterpret_cast<const std::int8_t*>(p + 8);
      const int8x16_t b0 = vld1q_s8(qs), b1 = vld1q_s8(qs + 16), b2 = vld1q_s8(qs + 32), b3 = vld1q_s8(qs + 48);
      std::int64_t a[4];
      std::memcpy(a, x[k].qs, 32);
      const int8x16_t a0 = vreinterpretq_s8_s64(vdupq_n_s64(a[0])), a1 = vreinterpretq_s8_s64(vdupq_n_s64(a[1]));
      const int8x16_t a2 = vreinterpretq_s8_s64(vdupq_n_s64(a[2])), a3 = vreinterpretq_s8_s64(vdupq_n_s64(a[3]));
      int32x4_t s01 = vdupq_n_s32(0), s23 = vdupq_n_s32(0);
      s01 = vdotq_s32(s01, vshlq_n_s8(b0, 4), a0);
      s23 = vdotq_s32(s23, vshlq_n_s8(b1, 4), a0);
      s01 = vdotq_s32(s01, vshlq_n_s8(b2, 4), a1);
      s23 = vdotq_s32(s23, vshlq_n_s8(b3, 4), a1);
      s01 = vdotq_s32(s01, vandq_s8(b0, high), a2);
      s23 = vdotq_s32(s23, vandq_s8(b1, high), a2);
      s01 = vdotq_s32(s01, vandq_s8(b2, high), a3);
      s23 = vdotq_s32(s23, vandq_s8(b3, high), a3);
      acc = vfmaq_f32(acc, vcvtq_n_f32_s32(vpaddq_s32(s01, s23), 4), scales4(p, x[k].d));
    }
    vst1q_f32(out + 4 * g, acc);
  }
}

}  // namespace fleet::agent::bench
