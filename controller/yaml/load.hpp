#pragma once
// Loading YAML that someone handed us (inventories, profiles), with guards yaml-cpp lacks.
// One scan of the parser's events runs before YAML::Load builds a tree, in time linear in the
// text, and refuses:
//  - a document that expands past a budget of nodes or levels. YAML::Load shares an aliased
//    node, so the tree is small, but every walk of it expands each alias again: ten aliases
//    per level made a 1 KB inventory cost 10^levels visits (bench/inventory_load). The scan
//    counts the document as a walk sees it, an alias as the nodes of its anchor each time it
//    is reached, and stops at the first node past the budget, before any walk;
//  - an alias inside its own anchor (`&a [*a]`): YAML::Load makes it a cycle, a walk never ends;
//  - a key that is a list or a map, which nothing we read has;
//  - a key written twice in one mapping. yaml-cpp keeps both pairs (iteration yields both,
//    node["key"] finds the first), so which one wins depends on how the reader looks it up.
// yaml-cpp 0.7 has its own guard at 500 levels ("bad file", no stack overflow even with a
// 256 KiB stack); the budget's depth is far below it, and its message says what is wrong.
#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <span>
#include <string_view>

#include "common/error.hpp"
#include "controller/yaml/where.hpp"

namespace fleet::yaml {

// Nodes written out in the text are not budgeted: a walk of them costs what reading the file
// cost. Nodes an alias brings in (again, each time it is reached) are, since they cost nothing
// to write.
struct Budget {
  std::size_t max_alias_nodes;
  int max_depth;  // levels, the top node's is 1, aliases expanded
};

// Anchors in an inventory share vars or a group's hosts: tens of nodes each, a few levels. A
// kernel profile is about 60 nodes, 4 levels deep. The budget leaves ample room and still
// ends any walk in milliseconds.
inline constexpr Budget k_budget{10000, 64};

// How errors name a repeated key, by the key whose value the mapping is ("hosts" -> "host
// 'pi-1' is defined twice"). The document's top mapping has parent key "".
struct KeyNoun {
  std::string_view parent_key;
  std::string_view noun;
};

struct LoadOptions {
  Budget budget = k_budget;
  std::string_view key_noun = "key";        // a repeated key in any other mapping
  std::span<const KeyNoun> key_nouns = {};  // nouns for the values of particular keys
};

// The first document of `text` as a node; Errc::parse for text that is not YAML,
// Errc::invalid_input for what the scan refuses, each naming where.file:line:col.
[[nodiscard]] Result<YAML::Node> load(std::string_view text, const Where& where, const LoadOptions& options = {});

}  // namespace fleet::yaml
