#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "node-agent/cli/cli.hpp"
#include "tests/support/cli.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;

namespace {
int run(const std::vector<std::string>& args, std::string& out, std::string& err) {
  auto r = test::run_cli(agent::cli::run, args);
  out = r.out;
  err = r.err;
  return r.code;
}
}  // namespace

TEST_CASE("fleet-agent bench --json: bandwidth and probe figures a script can read") {
  std::string out, err;
  int code = run({"bench", "--model-shape", "15m", "--size-mib", "2", "--repetitions", "1", "--tokens", "3",
                  "--min-seconds", "0", "--json"},
                 out, err);
  INFO(err);
  REQUIRE(code == 0);
  auto j = nlohmann::json::parse(out);
  CHECK(j["probe"]["shape"]["name"] == "15m");
  CHECK(j["probe"]["what"] == "synthetic weights, real arithmetic, real memory traffic");
  CHECK(j["probe"]["tokens_per_s"].get<double>() > 0);
  CHECK(j["probe"]["tokens"] == 3);  // at least 3 tokens and 0 s: three
  CHECK(j["probe"]["seconds_timed"].get<double>() > 0);
  CHECK(j["probe"]["spread"].get<double>() >= 0);
  CHECK(j["probe"]["cut_short"] == false);
  CHECK(j["bandwidth"]["array_bytes"] == 2u << 20);
  CHECK(j["bandwidth"]["results"].size() >= 6);
  CHECK(err.find("token-generation probe: 15m") != std::string::npos);  // progress on stderr
}

TEST_CASE("fleet-agent bench holds the probe's weights as llama.cpp holds its own unless told otherwise") {
  // llama.cpp never madvises its weights: under THP madvise (this machine's and the tuned
  // kernel's default mode) they sit in base pages, and so do the probe's by default.
  std::string mode;
  {
    std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
    std::getline(f, mode);
  }
  // A per-size mode (multi-size THP, Linux 6.8+) set to always gives unadvised memory huge
  // pages of that size under a top-level madvise.
  bool some_size_always = false;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/sys/kernel/mm/transparent_hugepage", ec)) {
    std::ifstream f(e.path() / "enabled");
    std::string size_mode;
    if (e.path().filename().string().starts_with("hugepages-") && std::getline(f, size_mode)) {
      some_size_always = some_size_always || size_mode.find("[always]") != std::string::npos;
    }
  }
  auto probe = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args{"bench", "--model-shape", "15m", "--no-bandwidth", "--tokens", "1", "--min-seconds", "0", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::string out, err;
    const int code = run(args, out, err);
    INFO(err);
    REQUIRE(code == 0);
    return nlohmann::json::parse(out)["probe"];
  };
  const auto plain = probe({});
  CHECK(plain["hugepage_advice"] == "none");
  const auto huge = probe({"--hugepage"});
  CHECK(huge["hugepage_advice"] == "madvise");
  CHECK(probe({"--no-hugepage"})["hugepage_advice"] == "nohugepage");
  INFO("THP mode: " << mode);
  if (mode.find("[madvise]") != std::string::npos && !some_size_always) {
    CHECK(plain["huge_fraction"].get<double>() == 0);
    if (huge["huge_fraction"].get<double>() == 0) WARN("--hugepage got no huge pages (memory too fragmented?)");
  } else if (mode.find("[never]") != std::string::npos) {
    CHECK(plain["huge_fraction"].get<double>() == 0);
    CHECK(huge["huge_fraction"].get<double>() == 0);
  } else {
    WARN("THP mode '" << mode << "'" << (some_size_always ? " with a size set to always" : "")
                      << ": the huge-page shares depend on the mode; only the advice is checked");
  }
  std::string out, err;
  CHECK(run({"bench", "--hugepage", "--no-hugepage", "--no-bandwidth"}, out, err) == 2);
  CHECK(err.find("give --hugepage or --no-hugepage, not both") != std::string::npos);
}

TEST_CASE("fleet-agent bench: bad options are usage errors that name the option") {
  std::string out, err;
  CHECK(run({"bench", "--threads", "0"}, out, err) == 2);
  CHECK(err.find("--threads must be a whole number from 1") != std::string::npos);
  CHECK(run({"bench", "--model-shape", "13b", "--no-bandwidth"}, out, err) == 2);
  CHECK(err.find("unknown model shape '13b'") != std::string::npos);
  CHECK(run({"bench", "--path", "sse9"}, out, err) == 2);
  CHECK(run({"bench", "--min-seconds", "10", "--max-seconds", "5", "--no-bandwidth"}, out, err) == 2);
  CHECK(err.find("--max-seconds is below --min-seconds") != std::string::npos);
  CHECK(run({"bench", "--model", "a.gguf", "--model-shape", "7b"}, out, err) == 2);
  CHECK(err.find("not both") != std::string::npos);
  test::TempDir dir;
  auto notgguf = dir.write("model.bin", "this is not a model");
  CHECK(run({"bench", "--model", notgguf.string(), "--no-bandwidth"}, out, err) == 2);
  CHECK(err.find(notgguf.string() + ": not a GGUF file") != std::string::npos);
}

TEST_CASE("fleet-agent bench refuses a bad layout, a layout without a kernel on the path and a bad context") {
  std::string out, err;
  CHECK(run({"bench", "--layout", "4x4", "--no-bandwidth"}, out, err) == 2);
  CHECK(err.find("--layout must be rows, q4_0_4x4, q4_0_4x8 or q4_0_8x8, got '4x4'") != std::string::npos);
  err.clear();
  // 8x8 has no neon-dotprod kernel and 4x4 none on x86: one of the two is refused on any CPU.
  const int a = run({"bench", "--layout", "q4_0_4x4", "--path", "avx2", "--no-bandwidth"}, out, err);
  const int b = run({"bench", "--layout", "q4_0_8x8", "--path", "neon-dotprod", "--no-bandwidth"}, out, err);
  CHECK((a == 2 || b == 2));
  CHECK(err.find("kernel") != std::string::npos);
  err.clear();
  CHECK(run({"bench", "--context", "0", "--no-bandwidth"}, out, err) == 2);
  CHECK(err.find("--context") != std::string::npos);
}

TEST_CASE("fleet-agent bench --self-test checks the dot-product paths") {
  std::string out, err;
  REQUIRE(run({"bench", "--self-test"}, out, err) == 0);
  CHECK(out.find("portable: ok") != std::string::npos);
}
