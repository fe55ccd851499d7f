#pragma once
// Kconfig's .config format, shared by fleetctl (checking a build) and fleet-agent (reading
// /proc/config.gz). Pure: text in, entries out.
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace fleet::kconfig {

struct Entry {
  std::string symbol;  // without the CONFIG_ prefix
  std::string value;   // "y", "m", "n" (for "# CONFIG_X is not set"), a number, or a quoted string
  int line = 0;        // 1-based line in the text
};

// Reads "CONFIG_X=value" and "# CONFIG_X is not set" lines; everything else is ignored.
std::vector<Entry> parse(std::string_view text);

// Symbol -> value; a later line wins, as in Kconfig itself.
std::map<std::string, std::string> to_map(const std::vector<Entry>& entries);

// The value of a symbol in a map, "n" when it is absent (Kconfig writes nothing for a
// symbol whose dependencies are unmet).
std::string value_of(const std::map<std::string, std::string>& config, const std::string& symbol);

}  // namespace fleet::kconfig
