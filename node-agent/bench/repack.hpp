#pragma once
// Q4_0 weights the way ggml-cpu holds them at load (ggml-cpu-aarch64.cpp in llama.cpp's tree,
// the "repack" buffer type): several rows interleaved into one block group, and a
// matrix-vector product that reads a group and computes its rows together (ggml's gemv).
// Written from that description, not copied; the arithmetic is the same, so the memory traffic
// and the work per byte are llama.cpp's.
//
// A group of N rows and one block column (32 weights of each row) is N fp16 scales, then the
// 16*N bytes of nibbles cut into chunks of B bytes: chunk i is bytes (i / N) * B .. + B of row
// i % N. Every byte is XORed with 0x88, which turns each unsigned nibble n (weight n - 8) into
// the signed 4-bit number n - 8: `byte << 4` is 16 * (low weight), `byte & 0xf0` is 16 * (high
// weight), both as int8, and the sum comes back with >> 4. The activations stay Q8_0.
//
// Which layout ggml picks for a Q4_0 matrix (ggml_aarch64_get_optimal_repack_type):
//   x86 with AVX2                      q4_0_8x8 (N 8, B 8) when rows % 8 == 0
//   Arm with NEON and i8mm             q4_0_4x8 (N 4, B 8) when rows % 4 == 0
//   Arm with NEON and the dot product  q4_0_4x4 (N 4, B 4) when rows % 4 == 0 (the Pi 5's A76)
//   otherwise, or rows not a multiple  the plain rows, one dot product per row
// AVX-512 CPUs run the same 8x8 code; with VNNI ggml's pair sum is vpdpbusd (our avx-vnni).
// A thread takes rows [t * rows / n, (t + 1) * rows / n), both ends rounded up to N.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

#include "node-agent/bench/quant.hpp"

namespace fleet::agent::bench {

enum class Layout { rows, q4_0_4x4, q4_0_4x8, q4_0_8x8 };
std::string_view layout_name(Layout l);
std::optional<Layout> parse_layout(std::string_view s);  // the names above

// Rows per group (N) and bytes per chunk (B); 1 and 16 for rows.
int layout_rows(Layout l);
int layout_chunk(Layout l);

// What ggml picks on this CPU for a matrix of many rows (AT_HWCAP/HWCAP2 on aarch64, cpuid on
// x86), and whether a matrix of `rows` x `cols` can take `l` (otherwise it stays rows).
Layout best_layout();
bool layout_fits(Layout l, std::size_t rows, std::size_t cols);

// Bytes a group of N rows and one block column takes: N * 18, as the plain blocks.
inline std::size_t group_bytes(Layout l) { return std::size_t(layout_rows(l)) * sizeof(BlockQ4_0); }

// Repack `rows` rows of `blocks` Q4_0 blocks each (row-major) into `l`. rows % N == 0.
// dst holds rows * blocks * 18 bytes.
void repack(Layout l, const BlockQ4_0* src, std::size_t rows, std::size_t blocks, std::uint8_t* dst);

// out[r] for the `groups` * N rows at w (repacked in l) times x (`blocks` Q8_0 blocks).
using GemvFn = void (*)(const std::uint8_t* w, const BlockQ8_0* x, std::size_t blocks, std::size_t groups, float* out);
// The kernel of layout l on path p; nullptr when this build or CPU has none (8x8 runs on
// avx2, avx-vnni and portable; 4x4 and 4x8 on neon-dotprod and portable; rows has none here:
// the plain rows use dot_fn).
GemvFn gemv_fn(Layout l, DotPath p);

// ggml's generic code for layout l, the reference the kernels are tested against.
void gemv_reference(Layout l, const std::uint8_t* w, const BlockQ8_0* x, std::size_t blocks, std::size_t groups,
                    float* out);

// Thread t of n: its rows of a matrix of `rows`, as ggml splits them (ends rounded up to N).
std::pair<std::size_t, std::size_t> layout_slice(Layout l, std::size_t rows, int t, int n);

}  // namespace fleet::agent::bench
