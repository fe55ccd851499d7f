#pragma once
// What each board measures after its trial boot passes the contract, chosen per board class
// with inventory variables (group vars make a class: pi5_8gb, pi5_16gb, ...):
//   fleet_bench             probe shape: 7b, 3b, 1b, 110m, 15m, auto (default) or none
//   fleet_model             a GGUF file on the board: the probe takes its shape, llama-bench runs it
//   fleet_bench_threads     threads (default: every CPU)
//   fleet_min_tokens_per_s  below this the verification fails and the board goes back
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
