#include "controller/tls/secret.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/fs.hpp"

namespace fleet::tls {
namespace {

Error os_error(const std::string& what, const std::filesystem::path& path) {
  return Error{Errc::io, what + " " + path.string() + ": " + std::strerror(errno)};
}

bool is_token(std::string_view t) {
  if (t.size() < 32 || t.size() > 128) return false;
  for (char c : t) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

Result<std::string> random_token() {
  std::array<unsigned char, 16> raw{};
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
    return fail(Errc::io, "the random source (OpenSSL RAND_bytes) failed: no token made");
  }
  static constexpr char k_hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(k_hex[c >> 4]);
    out.push_back(k_hex[c & 15]);
  }
  return out;
}

bool same_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return false;  // an empty token matches nothing, not even another empty one
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Result<void> write_new_private_file(const std::filesystem::path& path, std::string_view data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return fail(Errc::invalid_input, path.string() + ": exists; not replaced");
    return std::unexpected(os_error("cannot create", path));
  }
  // The umask can only narrow 0600; fchmod makes the mode exact whatever it is.
  bool ok = ::fchmod(fd, 0600) == 0;
  std::size_t done = 0;
  while (ok && done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) ok = false;
    else done += static_cast<std::size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  Error e = os_error("cannot write", path);
  if (::close(fd) != 0 && ok) {
    ok = false;
    e = os_error("cannot write", path);
  }
  if (!ok) {
    ::unlink(path.c_str());
    return std::unexpected(e);
  }
  return {};
}

Result<void> check_private_file(const std::filesystem::path& path) {
  struct stat st{};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return fail(Errc::not_found, path.string() + ": no such file");
    return std::unexpected(os_error("cannot stat", path));
  }
  if (!S_ISREG(st.st_mode)) return fail(Errc::invalid_input, path.string() + ": not a regular file (a secret is never a link)");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return fail(Errc::invalid_input, path.string() + ": mode " + mode +
                                         " lets others read or change a secret; it must be 0600 "
                                         "(chmod 600 it if nobody else could have read it, or delete it to make a new one)");
  }
  return {};
}

Result<std::string> read_or_create_token(const std::filesystem::path& file, bool* created) {
  if (created) *created = false;
  std::error_code ec;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto present = check_private_file(file);
    if (present) {
      std::string text = FLEET_TRY(fs::read_file(file));
      while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
      if (!is_token(text)) {
        return fail(Errc::invalid_input, file.string() + ": not a token (32 to 128 lowercase hex digits on one line)");
      }
      return text;
    }
    if (present.error().code != Errc::not_found) return std::unexpected(present.error());
    // Complete under a private name first, then link(2): the name appears with the whole
    // token in it, and fails with EEXIST if another process linked its token first.
    const std::string token = FLEET_TRY(random_token());
    const auto tmp = file.string() + ".tmp-" + std::to_string(::getpid());
    ::unlink(tmp.c_str());
    FLEET_TRY(write_new_private_file(tmp, token + "\n"));
    const int rc = ::link(tmp.c_str(), file.c_str());
    const int link_errno = errno;
    ::unlink(tmp.c_str());
    if (rc == 0) {
      FLEET_TRY(fs::fsync_dir(file.has_parent_path() ? file.parent_path() : std::filesystem::path(".")));
      if (created) *created = true;
      return token;
    }
    if (link_errno != EEXIST) {
      errno = link_errno;
      return std::unexpected(os_error("cannot create", file));
    }
    // Another process made it first: read theirs.
  }
  return fail(Errc::io, file.string() + ": appeared and vanished while being read");
}

std::filesystem::path status_token_file(const std::filesystem::path& state_db) {
  return (state_db.has_parent_path() ? state_db.parent_path() : std::filesystem::path(".")) / "status.token";
}

}  // namespace fleet::tls
