#pragma once
// The two disks of a virtual Pi 5, laid out as Raspberry Pi OS lays out its SD card: a FAT32
// boot partition labelled "bootfs" and an ext4 root file system labelled "rootfs". The host
// side never mounts them (nothing here needs root's mount rights or changes the machine):
// the FAT image is read and written with mtools, as the Pi's firmware reads the partition
// without an operating system; the ext4 image is made with mke2fs -d and read with debugfs.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace fleet::sim::disk {

// Sizes of a fresh board's images (sparse files: only what is written takes room).
inline constexpr std::uint64_t k_bootfs_mib = 512;   // Raspberry Pi OS bookworm's bootfs
inline constexpr std::uint64_t k_rootfs_mib = 4096;  // room for bundles pushed to /var/tmp
inline constexpr const char* k_bootfs_label = "bootfs";
inline constexpr const char* k_rootfs_label = "rootfs";

// A FAT32 image of `mib` MiB labelled `label`, holding a copy of the folder `from` (empty:
// an empty file system). Replaces nothing: an existing `image` is an error.
Result<void> make_fat(const std::filesystem::path& image, std::uint64_t mib, const std::string& label,
                      const std::filesystem::path& from);

// An ext4 image of `mib` MiB labelled `label` holding the folder `from` with its owners,
// modes and symlinks (mke2fs -d). An existing `image` is an error.
Result<void> make_ext4(const std::filesystem::path& image, std::uint64_t mib, const std::string& label,
                       const std::filesystem::path& from);

// A file of the FAT image by its path in the partition ("config.txt", "fleet-a/kernel_2712.img";
// FAT's names are case-insensitive, so are these); nullopt if there is no such file. Err if
// the image cannot be read as FAT.
Result<std::optional<std::string>> read_fat_file(const std::filesystem::path& image, const std::string& path);
// Every file and folder of the FAT image, as "dir/", "dir/file", in mtools' order.
Result<std::vector<std::string>> list_fat(const std::filesystem::path& image);
// Writes (or replaces) one file of the FAT image, making its folders. For setting a board up
// while it is off, never while QEMU has the image.
Result<void> write_fat_file(const std::filesystem::path& image, const std::string& path, const std::string& data);

// What fsck.vfat -n (look, change nothing) says of a FAT image.
struct FsckReport {
  bool clean = false;   // exit status 0: no error found
  // What it found beyond the marks every FAT mounted read-write carries after a power cut
  // (the dirty bit, the backup boot sector's older copy of it, a stale free-cluster count):
  // lost or cross-linked clusters, broken chains, differing FAT copies, bad entries. Empty
  // means the files are consistent.
  std::vector<std::string> damage;
  std::string output;   // its whole output, for a test's or a person's eyes
};
Result<FsckReport> fsck_fat(const std::filesystem::path& image);
// The damage lines of fsck.fat's output (see FsckReport). Pure.
std::vector<std::string> fsck_damage(const std::string& output);

// A file of the ext4 image (debugfs, read-only); nullopt if there is no such file. The
// journal is not replayed: on an image whose board is running or lost power, what the last
// checkpoint holds. For diagnostics; a running board is read over SSH.
Result<std::optional<std::string>> read_ext4_file(const std::filesystem::path& image, const std::string& path);

// A path inside an image must be relative, without "..", and printable: it becomes an mtools
// or debugfs argument. "" if fine, else why not. Pure.
std::string image_path_problem(const std::string& path);

}  // namespace fleet::sim::disk
