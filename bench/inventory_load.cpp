// Time to load (or refuse) inventories built to make a loader do exponential work:
//   alias    a "billion laughs" inventory: each level's group holds ten aliases of the level
//            below under `children`, so the expanded document grows 10x per level while the
//            text grows by one line
//   diamond  no aliases at all: each level has two groups, both parents of both groups of the
//            next level, so a group is reached by 2^level paths through `children`
// Usage: inventory_load [alias|diamond|both] [MAX_LEVEL]
// Prints one row per level; stops after the first level that takes more than 5 s.
#include <chrono>
#include <cstdio>
#include <string>

#include "controller/inventory/inventory.hpp"
#include "tests/support/inventory_shapes.hpp"

namespace {

using fleet::test::alias_bomb;

std::string diamond(int levels) {
  std::string t = "all:\n  children:\n";
  for (int i = 0; i < levels; ++i) {
    std::string n = std::to_string(i), next = std::to_string(i + 1);
    for (const char* side : {"a", "b"})
      t += "    g" + n + side + ": {children: {g" + next + "a: , g" + next + "b: }}\n";
  }
  std::string last = std::to_string(levels);
  t += "    g" + last + "a: {hosts: {pi-1: }}\n    g" + last + "b: {hosts: {pi-2: }}\n";
  return t;
}

void run(const char* shape, int max_level) {
  std::printf("%-8s %5s %7s %12s  %s\n", "shape", "level", "bytes", "load ms", "result");
  for (int level = 1; level <= max_level; ++level) {
    std::string text = std::string(shape) == "alias" ? alias_bomb(level) : diamond(level);
    auto t0 = std::chrono::steady_clock::now();
    auto inv = fleet::inventory::parse_inventory(text, "bomb.yml");
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::string result =
        inv ? "loaded, " + std::to_string(inv->hosts.size()) + " hosts" : "refused: " + inv.error().message;
    std::printf("%-8s %5d %7zu %12.2f  %s\n", shape, level, text.size(), ms, result.c_str());
    std::fflush(stdout);
    if (ms > 5000) break;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string shape = argc > 1 ? argv[1] : "both";
  int max_level = argc > 2 ? std::stoi(argv[2]) : 0;
  if (shape == "alias" || shape == "both") run("alias", max_level ? max_level : 8);
  if (shape == "diamond" || shape == "both") run("diamond", max_level ? max_level : 30);
  return 0;
}
