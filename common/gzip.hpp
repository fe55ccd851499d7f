#pragma once
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace fleet::gzip {

// Inflates a gzip stream held in memory (e.g. /proc/config.gz). Pure: no files.
Result<std::string> decompress(std::string_view compressed);

}  // namespace fleet::gzip
