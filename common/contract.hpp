#pragma once
// The contract: what a booted kernel must show. fleetctl writes it into every bundle
// (contract.json) from the profile; fleet-agent checks the running system against it.
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace fleet {

struct Contract {
  std::optional<std::string> kernel_release;  // uname -r, LOCALVERSION included
  std::optional<long> page_size;              // bytes
  std::optional<std::string> thp;             // always | madvise | never
  std::optional<int> numa_nodes;              // exact count
  std::optional<int> numa_nodes_min;          // at least
  // NUMA from emulation, as on a Pi 5: as many nodes as the bootloader's numa=fake=N on
  // /proc/cmdline asks for; none asked (a bootloader older than 2024-12-07) is a warning.
  std::optional<bool> numa_emulation;
  std::optional<int> hz;                      // CONFIG_HZ
  std::optional<std::string> tick;            // HZ_PERIODIC | NO_HZ_IDLE | NO_HZ_FULL
  std::optional<bool> headless;               // no DRM devices, no sound cards
};

// Parses contract.json. Unknown keys are refused: a property this agent cannot check must
// not pass silently. `source` names the file in errors.
Result<Contract> parse_contract(std::string_view json_text, std::string_view source);

std::string contract_to_json(const Contract& contract);

}  // namespace fleet
