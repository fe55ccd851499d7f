// The agent's parsers of /proc and /sys (node-agent/verify/parsers) and of /proc/config.gz
// (common/kconfig), each given the same text: a Result and no crash; what they accept is in
// range (ids 0-65535, a positive page size and CONFIG_HZ, a tick mode of the three).
#include "common/kconfig.hpp"
#include "node-agent/verify/parsers.hpp"
#include "tests/fuzz/fuzz.hpp"

using namespace fleet;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  if (auto thp = agent::parse_thp_mode(text); thp && thp->empty()) fuzz::broken("an empty THP mode", text);
  if (auto ids = agent::parse_id_list(text)) {
    for (int id : *ids) {
      if (id < 0 || id > 65535) fuzz::broken("an id outside 0-65535", text);
    }
    auto n = agent::count_node_list(text);
    if (n && std::size_t(*n) != ids->size()) fuzz::broken("count_node_list and parse_id_list disagree", text);
  }
  if (auto m = agent::parse_meminfo(text); !m) fuzz::names_source(m.error().message, "meminfo");
  if (auto page = agent::parse_smaps_page_size(text); page && *page <= 0) fuzz::broken("a page size <= 0", text);

  const auto entries = kconfig::parse(text);
  for (const auto& e : entries) {
    if (e.symbol.empty() || e.line < 1) fuzz::broken("a .config entry without symbol or line", e.symbol);
  }
  const auto config = kconfig::to_map(entries);
  if (auto hz = agent::config_hz(config); hz && *hz <= 0) fuzz::broken("CONFIG_HZ <= 0", text);
  if (auto tick = agent::config_tick_mode(config);
      tick && *tick != "NO_HZ_FULL" && *tick != "NO_HZ_IDLE" && *tick != "HZ_PERIODIC") {
    fuzz::broken("an unknown tick mode", *tick);
  }
  return 0;
}
