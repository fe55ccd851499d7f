#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "node-agent/bench/probe.hpp"
#include "node-agent/bench/repack.hpp"

using namespace fleet::agent::bench;

namespace {

constexpr Layout k_repacked[] = {Layout::q4_0_4x4, Layout::q4_0_4x8, Layout::q4_0_8x8};
constexpr DotPath k_paths[] = {DotPath::portable, DotPath::avx2, DotPath::avx_vnni, DotPath::neon_dotprod};

std::vector<BlockQ4_0> numbered_rows(std::size_t rows, std::size_t blocks) {
  std::vector<BlockQ4_0> w(rows * blocks);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t k = 0; k < blocks; ++k) {
      BlockQ4_0& b = w[r * blocks + k];
      b.d = std::uint16_t(0x3c00 + r * 16 + k);  // distinct scales
      for (std::size_t j = 0; j < 16; ++j) b.qs[j] = std::uint8_t(r * 37 + k * 11 + j * 3);
    }
  }
  return w;
}

}  // namespace

TEST_CASE("repacking places scales, then chunks of B bytes of the N rows in turn, XORed with 0x88") {
  // ggml-cpu's make_block_q4_0x4 / x8: chunk i of a group is bytes (i / N) * B .. + B of row i % N.
  for (Layout l : k_repacked) {
    const std::size_t n = std::size_t(layout_rows(l)), b = std::size_t(layout_chunk(l)), blocks = 3;
    INFO(layout_name(l));
    const auto w = numbered_rows(2 * n, blocks);
    std::vector<std::uint8_t> out(w.size() * sizeof(BlockQ4_0));
    repack(l, w.data(), 2 * n, blocks, out.data());
    for (std::size_t g = 0; g < 2; ++g) {
      for (std::size_t k = 0; k < blocks; ++k) {
        const std::uint8_t* grp = out.data() + (g * blocks + k) * group_bytes(l);
        for (std::size_t r = 0; r < n; ++r) {
          std::uint16_t d;
          std::memcpy(&d, grp + 2 * r, 2);
          CHECK(d == w[(g * n + r) * blocks + k].d);
        }
        for (std::size_t i = 0; i < 16 * n; ++i) {
          const std::size_t chunk = i / b, row = chunk % n, byte = (chunk / n) * b + i % b;
          CHECK(grp[2 * n + i] == (w[(g * n + row) * blocks + k].qs[byte] ^ 0x88));
        }
      }
    }
  }
  // 4x4: the first 16 bytes are bytes 0-3 of rows 0, 1, 2, 3; 8x8: bytes 0-7 of rows 0..7.
  const auto w = numbered_rows(8, 1);
  std::vector<std::uint8_t> out(8 * sizeof(BlockQ4_0));
  repack(Layout::q4_0_4x4, w.data(), 4, 1, out.data());
  CHECK(out[8 + 4] == (w[1].qs[0] ^ 0x88));
  CHECK(out[8 + 16] == (w[0].qs[4] ^ 0x88));
  repack(Layout::q4_0_8x8, w.data(), 8, 1, out.data());
  CHECK(out[16 + 8 * 7] == (w[7].qs[0] ^ 0x88));
  CHECK(out[16 + 64] == (w[0].qs[8] ^ 0x88));
}

TEST_CASE("every repacked kernel this CPU has equals the plain rows' dot products on random data") {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0, 1);
  int tested = 0;
  for (Layout l : k_repacked) {
    for (DotPath p : k_paths) {
      auto fn = gemv_fn(l, p);
      if (!fn) continue;
      ++tested;
      const std::size_t n = std::size_t(layout_rows(l));
      for (std::size_t blocks : {std::size_t(1), std::size_t(2), std::size_t(7), std::size_t(64)}) {
        for (std::size_t groups : {std::size_t(1), std::size_t(5)}) {
          const std::size_t rows = groups * n;
          std::vector<float> wf(rows * blocks * 32), xf(blocks * 32);
          for (std::size_t i = 0; i < wf.size(); ++i) wf[i] = normal(rng) * float(1 + i % 3);
          for (auto& v : xf) v = normal(rng);
          std::vector<BlockQ4_0> w(rows * blocks);
          std::vector<BlockQ8_0> x(blocks);
          quantize_q4_0(wf, w);
          quantize_q8_0(xf, x);
          std::vector<std::uint8_t> packed(w.size() * sizeof(BlockQ4_0));
          repack(l, w.data(), rows, blocks, packed.data());
          std::vector<float> got(rows, -1.0f), ref(rows, -1.0f);
          fn(packed.data(), x.data(), blocks, groups, got.data());
          gemv_reference(l, packed.data(), x.data(), blocks, groups, ref.data());
          for (std::size_t r = 0; r < rows; ++r) {
            INFO(layout_name(l) << " " << dot_path_name(p) << ", " << blocks << " blocks, row " << r);
            const float plain = dot_q4_0_q8_0_reference(w.data() + r * blocks, x.data(), blocks);
            CHECK(ref[r] == Approx(plain).epsilon(1e-5).margin(1e-4));
            CHECK(got[r] == Approx(plain).epsilon(1e-5).margin(1e-4));
          }
        }
      }
    }
  }
  CHECK(tested >= 3);  // at least the portable kernel of each layout
  // The layouts this build can pick have a kernel on their fastest path.
  CHECK((best_layout() == Layout::rows || gemv_fn(best_layout(), best_dot_path()) != nullptr));
#if defined(__x86_64__)
  CHECK(best_layout() == (dot_path_available(DotPath::avx2) ? Layout::q4_0_8x8 : Layout::rows));
  CHECK(gemv_fn(Layout::q4_0_4x4, DotPath::avx2) == nullptr);
#endif
}

TEST_CASE("threads split the rows as ggml does: ends rounded up to whole groups, every row once") {
  for (Layout l : {Layout::rows, Layout::q4_0_4x4, Layout::q4_0_8x8}) {
    const std::size_t n = std::size_t(layout_rows(l));
    for (std::size_t rows : {std::size_t(8), std::size_t(512), std::size_t(32000), std::size_t(128256)}) {
      for (int threads : {1, 2, 3, 4, 7}) {
        std::size_t next = 0;
        for (int t = 0; t < threads; ++t) {
          auto [lo, hi] = layout_slice(l, rows, t, threads);
          INFO(layout_name(l) << " " << rows << " rows, thread " << t << " of " << threads);
          CHECK(lo % n == 0);
          CHECK(hi % n == 0);
          if (hi > lo) {
            CHECK(lo == next);
            next = hi;
          }
        }
        CHECK(next == rows);
      }
    }
  }
  // ggml: thread 1 of 3 over 8 rows of 8x8 starts at round_up(8 / 3 = 2, 8) = 8 and ends at
  // round_up(16 / 3 = 5, 8) = 8: nothing; thread 0 takes the whole group.
  CHECK(layout_slice(Layout::q4_0_8x8, 8, 0, 3) == std::pair<std::size_t, std::size_t>{0, 8});
  CHECK(layout_slice(Layout::q4_0_8x8, 8, 1, 3).first == layout_slice(Layout::q4_0_8x8, 8, 1, 3).second);
}

TEST_CASE("layouts fit matrices whose rows divide into groups, as in ggml") {
  CHECK(layout_fits(Layout::q4_0_8x8, 512, 2048));
  CHECK_FALSE(layout_fits(Layout::q4_0_8x8, 12, 2048));
  CHECK(layout_fits(Layout::q4_0_4x4, 12, 2048));
  CHECK(layout_fits(Layout::rows, 3, 32));
  CHECK(parse_layout("q4_0_4x8") == Layout::q4_0_4x8);
  CHECK_FALSE(parse_layout("4x8"));
}

TEST_CASE("the probe decodes the same tokens in every layout and says which it used") {
  // Each row's weights come from its own seed, so the layouts and thread counts hold the same
  // model; they differ only in float rounding, which a greedy argmax over 512 logits survives.
  Topology topo;
  topo.cpus = {0, 1};
  topo.node_cpus = {{0, 1}};
  topo.mem_available_bytes = 1ull << 30;
  const ModelShape tiny{"tiny", 128, 4, 256, 4, 2, 512, "test"};
  ProbeOptions o;
  o.shape = tiny;
  o.min_tokens = 5;
  o.min_time = std::chrono::milliseconds(0);
  o.path = DotPath::portable;
  o.layout = Layout::rows;
  o.threads = 1;
  auto ref = run_probe(topo, o);
  REQUIRE(ref);
  CHECK(ref->layout == "rows");
  std::set<std::uint32_t> tokens;
  for (Layout l : k_repacked) {
    for (DotPath p : k_paths) {
      if (!gemv_fn(l, p)) continue;
      for (int threads : {1, 2}) {
        o.layout = l;
        o.path = p;
        o.threads = threads;
        auto r = run_probe(topo, o);
        REQUIRE(r);
        INFO(layout_name(l) << " " << dot_path_name(p) << ", " << threads << " threads");
        CHECK(r->layout == std::string(layout_name(l)));
        CHECK(r->tokens == 5);
        CHECK(r->last_token == ref->last_token);
      }
    }
  }
  // A shape whose kv rows do not divide by 8 keeps those matrices as plain rows, and says so.
  o.shape = ModelShape{"odd", 128, 2, 256, 4, 1, 516, "test"};  // 516 output rows: not a multiple of 8
  o.layout = Layout::q4_0_8x8;
  o.path = DotPath::portable;
  auto odd = run_probe(topo, o);
  REQUIRE(odd);
  CHECK(odd->layout == "q4_0_8x8");
  CHECK(odd->layout_mixed);
  CHECK_FALSE(ref->layout_mixed);
}

TEST_CASE("the tokens take every position once a pass, and any 4 in a row read tg128's mix of KV lengths") {
  const auto order = position_order(128);
  REQUIRE(order.size() == 128);
  CHECK(order[0] == 0);  // the warm-up's position, and the first timed token's
  CHECK(order[1] == 64);
  CHECK(order[2] == 32);
  CHECK(order[3] == 96);
  std::vector<std::uint32_t> sorted(order);
  std::sort(sorted.begin(), sorted.end());
  for (std::uint32_t p = 0; p < 128; ++p) CHECK(sorted[p] == p);
  // In turn, 0, 1, 2, ..., the first 32 would all read 32 positions; here every 4 in a row
  // read one each of 32, 64, 96 and 128 (tg128's mean, 80).
  for (std::size_t start = 0; start < order.size(); ++start) {  // across the wrap too
    std::size_t sum = 0;
    for (std::size_t i = start; i < start + 4; ++i) sum += kv_length(order[i % order.size()], 128);
    CHECK(sum == 32 + 64 + 96 + 128);
  }
  // Other contexts, powers of two or not: still each position once, and the first 20 tokens'
  // mean KV length within 10% of the whole pass's (3% up to 200; 8.6% short at 32768).
  for (std::size_t ctx : std::vector<std::size_t>{1, 3, 48, 100, 200, 4096, std::size_t(k_max_context)}) {
    const auto o = position_order(ctx);
    REQUIRE(o.size() == ctx);
    std::vector<std::uint32_t> s(o);
    std::sort(s.begin(), s.end());
    for (std::uint32_t p = 0; p < ctx; ++p) CHECK(s[p] == p);
    if (ctx < 20) continue;
    double pass = 0, first = 0;
    for (std::size_t p = 0; p < ctx; ++p) pass += double(kv_length(p, ctx)) / double(ctx);
    for (std::size_t i = 0; i < 20; ++i) first += double(kv_length(o[i], ctx)) / 20;
    INFO("context " << ctx << ": first 20 " << first << ", a pass " << pass);
    CHECK(std::abs(first - pass) < 0.1 * pass);
  }
}

TEST_CASE("attention reads the F16 KV cache up to the padded length and masks the positions after this one") {
  CHECK(kv_length(0, 128) == 32);  // llama.cpp pads n_kv to 32 without flash attention
  CHECK(kv_length(31, 128) == 32);
  CHECK(kv_length(32, 128) == 64);
  CHECK(kv_length(127, 128) == 128);
  CHECK(kv_length(40, 48) == 48);  // never past the cache
  // Two KV heads of 4 dimensions, a context of 40; a naive softmax(q.k / 2) . v per head, in
  // double on the values the F16 cache holds.
  const std::size_t ctx = 40, width = 8, hd = 4;
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0, 1);
  std::vector<F16> k(ctx * width), v_t(width * ctx), q(hd);
  for (auto& x : k) x = fp32_to_fp16(normal(rng));
  for (auto& x : v_t) x = fp32_to_fp16(normal(rng));
  for (auto& x : q) x = fp32_to_fp16(normal(rng));
  auto f = [](F16 h) { return double(fp16_to_fp32(h)); };
  for (const F16Kernels& kernels : {f16_kernels(), f16_portable_kernels()}) {
    for (std::size_t pos : {std::size_t(0), std::size_t(31), std::size_t(32), ctx - 1}) {
      for (std::size_t off : {std::size_t(0), hd}) {
        const KvView kv{k.data(), v_t.data(), width, ctx, pos, kv_length(pos, ctx)};
        std::vector<float> scores(ctx, 99.0f), out(hd);
        std::vector<F16> weights(ctx);
        attention_scores(q.data(), kv, off, hd, scores.data(), kernels.dot);
        attention_softmax(kv, scores.data());
        kernels.to_f16(scores.data(), weights.data(), kv.n_kv);
        attention_values(weights.data(), kv, off, hd, out.data(), kernels.dot);
        std::vector<double> w(pos + 1);
        double mx = -1e300, sum = 0;
        for (std::size_t j = 0; j <= pos; ++j) {
          double dot = 0;
          for (std::size_t i = 0; i < hd; ++i) dot += f(q[i]) * f(k[j * width + off + i]);
          w[j] = dot / 2;
          mx = std::max(mx, w[j]);
        }
        for (auto& x : w) sum += (x = std::exp(x - mx));
        INFO("kernels " << kernels.name << ", position " << pos << ", head at " << off);
        for (std::size_t j = 0; j < kv.n_kv; ++j) {
          CHECK(scores[j] == Approx(j <= pos ? w[j] / sum : 0.0).margin(1e-6));
          CHECK(weights[j] == fp32_to_fp16(scores[j]));  // the weights as the cache's type, rounded once
        }
        for (std::size_t i = 0; i < hd; ++i) {
          double want = 0;  // with the weights rounded to F16, as ggml's kqv multiplies them
          for (std::size_t j = 0; j < kv.n_kv; ++j) want += f(weights[j]) * f(v_t[(off + i) * ctx + j]);
          CHECK(out[i] == Approx(want).margin(1e-5));
        }
        CHECK(scores[kv.n_kv - 1] == Approx(kv.n_kv - 1 <= pos ? w[kv.n_kv - 1] / sum : 0.0).margin(1e-6));
      }
    }
  }
}

// A whole attention pass as the decoder runs it: the five steps, each split over the threads
// as ggml splits it (conversions by elements of each head's row, the rest by heads), four
// query heads sharing two KV heads, against softmax(q.k / sqrt(hd)) . v per head in double.
// The positions after this one hold large values: read unmasked, they would show. The
// threads' shares run one after another (the split, not a race, is what is tested here; the
// probe tests run them at once).
TEST_CASE("an attention pass, split over threads, matches the reference in double for every head") {
  const std::size_t heads = 4, kv_heads = 2, hd = 8, ctx = 48, width = kv_heads * hd;
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0, 1);
  std::vector<F16> k(ctx * width), v_t(width * ctx);
  std::vector<float> q(heads * hd);
  for (auto& x : q) x = normal(rng);
  auto f = [](F16 h) { return double(fp16_to_fp32(h)); };
  const std::vector<Attention> steps = {Attention::q_to_f16, Attention::scores, Attention::softmax, Attention::weights_to_f16,
                         Attention::values};
  for (const F16Kernels& kernels : {f16_kernels(), f16_portable_kernels()}) {
    for (std::size_t pos : {std::size_t(0), std::size_t(5), std::size_t(31), std::size_t(32), ctx - 1}) {
      for (std::size_t j = 0; j < ctx; ++j) {
        for (std::size_t i = 0; i < width; ++i) {
          const float big = 50.0f + float(i);  // not yet written: must not be read
          k[j * width + i] = fp32_to_fp16(j <= pos ? normal(rng) : big);
          v_t[i * ctx + j] = fp32_to_fp16(j <= pos ? normal(rng) : big);
        }
      }
      const KvView kv{k.data(), v_t.data(), width, ctx, pos, kv_length(pos, ctx)};
      std::vector<float> first;
      for (int threads : {1, 2, 3}) {
        std::vector<F16> q16(heads * hd), w16(heads * ctx);
        std::vector<float> scores(heads * ctx, 7.0f), out(heads * hd, -1.0f);
        const AttentionBuffers b{q.data(), q16.data(), scores.data(), w16.data(), out.data(), heads, kv_heads, hd};
        for (Attention step : steps) {
          for (int t = 0; t < threads; ++t) attention_step(step, b, kv, kernels, t, threads);  // then they meet
        }
        INFO("kernels " << kernels.name << ", position " << pos << ", " << threads << " threads");
        if (threads == 1) {
          first = out;
        } else {
          CHECK(out == first);  // each element's work is the same whichever thread does it
        }
        for (std::size_t h = 0; h < heads; ++h) {
          const std::size_t off = (h / (heads / kv_heads)) * hd;
          std::vector<double> w(pos + 1);
          double mx = -1e300, sum = 0;
          for (std::size_t j = 0; j <= pos; ++j) {
            double dot = 0;
            for (std::size_t i = 0; i < hd; ++i) dot += double(q[h * hd + i]) * f(k[j * width + off + i]);
            w[j] = dot / std::sqrt(double(hd));
            mx = std::max(mx, w[j]);
          }
          for (auto& x : w) sum += (x = std::exp(x - mx));
          for (std::size_t i = 0; i < hd; ++i) {
            double want = 0, scale = 0;
            for (std::size_t j = 0; j <= pos; ++j) {
              want += w[j] / sum * f(v_t[(off + i) * ctx + j]);
              scale += w[j] / sum * std::fabs(f(v_t[(off + i) * ctx + j]));
            }
            INFO("head " << h << ", dimension " << i);
            // q and the weights rounded to F16 (11 bits) on the way: a few parts in a thousand.
            CHECK(std::fabs(out[h * hd + i] - want) <= 4e-3 * scale + 1e-6);
          }
        }
      }
    }
  }
}

TEST_CASE("the probe refuses a context it cannot hold and one out of range") {
  Topology topo;
  topo.cpus = {0};
  topo.node_cpus = {{0}};
  topo.mem_available_bytes = 64ull << 20;
  ProbeOptions o;
  o.shape = ModelShape{"tiny", 128, 4, 256, 4, 2, 512, "test"};
  o.threads = 1;
  o.min_time = std::chrono::milliseconds(0);
  o.context = 0;
  auto zero = run_probe(topo, o);
  REQUIRE_FALSE(zero);
  CHECK(zero.error().code == fleet::Errc::invalid_input);
  o.context = k_max_context;  // 4 layers x 32768 x 64 x 2 bytes (F16) x 2 = 32 MiB > 16 MiB
  auto big = run_probe(topo, o);
  REQUIRE_FALSE(big);
  CHECK(big.error().message.find("pick a smaller --context") != std::string::npos);
  o.context = 128;
  auto ok = run_probe(topo, o);
  REQUIRE(ok);
  CHECK(ok->context == 128);
}
