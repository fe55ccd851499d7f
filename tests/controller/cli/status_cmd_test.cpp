#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "controller/cli/cli.hpp"
#include "controller/store/store.hpp"
#include "tests/support/cli.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;

TEST_CASE("fleetctl status marks a figure measured on a hot or under-powered board, and shows who signed") {
  test::TempDir dir;
  const auto db = dir / "fleet.db";
  {
    auto st = store::Store::open(db);
    REQUIRE(st);
    store::RolloutRow r;
    r.id = "r1";
    r.kernel_release = "6.1-new";
    r.state = vocab::RolloutState::done;
    r.signed_by = "e78c5f502036d9ce";
    REQUIRE((*st)->put_rollout(r));
    const std::string checks = R"([{"property":"tokens_per_s","expected":">= 2.00","actual":"1.50","pass":false}])";
    for (const char* b : {"pi-1", "pi-2"}) {
      store::BoardRow row;
      row.rollout_id = "r1";
      row.board = b;
      row.step = vocab::Step::done;
      row.outcome = vocab::Outcome::committed;
      REQUIRE((*st)->put_board(row));
    }
    REQUIRE((*st)->add_report({"pi-1", "r1", 1, "COMMITTED", "6.1-new", "", checks, 5, R"({"shape":"15m","tokens_per_s":70.5})"}));
    REQUIRE((*st)->add_report({"pi-2", "r1", 1, "VERIFY_FAILED", "6.1-new", "", checks, 5,
                               R"({"shape":"15m","tokens_per_s":1.5,"temperature_c":84.2,"undervoltage":true,"cpu_mhz":1500})"}));
  }
  auto table = test::run_cli(controller::cli::run, {"status", "--state", db.string()});
  INFO(table.out << table.err);
  REQUIRE(table.code == 0);
  CHECK_THAT(table.out, Catch::Contains("1.50 t/s 15m UNDERVOLT HOT 84C"));
  CHECK_THAT(table.out, Catch::Contains("70.50 t/s 15m "));
  CHECK_THAT(table.out, !Catch::Contains("70.50 t/s 15m UNDERVOLT"));
  CHECK_THAT(table.out, Catch::Contains("e78c5f502036d9ce"));

  auto json = test::run_cli(controller::cli::run, {"status", "--state", db.string(), "--json"});
  REQUIRE(json.code == 0);
  auto j = nlohmann::json::parse(json.out);
  CHECK(j["rollouts"][0]["signed_by"] == "e78c5f502036d9ce");
  for (const auto& b : j["boards"]) {
    INFO(b.dump());
    if (b["board"] == "pi-1") {
      CHECK_FALSE(b["throughput"].contains("temperature_c"));  // no sensor: absent, never 0 C
      CHECK_FALSE(b["throughput"].contains("cpu_mhz"));
    } else {
      CHECK(b["throughput"]["temperature_c"] == Approx(84.2));
      CHECK(b["throughput"]["undervoltage"] == true);
      CHECK(b["throughput"]["cpu_mhz"] == 1500);
    }
  }
}
