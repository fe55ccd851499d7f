// parse_inventory (controller/inventory): whatever YAML or INI an operator gives (the source
// has no extension, so the format is detected from the content, as for a file named hosts), a Result and no
// crash or hang; an error names the file; an accepted inventory has hosts with usable ports,
// each in group "all", and the pattern "all" selects every one of them.
#include <algorithm>

#include "controller/inventory/inventory.hpp"
#include "tests/fuzz/fuzz.hpp"

using namespace fleet;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::string_view k_source = "fuzz/inventory";
  auto inv = inventory::parse_inventory(fuzz::as_text(data, size), k_source);
  if (!inv) {
    fuzz::names_source(inv.error().message, k_source);
    return 0;
  }
  for (const auto& h : inv->hosts) {
    if (h.name.empty() || h.address.empty()) fuzz::broken("a host without a name or address", h.where);
    if (h.port < 1 || h.port > 65535) fuzz::broken("a host with a port outside 1-65535", h.name);
    if (std::find(h.groups.begin(), h.groups.end(), "all") == h.groups.end()) {
      fuzz::broken("a host outside group 'all'", h.name);
    }
  }
  auto all = inventory::select(*inv, "all");
  if (!all || all->size() != inv->hosts.size()) fuzz::broken("'all' does not select every host", "");
  return 0;
}
