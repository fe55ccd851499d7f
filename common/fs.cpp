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

Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view data) {
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
  if (::fchmod(fd.get(), 0644) != 0) return cleanup_fail("cannot chmod");
  if (::fsync(fd.get()) != 0) return cleanup_fail("cannot fsync");
  if (::close(fd.release()) != 0) return cleanup_fail("cannot close");
  if (::rename(tmp.c_str(), path.c_str()) != 0) return cleanup_fail("cannot rename to " + path.string() + ":");
  return fsync_dir(dir);
}

Result<std::filesystem::path> make_temp_dir(std::string_view prefix) {
  std::string tmpl = (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  if (::mkdtemp(name.data()) == nullptr) return std::unexpected(os_error("cannot create", tmpl));
  return std::filesystem::path(name.data());
}

}  // namespace fleet::fs
