#pragma once
// Checks a final .config against every symbol the profile's fragments ask for, and explains
// a dropped option by the Kconfig dependencies that kept it out. Pure: texts in, findings out.
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/contract.hpp"
#include "common/error.hpp"

namespace fleet::kernel {

struct Requirement {
  std::string symbol;   // without CONFIG_
  std::string value;    // y, m, n, a number or a quoted string
  std::string origin;   // "fragments/memory.config:8"
};

// Every CONFIG_ line of a fragment, later fragments overriding earlier ones.
std::vector<Requirement> requirements(const std::vector<std::pair<std::string, std::string>>& named_fragments);

// What Kconfig says about a symbol: where it is defined and what it depends on.
struct SymbolInfo {
  std::string file;
  int line = 0;
  std::vector<std::string> depends;  // "depends on" expressions, enclosing if/choice included
  std::vector<std::string> selects{};   // symbols it selects or implies
  std::vector<std::string> defaults{};  // "default" / "def_bool" expressions, conditions included
};
using KconfigIndex = std::map<std::string, SymbolInfo>;

// Adds the config/menuconfig definitions of one Kconfig file to the index.
void index_kconfig(std::string_view text, const std::string& file, KconfigIndex& index);

// Indexes every Kconfig file of a source tree that matters for arm64 (other arches' folders
// are skipped, so an x86-only symbol counts as "not in this tree").
KconfigIndex index_tree(const std::filesystem::path& source_dir);

struct Finding {
  Requirement wanted;
  std::string actual;       // value in the final .config ("n" when absent)
  bool optional_missing;    // optional symbol this tree does not define: a note, not an error
  std::string explanation;  // for people
};

// Compares requirements with the final .config. `index` may be empty; then findings carry
// no dependency explanation.
std::vector<Finding> check_config(const std::vector<Requirement>& wanted,
                                  const std::map<std::string, std::string>& config,
                                  const std::set<std::string>& optional_symbols, const KconfigIndex& index);

// `fleetctl kernel diff`: how two final .configs differ, and why. A change is `requested`
// when a fragment of the second asks for that value; `follows` when Kconfig ties it to another
// changed symbol (one selects or implies it, or its depends/if/default names one); else
// `unexplained`: a difference nothing in the fragments accounts for.
struct ConfigChange {
  enum class Why { requested, follows, unexplained };
  std::string symbol;
  std::string before;  // "n" when absent
  std::string after;
  Why why = Why::unexplained;
  std::string because;  // the fragment line, or the Kconfig tie ("selected by VIRTIO_PCI")
};
const char* why_name(ConfigChange::Why why);
// `requested_before` explains a change by its old value (A asked for it), `requested_after`
// by its new one (B asks for it).
std::vector<ConfigChange> diff_configs(const std::map<std::string, std::string>& before,
                                       const std::map<std::string, std::string>& after,
                                       const std::vector<Requirement>& requested_before,
                                       const std::vector<Requirement>& requested_after, const KconfigIndex& index);
// The symbols A's fragments ask for whose final value differs between A's .config and B's
// (an optional symbol A's tree lacks is "n" in both: no change).
std::vector<std::string> requested_changed(const std::vector<Requirement>& requested,
                                           const std::map<std::string, std::string>& before,
                                           const std::map<std::string, std::string>& after);
// Symbols named in a Kconfig expression ("BLK_DEV && (VIRTIO || !X)"). Pure.
std::vector<std::string> symbols_in(const std::string& expr);

// Does the .config deliver what the contract promises? (page size, THP mode, HZ, tick mode)
std::vector<std::string> contract_conflicts(const Contract& contract, const std::map<std::string, std::string>& config);

}  // namespace fleet::kernel
