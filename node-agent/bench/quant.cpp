#include "node-agent/bench/quant.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif
#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace fleet::agent::bench {

// Implemented in dot_avx2.cpp / dot_neon.cpp, compiled with their own target flags.
#if defined(__x86_64__)
float dot_q4_0_q8_0_avx2(const BlockQ4_0* x, const BlockQ8_0* y, std::size_t blocks);
float dot_q4_0_q8_0_avxvnni(const BlockQ4_0* x, const BlockQ8_0* y, std::size_t blocks);
#endif
#if defined(__x86_64__)
namespace {
// AVX-VNNI is CPUID leaf 7, subleaf 1, EAX bit 4 (Intel SDM vol. 2A, CPUID). Asked directly:
// clang before 17 does not know "avxvnni" in __builtin_cpu_supports (the fuzz tree's clang 16).
bool cpu_has_avx_vnni() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) != 0 && (eax & (1u << 4)) != 0;
}
}  // namespace
// F16C: CPUID leaf 1, ECX bit 29.
bool cpu_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & (1u << 29)) != 0;
}
#endif
#if defined(__aarch64__)
float dot_q4_0_q8_0_neon_dotprod(const BlockQ4_0* x, const BlockQ8_0* y, std::size_t blocks);
#endif

float fp16_to_fp32(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000) << 16;
  std::uint32_t exp = (h >> 10) & 0x1f;
  std::uint32_t mant = h & 0x3ff;
  std::uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400) == 0);
      bits = sign | std::uint32_t(127 - 15 - e) << 23 | (mant & 0x3ff) << 13;
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  return std::bit_cast<float>(bits);
}

std::uint16_t fp32_to_fp16(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const std::uint16_t sign = std::uint16_t((x >> 16) & 0x8000);
  const std::uint32_t abs = x & 0x7fffffff;
  if (abs >= 0x7f800000) return sign | 0x7c00 | (abs > 0x7f800000 ? 0x200 : 0);  // inf, nan
  if (abs >= 0x477ff000) return sign | 0x7c00;                                   // overflow
  if (abs < 0x38800000) {                                                        // subnormal or 0
    const float a = std::bit_cast<float>(abs);
    return sign | std::uint16_t(std::lrint(a * 16777216.0f));  // a / 2^-24, nearest even
  }
  std::uint32_t mant = abs & 0x7fffff;
  std::uint32_t exp = (abs >> 23) - 127 + 15;
  std::uint32_t h = exp << 10 | mant >> 13;
  const std::uint32_t rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) ++h;  // carries into the exponent correctly
  return sign | std::uint16_t(h);
}

void quantize_q4_0(std::span<const float> x, std::span<BlockQ4_0> out) {
  for (std::size_t b = 0; b < out.size(); ++b) {
    const float* v = x.data() + b * k_block;
    float amax = 0, max = 0;
    for (std::size_t j = 0; j < k_block; ++j) {
      if (std::fabs(v[j]) > amax) {
        amax = std::fabs(v[j]);
        max = v[j];
      }
    }
    const float d = max / -8;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    out[b].d = fp32_to_fp16(d);
    for (std::size_t j = 0; j < k_block / 2; ++j) {
      const auto q0 = std::min<std::uint8_t>(15, std::uint8_t(std::int8_t(v[j] * id + 8.5f)));
      const auto q1 = std::min<std::uint8_t>(15, std::uint8_t(std::int8_t(v[j + 16] * id + 8.5f)));
      out[b].qs[j] = std::uint8_t(q0 | q1 << 4);
    }
  }
}

void quantize_q8_0(std::span<const float> x, std::span<BlockQ8_0> out) {
  for (std::size_t b = 0; b < out.size(); ++b) {
    const float* v = x.data() + b * k_block;
    float amax = 0;
    for (std::size_t j = 0; j < k_block; ++j) amax = std::max(amax, std::fabs(v[j]));
    const float d = amax / 127;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    out[b].d = fp32_to_fp16(d);
    for (std::size_t j = 0; j < k_block; ++j) out[b].qs[j] = std::int8_t(std::lrint(v[j] * id));
  }
}

float dot_q4_0_q8_0_reference(const BlockQ4_0* x, const BlockQ8_0* y, std::size_t blocks) {
  float sum = 0;
  for (std::size_t i = 0; i < blocks; ++i) {
    int sumi = 0;
    for (std::size_t j = 0; j < k_block / 2; ++j) {
      const int v0 = (x[i].qs[j] & 0x0f) - 8;
      const int v1 = (x[i].qs[j] >> 4) - 8;
      sumi += v0 * y[i].qs[j] + v1 * y[i].qs[j + 16];
    }
    sum += float(sumi) * fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d);
  }
  return sum;
}

namespace {

// Scales through a table: one lookup per block instead of the bit twiddling (ggml does the same).
struct Fp16Table {
  float v[65536];
  Fp16Table() {
    for (std::uint32_t i = 0; i < 65536; ++i) v[i] = fp16_to_fp32(std::uint16_t(i));
  }
};
const Fp16Table& fp16_table() {
  static const Fp16Table t;
  return t;
}

// The portable path: the reference's arithmetic, written so a compiler can vectorise the
// inner loop (two independent int sums, byte loads).
float dot_portable(const BlockQ4_0* x, const BlockQ8_0* y, std::size_t blocks) {
  const float* t = fp16_table().v;
  float sum = 0;
  for (std::size_t i = 0; i < blocks; ++i) {
    int lo = 0, hi = 0;
    const std::uint8_t* q4 = x[i].qs;
    const std::int8_t* q8 = y[i].qs;
    for (std::size_t j = 0; j < k_block / 2; ++j) {
      lo += (int(q4[j] & 0x0f) - 8) * q8[j];
      hi += (int(q4[j] >> 4) - 8) * q8[j + 16];
    }
    sum += float(lo + hi) * t[x[i].d] * t[y[i].d];
  }
  return sum;
}

}  // namespace

std::string_view dot_path_name(DotPath p) {
  switch (p) {
    case DotPath::portable: return "portable";
    case DotPath::avx2: return "avx2";
    case DotPath::avx_vnni: return "avx-vnni";
    case DotPath::neon_dotprod: return "neon-dotprod";
  }
  return "?";
}

bool dot_path_available(DotPath p) {
  switch (p) {
    case DotPath::portable: return true;
    case DotPath::avx2:
#if defined(__x86_64__)
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
      return false;
#endif
    case DotPath::avx_vnni:
#if defined(__x86_64__)
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_avx_vnni();
#else
      return false;
#endif
    case DotPath::neon_dotprod:
#if defined(__aarch64__)
      return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#else
      return false;
#endif
  }
  return false;
}

DotPath best_dot_path() {
  for (auto p : {DotPath::neon_dotprod, DotPath::avx_vnni, DotPath::avx2}) {
    if (dot_path_available(p)) return p;
  }
  return DotPath::portable;
}

DotFn dot_fn(DotPath p) {
  if (!dot_path_available(p)) return nullptr;
  (void)fp16_table();  // built before any thread times anything
  switch (p) {
    case DotPath::portable: return dot_portable;
#if defined(__x86_64__)
    case DotPath::avx2: return dot_q4_0_q8_0_avx2;
    case DotPath::avx_vnni: return dot_q4_0_q8_0_avxvnni;
#endif
#if defined(__aarch64__)
    case DotPath::neon_dotprod: return dot_q4_0_q8_0_neon_dotprod;
#endif
    default: return nullptr;
  }
}

// The fast paths read scales through this table too.
const float* fp16_lookup() { return fp16_table().v; }

}  // namespace fleet::agent::bench
