#pragma once
// The inventory: boards and groups as Ansible users keep them, so an Ansible inventory loads
// as it is: the YAML shape (all: {hosts, vars, children}), the INI `hosts` file ([group],
// [group:vars], [group:children], inline host variables), host ranges (pi-[01:32]) in both,
// and a directory of them with group_vars/ and host_vars/ beside.
// Parsing is pure (text in, hosts with their resolved variables out); load_inventory is the
// edge that reads files.
#include <filesystem>
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

enum class Format { yaml, ini };

// How Ansible tells them apart: by extension (.yml, .yaml, .json are YAML; .ini is INI), else
// by content (a first line that is a [section] or a "host key=value" line is INI).
Format detect_format(std::string_view text, std::string_view file);

// One inventory source: its name for errors ("hosts", "inventory/rack.yml") and its text.
struct Source {
  std::string file;
  std::string text;
};

// A file of variables for one group or host (group_vars/NAME.yml, host_vars/NAME.yml): a YAML
// map of plain values. They win over the variables the inventory files give the same group or
// host, as in Ansible.
struct VarsFile {
  enum class Owner { group, host };
  Owner owner;
  std::string name;  // the group or host
  std::string file;
  std::string text;
};

// Every source merged in order, as Ansible merges the files of an inventory directory.
[[nodiscard]] Result<Inventory> parse_sources(const std::vector<Source>& sources,
                                              const std::vector<VarsFile>& vars_files = {});

// One source, its format detected.
[[nodiscard]] Result<Inventory> parse_inventory(std::string_view text, std::string_view file);

// The edge: a file (with the group_vars/ and host_vars/ beside it) or a directory of inventory
// files (every file but hidden ones, Ansible's ignored extensions and group_vars/, host_vars/;
// in name order) with its group_vars/ and host_vars/.
[[nodiscard]] Result<Inventory> load_inventory(const std::filesystem::path& path);

// Ansible's host ranges: "pi-[01:32]" is pi-01 to pi-32 (zero-padded when the start is),
// "rack-[a:c]" rack-a to rack-c, "[0:10:2]" every second; several ranges multiply. A name
// without a range is itself. Errors say what is wrong with the range (the caller adds where).
[[nodiscard]] Result<std::vector<std::string>> expand_host_range(std::string_view pattern);

// Ansible host patterns: "all" or "*", a group or host name, globs ("pi-*"), unions
// ("a:b" or "a,b"), intersections ("a:&b") and exclusions ("a:!b"). Errors name a pattern
// that matches nothing.
Result<std::vector<const Host*>> select(const Inventory& inventory, std::string_view pattern);

}  // namespace fleet::inventory
