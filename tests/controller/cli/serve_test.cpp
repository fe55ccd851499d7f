// `fleetctl serve` as a program, and `fleetctl status --server` against it: TLS from the
// controller's CA, the token it prints the place of, loopback by default.
#include <sys/stat.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "common/process.hpp"
#include "controller/cli/cli.hpp"
#include "controller/store/store.hpp"
#include "controller/tls/authority.hpp"
#include "controller/tls/secret.hpp"
#include "tests/support/cli.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;
using namespace std::chrono_literals;

TEST_CASE("fleetctl serve makes its CA and token and prints where they are, and status --server needs both") {
  test::TempDir dir;
  const auto db = dir / "state/fleet.db";
  {
    auto st = store::Store::open(db);
    REQUIRE(st);
    store::BoardRow b;
    b.rollout_id = "r1";
    b.board = "pi-1";
    b.step = vocab::Step::done;
    b.outcome = vocab::Outcome::committed;
    REQUIRE((*st)->put_board(b));
  }
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::string printed;
  bool started = false;  // Catch's assertions belong to the test's own thread
  std::thread serve([&] {
    auto r = process::run({{FLEETCTL, "serve", "--state", db.string(), "--listen", "127.0.0.1:0"}, {}, {}, 120s,
                           {}, [&] { return !stop.load(); }},
                          [&](std::string_view line) {
                            std::lock_guard lock(mu);
                            printed += std::string(line) + "\n";
                          });
    started = r.has_value();  // ended by keep_going; what it printed is what the test checks
  });
  std::string port;
  for (int i = 0; i < 100 && port.empty(); ++i) {
    std::this_thread::sleep_for(100ms);
    std::lock_guard lock(mu);
    std::smatch m;
    if (std::regex_search(printed, m, std::regex("status service on 127\\.0\\.0\\.1:([0-9]+) over TLS"))) port = m[1];
  }
  INFO(printed);
  REQUIRE_FALSE(port.empty());
  const std::string server = "127.0.0.1:" + port;
  {
    std::lock_guard lock(mu);
    CHECK_THAT(printed, Catch::Contains("token: " + (dir / "state/status.token").string() + " (made now)"));
    CHECK_THAT(printed, Catch::Contains((dir / "state/tls/ca.pem").string()));
    CHECK_THAT(printed, !Catch::Contains("reaches beyond this machine"));
  }
  struct stat st{};
  REQUIRE(::stat((dir / "state/status.token").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  auto ok = test::run_cli(controller::cli::run, {"status", "--server", server, "--state", db.string(), "--json"});
  INFO(ok.err);
  REQUIRE(ok.code == 0);
  auto j = nlohmann::json::parse(ok.out);
  REQUIRE(j["boards"].size() == 1);
  CHECK(j["boards"][0]["board"] == "pi-1");

  const auto wrong_token = dir / "wrong.token";
  REQUIRE(tls::write_new_private_file(wrong_token, tls::random_token().value() + "\n"));
  auto refused = test::run_cli(controller::cli::run,
                               {"status", "--server", server, "--state", db.string(), "--token-file", wrong_token.string()});
  CHECK(refused.code == 1);
  CHECK_THAT(refused.err, Catch::Contains("needs its token"));

  test::TempDir other;
  auto other_ca = tls::Authority::open_or_create(other / "tls").value();
  auto wrong_ca = test::run_cli(controller::cli::run, {"status", "--server", server, "--state", db.string(), "--ca",
                                                       other_ca.certificate_file().string()});
  CHECK(wrong_ca.code == 1);
  CHECK_THAT(wrong_ca.err, Catch::Contains("handshake"));

  stop = true;
  serve.join();
  CHECK(started);
}
