#pragma once
// The inventory: boards and groups in the YAML shape Ansible users know
// (all: {hosts, vars, children}), so an Ansible YAML inventory loads as it is.
// Pure: YAML text in, hosts with their resolved variables out.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace fleet::inventory {

struct Host {
  std::string name;
  std::string address;                      // ansible_host / address; default: the name
  int port = 22;                            // ansible_port / port
  std::string user = "root";                // ansible_user / user
  std::string key;                          // ansible_ssh_private_key_file / key ("" = ssh-agent)
  std::map<std::string, std::string> vars;  // every variable, resolved (all < parent < child < host)
  std::vector<std::string> groups;          // every group it belongs to, "all" first
  std::string where;                        // "file:line:col" of its first mention
};

struct Group {
  std::string name;
  std::vector<std::string> hosts;     // direct members
  std::vector<std::string> children;  // child groups
  std::map<std::string, std::string> vars;
  int depth = 0;                      // all = 0, its children 1, ...
  std::string where;                  // "file:line:col" of its first mention ("" for an implied all)
};

struct Inventory {
  std::vector<Host> hosts;  // in order of first appearance
  std::map<std::string, Group> groups;
  const Host* find(std::string_view name) const;
};

Result<Inventory> parse_inventory(std::string_view yaml_text, std::string_view file);

// Ansible host patterns: "all" or "*", a group or host name, globs ("pi-*"), unions
// ("a:b" or "a,b"), intersections ("a:&b") and exclusions ("a:!b"). Errors name a pattern
// that matches nothing.
Result<std::vector<const Host*>> select(const Inventory& inventory, std::string_view pattern);

}  // namespace fleet::inventory
