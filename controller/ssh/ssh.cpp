#include "controller/ssh/ssh.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libssh/libssh.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <libssh/sftp.h>

#include <array>
#include <fstream>

#include "common/hash.hpp"

namespace fleet::ssh {
namespace {

ssh_session S(void* p) { return static_cast<ssh_session>(p); }

struct ChannelCloser {
  ssh_channel ch;
  ~ChannelCloser() {
    if (ch) {
      ssh_channel_close(ch);
      ssh_channel_free(ch);
    }
  }
};

struct SftpCloser {
  sftp_session sftp;
  ~SftpCloser() {
    if (sftp) sftp_free(sftp);
  }
};

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace

std::string quote(std::string_view arg) {
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'') out += "'\\''";
    else out.push_back(c);
  }
  return out + "'";
}

std::string command_line(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + quote(a);
  return out;
}

Error Session::error(Errc code, const std::string& what) const {
  std::string detail = session_ ? ssh_get_error(session_) : "";
  return Error{code, "board " + endpoint_.name + " (" + endpoint_.user + "@" + endpoint_.host + ":" +
                         std::to_string(endpoint_.port) + "): " + what + (detail.empty() ? "" : ": " + detail)};
}

Result<std::unique_ptr<Session>> Session::connect(const Endpoint& e) {
  std::unique_ptr<Session> s(new Session(e));
  ssh_session session = ssh_new();
  if (!session) return fail(Errc::io, "libssh: cannot create a session");
  s->session_ = session;
  long timeout = e.connect_timeout.count();
  unsigned int port = static_cast<unsigned int>(e.port);
  int no = 0;
  ssh_options_set(session, SSH_OPTIONS_HOST, e.host.c_str());
  ssh_options_set(session, SSH_OPTIONS_PORT, &port);
  ssh_options_set(session, SSH_OPTIONS_USER, e.user.c_str());
  ssh_options_set(session, SSH_OPTIONS_TIMEOUT, &timeout);
  // Our own checks below decide about host keys; libssh's config files do not.
  ssh_options_set(session, SSH_OPTIONS_PROCESS_CONFIG, &no);
  if (!e.known_hosts.empty()) ssh_options_set(session, SSH_OPTIONS_KNOWNHOSTS, e.known_hosts.c_str());
  // No Nagle: an SFTP write waits for its reply, and a write's last short segment held back
  // until the board's delayed ACK (40 ms) capped an upload at one 64 KiB chunk per ~33 ms,
  // 2 MB/s even on loopback (bench/light_rack.sh).
  int nodelay = 1;
  ssh_options_set(session, SSH_OPTIONS_NODELAY, &nodelay);

  if (ssh_connect(session) != SSH_OK) {
    std::string why = ssh_get_error(session);
    bool timed_out = why.find("imeout") != std::string::npos || why.find("timed out") != std::string::npos;
    return std::unexpected(s->error(timed_out ? Errc::timeout : Errc::unreachable, "cannot connect"));
  }
  // Keepalive: libssh 0.10 sends none of its own, so the kernel probes an idle connection
  // (after 30 s, every 10 s, 3 misses): a board that lost power mid-command is noticed in
  // about a minute instead of at the command's timeout.
  if (socket_t fd = ssh_get_fd(session); fd >= 0) {
    int on = 1, idle = 30, interval = 10, count = 3;
    ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
  }
  // Host key before anything else is sent: a board whose key changed gets nothing.
  switch (ssh_session_is_known_server(session)) {
    case SSH_KNOWN_HOSTS_OK:
      break;
    case SSH_KNOWN_HOSTS_CHANGED:
    case SSH_KNOWN_HOSTS_OTHER:
      return std::unexpected(s->error(
          Errc::host_key, "HOST KEY CHANGED: the board's key differs from known_hosts; nothing was sent. If the "
                          "board was reimaged, remove its line from known_hosts"));
    case SSH_KNOWN_HOSTS_UNKNOWN:
    case SSH_KNOWN_HOSTS_NOT_FOUND:
      if (e.host_keys == HostKeys::strict) {
        return std::unexpected(s->error(Errc::host_key, "host key unknown and host key checking is strict; add it to "
                                                        "known_hosts or use --accept-new-host-keys"));
      }
      if (ssh_session_update_known_hosts(session) != SSH_OK) {
        return std::unexpected(s->error(Errc::io, "cannot record the host key in known_hosts"));
      }
      break;
    case SSH_KNOWN_HOSTS_ERROR:
    default:
      return std::unexpected(s->error(Errc::host_key, "cannot check the host key"));
  }
  int rc = SSH_AUTH_DENIED;
  if (!e.key.empty()) {
    ssh_key key = nullptr;
    if (ssh_pki_import_privkey_file(e.key.c_str(), nullptr, nullptr, nullptr, &key) != SSH_OK) {
      return fail(Errc::invalid_input, "board " + e.name + ": cannot read the private key " + e.key.string());
    }
    rc = ssh_userauth_publickey(session, nullptr, key);
    ssh_key_free(key);
  } else {
    rc = ssh_userauth_agent(session, nullptr);
  }
  if (rc == SSH_AUTH_ERROR && !ssh_is_connected(session)) {
    // The connection broke during authentication: a board going down for its reboot, sshd's
    // LoginGraceTime or MaxStartups under load, a reset. Not a refusal: connect's retries
    // apply (a light board's reboot showed it as auth_refused, and the board was given up).
    return std::unexpected(s->error(Errc::unreachable, "the connection broke off during authentication"));
  }
  if (rc != SSH_AUTH_SUCCESS) {
    // SSH_AUTH_DENIED (or PARTIAL: more methods wanted): the board does not accept the key;
    // an SSH_AUTH_ERROR on a live connection (a key libssh cannot sign with) is no better.
    return std::unexpected(s->error(Errc::auth_refused, std::string("authentication refused with ") +
                                                            (e.key.empty() ? "the ssh-agent's keys" : e.key.string())));
  }
  return s;
}

Session::~Session() {
  if (session_) {
    if (ssh_is_connected(S(session_))) ssh_disconnect(S(session_));
    ssh_free(S(session_));
  }
}

Result<void*> Session::open_exec(const std::string& line) {
  ssh_channel ch = ssh_channel_new(S(session_));
  if (!ch) return std::unexpected(error(Errc::io, "cannot open a channel"));
  ChannelCloser closer{ch};
  if (ssh_channel_open_session(ch) != SSH_OK) return std::unexpected(error(Errc::unreachable, "cannot open a session channel"));
  if (ssh_channel_request_exec(ch, line.c_str()) != SSH_OK) {
    return std::unexpected(error(Errc::unreachable, "cannot run " + line));
  }
  closer.ch = nullptr;  // the caller's now
  return static_cast<void*>(ch);
}

Result<CommandResult> Session::run(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
  const std::string line = command_line(argv);
  auto* ch = static_cast<ssh_channel>(FLEET_TRY(open_exec(line)));
  ChannelCloser closer{ch};
  CommandResult r;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::array<char, 16384> buf{};
  while (!ssh_channel_is_eof(ch) || ssh_channel_poll(ch, 0) > 0 || ssh_channel_poll(ch, 1) > 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      return std::unexpected(error(Errc::timeout, line + " did not finish in " + std::to_string(timeout.count()) + " s"));
    }
    bool got = false;
    for (int is_stderr = 0; is_stderr < 2; ++is_stderr) {
      int n = ssh_channel_read_timeout(ch, buf.data(), buf.size(), is_stderr, is_stderr ? 0 : 200);
      if (n == SSH_ERROR) return std::unexpected(error(Errc::unreachable, "connection lost while running " + line));
      if (n > 0) {
        (is_stderr ? r.err : r.out).append(buf.data(), static_cast<size_t>(n));
        got = true;
      }
    }
    if (!got && !ssh_channel_is_open(ch)) break;
  }
  ssh_channel_send_eof(ch);
  // The exit status arrives after EOF; give it a moment.
  for (int i = 0; i < 50; ++i) {
    r.exit_status = ssh_channel_get_exit_status(ch);
    if (r.exit_status != -1) break;
    ssh_channel_read_timeout(ch, buf.data(), buf.size(), 0, 20);
  }
  return r;
}

std::string Session::local_address() const {
  const socket_t fd = ssh_get_fd(S(session_));
  if (fd < 0) return "";
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return "";
  char buf[INET6_ADDRSTRLEN] = {};
  if (sa.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&sa)->sin_addr, buf, sizeof buf);
    return buf;
  }
  if (sa.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&sa)->sin6_addr, buf, sizeof buf);
    return buf;
  }
  return "";
}

Result<std::unique_ptr<Stream>> Session::start(const std::vector<std::string>& argv) {
  const std::string line = command_line(argv);
  void* ch = FLEET_TRY(open_exec(line));
  return std::unique_ptr<Stream>(new Stream(*this, ch, line));  // the Stream owns the channel now
}

Stream::~Stream() {
  auto* ch = static_cast<ssh_channel>(channel_);
  if (ch) {
    ssh_channel_close(ch);
    ssh_channel_free(ch);
  }
}

Result<void> Stream::write(std::string_view text) {
  auto* ch = static_cast<ssh_channel>(channel_);
  std::size_t done = 0;
  int stalls = 0;
  while (done < text.size()) {
    const int n = ssh_channel_write(ch, text.data() + done, static_cast<std::uint32_t>(text.size() - done));
    if (n == SSH_ERROR) return std::unexpected(owner_.error(Errc::unreachable, "connection lost writing to " + line_));
    // 0: the board's window stayed shut for libssh's timeout (it does not read its input).
    if (n == 0 && ++stalls > 3) return std::unexpected(owner_.error(Errc::timeout, line_ + " does not read its input"));
    done += static_cast<std::size_t>(n);
  }
  return {};
}

Result<void> Stream::close_stdin() {
  if (eof_sent_) return {};
  eof_sent_ = true;
  if (ssh_channel_send_eof(static_cast<ssh_channel>(channel_)) == SSH_ERROR) {
    return std::unexpected(owner_.error(Errc::unreachable, "connection lost closing the input of " + line_));
  }
  return {};
}

Result<std::optional<int>> Stream::pump(std::chrono::milliseconds wait,
                                        const std::function<void(std::string_view)>& on_line) {
  auto* ch = static_cast<ssh_channel>(channel_);
  std::array<char, 16384> buf{};
  int timeout = static_cast<int>(wait.count());
  for (;;) {
    bool got = false;
    for (int is_stderr = 0; is_stderr < 2; ++is_stderr) {
      const int n = ssh_channel_read_timeout(ch, buf.data(), buf.size(), is_stderr, is_stderr ? 0 : timeout);
      if (n == SSH_ERROR) return std::unexpected(owner_.error(Errc::unreachable, "connection lost while running " + line_));
      if (n <= 0) continue;
      got = true;
      if (is_stderr) {
        err_.append(buf.data(), static_cast<std::size_t>(n));
        if (err_.size() > 4096) err_.erase(0, err_.size() - 4096);
        continue;
      }
      out_.append(buf.data(), static_cast<std::size_t>(n));
      std::size_t nl;
      while ((nl = out_.find('\n')) != std::string::npos) {
        if (on_line) on_line(std::string_view(out_).substr(0, nl));
        out_.erase(0, nl + 1);
      }
    }
    timeout = 0;  // waited once; now only drain what is there
    if (!got) break;
  }
  if (ssh_channel_is_eof(ch) || !ssh_channel_is_open(ch)) {
    // The exit status comes with or just after EOF; ssh_channel_get_exit_status waits for it
    // (up to libssh's timeout), once. -1: the command was killed by a signal, or said nothing.
    return std::optional<int>(ssh_channel_get_exit_status(ch));
  }
  return std::optional<int>();
}

Result<std::string> Session::check(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
  auto r = FLEET_TRY(run(argv, timeout));
  if (r.exit_status != 0) {
    return std::unexpected(error(Errc::process_failed, command_line(argv) + " exited with status " +
                                                           std::to_string(r.exit_status) +
                                                           (r.err.empty() ? "" : ": " + first_line(r.err))));
  }
  return r.out;
}

Result<UploadResult> Session::upload(const std::filesystem::path& local, const std::string& remote,
                                     const UploadProgress& progress) {
  UploadResult res;
  std::error_code ec;
  res.size = std::filesystem::file_size(local, ec);
  if (ec) return fail(Errc::io, "cannot read " + local.string() + ": " + ec.message());
  res.sha256 = FLEET_TRY(hash::sha256_file(local));
  const std::string part = remote + ".part";

  sftp_session sftp = sftp_new(S(session_));
  if (!sftp) return std::unexpected(error(Errc::io, "cannot start SFTP"));
  SftpCloser sc{sftp};
  if (sftp_init(sftp) != SSH_OK) return std::unexpected(error(Errc::io, "SFTP refused by the board"));

  // Resume from what the board already has of the part.
  if (sftp_attributes a = sftp_stat(sftp, part.c_str())) {
    if (a->size <= res.size) res.resumed_from = a->size;
    sftp_attributes_free(a);
  }
  int flags = O_WRONLY | O_CREAT | (res.resumed_from == 0 ? O_TRUNC : 0);
  sftp_file f = sftp_open(sftp, part.c_str(), flags, 0644);
  if (!f) return std::unexpected(error(Errc::io, "cannot open " + part + " on the board"));
  std::ifstream in(local, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(res.resumed_from));
  if (res.resumed_from > 0 && sftp_seek64(f, res.resumed_from) != 0) {
    sftp_close(f);
    return std::unexpected(error(Errc::io, "cannot seek in " + part));
  }
  std::array<char, 1 << 16> buf{};
  std::uint64_t done = res.resumed_from;
  while (in && done < res.size) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    auto n = static_cast<size_t>(in.gcount());
    if (n == 0) break;
    ssize_t w = sftp_write(f, buf.data(), n);
    if (w != static_cast<ssize_t>(n)) {
      sftp_close(f);
      return std::unexpected(error(Errc::unreachable, "upload of " + local.filename().string() + " broke off at " +
                                                          std::to_string(done) + " of " + std::to_string(res.size) +
                                                          " bytes (resumable)"));
    }
    done += n;
    res.sent += n;
    if (progress && !progress(done, res.size)) {
      sftp_close(f);
      return fail(Errc::io, "upload of " + local.filename().string() + " stopped at " + std::to_string(done) + " bytes");
    }
  }
  if (sftp_close(f) != SSH_OK) return std::unexpected(error(Errc::unreachable, "closing " + part));

  // The board's own sha256 of what arrived, before the part takes the real name.
  auto out = FLEET_TRY(check({"sha256sum", part}, std::chrono::seconds(300)));
  if (out.substr(0, 64) != res.sha256) {
    auto removed = run({"rm", "-f", part}, std::chrono::seconds(30));
    const bool gone = removed && removed->exit_status == 0;
    return std::unexpected(error(Errc::mismatch, "sha256 of " + part + " on the board differs from " + local.string() +
                                                     (gone ? "; the part was removed, upload again"
                                                           : "; the part could not be removed (remove it, then upload again)")));
  }
  FLEET_TRY(check({"mv", "-f", part, remote}, std::chrono::seconds(30)));
  return res;
}

}  // namespace fleet::ssh
