#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "node-agent/bench/f16.hpp"

using namespace fleet::agent::bench;

TEST_CASE("the F16 kernels convert as fp32_to_fp16 does and their dot product matches the reference") {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0, 1);
  for (const F16Kernels& kernels : {f16_kernels(), f16_portable_kernels()}) {
    INFO("kernels " << kernels.name);
    // Lengths around every kernel's round (4, 8, 16, 32 elements) so each tail runs.
    for (std::size_t n : {0, 1, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 64, 100, 128}) {
      std::vector<float> fx(n), fy(n);
      for (std::size_t i = 0; i < n; ++i) {
        fx[i] = normal(rng) * (i % 3 == 0 ? 1e-6f : 1.0f);  // F16 subnormals every third
        fy[i] = i % 5 == 0 ? 1.0f + float(2 * i + 1) * 0x1p-11f : normal(rng);  // halfway cases
      }
      std::vector<F16> hx(n), hy(n);
      kernels.to_f16(fx.data(), hx.data(), n);
      kernels.to_f16(fy.data(), hy.data(), n);
      for (std::size_t i = 0; i < n; ++i) {
        INFO("element " << i << " of " << n);
        CHECK(hx[i] == fp32_to_fp16(fx[i]));
        CHECK(hy[i] == fp32_to_fp16(fy[i]));
      }
      const double ref = dot_f16_reference(hx.data(), hy.data(), n);
      double scale = 1e-30;
      for (std::size_t i = 0; i < n; ++i) scale += std::fabs(double(fp16_to_fp32(hx[i])) * fp16_to_fp32(hy[i]));
      CHECK(std::fabs(kernels.dot(hx.data(), hy.data(), n) - ref) / scale < 1e-6);
    }
  }
  CHECK(fp32_to_fp16(1.0f + 0x1p-11f) == 0x3c00);               // a tie goes to the even half
  CHECK(fp32_to_fp16(1.0f + 3 * 0x1p-11f) == 0x3c02);
  // The edges of the range and of rounding, where a vector conversion could differ.
  for (const F16Kernels& kernels : {f16_kernels(), f16_portable_kernels()}) {
    const std::vector<std::pair<float, F16>> edges = {
        {65504.0f, 0x7bff},  {65519.99f, 0x7bff}, {65520.0f, 0x7c00},  // the largest half; a tie past it is inf
        {-65520.0f, 0xfc00}, {1e30f, 0x7c00},     {INFINITY, 0x7c00},  {-0.0f, 0x8000},
        {0x1p-24f, 0x0001},  {0x1p-25f, 0x0000},  {3 * 0x1p-25f, 0x0002},  // subnormal ties to even
        {0x1p-14f - 0x1p-25f, 0x0400}};  // halfway between the largest subnormal and the smallest normal: up
    std::vector<float> in;
    for (const auto& e : edges) in.push_back(e.first);
    std::vector<F16> got(in.size());
    kernels.to_f16(in.data(), got.data(), in.size());
    for (std::size_t i = 0; i < edges.size(); ++i) {
      INFO("kernels " << kernels.name << ", " << edges[i].first);
      CHECK(got[i] == edges[i].second);
      CHECK(fp32_to_fp16(edges[i].first) == edges[i].second);
    }
  }
  CHECK(f16_portable_kernels().name == "portable");
}


// fp32_to_fp16 and fp16_to_fp32 are ours, and the x86 conversion, the portable kernels, the
// lookup table and the reference all run them: checked here against the CPU's own
// instructions (F16C or NEON), every half widened and floats of every kind narrowed.
TEST_CASE("fp32_to_fp16 and fp16_to_fp32 agree with the CPU's conversion instructions") {
  const F16Hardware hw = f16_hardware();
  if (hw.to_f16 == nullptr) {
    WARN("this CPU has no F16 conversion instructions (neither F16C with AVX2 nor NEON): not checked");
    return;
  }
  INFO("instructions " << hw.name);
  std::vector<F16> halves(1u << 16);
  for (std::size_t i = 0; i < halves.size(); ++i) halves[i] = static_cast<F16>(i);
  std::vector<float> wide(halves.size());
  hw.to_f32(halves.data(), wide.data(), halves.size());
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < halves.size(); ++i) {
    const float mine = fp16_to_fp32(halves[i]);
    const bool same = std::isnan(mine) ? std::isnan(wide[i]) : std::bit_cast<std::uint32_t>(mine) == std::bit_cast<std::uint32_t>(wide[i]);
    if (!same && wrong++ < 5) FAIL_CHECK("half 0x" << std::hex << i << ": ours " << mine << ", the CPU's " << wide[i]);
  }
  CHECK(wrong == 0);

  std::mt19937 rng(5);
  std::uniform_int_distribution<std::uint32_t> bits(0, 0xffffffffu);
  std::vector<float> in = {65504.0f, 65519.99f, 65520.0f, -65520.0f, INFINITY, -INFINITY, NAN, -0.0f, 0x1p-24f,
                           0x1p-25f, 3 * 0x1p-25f, 0x1p-14f - 0x1p-25f, 1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f};
  for (int i = 0; i < 200000; ++i) in.push_back(std::bit_cast<float>(bits(rng)));
  // Every float whose exponent lands in F16's range or just under it, at random mantissas:
  // the rounding of normals, subnormals and the ties between them.
  for (std::uint32_t e = 100; e < 145; ++e) {
    for (int i = 0; i < 2000; ++i) in.push_back(std::bit_cast<float>((bits(rng) & 0x807fffffu) | (e << 23)));
  }
  std::vector<F16> got(in.size());
  hw.to_f16(in.data(), got.data(), in.size());
  wrong = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const F16 mine = fp32_to_fp16(in[i]);
    const bool same = (mine & 0x7fff) > 0x7c00 ? (got[i] & 0x7fff) > 0x7c00 : got[i] == mine;
    if (!same && wrong++ < 5) {
      FAIL_CHECK("float " << in[i] << " (0x" << std::hex << std::bit_cast<std::uint32_t>(in[i]) << "): ours 0x" << mine
                          << ", the CPU's 0x" << got[i]);
    }
  }
  CHECK(wrong == 0);
  // The odd lengths take each conversion's tail, both ways.
  for (std::size_t n : {1, 3, 5, 9, 13}) {
    std::vector<F16> part(n);
    hw.to_f16(in.data() + 20, part.data(), n);
    for (std::size_t i = 0; i < n; ++i) CHECK(part[i] == got[20 + i]);
    std::vector<float> back(n);
    hw.to_f32(halves.data() + 0x3c01, back.data(), n);  // 1 + 2^-10 onwards: normal halves
    for (std::size_t i = 0; i < n; ++i) CHECK(back[i] == fp16_to_fp32(halves[0x3c01 + i]));
  }
}
