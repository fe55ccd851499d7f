#include "common/args.hpp"

#include <algorithm>
#include <charconv>
#include <ostream>

namespace fleet::args {

std::optional<std::string> Parsed::value(const std::string& name) const {
  auto it = values.find(name);
  if (it == values.end()) return std::nullopt;
  return it->second;
}

Result<Parsed> parse(std::span<const std::string> argv, std::span<const Option> options) {
  Parsed out;
  bool only_positional = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    std::string a = argv[i];
    // One-letter options are written -n (an Option named "n"): "-n 3" reads as "--n 3".
    if (!only_positional && a.size() == 2 && a[0] == '-' && a[1] != '-' &&
        std::any_of(options.begin(), options.end(), [&](const Option& o) { return o.name == a.substr(1); })) {
      a = "-" + a;
    }
    if (only_positional || !a.starts_with("--") || a == "-") {
      out.positional.push_back(a);
      continue;
    }
    if (a == "--") {
      only_positional = true;
      continue;
    }
    std::string name = a.substr(2);
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name.resize(eq);
    }
    auto spec = std::find_if(options.begin(), options.end(), [&](const Option& o) { return o.name == name; });
    if (spec == options.end()) return fail(Errc::invalid_input, "unknown option --" + name + " (see --help)");
    if (spec->takes == Takes::nothing) {
      if (inline_value) return fail(Errc::invalid_input, "option --" + name + " takes no value");
      out.flags.insert(name);
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= argv.size()) {
        return fail(Errc::invalid_input, "option --" + name + " needs a value (--" + name + " " + spec->value_name + ")");
      }
      inline_value = argv[++i];
    }
    out.values[name] = *inline_value;
  }
  return out;
}

Result<std::optional<int>> int_value(const Parsed& parsed, const std::string& name, int min, int max) {
  auto v = parsed.value(name);
  if (!v) return std::optional<int>{};
  int n = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc{} || p != v->data() + v->size() || n < min || n > max) {
    return fail(Errc::invalid_input, (name.size() == 1 ? "-" : "--") + name + " must be a whole number from " +
                                         std::to_string(min) + " to " + std::to_string(max) + ", got '" + *v + "'");
  }
  return std::optional<int>{n};
}

std::string help(std::span<const Option> options) {
  std::vector<std::string> heads;
  size_t width = 0;
  for (const auto& o : options) {
    heads.push_back((o.name.size() == 1 ? "-" : "--") + o.name + (o.takes == Takes::value ? " " + o.value_name : ""));
    width = std::max(width, heads.back().size());
  }
  std::string out;
  for (size_t i = 0; i < options.size(); ++i) {
    out += "  " + heads[i] + std::string(width - heads[i].size() + 3, ' ') + options[i].help + "\n";
  }
  return out;
}

std::optional<Parsed> parse_command(std::span<const std::string> argv, std::span<const Option> options,
                                    const Usage& usage, std::ostream& out, std::ostream& err, int& code) {
  auto parsed = parse(argv, options);
  if (!parsed) {
    err << usage.program << ": " << parsed.error().message << "\nusage: " << usage.synopsis << "\n";
    code = 2;
    return std::nullopt;
  }
  if (parsed->flag("help")) {
    out << "usage: " << usage.synopsis << "\n\n" << usage.description << "\n\noptions:\n" << help(options);
    code = 0;
    return std::nullopt;
  }
  if (parsed->positional.size() > usage.max_positional) {
    err << usage.program << ": unexpected argument '" << parsed->positional[usage.max_positional] << "'\nusage: " << usage.synopsis
        << "\n";
    code = 2;
    return std::nullopt;
  }
  return *parsed;
}

}  // namespace fleet::args
