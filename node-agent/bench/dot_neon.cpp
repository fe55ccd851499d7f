// The Q4_0 x Q8_0 dot product with the Armv8.2 dot-product instructions (vdotq_s32), as
// ggml does it on aarch64 (ggml-cpu/arch/arm/quants.c). The Pi 5's Cortex-A76 has them
// (HWCAP_ASIMDDP). Compiled with -march=armv8.2-a+dotprod; called only when AT_HWCAP says so.
#include <arm_neon.h>

#include "node-agent/bench/quant.hpp"

namespace fleet::agent::bench {

const float* fp16_lookup();

float dot_q4_0_q8_0_neon_dotprod(const BlockQ4_0* x, const BlockQ8_0* y, std::size_t blocks) {
  const float* t = fp16_lookup();
  const uint8x16_t low4 = vdupq_n_u8(0x0f);
  const int8x16_t eight = vdupq_n_s8(8);
  float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
  std::size_t i = 0;
  // Two blocks per round: two independent accumulators keep both pipes busy.
  for (; i + 1 < blocks; i += 2) {
    const uint8x16_t p0 = vld1q_u8(x[i].qs), p1 = vld1q_u8(x[i + 1].qs);
    const int8x16_t l0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(p0, low4)), eight);
    const int8x16_t h0 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(p0, 4)), eight);
    const int8x16_t l1 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(p1, low4)), eight);
    const int8x16_t h1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(p1, 4)), eight);
    const int32x4_t s0 = vdotq_s32(vdotq_s32(vdupq_n_s32(0), l0, vld1q_s8(y[i].qs)), h0, vld1q_s8(y[i].qs + 16));
    const int32x4_t s1 =
        vdotq_s32(vdotq_s32(vdupq_n_s32(0), l1, vld1q_s8(y[i + 1].qs)), h1, vld1q_s8(y[i + 1].qs + 16));
    acc0 = vmlaq_n_f32(acc0, vcvtq_f32_s32(s0), t[x[i].d] * t[y[i].d]);
    acc1 = vmlaq_n_f32(acc1, vcvtq_f32_s32(s1), t[x[i + 1].d] * t[y[i + 1].d]);
  }
  for (; i < blocks; ++i) {
    const uint8x16_t p0 = vld1q_u8(x[i].qs);
    const int8x16_t l0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(p0, low4)), eight);
    const int8x16_t h0 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(p0, 4)), eight);
    const int32x4_t s0 = vdotq_s32(vdotq_s32(vdupq_n_s32(0), l0, vld1q_s8(y[i].qs)), h0, vld1q_s8(y[i].qs + 16));
    acc0 = vmlaq_n_f32(acc0, vcvtq_f32_s32(s0), t[x[i].d] * t[y[i].d]);
  }
  return vaddvq_f32(vaddq_f32(acc0, acc1));
}

}  // namespace fleet::agent::bench
