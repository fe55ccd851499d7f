#include "node-agent/verify/parsers.hpp"

#include <cctype>
#include <charconv>
#include <limits>
#include <vector>

#include "common/kconfig.hpp"
#include "common/text.hpp"

namespace fleet::agent {
namespace {

using text::trim;

template <class T>
std::optional<T> to_number(std::string_view s) {
  s = trim(s);
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

Result<std::string> parse_thp_mode(std::string_view text) {
  text = trim(text);
  size_t open = text.find('[');
  size_t close = text.find(']', open == std::string_view::npos ? 0 : open);
  if (open == std::string_view::npos || close == std::string_view::npos || close == open + 1) {
    return fail(Errc::parse, "THP mode: no [selected] mode in '" + std::string(text) + "'");
  }
  return std::string(text.substr(open + 1, close - open - 1));
}

Result<std::vector<int>> parse_id_list(std::string_view text) {
  text = trim(text);
  std::vector<int> out;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view part = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    size_t dash = part.find('-');
    auto first = to_number<int>(part.substr(0, dash));
    auto last = dash == std::string_view::npos ? first : to_number<int>(part.substr(dash + 1));
    if (!first || !last || *first < 0 || *last < *first || *last > 65535) {
      return fail(Errc::parse, "bad range '" + std::string(part) + "'");
    }
    for (int i = *first; i <= *last; ++i) out.push_back(i);
  }
  return out;
}

Result<int> count_node_list(std::string_view text) {
  if (trim(text).empty()) return fail(Errc::parse, "node list is empty");
  auto nodes = parse_id_list(text);
  if (!nodes) return std::unexpected(nodes.error().wrap("node list"));
  return int(nodes->size());
}

Result<Meminfo> parse_meminfo(std::string_view text) {
  std::optional<std::uint64_t> total, available;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon);
    std::string_view rest = trim(line.substr(colon + 1));
    if (rest.ends_with("kB")) rest = trim(rest.substr(0, rest.size() - 2));
    if (key == "MemTotal") total = to_number<std::uint64_t>(rest);
    if (key == "MemAvailable") available = to_number<std::uint64_t>(rest);
  }
  if (!total) return fail(Errc::parse, "meminfo: no MemTotal line");
  if (!available) return fail(Errc::parse, "meminfo: no MemAvailable line");
  return Meminfo{*total, *available};
}

Result<long> parse_smaps_page_size(std::string_view text) {
  constexpr std::string_view k_key = "KernelPageSize:";
  size_t at = text.find(k_key);
  if (at == std::string_view::npos) return fail(Errc::parse, "smaps: no KernelPageSize line");
  std::string_view rest = text.substr(at + k_key.size());
  rest = trim(rest.substr(0, rest.find('\n')));
  if (!rest.ends_with("kB")) return fail(Errc::parse, "smaps: KernelPageSize without kB unit");
  auto kb = to_number<long>(rest.substr(0, rest.size() - 2));
  // Past LONG_MAX / 1024 the size in bytes would overflow (tests/fuzz/proc_fuzz).
  if (!kb || *kb <= 0 || *kb > std::numeric_limits<long>::max() / 1024) {
    return fail(Errc::parse, "smaps: bad KernelPageSize '" + std::string(rest) + "'");
  }
  return *kb * 1024;
}

Result<int> config_hz(const std::map<std::string, std::string>& config) {
  auto it = config.find("HZ");
  if (it == config.end()) return fail(Errc::not_found, "kernel config has no CONFIG_HZ");
  auto hz = to_number<int>(it->second);
  if (!hz || *hz <= 0) return fail(Errc::parse, "kernel config: bad CONFIG_HZ=" + it->second);
  return *hz;
}

Result<std::string> config_tick_mode(const std::map<std::string, std::string>& config) {
  // The three members of the "Timer tick handling" choice in kernel/time/Kconfig.
  if (kconfig::value_of(config, "NO_HZ_FULL") == "y") return std::string("NO_HZ_FULL");
  if (kconfig::value_of(config, "NO_HZ_IDLE") == "y") return std::string("NO_HZ_IDLE");
  if (kconfig::value_of(config, "HZ_PERIODIC") == "y") return std::string("HZ_PERIODIC");
  return fail(Errc::not_found, "kernel config selects no tick mode (HZ_PERIODIC, NO_HZ_IDLE, NO_HZ_FULL)");
}

}  // namespace fleet::agent
