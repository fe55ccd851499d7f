#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "node-agent/bench/quant.hpp"

using namespace fleet::agent::bench;

TEST_CASE("fp16 conversion round-trips exact values and rounds to nearest even") {
  for (float v : {0.0f, 1.0f, -2.0f, 0.5f, 65504.0f, -0.000061035156f, 5.9604645e-08f /* smallest subnormal */}) {
    CHECK(fp16_to_fp32(fp32_to_fp16(v)) == v);
  }
  CHECK(fp32_to_fp16(1.0f) == 0x3c00);
  CHECK(fp32_to_fp16(-2.0f) == 0xc000);
  CHECK(fp32_to_fp16(1e6f) == 0x7c00);  // overflow -> inf
  CHECK(std::isinf(fp16_to_fp32(0x7c00)));
  CHECK(std::isnan(fp16_to_fp32(0x7e00)));
  // 1 + 2^-11 lies halfway between 1 and the next half (1 + 2^-10): ties go to even (1).
  CHECK(fp32_to_fp16(1.0f + 1.0f / 2048) == 0x3c00);
  CHECK(fp32_to_fp16(1.0f + 3.0f / 2048) == 0x3c02);
  // Every half converts to a float and back to itself (NaNs aside).
  int bad = 0;
  for (std::uint32_t h = 0; h < 65536; ++h) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;
    if (fp32_to_fp16(fp16_to_fp32(std::uint16_t(h))) != h) ++bad;
  }
  CHECK(bad == 0);
}

TEST_CASE("Q4_0 packs weight j in the low nibble and j+16 in the high nibble of byte j") {
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[std::size_t(j)] = float(j - 16);  // max |x| is -16 at j = 0
  std::vector<BlockQ4_0> q(1);
  quantize_q4_0(x, q);
  const float d = fp16_to_fp32(q[0].d);
  CHECK(d == Approx(2.0f));  // -16 / -8
  // weight 0 (-16) -> nibble 0; weight 16 (0) -> nibble 8.
  CHECK((q[0].qs[0] & 0x0f) == 0);
  CHECK((q[0].qs[0] >> 4) == 8);
  for (int j = 0; j < 16; ++j) {
    const float lo = float((q[0].qs[j] & 0x0f) - 8) * d, hi = float((q[0].qs[j] >> 4) - 8) * d;
    CHECK(std::fabs(lo - x[std::size_t(j)]) <= d / 2 + 1e-6f);
    CHECK(std::fabs(hi - x[std::size_t(j + 16)]) <= d / 2 + 1e-6f);
  }
}

TEST_CASE("Q8_0 scales by max |x| / 127") {
  std::vector<float> x(64, 0.0f);
  x[3] = 127.0f;
  x[40] = -0.5f;
  std::vector<BlockQ8_0> q(2);
  quantize_q8_0(x, q);
  CHECK(fp16_to_fp32(q[0].d) == 1.0f);
  CHECK(q[0].qs[3] == 127);
  CHECK(q[1].qs[8] == -127);
  CHECK(fp16_to_fp32(q[1].d) == Approx(0.5f / 127).epsilon(1e-3));
}

TEST_CASE("the reference dot product equals the float dot product of the dequantized blocks") {
  std::mt19937 rng(7);
  std::normal_distribution<float> n(0, 1);
  std::vector<float> a(32 * 64), b(a.size());
  for (auto& v : a) v = n(rng);
  for (auto& v : b) v = n(rng);
  std::vector<BlockQ4_0> qa(64);
  std::vector<BlockQ8_0> qb(64);
  quantize_q4_0(a, qa);
  quantize_q8_0(b, qb);
  double want = 0;
  for (std::size_t i = 0; i < 64; ++i) {
    for (std::size_t j = 0; j < 32; ++j) {
      const int nib = j < 16 ? (qa[i].qs[j] & 0x0f) : (qa[i].qs[j - 16] >> 4);
      want += double(nib - 8) * fp16_to_fp32(qa[i].d) * double(qb[i].qs[j]) * fp16_to_fp32(qb[i].d);
    }
  }
  CHECK(dot_q4_0_q8_0_reference(qa.data(), qb.data(), 64) == Approx(want).epsilon(1e-5));
  // And quantization kept the product close to the float one.
  double exact = 0;
  for (std::size_t i = 0; i < a.size(); ++i) exact += double(a[i]) * b[i];
  CHECK(std::fabs(want - exact) < 0.1 * std::sqrt(double(a.size())));
}

TEST_CASE("every dot-product path this CPU has matches the reference on random data") {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-3, 3);
  int tested = 0;
  for (DotPath p : {DotPath::portable, DotPath::avx2, DotPath::avx_vnni, DotPath::neon_dotprod}) {
    auto fn = dot_fn(p);
    CHECK((fn != nullptr) == dot_path_available(p));
    if (!fn) continue;
    ++tested;
    for (std::size_t blocks : {std::size_t(1), std::size_t(2), std::size_t(3), std::size_t(129), std::size_t(4096)}) {
      std::vector<float> a(blocks * 32), b(blocks * 32);
      for (auto& v : a) v = u(rng);
      for (auto& v : b) v = u(rng);
      std::vector<BlockQ4_0> qa(blocks);
      std::vector<BlockQ8_0> qb(blocks);
      quantize_q4_0(a, qa);
      quantize_q8_0(b, qb);
      const float ref = dot_q4_0_q8_0_reference(qa.data(), qb.data(), blocks);
      INFO(dot_path_name(p) << " over " << blocks << " blocks");
      CHECK(fn(qa.data(), qb.data(), blocks) == Approx(ref).epsilon(1e-5).margin(1e-4));
    }
  }
  CHECK(tested >= 1);
  CHECK(dot_path_available(best_dot_path()));
}
