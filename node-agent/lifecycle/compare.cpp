#include "node-agent/lifecycle/compare.hpp"

#include <cmath>
#include <cstdio>

namespace fleet::agent {
namespace {

bool by_llama_bench(const Measurement& m) { return m.key.starts_with("llama-bench"); }

// The relative standard error of the figure, weighted for how well its spread is known (see
// the header): the probe's median of `tokens` times, llama-bench's mean of its repetitions.
double median_error(const Measurement& m) {
  if (m.tokens <= 0) return 0;
  if (by_llama_bench(m)) return 2.2 * m.spread / std::sqrt(double(m.tokens));
  return 0.93 * m.spread / std::sqrt(double(m.tokens));
}

// Below this many tokens (or repetitions) a spread is not known well enough to gate on.
constexpr int k_min_probe_tokens = 8;

std::string percent(double fraction, bool sign) {
  char buf[32];
  std::snprintf(buf, sizeof buf, sign ? "%+.1f%%" : "%.1f%%", 100 * fraction);
  return buf;
}

}  // namespace

Comparison compare(const Measurement& base, const Measurement& trial) {
  Comparison c;
  if (base.tokens_per_s > 0) c.change = (trial.tokens_per_s - base.tokens_per_s) / base.tokens_per_s;
  c.noise = 3 * std::hypot(median_error(base), median_error(trial));
  return c;
}

std::string change_text(const Measurement& base, const Measurement& trial) {
  char rates[64];
  std::snprintf(rates, sizeof rates, " (%.2f -> %.2f t/s)", base.tokens_per_s, trial.tokens_per_s);
  return percent(compare(base, trial).change, true) + " vs " + base.release + rates;
}

std::string percent_text(double fraction) { return percent(fraction, false); }

Check not_gated(double max_regression, const std::string& why) {
  return Check{"tokens_per_s_change", ">= -" + percent(max_regression, false), "not compared", true, why,
               "the regression gate could not act on this board: " + why};
}

Check regression_check(const Measurement& base, const Measurement& trial, double max_regression) {
  if (base.key != trial.key) {
    return not_gated(max_regression, "measured differently: the committed kernel by " + base.key + ", the trial by " + trial.key);
  }
  // The key names what measured; the spec what was asked and how this agent would measure it
  // (which llama-bench binary, for one). A baseline kept from before specs were recorded has
  // none, and is judged by its key alone.
  if (!base.spec.empty() && !trial.spec.empty() && base.spec != trial.spec) {
    return not_gated(max_regression, "measured differently: the committed kernel as " + base.spec + ", the trial as " + trial.spec);
  }
  if (base.tokens_per_s <= 0 || trial.tokens_per_s <= 0) return not_gated(max_regression, "a figure of 0 tokens/s");
  for (const Measurement* m : {&base, &trial}) {
    if (m->cut_short) return not_gated(max_regression, m->release + "'s measurement was cut at its time bound");
    if (!by_llama_bench(*m) && (m->tokens < k_min_probe_tokens || m->spread <= 0)) {
      return not_gated(max_regression, m->release + "'s measurement timed " + std::to_string(m->tokens) +
                                           " tokens, too few for a spread");
    }
  }
  const Comparison c = compare(base, trial);
  Check k;
  k.property = "tokens_per_s_change";
  k.expected = ">= -" + percent(max_regression, false);
  k.actual = change_text(base, trial);
  k.pass = c.change >= -(max_regression + c.noise);
  k.detail = "noise " + percent(c.noise, false) + " (three standard errors, from " + std::to_string(base.tokens) +
             " and " + std::to_string(trial.tokens) + " tokens timed, spreads " + percent(base.spread, false) +
             " and " + percent(trial.spread, false) + ")";
  if (!k.pass) {
    k.detail = "slower than the committed kernel by more than " + percent(max_regression, false) + " and the " + k.detail;
  } else if (c.change < -max_regression) {
    k.warning = "slower by " + percent(-c.change, false) + ", within the noise of the two measurements: measure longer "
                "(more tokens) to tell";
  }
  return k;
}

}  // namespace fleet::agent
