#pragma once
// Every write the agent makes to a board goes through Disk, so a test can cut the power
// after any one of them (CrashingDisk) and check that the board still boots a valid kernel.
// Each mutating call is durable when it returns (fsync of the file and of its folder).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace fleet::agent {

class Disk {
 public:
  virtual ~Disk() = default;
  // Mutating calls: each one is one "write" for crash injection.
  virtual Result<void> write_atomic(const std::filesystem::path& path, std::string_view data) = 0;
  // Copies a plain regular file (a symlink, FIFO, device or hard-linked file is refused, as
  // opened) whose bytes must hash to `sha256` (its manifest entry): what is installed is
  // what was verified and signed, even if the bundle changed after the check.
  virtual Result<void> copy_file(const std::filesystem::path& from, const std::filesystem::path& to,
                                 std::string_view sha256) = 0;
  virtual Result<void> rename(const std::filesystem::path& from, const std::filesystem::path& to) = 0;
  virtual Result<void> remove_all(const std::filesystem::path& path) = 0;
  virtual Result<void> mkdirs(const std::filesystem::path& path) = 0;
  // Reads.
  virtual std::optional<std::string> read(const std::filesystem::path& path) = 0;
  virtual Result<std::uint64_t> free_bytes(const std::filesystem::path& path) = 0;
};

class RealDisk : public Disk {
 public:
  Result<void> write_atomic(const std::filesystem::path& path, std::string_view data) override;
  Result<void> copy_file(const std::filesystem::path& from, const std::filesystem::path& to,
                         std::string_view sha256) override;
  Result<void> rename(const std::filesystem::path& from, const std::filesystem::path& to) override;
  Result<void> remove_all(const std::filesystem::path& path) override;
  Result<void> mkdirs(const std::filesystem::path& path) override;
  std::optional<std::string> read(const std::filesystem::path& path) override;
  Result<std::uint64_t> free_bytes(const std::filesystem::path& path) override;
};

// Thrown by CrashingDisk: the power went out. Nothing after it runs, as on a real board.
struct PowerCut : std::runtime_error {
  PowerCut() : std::runtime_error("power cut") {}
};

// A RealDisk that cuts the power right after its N-th mutating call (1-based), and can be
// told to fail the N-th call with an I/O error instead.
class CrashingDisk : public RealDisk {
 public:
  enum class Mode { power_cut_after, io_error_at };
  CrashingDisk(int n, Mode mode) : n_(n), mode_(mode) {}
  int writes() const { return writes_; }

  Result<void> write_atomic(const std::filesystem::path& path, std::string_view data) override;
  Result<void> copy_file(const std::filesystem::path& from, const std::filesystem::path& to,
                         std::string_view sha256) override;
  Result<void> rename(const std::filesystem::path& from, const std::filesystem::path& to) override;
  Result<void> remove_all(const std::filesystem::path& path) override;
  Result<void> mkdirs(const std::filesystem::path& path) override;

 private:
  template <class F>
  Result<void> count(F&& op);
  int n_;
  Mode mode_;
  int writes_ = 0;
};

}  // namespace fleet::agent
