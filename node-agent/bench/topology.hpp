#pragma once
// What the benchmarks need to know about the machine: CPUs, NUMA nodes and their CPUs, the
// last-level cache, available memory, the THP mode and the PMD huge page size. Parsers are
// pure; observe_topology() reads /sys and /proc under a root.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace fleet::agent::bench {

struct Topology {
  std::vector<int> cpus;                    // CPUs this process may run on
  std::vector<std::vector<int>> node_cpus;  // per online NUMA node; one entry when no NUMA
  std::size_t llc_bytes = 0;                // largest cache level of cpu0 (0: unknown)
  std::uint64_t mem_available_bytes = 0;
  std::size_t pmd_bytes = 2u << 20;         // THP PMD size: 2 MiB with 4K pages, 32 MiB with 16K
  std::string thp_mode;                     // always | madvise | never | "" (not built)
};

// sysfs cache sizes: "491520K", "2048K", "1M", "512" -> bytes.
Result<std::size_t> parse_cache_size(std::string_view text);

// CPUs ordered so consecutive threads alternate between NUMA nodes (thread i -> result[i]),
// restricted to `allowed`. With one node: `allowed` as is.
std::vector<int> spread_over_nodes(const std::vector<std::vector<int>>& node_cpus, const std::vector<int>& allowed);

Topology observe_topology(const std::filesystem::path& root = "/");

}  // namespace fleet::agent::bench
