#pragma once
// A kernel bundle: a folder with the image, dtbs, overlays, modules, the .config, the
// contract and manifest.json, which lists every file with its sha256 and size. Written by
// fleetctl, checked by fleetctl (cache) and by fleet-agent before it installs anything.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace fleet::bundle {

inline constexpr int k_format = 1;
inline constexpr const char* k_manifest = "manifest.json";
inline constexpr const char* k_contract = "contract.json";
// Kept beside a bundle by `fleetctl kernel build`, never part of it.
inline constexpr const char* k_build_log = "build.log";

struct FileEntry {
  std::string sha256;
  std::uint64_t size = 0;
};

struct Manifest {
  int format = k_format;
  std::string profile;
  std::string kernel_release;
  std::string build_key;                   // content hash of source, config and fragments
  std::string image;                       // path of the kernel image inside the bundle
  std::vector<std::string> cmdline_extra;  // words the profile adds to the kernel command line
  std::map<std::string, FileEntry> files;  // relative path -> hash (manifest and build.log excluded)
};

Result<Manifest> parse_manifest(std::string_view json_text, std::string_view source);
std::string manifest_to_json(const Manifest& m);

// Hashes every regular file under dir (but manifest.json and build.log) into m.files.
// Symlinks are refused: a bundle is copied to FAT boot partitions, which have none.
Result<void> hash_tree(const std::filesystem::path& dir, Manifest& m);

// Reads dir/manifest.json and checks that every listed file exists with its size and
// sha256, and that no unlisted file is present. The error names the first bad file.
Result<Manifest> verify(const std::filesystem::path& dir);

}  // namespace fleet::bundle
