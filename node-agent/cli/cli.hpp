#pragma once
#include <iosfwd>
#include <string>
#include <vector>

namespace fleet::agent::cli {

// Exit codes: 0 success (all properties pass), 1 a check failed, 2 bad usage or input.
int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace fleet::agent::cli
