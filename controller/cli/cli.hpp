#pragma once
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace fleet::controller::cli {

// Exit codes: 0 success, 1 the work failed (a build, a check), 2 bad usage or input.
int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// The prefix a package installed this fleetctl under (/usr for /usr/bin/fleetctl: the kernel
// profiles are in PREFIX/share/fleetctl/kernel), or nullopt when it runs from a build tree.
std::optional<std::filesystem::path> installed_prefix();

}  // namespace fleet::controller::cli
