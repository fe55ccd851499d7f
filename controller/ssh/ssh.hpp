#pragma once
// SSH to the boards with libssh: key authentication (a key file or ssh-agent), host keys
// checked against known_hosts (strict by default, accept-new on request), commands with
// exit status, output and a timeout, and SFTP uploads that resume from the board's byte
// count and end in a sha256 check on the board. Failures are typed: unreachable,
// auth_refused, host_key (unknown or changed: nothing is sent), timeout, process_failed.
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace fleet::ssh {

enum class HostKeys {
  strict,      // the board must be in known_hosts already
  accept_new,  // unknown boards are added; a changed key is still refused
};

struct Endpoint {
  std::string name;                     // the board, for messages
  std::string host;
  int port = 22;
  std::string user = "root";
  std::filesystem::path key;            // private key file; empty: ssh-agent
  std::filesystem::path known_hosts;    // empty: ~/.ssh/known_hosts
  HostKeys host_keys = HostKeys::strict;
  std::chrono::seconds connect_timeout{10};
};

struct CommandResult {
  int exit_status = -1;
  std::string out;
  std::string err;
};

// One argument for a POSIX shell: 'text' with every ' written as '\''. Pure.
std::string quote(std::string_view arg);
// argv as one shell command line, every argument quoted. Pure.
std::string command_line(const std::vector<std::string>& argv);

struct UploadResult {
  std::uint64_t size = 0;
  std::uint64_t resumed_from = 0;  // bytes the board already had
  std::uint64_t sent = 0;
  std::string sha256;
};
// Called as bytes go out; return false to stop (the upload then fails, resumable later).
using UploadProgress = std::function<bool(std::uint64_t done, std::uint64_t total)>;

class Session;

// A command that runs while the controller talks to it (fleet-model fetch): lines to its
// stdin, its stdout line by line, its stdin closed to tell it to finish. Belongs to the
// Session that started it, which must outlive it; like that Session, one thread at a time.
class Stream {
 public:
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  Result<void> write(std::string_view text);
  Result<void> close_stdin();
  // Reads what the command printed, waiting up to `wait` for the first byte; hands over each
  // complete stdout line (stderr is kept for the error). Returns the exit status once the
  // command ended, nullopt while it runs; Errc::unreachable if the connection dropped.
  Result<std::optional<int>> pump(std::chrono::milliseconds wait, const std::function<void(std::string_view)>& on_line);
  // What the command wrote on stderr so far (its last 4 KiB).
  const std::string& stderr_text() const { return err_; }

 private:
  friend class Session;
  Stream(const Session& owner, void* channel, std::string line) : owner_(owner), channel_(channel), line_(std::move(line)) {}
  const Session& owner_;
  void* channel_ = nullptr;  // ssh_channel
  std::string line_;         // the command, for messages
  std::string out_, err_;
  bool eof_sent_ = false;
};

class Session {
 public:
  static Result<std::unique_ptr<Session>> connect(const Endpoint& endpoint);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Runs argv (each argument quoted) on the board. A non-zero exit status is a result,
  // not an error; a command still running at the timeout is Errc::timeout.
  Result<CommandResult> run(const std::vector<std::string>& argv, std::chrono::seconds timeout);
  // Like run, but a non-zero exit status is Errc::process_failed with the board's stderr.
  Result<std::string> check(const std::vector<std::string>& argv, std::chrono::seconds timeout);

  // Uploads a file to `remote` through `remote.part`: a dropped connection leaves the
  // part, and the next upload continues from its size. The board's sha256 must match
  // before the part is renamed into place.
  Result<UploadResult> upload(const std::filesystem::path& local, const std::string& remote,
                              const UploadProgress& progress = {});

  // Starts argv (each argument quoted) on the board and returns at once (see Stream).
  Result<std::unique_ptr<Stream>> start(const std::vector<std::string>& argv);

  const Endpoint& endpoint() const { return endpoint_; }
  // This end's IP address of the connection: an address the board reaches this machine at
  // ("" if the socket cannot tell).
  std::string local_address() const;

 private:
  friend class Stream;
  explicit Session(Endpoint e) : endpoint_(std::move(e)) {}
  Error error(Errc code, const std::string& what) const;
  // A session channel running `line`; the caller owns (closes and frees) it.
  Result<void*> open_exec(const std::string& line);
  Endpoint endpoint_;
  void* session_ = nullptr;  // ssh_session
};

}  // namespace fleet::ssh
