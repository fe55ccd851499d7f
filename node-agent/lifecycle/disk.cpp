#include "node-agent/lifecycle/disk.hpp"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/fs.hpp"
#include "common/hash.hpp"

namespace fleet::agent {
namespace stdfs = std::filesystem;

Result<void> RealDisk::write_atomic(const stdfs::path& path, std::string_view data) {
  return fs::write_file_atomic(path, data);
}

Result<void> RealDisk::copy_file(const stdfs::path& from, const stdfs::path& to, std::string_view sha256) {
  std::string data = FLEET_TRY(fs::read_regular_file(from));
  if (hash::sha256_hex(data) != sha256) {
    return fail(Errc::mismatch, from.string() + " changed after the bundle was verified (its sha256 is not the "
                                                "manifest's); nothing of it was installed");
  }
  // Through a temporary and a rename: a cut never leaves a half file under the real name.
  // Bundle files are data (kernel, dtbs, modules): 0644, whatever mode they came with.
  return fs::write_file_atomic(to, data);
}

Result<void> RealDisk::rename(const stdfs::path& from, const stdfs::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return fail(Errc::io, "cannot rename " + from.string() + " to " + to.string() + ": " + std::strerror(errno));
  }
  FLEET_TRY(fs::fsync_renamed(to));  // FAT: the entry under the new name (see fs.hpp)
  FLEET_TRY(fs::fsync_dir(to.parent_path()));
  if (from.parent_path() != to.parent_path()) FLEET_TRY(fs::fsync_dir(from.parent_path()));
  return {};
}

Result<void> RealDisk::remove_all(const stdfs::path& path) {
  std::error_code ec;
  stdfs::remove_all(path, ec);
  if (ec) return fail(Errc::io, "cannot remove " + path.string() + ": " + ec.message());
  if (stdfs::exists(path.parent_path())) FLEET_TRY(fs::fsync_dir(path.parent_path()));
  return {};
}

Result<void> RealDisk::mkdirs(const stdfs::path& path) {
  std::error_code ec;
  stdfs::create_directories(path, ec);
  if (ec) return fail(Errc::io, "cannot create " + path.string() + ": " + ec.message());
  return fs::fsync_dir(path.parent_path());
}

std::optional<std::string> RealDisk::read(const stdfs::path& path) {
  auto r = fs::read_file(path);
  if (!r) return std::nullopt;
  return *r;
}

Result<std::uint64_t> RealDisk::free_bytes(const stdfs::path& path) {
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) != 0) return fail(Errc::io, "statvfs " + path.string() + ": " + std::strerror(errno));
  return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
}

template <class F>
Result<void> CrashingDisk::count(F&& op) {
  ++writes_;
  if (mode_ == Mode::io_error_at && writes_ == n_) return fail(Errc::io, "injected I/O error at write " + std::to_string(n_));
  auto r = op();
  if (mode_ == Mode::power_cut_after && writes_ == n_) throw PowerCut();
  return r;
}

Result<void> CrashingDisk::write_atomic(const stdfs::path& p, std::string_view d) {
  return count([&] { return RealDisk::write_atomic(p, d); });
}
Result<void> CrashingDisk::copy_file(const stdfs::path& f, const stdfs::path& t, std::string_view sha) {
  return count([&] { return RealDisk::copy_file(f, t, sha); });
}
Result<void> CrashingDisk::rename(const stdfs::path& f, const stdfs::path& t) {
  return count([&] { return RealDisk::rename(f, t); });
}
Result<void> CrashingDisk::remove_all(const stdfs::path& p) {
  return count([&] { return RealDisk::remove_all(p); });
}
Result<void> CrashingDisk::mkdirs(const stdfs::path& p) {
  return count([&] { return RealDisk::mkdirs(p); });
}

}  // namespace fleet::agent
