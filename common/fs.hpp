#pragma once
// Files at the edge: whole-file reads, and writes that never leave a half-written file
// (write a temporary, fsync it, rename over the target, fsync the folder).
#include <filesystem>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace fleet::fs {

Result<std::string> read_file(const std::filesystem::path& path);
Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view data);
Result<void> fsync_dir(const std::filesystem::path& dir);
// Creates a fresh directory under the system temp dir (mkdtemp); the caller removes it.
Result<std::filesystem::path> make_temp_dir(std::string_view prefix);

}  // namespace fleet::fs
