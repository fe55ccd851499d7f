#pragma once
// Inventories built to make a loader do exponential work, for the inventory tests and
// bench/inventory_load (header-only: the bench links no test support).
#include <string>

namespace fleet::test {

// A "billion laughs" inventory: each level's group holds ten aliases of the level below under
// `children`, so the document a walk sees grows 10x per level and the text by one line.
inline std::string alias_bomb(int levels) {
  std::string t = "all:\n  hosts:\n    pi-1:\n  children:\n    l0: &l0\n      hosts:\n        pi-1:\n";
  for (int i = 1; i <= levels; ++i) {
    std::string n = std::to_string(i), prev = std::to_string(i - 1);
    t += "    l" + n + ": &l" + n + "\n      children: {";
    for (char c = 'a'; c < 'a' + 10; ++c) t += std::string(c == 'a' ? "" : ", ") + "l" + n + c + ": *l" + prev;
    t += "}\n";
  }
  return t;
}

}  // namespace fleet::test
