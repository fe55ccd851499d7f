#pragma once
// What each board measures after its trial boot passes the contract, chosen per board class
// with inventory variables (group vars make a class: pi5_8gb, pi5_16gb, ...):
//   fleet_bench             probe shape: 7b, 3b, 1b, 110m, 15m, auto (default) or none
//   fleet_model             a GGUF file on the board: the probe takes its shape, llama-bench runs it
//   fleet_bench_threads     threads (default: every CPU)
//   fleet_min_tokens_per_s  below this the verification fails and the board goes back
//   fleet_bench_max_seconds the measurement's bound at boot (default 60 s, at most 240): a slow board or a
//                           large shape is cut there, and says so
//   fleet_max_regression    e.g. 3%: a trial kernel slower than the committed one by more than
//                           that, beyond the noise of both measurements, fails and goes back
// They become `fleet-agent install` options. Pure.
#include <string>
#include <vector>

#include "common/error.hpp"
#include "controller/inventory/inventory.hpp"

namespace fleet::rollout {

// The install options for `host`; Errc::invalid_input naming the board, where it is
// defined and the variable when a value is wrong.
Result<std::vector<std::string>> bench_install_args(const inventory::Host& host);

}  // namespace fleet::rollout
