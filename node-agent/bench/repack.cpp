#include "node-agent/bench/repack.hpp"

#include <algorithm>
#include <cstring>

#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace fleet::agent::bench {

// Implemented in repack_avx2.cpp, repack_avxvnni.cpp and repack_neon.cpp, each compiled with
// its own target flags and called only when the CPU reports the instructions.
#if defined(__x86_64__)
void gemv_q4_0_8x8_avx2(const std::uint8_t* w, const BlockQ8_0* x, std::size_t blocks, std::size_t groups, float* out);
void gemv_q4_0_8x8_avxvnni(const std::uint8_t* w, const BlockQ8_0* x, std::size_t blocks, std::size_t groups,
                           float* out);
#endif
#if defined(__aarch64__)
void gemv_q4_0_4x4_neon(const std::uint8_t* w, const BlockQ8_0* x, std::size_t blocks, std::size_t groups, float* out);
void gemv_q4_0_4x8_neon(const std::uint8_t* w, const BlockQ8_0* x, std::size_t blocks, std::size_t groups, float* out);
#endif

std::string_view layout_name(Layout l) {
  switch (l) {
    case Layout::rows: return "rows";
    case Layout::q4_0_4x4: return "q4_0_4x4";
    case Layout::q4_0_4x8: return "q4_0_4x8";
    case Layout::q4_0_8x8: return "q4_0_8x8";
  }
  return "?";
}

std::optional<Layout> parse_layout(std::string_view s) {
  for (Layout l : {Layout::rows, Layout::q4_0_4x4, Layout::q4_0_4x8, Layout::q4_0_8x8}) {
    if (s == layout_name(l)) return l;
  }
  return std::nullopt;
}

int layout_rows(Layout l) {
  switch (l) {
    case Layout::rows: return 1;
    case Layout::q4_0_4x4:
    case Layout::q4_0_4x8: return 4;
    case Layout::q4_0_8x8: return 8;
  }
  return 1;
}

int layout_chunk(Layout l) {
  switch (l) {
    case Layout::rows: return 16;
    case Layout::q4_0_4x4: return 4;
    case Layout::q4_0_4x8:
    case Layout::q4_0_8x8: return 8;
  }
  return 16;
}

Layout best_layout() {
#if defined(__x86_64__)
  // Our 8x8 kernel converts its scales with F16C, as ggml's does where the CPU has it. An
  // AVX2 CPU without it (a VM that hides it) keeps plain rows here, where ggml would run 8x8
  // with a scalar conversion: the probe says which layout it used.
  if (dot_path_available(DotPath::avx2) && cpu_has_f16c()) return Layout::q4_0_8x8;
#elif defined(__aarch64__)
  const unsigned long hw = getauxval(AT_HWCAP);
#if defined(HWCAP2_I8MM)
  if ((hw & HWCAP_ASIMD) && (getauxval(AT_HWCAP2) & HWCAP2_I8MM)) return Layout::q4_0_4x8;
#endif
  if ((hw & HWCAP_ASIMD) && (hw & HWCAP_ASIMDDP)) return Layout::q4_0_4x4;
#endif
  return Layout::rows;
}

bool layout_fits(Layout l, std::size_t rows, std::size_t cols) {
  // ggml: ne[1] % N == 0 and ne[0] % 8 == 0 (ne[0] is a multiple of 32 for Q4_0 anyway).
  return rows % std::size_t(layout_rows(l)) == 0 && cols % 8 == 0 && cols % k_block == 0;
}

void repack(Layout l, const BlockQ4_0* src, std::size_t rows, std::size_t blocks, std::uint8_t* dst) {
  const std::size_t n = std::size_t(layout_rows(l)), b = std::size_t(layout_chunk(l));
  if (l == Layout::rows) {
    std::memcpy(dst, src, rows * blocks * sizeof(BlockQ4_0));
    return;
  }
  const std::size_t chunks = n * (k_block / 2) / b;
  for (std::size_t g = 0; g < rows / n; ++g) {
    const BlockQ4_0* group = src + g * n * blocks;
    for (std::size_t k = 0; k < blocks; ++k) {
      std::uint8_t* out = dst + (g * blocks + k) * group_bytes(l);
      for (std::size_t r = 0; r < n; ++r) std::memcpy(out + 2 * r, &group[r * blocks + k].d, 2);
      std::uint8_t* qs = out + 2 * n;
      for (std::size_t i = 0; i < chunks; ++i) {
        const BlockQ4_0& from = group[(i % n) * blocks + k];
        for (std::size_t j = 0; j < b; ++j) qs[i * b + j] = from.qs[(i / n) * b + j] ^ 0x88;
      }
    }
  }
}

void gemv_reference(Layout l, const std::uint8_t* w, const BlockQ8_0* x, std::size_t blocks, std::size_t groups,
                    float* out) {
  const std::size_t n = std::size_t(layout_rows(l)), b = std::size_t(layout_chunk(l));
  for (std::size_t g = 0; g < groups; ++g) {
    for (std::size_t r = 0; r < n; ++r) out[g * n + r] = 0;
    for (std::size_t k = 0; k < blocks; ++k) {
      const std::uint8_t* grp = w + (g * blocks + k) * group_bytes(l);
      const std::uint8_t* qs = grp + 2 * n;
      for (std::size_t r = 0; r < n; ++r) {
        std::uint16_t d;
        std::memcpy(&d, grp + 2 * r, 2);
        int sum = 0;
        for (std::size_t c = 0; c < k_block / 2 / b; ++c) {
          for (std::size_t i = 0; i < b; ++i) {
            const std::uint8_t q = qs[c * n * b + r * b + i];
            const int lo = std::int8_t(std::uint8_t(q << 4)), hi = std::int8_t(q & 0xf0);
            sum += (lo * x[k].qs[c * b + i] + hi * x[k].qs[c * b + i + k_block / 2]) >> 4;
          }
        }
        out[g * n + r] += float(sum) * fp16_to_fp32(d) * fp16_to_fp32(x[k].d);
      }
    }
  }
}

namespace {

// The portable kernels: the reference's arithmetic with the layout fixed at compile time, so
// the compiler can unroll and vectorise it.
template <int N, int B>
void gemv_portable(const std::uint8_t* w, const BlockQ8_0* x, std::size_t blocks, std::size_t groups, float* out) {
  const float* t = fp16_lookup();
  constexpr std::size_t group = std::size_t(N) * sizeof(BlockQ4_0);
  for (std::size_t g = 0; g < groups; ++g) {
    float acc[N] = {};
    for (std::size_t k = 0; k < blocks; ++k) {
      const std::uint8_t* grp = w + (g * blocks + k) * group;
      const std::uint8_t* qs = grp + 2 * N;
      int sum[N] = {};
      for (int c = 0; c < 16 / B; ++c) {
        for (int r = 0; r < N; ++r) {
          for (int i = 0; i < B; ++i) {
            const std::uint8_t q = qs[c * N * B + r * B + i];
            sum[r] += (std::int8_t(std::uint8_t(q << 4)) * x[k].qs[c * B + i] +
                       std::int8_t(q & 0xf0) * x[k].qs[c * B + i + 16]) >> 4;
          }
        }
      }
      const float dx = t[x[k].d];
      for (int r = 0; r < N; ++r) {
        std::uint16_t d;
        std::memcpy(&d, grp + 2 * r, 2);
        acc[r] += float(sum[r]) * t[d] * dx;
      }
    }
    for (int r = 0; r < N; ++r) out[g * N + std::size_t(r)] = acc[r];
  }
}

}  // namespace

GemvFn gemv_fn(Layout l, DotPath p) {
  if (l == Layout::rows || !dot_path_available(p)) return nullptr;
  (void)fp16_lookup();  // builds the fp16 table (the x86 and portable kernels) before any thread times anything
  if (p == DotPath::portable) {
    switch (l) {
      case Layout::q4_0_4x4: return gemv_portable<4, 4>;
      case Layout::q4_0_4x8: return gemv_portable<4, 8>;
      case Layout::q4_0_8x8: return gemv_portable<8, 8>;
      default: return nullptr;
    }
  }
#if defined(__x86_64__)
  if (l == Layout::q4_0_8x8 && p == DotPath::avx2 && cpu_has_f16c()) return gemv_q4_0_8x8_avx2;
  if (l == Layout::q4_0_8x8 && p == DotPath::avx_vnni && cpu_has_f16c()) return gemv_q4_0_8x8_avxvnni;
#endif
#if defined(__aarch64__)
  if (l == Layout::q4_0_4x4 && p == DotPath::neon_dotprod) return gemv_q4_0_4x4_neon;
  if (l == Layout::q4_0_4x8 && p == DotPath::neon_dotprod) return gemv_q4_0_4x8_neon;
#endif
  return nullptr;
}

std::pair<std::size_t, std::size_t> layout_slice(Layout l, std::size_t rows, int t, int n) {
  const std::size_t g = std::size_t(layout_rows(l));
  auto up = [&](std::size_t v) { return (v + g - 1) / g * g; };
  std::size_t lo = up(rows * std::size_t(t) / std::size_t(n)), hi = up(rows * std::size_t(t + 1) / std::size_t(n));
  hi = std::min(hi, rows);
  return {std::min(lo, hi), hi};
}

}  // namespace fleet::agent::bench
