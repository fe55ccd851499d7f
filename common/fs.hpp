#pragma once
// Files at the edge: whole-file reads, and writes that never leave a half-written file
// (write a temporary, fsync it, rename over the target, fsync the folder).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include <sys/stat.h>

#include "common/error.hpp"

namespace fleet::fs {

Result<std::string> read_file(const std::filesystem::path& path);

// Who may read what write_file_atomic writes. The mode is that of the temporary from its
// first byte (mkstemp creates it 0600, fchmod widens it before any write), so a secret
// written owner_only is never readable by others, not even between write and chmod.
enum class FileMode { world_readable, owner_only };
// Whether the write must survive a power cut. `until_power_cut` skips the fsyncs (the rename
// still leaves readers the old file or the new one, never half of one): for files worth
// nothing after a restart, such as a light board's /proc and /sys, written by the hundred
// while boards upload, where each fsync waited behind their writes.
enum class Durability { durable, until_power_cut };
Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view data,
                               FileMode mode = FileMode::world_readable, Durability durability = Durability::durable);

// Reads `path` only if it is a plain regular file: not a symlink (O_NOFOLLOW), FIFO, device
// or socket (checked with fstat on what was opened, and opened O_NONBLOCK so a FIFO cannot
// block the open), one link only, no setuid/setgid bit. What a bundle may hold.
Result<std::string> read_regular_file(const std::filesystem::path& path);
// The same, handing the bytes over in chunks of 64 KiB (hashing a kernel or a module without
// holding it); returns how many bytes were read.
Result<std::uint64_t> read_regular_chunks(const std::filesystem::path& path,
                                          const std::function<void(std::string_view)>& chunk);
// The same refusal for an lstat result: "" if `st` is a plain regular file, else why not.
std::string irregular_file_reason(const struct ::stat& st);
Result<void> fsync_dir(const std::filesystem::path& dir);
// (write_file_atomic with FileMode::owner_only refuses a file system that cannot keep the
// file private, such as FAT, which ignores chmod.)
// fsync of a file or folder just renamed, before its parent's. On FAT (vfat's rename) the
// entry under the new name is written only with the renamed inode, which an fsync of the
// folder does not write; until then the name still points at the replaced file's clusters,
// which the same fsync of the folder has already marked free in the FAT. On ext4 it costs
// a no-op fsync.
Result<void> fsync_renamed(const std::filesystem::path& path);
// Creates a fresh directory under the system temp dir (mkdtemp); the caller removes it.
Result<std::filesystem::path> make_temp_dir(std::string_view prefix);

}  // namespace fleet::fs
