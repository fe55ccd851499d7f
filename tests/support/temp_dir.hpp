#pragma once
#include <filesystem>
#include <string>
#include <string_view>

namespace fleet::test {

// A fresh folder under /tmp, removed with everything in it when the object goes.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "fleet-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::filesystem::path& p) const { return path_ / p; }
  // Writes a file (creating its folders) and returns its path.
  std::filesystem::path write(const std::filesystem::path& rel, std::string_view content) const;

 private:
  std::filesystem::path path_;
};

// The repository's source folder (for kernel/ profiles and fixtures).
std::filesystem::path source_dir();

}  // namespace fleet::test
