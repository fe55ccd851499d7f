#pragma once
// A real OpenSSH server on 127.0.0.1 for integration tests: its own host key, config and
// port, a client key allowed to log in, started and stopped with the object.
#include <filesystem>
#include <string>

#include "tests/support/temp_dir.hpp"

namespace fleet::test {

class Sshd {
 public:
  // `first_config` goes before the usual lines (sshd takes an option's first value).
  explicit Sshd(const std::string& first_config = "");
  ~Sshd();
  Sshd(const Sshd&) = delete;
  Sshd& operator=(const Sshd&) = delete;

  int port() const { return port_; }
  std::filesystem::path client_key() const { return dir_ / "client"; }
  std::filesystem::path other_key() const { return dir_ / "other"; }  // not authorized
  // A known_hosts line for this server with its real key, or with some other key.
  std::string known_hosts_line() const;
  std::string wrong_known_hosts_line() const;
  int master_pid() const { return pid_; }
  // Kills every connection's sshd process (the master stays): a dropped network.
  void drop_connections() const;
  const TempDir& dir() const { return dir_; }

 private:
  TempDir dir_{"fleet-sshd"};
  int port_ = 0;
  int pid_ = 0;
};

// A TCP port on 127.0.0.1 nobody listens on right now.
int free_port();
// The first of `count` consecutive such ports (a rack's boards listen on base, base+1, ...).
int free_port_run(int count);
// Whether something listens on this port of 127.0.0.1 (a connect succeeds).
bool port_open(int port);

}  // namespace fleet::test
