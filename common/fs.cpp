#include "common/fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace fleet::fs {
namespace {

Error os_error(const std::string& what, const std::filesystem::path& path) {
  return Error{Errc::io, what + " " + path.string() + ": " + std::strerror(errno)};
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

}  // namespace

Result<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return fail(Errc::not_found, path.string() + ": no such file");
    return std::unexpected(os_error("cannot open", path));
  }
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return std::unexpected(os_error("cannot read", path));
  return out.str();
}

Result<void> fsync_dir(const std::filesystem::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return std::unexpected(os_error("cannot open folder", dir));
  if (::fsync(fd.get()) != 0) return std::unexpected(os_error("cannot fsync folder", dir));
  return {};
}

Result<void> fsync_renamed(const std::filesystem::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) return std::unexpected(os_error("cannot open", path));
  if (::fsync(fd.get()) != 0) return std::unexpected(os_error("cannot fsync", path));
  return {};
}

Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view data, FileMode mode,
                               Durability durability) {
  auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  std::string tmpl = (dir / ("." + path.filename().string() + ".tmp-XXXXXX")).string();
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  Fd fd(::mkstemp(name.data()));
  if (fd.get() < 0) return std::unexpected(os_error("cannot create a temporary file in", dir));
  std::filesystem::path tmp(name.data());
  auto cleanup_fail = [&](const std::string& what) {
    Error e = os_error(what, tmp);
    ::unlink(tmp.c_str());
    return std::unexpected(e);
  };
  // Before the first byte: mkstemp made it 0600, a public file is widened now.
  if (::fchmod(fd.get(), mode == FileMode::owner_only ? 0600 : 0644) != 0) return cleanup_fail("cannot chmod");
  if (mode == FileMode::owner_only) {
    // FAT (/boot/firmware on a Pi) keeps no modes: every file shows the mount's (0755 under
    // Raspberry Pi OS's `defaults`), and vfat ignores a chmod it cannot keep and returns 0
    // (fat_setattr). A secret is never left where others can read it.
    struct ::stat st {};
    if (::fstat(fd.get(), &st) != 0) return cleanup_fail("cannot stat");
    if ((st.st_mode & 077) != 0) {
      Error e{Errc::unsupported, "cannot keep " + path.string() + " private: its file system keeps no file modes "
                                 "(FAT?); nothing was written"};
      ::unlink(tmp.c_str());
      return std::unexpected(e);
    }
  }
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd.get(), p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return cleanup_fail("cannot write");
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  const bool durable = durability == Durability::durable;
  if (durable && ::fsync(fd.get()) != 0) return cleanup_fail("cannot fsync");
  if (::close(fd.release()) != 0) return cleanup_fail("cannot close");
  if (::rename(tmp.c_str(), path.c_str()) != 0) return cleanup_fail("cannot rename to " + path.string() + ":");
  if (!durable) return {};
  FLEET_TRY(fsync_renamed(path));
  return fsync_dir(dir);
}

std::string irregular_file_reason(const struct ::stat& st) {
  if (S_ISLNK(st.st_mode)) return "is a symlink";
  if (S_ISFIFO(st.st_mode)) return "is a FIFO";
  if (S_ISCHR(st.st_mode)) return "is a character device";
  if (S_ISBLK(st.st_mode)) return "is a block device";
  if (S_ISSOCK(st.st_mode)) return "is a socket";
  if (!S_ISREG(st.st_mode)) return "is not a regular file";
  if (st.st_nlink > 1) return "has " + std::to_string(st.st_nlink) + " hard links";
  if (st.st_mode & (S_ISUID | S_ISGID)) return "has the setuid or setgid bit";
  return "";
}

Result<std::uint64_t> read_regular_chunks(const std::filesystem::path& path,
                                          const std::function<void(std::string_view)>& chunk) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) {
    if (errno == ELOOP) return fail(Errc::invalid_input, path.string() + " is a symlink");
    if (errno == ENOENT) return fail(Errc::not_found, path.string() + ": no such file");
    return std::unexpected(os_error("cannot open", path));
  }
  struct ::stat st {};
  if (::fstat(fd.get(), &st) != 0) return std::unexpected(os_error("cannot stat", path));
  if (auto why = irregular_file_reason(st); !why.empty()) return fail(Errc::invalid_input, path.string() + " " + why);
  std::vector<char> buf(65536);
  std::uint64_t total = 0;
  while (true) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::unexpected(os_error("cannot read", path));
    }
    if (n == 0) break;
    chunk(std::string_view(buf.data(), static_cast<size_t>(n)));
    total += static_cast<std::uint64_t>(n);
  }
  return total;
}

Result<std::string> read_regular_file(const std::filesystem::path& path) {
  std::string out;
  FLEET_TRY(read_regular_chunks(path, [&](std::string_view c) { out.append(c); }));
  return out;
}

Result<std::filesystem::path> make_temp_dir(std::string_view prefix) {
  std::string tmpl = (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  if (::mkdtemp(name.data()) == nullptr) return std::unexpected(os_error("cannot create", tmpl));
  return std::filesystem::path(name.data());
}

}  // namespace fleet::fs
