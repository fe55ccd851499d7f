#pragma once
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace fleet::gzip {

// Inflates a gzip stream held in memory (e.g. /proc/config.gz). Pure: no files.
Result<std::string> decompress(std::string_view compressed);
// A gzip stream of `data` (what the kernel makes /proc/config.gz from). Pure.
Result<std::string> compress(std::string_view data);

}  // namespace fleet::gzip
