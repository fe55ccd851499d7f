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
  o.max_tokens = 5;
  o.min_time = std::chrono::milliseconds(0);
  auto r = run_probe(two_cpus(), o);
  REQUIRE(r);
  CHECK(r->tokens == 3);
  CHECK(r->layers_resident == 4);
  CHECK(r->bytes_per_token == q4_0_bytes(k_tiny.weights()));
  CHECK(r->tokens_per_s > 0);
  CHECK(r->effective_gbps == Approx(double(r->bytes_per_token) / r->seconds_per_token / 1e9));
  CHECK(r->last_token < 512u);
  CHECK(r->numa_nodes == 2);
  CHECK(r->note.empty());
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
  o.min_tokens = o.max_tokens = 4;
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
  o.min_tokens = o.max_tokens = 6;
  o.min_time = std::chrono::milliseconds(0);
  o.barrier_spin = std::chrono::microseconds(0);  // sleep at every phase, as std::barrier did
  auto sleeping = run_probe(two_cpus(), o);
  REQUIRE(sleeping);
  o.barrier_spin = std::chrono::microseconds(200);
  auto spinning = run_probe(two_cpus(), o);
  REQUIRE(spinning);
  CHECK(spinning->tokens == 6);
  CHECK(spinning->last_token == sleeping->last_token);
}
