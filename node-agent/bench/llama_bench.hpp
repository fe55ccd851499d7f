#pragma once
// llama.cpp's llama-bench, when a board has it and the inventory names a model file:
// `llama-bench -m MODEL -p N -n N -t T -r R -o json`. Its JSON is an array of test objects;
// the fields change between builds, so the parser keys on the few the reference lists
// (n_prompt, n_gen, n_threads, avg_ts, stddev_ts, samples_ts, model_size, model_n_params,
// build_commit) and tolerates extra or missing ones. A pp test has n_gen 0, a tg test n_prompt 0.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace fleet::agent::bench {

struct LlamaBenchTest {
  int n_prompt = 0;
  int n_gen = 0;
  int n_threads = 0;
  double avg_ts = 0;     // tokens/s; from samples_ts when avg_ts is missing
  double stddev_ts = 0;
  std::vector<double> samples_ts;
  std::uint64_t model_size = 0;
  std::uint64_t model_n_params = 0;
  std::string build_commit;
  std::string model_type;
};

struct LlamaBenchResult {
  std::vector<LlamaBenchTest> tests;
  std::optional<LlamaBenchTest> prompt;      // the first pp test
  std::optional<LlamaBenchTest> generation;  // the first tg test
  std::vector<std::string> skipped;          // entries without a rate, and why
};

// Pure. `source` names the output in errors.
Result<LlamaBenchResult> parse_llama_bench_json(std::string_view json, std::string_view source);

struct LlamaBenchOptions {
  std::filesystem::path binary = "llama-bench";
  std::filesystem::path model;
  int threads = 0;  // 0: llama-bench's default
  int prompt = 64;
  int gen = 16;
  int repetitions = 3;
  std::chrono::seconds timeout{600};
};

// The command line it runs (for --help and the report). Pure.
std::vector<std::string> llama_bench_argv(const LlamaBenchOptions& options);
// Finds `name` on PATH (or takes it as a path); nullopt if absent.
std::optional<std::filesystem::path> find_program(const std::string& name);
Result<LlamaBenchResult> run_llama_bench(const LlamaBenchOptions& options);
// Which llama-bench this is, in words: "llama-bench /usr/local/bin/llama-bench, sha256
// 0123abcd4567ef01". A figure it took serves as another's baseline only if the same binary
// (by content: a rebuild with other flags is another) would measure again; an unreadable
// binary names its error. The executable's content only: a static build (as
// bench/llama_build.sh makes) is identified whole; a shared one (llama.cpp's default) keeps
// its kernels in libggml-cpu.so, which this does not see, though the build commit in
// measured_by still tells two llama.cpp versions apart.
std::string llama_bench_identity(const std::filesystem::path& binary);

}  // namespace fleet::agent::bench
