#pragma once
// fleetctl model push | list: model files onto boards, peer to peer (controller/model/push.hpp).
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

namespace fleet::controller::cli {

int model_command(const std::string& sub, const std::vector<std::string>& argv, std::ostream& out, std::ostream& err,
                  const std::filesystem::path& default_state);

}  // namespace fleet::controller::cli
