#pragma once
#include <iosfwd>
#include <string>
#include <vector>

namespace fleet::controller::cli {

// Exit codes: 0 success, 1 the work failed (a build, a check), 2 bad usage or input.
int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace fleet::controller::cli
