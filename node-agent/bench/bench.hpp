#pragma once
// `fleet-agent bench`: memory bandwidth, the token-generation probe and, where the board has
// it and a model file is named, llama-bench. One report, as a table or JSON; a compact
// summary of it (throughput_json) rides in the agent's report to the controller.
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "node-agent/bench/gguf.hpp"
#include "node-agent/bench/health.hpp"
#include "node-agent/bench/llama_bench.hpp"
#include "node-agent/bench/memory.hpp"
#include "node-agent/bench/probe.hpp"
#include "node-agent/bench/topology.hpp"

namespace fleet::agent::bench {

struct BenchOptions {
  std::optional<std::string> shape;          // a known shape name, or "auto"
  std::optional<std::filesystem::path> model;  // a GGUF file: its shape for the probe, and llama-bench
  int threads = 0;                           // 0: every CPU
  bool bandwidth = true;
  bool probe = true;
  BandwidthOptions bw;
  ProbeOptions probe_options;                // shape and threads are filled in from the above
  std::string llama_bench = "llama-bench";   // "" never runs it
  LlamaBenchOptions llama;
};

struct ModelFile {
  std::filesystem::path path;
  std::uint64_t bytes = 0;
  std::string weights_type;  // the ggml type most of the weight bytes have
};

struct BenchReport {
  Topology topo;
  std::optional<BandwidthReport> bandwidth;
  std::optional<ProbeResult> probe;
  std::optional<ModelFile> model;
  std::optional<LlamaBenchResult> llama;
  std::string llama_note;  // why llama-bench did not run, or its error
  Health health;           // the worse of before and after the measurements
};

// The largest known shape whose weights fit in half of the available memory, or the
// smallest shape if none does.
ModelShape auto_shape(const Topology& topo);

using Progress = std::function<void(const std::string&)>;
Result<BenchReport> run_bench(const BenchOptions& options, const Progress& progress = {});

nlohmann::json bench_json(const BenchReport& r);
std::string bench_table(const BenchReport& r);

// Checks every dot-product path this CPU has against the scalar reference on random data.
// Returns one line per path; Errc::mismatch if any differs beyond float rounding.
Result<std::string> self_test_dot(int blocks = 4096, int trials = 50);

}  // namespace fleet::agent::bench
