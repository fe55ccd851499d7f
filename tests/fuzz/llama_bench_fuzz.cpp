// parse_llama_bench_json (node-agent/bench): whatever llama-bench prints (any build), a
// Result and no crash; an error names the output; every rate kept is finite and >= 0, and
// the prompt and generation tests are what their names say.
#include <cmath>

#include "node-agent/bench/llama_bench.hpp"
#include "tests/fuzz/fuzz.hpp"

using namespace fleet::agent::bench;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::string_view k_source = "fuzz/llama-bench.json";
  auto r = parse_llama_bench_json(fleet::fuzz::as_text(data, size), k_source);
  if (!r) {
    fleet::fuzz::names_source(r.error().message, k_source);
    return 0;
  }
  for (const auto& t : r->tests) {
    if (!std::isfinite(t.avg_ts) || t.avg_ts < 0) fleet::fuzz::broken("a rate that is not finite and >= 0", "");
  }
  if (r->prompt && (r->prompt->n_gen != 0 || r->prompt->n_prompt <= 0))
    fleet::fuzz::broken("a prompt test that is not", "");
  if (r->generation && (r->generation->n_prompt != 0 || r->generation->n_gen <= 0)) {
    fleet::fuzz::broken("a generation test that is not", "");
  }
  return 0;
}
