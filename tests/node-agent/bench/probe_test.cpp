#include <catch2/catch.hpp>

#include "node-agent/bench/probe.hpp"

using namespace fleet::agent::bench;

namespace {
Topology two_cpus() {
  Topology t;
  t.cpus = {0, 1};
  t.node_cpus = {{0}, {1}};  // two nodes: exercises the spread
  t.mem_available_bytes = 1ull << 30;
  return t;
}
const ModelShape k_tiny{"tiny", 128, 4, 256, 4, 2, 512, "test"};
}  // namespace

TEST_CASE("the probe decodes tokens through every layer and reports what it read") {
  ProbeOptions o;
  o.shape = k_tiny;
  o.threads = 2;
  o.min_tokens = 3;
  o.min_time = std::chrono::milliseconds(0);
  auto r = run_probe(two_cpus(), o);
  REQUIRE(r);
  CHECK(r->tokens == 3);
  CHECK(r->seconds_timed > 0);
  CHECK_FALSE(r->cut_short);
  CHECK(r->layers_resident == 4);
  CHECK(r->bytes_per_token == q4_0_bytes(k_tiny.weights()));
  CHECK(r->tokens_per_s > 0);
  CHECK(r->effective_gbps == Approx(double(r->bytes_per_token) / r->seconds_per_token / 1e9));
  CHECK(r->last_token < 512u);
  CHECK(r->numa_nodes == 2);
  CHECK(r->note.empty());
  // The three timed tokens ran at positions 0, 64 and 32 of 128 (position_order): KV lengths
  // 32, 96 and 64, not 32 three times as in turn.
  CHECK(r->kv_mean == Approx(64));
  CHECK(r->kv_mean_pass == Approx(80));
}

TEST_CASE("a small memory budget holds fewer layers and still reads every layer per token") {
  ProbeOptions o;
  o.shape = k_tiny;
  o.threads = 1;
  o.min_time = std::chrono::milliseconds(0);
  o.memory_budget = probe_min_bytes(k_tiny) + q4_0_bytes(k_tiny.layer_weights());  // 2 layers
  auto r = run_probe(two_cpus(), o);
  REQUIRE(r);
  CHECK(r->layers_resident == 2);
  CHECK(r->bytes_per_token == q4_0_bytes(k_tiny.weights()));
  CHECK(r->note.find("2 of 4 layers") != std::string::npos);

  o.memory_budget = probe_min_bytes(k_tiny) - 1;
  auto small = run_probe(two_cpus(), o);
  REQUIRE_FALSE(small);
  CHECK(small.error().code == fleet::Errc::unsupported);
  CHECK(small.error().message.find("smaller --model-shape") != std::string::npos);
}

TEST_CASE("the same weights decode to the same token on every path") {
  // Synthetic weights are seeded per thread, so one thread on each path sees the same model;
  // the paths differ only in float rounding, which a greedy argmax over 512 logits survives.
  ProbeOptions o;
  o.shape = k_tiny;
  o.threads = 1;
  o.min_tokens = 4;
  o.min_time = std::chrono::milliseconds(0);
  o.path = DotPath::portable;
  auto ref = run_probe(two_cpus(), o);
  REQUIRE(ref);
  o.path = best_dot_path();
  auto fast = run_probe(two_cpus(), o);
  REQUIRE(fast);
  CHECK(fast->dot_path == std::string(dot_path_name(best_dot_path())));
  CHECK(fast->last_token == ref->last_token);
}

TEST_CASE("how the threads meet between phases does not change what the probe decodes") {
  ProbeOptions o;
  o.shape = k_tiny;
  o.threads = 2;
  o.min_tokens = 6;
  o.min_time = std::chrono::milliseconds(0);
  o.sync = Sync::spin;
  o.barrier_spin = std::chrono::microseconds(0);  // sleep at every phase, as std::barrier did
  auto sleeping = run_probe(two_cpus(), o);
  REQUIRE(sleeping);
  CHECK(sleeping->sync == Sync::spin);
  o.barrier_spin = std::chrono::microseconds(200);
  auto spinning = run_probe(two_cpus(), o);
  REQUIRE(spinning);
  CHECK(spinning->tokens == 6);
  CHECK(spinning->last_token == sleeping->last_token);
  if (!k_have_gomp) {
    WARN("not checked here: this tree has no OpenMP (a clang without libomp), so the probe has no --sync gomp");
  } else {
    // libgomp's team, as llama.cpp's default build: the same tokens, and it says so.
    o.sync = Sync::gomp;
    for (int threads : {1, 2, 3}) {  // 3 on 2 CPUs: more threads than CPUs still meet right
      o.threads = threads;
      auto gomp = run_probe(two_cpus(), o);
      REQUIRE(gomp);
      CHECK(gomp->sync == Sync::gomp);
      CHECK(gomp->tokens == 6);
      CHECK(gomp->threads == threads);
      CHECK(gomp->last_token == sleeping->last_token);
    }
  }
}

TEST_CASE("the probe's sync names: spin always, gomp where the agent has OpenMP") {
  CHECK(parse_sync("spin") == Sync::spin);
  CHECK(parse_sync("gomp") == (k_have_gomp ? std::optional(Sync::gomp) : std::nullopt));
  CHECK_FALSE(parse_sync("omp"));
  CHECK_FALSE(parse_sync(""));
}

TEST_CASE("a measurement goes on until both its token count and its time are met, or its bound") {
  ProbeOptions o;
  o.min_tokens = 16;
  o.min_time = std::chrono::milliseconds(2000);
  o.max_time = std::chrono::milliseconds(10000);
  // Many fast tokens are not enough: the time too (32 tokens in 0.13 s was the old stop).
  CHECK(timing(32, 0.13, o) == Timing::go_on);
  CHECK(timing(15, 2.5, o) == Timing::go_on);
  CHECK(timing(16, 2.0, o) == Timing::done);
  CHECK(timing(500, 2.01, o) == Timing::done);
  // A slow shape on a slow board: cut at the bound, and said.
  CHECK(timing(3, 10.0, o) == Timing::cut_short);
  CHECK(timing(3, 9.99, o) == Timing::go_on);
}

TEST_CASE("token times: the median, the best and the interquartile spread") {
  auto t = summarize({0.010, 0.012, 0.011, 0.013, 0.050, 0.011, 0.012, 0.010});
  CHECK(t.count == 8);
  CHECK(t.best == Approx(0.010));
  CHECK(t.median == Approx(0.0115));  // the mean of the middle two of eight
  CHECK(t.total == Approx(0.129));
  // Sorted: .010 .010 .011 .011 .012 .012 .013 .050: q1 .01075, q3 .01225 (interpolated). The
  // one slow token (a scheduler's) moves neither the median nor the spread much.
  CHECK(t.spread == Approx((0.01225 - 0.01075) / 0.0115));
  CHECK(summarize({}).count == 0);
  CHECK(summarize({0.5}).median == Approx(0.5));
}

TEST_CASE("a probe cut at its bound says so") {
  ProbeOptions o;
  o.shape = k_tiny;
  o.threads = 1;
  o.min_tokens = 1000000;
  o.min_time = std::chrono::milliseconds(0);
  o.max_time = std::chrono::milliseconds(200);
  auto r = run_probe(two_cpus(), o);
  REQUIRE(r);
  CHECK(r->cut_short);
  CHECK(r->seconds_timed >= 0.2);
  CHECK(r->tokens < 1000000);
  CHECK(r->note.find("cut at the bound") != std::string::npos);
}

TEST_CASE("the probe's method names its revision and every choice that changes a figure") {
  ProbeOptions o;
  o.path = DotPath::portable;
  o.layout = Layout::rows;
  o.sync = Sync::spin;
  const std::string plain = probe_method(o);
  CHECK(plain == "revision " + std::to_string(k_probe_revision) + ", portable, rows, f16 KV (" +
                     std::string(f16_kernels().name) + "), spin, THP advice none");
  // Each choice shows, so a figure taken another way is never a baseline for this one.
  o.huge = Huge::on;
  CHECK(probe_method(o) != plain);
  o.huge = Huge::unadvised;
  o.layout = Layout::q4_0_4x4;
  CHECK(probe_method(o) != plain);
}
