#pragma once
// The F16 arithmetic of llama.cpp's attention. llama-bench's KV cache is F16 (its default
// type_k and type_v), and without flash attention its two attention products, K.q and
// V.softmax, are F16 x F16 dot products: q and the softmax weights are converted to F16
// first, each element widened back to float and multiplied-added in float lanes, the lanes
// summed in double (ggml-cpu: ggml_fp32_to_fp16_row, ggml_vec_dot_f16). The probe's
// attention runs these.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "node-agent/bench/quant.hpp"

namespace fleet::agent::bench {

using F16 = std::uint16_t;  // IEEE binary16 bits

// y[i] = x[i] rounded to the nearest F16, ties to even (fp32_to_fp16's result, bit for bit).
using ToF16Fn = void (*)(const float* x, F16* y, std::size_t n);
// The sum of x[i] * y[i].
using DotF16Fn = float (*)(const F16* x, const F16* y, std::size_t n);

struct F16Kernels {
  ToF16Fn to_f16 = nullptr;
  DotF16Fn dot = nullptr;
  std::string_view name;  // "f16c", "neon" or "portable"
};

// The kernels that go with a dot path on this CPU: F16C's conversions with AVX2 (ggml's
// GGML_F16_VEC on x86; an AVX2 CPU without F16C gets the portable ones, as ggml built
// without F16C converts through a table), NEON's on aarch64, else portable C++.
F16Kernels f16_kernels(DotPath p);

// In double, element by element: what the kernels are tested against.
double dot_f16_reference(const F16* x, const F16* y, std::size_t n);

}  // namespace fleet::agent::bench
