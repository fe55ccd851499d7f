#include "tests/support/temp_dir.hpp"

#include <fstream>
#include <stdexcept>

#include "common/fs.hpp"

namespace fleet::test {

TempDir::TempDir(std::string_view prefix) {
  auto dir = fs::make_temp_dir(prefix);
  if (!dir) throw std::runtime_error(dir.error().message);
  path_ = *dir;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::filesystem::path TempDir::write(const std::filesystem::path& rel, std::string_view content) const {
  auto p = path_ / rel;
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
  return p;
}

std::filesystem::path source_dir() { return FLEET_SOURCE_DIR; }

}  // namespace fleet::test
