#include "node-agent/cli/cli.hpp"

#include <array>
#include <ostream>

#include "common/args.hpp"
#include "common/fs.hpp"
#include "node-agent/verify/verify.hpp"

#ifndef FLEET_VERSION
#define FLEET_VERSION "0.0.0"
#endif

namespace fleet::agent::cli {
namespace {

constexpr int k_exit_ok = 0;
constexpr int k_exit_check_failed = 1;
constexpr int k_exit_usage = 2;

const std::string k_usage =
    "usage: fleet-agent COMMAND [OPTIONS]\n"
    "\n"
    "The fleetctl agent on a Raspberry Pi 5 board.\n"
    "\n"
    "commands:\n"
    "  verify     check the running kernel against a bundle's contract\n"
    "  version    print the agent version\n"
    "\n"
    "Run 'fleet-agent COMMAND --help' for a command's options.\n";

const std::array k_verify_options = {
    args::Option{"contract", args::Takes::value, "FILE", "the contract (contract.json of a bundle); required"},
    args::Option{"root", args::Takes::value, "DIR",
                 "read /proc and /sys under DIR instead of the running system (tests, rescue)"},
    args::Option{"json", args::Takes::nothing, "", "print one JSON object instead of a table"},
    args::Option{"help", args::Takes::nothing, "", "show this help"},
};

int verify(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  auto parsed = args::parse(argv, k_verify_options);
  if (!parsed) {
    err << "fleet-agent verify: " << parsed.error().message << "\n";
    return k_exit_usage;
  }
  if (parsed->flag("help")) {
    out << "usage: fleet-agent verify --contract FILE [--root DIR] [--json]\n\n"
           "Checks page size, Transparent HugePages mode, NUMA nodes, CONFIG_HZ, tick mode,\n"
           "kernel release and headless state of the running kernel against the contract.\n"
           "Exit status: 0 all properties pass, 1 at least one fails, 2 bad usage or input.\n\n"
        << args::help(k_verify_options);
    return k_exit_ok;
  }
  if (!parsed->positional.empty()) {
    err << "fleet-agent verify: unexpected argument '" << parsed->positional.front() << "'\n";
    return k_exit_usage;
  }
  auto contract_path = parsed->value("contract");
  if (!contract_path) {
    err << "fleet-agent verify: --contract FILE is required (the contract.json of a bundle)\n";
    return k_exit_usage;
  }
  auto text = fs::read_file(*contract_path);
  if (!text) {
    err << "fleet-agent verify: " << text.error().message << "\n";
    return k_exit_usage;
  }
  auto contract = parse_contract(*text, *contract_path);
  if (!contract) {
    err << "fleet-agent verify: " << contract.error().message << "\n";
    return k_exit_usage;
  }
  auto root = parsed->value("root");
  Observations obs = root ? observe(*root, Source::folder) : observe("/", Source::live);
  Report report = evaluate(*contract, obs);
  out << (parsed->flag("json") ? report_json(report) : report_table(report));
  return report.ok() ? k_exit_ok : k_exit_check_failed;
}

}  // namespace

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    (args.empty() ? err : out) << k_usage;
    return args.empty() ? k_exit_usage : k_exit_ok;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "verify") return verify(rest, out, err);
  if (args[0] == "version" || args[0] == "--version") {
    out << "fleet-agent " << FLEET_VERSION << "\n";
    return k_exit_ok;
  }
  err << "fleet-agent: unknown command '" << args[0] << "'\n\n" << k_usage;
  return k_exit_usage;
}

}  // namespace fleet::agent::cli
