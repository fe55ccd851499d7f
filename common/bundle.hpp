#pragma once
// A kernel bundle: a folder with the image, dtbs, overlays, modules, the .config, the
// contract and manifest.json, which lists every file with its sha256 and size. Written by
// fleetctl, checked by fleetctl (cache) and by fleet-agent before it installs anything.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/signing.hpp"

namespace fleet::bundle {

inline constexpr int k_format = 1;
inline constexpr const char* k_manifest = "manifest.json";
inline constexpr const char* k_contract = "contract.json";
// The bundle's contract as the agent copies it into the slot it installs (a folder of
// /boot/firmware), beside the kernel: what boot-check checks the running kernel against, and
// what a light board's kernel shows (sim/light.hpp).
inline constexpr const char* k_slot_contract = "fleet-contract.json";
// Kept beside a bundle by `fleetctl kernel build`, never part of it.
inline constexpr const char* k_build_log = "build.log";
// The Ed25519 signature of manifest.json's exact bytes (which list every file's sha256);
// not listed in the manifest it signs. Written by `fleetctl bundle sign`.
inline constexpr const char* k_signature = "manifest.sig";

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

// Every manifest field is checked where the manifest is parsed, before it becomes a path on
// a board or a word of a command line; the board checks names again wherever it joins one
// into a path (its state file can be corrupt too). Each is pure.
//   build_key       exactly 64 lowercase hex digits (a sha256)
//   kernel_release  letters, digits, '.', '_', '+', '-'; 1 to 64 characters; not "." or ".."
//   profile         letters, digits, '.', '_', '-'; 1 to 64 characters; not "." or ".."
//   file paths      relative, '/'-separated names of [A-Za-z0-9._+,=@~-], no "." or ".."
//                   component, at most 32 deep and 1024 long; unique on FAT (case-folded)
//   cmdline_extra   one word each (text::command_word_problem)
bool is_build_key(std::string_view s);
bool is_sha256_hex(std::string_view s);
bool is_kernel_release(std::string_view s);
bool is_profile_name(std::string_view s);
// "" if `path` is a plain relative path inside a bundle, else why not.
std::string bundle_path_problem(std::string_view path);
// A file's size in the manifest is refused above this: sums of sizes cannot overflow.
inline constexpr std::uint64_t k_max_file_size = std::uint64_t{1} << 40;

Result<Manifest> parse_manifest(std::string_view json_text, std::string_view source);
std::string manifest_to_json(const Manifest& m);

// What a bundle folder holds, walked without following links (lstat). A bundle is regular
// files and folders only: a symlink (FAT has none), FIFO, device, socket, a file with more
// than one link or with the setuid/setgid bit is refused, naming it, before anything reads
// it. Hashing, verifying and installing all go through this one list, so the signature
// (over the manifest, which lists every file's sha256) covers exactly what is installed.
struct TreeFile {
  std::string path;  // relative, '/'-separated
  std::uint64_t size = 0;
};
Result<std::vector<TreeFile>> list_tree(const std::filesystem::path& dir);

// Hashes every file list_tree finds (but manifest.json, manifest.sig and build.log) into
// m.files.
Result<void> hash_tree(const std::filesystem::path& dir, Manifest& m);

// Reads dir/manifest.json and checks that every listed file exists with its size and
// sha256, and that no unlisted file is present. The error names the first bad file.
// `manifest_text`, when given, receives the exact bytes that were parsed and checked: the
// signature is then checked over those (check_signature's third argument), not over a
// second read that could find another file.
Result<Manifest> verify(const std::filesystem::path& dir, std::string* manifest_text = nullptr);

struct Signature {
  std::string algorithm = "ed25519";
  std::string key_id;
  std::string signature;  // raw bytes (base64 in the file)
};

Result<Signature> parse_signature(std::string_view json_text, std::string_view source);
std::string signature_to_json(const Signature& s);

// Verifies dir (as verify does), then signs its manifest.json: writes dir/manifest.sig.
// Returns the signing key's id.
Result<std::string> sign(const std::filesystem::path& dir, std::string_view private_pem, std::string_view key_source);

// Whose signature dir/manifest.json carries, among `trusted`: the key's id. Errors name the
// bundle and say which of: not signed, signed by a key not trusted, signature wrong.
// Checks the signature only; verify() checks the files against the manifest.
Result<std::string> check_signature(const std::filesystem::path& dir, const std::vector<signing::PublicKey>& trusted,
                                    std::optional<std::string_view> manifest_text = std::nullopt);

// Every *.pem in `dir` as a trusted public key (none if dir does not exist); an unreadable
// or non-Ed25519 file is an error naming it.
Result<std::vector<signing::PublicKey>> load_trusted_keys(const std::filesystem::path& dir);

}  // namespace fleet::bundle
