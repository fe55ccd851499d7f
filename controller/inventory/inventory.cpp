#include "controller/inventory/inventory.hpp"

#include "common/fs.hpp"
#include "common/text.hpp"

#include <fnmatch.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
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
enum class Number { integer, real, percent };
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
    // The probe's bound at boot, in seconds (the agent's --bench-max-seconds).
    // At most 240: the install and the trial boot both measure, within the controller's
    // 600 s bounds of those steps, beside weights to write and bandwidth to measure.
    {"fleet_bench_max_seconds", Number::integer, 1, 240, "a number of seconds from 1 to 240"},
    // Below it the verification fails; 0 means "report only". NaN would compare false with
    // every measured rate, so the check would pass every board.
    {"fleet_min_tokens_per_s", Number::real, 0, 1e6, "a rate in tokens per second from 0 to 1000000, such as 2.5"},
    // How much slower than the committed kernel a trial kernel may be: "3%" or "3".
    // 0 would gate on noise alone: unset means "report only".
    {"fleet_max_regression", Number::percent, 0.01, 99.99, "a percentage above 0 and below 100, such as 3% (unset it to report only)"},
};

// `where` is "file:line" or "file:line:col" of the value.
Result<void> check_number(const std::string& where, const std::string& key, const std::string& value,
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
      if (v.kind == Number::percent && last > first && *(last - 1) == '%') --last;
      auto [p, ec] = std::from_chars(first, last, x);
      whole = ec == std::errc{} && p == last;
    }
    if (!whole || !std::isfinite(x) || x < v.min || x > v.max) {
      return fail(Errc::invalid_input,
                  where + ": variable '" + key + "' of " + owner + ": '" + value + "' is not " + std::string(v.want));
    }
  }
  return {};
}

// "" if `name` can be a host's name, else why not. The name becomes a word of commands on
// the board (setup --board-id) and of reports.
std::string host_name_problem(const std::string& host) {
  if (host.empty() || host.find_first_of(" \t/\\'\"`$;&|<>") != std::string::npos) return "'" + host + "' is not a usable host name";
  if (auto why = text::command_word_problem(host); !why.empty()) return "host name " + why;
  return "";
}

// A group's name: Ansible's INI section syntax ([name] with no space, colon or bracket).
std::string group_name_problem(std::string_view name) {
  if (name.empty()) return "a group needs a name";
  for (unsigned char c : name) {
    if (c <= ' ' || c == 0x7f || c >= 0x80 || c == ':' || c == '[' || c == ']' || c == '=') {
      return "group name " + text::quoted(name) + " holds a space, a control character or one of : [ ] =";
    }
  }
  return "";
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
    FLEET_TRY(check_number(c.at(kv.second), key, value, owner));
    vars[key] = value;
  }
  return vars;
}

// What a key written twice in one mapping is called, by the key that holds the mapping.
constexpr yaml::KeyNoun k_key_nouns[] = {{"", "group"}, {"children", "group"}, {"hosts", "host"}, {"vars", "variable"}};


// A rack is tens to hundreds of boards; a range past this is a typo ([1:100000]), and each
// name costs a host record.
constexpr std::size_t k_max_range_hosts = 10000;

// One range "[a:b]" or "[a:b:step]" as Ansible's expand_hostname_range reads it.
Result<std::vector<std::string>> expand_one(std::string_view inside) {
  std::vector<std::string_view> parts;
  for (std::size_t from = 0;;) {
    auto colon = inside.find(':', from);
    parts.push_back(inside.substr(from, colon == std::string_view::npos ? std::string_view::npos : colon - from));
    if (colon == std::string_view::npos) break;
    from = colon + 1;
  }
  if (parts.size() < 2 || parts.size() > 3) {
    return fail(Errc::invalid_input, "host range [" + std::string(inside) + "] is not [start:end] or [start:end:step]");
  }
  std::string_view beg = parts[0].empty() ? std::string_view("0") : parts[0], end = parts[1];
  if (end.empty()) return fail(Errc::invalid_input, "host range [" + std::string(inside) + "] has no end");
  long step = 1;
  if (parts.size() == 3) {
    auto [p, ec] = std::from_chars(parts[2].data(), parts[2].data() + parts[2].size(), step);
    if (ec != std::errc{} || p != parts[2].data() + parts[2].size() || step < 1) {
      return fail(Errc::invalid_input, "host range [" + std::string(inside) + "]: the step is not a whole number above 0");
    }
  }
  std::vector<std::string> out;
  auto letter = [](std::string_view v) { return v.size() == 1 && std::isalpha(static_cast<unsigned char>(v[0])); };
  if (letter(beg) && letter(end)) {
    if (beg[0] > end[0]) return fail(Errc::invalid_input, "host range [" + std::string(inside) + "] ends before it starts");
    for (long ch = beg[0]; ch <= end[0]; ch += step) {
      if (std::isalpha(static_cast<int>(ch))) out.emplace_back(1, static_cast<char>(ch));
    }
    return out;
  }
  auto number = [](std::string_view v, long& n) {
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    return ec == std::errc{} && p == v.data() + v.size() && n >= 0;
  };
  long first = 0, last = 0;
  if (!number(beg, first) || !number(end, last)) {
    return fail(Errc::invalid_input, "host range [" + std::string(inside) + "] is neither numbers nor single letters");
  }
  // "[01:32]" keeps the width of its start; Ansible wants the end written as wide.
  std::size_t width = beg.size() > 1 && beg[0] == '0' ? beg.size() : 0;
  if (width && end.size() != width) {
    return fail(Errc::invalid_input,
                "host range [" + std::string(inside) + "]: a zero-padded start needs an end of the same width");
  }
  if (first > last) return fail(Errc::invalid_input, "host range [" + std::string(inside) + "] ends before it starts");
  if ((last - first) / step + 1 > static_cast<long>(k_max_range_hosts)) {
    return fail(Errc::invalid_input, "host range [" + std::string(inside) + "] names more than " +
                                         std::to_string(k_max_range_hosts) + " hosts");
  }
  for (long n = first; n <= last; n += step) {
    std::string v = std::to_string(n);
    if (v.size() < width) v.insert(0, width - v.size(), '0');
    out.push_back(std::move(v));
  }
  return out;
}

// Aliases Ansible users write, and our own shorter names.
constexpr std::pair<const char*, const char*> k_aliases[] = {
    {"ansible_host", "address"}, {"ansible_port", "port"}, {"ansible_user", "user"},
    {"ansible_ssh_private_key_file", "key"}, {"ansible_ssh_port", "port"}, {"ansible_ssh_host", "address"},
};

// A variable fleetctl itself reads (a connection setting, a number it checks, a fleet_ one).
bool read_by_fleetctl(std::string_view key) {
  for (auto [alias, name] : k_aliases)
    if (key == alias || key == name) return true;
  for (const auto& v : k_numeric_vars)
    if (key == v.name) return true;
  return key.starts_with("fleet_") || key == "address" || key == "user" || key == "key" || key == "port";
}

// A line of an INI host section cut into words as Ansible's shlex does (posix, comments):
// quotes group, a backslash escapes, '#' ends the line.
Result<std::vector<std::string>> shell_words(std::string_view line) {
  std::vector<std::string> out;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char ch = line[i];
    if (quote) {
      if (ch == quote) {
        quote = 0;
      } else if (quote == '"' && ch == '\\' && i + 1 < line.size() && (line[i + 1] == '"' || line[i + 1] == '\\')) {
        word.push_back(line[++i]);
      } else {
        word.push_back(ch);
      }
    } else if (ch == '\'' || ch == '"') {
      quote = ch;
      in_word = true;
    } else if (ch == '\\' && i + 1 < line.size()) {
      word.push_back(line[++i]);
      in_word = true;
    } else if (ch == '#') {
      break;
    } else if (ch == ' ' || ch == '\t') {
      if (in_word) out.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      word.push_back(ch);
      in_word = true;
    }
  }
  if (quote) return fail(Errc::invalid_input, std::string("no closing quotation (") + quote + ")");
  if (in_word) out.push_back(std::move(word));
  return out;
}

// A value of an INI [group:vars] line: Ansible reads it as a Python literal, so a quoted
// string loses its quotes.
std::string unquote(std::string_view v) {
  v = text::trim(v);
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
    return std::string(v.substr(1, v.size() - 2));
  }
  return std::string(v);
}

struct Parser {
  Ctx c;
  Inventory inv;
  std::map<std::string, std::size_t> host_index;                            // name -> inv.hosts
  std::map<std::string, std::map<std::string, std::string>> host_vars;       // from inventory files
  std::map<std::string, std::map<std::string, std::string>> host_file_vars;  // host_vars/
  std::map<std::string, std::map<std::string, std::string>> group_file_vars; // group_vars/

  Group& touch_group(const std::string& name, const std::string& where) {
    Group& g = inv.groups[name];
    g.name = name;
    if (g.where.empty()) g.where = where;
    return g;
  }

  void add_member(const std::string& group, const std::string& host, const std::string& where) {
    if (!host_index.contains(host)) {
      host_index[host] = inv.hosts.size();
      Host h;
      h.name = host;
      h.where = where;
      inv.hosts.push_back(h);
    }
    auto& members = inv.groups[group].hosts;
    if (std::find(members.begin(), members.end(), host) == members.end()) members.push_back(host);
  }

  static void add_child(Group& parent, const std::string& child) {
    if (std::find(parent.children.begin(), parent.children.end(), child) == parent.children.end()) {
      parent.children.push_back(child);
    }
  }

  // A host key of a YAML group or the first word of an INI host line: its range expanded,
  // each name checked. `where` is where the key is.
  Result<std::vector<std::string>> host_names(const std::string& pattern, const std::string& where) {
    auto names = expand_host_range(pattern);
    if (!names) return fail(Errc::invalid_input, where + ": " + names.error().message);
    for (const auto& n : *names) {
      if (auto why = host_name_problem(n); !why.empty()) return fail(Errc::invalid_input, where + ": " + why);
    }
    return names;
  }

  Result<void> group(const std::string& name, const YAML::Node& name_node, const YAML::Node& n,
                     std::vector<std::string>& path) {
    if (std::find(path.begin(), path.end(), name) != path.end()) {
      return bad(c, n, "group '" + name + "' contains itself through its children");
    }
    if (auto why = group_name_problem(name); !why.empty()) return bad(c, name_node, why);
    path.push_back(name);
    touch_group(name, c.at(name_node));
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
          auto pattern = kv.first.as<std::string>();
          auto names = FLEET_TRY(host_names(pattern, c.at(kv.first)));
          if (!kv.second.IsNull() && !kv.second.IsMap()) {
            return bad(c, kv.second, "host '" + pattern + "' must be a map of variables or empty");
          }
          auto vars2 = FLEET_TRY(read_vars(c, kv.second, "host '" + pattern + "'"));
          for (const auto& host : names) {
            add_member(name, host, c.at(kv.first));
            for (auto& [k, v] : vars2) host_vars[host][k] = v;
          }
        }
      }
      YAML::Node children = n["children"];
      if (children && !children.IsNull()) {
        if (!children.IsMap()) return bad(c, children, "children of group '" + name + "' must be a map of groups");
        for (const auto& kv : children) {
          auto child = kv.first.as<std::string>();
          add_child(inv.groups[name], child);
          FLEET_TRY(group(child, kv.first, kv.second, path));
        }
      }
    }
    path.pop_back();
    return {};
  }

  Result<void> yaml_source(std::string_view text) {
    YAML::Node root = FLEET_TRY(yaml::load(text, c, {.key_nouns = k_key_nouns}));
    if (root.IsNull()) return {};  // an empty file adds nothing, as in Ansible
    if (!root.IsMap()) return fail(Errc::invalid_input, c.file + ": an inventory is a YAML map of groups (all: ...)");
    try {
      // Top-level keys are groups; "all" is the root, and others become its children.
      std::vector<std::string> path;
      for (const auto& kv : root) {
        auto name = kv.first.as<std::string>();
        if (name != "all") add_child(inv.groups["all"], name);
        FLEET_TRY(group(name, kv.first, kv.second, path));
      }
    } catch (const YAML::Exception& e) {
      return fail(Errc::parse, c.file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
    return {};
  }

  // Ansible's INI inventory: lines before any section are hosts of "ungrouped"; [name] holds
  // host lines ("pi-1 ansible_host=10.0.0.1 ansible_port=2222", "pi-[01:32]", "pi-1:2222"),
  // [name:vars] "key=value" lines, [name:children] group names. '#' and ';' start a comment
  // line.
  Result<void> ini_source(std::string_view text) {
    enum class Section { hosts, vars, children };
    Section section = Section::hosts;
    std::string group = "ungrouped";
    int line_no = 0;
    // As Ansible's INI reader: [g] and [g:children] define g; [g:vars] and a child named in
    // [p:children] must name a group defined somewhere in the file, else a typo
    // ([webserver:vars] for webservers) would drop its variables without a word.
    std::set<std::string> defined = {"all", "ungrouped"};
    struct Pending {
      std::string where, what;
    };
    std::map<std::string, Pending> pending;
    for (std::size_t from = 0; from <= text.size();) {
      auto nl = text.find('\n', from);
      std::string_view raw = text.substr(from, nl == std::string_view::npos ? std::string_view::npos : nl - from);
      from = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
      ++line_no;
      const std::string where = c.file + ":" + std::to_string(line_no);
      std::string_view line = text::trim(raw);
      if (line.empty() || line.front() == '#' || line.front() == ';') continue;
      for (unsigned char ch : line) {
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
          return fail(Errc::invalid_input, where + ": the line holds a control character");
        }
      }
      if (line.front() == '[' && line.find(']') != std::string_view::npos &&
          (line.back() == ']' || text::trim(line.substr(line.find(']') + 1)).starts_with('#'))) {
        std::string_view head = line.substr(1, line.find(']') - 1);
        std::string_view name = head, kind;
        if (auto colon = head.find(':'); colon != std::string_view::npos) {
          name = head.substr(0, colon);
          kind = head.substr(colon + 1);
        }
        if (auto why = group_name_problem(name); !why.empty()) return fail(Errc::invalid_input, where + ": " + why);
        if (kind.empty()) {
          section = Section::hosts;
        } else if (kind == "vars") {
          section = Section::vars;
        } else if (kind == "children") {
          section = Section::children;
        } else {
          return fail(Errc::invalid_input, where + ": section [" + std::string(head) + "] has an unknown kind '" +
                                               std::string(kind) + "' (vars or children)");
        }
        group = std::string(name);
        touch_group(group, where);
        if (section == Section::vars) {
          if (!defined.contains(group) && !pending.contains(group)) {
            pending[group] = {where, "section [" + group + ":vars] is for a group no section defines"};
          }
        } else {
          defined.insert(group);
        }
        continue;
      }
      switch (section) {
        case Section::hosts: {
          auto words = shell_words(line);
          if (!words) return fail(Errc::invalid_input, where + ": " + words.error().message);
          std::string pattern = words->front();
          std::string port;
          // "host:port", as Ansible reads it; a range's colons are inside brackets, and an
          // IPv6 address (more than one colon) has no port here (give it ansible_port).
          int colons = 0, depth = 0;
          for (char ch : pattern) {
            depth += ch == '[' ? 1 : ch == ']' ? -1 : 0;
            colons += ch == ':' && depth == 0;
          }
          if (auto colon = pattern.rfind(':'); colons == 1 && pattern.find(']', colon) == std::string::npos) {
            port = pattern.substr(colon + 1);
            pattern.resize(colon);
          }
          std::map<std::string, std::string> vars;
          if (!port.empty()) vars["ansible_port"] = port;
          for (std::size_t i = 1; i < words->size(); ++i) {
            const std::string& w = (*words)[i];
            auto eq = w.find('=');
            if (eq == std::string::npos || eq == 0) {
              return fail(Errc::invalid_input, where + ": expected key=value after host '" + pattern + "', got " +
                                                   text::quoted(w));
            }
            vars[w.substr(0, eq)] = w.substr(eq + 1);
          }
          for (const auto& [k, v] : vars) FLEET_TRY(check_number(where, k, v, "host '" + pattern + "'"));
          touch_group(group, where);
          for (const auto& host : FLEET_TRY(host_names(pattern, where))) {
            add_member(group, host, where);
            for (const auto& [k, v] : vars) host_vars[host][k] = v;
          }
          break;
        }
        case Section::vars: {
          auto eq = line.find('=');
          if (eq == std::string_view::npos || text::trim(line.substr(0, eq)).empty()) {
            return fail(Errc::invalid_input, where + ": expected key=value in [" + group + ":vars], got " +
                                                 text::quoted(line));
          }
          std::string key(text::trim(line.substr(0, eq)));
          std::string value = unquote(line.substr(eq + 1));
          FLEET_TRY(check_number(where, key, value, "group '" + group + "'"));
          inv.groups[group].vars[key] = value;
          break;
        }
        case Section::children: {
          std::string child(text::trim(line.substr(0, line.find('#'))));
          if (auto why = group_name_problem(child); !why.empty()) {
            return fail(Errc::invalid_input, where + ": " + why);
          }
          touch_group(child, where);
          add_child(inv.groups[group], child);
          if (!defined.contains(child) && !pending.contains(child)) {
            pending[child] = {where, "[" + group + ":children] names group '" + child + "', which no section defines"};
          }
          break;
        }
      }
    }
    for (const auto& [name, p] : pending) {
      if (!defined.contains(name)) return fail(Errc::invalid_input, p.where + ": " + p.what);
    }
    return {};
  }

  // group_vars/NAME and host_vars/NAME files: a YAML map (or nothing). Unlike an inventory's
  // own variables, these hold what playbooks use (package lists, nested settings): a list or
  // a map is kept as its YAML text, and refused only for a variable fleetctl reads.
  Result<void> vars_file(const VarsFile& f) {
    if (text::trim(f.text).starts_with("$ANSIBLE_VAULT")) {
      return fail(Errc::unsupported, f.file + ": encrypted with ansible-vault; fleetctl cannot read it "
                                              "(decrypt it, or move the secrets to a file fleetctl is not given)");
    }
    Ctx vc{f.file};
    YAML::Node root = FLEET_TRY(yaml::load(f.text, vc));
    const bool group = f.owner == VarsFile::Owner::group;
    const std::string owner = (group ? "group '" : "host '") + f.name + "'";
    try {
      if (!root.IsNull() && !root.IsMap()) return bad(vc, root, "variables of " + owner + " must be a YAML map");
      auto& into = group ? group_file_vars[f.name] : host_file_vars[f.name];
      if (root.IsNull()) return {};
      for (const auto& kv : root) {
        const auto key = kv.first.as<std::string>();
        std::string value;
        if (kv.second.IsScalar()) {
          value = kv.second.as<std::string>();
        } else if (!kv.second.IsNull()) {
          if (read_by_fleetctl(key)) {
            return bad(vc, kv.second, "variable '" + key + "' of " + owner + " must be a plain value");
          }
          YAML::Emitter e;
          e << YAML::Flow << kv.second;
          value = e.c_str();
        }
        FLEET_TRY(check_number(vc.at(kv.second), key, value, owner));
        into[key] = value;
      }
    } catch (const YAML::Exception& e) {
      return fail(Errc::parse, f.file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
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

  // Ansible's depth: all is 0, a group one more than its deepest parent.
  void set_depths(const std::string& name, int depth) {
    Group& g = inv.groups.at(name);
    if (name != "all" && g.depth >= depth) return;
    g.depth = depth;
    for (const auto& child : g.children) set_depths(child, depth + 1);
  }

  Result<void> resolve() {
    Group& all = inv.groups["all"];
    all.name = "all";
    // A group nobody lists as a child is a child of all; so is ungrouped (hosts in no group).
    std::set<std::string> has_parent;
    for (const auto& [name, g] : inv.groups)
      for (const auto& child : g.children) has_parent.insert(child);
    for (const auto& [name, g] : inv.groups) {
      if (name != "all" && !has_parent.contains(name)) add_child(inv.groups["all"], name);
    }
    std::map<std::string, Visit> seen;
    std::vector<std::string> path;
    FLEET_TRY(check_cycles("all", seen, path));
    // A cycle that all does not reach (every group in it has a parent in it).
    for (const auto& [name, g] : inv.groups) FLEET_TRY(check_cycles(name, seen, path));
    for (auto& [name, g] : inv.groups) g.depth = 0;
    set_depths("all", 0);
    std::map<std::string, std::set<std::string>> memo;
    for (auto& h : inv.hosts) {
      // Every group a host is in, directly or through children; "all" holds everyone.
      std::vector<std::string> groups;
      for (const auto& [name, g] : inv.groups) {
        if (name == "all" || hosts_below(name, memo).contains(h.name)) groups.push_back(name);
      }
      // In no group but all: ungrouped, as Ansible files it.
      if (groups.size() == 1) {
        Group& u = touch_group("ungrouped", "");
        u.depth = 1;
        add_child(inv.groups.at("all"), "ungrouped");
        if (std::find(u.hosts.begin(), u.hosts.end(), h.name) == u.hosts.end()) u.hosts.push_back(h.name);
        memo.erase("ungrouped");
        memo.erase("all");
        groups.push_back("ungrouped");
      }
      // Ansible's order: shallower groups first, then by name; later ones win. A host's
      // host_vars/ file wins over its inline variables.
      std::sort(groups.begin(), groups.end(), [&](const std::string& a, const std::string& b) {
        int da = inv.groups.at(a).depth, db = inv.groups.at(b).depth;
        return da != db ? da < db : a < b;
      });
      h.groups = groups;
      // Ansible's precedence: every group's variables from the inventory files, then every
      // group_vars/ file (so group_vars/all.yml beats [rack:vars]), each by depth and name.
      for (const auto& g : groups)
        for (const auto& [k, v] : inv.groups.at(g).vars) h.vars[k] = v;
      for (const auto& g : groups) {
        if (auto it = group_file_vars.find(g); it != group_file_vars.end())
          for (const auto& [k, v] : it->second) h.vars[k] = v;
      }
      for (const auto& [k, v] : host_vars[h.name]) h.vars[k] = v;
      if (auto it = host_file_vars.find(h.name); it != host_file_vars.end())
        for (const auto& [k, v] : it->second) h.vars[k] = v;
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

// Extensions Ansible's inventory_ignore_extensions skips in an inventory directory.
constexpr std::string_view k_ignored_extensions[] = {".pyc", ".pyo", ".swp", ".bak", "~",    ".rpm",   ".md",
                                                     ".txt", ".rst", ".orig", ".ini", ".cfg", ".retry"};

bool ignored_in_directory(const std::filesystem::path& p) {
  const std::string name = p.filename().string();
  if (name.starts_with('.')) return true;
  for (auto ext : k_ignored_extensions)
    if (name.ends_with(ext)) return true;
  return false;
}

// A file of a group_vars/NAME/ folder Ansible reads: .yml, .yaml, .json or no extension,
// not hidden, not a backup (name~).
bool vars_file_name(const std::filesystem::path& p) {
  const std::string name = p.filename().string();
  if (name.starts_with('.') || name.ends_with('~')) return false;
  const std::string ext = p.extension().string();
  return ext.empty() || ext == ".yml" || ext == ".yaml" || ext == ".json";
}

// The entries of a folder in name order; an unreadable folder is an error that names it.
Result<std::vector<std::filesystem::path>> entries_of(const std::filesystem::path& dir) {
  std::error_code ec;
  std::vector<std::filesystem::path> out;
  std::filesystem::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) out.push_back(it->path());
  if (ec) return fail(Errc::io, dir.string() + ": " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

// Every vars file under a group_vars/NAME/ folder, its subfolders too (as Ansible).
Result<void> vars_folder(const std::filesystem::path& dir, std::vector<std::filesystem::path>& files, int depth) {
  if (depth > 8) return fail(Errc::invalid_input, dir.string() + ": folders nest deeper than 8 levels");
  for (const auto& e : FLEET_TRY(entries_of(dir))) {
    std::error_code ec;
    if (std::filesystem::is_directory(e, ec)) {
      if (!e.filename().string().starts_with('.')) FLEET_TRY(vars_folder(e, files, depth + 1));
    } else if (std::filesystem::is_regular_file(e, ec) && vars_file_name(e)) {
      files.push_back(e);
    }
  }
  return {};
}

// group_vars/ or host_vars/ under `base`: NAME, NAME.yml, NAME.yaml, NAME.json, or a
// folder NAME/ of such files.
Result<void> collect_vars(const std::filesystem::path& base, VarsFile::Owner owner, std::vector<VarsFile>& out) {
  const auto dir = base / (owner == VarsFile::Owner::group ? "group_vars" : "host_vars");
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return {};
  for (const auto& e : FLEET_TRY(entries_of(dir))) {
    std::vector<std::filesystem::path> files;
    std::string name = e.filename().string();
    if (std::filesystem::is_directory(e, ec)) {
      if (name.starts_with('.')) continue;
      FLEET_TRY(vars_folder(e, files, 0));
    } else {
      if (!vars_file_name(e)) continue;
      for (std::string_view ext : {".yml", ".yaml", ".json"}) {
        if (name.ends_with(ext)) {
          name.resize(name.size() - ext.size());
          break;
        }
      }
      files.push_back(e);
    }
    for (const auto& f : files) {
      auto text = FLEET_TRY(fs::read_regular_file(f));
      out.push_back(VarsFile{owner, name, f.string(), std::move(text)});
    }
  }
  return {};
}

Result<void> collect_sources(const std::filesystem::path& dir, std::vector<Source>& out, int depth) {
  if (depth > 8) return fail(Errc::invalid_input, dir.string() + ": inventory directories nest deeper than 8 levels");
  for (const auto& e : FLEET_TRY(entries_of(dir))) {
    const std::string name = e.filename().string();
    if (name == "group_vars" || name == "host_vars" || ignored_in_directory(e)) continue;
    std::error_code ec;
    if (std::filesystem::is_directory(e, ec)) {
      FLEET_TRY(collect_sources(e, out, depth + 1));
    } else {
      auto text = FLEET_TRY(fs::read_regular_file(e));
      out.push_back(Source{e.string(), std::move(text)});
    }
  }
  return {};
}

}  // namespace

Result<std::vector<std::string>> expand_host_range(std::string_view pattern) {
  auto open = pattern.find('[');
  if (open == std::string_view::npos) {
    if (pattern.find(']') != std::string_view::npos) {
      return fail(Errc::invalid_input, "host " + text::quoted(pattern) + " has a ']' without its '['");
    }
    return std::vector<std::string>{std::string(pattern)};
  }
  auto close = pattern.find(']', open);
  if (close == std::string_view::npos) {
    return fail(Errc::invalid_input, "host range in " + text::quoted(pattern) + " has no closing ']'");
  }
  auto values = FLEET_TRY(expand_one(pattern.substr(open + 1, close - open - 1)));
  auto rest = FLEET_TRY(expand_host_range(pattern.substr(close + 1)));
  if (values.size() * rest.size() > k_max_range_hosts) {
    return fail(Errc::invalid_input,
                "host range " + text::quoted(pattern) + " names more than " + std::to_string(k_max_range_hosts) + " hosts");
  }
  std::vector<std::string> out;
  const std::string head(pattern.substr(0, open));
  for (const auto& v : values)
    for (const auto& r : rest) out.push_back(head + v + r);
  return out;
}

Format detect_format(std::string_view text, std::string_view file) {
  for (std::string_view ext : {".yml", ".yaml", ".json"})
    if (file.ends_with(ext)) return Format::yaml;
  if (file.ends_with(".ini")) return Format::ini;
  // The first line that is not blank or a comment: a [section] or a line with '=' and no
  // "key:" is INI; "---", "all:" and the like are YAML.
  for (std::size_t from = 0; from < text.size();) {
    auto nl = text.find('\n', from);
    std::string_view line = text::trim(text.substr(from, nl == std::string_view::npos ? std::string_view::npos : nl - from));
    from = nl == std::string_view::npos ? text.size() : nl + 1;
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') return Format::ini;
    if (line.starts_with("---") || line.front() == '{') return Format::yaml;
    auto colon = line.find(':');
    bool yaml_key = colon != std::string_view::npos && (colon + 1 == line.size() || line[colon + 1] == ' ');
    return yaml_key ? Format::yaml : Format::ini;
  }
  return Format::yaml;
}

const Host* Inventory::find(std::string_view name) const {
  for (const auto& h : hosts)
    if (h.name == name) return &h;
  return nullptr;
}

Result<Inventory> parse_sources(const std::vector<Source>& sources, const std::vector<VarsFile>& vars_files) {
  Parser p{Ctx{sources.empty() ? std::string("inventory") : sources.front().file}, {}, {}, {}, {}, {}};
  p.inv.groups["all"].name = "all";
  for (const auto& s : sources) {
    p.c = Ctx{s.file};
    if (detect_format(s.text, s.file) == Format::ini) {
      FLEET_TRY(p.ini_source(s.text));
    } else {
      FLEET_TRY(p.yaml_source(s.text));
    }
  }
  if (p.inv.hosts.empty()) {
    std::string names;
    for (const auto& s : sources) names += (names.empty() ? "" : ", ") + s.file;
    return fail(Errc::invalid_input, (names.empty() ? std::string("inventory") : names) + ": no hosts");
  }
  for (const auto& f : vars_files) {
    // Ansible reads the vars of the groups and hosts the inventory has and no others.
    bool known = f.owner == VarsFile::Owner::group ? p.inv.groups.contains(f.name) : p.host_index.contains(f.name);
    if (known) FLEET_TRY(p.vars_file(f));
  }
  p.c = Ctx{sources.empty() ? std::string("inventory") : sources.front().file};
  FLEET_TRY(p.resolve());
  return p.inv;
}

Result<Inventory> parse_inventory(std::string_view text, std::string_view file) {
  return parse_sources({Source{std::string(file), std::string(text)}});
}

Result<Inventory> load_inventory(const std::filesystem::path& path) {
  std::error_code ec;
  std::vector<Source> sources;
  std::filesystem::path base;
  if (std::filesystem::is_directory(path, ec)) {
    FLEET_TRY(collect_sources(path, sources, 0));
    if (sources.empty()) return fail(Errc::invalid_input, path.string() + ": no inventory file in this directory");
    base = path;
  } else {
    auto text = FLEET_TRY(fs::read_regular_file(path));
    sources.push_back(Source{path.string(), std::move(text)});
    base = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  }
  std::vector<VarsFile> vars;
  FLEET_TRY(collect_vars(base, VarsFile::Owner::group, vars));
  FLEET_TRY(collect_vars(base, VarsFile::Owner::host, vars));
  return parse_sources(sources, vars);
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
