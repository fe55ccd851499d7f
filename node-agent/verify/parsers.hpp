#pragma once
// Pure parsers for what a running kernel shows in /proc and /sys. Text in, values out; the
// files are read elsewhere (observe.cpp), so every branch here has a unit test.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace fleet::agent {

// /sys/kernel/mm/transparent_hugepage/enabled: "always [madvise] never" -> "madvise".
Result<std::string> parse_thp_mode(std::string_view text);

// The kernel's list format (cpulist, node/online): "0-3,5,7-8" -> {0,1,2,3,5,7,8}; ""
// -> {}. Anything else, or an id above 65535, is Errc::parse naming the bad range.
Result<std::vector<int>> parse_id_list(std::string_view text);

// /sys/devices/system/node/online: "0-1", "0,2-3", "0" -> number of nodes.
Result<int> count_node_list(std::string_view text);

struct Meminfo {
  std::uint64_t mem_total_kb = 0;
  std::uint64_t mem_available_kb = 0;
};
// /proc/meminfo: MemTotal and MemAvailable (kB).
Result<Meminfo> parse_meminfo(std::string_view text);

// /proc/self/smaps: the first "KernelPageSize: N kB" line, in bytes.
Result<long> parse_smaps_page_size(std::string_view text);

// CONFIG_HZ from a kernel config (text of /proc/config.gz).
Result<int> config_hz(const std::map<std::string, std::string>& config);

// The tick mode a kernel config selects: "NO_HZ_FULL", "NO_HZ_IDLE" or "HZ_PERIODIC".
Result<std::string> config_tick_mode(const std::map<std::string, std::string>& config);

}  // namespace fleet::agent
