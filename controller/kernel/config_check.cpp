#include "controller/kernel/config_check.hpp"

#include <algorithm>
#include <cctype>
#include <regex>
#include <set>

#include "common/fs.hpp"
#include "common/kconfig.hpp"
#include "common/text.hpp"

namespace fleet::kernel {
namespace {
using text::trim;
}  // namespace

std::vector<std::string> symbols_in(const std::string& expr) {
  std::vector<std::string> out;
  static const std::regex k_sym("[A-Za-z0-9_]+");
  for (auto it = std::sregex_iterator(expr.begin(), expr.end(), k_sym); it != std::sregex_iterator(); ++it) {
    std::string s = it->str();
    if (s == "y" || s == "n" || s == "m" || s == "if" || std::isdigit(static_cast<unsigned char>(s[0]))) continue;
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  }
  return out;
}

namespace {

std::string describe_value(const std::string& symbol, const std::string& value) {
  return value == "n" ? "CONFIG_" + symbol + " is not set" : "CONFIG_" + symbol + "=" + value;
}

}  // namespace

std::vector<Requirement> requirements(const std::vector<std::pair<std::string, std::string>>& named_fragments) {
  std::vector<Requirement> out;
  for (const auto& [name, text] : named_fragments) {
    for (const auto& e : kconfig::parse(text)) {
      auto same = std::find_if(out.begin(), out.end(), [&](const Requirement& r) { return r.symbol == e.symbol; });
      Requirement r{e.symbol, e.value, name + ":" + std::to_string(e.line)};
      if (same != out.end()) *same = r;
      else out.push_back(r);
    }
  }
  return out;
}

void index_kconfig(std::string_view text, const std::string& file, KconfigIndex& index) {
  std::vector<std::string> if_stack;      // conditions of enclosing "if" blocks
  std::vector<std::string> choice_deps;   // "depends on" of the enclosing choice
  bool in_choice = false, in_choice_header = false;
  SymbolInfo* current = nullptr;
  int line_no = 0;
  int help_indent = -1;  // >= 0 while inside a help text: it ends at a line indented no deeper
  auto indent_of = [](std::string_view s) {
    int n = 0;
    for (char ch : s) {
      if (ch == ' ') n += 1;
      else if (ch == '\t') n = (n / 8 + 1) * 8;
      else break;
    }
    return n;
  };
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    std::string_view line = trim(raw);
    if (help_indent >= 0) {
      if (line.empty() || indent_of(raw) > help_indent) continue;
      help_indent = -1;
    }
    if (line == "help" || line == "---help---") {
      help_indent = indent_of(raw);
      continue;
    }
    auto word_after = [&](std::string_view kw) { return std::string(trim(line.substr(kw.size()))); };
    if (line.starts_with("config ") || line.starts_with("menuconfig ")) {
      std::string sym = word_after(line.starts_with("config ") ? "config " : "menuconfig ");
      SymbolInfo info{file, line_no, if_stack};
      if (in_choice) info.depends.insert(info.depends.end(), choice_deps.begin(), choice_deps.end());
      in_choice_header = false;
      // A symbol can be defined in several places; the first definition explains enough.
      auto [it, inserted] = index.emplace(sym, info);
      current = inserted ? &it->second : nullptr;
    } else if (line == "choice" || line.starts_with("choice ")) {
      in_choice = in_choice_header = true;
      choice_deps.clear();
      current = nullptr;
    } else if (line == "endchoice") {
      in_choice = in_choice_header = false;
      current = nullptr;
    } else if (line.starts_with("if ")) {
      if_stack.push_back(word_after("if "));
      current = nullptr;
    } else if (line == "endif") {
      if (!if_stack.empty()) if_stack.pop_back();
      current = nullptr;
    } else if (line.starts_with("menu ") || line == "endmenu" || line.starts_with("source ") ||
               line.starts_with("comment ") || line.starts_with("mainmenu ")) {
      current = nullptr;
      in_choice_header = false;
    } else if (current && (line.starts_with("select ") || line.starts_with("imply "))) {
      std::string rest = word_after(line.starts_with("select ") ? "select " : "imply ");
      current->selects.push_back(rest.substr(0, rest.find_first_of(" \t")));
    } else if (current && (line.starts_with("default ") || line.starts_with("def_bool ") ||
                           line.starts_with("def_tristate "))) {
      current->defaults.push_back(std::string(trim(line.substr(line.find(' ')))));
    } else if (line.starts_with("depends on ")) {
      std::string expr = word_after("depends on ");
      if (current) current->depends.push_back(expr);
      else if (in_choice_header) choice_deps.push_back(expr);
    }
  }
}

KconfigIndex index_tree(const std::filesystem::path& source_dir) {
  KconfigIndex index;
  std::error_code ec;
  auto it = std::filesystem::recursive_directory_iterator(source_dir, ec);
  for (; !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    const auto& p = it->path();
    auto rel = std::filesystem::relative(p, source_dir).generic_string();
    if (it->is_directory()) {
      bool other_arch = rel.starts_with("arch/") && rel.size() > 5 && rel != "arch/arm64" &&
                        std::count(rel.begin(), rel.end(), '/') == 1;
      if (other_arch || rel == "Documentation" || rel == "tools" || rel == ".git") it.disable_recursion_pending();
      continue;
    }
    if (!p.filename().string().starts_with("Kconfig")) continue;
    if (auto text = fs::read_file(p)) index_kconfig(*text, rel, index);
  }
  return index;
}

std::vector<Finding> check_config(const std::vector<Requirement>& wanted,
                                  const std::map<std::string, std::string>& config,
                                  const std::set<std::string>& optional_symbols, const KconfigIndex& index) {
  std::vector<Finding> out;
  for (const auto& r : wanted) {
    std::string actual = kconfig::value_of(config, r.symbol);
    if (actual == r.value) continue;
    Finding f{r, actual, false, ""};
    auto def = index.find(r.symbol);
    bool defined = def != index.end();
    if (!index.empty() && !defined && optional_symbols.contains(r.symbol)) {
      f.optional_missing = true;
      f.explanation = "CONFIG_" + r.symbol + " (" + r.origin + ") is not defined in this kernel tree; optional, skipped";
      out.push_back(f);
      continue;
    }
    // Without the tree: an optional symbol the .config does not mention at all (not even
    // "is not set") is most likely one the tree does not define. A note, with the way to know.
    if (index.empty() && optional_symbols.contains(r.symbol) && !config.contains(r.symbol)) {
      f.optional_missing = true;
      f.explanation = "CONFIG_" + r.symbol + " (" + r.origin +
                      ") does not appear in the .config: the tree probably does not define it; optional, skipped "
                      "(--source DIR checks the tree)";
      out.push_back(f);
      continue;
    }
    f.explanation = describe_value(r.symbol, r.value) + " was requested (" + r.origin + ") but the final .config has " +
                    describe_value(r.symbol, actual);
    if (!index.empty() && !defined) {
      f.explanation += ": this kernel tree has no such option for arm64";
    } else if (defined) {
      std::string unmet;
      for (const auto& expr : def->second.depends) {
        std::string values;
        for (const auto& s : symbols_in(expr)) {
          values += (values.empty() ? "" : ", ") + s + "=" + kconfig::value_of(config, s);
        }
        unmet += "\n    depends on " + expr + "  [" + values + "]";
      }
      f.explanation += " (defined at " + def->second.file + ":" + std::to_string(def->second.line) + ")";
      if (!unmet.empty()) f.explanation += unmet;
      else if (r.value != "n") f.explanation += "\n    no 'depends on': another option selects or excludes it";
    }
    out.push_back(f);
  }
  return out;
}

std::vector<std::string> contract_conflicts(const Contract& c, const std::map<std::string, std::string>& config) {
  std::vector<std::string> out;
  auto val = [&](const char* s) { return kconfig::value_of(config, s); };
  if (c.page_size) {
    long built = val("ARM64_64K_PAGES") == "y" ? 65536 : val("ARM64_16K_PAGES") == "y" ? 16384 : 4096;
    if (built != *c.page_size) {
      out.push_back("contract page_size " + std::to_string(*c.page_size) + " but the config builds " +
                    std::to_string(built) + "-byte pages");
    }
  }
  if (c.thp) {
    std::string built = val("TRANSPARENT_HUGEPAGE") != "y"       ? "(not built)"
                        : val("TRANSPARENT_HUGEPAGE_ALWAYS") == "y" ? "always"
                                                                    : "madvise";
    if (built != *c.thp) out.push_back("contract thp " + *c.thp + " but the config's default mode is " + built);
  }
  if (c.hz && val("HZ") != std::to_string(*c.hz)) {
    out.push_back("contract hz " + std::to_string(*c.hz) + " but CONFIG_HZ=" + val("HZ"));
  }
  if (c.tick) {
    std::string built = val("NO_HZ_FULL") == "y" ? "NO_HZ_FULL" : val("NO_HZ_IDLE") == "y" ? "NO_HZ_IDLE" : "HZ_PERIODIC";
    if (built != *c.tick) out.push_back("contract tick " + *c.tick + " but the config selects " + built);
  }
  if (c.numa_nodes.value_or(c.numa_nodes_min.value_or(1)) > 1 && val("NUMA") != "y") {
    out.push_back("contract asks for several NUMA nodes but CONFIG_NUMA is not set");
  }
  if (c.numa_emulation.value_or(false) && (val("NUMA") != "y" || val("NUMA_EMU") != "y")) {
    out.push_back("contract asks for the bootloader's numa=fake nodes but CONFIG_NUMA_EMU=y is not set");
  }
  if ((c.hz || c.tick) && (val("IKCONFIG") != "y" || val("IKCONFIG_PROC") != "y")) {
    out.push_back("contract checks hz/tick from /proc/config.gz but CONFIG_IKCONFIG=y and CONFIG_IKCONFIG_PROC=y are not both set");
  }
  return out;
}

const char* why_name(ConfigChange::Why why) {
  switch (why) {
    case ConfigChange::Why::requested: return "requested";
    case ConfigChange::Why::follows: return "follows";
    case ConfigChange::Why::unexplained: return "unexplained";
  }
  return "?";
}

std::vector<std::string> requested_changed(const std::vector<Requirement>& requested,
                                           const std::map<std::string, std::string>& before,
                                           const std::map<std::string, std::string>& after) {
  std::vector<std::string> out;
  for (const auto& r : requested) {
    if (kconfig::value_of(before, r.symbol) != kconfig::value_of(after, r.symbol)) out.push_back(r.symbol);
  }
  return out;
}

std::vector<ConfigChange> diff_configs(const std::map<std::string, std::string>& before,
                                       const std::map<std::string, std::string>& after,
                                       const std::vector<Requirement>& requested_before,
                                       const std::vector<Requirement>& requested_after, const KconfigIndex& index) {
  std::vector<ConfigChange> out;
  auto value = [](const std::map<std::string, std::string>& m, const std::string& s) {
    auto it = m.find(s);
    return it == m.end() ? std::string("n") : it->second;
  };
  std::set<std::string> symbols;
  for (const auto& [s, v] : before) symbols.insert(s);
  for (const auto& [s, v] : after) symbols.insert(s);
  std::set<std::string> changed;
  for (const auto& s : symbols) {
    ConfigChange c{s, value(before, s), value(after, s), ConfigChange::Why::unexplained, ""};
    if (c.before == c.after) continue;
    changed.insert(s);
    out.push_back(c);
  }
  for (auto& c : out) {
    for (const auto& r : requested_after) {
      if (r.symbol == c.symbol && r.value == c.after) {
        c.why = ConfigChange::Why::requested;
        c.because = r.origin;
      }
    }
    for (const auto& r : requested_before) {
      if (c.why == ConfigChange::Why::unexplained && r.symbol == c.symbol && r.value == c.before) {
        c.why = ConfigChange::Why::requested;
        c.because = r.origin + " (the first asks for the old value)";
      }
    }
    if (c.why == ConfigChange::Why::requested) continue;
    // Selected or implied by a changed symbol?
    for (const auto& other : changed) {
      auto it = index.find(other);
      if (it == index.end()) continue;
      const auto& sel = it->second.selects;
      if (std::find(sel.begin(), sel.end(), c.symbol) != sel.end()) {
        c.why = ConfigChange::Why::follows;
        c.because = "selected by " + other;
        break;
      }
    }
    if (c.why != ConfigChange::Why::unexplained) continue;
    // Its own depends, enclosing ifs or defaults name a changed symbol?
    if (auto it = index.find(c.symbol); it != index.end()) {
      const std::pair<const char*, const std::vector<std::string>*> exprs[] = {{"depends on ", &it->second.depends},
                                                                             {"default ", &it->second.defaults}};
      for (const auto& [kind, list] : exprs) {
        for (const auto& e : *list) {
          for (const auto& s : symbols_in(e)) {
            if (s != c.symbol && changed.contains(s) && c.why == ConfigChange::Why::unexplained) {
              c.why = ConfigChange::Why::follows;
              c.because = kind + e;
            }
          }
        }
      }
    }
  }
  return out;
}

}  // namespace fleet::kernel
