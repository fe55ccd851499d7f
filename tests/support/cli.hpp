#pragma once
// Runs a program's in-process entry point (fleetctl's or fleet-agent's cli::run) as a test
// would run the binary: arguments in, exit code, stdout and stderr out.
#include <sstream>
#include <string>
#include <vector>

namespace fleet::test {

struct CliResult {
  int code = 0;
  std::string out;
  std::string err;
};

template <class Run>
CliResult run_cli(Run&& run, const std::vector<std::string>& args) {
  std::ostringstream o, e;
  CliResult r;
  r.code = run(args, o, e);
  r.out = o.str();
  r.err = e.str();
  return r;
}

}  // namespace fleet::test
