#include "controller/inventory/inventory.hpp"

#include <fnmatch.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <functional>
#include <set>

#include "controller/yaml/where.hpp"

namespace fleet::inventory {
namespace {

using Ctx = yaml::Where;
using yaml::bad;

// Variables are kept as text, as Ansible templates them; nested maps and lists are refused.
Result<std::map<std::string, std::string>> read_vars(const Ctx& c, const YAML::Node& n, const std::string& owner) {
  std::map<std::string, std::string> vars;
  if (!n || n.IsNull()) return vars;
  if (!n.IsMap()) return bad(c, n, "vars of " + owner + " must be a map");
  for (const auto& kv : n) {
    auto key = kv.first.as<std::string>();
    if (!kv.second.IsScalar() && !kv.second.IsNull()) {
      return bad(c, kv.second, "variable '" + key + "' of " + owner + " must be a plain value");
    }
    vars[key] = kv.second.IsNull() ? "" : kv.second.as<std::string>();
  }
  return vars;
}

// Aliases Ansible users write, and our own shorter names.
constexpr std::pair<const char*, const char*> k_aliases[] = {
    {"ansible_host", "address"}, {"ansible_port", "port"}, {"ansible_user", "user"},
    {"ansible_ssh_private_key_file", "key"}, {"ansible_ssh_port", "port"}, {"ansible_ssh_host", "address"},
};

struct Parser {
  Ctx c;
  Inventory inv;
  std::map<std::string, std::map<std::string, std::string>> host_vars;  // from host entries

  Result<void> group(const std::string& name, const YAML::Node& n, int depth, std::vector<std::string>& path) {
    if (std::find(path.begin(), path.end(), name) != path.end()) {
      return bad(c, n, "group '" + name + "' contains itself through its children");
    }
    path.push_back(name);
    Group& g = inv.groups[name];
    g.name = name;
    g.depth = std::max(g.depth, depth);
    if (n && !n.IsNull()) {
      if (!n.IsMap()) return bad(c, n, "group '" + name + "' must be a map with hosts, vars or children");
      for (const auto& kv : n) {
        auto key = kv.first.as<std::string>();
        if (key != "hosts" && key != "vars" && key != "children") {
          return bad(c, kv.first, "unknown key '" + key + "' in group '" + name + "' (hosts, vars, children)");
        }
      }
      auto vars = FLEET_TRY(read_vars(c, n["vars"], "group '" + name + "'"));
      for (auto& [k, v] : vars) inv.groups[name].vars[k] = v;
      YAML::Node hosts = n["hosts"];
      if (hosts && !hosts.IsNull()) {
        if (!hosts.IsMap()) return bad(c, hosts, "hosts of group '" + name + "' must be a map of host names");
        for (const auto& kv : hosts) {
          auto host = kv.first.as<std::string>();
          if (host.empty() || host.find_first_of(" \t/\\'\"`$;&|<>") != std::string::npos) {
            return bad(c, kv.first, "'" + host + "' is not a usable host name");
          }
          if (!kv.second.IsNull() && !kv.second.IsMap()) {
            return bad(c, kv.second, "host '" + host + "' must be a map of variables or empty");
          }
          auto vars2 = FLEET_TRY(read_vars(c, kv.second, "host '" + host + "'"));
          if (!inv.find(host)) {
            Host h;
            h.name = host;
            h.where = c.at(kv.first);
            inv.hosts.push_back(h);
          }
          for (auto& [k, v] : vars2) host_vars[host][k] = v;
          auto& members = inv.groups[name].hosts;
          if (std::find(members.begin(), members.end(), host) == members.end()) members.push_back(host);
        }
      }
      YAML::Node children = n["children"];
      if (children && !children.IsNull()) {
        if (!children.IsMap()) return bad(c, children, "children of group '" + name + "' must be a map of groups");
        for (const auto& kv : children) {
          auto child = kv.first.as<std::string>();
          auto& list = inv.groups[name].children;
          if (std::find(list.begin(), list.end(), child) == list.end()) list.push_back(child);
          FLEET_TRY(group(child, kv.second, depth + 1, path));
        }
      }
    }
    path.pop_back();
    return {};
  }

  // A group can be defined in several places (a top-level key and a child of another group);
  // merged, their children can loop although no one definition does (a: {children: {b:}},
  // b: {children: {a:}}), and collect_groups would recurse until the stack overflows
  // (tests/fuzz/inventory_fuzz). Walked once per group: done groups are not walked again.
  Result<void> check_cycles(const std::string& name, std::map<std::string, bool>& done,
                            std::vector<std::string>& path) {
    if (done.contains(name)) {
      if (done[name]) return {};
      std::string loop;
      for (auto it = std::find(path.begin(), path.end(), name); it != path.end(); ++it) loop += *it + " -> ";
      return fail(Errc::invalid_input, c.file + ": group '" + name + "' contains itself through its children (" +
                                           loop + name + ")");
    }
    done[name] = false;  // on the path
    path.push_back(name);
    for (const auto& child : inv.groups.at(name).children) FLEET_TRY(check_cycles(child, done, path));
    path.pop_back();
    done[name] = true;
    return {};
  }

  // Every group a host is in, directly or through children; "all" holds everyone. Each group
  // is walked once (`walked`): groups shared by several parents would otherwise be walked
  // once per path, 2^n times for n levels of diamonds.
  void collect_groups(const std::string& group_name, std::set<std::string>& seen, std::vector<std::string>& order,
                      const std::string& host, std::set<std::string>& walked) {
    if (!walked.insert(group_name).second) return;
    const Group& g = inv.groups.at(group_name);
    bool member = std::find(g.hosts.begin(), g.hosts.end(), host) != g.hosts.end();
    for (const auto& child : g.children) collect_groups(child, seen, order, host, walked);
    bool via_child = std::any_of(g.children.begin(), g.children.end(), [&](const std::string& ch) { return seen.contains(ch); });
    if ((member || via_child || group_name == "all") && !seen.contains(group_name)) {
      seen.insert(group_name);
      order.push_back(group_name);
    }
  }

  Result<void> resolve() {
    for (auto& h : inv.hosts) {
      std::set<std::string> seen, walked;
      std::vector<std::string> groups;
      collect_groups("all", seen, groups, h.name, walked);
      // Ansible's order: shallower groups first, then by name; later ones win.
      std::sort(groups.begin(), groups.end(), [&](const std::string& a, const std::string& b) {
        int da = inv.groups.at(a).depth, db = inv.groups.at(b).depth;
        return da != db ? da < db : a < b;
      });
      h.groups = groups;
      for (const auto& g : groups)
        for (const auto& [k, v] : inv.groups.at(g).vars) h.vars[k] = v;
      for (const auto& [k, v] : host_vars[h.name]) h.vars[k] = v;
      for (auto [alias, name] : k_aliases) {
        if (h.vars.contains(alias) && !h.vars.contains(name)) h.vars[name] = h.vars[alias];
      }
      h.address = h.vars.contains("address") ? h.vars["address"] : h.name;
      if (h.vars.contains("user")) h.user = h.vars["user"];
      if (h.vars.contains("key")) h.key = h.vars["key"];
      if (h.vars.contains("port")) {
        const std::string& p = h.vars["port"];
        char* end = nullptr;
        long port = std::strtol(p.c_str(), &end, 10);
        if (p.empty() || *end != '\0' || port < 1 || port > 65535) {
          return fail(Errc::invalid_input, h.where + ": host '" + h.name + "': port '" + p + "' is not a TCP port");
        }
        h.port = static_cast<int>(port);
      }
      if (h.address.empty() || h.address.find_first_of(" \t'\"`$;&|<>") != std::string::npos) {
        return fail(Errc::invalid_input, h.where + ": host '" + h.name + "': address '" + h.address + "' is not usable");
      }
    }
    return {};
  }
};

}  // namespace

const Host* Inventory::find(std::string_view name) const {
  for (const auto& h : hosts)
    if (h.name == name) return &h;
  return nullptr;
}

Result<Inventory> parse_inventory(std::string_view text, std::string_view file) {
  Parser p{Ctx{std::string(file)}, {}, {}};
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::ParserException& e) {
    return fail(Errc::parse, p.c.at(e.mark) + ": " + e.msg);
  }
  if (!root.IsMap()) return fail(Errc::invalid_input, p.c.file + ": an inventory is a YAML map of groups (all: ...)");
  try {
    // Top-level keys are groups; "all" is the root, and others become its children.
    p.inv.groups["all"].name = "all";
    std::vector<std::string> path;
    for (const auto& kv : root) {
      auto name = kv.first.as<std::string>();
      if (name == "all") {
        FLEET_TRY(p.group("all", kv.second, 0, path));
      } else {
        auto& children = p.inv.groups["all"].children;
        if (std::find(children.begin(), children.end(), name) == children.end()) children.push_back(name);
        FLEET_TRY(p.group(name, kv.second, 1, path));
      }
    }
    if (p.inv.hosts.empty()) return fail(Errc::invalid_input, p.c.file + ": no hosts");
    std::map<std::string, bool> done;
    FLEET_TRY(p.check_cycles("all", done, path));
    FLEET_TRY(p.resolve());
  } catch (const YAML::Exception& e) {
    return fail(Errc::parse, p.c.file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return p.inv;
}

Result<std::vector<const Host*>> select(const Inventory& inv, std::string_view pattern) {
  // Split on ':' and ',' (Ansible accepts both), keeping the & and ! prefixes.
  std::vector<std::string> parts;
  std::string cur;
  for (char ch : pattern) {
    if (ch == ':' || ch == ',') {
      if (!cur.empty()) parts.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(ch);
    }
  }
  if (!cur.empty()) parts.push_back(cur);
  if (parts.empty()) parts.push_back("all");

  auto match = [&](const std::string& term) -> Result<std::set<std::string>> {
    std::set<std::string> out;
    if (term == "all" || term == "*") {
      for (const auto& h : inv.hosts) out.insert(h.name);
      return out;
    }
    for (const auto& [name, g] : inv.groups) {
      if (::fnmatch(term.c_str(), name.c_str(), 0) == 0) {
        for (const auto& h : inv.hosts) {
          if (std::find(h.groups.begin(), h.groups.end(), name) != h.groups.end()) out.insert(h.name);
        }
      }
    }
    for (const auto& h : inv.hosts) {
      if (::fnmatch(term.c_str(), h.name.c_str(), 0) == 0) out.insert(h.name);
    }
    if (out.empty()) return fail(Errc::invalid_input, "pattern '" + term + "' matches no host or group");
    return out;
  };

  std::set<std::string> chosen;
  bool first = true;
  for (const auto& part : parts) {
    if (part.starts_with("!")) {
      auto s = FLEET_TRY(match(part.substr(1)));
      if (first) {
        for (const auto& h : inv.hosts) chosen.insert(h.name);
      }
      for (const auto& n : s) chosen.erase(n);
    } else if (part.starts_with("&")) {
      auto s = FLEET_TRY(match(part.substr(1)));
      std::set<std::string> both;
      for (const auto& n : chosen)
        if (s.contains(n)) both.insert(n);
      chosen = both;
    } else {
      auto s = FLEET_TRY(match(part));
      chosen.insert(s.begin(), s.end());
    }
    first = false;
  }
  std::vector<const Host*> out;
  for (const auto& h : inv.hosts)
    if (chosen.contains(h.name)) out.push_back(&h);
  return out;
}

}  // namespace fleet::inventory
