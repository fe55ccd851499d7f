#pragma once
// sha256 of strings and files, as lowercase hex (the form sha256sum prints).
#include <filesystem>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace fleet::hash {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view data);
  std::string hex();  // finishes the hash

 private:
  void* ctx_;
};

std::string sha256_hex(std::string_view data);
Result<std::string> sha256_file(const std::filesystem::path& path);

}  // namespace fleet::hash
