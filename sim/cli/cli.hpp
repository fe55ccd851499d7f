#pragma once
#include <iosfwd>
#include <string>
#include <vector>

namespace fleet::sim::cli {

// Exit codes: 0 verified, 1 the board failed verification or did not report, 2 bad usage.
int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace fleet::sim::cli
