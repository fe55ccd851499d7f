// F16 conversion and the F16 x F16 dot product with NEON, as ggml's ggml_vec_dot_f16 runs on
// aarch64 built without FP16 vector arithmetic (armv8.2-a+dotprod, the Pi 5 build of
// bench/llama_build.sh): 4 halves widened by fcvtl, four accumulators, 16 elements a round,
// the lanes summed in float, the tail in double. fcvtl and fcvtn are in every aarch64 CPU.
#include <arm_neon.h>

#include "node-agent/bench/f16.hpp"

namespace fleet::agent::bench {

void to_f16_neon(const float* x, F16* y, std::size_t n) {
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
  for (; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

// fcvtl's widening, 4 at a time, and fcvtn's narrowing without a scalar tail: the CPU's own
// conversions, which check fp32_to_fp16 and fp16_to_fp32 (f16_hardware).
void to_f32_neon(const F16* x, float* y, std::size_t n) {
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + i))));
  for (; i < n; ++i) {
    F16 in[4] = {x[i], 0, 0, 0};
    float out[4];
    vst1q_f32(out, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(in))));
    y[i] = out[0];
  }
}

void to_f16_neon_only(const float* x, F16* y, std::size_t n) {
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
  for (; i < n; ++i) {
    float in[4] = {x[i], 0, 0, 0};
    F16 out[4];
    vst1_u16(out, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(in))));
    y[i] = out[0];
  }
}

float dot_f16_neon(const F16* x, const F16* y, std::size_t n) {
  float32x4_t acc[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)};
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (std::size_t r = 0; r < 4; ++r) {
      const float32x4_t a = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + i + 4 * r)));
      const float32x4_t b = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(y + i + 4 * r)));
      acc[r] = vfmaq_f32(acc[r], a, b);
    }
  }
  double sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
  const float* t = fp16_lookup();
  for (; i < n; ++i) sum += double(t[x[i]] * t[y[i]]);
  return float(sum);
}

}  // namespace fleet::agent::bench
