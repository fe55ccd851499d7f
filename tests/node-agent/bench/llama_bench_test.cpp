#include <catch2/catch.hpp>

#include <filesystem>

#include "node-agent/bench/llama_bench.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet::agent::bench;

namespace {
// As llama-bench -o json prints it (trimmed), with a field a later build added.
const char* k_output = R"([
  {"build_commit": "b1a2c3d", "build_number": 4242, "cpu_info": "Cortex-A76", "model_type": "llama 7B Q4_0",
   "model_size": 3825065984, "model_n_params": 6738415616, "n_threads": 4, "n_prompt": 64, "n_gen": 0,
   "test_time": "2026-11-24T10:00:00Z", "avg_ns": 9876543210, "stddev_ns": 12345,
   "avg_ts": 6.48, "stddev_ts": 0.05, "samples_ns": [1, 2, 3], "samples_ts": [6.43, 6.48, 6.53],
   "new_field_from_a_later_build": {"x": 1}},
  {"build_commit": "b1a2c3d", "n_threads": 4, "n_prompt": 0, "n_gen": 16, "samples_ts": [2.0, 2.2, 2.4]}
])";
}  // namespace

TEST_CASE("llama-bench JSON: prompt and generation rates, extra fields ignored, missing ones derived") {
  auto r = parse_llama_bench_json(k_output, "out.json");
  REQUIRE(r);
  REQUIRE(r->tests.size() == 2);
  REQUIRE(r->prompt);
  CHECK(r->prompt->n_prompt == 64);
  CHECK(r->prompt->avg_ts == 6.48);
  CHECK(r->prompt->stddev_ts == 0.05);
  CHECK(r->prompt->model_size == 3825065984ull);
  CHECK(r->prompt->build_commit == "b1a2c3d");
  REQUIRE(r->generation);
  CHECK(r->generation->n_gen == 16);
  CHECK(r->generation->avg_ts == Approx(2.2));            // from samples_ts
  CHECK(r->generation->stddev_ts == Approx(0.2));         // sample standard deviation
  CHECK(r->generation->model_size == 0);
}

TEST_CASE("llama-bench JSON that is not an array of tests is refused, a test without a rate is skipped") {
  auto r = parse_llama_bench_json("{\"avg_ts\": 1}", "x");
  REQUIRE_FALSE(r);
  CHECK(r.error().message == "x: llama-bench JSON is not an array of tests");
  CHECK_FALSE(parse_llama_bench_json("[1, 2", "x"));
  auto e = parse_llama_bench_json("[{\"n_gen\": 16}, 7]", "x");
  REQUIRE_FALSE(e);
  CHECK(e.error().message == "x: test 1 is not an object");
  auto s = parse_llama_bench_json(R"([{"n_gen": 16, "n_prompt": 0, "avg_ts": "fast"}])", "x");
  REQUIRE(s);
  CHECK(s->tests.empty());
  CHECK_FALSE(s->generation);
  REQUIRE(s->skipped.size() == 1);
  CHECK(s->skipped[0] == "x: test 0: no avg_ts or samples_ts");
}

// Found by tests/fuzz/llama_bench_fuzz: "n_gen": 2.2e74 was converted to int (undefined
// behaviour); counts past int's range wrapped. Such a count is now absent, as a missing one.
TEST_CASE("llama-bench counts out of range are absent, not wrapped") {
  auto r = parse_llama_bench_json(
      R"([{"n_gen": 2.2e74, "n_prompt": 0, "avg_ts": 2.0},
          {"n_gen": 4294967312, "n_prompt": 0, "avg_ts": 3.0},
          {"n_gen": 16.0, "n_prompt": -0.5, "n_threads": -4294967295, "model_size": -1, "avg_ts": 4.0}])",
      "x");
  REQUIRE(r);
  REQUIRE(r->tests.size() == 3);
  CHECK(r->tests[0].n_gen == 0);
  CHECK(r->tests[1].n_gen == 0);  // not 16
  CHECK(r->tests[2].n_gen == 16);
  CHECK(r->tests[2].n_prompt == 0);
  CHECK(r->tests[2].n_threads == 0);
  CHECK(r->tests[2].model_size == 0);
  REQUIRE(r->generation);
  CHECK(r->generation->avg_ts == 4.0);
}

TEST_CASE("the llama-bench command line asks for JSON") {
  LlamaBenchOptions o;
  o.binary = "/opt/llama-bench";
  o.model = "/models/m.gguf";
  o.threads = 4;
  CHECK(llama_bench_argv(o) == std::vector<std::string>{"/opt/llama-bench", "-m", "/models/m.gguf", "-p", "64", "-n",
                                                        "16", "-r", "3", "-t", "4", "-o", "json"});
}

TEST_CASE("llama-bench runs as a process: JSON from stdout, progress on stderr kept apart") {
  fleet::test::TempDir dir;
  auto script = dir.write("llama-bench", std::string("#!/bin/sh\necho 'loading model' >&2\ncat <<'EOF'\n") + k_output +
                                              "\nEOF\necho 'done' >&2\n");
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  CHECK(find_program(script.string()) == script);
  CHECK_FALSE(find_program("no-such-program-fleet"));
  LlamaBenchOptions o;
  o.binary = script;
  o.model = dir / "m.gguf";
  auto r = run_llama_bench(o);
  REQUIRE(r);
  REQUIRE(r->generation);
  CHECK(r->generation->avg_ts == Approx(2.2));

  auto failing = dir.write("bad-bench", "#!/bin/sh\necho 'error: failed to load model' >&2\nexit 1\n");
  std::filesystem::permissions(failing, std::filesystem::perms::owner_all);
  o.binary = failing;
  auto f = run_llama_bench(o);
  REQUIRE_FALSE(f);
  CHECK(f.error().code == fleet::Errc::process_failed);
  CHECK(f.error().message.find("failed to load model") != std::string::npos);
}

// The commit names the build in the agent's kept figures (measured_by): a short word or none.
TEST_CASE("a llama-bench build commit that is not a short word is dropped") {
  auto r = parse_llama_bench_json(
      R"([{"n_gen": 16, "avg_ts": 2.0, "build_commit": "c392e50"},
          {"n_gen": 16, "avg_ts": 2.0, "build_commit": "c392e50, and then some\nlines"},
          {"n_gen": 16, "avg_ts": 2.0, "build_commit": "0123456789012345678901234567890123456789a"},
          {"n_gen": 16, "avg_ts": 2.0, "build_commit": 7}])",
      "x");
  REQUIRE(r);
  REQUIRE(r->tests.size() == 4);
  CHECK(r->tests[0].build_commit == "c392e50");
  CHECK(r->tests[1].build_commit.empty());
  CHECK(r->tests[2].build_commit.empty());
  CHECK(r->tests[3].build_commit.empty());
}

TEST_CASE("a llama-bench binary is known by its path and content") {
  fleet::test::TempDir dir;
  auto bin = dir.write("llama-bench", "#!/bin/sh\necho one\n");
  const std::string first = llama_bench_identity(bin);
  CHECK(first.starts_with("llama-bench " + bin.string() + ", sha256 "));
  CHECK(llama_bench_identity(bin) == first);
  dir.write("llama-bench", "#!/bin/sh\necho two\n");  // another build, same path
  CHECK(llama_bench_identity(bin) != first);
  CHECK(llama_bench_identity(dir / "absent").find("unreadable") != std::string::npos);
}
