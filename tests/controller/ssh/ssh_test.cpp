#include <catch2/catch.hpp>
#include <fstream>

#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/process.hpp"
#include "controller/ssh/ssh.hpp"
#include "tests/support/sshd.hpp"

using namespace fleet;
using namespace fleet::ssh;

namespace {

Endpoint endpoint(const test::Sshd& sshd, const std::filesystem::path& known_hosts, HostKeys mode = HostKeys::strict) {
  Endpoint e;
  e.name = "pi-test";
  e.host = "127.0.0.1";
  e.port = sshd.port();
  e.user = "root";
  e.key = sshd.client_key();
  e.known_hosts = known_hosts;
  e.host_keys = mode;
  e.connect_timeout = std::chrono::seconds(10);
  return e;
}

}  // namespace

TEST_CASE("commands run with their exit status and output, accept-new records the host key") {
  test::Sshd sshd;
  test::TempDir dir;
  auto kh = dir / "known_hosts";
  auto s = Session::connect(endpoint(sshd, kh, HostKeys::accept_new));
  if (!s) FAIL(s.error().message);
  auto r = (*s)->run({"sh", "-c", "echo out; echo err >&2; exit 3"}, std::chrono::seconds(20));
  REQUIRE(r);
  CHECK(r->exit_status == 3);
  CHECK(r->out == "out\n");
  CHECK(r->err == "err\n");
  CHECK_THAT(fs::read_file(kh).value_or(""), Catch::Contains("[127.0.0.1]:" + std::to_string(sshd.port())));
  // Now known: strict mode connects.
  CHECK(Session::connect(endpoint(sshd, kh, HostKeys::strict)));
}

TEST_CASE("an unknown host key is refused in strict mode") {
  test::Sshd sshd;
  test::TempDir dir;
  auto s = Session::connect(endpoint(sshd, dir / "known_hosts"));
  REQUIRE_FALSE(s);
  CHECK(s.error().code == Errc::host_key);
  CHECK_THAT(s.error().message, Catch::Contains("pi-test"));
}

TEST_CASE("a changed host key is refused, even with accept-new, and nothing is sent") {
  test::Sshd sshd;
  test::TempDir dir;
  auto kh = dir.write("known_hosts", sshd.wrong_known_hosts_line());
  for (auto mode : {HostKeys::strict, HostKeys::accept_new}) {
    auto s = Session::connect(endpoint(sshd, kh, mode));
    REQUIRE_FALSE(s);
    CHECK(s.error().code == Errc::host_key);
    CHECK_THAT(s.error().message, Catch::Contains("HOST KEY CHANGED"));
  }
  // No session was opened: sshd logged no accepted key.
  CHECK_THAT(fs::read_file(sshd.dir() / "sshd.log").value_or(""), !Catch::Contains("Accepted publickey"));
}

TEST_CASE("a key the board does not accept is auth_refused") {
  test::Sshd sshd;
  test::TempDir dir;
  auto kh = dir.write("known_hosts", sshd.known_hosts_line());
  auto e = endpoint(sshd, kh);
  e.key = sshd.other_key();
  auto s = Session::connect(e);
  REQUIRE_FALSE(s);
  CHECK(s.error().code == Errc::auth_refused);
}

TEST_CASE("a connection that breaks during authentication is unreachable (retried), not auth_refused") {
  // sshd asks a command for the authorized keys; the first time, the command ends the
  // connection's sshd process, as a board going down for its reboot would.
  test::TempDir dir;
  auto script = dir.write("keys.sh", "if [ ! -e " + (dir / "dropped").string() + " ]; then touch " +
                                         (dir / "dropped").string() + "; kill -9 $PPID; sleep 5; fi\ncat " +
                                         (dir / "keys").string() + "\n");
  test::Sshd sshd("AuthorizedKeysFile none\nAuthorizedKeysCommand /bin/sh " + script.string() +
                  "\nAuthorizedKeysCommandUser root\n");
  dir.write("keys", fs::read_file(sshd.client_key().string() + ".pub").value());
  auto kh = dir.write("known_hosts", sshd.known_hosts_line());
  auto first = Session::connect(endpoint(sshd, kh));
  REQUIRE_FALSE(first);
  CHECK(first.error().code == Errc::unreachable);
  CHECK_THAT(first.error().message, Catch::Contains("broke off during authentication"));
  CHECK(std::filesystem::exists(dir / "dropped"));
  auto second = Session::connect(endpoint(sshd, kh));
  INFO(fs::read_file(sshd.dir() / "sshd.log").value_or(""));
  REQUIRE(second);
  CHECK((*second)->check({"true"}, std::chrono::seconds(10)));
}

TEST_CASE("a closed port is unreachable") {
  test::TempDir dir;
  Endpoint e;
  e.name = "pi-gone";
  e.host = "127.0.0.1";
  e.port = test::free_port();
  e.known_hosts = dir / "known_hosts";
  auto s = Session::connect(e);
  REQUIRE_FALSE(s);
  CHECK(s.error().code == Errc::unreachable);
  CHECK_THAT(s.error().message, Catch::Contains("pi-gone"));
}

TEST_CASE("a command that outlives its timeout is a timeout, not a failure") {
  test::Sshd sshd;
  test::TempDir dir;
  auto s = Session::connect(endpoint(sshd, dir.write("known_hosts", sshd.known_hosts_line())));
  REQUIRE(s);
  auto started = std::chrono::steady_clock::now();
  auto r = (*s)->run({"sleep", "30"}, std::chrono::seconds(1));
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::timeout);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(10));
}

TEST_CASE("arguments with shell metacharacters arrive as they are, nothing is injected") {
  test::Sshd sshd;
  test::TempDir dir;
  auto s = Session::connect(endpoint(sshd, dir.write("known_hosts", sshd.known_hosts_line())));
  REQUIRE(s);
  auto marker = dir / "pwned";
  const std::string evil = "x; touch " + marker.string() + " $(touch " + marker.string() + ") `touch " +
                           marker.string() + "` 'q' \"d\"";
  auto r = (*s)->check({"printf", "%s", evil}, std::chrono::seconds(20));
  REQUIRE(r);
  CHECK(*r == evil);
  CHECK_FALSE(std::filesystem::exists(marker));
}

TEST_CASE("an upload cut by a dropped connection resumes from the board's byte count") {
  test::Sshd sshd;
  test::TempDir dir;
  auto kh = dir.write("known_hosts", sshd.known_hosts_line());
  std::string data;
  for (int i = 0; i < 200000; ++i) data += "line " + std::to_string(i) + " of the kernel image\n";
  auto local = dir.write("kernel_2712.img", data);
  auto remote = (dir / "board/kernel_2712.img").string();
  std::filesystem::create_directories(dir / "board");

  {
    auto s = Session::connect(endpoint(sshd, kh));
    REQUIRE(s);
    bool dropped = false;
    auto r = (*s)->upload(local, remote, [&](std::uint64_t done, std::uint64_t) {
      if (!dropped && done > 1'000'000) {
        sshd.drop_connections();  // the network goes away mid-transfer
        dropped = true;
      }
      return true;
    });
    REQUIRE_FALSE(r);
    INFO(r.error().message);
    CHECK((r.error().code == Errc::unreachable || r.error().code == Errc::io));
  }
  auto part = std::filesystem::file_size(remote + ".part");
  CHECK(part >= 1'000'000);
  CHECK(part < data.size());
  CHECK_FALSE(std::filesystem::exists(remote));

  auto s = Session::connect(endpoint(sshd, kh));
  REQUIRE(s);
  auto r = (*s)->upload(local, remote);
  if (!r) FAIL(r.error().message);
  CHECK(r->resumed_from == part);
  CHECK(r->sent == data.size() - part);
  CHECK(fs::read_file(remote).value() == data);
  CHECK(r->sha256 == hash::sha256_hex(data));
  CHECK_FALSE(std::filesystem::exists(remote + ".part"));
}

TEST_CASE("a part that does not match is removed and the error says so") {
  test::Sshd sshd;
  test::TempDir dir;
  auto kh = dir.write("known_hosts", sshd.known_hosts_line());
  auto local = dir.write("bundle.tar", std::string(100000, 'a'));
  auto remote = (dir / "board/bundle.tar").string();
  dir.write("board/bundle.tar.part", std::string(5000, 'b'));  // garbage left by someone else
  auto s = Session::connect(endpoint(sshd, kh));
  REQUIRE(s);
  auto r = (*s)->upload(local, remote);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::mismatch);
  CHECK_FALSE(std::filesystem::exists(remote + ".part"));
  auto again = (*s)->upload(local, remote);
  REQUIRE(again);
  CHECK(again->resumed_from == 0);
  CHECK(fs::read_file(remote).value() == std::string(100000, 'a'));
}

TEST_CASE("without a key file, the ssh-agent's keys are used") {
  test::Sshd sshd;
  test::TempDir dir;
  auto sock = dir / "agent.sock";
  // An ssh-agent of this test's own, holding the authorized key.
  auto started = process::capture({{"ssh-agent", "-a", sock.string()}, {}, {}, std::chrono::seconds(10)});
  REQUIRE(started);
  auto pid_at = started->find("SSH_AGENT_PID=");
  REQUIRE(pid_at != std::string::npos);
  std::string pid = started->substr(pid_at + 14, started->find(';', pid_at) - pid_at - 14);
  ::setenv("SSH_AUTH_SOCK", sock.c_str(), 1);
  struct Stop {
    std::string pid;
    ~Stop() {
      (void)process::capture({{"kill", pid}, {}, {}, std::chrono::seconds(5)});
      ::unsetenv("SSH_AUTH_SOCK");
    }
  } stop{pid};
  REQUIRE(process::capture({{"ssh-add", sshd.client_key().string()}, {}, {{"SSH_AUTH_SOCK", sock.string()}},
                            std::chrono::seconds(10)}));
  auto e = endpoint(sshd, dir.write("known_hosts", sshd.known_hosts_line()));
  e.key.clear();
  auto s = Session::connect(e);
  if (!s) FAIL(s.error().message);
  auto r = (*s)->check({"echo", "via agent"}, std::chrono::seconds(20));
  REQUIRE(r);
  CHECK(*r == "via agent\n");
}
