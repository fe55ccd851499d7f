// Debian's real Prometheus server scrapes fleetctl's /metrics on loopback with the bearer
// token, and its HTTP API answers the README's two queries from what it scraped.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <thread>

#include "common/fs.hpp"
#include "common/process.hpp"
#include "controller/web/server.hpp"
#include "tests/controller/web/fixture.hpp"
#include "tests/support/sshd.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;
using namespace std::chrono_literals;

namespace {

constexpr const char* k_token = "feedfacefeedfacefeedfacefeedface";

// A query of Prometheus' HTTP API; the "result" array (empty while nothing is scraped).
nlohmann::json query(int port, const std::string& promql) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(5s);
  auto r = c.Get("/api/v1/query", httplib::Params{{"query", promql}}, httplib::Headers{});
  if (!r || r->status != 200) return nlohmann::json::array();
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_discarded() || j.value("status", "") != "success") return nlohmann::json::array();
  return j["data"]["result"];
}

}  // namespace

TEST_CASE("a real Prometheus scrapes fleetctl and answers the README's queries") {
  test::TempDir dir;
  const auto db = dir / "fleet.db";
  {
    auto st = store::Store::open(db);
    REQUIRE(st);
    test::seed_finished(**st);
  }
  auto server = web::HttpServer::start({"127.0.0.1:0", k_token, db});
  REQUIRE(server);
  REQUIRE(fs::write_file_atomic(dir / "token", k_token));
  const int prom_port = test::free_port();
  REQUIRE(fs::write_file_atomic(dir / "prometheus.yml",
                                "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                                "scrape_configs:\n"
                                "  - job_name: fleetctl\n"
                                "    authorization: {type: Bearer, credentials_file: " + (dir / "token").string() + "}\n"
                                "    static_configs: [{targets: ['127.0.0.1:" + std::to_string((*server)->port()) + "']}]\n"));
  std::atomic<bool> done{false};
  std::string log;
  std::thread prometheus([&] {
    auto r = process::run({{"prometheus", "--config.file=" + (dir / "prometheus.yml").string(),
                            "--storage.tsdb.path=" + (dir / "data").string(),
                            "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
                           {}, {}, 120s, {}, [&] { return !done.load(); }},
                          [&](std::string_view line) { log += std::string(line) + "\n"; });
    if (!r) log += "prometheus did not start: " + r.error().message + "\n";
  });
  struct Stop {
    std::atomic<bool>& done;
    std::thread& t;
    ~Stop() {
      done = true;
      t.join();
    }
  } stop{done, prometheus};

  // Scraped once its target is up (each look bounded: 60 s in all).
  nlohmann::json up;
  for (int i = 0; i < 120; ++i) {
    up = query(prom_port, "up{job=\"fleetctl\"}");
    if (!up.empty() && up[0]["value"][1] == "1") break;
    std::this_thread::sleep_for(500ms);
  }
  INFO(log);
  REQUIRE(!up.empty());
  REQUIRE(up[0]["value"][1] == "1");

  auto tps = query(prom_port, "fleet_board_tokens_per_second{board=\"pi-1\"}");
  REQUIRE(tps.size() == 1);
  CHECK(tps[0]["metric"]["kernel_release"] == "6.12.49-v8-16k-fleet");
  CHECK(tps[0]["value"][1] == "6.5");

  // README: boards failing verification.
  auto failing = query(prom_port, "fleet_board_check_pass == 0");
  REQUIRE(failing.size() == 1);
  CHECK(failing[0]["metric"]["board"] == "pi-2");
  CHECK(failing[0]["metric"]["check"] == "thp");
  // README: tokens/s by kernel release.
  auto by_release = query(prom_port, "avg by (kernel_release) (fleet_board_tokens_per_second)");
  REQUIRE(by_release.size() == 2);
  std::map<std::string, std::string> avg;
  for (const auto& r : by_release) avg[r["metric"]["kernel_release"]] = r["value"][1];
  CHECK(avg["6.12.49-v8-16k-fleet"] == "6.375");  // pi-1 6.5 and the other board 6.25
  CHECK(avg["6.12.47-v8-16k"] == "4.75");
}
