#pragma once
// Command-line options for fleetctl and fleet-agent: "--name value", "--name=value" and
// flags. Pure: a list of strings in, parsed options or a clear error out.
#include <map>
#include <iosfwd>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace fleet::args {

enum class Takes { nothing, value };

struct Option {
  std::string name;        // without the leading dashes; a one-letter name is written -n
  Takes takes = Takes::nothing;
  std::string value_name;  // shown in help: --profile NAME
  std::string help;
};

struct Parsed {
  std::map<std::string, std::string> values;
  std::set<std::string> flags;
  std::vector<std::string> positional;

  bool flag(const std::string& name) const { return flags.contains(name); }
  std::optional<std::string> value(const std::string& name) const;
};

Result<Parsed> parse(std::span<const std::string> argv, std::span<const Option> options);

// A whole-number option within [min, max]: nullopt when absent, an error naming the option
// ("--threads must be a whole number from 1 to 1024, got 'x'") when it is not one.
Result<std::optional<int>> int_value(const Parsed& parsed, const std::string& name, int min, int max);

// "  --profile NAME   the kernel profile ..." lines, aligned.
std::string help(std::span<const Option> options);

struct Usage {
  std::string program;      // "fleetctl", named in errors
  std::string synopsis;     // "fleetctl kernel build --profile NAME [...]"
  std::string description;  // shown by --help
  std::size_t max_positional = 0;  // plain arguments allowed (fleetctl bundle sign BUNDLE)
};

// A subcommand's options, the way every fleet program handles them: --help prints the
// usage (code 0), a bad option or a stray argument prints the error and the synopsis
// (code 2). nullopt means: return `code`.
std::optional<Parsed> parse_command(std::span<const std::string> argv, std::span<const Option> options,
                                    const Usage& usage, std::ostream& out, std::ostream& err, int& code);

}  // namespace fleet::args
