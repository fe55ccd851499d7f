#include "node-agent/bench/topology.hpp"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <ranges>
#include <charconv>
#include <set>

#include "common/fs.hpp"
#include "common/text.hpp"

using fleet::text::trim;
using fleet::text::split_words;
#include "node-agent/verify/parsers.hpp"

namespace fleet::agent::bench {

namespace {
bool to_int(std::string_view s, long long& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc{} && p == s.data() + s.size();
}
}  // namespace

Result<std::size_t> parse_cache_size(std::string_view text) {
  std::string_view t = trim(text);
  std::size_t mult = 1;
  if (!t.empty() && (t.back() == 'K' || t.back() == 'M' || t.back() == 'G')) {
    mult = t.back() == 'K' ? 1024 : t.back() == 'M' ? 1024 * 1024 : std::size_t(1) << 30;
    t.remove_suffix(1);
  }
  long long v = 0;
  if (!to_int(t, v) || v < 0) return fail(Errc::parse, "bad cache size '" + std::string(text) + "'");
  return std::size_t(v) * mult;
}

std::vector<int> spread_over_nodes(const std::vector<std::vector<int>>& node_cpus, const std::vector<int>& allowed) {
  std::set<int> ok(allowed.begin(), allowed.end());
  std::vector<std::vector<int>> per;
  for (const auto& n : node_cpus) {
    std::vector<int> c;
    for (int cpu : n) {
      if (ok.contains(cpu)) c.push_back(cpu);
    }
    if (!c.empty()) per.push_back(std::move(c));
  }
  if (per.size() <= 1) return allowed;
  std::vector<int> out;
  for (std::size_t i = 0; out.size() < allowed.size(); ++i) {
    bool any = false;
    for (const auto& c : per) {
      if (i < c.size()) {
        out.push_back(c[i]);
        any = true;
      }
    }
    if (!any) break;
  }
  // CPUs in no node (should not happen) go last.
  for (int cpu : allowed) {
    if (std::find(out.begin(), out.end(), cpu) == out.end()) out.push_back(cpu);
  }
  return out;
}

Topology observe_topology(const std::filesystem::path& root) {
  Topology t;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (root == "/" && sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int i = 0; i < CPU_SETSIZE; ++i) {
      if (CPU_ISSET(i, &set)) t.cpus.push_back(i);
    }
  } else if (auto online = fs::read_file(root / "sys/devices/system/cpu/online")) {
    if (auto l = parse_id_list(*online)) t.cpus = *l;
  }
  if (t.cpus.empty()) t.cpus = {0};
  if (auto online = fs::read_file(root / "sys/devices/system/node/online")) {
    if (auto nodes = parse_id_list(*online)) {
      for (int n : *nodes) {
        auto list = fs::read_file(root / ("sys/devices/system/node/node" + std::to_string(n)) / "cpulist");
        auto cpus = list ? parse_id_list(*list) : Result<std::vector<int>>(std::vector<int>{});
        t.node_cpus.push_back(cpus ? *cpus : std::vector<int>{});
      }
    }
  }
  if (t.node_cpus.empty()) t.node_cpus.push_back(t.cpus);
  int best_level = -1;
  for (int i = 0; i < 8; ++i) {
    auto dir = root / ("sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i));
    auto level = fs::read_file(dir / "level");
    auto size = fs::read_file(dir / "size");
    long long l = 0;
    if (!level || !size || !to_int(trim(*level), l)) continue;
    auto bytes = parse_cache_size(*size);
    if (bytes && l >= best_level) {
      best_level = int(l);
      t.llc_bytes = *bytes;
    }
  }
  if (auto mi = fs::read_file(root / "proc/meminfo")) {
    if (auto m = parse_meminfo(*mi)) t.mem_available_bytes = m->mem_available_kb * 1024;
  }
  if (auto pmd = fs::read_file(root / "sys/kernel/mm/transparent_hugepage/hpage_pmd_size")) {
    long long v = 0;
    if (to_int(trim(*pmd), v) && v > 0) t.pmd_bytes = std::size_t(v);
  }
  if (auto thp = fs::read_file(root / "sys/kernel/mm/transparent_hugepage/enabled")) {
    if (auto m = parse_thp_mode(*thp)) t.thp_mode = *m;
  }
  return t;
}

}  // namespace fleet::agent::bench
