#pragma once
// The trial kernel's tokens/s against the committed kernel's, and the regression gate
// (`fleet_max_regression`). Pure.
//
// How much of a difference is noise: the probe reports the median of n token times and their
// spread s (interquartile range over the median). For token times spread normally with
// deviation sigma, the median's standard error is 1.2533 sigma / sqrt(n) and the
// interquartile range is 1.349 sigma, so the median's relative standard error is about
// 0.93 s / sqrt(n). llama-bench reports the mean and deviation of its 3 repetitions: the
// mean's error is s / sqrt(3), and with so few the deviation itself is uncertain, so its
// errors count 2.2 times (6.6 instead of 3: Student's t at 4 degrees of freedom for the same
// one-sided rate). The change between two measurements has the root of the sum of both
// squares; the gate forgives three of those (a good kernel is rolled back by chance about
// once in 740 boards), on top of the regression the board class allows. On a Pi 5 the 1b
// shape times about 29 tokens in 2 s: at a 5% spread that is 3.7% of noise, so a 3% gate
// acts from about 6.7% slower. Telling a 3% regression apart with 1% of noise takes about
// 390 tokens at that spread (fleet-agent bench --tokens 400, or a smaller shape, which times
// hundreds of tokens in the same 2 s). What varies between boots and not within one
// (temperature, the clock the firmware chose) is not in the spread: that is what the
// allowed regression is for, and why it should not be below a few percent.
#include <string>

#include "node-agent/lifecycle/state.hpp"
#include "node-agent/verify/verify.hpp"

namespace fleet::agent {

struct Comparison {
  double change = 0;  // (trial - base) / base: 0.079 is 7.9% faster
  double noise = 0;   // three standard errors of that change, from both spreads
};

Comparison compare(const Measurement& base, const Measurement& trial);

// "+7.9% vs 6.12.49-v8-16k (5.25 -> 5.67 t/s)"
std::string change_text(const Measurement& base, const Measurement& trial);

// The check a gated board class adds: `tokens_per_s_change`, failing when the trial kernel is
// slower than the committed one by more than `max_regression` (a fraction) plus the noise.
// It does not judge (passes with a warning) two figures measured differently (another shape,
// llama-bench against the probe), a figure its bound cut short, or one without a spread.
Check regression_check(const Measurement& base, const Measurement& trial, double max_regression);

// The gate's check when it cannot act: passes, says why in its warning.
Check not_gated(double max_regression, const std::string& why);

// "3.0%" for 0.03.
std::string percent_text(double fraction);

}  // namespace fleet::agent
