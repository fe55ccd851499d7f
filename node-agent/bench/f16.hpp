#pragma once
// The F16 arithmetic of llama.cpp's attention. llama-bench's KV cache is F16 (its default
// type_k and type_v), and without flash attention its two attention products, K.q and
// V.softmax, are F16 x F16 dot products: q and the softmax weights are converted to F16
// first (ggml_fp32_to_fp16_row), then each pair of halves is widened to float and
// multiplied-added in float lanes, the lanes summed in float and the elements left over
// added in double (ggml_vec_dot_f16). The probe's attention runs these.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "node-agent/bench/quant.hpp"

namespace fleet::agent::bench {

using F16 = std::uint16_t;  // IEEE binary16 bits

// y[i] = x[i] rounded to the nearest F16, ties to even: fp32_to_fp16's result, bit for bit,
// for every input but NaN (whose payload a vector conversion may keep).
using ToF16Fn = void (*)(const float* x, F16* y, std::size_t n);
// The sum of x[i] * y[i].
using DotF16Fn = float (*)(const F16* x, const F16* y, std::size_t n);

struct F16Kernels {
  ToF16Fn to_f16 = nullptr;
  DotF16Fn dot = nullptr;
  std::string_view name;  // "f16c", "neon" or "portable"
};

// The kernels ggml runs on this CPU, whatever the Q4_0 dot path:
//  - x86 with AVX2, FMA and F16C: the dot product with F16C's widening (GGML_F16_VEC, 32
//    elements a round); the conversion one element at a time, as llama.cpp c392e50 (the
//    tree bench/ measured against) converts: its ggml_fp32_to_fp16_row is in ggml-base,
//    which gets no -mf16c (the ISA flags go to ggml-cpu only). Newer trees convert in
//    ggml-cpu, with F16C;
//  - aarch64: NEON's fcvtl for the dot product (16 elements a round, as ggml built without
//    FP16 vector arithmetic, armv8.2-a+dotprod) and fcvtn for the conversion (every aarch64
//    CPU has both, the Pi 4's and the A53 too);
//  - else portable C++.
F16Kernels f16_kernels();
// Plain C++, any CPU: the conversion element by element, the dot product summed in double
// as ggml's scalar build sums it.
F16Kernels f16_portable_kernels();

// The CPU's own conversion instructions, where it has them (x86: F16C's vcvtps2ph and
// vcvtph2ps; aarch64: NEON's fcvtn and fcvtl, every element through them, no scalar tail):
// an implementation of IEEE binary16 that is not ours, against which fp32_to_fp16 and
// fp16_to_fp32 (the portable kernels, the x86 conversion, the lookup table, the reference)
// are checked. Null members where the CPU has none.
using ToF32Fn = void (*)(const F16* x, float* y, std::size_t n);
struct F16Hardware {
  ToF16Fn to_f16 = nullptr;
  ToF32Fn to_f32 = nullptr;
  std::string_view name;  // "f16c", "neon" or "" (none)
};
F16Hardware f16_hardware();

// In double, element by element: what the kernels are tested against.
double dot_f16_reference(const F16* x, const F16* y, std::size_t n);

}  // namespace fleet::agent::bench
