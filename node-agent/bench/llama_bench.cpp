#include "node-agent/bench/llama_bench.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <ranges>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/process.hpp"
#include "common/text.hpp"

namespace fleet::agent::bench {

namespace {

template <class T>
std::optional<T> field(const nlohmann::json& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return std::nullopt;
  if constexpr (std::is_same_v<T, std::string>) {
    if (it->is_string()) return it->get<std::string>();
  } else if constexpr (std::is_floating_point_v<T>) {
    if (it->is_number()) return it->get<T>();
  } else {
    // A count out of T's range is absent: converting it would wrap, or for a JSON number with
    // a fraction or exponent be undefined ("n_gen": 1e300, found by tests/fuzz/llama_bench_fuzz).
    if (it->is_number_unsigned()) {
      if (const auto u = it->get<std::uint64_t>(); std::in_range<T>(u)) return T(u);
    } else if (it->is_number_integer()) {
      if (const auto i = it->get<std::int64_t>(); std::in_range<T>(i)) return T(i);
    } else if (it->is_number_float()) {
      const double d = it->get<double>();
      // [min, max + 1) in doubles: both bounds are powers of two (or 0), so exact.
      if (d >= double(std::numeric_limits<T>::min()) && d < double(std::numeric_limits<T>::max()) + 1.0) return T(d);
    }
  }
  return std::nullopt;
}

}  // namespace

Result<LlamaBenchResult> parse_llama_bench_json(std::string_view text, std::string_view source) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return fail(Errc::parse, std::string(source) + ": llama-bench output is not JSON");
  if (!j.is_array()) return fail(Errc::parse, std::string(source) + ": llama-bench JSON is not an array of tests");
  LlamaBenchResult r;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const auto& o = j[i];
    const std::string where = std::string(source) + ": test " + std::to_string(i);
    if (!o.is_object()) return fail(Errc::parse, where + " is not an object");
    LlamaBenchTest t;
    t.n_prompt = field<int>(o, "n_prompt").value_or(0);
    t.n_gen = field<int>(o, "n_gen").value_or(0);
    t.n_threads = field<int>(o, "n_threads").value_or(0);
    t.model_size = field<std::uint64_t>(o, "model_size").value_or(0);
    t.model_n_params = field<std::uint64_t>(o, "model_n_params").value_or(0);
    // A commit names the build in the agent's kept figures: a short word, or none.
    t.build_commit = field<std::string>(o, "build_commit").value_or("");
    if (t.build_commit.size() > 40 || !std::ranges::all_of(t.build_commit, [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
        })) {
      t.build_commit.clear();
    }
    t.model_type = field<std::string>(o, "model_type").value_or("");
    if (auto s = o.find("samples_ts"); s != o.end() && s->is_array()) {
      for (const auto& v : *s) {
        if (v.is_number()) t.samples_ts.push_back(v.get<double>());
      }
    }
    auto avg = field<double>(o, "avg_ts");
    auto sd = field<double>(o, "stddev_ts");
    if (!avg && !t.samples_ts.empty()) {
      avg = std::accumulate(t.samples_ts.begin(), t.samples_ts.end(), 0.0) / double(t.samples_ts.size());
    }
    if (!sd && t.samples_ts.size() > 1) {
      double m = *avg, ss = 0;
      for (double v : t.samples_ts) ss += (v - m) * (v - m);
      sd = std::sqrt(ss / double(t.samples_ts.size() - 1));
    }
    if (!avg || !std::isfinite(*avg) || *avg < 0) {
      r.skipped.push_back(where + ": no avg_ts or samples_ts");
      continue;
    }
    t.avg_ts = *avg;
    t.stddev_ts = sd.value_or(0);
    if (t.n_gen == 0 && t.n_prompt > 0 && !r.prompt) r.prompt = t;
    if (t.n_prompt == 0 && t.n_gen > 0 && !r.generation) r.generation = t;
    r.tests.push_back(std::move(t));
  }
  return r;
}

std::vector<std::string> llama_bench_argv(const LlamaBenchOptions& o) {
  std::vector<std::string> argv = {o.binary.string(), "-m", o.model.string(), "-p", std::to_string(o.prompt),
                                   "-n", std::to_string(o.gen), "-r", std::to_string(o.repetitions)};
  if (o.threads > 0) {
    argv.push_back("-t");
    argv.push_back(std::to_string(o.threads));
  }
  argv.push_back("-o");
  argv.push_back("json");
  return argv;
}

std::optional<std::filesystem::path> find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) == 0) return std::filesystem::path(name);
    return std::nullopt;
  }
  const char* env = std::getenv("PATH");
  std::string_view path = env ? env : "/usr/local/bin:/usr/bin:/bin";
  for (auto part : std::views::split(path, ':')) {
    std::string_view dir(part.begin(), part.end());
    if (dir.empty()) continue;
    auto p = std::filesystem::path(dir) / name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return std::nullopt;
}

std::string llama_bench_identity(const std::filesystem::path& binary) {
  auto digest = hash::sha256_file(binary);
  return "llama-bench " + binary.string() +
         (digest ? ", sha256 " + digest->substr(0, 16) : ", unreadable: " + digest.error().message);
}

Result<LlamaBenchResult> run_llama_bench(const LlamaBenchOptions& o) {
  auto dir = FLEET_TRY(fs::make_temp_dir("fleet-llama-bench"));
  process::Command cmd;
  cmd.argv = llama_bench_argv(o);
  cmd.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(o.timeout);
  cmd.stdout_file = dir / "out.json";
  std::string tail;  // the last lines of its stderr, for an error
  auto outcome = process::run(cmd, [&](std::string_view line) {
    tail += std::string(line) + "\n";
    if (tail.size() > 2000) tail.erase(0, tail.size() - 2000);
  });
  auto json = fs::read_file(dir / "out.json");
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (!outcome) return std::unexpected(outcome.error());
  if (outcome->timed_out) {
    return fail(Errc::timeout, "llama-bench ran longer than " + std::to_string(o.timeout.count()) + " s: " +
                                   process::render(cmd.argv));
  }
  if (outcome->exit_code != 0) {
    return fail(Errc::process_failed, process::render(cmd.argv) + " exited with " +
                                          std::to_string(outcome->exit_code) + ": " + std::string(text::trim(tail)));
  }
  if (!json) return std::unexpected(json.error());
  return parse_llama_bench_json(*json, "llama-bench -o json");
}

}  // namespace fleet::agent::bench
