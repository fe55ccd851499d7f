#pragma once
// The ggml block formats a llama.cpp model is decoded with on a CPU, and the dot product
// token generation spends its time in (ggml-common.h, ggml-cpu quants.c; reference in
// ../shared/reference/pi5.md):
//   Q4_0: fp16 scale d + 16 bytes of nibbles = 32 weights in 18 bytes; w = (nibble - 8) * d.
//         Byte j holds weight j in its low nibble and weight j + 16 in its high nibble.
//   Q8_0: fp16 scale d + 32 int8 = 34 bytes; activations are quantized to it before a
//         matrix-vector product.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace fleet::agent::bench {

inline constexpr std::size_t k_block = 32;  // weights per block (QK4_0 == QK8_0)

struct BlockQ4_0 {
  std::uint16_t d;  // IEEE fp16 bits
  std::uint8_t qs[k_block / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

struct BlockQ8_0 {
  std::uint16_t d;
  std::int8_t qs[k_block];
};
static_assert(sizeof(BlockQ8_0) == 34);

float fp16_to_fp32(std::uint16_t h);
// The same through a table of all 65536 halves (what the kernels use: one load per scale).
const float* fp16_lookup();
std::uint16_t fp32_to_fp16(float f);  // round to nearest even

// x.size() must be a multiple of k_block; out has x.size() / k_block blocks.
void quantize_q4_0(std::span<const float> x, std::span<BlockQ4_0> out);
void quantize_q8_0(std::span<const float> x, std::span<BlockQ8_0> out);

// Which implementation of the dot product runs.
enum class DotPath {
  portable,     // plain C++, any CPU
  avx2,         // x86-64 with AVX2 + FMA (ggml's mul_sum_i8_pairs)
  avx_vnni,     // x86-64 with AVX-VNNI: vpdpbusd
  neon_dotprod  // aarch64 with the dot-product extension: vdotq_s32 (Cortex-A76 has it)
};
std::string_view dot_path_name(DotPath p);

// The fastest path this CPU runs (cpuid on x86, AT_HWCAP on aarch64).
DotPath best_dot_path();
// Whether this build and CPU can run `p`.
bool dot_path_available(DotPath p);
#if defined(__x86_64__)
// Whether the CPU converts fp16 with F16C (the x86 q4_0_8x8 gemv needs it; the dot products do not).
bool cpu_has_f16c();
#endif

// sum over blocks of d_x * d_y * sum_j (q4_j - 8) * q8_j. Same block count in x and y.
using DotFn = float (*)(const BlockQ4_0* x, const BlockQ8_0* y, std::size_t blocks);
DotFn dot_fn(DotPath p);  // nullptr when !dot_path_available(p)

// The scalar reference the fast paths are tested against (ggml's generic code).
float dot_q4_0_q8_0_reference(const BlockQ4_0* x, const BlockQ8_0* y, std::size_t blocks);

}  // namespace fleet::agent::bench
