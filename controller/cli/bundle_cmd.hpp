#pragma once
// fleetctl bundle keygen | sign | verify: the signing keys and signatures of kernel bundles.
#include <iosfwd>
#include <string>
#include <vector>

namespace fleet::controller::cli {

int bundle_command(const std::string& sub, const std::vector<std::string>& argv, std::ostream& out, std::ostream& err);

}  // namespace fleet::controller::cli
