// parse_profile (controller/kernel): whatever a kernel profile holds, a Result and no crash;
// an error names the file; an accepted profile's contract is one the agent's parser accepts.
#include "common/contract.hpp"
#include "controller/kernel/profile.hpp"
#include "tests/fuzz/fuzz.hpp"

using namespace fleet;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::string_view k_source = "fuzz/profile.yaml";
  // No file is read while parsing: the kernel folder need not exist.
  auto p = kernel::parse_profile(fuzz::as_text(data, size), k_source, "/nonexistent/kernel");
  if (!p) {
    fuzz::names_source(p.error().message, k_source);
    return 0;
  }
  if (p->name.empty() || p->targets.empty() || p->localversion.empty()) {
    fuzz::broken("a profile accepted without name, targets or localversion", p->name);
  }
  const std::string contract = contract_to_json(p->contract);
  if (!parse_contract(contract, "contract.json")) fuzz::broken("a profile's contract the agent refuses", contract);
  if (kernel::settings_fragment(*p).empty()) fuzz::broken("an empty settings fragment", p->name);
  return 0;
}
