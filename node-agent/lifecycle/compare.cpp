#include "node-agent/lifecycle/compare.hpp"

#include <cmath>
#include <cstdio>

namespace fleet::agent {
namespace {

// The relative standard error of a median of `tokens` times with this spread (see the header).
double median_error(const Measurement& m) {
  if (m.tokens <= 0) return 0;
  return 0.93 * m.spread / std::sqrt(double(m.tokens));
}

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

Check regression_check(const Measurement& base, const Measurement& trial, double max_regression) {
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
