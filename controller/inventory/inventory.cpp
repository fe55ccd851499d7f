#include "controller/inventory/inventory.hpp"

#include "common/text.hpp"

#include <fnmatch.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <set>

#include "controller/yaml/load.hpp"
#include "controller/yaml/where.hpp"

namespace fleet::inventory {
namespace {

using Ctx = yaml::Where;
using yaml::bad;

// Every numeric variable the controller reads. Each definition is checked where it is read
// (a group's too, even where a host overrides it), so the error names the line of the bad
// value and nothing reaches a board. The bounds are those the agent applies to the options
// they become (node-agent/cli/cli.cpp `install`), so a value accepted here is not refused
// later, on a board, in the middle of a rollout. An empty value means "not set".
enum class Number { integer, real };
struct NumericVar {
  std::string_view name;
  Number kind;
  double min, max;
  std::string_view want;
};
constexpr NumericVar k_numeric_vars[] = {
    // sshd on the board; ansible_ssh_port is Ansible's older name, port our shorter one.
    {"ansible_port", Number::integer, 1, 65535, "a TCP port (1 to 65535)"},
    {"ansible_ssh_port", Number::integer, 1, 65535, "a TCP port (1 to 65535)"},
    {"port", Number::integer, 1, 65535, "a TCP port (1 to 65535)"},
    // Threads of the throughput measurement (a Pi 5 has 4 cores; the agent allows 1024).
    {"fleet_bench_threads", Number::integer, 1, 1024, "a thread count from 1 to 1024"},
    // Below it the verification fails; 0 means "report only". NaN would compare false with
    // every measured rate, so the check would pass every board.
    {"fleet_min_tokens_per_s", Number::real, 0, 1e6, "a rate in tokens per second from 0 to 1000000, such as 2.5"},
};

Result<void> check_number(const Ctx& c, const YAML::Node& value_node, const std::string& key, const std::string& value,
                          const std::string& owner) {
  for (const auto& v : k_numeric_vars) {
    if (v.name != key || value.empty()) continue;
    const char* first = value.data();
    const char* last = value.data() + value.size();
    double x = 0;
    bool whole = false;
    if (v.kind == Number::integer) {
      long n = 0;
      auto [p, ec] = std::from_chars(first, last, n);
      whole = ec == std::errc{} && p == last;
      x = static_cast<double>(n);
    } else {
      auto [p, ec] = std::from_chars(first, last, x);
      whole = ec == std::errc{} && p == last;
    }
    if (!whole || !std::isfinite(x) || x < v.min || x > v.max) {
      return bad(c, value_node,
                 "variable '" + key + "' of " + owner + ": '" + value + "' is not " + std::string(v.want));
    }
  }
  return {};
}

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
    std::string value = kv.second.IsNull() ? "" : kv.second.as<std::string>();
    FLEET_TRY(check_number(c, kv.second, key, value, owner));
    vars[key] = value;
  }
  return vars;
}

// What a key written twice in one mapping is called, by the key that holds the mapping.
constexpr yaml::KeyNoun k_key_nouns[] = {{"", "group"}, {"children", "group"}, {"hosts", "host"}, {"vars", "variable"}};

// Aliases Ansible users write, and our own shorter names.
constexpr std::pair<const char*, const char*> k_aliases[] = {
    {"ansible_host", "address"}, {"ansible_port", "port"}, {"ansible_user", "user"},
    {"ansible_ssh_private_key_file", "key"}, {"ansible_ssh_port", "port"}, {"ansible_ssh_host", "address"},
};

struct Parser {
  Ctx c;
  Inventory inv;
  std::map<std::string, std::map<std::string, std::string>> host_vars;  // from host entries

  Result<void> group(const std::string& name, const YAML::Node& name_node, const YAML::Node& n, int depth,
                     std::vector<std::string>& path) {
    if (std::find(path.begin(), path.end(), name) != path.end()) {
      return bad(c, n, "group '" + name + "' contains itself through its children");
    }
    path.push_back(name);
    Group& g = inv.groups[name];
    g.name = name;
    if (g.where.empty()) g.where = c.at(name_node);
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
          // The name becomes a word of commands on the board (setup --board-id) and of reports.
          if (auto why = text::command_word_problem(host); !why.empty()) {
            return bad(c, kv.first, "host name " + why);
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
          FLEET_TRY(group(child, kv.first, kv.second, depth + 1, path));
        }
      }
    }
    path.pop_back();
    return {};
  }

  // Groups join by name across the text (`a: {children: {b:}}` at the top, `b: {children:
  // {a:}}` beside it), so a cycle needs no nesting: it is looked for in the graph of names,
  // each group left once. A chain of children is bounded as the YAML's nesting is, since the
  // walks below recurse along it.
  enum class Visit { unseen, open, done };
  Result<void> check_cycles(const std::string& name, std::map<std::string, Visit>& seen,
                            std::vector<std::string>& path) {
    if (seen[name] == Visit::done) return {};
    path.push_back(name);
    const Group& g = inv.groups.at(name);
    const std::string where = g.where.empty() ? c.file : g.where;
    if (seen[name] == Visit::open) {
      std::string chain;
      for (auto it = std::find(path.begin(), path.end(), name); it != path.end(); ++it) {
        chain += (chain.empty() ? "" : " > ") + *it;
      }
      return fail(Errc::invalid_input,
                  where + ": group '" + name + "' contains itself through its children (" + chain + ")");
    }
    if (path.size() > static_cast<std::size_t>(yaml::k_budget.max_depth)) {
      return fail(Errc::invalid_input, where + ": groups nest deeper than " + std::to_string(yaml::k_budget.max_depth) +
                                           " levels through their children");
    }
    seen[name] = Visit::open;
    for (const auto& child : g.children) FLEET_TRY(check_cycles(child, seen, path));
    seen[name] = Visit::done;
    path.pop_back();
    return {};
  }

  // The hosts of a group, its children's included, each group's computed once. Walking the
  // children again for every path (as this once did) is exponential without any alias: two
  // groups per level, both parents of both below, reach the last level by 2^levels paths
  // (bench/inventory_load diamond).
  const std::set<std::string>& hosts_below(const std::string& name,
                                           std::map<std::string, std::set<std::string>>& memo) {
    if (auto it = memo.find(name); it != memo.end()) return it->second;
    std::set<std::string> out;
    const Group& g = inv.groups.at(name);
    out.insert(g.hosts.begin(), g.hosts.end());
    for (const auto& child : g.children) {
      const auto& below = hosts_below(child, memo);
      out.insert(below.begin(), below.end());
    }
    return memo[name] = std::move(out);
  }

  Result<void> resolve() {
    std::map<std::string, Visit> seen;
    std::vector<std::string> path;
    FLEET_TRY(check_cycles("all", seen, path));
    std::map<std::string, std::set<std::string>> memo;
    for (auto& h : inv.hosts) {
      // Every group a host is in, directly or through children; "all" holds everyone.
      std::vector<std::string> groups;
      for (const auto& [name, g] : inv.groups) {
        if (name == "all" || hosts_below(name, memo).contains(h.name)) groups.push_back(name);
      }
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
  YAML::Node root = FLEET_TRY(yaml::load(text, p.c, {.key_nouns = k_key_nouns}));
  if (!root.IsMap()) return fail(Errc::invalid_input, p.c.file + ": an inventory is a YAML map of groups (all: ...)");
  try {
    // Top-level keys are groups; "all" is the root, and others become its children.
    p.inv.groups["all"].name = "all";
    std::vector<std::string> path;
    for (const auto& kv : root) {
      auto name = kv.first.as<std::string>();
      if (name == "all") {
        FLEET_TRY(p.group("all", kv.first, kv.second, 0, path));
      } else {
        auto& children = p.inv.groups["all"].children;
        if (std::find(children.begin(), children.end(), name) == children.end()) children.push_back(name);
        FLEET_TRY(p.group(name, kv.first, kv.second, 1, path));
      }
    }
    if (p.inv.hosts.empty()) return fail(Errc::invalid_input, p.c.file + ": no hosts");
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
