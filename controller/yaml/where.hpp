#pragma once
// Errors about YAML input name the file, line and column of the node, as a compiler does
// (profiles, inventories). yaml-cpp is the controller's alone: the agent has no YAML.
#include <yaml-cpp/yaml.h>

#include <string>

#include "common/error.hpp"

namespace fleet::yaml {

struct Where {
  std::string file;
  // "file:line:col" of a node, or the file alone for a node without a position.
  std::string at(const YAML::Node& n) const {
    if (!n.IsDefined() || n.Mark().is_null()) return file;
    return file + ":" + std::to_string(n.Mark().line + 1) + ":" + std::to_string(n.Mark().column + 1);
  }
  // "file:line:col" of a parse error.
  std::string at(const YAML::Mark& m) const {
    return file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
  }
};

inline std::unexpected<Error> bad(const Where& w, const YAML::Node& n, const std::string& what) {
  return fail(Errc::invalid_input, w.at(n) + ": " + what);
}

}  // namespace fleet::yaml
