#include "common/kconfig.hpp"
#include "common/text.hpp"

#include <cctype>

namespace fleet::kconfig {
namespace {

using text::trim;

bool is_symbol_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

}  // namespace

std::vector<Entry> parse(std::string_view text) {
  std::vector<Entry> out;
  int line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    constexpr std::string_view k_prefix = "CONFIG_";
    constexpr std::string_view k_not_set_prefix = "# CONFIG_";
    constexpr std::string_view k_not_set_suffix = " is not set";
    if (line.starts_with(k_prefix)) {
      size_t eq = line.find('=');
      if (eq == std::string_view::npos) continue;
      std::string_view sym = line.substr(k_prefix.size(), eq - k_prefix.size());
      bool ok = !sym.empty();
      for (char c : sym) ok = ok && is_symbol_char(c);
      if (!ok) continue;
      out.push_back({std::string(sym), std::string(trim(line.substr(eq + 1))), line_no});
    } else if (line.starts_with(k_not_set_prefix) && line.ends_with(k_not_set_suffix)) {
      std::string_view sym =
          line.substr(k_not_set_prefix.size(), line.size() - k_not_set_prefix.size() - k_not_set_suffix.size());
      bool ok = !sym.empty();
      for (char c : sym) ok = ok && is_symbol_char(c);
      if (ok) out.push_back({std::string(sym), "n", line_no});
    }
  }
  return out;
}

std::map<std::string, std::string> to_map(const std::vector<Entry>& entries) {
  std::map<std::string, std::string> m;
  for (const auto& e : entries) m[e.symbol] = e.value;
  return m;
}

std::string value_of(const std::map<std::string, std::string>& config, const std::string& symbol) {
  auto it = config.find(symbol);
  return it == config.end() ? "n" : it->second;
}

}  // namespace fleet::kconfig
