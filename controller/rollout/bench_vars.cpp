#include "controller/rollout/bench_vars.hpp"

#include <charconv>
#include <cmath>

#include "common/model_shape.hpp"
#include "common/text.hpp"

namespace fleet::rollout {

Result<std::vector<std::string>> bench_install_args(const inventory::Host& h) {
  auto var = [&](const char* name) -> std::string {
    auto it = h.vars.find(name);
    return it == h.vars.end() ? std::string() : it->second;
  };
  auto bad = [&](const char* name, const std::string& value, const std::string& want) {
    return fail(Errc::invalid_input, "board " + h.name + " (" + h.where + "): " + name + " '" + value + "' " + want);
  };
  const std::string shape = var("fleet_bench");
  const std::string model = var("fleet_model");
  const std::string threads = var("fleet_bench_threads");
  const std::string min = var("fleet_min_tokens_per_s");
  const std::string max_seconds = var("fleet_bench_max_seconds");
  const std::string max_regression = var("fleet_max_regression");
  if (shape == "none" || shape == "off") {
    if (!min.empty()) {
      return bad("fleet_min_tokens_per_s", min, "needs a measurement, and fleet_bench is '" + shape + "'");
    }
    if (!max_regression.empty()) {
      return bad("fleet_max_regression", max_regression, "needs a measurement, and fleet_bench is '" + shape + "'");
    }
    return std::vector<std::string>{};
  }
  std::vector<std::string> args;
  if (!shape.empty() && shape != "auto" && !shape_named(shape)) {
    std::string names;
    for (const auto& s : known_shapes()) names += s.name + ", ";
    return bad("fleet_bench", shape, "is not a model shape (" + names + "auto or none)");
  }
  if (!model.empty()) {
    if (!model.starts_with("/")) return bad("fleet_model", model, "must be an absolute path on the board");
    // A word of the install command run on the board.
    if (auto why = text::command_word_problem(model); !why.empty()) return bad("fleet_model", model, why);
    args.insert(args.end(), {"--model", model});
  } else {
    args.insert(args.end(), {"--bench", shape.empty() ? "auto" : shape});
  }
  if (!threads.empty()) {
    int n = 0;
    auto [p, ec] = std::from_chars(threads.data(), threads.data() + threads.size(), n);
    if (ec != std::errc{} || p != threads.data() + threads.size() || n < 1 || n > 1024) {
      return bad("fleet_bench_threads", threads, "is not a thread count from 1 to 1024");
    }
    args.insert(args.end(), {"--bench-threads", threads});
  }
  if (!min.empty()) {
    double v = 0;
    auto [p, ec] = std::from_chars(min.data(), min.data() + min.size(), v);
    if (ec != std::errc{} || p != min.data() + min.size() || !std::isfinite(v) || v < 0 || v > 1e6) {
      return bad("fleet_min_tokens_per_s", min, "is not a rate such as 2.5 (tokens per second)");
    }
    args.insert(args.end(), {"--min-tokens-per-s", min});
  }
  if (!max_seconds.empty()) {
    int n = 0;
    auto [p, ec] = std::from_chars(max_seconds.data(), max_seconds.data() + max_seconds.size(), n);
    if (ec != std::errc{} || p != max_seconds.data() + max_seconds.size() || n < 1 || n > 240) {
      return bad("fleet_bench_max_seconds", max_seconds, "is not a number of seconds from 1 to 240");
    }
    args.insert(args.end(), {"--bench-max-seconds", max_seconds});
  }
  if (!max_regression.empty()) {
    std::string v = max_regression;
    if (v.ends_with('%')) v.pop_back();
    double pct = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), pct);
    if (v.empty() || ec != std::errc{} || p != v.data() + v.size() || !std::isfinite(pct) || pct <= 0 || pct >= 100) {
      return bad("fleet_max_regression", max_regression, "is not a percentage above 0 and below 100 such as 3%");
    }
    args.insert(args.end(), {"--max-regression", v});
  }
  return args;
}

}  // namespace fleet::rollout
