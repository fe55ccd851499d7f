// parse_contract (common/contract): whatever a bundle's contract.json holds, a Result and no
// crash; an error names the file; an accepted contract survives contract_to_json, and each
// number it accepted is the number the file holds (not one wrapped into an int).
#include <nlohmann/json.hpp>

#include "common/contract.hpp"
#include "tests/fuzz/fuzz.hpp"

using namespace fleet;

namespace {

bool same(const Contract& a, const Contract& b) {
  return a.kernel_release == b.kernel_release && a.page_size == b.page_size && a.thp == b.thp &&
         a.numa_nodes == b.numa_nodes && a.numa_nodes_min == b.numa_nodes_min && a.numa_emulation == b.numa_emulation && a.hz == b.hz && a.tick == b.tick &&
         a.headless == b.headless;
}

// The number the input holds under key, against the one the parser kept.
template <class T>
void kept(const nlohmann::json& j, const char* key, const std::optional<T>& value, std::string_view text) {
  if (!value) return;
  const auto& v = j.at(key);
  const bool equal = v.is_number_unsigned() ? *value >= 0 && std::uint64_t(*value) == v.get<std::uint64_t>()
                                            : std::int64_t(*value) == v.get<std::int64_t>();
  if (!equal) fuzz::broken(std::string("contract field '") + key + "' accepted as another number", text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::string_view k_source = "fuzz/contract.json";
  const std::string_view text = fuzz::as_text(data, size);
  auto c = parse_contract(text, k_source);
  if (!c) {
    fuzz::names_source(c.error().message, k_source);
    return 0;
  }
  const auto j = nlohmann::json::parse(text);  // it parsed above, so it parses here
  kept(j, "page_size", c->page_size, text);
  kept(j, "numa_nodes", c->numa_nodes, text);
  kept(j, "numa_nodes_min", c->numa_nodes_min, text);
  kept(j, "hz", c->hz, text);
  const std::string out = contract_to_json(*c);
  auto again = parse_contract(out, k_source);
  if (!again) fuzz::broken("contract_to_json wrote a contract parse_contract refuses", out + again.error().message);
  if (!same(*c, *again)) fuzz::broken("a contract changed through contract_to_json", out);
  return 0;
}
