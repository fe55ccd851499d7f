#include "tests/support/sshd.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <thread>

#include "common/fs.hpp"
#include "common/process.hpp"

namespace fleet::test {
namespace {

void must(const Result<std::string>& r) {
  if (!r) throw std::runtime_error(r.error().message);
}

}  // namespace

bool port_open(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

int free_port_run(int count) {
  // Below Linux's ephemeral range (32768-60999), where no outgoing connection of a parallel
  // test (an SSH client, a gRPC channel) takes a port from under the run; each port bound to
  // be sure it is free now. Seeded by pid and time: two test processes start apart.
  std::uint32_t seed = static_cast<std::uint32_t>(::getpid()) * 2654435761u ^
                       static_cast<std::uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  for (int attempt = 0; attempt < 200; ++attempt) {
    seed = seed * 1664525u + 1013904223u;
    const int base = 20000 + static_cast<int>(seed % 12000u);
    bool all = true;
    for (int p = base; all && p < base + count; ++p) {
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<std::uint16_t>(p));
      all = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      ::close(fd);
    }
    if (all) return base;
  }
  return free_port();
}

Sshd::Sshd(const std::string& first_config) {
  auto keygen = [&](const char* name) {
    must(process::capture({{"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", (dir_ / name).string()},
                           {}, {}, std::chrono::seconds(30)}));
  };
  keygen("host_key");
  keygen("other_host_key");
  keygen("client");
  keygen("other");
  dir_.write("authorized_keys", fs::read_file(dir_ / "client.pub").value());
  port_ = free_port();
  dir_.write("sshd_config", first_config + "Port " + std::to_string(port_) +
                                "\nListenAddress 127.0.0.1\nHostKey " + (dir_ / "host_key").string() +
                                "\nAuthorizedKeysFile " + (dir_ / "authorized_keys").string() +
                                "\nPidFile " + (dir_ / "sshd.pid").string() +
                                "\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no"
                                "\nPermitRootLogin yes\nSubsystem sftp internal-sftp\nLogLevel VERBOSE\n");
  std::filesystem::create_directories("/run/sshd");  // sshd's privilege separation folder
  pid_ = ::fork();
  if (pid_ == 0) {
    ::setpgid(0, 0);
    std::freopen((dir_ / "sshd.log").c_str(), "a", stderr);
    ::execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-e", "-f", (dir_ / "sshd_config").c_str(), nullptr);
    ::_exit(127);
  }
  for (int i = 0; i < 100 && !port_open(port_); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (!port_open(port_)) {
    throw std::runtime_error("sshd did not start: " + fs::read_file(dir_ / "sshd.log").value_or("(no log)"));
  }
}

Sshd::~Sshd() {
  if (pid_ > 0) {
    ::kill(-pid_, SIGTERM);
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
}

std::string Sshd::known_hosts_line() const {
  auto pub = fs::read_file(dir_ / "host_key.pub").value();
  return "[127.0.0.1]:" + std::to_string(port_) + " " + pub.substr(0, pub.rfind(' ')) + "\n";
}

std::string Sshd::wrong_known_hosts_line() const {
  auto pub = fs::read_file(dir_ / "other_host_key.pub").value();
  return "[127.0.0.1]:" + std::to_string(port_) + " " + pub.substr(0, pub.rfind(' ')) + "\n";
}

void Sshd::drop_connections() const {
  (void)process::capture({{"pkill", "-KILL", "-P", std::to_string(pid_)}, {}, {}, std::chrono::seconds(10)});
}

}  // namespace fleet::test
