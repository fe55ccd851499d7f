#pragma once
// A board's models folder: the files `fleetctl model push` put there, and what it knows of
// each without reading it again.
//
//   DIR/NAME                        the model, whole (it appears by rename, never half)
//   DIR/.fleet-models/NAME.json     its record: size, sha256, mtime, when it came
//   DIR/.fleet-models/partial/SHA/  a transfer under way (or cut off): NAME, pieces so far
//
// A record holds while the file keeps the size and mtime it had: then the file is taken to
// be the content its sha256 names. A file without a record (copied by hand) is hashed once.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace fleet::model {

struct Held {
  std::string name;
  std::int64_t size = 0;
  std::string sha256;
  std::int64_t at_ms = 0;  // when it was put there (ms since the epoch)
};

std::filesystem::path records_dir(const std::filesystem::path& dir);
std::filesystem::path partial_dir(const std::filesystem::path& dir, const std::string& sha256);

// Whether DIR/NAME is the file of `size` and `sha256`; hashes it if it has no valid record
// (and then writes one when it matches).
Result<bool> holds(const std::filesystem::path& dir, const std::string& name, std::int64_t size, const std::string& sha256);

// Records DIR/NAME (which must exist) as `held`: its size and mtime from now on.
Result<void> record(const std::filesystem::path& dir, const Held& held);

// Every model of DIR with a valid record, by name.
Result<std::vector<Held>> list(const std::filesystem::path& dir);

// Free bytes for an unprivileged writer on the file system DIR is on (or would be on: its
// nearest existing parent).
Result<std::int64_t> free_bytes(const std::filesystem::path& dir);

// Bytes on disk of a cut-off transfer of `sha256` (0 if none): what a resumed one need not
// find room for again.
std::int64_t partial_bytes(const std::filesystem::path& dir, const std::string& sha256, const std::string& name);

// A model's file name: not empty, no '/', not "." or "..", not starting with '.'.
Result<void> check_name(const std::string& name, const std::string& what);
// 64 lowercase hex digits.
Result<void> check_sha256(const std::string& hex, const std::string& what);

}  // namespace fleet::model
