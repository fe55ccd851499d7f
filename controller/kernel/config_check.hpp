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

// Does the .config deliver what the contract promises? (page size, THP mode, HZ, tick mode)
std::vector<std::string> contract_conflicts(const Contract& contract, const std::map<std::string, std::string>& config);

}  // namespace fleet::kernel
